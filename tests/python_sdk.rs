//! The Python SDK (`xray-python/`), end to end: installs it the way the README says (`pip
//! install ./xray-python`, a debug build here) into a venv under `target/tmp/`, starts a real
//! server and runs its pytest suite against it; then the offline scenario across processes.
//!
//! The venv (pinned maturin and pytest from PyPI) is `support::venv`'s, made on first use.

mod support;

use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use support::venv::{self, run};
use support::{Api, Backend, TestDb, TestServer};

/// The maturin and pytest versions the suite is written against.
const MATURIN: &str = "1.16.0";
const PYTEST: &str = "8.4.2";

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's `python`, with maturin, pytest and this build of the `xray` package installed
/// (the package reinstalled once per test process, so it is always this checkout's).
fn python() -> PathBuf {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    static ONE: Mutex<()> = Mutex::new(());
    let _one_at_a_time = ONE.lock().unwrap_or_else(|e| e.into_inner());
    READY.get_or_init(install).clone()
}

fn install() -> PathBuf {
    let python = venv::python_with(
        &format!("python-sdk-{MATURIN}-{PYTEST}"),
        &[&format!("maturin=={MATURIN}"), &format!("pytest=={PYTEST}")],
    );
    let bin = python.parent().expect("the venv's bin folder");
    // `pip install ./xray-python`, as the README says; a debug build for the tests, with the
    // venv's maturin (no build isolation: no download per run) on the PATH.
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    run(venv::pip_install(&python)
        .current_dir(workspace())
        .args(["--no-build-isolation", "--force-reinstall", "--no-deps"])
        .arg("./xray-python")
        .env("PATH", path)
        .env("MATURIN_PEP517_ARGS", "--profile dev")
        .env("CARGO_INCREMENTAL", "0"));
    python
}

/// `python` with the SDK pointed at `endpoint`, its spool in `spool`.
fn sdk_python(endpoint: &str, spool: &Path) -> Command {
    let mut cmd = Command::new(python());
    cmd.current_dir(workspace().join("xray-python").join("tests"))
        .env("XRAY_ENDPOINT", endpoint)
        .env("XRAY_SPOOL_DIR", spool)
        .env("XRAY_BATCH_INTERVAL_MS", "5")
        .env_remove("XRAY_OFFLINE_MODE")
        .env_remove("XRAY_CAPTURE")
        .env_remove("XRAY_PIPELINE");
    cmd
}

#[test]
fn the_pytest_suite_passes_against_a_real_server() {
    let api = Api::start(Backend::Postgres);
    let spool = tempfile::tempdir().expect("temp dir");
    let out = sdk_python(&api.server.url, spool.path())
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "."])
        .env("XRAY_TEST_SERVER", &api.server.url)
        .output()
        .expect("run pytest");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "pytest failed:\n{text}");
    assert!(text.contains(" passed"), "pytest ran tests:\n{text}");
}

#[test]
fn a_run_spooled_while_the_server_is_down_is_delivered_by_a_later_process_exactly_once() {
    let db = TestDb::create(Backend::Sqlite);
    // An address where nothing listens yet: the server comes up there later.
    let addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let endpoint = format!("http://{addr}");
    let spool = tempfile::tempdir().expect("temp dir");
    let pipeline = format!("py_offline_{}", uuid::Uuid::new_v4().simple());

    let recorded = run(sdk_python(&endpoint, spool.path())
        .args(["offline_scenario.py", "record", &pipeline])
        .env("XRAY_MAX_ATTEMPTS", "1"));
    let run_id = String::from_utf8_lossy(&recorded.stdout).trim().to_string();
    assert!(
        !run_id.is_empty(),
        "the recording process printed its run id"
    );
    let waiting = std::fs::read_dir(spool.path())
        .expect("the spool exists")
        .count();
    assert!(waiting > 0, "the run waits in the spool");

    let listener = (0..50)
        .find_map(|_| {
            TcpListener::bind(addr)
                .map_err(|_| std::thread::sleep(Duration::from_millis(100)))
                .ok()
        })
        .expect("the server's address is free again");
    let server = TestServer::start_listener(db.url(), listener, 16 * 1024 * 1024);
    let api = Api::on(server);
    run(sdk_python(&endpoint, spool.path()).args(["offline_scenario.py", "deliver"]));

    let runs = api.ok(&format!("/runs?pipeline={pipeline}"));
    let runs = runs["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1, "stored once: {runs:?}");
    assert_eq!(runs[0]["run_id"], run_id.as_str());
    let stored: Value = api.ok(&format!("/runs/{run_id}"));
    assert_eq!(stored["status"], "completed");
    assert_eq!(stored["input"], serde_json::json!({"offline": true}));
    assert_eq!(stored["output"], serde_json::json!({"kept": 5}));
    let steps = stored["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 1, "the step stored once");
    assert_eq!(steps[0]["input_count"], 10);
    assert_eq!(steps[0]["rejections"]["odd"]["count"], 5);
    assert_eq!(steps[0]["acceptances"]["count"], 5);
    // Nothing is left to send twice.
    let left: Vec<_> = std::fs::read_dir(spool.path())
        .expect("the spool")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .collect();
    assert!(left.is_empty(), "the spool is empty: {left:?}");
}
