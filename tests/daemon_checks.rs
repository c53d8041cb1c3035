//! The checks in a running daemon: `GET /v1/checks`, SSE `check` events, `pocketses_check_state`
//! on `/metrics`, and the snap's health sent to (fake) snapd with `snapctl set-health` once per
//! change; and the check-health hook.
//!
//! Checks whose figures move on a busy build machine (load, memory, swap, inodes, temperature)
//! are turned off; `filesystem` is driven by thresholds, set with `--set`, in snapd's document
//! or over the control socket (a `snap set` as the configure hook hands it over), so every state
//! is known whatever the build machine's disk holds.

#![allow(clippy::unwrap_used)] // Helpers outside #[test] functions: a failed unwrap is a failed test.

mod daemon_util;
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::process::Command;

use daemon_util::{poll, Daemon, DEADLINE};
use serde_json::{json, Value};
use support::fake_snapd::FakeSnapd;

/// Only `filesystem` (and the snapd-fed checks) run.
const QUIET: [&str; 10] = [
    "--set",
    "checks.load.enabled=false",
    "--set",
    "checks.memory.enabled=false",
    "--set",
    "checks.swap.enabled=false",
    "--set",
    "checks.inodes.enabled=false",
    "--set",
    "checks.temperature.enabled=false",
];

fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--interval", "1", "--set", "checks.filesystem.failures-before-critical=1"];
    args.extend(QUIET);
    args.extend(extra);
    args
}

/// Applies `config` as the configure hook does (`reload` on the control socket).
fn reload(daemon: &Daemon, config: Value) {
    let mut stream = UnixStream::connect(daemon.state_dir().join("control.sock")).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let line = json!({"command": "reload", "config": config}).to_string();
    stream.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).unwrap();
    assert!(reply.contains("\"ok\":true"), "{reply}");
}

/// Filesystem thresholds that never alert, as snapd's document holds them.
fn calm() -> Value {
    json!({"checks": {"filesystem": {"warn": "~:", "crit": "~:"}}})
}

/// Filesystem thresholds that make every writable filesystem CRIT.
fn critical() -> Value {
    json!({"checks": {"filesystem": {"warn": "~:", "crit": "0:0"}}})
}

/// `GET /v1/checks` once the checks have run.
fn checks(daemon: &Daemon) -> Value {
    let res = poll("checks to run", || Some(daemon.get("/v1/checks")).filter(|r| r.status == 200));
    assert_eq!(res.header("content-type"), Some("application/json"));
    serde_json::from_str(&res.body).unwrap()
}

fn entry<'a>(doc: &'a Value, check: &str) -> Option<&'a Value> {
    doc["checks"].as_array().unwrap().iter().find(|c| c["check"] == check)
}

/// An SSE stream: `(event, data)` pairs.
struct Sse(BufReader<TcpStream>);

impl Sse {
    fn open(daemon: &Daemon) -> Sse {
        let mut stream = TcpStream::connect(daemon.http.unwrap()).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream.write_all(b"GET /v1/metrics/stream HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let mut reader = BufReader::new(stream);
        loop {
            let mut line = String::new();
            assert!(reader.read_line(&mut line).unwrap() > 0, "headers ended early");
            if line == "\r\n" {
                return Sse(reader);
            }
        }
    }

    fn next(&mut self) -> (String, String) {
        let (mut event, mut data) = (String::new(), String::new());
        loop {
            let mut line = String::new();
            assert!(self.0.read_line(&mut line).unwrap() > 0, "stream ended");
            // Chunked transfer: chunk sizes and their blank lines come between the events.
            let line = line.trim_end_matches(['\r', '\n']);
            if let Some(name) = line.strip_prefix("event: ") {
                event = name.to_string();
            } else if let Some(text) = line.strip_prefix("data: ") {
                data.push_str(text);
            } else if line.is_empty() && !event.is_empty() {
                return (event, data);
            }
        }
    }
}

#[test]
fn checks_are_on_http_sse_and_metrics_and_follow_a_live_threshold() {
    let daemon = Daemon::start(&args(&[]));
    // Calm first, whatever the default thresholds say of this machine's disk.
    reload(&daemon, calm());
    poll("/ OK", || {
        let doc = checks(&daemon);
        (entry(&doc, "filesystem:/")?["state"] == "OK").then_some(())
    });
    let mut sse = Sse::open(&daemon);
    let (first, _) = sse.next();
    assert_eq!(first, "snapshot");
    // After its first snapshot, a subscriber gets every check's state.
    let doc = checks(&daemon);
    let (event, data) = sse.next();
    assert_eq!(event, "check", "{data}");
    let value: Value = serde_json::from_str(&data).unwrap();
    for key in ["check", "state", "value", "unit", "threshold", "summary", "flapping", "since"] {
        assert!(value.get(key).is_some(), "{key} missing in {data}");
    }
    // The document is `checks run --json`'s, with the run's time.
    assert!(doc["state"].is_string() && doc["exit-code"].is_number(), "{doc}");
    assert!(doc["timestamp"].as_str().unwrap().ends_with('Z'));
    let root = entry(&doc, "filesystem:/").expect("a result for /");
    assert_eq!(root["unit"], "%");

    // `snap set pocketses checks.filesystem.crit=0:0`: / turns CRIT at the next run.
    reload(&daemon, critical());
    let crit = poll("a CRIT check event for /", || {
        let (event, data) = sse.next();
        let value: Value = serde_json::from_str(&data).ok()?;
        (event == "check" && value["check"] == "filesystem:/" && value["state"] == "CRIT")
            .then_some(value)
    });
    // Ranges are shown in their shortest form: 0:0 is 0.
    assert_eq!(crit["threshold"], "0");
    assert!(crit["summary"].as_str().unwrap().ends_with("(crit at 0 %)"), "{crit}");
    let doc = checks(&daemon);
    assert_eq!(entry(&doc, "filesystem:/").unwrap()["state"], "CRIT");
    assert_eq!(doc["state"], "CRIT");
    assert_eq!(doc["exit-code"], 2);
    let metrics = daemon.get("/metrics").body;
    assert!(
        metrics.contains(
            "# HELP pocketses_check_state State of each check as its Nagios exit code: 0 OK, 1 WARN, 2 CRIT, 3 UNKNOWN.\n# TYPE pocketses_check_state gauge\n"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("pocketses_check_state{check=\"filesystem:/\"} 2\n"), "{metrics}");

    // Back to thresholds that never alert: one OK event, and no event while nothing changes.
    reload(&daemon, calm());
    poll("an OK check event for /", || {
        let (event, data) = sse.next();
        (event == "check"
            && data.contains("\"check\":\"filesystem:/\"")
            && data.contains("\"state\":\"OK\""))
        .then_some(())
    });
    let mut snapshots = 0;
    while snapshots < 3 {
        let (event, data) = sse.next();
        match event.as_str() {
            "snapshot" => snapshots += 1,
            "check" => {
                assert!(!data.contains("\"check\":\"filesystem:/\""), "no change, yet: {data}")
            }
            _ => {}
        }
    }
}

#[test]
fn a_check_forced_critical_with_set_is_critical_everywhere() {
    let daemon = Daemon::start(&args(&["--set", "checks.filesystem.crit=0:0"]));
    let doc = checks(&daemon);
    let root = entry(&doc, "filesystem:/").unwrap();
    assert_eq!(root["state"], "CRIT", "{doc}");
    assert_eq!(doc["exit-code"], 2);
    assert_eq!(daemon.metric("pocketses_check_state{check=\"filesystem:/\"}"), 2.0);
    // Outside a snap the daemon says once that it does not report health, and goes on.
    let stderr = daemon.stderr();
    assert_eq!(stderr.matches("snap health is not reported").count(), 1, "{stderr}");
}

fn fake_with_plugs(plugs: &[&str]) -> FakeSnapd {
    let fake = FakeSnapd::start();
    fake.set_conf(calm());
    for plug in plugs {
        fake.connect(plug, true);
    }
    fake
}

const OBSERVE: [&str; 4] =
    ["system-observe", "network-observe", "hardware-observe", "mount-observe"];

/// No health sent twice in a row: every call is a change.
fn assert_changes_only(calls: &[Vec<String>]) {
    for pair in calls.windows(2) {
        assert_ne!(pair[0], pair[1], "the same health was sent twice: {calls:?}");
    }
}

#[test]
fn snap_health_is_set_once_per_change() {
    let fake = fake_with_plugs(&OBSERVE);
    let daemon = Daemon::start_env(&args(&[]), true, None, &fake.env());
    let okay = vec!["okay".to_string()];
    poll("health okay", || (fake.health_calls().last() == Some(&okay)).then_some(()));
    // Several runs later, still one okay.
    let mut sub = daemon.subscribe();
    for _ in 0..3 {
        sub.line();
    }
    let calls = fake.health_calls();
    assert_eq!(calls.iter().filter(|c| **c == okay).count(), 1, "{calls:?}");
    assert_changes_only(&calls);

    reload(&daemon, critical());
    let error = vec![
        "--code=filesystem-critical".to_string(),
        "error".to_string(),
        "filesystem:/ is critical".to_string(),
    ];
    poll("health error", || (fake.health_calls().last() == Some(&error)).then_some(()));
    for _ in 0..3 {
        sub.line();
    }
    let calls = fake.health_calls();
    assert_eq!(calls.iter().filter(|c| **c == error).count(), 1, "{calls:?}");
    // What `snap info pocketses` and GET /v2/snaps/pocketses show.
    let snap = fake.state().snaps.iter().find(|s| s["name"] == "pocketses").cloned().unwrap();
    assert_eq!(snap["health"]["status"], "error");
    assert_eq!(snap["health"]["code"], "filesystem-critical");
    assert_eq!(snap["health"]["message"], "filesystem:/ is critical");

    reload(&daemon, calm());
    poll("health okay again", || (fake.health_calls().last() == Some(&okay)).then_some(()));
    let calls = fake.health_calls();
    assert_changes_only(&calls);
    assert_eq!(calls.iter().filter(|c| **c == okay).count(), 2, "{calls:?}");
    // snapd answers: the snapd check is OK (pocketses' own health is not among `snaps`).
    let doc = checks(&daemon);
    assert_eq!(entry(&doc, "snapd").unwrap()["state"], "OK", "{doc}");
    assert!(entry(&doc, "snaps:pocketses").is_none(), "{doc}");
}

#[test]
fn a_missing_interface_blocks_the_snap_until_connected() {
    let fake = fake_with_plugs(&["system-observe", "network-observe", "hardware-observe"]);
    let _daemon = Daemon::start_env(&args(&[]), true, None, &fake.env());
    let blocked = vec![
        "--code=needs-mount-observe".to_string(),
        "blocked".to_string(),
        "not connected, run: snap connect pocketses:mount-observe".to_string(),
    ];
    poll("health blocked", || (fake.health_calls().last() == Some(&blocked)).then_some(()));
    fake.connect("mount-observe", true);
    // The next poll of snapd (at most every 10 s) sees the plug.
    let okay = vec!["okay".to_string()];
    poll("health okay", || (fake.health_calls().last() == Some(&okay)).then_some(()));
    assert_changes_only(&fake.health_calls());
}

#[test]
fn other_snaps_health_is_a_check() {
    let fake = fake_with_plugs(&OBSERVE);
    fake.connect("snapd-control", true);
    fake.state().snaps.push(json!({
        "name": "broken", "status": "active", "type": "app", "revision": "3",
        "health": {"revision": "3", "timestamp": "2024-08-09T12:00:00Z", "status": "error",
                   "message": "the database is corrupt", "code": "db-corrupt"}
    }));
    let daemon = Daemon::start_env(&args(&[]), true, None, &fake.env());
    let doc = poll("a result for the broken snap", || {
        let doc = checks(&daemon);
        entry(&doc, "snaps:broken").is_some().then_some(doc)
    });
    let broken = entry(&doc, "snaps:broken").unwrap();
    assert_eq!(broken["state"], "CRIT");
    assert_eq!(
        broken["summary"],
        "snap \"broken\" is error: the database is corrupt [db-corrupt] (crit at 2)"
    );
    // Another snap's error is this snap's error too: the device is not fine.
    let error = vec![
        "--code=snaps-critical".to_string(),
        "error".to_string(),
        "snaps:broken is critical".to_string(),
    ];
    poll("health error", || (fake.health_calls().last() == Some(&error)).then_some(()));
}

fn hook(fake: &FakeSnapd, control: &std::path::Path) -> std::process::Output {
    Command::new(support::bin())
        .args(["hook", "check-health"])
        .env_clear()
        .envs(fake.env())
        .env("POCKETSES_CONTROL_SOCKET", control)
        .output()
        .unwrap()
}

#[test]
fn the_check_health_hook_sets_the_daemons_health() {
    let fake = fake_with_plugs(&OBSERVE);
    let daemon =
        Daemon::start_env(&args(&["--set", "checks.filesystem.crit=0:0"]), true, None, &fake.env());
    let error = vec![
        "--code=filesystem-critical".to_string(),
        "error".to_string(),
        "filesystem:/ is critical".to_string(),
    ];
    poll("the daemon's health", || (fake.health_calls().last() == Some(&error)).then_some(()));
    let before = fake.health_calls().len();
    let out = hook(&fake, &daemon.state_dir().join("control.sock"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let calls = fake.health_calls();
    assert_eq!(calls.len(), before + 1, "{calls:?}");
    assert_eq!(calls.last(), Some(&error));
}

#[test]
fn without_a_daemon_the_hook_runs_the_checks_itself() {
    let fake = fake_with_plugs(&OBSERVE);
    // The configuration snapd holds: only filesystem, and it is critical.
    fake.set_conf(json!({"checks": {
        "filesystem": {"crit": "0:0"},
        "load": {"enabled": false}, "memory": {"enabled": false}, "swap": {"enabled": false},
        "inodes": {"enabled": false}, "temperature": {"enabled": false}
    }}));
    let dir = tempfile::tempdir().unwrap();
    let out = hook(&fake, &dir.path().join("control.sock"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        fake.health_calls(),
        [vec![
            "--code=filesystem-critical".to_string(),
            "error".to_string(),
            "filesystem:/ is critical".to_string()
        ]]
    );
}

#[test]
fn the_snaps_are_asked_once_per_poll_for_the_check_and_the_page() {
    let fake = fake_with_plugs(&OBSERVE);
    fake.connect("snapd-control", true);
    fake.state().snaps.push(json!({
        "name": "broken", "status": "active", "type": "app", "version": "1.0", "revision": "3",
        "health": {"revision": "3", "timestamp": "2024-08-09T12:00:00Z", "status": "error",
                   "message": "the database is corrupt", "code": "db-corrupt"}
    }));
    let daemon = Daemon::start_env(&args(&[]), true, None, &fake.env());
    // Both readers have the list: the check and the dashboard's table of snaps.
    poll("a result for the broken snap", || entry(&checks(&daemon), "snaps:broken").map(|_| ()));
    poll("the broken snap on the page", || {
        let page = daemon.get("/");
        page.body.contains("<tr data-snap=\"broken\">").then_some(())
    });
    // One `GET /v2/snaps` per poll of snapd, which asks whether the plugs are connected first
    // (only the poller asks for system-observe): the page did not ask for a list of its own.
    let requests = fake.requests();
    let lists = requests.iter().filter(|r| r.method == "GET" && r.path == "/v2/snaps").count();
    let polls =
        requests.iter().filter(|r| r.snapctl_args() == ["is-connected", "system-observe"]).count();
    assert!(lists >= 1 && lists <= polls, "{lists} lists for {polls} polls");
}
