//! PostgreSQL's item index at rest: documents packed into batches of compressed posting lists
//! ([`super::postings`]), the way SQLite's FTS5 keeps its segments. A write still adds its
//! documents to `item_docs` (the fresh tier, GIN-indexed); the maintainer
//! ([`super::maintenance`]) then moves them, off the request path, into a new batch
//! (`item_batches`, one row; `item_postings`, one row a bucket), merges batches of a size eight
//! at a time so a lookup reads few of them, and drops or rewrites batches whose steps retention
//! deleted. A lookup reads the fresh tier and one bucket row per batch in one statement (one
//! snapshot, so a document moving between tiers is never missed). Per kept item: about 4 bytes
//! here against about 38 in the GIN index.

use super::postings::{self, Posting};
use crate::schema::{item_batches, item_docs, item_postings, steps};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Bool, Integer, Nullable};
use std::collections::HashSet;

/// Same-size batches merged into one at a time (sizes a factor of this apart).
const FANOUT: usize = 8;
/// A merge makes batches of at most this many postings (about 8–12 MB of memory while merging;
/// bigger batches are left as they are, so a lookup reads one row for every this many).
const MERGE_MAX_POSTINGS: usize = 2_000_000;
/// Fresh documents packed in one round at most.
const PACK_MAX_DOCS: i64 = 2_000;
/// Bucket rows per INSERT (two binds each).
const ROWS_PER_INSERT: usize = 1000;
/// Takes the index's maintenance lock for the transaction (another server's maintainer on the
/// same database skips its round instead of packing the same documents twice).
const LOCK: &str = "SELECT pg_try_advisory_xact_lock(7881273022) AS locked";

/// One batch, as `item_batches` holds it.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = item_batches)]
struct Batch {
    /// Its number (`item_batch_seq`), the high bits of its bucket rows' slots.
    batch: i64,
    /// A hash's top `bits` bits pick its bucket.
    bits: i32,
    /// (hash, document) pairs it holds.
    postings: i64,
    /// Distinct documents it holds.
    docs: i64,
    /// Its smallest document number, the base its rows count from.
    min_doc: i64,
    /// Its largest document number.
    max_doc: i64,
}

/// What one round of the index's maintenance did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IndexWork {
    /// Fresh documents packed into a new batch.
    pub packed: usize,
    /// Batches merged into bigger ones.
    pub merged: usize,
    /// Batches dropped or rewritten because retention deleted (some of) their steps.
    pub collected: usize,
}

/// The first bucket slot of a batch: slots are `batch << MAX_BITS | bucket`.
fn first_slot(batch: i64) -> i64 {
    batch << postings::MAX_BITS
}

/// Whether this transaction got the maintenance lock.
fn lock(c: &mut PgConnection) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Locked {
        #[diesel(sql_type = Bool)]
        locked: bool,
    }
    Ok(diesel::sql_query(LOCK).get_result::<Locked>(c)?.locked)
}

/// The lookup of [`docs_with`]: `$1` the hash as `INTEGER` (the fresh tier's GIN index), `$2` as
/// an unsigned `BIGINT` (its bucket in each batch, `slot = batch << 20 | bucket`). The batches are
/// read whole (a few dozen rows: sizes grow by [`FANOUT`]), each bucket row by its key (`LIMIT 1`
/// keeps that a probe per batch whatever the planner's statistics say).
pub const LOOKUP_SQL: &str =
    "SELECT doc, NULL::bytea AS postings, 0::bigint AS base FROM item_docs \
     WHERE items @> ARRAY[$1::integer] \
     UNION ALL \
     SELECT NULL::bigint, p.postings, b.min_doc FROM item_batches b \
     CROSS JOIN LATERAL (SELECT postings FROM item_postings \
       WHERE slot = (b.batch << 20) | ($2::bigint >> (32 - b.bits)) LIMIT 1) p";

/// The documents that hold `hash`: in the fresh tier and in every batch, in one statement.
pub(super) fn docs_with(c: &mut PgConnection, hash: u32) -> QueryResult<Vec<i64>> {
    #[derive(QueryableByName)]
    struct Hit {
        #[diesel(sql_type = Nullable<BigInt>)]
        doc: Option<i64>,
        #[diesel(sql_type = Nullable<Binary>)]
        postings: Option<Vec<u8>>,
        #[diesel(sql_type = BigInt)]
        base: i64,
    }
    let hits: Vec<Hit> = diesel::sql_query(LOOKUP_SQL)
        .bind::<Integer, _>(hash as i32)
        .bind::<BigInt, _>(i64::from(hash))
        .load(c)?;
    let mut docs = Vec::new();
    for h in hits {
        match (h.doc, h.postings) {
            (Some(d), _) => docs.push(d),
            (None, Some(row)) => docs.extend(
                postings::docs_with(&row, h.base, hash)
                    .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))?,
            ),
            (None, None) => {}
        }
    }
    docs.sort_unstable();
    docs.dedup();
    Ok(docs)
}

/// Moves the fresh tier's documents (up to [`PACK_MAX_DOCS`], oldest first) into a new batch.
/// Returns how many.
fn pack(c: &mut PgConnection) -> QueryResult<usize> {
    let fresh: Vec<(i64, Vec<i32>)> = item_docs::table
        .order(item_docs::doc)
        .limit(PACK_MAX_DOCS)
        .load(c)?;
    if fresh.is_empty() {
        return Ok(0);
    }
    let mut all: Vec<Posting> = Vec::with_capacity(fresh.iter().map(|f| f.1.len()).sum());
    for (doc, items) in &fresh {
        all.extend(items.iter().map(|h| (*h as u32, *doc)));
    }
    write_batch(c, all)?;
    let docs: Vec<i64> = fresh.iter().map(|f| f.0).collect();
    for chunk in docs.chunks(ROWS_PER_INSERT) {
        diesel::delete(item_docs::table.filter(item_docs::doc.eq_any(chunk))).execute(c)?;
    }
    Ok(fresh.len())
}

/// Stores `all` (any order, duplicates allowed) as a new batch; nothing when empty.
fn write_batch(c: &mut PgConnection, mut all: Vec<Posting>) -> QueryResult<()> {
    all.sort_unstable();
    all.dedup();
    let (Some(min_doc), Some(max_doc)) =
        (all.iter().map(|p| p.1).min(), all.iter().map(|p| p.1).max())
    else {
        return Ok(());
    };
    let docs = all.iter().map(|p| p.1).collect::<HashSet<_>>().len();
    let bits = postings::bits_for(all.len());
    let batch: i64 =
        diesel::select(diesel::dsl::sql::<BigInt>("nextval('item_batch_seq')")).get_result(c)?;
    diesel::insert_into(item_batches::table)
        .values(Batch {
            batch,
            bits: bits as i32,
            postings: all.len() as i64,
            docs: docs as i64,
            min_doc,
            max_doc,
        })
        .execute(c)?;
    let rows: Vec<_> = postings::encode_batch(&all, bits, min_doc)
        .into_iter()
        .map(|(bucket, row)| {
            (
                item_postings::slot.eq(first_slot(batch) | i64::from(bucket)),
                item_postings::postings.eq(row),
            )
        })
        .collect();
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        diesel::insert_into(item_postings::table)
            .values(chunk)
            .execute(c)?;
    }
    Ok(())
}

/// Every posting of `batches` whose document's step is still stored, then the batches deleted.
fn take_batches(c: &mut PgConnection, batches: &[Batch]) -> QueryResult<Vec<Posting>> {
    let mut all = Vec::new();
    for b in batches {
        let rows: Vec<Vec<u8>> = item_postings::table
            .filter(item_postings::slot.between(first_slot(b.batch), first_slot(b.batch + 1) - 1))
            .select(item_postings::postings)
            .load(c)?;
        let start = all.len();
        for row in rows {
            postings::decode_row(&row, b.min_doc, &mut all)
                .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))?;
        }
        let live: HashSet<i64> = steps::table
            .filter(steps::item_doc.between(b.min_doc, b.max_doc))
            .select(steps::item_doc.assume_not_null())
            .load::<i64>(c)?
            .into_iter()
            .collect();
        let mut i = start;
        for j in start..all.len() {
            if live.contains(&all[j].1) {
                all[i] = all[j];
                i += 1;
            }
        }
        all.truncate(i);
        diesel::delete(
            item_postings::table.filter(
                item_postings::slot.between(first_slot(b.batch), first_slot(b.batch + 1) - 1),
            ),
        )
        .execute(c)?;
        diesel::delete(item_batches::table.find(b.batch)).execute(c)?;
    }
    Ok(all)
}

/// The size class of a batch: batches of one class are within a factor [`FANOUT`] of each other.
fn class(postings: i64) -> u32 {
    (postings.max(1) as u64).ilog(FANOUT as u64)
}

/// Merges the oldest [`FANOUT`] batches of the smallest class that has that many, if their sum
/// stays within [`MERGE_MAX_POSTINGS`]. Returns how many batches went into the merge.
fn merge(c: &mut PgConnection) -> QueryResult<usize> {
    let batches: Vec<Batch> = item_batches::table
        .order(item_batches::batch)
        .select(Batch::as_select())
        .load(c)?;
    let mut classes: Vec<u32> = batches.iter().map(|b| class(b.postings)).collect();
    classes.sort_unstable();
    classes.dedup();
    for k in classes {
        let group: Vec<Batch> = batches
            .iter()
            .filter(|b| class(b.postings) == k)
            .take(FANOUT)
            .cloned()
            .collect();
        let total: i64 = group.iter().map(|b| b.postings).sum();
        if group.len() == FANOUT && total as usize <= MERGE_MAX_POSTINGS {
            let all = take_batches(c, &group)?;
            write_batch(c, all)?;
            return Ok(group.len());
        }
    }
    Ok(0)
}

/// Drops the batches none of whose steps are stored any more and rewrites those with fewer than
/// half left (retention deleted the rest). Counting a batch's steps reads its range of
/// `steps_by_item_doc`, so this runs less often than the rest.
fn collect(c: &mut PgConnection) -> QueryResult<usize> {
    let batches: Vec<Batch> = item_batches::table.select(Batch::as_select()).load(c)?;
    let mut n = 0;
    for b in batches {
        let live: i64 = steps::table
            .filter(steps::item_doc.between(b.min_doc, b.max_doc))
            .count()
            .get_result(c)?;
        if live.saturating_mul(2) < b.docs {
            let all = take_batches(c, std::slice::from_ref(&b))?;
            write_batch(c, all)?;
            n += 1;
        }
    }
    Ok(n)
}

/// One round of the index's maintenance (see the module docs), each part in a transaction of its
/// own; with `collect_garbage`, also the batches retention emptied.
pub(super) fn maintain(c: &mut PgConnection, collect_garbage: bool) -> QueryResult<IndexWork> {
    let mut work = IndexWork {
        packed: c.transaction(|c| if lock(c)? { pack(c) } else { Ok(0) })?,
        ..IndexWork::default()
    };
    let drained = work.packed < PACK_MAX_DOCS as usize;
    if work.packed > 0 && drained {
        // The packed documents' rows and GIN entries are dead now: VACUUM (which also empties
        // the pending list) makes their pages free for the next writes, so the fresh tier stays
        // the size of a round's documents instead of growing until autovacuum comes by. Not
        // while a backlog is packed (after an upgrade, or a pause): each VACUUM reads the whole
        // tier, so it waits for the round that empties it.
        diesel::sql_query("VACUUM item_docs").execute(c)?;
    }
    loop {
        let merged = c.transaction(|c| if lock(c)? { merge(c) } else { Ok(0) })?;
        if merged == 0 {
            break;
        }
        work.merged += merged;
    }
    if collect_garbage {
        work.collected = c.transaction(|c| if lock(c)? { collect(c) } else { Ok(0) })?;
        // GIN never frees its entry tree's keys: the fresh tier's index would keep an entry for
        // every item hash ever written (~30 bytes each) though its documents last a round.
        // Rebuilt, it holds only those of the documents still fresh (without blocking writes).
        // Best effort: a role that does not own the index leaves it as it is. Not while a
        // backlog is packed (as for VACUUM above).
        if drained {
            let rebuilt =
                diesel::sql_query("REINDEX INDEX CONCURRENTLY item_docs_by_item").execute(c);
            if let Err(e) = rebuilt {
                tracing::debug!("the fresh item index was not rebuilt: {e}");
            }
        }
    }
    Ok(work)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_a_fanout_apart() {
        assert_eq!(class(0), 0);
        assert_eq!(class(7), 0);
        assert_eq!(class(8), 1);
        assert_eq!(class(600), 3);
        assert_eq!(class(4_800), 4);
        assert_eq!(first_slot(3), 3 << 20);
    }

    #[test]
    fn the_lookup_finds_buckets_the_way_they_are_written() {
        // The SQL spells out the slot layout; it must be the one `first_slot` and `bucket` use.
        assert!(LOOKUP_SQL.contains(&format!("(b.batch << {})", postings::MAX_BITS)));
        assert!(LOOKUP_SQL.contains("($2::bigint >> (32 - b.bits))"));
        let hash = 0xdead_beef_u32;
        let bits = 7;
        assert_eq!(
            first_slot(5) | i64::from(postings::bucket(hash, bits)),
            (5 << 20) | (i64::from(hash) >> (32 - bits))
        );
    }
}
