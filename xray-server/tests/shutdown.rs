//! The real `xray-server` binary stops gracefully: on SIGTERM (and on Ctrl-C's SIGINT) it stops
//! accepting connections, finishes the request in flight (a large `POST /ingest` still being
//! sent), stores it, and exits 0. Its log goes to standard error, as plain text when that is not
//! a terminal. A bad config file stops it at start, saying why once.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use xray_server::testing::{Backend, TestDb, TestServer};

#[test]
fn sigterm_finishes_the_request_in_flight_on_sqlite() {
    stops_gracefully(Backend::Sqlite, libc::SIGTERM);
}

#[test]
fn sigterm_finishes_the_request_in_flight_on_postgres() {
    stops_gracefully(Backend::Postgres, libc::SIGTERM);
}

#[test]
fn ctrl_c_finishes_the_request_in_flight_too() {
    stops_gracefully(Backend::Sqlite, libc::SIGINT);
}

#[test]
fn a_misspelt_config_key_stops_it_at_start_naming_the_file_and_key_once() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = dir.path().join("xray.toml");
    std::fs::write(&config, "[retention]\nmax_age_dayz = 3\n").expect("write the config");
    let out = Command::new(env!("CARGO_BIN_EXE_xray-server"))
        .arg("--config")
        .arg(&config)
        .args(["--bind", &free_address(), "--database-url"])
        .arg(dir.path().join("xray.db"))
        .output()
        .expect("run xray-server");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(
        err.matches("unknown field `max_age_dayz`").count(),
        1,
        "{err}"
    );
    assert!(err.contains("xray.toml"), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "standard output");
}

/// The child process, killed if the test fails before it exits.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn stops_gracefully(backend: Backend, signal: libc::c_int) {
    let db = TestDb::create(backend);
    let addr = free_address();
    let log = tempfile::NamedTempFile::new().expect("a log file");
    let stdout = tempfile::NamedTempFile::new().expect("a file for standard output");
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_xray-server"))
            .args(["--bind", &addr, "--database-url", &db.url_string()])
            .args(["--workers", "1"])
            .env("XRAY_LOG", "info")
            .stdout(stdout.reopen().expect("the standard output file"))
            .stderr(log.reopen().expect("the log file"))
            .spawn()
            .expect("start xray-server"),
    );
    wait_until_healthy(&addr, &log);

    // A 1 MiB batch, announced in full but sent a part at a time.
    let run_id = format!("in_flight_{signal}");
    let body = batch(&run_id);
    let mut stream = TcpStream::connect(&addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(
        stream,
        "POST /ingest HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .expect("send the head");
    let (first, rest) = body.split_at(body.len() / 3);
    stream.write_all(first).expect("send the first part");
    stream.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(300));

    let pid = i32::try_from(server.0.id()).expect("a pid");
    // SAFETY: signals our own child process.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "send the signal");

    // It stops accepting new connections while the request is still in flight.
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&addr).is_ok() {
        assert!(
            Instant::now() < deadline,
            "still accepting connections after the signal"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        server.0.try_wait().expect("poll").is_none(),
        "exited with a request in flight: {}",
        read(&log)
    );

    for part in rest.chunks(64 * 1024) {
        stream.write_all(part).expect("send the rest, slowly");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the request in flight was answered: {answer}\n{}",
        read(&log)
    );
    assert!(answer.contains(r#""accepted":102"#), "{answer}");

    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.0.try_wait().expect("poll") {
            break status;
        }
        assert!(Instant::now() < deadline, "did not exit: {}", read(&log));
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}: {}", read(&log));
    // The log went to standard error, as plain text (no colour codes in a file), one line a
    // request; standard output stayed empty.
    let text = read(&log);
    assert!(
        text.contains(&format!("X-Ray server on http://{addr}")),
        "{text}"
    );
    assert!(
        text.contains("method=POST path=/ingest status=200 ms="),
        "{text}"
    );
    assert!(
        !text.contains('\x1b'),
        "colour codes in a log file: {text:?}"
    );
    assert_eq!(read(&stdout), "", "standard output");
    assert!(
        TcpStream::connect(&addr).is_err(),
        "nothing listens any more"
    );

    // What it answered 200 for is stored: another server over the same database serves it.
    let reader = TestServer::start_url(db.url(), 1024);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let text = agent
        .get(reader.at(&format!("/runs/{run_id}")))
        .call()
        .expect("GET")
        .body_mut()
        .with_config()
        .limit(16 * 1024 * 1024)
        .read_to_string()
        .expect("read");
    let run: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(run["status"], "completed", "{text:.300}");
    assert_eq!(run["steps"].as_array().expect("steps").len(), 100);
    assert_eq!(run["steps"][99]["rejections"]["too_big"]["count"], 40);
}

/// An address nothing listens on yet.
fn free_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").to_string()
}

fn read(log: &tempfile::NamedTempFile) -> String {
    std::fs::read_to_string(log.path()).unwrap_or_default()
}

fn wait_until_healthy(addr: &str, log: &tempfile::NamedTempFile) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut s) = TcpStream::connect(addr) {
            let _ = write!(
                s,
                "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
            );
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the server did not start: {}",
            read(log)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A run of 100 steps, each with 40 kept rejections: about 1 MiB of JSON, 102 events.
fn batch(run_id: &str) -> Vec<u8> {
    let mut events = vec![serde_json::json!({"run_started": {
        "run_id": run_id, "pipeline": "shutdown", "started_at": "2026-11-26T12:00:00Z"}})];
    for i in 0..100 {
        let samples: Vec<serde_json::Value> = (0..40)
            .map(|j| {
                serde_json::json!({"item_id": format!("item_{i}_{j}"),
                                        "details": {"size": j, "note": "x".repeat(200)}})
            })
            .collect();
        events.push(
            serde_json::json!({"step_finished": {"run_id": run_id, "pipeline": "shutdown",
            "step": {"step_id": format!("{run_id}-{i}"), "position": i, "name": format!("step_{i}"),
                     "step_type": "filter", "started_at": "2026-11-26T12:00:01Z",
                     "input_count": 50, "output_count": 10,
                     "rejections": {"too_big": {"count": 40, "samples": samples}}}}}),
        );
    }
    events.push(serde_json::json!({"run_finished": {
        "run_id": run_id, "pipeline": "shutdown", "started_at": "2026-11-26T12:00:00Z",
        "ended_at": "2026-11-26T12:00:05Z", "status": "completed"}}));
    serde_json::to_vec(&serde_json::json!({ "events": events })).expect("JSON")
}
