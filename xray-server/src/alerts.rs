//! Alerting: rules evaluated on a timer; a firing is recorded once per rule and window (the
//! database's primary key decides, so several servers on one database notify once), then
//! POSTed as JSON to the rule's webhook. Its SQL is [`crate::store::alerts`]'s, not here. Delivery state is in the database: a failed POST is
//! retried with growing waits (0.5 s up to 30 min, 8 attempts over about 48 minutes), by
//! whichever server claims it, so a webhook down for a while or a server restarted mid-delivery
//! still gets its notification.
//!
//! Windows: `run_failed` fires once per failed run, `low_score` once per step, and
//! `rejection_rate` once each time its condition turns true (keyed by the newest run of the
//! window at that moment), re-arming when the condition turns false again. Per-run and per-step
//! rules look at runs started from an hour before the rule was created.

use crate::store::alerts::{AlertEventRow, AlertRow, Probe};
use crate::store::{Store, StoreError};
use crossbeam_channel::{Receiver, Sender};
use regex::Regex;
use std::sync::{Arc, LazyLock};
use std::thread::JoinHandle;
use std::time::Duration;
use xray_wire::{
    AlertCondition, AlertEvent, AlertNotification, AlertRule, AlertRuleSpec, WEBHOOK_URL_MAX_LEN,
    WEBHOOK_URL_PATTERN,
};

/// Waits before each retry of a failed delivery; after the last, the firing is `failed`.
const BACKOFF: [Duration; 7] = [
    Duration::from_millis(500),
    Duration::from_secs(2),
    Duration::from_secs(10),
    Duration::from_secs(60),
    Duration::from_secs(300),
    Duration::from_secs(900),
    Duration::from_secs(1800),
];
/// Time allowed for one webhook call.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a claim on a firing lasts: past it, another server may deliver it. Longer than a
/// whole claimed batch can take (`CLAIM_BATCH` × `WEBHOOK_TIMEOUT` = 100 s).
const CLAIM: Duration = Duration::from_secs(300);
/// How often the notifier looks for due firings when nothing wakes it.
const NOTIFIER_POLL: Duration = Duration::from_millis(200);
/// Firings claimed at a time.
const CLAIM_BATCH: i64 = 20;
/// How far before a rule's creation per-run and per-step rules look.
const LOOKBACK_US: i64 = 3_600_000_000;

/// Checks a rule: an http(s) webhook and sensible thresholds (its names are checked by their
/// type when it is read).
pub fn check_rule(rule: &AlertRuleSpec) -> Result<(), String> {
    static WEBHOOK_URL: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(WEBHOOK_URL_PATTERN).expect("WEBHOOK_URL_PATTERN is a regex"));
    let url = rule.webhook_url.as_str();
    let valid_url = WEBHOOK_URL.is_match(url) && url.parse::<ureq::http::Uri>().is_ok();
    if !valid_url || url.len() > WEBHOOK_URL_MAX_LEN {
        return Err(format!(
            "webhook_url: `{url}` is not an http:// or https:// URL"
        ));
    }
    match &rule.condition {
        AlertCondition::RejectionRate {
            above,
            more_than,
            last_runs,
            ..
        } => {
            if !(0.0..=1.0).contains(above) {
                return Err("condition.above: must be between 0 and 1".into());
            }
            if *last_runs == 0 || *last_runs > 10_000 {
                return Err("condition.last_runs: must be between 1 and 10000".into());
            }
            if more_than >= last_runs {
                return Err(format!(
                    "condition.more_than: must be below last_runs ({last_runs}), or it can never fire"
                ));
            }
        }
        AlertCondition::RunFailed { .. } => {}
        AlertCondition::LowScore { below, .. } => {
            if !below.is_finite() {
                return Err("condition.below: must be a finite number".into());
            }
        }
    }
    Ok(())
}

/// A rule as stored, read back.
pub fn rule_view(row: &AlertRow) -> Option<AlertRule> {
    Some(AlertRule {
        alert_id: row.alert_id.clone(),
        name: row.name.clone(),
        webhook_url: row.webhook_url.clone(),
        condition: serde_json::from_str(&row.rule).ok()?,
        source: row.source.clone(),
        created_at: crate::store::rows::from_micros(row.created_at),
    })
}

/// A firing as stored, read back.
pub fn event_view(row: AlertEventRow) -> Option<AlertEvent> {
    Some(AlertEvent {
        notification: serde_json::from_str(&row.payload).ok()?,
        status: row.status,
        attempts: u32::try_from(row.attempts).unwrap_or(0),
        last_error: row.last_error,
        delivered_at: row.delivered_at.map(crate::store::rows::from_micros),
    })
}

/// A rule row for a new rule.
pub fn new_rule_row(alert_id: String, spec: &AlertRuleSpec, source: &str) -> AlertRow {
    AlertRow {
        alert_id,
        name: spec.name.to_string(),
        rule: serde_json::to_string(&spec.condition).unwrap_or_default(),
        webhook_url: spec.webhook_url.clone(),
        source: source.into(),
        created_at: chrono::Utc::now().timestamp_micros(),
        firing_key: None,
    }
}

/// The id of a rule from the config file: stable across restarts and servers.
pub fn config_rule_id(name: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(name.as_bytes());
    let hex: String = d.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("config-{hex}")
}

/// The alerting engine: evaluates rules and delivers firings.
pub struct Alerts {
    store: Store,
    interval: Duration,
    config_rules: Vec<AlertRuleSpec>,
}

/// Stops the evaluator and notifier threads when dropped.
pub struct AlertThreads {
    stop: Option<Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for AlertThreads {
    fn drop(&mut self) {
        drop(self.stop.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Alerts {
    /// An engine over `store` with the config file's rules.
    pub fn new(store: Store, interval: Duration, config_rules: Vec<AlertRuleSpec>) -> Arc<Alerts> {
        Arc::new(Alerts {
            store,
            interval,
            config_rules,
        })
    }

    /// Stores the config file's rules (idempotent) and removes config rules no longer in it.
    pub fn install_config_rules(&self) -> Result<(), StoreError> {
        let mut ids = Vec::new();
        for spec in &self.config_rules {
            let row = new_rule_row(config_rule_id(&spec.name), spec, "config");
            self.store.put_alert(&row)?;
            ids.push(row.alert_id);
        }
        let pruned = self.store.prune_alerts("config", &ids)?;
        if pruned > 0 {
            tracing::info!("removed {pruned} alert rules no longer in the config file");
        }
        Ok(())
    }

    /// Starts evaluating every interval and delivering firings.
    pub fn start(self: &Arc<Self>) -> AlertThreads {
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let (work_tx, work_rx) = crossbeam_channel::bounded::<()>(1);
        let mut threads = Vec::new();
        let me = self.clone();
        let stop = stop_rx.clone();
        if let Ok(t) = std::thread::Builder::new()
            .name("xray-alerts".into())
            .spawn(move || loop {
                if let Err(e) = me.evaluate(&work_tx) {
                    tracing::warn!("alert evaluation failed: {e}");
                }
                match stop.recv_timeout(me.interval) {
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
                    _ => break,
                }
            })
        {
            threads.push(t);
        }
        let store = self.store.clone();
        if let Ok(t) = std::thread::Builder::new()
            .name("xray-webhooks".into())
            .spawn(move || deliver_all(&store, &work_rx, &stop_rx))
        {
            threads.push(t);
        }
        AlertThreads {
            stop: Some(stop_tx),
            threads,
        }
    }

    /// Evaluates every rule once; firings recorded here are queued for delivery.
    fn evaluate(&self, out: &Sender<()>) -> Result<(), StoreError> {
        for row in self.store.list_alerts()? {
            let Some(rule) = rule_view(&row) else {
                continue;
            };
            let since = row.created_at.saturating_sub(LOOKBACK_US);
            match &rule.condition {
                AlertCondition::RejectionRate {
                    pipeline,
                    step_type,
                    step_name,
                    above,
                    more_than,
                    last_runs,
                } => {
                    let (newest, over) = self.store.probe(&Probe::RateWindow {
                        pipeline,
                        step_type: step_type.as_str(),
                        step_name: step_name.as_deref(),
                        above: *above,
                        last_runs: i64::from(*last_runs),
                    })?;
                    let firing = over.len() > *more_than as usize;
                    match (firing, &row.firing_key, newest) {
                        (true, None, Some(newest)) => {
                            let key = format!("window:{newest}");
                            // One server turns the rule on; only it notifies.
                            if !self.store.start_firing(&row.alert_id, &key)? {
                                continue;
                            }
                            let summary = format!(
                                "{} of the last {last_runs} runs of `{pipeline}` had a {} step rejecting more than {above} of its input (threshold: more than {more_than})",
                                over.len(),
                                step_type.as_str()
                            );
                            let run_ids = over.into_iter().map(|(_, r)| r).collect();
                            self.fire(&rule, &row, key, summary, run_ids, out)?;
                        }
                        (false, Some(_), _) => self.store.stop_firing(&row.alert_id)?,
                        _ => {}
                    }
                }
                AlertCondition::RunFailed { pipeline } => {
                    let (_, found) = self.store.probe(&Probe::Failed { pipeline, since })?;
                    self.fire_each(&rule, &row, found, "run", out, |run| {
                        format!("run {run} of `{pipeline}` failed")
                    })?;
                }
                AlertCondition::LowScore {
                    pipeline,
                    step_type,
                    below,
                } => {
                    let (_, found) = self.store.probe(&Probe::LowScore {
                        pipeline: pipeline.as_deref(),
                        step_type: step_type.as_str(),
                        below: *below,
                        since,
                    })?;
                    let kind = step_type.as_str();
                    self.fire_each(&rule, &row, found, "step", out, |step| {
                        format!("{kind} step {step} scored below {below}")
                    })?;
                }
            }
        }
        Ok(())
    }

    /// Fires once for each (key, run) not fired before.
    fn fire_each(
        &self,
        rule: &AlertRule,
        row: &AlertRow,
        found: Vec<(String, String)>,
        prefix: &str,
        out: &Sender<()>,
        summary: impl Fn(&str) -> String,
    ) -> Result<(), StoreError> {
        if found.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = found.iter().map(|(k, _)| format!("{prefix}:{k}")).collect();
        let done = self.store.fired_keys(&row.alert_id, &keys)?;
        for ((id, run), key) in found.into_iter().zip(keys) {
            if !done.contains(&key) {
                self.fire(rule, row, key, summary(&id), vec![run], out)?;
            }
        }
        Ok(())
    }

    fn fire(
        &self,
        rule: &AlertRule,
        row: &AlertRow,
        window_key: String,
        summary: String,
        run_ids: Vec<String>,
        out: &Sender<()>,
    ) -> Result<(), StoreError> {
        let now = chrono::Utc::now();
        let notification = AlertNotification {
            alert_id: rule.alert_id.clone(),
            name: rule.name.clone(),
            window_key: window_key.clone(),
            fired_at: now,
            summary,
            run_ids,
        };
        let payload = serde_json::to_string(&notification).unwrap_or_default();
        let recorded = self.store.record_firing(&AlertEventRow {
            alert_id: row.alert_id.clone(),
            window_key: window_key.clone(),
            fired_at: now.timestamp_micros(),
            payload,
            status: "pending".into(),
            attempts: 0,
            last_error: None,
            delivered_at: None,
            next_attempt_at: now.timestamp_micros(),
            claimed_until: None,
        })?;
        if recorded {
            tracing::info!(alert = %rule.name, key = %window_key, "alert fired");
            // Wake the notifier (a full doorbell means it is already due to look).
            let _ = out.try_send(());
        }
        Ok(())
    }
}

/// Delivers due firings (its own and any other server's) until stopped; woken by new firings.
fn deliver_all(store: &Store, wake: &Receiver<()>, stop: &Receiver<()>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(WEBHOOK_TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into();
    loop {
        if let Err(e) = deliver_due(store, &agent) {
            tracing::warn!("webhook delivery: {e}");
        }
        crossbeam_channel::select! {
            recv(wake) -> w => if w.is_err() { return },
            recv(stop) -> _ => return,
            default(NOTIFIER_POLL) => {},
        }
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Claims the firings due now and makes one delivery attempt of each.
fn deliver_due(store: &Store, agent: &ureq::Agent) -> Result<(), StoreError> {
    let now = chrono::Utc::now().timestamp_micros();
    let until = now + micros(CLAIM);
    for row in store.claim_due(now, until, CLAIM_BATCH)? {
        let Some(url) = store.webhook_of(&row.alert_id)? else {
            let done = chrono::Utc::now().timestamp_micros();
            store.finish_attempt(
                &row,
                until,
                "failed",
                Some("the rule was deleted"),
                None,
                done,
            )?;
            continue;
        };
        let result = agent
            .post(&url)
            .header("content-type", "application/json")
            .header(
                "user-agent",
                concat!("xray-server/", env!("CARGO_PKG_VERSION")),
            )
            .send(row.payload.as_bytes());
        let error = match result {
            Ok(res) if res.status().is_success() => None,
            Ok(res) => Some(format!("webhook answered {}", res.status())),
            Err(e) => Some(format!("webhook unreachable: {e}")),
        };
        let done = chrono::Utc::now().timestamp_micros();
        let retry_in = usize::try_from(row.attempts)
            .ok()
            .and_then(|n| BACKOFF.get(n));
        match (&error, retry_in) {
            (None, _) => store.finish_attempt(&row, until, "delivered", None, Some(done), done)?,
            (Some(e), Some(wait)) => {
                tracing::warn!(alert = %row.alert_id, "{e}; retrying in {wait:?}");
                store.finish_attempt(&row, until, "pending", Some(e), None, done + micros(*wait))?
            }
            (Some(e), None) => {
                tracing::warn!(alert = %row.alert_id, "{e}; giving up");
                store.finish_attempt(&row, until, "failed", Some(e), None, done)?
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(webhook_url: &str) -> AlertRuleSpec {
        AlertRuleSpec {
            name: xray_wire::Name::fit("r"),
            webhook_url: webhook_url.to_string(),
            condition: AlertCondition::RunFailed {
                pipeline: xray_wire::Name::fit("p"),
            },
        }
    }

    #[test]
    fn webhook_urls_are_what_the_spec_pattern_says() {
        let long = format!("http://h/{}", "a".repeat(WEBHOOK_URL_MAX_LEN));
        for ok in [
            "http://hooks.internal:8080/xray?token=abc",
            "https://127.0.0.1:65535/a/b/",
            "http://h",
            "https://example.com/p%20q*(x)?a=b&c=d/e?f",
        ] {
            assert_eq!(check_rule(&rule(ok)), Ok(()), "{ok}");
        }
        for bad in [
            "ftp://x",
            "http://",
            "http://host:65536/",
            "http://exa mple.com",
            "http://h/\u{0}",
            "https://h/#frag",
            long.as_str(),
        ] {
            assert!(check_rule(&rule(bad)).is_err(), "{bad}");
        }
    }
}
