//! The web UI in a real headless browser (chromium through chromedriver): the example pipelines
//! run against a fresh server, then the tests click through runs → run → step → item fate, step
//! search and diff, and check what is shown against the API's answers. Also: a run with 1,000
//! steps and a database of 100,000 runs stay quick, a running run is drawn anew as it moves, and
//! text from the data is never run as HTML.
//!
//! Screenshots of each view land in `target/tmp/ui-screenshots/`; with
//! `XRAY_UPDATE_SCREENSHOTS=1` also in `docs/screenshots/` (the README shows those).

mod browser;
mod support;
mod web_ui_walk;

use browser::{runtime, Browser};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{Api, Backend, TestServer};
use web_ui_walk::{walk, Walk};
use xray_examples::catalog;
use xray_examples::competitor_selection::select_competitor;
use xray_examples::content_pipeline::write_post;

#[test]
fn the_ui_walks_from_runs_to_steps_item_fate_search_and_diff() {
    let api = Api::on(TestServer::start(Backend::Sqlite));
    support::use_default_client(&api.server.url);

    // The example data: the seed's bad selection, a charger, a weak pick, a failure, and the
    // iPhone case again with a lower price cap (the run to compare with).
    let catalog = catalog::shipped();
    let good = select_competitor("iPhone 15 Case", 100.0, &catalog).expect("a selection");
    assert_eq!(good.product_id, "laptop_stand_42");
    select_competitor("USB-C Charger 30W", 60.0, &catalog).expect("a charger");
    select_competitor("MagSafe Wallet Case for Pixel 8 Pro Max", 80.0, &catalog).expect("weak");
    assert!(select_competitor("Waterproof Pouch for iPhone 15", 50.0, &catalog).is_err());
    let cheap = select_competitor("iPhone 15 Case", 30.0, &catalog).expect("a cheaper pick");
    let posts = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("runtime")
        .block_on(async {
            let mut out = Vec::new();
            for topic in ["rust", "model timeout drills"] {
                out.push(write_post(topic.to_string(), 30).await);
            }
            out
        });
    let timeout = posts[1]
        .as_ref()
        .expect_err("the timeout topic fails")
        .to_string();
    xray::flush(Duration::from_secs(10)).expect("all delivered");

    let a_id = good.run_id.clone().expect("run id");
    let b_id = cheap.run_id.clone().expect("run id");
    let a = api.ok(&format!("/runs/{a_id}"));
    let b = api.ok(&format!("/runs/{b_id}"));

    runtime().block_on(async {
        let browser = Browser::start(1440, 1240).await;
        let base = &api.server.url;
        walk(Walk {
            browser: &browser,
            api: &api,
            base,
            a: &a,
            b: &b,
            a_id: &a_id,
            b_id: &b_id,
            timeout: &timeout,
        })
        .await;
        browser.assert_no_script_errors().await;
        browser.close().await;
    });
}

#[test]
fn a_run_with_1000_steps_and_100000_runs_stay_responsive() {
    let api = Api::on(TestServer::start(Backend::Sqlite));
    // 100,000 runs, written in batches straight through the API.
    let total = 100_000;
    let batch = 10_000;
    for start in (0..total).step_by(batch) {
        let events: Vec<Value> = (start..start + batch)
            .map(|i| {
                let at = format!("2026-11-{:02}T{:02}:{:02}:{:02}Z", 1 + i / 86_400 % 20, i / 3600 % 24, i / 60 % 60, i % 60);
                json!({"run_finished": {"run_id": format!("bulk-{i:06}"), "pipeline": "bulk",
                    "started_at": at, "ended_at": at, "status": if i % 7 == 0 { "failed" } else { "completed" },
                    "error": if i % 7 == 0 { json!(format!("bulk failure {i}")) } else { Value::Null },
                    "output": {"n": i}}})
            })
            .collect();
        api.ingest(events);
    }
    // One run of 1,000 steps, the newest of all.
    let at = |ms: u64| {
        format!(
            "2026-12-01T00:{:02}:{:02}.{:03}Z",
            ms / 60_000,
            ms / 1000 % 60,
            ms % 1000
        )
    };
    let mut events =
        vec![json!({"run_started": {"run_id": "big-run", "pipeline": "big", "started_at": at(0)}})];
    let types = [
        "generate",
        "retrieve",
        "filter",
        "rank",
        "select",
        "transform",
    ];
    events.extend((0..1000u64).map(|i| {
        let step_type = types[i as usize % types.len()];
        json!({"step_finished": {"run_id": "big-run", "pipeline": "big", "step": {
            "step_id": format!("big-run-s{i}"), "position": i, "name": format!("step_{i}"),
            "step_type": step_type,
            "started_at": at(i * 1000), "duration_ms": 900.0, "input_count": 10, "output_count": 4,
            "rejections": {"too_small": {"count": 6, "samples": [{"item_id": format!("item-{i}")}]}}}}})
    }));
    events.push(
        json!({"run_finished": {"run_id": "big-run", "pipeline": "big", "started_at": at(0),
        "ended_at": at(1_000_000), "status": "completed", "output": {"done": true}}}),
    );
    api.ingest(events);

    runtime().block_on(async {
        let browser = Browser::start(1440, 1000).await;
        let base = &api.server.url;

        // The runs list shows one page of 100,000, and pages on with the API's cursor.
        let started = Instant::now();
        browser.open(&format!("{base}/#/runs")).await;
        browser.wait_for("tr.run", "").await;
        assert!(started.elapsed() < Duration::from_secs(5), "first page took {:?}", started.elapsed());
        assert_eq!(browser.all("tr.run").await.len(), 50);
        assert_eq!(browser.one("tr.run").await.attr("data-run-id").await.unwrap().as_deref(), Some("big-run"));
        browser.click("#next-page").await;
        browser.wait_js("return location.hash.includes('cursor=') && document.querySelectorAll('tr.run').length === 50 && !document.querySelector('#view .loading')", "the second page").await;
        let second: Vec<String> = {
            let mut ids = Vec::new();
            for r in browser.all("tr.run").await {
                ids.push(r.attr("data-run-id").await.unwrap().unwrap());
            }
            ids
        };
        let want = api.ok("/runs?limit=50");
        let want = api.ok(&format!("/runs?limit=50&cursor={}", want["next_cursor"].as_str().unwrap()));
        let want: Vec<&str> = want["runs"].as_array().unwrap().iter().map(|r| r["run_id"].as_str().unwrap()).collect();
        assert_eq!(second, want);

        // The 1,000-step run: the first 500 steps drawn at once, the rest on demand.
        let started = Instant::now();
        browser.open(&format!("{base}/#/runs/big-run")).await;
        browser.wait_for(".step[data-step-name=step_499]", "").await;
        let first_page = started.elapsed();
        assert_eq!(browser.all(".step").await.len(), 500);
        browser.click("#more-steps").await;
        browser.wait_for(".step[data-step-name=step_999]", "").await;
        assert!(first_page < Duration::from_secs(5), "500 steps took {first_page:?}");
        assert_eq!(browser.all(".step").await.len(), 1000);
        assert!(browser.all("#more-steps").await.is_empty());
        // Still responsive: a step at the end opens at once, with its details fetched then.
        let started = Instant::now();
        let last = browser.one(".step[data-step-name=step_999] .steprow").await;
        browser.js("document.querySelector('.step[data-step-name=step_999]').scrollIntoView({block: 'center'})").await;
        last.click().await.unwrap();
        let detail = browser.wait_text(".step.open .stepdetail table.reasons", "too_small").await;
        assert!(detail.contains("too_small 6"), "{detail}");
        assert!(started.elapsed() < Duration::from_secs(3), "opening a step took {:?}", started.elapsed());
        let frame = browser.js("const t = performance.now(); return new Promise(r => requestAnimationFrame(() => r(performance.now() - t)))").await;
        assert!(frame.as_f64().unwrap() < 1000.0, "a frame took {frame} ms");
        assert_eq!(browser.all(".stepdetail:not([hidden])").await.len(), 1, "only the opened step's details are drawn");

        // A shared link to a step on the second page loads pages until it is there, and opens it.
        browser.open(&format!("{base}/#/runs/big-run?step=big-run-s800")).await;
        let opened = browser.wait_for(".step.open", "step_800").await;
        assert_eq!(opened.attr("data-step-id").await.unwrap().as_deref(), Some("big-run-s800"));
        browser.wait_for(".step.open .stepdetail table.reasons", "too_small").await;

        browser.assert_no_script_errors().await;
        browser.close().await;
    });
}

#[test]
fn a_running_run_is_drawn_anew_as_it_moves_until_it_ends() {
    let api = Api::on(TestServer::start(Backend::Sqlite));
    let step = |i: u64, name: &str, step_type: &str| {
        json!({"step_finished": {"run_id": "live-run", "pipeline": "live", "step": {
            "step_id": format!("live-s{i}"), "position": i, "name": name, "step_type": step_type,
            "started_at": format!("2026-12-01T00:00:0{i}Z"), "duration_ms": 500.0,
            "input_count": 10, "output_count": 4,
            "rejections": {"too_far": {"count": 6, "samples": [{"item_id": format!("item-{i}")}]}}}}})
    };
    let started = json!({"run_started": {"run_id": "live-run", "pipeline": "live",
        "started_at": "2026-12-01T00:00:00Z"}});
    api.ingest(vec![started, step(0, "search", "retrieve")]);
    runtime().block_on(async {
        let browser = Browser::start(1280, 900).await;
        browser
            .open(&format!("{}/#/runs/live-run", api.server.url))
            .await;
        browser.wait_for("#live", "live").await;
        assert_eq!(browser.texts(".step .steprow .name").await, ["search"]);
        // The reader opens the step and starts typing an item id...
        browser.click(".step .steprow").await;
        browser.wait_for(".step.open .stepdetail", "too_far").await;
        browser.type_into("#trace-form input", "item-").await;
        // ...when the next step finishes: it appears without a reload, and what the reader had
        // open and typed stays.
        api.ingest(vec![step(1, "filter", "filter")]);
        browser
            .wait_js(
                "return document.querySelectorAll('.step .steprow').length === 2",
                "the second step",
            )
            .await;
        assert_eq!(
            browser.texts(".step .steprow .name").await,
            ["search", "filter"]
        );
        browser
            .wait_for(".step.open[data-step-name=search] .stepdetail", "too_far")
            .await;
        assert_eq!(
            browser
                .js("return document.querySelector('#trace-form input').value")
                .await,
            json!("item-")
        );
        // The run ends: it is shown completed, and no longer watched.
        api.ingest(vec![
            json!({"run_finished": {"run_id": "live-run", "pipeline": "live",
            "started_at": "2026-12-01T00:00:00Z", "ended_at": "2026-12-01T00:00:05Z",
            "status": "completed", "output": {"done": true}}}),
        ]);
        browser
            .wait_js(
                "return document.querySelector('#live') === null \
                 && document.querySelector('#run-header .status-completed') !== null",
                "the run's end",
            )
            .await;
        browser.wait_for("#run-header", "done").await;
        browser.assert_no_script_errors().await;
        browser.close().await;
    });
}

#[test]
fn text_from_the_data_is_shown_as_text_never_run() {
    let api = Api::on(TestServer::start(Backend::Sqlite));
    let evil = "<img src=x onerror=\"window.__xss=1\"><script>window.__xss=2</script>";
    api.save(&json!({
        "run_id": "evil-run",
        "pipeline": format!("p{evil}"),
        "status": "failed",
        "error": format!("boom {evil}"),
        "input": {"q": evil},
        "started_at": "2026-11-20T10:00:00Z",
        "steps": [{"name": format!("step {evil}"), "step_type": "filter", "started_at": "2026-11-20T10:00:00Z",
                   "error": evil,
                   "rejections": {evil: {"count": 1, "samples": [{"item_id": evil, "details": {"d": evil}}]}},
                   "decision": {"selected": evil, "score": 0.5, "details": {"why": evil}}}]
    }));
    runtime().block_on(async {
        let browser = Browser::start(1280, 900).await;
        let base = &api.server.url;
        for page in ["#/runs", "#/runs/evil-run", "#/steps", "#/diff?a=evil-run&b=evil-run"] {
            browser.open(&format!("{base}/{page}")).await;
            browser.wait_js("return document.body.dataset.ready !== undefined && document.querySelector('#view .loading') === null", page).await;
            let text = browser.page_text().await;
            assert!(text.contains("<img src=x"), "{page} shows the text as it is: {text}");
        }
        browser.open(&format!("{base}/#/runs/evil-run")).await;
        browser.click(".step .steprow").await;
        browser.wait_for(".step.open .decision", "<script>").await;
        browser.click(".step.open tr.reason button").await;
        let item = browser.wait_for(".step.open tr.samplesrow li a.item", "onerror").await;
        item.click().await.unwrap();
        browser.wait_for("#verdict", "<img").await;
        assert_eq!(browser.js("return document.querySelectorAll('#view img, #view script').length").await, json!(0));
        assert_eq!(browser.js("return window.__xss === undefined").await, json!(true));
        browser.assert_no_script_errors().await;
        browser.close().await;
    });
}

#[test]
fn a_server_with_api_keys_asks_for_a_read_key_once() {
    let key = |k: &str| k.parse().expect("key");
    let server = TestServer::start_settings(
        Backend::Sqlite,
        xray_server::Settings {
            keys: xray_server::http::auth::ApiKeys::new(&[key("k-in")], &[key("k-read")], &[]),
            ..xray_server::Settings::default()
        },
    );
    let res = support::agent()
        .post(server.at("/runs"))
        .header("authorization", "Bearer k-in")
        .send_json(json!({"run_id": "keyed-run", "pipeline": "keyed", "started_at": "2026-11-20T10:00:00Z"}))
        .expect("POST /runs");
    assert_eq!(res.status().as_u16(), 201);
    runtime().block_on(async {
        let browser = Browser::start(1280, 900).await;
        // The page itself is public; its first API call gets a 401 and asks for a key.
        browser
            .client
            .goto(&format!("{}/#/runs", server.url))
            .await
            .expect("navigate");
        let asked = browser::retry(Duration::from_secs(20), || async {
            browser.client.get_alert_text().await.ok()
        })
        .await
        .expect("the page asks for a key");
        assert!(asked.contains("read"), "{asked}");
        browser
            .client
            .send_alert_text("k-read")
            .await
            .expect("type the key");
        browser.client.accept_alert().await.expect("accept");
        browser.wait_for("#view", "keyed-run").await;
        // The key is kept: a later visit asks nothing.
        browser
            .open(&format!("{}/#/runs/keyed-run", server.url))
            .await;
        browser.wait_for("#view", "keyed").await;
        browser.assert_no_script_errors().await;
        browser.close().await;
    });
}
