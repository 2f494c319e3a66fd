//! What OTLP ingest needs beyond the shared write path: the spans of one trace may come in
//! several requests (children before their root), each numbering its own steps, so after a
//! write the steps of each run touched are put in order of start time (then id) and given their
//! run's pipeline (a step that came before its root was stored under the pipeline its request
//! knew). A run whose steps all came in one request is read and left as it is.

use super::backend::{WriteTx, ROWS_PER_STATEMENT};
use super::rollup_sql::RollupSql;
use super::rollups;
use super::{Store, StoreError};
use crate::schema::{runs, steps};
use diesel::prelude::*;
use std::collections::HashMap;

/// A step's place: (run id, step id, position, pipeline), in order of start time within a run.
type Placed = (String, String, i32, String);

/// The queries, for each backend.
trait StepOrderSql {
    /// The steps of `run_ids`, each run's in order of start time, then position, then id.
    fn steps_in_order(&mut self, run_ids: &[String]) -> QueryResult<Vec<Placed>>;
    /// The pipeline of each of `run_ids`.
    fn pipelines(&mut self, run_ids: &[String]) -> QueryResult<Vec<(String, String)>>;
    /// Sets one step's position and pipeline.
    fn place(&mut self, step_id: &str, position: i32, pipeline: &str) -> QueryResult<()>;
}

for_both_backends! {
    impl StepOrderSql {
        fn steps_in_order(&mut self, run_ids: &[String]) -> QueryResult<Vec<Placed>> {
            steps::table
                .filter(steps::run_id.eq_any(run_ids))
                // Steps that started in the same microsecond keep the order their request gave
                // them (by the span's nanoseconds).
                .order((steps::run_id, steps::started_at, steps::position, steps::step_id))
                .select((steps::run_id, steps::step_id, steps::position, steps::pipeline))
                .load(self)
        }

        fn pipelines(&mut self, run_ids: &[String]) -> QueryResult<Vec<(String, String)>> {
            runs::table
                .filter(runs::run_id.eq_any(run_ids))
                .select((runs::run_id, runs::pipeline))
                .load(self)
        }

        fn place(&mut self, step_id: &str, position: i32, pipeline: &str) -> QueryResult<()> {
            diesel::update(steps::table.filter(steps::step_id.eq(step_id)))
                .set((steps::position.eq(position), steps::pipeline.eq(pipeline)))
                .execute(self)
                .map(|_| ())
        }
    }
}

/// The (step id, position, pipeline) of each step of `run_ids` not where it belongs.
fn misplaced<C: StepOrderSql>(
    c: &mut C,
    run_ids: &[String],
) -> QueryResult<Vec<(String, i32, String)>> {
    let mut out = Vec::new();
    for chunk in run_ids.chunks(ROWS_PER_STATEMENT) {
        let pipelines: HashMap<String, String> = c.pipelines(chunk)?.into_iter().collect();
        let mut run = String::new();
        let mut next = 0i32;
        for (run_id, step_id, position, pipeline) in c.steps_in_order(chunk)? {
            if run_id != run {
                run = run_id.clone();
                next = 0;
            }
            let want = pipelines.get(&run_id).unwrap_or(&pipeline);
            if position != next || *want != pipeline {
                out.push((step_id, next, want.clone()));
            }
            next = next.saturating_add(1);
        }
    }
    Ok(out)
}

fn order<C: StepOrderSql + WriteTx + RollupSql>(
    c: &mut C,
    run_ids: &[String],
) -> Result<(), StoreError> {
    // Read first, outside a write transaction: most runs come whole and need nothing.
    if misplaced(c, run_ids)?.is_empty() {
        return Ok(());
    }
    // Positions are in the rollups (the order of a pipeline's steps): a rolled-up run's figures
    // are taken back before and added again after.
    c.write_tx(|c| {
        rollups::around(c, run_ids, |c| {
            for (step_id, position, pipeline) in misplaced(c, run_ids)? {
                c.place(&step_id, position, &pipeline)?;
            }
            Ok(())
        })
    })
}

impl Store {
    /// Numbers the steps of each of `run_ids` by start time (then id) and gives them their run's
    /// pipeline, for runs whose steps came in several requests.
    pub fn order_steps_by_start(&self, run_ids: &[String]) -> Result<(), StoreError> {
        if run_ids.is_empty() {
            return Ok(());
        }
        with_conn!(&self.db, c => order(c, run_ids))
    }
}
