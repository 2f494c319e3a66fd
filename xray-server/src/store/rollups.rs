//! The rollups behind `GET /pipelines/{p}/stats` and `/compare`, kept at ingest time: what a
//! finished run adds to its pipeline's rows of its start hour and version ([`Rollup`]), and when
//! it is added or taken back. The rule that keeps them exact: a run's figures are in the rollups
//! exactly while it is finished (`runs.rolled_up`), under the run's current pipeline, version,
//! start hour and status. So every write that touches a rolled-up run (a re-sent batch, a step
//! arriving late, a late `run_started` with its version, OTLP renumbering its steps) takes its
//! figures back as they were before the write and adds them as they are after it, in the same
//! transaction; a run that becomes finished is added; retention takes deleted runs back. A
//! re-sent batch that changes nothing adds and takes back the same figures, which cancel and
//! write nothing. The SQL is [`super::rollup_sql`]'s; this module computes in memory.

use super::histogram::Histogram;
use super::reason_counts::ReasonCounts;
use super::rollup_sql::RollupSql;
use super::rows::{StepRow, REJECTED};
use super::StoreError;
use diesel::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use xray_wire::RunStatus;

/// One hour in µs.
pub const HOUR_US: i64 = 3_600_000_000;
/// The most items one step adds to a rollup sum (in, out, rejected, a reason's count): 2³²,
/// so that sums of billions of steps stay inside 64 bits. Counts above it are counted as it.
pub const MAX_COUNT: i64 = 1 << 32;
/// The largest decision score one step adds to a rollup's sum of scores (either sign), so that
/// the sum stays finite.
pub const MAX_SCORE: f64 = 1e15;

/// A step's count as the rollups add it ([`MAX_COUNT`]).
fn bounded(n: i64) -> i64 {
    n.clamp(-MAX_COUNT, MAX_COUNT)
}

/// The start of the hour (UTC) holding `us`.
pub fn hour_of(us: i64) -> i64 {
    us.div_euclid(HOUR_US) * HOUR_US
}

/// A run as the rollups see it.
#[derive(Debug, Clone, Queryable)]
pub(super) struct RunState {
    pub run_id: String,
    pub pipeline: String,
    pub version: Option<String>,
    pub started_at: i64,
    pub status: String,
    pub rolled_up: bool,
}

impl RunState {
    /// Whether its figures belong in the rollups.
    pub fn finished(&self) -> bool {
        self.status != RunStatus::Running.as_str()
    }
}

/// What the rollups need of one step.
#[derive(Debug, Clone, Queryable)]
pub(super) struct StepFacts {
    pub run_id: String,
    pub step_id: String,
    pub name: String,
    pub step_type: String,
    pub position: i32,
    pub input_count: Option<i64>,
    pub output_count: Option<i64>,
    pub rejected_count: i64,
    pub failed: bool,
    pub duration_ms: Option<f64>,
    pub decision_score: Option<f64>,
}

impl StepFacts {
    /// The facts of a step row about to be stored.
    fn of(s: &StepRow) -> StepFacts {
        StepFacts {
            run_id: s.run_id.clone(),
            step_id: s.step_id.clone(),
            name: s.name.clone(),
            step_type: s.step_type.clone(),
            position: s.position,
            input_count: s.input_count,
            output_count: s.output_count,
            rejected_count: s.rejected_count,
            failed: s.error.is_some(),
            duration_ms: s.duration_ms,
            decision_score: s.decision_score,
        }
    }

    /// Items it rejected, for the rejection rate: in − out when both are known, else the
    /// rejections counted (the step's own rejection rate times its input count).
    fn rejected_in(&self) -> i64 {
        match (self.input_count, self.output_count) {
            (Some(i), Some(o)) => bounded(i) - bounded(o),
            _ => bounded(self.rejected_count),
        }
    }
}

/// (pipeline, hour, version): a row of `run_rollups`.
pub(super) type RunKey = (String, i64, String);
/// (pipeline, hour, step name, version): a row of `step_rollups`.
pub(super) type StepKey = (String, i64, String, String);

/// A change to one row of `run_rollups`.
#[derive(Debug, Default, Clone)]
pub(super) struct RunAgg {
    pub runs: i64,
    pub failed: i64,
    /// Start times added and taken back (µs): the first and last run follow from them.
    pub added: Vec<i64>,
    pub removed: Vec<i64>,
}

/// The counts of a `step_rollups` row, or of a change to one: what `merge` adds up.
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Queryable, QueryableByName, Selectable, Insertable,
)]
#[diesel(table_name = crate::schema::step_rollups, treat_none_as_default_value = false)]
pub(super) struct StepCounts {
    pub steps: i64,
    pub runs: i64,
    pub failed: i64,
    pub input_count: i64,
    pub output_count: i64,
    pub rejected_in: i64,
    pub position_sum: i64,
    pub score_sum: f64,
    pub score_count: i64,
}

impl StepCounts {
    /// Adds `other` times `sign`.
    fn merge(&mut self, other: &StepCounts, sign: i64) {
        // Wrapping: adding and taking back stay exact inverses whatever the sums (each step's
        // part is bounded by `MAX_COUNT`, so a real row never comes near the bound).
        let add = |a: &mut i64, b: i64| *a = a.wrapping_add(sign.wrapping_mul(b));
        add(&mut self.steps, other.steps);
        add(&mut self.runs, other.runs);
        add(&mut self.failed, other.failed);
        add(&mut self.input_count, other.input_count);
        add(&mut self.output_count, other.output_count);
        add(&mut self.rejected_in, other.rejected_in);
        add(&mut self.position_sum, other.position_sum);
        self.score_sum += sign as f64 * other.score_sum;
        add(&mut self.score_count, other.score_count);
        if self.score_count == 0 {
            // Sums of floats taken back leave rounding dust: none left means none.
            self.score_sum = 0.0;
        }
    }
}

/// A change to one row of `step_rollups` (or the row itself).
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct StepAgg {
    /// The type of the steps added (none when only taken back).
    pub step_type: Option<String>,
    pub counts: StepCounts,
    pub durations: Histogram,
    /// Rejections by reason.
    pub reasons: ReasonCounts,
}

impl StepAgg {
    /// Adds `other` times `sign`; the type is `other`'s when it has one.
    pub fn merge(&mut self, other: &StepAgg, sign: i64) {
        if other.step_type.is_some() {
            self.step_type.clone_from(&other.step_type);
        }
        self.counts.merge(&other.counts, sign);
        self.durations.merge(&other.durations, sign);
        self.reasons.merge(&other.reasons, sign);
    }

    /// Whether it changes nothing (all counts zero).
    pub fn is_nothing(&self) -> bool {
        self.counts == StepCounts::default() && self.durations.is_empty() && self.reasons.is_empty()
    }
}

/// A change to the rollups: runs added (+1) and taken back (−1), summed per row.
#[derive(Debug, Default)]
pub(super) struct Rollup {
    pub runs: BTreeMap<RunKey, RunAgg>,
    pub steps: BTreeMap<StepKey, StepAgg>,
}

impl Rollup {
    /// Adds (`sign` 1) or takes back (−1) one run with its steps and their rejection counts by
    /// step id.
    pub fn run(
        &mut self,
        run: &RunState,
        steps: &[&StepFacts],
        rejected: &HashMap<&str, Vec<(&str, i64)>>,
        sign: i64,
    ) {
        let version = run.version.clone().unwrap_or_default();
        let hour = hour_of(run.started_at);
        let r = self
            .runs
            .entry((run.pipeline.clone(), hour, version.clone()))
            .or_default();
        r.runs += sign;
        if run.status == RunStatus::Failed.as_str() {
            r.failed += sign;
        }
        if sign > 0 {
            &mut r.added
        } else {
            &mut r.removed
        }
        .push(run.started_at);
        let mut by_name: BTreeMap<&str, StepAgg> = BTreeMap::new();
        for s in steps {
            let agg = by_name.entry(s.name.as_str()).or_default();
            agg.step_type = Some(s.step_type.clone());
            let a = &mut agg.counts;
            a.steps += 1;
            a.runs = 1;
            a.failed = a.failed.max(i64::from(s.failed));
            if let Some(i) = s.input_count {
                a.input_count += bounded(i);
                a.rejected_in += s.rejected_in();
            }
            a.output_count += bounded(s.output_count.unwrap_or(0));
            a.position_sum += i64::from(s.position);
            if let Some(score) = s.decision_score {
                a.score_sum += score.clamp(-MAX_SCORE, MAX_SCORE);
                a.score_count += 1;
            }
            if let Some(d) = s.duration_ms {
                agg.durations.add(d);
            }
            for (reason, n) in rejected.get(s.step_id.as_str()).into_iter().flatten() {
                agg.reasons.add(reason, bounded(*n));
            }
        }
        for (name, a) in by_name {
            let key = (
                run.pipeline.clone(),
                hour,
                name.to_string(),
                version.clone(),
            );
            self.steps.entry(key).or_default().merge(&a, sign);
        }
    }
}

/// Adds (`sign` 1) or takes back (−1) `runs` with their steps as stored now.
pub(super) fn from_db<C: RollupSql>(
    c: &mut C,
    runs: &[&RunState],
    sign: i64,
    into: &mut Rollup,
) -> Result<(), StoreError> {
    if runs.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = runs.iter().map(|r| r.run_id.clone()).collect();
    let steps = c.step_facts(&ids)?;
    let reasons = c.rejected_counts(&ids)?;
    let mut rejected: HashMap<&str, Vec<(&str, i64)>> = HashMap::new();
    for (step_id, reason, n) in &reasons {
        rejected
            .entry(step_id.as_str())
            .or_default()
            .push((reason.as_str(), *n));
    }
    let mut of_run: HashMap<&str, Vec<&StepFacts>> = HashMap::new();
    for s in &steps {
        of_run.entry(s.run_id.as_str()).or_default().push(s);
    }
    for r in runs {
        let mine = of_run.remove(r.run_id.as_str()).unwrap_or_default();
        into.run(r, &mine, &rejected, sign);
    }
    Ok(())
}

/// Adds `runs`, all of whose steps are among `steps` (rows this write inserted: `inserted`),
/// with their counts `reasons` (step id, outcome, reason, count): no read needed.
pub(super) fn from_write<'a>(
    runs: &[&RunState],
    steps: &[StepRow],
    inserted: &HashSet<String>,
    reasons: impl Iterator<Item = (&'a str, &'a str, &'a str, i64)>,
    into: &mut Rollup,
) {
    if runs.is_empty() {
        return;
    }
    let wanted: HashSet<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
    let mut seen = HashSet::new();
    let facts: Vec<StepFacts> = steps
        .iter()
        .filter(|s| wanted.contains(s.run_id.as_str()) && inserted.contains(&s.step_id))
        .filter(|s| seen.insert(s.step_id.as_str()))
        .map(StepFacts::of)
        .collect();
    let mine: HashSet<&str> = facts.iter().map(|s| s.step_id.as_str()).collect();
    let mut rejected: HashMap<&str, Vec<(&str, i64)>> = HashMap::new();
    for (step_id, outcome, reason, n) in reasons {
        if outcome == REJECTED && mine.contains(step_id) {
            rejected.entry(step_id).or_default().push((reason, n));
        }
    }
    let mut of_run: HashMap<&str, Vec<&StepFacts>> = HashMap::new();
    for s in &facts {
        of_run.entry(s.run_id.as_str()).or_default().push(s);
    }
    for r in runs {
        let mine = of_run.remove(r.run_id.as_str()).unwrap_or_default();
        into.run(r, &mine, &rejected, 1);
    }
}

/// Rolls up the finished runs stored before the rollups existed (or left unrolled), up to
/// `batch` of them in one transaction; answers how many.
pub(super) fn backlog<C: RollupSql + super::backend::WriteTx>(
    c: &mut C,
    batch: i64,
) -> Result<usize, StoreError> {
    c.write_tx(|c| {
        let ids = c.unrolled_finished(batch)?;
        if ids.is_empty() {
            return Ok(0);
        }
        let states = c.run_states(&ids)?;
        let finished: Vec<&RunState> = states
            .iter()
            .filter(|r| r.finished() && !r.rolled_up)
            .collect();
        let mut delta = Rollup::default();
        from_db(c, &finished, 1, &mut delta)?;
        let ids: Vec<String> = finished.iter().map(|r| r.run_id.clone()).collect();
        c.set_rolled_up(&ids, true)?;
        super::rollup_apply::apply(c, &delta)?;
        Ok(ids.len())
    })
}

/// Around a change to stored runs `run_ids` (`change`, inside the caller's transaction): takes
/// back the rolled-up runs among them as they were, and adds the finished ones as they are after.
pub(super) fn around<C: RollupSql, T>(
    c: &mut C,
    run_ids: &[String],
    change: impl FnOnce(&mut C) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let before = c.run_states(run_ids)?;
    let rolled: Vec<&RunState> = before.iter().filter(|r| r.rolled_up).collect();
    let mut delta = Rollup::default();
    from_db(c, &rolled, -1, &mut delta)?;
    let out = change(c)?;
    let after = c.run_states(run_ids)?;
    let finished: Vec<&RunState> = after.iter().filter(|r| r.finished()).collect();
    from_db(c, &finished, 1, &mut delta)?;
    flag(c, &after)?;
    super::rollup_apply::apply(c, &delta)?;
    Ok(out)
}

/// Sets `rolled_up` where it is not what a run's status makes it (after a write that did not
/// set it: a run stored before the rollups, touched by a write that left its status alone).
pub(super) fn flag<C: RollupSql>(c: &mut C, after: &[RunState]) -> Result<(), StoreError> {
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for r in after {
        match (r.rolled_up, r.finished()) {
            (false, true) => on.push(r.run_id.clone()),
            (true, false) => off.push(r.run_id.clone()),
            _ => {}
        }
    }
    c.set_rolled_up(&on, true)?;
    c.set_rolled_up(&off, false)?;
    Ok(())
}
