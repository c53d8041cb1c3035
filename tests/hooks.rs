//! Hooks run as the real binary against the fake snapd, the way snapd runs them.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use pocketses::config::Config;
use pocketses::control::{self, ConfigService};
use pocketses::snapd::conf::ConfigSource;
use serde_json::json;
use support::fake_snapd::FakeSnapd;

fn hook(fake: &FakeSnapd, name: &str, snap_dirs: &Path) -> Output {
    Command::new(support::bin())
        .args(["hook", name])
        .env_clear()
        .envs(fake.env())
        .env("SNAP_DATA", snap_dirs.join("data"))
        .env("SNAP_COMMON", snap_dirs.join("common"))
        .env("POCKETSES_CONTROL_SOCKET", snap_dirs.join("control.sock"))
        .output()
        .expect("run pocketses")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn install_writes_defaults_and_keeps_gadget_values() {
    let fake = FakeSnapd::start();
    let dirs = tempfile::tempdir().unwrap();
    fake.set_conf(json!({"interval": 10, "http": {"bind": "127.0.0.1"}}));
    let out = hook(&fake, "install", dirs.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fake.conf(),
        json!({"interval": 10, "port": 8888, "bind": "0.0.0.0",
            "http": {"port": 9188, "bind": "127.0.0.1", "max-connections": 512, "max-sse": 256,
                "metrics-public": false},
            "publish": {"max-subscribers": 10000, "format": "json", "remodel-events": false},
            "limits": {"per-source": 64}, "fleet": {"tenant": "DEFAULT", "enabled": false},
            "hub": {"timeout": 10, "ingest": false},
            "log": {"level": "info"}, "schema-version": 1})
    );
    // Running again (default-configure after install) changes nothing.
    let before = fake.conf();
    let out = hook(&fake, "default-configure", dirs.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fake.conf(), before);
    let sets: Vec<_> = fake.snapctl_calls().into_iter().filter(|a| a[0] == "set").collect();
    assert_eq!(sets.len(), 1, "second run must not write: {sets:?}");
}

#[test]
fn configure_rejects_with_every_problem_on_its_own_line() {
    let fake = FakeSnapd::start();
    let dirs = tempfile::tempdir().unwrap();
    fake.set_conf(json!({"interval": -1, "port": 70000, "publish": {"format": "xml"}}));
    let out = hook(&fake, "configure", dirs.path());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "cannot set \"interval\": must be a whole number of seconds from 1 to 86400, not \"-1\"\n\
         cannot set \"port\": must be a TCP port from 1 to 65535, or 0 for any free port, not \"70000\"\n\
         cannot set \"publish.format\": must be one of json, legacy, not \"xml\"\n"
    );
    // Nothing was written back.
    assert!(fake.snapctl_calls().iter().all(|a| a[0] == "get"));
}

#[test]
fn configure_accepts_and_tells_a_running_daemon() {
    let fake = FakeSnapd::start();
    let dirs = tempfile::tempdir().unwrap();
    // No daemon: valid configuration passes silently.
    fake.set_conf(json!({"interval": 30}));
    let out = hook(&fake, "configure", dirs.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");

    // With a daemon's control socket listening, the new document reaches its watch channel.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (tx, rx) = tokio::sync::watch::channel(Config::default());
    let source = ConfigSource::new(pocketses::snapd::Client::from_env(), None);
    let service = Arc::new(ConfigService::new(source, Default::default(), Default::default(), tx));
    let path = dirs.path().join("control.sock");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let listener = rt.block_on(async { control::bind(&path) }).unwrap();
    let server = rt.spawn(control::serve(listener, service, shutdown.clone()));
    fake.set_conf(json!({"interval": 5, "http": {"port": 0}}));
    let out = hook(&fake, "configure", dirs.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(rx.borrow().interval, 5);
    assert_eq!(rx.borrow().http.port, 0);
    shutdown.cancel();
    rt.block_on(server).unwrap();
}

#[test]
fn post_refresh_writes_the_schema_marker() {
    let fake = FakeSnapd::start();
    let dirs = tempfile::tempdir().unwrap();
    fake.set_conf(json!({"interval": 30}));
    let out = hook(&fake, "post-refresh", dirs.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fake.conf(), json!({"interval": 30, "schema-version": 1}));
}

#[test]
fn remove_empties_snap_common() {
    let fake = FakeSnapd::start();
    let dirs = tempfile::tempdir().unwrap();
    let common = dirs.path().join("common");
    std::fs::create_dir_all(common.join("cache/x")).unwrap();
    std::fs::write(common.join("state.json"), "{}").unwrap();
    let out = hook(&fake, "remove", dirs.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(&common).unwrap().count(), 0);
}

#[test]
fn plug_hooks_succeed_without_a_daemon() {
    let fake = FakeSnapd::start();
    let dirs = tempfile::tempdir().unwrap();
    for name in ["connect-plug-snapd-control", "disconnect-plug-snapd-control"] {
        let out = hook(&fake, name, dirs.path());
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert_eq!(stderr(&out), "");
    }
}

#[test]
fn outside_a_snap_every_hook_fails_with_one_line() {
    for name in [
        "install",
        "default-configure",
        "configure",
        "post-refresh",
        "remove",
        "connect-plug-snapd-control",
    ] {
        let out = Command::new(support::bin()).args(["hook", name]).env_clear().output().unwrap();
        assert!(!out.status.success(), "{name}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(err.contains("not running inside a snap"), "{name}: {err}");
    }
    let out =
        Command::new(support::bin()).args(["hook", "pre-refresh"]).env_clear().output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unknown hook \"pre-refresh\""));
}

#[test]
fn unreachable_snapd_fails_the_hook_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("snapd-snap.socket");
    let out = Command::new(support::bin())
        .args(["hook", "configure"])
        .env_clear()
        .env("SNAP_COOKIE", "c")
        .env("POCKETSES_SNAPCTL_SOCKET", &socket)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "error: cannot run hook \"configure\": cannot read configuration: snapd is not reachable at {}",
            socket.display()
        )),
        "{err}"
    );
}
