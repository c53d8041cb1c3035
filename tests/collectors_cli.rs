//! Collectors as units through the real binary: `pocketses collectors run|list`, and the daemon
//! leaving out a disabled group and a slower group between its readings.

#![allow(clippy::unwrap_used)]

mod daemon_util;

use std::process::Command;

use daemon_util::kept::Kept;
use daemon_util::poll;

#[test]
fn run_prints_one_group_and_list_its_settings() {
    let out = Command::new(env!("CARGO_BIN_EXE_pocketses"))
        .args(["collectors", "run", "memory", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["memory"]["total_bytes"].as_u64().unwrap() > 0, "{doc}");
    assert!(doc["cpu"].is_null() && doc["load"].is_null(), "{doc}");
    let out = Command::new(env!("CARGO_BIN_EXE_pocketses"))
        .args(["collectors", "run", "gpu"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot find collector \"gpu\""));
    let out = Command::new(env!("CARGO_BIN_EXE_pocketses"))
        .args(["collectors", "list", "--set", "collectors.load.enabled=false"])
        .env("POCKETSES_SNAPD_SOCKET", "/nonexistent/snapd.socket")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|l| l.starts_with("load ") && l.contains(" false ")), "{text}");
}

#[test]
fn the_daemon_leaves_out_disabled_and_not_yet_due_groups() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Kept::start(
        dir.path(),
        &["--set", "collectors.memory.enabled=false", "--set", "collectors.load.interval=3600"],
    );
    let snapshot = |daemon: &Kept| -> serde_json::Value {
        serde_json::from_str(&daemon.get("/v1/metrics").body).unwrap_or_default()
    };
    let first =
        poll("a first snapshot", || Some(snapshot(&daemon)).filter(|d| d["timestamp"].is_string()));
    let first_time = first["timestamp"].clone();
    let second = poll("a second snapshot", || {
        Some(snapshot(&daemon))
            .filter(|d| d["timestamp"].is_string() && d["timestamp"] != first_time)
    });
    assert!(first["memory"].is_null() && second["memory"].is_null(), "{first}\n{second}");
    assert!(first["load"].is_object(), "the slow group's first reading: {first}");
    assert!(second["load"].is_null(), "not due again for an hour: {second}");
    assert!(second["cpu"].is_object(), "{second}");
}
