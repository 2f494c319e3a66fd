//! Alerts, on both backends: rules notify webhooks once per window with retries, a firing left
//! half-delivered by a dead server is delivered by the next, and rules taken out of the config
//! file are removed at start.

use super::support::*;
use super::{call, now_minus};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use xray_server::Settings;

crate::on_both_backends!(
    alerts_notify_webhooks_once_per_window_with_retries,
    a_firing_left_mid_delivery_by_a_dead_server_is_delivered_by_the_next,
    rules_taken_out_of_the_config_file_are_removed_at_start,
);

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
