//! `xray.Run`: one execution of a pipeline, and the steps opened in it.

use crate::context::{lock, Scope, Var};
use crate::error::SdkError;
use crate::step::{error_text, text_of, Limits, PyStep};
use crate::value::PyJson;
use pyo3::prelude::*;
use std::sync::Mutex;
use std::sync::TryLockError;
use xray::{Capture, Config, OfflineMode, Run, RunGuard, StepType};

/// One run of a pipeline. Use it as a context manager (`with xray.run(input=...) as run:`); it
/// ends `completed` when the block ends, `failed` with the text of an exception leaving it.
#[pyclass(name = "Run", module = "xray", frozen)]
pub struct PyRun {
    /// The open run; `None` once it has ended (or for a run that records nothing).
    guard: Mutex<Option<RunGuard>>,
    handle: Run,
    /// `offline_mode="fail"`: ending the run waits for delivery and raises its failure.
    fail_mode: bool,
    scope: Scope,
    limits: Limits,
}

impl PyRun {
    /// A run over an open guard.
    pub fn new(guard: RunGuard, config: &Config) -> PyRun {
        PyRun {
            handle: guard.handle(),
            guard: Mutex::new(Some(guard)),
            fail_mode: config.offline_mode == OfflineMode::Fail,
            scope: Scope::default(),
            limits: Limits::of(config),
        }
    }

    /// A run that records nothing (`current_run()` outside any run).
    pub fn none() -> PyRun {
        PyRun {
            guard: Mutex::new(None),
            handle: Run::none(),
            fail_mode: false,
            scope: Scope::default(),
            limits: Limits { io: 0, details: 0 },
        }
    }

    /// Ends the run (once), failed with `error` if one is given; in `fail` mode waits for its
    /// delivery (without the GIL) and reports its failure.
    fn end(&self, py: Python<'_>, error: Option<String>) -> Result<(), SdkError> {
        if let Some(error) = error {
            self.handle.set_error(error);
        }
        let guard = match self.guard.try_lock() {
            Ok(mut g) => g.take(),
            Err(TryLockError::Poisoned(p)) => p.into_inner().take(),
            Err(TryLockError::WouldBlock) => py.detach(|| lock(&self.guard).take()),
        };
        match guard {
            Some(g) if self.fail_mode => py.detach(|| g.finish()).map_err(SdkError::from),
            Some(g) => {
                drop(g);
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// A step type from Python, or a `ValueError` naming the six (also when it is missing).
pub fn step_type(step_type: Option<&str>) -> Result<StepType, SdkError> {
    Ok(step_type.ok_or(SdkError::NoStepType)?.parse::<StepType>()?)
}

/// A capture level from Python: `None` for the client's default; a misspelt one warns and
/// falls back to the default (it never raises into the pipeline).
pub fn capture(py: Python<'_>, capture: Option<&str>) -> Option<Capture> {
    let text = capture?;
    match text.parse::<Capture>() {
        Ok(c) => Some(c),
        Err(e) => {
            crate::warn(py, &format!("X-Ray: {e}; using the default capture level"));
            None
        }
    }
}

/// Opens a step of `run` (a run of its own when `run` records nothing).
pub fn open_step(
    py: Python<'_>,
    run: &Run,
    limits: Limits,
    name: &Bound<'_, PyAny>,
    step_type_name: Option<&str>,
    capture_name: Option<&str>,
) -> Result<PyStep, SdkError> {
    let kind = step_type(step_type_name)?;
    let name = text_of(name).into_owned();
    let guard = match capture(py, capture_name) {
        Some(c) => run.step_with_capture(name, kind, c),
        None => run.step(name, kind),
    };
    Ok(PyStep::new(guard, limits))
}

#[pymethods]
impl PyRun {
    /// Opens a step of this run: `step_type` is one of `generate`, `retrieve`, `filter`, `rank`,
    /// `select`, `transform` (anything else raises `ValueError`); `capture` is `"minimal"`,
    /// `"sample"` or `"full"` (default: the client's).
    #[pyo3(signature = (name, step_type=None, capture=None))]
    fn step(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyAny>,
        step_type: Option<&str>,
        capture: Option<&str>,
    ) -> PyResult<PyStep> {
        Ok(open_step(
            py,
            &self.handle,
            self.limits,
            name,
            step_type,
            capture,
        )?)
    }

    /// The run's output (any JSON-able value; what `json` cannot encode is its `repr`; capped
    /// at `XRAY_MAX_IO_BYTES`).
    fn set_output(&self, value: &Bound<'_, PyAny>) {
        self.handle.set_output(PyJson::new(value));
    }

    /// Marks the run failed with this message (it still ends when its block does).
    fn set_error(&self, message: &Bound<'_, PyAny>) {
        self.handle.set_error(text_of(message));
    }

    /// Ends the run now (what leaving its `with` block does). In `fail` mode, waits for
    /// delivery and raises `XRayError` if it failed.
    fn finish(&self, py: Python<'_>) -> PyResult<()> {
        Ok(self.end(py, None)?)
    }

    /// Ends the run now as failed with this message.
    fn fail(&self, message: &Bound<'_, PyAny>) -> PyResult<()> {
        Ok(self.end(message.py(), Some(text_of(message).into_owned()))?)
    }

    /// The run's id (`None` for a run that records nothing).
    #[getter]
    fn id(&self) -> Option<&str> {
        self.handle.id()
    }

    /// The run's pipeline.
    #[getter]
    fn pipeline(&self) -> Option<&str> {
        self.handle.pipeline()
    }

    /// Whether this run records anything (`False` for `current_run()` outside any run).
    #[getter]
    fn is_recording(&self) -> bool {
        self.handle.is_recording()
    }

    /// Makes this run `xray.current_run()` in this context.
    fn __enter__<'py>(slf: &Bound<'py, Self>) -> Bound<'py, Self> {
        slf.get().scope.enter(Var::Run, slf.as_any());
        slf.clone()
    }

    /// Ends the run: failed with the exception's text if one is leaving the block (it goes on
    /// unchanged: this returns `False`). In `fail` mode, a delivery failure raises
    /// `XRayError`, unless an exception is leaving the block already.
    #[pyo3(signature = (_exc_type=None, exc=None, _tb=None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let exc = exc.filter(|e| !e.is_none());
        let ended = self.end(py, exc.map(error_text));
        self.scope.leave(py);
        match ended {
            Err(e) if exc.is_none() => Err(e.into()),
            _ => Ok(false),
        }
    }
}
