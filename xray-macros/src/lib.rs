//! Procedural macros for X-Ray, re-exported by the `xray` crate. The attributes
//! `#[xray::run]` and `#[xray::step]` are not written yet; this crate holds their place in the
//! workspace so that user code depends on `xray` alone.
