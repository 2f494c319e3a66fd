//! Client settings: where to send, what to do when the server is away, how much to keep.

use crate::error::XRayError;
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::time::Duration;
use xray_wire::Capture;

/// Where events go when the server cannot take them: when it cannot be reached, answers 5xx
/// after the retries, or times out (a batch of events at a time). Events it refuses as invalid
/// (4xx) are sent apart from the rest of their batch and counted in
/// [`Stats::failed`](crate::Stats) in every mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OfflineMode {
    /// Report it: `flush()` and the end of a run return an error. For tests.
    Fail,
    /// Drop the events and count them in [`Stats::dropped`](crate::Stats).
    Silent,
    /// Write them to a spool on local disk and re-send when the server is back (the default).
    /// Nothing is given up for a 5xx or no answer: a batch the server keeps failing on while it
    /// stores the others stays spooled until it takes it, without holding the others up.
    #[default]
    Buffer,
}

impl std::str::FromStr for OfflineMode {
    type Err = XRayError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fail" => Ok(OfflineMode::Fail),
            "silent" => Ok(OfflineMode::Silent),
            "buffer" => Ok(OfflineMode::Buffer),
            other => Err(XRayError::Config(format!(
                "offline mode `{other}`: expected fail, silent or buffer"
            ))),
        }
    }
}

/// Everything the client can be told. Build one with [`Config::builder`] or [`Config::from_env`].
#[derive(Debug, Clone)]
pub struct Config {
    /// The server, e.g. `http://127.0.0.1:8000` (`XRAY_ENDPOINT`).
    pub endpoint: String,
    /// What happens when the server is away (`XRAY_OFFLINE_MODE`: fail, silent, buffer).
    pub offline_mode: OfflineMode,
    /// Capture level of steps that do not choose one (`XRAY_CAPTURE`: minimal, sample, full).
    pub capture: Capture,
    /// Spool folder for `buffer` mode (`XRAY_SPOOL_DIR`; default: a folder per endpoint under
    /// `$XDG_CACHE_HOME/xray/spool` or `~/.cache/xray/spool`).
    pub spool_dir: Option<PathBuf>,
    /// Largest spool, in bytes; past it new events are dropped and counted (`XRAY_SPOOL_MAX_BYTES`).
    pub spool_max_bytes: u64,
    /// Events per request, at most (`XRAY_BATCH_SIZE`).
    pub batch_size: usize,
    /// Longest an event waits in memory before its batch is sent (`XRAY_BATCH_INTERVAL_MS`).
    pub batch_interval: Duration,
    /// Events the in-memory queue holds before overflowing (`XRAY_QUEUE_CAPACITY`).
    pub queue_capacity: usize,
    /// Time allowed for one HTTP request (`XRAY_HTTP_TIMEOUT_MS`).
    pub http_timeout: Duration,
    /// Attempts per batch before it is spooled, dropped or reported (`XRAY_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// Largest JSON of one item's details; bigger details are replaced by a truncated preview.
    pub max_details_bytes: usize,
    /// Largest JSON of a run's or step's input or output (`XRAY_MAX_IO_BYTES`); bigger ones are
    /// replaced by a truncated preview, and serialising them stops at the limit.
    pub max_io_bytes: usize,
    /// Largest captured input of a `replay` function (`XRAY_MAX_REPLAY_INPUT_BYTES`; at most
    /// the server's body limit): its arguments are kept whole up to it, for `xray-replay`.
    pub max_replay_input_bytes: usize,
    /// Pipeline of steps opened with no run around them (`XRAY_PIPELINE`).
    pub default_pipeline: String,
    /// The version of the pipeline's code, recorded on every run (`XRAY_VERSION`; a release, a
    /// commit…), so runs of two versions can be compared.
    pub version: Option<String>,
    /// API key sent as `Authorization: Bearer …` when the server requires one (`XRAY_API_KEY`).
    pub api_key: Option<ApiKey>,
}

/// An API key: sent to the server, never printed (`Debug` shows `***`).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(key.into())
    }

    /// The key's text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            endpoint: "http://127.0.0.1:8000".into(),
            offline_mode: OfflineMode::Buffer,
            capture: Capture::Sample,
            spool_dir: None,
            spool_max_bytes: 256 * 1024 * 1024,
            batch_size: 200,
            batch_interval: Duration::from_millis(500),
            queue_capacity: 10_000,
            http_timeout: Duration::from_secs(5),
            max_attempts: 3,
            max_details_bytes: 4096,
            max_io_bytes: 32 * 1024,
            max_replay_input_bytes: 8 * 1024 * 1024,
            default_pipeline: "default".into(),
            version: None,
            api_key: None,
        }
    }
}

impl Config {
    /// Defaults, overridden by any `XRAY_*` environment variables. An invalid value is reported
    /// with a warning and ignored, so a typo in the environment never stops the program.
    pub fn from_env() -> Config {
        let d = Config::default();
        // A count or size: a whole number above 0.
        let n = |name| env::<NonZeroU64>(name).map(NonZeroU64::get);
        Config {
            endpoint: env::<String>("XRAY_ENDPOINT").map_or(d.endpoint, |v| v.trim().into()),
            api_key: env("XRAY_API_KEY").map(ApiKey),
            offline_mode: env("XRAY_OFFLINE_MODE").unwrap_or(d.offline_mode),
            capture: env("XRAY_CAPTURE").unwrap_or(d.capture),
            spool_dir: env("XRAY_SPOOL_DIR"),
            spool_max_bytes: n("XRAY_SPOOL_MAX_BYTES").unwrap_or(d.spool_max_bytes),
            batch_size: n("XRAY_BATCH_SIZE").map_or(d.batch_size, |n| n as usize),
            batch_interval: n("XRAY_BATCH_INTERVAL_MS")
                .map_or(d.batch_interval, Duration::from_millis),
            queue_capacity: n("XRAY_QUEUE_CAPACITY").map_or(d.queue_capacity, |n| n as usize),
            http_timeout: n("XRAY_HTTP_TIMEOUT_MS").map_or(d.http_timeout, Duration::from_millis),
            max_attempts: n("XRAY_MAX_ATTEMPTS").map_or(d.max_attempts, |n| n as u32),
            max_io_bytes: n("XRAY_MAX_IO_BYTES").map_or(d.max_io_bytes, |n| n as usize),
            max_replay_input_bytes: n("XRAY_MAX_REPLAY_INPUT_BYTES")
                .map_or(d.max_replay_input_bytes, |n| n as usize),
            default_pipeline: env("XRAY_PIPELINE").unwrap_or(d.default_pipeline),
            version: env("XRAY_VERSION"),
            ..d
        }
    }

    /// Starts from [`Config::from_env`].
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder(Config::from_env())
    }

    /// Checks what can be checked before any event is sent: the endpoint is an `http://` URL
    /// with a host (this build speaks no TLS: an `https://` server needs a local proxy).
    pub fn validate(&self) -> Result<(), XRayError> {
        let endpoint = self.endpoint.as_str();
        let Some(rest) = endpoint.strip_prefix("http://") else {
            let why = if endpoint.starts_with("https://") {
                "this build of the SDK speaks no TLS: use an http:// endpoint (a local \
                 TLS-terminating proxy, for instance)"
            } else {
                "it must start with http://, e.g. http://127.0.0.1:8000"
            };
            return Err(XRayError::Config(format!("endpoint `{endpoint}`: {why}")));
        };
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        if host.is_empty() || host.starts_with(':') {
            return Err(XRayError::Config(format!(
                "endpoint `{endpoint}`: no host, e.g. http://127.0.0.1:8000"
            )));
        }
        Ok(())
    }

    /// The spool folder: the configured one, or one per endpoint under the user's cache folder.
    pub fn spool_path(&self) -> PathBuf {
        if let Some(dir) = &self.spool_dir {
            return dir.clone();
        }
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        let endpoint: String = self
            .endpoint
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        cache.join("xray").join("spool").join(endpoint)
    }
}

/// The environment variable `name` parsed, if it is set and not empty; a warning if it does not
/// parse.
pub(crate) fn env<T: std::str::FromStr>(name: &str) -> Option<T>
where
    T::Err: std::fmt::Display,
{
    let value = std::env::var(name).ok().filter(|v| !v.is_empty())?;
    value
        .parse()
        .map_err(|e| tracing::warn!("ignoring {name}={value}: {e}"))
        .ok()
}

/// Sets [`Config`] fields one by one.
#[derive(Debug, Clone)]
pub struct ConfigBuilder(Config);

/// Setters of [`ConfigBuilder`]: `name(argument: Type) => value stored`.
macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident($arg:ident: $ty:ty) => $value:expr;)*) => {
        impl ConfigBuilder {
            $($(#[$doc])* pub fn $name(mut self, $arg: $ty) -> Self {
                self.0.$name = $value;
                self
            })*
        }
    };
}

setters! {
    /// The server's URL.
    endpoint(url: impl Into<String>) => url.into().trim().to_string();
    /// The API key to send (when the server requires keys: one with the `ingest` scope).
    api_key(key: impl Into<String>) => Some(ApiKey(key.into()));
    /// What happens when the server is away.
    offline_mode(mode: OfflineMode) => mode;
    /// Default capture level.
    capture(capture: Capture) => capture;
    /// Spool folder.
    spool_dir(dir: impl Into<PathBuf>) => Some(dir.into());
    /// Largest spool, in bytes.
    spool_max_bytes(bytes: u64) => bytes;
    /// Events per request.
    batch_size(n: usize) => n.max(1);
    /// Longest wait before a batch is sent (at least 1 ms: zero would keep the shipper spinning).
    batch_interval(d: Duration) => d.max(Duration::from_millis(1));
    /// In-memory queue size, in events.
    queue_capacity(n: usize) => n.max(1);
    /// Time allowed for one HTTP request (at least 1 ms).
    http_timeout(d: Duration) => d.max(Duration::from_millis(1));
    /// Attempts per batch.
    max_attempts(n: u32) => n.max(1);
    /// Largest details JSON kept per item.
    max_details_bytes(n: usize) => n;
    /// Largest input or output JSON kept per run or step.
    max_io_bytes(n: usize) => n;
    /// Largest captured input of a `replay` function.
    max_replay_input_bytes(n: usize) => n;
    /// Pipeline of steps opened with no run around them.
    default_pipeline(name: impl Into<String>) => name.into();
    /// The version of the pipeline's code, recorded on every run.
    version(version: impl Into<String>) => Some(version.into());
}

impl ConfigBuilder {
    /// The finished configuration.
    pub fn build(self) -> Config {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_the_sdk_cannot_use_is_refused_up_front() {
        let with = |endpoint: &str| Config::builder().endpoint(endpoint).build().validate();
        for good in [
            "http://127.0.0.1:8000",
            "http://xray.internal/prefix/",
            "http://h",
        ] {
            assert!(with(good).is_ok(), "{good}");
        }
        for bad in [
            "127.0.0.1:8000",
            "https://xray.example.com",
            "http://",
            "http://:80",
            "",
        ] {
            let err = with(bad).expect_err(bad);
            assert!(matches!(err, XRayError::Config(_)), "{bad}: {err}");
            assert!(err.to_string().contains("http://"), "{bad}: {err}");
        }
        let err = crate::init(Config::builder().endpoint("localhost:8000").build());
        assert!(matches!(err, Err(XRayError::Config(_))), "init refuses it");
    }

    #[test]
    fn zero_durations_and_counts_are_raised_to_the_least_that_works() {
        let c = Config::builder()
            .batch_interval(Duration::ZERO)
            .http_timeout(Duration::ZERO)
            .batch_size(0)
            .queue_capacity(0)
            .max_attempts(0)
            .build();
        assert_eq!(c.batch_interval, Duration::from_millis(1));
        assert_eq!(c.http_timeout, Duration::from_millis(1));
        assert_eq!((c.batch_size, c.queue_capacity, c.max_attempts), (1, 1, 1));
    }
}
