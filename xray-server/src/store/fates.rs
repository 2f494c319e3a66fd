//! An item's fate: every recorded event about one item in one run (`GET /runs/{id}/items/{item}`)
//! and across runs (`GET /items/{item}`), from samples stored unpacked, packed samples of the
//! steps the item index names, and the steps that selected it. The SQL is in [`FateSql`]; it
//! must not write, and it must not trust the index's hashes without checking the item id.

use super::backend::ROWS_PER_STATEMENT;
use super::items::ItemDocs;
use super::packed::{self, PackedReasonRow};
use super::rows::{SampleRow, StepRow};
use super::{Store, StoreError};
use crate::schema::{item_index, runs, samples, step_reasons, steps};
use diesel::prelude::*;
use std::collections::{HashMap, HashSet};
use xray_wire::{Capture, ItemEvent, ItemFate, ItemHistory, ItemId};

/// A run's steps, the samples about an item stored unpacked, and the run's packed samples.
type ItemInRun = (Vec<StepRow>, Vec<SampleRow>, Vec<PackedReasonRow>);
/// Kept events about an item with their steps, the steps that selected it, and the steps the item
/// index names with their packed samples (to be checked for the item).
type ItemParts = (
    Vec<(SampleRow, StepRow)>,
    Vec<StepRow>,
    Vec<StepRow>,
    Vec<PackedReasonRow>,
);

/// The reads about one item, for each backend.
trait FateSql: ItemDocs {
    /// The run's steps, its samples about `item` stored unpacked, and its packed samples;
    /// `None` if the run is unknown.
    fn item_in_run(&mut self, run_id: &str, item: &str) -> QueryResult<Option<ItemInRun>>;
    /// The newest (at most `limit`) events about `item`, the steps that selected it, and the
    /// steps the item index names with their packed samples.
    fn item_across_runs(
        &mut self,
        item: &str,
        pipeline: Option<&str>,
        limit: i64,
    ) -> QueryResult<ItemParts>;
    /// The newest (at most `wanted`) steps whose item document holds `item`'s hash, and those
    /// the first index (`item_index`, steps written before the documents) names.
    fn steps_naming(
        &mut self,
        item: &str,
        pipeline: Option<&str>,
        wanted: i64,
    ) -> QueryResult<Vec<StepRow>>;
}

for_both_backends! {
    impl FateSql {
        fn item_in_run(&mut self, run_id: &str, item: &str) -> QueryResult<Option<ItemInRun>> {
            let exists = runs::table
                .find(run_id)
                .select(runs::run_id)
                .first::<String>(self)
                .optional()?;
            if exists.is_none() {
                return Ok(None);
            }
            let steps = steps::table
                .filter(steps::run_id.eq(run_id))
                .order((steps::position, steps::started_at, steps::step_id))
                .select(StepRow::as_select())
                .load(self)?;
            let samples = samples::table
                .filter(samples::run_id.eq(run_id))
                .filter(samples::item_id.eq(item))
                .order((samples::step_id, samples::outcome, samples::reason, samples::seq))
                .select(SampleRow::as_select())
                .load(self)?;
            let run_steps = steps::table
                .filter(steps::run_id.eq(run_id))
                .select(steps::step_id);
            let packed = step_reasons::table
                .filter(step_reasons::step_id.eq_any(run_steps))
                .filter(step_reasons::samples.is_not_null())
                .select(PackedReasonRow::as_select())
                .load(self)?;
            Ok(Some((steps, samples, packed)))
        }

        fn item_across_runs(
            &mut self,
            item: &str,
            pipeline: Option<&str>,
            limit: i64,
        ) -> QueryResult<ItemParts> {
            let mut q = samples::table
                .inner_join(steps::table)
                .filter(samples::item_id.eq(item))
                .select((SampleRow::as_select(), StepRow::as_select()))
                .into_boxed();
            let mut sel = steps::table
                .filter(steps::decision_selected.eq(item))
                .select(StepRow::as_select())
                .into_boxed();
            if let Some(p) = pipeline {
                q = q.filter(steps::pipeline.eq(p));
                sel = sel.filter(steps::pipeline.eq(p));
            }
            let events = q
                .order((steps::started_at.desc(), steps::step_id.desc()))
                .limit(limit)
                .load(self)?;
            let selected = sel
                .order((steps::started_at.desc(), steps::step_id.desc()))
                .limit(limit)
                .load(self)?;
            // A colliding hash may name a step that did not keep the item; a few more than
            // `limit` are read so that such a step rarely shortens the answer.
            let named = self.steps_naming(item, pipeline, limit.saturating_add(16))?;
            let ids: Vec<&str> = named.iter().map(|s| s.step_id.as_str()).collect();
            let packed = step_reasons::table
                .filter(step_reasons::step_id.eq_any(&ids))
                .filter(step_reasons::samples.is_not_null())
                .select(PackedReasonRow::as_select())
                .load(self)?;
            Ok((events, selected, named, packed))
        }

        fn steps_naming(
            &mut self,
            item: &str,
            pipeline: Option<&str>,
            wanted: i64,
        ) -> QueryResult<Vec<StepRow>> {
            // The documents first, then their steps by an explicit list of numbers: both
            // planners then know how few steps that is (as a subquery, PostgreSQL guessed 0.5%
            // of all documents and could scan `steps`; SQLite, given a pipeline, walked the
            // pipeline's steps instead).
            let docs = self.docs_with_item(item)?;
            let mut named: Vec<StepRow> = Vec::new();
            for chunk in docs.chunks(ROWS_PER_STATEMENT) {
                let chunk: Vec<Option<i64>> = chunk.iter().map(|d| Some(*d)).collect();
                let mut q = steps::table
                    .filter(steps::item_doc.eq_any(chunk))
                    .select(StepRow::as_select())
                    .into_boxed();
                if let Some(p) = pipeline {
                    q = q.filter(steps::pipeline.eq(p));
                }
                named.extend(
                    q.order((steps::started_at.desc(), steps::step_id.desc()))
                        .limit(wanted)
                        .load::<StepRow>(self)?,
                );
            }
            if docs.len() > ROWS_PER_STATEMENT {
                newest_first(&mut named, wanted);
            }
            let (lo, hi) = packed::entry_range(item);
            let keys = item_index::table
                .filter(item_index::entry.between(lo, hi))
                .select((item_index::entry - lo).nullable());
            let mut cand = steps::table
                .filter(steps::step_key.eq_any(keys))
                .select(StepRow::as_select())
                .into_boxed();
            if let Some(p) = pipeline {
                cand = cand.filter(steps::pipeline.eq(p));
            }
            let legacy: Vec<StepRow> = cand
                .order((steps::started_at.desc(), steps::step_id.desc()))
                .limit(wanted)
                .load(self)?;
            if !legacy.is_empty() {
                let seen: HashSet<String> = named.iter().map(|s| s.step_id.clone()).collect();
                named.extend(legacy.into_iter().filter(|s| !seen.contains(&s.step_id)));
                newest_first(&mut named, wanted);
            }
            Ok(named)
        }
    }
}

/// Sorts steps newest first and keeps the first `wanted`.
fn newest_first(steps: &mut Vec<StepRow>, wanted: i64) {
    steps.sort_by(|a, b| (b.started_at, &b.step_id).cmp(&(a.started_at, &a.step_id)));
    steps.truncate(usize::try_from(wanted).unwrap_or(usize::MAX));
}

impl Store {
    /// Every recorded event about one item in one run; `None` if the run is unknown.
    pub fn item_fate(&self, run_id: &str, item: &str) -> Result<Option<ItemFate>, StoreError> {
        let Some((steps, mut samples, packed)) =
            with_conn!(&self.db, c => c.item_in_run(run_id, item)?)
        else {
            return Ok(None);
        };
        let mut unpacked = Vec::new();
        for r in &packed {
            packed::unpack(r, run_id, &mut unpacked)?;
        }
        samples.extend(unpacked.into_iter().filter(|s| s.item_id == item));
        let by_id: HashMap<&str, &StepRow> =
            steps.iter().map(|s| (s.step_id.as_str(), s)).collect();
        let mut events: Vec<ItemEvent> = samples
            .iter()
            .filter_map(|s| by_id.get(s.step_id.as_str()).map(|step| step.event(s)))
            .collect();
        events.extend(
            steps
                .iter()
                .filter(|s| s.decision_selected.as_deref() == Some(item))
                .map(StepRow::selected_event),
        );
        events.extend(steps.iter().filter_map(|s| s.ranked_event(item)));
        events.sort_by_key(|e| (e.position, e.started_at, outcome_rank(e)));
        // Where the item may have been seen without being kept: sampled steps with events, none
        // of them kept about this item.
        let sampled_steps = steps
            .iter()
            .filter(|s| {
                s.capture() != Capture::Full
                    && (s.rejected_count.saturating_add(s.accepted_count) > 0
                        || s.ranking.is_some())
                    && !events.iter().any(|e| e.step_id == s.step_id)
            })
            .map(|s| s.name.clone())
            .collect();
        Ok(Some(ItemFate {
            run_id: run_id.to_string(),
            item_id: ItemId(item.to_string()),
            events,
            sampled_steps,
        }))
    }

    /// Events about one item across runs, newest first, at most `limit`.
    pub fn item_history(
        &self,
        item: &str,
        pipeline: Option<&str>,
        limit: i64,
    ) -> Result<ItemHistory, StoreError> {
        let (pairs, selected, named, packed) =
            with_conn!(&self.db, c => c.item_across_runs(item, pipeline, limit)?);
        let by_id: HashMap<&str, &StepRow> =
            named.iter().map(|s| (s.step_id.as_str(), s)).collect();
        let mut unpacked = Vec::new();
        for r in &packed {
            let run_id = by_id
                .get(r.step_id.as_str())
                .map_or("", |s| s.run_id.as_str());
            packed::unpack(r, run_id, &mut unpacked)?;
        }
        let mut events: Vec<ItemEvent> = pairs
            .iter()
            .map(|(sample, step)| step.event(sample))
            .chain(
                unpacked
                    .iter()
                    .filter(|s| s.item_id == item)
                    .filter_map(|s| by_id.get(s.step_id.as_str()).map(|st| st.event(s))),
            )
            .chain(selected.iter().map(StepRow::selected_event))
            .chain(named.iter().filter_map(|s| s.ranked_event(item)))
            .collect();
        events.sort_by(|a, b| {
            b.started_at
                .cmp(&a.started_at)
                .then_with(|| a.run_id.cmp(&b.run_id))
                .then_with(|| a.position.cmp(&b.position))
                .then_with(|| outcome_rank(a).cmp(&outcome_rank(b)))
        });
        events.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(ItemHistory {
            item_id: ItemId(item.to_string()),
            events,
        })
    }
}

/// Within one step: rejections, then acceptances, then selections.
fn outcome_rank(e: &ItemEvent) -> u8 {
    match e.outcome {
        xray_wire::Outcome::Rejected => 0,
        xray_wire::Outcome::Accepted => 1,
        xray_wire::Outcome::Selected => 2,
        xray_wire::Outcome::Ranked => 3,
    }
}
