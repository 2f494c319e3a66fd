//! Alerting: rules evaluated on a timer; a firing is recorded once per rule and window (the
//! database's primary key decides, so several servers on one database notify once), then
//! POSTed as JSON to the rule's webhook with retries.
//!
//! Windows: `run_failed` fires once per failed run, `low_score` once per step, and
//! `rejection_rate` once each time its condition turns true (keyed by the newest run of the
//! window at that moment), re-arming when the condition turns false again. Per-run and per-step
//! rules look at runs started from an hour before the rule was created.

use crate::store::alerts::{AlertEventRow, AlertRow, Probe};
use crate::store::{Store, StoreError};
use crossbeam_channel::{Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use xray_wire::{
    AlertCondition, AlertEvent, AlertNotification, AlertRule, AlertRuleSpec, StepType,
};

/// Delivery attempts per firing.
const MAX_ATTEMPTS: i32 = 5;
/// Wait before the first retry; doubled each time.
const FIRST_RETRY: Duration = Duration::from_millis(200);
/// Time allowed for one webhook call.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// How far before a rule's creation per-run and per-step rules look.
const LOOKBACK_US: i64 = 3_600_000_000;

/// Checks a rule: a name, an http(s) webhook, and sensible thresholds.
pub fn check_rule(rule: &AlertRuleSpec) -> Result<(), String> {
    if rule.name.trim().is_empty() || rule.name.len() > 512 || rule.name.contains('\0') {
        return Err("name: must be 1 to 512 characters, without NUL".into());
    }
    let url = rule.webhook_url.as_str();
    let valid_url = (url.starts_with("http://") || url.starts_with("https://"))
        && url.parse::<ureq::http::Uri>().is_ok()
        && !url.contains('\0');
    if !valid_url || url.len() > 2048 {
        return Err(format!(
            "webhook_url: `{url}` is not an http:// or https:// URL"
        ));
    }
    let name_ok = |field: &str, v: &str| {
        if v.is_empty() || v.len() > 512 || v.contains('\0') {
            Err(format!("condition.{field}: must be 1 to 512 characters"))
        } else {
            Ok(())
        }
    };
    match &rule.condition {
        AlertCondition::RejectionRate {
            pipeline,
            step_name,
            above,
            more_than,
            last_runs,
            ..
        } => {
            name_ok("pipeline", pipeline)?;
            if let Some(n) = step_name {
                name_ok("step_name", n)?;
            }
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
        AlertCondition::RunFailed { pipeline } => name_ok("pipeline", pipeline)?,
        AlertCondition::LowScore {
            pipeline, below, ..
        } => {
            if let Some(p) = pipeline {
                name_ok("pipeline", p)?;
            }
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
        name: spec.name.clone(),
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

struct Delivery {
    alert_id: String,
    window_key: String,
    url: String,
    payload: String,
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

    /// Stores the config file's rules (idempotent).
    pub fn install_config_rules(&self) -> Result<(), StoreError> {
        for spec in &self.config_rules {
            let row = new_rule_row(config_rule_id(&spec.name), spec, "config");
            self.store.put_alert(&row)?;
        }
        Ok(())
    }

    /// Starts evaluating every interval and delivering firings.
    pub fn start(self: &Arc<Self>) -> AlertThreads {
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let (work_tx, work_rx) = crossbeam_channel::unbounded::<Delivery>();
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
    fn evaluate(&self, out: &Sender<Delivery>) -> Result<(), StoreError> {
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
                            let summary = format!(
                                "{} of the last {last_runs} runs of `{pipeline}` had a {} step rejecting more than {above} of its input (threshold: more than {more_than})",
                                over.len(),
                                step_type.as_str()
                            );
                            let run_ids = over.into_iter().map(|(_, r)| r).collect();
                            self.fire(&rule, &row, key.clone(), summary, run_ids, out)?;
                            self.store.set_firing(&row.alert_id, Some(&key))?;
                        }
                        (false, Some(_), _) => self.store.set_firing(&row.alert_id, None)?,
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
                    let kind = *step_type;
                    self.fire_each(&rule, &row, found, "step", out, |step| {
                        format!("{} step {step} scored below {below}", kind_name(kind))
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
        out: &Sender<Delivery>,
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
        out: &Sender<Delivery>,
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
            payload: payload.clone(),
            status: "pending".into(),
            attempts: 0,
            last_error: None,
            delivered_at: None,
        })?;
        if recorded {
            tracing::info!(alert = %rule.name, key = %window_key, "alert fired");
            let _ = out.send(Delivery {
                alert_id: row.alert_id.clone(),
                window_key,
                url: row.webhook_url.clone(),
                payload,
            });
        }
        Ok(())
    }
}

fn kind_name(t: StepType) -> &'static str {
    t.as_str()
}

/// Delivers firings one by one, retrying with backoff, until stopped.
fn deliver_all(store: &Store, work: &Receiver<Delivery>, stop: &Receiver<()>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(WEBHOOK_TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into();
    loop {
        crossbeam_channel::select! {
            recv(work) -> d => match d {
                Ok(d) => deliver(store, &agent, &d, stop),
                Err(_) => return,
            },
            recv(stop) -> _ => return,
        }
    }
}

fn deliver(store: &Store, agent: &ureq::Agent, d: &Delivery, stop: &Receiver<()>) {
    let mut wait = FIRST_RETRY;
    for attempt in 1..=MAX_ATTEMPTS {
        let result = agent
            .post(&d.url)
            .header("content-type", "application/json")
            .header(
                "user-agent",
                concat!("xray-server/", env!("CARGO_PKG_VERSION")),
            )
            .send(d.payload.as_bytes());
        let error = match result {
            Ok(res) if res.status().is_success() => None,
            Ok(res) => Some(format!("webhook answered {}", res.status())),
            Err(e) => Some(format!("webhook unreachable: {e}")),
        };
        let (status, delivered_at) = match (&error, attempt) {
            (None, _) => ("delivered", Some(chrono::Utc::now().timestamp_micros())),
            (Some(_), MAX_ATTEMPTS) => ("failed", None),
            (Some(_), _) => ("pending", None),
        };
        if let Err(e) = store.mark_delivery(
            &d.alert_id,
            &d.window_key,
            status,
            attempt,
            error.as_deref(),
            delivered_at,
        ) {
            tracing::warn!("cannot record a webhook delivery: {e}");
        }
        if error.is_none() {
            return;
        }
        // Wait before retrying, unless the server is stopping.
        if !matches!(
            stop.recv_timeout(wait),
            Err(crossbeam_channel::RecvTimeoutError::Timeout)
        ) {
            return;
        }
        wait *= 2;
    }
}
