//! The recording half of replay, called by the expansion of `#[xray::run(.., replay)]` and
//! `#[xray::step(.., replay)]`: arguments kept whole (up to
//! [`Config::max_replay_input_bytes`](xray::Config::max_replay_input_bytes)), the mark that
//! says a run or step can be replayed, and the registry of replayable functions.

use super::{ReplayContext, ReplayError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::any::Any;
use std::cell::RefCell;
use xray::__private::{input_len, is_truncated, truncated, Fields};
use xray::{RunGuard, StepGuard};
use xray_wire::{Capture, StepType};

/// The key of the mark, in a replayable step's attributes and a replayable run's metadata:
/// `true`, or `{"error": "..."}` when the call was recorded but cannot be replayed.
pub const MARK: &str = "xray_replay";

/// Whether a function is a run's or a step's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayKind {
    /// `#[xray::run(.., replay)]`: registered under its pipeline.
    Run,
    /// `#[xray::step(.., replay)]`: registered under its step name.
    Step,
}

/// Reads a replayable function's arguments back: the recorded ones from the captured input, the
/// skipped ones from the caller's [`ReplayContext`].
pub struct ReplayArgs<'a> {
    function: &'static str,
    input: Map<String, Value>,
    context: &'a ReplayContext,
}

/// Builds, from a call's recorded arguments, the call itself (run later, once every argument
/// has been read back).
pub type Prepare = for<'a> fn(&'a ReplayArgs<'a>) -> Result<Box<dyn FnOnce() + 'a>, ReplayError>;

/// A replayable function in the process-wide registry (one `inventory::submit!` per function).
pub struct Replayable {
    /// A run's or a step's.
    pub kind: ReplayKind,
    /// The pipeline (a run) or the step name (a step).
    pub key: &'static str,
    /// Its path, for messages.
    pub function: &'static str,
    /// Reads the arguments back and gives the call.
    pub prepare: Prepare,
}

inventory::collect!(Replayable);

/// The replayable function of this kind and key.
pub(crate) fn registered(kind: ReplayKind, key: &str) -> Result<&'static Replayable, ReplayError> {
    let found: Vec<&'static Replayable> = inventory::iter::<Replayable>
        .into_iter()
        .filter(|r| r.kind == kind && r.key == key)
        .collect();
    let what = || match kind {
        ReplayKind::Run => format!("pipeline `{key}`"),
        ReplayKind::Step => format!("step `{key}`"),
    };
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(ReplayError::NotRegistered { what: what() }),
        many => Err(ReplayError::Ambiguous {
            what: what(),
            functions: many
                .iter()
                .map(|r| r.function)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// A type a replayable function can take as a recorded argument.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an argument of a `replay` function: it must be `Serialize + DeserializeOwned`",
    label = "recorded whole and read back at replay, so it must be `Serialize + DeserializeOwned`",
    note = "derive `serde::Serialize` and `serde::Deserialize` for it, or `skip` it and give it at replay time with `xray_replay::ReplayContext::provide`"
)]
pub trait ReplayArg: Serialize + DeserializeOwned {}
impl<T: Serialize + DeserializeOwned> ReplayArg for T {}

impl<'a> ReplayArgs<'a> {
    /// The arguments of `function` from its captured `input` (a JSON object by argument name).
    pub(crate) fn new(
        function: &'static str,
        input: Option<&xray_wire::JsonText>,
        context: &'a ReplayContext,
    ) -> Result<ReplayArgs<'a>, ReplayError> {
        let input = match input.map(|j| serde_json::from_str::<Value>(j.get())) {
            None => Map::new(),
            Some(Ok(Value::Object(map))) => map,
            Some(other) => {
                return Err(ReplayError::BadInput {
                    function: function.to_string(),
                    argument: "(all)".into(),
                    reason: match other {
                        Ok(v) => format!("the captured input is not an object of arguments: {v}"),
                        Err(e) => e.to_string(),
                    },
                })
            }
        };
        Ok(ReplayArgs {
            function,
            input,
            context,
        })
    }

    /// A recorded argument, read back from the captured input.
    pub fn recorded<T: ReplayArg>(&self, argument: &str) -> Result<T, ReplayError> {
        let bad = |reason: String| ReplayError::BadInput {
            function: self.function.to_string(),
            argument: argument.to_string(),
            reason,
        };
        let value = self.input.get(argument).unwrap_or(&Value::Null);
        if value.get("_xray_truncated") == Some(&Value::Bool(true)) {
            return Err(bad("it was recorded cut to a preview".into()));
        }
        T::deserialize(value).map_err(|e| {
            bad(format!(
                "not a `{}`: {e} (recorded: {})",
                std::any::type_name::<T>(),
                preview(&value.to_string())
            ))
        })
    }

    /// A skipped argument, from the caller's context.
    pub fn provided<T: Any>(&self, argument: &str) -> Result<&'a T, ReplayError> {
        let expected = std::any::type_name::<T>();
        let given =
            self.context
                .values
                .get(argument)
                .ok_or_else(|| ReplayError::MissingArgument {
                    function: self.function.to_string(),
                    argument: argument.to_string(),
                    type_name: expected.to_string(),
                })?;
        given
            .value
            .downcast_ref::<T>()
            .ok_or_else(|| ReplayError::WrongType {
                function: self.function.to_string(),
                argument: argument.to_string(),
                expected: expected.to_string(),
                given: given.type_name.to_string(),
            })
    }
}

fn preview(text: &str) -> String {
    let cut = text.floor_char_boundary(80);
    if cut < text.len() {
        format!("{}…", &text[..cut])
    } else {
        text.to_string()
    }
}

thread_local! {
    /// What the next replayable run opened on this thread replays, and the run it opened.
    static REPLAYING: RefCell<(Option<String>, Option<String>)> = const { RefCell::new((None, None)) };
}

/// Marks the next replayable run opened on this thread as a replay of `of`.
pub(crate) fn expect_run(of: String) {
    REPLAYING.with(|r| *r.borrow_mut() = (Some(of), None));
}

/// The run opened since [`expect_run`] (and forgets the expectation).
pub(crate) fn opened_run() -> Option<String> {
    REPLAYING.with(|r| std::mem::take(&mut *r.borrow_mut()).1)
}

/// The largest captured input of a replayable call, from the default client.
pub fn replay_limit() -> usize {
    xray::__private::with_default_config(|c| c.max_replay_input_bytes)
}

/// A replayable call's arguments (each recorded by the probes capped at `limit`) made ready to
/// send, with its mark. Over the limit (one argument, or all together), the arguments are cut
/// to the usual previews (`io_cap`) and the mark says why it cannot be replayed.
pub fn replay_input(fields: Fields, io_cap: usize, limit: usize) -> (Fields, Value) {
    let total = input_len(&fields);
    let cut = fields
        .iter()
        .any(|(_, v)| v.as_deref().is_some_and(is_truncated));
    if !cut && total <= limit {
        return (fields, Value::Bool(true));
    }
    let error = format!(
        "the input is over the replay limit of {limit} bytes ({}), so it was recorded cut \
         and cannot be replayed; raise Config::max_replay_input_bytes \
         (XRAY_MAX_REPLAY_INPUT_BYTES, at most the server's body limit) or skip the largest \
         argument and provide it at replay time",
        if cut {
            "one argument alone".to_string()
        } else {
            format!("{total} bytes")
        }
    );
    let fields = fields
        .into_iter()
        .map(|(name, v)| {
            let v = v.map(|text| {
                if text.len() <= io_cap || is_truncated(&text) {
                    return text;
                }
                truncated(&text, io_cap).to_string().into_boxed_str()
            });
            (name, v)
        })
        .collect();
    (fields, json!({ "error": error }))
}

/// Opens the run of a replayable `#[xray::run]` function: its mark in the metadata, and marked
/// a replay when [`crate::run`] called it.
pub fn run_start_replayable(
    pipeline: &'static str,
    version: Option<String>,
    input: Fields,
    mark: Value,
) -> RunGuard {
    let client = xray::XRay::new(pipeline);
    let run = xray::__private::run_builder(&client, version, input).metadata(json!({ MARK: mark }));
    // Only the first run opened is the replay (not a replayable run it calls).
    let Some(of) = REPLAYING.with(|r| r.borrow_mut().0.take()) else {
        return run.start();
    };
    let guard = run.replay_of(of).start();
    let id = guard.id().map(str::to_string);
    REPLAYING.with(|r| r.borrow_mut().1 = id);
    guard
}

/// Opens the step of a replayable `#[xray::step]` function, its mark in its attributes.
pub fn step_start_replayable(
    name: &'static str,
    step_type: StepType,
    capture: Option<Capture>,
    input: Fields,
    mark: Value,
) -> StepGuard {
    let guard = xray::__private::step_start(name, step_type, capture, input);
    guard.set_attribute(MARK, mark);
    guard
}
