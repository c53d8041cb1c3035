use super::*;
use crate::fleet::cmd;
use ed25519_dalek::SigningKey;

fn snap(name: &str, sha3: &str) -> FileFacts {
    FileFacts { name: name.into(), kind: Some(Kind::Snap), sha3_384: sha3.into(), vouches: vec![] }
}

fn assertions(name: &str, vouches: &[&str]) -> FileFacts {
    FileFacts {
        name: name.into(),
        kind: Some(Kind::Assertion),
        sha3_384: String::new(),
        vouches: vouches.iter().map(|v| v.to_string()).collect(),
    }
}

fn model(name: &str) -> FileFacts {
    FileFacts { name: name.into(), kind: Some(Kind::Model), ..FileFacts::default() }
}

fn snap_step(file: &str, dangerous: bool) -> Step {
    Step::Snap { file: file.into(), dangerous }
}

#[test]
fn assertions_first_then_snaps_in_bundle_order() {
    let files = [snap("b.snap", "B"), assertions("a.assert", &["B"]), snap("c.snap", "C")];
    assert_eq!(
        plan(&files).unwrap(),
        [
            Step::Assertions { file: "a.assert".into() },
            snap_step("b.snap", false),
            snap_step("c.snap", true),
        ]
    );
}

#[test]
fn dangerous_only_without_a_matching_snap_revision() {
    // No assertions at all.
    assert_eq!(plan(&[snap("a.snap", "A")]).unwrap(), [snap_step("a.snap", true)]);
    // Assertions that vouch for another file.
    assert_eq!(
        plan(&[assertions("x.assert", &["Z"]), snap("a.snap", "A")]).unwrap()[1],
        snap_step("a.snap", true)
    );
    // A vouch in any assertion file counts.
    let files = [assertions("x.assert", &[]), assertions("y.assert", &["A"]), snap("a.snap", "A")];
    assert_eq!(plan(&files).unwrap()[2], snap_step("a.snap", false));
    // An empty digest never matches an empty vouch list.
    assert_eq!(
        plan(&[assertions("x.assert", &[]), snap("a.snap", "")]).unwrap()[1],
        snap_step("a.snap", true)
    );
}

#[test]
fn a_model_takes_the_snaps_along() {
    let files = [assertions("a.assert", &["A"]), snap("pc_2.snap", "A"), model("new.model")];
    assert_eq!(
        plan(&files).unwrap(),
        [
            Step::Assertions { file: "a.assert".into() },
            Step::Remodel {
                file: "new.model".into(),
                snaps: vec!["pc_2.snap".into()],
                assertions: vec!["a.assert".into()],
            },
        ]
    );
    // Without snaps the remodel is online: the assertions were already added.
    assert_eq!(
        plan(&[assertions("a.assert", &[]), model("new.model")]).unwrap()[1],
        Step::Remodel { file: "new.model".into(), snaps: vec![], assertions: vec![] }
    );
}

#[test]
fn nothing_to_apply_is_refused() {
    assert_eq!(plan(&[]).unwrap_err(), "the bundle carries nothing to apply");
}

#[test]
fn steps_read_as_sentences() {
    for (step, want) in [
        (Step::Assertions { file: "a.assert".into() }, "adding the assertions in \"a.assert\""),
        (snap_step("a.snap", false), "installing \"a.snap\""),
        (
            snap_step("a.snap", true),
            "installing \"a.snap\" as dangerous (no snap-revision in the bundle vouches for it)",
        ),
        (
            Step::Remodel { file: "m".into(), snaps: vec![], assertions: vec![] },
            "remodelling to the model in \"m\"",
        ),
        (
            Step::Remodel { file: "m".into(), snaps: vec!["k.snap".into()], assertions: vec![] },
            "remodelling to the model in \"m\", offline with \"k.snap\"",
        ),
    ] {
        assert_eq!(describe(&step), want);
    }
}

#[test]
fn steps_in_the_journal() {
    let text = serde_json::to_string(&snap_step("a.snap", true)).unwrap();
    assert_eq!(text, r#"{"do":"snap","file":"a.snap","dangerous":true}"#);
    let back: Step = serde_json::from_str(r#"{"do":"remodel","file":"m"}"#).unwrap();
    assert_eq!(back, Step::Remodel { file: "m".into(), snaps: vec![], assertions: vec![] });
}

#[test]
fn sha3_is_snapds_encoding() {
    // sha3-384 of the empty string, as snapd prints it (base64url, no padding).
    let digest = sha3::Sha3_384::digest(b"");
    assert_eq!(
        encode_sha3_384(&digest),
        "DGOnW4ReT30BEH2FLkwkhcUaUKqqlPxhmV5xu-6YOirDcTgxJkrbR_tr0eBY1fAE"
    );
}

/// A signed assertion of `kind` with these headers (signed by the test brand key).
fn signed(kind: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    use crate::assertion::Value;
    use rsa::pkcs1::DecodeRsaPrivateKey as _;
    let key = rsa::RsaPrivateKey::from_pkcs1_pem(include_str!(
        "../../../tests/fixtures/assertions/keys/brand.pem"
    ))
    .unwrap();
    let mut all = crate::assertion::Headers::default();
    all.insert("type", Value::from(kind));
    all.insert("authority-id", Value::from("brand"));
    all.insert("timestamp", Value::from("2024-01-01T00:00:00Z"));
    for (name, value) in headers {
        all.insert(name, Value::from(*value));
    }
    crate::assertion::encode(&crate::assertion::sign::sign(&all, "", &key, 0).unwrap())
}

#[test]
fn vouches_reads_snap_revisions_only() {
    let mut text = signed(
        "snap-revision",
        &[
            ("snap-sha3-384", "DGOnW4ReT30BEH2FLkwkhcUaUKqqlPxhmV5xu-6YOirDcTgxJkrbR_tr0eBY1fAE"),
            ("snap-id", "x"),
            ("snap-size", "4"),
            ("snap-revision", "1"),
            ("developer-id", "brand"),
        ],
    );
    text.extend_from_slice(b"\n");
    text.extend(signed(
        "snap-declaration",
        &[("series", "16"), ("snap-id", "x"), ("snap-name", "y"), ("publisher-id", "brand")],
    ));
    assert_eq!(
        vouches(&text),
        ["DGOnW4ReT30BEH2FLkwkhcUaUKqqlPxhmV5xu-6YOirDcTgxJkrbR_tr0eBY1fAE"]
    );
    assert!(vouches(b"not an assertion").is_empty());
}

fn change(value: serde_json::Value) -> Change {
    serde_json::from_value(value).unwrap()
}

#[test]
fn failures_keep_snapds_words() {
    let failed = change(serde_json::json!({
        "id": "5", "kind": "install-snap", "summary": "Install \"hello\" snap from file \"hello_1.snap\"",
        "status": "Error", "ready": true,
        "err": "cannot perform the following tasks:\n- Mount snap \"hello\" (unset) (snap \"hello\" assumes unsupported features: nope)",
        "tasks": [
            {"id": "10", "kind": "mount-snap", "summary": "Mount snap \"hello\" (unset)", "status": "Error",
             "log": ["2024-01-01T00:00:00Z ERROR snap \"hello\" assumes unsupported features: nope"]},
            {"id": "11", "kind": "link-snap", "summary": "Make snap available", "status": "Hold"}
        ]
    }));
    let err = change_failure(&failed);
    assert_eq!(err.kind, ErrorKind::Snapd);
    assert_eq!(
        err.to_string(),
        "cannot apply bundle: change 5 (Install \"hello\" snap from file \"hello_1.snap\") ended in Error: cannot perform the following tasks:\n- Mount snap \"hello\" (unset) (snap \"hello\" assumes unsupported features: nope)"
    );
    assert_eq!(
        err.details,
        [
            "cannot perform the following tasks:",
            "- Mount snap \"hello\" (unset) (snap \"hello\" assumes unsupported features: nope)",
            "failed task 10 (mount-snap): Mount snap \"hello\" (unset)",
            "  2024-01-01T00:00:00Z ERROR snap \"hello\" assumes unsupported features: nope",
        ]
    );
    let undone =
        change(serde_json::json!({"id": "6", "summary": "S", "status": "Undone", "ready": true}));
    assert_eq!(change_failure(&undone).message, "change 6 (S) ended in Undone");
}

#[test]
fn reboots_are_announced_by_maintenance_or_waiting_tasks() {
    let restart = RemodelEvent::Maintenance {
        change: "1".into(),
        kind: "system-restart".into(),
        message: "system is restarting".into(),
    };
    let daemon = RemodelEvent::Maintenance {
        change: "1".into(),
        kind: "daemon-restart".into(),
        message: "daemon is restarting".into(),
    };
    let task = |status: &str| RemodelEvent::Task {
        change: "1".into(),
        id: "2".into(),
        kind: "link-snap".into(),
        summary: "Make snap \"pc-kernel\" available".into(),
        status: status.into(),
        from: None,
    };
    assert!(announces_reboot(&restart));
    assert!(!announces_reboot(&daemon));
    assert!(announces_reboot(&task("Wait")));
    assert!(!announces_reboot(&task("Doing")));
}

fn bundle_with(dir: &Path, files: &[(&str, &[u8])], key: &SigningKey) -> PathBuf {
    let mut paths = Vec::new();
    for (name, data) in files {
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        paths.push(p);
    }
    let out = dir.join("b.swu");
    cmd::create("1.2.3", &[], &paths, &out).unwrap();
    cmd::sign(&out, key).unwrap();
    out
}

#[test]
fn extract_hashes_snaps_and_refuses_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::from_bytes(&[7; 32]);
    let b = bundle_with(
        dir.path(),
        &[("a.assert", b"type: snap-declaration\n"), ("hello_1.snap", b"hsqs")],
        &key,
    );
    let dest = dir.path().join("out");
    let (desc, digests) = extract(&b, &[key.verifying_key()], &dest).unwrap();
    assert_eq!(desc.version, "1.2.3");
    assert_eq!(digests.len(), 1);
    assert_eq!(digests["hello_1.snap"], encode_sha3_384(&sha3::Sha3_384::digest(b"hsqs")));
    assert_eq!(std::fs::read(dest.join("hello_1.snap")).unwrap(), b"hsqs");
    // Untrusted: refused before any file is read; the old extraction stays as it was.
    let other = SigningKey::from_bytes(&[8; 32]);
    let dest2 = dir.path().join("out2");
    let e = extract(&b, &[other.verifying_key()], &dest2).unwrap_err();
    assert_eq!(
        e,
        format!("signed by untrusted key {}", bundle::encode_public_key(&key.verifying_key()))
    );
    assert!(!dest2.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn apply_and_resume_can_run_on_a_spawned_task() {
    fn send<T: Send>(_: &T) {}
    let client = crate::snapd::Client::from_env();
    let mut progress = |_: Progress| {};
    let applying =
        apply(&client, Path::new("b.swu"), &[], Path::new("fleet.json"), "1", &mut progress);
    send(&applying);
    drop(applying);
    let resuming = resume(&client, &[], Path::new("fleet.json"), &mut progress);
    send(&resuming);
}
