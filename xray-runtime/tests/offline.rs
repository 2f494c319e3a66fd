//! When the server is away, slow, failing or refusing: the pipeline never waits or breaks, and in
//! `buffer` mode every event reaches the database in the end. Each test counts what was stored.

mod support;

use serde_json::json;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;
use xray::{OfflineMode, StepType, XRay, XRayError};

/// Processes that exit with events still queued.
#[path = "offline/exiting.rs"]
mod exiting;

const WAIT: Duration = Duration::from_secs(20);

/// A client with a short batch interval and quick timeouts.
fn client(endpoint: &str, mode: OfflineMode, spool: &Path) -> XRay {
    XRay::builder()
        .endpoint(endpoint)
        .offline_mode(mode)
        .spool_dir(spool)
        .batch_interval(Duration::from_millis(10))
        .http_timeout(Duration::from_millis(500))
        .max_attempts(2)
        .client("offline")
}

/// Records `n` runs of two steps: 4 events each.
fn record_runs(xray: &XRay, n: usize, tag: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            let run = xray.run(json!({"tag": tag, "i": i}));
            let filter = run.step("filter", StepType::Filter);
            for item in 0..100u64 {
                filter.reject(item, "too_far", json!({"km": item}));
            }
            filter.finish();
            let pick = run.step("pick", StepType::Select);
            pick.decide("7", 0.5, ());
            pick.finish();
            let id = run.id().unwrap().to_string();
            drop(run);
            id
        })
        .collect()
}

/// Asserts every run arrived complete, with both steps and exact counts.
fn assert_stored(server: &str, ids: &[String]) {
    for id in ids {
        let run = support::run(server, id);
        assert_eq!(run["status"], "completed", "{id}");
        let steps = run["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 2, "{id}");
        assert_eq!(steps[0]["rejections"]["too_far"]["count"], 100);
        assert_eq!(steps[1]["decision"]["selected"], "7");
    }
}

/// A later process against a server that is up: it finds the spool, re-sends exactly
/// `expected` events from it, and every run arrives whole.
fn resend_to_a_fresh_server(spool: &Path, ids: &[String], expected: u64) {
    let server = TestServer::start(Backend::Sqlite);
    let later = client(&server.url, OfflineMode::Buffer, spool);
    later.flush(WAIT).unwrap();
    assert_eq!(later.stats().resent, expected);
    assert_eq!(spool_files(spool), 0, "the spool is empty afterwards");
    assert_stored(&server.url, ids);
}

fn spool_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn server_down_from_the_start_then_a_later_process_resends() {
    let spool = tempfile::tempdir().unwrap();
    let (endpoint, addr) = dead_endpoint();
    let first = client(&endpoint, OfflineMode::Buffer, spool.path());
    let ids = record_runs(&first, 10, "down");
    first.shutdown(WAIT).unwrap();
    let stats = first.stats();
    assert_eq!(
        (stats.sent, stats.spooled, stats.dropped, stats.failed),
        (0, 40, 0, 0)
    );
    assert!(spool_files(spool.path()) > 0);

    // The server comes up where the client expected it; a new client (a later process) finds
    // the spool and re-sends it.
    let server = TestServer::start_listener(
        TestDb::create(Backend::Sqlite).url(),
        TcpListener::bind(addr).unwrap(),
        16 << 20,
    );
    let second = client(&endpoint, OfflineMode::Buffer, spool.path());
    second.flush(WAIT).unwrap();
    assert_eq!(second.stats().resent, 40);
    assert_eq!(spool_files(spool.path()), 0);
    assert_stored(&server.url, &ids);
}

#[test]
fn server_dying_mid_run_and_coming_back_loses_nothing() {
    let spool = tempfile::tempdir().unwrap();
    let db = TestDb::create(Backend::Sqlite);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = TestServer::start_listener(db.url(), listener, 16 << 20);
    let url = server.url.clone();
    let xray = client(&url, OfflineMode::Buffer, spool.path());

    let mut ids = record_runs(&xray, 3, "before");
    xray.flush(WAIT).unwrap();
    assert_eq!(xray.stats().sent, 12);

    // A run is under way when the server dies.
    let run = xray.run(json!({"tag": "across"}));
    let step = run.step("filter", StepType::Filter);
    for item in 0..100u64 {
        step.reject(item, "too_far", ());
    }
    step.finish();
    drop(server);
    xray.flush(WAIT).unwrap();
    ids.extend(record_runs(&xray, 3, "while down"));
    xray.flush(WAIT).unwrap();
    let spooled = xray.stats().spooled;
    assert!(spooled >= 12, "{:?}", xray.stats());

    // It comes back; the run that spanned the outage ends after it.
    let server = TestServer::start_listener(db.url(), TcpListener::bind(addr).unwrap(), 16 << 20);
    let pick = run.step("pick", StepType::Select);
    pick.decide("7", 0.5, ());
    pick.finish();
    ids.push(run.id().unwrap().to_string());
    drop(run);
    ids.extend(record_runs(&xray, 2, "after"));
    xray.flush(WAIT).unwrap();
    let stats = xray.stats();
    // Everything spooled (during the outage, and behind it until the spool drained) was re-sent.
    assert_eq!(stats.resent, stats.spooled, "{stats:?}");
    assert_eq!(stats.sent + stats.resent, 4 * 9, "{stats:?}");
    assert_eq!(stats.dropped + stats.failed, 0);
    assert_stored(&server.url, &ids);
}

#[test]
fn server_errors_are_retried_then_spooled_then_delivered() {
    let spool = tempfile::tempdir().unwrap();
    let fault = FaultServer::start(503, Duration::ZERO);
    let xray = client(&fault.url, OfflineMode::Buffer, spool.path());
    let ids = record_runs(&xray, 3, "503");
    xray.flush(WAIT).unwrap();
    let stats = xray.stats();
    assert_eq!((stats.sent, stats.spooled), (0, 12), "{stats:?}");
    assert!(
        fault.requests() >= 2,
        "retried: {} requests",
        fault.requests()
    );

    resend_to_a_fresh_server(spool.path(), &ids, 12);
}

#[test]
fn a_server_failing_on_everything_loses_nothing_however_often_it_is_tried() {
    // A 500 on every request (the server's disk is full, say) is the server being away: the
    // batches are kept whole, and trying the spool again and again gives nothing up.
    let spool = tempfile::tempdir().unwrap();
    let fault = FaultServer::start(500, Duration::ZERO);
    let xray = client(&fault.url, OfflineMode::Buffer, spool.path());
    let ids = record_runs(&xray, 3, "500");
    for _ in 0..8 {
        xray.flush(WAIT).unwrap();
    }
    let stats = xray.stats();
    assert_eq!((stats.failed, stats.dropped), (0, 0), "{stats:?}");
    assert!(stats.spooled >= 12, "{stats:?}");
    // Not a request per event: each batch tried twice at most, then each flush (or a due
    // retry between them) tries the spool's oldest two batches at most.
    assert!(
        fault.requests() <= 2 * 12 + 8 * 4,
        "{} requests",
        fault.requests()
    );
    resend_to_a_fresh_server(spool.path(), &ids, 12);
}

/// A proxy to `real` that answers 500 instead when `fail` says so for a request body.
fn proxy(real: &str, fail: impl Fn(&[u8]) -> bool + Send + Sync + 'static) -> FaultServer {
    let real = format!("{real}/ingest");
    FaultServer::answering(move |body| {
        if fail(body) {
            return (500, r#"{"error":"injected"}"#.to_string());
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        match agent
            .post(&real)
            .header("content-type", "application/json")
            .send(body)
        {
            Ok(mut res) => (
                res.status().as_u16(),
                res.body_mut().read_to_string().unwrap_or_default(),
            ),
            Err(e) => (502, format!("{{\"error\":\"{e}\"}}")),
        }
    })
}

#[test]
fn a_batch_the_server_keeps_failing_on_stays_spooled_without_holding_up_the_others() {
    // A server that stores everything but fails (500) on any request holding one particular
    // event: those events' batches (two, one after the other in the spool) stay spooled whole
    // (a 500 is the server's fault: nothing is given up), the batches after them still arrive,
    // and they arrive once the server is fixed.
    let server = TestServer::start(Backend::Sqlite);
    let fixed = Arc::new(AtomicBool::new(false));
    let is_fixed = fixed.clone();
    let picky = proxy(&server.url, move |body| {
        String::from_utf8_lossy(body).contains("poison_pill") && !is_fixed.load(Ordering::SeqCst)
    });
    let spool = tempfile::tempdir().unwrap();
    let xray = client(&picky.url, OfflineMode::Buffer, spool.path());
    let mut ids = record_runs(&xray, 2, "before");
    let mut poisoned_ids = Vec::new();
    for _ in 0..2 {
        let poisoned = xray.for_pipeline("poison_pill").run(json!({}));
        poisoned_ids.push(poisoned.id().unwrap().to_string());
        drop(poisoned);
        ids.extend(record_runs(&xray, 2, "beside"));
        xray.flush(WAIT).unwrap();
    }
    let mut later = Vec::new();
    for round in 0..4 {
        later.extend(record_runs(&xray, 1, &format!("after {round}")));
        xray.flush(WAIT).unwrap();
    }
    let stats = xray.stats();
    assert_eq!((stats.dropped, stats.failed), (0, 0), "{stats:?}");
    assert_stored(&server.url, &later);
    assert_eq!(spool_files(spool.path()), 2, "only the poisoned batches");

    // The server is fixed: the poisoned batches arrive too, and with them every run.
    fixed.store(true, Ordering::SeqCst);
    xray.flush(WAIT).unwrap();
    assert_eq!(spool_files(spool.path()), 0);
    for id in &poisoned_ids {
        assert_eq!(support::run(&server.url, id)["status"], "completed");
    }
    ids.extend(later);
    assert_stored(&server.url, &ids);
    let stats = xray.stats();
    assert_eq!(
        (stats.resent, stats.failed),
        (stats.spooled, 0),
        "{stats:?}"
    );
}

/// Flushes until the spool is empty (the server is healthy by now); then every run is there.
fn heal(xray: &XRay, spool: &Path, server: &str, ids: &[String]) {
    let deadline = Instant::now() + WAIT;
    while spool_files(spool) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        xray.flush(WAIT).unwrap();
    }
    assert_eq!(spool_files(spool), 0, "{:?}", xray.stats());
    assert_stored(server, ids);
}

#[test]
fn a_flaky_server_loses_nothing() {
    // 70% of requests answered 500 at random, no bad event anywhere: nothing is given up, and
    // everything arrives once the server is well.
    let server = TestServer::start(Backend::Sqlite);
    let state = Arc::new(AtomicU64::new(0x9E37_79B9_7F4A_7C15));
    let flaky = state.clone();
    let proxy = proxy(&server.url, move |_| {
        let mut x = flaky.load(Ordering::SeqCst);
        if x == 0 {
            return false; // well again
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        flaky.store(x, Ordering::SeqCst);
        x % 100 < 70
    });
    let spool = tempfile::tempdir().unwrap();
    let xray = client(&proxy.url, OfflineMode::Buffer, spool.path());
    let mut ids = Vec::new();
    for round in 0..30 {
        ids.extend(record_runs(&xray, 1, &format!("flaky {round}")));
        xray.flush(WAIT).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = xray.stats();
    assert_eq!((stats.failed, stats.dropped), (0, 0), "{stats:?}");
    state.store(0, Ordering::SeqCst);
    heal(&xray, spool.path(), &server.url, &ids);
}

#[test]
fn a_server_failing_on_one_batch_then_on_everything_loses_nothing() {
    // The server fails (500) on one batch while storing the others; then it fails on
    // everything for a while. Nothing is given up; once it is well, everything arrives.
    const PICKY: u64 = 0;
    const DOWN: u64 = 1;
    const WELL: u64 = 2;
    let server = TestServer::start(Backend::Sqlite);
    let phase = Arc::new(AtomicU64::new(PICKY));
    let now = phase.clone();
    let proxy = proxy(&server.url, move |body| match now.load(Ordering::SeqCst) {
        PICKY => String::from_utf8_lossy(body).contains("poison_pill"),
        WELL => false,
        _ => true,
    });
    let spool = tempfile::tempdir().unwrap();
    let xray = client(&proxy.url, OfflineMode::Buffer, spool.path());
    let mut ids = record_runs(&xray, 2, "before");
    drop(xray.for_pipeline("poison_pill").run(json!({})));
    ids.extend(record_runs(&xray, 2, "beside"));
    xray.flush(WAIT).unwrap();
    for round in 0..8 {
        if round == 3 {
            phase.store(DOWN, Ordering::SeqCst);
        }
        ids.extend(record_runs(&xray, 1, &format!("after {round}")));
        xray.flush(WAIT).unwrap();
    }
    let stats = xray.stats();
    assert_eq!((stats.failed, stats.dropped), (0, 0), "{stats:?}");
    assert!(spool_files(spool.path()) > 1, "the outage's batches wait");
    phase.store(WELL, Ordering::SeqCst);
    heal(&xray, spool.path(), &server.url, &ids);
}

#[test]
fn silent_mode_drops_and_counts() {
    let spool = tempfile::tempdir().unwrap();
    let fault = FaultServer::start(500, Duration::ZERO);
    let xray = client(&fault.url, OfflineMode::Silent, spool.path());
    record_runs(&xray, 2, "silent");
    xray.flush(WAIT).unwrap();
    let stats = xray.stats();
    assert_eq!(
        (stats.sent, stats.spooled, stats.dropped),
        (0, 0, 8),
        "{stats:?}"
    );
    assert_eq!(spool_files(spool.path()), 0);
}

#[test]
fn fail_mode_reports_the_failure_where_the_run_ends() {
    let spool = tempfile::tempdir().unwrap();
    let fault = FaultServer::start(502, Duration::ZERO);
    let xray = client(&fault.url, OfflineMode::Fail, spool.path());
    let run = xray.run(json!({}));
    run.step("s", StepType::Rank).finish();
    let err = run.finish().unwrap_err();
    assert!(matches!(err, XRayError::Delivery { .. }), "{err}");
    assert!(err.to_string().contains("502"), "{err}");
    assert_eq!(xray.stats().failed, 3);

    let (dead, _) = dead_endpoint();
    let xray = client(&dead, OfflineMode::Fail, spool.path());
    let run = xray.run(json!({}));
    assert!(run.finish().is_err());
    // The error is reported once; a later flush with nothing new is clean.
    assert!(xray.flush(WAIT).is_ok());
}

#[test]
fn a_slow_server_costs_the_pipeline_nothing() {
    let spool = tempfile::tempdir().unwrap();
    let fault = FaultServer::start(200, Duration::from_secs(3));
    let xray = client(&fault.url, OfflineMode::Buffer, spool.path());
    let started = Instant::now();
    record_runs(&xray, 20, "slow");
    let pipeline_time = started.elapsed();
    // Each request would take 3 s; the pipeline did not wait for even one.
    assert!(
        pipeline_time < Duration::from_millis(1500),
        "{pipeline_time:?}"
    );
    xray.shutdown(WAIT).unwrap();
    let stats = xray.stats();
    assert_eq!(
        stats.spooled + stats.sent,
        80,
        "timed out batches are spooled: {stats:?}"
    );
    assert_eq!(stats.dropped + stats.failed, 0);
}

#[test]
fn a_full_queue_spills_to_the_spool_without_blocking() {
    let spool = tempfile::tempdir().unwrap();
    let fault = FaultServer::start(503, Duration::from_millis(300));
    let xray = XRay::builder()
        .endpoint(&fault.url)
        .spool_dir(spool.path())
        .queue_capacity(2)
        .batch_size(1)
        .max_attempts(1)
        .http_timeout(Duration::from_secs(2))
        .client("offline");
    let ids = record_runs(&xray, 30, "overflow");
    xray.shutdown(WAIT).unwrap();
    let stats = xray.stats();
    assert_eq!(stats.spooled, 120, "{stats:?}");
    assert_eq!(stats.dropped, 0);

    resend_to_a_fresh_server(spool.path(), &ids, 120);
}

#[test]
fn a_refused_event_does_not_take_its_batch_down_with_it() {
    let spool = tempfile::tempdir().unwrap();
    let server = TestServer::start(Backend::Sqlite);
    let xray = XRay::builder()
        .endpoint(&server.url)
        .spool_dir(spool.path())
        .batch_interval(Duration::from_secs(60))
        .client("offline");
    let ids = record_runs(&xray, 3, "good");
    // A pipeline name over 512 bytes is fitted, so its run's 2 events are stored; a count over
    // i64::MAX the server refuses, so that step's event is invalid.
    let long = xray.for_pipeline("p".repeat(600));
    drop(long.run(json!({})));
    let run = xray.run(json!({}));
    run.step("huge", StepType::Filter)
        .reject_count("r", u64::MAX);
    drop(run);
    let more = record_runs(&xray, 2, "good too");
    xray.flush(WAIT).unwrap();
    let stats = xray.stats();
    assert_eq!(
        (stats.sent, stats.failed, stats.spooled),
        (24, 1, 0),
        "{stats:?}"
    );
    assert_stored(&server.url, &ids);
    assert_stored(&server.url, &more);
}

#[test]
fn a_bad_event_spooled_with_good_ones_is_refused_alone_when_a_later_process_resends() {
    let spool = tempfile::tempdir().unwrap();
    let (dead, _) = dead_endpoint();
    let first = XRay::builder()
        .endpoint(&dead)
        .spool_dir(spool.path())
        .batch_interval(Duration::from_secs(60))
        .client("offline");
    let ids = record_runs(&first, 2, "good");
    let run = first.run(json!({}));
    run.step("huge", StepType::Filter)
        .reject_count("r", u64::MAX);
    drop(run);
    let more = record_runs(&first, 1, "good too");
    first.shutdown(WAIT).unwrap();
    assert_eq!(first.stats().spooled, 15, "{:?}", first.stats());
    assert_eq!(spool_files(spool.path()), 1, "one batch");

    let server = TestServer::start(Backend::Sqlite);
    let later = client(&server.url, OfflineMode::Buffer, spool.path());
    later.flush(WAIT).unwrap();
    let stats = later.stats();
    assert_eq!((stats.resent, stats.failed), (14, 1), "{stats:?}");
    assert_eq!(spool_files(spool.path()), 0);
    assert_stored(&server.url, &ids);
    assert_stored(&server.url, &more);
}

#[test]
fn a_batch_refused_whole_is_counted_failed_not_kept() {
    // A 409 (or 400) for the whole batch: its events are final, in every mode.
    for mode in [OfflineMode::Buffer, OfflineMode::Silent] {
        let spool = tempfile::tempdir().unwrap();
        let fault = FaultServer::start(409, Duration::ZERO);
        let xray = client(&fault.url, mode, spool.path());
        record_runs(&xray, 2, "409");
        xray.flush(WAIT).unwrap();
        let stats = xray.stats();
        assert_eq!(
            (stats.sent, stats.spooled, stats.dropped, stats.failed),
            (0, 0, 0, 8),
            "{mode:?}: {stats:?}"
        );
        assert_eq!(spool_files(spool.path()), 0);
    }
}

#[test]
fn a_damaged_spooled_batch_is_counted_and_removed_not_resent_forever() {
    let spool = tempfile::tempdir().unwrap();
    std::fs::write(
        spool
            .path()
            .join("00000000000000000001-0000000001-0000000000-n3.json"),
        b"{\"events\": [tru",
    )
    .unwrap();
    let server = TestServer::start(Backend::Sqlite);
    let xray = client(&server.url, OfflineMode::Buffer, spool.path());
    let ids = record_runs(&xray, 1, "beside the damaged batch");
    xray.flush(WAIT).unwrap();
    let stats = xray.stats();
    assert_eq!((stats.failed, stats.dropped), (3, 0), "{stats:?}");
    assert_eq!(spool_files(spool.path()), 0);
    assert_stored(&server.url, &ids);
}
