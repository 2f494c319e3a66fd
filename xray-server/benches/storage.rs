//! Bytes stored per step: one filter step with 5,000 rejections over 2 reasons, at each capture
//! level, measured from the database itself (SQLite `dbstat`, PostgreSQL relation sizes).
//!
//! ```sh
//! cargo bench -p xray-server --bench storage                      # both backends
//! cargo bench -p xray-server --bench storage -- --backend sqlite --steps 500
//! cargo bench -p xray-server --bench storage -- --runs 200 --steps 0   # the per-run table only
//! ```
//!
//! Then bytes per run (issue 22's workload, `--runs`, 200 by default): runs of a five-step
//! pipeline (generate, retrieve, filter, rank, select) sent as the SDK sends them, one batch a
//! run, while the server's maintainer runs; the filter step takes 5,000 items from a catalog of
//! 100,000, rejects 3,000–4,700 of them over two reasons (one run in ten rejects over 90%) and
//! keeps 50 samples a reason and up to 500 acceptances. Measured after `VACUUM` (PostgreSQL) or a
//! WAL checkpoint (SQLite), against the empty schema.
//!
//! For each capture level and details size, a fresh database gets runs first (so their rows are
//! not counted), then `--steps` such steps (10 a run) through the same path as `POST /ingest`
//! (`WriteSet::from_batch` → `Store::write`, batches of 50 steps). The figure is the growth of
//! every table and index divided by the number of steps, so page granularity averages out.

mod common;

use common::{filter_step, name, rfc3339, sizes, uuid, Args, Rng, StepShape};
use std::collections::BTreeMap;
use xray_server::store::rows::WriteSet;
use xray_server::store::Store;
use xray_server::testing::TestDb;
use xray_wire::IngestBatch;

fn main() {
    let args = Args::parse();
    let steps = args.num("steps", 1000, 20);
    let full_steps = args.num("full-steps", 100, 4);
    let runs = args.num("runs", 200, 4);
    if steps > 0 {
        per_step(&args, steps, full_steps);
    }
    if runs > 0 {
        common::runs::per_run(&args, runs);
    }
}

/// The table of bytes per step, by capture level.
fn per_step(args: &Args, steps: usize, full_steps: usize) {
    println!("| backend | capture | details | bytes per step | biggest parts (bytes per step) |");
    println!("|---|---|---|---|---|");
    for &backend in &args.backends {
        for capture in ["minimal", "sample", "full"] {
            for long in [false, true] {
                let n = if capture == "full" { full_steps } else { steps };
                let samples = match capture {
                    "minimal" => 0,
                    "sample" => 50,
                    _ => 2500,
                };
                let shape = StepShape {
                    reasons: 2,
                    rejections_per_reason: 2500,
                    samples_per_reason: samples,
                    capture,
                    long_details: long,
                };
                let (per_step, parts) = measure(backend, n, shape);
                let mut parts: Vec<_> = parts.into_iter().filter(|(_, b)| *b > 0.5).collect();
                parts.sort_by(|a, b| b.1.total_cmp(&a.1));
                let parts: Vec<String> = parts
                    .iter()
                    .take(4)
                    .map(|(k, b)| format!("{k} {b:.0}"))
                    .collect();
                println!(
                    "| {} | {capture} | ~{} B | {:.0} | {} |",
                    name(backend),
                    if long { 100 } else { 35 },
                    per_step,
                    parts.join(", ")
                );
            }
        }
    }
}

/// Stores `n` steps of `shape` and returns the bytes per step, in total and by table or index.
fn measure(
    backend: xray_server::testing::Backend,
    n: usize,
    shape: StepShape,
) -> (f64, BTreeMap<String, f64>) {
    let db = TestDb::create(backend);
    let store = Store::open(db.url(), 2).expect("open");
    let mut rng = Rng(0x0570_7a6e);
    let base: i64 = 1_795_000_000_000_000;
    let runs: Vec<String> = (0..n.div_ceil(10)).map(|_| uuid(&mut rng)).collect();
    let started: Vec<serde_json::Value> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            serde_json::json!({"run_started": {"run_id": r, "pipeline": "competitor_selection",
                "started_at": rfc3339(base + i as i64 * 1_000_000)}})
        })
        .collect();
    write(&store, started);
    let before = sizes(db.url());
    let events: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let step_id = uuid(&mut rng);
            let step = filter_step(&mut rng, &step_id, i % 10, base + i as i64 * 100_000, shape);
            serde_json::json!({"step_finished": {"run_id": runs[i / 10],
                "pipeline": "competitor_selection", "step": step}})
        })
        .collect();
    for chunk in events.chunks(50) {
        write(&store, chunk.to_vec());
    }
    let after = sizes(db.url());
    let mut parts: BTreeMap<String, f64> = BTreeMap::new();
    for (k, b) in &after {
        *parts.entry(k.clone()).or_default() += *b as f64 / n as f64;
    }
    for (k, b) in &before {
        *parts.entry(k.clone()).or_default() -= *b as f64 / n as f64;
    }
    let total = parts.values().sum();
    (total, parts)
}

fn write(store: &Store, events: Vec<serde_json::Value>) {
    let batch: IngestBatch =
        serde_json::from_value(serde_json::json!({ "events": events })).expect("a valid batch");
    let set = WriteSet::from_batch(batch).expect("valid events");
    store.write(&set).expect("write");
}
