//! Issue 22's workload: bytes per run of a five-step pipeline on each backend, and where they go.

use super::{name, rfc3339, sizes, uuid, Args, Rng};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use std::collections::BTreeMap;
use xray_server::db::DatabaseUrl;
use xray_server::store::maintenance::DbMaintainer;
use xray_server::store::rows::WriteSet;
use xray_server::store::Store;
use xray_server::testing::{Backend, TestDb};
use xray_wire::IngestBatch;

/// Items a filter step takes.
const ITEMS: u64 = 5_000;
/// The catalog the items come from.
const CATALOG: u64 = 100_000;

/// Prints bytes per run on each backend, with the biggest parts, then (PostgreSQL) where the
/// bytes of each relation go.
pub fn per_run(args: &Args, runs: usize) {
    println!();
    println!("| backend | runs | bytes per run | biggest parts (bytes per run) |");
    println!("|---|---|---|---|");
    let mut details = Vec::new();
    for &backend in &args.backends {
        let (per_run, parts, detail) = measure(backend, runs);
        let mut parts: Vec<_> = parts.into_iter().filter(|(_, b)| *b > 0.5).collect();
        parts.sort_by(|a, b| b.1.total_cmp(&a.1));
        let parts: Vec<String> = parts
            .iter()
            .take(6)
            .map(|(k, b)| format!("{k} {b:.0}"))
            .collect();
        println!(
            "| {} | {runs} | {per_run:.0} | {} |",
            name(backend),
            parts.join(", ")
        );
        details.extend(detail);
    }
    if !details.is_empty() {
        println!();
        println!("PostgreSQL, after VACUUM: relation | bytes | live tuples | dead tuples | free bytes | GIN pending pages");
        for d in details {
            println!("{d}");
        }
    }
}

/// Writes `runs` runs and returns bytes per run in total and by table or index, and (PostgreSQL)
/// a line per relation on where its bytes go.
fn measure(backend: Backend, runs: usize) -> (f64, BTreeMap<String, f64>, Vec<String>) {
    let db = TestDb::create(backend);
    let store = Store::open(db.url(), 2).expect("open");
    let before = sizes(db.url());
    let maintainer = DbMaintainer::start(&store);
    let mut rng = Rng(0x2222_0022);
    let base: i64 = 1_795_000_000_000_000;
    for i in 0..runs {
        let events = run_events(&mut rng, base + i as i64 * 1_000_000);
        let batch: IngestBatch =
            serde_json::from_value(serde_json::json!({ "events": events })).expect("a valid batch");
        store
            .write(&WriteSet::from_batch(batch).expect("valid events"))
            .expect("write");
    }
    drop(maintainer);
    // The round a quiet server's maintainer would do next (with what it does every 40 rounds).
    store.maintain().expect("maintain");
    let detail = settle(db.url());
    let after = sizes(db.url());
    let mut parts: BTreeMap<String, f64> = BTreeMap::new();
    for (k, b) in &after {
        *parts.entry(k.clone()).or_default() += *b as f64 / runs as f64;
    }
    for (k, b) in &before {
        *parts.entry(k.clone()).or_default() -= *b as f64 / runs as f64;
    }
    (parts.values().sum(), parts, detail)
}

/// Does the database's deferred work as a quiet server would (the maintainer once more; on
/// PostgreSQL `VACUUM`), and returns PostgreSQL's account of each relation.
fn settle(url: &DatabaseUrl) -> Vec<String> {
    let DatabaseUrl::Postgres(u) = url else {
        return Vec::new();
    };
    let mut c = PgConnection::establish(u).expect("open");
    diesel::sql_query("VACUUM ANALYZE")
        .execute(&mut c)
        .expect("vacuum");
    diesel::sql_query("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        .execute(&mut c)
        .expect("pgstattuple");
    #[derive(QueryableByName)]
    struct Rel {
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = BigInt)]
        bytes: i64,
        #[diesel(sql_type = BigInt)]
        live: i64,
        #[diesel(sql_type = BigInt)]
        dead: i64,
        #[diesel(sql_type = BigInt)]
        free: i64,
        #[diesel(sql_type = BigInt)]
        pending: i64,
    }
    // Tables, their TOAST tables and B-tree indexes by pgstattuple (-1: not a kind it reads);
    // GIN's pending list by pgstatginindex.
    let ok =
        "(c.relkind IN ('r', 't') OR c.relam = (SELECT oid FROM pg_am WHERE amname = 'btree'))";
    let stat = |col: &str| {
        format!("CASE WHEN {ok} THEN (SELECT {col}::bigint FROM pgstattuple(c.oid)) ELSE -1 END")
    };
    let rels: Vec<Rel> = diesel::sql_query(format!(
        "SELECT c.relname::text AS name, pg_relation_size(c.oid) AS bytes, \
         {} AS live, {} AS dead, {} AS free, \
         CASE WHEN c.relam = (SELECT oid FROM pg_am WHERE amname = 'gin') \
              THEN (SELECT pending_pages::bigint FROM pgstatginindex(c.oid)) ELSE 0 END AS pending \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname IN ('public', 'pg_toast') AND c.relkind IN ('r', 't', 'i') \
           AND (n.nspname = 'public' OR c.oid IN (SELECT reltoastrelid FROM pg_class)) \
           AND pg_relation_size(c.oid) > 8192 \
         ORDER BY pg_relation_size(c.oid) DESC",
        stat("tuple_count"),
        stat("dead_tuple_count"),
        stat("free_space")
    ))
    .load(&mut c)
    .expect("pgstattuple");
    rels.iter()
        .map(|r| {
            format!(
                "| {} | {} | {} | {} | {} | {} |",
                r.name, r.bytes, r.live, r.dead, r.free, r.pending
            )
        })
        .collect()
}

/// One run as the SDK sends it: `run_started`, five `step_finished`, `run_finished`.
pub fn run_events(rng: &mut Rng, start: i64) -> Vec<serde_json::Value> {
    let run_id = uuid(rng);
    let pipeline = "competitor_selection";
    let at = rfc3339;
    let mut events = vec![serde_json::json!({"run_started": {"run_id": run_id,
        "pipeline": pipeline, "started_at": at(start),
        "input": {"title": "iPhone 15 Pro case", "limit": 50}}})];
    let step = |position: usize, name: &str, kind: &str, extra: serde_json::Value| {
        let t = start + position as i64 * 20_000;
        let mut s = serde_json::json!({"step_id": format!("{run_id}:{position}"),
            "position": position, "name": name, "step_type": kind, "capture": "sample",
            "started_at": at(t), "ended_at": at(t + 15_000), "duration_ms": 15.0});
        if let (Some(s), serde_json::Value::Object(extra)) = (s.as_object_mut(), extra) {
            s.extend(extra);
        }
        serde_json::json!({"step_finished": {"run_id": run_id, "pipeline": pipeline, "step": s}})
    };
    events.push(step(
        0,
        "generate_keywords",
        "generate",
        serde_json::json!({"input": {"product_title": "iPhone 15 Pro case"},
            "output": ["iphone", "15", "pro", "case", "cover", "holder", "stand"]}),
    ));
    events.push(step(
        1,
        "search_catalog",
        "retrieve",
        serde_json::json!({"input_count": 7, "output_count": ITEMS}),
    ));
    // One run in ten rejects over 90% of its items.
    let rejected = if rng.below(10) == 0 {
        4_550 + rng.below(150)
    } else {
        3_000 + rng.below(1_500)
    };
    let accepted = ITEMS - rejected;
    let first = rng.below(CATALOG);
    let item = |i: u64| format!("sku-{:06}", (first + i * 7) % CATALOG);
    let (by_price, by_rating) = (rejected / 2, rejected - rejected / 2);
    let sample =
        |rng: &mut Rng, n: u64, lo: u64, details: &dyn Fn(&mut Rng) -> serde_json::Value| {
            let kept: Vec<serde_json::Value> = (0..n.min(50))
            .map(|_| {
                serde_json::json!({"item_id": item(lo + rng.below(n)), "details": details(rng)})
            })
            .collect();
            serde_json::json!({"count": n, "samples": kept})
        };
    let price = |rng: &mut Rng| serde_json::json!({"price": 100.0 + rng.below(20_000) as f64 / 100.0, "threshold": 100.0});
    let rating = |rng: &mut Rng| serde_json::json!({"rating": 1.0 + rng.below(25) as f64 / 10.0, "minimum": 3.5});
    let acceptances: Vec<serde_json::Value> = (0..accepted.min(500))
        .map(|i| {
            serde_json::json!({"item_id": item(rejected + i),
                "details": {"category": "phone_cases",
                            "price": 5.0 + rng.below(5_000) as f64 / 100.0}})
        })
        .collect();
    let rejections = serde_json::json!({
        "price_too_high": sample(rng, by_price, 0, &price),
        "low_rating": sample(rng, by_rating, by_price, &rating),
    });
    events.push(step(
        2,
        "filter_candidates",
        "filter",
        serde_json::json!({"input_count": ITEMS, "output_count": accepted,
            "rejections": rejections,
            "acceptances": {"count": accepted, "samples": acceptances}}),
    ));
    events.push(step(
        3,
        "rank_by_relevance",
        "rank",
        serde_json::json!({"input_count": accepted, "output_count": accepted}),
    ));
    events.push(step(
        4,
        "select_best",
        "select",
        serde_json::json!({"input_count": accepted, "output_count": 1,
            "decision": {"selected": item(rejected), "score": 0.93,
                         "details": {"reason": "highest relevance"}}}),
    ));
    events.push(
        serde_json::json!({"run_finished": {"run_id": run_id, "pipeline": pipeline,
        "started_at": at(start), "ended_at": at(start + 110_000), "status": "completed",
        "output": {"selected": item(rejected)}}}),
    );
    events
}
