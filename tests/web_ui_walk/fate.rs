//! Following one item through a run, and searching steps across runs.

use super::{step, Walk};

/// The laptop stand's fate in its run and elsewhere; a rejected item's reason.
pub async fn item_fate(w: Walk<'_>) {
    let Walk {
        browser,
        api,
        a,
        a_id,
        ..
    } = w;
    let sample_id = step(a, "filter_candidates")["rejections"]["price_too_high"]["samples"][0]
        ["item_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Item fate: typed into the run's box, the stand was accepted by the filter, then selected.
    browser.js("window.scrollTo(0, 0)").await;
    browser
        .type_into("#trace-form input", "laptop_stand_42")
        .await;
    browser.click("#trace-form button").await;
    let verdict = browser.wait_text("#verdict", "selected").await;
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
    let ranked = browser.text("#fate li.event[data-outcome=ranked]").await;
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
        .filter(|e| e["run_id"] != a_id)
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
    browser.click("#item-form button").await;
    let verdict = browser.wait_text("#verdict", &sample_id).await;
    assert!(
        verdict.contains("rejected by filter_candidates: price_too_high"),
        "{verdict}"
    );
}

/// Step search: filters that rejected over half their input, as `GET /steps` finds them.
pub async fn step_search(w: Walk<'_>) {
    let Walk {
        browser, api, base, ..
    } = w;
    browser.open(&format!("{base}/#/steps")).await;
    browser
        .select("#steps-filter select[name=step_type]", "filter")
        .await;
    browser
        .type_into("#steps-filter input[name=rejection_rate_gt]", "0.5")
        .await;
    browser.click("#steps-filter button[type=submit]").await;
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
}
