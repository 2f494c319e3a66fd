//! The `#[xray::run]` and `#[xray::step]` attributes. Use them through the `xray` crate, which
//! re-exports them.
//!
//! ```text
//! use serde_json::json;
//!
//! #[xray::run(pipeline = "competitor_selection")]
//! fn select_competitor(title: &str) -> Result<String, String> {
//!     let candidates = search(title);
//!     let kept = filter_candidates(candidates, 100.0);
//!     kept.first().map(|c| c.id.clone()).ok_or_else(|| "no candidate".to_string())
//! }
//!
//! #[xray::step(step_type = "filter")]
//! fn filter_candidates(candidates: Vec<Candidate>, max_price: f64) -> Vec<Candidate> {
//!     candidates
//!         .into_iter()
//!         .filter(|c| {
//!             if c.price > max_price {
//!                 step.reject(&c.id, "price_too_high", json!({"price": c.price, "threshold": max_price}));
//!                 false
//!             } else {
//!                 step.accept(&c.id);
//!                 true
//!             }
//!         })
//!         .collect()
//! }
//! ```
//!
//! # `#[xray::run(pipeline = "...")]`
//! Opens a run on the default client (see `xray::init`) around the function. Its arguments are
//! the run's input (an object keyed by argument name), its return value the output; an `Err` or
//! a panic marks it failed with the error's text (the panic still propagates). Steps called
//! inside it belong to it, on this thread and across `.await`.
//!
//! # `#[xray::step(step_type = "...")]`
//! Opens a step in the current run (or, outside any run, a one-step run of its own). `step_type`
//! is one of `generate`, `retrieve`, `filter`, `rank`, `select`, `transform`; the name defaults
//! to the function's (`name = "..."`); `capture = "minimal" | "sample" | "full"`. Arguments and
//! return value are the step's input and output; when the function takes or returns a collection
//! (`Vec`, slice, set, map, or a `Result` / `Option` of one), the input and output counts are
//! filled in unless the body set them. A binding named `step` (an `xray::StepGuard`: it records
//! without a lock; `step.handle()` gives an `xray::Step` for other threads) is in scope in the
//! body, and `xray::current_step()` works in the functions it calls.
//!
//! # Both
//! `skip(arg, ...)` leaves arguments out of the input, `skip_all` leaves them all out; `self` is
//! never recorded. An argument or return value is recorded as JSON when its type is `Serialize`,
//! else as its `Debug` text, else as a note naming its type: no type stops the code compiling.
//! `replay` makes the function replayable with the `xray-replay` crate (a dependency of the
//! program, beside `xray`): its arguments are recorded whole (up to
//! `Config::max_replay_input_bytes`, not cut at the usual preview), and it is registered under
//! its pipeline (a run) or step name (a step) so that `xray_replay::run` / `xray_replay::step`
//! can call it again on a recorded input. Its recorded arguments must be
//! `Serialize + DeserializeOwned` (a compile error points at one that is not); skipped ones are
//! given at replay time (`xray_replay::ReplayContext::provide`). It works on synchronous free
//! functions without type parameters (a compile error says so on a method, a generic or async
//! function, an `impl Trait` or destructured argument); not on associated functions without
//! `self`, which it cannot tell apart from free ones (the registration would not compile).
//!
//! They work on free functions, methods (`&self`, `&mut self`, `self`), generic functions,
//! `impl Trait` arguments and returns, `async fn` and `async-trait` methods, with early `return`
//! and `?`. Mistakes in the attribute are compile errors pointing at the mistake.

mod attr;
mod expand;
mod replay;

use proc_macro::TokenStream;

/// Records each call of the function as a run of a pipeline. See the crate docs.
#[proc_macro_attribute]
pub fn run(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::instrument(attr::Kind::Run, args.into(), item.into()).into()
}

/// Records each call of the function as a step of the current run. See the crate docs.
#[proc_macro_attribute]
pub fn step(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::instrument(attr::Kind::Step, args.into(), item.into()).into()
}
