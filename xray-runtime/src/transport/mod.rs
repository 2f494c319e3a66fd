//! From finished steps to the server: a bounded channel, one background thread that batches,
//! POSTs, retries and spools, and counters of what became of every event.
//!
//! The pipeline's threads only ever call [`Shipper::send`], which never waits: it puts the event
//! on a bounded crossbeam channel with `try_send`. When the channel is full (or the shipper is shut
//! down), `buffer` mode writes the event to the disk spool and the other modes count it dropped.
//! The worker thread batches events by count and by time and sends each batch to `POST /ingest`
//! with retries and backoff; what it cannot deliver it spools (`buffer`), drops and counts
//! (`silent`), or reports on the next flush (`fail`). Spooled batches are re-sent oldest first,
//! and while any wait, new batches queue behind them in the spool so the server sees them in order
//! — except a batch the server fails on (5xx) while it stores others: it is set aside for the
//! pass, so the ones after it are not held up by it.

mod http;
mod spool;

use crate::config::{Config, OfflineMode};
use crate::error::XRayError;
use crate::step::Finished;
use crossbeam_channel::{bounded, select, Receiver, RecvTimeoutError, TrySendError};
use http::{Delivery, Sender};
use spool::Spool;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use xray_wire::Event;

/// Largest request body the shipper builds (the server's default limit is 16 MiB).
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// First wait before re-trying the spool while the server is away; doubles up to the max.
const SPOOL_RETRY_MIN: Duration = Duration::from_millis(500);
const SPOOL_RETRY_MAX: Duration = Duration::from_secs(30);
/// Longest a request may take while shutting down (the exit hook allows 5 s in all).
const FINAL_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// Passes of the spool in which the server failed (5xx) on one spooled batch while storing
/// others, before its events are sent one group at a time (so the ones it takes arrive); one it
/// still fails on alone stays spooled. No 5xx ever makes an event given up in `buffer` mode.
const POISON_TRIES: u32 = 3;

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

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    spooled: AtomicU64,
    resent: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Locks a mutex, whether or not a thread panicked holding it (what it guards stays usable).
pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the worker shares with the producers.
struct Shared {
    mode: OfflineMode,
    endpoint: String,
    counters: Counters,
    spool: Option<Spool>,
    /// Something may be waiting in the spool.
    spool_pending: AtomicBool,
    /// The last delivery failure not yet reported (`fail` mode).
    error: Mutex<Option<String>>,
    closed: AtomicBool,
    /// The batch the worker is delivering, held here until it is stored or spooled: a shutdown
    /// that times out while the worker waits on the server (the process is about to exit)
    /// takes it and spools it, so the batch in flight is not lost with the process.
    posting: Mutex<Option<Arc<Vec<Vec<u8>>>>>,
}

impl Shared {
    fn note_error(&self, reason: String) {
        *lock(&self.error) = Some(reason);
    }

    /// Takes the batch being delivered, if it is still held (see [`Shared::posting`]).
    fn take_posting(&self) -> Option<Arc<Vec<Vec<u8>>>> {
        lock(&self.posting).take()
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

    /// Events that cannot be delivered now: spool, drop, or fail, by mode.
    fn offline(&self, body: &[u8], events: u64, reason: &str) {
        self.offline_from(body, events, reason, true);
    }

    /// [`Shared::offline`]; `durable`: a spooled batch is synced to the disk before it counts
    /// as spooled (not on a pipeline's thread, where a sync would cost it hundreds of µs).
    fn offline_from(&self, body: &[u8], events: u64, reason: &str, durable: bool) {
        match self.mode {
            OfflineMode::Buffer => {
                match self.spool.as_ref().map(|s| s.write(body, events, durable)) {
                    Some(Ok(true)) => {
                        self.spool_pending.store(true, Ordering::Release);
                        add(&self.counters.spooled, events);
                    }
                    Some(Ok(false)) => {
                        tracing::warn!("X-Ray spool is full: dropping {events} events ({reason})");
                        add(&self.counters.dropped, events);
                    }
                    Some(Err(e)) => {
                        tracing::warn!("X-Ray cannot spool {events} events ({e}); dropping them");
                        add(&self.counters.dropped, events);
                    }
                    None => add(&self.counters.dropped, events),
                }
            }
            OfflineMode::Silent => add(&self.counters.dropped, events),
            OfflineMode::Fail => {
                add(&self.counters.failed, events);
                self.note_error(reason.to_string());
            }
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

impl Outgoing {
    /// The wire event, its names and texts fitted to what the server accepts
    /// ([`crate::fit`]): a bad name must not cost the whole event.
    fn into_event(self) -> Event {
        let mut event = match self {
            Outgoing::Ready(e) => e,
            Outgoing::Step(step) => step.into_event(),
        };
        crate::fit::fit_event(&mut event);
        event
    }
}

enum Control {
    Flush(crossbeam_channel::Sender<Result<(), XRayError>>),
    Shutdown(crossbeam_channel::Sender<Result<(), XRayError>>),
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
    /// its shutdown is left in the queue: `shutdown` drains it after joining the worker.
    leftover: Receiver<Outgoing>,
    /// Producers between their `closed` check and their hand-over (see `send`).
    in_flight: AtomicUsize,
}

fn one_event_body(event: &Event) -> Vec<u8> {
    let mut body = b"{\"events\":[".to_vec();
    let _ = serde_json::to_writer(&mut body, event);
    body.extend_from_slice(b"]}");
    body
}

impl Shipper {
    /// Starts the worker thread.
    pub(crate) fn start(config: &Config) -> Shipper {
        let spool = match config.offline_mode {
            OfflineMode::Buffer => {
                let dir = config.spool_path();
                match Spool::open(&dir, config.spool_max_bytes) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        tracing::warn!("X-Ray cannot use the spool {}: {e}", dir.display());
                        None
                    }
                }
            }
            _ => None,
        };
        let pending = spool.as_ref().is_some_and(|s| !s.is_empty());
        let shared = Arc::new(Shared {
            mode: config.offline_mode,
            endpoint: config.endpoint.clone(),
            counters: Counters::default(),
            spool,
            spool_pending: AtomicBool::new(pending),
            error: Mutex::new(None),
            closed: AtomicBool::new(false),
            posting: Mutex::new(None),
        });
        let (data, data_rx) = bounded(config.queue_capacity);
        let (control, control_rx) = bounded(16);
        let (doorbell, doorbell_rx) = bounded(1);
        let mut worker = Worker {
            shared: shared.clone(),
            sender: Sender::new(
                &config.endpoint,
                config.http_timeout,
                config.api_key.as_ref(),
            ),
            final_sender: Sender::new(
                &config.endpoint,
                config.http_timeout.min(FINAL_REQUEST_TIMEOUT),
                config.api_key.as_ref(),
            ),
            closing: false,
            gave_up: false,
            data: data_rx.clone(),
            control: control_rx,
            doorbell: doorbell_rx,
            batch: Batch::default(),
            batch_size: config.batch_size,
            interval: config.batch_interval,
            attempts: config.max_attempts,
            spool_retry_at: Instant::now(),
            spool_backoff: SPOOL_RETRY_MIN,
            poison: std::collections::HashMap::new(),
            stored_posts: 0,
            away: false,
        };
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

    fn overflow(&self, event: Outgoing, reason: &str) {
        if self.shared.mode == OfflineMode::Buffer {
            // On the pipeline's thread: written and renamed, not synced (a sync costs hundreds of
            // µs; what is lost is only what a power cut takes before the kernel writes it).
            let body = one_event_body(&event.into_event());
            self.shared.offline_from(&body, 1, reason, false);
        } else {
            add(&self.shared.counters.dropped, 1);
            if self.shared.mode == OfflineMode::Fail {
                self.shared.note_error(reason.to_string());
            }
        }
    }

    fn ask(
        &self,
        make: fn(crossbeam_channel::Sender<Result<(), XRayError>>) -> Control,
        timeout: Duration,
    ) -> Result<(), XRayError> {
        let (tx, rx) = bounded(1);
        self.control
            .send_timeout(make(tx), timeout)
            .map_err(|_| XRayError::ShutDown)?;
        match rx.recv_timeout(timeout) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => Err(XRayError::Timeout(timeout)),
            Err(RecvTimeoutError::Disconnected) => Err(XRayError::ShutDown),
        }
    }

    /// Waits until everything handed over so far is delivered or spooled.
    pub(crate) fn flush(&self, timeout: Duration) -> Result<(), XRayError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(XRayError::ShutDown);
        }
        self.ask(Control::Flush, timeout)
    }

    /// Delivers or spools everything, stops the worker and waits for it. Later events are
    /// spooled (`buffer`) or dropped. Calling it again returns [`XRayError::ShutDown`].
    pub(crate) fn shutdown(&self, timeout: Duration) -> Result<(), XRayError> {
        if self.shared.closed.swap(true, Ordering::SeqCst) {
            return Err(XRayError::ShutDown);
        }
        let result = self.ask(Control::Shutdown, timeout);
        if result.is_ok() {
            if let Some(handle) = lock(&self.worker).take() {
                let _ = handle.join();
            }
        } else if let Some(events) = self.shared.take_posting() {
            // The worker is still waiting on the server with a batch: spooled here, it outlives
            // the process (if the worker gets it through after all, the server stores it once).
            let reason = "the client shut down during a request";
            self.shared
                .offline(&assemble(&events), events.len() as u64, reason);
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
        let c = &self.shared.counters;
        Stats {
            sent: c.sent.load(Ordering::Relaxed),
            spooled: c.spooled.load(Ordering::Relaxed),
            resent: c.resent.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
        }
    }
}

/// Events waiting to be sent, each already serialised.
#[derive(Default)]
struct Batch {
    events: Vec<Vec<u8>>,
    bytes: usize,
}

impl Batch {
    fn push(&mut self, event: &Event) {
        match serde_json::to_vec(event) {
            Ok(json) => {
                self.bytes += json.len() + 1;
                self.events.push(json);
            }
            Err(e) => tracing::warn!("X-Ray cannot serialise an event: {e}"),
        }
    }

    fn len(&self) -> usize {
        self.events.len()
    }

    fn take(&mut self) -> Vec<Vec<u8>> {
        self.bytes = 0;
        std::mem::take(&mut self.events)
    }
}

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

/// The background thread's state.
struct Worker {
    shared: Arc<Shared>,
    sender: Sender,
    /// Used while shutting down: a short timeout, so a slow server cannot hold the exit past its
    /// deadline with a batch neither sent nor spooled.
    final_sender: Sender,
    /// Shutting down: one attempt per batch, with `final_sender`.
    closing: bool,
    /// The server failed while shutting down: spool the rest without trying it again.
    gave_up: bool,
    data: Receiver<Outgoing>,
    control: Receiver<Control>,
    doorbell: Receiver<()>,
    batch: Batch,
    batch_size: usize,
    interval: Duration,
    attempts: u32,
    spool_retry_at: Instant,
    spool_backoff: Duration,
    /// Spooled batches the server failed on (5xx), by [`body_key`]: passes in which it did
    /// while storing others, and `stored_posts` at its last failure.
    poison: std::collections::HashMap<u64, (u32, u64)>,
    /// Requests the server stored so far.
    stored_posts: u64,
    /// The server was away at the last try (and the user was told).
    away: bool,
}

impl Worker {
    fn run(&mut self) {
        loop {
            let now = Instant::now();
            let mut wake = now + self.interval;
            if self.shared.spool_pending.load(Ordering::Acquire) {
                wake = wake.min(self.spool_retry_at);
            }
            select! {
                recv(self.control) -> msg => match msg {
                    Ok(Control::Flush(reply)) => {
                        self.drain_queue();
                        self.deliver_batch(false);
                        self.drain_spool(false);
                        let _ = reply.send(self.shared.take_error());
                        continue;
                    }
                    Ok(Control::Shutdown(reply)) => {
                        self.closing = true;
                        self.drain_queue();
                        self.deliver_batch(true);
                        self.drain_spool(true);
                        let _ = reply.send(self.shared.take_error());
                        return;
                    }
                    Err(_) => {
                        self.closing = true;
                        self.drain_queue();
                        self.deliver_batch(true);
                        return;
                    }
                },
                recv(self.doorbell) -> _ => {}
                default(wake.saturating_duration_since(now)) => {}
            }
            // Whatever arrived since the last wake-up goes now: the interval did the batching.
            self.drain_queue();
            self.deliver_batch(false);
            let now = Instant::now();
            if self.shared.spool_pending.load(Ordering::Acquire) && self.spool_retry_at <= now {
                self.drain_spool(false);
            }
        }
    }

    fn add(&mut self, event: Outgoing) {
        self.batch.push(&event.into_event());
        if self.batch.len() >= self.batch_size || self.batch.bytes >= MAX_BATCH_BYTES {
            self.deliver_batch(false);
        }
    }

    /// The server is away (`reason`): wait before trying the spool again, twice as long each
    /// time; say so once, when it goes away.
    fn back_off(&mut self, reason: &str) {
        self.spool_retry_at = Instant::now() + self.spool_backoff;
        self.spool_backoff = (self.spool_backoff * 2).min(SPOOL_RETRY_MAX);
        if !self.away {
            self.away = true;
            let endpoint = &self.shared.endpoint;
            match (self.shared.mode, &self.shared.spool) {
                (OfflineMode::Buffer, Some(spool)) => tracing::warn!(
                    "X-Ray cannot deliver to {endpoint} ({reason}): keeping events in the spool \
                     {} and re-sending them when it is back",
                    spool.dir().display()
                ),
                (OfflineMode::Fail, _) => tracing::warn!(
                    "X-Ray cannot deliver to {endpoint} ({reason}): the next flush or run end \
                     reports it"
                ),
                _ => tracing::warn!(
                    "X-Ray cannot deliver to {endpoint} ({reason}): dropping events (counted in \
                     stats) until it is back"
                ),
            }
        }
    }

    fn drain_queue(&mut self) {
        while let Ok(event) = self.data.try_recv() {
            self.add(event);
        }
    }

    fn deliver_batch(&mut self, last: bool) {
        if self.batch.len() == 0 {
            return;
        }
        // Held where a shutdown that times out finds it (see `Shared::posting`) until it is
        // stored or spooled; if the shutdown took it, it spooled it.
        let events = Arc::new(self.batch.take());
        *lock(&self.shared.posting) = Some(events.clone());
        // While older batches wait in the spool, newer ones queue behind them.
        if self.shared.mode == OfflineMode::Buffer
            && self.shared.spool_pending.load(Ordering::Acquire)
        {
            // Try the server again only when the backoff allows (or at the end).
            if last || self.spool_retry_at <= Instant::now() {
                self.drain_spool(last);
            }
            if self.shared.spool_pending.load(Ordering::Acquire) {
                if let Some(events) = self.shared.take_posting() {
                    let n = events.len() as u64;
                    self.shared
                        .offline(&assemble(&events), n, "older events are still spooled");
                }
                return;
            }
        }
        self.deliver(&events, last, false);
        self.shared.take_posting();
    }

    /// POSTs with retries; splits what the server refuses to find the events at fault.
    fn deliver(&mut self, events: &[Vec<u8>], last: bool, resend: bool) {
        let body = assemble(events);
        let n = events.len() as u64;
        let last = last || self.closing;
        if self.closing && self.gave_up {
            return self
                .shared
                .offline(&body, n, "the server failed during shutdown");
        }
        let sender = if last {
            &self.final_sender
        } else {
            &self.sender
        };
        let attempts = if last { 1 } else { self.attempts };
        let mut outcome = sender.post(&body);
        for i in 1..attempts {
            if !matches!(outcome, Delivery::Retry(_) | Delivery::ServerError(_)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100 << (i - 1).min(4)));
            outcome = sender.post(&body);
        }
        if self.closing && matches!(outcome, Delivery::Retry(_) | Delivery::ServerError(_)) {
            self.gave_up = true;
        }
        match outcome {
            Delivery::Stored => {
                let counter = if resend {
                    &self.shared.counters.resent
                } else {
                    &self.shared.counters.sent
                };
                add(counter, n);
                self.stored(None);
            }
            // A server error after the retries is treated as the server being away: the batch
            // is kept whole for later (in `buffer` mode the spool, which finds an event the
            // server fails on alone while it stores the others: `drain_spool`). Halving it here
            // would cost a request and a backoff per event against a server failing on all.
            Delivery::Retry(reason) | Delivery::ServerError(reason) => {
                self.shared.offline(&body, n, &reason);
                self.back_off(&reason);
            }
            // Events the server refuses must not hold back the others: halve the batch until
            // each refused one stands alone.
            Delivery::TooLarge(_) | Delivery::Refused(_) if events.len() > 1 => {
                let (a, b) = events.split_at(events.len() / 2);
                self.deliver(a, last, resend);
                self.deliver(b, last, resend);
            }
            Delivery::TooLarge(reason) | Delivery::Refused(reason) => {
                tracing::warn!("X-Ray server refused an event: {reason}");
                add(&self.shared.counters.failed, n);
                if self.shared.mode == OfflineMode::Fail {
                    self.shared.note_error(reason);
                }
            }
        }
    }

    /// The server stored a request (a spooled batch's `body`, which it may have failed on
    /// before).
    fn stored(&mut self, body: Option<&[u8]>) {
        self.stored_posts += 1;
        self.spool_backoff = SPOOL_RETRY_MIN;
        if self.away {
            self.away = false;
            tracing::info!("X-Ray delivers to {} again", self.shared.endpoint);
        }
        if let Some(body) = body.filter(|_| !self.poison.is_empty()) {
            self.poison.remove(&body_key(body));
        }
    }

    /// Notes that the server failed (5xx) on a spooled batch's `body`; returns in how many
    /// passes it did while storing other requests since its previous failure (a server that
    /// fails on everything is not this batch's fault). Known by content, so a batch spooled
    /// again under another name is still known.
    fn failed_on(&mut self, body: &[u8]) -> u32 {
        let stored = self.stored_posts;
        let entry = self.poison.entry(body_key(body)).or_insert((0, stored));
        if stored > entry.1 {
            entry.0 += 1;
        }
        entry.1 = stored;
        entry.0
    }

    /// Re-sends spooled batches, oldest first, until the spool is empty or the server is away.
    ///
    /// A batch the server fails on (5xx) is set aside for this pass and the next one is tried:
    /// if the server fails on that too, it is failing on everything and the pass ends; if it
    /// stores it, the batch set aside holds an event the server cannot store, and after
    /// [`POISON_TRIES`] such passes its events go one group at a time ([`Worker::isolate`]).
    fn drain_spool(&mut self, last: bool) {
        let shared = self.shared.clone();
        let Some(spool) = shared.spool.as_ref() else {
            return;
        };
        if self.closing && self.gave_up {
            return;
        }
        let mut set_aside = Vec::new();
        let mut away = None;
        // `stored_posts` at the last failure of a batch not known to fail alone.
        let mut last_failure = None;
        while let Some(file) = spool.claim_oldest() {
            let body = match spool.read(&file) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!("X-Ray cannot read a spooled batch: {e}");
                    spool.release(file);
                    break;
                }
            };
            let sender = if last || self.closing {
                &self.final_sender
            } else {
                &self.sender
            };
            let outcome = sender.post(&body);
            if self.closing && matches!(outcome, Delivery::Retry(_) | Delivery::ServerError(_)) {
                self.gave_up = true;
            }
            match outcome {
                Delivery::Stored => {
                    add(&self.shared.counters.resent, file.events);
                    self.stored(Some(&body));
                    spool.done(file);
                }
                Delivery::Retry(reason) => {
                    spool.release(file);
                    away = Some(reason);
                    break;
                }
                Delivery::ServerError(reason) => {
                    let tries = self.failed_on(&body);
                    // (Not while closing: one short attempt per batch then, no splitting.)
                    if tries >= POISON_TRIES && file.events > 1 && !self.closing {
                        self.poison.remove(&body_key(&body));
                        tracing::warn!(
                            "X-Ray server keeps failing on a spooled batch while it stores others \
                             ({reason}): sending its events one group at a time"
                        );
                        let events = split_body(&body);
                        if !events.is_empty() {
                            self.isolate(&events, last);
                            spool.done(file);
                            continue;
                        }
                    }
                    set_aside.push(file);
                    if self.closing {
                        break;
                    }
                    // Two failures in a row with nothing stored between, on batches not known
                    // to fail while others are stored: the server is failing on everything for
                    // now. (A known one says nothing: a few of them must not hold up the rest.)
                    if tries == 0 {
                        if last_failure == Some(self.stored_posts) {
                            away = Some(reason);
                            break;
                        }
                        last_failure = Some(self.stored_posts);
                    }
                }
                Delivery::TooLarge(_) | Delivery::Refused(_) => {
                    // Send its events one group at a time so only the bad ones are lost (the
                    // file goes once they are stored or spooled again).
                    let events = split_body(&body);
                    if events.is_empty() {
                        // Not a request body any more (damaged on disk): nothing to re-send.
                        tracing::warn!(
                            "X-Ray drops a damaged spooled batch {} of {} events",
                            file.name(),
                            file.events
                        );
                        add(&self.shared.counters.failed, file.events);
                    } else {
                        self.deliver(&events, last, true);
                    }
                    spool.done(file);
                }
            }
        }
        if let Some(reason) = away {
            self.back_off(&reason);
        } else if !set_aside.is_empty() {
            // Storing others: the server is there, only not for these batches yet.
            self.spool_retry_at = Instant::now() + self.spool_backoff;
            self.spool_backoff = (self.spool_backoff * 2).min(SPOOL_RETRY_MAX);
        }
        for file in set_aside {
            spool.release(file);
        }
        self.shared
            .spool_pending
            .store(!spool.is_empty(), Ordering::Release);
    }

    /// Sends the events of a spooled batch the server kept failing on while it stored others,
    /// halving it so the events it takes are stored. An event it still fails on alone is
    /// spooled again on its own, never given up (a 5xx is the server's fault: fixed, it will
    /// take the event); one it refuses (4xx) is given up, counted as failed. If the server
    /// goes away meanwhile (no connection, or more failures in a row than halving down to one
    /// event takes), what is left is spooled again whole.
    fn isolate(&mut self, events: &[Vec<u8>], last: bool) {
        let stored_before = self.stored_posts;
        // Failures in a row: reaching one event from the whole batch takes log2(n) + 1.
        let limit = (usize::BITS - events.len().leading_zeros()) as usize + 2;
        let mut failures = 0;
        // Events the server failed on alone: kept apart if it stores others, else kept whole.
        let mut alone: Vec<&Vec<u8>> = Vec::new();
        // Groups still to send, the next one last (so they go in order).
        let mut todo = vec![events];
        while let Some(group) = todo.pop() {
            let body = assemble(group);
            let n = group.len() as u64;
            let sender = if last || self.closing {
                &self.final_sender
            } else {
                &self.sender
            };
            let outcome = sender.post(&body);
            if matches!(outcome, Delivery::ServerError(_)) {
                failures += 1;
            }
            match outcome {
                Delivery::Stored => {
                    add(&self.shared.counters.resent, n);
                    self.stored(None);
                    failures = 0;
                }
                Delivery::Retry(reason) => {
                    self.isolate_gave_way(group, &mut todo, &mut alone, &reason);
                    return;
                }
                Delivery::ServerError(reason) if failures > limit => {
                    self.isolate_gave_way(group, &mut todo, &mut alone, &reason);
                    return;
                }
                Delivery::ServerError(_) | Delivery::TooLarge(_) | Delivery::Refused(_)
                    if group.len() > 1 =>
                {
                    let (a, b) = group.split_at(group.len() / 2);
                    todo.push(b);
                    todo.push(a);
                }
                Delivery::ServerError(_) => alone.extend(group),
                Delivery::TooLarge(reason) | Delivery::Refused(reason) => {
                    tracing::warn!("X-Ray server refused an event: {reason}");
                    add(&self.shared.counters.failed, 1);
                    if self.shared.mode == OfflineMode::Fail {
                        self.shared.note_error(reason);
                    }
                }
            }
        }
        if self.stored_posts > stored_before {
            for event in alone {
                tracing::warn!(
                    "X-Ray server fails on one event while it stores the others: keeping it in \
                     the spool"
                );
                let body = assemble(std::slice::from_ref(event));
                // Known from now on: its failures do not make the server look away.
                self.poison
                    .insert(body_key(&body), (POISON_TRIES, self.stored_posts));
                self.shared.offline(&body, 1, "the server fails on it");
            }
        } else if !alone.is_empty() {
            let rest: Vec<Vec<u8>> = alone.into_iter().cloned().collect();
            self.shared.offline(
                &assemble(&rest),
                rest.len() as u64,
                "the server fails on them",
            );
        }
    }

    /// [`Worker::isolate`] when the server went away: `group`, the groups still to send and
    /// the events it failed on alone are spooled again, whole, in their order.
    fn isolate_gave_way(
        &mut self,
        group: &[Vec<u8>],
        todo: &mut Vec<&[Vec<u8>]>,
        alone: &mut Vec<&Vec<u8>>,
        reason: &str,
    ) {
        let rest: Vec<Vec<u8>> = alone
            .drain(..)
            .chain(group)
            .chain(todo.drain(..).rev().flatten())
            .cloned()
            .collect();
        self.shared
            .offline(&assemble(&rest), rest.len() as u64, reason);
        self.back_off(reason);
    }
}

/// What a spooled batch is known by in [`Worker::poison`]: a hash of its body.
fn body_key(body: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut hasher);
    hasher.finish()
}

/// The events of a request body, each as its own JSON.
fn split_body(body: &[u8]) -> Vec<Vec<u8>> {
    #[derive(serde::Deserialize)]
    struct Raw<'a> {
        #[serde(borrow)]
        events: Vec<&'a serde_json::value::RawValue>,
    }
    serde_json::from_slice::<Raw>(body)
        .map(|r| {
            r.events
                .iter()
                .map(|e| e.get().as_bytes().to_vec())
                .collect()
        })
        .unwrap_or_default()
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
