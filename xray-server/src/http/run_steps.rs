//! Browsing one run a piece at a time: `GET /runs/{id}/steps` (a page of its steps without
//! samples) and `GET /runs/{id}/steps/{step_id}` (one step in full). The web UI's run view uses
//! them, so a run with thousands of steps opens without loading every sample at once. Queries
//! are [`crate::store::run_steps`]'s.

use super::error::{block, ApiError};
use super::params::{check_segment, CursorParam, Params, DEFAULT_LIMIT};
use super::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use xray_wire::{ApiErrorBody, RunStepPage, StepView};

/// `GET /runs/{id}/steps`: the run and a page of its steps in order, with rejection counts.
#[utoipa::path(
    get,
    path = "/runs/{run_id}/steps",
    tag = "read",
    params(
        ("run_id" = String, Path, description = "The run's id."),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size, 1 to 1000 (default 50)."),
        ("cursor" = Option<CursorParam>, Query, description = "The previous page's `next_cursor`."),
    ),
    responses(
        (status = 200, description = "The run and a page of its steps, in order, without samples.", body = RunStepPage),
        (status = 400, description = "A malformed id or query parameter, named in the message.", body = ApiErrorBody),
        (status = 404, description = "No such run.", body = ApiErrorBody),
    )
)]
pub async fn list_run_steps(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = Params::parse(req.query_string(), &["limit", "cursor"])?;
    let run_id = path.into_inner();
    check_segment("run id", &run_id)?;
    let limit = p.limit(DEFAULT_LIMIT)?;
    let cursor = p.cursor()?;
    let store = state.store.clone();
    let id = run_id.clone();
    match block(move || store.run_step_page(&id, limit, cursor.as_ref())).await?? {
        Some(page) => Ok(HttpResponse::Ok().json(page)),
        None => Err(ApiError::NotFound(format!("no run with id `{run_id}`"))),
    }
}

/// `GET /runs/{id}/steps/{step_id}`: one step with its counts and every kept sample.
#[utoipa::path(
    get,
    path = "/runs/{run_id}/steps/{step_id}",
    tag = "read",
    params(
        ("run_id" = String, Path, description = "The run's id."),
        ("step_id" = String, Path, description = "The step's id."),
    ),
    responses(
        (status = 200, description = "The step in full, as in `GET /runs/{id}`.", body = StepView),
        (status = 400, description = "A malformed id, or a query parameter (none are accepted).", body = ApiErrorBody),
        (status = 404, description = "No such run or step.", body = ApiErrorBody),
    )
)]
pub async fn get_run_step(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    Params::parse(req.query_string(), &[])?;
    let (run_id, step_id) = path.into_inner();
    check_segment("run id", &run_id)?;
    check_segment("step id", &step_id)?;
    let store = state.store.clone();
    let (run, step) = (run_id.clone(), step_id.clone());
    match block(move || store.step_detail(&run, &step)).await?? {
        Some(view) => Ok(HttpResponse::Ok().json(view)),
        None => Err(ApiError::NotFound(format!(
            "no step with id `{step_id}` in run `{run_id}`"
        ))),
    }
}
