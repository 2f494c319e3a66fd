//! `POST /v1/traces` with OTLP JSON written by hand to the spec: OpenInference spans become steps
//! of their types, a re-sent export is stored once, the spans of a trace sent in several
//! requests (children first) make one run in start order, a trace without its root is still a
//! run, bad input is refused with a message (a bad span alone, in `partialSuccess`), gzip is
//! read. On SQLite and on PostgreSQL.

mod support;

use serde_json::{json, Value};
use std::io::Write;
use support::*;

on_both_backends!(
    openinference_spans_become_steps_of_their_types,
    a_resent_export_is_stored_once,
    children_before_their_root_across_requests_make_one_run,
    a_trace_without_its_root_is_still_a_run,
    bad_input_is_refused_with_a_message,
    a_gzipped_export_is_read,
    hostile_spans_are_refused_or_fitted_never_a_500,
    rank_events_become_the_steps_ranking,
);

const TRACE: &str = "5b8efff798038103d269b633813fc60c";
/// 2026-11-20T10:00:00Z in nanoseconds.
const T0: u64 = 1_795_168_800_000_000_000;

fn attr(key: &str, value: &Value) -> Value {
    let v = match value {
        Value::String(s) => json!({"stringValue": s}),
        Value::Number(n) if n.is_i64() => json!({"intValue": n.to_string()}),
        Value::Number(n) => json!({"doubleValue": n}),
        Value::Bool(b) => json!({"boolValue": b}),
        other => panic!("no OTLP value for {other}"),
    };
    json!({"key": key, "value": v})
}

fn attrs(map: Value) -> Value {
    Value::Array(
        map.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| attr(k, v))
            .collect(),
    )
}

/// A span of `TRACE`: id `n` (as 16 hex digits), parent `parent` (0: none), running from second
/// `start` to `end`.
fn span(n: u64, parent: u64, name: &str, start: u64, end: u64, a: Value) -> Value {
    let mut s = json!({
        "traceId": TRACE, "spanId": format!("{n:016x}"), "name": name, "kind": 1,
        "startTimeUnixNano": (T0 + start * 1_000_000_000).to_string(),
        "endTimeUnixNano": (T0 + end * 1_000_000_000).to_string(),
        "attributes": attrs(a), "status": {}
    });
    if parent != 0 {
        s["parentSpanId"] = json!(format!("{parent:016x}"));
    }
    s
}

fn export(spans: Vec<Value>) -> Value {
    json!({"resourceSpans": [{
        "resource": {"attributes": [attr("service.name", &json!("rag_service"))]},
        "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}]
    }]})
}

fn send(api: &Api, body: &Value) -> Value {
    let (status, answer) = api.post("/v1/traces", body);
    assert_eq!(status, 200, "{answer}");
    answer
}

fn step_names(run: &Value) -> Vec<(String, String, u64)> {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["step_type"].as_str().unwrap().to_string(),
                s["position"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn rag_trace() -> Vec<Value> {
    let kind = |k: &str| json!({"openinference.span.kind": k});
    let mut root = kind("CHAIN");
    root["input.value"] = json!("what is a case?");
    root["output.value"] = json!(r#"{"answer": "a cover"}"#);
    root["output.mime_type"] = json!("application/json");
    vec![
        span(1, 0, "rag", 0, 10, root),
        span(2, 1, "retrieve_docs", 1, 2, kind("RETRIEVER")),
        span(3, 1, "rerank", 3, 4, kind("RERANKER")),
        span(4, 1, "answer", 5, 9, {
            let mut a = kind("LLM");
            a["llm.model_name"] = json!("gpt-x");
            a
        }),
        span(5, 4, "format_prompt", 5, 6, kind("PROMPT")),
    ]
}

fn openinference_spans_become_steps_of_their_types(backend: Backend) {
    let api = Api::start(backend);
    assert_eq!(send(&api, &export(rag_trace())), json!({}));
    let run = api.ok(&format!("/runs/{TRACE}"));
    assert_eq!(
        run["pipeline"], "rag_service",
        "the resource's service.name"
    );
    assert_eq!(run["status"], "completed");
    assert_eq!(run["input"], "what is a case?");
    assert_eq!(run["output"], json!({"answer": "a cover"}));
    assert_eq!(run["duration_ms"], 10_000.0);
    assert_eq!(
        step_names(&run),
        vec![
            ("retrieve_docs".into(), "retrieve".into(), 0),
            ("rerank".into(), "rank".into(), 1),
            ("answer".into(), "generate".into(), 2),
        ],
        "PROMPT and CHAIN spans are not steps"
    );
    assert_eq!(
        run["steps"][2]["attributes"],
        json!({"openinference.span.kind": "LLM", "llm.model_name": "gpt-x"})
    );
    assert_eq!(run["steps"][2]["duration_ms"], 4000.0);
    let found = api.ok(&format!("/runs?trace_id={}", TRACE.to_uppercase()));
    assert_eq!(found["runs"][0]["run_id"], TRACE);
}

fn a_resent_export_is_stored_once(backend: Backend) {
    let api = Api::start(backend);
    let mut spans = rag_trace();
    spans[1]["events"] = json!([
        {"name": "xray.reject", "timeUnixNano": T0.to_string(),
         "attributes": [attr("xray.item_id", &json!("doc_9")), attr("xray.reason", &json!("stale"))]}
    ]);
    let body = export(spans);
    send(&api, &body);
    let first = api.ok(&format!("/runs/{TRACE}"));
    send(&api, &body);
    assert_eq!(api.ok(&format!("/runs/{TRACE}")), first);
    assert_eq!(api.ok("/runs")["runs"].as_array().unwrap().len(), 1);
    assert_eq!(
        api.ok("/steps?step_type=retrieve")["steps"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(first["steps"][0]["rejections"]["stale"]["count"], 1);
    let fate = api.ok(&format!("/runs/{TRACE}/items/doc_9"));
    assert_eq!(fate["events"].as_array().unwrap().len(), 1, "{fate}");
}

fn children_before_their_root_across_requests_make_one_run(backend: Backend) {
    let api = Api::start(backend);
    let step = |t: &str| json!({"xray.step_type": t});
    // The last step first, then the first, then the root that names the pipeline.
    send(
        &api,
        &export(vec![span(4, 1, "select", 7, 8, step("select"))]),
    );
    send(
        &api,
        &export(vec![span(2, 1, "search", 1, 3, step("retrieve"))]),
    );
    let partial = api.ok(&format!("/runs/{TRACE}"));
    assert_eq!(partial["status"], "running");
    assert_eq!(step_names(&partial)[0].0, "search");
    send(
        &api,
        &export(vec![
            span(3, 1, "filter", 4, 6, step("filter")),
            span(
                1,
                0,
                "pipeline",
                0,
                9,
                json!({"xray.pipeline": "shop_search"}),
            ),
        ]),
    );
    let run = api.ok(&format!("/runs/{TRACE}"));
    assert_eq!(run["pipeline"], "shop_search");
    assert_eq!(run["status"], "completed");
    assert_eq!(
        step_names(&run),
        vec![
            ("search".into(), "retrieve".into(), 0),
            ("filter".into(), "filter".into(), 1),
            ("select".into(), "select".into(), 2),
        ]
    );
    assert_eq!(api.ok("/runs")["runs"].as_array().unwrap().len(), 1);
    let by_pipeline = api.ok("/steps?pipeline=shop_search");
    assert_eq!(
        by_pipeline["steps"].as_array().unwrap().len(),
        3,
        "{by_pipeline}"
    );
}

fn a_trace_without_its_root_is_still_a_run(backend: Backend) {
    let api = Api::start(backend);
    let mut body = export(vec![span(
        2,
        1,
        "lonely",
        1,
        2,
        json!({"xray.step_type": "transform"}),
    )]);
    body["resourceSpans"][0]["resource"] = json!({});
    send(&api, &body);
    let run = api.ok(&format!("/runs/{TRACE}"));
    assert_eq!(run["pipeline"], "default");
    assert_eq!(run["status"], "running");
    assert_eq!(
        step_names(&run),
        vec![("lonely".into(), "transform".into(), 0)]
    );
}

fn bad_input_is_refused_with_a_message(backend: Backend) {
    let api = Api::start(backend);
    let agent = agent();
    let post = |ct: &str, body: &[u8]| {
        let mut res = agent
            .post(api.server.at("/v1/traces"))
            .header("content-type", ct)
            .send(body)
            .expect("POST");
        let status = res.status().as_u16();
        (status, res.body_mut().read_to_string().unwrap())
    };
    let (status, text) = post("application/x-protobuf", b"\x0a\xff\xff\xff\xff\x0f");
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("protobuf"), "{text}");
    let (status, text) = post("application/json", b"{\"resourceSpans\": 3}");
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("JSON"), "{text}");
    let (status, text) = post("text/plain", b"hello");
    assert_eq!(status, 415, "{text}");
    assert_eq!(api.ok("/runs")["runs"].as_array().unwrap().len(), 0);

    // An unknown step type refuses that span; the rest of the trace is stored.
    let mut spans = rag_trace();
    spans[2]["attributes"] = attrs(json!({"xray.step_type": "sort"}));
    let answer = send(&api, &export(spans));
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], 1, "{answer}");
    let message = answer["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("rerank") && message.contains("`sort`"),
        "{message}"
    );
    let run = api.ok(&format!("/runs/{TRACE}"));
    let names: Vec<String> = step_names(&run).into_iter().map(|s| s.0).collect();
    assert_eq!(names, ["retrieve_docs", "answer"]);
}

fn a_gzipped_export_is_read(backend: Backend) {
    let api = Api::start(backend);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(export(rag_trace()).to_string().as_bytes())
        .unwrap();
    let body = gz.finish().unwrap();
    let res = agent()
        .post(api.server.at("/v1/traces"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .send(&body[..])
        .expect("POST");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(step_names(&api.ok(&format!("/runs/{TRACE}"))).len(), 3);
}

fn hostile_spans_are_refused_or_fitted_never_a_500(backend: Backend) {
    let api = Api::start(backend);
    let step = |extra: Value| {
        let mut a = json!({"xray.step_type": "filter"});
        a.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        a
    };
    let mut no_trace = span(2, 1, "no_trace", 1, 2, step(json!({})));
    no_trace["traceId"] = json!("");
    let mut never = span(3, 1, "never", 1, 2, step(json!({})));
    never["startTimeUnixNano"] = json!("0");
    let negative = span(
        4,
        1,
        "negative",
        1,
        2,
        step(json!({"xray.input_count": -5})),
    );
    let bad_capture = span(
        5,
        1,
        "bad_capture",
        1,
        2,
        step(json!({"xray.capture": "all"})),
    );
    let mut nul = span(
        6,
        1,
        "nul\u{0}name",
        3,
        2,
        step(json!({"k\u{0}": "v\u{0}"})),
    );
    nul["status"] = json!({"code": 2, "message": "bad\u{0}"});
    nul["events"] = json!([{"name": "xray.reject", "attributes": [
        attr("xray.item_id", &json!("item\u{0}")), attr("xray.reason", &json!("why\u{0}")),
        attr("detail", &json!("x\u{0}"))]}]);
    let answer = send(
        &api,
        &export(vec![no_trace, never, negative, bad_capture, nul]),
    );
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], 4, "{answer}");
    let message = answer["partialSuccess"]["errorMessage"].as_str().unwrap();
    for said in ["trace_id", "start_time", "xray.input_count", "xray.capture"] {
        assert!(message.contains(said), "{said} in {message}");
    }
    let run = api.ok(&format!("/runs/{TRACE}"));
    let stored = &run["steps"][0];
    assert_eq!(stored["rejected_count"], 1, "{run}");
    assert!(!stored["name"].as_str().unwrap().contains('\u{0}'));
    assert!(!stored["error"].as_str().unwrap().contains('\u{0}'));
    assert_eq!(
        stored["duration_ms"],
        Value::Null,
        "an end before the start"
    );
}

fn rank_events_become_the_steps_ranking(backend: Backend) {
    let api = Api::start(backend);
    // A reranker of 120 documents, scored 1.0 down; the top 5 go on; the exact count (130: the
    // OTel SDK dropped 10 events) comes as `xray.ranked`.
    let events: Vec<Value> = (0..120u64)
        .map(|i| {
            json!({"name": "xray.rank", "timeUnixNano": T0.to_string(), "attributes": [
                attr("xray.item_id", &json!(format!("doc_{i}"))),
                attr("xray.position", &json!(i + 1)),
                attr("xray.score", &json!(1.0 - i as f64 / 200.0)),
                attr("source", &json!("bm25"))]})
        })
        .collect();
    let mut rerank = span(
        2,
        1,
        "rerank",
        1,
        2,
        json!({"xray.step_type": "rank",
        "xray.cutoff": 5, "xray.ranked": 130}),
    );
    rerank["events"] = Value::Array(events);
    let root = span(1, 0, "search", 0, 3, json!({"xray.pipeline": "search"}));
    send(&api, &export(vec![root, rerank]));
    let run = api.ok(&format!("/runs/{TRACE}"));
    let step = &run["steps"][0];
    let ranking = &step["ranking"];
    assert_eq!(ranking["count"], 130);
    assert_eq!(ranking["cutoff"], 5);
    assert_eq!(ranking["cutoff_score"], 1.0 - 4.0 / 200.0);
    assert_eq!(ranking["first_out_score"], 1.0 - 5.0 / 200.0);
    assert_eq!(
        ranking["samples"].as_array().unwrap().len(),
        100,
        "top 50 + 50 of 70"
    );
    assert_eq!(ranking["samples"][0]["details"], json!({"source": "bm25"}));
    assert_eq!(step["input_count"], 130);
    assert!((step["margin"].as_f64().unwrap() - 0.005).abs() < 1e-9);
    let fate = api.ok(&format!("/runs/{TRACE}/items/doc_6"));
    assert_eq!(fate["events"][0]["outcome"], "ranked");
    assert_eq!(fate["events"][0]["ranked"]["made_the_cut"], false);
}
