//! `pocketses bundle apply` through the real binary against the fake snapd: the order of
//! snapd calls, `dangerous` only without a vouching snap-revision, snapd's words on failure,
//! nothing applied from a bundle that fails its checks, and resuming after a restart.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use pocketses::fleet::{bundle, cmd};
use serde_json::{json, Value};
use support::fake_snapd::{FakeSnapd, Step};

const SNAP: &[u8] = b"hsqs pretend this is a squashfs";

fn key() -> SigningKey {
    SigningKey::from_bytes(&[5; 32])
}

fn public(key: &SigningKey) -> String {
    bundle::encode_public_key(&key.verifying_key())
}

/// A bundle of `files` (name, bytes), signed by `key`.
fn make_bundle(dir: &Path, files: &[(&str, &[u8])], key: &SigningKey) -> PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|(name, data)| {
            let p = src.join(name);
            std::fs::write(&p, data).unwrap();
            p
        })
        .collect();
    let out = dir.join("release.swu");
    cmd::create("1.0.1", &[], &paths, &out).unwrap();
    cmd::sign(&out, key).unwrap();
    out
}

/// A signed snap-revision for `data` (the test brand key; the fake snapd does not verify).
fn snap_revision(data: &[u8]) -> Vec<u8> {
    use pocketses::assertion::{Headers, Value as AValue};
    use rsa::pkcs1::DecodeRsaPrivateKey as _;
    let key =
        rsa::RsaPrivateKey::from_pkcs1_pem(include_str!("fixtures/assertions/keys/brand.pem"))
            .unwrap();
    let mut headers = Headers::default();
    for (name, value) in [
        ("type", "snap-revision".to_string()),
        ("authority-id", "brand".into()),
        ("snap-sha3-384", support::fake_snapd::sha3_384(data)),
        ("snap-id", "helloid".into()),
        ("snap-size", data.len().to_string()),
        ("snap-revision", "1".into()),
        ("developer-id", "brand".into()),
        ("timestamp", "2024-01-01T00:00:00Z".into()),
    ] {
        headers.insert(name, AValue::from(value.as_str()));
    }
    pocketses::assertion::encode(&pocketses::assertion::sign::sign(&headers, "", &key, 0).unwrap())
}

struct Device {
    fake: FakeSnapd,
    state: tempfile::TempDir,
}

impl Device {
    fn new() -> Device {
        Device { fake: FakeSnapd::start(), state: tempfile::tempdir().unwrap() }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(support::bin());
        c.args(args)
            .env("POCKETSES_SNAPD_SOCKET", self.fake.snapd_socket())
            .env("POCKETSES_STATE_DIR", self.state.path())
            .env_remove("SNAP")
            .env_remove("SNAP_COOKIE")
            .env_remove("SNAP_COMMON")
            .env_remove("SNAP_DATA");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn journal(&self) -> Value {
        let text = std::fs::read_to_string(self.state.path().join("fleet.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// The POSTs snapd received, as `METHOD path`.
    fn posts(&self) -> Vec<String> {
        self.fake
            .requests()
            .iter()
            .filter(|r| r.method == "POST")
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn a_snap_without_assertions_installs_dangerous_with_keys_from_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let b = make_bundle(dir.path(), &[("hello_1.snap", SNAP)], &key());
    let device = Device::new();
    device.fake.set_conf(json!({"fleet": {"trusted-keys": public(&key())}}));
    let o = device.run(&["bundle", "apply", b.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("verifying"), "{out}");
    assert!(out.contains("installing \"hello_1.snap\" as dangerous"), "{out}");
    assert!(out.contains("Mount snap \"hello\" (unset)"), "{out}");
    assert!(out.contains("done       version 1.0.1 applied (changes 1)"), "{out}");
    assert_eq!(device.posts(), ["POST /v2/snaps"]);
    let files = device.fake.state().installed_files.clone();
    assert_eq!(files, [("hello_1.snap".to_string(), true, SNAP.to_vec())]);
    let journal = device.journal();
    assert_eq!(journal["stage"], "done");
    assert_eq!(journal["version"], "1.0.1");
    assert_eq!(journal["reported"], true);
    assert_eq!(journal["steps"][0]["change"], "1");
    assert_eq!(journal["steps"][0]["status"], "Done");
    // The extracted files are gone once the action is over.
    assert!(!device.state.path().join("fleet-bundle").exists());
}

#[test]
fn assertions_go_first_and_a_vouched_snap_is_not_dangerous() {
    let dir = tempfile::tempdir().unwrap();
    let rev = snap_revision(SNAP);
    let b = make_bundle(dir.path(), &[("hello_1.snap", SNAP), ("hello.assert", &rev)], &key());
    let device = Device::new();
    let o = device.run(&[
        "bundle",
        "apply",
        "--json",
        "--trusted",
        &public(&key()),
        b.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(device.posts(), ["POST /v2/assertions", "POST /v2/snaps"]);
    let asserted = device.fake.requests().into_iter().find(|r| r.path == "/v2/assertions").unwrap();
    assert_eq!(asserted.body, rev);
    assert_eq!(asserted.content_type.as_deref(), Some("application/x.ubuntu.assertion"));
    assert!(!device.fake.state().installed_files[0].1, "sent as dangerous");
    let lines: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stages: Vec<&str> = lines.iter().filter_map(|l| l["progress"]["stage"].as_str()).collect();
    assert_eq!(stages.first(), Some(&"verifying"));
    assert_eq!(stages.last(), Some(&"done"));
    let last = lines.last().unwrap();
    assert_eq!(last["result"], "success");
    assert_eq!(
        last["outcome"],
        json!({"action": last["outcome"]["action"], "version": "1.0.1", "changes": ["1"]})
    );
}

#[test]
fn a_refused_assertion_stops_everything_with_snapds_words() {
    let dir = tempfile::tempdir().unwrap();
    let rev = snap_revision(SNAP);
    let b = make_bundle(dir.path(), &[("hello.assert", &rev), ("hello_1.snap", SNAP)], &key());
    let device = Device::new();
    device.fake.state().assert_refusal =
        Some("cannot check no-authority assertion type \"snap-revision\"".into());
    let o = device.run(&["bundle", "apply", "--trusted", &public(&key()), b.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot apply bundle: snapd refused the assertions in \"hello.assert\": assert failed: cannot check no-authority assertion type \"snap-revision\""),
        "{err}"
    );
    assert_eq!(device.posts(), ["POST /v2/assertions"]);
    let journal = device.journal();
    assert_eq!(journal["stage"], "failed");
    assert_eq!(journal["failure-kind"], "snapd");
}

#[test]
fn a_failed_install_reports_the_change_error() {
    let dir = tempfile::tempdir().unwrap();
    let b = make_bundle(dir.path(), &[("hello_1.snap", SNAP)], &key());
    let device = Device::new();
    let err = "cannot perform the following tasks:\n- Mount snap \"hello\" (unset) (snap \"hello\" assumes unsupported features: nonexistent-feature (try to refresh snapd))";
    device.fake.state().install_script = Some(vec![
        Step::State(json!({"status": "Doing", "ready": false, "tasks": [
            {"id": "2", "kind": "mount-snap", "summary": "Mount snap \"hello\" (unset)", "status": "Doing"}]})),
        Step::State(json!({"status": "Error", "ready": true, "err": err, "tasks": [
            {"id": "2", "kind": "mount-snap", "summary": "Mount snap \"hello\" (unset)", "status": "Error",
             "log": ["2024-08-09T12:00:01Z ERROR snap \"hello\" assumes unsupported features: nonexistent-feature (try to refresh snapd)"]}]})),
    ]);
    let o = device.run(&["bundle", "apply", "--trusted", &public(&key()), b.to_str().unwrap()]);
    assert!(!o.status.success());
    let all = text(&o);
    assert!(all.contains("ended in Error: cannot perform the following tasks:"), "{all}");
    assert!(all.contains("assumes unsupported features: nonexistent-feature"), "{all}");
    assert!(all.contains("failed task 2 (mount-snap): Mount snap \"hello\" (unset)"), "{all}");
    let journal = device.journal();
    assert_eq!(journal["stage"], "failed");
    assert_eq!(journal["steps"][0]["status"], "Error");
}

#[test]
fn a_tampered_or_untrusted_bundle_applies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let b = make_bundle(dir.path(), &[("hello_1.snap", SNAP)], &key());
    let device = Device::new();
    let untrusted = public(&SigningKey::from_bytes(&[6; 32]));
    let o = device.run(&["bundle", "apply", "--trusted", &untrusted, b.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("cannot apply bundle: signed by untrusted key {}", public(&key()))),
        "{err}"
    );
    let mut bytes = std::fs::read(&b).unwrap();
    let at = bytes.windows(4).position(|w| w == b"hsqs").unwrap();
    bytes[at + 5] ^= 1;
    std::fs::write(&b, &bytes).unwrap();
    let o = device.run(&["bundle", "apply", "--trusted", &public(&key()), b.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "cannot apply bundle: entry \"hello_1.snap\" does not match its cpio checksum"
        ),
        "{err}"
    );
    assert!(device.posts().is_empty(), "{:?}", device.posts());
    assert_eq!(device.journal()["failure-kind"], "refused");
    let left: Vec<_> = std::fs::read_dir(device.state.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["fleet.json"], "nothing extracted is left behind");
}

#[test]
fn resume_after_a_restart_follows_the_same_change() {
    let dir = tempfile::tempdir().unwrap();
    let b = make_bundle(dir.path(), &[("hello_1.snap", SNAP)], &key());
    let device = Device::new();
    let doing = json!({"status": "Doing", "ready": false, "tasks": [
        {"id": "3", "kind": "link-snap", "summary": "Make snap \"hello\" (unset) available to the system", "status": "Doing"}]});
    device.fake.state().install_script = Some(vec![Step::State(doing)]);
    let mut child = device
        .command(&["bundle", "apply", "--trusted", &public(&key()), b.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let journal = device.state.path().join("fleet.json");
    let started = support::wait_until(Duration::from_secs(30), || {
        std::fs::read_to_string(&journal).is_ok_and(|t| t.contains("\"change\": \"1\""))
    });
    assert!(started, "the journal never named the change");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(device.journal()["stage"], "applying");
    // A new action is refused while this one is unfinished.
    let o = device.run(&["bundle", "apply", "--trusted", &public(&key()), b.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is still being applied (applying)"),
        "{}",
        text(&o)
    );
    // The change finishes while nobody watches; resuming picks up its end.
    device.fake.script_change(
        "1",
        vec![Step::State(json!({"status": "Done", "ready": true, "tasks": [
            {"id": "3", "kind": "link-snap", "summary": "Make snap \"hello\" (unset) available to the system", "status": "Done"}]}))],
    );
    device.fake.state().requests.clear();
    let o = device.run(&["bundle", "apply", "--resume", "--trusted", &public(&key())]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("following change 1"), "{out}");
    assert!(device.posts().is_empty(), "nothing posted again: {:?}", device.posts());
    assert_eq!(device.fake.state().installed_files.len(), 1);
    let journal = device.journal();
    assert_eq!(journal["stage"], "done");
    assert_eq!(journal["reported"], true);
    // Nothing more to resume.
    let o = device.run(&["bundle", "apply", "--resume", "--trusted", &public(&key())]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no bundle to resume"), "{}", text(&o));
}
