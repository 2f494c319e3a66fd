//! Rank provenance end to end: a rank step's ranking recorded by the SDK or posted, its cutoff
//! and the scores at the cut, the close-call search, and bad rankings refused with the field
//! named — each on SQLite and on PostgreSQL.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::*;

on_both_backends!(
    the_sdk_records_a_ranking_with_its_cut,
    close_calls_are_found_by_margin,
    bad_rankings_are_400_with_the_field_named,
);

fn rank_step(api: &Api, run_id: &str) -> Value {
    let run = api.ok(&format!("/runs/{run_id}"));
    let steps = run["steps"].as_array().expect("steps").clone();
    steps
        .into_iter()
        .find(|s| s["step_type"] == "rank")
        .expect("a rank step")
}

fn the_sdk_records_a_ranking_with_its_cut(backend: Backend) {
    let api = Api::start(backend);
    let xray = xray::XRay::builder()
        .endpoint(api.server.url.clone())
        .offline_mode(xray::OfflineMode::Fail)
        .batch_interval(Duration::from_millis(5))
        .client("search");
    let run = xray.run(json!({"q": "iphone case"}));
    let run_id = run.id().expect("recording").to_string();
    {
        let step = run.step("rank_by_relevance", xray::StepType::Rank);
        // 500 candidates, scored 1.0 down to 0.002; the top 10 go on.
        for i in 0..500u64 {
            let score = 1.0 - i as f64 / 500.0;
            if i == 11 {
                step.rank_with(
                    format!("case_{i}"),
                    i + 1,
                    score,
                    json!({"why": "no stock"}),
                );
            } else {
                step.rank(format!("case_{i}"), i + 1, score);
            }
        }
        step.set_cutoff(10);
    }
    run.finish().expect("delivered");
    xray.flush(Duration::from_secs(10)).expect("flushed");

    let step = rank_step(&api, &run_id);
    let ranking = &step["ranking"];
    assert_eq!(ranking["count"], 500);
    assert_eq!(ranking["cutoff"], 10);
    assert_eq!(ranking["cutoff_score"], 1.0 - 9.0 / 500.0);
    assert_eq!(ranking["first_out_score"], 1.0 - 10.0 / 500.0);
    let samples = ranking["samples"].as_array().expect("samples");
    assert_eq!(samples.len(), 100, "the top 50 and 50 of the other 450");
    assert_eq!(samples[11]["item_id"], "case_11");
    assert_eq!(samples[11]["position"], 12);
    assert_eq!(samples[11]["details"], json!({"why": "no stock"}));
    let margin = step["margin"].as_f64().expect("margin");
    assert!((margin - 1.0 / 500.0).abs() < 1e-12, "{margin}");
    // Counts follow from the ranking when the body gives none.
    assert_eq!(step["input_count"], 500);
    assert_eq!(step["output_count"], 10);

    // "Why did case_11 miss the top 10?": ranked #12, 0.002 under the cut.
    let fate = api.ok(&format!("/runs/{run_id}/items/case_11"));
    let events = fate["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{fate}");
    let e = &events[0];
    assert_eq!(e["outcome"], "ranked");
    assert_eq!(e["score"], 1.0 - 11.0 / 500.0);
    assert_eq!(e["details"], json!({"why": "no stock"}));
    let r = &e["ranked"];
    assert_eq!(
        (r["position"].clone(), r["cutoff"].clone()),
        (json!(12), json!(10))
    );
    assert_eq!(r["cutoff_score"], 1.0 - 9.0 / 500.0);
    assert_eq!(r["made_the_cut"], false);
    let missed = r["margin"].as_f64().expect("margin");
    assert!((missed + 2.0 / 500.0).abs() < 1e-12, "{missed}");
    let top = api.ok(&format!("/runs/{run_id}/items/case_0"));
    assert_eq!(top["events"][0]["ranked"]["made_the_cut"], true);
    // Across runs, through the item index.
    let history = api.ok("/items/case_11");
    let ranked: Vec<&Value> = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["outcome"] == "ranked")
        .collect();
    assert_eq!(ranked.len(), 1, "{history}");
    assert_eq!(ranked[0]["ranked"]["position"], 12);
    // An item of the tail the sampler did not keep: the step is named as having sampled.
    let kept: Vec<&str> = samples
        .iter()
        .map(|s| s["item_id"].as_str().expect("id"))
        .collect();
    let unkept = (50..500)
        .map(|i| format!("case_{i}"))
        .find(|id| !kept.contains(&id.as_str()))
        .expect("450 items, 50 kept");
    let fate = api.ok(&format!("/runs/{run_id}/items/{unkept}"));
    assert_eq!(fate["events"], json!([]));
    assert_eq!(fate["sampled_steps"], json!(["rank_by_relevance"]));
}

fn ranked_run(run_id: &str, minute: u32, scores: &[f64], cutoff: Option<u64>) -> Value {
    let samples: Vec<Value> = scores
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"item_id": format!("item_{i}"), "position": i + 1, "score": s}))
        .collect();
    let mut ranking = json!({"count": scores.len(), "samples": samples});
    if let Some(c) = cutoff {
        ranking["cutoff"] = json!(c);
    }
    json!({"run_id": run_id, "pipeline": "search", "started_at": at(minute, 0),
        "steps": [{"name": "rank", "step_type": "rank", "output_count": 2,
                   "ranking": ranking}]})
}

fn close_calls_are_found_by_margin(backend: Backend) {
    let api = Api::start(backend);
    // The cutoff given, or (without one) the step's output count: 2.
    api.save(&ranked_run("close", 1, &[0.9, 0.55, 0.549, 0.1], Some(2)));
    api.save(&ranked_run("wide", 2, &[0.9, 0.8, 0.2, 0.1], None));
    api.save(&ranked_run("unknown_cut", 3, &[0.9], Some(5)));
    let hits = api.ok("/steps?step_type=rank&margin_lt=0.01");
    let runs: Vec<&str> = hits["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["run_id"].as_str().expect("run"))
        .collect();
    assert_eq!(runs, ["close"]);
    let margin = hits["steps"][0]["margin"].as_f64().expect("margin");
    assert!((margin - 0.001).abs() < 1e-9, "{margin}");
    let wide = rank_step(&api, "wide");
    assert_eq!(wide["ranking"]["cutoff"], 2);
    assert_eq!(wide["ranking"]["cutoff_score"], 0.8);
    assert!((wide["margin"].as_f64().expect("margin") - 0.6).abs() < 1e-9);
    assert_eq!(rank_step(&api, "unknown_cut")["margin"], Value::Null);
    // A select step's close call: the chosen item's lead over the runner-up.
    for (run_id, minute, runner_up_score) in [("narrow_pick", 4, 0.695), ("clear_pick", 5, 0.2)] {
        api.save(
            &json!({"run_id": run_id, "pipeline": "search", "started_at": at(minute, 0),
            "steps": [{"name": "pick", "step_type": "select", "decision": {"selected": "a",
                "score": 0.7, "runner_up": "b", "runner_up_score": runner_up_score}}]}),
        );
    }
    let picks = api.ok("/steps?step_type=select&margin_lt=0.01");
    let picks = picks["steps"].as_array().expect("steps");
    assert_eq!(picks.len(), 1, "{picks:?}");
    assert_eq!(picks[0]["run_id"], "narrow_pick");
    assert_eq!(picks[0]["decision"]["runner_up"], "b");
    let (status, body) = api.get("/steps?margin_lt=abc");
    assert_eq!(status, 400, "{body}");
}

fn bad_rankings_are_400_with_the_field_named(backend: Backend) {
    let api = Api::start(backend);
    let cases = [
        (
            json!({"count": 1, "samples": [{"item_id": "a", "position": 0, "score": 0.5}]}),
            "ranking.samples[0].position",
        ),
        (
            json!({"count": 1, "samples": [{"item_id": "a", "position": -3, "score": 0.5}]}),
            "position",
        ),
        (
            json!({"count": 0, "samples": [{"item_id": "a", "position": 1, "score": 0.5}]}),
            "ranking.samples",
        ),
        (
            json!({"count": 1, "samples": [{"item_id": "a", "position": 1}]}),
            "score",
        ),
        // Beyond the largest whole number the schema allows (found by the fuzz suite).
        (
            json!({"count": 1, "cutoff": 9_223_372_036_854_775_808u64}),
            "ranking.cutoff",
        ),
        (
            json!({"count": 1, "samples": [{"item_id": "a", "position": u64::MAX, "score": 0.5}]}),
            "ranking.samples[0].position",
        ),
    ];
    for (ranking, field) in cases {
        let run = json!({"pipeline": "search", "steps": [
            {"name": "rank", "step_type": "rank", "ranking": ranking}]});
        let (status, body) = api.post("/runs", &run);
        assert_eq!(status, 400, "{ranking}: {body}");
        let msg = body["error"].as_str().expect("error");
        assert!(msg.contains(field), "{field} not in {msg}");
    }
    // NaN is not JSON: the body is refused, naming where.
    let raw = br#"{"pipeline": "search", "steps": [{"name": "rank", "step_type": "rank",
        "ranking": {"count": 1, "samples": [{"item_id": "a", "position": 1, "score": NaN}]}}]}"#;
    let (status, body) = api.post_raw("/runs", raw);
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().expect("error").contains("score"),
        "{body}"
    );
    assert!(api.ok("/runs")["runs"].as_array().expect("runs").is_empty());
}
