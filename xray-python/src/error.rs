//! The errors the SDK raises into a pipeline: only a wrong `step_type` (a `ValueError`) and, in
//! `fail` mode, a delivery problem (`xray.XRayError`).

use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;

pyo3::create_exception!(
    xray,
    XRayError,
    PyException,
    "Delivery to the X-Ray server failed (raised only in `offline_mode=\"fail\"`)."
);

/// Something the SDK reports to Python.
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    /// A `step_type` outside the six (the message names them all).
    #[error(transparent)]
    StepType(#[from] xray::wire::ParseEnumError),
    /// A step opened without a `step_type`.
    #[error("every step needs a step_type: one of {}", xray::StepType::NAMES.join(", "))]
    NoStepType,
    /// Delivery failed in `fail` mode.
    #[error(transparent)]
    Delivery(#[from] xray::XRayError),
}

impl From<SdkError> for PyErr {
    fn from(e: SdkError) -> PyErr {
        match &e {
            SdkError::StepType(_) | SdkError::NoStepType => PyValueError::new_err(e.to_string()),
            SdkError::Delivery(_) => XRayError::new_err(e.to_string()),
        }
    }
}
