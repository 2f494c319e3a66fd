//! The async content pipeline: many runs at once on a multi-threaded runtime, each recorded whole
//! and alone, failures and weak selections findable over HTTP.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::{Api, Backend, TestServer};
use xray_examples::content_pipeline::write_post;

#[test]
fn parallel_async_runs_are_recorded_apart_with_their_failures() {
    let api = Api::on(TestServer::start(Backend::Sqlite));
    support::use_default_client(&api.server.url);

    let topics: Vec<String> = (0..10)
        .map(|i| format!("topic {i}"))
        .chain(["model timeout drill".to_string()])
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap();
    let results = rt.block_on(async {
        let tasks: Vec<_> = topics
            .iter()
            .map(|t| tokio::spawn(write_post(t.clone(), 30)))
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("no panic"));
        }
        out
    });
    xray::flush(Duration::from_secs(10)).expect("delivered");

    let runs = api.ok("/runs?pipeline=content_pipeline&limit=100");
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), topics.len());
    for (topic, result) in topics.iter().zip(&results) {
        let summary = runs
            .iter()
            .find(|r| r["input"]["topic"] == topic.as_str())
            .unwrap_or_else(|| panic!("no run for {topic}"));
        let run = api.ok(&format!("/runs/{}", summary["run_id"].as_str().unwrap()));
        let steps = run["steps"].as_array().unwrap();
        match result {
            Err(e) => {
                assert_eq!(run["status"], "failed", "{topic}");
                assert_eq!(run["error"], e.to_string());
                assert_eq!(steps.len(), 1, "it failed in its first step");
                assert_eq!(steps[0]["error"], e.to_string());
            }
            Ok(post) => {
                assert_eq!(run["status"], "completed", "{topic}");
                let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
                assert_eq!(
                    names,
                    ["generate_drafts", "validate", "score", "select"],
                    "{topic}"
                );
                let validate = &steps[1];
                assert_eq!(validate["input_count"], 12);
                let rejected: u64 = validate["rejections"]
                    .as_object()
                    .unwrap()
                    .values()
                    .map(|r| r["count"].as_u64().unwrap())
                    .sum();
                assert_eq!(
                    rejected + validate["acceptances"]["count"].as_u64().unwrap(),
                    12
                );
                // Helpers recorded after .await landed in this run's step, not another's.
                if let Some(off) = validate["rejections"].get("off_topic") {
                    for sample in off["samples"].as_array().unwrap() {
                        assert_eq!(sample["details"]["topic"], topic.as_str());
                    }
                }
                assert_eq!(steps[3]["decision"]["score"], post.score);
                assert_eq!(run["output"]["draft_id"], post.draft_id.as_str());
            }
        }
    }
    assert!(
        results.iter().any(Result::is_err),
        "the timeout topic failed"
    );

    let weak: Vec<f64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|p| p.score)
        .filter(|s| *s < 0.5)
        .collect();
    assert!(!weak.is_empty(), "some selections are weak");
    let found = api.ok("/steps?step_type=select&score_lt=0.5&pipeline=content_pipeline&limit=100");
    let mut found: Vec<f64> = found["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s: &Value| s["decision"]["score"].as_f64().unwrap())
        .collect();
    found.sort_by(f64::total_cmp);
    let mut weak = weak;
    weak.sort_by(f64::total_cmp);
    assert_eq!(found, weak);
}
