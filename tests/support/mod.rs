//! Shared by the end-to-end tests: a JSON client for a throwaway server, and seed-shaped runs.

#![allow(dead_code)]

pub mod schemathesis;
pub mod stats_check;
pub mod venv;

use serde_json::{json, Value};
#[allow(unused_imports)]
pub use xray_server::testing::{Backend, TestDb, TestServer};

/// Runs each named test (a `fn(Backend)`) against both backends, each with its own fresh
/// database: `on_both_backends!(a_test, another_test);` makes `sqlite::a_test` and
/// `postgres::a_test`.
#[macro_export]
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

/// A server plus a client that never treats an HTTP status as a transport error.
pub struct Api {
    /// The server (stopped and its database removed on drop).
    pub server: TestServer,
    agent: ureq::Agent,
}

/// Points this test process's default X-Ray client (the one the attributes use) at `server`:
/// `fail` mode, so a delivery problem fails the test, and a short batch interval. Once per
/// process.
pub fn use_default_client(server: &str) {
    let spool = std::env::temp_dir().join(format!("xray-test-spool-{}", std::process::id()));
    let config = xray::Config::builder()
        .endpoint(server)
        .offline_mode(xray::OfflineMode::Fail)
        .spool_dir(spool)
        .batch_interval(std::time::Duration::from_millis(5))
        .build();
    std::mem::forget(xray::init(config).expect("one init per test process"));
}

/// A client for a server.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

impl Api {
    /// A fresh server over a fresh database.
    pub fn start(backend: Backend) -> Api {
        Api::on(TestServer::start(backend))
    }

    /// A client for an already started server.
    pub fn on(server: TestServer) -> Api {
        Api {
            server,
            agent: agent(),
        }
    }

    fn read(mut res: ureq::http::Response<ureq::Body>) -> (u16, Value) {
        let status = res.status().as_u16();
        let text = res.body_mut().read_to_string().expect("read body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text}"));
        (status, body)
    }

    /// GET, returning status and JSON body.
    pub fn get(&self, path: &str) -> (u16, Value) {
        Self::read(self.agent.get(self.server.at(path)).call().expect("GET"))
    }

    /// GET that must answer 200.
    pub fn ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// POST a JSON value.
    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        Self::read(
            self.agent
                .post(self.server.at(path))
                .send_json(body)
                .expect("POST"),
        )
    }

    /// POST raw bytes as JSON.
    pub fn post_raw(&self, path: &str, body: &[u8]) -> (u16, Value) {
        Self::read(
            self.agent
                .post(self.server.at(path))
                .header("content-type", "application/json")
                .send(body)
                .expect("POST"),
        )
    }

    /// POST /ingest that must succeed.
    pub fn ingest(&self, events: Vec<Value>) -> Value {
        let (status, body) = self.post("/ingest", &json!({ "events": events }));
        assert_eq!(status, 200, "ingest: {body}");
        body
    }

    /// POST /runs that must succeed.
    pub fn save(&self, run: &Value) -> Value {
        let (status, body) = self.post("/runs", run);
        assert_eq!(status, 201, "save run: {body}");
        body
    }
}

/// An item's events as `(field, outcome)` pairs, `field` being `step_name` or `run_id`: the
/// trail an item-fate or item-history answer describes.
pub fn trail<'a>(answer: &'a Value, field: &str) -> Vec<(&'a str, &'a str)> {
    answer["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e[field].as_str().expect("text field"),
                e["outcome"].as_str().expect("outcome"),
            )
        })
        .collect()
}

/// `2026-11-20T10:MM:SS.000Z`, `minute` minutes and `second` seconds past 10:00.
pub fn at(minute: u32, second: u32) -> String {
    format!(
        "2026-11-20T{:02}:{:02}:{:02}.000Z",
        10 + minute / 60,
        minute % 60,
        second
    )
}

/// The seed's competitor-selection run, in the nested `POST /runs` shape: keywords include the
/// buggy "stand", the filter lets `laptop_stand_42` through, and the select step picks it.
pub fn seed_run(run_id: &str, minute: u32) -> Value {
    let price_samples: Vec<Value> = (0..32)
        .map(|i| json!({"item_id": format!("case_{i}"), "details": {"price": 150 + i, "threshold": 100}}))
        .collect();
    json!({
        "run_id": run_id,
        "pipeline": "competitor_selection",
        "status": "completed",
        "input": {"product_title": "iPhone 15 Case"},
        "output": {"selected": "laptop_stand_42"},
        "started_at": at(minute, 0),
        "ended_at": at(minute, 9),
        "metadata": {"env": "test"},
        "steps": [
            {"name": "generate_keywords", "step_type": "generate", "started_at": at(minute, 0),
             "duration_ms": 6200.0, "input": {"title": "iPhone 15 Case"},
             "output": {"keywords": ["case", "stand", "holder", "cover"]}},
            {"name": "search_products", "step_type": "retrieve", "started_at": at(minute, 6),
             "duration_ms": 300.0, "output_count": 127},
            {"name": "filter_candidates", "step_type": "filter", "started_at": at(minute, 7),
             "duration_ms": 250.0, "input_count": 127, "output_count": 23,
             "rejections": {
                 "category_mismatch": {"count": 45, "samples": [
                     {"item_id": "charger_7", "details": {"category": "chargers"}}]},
                 "price_too_high": {"count": 59, "samples": price_samples}
             },
             "acceptances": {"count": 23, "samples": [
                 {"item_id": "laptop_stand_42", "details": {"category": "stands", "price": 39}},
                 {"item_id": "case_100"}]}},
            {"name": "rank_by_relevance", "step_type": "rank", "started_at": at(minute, 8),
             "duration_ms": 40.0, "input_count": 23, "output_count": 23},
            {"name": "select_best", "step_type": "select", "started_at": at(minute, 8),
             "duration_ms": 5.0, "input_count": 23, "output_count": 1,
             "decision": {"selected": "laptop_stand_42", "score": 0.87,
                          "details": {"why": "highest relevance"}}}
        ]
    })
}

/// A small run of `pipeline` with one filter step of the given rejection rate (of 100 items),
/// one select step with `score`, and a generate step taking `gen_ms`.
pub fn small_run(
    run_id: &str,
    pipeline: &str,
    minute: u32,
    status: &str,
    rejected: u64,
    score: f64,
    gen_ms: f64,
) -> Value {
    json!({
        "run_id": run_id,
        "pipeline": pipeline,
        "status": status,
        "error": if status == "failed" { json!("boom") } else { Value::Null },
        "started_at": at(minute, 0),
        "steps": [
            {"name": "draft", "step_type": "generate", "started_at": at(minute, 0), "duration_ms": gen_ms},
            {"name": "validate", "step_type": "filter", "started_at": at(minute, 1), "duration_ms": 10.0,
             "input_count": 100, "output_count": 100 - rejected,
             "rejections": if rejected == 0 { json!({}) } else {
                 json!({"too_long": {"count": rejected, "samples": [{"item_id": format!("{run_id}_x")}]}})
             }},
            {"name": "pick", "step_type": "select", "started_at": at(minute, 2), "duration_ms": 1.0,
             "decision": {"selected": format!("{run_id}_best"), "score": score}}
        ]
    })
}

/// SDK events for one run, one step each of `steps`, as the runtime sends them.
pub fn run_events(run_id: &str, pipeline: &str, minute: u32, steps: usize) -> Vec<Value> {
    let mut events = vec![
        json!({"run_started": {"run_id": run_id, "pipeline": pipeline,
               "started_at": at(minute, 0), "input": {"q": run_id}}}),
    ];
    for i in 0..steps {
        events.push(json!({"step_finished": {"run_id": run_id, "pipeline": pipeline, "step": {
            "step_id": format!("{run_id}-s{i}"), "position": i, "name": format!("step_{i}"),
            "step_type": "filter", "started_at": at(minute, i as u32 + 1), "duration_ms": 2.5,
            "input_count": 10, "output_count": 4,
            "rejections": {"too_small": {"count": 6, "samples": [{"item_id": format!("{run_id}-i{i}")}]}}
        }}}));
    }
    events.push(
        json!({"run_finished": {"run_id": run_id, "pipeline": pipeline,
               "started_at": at(minute, 0), "ended_at": at(minute, 30),
               "status": "completed", "output": {"done": true}}}),
    );
    events
}
