//! `pocketses status` against the fake snapd, and without any snapd.

mod support;

use std::process::Command;

use serde_json::{json, Value};
use support::fake_snapd::FakeSnapd;

fn status(envs: &[(String, String)], json: bool) -> (bool, String) {
    let mut cmd = Command::new(support::bin());
    cmd.arg("status").env_clear().envs(envs.iter().cloned());
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().expect("run pocketses");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn without_snapd_it_says_so_and_prints_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let envs = vec![
        (
            "POCKETSES_SNAPD_SOCKET".to_string(),
            dir.path().join("snapd.socket").display().to_string(),
        ),
        (
            "POCKETSES_CONTROL_SOCKET".to_string(),
            dir.path().join("control.sock").display().to_string(),
        ),
    ];
    let (ok, text) = status(&envs, false);
    assert!(ok);
    assert!(
        text.contains(&format!(
            "snapd is not reachable at {}",
            dir.path().join("snapd.socket").display()
        )),
        "{text}"
    );
    assert!(text.contains("the daemon is not running"), "{text}");
    assert!(text.contains("interval                  60           default"), "{text}");
    let (ok, text) = status(&envs, true);
    assert!(ok);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["config-from"], "defaults");
    assert_eq!(v["config"][0], json!({"key": "interval", "value": 60, "source": "default"}));
}

#[test]
fn with_snapd_it_shows_system_model_snap_connections_and_config_sources() {
    let fake = FakeSnapd::start();
    fake.set_conf(json!({"interval": 15, "colour": "red"}));
    fake.connect("snapd-control", true);
    fake.state().maintenance = Some(
        json!({"kind": "system-restart", "message": "system is restarting", "value": {"op": "reboot"}}),
    );
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("remodel.json"), r#"{"change":"1"}"#).unwrap();
    fake.add_change(vec![support::fake_snapd::Step::State(
        json!({"kind": "remodel", "status": "Doing", "ready": false}),
    )]);
    let mut envs = fake.env();
    envs.push(("SNAP_DATA".into(), data.path().display().to_string()));
    let (ok, text) = status(&envs, true);
    assert!(ok);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["system"]["version"], "2.65-fake");
    assert_eq!(v["system"]["kind"], "core");
    assert_eq!(v["model"]["brand"], "brand");
    assert_eq!(v["model"]["model"], "pocketses-pc");
    assert_eq!(v["model"]["grade"], "dangerous");
    assert_eq!(v["snap"]["revision"], "x1");
    assert!(v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c.as_str().unwrap().starts_with("snapd-control")));
    assert_eq!(v["config-from"], "rest");
    assert_eq!(v["config"][0], json!({"key": "interval", "value": 15, "source": "snapd"}));
    assert_eq!(v["config"][1]["source"], "default");
    assert_eq!(v["unknown-keys"], json!(["colour"]));
    assert_eq!(v["remodel"]["status"], "Doing");
    assert_eq!(v["maintenance"], "system is restarting (system-restart)");
    let (_, text) = status(&envs, false);
    assert!(text.contains("model:       brand/pocketses-pc (grade dangerous)"), "{text}");
    assert!(text.contains("remodel:     change 1 Doing"), "{text}");
}

#[test]
fn in_a_snap_without_snapd_control_it_uses_snapctl() {
    let fake = FakeSnapd::start();
    fake.set_conf(json!({"interval": 20}));
    // What AppArmor does to a strict snap without snapd-control, as snapd's 403.
    fake.fail(
        "GET",
        "/v2/",
        support::fake_snapd::ErrorReply::new(403, Some("login-required"), "access denied"),
    );
    let (ok, text) = status(&fake.env(), true);
    assert!(ok);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v["snapd-error"].as_str().unwrap().contains("connect pocketses:snapd-control"), "{v}");
    assert_eq!(v["model"]["model"], "pocketses-pc");
    assert_eq!(v["model"]["via"], "snapctl");
    assert_eq!(v["config-from"], "snapctl");
    assert_eq!(v["config"][0]["value"], 20);
}
