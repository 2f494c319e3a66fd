//! Kept samples, packed: one compressed blob per step, outcome and reason, and the hashes of the
//! kept items for the item index ([`super::items`]). Pure encoding: it must not touch the
//! database.
//!
//! A blob is a format byte (`1`) followed by a zstd frame of, per sample in order: the item id's
//! length (LEB128) and bytes, then the details' length + 1 (0: no details) and bytes.

use super::items::StepItems;
use super::rows::{KeptSamples, ReasonRow, SampleRow, WriteSet};
use crate::schema::step_reasons;
use diesel::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;

/// The only blob format so far.
const FORMAT: u8 = 1;
/// zstd level: 1 is the fastest and already takes repetitive JSON details to a fifth or less.
const LEVEL: i32 = 1;
/// Largest unpacked blob read back (far above anything a request body can hold).
const MAX_RAW: u64 = 64 << 20;

/// A stored blob that cannot be read back.
#[derive(Debug, thiserror::Error)]
#[error("stored samples of step `{step_id}` cannot be read: {why}")]
pub struct CorruptSamples {
    /// The step.
    pub step_id: String,
    /// What is wrong.
    pub why: String,
}

/// An exact count with its kept samples packed, as written to `step_reasons`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = step_reasons, treat_none_as_default_value = false)]
pub struct PackedReasonRow {
    /// The step.
    pub step_id: String,
    /// `rejected` or `accepted`.
    pub outcome: String,
    /// The reason (`""` for acceptances).
    pub reason: String,
    /// The exact count.
    pub count: i64,
    /// The kept samples, packed ([`pack_raw`]); `None` when none were kept.
    pub samples: Option<Vec<u8>>,
}

/// A stable 32-bit hash (FNV-1a, folded), the same on every platform and version.
pub fn key(text: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    ((h ^ (h >> 32)) & 0xffff_ffff) as i64
}

/// The entry of an item kept by a step in the first item index, `item_index` (no longer written;
/// its entries are still read and deleted).
pub fn entry(item_id: &str, step_key: i64) -> i64 {
    ((key(item_id) as u64) << 32 | step_key as u64) as i64
}

/// The range of entries of one item: every step that kept it (and, rarely, a colliding one).
pub fn entry_range(item_id: &str) -> (i64, i64) {
    let lo = (key(item_id) as u64) << 32;
    (lo as i64, (lo | 0xffff_ffff) as i64)
}

/// The samples of one count row: step id, outcome, reason.
type GroupKey<'a> = (&'a str, &'a str, &'a str);

/// What a write stores, packed: the count rows with their samples, and each step's kept items.
/// Should a write hold one count row twice (the same step sent twice), one copy's samples go
/// with the first row, which is the one stored.
pub fn pack_set<'a>(set: &'a WriteSet) -> (Vec<PackedReasonRow>, Vec<StepItems>) {
    let mut groups: HashMap<GroupKey, &KeptSamples> = HashMap::with_capacity(set.kept.len());
    for k in &set.kept {
        groups
            .entry((&k.step_id, &k.outcome, &k.reason))
            .or_insert(k);
    }
    let mut items: HashMap<&'a str, Vec<i64>> = HashMap::new();
    let mut rows: Vec<PackedReasonRow> = Vec::with_capacity(set.reasons.len());
    let mut add = |r: &ReasonRow, kept: Option<&'a KeptSamples>, rows: &mut Vec<_>| {
        let samples = kept.filter(|k| !k.is_empty()).map(|k| {
            items
                .entry(k.step_id.as_str())
                .or_default()
                .extend_from_slice(&k.keys);
            pack_raw(&k.raw)
        });
        rows.push(PackedReasonRow {
            step_id: r.step_id.clone(),
            outcome: r.outcome.clone(),
            reason: r.reason.clone(),
            count: r.count,
            samples,
        });
    };
    for r in &set.reasons {
        let kept = groups.remove(&(r.step_id.as_str(), r.outcome.as_str(), r.reason.as_str()));
        add(r, kept, &mut rows);
    }
    // Samples without a count row (only a hand-made write can have them): count what was kept.
    let mut rest: Vec<_> = groups.into_iter().collect();
    rest.sort_by(|a, b| a.0.cmp(&b.0));
    for ((step_id, outcome, reason), kept) in rest {
        let r = ReasonRow {
            step_id: step_id.to_string(),
            outcome: outcome.to_string(),
            reason: reason.to_string(),
            count: kept.len() as i64,
        };
        add(&r, Some(kept), &mut rows);
    }
    for (step_id, keys) in &set.ranked {
        items
            .entry(step_id.as_str())
            .or_default()
            .extend_from_slice(keys);
    }
    let mut items: Vec<StepItems> = items
        .into_iter()
        .map(|(step_id, mut keys)| {
            keys.sort_unstable();
            keys.dedup();
            StepItems {
                step_id: step_id.to_string(),
                keys,
            }
        })
        .collect();
    items.sort_by(|a, b| a.step_id.cmp(&b.step_id));
    (rows, items)
}

/// Lays out one sample for a blob: the item id's length and bytes, then the details' length + 1
/// (0: no details) and bytes.
pub fn put_sample(raw: &mut Vec<u8>, item_id: &str, details: Option<&[u8]>) {
    put_len(raw, item_id.len());
    raw.extend_from_slice(item_id.as_bytes());
    match details {
        Some(d) => {
            put_len(raw, d.len() + 1);
            raw.extend_from_slice(d);
        }
        None => put_len(raw, 0),
    }
}

/// Packs samples laid out by [`put_sample`] into a blob.
pub fn pack_raw(raw: &[u8]) -> Vec<u8> {
    let mut out = vec![FORMAT];
    // Compressing into memory cannot fail; should it ever, the samples are kept uncompressed
    // under another format byte rather than lost.
    match compress(raw) {
        Ok(z) => out.extend_from_slice(&z),
        Err(_) => {
            out[0] = 0;
            out.extend_from_slice(raw);
        }
    }
    out
}

/// Unpacks the samples of one count row into sample rows (`seq` in kept order).
pub fn unpack(
    row: &PackedReasonRow,
    run_id: &str,
    out: &mut Vec<SampleRow>,
) -> Result<(), CorruptSamples> {
    let Some(blob) = &row.samples else {
        return Ok(());
    };
    let bad = |why: &str| CorruptSamples {
        step_id: row.step_id.clone(),
        why: why.to_string(),
    };
    let raw = match blob.split_first() {
        Some((&FORMAT, z)) => {
            let size = zstd::zstd_safe::get_frame_content_size(z)
                .ok()
                .flatten()
                .ok_or_else(|| bad("no content size"))?;
            if size > MAX_RAW {
                return Err(bad("declares more than 64 MiB"));
            }
            decompress(z, usize::try_from(size).map_err(|_| bad("too large"))?)
                .map_err(|e| bad(&e.to_string()))?
        }
        Some((0, raw)) => raw.to_vec(),
        _ => return Err(bad("unknown format")),
    };
    let mut at = 0;
    let mut seq = 0;
    while at < raw.len() {
        let n = get_len(&raw, &mut at).ok_or_else(|| bad("truncated"))?;
        let item = text(&raw, &mut at, n).ok_or_else(|| bad("truncated item id"))?;
        let d = get_len(&raw, &mut at).ok_or_else(|| bad("truncated"))?;
        let details = match d {
            0 => None,
            d => Some(text(&raw, &mut at, d - 1).ok_or_else(|| bad("truncated details"))?),
        };
        out.push(SampleRow {
            step_id: row.step_id.clone(),
            outcome: row.outcome.clone(),
            reason: row.reason.clone(),
            seq,
            run_id: run_id.to_string(),
            item_id: item,
            details,
        });
        seq += 1;
    }
    Ok(())
}

thread_local! {
    /// One zstd compression context a thread, reused: making one costs as much as compressing
    /// a blob.
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { RefCell::new(None) };
    /// One zstd decompression context a thread, reused.
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// `raw` as one zstd frame that records its content size.
fn compress(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    COMPRESSOR.with(|slot| {
        let mut slot = slot.borrow_mut();
        let z = match slot.as_mut() {
            Some(z) => z,
            None => slot.insert(zstd::bulk::Compressor::new(LEVEL)?),
        };
        z.compress(raw)
    })
}

/// One zstd frame back, at most `capacity` bytes.
fn decompress(frame: &[u8], capacity: usize) -> std::io::Result<Vec<u8>> {
    DECOMPRESSOR.with(|slot| {
        let mut slot = slot.borrow_mut();
        let d = match slot.as_mut() {
            Some(d) => d,
            None => slot.insert(zstd::bulk::Decompressor::new()?),
        };
        d.decompress(frame, capacity)
    })
}

fn put_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn get_len(raw: &[u8], at: &mut usize) -> Option<usize> {
    let mut n: usize = 0;
    for shift in (0..64).step_by(7) {
        let b = *raw.get(*at)?;
        *at += 1;
        n |= usize::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

fn text(raw: &[u8], at: &mut usize, n: usize) -> Option<String> {
    let bytes = raw.get(*at..at.checked_add(n)?)?;
    *at += n;
    String::from_utf8(bytes.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_round_trip_in_order() {
        let kept = [
            ("sku-1", Some(r#"{"price":150}"#)),
            ("ünï", None),
            (&*"x".repeat(300), Some("")),
        ];
        let mut k = KeptSamples::new("s1", "rejected", "price");
        for (item, details) in kept {
            k.push(item, details.map(str::as_bytes));
        }
        let row = PackedReasonRow {
            step_id: "s1".into(),
            outcome: "rejected".into(),
            reason: "price".into(),
            count: 9,
            samples: Some(pack_raw(&k.raw)),
        };
        let mut back = Vec::new();
        unpack(&row, "r1", &mut back).unwrap();
        assert_eq!(back.len(), 3);
        for (seq, ((item, details), b)) in kept.iter().zip(&back).enumerate() {
            assert_eq!(
                (seq as i32, item.to_string(), details.map(str::to_string)),
                (b.seq, b.item_id.clone(), b.details.clone())
            );
        }
        assert_eq!(k.keys, [key("sku-1"), key("ünï"), key(&"x".repeat(300))]);
    }

    #[test]
    fn a_damaged_blob_is_an_error_not_a_panic() {
        let mut row = PackedReasonRow {
            step_id: "s1".into(),
            outcome: "rejected".into(),
            reason: "price".into(),
            count: 1,
            samples: Some(vec![1, 2, 3]),
        };
        assert!(unpack(&row, "r", &mut Vec::new()).is_err());
        row.samples = Some(vec![0, 5, b'a']);
        assert!(unpack(&row, "r", &mut Vec::new()).is_err());
    }

    #[test]
    fn an_items_entries_fall_in_its_range() {
        for item in ["sku-1", "", "ünïcode", "a very long item id indeed"] {
            let (lo, hi) = entry_range(item);
            for step in ["s", "run:1", "0b7c…"] {
                let e = entry(item, key(step));
                assert!(lo <= e && e <= hi, "{item} {step}");
                assert_eq!(e - lo, key(step));
            }
        }
    }
}
