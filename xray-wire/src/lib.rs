//! The X-Ray wire format, defined once: what the SDK sends (`POST /ingest`, `POST /runs`) and
//! what the server answers (`GET /runs`, `GET /runs/{id}`, `GET /steps`, item fates).
//!
//! Both `xray-runtime` (the SDK) and `xray-server` use these types, so the two cannot drift.
//! Request types reject unknown fields, so a misspelt field is an error rather than silently lost.

mod admin;
mod ids;
mod insights;
mod json;
mod names;
mod ranking;
mod replay;
mod request;
mod response;
mod taxonomy;
pub mod time;
mod trace;

pub use admin::{
    AlertCondition, AlertEvent, AlertEventList, AlertList, AlertNotification, AlertRule,
    AlertRuleSpec, PipelineRetention, RetentionPolicy, RetentionStatus, SweepReport,
    WEBHOOK_URL_MAX_LEN, WEBHOOK_URL_PATTERN,
};
pub use ids::ItemId;
pub use insights::{
    PipelineCompare, PipelineList, PipelineStats, PipelineSummary, ReasonChange, RunBucket,
    StepBucket, StepChange, StepFigures, StepSeries, VersionSpan,
};
pub use json::JsonText;
pub use names::{
    fit_name, fit_name_in_place, fit_text, fit_text_in_place, name_is_valid, text_is_valid, Name,
    NameError, CUT_MARK, EMPTY_NAME, MAX_NAME_LEN, NUL_REPLACEMENT,
};
pub use ranking::{cut_scores, RankSample, Ranking, TAIL_KEPT, TOP_POSITIONS_KEPT};
pub use replay::{replayed_position, step_replay_of, ReplayReport, StepFacts, StepReplay};
pub use request::{
    Decision, Event, IngestBatch, ReasonSummary, RunFinished, RunRecord, RunStarted, Sample,
    StepFinished, StepRecord,
};
pub use response::{
    ApiErrorBody, Health, IngestResponse, ItemEvent, ItemFate, ItemHistory, Outcome, RankedAt,
    RefusedEvent, RunDetail, RunList, RunStepPage, RunSummary, StepHit, StepList, StepView,
};
pub use taxonomy::{BucketWidth, Capture, ParseEnumError, RunStatus, StepType};
pub use trace::{normalize_trace_id, TraceError, TraceParent, MAX_CORRELATION_ID_LEN};

/// A point in time on the wire: RFC 3339, UTC (`2026-11-26T12:00:00.123456Z`).
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// Rejections kept per reason at the `sample` capture level.
pub const SAMPLES_PER_REASON: usize = 50;

/// Acceptances kept at the `sample` capture level: what a step let through is usually what
/// matters when a bad item reached the end, so many more are kept than per rejection reason.
pub const ACCEPTANCES_KEPT: usize = 500;
