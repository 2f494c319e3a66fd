//! Every query the `scale` bench times is answered from an index, on both backends (checked on a
//! small database: SQLite's planner does not need statistics for this; PostgreSQL is told to avoid
//! sequential scans, so the test asks whether an index can serve the query, and that it is used).

#[path = "../benches/common/mod.rs"]
mod common;

use xray_server::store::{Store, STEP_ROWS_BY_KEY_SQL};
use xray_server::testing::{Backend, TestDb};

fn plans(backend: Backend) -> Vec<(&'static str, Vec<String>)> {
    let db = TestDb::create(backend);
    drop(Store::open(db.url(), 1).expect("migrate"));
    common::plan_sql("run-0000001", backend)
        .into_iter()
        .map(|(what, sql)| (what, common::plan_opts(db.url(), &sql, true)))
        .collect()
}

#[test]
fn sqlite_answers_every_timed_query_from_an_index() {
    for (what, plan) in plans(Backend::Sqlite) {
        for line in &plan {
            let reads_a_table = line.starts_with("SCAN") || line.starts_with("SEARCH");
            assert!(
                !reads_a_table || line.contains("INDEX") || line.contains("PRIMARY KEY"),
                "{what}: `{line}` reads a table without an index\n{plan:#?}"
            );
        }
        assert!(
            !plan
                .iter()
                .any(|l| l.contains("TEMP B-TREE") && what.starts_with("steps")),
            "{what}: sorts instead of reading in index order\n{plan:#?}"
        );
    }
}

#[test]
fn postgres_answers_every_timed_query_from_an_index() {
    for (what, plan) in plans(Backend::Postgres) {
        // The item index's directory of batches is read whole: a few dozen rows at most (batch
        // sizes grow by a factor of 8), each batch's bucket then read by its key.
        assert!(
            !plan
                .iter()
                .any(|l| l.contains("Seq Scan") && !l.contains("Seq Scan on item_batches")),
            "{what}: sequential scan\n{plan:#?}"
        );
        assert!(
            plan.iter().any(|l| l.contains("Index")),
            "{what}: no index\n{plan:#?}"
        );
    }
}

#[test]
fn postgres_reads_the_rollup_rows_of_a_write_by_their_primary_key() {
    let db = TestDb::create(Backend::Postgres);
    drop(Store::open(db.url(), 1).expect("migrate"));
    let sql = STEP_ROWS_BY_KEY_SQL
        .replace("$1", "'{p,p}'")
        .replace("$2", "'{0,3600000000}'")
        .replace("$3", "'{a,b}'")
        .replace("$4", "'{\"\",\"\"}'");
    // Sequential scans allowed: a plain join of the keys is planned as a hash join over the
    // whole table, which the query's form rules out.
    let plan = common::plan_opts(db.url(), &sql, false);
    assert!(
        plan.iter().any(|l| l.contains("Nested Loop"))
            && plan
                .iter()
                .any(|l| l.contains("Index Scan using step_rollups_pkey"))
            && !plan.iter().any(|l| l.contains("Seq Scan on step_rollups")),
        "not a probe of the primary key a key\n{plan:#?}"
    );
}
