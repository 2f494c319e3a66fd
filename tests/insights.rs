//! Across many runs: the version a run ran (given by the SDK, the attribute, `POST /runs` or an
//! event) and `GET /pipelines` — each on SQLite and on PostgreSQL.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::*;

on_both_backends!(
    runs_carry_the_version_they_ran,
    pipelines_show_runs_failures_and_versions_of_a_window,
);

fn run_ids(list: &Value) -> Vec<&str> {
    let runs = list["runs"].as_array().expect("runs");
    runs.iter()
        .map(|r| r["run_id"].as_str().expect("id"))
        .collect()
}

/// A time as the API shows it (`at` without the milliseconds).
fn shown(minute: u32) -> String {
    at(minute, 0).replace(".000Z", "Z")
}

fn run(run_id: &str, pipeline: &str, minute: u32, status: &str, version: Option<&str>) -> Value {
    let mut run = json!({"run_id": run_id, "pipeline": pipeline, "status": status,
        "started_at": at(minute, 0), "ended_at": at(minute, 5)});
    if let Some(v) = version {
        run["version"] = json!(v);
    }
    run
}

fn runs_carry_the_version_they_ran(backend: Backend) {
    let api = Api::start(backend);
    api.save(&run("posted", "p", 1, "completed", Some("1.4.2")));
    api.save(&run("unversioned", "p", 2, "completed", None));
    api.ingest(vec![json!({"run_started": {
        "run_id": "streamed", "pipeline": "p", "started_at": at(3, 0), "version": "1.4.2"
    }})]);
    // The SDK: the client's version on every run, unless a run gives its own.
    let xray = xray::XRay::builder()
        .endpoint(api.server.url.clone())
        .offline_mode(xray::OfflineMode::Fail)
        .batch_interval(Duration::from_millis(5))
        .version("2.0.0")
        .client("p");
    let from_client = xray.run(json!({}));
    let from_client_id = from_client.id().expect("recording").to_string();
    from_client.finish().expect("delivered");
    let own = xray.run_builder(json!({})).version("2.1.0-rc1").start();
    let own_id = own.id().expect("recording").to_string();
    own.finish().expect("delivered");
    xray.flush(Duration::from_secs(10)).expect("flushed");

    assert_eq!(
        run_ids(&api.ok("/runs?version=1.4.2")),
        ["streamed", "posted"]
    );
    assert_eq!(run_ids(&api.ok("/runs?version=2.0.0")), [&*from_client_id]);
    assert_eq!(run_ids(&api.ok("/runs?version=2.1.0-rc1")), [&*own_id]);
    assert!(run_ids(&api.ok("/runs?version=9.9")).is_empty());
    assert_eq!(api.ok("/runs/posted")["version"], "1.4.2");
    assert_eq!(api.ok("/runs/unversioned")["version"], Value::Null);
    // The version is a name: empty or with NUL is refused, with the field named.
    let (status, body) = api.post("/runs", &run("bad", "p", 4, "completed", Some("")));
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().expect("error").contains("version"),
        "{body}"
    );
    let (status, body) = api.get("/runs?version=1&versio=2");
    assert_eq!(status, 400, "{body}");
}

fn pipelines_show_runs_failures_and_versions_of_a_window(backend: Backend) {
    let api = Api::start(backend);
    assert_eq!(api.ok("/pipelines"), json!({"pipelines": []}));
    api.save(&run("a1", "search", 1, "completed", Some("1.0")));
    api.save(&run("a2", "search", 2, "failed", Some("1.0")));
    api.save(&run("a3", "search", 3, "completed", Some("1.1")));
    api.save(&run("a4", "search", 4, "failed", None));
    api.save(&run("b1", "checkout", 2, "completed", None));
    api.ingest(vec![json!({"run_started": {
        "run_id": "b2", "pipeline": "checkout", "started_at": at(5, 0), "version": "7"
    }})]);

    let all = api.ok("/pipelines");
    assert_eq!(
        all,
        json!({"pipelines": [
            {"pipeline": "checkout", "runs": 2, "failed": 0, "first_run_at": shown(2),
             "last_run_at": shown(5), "versions": ["7"]},
            {"pipeline": "search", "runs": 4, "failed": 2, "first_run_at": shown(1),
             "last_run_at": shown(4), "versions": ["1.0", "1.1"]},
        ]})
    );
    // A window counts only the runs started in it.
    let window = api.ok(&format!("/pipelines?since={}&until={}", at(2, 0), at(4, 0)));
    assert_eq!(
        window,
        json!({"pipelines": [
            {"pipeline": "checkout", "runs": 1, "failed": 0, "first_run_at": shown(2),
             "last_run_at": shown(2), "versions": []},
            {"pipeline": "search", "runs": 2, "failed": 1, "first_run_at": shown(2),
             "last_run_at": shown(3), "versions": ["1.0", "1.1"]},
        ]})
    );
    for bad in ["/pipelines?since=yesterday", "/pipelines?pipeline=search"] {
        let (status, body) = api.get(bad);
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

/// `#[xray::run(version = ...)]` takes any `Display` expression, here Cargo's package version.
#[xray::run(pipeline = "versioned", version = env!("CARGO_PKG_VERSION"))]
fn versioned_pipeline(query: &str) -> String {
    query.to_uppercase()
}

#[test]
fn the_run_attribute_records_its_version() {
    let api = Api::start(Backend::Sqlite);
    use_default_client(&api.server.url);
    assert_eq!(versioned_pipeline("iphone case"), "IPHONE CASE");
    xray::flush(Duration::from_secs(10)).expect("delivered");
    let runs = api.ok("/runs?pipeline=versioned");
    assert_eq!(runs["runs"][0]["version"], env!("CARGO_PKG_VERSION"));
    let pipelines = api.ok("/pipelines");
    assert_eq!(
        pipelines["pipelines"][0]["versions"],
        json!([env!("CARGO_PKG_VERSION")])
    );
}
