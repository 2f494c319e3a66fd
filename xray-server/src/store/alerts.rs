//! Alert rules and firings as stored, and the reads that evaluate rule conditions ([`Probe`]).
//! When a rule fires and how a firing is delivered is [`crate::alerts`]'s to decide; this module
//! only stores and reads.

use super::{Store, StoreError};
use crate::schema::{alert_events, alerts, runs, steps};
use diesel::prelude::*;

/// A stored rule.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = alerts, treat_none_as_default_value = false)]
pub struct AlertRow {
    pub alert_id: String,
    pub name: String,
    pub rule: String,
    pub webhook_url: String,
    pub source: String,
    pub created_at: i64,
    pub firing_key: Option<String>,
}

/// A stored firing.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = alert_events, treat_none_as_default_value = false)]
pub struct AlertEventRow {
    pub alert_id: String,
    pub window_key: String,
    pub fired_at: i64,
    pub payload: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
    pub next_attempt_at: i64,
    pub claimed_until: Option<i64>,
}

/// What a rule's condition reads.
#[derive(Debug, Clone)]
pub enum Probe<'a> {
    /// Runs among the newest `last_runs` of `pipeline` with a step over `above`.
    RateWindow {
        /// The pipeline.
        pipeline: &'a str,
        /// The step type.
        step_type: &'a str,
        /// The step name, if any.
        step_name: Option<&'a str>,
        /// The threshold.
        above: f64,
        /// The window size.
        last_runs: i64,
    },
    /// Failed runs of `pipeline` started at or after `since`.
    Failed {
        /// The pipeline.
        pipeline: &'a str,
        /// µs.
        since: i64,
    },
    /// Steps scoring below `below` started at or after `since`.
    LowScore {
        /// Only this pipeline.
        pipeline: Option<&'a str>,
        /// The step type.
        step_type: &'a str,
        /// The threshold.
        below: f64,
        /// µs.
        since: i64,
    },
}

/// What a probe found: (the window's newest run, matches as (key, run id)).
pub type ProbeResult = (Option<String>, Vec<(String, String)>);

/// Candidates looked at per evaluation of a per-run or per-step rule.
const PROBE_LIMIT: i64 = 200;

trait AlertBackend {
    fn probe(&mut self, p: &Probe<'_>) -> QueryResult<ProbeResult>;
}

for_both_backends! {
    impl AlertBackend {
        fn probe(&mut self, p: &Probe<'_>) -> QueryResult<ProbeResult> {
            match p {
                Probe::RateWindow {
                    pipeline,
                    step_type,
                    step_name,
                    above,
                    last_runs,
                } => {
                    let window: Vec<String> = runs::table
                        .filter(runs::pipeline.eq(*pipeline))
                        .order((runs::started_at.desc(), runs::run_id.desc()))
                        .select(runs::run_id)
                        .limit(*last_runs)
                        .load(self)?;
                    let mut q = steps::table
                        .filter(steps::run_id.eq_any(&window))
                        .filter(steps::step_type.eq(*step_type))
                        .filter(steps::rejection_rate.gt(*above))
                        .select(steps::run_id)
                        .distinct()
                        .into_boxed();
                    if let Some(n) = step_name {
                        q = q.filter(steps::name.eq(*n));
                    }
                    let over: Vec<String> = q.load(self)?;
                    Ok((
                        window.first().cloned(),
                        over.into_iter().map(|r| (r.clone(), r)).collect(),
                    ))
                }
                Probe::Failed { pipeline, since } => {
                    let ids: Vec<String> = runs::table
                        .filter(runs::pipeline.eq(*pipeline))
                        .filter(runs::status.eq("failed"))
                        .filter(runs::started_at.ge(*since))
                        .order((runs::started_at.desc(), runs::run_id.desc()))
                        .select(runs::run_id)
                        .limit(PROBE_LIMIT)
                        .load(self)?;
                    Ok((None, ids.into_iter().map(|r| (r.clone(), r)).collect()))
                }
                Probe::LowScore {
                    pipeline,
                    step_type,
                    below,
                    since,
                } => {
                    let mut q = steps::table
                        .filter(steps::step_type.eq(*step_type))
                        .filter(steps::decision_score.lt(*below))
                        .filter(steps::started_at.ge(*since))
                        .order((steps::started_at.desc(), steps::step_id.desc()))
                        .select((steps::step_id, steps::run_id))
                        .limit(PROBE_LIMIT)
                        .into_boxed();
                    if let Some(p) = pipeline {
                        q = q.filter(steps::pipeline.eq(*p));
                    }
                    Ok((None, q.load(self)?))
                }
            }
        }
    }
}

impl Store {
    /// Stores a rule; an existing rule with the same id is replaced (config rules at start-up).
    pub fn put_alert(&self, row: &AlertRow) -> Result<(), StoreError> {
        with_conn!(&self.db, c => {
            diesel::insert_into(alerts::table)
                .values(row)
                .on_conflict(alerts::alert_id)
                .do_update()
                .set((
                    alerts::name.eq(&row.name),
                    alerts::rule.eq(&row.rule),
                    alerts::webhook_url.eq(&row.webhook_url),
                ))
                .execute(c)?;
            Ok(())
        })
    }

    /// Every rule, oldest first.
    pub fn list_alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        with_conn!(&self.db, c => Ok(alerts::table
            .order((alerts::created_at, alerts::alert_id))
            .select(AlertRow::as_select())
            .load(c)?))
    }

    /// One rule.
    pub fn get_alert(&self, id: &str) -> Result<Option<AlertRow>, StoreError> {
        with_conn!(&self.db, c => Ok(alerts::table
            .find(id)
            .select(AlertRow::as_select())
            .first(c)
            .optional()?))
    }

    /// Deletes a rule and its firings, in one transaction; false if there was none.
    pub fn delete_alert(&self, id: &str) -> Result<bool, StoreError> {
        with_conn!(&self.db, c => c.transaction::<_, StoreError, _>(|c| {
            let gone = diesel::delete(alerts::table.find(id)).execute(c)? > 0;
            diesel::delete(alert_events::table.filter(alert_events::alert_id.eq(id))).execute(c)?;
            Ok(gone)
        }))
    }

    /// Marks a window rule as firing with `key`, if it was not: true if this call did (and so
    /// must notify), false if it was firing already (another server got there first).
    pub fn start_firing(&self, id: &str, key: &str) -> Result<bool, StoreError> {
        with_conn!(&self.db, c => Ok(diesel::update(
            alerts::table
                .find(id)
                .filter(alerts::firing_key.is_null()),
        )
        .set(alerts::firing_key.eq(key))
        .execute(c)?
            == 1))
    }

    /// Clears a window rule's firing (its condition is false again).
    pub fn stop_firing(&self, id: &str) -> Result<(), StoreError> {
        with_conn!(&self.db, c => {
            diesel::update(alerts::table.find(id))
                .set(alerts::firing_key.eq(None::<String>))
                .execute(c)?;
            Ok(())
        })
    }

    /// Deletes the rules of `source` whose ids are not in `keep` (rules taken out of the config
    /// file), with their firings.
    pub fn prune_alerts(&self, source: &str, keep: &[String]) -> Result<usize, StoreError> {
        let stale: Vec<String> = with_conn!(&self.db, c => alerts::table
            .filter(alerts::source.eq(source))
            .filter(alerts::alert_id.ne_all(keep))
            .select(alerts::alert_id)
            .load(c)?);
        for id in &stale {
            self.delete_alert(id)?;
        }
        Ok(stale.len())
    }

    /// Evaluates what a condition reads.
    pub fn probe(&self, p: &Probe<'_>) -> Result<ProbeResult, StoreError> {
        with_conn!(&self.db, c => Ok(c.probe(p)?))
    }

    /// The keys among `keys` already fired for a rule.
    pub fn fired_keys(&self, id: &str, keys: &[String]) -> Result<Vec<String>, StoreError> {
        with_conn!(&self.db, c => Ok(alert_events::table
            .filter(alert_events::alert_id.eq(id))
            .filter(alert_events::window_key.eq_any(keys))
            .select(alert_events::window_key)
            .load(c)?))
    }

    /// Records a firing unless one exists for the same rule and window: true if this call
    /// recorded it (and so must deliver it).
    pub fn record_firing(&self, row: &AlertEventRow) -> Result<bool, StoreError> {
        with_conn!(&self.db, c => Ok(diesel::insert_into(alert_events::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c)?
            > 0))
    }

    /// Claims up to `limit` firings due for delivery at `now` (µs) until `until`: pending ones
    /// whose next attempt is due, and ones whose claim lapsed (their server died mid-delivery).
    /// Each claim is one conditional UPDATE, so two servers never deliver the same firing at once.
    pub fn claim_due(
        &self,
        now: i64,
        until: i64,
        limit: i64,
    ) -> Result<Vec<AlertEventRow>, StoreError> {
        with_conn!(&self.db, c => {
            let due: Vec<AlertEventRow> = alert_events::table
                .filter(alert_events::next_attempt_at.le(now))
                .filter(
                    alert_events::status.eq("pending").or(alert_events::status
                        .eq("sending")
                        .and(alert_events::claimed_until.lt(now))),
                )
                .order(alert_events::next_attempt_at)
                .select(AlertEventRow::as_select())
                .limit(limit)
                .load(c)?;
            let mut claimed = Vec::new();
            for row in due {
                // The same test as above, again: a server that claimed it meanwhile has moved
                // `claimed_until` past `now`, so this one loses.
                let won = diesel::update(
                    alert_events::table
                        .find((&row.alert_id, &row.window_key))
                        .filter(alert_events::attempts.eq(row.attempts))
                        .filter(
                            alert_events::status.eq("pending").or(alert_events::status
                                .eq("sending")
                                .and(alert_events::claimed_until.lt(now))),
                        ),
                )
                .set((
                    alert_events::status.eq("sending"),
                    alert_events::claimed_until.eq(Some(until)),
                ))
                .execute(c)?;
                if won == 1 {
                    claimed.push(row);
                }
            }
            Ok(claimed)
        })
    }

    /// Records the outcome of one delivery attempt of a firing claimed until `claimed_until`;
    /// nothing if the claim was lost meanwhile (another server's result stands).
    pub fn finish_attempt(
        &self,
        row: &AlertEventRow,
        claimed_until: i64,
        status: &str,
        last_error: Option<&str>,
        delivered_at: Option<i64>,
        next_attempt_at: i64,
    ) -> Result<(), StoreError> {
        with_conn!(&self.db, c => {
            diesel::update(
                alert_events::table
                    .find((&row.alert_id, &row.window_key))
                    .filter(alert_events::status.eq("sending"))
                    .filter(alert_events::claimed_until.eq(claimed_until)),
            )
                .set((
                    alert_events::status.eq(status),
                    alert_events::attempts.eq(row.attempts + 1),
                    alert_events::last_error.eq(last_error),
                    alert_events::delivered_at.eq(delivered_at),
                    alert_events::next_attempt_at.eq(next_attempt_at),
                    alert_events::claimed_until.eq(None::<i64>),
                ))
                .execute(c)?;
            Ok(())
        })
    }

    /// The webhook URL of a rule (`None` once the rule is deleted).
    pub fn webhook_of(&self, id: &str) -> Result<Option<String>, StoreError> {
        with_conn!(&self.db, c => Ok(alerts::table
            .find(id)
            .select(alerts::webhook_url)
            .first(c)
            .optional()?))
    }

    /// A rule's firings, newest first.
    pub fn alert_events(&self, id: &str, limit: i64) -> Result<Vec<AlertEventRow>, StoreError> {
        with_conn!(&self.db, c => Ok(alert_events::table
            .filter(alert_events::alert_id.eq(id))
            .order((alert_events::fired_at.desc(), alert_events::window_key.desc()))
            .select(AlertEventRow::as_select())
            .limit(limit)
            .load(c)?))
    }
}
