//! `pocketses key create --type ed25519`, `key export` and `bundle create|sign|verify|show`,
//! through the real binary.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod support;

use std::path::Path;
use std::process::{Command, Output};

/// The operator's machine: keys in `keys`, no snapd (a socket path where nothing listens).
fn run(keys: &Path, args: &[&str]) -> Output {
    Command::new(support::bin())
        .args(args)
        .env("POCKETSES_KEYS_DIR", keys)
        .env("POCKETSES_SNAPD_SOCKET", keys.with_file_name("no-snapd.socket"))
        .env_remove("SNAP_USER_DATA")
        .env_remove("SNAP")
        .env_remove("SNAP_COOKIE")
        .output()
        .unwrap()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn fails(o: Output) -> String {
    assert!(!o.status.success());
    assert!(o.stdout.is_empty(), "{}", String::from_utf8_lossy(&o.stdout));
    String::from_utf8(o.stderr).unwrap()
}

#[test]
fn operator_cycle_create_sign_verify_show() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let d = dir.path();
    let created = ok(run(&keys, &["key", "create", "--type", "ed25519", "fleet"]));
    let export = ok(run(&keys, &["key", "export", "fleet"]));
    let public = export.trim();
    assert_eq!(public.len(), 44, "{export}");
    assert_eq!(created, format!("fleet {public}\n"));
    ok(run(&keys, &["key", "create", "--type", "ed25519", "other"]));
    let other = ok(run(&keys, &["key", "export", "other"])).trim().to_owned();
    let list = ok(run(&keys, &["key", "list"]));
    assert!(list.contains(&format!("fleet                ed25519 {public}")), "{list}");
    let json = support::assert_cli_json_shape(&ok(run(&keys, &["key", "list", "--json"])));
    assert_eq!(json["keys"][0]["type"], "ed25519");
    assert_eq!(json["keys"][0]["public-key"], public);

    std::fs::write(d.join("hello_1.snap"), b"hsqs a snap").unwrap();
    std::fs::write(d.join("hello.assert"), b"type: snap-revision\n").unwrap();
    let swu = d.join("out.swu");
    let swu_s = swu.to_str().unwrap();
    let snap = d.join("hello_1.snap");
    let decl = d.join("hello.assert");
    ok(run(
        &keys,
        &[
            "bundle",
            "create",
            "--version",
            "1.0.0",
            "--hardware",
            "pocketses-pc",
            decl.to_str().unwrap(),
            snap.to_str().unwrap(),
            "-o",
            swu_s,
        ],
    ));
    assert!(std::fs::read(&swu).unwrap().starts_with(b"070702"));
    let e = fails(run(&keys, &["bundle", "verify", "--trusted", public, swu_s]));
    assert_eq!(
        e,
        "error: cannot read bundle: bundle is not signed (no sw-description.sig after sw-description)\n"
    );
    ok(run(&keys, &["bundle", "sign", "--key", "fleet", swu_s]));
    let verified = ok(run(&keys, &["bundle", "verify", "--trusted", public, swu_s]));
    assert_eq!(
        verified,
        format!("bundle {swu_s} verified: version 1.0.0, 2 files, signed by {public}\n")
    );
    let e = fails(run(&keys, &["bundle", "verify", "--trusted", &other, swu_s]));
    assert_eq!(e, format!("error: cannot read bundle: signed by untrusted key {public}\n"));
    // Without --trusted the keys are fleet.trusted-keys, which needs snapd (tests/fleet_apply.rs
    // has the device side); off a device the refusal says so.
    let e = fails(run(&keys, &["bundle", "verify", swu_s]));
    assert!(
        e.starts_with(
            "error: cannot read fleet.trusted-keys (or pass --trusted): snapd is not reachable at "
        ),
        "{e}"
    );

    let json = support::assert_cli_json_shape(&ok(run(
        &keys,
        &["bundle", "verify", "--json", "--trusted", public, swu_s],
    )));
    assert_eq!(json["verified"], true);
    assert_eq!(json["signed-by"], public);
    let show =
        support::assert_cli_json_shape(&ok(run(&keys, &["bundle", "show", "--json", swu_s])));
    assert_eq!(show["version"], "1.0.0");
    assert_eq!(show["verified"], false);
    assert_eq!(show["hardware"], serde_json::json!(["pocketses-pc"]));
    assert_eq!(show["files"][1]["filename"], "hello_1.snap");
    assert_eq!(show["files"][1]["type"], "snap");
    assert_eq!(show["files"][1]["size"], 11);
    let text = ok(run(&keys, &["bundle", "show", swu_s]));
    assert!(text.starts_with("version:   1.0.0\nhardware:  pocketses-pc\n"), "{text}");

    // An RSA key cannot sign bundles, an ed25519 key cannot sign assertions.
    let e = fails(run(&keys, &["bundle", "sign", "--key", "nope", swu_s]));
    assert!(e.starts_with("error: cannot find key \"nope\""), "{e}");
}

#[test]
fn tampered_bundle_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let d = dir.path();
    ok(run(&keys, &["key", "create", "--type", "ed25519", "fleet"]));
    let public = ok(run(&keys, &["key", "export", "fleet"])).trim().to_owned();
    std::fs::write(d.join("a.snap"), b"hsqs original").unwrap();
    let swu = d.join("b.swu");
    let swu_s = swu.to_str().unwrap();
    let a = d.join("a.snap");
    ok(run(&keys, &["bundle", "create", "--version", "2", a.to_str().unwrap(), "-o", swu_s]));
    ok(run(&keys, &["bundle", "sign", "--key", "fleet", swu_s]));
    let mut bytes = std::fs::read(&swu).unwrap();
    let at = bytes.windows(8).position(|w| w == b"original").unwrap();
    bytes[at..at + 8].copy_from_slice(b"ORIGINAL");
    std::fs::write(&swu, &bytes).unwrap();
    let e = fails(run(&keys, &["bundle", "verify", "--trusted", &public, swu_s]));
    assert_eq!(e, "error: cannot read bundle: entry \"a.snap\" does not match its cpio checksum\n");
}
