//! Stored rows back as the wire's views: a run's summary, a step in full or as a search hit, an
//! item's events. Reading stored text never fails: a value the server cannot read (a database
//! edited by hand) comes back as a fallback, never an error. It must not touch the database.

use super::rows::from_micros;
use super::rows::{ReasonRow, RunRow, SampleRow, StepRow, ACCEPTED, REJECTED};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use xray_wire::{
    Capture, Decision, ItemEvent, ItemId, JsonText, Outcome, RankedAt, Ranking, ReasonSummary,
    RunStatus, RunSummary, Sample, StepType, StepView,
};

/// Stored JSON text back as JSON, without parsing it into a tree. The server wrote it, so it is
/// JSON; if the database was edited by hand and it is not, the text comes back as a JSON string
/// rather than failing the read.
pub fn parse_json(text: Option<String>) -> Option<JsonText> {
    text.map(raw_json)
}

/// Stored JSON text as raw JSON for a response. Text that is not JSON (a database edited by
/// hand) comes back as a JSON string.
pub fn raw_json(text: String) -> JsonText {
    JsonText::parse(text).unwrap_or_else(|e| {
        JsonText::of(&format!("unreadable stored JSON: {e}"))
            .unwrap_or_else(|| JsonText(RawValue::NULL.to_owned()))
    })
}

fn parse_enum<T: std::str::FromStr>(text: &str, fallback: T) -> T {
    text.parse().unwrap_or(fallback)
}

/// A stored count (never negative) as the API shows it.
pub(super) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl RunRow {
    /// The run as the API shows it.
    pub fn into_summary(self) -> RunSummary {
        RunSummary {
            status: parse_enum(&self.status, RunStatus::Running),
            run_id: self.run_id,
            pipeline: self.pipeline,
            input: parse_json(self.input),
            output: parse_json(self.output),
            error: self.error,
            metadata: parse_json(self.metadata),
            version: self.version,
            replay_of: self.replay_of,
            correlation_id: self.correlation_id,
            trace_id: self.trace_id,
            traceparent: self.traceparent,
            started_at: from_micros(self.started_at),
            ended_at: self.ended_at.map(from_micros),
            duration_ms: self.duration_ms,
            steps: None,
        }
    }
}

impl StepRow {
    /// The step as a search hit: without samples, naming its run, with its rejection counts.
    pub fn into_hit(self, rejections: BTreeMap<String, u64>) -> xray_wire::StepHit {
        xray_wire::StepHit {
            step_type: self.step_type(),
            capture: self.capture(),
            decision: self.decision(),
            rejections,
            step_id: self.step_id,
            run_id: self.run_id,
            pipeline: self.pipeline,
            position: u32::try_from(self.position).unwrap_or(0),
            name: self.name,
            input_count: self.input_count.and_then(|v| u64::try_from(v).ok()),
            output_count: self.output_count.and_then(|v| u64::try_from(v).ok()),
            rejection_rate: self.rejection_rate,
            started_at: from_micros(self.started_at),
            duration_ms: self.duration_ms,
            margin: self.rank_margin,
            error: self.error,
        }
    }

    /// The step's type.
    pub fn step_type(&self) -> StepType {
        parse_enum(&self.step_type, StepType::Transform)
    }

    /// The step's capture level.
    pub fn capture(&self) -> Capture {
        parse_enum(&self.capture, Capture::Sample)
    }

    /// The step's decision.
    pub fn decision(&self) -> Option<Decision> {
        self.decision.as_ref().map(|text| {
            serde_json::from_str(text).unwrap_or_else(|_| Decision {
                selected: self.decision_selected.clone().map(ItemId),
                score: self.decision_score,
                details: None,
                runner_up: None,
                runner_up_score: None,
            })
        })
    }

    /// The step in full, with its counts and samples.
    pub fn into_view(self, reasons: &[ReasonRow], samples: &[SampleRow]) -> StepView {
        let mut rejections: BTreeMap<String, ReasonSummary> = BTreeMap::new();
        let mut acceptances = ReasonSummary::default();
        for r in reasons {
            let target = if r.outcome == ACCEPTED {
                &mut acceptances
            } else {
                rejections.entry(r.reason.clone()).or_default()
            };
            target.count = to_u64(r.count);
        }
        for s in samples {
            let target = if s.outcome == ACCEPTED {
                &mut acceptances
            } else {
                rejections.entry(s.reason.clone()).or_default()
            };
            target.samples.push(Sample {
                item_id: ItemId(s.item_id.clone()),
                details: s.details.clone().map(raw_json),
            });
        }
        StepView {
            step_type: self.step_type(),
            capture: self.capture(),
            decision: self.decision(),
            ranking: self
                .ranking
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok()),
            margin: self.rank_margin,
            step_id: self.step_id,
            position: u32::try_from(self.position).unwrap_or(0),
            name: self.name,
            input_count: self.input_count.map(to_u64),
            output_count: self.output_count.map(to_u64),
            rejected_count: to_u64(self.rejected_count),
            rejection_rate: self.rejection_rate,
            started_at: from_micros(self.started_at),
            ended_at: self.ended_at.map(from_micros),
            duration_ms: self.duration_ms,
            input: parse_json(self.input),
            output: parse_json(self.output),
            rejections,
            acceptances,
            error: self.error,
            attributes: parse_json(self.attributes),
        }
    }
}

impl StepRow {
    /// A kept sample of this step as an event about its item.
    pub fn event(&self, s: &SampleRow) -> ItemEvent {
        let rejected = s.outcome == REJECTED;
        let outcome = if rejected {
            Outcome::Rejected
        } else {
            Outcome::Accepted
        };
        let mut event = self.item_event(outcome, parse_json(s.details.clone()));
        event.reason = rejected.then(|| s.reason.clone());
        event
    }

    /// This step's choice as an event about the item it selected.
    pub fn selected_event(&self) -> ItemEvent {
        let details = self
            .decision()
            .and_then(|d| d.details.as_ref().and_then(JsonText::of));
        let mut event = self.item_event(Outcome::Selected, details);
        event.score = self.decision_score;
        event
    }

    /// An event of this step about an item, without reason or score.
    fn item_event(&self, outcome: Outcome, details: Option<JsonText>) -> ItemEvent {
        ItemEvent {
            run_id: self.run_id.clone(),
            pipeline: self.pipeline.clone(),
            step_id: self.step_id.clone(),
            step_name: self.name.clone(),
            step_type: self.step_type(),
            position: u32::try_from(self.position).unwrap_or(0),
            outcome,
            reason: None,
            details,
            score: None,
            ranked: None,
            started_at: from_micros(self.started_at),
        }
    }

    /// Where this rank step placed `item`, if it kept it.
    pub fn ranked_event(&self, item: &str) -> Option<ItemEvent> {
        let ranking: Ranking = serde_json::from_str(self.ranking.as_deref()?).ok()?;
        let sample = ranking
            .samples
            .iter()
            .find(|s| s.item_id.as_str() == item)?;
        let mut event = self.item_event(Outcome::Ranked, sample.details.clone());
        event.score = Some(sample.score);
        event.ranked = Some(RankedAt {
            position: sample.position,
            cutoff: ranking.cutoff,
            cutoff_score: ranking.cutoff_score,
            margin: ranking.cutoff_score.map(|c| sample.score - c),
            made_the_cut: ranking.cutoff.map(|c| sample.position <= c),
        });
        Some(event)
    }
}
