//! `xray.XRay`: a pipeline's client, and the clients of the process (for the module's `flush`,
//! `shutdown` and `stats`). Clients with the same settings share one transport.

use crate::context::lock;
use crate::error::SdkError;
use crate::run::PyRun;
use crate::value::PyJson;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::Mutex;
use std::time::Duration;
use xray::{Capture, OfflineMode, Stats, XRay, XRayError};

/// One client per distinct set of settings (the key; empty for the environment's defaults).
static CLIENTS: Mutex<Vec<(String, XRay)>> = Mutex::new(Vec::new());

/// Notes that the default client is in use (by a step opened outside any run), so that the
/// module's `flush`, `shutdown` and `stats` include it.
pub fn note_default() -> XRay {
    Settings::default().client("default".into())
}

/// Every client made so far.
fn clients() -> Vec<XRay> {
    lock(&CLIENTS).iter().map(|(_, c)| c.clone()).collect()
}

/// The settings a client can be given beyond the environment's `XRAY_*` defaults.
#[derive(Debug, Default)]
struct Settings {
    endpoint: Option<String>,
    api_key: Option<String>,
    offline_mode: Option<OfflineMode>,
    capture: Option<Capture>,
    spool_dir: Option<String>,
    batch_size: Option<usize>,
    batch_interval_ms: Option<u64>,
    http_timeout_ms: Option<u64>,
    max_attempts: Option<u32>,
    max_details_bytes: Option<usize>,
    max_io_bytes: Option<usize>,
    version: Option<String>,
}

impl Settings {
    /// The client for `pipeline` with these settings, sharing the transport of an earlier
    /// client with the same settings.
    fn client(self, pipeline: String) -> XRay {
        let key = format!("{self:?}");
        let mut all = lock(&CLIENTS);
        if let Some((_, c)) = all.iter().find(|(k, _)| *k == key) {
            return c.for_pipeline(pipeline);
        }
        let client = if key == format!("{:?}", Settings::default()) {
            XRay::new(pipeline)
        } else {
            let mut b = XRay::builder();
            if let Some(v) = self.endpoint {
                b = b.endpoint(v);
            }
            if let Some(v) = self.api_key {
                b = b.api_key(v);
            }
            if let Some(v) = self.version {
                b = b.version(v);
            }
            if let Some(v) = self.offline_mode {
                b = b.offline_mode(v);
            }
            if let Some(v) = self.capture {
                b = b.capture(v);
            }
            if let Some(v) = self.spool_dir {
                b = b.spool_dir(v);
            }
            if let Some(v) = self.batch_size {
                b = b.batch_size(v);
            }
            if let Some(v) = self.batch_interval_ms {
                b = b.batch_interval(Duration::from_millis(v));
            }
            if let Some(v) = self.http_timeout_ms {
                b = b.http_timeout(Duration::from_millis(v));
            }
            if let Some(v) = self.max_attempts {
                b = b.max_attempts(v);
            }
            if let Some(v) = self.max_details_bytes {
                b = b.max_details_bytes(v);
            }
            if let Some(v) = self.max_io_bytes {
                b = b.max_io_bytes(v);
            }
            b.client(pipeline)
        };
        all.push((key, client.clone()));
        client
    }
}

/// A timeout in seconds from Python (negative or NaN: none).
fn seconds(timeout: f64) -> Duration {
    Duration::try_from_secs_f64(timeout).unwrap_or(Duration::ZERO)
}

/// What a flush or shutdown tells Python: `True` when done in time, `False` if not; in `fail`
/// mode a failure raises `XRayError`.
fn outcome(mode: OfflineMode, result: Result<(), XRayError>) -> Result<bool, SdkError> {
    match result {
        Ok(()) => Ok(true),
        Err(XRayError::ShutDown) => Ok(false),
        Err(e) if mode == OfflineMode::Fail => Err(e.into()),
        Err(_) => Ok(false),
    }
}

/// `stats()` as a dict.
fn stats_dict<'py>(py: Python<'py>, s: &Stats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("sent", s.sent)?;
    d.set_item("spooled", s.spooled)?;
    d.set_item("resent", s.resent)?;
    d.set_item("dropped", s.dropped)?;
    d.set_item("failed", s.failed)?;
    Ok(d)
}

/// Records runs of one pipeline, shipping them to the X-Ray server in the background.
#[pyclass(name = "XRay", module = "xray", frozen)]
pub struct PyXRay {
    client: XRay,
}

#[pymethods]
impl PyXRay {
    /// A client for `pipeline`. Settings left `None` come from the `XRAY_*` environment
    /// variables, else the defaults: `endpoint` `http://127.0.0.1:8000`, `offline_mode`
    /// `"buffer"` (`"silent"`, `"fail"`), `capture` `"sample"` (`"minimal"`, `"full"`).
    #[new]
    #[pyo3(signature = (pipeline, endpoint=None, offline_mode=None, capture=None, *, api_key=None,
        spool_dir=None, batch_size=None, batch_interval_ms=None, http_timeout_ms=None,
        max_attempts=None, max_details_bytes=None, max_io_bytes=None, version=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        pipeline: &Bound<'_, PyAny>,
        endpoint: Option<String>,
        offline_mode: Option<&str>,
        capture: Option<&str>,
        api_key: Option<String>,
        spool_dir: Option<String>,
        batch_size: Option<usize>,
        batch_interval_ms: Option<u64>,
        http_timeout_ms: Option<u64>,
        max_attempts: Option<u32>,
        max_details_bytes: Option<usize>,
        max_io_bytes: Option<usize>,
        version: Option<String>,
    ) -> PyXRay {
        let offline_mode = offline_mode.and_then(|m| match m.parse::<OfflineMode>() {
            Ok(m) => Some(m),
            Err(e) => {
                crate::warn(py, &format!("X-Ray: {e}; using the default"));
                None
            }
        });
        let settings = Settings {
            endpoint,
            api_key,
            offline_mode,
            capture: crate::run::capture(py, capture),
            spool_dir,
            batch_size,
            batch_interval_ms,
            http_timeout_ms,
            max_attempts,
            max_details_bytes,
            max_io_bytes,
            version,
        };
        let pipeline = crate::step::text_of(pipeline).into_owned();
        PyXRay {
            client: settings.client(pipeline),
        }
    }

    /// Starts a run with its input, metadata (a dict: the deploy, the user…) and the
    /// caller's `correlation_id` / W3C `traceparent`; use it as a context manager.
    #[pyo3(signature = (input=None, metadata=None, correlation_id=None, traceparent=None))]
    fn run(
        &self,
        input: Option<&Bound<'_, PyAny>>,
        metadata: Option<&Bound<'_, PyAny>>,
        correlation_id: Option<&Bound<'_, PyAny>>,
        traceparent: Option<&str>,
    ) -> PyRun {
        let input = input.filter(|v| !v.is_none());
        let mut b = match input {
            Some(v) => self.client.run_builder(PyJson::new(v)),
            None => self.client.run_builder(()),
        };
        if let Some(m) = metadata.filter(|v| !v.is_none()) {
            b = b.metadata(PyJson::new(m));
        }
        if let Some(id) = correlation_id.filter(|v| !v.is_none()) {
            b = b.correlation_id(crate::step::text_of(id).into_owned());
        }
        if let Some(t) = traceparent {
            b = b.traceparent(t);
        }
        PyRun::new(b.start(), self.client.config())
    }

    /// The pipeline's name.
    #[getter]
    fn pipeline(&self) -> &str {
        self.client.pipeline()
    }

    /// Waits up to `timeout` seconds until everything recorded is delivered (or spooled);
    /// `True` if it was. In `fail` mode a delivery failure raises `XRayError`.
    #[pyo3(signature = (timeout=5.0))]
    fn flush(&self, py: Python<'_>, timeout: f64) -> PyResult<bool> {
        let mode = self.client.config().offline_mode;
        let result = py.detach(|| self.client.flush(seconds(timeout)));
        Ok(outcome(mode, result)?)
    }

    /// What became of this client's events: `sent`, `spooled`, `resent`, `dropped`, `failed`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        stats_dict(py, &self.client.stats())
    }
}

/// Waits up to `timeout` seconds until everything every client recorded is delivered (or
/// spooled); `True` if it was.
#[pyfunction]
#[pyo3(signature = (timeout=5.0))]
pub fn flush(py: Python<'_>, timeout: f64) -> PyResult<bool> {
    on_every_client(py, timeout, XRay::flush)
}

/// Delivers or spools what every client holds and stops their background threads; `True` if
/// that finished within `timeout` seconds. Later runs are spooled (`buffer`) or dropped.
#[pyfunction]
#[pyo3(signature = (timeout=5.0))]
pub fn shutdown(py: Python<'_>, timeout: f64) -> PyResult<bool> {
    on_every_client(py, timeout, XRay::shutdown)
}

/// `flush` or `shutdown` on every client, without the GIL; `True` if each finished in time.
fn on_every_client(
    py: Python<'_>,
    timeout: f64,
    wait: fn(&XRay, Duration) -> Result<(), XRayError>,
) -> PyResult<bool> {
    let mut done = true;
    for c in clients() {
        let mode = c.config().offline_mode;
        let result = py.detach(|| wait(&c, seconds(timeout)));
        done &= outcome(mode, result)?;
    }
    Ok(done)
}

/// What became of the events of every client: `sent`, `spooled`, `resent`, `dropped`, `failed`.
#[pyfunction]
pub fn stats(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let mut total = Stats::default();
    for c in clients() {
        let s = c.stats();
        total.sent += s.sent;
        total.spooled += s.spooled;
        total.resent += s.resent;
        total.dropped += s.dropped;
        total.failed += s.failed;
    }
    stats_dict(py, &total)
}
