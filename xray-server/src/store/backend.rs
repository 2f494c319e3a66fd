//! The per-backend glue, declared first so that its two macros serve every other store module:
//! [`with_conn!`] (a pooled connection of whichever backend is configured) and
//! [`for_both_backends!`] (one body of diesel DSL compiled for each connection type), and
//! [`WriteTx`] (each backend's write transaction). It holds no query and no rule of its own.

use super::StoreError;
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;
use diesel::Connection;

/// Rows per INSERT statement or ids per `IN (…)` list, well inside both backends' bind-parameter
/// limits.
pub(super) const ROWS_PER_STATEMENT: usize = 1000;

/// Runs `$body` with `$c` bound to a pooled connection of whichever backend `$db` is.
macro_rules! with_conn {
    ($db:expr, $c:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite(pool) => {
                let mut conn = pool.get()?;
                let $c: &mut diesel::sqlite::SqliteConnection = &mut conn;
                $body
            }
            $crate::db::Db::Postgres(pool) => {
                let mut conn = pool.get()?;
                let $c: &mut diesel::pg::PgConnection = &mut conn;
                $body
            }
        }
    };
}

/// Implements a query trait for both backends' connections from one body of diesel DSL, which
/// is compiled once for `SqliteConnection` and once for `PgConnection` (diesel's
/// `MultiConnection` cannot express the binary columns nor the `RETURNING` inserts).
macro_rules! for_both_backends {
    (impl $trait:ident { $($body:tt)* }) => {
        impl $trait for diesel::sqlite::SqliteConnection { $($body)* }
        impl $trait for diesel::pg::PgConnection { $($body)* }
    };
}

/// How each backend runs a write: in one transaction that holds the write lock from its start.
pub(super) trait WriteTx: Connection {
    /// Runs `f` in a write transaction: committed if it returns `Ok`, rolled back otherwise.
    fn write_tx<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError>;
}

impl WriteTx for SqliteConnection {
    /// `BEGIN IMMEDIATE`: a deferred transaction that later needs to write could fail with
    /// `SQLITE_BUSY` half-way, where this one waits for the lock before it starts.
    fn write_tx<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.immediate_transaction(f)
    }
}

impl WriteTx for PgConnection {
    fn write_tx<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.transaction(f)
    }
}
