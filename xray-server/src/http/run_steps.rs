//! Browsing one run a piece at a time: `GET /runs/{id}/steps` (a page of its steps without
//! samples) and `GET /runs/{id}/steps/{step_id}` (one step in full). The web UI's run view uses
//! them, so a run with thousands of steps opens without loading every sample at once.

use super::error::ApiError;
use super::params::{check_segment, Params, DEFAULT_LIMIT};
use super::AppState;
use actix_web::{web, HttpRequest, HttpResponse};

/// `GET /runs/{id}/steps`: the run and a page of its steps in order, with rejection counts.
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
    match web::block(move || store.run_step_page(&id, limit, cursor.as_ref())).await?? {
        Some(page) => Ok(HttpResponse::Ok().json(page)),
        None => Err(ApiError::NotFound(format!("no run with id `{run_id}`"))),
    }
}

/// `GET /runs/{id}/steps/{step_id}`: one step with its counts and every kept sample.
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
    match web::block(move || store.step_detail(&run, &step)).await?? {
        Some(view) => Ok(HttpResponse::Ok().json(view)),
        None => Err(ApiError::NotFound(format!(
            "no step with id `{step_id}` in run `{run_id}`"
        ))),
    }
}
