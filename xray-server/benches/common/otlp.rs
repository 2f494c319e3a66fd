//! The ingest bench's bodies as OTLP protobuf exports of the same data: each run a trace (a root
//! span naming the pipeline, with its input and output), each step a span with `xray.step_type`,
//! its counts, the exact rejection counts as `xray.rejected.<reason>` attributes, and one
//! `xray.reject` event per kept sample (its details as the event's attributes). An OTel SDK
//! that keeps its default limit sends at most 128 events a span; the bench's steps keep up to 150
//! samples, sent whole here, as with a raised limit.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use serde_json::Value as Json;
use xray_wire::{Event, IngestBatch};

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn text(key: &str, value: impl Into<String>) -> KeyValue {
    kv(key, Value::StringValue(value.into()))
}

fn int(key: &str, value: u64) -> KeyValue {
    kv(key, Value::IntValue(value as i64))
}

fn json_value(key: &str, v: &Json) -> KeyValue {
    match v {
        Json::String(s) => text(key, s.clone()),
        Json::Bool(b) => kv(key, Value::BoolValue(*b)),
        Json::Number(n) => match n.as_i64() {
            Some(i) => kv(key, Value::IntValue(i)),
            None => kv(key, Value::DoubleValue(n.as_f64().unwrap_or(0.0))),
        },
        other => text(key, other.to_string()),
    }
}

fn nanos(t: chrono::DateTime<chrono::Utc>) -> u64 {
    t.timestamp_nanos_opt().unwrap_or(0) as u64
}

/// The OTLP protobuf export of an `/ingest` body's runs and steps (each run's events together).
pub fn otlp_body(ingest_body: &[u8], seq: &mut u64) -> Vec<u8> {
    let batch: IngestBatch = serde_json::from_slice(ingest_body).expect("a valid body");
    let mut traces: Vec<(String, Vec<Span>)> = Vec::new();
    let mut trace_of = std::collections::HashMap::new();
    let mut new_id = |n: usize| {
        *seq += 1;
        let mut id = seq.to_be_bytes().repeat(n / 8);
        id[0] |= 0x80;
        id
    };
    let mut root = std::collections::HashMap::new();
    for event in &batch.events {
        let run_id = match event {
            Event::RunStarted(e) => e.run_id.to_string(),
            Event::RunFinished(e) => e.run_id.to_string(),
            Event::StepFinished(e) => e.run_id.to_string(),
        };
        let i = *trace_of.entry(run_id.clone()).or_insert_with(|| {
            traces.push((run_id.clone(), Vec::new()));
            traces.len() - 1
        });
        let (trace_id, root_id) = root
            .entry(run_id)
            .or_insert_with(|| (new_id(16), new_id(8)))
            .clone();
        let spans = &mut traces[i].1;
        match event {
            Event::RunStarted(_) => {}
            Event::RunFinished(e) => {
                let mut attributes = vec![text("xray.pipeline", e.pipeline.as_str())];
                if let Some(started) = batch.events.iter().find_map(|x| match x {
                    Event::RunStarted(s) if s.run_id == e.run_id => Some(s),
                    _ => None,
                }) {
                    if let Some(input) = &started.input {
                        attributes.push(text("xray.input", input.get()));
                    }
                }
                if let Some(output) = &e.output {
                    attributes.push(text("xray.output", output.get()));
                }
                spans.push(Span {
                    trace_id,
                    span_id: root_id,
                    name: "run".into(),
                    kind: 1,
                    start_time_unix_nano: nanos(e.started_at),
                    end_time_unix_nano: nanos(e.ended_at),
                    attributes,
                    status: e.error.as_ref().map(|m| Status {
                        message: m.clone(),
                        code: 2,
                    }),
                    ..Default::default()
                });
            }
            Event::StepFinished(e) => {
                let s = &e.step;
                let mut attributes = vec![text("xray.step_type", s.step_type.as_str())];
                attributes.push(text("xray.capture", s.capture.as_str()));
                if let Some(n) = s.input_count {
                    attributes.push(int("xray.input_count", n));
                }
                if let Some(n) = s.output_count {
                    attributes.push(int("xray.output_count", n));
                }
                let mut events = Vec::new();
                for (reason, summary) in &s.rejections {
                    attributes.push(int(&format!("xray.rejected.{reason}"), summary.count));
                    for sample in &summary.samples {
                        let mut a = vec![
                            text("xray.item_id", sample.item_id.as_str()),
                            text("xray.reason", reason.clone()),
                        ];
                        if let Some(Json::Object(d)) = sample.details.as_ref().map(|d| d.to_value())
                        {
                            a.extend(d.iter().map(|(k, v)| json_value(k, v)));
                        }
                        events.push(span::Event {
                            name: "xray.reject".into(),
                            attributes: a,
                            ..Default::default()
                        });
                    }
                }
                let started = s.started_at.expect("ingest steps have a start");
                spans.push(Span {
                    trace_id,
                    span_id: new_id(8),
                    parent_span_id: root_id,
                    name: s.name.to_string(),
                    kind: 1,
                    start_time_unix_nano: nanos(started),
                    end_time_unix_nano: s.ended_at.map_or(0, nanos),
                    attributes,
                    events,
                    ..Default::default()
                });
            }
        }
    }
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![text("service.name", "bench")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: traces.into_iter().flat_map(|(_, s)| s).collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    request.encode_to_vec()
}
