//! Two runs side by side: reasons, flipped items, the decision.

use super::{count, kept, score, step, Walk};

/// The two iPhone-case runs compared, from the list and from the run.
pub async fn diff(w: Walk<'_>) {
    let Walk {
        browser,
        base,
        a,
        b,
        a_id,
        b_id,
        ..
    } = w;
    let filter = step(a, "filter_candidates");
    let select = step(a, "select_best");
    // Diff: tick the two iPhone-case runs in the list and compare them.
    browser
        .open(&format!("{base}/#/runs?pipeline=competitor_selection"))
        .await;
    browser
        .wait_for(&format!("tr.run[data-run-id='{b_id}']"), "")
        .await;
    browser
        .click(&format!("tr.run[data-run-id='{a_id}'] td.pick input"))
        .await;
    browser
        .click(&format!("tr.run[data-run-id='{b_id}'] td.pick input"))
        .await;
    browser
        .wait_for("#compare-link", "Compare")
        .await
        .click()
        .await
        .unwrap();
    browser.wait_for("#diff-steps", "").await;
    assert_eq!(browser.hash().await, format!("#/diff?a={a_id}&b={b_id}"));
    let picked = step(b, "select_best")["decision"]["selected"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(picked, "laptop_stand_42", "the stand costs more than 30");
    let summary = browser.text("#diff-summary").await;
    assert!(
        summary.contains(&format!(
            "Decision at select_best: laptop_stand_42 ({}) → {picked}",
            score(select["decision"]["score"].as_f64().unwrap())
        )),
        "{summary}"
    );
    let fb = step(b, "filter_candidates");
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
        .text(".dpair[data-step-name=filter_candidates] .flip.a-acc-b-rej")
        .await;
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
}
