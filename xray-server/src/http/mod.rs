//! The HTTP API (actix-web): the route table ([`ROUTES`]), request parsing and error answers.
//! It must not touch the database but through [`crate::store::Store`].

pub mod admin;
pub mod auth;
pub mod error;
pub mod handlers;
mod ingest;
pub mod insights;
pub mod openapi;
pub mod otlp;
pub mod params;
pub mod run_steps;
pub mod strict;
pub mod ui;

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
        // The path as the router matches it (percent-decoded), not as sent: `/%61dmin` must
        // need the scope of `/admin`.
        state.keys.check(
            req.method(),
            req.match_info().as_str(),
            req.headers().get(actix_web::http::header::AUTHORIZATION),
        )?;
    }
    next.call(req).await
}

/// One endpoint: its method and path, as the OpenAPI spec names them, and how actix serves it.
pub struct Route {
    /// The HTTP method, lowercase as in the spec (`get`, `post`).
    pub method: &'static str,
    /// The path pattern (`/runs/{run_id}`), the same in actix and in the spec.
    pub path: &'static str,
    /// Adds the route to an app.
    pub register: fn(&mut web::ServiceConfig),
}

/// `route!(get "/path" => handler)`: a [`Route`] whose method and path are written once.
macro_rules! route {
    ($method:ident $path:literal => $handler:path) => {
        Route {
            method: stringify!($method),
            path: $path,
            register: |cfg| {
                cfg.route($path, web::$method().to($handler));
            },
        }
    };
}

/// Every endpoint, in one table: [`configure`] registers exactly these, and the spec test
/// (`tests/openapi.rs`) checks that each is in `/openapi.json` and nothing else is. To add an
/// endpoint: a line here, `#[utoipa::path]` on its handler, and the handler in
/// [`openapi::ApiDoc`]'s `paths(...)`.
pub const ROUTES: &[Route] = &[
    route!(get "/health" => handlers::health),
    route!(head "/health" => handlers::health_probe),
    route!(post "/ingest" => handlers::ingest),
    route!(get "/runs" => handlers::list_runs),
    route!(post "/runs" => handlers::post_run),
    route!(get "/runs/{run_id}" => handlers::get_run),
    route!(get "/runs/{run_id}/items/{item_id}" => handlers::item_fate),
    route!(get "/items/{item_id}" => handlers::item_history),
    route!(get "/steps" => handlers::search_steps),
    route!(get "/pipelines" => insights::list_pipelines),
    route!(get "/pipelines/{pipeline}/stats" => insights::pipeline_stats),
    route!(get "/pipelines/{pipeline}/compare" => insights::pipeline_compare),
    route!(get "/runs/{run_id}/steps" => run_steps::list_run_steps),
    route!(get "/runs/{run_id}/steps/{step_id}" => run_steps::get_run_step),
    route!(get "/openapi.json" => openapi::serve_spec),
    route!(get "/alerts" => admin::list_alerts),
    route!(post "/alerts" => admin::create_alert),
    route!(get "/alerts/{alert_id}" => admin::get_alert),
    route!(delete "/alerts/{alert_id}" => admin::delete_alert),
    route!(get "/alerts/{alert_id}/events" => admin::alert_events),
    route!(get "/admin/retention" => admin::retention),
    route!(post "/admin/retention/sweep" => admin::sweep_now),
    route!(post "/v1/traces" => otlp::export_traces),
];

/// Registers every route of [`ROUTES`].
pub fn configure(cfg: &mut web::ServiceConfig) {
    for route in ROUTES {
        (route.register)(cfg);
    }
    // The web UI's page and files: not API endpoints, so not in ROUTES or the spec.
    cfg.configure(ui::configure);
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
                        ms = %format_args!("{:.3}", started.elapsed().as_secs_f64() * 1000.0),
                        "request"
                    );
                    Ok(res)
                }
            })
    })
    .workers(workers.max(1))
    // Stopping is the caller's: `crate::run` stops gracefully on SIGTERM and SIGINT alike.
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}
