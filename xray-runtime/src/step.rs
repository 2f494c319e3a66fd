//! Steps: one stage of a run, with what it rejected, accepted and decided, and why.

use crate::client::{Core, XRay};
use crate::context::{Context, Entered};
use crate::item::IntoItemId;
use crate::local::Local;
use crate::run::{new_id, Run, RunGuard, RunShared};
use crate::sampling::{
    capped_json, details_json, to_json_text, Clock, Counted, Place, Recorded, Recorder, Target,
};
use crate::transport::Outgoing;
use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt::Display;
use std::mem::MaybeUninit;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use xray_wire::{
    Capture, Decision, Event, JsonText, Name, StepFinished, StepRecord, StepType, Timestamp,
};

pub(crate) struct StepShared {
    run: Arc<RunShared>,
    step_id: Arc<str>,
    position: u32,
    name: Arc<str>,
    step_type: StepType,
    started_at: Timestamp,
    started: Instant,
    /// The step's capture level.
    capture: Capture,
    /// Orders the kept events of the shared recorder against the owner thread's.
    clock: Arc<AtomicU64>,
    data: Mutex<StepData>,
}

struct StepData {
    /// What other threads and handles record, made on the first such event (most steps
    /// record only on the thread that opened them, through the guard).
    rec: Option<Box<Recorder>>,
    told: Told,
    finished: bool,
    /// The box the finished step will travel to the shipper in, allocated when the step opens:
    /// closing the step then allocates nothing (see [`Finished`]; a step that is a run of its
    /// own copies its output and error for the run).
    spare: Option<Box<MaybeUninit<Finished>>>,
}

/// What a step is told about itself while it runs (through its guard and handles), moved whole
/// into its [`Finished`] record when it ends.
#[derive(Default)]
struct Told {
    input_count: Option<u64>,
    output_count: Option<u64>,
    /// Input and output as capped JSON text (checked and wrapped on the shipper's thread).
    input: Option<Box<str>>,
    output: Option<Box<str>>,
    decision: Option<Decision>,
    error: Option<String>,
    attributes: Map<String, Value>,
}

impl StepShared {
    fn data(&self) -> MutexGuard<'_, StepData> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn max_details(&self) -> usize {
        self.run.core.config.max_details_bytes
    }

    fn max_io(&self) -> usize {
        self.run.core.config.max_io_bytes
    }

    /// The shared recorder, made if this is its first event.
    fn recorder<'d>(&self, d: &'d mut StepData) -> &'d mut Recorder {
        d.rec.get_or_insert_with(|| {
            let core: &Core = &self.run.core;
            Box::new(
                Recorder::new(self.capture, core.config.max_details_bytes, core.seed())
                    .pooled(core.buffers.clone())
                    .clocked(Clock::Others(self.clock.clone())),
            )
        })
    }

    /// Ends the step once and ships it, with what the owner thread recorded on its own;
    /// returns a copy of its output and error for the run it is (`for_run`).
    fn finish(&self, local: Recorder, for_run: bool) -> (Option<Box<str>>, Option<String>) {
        let mut d = self.data();
        if d.finished {
            return (None, None);
        }
        d.finished = true;
        if d.told.error.is_none() && std::thread::panicking() {
            d.told.error = Some(crate::panics::error());
        }
        let capture = local.capture;
        let rec = match d.rec.take() {
            Some(shared) => Recorder::merge(*shared, local),
            None => local,
        };
        let rec = rec.into_recorded();
        let rejected = rec.rejected_total();
        let accepted = rec.accepted_total();
        let told = &mut d.told;
        told.input_count = told.input_count.or_else(|| {
            let total = rejected.saturating_add(accepted);
            (total > 0).then_some(total)
        });
        let (input_count, decided) = (told.input_count, told.decision.is_some());
        told.output_count = told.output_count.or_else(|| {
            if decided {
                Some(1)
            } else if accepted > 0 {
                Some(accepted)
            } else if rejected > 0 {
                input_count.map(|i| i.saturating_sub(rejected))
            } else {
                None
            }
        });
        // The output and error go to the step's record, and are copied for the run only when the
        // step is a run of its own.
        let result = if for_run {
            (told.output.clone(), told.error.clone())
        } else {
            (None, None)
        };
        let told = std::mem::take(told);
        let spare = d.spare.take();
        drop(d);
        // Everything else (the record's texts, sorting and grouping the samples) is left to
        // the shipper's thread: closing the step moves what it recorded into the box allocated
        // when it opened.
        let finished = Finished {
            step_id: self.step_id.clone(),
            name: self.name.clone(),
            run_id: self.run.run_id.clone(),
            pipeline: self.run.pipeline.clone(),
            position: self.position,
            step_type: self.step_type,
            capture,
            started_at: self.started_at,
            elapsed: self.started.elapsed(),
            told,
            rec,
        };
        let core = &self.run.core;
        let mut boxed = spare.unwrap_or_else(Box::new_uninit);
        boxed.write(finished);
        // SAFETY: the box was just written.
        let boxed = unsafe { boxed.assume_init() };
        core.shipper.send(Outgoing::Step(boxed));
        result
    }
}

/// A finished step on its way to the shipper's thread, which lays it out as its wire record
/// (the record's texts, the samples sorted and grouped): closing the step only moves it, into
/// a box allocated when the step opened. A block allocated at the close and freed by the
/// shipper's thread (a block freed on another thread goes back to its arena under the
/// allocator's lock) made the close wait, now and then, for that lock.
pub(crate) struct Finished {
    step_id: Arc<str>,
    name: Arc<str>,
    run_id: Arc<str>,
    pipeline: Arc<str>,
    position: u32,
    step_type: StepType,
    capture: Capture,
    started_at: Timestamp,
    elapsed: Duration,
    /// What it was told, with the counts derived from its events where none were given.
    told: Told,
    rec: Recorded,
}

impl Finished {
    /// The step's wire event.
    pub(crate) fn into_event(self) -> Event {
        let Finished {
            mut rec,
            elapsed,
            told,
            ..
        } = self;
        let step = StepRecord {
            step_id: Some(Name::fit(&*self.step_id)),
            position: Some(self.position),
            name: Name::fit(&*self.name),
            step_type: self.step_type,
            capture: self.capture,
            input_count: told.input_count,
            output_count: told.output_count,
            started_at: Some(self.started_at),
            ended_at: Some(self.started_at + elapsed),
            duration_ms: Some(elapsed.as_secs_f64() * 1000.0),
            input: told.input.map(to_json_text),
            output: told.output.map(to_json_text),
            rejections: rec.rejections(),
            acceptances: rec.acceptances(),
            decision: told.decision,
            error: told.error,
            attributes: if told.attributes.is_empty() {
                None
            } else {
                JsonText::of(&told.attributes)
            },
        };
        Event::StepFinished(Box::new(StepFinished {
            run_id: Name::fit(&*self.run_id),
            pipeline: Name::fit(&*self.pipeline),
            step,
        }))
    }
}

/// A handle on a step: cheap to clone, usable from any thread. Every method is a no-op on a
/// handle with no step behind it ([`crate::current_step`] outside any step), and after the step
/// has ended.
#[derive(Clone, Default)]
pub struct Step {
    shared: Option<Arc<StepShared>>,
}

impl Step {
    /// A handle that records nothing.
    pub fn none() -> Step {
        Step::default()
    }

    /// Whether this handle records into a step.
    pub fn is_recording(&self) -> bool {
        self.shared.is_some()
    }

    /// The step's id.
    pub fn id(&self) -> Option<&str> {
        self.shared.as_ref().map(|s| &*s.step_id)
    }

    /// The run the step belongs to.
    pub fn run(&self) -> Run {
        Run {
            shared: self.shared.as_ref().map(|s| s.run.clone()),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&StepShared, &mut StepData) -> R) -> Option<R> {
        let shared = self.shared.as_deref()?;
        let mut data = shared.data();
        if data.finished {
            return None;
        }
        Some(f(shared, &mut data))
    }

    /// Records that `item` was rejected for `reason`, with details (anything `Serialize`; `()`
    /// for none). The count is exact; the item and details are kept per the capture level.
    /// An empty reason or item id, one over 512 bytes or one with a NUL is sent fitted, not
    /// refused ([`crate::wire::fit_name`]: `(empty)`, cut to end in `…`, NUL as U+FFFD).
    #[inline]
    pub fn reject<D: Serialize>(&self, item: impl IntoItemId, reason: &str, details: D) {
        self.with(|s, d| s.recorder(d).reject(item, reason, &details));
    }

    /// Counts `n` rejections for `reason` without naming the items (the reason fitted as in
    /// [`Self::reject`]).
    pub fn reject_count(&self, reason: &str, n: u64) {
        self.with(|s, d| s.recorder(d).reject_count(reason, n));
    }

    /// Records that `item` was let through (its id fitted as in [`Self::reject`]).
    #[inline]
    pub fn accept(&self, item: impl IntoItemId) {
        self.with(|s, d| s.recorder(d).accept::<()>(item, None));
    }

    /// Records that `item` was let through, with details.
    pub fn accept_with<D: Serialize>(&self, item: impl IntoItemId, details: D) {
        self.with(|s, d| s.recorder(d).accept(item, Some(&details)));
    }

    /// Records what the step chose, its score and why. The last decision stands. An empty
    /// `selected`, one over 512 bytes or with a NUL is sent fitted ([`crate::wire::fit_name`]).
    pub fn decide<D: Serialize>(&self, selected: impl IntoItemId, score: f64, details: D) {
        self.with(|s, d| {
            d.told.decision = Some(Decision {
                selected: Some(selected.into_item_id()),
                score: score.is_finite().then_some(score),
                details: details_json(&details, s.max_details()),
            })
        });
    }

    /// Sets the counts only where the body did not set them (used by the attributes).
    pub(crate) fn infer_counts(&self, input: Option<usize>, output: Option<usize>) {
        self.with(|_, d| {
            if d.told.input_count.is_none() {
                d.told.input_count = input.map(|n| n as u64);
            }
            if d.told.output_count.is_none() {
                d.told.output_count = output.map(|n| n as u64);
            }
        });
    }

    /// Items in (derived from the events when not set).
    pub fn set_input_count(&self, n: u64) {
        self.with(|_, d| d.told.input_count = Some(n));
    }

    /// Items out (derived from the events when not set).
    pub fn set_output_count(&self, n: u64) {
        self.with(|_, d| d.told.output_count = Some(n));
    }

    /// The step's input (anything `Serialize`; capped at `Config::max_io_bytes`).
    pub fn set_input<T: Serialize>(&self, input: T) {
        self.with(|s, d| d.told.input = capped_json(&input, s.max_io()));
    }

    /// The step's output (anything `Serialize`; capped at `Config::max_io_bytes`).
    pub fn set_output<T: Serialize>(&self, output: T) {
        self.with(|s, d| d.told.output = capped_json(&output, s.max_io()));
    }

    /// Input or output already as capped JSON text (from the attributes).
    pub(crate) fn set_io_text(&self, input: Option<Box<str>>, output: Option<Box<str>>) {
        self.with(|_, d| {
            if input.is_some() {
                d.told.input = input;
            }
            if output.is_some() {
                d.told.output = output;
            }
        });
    }

    /// A free-form attribute (`model`, `temperature`, `threshold`…).
    pub fn set_attribute<T: Serialize>(&self, key: &str, value: T) {
        self.with(|s, d| {
            let value = details_json(&value, s.max_details()).unwrap_or(Value::Null);
            d.told.attributes.insert(key.into(), value)
        });
    }

    /// Marks the step failed with this error (a NUL in it is sent as U+FFFD, not refused).
    pub fn set_error(&self, error: impl Display) {
        self.with(|_, d| d.told.error = Some(error.to_string()));
    }

    /// Makes this step (and its run) current on this thread until the guard drops.
    pub fn enter(&self) -> Entered {
        Context::of_step(self.clone()).enter()
    }

    /// Runs `f` with this step current.
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        Context::of_step(self.clone()).in_scope(f)
    }
}

/// An open step. It ends when finished or dropped (failed if an error was set or the thread is
/// panicking). Derefs to [`Step`] for recording.
#[must_use = "the step ends when this guard is dropped"]
pub struct StepGuard {
    step: Step,
    /// The run this step opened for itself, when it was opened outside any run.
    own_run: Option<RunGuard>,
    /// What the guard records on the thread that opened the step, without a lock.
    local: Local,
}

impl StepGuard {
    pub(crate) fn open(
        run: Arc<RunShared>,
        name: String,
        step_type: StepType,
        capture: Option<Capture>,
    ) -> StepGuard {
        crate::panics::forget();
        let core: &Core = &run.core;
        let capture = capture.unwrap_or(core.config.capture);
        let clock = Arc::new(AtomicU64::new(0));
        let local = Local::new(
            Recorder::new(capture, core.config.max_details_bytes, core.seed())
                .pooled(core.buffers.clone())
                .clocked(Clock::Owner(clock.clone())),
            true,
        );
        let shared = StepShared {
            step_id: new_id(),
            position: run.next_position(),
            name: name.into(),
            step_type,
            started_at: chrono::Utc::now(),
            started: Instant::now(),
            capture,
            clock,
            data: Mutex::new(StepData {
                rec: None,
                told: Told::default(),
                finished: false,
                spare: Some(Box::new_uninit()),
            }),
            run,
        };
        StepGuard {
            step: Step {
                shared: Some(Arc::new(shared)),
            },
            own_run: None,
            local,
        }
    }

    /// A step opened outside any run becomes a one-step run of its own, in the default client's
    /// default pipeline (`XRAY_PIPELINE`, else `default`), so nothing it records is lost. The
    /// run ends with the step and takes its output and error.
    pub(crate) fn detached(
        name: String,
        step_type: StepType,
        capture: Option<Capture>,
    ) -> StepGuard {
        let core = Core::default_core();
        let client = XRay::new(core.config.default_pipeline.clone());
        let run = client.run(());
        let shared = run.shared.clone();
        let mut guard = match shared {
            Some(s) => StepGuard::open(s, name, step_type, capture),
            None => {
                return StepGuard {
                    step: Step::none(),
                    own_run: None,
                    local: Local::new(Recorder::new(Capture::Minimal, 0, 0), false),
                }
            }
        };
        guard.own_run = Some(run);
        guard
    }

    /// A handle on this step, to pass around or into threads.
    pub fn handle(&self) -> Step {
        self.step.clone()
    }

    /// [`Step::reject`]. On the thread that opened the step it takes no lock. A bad reason or
    /// item id (empty, over 512 bytes, NUL) is fitted when the step ships, never refused.
    #[inline]
    pub fn reject<D: Serialize>(&self, item: impl IntoItemId, reason: &str, details: D) {
        // The details stay where the caller put them and go down by reference: moved into
        // the recording call, a small value written field by field is read back as one wide
        // load, which waits for the writes to retire (a store-forwarding stall).
        let details = &details;
        // Most events are only counted: that runs without marking the recorder busy and
        // calls nothing, so it needs no registers saved. Keeping one is marked busy around
        // an out-of-line call; a reason not known by its literal address (every reason off
        // Linux, and text built at run time) goes out of line whole, where it is looked up
        // again.
        // SAFETY: `count_reject` runs only its own arithmetic on the recorder and cannot panic.
        match unsafe { self.local.quick(|rec| rec.count_reject(reason)) } {
            Some(Counted::Done) => {}
            Some(Counted::Keep(target, place)) => {
                self.keep_marked(target, place, item, Some(details))
            }
            Some(Counted::Unfound) | None => self.reject_slow(item, reason, details),
        }
    }

    /// [`Self::reject`] for an event the quick path did not count.
    #[inline(never)]
    fn reject_slow<D: Serialize>(&self, item: impl IntoItemId, reason: &str, details: &D) {
        if let Err(item) = self
            .local
            .with(item, |rec, item| rec.reject(item, reason, details))
        {
            self.step
                .with(|s, d| s.recorder(d).reject(item, reason, details));
        }
    }

    /// Keeps an event the quick path counted, on the owner's recorder marked busy (the
    /// details' and the id's code run).
    #[inline(always)]
    fn keep_marked<D: Serialize + ?Sized>(
        &self,
        target: Target,
        place: Place,
        item: impl IntoItemId,
        details: Option<&D>,
    ) {
        // It cannot find the recorder busy or another thread's: the quick path just found it
        // this thread's and free, and nothing ran since. Were it so, the event would stay
        // counted and not kept.
        let kept = self.local.with(item, |rec, item| {
            rec.keep_counted(target, place, item, details)
        });
        debug_assert!(
            kept.is_ok(),
            "the owner's recorder was taken since it counted"
        );
    }

    /// [`Step::reject_count`]. On the thread that opened the step it takes no lock.
    pub fn reject_count(&self, reason: &str, n: u64) {
        if self
            .local
            .with((), |rec, ()| rec.reject_count(reason, n))
            .is_err()
        {
            self.step.reject_count(reason, n);
        }
    }

    /// [`Step::accept`]. On the thread that opened the step it takes no lock.
    #[inline]
    pub fn accept(&self, item: impl IntoItemId) {
        self.accept_maybe_with::<()>(item, None);
    }

    /// [`Step::accept_with`]. On the thread that opened the step it takes no lock.
    pub fn accept_with<D: Serialize>(&self, item: impl IntoItemId, details: D) {
        self.accept_maybe_with(item, Some(&details));
    }

    /// [`Self::accept`] and [`Self::accept_with`].
    #[inline(always)]
    fn accept_maybe_with<D: Serialize + ?Sized>(&self, item: impl IntoItemId, details: Option<&D>) {
        // SAFETY: `count_accept` runs only its own arithmetic on the recorder and cannot panic.
        match unsafe { self.local.quick(Recorder::count_accept) } {
            Some(Counted::Done) => {}
            Some(Counted::Keep(target, place)) => self.keep_marked(target, place, item, details),
            // (`count_accept` always counts.)
            Some(Counted::Unfound) | None => {
                self.step.with(|s, d| s.recorder(d).accept(item, details));
            }
        }
    }

    /// Ends the step now.
    pub fn finish(self) {}

    /// Ends the step as failed with this error (a NUL in it is sent as U+FFFD, not refused).
    pub fn fail(self, error: impl Display) {
        self.step.set_error(error);
    }
}

impl std::ops::Deref for StepGuard {
    type Target = Step;
    fn deref(&self) -> &Step {
        &self.step
    }
}

impl Drop for StepGuard {
    fn drop(&mut self) {
        let Some(shared) = &self.step.shared else {
            return;
        };
        let (output, error) = shared.finish(self.local.take(), self.own_run.is_some());
        if let Some(run) = self.own_run.take() {
            if output.is_some() {
                run.set_output_text(output);
            }
            if let Some(error) = error {
                run.set_error(error);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::sampling::tests::allocations;
    use crate::{OfflineMode, StepType, XRay};
    use std::time::Duration;

    #[test]
    fn closing_a_step_allocates_nothing_on_its_thread() {
        let xray = XRay::builder()
            .endpoint("http://127.0.0.1:9")
            .offline_mode(OfflineMode::Silent)
            .max_attempts(1)
            .client("close");
        let run = xray.run(());
        for n in 0..3u64 {
            let step = run.step("filter", StepType::Filter);
            for i in 0..500u64 {
                step.reject(i, "too_far", ("km", i));
            }
            step.accept(n);
            if n == 1 {
                // Set before the close: they go to the record as they are, not copied.
                step.set_output(["a", "b"]);
                step.set_error("no candidate left");
            }
            let before = allocations();
            drop(step);
            assert_eq!(allocations() - before, 0, "allocations closing step {n}");
        }
        drop(run);
        let _ = xray.flush(Duration::from_secs(5));
        assert_eq!(
            xray.stats().dropped,
            5,
            "the run's start and end and its three steps went out"
        );
    }
}
