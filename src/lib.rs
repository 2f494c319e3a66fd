//! Example pipelines instrumented with X-Ray, used by `examples/` and by the end-to-end tests.

pub mod catalog;
pub mod competitor_selection;
pub mod content_pipeline;
