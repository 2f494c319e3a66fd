//! The `xray` command against a real server holding the seed's run.

mod support;

use std::process::Command;
use support::{ok, xray};
use xray_server::testing::{Backend, TestServer};

fn seeded() -> TestServer {
    let server = TestServer::start(Backend::Sqlite);
    let run: serde_json::Value =
        serde_json::from_str(include_str!("../../docs/seed-run.json")).expect("seed run");
    let res = ureq::post(server.at("/runs"))
        .send_json(&run)
        .expect("POST /runs");
    assert_eq!(res.status().as_u16(), 201);
    server
}

#[test]
fn runs_show_steps_and_why_read_like_the_walkthrough() {
    let server = seeded();
    let url = server.url.as_str();

    let runs = ok(url, &["runs", "--pipeline", "competitor_selection"]);
    assert!(runs.starts_with("RUN"), "{runs}");
    assert!(
        runs.contains("run_abc123") && runs.contains("completed"),
        "{runs}"
    );
    assert!(
        runs.contains("laptop_stand_42"),
        "the output is shown: {runs}"
    );

    let show = ok(url, &["show", "run_abc123"]);
    for needle in [
        "run run_abc123  pipeline competitor_selection  completed",
        "generate_keywords",
        "filter_candidates  filter",
        "127 → 23",
        "price_too_high 59, category_mismatch 45",
        "chose laptop_stand_42 (0.87)",
    ] {
        assert!(show.contains(needle), "`{needle}` missing from:\n{show}");
    }

    let steps = ok(
        url,
        &["steps", "--type", "filter", "--rejection-rate-gt", "0.8"],
    );
    assert!(
        steps.contains("run_abc123") && steps.contains("82%"),
        "{steps}"
    );
    assert_eq!(
        ok(
            url,
            &["steps", "--type", "filter", "--rejection-rate-gt", "0.9"]
        )
        .trim(),
        "no steps"
    );
    let weak = ok(url, &["steps", "--type", "select", "--score-lt", "0.9"]);
    assert!(weak.contains("0.87"), "{weak}");

    let why = ok(url, &["why", "run_abc123", "laptop_stand_42"]);
    let lines: Vec<&str> = why.lines().collect();
    assert!(
        lines[2].contains("filter_candidates") && lines[2].contains("accepted"),
        "{why}"
    );
    assert!(
        lines[3].contains("select_best")
            && lines[3].contains("selected")
            && lines[3].contains("score 0.87"),
        "{why}"
    );
    let rejected = ok(url, &["why", "run_abc123", "case_913"]);
    assert!(
        rejected.contains("rejected")
            && rejected.contains("price_too_high {\"price\":150,\"threshold\":100}"),
        "{rejected}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&ok(url, &["runs", "--json"])).expect("--json prints JSON");
    assert_eq!(json["runs"][0]["run_id"], "run_abc123");
}

#[test]
fn server_errors_are_one_clear_line_and_a_failing_exit() {
    let server = seeded();
    let url = server.url.as_str();
    let check = |args: &[&str], code: i32, needles: &[&str]| {
        let out = xray(url, args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        for n in needles {
            assert!(err.contains(n), "`{n}` missing from: {err}");
        }
        assert!(out.stdout.is_empty());
    };
    check(&["show", "nope"], 1, &["404", "no run with id `nope`"]);
    check(&["why", "nope", "x"], 1, &["404"]);
    check(
        &["steps", "--type", "filtre"],
        1,
        &["400", "did you mean `filter`"],
    );
    check(
        &["runs", "--status", "done"],
        1,
        &["400", "running, completed, failed"],
    );
    check(&["runs", "--limit", "0"], 1, &["400", "limit"]);
    let dead = Command::new(env!("CARGO_BIN_EXE_xray"))
        .args(["--server", "http://127.0.0.1:9", "runs"])
        .output()
        .unwrap();
    assert_eq!(dead.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&dead.stderr)
        .contains("cannot reach the X-Ray server at http://127.0.0.1:9"));
}

#[test]
fn keys_and_links_reach_the_server() {
    let key = |k: &str| k.parse().expect("key");
    let server = TestServer::start_settings(
        Backend::Sqlite,
        xray_server::Settings {
            keys: xray_server::http::auth::ApiKeys::new(&[key("in")], &[key("rd")], &[]),
            ..xray_server::Settings::default()
        },
    );
    let mut run: serde_json::Value =
        serde_json::from_str(include_str!("../../docs/seed-run.json")).expect("seed run");
    run["correlation_id"] = "req-9".into();
    let res = ureq::post(server.at("/runs"))
        .header("authorization", "Bearer in")
        .send_json(&run)
        .expect("POST /runs");
    assert_eq!(res.status().as_u16(), 201);
    let url = server.url.as_str();
    // Without a key: the server's 401, one line.
    let out = xray(url, &["runs"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    // With the read key, from the flag or from XRAY_API_KEY.
    let found = ok(
        url,
        &["--api-key", "rd", "runs", "--correlation-id", "req-9"],
    );
    assert!(found.contains("run_abc123"), "{found}");
    let out = Command::new(env!("CARGO_BIN_EXE_xray"))
        .args(["--server", url, "runs", "--correlation-id", "other"])
        .env("XRAY_API_KEY", "rd")
        .output()
        .expect("run xray");
    assert!(out.status.success(), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("run_abc123"));
}
