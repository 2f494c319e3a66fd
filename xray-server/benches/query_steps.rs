//! How long `GET /steps?step_type=filter&rejection_rate_gt=0.9` takes over many stored steps,
//! through the real HTTP server, on SQLite and on PostgreSQL.
//!
//! ```sh
//! cargo bench -p xray-server --bench query_steps                  # 100,000 steps, both backends
//! cargo bench -p xray-server --bench query_steps -- --steps 1000000 --backend sqlite
//! ```
//!
//! The steps are loaded straight through the store (10 steps a run, the six step types in turn,
//! rejection rates spread evenly over 0..1), then the query is sent `--requests` times after a
//! warm-up; the median, p90 and p99 of the whole HTTP round trip are printed, with the plan the
//! database chose for it.

mod common;

use common::{counted_step, finished_run, percentile, Rng};
use std::time::{Duration, Instant};
use xray_server::store::rows::{ReasonRow, RunRow, StepRow, WriteSet, REJECTED};
use xray_server::store::Store;
use xray_server::testing::{Backend, TestDb, TestServer};
use xray_wire::StepType;

const QUERY: &str = "/steps?step_type=filter&rejection_rate_gt=0.9";
const PLAN_SQL: &str = "SELECT * FROM steps WHERE step_type = 'filter' AND rejection_rate > 0.9 \
                        ORDER BY started_at DESC, step_id DESC LIMIT 51";

struct Args {
    steps: usize,
    requests: usize,
    backends: Vec<Backend>,
}

fn args() -> Args {
    let mut a = Args {
        steps: 100_000,
        requests: 200,
        backends: vec![Backend::Sqlite, Backend::Postgres],
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    // `cargo test` runs this binary too (`test = true`): without `--bench`, a smoke run.
    if !argv.iter().any(|a| a == "--bench") {
        a.steps = 1_000;
        a.requests = 10;
    }
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().unwrap_or_default();
        match flag.as_str() {
            "--steps" => a.steps = value().parse().expect("--steps N"),
            "--requests" => a.requests = value().parse().expect("--requests N"),
            "--backend" => {
                a.backends = match value().as_str() {
                    "sqlite" => vec![Backend::Sqlite],
                    "postgres" => vec![Backend::Postgres],
                    _ => vec![Backend::Sqlite, Backend::Postgres],
                }
            }
            _ => {} // cargo bench adds `--bench`
        }
    }
    a
}

fn load(store: &Store, steps: usize) -> Duration {
    let started = Instant::now();
    let mut rng = Rng(0x5eed);
    let base: i64 = 1_795_000_000_000_000;
    let runs = steps.div_ceil(10);
    for chunk in (0..runs).collect::<Vec<_>>().chunks(1000) {
        let mut set = WriteSet::default();
        for &r in chunk {
            let run_id = format!("run-{r:07}");
            let pipeline = format!("pipeline_{}", r % 20);
            let at = base + r as i64 * 1_000_000;
            set.runs_complete.push(RunRow {
                input: Some(r#"{"q":"iPhone 15 Case"}"#.into()),
                output: Some(r#"{"selected":"item-1"}"#.into()),
                ..finished_run(&run_id, &pipeline, at, false)
            });
            for p in 0..10.min(steps - r * 10) {
                let step_type = StepType::ALL[p % StepType::ALL.len()];
                let input = 1000 + (rng.next() % 1000) as i64;
                let rejected = (rng.next() % (input as u64 + 1)) as i64;
                set.reasons.push(ReasonRow {
                    step_id: format!("{run_id}:{p}"),
                    outcome: REJECTED.into(),
                    reason: "price_too_high".into(),
                    count: rejected,
                });
                let name = format!("{}_step", step_type.as_str());
                set.steps.push(StepRow {
                    capture: "sample".into(),
                    duration_ms: Some((rng.next() % 10_000) as f64),
                    decision_score: (step_type == StepType::Select)
                        .then(|| (rng.next() % 1000) as f64 / 1000.0),
                    ..counted_step(
                        &run_id,
                        &pipeline,
                        p,
                        (&name, step_type.as_str()),
                        (input, rejected),
                        at,
                    )
                });
            }
        }
        store.write(&set).expect("load steps");
    }
    started.elapsed()
}

fn main() {
    let args = args();
    for backend in &args.backends {
        let db = TestDb::create(*backend);
        let store = Store::open(db.url(), 4).expect("open");
        let took = load(&store, args.steps);
        let name = format!("{backend:?}").to_lowercase();
        println!(
            "{name}: loaded {} steps in {:.1} s ({:.0} steps/s, direct store writes)",
            args.steps,
            took.as_secs_f64(),
            args.steps as f64 / took.as_secs_f64()
        );
        common::analyze(db.url());
        for line in common::plan(db.url(), PLAN_SQL) {
            println!("{name}:   plan: {line}");
        }
        let server = TestServer::start_url(db.url(), 1 << 20);
        let agent = ureq::agent();
        let url = server.at(QUERY);
        let mut hits = 0;
        for _ in 0..20 {
            let body: serde_json::Value = agent
                .get(&url)
                .call()
                .expect("query")
                .body_mut()
                .read_json()
                .expect("json");
            hits = body["steps"].as_array().map_or(0, Vec::len);
        }
        let mut times: Vec<Duration> = (0..args.requests)
            .map(|_| {
                let t = Instant::now();
                let mut res = agent.get(&url).call().expect("query");
                res.body_mut().read_to_string().expect("body");
                t.elapsed()
            })
            .collect();
        times.sort();
        println!(
            "{name}: GET {QUERY} over {} steps: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms ({} requests, {hits} steps a page)",
            args.steps,
            percentile(&times, 0.5),
            percentile(&times, 0.9),
            percentile(&times, 0.99),
            args.requests,
        );
        drop(server);
        drop(store);
        drop(db);
    }
}
