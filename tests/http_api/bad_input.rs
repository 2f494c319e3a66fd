//! Bad input, on both backends: every malformed body or query is a 4xx whose message names the
//! field or parameter and what is accepted; unknown things are 404, oversized bodies 413; and a
//! refused request changes nothing stored.

use super::support::*;
use serde_json::{json, Value};

crate::on_both_backends!(
    malformed_bodies_are_400_with_the_field_named,
    malformed_queries_are_400_with_the_parameter_named,
    unknown_things_are_404,
    an_oversized_body_is_413,
    bad_requests_change_nothing_stored,
);

/// Asserts an error answer: its status, and a message naming each of `needles`.
pub fn bad(status_and_body: (u16, Value), status: u16, needles: &[&str]) {
    let (got, body) = status_and_body;
    assert_eq!(got, status, "{body}");
    let message = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message: {body}"));
    assert!(body["code"].is_string(), "{body}");
    for needle in needles {
        assert!(
            message.contains(needle),
            "`{message}` should mention `{needle}`"
        );
    }
}

fn malformed_bodies_are_400_with_the_field_named(backend: Backend) {
    let api = Api::start(backend);
    bad(
        api.post_raw("/runs", b"{\"pipeline\": "),
        400,
        &["invalid JSON"],
    );
    bad(api.post_raw("/runs", b"not json"), 400, &["invalid JSON"]);
    bad(api.post_raw("/runs", b""), 400, &["empty"]);
    bad(
        api.post_raw("/ingest", b"{\"events\": []} trailing"),
        400,
        &["invalid JSON"],
    );
    bad(
        api.post("/runs", &json!({"status": "completed"})),
        400,
        &["pipeline"],
    );

    let with_step = |step: Value| json!({"pipeline": "p", "steps": [step]});
    bad(
        api.post(
            "/runs",
            &with_step(json!({"name": "f", "step_type": "filtre"})),
        ),
        400,
        &[
            "steps[0].step_type",
            "filtre",
            "did you mean `filter`",
            "generate, retrieve, filter, rank, select, transform",
        ],
    );
    bad(
        api.post(
            "/runs",
            &with_step(json!({"name": "f", "step_type": "filter", "input_count": "ten"})),
        ),
        400,
        &["steps[0].input_count"],
    );
    bad(
        api.post(
            "/runs",
            &with_step(json!({"name": "f", "step_type": "filter", "output_count": -3})),
        ),
        400,
        &["steps[0].output_count"],
    );
    bad(
        api.post(
            "/runs",
            &with_step(json!({"name": "f", "step_type": "filter", "capture": "all"})),
        ),
        400,
        &["capture", "minimal, sample, full"],
    );
    bad(
        api.post(
            "/runs",
            &with_step(json!({"name": "f", "step_type": "filter", "inptu_count": 3})),
        ),
        400,
        &["inptu_count"],
    );
    bad(
        api.post(
            "/runs",
            &with_step(json!({"name": "", "step_type": "filter"})),
        ),
        400,
        &["steps[0].name", "empty"],
    );
    bad(
        api.post(
            "/runs",
            &with_step(json!({"name": "f", "step_type": "rank", "duration_ms": -1})),
        ),
        400,
        &["steps[0].duration_ms"],
    );
    bad(
        api.post(
            "/runs",
            &with_step(json!({"name": "f", "step_type": "filter",
                "rejections": {"x": {"count": 1, "samples": [{"item_id": 1}, {"item_id": 2}]}}})),
        ),
        400,
        &["steps[0].rejections.x", "2 samples but a count of 1"],
    );
    bad(
        api.post("/runs", &json!({"pipeline": "p\u{0}", "steps": []})),
        400,
        &["pipeline", "NUL"],
    );
    bad(
        api.post("/runs", &json!({"pipeline": "p", "status": "done"})),
        400,
        &["status", "completed"],
    );
    bad(
        api.post(
            "/runs",
            &with_step(json!({"name": "s", "step_type": "select",
                "decision": {"selected": "a\u{0}b", "score": 0.5}})),
        ),
        400,
        &["steps[0].decision.selected", "NUL"],
    );
    // Every name follows one rule (`xray_wire::Name`), and a refusal names the field.
    bad(
        api.post(
            "/runs",
            &with_step(json!({"name": "f", "step_type": "filter",
                "rejections": {"": {"count": 1}}})),
        ),
        400,
        &["steps[0].rejections", "reason", "must not be empty"],
    );
    bad(
        api.post(
            "/runs",
            &with_step(json!({"name": "f", "step_type": "filter",
                "rejections": {"x": {"count": 1, "samples": [{"item_id": "i".repeat(513)}]}}})),
        ),
        400,
        &[
            "steps[0].rejections.x.samples[0].item_id",
            "513 bytes",
            "at most 512",
        ],
    );
    bad(
        api.post(
            "/runs",
            &json!({"pipeline": "p", "correlation_id": "a\u{0}b"}),
        ),
        400,
        &["correlation_id", "NUL"],
    );
    bad(
        api.post(
            "/runs",
            &json!({"pipeline": "p", "steps": [
                {"name": "a", "step_type": "rank", "position": 1},
                {"name": "b", "step_type": "rank", "position": 1}]}),
        ),
        400,
        &["steps[1].step_id", "used by another step"],
    );
    // Counts at the limits are stored, not a crash.
    let (status, _) = api.post(
        "/runs",
        &with_step(json!({"name": "huge", "step_type": "filter",
            "rejections": {"r": {"count": i64::MAX}}, "acceptances": {"count": 5}})),
    );
    assert_eq!(status, 201);

    let event = |e: Value| json!({"events": [e]});
    bad(
        api.post("/ingest", &event(json!({"run_paused": {"run_id": "r"}}))),
        400,
        &["events[0]", "run_paused"],
    );
    bad(
        api.post(
            "/ingest",
            &event(json!({"step_finished": {"run_id": "r", "pipeline": "p",
            "step": {"name": "f", "step_type": "filter", "position": 0, "started_at": at(0, 0)}}})),
        ),
        400,
        &["events[0].step_finished.step.step_id", "required"],
    );
    bad(
        api.post(
            "/ingest",
            &event(json!({"run_finished": {"run_id": "r", "pipeline": "p",
            "started_at": at(0, 0), "ended_at": at(0, 1), "status": "running"}})),
        ),
        400,
        &["events[0].run_finished.status"],
    );
    bad(
        api.post(
            "/ingest",
            &event(json!({"run_started": {"run_id": "r", "pipeline": "p",
            "started_at": "yesterday"}})),
        ),
        400,
        &["events[0].run_started.started_at", "RFC 3339", "yesterday"],
    );
    bad(api.post("/ingest", &json!([])), 400, &["invalid"]);
}

fn malformed_queries_are_400_with_the_parameter_named(backend: Backend) {
    let api = Api::start(backend);
    bad(
        api.get("/steps?step_type=filter&rejecton_rate_gt=0.9"),
        400,
        &["rejecton_rate_gt", "did you mean `rejection_rate_gt`"],
    );
    bad(
        api.get("/steps?rejection_rate_gt=abc"),
        400,
        &["rejection_rate_gt", "number", "abc"],
    );
    bad(api.get("/steps?duration_gt=NaN"), 400, &["duration_gt"]);
    bad(api.get("/steps?score_lt=1e999"), 400, &["score_lt"]);
    bad(
        api.get("/steps?step_type=filters"),
        400,
        &["step_type", "did you mean `filter`"],
    );
    bad(api.get("/steps?limit=0"), 400, &["limit", "1 to 1000"]);
    bad(api.get("/steps?limit=5000"), 400, &["limit"]);
    bad(api.get("/steps?limit=ten"), 400, &["limit"]);
    bad(api.get("/steps?cursor=garbage"), 400, &["cursor"]);
    bad(
        api.get("/steps?since=last-tuesday"),
        400,
        &["since", "RFC 3339"],
    );
    bad(
        api.get("/runs?status=done"),
        400,
        &["status", "running, completed, failed"],
    );
    bad(api.get("/runs?until=2026-13-45"), 400, &["until"]);
    bad(
        api.get("/runs?pipeline=a&pipeline=b"),
        400,
        &["pipeline", "more than once"],
    );
    bad(
        api.get("/runs?step_type=filter"),
        400,
        &["step_type", "accepted: pipeline"],
    );
    bad(api.get("/items/x?limit=-1"), 400, &["limit"]);
    bad(
        api.get("/runs/x?verbose=1"),
        400,
        &["verbose", "no query parameters"],
    );
}

fn unknown_things_are_404(backend: Backend) {
    let api = Api::start(backend);
    bad(api.get("/runs/no_such_run"), 404, &["no_such_run"]);
    bad(api.get("/runs/no_such_run/items/x"), 404, &["no_such_run"]);
    bad(api.get("/nowhere"), 404, &["GET /nowhere", "GET /steps"]);
}

fn an_oversized_body_is_413(backend: Backend) {
    let api = Api::on(TestServer::start_with(backend, 4096));
    let mut big = seed_run("big", 0);
    big["input"] = json!("x".repeat(5000));
    bad(api.post("/runs", &big), 413, &["4096"]);
    let events = run_events("big", "p", 0, 40);
    bad(
        api.post("/ingest", &json!({ "events": events })),
        413,
        &["limit"],
    );
    bad(api.get("/runs/big"), 404, &["big"]);
    api.save(&small_run("small", "p", 0, "completed", 1, 0.5, 1.0));
}

fn bad_requests_change_nothing_stored(backend: Backend) {
    let api = Api::start(backend);
    api.save(&seed_run("keep", 0));
    let before = api.ok("/runs/keep");
    // The same run again, broken in each way: every write is refused whole.
    let mut broken = seed_run("keep", 0);
    broken["steps"][4]["step_type"] = json!("choose");
    broken["output"] = json!("overwritten?");
    bad(api.post("/runs", &broken), 400, &["steps[4].step_type"]);
    let mut events = run_events("keep", "competitor_selection", 0, 2);
    events[1]["step_finished"]["step"]["rejections"]["too_small"]["count"] = json!(0);
    bad(
        api.post("/ingest", &json!({ "events": [events[1]] })),
        400,
        &["events[0].step_finished.step.rejections"],
    );
    bad(
        api.post_raw("/ingest", b"{\"events\": [{\"run_finished\": {"),
        400,
        &["JSON"],
    );
    assert_eq!(api.ok("/runs/keep"), before);
    assert_eq!(api.ok("/runs")["runs"].as_array().unwrap().len(), 1);
}
