//! One run: its steps in order, a filter's reasons and samples, the selection, the ranking.

use super::{count, score, step, Walk};

/// Run view: the laptop-stand run, its five steps in order with their counts.
pub async fn timeline(w: Walk<'_>) {
    let Walk {
        browser,
        base,
        a,
        a_id,
        ..
    } = w;
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
    let filter = step(a, "filter_candidates");
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
        .text("#funnel .frow[data-step-name=filter_candidates]")
        .await;
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
        .click(".step.open tr.reason[data-reason=price_too_high] button")
        .await;
    let sample = &filter["rejections"]["price_too_high"]["samples"][0];
    let sample_id = sample["item_id"].as_str().unwrap().to_string();
    let li = browser
        .wait_for(".step.open tr.samplesrow:not([hidden]) li", &sample_id)
        .await;
    assert!(
        li.text().await.unwrap().contains("\"threshold\":100"),
        "details are shown"
    );
    let accepted = browser.text(".step.open .acceptances h3").await;
    assert!(
        accepted.contains(&count(filter["acceptances"]["count"].as_u64().unwrap())),
        "{accepted}"
    );
    // The selection: the laptop stand, with its score.
    let select = step(a, "select_best");
    browser
        .click(".step[data-step-name=select_best] .steprow")
        .await;
    let decision = browser
        .wait_text(".step.open .decision", "laptop_stand_42")
        .await;
    assert!(
        decision.contains(&score(select["decision"]["score"].as_f64().unwrap())),
        "{decision}"
    );
    assert!(decision.contains("highest keyword relevance"), "{decision}");
    // The ranking: the stand first, the cut after it, its lead over the runner-up.
    let rank = step(a, "rank_by_relevance");
    browser
        .click(".step[data-step-name=rank_by_relevance] .steprow")
        .await;
    let ranking = browser
        .wait_text(".step.open .ranking", "cutoff: the top 1 went on")
        .await;
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
        .text(".step.open tr.ranked[data-position='1']")
        .await;
    assert!(first.contains("laptop_stand_42"), "{first}");
    // Fold the samples away again for the picture.
    browser
        .click(".step.open tr.reason[data-reason=price_too_high] button")
        .await;
    browser.js("window.scrollTo(0, 0)").await;
    browser.screenshot("run").await;
}
