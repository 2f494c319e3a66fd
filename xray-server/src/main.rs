//! `xray-server`: serve the X-Ray API (SQLite `xray.db` by default, PostgreSQL by `DATABASE_URL`).

use clap::Parser;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("XRAY_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours on a terminal only: a log file or a journal gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let config = xray_server::Config::parse();
    match xray_server::run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Once, on standard error, where the log goes too.
            eprintln!("xray-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
