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

    /// The first `POST path` snapd received.
    fn post(&self, path: &str) -> support::fake_snapd::Recorded {
        let requests = self.fake.requests();
        requests.into_iter().find(|r| r.method == "POST" && r.path == path).unwrap()
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
    let lines: Vec<Value> =
        String::from_utf8_lossy(&o.stdout).lines().map(support::assert_cli_json_shape).collect();
    assert!(lines.iter().all(|l| l["event"] == "fleet"), "{lines:?}");
    let stages: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "progress")
        .filter_map(|l| l["stage"].as_str())
        .collect();
    assert_eq!(stages.first(), Some(&"verifying"));
    assert_eq!(stages.last(), Some(&"done"));
    let last = lines.last().unwrap();
    assert!(last["action"].as_str().unwrap().starts_with("local-"), "{last}");
    assert_eq!(
        *last,
        json!({"event": "fleet", "type": "result", "result": "success", "action": last["action"],
            "version": "1.0.1", "changes": ["1"]})
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

#[test]
fn a_crash_while_verifying_verifies_again_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let b = make_bundle(dir.path(), &[("hello_1.snap", SNAP)], &key());
    let device = Device::new();
    // What a crash between extracting and saving the plan leaves: the journal says verifying,
    // and an extraction directory (here with a file the bundle does not have) is there.
    let journal = json!({"action": "9", "bundle": b, "stage": "verifying"});
    std::fs::write(device.state.path().join("fleet.json"), journal.to_string()).unwrap();
    let stale = device.state.path().join("fleet-bundle");
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("evil.snap"), b"not from the bundle").unwrap();
    let o = device.run(&["bundle", "apply", "--resume", "--trusted", &public(&key())]);
    assert!(o.status.success(), "{}", text(&o));
    let files = device.fake.state().installed_files.clone();
    assert_eq!(files, [("hello_1.snap".to_string(), true, SNAP.to_vec())]);
    let journal = device.journal();
    assert_eq!((journal["action"].as_str(), journal["stage"].as_str()), (Some("9"), Some("done")));
    assert!(!stale.exists());
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name))
        .unwrap()
}

/// A registered, seeded device running `current.model` (as tests/remodel.rs has it).
fn registered() -> Device {
    let device = Device::new();
    {
        let mut state = device.fake.state();
        state.model = Some(String::from_utf8(fixture("remodel/current.model")).unwrap());
        state.serial = Some("type: serial\nauthority-id: pocketses-brand\nbrand-id: pocketses-brand\nmodel: pocketses-pc\nserial: 42\ndevice-key-sha3-384: x\ntimestamp: 2024-01-05T09:00:00Z\nsign-key-sha3-384: y\n\nAAAA\n".to_string());
    }
    device
}

#[test]
fn a_model_remodels_after_the_preflight_and_is_recorded_as_a_remodel() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture("remodel/rev2.model");
    let b = make_bundle(dir.path(), &[("rev2.model", &model)], &key());
    let device = registered();
    let o = device.run(&["bundle", "apply", "--trusted", &public(&key()), b.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("remodelling to the model in \"rev2.model\""), "{out}");
    assert_eq!(device.posts(), ["POST /v2/model"]);
    let post = device.post("/v2/model");
    assert_eq!(post.json()["new-model"].as_str().unwrap().as_bytes(), model);
    assert_eq!(post.json()["offline"], false);
    let record: Value = serde_json::from_str(
        &std::fs::read_to_string(device.state.path().join("remodel.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["change"], "1");
    assert_eq!(record["target"], "pocketses-brand/pocketses-pc rev 2");
    assert_eq!(device.journal()["steps"][0]["step"]["do"], "remodel");
    assert_eq!(device.journal()["stage"], "done");
}

/// A snap built with mksquashfs (squashfs-tools, from .ci/apt-packages): `name`, of type app,
/// with `payload` bytes of data in it.
fn squashfs_snap(dir: &Path, name: &str, payload: usize) -> Vec<u8> {
    let root = dir.join(format!("{name}-root"));
    std::fs::create_dir_all(root.join("meta")).unwrap();
    std::fs::write(root.join("meta/snap.yaml"), format!("name: {name}\nversion: '1'\n")).unwrap();
    // Not compressible: the snap is about `payload` bytes.
    let mut data = vec![0u8; payload];
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    for b in &mut data {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x.to_le_bytes()[0];
    }
    std::fs::write(root.join("payload"), data).unwrap();
    let snap = dir.join(format!("{name}.snap"));
    let status = Command::new("mksquashfs")
        .arg(&root)
        .arg(&snap)
        .args(["-noappend", "-all-root", "-no-progress", "-quiet"])
        .status()
        .unwrap_or_else(|err| {
            panic!("cannot run mksquashfs ({err}): install squashfs-tools (in .ci/apt-packages)")
        });
    assert!(status.success(), "mksquashfs failed");
    std::fs::read(&snap).unwrap()
}

#[test]
fn a_model_with_a_snap_is_an_offline_remodel_that_carries_the_snap() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture("remodel/rev2.model");
    // Bigger than a chunk of the streamed body (64 KiB) many times over.
    let snap = squashfs_snap(dir.path(), "pocketses", 4 << 20);
    let b = make_bundle(dir.path(), &[("rev2.model", &model), ("pocketses_2.snap", &snap)], &key());
    let device = registered();
    let o = device.run(&["bundle", "apply", "--trusted", &public(&key()), b.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("offline with"), "{out}");
    // The snap goes with the remodel, not on its own.
    assert_eq!(device.posts(), ["POST /v2/model"]);
    let post = device.post("/v2/model");
    let content_type = post.content_type.clone().unwrap();
    let boundary = content_type.strip_prefix("multipart/form-data; boundary=").unwrap();
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"snap\"; filename=\"pocketses_2.snap\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    );
    let body = &post.body;
    let at = body.windows(head.len()).position(|w| w == head.as_bytes()).unwrap() + head.len();
    assert_eq!(&body[at..at + snap.len()], snap.as_slice(), "the snap's bytes, whole and in order");
    assert_eq!(&body[at + snap.len()..], format!("\r\n--{boundary}--\r\n").as_bytes());
    assert!(String::from_utf8_lossy(&body[..at]).contains("name=\"new-model\""));
    assert_eq!(device.journal()["stage"], "done");
}

#[test]
fn a_remodel_snapd_would_refuse_is_not_posted() {
    let dir = tempfile::tempdir().unwrap();
    let b = make_bundle(dir.path(), &[("arm64.model", &fixture("remodel/arm64.model"))], &key());
    let device = registered();
    let o = device.run(&["bundle", "apply", "--trusted", &public(&key()), b.to_str().unwrap()]);
    assert!(!o.status.success());
    let all = text(&o);
    assert!(
        all.contains("cannot apply bundle: snapd would refuse the remodel: cannot remodel device: cannot remodel from grade signed to grade dangerous"),
        "{all}"
    );
    assert!(
        all.contains("cannot remodel device: cannot remodel from grade signed to grade dangerous"),
        "{all}"
    );
    assert!(device.posts().is_empty(), "{:?}", device.posts());
}

#[test]
fn a_change_waiting_for_a_reboot_is_the_rebooting_stage() {
    let dir = tempfile::tempdir().unwrap();
    let b = make_bundle(dir.path(), &[("pc-kernel_2.snap", SNAP)], &key());
    let device = Device::new();
    let task = |status: &str| json!([{"id": "4", "kind": "link-snap", "summary": "Make snap \"pc-kernel\" (unset) available to the system", "status": status}]);
    device.fake.state().install_script = Some(vec![
        Step::State(json!({"status": "Doing", "ready": false, "tasks": task("Doing")})),
        Step::State(json!({"status": "Wait", "ready": false, "tasks": task("Wait")})),
        Step::State(json!({"status": "Done", "ready": true, "tasks": task("Done")})),
    ]);
    let o = device.run(&["bundle", "apply", "--trusted", &public(&key()), b.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("rebooting  Wait    Make snap \"pc-kernel\" (unset) available"), "{out}");
    assert!(out.contains("done       version 1.0.1 applied"), "{out}");
    assert_eq!(device.journal()["stage"], "done");
}

#[test]
fn bundle_verify_reads_the_configured_keys_as_apply_does() {
    let dir = tempfile::tempdir().unwrap();
    let b = make_bundle(dir.path(), &[("hello_1.snap", SNAP)], &key());
    let b = b.to_str().unwrap();
    let device = Device::new();
    let o = device.run(&["bundle", "verify", b]);
    assert!(!o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "error: cannot read bundle: no trusted keys (set fleet.trusted-keys or pass --trusted)\n"
    );
    device.fake.set_conf(json!({"fleet": {"trusted-keys": public(&key())}}));
    let o = device.run(&["bundle", "verify", b]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("bundle {b} verified: version 1.0.1, 1 files, signed by {}\n", public(&key()))
    );
    // Another key configured: the same refusal as `bundle apply` gives.
    let other = public(&SigningKey::from_bytes(&[6; 32]));
    device.fake.set_conf(json!({"fleet": {"trusted-keys": other}}));
    let o = device.run(&["bundle", "verify", b]);
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        format!("error: cannot read bundle: signed by untrusted key {}\n", public(&key()))
    );
    // --trusted still wins over the configuration.
    let o = device.run(&["bundle", "verify", "--trusted", &public(&key()), b]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(device.posts().is_empty(), "verify applies nothing");
}

#[test]
fn without_trusted_keys_nothing_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let b = make_bundle(dir.path(), &[("hello_1.snap", SNAP)], &key());
    let device = Device::new();
    let o = device.run(&["bundle", "apply", b.to_str().unwrap()]);
    assert!(!o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "error: cannot apply bundle: no trusted keys (set fleet.trusted-keys or pass --trusted)\n"
    );
    assert!(device.posts().is_empty());
}

/// The library call the fleet client makes: progress by stage, and the same action id again
/// returns the recorded result instead of applying twice.
#[tokio::test]
async fn the_api_reports_progress_and_applies_an_action_once() {
    use pocketses::fleet::apply::{self, Progress};
    use pocketses::fleet::journal::{self, Stage};
    let dir = tempfile::tempdir().unwrap();
    let b = make_bundle(dir.path(), &[("hello_1.snap", SNAP)], &key());
    let device = Device::new();
    let client = pocketses::snapd::Client::new(std::sync::Arc::new(
        pocketses::snapd::socket::UnixTransport::new(device.fake.snapd_socket()),
    ));
    let journal_path = device.state.path().join(journal::FILE);
    let trusted = [key().verifying_key()];
    let mut seen: Vec<Progress> = Vec::new();
    let mut progress = |p: Progress| seen.push(p);
    let outcome =
        apply::apply(&client, &b, &trusted, &journal_path, "31", &mut progress).await.unwrap();
    assert_eq!(
        outcome,
        apply::Outcome { action: "31".into(), version: "1.0.1".into(), changes: vec!["1".into()] }
    );
    let stages: Vec<Stage> = seen.iter().map(|p| p.stage).collect();
    assert_eq!(stages.first(), Some(&Stage::Verifying));
    assert!(stages.contains(&Stage::Applying));
    assert_eq!(stages.last(), Some(&Stage::Done));
    let last = seen.last().unwrap();
    assert_eq!((last.step, last.steps), (1, 1));
    assert!(
        seen.iter().flat_map(|p| &p.details).any(|d| d.contains("Mount snap \"hello\" (unset)")),
        "{seen:?}"
    );
    // The server sends the action again (its feedback was lost): the same result, nothing redone.
    let mut quiet = |_: Progress| {};
    let again = apply::apply(&client, &b, &trusted, &journal_path, "31", &mut quiet).await.unwrap();
    assert_eq!(again, outcome);
    assert_eq!(device.posts(), ["POST /v2/snaps"]);
    // Until it is acknowledged, a restarted daemon gets the result again; then nothing.
    let resumed = apply::resume(&client, &trusted, &journal_path, &mut quiet).await.unwrap();
    assert_eq!(resumed.map(|r| r.result), Some(Ok(outcome)));
    journal::acknowledge(&journal_path, "31").unwrap();
    assert_eq!(apply::resume(&client, &trusted, &journal_path, &mut quiet).await.unwrap(), None);
}
