//! The pipeline dashboard and the Compare view in a real headless browser: six days of a
//! pipeline's runs (version 1.0, then 1.1 with a tighter price filter) posted to a fresh server,
//! then every chart is checked against `GET /pipelines/{p}/stats` and the Compare view against
//! `GET /pipelines/{p}/compare` — the figures drawn are the figures served.
//!
//! Screenshots land in `target/tmp/ui-screenshots/` (and `docs/screenshots/` with
//! `XRAY_UPDATE_SCREENSHOTS=1`).

mod browser;
mod support;

use browser::{runtime, Browser};
use chrono::{DateTime, Duration as Span, Timelike, Utc};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use support::{Api, Backend, TestServer};

/// Runs every two hours over the last six days: 1.0 for the first three, then 1.1, whose filter
/// rejects far more items for their price and whose picks score lower. Every tenth run fails.
fn seed(api: &Api, now: DateTime<Utc>) -> usize {
    let start = (now - Span::days(6))
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .expect("on the hour");
    let mut n = 0;
    for i in 0..72 {
        let t = start + Span::hours(2 * i) + Span::minutes(7);
        if t > now {
            break;
        }
        let newer = i >= 36;
        let (price, score) = if newer {
            (56 + i % 5, 0.6)
        } else {
            (8 + i % 5, 0.8)
        };
        let category = 20 + i % 3;
        let failed = i % 10 == 9;
        let rfc = |d: DateTime<Utc>| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut steps = vec![
            json!({"name": "filter_candidates", "step_type": "filter", "started_at": rfc(t),
                   "duration_ms": 20.0 + (i % 7) as f64, "input_count": 100,
                   "output_count": 100 - price - category,
                   "rejections": {"price_too_high": {"count": price},
                                  "category_mismatch": {"count": category}}}),
        ];
        if !failed {
            steps.push(json!({"name": "select_best", "step_type": "select",
                "started_at": rfc(t + Span::seconds(1)), "duration_ms": 3.0,
                "input_count": 100 - price - category, "output_count": 1,
                "decision": {"selected": format!("case_{i}"), "score": score}}));
        }
        api.save(&json!({
            "run_id": format!("run_{i:03}"),
            "pipeline": "competitor_selection",
            "version": if newer { "1.1" } else { "1.0" },
            "status": if failed { "failed" } else { "completed" },
            "error": if failed { json!("no candidate left after filtering") } else { Value::Null },
            "started_at": rfc(t),
            "ended_at": rfc(t + Span::seconds(2)),
            "steps": steps,
        }));
        n += 1;
    }
    n
}

/// The `data-v` figures of the dots or bars of one series of a chart, by bucket start.
async fn drawn(browser: &Browser, chart: &str, series: &str) -> BTreeMap<String, f64> {
    let script = format!(
        "return [...document.querySelectorAll(`svg[data-chart='{chart}'] [data-series='{series}'] [data-v]`)]\
         .map((e) => [e.dataset.t, Number(e.dataset.v)])"
    );
    let pairs = browser.js(&script).await;
    pairs
        .as_array()
        .expect("pairs")
        .iter()
        .map(|p| {
            (
                p[0].as_str().expect("t").to_string(),
                p[1].as_f64().expect("v"),
            )
        })
        .collect()
}

/// A bucket's start as the page writes it (`toISOString`: milliseconds, `Z`).
fn iso(start: &Value) -> String {
    let t: DateTime<Utc> = start.as_str().expect("start").parse().expect("a time");
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn the_dashboard_draws_the_served_figures_and_compare_names_what_moved() {
    let api = Api::on(TestServer::start(Backend::Sqlite));
    let now = Utc::now();
    let runs = seed(&api, now);
    assert!(runs > 60, "{runs} runs seeded");
    let since = (now - Span::days(7))
        .format("%Y-%m-%dT%H:00:00Z")
        .to_string();
    let stats = api.ok(&format!(
        "/pipelines/competitor_selection/stats?bucket=hour&since={since}"
    ));
    let cmp = api.ok("/pipelines/competitor_selection/compare?a=version:1.0&b=version:1.1");
    let headline = cmp["headline"].as_str().expect("a headline").to_string();
    assert!(
        headline.starts_with("filter_candidates: price_too_high"),
        "{headline}"
    );

    runtime().block_on(async {
        let browser = Browser::start(1440, 1800).await;
        let base = &api.server.url;

        // Pipelines → the pipeline's dashboard.
        browser.open(&format!("{base}/#/pipelines?days=7")).await;
        browser
            .wait_for("#pipelines tr[data-pipeline='competitor_selection'] a", "")
            .await
            .click()
            .await
            .expect("click");
        browser.wait_for("svg[data-chart='chart-runs']", "").await;
        assert_eq!(browser.hash().await, "#/pipelines/competitor_selection");

        // Runs and failures: one bar pair per bucket, as served.
        let completed = drawn(&browser, "chart-runs", "completed").await;
        let failed = drawn(&browser, "chart-runs", "failed").await;
        let served = stats["runs"].as_array().expect("runs");
        assert_eq!(served.len(), runs, "one run an hour-bucket");
        for b in served {
            let t = iso(&b["start"]);
            let (all, bad) = (b["runs"].as_f64().unwrap(), b["failed"].as_f64().unwrap());
            assert_eq!(completed.get(&t).copied().unwrap_or(0.0), all - bad, "{t}");
            assert_eq!(failed.get(&t).copied().unwrap_or(0.0), bad, "{t}");
        }
        assert_eq!(failed.len(), runs / 10);
        let summary = browser.text("#dash-summary").await;
        assert!(summary.contains(&format!("{runs} runs")), "{summary}");

        // Rejection rate and the reasons' shares of input, per bucket, as served.
        let steps = stats["steps"].as_array().expect("steps");
        let filter = steps
            .iter()
            .find(|s| s["step"] == "filter_candidates")
            .expect("the filter's series");
        let rate = drawn(&browser, "chart-rejection-rate", "filter_candidates").await;
        let price = drawn(
            &browser,
            "chart-reasons-filter_candidates",
            "price_too_high",
        )
        .await;
        let buckets = filter["buckets"].as_array().expect("buckets");
        assert_eq!(rate.len(), buckets.len());
        for b in buckets {
            let t = iso(&b["start"]);
            assert!(close(rate[&t], b["rejection_rate"].as_f64().unwrap()), "{t}");
            let share = b["rejections"]["price_too_high"].as_f64().unwrap()
                / b["input_count"].as_f64().unwrap();
            assert!(close(price[&t], share), "{t}");
        }
        assert_eq!(
            browser
                .texts("figure[id='chart-reasons-filter_candidates'] .legend .key")
                .await,
            ["category_mismatch", "price_too_high"]
        );
        // The pick's score, and the version change marked on every time chart.
        let score = drawn(&browser, "chart-score", "select_best").await;
        assert!(score.values().any(|&v| close(v, 0.8)) && score.values().any(|&v| close(v, 0.6)));
        let markers = browser
            .js("return [...document.querySelectorAll(\"svg[data-chart='chart-rejection-rate'] .marker\")].map((m) => m.dataset.version)")
            .await;
        assert_eq!(markers, json!(["1.0", "1.1"]));
        let charts = browser.all("svg.chart").await.len();
        assert_eq!(browser.all("svg.chart .marker[data-version='1.1']").await.len(), charts);
        browser.screenshot("dashboard").await;

        // Only version 1.1: the picker narrows every chart.
        browser
            .js("const s = document.querySelector('#dash-version'); s.value = '1.1'; s.dispatchEvent(new Event('change')); return true")
            .await;
        browser
            .wait_js(
                "return location.hash.includes('version=1.1') && document.querySelector(\"svg[data-chart='chart-runs']\") !== null",
                "the 1.1 dashboard",
            )
            .await;
        let newer = api.ok(&format!(
            "/pipelines/competitor_selection/stats?bucket=hour&since={since}&version=1.1"
        ));
        let drawn_runs = drawn(&browser, "chart-runs", "completed").await.len()
            + drawn(&browser, "chart-runs", "failed").await.len();
        let served_runs: usize = newer["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| usize::from(b["runs"] != b["failed"]) + usize::from(b["failed"] != 0))
            .sum();
        assert_eq!(drawn_runs, served_runs);

        // Compare: the dashboard's link compares the last two versions; the filter's price
        // reason is named first, with A and B as served.
        browser
            .open(&format!("{base}/#/pipelines/competitor_selection"))
            .await;
        browser.wait_for("svg[data-chart='chart-runs']", "").await;
        browser.one("#compare-link").await.click().await.expect("click");
        browser.wait_for("#compare-headline", &headline).await;
        assert_eq!(
            browser.hash().await,
            "#/pipelines/competitor_selection/compare?a=version%3A1.0&b=version%3A1.1"
        );
        let first = browser.one("#compare-steps tbody.stepchange").await;
        assert_eq!(
            first.attr("data-step").await.unwrap().as_deref(),
            Some("filter_candidates")
        );
        let reason = browser
            .one("#compare-steps tbody[data-step='filter_candidates'] tr.reason")
            .await;
        assert_eq!(
            reason.attr("data-reason").await.unwrap().as_deref(),
            Some("price_too_high")
        );
        let row = reason.text().await.unwrap();
        let moved = &cmp["steps"][0]["reasons"][0];
        let pct = |v: &Value| format!("{:.1}%", v.as_f64().unwrap() * 100.0);
        assert!(
            row.contains(&format!("{} → {}", pct(&moved["a_share"]), pct(&moved["b_share"]))),
            "{row}"
        );
        browser.screenshot("compare").await;

        // A malformed selector: the server's message, shown.
        browser
            .open(&format!(
                "{base}/#/pipelines/competitor_selection/compare?a=version:1.0&b=yesterday"
            ))
            .await;
        let error = browser.wait_text(".errorbox", "").await;
        assert!(error.contains("yesterday"), "{error}");
        browser.assert_no_script_errors().await;
        browser.close().await;
    });
}
