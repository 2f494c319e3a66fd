//! Reading runs and steps: the run list, one run in full, the step search, and the database's
//! ping. The SQL is in [`ReadSql`]; turning rows into the wire's views is [`super::views`]'s
//! work. It must not write.

use super::filter::{Cursor, RunFilter, StepFilter};
use super::packed::{self, PackedReasonRow};
use super::rows::{ReasonRow, RunRow, SampleRow, StepRow, REJECTED};
use super::{Store, StoreError};
use crate::db::Db;
use crate::schema::{runs, samples, step_reasons, steps};
use diesel::prelude::*;
use std::collections::{BTreeMap, HashMap};
use xray_wire::{RunDetail, RunList, StepHit, StepList};

/// The data one run view needs (counts with packed samples, and samples stored unpacked).
type RunParts = (RunRow, Vec<StepRow>, Vec<PackedReasonRow>, Vec<SampleRow>);

/// The reads, for each backend.
pub(super) trait ReadSql {
    /// Whether the database answers.
    fn ping(&mut self) -> QueryResult<()>;
    /// One run's row; `None` if it is unknown.
    fn run_row(&mut self, run_id: &str) -> QueryResult<Option<RunRow>>;
    /// The rejection counts of `steps`.
    fn rejection_counts(&mut self, steps: &[StepRow]) -> QueryResult<Vec<ReasonRow>>;
    /// One page of runs (one more than the limit, to tell whether another page follows).
    fn list_runs(&mut self, f: &RunFilter) -> QueryResult<Vec<RunRow>>;
    /// A run with its steps, counts and samples; `None` if it is unknown.
    fn run_parts(&mut self, run_id: &str) -> QueryResult<Option<RunParts>>;
    /// One page of steps (one more than the limit) with their rejection counts.
    fn search_steps(&mut self, f: &StepFilter) -> QueryResult<(Vec<StepRow>, Vec<ReasonRow>)>;
}

for_both_backends! {
    impl ReadSql {
        fn ping(&mut self) -> QueryResult<()> {
            diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>("1"))
                .execute(self)
                .map(|_| ())
        }

        fn run_row(&mut self, run_id: &str) -> QueryResult<Option<RunRow>> {
            runs::table
                .find(run_id)
                .select(RunRow::as_select())
                .first(self)
                .optional()
        }

        fn rejection_counts(&mut self, steps: &[StepRow]) -> QueryResult<Vec<ReasonRow>> {
            let ids: Vec<&str> = steps.iter().map(|s| s.step_id.as_str()).collect();
            step_reasons::table
                .filter(step_reasons::step_id.eq_any(&ids))
                .filter(step_reasons::outcome.eq(REJECTED))
                .select(ReasonRow::as_select())
                .load(self)
        }

        fn list_runs(&mut self, f: &RunFilter) -> QueryResult<Vec<RunRow>> {
            let mut q = runs::table.select(RunRow::as_select()).into_boxed();
            if let Some(p) = &f.pipeline {
                q = q.filter(runs::pipeline.eq(p));
            }
            if let Some(s) = f.status {
                q = q.filter(runs::status.eq(s.as_str()));
            }
            if let Some(v) = &f.version {
                q = q.filter(runs::version.eq(v));
            }
            if let Some(id) = &f.replay_of {
                q = q.filter(runs::replay_of.eq(id));
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
            let Some(run) = self.run_row(run_id)? else {
                return Ok(None);
            };
            let steps: Vec<StepRow> = steps::table
                .filter(steps::run_id.eq(run_id))
                .order((steps::position, steps::started_at, steps::step_id))
                .select(StepRow::as_select())
                .load(self)?;
            // A subquery, not a list of ids: a run may have more steps than SQLite takes bind
            // parameters.
            let run_steps = steps::table
                .filter(steps::run_id.eq(run_id))
                .select(steps::step_id);
            let reasons = step_reasons::table
                .filter(step_reasons::step_id.eq_any(run_steps))
                .select(PackedReasonRow::as_select())
                .load(self)?;
            let samples = samples::table
                .filter(samples::run_id.eq(run_id))
                .order((samples::step_id, samples::outcome, samples::reason, samples::seq))
                .select(SampleRow::as_select())
                .load(self)?;
            Ok(Some((run, steps, reasons, samples)))
        }

        fn search_steps(&mut self, f: &StepFilter) -> QueryResult<(Vec<StepRow>, Vec<ReasonRow>)> {
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
            if let Some(v) = f.margin_lt {
                q = q.filter(steps::rank_margin.lt(v));
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
            let reasons = self.rejection_counts(&found)?;
            Ok((found, reasons))
        }
    }
}

impl Store {
    /// Checks that the database answers, within a second: waits at most 800 ms for a
    /// connection, so that a health probe gets its answer (503 when unreachable) in time.
    pub fn ping(&self) -> Result<(), StoreError> {
        const WAIT: std::time::Duration = std::time::Duration::from_millis(800);
        match &self.db {
            Db::Sqlite(pool) => Ok(pool.get_timeout(WAIT)?.ping()?),
            Db::Postgres(pool) => Ok(pool.get_timeout(WAIT)?.ping()?),
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
}

/// Steps as search hits, each with its rejection counts from `reasons`.
pub(super) fn hits(found: Vec<StepRow>, reasons: Vec<ReasonRow>) -> Vec<StepHit> {
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
pub(super) fn unpack_all(
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
pub(super) fn page_cursor<T>(
    rows: &mut Vec<T>,
    limit: i64,
    cursor: impl Fn(&T) -> Cursor,
) -> Option<String> {
    let limit = usize::try_from(limit).unwrap_or(0);
    if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| cursor(r).to_string())
    } else {
        None
    }
}
