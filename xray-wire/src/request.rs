//! What clients send: complete runs (`POST /runs`) and SDK event batches (`POST /ingest`).
//! Unknown fields are refused; names are [`Name`]s. Checks that span fields are the server's.

use crate::{Capture, ItemId, Name, RunStatus, StepType, Timestamp};
use crate::{JsonText, Ranking};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One kept item event: the item and, optionally, why (any JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// The item the event is about.
    pub item_id: ItemId,
    /// Free-form details (`{"price": 150, "threshold": 100}`), kept as JSON text: the SDK
    /// serialises them once and the server stores and returns that text without re-parsing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<JsonText>,
}

/// The exact count of one outcome (a rejection reason, or acceptances) and the samples kept of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReasonSummary {
    /// Exact number of events, whatever the capture level.
    #[serde(deserialize_with = "crate::json::whole")]
    #[cfg_attr(feature = "openapi", schema(maximum = 9223372036854775807_i64))]
    pub count: u64,
    /// The events kept: none at `minimal`, up to 50 (reservoir-sampled) at `sample`, all at `full`.
    #[serde(default)]
    pub samples: Vec<Sample>,
}

/// What a select (or rank) step chose, with its score and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// The chosen item.
    #[serde(default)]
    pub selected: Option<ItemId>,
    /// Its score.
    #[serde(default)]
    pub score: Option<f64>,
    /// Why it was chosen (any JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    /// The item that came second, for the step's close-call margin (`score - runner_up_score`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_up: Option<ItemId>,
    /// The runner-up's score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_up_score: Option<f64>,
}

/// One finished step: counts, reasons, samples, decision, input and output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StepRecord {
    /// Unique id, made by the client. Required in `POST /ingest`; in `POST /runs` it defaults to
    /// `{run_id}:{position}`.
    #[serde(default)]
    pub step_id: Option<Name>,
    /// Order of the step in its run (0-based). In `POST /runs` it defaults to the index in `steps`.
    #[serde(default, deserialize_with = "crate::json::whole_opt")]
    #[cfg_attr(feature = "openapi", schema(maximum = 2147483647))]
    pub position: Option<u32>,
    /// The step's name (`filter_candidates`).
    pub name: Name,
    /// What kind of step it is.
    pub step_type: StepType,
    /// How much item detail was kept.
    #[serde(default)]
    pub capture: Capture,
    /// Items in.
    #[serde(default, deserialize_with = "crate::json::whole_opt")]
    #[cfg_attr(feature = "openapi", schema(maximum = 9223372036854775807_i64))]
    pub input_count: Option<u64>,
    /// Items out.
    #[serde(default, deserialize_with = "crate::json::whole_opt")]
    #[cfg_attr(feature = "openapi", schema(maximum = 9223372036854775807_i64))]
    pub output_count: Option<u64>,
    /// When the step started.
    #[serde(default, deserialize_with = "crate::time::optional")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub started_at: Option<Timestamp>,
    /// When it ended.
    #[serde(default, deserialize_with = "crate::time::optional")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub ended_at: Option<Timestamp>,
    /// How long it took, in milliseconds.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub duration_ms: Option<f64>,
    /// The step's recorded input (any JSON).
    #[serde(default)]
    pub input: Option<JsonText>,
    /// The step's recorded output (any JSON).
    #[serde(default)]
    pub output: Option<JsonText>,
    /// Rejections by reason (each reason a `Name`).
    #[serde(default, deserialize_with = "crate::names::reasons")]
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<Name, ReasonSummary>))]
    pub rejections: BTreeMap<String, ReasonSummary>,
    /// Acceptances.
    #[serde(default)]
    pub acceptances: ReasonSummary,
    /// What the step chose, if it chose.
    #[serde(default)]
    pub decision: Option<Decision>,
    /// A rank step's ranking: positions, scores and the cutoff.
    #[serde(default)]
    pub ranking: Option<Ranking>,
    /// The error the step ended with, if any.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(pattern = "^[^\\u0000]*$"))]
    pub error: Option<String>,
    /// Free-form attributes (a JSON object).
    #[serde(default)]
    pub attributes: Option<JsonText>,
}

/// A complete run in one request body: `POST /runs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    /// Unique id, made by the client so a re-sent run is the same run. Generated when absent.
    #[serde(default)]
    pub run_id: Option<Name>,
    /// The pipeline's name.
    pub pipeline: Name,
    /// Defaults to `completed`.
    #[serde(default)]
    pub status: Option<RunStatus>,
    /// The run's input.
    #[serde(default)]
    pub input: Option<JsonText>,
    /// The run's output.
    #[serde(default)]
    pub output: Option<JsonText>,
    /// The error it failed with.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(pattern = "^[^\\u0000]*$"))]
    pub error: Option<String>,
    /// Free-form metadata (a JSON object).
    #[serde(default)]
    pub metadata: Option<JsonText>,
    /// The version of the pipeline's code that ran (a release, a commit…), to compare versions:
    /// `GET /runs?version=…`.
    #[serde(default)]
    pub version: Option<Name>,
    /// The run or step this run replays (its id): `GET /runs?replay_of=…`.
    #[serde(default)]
    pub replay_of: Option<Name>,
    /// The caller's correlation id (a request id, an order number…), to find the run from
    /// another system: `GET /runs?correlation_id=…`.
    #[serde(default)]
    pub correlation_id: Option<Name>,
    /// The W3C `traceparent` of the request that caused the run; its trace id is searchable
    /// with `GET /runs?trace_id=…`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::trace::traceparent_schema))]
    pub traceparent: Option<String>,
    /// When it started (defaults to the time the server received it).
    #[serde(default, deserialize_with = "crate::time::optional")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub started_at: Option<Timestamp>,
    /// When it ended.
    #[serde(default, deserialize_with = "crate::time::optional")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub ended_at: Option<Timestamp>,
    /// How long it took, in milliseconds.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub duration_ms: Option<f64>,
    /// Its steps, in order.
    #[serde(default)]
    pub steps: Vec<StepRecord>,
}

/// A run has begun: its input and metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RunStarted {
    /// The run.
    pub run_id: Name,
    /// Its pipeline.
    pub pipeline: Name,
    /// When it started.
    #[serde(deserialize_with = "crate::time::required")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub started_at: Timestamp,
    /// Its input.
    #[serde(default)]
    pub input: Option<JsonText>,
    /// Free-form metadata.
    #[serde(default)]
    pub metadata: Option<JsonText>,
    /// The version of the pipeline's code that ran (a release, a commit…), to compare versions:
    /// `GET /runs?version=…`.
    #[serde(default)]
    pub version: Option<Name>,
    /// The run or step this run replays (its id): `GET /runs?replay_of=…`.
    #[serde(default)]
    pub replay_of: Option<Name>,
    /// The caller's correlation id (a request id, an order number…), to find the run from
    /// another system: `GET /runs?correlation_id=…`.
    #[serde(default)]
    pub correlation_id: Option<Name>,
    /// The W3C `traceparent` of the request that caused the run; its trace id is searchable
    /// with `GET /runs?trace_id=…`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::trace::traceparent_schema))]
    pub traceparent: Option<String>,
}

/// A step of a run has finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StepFinished {
    /// The run it belongs to (which may not have arrived yet).
    pub run_id: Name,
    /// The run's pipeline.
    pub pipeline: Name,
    /// The step (with its `step_id`, `position` and `started_at`, which `/ingest` requires).
    #[cfg_attr(feature = "openapi", schema(schema_with = ingest_step))]
    pub step: StepRecord,
}

/// The schema of an `/ingest` step: a [`StepRecord`] that gives what `POST /runs` can default
/// (`step_id`, `position`) and its start time.
#[cfg(feature = "openapi")]
fn ingest_step() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{
        AllOfBuilder, KnownFormat, ObjectBuilder, Ref, SchemaFormat, Type,
    };
    use utoipa::PartialSchema;
    let required = ObjectBuilder::new()
        .property("step_id", Name::schema())
        .property(
            "position",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0))
                .maximum(Some(2_147_483_647)),
        )
        .property(
            "started_at",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
        .required("step_id")
        .required("position")
        .required("started_at");
    AllOfBuilder::new()
        .item(Ref::from_schema_name("StepRecord"))
        .item(required)
        .description(Some(
            "The step, as in `POST /runs`, with `step_id`, `position` and `started_at` given.",
        ))
        .into()
}

/// A run has ended: status, output, error, timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RunFinished {
    /// The run.
    pub run_id: Name,
    /// Its pipeline.
    pub pipeline: Name,
    /// When it started.
    #[serde(deserialize_with = "crate::time::required")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub started_at: Timestamp,
    /// When it ended.
    #[serde(deserialize_with = "crate::time::required")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub ended_at: Timestamp,
    /// `completed` or `failed`.
    #[cfg_attr(feature = "openapi", schema(schema_with = finished_status))]
    pub status: RunStatus,
    /// Its output.
    #[serde(default)]
    pub output: Option<JsonText>,
    /// Its error.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(pattern = "^[^\\u0000]*$"))]
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub duration_ms: Option<f64>,
}

/// The schema of a finished run's status: `completed` or `failed` (not `running`).
#[cfg(feature = "openapi")]
fn finished_status() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["completed", "failed"]))
        .description(Some("How the run ended: `completed` or `failed`."))
        .into()
}

/// One SDK event, tagged by its kind: `{"run_started": {...}}`, `{"step_finished": {...}}`,
/// `{"run_finished": {...}}`. Events may arrive in any order and more than once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A run has begun.
    RunStarted(RunStarted),
    /// A step has finished.
    StepFinished(Box<StepFinished>),
    /// A run has ended.
    RunFinished(RunFinished),
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Event {
    /// One object with exactly one of the three tags (written out: the derive would allow other
    /// keys beside the tag, which the server refuses).
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Ref};
        let variant = |tag: &str, schema: &str, doc: &str| {
            ObjectBuilder::new()
                .property(tag, Ref::from_schema_name(schema))
                .required(tag)
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
                .description(Some(doc))
        };
        OneOfBuilder::new()
            .item(variant("run_started", "RunStarted", "A run has begun."))
            .item(variant(
                "step_finished",
                "StepFinished",
                "A step has finished.",
            ))
            .item(variant("run_finished", "RunFinished", "A run has ended."))
            .description(Some(
                "One SDK event, tagged by its kind: `{\"run_started\": {...}}`, \
                 `{\"step_finished\": {...}}` or `{\"run_finished\": {...}}`.",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Event {
    /// The three event schemas and what they refer to.
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::{PartialSchema, ToSchema};
        schemas.push((RunStarted::name().into(), RunStarted::schema()));
        <RunStarted as ToSchema>::schemas(schemas);
        schemas.push((StepFinished::name().into(), StepFinished::schema()));
        <StepFinished as ToSchema>::schemas(schemas);
        schemas.push((RunFinished::name().into(), RunFinished::schema()));
        <RunFinished as ToSchema>::schemas(schemas);
    }
}

/// The body of `POST /ingest`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IngestBatch {
    /// The events, in any order.
    pub events: Vec<Event>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_tagged_and_strict() {
        let json = r#"{"events":[{"run_started":{"run_id":"r1","pipeline":"p","started_at":"2026-11-26T12:00:00Z"}}]}"#;
        let batch: IngestBatch = serde_json::from_str(json).unwrap();
        assert!(matches!(&batch.events[0], Event::RunStarted(r) if r.run_id == "r1"));
        let typo = r#"{"events":[{"run_started":{"run_id":"r1","pipline":"p","started_at":"2026-11-26T12:00:00Z"}}]}"#;
        let err = serde_json::from_str::<IngestBatch>(typo)
            .unwrap_err()
            .to_string();
        assert!(err.contains("pipline"), "{err}");
    }

    #[test]
    fn a_step_round_trips() {
        let json = serde_json::json!({
            "name": "filter_candidates", "step_type": "filter", "input_count": 3, "output_count": 1,
            "rejections": {"price_too_high": {"count": 2, "samples": [{"item_id": 7, "details": {"price": 150}}]}},
            "acceptances": {"count": 1, "samples": [{"item_id": "a"}]},
        });
        let step: StepRecord = serde_json::from_value(json).unwrap();
        assert_eq!(step.capture, Capture::Sample);
        assert_eq!(
            step.rejections["price_too_high"].samples[0]
                .item_id
                .as_str(),
            "7"
        );
        let back: StepRecord =
            serde_json::from_value(serde_json::to_value(&step).unwrap()).unwrap();
        assert_eq!(back, step);
    }
}
