//! Schemathesis (the OpenAPI fuzzer, from PyPI), installed by the tests themselves: a virtual
//! environment under `target/tmp/` with a pinned version, made on first use from `python3`
//! (`XRAY_PYTHON` to use another interpreter; it needs its `venv` module and network access to
//! PyPI once) and reused afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The schemathesis version the suite is written against.
pub const VERSION: &str = "4.32.5";

/// The `schemathesis` executable, installing it first if it is missing.
pub fn executable() -> PathBuf {
    let python = super::venv::python_with(
        &format!("schemathesis-{VERSION}"),
        &[&format!("schemathesis=={VERSION}")],
    );
    let exe = python.with_file_name("schemathesis");
    assert!(
        installed(&exe),
        "schemathesis did not install beside {python:?}"
    );
    exe
}

/// Whether `exe` runs and is the pinned version.
fn installed(exe: &Path) -> bool {
    Command::new(exe)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(VERSION))
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
