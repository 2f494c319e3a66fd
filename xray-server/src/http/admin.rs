//! Operating endpoints: alert rules and their firings, retention status and sweeps.

use super::error::ApiError;
use super::handlers::{parse_json, read_body};
use super::params::{check_segment, Params};
use super::AppState;
use crate::alerts::{check_rule, event_view, new_rule_row, rule_view};
use actix_web::{web, HttpRequest, HttpResponse};
use xray_wire::{AlertEventList, AlertList, AlertRuleSpec};

type Result<T> = std::result::Result<T, ApiError>;

/// `POST /alerts`: a new rule.
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
    web::block(move || store.put_alert(&stored)).await??;
    let view =
        rule_view(&row).ok_or_else(|| ApiError::BadRequest("the rule cannot be stored".into()))?;
    Ok(HttpResponse::Created().json(view))
}

/// `GET /alerts`: every rule.
pub async fn list_alerts(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    Params::parse(req.query_string(), &[])?;
    let store = state.store.clone();
    let rows = web::block(move || store.list_alerts()).await??;
    Ok(HttpResponse::Ok().json(AlertList {
        alerts: rows.iter().filter_map(rule_view).collect(),
    }))
}

fn alert_id(path: web::Path<String>) -> Result<String> {
    let id = path.into_inner();
    check_segment("alert id", &id)?;
    Ok(id)
}

/// `GET /alerts/{id}`: one rule.
pub async fn get_alert(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    Params::parse(req.query_string(), &[])?;
    let id = alert_id(path)?;
    let store = state.store.clone();
    let key = id.clone();
    match web::block(move || store.get_alert(&key)).await?? {
        Some(row) => Ok(HttpResponse::Ok().json(rule_view(&row))),
        None => Err(ApiError::NotFound(format!("no alert with id `{id}`"))),
    }
}

/// `DELETE /alerts/{id}`: removes a rule made over the API, with its firings.
pub async fn delete_alert(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    Params::parse(req.query_string(), &[])?;
    let id = alert_id(path)?;
    let store = state.store.clone();
    let key = id.clone();
    let found = web::block(move || store.get_alert(&key)).await??;
    match found {
        None => Err(ApiError::NotFound(format!("no alert with id `{id}`"))),
        Some(row) if row.source == "config" => Err(ApiError::BadRequest(format!(
            "alert `{id}` comes from the server's config file; remove it there"
        ))),
        Some(_) => {
            let store = state.store.clone();
            web::block(move || store.delete_alert(&id)).await??;
            Ok(HttpResponse::NoContent().finish())
        }
    }
}

/// `GET /alerts/{id}/events`: the rule's firings, newest first.
pub async fn alert_events(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let p = Params::parse(req.query_string(), &["limit"])?;
    let limit = p.limit(100)?;
    let id = alert_id(path)?;
    let store = state.store.clone();
    let key = id.clone();
    let (rule, rows) = web::block(move || {
        let rule = store.get_alert(&key)?;
        let rows = store.alert_events(&key, limit)?;
        Ok::<_, crate::store::StoreError>((rule, rows))
    })
    .await??;
    if rule.is_none() {
        return Err(ApiError::NotFound(format!("no alert with id `{id}`")));
    }
    Ok(HttpResponse::Ok().json(AlertEventList {
        events: rows.into_iter().filter_map(event_view).collect(),
    }))
}

/// `GET /admin/retention`: the policies and what the last sweep removed.
pub async fn retention(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    Params::parse(req.query_string(), &[])?;
    Ok(HttpResponse::Ok().json(state.retention.status()))
}

/// `POST /admin/retention/sweep`: sweeps now and answers what went.
pub async fn sweep_now(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    Params::parse(req.query_string(), &[])?;
    let retention = state.retention.clone();
    let report = web::block(move || retention.sweep()).await?;
    Ok(HttpResponse::Ok().json(report))
}
