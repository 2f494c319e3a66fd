//! `POST /v1/traces` with clients nobody here wrote: OpenTelemetry's Python SDK with its
//! OTLP/HTTP exporter (protobuf), and the Rust SDK's `opentelemetry-otlp` exporter (protobuf and
//! JSON), each sending the same pipeline as the X-Ray Rust SDK; the step search, the run and the
//! items' fates must answer alike. On SQLite and on PostgreSQL. And the README's Python example,
//! run as written.

mod support;

use opentelemetry::trace::{Span as _, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use serde_json::{json, Value};
use std::process::Command;
use support::*;

on_both_backends!(
    the_python_exporter_answers_as_the_rust_sdk,
    past_the_python_event_limit_span_attributes_keep_counts_exact,
    the_rust_exporter_answers_as_the_rust_sdk_in_protobuf_and_json,
);

const PIPELINE: &str = "otel_competitor";

/// The comparison pipeline through the X-Ray Rust SDK; its run id.
fn send_with_xray_sdk(api: &Api) -> String {
    let config = xray::Config::builder()
        .endpoint(api.server.at(""))
        .offline_mode(xray::OfflineMode::Fail)
        .spool_dir(tempfile::tempdir().expect("tempdir").keep())
        .build();
    let xray = xray::XRay::with_config(PIPELINE, config);
    let run = xray.run(json!({"product_title": "iPhone 15 Case"}));
    run.step("generate_keywords", xray::StepType::Generate)
        .finish();
    let search = run.step("search_products", xray::StepType::Retrieve);
    search.handle().set_input_count(1000);
    search.handle().set_output_count(300);
    search.finish();
    let filter = run.step("filter_candidates", xray::StepType::Filter);
    filter.handle().set_input_count(300);
    filter.handle().set_output_count(10);
    for i in 0..300 {
        if i % 30 == 0 {
            filter.accept_with(format!("p{i}"), json!({"price": i}));
        } else {
            filter.reject(format!("p{i}"), &format!("r{}", i % 8), json!({"price": i}));
        }
    }
    filter.finish();
    let rank = run.step("rank_by_relevance", xray::StepType::Rank);
    rank.handle().set_input_count(10);
    rank.handle().set_output_count(10);
    rank.finish();
    let select = run.step("select_best", xray::StepType::Select);
    select.handle().decide("p0", 0.93, json!({"why": "best"}));
    select.finish();
    run.set_output(json!({"selected": "p0"}));
    let id = run.id().expect("a recording run").to_string();
    run.finish().expect("run finished");
    xray.flush(std::time::Duration::from_secs(30))
        .expect("flush");
    id
}

/// Runs Python `code` with OpenTelemetry's SDK and OTLP/HTTP exporter installed; what it printed.
fn run_otel_python(code: &str, args: &[&str]) -> String {
    let python = support::venv::python_with(
        "otel-python-1.45.2",
        &[
            "opentelemetry-sdk==1.45.2",
            "opentelemetry-exporter-otlp-proto-http==1.45.2",
        ],
    );
    let out = Command::new(python)
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python exporter failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.trim().to_string()
}

/// The comparison pipeline through OpenTelemetry's Python SDK; the run id (the trace id).
fn send_with_python(api: &Api, mode: &str) -> String {
    let code = include_str!("support/otel_export.py");
    run_otel_python(code, &[&api.server.at("/v1/traces"), mode])
}

/// The comparison pipeline through the Rust SDK's OTLP/HTTP exporter; the run id.
fn send_with_rust_exporter(api: &Api, protocol: Protocol) -> String {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .with_endpoint(api.server.at("/v1/traces"))
        .build()
        .expect("exporter");
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_max_events_per_span(1000)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("shop")
                .build(),
        )
        .build();
    let tracer = provider.tracer("otel-comparison");
    let step = |name: &'static str, kind: &'static str, counts: Option<(i64, i64)>| {
        let mut span = tracer.start(name);
        span.set_attribute(KeyValue::new("xray.step_type", kind));
        if let Some((i, o)) = counts {
            span.set_attribute(KeyValue::new("xray.input_count", i));
            span.set_attribute(KeyValue::new("xray.output_count", o));
        }
        span
    };
    let trace_id = tracer.in_span("competitor_selection", |cx| {
        let run = cx.span();
        run.set_attribute(KeyValue::new("xray.pipeline", PIPELINE));
        let input = json!({"product_title": "iPhone 15 Case"}).to_string();
        run.set_attribute(KeyValue::new("xray.input", input));
        step("generate_keywords", "generate", None).end();
        step("search_products", "retrieve", Some((1000, 300))).end();
        let mut filter = step("filter_candidates", "filter", Some((300, 10)));
        for i in 0..300i64 {
            let item = KeyValue::new("xray.item_id", format!("p{i}"));
            if i % 30 == 0 {
                filter.add_event("xray.accept", vec![item, KeyValue::new("price", i)]);
            } else {
                let reason = KeyValue::new("xray.reason", format!("r{}", i % 8));
                filter.add_event("xray.reject", vec![item, reason, KeyValue::new("price", i)]);
            }
        }
        filter.end();
        step("rank_by_relevance", "rank", Some((10, 10))).end();
        let mut select = step("select_best", "select", None);
        select.add_event(
            "xray.decide",
            vec![
                KeyValue::new("xray.item_id", "p0"),
                KeyValue::new("xray.score", 0.93),
                KeyValue::new("why", "best"),
            ],
        );
        select.end();
        run.set_attribute(KeyValue::new("xray.output", r#"{"selected":"p0"}"#));
        run.span_context().trace_id().to_string()
    });
    provider.shutdown().expect("export");
    trace_id
}

/// A run or step answer without what differs between two sends of the same data: ids, times,
/// free-form attributes; samples in item order.
fn comparable(mut v: Value) -> Value {
    match &mut v {
        Value::Object(map) => {
            for key in [
                "run_id",
                "step_id",
                "started_at",
                "ended_at",
                "duration_ms",
                "attributes",
                "metadata",
                "trace_id",
                "traceparent",
                "correlation_id",
            ] {
                map.remove(key);
            }
            for (key, value) in map.iter_mut() {
                *value = comparable(value.take());
                if key == "samples" {
                    if let Value::Array(samples) = value {
                        samples.sort_by_key(|s| s["item_id"].as_str().map(str::to_string));
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                *item = comparable(item.take());
            }
        }
        _ => {}
    }
    v
}

/// The fates of a few items in `run`, comparable.
fn fates(api: &Api, run: &str) -> Vec<Value> {
    ["p0", "p1", "p7", "p299"]
        .iter()
        .map(|item| comparable(api.ok(&format!("/runs/{run}/items/{item}"))))
        .collect()
}

/// The filter steps found by the seed's query, by run.
fn rejecting_filters(api: &Api) -> Vec<(String, Value)> {
    let hits = api.ok("/steps?step_type=filter&rejection_rate_gt=0.9");
    hits["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|h| {
            (
                h["run_id"].as_str().unwrap().to_string(),
                comparable(h.clone()),
            )
        })
        .collect()
}

/// Both runs answer alike: the run, the step search and the items' fates.
fn assert_alike(api: &Api, sdk: &str, otel: &str) {
    let (a, b) = (
        api.ok(&format!("/runs/{sdk}")),
        api.ok(&format!("/runs/{otel}")),
    );
    assert_eq!(b["pipeline"], PIPELINE);
    assert_eq!(b["status"], "completed");
    let (mut a, mut b) = (comparable(a), comparable(b));
    let (a_steps, b_steps) = (a["steps"].take(), b["steps"].take());
    assert_eq!(b, a, "run {otel} vs the SDK's {sdk}");
    let (a_steps, b_steps) = (a_steps.as_array().unwrap(), b_steps.as_array().unwrap());
    assert_eq!(b_steps.len(), a_steps.len());
    for (x, y) in b_steps.iter().zip(a_steps) {
        assert_eq!(x, y, "step {} of run {otel} vs the SDK's", x["name"]);
    }
    let found = rejecting_filters(api);
    let of = |run: &str| found.iter().find(|(r, _)| r == run).map(|(_, h)| h.clone());
    let sdk_hit = of(sdk).expect("the SDK's filter step is found");
    assert_eq!(of(otel), Some(sdk_hit), "found: {found:?}");
    assert_eq!(fates(api, otel), fates(api, sdk));
    let p1 = api.ok(&format!("/runs/{otel}/items/p1"));
    assert_eq!(p1["events"][0]["reason"], "r1", "{p1}");
    assert_eq!(p1["events"][0]["details"], json!({"price": 1}), "{p1}");
}

fn the_python_exporter_answers_as_the_rust_sdk(backend: Backend) {
    let api = Api::start(backend);
    let sdk = send_with_xray_sdk(&api);
    let otel = send_with_python(&api, "all");
    assert_alike(&api, &sdk, &otel);
    let by_trace = api.ok(&format!("/runs?trace_id={otel}"));
    assert_eq!(by_trace["runs"][0]["run_id"], otel.as_str());
}

fn past_the_python_event_limit_span_attributes_keep_counts_exact(backend: Backend) {
    let api = Api::start(backend);
    let otel = send_with_python(&api, "exact");
    let run = api.ok(&format!("/runs/{otel}"));
    let filter = &run["steps"][2];
    assert_eq!(filter["name"], "filter_candidates");
    assert_eq!(filter["rejected_count"], 290, "{filter}");
    assert_eq!(filter["rejections"]["r1"]["count"], 38);
    assert_eq!(filter["acceptances"]["count"], 10);
    // Only the first 128 events reached the server: the samples are among them.
    let kept: usize = filter["rejections"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| r["samples"].as_array().unwrap().len())
        .sum();
    assert!(kept > 0 && kept <= 128, "{kept} samples kept");
    assert_eq!(rejecting_filters(&api).len(), 1);
}

/// The README's OpenTelemetry example, run as written but for the address: it sends to the one
/// `cargo run -p xray-server` listens on, and the server stores the run and rejection it shows.
#[test]
fn the_readme_example_is_stored_as_it_shows() {
    let readme = include_str!("../README.md");
    let section = readme
        .split("\n## Send from OpenTelemetry\n")
        .nth(1)
        .expect("the README's OpenTelemetry section");
    let code = section
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the section's Python example");
    // The server's default `--bind` (xray-server's `Config::bind`).
    let readme_url = "http://127.0.0.1:8000/v1/traces";
    assert!(
        code.contains(readme_url),
        "the example exports to {readme_url}:\n{code}"
    );
    let api = Api::start(Backend::Sqlite);
    run_otel_python(&code.replace(readme_url, &api.server.at("/v1/traces")), &[]);

    let runs = api.ok("/runs?pipeline=competitor_selection");
    let [run] = runs["runs"].as_array().expect("runs").as_slice() else {
        panic!("one run of the example's pipeline: {runs}");
    };
    let run = api.ok(&format!(
        "/runs/{}",
        run["run_id"].as_str().expect("run id")
    ));
    assert_eq!(run["status"], "completed", "{run}");
    let step = &run["steps"][0];
    assert_eq!(
        (&step["name"], &step["step_type"]),
        (&json!("filter_candidates"), &json!("filter")),
        "{run}"
    );
    let rejected = &step["rejections"]["price_too_high"];
    assert_eq!(rejected["count"], 1, "{step}");
    assert_eq!(rejected["samples"][0]["item_id"], "sku-42", "{step}");
    assert_eq!(
        rejected["samples"][0]["details"],
        json!({"price": 150}),
        "{step}"
    );
}

fn the_rust_exporter_answers_as_the_rust_sdk_in_protobuf_and_json(backend: Backend) {
    let api = Api::start(backend);
    let sdk = send_with_xray_sdk(&api);
    let proto = send_with_rust_exporter(&api, Protocol::HttpBinary);
    assert_alike(&api, &sdk, &proto);
    let json = send_with_rust_exporter(&api, Protocol::HttpJson);
    assert_alike(&api, &sdk, &json);
    assert_ne!(proto, json);
}
