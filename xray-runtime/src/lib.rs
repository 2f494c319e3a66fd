//! X-Ray: record why each step of a pipeline kept, dropped or chose each item, and ship it to
//! the X-Ray server without ever slowing down or breaking the pipeline.
//!
//! ```no_run
//! use serde_json::json;
//! use xray::{StepType, XRay};
//!
//! let xray = XRay::new("competitor_selection");
//! let run = xray.run(json!({"product_title": "iPhone 15 Case"}));
//!
//! let step = run.step("filter_candidates", StepType::Filter);
//! for (id, price) in [("case_1", 25.0), ("case_2", 150.0)] {
//!     if price > 100.0 {
//!         step.reject(id, "price_too_high", json!({"price": price, "threshold": 100}));
//!     } else {
//!         step.accept(id);
//!     }
//! }
//! step.finish();
//!
//! let select = run.step("select_best", StepType::Select);
//! select.decide("case_1", 0.93, json!({"why": "best relevance"}));
//! select.finish();
//!
//! run.set_output(json!({"selected": "case_1"}));
//! run.finish().ok();
//! ```
//!
//! # Or annotate existing functions
//!
//! ```no_run
//! use serde_json::json;
//!
//! #[derive(Debug, Clone, serde::Serialize)]
//! struct Candidate { id: String, price: f64 }
//!
//! #[xray::run(pipeline = "competitor_selection")]
//! fn select_competitor(title: &str, catalog: Vec<Candidate>) -> Result<String, String> {
//!     let kept = filter_candidates(catalog, 100.0);
//!     kept.first().map(|c| c.id.clone()).ok_or_else(|| format!("nothing for {title}"))
//! }
//!
//! #[xray::step(step_type = "filter")]
//! fn filter_candidates(candidates: Vec<Candidate>, max_price: f64) -> Vec<Candidate> {
//!     candidates.into_iter().filter(|c| {
//!         if c.price > max_price {
//!             step.reject(&c.id, "price_too_high", json!({"price": c.price, "threshold": max_price}));
//!             false
//!         } else {
//!             step.accept(&c.id);
//!             true
//!         }
//!     }).collect()
//! }
//! ```
//!
//! The run records the arguments as its input and the `Ok` value as its output (an `Err` or a
//! panic fails it); the step records its input and output, fills its counts from the `Vec`s, and
//! has `step` in scope. Mistakes in the attributes are compile errors: see [`step`](macro@step).
//!
//! `#[xray::run(.., replay)]` / `#[xray::step(.., replay)]` make a function replayable: the
//! `xray-replay` crate runs a recorded run or step again on today's code and shows what changed.
//!
//! # What is kept
//! Counts per reason are always exact. Item details are kept by capture level: `minimal` (counts
//! only), `sample` (the default: up to 50 items per rejection reason and 500 accepted items,
//! chosen by reservoir sampling so every item of the step has the same chance, not just the first
//! ones), `full` (every item). An item's
//! details are capped at [`Config::max_details_bytes`] (4 KiB by default); bigger details are
//! replaced by `{"_xray_truncated": true, "limit_bytes": N, "preview": "…"}` (`N` the cap, the
//! preview the first half of the cap's worth of their JSON).
//!
//! # Where the data goes
//! Recording only touches memory. Finished steps and runs go through a bounded queue to one
//! background thread that batches them and POSTs them to the server's `/ingest`. When the server
//! is away, the [`OfflineMode`] decides: `buffer` (default) spools to local disk and re-sends
//! later, also from a later process; `silent` drops and counts; `fail` reports the error from
//! [`RunGuard::finish`] and [`flush`] (for tests). [`stats`] tells what became of every event.
//!
//! # The current run and step
//! [`current_run`] and [`current_step`] give helpers the run and step they are called in, without
//! passing handles around. Enter a context with [`Run::enter`], [`Step::enter`] or
//! [`Context::in_scope`]; carry it into futures with [`Instrument::in_xray`] (re-entered on every
//! poll, on whichever thread) and into threads with [`Context::current`]. Outside any context
//! they return no-op handles. A step opened with [`step()`](fn@step) outside any run becomes a
//! one-step run of its own in the default pipeline.

mod client;
mod config;
mod context;
mod correlation;
mod error;
mod fit;
mod guard;
mod item;
mod json;
mod panics;
#[doc(hidden)]
pub mod __private {
    //! Used by the attributes' expansion and by `xray-replay`; not a public API.
    pub use crate::json::{is_truncated, truncated};
    pub use crate::private::*;
}
mod private;
mod ranking;
mod run;
mod sampling;
mod step;
mod transport;

pub use client::{flush, init, shutdown, stats, RunBuilder, ShutdownGuard, XRay};
pub use config::{ApiKey, Config, ConfigBuilder, OfflineMode};
pub use context::{Context, Entered, Instrument, Instrumented};
pub use correlation::Correlation;
pub use error::XRayError;
pub use guard::StepGuard;
pub use item::IntoItemId;
pub use run::{Run, RunGuard};
pub use step::Step;
pub use transport::Stats;
pub use xray_macros::{run, step};
pub use xray_wire as wire;
pub use xray_wire::{Capture, ItemId, RunStatus, StepType};

/// The run the calling code is in (a no-op handle outside any run).
pub fn current_run() -> Run {
    Context::current().run().clone()
}

/// The step the calling code is in (a no-op handle outside any step).
pub fn current_step() -> Step {
    Context::current().step().clone()
}

/// Locks a mutex whether or not a thread panicked holding it (what it guards stays usable).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opens a step in the current run; outside any run, a one-step run of its own in the default
/// client's default pipeline.
pub fn step(name: impl Into<String>, step_type: StepType) -> StepGuard {
    current_run().step(name, step_type)
}
