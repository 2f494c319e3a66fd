//! The runs list: every run, filtering, a failed run, the pipelines page, a replay's marks.

use super::{count, Walk};
use serde_json::json;

/// Runs: every run, newest first, failed ones with their error.
pub async fn list(w: Walk<'_>) {
    let Walk {
        browser,
        api,
        base,
        timeout,
        ..
    } = w;
    browser.open(&format!("{base}/")).await;
    browser.wait_for("tr.run", "").await;
    assert_eq!(browser.all("tr.run").await.len(), 7);
    let text = browser.page_text().await;
    assert!(text.contains("no candidate left after filtering"), "{text}");
    assert!(text.contains(timeout), "{text}");
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
        .type_into("#runs-filter input[name=pipeline]", "competitor_selection")
        .await;
    browser
        .select("#runs-filter select[name=status]", "failed")
        .await;
    browser.click("#runs-filter button[type=submit]").await;
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
}

/// A failed run stands out with its error, on the run and on the step that failed.
pub async fn failed(w: Walk<'_>) {
    let Walk {
        browser,
        api,
        base,
        timeout,
        ..
    } = w;
    let failed = api.ok("/runs?pipeline=content_pipeline&status=failed");
    let failed_id = failed["runs"][0]["run_id"].as_str().unwrap();
    browser.open(&format!("{base}/#/runs/{failed_id}")).await;
    let header = browser.wait_text("#run-header .errorbox", timeout).await;
    assert!(header.starts_with("Run failed:"), "{header}");
    assert!(browser
        .text(".step.failed .steprow")
        .await
        .contains("model timed out"));
}

/// Pipelines: each pipeline's runs and failures at a glance, as GET /pipelines tells.
pub async fn pipelines(w: Walk<'_>) {
    let Walk {
        browser, api, base, ..
    } = w;
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
            .text(&format!("#pipelines tr[data-pipeline='{name}']"))
            .await;
        assert!(row.contains(&count(p["runs"].as_u64().unwrap())), "{row}");
        let failed = p["failed"].as_u64().unwrap();
        assert_eq!(failed > 0, row.contains('%'), "{row}");
    }
    let selection = browser
        .text("#pipelines tr[data-pipeline='competitor_selection']")
        .await;
    assert!(
        selection.contains("5") && selection.contains("1 (20.0%)"),
        "{selection}"
    );
    browser.screenshot("pipelines").await;
}

/// A replay of the first run: marked in the list, linked to its original and the diff.
pub async fn replay(w: Walk<'_>) {
    let Walk {
        browser,
        api,
        base,
        a_id,
        ..
    } = w;
    api.save(
        &json!({"run_id": "replay_1", "pipeline": "competitor_selection",
        "replay_of": a_id, "version": "fix-keywords"}),
    );
    browser.open(&format!("{base}/#/runs")).await;
    let row = browser
        .wait_text("tr.run[data-run-id=replay_1]", "replay")
        .await;
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
}
