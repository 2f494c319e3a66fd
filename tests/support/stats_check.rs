//! Figures of many runs computed from the stored steps (`GET /runs/{id}`), independently of the
//! server's rollups, and the checks of `GET /pipelines/{p}/stats` and `/compare` against them
//! (`tests/insights_stats.rs`).

use super::Api;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use xray_wire::{PipelineCompare, PipelineStats, RunList, RunStatus, RunSummary};

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;

/// What one step name adds up to over some runs, computed from the stored steps.
#[derive(Debug, Default)]
pub struct Acc {
    runs: u64,
    failed: u64,
    input: u64,
    output: u64,
    rejected_in: f64,
    reasons: BTreeMap<String, u64>,
    durations: Vec<f64>,
    scores: Vec<f64>,
}

impl Acc {
    pub fn rate(&self) -> Option<f64> {
        (self.input > 0).then(|| self.rejected_in / self.input as f64)
    }
    pub fn share(&self, reason: &str) -> Option<f64> {
        let n = self.reasons.get(reason).copied().unwrap_or(0);
        (self.input > 0).then(|| n as f64 / self.input as f64)
    }
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let mut d = self.durations.clone();
        d.sort_by(f64::total_cmp);
        let rank = ((q * d.len() as f64).ceil() as usize).clamp(1, d.len().max(1));
        d.get(rank - 1).copied()
    }
    pub fn score_mean(&self) -> Option<f64> {
        (!self.scores.is_empty())
            .then(|| self.scores.iter().sum::<f64>() / self.scores.len() as f64)
    }
}

/// Every finished run of the pipeline with its steps, as stored.
pub fn stored_runs(api: &Api, pipeline: &str) -> Vec<RunSummary> {
    let list: RunList =
        serde_json::from_value(api.ok(&format!("/runs?pipeline={pipeline}&limit=1000")))
            .expect("runs");
    list.runs
        .iter()
        .filter(|r| r.status != RunStatus::Running)
        .map(|r| serde_json::from_value(api.ok(&format!("/runs/{}", r.run_id))).expect("run"))
        .collect()
}

pub fn us(t: &DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Whether a run is selected by (since, until, version), hours overlapping the window counting.
pub fn selected(
    r: &RunSummary,
    since: Option<i64>,
    until: Option<i64>,
    version: Option<&str>,
) -> bool {
    let hour = us(&r.started_at).div_euclid(HOUR) * HOUR;
    since.is_none_or(|s| hour >= s.div_euclid(HOUR) * HOUR)
        && until.is_none_or(|u| hour < u)
        && version.is_none_or(|v| r.version.as_deref() == Some(v))
}

/// Per (step name, bucket): the figures; per name: the mean position.
pub fn accumulate(
    runs: &[&RunSummary],
    bucket: impl Fn(i64) -> i64,
) -> (BTreeMap<(String, i64), Acc>, HashMap<String, f64>) {
    let mut out: BTreeMap<(String, i64), Acc> = BTreeMap::new();
    let mut pos: HashMap<String, (f64, f64)> = HashMap::new();
    for r in runs {
        let b = bucket(us(&r.started_at));
        let steps = r.steps.as_ref().expect("steps");
        let names: BTreeSet<&str> = steps.iter().map(|s| s.name.as_str()).collect();
        for name in names {
            let a = out.entry((name.to_string(), b)).or_default();
            let mine: Vec<_> = steps.iter().filter(|s| s.name == name).collect();
            a.runs += 1;
            a.failed += u64::from(mine.iter().any(|s| s.error.is_some()));
            for s in mine {
                let p = pos.entry(name.to_string()).or_default();
                p.0 += f64::from(s.position);
                p.1 += 1.0;
                if let Some(i) = s.input_count {
                    a.input += i;
                    a.rejected_in +=
                        s.rejection_rate.expect("a rate where the input is known") * i as f64;
                }
                a.output += s.output_count.unwrap_or(0);
                for (reason, sum) in &s.rejections {
                    *a.reasons.entry(reason.clone()).or_insert(0) += sum.count;
                }
                a.durations.extend(s.duration_ms);
                a.scores.extend(s.decision.as_ref().and_then(|d| d.score));
            }
        }
    }
    let mean = pos.into_iter().map(|(n, (s, c))| (n, s / c)).collect();
    (out, mean)
}

pub fn in_order(names: BTreeSet<String>, mean: &HashMap<String, f64>) -> Vec<String> {
    let mut names: Vec<String> = names.into_iter().collect();
    names.sort_by(|a, b| mean[a].total_cmp(&mean[b]).then(a.cmp(b)));
    names
}

pub fn close(what: &str, got: Option<f64>, want: Option<f64>, tolerance: impl Fn(f64) -> f64) {
    match (got, want) {
        (Some(g), Some(w)) => assert!((g - w).abs() <= tolerance(w), "{what}: {g} against {w}"),
        _ => assert_eq!(
            got.is_some(),
            want.is_some(),
            "{what}: {got:?} against {want:?}"
        ),
    }
}

pub fn exact(w: f64) -> f64 {
    1e-9 * w.abs().max(1.0)
}

/// A duration from the histogram: within 0.5% (or 0.5 µs).
pub fn resolution(w: f64) -> f64 {
    w.abs() * 0.005 + 0.0005 + 1e-9
}

/// Checks every figure of `/stats` with `query` against the stored runs.
pub fn check_stats(
    api: &Api,
    pipeline: &str,
    runs: &[RunSummary],
    query: &str,
    sel: (Option<i64>, Option<i64>, Option<&str>),
    day: bool,
) {
    let stats: PipelineStats =
        serde_json::from_value(api.ok(&format!("/pipelines/{pipeline}/stats?{query}")))
            .expect("stats");
    let mine: Vec<&RunSummary> = runs
        .iter()
        .filter(|r| selected(r, sel.0, sel.1, sel.2))
        .collect();
    let width = if day { DAY } else { HOUR };
    let bucket = |t: i64| t.div_euclid(width) * width;
    let mut want_runs: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    for r in &mine {
        let b = want_runs.entry(bucket(us(&r.started_at))).or_default();
        b.0 += 1;
        b.1 += u64::from(r.status == RunStatus::Failed);
    }
    let got_runs: BTreeMap<i64, (u64, u64)> = stats
        .runs
        .iter()
        .map(|b| (us(&b.start), (b.runs, b.failed)))
        .collect();
    assert_eq!(got_runs, want_runs, "{query}: runs per bucket");
    assert_eq!(
        stats.runs.len(),
        want_runs.len(),
        "{query}: one bucket each"
    );
    let (acc, mean) = accumulate(&mine, bucket);
    let names: BTreeSet<String> = acc.keys().map(|(n, _)| n.clone()).collect();
    let got_names: Vec<&str> = stats.steps.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(
        got_names,
        in_order(names, &mean),
        "{query}: steps in run order"
    );
    for series in &stats.steps {
        let want: Vec<(&i64, &Acc)> = acc
            .iter()
            .filter(|((n, _), _)| *n == series.step)
            .map(|((_, b), a)| (b, a))
            .collect();
        assert_eq!(
            series.buckets.len(),
            want.len(),
            "{query}: {} buckets",
            series.step
        );
        for (got, (start, a)) in series.buckets.iter().zip(want) {
            let at = format!("{query}: {} at {}", series.step, got.start);
            assert_eq!(us(&got.start), *start, "{at}");
            assert_eq!(
                (got.runs, got.failed),
                (a.runs, a.failed),
                "{at}: runs, failed"
            );
            assert_eq!(
                (got.input_count, got.output_count),
                (a.input, a.output),
                "{at}: counts"
            );
            assert_eq!(got.rejections, a.reasons, "{at}: rejections");
            close(
                &format!("{at}: rejection rate"),
                got.rejection_rate,
                a.rate(),
                exact,
            );
            close(
                &format!("{at}: p50"),
                got.duration_ms_p50,
                a.quantile(0.5),
                resolution,
            );
            close(
                &format!("{at}: p95"),
                got.duration_ms_p95,
                a.quantile(0.95),
                resolution,
            );
            close(
                &format!("{at}: score mean"),
                got.score_mean,
                a.score_mean(),
                exact,
            );
        }
    }
    let mut versions: BTreeMap<&str, (i64, i64, u64)> = BTreeMap::new();
    for r in &mine {
        if let Some(v) = &r.version {
            let e = versions
                .entry(v.as_str())
                .or_insert((i64::MAX, i64::MIN, 0));
            e.0 = e.0.min(us(&r.started_at));
            e.1 = e.1.max(us(&r.started_at));
            e.2 += 1;
        }
    }
    let got: BTreeMap<&str, (i64, i64, u64)> = stats
        .versions
        .iter()
        .map(|v| {
            (
                v.version.as_str(),
                (us(&v.first_run_at), us(&v.last_run_at), v.runs),
            )
        })
        .collect();
    assert_eq!(got, versions, "{query}: versions");
}

pub type Sel<'a> = (Option<i64>, Option<i64>, Option<&'a str>);

/// Checks every figure of `/compare?a=…&b=…` against the stored runs.
pub fn check_compare(
    api: &Api,
    pipeline: &str,
    runs: &[RunSummary],
    (a_text, a): (&str, Sel),
    (b_text, b): (&str, Sel),
) -> PipelineCompare {
    let path = format!("/pipelines/{pipeline}/compare?a={a_text}&b={b_text}");
    let cmp: PipelineCompare = serde_json::from_value(api.ok(&path)).expect("compare");
    let side = |s: Sel| {
        let mine: Vec<&RunSummary> = runs.iter().filter(|r| selected(r, s.0, s.1, s.2)).collect();
        let (acc, _) = accumulate(&mine, |_| 0);
        let acc: HashMap<String, Acc> = acc.into_iter().map(|((n, _), a)| (n, a)).collect();
        (mine.len() as u64, acc)
    };
    let ((a_runs, sa), (b_runs, sb)) = (side(a), side(b));
    assert_eq!((cmp.a_runs, cmp.b_runs), (a_runs, b_runs), "{path}: runs");
    let names: BTreeSet<&String> = sa.keys().chain(sb.keys()).collect();
    assert_eq!(cmp.steps.len(), names.len(), "{path}: steps");
    let none = Acc::default();
    for (i, s) in cmp.steps.iter().enumerate() {
        if i > 0 {
            assert!(
                cmp.steps[i - 1].moved >= s.moved,
                "{path}: steps by how much they moved"
            );
        }
        let (x, y) = (
            sa.get(&s.step).unwrap_or(&none),
            sb.get(&s.step).unwrap_or(&none),
        );
        for (got, want, side) in [(&s.a, x, "A"), (&s.b, y, "B")] {
            let at = format!("{path}: {} in {side}", s.step);
            assert_eq!(
                (got.runs, got.input_count, got.output_count),
                (want.runs, want.input, want.output),
                "{at}"
            );
            close(
                &format!("{at}: rate"),
                got.rejection_rate,
                want.rate(),
                exact,
            );
            close(
                &format!("{at}: score"),
                got.score_mean,
                want.score_mean(),
                exact,
            );
            close(
                &format!("{at}: p50"),
                got.duration_ms_p50,
                want.quantile(0.5),
                resolution,
            );
        }
        let reasons: BTreeSet<&String> = x.reasons.keys().chain(y.reasons.keys()).collect();
        assert_eq!(s.reasons.len(), reasons.len(), "{path}: {} reasons", s.step);
        let mut moved = x.rate().zip(y.rate()).map_or(0.0, |(p, q)| (q - p).abs());
        for (j, r) in s.reasons.iter().enumerate() {
            if j > 0 {
                assert!(
                    s.reasons[j - 1].change.abs() >= r.change.abs(),
                    "{path}: reasons by move"
                );
            }
            let at = format!("{path}: {} {}", s.step, r.reason);
            assert_eq!(
                r.a_count,
                x.reasons.get(&r.reason).copied().unwrap_or(0),
                "{at}"
            );
            assert_eq!(
                r.b_count,
                y.reasons.get(&r.reason).copied().unwrap_or(0),
                "{at}"
            );
            close(
                &format!("{at}: A share"),
                r.a_share,
                x.share(&r.reason),
                exact,
            );
            close(
                &format!("{at}: B share"),
                r.b_share,
                y.share(&r.reason),
                exact,
            );
            let change = x
                .share(&r.reason)
                .zip(y.share(&r.reason))
                .map_or(0.0, |(p, q)| q - p);
            close(
                &format!("{at}: change"),
                Some(r.change),
                Some(change),
                exact,
            );
            moved = moved.max(change.abs());
        }
        close(
            &format!("{path}: {} moved", s.step),
            Some(s.moved),
            Some(moved),
            exact,
        );
    }
    cmp
}
