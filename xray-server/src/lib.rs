//! X-Ray server: stores pipeline runs, steps and item events, and answers "why" over HTTP.
//!
//! The data path, one module per hop: [`http`] (routes, parsing, errors) → [`store`] (checks,
//! queries written once for both backends) → [`db`] (pool, migrations) → [`schema`] (tables).
//! `docs/ARCHITECTURE.md` walks it with file names.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use clap::Parser;
//! let config = xray_server::Config::parse_from(["xray-server", "--database-url", "xray.db"]);
//! xray_server::run(config).await?;
//! # Ok(()) }
//! ```

pub mod alerts;
pub mod db;
pub mod http;
pub mod retention;
pub mod schema;
pub mod settings;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use settings::Settings;
use std::net::TcpListener;
use std::path::PathBuf;

/// Server settings, from flags or the environment.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "xray-server",
    version,
    about = "X-Ray server: why did the pipeline decide that?"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "XRAY_BIND", default_value = "127.0.0.1:8000")]
    pub bind: String,
    /// `postgres://…` for PostgreSQL; otherwise a SQLite file path (`sqlite://` prefix optional).
    #[arg(long, env = "DATABASE_URL", default_value = "xray.db")]
    pub database_url: String,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "XRAY_BODY_LIMIT", default_value_t = 16 * 1024 * 1024)]
    pub body_limit: usize,
    /// Database connections in the pool.
    #[arg(long, env = "XRAY_POOL_SIZE", default_value_t = 8)]
    pub pool_size: u32,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "XRAY_WORKERS")]
    pub workers: Option<usize>,
    /// A TOML file with `[auth]` keys, `[retention]` policies and `[[alerts]]` rules (README).
    #[arg(long, env = "XRAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// An API key allowed to ingest (repeatable; env: comma-separated).
    #[arg(
        long = "ingest-key",
        env = "XRAY_INGEST_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub ingest_keys: Vec<http::auth::Secret>,
    /// An API key allowed to read (repeatable; env: comma-separated).
    #[arg(
        long = "read-key",
        env = "XRAY_READ_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub read_keys: Vec<http::auth::Secret>,
    /// An API key allowed everything, alert rules included (repeatable; env: comma-separated).
    #[arg(
        long = "admin-key",
        env = "XRAY_ADMIN_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub admin_keys: Vec<http::auth::Secret>,
    /// Delete runs older than this many days (the default retention policy).
    #[arg(long, env = "XRAY_RETAIN_DAYS")]
    pub retain_days: Option<u32>,
    /// Keep only this many newest runs per pipeline (the default retention policy).
    #[arg(long, env = "XRAY_RETAIN_RUNS")]
    pub retain_runs: Option<u64>,
    /// How often alert rules are evaluated, in milliseconds.
    #[arg(long, env = "XRAY_ALERT_INTERVAL_MS", default_value_t = 10_000)]
    pub alert_interval_ms: u64,
}

/// A failure to start the server.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Db(#[from] db::DbError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The config's alert rules could not be stored.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The config file is unreadable or invalid.
    #[error(transparent)]
    Settings(#[from] settings::SettingsError),
    /// The server stopped with an I/O error.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Opens the database, binds, and serves until stopped: SIGTERM or Ctrl-C (SIGINT) stops
/// accepting connections, finishes the requests in flight, then returns.
pub async fn run(config: Config) -> Result<(), StartError> {
    let url: db::DatabaseUrl = config
        .database_url
        .parse()
        .unwrap_or_else(|never: std::convert::Infallible| match never {});
    let settings = config.settings()?;
    let store = store::Store::open(&url, config.pool_size)?;
    let listener = TcpListener::bind(&config.bind).map_err(|source| StartError::Bind {
        addr: config.bind.clone(),
        source,
    })?;
    tracing::info!(
        "X-Ray server on http://{} ({} at {url})",
        listener.local_addr()?,
        store.backend()
    );
    let workers = config
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let running = start(listener, store, settings, workers)?;
    let handle = running.server.handle();
    actix_rt::spawn(async move {
        let signal = stop_signal().await;
        tracing::info!("{signal} received: finishing in-flight requests, then stopping");
        handle.stop(true).await;
    });
    let crate::Running {
        server,
        _background,
        ..
    } = running;
    server.await?;
    drop(_background);
    tracing::info!("stopped");
    Ok(())
}

/// A started server and its background work (retention sweeps, alert evaluation and webhook
/// delivery, the database's deferred work), which stops when this is dropped.
pub struct Running {
    /// The HTTP server: await it to serve; its handle stops it.
    pub server: actix_web::dev::Server,
    /// Shared with the handlers.
    pub state: http::AppState,
    pub(crate) _background: Vec<Box<dyn Send>>,
}

/// Builds the server and starts its background work.
pub fn start(
    listener: TcpListener,
    store: store::Store,
    settings: Settings,
    workers: usize,
) -> Result<Running, StartError> {
    let state = http::AppState::new(store, &settings)?;
    let mut background: Vec<Box<dyn Send>> = Vec::new();
    if let Some(sweeper) = state.retention.start() {
        background.push(Box::new(sweeper));
    }
    background.push(Box::new(state.alerts.start()));
    match store::maintenance::DbMaintainer::start(&state.store) {
        Some(maintainer) => background.push(Box::new(maintainer)),
        None => tracing::warn!(
            "cannot start the database maintenance thread; requests will checkpoint (SQLite) or \
             merge the item index (PostgreSQL) themselves"
        ),
    }
    let server = http::serve(listener, state.clone(), workers)?;
    Ok(Running {
        server,
        state,
        _background: background,
    })
}

/// Waits for SIGTERM or SIGINT (Ctrl-C) and names it. Both stop the server gracefully (actix's
/// own handlers, turned off in [`http::serve`], would drop in-flight requests on SIGINT).
async fn stop_signal() -> &'static str {
    let ctrl_c = Box::pin(async {
        if actix_rt::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        "SIGINT"
    });
    #[cfg(unix)]
    {
        use actix_rt::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            let term = Box::pin(async move {
                if term.recv().await.is_none() {
                    std::future::pending::<()>().await;
                }
                "SIGTERM"
            });
            return futures_util::future::select(ctrl_c, term)
                .await
                .factor_first()
                .0;
        }
    }
    ctrl_c.await
}
