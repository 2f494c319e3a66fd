//! Items, on both backends: what happened to one item in a run and why (`GET
//! /runs/{id}/items/{item}`), and its history across runs and pipelines (`GET /items/{item}`).

use super::support::*;
use serde_json::json;

crate::on_both_backends!(
    item_fate_in_a_run_tells_what_happened_and_why,
    item_history_spans_runs_and_pipelines,
);

fn item_fate_in_a_run_tells_what_happened_and_why(backend: Backend) {
    let api = Api::start(backend);
    api.save(&seed_run("run_abc123", 0));

    let fate = api.ok("/runs/run_abc123/items/laptop_stand_42");
    assert_eq!(fate["item_id"], "laptop_stand_42");
    let events = fate["events"].as_array().unwrap();
    let trail = trail(&fate, "step_name");
    assert_eq!(
        trail,
        [
            ("filter_candidates", "accepted"),
            ("select_best", "selected")
        ]
    );
    assert_eq!(events[0]["details"]["category"], "stands");
    assert_eq!(events[1]["score"], 0.87);
    assert_eq!(events[1]["step_type"], "select");

    let rejected = api.ok("/runs/run_abc123/items/case_3");
    assert_eq!(rejected["events"][0]["outcome"], "rejected");
    assert_eq!(rejected["events"][0]["reason"], "price_too_high");
    assert_eq!(
        rejected["events"][0]["details"],
        json!({"price": 153, "threshold": 100})
    );
    assert_eq!(rejected["events"].as_array().unwrap().len(), 1);

    let unseen = api.ok("/runs/run_abc123/items/never_seen");
    assert_eq!(unseen["events"], json!([]));
    assert_eq!(
        unseen["sampled_steps"],
        json!(["filter_candidates"]),
        "where it may hide"
    );

    // Ids with URL and SQL characters are just ids.
    let mut odd = small_run("odd run", "p", 1, "completed", 1, 0.5, 1.0);
    odd["steps"][1]["rejections"]["too_long"]["samples"][0]["item_id"] = json!("a/b?c='d'; --");
    api.save(&odd);
    let fate = api.ok("/runs/odd%20run/items/a%2Fb%3Fc%3D'd'%3B%20--");
    assert_eq!(fate["events"][0]["reason"], "too_long");

    // Integer ids are the same as their text.
    let mut numeric = small_run("numeric", "p", 2, "completed", 1, 0.5, 1.0);
    numeric["steps"][1]["rejections"]["too_long"]["samples"][0]["item_id"] = json!(4242);
    api.save(&numeric);
    assert_eq!(
        api.ok("/runs/numeric/items/4242")["events"][0]["outcome"],
        "rejected"
    );
}

fn item_history_spans_runs_and_pipelines(backend: Backend) {
    let api = Api::start(backend);
    api.save(&seed_run("first", 0));
    api.save(&seed_run("second", 20));
    let mut other = small_run("elsewhere", "other_pipeline", 30, "completed", 1, 0.5, 1.0);
    other["steps"][1]["rejections"]["too_long"]["samples"][0]["item_id"] = json!("laptop_stand_42");
    api.save(&other);

    let history = api.ok("/items/laptop_stand_42");
    let trail = trail(&history, "run_id");
    assert_eq!(
        trail,
        [
            ("elsewhere", "rejected"),
            ("second", "selected"),
            ("second", "accepted"),
            ("first", "selected"),
            ("first", "accepted"),
        ],
        "newest step first"
    );
    let only = api.ok("/items/laptop_stand_42?pipeline=other_pipeline");
    assert_eq!(only["events"].as_array().unwrap().len(), 1);
    assert_eq!(only["events"][0]["pipeline"], "other_pipeline");
    assert_eq!(
        api.ok("/items/laptop_stand_42?limit=2")["events"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(api.ok("/items/nothing")["events"], json!([]));
}
