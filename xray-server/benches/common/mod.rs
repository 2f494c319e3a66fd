//! What the benchmarks share: flags, data, percentiles, query plans and database sizes.
//!
//! Every benchmark binary runs in two modes: `cargo bench` passes `--bench` and gets the full
//! measurement; any other invocation (the test suite runs the binaries through `cargo test`,
//! see `test = true` in `Cargo.toml`) is a smoke run at tiny sizes that takes seconds.

#![allow(dead_code)]

pub mod runs;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use std::time::Duration;
use xray_server::db::DatabaseUrl;
use xray_server::store::rows::{RunRow, StepRow};
use xray_server::testing::Backend;

/// The command line: `--flag value` pairs, `--backend sqlite|postgres|both`, and whether
/// `cargo bench` (rather than `cargo test`) started us.
pub struct Args {
    /// Full measurement (`cargo bench`) rather than a smoke run.
    pub full: bool,
    /// The backends to measure.
    pub backends: Vec<Backend>,
    flags: Vec<(String, String)>,
}

impl Args {
    /// Reads the command line.
    pub fn parse() -> Args {
        let argv: Vec<String> = std::env::args().skip(1).collect();
        let full = argv.iter().any(|a| a == "--bench");
        let mut flags = Vec::new();
        let mut it = argv.iter().peekable();
        while let Some(a) = it.next() {
            if let Some(name) = a.strip_prefix("--") {
                if name == "bench" {
                    continue;
                }
                let value = match it.peek() {
                    Some(v) if !v.starts_with("--") => it.next().cloned().unwrap_or_default(),
                    _ => String::new(),
                };
                flags.push((name.to_string(), value));
            }
        }
        let backends = match flags
            .iter()
            .find(|(k, _)| k == "backend")
            .map(|(_, v)| v.as_str())
        {
            Some("sqlite") => vec![Backend::Sqlite],
            Some("postgres") => vec![Backend::Postgres],
            _ => vec![Backend::Sqlite, Backend::Postgres],
        };
        Args {
            full,
            backends,
            flags,
        }
    }

    /// A numeric flag: its value, else `full` in a full run, else `smoke`.
    pub fn num(&self, name: &str, full: usize, smoke: usize) -> usize {
        self.flags
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.replace('_', "").parse().expect("a number"))
            .unwrap_or(if self.full { full } else { smoke })
    }

    /// A list flag (`--sizes 10000,100000`).
    pub fn list(&self, name: &str, full: &[usize], smoke: &[usize]) -> Vec<usize> {
        match self.flags.iter().find(|(k, _)| k == name) {
            Some((_, v)) => v
                .split(',')
                .map(|n| n.replace('_', "").parse().expect("numbers"))
                .collect(),
            None if self.full => full.to_vec(),
            None => smoke.to_vec(),
        }
    }
}

/// `sqlite` or `postgres`.
pub fn name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

/// A small deterministic generator, so every run makes the same data.
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The `p` quantile (0..=1) of sorted durations, in milliseconds.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// `requests` timed GETs of `url` after `warmup` untimed ones: the sorted durations and the
/// answer's size in bytes.
pub fn time_gets(
    agent: &ureq::Agent,
    url: &str,
    warmup: usize,
    requests: usize,
) -> (Vec<Duration>, usize) {
    let get = || {
        let mut res = agent.get(url).call().expect("query");
        res.body_mut().read_to_string().expect("body").len()
    };
    let mut bytes = 0;
    for _ in 0..warmup {
        bytes = get();
    }
    let mut times: Vec<Duration> = (0..requests)
        .map(|_| {
            let t = std::time::Instant::now();
            get();
            t.elapsed()
        })
        .collect();
    times.sort();
    (times, bytes)
}

/// The median of some numbers.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    }
}

#[derive(QueryableByName)]
struct SqlitePlan {
    #[diesel(sql_type = Text)]
    detail: String,
}

#[derive(QueryableByName)]
struct PgPlan {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    plan: String,
}

/// Refreshes PostgreSQL's planner statistics after a bulk load (SQLite plans without them).
pub fn analyze(url: &DatabaseUrl) {
    on_postgres(url, "ANALYZE");
}

/// As [`analyze`], after vacuuming, so index-only scans see an all-visible table.
pub fn vacuum_analyze(url: &DatabaseUrl) {
    on_postgres(url, "VACUUM ANALYZE");
}

/// Runs `sql` when `url` is a PostgreSQL database.
fn on_postgres(url: &DatabaseUrl, sql: &str) {
    if let DatabaseUrl::Postgres(u) = url {
        let mut c = PgConnection::establish(u).expect("open");
        diesel::sql_query(sql).execute(&mut c).expect(sql);
    }
}

/// The plan the database picks for `sql` (`EXPLAIN QUERY PLAN` / `EXPLAIN`), one line a node.
pub fn plan(url: &DatabaseUrl, sql: &str) -> Vec<String> {
    plan_opts(url, sql, false)
}

/// [`plan`], optionally telling PostgreSQL to avoid sequential scans (for a tiny test database,
/// where a scan is always cheapest: the question there is whether an index can serve the query).
pub fn plan_opts(url: &DatabaseUrl, sql: &str, avoid_seq_scan: bool) -> Vec<String> {
    match url {
        DatabaseUrl::Sqlite(path) => {
            let mut c = SqliteConnection::establish(path).expect("open");
            diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
                .load::<SqlitePlan>(&mut c)
                .expect("explain")
                .into_iter()
                .map(|r| r.detail)
                .collect()
        }
        DatabaseUrl::Postgres(u) => {
            let mut c = PgConnection::establish(u).expect("open");
            if avoid_seq_scan {
                diesel::connection::SimpleConnection::batch_execute(
                    &mut c,
                    "SET enable_seqscan = off",
                )
                .expect("set");
            }
            diesel::sql_query(format!("EXPLAIN {sql}"))
                .load::<PgPlan>(&mut c)
                .expect("explain")
                .into_iter()
                .map(|r| r.plan)
                .collect()
        }
    }
}

#[derive(QueryableByName)]
struct Size {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    bytes: i64,
}

/// Bytes of every table and index, by name, as the database counts them: SQLite's `dbstat`
/// (pages in use, after a WAL checkpoint), PostgreSQL's `pg_total_relation_size` per table
/// (heap, TOAST and indexes) and `pg_relation_size` per index.
pub fn sizes(url: &DatabaseUrl) -> Vec<(String, i64)> {
    match url {
        DatabaseUrl::Sqlite(path) => {
            let mut c = SqliteConnection::establish(path).expect("open");
            diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut c)
                .expect("checkpoint");
            diesel::sql_query(
                "SELECT name, CAST(SUM(pgsize) AS BIGINT) AS bytes FROM dbstat GROUP BY name ORDER BY name",
            )
            .load::<Size>(&mut c)
            .expect("dbstat")
            .into_iter()
            .map(|s| (s.name, s.bytes))
            .collect()
        }
        DatabaseUrl::Postgres(u) => {
            let mut c = PgConnection::establish(u).expect("open");
            diesel::sql_query(
                "SELECT c.relname::text AS name, pg_relation_size(c.oid) AS bytes FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = 'public' AND c.relkind = 'i' \
                 UNION ALL \
                 SELECT c.relname::text || ' (heap+toast)', pg_table_size(c.oid) FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1",
            )
            .load::<Size>(&mut c)
            .expect("sizes")
            .into_iter()
            .map(|s| (s.name, s.bytes))
            .collect()
        }
    }
}

/// Total bytes of every table and index.
pub fn total_bytes(url: &DatabaseUrl) -> i64 {
    sizes(url).iter().map(|(_, b)| b).sum()
}

/// An id shaped like the SDK's (a v4 UUID), from the generator.
pub fn uuid(rng: &mut Rng) -> String {
    let (a, b) = (rng.next(), rng.next());
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

/// The rejection reasons a filter step records, with details of about `details_bytes` (35 or
/// 100) for each kept item.
const REASONS: [&str; 3] = ["price_too_high", "low_rating", "category_mismatch"];

fn details(rng: &mut Rng, reason: &str, long: bool) -> serde_json::Value {
    let price = 100.0 + rng.below(20_000) as f64 / 100.0;
    let rating = 1.0 + rng.below(25) as f64 / 10.0;
    match (reason, long) {
        ("price_too_high", false) => serde_json::json!({"price": price, "threshold": 100.0}),
        ("price_too_high", true) => serde_json::json!({
            "price": price, "threshold": 100.0, "currency": "USD",
            "seller": format!("seller-{:04}", rng.below(5000)), "category": "phone_cases"}),
        ("low_rating", false) => serde_json::json!({"rating": rating, "minimum": 3.5}),
        ("low_rating", true) => serde_json::json!({
            "rating": rating, "minimum": 3.5, "reviews": rng.below(5000),
            "source": "catalog-v2", "seller": format!("seller-{:04}", rng.below(5000))}),
        (_, false) => serde_json::json!({"category": "chargers", "expected": "cases"}),
        (_, true) => serde_json::json!({
            "category": "chargers", "expected": "phone_cases",
            "path": ["electronics", "accessories", "chargers"], "confidence": rating / 3.5}),
    }
}

/// What a benchmark step looks like.
#[derive(Clone, Copy)]
pub struct StepShape {
    /// Rejection reasons (at most 3).
    pub reasons: usize,
    /// Rejections per reason (exact counts).
    pub rejections_per_reason: u64,
    /// Samples kept per reason.
    pub samples_per_reason: usize,
    /// `minimal`, `sample` or `full`.
    pub capture: &'static str,
    /// ~100-byte details rather than ~35-byte ones.
    pub long_details: bool,
}

/// One finished filter step as the SDK sends it (the `step` of a `step_finished` event).
pub fn filter_step(
    rng: &mut Rng,
    step_id: &str,
    position: usize,
    started_us: i64,
    shape: StepShape,
) -> serde_json::Value {
    let mut rejections = serde_json::Map::new();
    for reason in REASONS.iter().take(shape.reasons) {
        let samples: Vec<serde_json::Value> = (0..shape.samples_per_reason)
            .map(|_| {
                serde_json::json!({
                    "item_id": format!("sku-{:06}", rng.below(100_000)),
                    "details": details(rng, reason, shape.long_details),
                })
            })
            .collect();
        rejections.insert(
            reason.to_string(),
            serde_json::json!({"count": shape.rejections_per_reason, "samples": samples}),
        );
    }
    let rejected = shape.rejections_per_reason * shape.reasons as u64;
    let at = rfc3339;
    serde_json::json!({
        "step_id": step_id,
        "position": position,
        "name": "filter_candidates",
        "step_type": "filter",
        "capture": shape.capture,
        "input_count": rejected + 100,
        "output_count": 100,
        "started_at": at(started_us),
        "ended_at": at(started_us + 12_000),
        "duration_ms": 12.0,
        "rejections": rejections,
    })
}

/// A time (µs since the epoch) as the SDK sends it.
pub fn rfc3339(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .expect("a valid time")
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The shape of the steps the ingest load sends: 2–3 reasons, 50 samples each, ~100-byte details.
pub fn realistic_shape(rng: &mut Rng) -> StepShape {
    StepShape {
        reasons: 2 + rng.below(2) as usize,
        rejections_per_reason: 100 + rng.below(2900),
        samples_per_reason: 50,
        capture: "sample",
        long_details: true,
    }
}

/// One `POST /ingest` body as the SDK sends it: `runs` runs of `steps_per_run` realistic steps,
/// each with its `run_started` and `run_finished` (one run in ten fails). Returns the body and
/// the number of steps in it.
pub fn ingest_body(
    rng: &mut Rng,
    runs: usize,
    steps_per_run: usize,
    pipelines: usize,
    base_us: i64,
) -> (Vec<u8>, usize) {
    let mut events = Vec::with_capacity(runs * (steps_per_run + 2));
    for _ in 0..runs {
        let run_id = uuid(rng);
        let pipeline = format!("pipeline_{:02}", rng.below(pipelines as u64));
        let start = base_us + rng.below(86_400_000_000) as i64;
        events.push(
            serde_json::json!({"run_started": {"run_id": run_id, "pipeline": pipeline,
            "started_at": rfc3339(start), "input": {"query": "iPhone 15 case", "limit": 50}}}),
        );
        for p in 0..steps_per_run {
            let step_id = uuid(rng);
            let shape = realistic_shape(rng);
            let step = filter_step(rng, &step_id, p, start + p as i64 * 20_000, shape);
            events.push(serde_json::json!({"step_finished": {"run_id": run_id,
                "pipeline": pipeline, "step": step}}));
        }
        let failed = rng.below(10) == 0;
        events.push(
            serde_json::json!({"run_finished": {"run_id": run_id, "pipeline": pipeline,
            "started_at": rfc3339(start), "ended_at": rfc3339(start + 250_000),
            "status": if failed { "failed" } else { "completed" },
            "error": if failed { Some("ranker timed out") } else { None },
            "output": {"selected": "sku-000042"}}}),
        );
    }
    let body = serde_json::to_vec(&serde_json::json!({ "events": events })).expect("serialise");
    (body, runs * steps_per_run)
}

/// Sends every body to `POST {url}/ingest` from `clients` threads (each takes the next body not
/// yet sent). Returns the wall time and each request's latency.
pub fn send_all(url: &str, bodies: &[Vec<u8>], clients: usize) -> (Duration, Vec<Duration>) {
    send_all_to(url, "/ingest", "application/json", bodies, clients)
}

/// [`send_all`] to `path` with `content_type` (`/v1/traces`, `application/x-protobuf`).
pub fn send_all_to(
    url: &str,
    path: &str,
    content_type: &str,
    bodies: &[Vec<u8>],
    clients: usize,
) -> (Duration, Vec<Duration>) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let started = std::time::Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .timeout_global(Some(Duration::from_secs(120)))
                        .build()
                        .into();
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(body) = bodies.get(i) else { break };
                        let t = std::time::Instant::now();
                        let mut res = agent
                            .post(&format!("{url}{path}"))
                            .header("content-type", content_type)
                            .send(&body[..])
                            .expect("ingest");
                        res.body_mut().read_to_string().expect("answer");
                        mine.push(t.elapsed());
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("client"))
            .collect()
    });
    let took = started.elapsed();
    latencies.sort();
    (took, latencies)
}

/// The SQL the store sends for each query (as diesel writes it, with the values inlined).
pub fn plan_sql(run: &str, backend: Backend) -> Vec<(&'static str, String)> {
    let item = "sku-0000002";
    let (lo, hi) = xray_server::store::packed::entry_range(item);
    let key = xray_server::store::packed::key(item);
    let docs = match backend {
        Backend::Sqlite => format!(
            "SELECT rowid FROM item_fts WHERE item_fts MATCH '\"{}\"'",
            xray_server::store::items::token(key)
        ),
        Backend::Postgres => xray_server::store::item_batches::LOOKUP_SQL
            .replace("$1", &(key as u32 as i32).to_string())
            .replace("$2", &key.to_string()),
    };
    vec![
        ("steps filter rate", "SELECT * FROM steps WHERE step_type = 'filter' AND rejection_rate > 0.9 ORDER BY started_at DESC, step_id DESC LIMIT 51".to_string()),
        ("steps generate duration", "SELECT * FROM steps WHERE step_type = 'generate' AND duration_ms > 5000 ORDER BY started_at DESC, step_id DESC LIMIT 51".to_string()),
        ("runs pipeline failed", "SELECT * FROM runs WHERE pipeline = 'pipeline_07' AND status = 'failed' ORDER BY started_at DESC, run_id DESC LIMIT 51".to_string()),
        ("run's steps", format!("SELECT * FROM steps WHERE run_id = '{run}' ORDER BY position, started_at, step_id")),
        ("run's counts and packed samples", format!("SELECT * FROM step_reasons WHERE step_id IN (SELECT step_id FROM steps WHERE run_id = '{run}')")),
        ("item across runs: documents", docs),
        ("item across runs: the documents' steps", "SELECT * FROM steps WHERE item_doc IN (11, 12, 13) ORDER BY started_at DESC, step_id DESC LIMIT 116".to_string()),
        ("item across runs: the documents' steps in a pipeline", "SELECT * FROM steps WHERE item_doc IN (11, 12, 13) AND pipeline = 'pipeline_07' ORDER BY started_at DESC, step_id DESC LIMIT 116".to_string()),
        ("item across runs: first index", format!("SELECT * FROM steps WHERE step_key IN (SELECT entry - {lo} FROM item_index WHERE entry BETWEEN {lo} AND {hi}) ORDER BY started_at DESC, step_id DESC LIMIT 116")),
        ("stats: run rollups of a week", "SELECT * FROM run_rollups WHERE pipeline = 'pipeline_07' AND hour >= 1795000000000000 AND hour < 1795604800000000 ORDER BY hour".to_string()),
        ("stats: step rollups of a week", "SELECT * FROM step_rollups WHERE pipeline = 'pipeline_07' AND hour >= 1795000000000000 AND hour < 1795604800000000 ORDER BY hour".to_string()),
    ]
}

/// A finished run as the loading benches store it: started at `at` (µs), 900 ms long, failed ones
/// with the ranker timed out; no input, output or links (callers set what they need).
pub fn finished_run(run_id: &str, pipeline: &str, at: i64, failed: bool) -> RunRow {
    RunRow {
        run_id: run_id.into(),
        pipeline: pipeline.into(),
        status: if failed { "failed" } else { "completed" }.into(),
        input: None,
        output: None,
        error: failed.then(|| "ranker timed out".to_string()),
        metadata: None,
        started_at: at,
        ended_at: Some(at + 900_000),
        duration_ms: Some(900.0),
        correlation_id: None,
        trace_id: None,
        traceparent: None,
        version: None,
        replay_of: None,
    }
}

/// Step `position` of a run started at `at` (µs), 50 ms after the one before it and 40 ms long,
/// that let `input - rejected` of its `input` items through; `minimal` capture, nothing else set
/// (callers set duration, score and what else they need).
pub fn counted_step(
    run_id: &str,
    pipeline: &str,
    position: usize,
    (name, step_type): (&str, &str),
    (input, rejected): (i64, i64),
    at: i64,
) -> StepRow {
    let start = at + position as i64 * 50_000;
    StepRow {
        step_id: format!("{run_id}:{position}"),
        run_id: run_id.into(),
        pipeline: pipeline.into(),
        position: position as i32,
        name: name.into(),
        step_type: step_type.into(),
        capture: "minimal".into(),
        input_count: Some(input),
        output_count: Some(input - rejected),
        rejected_count: rejected,
        accepted_count: input - rejected,
        rejection_rate: Some(rejected as f64 / input as f64),
        started_at: start,
        ended_at: Some(start + 40_000),
        duration_ms: None,
        input: None,
        output: None,
        decision: None,
        decision_selected: None,
        decision_score: None,
        error: None,
        attributes: None,
        step_key: None,
        ranking: None,
        rank_margin: None,
    }
}
