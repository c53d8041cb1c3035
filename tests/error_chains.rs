//! Error chains print each cause once: a command that cannot reach snapd names the missing
//! socket and the operating system's reason one time, not once per layer of the chain.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

const CAUSE: &str = "No such file or directory (os error 2)";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Runs pocketses with snapd's socket at a path where nothing exists; returns (code, stderr, stdout).
fn run_without_snapd(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(support::bin())
        .args(args)
        .env("POCKETSES_SNAPD_SOCKET", dir.join("missing/snapd.socket"))
        .env("POCKETSES_STATE_DIR", dir)
        .env_remove("SNAP_DATA")
        .env_remove("SNAP")
        .env_remove("RUST_LOG")
        .output()
        .expect("run pocketses");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn remodel_without_snapd_names_the_cause_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = fixture("remodel/rev2.model");
    let model = model.to_str().expect("utf-8 path");
    let (code, stderr, _) = run_without_snapd(dir.path(), &["remodel", "--check", model]);
    assert_eq!(code, 1, "{stderr}");
    let socket = dir.path().join("missing/snapd.socket");
    let want = format!(
        "error: cannot get the current model from snapd: snapd is not reachable at {}: {CAUSE}\n",
        socket.display()
    );
    assert_eq!(stderr, want);
    assert_eq!(stderr.matches(CAUSE).count(), 1, "{stderr}");
}

#[test]
fn status_without_snapd_names_the_cause_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, stderr, stdout) = run_without_snapd(dir.path(), &["status"]);
    assert_eq!(code, 0, "{stderr}");
    let both = format!("{stdout}{stderr}");
    assert!(both.contains("snapd is not reachable at"), "{both}");
    for line in both.lines() {
        assert!(line.matches(CAUSE).count() <= 1, "cause repeated: {line}");
    }
}
