//! The seed's debugging session, done mechanically: run the example pipeline against a fresh
//! server, then follow the trail over HTTP from the bad output to the keyword that caused it.

use crate::support::{Api, Backend, TestServer};
use serde_json::Value;
use std::time::Duration;
use xray_examples::catalog;
use xray_examples::competitor_selection::select_competitor;

fn steps(run: &Value) -> &Vec<Value> {
    run["steps"].as_array().expect("steps")
}

fn step<'a>(run: &'a Value, name: &str) -> &'a Value {
    steps(run)
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {run}"))
}

pub fn follow_the_trail(backend: Backend) {
    let api = Api::on(TestServer::start(backend));
    crate::support::use_default_client(&api.server.url);

    // The pipeline runs, and returns a laptop stand as the competitor of an iPhone case.
    let catalog = catalog::shipped();
    let chosen = select_competitor("iPhone 15 Case", 100.0, &catalog).expect("a selection");
    assert_eq!(chosen.product_id, "laptop_stand_42");
    select_competitor("USB-C Charger 30W", 60.0, &catalog).expect("a charger");
    select_competitor("MagSafe Wallet Case for Pixel 8 Pro Max", 80.0, &catalog).expect("weak");
    assert!(select_competitor("Waterproof Pouch for iPhone 15", 50.0, &catalog).is_err());
    xray::flush(Duration::from_secs(10)).expect("all delivered");

    // 1. Find the run: completed runs of the pipeline, newest first, with their output.
    let runs = api.ok("/runs?pipeline=competitor_selection&status=completed");
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3, "the pouch run failed and is not listed");
    let bad = runs
        .iter()
        .find(|r| r["input"]["product_title"] == "iPhone 15 Case")
        .expect("the iPhone case run");
    assert_eq!(bad["output"]["product_id"], "laptop_stand_42");
    let run_id = bad["run_id"].as_str().unwrap();
    assert_eq!(
        chosen.run_id.as_deref(),
        Some(run_id),
        "the pipeline knows its run id"
    );
    let failed = api.ok("/runs?pipeline=competitor_selection&status=failed");
    assert_eq!(
        failed["runs"][0]["error"],
        "no candidate left after filtering"
    );

    // 2. Open it: every step in order, with counts and reasons.
    let run = api.ok(&format!("/runs/{run_id}"));
    let names: Vec<&str> = steps(&run)
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
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
    let filter = step(&run, "filter_candidates");
    let input = filter["input_count"].as_u64().unwrap();
    let output = filter["output_count"].as_u64().unwrap();
    let rejected: u64 = filter["rejections"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert_eq!(input, output + rejected, "every candidate is accounted for");
    assert!(
        filter["rejections"]["category_mismatch"]["count"]
            .as_u64()
            .unwrap()
            > 0
    );
    let allowed = &filter["attributes"]["allowed_categories"];
    assert!(
        allowed
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "laptop_stands"),
        "{allowed}"
    );
    let select = step(&run, "select_best");
    assert_eq!(select["decision"]["selected"], "laptop_stand_42");
    // Its lead over the runner-up is the select step's margin, as the rank step's is.
    let lead = select["decision"]["score"].as_f64().unwrap()
        - select["decision"]["runner_up_score"].as_f64().unwrap();
    assert!((select["margin"].as_f64().unwrap() - lead).abs() < 1e-9);
    assert_eq!(step(&run, "rank_by_relevance")["margin"], select["margin"]);

    // 3. Ask for the item's fate: the filter let it through, the ranker put it first, the
    // selector chose it.
    let fate = api.ok(&format!("/runs/{run_id}/items/laptop_stand_42"));
    let trail = crate::support::trail(&fate, "step_name");
    assert_eq!(
        trail,
        [
            ("filter_candidates", "accepted"),
            ("rank_by_relevance", "ranked"),
            ("select_best", "selected")
        ]
    );
    assert_eq!(fate["events"][0]["details"]["category"], "laptop_stands");
    let ranked = &fate["events"][1]["ranked"];
    assert_eq!(
        (
            ranked["position"].as_u64(),
            ranked["made_the_cut"].as_bool()
        ),
        (Some(1), Some(true))
    );
    let rank = step(&run, "rank_by_relevance");
    assert_eq!(rank["ranking"]["count"], rank["input_count"]);
    assert_eq!(rank["ranking"]["cutoff"], 1);

    // 4. Why was it a candidate at all? The keywords: "stand" came from a phone-case title.
    let keywords = step(&run, "generate_keywords");
    assert_eq!(keywords["input"]["product_title"], "iPhone 15 Case");
    let words = keywords["output"].as_array().unwrap();
    assert!(words.iter().any(|w| w == "stand"), "root cause: {words:?}");
    let search = step(&run, "search_products");
    assert!(search["output_count"].as_u64().unwrap() > output);

    // Across pipelines: filters that dropped over 90%, and low-confidence selections.
    let harsh = api.ok("/steps?step_type=filter&rejection_rate_gt=0.9");
    for s in harsh["steps"].as_array().unwrap() {
        assert!(s["rejection_rate"].as_f64().unwrap() > 0.9);
        assert_eq!(s["pipeline"], "competitor_selection");
    }
    let weak = api.ok("/steps?step_type=select&score_lt=0.5");
    let weak = weak["steps"].as_array().unwrap();
    assert_eq!(weak.len(), 1, "{weak:?}");
    assert!(weak[0]["decision"]["score"].as_f64().unwrap() < 0.5);
    let weak_run = api.ok(&format!("/runs/{}", weak[0]["run_id"].as_str().unwrap()));
    assert_eq!(
        weak_run["input"]["product_title"],
        "MagSafe Wallet Case for Pixel 8 Pro Max"
    );
}
