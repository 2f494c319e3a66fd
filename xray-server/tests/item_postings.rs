//! PostgreSQL's packed item index (`store::item_batches`): an item is found across runs before
//! its documents are packed, after, and after batches merge; deleting runs takes their postings
//! out at the next maintenance; two items with one hash are told apart (on both backends).

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use xray_server::db::DatabaseUrl;
use xray_server::store::item_batches::IndexWork;
use xray_server::store::packed::key;
use xray_server::store::rows::WriteSet;
use xray_server::store::Store;
use xray_server::testing::{Backend, TestDb};
use xray_wire::RunRecord;

/// Two item ids with the same 32-bit hash.
const TWINS: [&str; 2] = ["item-102237", "item-114551"];

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(url: &DatabaseUrl, sql: &str) -> i64 {
    let DatabaseUrl::Postgres(u) = url else {
        panic!("PostgreSQL only")
    };
    let mut c = PgConnection::establish(u).expect("postgres");
    let rows: Vec<Count> = diesel::sql_query(sql).load(&mut c).expect(sql);
    rows[0].n
}

/// Run `id` (started at second `at`): one filter step keeping `{id}-0`..`{id}-4`, `shared` and
/// `extra`.
fn run(id: &str, at: u32, extra: &str) -> RunRecord {
    let samples: Vec<serde_json::Value> = (0..5)
        .map(|i| format!("{id}-{i}"))
        .chain(["shared".to_string(), extra.to_string()])
        .map(|i| serde_json::json!({"item_id": i}))
        .collect();
    serde_json::from_value(serde_json::json!({
        "run_id": id, "pipeline": "p",
        "started_at": format!("2026-11-20T10:{:02}:{:02}Z", at / 60, at % 60),
        "steps": [{"step_id": format!("{id}-s"), "name": "f", "step_type": "filter",
                   "rejections": {"r": {"count": 7, "samples": samples}}}]
    }))
    .expect("run")
}

fn write(store: &Store, id: &str, at: u32, extra: &str) {
    store
        .write(&WriteSet::from_run(run(id, at, extra)).expect("valid"))
        .expect("stored");
}

fn runs_of(store: &Store, item: &str) -> Vec<String> {
    let history = store.item_history(item, None, 50).expect("history");
    history.events.iter().map(|e| e.run_id.clone()).collect()
}

fn fresh_docs(db: &TestDb) -> i64 {
    count(db.url(), "SELECT COUNT(*) AS n FROM item_docs")
}

fn batches(db: &TestDb) -> i64 {
    count(db.url(), "SELECT COUNT(*) AS n FROM item_batches")
}

fn postings(db: &TestDb) -> i64 {
    count(
        db.url(),
        "SELECT COALESCE(SUM(postings), 0)::bigint AS n FROM item_batches",
    )
}

#[test]
fn postgres_items_are_found_before_packing_after_it_and_after_merging() {
    let db = TestDb::create(Backend::Postgres);
    let store = Store::open(db.url(), 2).expect("open");
    // Eight runs, each packed into a batch of its own (7 postings: the smallest size class).
    for i in 0..8u32 {
        let id = format!("r{i}");
        write(&store, &id, i, "x");
        assert_eq!(
            fresh_docs(&db),
            1,
            "the write's document waits in the fresh tier"
        );
        assert_eq!(runs_of(&store, &format!("{id}-2")), [id.as_str()]);
        let work = store.maintain_index().expect("maintained");
        assert_eq!(work.packed, 1);
        assert_eq!(fresh_docs(&db), 0);
        assert_eq!(runs_of(&store, &format!("{id}-2")), [id.as_str()], "packed");
        if i < 7 {
            assert_eq!(work.merged, 0);
            assert_eq!(batches(&db), i64::from(i) + 1);
        } else {
            assert_eq!(work.merged, 8, "eight batches of one size are merged");
            assert_eq!(batches(&db), 1);
        }
    }
    assert_eq!(postings(&db), 8 * 7, "one posting a kept item and step");
    // A new run: one item in the fresh tier, the rest packed; both are read in one lookup.
    write(&store, "r8", 8, "x");
    let all = ["r8", "r7", "r6", "r5", "r4", "r3", "r2", "r1", "r0"];
    assert_eq!(runs_of(&store, "shared"), all);
    assert_eq!(runs_of(&store, "x"), all);
    assert_eq!(runs_of(&store, "r3-4"), ["r3"]);
    assert!(runs_of(&store, "r9-0").is_empty());
    // Another maintenance packs it; nothing else changes.
    let work = store.maintain_index().expect("maintained");
    assert_eq!(
        work,
        IndexWork {
            packed: 1,
            merged: 0,
            collected: 0
        }
    );
    assert_eq!(runs_of(&store, "shared"), all);
}

#[test]
fn postgres_deleting_runs_takes_their_postings_out() {
    let db = TestDb::create(Backend::Postgres);
    let store = Store::open(db.url(), 2).expect("open");
    for i in 0..6u32 {
        write(&store, &format!("r{i}"), i, "x");
    }
    store.maintain_index().expect("packed");
    assert_eq!((batches(&db), postings(&db)), (1, 6 * 7));
    store
        .delete_runs(&["r0".into(), "r1".into(), "r2".into(), "r3".into()])
        .expect("deleted");
    // Gone from every answer at once (a posting whose step is gone names nothing)...
    assert_eq!(runs_of(&store, "shared"), ["r5", "r4"]);
    assert!(runs_of(&store, "r1-1").is_empty());
    // ...and from the index at the next maintenance: fewer than half the batch's steps are
    // left, so it is rewritten with theirs only.
    let work = store.maintain_index().expect("collected");
    assert_eq!(work.collected, 1);
    assert_eq!((batches(&db), postings(&db)), (1, 2 * 7));
    assert_eq!(runs_of(&store, "shared"), ["r5", "r4"]);
    assert_eq!(runs_of(&store, "r4-0"), ["r4"]);
    // Every run gone: so is the batch.
    store
        .delete_runs(&["r4".into(), "r5".into()])
        .expect("deleted");
    store.maintain_index().expect("collected");
    assert_eq!((batches(&db), postings(&db)), (0, 0));
    assert!(runs_of(&store, "shared").is_empty());
}

fn twins_are_told_apart(backend: Backend) {
    assert_eq!(key(TWINS[0]), key(TWINS[1]), "the two ids share a hash");
    let db = TestDb::create(backend);
    let store = Store::open(db.url(), 2).expect("open");
    write(&store, "r0", 0, TWINS[0]);
    write(&store, "r1", 1, TWINS[1]);
    assert_eq!(runs_of(&store, TWINS[0]), ["r0"]);
    assert_eq!(runs_of(&store, TWINS[1]), ["r1"]);
    store.maintain().expect("maintained");
    assert_eq!(runs_of(&store, TWINS[0]), ["r0"], "after packing");
    assert_eq!(runs_of(&store, TWINS[1]), ["r1"], "after packing");
    let fate = store.item_fate("r1", TWINS[0]).expect("read").expect("run");
    assert!(fate.events.is_empty(), "{fate:?}");
}

#[test]
fn postgres_two_items_with_one_hash_are_told_apart() {
    twins_are_told_apart(Backend::Postgres);
}

#[test]
fn sqlite_two_items_with_one_hash_are_told_apart() {
    twins_are_told_apart(Backend::Sqlite);
}
