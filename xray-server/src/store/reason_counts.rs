//! A step rollup's exact rejection counts by reason ([`ReasonCounts`]), kept inside its row of
//! `step_rollups` (column `reasons`) rather than in a row of their own per reason: a write reads
//! and writes back the step rows anyway, so the counts cost it no statement and no row of their
//! own (on PostgreSQL ~125 upserted rows a body of 5 runs).

use super::postings::{put, take};
use std::collections::BTreeMap;

/// Stored reason counts that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("the stored rejection counts of a step rollup are damaged: {0}")]
pub struct CorruptReasons(&'static str);

/// Counts by rejection reason, summed with wrapping (adding and taking back stay exact inverses);
/// a reason whose count sums to 0 is left out.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReasonCounts(BTreeMap<String, i64>);

impl ReasonCounts {
    /// Adds `n` to `reason`'s count.
    pub fn add(&mut self, reason: &str, n: i64) {
        if n == 0 {
            return;
        }
        match self.0.get_mut(reason) {
            Some(c) => {
                *c = c.wrapping_add(n);
                if *c == 0 {
                    self.0.remove(reason);
                }
            }
            None => {
                self.0.insert(reason.to_string(), n);
            }
        }
    }

    /// Adds `other`'s counts times `sign`.
    pub fn merge(&mut self, other: &ReasonCounts, sign: i64) {
        for (reason, &n) in &other.0 {
            self.add(reason, sign.wrapping_mul(n));
        }
    }

    /// `reason`'s count (0 when absent).
    pub fn get(&self, reason: &str) -> i64 {
        self.0.get(reason).copied().unwrap_or(0)
    }

    /// The reasons with their counts, in reason order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, i64)> {
        self.0.iter().map(|(r, &n)| (r, n))
    }

    /// Whether no reason has a count.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The stored form: (length of the reason, its UTF-8 bytes, count as two's complement)
    /// triples in reason order, numbers LEB128.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() * 24);
        for (reason, &n) in &self.0 {
            put(&mut out, reason.len() as u64);
            out.extend_from_slice(reason.as_bytes());
            put(&mut out, n as u64);
        }
        out
    }

    /// Reads [`ReasonCounts::encode`]'s form.
    pub fn decode(mut bytes: &[u8]) -> Result<ReasonCounts, CorruptReasons> {
        let mut out = BTreeMap::new();
        let cut = |_| CorruptReasons("a number cut short");
        while !bytes.is_empty() {
            let len = usize::try_from(take(&mut bytes).map_err(cut)?)
                .map_err(|_| CorruptReasons("a reason too long"))?;
            if len > bytes.len() {
                return Err(CorruptReasons("a reason cut short"));
            }
            let (text, rest) = bytes.split_at(len);
            bytes = rest;
            let reason = std::str::from_utf8(text)
                .map_err(|_| CorruptReasons("a reason that is not UTF-8"))?;
            let n = take(&mut bytes).map_err(cut)? as i64;
            if n == 0 || out.insert(reason.to_string(), n).is_some() {
                return Err(CorruptReasons("a count of 0 or a reason twice"));
            }
        }
        Ok(ReasonCounts(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_round_trip_and_cancel_out_exactly() {
        let mut a = ReasonCounts::default();
        a.add("too_big", 3);
        a.add("é unicode", i64::MAX);
        a.add("too_big", 4);
        a.add("none", 0);
        assert_eq!(a.get("too_big"), 7);
        assert_eq!(a.get("none"), 0);
        let back = ReasonCounts::decode(&a.encode()).expect("decodes");
        assert_eq!(back, a);
        // Wrapping past the 64-bit limit and back is exact.
        let mut sum = a.clone();
        sum.merge(&back, 1);
        assert_eq!(sum.get("é unicode"), i64::MAX.wrapping_mul(2));
        assert_eq!(ReasonCounts::decode(&sum.encode()).expect("decodes"), sum);
        sum.merge(&a, -1);
        sum.merge(&a, -1);
        assert!(sum.is_empty());
        assert!(sum.encode().is_empty());
        let mut negative = ReasonCounts::default();
        negative.add("r", -5);
        assert_eq!(
            ReasonCounts::decode(&negative.encode()).expect("decodes"),
            negative
        );
    }

    #[test]
    fn damaged_counts_are_refused() {
        let mut a = ReasonCounts::default();
        a.add("reason", 300);
        let good = a.encode();
        assert!(ReasonCounts::decode(&good[..good.len() - 1]).is_err());
        assert!(ReasonCounts::decode(&good[..3]).is_err());
        assert!(ReasonCounts::decode(&[2, 0xff, 0xfe, 1]).is_err());
        assert!(ReasonCounts::decode(&[1, b'a', 0]).is_err());
        assert!(ReasonCounts::decode(&[1, b'a', 1, 1, b'a', 1]).is_err());
    }
}
