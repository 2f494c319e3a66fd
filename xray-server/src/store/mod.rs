//! The store: every read and write the API needs, on SQLite or PostgreSQL.
//!
//! Owns [`Store`] (a pool handle) and [`StoreError`]; one module per concern below, each with its
//! SQL in a query trait implemented for both backends (`backend.rs`). It must not parse requests
//! (the HTTP layer does) nor check them ([`validate`] does). All calls block: the HTTP layer runs
//! them on actix's blocking thread pool.
//!
//! Modules: `backend.rs` (the per-backend glue), [`validate`] (a request becomes a
//! [`rows::WriteSet`]), `write.rs` (a write set becomes rows), `read.rs` (runs and steps),
//! `fates.rs` (an item's events), [`run_steps`] (a run a piece at a time), `retention.rs`
//! (expired runs and deletes), [`alerts`] (rules, firings, probes), [`items`] (the item index),
//! [`packed`] (the sample blobs), [`maintenance`] (deferred database work), [`rows`] and
//! [`views`] (rows and their wire views), [`filter`] (query filters), `group_commit.rs`
//! (SQLite's write queue), `otlp.rs` (ordering the steps of a trace sent in pieces), [`rollups`]
//! `rollup_sql.rs` and `rollup_apply.rs` (the figures per pipeline, step, version and hour, kept at ingest time;
//! durations in a [`histogram`], rejections in [`reason_counts`]), `stats.rs` (stats and compare, read from them).

// First: its macros (`with_conn!`, `for_both_backends!`) serve the modules after it.
#[macro_use]
mod backend;

pub mod alerts;
mod fates;
pub mod filter;
mod group_commit;
pub mod histogram;
pub mod item_batches;
pub mod items;
pub mod maintenance;
mod otlp;
pub mod packed;
mod pipelines;
pub mod postings;
pub mod ranking;
mod read;
pub mod reason_counts;
mod retention;
mod rollup_apply;
mod rollup_sql;
pub use rollup_sql::STEP_ROWS_BY_KEY_SQL;
pub mod rollups;
pub mod rows;
pub mod run_steps;
pub mod stats;
pub mod validate;
pub mod views;
mod write;

use crate::db::{DatabaseUrl, Db, DbError};

/// A failed read or write.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No connection could be had in time.
    #[error("the database is busy or unreachable: {0}")]
    Unavailable(#[from] diesel::r2d2::PoolError),
    /// A statement failed.
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    /// The database did not let a write begin in time (another writer held it past the busy
    /// timeout); nothing was written.
    #[error("the database is busy: {0}")]
    Busy(String),
    /// A step sent for one run has the id of a step of another run (step ids are unique across
    /// runs); nothing of the request is written.
    #[error("step_id `{step_id}` (of run `{run_id}`) is already the id of a step of run `{owner}`; step ids must be unique across runs")]
    StepOfAnotherRun {
        /// The step id.
        step_id: String,
        /// The run the request sent it for.
        run_id: String,
        /// The run that has it.
        owner: String,
    },
    /// Stored samples could not be unpacked.
    #[error(transparent)]
    Corrupt(#[from] packed::CorruptSamples),
    /// A stored duration histogram could not be read.
    #[error(transparent)]
    CorruptRollup(#[from] histogram::CorruptHistogram),
    /// A step rollup's stored rejection counts could not be read.
    #[error(transparent)]
    CorruptReasons(#[from] reason_counts::CorruptReasons),
}

/// The server's access to stored runs; cheap to clone (it is a pool handle).
#[derive(Clone)]
pub struct Store {
    db: Db,
    /// SQLite has one writer at a time: writers queue here rather than in SQLite's busy handler
    /// (whose sleep-and-retry left concurrent ingest requests idle for up to seconds), and those
    /// that queue are committed together.
    sqlite_writes: std::sync::Arc<group_commit::GroupCommit>,
}

impl Store {
    /// Connects to the database and brings its schema up to date.
    pub fn open(url: &DatabaseUrl, pool_size: u32) -> Result<Store, DbError> {
        Ok(Store {
            db: Db::connect(url, pool_size)?,
            sqlite_writes: Default::default(),
        })
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        self.db.backend()
    }
}
