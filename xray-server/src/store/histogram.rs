//! Step durations as a log histogram, the one figure of the rollups that is not exact: a
//! duration `d` ms falls in bucket `i = ceil(log_γ(d / MIN_MS))` (γ = 1.01, so each bucket is
//! 1% wide), bucket 0 holding everything up to [`MIN_MS`]; a percentile is answered as its
//! bucket's geometric middle, within 0.5% of the true duration (or 0.5 µs below 1 µs).
//! Histograms add and subtract exactly (counts per bucket), so the rollups stay exact in
//! everything but this resolution. Stored as LEB128 pairs (bucket gap, count), buckets ascending.

use super::postings::{put, take};

/// Relative width of a bucket: bucket `i` holds `(MIN_MS·γ^(i−1), MIN_MS·γ^i]`.
pub const GAMMA: f64 = 1.01;
/// The top of bucket 0, in ms (1 µs).
pub const MIN_MS: f64 = 0.001;
/// The last bucket (≈ 3·10¹⁶ ms): longer durations are counted in it.
const MAX_BUCKET: u32 = 5000;

/// A stored histogram that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("a stored duration histogram is damaged: {0}")]
pub struct CorruptHistogram(&'static str);

/// Counts per bucket, in bucket order; absent buckets are empty (a sorted vector: merging the
/// many rows of a window is a linear walk, not a tree's insertions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram(Vec<(u32, i64)>);

/// The bucket of a duration in ms.
pub fn bucket_of(ms: f64) -> u32 {
    if ms.is_nan() || ms <= MIN_MS {
        return 0;
    }
    let i = ((ms / MIN_MS).ln() / GAMMA.ln()).ceil();
    if i >= f64::from(MAX_BUCKET) {
        MAX_BUCKET
    } else {
        (i as u32).max(1)
    }
}

/// The duration a bucket answers for: its geometric middle (half of [`MIN_MS`] for bucket 0).
pub fn value_of(bucket: u32) -> f64 {
    if bucket == 0 {
        MIN_MS / 2.0
    } else {
        MIN_MS * GAMMA.powf(f64::from(bucket) - 0.5)
    }
}

impl Histogram {
    /// Counts one duration (ms).
    pub fn add(&mut self, ms: f64) {
        let b = bucket_of(ms);
        match self.0.binary_search_by_key(&b, |&(k, _)| k) {
            Ok(i) => self.0[i].1 += 1,
            Err(i) => self.0.insert(i, (b, 1)),
        }
    }

    /// Adds `other` times `sign` (1 or −1), dropping buckets that become empty.
    pub fn merge(&mut self, other: &Histogram, sign: i64) {
        if other.0.is_empty() {
            return;
        }
        if self.0.is_empty() && sign == 1 {
            self.0.clone_from(&other.0);
            return;
        }
        let mut out = Vec::with_capacity(self.0.len() + other.0.len());
        let (mut a, mut b) = (self.0.iter().peekable(), other.0.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&&(ka, na)), Some(&&(kb, nb))) => {
                    if ka < kb {
                        a.next();
                        (ka, na)
                    } else if kb < ka {
                        b.next();
                        (kb, sign * nb)
                    } else {
                        a.next();
                        b.next();
                        (ka, na + sign * nb)
                    }
                }
                (Some(&&(ka, na)), None) => {
                    a.next();
                    (ka, na)
                }
                (None, Some(&&(kb, nb))) => {
                    b.next();
                    (kb, sign * nb)
                }
                (None, None) => break,
            };
            if next.1 != 0 {
                out.push(next);
            }
        }
        self.0 = out;
    }

    /// How many durations it holds.
    pub fn count(&self) -> i64 {
        self.0.iter().map(|&(_, n)| n).sum()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `q`-quantile (0 < q ≤ 1) by nearest rank: the value of the bucket holding the
    /// `ceil(q·n)`-th smallest duration; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n <= 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as i64).clamp(1, n);
        let mut seen = 0;
        for &(b, c) in &self.0 {
            seen += c;
            if seen >= rank {
                return Some(value_of(b));
            }
        }
        self.0.last().map(|&(b, _)| value_of(b))
    }

    /// The stored form: (gap from the previous bucket, count) pairs, LEB128. Buckets with a
    /// count below 1 (never, in a consistent store) are left out.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() * 2);
        let mut prev = 0u32;
        for &(b, n) in &self.0 {
            if n > 0 {
                put(&mut out, u64::from(b - prev));
                put(&mut out, n as u64);
                prev = b;
            }
        }
        out
    }

    /// Reads [`Histogram::encode`]'s form.
    pub fn decode(mut bytes: &[u8]) -> Result<Histogram, CorruptHistogram> {
        let mut h: Vec<(u32, i64)> = Vec::with_capacity(bytes.len() / 2);
        let mut b = 0u64;
        let cut = |_| CorruptHistogram("a number cut short");
        while !bytes.is_empty() {
            let gap = take(&mut bytes).map_err(cut)?;
            b += gap;
            let n = take(&mut bytes).map_err(cut)?;
            let (Ok(bucket), Ok(n)) = (u32::try_from(b), i64::try_from(n)) else {
                return Err(CorruptHistogram("a bucket or count out of range"));
            };
            if bucket > MAX_BUCKET || (gap == 0 && !h.is_empty()) {
                return Err(CorruptHistogram("a bucket out of range or out of order"));
            }
            h.push((bucket, n));
        }
        Ok(Histogram(h))
    }
}

/// The `qs`-quantiles (each as [`Histogram::quantile`]) of the sum of stored histograms, without
/// building one: a single histogram is read as it is, several are added into a dense array of
/// every bucket (the many rows of a day or a side of a comparison, summed in one pass each).
pub fn quantiles(stored: &[Vec<u8>], qs: &[f64]) -> Result<Vec<Option<f64>>, CorruptHistogram> {
    if let [one] = stored {
        let h = Histogram::decode(one)?;
        return Ok(qs.iter().map(|&q| h.quantile(q)).collect());
    }
    let mut dense = vec![0i64; MAX_BUCKET as usize + 1];
    for bytes in stored {
        for &(b, n) in &Histogram::decode(bytes)?.0 {
            dense[b as usize] += n;
        }
    }
    let sparse = Histogram(
        dense
            .into_iter()
            .enumerate()
            .filter(|&(_, n)| n != 0)
            .map(|(b, n)| (b as u32, n))
            .collect(),
    );
    Ok(qs.iter().map(|&q| sparse.quantile(q)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_duration_is_answered_within_half_a_percent() {
        for &ms in &[
            0.0, 0.0004, 0.001, 0.0011, 0.5, 1.0, 17.3, 250.0, 6200.0, 3.6e6, 1e9,
        ] {
            let v = value_of(bucket_of(ms));
            let err = (v - ms).abs();
            assert!(
                err <= ms * 0.005 + 0.0005,
                "{ms} ms answered as {v} ms (off by {err})"
            );
        }
    }

    #[test]
    fn quantiles_are_by_nearest_rank() {
        let mut h = Histogram::default();
        for ms in [10.0, 20.0, 30.0, 40.0, 1000.0] {
            h.add(ms);
        }
        let near = |a: f64, b: f64| (a - b).abs() <= b * 0.005;
        assert!(near(h.quantile(0.5).expect("p50"), 30.0));
        assert!(near(h.quantile(0.95).expect("p95"), 1000.0));
        assert!(near(h.quantile(0.2).expect("p20"), 10.0));
        assert_eq!(Histogram::default().quantile(0.5), None);
    }

    #[test]
    fn histograms_round_trip_and_subtract_back_to_nothing() {
        let mut a = Histogram::default();
        for ms in [0.0, 1.5, 1.5, 99.0, 1e12] {
            a.add(ms);
        }
        let back = Histogram::decode(&a.encode()).expect("decodes");
        assert_eq!(back, a);
        let mut sum = a.clone();
        sum.merge(&back, 1);
        assert_eq!(sum.count(), 10);
        sum.merge(&a, -1);
        sum.merge(&a, -1);
        assert!(sum.is_empty());
        assert!(Histogram::decode(&[0x80]).is_err());
        // Quantiles of stored histograms summed: as those of the merged histogram.
        let q = quantiles(&[a.encode(), back.encode(), a.encode()], &[0.5, 0.95]).expect("read");
        let mut three = a.clone();
        three.merge(&a, 1);
        three.merge(&a, 1);
        assert_eq!(q, vec![three.quantile(0.5), three.quantile(0.95)]);
        assert_eq!(quantiles(&[], &[0.5]).expect("none"), vec![None]);
    }
}
