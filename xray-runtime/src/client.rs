//! The client: a pipeline name over a shared transport, and the process-wide default.

use crate::config::{Config, ConfigBuilder};
use crate::correlation::Correlation;
use crate::error::XRayError;
use crate::json::capped_json;
use crate::run::RunGuard;
use crate::sampling::Rng;
use crate::transport::{Shipper, Stats};
use once_cell::sync::OnceCell;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};
use std::time::Duration;

/// How long the exit hook waits to deliver or spool what is left.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Configuration plus the background shipper: shared by every client made from it.
pub(crate) struct Core {
    pub(crate) config: Config,
    pub(crate) shipper: Shipper,
    seeds: AtomicU64,
}

static DEFAULT: OnceCell<Arc<Core>> = OnceCell::new();
static LIVE: Mutex<Vec<Weak<Core>>> = Mutex::new(Vec::new());
static EXIT_HOOK: Once = Once::new();

extern "C" fn flush_at_exit() {
    let live: Vec<Arc<Core>> = match LIVE.try_lock() {
        Ok(list) => list.iter().filter_map(Weak::upgrade).collect(),
        Err(_) => return,
    };
    for core in live {
        let _ = core.shipper.shutdown(EXIT_TIMEOUT);
    }
}

impl Core {
    pub(crate) fn new(config: Config) -> Arc<Core> {
        crate::panics::install();
        // A client made with `builder().client()` or from the environment cannot fail: say it
        // here (events are then kept or dropped by the offline mode, as for a server away).
        if let Err(e) = config.validate() {
            tracing::warn!("{e}");
        }
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9, |d| d.as_nanos() as u64);
        let core = Arc::new(Core {
            shipper: Shipper::start(&config),
            config,
            seeds: AtomicU64::new(seed),
        });
        if let Ok(mut live) = LIVE.lock() {
            live.retain(|w| w.strong_count() > 0);
            live.push(Arc::downgrade(&core));
        }
        // A program that ends right after its last run still delivers (or spools) it.
        EXIT_HOOK.call_once(|| {
            // SAFETY: registers a plain `extern "C" fn` with no arguments, as atexit requires.
            unsafe {
                libc::atexit(flush_at_exit);
            }
        });
        core
    }

    /// The process-wide default: set by [`init`], else from the environment on first use.
    pub(crate) fn default_core() -> Arc<Core> {
        DEFAULT
            .get_or_init(|| Core::new(Config::from_env()))
            .clone()
    }

    /// A fresh seed for a step's sampler: the sampler's own generator, on a shared counter.
    pub(crate) fn seed(&self) -> u64 {
        Rng(self.seeds.fetch_add(1, Ordering::Relaxed)).random()
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        let _ = self.shipper.shutdown(EXIT_TIMEOUT);
    }
}

/// Records runs of one pipeline.
///
/// ```no_run
/// use xray::{XRay, StepType};
/// use serde_json::json;
///
/// let xray = XRay::new("competitor_selection");
/// let run = xray.run(json!({"product_title": "iPhone 15 Case"}));
/// let step = run.step("filter_candidates", StepType::Filter);
/// step.reject("laptop_stand_42", "category_mismatch", json!({"category": "stands"}));
/// step.accept("case_17");
/// step.finish();
/// run.set_output(json!({"selected": "case_17"}));
/// run.finish().ok();
/// ```
#[derive(Clone)]
pub struct XRay {
    pipeline: Arc<str>,
    pub(crate) core: Arc<Core>,
}

impl XRay {
    /// A client for `pipeline` on the process-wide default transport ([`init`], or the
    /// environment). A bad pipeline name (empty, over 512 bytes, NUL) is sent fitted
    /// ([`crate::wire::fit_name`]).
    pub fn new(pipeline: impl Into<String>) -> XRay {
        XRay {
            pipeline: pipeline.into().into(),
            core: Core::default_core(),
        }
    }

    /// A client with a transport of its own. When its last clone is dropped, it delivers or
    /// spools what is left, waiting up to 5 s (call [`XRay::shutdown`] to choose the wait).
    ///
    /// At a normal exit of the process (`main` returning, `std::process::exit`), every live
    /// client does the same from an exit hook. On a signal that kills the process (`SIGTERM`
    /// from `docker stop`, say) or an abort, no hook runs: call [`XRay::shutdown`] (or
    /// [`crate::shutdown`] for the default client) from the program's own shutdown path.
    pub fn with_config(pipeline: impl Into<String>, config: Config) -> XRay {
        XRay {
            pipeline: pipeline.into().into(),
            core: Core::new(config),
        }
    }

    /// Settings for a client with a transport of its own, starting from the environment:
    /// `XRay::builder().endpoint(url).offline_mode(OfflineMode::Fail).client("pipeline")`.
    pub fn builder() -> ConfigBuilder {
        Config::builder()
    }

    /// Another pipeline on the same transport.
    pub fn for_pipeline(&self, pipeline: impl Into<String>) -> XRay {
        XRay {
            pipeline: pipeline.into().into(),
            core: self.core.clone(),
        }
    }

    /// The pipeline's name.
    pub fn pipeline(&self) -> &str {
        &self.pipeline
    }

    /// The settings in use.
    pub fn config(&self) -> &Config {
        &self.core.config
    }

    /// Starts a run with this input (anything `Serialize`).
    pub fn run<I: Serialize>(&self, input: I) -> RunGuard {
        self.run_builder(input).start()
    }

    /// Starts a run with input and metadata (a JSON object, say the deploy or the user).
    pub fn run_with_metadata<I: Serialize, M: Serialize>(&self, input: I, metadata: M) -> RunGuard {
        self.run_builder(input).metadata(metadata).start()
    }

    /// A run to start with more than its input: metadata, correlation id, `traceparent`.
    ///
    /// ```no_run
    /// let xray = xray::XRay::new("checkout");
    /// let run = xray
    ///     .run_builder(serde_json::json!({"cart": 3}))
    ///     .correlation_id("req-7f3a")
    ///     .traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    ///     .start();
    /// ```
    pub fn run_builder<I: Serialize>(&self, input: I) -> RunBuilder<'_> {
        let max = self.core.config.max_io_bytes;
        self.run_builder_text(capped_json(&input, max))
    }

    /// [`Self::run_builder`] with the input already as capped JSON text.
    pub(crate) fn run_builder_text(&self, input: Option<Box<str>>) -> RunBuilder<'_> {
        RunBuilder {
            client: self,
            input,
            metadata: None,
            correlation: Correlation::new(),
            version: self.core.config.version.clone(),
            replay_of: None,
        }
    }

    /// Waits until everything recorded so far is delivered (or spooled, in `buffer` mode).
    /// In `fail` mode, reports any delivery failure since the last flush.
    pub fn flush(&self, timeout: Duration) -> Result<(), XRayError> {
        self.core.shipper.flush(timeout)
    }

    /// Delivers or spools everything and stops the background thread. Later events are
    /// spooled (`buffer`) or dropped and counted.
    pub fn shutdown(&self, timeout: Duration) -> Result<(), XRayError> {
        self.core.shipper.shutdown(timeout)
    }

    /// What became of the events so far.
    pub fn stats(&self) -> Stats {
        self.core.shipper.stats()
    }
}

/// A run about to start ([`XRay::run_builder`]); [`RunBuilder::start`] opens it.
#[must_use = "the run starts only when `start()` is called"]
pub struct RunBuilder<'a> {
    pub(crate) client: &'a XRay,
    pub(crate) input: Option<Box<str>>,
    pub(crate) metadata: Option<Box<str>>,
    pub(crate) correlation: Correlation,
    pub(crate) version: Option<String>,
    pub(crate) replay_of: Option<String>,
}

impl RunBuilder<'_> {
    /// Free-form metadata (a JSON object: the deploy, the user…).
    pub fn metadata<M: Serialize>(mut self, metadata: M) -> Self {
        let max = self.client.core.config.max_io_bytes;
        self.metadata = capped_json(&metadata, max);
        self
    }

    /// The caller's correlation id (`GET /runs?correlation_id=` finds the run).
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation = self.correlation.id(id);
        self
    }

    /// The W3C `traceparent` of the request that caused the run (`GET /runs?trace_id=` finds
    /// it). An invalid value is ignored with a warning.
    pub fn traceparent(mut self, header: &str) -> Self {
        self.correlation = self.correlation.traceparent(header);
        self
    }

    /// Both links at once; links not set here still come from the context or environment.
    pub fn correlation(mut self, correlation: Correlation) -> Self {
        self.correlation = correlation.or(&self.correlation);
        self
    }

    /// The version of the pipeline's code that runs (default: the client's
    /// [`Config::version`](crate::Config::version)); `GET /runs?version=` finds its runs.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Marks the run as a replay of the run or step with this id (`GET /runs?replay_of=` finds
    /// it, and the web UI links the two).
    pub fn replay_of(mut self, id: impl Into<String>) -> Self {
        self.replay_of = Some(id.into());
        self
    }
}

impl ConfigBuilder {
    /// A client for `pipeline` with these settings and a transport of its own.
    pub fn client(self, pipeline: impl Into<String>) -> XRay {
        XRay::with_config(pipeline, self.build())
    }
}

/// Shuts the default client down (delivering or spooling what is left) when dropped: keep it
/// alive in `main`.
#[must_use = "the default client is shut down when this guard is dropped"]
pub struct ShutdownGuard {
    timeout: Duration,
}

impl Drop for ShutdownGuard {
    fn drop(&mut self) {
        if let Err(e) = shutdown(self.timeout) {
            tracing::warn!("X-Ray shutdown: {e}");
        }
    }
}

/// Sets up the process-wide default client used by `XRay::new` and the macros. Call it once, at
/// start-up, before anything is recorded; without it the default comes from `XRAY_*` variables.
/// Fails with [`XRayError::Config`] for an endpoint the SDK cannot use ([`Config::validate`])
/// and [`XRayError::AlreadyInitialized`] on a second call.
///
/// ```no_run
/// let _xray = xray::init(xray::Config::builder().endpoint("http://xray.internal:8000").build())
///     .expect("first call");
/// ```
pub fn init(config: Config) -> Result<ShutdownGuard, XRayError> {
    config.validate()?;
    DEFAULT
        .set(Core::new(config))
        .map_err(|_| XRayError::AlreadyInitialized)?;
    Ok(ShutdownGuard {
        timeout: Duration::from_secs(10),
    })
}

/// [`XRay::flush`] on the default client.
pub fn flush(timeout: Duration) -> Result<(), XRayError> {
    Core::default_core().shipper.flush(timeout)
}

/// [`XRay::shutdown`] on the default client.
pub fn shutdown(timeout: Duration) -> Result<(), XRayError> {
    Core::default_core().shipper.shutdown(timeout)
}

/// [`XRay::stats`] of the default client.
pub fn stats() -> Stats {
    Core::default_core().shipper.stats()
}
