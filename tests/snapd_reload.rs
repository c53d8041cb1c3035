//! Live reload end to end: fake snapd + the real daemon binary + the configure hook.
//!
//! The daemon starts on snapd's values (interval one hour); `snap set` is played by changing the
//! fake's document and running `pocketses hook configure`, as snapd would. The next messages then
//! arrive on the new one-second schedule over the same subscriber connection, and a port change
//! rebinds the listener while the old connection keeps streaming.

mod support;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::fake_snapd::FakeSnapd;
use support::free_port;

/// Kills the daemon however the test ends.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn envs(fake: &FakeSnapd, dir: &Path) -> Vec<(String, String)> {
    let mut envs = fake.env();
    envs.push(("SNAP_DATA".into(), dir.display().to_string()));
    envs.push(("POCKETSES_CONTROL_SOCKET".into(), dir.join("control.sock").display().to_string()));
    envs.push(("RUST_LOG".into(), "info".into()));
    envs
}

fn run(args: &[&str], envs: &[(String, String)]) -> Output {
    Command::new(support::bin())
        .args(args)
        .env_clear()
        .envs(envs.iter().cloned())
        .output()
        .expect("run pocketses")
}

/// Starts `pocketses daemon ARGS --ready-file READY` with exactly `envs`, stderr to `stderr`.
fn start(args: &[&str], ready: &Path, envs: &[(String, String)], stderr: Stdio) -> Daemon {
    let child = Command::new(support::bin())
        .arg("daemon")
        .args(args)
        .arg("--ready-file")
        .arg(ready)
        .env_clear()
        .envs(envs.iter().cloned())
        .stderr(stderr)
        .spawn()
        .expect("start the daemon");
    Daemon(child)
}

fn ready_tcp(path: &PathBuf) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let tcp = text.split_whitespace().find_map(|w| w.strip_prefix("tcp="))?;
    Some(tcp.to_string())
}

fn read_line(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read a message");
    assert!(line.ends_with('\n'), "connection closed: {line:?}");
    serde_json::from_str::<Value>(&line).expect("a JSON message");
    line
}

fn subscribe(addr: &str) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(addr).expect("connect to the stream");
    // A bound on each read, not a speed assertion: an hour-long interval would never deliver.
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    BufReader::new(stream)
}

#[test]
fn configure_hook_reaches_the_running_daemon() {
    let fake = FakeSnapd::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    fake.set_conf(
        json!({"interval": 3600, "port": port, "bind": "127.0.0.1", "http": {"port": 0}}),
    );
    let envs = envs(&fake, dir.path());
    let ready = dir.path().join("ready");
    let _daemon = start(&[], &ready, &envs, Stdio::null());
    let first = format!("127.0.0.1:{port}");
    assert!(support::wait_until(Duration::from_secs(60), || ready_tcp(&ready).as_deref()
        == Some(&first)));
    assert!(support::wait_until(Duration::from_secs(30), || dir
        .path()
        .join("control.sock")
        .exists()));

    // The daemon read snapd's configuration: it listens where snapd said and reports the sources.
    let state = run(&["status", "--json"], &envs);
    let status: Value = serde_json::from_slice(&state.stdout).unwrap();
    assert_eq!(status["config-from"], "daemon");
    assert_eq!(status["config"][0], json!({"key": "interval", "value": 3600, "source": "snapd"}));

    let mut old = subscribe(&first);
    read_line(&mut old); // the latest message, sent on connect

    // `snap set pocketses interval=1`: snapd patches the document and runs the configure hook.
    fake.set_conf(json!({"interval": 1, "port": port, "bind": "127.0.0.1", "http": {"port": 0}}));
    let out = run(&["hook", "configure"], &envs);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Two more messages: with the old one-hour interval neither would come.
    read_line(&mut old);
    read_line(&mut old);

    // A port change rebinds; the subscriber on the old port keeps its connection.
    let new_port = free_port();
    fake.set_conf(
        json!({"interval": 1, "port": new_port, "bind": "127.0.0.1", "http": {"port": 0}}),
    );
    let out = run(&["hook", "configure"], &envs);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let second = format!("127.0.0.1:{new_port}");
    assert!(support::wait_until(Duration::from_secs(30), || ready_tcp(&ready).as_deref()
        == Some(&second)));
    let mut new = subscribe(&second);
    read_line(&mut new);
    read_line(&mut old);

    // An invalid `snap set` is refused by the hook and the daemon keeps its values.
    fake.set_conf(
        json!({"interval": 0, "port": new_port, "bind": "127.0.0.1", "http": {"port": 0}}),
    );
    let out = run(&["hook", "configure"], &envs);
    assert_eq!(out.status.code(), Some(1));
    let status: Value = serde_json::from_slice(&run(&["status", "--json"], &envs).stdout).unwrap();
    assert_eq!(status["config"][0]["value"], 1);
    assert_eq!(status["config"][1]["value"], new_port);
    assert_eq!(status["daemon"]["listening"], json!({"tcp": second, "http": null}));
}

#[test]
fn daemon_starts_on_defaults_while_snapd_is_away_then_picks_up_its_values() {
    let fake = FakeSnapd::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    fake.set_conf(
        json!({"interval": 3600, "port": port, "bind": "127.0.0.1", "http": {"port": 0}}),
    );
    // snapd is restarting when the daemon starts.
    fake.go_away(Duration::from_secs(3));
    assert!(support::wait_until(Duration::from_secs(10), || !fake.snapctl_socket().exists()));
    let envs = envs(&fake, dir.path());
    let ready = dir.path().join("ready");
    let _daemon = start(&["--port", "0"], &ready, &envs, Stdio::null());
    // It runs meanwhile (flags and defaults), and is never fatal.
    assert!(support::wait_until(Duration::from_secs(60), || ready_tcp(&ready).is_some()));
    // Once snapd is back, the retry loop applies snapd's values; the --port flag still wins.
    let applied = support::wait_until(Duration::from_secs(60), || {
        let out = run(&["status", "--json"], &envs);
        serde_json::from_slice::<Value>(&out.stdout)
            .map(|s| s["config"][0]["value"] == 3600 && s["config"][1]["source"] == "flag")
            .unwrap_or(false)
    });
    assert!(applied, "snapd's configuration was not applied after it came back");
}

#[test]
fn log_level_applies_live_when_rust_log_is_unset() {
    let fake = FakeSnapd::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = |level: &str, interval: u32| {
        json!({"interval": interval, "port": port, "bind": "127.0.0.1", "http": {"port": 0},
               "log": {"level": level}})
    };
    fake.set_conf(conf("warn", 3600));
    let envs: Vec<_> =
        envs(&fake, dir.path()).into_iter().filter(|(k, _)| k != "RUST_LOG").collect();
    let ready = dir.path().join("ready");
    let log_path = dir.path().join("stderr");
    let _daemon = start(&[], &ready, &envs, std::fs::File::create(&log_path).unwrap().into());
    assert!(support::wait_until(Duration::from_secs(60), || ready_tcp(&ready).is_some()));
    assert!(support::wait_until(Duration::from_secs(30), || dir
        .path()
        .join("control.sock")
        .exists()));
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    // At warn, the start-up lines at info are filtered out.
    assert!(!log().contains("INFO"), "info lines at log.level=warn:\n{}", log());

    // `snap set pocketses log.level=info interval=2`: the interval change is now logged.
    fake.set_conf(conf("info", 2));
    let out = run(&["hook", "configure"], &envs);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        support::wait_until(Duration::from_secs(30), || log()
            .contains("collection interval changed")),
        "no info line after log.level=info:\n{}",
        log()
    );
}
