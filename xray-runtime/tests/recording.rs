//! The SDK against the real server: what a pipeline records arrives whole and exact.

mod support;

use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;
use support::fail_mode_client as client;
use support::*;
use xray::{Capture, Instrument, StepType};

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn a_run_arrives_with_exact_counts_samples_and_decision() {
    let server = TestServer::start(Backend::Sqlite);
    let (xray, _spool) = client(&server, "competitor_selection");

    let run = xray.run(json!({"product_title": "iPhone 15 Case"}));
    let keywords = run.step("generate_keywords", StepType::Generate);
    keywords.set_output(json!({"keywords": ["case", "stand"]}));
    keywords.set_attribute("model", "kw-v2");
    keywords.finish();

    let filter = run.step("filter_candidates", StepType::Filter);
    filter.set_input_count(5200);
    for i in 0..5000u64 {
        let reason = ["price_too_high", "low_rating", "category_mismatch"][(i % 3) as usize];
        filter.reject(i, reason, json!({"price": 100 + i}));
    }
    for i in 5000..5200u64 {
        filter.accept_with(i, json!({"price": 20}));
    }
    filter.finish();

    let select = run.step("select_best", StepType::Select);
    select.decide("5007", 0.87, json!({"why": "closest match"}));
    select.finish();
    run.set_output(json!({"selected": "5007"}));
    let run_id = run.id().unwrap().to_string();
    run.finish().expect("delivered");

    let stored = support::run(&server.url, &run_id);
    assert_eq!(stored["status"], "completed");
    assert_eq!(stored["pipeline"], "competitor_selection");
    assert_eq!(stored["input"]["product_title"], "iPhone 15 Case");
    assert_eq!(stored["output"]["selected"], "5007");
    assert!(stored["duration_ms"].as_f64().unwrap() >= 0.0);
    let steps = stored["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3);
    assert_eq!(steps[0]["output"]["keywords"][1], "stand");
    assert_eq!(steps[0]["attributes"]["model"], "kw-v2");

    let f = &steps[1];
    assert_eq!(f["input_count"], 5200);
    assert_eq!(f["output_count"], 200, "derived from the acceptances");
    assert_eq!(f["rejected_count"], 5000);
    assert_eq!(f["rejections"]["price_too_high"]["count"], 1667);
    assert_eq!(f["rejections"]["low_rating"]["count"], 1667);
    assert_eq!(f["rejections"]["category_mismatch"]["count"], 1666);
    for reason in ["price_too_high", "low_rating", "category_mismatch"] {
        let samples = f["rejections"][reason]["samples"].as_array().unwrap();
        assert_eq!(samples.len(), 50, "{reason}");
        let id: u64 = samples[0]["item_id"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            samples[0]["details"]["price"],
            100 + id,
            "details stay with their item"
        );
    }
    assert_eq!(f["acceptances"]["count"], 200);
    assert_eq!(
        f["acceptances"]["samples"].as_array().unwrap().len(),
        200,
        "up to 500 kept"
    );
    assert_eq!(
        steps[2]["decision"],
        json!({"selected": "5007", "score": 0.87, "details": {"why": "closest match"}})
    );
    assert_eq!(xray.stats().failed, 0);
    assert_eq!(xray.stats().sent, 5, "run started, 3 steps, run finished");
}

#[test]
fn capture_levels_keep_counts_always_and_items_as_asked() {
    let server = TestServer::start(Backend::Sqlite);
    let (xray, _spool) = client(&server, "capture");
    let run = xray.run(());
    for capture in [Capture::Minimal, Capture::Sample, Capture::Full] {
        let step = run.step_with_capture(format!("{capture}"), StepType::Filter, capture);
        for i in 0..120u64 {
            step.reject(i, "r", ());
        }
        step.finish();
    }
    let run_id = run.id().unwrap().to_string();
    run.finish().unwrap();
    let stored = support::run(&server.url, &run_id);
    let kept: Vec<(String, u64, usize)> = stored["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let r = &s["rejections"]["r"];
            (
                s["capture"].as_str().unwrap().to_string(),
                r["count"].as_u64().unwrap(),
                r["samples"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        kept,
        [
            ("minimal".to_string(), 120, 0),
            ("sample".to_string(), 120, 50),
            ("full".to_string(), 120, 120)
        ]
    );
}

#[test]
fn errors_and_panics_fail_the_run_and_the_step() {
    let server = TestServer::start(Backend::Sqlite);
    let (xray, _spool) = client(&server, "failing");

    let run = xray.run(json!({"n": 1}));
    let id_err = run.id().unwrap().to_string();
    let step = run.step("validate", StepType::Filter);
    step.set_error("schema mismatch");
    step.finish();
    assert!(run.fail("validation failed").is_ok());

    let x = xray.clone();
    let id_panic = std::thread::spawn(move || {
        let run = x.run(json!({"n": 2}));
        let id = run.id().unwrap().to_string();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _step = run.step("explode", StepType::Transform);
            panic!("boom");
        }));
        assert!(result.is_err());
        drop(run);
        id
    })
    .join()
    .unwrap();
    // A run dropped while its thread panics.
    let x = xray.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let _ = std::thread::spawn(move || {
        let run = x.run(json!({"n": 3}));
        tx.send(run.id().unwrap().to_string()).unwrap();
        panic!("the pipeline panicked");
    })
    .join();
    let id_dropped = rx.recv().unwrap();
    xray.flush(WAIT).unwrap();

    let failed = support::run(&server.url, &id_err);
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"], "validation failed");
    assert_eq!(failed["steps"][0]["error"], "schema mismatch");
    let exploded = support::run(&server.url, &id_panic);
    // The panic's message and place, as the panic hook saw them.
    let error = exploded["steps"][0]["error"].as_str().unwrap();
    assert!(error.starts_with("panicked at "), "{error}");
    assert!(
        error.contains("recording.rs:") && error.ends_with(": boom"),
        "{error}"
    );
    assert_eq!(
        exploded["status"], "completed",
        "the panic was caught before the run ended"
    );
    let dropped = support::run(&server.url, &id_dropped);
    assert_eq!(dropped["status"], "failed");
    let error = dropped["error"].as_str().unwrap();
    assert!(error.ends_with(": the pipeline panicked"), "{error}");
}

#[test]
fn helpers_record_into_the_current_step_across_threads() {
    let server = TestServer::start(Backend::Sqlite);
    let (xray, _spool) = client(&server, "context");

    fn check_price(id: u64, price: u64) -> bool {
        if price > 100 {
            xray::current_step().reject(id, "price_too_high", json!({"price": price}));
            false
        } else {
            xray::current_step().accept(id);
            true
        }
    }

    // Outside any step, helpers record nothing and nothing breaks.
    assert!(!xray::current_step().is_recording());
    assert!(check_price(1, 5));

    let run = xray.run(());
    let step = run.step("filter", StepType::Filter);
    let kept = step.in_scope(|| (0..10).filter(|i| check_price(*i, i * 20)).count());
    assert_eq!(kept, 6);
    // Carried into other threads explicitly.
    let ctx = step.in_scope(xray::Context::current);
    let handles: Vec<_> = (10..14)
        .map(|i| {
            let ctx = ctx.clone();
            std::thread::spawn(move || ctx.in_scope(|| check_price(i, 500)))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert!(!xray::current_step().is_recording(), "the scope ended");
    step.finish();
    let run_id = run.id().unwrap().to_string();
    run.finish().unwrap();
    let stored = support::run(&server.url, &run_id);
    assert_eq!(
        stored["steps"][0]["rejections"]["price_too_high"]["count"],
        8
    );
    assert_eq!(stored["steps"][0]["acceptances"]["count"], 6);
}

#[test]
fn context_follows_await_and_concurrent_runs_do_not_mix() {
    let server = TestServer::start(Backend::Sqlite);
    let (xray, _spool) = client(&server, "async");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap();

    async fn validate(run: u64, draft: u64) {
        tokio::time::sleep(Duration::from_millis(draft % 3)).await;
        tokio::task::yield_now().await;
        // Whatever thread this resumes on, the step is this run's.
        let item = format!("run{run}-draft{draft}");
        if draft.is_multiple_of(2) {
            xray::current_step().reject(item, "too_long", json!({"run": run}));
        } else {
            xray::current_step().accept(item);
        }
    }

    let ids: Vec<String> = rt.block_on(async {
        let mut tasks = Vec::new();
        for r in 0..8u64 {
            let xray = xray.clone();
            tasks.push(tokio::spawn(async move {
                let run = xray.run(json!({"run": r}));
                let step = run.step("validate", StepType::Filter);
                let ctx = step.in_scope(xray::Context::current);
                let mut drafts = Vec::new();
                for d in 0..10u64 {
                    drafts.push(tokio::spawn(validate(r, d).in_xray(ctx.clone())));
                }
                for d in drafts {
                    d.await.unwrap();
                }
                async { tokio::time::sleep(Duration::from_millis(2)).await }
                    .in_xray(ctx)
                    .await;
                step.finish();
                let id = run.id().unwrap().to_string();
                drop(run);
                id
            }));
        }
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.unwrap());
        }
        ids
    });
    xray.flush(WAIT).unwrap();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 8);
    for (r, id) in ids.iter().enumerate() {
        let stored = support::run(&server.url, id);
        let step = &stored["steps"][0];
        assert_eq!(step["rejections"]["too_long"]["count"], 5, "run {r}");
        assert_eq!(step["acceptances"]["count"], 5, "run {r}");
        let items: Vec<&Value> = step["rejections"]["too_long"]["samples"]
            .as_array()
            .unwrap()
            .iter()
            .chain(step["acceptances"]["samples"].as_array().unwrap())
            .collect();
        for s in items {
            let item = s["item_id"].as_str().unwrap();
            assert!(
                item.starts_with(&format!("run{r}-")),
                "{item} leaked into run {r}"
            );
        }
    }
}

#[test]
fn concurrent_runs_on_threads_keep_their_own_steps() {
    let server = TestServer::start(Backend::Sqlite);
    let (xray, _spool) = client(&server, "threads");
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|t| {
                let xray = xray.clone();
                s.spawn(move || {
                    let run = xray.run(json!({"thread": t}));
                    for k in 0..5 {
                        let step = run.step(format!("t{t}-s{k}"), StepType::Rank);
                        step.in_scope(|| xray::current_step().reject(t, "low", ()));
                    }
                    run.id().unwrap().to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    xray.flush(WAIT).unwrap();
    for (t, id) in ids.iter().enumerate() {
        let stored = support::run(&server.url, id);
        let names: Vec<String> = stored["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect();
        let expected: Vec<String> = (0..5).map(|k| format!("t{t}-s{k}")).collect();
        assert_eq!(names, expected);
    }
}

#[test]
fn late_and_no_op_recording_never_breaks_anything() {
    let server = TestServer::start(Backend::Sqlite);
    let (xray, _spool) = client(&server, "late");
    let run = xray.run(());
    let step = run.step("s", StepType::Select);
    let handle = step.handle();
    step.finish();
    handle.reject("x", "after_the_end", ()); // ignored, no panic
    handle.decide("x", f64::NAN, ());
    let none = xray::Step::none();
    none.reject("x", "nowhere", ());
    none.set_output(json!(1));
    run.finish().unwrap();
    assert_eq!(xray.stats().failed, 0);
}

/// Details that record into the same step while being serialised.
struct Reentrant<'a>(&'a xray::StepGuard);

impl serde::Serialize for Reentrant<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // A text id and details: bytes written into a recorder while the outer event's are
        // being written would be caught mixed into one or the other.
        self.0.reject("900", "inner", "inner details");
        s.serialize_str("outer")
    }
}

#[test]
fn the_guard_its_handles_and_other_threads_record_into_one_step() {
    let server = TestServer::start(Backend::Sqlite);
    let (xray, _spool) = client(&server, "mixed");
    let run = xray.run(());
    let step = run.step_with_capture("mixed", StepType::Filter, Capture::Full);
    let handle = step.handle();
    // The guard (no lock on this thread) and a handle (locked), interleaved.
    for i in 0..6u64 {
        if i % 2 == 0 {
            step.reject(i, "r", json!({"i": i}));
        } else {
            handle.reject(i, "r", json!({"i": i}));
        }
    }
    step.accept(100u64);
    handle.accept_with(101u64, "via handle");
    step.reject_count("r", 4);
    // Other threads record through handles (a guard is `Send`, not `Sync`): the locked way.
    std::thread::scope(|s| {
        for t in 0..3u64 {
            let step = step.handle();
            s.spawn(move || {
                for i in 0..10 {
                    step.reject(1000 + t * 100 + i, "threads", ());
                }
            });
        }
    });
    // A re-entrant call while the guard's own recorder is busy (it goes to the step's): a reason
    // not met before, then met before, and an acceptance with details.
    step.reject(800u64, "outer", Reentrant(&step));
    step.reject(801u64, "outer", Reentrant(&step));
    step.accept_with(802u64, Reentrant(&step));
    step.finish();
    let run_id = run.id().unwrap().to_string();
    run.finish().unwrap();

    let stored = support::run(&server.url, &run_id);
    let s = &stored["steps"][0];
    let ids = |v: &Value| -> Vec<String> {
        v["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["item_id"].as_str().unwrap().to_string())
            .collect()
    };
    let r = &s["rejections"]["r"];
    assert_eq!(r["count"], 10);
    assert_eq!(
        ids(r),
        ["0", "1", "2", "3", "4", "5"],
        "in order of arrival"
    );
    for sample in r["samples"].as_array().unwrap() {
        assert_eq!(
            sample["details"]["i"].as_u64().unwrap().to_string(),
            sample["item_id"].as_str().unwrap()
        );
    }
    assert_eq!(s["rejections"]["threads"]["count"], 30);
    assert_eq!(s["rejections"]["inner"]["count"], 3);
    assert_eq!(ids(&s["rejections"]["inner"]), ["900", "900", "900"]);
    for sample in s["rejections"]["inner"]["samples"].as_array().unwrap() {
        assert_eq!(sample["details"], "inner details");
    }
    assert_eq!(ids(&s["rejections"]["outer"]), ["800", "801"]);
    for sample in s["rejections"]["outer"]["samples"].as_array().unwrap() {
        assert_eq!(sample["details"], "outer");
    }
    assert_eq!(ids(&s["acceptances"]), ["100", "101", "802"]);
    assert_eq!(s["acceptances"]["samples"][1]["details"], "via handle");
    assert_eq!(s["acceptances"]["samples"][2]["details"], "outer");
    assert_eq!(s["input_count"], 10 + 30 + 3 + 3 + 2);
}

#[test]
fn entered_contexts_can_be_left_in_any_order() {
    let server = TestServer::start(Backend::Sqlite);
    let (xray, _spool) = client(&server, "order");
    let run = xray.run(());
    let outer = run.step("outer", StepType::Filter);
    let inner = run.step("inner", StepType::Filter);
    let entered_outer = outer.enter();
    let entered_inner = inner.enter();
    // Left out of order: the inner step is still entered, so it stays current.
    drop(entered_outer);
    xray::current_step().reject(1u64, "while_inner", ());
    drop(entered_inner);
    xray::current_step().reject(2u64, "nowhere", ());
    outer.finish();
    inner.finish();
    let run_id = run.id().unwrap().to_string();
    run.finish().unwrap();
    let stored = support::run(&server.url, &run_id);
    let steps = stored["steps"].as_array().unwrap();
    let step = |name: &str| steps.iter().find(|s| s["name"] == name).unwrap().clone();
    assert_eq!(step("inner")["rejections"]["while_inner"]["count"], 1);
    assert!(step("outer")["rejections"].get("while_inner").is_none());
    for s in steps {
        assert!(
            s["rejections"].get("nowhere").is_none(),
            "no step was current"
        );
    }
}
