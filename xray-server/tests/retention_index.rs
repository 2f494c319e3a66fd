//! The item index across runs: deleting runs (retention) removes their documents (and, for steps
//! written before the documents, their `item_index` entries), and only theirs; an item is found
//! through either form.

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use xray_server::db::DatabaseUrl;
use xray_server::store::items::token;
use xray_server::store::packed::{entry, key};
use xray_server::store::rows::WriteSet;
use xray_server::store::Store;
use xray_server::testing::{exec, Backend, TestDb};
use xray_wire::RunRecord;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(url: &DatabaseUrl, sql: &str) -> i64 {
    let rows: Vec<Count> = match url {
        DatabaseUrl::Sqlite(path) => {
            let mut c = SqliteConnection::establish(path).expect("sqlite");
            diesel::sql_query(sql).load(&mut c).expect(sql)
        }
        DatabaseUrl::Postgres(u) => {
            let mut c = PgConnection::establish(u).expect("postgres");
            diesel::sql_query(sql).load(&mut c).expect(sql)
        }
    };
    rows[0].n
}

/// How many documents of the backend's item index hold `item`'s hash.
fn docs_holding(url: &DatabaseUrl, item: &str) -> i64 {
    let sql = match url {
        DatabaseUrl::Sqlite(_) => format!(
            "SELECT COUNT(*) AS n FROM item_fts WHERE item_fts MATCH '\"{}\"'",
            token(key(item))
        ),
        DatabaseUrl::Postgres(_) => format!(
            "SELECT COUNT(*) AS n FROM item_docs WHERE items @> ARRAY[{}]",
            key(item) as u32 as i32
        ),
    };
    count(url, &sql)
}

fn run(id: &str) -> RunRecord {
    let samples: Vec<serde_json::Value> = (0..5)
        .map(|i| serde_json::json!({"item_id": format!("{id}-{i}")}))
        .chain([serde_json::json!({"item_id": "shared"})])
        .collect();
    serde_json::from_value(serde_json::json!({
        "run_id": id, "pipeline": "p", "started_at": format!("2026-11-20T10:00:0{}Z", &id[1..]),
        "steps": [{"step_id": format!("{id}-s"), "name": "f", "step_type": "filter",
                   "rejections": {"r": {"count": 6, "samples": samples}}}]
    }))
    .expect("run")
}

/// A fresh database with `runs` (see [`run`]) stored.
fn stored(backend: Backend, runs: &[&str]) -> (TestDb, Store) {
    let db = TestDb::create(backend);
    let store = Store::open(db.url(), 2).expect("open");
    for id in runs {
        store
            .write(&WriteSet::from_run(run(id)).expect("valid"))
            .expect("stored");
    }
    (db, store)
}

fn runs_of(store: &Store, item: &str) -> Vec<String> {
    let history = store.item_history(item, None, 10).expect("history");
    history.events.iter().map(|e| e.run_id.clone()).collect()
}

fn deleting_runs_removes_their_documents(backend: Backend) {
    let db = TestDb::create(backend);
    let store = Store::open(db.url(), 2).expect("open");
    for id in ["r0", "r1", "r2"] {
        let set = WriteSet::from_run(run(id)).expect("valid");
        store.write(&set).expect("stored");
        // Sent again (a retry): the step keeps its one document.
        store.write(&set).expect("stored again");
    }
    assert_eq!(docs_holding(db.url(), "shared"), 3);
    assert_eq!(docs_holding(db.url(), "r1-3"), 1);
    assert_eq!(runs_of(&store, "shared"), ["r2", "r1", "r0"]);
    let (runs, steps, samples) = store
        .delete_runs(&["r0".to_string(), "r1".to_string()])
        .expect("deleted");
    assert_eq!((runs, steps, samples), (2, 2, 12));
    assert_eq!(
        docs_holding(db.url(), "shared"),
        1,
        "only r2's document is left"
    );
    assert_eq!(docs_holding(db.url(), "r1-3"), 0);
    assert_eq!(docs_holding(db.url(), "r2-3"), 1);
    // The survivor's items are still found across runs.
    assert_eq!(runs_of(&store, "shared"), ["r2"]);
    assert!(runs_of(&store, "r0-1").is_empty());
}

/// Steps stored before the item documents: named by `item_index` entries and a step key.
fn legacy_entries_are_read_and_deleted(backend: Backend) {
    let (db, store) = stored(backend, &["r0", "r1", "r2"]);
    // Turn r0 and r1 into what the first index wrote: no document, a step key, entries.
    let docs = match db.url() {
        DatabaseUrl::Sqlite(_) => "item_fts WHERE rowid",
        DatabaseUrl::Postgres(_) => "item_docs WHERE doc",
    };
    for id in ["r0", "r1"] {
        let step = format!("{id}-s");
        exec(
            db.url(),
            &format!("DELETE FROM {docs} IN (SELECT item_doc FROM steps WHERE step_id = '{step}')"),
        );
        exec(
            db.url(),
            &format!(
                "UPDATE steps SET item_doc = NULL, step_key = {} WHERE step_id = '{step}'",
                key(&step)
            ),
        );
        let items = (0..5)
            .map(|i| format!("{id}-{i}"))
            .chain(["shared".to_string()]);
        for item in items {
            exec(
                db.url(),
                &format!(
                    "INSERT INTO item_index (entry) VALUES ({})",
                    entry(&item, key(&step))
                ),
            );
        }
    }
    assert_eq!(docs_holding(db.url(), "shared"), 1);
    assert_eq!(
        runs_of(&store, "shared"),
        ["r2", "r1", "r0"],
        "both forms are read"
    );
    assert_eq!(runs_of(&store, "r1-2"), ["r1"]);
    store
        .delete_runs(&["r1".to_string(), "r2".to_string()])
        .expect("deleted");
    assert_eq!(
        count(db.url(), "SELECT COUNT(*) AS n FROM item_index"),
        6,
        "only r0's entries are left"
    );
    assert_eq!(docs_holding(db.url(), "shared"), 0);
    assert_eq!(runs_of(&store, "shared"), ["r0"]);
}

#[test]
fn postgres_pending_list_is_emptied_and_items_still_found() {
    let (db, store) = stored(Backend::Postgres, &["r0", "r1", "r2"]);
    // New documents wait in GIN's pending list; cleaning moves them into the index proper, and
    // the maintainer then packs them into a batch of posting lists (`tests/item_postings.rs`).
    assert_eq!(docs_holding(db.url(), "r1-4"), 1);
    assert!(store.maintain().expect("cleaned") > 0);
    assert_eq!(store.maintain().expect("cleaned again"), 0);
    assert_eq!(runs_of(&store, "shared"), ["r2", "r1", "r0"]);
    assert_eq!(docs_holding(db.url(), "r1-4"), 0, "packed");
}

#[test]
fn sqlite_wal_is_checkpointed_and_items_still_found() {
    let (_db, store) = stored(Backend::Sqlite, &["r0", "r1", "r2"]);
    // The writes sit in the WAL (far below the connections' own checkpoint threshold); the
    // maintainer's checkpoint copies them into the database file.
    assert!(store.maintain().expect("checkpointed") > 0);
    assert_eq!(runs_of(&store, "shared"), ["r2", "r1", "r0"]);
}

/// A document number is never handed out twice, not even once its step is gone.
fn numbers_are_not_reused_after_the_newest_steps_go(backend: Backend) {
    let (db, store) = stored(backend, &["r0", "r1", "r2"]);
    let newest = "SELECT MAX(item_doc) AS n FROM steps";
    assert_eq!(count(db.url(), newest), 3);
    store.delete_runs(&["r2".to_string()]).expect("deleted");
    store
        .write(&WriteSet::from_run(run("r3")).expect("valid"))
        .expect("stored");
    assert_eq!(count(db.url(), newest), 4, "r2's number stays retired");
    assert_eq!(docs_holding(db.url(), "r2-1"), 0);
    assert_eq!(docs_holding(db.url(), "r3-1"), 1);
    assert_eq!(runs_of(&store, "shared"), ["r3", "r1", "r0"]);
}

/// Each scenario, as one test per backend.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $scenario() {
                super::$scenario(xray_server::testing::Backend::Sqlite);
            })*
        }
        mod postgres {
            $(#[test]
            fn $scenario() {
                super::$scenario(xray_server::testing::Backend::Postgres);
            })*
        }
    };
}

on_both_backends!(
    deleting_runs_removes_their_documents,
    legacy_entries_are_read_and_deleted,
    numbers_are_not_reused_after_the_newest_steps_go,
);
