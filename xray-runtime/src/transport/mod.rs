//! From finished steps and runs to the server, in the shape of opentelemetry's batch span
//! processor: the pipeline's threads hand events to a bounded channel with `try_send` (never
//! waiting), one worker thread batches them by count or interval and POSTs `/ingest`, and
//! `flush`/`shutdown` wait for it with a timeout. It must never block a pipeline's thread.
//!
//! What the server cannot take now (no answer, a 5xx) is kept: spooled to disk in `buffer` mode
//! and re-sent later, by this process or another ([`spool`]); dropped and counted in `silent`
//! mode; reported by the next flush in `fail` mode. What it refuses (a 4xx for an event, or for
//! the whole batch) is final for those events: counted `failed` and logged. A full queue spools
//! the event from the pipeline's thread (`buffer`) or drops it (the other modes).

pub(crate) mod http;
mod spool;
mod worker;

use crate::config::{Config, OfflineMode};
use crate::error::XRayError;
use crate::lock;
use crate::step::Finished;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, TrySendError};
use spool::Spool;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use xray_wire::Event;

/// What became of the events this client was given. Every event ends up in `sent`, `spooled`
/// (then, later, `resent`), `dropped` or `failed`, or is still queued; `spooled` counts every
/// write to the spool, so an event spooled again after a failed re-send counts there twice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Delivered to the server straight away.
    pub sent: u64,
    /// Written to the disk spool (`buffer` mode).
    pub spooled: u64,
    /// Delivered later from the spool (by this process; it may have been spooled by another).
    pub resent: u64,
    /// Given up: `silent` mode while the server was away, a full queue outside `buffer` mode, or
    /// a full spool.
    pub dropped: u64,
    /// Refused by the server as invalid (4xx), or undeliverable in `fail` mode.
    pub failed: u64,
}

/// What the worker shares with the producers.
struct Shared {
    mode: OfflineMode,
    endpoint: String,
    stats: Mutex<Stats>,
    spool: Option<Spool>,
    /// The last delivery failure not yet reported (`fail` mode).
    error: Mutex<Option<String>>,
    closed: AtomicBool,
    /// The batch the worker is delivering, held here until it is stored or spooled: a shutdown
    /// that times out while the worker waits on the server (the process is about to exit)
    /// takes it and spools it, so the batch in flight is not lost with the process.
    posting: Mutex<Option<Arc<Vec<Vec<u8>>>>>,
}

impl Shared {
    fn count(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut lock(&self.stats));
    }

    fn note_error(&self, reason: String) {
        *lock(&self.error) = Some(reason);
    }

    fn take_error(&self) -> Result<(), XRayError> {
        match lock(&self.error).take() {
            Some(reason) => Err(XRayError::Delivery {
                endpoint: self.endpoint.clone(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// Events the server cannot take now: spool, drop, or fail, by mode. `durable`: a
    /// spooled batch is synced to the disk before it counts as spooled (not on a pipeline's
    /// thread, where a sync would cost it hundreds of µs).
    fn offline(&self, body: &[u8], events: u64, reason: &str, durable: bool) {
        match self.mode {
            OfflineMode::Buffer => {
                match self.spool.as_ref().map(|s| s.write(body, events, durable)) {
                    Some(Ok(true)) => self.count(|s| s.spooled += events),
                    full_or_not => {
                        let why = match full_or_not {
                            Some(Err(e)) => e.to_string(),
                            _ => "it is full or cannot be opened".into(),
                        };
                        tracing::warn!(
                            "X-Ray cannot spool {events} events ({why}; {reason}): dropped"
                        );
                        self.count(|s| s.dropped += events);
                    }
                }
            }
            OfflineMode::Silent => self.count(|s| s.dropped += events),
            OfflineMode::Fail => {
                self.count(|s| s.failed += events);
                self.note_error(reason.to_string());
            }
        }
    }

    /// An event's JSON, its names and texts fitted to what the server accepts ([`crate::fit`]:
    /// a bad name must not cost the whole event); one that cannot be serialised is refused.
    fn serialise(&self, event: Outgoing) -> Option<Vec<u8>> {
        let mut event = match event {
            Outgoing::Ready(e) => e,
            Outgoing::Step(step) => step.into_event(),
        };
        crate::fit::fit_event(&mut event);
        let json = serde_json::to_vec(&event);
        json.map_err(|e| self.refused(1, format!("cannot serialise it: {e}")))
            .ok()
    }

    /// Events the server refused (4xx): final, counted and logged.
    fn refused(&self, events: u64, reason: String) {
        tracing::warn!("X-Ray server refused {events} events: {reason}");
        self.count(|s| s.failed += events);
        if self.mode == OfflineMode::Fail {
            self.note_error(reason);
        }
    }
}

/// What producers hand to the worker: an event, or the work of building one, which the worker
/// does so that closing a step costs the pipeline's thread only a move.
pub(crate) enum Outgoing {
    /// A finished event.
    Ready(Event),
    /// A finished step, still to be laid out as its event (its samples sorted and grouped).
    Step(Box<Finished>),
}

/// A flush or (`last`) a shutdown asked of the worker, answered on `reply`.
struct Control {
    reply: crossbeam_channel::Sender<Result<(), XRayError>>,
    last: bool,
}

/// The producer side of the transport, owned by a client.
pub(crate) struct Shipper {
    data: crossbeam_channel::Sender<Outgoing>,
    control: crossbeam_channel::Sender<Control>,
    /// Rung when a full batch is waiting, so the worker sends it before its next tick.
    doorbell: crossbeam_channel::Sender<()>,
    batch_size: usize,
    shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
    /// The queue's other end, kept so that nothing handed over while the worker was finishing
    /// its shutdown is left in the queue: `shutdown` drains it after the worker is done.
    leftover: Receiver<Outgoing>,
    /// Producers between their `closed` check and their hand-over (see `send`).
    in_flight: AtomicUsize,
}

/// A request body of serialised events.
fn assemble(events: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::with_capacity(events.iter().map(|e| e.len() + 1).sum::<usize>() + 16);
    body.extend_from_slice(b"{\"events\":[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(e);
    }
    body.extend_from_slice(b"]}");
    body
}

impl Shipper {
    /// Opens the spool (`buffer` mode) and starts the worker thread.
    pub(crate) fn start(config: &Config) -> Shipper {
        let dir = config.spool_path();
        let spool = match config.offline_mode {
            OfflineMode::Buffer => Spool::open(&dir, config.spool_max_bytes)
                .map_err(|e| tracing::warn!("X-Ray cannot use the spool {}: {e}", dir.display()))
                .ok(),
            _ => None,
        };
        let shared = Arc::new(Shared {
            mode: config.offline_mode,
            endpoint: config.endpoint.clone(),
            stats: Mutex::new(Stats::default()),
            spool,
            error: Mutex::new(None),
            closed: AtomicBool::new(false),
            posting: Mutex::new(None),
        });
        let (data, data_rx) = bounded(config.queue_capacity);
        let (control, control_rx) = bounded(16);
        let (doorbell, doorbell_rx) = bounded(1);
        let mut worker = worker::Worker::new(
            config,
            shared.clone(),
            data_rx.clone(),
            control_rx,
            doorbell_rx,
        );
        let handle = std::thread::Builder::new()
            .name("xray-shipper".into())
            .spawn(move || worker.run())
            .map_err(|e| tracing::warn!("X-Ray cannot start its shipper thread: {e}"))
            .ok();
        Shipper {
            data,
            control,
            doorbell,
            batch_size: config.batch_size,
            shared,
            worker: Mutex::new(handle),
            leftover: data_rx,
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Hands an event to the worker. Never blocks and never fails.
    ///
    /// The worker is not woken for each event (a wake-up is a system call): it collects the
    /// queue every batch interval, and is rung only when a full batch is waiting.
    ///
    /// Racing a shutdown: the producer announces itself (`in_flight`) before reading `closed`,
    /// and `shutdown` sets `closed` before waiting for `in_flight` to drain (both sequentially
    /// consistent), so each event is either seen closed and spooled here, or queued before
    /// `shutdown` drains the queue a last time.
    pub(crate) fn send(&self, event: Outgoing) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        if self.shared.closed.load(Ordering::SeqCst) {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            return self.overflow(event, "the client is shut down");
        }
        let sent = self.data.try_send(event);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        match sent {
            Ok(()) => {
                if self.data.len() >= self.batch_size {
                    let _ = self.doorbell.try_send(());
                }
            }
            Err(TrySendError::Full(e)) => self.overflow(e, "the queue is full"),
            Err(TrySendError::Disconnected(e)) => self.overflow(e, "the shipper has stopped"),
        }
    }

    /// An event the worker cannot take: spooled from this thread (`buffer`), else dropped.
    fn overflow(&self, event: Outgoing, reason: &str) {
        if self.shared.mode == OfflineMode::Buffer {
            // Written and renamed, not synced (a sync costs hundreds of µs; what is lost is
            // only what a power cut takes before the kernel writes it).
            if let Some(json) = self.shared.serialise(event) {
                self.shared.offline(&assemble(&[json]), 1, reason, false);
            }
        } else {
            self.shared.count(|s| s.dropped += 1);
            if self.shared.mode == OfflineMode::Fail {
                self.shared.note_error(reason.to_string());
            }
        }
    }

    fn ask(&self, last: bool, timeout: Duration) -> Result<(), XRayError> {
        let (reply, rx) = bounded(1);
        self.control
            .send_timeout(Control { reply, last }, timeout)
            .map_err(|_| XRayError::ShutDown)?;
        match rx.recv_timeout(timeout) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => Err(XRayError::Timeout(timeout)),
            Err(RecvTimeoutError::Disconnected) => Err(XRayError::ShutDown),
        }
    }

    /// Waits until everything handed over so far is delivered or spooled, and the spool has
    /// been tried once.
    pub(crate) fn flush(&self, timeout: Duration) -> Result<(), XRayError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(XRayError::ShutDown);
        }
        self.ask(false, timeout)
    }

    /// Delivers or spools everything, stops the worker and waits for it. Later events are
    /// spooled (`buffer`) or dropped. Calling it again returns [`XRayError::ShutDown`].
    pub(crate) fn shutdown(&self, timeout: Duration) -> Result<(), XRayError> {
        if self.shared.closed.swap(true, Ordering::SeqCst) {
            return Err(XRayError::ShutDown);
        }
        let result = self.ask(true, timeout);
        if result.is_ok() {
            if let Some(handle) = lock(&self.worker).take() {
                let _ = handle.join();
            }
        } else if let Some(events) = lock(&self.shared.posting).take() {
            // The worker is still waiting on the server with a batch: spooled here, it outlives
            // the process (if the worker gets it through after all, the server stores it once).
            let reason = "the client shut down during a request";
            let n = events.len() as u64;
            self.shared.offline(&assemble(&events), n, reason, true);
        }
        // Producers that read `closed` before it was set finish their hand-over in nanoseconds;
        // what they queued after the worker's last look — or everything, if the worker never
        // started or did not answer in time — is spooled (or counted) here, never left behind.
        let deadline = Instant::now() + Duration::from_millis(100);
        while self.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::yield_now();
        }
        while let Ok(event) = self.leftover.try_recv() {
            self.overflow(event, "the client is shut down");
        }
        result
    }

    /// The counters.
    pub(crate) fn stats(&self) -> Stats {
        *lock(&self.shared.stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xray_wire::RunStarted;

    fn event() -> Outgoing {
        Outgoing::Ready(Event::RunStarted(RunStarted {
            run_id: xray_wire::Name::fit("r"),
            pipeline: xray_wire::Name::fit("p"),
            started_at: chrono::Utc::now(),
            input: None,
            metadata: None,
            version: None,
            replay_of: None,
            correlation_id: None,
            traceparent: None,
        }))
    }

    #[test]
    fn a_hand_over_racing_shutdown_is_spooled_not_stranded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Config::builder()
            .endpoint("http://127.0.0.1:9")
            .spool_dir(dir.path())
            .http_timeout(Duration::from_millis(100))
            .build();
        let shipper = Arc::new(Shipper::start(&config));
        // A producer that read `closed == false` just before the shutdown began…
        shipper.in_flight.fetch_add(1, Ordering::SeqCst);
        let closing = shipper.clone();
        let shutdown = std::thread::spawn(move || closing.shutdown(Duration::from_secs(10)));
        while !shipper.shared.closed.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(20));
        // …hands its event over after the worker has stopped looking at the queue.
        assert!(shipper.data.try_send(event()).is_ok(), "queue open");
        shipper.in_flight.fetch_sub(1, Ordering::SeqCst);
        shutdown.join().expect("no panic").expect("shut down");
        assert_eq!(shipper.stats().spooled, 1, "{:?}", shipper.stats());
        assert_eq!(shipper.leftover.len(), 0);
    }
}
