//! `POST /ingest` event by event: the valid events of a batch are stored and the others named in
//! the answer (`refused`), so one bad event costs only itself. Owns reading the batch, not the
//! rules of a valid event (`store::rows`) nor how it is written (`store`).

use super::error::{block, ApiError};
use super::handlers::{parse_json, parse_json_at};
use crate::store::rows::WriteSet;
use crate::store::{Store, StoreError};
use serde_json::value::RawValue;
use xray_wire::{Event, IngestBatch, IngestResponse, RefusedEvent};

/// Rounds of "a step of another run" a batch may cost: each refuses the step named and writes
/// the rest again. A batch with more such steps is refused whole (409).
const MAX_CONFLICT_ROUNDS: usize = 8;

/// An `/ingest` body with each event still its JSON text, so that each is read on its own.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBatch<'a> {
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

/// The events of a batch that are to be stored, and what was refused.
struct Checked<'a> {
    body: &'a [u8],
    /// The events' texts, once needed (not for a batch valid throughout, until a conflict).
    raw: Vec<&'a RawValue>,
    /// Indexes of the events still to be stored, in order.
    kept: Vec<usize>,
    refused: Vec<(usize, ApiError)>,
}

/// Stores the valid events of the batch in `body`. `Err` when the body is not a batch, or when
/// no event of it was stored (then the first event's refusal is the answer).
pub(crate) async fn ingest(store: &Store, body: &[u8]) -> Result<IngestResponse, ApiError> {
    let mut checked = Checked {
        body,
        raw: Vec::new(),
        kept: Vec::new(),
        refused: Vec::new(),
    };
    let mut set = checked.rows()?;
    let mut rounds = 0;
    let run_ids = loop {
        if checked.kept.is_empty() {
            break Vec::new();
        }
        let run_ids = set.run_ids();
        let job = (store.clone(), set);
        match block(move || job.0.write(&job.1)).await? {
            Ok(()) => break run_ids,
            Err(StoreError::StepOfAnotherRun {
                step_id,
                run_id,
                owner,
            }) if rounds < MAX_CONFLICT_ROUNDS => {
                rounds += 1;
                set = checked.refuse_step(&step_id, &run_id, &owner)?;
            }
            Err(e) => return Err(e.into()),
        }
    };
    checked.refused.sort_by_key(|(i, _)| *i);
    if checked.kept.is_empty() && !checked.refused.is_empty() {
        return Err(checked.refused.swap_remove(0).1);
    }
    Ok(IngestResponse {
        accepted: checked.kept.len(),
        run_ids,
        refused: checked
            .refused
            .into_iter()
            .map(|(index, e)| RefusedEvent {
                index,
                code: e.code().to_string(),
                error: e.to_string(),
            })
            .collect(),
    })
}

impl Checked<'_> {
    /// Reads event `i`; an error names it as `events[i]…`.
    fn parse(&self, i: usize) -> Result<Event, ApiError> {
        parse_json_at(self.raw[i].get().as_bytes(), &format!("events[{i}]"))
    }

    /// Reads the events' texts (each then read on its own by [`Checked::parse`]).
    fn split(&mut self) -> Result<(), ApiError> {
        if self.raw.is_empty() {
            self.raw = parse_json::<RawBatch>(self.body)?.events;
        }
        Ok(())
    }

    /// The rows of the events that are valid; the others are refused.
    fn rows(&mut self) -> Result<WriteSet, ApiError> {
        // Most batches are valid throughout: read and check them whole, in one pass, and each
        // event alone only when one is not.
        if let Ok(batch) = super::strict::from_slice::<IngestBatch>(self.body) {
            let n = batch.events.len();
            if let Ok(set) = WriteSet::from_batch(batch) {
                self.kept = (0..n).collect();
                return Ok(set);
            }
        }
        self.split()?;
        let mut events = Vec::with_capacity(self.raw.len());
        for i in 0..self.raw.len() {
            match self.parse(i) {
                Ok(e) => {
                    events.push(e);
                    self.kept.push(i);
                }
                Err(e) => self.refused.push((i, e)),
            }
        }
        if let Ok(set) = WriteSet::from_batch(IngestBatch { events }) {
            return Ok(set);
        }
        let mut events = Vec::with_capacity(self.kept.len());
        for i in std::mem::take(&mut self.kept) {
            let event = self.parse(i)?;
            let alone = IngestBatch {
                events: vec![event.clone()],
            };
            match WriteSet::from_batch(alone) {
                Ok(_) => {
                    events.push(event);
                    self.kept.push(i);
                }
                Err(e) => {
                    // Checked as the only event of a batch: its path says `events[0]`.
                    let path = e.path.replacen("events[0]", &format!("events[{i}]"), 1);
                    let message = format!("{path}: {}", e.message);
                    self.refused.push((i, ApiError::BadRequest(message)));
                }
            }
        }
        batch_rows(events)
    }

    /// Refuses the events that sent the step of `run_id` with `step_id`, which is a step of
    /// the run `owner`; the rows of the rest.
    fn refuse_step(
        &mut self,
        step_id: &str,
        run_id: &str,
        owner: &str,
    ) -> Result<WriteSet, ApiError> {
        self.split()?;
        let mut events = Vec::with_capacity(self.kept.len());
        for i in std::mem::take(&mut self.kept) {
            let event = self.parse(i)?;
            match &event {
                Event::StepFinished(s)
                    if s.run_id == run_id && s.step.step_id.as_deref() == Some(step_id) =>
                {
                    let conflict = StoreError::StepOfAnotherRun {
                        step_id: step_id.to_string(),
                        run_id: run_id.to_string(),
                        owner: owner.to_string(),
                    };
                    self.refused.push((i, conflict.into()));
                }
                _ => {
                    events.push(event);
                    self.kept.push(i);
                }
            }
        }
        batch_rows(events)
    }
}

/// The rows of events each valid on its own (so valid together: each event is checked alone).
fn batch_rows(events: Vec<Event>) -> Result<WriteSet, ApiError> {
    WriteSet::from_batch(IngestBatch { events }).map_err(|e| ApiError::BadRequest(e.to_string()))
}
