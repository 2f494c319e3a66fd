//! Operating the server: retention policies and sweeps, alert rules and their firings. Types
//! only: how they are evaluated is the server's.

use crate::{Name, StepType, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How long runs are kept: by age, by count, or both (whichever removes more).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Delete runs that started more than this many days ago.
    #[serde(default)]
    pub max_age_days: Option<u32>,
    /// Keep only this many newest runs (per pipeline).
    #[serde(default)]
    pub max_runs: Option<u64>,
}

/// A policy for one pipeline, replacing the default policy for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PipelineRetention {
    /// The pipeline.
    pub pipeline: String,
    /// Its policy.
    #[serde(flatten)]
    pub policy: RetentionPolicy,
}

/// What one sweep removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SweepReport {
    /// When it started.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub started_at: Option<Timestamp>,
    /// When it ended.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub finished_at: Option<Timestamp>,
    /// Runs deleted (their steps, counts and samples with them).
    pub runs_deleted: u64,
    /// Steps deleted.
    pub steps_deleted: u64,
    /// Kept item events deleted.
    pub samples_deleted: u64,
    /// Runs deleted per pipeline.
    pub by_pipeline: BTreeMap<String, u64>,
    /// The error that stopped it, if one did.
    pub error: Option<String>,
}

/// `GET /admin/retention`: the policies in force and what the last sweep removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetentionStatus {
    /// The policy of every pipeline without its own.
    pub default: RetentionPolicy,
    /// Pipelines with their own policy.
    pub pipelines: Vec<PipelineRetention>,
    /// Seconds between sweeps.
    pub sweep_interval_secs: u64,
    /// Runs deleted per transaction, so a sweep never holds the database for long.
    pub batch_size: u32,
    /// The last sweep this server made (`null` before the first).
    pub last_sweep: Option<SweepReport>,
}

/// When an alert fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AlertCondition {
    /// Steps of a pipeline rejected more than `above` of their input in more than `more_than`
    /// of the pipeline's last `last_runs` runs. Fires once when it becomes true, again only
    /// after it has been false.
    RejectionRate {
        /// The pipeline.
        pipeline: Name,
        /// Step type to watch (default `filter`).
        #[serde(default = "filter")]
        step_type: StepType,
        /// Only steps with this name.
        #[serde(default)]
        step_name: Option<Name>,
        /// Rejection rate threshold, 0..=1.
        #[cfg_attr(feature = "openapi", schema(minimum = 0.0, maximum = 1.0))]
        above: f64,
        /// Fires when more runs than this are over the threshold; below `last_runs`, or it
        /// could never fire.
        #[serde(deserialize_with = "crate::json::whole")]
        #[cfg_attr(feature = "openapi", schema(maximum = 9999))]
        more_than: u32,
        /// The window: this many newest runs of the pipeline, 1 to 10,000.
        #[serde(deserialize_with = "crate::json::whole")]
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10000))]
        last_runs: u32,
    },
    /// A run of the pipeline failed. Fires once per failed run.
    RunFailed {
        /// The pipeline.
        pipeline: Name,
    },
    /// A decision scored below `below`. Fires once per step.
    LowScore {
        /// Only this pipeline (default: all).
        #[serde(default)]
        pipeline: Option<Name>,
        /// Step type to watch (default `select`).
        #[serde(default = "select")]
        step_type: StepType,
        /// Score threshold.
        below: f64,
    },
}

fn filter() -> StepType {
    StepType::Filter
}

fn select() -> StepType {
    StepType::Select
}

/// What a webhook URL may be: `http://` or `https://`, a host name or IPv4 address, a port
/// (0 to 65535), then a path and a query of URL characters. The spec says it and the server
/// checks it, so both mean the same URLs.
pub const WEBHOOK_URL_PATTERN: &str = concat!(
    r"^https?://[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?",
    r"(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?",
    r"(/[A-Za-z0-9._~!$&'()*+,;=:@%-]*)*(\?[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?$",
);

/// The longest webhook URL accepted, in bytes.
pub const WEBHOOK_URL_MAX_LEN: usize = 2048;

#[cfg(feature = "openapi")]
fn webhook_url_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(WEBHOOK_URL_PATTERN))
        .max_length(Some(WEBHOOK_URL_MAX_LEN))
        .description(Some(
            "Where to POST the JSON notification: an http:// or https:// URL.",
        ))
        .into()
}

/// A new alert rule: `POST /alerts`, or an `[[alerts]]` table of the server's config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AlertRuleSpec {
    /// A name for people.
    pub name: Name,
    /// Where to POST the JSON notification: an `http://` or `https://` URL
    /// ([`WEBHOOK_URL_PATTERN`], at most [`WEBHOOK_URL_MAX_LEN`] bytes).
    #[cfg_attr(feature = "openapi", schema(schema_with = webhook_url_schema))]
    pub webhook_url: String,
    /// When it fires.
    pub condition: AlertCondition,
}

/// A stored alert rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertRule {
    /// Its id.
    pub alert_id: String,
    /// A name for people.
    pub name: String,
    /// Where notifications go.
    pub webhook_url: String,
    /// When it fires.
    pub condition: AlertCondition,
    /// `config` (from the config file) or `api` (from `POST /alerts`).
    pub source: String,
    /// When it was created.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

/// `GET /alerts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertList {
    /// The rules.
    pub alerts: Vec<AlertRule>,
}

/// One firing of a rule: what a webhook receives and `GET /alerts/{id}/events` lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertNotification {
    /// The rule.
    pub alert_id: String,
    /// The rule's name.
    pub name: String,
    /// What the firing is about: a run id, a step id, or the window's newest run.
    pub window_key: String,
    /// When it fired.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub fired_at: Timestamp,
    /// One line for people.
    pub summary: String,
    /// The runs involved (open them with `GET /runs/{id}`).
    pub run_ids: Vec<String>,
}

/// A firing and the state of its delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertEvent {
    /// What was (or will be) sent.
    pub notification: AlertNotification,
    /// `pending` (waiting for its next attempt), `sending`, `delivered`, or `failed` (gave up
    /// after 8 attempts over about 48 minutes).
    pub status: String,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// The last delivery error.
    pub last_error: Option<String>,
    /// When the webhook accepted it.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub delivered_at: Option<Timestamp>,
}

/// `GET /alerts/{id}/events`, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertEventList {
    /// The firings.
    pub events: Vec<AlertEvent>,
}
