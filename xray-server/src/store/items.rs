//! The item index: which steps kept samples of an item (`GET /items/{item}`), one backend's
//! index each. It answers candidates only; checking them against the samples is the reader's.
//!
//! Each step that keeps samples gets one *document* listing its kept items' 32-bit hashes
//! ([`packed::key`]), numbered by `steps.item_doc`, in the backend's own inverted index: an FTS5
//! table on SQLite (`item_fts`), a GIN-indexed array on PostgreSQL (`item_docs`), which the
//! maintainer then packs into compressed posting lists ([`item_batches`]). Both take a
//! write as appends and merge them into the index in sorted batches later, where one B-tree entry
//! per kept sample (the first form, `item_index`, still read for rows written before) cost a
//! random page per entry. A lookup finds the documents that hold the item's hash; the caller then
//! reads those steps' samples and keeps only those whose item id really matches, so a colliding
//! hash costs a little reading, never a wrong answer.

use super::backend::ROWS_PER_STATEMENT;
use super::item_batches;
use super::packed;
use crate::schema::{item_docs, item_fts, steps};
use diesel::dsl::sql;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use diesel::sqlite::SqliteConnection;

/// Documents per INSERT statement (two binds each).
const DOCS_PER_INSERT: usize = 500;

/// The kept items of one step, as sorted, distinct hashes ([`packed::key`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepItems {
    /// The step.
    pub step_id: String,
    /// Its kept items' hashes.
    pub keys: Vec<i64>,
}

/// One SQLite document: the step's number and its items as tokens.
#[derive(Insertable)]
#[diesel(table_name = item_fts)]
struct FtsDoc {
    rowid: i64,
    items: String,
}

/// One PostgreSQL document: the step's number and its items' hashes.
#[derive(Insertable)]
#[diesel(table_name = item_docs)]
struct GinDoc {
    doc: i64,
    items: Vec<i32>,
}

/// The token of an item hash in SQLite's full-text index: `k` and 8 hex digits.
pub fn token(key: i64) -> String {
    format!("k{key:08x}")
}

/// An item hash as PostgreSQL's `INTEGER` (the same 32 bits).
fn int4(key: i64) -> i32 {
    key as u32 as i32
}

/// A number read back from a query.
#[derive(QueryableByName)]
struct Number {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The item index of one backend (see the module docs).
pub(super) trait ItemDocs {
    /// `n` document numbers never handed out before (none may be reused: a number names one
    /// step's document for good). Runs inside the write's transaction.
    fn new_doc_numbers(&mut self, n: usize) -> QueryResult<Vec<i64>>;

    /// Stores the documents of steps this write inserted: (number, the step's kept items).
    fn add_docs(&mut self, docs: &[(i64, &StepItems)]) -> QueryResult<()>;

    /// The numbers of the documents that hold `item`'s hash.
    fn docs_with_item(&mut self, item: &str) -> QueryResult<Vec<i64>>;

    /// Deletes the documents of the steps of runs `ids`; runs inside the delete's transaction,
    /// before the steps go. Returns how many went.
    fn remove_docs(&mut self, ids: &[String]) -> QueryResult<usize>;
}

/// The document numbers of the steps of runs, for each backend.
trait DocsOfRuns {
    /// The document numbers of the steps of runs `ids`.
    fn docs_of_runs(&mut self, ids: &[String]) -> QueryResult<Vec<i64>>;
}

for_both_backends! {
    impl DocsOfRuns {
        fn docs_of_runs(&mut self, ids: &[String]) -> QueryResult<Vec<i64>> {
            let mut docs: Vec<i64> = Vec::new();
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                docs.extend(
                    steps::table
                        .filter(steps::run_id.eq_any(chunk))
                        .filter(steps::item_doc.is_not_null())
                        .select(steps::item_doc)
                        .load::<Option<i64>>(self)?
                        .into_iter()
                        .flatten(),
                );
            }
            Ok(docs)
        }
    }
}

impl ItemDocs for SqliteConnection {
    fn new_doc_numbers(&mut self, n: usize) -> QueryResult<Vec<i64>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        // A counter that only goes up (`migrations_sqlite`): a number taken from the largest
        // stored one could come back after its step was deleted some other way, and FTS5 would
        // then merge the two documents without a word.
        let last: Number =
            diesel::sql_query("UPDATE item_doc_seq SET last = last + ? RETURNING last AS n")
                .bind::<BigInt, _>(n)
                .get_result(self)?;
        Ok((last.n - n + 1..=last.n).collect())
    }

    fn add_docs(&mut self, docs: &[(i64, &StepItems)]) -> QueryResult<()> {
        let rows: Vec<FtsDoc> = docs
            .iter()
            .map(|(doc, it)| {
                let mut text = String::with_capacity(it.keys.len() * 10);
                for k in &it.keys {
                    if !text.is_empty() {
                        text.push(' ');
                    }
                    text.push_str(&token(*k));
                }
                FtsDoc {
                    rowid: *doc,
                    items: text,
                }
            })
            .collect();
        for chunk in rows.chunks(DOCS_PER_INSERT) {
            diesel::insert_into(item_fts::table)
                .values(chunk)
                .execute(self)?;
        }
        Ok(())
    }

    fn docs_with_item(&mut self, item: &str) -> QueryResult<Vec<i64>> {
        // A quoted string: the token is one term whatever FTS5's query syntax makes of it.
        let phrase = format!("\"{}\"", token(packed::key(item)));
        item_fts::table
            .filter(sql::<Bool>("item_fts MATCH ").bind::<Text, _>(phrase))
            .select(item_fts::rowid)
            .load(self)
    }

    fn remove_docs(&mut self, ids: &[String]) -> QueryResult<usize> {
        let mut n = 0;
        for chunk in self.docs_of_runs(ids)?.chunks(ROWS_PER_STATEMENT) {
            n += diesel::delete(item_fts::table.filter(item_fts::rowid.eq_any(chunk)))
                .execute(self)?;
        }
        Ok(n)
    }
}

impl ItemDocs for PgConnection {
    fn new_doc_numbers(&mut self, n: usize) -> QueryResult<Vec<i64>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<Number> =
            diesel::sql_query("SELECT nextval('item_doc_seq') AS n FROM generate_series(1, $1)")
                .bind::<BigInt, _>(i64::try_from(n).unwrap_or(i64::MAX))
                .load(self)?;
        Ok(rows.into_iter().map(|r| r.n).collect())
    }

    fn add_docs(&mut self, docs: &[(i64, &StepItems)]) -> QueryResult<()> {
        let rows: Vec<GinDoc> = docs
            .iter()
            .map(|(doc, it)| GinDoc {
                doc: *doc,
                items: it.keys.iter().map(|k| int4(*k)).collect(),
            })
            .collect();
        for chunk in rows.chunks(DOCS_PER_INSERT) {
            diesel::insert_into(item_docs::table)
                .values(chunk)
                .execute(self)?;
        }
        Ok(())
    }

    fn docs_with_item(&mut self, item: &str) -> QueryResult<Vec<i64>> {
        item_batches::docs_with(self, packed::key(item) as u32)
    }

    fn remove_docs(&mut self, ids: &[String]) -> QueryResult<usize> {
        // The fresh tier only: postings already packed stay until the maintainer collects their
        // batch (`item_batches`), naming steps no longer stored, which lookups skip.
        let mut n = 0;
        for chunk in self.docs_of_runs(ids)?.chunks(ROWS_PER_STATEMENT) {
            n += diesel::delete(item_docs::table.filter(item_docs::doc.eq_any(chunk)))
                .execute(self)?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_one_fixed_width_word() {
        assert_eq!(token(0), "k00000000");
        assert_eq!(token(0xffff_ffff), "kffffffff");
        assert_eq!(token(packed::key("sku-1")).len(), 9);
    }

    #[test]
    fn hashes_keep_their_32_bits_as_int4() {
        assert_eq!(int4(0xffff_ffff), -1);
        assert_eq!(int4(0x7fff_ffff), i32::MAX);
        assert_eq!(int4(5), 5);
    }
}
