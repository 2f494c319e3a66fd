//! The HTTP API suite, run in full against SQLite and against PostgreSQL: every endpoint, every
//! filter, bad input, idempotent re-sends, concurrent writers and several servers on one database.

mod support;

use serde_json::{json, Value};
use std::collections::HashSet;
use support::*;

/// Items: one item's fate in a run, and its history across runs and pipelines.
#[path = "http_api/items.rs"]
mod items;

/// Bad input: every malformed request is a 4xx naming what is wrong, and changes nothing.
#[path = "http_api/bad_input.rs"]
mod bad_input;
use bad_input::bad;

on_both_backends!(
    health_names_the_backend,
    a_saved_run_reads_back_in_the_seed_shape,
    saving_a_run_twice_stores_it_once,
    ingest_accepts_events_in_any_order,
    ingest_resends_are_stored_once,
    ingest_stores_the_valid_events_and_names_the_refused,
    runs_filter_by_pipeline_status_and_time_newest_first,
    runs_page_with_a_cursor_without_gaps_or_repeats,
    the_seed_step_queries_work_verbatim,
    steps_filter_by_every_parameter,
    steps_page_with_a_cursor,
    concurrent_writers_lose_nothing,
    several_servers_share_one_database,
);

fn health_names_the_backend(backend: Backend) {
    let api = Api::start(backend);
    let health = api.ok("/health");
    assert_eq!(health["status"], "ok");
    let expected = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(health["backend"], expected);
}

fn a_saved_run_reads_back_in_the_seed_shape(backend: Backend) {
    let api = Api::start(backend);
    let saved = api.save(&seed_run("run_abc123", 0));
    assert_eq!(saved["run_ids"], json!(["run_abc123"]));

    let run = api.ok("/runs/run_abc123");
    assert_eq!(run["run_id"], "run_abc123");
    assert_eq!(run["pipeline"], "competitor_selection");
    assert_eq!(run["status"], "completed");
    assert_eq!(run["input"], json!({"product_title": "iPhone 15 Case"}));
    assert_eq!(run["output"], json!({"selected": "laptop_stand_42"}));
    assert_eq!(run["metadata"], json!({"env": "test"}));
    assert_eq!(run["started_at"], "2026-11-20T10:00:00Z");
    assert_eq!(run["duration_ms"], 9000.0, "derived from start and end");

    let steps = run["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "generate_keywords",
            "search_products",
            "filter_candidates",
            "rank_by_relevance",
            "select_best"
        ]
    );
    let types: Vec<&str> = steps
        .iter()
        .map(|s| s["step_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["generate", "retrieve", "filter", "rank", "select"]);
    assert_eq!(steps[0]["output"]["keywords"][1], "stand");
    assert_eq!(steps[0]["duration_ms"], 6200.0);

    let filter = &steps[2];
    assert_eq!(filter["input_count"], 127);
    assert_eq!(filter["output_count"], 23);
    assert_eq!(filter["capture"], "sample");
    assert_eq!(filter["rejected_count"], 104);
    let rate = filter["rejection_rate"].as_f64().unwrap();
    assert!((rate - 104.0 / 127.0).abs() < 1e-9, "{rate}");
    assert_eq!(filter["rejections"]["category_mismatch"]["count"], 45);
    assert_eq!(filter["rejections"]["price_too_high"]["count"], 59);
    let price = filter["rejections"]["price_too_high"]["samples"]
        .as_array()
        .unwrap();
    assert_eq!(price.len(), 32);
    assert_eq!(
        price[0],
        json!({"item_id": "case_0", "details": {"price": 150, "threshold": 100}})
    );
    assert_eq!(price[31]["item_id"], "case_31", "samples keep their order");
    assert_eq!(filter["acceptances"]["count"], 23);
    assert_eq!(
        filter["acceptances"]["samples"][0]["item_id"],
        "laptop_stand_42"
    );

    let select = &steps[4];
    assert_eq!(select["decision"]["selected"], "laptop_stand_42");
    assert_eq!(select["decision"]["score"], 0.87);
    assert_eq!(select["decision"]["details"]["why"], "highest relevance");
    assert_eq!(steps[1]["decision"], Value::Null);
}

fn saving_a_run_twice_stores_it_once(backend: Backend) {
    let api = Api::start(backend);
    let run = seed_run("run_twice", 0);
    api.save(&run);
    let first = api.ok("/runs/run_twice");
    api.save(&run);
    assert_eq!(api.ok("/runs/run_twice"), first);
    assert_eq!(api.ok("/runs")["runs"].as_array().unwrap().len(), 1);
    let hits = api.ok("/steps?step_type=filter");
    assert_eq!(hits["steps"].as_array().unwrap().len(), 1);
    assert_eq!(hits["steps"][0]["rejections"]["price_too_high"], 59);

    // A run saved without an id gets one of its own, every time.
    let mut anonymous = small_run("x", "p", 1, "completed", 1, 0.5, 1.0);
    anonymous.as_object_mut().unwrap().remove("run_id");
    let a = api.save(&anonymous)["run_ids"][0]
        .as_str()
        .unwrap()
        .to_string();
    let b = api.save(&anonymous)["run_ids"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(a, b);
    assert_eq!(
        api.ok(&format!("/runs/{a}"))["steps"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

fn ingest_accepts_events_in_any_order(backend: Backend) {
    let api = Api::start(backend);
    let mut events = run_events("r1", "events", 0, 3);
    // Worst order: the end first, then steps backwards, the start last.
    events.reverse();
    // One at a time, so each arrives in its own request.
    let (started, rest) = events.split_last().unwrap();
    for e in rest {
        api.ingest(vec![e.clone()]);
        let partial = api.ok("/runs/r1");
        assert_eq!(partial["pipeline"], "events");
    }
    // Before its start arrives, the run is known from its end.
    assert_eq!(api.ok("/runs/r1")["status"], "completed");
    api.ingest(vec![started.clone()]);

    let run = api.ok("/runs/r1");
    assert_eq!(
        run["status"], "completed",
        "a late run_started does not reopen the run"
    );
    assert_eq!(run["input"], json!({"q": "r1"}));
    assert_eq!(run["output"], json!({"done": true}));
    assert_eq!(run["started_at"], "2026-11-20T10:00:00Z");
    assert_eq!(run["duration_ms"], 30000.0);
    let steps = run["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["step_0", "step_1", "step_2"],
        "steps in position order"
    );
    assert_eq!(steps[1]["rejections"]["too_small"]["count"], 6);
    assert_eq!(steps[1]["rejection_rate"], 0.6);

    // A step whose run never started still shows up, under a running placeholder.
    api.ingest(run_events("orphan", "events", 5, 1)[1..2].to_vec());
    let orphan = api.ok("/runs/orphan");
    assert_eq!(orphan["status"], "running");
    assert_eq!(orphan["steps"].as_array().unwrap().len(), 1);
}

fn ingest_resends_are_stored_once(backend: Backend) {
    let api = Api::start(backend);
    let events = run_events("again", "p", 0, 4);
    let body = api.ingest(events[..3].to_vec());
    assert_eq!(body["accepted"], 3);
    assert_eq!(body["run_ids"], json!(["again"]));
    // A retry of the whole batch after a timeout, then the same batch twice in one request.
    api.ingest(events.clone());
    let once = api.ok("/runs/again");
    let mut doubled = events.clone();
    doubled.extend(events.clone());
    api.ingest(doubled);
    assert_eq!(api.ok("/runs/again"), once);
    assert_eq!(once["steps"].as_array().unwrap().len(), 4);
    for step in once["steps"].as_array().unwrap() {
        assert_eq!(step["rejections"]["too_small"]["count"], 6);
        assert_eq!(
            step["rejections"]["too_small"]["samples"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
    assert_eq!(
        api.ok("/steps?pipeline=p")["steps"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(api.ok("/runs")["runs"].as_array().unwrap().len(), 1);
}

fn load_small_runs(api: &Api) {
    // minute, pipeline, status, rejected of 100, select score, generate ms
    let runs = [
        ("a1", "alpha", 1, "completed", 95, 0.9, 100.0),
        ("a2", "alpha", 2, "failed", 50, 0.3, 7000.0),
        ("a3", "alpha", 3, "completed", 99, 0.45, 200.0),
        ("b1", "beta", 4, "completed", 10, 0.8, 9000.0),
        ("b2", "beta", 5, "failed", 91, 0.2, 300.0),
        ("b3", "beta", 6, "running", 0, 0.99, 5000.0),
    ];
    for (id, pipeline, minute, status, rejected, score, gen_ms) in runs {
        api.save(&small_run(
            id, pipeline, minute, status, rejected, score, gen_ms,
        ));
    }
}

fn ids(list: &Value, key: &str, field: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[field].as_str().unwrap().to_string())
        .collect()
}

fn ingest_stores_the_valid_events_and_names_the_refused(backend: Backend) {
    let api = Api::start(backend);
    api.save(&seed_run("owner", 0));
    let owned = api.ok("/runs/owner")["steps"][0]["step_id"].clone();
    let mut events = run_events("good", "p", 0, 3);
    // A step without its id, an unknown event, and a step whose id is a step of another run, among
    // the good run's five events.
    let mut bad_count = run_events("bad", "p", 0, 1)[1].clone();
    let step = bad_count["step_finished"]["step"].as_object_mut().unwrap();
    step.remove("step_id");
    events.insert(1, bad_count);
    events.insert(3, json!({"run_paused": {"run_id": "good"}}));
    let mut stolen = run_events("thief", "p", 0, 1)[1].clone();
    stolen["step_finished"]["step"]["step_id"] = owned.clone();
    events.push(stolen);
    let body = api.ingest(events);
    assert_eq!(body["accepted"], 5, "{body}");
    assert_eq!(body["run_ids"], json!(["good"]), "{body}");
    let refused = body["refused"].as_array().unwrap();
    let at: Vec<u64> = refused
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(at, [1, 3, 7], "{body}");
    let codes: Vec<&str> = refused
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["bad_request", "bad_request", "conflict"]);
    let error = |i: usize| refused[i]["error"].as_str().unwrap();
    assert!(
        error(0).contains("events[1].step_finished.step.step_id"),
        "{}",
        error(0)
    );
    assert!(
        error(1).contains("events[3]") && error(1).contains("run_paused"),
        "{}",
        error(1)
    );
    assert!(
        error(2).contains("thief") && error(2).contains("owner"),
        "{}",
        error(2)
    );
    // The good run arrived whole; nothing of the refused events did.
    let good = api.ok("/runs/good");
    assert_eq!(good["status"], "completed");
    assert_eq!(good["steps"].as_array().unwrap().len(), 3);
    for run in ["bad", "thief"] {
        bad(api.get(&format!("/runs/{run}")), 404, &[run]);
    }
    assert_eq!(api.ok("/runs/owner")["steps"][0]["step_id"], owned);

    // A batch with nothing valid in it is refused whole, naming the first bad event.
    bad(
        api.post(
            "/ingest",
            &json!({"events": [{"run_paused": {}}, {"run_resumed": {}}]}),
        ),
        400,
        &["events[0]", "run_paused"],
    );
    // An answer without refusals has no `refused` (as from a server before it existed).
    let clean = api.ingest(run_events("clean", "p", 0, 1));
    assert!(clean.get("refused").is_none(), "{clean}");
}

fn runs_filter_by_pipeline_status_and_time_newest_first(backend: Backend) {
    let api = Api::start(backend);
    load_small_runs(&api);
    let all = api.ok("/runs");
    assert_eq!(
        ids(&all, "runs", "run_id"),
        ["b3", "b2", "b1", "a3", "a2", "a1"]
    );
    assert_eq!(all["next_cursor"], Value::Null);
    let first = &all["runs"][5];
    for field in [
        "run_id",
        "pipeline",
        "status",
        "output",
        "duration_ms",
        "started_at",
        "ended_at",
    ] {
        assert!(
            first.get(field).is_some(),
            "run summary has {field}: {first}"
        );
    }

    let q = |query: &str| ids(&api.ok(&format!("/runs?{query}")), "runs", "run_id");
    assert_eq!(q("pipeline=alpha"), ["a3", "a2", "a1"]);
    assert_eq!(q("status=failed"), ["b2", "a2"]);
    assert_eq!(q("pipeline=beta&status=failed"), ["b2"]);
    assert_eq!(q("pipeline=beta&status=running"), ["b3"]);
    assert_eq!(q("since=2026-11-20T10:03:00Z"), ["b3", "b2", "b1", "a3"]);
    assert_eq!(q("until=2026-11-20T10:03:00Z"), ["a2", "a1"]);
    assert_eq!(
        q("since=2026-11-20T10:02:00Z&until=2026-11-20T10:05:00%2B00:00"),
        ["b1", "a3", "a2"]
    );
    assert_eq!(q("pipeline=gamma"), Vec::<String>::new());
    assert_eq!(q("pipeline=&status="), q(""), "empty values are ignored");
    assert_eq!(api.ok("/runs?status=failed")["runs"][0]["error"], "boom");
}

fn runs_page_with_a_cursor_without_gaps_or_repeats(backend: Backend) {
    let api = Api::start(backend);
    // Several runs share a start time: the cursor must still split them exactly.
    for i in 0..7u32 {
        let mut run = small_run(&format!("r{i}"), "p", i / 3, "completed", 1, 0.5, 1.0);
        run["started_at"] = json!(at(i / 3, 0));
        api.save(&run);
    }
    let mut seen = Vec::new();
    let mut path = "/runs?limit=3".to_string();
    let mut pages = 0;
    loop {
        let page = api.ok(&path);
        pages += 1;
        let got = ids(&page, "runs", "run_id");
        assert!(got.len() <= 3);
        seen.extend(got);
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/runs?limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["r6", "r5", "r4", "r3", "r2", "r1", "r0"]);
    // Filters hold across pages.
    let page = api.ok("/runs?pipeline=p&limit=7");
    assert_eq!(
        page["next_cursor"],
        Value::Null,
        "an exactly full last page has no next"
    );
}

fn the_seed_step_queries_work_verbatim(backend: Backend) {
    let api = Api::start(backend);
    load_small_runs(&api);
    api.save(&seed_run("seed", 10));

    let high = api.ok("/steps?step_type=filter&rejection_rate_gt=0.9");
    assert_eq!(ids(&high, "steps", "run_id"), ["b2", "a3", "a1"]);
    for hit in high["steps"].as_array().unwrap() {
        assert_eq!(hit["step_type"], "filter");
        assert!(hit["rejection_rate"].as_f64().unwrap() > 0.9);
        assert!(hit["pipeline"].is_string() && hit["step_id"].is_string());
        assert!(hit["rejections"]["too_long"].as_u64().unwrap() > 90);
    }

    let slow = api.ok("/steps?step_type=generate&duration_gt=5000");
    assert_eq!(ids(&slow, "steps", "run_id"), ["seed", "b1", "a2"]);
    assert_eq!(slow["steps"][0]["name"], "generate_keywords");

    let low = api.ok("/steps?step_type=select&score_lt=0.5");
    assert_eq!(ids(&low, "steps", "run_id"), ["b2", "a3", "a2"]);
    assert_eq!(low["steps"][0]["decision"]["score"], 0.2);
    assert_eq!(low["steps"][0]["decision"]["selected"], "b2_best");
}

fn steps_filter_by_every_parameter(backend: Backend) {
    let api = Api::start(backend);
    load_small_runs(&api);
    let q = |query: &str| ids(&api.ok(&format!("/steps?{query}")), "steps", "run_id");
    assert_eq!(q("name=validate&rejection_rate_lt=0.5"), ["b3", "b1"]);
    assert_eq!(q("pipeline=alpha&step_type=filter"), ["a3", "a2", "a1"]);
    assert_eq!(
        q("step_type=filter&rejection_rate_gt=0.5&rejection_rate_lt=0.96"),
        ["b2", "a1"]
    );
    assert_eq!(q("step_type=generate&duration_lt=250"), ["a3", "a1"]);
    assert_eq!(
        q("step_type=generate&duration_gt=300&duration_lt=8000"),
        ["b3", "a2"]
    );
    assert_eq!(q("score_gt=0.85"), ["b3", "a1"]);
    assert_eq!(q("score_gt=0.25&score_lt=0.85"), ["b1", "a3", "a2"]);
    assert_eq!(
        q("step_type=select&since=2026-11-20T10:05:00Z"),
        ["b3", "b2"]
    );
    assert_eq!(q("step_type=select&until=2026-11-20T10:02:00Z"), ["a1"]);
    assert_eq!(q("name=pick&pipeline=beta&score_lt=0.9"), ["b2", "b1"]);
    assert_eq!(q("name=nothing"), Vec::<String>::new());
    // Unfiltered: every step, newest first.
    assert_eq!(q("limit=1000").len(), 18);
    let all = api.ok("/steps?pipeline=alpha&limit=1000");
    let positions: Vec<(String, u64)> = all["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["run_id"].as_str().unwrap().into(),
                s["position"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(positions[0], ("a3".into(), 2));
    assert_eq!(positions[8], ("a1".into(), 0));
}

fn steps_page_with_a_cursor(backend: Backend) {
    let api = Api::start(backend);
    load_small_runs(&api);
    let mut seen = Vec::new();
    let mut path = "/steps?step_type=filter&limit=4".to_string();
    loop {
        let page = api.ok(&path);
        seen.extend(ids(&page, "steps", "step_id"));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/steps?step_type=filter&limit=4&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 6);
    assert_eq!(seen[0], "b3:1");
}

fn concurrent_writers_lose_nothing(backend: Backend) {
    let api = Api::start(backend);
    let url = api.server.url.clone();
    std::thread::scope(|scope| {
        for t in 0..8 {
            let url = url.clone();
            scope.spawn(move || {
                let agent = agent();
                for i in 0..15 {
                    let run_id = format!("t{t}-r{i}");
                    let body = json!({ "events": run_events(&run_id, "load", i, 3) });
                    let mut res = agent
                        .post(format!("{url}/ingest"))
                        .send_json(&body)
                        .expect("POST");
                    let text = res.body_mut().read_to_string().unwrap();
                    assert_eq!(res.status().as_u16(), 200, "{text}");
                }
            });
        }
    });
    let mut runs = HashSet::new();
    let mut path = "/runs?pipeline=load&status=completed&limit=1000".to_string();
    loop {
        let page = api.ok(&path);
        runs.extend(ids(&page, "runs", "run_id"));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/runs?pipeline=load&status=completed&limit=1000&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(runs.len(), 120);
    let steps = api.ok("/steps?pipeline=load&limit=1000");
    assert_eq!(steps["steps"].as_array().unwrap().len(), 360);
}

fn several_servers_share_one_database(backend: Backend) {
    let db = TestDb::create(backend);
    let one = Api::on(TestServer::start_url(db.url(), 1 << 20));
    let two = Api::on(TestServer::start_url(db.url(), 1 << 20));
    let events = run_events("shared", "p", 0, 4);
    // Half the events go to each server, at the same time; either server answers for all.
    std::thread::scope(|scope| {
        scope.spawn(|| one.ingest(events[..3].to_vec()));
        scope.spawn(|| two.ingest(events[3..].to_vec()));
    });
    let from_one = one.ok("/runs/shared");
    assert_eq!(from_one, two.ok("/runs/shared"));
    assert_eq!(from_one["status"], "completed");
    assert_eq!(from_one["steps"].as_array().unwrap().len(), 4);
    drop((one, two));
    drop(db);
}
