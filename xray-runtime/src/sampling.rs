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
mod tests;
