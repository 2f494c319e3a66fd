//! A rank step's ranking: the exact count, every item's position and score (the scores at the
//! cut are only known when the step ends and its cutoff is), and the items kept — at `sample`
//! every item of the top [`TOP_POSITIONS_KEPT`] positions and a uniform reservoir of
//! [`TAIL_KEPT`] of the rest (Algorithm R over the items below the top), at `full` all of them.
//! Owns no lock, like the rest of a [`Recorder`](crate::sampling::Recorder).

use crate::item::IntoItemId;
use crate::json::{capped_json, to_json_text};
use crate::sampling::{merge_reservoirs, reservoir, Place, Rng};
use serde::Serialize;
use xray_wire::{cut_scores, Capture, ItemId, RankSample, Ranking, TAIL_KEPT, TOP_POSITIONS_KEPT};

/// One kept ranked item (details as capped JSON text, checked on the shipper's thread).
#[derive(Debug)]
struct Kept {
    item_id: ItemId,
    position: u64,
    score: f64,
    details: Option<Box<str>>,
}

/// The ranking recorded so far.
#[derive(Debug)]
pub(crate) struct Ranks {
    capture: Capture,
    max_details: usize,
    count: u64,
    /// Every ranked item's position and score.
    scores: Vec<(u64, f64)>,
    /// The kept items of the top positions (at `full`, every kept item).
    top: Vec<Kept>,
    /// The reservoir of items below the top, and how many such items there were.
    tail: Vec<Kept>,
    tail_count: u64,
}

impl Ranks {
    pub(crate) fn new(capture: Capture, max_details: usize) -> Ranks {
        Ranks {
            capture,
            max_details,
            count: 0,
            scores: Vec::new(),
            top: Vec::new(),
            tail: Vec::new(),
            tail_count: 0,
        }
    }

    /// Counts a ranked item, and keeps it if the capture level and the sampler say so. An item
    /// at position 0 (positions start at 1) or with a score that is not a finite number is
    /// counted only: the server could store neither.
    pub(crate) fn rank<D: Serialize + ?Sized>(
        &mut self,
        rng: &mut Rng,
        item: impl IntoItemId,
        position: u64,
        score: f64,
        details: Option<&D>,
    ) {
        self.count = self.count.saturating_add(1);
        if position == 0 || !score.is_finite() {
            return;
        }
        self.scores.push((position, score));
        if self.capture == Capture::Minimal {
            return;
        }
        let kept = || Kept {
            item_id: item.into_item_id(),
            position,
            score,
            details: details.and_then(|d| capped_json(d, self.max_details)),
        };
        // Below the top at `sample`: into the tail's reservoir, or not kept.
        if self.capture == Capture::Sample && position > TOP_POSITIONS_KEPT {
            self.tail_count += 1;
            match reservoir(rng, self.tail_count, self.tail.len(), TAIL_KEPT) {
                Some(Place::Push) => self.tail.push(kept()),
                Some(Place::Replace(j)) => self.tail[j] = kept(),
                None => {}
            }
        } else {
            self.top.push(kept());
        }
    }

    /// Both rankings as one, as if one recorder had ranked every item: the tail reservoirs
    /// merged by drawing from each in proportion to the items it stands for.
    pub(crate) fn merge(mut self, mut other: Ranks, rng: &mut Rng) -> Ranks {
        self.count = self.count.saturating_add(other.count);
        self.scores.extend(other.scores);
        self.top.extend(other.top);
        let mine = (&mut self.tail, self.tail_count);
        let theirs = (&mut other.tail, other.tail_count);
        self.tail = merge_reservoirs(rng, TAIL_KEPT, mine, theirs);
        self.tail_count += other.tail_count;
        self
    }

    /// Items ranked.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// The ranking as sent, with the scores at `cutoff` (the last item in) and just below it.
    pub(crate) fn into_wire(mut self, cutoff: Option<u64>) -> Ranking {
        self.scores.sort_unstable_by_key(|&(position, _)| position);
        let (cutoff_score, first_out_score) = cut_scores(&self.scores, cutoff);
        let mut kept = self.top;
        kept.append(&mut self.tail);
        kept.sort_by_key(|k| k.position);
        Ranking {
            count: self.count,
            cutoff,
            cutoff_score,
            first_out_score,
            samples: kept
                .into_iter()
                .map(|k| RankSample {
                    item_id: k.item_id,
                    position: k.position,
                    score: k.score,
                    details: k.details.map(to_json_text),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranks(capture: Capture) -> Ranks {
        Ranks::new(capture, 4096)
    }

    /// Ranks items `0..n` at positions `1..=n` with score `1 - position / n`.
    fn rank_all(r: &mut Ranks, rng: &mut Rng, n: u64) {
        for i in 0..n {
            r.rank::<()>(rng, i, i + 1, 1.0 - (i + 1) as f64 / n as f64, None);
        }
    }

    #[test]
    fn counts_are_exact_and_sample_keeps_the_top_and_a_tail() {
        let mut rng = Rng(7);
        for (capture, kept) in [
            (Capture::Minimal, 0),
            (Capture::Sample, (TOP_POSITIONS_KEPT as usize) + TAIL_KEPT),
            (Capture::Full, 1000),
        ] {
            let mut r = ranks(capture);
            rank_all(&mut r, &mut rng, 1000);
            let wire = r.into_wire(Some(10));
            assert_eq!(wire.count, 1000);
            assert_eq!(wire.samples.len(), kept, "{capture:?}");
            assert!(wire
                .samples
                .windows(2)
                .all(|w| w[0].position < w[1].position));
            // The scores at the cut are known at every capture level.
            assert_eq!(wire.cutoff_score, Some(1.0 - 10.0 / 1000.0));
            assert_eq!(wire.first_out_score, Some(1.0 - 11.0 / 1000.0));
            if capture == Capture::Sample {
                let top: Vec<u64> = wire.samples.iter().map(|s| s.position).take(50).collect();
                assert_eq!(top, (1..=50).collect::<Vec<_>>(), "every top position kept");
            }
        }
    }

    #[test]
    fn items_the_server_could_not_store_are_counted_only() {
        let mut rng = Rng(1);
        let mut r = ranks(Capture::Full);
        r.rank::<()>(&mut rng, "a", 0, 0.5, None);
        r.rank::<()>(&mut rng, "b", 1, f64::NAN, None);
        r.rank(
            &mut rng,
            "c",
            2,
            0.25,
            Some(&serde_json::json!({"why": "fresh"})),
        );
        let wire = r.into_wire(None);
        assert_eq!(wire.count, 3);
        assert_eq!(wire.samples.len(), 1);
        assert_eq!(wire.samples[0].item_id.as_str(), "c");
        assert_eq!(
            wire.samples[0].details.as_ref().map(|d| d.get()),
            Some(r#"{"why":"fresh"}"#)
        );
        assert_eq!((wire.cutoff, wire.cutoff_score), (None, None));
    }

    #[test]
    fn every_item_below_the_top_has_the_same_chance_to_be_kept() {
        // 1,050 items: 1,000 below the top 50, of which 50 are kept each time; each is kept
        // 1/20 of the time. Pearson's chi-square over 20 runs of 50 positions (19 degrees of
        // freedom: 43.8 is exceeded one time in a thousand by chance), for one recorder and
        // for two merged (each ranking every other item).
        for merged in [false, true] {
            let mut times = vec![0u64; 1000];
            for trial in 0..400u64 {
                let mut rng = Rng(2 * trial + 1);
                let mut a = ranks(Capture::Sample);
                let mut b = ranks(Capture::Sample);
                for i in 0..1050u64 {
                    let r = if merged && i % 2 == 1 { &mut b } else { &mut a };
                    r.rank::<()>(&mut rng, i, i + 1, 0.0, None);
                }
                let r = if merged { a.merge(b, &mut rng) } else { a };
                let wire = r.into_wire(None);
                assert_eq!(wire.count, 1050);
                let tail: Vec<u64> = wire.samples.iter().map(|s| s.position).skip(50).collect();
                assert_eq!(tail.len(), TAIL_KEPT);
                for p in tail {
                    times[(p - 51) as usize] += 1;
                }
            }
            let sums: Vec<f64> = times
                .chunks(50)
                .map(|c| c.iter().sum::<u64>() as f64)
                .collect();
            let expected = sums.iter().sum::<f64>() / sums.len() as f64;
            let chi: f64 = sums.iter().map(|s| (s - expected).powi(2) / expected).sum();
            assert!(chi < 43.8, "merged {merged}: chi-square {chi:.1}");
        }
    }
}
