//! Throwaway servers for tests: a real HTTP server on a free port, over a fresh database that is
//! removed afterwards (a temporary SQLite file, or a new PostgreSQL database). Compiled only
//! with the `testing` feature (the workspace's tests and benches): never in the release library.
//!
//! PostgreSQL tests connect to `XRAY_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) to create and drop their databases.

use crate::db::DatabaseUrl;
use crate::store::Store;
use crate::Settings;
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use std::net::TcpListener;
use std::thread::JoinHandle;

/// Runs one SQL statement on the database at `url`, panicking with the statement if it fails
/// (for tests that set a database up by hand).
pub fn exec(url: &DatabaseUrl, sql: &str) {
    match url {
        DatabaseUrl::Sqlite(path) => {
            let mut c = SqliteConnection::establish(path).expect("sqlite");
            diesel::sql_query(sql).execute(&mut c).expect(sql);
        }
        DatabaseUrl::Postgres(u) => {
            let mut c = PgConnection::establish(u).expect("postgres");
            diesel::sql_query(sql).execute(&mut c).expect(sql);
        }
    }
}

/// Which backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A temporary SQLite file.
    Sqlite,
    /// A new database on the local PostgreSQL server.
    Postgres,
}

/// The PostgreSQL server that test databases are created on.
pub fn postgres_admin_url() -> String {
    std::env::var("XRAY_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A database that exists for one test and is removed when dropped.
pub struct TestDb {
    url: DatabaseUrl,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin: String, name: String },
}

impl TestDb {
    /// Creates an empty database (no tables yet: the server migrates it).
    pub fn create(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("create a temporary directory");
                let path = dir.path().join("xray.db");
                TestDb {
                    url: DatabaseUrl::Sqlite(path.to_string_lossy().into_owned()),
                    cleanup: Cleanup::Dir(dir),
                }
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let name = format!("xray_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = PgConnection::establish(&admin).unwrap_or_else(|e| {
                    panic!("PostgreSQL is needed for this test ({admin}): {e}")
                });
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .expect("create a test database");
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
                TestDb {
                    url: DatabaseUrl::Postgres(format!("{base}/{name}")),
                    cleanup: Cleanup::Postgres { admin, name },
                }
            }
        }
    }

    /// Where it is.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// The URL as a string, for `--database-url`.
    pub fn url_string(&self) -> String {
        match &self.url {
            DatabaseUrl::Sqlite(p) => p.clone(),
            DatabaseUrl::Postgres(u) => u.clone(),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin, name } = &self.cleanup {
            if let Ok(mut conn) = PgConnection::establish(admin) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn);
            }
        }
    }
}

/// A running server over a [`TestDb`]; stopped (and its database removed) when dropped.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    handle: actix_web::dev::ServerHandle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    db: Option<TestDb>,
}

impl TestServer {
    /// Starts a server over a fresh database of `backend`.
    pub fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, 16 * 1024 * 1024)
    }

    /// Starts a server with a given body limit.
    pub fn start_with(backend: Backend, body_limit: usize) -> TestServer {
        Self::start_on(TestDb::create(backend), body_limit)
    }

    /// Starts a server over a test database, which it removes when dropped.
    pub fn start_on(db: TestDb, body_limit: usize) -> TestServer {
        let mut server = Self::start_url(db.url(), body_limit);
        server.db = Some(db);
        server
    }

    /// Starts a server over a database that someone else owns (a second server on one database).
    pub fn start_url(url: &DatabaseUrl, body_limit: usize) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        Self::start_listener(url, listener, body_limit)
    }

    /// Starts a server on a given listener (to bring a server back on the same address).
    pub fn start_listener(
        url: &DatabaseUrl,
        listener: TcpListener,
        body_limit: usize,
    ) -> TestServer {
        let settings = Settings {
            body_limit,
            ..Settings::default()
        };
        Self::start_listener_with(url, listener, settings)
    }

    /// Starts a server over a fresh database of `backend` with these settings (keys,
    /// retention, alert rules).
    pub fn start_settings(backend: Backend, settings: Settings) -> TestServer {
        let db = TestDb::create(backend);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let mut server = Self::start_listener_with(db.url(), listener, settings);
        server.db = Some(db);
        server
    }

    /// Starts a server on a given listener with these settings, background work included.
    pub fn start_listener_with(
        url: &DatabaseUrl,
        listener: TcpListener,
        settings: Settings,
    ) -> TestServer {
        let store = Store::open(url, 4).expect("open the test database");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let running = crate::start(listener, store, settings, 2)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                let _ = tx.send(running.server.handle());
                let crate::Running {
                    server,
                    _background,
                    ..
                } = running;
                let served = server.await;
                drop(_background);
                served
            })
        });
        let handle = rx.recv().expect("the test server started");
        TestServer {
            url,
            handle,
            thread: Some(thread),
            db: None,
        }
    }

    /// The database behind it, if this server owns it.
    pub fn db(&self) -> Option<&TestDb> {
        self.db.as_ref()
    }

    /// `url` + `path`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        actix_rt::System::new().block_on(self.handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
