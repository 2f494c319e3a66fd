//! A rank step's span events as its ranking: `xray.rank` events (`xray.item_id`,
//! `xray.position` from 1, `xray.score`, other attributes as details) counted exactly (or by the
//! span's `xray.ranked`), the scores at the cut (`xray.cutoff`, else the output count) taken
//! from every event, and by the SDK's capture rules the items kept: at `sample` every item of the
//! top `TOP_POSITIONS_KEPT` positions and a uniform reservoir of `TAIL_KEPT` of the rest.

use super::attrs;
use super::sample::{Reservoir, Rng};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use xray_wire::{cut_scores, Capture, ItemId, RankSample, Ranking, TAIL_KEPT, TOP_POSITIONS_KEPT};

/// The `xray.rank` events of one span so far.
#[derive(Debug, Default)]
pub struct Ranks {
    count: u64,
    /// Every storable event's position and score.
    scores: Vec<(u64, f64)>,
    top: Vec<RankSample>,
    tail: Reservoir<RankSample>,
}

impl Ranks {
    /// Counts one `xray.rank` event and keeps it by `capture`. An event without an item, a
    /// position from 1 or a finite score is counted only.
    pub fn offer(&mut self, capture: Capture, rng: &mut Rng, event: &[KeyValue]) {
        self.count += 1;
        let position = attrs::get(event, "xray.position").and_then(attrs::count);
        let score = attrs::get(event, "xray.score").and_then(attrs::number);
        let item = attrs::get(event, "xray.item_id").and_then(attrs::text);
        let (Some(position @ 1..), Some(score), Some(item)) = (position, score, item) else {
            return;
        };
        self.scores.push((position, score));
        let sample = || RankSample {
            item_id: ItemId(xray_wire::fit_name(&item).into_owned()),
            position,
            score,
            details: attrs::object_text(event, |k| !k.starts_with("xray.")),
        };
        match capture {
            Capture::Minimal => {}
            Capture::Full => self.top.push(sample()),
            Capture::Sample if position <= TOP_POSITIONS_KEPT => self.top.push(sample()),
            Capture::Sample => self.tail.offer(Some(TAIL_KEPT), rng, sample),
        }
    }

    /// `xray.rank` events counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The ranking, if the span ranked anything (`exact`: the span's `xray.ranked`).
    pub fn into_wire(
        mut self,
        exact: Option<u64>,
        cutoff: Option<u64>,
        output_count: Option<u64>,
    ) -> Option<Ranking> {
        let count = exact.unwrap_or(self.count);
        if count == 0 && self.scores.is_empty() {
            return None;
        }
        self.scores.sort_by_key(|&(position, _)| position);
        let cutoff = cutoff.or(output_count);
        let (cutoff_score, first_out_score) = cut_scores(&self.scores, cutoff);
        let mut samples = self.top;
        samples.append(&mut self.tail.kept);
        samples.sort_by_key(|s| s.position);
        samples.truncate(usize::try_from(count).unwrap_or(usize::MAX));
        Some(Ranking {
            count,
            cutoff,
            cutoff_score,
            first_out_score,
            samples,
        })
    }
}
