//! The daemon's control socket and state directory, with the real binary: what a second daemon,
//! a signal, another user or a by-hand start does to them.

#![allow(clippy::unwrap_used)] // Integration tests: a failed unwrap is a failed test.

mod daemon_util;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use daemon_util::{poll, Daemon};
use serde_json::Value;

fn pocketses() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pocketses"))
}

fn status(daemon: &Daemon) -> Value {
    let out = pocketses()
        .args(["status", "--json"])
        .env("POCKETSES_STATE_DIR", daemon.state_dir())
        .env("POCKETSES_SNAPD_SOCKET", daemon.state_dir().join("no-snapd.socket"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn status_finds_a_daemon_started_by_hand_and_shows_the_bound_port() {
    let daemon = Daemon::start(&["--interval", "3600"]);
    let report = status(&daemon);
    assert_eq!(report["config-from"], "daemon", "{report:#}");
    let port = report["config"].as_array().unwrap().iter().find(|v| v["key"] == "port").unwrap();
    // Asked for 0 on the command line: status shows the port the kernel picked.
    assert_eq!(port["value"], daemon.tcp.port(), "{report:#}");
    assert_eq!(port["source"], "flag");
    assert_eq!(report["daemon"]["config-via"], Value::Null);
    let text = pocketses()
        .arg("status")
        .env("POCKETSES_STATE_DIR", daemon.state_dir())
        .env("POCKETSES_SNAPD_SOCKET", daemon.state_dir().join("no-snapd.socket"))
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("config from flags and defaults, not snapd"), "{text}");
    assert!(text.contains(&format!("listening tcp={}", daemon.tcp)), "{text}");
    assert!(!text.contains("config via -"), "{text}");
}

#[test]
fn a_second_daemon_leaves_the_first_ones_socket_alone() {
    let daemon = Daemon::start(&["--interval", "3600"]);
    let socket = daemon.state_dir().join("control.sock");
    assert!(socket.exists());
    // Same state directory, and a port that is taken: it must fail without touching the socket.
    let out = pocketses()
        .args(["daemon", "--bind", "127.0.0.1", "--http-port", "0"])
        .args(["--port", &daemon.tcp.port().to_string()])
        .env("POCKETSES_STATE_DIR", daemon.state_dir())
        .env("POCKETSES_SNAPD_SOCKET", daemon.state_dir().join("no-snapd.socket"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("another pocketses daemon is running"), "{stderr}");
    assert!(socket.exists(), "the live socket was removed");
    assert_eq!(status(&daemon)["config-from"], "daemon", "the first daemon is still reachable");
}

#[test]
fn sighup_rereads_and_keeps_running_and_every_exit_cleans_up() {
    let mut daemon = Daemon::start(&["--interval", "3600"]);
    let socket = daemon.state_dir().join("control.sock");
    let mut sub = daemon.subscribe();
    sub.line();
    daemon.signal(libc::SIGHUP);
    poll("the SIGHUP line", || daemon.stderr().contains("SIGHUP").then_some(()));
    assert!(daemon.child.try_wait().unwrap().is_none(), "SIGHUP killed the daemon");
    assert_eq!(status(&daemon)["config-from"], "daemon");
    let exit = daemon.terminate();
    assert!(exit.success(), "{exit}: {}", daemon.stderr());
    assert!(!socket.exists(), "control socket left behind");
    assert!(!daemon.ready_file().exists(), "ready file left behind");
}

#[test]
fn the_control_socket_refuses_other_users() {
    use std::os::unix::fs::PermissionsExt;
    let daemon = Daemon::start(&["--interval", "3600"]);
    let socket = daemon.state_dir().join("control.sock");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    if daemon_util::euid() != 0 {
        // Only root can act as another user; CI runs as root, so there this runs.
        assert!(std::env::var_os("POCKETSES_CI").is_none(), "CI must run this as root");
        eprintln!("SKIPPED: the other-user half needs root");
        return;
    }
    // Widen the mode so that only the peer-credential check stands in the way.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::set_permissions(daemon.state_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = pocketses()
        .args(["status", "--json"])
        .env("POCKETSES_STATE_DIR", daemon.state_dir())
        .env("POCKETSES_SNAPD_SOCKET", "/nonexistent")
        .uid(65534)
        .gid(65534)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let err = report["daemon-error"].as_str().unwrap_or_default();
    assert!(err.contains("access denied"), "{report:#}");
    assert_eq!(report["daemon"], Value::Null);
}

#[test]
fn subscribe_to_the_http_port_says_so_instead_of_hanging() {
    let daemon = Daemon::start(&["--interval", "3600"]);
    let http = daemon.http.unwrap();
    let out =
        pocketses().args(["subscribe", "--timeout", "1", &http.to_string()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no line within 1s") && stderr.contains("HTTP port"), "{stderr}");
}

#[test]
fn subscribe_stops_at_an_endless_line() {
    use std::io::Write;
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut peer, _) = server.accept().unwrap();
        let chunk = vec![b'{'; 1 << 20];
        // 20 MiB without a newline; the client must give up after its 16 MiB bound.
        for _ in 0..20 {
            if peer.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let out = pocketses().args(["subscribe", &addr.to_string()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("a line is longer than 16 MiB; stopped"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn status_says_when_a_listener_faces_the_network_without_tls_or_auth() {
    let daemon = Daemon::start(&["--interval", "3600", "--set", "bind=0.0.0.0"]);
    let report = status(&daemon);
    let exposure = report["daemon"]["exposure"].as_array().unwrap();
    assert_eq!(exposure.len(), 1, "only the stream faces the network: {report:#}");
    let text = exposure[0].as_str().unwrap();
    assert!(
        text.contains("tcp listener on 0.0.0.0:")
            && text.contains("neither TLS nor authentication"),
        "{text}"
    );
    // Bound to loopback only, nothing to say.
    let quiet = Daemon::start(&["--interval", "3600"]);
    assert_eq!(status(&quiet)["daemon"]["exposure"], serde_json::json!([]));
}
