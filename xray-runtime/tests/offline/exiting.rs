//! A process that exits right after its runs, or while the server is down, slow or mid-request:
//! what it recorded is delivered or spooled for the next process, never lost.

use super::*;

/// Run by the tests below in a child process: records, then exits at once, with the events
/// still queued (the batch interval is a minute).
#[test]
fn child_process_body() {
    let (Ok(endpoint), Ok(spool)) = (
        std::env::var("XRAY_TEST_CHILD_ENDPOINT"),
        std::env::var("XRAY_TEST_CHILD_SPOOL"),
    ) else {
        return; // not in a child: nothing to do
    };
    let ms = |name: &str, default: u64| {
        std::env::var(name).map_or(default, |v| v.parse().unwrap_or(default))
    };
    let xray = XRay::builder()
        .endpoint(endpoint)
        .spool_dir(spool)
        .batch_interval(Duration::from_millis(ms(
            "XRAY_TEST_CHILD_INTERVAL_MS",
            60_000,
        )))
        .batch_size(10_000)
        .http_timeout(Duration::from_millis(ms("XRAY_TEST_CHILD_TIMEOUT_MS", 500)))
        .client("offline");
    let mut ids = record_runs(&xray, 5, "exiting");
    // With a pause, the shipper is sending the first runs when the next are recorded.
    if let Ok(pause) = std::env::var("XRAY_TEST_CHILD_PAUSE_MS") {
        std::thread::sleep(Duration::from_millis(pause.parse().unwrap_or(300)));
        ids.extend(record_runs(&xray, 5, "exiting later"));
    }
    println!("CHILD_RUN_IDS={}", ids.join(","));
    std::process::exit(0);
}

fn run_child(endpoint: &str, spool: &Path) -> Vec<String> {
    run_child_with_timeout(endpoint, spool, 500)
}

fn run_child_with_timeout(endpoint: &str, spool: &Path, http_timeout_ms: u64) -> Vec<String> {
    run_child_with(
        endpoint,
        spool,
        &[("XRAY_TEST_CHILD_TIMEOUT_MS", http_timeout_ms)],
    )
}

/// Runs [`child_process_body`] in a child process with these settings; its run ids.
fn run_child_with(endpoint: &str, spool: &Path, settings: &[(&str, u64)]) -> Vec<String> {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap());
    child
        .args([
            "--exact",
            "exiting::child_process_body",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("XRAY_TEST_CHILD_ENDPOINT", endpoint)
        .env("XRAY_TEST_CHILD_SPOOL", spool);
    for (name, value) in settings {
        child.env(name, value.to_string());
    }
    let out = child.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("CHILD_RUN_IDS=").map(|(_, ids)| ids.trim()))
        .unwrap_or_else(|| panic!("no run ids in {stdout}"));
    line.split(',').map(str::to_string).collect()
}

#[test]
fn a_process_that_exits_right_after_its_runs_delivers_them() {
    let spool = tempfile::tempdir().unwrap();
    let server = TestServer::start(Backend::Sqlite);
    let ids = run_child(&server.url, spool.path());
    assert_eq!(spool_files(spool.path()), 0);
    assert_stored(&server.url, &ids);
}

#[test]
fn a_process_that_exits_while_the_server_is_down_spools_for_the_next() {
    let spool = tempfile::tempdir().unwrap();
    let (dead, _) = dead_endpoint();
    let ids = run_child(&dead, spool.path());
    assert!(spool_files(spool.path()) > 0);
    resend_to_a_fresh_server(spool.path(), &ids, 20);
}

#[test]
fn a_wrong_endpoint_keeps_the_events_for_later() {
    // A 404 (a missing path prefix, say) says nothing about the events: they are kept.
    let spool = tempfile::tempdir().unwrap();
    let fault = FaultServer::start(404, Duration::ZERO);
    let xray = client(&fault.url, OfflineMode::Buffer, spool.path());
    let ids = record_runs(&xray, 2, "404");
    xray.flush(WAIT).unwrap();
    let stats = xray.stats();
    assert_eq!(
        (stats.spooled, stats.failed, stats.dropped),
        (8, 0, 0),
        "{stats:?}"
    );
    resend_to_a_fresh_server(spool.path(), &ids, 8);
}

#[test]
fn a_process_that_exits_while_the_server_is_slow_spools_for_the_next() {
    // Each request would take 10 s, the client allows 5 s per request (the default), and the
    // exit hook 5 s in all: the batch must be spooled, not lost with the process.
    let spool = tempfile::tempdir().unwrap();
    let slow = FaultServer::start(200, Duration::from_secs(10));
    let started = std::time::Instant::now();
    let ids = run_child_with_timeout(&slow.url, spool.path(), 5000);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!(spool_files(spool.path()) > 0);
    resend_to_a_fresh_server(spool.path(), &ids, 20);
}

#[test]
fn a_process_that_exits_while_a_request_is_in_flight_spools_that_batch_too() {
    // The shipper is waiting on a server that does not answer (10 s; the client allows 5 s per
    // request, 3 attempts) with the first runs' batch when the process exits; the exit hook
    // gives up after 5 s. The batch in flight is spooled with the rest, not lost.
    let spool = tempfile::tempdir().unwrap();
    let slow = FaultServer::start(200, Duration::from_secs(10));
    let ids = run_child_with(
        &slow.url,
        spool.path(),
        &[
            ("XRAY_TEST_CHILD_TIMEOUT_MS", 5000),
            ("XRAY_TEST_CHILD_INTERVAL_MS", 10),
            ("XRAY_TEST_CHILD_PAUSE_MS", 300),
        ],
    );
    assert!(slow.requests() >= 1, "a request was in flight");
    resend_to_a_fresh_server(spool.path(), &ids, 40);
}

#[test]
fn events_racing_a_shutdown_are_sent_or_spooled_never_lost() {
    let server = TestServer::start(Backend::Sqlite);
    let spool = tempfile::tempdir().unwrap();
    let xray = client(&server.url, OfflineMode::Buffer, spool.path());
    const THREADS: usize = 4;
    const RUNS: usize = 300;
    let producers: Vec<_> = (0..THREADS)
        .map(|t| {
            let xray = xray.clone();
            std::thread::spawn(move || {
                (0..RUNS)
                    .map(|i| {
                        let run = xray.run(json!({"t": t, "i": i}));
                        let id = run.id().unwrap().to_string();
                        drop(run);
                        id
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(15));
    xray.shutdown(WAIT).unwrap();
    let ids: Vec<String> = producers
        .into_iter()
        .flat_map(|p| p.join().unwrap())
        .collect();
    // Each run is two events; every one was sent or spooled, none dropped or unaccounted.
    let stats = xray.stats();
    assert_eq!(stats.dropped + stats.failed, 0, "{stats:?}");
    assert_eq!(
        stats.sent + stats.spooled,
        (THREADS * RUNS * 2) as u64,
        "{stats:?}"
    );
    // What the shut-down client did not re-send itself, a later client re-sends to the same
    // server: every run arrives, completed.
    let later = client(&server.url, OfflineMode::Buffer, spool.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    while spool_files(spool.path()) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    later.flush(WAIT).unwrap();
    assert_eq!(
        spool_files(spool.path()),
        0,
        "the spool is empty afterwards"
    );
    assert_eq!(stats.resent + later.stats().resent, stats.spooled);
    for id in &ids {
        assert_eq!(support::run(&server.url, id)["status"], "completed", "{id}");
    }
}
