//! `xray replay RUN_ID [--step STEP] -- COMMAND...`: runs a program that calls
//! `xray_replay::from_env` with `XRAY_REPLAY` set, waits for it, then prints what the replay
//! changed (the wire's `ReplayReport`, computed from the two runs the server holds) and the web
//! UI's diff of the two runs.

use crate::{encode, get, typed, CliError};
use std::process::Command;
use xray_wire::{ReplayReport, RunDetail};

/// What to replay, and how.
pub struct Replay<'a> {
    /// The X-Ray server.
    pub server: &'a str,
    /// The API key given to the CLI (also given to the command).
    pub api_key: Option<&'a str>,
    /// The run to replay.
    pub run: &'a str,
    /// One step of it (its position or id), or the whole run.
    pub step: Option<&'a str>,
    /// The program and its arguments.
    pub command: &'a [String],
    /// Print the report as JSON.
    pub json: bool,
}

/// The report file's path: unique to this process and moment, in the temporary folder.
fn report_path() -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::env::temp_dir().join(format!("xray-replay-{}-{nanos}.json", std::process::id()))
}

/// Runs the command, then reports.
pub fn replay(r: &Replay<'_>) -> Result<String, CliError> {
    let (program, args) = r.command.split_first().ok_or_else(|| CliError::Command {
        reason: "no command given after `--`".into(),
    })?;
    let path = report_path();
    let mut command = Command::new(program);
    command
        .args(args)
        .env("XRAY_REPLAY", r.run)
        .env("XRAY_REPLAY_REPORT", &path)
        .env("XRAY_ENDPOINT", r.server)
        .env_remove("XRAY_REPLAY_STEP");
    if let Some(step) = r.step {
        command.env("XRAY_REPLAY_STEP", step);
    }
    if let Some(key) = r.api_key {
        command.env("XRAY_API_KEY", key);
    }
    let status = command.status().map_err(|e| CliError::Command {
        reason: format!("cannot run `{program}`: {e}"),
    })?;
    let written = std::fs::read_to_string(&path);
    let _ = std::fs::remove_file(&path);
    if !status.success() {
        return Err(CliError::Command {
            reason: format!("`{program}` ended with {status}: the replay did not finish"),
        });
    }
    let written = written.map_err(|e| CliError::Command {
        reason: format!(
            "`{program}` wrote no replay report ({e}): does its `main` call \
             xray_replay::from_env?"
        ),
    })?;
    let replayed: ReplayReport = serde_json::from_str(&written).map_err(|e| CliError::Command {
        reason: format!("`{program}` wrote a replay report that does not parse: {e}"),
    })?;
    let fetch = |id: &str| -> Result<RunDetail, CliError> {
        let text = get(r.server, r.api_key, &format!("/runs/{}", encode(id)))?;
        typed(r.server, &text)
    };
    let original = fetch(r.run)?;
    let replay = fetch(&replayed.replay_run_id)?;
    let report = ReplayReport::compare(&original, &replay);
    if r.json {
        return Ok(serde_json::to_string_pretty(&report).unwrap_or_default());
    }
    Ok(format!(
        "{report}\ndiff: {}/#/diff?a={}&b={}",
        r.server.trim_end_matches('/'),
        encode(&report.original_run_id),
        encode(&report.replay_run_id)
    ))
}
