//! OTLP spans to X-Ray's SDK events (`xray_wire::Event`), which then take `/ingest`'s write path:
//! a trace is a run (its id the trace id's hex, so a re-sent export is the same run), the root
//! span (or a span with `xray.pipeline`) gives the run's start and end, and each step span a
//! finished step with its counts and samples. The README's "Send from OpenTelemetry" has the
//! table. It owns what spans mean, not how they are decoded nor written.

use super::attrs;
use super::rank::Ranks;
use super::sample::{room, Reservoir, Rng};
use chrono::{DateTime, TimeZone, Utc};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span};
use std::collections::BTreeMap;
use xray_wire::{
    Capture, Decision, Event, ItemId, JsonText, Name, ReasonSummary, RunFinished, RunStarted,
    RunStatus, Sample, StepFinished, StepRecord, StepType,
};

/// The pipeline of a trace that names none (no `xray.pipeline`, no `service.name`).
pub const DEFAULT_PIPELINE: &str = "default";
/// The reason of an `xray.reject` event without `xray.reason`.
pub const UNSPECIFIED_REASON: &str = "unspecified";

/// The events one span became (none for a span that is neither the run nor a step).
#[derive(Debug)]
pub struct SpanEvents {
    /// The span's name, for messages.
    pub span: String,
    /// Its events.
    pub events: Vec<Event>,
}

/// An export request, mapped.
#[derive(Debug, Default)]
pub struct Mapped {
    /// The spans' events, span by span.
    pub spans: Vec<SpanEvents>,
    /// Why each refused span was refused.
    pub refused: Vec<String>,
}

/// One span with what it needs from its resource.
struct Flat<'a> {
    span: &'a Span,
    service: Option<&'a str>,
}

/// Maps every span of `request`.
pub fn map(request: &ExportTraceServiceRequest) -> Mapped {
    let mut mapped = Mapped::default();
    let mut traces: BTreeMap<String, Vec<Flat<'_>>> = BTreeMap::new();
    for rs in &request.resource_spans {
        let service =
            rs.resource
                .as_ref()
                .and_then(|r| match attrs::get(&r.attributes, "service.name") {
                    Some(
                        opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s),
                    ) if !s.is_empty() => Some(s.as_str()),
                    _ => None,
                });
        for span in rs.scope_spans.iter().flat_map(|s| &s.spans) {
            match check_ids(span) {
                Ok(trace) => traces
                    .entry(trace)
                    .or_default()
                    .push(Flat { span, service }),
                Err(e) => mapped.refused.push(format!("span `{}`: {e}", span.name)),
            }
        }
    }
    for (trace, spans) in traces {
        map_trace(&trace, &spans, &mut mapped);
    }
    mapped
}

/// The trace id's hex, once the span's ids are checked.
fn check_ids(span: &Span) -> Result<String, String> {
    if span.trace_id.len() != 16 || span.trace_id.iter().all(|b| *b == 0) {
        return Err("trace_id must be 16 bytes, not all zero".into());
    }
    if span.span_id.len() != 8 || span.span_id.iter().all(|b| *b == 0) {
        return Err("span_id must be 8 bytes, not all zero".into());
    }
    Ok(hex(&span.trace_id))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn str_attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attrs::get(attrs, key) {
        Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s)) => {
            Some(s.as_str())
        }
        _ => None,
    }
}

fn map_trace(trace: &str, spans: &[Flat<'_>], mapped: &mut Mapped) {
    // The run's span: one that names the pipeline, else the root.
    let run_span = spans
        .iter()
        .position(|f| str_attr(&f.span.attributes, "xray.pipeline").is_some())
        .or_else(|| spans.iter().position(|f| f.span.parent_span_id.is_empty()));
    let pipeline = run_span
        .and_then(|i| str_attr(&spans[i].span.attributes, "xray.pipeline"))
        .or_else(|| spans.iter().find_map(|f| f.service))
        .unwrap_or(DEFAULT_PIPELINE);
    let pipeline = Name::fit(pipeline);
    let run_id = Name::fit(trace);

    // Steps in order of start time (then id): their positions in this request; the store
    // renumbers a run whose steps came in several.
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (spans[a].span, spans[b].span);
        (a.start_time_unix_nano, &a.span_id).cmp(&(b.start_time_unix_nano, &b.span_id))
    });
    let mut position = 0u32;
    for i in order {
        let span = spans[i].span;
        let mut events = Vec::new();
        let result = (|| {
            if run_span == Some(i) {
                events.extend(run_events(trace, span, &run_id, &pipeline)?);
            }
            if let Some(step_type) = step_type(span)? {
                let step = step_record(trace, span, step_type, position)?;
                position += 1;
                events.push(Event::StepFinished(Box::new(StepFinished {
                    run_id: run_id.clone(),
                    pipeline: pipeline.clone(),
                    step,
                })));
            }
            Ok::<_, String>(())
        })();
        match result {
            Ok(()) => mapped.spans.push(SpanEvents {
                span: span.name.clone(),
                events,
            }),
            Err(e) => mapped.refused.push(format!("span `{}`: {e}", span.name)),
        }
    }
}

fn time(nanos: u64, field: &str) -> Result<DateTime<Utc>, String> {
    i64::try_from(nanos)
        .ok()
        .filter(|n| *n > 0)
        .map(|n| Utc.timestamp_nanos(n))
        .ok_or_else(|| format!("{field} must be a time after 1970 (nanoseconds)"))
}

fn duration_ms(span: &Span) -> Option<f64> {
    span.end_time_unix_nano
        .checked_sub(span.start_time_unix_nano)
        .map(|ns| ns as f64 / 1e6)
}

/// The span's error: its status message when its status is an error.
fn error(span: &Span) -> Option<String> {
    let status = span.status.as_ref()?;
    (status.code == StatusCode::Error as i32).then(|| {
        let message = if status.message.is_empty() {
            "error"
        } else {
            status.message.as_str()
        };
        xray_wire::fit_text(message).into_owned()
    })
}

/// The JSON of `xray.<which>`, else of OpenInference's `<which>.value` (JSON when its
/// `<which>.mime_type` says so): a string that is JSON is that JSON, any other a JSON string.
fn io_value(attrs: &[KeyValue], which: &str) -> Option<JsonText> {
    if let Some(v) = attrs::get(attrs, &format!("xray.{which}")) {
        return match v {
            opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s) => {
                JsonText::parse(s.clone()).ok().or_else(|| JsonText::of(s))
            }
            other => JsonText::of(&attrs::json(other)),
        };
    }
    let v = attrs::get(attrs, &format!("{which}.value"))?;
    let is_json = str_attr(attrs, &format!("{which}.mime_type")) == Some("application/json");
    match v {
        opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s) if is_json => {
            JsonText::parse(s.clone()).ok().or_else(|| JsonText::of(s))
        }
        other => JsonText::of(&attrs::json(other)),
    }
}

fn run_events(
    trace: &str,
    span: &Span,
    run_id: &Name,
    pipeline: &Name,
) -> Result<Vec<Event>, String> {
    let started = time(span.start_time_unix_nano, "start_time_unix_nano")?;
    let mut events = vec![Event::RunStarted(RunStarted {
        run_id: run_id.clone(),
        pipeline: pipeline.clone(),
        started_at: started,
        input: io_value(&span.attributes, "input"),
        metadata: None,
        version: str_attr(&span.attributes, "xray.version").map(Name::fit),
        replay_of: None,
        correlation_id: None,
        traceparent: Some(format!("00-{trace}-{}-01", hex(&span.span_id))),
    })];
    if span.end_time_unix_nano > 0 {
        let error = error(span);
        events.push(Event::RunFinished(RunFinished {
            run_id: run_id.clone(),
            pipeline: pipeline.clone(),
            started_at: started,
            ended_at: time(span.end_time_unix_nano, "end_time_unix_nano")?,
            status: if error.is_some() {
                RunStatus::Failed
            } else {
                RunStatus::Completed
            },
            output: io_value(&span.attributes, "output"),
            error,
            duration_ms: duration_ms(span),
        }));
    }
    Ok(events)
}

/// The step type of a span: `xray.step_type`, else its OpenInference kind, else its GenAI
/// operation; `None` for a span that is not a step.
pub fn step_type(span: &Span) -> Result<Option<StepType>, String> {
    if let Some(v) = attrs::get(&span.attributes, "xray.step_type") {
        let text = attrs::text(v).unwrap_or_default();
        return text.parse().map(Some).map_err(|_| {
            format!(
                "unknown xray.step_type `{text}`: one of generate, retrieve, filter, rank, select, transform"
            )
        });
    }
    if let Some(kind) = str_attr(&span.attributes, "openinference.span.kind") {
        return Ok(openinference_kind(kind));
    }
    Ok(str_attr(&span.attributes, "gen_ai.operation.name").and_then(genai_operation))
}

/// OpenInference span kinds that are steps; CHAIN, AGENT, EVALUATOR, PROMPT and any other kind
/// are structure, not steps.
pub fn openinference_kind(kind: &str) -> Option<StepType> {
    match kind.to_ascii_uppercase().as_str() {
        "LLM" => Some(StepType::Generate),
        "RETRIEVER" => Some(StepType::Retrieve),
        "RERANKER" => Some(StepType::Rank),
        "EMBEDDING" | "TOOL" => Some(StepType::Transform),
        "GUARDRAIL" => Some(StepType::Filter),
        _ => None,
    }
}

/// GenAI semantic-convention operations that are steps (agent operations are not).
pub fn genai_operation(op: &str) -> Option<StepType> {
    match op {
        "chat" | "text_completion" | "generate_content" => Some(StepType::Generate),
        "embeddings" | "execute_tool" => Some(StepType::Transform),
        _ => None,
    }
}

/// Keys a step span's `attributes` leave out: X-Ray's own and the input and output.
fn is_own_key(key: &str) -> bool {
    key.starts_with("xray.")
        || matches!(
            key,
            "input.value" | "input.mime_type" | "output.value" | "output.mime_type"
        )
}

/// Counts and samples of a step's events.
#[derive(Default)]
struct Outcomes {
    rejections: BTreeMap<String, Reservoir>,
    acceptances: Reservoir,
    decision: Option<Decision>,
    ranks: Ranks,
}

fn item_and_details(attrs: &[KeyValue]) -> (Option<ItemId>, Option<JsonText>) {
    let item = attrs::get(attrs, "xray.item_id").and_then(|v| match v {
        AnyValue::StringValue(s) => Some(ItemId(xray_wire::fit_name(s).into_owned())),
        other => attrs::text(other).map(|t| ItemId(xray_wire::fit_name(&t).into_owned())),
    });
    let details = attrs::object_text(attrs, |k| !k.starts_with("xray."));
    (item, details)
}

fn step_record(
    trace: &str,
    span: &Span,
    step_type: StepType,
    position: u32,
) -> Result<StepRecord, String> {
    let a = &span.attributes;
    let capture = match attrs::get(a, "xray.capture").and_then(attrs::text) {
        None => Capture::Sample,
        Some(t) => t
            .parse()
            .map_err(|_| format!("unknown xray.capture `{t}`: one of minimal, sample, full"))?,
    };
    let span_id = hex(&span.span_id);
    let seed = u64::from_be_bytes(span.span_id.as_slice().try_into().unwrap_or([0; 8]));
    let mut rng = Rng::new(seed);
    let mut out = Outcomes::default();
    for event in &span.events {
        match event.name.as_str() {
            "xray.reject" => {
                let reason = str_attr(&event.attributes, "xray.reason");
                let reason = xray_wire::fit_name(reason.unwrap_or(UNSPECIFIED_REASON));
                if !out.rejections.contains_key(reason.as_ref()) {
                    out.rejections
                        .insert(reason.to_string(), Reservoir::default());
                }
                if let Some(reservoir) = out.rejections.get_mut(reason.as_ref()) {
                    offer(reservoir, room(capture, false), &mut rng, &event.attributes);
                }
            }
            "xray.rank" => out.ranks.offer(capture, &mut rng, &event.attributes),
            "xray.accept" => {
                let room = room(capture, true);
                offer(&mut out.acceptances, room, &mut rng, &event.attributes);
            }
            "xray.decide" => {
                let (item, details) = item_and_details(&event.attributes);
                out.decision = Some(Decision {
                    selected: item,
                    score: attrs::get(&event.attributes, "xray.score").and_then(attrs::number),
                    details: details.map(|d| d.to_value()),
                    runner_up: str_attr(&event.attributes, "xray.runner_up")
                        .map(|id| xray_wire::ItemId(xray_wire::fit_name(id).into_owned())),
                    runner_up_score: attrs::get(&event.attributes, "xray.runner_up_score")
                        .and_then(attrs::number),
                });
            }
            _ => {}
        }
    }
    // Exact counts sent as span attributes win over counting events (which the OTel SDK may
    // have dropped past its limit): the events are then the samples.
    let mut rejections: BTreeMap<String, ReasonSummary> = out
        .rejections
        .into_iter()
        .map(|(reason, r)| (reason, summary(r)))
        .collect();
    for kv in a {
        if let Some(reason) = kv.key.strip_prefix("xray.rejected.") {
            let n = kv
                .value
                .as_ref()
                .and_then(|v| v.value.as_ref())
                .and_then(attrs::count)
                .ok_or_else(|| format!("{} must be a whole number, 0 or more", kv.key))?;
            let reason = xray_wire::fit_name(reason).into_owned();
            let entry = rejections.remove(&reason).unwrap_or_default();
            rejections.insert(reason, exact(entry, n));
        }
    }
    let mut acceptances = summary(out.acceptances);
    if let Some(v) = attrs::get(a, "xray.accepted") {
        let n = attrs::count(v).ok_or("xray.accepted must be a whole number, 0 or more")?;
        acceptances = exact(acceptances, n);
    }
    let count_attr = |key: &str| -> Result<Option<u64>, String> {
        attrs::get(a, key)
            .map(|v| attrs::count(v).ok_or(format!("{key} must be a whole number, 0 or more")))
            .transpose()
    };
    // Counts not sent are derived from the events as the SDK derives them (`xray-runtime`'s
    // `step.rs`): in = rejected + accepted; out = 1 for a decision, else the accepted, else what
    // the rejections left of the input.
    let rejected = rejections
        .values()
        .fold(0u64, |n, r| n.saturating_add(r.count));
    let accepted = acceptances.count;
    let outcomes = rejected.saturating_add(accepted);
    let (exact_ranked, cutoff) = (count_attr("xray.ranked")?, count_attr("xray.cutoff")?);
    let ranked = exact_ranked.unwrap_or(out.ranks.count());
    let input_count = count_attr("xray.input_count")?
        .or((outcomes > 0).then_some(outcomes))
        .or((ranked > 0).then_some(ranked));
    let output_count = count_attr("xray.output_count")?.or(if out.decision.is_some() {
        Some(1)
    } else if accepted > 0 {
        Some(accepted)
    } else if rejected > 0 {
        input_count.map(|i| i.saturating_sub(rejected))
    } else {
        cutoff
    });
    let ended = (span.end_time_unix_nano > 0)
        .then(|| time(span.end_time_unix_nano, "end_time_unix_nano"))
        .transpose()?;
    Ok(StepRecord {
        step_id: Some(Name::fit(format!("{trace}-{span_id}"))),
        position: Some(position),
        name: Name::fit(span.name.as_str()),
        step_type,
        capture,
        input_count,
        output_count,
        started_at: Some(time(span.start_time_unix_nano, "start_time_unix_nano")?),
        ended_at: ended,
        duration_ms: ended.and_then(|_| duration_ms(span)),
        input: io_value(a, "input"),
        output: io_value(a, "output"),
        rejections,
        acceptances,
        decision: out.decision,
        ranking: out.ranks.into_wire(exact_ranked, cutoff, output_count),
        error: error(span),
        attributes: attrs::object_text(a, |k| !is_own_key(k)),
    })
}

/// Counts an event and offers its sample to the reservoir: its item and details are read only
/// if it is kept. An event without an item is counted, with nothing to keep.
fn offer(reservoir: &mut Reservoir, room: Option<usize>, rng: &mut Rng, attrs: &[KeyValue]) {
    if attrs::get(attrs, "xray.item_id")
        .and_then(attrs::has_text)
        .is_none()
    {
        reservoir.seen += 1;
        return;
    }
    reservoir.offer(room, rng, || {
        let (item, details) = item_and_details(attrs);
        Sample {
            item_id: item.unwrap_or_else(|| ItemId(xray_wire::EMPTY_NAME.into())),
            details,
        }
    });
}

fn summary(r: Reservoir) -> ReasonSummary {
    ReasonSummary {
        count: r.seen,
        samples: r.kept,
    }
}

/// `summary` with its count replaced by the exact one (samples beyond it dropped).
fn exact(mut summary: ReasonSummary, n: u64) -> ReasonSummary {
    summary.count = n;
    summary
        .samples
        .truncate(usize::try_from(n).unwrap_or(usize::MAX));
    summary
}
