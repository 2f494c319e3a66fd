//! Bad input loses nothing: names and ids the server would refuse (empty, over 512 bytes, with a
//! NUL) and errors with a NUL are fitted by the SDK, so the step and the run's end still arrive.

mod support;

use serde_json::{json, Value};
use support::fail_mode_client as client;
use support::*;
use xray::{Capture, StepType};

/// The item ids of a rejection reason's samples.
fn ids(reason: &Value) -> Vec<String> {
    reason["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["item_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_step_with_bad_ids_and_reasons_and_a_run_failed_with_a_nul_all_arrive_fitted() {
    let server = TestServer::start(Backend::Sqlite);
    let (xray, _spool) = client(&server, "bad_names");

    // 600 bytes each, with a multi-byte character across the cut (at byte 509).
    let long_id = format!("{}{}", "a".repeat(507), "€".repeat(31));
    let long_reason = format!("{}{}", "b".repeat(508), "é".repeat(46));
    assert_eq!((long_id.len(), long_reason.len()), (600, 600));
    let fitted_id = format!("{}…", "a".repeat(507));
    let fitted_reason = format!("{}…", "b".repeat(508));

    let run = xray.run(());
    let run_id = run.id().unwrap().to_string();
    let filter = run.step_with_capture("filter", StepType::Filter, Capture::Full);
    for i in 0..1000u64 {
        filter.reject(i, "too_far", json!({"km": i}));
    }
    filter.reject("", "too_far", ());
    filter.reject(long_id.as_str(), "too_far", json!({"long": true}));
    filter.reject("e1", "", ());
    filter.reject("l1", long_reason.as_str(), ());
    filter.reject("n1", "bad\0reason", ());
    filter.accept("");
    filter.finish();

    // An empty name, and an empty chosen item.
    let select = run.step("", StepType::Select);
    select.decide("", 0.5, json!({"why": "only one"}));
    select.finish();
    assert!(run.fail("bad\0thing").is_ok(), "the run's end was stored");

    let stored = support::run(&server.url, &run_id);
    assert_eq!(stored["status"], "failed", "the run ended");
    assert_eq!(stored["error"], "bad\u{FFFD}thing");
    let steps = stored["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);

    let f = &steps[0];
    assert_eq!(f["rejected_count"], 1005);
    assert_eq!(f["acceptances"]["count"], 1);
    let rejections = f["rejections"].as_object().unwrap();
    assert_eq!(rejections.len(), 4, "{:?}", rejections.keys());
    let too_far = &rejections["too_far"];
    assert_eq!(too_far["count"], 1002);
    let kept = ids(too_far);
    assert_eq!(kept.len(), 1002, "full keeps every item");
    assert!(kept.contains(&"(empty)".to_string()));
    assert!(kept.contains(&fitted_id), "the long id, cut");
    assert_eq!(fitted_id.len(), 510);
    let long = too_far["samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["item_id"] == fitted_id.as_str())
        .unwrap();
    assert_eq!(
        long["details"],
        json!({"long": true}),
        "details stay with it"
    );
    assert_eq!(rejections["(empty)"]["count"], 1);
    assert_eq!(ids(&rejections["(empty)"]), ["e1"]);
    assert_eq!(rejections[&fitted_reason]["count"], 1);
    assert_eq!(ids(&rejections[&fitted_reason]), ["l1"]);
    assert_eq!(rejections["bad\u{FFFD}reason"]["count"], 1);
    assert_eq!(ids(&f["acceptances"]), ["(empty)"]);

    let s = &steps[1];
    assert_eq!(s["name"], "(empty)");
    assert_eq!(s["decision"]["selected"], "(empty)");
    assert_eq!(s["decision"]["details"]["why"], "only one");

    let stats = xray.stats();
    assert_eq!(stats.failed, 0, "{stats:?}");
    assert_eq!(stats.sent, 4, "run started, 2 steps, run finished");
}

#[test]
fn reasons_that_fit_to_one_name_are_merged_with_exact_counts() {
    let server = TestServer::start(Backend::Sqlite);
    let (xray, _spool) = client(&server, "");

    let run = xray.run(());
    let run_id = run.id().unwrap().to_string();
    let step = run.step_with_capture("merge", StepType::Filter, Capture::Sample);
    for i in 0..300u64 {
        step.reject(i, "", ());
    }
    for i in 1000..1100u64 {
        step.reject(i, "(empty)", ());
    }
    step.reject_count("", 7);
    step.finish();
    run.finish().expect("delivered");

    let stored = support::run(&server.url, &run_id);
    assert_eq!(
        stored["pipeline"], "(empty)",
        "an empty pipeline name, fitted"
    );
    let r = &stored["steps"][0]["rejections"];
    assert_eq!(r.as_object().unwrap().len(), 1);
    assert_eq!(r["(empty)"]["count"], 407);
    let kept = ids(&r["(empty)"]);
    assert_eq!(kept.len(), 50, "up to the per-reason cap");
    assert!(
        kept.iter().any(|id| id.len() == 4),
        "both reasons' samples kept"
    );
    assert_eq!(stored["steps"][0]["rejected_count"], 407);
    assert_eq!(xray.stats().failed, 0);
}
