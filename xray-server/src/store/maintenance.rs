//! The database's deferred work, off the request path: [`DbMaintainer`] (a thread of its own)
//! empties PostgreSQL's GIN pending list, packs and merges its item index
//! ([`super::item_batches`]), checkpoints SQLite's WAL, and rolls up finished runs stored before
//! the rollups existed ([`super::rollups`]). It must not change what reads
//! answer: its work only moves what is already written to where reads find it fastest and
//! smallest, and drops index entries of steps already deleted.

use super::item_batches::{self, IndexWork};
use super::rollups;
use super::{Store, StoreError};
use crate::db::Db;
use diesel::dsl::sql;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::sqlite::SqliteConnection;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often [`DbMaintainer`] runs.
const MAINTAIN_EVERY: Duration = Duration::from_millis(250);
/// Finished runs rolled up per round that were stored before the rollups (`super::rollups`).
const BACKLOG_BATCH: i64 = 500;
/// PostgreSQL's item index looks for batches retention emptied once in this many rounds.
const COLLECT_EVERY: u32 = 40;
/// The longest wait between tries while the work keeps failing (each failure doubles the wait).
const MAINTAIN_BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Keeps the write path short by doing the database's deferred work on a thread of its own,
/// off the request path. PostgreSQL: empties the GIN pending list (what new documents are
/// appended to) into the index; without it, the request that finds the list over its limit
/// merges it itself and waits for it (p99 ingest latency 690 ms instead of ~200 ms in the
/// `ingest` bench). SQLite: checkpoints the WAL into the database file (`PASSIVE`: it never waits
/// for, nor blocks, readers or the writer), which the writer would otherwise do inside a
/// request's commit (the connections' own checkpoint stays as a backstop at
/// [`crate::db::SQLITE_AUTOCHECKPOINT_PAGES`]). While the work fails (say the server's
/// PostgreSQL role does not own the index) it warns once and tries less and less often, up to
/// once a minute. Stops when dropped.
pub struct DbMaintainer {
    stop: Option<crossbeam_channel::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl DbMaintainer {
    /// Starts maintaining `store`'s database; `None` if the thread cannot be started.
    pub fn start(store: &Store) -> Option<DbMaintainer> {
        let store = store.clone();
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name("xray-maintainer".into())
            .spawn(move || {
                let mut wait = MAINTAIN_EVERY;
                let mut round: u32 = 0;
                loop {
                    round = round.wrapping_add(1);
                    match store.maintain_round(round.is_multiple_of(COLLECT_EVERY)) {
                        Ok(_) => wait = MAINTAIN_EVERY,
                        Err(e) => {
                            if wait == MAINTAIN_EVERY {
                                tracing::warn!(
                                    "cannot do the database's deferred work off the request \
                                     path ({e}); requests will do it themselves, with slower \
                                     ingest at times (on PostgreSQL, the server's database role \
                                     must own index item_docs_by_item); trying again less often"
                                );
                            }
                            wait = (wait * 2).min(MAINTAIN_BACKOFF_MAX);
                        }
                    }
                    match rx.recv_timeout(wait) {
                        Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
                        _ => break,
                    }
                }
            })
            .ok()?;
        Some(DbMaintainer {
            stop: Some(tx),
            thread: Some(thread),
        })
    }
}

impl Drop for DbMaintainer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Store {
    /// The database's deferred work (see [`DbMaintainer`]): on PostgreSQL, packs the item
    /// index's fresh documents and moves what is left in GIN's pending list into the index
    /// proper (returns the documents packed plus the pages emptied); on
    /// SQLite, checkpoints the WAL (returns the WAL's frames now in the database file: all of it
    /// when nothing held the checkpoint back). Waits at most a second for a connection.
    ///
    /// Packing on PostgreSQL also merges batches and drops or rewrites those whose steps
    /// retention deleted (see [`Store::maintain_index`] for what that did).
    pub fn maintain(&self) -> Result<i64, StoreError> {
        self.maintain_round(true)
    }

    /// [`Store::maintain`], looking for batches retention emptied only with `collect_garbage`.
    fn maintain_round(&self, collect_garbage: bool) -> Result<i64, StoreError> {
        const WAIT: Duration = Duration::from_secs(1);
        // Finished runs stored before the rollups existed, a batch a round.
        match &self.db {
            Db::Sqlite(pool) => rollups::backlog(&mut *pool.get_timeout(WAIT)?, BACKLOG_BATCH)?,
            Db::Postgres(pool) => rollups::backlog(&mut *pool.get_timeout(WAIT)?, BACKLOG_BATCH)?,
        };
        match &self.db {
            Db::Sqlite(pool) => Ok(checkpoint(&mut *pool.get_timeout(WAIT)?)?),
            Db::Postgres(pool) => {
                let c = &mut *pool.get_timeout(WAIT)?;
                let work = item_batches::maintain(c, collect_garbage)?;
                let cleaned = clean_pending_list(c)?;
                Ok(i64::try_from(work.packed).unwrap_or(i64::MAX) + cleaned)
            }
        }
    }

    /// PostgreSQL's item index maintenance alone (see [`super::item_batches`]): what it packed,
    /// merged and collected; nothing on SQLite.
    pub fn maintain_index(&self) -> Result<IndexWork, StoreError> {
        match &self.db {
            Db::Sqlite(_) => Ok(IndexWork::default()),
            Db::Postgres(pool) => Ok(item_batches::maintain(&mut *pool.get()?, true)?),
        }
    }
}

/// Checkpoints SQLite's WAL without waiting for readers or the writer. Returns how many of the
/// WAL's frames are now in the database file (all the WAL holds, when nothing held it back;
/// counted since the WAL last started over, so two calls in a row give the same number), or -1
/// when another checkpoint was running.
fn checkpoint(c: &mut SqliteConnection) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Checkpointed {
        #[diesel(sql_type = BigInt)]
        checkpointed: i64,
    }
    let done: Checkpointed = diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result(c)?;
    Ok(done.checkpointed)
}

/// Moves PostgreSQL's GIN pending list into the index; the number of pending-list pages emptied.
fn clean_pending_list(c: &mut PgConnection) -> QueryResult<i64> {
    diesel::select(sql::<BigInt>(
        "gin_clean_pending_list('item_docs_by_item'::regclass)",
    ))
    .get_result(c)
}
