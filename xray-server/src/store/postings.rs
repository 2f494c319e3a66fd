//! Packed posting lists: PostgreSQL's item index at rest ([`super::item_batches`]), pure
//! encoding. A *batch* of item documents is stored as `2^bits` bucket rows; the bucket of an
//! item hash is its top `bits` bits, and a bucket row lists the (hash, document) pairs whose hash
//! falls in it, sorted and delta-encoded, the way SQLite's FTS5 stores its doclists. It must not
//! touch the database.
//!
//! A row is a format byte (`1`), then per distinct hash: the hash's distance from the previous
//! one (LEB128; the first from 0), the number of documents holding it, and those documents'
//! numbers, the first as its distance from the batch's smallest document number, each next as
//! its distance from the one before.

/// The only row format so far.
const FORMAT: u8 = 1;
/// The most buckets a batch has (`2^MAX_BITS`).
pub const MAX_BITS: u32 = 20;
/// About how many postings a bucket row holds: small enough to stay well under PostgreSQL's
/// 2 KB TOAST threshold (3–7 bytes a posting), big enough that a row's ~40 bytes of heap and
/// index overhead is under 5% of it.
const POSTINGS_PER_ROW: usize = 256;

/// A stored bucket row that cannot be read back.
#[derive(Debug, thiserror::Error)]
#[error("the item index's postings are damaged ({0})")]
pub struct CorruptPostings(pub &'static str);

/// One posting: an item hash ([`super::packed::key`], 32 bits) and a document that holds it.
pub type Posting = (u32, i64);

/// How many bits of a hash pick a bucket in a batch of `postings` postings.
pub fn bits_for(postings: usize) -> u32 {
    let buckets = postings.div_ceil(POSTINGS_PER_ROW).max(1);
    buckets.next_power_of_two().trailing_zeros().min(MAX_BITS)
}

/// The bucket of `hash` in a batch of `2^bits` buckets.
pub fn bucket(hash: u32, bits: u32) -> u32 {
    if bits == 0 {
        0
    } else {
        hash >> (32 - bits)
    }
}

/// Splits sorted, distinct `postings` into bucket rows: (bucket, encoded row), buckets ascending,
/// empty buckets left out. `base` is the batch's smallest document number.
pub fn encode_batch(postings: &[Posting], bits: u32, base: i64) -> Vec<(u32, Vec<u8>)> {
    let mut rows = Vec::new();
    let mut start = 0;
    while start < postings.len() {
        let b = bucket(postings[start].0, bits);
        let end = start
            + postings[start..]
                .iter()
                .take_while(|p| bucket(p.0, bits) == b)
                .count();
        rows.push((b, encode_row(&postings[start..end], base)));
        start = end;
    }
    rows
}

/// One bucket row of sorted, distinct `postings` (see the module docs).
pub fn encode_row(postings: &[Posting], base: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + postings.len() * 4);
    out.push(FORMAT);
    let mut prev_hash = 0u32;
    let mut i = 0;
    while i < postings.len() {
        let hash = postings[i].0;
        let n = postings[i..].iter().take_while(|p| p.0 == hash).count();
        put(&mut out, u64::from(hash - prev_hash));
        put(&mut out, n as u64);
        let mut prev_doc = base;
        for p in &postings[i..i + n] {
            put(&mut out, p.1.abs_diff(prev_doc));
            prev_doc = p.1;
        }
        prev_hash = hash;
        i += n;
    }
    out
}

/// Appends every posting of a bucket row to `out`, in order.
pub fn decode_row(row: &[u8], base: i64, out: &mut Vec<Posting>) -> Result<(), CorruptPostings> {
    each_hash(row, base, |hash, docs| {
        out.extend(docs.iter().map(|d| (hash, *d)));
    })
}

/// The documents of a bucket row that hold `hash`.
pub fn docs_with(row: &[u8], base: i64, hash: u32) -> Result<Vec<i64>, CorruptPostings> {
    let mut found = Vec::new();
    each_hash(row, base, |h, docs| {
        if h == hash {
            found.extend_from_slice(docs);
        }
    })?;
    Ok(found)
}

/// Calls `f` with each hash of a bucket row and its documents.
fn each_hash(row: &[u8], base: i64, mut f: impl FnMut(u32, &[i64])) -> Result<(), CorruptPostings> {
    let (&format, mut rest) = row.split_first().ok_or(CorruptPostings("an empty row"))?;
    if format != FORMAT {
        return Err(CorruptPostings("an unknown row format"));
    }
    let mut hash = 0u64;
    let mut docs = Vec::new();
    while !rest.is_empty() {
        hash += take(&mut rest)?;
        let hash = u32::try_from(hash).map_err(|_| CorruptPostings("a hash over 32 bits"))?;
        let n = take(&mut rest)?;
        if n == 0 || n > rest.len() as u64 {
            return Err(CorruptPostings("a bad document count"));
        }
        docs.clear();
        let mut doc = base;
        for _ in 0..n {
            let step = i64::try_from(take(&mut rest)?)
                .map_err(|_| CorruptPostings("a document number out of range"))?;
            doc = doc
                .checked_add(step)
                .ok_or(CorruptPostings("a document number out of range"))?;
            docs.push(doc);
        }
        f(hash, &docs);
    }
    Ok(())
}

/// Appends `v` as LEB128.
pub(super) fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads one LEB128 number off the front of `rest`.
pub(super) fn take(rest: &mut &[u8]) -> Result<u64, CorruptPostings> {
    let mut v = 0u64;
    for (i, b) in rest.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            *rest = &rest[i + 1..];
            return Ok(v);
        }
    }
    Err(CorruptPostings("a number cut short"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut p: Vec<Posting>) -> Vec<Posting> {
        p.sort_unstable();
        p.dedup();
        p
    }

    #[test]
    fn a_batch_round_trips_bucket_by_bucket() {
        let mut rng = 0x1234_5678_u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let postings = sorted(
            (0..5_000)
                .map(|_| ((next() >> 32) as u32, 1_000 + (next() % 300) as i64))
                .chain([(0, 1_000), (u32::MAX, 1_299), (7, 1_000), (7, 1_299)])
                .collect(),
        );
        let bits = bits_for(postings.len());
        assert_eq!(bits, 5, "5,004 postings: 20 rows of 256 → 32 buckets");
        let rows = encode_batch(&postings, bits, 1_000);
        assert!(rows.windows(2).all(|w| w[0].0 < w[1].0));
        let mut back = Vec::new();
        for (b, row) in &rows {
            let before = back.len();
            decode_row(row, 1_000, &mut back).expect("decodes");
            assert!(back[before..].iter().all(|p| bucket(p.0, bits) == *b));
        }
        assert_eq!(back, postings);
        let bytes: usize = rows.iter().map(|r| r.1.len()).sum();
        assert!(bytes < postings.len() * 6, "{bytes} bytes");
        let (_, row7) = &rows[0];
        assert_eq!(docs_with(row7, 1_000, 7).expect("reads"), [1_000, 1_299]);
        assert_eq!(docs_with(row7, 1_000, 8).expect("reads"), Vec::<i64>::new());
    }

    #[test]
    fn bits_grow_with_the_batch_and_stop_at_the_most_buckets() {
        assert_eq!(bits_for(0), 0);
        assert_eq!(bits_for(256), 0);
        assert_eq!(bits_for(257), 1);
        assert_eq!(bits_for(usize::MAX / 2), MAX_BITS);
        assert_eq!(bucket(u32::MAX, 0), 0);
        assert_eq!(bucket(u32::MAX, 20), (1 << 20) - 1);
        assert_eq!(bucket(0x8000_0000, 1), 1);
    }

    #[test]
    fn damaged_rows_are_errors_not_panics() {
        let row = encode_row(&[(5, 10), (5, 12), (9, 11)], 10);
        for cut in 0..row.len() {
            let _ = decode_row(&row[..cut], 10, &mut Vec::new());
        }
        assert!(decode_row(&[], 10, &mut Vec::new()).is_err());
        assert!(decode_row(&[2, 0], 10, &mut Vec::new()).is_err());
        assert!(decode_row(&[1, 5, 0], 10, &mut Vec::new()).is_err());
        assert!(decode_row(&[1, 0xff, 0xff], 10, &mut Vec::new()).is_err());
        assert!(docs_with(
            &[1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
            i64::MAX,
            1
        )
        .is_err());
    }
}
