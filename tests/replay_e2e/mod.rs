//! Replay in the SDK, end to end against a real server: record the seed's bad run, replay it
//! and one of its steps with the keyword fix, and every way a replay is refused — before it
//! stores anything.

use crate::support::{at, Api, Backend, TestServer};
use serde_json::{json, Value};
use std::time::Duration;
use xray_examples::catalog;
use xray_examples::competitor_selection::{select_competitor, use_keyword_fix};
use xray_replay::{ReplayContext, ReplayError};

/// A replayable run whose input can be as large as a test wants.
#[xray::run(pipeline = "replay_sizes", replay)]
fn measure(text: String) -> usize {
    text.len()
}

/// A replayable run that calls another: only the outer one is the replay.
#[xray::run(pipeline = "replay_nested", replay)]
fn outer(text: String) -> usize {
    measure(text)
}

fn replays_of(api: &Api, of: &str) -> usize {
    api.ok(&format!("/runs?replay_of={of}"))["runs"]
        .as_array()
        .expect("runs")
        .len()
}

fn catalog_context() -> ReplayContext {
    ReplayContext::new().provide("catalog", catalog::shipped())
}

pub fn record_then_replay_with_the_fix(backend: Backend) {
    let api = Api::on(TestServer::start(backend));
    crate::support::use_default_client(&api.server.url);
    let catalog = catalog::shipped();
    use_keyword_fix(false);
    let bad = select_competitor("iPhone 15 Case", 100.0, &catalog).expect("a selection");
    assert_eq!(bad.product_id, "laptop_stand_42");
    xray::flush(Duration::from_secs(10)).expect("delivered");
    let run_id = bad.run_id.expect("recorded");

    // The whole run, with the fix.
    use_keyword_fix(true);
    let report = xray_replay::run(&run_id, &catalog_context()).expect("replayed");
    assert_eq!(report.replay_of, run_id);
    let select = report.step("select_best").expect("select_best");
    let (before, after) = (select.original.as_ref(), select.replayed.as_ref());
    assert_eq!(
        before.and_then(|s| s.selected.as_deref()),
        Some("laptop_stand_42")
    );
    let chosen = after.and_then(|s| s.selected.clone()).expect("a choice");
    assert!(chosen.starts_with("case_"), "a phone case: {chosen}");
    let filter = report.step("filter_candidates").expect("filter");
    let mismatch = |f: Option<&xray::wire::StepFacts>| f.map(|f| f.rejections["category_mismatch"]);
    assert!(
        mismatch(filter.replayed.as_ref()) > mismatch(filter.original.as_ref()),
        "{filter:?}"
    );
    assert!(report.changed());
    assert!(
        report
            .to_string()
            .contains(&format!("chose laptop_stand_42 (0.715) → {chosen} (")),
        "{report}"
    );
    let stored = api.ok(&format!("/runs/{}", report.replay_run_id));
    assert_eq!(stored["replay_of"], run_id.as_str());
    assert_eq!(stored["output"]["product_id"], chosen.as_str());
    assert_eq!(
        stored["input"],
        api.ok(&format!("/runs/{run_id}"))["input"],
        "the replay ran on the captured input"
    );

    // One step, by position and by id: the keywords lose "stand".
    let original = api.ok(&format!("/runs/{run_id}"));
    let keywords = &original["steps"][0];
    assert_eq!(keywords["name"], "generate_keywords");
    for step in ["0", keywords["step_id"].as_str().expect("id")] {
        let report = xray_replay::step(&run_id, step, &ReplayContext::new()).expect("replayed");
        assert_eq!(report.replay_of, format!("{run_id}:0"));
        assert_eq!(report.steps.len(), 1, "{report}");
        let replayed = report.steps[0].replayed.as_ref().expect("replayed");
        let words: Vec<String> =
            serde_json::from_str(replayed.output.as_ref().expect("output").get()).expect("words");
        assert_eq!(words, ["iphone", "15", "case", "cover", "holder"]);
        let stored = api.ok(&format!("/runs/{}", report.replay_run_id));
        assert_eq!(stored["replay_of"], format!("{run_id}:0"));
        assert_eq!(stored["pipeline"], "competitor_selection");
    }
    assert_eq!(replays_of(&api, &format!("{run_id}:0")), 2);

    // Refused, each before anything is stored.
    let refused = |result: Result<xray_replay::ReplayReport, ReplayError>| {
        result.expect_err("refused").to_string()
    };
    let e = refused(xray_replay::step(&run_id, "1", &ReplayContext::new()));
    assert!(
        e.contains("step `search_products` (position 1)")
            && e.contains("recorded without `replay`"),
        "{e}"
    );
    let e = refused(xray_replay::step(&run_id, "9", &ReplayContext::new()));
    assert!(e.contains("has no step `9`"), "{e}");
    let e = refused(xray_replay::run(&run_id, &ReplayContext::new()));
    assert!(
        e.contains("argument `catalog`") && e.contains("provide(\"catalog\""),
        "{e}"
    );
    let e = refused(xray_replay::run(
        &run_id,
        &ReplayContext::new().provide("catalog", "not a catalog"),
    ));
    assert!(e.contains("was provided as a &str"), "{e}");
    let e = refused(xray_replay::run("no-such-run", &catalog_context()));
    assert!(
        e.contains("run `no-such-run` is not on the X-Ray server"),
        "{e}"
    );
    assert_eq!(
        replays_of(&api, &run_id),
        1,
        "only the first replay stored a run"
    );

    // Inputs a replay cannot read back: not registered here, not a String, over the limit.
    let started = at(5, 0);
    api.save(
        &json!({"run_id": "elsewhere", "pipeline": "not_in_this_program",
        "started_at": started, "metadata": {"xray_replay": true}}),
    );
    let e = refused(xray_replay::run("elsewhere", &ReplayContext::new()));
    assert!(
        e.contains("no `replay` function for pipeline `not_in_this_program`"),
        "{e}"
    );
    api.save(
        &json!({"run_id": "number", "pipeline": "replay_sizes", "started_at": started,
        "input": {"text": 5}, "metadata": {"xray_replay": true}}),
    );
    let e = refused(xray_replay::run("number", &ReplayContext::new()));
    assert!(
        e.contains("argument `text` of `") && e.contains("invalid type: integer `5`"),
        "{e}"
    );

    let limit = xray::Config::from_env().max_replay_input_bytes;
    assert_eq!(measure("x".repeat(limit + 1)), limit + 1);
    assert_eq!(measure("small".into()), 5);
    xray::flush(Duration::from_secs(10)).expect("delivered");
    let runs = api.ok("/runs?pipeline=replay_sizes&limit=10")["runs"].clone();
    let by_size = |n: usize| -> Value {
        runs.as_array()
            .expect("runs")
            .iter()
            .find(|r| r["output"] == n)
            .cloned()
            .expect("the run")
    };
    let (big, small) = (by_size(limit + 1), by_size(5));
    let mark = big["metadata"]["xray_replay"]["error"]
        .as_str()
        .expect("why");
    assert!(
        mark.contains(&format!("over the replay limit of {limit} bytes")),
        "{mark}"
    );
    assert_eq!(
        big["input"]["text"]["_xray_truncated"], true,
        "cut to a preview"
    );
    let e = refused(xray_replay::run(
        big["run_id"].as_str().expect("id"),
        &ReplayContext::new(),
    ));
    assert!(
        e.contains("cannot be replayed: the input is over the replay limit"),
        "{e}"
    );
    let small_id = small["run_id"].as_str().expect("id");
    let report = xray_replay::run(small_id, &ReplayContext::new()).expect("replayed");
    assert!(!report.changed(), "{report}");
    assert_eq!(outer("nested".into()), 6);
    xray::flush(Duration::from_secs(10)).expect("delivered");
    let nested = api.ok("/runs?pipeline=replay_nested")["runs"][0]["run_id"].clone();
    let nested = nested.as_str().expect("the outer run");
    let report = xray_replay::run(nested, &ReplayContext::new()).expect("replayed");
    let stored = api.ok(&format!("/runs/{}", report.replay_run_id));
    assert_eq!(
        (&stored["pipeline"], &stored["replay_of"]),
        (&json!("replay_nested"), &json!(nested))
    );

    // The server goes away: a clear error, and nothing recorded for later.
    let before = xray::stats();
    drop(api);
    match xray_replay::run(small_id, &ReplayContext::new()) {
        Err(ReplayError::Unreachable { endpoint, .. }) => assert!(endpoint.starts_with("http://")),
        other => panic!("expected the server to be unreachable: {other:?}"),
    }
    let _ = xray::flush(Duration::from_secs(1));
    let after = xray::stats();
    assert_eq!(
        (after.sent, after.spooled, after.dropped, after.failed),
        (before.sent, before.spooled, before.dropped, before.failed),
        "the failed replay sent nothing"
    );
}
