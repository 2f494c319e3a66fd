//! The HTTP API (actix-web): routes, request parsing and error answers.

pub mod admin;
pub mod auth;
pub mod error;
pub mod handlers;
pub mod params;

use crate::alerts::Alerts;
use crate::retention::Retention;
use crate::settings::Settings;
use crate::store::{Store, StoreError};
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpServer};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// API keys (none configured: open).
    pub keys: Arc<auth::ApiKeys>,
    /// The retention sweeper.
    pub retention: Arc<Retention>,
    /// The alerting engine.
    pub alerts: Arc<Alerts>,
}

impl AppState {
    /// The shared state for `settings`; stores the config file's alert rules.
    pub fn new(store: Store, settings: &Settings) -> Result<AppState, StoreError> {
        let alerts = Alerts::new(
            store.clone(),
            settings.alert_interval,
            settings.alerts.clone(),
        );
        alerts.install_config_rules()?;
        Ok(AppState {
            retention: Retention::new(settings.retention.clone(), store.clone()),
            alerts,
            keys: Arc::new(settings.keys.clone()),
            body_limit: settings.body_limit,
            store,
        })
    }
}

/// Refuses requests without a key of the scope they need (when keys are configured).
async fn require_key(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(state) = req.app_data::<web::Data<AppState>>() {
        state.keys.check(
            req.method(),
            req.path(),
            req.headers().get(actix_web::http::header::AUTHORIZATION),
        )?;
    }
    next.call(req).await
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(handlers::health))
        .route("/ingest", web::post().to(handlers::ingest))
        .service(
            web::resource("/runs")
                .route(web::get().to(handlers::list_runs))
                .route(web::post().to(handlers::post_run)),
        )
        .route("/runs/{run_id}", web::get().to(handlers::get_run))
        .route(
            "/runs/{run_id}/items/{item_id}",
            web::get().to(handlers::item_fate),
        )
        .route("/items/{item_id}", web::get().to(handlers::item_history))
        .route("/steps", web::get().to(handlers::search_steps))
        .service(
            web::resource("/alerts")
                .route(web::get().to(admin::list_alerts))
                .route(web::post().to(admin::create_alert)),
        )
        .service(
            web::resource("/alerts/{alert_id}")
                .route(web::get().to(admin::get_alert))
                .route(web::delete().to(admin::delete_alert)),
        )
        .route(
            "/alerts/{alert_id}/events",
            web::get().to(admin::alert_events),
        )
        .route("/admin/retention", web::get().to(admin::retention))
        .route("/admin/retention/sweep", web::post().to(admin::sweep_now));
}

/// Builds the server on an already-bound listener (port 0 in tests). Await it to serve.
pub fn serve(
    listener: TcpListener,
    state: AppState,
    workers: usize,
) -> std::io::Result<actix_web::dev::Server> {
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .configure(configure)
            .default_service(web::to(handlers::not_found))
            .wrap(from_fn(require_key))
            .wrap_fn(|req, srv| {
                let started = Instant::now();
                let method = req.method().clone();
                let path = req.path().to_string();
                let fut = srv.call(req);
                async move {
                    let res = fut.await?;
                    tracing::info!(
                        %method,
                        %path,
                        status = res.status().as_u16(),
                        ms = started.elapsed().as_secs_f64() * 1000.0,
                        "request"
                    );
                    Ok(res)
                }
            })
    })
    .workers(workers.max(1))
    .listen(listener)?
    .run();
    Ok(server)
}
