//! Schemathesis (the OpenAPI fuzzer, from PyPI), installed by the tests themselves: a virtual
//! environment under `target/tmp/` with a pinned version, made on first use from `python3`
//! (`XRAY_PYTHON` to use another interpreter; it needs its `venv` module and network access to
//! PyPI once) and reused afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The schemathesis version the suite is written against.
pub const VERSION: &str = "4.32.5";

/// The `schemathesis` executable, installing it first if it is missing.
pub fn executable() -> PathBuf {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("schemathesis-{VERSION}"));
    let exe = venv.join("bin").join("schemathesis");
    let done = venv.join("installed");
    if done.exists() && installed(&exe) {
        return exe;
    }
    // Made afresh, and marked done only once pip has finished: an interrupted install is
    // never taken for a finished one.
    let _ = std::fs::remove_dir_all(&venv);
    let python = std::env::var("XRAY_PYTHON").unwrap_or_else(|_| "python3".to_string());
    run(Command::new(&python).arg("-m").arg("venv").arg(&venv));
    run(Command::new(venv.join("bin").join("python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg(format!("schemathesis=={VERSION}")));
    assert!(installed(&exe), "schemathesis did not install in {venv:?}");
    std::fs::write(&done, VERSION).expect("mark the environment installed");
    exe
}

/// Whether `exe` runs and is the pinned version.
fn installed(exe: &Path) -> bool {
    Command::new(exe)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(VERSION))
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?} (python3 with venv and pip is needed): {e}")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// GETs each `(pattern, path)` from the server at `base` and checks the answer against the
/// response schema its own `/openapi.json` gives for that path and status (with the
/// environment's `jsonschema_rs`); panics naming every mismatch.
pub fn validate_responses(base: &str, cases: &[(&str, String)]) {
    let exe = executable();
    let python = exe.with_file_name("python");
    let out = Command::new(python)
        .arg("-c")
        .arg(include_str!("validate_responses.py"))
        .arg(base)
        .arg(serde_json::to_string(cases).expect("JSON"))
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "answers that do not match the spec:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
