//! Tables for the terminal.

use xray_wire::{ItemFate, Outcome, RunDetail, RunList, StepList, StepView};

/// Left-aligned columns, two spaces apart.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = vec![line(headers.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max - 1).collect::<String>())
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |ms| format!("{ms:.1} ms"))
}

fn count(v: Option<u64>) -> String {
    v.map_or_else(|| "?".into(), |n| n.to_string())
}

fn top_reasons(step: &StepView) -> String {
    let mut reasons: Vec<(&String, u64)> =
        step.rejections.iter().map(|(r, s)| (r, s.count)).collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    reasons
        .iter()
        .take(3)
        .map(|(r, n)| format!("{r} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `xray runs`.
pub fn runs(list: &RunList) -> String {
    if list.runs.is_empty() {
        return "no runs".into();
    }
    let rows: Vec<Vec<String>> = list
        .runs
        .iter()
        .map(|r| {
            vec![
                r.run_id.clone(),
                r.pipeline.clone(),
                r.status.to_string(),
                r.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                ms(r.duration_ms),
                match (&r.error, &r.output) {
                    (Some(e), _) => clip(&format!("error: {e}"), 60),
                    (None, Some(o)) => clip(o.get(), 60),
                    (None, None) => "-".into(),
                },
            ]
        })
        .collect();
    let mut out = table(
        &["RUN", "PIPELINE", "STATUS", "STARTED", "DURATION", "OUTPUT"],
        &rows,
    );
    if let Some(c) = &list.next_cursor {
        out.push_str(&format!("\n(more: add ?cursor={c})"));
    }
    out
}

/// `xray show RUN`.
pub fn run(detail: &RunDetail) -> String {
    let r = detail;
    let mut out = format!(
        "run {}  pipeline {}  {}  {}\n",
        r.run_id,
        r.pipeline,
        r.status,
        ms(r.duration_ms)
    );
    if let Some(input) = &r.input {
        out.push_str(&format!("input:  {}\n", clip(input.get(), 100)));
    }
    if let Some(output) = &r.output {
        out.push_str(&format!("output: {}\n", clip(output.get(), 100)));
    }
    if let Some(error) = &r.error {
        out.push_str(&format!("error:  {error}\n"));
    }
    let rows: Vec<Vec<String>> = detail
        .steps
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|s| {
            let decision = s.decision.as_ref().map_or_else(String::new, |d| {
                format!(
                    "{} ({})",
                    d.selected.as_ref().map_or("-", |i| i.as_str()),
                    d.score.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
                )
            });
            let note = match &s.error {
                Some(e) => format!("error: {e}"),
                None if !decision.is_empty() => format!("chose {decision}"),
                None => top_reasons(s),
            };
            vec![
                s.position.to_string(),
                s.name.clone(),
                s.step_type.to_string(),
                format!("{} → {}", count(s.input_count), count(s.output_count)),
                ms(s.duration_ms),
                clip(&note, 70),
            ]
        })
        .collect();
    out.push('\n');
    out.push_str(&table(
        &["#", "STEP", "TYPE", "IN → OUT", "DURATION", "WHY"],
        &rows,
    ));
    out
}

/// `xray steps`.
pub fn steps(list: &StepList) -> String {
    if list.steps.is_empty() {
        return "no steps".into();
    }
    let rows: Vec<Vec<String>> = list
        .steps
        .iter()
        .map(|s| {
            let mut reasons: Vec<(&String, &u64)> = s.rejections.iter().collect();
            reasons.sort_by(|a, b| b.1.cmp(a.1));
            vec![
                s.run_id.clone(),
                s.pipeline.clone(),
                s.name.clone(),
                s.step_type.to_string(),
                format!("{} → {}", count(s.input_count), count(s.output_count)),
                s.rejection_rate
                    .map_or_else(|| "-".into(), |r| format!("{:.0}%", r * 100.0)),
                ms(s.duration_ms),
                s.decision
                    .as_ref()
                    .and_then(|d| d.score)
                    .map_or_else(|| "-".into(), |v| format!("{v:.2}")),
                clip(
                    &reasons
                        .iter()
                        .take(2)
                        .map(|(r, n)| format!("{r} {n}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    50,
                ),
            ]
        })
        .collect();
    table(
        &[
            "RUN",
            "PIPELINE",
            "STEP",
            "TYPE",
            "IN → OUT",
            "REJECTED",
            "DURATION",
            "SCORE",
            "TOP REASONS",
        ],
        &rows,
    )
}

/// `xray why RUN ITEM`.
pub fn fate(fate: &ItemFate) -> String {
    let mut out = format!("item {} in run {}\n", fate.item_id, fate.run_id);
    if fate.events.is_empty() {
        out.push_str("no step recorded this item");
    } else {
        let rows: Vec<Vec<String>> = fate
            .events
            .iter()
            .map(|e| {
                let why = match e.outcome {
                    Outcome::Rejected => format!(
                        "{}{}",
                        e.reason.clone().unwrap_or_default(),
                        e.details
                            .as_ref()
                            .map_or_else(String::new, |d| format!(" {}", d.get()))
                    ),
                    Outcome::Accepted => e
                        .details
                        .as_ref()
                        .map_or_else(String::new, |d| d.get().to_string()),
                    Outcome::Selected => format!(
                        "score {}{}",
                        e.score.map_or_else(|| "-".into(), |s| format!("{s:.2}")),
                        e.details
                            .as_ref()
                            .map_or_else(String::new, |d| format!(" {}", d.get()))
                    ),
                    Outcome::Ranked => ranked(e),
                };
                vec![
                    e.position.to_string(),
                    e.step_name.clone(),
                    e.step_type.to_string(),
                    format!("{:?}", e.outcome).to_lowercase(),
                    clip(&why, 90),
                ]
            })
            .collect();
        out.push_str(&table(&["#", "STEP", "TYPE", "OUTCOME", "WHY"], &rows));
    }
    if !fate.sampled_steps.is_empty() {
        out.push_str(&format!(
            "\nnote: {} kept samples only; an event about this item there may not have been kept",
            fate.sampled_steps.join(", ")
        ));
    }
    out
}

/// "ranked #12 (0.43), cutoff 10 at 0.55: missed by 0.12".
fn ranked(e: &xray_wire::ItemEvent) -> String {
    let Some(r) = &e.ranked else {
        return String::new();
    };
    // Three decimals: a close call is decided in them.
    let score = e.score.map_or_else(|| "-".into(), |s| format!("{s:.3}"));
    let mut line = format!("ranked #{} ({score})", r.position);
    if let Some(cutoff) = r.cutoff {
        line.push_str(&format!(", cutoff {cutoff}"));
        if let Some(at) = r.cutoff_score {
            line.push_str(&format!(" at {at:.3}"));
        }
    }
    match (r.made_the_cut, r.margin) {
        (Some(false), Some(m)) => line.push_str(&format!(": missed by {:.3}", -m)),
        (Some(false), None) => line.push_str(": missed the cut"),
        (Some(true), _) => line.push_str(": made the cut"),
        (None, _) => {}
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use xray_wire::{ItemEvent, RankedAt, StepType};

    fn event(position: u64, score: f64, made_the_cut: bool) -> ItemEvent {
        ItemEvent {
            run_id: "r".into(),
            pipeline: "p".into(),
            step_id: "s".into(),
            step_name: "rank_by_relevance".into(),
            step_type: StepType::Rank,
            position: 3,
            outcome: Outcome::Ranked,
            reason: None,
            details: None,
            score: Some(score),
            ranked: Some(RankedAt {
                position,
                cutoff: Some(1),
                cutoff_score: Some(0.715),
                margin: Some(score - 0.715),
                made_the_cut: Some(made_the_cut),
            }),
            started_at: Default::default(),
        }
    }

    #[test]
    fn a_ranked_event_says_where_the_item_landed_and_by_how_much_it_missed() {
        assert_eq!(
            ranked(&event(2, 0.549, false)),
            "ranked #2 (0.549), cutoff 1 at 0.715: missed by 0.166"
        );
        assert_eq!(
            ranked(&event(1, 0.715, true)),
            "ranked #1 (0.715), cutoff 1 at 0.715: made the cut"
        );
    }
}
