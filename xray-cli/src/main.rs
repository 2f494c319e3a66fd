//! `xray`: the X-Ray server's answers in the terminal, for people who would rather not write curl.
//!
//! ```text
//! xray runs --pipeline competitor_selection --status completed
//! xray show RUN_ID
//! xray steps --type filter --rejection-rate-gt 0.9
//! xray why RUN_ID ITEM_ID
//! xray pipelines
//! xray compare competitor_selection 1.0 1.1
//! xray replay RUN_ID [--step STEP] -- cargo run --example competitor_selection
//! ```
//!
//! `--server URL` (default `XRAY_ENDPOINT`, else `http://127.0.0.1:8000`); `--json` prints the
//! server's JSON instead of tables. Errors are one line on standard error and a non-zero exit.

mod insights;
mod render;
mod replay;

use clap::{Parser, Subcommand};
use serde_json::Value;
use std::process::ExitCode;
use xray_wire::{
    ApiErrorBody, ItemFate, PipelineCompare, PipelineList, RunDetail, RunList, StepList,
};

/// Ask an X-Ray server why a pipeline decided what it did.
#[derive(Debug, Parser)]
#[command(name = "xray", version)]
struct Cli {
    /// The X-Ray server.
    #[arg(
        long,
        global = true,
        env = "XRAY_ENDPOINT",
        default_value = "http://127.0.0.1:8000"
    )]
    server: String,
    /// API key with the `read` scope, when the server requires keys.
    #[arg(long, global = true, env = "XRAY_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Print the server's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Recent runs, newest first.
    Runs {
        /// Only this pipeline.
        #[arg(long)]
        pipeline: Option<String>,
        /// Only runs with this status: running, completed, failed.
        #[arg(long)]
        status: Option<String>,
        /// Only runs with this correlation id.
        #[arg(long)]
        correlation_id: Option<String>,
        /// Only runs of this W3C trace (32 hex digits).
        #[arg(long)]
        trace_id: Option<String>,
        /// How many (1 to 1000).
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// One run, its steps as a table.
    Show {
        /// The run's id.
        run: String,
    },
    /// Steps across all runs and pipelines.
    Steps {
        /// Step type: generate, retrieve, filter, rank, select, transform.
        #[arg(long = "type")]
        step_type: Option<String>,
        /// Step name.
        #[arg(long)]
        name: Option<String>,
        /// Pipeline.
        #[arg(long)]
        pipeline: Option<String>,
        /// Rejection rate above (0 to 1).
        #[arg(long)]
        rejection_rate_gt: Option<f64>,
        /// Rejection rate below.
        #[arg(long)]
        rejection_rate_lt: Option<f64>,
        /// Duration above, in ms.
        #[arg(long)]
        duration_gt: Option<f64>,
        /// Duration below, in ms.
        #[arg(long)]
        duration_lt: Option<f64>,
        /// Decision score above.
        #[arg(long)]
        score_gt: Option<f64>,
        /// Decision score below.
        #[arg(long)]
        score_lt: Option<f64>,
        /// How many (1 to 1000).
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// What happened to one item in one run, step by step.
    Why {
        /// The run's id.
        run: String,
        /// The item's id.
        item: String,
    },
    /// Every pipeline: its runs, failures and versions.
    Pipelines {
        /// Only runs started at or after this time (RFC 3339 or a date).
        #[arg(long)]
        since: Option<String>,
        /// Only runs started before this time.
        #[arg(long)]
        until: Option<String>,
    },
    /// Two sets of a pipeline's runs side by side: what moved, step by step.
    Compare {
        /// The pipeline.
        pipeline: String,
        /// The baseline: a version (`1.4.2`, or `version:1.4.2`) or `since:<t>,until:<t>`.
        a: String,
        /// What to compare with it, in the same form.
        b: String,
    },
    /// Replay a run (or one step) on today's code: runs COMMAND, a program whose `main` calls
    /// `xray_replay::from_env`, then prints what changed and the web UI's diff of the two runs.
    Replay {
        /// The run to replay.
        run: String,
        /// Only this step of it: its position in the run (from 0) or its id.
        #[arg(long)]
        step: Option<String>,
        /// The program to run and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
enum CliError {
    /// The server answered with an error.
    #[error("{status}: {message}")]
    Server { status: u16, message: String },
    /// The server could not be reached.
    #[error("cannot reach the X-Ray server at {server}: {reason}")]
    Unreachable { server: String, reason: String },
    /// The answer was not what a server sends.
    #[error("unexpected answer from {server}: {reason}")]
    Answer { server: String, reason: String },
    /// The command `xray replay` runs did not replay.
    #[error("{reason}")]
    Command { reason: String },
}

/// Percent-encodes one path segment or query value.
fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

fn get(server: &str, key: Option<&str>, path: &str) -> Result<String, CliError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}{path}", server.trim_end_matches('/'));
    let mut request = agent.get(&url);
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let mut res = request.call().map_err(|e| CliError::Unreachable {
        server: server.to_string(),
        reason: e.to_string(),
    })?;
    let status = res.status().as_u16();
    let text = res
        .body_mut()
        .read_to_string()
        .map_err(|e| CliError::Answer {
            server: server.to_string(),
            reason: e.to_string(),
        })?;
    if !(200..300).contains(&status) {
        let message = serde_json::from_str::<ApiErrorBody>(&text)
            .map(|b| b.error)
            .unwrap_or(text);
        return Err(CliError::Server { status, message });
    }
    Ok(text)
}

/// Parses the server's answer (from the text: raw JSON fields cannot come from a parsed tree).
fn typed<T: serde::de::DeserializeOwned>(server: &str, text: &str) -> Result<T, CliError> {
    serde_json::from_str(text).map_err(|e| CliError::Answer {
        server: server.to_string(),
        reason: e.to_string(),
    })
}

fn run(cli: Cli) -> Result<String, CliError> {
    let server = cli.server.as_str();

    let num = |v: Option<f64>| v.map(|n| n.to_string());
    let (path, kind) = match &cli.command {
        Command::Runs {
            pipeline,
            status,
            correlation_id,
            trace_id,
            limit,
        } => (
            format!(
                "/runs{}",
                query(&[
                    ("pipeline", pipeline.clone()),
                    ("status", status.clone()),
                    ("correlation_id", correlation_id.clone()),
                    ("trace_id", trace_id.clone()),
                    ("limit", Some(limit.to_string())),
                ])
            ),
            "runs",
        ),
        Command::Show { run } => (format!("/runs/{}", encode(run)), "show"),
        Command::Steps {
            step_type,
            name,
            pipeline,
            rejection_rate_gt,
            rejection_rate_lt,
            duration_gt,
            duration_lt,
            score_gt,
            score_lt,
            limit,
        } => (
            format!(
                "/steps{}",
                query(&[
                    ("step_type", step_type.clone()),
                    ("name", name.clone()),
                    ("pipeline", pipeline.clone()),
                    ("rejection_rate_gt", num(*rejection_rate_gt)),
                    ("rejection_rate_lt", num(*rejection_rate_lt)),
                    ("duration_gt", num(*duration_gt)),
                    ("duration_lt", num(*duration_lt)),
                    ("score_gt", num(*score_gt)),
                    ("score_lt", num(*score_lt)),
                    ("limit", Some(limit.to_string())),
                ])
            ),
            "steps",
        ),
        Command::Why { run, item } => (
            format!("/runs/{}/items/{}", encode(run), encode(item)),
            "why",
        ),
        Command::Pipelines { since, until } => (
            format!(
                "/pipelines{}",
                query(&[("since", since.clone()), ("until", until.clone())])
            ),
            "pipelines",
        ),
        Command::Compare { pipeline, a, b } => (
            format!(
                "/pipelines/{}/compare{}",
                encode(pipeline),
                query(&[
                    ("a", Some(insights::selector(a))),
                    ("b", Some(insights::selector(b))),
                ])
            ),
            "compare",
        ),
        Command::Replay { run, step, command } => {
            return replay::replay(&replay::Replay {
                server,
                api_key: cli.api_key.as_deref(),
                run,
                step: step.as_deref(),
                command,
                json: cli.json,
            })
        }
    };
    let text = get(server, cli.api_key.as_deref(), &path)?;
    if cli.json {
        let value: Value = typed(server, &text)?;
        return Ok(serde_json::to_string_pretty(&value).unwrap_or_default());
    }
    Ok(match kind {
        "runs" => render::runs(&typed::<RunList>(server, &text)?),
        "show" => render::run(&typed::<RunDetail>(server, &text)?),
        "steps" => render::steps(&typed::<StepList>(server, &text)?),
        "pipelines" => insights::pipelines(&typed::<PipelineList>(server, &text)?),
        "compare" => insights::compare(&typed::<PipelineCompare>(server, &text)?),
        _ => render::fate(&typed::<ItemFate>(server, &text)?),
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xray: {e}");
            match e {
                CliError::Unreachable { .. } => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
