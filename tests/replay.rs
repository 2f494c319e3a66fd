//! Replays, the part the server keeps: a run marked as the replay of another run or step
//! (`replay_of`), found with `GET /runs?replay_of=` — on SQLite and on PostgreSQL. Replaying
//! through the SDK is `replay_sqlite.rs` / `replay_postgres.rs` (one process each: they use the
//! default client), through the CLI `xray-cli/tests/replay.rs`.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::*;

on_both_backends!(replays_name_what_they_replay);

fn run_ids(list: &Value) -> Vec<&str> {
    let runs = list["runs"].as_array().expect("runs");
    runs.iter()
        .map(|r| r["run_id"].as_str().expect("id"))
        .collect()
}

fn replays_name_what_they_replay(backend: Backend) {
    let api = Api::start(backend);
    api.save(&seed_run("original", 1));
    // A replay from the SDK, one posted whole, and one of a single step, through /ingest.
    let xray = xray::XRay::builder()
        .endpoint(api.server.url.clone())
        .offline_mode(xray::OfflineMode::Fail)
        .batch_interval(Duration::from_millis(5))
        .client("competitor_selection");
    let replay = xray.run_builder(json!({})).replay_of("original").start();
    let replay_id = replay.id().expect("recording").to_string();
    replay.finish().expect("delivered");
    xray.flush(Duration::from_secs(10)).expect("flushed");
    api.save(
        &json!({"run_id": "posted_replay", "pipeline": "competitor_selection",
        "started_at": at(3, 0), "replay_of": "original"}),
    );
    api.ingest(vec![
        json!({"run_started": {"run_id": "step_replay", "pipeline": "p",
        "started_at": at(4, 0), "replay_of": "original:2"}}),
    ]);

    let mut of_original = run_ids(&api.ok("/runs?replay_of=original"))
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    of_original.sort();
    let mut expected = vec![replay_id.clone(), "posted_replay".to_string()];
    expected.sort();
    assert_eq!(of_original, expected);
    assert_eq!(
        run_ids(&api.ok("/runs?replay_of=original:2")),
        ["step_replay"]
    );
    assert_eq!(
        api.ok(&format!("/runs/{replay_id}"))["replay_of"],
        "original"
    );
    assert_eq!(api.ok("/runs/original")["replay_of"], Value::Null);
    let (status, body) = api.post("/runs", &json!({"pipeline": "p", "replay_of": "a\u{0}b"}));
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().expect("error").contains("replay_of"),
        "{body}"
    );
}
