//! `xray.Step`: one step of a run, recording what it rejected, accepted and decided.
//!
//! The hot path (`reject`, `accept`) records through the runtime's step guard, without the
//! step's lock: details stay Python objects and are written as JSON only for the items the
//! runtime keeps. The guard sits behind a mutex of ours, taken with `try_lock`: when it is busy
//! (another thread records, or a `__repr__` of details records into the same step), the event
//! goes through the step's handle instead, with its details converted first, so no Python code
//! ever runs while a lock is held that another thread could wait for holding the GIL.

use crate::context::{lock, Scope, Var};
use crate::value::{str_of, to_value, type_name, PyItemId, PyJson};
use pyo3::prelude::*;
use pyo3::types::PyString;
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, TryLockError};
use xray::{IntoItemId, Step, StepGuard};

/// One step of a run. Use it as a context manager (`with run.step(...) as step:`); it ends when
/// the block ends, failed if an exception left it.
#[pyclass(name = "Step", module = "xray", frozen)]
pub struct PyStep {
    /// The open step; `None` once it has ended (or for a step that records nothing).
    guard: Mutex<Option<StepGuard>>,
    handle: Step,
    /// Whether the counts were set by the caller (the decorators fill them only if not).
    input_count_set: AtomicBool,
    output_count_set: AtomicBool,
    scope: Scope,
    limits: Limits,
}

/// The client's caps on JSON, for what is converted before it is recorded.
#[derive(Clone, Copy)]
pub struct Limits {
    /// Inputs and outputs (`max_io_bytes`).
    pub io: usize,
    /// An item's details, an attribute (`max_details_bytes`).
    pub details: usize,
}

impl Limits {
    /// The caps of a client's configuration.
    pub fn of(config: &xray::Config) -> Limits {
        Limits {
            io: config.max_io_bytes,
            details: config.max_details_bytes,
        }
    }
}

impl PyStep {
    /// A step over an open guard.
    pub fn new(guard: StepGuard, limits: Limits) -> PyStep {
        PyStep {
            limits,
            handle: guard.handle(),
            guard: Mutex::new(Some(guard)),
            input_count_set: AtomicBool::new(false),
            output_count_set: AtomicBool::new(false),
            scope: Scope::default(),
        }
    }

    /// A step that records nothing (`current_step()` outside any step).
    pub fn none() -> PyStep {
        PyStep {
            guard: Mutex::new(None),
            handle: Step::none(),
            input_count_set: AtomicBool::new(false),
            output_count_set: AtomicBool::new(false),
            scope: Scope::default(),
            limits: Limits { io: 0, details: 0 },
        }
    }

    /// Records through the guard if it is free, else through `busy` (the handle).
    #[inline]
    fn record(&self, free: impl FnOnce(&StepGuard), busy: impl FnOnce(&Step)) {
        match self.guard.try_lock() {
            Ok(g) => {
                if let Some(g) = g.as_ref() {
                    free(g)
                }
            }
            Err(TryLockError::WouldBlock) => busy(&self.handle),
            Err(TryLockError::Poisoned(p)) => {
                if let Some(g) = p.into_inner().as_ref() {
                    free(g)
                }
            }
        }
    }

    /// Ends the step (once), failed with `error` if one is given. Waits for the guard without
    /// the GIL, should another thread be recording through it.
    fn end(&self, py: Python<'_>, error: Option<String>) {
        if let Some(error) = error {
            self.handle.set_error(error);
        }
        let guard = match self.guard.try_lock() {
            Ok(mut g) => g.take(),
            Err(TryLockError::Poisoned(p)) => p.into_inner().take(),
            Err(TryLockError::WouldBlock) => py.detach(|| lock(&self.guard).take()),
        };
        drop(guard);
    }
}

/// A reason or key as text: a `str` borrowed as it is, anything else as its `str()`.
#[inline]
pub fn text_of<'a>(obj: &'a Bound<'_, PyAny>) -> Cow<'a, str> {
    match obj.cast::<PyString>() {
        Ok(s) => match s.to_str() {
            Ok(t) => Cow::Borrowed(t),
            Err(_) => Cow::Owned(s.to_string_lossy().into_owned()),
        },
        Err(_) => Cow::Owned(str_of(obj)),
    }
}

/// The text an exception fails a step or run with: `Type: message` (the type alone when the
/// message is empty).
pub fn error_text(exc: &Bound<'_, PyAny>) -> String {
    let name = type_name(exc);
    let message = str_of(exc);
    if message.is_empty() {
        name
    } else {
        format!("{name}: {message}")
    }
}

/// Details given, or none (`None` counts as none).
#[inline]
fn given<'a, 'py>(details: Option<&'a Bound<'py, PyAny>>) -> Option<&'a Bound<'py, PyAny>> {
    details.filter(|d| !d.is_none())
}

/// A count from Python: a non-negative `int`; anything else is ignored.
fn count(n: &Bound<'_, PyAny>) -> Option<u64> {
    n.extract::<u64>().ok()
}

#[pymethods]
impl PyStep {
    /// Records that `item_id` (a `str` or `int`) was rejected for `reason`, with optional
    /// details (any JSON-able value; what `json` cannot encode is kept as its `repr`). The
    /// count is exact; the item and its details are kept by the capture level.
    #[pyo3(signature = (item_id, reason, details=None))]
    fn reject(
        &self,
        item_id: &Bound<'_, PyAny>,
        reason: &Bound<'_, PyAny>,
        details: Option<&Bound<'_, PyAny>>,
    ) {
        let reason = text_of(reason);
        match given(details) {
            None => self.record(
                |g| g.reject(PyItemId(item_id), &reason, ()),
                |h| h.reject(PyItemId(item_id).into_item_id(), &reason, ()),
            ),
            Some(d) => self.record(
                |g| g.reject(PyItemId(item_id), &reason, PyJson::new(d)),
                |h| {
                    h.reject(
                        PyItemId(item_id).into_item_id(),
                        &reason,
                        to_value(d, self.limits.details),
                    )
                },
            ),
        }
    }

    /// Records that `item_id` was let through, with optional details.
    #[pyo3(signature = (item_id, details=None))]
    fn accept(&self, item_id: &Bound<'_, PyAny>, details: Option<&Bound<'_, PyAny>>) {
        match given(details) {
            None => self.record(
                |g| g.accept(PyItemId(item_id)),
                |h| h.accept(PyItemId(item_id).into_item_id()),
            ),
            Some(d) => self.record(
                |g| g.accept_with(PyItemId(item_id), PyJson::new(d)),
                |h| {
                    h.accept_with(
                        PyItemId(item_id).into_item_id(),
                        to_value(d, self.limits.details),
                    )
                },
            ),
        }
    }

    /// Records what the step chose, its score (a number; anything else is recorded without a
    /// score) and why. The last decision stands.
    #[pyo3(signature = (item_id, score, details=None))]
    fn decide(
        &self,
        item_id: &Bound<'_, PyAny>,
        score: &Bound<'_, PyAny>,
        details: Option<&Bound<'_, PyAny>>,
    ) {
        let score = score.extract::<f64>().unwrap_or(f64::NAN);
        let id = PyItemId(item_id).into_item_id();
        match given(details) {
            None => self.handle.decide(id, score, ()),
            Some(d) => self
                .handle
                .decide(id, score, to_value(d, self.limits.details)),
        }
    }

    /// Records where `item_id` landed in a rank step's ranking (`position` from 1) and its
    /// score, with optional details. The count is exact; at `sample` the top 50 positions and a
    /// uniform sample of 50 of the rest are kept. A position or score that is not a whole
    /// number from 1 / a finite number is counted, not kept.
    #[pyo3(signature = (item_id, position, score, details=None))]
    fn rank(
        &self,
        item_id: &Bound<'_, PyAny>,
        position: &Bound<'_, PyAny>,
        score: &Bound<'_, PyAny>,
        details: Option<&Bound<'_, PyAny>>,
    ) {
        let position = position.extract::<u64>().unwrap_or(0);
        let score = score.extract::<f64>().unwrap_or(f64::NAN);
        match given(details) {
            None => self.record(
                |g| g.rank(PyItemId(item_id), position, score),
                |h| h.rank(PyItemId(item_id).into_item_id(), position, score),
            ),
            Some(d) => self.record(
                |g| g.rank_with(PyItemId(item_id), position, score, PyJson::new(d)),
                |h| {
                    let details = to_value(d, self.limits.details);
                    h.rank_with(PyItemId(item_id).into_item_id(), position, score, details)
                },
            ),
        }
    }

    /// How many of a rank step's items go on: positions `1..=k` (default: the output count).
    fn set_cutoff(&self, k: &Bound<'_, PyAny>) {
        if let Some(k) = count(k) {
            self.handle.set_cutoff(k);
        }
    }

    /// The item that came second in the decision, and its score (the step's close-call margin
    /// is the chosen score minus this). Call it after `decide`.
    fn set_runner_up(&self, item_id: &Bound<'_, PyAny>, score: &Bound<'_, PyAny>) {
        let score = score.extract::<f64>().unwrap_or(f64::NAN);
        self.handle
            .set_runner_up(PyItemId(item_id).into_item_id(), score);
    }

    /// How many items came in (derived from the events when not set).
    fn set_input_count(&self, n: &Bound<'_, PyAny>) {
        if let Some(n) = count(n) {
            self.input_count_set.store(true, Ordering::Relaxed);
            self.handle.set_input_count(n);
        }
    }

    /// How many items went out (derived from the events when not set).
    fn set_output_count(&self, n: &Bound<'_, PyAny>) {
        if let Some(n) = count(n) {
            self.output_count_set.store(true, Ordering::Relaxed);
            self.handle.set_output_count(n);
        }
    }

    /// A free-form attribute (`model`, `threshold`…): any JSON-able value.
    fn set_attribute(&self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) {
        self.handle
            .set_attribute(&text_of(key), to_value(value, self.limits.details));
    }

    /// The step's input (any JSON-able value; capped like a run's).
    fn set_input(&self, value: &Bound<'_, PyAny>) {
        self.handle.set_input(to_value(value, self.limits.io));
    }

    /// The step's output (any JSON-able value; capped like a run's).
    fn set_output(&self, value: &Bound<'_, PyAny>) {
        self.handle.set_output(to_value(value, self.limits.io));
    }

    /// Marks the step failed with this message (it still ends when its block does).
    fn set_error(&self, message: &Bound<'_, PyAny>) {
        self.handle.set_error(text_of(message));
    }

    /// Counts for the decorators: set only where the body set none.
    #[pyo3(signature = (input=None, output=None))]
    fn _infer_counts(&self, input: Option<u64>, output: Option<u64>) {
        if let Some(n) = input.filter(|_| !self.input_count_set.load(Ordering::Relaxed)) {
            self.handle.set_input_count(n);
        }
        if let Some(n) = output.filter(|_| !self.output_count_set.load(Ordering::Relaxed)) {
            self.handle.set_output_count(n);
        }
    }

    /// Ends the step now (what leaving its `with` block does).
    fn finish(&self, py: Python<'_>) {
        self.end(py, None);
    }

    /// Ends the step now as failed with this message.
    fn fail(&self, message: &Bound<'_, PyAny>) {
        self.end(message.py(), Some(text_of(message).into_owned()));
    }

    /// The step's id (`None` for a step that records nothing).
    #[getter]
    fn id(&self) -> Option<&str> {
        self.handle.id()
    }

    /// Whether this step records anything (`False` for `current_step()` outside any step).
    #[getter]
    fn is_recording(&self) -> bool {
        self.handle.is_recording()
    }

    /// Makes this step `xray.current_step()` in this context.
    fn __enter__<'py>(slf: &Bound<'py, Self>) -> Bound<'py, Self> {
        slf.get().scope.enter(Var::Step, slf.as_any());
        slf.clone()
    }

    /// Ends the step: failed with the exception's text if one is leaving the block (it goes on
    /// unchanged: this returns `False`).
    #[pyo3(signature = (_exc_type=None, exc=None, _tb=None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        self.end(py, given(exc).map(error_text));
        self.scope.leave(py);
        false
    }
}
