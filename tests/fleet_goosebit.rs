//! The daemon's fleet client against a real gooseBit 0.2.12 (tests/support/goosebit.rs), with
//! a fake snapd for the device's facts and a loopback proxy that breaks downloads.
//!
//! One gooseBit for the whole story (its migrations take seconds), in phases:
//!  a. the daemon registers: gooseBit shows its hardware from configData, and the TargetToken
//!     it sent (gooseBit's device authentication in `setup` mode records it);
//!  b. a tampered bundle and c. a bundle signed by an untrusted key end in `failure` with
//!     pocketses' reason in gooseBit's log, the device in Error;
//!  d. a download cut by the proxy is resumed with `Range`, hashed, verified and applied
//!     through (the fake) snapd: assertion, then snap; its feedback ("Downloaded N%", snapd's
//!     task summaries, the result) reaches gooseBit, which records success and the version;
//!     then snapd fails an install, and gooseBit records failure with snapd's words;
//!  e. a server that goes away mid-download: errors counted, the part kept, the download
//!     resumed when it is back;
//!  f. an update withdrawn by the operator mid-download is cancelled, with nothing applied.
//! SSE `fleet` events and the `pocketses_fleet_*` families are checked along the way.
//! Waits are liveness bounds ([`LIMIT`]), never performance targets.
#![allow(clippy::unwrap_used)] // Helpers outside #[test] functions: a failed unwrap is a failed test.

mod daemon_util;
mod support;

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use daemon_util::Daemon;
use serde_json::{json, Value};
use support::fake_snapd::FakeSnapd;
use support::goosebit::{GooseBit, Mode, Proxy};

/// Upper bound for anything this test waits for; reaching it is a failure.
const LIMIT: Duration = Duration::from_secs(120);

fn wait<T>(what: &str, mut cond: impl FnMut() -> Option<T>, context: &dyn Fn() -> String) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(start.elapsed() < LIMIT, "gave up waiting for {what}\n{}", context());
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn pocketses(keys: &Path, args: &[&str]) -> String {
    let out =
        Command::new(support::bin()).args(args).env("POCKETSES_KEYS_DIR", keys).output().unwrap();
    assert!(out.status.success(), "pocketses {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn fleet(daemon: &Daemon, args: &[&str]) -> std::process::Output {
    Command::new(support::bin())
        .arg("fleet")
        .args(args)
        .env("POCKETSES_STATE_DIR", daemon.state_dir())
        .output()
        .unwrap()
}

fn status(daemon: &Daemon) -> Value {
    let out = fleet(daemon, &["status", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    support::assert_cli_json_shape(&String::from_utf8_lossy(&out.stdout))
}

/// The finished action `id` from `fleet status`'s history.
fn finished(daemon: &Daemon, id: &str) -> Option<Value> {
    status(daemon)["history"].as_array()?.iter().find(|a| a["id"] == id).cloned()
}

/// A bundle of one snap of `size` bytes (pseudo-random, so it does not compress) and an
/// assertion, version `version`, signed by `key`.
fn bundle(keys: &Path, dir: &Path, version: &str, key: &str, size: usize) -> std::path::PathBuf {
    let mut x: u32 = 0x9e37_79b9 ^ u32::try_from(size % (1 << 31)).unwrap();
    let bytes: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect();
    let snap = dir.join(format!("hello_{version}.snap"));
    std::fs::write(&snap, bytes).unwrap();
    let assertion = dir.join("hello.assert");
    std::fs::write(&assertion, "type: snap-revision\nauthority-id: canonical\n").unwrap();
    let out = dir.join(format!("{version}-{key}.swu"));
    pocketses(
        keys,
        &[
            "bundle",
            "create",
            "--version",
            version,
            "--hardware",
            "pocketses-pc",
            assertion.to_str().unwrap(),
            snap.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    pocketses(keys, &["bundle", "sign", "--key", key, out.to_str().unwrap()]);
    out
}

/// Collects the daemon's SSE stream in the background.
fn sse(daemon: &Daemon) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let mut stream = std::net::TcpStream::connect(daemon.http.unwrap()).unwrap();
    stream
        .write_all(
            b"GET /v1/metrics/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n",
        )
        .unwrap();
    let t = text.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            t.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

#[test]
fn the_fleet_client_runs_deployments_from_goosebit() {
    let Some(gb) = GooseBit::start(&[
        ("GOOSEBIT_DEVICE_AUTH__ENABLE", "true"),
        ("GOOSEBIT_DEVICE_AUTH__MODE", "setup"),
    ]) else {
        return;
    };
    let proxy = Proxy::start(gb.url.trim_start_matches("http://"));
    let snapd = FakeSnapd::start();
    let keys = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    pocketses(keys.path(), &["key", "create", "--type", "ed25519", "operator"]);
    pocketses(keys.path(), &["key", "create", "--type", "ed25519", "stranger"]);
    let operator = pocketses(keys.path(), &["key", "export", "operator"]).trim().to_string();

    let sets = [
        format!("fleet.url={}", proxy.url),
        "fleet.enabled=true".to_string(),
        "fleet.token=device-token-1".to_string(),
        format!("fleet.trusted-keys={operator}"),
    ];
    let mut args = vec![];
    for s in &sets {
        args.push("--set");
        args.push(s.as_str());
    }
    let daemon = Daemon::start_env(&args, true, None, &snapd.env());
    let events = sse(&daemon);
    let context = || {
        format!(
            "--- fleet status: {}\n--- daemon:\n{}\n--- gooseBit:\n{}",
            String::from_utf8_lossy(&fleet(&daemon, &["status", "--json"]).stdout),
            daemon.stderr(),
            gb.log().lines().rev().take(30).collect::<Vec<_>>().join("\n")
        )
    };

    // a. Registration: configData and the token reach gooseBit.
    let id = wait(
        "the controller id in fleet status",
        || status(&daemon)["controller-id"].as_str().filter(|s| !s.is_empty()).map(str::to_string),
        &context,
    );
    let host = rustix_hostname();
    assert_eq!(
        id,
        format!("brand-pocketses-pc-{host}"),
        "the default id: brand-model-hostname without a serial"
    );
    let device = wait(
        "the device registered in gooseBit",
        || gb.device(&id).filter(|d| d["hardware"]["model"] == "pocketses-pc"),
        &context,
    );
    assert_eq!(device["hardware"]["revision"], "default", "{device}");
    assert_eq!(
        device["auth_token"], "device-token-1",
        "the TargetToken gooseBit recorded: {device}"
    );
    // `fleet poll` reaches the daemon through its control socket.
    let out = fleet(&daemon, &["poll"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("The daemon polls"));

    // b. A tampered bundle: one byte of the snap changed after signing.
    let good = bundle(keys.path(), work.path(), "1.0.2", "operator", 4096);
    let mut bytes = std::fs::read(&good).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x55;
    let tampered = work.path().join("tampered.swu");
    std::fs::write(&tampered, bytes).unwrap();
    let sw = gb.upload(&tampered);
    gb.assign(&id, &sw);
    let action = wait("the tampered bundle's result", || finished(&daemon, &sw), &context);
    assert_eq!(action["result"], "failure", "{action}");
    let why = action["details"].to_string();
    assert!(
        why.contains(
            "cannot apply bundle: entry \\\"hello_1.0.2.snap\\\" does not match its cpio checksum"
        ),
        "{why}"
    );
    wait(
        "gooseBit's device in Error",
        || gb.device(&id).filter(|d| d["last_state"] == "Error"),
        &context,
    );
    assert!(
        gb.device_log(&id).contains("does not match its cpio checksum"),
        "{}",
        gb.device_log(&id)
    );

    // c. A bundle signed by a key the device does not trust.
    let stranger = bundle(keys.path(), work.path(), "1.0.3", "stranger", 4096);
    let sw = gb.upload(&stranger);
    gb.assign(&id, &sw);
    let action = wait("the untrusted bundle's result", || finished(&daemon, &sw), &context);
    assert_eq!(action["result"], "failure", "{action}");
    assert!(
        action["details"].to_string().contains("cannot apply bundle: signed by untrusted key"),
        "{action}"
    );
    wait(
        "the untrusted key in gooseBit's log",
        || gb.device_log(&id).contains("signed by untrusted key").then_some(()),
        &context,
    );

    // d. A download cut after 300 kB is resumed with Range, then verified.
    let big = bundle(keys.path(), work.path(), "1.0.4", "operator", 2 * 1024 * 1024);
    let sw = gb.upload(&big);
    let before = proxy.ranges().len();
    proxy.set(Mode::Cut(300_000));
    gb.assign(&id, &sw);
    let action = wait("the resumed download's result", || finished(&daemon, &sw), &context);
    let ranges = proxy.ranges()[before..].to_vec();
    assert_eq!(ranges.first(), Some(&None), "the first request asks for all of it: {ranges:?}");
    let resumed = ranges
        .iter()
        .flatten()
        .find_map(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse::<u64>().ok());
    assert!(resumed.is_some_and(|n| n > 0 && n <= 300_000), "a later request resumes: {ranges:?}");
    assert_eq!(action["result"], "success", "{action}");
    let log = gb.device_log(&id);
    assert!(log.contains("Downloaded 100%"), "{log}");
    // snapd's task summaries went along as progress, and the result.
    assert!(log.contains("Install \"hello\" snap from file"), "{log}");
    assert!(log.contains("version 1.0.4 applied (changes "), "{log}");
    let device = gb.device(&id).unwrap();
    assert_eq!(device["last_state"], "Finished", "{device}");
    assert_eq!(device["sw_version"], "1.0.4", "{device}");
    // snapd got the assertion, then the snap (dangerous: nothing vouches for it).
    let installed = snapd.state().installed_files.clone();
    assert_eq!(installed.len(), 1, "one snap installed");
    assert!(installed[0].1, "sent with dangerous");
    assert!(snapd.state().assertions.iter().any(|(t, _)| t == "snap-revision"));
    // configData after the action: gooseBit's sw_version stays what the device reports.
    wait(
        "configData with the new sw_version",
        || gb.device(&id).filter(|d| d["sw_version"] == "1.0.4" && d["last_state"] == "Finished"),
        &context,
    );

    // d2. snapd fails the install: failure with snapd's words.
    let broken = bundle(keys.path(), work.path(), "1.0.41", "operator", 4096);
    let sw = gb.upload(&broken);
    snapd.state().install_script = Some(vec![support::fake_snapd::Step::State(json!({
        "status": "Error", "ready": true,
        "err": "cannot perform the following tasks:\n- Mount snap \"hello\" (unset) (snap \"hello\" assumes unsupported features: nonexistent-feature (try to refresh snapd))",
        "tasks": [{"id": "2", "kind": "mount-snap", "summary": "Mount snap \"hello\" (unset)", "status": "Error"}]
    }))]);
    gb.assign(&id, &sw);
    let action = wait("the failed install's result", || finished(&daemon, &sw), &context);
    assert_eq!(action["result"], "failure", "{action}");
    assert!(
        action["details"].to_string().contains("assumes unsupported features: nonexistent-feature"),
        "{action}"
    );
    wait(
        "snapd's words in gooseBit's log",
        || gb.device_log(&id).contains("assumes unsupported features").then_some(()),
        &context,
    );
    wait(
        "gooseBit's device in Error",
        || gb.device(&id).filter(|d| d["last_state"] == "Error"),
        &context,
    );

    // e. The server goes away mid-download and comes back.
    let big = bundle(keys.path(), work.path(), "1.0.5", "operator", 2 * 1024 * 1024);
    let sw = gb.upload(&big);
    let before = proxy.ranges().len();
    let errors = status(&daemon)["errors"].as_u64().unwrap();
    proxy.set(Mode::GoAway(300_000));
    gb.assign(&id, &sw);
    wait("the proxy to go away", || (proxy.mode() == Mode::Down).then_some(()), &context);
    let st = wait(
        "errors while the server is away",
        || {
            let st = status(&daemon);
            (st["errors"].as_u64().unwrap() >= errors + 2).then_some(st)
        },
        &context,
    );
    let current = &st["current"];
    assert_eq!(current["id"], sw, "{st}");
    assert_eq!(current["stage"], "downloading", "{st}");
    assert!(current["downloaded"].as_u64().unwrap() > 0, "the part is kept: {st}");
    assert!(st["last-error"].as_str().is_some_and(|e| e.starts_with("cannot ")), "{st}");
    proxy.set(Mode::Pass);
    let action =
        wait("the download after the server came back", || finished(&daemon, &sw), &context);
    assert_eq!(action["result"], "success", "{action}");
    assert!(action["details"].to_string().contains("version 1.0.5 applied"), "{action}");
    let ranges = proxy.ranges()[before..].to_vec();
    assert!(
        ranges.iter().flatten().any(|r| r != "bytes=0-"),
        "resumed after the outage: {ranges:?}"
    );

    // f. The operator withdraws an update while it downloads.
    let big = bundle(keys.path(), work.path(), "1.0.6", "operator", 2 * 1024 * 1024);
    let sw = gb.upload(&big);
    proxy.set(Mode::Stall(300_000));
    gb.assign(&id, &sw);
    wait(
        "the stalled download under way",
        || {
            let st = status(&daemon);
            (st["current"]["id"] == sw.as_str() && st["current"]["downloaded"].as_u64() > Some(0))
                .then_some(())
        },
        &context,
    );
    gb.patch(&id, json!({"pinned": true}));
    let action = wait("the withdrawn action", || finished(&daemon, &sw), &context);
    assert_eq!(action["stage"], "cancelled", "{action}");
    assert_eq!(action["result"], Value::Null, "{action}");

    // The SSE stream carried the actions, in the dashboard's shape.
    let text = events.lock().unwrap().clone();
    assert!(text.contains("event: fleet\n"), "no fleet event in the stream");
    let fleet_events: Vec<Value> = text
        .split("event: fleet\n")
        .skip(1)
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    for e in &fleet_events {
        let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["action", "details", "progress", "result", "stage"], "{e}");
    }
    for stage in ["downloading", "verifying", "applying", "done", "failed", "cancelled"] {
        assert!(
            fleet_events.iter().any(|e| e["stage"] == stage),
            "no {stage} event: {fleet_events:?}"
        );
    }
    // /metrics has the fleet families.
    assert!(daemon.metric("pocketses_fleet_polls_total") > 0.0);
    assert!(daemon.metric("pocketses_fleet_downloaded_bytes_total") > 4.0 * 1024.0 * 1024.0);
    assert!(daemon.metric("pocketses_fleet_errors_total") >= 2.0);
    // `fleet history` lists them, newest first.
    let out = fleet(&daemon, &["history"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().next().is_some_and(|l| l.contains(&format!("action {sw} "))
            && l.ends_with("cancelled: the server no longer offers this update")),
        "{text}"
    );
}

fn rustix_hostname() -> String {
    let out = Command::new("uname").arg("-n").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
