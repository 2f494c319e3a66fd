//! The current run and step of the running Python code, in `contextvars`: each asyncio task (and
//! each thread) sees its own, so concurrent runs never record into each other.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::IntoPyDict;
use std::sync::Mutex;

static RUN_VAR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static STEP_VAR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Which of the two context variables.
#[derive(Clone, Copy)]
pub enum Var {
    /// `xray.current_run()`.
    Run,
    /// `xray.current_step()`.
    Step,
}

/// The context variable itself (made on first use).
pub fn var(py: Python<'_>, which: Var) -> PyResult<Bound<'_, PyAny>> {
    let (cell, name) = match which {
        Var::Run => (&RUN_VAR, "xray_current_run"),
        Var::Step => (&STEP_VAR, "xray_current_step"),
    };
    if let Some(v) = cell.get(py) {
        return Ok(v.bind(py).clone());
    }
    let made = py
        .import("contextvars")?
        .getattr("ContextVar")?
        .call((name,), Some(&[("default", py.None())].into_py_dict(py)?))?;
    Ok(cell.get_or_init(py, || made.unbind()).bind(py).clone())
}

/// The value of a context variable (`None` outside any run or step).
pub fn get(py: Python<'_>, which: Var) -> Option<Bound<'_, PyAny>> {
    let value = var(py, which).ok()?.call_method0("get").ok()?;
    (!value.is_none()).then_some(value)
}

/// A value set in the current context until [`Scope::leave`] is called.
#[derive(Default)]
pub struct Scope {
    token: Mutex<Option<(Var, Py<PyAny>)>>,
}

impl Scope {
    /// Makes `value` current (`__enter__`). Failing to set it only means helpers do not see it.
    pub fn enter(&self, which: Var, value: &Bound<'_, PyAny>) {
        let py = value.py();
        let Ok(token) = var(py, which).and_then(|v| v.call_method1("set", (value,))) else {
            return;
        };
        *lock(&self.token) = Some((which, token.unbind()));
    }

    /// Restores what was current before [`Scope::enter`] (`__exit__`). From another context than
    /// the one entered (a generator resumed elsewhere), the token cannot be used: the variable
    /// is then cleared instead.
    pub fn leave(&self, py: Python<'_>) {
        let Some((which, token)) = lock(&self.token).take() else {
            return;
        };
        let Ok(v) = var(py, which) else { return };
        if v.call_method1("reset", (token,)).is_err() {
            let _ = v.call_method1("set", (py.None(),));
        }
    }
}

/// Locks a mutex, whether or not a thread panicked holding it.
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
