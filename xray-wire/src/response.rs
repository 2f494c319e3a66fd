//! What the server answers. Types only: how they are filled is the server's (`store/views.rs`).

use crate::JsonText;
use crate::{Capture, Decision, ItemId, Ranking, ReasonSummary, RunStatus, StepType, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A run: without its steps in `GET /runs`, with them in `GET /runs/{id}` ([`RunDetail`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunSummary {
    /// The run's id.
    pub run_id: String,
    /// Its pipeline.
    pub pipeline: String,
    /// Its status.
    pub status: RunStatus,
    /// Its input.
    pub input: Option<JsonText>,
    /// Its output.
    pub output: Option<JsonText>,
    /// Its error.
    pub error: Option<String>,
    /// Its metadata.
    pub metadata: Option<JsonText>,
    /// The version of the pipeline's code that ran.
    #[serde(default)]
    pub version: Option<String>,
    /// The run or step this run replays.
    #[serde(default)]
    pub replay_of: Option<String>,
    /// The caller's correlation id.
    #[serde(default)]
    pub correlation_id: Option<String>,
    /// The W3C trace id it belongs to (32 hex digits).
    #[serde(default)]
    pub trace_id: Option<String>,
    /// The W3C `traceparent` it was given.
    #[serde(default)]
    pub traceparent: Option<String>,
    /// When it started.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub started_at: Timestamp,
    /// When it ended.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub ended_at: Option<Timestamp>,
    /// How long it took, in milliseconds.
    pub duration_ms: Option<f64>,
    /// Its steps, in order (only in `GET /runs/{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<StepView>>,
}

/// A run with all its steps in order (`GET /runs/{id}`): a [`RunSummary`] whose `steps` are set.
/// (One flat type rather than a flattened wrapper, so raw JSON fields parse without buffering.)
pub type RunDetail = RunSummary;

/// A page of runs, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunList {
    /// The runs.
    pub runs: Vec<RunSummary>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// One step of a run, in full (`GET /runs/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepView {
    /// The step's id.
    pub step_id: String,
    /// Order in the run.
    pub position: u32,
    /// Its name.
    pub name: String,
    /// Its type.
    pub step_type: StepType,
    /// Its capture level.
    pub capture: Capture,
    /// Items in.
    pub input_count: Option<u64>,
    /// Items out.
    pub output_count: Option<u64>,
    /// Rejections over all reasons (exact).
    pub rejected_count: u64,
    /// Share of the input that was rejected, 0..=1 (see the README for how it is derived).
    pub rejection_rate: Option<f64>,
    /// When it started.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub started_at: Timestamp,
    /// When it ended.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub ended_at: Option<Timestamp>,
    /// How long it took, in milliseconds.
    pub duration_ms: Option<f64>,
    /// Its input.
    pub input: Option<JsonText>,
    /// Its output.
    pub output: Option<JsonText>,
    /// Rejections by reason: exact counts and kept samples.
    pub rejections: BTreeMap<String, ReasonSummary>,
    /// Acceptances: exact count and kept samples.
    pub acceptances: ReasonSummary,
    /// What it chose.
    pub decision: Option<Decision>,
    /// A rank step's ranking (cutoff and scores at the cut filled in where they can be derived).
    #[serde(default)]
    pub ranking: Option<Ranking>,
    /// A rank step's close-call margin: the last item in's score minus the first item out's.
    #[serde(default)]
    pub margin: Option<f64>,
    /// Its error.
    pub error: Option<String>,
    /// Free-form attributes.
    pub attributes: Option<JsonText>,
}

/// One step found by `GET /steps`, naming its run and pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepHit {
    /// The step's id.
    pub step_id: String,
    /// Its run.
    pub run_id: String,
    /// Its run's pipeline.
    pub pipeline: String,
    /// Order in the run.
    pub position: u32,
    /// Its name.
    pub name: String,
    /// Its type.
    pub step_type: StepType,
    /// Its capture level.
    pub capture: Capture,
    /// Items in.
    pub input_count: Option<u64>,
    /// Items out.
    pub output_count: Option<u64>,
    /// Share of the input rejected.
    pub rejection_rate: Option<f64>,
    /// Exact rejection counts by reason.
    pub rejections: BTreeMap<String, u64>,
    /// When it started.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub started_at: Timestamp,
    /// How long it took, in milliseconds.
    pub duration_ms: Option<f64>,
    /// What it chose, if it chose.
    pub decision: Option<Decision>,
    /// A rank step's close-call margin: the last item in's score minus the first item out's.
    #[serde(default)]
    pub margin: Option<f64>,
    /// Its error.
    pub error: Option<String>,
}

/// A page of steps, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepList {
    /// The steps.
    pub steps: Vec<StepHit>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// What happened to an item at one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The step rejected it.
    Rejected,
    /// The step let it through.
    Accepted,
    /// The step chose it.
    Selected,
    /// A rank step placed it (see the event's `ranked`).
    Ranked,
}

/// One recorded event about one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemEvent {
    /// The run.
    pub run_id: String,
    /// The run's pipeline.
    pub pipeline: String,
    /// The step.
    pub step_id: String,
    /// The step's name.
    pub step_name: String,
    /// The step's type.
    pub step_type: StepType,
    /// The step's order in its run.
    pub position: u32,
    /// What happened.
    pub outcome: Outcome,
    /// The rejection reason.
    pub reason: Option<String>,
    /// Details recorded with the event.
    pub details: Option<JsonText>,
    /// The decision's score, for `selected`; the item's score, for `ranked`.
    pub score: Option<f64>,
    /// Where a rank step placed the item, for `ranked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranked: Option<RankedAt>,
    /// When the step started.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub started_at: Timestamp,
}

/// The fate of one item in one run (`GET /runs/{id}/items/{item_id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemFate {
    /// The run.
    pub run_id: String,
    /// The item.
    pub item_id: ItemId,
    /// Every recorded event about the item, in step order.
    pub events: Vec<ItemEvent>,
    /// Steps that kept only samples (or counts), where an event about this item may exist
    /// without having been kept.
    pub sampled_steps: Vec<String>,
}

/// One item across runs (`GET /items/{item_id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemHistory {
    /// The item.
    pub item_id: ItemId,
    /// Events about it, newest run first.
    pub events: Vec<ItemEvent>,
}

/// The answer to `POST /ingest` and `POST /runs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestResponse {
    /// Events (or runs) taken.
    pub accepted: usize,
    /// Runs touched.
    pub run_ids: Vec<String>,
    /// Events of an `/ingest` batch the server refused while it stored the others, by their
    /// place in the batch; absent when none were (an older server never sends it: all stored).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<RefusedEvent>,
}

/// One event of an `/ingest` batch that was not stored: sending it again cannot help.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefusedEvent {
    /// Its place in the batch's `events`, from 0.
    pub index: usize,
    /// `bad_request` (invalid) or `conflict` (its step id is a step of another run).
    pub code: String,
    /// What is wrong, naming the field (`events[3].step_finished.step.step_id: …`).
    pub error: String,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `ok` when the database answers.
    pub status: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// The server's version.
    pub version: String,
}

/// Every error the API returns: a machine-readable code and a message that says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiErrorBody {
    /// `bad_request`, `not_found`, `method_not_allowed`, `conflict`, `payload_too_large`, `unavailable`, `internal`.
    pub code: String,
    /// What is wrong, naming the field.
    pub error: String,
}

/// A page of one run's steps in order, without their samples (`GET /runs/{id}/steps`): enough to
/// draw the timeline of a run with thousands of steps. One step in full, with every kept sample,
/// is `GET /runs/{id}/steps/{step_id}` ([`StepView`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunStepPage {
    /// The run, without its steps.
    pub run: RunSummary,
    /// Its steps in order, with exact rejection counts by reason.
    pub steps: Vec<StepHit>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Where a rank step placed an item, and how far it was from the cut.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RankedAt {
    /// Its position, from 1.
    pub position: u64,
    /// How many went on (positions `1..=cutoff`), if known.
    pub cutoff: Option<u64>,
    /// The score at the cutoff position, if known.
    pub cutoff_score: Option<f64>,
    /// Its score minus the cutoff's: below 0, by how much it missed; 0 or more, its lead.
    pub margin: Option<f64>,
    /// Whether it made the cut (its position is at most the cutoff), if the cutoff is known.
    pub made_the_cut: Option<bool>,
}
