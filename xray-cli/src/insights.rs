//! `xray pipelines` and `xray compare`: many runs at once, rendered for the terminal.

use crate::render::table;
use xray_wire::{PipelineCompare, PipelineList, StepFigures};

/// A compare selector as typed: `version:V` or `since:T,until:T` as they are, any other word
/// a version (`xray compare p 1.0 1.1`).
pub fn selector(text: &str) -> String {
    if text.starts_with("version:") || text.starts_with("since:") || text.starts_with("until:") {
        text.to_string()
    } else {
        format!("version:{text}")
    }
}

/// A share as a percentage, one decimal at most: `58%`, `12.5%`.
fn pct(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) => {
            let t = format!("{:.1}", x * 100.0);
            format!("{}%", t.strip_suffix(".0").unwrap_or(&t))
        }
    }
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.digits$}"))
}

fn arrow(a: String, b: String) -> String {
    format!("{a} → {b}")
}

/// `xray pipelines`.
pub fn pipelines(list: &PipelineList) -> String {
    if list.pipelines.is_empty() {
        return "no pipelines".into();
    }
    let rows: Vec<Vec<String>> = list
        .pipelines
        .iter()
        .map(|p| {
            vec![
                p.pipeline.clone(),
                p.runs.to_string(),
                p.failed.to_string(),
                p.first_run_at.format("%Y-%m-%d %H:%M").to_string(),
                p.last_run_at.format("%Y-%m-%d %H:%M").to_string(),
                p.versions.join(", "),
            ]
        })
        .collect();
    table(
        &[
            "PIPELINE",
            "RUNS",
            "FAILED",
            "FIRST RUN",
            "LAST RUN",
            "VERSIONS",
        ],
        &rows,
    )
}

/// `xray compare`: the headline, then each step A → B (the one that moved most first) with its
/// reasons' shares of input.
pub fn compare(c: &PipelineCompare) -> String {
    let mut out = vec![
        c.headline
            .clone()
            .unwrap_or_else(|| "nothing moved".to_string()),
        format!(
            "{}: A = {} ({} runs), B = {} ({} runs)",
            c.pipeline, c.a, c.a_runs, c.b, c.b_runs
        ),
        String::new(),
    ];
    if c.steps.is_empty() {
        out.push("no steps".into());
        return out.join("\n");
    }
    let figures =
        |f: fn(&StepFigures) -> String, a: &StepFigures, b: &StepFigures| arrow(f(a), f(b));
    let mut rows = Vec::new();
    for s in &c.steps {
        rows.push(vec![
            s.step.clone(),
            s.step_type.as_str().to_string(),
            figures(|f| f.runs.to_string(), &s.a, &s.b),
            figures(|f| pct(f.rejection_rate), &s.a, &s.b),
            figures(|f| num(f.score_mean, 2), &s.a, &s.b),
            figures(|f| num(f.duration_ms_p50, 1), &s.a, &s.b),
        ]);
        for r in &s.reasons {
            rows.push(vec![
                format!("  {}", r.reason),
                String::new(),
                arrow(r.a_count.to_string(), r.b_count.to_string()),
                format!("{} of input", arrow(pct(r.a_share), pct(r.b_share))),
                String::new(),
                String::new(),
            ]);
        }
    }
    out.push(table(
        &["STEP", "TYPE", "RUNS", "REJECTED", "SCORE", "P50 MS"],
        &rows,
    ));
    out.join("\n")
}
