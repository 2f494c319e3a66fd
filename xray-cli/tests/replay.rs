//! `xray replay RUN_ID [--step STEP] -- COMMAND` end to end, on SQLite and on PostgreSQL: this
//! test binary is also the COMMAND (its own `main`: with `XRAY_REPLAY` set it is the
//! competitor-selection program calling `xray_replay::from_env_with`; with
//! `XRAY_TEST_RECORD_BUG` it records the seed's bad run and prints its id).

use std::process::{Command, Output};
use std::time::Duration;
use xray_examples::catalog;
use xray_examples::competitor_selection::{select_competitor, use_keyword_fix};
use xray_replay::ReplayContext;
use xray_server::testing::{Backend, TestServer};

/// The program `xray replay` runs (and that records the original run).
fn as_the_program() {
    let _xray = xray::init(xray::Config::from_env()).expect("the X-Ray client");
    let catalog = catalog::shipped();
    use_keyword_fix(std::env::var("XRAY_EXAMPLE_FIX").is_ok_and(|v| v == "1"));
    xray_replay::from_env_with(|| ReplayContext::new().provide("catalog", catalog.clone()));
    let chosen = select_competitor("iPhone 15 Case", 100.0, &catalog).expect("a selection");
    xray::flush(Duration::from_secs(10)).expect("delivered");
    println!("{}", chosen.run_id.expect("recorded"));
}

/// This binary, as a program talking to `server` in `fail` mode.
fn this_program(server: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("this test binary"));
    command
        .env("XRAY_ENDPOINT", server)
        .env("XRAY_OFFLINE_MODE", "fail")
        .env("XRAY_BATCH_INTERVAL_MS", "5")
        .env_remove("XRAY_REPLAY")
        .env_remove("XRAY_EXAMPLE_FIX")
        .env_remove("XRAY_API_KEY");
    command
}

fn xray_replay(server: &str, args: &[&str], fix: bool) -> Output {
    let program = std::env::current_exe().expect("this test binary");
    Command::new(env!("CARGO_BIN_EXE_xray"))
        .args(["--server", server, "replay"])
        .args(args)
        .arg("--")
        .arg(program)
        .env("XRAY_OFFLINE_MODE", "fail")
        .env("XRAY_BATCH_INTERVAL_MS", "5")
        .env("XRAY_EXAMPLE_FIX", if fix { "1" } else { "0" })
        .env_remove("XRAY_ENDPOINT")
        .env_remove("XRAY_API_KEY")
        .output()
        .expect("run xray")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn the_cli_replays_with_the_fix(backend: Backend) {
    let server = TestServer::start(backend);
    let url = server.url.as_str();
    let recorded = this_program(url)
        .env("XRAY_TEST_RECORD_BUG", "1")
        .output()
        .expect("record");
    assert!(recorded.status.success(), "{recorded:?}");
    let run_id = text(&recorded.stdout).trim().to_string();

    // The whole run, with the fix: the stand gives way to a case.
    let out = xray_replay(url, &[&run_id], true);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    for needle in [
        format!("replay of run {run_id} (competitor_selection) → run "),
        "chose laptop_stand_42 (0.715) → case_0073 (0.649)".to_string(),
        "category_mismatch 124 → 125 (+1)".to_string(),
        format!("diff: {url}/#/diff?a={run_id}&b="),
    ] {
        assert!(
            stdout.contains(&needle),
            "`{needle}` missing from:\n{stdout}"
        );
    }
    let replay_id = stdout
        .rsplit("&b=")
        .next()
        .expect("the diff's URL")
        .trim()
        .to_string();
    let stored: serde_json::Value = ureq::get(server.at(&format!("/runs/{replay_id}")))
        .call()
        .expect("the replay run")
        .body_mut()
        .read_json()
        .expect("JSON");
    assert_eq!(stored["replay_of"], run_id.as_str());
    assert_eq!(stored["output"]["product_id"], "case_0073");

    // One step: generate_keywords (position 0) without "stand".
    let out = xray_replay(url, &[&run_id, "--step", "0"], true);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains(&format!("replay of step {run_id}:0 (competitor_selection)"))
            && stdout.contains(
                r#"output ["iphone","15","case","cover","holder","stand"] → ["iphone","15","case","cover","holder"]"#
            ),
        "{stdout}"
    );

    // A step recorded without `replay`: the command fails and says why.
    let out = xray_replay(url, &[&run_id, "--step", "1"], true);
    assert!(!out.status.success(), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("step `search_products` (position 1)")
            && stderr.contains("recorded without `replay`")
            && stderr.contains("the replay did not finish"),
        "{stderr}"
    );
}

fn main() {
    if std::env::var_os("XRAY_REPLAY").is_some()
        || std::env::var_os("XRAY_TEST_RECORD_BUG").is_some()
    {
        as_the_program();
        return;
    }
    for backend in [Backend::Sqlite, Backend::Postgres] {
        the_cli_replays_with_the_fix(backend);
        println!("test the_cli_replays_with_the_fix on {backend:?} ... ok");
    }
}
