//! What a replay changed: a recorded run (or one of its steps) run again on its captured input,
//! compared step by step with the original. Computed from the two runs as the server answers
//! them (`GET /runs/{id}`), so the SDK (`xray_replay`) and the CLI (`xray replay`) report the
//! same thing the same way.

use crate::{JsonText, RunDetail, RunStatus, StepType, StepView};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Longest JSON text of an output the report prints (the report keeps it whole); a longer
/// array is printed as its length.
const PRINTED_OUTPUT: usize = 160;

/// The `replay_of` of a replay of the step at `position` of run `run_id`.
pub fn step_replay_of(run_id: &str, position: u32) -> String {
    format!("{run_id}:{position}")
}

/// The position of the replayed step, when `replay_of` names a step (`RUN_ID:POSITION`).
pub fn replayed_position(replay_of: &str) -> Option<u32> {
    replay_of.rsplit_once(':')?.1.parse().ok()
}

/// One step's figures in one of the two runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepFacts {
    /// The step's id.
    pub step_id: String,
    /// Items in.
    pub input_count: Option<u64>,
    /// Items out.
    pub output_count: Option<u64>,
    /// Exact rejections by reason.
    pub rejections: BTreeMap<String, u64>,
    /// Exact acceptances.
    pub accepted: u64,
    /// The item it chose.
    pub selected: Option<String>,
    /// The choice's score.
    pub score: Option<f64>,
    /// Its output.
    pub output: Option<JsonText>,
    /// Its error.
    pub error: Option<String>,
}

impl StepFacts {
    /// The figures of a step as the server answers it.
    pub fn of(step: &StepView) -> StepFacts {
        let decision = step.decision.as_ref();
        StepFacts {
            step_id: step.step_id.clone(),
            input_count: step.input_count,
            output_count: step.output_count,
            rejections: step
                .rejections
                .iter()
                .map(|(reason, summary)| (reason.clone(), summary.count))
                .collect(),
            accepted: step.acceptances.count,
            selected: decision.and_then(|d| d.selected.as_ref().map(|s| s.to_string())),
            score: decision.and_then(|d| d.score),
            output: step.output.clone(),
            error: step.error.clone(),
        }
    }
}

/// One step of the original run beside the same step of the replay (aligned by name and by
/// occurrence of that name), and what changed between them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReplay {
    /// The step's name.
    pub name: String,
    /// Its type.
    pub step_type: StepType,
    /// In the original run (`None`: only the replay ran it).
    pub original: Option<StepFacts>,
    /// In the replay (`None`: the replay did not run it).
    pub replayed: Option<StepFacts>,
    /// What changed, one readable line each (empty: nothing did).
    pub changes: Vec<String>,
}

/// A replay beside its original: the two runs' outcomes and every step's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayReport {
    /// The pipeline.
    pub pipeline: String,
    /// The run that was replayed.
    pub original_run_id: String,
    /// The replay.
    pub replay_run_id: String,
    /// What the replay replays: the original run's id, or `RUN_ID:POSITION` for one step.
    pub replay_of: String,
    /// The original run's status.
    pub original_status: RunStatus,
    /// The replay's status.
    pub replayed_status: RunStatus,
    /// The original run's output.
    pub original_output: Option<JsonText>,
    /// The replay's output.
    pub replayed_output: Option<JsonText>,
    /// The original run's error.
    pub original_error: Option<String>,
    /// The replay's error.
    pub replayed_error: Option<String>,
    /// The steps, in the replay's order (then steps only the original ran).
    pub steps: Vec<StepReplay>,
    /// What changed in the run's own outcome (status, output, error; only the status for the
    /// replay of a step, whose run has no output of its own).
    pub changes: Vec<String>,
}

fn arrow<T: PartialEq + fmt::Display>(what: &str, a: Option<T>, b: Option<T>) -> Option<String> {
    let show = |v: &Option<T>| v.as_ref().map_or_else(|| "-".to_string(), T::to_string);
    (a != b).then(|| format!("{what} {} → {}", show(&a), show(&b)))
}

fn printed(json: &Option<JsonText>) -> String {
    match json {
        None => "-".to_string(),
        Some(j) if j.get().len() <= PRINTED_OUTPUT => j.get().to_string(),
        Some(j) if j.get().starts_with('[') => match j.to_value() {
            serde_json::Value::Array(items) => format!("[{} items]", items.len()),
            _ => "[…]".to_string(),
        },
        Some(j) => {
            let text = j.get();
            let mut cut = PRINTED_OUTPUT;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            format!("{}…", &text[..cut])
        }
    }
}

fn same_json(a: &Option<JsonText>, b: &Option<JsonText>) -> bool {
    a.as_ref().map(JsonText::to_value) == b.as_ref().map(JsonText::to_value)
}

fn step_changes(a: &StepFacts, b: &StepFacts) -> Vec<String> {
    let mut changes = Vec::new();
    changes.extend(arrow("in", a.input_count, b.input_count));
    changes.extend(arrow("out", a.output_count, b.output_count));
    let reasons: std::collections::BTreeSet<&String> =
        a.rejections.keys().chain(b.rejections.keys()).collect();
    for reason in reasons {
        let before = a.rejections.get(reason).copied().unwrap_or(0);
        let after = b.rejections.get(reason).copied().unwrap_or(0);
        if before != after {
            let delta = after as i128 - before as i128;
            changes.push(format!("{reason} {before} → {after} ({delta:+})"));
        }
    }
    changes.extend(arrow("accepted", Some(a.accepted), Some(b.accepted)));
    let choice = |f: &StepFacts| {
        f.selected.as_ref().map(|s| match f.score {
            Some(score) => format!("{s} ({score:.3})"),
            None => s.clone(),
        })
    };
    changes.extend(arrow("chose", choice(a), choice(b)));
    if !same_json(&a.output, &b.output) {
        changes.push(format!(
            "output {} → {}",
            printed(&a.output),
            printed(&b.output)
        ));
    }
    changes.extend(arrow("error", a.error.as_deref(), b.error.as_deref()));
    changes
}

fn only_step(step: &StepView, original: bool) -> StepReplay {
    let facts = Some(StepFacts::of(step));
    let (original, replayed, change) = if original {
        (facts, None, "not run in the replay")
    } else {
        (None, facts, "new in the replay")
    };
    StepReplay {
        name: step.name.clone(),
        step_type: step.step_type,
        original,
        replayed,
        changes: vec![change.to_string()],
    }
}

impl ReplayReport {
    /// Compares a replay with its original run. A replay of one step (`replay_of` is
    /// `RUN_ID:POSITION`) is compared with the original from that step on, and original steps
    /// the replay did not run are left out; a replay of the whole run lists them.
    pub fn compare(original: &RunDetail, replay: &RunDetail) -> ReplayReport {
        let replay_of = replay
            .replay_of
            .clone()
            .unwrap_or_else(|| original.run_id.clone());
        let from = if replay_of == original.run_id {
            None
        } else {
            replayed_position(&replay_of)
        };
        let no_steps = Vec::new();
        let mut left: Vec<Option<&StepView>> = original
            .steps
            .as_ref()
            .unwrap_or(&no_steps)
            .iter()
            .filter(|s| from.is_none_or(|p| s.position >= p))
            .map(Some)
            .collect();
        let mut steps = Vec::new();
        for step in replay.steps.as_ref().unwrap_or(&no_steps) {
            // The first original step of that name not matched yet.
            let matched = left
                .iter_mut()
                .find(|s| s.is_some_and(|s| s.name == step.name))
                .and_then(Option::take);
            steps.push(match matched {
                Some(before) => {
                    let (a, b) = (StepFacts::of(before), StepFacts::of(step));
                    StepReplay {
                        name: step.name.clone(),
                        step_type: step.step_type,
                        changes: step_changes(&a, &b),
                        original: Some(a),
                        replayed: Some(b),
                    }
                }
                None => only_step(step, false),
            });
        }
        if from.is_none() {
            steps.extend(left.into_iter().flatten().map(|s| only_step(s, true)));
        }
        let mut changes = Vec::new();
        changes.extend(arrow("status", Some(original.status), Some(replay.status)));
        // A step's replay has no output of its own to compare with the run's.
        if from.is_none() && !same_json(&original.output, &replay.output) {
            changes.push(format!(
                "output {} → {}",
                printed(&original.output),
                printed(&replay.output)
            ));
        }
        if from.is_none() {
            changes.extend(arrow(
                "error",
                original.error.as_deref(),
                replay.error.as_deref(),
            ));
        }
        ReplayReport {
            pipeline: original.pipeline.clone(),
            original_run_id: original.run_id.clone(),
            replay_run_id: replay.run_id.clone(),
            replay_of,
            original_status: original.status,
            replayed_status: replay.status,
            original_output: original.output.clone(),
            replayed_output: replay.output.clone(),
            original_error: original.error.clone(),
            replayed_error: replay.error.clone(),
            steps,
            changes,
        }
    }

    /// Whether anything changed, in the run or in any step.
    pub fn changed(&self) -> bool {
        !self.changes.is_empty() || self.steps.iter().any(|s| !s.changes.is_empty())
    }

    /// The first step of this name.
    pub fn step(&self, name: &str) -> Option<&StepReplay> {
        self.steps.iter().find(|s| s.name == name)
    }
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let changed = self.steps.iter().filter(|s| !s.changes.is_empty()).count();
        let what = if self.replay_of == self.original_run_id {
            format!("run {}", self.original_run_id)
        } else {
            format!("step {}", self.replay_of)
        };
        writeln!(
            f,
            "replay of {what} ({}) → run {}: {changed} of {} steps changed",
            self.pipeline,
            self.replay_run_id,
            self.steps.len()
        )?;
        for step in &self.steps {
            let figures = step.replayed.as_ref().or(step.original.as_ref());
            let counts = figures.map_or_else(String::new, |s| {
                let n = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
                format!("  {} → {}", n(s.input_count), n(s.output_count))
            });
            if step.changes.is_empty() {
                writeln!(f, "  {} ({}){counts}: unchanged", step.name, step.step_type)?;
            } else {
                writeln!(f, "  {} ({})", step.name, step.step_type)?;
                for change in &step.changes {
                    writeln!(f, "      {change}")?;
                }
            }
        }
        if self.changes.is_empty() && self.replay_of != self.original_run_id {
            write!(f, "  run: {}", self.replayed_status)
        } else if self.changes.is_empty() {
            write!(f, "  run: {}, output unchanged", self.replayed_status)
        } else {
            write!(f, "  run: {}", self.changes.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn step(position: u32, name: &str, rejected: u64, chose: Option<(&str, f64)>) -> Value {
        json!({"step_id": format!("s{position}{name}"), "position": position, "name": name,
            "step_type": if chose.is_some() { "select" } else { "filter" }, "capture": "sample",
            "input_count": 10, "output_count": 10 - rejected, "rejected_count": rejected,
            "rejection_rate": null, "started_at": "2026-12-07T12:00:00Z", "ended_at": null,
            "duration_ms": null, "input": null, "output": null,
            "rejections": if rejected > 0 { json!({"category_mismatch": {"count": rejected}}) }
                else { json!({}) },
            "acceptances": {"count": 10 - rejected},
            "decision": chose.map(|(id, score)| json!({"selected": id, "score": score})),
            "error": null, "attributes": null})
    }
    use serde_json::Value;

    fn run(id: &str, replay_of: Option<&str>, steps: Vec<Value>, output: Value) -> RunDetail {
        serde_json::from_value(json!({"run_id": id, "pipeline": "p", "status": "completed",
            "input": null, "output": output, "error": null, "metadata": null,
            "replay_of": replay_of, "started_at": "2026-12-07T12:00:00Z", "ended_at": null,
            "duration_ms": null, "steps": steps}))
        .expect("a run")
    }

    #[test]
    fn a_replay_names_what_moved_step_by_step() {
        let original = run(
            "a",
            None,
            vec![
                step(0, "filter", 3, None),
                step(1, "select", 0, Some(("stand", 0.9))),
                step(2, "gone", 0, None),
            ],
            json!({"id": "stand"}),
        );
        let replay = run(
            "b",
            Some("a"),
            vec![
                step(0, "filter", 5, None),
                step(1, "select", 0, Some(("case", 0.8))),
            ],
            json!({"id": "case"}),
        );
        let report = ReplayReport::compare(&original, &replay);
        assert!(report.changed());
        assert_eq!(
            report.step("filter").expect("filter").changes,
            [
                "out 7 → 5",
                "category_mismatch 3 → 5 (+2)",
                "accepted 7 → 5"
            ]
        );
        assert_eq!(
            report.step("select").expect("select").changes,
            ["chose stand (0.900) → case (0.800)"]
        );
        assert_eq!(
            report.step("gone").expect("gone").changes,
            ["not run in the replay"]
        );
        assert_eq!(report.changes, [r#"output {"id":"stand"} → {"id":"case"}"#]);
        let long = |n: usize| JsonText::of(&vec!["an item of some length"; n]);
        assert_eq!(printed(&long(40)), "[40 items]");
        assert_eq!(printed(&long(1)), r#"["an item of some length"]"#);
        let text = report.to_string();
        assert!(
            text.starts_with("replay of run a (p) → run b: 3 of 3 steps changed\n"),
            "{text}"
        );
        assert!(
            text.contains("      category_mismatch 3 → 5 (+2)\n"),
            "{text}"
        );
    }

    #[test]
    fn a_step_replay_is_compared_from_that_step_on() {
        let steps = vec![
            step(0, "filter", 3, None),
            step(1, "filter", 4, None),
            step(2, "select", 0, Some(("stand", 0.9))),
        ];
        let original = run("a", None, steps, json!(1));
        let replay = run(
            "b",
            Some(&step_replay_of("a", 1)),
            vec![step(0, "filter", 4, None)],
            json!(1),
        );
        let report = ReplayReport::compare(&original, &replay);
        assert_eq!(report.steps.len(), 1, "{report:?}");
        assert_eq!(
            report.steps[0].original.as_ref().expect("matched").step_id,
            "s1filter"
        );
        assert!(!report.changed(), "{report}");
        assert!(report
            .to_string()
            .contains("filter (filter)  10 → 6: unchanged"));
        assert_eq!(replayed_position("a:1"), Some(1));
        assert_eq!(replayed_position("a"), None);
    }
}
