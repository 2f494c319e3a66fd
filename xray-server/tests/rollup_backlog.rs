//! Runs stored before the rollups existed (or left unrolled, as the migration that moved the
//! reason counts into the step rows leaves them): the maintainer's round rolls up the finished
//! ones, and the stats come out as ingest would have made them — on both backends.

use diesel::migration::{Migration, MigrationSource};
use diesel::prelude::*;
use diesel_migrations::MigrationHarness;
use xray_server::db::{DatabaseUrl, MIGRATIONS};
use xray_server::store::rows::WriteSet;
use xray_server::store::stats::Selection;
use xray_server::store::Store;
use xray_server::testing::{exec, Backend, TestDb};
use xray_wire::{BucketWidth, RunRecord};

fn run(i: usize) -> RunRecord {
    let status = ["completed", "failed", "running"][i % 3];
    serde_json::from_value(serde_json::json!({
        "run_id": format!("r{i}"), "pipeline": "p", "version": if i.is_multiple_of(2) { "1" } else { "2" },
        "status": status,
        "started_at": format!("2026-11-20T{:02}:{:02}:00Z", 8 + i / 7, (i * 13) % 60),
        "steps": [
            {"name": "f", "step_type": "filter", "duration_ms": 3.0 + i as f64,
             "input_count": 10 + i, "output_count": 4,
             "rejections": {"big": {"count": 6 + i, "samples": []}}},
            {"name": "s", "step_type": "select", "decision": {"selected": "x", "score": 0.1 * i as f64}}
        ]
    }))
    .expect("a run")
}

fn backlog_is_rolled_up_as_ingest_would(backend: Backend) {
    let db = TestDb::create(backend);
    let store = Store::open(db.url(), 2).expect("open");
    for i in 0..40 {
        store
            .write(&WriteSet::from_run(run(i)).expect("valid"))
            .expect("write");
    }
    let stats = |store: &Store| {
        let all = store.pipeline_stats("p", &Selection::default(), BucketWidth::Hour);
        let one = Selection {
            version: Some("2".into()),
            ..Selection::default()
        };
        (
            all.expect("stats"),
            store
                .pipeline_stats("p", &one, BucketWidth::Day)
                .expect("stats"),
        )
    };
    let at_ingest = stats(&store);
    assert_eq!(
        at_ingest.0.runs.iter().map(|b| b.runs).sum::<u64>(),
        27,
        "running runs left out"
    );
    // As a database from before the rollups: nothing rolled up.
    for sql in [
        "DELETE FROM run_rollups",
        "DELETE FROM step_rollups",
        "UPDATE runs SET rolled_up = FALSE",
    ] {
        exec(db.url(), sql);
    }
    assert!(stats(&store).0.runs.is_empty());
    store.maintain().expect("a round");
    assert_eq!(stats(&store), at_ingest);
    // A second round finds nothing left to do.
    store.maintain().expect("a round");
    assert_eq!(stats(&store), at_ingest);
    // The migration to reason counts inside the step rows, taken back and run again: the
    // rollups are emptied and rebuilt by the maintainer.
    redo_migration(db.url(), "reasons_in_step_rollups");
    assert!(stats(&store).0.runs.is_empty());
    store.maintain().expect("a round");
    assert_eq!(stats(&store), at_ingest);
}

/// Takes back and runs again the shared migration whose name ends with `name`.
fn redo_migration(url: &DatabaseUrl, name: &str) {
    fn redo<DB: diesel::backend::Backend, C: MigrationHarness<DB>>(c: &mut C, name: &str) {
        let all: Vec<Box<dyn Migration<DB>>> = MIGRATIONS.migrations().expect("migrations");
        let m = all
            .iter()
            .find(|m| m.name().to_string().ends_with(name))
            .expect("the migration");
        c.revert_migration(m.as_ref()).expect("revert");
        c.run_migration(m.as_ref()).expect("run");
    }
    match url {
        DatabaseUrl::Sqlite(path) => redo(
            &mut SqliteConnection::establish(path).expect("sqlite"),
            name,
        ),
        DatabaseUrl::Postgres(u) => redo(&mut PgConnection::establish(u).expect("postgres"), name),
    }
}

#[test]
fn sqlite_backlog_is_rolled_up_as_ingest_would() {
    backlog_is_rolled_up_as_ingest_would(Backend::Sqlite);
}

#[test]
fn postgres_backlog_is_rolled_up_as_ingest_would() {
    backlog_is_rolled_up_as_ingest_would(Backend::Postgres);
}
