//! Writing a [`WriteSet`] in one transaction: runs upserted (each kind merged its own way),
//! steps inserted once with their item document numbers, exact counts, item documents. The rules
//! (which run owns a step id, which steps get a document number) are plain methods on the write
//! set here; the SQL is in [`WriteSql`]. It must not check requests (that is [`super::validate`]).

use super::backend::{WriteTx, ROWS_PER_STATEMENT};
use super::items::{ItemDocs, StepItems};
use super::packed::{self, PackedReasonRow};
use super::rollup_apply;
use super::rollup_sql::RollupSql;
use super::rollups::{self, Rollup, RunState};
use super::rows::{RunRow, StepRow, WriteSet};
use super::{group_commit, Store, StoreError};
use crate::db::Db;
use crate::schema::{runs, step_reasons, steps};
use diesel::prelude::*;
use diesel::upsert::excluded;
use std::collections::{HashMap, HashSet};
use xray_wire::RunStatus;

/// Step rows per INSERT (22 columns each).
const STEPS_PER_INSERT: usize = 500;

/// What a write stores besides the rows of its [`WriteSet`]: the counts with their packed
/// samples, and each sampling step's kept items.
pub(super) type Packed = (Vec<PackedReasonRow>, Vec<StepItems>);

/// The item documents a write owes the index: (number, the step's kept items) of each step it
/// inserted. Added last, so a group commit adds all its requests' documents at once (FTS5 writes
/// a segment for every savepoint that added any).
pub(super) type NewDocs<'p> = Vec<(i64, &'p StepItems)>;

/// What a run's start sets on conflict, the same whether it came as `run_started` or whole.
macro_rules! start_columns {
    () => {
        (
            runs::pipeline.eq(excluded(runs::pipeline)),
            runs::input.eq(excluded(runs::input)),
            runs::metadata.eq(excluded(runs::metadata)),
            runs::started_at.eq(excluded(runs::started_at)),
            runs::correlation_id.eq(excluded(runs::correlation_id)),
            runs::trace_id.eq(excluded(runs::trace_id)),
            runs::traceparent.eq(excluded(runs::traceparent)),
            runs::version.eq(excluded(runs::version)),
            runs::replay_of.eq(excluded(runs::replay_of)),
        )
    };
}

/// What a run's end sets on conflict, the same whether it came as `run_finished` or whole.
macro_rules! finish_columns {
    () => {
        (
            runs::status.eq(excluded(runs::status)),
            runs::output.eq(excluded(runs::output)),
            runs::error.eq(excluded(runs::error)),
            runs::ended_at.eq(excluded(runs::ended_at)),
            runs::duration_ms.eq(excluded(runs::duration_ms)),
            runs::rolled_up.eq(excluded(runs::rolled_up)),
        )
    };
}

/// Runs with `rolled_up` as their status makes it (finished runs are in the rollups: see
/// `rollups.rs`), so that a write need not mark them afterwards.
fn with_rolled_up(rows: &[RunRow]) -> Vec<(&RunRow, diesel::dsl::Eq<runs::rolled_up, bool>)> {
    rows.iter()
        .map(|r| {
            (
                r,
                runs::rolled_up.eq(r.status != RunStatus::Running.as_str()),
            )
        })
        .collect()
}

/// The statements of a write, for each backend.
pub(super) trait WriteSql {
    /// Upserts the runs of `set`: complete runs replace every column, `run_started` and
    /// `run_finished` set their own columns, placeholders only create a run that is missing.
    fn upsert_runs(&mut self, set: &WriteSet) -> QueryResult<()>;
    /// Inserts steps with their document numbers, skipping a stored step id; answers each
    /// inserted step's (id, document number).
    fn insert_steps(
        &mut self,
        rows: &[(&StepRow, Option<i64>)],
    ) -> QueryResult<Vec<(String, Option<i64>)>>;
    /// (step id, run id) of the stored steps among `ids`.
    fn step_owners(&mut self, ids: &[&str]) -> QueryResult<Vec<(String, String)>>;
    /// Inserts counts with their packed samples; a stored one is left as it is.
    fn insert_reasons(&mut self, reasons: &[PackedReasonRow]) -> QueryResult<()>;
}

for_both_backends! {
    impl WriteSql {
        fn upsert_runs(&mut self, set: &WriteSet) -> QueryResult<()> {
            for chunk in set.runs_complete.chunks(ROWS_PER_STATEMENT) {
                diesel::insert_into(runs::table)
                    .values(with_rolled_up(chunk))
                    .on_conflict(runs::run_id)
                    .do_update()
                    .set((start_columns!(), finish_columns!()))
                    .execute(self)?;
            }
            for chunk in set.runs_started.chunks(ROWS_PER_STATEMENT) {
                diesel::insert_into(runs::table)
                    .values(with_rolled_up(chunk))
                    .on_conflict(runs::run_id)
                    .do_update()
                    .set(start_columns!())
                    .execute(self)?;
            }
            for chunk in set.runs_finished.chunks(ROWS_PER_STATEMENT) {
                diesel::insert_into(runs::table)
                    .values(with_rolled_up(chunk))
                    .on_conflict(runs::run_id)
                    .do_update()
                    .set(finish_columns!())
                    .execute(self)?;
            }
            for chunk in set.runs_placeholder.chunks(ROWS_PER_STATEMENT) {
                diesel::insert_into(runs::table)
                    .values(with_rolled_up(chunk))
                    .on_conflict_do_nothing()
                    .execute(self)?;
            }
            Ok(())
        }

        fn insert_steps(
            &mut self,
            rows: &[(&StepRow, Option<i64>)],
        ) -> QueryResult<Vec<(String, Option<i64>)>> {
            let values: Vec<_> = rows
                .iter()
                .map(|(s, doc)| (*s, steps::item_doc.eq(*doc)))
                .collect();
            diesel::insert_into(steps::table)
                .values(values)
                // Only a stored step id is skipped: any other conflict (a document number taken,
                // which cannot happen while numbers only go up) fails the write rather than drop
                // a step without a word.
                .on_conflict(steps::step_id)
                .do_nothing()
                .returning((steps::step_id, steps::item_doc))
                .get_results(self)
        }

        fn step_owners(&mut self, ids: &[&str]) -> QueryResult<Vec<(String, String)>> {
            steps::table
                .filter(steps::step_id.eq_any(ids))
                .select((steps::step_id, steps::run_id))
                .load(self)
        }

        fn insert_reasons(&mut self, reasons: &[PackedReasonRow]) -> QueryResult<()> {
            diesel::insert_into(step_reasons::table)
                .values(reasons)
                .on_conflict_do_nothing()
                .execute(self)
                .map(|_| ())
        }
    }
}

impl Store {
    /// Writes a validated set of rows in one transaction. Re-writing the same rows is a no-op.
    /// Kept samples are packed (see [`packed`]) before the transaction starts.
    pub fn write(&self, set: &WriteSet) -> Result<(), StoreError> {
        let packed = packed::pack_set(set);
        match &self.db {
            Db::Sqlite(pool) => self
                .sqlite_writes
                .write(group_commit::Job::new(set, packed), || Ok(pool.get()?)),
            Db::Postgres(pool) => write(&mut *pool.get()?, set, &packed),
        }
    }
}

/// Writes `set` and its item documents in one transaction.
pub(super) fn write<C: WriteTx + WriteSql + ItemDocs + RollupSql>(
    c: &mut C,
    set: &WriteSet,
    packed: &Packed,
) -> Result<(), StoreError> {
    c.write_tx(|c| {
        let docs = write_rows(c, set, packed)?;
        Ok(c.add_docs(&docs)?)
    })
}

/// [`write`] inside a transaction the caller opened, but for the item documents: the caller
/// adds them.
pub(super) fn write_rows<'p, C: WriteSql + ItemDocs + RollupSql>(
    c: &mut C,
    set: &WriteSet,
    packed: &'p Packed,
) -> Result<NewDocs<'p>, StoreError> {
    // The rollups (`rollups.rs`): runs rolled up before this write are taken back as they were,
    // and the finished ones added as they are after it.
    let run_ids = set.run_ids();
    let before = c.run_states(&run_ids)?;
    let mut rollup = Rollup::default();
    let rolled: Vec<&RunState> = before.iter().filter(|r| r.rolled_up).collect();
    rollups::from_db(c, &rolled, -1, &mut rollup)?;
    c.upsert_runs(set)?;
    let (reasons, items) = packed;
    let kept: HashMap<&str, &StepItems> = items.iter().map(|i| (i.step_id.as_str(), i)).collect();
    let numbers = c.new_doc_numbers(set.docs_wanted(&kept))?;
    let rows = set.with_doc_numbers(&kept, numbers);
    // Each insert answers which steps it stored, with their numbers; only a step it skipped
    // (stored before, or twice in this write) is read back.
    let mut new_docs: NewDocs<'p> = Vec::new();
    let mut inserted: HashSet<String> = HashSet::with_capacity(rows.len());
    for chunk in rows.chunks(STEPS_PER_INSERT) {
        for (step_id, doc) in c.insert_steps(chunk)? {
            if let (Some(d), Some(it)) = (doc, kept.get(step_id.as_str())) {
                new_docs.push((d, *it));
            }
            inserted.insert(step_id);
        }
    }
    let skipped = set.skipped_steps(&inserted);
    let mut owners = Vec::new();
    for chunk in skipped.chunks(ROWS_PER_STATEMENT) {
        owners.extend(c.step_owners(chunk)?);
    }
    set.check_step_owners(&skipped, &owners)?;
    for chunk in reasons.chunks(ROWS_PER_STATEMENT) {
        c.insert_reasons(chunk)?;
    }
    let after = c.run_states(&run_ids)?;
    let existed: HashSet<&str> = before.iter().map(|r| r.run_id.as_str()).collect();
    let (stored_before, new): (Vec<&RunState>, Vec<&RunState>) = after
        .iter()
        .filter(|r| r.finished())
        .partition(|r| existed.contains(r.run_id.as_str()));
    // A run new in this write has all its steps here: no need to read them back.
    rollups::from_db(c, &stored_before, 1, &mut rollup)?;
    let counts = reasons.iter().map(|r| {
        (
            r.step_id.as_str(),
            r.outcome.as_str(),
            r.reason.as_str(),
            r.count,
        )
    });
    rollups::from_write(&new, &set.steps, &inserted, counts, &mut rollup);
    rollups::flag(c, &after)?;
    rollup_apply::apply(c, &rollup)?;
    Ok(new_docs)
}

/// The rules of a write, on the rows alone.
impl WriteSet {
    /// How many item document numbers the write needs: one a step that kept samples (`kept`).
    fn docs_wanted(&self, kept: &HashMap<&str, &StepItems>) -> usize {
        self.steps
            .iter()
            .filter(|s| kept.contains_key(s.step_id.as_str()))
            .count()
    }

    /// Each step with its item document's number: the next of `numbers` for a step that kept
    /// samples, none for the others. A step already stored keeps its own number (and document):
    /// the insert skips it, and the number given here goes unused.
    fn with_doc_numbers(
        &self,
        kept: &HashMap<&str, &StepItems>,
        numbers: Vec<i64>,
    ) -> Vec<(&StepRow, Option<i64>)> {
        let mut numbers = numbers.into_iter();
        self.steps
            .iter()
            .map(|s| {
                let doc = if kept.contains_key(s.step_id.as_str()) {
                    numbers.next()
                } else {
                    None
                };
                (s, doc)
            })
            .collect()
    }

    /// The ids of the steps the insert skipped (not in `inserted`): stored before, or twice here.
    fn skipped_steps(&self, inserted: &HashSet<String>) -> Vec<&str> {
        self.steps
            .iter()
            .map(|s| s.step_id.as_str())
            .filter(|id| !inserted.contains(*id))
            .collect()
    }

    /// Refuses a step id that belongs to another run: already stored for one (`owners`, the
    /// stored (step id, run id) of the `skipped` steps), or sent for two runs in this write. Its
    /// counts and samples would otherwise be added to that run's step. A skipped step that is
    /// not stored was deleted (retention) since the insert: not stored, so not acknowledged.
    fn check_step_owners(
        &self,
        skipped: &[&str],
        owners: &[(String, String)],
    ) -> Result<(), StoreError> {
        let wanted: HashMap<&str, &str> = self
            .steps
            .iter()
            .map(|s| (s.step_id.as_str(), s.run_id.as_str()))
            .collect();
        if let Some(gone) = skipped
            .iter()
            .find(|id| !owners.iter().any(|(o, _)| o.as_str() == **id))
        {
            return Err(StoreError::Busy(format!(
                "step `{gone}` was deleted while this request wrote it; send it again"
            )));
        }
        for (step_id, owner) in owners {
            let run_id = wanted.get(step_id.as_str()).copied().unwrap_or_default();
            if owner != run_id {
                return Err(StoreError::StepOfAnotherRun {
                    run_id: run_id.to_string(),
                    step_id: step_id.clone(),
                    owner: owner.clone(),
                });
            }
        }
        let conflicting = self
            .steps
            .iter()
            .find(|s| wanted.get(s.step_id.as_str()) != Some(&s.run_id.as_str()));
        if let Some(step) = conflicting {
            return Err(StoreError::StepOfAnotherRun {
                step_id: step.step_id.clone(),
                run_id: step.run_id.clone(),
                owner: wanted[step.step_id.as_str()].to_string(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of run `run_id` with steps `(step id, kept item)`: a step with an item keeps it.
    fn set(run_id: &str, steps: &[(&str, Option<&str>)]) -> WriteSet {
        let steps: Vec<_> = steps
            .iter()
            .map(|(id, item)| {
                let samples: Vec<_> = item
                    .iter()
                    .map(|i| serde_json::json!({"item_id": i}))
                    .collect();
                serde_json::json!({"step_id": id, "name": "f", "step_type": "filter",
                    "rejections": {"r": {"count": samples.len(), "samples": samples}}})
            })
            .collect();
        let run = serde_json::from_value(serde_json::json!({
            "run_id": run_id, "pipeline": "p", "steps": steps
        }))
        .expect("a run");
        WriteSet::from_run(run).expect("valid")
    }

    #[test]
    fn only_steps_that_kept_samples_get_a_document_number() {
        let set = set("r", &[("a", Some("x")), ("b", None), ("c", Some("y"))]);
        let (_, items) = packed::pack_set(&set);
        let kept: HashMap<&str, &StepItems> =
            items.iter().map(|i| (i.step_id.as_str(), i)).collect();
        assert_eq!(set.docs_wanted(&kept), 2);
        let numbered: Vec<(&str, Option<i64>)> = set
            .with_doc_numbers(&kept, vec![7, 8])
            .into_iter()
            .map(|(s, doc)| (s.step_id.as_str(), doc))
            .collect();
        assert_eq!(numbered, [("a", Some(7)), ("b", None), ("c", Some(8))]);
    }

    #[test]
    fn a_step_id_of_another_run_is_refused_and_a_deleted_one_is_busy() {
        let set = set("r2", &[("s1", None), ("s2", None)]);
        let inserted: HashSet<String> = ["s2".to_string()].into();
        let skipped = set.skipped_steps(&inserted);
        assert_eq!(skipped, ["s1"]);
        let owners = [("s1".to_string(), "r1".to_string())];
        let err = set.check_step_owners(&skipped, &owners).unwrap_err();
        assert!(
            matches!(&err, StoreError::StepOfAnotherRun { step_id, run_id, owner }
                if step_id == "s1" && run_id == "r2" && owner == "r1"),
            "{err:?}"
        );
        // Stored for this run already: a re-sent step, fine.
        let mine = [("s1".to_string(), "r2".to_string())];
        assert!(set.check_step_owners(&skipped, &mine).is_ok());
        // Skipped, yet no longer stored: deleted between the two statements.
        let err = set.check_step_owners(&skipped, &[]).unwrap_err();
        assert!(matches!(err, StoreError::Busy(_)), "{err:?}");
    }

    #[test]
    fn one_step_id_sent_for_two_runs_in_one_write_is_refused() {
        let mut both = set("r1", &[("s", None)]);
        both.steps.extend(set("r2", &[("s", None)]).steps);
        let err = both.check_step_owners(&[], &[]).unwrap_err();
        assert!(
            matches!(&err, StoreError::StepOfAnotherRun { step_id, .. } if step_id == "s"),
            "{err:?}"
        );
    }
}
