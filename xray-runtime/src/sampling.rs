//! Counting and sampling the events of one step.
//!
//! Counts per reason are always exact. What is *kept* depends on the capture level:
//! `minimal` keeps nothing, `full` keeps every event, and `sample` keeps at most
//! [`SAMPLES_PER_REASON`] events per rejection reason and [`ACCEPTANCES_KEPT`] acceptances, chosen
//! by **reservoir sampling** (Algorithm R): every
//! event of the step has the same chance to be kept, whether it came first or last. Details are
//! turned into JSON only for events that are kept, so a counted-but-not-kept event costs no
//! allocation.

use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use xray_wire::{
    Capture, ItemId, JsonText, ReasonSummary, Sample, ACCEPTANCES_KEPT, SAMPLES_PER_REASON,
};

/// Past this many reasons, reasons are found through a hash map rather than a scan.
const SCAN_LIMIT: usize = 8;

/// Which outcome an event counts towards.
#[derive(Debug, Clone, Copy)]
enum Target {
    Reason(usize),
    Accepted,
}

/// Where a kept event goes: appended, or replacing a reservoir slot.
#[derive(Debug, Clone, Copy)]
enum Place {
    Push(u64),
    Replace(usize, u64),
}

/// One kept event, as recorded: its order of arrival, the item, and its details as JSON text.
#[derive(Debug)]
struct Kept {
    seq: u64,
    item: ItemId,
    details: Option<Box<str>>,
}

/// One outcome (a rejection reason, or acceptance): its exact count and the events kept.
#[derive(Debug, Default)]
struct Outcome {
    count: u64,
    kept: Vec<Kept>,
}

/// The events of one step.
#[derive(Debug)]
pub(crate) struct Recorder {
    pub(crate) capture: Capture,
    max_details: usize,
    rng: u64,
    seq: u64,
    reasons: Vec<(Box<str>, Outcome)>,
    /// The address and length of the text each of the first reasons was last given as.
    seen: Vec<(usize, usize)>,
    index: HashMap<Box<str>, usize>,
    accepted: Outcome,
    /// Reused for serialising details, so a kept event allocates only its exact-size text.
    scratch: Vec<u8>,
    /// Events kept so far (including those later replaced), for the allocation test.
    #[cfg(test)]
    kept_events: u64,
}

impl Recorder {
    pub(crate) fn new(capture: Capture, max_details: usize, seed: u64) -> Recorder {
        Recorder {
            capture,
            max_details,
            rng: seed | 1,
            seq: 0,
            reasons: Vec::new(),
            seen: Vec::new(),
            index: HashMap::new(),
            accepted: Outcome::default(),
            scratch: Vec::new(),
            #[cfg(test)]
            kept_events: 0,
        }
    }

    /// A uniform number in `0..n` (xorshift64* and a multiply-shift; no allocation, no lock).
    fn below(&mut self, n: u64) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        ((u128::from(r) * u128::from(n)) >> 64) as u64
    }

    fn reason_slot(&mut self, reason: &str) -> usize {
        // Reasons are nearly always string literals: the same pointer each call. Compare
        // pointers first, text second.
        let key = (reason.as_ptr() as usize, reason.len());
        if let Some(i) = self.seen.iter().position(|k| *k == key) {
            // The same address can hold other text by now (a freed `String`): check it.
            if &*self.reasons[i].0 == reason {
                return i;
            }
        }
        let found = if self.reasons.len() <= SCAN_LIMIT {
            self.reasons.iter().position(|(r, _)| &**r == reason)
        } else {
            self.index.get(reason).copied()
        };
        let i = match found {
            Some(i) => i,
            None => {
                let i = self.reasons.len();
                self.reasons.push((reason.into(), Outcome::default()));
                if self.seen.len() < SCAN_LIMIT {
                    self.seen.push((0, 0));
                }
                if self.reasons.len() > SCAN_LIMIT {
                    if self.index.is_empty() {
                        for (j, (r, _)) in self.reasons.iter().enumerate() {
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
            self.seen[i] = key;
        }
        i
    }

    /// Counts a rejection and keeps it if the capture level and the sampler say so.
    pub(crate) fn reject<D: Serialize + ?Sized>(
        &mut self,
        item: impl Into<ItemId>,
        reason: &str,
        details: &D,
    ) {
        let target = Target::Reason(self.reason_slot(reason));
        if let Some(place) = self.decide(target) {
            let details = capped_json(&mut self.scratch, details, self.max_details);
            self.keep(target, place, item.into(), details);
        }
    }

    /// Counts `n` rejections for which no item is known.
    pub(crate) fn reject_count(&mut self, reason: &str, n: u64) {
        let slot = self.reason_slot(reason);
        self.reasons[slot].1.count = self.reasons[slot].1.count.saturating_add(n);
    }

    /// Counts an acceptance and keeps it if the capture level and the sampler say so.
    pub(crate) fn accept<D: Serialize + ?Sized>(
        &mut self,
        item: impl Into<ItemId>,
        details: Option<&D>,
    ) {
        if let Some(place) = self.decide(Target::Accepted) {
            let details = details.and_then(|d| capped_json(&mut self.scratch, d, self.max_details));
            self.keep(Target::Accepted, place, item.into(), details);
        }
    }

    fn outcome(&mut self, target: Target) -> &mut Outcome {
        match target {
            Target::Reason(i) => &mut self.reasons[i].1,
            Target::Accepted => &mut self.accepted,
        }
    }

    /// Counts one event; says where to keep it, if at all.
    fn decide(&mut self, target: Target) -> Option<Place> {
        let seq = self.seq;
        self.seq += 1;
        let (count, kept) = {
            let o = self.outcome(target);
            o.count += 1;
            (o.count, o.kept.len())
        };
        let room = match target {
            Target::Accepted => ACCEPTANCES_KEPT,
            Target::Reason(_) => SAMPLES_PER_REASON,
        };
        match self.capture {
            Capture::Minimal => None,
            Capture::Full => Some(Place::Push(seq)),
            Capture::Sample if kept < room => Some(Place::Push(seq)),
            Capture::Sample => {
                let j = self.below(count) as usize;
                (j < room).then_some(Place::Replace(j, seq))
            }
        }
    }

    fn keep(&mut self, target: Target, place: Place, item: ItemId, details: Option<Box<str>>) {
        #[cfg(test)]
        {
            self.kept_events += 1;
        }
        let o = self.outcome(target);
        match place {
            Place::Push(seq) => o.kept.push(Kept { seq, item, details }),
            Place::Replace(j, seq) => o.kept[j] = Kept { seq, item, details },
        }
    }

    /// Exact counts and kept samples (in order of arrival), by reason.
    pub(crate) fn rejections(&mut self) -> BTreeMap<String, ReasonSummary> {
        self.seen.clear();
        self.reasons
            .drain(..)
            .map(|(reason, o)| (reason.into(), o.into_summary()))
            .collect()
    }

    /// Exact count and kept samples of acceptances.
    pub(crate) fn acceptances(&mut self) -> ReasonSummary {
        std::mem::take(&mut self.accepted).into_summary()
    }

    /// Moves everything recorded out, leaving an empty recorder (no allocation).
    pub(crate) fn take(&mut self) -> Recorder {
        let empty = Recorder::new(self.capture, self.max_details, self.rng);
        std::mem::replace(self, empty)
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

impl Outcome {
    fn into_summary(mut self) -> ReasonSummary {
        self.kept.sort_unstable_by_key(|k| k.seq);
        ReasonSummary {
            count: self.count,
            samples: self
                .kept
                .into_iter()
                .map(|k| Sample {
                    item_id: k.item,
                    details: k.details.map(to_json_text),
                })
                .collect(),
        }
    }
}

/// Collects serialised JSON and stops the serialiser once `max` bytes are written, so recording
/// a huge value costs no more than recording `max` bytes of it.
struct Capped<'a> {
    buf: &'a mut Vec<u8>,
    max: usize,
    over: bool,
}

impl std::io::Write for Capped<'_> {
    #[inline]
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.write_all(data).map(|()| data.len())
    }

    /// serde_json writes through `write_all`, many small pieces per value: one length check and
    /// a copy each, without the default loop.
    #[inline]
    fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        if self.buf.len() + data.len() > self.max {
            self.over = true;
            let room = self.max.saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&data[..room]);
            return Err(std::io::Error::other("over the size limit"));
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What stands in for a value whose JSON is over the limit: a note and the start of the JSON.
fn truncated(partial: &[u8], max: usize) -> Box<str> {
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
    .into_boxed_str()
}

/// A value as JSON text, serialised once into `scratch` and capped at `max` bytes.
///
/// `null` is no value. A value that cannot be serialised becomes `{"_xray_error": "..."}`. A value
/// whose JSON is over `max` bytes becomes `{"_xray_truncated": true, "limit_bytes": max,
/// "preview": "<its first max/2 bytes>"}`; serialisation stops at the limit, so the cost is
/// bounded too. Item details are capped at `Config::max_details_bytes`, inputs and outputs at
/// `Config::max_io_bytes`.
pub(crate) fn capped_json<T: Serialize + ?Sized>(
    scratch: &mut Vec<u8>,
    value: &T,
    max: usize,
) -> Option<Box<str>> {
    scratch.clear();
    let mut out = Capped {
        buf: scratch,
        max,
        over: false,
    };
    if let Err(e) = serde_json::to_writer(&mut out, value) {
        if out.over {
            return Some(truncated(out.buf, max));
        }
        let error = serde_json::json!({"_xray_error": format!("could not be serialised: {e}")});
        return Some(error.to_string().into_boxed_str());
    }
    let text = std::str::from_utf8(out.buf).ok()?;
    (text != "null").then(|| text.into())
}

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
    capped_json(&mut Vec::new(), details, max).and_then(|text| serde_json::from_str(&text).ok())
}

#[cfg(test)]
mod tests {
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

    fn allocations() -> u64 {
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
        let (before, kept_before) = (allocations(), r.kept_events);
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
        let (allocated, kept) = (allocations() - before, r.kept_events - kept_before);
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
    fn details_are_capped_and_never_fail() {
        let big = "é".repeat(5000);
        let v = details_json(&json!({"text": big}), 1000).unwrap();
        assert_eq!(v["_xray_truncated"], true);
        assert_eq!(v["limit_bytes"], 1000);
        assert!(v["preview"].as_str().unwrap().starts_with("{\"text\":\"éé"));
        assert!(v["preview"].as_str().unwrap().len() <= 500);
        let huge: Vec<u64> = (0..1_000_000).collect();
        let text = capped_json(&mut Vec::new(), &huge, 32 * 1024).unwrap();
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
