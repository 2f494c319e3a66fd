//! SQLite's writes, committed in groups: this module owns only the queue and the writer's turn
//! (the statements are [`super::write`]'s, and must stay there).
//!
//! SQLite has one writer at a time, and a commit has a cost of its own (the WAL append of every
//! page the transaction dirtied, once however often the transaction touched it). Requests that
//! arrive while another is writing queue here; whichever takes the writer's turn next writes
//! every queued request (up to [`MAX_GROUP_STEPS`] steps) in one transaction, each inside its own
//! savepoint, so one refused request (a step id of another run) rolls back alone and the others
//! commit; their item documents are added after the savepoints, all at once, so FTS5 writes one
//! segment for the group rather than one a request. Should the shared transaction fail (its
//! commit, or adding those documents), each request
//! is written again on its own, so each gets its own answer; should the transaction not even
//! begin (the database stayed locked past the busy timeout), every request of the group gets that
//! error at once rather than waiting for the lock again one by one. A request alone in the queue
//! is written at once: grouping adds no waiting.

use super::items::ItemDocs;
use super::rows::WriteSet;
use super::write::{write, write_rows, Packed};
use super::StoreError;
use diesel::sqlite::SqliteConnection;
use diesel::Connection;
use std::sync::{Arc, Mutex, MutexGuard};

/// Steps in one group transaction, at most (a request is never split).
const MAX_GROUP_STEPS: usize = 1000;

/// One request's rows, waiting for the writer.
pub(super) struct Job {
    set: WriteSet,
    packed: Packed,
    result: Mutex<Option<Result<(), StoreError>>>,
}

impl Job {
    /// The rows [`write`] needs from `set` (runs and steps; its counts and samples are
    /// in `packed`).
    pub(super) fn new(set: &WriteSet, packed: Packed) -> Arc<Job> {
        Arc::new(Job {
            set: WriteSet {
                runs_complete: set.runs_complete.clone(),
                runs_started: set.runs_started.clone(),
                runs_finished: set.runs_finished.clone(),
                runs_placeholder: set.runs_placeholder.clone(),
                steps: set.steps.clone(),
                reasons: Vec::new(),
                kept: Vec::new(),
                ranked: Vec::new(),
            },
            packed,
            result: Mutex::new(None),
        })
    }
}

/// The queue and the writer's turn.
#[derive(Default)]
pub(super) struct GroupCommit {
    pending: Mutex<Vec<Arc<Job>>>,
    writer: Mutex<()>,
}

/// A lock whose holder panicked is still usable: every holder leaves the data consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl GroupCommit {
    /// Writes `job` (and whatever else is queued), returning its own result.
    pub(super) fn write(
        &self,
        job: Arc<Job>,
        conn: impl FnOnce() -> Result<ConnGuard, StoreError>,
    ) -> Result<(), StoreError> {
        lock(&self.pending).push(job.clone());
        let _turn = lock(&self.writer);
        if let Some(done) = lock(&job.result).take() {
            return done;
        }
        let mut guard = match conn() {
            Ok(c) => c,
            Err(e) => {
                // Without a connection this request fails alone; the others stay queued for
                // their own turn.
                lock(&self.pending).retain(|j| !Arc::ptr_eq(j, &job));
                return Err(e);
            }
        };
        loop {
            if let Some(done) = lock(&job.result).take() {
                return done;
            }
            let group = self.next_group();
            if group.is_empty() {
                // Not queued and not done cannot happen; should it, write the job alone.
                return write(&mut *guard, &job.set, &job.packed);
            }
            write_group(&mut guard, &group);
        }
    }

    /// The oldest queued jobs, up to [`MAX_GROUP_STEPS`] steps (at least one job).
    fn next_group(&self) -> Vec<Arc<Job>> {
        let mut pending = lock(&self.pending);
        let mut steps = 0;
        let mut n = 0;
        for j in pending.iter() {
            if n > 0 && steps + j.set.steps.len() > MAX_GROUP_STEPS {
                break;
            }
            steps += j.set.steps.len();
            n += 1;
        }
        pending.drain(..n).collect()
    }
}

/// A pooled SQLite connection.
pub(super) type ConnGuard =
    diesel::r2d2::PooledConnection<diesel::r2d2::ConnectionManager<SqliteConnection>>;

/// Writes `group` in one transaction, one savepoint a job; on a failed commit, one transaction a
/// job. Every job gets its result.
fn write_group(c: &mut SqliteConnection, group: &[Arc<Job>]) {
    if let [job] = group {
        *lock(&job.result) = Some(write(c, &job.set, &job.packed));
        return;
    }
    let mut began = false;
    let together = c.immediate_transaction::<_, StoreError, _>(|c| {
        began = true;
        let mut docs = Vec::new();
        let results = group
            .iter()
            .map(|j| {
                c.transaction::<_, StoreError, _>(|c| write_rows(c, &j.set, &j.packed))
                    .map(|mine| docs.extend(mine))
            })
            .collect::<Vec<_>>();
        // Every accepted request's documents at once: one FTS5 segment for the group.
        c.add_docs(&docs)?;
        Ok(results)
    });
    match together {
        Ok(results) => {
            for (j, r) in group.iter().zip(results) {
                *lock(&j.result) = Some(r);
            }
        }
        Err(e) if !began => {
            let why = e.to_string();
            for j in group {
                *lock(&j.result) = Some(Err(StoreError::Busy(why.clone())));
            }
        }
        Err(e) => {
            tracing::warn!("a group commit failed ({e}); writing its requests one by one");
            for j in group {
                *lock(&j.result) = Some(write(c, &j.set, &j.packed));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use crate::store::packed::pack_set;
    use crate::testing::{Backend as TestBackend, TestDb};
    use diesel::prelude::*;

    fn run(run_id: &str, step_id: &str) -> WriteSet {
        let run: xray_wire::RunRecord = serde_json::from_value(serde_json::json!({
            "run_id": run_id, "pipeline": "p", "started_at": "2026-11-20T10:00:00Z",
            "steps": [{"step_id": step_id, "name": "f", "step_type": "filter",
                       "rejections": {"r": {"count": 1, "samples": [{"item_id": run_id}]}}}]
        }))
        .expect("run");
        WriteSet::from_run(run).expect("valid")
    }

    #[test]
    fn queued_writes_commit_together_and_a_refused_one_alone_rolls_back() {
        let db = TestDb::create(TestBackend::Sqlite);
        let Db::Sqlite(pool) = Db::connect(db.url(), 2).expect("open") else {
            panic!("a SQLite database")
        };
        let q = GroupCommit::default();
        let jobs: Vec<Arc<Job>> = [("r1", "s1"), ("r2", "s1"), ("r3", "s3")]
            .into_iter()
            .map(|(r, s)| {
                let set = run(r, s);
                let packed = pack_set(&set);
                Job::new(&set, packed)
            })
            .collect();
        // r1 and r2 queued while another request was writing; r3's turn writes all three, in
        // the order they came.
        lock(&q.pending).extend(jobs[..2].iter().cloned());
        q.write(jobs[2].clone(), || Ok(pool.get()?))
            .expect("r3 is written");
        assert!(
            lock(&q.pending).is_empty(),
            "one turn took every queued job"
        );
        assert!(matches!(lock(&jobs[0].result).take(), Some(Ok(()))));
        let r2 = lock(&jobs[1].result).take().expect("r2 has its answer");
        assert!(
            matches!(r2, Err(StoreError::StepOfAnotherRun { ref owner, .. }) if owner == "r1"),
            "{r2:?}"
        );
        let mut c = pool.get().expect("conn");
        use crate::schema::{runs, steps};
        let stored: Vec<String> = runs::table
            .select(runs::run_id)
            .order(runs::run_id)
            .load(&mut c)
            .expect("runs");
        assert_eq!(stored, ["r1", "r3"], "r2 rolled back alone");
        let docs: Vec<Option<i64>> = steps::table
            .select(steps::item_doc)
            .order(steps::step_id)
            .load(&mut c)
            .expect("steps");
        assert_eq!(docs, [Some(1), Some(2)], "r2 used no document number");
        // The group's documents were added after the savepoints: r1's and r3's items are found
        // under their numbers, r2's (rolled back) nowhere.
        assert_eq!(c.docs_with_item("r1").expect("r1's document"), [1]);
        assert_eq!(c.docs_with_item("r3").expect("r3's document"), [2]);
        assert_eq!(
            c.docs_with_item("r2").expect("no document"),
            Vec::<i64>::new()
        );
    }
}
