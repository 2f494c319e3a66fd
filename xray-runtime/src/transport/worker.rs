//! The shipper's one background thread: collects the queue into batches, POSTs them with
//! retries, re-sends the spool, and answers flush and shutdown. It alone talks to the server;
//! it must not hold a batch anywhere a process exit would lose it (see `Shared::posting`).

use super::http::{Delivery, Sender};
use super::spool::SpoolFile;
use super::{assemble, Control, Outgoing, Shared};
use crate::config::{Config, OfflineMode};
use crate::lock;
use crossbeam_channel::{select, Receiver};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest request body the shipper builds (the server's default limit is 16 MiB).
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// First wait before trying the server or the spool again; doubles up to the max.
const RETRY_MIN: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// Longest a request may take while shutting down (the exit hook allows 5 s in all).
const FINAL_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

/// The background thread's state.
pub(super) struct Worker {
    shared: Arc<Shared>,
    sender: Sender,
    /// The time one request may take: shorter while shutting down, so a slow server cannot hold
    /// the exit past its deadline with a batch neither sent nor spooled.
    timeout: Duration,
    /// Shutting down: one attempt per request, each allowed at most `FINAL_REQUEST_TIMEOUT`.
    closing: bool,
    /// The server failed while shutting down: spool the rest without trying it again.
    gave_up: bool,
    data: Receiver<Outgoing>,
    control: Receiver<Control>,
    doorbell: Receiver<()>,
    /// Serialised events waiting to be sent, and their bytes.
    batch: Vec<Vec<u8>>,
    bytes: usize,
    batch_size: usize,
    interval: Duration,
    attempts: u32,
    /// The server did not take the last request (no answer or a 5xx); the user was told.
    away: bool,
    /// When to try the server (while away) or the spool's leftovers again, and the wait after.
    retry_at: Instant,
    backoff: Duration,
    /// Requests the server stored, and how many it had when the last spool pass began.
    stored_posts: u64,
    stored_before_pass: u64,
}

impl Worker {
    pub(super) fn new(
        config: &Config,
        shared: Arc<Shared>,
        data: Receiver<Outgoing>,
        control: Receiver<Control>,
        doorbell: Receiver<()>,
    ) -> Worker {
        Worker {
            shared,
            sender: Sender::new(&config.endpoint, config.api_key.as_ref()),
            timeout: config.http_timeout,
            closing: false,
            gave_up: false,
            data,
            control,
            doorbell,
            batch: Vec::new(),
            bytes: 0,
            batch_size: config.batch_size,
            interval: config.batch_interval,
            attempts: config.max_attempts.max(1),
            away: false,
            retry_at: Instant::now(),
            backoff: RETRY_MIN,
            stored_posts: 0,
            stored_before_pass: 0,
        }
    }

    pub(super) fn run(&mut self) {
        loop {
            let now = Instant::now();
            let mut wake = now + self.interval;
            if self.spool_pending() {
                wake = wake.min(self.retry_at);
            }
            select! {
                recv(self.control) -> msg => {
                    // (Disconnected: the client is gone without a shutdown.)
                    let (reply, last) = msg.map_or((None, true), |c| (Some(c.reply), c.last));
                    if last {
                        self.closing = true;
                        self.attempts = 1;
                        self.timeout = self.timeout.min(FINAL_REQUEST_TIMEOUT);
                    }
                    self.drain_queue();
                    self.send_batch(true);
                    self.drain_spool();
                    if let Some(reply) = reply {
                        let _ = reply.send(self.shared.take_error());
                    }
                    if last {
                        return;
                    }
                    continue;
                },
                recv(self.doorbell) -> _ => {}
                default(wake.saturating_duration_since(now)) => {}
            }
            // Whatever arrived since the last wake-up goes now: the interval did the batching.
            self.drain_queue();
            self.send_batch(false);
            if self.spool_pending() && self.retry_at <= Instant::now() {
                self.drain_spool();
            }
        }
    }

    /// Something waits in the spool (spooled by anyone: this process re-sends it too).
    fn spool_pending(&self) -> bool {
        self.shared.spool.as_ref().is_some_and(|s| !s.is_empty())
    }

    fn drain_queue(&mut self) {
        while let Ok(event) = self.data.try_recv() {
            if let Some(json) = self.shared.serialise(event) {
                self.bytes += json.len() + 1;
                self.batch.push(json);
            }
            if self.batch.len() >= self.batch_size || self.bytes >= MAX_BATCH_BYTES {
                self.send_batch(false);
            }
        }
    }

    /// Sends the batch (while the server is away and its retry is not due, unless flushing:
    /// spools it), then, if the server took it and the spool's turn is due, the spool. The
    /// batch goes first: it is the probe of a server that was away (spooled batches it keeps
    /// failing on must not keep new ones from it), and where a shutdown that times out finds it.
    fn send_batch(&mut self, flushing: bool) {
        if self.batch.is_empty() {
            return;
        }
        self.bytes = 0;
        let events = Arc::new(std::mem::take(&mut self.batch));
        let now = Instant::now();
        if self.shared.mode == OfflineMode::Buffer && self.away && !flushing && self.retry_at > now
        {
            let reason = "the server is away";
            let n = events.len() as u64;
            return self.shared.offline(&assemble(&events), n, reason, true);
        }
        // Held where a shutdown that times out finds it until it is stored or spooled; if the
        // shutdown took it, it spooled it.
        *lock(&self.shared.posting) = Some(events.clone());
        self.deliver(&events, false);
        lock(&self.shared.posting).take();
        if !flushing && !self.away && self.retry_at <= Instant::now() && self.spool_pending() {
            self.drain_spool();
        }
    }

    /// POSTs events (with retries), then counts them or keeps them by the answer. `resent`:
    /// they come from the spool.
    fn deliver(&mut self, events: &[Vec<u8>], resent: bool) {
        let body = assemble(events);
        let n = events.len() as u64;
        if self.closing && self.gave_up {
            let reason = "the server failed during shutdown";
            return self.shared.offline(&body, n, reason, true);
        }
        let mut outcome = self.post(&body);
        for i in 1..self.attempts {
            if !matches!(outcome, Delivery::Away(_) | Delivery::Failed(_)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100 << (i - 1).min(4)));
            outcome = self.post(&body);
        }
        match outcome {
            Delivery::Stored(refused) => self.stored(n, refused, resent),
            Delivery::Away(reason) | Delivery::Failed(reason) => {
                self.shared.offline(&body, n, &reason, true);
                self.back_off(&reason);
            }
            // Over the server's limit: in halves, until each piece fits or is one event.
            Delivery::TooLarge(_) if events.len() > 1 => {
                let (a, b) = events.split_at(events.len() / 2);
                self.deliver(a, resent);
                self.deliver(b, resent);
            }
            Delivery::TooLarge(reason) | Delivery::Refused(reason) => {
                self.shared.refused(n, reason);
            }
        }
    }

    /// One request; a failure while closing ends the trying.
    fn post(&mut self, body: &[u8]) -> Delivery {
        let outcome = self.sender.post(body, self.timeout);
        match outcome {
            Delivery::Stored(_) => self.stored_posts += 1,
            Delivery::Away(_) | Delivery::Failed(_) if self.closing => self.gave_up = true,
            _ => {}
        }
        outcome
    }

    /// The server stored a request of `n` events, but for those it `refused`.
    fn stored(&mut self, n: u64, refused: BTreeMap<usize, String>, resent: bool) {
        let refused_n = refused.keys().filter(|&&i| (i as u64) < n).count() as u64;
        self.shared.count(|s| {
            let counter = if resent { &mut s.resent } else { &mut s.sent };
            *counter += n - refused_n;
        });
        if let Some(first) = refused.into_values().next().filter(|_| refused_n > 0) {
            self.shared.refused(refused_n, first);
        }
        if self.away {
            self.away = false;
            self.backoff = RETRY_MIN;
            self.retry_at = Instant::now();
            tracing::info!("X-Ray delivers to {} again", self.shared.endpoint);
        }
    }

    /// The server is away (`reason`): wait before trying it again, twice as long each time;
    /// say so once, when it goes away.
    fn back_off(&mut self, reason: &str) {
        self.later();
        if self.away {
            return;
        }
        self.away = true;
        let what = match (self.shared.mode, &self.shared.spool) {
            (OfflineMode::Buffer, Some(spool)) => format!(
                "keeping events in the spool {} and re-sending them when it is back",
                spool.dir().display()
            ),
            (OfflineMode::Fail, _) => "the next flush or run end reports it".into(),
            _ => "dropping events (counted in stats) until it is back".into(),
        };
        let endpoint = &self.shared.endpoint;
        tracing::warn!("X-Ray cannot deliver to {endpoint} ({reason}): {what}");
    }

    /// Sets the next try after the current wait, and doubles the wait.
    fn later(&mut self) {
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(RETRY_MAX);
    }

    /// Re-sends spooled batches, oldest first, one request each, until the spool is empty or
    /// the server is away. A batch the server fails on (5xx) is passed over for this pass, so
    /// one it keeps failing on does not hold up the others; but two in a row while it stored
    /// nothing since the previous pass began, and it is taken to be failing on everything.
    fn drain_spool(&mut self) {
        let shared = self.shared.clone();
        let Some(spool) = shared.spool.as_ref() else {
            return;
        };
        let stored_before = std::mem::replace(&mut self.stored_before_pass, self.stored_posts);
        let mut passed: Vec<SpoolFile> = Vec::new();
        let mut failures = 0;
        for name in spool.waiting() {
            if self.closing && self.gave_up {
                break;
            }
            let Some(mut file) = spool.claim(&name) else {
                continue; // another sender has it
            };
            let body = match spool.read(&mut file) {
                Ok(body) => body,
                Err(e) => {
                    tracing::warn!("X-Ray cannot read the spooled batch {name}: {e}");
                    continue;
                }
            };
            match self.post(&body) {
                Delivery::Stored(refused) => {
                    failures = 0;
                    self.stored(file.events, refused, true);
                    spool.done(file);
                }
                Delivery::Away(reason) => {
                    passed.push(file);
                    self.back_off(&reason);
                    break;
                }
                Delivery::Failed(reason) => {
                    passed.push(file);
                    failures += 1;
                    let storing = self.stored_posts > stored_before;
                    if (failures >= 2 && !storing) || self.closing {
                        self.back_off(&reason);
                        break;
                    }
                }
                Delivery::TooLarge(reason) => {
                    let events = split_body(&body);
                    if events.len() > 1 {
                        self.deliver(&events, true);
                    } else {
                        shared.refused(file.events, reason);
                    }
                    spool.done(file);
                }
                Delivery::Refused(reason) => {
                    // A batch damaged on disk is refused too: nothing in it can be re-sent.
                    shared.refused(file.events, format!("spooled batch {name}: {reason}"));
                    spool.done(file);
                }
            }
        }
        drop(passed); // unlocked: still in the spool, for the next pass or process
        if spool.is_empty() {
            if !self.away {
                self.backoff = RETRY_MIN;
            }
        } else if self.retry_at <= Instant::now() {
            // Batches passed over (the server stores others, only not these yet) or being sent
            // by another process: not again before a wait.
            self.later();
        }
    }
}

/// The events of a request body, each as its own JSON.
fn split_body(body: &[u8]) -> Vec<Vec<u8>> {
    #[derive(serde::Deserialize)]
    struct Raw<'a> {
        #[serde(borrow)]
        events: Vec<&'a serde_json::value::RawValue>,
    }
    let events = serde_json::from_slice::<Raw>(body).map_or_else(|_| Vec::new(), |r| r.events);
    events.iter().map(|e| e.get().as_bytes().to_vec()).collect()
}
