//! `GET /pipelines/{p}/stats` and `/compare` over 30 days of one pipeline with 1,000,000 steps,
//! on SQLite and PostgreSQL, through the real HTTP server (target: p50 ≤ 50 ms).
//!
//! ```sh
//! cargo bench -p xray-server --bench insights                      # both backends, 1M steps
//! cargo bench -p xray-server --bench insights -- --backend sqlite --steps 100000
//! ```
//!
//! The data: runs of `competitor_selection` spread evenly over 30 days, 6 steps each
//! (generate, search, filter with 3 rejection reasons, rank, select with a score, transform),
//! version 1.0 for the first 10 days, 1.1 for the next 10, 1.2 for the last; one run in ten
//! failed. Loaded through `Store::write` (1,000 runs a transaction), so the rollups are written
//! as ingest writes them; the load rate is printed. Then each query below `--requests` times
//! after 10 warm-ups: p50/p99 of the whole HTTP round trip, and the answer's size.
//!
//! Ingest speed with the rollups against without: the `ingest` bench, at this commit and at the
//! one before the rollups (see docs/BENCHMARKS.md).

mod common;

use common::{counted_step, finished_run, name, percentile, time_gets, Args, Rng};
use std::time::Instant;
use xray_server::store::rows::{ReasonRow, RunRow, StepRow, WriteSet, REJECTED};
use xray_server::store::Store;
use xray_server::testing::{TestDb, TestServer};

const BASE: i64 = 1_795_000_000_000_000;
const DAYS: i64 = 30;
const DAY_US: i64 = 86_400_000_000;
const STEPS_PER_RUN: usize = 6;

fn main() {
    let args = Args::parse();
    let steps = args.num("steps", 1_000_000, 3_000);
    let requests = args.num("requests", 200, 5);
    let runs = steps / STEPS_PER_RUN;
    for &backend in &args.backends {
        let db = TestDb::create(backend);
        let store = Store::open(db.url(), 4).expect("open");
        let t = Instant::now();
        load(&store, runs, &mut Rng(0x1_5195));
        let took = t.elapsed().as_secs_f64();
        println!(
            "{}: loaded {} steps ({runs} runs over {DAYS} days) in {took:.1} s ({:.0} steps/s, rollups included)",
            name(backend),
            runs * STEPS_PER_RUN,
            (runs * STEPS_PER_RUN) as f64 / took
        );
        common::vacuum_analyze(db.url());
        let server = TestServer::start_url(db.url(), 64 << 20);
        let day = |d: i64| {
            xray_server::store::rows::from_micros(BASE + d * DAY_US)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                .replace(':', "%3A")
        };
        let p = "/pipelines/competitor_selection";
        let queries = [
            format!("{p}/stats?bucket=hour"),
            format!("{p}/stats?bucket=day"),
            format!("{p}/stats?bucket=day&version=1.1"),
            format!("{p}/stats?bucket=hour&since={}", day(23)),
            format!("{p}/compare?a=version%3A1.0&b=version%3A1.2"),
            format!(
                "{p}/compare?a=since%3A{}%2Cuntil%3A{}&b=since%3A{}",
                day(0),
                day(7),
                day(23)
            ),
        ];
        let agent = ureq::agent();
        for q in &queries {
            let (times, bytes) = time_gets(&agent, &server.at(q), 10, requests);
            println!(
                "{} @ {} steps: GET {q}: p50 {:.2} ms, p99 {:.2} ms ({bytes} B answer)",
                name(backend),
                runs * STEPS_PER_RUN,
                percentile(&times, 0.5),
                percentile(&times, 0.99),
            );
        }
    }
}

/// Loads `runs` runs spread over [`DAYS`] days.
fn load(store: &Store, runs: usize, rng: &mut Rng) {
    let every = DAYS * DAY_US / runs.max(1) as i64;
    let all: Vec<usize> = (0..runs).collect();
    for chunk in all.chunks(1000) {
        let mut set = WriteSet::default();
        for &r in chunk {
            let run_id = format!("run-{r:07}");
            let at = BASE + r as i64 * every;
            let version = match (at - BASE) / DAY_US {
                0..=9 => "1.0",
                10..=19 => "1.1",
                _ => "1.2",
            };
            let failed = rng.below(10) == 0;
            set.runs_complete.push(RunRow {
                version: Some(version.into()),
                ..finished_run(&run_id, "competitor_selection", at, failed)
            });
            let shapes = [
                ("generate_keywords", "generate"),
                ("search_products", "retrieve"),
                ("filter_candidates", "filter"),
                ("rank_by_relevance", "rank"),
                ("select_best", "select"),
                ("format_answer", "transform"),
            ];
            for (p, (step, step_type)) in shapes.iter().enumerate() {
                let step_id = format!("{run_id}:{p}");
                let input = 500 + rng.below(1000) as i64;
                let mut rejected = 0;
                if *step_type == "filter" {
                    let threshold = if version == "1.2" { 55 } else { 10 };
                    for (reason, pct) in [
                        ("price_too_high", threshold),
                        ("low_rating", 20),
                        ("category_mismatch", 5),
                    ] {
                        let count = input * (pct + rng.below(5) as i64) / 100;
                        rejected += count;
                        set.reasons.push(ReasonRow {
                            step_id: step_id.clone(),
                            outcome: REJECTED.into(),
                            reason: reason.into(),
                            count,
                        });
                    }
                }
                set.steps.push(StepRow {
                    duration_ms: Some(rng.below(10_000) as f64 / 7.0),
                    decision_score: (*step_type == "select")
                        .then(|| rng.below(1000) as f64 / 1000.0),
                    error: (rng.below(50) == 0).then(|| "timeout".to_string()),
                    ..counted_step(
                        &run_id,
                        "competitor_selection",
                        p,
                        (step, step_type),
                        (input, rejected),
                        at,
                    )
                });
            }
        }
        store.write(&set).expect("load steps");
    }
}
