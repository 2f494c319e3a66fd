//! What retention asks of the store: the stored pipelines, a pipeline's runs past its policy, and
//! deleting runs with everything they own (steps, counts, samples, item documents, the first
//! index's entries and their figures in the rollups) in one transaction. The policy itself is [`crate::retention`]'s; this module
//! must not decide what expires.

use super::backend::{WriteTx, ROWS_PER_STATEMENT};
use super::items::ItemDocs;
use super::packed::{self, PackedReasonRow};
use super::rollup_sql::RollupSql;
use super::rollups;
use super::{Store, StoreError};
use crate::schema::{item_index, runs, samples, step_reasons, steps};
use diesel::prelude::*;
use std::collections::{BTreeSet, HashMap, HashSet};

/// The statements of retention, for each backend.
trait RetentionSql: WriteTx + ItemDocs + RollupSql {
    /// Every pipeline with stored runs.
    fn pipelines(&mut self) -> QueryResult<Vec<String>>;
    /// See [`Store::expired_runs`].
    fn expired_runs(
        &mut self,
        pipeline: &str,
        older_than: Option<i64>,
        keep_newest: Option<i64>,
        batch: i64,
    ) -> QueryResult<Vec<String>>;
    /// See [`Store::delete_runs`].
    fn delete_runs(&mut self, ids: &[String]) -> Result<(usize, usize, usize), StoreError>;
    /// The first index's entries (`item_index`) that only the steps of runs `ids` use, and how
    /// many samples those runs' counts hold packed.
    fn entries_of_runs(&mut self, ids: &[String]) -> Result<(Vec<i64>, usize), StoreError>;
}

for_both_backends! {
    impl RetentionSql {
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
            // The deleted runs' figures leave the rollups in the same transaction.
            self.write_tx(|c| rollups::around(c, ids, |c| {
                c.remove_docs(ids)?;
                let (gone, packed_samples) = c.entries_of_runs(ids)?;
                for chunk in gone.chunks(ROWS_PER_STATEMENT) {
                    diesel::delete(item_index::table.filter(item_index::entry.eq_any(chunk)))
                        .execute(c)?;
                }
                let samples = diesel::delete(samples::table.filter(samples::run_id.eq_any(ids)))
                    .execute(c)?;
                let doomed = steps::table
                    .filter(steps::run_id.eq_any(ids))
                    .select(steps::step_id);
                diesel::delete(step_reasons::table.filter(step_reasons::step_id.eq_any(doomed)))
                    .execute(c)?;
                let steps =
                    diesel::delete(steps::table.filter(steps::run_id.eq_any(ids))).execute(c)?;
                let runs =
                    diesel::delete(runs::table.filter(runs::run_id.eq_any(ids))).execute(c)?;
                Ok((runs, steps, samples + packed_samples))
            }))
        }

        fn entries_of_runs(&mut self, ids: &[String]) -> Result<(Vec<i64>, usize), StoreError> {
            // Steps written before the item documents have a step key: unpack their packed
            // samples to learn their items (and count every packed sample).
            let keys: HashMap<String, Option<i64>> = steps::table
                .filter(steps::run_id.eq_any(ids))
                .select((steps::step_id, steps::step_key))
                .load::<(String, Option<i64>)>(self)?
                .into_iter()
                .collect();
            let doomed = steps::table
                .filter(steps::run_id.eq_any(ids))
                .select(steps::step_id);
            let packed_rows: Vec<PackedReasonRow> = step_reasons::table
                .filter(step_reasons::step_id.eq_any(doomed))
                .filter(step_reasons::samples.is_not_null())
                .select(PackedReasonRow::as_select())
                .load(self)?;
            let mut entries = BTreeSet::new();
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
            // An entry is shared by every step with the same 32-bit key: keep those whose key a
            // surviving step also has.
            let doomed_keys: Vec<i64> = keys.values().flatten().copied().collect();
            let mut shared = HashSet::new();
            for chunk in doomed_keys.chunks(ROWS_PER_STATEMENT) {
                shared.extend(
                    steps::table
                        .filter(steps::step_key.eq_any(chunk))
                        .filter(steps::run_id.ne_all(ids))
                        .select(steps::step_key)
                        .load::<Option<i64>>(self)?
                        .into_iter()
                        .flatten(),
                );
            }
            let gone = entries
                .into_iter()
                .filter(|e| !shared.contains(&(e & 0xffff_ffff)))
                .collect();
            Ok((gone, packed_samples))
        }
    }
}

impl Store {
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
}
