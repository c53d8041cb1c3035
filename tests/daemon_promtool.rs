//! The real daemon's `GET /metrics`, checked by the real `promtool check metrics`.
//!
//! promtool is extracted by `.ci/install.d/metrics.sh` into /var/cache/pocketses-ci/prometheus;
//! `$POCKETSES_PROMTOOL` overrides the path. Exit 3 means lint remarks only; the only remarks allowed
//! are those node_exporter's own camelCase `node_memory_*` names draw.

#![allow(clippy::unwrap_used)] // Helpers outside #[test] functions: a failed unwrap is a failed test.

mod daemon_util;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use daemon_util::Daemon;

fn promtool() -> PathBuf {
    let path = std::env::var_os("POCKETSES_PROMTOOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/cache/pocketses-ci/prometheus/usr/bin/promtool".into());
    assert!(
        path.is_file(),
        "promtool not found at {}: run `bash .ci/install.d/metrics.sh` (or set POCKETSES_PROMTOOL)",
        path.display()
    );
    path
}

#[test]
fn metrics_endpoint_passes_promtool() {
    // A push sink (to a port nobody listens on) adds the pocketses_push_* families, and the
    // fleet client (polling a port nobody listens on) the pocketses_fleet_* ones.
    let daemon = Daemon::start(&[
        "--interval",
        "3600",
        "--set",
        "push.p.url=http://127.0.0.1:9/x",
        "--set",
        "push.p.format=json",
        "--set",
        "fleet.url=http://127.0.0.1:9",
        "--set",
        "fleet.enabled=true",
        "--set",
        "fleet.trusted-keys=b/coDY16/aQJVMkNmZyHnywHun1vDWkREqqt5vm0nMg=",
    ]);
    daemon.subscribe().line();
    // The checks run right after the snapshot is published: wait for them too.
    daemon_util::poll("the first checks", || {
        Some(()).filter(|()| daemon.get("/v1/checks").status == 200)
    });
    daemon_util::poll("the fleet client's first poll", || {
        Some(()).filter(|()| daemon.get("/metrics").body.contains("pocketses_fleet_errors_total 1"))
    });
    let res = daemon.get("/metrics");
    assert_eq!(res.status, 200);
    // Every family exactly once, the daemon's own included.
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for line in res.body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            *seen.entry(rest.split(' ').next().unwrap()).or_default() += 1;
        }
    }
    assert!(seen.contains_key("node_cpu_seconds_total"), "{}", res.body);
    assert!(seen.contains_key("pocketses_subscribers"), "{}", res.body);
    assert!(seen.contains_key("pocketses_push_backlog_records"), "{}", res.body);
    assert!(seen.contains_key("pocketses_push_dropped_records_total"), "{}", res.body);
    assert!(seen.contains_key("pocketses_check_state"), "{}", res.body);
    for family in [
        "pocketses_fleet_polls_total",
        "pocketses_fleet_errors_total",
        "pocketses_fleet_downloaded_bytes_total",
        "pocketses_fleet_action_stage",
    ] {
        assert!(seen.contains_key(family), "{family}: {}", res.body);
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "families written twice: {twice:?}");

    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(res.body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    let remarks: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    assert!(code == 0 || code == 3, "promtool exit {code}: {remarks:?}");
    let camel = " metric names should be written in 'snake_case' not 'camelCase'";
    let bad: Vec<&String> = remarks
        .iter()
        .filter(|r| !r.strip_suffix(camel).is_some_and(|name| name.starts_with("node_memory_")))
        .collect();
    assert!(bad.is_empty(), "unexpected promtool remarks: {bad:#?}");
}
