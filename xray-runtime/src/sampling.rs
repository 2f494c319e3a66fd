//! Counting and sampling the events of one step.
//!
//! Counts per reason are always exact. What is *kept* depends on the capture level:
//! `minimal` keeps nothing, `full` keeps every event, and `sample` keeps at most
//! [`SAMPLES_PER_REASON`] events per rejection reason and [`ACCEPTANCES_KEPT`] acceptances, chosen
//! by **reservoir sampling** (Algorithm R): every
//! event of the step has the same chance to be kept, whether it came first or last. Whether an
//! event is kept is decided before anything is written for it, so a counted-but-not-kept event
//! costs no allocation and no serialisation. A kept event's item id and details are written one
//! after the other into one growing buffer per step; the slot remembers where. An integer id is
//! kept in the slot as a number, and details as a tape of serde's data model ([`crate::tape`]):
//! both become text on the shipper's thread, when the step ships, so the pipeline's thread
//! formats no number and escapes no string even for the events the reservoir later replaces. A
//! sample the reservoir replaces leaves dead bytes behind, and the buffer is compacted when they
//! outweigh the live ones, so memory stays proportional to what is kept.

use crate::item::IntoItemId;
use crate::tape;
use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use xray_wire::{
    Capture, ItemId, JsonText, ReasonSummary, Sample, ACCEPTANCES_KEPT, SAMPLES_PER_REASON,
};

/// Past this many reasons, reasons are found through a hash map rather than a scan.
const SCAN_LIMIT: usize = 8;

/// The first size of a step's buffer of kept ids and details.
const FIRST_TEXT_BYTES: usize = 2048;

/// The first number of kept events an outcome makes room for (a reason's whole reservoir).
const FIRST_KEPT: usize = SAMPLES_PER_REASON;

/// Dead bytes (of replaced samples) tolerated in a step's buffer before it is compacted.
const COMPACT_AFTER: usize = 64 * 1024;

/// Which outcome an event counts towards.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    Reason(usize),
    Accepted,
}

/// Where a kept event goes: appended, or replacing a reservoir slot.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Place {
    Push,
    Replace(usize),
}

/// What is left to do after counting an event on the quick path ([`Recorder::count_reject`],
/// [`Recorder::count_accept`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counted {
    /// Counted, and not to be kept: nothing left.
    Done,
    /// Counted; to be kept there ([`Recorder::keep_counted`]).
    Keep(Target, Place),
    /// Nothing counted: the reason is not a literal found by its address ([`Recorder::reject`]
    /// records it).
    Unfound,
}

/// Marks [`Kept::id`] as the item's number rather than the length of its text.
const NUMBER: u64 = 1 << 63;

/// One kept event: its order of arrival, and where its item id and its details (JSON text, none
/// when empty) lie in the recorder's buffer, one after the other.
#[derive(Debug, Clone, Copy)]
struct Kept {
    /// Its place among the kept events of both of the step's recorders (see [`Clock`]), then
    /// among those of its own (`seq`: how many its recorder had kept before it).
    at: u64,
    seq: u64,
    start: usize,
    /// The id: with [`NUMBER`] set, the item's number (below 2^63: written as text only when
    /// the step ships, on the shipper's thread); otherwise the length of its text at `start`.
    id: u64,
    details_len: usize,
}

/// The [`Kept::id`] of an item named by a number that fits beside the flag, if it is one.
#[inline(always)]
fn number_id(item: &impl IntoItemId) -> Option<u64> {
    item.as_number().filter(|&n| n < NUMBER).map(|n| n | NUMBER)
}

impl Kept {
    /// Bytes of the id's text in the buffer (none for a number).
    fn id_len(&self) -> usize {
        if self.id & NUMBER != 0 {
            0
        } else {
            self.id as usize
        }
    }

    /// Bytes of the buffer the event holds.
    fn len(&self) -> usize {
        self.id_len() + self.details_len
    }
}

/// One outcome (a rejection reason, or acceptance): its exact count and the events kept.
#[derive(Debug, Default)]
struct Outcome {
    count: u64,
    kept: Vec<Kept>,
}

/// How a recorder orders its kept events against those of the step's other recorder, when the
/// step has two (one for its owner thread, one shared): the owner publishes how many events it
/// has kept at each event it keeps, and an event of the shared recorder is placed right after
/// the owner's kept events published by then.
#[derive(Debug, Clone, Default)]
pub(crate) enum Clock {
    /// The only recorder.
    #[default]
    Alone,
    /// The owner thread's recorder.
    Owner(Arc<AtomicU64>),
    /// The recorder of other threads and handles.
    Others(Arc<AtomicU64>),
}

/// The events of one step.
#[derive(Debug)]
pub(crate) struct Recorder {
    pub(crate) capture: Capture,
    rng: u64,
    /// Events kept so far (including those later replaced): the order of arrival of the next.
    seq: u64,
    /// The first reasons as last given, to find them again without following a pointer (held
    /// inline: the owner thread's recorder lives in the step guard, on the caller's stack).
    seen: Seen,
    index: HashMap<Box<str>, usize>,
    /// Bytes of `out.text` that belong to samples since replaced.
    dead: usize,
    clock: Clock,
    /// The counts and kept events.
    out: Recorded,
}

/// What a recorder counted and kept, without what it needs to go on recording: what a finished
/// step hands to the shipper's thread (which lays out the samples), small enough to move
/// cheaply.
#[derive(Debug, Default)]
pub(crate) struct Recorded {
    max_details: usize,
    reasons: Vec<(Box<str>, Outcome)>,
    accepted: Outcome,
    /// The kept events' item ids and details, back to back (see [`Kept`]).
    text: Vec<u8>,
    /// Where the buffers come from and go back to (the client's), if anywhere.
    pool: Option<Arc<BufferPool>>,
}

impl Recorder {
    pub(crate) fn new(capture: Capture, max_details: usize, seed: u64) -> Recorder {
        Recorder {
            capture,
            rng: seed | 1,
            seq: 0,
            seen: Seen::default(),
            index: HashMap::new(),
            dead: 0,
            clock: Clock::Alone,
            out: Recorded {
                max_details,
                reasons: Vec::new(),
                accepted: Outcome::default(),
                text: Vec::new(),
                pool: None,
            },
        }
    }

    /// Takes its buffers from `pool` and gives them back there once its samples are out.
    pub(crate) fn pooled(mut self, pool: Arc<BufferPool>) -> Recorder {
        self.out.pool = Some(pool);
        self
    }

    /// Orders its kept events by `clock` (against the step's other recorder).
    pub(crate) fn clocked(mut self, clock: Clock) -> Recorder {
        self.clock = clock;
        self
    }

    /// 64 random bits (wyrand: a Weyl sequence mixed by one wide multiply; no allocation, no
    /// lock).
    #[inline(always)]
    fn random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0xA076_1D64_78BD_642F);
        let wide = u128::from(self.rng) * u128::from(self.rng ^ 0xE703_7ED1_A0B4_28DB);
        (wide >> 64) as u64 ^ wide as u64
    }

    /// A uniform number in `0..n` (a multiply-shift of [`Self::random`]).
    #[inline(always)]
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.random()) * u128::from(n)) >> 64) as u64
    }

    /// The index of a reason, added if new.
    #[inline(always)]
    fn reason_slot(&mut self, reason: &str) -> usize {
        match self.literal_slot(reason) {
            Some(i) => i,
            None => self.reason_slot_by_text(reason),
        }
    }

    /// The index of a reason that is a literal seen before, found by its address alone.
    #[inline(always)]
    fn literal_slot(&self, reason: &str) -> Option<usize> {
        // Reasons are nearly always string literals: the same address each call, and text that
        // never changes there. A literal's address leads straight to its index; its address
        // and length name its text (a shorter text can start at the same address: a slice of
        // a longer literal).
        let at = reason.as_ptr() as usize;
        let i = usize::from(self.seen.literal[Seen::bucket(at)]);
        (i < SCAN_LIMIT && self.seen.at[i] == at && self.seen.key[i].len == reason.len())
            .then_some(i)
    }

    /// [`Self::reason_slot`] for a reason that is not a literal, not seen yet, seen last at
    /// another address (or with another length at this one), or whose bucket another literal
    /// holds.
    #[inline(never)]
    fn reason_slot_by_text(&mut self, reason: &str) -> usize {
        // Compare addresses, then the text with the copy kept beside it. Which reason an item
        // gets depends on the data, so each group of four is searched without branches that
        // depend on it (a mispredicted branch costs more than the comparisons): the first four
        // reasons (all of them, in most steps), then the next four only if it is none of those
        // (half the compares of searching all eight each time).
        let at = reason.as_ptr() as usize;
        // Bit k set where the group's k-th address is the reason's.
        let matches = |group: &[usize]| {
            group
                .iter()
                .enumerate()
                .fold(0u32, |mask, (k, &a)| mask | (u32::from(a == at) << k))
        };
        let (first, next) = self.seen.at.split_at(SCAN_LIMIT / 2);
        let hit = match matches(first) {
            0 => first.len() + (matches(next) | 1 << next.len()).trailing_zeros() as usize,
            mask => mask.trailing_zeros() as usize,
        };
        // The same address can hold other text by now (a freed `String`): check it.
        if hit < SCAN_LIMIT && self.seen.key[hit].matches(reason, || &self.out.reasons[hit].0) {
            hit
        } else {
            self.find_reason(reason)
        }
    }

    /// [`Self::reason_slot`] for a reason not found at its last address.
    #[inline(never)]
    fn find_reason(&mut self, reason: &str) -> usize {
        let found = if self.out.reasons.len() <= SCAN_LIMIT {
            self.out.reasons.iter().position(|(r, _)| &**r == reason)
        } else {
            self.index.get(reason).copied()
        };
        let i = match found {
            Some(i) => i,
            None => {
                let i = self.out.reasons.len();
                self.out.reasons.push((reason.into(), Outcome::default()));
                if self.out.reasons.len() > SCAN_LIMIT {
                    if self.index.is_empty() {
                        for (j, (r, _)) in self.out.reasons.iter().enumerate() {
                            self.index.insert(r.clone(), j);
                        }
                    } else {
                        self.index.insert(reason.into(), i);
                    }
                }
                i
            }
        };
        if i < SCAN_LIMIT {
            self.seen.remember(i, reason);
        }
        i
    }

    /// Counts a rejection and keeps it if the capture level and the sampler say so.
    #[inline]
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
        self.out.reasons[slot].1.count = self.out.reasons[slot].1.count.saturating_add(n);
    }

    /// Counts an acceptance and keeps it if the capture level and the sampler say so.
    #[inline]
    pub(crate) fn accept<D: Serialize + ?Sized>(
        &mut self,
        item: impl IntoItemId,
        details: Option<&D>,
    ) {
        if let Some(place) = self.decide(Target::Accepted) {
            self.keep_counted(Target::Accepted, place, item, details);
        }
    }

    /// Counts a rejection if its reason is a literal seen before ([`Self::literal_slot`]), and
    /// says what is left to do. It runs nothing but its own arithmetic on the recorder and
    /// cannot panic: no allocation, no code of the caller's (see
    /// [`crate::local::Local::quick`]).
    #[inline(always)]
    pub(crate) fn count_reject(&mut self, reason: &str) -> Counted {
        // A literal's slot always holds a reason; said here, so that nothing below can panic
        // (a panic would run the panic hook: code of the caller's).
        match self.literal_slot(reason) {
            Some(i) if i < self.out.reasons.len() => {
                let target = Target::Reason(i);
                match self.decide(target) {
                    None => Counted::Done,
                    Some(place) => Counted::Keep(target, place),
                }
            }
            _ => Counted::Unfound,
        }
    }

    /// Counts an acceptance and says what is left to do, running nothing but its own
    /// arithmetic and unable to panic (as [`Self::count_reject`]).
    #[inline(always)]
    pub(crate) fn count_accept(&mut self) -> Counted {
        match self.decide(Target::Accepted) {
            None => Counted::Done,
            Some(place) => Counted::Keep(Target::Accepted, place),
        }
    }

    /// Keeps an event already counted ([`Counted::Keep`]).
    #[inline]
    pub(crate) fn keep_counted<D: Serialize + ?Sized>(
        &mut self,
        target: Target,
        place: Place,
        item: impl IntoItemId,
        details: Option<&D>,
    ) {
        match (target, details, number_id(&item)) {
            // The usual acceptance (an integer id, no details): nothing to write, and one copy
            // of the code for every id type.
            (Target::Accepted, None, Some(id)) => self.keep_number(place, id),
            _ => self.keep(target, place, item, details),
        }
    }

    /// Keeps an acceptance named by a number (a [`number_id`]), without details.
    #[inline(never)]
    fn keep_number(&mut self, place: Place, id: u64) {
        let seq = self.next_seq();
        let start = self.out.text.len();
        self.put(Target::Accepted, place, seq, start, id, 0);
    }

    fn outcome(&mut self, target: Target) -> &mut Outcome {
        match target {
            Target::Reason(i) => &mut self.out.reasons[i].1,
            Target::Accepted => &mut self.out.accepted,
        }
    }

    /// Counts one event; says where to keep it, if at all (Algorithm R: the event that makes
    /// the count `n` replaces a random one of the `room` kept with probability `room / n`).
    #[inline(always)]
    fn decide(&mut self, target: Target) -> Option<Place> {
        let capture = self.capture;
        let o = self.outcome(target);
        o.count = o.count.saturating_add(1);
        let (count, kept) = (o.count, o.kept.len());
        let room = room(target);
        match capture {
            Capture::Minimal => None,
            Capture::Full => Some(Place::Push),
            Capture::Sample if kept < room => Some(Place::Push),
            Capture::Sample => {
                let j = self.below(count) as usize;
                (j < room).then_some(Place::Replace(j))
            }
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
        let seq = self.next_seq();
        if self.out.text.capacity() == 0 {
            self.take_text();
        }
        let start = self.out.text.len();
        let id = match number_id(&item) {
            Some(id) => id,
            None => {
                item.with_id_text(|id| self.out.text.extend_from_slice(id.as_bytes()));
                (self.out.text.len() - start) as u64
            }
        };
        let details_len = match details {
            Some(d) => tape::record(&mut self.out.text, d, self.out.max_details),
            None => 0,
        };
        self.put(target, place, seq, start, id, details_len);
    }

    /// The kept events' order of arrival for the next one.
    #[inline(always)]
    fn next_seq(&mut self) -> u64 {
        let seq = self.seq;
        self.seq += 1;
        seq
    }

    /// Puts a kept event (written at `start`) in its place.
    #[inline(always)]
    fn put(
        &mut self,
        target: Target,
        place: Place,
        seq: u64,
        start: usize,
        id: u64,
        details_len: usize,
    ) {
        let capture = self.capture;
        let at = match &self.clock {
            Clock::Alone => 2 * seq + 1,
            Clock::Owner(clock) => {
                // Only this thread writes it: a plain store, no read-modify-write.
                clock.store(seq + 1, Ordering::Relaxed);
                2 * seq + 1
            }
            Clock::Others(clock) => 2 * clock.load(Ordering::Relaxed),
        };
        // The event is written straight into its slot: built first and then copied, it would
        // be stored field by field and read back wider, which waits for the stores to retire.
        let kept = Kept {
            at,
            seq,
            start,
            id,
            details_len,
        };
        match place {
            Place::Push => {
                if self.outcome(target).kept.capacity() == 0 {
                    self.first_slots(target, capture);
                }
                self.outcome(target).kept.push(kept)
            }
            Place::Replace(j) => {
                let slot = &mut self.outcome(target).kept[j];
                let old = slot.len();
                *slot = kept;
                self.dead += old;
                if self.dead > COMPACT_AFTER && self.dead > self.out.text.len() / 2 {
                    self.compact();
                }
            }
        }
    }

    /// Slots for an outcome's first kept event: from the pool if it has some, with a
    /// reservoir's room at once (the acceptances' 500 would otherwise be reached by four
    /// reallocations, each a copy).
    #[cold]
    #[inline(never)]
    fn first_slots(&mut self, target: Target, capture: Capture) {
        let mut slots = self
            .out
            .pool
            .as_ref()
            .and_then(|p| p.take_slots())
            .unwrap_or_default();
        slots.reserve(match capture {
            Capture::Sample => room(target),
            _ => FIRST_KEPT,
        });
        self.outcome(target).kept = slots;
    }

    /// A text buffer from the pool, if it has one, for the first kept event.
    #[cold]
    #[inline(never)]
    fn take_text(&mut self) {
        self.out.text = self
            .out
            .pool
            .as_ref()
            .and_then(|p| p.take_text())
            .unwrap_or_default();
        self.out.text.reserve(FIRST_TEXT_BYTES);
    }

    /// Copies the live samples' text into a new buffer, dropping what replaced samples left.
    #[cold]
    #[inline(never)]
    fn compact(&mut self) {
        let mut text = Vec::with_capacity((self.out.text.len() - self.dead) * 2);
        let old = &self.out.text;
        let outcomes = self
            .out
            .reasons
            .iter_mut()
            .map(|(_, o)| o)
            .chain(std::iter::once(&mut self.out.accepted));
        for o in outcomes {
            for k in &mut o.kept {
                let start = text.len();
                text.extend_from_slice(&old[k.start..k.start + k.len()]);
                k.start = start;
            }
        }
        self.out.text = text;
        self.dead = 0;
    }

    /// Events kept so far, over all outcomes.
    fn kept_total(&self) -> usize {
        self.out
            .reasons
            .iter()
            .map(|(_, o)| o.kept.len())
            .sum::<usize>()
            + self.out.accepted.kept.len()
    }

    /// One recorder holding the events of both, as if one had recorded them all: exact counts,
    /// every kept event at `full`, and at `sample` a uniform sample of each outcome's events
    /// (the two reservoirs are uniform samples of their own events: drawing from them, each in
    /// proportion to the events it stands for, gives a uniform sample of all).
    pub(crate) fn merge(a: Recorder, b: Recorder) -> Recorder {
        let (mut base, mut other) = if a.kept_total() >= b.kept_total() {
            (a, b)
        } else {
            (b, a)
        };
        let text = std::mem::take(&mut other.out.text);
        for (reason, o) in &mut other.out.reasons {
            let i = base.find_reason(reason);
            base.absorb(Target::Reason(i), o, &text);
        }
        base.absorb(Target::Accepted, &mut other.out.accepted, &text);
        other.out.text = text;
        base
    }

    /// Adds another recorder's outcome (kept events in `text`) to one of this recorder's.
    fn absorb(&mut self, target: Target, theirs: &mut Outcome, text: &[u8]) {
        let room = room(target);
        let (mut a, mut b) = (self.outcome(target).count, theirs.count);
        self.outcome(target).count = a.saturating_add(b);
        let mut mine = std::mem::take(&mut self.outcome(target).kept);
        let mut other = std::mem::take(&mut theirs.kept);
        let kept = if self.capture != Capture::Sample || mine.len() + other.len() <= room {
            mine.extend(other.drain(..).map(|k| self.copy_in(k, text)));
            mine
        } else {
            let mut kept = Vec::with_capacity(room);
            while kept.len() < room && a.saturating_add(b) > 0 {
                // An event counted without an item (`reject_count`) yields no sample.
                if self.below(a.saturating_add(b)) < a {
                    a -= 1;
                    if !mine.is_empty() {
                        let j = self.below(mine.len() as u64) as usize;
                        kept.push(mine.swap_remove(j));
                    }
                } else {
                    b -= 1;
                    if !other.is_empty() {
                        let j = self.below(other.len() as u64) as usize;
                        let k = other.swap_remove(j);
                        kept.push(self.copy_in(k, text));
                    }
                }
            }
            self.dead += mine.iter().map(Kept::len).sum::<usize>();
            kept
        };
        self.outcome(target).kept = kept;
        if let Some(pool) = &self.out.pool {
            pool.give_slots(other);
        }
    }

    /// A kept event of another recorder, its text copied to the end of this one's buffer.
    fn copy_in(&mut self, k: Kept, text: &[u8]) -> Kept {
        let start = self.out.text.len();
        self.out
            .text
            .extend_from_slice(&text[k.start..k.start + k.len()]);
        Kept { start, ..k }
    }

    /// What was counted and kept, to be laid out on the shipper's thread.
    pub(crate) fn into_recorded(mut self) -> Recorded {
        std::mem::take(&mut self.out)
    }

    /// Moves everything recorded out, leaving an empty recorder.
    pub(crate) fn take(&mut self) -> Recorder {
        let seed = self.random();
        let empty = Recorder::new(self.capture, self.out.max_details, seed);
        std::mem::replace(self, empty)
    }

    #[cfg(test)]
    pub(crate) fn rejections(&mut self) -> BTreeMap<String, ReasonSummary> {
        self.seen = Seen::default();
        self.out.rejections()
    }

    #[cfg(test)]
    pub(crate) fn acceptances(&mut self) -> ReasonSummary {
        self.out.acceptances()
    }
}

impl Recorded {
    /// Exact counts and kept samples (in order of arrival), by reason.
    pub(crate) fn rejections(&mut self) -> BTreeMap<String, ReasonSummary> {
        let (text, max, pool) = (&self.text, self.max_details, &self.pool);
        self.reasons
            .drain(..)
            .map(|(reason, mut o)| (reason.into(), o.summary(text, max, pool)))
            .collect()
    }

    /// Exact count and kept samples of acceptances.
    pub(crate) fn acceptances(&mut self) -> ReasonSummary {
        self.accepted
            .summary(&self.text, self.max_details, &self.pool)
    }

    /// Rejections over all reasons.
    pub(crate) fn rejected_total(&self) -> u64 {
        self.reasons
            .iter()
            .fold(0u64, |total, (_, o)| total.saturating_add(o.count))
    }

    /// Acceptances.
    pub(crate) fn accepted_total(&self) -> u64 {
        self.accepted.count
    }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        if let Some(pool) = &self.pool {
            pool.give_text(std::mem::take(&mut self.text));
            for (_, o) in &mut self.reasons {
                pool.give_slots(std::mem::take(&mut o.kept));
            }
            pool.give_slots(std::mem::take(&mut self.accepted.kept));
        }
    }
}

impl Outcome {
    /// The count and the kept samples in order of arrival; the slots go back to the pool.
    fn summary(
        &mut self,
        text: &[u8],
        max_details: usize,
        pool: &Option<Arc<BufferPool>>,
    ) -> ReasonSummary {
        self.kept.sort_unstable_by_key(|k| (k.at, k.seq));
        let piece = |start: usize, len: usize| {
            let bytes = &text[start..start + len];
            match std::str::from_utf8(bytes) {
                Ok(s) => s.to_owned(),
                Err(_) => String::from_utf8_lossy(bytes).into_owned(),
            }
        };
        let samples = self
            .kept
            .iter()
            .map(|k| Sample {
                item_id: ItemId(if k.id & NUMBER != 0 {
                    itoa::Buffer::new().format(k.id & !NUMBER).to_owned()
                } else {
                    piece(k.start, k.id_len())
                }),
                details: (k.details_len > 0)
                    .then(|| {
                        let at = k.start + k.id_len();
                        tape_details(&text[at..at + k.details_len], max_details)
                    })
                    .flatten(),
            })
            .collect();
        if let Some(pool) = pool {
            pool.give_slots(std::mem::take(&mut self.kept));
        }
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

/// Buffers of finished steps, emptied and kept for the client's next steps, so that a step
/// which keeps samples neither grows fresh buffers nor has the shipper free them each time.
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    pooled: Mutex<Pooled>,
}

#[derive(Debug, Default)]
struct Pooled {
    texts: Vec<Vec<u8>>,
    slots: Vec<Vec<Kept>>,
}

/// Text buffers and slot lists a pool holds at most, and the largest it keeps (bytes): at most
/// `(8 + 32) × 256 KiB` stay allocated, typically a few KiB per step in flight.
const POOL_TEXTS: usize = 8;
const POOL_SLOTS: usize = 32;
const POOL_MAX_BYTES: usize = 256 * 1024;

impl BufferPool {
    fn pooled(&self) -> MutexGuard<'_, Pooled> {
        self.pooled.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take_text(&self) -> Option<Vec<u8>> {
        self.pooled().texts.pop()
    }

    fn take_slots(&self) -> Option<Vec<Kept>> {
        self.pooled().slots.pop()
    }

    fn give_text(&self, mut text: Vec<u8>) {
        if text.capacity() == 0 || text.capacity() > POOL_MAX_BYTES {
            return;
        }
        text.clear();
        let mut pooled = self.pooled();
        if pooled.texts.len() < POOL_TEXTS {
            pooled.texts.push(text);
        }
    }

    fn give_slots(&self, mut slots: Vec<Kept>) {
        if slots.capacity() == 0 || slots.capacity() * size_of::<Kept>() > POOL_MAX_BYTES {
            return;
        }
        slots.clear();
        let mut pooled = self.pooled();
        if pooled.slots.len() < POOL_SLOTS {
            pooled.slots.push(slots);
        }
    }
}

/// Where and how each of a recorder's first [`SCAN_LIMIT`] reasons was last given: the address
/// of the text (0, which no text has, for none), and its length and words; and, for those
/// given as literals ([`crate::literal`]), the index by address.
#[derive(Debug)]
struct Seen {
    /// By a literal's [`Seen::bucket`]: the index of the reason last given as that literal
    /// ([`NO_REASON`] for none). An entry is followed only while the reason's `at` is the
    /// address asked for, and then that address is a literal's: when reason `i` is given at an
    /// address that is not a literal's, the entry of that address's bucket is cleared if it is
    /// `i`'s (an entry for `i` in another bucket cannot match `at[i]` any more).
    literal: [u8; LITERAL_BUCKETS],
    at: [usize; SCAN_LIMIT],
    key: [Key; SCAN_LIMIT],
}

/// Buckets of [`Seen::literal`].
const LITERAL_BUCKETS: usize = 64;

/// No reason: an index past [`SCAN_LIMIT`].
const NO_REASON: u8 = u8::MAX;
const _: () = assert!(SCAN_LIMIT < NO_REASON as usize);

impl Default for Seen {
    fn default() -> Seen {
        Seen {
            literal: [NO_REASON; LITERAL_BUCKETS],
            at: [0; SCAN_LIMIT],
            key: [Key::default(); SCAN_LIMIT],
        }
    }
}

impl Seen {
    /// A literal's bucket in [`Seen::literal`] (literals lie close together: the low bits
    /// tell them apart, mixed with the next ones).
    #[inline(always)]
    fn bucket(at: usize) -> usize {
        (at ^ (at >> 7)) % LITERAL_BUCKETS
    }

    /// Notes that reason `i` was just given as `text`.
    fn remember(&mut self, i: usize, text: &str) {
        let at = text.as_ptr() as usize;
        // An address names one text at a time: a reason last seen there is not there any more.
        for other in &mut self.at {
            if *other == at {
                *other = 0;
            }
        }
        self.at[i] = at;
        self.key[i] = Key::of(text);
        let bucket = &mut self.literal[Seen::bucket(at)];
        if crate::literal::is_literal(text) {
            // Taken from a literal that shared the bucket, if any: that one is then found by
            // its text (a literal is not moved back and forth between two hot reasons).
            *bucket = i as u8;
        } else if usize::from(*bucket) == i {
            // The reason's entry there was for its literal: its text, now at an address of
            // the same bucket that can change what it holds, must be compared from now on.
            *bucket = NO_REASON;
        }
    }
}

/// A reason's length and, for the 8 to 32 bytes reasons usually have, the four words that
/// [`text_words`] reads: enough to tell the text from any other without reading it again. One
/// cache line.
#[derive(Debug, Default, Clone, Copy)]
#[repr(align(64))]
struct Key {
    len: usize,
    words: [u64; 4],
}

impl Key {
    fn of(text: &str) -> Key {
        let len = text.len();
        Key {
            len,
            words: match len {
                8..=32 => text_words(text.as_bytes()),
                _ => [0; 4],
            },
        }
    }

    /// Whether `text` is the reason this key was made of (`stored` gives the reason's own text,
    /// read only for lengths the words do not cover).
    #[inline(always)]
    fn matches<'a>(&self, text: &str, stored: impl FnOnce() -> &'a str) -> bool {
        if text.len() != self.len {
            return false;
        }
        match text.len() {
            8..=32 => {
                let words = text_words(text.as_bytes());
                (0..4).fold(0, |diff, k| diff | (words[k] ^ self.words[k])) == 0
            }
            _ => same_text(stored(), text),
        }
    }
}

/// The words at bytes 0, 8, 16 and `len - 8` of an 8 to 32 bytes text, each moved back to fit:
/// together they cover it all.
#[inline(always)]
fn text_words(text: &[u8]) -> [u64; 4] {
    let last = text.len() - 8;
    let word = |at: usize| {
        let at = at.min(last);
        let mut w = [0u8; 8];
        w.copy_from_slice(&text[at..at + 8]);
        u64::from_ne_bytes(w)
    };
    [word(0), word(8), word(16), word(last)]
}

/// Whether two texts are the same, compared inline and without data-dependent branches for
/// the 8 to 32 bytes reasons usually have (four word compares rather than a call to `memcmp`).
#[inline]
fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[at..at + 8]);
        u64::from_ne_bytes(w)
    };
    match n {
        8..=32 => {
            // Words at 0, 8, 16 and n - 8, each moved back to fit: together they cover all.
            let last = n - 8;
            [0, 8, 16, last]
                .into_iter()
                .map(|at| at.min(last))
                .fold(0, |diff, at| diff | (word(a, at) ^ word(b, at)))
                == 0
        }
        _ => a == b,
    }
}

/// serde_json's compact output, with whole numbers and numbers of one or two decimals (prices,
/// ratings, scores) written with integer formatting rather than the shortest-round-trip float
/// algorithm. The text is the same as serde_json's own: see `write_f64`.
struct FastFloats;

/// Whole numbers below this magnitude are written `<integer>.0` by serde_json too (from 1e16 on
/// it switches to exponents).
const WHOLE_FLOAT_LIMIT: f64 = 1e15;

/// Below this magnitude, hundredths are exact integers in an `f64` and neighbouring candidates
/// with one or two decimals are far more than a rounding step apart.
const DECIMAL_FLOAT_LIMIT: f64 = 1e13;

impl Formatter for FastFloats {
    /// A finite `value` (serde_json writes the others as `null` before asking).
    ///
    /// If `t / 10^d` (correctly rounded, as parsing the text `t/10^d` would give) is `value`
    /// for an integer `t` and `d` decimals, that text reads back as `value`; a shorter one
    /// would have matched at `d - 1` decimals, and no other text with `d` decimals is as close,
    /// so it is the one shortest text serde_json's algorithm writes. Anything else goes to it.
    #[inline]
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        let whole = value as i64;
        // `-0.0` converts to 0 and back to `0.0 == -0.0`, but is written "-0.0": not this path.
        if whole as f64 == value
            && value.abs() < WHOLE_FLOAT_LIMIT
            && (whole != 0 || value.is_sign_positive())
        {
            let mut digits = itoa::Buffer::new();
            writer.write_all(digits.format(whole).as_bytes())?;
            return writer.write_all(b".0");
        }
        let magnitude = value.abs();
        if magnitude < DECIMAL_FLOAT_LIMIT {
            for (scale, places) in [(10u64, 1), (100, 2)] {
                let scaled = (magnitude * scale as f64 + 0.5) as u64;
                if scaled as f64 / scale as f64 == magnitude {
                    if value.is_sign_negative() {
                        writer.write_all(b"-")?;
                    }
                    let mut digits = itoa::Buffer::new();
                    writer.write_all(digits.format(scaled / scale).as_bytes())?;
                    let fraction = scaled % scale;
                    let text = [
                        b'.',
                        b'0' + (fraction / 10) as u8,
                        b'0' + (fraction % 10) as u8,
                    ];
                    return match places {
                        1 => writer.write_all(&[b'.', text[2]]),
                        _ => writer.write_all(&text),
                    };
                }
            }
        }
        CompactFormatter.write_f64(writer, value)
    }
}

/// Collects serialised JSON at the end of a buffer and stops the serialiser once the value's
/// text reaches `end`, so recording a huge value costs no more than recording its first bytes.
struct Capped<'a> {
    buf: &'a mut Vec<u8>,
    end: usize,
    over: bool,
}

impl io::Write for Capped<'_> {
    #[inline]
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_all(data).map(|()| data.len())
    }

    /// serde_json writes through `write_all`, many small pieces per value (`{`, `"`, a key…):
    /// one length check and a copy each, without the default loop. Always inlined, so the
    /// one-byte pieces become plain stores rather than calls to `memcpy`.
    #[inline(always)]
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        if self.buf.len() + data.len() > self.end {
            self.over = true;
            let room = self.end.saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&data[..room]);
            return Err(io::Error::other("over the size limit"));
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What stands in for a value whose JSON is over the limit: a note and the start of the JSON.
fn truncated(partial: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(partial);
    let mut cut = (max / 2).min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    serde_json::json!({
        "_xray_truncated": true,
        "limit_bytes": max,
        "preview": &text[..cut],
    })
    .to_string()
}

/// Appends a value's JSON text to `buf`, capped at `max` bytes; returns how many bytes it took
/// (0 for `null`, which is no value).
///
/// A value that cannot be serialised becomes `{"_xray_error": "..."}`. A value whose JSON is
/// over `max` bytes becomes `{"_xray_truncated": true, "limit_bytes": max, "preview": "<its first
/// max/2 bytes>"}`; serialisation stops at the limit, so the cost is bounded too.
pub(crate) fn append_capped_json<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    value: &T,
    max: usize,
) -> usize {
    let start = buf.len();
    let mut ser = serde_json::Serializer::with_formatter(
        Capped {
            end: start.saturating_add(max),
            buf: &mut *buf,
            over: false,
        },
        FastFloats,
    );
    let result = value.serialize(&mut ser);
    let over = ser.into_inner().over;
    match result {
        Err(e) => failed_json(buf, start, max, over, e),
        Ok(()) if &buf[start..] == b"null" => buf.truncate(start),
        Ok(()) => {}
    }
    buf.len() - start
}

/// The JSON text of details recorded by [`tape::record`], capped at `max` bytes just as
/// [`append_capped_json`] caps a value serialised directly (the same text, notes and preview).
#[cfg(test)]
pub(crate) fn tape_json(tape: &[u8], max: usize) -> String {
    replay(tape, max).0
}

/// Recorded details as the `JsonText` a sample carries; `None` for `null` (as for details
/// serialised directly). serde_json wrote the text, so it is not parsed again unless it holds
/// raw JSON text.
fn tape_details(tape: &[u8], max: usize) -> Option<JsonText> {
    let (text, checked) = replay(tape, max);
    if text == "null" {
        return None;
    }
    if !checked {
        return Some(to_json_text(text.into_boxed_str()));
    }
    /// Text to be taken as it is (through serde_json's raw-value token).
    struct Verbatim<'a>(&'a str);
    impl Serialize for Verbatim<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeStruct;
            let mut raw = s.serialize_struct(tape::RAW_VALUE_TOKEN, 1)?;
            raw.serialize_field(tape::RAW_VALUE_TOKEN, self.0)?;
            raw.end()
        }
    }
    match serde_json::value::to_raw_value(&Verbatim(&text)) {
        Ok(raw) => Some(JsonText(raw)),
        Err(_) => Some(to_json_text(text.into_boxed_str())),
    }
}

/// [`tape_json`], and whether serde_json wrote all of the text (no raw text written as it is).
fn replay(tape: &[u8], max: usize) -> (String, bool) {
    let mut buf = Vec::with_capacity(tape.len() + 16);
    let reader = tape::Reader::new(tape);
    let mut ser = serde_json::Serializer::with_formatter(
        Capped {
            end: max,
            buf: &mut buf,
            over: false,
        },
        FastFloats,
    );
    let result = tape::Next(&reader).serialize(&mut ser);
    let over = ser.into_inner().over || reader.was_cut();
    if let Err(e) = result {
        failed_json(&mut buf, 0, max, over, e);
    }
    match String::from_utf8(buf) {
        Ok(text) => (text, !reader.wrote_raw()),
        Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), false),
    }
}

/// Replaces a value's partial JSON text (from `start`) by the note that stands for it: the value
/// was over `max` bytes (`over`), or could not be serialised. One function for all types, out of
/// the way of the code that serialises.
#[cold]
#[inline(never)]
fn failed_json(buf: &mut Vec<u8>, start: usize, max: usize, over: bool, e: serde_json::Error) {
    let note = if over {
        truncated(&buf[start..], max)
    } else {
        serde_json::json!({"_xray_error": format!("could not be serialised: {e}")}).to_string()
    };
    buf.truncate(start);
    buf.extend_from_slice(note.as_bytes());
}

/// A value as JSON text, capped at `max` bytes (see [`append_capped_json`]); `None` for `null`.
/// Item details are capped at `Config::max_details_bytes`, inputs and outputs at
/// `Config::max_io_bytes`. Serialised into the thread's scratch buffer (a fresh one when that
/// is in use: a `Serialize` impl that records), so the only allocation is the text's own.
pub(crate) fn capped_json<T: Serialize + ?Sized>(value: &T, max: usize) -> Option<Box<str>> {
    thread_local! {
        static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    let text = |scratch: &mut Vec<u8>| {
        scratch.clear();
        if append_capped_json(scratch, value, max) == 0 {
            return None;
        }
        std::str::from_utf8(scratch).ok().map(Into::into)
    };
    let pooled = SCRATCH.try_with(|cell| {
        let mut scratch = cell.try_borrow_mut().ok()?;
        let result = text(&mut scratch);
        if scratch.capacity() > SCRATCH_MAX_BYTES {
            *scratch = Vec::new();
        }
        Some(result)
    });
    match pooled {
        Ok(Some(result)) => result,
        _ => text(&mut Vec::new()),
    }
}

/// The largest scratch buffer a thread keeps between two [`capped_json`] calls.
const SCRATCH_MAX_BYTES: usize = 64 * 1024;

/// A value's `Debug` text as a JSON string, capped at `max` bytes (formatting stops there).
pub(crate) fn capped_debug<T: std::fmt::Debug + ?Sized>(value: &T, max: usize) -> Box<str> {
    struct Limit {
        text: String,
        max: usize,
    }
    impl std::fmt::Write for Limit {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            if self.text.len() + s.len() > self.max {
                let mut room = self.max.saturating_sub(self.text.len());
                while !s.is_char_boundary(room) {
                    room -= 1;
                }
                self.text.push_str(&s[..room]);
                return Err(std::fmt::Error);
            }
            self.text.push_str(s);
            Ok(())
        }
    }
    let mut out = Limit {
        text: String::new(),
        max,
    };
    if std::fmt::write(&mut out, format_args!("{value:?}")).is_err() && out.text.len() >= max {
        out.text.push('…');
    }
    serde_json::to_string(&out.text)
        .unwrap_or_default()
        .into_boxed_str()
}

/// JSON text this crate produced, checked and wrapped for the wire (on the shipper's thread).
pub(crate) fn to_json_text(text: Box<str>) -> JsonText {
    JsonText::parse(text.into_string()).unwrap_or_else(|e| {
        JsonText::of(&format!("<invalid JSON: {e}>"))
            .unwrap_or_else(|| JsonText(serde_json::value::RawValue::NULL.to_owned()))
    })
}

/// [`capped_json`] as a JSON value, for the few places that need one (decisions, attributes).
pub(crate) fn details_json<D: Serialize + ?Sized>(details: &D, max: usize) -> Option<Value> {
    capped_json(details, max).and_then(|text| serde_json::from_str(&text).ok())
}

/// Tests, and the allocation counter other modules' tests use.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    /// Counts this thread's allocations (other tests' threads do not disturb the count).
    struct Counting;
    thread_local! { static ALLOCATIONS: Cell<u64> = const { Cell::new(0) }; }
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
            // SAFETY: forwarded unchanged to the system allocator.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: forwarded unchanged to the system allocator.
            unsafe { System.dealloc(ptr, layout) }
        }
    }
    #[global_allocator]
    static GLOBAL: Counting = Counting;

    /// Allocations made so far on the calling thread.
    pub(crate) fn allocations() -> u64 {
        ALLOCATIONS.with(Cell::get)
    }

    #[derive(serde::Serialize)]
    struct Price {
        price: u64,
        threshold: u64,
    }

    #[test]
    fn a_counted_reject_allocates_nothing_beyond_the_samples_kept() {
        let reasons = ["price_too_high", "low_rating", "category_mismatch"];
        // Counts only: after each reason's first event, nothing at all.
        let mut r = Recorder::new(Capture::Minimal, 4096, 3);
        for reason in reasons {
            r.reject(0u64, reason, &());
        }
        let before = allocations();
        for i in 0..5000u64 {
            r.reject(
                i,
                reasons[(i % 3) as usize],
                &Price {
                    price: i,
                    threshold: 100,
                },
            );
        }
        assert_eq!(allocations() - before, 0);

        // Samples: an item id and a details text per kept event, and nothing per other event.
        let mut r = Recorder::new(Capture::Sample, 4096, 3);
        for reason in reasons {
            r.reject(0u64, reason, &());
        }
        let (before, kept_before) = (allocations(), r.seq);
        for i in 0..5000u64 {
            r.reject(
                i,
                reasons[(i % 3) as usize],
                &Price {
                    price: i,
                    threshold: 100,
                },
            );
        }
        let (allocated, kept) = (allocations() - before, r.seq - kept_before);
        // The scratch buffer and the sample vectors grow a few times as well.
        assert!(
            allocated <= 2 * kept + 30,
            "{allocated} allocations for {kept} kept events"
        );
        assert!(kept < 1000, "{kept} of 5000 events kept");
    }

    #[test]
    fn counts_are_exact_and_samples_capped_per_reason() {
        let mut r = Recorder::new(Capture::Sample, 4096, 7);
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
        }
        assert_eq!(r.acceptances().count, 1);
    }

    #[test]
    fn the_reservoir_samples_the_whole_step_not_just_the_start() {
        let mut r = Recorder::new(Capture::Sample, 4096, 42);
        for i in 0..10_000u64 {
            r.reject(i, "x", &());
        }
        let kept: Vec<u64> = r.rejections()["x"]
            .samples
            .iter()
            .map(|s| s.item_id.as_str().parse().unwrap())
            .collect();
        // Uniform over 0..10000: about half past the middle, few among the first 50.
        let late = kept.iter().filter(|&&i| i >= 5000).count();
        assert!(
            (12..=38).contains(&late),
            "{late} of 50 from the second half: {kept:?}"
        );
        assert!(kept.iter().filter(|&&i| i < 50).count() <= 3, "{kept:?}");
        assert!(
            kept.windows(2).all(|w| w[0] < w[1]),
            "kept in arrival order"
        );
    }

    /// How often each event of `n` (recorded as rejections, or as acceptances) was kept over
    /// `trials` steps.
    fn times_kept(n: u64, trials: u64, accept: bool) -> Vec<u64> {
        let mut times = vec![0u64; n as usize];
        for seed in 0..trials {
            let mut r = Recorder::new(Capture::Sample, 4096, seed * 7919 + 1);
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

    fn room_of(accept: bool) -> usize {
        if accept {
            ACCEPTANCES_KEPT
        } else {
            SAMPLES_PER_REASON
        }
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
            assert!(
                chi < 43.8,
                "n {n}, accept {accept}: chi-square {chi:.1} over {buckets} runs of events"
            );
            // The first events (the reservoir's fill) and the last ones, each as often as the rest.
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
            let mut r = Recorder::new(Capture::Sample, 4096, seed + 1);
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
        let mut min = Recorder::new(Capture::Minimal, 4096, 1);
        let mut full = Recorder::new(Capture::Full, 4096, 1);
        for i in 0..300u64 {
            min.reject(i, "r", &());
            full.reject(i, "r", &());
        }
        assert_eq!(min.rejections()["r"].samples.len(), 0);
        let all = full.rejections();
        assert_eq!(all["r"].count, 300);
        assert_eq!(all["r"].samples.len(), 300);
    }

    #[test]
    fn every_kind_of_id_comes_back_as_its_text() {
        let big = 1u64 << 63;
        let mut r = Recorder::new(Capture::Full, 4096, 1);
        r.reject(7u8, "r", &("k", 1));
        r.reject(big - 1, "r", &());
        r.reject(big, "r", &("k", 2));
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
                    s.details.as_ref().map(|d| d.get().to_owned()),
                )
            })
            .collect();
        let expected = [
            ("7".to_owned(), Some(r#"["k",1]"#)),
            ((big - 1).to_string(), None),
            (big.to_string(), Some(r#"["k",2]"#)),
            (u64::MAX.to_string(), None),
            ("-5".to_owned(), None),
            (u128::MAX.to_string(), None),
            ("sku-9".to_owned(), Some(r#"["k",3]"#)),
        ];
        let expected: Vec<(String, Option<String>)> = expected
            .into_iter()
            .map(|(id, d)| (id, d.map(str::to_owned)))
            .collect();
        assert_eq!(kept, expected);
        let accepted: Vec<String> = r
            .acceptances()
            .samples
            .iter()
            .map(|s| s.item_id.0.clone())
            .collect();
        assert_eq!(accepted, ["12", "x"]);
    }

    #[test]
    fn reasons_given_as_reused_buffers_are_told_apart() {
        let mut r = Recorder::new(Capture::Sample, 4096, 1);
        let mut buf = String::with_capacity(16);
        for name in ["aaa", "bbb", "aaa", "ccc"] {
            buf.clear();
            buf.push_str(name); // same address and length, different text
            r.reject(1u64, &buf, &());
        }
        let rej = r.rejections();
        assert_eq!(rej["aaa"].count, 2);
        assert_eq!(rej["bbb"].count, 1);
        assert_eq!(rej["ccc"].count, 1);
    }

    /// Read-only bytes (a `static` without interior mutability is placed among the program's
    /// literals): texts at addresses 8,192 bytes apart share a bucket of [`Seen::literal`].
    static SHARED_BUCKET: [u8; 8200] = {
        let mut table = [b'_'; 8200];
        let mut i = 0;
        while i < 8 {
            table[i] = b'a';
            table[8192 + i] = b'b';
            i += 1;
        }
        table
    };

    #[test]
    fn literals_are_found_by_address_and_length() {
        let table = std::str::from_utf8(&SHARED_BUCKET).expect("ascii");
        let (a, b) = (&table[..8], &table[8192..]);
        assert_eq!(
            Seen::bucket(a.as_ptr() as usize),
            Seen::bucket(b.as_ptr() as usize)
        );
        assert!(crate::literal::is_literal(a) || !cfg!(target_os = "linux"));
        // "aaaa" starts where "aaaaaaaa" does: the same address, another text.
        let short = &a[..4];
        let owned = String::from("aaaaaaaa");
        let mut r = Recorder::new(Capture::Sample, 4096, 1);
        for i in 0..300u64 {
            r.reject(i, a, &());
            r.reject(i, b, &());
            if i % 3 == 0 {
                r.reject(i, short, &());
                r.reject(i, &owned, &());
            }
        }
        let rej = r.rejections();
        assert_eq!(rej.len(), 3, "{:?}", rej.keys().collect::<Vec<_>>());
        assert_eq!(
            rej["aaaaaaaa"].count, 400,
            "the literal and the equal String"
        );
        assert_eq!(rej["bbbbbbbb"].count, 300);
        assert_eq!(rej["aaaa"].count, 100);
    }

    #[test]
    fn a_literal_reason_given_again_from_a_buffer_is_compared_there() {
        let literal = "aaaaaaaa";
        assert!(crate::literal::is_literal(literal) || !cfg!(target_os = "linux"));
        let bucket = Seen::bucket(literal.as_ptr() as usize);
        // A heap buffer, and a place in it in the literal's bucket.
        let mut buf = vec![b'_'; 4096];
        let base = buf.as_ptr() as usize;
        let offset = (0..4000)
            .find(|&o| Seen::bucket(base + o) == bucket)
            .expect("every bucket recurs within 128 bytes");
        let mut r = Recorder::new(Capture::Sample, 4096, 1);
        r.reject(1u64, literal, &());
        for (text, times) in [(b"aaaaaaaa", 2), (b"bbbbbbbb", 3), (b"aaaaaaaa", 1)] {
            buf[offset..offset + 8].copy_from_slice(text);
            let reason = std::str::from_utf8(&buf[offset..offset + 8]).expect("ascii");
            for i in 0..times {
                r.reject(i, reason, &());
            }
        }
        let rej = r.rejections();
        assert_eq!(rej["aaaaaaaa"].count, 4);
        assert_eq!(rej["bbbbbbbb"].count, 3);
    }

    #[test]
    fn the_first_eight_reasons_are_counted_exactly_in_any_order() {
        let reasons = [
            "a_reason", "b_reason", "c_reason", "d_reason", "e_reason", "f_reason", "g_reason",
            "h_reason", "i_reason",
        ];
        let mut r = Recorder::new(Capture::Sample, 4096, 7);
        let mut x = 1u64;
        let mut want = [0u64; 9];
        for i in 0..9000u64 {
            // Reasons in an order no predictor learns, the ninth past the first eight.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = (x % 9) as usize;
            want[k] += 1;
            r.reject(i, reasons[k], &());
        }
        let rej = r.rejections();
        for (k, reason) in reasons.iter().enumerate() {
            assert_eq!(rej[*reason].count, want[k], "{reason}");
            assert_eq!(rej[*reason].samples.len(), 50, "{reason}");
        }
    }

    #[test]
    fn many_reasons_are_found_again() {
        let mut r = Recorder::new(Capture::Sample, 4096, 1);
        for round in 0..3 {
            for k in 0..100 {
                r.reject(round, &format!("reason_{k}"), &());
            }
        }
        r.reject_count("reason_5", 10);
        let rej = r.rejections();
        assert_eq!(rej.len(), 100);
        assert_eq!(rej["reason_99"].count, 3);
        assert_eq!(rej["reason_5"].count, 13);
    }

    #[test]
    fn floats_are_written_as_serde_json_writes_them() {
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            120.0,
            0.5,
            -2.25,
            0.1,
            1e15 - 1.0,
            1e15,
            -1e15,
            1e16,
            9_007_199_254_740_993.0,
            1e300,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::NAN,
            f64::INFINITY,
        ];
        values.extend((0..2000).map(|i| f64::from(i) * 0.37 - 300.0));
        values.extend((0..64).map(|k| 2f64.powi(k)));
        for scale in [10.0, 100.0, 1000.0] {
            values.extend((-3000..3000).map(|i| f64::from(i) / scale));
            values.extend((0..2000).map(|i| (f64::from(i) * 7919.0 + 0.5) / scale));
            values.extend((0..200).map(|i| 1e12 + f64::from(i) / scale));
            values.extend((0..200).map(|i| 9.9e12 + f64::from(i) / scale));
            values.extend((0..200).map(|i| 1e13 + f64::from(i) / scale));
        }
        values.extend([
            0.05, 0.01, 0.001, 1e-5, 1e-6, 1e-7, 0.15, 2.675, 1.005, 0.995, 0.045,
        ]);
        values.extend((0..1000).map(|i| f64::from(i) * 0.1 + 0.05));
        values.extend((0..1000).map(|i| (f64::from(i) * 0.01).sqrt()));
        // Random bit patterns, and random integers over 10 and 100 up to 1e16.
        let mut r = Recorder::new(Capture::Sample, 0, 99);
        for _ in 0..20_000 {
            let bits = r.below(u64::MAX) ^ (r.below(u64::MAX) << 1);
            values.push(f64::from_bits(bits));
            let digits = 1 + r.below(16) as u32;
            let t = r.below(10u64.pow(digits)) as f64;
            values.extend([t / 10.0, -t / 100.0]);
        }
        for v in values {
            let ours = capped_json(&(v, [v]), 4096);
            let theirs = serde_json::to_string(&(v, [v])).unwrap();
            assert_eq!(ours.as_deref(), Some(theirs.as_str()), "{v:e}");
        }
    }

    #[test]
    fn replaced_samples_are_compacted_away() {
        let pool = Arc::new(BufferPool::default());
        let mut r = Recorder::new(Capture::Sample, 4096, 5).pooled(pool.clone());
        let pad = "x".repeat(300);
        for i in 0..20_000u64 {
            r.reject(
                i,
                ["a", "b"][(i % 2) as usize],
                &json!({"i": i, "pad": pad}),
            );
            assert!(r.dead <= COMPACT_AFTER.max(r.out.text.len() / 2));
        }
        // 100 live samples of ~330 bytes, however many were written and replaced.
        assert!(
            r.out.text.len() < 2 * COMPACT_AFTER + 100 * 400,
            "{}",
            r.out.text.len()
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
        drop(r);
        let pooled = pool.pooled();
        assert_eq!(
            (pooled.texts.len(), pooled.slots.len()),
            (1, 2),
            "buffers back"
        );
        assert!(pooled.texts[0].is_empty() && pooled.slots.iter().all(Vec::is_empty));
    }

    #[test]
    fn a_step_reuses_the_buffers_of_the_one_before() {
        let pool = Arc::new(BufferPool::default());
        let mut first = 0;
        for round in 0..3u64 {
            let mut r = Recorder::new(Capture::Sample, 4096, round).pooled(pool.clone());
            let before = allocations();
            for i in 0..5000u64 {
                r.reject(
                    i,
                    "r",
                    &Price {
                        price: i,
                        threshold: 1,
                    },
                );
                r.accept::<()>(i, None);
            }
            let allocated = allocations() - before;
            // The first round makes and grows its buffers (8 allocations); later ones only list
            // their reason (2) and may grow the text buffer the pool handed over (1).
            if round > 0 {
                assert!(
                    allocated <= 3,
                    "{allocated} allocations with pooled buffers"
                );
                assert!(allocated < first, "{allocated} against {first} without");
            } else {
                first = allocated;
            }
            assert_eq!(r.rejections()["r"].samples.len(), SAMPLES_PER_REASON);
            assert_eq!(r.acceptances().samples.len(), ACCEPTANCES_KEPT);
        }
    }

    fn ids(summary: &ReasonSummary) -> Vec<u64> {
        summary
            .samples
            .iter()
            .map(|s| s.item_id.as_str().parse().unwrap())
            .collect()
    }

    #[test]
    fn two_recorders_merge_in_order_of_arrival() {
        let clock = Arc::new(AtomicU64::new(0));
        let mut owner = Recorder::new(Capture::Full, 4096, 1).clocked(Clock::Owner(clock.clone()));
        let mut others = Recorder::new(Capture::Full, 4096, 2).clocked(Clock::Others(clock));
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
            assert_eq!(
                s.details.as_ref().unwrap().to_value()["n"],
                s.item_id.as_str().parse::<u64>().unwrap()
            );
        }
        assert_eq!(ids(&rej["s"]), [4]);
        let acc = merged.acceptances();
        assert_eq!((acc.count, ids(&acc)), (2, vec![6, 7]));
        assert_eq!(acc.samples[0].details.as_ref().unwrap().get(), "\"six\"");
    }

    #[test]
    fn merged_reservoirs_stay_uniform_over_both() {
        // 1,000 events on one side, 3,000 on the other: a quarter of the merged samples should
        // come from the first, whichever side kept more.
        let mut from_first = 0;
        let trials = 200;
        for seed in 0..trials {
            let mut a = Recorder::new(Capture::Sample, 4096, seed);
            let mut b = Recorder::new(Capture::Sample, 4096, seed + 1000);
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
        let mut a = Recorder::new(Capture::Sample, 4096, 1);
        let mut b = Recorder::new(Capture::Sample, 4096, 2);
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

    /// Records an event the way a step guard on its owner thread does: counted on the quick
    /// path, then kept (or recorded whole, for a reason not found by its address); true if it
    /// was counted on the quick path.
    fn record_split(r: &mut Recorder, i: u64, reason: Option<&str>) -> bool {
        let details = json!({"i": i});
        let counted = match reason {
            Some(reason) => r.count_reject(reason),
            None => r.count_accept(),
        };
        match (counted, reason) {
            (Counted::Done, _) => true,
            (Counted::Keep(target, place), _) => {
                r.keep_counted(target, place, i, Some(&details));
                true
            }
            (Counted::Unfound, Some(reason)) => {
                r.reject(i, reason, &details);
                false
            }
            (Counted::Unfound, None) => unreachable!("an acceptance is always counted"),
        }
    }

    #[test]
    fn counting_first_and_keeping_after_is_recording_in_one_go() {
        let literals = crate::literal::read_segments() && cfg!(target_os = "linux");
        // Four literals in four buckets: two that share one are, by design, looked up by their
        // text in turn, and where the linker puts them changes with any change to the program.
        let mut reasons: Vec<&'static str> = Vec::new();
        for r in [
            "price", "rating", "category", "stock", "brand", "color", "size", "weight",
        ] {
            let bucket = |t: &str| Seen::bucket(t.as_ptr() as usize);
            if reasons.len() < 4 && reasons.iter().all(|o| bucket(o) != bucket(r)) {
                reasons.push(r);
            }
        }
        assert_eq!(
            reasons.len(),
            4,
            "four of eight literals in distinct buckets"
        );
        for capture in [Capture::Minimal, Capture::Sample, Capture::Full] {
            for seed in [1, 2, 3] {
                let mut whole = Recorder::new(capture, 4096, seed);
                let mut split = Recorder::new(capture, 4096, seed);
                let mut quick = 0;
                for i in 0..3000u64 {
                    let reason = (i % 5 != 0).then(|| reasons[(i * 7 % 13 % 4) as usize]);
                    match reason {
                        Some(reason) => whole.reject(i, reason, &json!({"i": i})),
                        None => whole.accept(i, Some(&json!({"i": i}))),
                    }
                    quick += usize::from(record_split(&mut split, i, reason));
                }
                if literals {
                    // Only each reason's first event is looked up by its text.
                    assert_eq!(quick, 3000 - reasons.len(), "{capture:?}");
                }
                let texts = |rec: &mut Recorder| {
                    let kept = |o: &ReasonSummary| {
                        let ids = o.samples.iter().map(|s| s.item_id.0.clone());
                        let details = o.samples.iter().map(|s| format!("{:?}", s.details));
                        (
                            o.count,
                            ids.collect::<Vec<_>>(),
                            details.collect::<Vec<_>>(),
                        )
                    };
                    let rejections: Vec<_> = rec.rejections().values().map(kept).collect();
                    (rejections, kept(&rec.acceptances()))
                };
                let (a, b) = (texts(&mut whole), texts(&mut split));
                assert_eq!(a, b, "{capture:?}, seed {seed}");
                if capture == Capture::Sample {
                    assert!(a.0.iter().all(|r| r.1.len() == SAMPLES_PER_REASON));
                }
            }
        }
    }

    #[test]
    fn a_count_at_its_largest_stays_there() {
        let mut r = Recorder::new(Capture::Sample, 4096, 1);
        r.reject(1u64, "r", &());
        r.reject_count("r", u64::MAX);
        r.reject(2u64, "r", &());
        assert!(!matches!(r.count_reject("r"), Counted::Unfound));
        assert_eq!(r.rejections()["r"].count, u64::MAX);
    }

    #[test]
    fn details_are_capped_and_never_fail() {
        let big = "é".repeat(5000);
        let v = details_json(&json!({"text": big}), 1000).unwrap();
        assert_eq!(v["_xray_truncated"], true);
        assert_eq!(v["limit_bytes"], 1000);
        assert!(v["preview"].as_str().unwrap().starts_with("{\"text\":\"éé"));
        assert!(v["preview"].as_str().unwrap().len() <= 500);
        let huge: Vec<u64> = (0..1_000_000).collect();
        let text = capped_json(&huge, 32 * 1024).unwrap();
        assert!(
            text.len() < 17 * 1024,
            "serialisation stopped at the limit: {}",
            text.len()
        );
        let debug = capped_debug(&huge, 100);
        assert!(debug.len() < 110 && debug.ends_with("…\""), "{debug}");
        assert_eq!(&*capped_debug(&Some(1), 100), "\"Some(1)\"");
        assert_eq!(details_json(&(), 10), None);
        let mut bad = std::collections::HashMap::new();
        bad.insert((1, 2), 3);
        assert!(details_json(&bad, 100).unwrap()["_xray_error"].is_string());
    }
}
