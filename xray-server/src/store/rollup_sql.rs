//! The rollups' SQL ([`RollupSql`], for both backends) and their rows; `rollup_apply.rs` uses
//! it to write a change. It must hold no rule of the rollups (those are `rollups.rs`').

use super::backend::ROWS_PER_STATEMENT;
use super::histogram::Histogram;
use super::reason_counts::ReasonCounts;
use super::rollups::{RunKey, RunState, StepAgg, StepCounts, StepFacts, StepKey, HOUR_US};
use super::rows::REJECTED;
use super::StoreError;
use crate::schema::{run_rollups, runs, step_reasons, step_rollups, steps};
use diesel::dsl::{max, min, sql};
use diesel::prelude::*;
use diesel::sql_types::Bool;
use diesel::upsert::excluded;
use std::collections::{BTreeSet, HashSet};

/// Keys per statement that names rows by key (four or five binds each).
const KEYS_PER_STATEMENT: usize = 200;

/// A row of `run_rollups`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = run_rollups, treat_none_as_default_value = false)]
pub(super) struct RunRollupRow {
    pub pipeline: String,
    pub hour: i64,
    pub version: String,
    pub runs: i64,
    pub failed: i64,
    pub first_run_at: i64,
    pub last_run_at: i64,
}

/// A row of `step_rollups`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = step_rollups, treat_none_as_default_value = false)]
pub(super) struct StepRollupRow {
    pub pipeline: String,
    pub hour: i64,
    pub step: String,
    pub version: String,
    pub step_type: String,
    #[diesel(embed)]
    pub counts: StepCounts,
    pub durations: Vec<u8>,
    pub reasons: Vec<u8>,
}

impl StepRollupRow {
    /// The row's figures, to merge.
    pub fn agg(&self) -> Result<StepAgg, StoreError> {
        Ok(StepAgg {
            durations: Histogram::decode(&self.durations)?,
            ..self.counts()?
        })
    }

    /// The row's figures but its durations (left empty).
    pub fn counts(&self) -> Result<StepAgg, StoreError> {
        Ok(StepAgg {
            step_type: Some(self.step_type.clone()),
            counts: self.counts,
            durations: Histogram::default(),
            reasons: ReasonCounts::decode(&self.reasons)?,
        })
    }

    /// The row of `key` holding `a`.
    pub fn of(key: &StepKey, a: &StepAgg) -> StepRollupRow {
        StepRollupRow {
            pipeline: key.0.clone(),
            hour: key.1,
            step: key.2.clone(),
            version: key.3.clone(),
            step_type: a.step_type.clone().unwrap_or_default(),
            counts: a.counts,
            durations: a.durations.encode(),
            reasons: a.reasons.encode(),
        }
    }
}

/// How a backend keeps two writers from reading and writing back the same rollup rows at once.
pub(super) trait RowLocking {
    /// Holds, until the transaction ends, the locks of `groups` (hashes of the (pipeline, hour,
    /// version) whose rows the writer will read and write back; [`group_key`]), taken in
    /// ascending order so that writers never deadlock over them. PostgreSQL: transaction-level
    /// advisory locks; SQLite: nothing (one writer at a time).
    fn lock_groups(&mut self, groups: &[i64]) -> QueryResult<()>;
}

impl RowLocking for diesel::sqlite::SqliteConnection {
    fn lock_groups(&mut self, _: &[i64]) -> QueryResult<()> {
        Ok(())
    }
}

impl RowLocking for diesel::pg::PgConnection {
    fn lock_groups(&mut self, groups: &[i64]) -> QueryResult<()> {
        if groups.is_empty() {
            return Ok(());
        }
        diesel::sql_query(
            "SELECT pg_advisory_xact_lock(g) FROM (SELECT unnest($1::bigint[]) AS g ORDER BY 1) s",
        )
        .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(groups)
        .execute(self)
        .map(|_| ())
    }
}

/// The lock of a (pipeline, hour, version) group of rollup rows: a 64-bit FNV-1a hash (two
/// groups sharing one only wait for each other).
pub(super) fn group_key(pipeline: &str, hour: i64, version: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in pipeline
        .bytes()
        .chain([0])
        .chain(version.bytes())
        .chain([0])
        .chain(hour.to_le_bytes())
    {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// How a backend reads the stored rollup rows of some keys (those a write merges into).
pub(super) trait RowsByKey {
    /// The stored rows of `keys`.
    fn run_rows(&mut self, keys: &[&RunKey]) -> QueryResult<Vec<RunRollupRow>>;
    /// The stored rows of `keys`.
    fn step_rows(&mut self, keys: &[&StepKey]) -> QueryResult<Vec<StepRollupRow>>;
}

impl RowsByKey for diesel::sqlite::SqliteConnection {
    fn run_rows(&mut self, keys: &[&RunKey]) -> QueryResult<Vec<RunRollupRow>> {
        // Every pipeline × hour × version of the keys (SQLite probes the primary key with each
        // combination), then only the keys: rather than a plan of hundreds of ORs; in a write
        // they are a few pipelines and hours.
        let (p, h, v) = distinct3(keys.iter().map(|k| (&k.0, k.1, &k.2)));
        let wanted: HashSet<&RunKey> = keys.iter().copied().collect();
        Ok(run_rollups::table
            .filter(run_rollups::pipeline.eq_any(p))
            .filter(run_rollups::hour.eq_any(h))
            .filter(run_rollups::version.eq_any(v))
            .select(RunRollupRow::as_select())
            .load::<RunRollupRow>(self)?
            .into_iter()
            .filter(|r| wanted.contains(&(r.pipeline.clone(), r.hour, r.version.clone())))
            .collect())
    }

    fn step_rows(&mut self, keys: &[&StepKey]) -> QueryResult<Vec<StepRollupRow>> {
        // As `run_rows`, with the step names too.
        let (p, h, v) = distinct3(keys.iter().map(|k| (&k.0, k.1, &k.3)));
        let names: BTreeSet<&String> = keys.iter().map(|k| &k.2).collect();
        let wanted: HashSet<&StepKey> = keys.iter().copied().collect();
        Ok(step_rollups::table
            .filter(step_rollups::pipeline.eq_any(p))
            .filter(step_rollups::hour.eq_any(h))
            .filter(step_rollups::version.eq_any(v))
            .filter(step_rollups::step.eq_any(names))
            .select(StepRollupRow::as_select())
            .load::<StepRollupRow>(self)?
            .into_iter()
            .filter(|r| {
                let k = (
                    r.pipeline.clone(),
                    r.hour,
                    r.step.clone(),
                    r.version.clone(),
                );
                wanted.contains(&k)
            })
            .collect())
    }
}

/// PostgreSQL's read of the step rollup rows of some keys (pipelines, hours, step names,
/// versions: one array each), as [`RowsByKey::step_rows`] runs it.
pub const STEP_ROWS_BY_KEY_SQL: &str =
    "SELECT r.* FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) AS k(p, h, s, v) \
     CROSS JOIN LATERAL (SELECT * FROM step_rollups r \
     WHERE r.pipeline = k.p AND r.hour = k.h AND r.step = k.s AND r.version = k.v LIMIT 1) r";

/// PostgreSQL: the keys bound as one array per column (`unnest`), each key one probe of the
/// primary key: one statement of fixed text, reading exactly the rows asked for (every pipeline ×
/// hour × version of the keys was answered by reading every stored hour of those pipelines). The
/// `LATERAL ... LIMIT 1` (a key has at most one row) keeps the planner from a hash join over the
/// whole table, which it picks for a plain join of the keys.
impl RowsByKey for diesel::pg::PgConnection {
    fn run_rows(&mut self, keys: &[&RunKey]) -> QueryResult<Vec<RunRollupRow>> {
        use diesel::sql_types::{Array, BigInt, Text};
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let p: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
        let h: Vec<i64> = keys.iter().map(|k| k.1).collect();
        let v: Vec<&str> = keys.iter().map(|k| k.2.as_str()).collect();
        diesel::sql_query(
            "SELECT r.* FROM unnest($1::text[], $2::bigint[], $3::text[]) AS k(p, h, v) \
             CROSS JOIN LATERAL (SELECT * FROM run_rollups r \
             WHERE r.pipeline = k.p AND r.hour = k.h AND r.version = k.v LIMIT 1) r",
        )
        .bind::<Array<Text>, _>(p)
        .bind::<Array<BigInt>, _>(h)
        .bind::<Array<Text>, _>(v)
        .load(self)
    }

    fn step_rows(&mut self, keys: &[&StepKey]) -> QueryResult<Vec<StepRollupRow>> {
        use diesel::sql_types::{Array, BigInt, Text};
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let p: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
        let h: Vec<i64> = keys.iter().map(|k| k.1).collect();
        let s: Vec<&str> = keys.iter().map(|k| k.2.as_str()).collect();
        let v: Vec<&str> = keys.iter().map(|k| k.3.as_str()).collect();
        diesel::sql_query(STEP_ROWS_BY_KEY_SQL)
            .bind::<Array<Text>, _>(p)
            .bind::<Array<BigInt>, _>(h)
            .bind::<Array<Text>, _>(s)
            .bind::<Array<Text>, _>(v)
            .load(self)
    }
}

/// The distinct pipelines, hours and versions of some keys.
fn distinct3<'a>(
    keys: impl Iterator<Item = (&'a String, i64, &'a String)>,
) -> (BTreeSet<&'a String>, BTreeSet<i64>, BTreeSet<&'a String>) {
    let (mut p, mut h, mut v) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for (a, b, c) in keys {
        p.insert(a);
        h.insert(b);
        v.insert(c);
    }
    (p, h, v)
}

/// Selects the rows of `$table` whose key is one of `$keys`, by (`$col` = key field) pairs.
macro_rules! by_keys {
    ($q:expr, $keys:expr, |$k:ident| $cond:expr) => {{
        let mut q = $q;
        for $k in $keys {
            q = q.or_filter($cond);
        }
        q
    }};
}

/// The statements of the rollups, for each backend.
pub(super) trait RollupSql: RowLocking + RowsByKey {
    /// The runs among `ids` that are stored, as the rollups see them.
    fn run_states(&mut self, ids: &[String]) -> QueryResult<Vec<RunState>>;
    /// The steps of runs `ids`.
    fn step_facts(&mut self, ids: &[String]) -> QueryResult<Vec<StepFacts>>;
    /// (step id, reason, count) of the rejections of the steps of runs `ids`.
    fn rejected_counts(&mut self, ids: &[String]) -> QueryResult<Vec<(String, String, i64)>>;
    /// Marks runs `ids` rolled up or not.
    fn set_rolled_up(&mut self, ids: &[String], rolled: bool) -> QueryResult<()>;
    /// Up to `batch` finished runs not rolled up.
    fn unrolled_finished(&mut self, batch: i64) -> QueryResult<Vec<String>>;
    /// The first and last start (µs) of the rolled-up runs of `key`.
    fn first_last(&mut self, key: &RunKey) -> QueryResult<(Option<i64>, Option<i64>)>;
    /// Writes rows whole.
    fn put_run_rows(&mut self, rows: &[RunRollupRow]) -> QueryResult<()>;
    /// Deletes the rows of `keys`.
    fn delete_run_rows(&mut self, keys: &[&RunKey]) -> QueryResult<()>;
    /// Writes rows whole.
    fn put_step_rows(&mut self, rows: &[StepRollupRow]) -> QueryResult<()>;
    /// Deletes the rows of `keys`.
    fn delete_step_rows(&mut self, keys: &[&StepKey]) -> QueryResult<()>;
}

for_both_backends! {
    impl RollupSql {
        fn run_states(&mut self, ids: &[String]) -> QueryResult<Vec<RunState>> {
            let mut out = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                out.extend(
                    runs::table
                        .filter(runs::run_id.eq_any(chunk))
                        .select((
                            runs::run_id,
                            runs::pipeline,
                            runs::version,
                            runs::started_at,
                            runs::status,
                            runs::rolled_up,
                        ))
                        .load::<RunState>(self)?,
                );
            }
            Ok(out)
        }

        fn step_facts(&mut self, ids: &[String]) -> QueryResult<Vec<StepFacts>> {
            let mut out = Vec::new();
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                out.extend(
                    steps::table
                        .filter(steps::run_id.eq_any(chunk))
                        .select((
                            steps::run_id,
                            steps::step_id,
                            steps::name,
                            steps::step_type,
                            steps::position,
                            steps::input_count,
                            steps::output_count,
                            steps::rejected_count,
                            steps::error.is_not_null(),
                            steps::duration_ms,
                            steps::decision_score,
                        ))
                        .load::<StepFacts>(self)?,
                );
            }
            Ok(out)
        }

        fn rejected_counts(&mut self, ids: &[String]) -> QueryResult<Vec<(String, String, i64)>> {
            let mut out = Vec::new();
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                let of_runs = steps::table
                    .filter(steps::run_id.eq_any(chunk))
                    .select(steps::step_id);
                out.extend(
                    step_reasons::table
                        .filter(step_reasons::step_id.eq_any(of_runs))
                        .filter(step_reasons::outcome.eq(REJECTED))
                        .select((step_reasons::step_id, step_reasons::reason, step_reasons::count))
                        .load::<(String, String, i64)>(self)?,
                );
            }
            Ok(out)
        }

        fn set_rolled_up(&mut self, ids: &[String], rolled: bool) -> QueryResult<()> {
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                diesel::update(runs::table.filter(runs::run_id.eq_any(chunk)))
                    .set(runs::rolled_up.eq(rolled))
                    .execute(self)?;
            }
            Ok(())
        }

        fn unrolled_finished(&mut self, batch: i64) -> QueryResult<Vec<String>> {
            // Spelled as the partial index `runs_to_roll_up` is, so that it is used.
            runs::table
                .filter(sql::<Bool>("rolled_up = FALSE AND status <> 'running'"))
                .select(runs::run_id)
                .limit(batch)
                .load(self)
        }

        fn first_last(&mut self, key: &RunKey) -> QueryResult<(Option<i64>, Option<i64>)> {
            let (pipeline, hour, version) = key;
            let q = runs::table
                .filter(runs::pipeline.eq(pipeline))
                .filter(runs::started_at.ge(*hour))
                .filter(runs::started_at.lt(hour + HOUR_US))
                .filter(runs::rolled_up.eq(true))
                .select((min(runs::started_at), max(runs::started_at)))
                .into_boxed();
            if version.is_empty() {
                q.filter(runs::version.is_null()).first(self)
            } else {
                q.filter(runs::version.eq(version)).first(self)
            }
        }

        fn put_run_rows(&mut self, rows: &[RunRollupRow]) -> QueryResult<()> {
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                diesel::insert_into(run_rollups::table)
                    .values(chunk)
                    .on_conflict((run_rollups::pipeline, run_rollups::hour, run_rollups::version))
                    .do_update()
                    .set((
                        run_rollups::runs.eq(excluded(run_rollups::runs)),
                        run_rollups::failed.eq(excluded(run_rollups::failed)),
                        run_rollups::first_run_at.eq(excluded(run_rollups::first_run_at)),
                        run_rollups::last_run_at.eq(excluded(run_rollups::last_run_at)),
                    ))
                    .execute(self)?;
            }
            Ok(())
        }

        fn delete_run_rows(&mut self, keys: &[&RunKey]) -> QueryResult<()> {
            for chunk in keys.chunks(KEYS_PER_STATEMENT) {
                let q = by_keys!(
                    diesel::delete(run_rollups::table).into_boxed(),
                    chunk,
                    |k| run_rollups::pipeline
                        .eq(&k.0)
                        .and(run_rollups::hour.eq(k.1))
                        .and(run_rollups::version.eq(&k.2))
                );
                q.execute(self)?;
            }
            Ok(())
        }

        fn put_step_rows(&mut self, rows: &[StepRollupRow]) -> QueryResult<()> {
            for chunk in rows.chunks(ROWS_PER_STATEMENT / 2) {
                diesel::insert_into(step_rollups::table)
                    .values(chunk)
                    .on_conflict((
                        step_rollups::pipeline,
                        step_rollups::hour,
                        step_rollups::step,
                        step_rollups::version,
                    ))
                    .do_update()
                    .set((
                        step_rollups::step_type.eq(excluded(step_rollups::step_type)),
                        step_rollups::steps.eq(excluded(step_rollups::steps)),
                        step_rollups::runs.eq(excluded(step_rollups::runs)),
                        step_rollups::failed.eq(excluded(step_rollups::failed)),
                        step_rollups::input_count.eq(excluded(step_rollups::input_count)),
                        step_rollups::output_count.eq(excluded(step_rollups::output_count)),
                        step_rollups::rejected_in.eq(excluded(step_rollups::rejected_in)),
                        step_rollups::position_sum.eq(excluded(step_rollups::position_sum)),
                        step_rollups::score_sum.eq(excluded(step_rollups::score_sum)),
                        step_rollups::score_count.eq(excluded(step_rollups::score_count)),
                        step_rollups::durations.eq(excluded(step_rollups::durations)),
                        step_rollups::reasons.eq(excluded(step_rollups::reasons)),
                    ))
                    .execute(self)?;
            }
            Ok(())
        }

        fn delete_step_rows(&mut self, keys: &[&StepKey]) -> QueryResult<()> {
            for chunk in keys.chunks(KEYS_PER_STATEMENT) {
                let q = by_keys!(
                    diesel::delete(step_rollups::table).into_boxed(),
                    chunk,
                    |k| step_rollups::pipeline
                        .eq(&k.0)
                        .and(step_rollups::hour.eq(k.1))
                        .and(step_rollups::step.eq(&k.2))
                        .and(step_rollups::version.eq(&k.3))
                );
                q.execute(self)?;
            }
            Ok(())
        }
    }
}
