//! `POST /v1/traces`: OTLP/HTTP trace export (protobuf or JSON, gzip or not), so any
//! OpenTelemetry-instrumented pipeline is an X-Ray pipeline. [`decode`] reads the body,
//! [`mapping`] turns spans into SDK events, which then take `/ingest`'s write path
//! (`WriteSet::from_batch`, `Store::write`); the store then orders the steps of a run whose spans
//! came in several requests (`store/otlp.rs`).

mod attrs;
pub mod decode;
pub mod mapping;
mod rank;
mod sample;

use super::error::{block, ApiError};
use super::handlers::read_body;
use super::params::Params;
use super::AppState;
use crate::store::rows::WriteSet;
use crate::store::Store;
use actix_web::{web, HttpRequest, HttpResponse};
use decode::Encoding;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use xray_wire::{Event, IngestBatch};

/// Refusal messages kept in `partial_success.error_message`; the rest are counted.
const MESSAGES_SHOWN: usize = 5;

/// `POST /v1/traces`: OTLP trace export. Each trace is a run (its id the trace id in hex), each
/// step span a step; spans of a trace may come in any order and in several requests, and a
/// re-sent export is stored once.
#[utoipa::path(
    post,
    path = "/v1/traces",
    tag = "write",
    request_body(
        description = "An OTLP `ExportTraceServiceRequest`, in protobuf or OTLP JSON; `Content-Encoding: gzip` accepted. The README's \"Send from OpenTelemetry\" says how spans map to runs and steps.",
        content(
            (Object = "application/json"),
            (ProtobufBytes = "application/x-protobuf"),
        )
    ),
    responses(
        (status = 200, description = "An OTLP `ExportTraceServiceResponse` in the request's encoding: `partialSuccess` (`rejectedSpans`, `errorMessage`) names the spans refused and why; the rest are stored.", content(
            (Object = "application/json"),
            (ProtobufBytes = "application/x-protobuf"),
        )),
        (status = 400, description = "The body is not an export request in its content type (or not gzip when it says so).", body = ApiErrorBody),
        (status = 409, description = "A step's id (trace and span id) is that of a step of another run; nothing is written.", body = ApiErrorBody),
        (status = 413, description = "The body is over the limit, sent or unpacked.", body = ApiErrorBody),
        (status = 415, description = "A content type other than `application/x-protobuf` or `application/json`.", body = ApiErrorBody),
        (status = 503, description = "The database is busy or unreachable.", body = ApiErrorBody),
    )
)]
pub async fn export_traces(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    Params::parse(req.query_string(), &[])?;
    let header = |name| {
        req.headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or("\u{fffd}"))
    };
    let content_type = header(actix_web::http::header::CONTENT_TYPE).unwrap_or("");
    let encoding = Encoding::of_content_type(content_type).ok_or_else(|| {
        ApiError::UnsupportedMediaType(format!(
            "Content-Type `{content_type}` is not OTLP: send application/x-protobuf or application/json"
        ))
    })?;
    let content_encoding = header(actix_web::http::header::CONTENT_ENCODING).map(str::to_string);
    let body = read_body(&req, payload, state.body_limit).await?;
    let limit = state.body_limit;
    let store = state.store.clone();
    let answer = block(move || -> Result<ExportTraceServiceResponse, ApiError> {
        let body =
            decode::unpack(&body, content_encoding.as_deref(), limit).map_err(|e| match e {
                decode::DecodeError::TooLarge(limit) => ApiError::PayloadTooLarge { limit },
                other => ApiError::BadRequest(other.to_string()),
            })?;
        let request =
            decode::decode(&body, encoding).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        store_spans(&store, &request)
    })
    .await??;
    Ok(HttpResponse::Ok()
        .content_type(encoding.content_type())
        .body(decode::encode(&answer, encoding)))
}

/// Stores the events of the request's spans; a span whose events are not valid is refused alone.
fn store_spans(
    store: &Store,
    request: &ExportTraceServiceRequest,
) -> Result<ExportTraceServiceResponse, ApiError> {
    let mapped = mapping::map(request);
    let mut refused = mapped.refused;
    let events: Vec<Event> = mapped.spans.into_iter().flat_map(|s| s.events).collect();
    let set = match WriteSet::from_batch(IngestBatch { events }) {
        Ok(set) => set,
        Err(_) => {
            // Some span's events are not valid (rare): map again, and check each span's alone.
            let mut events = Vec::new();
            for span in mapping::map(request).spans {
                let alone = IngestBatch {
                    events: span.events.clone(),
                };
                match WriteSet::from_batch(alone) {
                    Ok(_) => events.extend(span.events),
                    Err(e) => refused.push(format!("span `{}`: {}", span.span, e.message)),
                }
            }
            WriteSet::from_batch(IngestBatch { events })
                .map_err(|e| ApiError::BadRequest(e.to_string()))?
        }
    };
    let run_ids = set.run_ids();
    if !run_ids.is_empty() {
        store.write(&set)?;
        store.order_steps_by_start(&run_ids)?;
    }
    Ok(answer(&refused))
}

/// The export answer: `partial_success` only when a span was refused.
fn answer(refused: &[String]) -> ExportTraceServiceResponse {
    if refused.is_empty() {
        return ExportTraceServiceResponse {
            partial_success: None,
        };
    }
    let mut message = refused
        .iter()
        .take(MESSAGES_SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if refused.len() > MESSAGES_SHOWN {
        message.push_str(&format!("; and {} more", refused.len() - MESSAGES_SHOWN));
    }
    ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans: i64::try_from(refused.len()).unwrap_or(i64::MAX),
            error_message: message,
        }),
    }
}

#[allow(unused_imports)] // named only in the OpenAPI attributes
use xray_wire::ApiErrorBody;

/// The spec's schema of a protobuf body: bytes (`string`, format `binary`).
struct ProtobufBytes;

impl utoipa::PartialSchema for ProtobufBytes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .description(Some("An OTLP protobuf message."))
            .into()
    }
}

impl utoipa::ToSchema for ProtobufBytes {}
