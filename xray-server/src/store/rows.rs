//! Rows as stored (one struct a table, with diesel's derives) and the [`WriteSet`] a request
//! becomes. Plain data: checking a request is [`super::validate`]'s work, turning rows into the
//! wire's views [`super::views`]'s; this module must not hold SQL.

use crate::schema::{runs, samples, step_reasons, steps};
use chrono::{TimeZone, Utc};
use diesel::prelude::*;
use xray_wire::Timestamp;

/// Outcome label of a rejection row.
pub const REJECTED: &str = "rejected";
/// Outcome label of an acceptance row.
pub const ACCEPTED: &str = "accepted";

/// A stored run.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = runs, treat_none_as_default_value = false)]
pub struct RunRow {
    pub run_id: String,
    pub pipeline: String,
    pub status: String,
    pub input: Option<String>,
    pub output: Option<String>,
    pub error: Option<String>,
    pub metadata: Option<String>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub duration_ms: Option<f64>,
    pub correlation_id: Option<String>,
    pub trace_id: Option<String>,
    pub traceparent: Option<String>,
    pub version: Option<String>,
    pub replay_of: Option<String>,
}

/// A stored step.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = steps, treat_none_as_default_value = false)]
pub struct StepRow {
    pub step_id: String,
    pub run_id: String,
    pub pipeline: String,
    pub position: i32,
    pub name: String,
    pub step_type: String,
    pub capture: String,
    pub input_count: Option<i64>,
    pub output_count: Option<i64>,
    pub rejected_count: i64,
    pub accepted_count: i64,
    pub rejection_rate: Option<f64>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub duration_ms: Option<f64>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub decision: Option<String>,
    pub decision_selected: Option<String>,
    pub decision_score: Option<f64>,
    pub error: Option<String>,
    pub attributes: Option<String>,
    /// [`super::packed::key`] of `step_id`, how the first item index (`item_index`) named the
    /// step; `None` for steps written since (the item index now numbers them by `item_doc`).
    pub step_key: Option<i64>,
    /// A rank step's ranking, as JSON text ([`super::ranking`]).
    pub ranking: Option<String>,
    /// Its close-call margin: the last item in's score minus the first item out's.
    pub rank_margin: Option<f64>,
}

/// An exact count for one step, outcome and reason.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = step_reasons, treat_none_as_default_value = false)]
pub struct ReasonRow {
    pub step_id: String,
    pub outcome: String,
    pub reason: String,
    pub count: i64,
}

/// One kept item event.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = samples, treat_none_as_default_value = false)]
pub struct SampleRow {
    pub step_id: String,
    pub outcome: String,
    pub reason: String,
    pub seq: i32,
    pub run_id: String,
    pub item_id: String,
    pub details: Option<String>,
}

/// Everything one request writes, grouped by how each group is merged into what is stored.
#[derive(Debug, Default)]
pub struct WriteSet {
    /// Complete runs (`POST /runs`): replace every column.
    pub runs_complete: Vec<RunRow>,
    /// `run_started`: set input, metadata, pipeline, start; create as `running` if new.
    pub runs_started: Vec<RunRow>,
    /// `run_finished`: set status, output, error, end, duration.
    pub runs_finished: Vec<RunRow>,
    /// Runs named by steps that arrived first: create as `running` if new, else leave alone.
    pub runs_placeholder: Vec<RunRow>,
    /// Finished steps: immutable, stored once.
    pub steps: Vec<StepRow>,
    /// Exact counts of those steps.
    pub reasons: Vec<ReasonRow>,
    /// Kept events of those steps, one entry a count row, ready to pack.
    pub kept: Vec<KeptSamples>,
    /// The item hashes ([`super::packed::key`]) of each rank step's kept ranked items, for the
    /// item index.
    pub ranked: Vec<(String, Vec<i64>)>,
}

/// The samples one count row kept, in order, already laid out as its stored blob holds them
/// before compression ([`super::packed`]): a write packs them without another copy.
#[derive(Debug, Clone, Default)]
pub struct KeptSamples {
    /// The step.
    pub step_id: String,
    /// `rejected` or `accepted`.
    pub outcome: String,
    /// The reason (empty for acceptances).
    pub reason: String,
    /// The samples, laid out for the blob (see [`super::packed::put_sample`]).
    pub raw: Vec<u8>,
    /// Each sample's item hash ([`super::packed::key`]), in order.
    pub keys: Vec<i64>,
}

impl KeptSamples {
    /// No samples yet of `step_id`'s `outcome` for `reason`.
    pub fn new(step_id: &str, outcome: &str, reason: &str) -> KeptSamples {
        KeptSamples {
            step_id: step_id.into(),
            outcome: outcome.into(),
            reason: reason.into(),
            raw: Vec::new(),
            keys: Vec::new(),
        }
    }

    /// Adds one sample: its item id and, if any, its details as compact JSON text.
    pub fn push(&mut self, item_id: &str, details: Option<&[u8]>) {
        super::packed::put_sample(&mut self.raw, item_id, details);
        self.keys.push(super::packed::key(item_id));
    }

    /// How many samples.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl WriteSet {
    /// The distinct run ids this write touches, in first-seen order.
    pub fn run_ids(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.runs_complete
            .iter()
            .chain(&self.runs_started)
            .chain(&self.runs_finished)
            .chain(&self.runs_placeholder)
            .filter(|r| seen.insert(r.run_id.clone()))
            .map(|r| r.run_id.clone())
            .collect()
    }
}

/// A time as stored: microseconds since the Unix epoch.
pub fn micros(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

/// A stored time back as a timestamp.
pub fn from_micros(us: i64) -> Timestamp {
    Utc.timestamp_micros(us)
        .single()
        .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC)
}
