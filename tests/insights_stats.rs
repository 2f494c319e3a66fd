//! `GET /pipelines/{p}/stats` and `/compare` against figures computed here from the stored steps
//! (`GET /runs/{id}`), every figure of every bucket: after runs posted whole, runs streamed in
//! pieces (steps before and after their run finished, a late `run_started` moving a run to
//! another hour and version, a batch sent twice, a run never finished), and after retention
//! deleted runs — each on SQLite and on PostgreSQL.

mod support;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use support::*;
use xray_server::retention::RetentionConfig;
use xray_server::settings::Settings;
use xray_wire::{PipelineCompare, PipelineStats, RunList, RunStatus, RunSummary};

on_both_backends!(
    stats_and_compare_agree_with_the_stored_steps,
    retention_takes_back_exactly_what_it_deleted,
    bad_parameters_are_named,
);

const P: &str = "shop";
const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;

/// `minute` minutes after 2026-11-20T21:10Z (so runs fall in several hours and two days).
fn t(minute: i64) -> String {
    let base = DateTime::parse_from_rfc3339("2026-11-20T21:10:00Z").expect("base");
    (base + chrono::Duration::seconds(minute * 60 + 7))
        .with_timezone(&Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A small deterministic random source.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// A `competitor_selection`-shaped run (`POST /runs` form): with `tight`, the filter's price
/// threshold drops most candidates. Some steps fail, lack a duration or a decision; some runs
/// run the filter twice (the second time with no input count).
fn random_run(rng: &mut Rng, id: &str, minute: i64, version: Option<&str>, tight: bool) -> Value {
    let found = 50 + rng.below(100) as i64;
    let price = if tight {
        found * (50 + rng.below(10) as i64) / 100
    } else {
        found / 10
    };
    let rating = rng.below(10) as i64;
    let kept = found - price - rating;
    let mut steps = vec![
        json!({"name": "search_products", "step_type": "retrieve", "started_at": t(minute),
               "duration_ms": 5.0 + rng.below(2000) as f64 / 7.0, "output_count": found}),
        json!({"name": "filter_candidates", "step_type": "filter", "started_at": t(minute),
               "duration_ms": 1.0 + rng.below(500) as f64 / 3.0,
               "input_count": found, "output_count": kept,
               "error": if rng.below(7) == 0 { json!("price service down") } else { Value::Null },
               "rejections": {
                   "price_too_high": {"count": price, "samples": []},
                   "low_rating": {"count": rating, "samples": []}}}),
    ];
    if rng.below(5) == 0 {
        steps.push(
            json!({"name": "filter_candidates", "step_type": "filter", "started_at": t(minute),
            "rejections": {"out_of_stock": {"count": 1 + rng.below(3), "samples": []}}}),
        );
    }
    steps.push(
        json!({"name": "rank_by_relevance", "step_type": "rank", "started_at": t(minute),
        "input_count": kept, "output_count": kept}),
    );
    let mut select = json!({"name": "select_best", "step_type": "select", "started_at": t(minute),
        "duration_ms": rng.below(1000) as f64 / 1000.0, "input_count": kept, "output_count": 1});
    if rng.below(4) != 0 {
        select["decision"] =
            json!({"selected": format!("{id}-pick"), "score": rng.below(1000) as f64 / 997.0});
    }
    steps.push(select);
    let failed = rng.below(6) == 0;
    let mut run = json!({"run_id": id, "pipeline": P,
        "status": if failed { "failed" } else { "completed" },
        "error": if failed { json!("ranker timed out") } else { Value::Null },
        "started_at": t(minute), "ended_at": t(minute + 1), "steps": steps});
    if let Some(v) = version {
        run["version"] = json!(v);
    }
    run
}

/// The SDK's events for a `random_run`: (run_started, step_finished…, run_finished).
fn events_of(run: &Value) -> (Value, Vec<Value>, Value) {
    let id = run["run_id"].as_str().expect("id");
    let started = json!({"run_started": {"run_id": id, "pipeline": P,
        "started_at": run["started_at"], "version": run["version"]}});
    let steps = run["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut s = s.clone();
            s["step_id"] = json!(format!("{id}-s{i}"));
            s["position"] = json!(i);
            json!({"step_finished": {"run_id": id, "pipeline": P, "step": s}})
        })
        .collect();
    let finished = json!({"run_finished": {"run_id": id, "pipeline": P,
        "started_at": run["started_at"], "ended_at": run["ended_at"],
        "status": run["status"], "error": run["error"]}});
    (started, steps, finished)
}

/// Runs 1.0 (loose filter) and 1.1 (tight), whole and in pieces, over ~30 hours.
fn load(api: &Api, rng: &mut Rng) {
    for i in 0..40 {
        let (version, tight) = if i < 20 {
            (Some("1.0"), false)
        } else {
            (Some("1.1"), true)
        };
        let version = if i % 9 == 4 { None } else { version };
        api.save(&random_run(rng, &format!("r{i}"), i * 47, version, tight));
    }
    // Streamed: steps first, then the rest with the run's end; that batch again.
    let (start, steps, end) = events_of(&random_run(rng, "s1", 95, Some("1.1"), true));
    api.ingest([vec![start], steps[..2].to_vec()].concat());
    let rest = [steps[2..].to_vec(), vec![end]].concat();
    api.ingest(rest.clone());
    api.ingest(rest);
    // Finished before it started: its start (version, and 90 minutes earlier) comes last, and
    // a step after its end.
    let (mut start, steps, end) = events_of(&random_run(rng, "s2", 700, Some("1.0"), false));
    start["run_started"]["started_at"] = json!(t(610));
    let late = steps.last().cloned().expect("a step");
    api.ingest([steps[..steps.len() - 1].to_vec(), vec![end]].concat());
    api.ingest(vec![late]);
    api.ingest(vec![start]);
    // Never finished: not in the stats.
    let (start, steps, _) = events_of(&random_run(rng, "s3", 300, Some("1.1"), true));
    api.ingest([vec![start], steps].concat());
}

/// What one step name adds up to over some runs, computed from the stored steps.
#[derive(Debug, Default)]
struct Acc {
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
    fn rate(&self) -> Option<f64> {
        (self.input > 0).then(|| self.rejected_in / self.input as f64)
    }
    fn share(&self, reason: &str) -> Option<f64> {
        let n = self.reasons.get(reason).copied().unwrap_or(0);
        (self.input > 0).then(|| n as f64 / self.input as f64)
    }
    fn quantile(&self, q: f64) -> Option<f64> {
        let mut d = self.durations.clone();
        d.sort_by(f64::total_cmp);
        let rank = ((q * d.len() as f64).ceil() as usize).clamp(1, d.len().max(1));
        d.get(rank - 1).copied()
    }
    fn score_mean(&self) -> Option<f64> {
        (!self.scores.is_empty())
            .then(|| self.scores.iter().sum::<f64>() / self.scores.len() as f64)
    }
}

/// Every finished run of the pipeline with its steps, as stored.
fn stored_runs(api: &Api) -> Vec<RunSummary> {
    let list: RunList =
        serde_json::from_value(api.ok(&format!("/runs?pipeline={P}&limit=1000"))).expect("runs");
    list.runs
        .iter()
        .filter(|r| r.status != RunStatus::Running)
        .map(|r| serde_json::from_value(api.ok(&format!("/runs/{}", r.run_id))).expect("run"))
        .collect()
}

fn us(t: &DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Whether a run is selected by (since, until, version), hours overlapping the window counting.
fn selected(r: &RunSummary, since: Option<i64>, until: Option<i64>, version: Option<&str>) -> bool {
    let hour = us(&r.started_at).div_euclid(HOUR) * HOUR;
    since.is_none_or(|s| hour >= s.div_euclid(HOUR) * HOUR)
        && until.is_none_or(|u| hour < u)
        && version.is_none_or(|v| r.version.as_deref() == Some(v))
}

/// Per (step name, bucket): the figures; per name: the mean position.
fn accumulate(
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

fn in_order(names: BTreeSet<String>, mean: &HashMap<String, f64>) -> Vec<String> {
    let mut names: Vec<String> = names.into_iter().collect();
    names.sort_by(|a, b| mean[a].total_cmp(&mean[b]).then(a.cmp(b)));
    names
}

fn close(what: &str, got: Option<f64>, want: Option<f64>, tolerance: impl Fn(f64) -> f64) {
    match (got, want) {
        (Some(g), Some(w)) => assert!((g - w).abs() <= tolerance(w), "{what}: {g} against {w}"),
        _ => assert_eq!(
            got.is_some(),
            want.is_some(),
            "{what}: {got:?} against {want:?}"
        ),
    }
}

fn exact(w: f64) -> f64 {
    1e-9 * w.abs().max(1.0)
}

/// A duration from the histogram: within 0.5% (or 0.5 µs).
fn resolution(w: f64) -> f64 {
    w.abs() * 0.005 + 0.0005 + 1e-9
}

/// Checks every figure of `/stats` with `query` against the stored runs.
fn check_stats(
    api: &Api,
    runs: &[RunSummary],
    query: &str,
    sel: (Option<i64>, Option<i64>, Option<&str>),
    day: bool,
) {
    let stats: PipelineStats =
        serde_json::from_value(api.ok(&format!("/pipelines/{P}/stats?{query}"))).expect("stats");
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

type Sel<'a> = (Option<i64>, Option<i64>, Option<&'a str>);

/// Checks every figure of `/compare?a=…&b=…` against the stored runs.
fn check_compare(
    api: &Api,
    runs: &[RunSummary],
    (a_text, a): (&str, Sel),
    (b_text, b): (&str, Sel),
) -> PipelineCompare {
    let path = format!("/pipelines/{P}/compare?a={a_text}&b={b_text}");
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

/// Every stats query and comparison, checked.
fn check_all(api: &Api) {
    let runs = stored_runs(api);
    let t0 = us(&DateTime::parse_from_rfc3339(&t(0))
        .expect("t")
        .with_timezone(&Utc));
    let (since, until) = (t0 + 2 * HOUR + 1_000_000, t0 + 20 * HOUR);
    let window = format!("since={}&until={}", t(120), t(1200)).replace(':', "%3A");
    let windowed = (Some(since), Some(until), None);
    for day in [false, true] {
        let bucket = if day { "bucket=day" } else { "bucket=hour" };
        check_stats(api, &runs, bucket, (None, None, None), day);
        check_stats(
            api,
            &runs,
            &format!("{bucket}&version=1.1"),
            (None, None, Some("1.1")),
            day,
        );
        check_stats(api, &runs, &format!("{bucket}&{window}"), windowed, day);
        check_stats(
            api,
            &runs,
            &format!("{bucket}&{window}&version=1.0"),
            (Some(since), Some(until), Some("1.0")),
            day,
        );
    }
    let cmp = check_compare(
        api,
        &runs,
        ("version:1.0", (None, None, Some("1.0"))),
        ("version:1.1", (None, None, Some("1.1"))),
    );
    if cmp.a_runs > 0 && cmp.b_runs > 0 {
        // The tighter price filter is what moved, and the headline says so first.
        let top = &cmp.steps[0];
        assert_eq!(
            (top.step.as_str(), top.reasons[0].reason.as_str()),
            ("filter_candidates", "price_too_high")
        );
        let pct = |x: Option<f64>| {
            let t = format!("{:.1}", x.expect("a share") * 100.0);
            format!("{}%", t.strip_suffix(".0").unwrap_or(&t))
        };
        assert_eq!(
            cmp.headline.as_deref(),
            Some(&*format!(
                "filter_candidates: price_too_high {} → {} of input",
                pct(top.reasons[0].a_share),
                pct(top.reasons[0].b_share)
            ))
        );
    }
    let a = format!("since:{},until:{}", t(0), t(600))
        .replace(':', "%3A")
        .replace(',', "%2C");
    let b = format!("since:{}", t(1200)).replace(':', "%3A");
    check_compare(
        api,
        &runs,
        (&a, (Some(t0), Some(t0 + 10 * HOUR), None)),
        (&b, (Some(t0 + 20 * HOUR), None, None)),
    );
    // Nothing of an unknown pipeline.
    let empty = api.ok("/pipelines/nothing_here/stats");
    assert_eq!(
        (empty["runs"].clone(), empty["steps"].clone()),
        (json!([]), json!([]))
    );
}

fn stats_and_compare_agree_with_the_stored_steps(backend: Backend) {
    let api = Api::start(backend);
    let mut rng = Rng(26);
    load(&api, &mut rng);
    let runs = stored_runs(&api);
    assert_eq!(runs.len(), 42, "40 posted, 2 streamed and finished");
    let s2 = runs.iter().find(|r| r.run_id == "s2").expect("s2");
    assert_eq!(
        (s2.version.as_deref(), s2.steps.as_ref().map(Vec::len)),
        (Some("1.0"), Some(4))
    );
    check_all(&api);
    // Everything sent again changes nothing.
    load(&api, &mut Rng(26));
    check_all(&api);
}

fn retention_takes_back_exactly_what_it_deleted(backend: Backend) {
    let retention: RetentionConfig = {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("xray.toml");
        std::fs::write(
            &path,
            "[retention]\nsweep_interval_secs = 3600\nbatch_size = 7\n[[retention.pipelines]]\npipeline = \"shop\"\nmax_runs = 15\n",
        )
        .expect("write config");
        xray_server::settings::FileConfig::load(&path)
            .expect("valid")
            .retention
    };
    let api = Api::on(TestServer::start_settings(
        backend,
        Settings {
            retention,
            ..Settings::default()
        },
    ));
    load(&api, &mut Rng(7));
    check_all(&api);
    let (status, report) = api.post("/admin/retention/sweep", &json!(null));
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["by_pipeline"]["shop"], 28, "{report}");
    assert_eq!(
        stored_runs(&api).len(),
        15,
        "the newest 15 kept (the unfinished one was older)"
    );
    check_all(&api);
}

fn bad_parameters_are_named(backend: Backend) {
    let api = Api::start(backend);
    for (path, named) in [
        ("/pipelines/p/stats?bucket=week", "`bucket`"),
        ("/pipelines/p/stats?since=yesterday", "`since`"),
        ("/pipelines/p/stats?until=2026-13-01", "`until`"),
        ("/pipelines/p/stats?bucket=day&buckets=day", "`buckets`"),
        ("/pipelines/p/compare?b=version:1", "`a`"),
        ("/pipelines/p/compare?a=version:1", "`b`"),
        ("/pipelines/p/compare?a=versio:1&b=version:2", "`a`"),
        (
            "/pipelines/p/compare?a=version:1&b=since:notatime",
            "`b: since`",
        ),
        ("/pipelines/p/compare?a=version:&b=version:2", "`a`"),
        (
            "/pipelines/p/compare?a=since:2026-11-20,since:2026-11-21&b=version:2",
            "`a`",
        ),
        ("/pipelines/p%00/stats", "`pipeline`"),
    ] {
        let (status, body) = api.get(path);
        assert_eq!(status, 400, "{path}: {body}");
        let error = body["error"].as_str().expect("a message");
        assert!(error.contains(named), "{path}: {error}");
    }
}
