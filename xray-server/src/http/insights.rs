//! Questions about many runs at once: `GET /pipelines` (each pipeline's health at a glance),
//! `GET /pipelines/{p}/stats` (its figures over time) and `/compare` (two sets of its runs).
//! Queries are [`crate::store`]'s (`store/pipelines.rs`, `store/stats.rs`).

use super::error::{block, ApiError};
use super::params::{check_path_utf8, check_segment, parse_time, Params, SelectorParam, TimeParam};
use super::AppState;
use crate::store::stats::Selection;
use actix_web::{web, HttpRequest, HttpResponse};
use xray_wire::{ApiErrorBody, BucketWidth, PipelineCompare, PipelineList, PipelineStats};

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
    let list = block(move || store.pipeline_list(since, until)).await??;
    Ok(HttpResponse::Ok().json(list))
}

/// `GET /pipelines/{pipeline}/stats`: the pipeline's runs and each step's figures, bucket by
/// bucket, from the rollups.
#[utoipa::path(
    get,
    path = "/pipelines/{pipeline}/stats",
    tag = "read",
    params(
        ("pipeline" = String, Path, description = "The pipeline's name."),
        ("since" = Option<TimeParam>, Query, description = "Runs started at or after this time (the whole hour it falls in counts): RFC 3339 or a date."),
        ("until" = Option<TimeParam>, Query, description = "Runs started before this time (hours starting before it count): RFC 3339 or a date."),
        ("bucket" = Option<BucketWidth>, Query, description = "The buckets' width: `hour` (default) or `day` (UTC)."),
        ("version" = Option<String>, Query, description = "Only the runs of this version of the pipeline's code."),
    ),
    responses(
        (status = 200, description = "The pipeline's finished runs and steps per bucket (none for an unknown pipeline).", body = PipelineStats),
        (status = 400, description = "A malformed or unknown query parameter, named in the message.", body = ApiErrorBody),
        (status = 503, description = "The database is busy or unreachable.", body = ApiErrorBody),
    )
)]
pub async fn pipeline_stats(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = Params::parse(req.query_string(), &["since", "until", "bucket", "version"])?;
    check_path_utf8(req.uri().path())?;
    let pipeline = path.into_inner();
    check_segment("pipeline", &pipeline)?;
    let sel = Selection {
        since: p.time("since")?,
        until: p.time("until")?,
        version: p.text("version"),
    };
    let width = p.name("bucket")?.unwrap_or(BucketWidth::Hour);
    let store = state.store.clone();
    let stats = block(move || store.pipeline_stats(&pipeline, &sel, width)).await??;
    Ok(HttpResponse::Ok().json(stats))
}

/// `GET /pipelines/{pipeline}/compare`: two sets of the pipeline's runs side by side.
#[utoipa::path(
    get,
    path = "/pipelines/{pipeline}/compare",
    tag = "read",
    params(
        ("pipeline" = String, Path, description = "The pipeline's name."),
        ("a" = Option<SelectorParam>, Query, description = "The baseline (left out: every run of the pipeline): `version:1.4.2` (that version's runs) or `since:<t>,until:<t>` (runs started in that window, whole hours; either part may be left out; times RFC 3339 or dates)."),
        ("b" = Option<SelectorParam>, Query, description = "What to compare with it, in the same form (left out: every run)."),
    ),
    responses(
        (status = 200, description = "Each step in A and in B, the one that moved most first.", body = PipelineCompare),
        (status = 400, description = "A malformed selector or an unknown query parameter, named in the message.", body = ApiErrorBody),
        (status = 503, description = "The database is busy or unreachable.", body = ApiErrorBody),
    )
)]
pub async fn pipeline_compare(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = Params::parse(req.query_string(), &["a", "b"])?;
    check_path_utf8(req.uri().path())?;
    let pipeline = path.into_inner();
    check_segment("pipeline", &pipeline)?;
    // A selector left out selects every run of the pipeline.
    let a_text = p.text("a").unwrap_or_default();
    let b_text = p.text("b").unwrap_or_default();
    let (a, b) = (selector("a", &a_text)?, selector("b", &b_text)?);
    let store = state.store.clone();
    let cmp =
        block(move || store.pipeline_compare(&pipeline, (&a_text, &a), (&b_text, &b))).await??;
    Ok(HttpResponse::Ok().json(cmp))
}

/// Reads a compare selector given as `name`: `version:V` or `since:T,until:T` (either part).
fn selector(name: &str, text: &str) -> Result<Selection, ApiError> {
    if text.is_empty() {
        return Ok(Selection::default());
    }
    let bad = |why: &str| {
        ApiError::BadRequest(format!(
            "`{name}` must be `version:<version>` or `since:<time>,until:<time>` ({why}), got `{text}`"
        ))
    };
    if let Some(v) = text.strip_prefix("version:") {
        if v.is_empty() {
            return Err(bad("the version is empty"));
        }
        return Ok(Selection {
            version: Some(v.to_string()),
            ..Selection::default()
        });
    }
    let mut sel = Selection::default();
    for part in text.split(',') {
        let (key, value) = part
            .split_once(':')
            .ok_or_else(|| bad("no `kind:` prefix"))?;
        let slot = match key {
            "since" => &mut sel.since,
            "until" => &mut sel.until,
            _ => return Err(bad(&format!("unknown kind `{key}`"))),
        };
        if slot.is_some() {
            return Err(bad(&format!("`{key}` given twice")));
        }
        *slot = Some(parse_time(&format!("{name}: {key}"), value)?);
    }
    Ok(sel)
}
