//! Reads for browsing one run a piece at a time (the web UI's run view): a page of its steps
//! without their samples, and one step in full. It must not write.

use super::filter::Cursor;
use super::packed::PackedReasonRow;
use super::read::{hits, page_cursor, unpack_all, ReadSql};
use super::rows::{ReasonRow, RunRow, SampleRow, StepRow};
use super::{Store, StoreError};
use crate::schema::{samples, step_reasons, steps};
use diesel::prelude::*;
use xray_wire::{RunStepPage, StepView};

/// A run, a page of its steps and their rejection counts.
type PageParts = (RunRow, Vec<StepRow>, Vec<ReasonRow>);
/// One step with all its counts, its packed samples, and any samples stored unpacked.
type StepParts = (StepRow, Vec<PackedReasonRow>, Vec<SampleRow>);

/// The queries, for each backend.
trait RunStepReads: ReadSql {
    fn run_step_page(
        &mut self,
        run_id: &str,
        limit: i64,
        after: Option<(i32, &str)>,
    ) -> QueryResult<Option<PageParts>>;
    fn step_parts(&mut self, run_id: &str, step_id: &str) -> QueryResult<Option<StepParts>>;
}

for_both_backends! {
    impl RunStepReads {
        fn run_step_page(
            &mut self,
            run_id: &str,
            limit: i64,
            after: Option<(i32, &str)>,
        ) -> QueryResult<Option<PageParts>> {
            let Some(run) = self.run_row(run_id)? else {
                return Ok(None);
            };
            let mut q = steps::table
                .filter(steps::run_id.eq(run_id))
                .select(StepRow::as_select())
                .into_boxed();
            if let Some((position, id)) = after {
                q = q.filter(
                    steps::position
                        .gt(position)
                        .or(steps::position.eq(position).and(steps::step_id.gt(id))),
                );
            }
            let found: Vec<StepRow> = q
                .order((steps::position, steps::step_id))
                .limit(limit + 1)
                .load(self)?;
            let reasons = self.rejection_counts(&found)?;
            Ok(Some((run, found, reasons)))
        }

        fn step_parts(
            &mut self,
            run_id: &str,
            step_id: &str,
        ) -> QueryResult<Option<StepParts>> {
            let Some(step) = steps::table
                .find(step_id)
                .filter(steps::run_id.eq(run_id))
                .select(StepRow::as_select())
                .first(self)
                .optional()?
            else {
                return Ok(None);
            };
            let reasons = step_reasons::table
                .filter(step_reasons::step_id.eq(step_id))
                .select(PackedReasonRow::as_select())
                .load(self)?;
            let samples = samples::table
                .filter(samples::step_id.eq(step_id))
                .order((samples::outcome, samples::reason, samples::seq))
                .select(SampleRow::as_select())
                .load(self)?;
            Ok(Some((step, reasons, samples)))
        }
    }
}

impl Store {
    /// A page of one run's steps in order (position, then id), without samples; `None` if the
    /// run is unknown. The cursor's time field carries the last step's position.
    pub fn run_step_page(
        &self,
        run_id: &str,
        limit: i64,
        cursor: Option<&Cursor>,
    ) -> Result<Option<RunStepPage>, StoreError> {
        // A cursor this server made holds a position; any other value matches no step.
        let after = cursor.map(|c| (i32::try_from(c.at).unwrap_or(i32::MAX), c.id.as_str()));
        let Some((run, mut found, reasons)) =
            with_conn!(&self.db, c => c.run_step_page(run_id, limit, after)?)
        else {
            return Ok(None);
        };
        let next_cursor = page_cursor(&mut found, limit, |s| Cursor {
            at: i64::from(s.position),
            id: s.step_id.clone(),
        });
        Ok(Some(RunStepPage {
            run: run.into_summary(),
            steps: hits(found, reasons),
            next_cursor,
        }))
    }

    /// One step of a run in full, with every kept sample; `None` if there is no such step in
    /// that run.
    pub fn step_detail(&self, run_id: &str, step_id: &str) -> Result<Option<StepView>, StoreError> {
        let Some((step, packed_reasons, mut samples)) =
            with_conn!(&self.db, c => c.step_parts(run_id, step_id)?)
        else {
            return Ok(None);
        };
        let reasons = unpack_all(packed_reasons, run_id, &mut samples)?;
        Ok(Some(step.into_view(&reasons, &samples)))
    }
}
