//! The store: every read and write the API needs, on SQLite or PostgreSQL.
//!
//! The queries are written once with diesel's DSL inside [`impl_backend!`], which compiles them
//! for each backend's connection type; [`Store`] picks the pool and hands out a connection.
//! All calls block: the HTTP layer runs them on actix's blocking thread pool.

pub mod filter;
mod group_commit;
pub mod items;
pub mod packed;
pub mod rows;

use crate::db::{DatabaseUrl, Db, DbError};
use crate::schema::{item_index, runs, samples, step_reasons, steps};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use diesel::upsert::excluded;
use filter::{Cursor, RunFilter, StepFilter};
use items::{ItemDocs, StepItems};
use packed::PackedReasonRow;
use rows::{ReasonRow, RunRow, SampleRow, StepRow, WriteSet, REJECTED};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;
use xray_wire::{
    ItemEvent, ItemFate, ItemHistory, ItemId, JsonText, Outcome, RunDetail, RunList, StepList,
};

/// Rows per INSERT statement, well inside both backends' bind-parameter limits.
const ROWS_PER_INSERT: usize = 1000;
/// Step rows per INSERT (22 columns each).
const STEPS_PER_INSERT: usize = 500;

/// A failed read or write.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No connection could be had in time.
    #[error("the database is busy or unreachable: {0}")]
    Unavailable(#[from] diesel::r2d2::PoolError),
    /// A statement failed.
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    /// The database did not let a write begin in time (another writer held it past the busy
    /// timeout); nothing was written.
    #[error("the database is busy: {0}")]
    Busy(String),
    /// A step sent for one run has the id of a step of another run (step ids are unique across
    /// runs); nothing of the request is written.
    #[error("step_id `{step_id}` (of run `{run_id}`) is already the id of a step of run `{owner}`; step ids must be unique across runs")]
    StepOfAnotherRun {
        /// The step id.
        step_id: String,
        /// The run the request sent it for.
        run_id: String,
        /// The run that has it.
        owner: String,
    },
    /// Stored samples could not be unpacked.
    #[error(transparent)]
    Corrupt(#[from] packed::CorruptSamples),
}

/// The data one run view needs (counts with packed samples, and samples stored unpacked).
type RunParts = (RunRow, Vec<StepRow>, Vec<PackedReasonRow>, Vec<SampleRow>);
/// Kept events about an item with their steps, the steps that selected it, and the steps the item
/// index names with their packed samples (to be checked for the item).
type ItemParts = (
    Vec<(SampleRow, StepRow)>,
    Vec<StepRow>,
    Vec<StepRow>,
    Vec<PackedReasonRow>,
);
/// A run's steps, the samples about an item stored unpacked, and the run's packed samples.
type ItemInRun = (Vec<StepRow>, Vec<SampleRow>, Vec<PackedReasonRow>);
/// What a write stores besides the rows of its [`WriteSet`].
type Packed = (Vec<PackedReasonRow>, Vec<StepItems>);

/// The item documents a write owes the index: (number, the step's kept items) of each step it
/// inserted. Added last, so a group commit adds all its requests' documents at once (FTS5 writes
/// a segment for every savepoint that added any).
type NewDocs<'p> = Vec<(i64, &'p StepItems)>;

/// The queries, implemented for each backend's connection by [`impl_backend!`].
trait Backend {
    fn write(&mut self, set: &WriteSet, packed: &Packed) -> Result<(), StoreError>;
    /// [`Backend::write`] inside a transaction the caller opened, but for the item documents:
    /// the caller adds them.
    fn write_rows<'p>(
        &mut self,
        set: &WriteSet,
        packed: &'p Packed,
    ) -> Result<NewDocs<'p>, StoreError>;
    fn list_runs(&mut self, f: &RunFilter) -> QueryResult<Vec<RunRow>>;
    fn run_parts(&mut self, run_id: &str) -> QueryResult<Option<RunParts>>;
    fn search_steps(&mut self, f: &StepFilter) -> QueryResult<(Vec<StepRow>, Vec<ReasonRow>)>;
    fn item_in_run(&mut self, run_id: &str, item: &str) -> QueryResult<Option<ItemInRun>>;
    fn item_across_runs(
        &mut self,
        item: &str,
        pipeline: Option<&str>,
        limit: i64,
    ) -> QueryResult<ItemParts>;
    fn ping(&mut self) -> QueryResult<()>;
    fn pipelines(&mut self) -> QueryResult<Vec<String>>;
    fn expired_runs(
        &mut self,
        pipeline: &str,
        older_than: Option<i64>,
        keep_newest: Option<i64>,
        batch: i64,
    ) -> QueryResult<Vec<String>>;
    fn delete_runs(&mut self, ids: &[String]) -> Result<(usize, usize, usize), StoreError>;
}

macro_rules! impl_backend {
    ($conn:ty, $write_tx:ident) => {
        impl Backend for $conn {
            fn write(&mut self, set: &WriteSet, packed: &Packed) -> Result<(), StoreError> {
                self.$write_tx::<_, StoreError, _>(|c| {
                    let docs = c.write_rows(set, packed)?;
                    Ok(c.add_docs(&docs)?)
                })
            }

            fn write_rows<'p>(
                &mut self,
                set: &WriteSet,
                packed: &'p Packed,
            ) -> Result<NewDocs<'p>, StoreError> {
                let c = self;
                {
                    for chunk in set.runs_complete.chunks(ROWS_PER_INSERT) {
                        diesel::insert_into(runs::table)
                            .values(chunk)
                            .on_conflict(runs::run_id)
                            .do_update()
                            .set((
                                runs::pipeline.eq(excluded(runs::pipeline)),
                                runs::status.eq(excluded(runs::status)),
                                runs::input.eq(excluded(runs::input)),
                                runs::output.eq(excluded(runs::output)),
                                runs::error.eq(excluded(runs::error)),
                                runs::metadata.eq(excluded(runs::metadata)),
                                runs::started_at.eq(excluded(runs::started_at)),
                                runs::ended_at.eq(excluded(runs::ended_at)),
                                runs::duration_ms.eq(excluded(runs::duration_ms)),
                                runs::correlation_id.eq(excluded(runs::correlation_id)),
                                runs::trace_id.eq(excluded(runs::trace_id)),
                                runs::traceparent.eq(excluded(runs::traceparent)),
                            ))
                            .execute(c)?;
                    }
                    for chunk in set.runs_started.chunks(ROWS_PER_INSERT) {
                        diesel::insert_into(runs::table)
                            .values(chunk)
                            .on_conflict(runs::run_id)
                            .do_update()
                            .set((
                                runs::pipeline.eq(excluded(runs::pipeline)),
                                runs::input.eq(excluded(runs::input)),
                                runs::metadata.eq(excluded(runs::metadata)),
                                runs::started_at.eq(excluded(runs::started_at)),
                                runs::correlation_id.eq(excluded(runs::correlation_id)),
                                runs::trace_id.eq(excluded(runs::trace_id)),
                                runs::traceparent.eq(excluded(runs::traceparent)),
                            ))
                            .execute(c)?;
                    }
                    for chunk in set.runs_finished.chunks(ROWS_PER_INSERT) {
                        diesel::insert_into(runs::table)
                            .values(chunk)
                            .on_conflict(runs::run_id)
                            .do_update()
                            .set((
                                runs::status.eq(excluded(runs::status)),
                                runs::output.eq(excluded(runs::output)),
                                runs::error.eq(excluded(runs::error)),
                                runs::ended_at.eq(excluded(runs::ended_at)),
                                runs::duration_ms.eq(excluded(runs::duration_ms)),
                            ))
                            .execute(c)?;
                    }
                    for chunk in set.runs_placeholder.chunks(ROWS_PER_INSERT) {
                        diesel::insert_into(runs::table)
                            .values(chunk)
                            .on_conflict_do_nothing()
                            .execute(c)?;
                    }
                    // Steps that kept samples get their item document's number as they are
                    // inserted; a step already stored keeps its own (and its document).
                    let (reasons, items) = packed;
                    let kept: HashMap<&str, &StepItems> =
                        items.iter().map(|i| (i.step_id.as_str(), i)).collect();
                    let wanted_docs = set
                        .steps
                        .iter()
                        .filter(|s| kept.contains_key(s.step_id.as_str()))
                        .count();
                    let mut numbers = c.new_doc_numbers(wanted_docs)?.into_iter();
                    let rows: Vec<(&StepRow, Option<i64>)> = set
                        .steps
                        .iter()
                        .map(|s| {
                            let doc = if kept.contains_key(s.step_id.as_str()) {
                                numbers.next()
                            } else {
                                None
                            };
                            (s, doc)
                        })
                        .collect();
                    // Each insert answers which steps it stored, with their numbers; only a
                    // step it skipped (stored before, or twice in this write) is read back.
                    let mut new_docs: Vec<(i64, &StepItems)> = Vec::new();
                    let mut inserted: HashSet<String> = HashSet::with_capacity(rows.len());
                    for chunk in rows.chunks(STEPS_PER_INSERT) {
                        let values: Vec<_> = chunk
                            .iter()
                            .map(|(s, doc)| (*s, steps::item_doc.eq(*doc)))
                            .collect();
                        let stored: Vec<(String, Option<i64>)> = diesel::insert_into(steps::table)
                            .values(values)
                            // Only a stored step id is skipped: any other conflict (a document
                            // number taken, which cannot happen while numbers only go up) fails
                            // the write rather than drop a step without a word.
                            .on_conflict(steps::step_id)
                            .do_nothing()
                            .returning((steps::step_id, steps::item_doc))
                            .get_results(c)?;
                        for (step_id, doc) in stored {
                            if let (Some(d), Some(it)) = (doc, kept.get(step_id.as_str())) {
                                new_docs.push((d, it));
                            }
                            inserted.insert(step_id);
                        }
                    }
                    // A step id already stored (or sent twice) for another run would have been
                    // skipped above, and its counts and samples added to that run's step: refuse.
                    let wanted: HashMap<&str, &str> = set
                        .steps
                        .iter()
                        .map(|s| (s.step_id.as_str(), s.run_id.as_str()))
                        .collect();
                    let skipped: Vec<&str> = set
                        .steps
                        .iter()
                        .map(|s| s.step_id.as_str())
                        .filter(|id| !inserted.contains(*id))
                        .collect();
                    for chunk in skipped.chunks(ROWS_PER_INSERT) {
                        let owners: Vec<(String, String)> = steps::table
                            .filter(steps::step_id.eq_any(chunk))
                            .select((steps::step_id, steps::run_id))
                            .load(c)?;
                        // Skipped yet not there: deleted (retention) between the two statements.
                        // Not stored, so not acknowledged; a retry stores it.
                        if let Some(gone) = chunk
                            .iter()
                            .find(|id| !owners.iter().any(|(o, _)| o.as_str() == **id))
                        {
                            return Err(StoreError::Busy(format!(
                                "step `{gone}` was deleted while this request wrote it; send it again"
                            )));
                        }
                        for (step_id, owner) in owners {
                            let run_id = wanted.get(step_id.as_str()).copied().unwrap_or_default();
                            if owner != run_id {
                                return Err(StoreError::StepOfAnotherRun {
                                    run_id: run_id.to_string(),
                                    step_id,
                                    owner,
                                });
                            }
                        }
                    }
                    let conflicting = set
                        .steps
                        .iter()
                        .find(|s| wanted.get(s.step_id.as_str()) != Some(&s.run_id.as_str()));
                    if let Some(step) = conflicting {
                        return Err(StoreError::StepOfAnotherRun {
                            step_id: step.step_id.clone(),
                            run_id: step.run_id.clone(),
                            owner: wanted[step.step_id.as_str()].to_string(),
                        });
                    }
                    for chunk in reasons.chunks(ROWS_PER_INSERT) {
                        diesel::insert_into(step_reasons::table)
                            .values(chunk)
                            .on_conflict_do_nothing()
                            .execute(c)?;
                    }
                    Ok(new_docs)
                }
            }

            fn list_runs(&mut self, f: &RunFilter) -> QueryResult<Vec<RunRow>> {
                let mut q = runs::table.select(RunRow::as_select()).into_boxed();
                if let Some(p) = &f.pipeline {
                    q = q.filter(runs::pipeline.eq(p));
                }
                if let Some(s) = f.status {
                    q = q.filter(runs::status.eq(s.as_str()));
                }
                if let Some(id) = &f.correlation_id {
                    q = q.filter(runs::correlation_id.eq(id));
                }
                if let Some(id) = &f.trace_id {
                    q = q.filter(runs::trace_id.eq(id));
                }
                if let Some(t) = f.since {
                    q = q.filter(runs::started_at.ge(t));
                }
                if let Some(t) = f.until {
                    q = q.filter(runs::started_at.lt(t));
                }
                if let Some(Cursor { at, id }) = &f.cursor {
                    q = q.filter(
                        runs::started_at
                            .lt(*at)
                            .or(runs::started_at.eq(*at).and(runs::run_id.lt(id))),
                    );
                }
                q.order((runs::started_at.desc(), runs::run_id.desc()))
                    .limit(f.limit + 1)
                    .load(self)
            }

            fn run_parts(&mut self, run_id: &str) -> QueryResult<Option<RunParts>> {
                let Some(run) = runs::table
                    .find(run_id)
                    .select(RunRow::as_select())
                    .first(self)
                    .optional()?
                else {
                    return Ok(None);
                };
                let steps: Vec<StepRow> = steps::table
                    .filter(steps::run_id.eq(run_id))
                    .order((steps::position, steps::started_at, steps::step_id))
                    .select(StepRow::as_select())
                    .load(self)?;
                // A subquery, not a list of ids: a run may have more steps than SQLite takes
                // bind parameters.
                let run_steps = steps::table
                    .filter(steps::run_id.eq(run_id))
                    .select(steps::step_id);
                let reasons = step_reasons::table
                    .filter(step_reasons::step_id.eq_any(run_steps))
                    .select(PackedReasonRow::as_select())
                    .load(self)?;
                let samples = samples::table
                    .filter(samples::run_id.eq(run_id))
                    .order((
                        samples::step_id,
                        samples::outcome,
                        samples::reason,
                        samples::seq,
                    ))
                    .select(SampleRow::as_select())
                    .load(self)?;
                Ok(Some((run, steps, reasons, samples)))
            }

            fn search_steps(
                &mut self,
                f: &StepFilter,
            ) -> QueryResult<(Vec<StepRow>, Vec<ReasonRow>)> {
                let mut q = steps::table.select(StepRow::as_select()).into_boxed();
                if let Some(t) = f.step_type {
                    q = q.filter(steps::step_type.eq(t.as_str()));
                }
                if let Some(n) = &f.name {
                    q = q.filter(steps::name.eq(n));
                }
                if let Some(p) = &f.pipeline {
                    q = q.filter(steps::pipeline.eq(p));
                }
                if let Some(v) = f.rejection_rate_gt {
                    q = q.filter(steps::rejection_rate.gt(v));
                }
                if let Some(v) = f.rejection_rate_lt {
                    q = q.filter(steps::rejection_rate.lt(v));
                }
                if let Some(v) = f.duration_gt {
                    q = q.filter(steps::duration_ms.gt(v));
                }
                if let Some(v) = f.duration_lt {
                    q = q.filter(steps::duration_ms.lt(v));
                }
                if let Some(v) = f.score_gt {
                    q = q.filter(steps::decision_score.gt(v));
                }
                if let Some(v) = f.score_lt {
                    q = q.filter(steps::decision_score.lt(v));
                }
                if let Some(t) = f.since {
                    q = q.filter(steps::started_at.ge(t));
                }
                if let Some(t) = f.until {
                    q = q.filter(steps::started_at.lt(t));
                }
                if let Some(Cursor { at, id }) = &f.cursor {
                    q = q.filter(
                        steps::started_at
                            .lt(*at)
                            .or(steps::started_at.eq(*at).and(steps::step_id.lt(id))),
                    );
                }
                let found: Vec<StepRow> = q
                    .order((steps::started_at.desc(), steps::step_id.desc()))
                    .limit(f.limit + 1)
                    .load(self)?;
                let ids: Vec<&str> = found.iter().map(|s| s.step_id.as_str()).collect();
                let reasons = step_reasons::table
                    .filter(step_reasons::step_id.eq_any(&ids))
                    .filter(step_reasons::outcome.eq(REJECTED))
                    .select(ReasonRow::as_select())
                    .load(self)?;
                Ok((found, reasons))
            }

            fn item_in_run(&mut self, run_id: &str, item: &str) -> QueryResult<Option<ItemInRun>> {
                let exists = runs::table
                    .find(run_id)
                    .select(runs::run_id)
                    .first::<String>(self)
                    .optional()?;
                if exists.is_none() {
                    return Ok(None);
                }
                let steps = steps::table
                    .filter(steps::run_id.eq(run_id))
                    .order((steps::position, steps::started_at, steps::step_id))
                    .select(StepRow::as_select())
                    .load(self)?;
                let samples = samples::table
                    .filter(samples::run_id.eq(run_id))
                    .filter(samples::item_id.eq(item))
                    .order((
                        samples::step_id,
                        samples::outcome,
                        samples::reason,
                        samples::seq,
                    ))
                    .select(SampleRow::as_select())
                    .load(self)?;
                let run_steps = steps::table
                    .filter(steps::run_id.eq(run_id))
                    .select(steps::step_id);
                let packed = step_reasons::table
                    .filter(step_reasons::step_id.eq_any(run_steps))
                    .filter(step_reasons::samples.is_not_null())
                    .select(PackedReasonRow::as_select())
                    .load(self)?;
                Ok(Some((steps, samples, packed)))
            }

            fn item_across_runs(
                &mut self,
                item: &str,
                pipeline: Option<&str>,
                limit: i64,
            ) -> QueryResult<ItemParts> {
                let mut q = samples::table
                    .inner_join(steps::table)
                    .filter(samples::item_id.eq(item))
                    .select((SampleRow::as_select(), StepRow::as_select()))
                    .into_boxed();
                let mut sel = steps::table
                    .filter(steps::decision_selected.eq(item))
                    .select(StepRow::as_select())
                    .into_boxed();
                if let Some(p) = pipeline {
                    q = q.filter(steps::pipeline.eq(p));
                    sel = sel.filter(steps::pipeline.eq(p));
                }
                let events = q
                    .order((steps::started_at.desc(), steps::step_id.desc()))
                    .limit(limit)
                    .load(self)?;
                let selected = sel
                    .order((steps::started_at.desc(), steps::step_id.desc()))
                    .limit(limit)
                    .load(self)?;
                // Packed samples: the steps the item index names, newest first. A colliding hash
                // may name a step that did not keep the item; a few more than `limit` are read
                // so that such a step rarely shortens the answer. Steps written before the item
                // documents are named by the first index, `item_index`.
                let wanted = limit.saturating_add(16);
                // The documents first, then their steps by an explicit list of numbers: both
                // planners then know how few steps that is (as a subquery, PostgreSQL guessed
                // 0.5% of all documents and could scan `steps`; SQLite, given a pipeline,
                // walked the pipeline's steps instead).
                let docs = self.docs_with_item(item)?;
                let mut named: Vec<StepRow> = Vec::new();
                for chunk in docs.chunks(ROWS_PER_INSERT) {
                    let chunk: Vec<Option<i64>> = chunk.iter().map(|d| Some(*d)).collect();
                    let mut q = steps::table
                        .filter(steps::item_doc.eq_any(chunk))
                        .select(StepRow::as_select())
                        .into_boxed();
                    if let Some(p) = pipeline {
                        q = q.filter(steps::pipeline.eq(p));
                    }
                    named.extend(
                        q.order((steps::started_at.desc(), steps::step_id.desc()))
                            .limit(wanted)
                            .load::<StepRow>(self)?,
                    );
                }
                if docs.len() > ROWS_PER_INSERT {
                    named.sort_by(|a, b| {
                        (b.started_at, &b.step_id).cmp(&(a.started_at, &a.step_id))
                    });
                    named.truncate(usize::try_from(wanted).unwrap_or(usize::MAX));
                }
                let (lo, hi) = packed::entry_range(item);
                let keys = item_index::table
                    .filter(item_index::entry.between(lo, hi))
                    .select((item_index::entry - lo).nullable());
                let mut cand = steps::table
                    .filter(steps::step_key.eq_any(keys))
                    .select(StepRow::as_select())
                    .into_boxed();
                if let Some(p) = pipeline {
                    cand = cand.filter(steps::pipeline.eq(p));
                }
                let legacy: Vec<StepRow> = cand
                    .order((steps::started_at.desc(), steps::step_id.desc()))
                    .limit(wanted)
                    .load(self)?;
                if !legacy.is_empty() {
                    let seen: std::collections::HashSet<String> =
                        named.iter().map(|s| s.step_id.clone()).collect();
                    named.extend(legacy.into_iter().filter(|s| !seen.contains(&s.step_id)));
                    named.sort_by(|a, b| {
                        (b.started_at, &b.step_id).cmp(&(a.started_at, &a.step_id))
                    });
                    named.truncate(usize::try_from(wanted).unwrap_or(usize::MAX));
                }
                let ids: Vec<&str> = named.iter().map(|s| s.step_id.as_str()).collect();
                let packed = step_reasons::table
                    .filter(step_reasons::step_id.eq_any(&ids))
                    .filter(step_reasons::samples.is_not_null())
                    .select(PackedReasonRow::as_select())
                    .load(self)?;
                Ok((events, selected, named, packed))
            }

            fn pipelines(&mut self) -> QueryResult<Vec<String>> {
                runs::table.select(runs::pipeline).distinct().load(self)
            }

            fn expired_runs(
                &mut self,
                pipeline: &str,
                older_than: Option<i64>,
                keep_newest: Option<i64>,
                batch: i64,
            ) -> QueryResult<Vec<String>> {
                let mut ids: Vec<String> = Vec::new();
                if let Some(cutoff) = older_than {
                    ids = runs::table
                        .filter(runs::pipeline.eq(pipeline))
                        .filter(runs::started_at.lt(cutoff))
                        .order((runs::started_at.asc(), runs::run_id.asc()))
                        .select(runs::run_id)
                        .limit(batch)
                        .load(self)?;
                }
                if let (Some(keep), true) = (keep_newest, (ids.len() as i64) < batch) {
                    // The newest run that falls off the end; it and everything older go.
                    let boundary: Option<(i64, String)> = runs::table
                        .filter(runs::pipeline.eq(pipeline))
                        .order((runs::started_at.desc(), runs::run_id.desc()))
                        .select((runs::started_at, runs::run_id))
                        .offset(keep)
                        .first(self)
                        .optional()?;
                    if let Some((at, id)) = boundary {
                        let more: Vec<String> = runs::table
                            .filter(runs::pipeline.eq(pipeline))
                            .filter(
                                runs::started_at
                                    .lt(at)
                                    .or(runs::started_at.eq(at).and(runs::run_id.le(&id))),
                            )
                            .order((runs::started_at.asc(), runs::run_id.asc()))
                            .select(runs::run_id)
                            .limit(batch)
                            .load(self)?;
                        for id in more {
                            if !ids.contains(&id) && (ids.len() as i64) < batch {
                                ids.push(id);
                            }
                        }
                    }
                }
                Ok(ids)
            }

            fn delete_runs(&mut self, ids: &[String]) -> Result<(usize, usize, usize), StoreError> {
                self.$write_tx::<_, StoreError, _>(|c| {
                    c.remove_docs(ids)?;
                    let doomed = steps::table
                        .filter(steps::run_id.eq_any(ids))
                        .select(steps::step_id);
                    // The first item index's entries of the packed samples that go (steps written
                    // before the item documents have a step key): unpack them to learn their
                    // items (and count them).
                    let keys: HashMap<String, Option<i64>> = steps::table
                        .filter(steps::run_id.eq_any(ids))
                        .select((steps::step_id, steps::step_key))
                        .load::<(String, Option<i64>)>(c)?
                        .into_iter()
                        .collect();
                    let packed_rows: Vec<PackedReasonRow> = step_reasons::table
                        .filter(step_reasons::step_id.eq_any(doomed))
                        .filter(step_reasons::samples.is_not_null())
                        .select(PackedReasonRow::as_select())
                        .load(c)?;
                    let mut entries = std::collections::BTreeSet::new();
                    let mut unpacked = Vec::new();
                    let mut packed_samples = 0;
                    for r in &packed_rows {
                        unpacked.clear();
                        packed::unpack(r, "", &mut unpacked)?;
                        packed_samples += unpacked.len();
                        if let Some(Some(k)) = keys.get(&r.step_id) {
                            entries.extend(unpacked.iter().map(|s| packed::entry(&s.item_id, *k)));
                        }
                    }
                    // An entry is shared by every step with the same 32-bit key: keep those
                    // whose key a surviving step also has.
                    let doomed_keys: Vec<i64> = keys.values().flatten().copied().collect();
                    let mut shared = std::collections::HashSet::new();
                    for chunk in doomed_keys.chunks(ROWS_PER_INSERT) {
                        shared.extend(
                            steps::table
                                .filter(steps::step_key.eq_any(chunk))
                                .filter(steps::run_id.ne_all(ids))
                                .select(steps::step_key)
                                .load::<Option<i64>>(c)?
                                .into_iter()
                                .flatten(),
                        );
                    }
                    let gone: Vec<i64> = entries
                        .into_iter()
                        .filter(|e| !shared.contains(&(e & 0xffff_ffff)))
                        .collect();
                    for chunk in gone.chunks(ROWS_PER_INSERT) {
                        diesel::delete(item_index::table.filter(item_index::entry.eq_any(chunk)))
                            .execute(c)?;
                    }
                    let samples =
                        diesel::delete(samples::table.filter(samples::run_id.eq_any(ids)))
                            .execute(c)?;
                    diesel::delete(
                        step_reasons::table.filter(
                            step_reasons::step_id.eq_any(
                                steps::table
                                    .filter(steps::run_id.eq_any(ids))
                                    .select(steps::step_id),
                            ),
                        ),
                    )
                    .execute(c)?;
                    let steps = diesel::delete(steps::table.filter(steps::run_id.eq_any(ids)))
                        .execute(c)?;
                    let runs =
                        diesel::delete(runs::table.filter(runs::run_id.eq_any(ids))).execute(c)?;
                    Ok((runs, steps, samples + packed_samples))
                })
            }

            fn ping(&mut self) -> QueryResult<()> {
                diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>("1"))
                    .execute(self)
                    .map(|_| ())
            }
        }
    };
}

impl_backend!(SqliteConnection, immediate_transaction);
impl_backend!(PgConnection, transaction);

/// Runs `$body` with `$c` bound to a pooled connection of whichever backend `$db` is.
macro_rules! with_conn {
    ($db:expr, $c:ident => $body:expr) => {
        match $db {
            Db::Sqlite(pool) => {
                let mut conn = pool.get()?;
                let $c: &mut SqliteConnection = &mut conn;
                $body
            }
            Db::Postgres(pool) => {
                let mut conn = pool.get()?;
                let $c: &mut PgConnection = &mut conn;
                $body
            }
        }
    };
}

pub mod alerts;

/// The server's access to stored runs; cheap to clone (it is a pool handle).
#[derive(Clone)]
pub struct Store {
    db: Db,
    /// SQLite has one writer at a time: writers queue here rather than in SQLite's busy handler
    /// (whose sleep-and-retry left concurrent ingest requests idle for up to seconds), and those
    /// that queue are committed together.
    sqlite_writes: std::sync::Arc<group_commit::GroupCommit>,
}

impl Store {
    /// Connects to the database and brings its schema up to date.
    pub fn open(url: &DatabaseUrl, pool_size: u32) -> Result<Store, DbError> {
        Ok(Store {
            db: Db::connect(url, pool_size)?,
            sqlite_writes: Default::default(),
        })
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        self.db.backend()
    }

    /// The database's deferred work (see [`items::DbMaintainer`]): on PostgreSQL, moves what
    /// the item index holds in its pending list into the index proper (returns the pages
    /// emptied); on SQLite, checkpoints the WAL (returns the WAL's frames now in the database
    /// file: all of it when nothing held the checkpoint back). Waits at most a second for a
    /// connection.
    pub fn maintain(&self) -> Result<i64, StoreError> {
        const WAIT: Duration = Duration::from_secs(1);
        match &self.db {
            Db::Sqlite(pool) => Ok(items::checkpoint(&mut *pool.get_timeout(WAIT)?)?),
            Db::Postgres(pool) => Ok(items::clean_pending_list(&mut *pool.get_timeout(WAIT)?)?),
        }
    }

    /// Checks that the database answers, within a second: waits at most 800 ms for a
    /// connection, so that a health probe gets its answer (503 when unreachable) in time.
    pub fn ping(&self) -> Result<(), StoreError> {
        const WAIT: Duration = Duration::from_millis(800);
        match &self.db {
            Db::Sqlite(pool) => Ok(pool.get_timeout(WAIT)?.ping()?),
            Db::Postgres(pool) => Ok(pool.get_timeout(WAIT)?.ping()?),
        }
    }

    /// Every pipeline with stored runs.
    pub fn pipelines(&self) -> Result<Vec<String>, StoreError> {
        with_conn!(&self.db, c => Ok(c.pipelines()?))
    }

    /// Up to `batch` runs of `pipeline`, oldest first, that started before `older_than` (µs) or
    /// fall outside its `keep_newest` newest runs.
    pub fn expired_runs(
        &self,
        pipeline: &str,
        older_than: Option<i64>,
        keep_newest: Option<i64>,
        batch: i64,
    ) -> Result<Vec<String>, StoreError> {
        with_conn!(&self.db, c => Ok(c.expired_runs(pipeline, older_than, keep_newest, batch)?))
    }

    /// Deletes runs with their steps, counts and samples in one transaction: (runs, steps,
    /// samples) deleted.
    pub fn delete_runs(&self, ids: &[String]) -> Result<(usize, usize, usize), StoreError> {
        with_conn!(&self.db, c => c.delete_runs(ids))
    }

    /// Writes a validated set of rows in one transaction. Re-writing the same rows is a no-op.
    /// Kept samples are packed (see [`packed`]) before the transaction starts.
    pub fn write(&self, set: &WriteSet) -> Result<(), StoreError> {
        let packed = packed::pack_set(set);
        match &self.db {
            Db::Sqlite(pool) => self
                .sqlite_writes
                .write(group_commit::Job::new(set, packed), || Ok(pool.get()?)),
            Db::Postgres(pool) => pool.get()?.write(set, &packed),
        }
    }

    /// Runs, newest first.
    pub fn list_runs(&self, f: &RunFilter) -> Result<RunList, StoreError> {
        let mut rows = with_conn!(&self.db, c => c.list_runs(f)?);
        let next_cursor = page_cursor(&mut rows, f.limit, |r| Cursor {
            at: r.started_at,
            id: r.run_id.clone(),
        });
        Ok(RunList {
            runs: rows.into_iter().map(RunRow::into_summary).collect(),
            next_cursor,
        })
    }

    /// One run with all its steps, counts and samples; `None` if it is unknown.
    pub fn run_detail(&self, run_id: &str) -> Result<Option<RunDetail>, StoreError> {
        let Some((run, steps, packed_reasons, mut samples)) =
            with_conn!(&self.db, c => c.run_parts(run_id)?)
        else {
            return Ok(None);
        };
        let reasons = unpack_all(packed_reasons, run_id, &mut samples)?;
        let mut reasons_by_step: HashMap<String, Vec<ReasonRow>> = HashMap::new();
        for r in reasons {
            reasons_by_step
                .entry(r.step_id.clone())
                .or_default()
                .push(r);
        }
        let mut samples_by_step: HashMap<String, Vec<SampleRow>> = HashMap::new();
        for s in samples {
            samples_by_step
                .entry(s.step_id.clone())
                .or_default()
                .push(s);
        }
        let views = steps
            .into_iter()
            .map(|s| {
                let reasons = reasons_by_step.remove(&s.step_id).unwrap_or_default();
                let samples = samples_by_step.remove(&s.step_id).unwrap_or_default();
                s.into_view(&reasons, &samples)
            })
            .collect();
        let mut detail: RunDetail = run.into_summary();
        detail.steps = Some(views);
        Ok(Some(detail))
    }

    /// Steps across all runs, newest first.
    pub fn search_steps(&self, f: &StepFilter) -> Result<StepList, StoreError> {
        let (mut found, reasons) = with_conn!(&self.db, c => c.search_steps(f)?);
        let next_cursor = page_cursor(&mut found, f.limit, |s| Cursor {
            at: s.started_at,
            id: s.step_id.clone(),
        });
        Ok(StepList {
            steps: hits(found, reasons),
            next_cursor,
        })
    }

    /// Every recorded event about one item in one run; `None` if the run is unknown.
    pub fn item_fate(&self, run_id: &str, item: &str) -> Result<Option<ItemFate>, StoreError> {
        let Some((steps, mut samples, packed)) =
            with_conn!(&self.db, c => c.item_in_run(run_id, item)?)
        else {
            return Ok(None);
        };
        let mut unpacked = Vec::new();
        for r in &packed {
            packed::unpack(r, run_id, &mut unpacked)?;
        }
        samples.extend(unpacked.into_iter().filter(|s| s.item_id == item));
        let by_id: HashMap<&str, &StepRow> =
            steps.iter().map(|s| (s.step_id.as_str(), s)).collect();
        let mut events: Vec<ItemEvent> = samples
            .iter()
            .filter_map(|s| {
                by_id
                    .get(s.step_id.as_str())
                    .map(|step| sample_event(s, step))
            })
            .collect();
        events.extend(
            steps
                .iter()
                .filter(|s| s.decision_selected.as_deref() == Some(item))
                .map(selected_event),
        );
        events.sort_by_key(|e| (e.position, e.started_at, outcome_rank(e.outcome)));
        // Where the item may have been seen without being kept: sampled steps with events, none
        // of them kept about this item.
        let sampled_steps = steps
            .iter()
            .filter(|s| {
                s.capture() != xray_wire::Capture::Full
                    && s.rejected_count.saturating_add(s.accepted_count) > 0
                    && !events.iter().any(|e| e.step_id == s.step_id)
            })
            .map(|s| s.name.clone())
            .collect();
        Ok(Some(ItemFate {
            run_id: run_id.to_string(),
            item_id: ItemId(item.to_string()),
            events,
            sampled_steps,
        }))
    }

    /// Events about one item across runs, newest first, at most `limit`.
    pub fn item_history(
        &self,
        item: &str,
        pipeline: Option<&str>,
        limit: i64,
    ) -> Result<ItemHistory, StoreError> {
        let (pairs, selected, named, packed) =
            with_conn!(&self.db, c => c.item_across_runs(item, pipeline, limit)?);
        let by_id: HashMap<&str, &StepRow> =
            named.iter().map(|s| (s.step_id.as_str(), s)).collect();
        let mut unpacked = Vec::new();
        for r in &packed {
            let run_id = by_id
                .get(r.step_id.as_str())
                .map_or("", |s| s.run_id.as_str());
            packed::unpack(r, run_id, &mut unpacked)?;
        }
        let mut events: Vec<ItemEvent> = pairs
            .iter()
            .map(|(sample, step)| sample_event(sample, step))
            .chain(
                unpacked
                    .iter()
                    .filter(|s| s.item_id == item)
                    .filter_map(|s| by_id.get(s.step_id.as_str()).map(|st| sample_event(s, st))),
            )
            .chain(selected.iter().map(selected_event))
            .collect();
        events.sort_by(|a, b| {
            b.started_at
                .cmp(&a.started_at)
                .then_with(|| a.run_id.cmp(&b.run_id))
                .then_with(|| a.position.cmp(&b.position))
                .then_with(|| outcome_rank(a.outcome).cmp(&outcome_rank(b.outcome)))
        });
        events.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(ItemHistory {
            item_id: ItemId(item.to_string()),
            events,
        })
    }
}

/// Steps as search hits, each with its rejection counts from `reasons`.
fn hits(found: Vec<StepRow>, reasons: Vec<ReasonRow>) -> Vec<xray_wire::StepHit> {
    let mut by_step: HashMap<String, BTreeMap<String, u64>> = HashMap::new();
    for r in reasons {
        by_step
            .entry(r.step_id)
            .or_default()
            .insert(r.reason, u64::try_from(r.count).unwrap_or(0));
    }
    found
        .into_iter()
        .map(|s| {
            let rejections = by_step.remove(&s.step_id).unwrap_or_default();
            s.into_hit(rejections)
        })
        .collect()
}

/// Unpacks every packed row's samples into `samples`, returning the rows' counts.
fn unpack_all(
    packed_reasons: Vec<PackedReasonRow>,
    run_id: &str,
    samples: &mut Vec<SampleRow>,
) -> Result<Vec<ReasonRow>, StoreError> {
    let mut reasons = Vec::with_capacity(packed_reasons.len());
    for r in packed_reasons {
        packed::unpack(&r, run_id, samples)?;
        reasons.push(ReasonRow {
            step_id: r.step_id,
            outcome: r.outcome,
            reason: r.reason,
            count: r.count,
        });
    }
    Ok(reasons)
}

/// Drops the extra row fetched to learn whether another page exists, and names that page.
fn page_cursor<T>(rows: &mut Vec<T>, limit: i64, cursor: impl Fn(&T) -> Cursor) -> Option<String> {
    let limit = usize::try_from(limit).unwrap_or(0);
    if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| cursor(r).to_string())
    } else {
        None
    }
}

fn outcome_rank(o: Outcome) -> u8 {
    match o {
        Outcome::Rejected => 0,
        Outcome::Accepted => 1,
        Outcome::Selected => 2,
    }
}

fn sample_event(s: &SampleRow, step: &StepRow) -> ItemEvent {
    let rejected = s.outcome == REJECTED;
    ItemEvent {
        run_id: step.run_id.clone(),
        pipeline: step.pipeline.clone(),
        step_id: step.step_id.clone(),
        step_name: step.name.clone(),
        step_type: step.step_type(),
        position: u32::try_from(step.position).unwrap_or(0),
        outcome: if rejected {
            Outcome::Rejected
        } else {
            Outcome::Accepted
        },
        reason: rejected.then(|| s.reason.clone()),
        details: rows::parse_json(s.details.clone()),
        score: None,
        started_at: rows::from_micros(step.started_at),
    }
}

fn selected_event(step: &StepRow) -> ItemEvent {
    let decision = step.decision();
    ItemEvent {
        run_id: step.run_id.clone(),
        pipeline: step.pipeline.clone(),
        step_id: step.step_id.clone(),
        step_name: step.name.clone(),
        step_type: step.step_type(),
        position: u32::try_from(step.position).unwrap_or(0),
        outcome: Outcome::Selected,
        reason: None,
        details: decision
            .as_ref()
            .and_then(|d| d.details.as_ref().and_then(JsonText::of)),
        score: step.decision_score,
        started_at: rows::from_micros(step.started_at),
    }
}

// After `with_conn!`, which it uses.
pub mod run_steps;
