//! Steps: one stage of a run, with what it rejected, accepted and decided, and why. A step has
//! one recorder behind its lock, which handles and other threads record into; a guard records
//! on its own thread without the lock (it is `Send` but not `Sync`) and hands over when it ends.
//! Laying the finished step out as its wire record is left to the shipper's thread. The guard
//! is in `guard.rs`.

use crate::client::Core;
use crate::context::{Context, Entered};
use crate::item::IntoItemId;
use crate::json::{capped_json, details_json, to_json_text};
use crate::lock;
use crate::run::{new_id, Run, RunShared};
use crate::sampling::Recorder;
use crate::transport::Outgoing;
use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt::Display;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use xray_wire::{
    Capture, Decision, Event, JsonText, Name, StepFinished, StepRecord, StepType, Timestamp,
};

pub(crate) struct StepShared {
    run: Arc<RunShared>,
    meta: Meta,
    started: Instant,
    /// The step's capture level.
    capture: Capture,
    /// Orders the kept events of all the step's recorders.
    clock: Arc<AtomicU64>,
    data: Mutex<StepData>,
}

/// What a step is, fixed when it opens; its [`Finished`] record takes a copy.
#[derive(Clone)]
struct Meta {
    step_id: Arc<str>,
    name: Arc<str>,
    run_id: Arc<str>,
    pipeline: Arc<str>,
    position: u32,
    step_type: StepType,
    started_at: Timestamp,
}

struct StepData {
    /// What handles recorded and guards handed over (made on the first such event).
    rec: Option<Recorder>,
    told: Told,
    finished: bool,
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
    /// How many of a rank step's items go on (default: the output count).
    cutoff: Option<u64>,
    error: Option<String>,
    attributes: Map<String, Value>,
}

impl StepShared {
    /// A new step of `run`, started now.
    pub(crate) fn new(
        run: Arc<RunShared>,
        name: String,
        step_type: StepType,
        capture: Option<Capture>,
    ) -> Arc<StepShared> {
        Arc::new(StepShared {
            meta: Meta {
                step_id: new_id(),
                name: name.into(),
                run_id: run.run_id.clone(),
                pipeline: run.pipeline.clone(),
                position: run.next_position(),
                step_type,
                started_at: chrono::Utc::now(),
            },
            started: Instant::now(),
            capture: capture.unwrap_or(run.core.config.capture),
            clock: Arc::default(),
            data: Mutex::new(StepData {
                rec: None,
                told: Told::default(),
                finished: false,
            }),
            run,
        })
    }

    fn max_details(&self) -> usize {
        self.run.core.config.max_details_bytes
    }

    fn max_io(&self) -> usize {
        self.run.core.config.max_io_bytes
    }

    /// A new, empty recorder for this step.
    pub(crate) fn new_recorder(&self) -> Recorder {
        let core: &Core = &self.run.core;
        Recorder::new(
            self.capture,
            core.config.max_details_bytes,
            core.seed(),
            self.clock.clone(),
        )
    }

    /// Adds what a guard recorded on its own to the step (nothing once the step has ended).
    pub(crate) fn hand_over(&self, local: Recorder) {
        if local.is_empty() {
            return;
        }
        let mut d = lock(&self.data);
        if !d.finished {
            d.rec = Some(match d.rec.take() {
                Some(rec) => Recorder::merge(rec, local),
                None => local,
            });
        }
    }

    /// Ends the step once and ships it; returns a copy of its output and error for the run it
    /// is (`for_run`).
    pub(crate) fn finish(&self, for_run: bool) -> (Option<Box<str>>, Option<String>) {
        let mut d = lock(&self.data);
        if std::mem::replace(&mut d.finished, true) {
            return (None, None);
        }
        crate::panics::note(&mut d.told.error);
        let rec = d.rec.take().unwrap_or_else(|| self.new_recorder());
        let rejected = rec.rejected_total();
        let accepted = rec.accepted_total();
        let ranked = rec.ranked_total();
        let told = &mut d.told;
        told.input_count = told.input_count.or_else(|| {
            let total = rejected.saturating_add(accepted);
            (total > 0)
                .then_some(total)
                .or((ranked > 0).then_some(ranked))
        });
        let cutoff = told.cutoff;
        let (input_count, decided) = (told.input_count, told.decision.is_some());
        told.output_count = told.output_count.or_else(|| {
            if decided {
                Some(1)
            } else if accepted > 0 {
                Some(accepted)
            } else if rejected > 0 {
                input_count.map(|i| i.saturating_sub(rejected))
            } else {
                cutoff
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
        drop(d);
        let finished = Finished {
            meta: self.meta.clone(),
            elapsed: self.started.elapsed(),
            told,
            rec,
        };
        self.run
            .core
            .shipper
            .send(Outgoing::Step(Box::new(finished)));
        result
    }
}

/// A finished step on its way to the shipper's thread, which lays it out as its wire record
/// (the record's texts, the samples sorted and grouped): closing the step only moves it.
pub(crate) struct Finished {
    meta: Meta,
    elapsed: Duration,
    /// What it was told, with the counts derived from its events where none were given.
    told: Told,
    rec: Recorder,
}

impl Finished {
    /// The step's wire event.
    pub(crate) fn into_event(self) -> Event {
        let Finished {
            meta,
            mut rec,
            elapsed,
            told,
        } = self;
        let step = StepRecord {
            step_id: Some(Name::fit(&*meta.step_id)),
            position: Some(meta.position),
            name: Name::fit(&*meta.name),
            step_type: meta.step_type,
            capture: rec.capture(),
            input_count: told.input_count,
            output_count: told.output_count,
            started_at: Some(meta.started_at),
            ended_at: Some(meta.started_at + elapsed),
            duration_ms: Some(elapsed.as_secs_f64() * 1000.0),
            input: told.input.map(to_json_text),
            output: told.output.map(to_json_text),
            rejections: rec.rejections(),
            acceptances: rec.acceptances(),
            ranking: rec
                .take_ranks()
                .map(|r| r.into_wire(told.cutoff.or(told.output_count))),
            decision: told.decision,
            error: told.error,
            attributes: Some(&told.attributes)
                .filter(|a| !a.is_empty())
                .and_then(JsonText::of),
        };
        Event::StepFinished(Box::new(StepFinished {
            run_id: Name::fit(&*meta.run_id),
            pipeline: Name::fit(&*meta.pipeline),
            step,
        }))
    }
}

/// The recording methods of [`Step`] and [`StepGuard`](crate::StepGuard), defined once for both:
/// each goes through its type's `record`, which lends it a recorder (the guard's own, or the
/// step's behind its lock).
macro_rules! recording_methods {
    () => {
        /// Records that `item` was rejected for `reason`, with details (anything `Serialize`;
        /// `()` for none). The count is exact; the item and details are kept per the capture
        /// level. An empty reason or item id, one over 512 bytes or one with a NUL is sent
        /// fitted, not refused ([`crate::wire::fit_name`]: `(empty)`, cut to end in `…`, NUL
        /// as U+FFFD).
        #[inline(always)]
        pub fn reject<D: serde::Serialize>(
            &self,
            item: impl crate::IntoItemId,
            reason: &str,
            details: D,
        ) {
            self.record(
                #[inline(always)]
                |r| r.reject(item, reason, &details),
            );
        }

        /// Counts `n` rejections for `reason` without naming the items (the reason fitted as
        /// in [`Self::reject`]).
        pub fn reject_count(&self, reason: &str, n: u64) {
            self.record(|r| r.reject_count(reason, n));
        }

        /// Records that `item` was let through (its id fitted as in [`Self::reject`]).
        #[inline(always)]
        pub fn accept(&self, item: impl crate::IntoItemId) {
            self.record(
                #[inline(always)]
                |r| r.accept::<()>(item, None),
            );
        }

        /// Records that `item` was let through, with details.
        pub fn accept_with<D: serde::Serialize>(&self, item: impl crate::IntoItemId, details: D) {
            self.record(|r| r.accept(item, Some(&details)));
        }

        /// Records where `item` landed in a rank step's ranking (`position` from 1) and its
        /// score. The count is exact; the item is kept per the capture level: at `sample`,
        /// every item of the top 50 positions and a uniform sample of 50 of the rest. An item
        /// at position 0 or with a score that is not a finite number is counted, not kept.
        #[inline]
        pub fn rank(&self, item: impl crate::IntoItemId, position: u64, score: f64) {
            self.record(|r| r.rank::<()>(item, position, score, None));
        }

        /// [`Self::rank`] with details (anything `Serialize`).
        pub fn rank_with<D: serde::Serialize>(
            &self,
            item: impl crate::IntoItemId,
            position: u64,
            score: f64,
            details: D,
        ) {
            self.record(|r| r.rank(item, position, score, Some(&details)));
        }
    };
}
pub(crate) use recording_methods;

/// A handle on a step: cheap to clone, usable from any thread. Every method is a no-op on a
/// handle with no step behind it ([`crate::current_step`] outside any step), and after the step
/// has ended.
#[derive(Clone, Default)]
pub struct Step {
    pub(crate) shared: Option<Arc<StepShared>>,
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
        self.shared.as_ref().map(|s| &*s.meta.step_id)
    }

    /// The run the step belongs to.
    pub fn run(&self) -> Run {
        Run {
            shared: self.shared.as_ref().map(|s| s.run.clone()),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&StepShared, &mut StepData) -> R) -> Option<R> {
        let shared = self.shared.as_deref()?;
        let mut data = lock(&shared.data);
        if data.finished {
            return None;
        }
        Some(f(shared, &mut data))
    }

    /// Records into the step's recorder (made on its first event), under its lock.
    #[inline]
    pub(crate) fn record(&self, f: impl FnOnce(&mut Recorder)) {
        self.with(|s, d| f(d.rec.get_or_insert_with(|| s.new_recorder())));
    }

    recording_methods!();

    /// Records what the step chose, its score and why. The last decision stands. An empty
    /// `selected`, one over 512 bytes or with a NUL is sent fitted ([`crate::wire::fit_name`]).
    pub fn decide<D: Serialize>(&self, selected: impl IntoItemId, score: f64, details: D) {
        self.with(|s, d| {
            d.told.decision = Some(Decision {
                selected: Some(selected.into_item_id()),
                score: score.is_finite().then_some(score),
                details: details_json(&details, s.max_details()),
                runner_up: None,
                runner_up_score: None,
            })
        });
    }

    /// The item that came second in a select step's decision, and its score: the step's
    /// close-call margin is the chosen score minus this (`GET /steps?margin_lt=`). Call it
    /// after [`Self::decide`].
    pub fn set_runner_up(&self, item: impl IntoItemId, score: f64) {
        self.with(|_, d| {
            if let Some(decision) = &mut d.told.decision {
                decision.runner_up = Some(item.into_item_id());
                decision.runner_up_score = score.is_finite().then_some(score);
            }
        });
    }

    /// How many of a rank step's items go on: positions `1..=k` (default: the output count).
    pub fn set_cutoff(&self, k: u64) {
        self.with(|_, d| d.told.cutoff = Some(k));
    }

    /// Sets the counts only where the body did not set them (used by the attributes).
    pub(crate) fn infer_counts(&self, input: Option<usize>, output: Option<usize>) {
        self.with(|_, d| {
            d.told.input_count = d.told.input_count.or(input.map(|n| n as u64));
            d.told.output_count = d.told.output_count.or(output.map(|n| n as u64));
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
            d.told.input = input.or(d.told.input.take());
            d.told.output = output.or(d.told.output.take());
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

#[cfg(test)]
mod tests {
    use crate::{Step, StepGuard};

    #[test]
    fn guards_go_to_other_threads_and_handles_are_shared_by_them() {
        fn send<T: Send>() {}
        fn send_sync<T: Send + Sync>() {}
        send::<StepGuard>();
        send_sync::<Step>();
    }
}
