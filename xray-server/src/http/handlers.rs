//! The endpoints: parse and check the request, run the store call on the blocking pool, answer.

use super::error::ApiError;
use super::params::{check_segment, Params, DEFAULT_LIMIT};
use super::AppState;
use crate::store::filter::{RunFilter, StepFilter};
use crate::store::rows::WriteSet;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use xray_wire::{Health, IngestBatch, IngestResponse, RunRecord};

type Result<T> = std::result::Result<T, ApiError>;

/// Reads the body, stopping at the configured limit.
pub(crate) async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Bytes> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::BadRequest(format!("cannot read the request body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Parses a JSON body, naming the field at fault (`steps[0].step_type: unknown step_type …`).
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    if body.is_empty() {
        return Err(ApiError::BadRequest(
            "the request body is empty; expected JSON".into(),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || inner.is_syntax() || inner.is_eof() {
            ApiError::BadRequest(format!("invalid JSON body: {inner}"))
        } else {
            ApiError::BadRequest(format!("{path}: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    Ok(value)
}

async fn write(state: &AppState, set: WriteSet) -> Result<Vec<String>> {
    let store = state.store.clone();
    let run_ids = set.run_ids();
    web::block(move || store.write(&set)).await??;
    Ok(run_ids)
}

/// `POST /runs`: one complete run.
pub async fn post_run(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse> {
    Params::parse(req.query_string(), &[])?;
    let body = read_body(&req, payload, state.body_limit).await?;
    let run: RunRecord = parse_json(&body)?;
    let set = WriteSet::from_run(run).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let run_ids = write(&state, set).await?;
    Ok(HttpResponse::Created().json(IngestResponse {
        accepted: 1,
        run_ids,
    }))
}

/// `POST /ingest`: a batch of SDK events, in any order; idempotent.
pub async fn ingest(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse> {
    Params::parse(req.query_string(), &[])?;
    let body = read_body(&req, payload, state.body_limit).await?;
    let batch: IngestBatch = parse_json(&body)?;
    let accepted = batch.events.len();
    let set = WriteSet::from_batch(batch).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let run_ids = write(&state, set).await?;
    Ok(HttpResponse::Ok().json(IngestResponse { accepted, run_ids }))
}

/// `GET /runs`: runs newest first.
pub async fn list_runs(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    let p = Params::parse(
        req.query_string(),
        &[
            "pipeline",
            "status",
            "correlation_id",
            "trace_id",
            "since",
            "until",
            "limit",
            "cursor",
        ],
    )?;
    let filter = RunFilter {
        pipeline: p.text("pipeline"),
        status: p.name("status")?,
        correlation_id: p.text("correlation_id"),
        trace_id: p
            .text("trace_id")
            .map(|t| xray_wire::normalize_trace_id(&t))
            .transpose()
            .map_err(|e| ApiError::BadRequest(format!("`trace_id` {e}")))?,
        since: p.time("since")?,
        until: p.time("until")?,
        limit: p.limit(DEFAULT_LIMIT)?,
        cursor: p.cursor()?,
    };
    let store = state.store.clone();
    let list = web::block(move || store.list_runs(&filter)).await??;
    Ok(HttpResponse::Ok().json(list))
}

/// `GET /runs/{id}`: the run with all its steps.
pub async fn get_run(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    Params::parse(req.query_string(), &[])?;
    let run_id = path.into_inner();
    check_segment("run id", &run_id)?;
    let store = state.store.clone();
    let id = run_id.clone();
    match web::block(move || store.run_detail(&id)).await?? {
        Some(run) => Ok(HttpResponse::Ok().json(run)),
        None => Err(ApiError::NotFound(format!("no run with id `{run_id}`"))),
    }
}

/// `GET /steps`: steps across all runs and pipelines.
pub async fn search_steps(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    let p = Params::parse(
        req.query_string(),
        &[
            "step_type",
            "name",
            "pipeline",
            "rejection_rate_gt",
            "rejection_rate_lt",
            "duration_gt",
            "duration_lt",
            "score_gt",
            "score_lt",
            "since",
            "until",
            "limit",
            "cursor",
        ],
    )?;
    let filter = StepFilter {
        step_type: p.name("step_type")?,
        name: p.text("name"),
        pipeline: p.text("pipeline"),
        rejection_rate_gt: p.number("rejection_rate_gt")?,
        rejection_rate_lt: p.number("rejection_rate_lt")?,
        duration_gt: p.number("duration_gt")?,
        duration_lt: p.number("duration_lt")?,
        score_gt: p.number("score_gt")?,
        score_lt: p.number("score_lt")?,
        since: p.time("since")?,
        until: p.time("until")?,
        limit: p.limit(DEFAULT_LIMIT)?,
        cursor: p.cursor()?,
    };
    let store = state.store.clone();
    let list = web::block(move || store.search_steps(&filter)).await??;
    Ok(HttpResponse::Ok().json(list))
}

/// `GET /runs/{id}/items/{item_id}`: what happened to one item in one run.
pub async fn item_fate(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    Params::parse(req.query_string(), &[])?;
    let (run_id, item_id) = path.into_inner();
    check_segment("run id", &run_id)?;
    check_segment("item id", &item_id)?;
    let store = state.store.clone();
    let (run, item) = (run_id.clone(), item_id);
    match web::block(move || store.item_fate(&run, &item)).await?? {
        Some(fate) => Ok(HttpResponse::Ok().json(fate)),
        None => Err(ApiError::NotFound(format!("no run with id `{run_id}`"))),
    }
}

/// `GET /items/{item_id}`: one item across runs.
pub async fn item_history(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let p = Params::parse(req.query_string(), &["pipeline", "limit"])?;
    let item = path.into_inner();
    check_segment("item id", &item)?;
    let pipeline = p.text("pipeline");
    let limit = p.limit(100)?;
    let store = state.store.clone();
    let history =
        web::block(move || store.item_history(&item, pipeline.as_deref(), limit)).await??;
    Ok(HttpResponse::Ok().json(history))
}

/// `GET /health`: is the database reachable.
pub async fn health(state: web::Data<AppState>) -> Result<HttpResponse> {
    let store = state.store.clone();
    web::block(move || store.ping()).await??;
    Ok(HttpResponse::Ok().json(Health {
        status: "ok".into(),
        backend: state.store.backend().into(),
        version: env!("CARGO_PKG_VERSION").into(),
    }))
}

/// Anything else: a JSON 404 that lists the endpoints.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse> {
    Err(ApiError::NotFound(format!(
        "no endpoint {} {}; endpoints: POST /runs, POST /ingest, GET /runs, GET /runs/{{id}}, \
         GET /runs/{{id}}/items/{{item_id}}, GET /items/{{item_id}}, GET /steps, GET /health",
        req.method(),
        req.path()
    )))
}
