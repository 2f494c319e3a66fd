//! Ingest throughput through the real HTTP API, against a raw diesel bulk insert of the same rows
//! into the same backend in one process (the practical limit), with the server's memory.
//!
//! ```sh
//! cargo bench -p xray-server --bench ingest                       # both backends, 3 rounds
//! cargo bench -p xray-server --bench ingest -- --backend postgres --steps 20000 --clients 4
//! ```
//!
//! The load: `--steps` realistic filter steps (2–3 rejection reasons, 50 kept samples each with
//! ~100-byte details, as the SDK sends them at `sample` capture), 10 a run, 5 runs (50 steps, 60
//! events) a `POST /ingest` body, made before the clock starts. Each round, on fresh databases:
//!
//! 1. baseline: the rows those bodies become (`WriteSet::from_batch`, done before the clock)
//!    inserted with plain multi-row `INSERT`s (no upserts), 1,000 steps a transaction, each step
//!    with its item document (numbered before the clock);
//! 2. server: an `xray-server` child process (2 HTTP workers), `--clients` threads sending the
//!    bodies; its `VmRSS` is sampled every 50 ms and its `VmHWM` read at the end.
//!
//! Each also reports its CPU a step: the server process's user + system time (`/proc/PID/stat`)
//! and, on PostgreSQL, every `postgres` process's, over the steps sent (the baseline's: the
//! database's). Unlike steps/s, it holds when another job shares the cores.
//!
//! Printed per round and as the median over `--rounds`, with `Store::write` in-process one body at
//! a time (the server's work without HTTP; `--direct-only 1` runs only that, for profiling;
//! `--server-only 1` only the server).
//!
//! Then the same data as OTLP protobuf exports to `POST /v1/traces` (`common/otlp.rs`: a trace
//! a run, a span a step, a span event a kept sample), through a server of its own on a fresh
//! database, reported as steps/s and as a share of `/ingest`'s in the same round
//! (`--otlp 0` leaves it out).

mod common;
#[path = "common/otlp.rs"]
mod otlp;

use common::{ingest_body, median, name, percentile, send_all_to, Args, Rng};
use diesel::prelude::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use xray_server::db::DatabaseUrl;
use xray_server::schema::{item_docs, item_fts, runs, step_reasons, steps};
use xray_server::store::items::token;
use xray_server::store::rows::{RunRow, WriteSet};
use xray_server::store::Store;
use xray_server::testing::{Backend, TestDb};
use xray_wire::IngestBatch;

const STEPS_PER_BODY: usize = 50;

fn main() {
    let args = Args::parse();
    let steps = args.num("steps", 20_000, 200);
    let clients = args.num("clients", 4, 2);
    let rounds = args.num("rounds", 3, 1);
    let mut rng = Rng(0x1_6e57);
    let base: i64 = 1_795_000_000_000_000;
    let bodies: Vec<(Vec<u8>, usize)> = (0..steps.div_ceil(STEPS_PER_BODY))
        .map(|_| ingest_body(&mut rng, STEPS_PER_BODY / 10, 10, 20, base))
        .collect();
    let steps: usize = bodies.iter().map(|(_, n)| n).sum();
    let bytes: usize = bodies.iter().map(|(b, _)| b.len()).sum();
    println!(
        "{steps} steps in {} bodies, {:.1} MB of JSON ({:.1} KB a step); {clients} clients",
        bodies.len(),
        bytes as f64 / 1e6,
        bytes as f64 / steps as f64 / 1e3
    );
    let bodies: Vec<Vec<u8>> = bodies.into_iter().map(|(b, _)| b).collect();
    let with_otlp = args.num("otlp", 1, 1) == 1;
    let mut seq = 0;
    let otlp_bodies: Vec<Vec<u8>> = if with_otlp {
        bodies
            .iter()
            .map(|b| otlp::otlp_body(b, &mut seq))
            .collect()
    } else {
        Vec::new()
    };
    if with_otlp {
        let otlp_bytes: usize = otlp_bodies.iter().map(Vec::len).sum();
        println!(
            "the same as OTLP: {:.1} MB of protobuf ({:.1} KB a step)",
            otlp_bytes as f64 / 1e6,
            otlp_bytes as f64 / steps as f64 / 1e3
        );
    }
    let mut otlp_shares = Vec::new();
    for &backend in &args.backends {
        let mut results = Vec::new();
        for round in 1..=rounds {
            if args.num("direct-only", 0, 0) == 1 {
                let (t, share) = direct(backend, &bodies);
                println!(
                    "direct: {:.0} steps/s, {:.0}% in Store::write",
                    steps as f64 / t.as_secs_f64(),
                    100.0 * share
                );
                continue;
            }
            if args.num("server-only", 0, 0) == 1 {
                let r = server(backend, &bodies, clients, INGEST);
                println!(
                    "server: {:.0} steps/s, CPU a step: server {:.0} µs, database {:.0} µs",
                    steps as f64 / r.took.as_secs_f64(),
                    r.server_cpu * 1e6 / steps as f64,
                    r.database_cpu * 1e6 / steps as f64
                );
                continue;
            }
            let (base_took, base_cpu) = baseline(backend, &bodies);
            let base_rate = steps as f64 / base_took.as_secs_f64();
            let (store_rate, write_share) = direct(backend, &bodies);
            println!(
                "{} round {round}: Store::write in-process, one body at a time: {:.0} steps/s ({:.0}% of it in Store::write)",
                name(backend),
                steps as f64 / store_rate.as_secs_f64(),
                100.0 * write_share
            );
            let r = server(backend, &bodies, clients, INGEST);
            let rate = steps as f64 / r.took.as_secs_f64();
            if with_otlp {
                let o = server(backend, &otlp_bodies, clients, OTLP);
                let otlp_rate = steps as f64 / o.took.as_secs_f64();
                println!(
                    "{} round {round}: OTLP /v1/traces {otlp_rate:.0} steps/s ({:.0}% of /ingest's {rate:.0}), \
                     request p50 {:.1} ms, CPU a step: server {:.0} µs, database {:.0} µs",
                    name(backend),
                    100.0 * otlp_rate / rate,
                    percentile(&o.latencies, 0.5),
                    o.server_cpu * 1e6 / steps as f64,
                    o.database_cpu * 1e6 / steps as f64,
                );
                otlp_shares.push((otlp_rate, 100.0 * otlp_rate / rate));
            }
            let per_step = |cpu: f64| cpu * 1e6 / steps as f64;
            println!(
                "{} round {round}: baseline {base_rate:.0} steps/s (database CPU {:.0} µs a step); \
                 server {rate:.0} steps/s ({:.0}%), request p50 {:.1} ms p99 {:.1} ms, \
                 CPU a step: server {:.0} µs, database {:.0} µs; \
                 server RSS at 25/50/75/100% of requests {} MB, peak (VmHWM) {:.1} MB",
                name(backend),
                per_step(base_cpu),
                100.0 * rate / base_rate,
                percentile(&r.latencies, 0.5),
                percentile(&r.latencies, 0.99),
                per_step(r.server_cpu),
                per_step(r.database_cpu),
                r.rss_quartiles
                    .iter()
                    .map(|kb| format!("{:.1}", *kb as f64 / 1024.0))
                    .collect::<Vec<_>>()
                    .join("/"),
                r.hwm_kb as f64 / 1024.0,
            );
            results.push((base_rate, rate, r, per_step(base_cpu)));
        }
        let col = |f: &dyn Fn(&Round) -> f64| median(&results.iter().map(f).collect::<Vec<_>>());
        println!(
            "{} median of {rounds}: baseline {:.0} steps/s, server {:.0} steps/s ({:.0}% of baseline), \
             p50 {:.1} ms, p99 {:.1} ms, peak RSS {:.1} MB; CPU a step: baseline database {:.0} µs, \
             server {:.0} µs, server's database {:.0} µs",
            name(backend),
            col(&|r| r.0),
            col(&|r| r.1),
            col(&|r| 100.0 * r.1 / r.0),
            col(&|r| percentile(&r.2.latencies, 0.5)),
            col(&|r| percentile(&r.2.latencies, 0.99)),
            col(&|r| r.2.hwm_kb as f64 / 1024.0),
            col(&|r| r.3),
            col(&|r| r.2.server_cpu * 1e6 / steps as f64),
            col(&|r| r.2.database_cpu * 1e6 / steps as f64),
        );
        if !otlp_shares.is_empty() {
            println!(
                "{} median of {rounds}: OTLP /v1/traces {:.0} steps/s, {:.0}% of /ingest's",
                name(backend),
                median(&otlp_shares.iter().map(|s| s.0).collect::<Vec<_>>()),
                median(&otlp_shares.iter().map(|s| s.1).collect::<Vec<_>>()),
            );
            otlp_shares.clear();
        }
    }
}

/// Where a body goes and its content type.
type Endpoint = (&'static str, &'static str);
/// `POST /ingest` with SDK event batches.
const INGEST: Endpoint = ("/ingest", "application/json");
/// `POST /v1/traces` with OTLP protobuf.
const OTLP: Endpoint = ("/v1/traces", "application/x-protobuf");

/// Parses the bodies into rows (untimed), then times inserting them with plain multi-row
/// INSERTs into a fresh database. Returns the time and the database's CPU seconds.
fn baseline(backend: Backend, bodies: &[Vec<u8>]) -> (Duration, f64) {
    let db = TestDb::create(backend);
    drop(Store::open(db.url(), 1).expect("migrate"));
    let mut all = WriteSet::default();
    for body in bodies {
        let batch: IngestBatch = serde_json::from_slice(body).expect("a valid body");
        let mut set = WriteSet::from_batch(batch).expect("valid events");
        // One complete row a run: its start merged with its end.
        for fin in set.runs_finished.drain(..) {
            all.runs_complete.push(RunRow {
                input: set
                    .runs_started
                    .iter()
                    .find(|s| s.run_id == fin.run_id)
                    .and_then(|s| s.input.clone()),
                ..fin
            });
        }
        all.steps.append(&mut set.steps);
        all.reasons.append(&mut set.reasons);
        all.kept.append(&mut set.kept);
    }
    // Packing the samples and numbering the item documents is the server's work too, but not the
    // database's: done before the clock.
    let (reasons, items) = xray_server::store::packed::pack_set(&all);
    let doc_of: std::collections::HashMap<&str, i64> = items
        .iter()
        .zip(1..)
        .map(|(it, n)| (it.step_id.as_str(), n))
        .collect();
    let step_rows: Vec<_> = all
        .steps
        .iter()
        .map(|st| {
            let doc = doc_of.get(st.step_id.as_str()).copied();
            (st.clone(), steps::item_doc.eq(doc))
        })
        .collect();
    let runs_per_tx = Args::parse().num("baseline-tx-runs", 100, 100); // 1,000 steps
    let steps_per_tx = runs_per_tx * 10;
    let (t, cpu0);
    let cpu = match db.url() {
        DatabaseUrl::Sqlite(path) => {
            let mut c = SqliteConnection::establish(path).expect("open");
            diesel::sql_query("PRAGMA journal_mode = WAL")
                .execute(&mut c)
                .expect("wal");
            diesel::sql_query("PRAGMA synchronous = NORMAL")
                .execute(&mut c)
                .expect("sync");
            let docs: Vec<_> = items
                .iter()
                .zip(1i64..)
                .map(|(it, n)| {
                    let tokens: Vec<String> = it.keys.iter().map(|k| token(*k)).collect();
                    (item_fts::rowid.eq(n), item_fts::items.eq(tokens.join(" ")))
                })
                .collect();
            (t, cpu0) = (Instant::now(), database_cpu_seconds(backend));
            insert_raw!(
                c,
                all,
                step_rows,
                reasons,
                docs,
                item_fts::table,
                steps_per_tx
            );
            database_cpu_seconds(backend) - cpu0
        }
        DatabaseUrl::Postgres(u) => {
            let mut c = PgConnection::establish(u).expect("open");
            let docs: Vec<_> = items
                .iter()
                .zip(1i64..)
                .map(|(it, n)| {
                    let keys: Vec<i32> = it.keys.iter().map(|k| *k as u32 as i32).collect();
                    (item_docs::doc.eq(n), item_docs::items.eq(keys))
                })
                .collect();
            (t, cpu0) = (Instant::now(), database_cpu_seconds(backend));
            insert_raw!(
                c,
                all,
                step_rows,
                reasons,
                docs,
                item_docs::table,
                steps_per_tx
            );
            database_cpu_seconds(backend) - cpu0
        }
    };
    (t.elapsed(), cpu)
}

/// Inserts `$all`'s runs and `$steps` (step rows with their document numbers) in transactions of
/// `$per_tx` steps with their runs, then the count rows with packed samples (`$reasons`), then
/// the item documents (`$docs` into `$docs_table`), 500-row statements.
#[macro_export]
macro_rules! insert_raw {
    ($c:ident, $all:ident, $steps:ident, $reasons:ident, $docs:ident, $docs_table:expr, $per_tx:expr) => {{
        let step_chunks: Vec<_> = $steps.chunks($per_tx).collect();
        for (i, runs_chunk) in $all.runs_complete.chunks($per_tx / 10).enumerate() {
            let step_chunk = step_chunks.get(i).copied().unwrap_or(&[]);
            $c.transaction::<_, diesel::result::Error, _>(|c| {
                for ch in runs_chunk.chunks(500) {
                    diesel::insert_into(runs::table).values(ch).execute(c)?;
                }
                for ch in step_chunk.chunks(500) {
                    diesel::insert_into(steps::table).values(ch).execute(c)?;
                }
                Ok(())
            })
            .expect("insert runs and steps");
        }
        for ch in $reasons.chunks($per_tx * 3) {
            $c.transaction::<_, diesel::result::Error, _>(|c| {
                for ch in ch.chunks(500) {
                    diesel::insert_into(step_reasons::table)
                        .values(ch)
                        .execute(c)?;
                }
                Ok(())
            })
            .expect("insert reasons");
        }
        for ch in $docs.chunks($per_tx) {
            $c.transaction::<_, diesel::result::Error, _>(|c| {
                for ch in ch.chunks(500) {
                    diesel::insert_into($docs_table).values(ch).execute(c)?;
                }
                Ok(())
            })
            .expect("insert item documents");
        }
    }};
}

/// Parses each body and writes it with `Store::write`, one at a time, in this process: the
/// server's work without HTTP. Returns the time and the share of it spent in `Store::write`.
fn direct(backend: Backend, bodies: &[Vec<u8>]) -> (Duration, f64) {
    let db = TestDb::create(backend);
    let store = Store::open(db.url(), 2).expect("open");
    let t = Instant::now();
    let mut writing = Duration::ZERO;
    for body in bodies {
        let batch: IngestBatch = serde_json::from_slice(body).expect("a valid body");
        let set = WriteSet::from_batch(batch).expect("valid events");
        let w = Instant::now();
        store.write(&set).expect("write");
        writing += w.elapsed();
    }
    let took = t.elapsed();
    (took, writing.as_secs_f64() / took.as_secs_f64())
}

/// One round: baseline steps/s, server steps/s, what the server did, baseline CPU µs a step.
type Round = (f64, f64, Served, f64);

/// What serving the bodies took and cost.
struct Served {
    took: Duration,
    /// CPU seconds of the server process while it served.
    server_cpu: f64,
    /// CPU seconds of the PostgreSQL processes meanwhile (0 for SQLite: it is in the server).
    database_cpu: f64,
    latencies: Vec<Duration>,
    rss_quartiles: Vec<u64>,
    hwm_kb: u64,
}

/// Starts an `xray-server` process on a fresh database and sends it the bodies.
fn server(backend: Backend, bodies: &[Vec<u8>], clients: usize, to: Endpoint) -> Served {
    let db = TestDb::create(backend);
    let (mut child, url) = spawn_server(&db);
    let pid = child.id();
    let done = std::sync::atomic::AtomicBool::new(false);
    let pg = backend == Backend::Postgres;
    let (cpu0, db0) = (
        cpu_seconds(&pid.to_string()),
        if pg { postgres_cpu_seconds() } else { 0.0 },
    );
    let (took, latencies, samples) = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut rss = Vec::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                rss.push(status_kb(pid, "VmRSS:"));
                std::thread::sleep(Duration::from_millis(50));
            }
            rss
        });
        let (took, latencies) = send_all_to(&url, to.0, to.1, bodies, clients);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (took, latencies, sampler.join().expect("sampler"))
    });
    let server_cpu = cpu_seconds(&pid.to_string()) - cpu0;
    let database_cpu = if pg {
        postgres_cpu_seconds() - db0
    } else {
        0.0
    };
    let hwm_kb = status_kb(pid, "VmHWM:");
    let q = |f: f64| {
        samples
            .get(((samples.len().max(1) - 1) as f64 * f) as usize)
            .copied()
            .unwrap_or(0)
    };
    let rss_quartiles = vec![q(0.25), q(0.5), q(0.75), q(1.0)];
    let _ = child.kill();
    let _ = child.wait();
    Served {
        took,
        server_cpu,
        database_cpu,
        latencies,
        rss_quartiles,
        hwm_kb,
    }
}

/// Starts the server binary on a free port over `db` and waits until it answers.
pub fn spawn_server(db: &TestDb) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("address")
        .port();
    // `XRAY_SERVER_BIN` runs another build of the server (to compare two builds in turn).
    let bin = std::env::var("XRAY_SERVER_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_xray-server").to_string());
    let mut child = Command::new(bin)
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .args(["--database-url", &db.url_string()])
        .args(["--workers", "2"])
        .env("XRAY_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start xray-server");
    let url = format!("http://127.0.0.1:{port}");
    let agent = ureq::agent();
    for _ in 0..600 {
        if agent.get(&format!("{url}/health")).call().is_ok() {
            return (child, url);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("xray-server did not start");
}

/// A `/proc/PID/status` field in kB.
fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// CPU seconds (user + system) a process has used so far, from `/proc/PID/stat` (`self` for
/// this process); 0 if it is gone.
fn cpu_seconds(pid: &str) -> f64 {
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) in parentheses.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    ticks as f64 / 100.0 // USER_HZ
}

/// CPU seconds used so far by every live `postgres` process (the database server's share of a
/// PostgreSQL run: backends, WAL writer, checkpointer).
fn postgres_cpu_seconds() -> f64 {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().into_string().ok()?;
            pid.bytes().all(|b| b.is_ascii_digit()).then_some(pid)
        })
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(|pid| cpu_seconds(&pid))
        .sum()
}

/// CPU seconds the database used: this process's for SQLite (embedded), the PostgreSQL
/// processes' for PostgreSQL.
fn database_cpu_seconds(backend: Backend) -> f64 {
    match backend {
        Backend::Sqlite => cpu_seconds("thread-self"),
        Backend::Postgres => postgres_cpu_seconds(),
    }
}
