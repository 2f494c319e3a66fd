//! What the server answers about many runs at once: the pipelines and their health.

use crate::{BucketWidth, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `GET /pipelines`: every pipeline with runs in the window, by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PipelineList {
    /// The pipelines, in order of name.
    pub pipelines: Vec<PipelineSummary>,
}

/// One pipeline's runs in the window, at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PipelineSummary {
    /// The pipeline's name.
    pub pipeline: String,
    /// Its runs.
    pub runs: u64,
    /// Of them, the runs that failed.
    pub failed: u64,
    /// When the first of them started.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub first_run_at: Timestamp,
    /// When the last of them started.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub last_run_at: Timestamp,
    /// The versions of its code those runs give, in the order they first appeared.
    pub versions: Vec<String>,
}

/// `GET /pipelines/{pipeline}/stats`: one pipeline over a window, bucket by bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PipelineStats {
    /// The pipeline's name.
    pub pipeline: String,
    /// The buckets' width.
    pub bucket: BucketWidth,
    /// Only this version's runs, if the request named one.
    pub version: Option<String>,
    /// The pipeline's finished runs per bucket (buckets with no run are left out).
    pub runs: Vec<RunBucket>,
    /// Each step name's series, in the order the steps run.
    pub steps: Vec<StepSeries>,
    /// The versions seen in the window, in the order they first appeared (chart markers).
    pub versions: Vec<VersionSpan>,
}

/// The pipeline's runs in one bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunBucket {
    /// Where the bucket starts.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub start: Timestamp,
    /// Runs started in the bucket.
    pub runs: u64,
    /// Of them, the runs that failed.
    pub failed: u64,
}

/// One step name of a pipeline over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepSeries {
    /// The step's name.
    pub step: String,
    /// Its type (the most recent one, should it have changed).
    pub step_type: crate::StepType,
    /// Its buckets, oldest first (buckets where it did not run are left out).
    pub buckets: Vec<StepBucket>,
}

/// One step name's figures in one bucket: every step of that name in the pipeline's runs
/// started in the bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepBucket {
    /// Where the bucket starts.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub start: Timestamp,
    /// Runs that ran the step.
    pub runs: u64,
    /// Of them, the runs whose step failed.
    pub failed: u64,
    /// Items in, summed.
    pub input_count: u64,
    /// Items out, summed.
    pub output_count: u64,
    /// Rejected items over items in (absent when no input count was given).
    pub rejection_rate: Option<f64>,
    /// Exact rejection counts by reason.
    pub rejections: BTreeMap<String, u64>,
    /// Median step duration in milliseconds.
    pub duration_ms_p50: Option<f64>,
    /// 95th percentile step duration in milliseconds.
    pub duration_ms_p95: Option<f64>,
    /// Mean score of the step's decisions (select steps), if any had a score.
    pub score_mean: Option<f64>,
}

/// A version of the pipeline's code within a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionSpan {
    /// The version.
    pub version: String,
    /// Its first run in the window.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub first_run_at: Timestamp,
    /// Its last run in the window.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub last_run_at: Timestamp,
    /// Its runs in the window.
    pub runs: u64,
}

/// `GET /pipelines/{pipeline}/compare`: two sets of runs side by side (A and B), the steps and
/// reasons that moved most first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PipelineCompare {
    /// The pipeline's name.
    pub pipeline: String,
    /// Selector A as given (`version:1.4.2` or `since:<t>,until:<t>`).
    pub a: String,
    /// Selector B as given.
    pub b: String,
    /// Runs selected by A.
    pub a_runs: u64,
    /// Runs selected by B.
    pub b_runs: u64,
    /// The biggest move in words, e.g. `filter_candidates: price_too_high 10% → 58% of input`
    /// (absent when nothing moved).
    pub headline: Option<String>,
    /// Every step name seen in A or B, the one that moved most first.
    pub steps: Vec<StepChange>,
}

/// One step name in A and in B.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepChange {
    /// The step's name.
    pub step: String,
    /// Its type.
    pub step_type: crate::StepType,
    /// Its figures over A's runs.
    pub a: StepFigures,
    /// Its figures over B's runs.
    pub b: StepFigures,
    /// How much it moved: the largest change of a reason's share of input or of the rejection
    /// rate, in share points (0.48 for 10% → 58%).
    pub moved: f64,
    /// Each reason seen in A or B, the one that moved most first.
    pub reasons: Vec<ReasonChange>,
}

/// A step name's figures over one side's runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepFigures {
    /// Runs that ran the step.
    pub runs: u64,
    /// Items in, summed.
    pub input_count: u64,
    /// Items out, summed.
    pub output_count: u64,
    /// Rejected items over items in.
    pub rejection_rate: Option<f64>,
    /// Mean score of the step's decisions.
    pub score_mean: Option<f64>,
    /// Median step duration in milliseconds.
    pub duration_ms_p50: Option<f64>,
}

/// One rejection reason of a step in A and in B.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReasonChange {
    /// The reason.
    pub reason: String,
    /// Its rejections over A's runs.
    pub a_count: u64,
    /// Its rejections over B's runs.
    pub b_count: u64,
    /// Its share of the step's input over A's runs.
    pub a_share: Option<f64>,
    /// Its share of the step's input over B's runs.
    pub b_share: Option<f64>,
    /// `b_share - a_share` (0 when either is absent).
    pub change: f64,
}
