//! Running the built `xray` against a test server, for the CLI's tests.

use std::process::{Command, Output};

/// `xray --server SERVER ARGS…`, with no endpoint or key from the environment.
pub fn xray(server: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xray"))
        .arg("--server")
        .arg(server)
        .args(args)
        .env_remove("XRAY_ENDPOINT")
        .env_remove("XRAY_API_KEY")
        .output()
        .expect("run xray")
}

/// [`xray`]'s standard output, which must have succeeded.
pub fn ok(server: &str, args: &[&str]) -> String {
    let out = xray(server, args);
    assert!(out.status.success(), "xray {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}
