//! The real daemon's TCP line stream: first line at once, identical lines for all, no echo,
//! clean SIGTERM, and `pocketses subscribe`.

#![allow(clippy::unwrap_used)] // Helpers outside #[test] functions: a failed unwrap is a failed test.

mod daemon_util;

use std::collections::HashMap;
use std::io::Write;
use std::process::Command;

use daemon_util::{is_json_line, Daemon, Read1};

#[test]
fn first_line_arrives_without_waiting_an_interval() {
    // An hour-long interval: a line can only come from the snapshot taken at start.
    let daemon = Daemon::start(&["--interval", "3600"]);
    let mut a = daemon.subscribe();
    let first = a.line();
    assert!(is_json_line(&first), "{first:?}");
    // A later subscriber gets the same latest snapshot, also at once.
    let mut b = daemon.subscribe();
    assert_eq!(b.line(), first);
}

#[test]
fn identical_lines_reach_every_subscriber() {
    let daemon = Daemon::start(&["--interval", "1"]);
    let mut subs: Vec<_> = (0..50).map(|_| daemon.subscribe()).collect();
    // Every subscriber reads three consecutive messages. Subscribers may start one snapshot
    // apart, so compare successors: whoever received message X must have received the same Y next.
    let mut next_of: HashMap<String, String> = HashMap::new();
    for sub in &mut subs {
        let lines: Vec<String> = (0..3).map(|_| sub.line()).collect();
        for line in &lines {
            assert!(is_json_line(line), "{line:?}");
        }
        for pair in lines.windows(2) {
            let seen = next_of.entry(pair[0].clone()).or_insert_with(|| pair[1].clone());
            assert_eq!(seen, &pair[1], "two subscribers got different messages after the same one");
        }
    }
}

#[test]
fn input_is_never_echoed() {
    let daemon = Daemon::start(&["--interval", "1"]);
    let mut talker = daemon.subscribe();
    let mut listener = daemon.subscribe();
    talker.line();
    listener.line();
    for _ in 0..3 {
        talker.stream().write_all(b"{\"echo\":\"probe\"}\nhello everyone\n").unwrap();
    }
    // Two more snapshots: anything forwarded would have been interleaved with them.
    for sub in [&mut talker, &mut listener] {
        for _ in 0..2 {
            let line = sub.line();
            assert!(is_json_line(&line), "{line:?}");
            assert!(!line.contains("probe") && !line.contains("hello"), "echoed: {line:?}");
        }
    }
}

#[test]
fn sigterm_closes_subscribers_and_exits_zero() {
    let mut daemon = Daemon::start(&["--interval", "3600"]);
    let mut sub = daemon.subscribe();
    sub.line();
    let status = daemon.terminate();
    assert!(status.success(), "exit status {status}: {}", daemon.stderr());
    assert_eq!(sub.next(), Read1::Closed);
    assert!(std::net::TcpStream::connect(daemon.tcp).is_err(), "still accepting after exit");
    assert!(daemon.stderr().contains("shutting down"), "{}", daemon.stderr());
}

#[test]
fn says_once_that_snapd_is_not_reachable() {
    let daemon = Daemon::start(&["--interval", "3600"]);
    // The retry loop says it, possibly after the listeners are up; then retries a few times
    // within the next second (backoff from 100 ms), which must not say it again.
    daemon_util::poll("the line about snapd", || {
        daemon.stderr().contains("snapd is not reachable").then_some(())
    });
    std::thread::sleep(std::time::Duration::from_secs(1));
    let stderr = daemon.stderr();
    assert_eq!(stderr.matches("snapd is not reachable").count(), 1, "{stderr}");
    assert!(stderr.contains(&format!("listening tcp={}", daemon.tcp)), "{stderr}");
}

#[test]
fn subscribe_prints_lines_and_exits_zero_on_eof() {
    let mut daemon = Daemon::start(&["--interval", "3600"]);
    // Kept open, so that the count below is not satisfied by a subscriber already gone.
    let mut own = daemon.subscribe();
    let first = own.line();
    let child = Command::new(env!("CARGO_BIN_EXE_pocketses"))
        .args(["subscribe", &daemon.tcp.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the daemon counts it (beside the test's own subscriber), then end the stream.
    daemon_util::poll("the subscriber to connect", || {
        (daemon.metric("pocketses_subscribers") >= 2.0).then_some(())
    });
    assert!(daemon.terminate().success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), first);
}

#[test]
fn subscribe_pretty_prints() {
    let mut daemon = Daemon::start(&["--interval", "3600"]);
    // Kept open, so that the count below is not satisfied by a subscriber already gone.
    let mut own = daemon.subscribe();
    let first = own.line();
    let child = Command::new(env!("CARGO_BIN_EXE_pocketses"))
        .args(["subscribe", "--pretty", &daemon.tcp.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    daemon_util::poll("the subscriber to connect", || {
        (daemon.metric("pocketses_subscribers") >= 2.0).then_some(())
    });
    assert!(daemon.terminate().success());
    let out = child.wait_with_output().unwrap();
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sent: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(printed, sent);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\n  "), "not indented");
}

#[test]
fn subscribe_says_clearly_when_nobody_listens() {
    let port = daemon_util::free_port();
    let out = Command::new(env!("CARGO_BIN_EXE_pocketses"))
        .args(["subscribe", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.trim(),
        format!("error: cannot connect to pocketses at 127.0.0.1:{port}: connection refused")
    );
}

#[test]
fn legacy_format_flag_is_accepted() {
    let daemon = Daemon::start(&["--interval", "3600", "--format", "legacy"]);
    let line = daemon.subscribe().line();
    assert!(is_json_line(&line), "{line:?}");
}

#[test]
fn max_subscribers_refuses_the_extra_ones() {
    let daemon = Daemon::start(&["--interval", "3600", "--max-subscribers", "2"]);
    let mut a = daemon.subscribe();
    let mut b = daemon.subscribe();
    a.line();
    b.line();
    assert_eq!(daemon.subscribe().next(), Read1::Closed);
    assert!(daemon.metric("pocketses_connections_refused_total") >= 1.0);
    drop(a);
    // The slot frees once the daemon notices the close; then a new subscriber gets in.
    daemon_util::poll("a freed slot", || match daemon.subscribe().next() {
        Read1::Line(_) => Some(()),
        Read1::Closed => None,
    });
}

#[test]
fn a_taken_port_fails_the_start_with_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pocketses"))
        .args(["daemon", "--bind", "127.0.0.1", "--http-port", "0", "--port", &port.to_string()])
        .env("POCKETSES_SNAPD_SOCKET", "/nonexistent")
        .env("POCKETSES_STATE_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let want = format!(
        "error: cannot listen on 127.0.0.1:{port}: address already in use; \
         choose another with --port or snap set pocketses port=…"
    );
    assert!(stderr.lines().any(|l| l == want), "{stderr}");
    assert!(!stderr.contains("listening tcp="), "logged a listener it did not keep: {stderr}");
}

#[test]
fn a_taken_http_port_names_its_own_flag_and_logs_no_listener() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = Command::new(env!("CARGO_BIN_EXE_pocketses"))
        .args(["daemon", "--bind", "127.0.0.1", "--port", "0", "--http-port", &port.to_string()])
        .env("POCKETSES_SNAPD_SOCKET", "/nonexistent")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let want = format!(
        "error: cannot listen on 127.0.0.1:{port}: address already in use; \
         choose another with --http-port or snap set pocketses http.port=…"
    );
    assert!(stderr.lines().any(|l| l == want), "{stderr}");
    // The stream's port was bound, then let go: saying "listening tcp=…" would be untrue.
    assert!(!stderr.contains("listening tcp="), "logged a listener it did not keep: {stderr}");
}

#[test]
fn the_originals_flags_work_without_a_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Kill(
        Command::new(env!("CARGO_BIN_EXE_pocketses"))
            .args(["--port", "0", "--interval", "3600", "--bind", "127.0.0.1", "--http-port", "0"])
            .arg("--ready-file")
            .arg(&ready)
            .env("POCKETSES_SNAPD_SOCKET", dir.path().join("none"))
            .env("POCKETSES_STATE_DIR", dir.path())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let text = daemon_util::poll("the ready file", || {
        std::fs::read_to_string(&ready).ok().filter(|t| t.ends_with('\n'))
    });
    let (tcp, http) = daemon_util::parse_ready(&text);
    assert_eq!(http, None);
    let line = daemon_util::Subscriber::connect(tcp.unwrap()).line();
    assert!(is_json_line(&line));
}
