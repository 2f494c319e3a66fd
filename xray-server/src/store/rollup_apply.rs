//! Writing a [`Rollup`] change ([`apply`]): the rows it touches read, merged in memory and
//! written back, rows left without runs deleted. On PostgreSQL the (pipeline, hour, version)
//! groups of those rows are locked first (advisory locks, in one order), so concurrent writers
//! of one row wait for each other rather than lose an update, and never deadlock over them;
//! SQLite has one writer at a time. A step row holds its reason counts (`reason_counts.rs`).

use super::rollup_sql::{group_key, RollupSql, RunRollupRow, StepRollupRow};
use super::rollups::{Rollup, RunAgg, RunKey, StepAgg, StepKey};
use super::StoreError;
use std::collections::{BTreeMap, HashMap};

/// Writes a change to the rollups: every row it touches read, merged and written back (or
/// deleted when no run is left in it). Call it after the runs table is as the change leaves it
/// (a row that lost runs reads its first and last run from there).
pub(super) fn apply<C: RollupSql>(c: &mut C, d: &Rollup) -> Result<(), StoreError> {
    let mut groups: Vec<i64> = d
        .runs
        .keys()
        .map(|(p, h, v)| group_key(p, *h, v))
        .chain(d.steps.keys().map(|(p, h, _, v)| group_key(p, *h, v)))
        .collect();
    groups.sort_unstable();
    groups.dedup();
    c.lock_groups(&groups)?;
    apply_runs(c, &d.runs)?;
    apply_steps(c, &d.steps)?;
    Ok(())
}

fn apply_runs<C: RollupSql>(c: &mut C, runs: &BTreeMap<RunKey, RunAgg>) -> Result<(), StoreError> {
    let mut changed = Vec::new();
    for (k, a) in runs {
        let (mut add, mut rem) = (a.added.clone(), a.removed.clone());
        add.sort_unstable();
        rem.sort_unstable();
        if a.runs != 0 || a.failed != 0 || add != rem {
            changed.push((k, a, !rem.is_empty()));
        }
    }
    if changed.is_empty() {
        return Ok(());
    }
    let keys: Vec<&RunKey> = changed.iter().map(|(k, ..)| *k).collect();
    let stored: HashMap<RunKey, RunRollupRow> = c
        .run_rows(&keys)?
        .into_iter()
        .map(|r| ((r.pipeline.clone(), r.hour, r.version.clone()), r))
        .collect();
    let (mut put, mut gone) = (Vec::new(), Vec::new());
    for (k, a, lost_some) in changed {
        let (runs, failed, first, last) = match stored.get(k) {
            Some(r) => (r.runs, r.failed, r.first_run_at, r.last_run_at),
            None => (0, 0, i64::MAX, i64::MIN),
        };
        let runs = runs + a.runs;
        if runs <= 0 {
            gone.push(k);
            continue;
        }
        let (first, last) = if lost_some {
            let (f, l) = c.first_last(k)?;
            (f.unwrap_or(first), l.unwrap_or(last))
        } else {
            let first = a.added.iter().copied().fold(first, i64::min);
            (first, a.added.iter().copied().fold(last, i64::max))
        };
        put.push(RunRollupRow {
            pipeline: k.0.clone(),
            hour: k.1,
            version: k.2.clone(),
            runs,
            failed: failed + a.failed,
            first_run_at: first,
            last_run_at: last,
        });
    }
    c.put_run_rows(&put)?;
    c.delete_run_rows(&gone)?;
    Ok(())
}

fn apply_steps<C: RollupSql>(
    c: &mut C,
    steps: &BTreeMap<StepKey, StepAgg>,
) -> Result<(), StoreError> {
    let keys: Vec<&StepKey> = steps
        .iter()
        .filter(|(_, a)| !a.is_nothing())
        .map(|(k, _)| k)
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    let mut stored: HashMap<StepKey, StepAgg> = HashMap::new();
    for r in c.step_rows(&keys)? {
        let agg = r.agg()?;
        stored.insert((r.pipeline, r.hour, r.step, r.version), agg);
    }
    let (mut put, mut gone) = (Vec::new(), Vec::new());
    for k in keys {
        let mut row = stored.remove(k).unwrap_or_default();
        row.merge(&steps[k], 1);
        if row.counts.steps <= 0 {
            gone.push(k);
        } else {
            put.push(StepRollupRow::of(k, &row));
        }
    }
    c.put_step_rows(&put)?;
    c.delete_step_rows(&gone)?;
    Ok(())
}
