//! Running it in production: correlation ids and trace ids, API keys, retention and alerts —
//! each on SQLite and on PostgreSQL.

mod support;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;
use xray_server::http::auth::ApiKeys;
use xray_server::retention::RetentionConfig;
use xray_server::Settings;

on_both_backends!(
    runs_are_found_by_correlation_and_trace_id,
    bad_links_are_400_with_the_field_named,
    the_sdk_sends_links_given_in_scope_or_by_hand,
    api_keys_open_each_route_to_its_scope_only,
    retention_deletes_expired_runs_with_everything_they_own,
    alerts_notify_webhooks_once_per_window_with_retries,
    a_firing_left_mid_delivery_by_a_dead_server_is_delivered_by_the_next,
    rules_taken_out_of_the_config_file_are_removed_at_start,
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

/// A webhook receiver: records each JSON body; answers 500 to the first `fail_first` requests.
struct Webhook {
    url: String,
    received: Arc<Mutex<Vec<Value>>>,
}

impl Webhook {
    fn start(fail_first: usize) -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let got = received.clone();
        std::thread::spawn(move || {
            let mut seen = 0;
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                seen += 1;
                let status = if seen <= fail_first {
                    "500 Internal Server Error"
                } else {
                    got.lock()
                        .expect("lock")
                        .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                    "200 OK"
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        Webhook { url, received }
    }

    /// Waits until `n` notifications arrived (or 15 s passed) and returns them.
    fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let got = self.received.lock().expect("lock").clone();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn alerts_notify_webhooks_once_per_window_with_retries(backend: Backend) {
    let hook = Webhook::start(1);
    let config_rule: xray_wire::AlertRuleSpec = serde_json::from_value(json!({
        "name": "any failure", "webhook_url": hook.url,
        "condition": {"kind": "run_failed", "pipeline": "p"}}))
    .expect("rule");
    let api = Api::on(TestServer::start_settings(
        backend,
        Settings {
            alerts: vec![config_rule],
            alert_interval: Duration::from_millis(100),
            ..Settings::default()
        },
    ));
    // A rule with a mistake is refused with the field named.
    let (status, body) = api.post(
        "/alerts",
        &json!({"name": "x", "webhook_url": "ftp://nope",
        "condition": {"kind": "run_failed", "pipeline": "p"}}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("webhook_url"),
        "{body}"
    );
    let (status, body) = api.post("/alerts", &json!({"name": "x", "webhook_url": hook.url,
        "condition": {"kind": "rejection_rate", "pipeline": "p", "above": 0.9, "more_than": 3, "last_runs": 3}}));
    assert_eq!(status, 400, "{body}");
    let (status, window_rule) = api.post("/alerts", &json!({"name": "filter rejects all",
        "webhook_url": hook.url,
        "condition": {"kind": "rejection_rate", "pipeline": "p", "above": 0.9, "more_than": 1, "last_runs": 4}}));
    assert_eq!(status, 201, "{window_rule}");

    // Two failed runs, then three runs whose filter rejects 95%: the window rule fires once.
    let run = |id: &str, minutes_ago: i64, status: &str, rejected: u64| {
        let mut r = small_run(id, "p", 0, status, rejected, 0.9, 10.0);
        r["started_at"] = json!(now_minus(0, minutes_ago));
        for s in r["steps"].as_array_mut().expect("steps") {
            s["started_at"] = json!(now_minus(0, minutes_ago));
        }
        r
    };
    api.save(&run("f1", 20, "failed", 0));
    api.save(&run("f2", 19, "failed", 0));
    for (i, id) in ["bad1", "bad2", "bad3"].iter().enumerate() {
        api.save(&run(id, 10 - i as i64, "completed", 95));
    }
    let got = hook.wait_for(3);
    std::thread::sleep(Duration::from_millis(500)); // later evaluations must not repeat them
    let got_after = hook.received.lock().expect("lock").clone();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(
        got_after.len(),
        3,
        "no duplicate notifications: {got_after:?}"
    );
    let mut keys: Vec<&str> = got
        .iter()
        .map(|n| n["window_key"].as_str().expect("key"))
        .collect();
    keys.sort();
    assert_eq!(keys, ["run:f1", "run:f2", "window:bad3"]);
    let window = got
        .iter()
        .find(|n| n["window_key"] == "window:bad3")
        .expect("window firing");
    assert_eq!(window["name"], "filter rejects all");
    let mut offending: Vec<&str> = window["run_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_str().expect("id"))
        .collect();
    offending.sort();
    assert_eq!(offending, ["bad1", "bad2", "bad3"]);

    // Firings are listed with their delivery: the first webhook call failed and was retried.
    let rules = api.ok("/alerts");
    let config_id = rules["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .find(|a| a["source"] == "config")
        .expect("config rule")["alert_id"]
        .as_str()
        .expect("id")
        .to_string();
    let events = api.ok(&format!("/alerts/{config_id}/events"))["events"].clone();
    let events = events.as_array().expect("events");
    assert_eq!(events.len(), 2);
    assert!(
        events.iter().all(|e| e["status"] == "delivered"),
        "{events:?}"
    );
    let attempts: u64 = events
        .iter()
        .map(|e| e["attempts"].as_u64().expect("n"))
        .sum();
    assert_eq!(attempts, 3, "one retry after the 500: {events:?}");

    // The window re-arms once the condition is false (good runs push the bad ones out) and
    // fires again when it is true again.
    for (i, id) in ["ok1", "ok2", "ok3", "ok4"].iter().enumerate() {
        api.save(&run(id, 5 - i as i64, "completed", 0));
    }
    std::thread::sleep(Duration::from_millis(400));
    for (i, id) in ["bad4", "bad5"].iter().enumerate() {
        api.save(&run(id, 1 - i as i64, "completed", 99));
    }
    let got = hook.wait_for(4);
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[3]["window_key"], "window:bad5");

    // Rules from the config file stay; rules made over the API can be deleted.
    let window_id = window_rule["alert_id"].as_str().expect("id");
    assert_eq!(
        call(
            &api.server,
            "DELETE",
            &format!("/alerts/{window_id}"),
            None,
            None
        )
        .0,
        204
    );
    assert_eq!(api.get(&format!("/alerts/{window_id}")).0, 404);
    assert_eq!(
        call(
            &api.server,
            "DELETE",
            &format!("/alerts/{config_id}"),
            None,
            None
        )
        .0,
        400
    );
}

fn a_firing_left_mid_delivery_by_a_dead_server_is_delivered_by_the_next(backend: Backend) {
    use xray_server::store::alerts::AlertEventRow;
    let hook = Webhook::start(0);
    let db = TestDb::create(backend);
    // What a server that died mid-delivery leaves: a rule, and a firing claimed until a moment ago.
    let store = xray_server::store::Store::open(db.url(), 1).expect("open");
    let spec: xray_wire::AlertRuleSpec = serde_json::from_value(json!({
        "name": "failures", "webhook_url": hook.url,
        "condition": {"kind": "run_failed", "pipeline": "p"}}))
    .expect("rule");
    store
        .put_alert(&xray_server::alerts::new_rule_row(
            "r1".into(),
            &spec,
            "api",
        ))
        .expect("rule stored");
    let now = chrono::Utc::now().timestamp_micros();
    let payload = json!({"alert_id": "r1", "name": "failures", "window_key": "run:x",
        "fired_at": chrono::Utc::now().to_rfc3339(), "summary": "run x of `p` failed",
        "run_ids": ["x"]});
    store
        .record_firing(&AlertEventRow {
            alert_id: "r1".into(),
            window_key: "run:x".into(),
            fired_at: now,
            payload: payload.to_string(),
            status: "sending".into(),
            attempts: 1,
            last_error: Some("webhook unreachable".into()),
            delivered_at: None,
            next_attempt_at: now - 2_000_000,
            claimed_until: Some(now - 1_000_000),
        })
        .expect("firing stored");
    drop(store);
    // The next server finds it and delivers it, once.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let api = Api::on(TestServer::start_listener_with(
        db.url(),
        listener,
        Settings::default(),
    ));
    let got = hook.wait_for(1);
    assert_eq!(got, vec![payload]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let event = loop {
        let events = api.ok("/alerts/r1/events");
        let e = events["events"][0].clone();
        if e["status"] == "delivered" || Instant::now() > deadline {
            break e;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(event["status"], "delivered", "{event}");
    assert_eq!(event["attempts"], 2);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        hook.received.lock().expect("lock").len(),
        1,
        "delivered once"
    );
    drop(api);
    drop(db);
}

fn rules_taken_out_of_the_config_file_are_removed_at_start(backend: Backend) {
    let rule = |name: &str| -> xray_wire::AlertRuleSpec {
        serde_json::from_value(
            json!({"name": name, "webhook_url": "http://127.0.0.1:9/hook",
            "condition": {"kind": "run_failed", "pipeline": "p"}}),
        )
        .expect("rule")
    };
    let db = TestDb::create(backend);
    let start = |rules: Vec<xray_wire::AlertRuleSpec>| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        Api::on(TestServer::start_listener_with(
            db.url(),
            listener,
            Settings {
                alerts: rules,
                ..Settings::default()
            },
        ))
    };
    let names = |api: &Api| -> Vec<String> {
        let mut n: Vec<String> = api.ok("/alerts")["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .map(|a| a["name"].as_str().expect("name").to_string())
            .collect();
        n.sort();
        n
    };
    let first = start(vec![rule("old"), rule("kept")]);
    let (status, _) = first.post("/alerts", &json!({"name": "from the api",
        "webhook_url": "http://127.0.0.1:9/hook", "condition": {"kind": "run_failed", "pipeline": "p"}}));
    assert_eq!(status, 201);
    assert_eq!(names(&first), ["from the api", "kept", "old"]);
    drop(first);
    // The file now has `kept` and `new`: `old` goes, the API's rule stays.
    let second = start(vec![rule("kept"), rule("new")]);
    assert_eq!(names(&second), ["from the api", "kept", "new"]);
    drop(second);
    drop(db);
}
