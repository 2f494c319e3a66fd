//! [`StepGuard`]: an open step, recording on its own thread without the step's lock (it is
//! `Send` but not `Sync`) and handing what it recorded to the step when it drops.

use crate::run::{RunGuard, RunShared};
use crate::sampling::Recorder;
use crate::step::{recording_methods, Step, StepShared};
use std::cell::RefCell;
use std::fmt::Display;
use std::sync::Arc;
use xray_wire::{Capture, StepType};

/// An open step. It ends when finished or dropped (failed if an error was set or the thread is
/// panicking). Derefs to [`Step`] for the rest.
///
/// Recording through the guard takes no lock: it is `Send` but not `Sync`, so one thread at a
/// time records through it. Give other threads a [`StepGuard::handle`]. The `step` in the body of
/// a `#[xray::step]` function is a guard too, which hands what it recorded to the step when the
/// body ends (the step itself ends when the function returns).
#[must_use = "the step ends when this guard is dropped"]
pub struct StepGuard {
    step: Step,
    /// The run this step opened for itself, when it was opened outside any run.
    pub(crate) own_run: Option<RunGuard>,
    /// What the guard records, without a lock; handed to the step when the guard drops.
    local: RefCell<Recorder>,
    /// Whether dropping the guard ends the step (not for the attribute's `step` in a body).
    ends_step: bool,
}

impl StepGuard {
    pub(crate) fn open(
        run: Arc<RunShared>,
        name: String,
        step_type: StepType,
        capture: Option<Capture>,
    ) -> StepGuard {
        crate::panics::forget();
        let mut guard = StepGuard::of(Step {
            shared: Some(StepShared::new(run, name, step_type, capture)),
        });
        guard.ends_step = true;
        guard
    }

    /// A guard on a step that is open already, whose drop only hands over what it recorded
    /// (the `step` in an attribute's body).
    pub(crate) fn of(step: Step) -> StepGuard {
        let local = match &step.shared {
            Some(shared) => shared.new_recorder(),
            None => Recorder::new(Capture::Minimal, 0, 1, Arc::default()),
        };
        StepGuard {
            step,
            own_run: None,
            local: RefCell::new(local),
            ends_step: false,
        }
    }

    /// A handle on this step, to pass around or into threads.
    pub fn handle(&self) -> Step {
        self.step.clone()
    }

    /// Records into the guard's own recorder, unless it is in use further up this thread's
    /// stack (a `Serialize` of details that records into the same step): then the step's.
    #[inline(always)]
    fn record(&self, f: impl FnOnce(&mut Recorder)) {
        match self.local.try_borrow_mut() {
            Ok(mut rec) => f(&mut rec),
            Err(_) => locked(&self.step, f),
        }
    }

    recording_methods!();

    /// Ends the step now (for the `step` of an attribute's body: hands over what it recorded;
    /// the step ends when the function returns).
    pub fn finish(self) {}

    /// Ends the step as failed with this error (a NUL in it is sent as U+FFFD, not refused).
    pub fn fail(self, error: impl Display) {
        self.step.set_error(error);
    }
}

/// Records through the step's lock, out of the guard's inlined path.
#[cold]
#[inline(never)]
fn locked(step: &Step, f: impl FnOnce(&mut Recorder)) {
    step.record(f);
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
        shared.hand_over(self.local.get_mut().take());
        if !self.ends_step {
            return;
        }
        let (output, error) = shared.finish(self.own_run.is_some());
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
