//! Counting and sampling the events of one step. Owns no lock and knows no thread: the step
//! decides who records into which recorder (see `step.rs`), and the shipper's thread lays the
//! kept events out as wire samples.
//!
//! Counts per reason are always exact. What is *kept* depends on the capture level: `minimal`
//! keeps nothing, `full` keeps every event, and `sample` keeps at most [`SAMPLES_PER_REASON`]
//! events per rejection reason and [`ACCEPTANCES_KEPT`] acceptances, chosen by **reservoir
//! sampling** (Algorithm R): every event of the step has the same chance to be kept, whether it
//! came first or last. Whether an event is kept is decided before anything is written for it,
//! so an event that is only counted costs no allocation and no serialisation. A kept event's
//! item id and details (JSON text, by serde_json) are appended to one buffer per recorder; a
//! sample the reservoir replaces leaves dead bytes behind, compacted away when they outweigh
//! the live ones.

use crate::item::IntoItemId;
use crate::json::{append_capped_json, to_json_text};
use crate::ranking::Ranks;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use xray_wire::{
    fit_name, Capture, ItemId, ReasonSummary, Sample, ACCEPTANCES_KEPT, SAMPLES_PER_REASON,
};

/// Past this many reasons, reasons are found through a hash map rather than a scan.
const SCAN_LIMIT: usize = 8;

/// Dead bytes (of replaced samples) tolerated in a recorder's buffer before it is compacted.
const COMPACT_AFTER: usize = 64 * 1024;

/// Which outcome an event counts towards.
#[derive(Debug, Clone, Copy)]
enum Target {
    Reason(usize),
    Accepted,
}

/// Where a kept event goes: appended, or replacing a reservoir slot.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Place {
    Push,
    Replace(usize),
}

/// A kept event's item id: a number (written as text on the shipper's thread), or the length
/// of its text in the buffer.
#[derive(Debug, Clone, Copy)]
enum Id {
    Number(u64),
    Text(usize),
}

/// One kept event: its order of arrival among the step's kept events, and where its id and
/// details (JSON text, none when empty) lie in the recorder's buffer, one after the other.
#[derive(Debug, Clone, Copy)]
struct Kept {
    at: u64,
    start: usize,
    id: Id,
    details_len: usize,
}

impl Kept {
    fn id_len(&self) -> usize {
        match self.id {
            Id::Number(_) => 0,
            Id::Text(len) => len,
        }
    }

    /// Bytes of the buffer the event holds.
    fn len(&self) -> usize {
        self.id_len() + self.details_len
    }
}

/// The random bits of a recorder's sampling.
#[derive(Debug)]
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// 64 random bits (wyrand: a Weyl sequence mixed by one wide multiply).
    #[inline]
    pub(crate) fn random(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xA076_1D64_78BD_642F);
        let wide = u128::from(self.0) * u128::from(self.0 ^ 0xE703_7ED1_A0B4_28DB);
        (wide >> 64) as u64 ^ wide as u64
    }

    /// A uniform number in `0..n` (a multiply-shift of [`Self::random`]).
    #[inline]
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.random()) * u128::from(n)) >> 64) as u64
    }
}

/// One outcome (a rejection reason, or acceptance): its exact count and the events kept.
#[derive(Debug, Default)]
struct Outcome {
    count: u64,
    kept: Vec<Kept>,
}

/// The events of one step (or of one guard's share of it, merged into the step's later).
#[derive(Debug)]
pub(crate) struct Recorder {
    capture: Capture,
    max_details: usize,
    rng: Rng,
    /// Hands out the order of arrival of kept events, shared by all recorders of a step.
    clock: Arc<AtomicU64>,
    reasons: Vec<(Box<str>, Outcome)>,
    /// The reason of the last rejection, looked at first.
    last: usize,
    /// Reasons by text, once there are more than [`SCAN_LIMIT`].
    index: HashMap<Box<str>, usize>,
    accepted: Outcome,
    /// The kept events' item ids and details, back to back (see [`Kept`]).
    text: Vec<u8>,
    /// Bytes of `text` that belong to samples since replaced.
    dead: usize,
    /// A rank step's ranking (made on its first ranked item).
    ranks: Option<Box<Ranks>>,
}

impl Recorder {
    pub(crate) fn new(
        capture: Capture,
        max_details: usize,
        seed: u64,
        clock: Arc<AtomicU64>,
    ) -> Recorder {
        Recorder {
            capture,
            max_details,
            rng: Rng(seed | 1),
            clock,
            reasons: Vec::new(),
            last: 0,
            index: HashMap::new(),
            accepted: Outcome::default(),
            text: Vec::new(),
            dead: 0,
            ranks: None,
        }
    }

    /// The capture level.
    pub(crate) fn capture(&self) -> Capture {
        self.capture
    }

    /// Whether nothing was recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.reasons.is_empty() && self.accepted.count == 0 && self.ranks.is_none()
    }

    /// Moves everything recorded out, leaving an empty recorder with the same settings.
    pub(crate) fn take(&mut self) -> Recorder {
        let seed = self.rng.random();
        let empty = Recorder::new(self.capture, self.max_details, seed, self.clock.clone());
        std::mem::replace(self, empty)
    }

    /// The index of a reason: the last one's when it is the same text (a step's rejections
    /// come in runs of one reason), else found among the others, or added.
    #[inline(always)]
    fn reason_slot(&mut self, reason: &str) -> usize {
        match self.reasons.get(self.last) {
            Some((r, _)) if **r == *reason => self.last,
            _ => self.find_reason(reason),
        }
    }

    #[inline(never)]
    fn find_reason(&mut self, reason: &str) -> usize {
        self.last = match self.lookup(reason) {
            Some(i) => i,
            None => self.add_reason(reason),
        };
        self.last
    }

    /// A reason's index: the step's few reasons are scanned, more (and texts fitted to another
    /// name) are in the index.
    fn lookup(&self, reason: &str) -> Option<usize> {
        let few = self.reasons.len() <= SCAN_LIMIT;
        let scanned = few.then(|| self.reasons.iter().position(|(r, _)| **r == *reason));
        scanned
            .flatten()
            .or_else(|| self.index.get(reason).copied())
    }

    /// Adds a reason, fitted to the server's rule for names ([`xray_wire::fit_name`]): a text
    /// that fits to a name already there counts towards that one.
    fn add_reason(&mut self, reason: &str) -> usize {
        let fitted = fit_name(reason);
        let i = self
            .lookup(&fitted)
            .unwrap_or_else(|| self.push_reason(&fitted));
        if fitted != reason {
            self.index.insert(reason.into(), i);
        }
        i
    }

    /// Appends a new reason; past [`SCAN_LIMIT`] reasons, every reason is in the index too.
    fn push_reason(&mut self, reason: &str) -> usize {
        self.reasons.push((reason.into(), Outcome::default()));
        let i = self.reasons.len() - 1;
        if i == SCAN_LIMIT {
            for (j, (r, _)) in self.reasons.iter().enumerate() {
                self.index.insert(r.clone(), j);
            }
        } else if i > SCAN_LIMIT {
            self.index.insert(reason.into(), i);
        }
        i
    }

    /// Counts a rejection and keeps it if the capture level and the sampler say so.
    #[inline(always)]
    pub(crate) fn reject<D: Serialize + ?Sized>(
        &mut self,
        item: impl IntoItemId,
        reason: &str,
        details: &D,
    ) {
        let target = Target::Reason(self.reason_slot(reason));
        if let Some(place) = self.decide(target) {
            self.keep(target, place, item, Some(details));
        }
    }

    /// Counts `n` rejections for which no item is known (later events are kept as often as
    /// if the `n` had come with items).
    pub(crate) fn reject_count(&mut self, reason: &str, n: u64) {
        let slot = self.reason_slot(reason);
        let o = &mut self.reasons[slot].1;
        o.count = o.count.saturating_add(n);
    }

    /// Counts an acceptance and keeps it if the capture level and the sampler say so.
    #[inline(always)]
    pub(crate) fn accept<D: Serialize + ?Sized>(
        &mut self,
        item: impl IntoItemId,
        details: Option<&D>,
    ) {
        if let Some(place) = self.decide(Target::Accepted) {
            self.keep(Target::Accepted, place, item, details);
        }
    }

    /// Counts a ranked item and keeps it if the capture level and the sampler say so.
    pub(crate) fn rank<D: Serialize + ?Sized>(
        &mut self,
        item: impl IntoItemId,
        position: u64,
        score: f64,
        details: Option<&D>,
    ) {
        let (capture, max) = (self.capture, self.max_details);
        let ranks = self
            .ranks
            .get_or_insert_with(|| Box::new(Ranks::new(capture, max)));
        ranks.rank(&mut self.rng, item, position, score, details);
    }

    /// The ranking recorded, if any item was ranked.
    pub(crate) fn take_ranks(&mut self) -> Option<Ranks> {
        self.ranks.take().map(|r| *r)
    }

    /// Items ranked.
    pub(crate) fn ranked_total(&self) -> u64 {
        self.ranks.as_ref().map_or(0, |r| r.count())
    }

    fn outcome(&mut self, target: Target) -> &mut Outcome {
        match target {
            Target::Reason(i) => &mut self.reasons[i].1,
            Target::Accepted => &mut self.accepted,
        }
    }

    /// Counts one event; says where to keep it, if at all.
    #[inline(always)]
    fn decide(&mut self, target: Target) -> Option<Place> {
        let capture = self.capture;
        let o = self.outcome(target);
        o.count = o.count.saturating_add(1);
        let (count, kept) = (o.count, o.kept.len());
        match capture {
            Capture::Minimal => None,
            Capture::Full => Some(Place::Push),
            Capture::Sample => reservoir(&mut self.rng, count, kept, room(target)),
        }
    }

    /// Writes a kept event's id and details at the end of the buffer and puts it in its place.
    #[inline(never)]
    fn keep<D: Serialize + ?Sized>(
        &mut self,
        target: Target,
        place: Place,
        item: impl IntoItemId,
        details: Option<&D>,
    ) {
        let start = self.text.len();
        let id = match item.as_number() {
            Some(n) => Id::Number(n),
            None => {
                item.with_id_text(|id| self.text.extend_from_slice(id.as_bytes()));
                Id::Text(self.text.len() - start)
            }
        };
        let details_len = match details {
            Some(d) => append_capped_json(&mut self.text, d, self.max_details),
            None => 0,
        };
        let kept = Kept {
            at: self.clock.fetch_add(1, Ordering::Relaxed),
            start,
            id,
            details_len,
        };
        match place {
            Place::Push => self.outcome(target).kept.push(kept),
            Place::Replace(j) => {
                let old = std::mem::replace(&mut self.outcome(target).kept[j], kept);
                self.dead += old.len();
                if self.dead > COMPACT_AFTER && self.dead > self.text.len() / 2 {
                    self.compact();
                }
            }
        }
    }

    fn outcomes_mut(&mut self) -> impl Iterator<Item = &mut Outcome> {
        let reasons = self.reasons.iter_mut().map(|(_, o)| o);
        reasons.chain(std::iter::once(&mut self.accepted))
    }

    /// Copies the live samples' text into a new buffer, dropping what replaced samples left.
    #[cold]
    #[inline(never)]
    fn compact(&mut self) {
        let old = std::mem::take(&mut self.text);
        let mut text = Vec::with_capacity((old.len() - self.dead) * 2);
        for o in self.outcomes_mut() {
            for k in &mut o.kept {
                let start = text.len();
                text.extend_from_slice(&old[k.start..k.start + k.len()]);
                k.start = start;
            }
        }
        self.text = text;
        self.dead = 0;
    }

    /// One recorder holding the events of both, as if one had recorded them all: exact counts,
    /// every kept event at `full`, and at `sample` a uniform sample of each outcome's events
    /// (the two reservoirs are uniform samples of their own events: drawing from them, each in
    /// proportion to the events it stands for, gives a uniform sample of all).
    pub(crate) fn merge(mut base: Recorder, mut other: Recorder) -> Recorder {
        if other.is_empty() {
            return base;
        }
        if base.is_empty() {
            return other;
        }
        let text = std::mem::take(&mut other.text);
        for (reason, o) in &mut other.reasons {
            let i = base.reason_slot(reason);
            base.absorb(Target::Reason(i), o, &text);
        }
        base.absorb(Target::Accepted, &mut other.accepted, &text);
        base.ranks = match (base.ranks.take(), other.ranks.take()) {
            (Some(a), Some(b)) => Some(Box::new(a.merge(*b, &mut base.rng))),
            (a, b) => a.or(b),
        };
        base
    }

    /// Adds another recorder's outcome (kept events in `text`) to one of this recorder's.
    fn absorb(&mut self, target: Target, theirs: &mut Outcome, text: &[u8]) {
        let room = match self.capture {
            Capture::Sample => room(target),
            _ => usize::MAX,
        };
        let mut other: Vec<Kept> = theirs
            .kept
            .drain(..)
            .map(|k| self.copy_in(k, text))
            .collect();
        let mut o = std::mem::take(self.outcome(target));
        let (a, b) = (o.count, theirs.count);
        o.count = a.saturating_add(b);
        let (mine, theirs) = ((&mut o.kept, a), (&mut other, b));
        let kept = merge_reservoirs(&mut self.rng, room, mine, theirs);
        let left = o.kept.iter().chain(&other);
        self.dead += left.map(Kept::len).sum::<usize>();
        o.kept = kept;
        *self.outcome(target) = o;
    }

    /// A kept event of another recorder, its text copied to the end of this one's buffer.
    fn copy_in(&mut self, k: Kept, text: &[u8]) -> Kept {
        let start = self.text.len();
        self.text
            .extend_from_slice(&text[k.start..k.start + k.len()]);
        Kept { start, ..k }
    }

    /// Exact counts and kept samples (in order of arrival), by reason.
    pub(crate) fn rejections(&mut self) -> BTreeMap<String, ReasonSummary> {
        let text = &self.text;
        self.reasons
            .drain(..)
            .map(|(reason, mut o)| (reason.into(), o.summary(text)))
            .collect()
    }

    /// Exact count and kept samples of acceptances.
    pub(crate) fn acceptances(&mut self) -> ReasonSummary {
        self.accepted.summary(&self.text)
    }

    /// Rejections over all reasons.
    pub(crate) fn rejected_total(&self) -> u64 {
        let counts = self.reasons.iter().map(|(_, o)| o.count);
        counts.fold(0, u64::saturating_add)
    }

    /// Acceptances.
    pub(crate) fn accepted_total(&self) -> u64 {
        self.accepted.count
    }
}

impl Outcome {
    /// The count and the kept samples in order of arrival.
    fn summary(&mut self, text: &[u8]) -> ReasonSummary {
        self.kept.sort_unstable_by_key(|k| k.at);
        let piece = |start: usize, len: usize| {
            String::from_utf8_lossy(&text[start..start + len]).into_owned()
        };
        let samples = self
            .kept
            .iter()
            .map(|k| Sample {
                item_id: ItemId(match k.id {
                    Id::Number(n) => itoa::Buffer::new().format(n).to_owned(),
                    Id::Text(len) => piece(k.start, len),
                }),
                details: (k.details_len > 0).then(|| {
                    let details = piece(k.start + k.id_len(), k.details_len);
                    to_json_text(details.into_boxed_str())
                }),
            })
            .collect();
        ReasonSummary {
            count: std::mem::take(&mut self.count),
            samples,
        }
    }
}

/// How many events an outcome's reservoir holds at `sample`.
fn room(target: Target) -> usize {
    match target {
        Target::Accepted => ACCEPTANCES_KEPT,
        Target::Reason(_) => SAMPLES_PER_REASON,
    }
}

/// Where the `count`-th event goes in a reservoir of `room` that holds `len` (Algorithm R):
/// appended while there is room, then in place of a random one with probability `room / count`.
#[inline(always)]
pub(crate) fn reservoir(rng: &mut Rng, count: u64, len: usize, room: usize) -> Option<Place> {
    if len < room {
        return Some(Place::Push);
    }
    let j = rng.below(count) as usize;
    (j < room).then_some(Place::Replace(j))
}

/// `room` of two reservoirs' samples, as one reservoir over the events of both would hold: each
/// drawn from a side in proportion to the events it still stands for (`a`, `b`; an event counted
/// without an item yields none). What is not drawn is left in `mine` and `theirs`.
pub(crate) fn merge_reservoirs<T>(
    rng: &mut Rng,
    room: usize,
    (mine, mut a): (&mut Vec<T>, u64),
    (theirs, mut b): (&mut Vec<T>, u64),
) -> Vec<T> {
    if mine.len() + theirs.len() <= room {
        mine.append(theirs);
        return std::mem::take(mine);
    }
    let mut kept = Vec::with_capacity(room);
    while kept.len() < room && a.saturating_add(b) > 0 {
        let side = if rng.below(a.saturating_add(b)) < a {
            a -= 1;
            &mut *mine
        } else {
            b -= 1;
            &mut *theirs
        };
        if !side.is_empty() {
            let j = rng.below(side.len() as u64) as usize;
            kept.push(side.swap_remove(j));
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::{json, Value};
    use std::cell::Cell;

    fn rec(capture: Capture, seed: u64) -> Recorder {
        Recorder::new(capture, 4096, seed, Arc::default())
    }

    fn ids(summary: &ReasonSummary) -> Vec<u64> {
        summary
            .samples
            .iter()
            .map(|s| s.item_id.as_str().parse().unwrap())
            .collect()
    }

    /// Details that count how often they are serialised.
    struct Counted<'a>(&'a Cell<u64>);

    impl Serialize for Counted<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            self.0.set(self.0.get() + 1);
            s.serialize_u64(self.0.get())
        }
    }

    #[test]
    fn details_are_serialised_only_for_kept_events() {
        for (capture, kept) in [(Capture::Minimal, 0), (Capture::Full, 5000)] {
            let calls = Cell::new(0);
            let mut r = rec(capture, 3);
            for i in 0..5000u64 {
                r.reject(i, "r", &Counted(&calls));
            }
            assert_eq!(calls.get(), kept, "{capture:?}");
        }
        // At `sample`: the reservoir's fill, then about 50 × ln(5000 / 50) replacements.
        let calls = Cell::new(0);
        let mut r = rec(Capture::Sample, 3);
        for i in 0..5000u64 {
            r.reject(i, "r", &Counted(&calls));
        }
        assert!((50..600).contains(&calls.get()), "{}", calls.get());
        let rej = r.rejections();
        assert_eq!(rej["r"].count, 5000);
        assert_eq!(rej["r"].samples.len(), SAMPLES_PER_REASON);
    }

    #[test]
    fn counts_are_exact_and_samples_capped_per_reason() {
        let mut r = rec(Capture::Sample, 7);
        for i in 0..5000u64 {
            let reason = ["price", "rating", "category"][(i % 3) as usize];
            r.reject(i, reason, &json!({"i": i}));
        }
        r.accept::<Value>(1u64, None);
        let rej = r.rejections();
        assert_eq!(rej.values().map(|s| s.count).sum::<u64>(), 5000);
        assert_eq!(rej["price"].count, 1667);
        for s in rej.values() {
            assert_eq!(s.samples.len(), SAMPLES_PER_REASON);
            for sample in &s.samples {
                let details = sample.details.as_ref().unwrap().to_value();
                assert_eq!(details["i"].to_string(), sample.item_id.as_str());
            }
        }
        assert_eq!(r.acceptances().count, 1);
    }

    #[test]
    fn the_reservoir_samples_the_whole_step_not_just_the_start() {
        let mut r = rec(Capture::Sample, 42);
        for i in 0..10_000u64 {
            r.reject(i, "x", &());
        }
        let kept = ids(&r.rejections()["x"]);
        // Uniform over 0..10000: about half past the middle, few among the first 50.
        let late = kept.iter().filter(|&&i| i >= 5000).count();
        assert!((12..=38).contains(&late), "{late} of 50: {kept:?}");
        assert!(kept.iter().filter(|&&i| i < 50).count() <= 3, "{kept:?}");
        assert!(kept.windows(2).all(|w| w[0] < w[1]), "in arrival order");
    }

    fn room_of(accept: bool) -> usize {
        if accept {
            ACCEPTANCES_KEPT
        } else {
            SAMPLES_PER_REASON
        }
    }

    /// How often each event of `n` (recorded as rejections, or as acceptances) was kept over
    /// `trials` steps.
    fn times_kept(n: u64, trials: u64, accept: bool) -> Vec<u64> {
        let mut times = vec![0u64; n as usize];
        for seed in 0..trials {
            let mut r = rec(Capture::Sample, seed * 7919 + 1);
            for i in 0..n {
                if accept {
                    r.accept::<()>(i, None);
                } else {
                    r.reject(i, "x", &());
                }
            }
            let summary = if accept {
                r.acceptances()
            } else {
                r.rejections().remove("x").unwrap()
            };
            let kept = ids(&summary);
            assert_eq!(kept.len() as u64, n.min(room_of(accept) as u64));
            assert!(kept.windows(2).all(|w| w[0] < w[1]), "in arrival order");
            for i in kept {
                times[i as usize] += 1;
            }
        }
        times
    }

    /// Pearson's chi-square of how often the events of each of `buckets` equal runs were kept,
    /// against the same number for all.
    fn chi_square(times: &[u64], buckets: usize) -> f64 {
        let per = times.len() / buckets;
        let sums: Vec<f64> = times
            .chunks(per)
            .map(|c| c.iter().sum::<u64>() as f64)
            .collect();
        let expected = sums.iter().sum::<f64>() / sums.len() as f64;
        sums.iter()
            .map(|s| (s - expected) * (s - expected) / expected)
            .sum()
    }

    #[test]
    fn every_event_has_the_same_chance_to_be_kept() {
        // Each event of n is kept k/n of the time, at any n (the sampler cannot know when the
        // step ends): checked per run of events with Pearson's chi-square (20 runs, 19 degrees
        // of freedom: 43.8 is exceeded one time in a thousand by chance).
        for (n, trials, accept) in [
            (2_000, 400, false),
            (51, 2_000, false),
            (120, 1_000, false),
            (20_000, 200, false),
            (575, 100, true),
            (5_000, 100, true),
        ] {
            let times = times_kept(n, trials, accept);
            let k = room_of(accept) as f64;
            let expected = trials as f64 * k / n as f64;
            let buckets = if n < 100 { n as usize / 3 } else { 20 };
            let chi = chi_square(&times[..times.len() / buckets * buckets], buckets);
            assert!(chi < 43.8, "n {n}, accept {accept}: chi-square {chi:.1}");
            // The first events (the reservoir's fill) and the last ones, as often as the rest.
            let first = times[..k as usize].iter().sum::<u64>() as f64 / k;
            let last = times[times.len() - k as usize..].iter().sum::<u64>() as f64 / k;
            for (which, mean) in [("first", first), ("last", last)] {
                assert!(
                    (mean - expected).abs() < 4.0 * (expected / k).sqrt() + 1e-9,
                    "n {n}: the {which} events were kept {mean:.2} times each, not {expected:.2}"
                );
            }
        }
        // Below the reservoir's size everything is kept, every time.
        assert!(times_kept(50, 3, false).iter().all(|&t| t == 3));
    }

    #[test]
    fn events_after_counted_only_rejections_are_kept_as_often_as_with_items() {
        // 100 events with items, 9,900 counted without, 10,000 with: the last 10,000 are half
        // of the step's events, so about half of the samples come from them.
        let mut late = 0;
        let trials = 300;
        for seed in 0..trials {
            let mut r = rec(Capture::Sample, seed + 1);
            for i in 0..100u64 {
                r.reject(i, "x", &());
            }
            r.reject_count("x", 9_900);
            for i in 100..10_100u64 {
                r.reject(i, "x", &());
            }
            let rej = r.rejections();
            assert_eq!(rej["x"].count, 20_000);
            let kept = ids(&rej["x"]);
            assert_eq!(kept.len(), SAMPLES_PER_REASON);
            late += kept.iter().filter(|&&i| i >= 100).count();
        }
        let share = late as f64 / (trials as f64 * SAMPLES_PER_REASON as f64);
        assert!((0.47..0.53).contains(&share), "{share}");
    }

    #[test]
    fn minimal_keeps_counts_and_full_keeps_everything() {
        let mut min = rec(Capture::Minimal, 1);
        let mut full = rec(Capture::Full, 1);
        for i in 0..300u64 {
            min.reject(i, "r", &());
            full.reject(i, "r", &());
        }
        assert_eq!(min.rejections()["r"].samples.len(), 0);
        let all = full.rejections();
        assert_eq!(all["r"].count, 300);
        assert_eq!(ids(&all["r"]), (0..300).collect::<Vec<_>>());
    }

    #[test]
    fn every_kind_of_id_comes_back_as_its_text() {
        let mut r = rec(Capture::Full, 1);
        r.reject(7u8, "r", &("k", 1));
        r.reject(u64::MAX, "r", &());
        r.reject(-5i64, "r", &());
        r.reject(u128::MAX, "r", &());
        r.reject("sku-9", "r", &("k", 3));
        r.accept::<()>(&12usize, None);
        r.accept(ItemId("x".into()), Some(&("k", 4)));
        let kept: Vec<(String, Option<String>)> = r.rejections()["r"]
            .samples
            .iter()
            .map(|s| {
                (
                    s.item_id.0.clone(),
                    s.details.as_ref().map(|d| d.get().into()),
                )
            })
            .collect();
        let expected = [
            ("7".to_owned(), Some(r#"["k",1]"#.to_owned())),
            (u64::MAX.to_string(), None),
            ("-5".to_owned(), None),
            (u128::MAX.to_string(), None),
            ("sku-9".to_owned(), Some(r#"["k",3]"#.to_owned())),
        ];
        assert_eq!(kept, expected);
        let accepted = r.acceptances();
        let accepted: Vec<&str> = accepted
            .samples
            .iter()
            .map(|s| s.item_id.as_str())
            .collect();
        assert_eq!(accepted, ["12", "x"]);
    }

    #[test]
    fn a_reason_is_its_text_however_it_is_given() {
        let mut r = rec(Capture::Sample, 1);
        // A reused buffer: the same address and length, other text.
        let mut buf = String::with_capacity(16);
        for name in ["aaa", "bbb", "aaa", "ccc"] {
            buf.clear();
            buf.push_str(name);
            r.reject(1u64, &buf, &());
        }
        // A literal, the same text as a `String`, and a literal that starts where it does.
        let literal = "aaaaaaaa";
        for i in 0..30u64 {
            r.reject(i, literal, &());
            r.reject(i, &String::from("aaaaaaaa"), &());
            r.reject(i, &literal[..3], &());
        }
        let rej = r.rejections();
        assert_eq!(rej["aaa"].count, 2 + 30);
        assert_eq!(rej["bbb"].count, 1);
        assert_eq!(rej["ccc"].count, 1);
        assert_eq!(
            rej["aaaaaaaa"].count, 60,
            "the literal and the String together"
        );
    }

    #[test]
    fn reasons_that_fit_to_one_name_are_counted_and_sampled_as_one() {
        let mut r = rec(Capture::Full, 1);
        let (long, longer) = ("r".repeat(600), "r".repeat(700));
        for (i, reason) in ["", "(empty)", &long, &longer, ""].into_iter().enumerate() {
            r.reject(i as u64, reason, &());
        }
        r.reject_count(&long, 10);
        let rej = r.rejections();
        assert_eq!(rej.len(), 2, "{:?}", rej.keys());
        assert_eq!(rej["(empty)"].count, 3);
        assert_eq!(ids(&rej["(empty)"]), [0, 1, 4]);
        let cut = rej.keys().find(|k| k.starts_with('r')).unwrap();
        assert!(cut.len() <= xray_wire::MAX_NAME_LEN && cut.ends_with('…'));
        assert_eq!((rej[cut].count, ids(&rej[cut])), (12, vec![2, 3]));
    }

    #[test]
    fn reasons_one_byte_apart_are_told_apart_at_every_length() {
        let text = "abcdefghijklmnopqrstuvwxyz";
        for n in 1..=text.len() {
            let a = &text[..n];
            let mut r = rec(Capture::Minimal, 1);
            for i in 0..n {
                let mut b = a.as_bytes().to_vec();
                b[i] = b'_';
                r.reject(0u64, a, &());
                r.reject(0u64, std::str::from_utf8(&b).expect("ASCII"), &());
                r.reject(0u64, &String::from(a), &()); // the same text elsewhere in memory
            }
            let rej = r.rejections();
            assert_eq!(rej.len(), n + 1, "{a}: {:?}", rej.keys());
            assert_eq!(rej[a].count, 2 * n as u64, "{a}");
        }
    }

    #[test]
    fn many_reasons_are_counted_exactly_in_any_order() {
        let reasons: Vec<String> = (0..100).map(|k| format!("reason_{k}")).collect();
        let mut r = rec(Capture::Sample, 7);
        let (mut x, mut want) = (1u64, vec![0u64; 100]);
        for i in 0..30_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mostly the first nine (scanned, then past the scan), now and then any of 100.
            let k = if i % 10 == 0 { x % 100 } else { x % 9 } as usize;
            want[k] += 1;
            r.reject(i, &reasons[k], &());
        }
        r.reject_count("reason_5", 10);
        want[5] += 10;
        let rej = r.rejections();
        assert_eq!(rej.len(), 100);
        for (k, reason) in reasons.iter().enumerate() {
            assert_eq!(rej[reason].count, want[k], "{reason}");
        }
    }

    #[test]
    fn replaced_samples_are_compacted_away() {
        let mut r = rec(Capture::Sample, 5);
        let pad = "x".repeat(300);
        for i in 0..20_000u64 {
            let details = json!({"i": i, "pad": pad});
            r.reject(i, ["a", "b"][(i % 2) as usize], &details);
            assert!(r.dead <= COMPACT_AFTER.max(r.text.len() / 2));
        }
        // 100 live samples of ~330 bytes, however many were written and replaced.
        assert!(
            r.text.len() < 2 * COMPACT_AFTER + 100 * 400,
            "{}",
            r.text.len()
        );
        let rej = r.rejections();
        for (reason, parity) in [("a", 0), ("b", 1)] {
            assert_eq!(rej[reason].count, 10_000);
            assert_eq!(rej[reason].samples.len(), SAMPLES_PER_REASON);
            for s in &rej[reason].samples {
                let i: u64 = s.item_id.as_str().parse().unwrap();
                assert_eq!(i % 2, parity);
                let details = s.details.as_ref().unwrap().to_value();
                assert_eq!(details["i"], i, "the details kept with their item");
            }
        }
    }

    #[test]
    fn two_recorders_merge_in_order_of_arrival() {
        let clock = Arc::new(AtomicU64::new(0));
        let mut owner = Recorder::new(Capture::Full, 4096, 1, clock.clone());
        let mut others = Recorder::new(Capture::Full, 4096, 2, clock);
        owner.reject(1u64, "r", &json!({"n": 1}));
        others.reject(2u64, "r", &json!({"n": 2}));
        others.reject(3u64, "r", &json!({"n": 3}));
        owner.reject(4u64, "s", &());
        owner.reject(5u64, "r", &json!({"n": 5}));
        others.accept(6u64, Some(&"six"));
        owner.accept::<()>(7u64, None);
        others.reject_count("r", 10);
        let mut merged = Recorder::merge(owner, others);
        let rej = merged.rejections();
        assert_eq!(rej["r"].count, 14);
        assert_eq!(ids(&rej["r"]), [1, 2, 3, 5]);
        for s in &rej["r"].samples {
            let n = s.details.as_ref().unwrap().to_value()["n"].clone();
            assert_eq!(n.to_string(), s.item_id.as_str());
        }
        assert_eq!(ids(&rej["s"]), [4]);
        let acc = merged.acceptances();
        assert_eq!((acc.count, ids(&acc)), (2, vec![6, 7]));
        assert_eq!(acc.samples[0].details.as_ref().unwrap().get(), "\"six\"");
    }

    #[test]
    fn merged_reservoirs_stay_uniform_over_both() {
        // 1,000 events on one side, 3,000 on the other: a quarter of the merged samples should
        // come from the first, whichever side is merged into which.
        let mut from_first = 0;
        let trials = 200;
        for seed in 0..trials {
            let (mut a, mut b) = (
                rec(Capture::Sample, seed),
                rec(Capture::Sample, seed + 1000),
            );
            for i in 0..1000u64 {
                a.reject(i, "x", &());
            }
            for i in 1000..4000u64 {
                b.reject(i, "x", &());
            }
            let (a, b) = if seed % 2 == 0 { (a, b) } else { (b, a) };
            let rej = Recorder::merge(a, b).rejections();
            assert_eq!(rej["x"].count, 4000);
            let kept = ids(&rej["x"]);
            assert_eq!(kept.len(), SAMPLES_PER_REASON);
            from_first += kept.iter().filter(|&&i| i < 1000).count();
        }
        let share = from_first as f64 / (trials as f64 * SAMPLES_PER_REASON as f64);
        assert!((0.22..0.28).contains(&share), "{share}");
    }

    #[test]
    fn merging_counted_only_rejections_never_fails() {
        let (mut a, mut b) = (rec(Capture::Sample, 1), rec(Capture::Sample, 2));
        a.reject_count("x", 1000);
        for i in 0..10u64 {
            a.reject(i, "x", &());
        }
        for i in 10..110u64 {
            b.reject(i, "x", &());
        }
        let rej = Recorder::merge(a, b).rejections();
        assert_eq!(rej["x"].count, 1110);
        assert!(rej["x"].samples.len() <= SAMPLES_PER_REASON);
    }

    #[test]
    fn a_count_at_its_largest_stays_there() {
        let mut r = rec(Capture::Sample, 1);
        r.reject(1u64, "r", &());
        r.reject_count("r", u64::MAX);
        r.reject(2u64, "r", &());
        assert_eq!(r.rejections()["r"].count, u64::MAX);
    }

    #[test]
    fn oversized_details_become_the_truncation_marker() {
        let mut r = Recorder::new(Capture::Full, 64, 1, Arc::default());
        r.reject(1u64, "r", &json!({"text": "é".repeat(100)}));
        r.reject(2u64, "r", &json!({"text": "short"}));
        let rej = r.rejections();
        let big = rej["r"].samples[0].details.as_ref().unwrap().to_value();
        assert_eq!(big["_xray_truncated"], true);
        assert_eq!(big["limit_bytes"], 64);
        assert!(big["preview"]
            .as_str()
            .unwrap()
            .starts_with("{\"text\":\"é"));
        let small = rej["r"].samples[1].details.as_ref().unwrap().to_value();
        assert_eq!(small, json!({"text": "short"}), "the next event is whole");
    }
}
