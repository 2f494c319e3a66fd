//! Operating endpoints: alert rules and their firings, retention status and sweeps. It parses
//! and answers; the rules' evaluation is [`crate::alerts`]'s, the sweep [`crate::retention`]'s.

use super::error::{block, ApiError};
use super::handlers::{parse_json, read_body};
use super::params::{check_segment, Params};
use super::AppState;
use crate::alerts::{check_rule, event_view, new_rule_row, rule_view};
use crate::store::alerts::AlertRow;
use actix_web::{web, HttpRequest, HttpResponse};
use xray_wire::{
    AlertEventList, AlertList, AlertRule, AlertRuleSpec, ApiErrorBody, RetentionStatus, SweepReport,
};

type Result<T> = std::result::Result<T, ApiError>;

/// `POST /alerts`: a new rule.
#[utoipa::path(
    post,
    path = "/alerts",
    tag = "alerts",
    request_body(content = AlertRuleSpec, description = "The rule: a name, a webhook URL and a condition."),
    responses(
        (status = 201, description = "Stored; evaluated from now on.", body = AlertRule),
        (status = 400, description = "A malformed request, named in the message.", body = ApiErrorBody),
    )
)]
pub async fn create_alert(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse> {
    Params::parse(req.query_string(), &[])?;
    let body = read_body(&req, payload, state.body_limit).await?;
    let spec: AlertRuleSpec = parse_json(&body)?;
    check_rule(&spec).map_err(ApiError::BadRequest)?;
    let row = new_rule_row(uuid::Uuid::new_v4().to_string(), &spec, "api");
    let store = state.store.clone();
    let stored = row.clone();
    block(move || store.put_alert(&stored)).await??;
    let view =
        rule_view(&row).ok_or_else(|| ApiError::BadRequest("the rule cannot be stored".into()))?;
    Ok(HttpResponse::Created().json(view))
}

/// `GET /alerts`: every rule.
#[utoipa::path(
    get,
    path = "/alerts",
    tag = "alerts",
    responses(
        (status = 200, description = "Every rule, oldest first.", body = AlertList),
        (status = 400, description = "A malformed request, named in the message.", body = ApiErrorBody),
    )
)]
pub async fn list_alerts(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    Params::parse(req.query_string(), &[])?;
    let store = state.store.clone();
    let rows = block(move || store.list_alerts()).await??;
    Ok(HttpResponse::Ok().json(AlertList {
        alerts: rows.iter().filter_map(rule_view).collect(),
    }))
}

/// The rule a path names, with its id; 404 when there is none.
async fn find_alert(state: &AppState, path: web::Path<String>) -> Result<(String, AlertRow)> {
    let id = path.into_inner();
    check_segment("alert id", &id)?;
    let store = state.store.clone();
    let key = id.clone();
    match block(move || store.get_alert(&key)).await?? {
        Some(row) => Ok((id, row)),
        None => Err(ApiError::NotFound(format!("no alert with id `{id}`"))),
    }
}

/// `GET /alerts/{id}`: one rule.
#[utoipa::path(
    get,
    path = "/alerts/{alert_id}",
    tag = "alerts",
    params(("alert_id" = String, Path, description = "The rule's id.")),
    responses(
        (status = 200, description = "The rule.", body = AlertRule),
        (status = 400, description = "A malformed request, named in the message.", body = ApiErrorBody),
        (status = 404, description = "No such rule.", body = ApiErrorBody),
    )
)]
pub async fn get_alert(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    Params::parse(req.query_string(), &[])?;
    let (_, row) = find_alert(&state, path).await?;
    Ok(HttpResponse::Ok().json(rule_view(&row)))
}

/// `DELETE /alerts/{id}`: removes a rule made over the API, with its firings.
#[utoipa::path(
    delete,
    path = "/alerts/{alert_id}",
    tag = "alerts",
    params(("alert_id" = String, Path, description = "The rule's id.")),
    responses(
        (status = 204, description = "Deleted, with its firings."),
        (status = 400, description = "The rule comes from the config file, or the request is malformed.", body = ApiErrorBody),
        (status = 404, description = "No such rule.", body = ApiErrorBody),
    )
)]
pub async fn delete_alert(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    Params::parse(req.query_string(), &[])?;
    let (id, row) = find_alert(&state, path).await?;
    if row.source == "config" {
        return Err(ApiError::BadRequest(format!(
            "alert `{id}` comes from the server's config file; remove it there"
        )));
    }
    let store = state.store.clone();
    block(move || store.delete_alert(&id)).await??;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /alerts/{id}/events`: the rule's firings, newest first.
#[utoipa::path(
    get,
    path = "/alerts/{alert_id}/events",
    tag = "alerts",
    params(
        ("alert_id" = String, Path, description = "The rule's id."),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "How many, 1 to 1000 (default 100)."),
    ),
    responses(
        (status = 200, description = "Firings, newest first, with their delivery state.", body = AlertEventList),
        (status = 400, description = "A malformed request, named in the message.", body = ApiErrorBody),
        (status = 404, description = "No such rule.", body = ApiErrorBody),
    )
)]
pub async fn alert_events(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let p = Params::parse(req.query_string(), &["limit"])?;
    let limit = p.limit(100)?;
    let (id, _) = find_alert(&state, path).await?;
    let store = state.store.clone();
    let rows = block(move || store.alert_events(&id, limit)).await??;
    Ok(HttpResponse::Ok().json(AlertEventList {
        events: rows.into_iter().filter_map(event_view).collect(),
    }))
}

/// `GET /admin/retention`: the policies and what the last sweep removed.
#[utoipa::path(
    get,
    path = "/admin/retention",
    tag = "admin",
    responses(
        (status = 200, description = "Policies and the last sweep.", body = RetentionStatus),
        (status = 400, description = "A malformed request, named in the message.", body = ApiErrorBody),
    )
)]
pub async fn retention(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    Params::parse(req.query_string(), &[])?;
    Ok(HttpResponse::Ok().json(state.retention.status()))
}

/// `POST /admin/retention/sweep`: sweeps now and answers what went.
#[utoipa::path(
    post,
    path = "/admin/retention/sweep",
    tag = "admin",
    responses(
        (status = 200, description = "What the sweep deleted.", body = SweepReport),
        (status = 400, description = "A malformed request, named in the message.", body = ApiErrorBody),
    )
)]
pub async fn sweep_now(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    Params::parse(req.query_string(), &[])?;
    let retention = state.retention.clone();
    let report = block(move || retention.sweep()).await?;
    Ok(HttpResponse::Ok().json(report))
}
