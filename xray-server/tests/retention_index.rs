//! Deleting runs (retention) removes their packed samples' item-index entries, and only theirs.

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use xray_server::db::DatabaseUrl;
use xray_server::store::rows::WriteSet;
use xray_server::store::Store;
use xray_server::testing::{Backend, TestDb};
use xray_wire::RunRecord;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn index_entries(url: &DatabaseUrl) -> i64 {
    let sql = "SELECT COUNT(*) AS n FROM item_index";
    let rows: Vec<Count> = match url {
        DatabaseUrl::Sqlite(path) => {
            let mut c = SqliteConnection::establish(path).expect("sqlite");
            diesel::sql_query(sql).load(&mut c).expect("count")
        }
        DatabaseUrl::Postgres(u) => {
            let mut c = PgConnection::establish(u).expect("postgres");
            diesel::sql_query(sql).load(&mut c).expect("count")
        }
    };
    rows[0].n
}

fn run(id: &str) -> RunRecord {
    let samples: Vec<serde_json::Value> = (0..5)
        .map(|i| serde_json::json!({"item_id": format!("{id}-{i}")}))
        .chain([serde_json::json!({"item_id": "shared"})])
        .collect();
    serde_json::from_value(serde_json::json!({
        "run_id": id, "pipeline": "p", "started_at": "2026-11-20T10:00:00Z",
        "steps": [{"name": "f", "step_type": "filter",
                   "rejections": {"r": {"count": 6, "samples": samples}}}]
    }))
    .expect("run")
}

fn deleting_runs_removes_their_index_entries(backend: Backend) {
    let db = TestDb::create(backend);
    let store = Store::open(db.url(), 2).expect("open");
    for id in ["r0", "r1", "r2"] {
        store
            .write(&WriteSet::from_run(run(id)).expect("valid"))
            .expect("stored");
    }
    assert_eq!(index_entries(db.url()), 18);
    let (runs, steps, samples) = store
        .delete_runs(&["r0".to_string(), "r1".to_string()])
        .expect("deleted");
    assert_eq!((runs, steps, samples), (2, 2, 12));
    assert_eq!(index_entries(db.url()), 6, "only r2's entries are left");
    // The survivor's items are still found across runs.
    let history = store.item_history("shared", None, 10).expect("history");
    let runs: Vec<&str> = history.events.iter().map(|e| e.run_id.as_str()).collect();
    assert_eq!(runs, ["r2"]);
}

#[test]
fn sqlite_deleting_runs_removes_their_index_entries() {
    deleting_runs_removes_their_index_entries(Backend::Sqlite);
}

#[test]
fn postgres_deleting_runs_removes_their_index_entries() {
    deleting_runs_removes_their_index_entries(Backend::Postgres);
}
