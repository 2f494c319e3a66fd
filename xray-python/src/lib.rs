//! X-Ray's Python SDK: the extension module `xray._native`, a thin binding of xray-runtime
//! (sampling, shipping, spool and offline modes are the runtime's). The `xray` package
//! (`python/xray/__init__.py`) re-exports it and adds the decorators.

mod client;
mod context;
mod error;
mod run;
mod step;
mod value;

use context::Var;
use pyo3::prelude::*;
use run::PyRun;
use step::PyStep;

/// Issues a Python `UserWarning` (never raises: a warning filter set to "error" is ignored).
pub(crate) fn warn(py: Python<'_>, message: &str) {
    let Ok(warnings) = py.import("warnings") else {
        return;
    };
    if warnings.call_method1("warn", (message,)).is_err() {
        // The warning was turned into an exception by a filter: dropped, never raised.
        let _ = PyErr::take(py);
    }
}

/// The run the calling code is in (a run that records nothing outside any run).
#[pyfunction]
fn current_run(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    match context::get(py, Var::Run) {
        Some(run) => Ok(run),
        None => Ok(Bound::new(py, PyRun::none())?.into_any()),
    }
}

/// The step the calling code is in (a step that records nothing outside any step).
#[pyfunction]
fn current_step(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    match context::get(py, Var::Step) {
        Some(step) => Ok(step),
        None => Ok(Bound::new(py, PyStep::none())?.into_any()),
    }
}

/// Opens a step in the current run; outside any run, a one-step run of its own in the default
/// pipeline (`XRAY_PIPELINE`, else `default`).
#[pyfunction]
#[pyo3(signature = (name, step_type=None, capture=None))]
fn open_step<'py>(
    py: Python<'py>,
    name: &Bound<'py, PyAny>,
    step_type: Option<&str>,
    capture: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    if let Some(run) = context::get(py, Var::Run) {
        if let Ok(run) = run.cast::<PyRun>() {
            return run.call_method1("step", (name, step_type, capture));
        }
    }
    let limits = step::Limits::of(client::note_default().config());
    let step = run::open_step(py, &xray::Run::none(), limits, name, step_type, capture)?;
    Ok(Bound::new(py, step)?.into_any())
}

/// Raises `ValueError` (naming the six) unless `step_type` is one.
#[pyfunction]
#[pyo3(signature = (step_type=None))]
fn check_step_type(step_type: Option<&str>) -> PyResult<()> {
    run::step_type(step_type)?;
    Ok(())
}

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<client::PyXRay>()?;
    m.add_class::<PyRun>()?;
    m.add_class::<PyStep>()?;
    m.add("XRayError", m.py().get_type::<error::XRayError>())?;
    m.add_function(wrap_pyfunction!(client::flush, m)?)?;
    m.add_function(wrap_pyfunction!(client::shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(client::stats, m)?)?;
    m.add_function(wrap_pyfunction!(current_run, m)?)?;
    m.add_function(wrap_pyfunction!(current_step, m)?)?;
    m.add_function(wrap_pyfunction!(open_step, m)?)?;
    m.add_function(wrap_pyfunction!(check_step_type, m)?)?;
    Ok(())
}
