//! Python packages from PyPI for the tests that drive clients nobody here wrote: a virtual
//! environment under `target/tmp/` per pinned set of packages, made on first use from `python3`
//! (`XRAY_PYTHON` to use another interpreter; it needs its `venv` module and network access to
//! PyPI once), marked done only once pip has finished, and reused afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The `python` of the environment `name` with `packages` (pinned: `pkg==1.2.3`) installed.
pub fn python_with(name: &str, packages: &[&str]) -> PathBuf {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let python = venv.join("bin").join("python");
    let done = venv.join("installed");
    let wanted = packages.join("\n");
    if std::fs::read_to_string(&done).is_ok_and(|d| d == wanted) && python.exists() {
        return python;
    }
    let _ = std::fs::remove_dir_all(&venv);
    let base = std::env::var("XRAY_PYTHON").unwrap_or_else(|_| "python3".to_string());
    run(Command::new(&base).arg("-m").arg("venv").arg(&venv));
    run(pip_install(&python).args(packages));
    std::fs::write(&done, wanted).expect("mark the environment installed");
    python
}

/// `python -m pip install`, quiet, to be given what to install.
pub fn pip_install(python: &Path) -> Command {
    let mut cmd = Command::new(python);
    cmd.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]);
    cmd
}

/// Runs `cmd`, failing the test with its output unless it succeeds.
pub fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?} (python3 with venv and pip is needed): {e}")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
