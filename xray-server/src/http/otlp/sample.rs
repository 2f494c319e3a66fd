//! The samples kept of a step's span events, by the SDK's capture rules (`xray_wire::Capture`):
//! `minimal` keeps none, `sample` up to [`SAMPLES_PER_REASON`] per rejection reason and
//! [`ACCEPTANCES_KEPT`] acceptances, each a uniform reservoir over the whole step, `full` all.
//!
//! The SDK's recorder (`xray-runtime/src/sampling.rs`) is built for the pipeline's hot path
//! (details serialised only when kept, no allocation per event) and lives in the runtime, which
//! the server does not depend on; this is the same rule, from the same constants in `xray-wire`,
//! over events that are already decoded.

use xray_wire::{Capture, Sample, ACCEPTANCES_KEPT, SAMPLES_PER_REASON};

/// A reservoir of one outcome's samples (Vitter's algorithm R).
#[derive(Debug)]
pub struct Reservoir<T = Sample> {
    /// Events offered so far.
    pub seen: u64,
    /// The samples kept.
    pub kept: Vec<T>,
}

impl<T> Default for Reservoir<T> {
    fn default() -> Self {
        Reservoir {
            seen: 0,
            kept: Vec::new(),
        }
    }
}

/// How many samples of an outcome `capture` keeps (`None`: every one).
pub fn room(capture: Capture, acceptances: bool) -> Option<usize> {
    match capture {
        Capture::Minimal => Some(0),
        Capture::Sample if acceptances => Some(ACCEPTANCES_KEPT),
        Capture::Sample => Some(SAMPLES_PER_REASON),
        Capture::Full => None,
    }
}

/// A small, seeded generator (splitmix64): a re-sent export keeps the same samples.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (the span's id).
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // Multiply-shift: uniform enough for n far below 2^64.
        ((u128::from(z) * u128::from(n)) >> 64) as u64
    }
}

impl<T> Reservoir<T> {
    /// Offers one event: kept if there is room, else in place of a kept one with chance
    /// `room / seen`, so every event of the step has the same chance to be kept.
    pub fn offer(&mut self, room: Option<usize>, rng: &mut Rng, sample: impl FnOnce() -> T) {
        self.seen += 1;
        match room {
            None => self.kept.push(sample()),
            Some(0) => {}
            Some(r) if self.kept.len() < r => self.kept.push(sample()),
            Some(r) => {
                let j = rng.below(self.seen);
                if j < r as u64 {
                    self.kept[j as usize] = sample();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xray_wire::ItemId;

    fn offer_all(n: u64, room: Option<usize>, seed: u64) -> Reservoir {
        let mut r = Reservoir::default();
        let mut rng = Rng::new(seed);
        for i in 0..n {
            r.offer(room, &mut rng, || Sample {
                item_id: ItemId(i.to_string()),
                details: None,
            });
        }
        r
    }

    #[test]
    fn capture_levels_keep_none_some_or_all() {
        assert_eq!(
            offer_all(300, room(Capture::Minimal, false), 1).kept.len(),
            0
        );
        assert_eq!(
            offer_all(300, room(Capture::Sample, false), 1).kept.len(),
            50
        );
        assert_eq!(
            offer_all(300, room(Capture::Sample, true), 1).kept.len(),
            300
        );
        assert_eq!(
            offer_all(300, room(Capture::Full, false), 1).kept.len(),
            300
        );
        assert_eq!(
            offer_all(30, room(Capture::Sample, false), 1).kept.len(),
            30
        );
    }

    #[test]
    fn the_reservoir_keeps_late_events_as_often_as_early_ones() {
        // 200 events, 50 kept, 400 seeds: each event is kept about 100 times; the first and
        // last quarters must be kept about as often (a first-50 sampler keeps only the first).
        let (mut first, mut last) = (0u64, 0u64);
        for seed in 0..400 {
            for s in offer_all(200, Some(50), seed).kept {
                let i: u64 = s.item_id.0.parse().unwrap();
                if i < 50 {
                    first += 1;
                } else if i >= 150 {
                    last += 1;
                }
            }
        }
        // Expected 5000 each; a bias to the start would give 20000 and 0.
        assert!((4000..6000).contains(&first), "first quarter kept {first}");
        assert!((4000..6000).contains(&last), "last quarter kept {last}");
    }
}
