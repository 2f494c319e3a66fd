//! What the server answers about many runs at once: the pipelines and their health.

use crate::Timestamp;
use serde::{Deserialize, Serialize};

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
