//! Connecting to the database: which backend, the connection pool, and migrations at start-up.
//! It must not hold queries: those are the store's ([`crate::store`]).

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{
    ConnectionManager, CustomizeConnection, HandleError, Pool, PoolError, PooledConnection,
    R2D2Connection,
};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The schema, compiled into the binary and applied at start-up (one SQL for both backends).
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");
/// What only SQLite has (its full-text item index), applied after [`MIGRATIONS`].
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations_sqlite");
/// What only PostgreSQL has (its GIN item index), applied after [`MIGRATIONS`].
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations_postgres");

/// How long SQLite waits for another writer before giving up (milliseconds).
const SQLITE_BUSY_TIMEOUT_MS: u64 = 30_000;
/// WAL pages after which a commit checkpoints the WAL itself (16 MB at 4 KiB pages): a backstop
/// for when the server's [`crate::store::maintenance::DbMaintainer`] (every 250 ms, off the request
/// path) is not running or falls behind; SQLite's own default is 1,000.
pub const SQLITE_AUTOCHECKPOINT_PAGES: u32 = 4_000;
/// Bytes a WAL file is cut back to after a checkpoint resets it (it keeps its largest size on
/// disk otherwise).
pub const SQLITE_WAL_SIZE_LIMIT: u64 = 64 << 20;

/// How long a request waits for a connection while the database answers (the pool is busy).
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request waits for a connection once connecting to the database has failed: a
/// request fails fast (503 with `Retry-After`) rather than hold a worker while it is away.
const UNREACHABLE_CHECKOUT_TIMEOUT: Duration = Duration::from_millis(250);
/// A busy wait for a connection looks this often for the database having become unreachable.
const CHECKOUT_SLICE: Duration = Duration::from_millis(250);
/// The pool's own connection timeout, which also caps its back-off between attempts to
/// reconnect (at half of it): short, so that requests find the database soon after it is back.
const POOL_CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

/// Any PostgreSQL advisory-lock key that is ours: serialises migrations across server processes.
const MIGRATION_LOCK_KEY: i64 = 0x5852_4159; // "XRAY"

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite file (created if missing).
    Sqlite(String),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

impl FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;

    /// `postgres://…` or `postgresql://…` is PostgreSQL; `sqlite://PATH`, `sqlite:PATH` or a plain
    /// path is a SQLite file.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(s.to_string()));
        }
        let path = s
            .strip_prefix("sqlite://")
            .or_else(|| s.strip_prefix("sqlite:"))
            .unwrap_or(s);
        Ok(DatabaseUrl::Sqlite(path.to_string()))
    }
}

impl fmt::Display for DatabaseUrl {
    /// Shows the URL without any password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite://{path}"),
            DatabaseUrl::Postgres(url) => match (url.find("://"), url.rfind('@')) {
                (Some(scheme), Some(at)) if at > scheme => {
                    write!(f, "{}://***{}", &url[..scheme], &url[at..])
                }
                _ => f.write_str(url),
            },
        }
    }
}

/// A failure to reach or prepare the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The pool could not open connections.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The database (password hidden).
        url: String,
        /// Why.
        #[source]
        source: diesel::r2d2::PoolError,
    },
    /// The database could not be opened.
    #[error("cannot open {url}: {source}")]
    Open {
        /// The database.
        url: String,
        /// Why.
        #[source]
        source: diesel::ConnectionError,
    },
    /// The PostgreSQL database does not exist and could not be created.
    #[error(
        "the PostgreSQL database `{name}` does not exist and could not be created ({why}); \
         create it (`createdb {name}`) or connect as a role that may (CREATEDB)"
    )]
    Create {
        /// The database's name.
        name: String,
        /// Why it could not be created.
        why: String,
    },
    /// Migrations failed.
    #[error("cannot apply migrations: {0}")]
    Migrate(String),
    /// A statement failed while preparing the database.
    #[error("database error while preparing: {0}")]
    Query(#[from] diesel::result::Error),
}

#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS};
             PRAGMA wal_autocheckpoint = {SQLITE_AUTOCHECKPOINT_PAGES};
             PRAGMA journal_size_limit = {SQLITE_WAL_SIZE_LIMIT};
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;"
        ))
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Whether the database is reachable, as the pool last found it: set when connecting to it or
/// checking a connection fails, cleared when a connection is handed out again.
#[derive(Debug, Default)]
struct Reach {
    unreachable_since: Mutex<Option<Instant>>,
}

impl Reach {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.unreachable_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn is_unreachable(&self) -> bool {
        self.lock().is_some()
    }

    fn failed(&self, error: &dyn fmt::Display) {
        let mut since = self.lock();
        if since.is_none() {
            *since = Some(Instant::now());
            tracing::warn!(%error, "the database is unreachable: requests answer 503 until it is back");
        } else {
            tracing::debug!(%error, "the database is still unreachable");
        }
    }

    fn answered(&self) {
        if let Some(since) = self.lock().take() {
            tracing::info!(after = ?since.elapsed(), "the database is reachable again");
        }
    }
}

/// The pool's error handler: every failed connect or connection check marks the database
/// unreachable.
#[derive(Debug)]
struct WatchErrors(Arc<Reach>);

impl HandleError<diesel::r2d2::Error> for WatchErrors {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        self.0.failed(&error);
    }
}

/// A connection pool that fails fast while its database is unreachable: a checkout waits up to
/// 30 s for a busy pool, but only a moment once connecting has failed, and the pool keeps
/// reconnecting on its own, so requests succeed again as soon as the database is back.
pub struct Gated<C: R2D2Connection + 'static> {
    pool: Pool<ConnectionManager<C>>,
    reach: Arc<Reach>,
}

impl<C: R2D2Connection + 'static> Clone for Gated<C> {
    fn clone(&self) -> Self {
        Gated {
            pool: self.pool.clone(),
            reach: self.reach.clone(),
        }
    }
}

impl<C: R2D2Connection + 'static> Gated<C> {
    fn build(
        url: &str,
        pool_size: u32,
        customize: Option<Box<dyn CustomizeConnection<C, diesel::r2d2::Error>>>,
    ) -> Gated<C> {
        let reach = Arc::new(Reach::default());
        let mut builder = Pool::builder()
            .max_size(pool_size.max(1))
            .connection_timeout(POOL_CONNECTION_TIMEOUT)
            .error_handler(Box::new(WatchErrors(reach.clone())));
        if let Some(customize) = customize {
            builder = builder.connection_customizer(customize);
        }
        // Unchecked: the pool connects in the background; start-up waits for its first
        // connection with `get_timeout` (the pool's own check would give up after 2 s).
        let pool = builder.build_unchecked(ConnectionManager::<C>::new(url));
        Gated { pool, reach }
    }

    /// A connection: waits while the pool is busy, fails within a moment while the database
    /// is unreachable.
    pub fn get(&self) -> Result<PooledConnection<ConnectionManager<C>>, PoolError> {
        if self.reach.is_unreachable() {
            return self.get_timeout(UNREACHABLE_CHECKOUT_TIMEOUT);
        }
        let deadline = Instant::now() + CHECKOUT_TIMEOUT;
        loop {
            let slice = CHECKOUT_SLICE.min(deadline.saturating_duration_since(Instant::now()));
            match self.get_timeout(slice) {
                Ok(conn) => return Ok(conn),
                Err(e) if self.reach.is_unreachable() || Instant::now() >= deadline => {
                    return Err(e)
                }
                Err(_) => {}
            }
        }
    }

    /// A connection, waiting at most `timeout`.
    pub fn get_timeout(
        &self,
        timeout: Duration,
    ) -> Result<PooledConnection<ConnectionManager<C>>, PoolError> {
        let conn = self.pool.get_timeout(timeout)?;
        self.reach.answered();
        Ok(conn)
    }
}

/// A pool of connections to one of the two backends.
#[derive(Clone)]
pub enum Db {
    /// Embedded SQLite.
    Sqlite(Gated<SqliteConnection>),
    /// PostgreSQL.
    Postgres(Gated<PgConnection>),
}

impl Db {
    /// Opens a pool and applies any pending migrations.
    pub fn connect(url: &DatabaseUrl, pool_size: u32) -> Result<Db, DbError> {
        let connect_err = |source| DbError::Connect {
            url: url.to_string(),
            source,
        };
        match url {
            DatabaseUrl::Sqlite(path) => {
                // WAL is a property of the file: set it once, before the pool opens connections
                // in parallel (switching it needs the file to itself).
                let mut first =
                    SqliteConnection::establish(path).map_err(|source| DbError::Open {
                        url: url.to_string(),
                        source,
                    })?;
                first.batch_execute(&format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; PRAGMA journal_mode = WAL;"
                ))?;
                drop(first);
                let pool = Gated::build(path, pool_size, Some(Box::new(SqlitePragmas)));
                let mut conn = pool.get_timeout(CHECKOUT_TIMEOUT).map_err(connect_err)?;
                for migrations in [MIGRATIONS, SQLITE_MIGRATIONS] {
                    conn.run_pending_migrations(migrations)
                        .map_err(|e| DbError::Migrate(e.to_string()))?;
                }
                Ok(Db::Sqlite(pool))
            }
            DatabaseUrl::Postgres(pg) => {
                create_if_missing(pg)?;
                let pool = Gated::<PgConnection>::build(pg, pool_size, None);
                let mut conn = pool.get_timeout(CHECKOUT_TIMEOUT).map_err(connect_err)?;
                // Several servers may start at once against one database: one migrates at a time.
                diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
                    .execute(&mut *conn)?;
                let migrated = [MIGRATIONS, POSTGRES_MIGRATIONS]
                    .into_iter()
                    .try_for_each(|m| conn.run_pending_migrations(m).map(|_| ()))
                    .map_err(|e| DbError::Migrate(e.to_string()));
                diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
                    .execute(&mut *conn)?;
                migrated?;
                Ok(Db::Postgres(pool))
            }
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }
}

/// How long the start-up probe below waits for the PostgreSQL server (libpq's `connect_timeout`).
const PROBE_CONNECT_TIMEOUT_SECS: u32 = 10;

/// Creates the database a PostgreSQL URL names when the server says there is none, so that
/// `DATABASE_URL=postgres://…/xray` needs no `createdb` first (the role needs CREATEDB): as with
/// the tables, which the migrations make. Any other failure (the server down, a wrong password)
/// is left to the pool, which waits for the server and reports it.
fn create_if_missing(url: &str) -> Result<(), DbError> {
    let Some(target) = PgTarget::parse(url) else {
        return Ok(()); // no database in the URL: libpq's default (the user's name)
    };
    let missing = format!("database \"{}\" does not exist", target.name);
    match PgConnection::establish(&target.url_for(&target.name)) {
        Err(diesel::ConnectionError::BadConnection(why)) if why.contains(&missing) => {}
        _ => return Ok(()),
    }
    let failed = |why: String| DbError::Create {
        name: target.name.clone(),
        why,
    };
    let mut admin =
        PgConnection::establish(&target.url_for("postgres")).map_err(|e| failed(e.to_string()))?;
    let quoted = format!("\"{}\"", target.name.replace('"', "\"\""));
    match diesel::sql_query(format!("CREATE DATABASE {quoted}")).execute(&mut admin) {
        Ok(_) => {
            tracing::info!("created the PostgreSQL database `{}`", target.name);
            Ok(())
        }
        // Another server starting on the same URL made it first.
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.message().contains("already exists") =>
        {
            Ok(())
        }
        Err(e) => Err(failed(e.to_string())),
    }
}

/// A PostgreSQL URL taken apart around its database name.
#[derive(Debug, PartialEq)]
struct PgTarget {
    /// `postgres://user:password@host:port`.
    server: String,
    /// The database, percent-decoded.
    name: String,
    /// The parameters after `?`, if any.
    params: Option<String>,
}

impl PgTarget {
    /// `None` when the URL names no database.
    fn parse(url: &str) -> Option<PgTarget> {
        let (scheme, rest) = url.split_once("://")?;
        let (rest, params) = match rest.split_once('?') {
            Some((rest, params)) => (rest, Some(params.to_string())),
            None => (rest, None),
        };
        let (authority, name) = rest.split_once('/')?;
        let name = percent_encoding::percent_decode_str(name)
            .decode_utf8()
            .ok()?;
        (!name.is_empty()).then(|| PgTarget {
            server: format!("{scheme}://{authority}"),
            name: name.into_owned(),
            params,
        })
    }

    /// The URL of database `name` on the same server, with the same parameters, waiting at most
    /// [`PROBE_CONNECT_TIMEOUT_SECS`] for the server unless the URL says otherwise.
    fn url_for(&self, name: &str) -> String {
        let name = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
        let timeout = format!("connect_timeout={PROBE_CONNECT_TIMEOUT_SECS}");
        let params = match &self.params {
            Some(p) if p.contains("connect_timeout=") => p.clone(),
            Some(p) => format!("{p}&{timeout}"),
            None => timeout,
        };
        format!("{}/{name}?{params}", self.server)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_backend_and_hide_passwords() {
        assert_eq!(
            "xray.db".parse::<DatabaseUrl>().unwrap(),
            DatabaseUrl::Sqlite("xray.db".into())
        );
        assert_eq!(
            "sqlite:///tmp/x.db".parse::<DatabaseUrl>().unwrap(),
            DatabaseUrl::Sqlite("/tmp/x.db".into())
        );
        let pg: DatabaseUrl = "postgres://u:secret@h:5432/db".parse().unwrap();
        assert!(matches!(pg, DatabaseUrl::Postgres(_)));
        assert_eq!(pg.to_string(), "postgres://***@h:5432/db");
    }

    #[test]
    fn a_postgres_url_is_taken_apart_around_its_database() {
        let t = PgTarget::parse("postgres://u:p@h:5432/x%20ray?sslmode=require").unwrap();
        assert_eq!(t.server, "postgres://u:p@h:5432");
        assert_eq!(t.name, "x ray");
        assert_eq!(
            t.url_for("postgres"),
            "postgres://u:p@h:5432/postgres?sslmode=require&connect_timeout=10"
        );
        assert_eq!(
            t.url_for(&t.name),
            "postgres://u:p@h:5432/x%20ray?sslmode=require&connect_timeout=10"
        );
        let own = PgTarget::parse("postgresql://h/xray?connect_timeout=3").unwrap();
        assert_eq!(own.url_for("xray"), "postgresql://h/xray?connect_timeout=3");
        assert_eq!(PgTarget::parse("postgres://h:5432"), None);
        assert_eq!(PgTarget::parse("postgres://h:5432/"), None);
    }
}
