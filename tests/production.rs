//! Running it in production: correlation ids and trace ids, API keys, retention and alerts —
//! each on SQLite and on PostgreSQL.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::*;

/// Runs each named test against both backends, each with its own fresh database.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(super::Backend::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name(super::Backend::Postgres) } )*
        }
    };
}

on_both_backends!(
    runs_are_found_by_correlation_and_trace_id,
    bad_links_are_400_with_the_field_named,
    the_sdk_sends_links_given_in_scope_or_by_hand,
);

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn run_ids(list: &Value) -> Vec<&str> {
    list["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["run_id"].as_str().expect("run_id"))
        .collect()
}

fn runs_are_found_by_correlation_and_trace_id(backend: Backend) {
    let api = Api::start(backend);
    let mut linked = seed_run("linked", 1);
    linked["correlation_id"] = json!("req-42");
    linked["traceparent"] = json!(TRACEPARENT);
    api.save(&linked);
    api.save(&seed_run("unlinked", 2));
    // The SDK's events carry the same links.
    api.ingest(vec![json!({"run_started": {
        "run_id": "streamed", "pipeline": "p", "started_at": at(3, 0),
        "correlation_id": "req-42",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
    }})]);

    let by_corr = api.ok("/runs?correlation_id=req-42");
    assert_eq!(run_ids(&by_corr), ["streamed", "linked"]);
    let by_trace = api.ok(&format!("/runs?trace_id={TRACE_ID}"));
    assert_eq!(run_ids(&by_trace), ["linked"]);
    // Trace ids are hex: any case finds the run.
    let upper = api.ok(&format!("/runs?trace_id={}", TRACE_ID.to_uppercase()));
    assert_eq!(run_ids(&upper), ["linked"]);
    let both = api.ok("/runs?correlation_id=req-42&trace_id=0af7651916cd43dd8448eb211c80319c");
    assert_eq!(run_ids(&both), ["streamed"]);
    assert_eq!(run_ids(&api.ok("/runs?correlation_id=nobody")).len(), 0);

    let run = api.ok("/runs/linked");
    assert_eq!(run["correlation_id"], "req-42");
    assert_eq!(run["trace_id"], TRACE_ID);
    assert_eq!(run["traceparent"], TRACEPARENT);
    let plain = api.ok("/runs/unlinked");
    assert_eq!(plain["correlation_id"], Value::Null);
    assert_eq!(plain["trace_id"], Value::Null);
}

fn bad_links_are_400_with_the_field_named(backend: Backend) {
    let api = Api::start(backend);
    let mut run = seed_run("r", 1);
    run["traceparent"] = json!("00-not-a-trace-01");
    let (status, body) = api.post("/runs", &run);
    assert_eq!(status, 400, "{body}");
    let msg = body["error"].as_str().expect("error");
    assert!(msg.contains("traceparent") && msg.contains("W3C"), "{msg}");

    let (status, body) = api.post(
        "/ingest",
        &json!({"events": [{"run_started": {"run_id": "s", "pipeline": "p",
            "started_at": at(1, 0), "correlation_id": ""}}]}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .contains("events[0].run_started.correlation_id"),
        "{body}"
    );

    let (status, body) = api.get("/runs?trace_id=xyz");
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().expect("error").contains("trace_id"));
    // Nothing was stored by the refused requests.
    assert_eq!(run_ids(&api.ok("/runs")).len(), 0);
}

fn the_sdk_sends_links_given_in_scope_or_by_hand(backend: Backend) {
    let api = Api::start(backend);
    let xray = xray::XRay::builder()
        .endpoint(api.server.url.clone())
        .offline_mode(xray::OfflineMode::Fail)
        .batch_interval(Duration::from_millis(5))
        .client("checkout");

    let by_hand = xray
        .run_builder(json!({"cart": 3}))
        .correlation_id("req-1")
        .traceparent(TRACEPARENT)
        .start();
    let by_hand_id = by_hand.id().expect("recording").to_string();
    by_hand.finish().expect("delivered");

    // Links in scope reach runs started inside, and runs nested in those.
    let (scoped_id, nested_id) = xray::Correlation::new().id("req-2").in_scope(|| {
        let outer = xray.run(json!({}));
        let nested = outer.in_scope(|| xray.run(json!({})));
        let ids = (
            outer.id().expect("recording").to_string(),
            nested.id().expect("recording").to_string(),
        );
        nested.finish().expect("delivered");
        outer.finish().expect("delivered");
        ids
    });
    // A broken traceparent costs the run nothing: it is dropped, the run is kept.
    let broken = xray.run_builder(()).traceparent("garbage").start();
    let broken_id = broken.id().expect("recording").to_string();
    broken.finish().expect("delivered");
    xray.flush(Duration::from_secs(10)).expect("flushed");

    let run = api.ok(&format!("/runs/{by_hand_id}"));
    assert_eq!(run["correlation_id"], "req-1");
    assert_eq!(run["trace_id"], TRACE_ID);
    let mut scoped = run_ids(&api.ok("/runs?correlation_id=req-2"))
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    scoped.sort();
    let mut expected = vec![scoped_id, nested_id];
    expected.sort();
    assert_eq!(scoped, expected);
    let broken = api.ok(&format!("/runs/{broken_id}"));
    assert_eq!(broken["trace_id"], Value::Null);
}
