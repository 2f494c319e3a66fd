//! The web UI in a real headless browser (chromium through chromedriver): the example pipelines
//! run against a fresh server, then the tests click through runs → run → step → item fate, step
//! search and diff, and check what is shown against the API's answers. Also: a run with 1,000
//! steps and a database of 100,000 runs stay quick, and text from the data is never run as HTML.
//!
//! Screenshots of each view land in `target/tmp/ui-screenshots/`; with
//! `XRAY_UPDATE_SCREENSHOTS=1` also in `docs/screenshots/` (the README shows those).

mod browser;
mod support;

use browser::{runtime, Browser};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{Api, Backend, TestServer};
use xray_examples::catalog;
use xray_examples::competitor_selection::select_competitor;
use xray_examples::content_pipeline::write_post;

/// `1,021`, as the UI writes counts.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A score as the UI writes it: three decimals, a trailing zero dropped.
fn score(v: f64) -> String {
    let s = format!("{v:.3}");
    s.strip_suffix('0').map(str::to_string).unwrap_or(s)
}

fn step<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}"))
}

/// Items a step kept, by outcome: `(accepted, rejected with reason)`.
fn kept(step: &Value) -> (Vec<String>, Vec<(String, String)>) {
    let accepted = step["acceptances"]["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| s["item_id"].as_str().expect("id").to_string())
        .collect();
    let mut rejected = Vec::new();
    for (reason, r) in step["rejections"].as_object().expect("rejections") {
        for s in r["samples"].as_array().expect("samples") {
            rejected.push((
                s["item_id"].as_str().expect("id").to_string(),
                reason.clone(),
            ));
        }
    }
    (accepted, rejected)
}

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

        // Runs: every run, newest first, failed ones with their error.
        browser.open(&format!("{base}/")).await;
        browser.wait_for("tr.run", "").await;
        assert_eq!(browser.all("tr.run").await.len(), 7);
        let text = browser.page_text().await;
        assert!(text.contains("no candidate left after filtering"), "{text}");
        assert!(text.contains(&timeout), "{text}");
        assert_eq!(browser.all("tr.status-row-failed").await.len(), 2);
        let first = browser
            .one("tr.run")
            .await
            .attr("data-run-id")
            .await
            .unwrap();
        let newest = api.ok("/runs?limit=1");
        assert_eq!(first.as_deref(), newest["runs"][0]["run_id"].as_str());
        browser.screenshot("runs").await;

        // Filtering: the failed competitor selection only, and the URL says so.
        browser
            .one("#runs-filter input[name=pipeline]")
            .await
            .send_keys("competitor_selection")
            .await
            .unwrap();
        browser
            .one("#runs-filter select[name=status]")
            .await
            .select_by_value("failed")
            .await
            .unwrap();
        browser
            .one("#runs-filter button[type=submit]")
            .await
            .click()
            .await
            .unwrap();
        browser
            .wait_js(
                "return document.querySelectorAll('tr.run').length === 1",
                "one failed run",
            )
            .await;
        assert_eq!(
            browser.hash().await,
            "#/runs?pipeline=competitor_selection&status=failed"
        );
        assert!(browser
            .page_text()
            .await
            .contains("Waterproof Pouch for iPhone 15"));

        // Run view: the laptop-stand run, its five steps in order with their counts.
        browser
            .open(&format!(
                "{base}/#/runs?pipeline=competitor_selection&status=completed"
            ))
            .await;
        let row = browser
            .wait_for(&format!("tr.run[data-run-id='{a_id}']"), "")
            .await;
        row.find(fantoccini::Locator::Css("td.when a"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        browser.wait_for("#run-header", "laptop_stand_42").await;
        assert_eq!(browser.hash().await, format!("#/runs/{a_id}"));
        let names = browser.texts(".step .steprow .name").await;
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
        let filter = step(&a, "filter_candidates");
        let (fin, fout) = (
            filter["input_count"].as_u64().unwrap(),
            filter["output_count"].as_u64().unwrap(),
        );
        let row = browser
            .wait_for(".step[data-step-name=filter_candidates] .steprow", "")
            .await;
        let row_text = row.text().await.unwrap();
        assert!(
            row_text.contains(&format!("{} → {}", count(fin), count(fout))),
            "{row_text}"
        );
        assert!(row_text.contains("low_rating"), "{row_text}");
        let funnel = browser
            .one("#funnel .frow[data-step-name=filter_candidates]")
            .await
            .text()
            .await
            .unwrap();
        assert!(
            funnel.contains(&format!("−{}", count(fin - fout))),
            "{funnel}"
        );

        // Expand the filter: every reason with its exact count, samples with their details.
        row.click().await.unwrap();
        let reasons = browser
            .wait_for(".step.open .stepdetail table.reasons", "price_too_high")
            .await;
        let reasons_text = reasons.text().await.unwrap();
        for (reason, r) in filter["rejections"].as_object().unwrap() {
            let n = count(r["count"].as_u64().unwrap());
            assert!(
                reasons_text.contains(&format!("{reason} {n}")),
                "{reason} {n} in {reasons_text}"
            );
        }
        browser
            .one(".step.open tr.reason[data-reason=price_too_high] button")
            .await
            .click()
            .await
            .unwrap();
        let sample = &filter["rejections"]["price_too_high"]["samples"][0];
        let sample_id = sample["item_id"].as_str().unwrap().to_string();
        let li = browser
            .wait_for(".step.open tr.samplesrow:not([hidden]) li", &sample_id)
            .await;
        assert!(
            li.text().await.unwrap().contains("\"threshold\":100"),
            "details are shown"
        );
        let accepted = browser
            .one(".step.open .acceptances h3")
            .await
            .text()
            .await
            .unwrap();
        assert!(
            accepted.contains(&count(filter["acceptances"]["count"].as_u64().unwrap())),
            "{accepted}"
        );
        // The selection: the laptop stand, with its score.
        let select = step(&a, "select_best");
        browser
            .one(".step[data-step-name=select_best] .steprow")
            .await
            .click()
            .await
            .unwrap();
        let decision = browser
            .wait_for(".step.open .decision", "laptop_stand_42")
            .await
            .text()
            .await
            .unwrap();
        assert!(
            decision.contains(&score(select["decision"]["score"].as_f64().unwrap())),
            "{decision}"
        );
        assert!(decision.contains("highest keyword relevance"), "{decision}");
        // The ranking: the stand first, the cut after it, its lead over the runner-up.
        let rank = step(&a, "rank_by_relevance");
        browser
            .one(".step[data-step-name=rank_by_relevance] .steprow")
            .await
            .click()
            .await
            .unwrap();
        let ranking = browser
            .wait_for(".step.open .ranking", "cutoff: the top 1 went on")
            .await
            .text()
            .await
            .unwrap();
        assert!(
            ranking.to_lowercase().contains(&format!(
                "ranking: {} items",
                count(rank["ranking"]["count"].as_u64().unwrap())
            )),
            "{ranking}"
        );
        assert!(
            ranking.contains(&format!(
                "margin {}",
                score(rank["margin"].as_f64().unwrap())
            )),
            "{ranking}"
        );
        let first = browser
            .one(".step.open tr.ranked[data-position='1']")
            .await
            .text()
            .await
            .unwrap();
        assert!(first.contains("laptop_stand_42"), "{first}");
        // Fold the samples away again for the picture.
        browser
            .one(".step.open tr.reason[data-reason=price_too_high] button")
            .await
            .click()
            .await
            .unwrap();
        browser.js("window.scrollTo(0, 0)").await;
        browser.screenshot("run").await;

        // Item fate: typed into the run's box, the stand was accepted by the filter, then selected.
        browser.js("window.scrollTo(0, 0)").await;
        browser
            .one("#trace-form input")
            .await
            .send_keys("laptop_stand_42")
            .await
            .unwrap();
        browser
            .one("#trace-form button")
            .await
            .click()
            .await
            .unwrap();
        let verdict = browser
            .wait_for("#verdict", "selected")
            .await
            .text()
            .await
            .unwrap();
        assert!(
            verdict.contains("laptop_stand_42 was selected by select_best"),
            "{verdict}"
        );
        assert_eq!(
            browser.hash().await,
            format!("#/runs/{a_id}/items/laptop_stand_42")
        );
        let trail: Vec<(String, String)> = {
            let mut out = Vec::new();
            for el in browser.all("#fate li.event").await {
                out.push((
                    el.attr("data-step").await.unwrap().unwrap(),
                    el.attr("data-outcome").await.unwrap().unwrap(),
                ));
            }
            out
        };
        assert_eq!(
            trail,
            [
                ("filter_candidates".to_string(), "accepted".to_string()),
                ("rank_by_relevance".to_string(), "ranked".to_string()),
                ("select_best".to_string(), "selected".to_string())
            ]
        );
        let ranked = browser
            .one("#fate li.event[data-outcome=ranked]")
            .await
            .text()
            .await
            .unwrap();
        assert!(ranked.contains("ranked #1"), "{ranked}");
        assert!(ranked.contains("cutoff 1"), "{ranked}");
        assert!(browser
            .page_text()
            .await
            .contains("\"category\":\"laptop_stands\""));
        // The same item in the pipeline's other runs, as `GET /items/{item}` tells.
        let history = api.ok("/items/laptop_stand_42?pipeline=competitor_selection&limit=200");
        let others = history["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["run_id"] != a_id.as_str())
            .count();
        browser
            .wait_js(
                "return document.querySelector('#elsewhere .loading') === null",
                "the other runs",
            )
            .await;
        assert_eq!(
            browser.all("#elsewhere tr.other").await.len(),
            others.min(50)
        );
        browser.screenshot("item").await;
        // A rejected item says why.
        let input = browser.one("#item-form input").await;
        input.clear().await.unwrap();
        input.send_keys(&sample_id).await.unwrap();
        browser
            .one("#item-form button")
            .await
            .click()
            .await
            .unwrap();
        let verdict = browser
            .wait_for("#verdict", &sample_id)
            .await
            .text()
            .await
            .unwrap();
        assert!(
            verdict.contains("rejected by filter_candidates: price_too_high"),
            "{verdict}"
        );

        // Step search: filters that rejected over half their input, as `GET /steps` finds them.
        browser.open(&format!("{base}/#/steps")).await;
        browser
            .one("#steps-filter select[name=step_type]")
            .await
            .select_by_value("filter")
            .await
            .unwrap();
        browser
            .one("#steps-filter input[name=rejection_rate_gt]")
            .await
            .send_keys("0.5")
            .await
            .unwrap();
        browser
            .one("#steps-filter button[type=submit]")
            .await
            .click()
            .await
            .unwrap();
        browser.wait_for("#step-hits tr.hit", "").await;
        let expected = api.ok("/steps?step_type=filter&rejection_rate_gt=0.5");
        let expected = expected["steps"].as_array().unwrap();
        assert!(!expected.is_empty());
        let hits = browser.all("#step-hits tr.hit").await;
        assert_eq!(hits.len(), expected.len());
        for (hit, want) in hits.iter().zip(expected) {
            assert_eq!(
                hit.attr("data-run-id").await.unwrap().as_deref(),
                want["run_id"].as_str()
            );
        }
        browser.screenshot("steps").await;
        // A hit opens its run at that step, expanded.
        hits[0]
            .find(fantoccini::Locator::Css("td.stepname a"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        browser
            .wait_for(".step.open .stepdetail table.reasons", "")
            .await;
        assert!(browser.hash().await.starts_with(&format!(
            "#/runs/{}?step=",
            expected[0]["run_id"].as_str().unwrap()
        )));

        // A failed run stands out with its error, on the run and on the step that failed.
        let failed = api.ok("/runs?pipeline=content_pipeline&status=failed");
        let failed_id = failed["runs"][0]["run_id"].as_str().unwrap();
        browser.open(&format!("{base}/#/runs/{failed_id}")).await;
        let header = browser
            .wait_for("#run-header .errorbox", &timeout)
            .await
            .text()
            .await
            .unwrap();
        assert!(header.starts_with("Run failed:"), "{header}");
        assert!(browser
            .one(".step.failed .steprow")
            .await
            .text()
            .await
            .unwrap()
            .contains("model timed out"));

        // Diff: tick the two iPhone-case runs in the list and compare them.
        browser
            .open(&format!("{base}/#/runs?pipeline=competitor_selection"))
            .await;
        browser
            .wait_for(&format!("tr.run[data-run-id='{b_id}']"), "")
            .await;
        browser
            .one(&format!("tr.run[data-run-id='{a_id}'] td.pick input"))
            .await
            .click()
            .await
            .unwrap();
        browser
            .one(&format!("tr.run[data-run-id='{b_id}'] td.pick input"))
            .await
            .click()
            .await
            .unwrap();
        browser
            .wait_for("#compare-link", "Compare")
            .await
            .click()
            .await
            .unwrap();
        browser.wait_for("#diff-steps", "").await;
        assert_eq!(browser.hash().await, format!("#/diff?a={a_id}&b={b_id}"));
        let picked = step(&b, "select_best")["decision"]["selected"]
            .as_str()
            .unwrap()
            .to_string();
        assert_ne!(picked, "laptop_stand_42", "the stand costs more than 30");
        let summary = browser.one("#diff-summary").await.text().await.unwrap();
        assert!(
            summary.contains(&format!(
                "Decision at select_best: laptop_stand_42 ({}) → {picked}",
                score(select["decision"]["score"].as_f64().unwrap())
            )),
            "{summary}"
        );
        let fb = step(&b, "filter_candidates");
        let pair = browser
            .wait_for(
                ".dpair[data-step-name=filter_candidates] .ddetail:not([hidden]) .reasondiff",
                "price_too_high",
            )
            .await;
        let pair_text = pair.text().await.unwrap();
        let (pa, pb) = (
            filter["rejections"]["price_too_high"]["count"]
                .as_u64()
                .unwrap(),
            fb["rejections"]["price_too_high"]["count"]
                .as_u64()
                .unwrap(),
        );
        assert!(
            pair_text.contains(&format!(
                "price_too_high {} {} +{}",
                count(pa),
                count(pb),
                count(pb - pa)
            )),
            "{pair_text}"
        );
        // Items the stricter cap turned away, as the kept samples tell.
        let (acc_a, _) = kept(filter);
        let (_, rej_b) = kept(fb);
        let flipped: Vec<&(String, String)> =
            rej_b.iter().filter(|(id, _)| acc_a.contains(id)).collect();
        assert!(
            !flipped.is_empty(),
            "some items accepted at 100 are rejected at 30"
        );
        let flips = browser
            .one(".dpair[data-step-name=filter_candidates] .flip.a-acc-b-rej")
            .await
            .text()
            .await
            .unwrap();
        assert!(
            flips.contains(&format!(
                "Accepted in A, rejected in B: {}",
                count(flipped.len() as u64)
            )),
            "{flips}"
        );
        assert!(
            flips.contains(&format!("{}\nin B: {}", flipped[0].0, flipped[0].1)),
            "{flips}"
        );
        assert_eq!(
            browser
                .one(".dpair[data-step-name=generate_keywords]")
                .await
                .attr("data-change")
                .await
                .unwrap()
                .as_deref(),
            Some("same")
        );
        browser.screenshot("diff").await;

        // The same diff from the run's "Compare with…": the picker lists the pipeline's runs.
        browser.open(&format!("{base}/#/runs/{a_id}")).await;
        browser
            .wait_for("#compare-run", "Compare")
            .await
            .click()
            .await
            .unwrap();
        let pick = browser
            .wait_for(
                &format!("#view tr[data-run-id='{b_id}'] td.pickcell button"),
                "as B",
            )
            .await;
        let listed = browser.all("#view tr[data-run-id]").await.len();
        assert_eq!(listed, 5, "the five competitor_selection runs");
        pick.click().await.unwrap();
        browser
            .wait_for(".dpair[data-step-name=select_best]", "")
            .await;
        assert_eq!(browser.hash().await, format!("#/diff?a={a_id}&b={b_id}"));

        // Pipelines: each pipeline's runs and failures at a glance, as GET /pipelines tells.
        browser.open(&format!("{base}/#/pipelines")).await;
        browser.wait_for("#pipelines tr.pipeline", "").await;
        let pipelines = api.ok("/pipelines");
        let expected = pipelines["pipelines"].as_array().unwrap();
        assert_eq!(
            browser.all("#pipelines tr.pipeline").await.len(),
            expected.len()
        );
        for p in expected {
            let name = p["pipeline"].as_str().unwrap();
            let row = browser
                .one(&format!("#pipelines tr[data-pipeline='{name}']"))
                .await
                .text()
                .await
                .unwrap();
            assert!(row.contains(&count(p["runs"].as_u64().unwrap())), "{row}");
            let failed = p["failed"].as_u64().unwrap();
            assert_eq!(failed > 0, row.contains('%'), "{row}");
        }
        let selection = browser
            .one("#pipelines tr[data-pipeline='competitor_selection']")
            .await
            .text()
            .await
            .unwrap();
        assert!(
            selection.contains("5") && selection.contains("1 (20.0%)"),
            "{selection}"
        );
        browser.screenshot("pipelines").await;

        // A replay of the first run: marked in the list, linked to its original and the diff.
        api.save(
            &serde_json::json!({"run_id": "replay_1", "pipeline": "competitor_selection",
            "replay_of": a_id, "version": "fix-keywords"}),
        );
        browser.open(&format!("{base}/#/runs")).await;
        let row = browser
            .wait_for("tr.run[data-run-id=replay_1]", "replay")
            .await
            .text()
            .await
            .unwrap();
        assert!(row.contains("fix-keywords"), "{row}");
        browser.open(&format!("{base}/#/runs/replay_1")).await;
        browser.wait_for("#replay-of", "what changed").await;
        let links: Vec<String> = {
            let mut out = Vec::new();
            for a in browser.all("#replay-of a").await {
                out.push(a.attr("href").await.unwrap().unwrap_or_default());
            }
            out
        };
        assert_eq!(
            links,
            [
                format!("#/runs/{a_id}"),
                format!("#/diff?a={a_id}&b=replay_1")
            ]
        );

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
        browser.one("#next-page").await.click().await.unwrap();
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
        browser.one("#more-steps").await.click().await.unwrap();
        browser.wait_for(".step[data-step-name=step_999]", "").await;
        assert!(first_page < Duration::from_secs(5), "500 steps took {first_page:?}");
        assert_eq!(browser.all(".step").await.len(), 1000);
        assert!(browser.all("#more-steps").await.is_empty());
        // Still responsive: a step at the end opens at once, with its details fetched then.
        let started = Instant::now();
        let last = browser.one(".step[data-step-name=step_999] .steprow").await;
        browser.js("document.querySelector('.step[data-step-name=step_999]').scrollIntoView({block: 'center'})").await;
        last.click().await.unwrap();
        let detail = browser.wait_for(".step.open .stepdetail table.reasons", "too_small").await.text().await.unwrap();
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
        browser.one(".step .steprow").await.click().await.unwrap();
        browser.wait_for(".step.open .decision", "<script>").await;
        browser.one(".step.open tr.reason button").await.click().await.unwrap();
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
