//! The endpoints: parse the request, run the store call on the blocking pool, answer. Checks
//! beyond parsing are [`crate::store::validate`]'s, queries the store's: none here.

use super::error::{block, ApiError};
use super::params::{
    check_path_utf8, check_segment, CursorParam, Params, TimeParam, DEFAULT_LIMIT,
};
use super::strict::Strict;
use super::AppState;
use crate::store::filter::{RunFilter, StepFilter};
use crate::store::rows::WriteSet;
use actix_web::dev::ResourceDef;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;
#[allow(unused_imports)] // named only in the OpenAPI attributes
use xray_wire::{
    ApiErrorBody, IngestBatch, ItemFate, ItemHistory, RunDetail, RunList, RunStatus, StepList,
    StepType,
};
use xray_wire::{Health, IngestResponse, RunRecord};

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
pub(crate) fn parse_json<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T> {
    if body.is_empty() {
        return Err(ApiError::BadRequest(
            "the request body is empty; expected JSON".into(),
        ));
    }
    parse_json_at(body, "")
}

/// [`parse_json`] of a part of a body found at `at` (`events[3]`; empty: the whole body),
/// which the message names.
pub(crate) fn parse_json_at<'de, T: Deserialize<'de>>(body: &'de [u8], at: &str) -> Result<T> {
    // Most bodies are valid: parse without tracking the path, and only parse a refused body
    // again, tracking it, to say where it went wrong. Read strictly: a struct as an object only.
    if let Ok(value) = super::strict::from_slice(body) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(Strict(&mut de)).map_err(|e| {
        let path = match (e.path().to_string(), at) {
            (p, "") => p,
            (p, at) if p == "." => at.to_string(),
            (p, at) => format!("{at}.{p}"),
        };
        let inner = e.into_inner();
        // JSON has no NaN or Infinity, and a number too big for a double (`1e999`) is refused.
        let hint = if inner.to_string().starts_with("number out of range") {
            " (numbers must be finite and within the range of a double)"
        } else {
            ""
        };
        if path == "." {
            ApiError::BadRequest(format!("invalid JSON body: {inner}{hint}"))
        } else if inner.is_syntax() || inner.is_eof() {
            ApiError::BadRequest(format!("invalid JSON body at {path}: {inner}{hint}"))
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
    block(move || store.write(&set)).await??;
    Ok(run_ids)
}

/// `POST /runs`: one complete run.
#[utoipa::path(
    post,
    path = "/runs",
    tag = "write",
    request_body(content = RunRecord, description = "One complete run with its steps."),
    responses(
        (status = 201, description = "Stored (a re-sent run is stored once).", body = IngestResponse),
        (status = 400, description = "Malformed JSON or an invalid field, named in the message.", body = ApiErrorBody),
        (status = 409, description = "A step id is already that of a step of another run; nothing is written.", body = ApiErrorBody),
        (status = 413, description = "The body is over the limit.", body = ApiErrorBody),
        (status = 503, description = "The database is busy or unreachable.", body = ApiErrorBody),
    )
)]
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
        refused: Vec::new(),
    }))
}

/// `POST /ingest`: a batch of SDK events, in any order; idempotent. Each event is stored or
/// refused on its own: the valid ones are stored and the others named in `refused`.
#[utoipa::path(
    post,
    path = "/ingest",
    tag = "write",
    request_body(content = IngestBatch, description = "SDK events, in any order; re-sent events are stored once."),
    responses(
        (status = 200, description = "The valid events are stored; `refused` names the others (invalid, or a step whose id is a step of another run), by their index in `events`, with what is wrong. Sending those again cannot help.", body = IngestResponse),
        (status = 400, description = "The body is not a batch (malformed JSON, no `events` array), or no event of it is valid: the first invalid one is named in the message; nothing is written.", body = ApiErrorBody),
        (status = 409, description = "Every valid event is a step whose id is already that of a step of another run (or more than 8 such steps are in the batch); nothing is written.", body = ApiErrorBody),
        (status = 413, description = "The body is over the limit.", body = ApiErrorBody),
        (status = 503, description = "The database is busy or unreachable.", body = ApiErrorBody),
    )
)]
pub async fn ingest(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse> {
    Params::parse(req.query_string(), &[])?;
    let body = read_body(&req, payload, state.body_limit).await?;
    let answer = super::ingest::ingest(&state.store, &body).await?;
    Ok(HttpResponse::Ok().json(answer))
}

/// `GET /runs`: runs newest first.
#[utoipa::path(
    get,
    path = "/runs",
    tag = "read",
    params(
        ("pipeline" = Option<String>, Query, description = "Only runs of this pipeline."),
        ("status" = Option<RunStatus>, Query, description = "Only runs with this status."),
        ("version" = Option<String>, Query, description = "Only runs of this version of the pipeline's code."),
        ("replay_of" = Option<String>, Query, description = "Only replays of this run or step."),
        ("correlation_id" = Option<String>, Query, description = "Only runs with this correlation id."),
        ("trace_id" = Option<String>, Query, pattern = "^[0-9a-fA-F]{31}[1-9a-fA-F]$", description = "Only runs of this W3C trace: 32 hex digits, any case."),
        ("since" = Option<TimeParam>, Query, description = "Runs started at or after this time: RFC 3339 (`2026-11-26T12:00:00Z`) or a date (`2026-11-26`)."),
        ("until" = Option<TimeParam>, Query, description = "Runs started before this time: RFC 3339 or a date."),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size, 1 to 1000 (default 50)."),
        ("cursor" = Option<CursorParam>, Query, description = "The previous page's `next_cursor`."),
    ),
    responses(
        (status = 200, description = "Runs, newest first.", body = RunList),
        (status = 400, description = "A malformed or unknown query parameter, named in the message.", body = ApiErrorBody),
        (status = 503, description = "The database is busy or unreachable.", body = ApiErrorBody),
    )
)]
pub async fn list_runs(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    let p = Params::parse(
        req.query_string(),
        &[
            "pipeline",
            "status",
            "version",
            "replay_of",
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
        version: p.text("version"),
        replay_of: p.text("replay_of"),
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
    let list = block(move || store.list_runs(&filter)).await??;
    Ok(HttpResponse::Ok().json(list))
}

/// `GET /runs/{id}`: the run with all its steps.
#[utoipa::path(
    get,
    path = "/runs/{run_id}",
    tag = "read",
    params(("run_id" = String, Path, description = "The run's id.")),
    responses(
        (status = 200, description = "The run with all its steps in order.", body = RunDetail),
        (status = 400, description = "A malformed id or a query parameter (none are accepted).", body = ApiErrorBody),
        (status = 404, description = "No such run.", body = ApiErrorBody),
        (status = 503, description = "The database is busy or unreachable.", body = ApiErrorBody),
    )
)]
pub async fn get_run(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    Params::parse(req.query_string(), &[])?;
    check_path_utf8(req.uri().path())?;
    let run_id = path.into_inner();
    check_segment("run id", &run_id)?;
    let store = state.store.clone();
    let id = run_id.clone();
    match block(move || store.run_detail(&id)).await?? {
        Some(run) => Ok(HttpResponse::Ok().json(run)),
        None => Err(ApiError::NotFound(format!("no run with id `{run_id}`"))),
    }
}

/// `GET /steps`: steps across all runs and pipelines.
#[utoipa::path(
    get,
    path = "/steps",
    tag = "read",
    params(
        ("step_type" = Option<StepType>, Query, description = "Only steps of this type."),
        ("name" = Option<String>, Query, description = "Only steps with this name."),
        ("pipeline" = Option<String>, Query, description = "Only steps of runs of this pipeline."),
        ("rejection_rate_gt" = Option<f64>, Query, description = "Rejection rate above this (0 to 1)."),
        ("rejection_rate_lt" = Option<f64>, Query, description = "Rejection rate below this (0 to 1)."),
        ("duration_gt" = Option<f64>, Query, description = "Longer than this many milliseconds."),
        ("duration_lt" = Option<f64>, Query, description = "Shorter than this many milliseconds."),
        ("score_gt" = Option<f64>, Query, description = "Decision score above this."),
        ("score_lt" = Option<f64>, Query, description = "Decision score below this."),
        ("margin_lt" = Option<f64>, Query, description = "Close calls: rank steps whose last item in and first item out differ in score by less than this."),
        ("since" = Option<TimeParam>, Query, description = "Steps started at or after this time: RFC 3339 or a date."),
        ("until" = Option<TimeParam>, Query, description = "Steps started before this time: RFC 3339 or a date."),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size, 1 to 1000 (default 50)."),
        ("cursor" = Option<CursorParam>, Query, description = "The previous page's `next_cursor`."),
    ),
    responses(
        (status = 200, description = "Matching steps across all runs and pipelines, newest first.", body = StepList),
        (status = 400, description = "A malformed or unknown query parameter, named in the message.", body = ApiErrorBody),
        (status = 503, description = "The database is busy or unreachable.", body = ApiErrorBody),
    )
)]
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
            "margin_lt",
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
        margin_lt: p.number("margin_lt")?,
        since: p.time("since")?,
        until: p.time("until")?,
        limit: p.limit(DEFAULT_LIMIT)?,
        cursor: p.cursor()?,
    };
    let store = state.store.clone();
    let list = block(move || store.search_steps(&filter)).await??;
    Ok(HttpResponse::Ok().json(list))
}

/// `GET /runs/{id}/items/{item_id}`: what happened to one item in one run.
#[utoipa::path(
    get,
    path = "/runs/{run_id}/items/{item_id}",
    tag = "read",
    params(
        ("run_id" = String, Path, description = "The run's id."),
        ("item_id" = String, Path, description = "The item's id."),
    ),
    responses(
        (status = 200, description = "Every recorded event about the item in the run, in step order.", body = ItemFate),
        (status = 400, description = "A malformed id or a query parameter (none are accepted).", body = ApiErrorBody),
        (status = 404, description = "No such run.", body = ApiErrorBody),
        (status = 503, description = "The database is busy or unreachable.", body = ApiErrorBody),
    )
)]
pub async fn item_fate(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    Params::parse(req.query_string(), &[])?;
    check_path_utf8(req.uri().path())?;
    let (run_id, item_id) = path.into_inner();
    check_segment("run id", &run_id)?;
    check_segment("item id", &item_id)?;
    let store = state.store.clone();
    let (run, item) = (run_id.clone(), item_id);
    match block(move || store.item_fate(&run, &item)).await?? {
        Some(fate) => Ok(HttpResponse::Ok().json(fate)),
        None => Err(ApiError::NotFound(format!("no run with id `{run_id}`"))),
    }
}

/// `GET /items/{item_id}`: one item across runs.
#[utoipa::path(
    get,
    path = "/items/{item_id}",
    tag = "read",
    params(
        ("item_id" = String, Path, description = "The item's id."),
        ("pipeline" = Option<String>, Query, description = "Only runs of this pipeline."),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Most events returned, 1 to 1000 (default 100)."),
    ),
    responses(
        (status = 200, description = "Events about the item, newest run first.", body = ItemHistory),
        (status = 400, description = "A malformed id or query parameter, named in the message.", body = ApiErrorBody),
        (status = 503, description = "The database is busy or unreachable.", body = ApiErrorBody),
    )
)]
pub async fn item_history(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let p = Params::parse(req.query_string(), &["pipeline", "limit"])?;
    check_path_utf8(req.uri().path())?;
    let item = path.into_inner();
    check_segment("item id", &item)?;
    let pipeline = p.text("pipeline");
    let limit = p.limit(100)?;
    let store = state.store.clone();
    let history = block(move || store.item_history(&item, pipeline.as_deref(), limit)).await??;
    Ok(HttpResponse::Ok().json(history))
}

/// `GET /health`: is the database reachable.
#[utoipa::path(
    get,
    path = "/health",
    tag = "meta",
    responses(
        (status = 200, description = "The database answers.", body = Health),
        (status = 400, description = "A query parameter (none are accepted).", body = ApiErrorBody),
        (status = 503, description = "The database is busy or unreachable.", body = ApiErrorBody),
    )
)]
pub async fn health(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    Params::parse(req.query_string(), &[])?;
    let store = state.store.clone();
    block(move || store.ping()).await??;
    Ok(HttpResponse::Ok().json(Health {
        status: "ok".into(),
        backend: state.store.backend().into(),
        version: env!("CARGO_PKG_VERSION").into(),
    }))
}

/// `HEAD /health`: as `GET /health`, without the body (a load balancer's probe).
#[utoipa::path(
    head,
    path = "/health",
    tag = "meta",
    responses(
        (status = 200, description = "The database answers."),
        (status = 400, description = "A query parameter (none are accepted)."),
        (status = 503, description = "The database is busy or unreachable."),
    )
)]
pub async fn health_probe(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    health(req, state).await
}

/// Anything else: a JSON 405 (with `Allow`) for a known path with another method, else a JSON
/// 404; both list the endpoints.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse> {
    let endpoints: Vec<String> = super::ROUTES
        .iter()
        .map(|r| format!("{} {}", r.method.to_ascii_uppercase(), r.path))
        .collect();
    let allowed: Vec<String> = super::ROUTES
        .iter()
        .filter(|r| ResourceDef::new(r.path).is_match(req.path()))
        .map(|r| r.method.to_ascii_uppercase())
        .collect();
    if !allowed.is_empty() {
        return Err(ApiError::MethodNotAllowed {
            message: format!(
                "{} {} is not an endpoint; {} takes {}",
                req.method(),
                req.path(),
                req.path(),
                allowed.join(", ")
            ),
            allow: allowed.join(", "),
        });
    }
    Err(ApiError::NotFound(format!(
        "no endpoint {} {}; endpoints: {}",
        req.method(),
        req.path(),
        endpoints.join(", ")
    )))
}
