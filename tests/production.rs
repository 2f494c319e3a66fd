//! Running it in production: correlation ids and trace ids, API keys, retention and alerts —
//! each on SQLite and on PostgreSQL.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::*;
use xray_server::http::auth::ApiKeys;
use xray_server::retention::RetentionConfig;
use xray_server::Settings;

/// Alerts: webhooks notified once a window, retried, handed over between servers.
#[path = "production/alerts.rs"]
mod alerts;

on_both_backends!(
    runs_are_found_by_correlation_and_trace_id,
    bad_links_are_400_with_the_field_named,
    the_sdk_sends_links_given_in_scope_or_by_hand,
    api_keys_open_each_route_to_its_scope_only,
    retention_deletes_expired_runs_with_everything_they_own,
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

/// A request with an optional bearer key: (status, JSON body or null, WWW-Authenticate).
fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value, Option<String>) {
    let agent = agent();
    let url = server.at(path);
    let auth = key.map(|k| format!("Bearer {k}"));
    let result = match (method, body) {
        ("GET" | "HEAD" | "DELETE", _) => {
            let mut r = match method {
                "GET" => agent.get(&url),
                "HEAD" => agent.head(&url),
                _ => agent.delete(&url),
            };
            if let Some(a) = &auth {
                r = r.header("authorization", a);
            }
            r.call()
        }
        (_, body) => {
            let mut r = agent.post(&url);
            if let Some(a) = &auth {
                r = r.header("authorization", a);
            }
            r.send_json(body.cloned().unwrap_or(Value::Null))
        }
    };
    let mut res = result.expect("request");
    let status = res.status().as_u16();
    let www = res
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = res.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        www,
    )
}

fn api_keys_open_each_route_to_its_scope_only(backend: Backend) {
    let secret = |s: &str| s.parse().expect("key");
    let server = TestServer::start_settings(
        backend,
        Settings {
            keys: ApiKeys::new(&[secret("k-in")], &[secret("k-read")], &[secret("k-admin")]),
            ..Settings::default()
        },
    );
    let run = seed_run("r1", 1);
    // Health stays open for load balancers, whether they probe with GET or HEAD.
    assert_eq!(call(&server, "GET", "/health", None, None).0, 200);
    assert_eq!(call(&server, "HEAD", "/health", None, None).0, 200);
    // No key: 401 with a challenge and a message that says what to send.
    let (status, body, www) = call(&server, "POST", "/runs", None, Some(&run));
    assert_eq!(status, 401, "{body}");
    assert_eq!(www.as_deref(), Some("Bearer"));
    assert!(body["error"]
        .as_str()
        .unwrap_or("")
        .contains("Authorization: Bearer"));
    // Unknown key: 401. Key of another scope: 403.
    assert_eq!(
        call(&server, "POST", "/runs", Some("nope"), Some(&run)).0,
        401
    );
    let (status, body, _) = call(&server, "POST", "/runs", Some("k-read"), Some(&run));
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "forbidden");
    assert_eq!(
        call(&server, "POST", "/runs", Some("k-in"), Some(&run)).0,
        201
    );
    // Reads need a read key; the ingest key cannot read.
    assert_eq!(call(&server, "GET", "/runs/r1", Some("k-in"), None).0, 403);
    assert_eq!(call(&server, "GET", "/runs/r1", None, None).0, 401);
    assert_eq!(call(&server, "HEAD", "/runs/r1", None, None).0, 401);
    let (status, body, _) = call(&server, "GET", "/runs/r1", Some("k-read"), None);
    assert_eq!((status, body["run_id"].as_str()), (200, Some("r1")));
    assert_eq!(
        call(
            &server,
            "GET",
            "/steps?step_type=filter",
            Some("k-read"),
            None
        )
        .0,
        200
    );
    // Managing alerts and retention takes the admin key, which may also read and ingest.
    let rule = json!({"name": "failures", "webhook_url": "http://127.0.0.1:9/hook",
                      "condition": {"kind": "run_failed", "pipeline": "p"}});
    assert_eq!(
        call(&server, "POST", "/alerts", Some("k-read"), Some(&rule)).0,
        403
    );
    assert_eq!(
        call(&server, "POST", "/alerts", Some("k-admin"), Some(&rule)).0,
        201
    );
    // Rules hold webhook URLs (often with a token): reading them is admin too.
    assert_eq!(call(&server, "GET", "/alerts", Some("k-read"), None).0, 403);
    assert_eq!(
        call(&server, "GET", "/alerts", Some("k-admin"), None).0,
        200
    );
    // The scope follows the path the router matches: percent-encoding a letter changes nothing.
    assert_eq!(
        call(&server, "GET", "/%61dmin/retention", Some("k-read"), None).0,
        403
    );
    assert_eq!(
        call(&server, "POST", "/%61lerts", Some("k-read"), Some(&rule)).0,
        403
    );
    assert_eq!(
        call(&server, "POST", "/%72uns", Some("k-read"), Some(&run)).0,
        403
    );
    assert_eq!(
        call(&server, "GET", "/%72uns/r1", Some("k-in"), None).0,
        403
    );
    assert_eq!(
        call(&server, "GET", "/admin/retention", Some("k-read"), None).0,
        403
    );
    assert_eq!(
        call(&server, "GET", "/admin/retention", Some("k-admin"), None).0,
        200
    );
    assert_eq!(call(&server, "GET", "/runs", Some("k-admin"), None).0, 200);
    // The SDK sends its key: with the ingest key its run arrives.
    let xray = xray::XRay::builder()
        .endpoint(server.url.clone())
        .api_key("k-in")
        .offline_mode(xray::OfflineMode::Fail)
        .batch_interval(Duration::from_millis(5))
        .client("keyed");
    let guard = xray.run(json!({"q": 1}));
    let id = guard.id().expect("recording").to_string();
    guard.finish().expect("delivered with the key");
    let (status, body, _) = call(&server, "GET", &format!("/runs/{id}"), Some("k-read"), None);
    assert_eq!((status, body["status"].as_str()), (200, Some("completed")));
}

/// A run of `pipeline` with one filter step (5 kept samples) started `minutes_ago`.
fn aged_run(id: &str, pipeline: &str, started: &str) -> Value {
    json!({"run_id": id, "pipeline": pipeline, "started_at": started, "status": "completed",
           "steps": [{"name": "filter", "step_type": "filter", "input_count": 10, "output_count": 5,
                      "rejections": {"too_far": {"count": 5, "samples": (0..5).map(|i| json!({"item_id": format!("{id}-{i}")})).collect::<Vec<_>>()}}}]})
}

/// RFC 3339 for `days` days and `minutes` minutes ago.
fn now_minus(days: i64, minutes: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(days * 24 * 60 + minutes)).to_rfc3339()
}

fn retention_deletes_expired_runs_with_everything_they_own(backend: Backend) {
    let retention: RetentionConfig = toml_retention(
        r#"
        max_age_days = 7
        sweep_interval_secs = 3600
        batch_size = 2
        [[retention.pipelines]]
        pipeline = "recent_only"
        max_runs = 2
        [[retention.pipelines]]
        pipeline = "keep_all"
        "#,
    );
    let api = Api::on(TestServer::start_settings(
        backend,
        Settings {
            retention,
            ..Settings::default()
        },
    ));
    // The server sweeps once as it starts (then hourly): wait for that sweep, over the empty
    // database, so that it cannot take some of the runs below before the sweep asked for.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while api.ok("/admin/retention")["last_sweep"].is_null() {
        assert!(std::time::Instant::now() < deadline, "no start-up sweep");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Default policy (7 days): 5 old runs go, 1 recent stays.
    for i in 0..5 {
        api.save(&aged_run(
            &format!("old-{i}"),
            "search",
            &now_minus(10 + i, 0),
        ));
    }
    api.save(&aged_run("fresh", "search", &now_minus(0, 5)));
    // Own policy (newest 2 runs): 3 of 5 go, whatever their age.
    for i in 0..5 {
        api.save(&aged_run(
            &format!("rec-{i}"),
            "recent_only",
            &now_minus(0, 50 - i),
        ));
    }
    // Own policy without limits: nothing goes, even 30 days old.
    api.save(&aged_run("ancient", "keep_all", &now_minus(30, 0)));

    let (status, report) = api.post("/admin/retention/sweep", &json!(null));
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["runs_deleted"], 8, "{report}");
    assert_eq!(report["steps_deleted"], 8);
    assert_eq!(report["samples_deleted"], 40);
    assert_eq!(
        report["by_pipeline"],
        json!({"search": 5, "recent_only": 3})
    );
    let mut left: Vec<String> = api.ok("/runs?limit=100")["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["run_id"].as_str().expect("id").to_string())
        .collect();
    left.sort();
    assert_eq!(left, ["ancient", "fresh", "rec-3", "rec-4"]);
    // Everything a deleted run owned is gone: its steps, counts and samples.
    assert_eq!(api.get("/runs/old-0").0, 404);
    assert_eq!(
        api.ok("/items/old-0-1")["events"].as_array().map(Vec::len),
        Some(0)
    );
    let steps = api.ok("/steps?step_type=filter&limit=100")["steps"]
        .as_array()
        .map(Vec::len);
    assert_eq!(steps, Some(4));
    assert_eq!(
        api.ok("/runs/rec-4")["steps"][0]["rejections"]["too_far"]["count"],
        5
    );
    // A second sweep finds nothing; the status shows the policies and the last sweep.
    let (_, again) = api.post("/admin/retention/sweep", &json!(null));
    assert_eq!(again["runs_deleted"], 0);
    let status = api.ok("/admin/retention");
    assert_eq!(status["default"]["max_age_days"], 7);
    assert_eq!(status["pipelines"][0]["pipeline"], "recent_only");
    assert_eq!(status["pipelines"][0]["max_runs"], 2);
    assert_eq!(status["batch_size"], 2);
    assert_eq!(status["last_sweep"]["runs_deleted"], 0);
}

fn toml_retention(text: &str) -> RetentionConfig {
    // Through the real config-file parser, as an operator would write it.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("xray.toml");
    let body = format!("[retention]\n{}", text.trim_start());
    std::fs::write(&path, body).expect("write config");
    xray_server::settings::FileConfig::load(&path)
        .expect("valid config")
        .retention
}
