//! X-Ray replay: run a recorded run (or one of its steps) again on its captured input, against
//! today's code, and see what changed. A crate of its own beside the `xray` SDK (package
//! `xray-runtime`), which records; add both to use `replay`.
//!
//! Mark the functions `replay`: their arguments are then recorded whole (up to
//! [`Config::max_replay_input_bytes`](xray::Config::max_replay_input_bytes), 8 MiB by default;
//! over it the call is recorded as usual, with a mark saying why it cannot be replayed) and
//! they are registered under their pipeline (a run) or step name (a step). Their recorded
//! arguments must be `Serialize + DeserializeOwned` (a compile error says so otherwise). Skipped
//! arguments (`skip(catalog)`) are not recorded: the caller gives them at replay time in a
//! [`ReplayContext`], by argument name.
//!
//! ```no_run
//! # #[derive(Clone, serde::Serialize, serde::Deserialize)] struct Product;
//! #[xray::run(pipeline = "competitor_selection", replay, skip(catalog))]
//! fn select_competitor(title: &str, max_price: f64, catalog: &[Product]) -> Option<String> {
//!     None
//! }
//!
//! fn main() {
//!     let catalog: Vec<Product> = Vec::new();
//!     // XRAY_REPLAY=<run id> (and XRAY_REPLAY_STEP=<position or step id> for one step):
//!     // replay it, print what changed, exit. Otherwise carry on.
//!     xray_replay::from_env_with(|| {
//!         xray_replay::ReplayContext::new().provide("catalog", catalog.clone())
//!     });
//!
//!     // Or from code:
//!     let context = xray_replay::ReplayContext::new().provide("catalog", catalog.clone());
//!     let report = xray_replay::run("8f2c…", &context).expect("replayed");
//!     println!("{report}");
//! }
//! ```
//!
//! A replay is a new run marked `replay_of` the original (the run's id, or `RUN_ID:POSITION` for
//! one step), shipped like any run; [`ReplayReport`] compares the two as the server stored them.
//! Everything is fetched and checked (the run, the mark, a registered function, every argument
//! read back) before the replay run starts, so a failed replay stores nothing.

mod record;

pub use record::{ReplayArg, ReplayArgs, ReplayKind, Replayable};
pub use xray_wire::ReplayReport;

#[doc(hidden)]
pub mod hooks {
    //! Used by the attributes' expansion; not a public API.
    pub use super::record::{
        replay_input, replay_limit, run_start_replayable, step_start_replayable, Prepare,
    };
    pub use inventory;
}

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use record::{registered, MARK};
use std::any::Any;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;
use xray::XRayError;
use xray_wire::{step_replay_of, ApiErrorBody, JsonText, RunDetail};

/// How long a replay waits for its run to be delivered.
const DELIVERY: Duration = Duration::from_secs(30);

/// Why a replay could not be done.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The server did not answer.
    #[error("cannot reach the X-Ray server at {endpoint}: {reason} (nothing was replayed)")]
    Unreachable {
        /// The server's URL.
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
    /// The server answered with an error.
    #[error("the X-Ray server answered {status} to {path}: {message}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// What was asked.
        path: String,
        /// The server's message.
        message: String,
    },
    /// No run with this id.
    #[error("run `{0}` is not on the X-Ray server")]
    RunNotFound(String),
    /// The run has no such step.
    #[error("run `{run}` has no step `{step}` (give the step's position in the run or its id)")]
    StepNotFound {
        /// The run.
        run: String,
        /// The step asked for.
        step: String,
    },
    /// The run or step was recorded in a way that cannot be replayed.
    #[error("{what} cannot be replayed: {why}")]
    NotReplayable {
        /// The run or step.
        what: String,
        /// Why.
        why: String,
    },
    /// No function of this program is registered for it.
    #[error(
        "no `replay` function for {what} in this program: mark the function that records it \
         with `replay` and make sure this program calls it"
    )]
    NotRegistered {
        /// The pipeline or step.
        what: String,
    },
    /// More than one function is registered for it.
    #[error("several `replay` functions for {what}: {functions}")]
    Ambiguous {
        /// The pipeline or step.
        what: String,
        /// Their paths.
        functions: String,
    },
    /// A recorded argument cannot be read back as the function's argument type.
    #[error("argument `{argument}` of `{function}` cannot be read back from the captured input: {reason}")]
    BadInput {
        /// The function.
        function: String,
        /// The argument.
        argument: String,
        /// Why.
        reason: String,
    },
    /// A skipped argument was not given in the [`ReplayContext`].
    #[error(
        "argument `{argument}` of `{function}` is skipped, so it must be given at replay time: \
         ReplayContext::new().provide(\"{argument}\", <a {type_name}>)"
    )]
    MissingArgument {
        /// The function.
        function: String,
        /// The argument.
        argument: String,
        /// The type to give.
        type_name: String,
    },
    /// A skipped argument was given as another type.
    #[error("argument `{argument}` of `{function}` was provided as a {given}, not the {expected} it takes")]
    WrongType {
        /// The function.
        function: String,
        /// The argument.
        argument: String,
        /// The type it takes.
        expected: String,
        /// The type given.
        given: String,
    },
    /// The function ran but opened no run (it returned before its wrapper could).
    #[error("`{0}` opened no run when replayed")]
    NoRunOpened(String),
    /// The replay run was recorded but not delivered.
    #[error("the replay run could not be delivered: {0}")]
    Delivery(#[from] XRayError),
    /// The replay run was recorded but the server does not have it (spooled for later?).
    #[error("the replay run `{0}` was not stored by the server (spooled while it was away?)")]
    NotStored(String),
}

/// A skipped argument given for replay.
struct Provided {
    value: Box<dyn Any>,
    type_name: &'static str,
}

/// The arguments a replay cannot read from the recording: those the functions `skip`, given by
/// argument name.
///
/// A skipped `catalog: &[Product]` is provided as the owned `Vec<Product>` (a `&str` as a
/// `String`, a `&T` as a `T`); a skipped argument taken by value is cloned for the call.
#[derive(Default)]
pub struct ReplayContext {
    values: HashMap<String, Provided>,
}

impl ReplayContext {
    /// An empty context.
    pub fn new() -> ReplayContext {
        ReplayContext::default()
    }

    /// Gives `value` for every skipped argument named `argument`.
    pub fn provide<T: Any>(mut self, argument: &str, value: T) -> ReplayContext {
        self.values.insert(
            argument.to_string(),
            Provided {
                value: Box::new(value),
                type_name: std::any::type_name::<T>(),
            },
        );
        self
    }
}

/// `GET /runs/{id}` on the default client's server (`None`: no such run).
fn fetch_run(run_id: &str) -> Result<Option<RunDetail>, ReplayError> {
    let path = format!("/runs/{}", utf8_percent_encode(run_id, SEGMENT));
    let (status, text) = xray::__private::get(&path).map_err(|e| ReplayError::Unreachable {
        endpoint: xray::__private::with_default_config(|c| c.endpoint.clone()),
        reason: e.to_string(),
    })?;
    let message = match status {
        200 => match serde_json::from_str(&text) {
            Ok(run) => return Ok(Some(run)),
            Err(e) => format!("not a run: {e}"),
        },
        404 => return Ok(None),
        _ => serde_json::from_str::<ApiErrorBody>(&text).map_or(text, |b| b.error),
    };
    Err(ReplayError::Server {
        status,
        path,
        message,
    })
}

/// The run to replay.
fn original(run_id: &str) -> Result<RunDetail, ReplayError> {
    fetch_run(run_id)?.ok_or_else(|| ReplayError::RunNotFound(run_id.to_string()))
}

/// Delivers the replay run, fetches it and compares it with the original.
fn report(original: &RunDetail, replay_id: &str) -> Result<ReplayReport, ReplayError> {
    xray::flush(DELIVERY)?;
    let replay =
        fetch_run(replay_id)?.ok_or_else(|| ReplayError::NotStored(replay_id.to_string()))?;
    Ok(ReplayReport::compare(original, &replay))
}

/// What a path segment keeps unescaped: RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Checks the mark a `replay` function leaves in a run's metadata or a step's attributes.
fn check_mark(what: &str, marks: Option<&JsonText>, attribute: &str) -> Result<(), ReplayError> {
    let mark = marks.map(|m| m.to_value()[MARK].clone());
    let why = match mark {
        Some(serde_json::Value::Bool(true)) => return Ok(()),
        Some(serde_json::Value::Object(o)) => o
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("its recording says it cannot be")
            .to_string(),
        _ => format!(
            "it was recorded without `replay`, so its input is a preview (cut at \
             Config::max_io_bytes) and its skipped arguments are unknown; add `replay` to \
             its {attribute} and record it again"
        ),
    };
    Err(ReplayError::NotReplayable {
        what: what.to_string(),
        why,
    })
}

/// Replays run `run_id` of a pipeline whose `#[xray::run(.., replay)]` function this program
/// has: calls it on the run's captured input (and `context`'s skipped arguments) inside a new
/// run marked `replay_of` it, delivers that run, and compares the two.
pub fn run(run_id: &str, context: &ReplayContext) -> Result<ReplayReport, ReplayError> {
    let original = original(run_id)?;
    check_mark(
        &format!("run `{run_id}`"),
        original.metadata.as_ref(),
        "#[xray::run(..)]",
    )?;
    let function = registered(ReplayKind::Run, &original.pipeline)?;
    let args = ReplayArgs::new(function.function, original.input.as_ref(), context)?;
    let call = (function.prepare)(&args)?;
    record::expect_run(run_id.to_string());
    // A panic is recorded on the replay run by the function's wrapper: report it from there.
    let _ = catch_unwind(AssertUnwindSafe(call));
    let replay_id = record::opened_run()
        .ok_or_else(|| ReplayError::NoRunOpened(function.function.to_string()))?;
    report(&original, &replay_id)
}

/// Replays one step of run `run_id` (`step`: its position in the run, or its id) whose
/// `#[xray::step(.., replay)]` function this program has: calls it on the step's captured input
/// inside a new run of the same pipeline marked `replay_of` `RUN_ID:POSITION`, delivers that
/// run, and compares its steps with the original's from that step on.
pub fn step(
    run_id: &str,
    step: &str,
    context: &ReplayContext,
) -> Result<ReplayReport, ReplayError> {
    let original = original(run_id)?;
    let found = original
        .steps
        .iter()
        .flatten()
        .find(|s| s.step_id == step || s.position.to_string() == step)
        .ok_or_else(|| ReplayError::StepNotFound {
            run: run_id.to_string(),
            step: step.to_string(),
        })?;
    check_mark(
        &format!(
            "step `{}` (position {}) of run `{run_id}`",
            found.name, found.position
        ),
        found.attributes.as_ref(),
        "#[xray::step(..)]",
    )?;
    let function = registered(ReplayKind::Step, &found.name)?;
    let args = ReplayArgs::new(function.function, found.input.as_ref(), context)?;
    let call = (function.prepare)(&args)?;
    let client = xray::XRay::new(original.pipeline.clone());
    let input = found.input.as_ref().map(|j| j.get().into());
    let run = xray::__private::run_builder_text(&client, input)
        .replay_of(step_replay_of(run_id, found.position))
        .start();
    let replay_id = run.id().unwrap_or_default().to_string();
    if let Err(panic) = run.in_scope(|| catch_unwind(AssertUnwindSafe(call))) {
        run.set_error(xray::__private::panic_message(&*panic));
    }
    run.finish()?;
    report(&original, &replay_id)
}

/// [`from_env_with`] for programs whose replayable functions skip nothing.
pub fn from_env() {
    from_env_with(ReplayContext::new)
}

/// One call at the top of `main` lets the `xray replay` command drive the program: when
/// `XRAY_REPLAY=<run id>` is set (with `XRAY_REPLAY_STEP=<position or step id>` for one step),
/// replays it ([`run`] or [`step`], with the context `context` makes), then exits: 0 when
/// replayed, 2 when the server cannot be reached, 1 for any other failure (said on standard
/// error). The report is printed, or written as JSON to the file `XRAY_REPLAY_REPORT` names.
/// Without `XRAY_REPLAY` it returns at once and the program runs as usual.
pub fn from_env_with(context: impl FnOnce() -> ReplayContext) {
    let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    let Some(run_id) = var("XRAY_REPLAY") else {
        return;
    };
    let context = context();
    let result = match var("XRAY_REPLAY_STEP") {
        Some(position) => step(&run_id, &position, &context),
        None => run(&run_id, &context),
    };
    let code = match (result, var("XRAY_REPLAY_REPORT")) {
        (Ok(report), None) => {
            println!("{report}");
            0
        }
        (Ok(report), Some(path)) => {
            let json = serde_json::to_vec_pretty(&report).unwrap_or_default();
            match std::fs::write(&path, json) {
                Ok(()) => {
                    println!("replay run {} recorded", report.replay_run_id);
                    0
                }
                Err(e) => {
                    eprintln!("xray replay: cannot write the report to {path}: {e}");
                    1
                }
            }
        }
        (Err(e), _) => {
            eprintln!("xray replay: {e}");
            if matches!(e, ReplayError::Unreachable { .. }) {
                2
            } else {
                1
            }
        }
    };
    std::process::exit(code)
}
