//! Retention: a background thread deletes expired runs (with their steps, counts and samples)
//! in small transactions, so a sweep never stalls ingest. It decides what expires; the deletes
//! themselves are the store's ([`crate::store::Store::delete_runs`]).
//!
//! Each pipeline follows its own policy if it has one, else the default policy; a policy keeps
//! runs for `max_age_days` and/or the newest `max_runs` runs, whichever removes more.

use crate::store::{Store, StoreError};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use xray_wire::{PipelineRetention, RetentionPolicy, RetentionStatus, SweepReport};

/// The `[retention]` table of the config file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Policy of every pipeline without its own.
    #[serde(default, flatten)]
    pub default: RetentionPolicy,
    /// Seconds between sweeps.
    #[serde(default = "default_interval")]
    pub sweep_interval_secs: u64,
    /// Runs deleted per transaction.
    #[serde(default = "default_batch")]
    pub batch_size: u32,
    /// Per-pipeline policies (`[[retention.pipelines]]`).
    #[serde(default)]
    pub pipelines: Vec<PipelineRetention>,
}

fn default_interval() -> u64 {
    300
}

fn default_batch() -> u32 {
    500
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            default: RetentionPolicy::default(),
            sweep_interval_secs: default_interval(),
            batch_size: default_batch(),
            pipelines: Vec::new(),
        }
    }
}

impl RetentionConfig {
    /// Whether any policy removes anything.
    pub fn is_active(&self) -> bool {
        let active = |p: &RetentionPolicy| p.max_age_days.is_some() || p.max_runs.is_some();
        active(&self.default) || self.pipelines.iter().any(|p| active(&p.policy))
    }

    fn policy_of(&self, pipeline: &str) -> &RetentionPolicy {
        self.pipelines
            .iter()
            .find(|p| p.pipeline == pipeline)
            .map_or(&self.default, |p| &p.policy)
    }
}

/// The sweeper: its settings, last report, and (when started) its thread.
pub struct Retention {
    config: RetentionConfig,
    store: Store,
    last: Mutex<Option<SweepReport>>,
    /// Serialises sweeps (the thread's and `POST /admin/retention/sweep`).
    sweeping: Mutex<()>,
}

/// Stops the sweeper thread when dropped.
pub struct SweeperThread {
    stop: Option<crossbeam_channel::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for SweeperThread {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Retention {
    /// A sweeper for `store` (not yet running).
    pub fn new(config: RetentionConfig, store: Store) -> Arc<Retention> {
        Arc::new(Retention {
            config,
            store,
            last: Mutex::new(None),
            sweeping: Mutex::new(()),
        })
    }

    /// Starts sweeping every `sweep_interval_secs` (first sweep at once), if any policy is set.
    pub fn start(self: &Arc<Self>) -> Option<SweeperThread> {
        if !self.config.is_active() {
            return None;
        }
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
        let me = self.clone();
        let interval = Duration::from_secs(self.config.sweep_interval_secs.max(1));
        let thread = std::thread::Builder::new()
            .name("xray-retention".into())
            .spawn(move || loop {
                let report = me.sweep();
                if let Some(e) = &report.error {
                    tracing::warn!("retention sweep failed: {e}");
                } else if report.runs_deleted > 0 {
                    tracing::info!(runs = report.runs_deleted, "retention sweep");
                }
                match rx.recv_timeout(interval) {
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
                    _ => break,
                }
            })
            .ok()?;
        Some(SweeperThread {
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// The policies and the last sweep.
    pub fn status(&self) -> RetentionStatus {
        RetentionStatus {
            default: self.config.default.clone(),
            pipelines: self.config.pipelines.clone(),
            sweep_interval_secs: self.config.sweep_interval_secs,
            batch_size: self.config.batch_size,
            last_sweep: self.last.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    /// Deletes everything expired now, in batches, and records what went.
    pub fn sweep(&self) -> SweepReport {
        let _one_at_a_time = self.sweeping.lock().unwrap_or_else(|e| e.into_inner());
        let mut report = SweepReport {
            started_at: Some(chrono::Utc::now()),
            ..SweepReport::default()
        };
        if let Err(e) = self.sweep_into(&mut report) {
            report.error = Some(e.to_string());
        }
        report.finished_at = Some(chrono::Utc::now());
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(report.clone());
        report
    }

    fn sweep_into(&self, report: &mut SweepReport) -> Result<(), StoreError> {
        let now_us = chrono::Utc::now().timestamp_micros();
        let batch = i64::from(self.config.batch_size.max(1));
        let mut by_pipeline: HashMap<String, u64> = HashMap::new();
        for pipeline in self.store.pipelines()? {
            let policy = self.config.policy_of(&pipeline);
            let older_than = policy
                .max_age_days
                .map(|d| now_us.saturating_sub(i64::from(d).saturating_mul(86_400_000_000)));
            let keep = policy
                .max_runs
                .map(|n| i64::try_from(n).unwrap_or(i64::MAX));
            if older_than.is_none() && keep.is_none() {
                continue;
            }
            loop {
                let ids = self
                    .store
                    .expired_runs(&pipeline, older_than, keep, batch)?;
                if ids.is_empty() {
                    break;
                }
                let (runs, steps, samples) = self.store.delete_runs(&ids)?;
                report.runs_deleted += runs as u64;
                report.steps_deleted += steps as u64;
                report.samples_deleted += samples as u64;
                *by_pipeline.entry(pipeline.clone()).or_default() += runs as u64;
                if (ids.len() as i64) < batch || runs == 0 {
                    break;
                }
                // Let writers in between batches.
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        report.by_pipeline = by_pipeline.into_iter().collect();
        Ok(())
    }
}
