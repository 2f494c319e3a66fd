//! Query latency and ingest rate as the data grows: 10,000, 100,000 and 1,000,000 steps
//! (10 a run, 20 pipelines), on SQLite and PostgreSQL, through the real HTTP server.
//!
//! ```sh
//! cargo bench -p xray-server --bench scale                         # both backends, up to 1M steps
//! cargo bench -p xray-server --bench scale -- --backend sqlite --sizes 10000,100000
//! ```
//!
//! Steps are loaded straight through the store (`Store::write`, 10,000 steps a transaction):
//! the six step types in turn, rejection rates spread over 0..1, durations over 0..10 s, one run
//! in ten failed, and the two filter steps of each run keeping 5 samples for each of 2 reasons.
//! At each size: every query below 200 times after 20 warm-ups (p50/p99 of the whole HTTP round
//! trip), then the ingest rate of 1,000 more realistic steps (as in the `ingest` bench, 4
//! clients). The plans are printed at the largest size.

mod common;

use common::{
    counted_step, finished_run, ingest_body, name, percentile, plan, plan_sql, send_all, time_gets,
    Args, Rng,
};
use std::time::Instant;
use xray_server::store::rows::{KeptSamples, ReasonRow, RunRow, StepRow, WriteSet, REJECTED};
use xray_server::store::Store;
use xray_server::testing::{TestDb, TestServer};
use xray_wire::StepType;

const BASE: i64 = 1_795_000_000_000_000;

fn main() {
    let args = Args::parse();
    let sizes = args.list("sizes", &[10_000, 100_000, 1_000_000], &[1_000, 3_000]);
    let requests = args.num("requests", 200, 10);
    let window = args.num("ingest-steps", 1_000, 100);
    for &backend in &args.backends {
        let db = TestDb::create(backend);
        let store = Store::open(db.url(), 4).expect("open");
        let mut loaded = 0;
        let mut rng = Rng(0x5ca1e);
        let mut extra = 0;
        for &size in &sizes {
            let t = Instant::now();
            load(&store, loaded, size, &mut rng);
            let took = t.elapsed().as_secs_f64();
            println!(
                "{}: loaded steps {loaded}..{size} in {took:.1} s ({:.0} steps/s)",
                name(backend),
                (size - loaded) as f64 / took
            );
            loaded = size;
            // What the server's maintainer does in the background: PostgreSQL's item documents
            // packed into batches (the state a lookup meets once the writes are a second old).
            let t = Instant::now();
            while store.maintain_index().expect("maintain").packed > 0 {}
            println!(
                "{}: item index packed in {:.1} s",
                name(backend),
                t.elapsed().as_secs_f64()
            );
            common::vacuum_analyze(db.url());
            let server = TestServer::start_url(db.url(), 64 << 20);
            let runs = size / 10;
            let run = format!("run-{:07}", runs / 2);
            let item = sample_item(runs / 2, 2, 0);
            let queries = [
                "/steps?step_type=filter&rejection_rate_gt=0.9".to_string(),
                "/steps?step_type=generate&duration_gt=5000".to_string(),
                "/runs?pipeline=pipeline_07&status=failed".to_string(),
                format!("/runs/{run}"),
                format!("/runs/{run}/items/{item}"),
                format!("/items/{item}"),
            ];
            let agent = ureq::agent();
            for q in &queries {
                let (times, bytes) = time_gets(&agent, &server.at(q), 20, requests);
                println!(
                    "{} @ {size} steps: GET {q}: p50 {:.2} ms, p99 {:.2} ms ({bytes} B answer)",
                    name(backend),
                    percentile(&times, 0.5),
                    percentile(&times, 0.99),
                );
            }
            let bodies: Vec<Vec<u8>> = (0..window.div_ceil(50))
                .map(|_| ingest_body(&mut rng, 5, 10, 20, BASE + 400_000_000_000).0)
                .collect();
            let (took, lat) = send_all(&server.url, &bodies, 4);
            extra += bodies.len() * 50;
            println!(
                "{} @ {size} steps: ingest of {} more steps: {:.0} steps/s, request p50 {:.1} ms, p99 {:.1} ms",
                name(backend),
                bodies.len() * 50,
                (bodies.len() * 50) as f64 / took.as_secs_f64(),
                percentile(&lat, 0.5),
                percentile(&lat, 0.99),
            );
            drop(server);
        }
        println!(
            "{}: plans at {loaded} (+{extra} ingested) steps:",
            name(backend)
        );
        for (what, sql) in plan_sql(&format!("run-{:07}", loaded / 20), backend) {
            println!("{}:   {what}:", name(backend));
            for line in plan(db.url(), &sql) {
                println!("{}:     {line}", name(backend));
            }
        }
    }
}

/// The item kept as sample `k` of reason `reason` by the filter step of run `r` at position `p`.
fn sample_item(r: usize, p: usize, k: usize) -> String {
    format!("sku-{:07}", (r * 7 + p * 3 + k * 13) % 1_000_000)
}

/// Loads steps `from..to` (10 a run).
fn load(store: &Store, from: usize, to: usize, rng: &mut Rng) {
    let runs: Vec<usize> = (from / 10..to.div_ceil(10)).collect();
    for chunk in runs.chunks(1000) {
        let mut set = WriteSet::default();
        for &r in chunk {
            let run_id = format!("run-{r:07}");
            let pipeline = format!("pipeline_{:02}", r % 20);
            let at = BASE + r as i64 * 1_000_000;
            let failed = rng.below(10) == 0;
            set.runs_complete.push(RunRow {
                input: Some(r#"{"q":"iPhone 15 Case"}"#.into()),
                output: Some(r#"{"selected":"item-1"}"#.into()),
                ..finished_run(&run_id, &pipeline, at, failed)
            });
            for p in 0..10 {
                let step_type = StepType::ALL[p % StepType::ALL.len()];
                let input = 1000 + rng.below(1000) as i64;
                let rejected = rng.below(input as u64 + 1) as i64;
                let step_id = format!("{run_id}:{p}");
                for (i, reason) in ["price_too_high", "low_rating"].iter().enumerate() {
                    let count = if i == 0 {
                        rejected / 2
                    } else {
                        rejected - rejected / 2
                    };
                    set.reasons.push(ReasonRow {
                        step_id: step_id.clone(),
                        outcome: REJECTED.into(),
                        reason: reason.to_string(),
                        count,
                    });
                    if step_type == StepType::Filter && count >= 5 {
                        let mut kept = KeptSamples::new(&step_id, REJECTED, reason);
                        for k in 0..5 {
                            let details = format!(
                                r#"{{"price":{}.99,"threshold":100}}"#,
                                100 + rng.below(200)
                            );
                            kept.push(&sample_item(r, p, k + 5 * i), Some(details.as_bytes()));
                        }
                        set.kept.push(kept);
                    }
                }
                let name = format!("{}_step", step_type.as_str());
                set.steps.push(StepRow {
                    step_key: Some(xray_server::store::packed::key(&step_id)),
                    capture: "sample".into(),
                    duration_ms: Some(rng.below(10_000) as f64),
                    decision_score: (step_type == StepType::Select)
                        .then(|| rng.below(1000) as f64 / 1000.0),
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
}
