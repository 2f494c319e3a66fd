//! What the `#[xray::run]` and `#[xray::step]` attributes expand to, and what `xray-replay`
//! builds on. Not a public API: it may change in any release.
//!
//! Arguments and return values are recorded by the best means each type offers, chosen at the
//! call site by autoref specialisation: as JSON if the type is `Serialize`, else as its `Debug`
//! text, else as a note that it was not recorded. Collections also give their length, and
//! `Result`s their error (and, as output, their `Ok` value).

use crate::client::Core;
use crate::context::{Context, Instrument, Instrumented};
use crate::guard::StepGuard;
use crate::json::{capped_debug, capped_json};
use crate::run::RunGuard;
use crate::step::Step;
use crate::XRay;
use pin_project_lite::pin_project;
use serde::Serialize;
use std::any::Any;
use std::fmt::{Debug, Display};
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use xray_wire::{Capture, StepType};

/// The arguments a function recorded, as `(name, capped JSON text)`.
pub type Fields = Vec<(&'static str, Option<Box<str>>)>;

/// The arguments as one JSON object text (`None` when there are none), written once: an
/// argument's text can be the whole input preview. The names are Rust identifiers, which hold
/// nothing JSON escapes.
fn object_text(fields: Fields) -> Option<Box<str>> {
    if fields.is_empty() {
        return None;
    }
    let mut text = String::with_capacity(input_len(&fields));
    for (name, value) in &fields {
        text.push(if text.is_empty() { '{' } else { ',' });
        text.push('"');
        text.push_str(name);
        text.push_str("\":");
        text.push_str(value.as_deref().unwrap_or("null"));
    }
    text.push('}');
    debug_assert_eq!(text.len(), input_len(&fields));
    Some(text.into_boxed_str())
}

/// The length of the arguments' JSON object text: `{"name":value,...}`, `null` for a value
/// not recorded.
pub fn input_len(fields: &Fields) -> usize {
    let member = |(name, value): &(&str, Option<Box<str>>)| {
        name.len() + value.as_deref().map_or(4, str::len) + 4 // two quotes, colon, comma or brace
    };
    fields.iter().map(member).sum::<usize>() + 1 // the closing brace
}

/// The size limit for recorded arguments and return values: the current run's client's, else
/// the default client's.
pub fn io_cap() -> usize {
    let run = crate::current_run().shared;
    let core = run.map_or_else(Core::default_core, |s| s.core.clone());
    core.config.max_io_bytes
}

/// Opens the run of a `#[xray::run]` function on the default client (`version`: the
/// attribute's, else the client's).
pub fn run_start(pipeline: &'static str, version: Option<String>, input: Fields) -> RunGuard {
    run_builder(&XRay::new(pipeline), version, input).start()
}

/// The run of a `#[xray::run]` function, about to start.
pub fn run_builder(client: &XRay, version: Option<String>, input: Fields) -> crate::RunBuilder<'_> {
    let mut run = client.run_builder_text(object_text(input));
    if version.is_some() {
        run.version = version;
    }
    run
}

/// A run about to start whose input is already capped JSON text.
pub fn run_builder_text(client: &XRay, input: Option<Box<str>>) -> crate::RunBuilder<'_> {
    client.run_builder_text(input)
}

/// `f` of the default client's settings.
pub fn with_default_config<R>(f: impl FnOnce(&crate::Config) -> R) -> R {
    f(&Core::default_core().config)
}

/// `GET path` on the default client's server, with its API key and timeout: status and body.
pub fn get(path: &str) -> Result<(u16, String), ureq::Error> {
    let config = &Core::default_core().config;
    let server = crate::transport::http::Sender::new(&config.endpoint, config.api_key.as_ref());
    server.get(path, config.http_timeout)
}

/// Opens the step of a `#[xray::step]` function in the current run (or a run of its own).
pub fn step_start(
    name: &'static str,
    step_type: StepType,
    capture: Option<Capture>,
    input: Fields,
) -> StepGuard {
    let run = crate::current_run();
    let guard = match capture {
        Some(c) => run.step_with_capture(name, step_type, c),
        None => run.step(name, step_type),
    };
    guard.set_io_text(object_text(input), None);
    guard
}

/// Holds a reference for the autoref-specialised probes below.
pub struct Probe<'a, T: ?Sized>(pub &'a T);

/// Probes: for each method, one trait per rank, implemented on a `Probe` behind as many
/// references as its rank (the expansion calls through the most references, so the highest rank
/// that applies wins).
macro_rules! probes {
    ($(fn $method:ident $params:tt -> $ret:ty { $($probes:tt)* })*) => {
        $(probes!(@each [$method $params $ret] $($probes)*);)*
    };
    (@each $sig:tt $($(#[$doc:meta])* $name:ident for $probe:ty where $bounds:tt => $body:expr;)*) => {
        $(probes!(@one $sig $(#[$doc])* $name for $probe where $bounds => $body);)*
    };
    (@one [$method:ident (&$this:ident $(, $arg:ident: $ty:ty)?) $ret:ty]
     $(#[$doc:meta])* $name:ident for $probe:ty where [$($bounds:tt)*] => $body:expr) => {
        $(#[$doc])*
        pub trait $name {
            #[doc = concat!("`", stringify!($method), "` at this rank.")]
            fn $method(&self $(, $arg: $ty)?) -> $ret;
        }
        impl<$($bounds)*> $name for $probe {
            #[allow(unused_variables)]
            fn $method(&$this $(, $arg: $ty)?) -> $ret { $body }
        }
    };
}

probes! {
    fn xray_json(&self, cap: usize) -> Option<Box<str>> {
        /// A `Result` whose `Ok` type is `Serialize`: the `Ok` value as capped JSON (nothing for
        /// an `Err`, whose text is recorded as the error).
        ViaOkSerialize for &&&&Probe<'_, Result<T, E>> where [T: Serialize, E]
            => self.0.as_ref().ok().and_then(|v| capped_json(v, cap));
        /// A `Result` whose `Ok` type is `Debug` only: the `Ok` value's `Debug` text.
        ViaOkDebug for &&&Probe<'_, Result<T, E>> where [T: Debug, E]
            => self.0.as_ref().ok().map(|v| capped_debug(v, cap));
        /// A `Serialize` value (the preferred way): as capped JSON.
        ViaSerialize for &&Probe<'_, T> where [T: Serialize + ?Sized] => capped_json(self.0, cap);
        /// A value that is not `Serialize`: its `Debug` text, as a JSON string.
        ViaDebug for &Probe<'_, T> where [T: Debug + ?Sized] => Some(capped_debug(self.0, cap));
        /// A value that is neither `Serialize` nor `Debug`: a note saying so.
        ViaNothing for Probe<'_, T> where [T: ?Sized] => {
            let note = format!("<{} is neither Serialize nor Debug>", std::any::type_name::<T>());
            serde_json::to_string(&note).ok().map(String::into_boxed_str)
        };
    }
    fn xray_count(&self) -> Option<usize> {
        /// A collection: its length.
        ViaCountable for &Probe<'_, T> where [T: Countable + ?Sized] => self.0.xray_len();
        /// Not a collection: no length.
        ViaUncountable for Probe<'_, T> where [T: ?Sized] => None;
    }
    fn xray_error(&self) -> Option<String> {
        /// A `Result` whose error has a `Display`: the error's text, if it is an `Err`.
        ViaDisplayError for &&Probe<'_, Result<T, E>> where [T, E: Display]
            => self.0.as_ref().err().map(ToString::to_string);
        /// A `Result` whose error has only `Debug`: the error's `Debug` text.
        ViaDebugError for &Probe<'_, Result<T, E>> where [T, E: Debug]
            => self.0.as_ref().err().map(|e| format!("{e:?}"));
        /// Anything else: never an error.
        ViaNoError for Probe<'_, T> where [T: ?Sized] => None;
    }
}

/// Collections whose length counts a step's items.
pub trait Countable {
    /// The number of items.
    fn xray_len(&self) -> Option<usize>;
}
macro_rules! countable {
    ($($t:ty => [$($g:tt)*]),* $(,)?) => {$(
        impl<$($g)*> Countable for $t {
            fn xray_len(&self) -> Option<usize> {
                Some(self.len())
            }
        }
    )*};
}
countable!(
    Vec<T> => [T],
    [T] => [T],
    [T; N] => [T, const N: usize],
    std::collections::VecDeque<T> => [T],
    std::collections::HashSet<T, S> => [T, S],
    std::collections::BTreeSet<T> => [T],
    std::collections::HashMap<K, V, S> => [K, V, S],
    std::collections::BTreeMap<K, V> => [K, V],
    Box<[T]> => [T],
);
impl<T: Countable + ?Sized> Countable for &T {
    fn xray_len(&self) -> Option<usize> {
        (**self).xray_len()
    }
}
impl<T: Countable, E> Countable for Result<T, E> {
    fn xray_len(&self) -> Option<usize> {
        self.as_ref().ok().and_then(Countable::xray_len)
    }
}
impl<T: Countable> Countable for Option<T> {
    fn xray_len(&self) -> Option<usize> {
        self.as_ref().and_then(Countable::xray_len)
    }
}

/// Records what a `#[xray::step]` function returned: output, inferred counts, error.
pub fn finish_step(
    step: &Step,
    output: Option<Box<str>>,
    input_count: Option<usize>,
    output_count: Option<usize>,
    error: Option<String>,
) {
    step.set_io_text(None, output);
    step.infer_counts(input_count, output_count);
    if let Some(e) = error {
        step.set_error(e);
    }
}

/// Records what a `#[xray::run]` function returned.
pub fn finish_run(run: &crate::Run, output: Option<Box<str>>, error: Option<String>) {
    run.set_output_text(output);
    if let Some(e) = error {
        run.set_error(e);
    }
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    match crate::panics::payload_text(payload) {
        Some(s) => format!("panicked: {s}"),
        None => "panicked".to_string(),
    }
}

/// Runs a synchronous body inside `ctx`; a panic is recorded on `on_panic` and then goes on.
pub fn call_sync<R>(ctx: &Context, on_panic: impl FnOnce(String), body: impl FnOnce() -> R) -> R {
    let _entered = ctx.enter();
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(r) => r,
        Err(payload) => {
            on_panic(panic_message(&*payload));
            resume_unwind(payload)
        }
    }
}

pin_project! {
    /// A future polled inside its X-Ray context that records a panic before letting it go on.
    pub struct Traced<F, P> {
        #[pin]
        inner: Instrumented<F>,
        on_panic: Option<P>,
    }
}

/// Wraps an async body: polled inside `ctx`, its panic recorded by `on_panic`.
pub fn traced<F: Future, P: FnOnce(String)>(ctx: Context, on_panic: P, fut: F) -> Traced<F, P> {
    Traced {
        inner: fut.in_xray(ctx),
        on_panic: Some(on_panic),
    }
}

impl<F: Future, P: FnOnce(String)> Future for Traced<F, P> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        let inner = this.inner;
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => {
                if let Some(record) = this.on_panic.take() {
                    record(panic_message(&*payload));
                }
                resume_unwind(payload)
            }
        }
    }
}

/// The `step` of a `#[xray::step]` body: a guard that records without a lock and hands over to
/// the step when the body ends (the step ends when the function returns).
pub fn body_step(step: Step) -> StepGuard {
    StepGuard::of(step)
}

/// The context of a step handle, for the async expansion.
pub fn step_context(step: &Step) -> Context {
    Context::of_step(step.clone())
}

/// The context of a run handle, for the async expansion.
pub fn run_context(run: &crate::Run) -> Context {
    Context::of_run(run.clone())
}
