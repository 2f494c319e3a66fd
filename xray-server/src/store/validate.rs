//! A request becomes a [`WriteSet`]: every field checked that the wire's types do not check
//! themselves (names are [`xray_wire::Name`]s, checked when parsed), defaults filled in, derived
//! columns computed, so the database only ever sees well-formed rows. It must not touch the
//! database.

use super::rows::{
    from_micros, micros, KeptSamples, ReasonRow, RunRow, StepRow, WriteSet, ACCEPTED, REJECTED,
};
use chrono::{TimeZone, Utc};
use xray_wire::{
    Event, IngestBatch, JsonText, Name, ReasonSummary, RunRecord, RunStatus, StepRecord, Timestamp,
};

/// A request that is well-formed JSON but not a valid run, step or event.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ValidationError {
    /// Where in the body (`events[2].step.rejections.price_too_high`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

pub(super) fn invalid(path: impl Into<String>, message: impl Into<String>) -> ValidationError {
    ValidationError {
        path: path.into(),
        message: message.into(),
    }
}

impl WriteSet {
    /// Builds the rows of an SDK event batch.
    pub fn from_batch(batch: IngestBatch) -> Result<Self, ValidationError> {
        let mut set = WriteSet::default();
        for (i, event) in batch.events.into_iter().enumerate() {
            match event {
                Event::RunStarted(e) => {
                    let at = |field: &str| format!("events[{i}].run_started.{field}");
                    let links = Links::check(&at(""), e.correlation_id, e.traceparent)?;
                    set.runs_started.push(RunRow {
                        run_id: e.run_id.into(),
                        pipeline: e.pipeline.into(),
                        status: RunStatus::Running.as_str().into(),
                        input: json_text(e.input),
                        output: None,
                        error: None,
                        metadata: json_text(e.metadata),
                        started_at: micros(e.started_at),
                        ended_at: None,
                        duration_ms: None,
                        correlation_id: links.correlation_id,
                        trace_id: links.trace_id,
                        traceparent: links.traceparent,
                        version: e.version.map(String::from),
                        replay_of: e.replay_of.map(String::from),
                    });
                }
                Event::RunFinished(e) => {
                    let at = |field: &str| format!("events[{i}].run_finished.{field}");
                    if e.status == RunStatus::Running {
                        return Err(invalid(
                            at("status"),
                            "a finished run is `completed` or `failed`, not `running`",
                        ));
                    }
                    check_text(&at("error"), e.error.as_deref())?;
                    let duration = check_duration(&at("duration_ms"), e.duration_ms)?
                        .or_else(|| span_ms(e.started_at, e.ended_at));
                    set.runs_finished.push(RunRow {
                        run_id: e.run_id.into(),
                        pipeline: e.pipeline.into(),
                        status: e.status.as_str().into(),
                        input: None,
                        output: json_text(e.output),
                        error: e.error,
                        metadata: None,
                        started_at: micros(e.started_at),
                        ended_at: Some(micros(e.ended_at)),
                        duration_ms: duration,
                        correlation_id: None,
                        trace_id: None,
                        traceparent: None,
                        version: None,
                        replay_of: None,
                    });
                }
                Event::StepFinished(e) => {
                    let at = |field: &str| format!("events[{i}].step_finished.{field}");
                    let path = at("step");
                    if e.step.step_id.is_none() {
                        return Err(invalid(format!("{path}.step_id"), "required in /ingest"));
                    }
                    if e.step.position.is_none() {
                        return Err(invalid(format!("{path}.position"), "required in /ingest"));
                    }
                    let Some(started) = e.step.started_at else {
                        return Err(invalid(format!("{path}.started_at"), "required in /ingest"));
                    };
                    set.runs_placeholder.push(RunRow {
                        run_id: e.run_id.to_string(),
                        pipeline: e.pipeline.to_string(),
                        status: RunStatus::Running.as_str().into(),
                        input: None,
                        output: None,
                        error: None,
                        metadata: None,
                        started_at: micros(started),
                        ended_at: None,
                        duration_ms: None,
                        correlation_id: None,
                        trace_id: None,
                        traceparent: None,
                        version: None,
                        replay_of: None,
                    });
                    set.add_step(&path, &e.run_id, &e.pipeline, e.step, 0, started)?;
                }
            }
        }
        // One statement may not upsert the same row twice (PostgreSQL refuses): keep the last.
        dedup_last(&mut set.runs_started);
        dedup_last(&mut set.runs_finished);
        dedup_last(&mut set.runs_placeholder);
        Ok(set)
    }

    /// Builds the rows of one complete run (`POST /runs`).
    pub fn from_run(run: RunRecord) -> Result<Self, ValidationError> {
        let mut set = WriteSet::default();
        let run_id = run
            .run_id
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), String::from);
        check_text("error", run.error.as_deref())?;
        let links = Links::check("", run.correlation_id, run.traceparent)?;
        let started = run.started_at.unwrap_or_else(Utc::now);
        let duration = check_duration("duration_ms", run.duration_ms)?
            .or_else(|| run.ended_at.and_then(|end| span_ms(started, end)));
        // A step without a start time is taken to start when the one before it ended.
        let mut next_start = started;
        let mut step_ids = std::collections::HashSet::new();
        for (i, step) in run.steps.into_iter().enumerate() {
            let path = format!("steps[{i}]");
            set.add_step(&path, &run_id, &run.pipeline, step, i, next_start)?;
            if let Some(last) = set.steps.last() {
                let ran_us = last.duration_ms.map_or(0, |ms| (ms * 1000.0) as i64);
                if !step_ids.insert(last.step_id.clone()) {
                    return Err(invalid(
                        format!("{path}.step_id"),
                        format!("`{}` is used by another step of this run", last.step_id),
                    ));
                }
                // A duration that runs past the last representable time (`1e300` ms) must
                // not wrap the next step around to the first one: it starts with this one.
                let end = last
                    .ended_at
                    .unwrap_or(last.started_at.saturating_add(ran_us));
                next_start = Utc
                    .timestamp_micros(end)
                    .single()
                    .unwrap_or_else(|| from_micros(last.started_at));
            }
        }
        set.runs_complete.push(RunRow {
            run_id,
            pipeline: run.pipeline.into(),
            status: run.status.unwrap_or(RunStatus::Completed).as_str().into(),
            input: json_text(run.input),
            output: json_text(run.output),
            error: run.error,
            metadata: json_text(run.metadata),
            started_at: micros(started),
            ended_at: run.ended_at.map(micros),
            duration_ms: duration,
            correlation_id: links.correlation_id,
            trace_id: links.trace_id,
            traceparent: links.traceparent,
            version: run.version.map(String::from),
            replay_of: run.replay_of.map(String::from),
        });
        Ok(set)
    }

    fn add_step(
        &mut self,
        path: &str,
        run_id: &str,
        pipeline: &str,
        step: StepRecord,
        index: usize,
        default_start: Timestamp,
    ) -> Result<(), ValidationError> {
        let at = |field: &str| format!("{path}.{field}");
        check_text(&at("error"), step.error.as_deref())?;
        let position = match step.position {
            Some(p) => i32::try_from(p)
                .map_err(|_| invalid(at("position"), "must be at most 2147483647"))?,
            None => i32::try_from(index).map_err(|_| invalid(path, "too many steps"))?,
        };
        // An id the client sent is a valid name (checked when parsed); one derived from a valid
        // run id may be a few bytes over the limit for names, and is kept as it is.
        let step_id = match step.step_id {
            Some(id) => id.into(),
            None => format!("{run_id}:{position}"),
        };
        let input_count = count(&at("input_count"), step.input_count)?;
        let output_count = count(&at("output_count"), step.output_count)?;
        let started = step.started_at.unwrap_or(default_start);
        let duration = check_duration(&at("duration_ms"), step.duration_ms)?
            .or_else(|| step.ended_at.and_then(|end| span_ms(started, end)));
        for (field, score) in [
            (
                "decision.score",
                step.decision.as_ref().and_then(|d| d.score),
            ),
            (
                "decision.runner_up_score",
                step.decision.as_ref().and_then(|d| d.runner_up_score),
            ),
        ] {
            if score.is_some_and(|s| !s.is_finite()) {
                return Err(invalid(at(field), "must be a finite number"));
            }
        }
        // A select step's close call: the chosen score's lead over the runner-up's.
        let decision_margin = step
            .decision
            .as_ref()
            .and_then(|d| Some(d.score? - d.runner_up_score?));

        let ranking = step
            .ranking
            .map(|r| super::ranking::check(path, r, output_count))
            .transpose()?;
        let mut rejected: i64 = 0;
        for (reason, summary) in &step.rejections {
            let rpath = at(&format!("rejections.{reason}"));
            let n = self.add_outcome(&rpath, &step_id, REJECTED, reason, summary)?;
            rejected = rejected
                .checked_add(n)
                .ok_or_else(|| invalid(&rpath, "total rejection count is too large"))?;
        }
        let accepted = self.add_outcome(
            &at("acceptances"),
            &step_id,
            ACCEPTED,
            "",
            &step.acceptances,
        )?;

        self.steps.push(StepRow {
            step_id: step_id.clone(),
            run_id: run_id.to_string(),
            pipeline: pipeline.to_string(),
            position,
            name: step.name.into(),
            step_type: step.step_type.as_str().into(),
            capture: step.capture.as_str().into(),
            input_count,
            output_count,
            rejected_count: rejected,
            accepted_count: accepted,
            rejection_rate: rejection_rate(input_count, output_count, rejected, accepted),
            started_at: micros(started),
            ended_at: step.ended_at.map(micros),
            duration_ms: duration,
            input: json_text(step.input),
            output: json_text(step.output),
            decision_selected: step
                .decision
                .as_ref()
                .and_then(|d| d.selected.as_ref())
                .map(|s| s.0.clone()),
            decision_score: step.decision.as_ref().and_then(|d| d.score),
            decision: step
                .decision
                .as_ref()
                .and_then(|d| serde_json::to_string(d).ok()),
            error: step.error,
            attributes: json_text(step.attributes),
            step_key: None,
            rank_margin: ranking.as_ref().and_then(|r| r.margin).or(decision_margin),
            ranking: ranking.map(|r| {
                if !r.keys.is_empty() {
                    self.ranked.push((step_id.clone(), r.keys));
                }
                r.json
            }),
        });
        Ok(())
    }

    fn add_outcome(
        &mut self,
        path: &str,
        step_id: &str,
        outcome: &str,
        reason: &str,
        summary: &ReasonSummary,
    ) -> Result<i64, ValidationError> {
        let n = count(&format!("{path}.count"), Some(summary.count))?.unwrap_or(0);
        if summary.samples.len() as u64 > summary.count {
            return Err(invalid(
                path,
                format!(
                    "{} samples but a count of {}: the count includes every sample",
                    summary.samples.len(),
                    summary.count
                ),
            ));
        }
        if n > 0 {
            self.reasons.push(ReasonRow {
                step_id: step_id.into(),
                outcome: outcome.into(),
                reason: reason.into(),
                count: n,
            });
        }
        if summary.samples.is_empty() {
            return Ok(n);
        }
        let mut kept = KeptSamples::new(step_id, outcome, reason);
        kept.raw.reserve(
            summary
                .samples
                .iter()
                .map(|s| s.item_id.0.len() + s.details.as_ref().map_or(0, |d| d.get().len()) + 4)
                .sum(),
        );
        let mut details = Vec::new();
        for sample in &summary.samples {
            let id = &sample.item_id.0;
            match &sample.details {
                Some(d) => {
                    compact_into(d.get(), &mut details);
                    kept.push(id, Some(&details));
                }
                None => kept.push(id, None),
            }
        }
        self.kept.push(kept);
        Ok(n)
    }
}

/// A run's checked links to other systems.
struct Links {
    correlation_id: Option<String>,
    trace_id: Option<String>,
    traceparent: Option<String>,
}

impl Links {
    /// Checks a `traceparent` (W3C Trace Context), whose trace id becomes searchable (the
    /// correlation id is a name, checked when parsed). `prefix` is the field path's start
    /// (`events[0].run_started.` or empty).
    fn check(
        prefix: &str,
        correlation_id: Option<Name>,
        traceparent: Option<String>,
    ) -> Result<Links, ValidationError> {
        let correlation_id = correlation_id.map(String::from);
        let parsed = traceparent
            .as_deref()
            .map(xray_wire::TraceParent::parse)
            .transpose()
            .map_err(|e| invalid(format!("{prefix}traceparent"), e.to_string()))?;
        Ok(Links {
            correlation_id,
            trace_id: parsed.as_ref().map(|t| t.trace_id.clone()),
            traceparent: parsed.map(|t| t.to_string()),
        })
    }
}

/// Keeps only the last row for each run id, in order of those last rows.
fn dedup_last(rows: &mut Vec<RunRow>) {
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<RunRow> = rows
        .drain(..)
        .rev()
        .filter(|r| seen.insert(r.run_id.clone()))
        .collect();
    kept.reverse();
    *rows = kept;
}

/// Share of a step's input that it rejected, in 0..=1.
///
/// With an input count: `(input - output) / input` when the output count is known, else
/// `rejected / input`. Without one: `rejected / (rejected + accepted)`. `None` when nothing tells.
pub fn rejection_rate(
    input: Option<i64>,
    output: Option<i64>,
    rejected: i64,
    accepted: i64,
) -> Option<f64> {
    match (input, output) {
        (Some(i), Some(o)) if i > 0 => Some((i - o.min(i)) as f64 / i as f64),
        (Some(i), None) if i > 0 => Some(rejected.min(i) as f64 / i as f64),
        _ if rejected.saturating_add(accepted) > 0 => {
            Some(rejected as f64 / (rejected as f64 + accepted as f64))
        }
        _ => None,
    }
}

/// Text columns cannot hold NUL on PostgreSQL; refuse it on both backends alike.
fn check_text(path: &str, value: Option<&str>) -> Result<(), ValidationError> {
    match value {
        Some(v) if !xray_wire::text_is_valid(v) => {
            Err(invalid(path, "must not contain NUL (\\u0000) characters"))
        }
        _ => Ok(()),
    }
}

fn count(path: &str, value: Option<u64>) -> Result<Option<i64>, ValidationError> {
    value
        .map(|v| i64::try_from(v).map_err(|_| invalid(path, "must be at most 9223372036854775807")))
        .transpose()
}

fn check_duration(path: &str, value: Option<f64>) -> Result<Option<f64>, ValidationError> {
    match value {
        Some(v) if !v.is_finite() || v < 0.0 => Err(invalid(
            path,
            "must be a finite number of milliseconds, 0 or more",
        )),
        other => Ok(other),
    }
}

fn span_ms(start: Timestamp, end: Timestamp) -> Option<f64> {
    let us = (end - start).num_microseconds()?;
    (us >= 0).then(|| us as f64 / 1000.0)
}

fn json_text(value: Option<JsonText>) -> Option<String> {
    value.map(|v| compact(v.get()))
}

/// JSON text without the whitespace between tokens (clients may send it pretty-printed; it is
/// stored and served compact). The text is valid JSON already, so only strings need care.
pub fn compact(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    compact_into(text, &mut out);
    // Only ASCII bytes were left out, so the text is still UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// [`compact`] into `out` (emptied first), as bytes.
pub fn compact_into(text: &str, out: &mut Vec<u8>) {
    // Byte-wise: every byte JSON's structure is made of is ASCII, and no byte of a multi-byte
    // UTF-8 sequence is, so dropping ASCII whitespace between tokens keeps the text UTF-8.
    out.clear();
    let b = text.as_bytes();
    let (mut copied, mut i, mut in_string) = (0, 0, false);
    while i < b.len() {
        match b[i] {
            b'\\' if in_string => i += 1, // the escaped byte cannot end the string
            b'"' => in_string = !in_string,
            c if !in_string && c.is_ascii_whitespace() => {
                out.extend_from_slice(&b[copied..i]);
                copied = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.extend_from_slice(&b[copied.min(b.len())..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejection_rate_prefers_counts_then_events() {
        assert_eq!(rejection_rate(Some(100), Some(5), 0, 0), Some(0.95));
        assert_eq!(rejection_rate(Some(10), None, 4, 0), Some(0.4));
        assert_eq!(rejection_rate(None, None, 3, 1), Some(0.75));
        assert_eq!(rejection_rate(None, None, 0, 0), None);
        assert_eq!(rejection_rate(Some(0), Some(0), 0, 0), None);
    }

    #[test]
    fn compact_drops_whitespace_between_tokens_only() {
        let pretty = "{\n  \"a b\": [1, 2],\n  \"q\": \"say \\\"hi there\\\"\"\n}";
        assert_eq!(compact(pretty), r#"{"a b":[1,2],"q":"say \"hi there\""}"#);
        // Multi-byte characters, an escaped backslash right before a closing quote, tabs.
        assert_eq!(
            compact("{ \"é ü\" :\t\"a\\\\\" , \"😀\": [ 1 ,\n2 ] }"),
            r#"{"é ü":"a\\","😀":[1,2]}"#
        );
        let v: serde_json::Value = serde_json::from_str(&compact(pretty)).unwrap();
        assert_eq!(
            v,
            serde_json::from_str::<serde_json::Value>(pretty).unwrap()
        );
    }

    #[test]
    fn samples_beyond_the_count_are_refused() {
        let run: RunRecord = serde_json::from_value(serde_json::json!({
            "pipeline": "p",
            "steps": [{"name": "f", "step_type": "filter",
                       "rejections": {"x": {"count": 1, "samples": [{"item_id": 1}, {"item_id": 2}]}}}]
        }))
        .unwrap();
        let err = WriteSet::from_run(run).unwrap_err();
        assert_eq!(err.path, "steps[0].rejections.x");
    }
}
