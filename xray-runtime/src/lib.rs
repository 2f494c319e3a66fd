//! X-Ray: record why each step of a pipeline kept, dropped or chose each item.
//!
//! This crate is what user code depends on and imports as `xray`. It re-exports the wire types
//! ([`wire`]) shared with the server. The recording client (runs, steps, sampling, the background
//! shipper) and the `#[xray::run]` / `#[xray::step]` attributes are being built on top of it.

pub use xray_wire as wire;
pub use xray_wire::{Capture, RunStatus, StepType};
