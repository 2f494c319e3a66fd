//! `GET /pipelines/{p}/stats` and `/compare` against figures computed here from the stored steps
//! (`GET /runs/{id}`), every figure of every bucket: after runs posted whole, runs streamed in
//! pieces (steps before and after their run finished, a late `run_started` moving a run to
//! another hour and version, a batch sent twice, a run never finished), and after retention
//! deleted runs — each on SQLite and on PostgreSQL.

mod support;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use support::stats_check::*;
use support::*;
use xray_server::retention::RetentionConfig;
use xray_server::settings::Settings;

on_both_backends!(
    stats_and_compare_agree_with_the_stored_steps,
    retention_takes_back_exactly_what_it_deleted,
    bad_parameters_are_named,
    counts_near_the_integer_limit_are_capped_not_an_error,
);

const P: &str = "shop";
const HOUR: i64 = 3_600_000_000;

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

/// Every stats query and comparison, checked.
fn check_all(api: &Api) {
    let runs = stored_runs(api, P);
    let t0 = us(&DateTime::parse_from_rfc3339(&t(0))
        .expect("t")
        .with_timezone(&Utc));
    let (since, until) = (t0 + 2 * HOUR + 1_000_000, t0 + 20 * HOUR);
    let window = format!("since={}&until={}", t(120), t(1200)).replace(':', "%3A");
    let windowed = (Some(since), Some(until), None);
    for day in [false, true] {
        let bucket = if day { "bucket=day" } else { "bucket=hour" };
        check_stats(api, P, &runs, bucket, (None, None, None), day);
        check_stats(
            api,
            P,
            &runs,
            &format!("{bucket}&version=1.1"),
            (None, None, Some("1.1")),
            day,
        );
        check_stats(api, P, &runs, &format!("{bucket}&{window}"), windowed, day);
        check_stats(
            api,
            P,
            &runs,
            &format!("{bucket}&{window}&version=1.0"),
            (Some(since), Some(until), Some("1.0")),
            day,
        );
    }
    let cmp = check_compare(
        api,
        P,
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
        P,
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
    let runs = stored_runs(&api, P);
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
        stored_runs(&api, P).len(),
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

/// A step may claim up to 2^63 − 1 items; two such steps would overflow a rollup's sum. Each
/// step adds at most 2^32 to the rollups, so the runs are stored (not a 500, not a dead
/// writer) and the stats answer with the capped sums.
fn counts_near_the_integer_limit_are_capped_not_an_error(backend: Backend) {
    let api = Api::start(backend);
    let max = i64::MAX;
    for id in ["huge_a", "huge_b"] {
        api.save(&json!({
            "run_id": id, "pipeline": P, "status": "completed",
            "started_at": t(0), "ended_at": t(1),
            "steps": [{"name": "f", "step_type": "filter", "started_at": t(0),
                       "input_count": max, "output_count": 0,
                       "rejections": {"too_big": {"count": max}}}]
        }));
    }
    let stats = api.ok(&format!("/pipelines/{P}/stats?bucket=day&since=2026-11-20"));
    let bucket = &stats["steps"][0]["buckets"][0];
    assert_eq!(bucket["input_count"], 2 * (1_u64 << 32), "{stats}");
    assert_eq!(
        bucket["rejections"]["too_big"],
        2 * (1_u64 << 32),
        "{stats}"
    );
    assert_eq!(bucket["rejection_rate"], 1.0, "{stats}");
    // The writer is alive: an ordinary run is stored after them.
    api.save(
        &json!({"run_id": "after", "pipeline": P, "status": "completed",
                     "started_at": t(2), "ended_at": t(3), "steps": []}),
    );
    assert_eq!(api.ok("/runs/after")["status"], "completed");
}
