//! Runs: one execution of a pipeline, from its input to its output or error.

use crate::client::{Core, RunBuilder};
use crate::config::OfflineMode;
use crate::context::{Context, Entered};
use crate::correlation::Correlation;
use crate::error::XRayError;
use crate::guard::StepGuard;
use crate::json::{capped_json, to_json_text};
use crate::lock;
use crate::transport::Outgoing;
use serde::Serialize;
use std::fmt::Display;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use xray_wire::{Capture, Event, Name, RunFinished, RunStarted, RunStatus, StepType, Timestamp};

/// How long `finish()` waits for delivery in `fail` mode.
const FAIL_MODE_FLUSH: Duration = Duration::from_secs(10);

/// A new random id (UUID v4, hyphenated, lower case) for a run or a step. uuid's generator is
/// seeded once per thread, so a forked child would go on from its parent's state: the process
/// id is mixed into the first bytes (the version and variant bits are left alone).
pub(crate) fn new_id() -> Arc<str> {
    let mut bytes = uuid::Uuid::new_v4().into_bytes();
    for (b, p) in bytes.iter_mut().zip(std::process::id().to_le_bytes()) {
        *b ^= p;
    }
    let mut text = uuid::Uuid::encode_buffer();
    Arc::from(
        &*uuid::Uuid::from_bytes(bytes)
            .hyphenated()
            .encode_lower(&mut text),
    )
}

pub(crate) struct RunShared {
    pub(crate) core: Arc<Core>,
    pub(crate) run_id: Arc<str>,
    pub(crate) pipeline: Arc<str>,
    correlation: Correlation,
    started_at: Timestamp,
    started: Instant,
    next_position: AtomicU32,
    data: Mutex<RunData>,
}

#[derive(Default)]
struct RunData {
    /// Capped JSON text, checked and wrapped on the shipper's thread.
    output: Option<Box<str>>,
    error: Option<String>,
    finished: bool,
}

impl RunShared {
    pub(crate) fn next_position(&self) -> u32 {
        self.next_position.fetch_add(1, Ordering::Relaxed)
    }

    /// Ends the run once; later calls do nothing.
    fn finish(&self, flush: bool) -> Result<(), XRayError> {
        let (status, output, error) = {
            let mut d = lock(&self.data);
            if std::mem::replace(&mut d.finished, true) {
                return Ok(());
            }
            crate::panics::note(&mut d.error);
            let status = if d.error.is_some() {
                RunStatus::Failed
            } else {
                RunStatus::Completed
            };
            (status, d.output.take(), d.error.take())
        };
        let elapsed = self.started.elapsed();
        self.core
            .shipper
            .send(Outgoing::Ready(Event::RunFinished(RunFinished {
                run_id: Name::fit(&*self.run_id),
                pipeline: Name::fit(&*self.pipeline),
                started_at: self.started_at,
                ended_at: self.started_at + elapsed,
                status,
                output: output.map(to_json_text),
                error,
                duration_ms: Some(elapsed.as_secs_f64() * 1000.0),
            })));
        if flush && self.core.config.offline_mode == OfflineMode::Fail {
            self.core.shipper.flush(FAIL_MODE_FLUSH)
        } else {
            Ok(())
        }
    }
}

/// A handle on a run: cheap to clone, usable from any thread. A handle with no run behind it
/// (from [`crate::current_run`] outside any run) records nothing.
#[derive(Clone, Default)]
pub struct Run {
    pub(crate) shared: Option<Arc<RunShared>>,
}

impl Run {
    /// A handle that records nothing.
    pub fn none() -> Run {
        Run::default()
    }

    /// Whether this handle records into a run.
    pub fn is_recording(&self) -> bool {
        self.shared.is_some()
    }

    /// The run's id (`None` for a no-op handle).
    pub fn id(&self) -> Option<&str> {
        self.shared.as_ref().map(|s| &*s.run_id)
    }

    /// The run's pipeline.
    pub fn pipeline(&self) -> Option<&str> {
        self.shared.as_ref().map(|s| &*s.pipeline)
    }

    /// The run's links to another system (`None` for a no-op handle).
    pub fn correlation(&self) -> Option<&Correlation> {
        self.shared.as_ref().map(|s| &s.correlation)
    }

    /// Sets the run's output (anything `Serialize`; capped at `Config::max_io_bytes`).
    pub fn set_output<T: Serialize>(&self, output: T) {
        if let Some(s) = &self.shared {
            let text = capped_json(&output, s.core.config.max_io_bytes);
            lock(&s.data).output = text;
        }
    }

    /// The output already as capped JSON text.
    pub(crate) fn set_output_text(&self, output: Option<Box<str>>) {
        if let Some(s) = &self.shared {
            lock(&s.data).output = output;
        }
    }

    /// Marks the run failed with this error (it still ends when its guard does). A NUL in the
    /// error is sent as U+FFFD ([`crate::wire::fit_text`]), so the run still ends `failed`.
    pub fn set_error(&self, error: impl Display) {
        if let Some(s) = &self.shared {
            lock(&s.data).error = Some(error.to_string());
        }
    }

    /// Opens a step of this run at the client's default capture level. On a no-op handle the
    /// step becomes a run of its own (see [`crate::step()`](fn@crate::step)). A bad name (empty,
    /// over 512 bytes, NUL) is sent fitted ([`crate::wire::fit_name`]).
    pub fn step(&self, name: impl Into<String>, step_type: StepType) -> StepGuard {
        self.open_step(name.into(), step_type, None)
    }

    /// Opens a step with a capture level of its own.
    pub fn step_with_capture(
        &self,
        name: impl Into<String>,
        step_type: StepType,
        capture: Capture,
    ) -> StepGuard {
        self.open_step(name.into(), step_type, Some(capture))
    }

    fn open_step(&self, name: String, step_type: StepType, capture: Option<Capture>) -> StepGuard {
        if let Some(shared) = &self.shared {
            return StepGuard::open(shared.clone(), name, step_type, capture);
        }
        // Outside any run: a one-step run of its own in the default client's default pipeline
        // (`XRAY_PIPELINE`, else `default`), so nothing it records is lost. The run ends with the
        // step and takes its output and error.
        let pipeline = Core::default_core().config.default_pipeline.clone();
        let run = crate::XRay::new(pipeline).run(());
        let mut guard = run.open_step(name, step_type, capture);
        guard.own_run = Some(run);
        guard
    }

    /// Makes this run current on this thread until the guard drops.
    pub fn enter(&self) -> Entered {
        Context::of_run(self.clone()).enter()
    }

    /// Runs `f` with this run current.
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        Context::of_run(self.clone()).in_scope(f)
    }
}

/// An open run. It ends when finished or dropped: `completed`, or `failed` if an error was set
/// or the thread is panicking. Derefs to [`Run`] for recording.
#[must_use = "the run ends when this guard is dropped"]
pub struct RunGuard {
    run: Run,
}

impl RunBuilder<'_> {
    /// Opens the run.
    pub fn start(self) -> RunGuard {
        crate::panics::forget();
        let correlation = (self.correlation)
            .or(&Context::current().correlation())
            .or(&Correlation::from_env());
        let shared = Arc::new(RunShared {
            run_id: new_id(),
            pipeline: self.client.pipeline().into(),
            correlation,
            started_at: chrono::Utc::now(),
            started: Instant::now(),
            next_position: AtomicU32::new(0),
            data: Mutex::new(RunData::default()),
            core: self.client.core.clone(),
        });
        shared
            .core
            .shipper
            .send(Outgoing::Ready(Event::RunStarted(RunStarted {
                run_id: Name::fit(&*shared.run_id),
                pipeline: Name::fit(&*shared.pipeline),
                started_at: shared.started_at,
                input: self.input.map(to_json_text),
                metadata: self.metadata.map(to_json_text),
                version: self.version.as_deref().map(Name::fit),
                replay_of: self.replay_of.as_deref().map(Name::fit),
                correlation_id: shared.correlation.correlation_id().map(Name::fit),
                traceparent: shared.correlation.traceparent_text(),
            })));
        RunGuard {
            run: Run {
                shared: Some(shared),
            },
        }
    }
}

impl RunGuard {
    /// A handle on this run, to pass around or into threads.
    pub fn handle(&self) -> Run {
        self.run.clone()
    }

    /// Ends the run: `completed` unless an error was set. In `fail` mode, waits for delivery
    /// and reports failure; otherwise returns at once.
    pub fn finish(self) -> Result<(), XRayError> {
        self.end(true)
    }

    /// Ends the run as `failed` with this error (a NUL in it is sent as U+FFFD, not refused).
    pub fn fail(self, error: impl Display) -> Result<(), XRayError> {
        self.run.set_error(error);
        self.end(true)
    }

    fn end(&self, flush: bool) -> Result<(), XRayError> {
        match &self.run.shared {
            Some(s) => s.finish(flush),
            None => Ok(()),
        }
    }
}

impl std::ops::Deref for RunGuard {
    type Target = Run;
    fn deref(&self) -> &Run {
        &self.run
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        let _ = self.end(false);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_distinct_version_4_uuids() {
        let ids: std::collections::HashSet<_> = (0..10_000).map(|_| super::new_id()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(100) {
            let uuid = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(uuid.get_version_num(), 4);
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122);
            assert_eq!(**id, uuid.hyphenated().to_string());
        }
    }

    #[test]
    fn a_forked_child_gives_out_other_ids_than_its_parent() {
        // Seed this thread's generator before forking: parent and child then go on from the
        // same generator state.
        let _ = super::new_id();
        let mut pipe = [0; 2];
        // SAFETY: a pipe into a two-element array; close-on-exec, so that no process another
        // test starts meanwhile holds its write end open.
        assert_eq!(
            unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) },
            0
        );
        // SAFETY: the child only makes an id (glibc's allocator is usable after `fork`), writes
        // it to the pipe and leaves with `_exit`, running nothing else of the test harness.
        match unsafe { libc::fork() } {
            0 => {
                let id = super::new_id();
                // SAFETY: writes the id's bytes to the pipe and ends the child at once.
                unsafe {
                    libc::write(pipe[1], id.as_ptr().cast(), id.len());
                    libc::_exit(0);
                }
            }
            child => {
                assert!(child > 0, "fork failed");
                let parent = super::new_id();
                let mut buf = [0u8; 64];
                let mut status = 0;
                // SAFETY: reads into a 64-byte buffer, closes the pipe's two ends, and waits for
                // the child it forked.
                let n = unsafe {
                    libc::close(pipe[1]);
                    let n = libc::read(pipe[0], buf.as_mut_ptr().cast(), buf.len());
                    libc::close(pipe[0]);
                    libc::waitpid(child, &mut status, 0);
                    n
                };
                assert!(
                    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                    "the child ended with status {status}"
                );
                let child_id = std::str::from_utf8(&buf[..n.max(0) as usize]).unwrap();
                assert_eq!(child_id.len(), 36, "the child's id: {child_id:?}");
                assert_ne!(child_id, &*parent, "the child has an id of its own");
            }
        }
    }
}
