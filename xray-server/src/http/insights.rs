//! Questions about many runs at once: `GET /pipelines` (each pipeline's health at a glance).
//! Queries are [`crate::store`]'s (`store/pipelines.rs`).

use super::error::ApiError;
use super::params::{Params, TimeParam};
use super::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use xray_wire::{ApiErrorBody, PipelineList};

/// `GET /pipelines`: every pipeline with runs in the window, its runs, failures and versions.
#[utoipa::path(
    get,
    path = "/pipelines",
    tag = "read",
    params(
        ("since" = Option<TimeParam>, Query, description = "Count runs started at or after this time: RFC 3339 (`2026-11-26T12:00:00Z`) or a date (`2026-11-26`)."),
        ("until" = Option<TimeParam>, Query, description = "Count runs started before this time: RFC 3339 or a date."),
    ),
    responses(
        (status = 200, description = "The pipelines, by name.", body = PipelineList),
        (status = 400, description = "A malformed or unknown query parameter, named in the message.", body = ApiErrorBody),
        (status = 503, description = "The database is busy or unreachable.", body = ApiErrorBody),
    )
)]
pub async fn list_pipelines(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = Params::parse(req.query_string(), &["since", "until"])?;
    let (since, until) = (p.time("since")?, p.time("until")?);
    let store = state.store.clone();
    let list = web::block(move || store.pipeline_list(since, until)).await??;
    Ok(HttpResponse::Ok().json(list))
}
