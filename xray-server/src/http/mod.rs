//! The HTTP API (actix-web): routes, request parsing and error answers.

pub mod error;
pub mod handlers;
pub mod params;
pub mod run_steps;
pub mod ui;

use crate::store::Store;
use actix_web::dev::Service;
use actix_web::{web, App, HttpServer};
use std::net::TcpListener;
use std::time::Instant;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
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
        .route(
            "/runs/{run_id}/steps",
            web::get().to(run_steps::list_run_steps),
        )
        .route(
            "/runs/{run_id}/steps/{step_id}",
            web::get().to(run_steps::get_run_step),
        )
        .configure(ui::configure);
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
