//! `pocketses gadget check` and `gadget show` run as a user runs them, on gadget.yaml files and
//! on gadget .snap files built with mksquashfs (squashfs-tools, from .ci/apt-packages).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gadget").join(name)
}

fn pocketses(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_pocketses")).args(args).output().expect("run pocketses");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check(old: &Path, new: &Path, json: bool) -> (i32, String, String) {
    let mut args = vec!["gadget".as_ref(), "check".as_ref(), old.as_os_str(), new.as_os_str()];
    if json {
        args.push("--json".as_ref());
    }
    pocketses(&args)
}

/// Builds a gadget snap holding `gadget_yaml` as meta/gadget.yaml, xz-compressed like snapcraft's.
fn build_snap(dir: &Path, name: &str, gadget_yaml: &Path) -> PathBuf {
    let root = dir.join(format!("{name}-root"));
    std::fs::create_dir_all(root.join("meta")).expect("mkdir");
    std::fs::copy(gadget_yaml, root.join("meta/gadget.yaml")).expect("copy");
    std::fs::write(root.join("meta/snap.yaml"), "name: pc\ntype: gadget\nversion: '22'\n")
        .expect("snap.yaml");
    let snap = dir.join(format!("{name}.snap"));
    let status = Command::new("mksquashfs")
        .arg(&root)
        .arg(&snap)
        .args(["-noappend", "-comp", "xz", "-all-root", "-no-progress", "-quiet"])
        .status()
        .unwrap_or_else(|err| {
            panic!("cannot run mksquashfs ({err}): install squashfs-tools (listed in .ci/apt-packages, installed by .ci/install)")
        });
    assert!(status.success(), "mksquashfs failed");
    snap
}

#[test]
fn seed_pair_is_refused_with_snapds_error_and_the_fix() {
    let (code, out, err) = check(&fixture("pc-20.yaml"), &fixture("pc-22-size-only.yaml"), false);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("cannot remodel to an incompatible gadget: incompatible layout change: incompatible structure #4 (\"ubuntu-save\") change: new valid structure size range [33554432, 33554432] is not compatible with current ([16777216, 16777216])"), "{out}");
    assert!(out.contains("fix: give \"ubuntu-save\" `min-size: 16M` and `size: 32M`"), "{out}");
}

#[test]
fn compatible_pair_exits_zero() {
    let (code, out, err) = check(&fixture("pc-20.yaml"), &fixture("pc-22.yaml"), false);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    assert!(out.starts_with("compatible: "), "{out}");
}

#[test]
fn structure_count_and_role_changes_as_json() {
    for (new, want) in [
        (
            "pc-22-extra-structure.yaml",
            "incompatible change in the number of structures from 6 to 7",
        ),
        (
            "pc-22-role-change.yaml",
            "cannot change structure role from \\\"system-save\\\" to \\\"system-data\\\"",
        ),
    ] {
        let (code, out, _) = check(&fixture("pc-22.yaml"), &fixture(new), true);
        assert_eq!(code, 1, "{out}");
        let value: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
        assert_eq!(value["compatible"], false);
        assert!(out.contains(want), "{new}: {out}");
    }
}

#[test]
fn gadget_snaps_are_read_from_squashfs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = build_snap(dir.path(), "pc_20", &fixture("pc-20.yaml"));
    let bad = build_snap(dir.path(), "pc_146", &fixture("pc-22-size-only.yaml"));
    let good = build_snap(dir.path(), "pc_147", &fixture("pc-22.yaml"));
    let (code, out, _) = check(&old, &bad, false);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("incompatible structure #4 (\"ubuntu-save\")"), "{out}");
    let (code, out, err) = check(&old, &good, false);
    assert_eq!(code, 0, "{out}{err}");
    // A .snap against a plain gadget.yaml works too.
    let (code, _, _) = check(&fixture("pc-20.yaml"), &good, false);
    assert_eq!(code, 0);
}

#[test]
fn unreadable_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty_snap = dir.path().join("empty-root");
    std::fs::create_dir_all(&empty_snap).expect("mkdir");
    std::fs::write(empty_snap.join("README"), "no gadget here\n").expect("write");
    let snap = dir.path().join("nogadget.snap");
    let status = Command::new("mksquashfs")
        .arg(&empty_snap)
        .arg(&snap)
        .args(["-noappend", "-no-progress", "-quiet"])
        .status()
        .expect("mksquashfs (squashfs-tools, from .ci/apt-packages)");
    assert!(status.success());
    let (code, _, err) = check(&snap, &fixture("pc-22.yaml"), false);
    assert_eq!(code, 1);
    assert!(err.contains("cannot find meta/gadget.yaml in"), "{err}");

    let (code, _, err) = check(&dir.path().join("missing.yaml"), &fixture("pc-22.yaml"), false);
    assert_eq!(code, 1);
    assert!(err.contains("cannot open"), "{err}");

    let garbage = dir.path().join("garbage.yaml");
    std::fs::write(&garbage, "volumes: [\n").expect("write");
    let (code, _, err) = check(&garbage, &fixture("pc-22.yaml"), false);
    assert_eq!(code, 1);
    assert!(err.contains("cannot parse gadget metadata"), "{err}");
}

#[test]
fn show_prints_the_layout() {
    let (code, out, _) =
        pocketses(&["gadget".as_ref(), "show".as_ref(), fixture("pc-22.yaml").as_os_str()]);
    assert_eq!(code, 0);
    assert!(out.contains("ubuntu-save    system-save    1952M"), "{out}");
    assert!(out.contains("16M..32M"), "{out}");
}

/// Numbers at or above 2^63 are refused as snapd's signed 64-bit parse refuses them; big but valid
/// numbers that run past the end of any disk are an overlap, not structures at the same offset.
#[test]
fn numbers_snapd_cannot_parse_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pc22 = std::fs::read_to_string(fixture("pc-22.yaml")).expect("fixture");
    let huge = "size: 9223372036854775807";
    for (edits, want) in [
        (
            &[("size: 440", "size: 18446744073709551615")][..],
            "cannot parse gadget metadata: cannot parse size \"18446744073709551615\": \"18446744073709551615\" is not a number",
        ),
        (
            &[("size: 440", "size: 440\n        offset-write: mbr+18446744073709551615")][..],
            "cannot parse gadget metadata: cannot parse relative offset \"mbr+18446744073709551615\": cannot parse offset \"18446744073709551615\": \"18446744073709551615\" is not a number",
        ),
        (
            &[("size: 1200M", huge), ("size: 750M", huge)][..],
            "structure \"ubuntu-save\" overlaps with the preceding structure \"ubuntu-boot\"",
        ),
    ] {
        let mut text = pc22.clone();
        for (from, to) in edits {
            assert!(text.contains(from), "{from}");
            text = text.replacen(from, to, 1);
        }
        let path = dir.path().join("new.yaml");
        std::fs::write(&path, &text).expect("write");
        let (code, out, err) = check(&fixture("pc-22.yaml"), &path, false);
        assert_eq!(code, 1, "{edits:?}: {out}{err}");
        assert!(err.contains(want), "{edits:?}: {err}");
        assert!(!out.contains("compatible:"), "{edits:?}: {out}");
    }
}

#[test]
fn show_and_check_print_one_kebab_case_object_with_json() {
    let (code, out, err) = pocketses(&[
        "gadget".as_ref(),
        "show".as_ref(),
        "--json".as_ref(),
        fixture("pc-22.yaml").as_os_str(),
    ]);
    assert_eq!(code, 0, "{err}");
    let show = support::assert_cli_json_shape(&out);
    assert_eq!(show["volumes"][0]["structures"][4]["name"], "ubuntu-save");
    assert_eq!(show["volumes"][0]["structures"][4]["min-size"], 16u64 << 20);
    let (code, out, _) = check(&fixture("pc-20.yaml"), &fixture("pc-22-size-only.yaml"), true);
    assert_eq!(code, 1);
    let verdict = support::assert_cli_json_shape(&out);
    assert_eq!(verdict["compatible"], false);
    assert!(verdict["error"]
        .as_str()
        .unwrap_or("")
        .starts_with("cannot remodel to an incompatible gadget"));
    let (code, out, _) = check(&fixture("pc-20.yaml"), &fixture("pc-22.yaml"), true);
    assert_eq!(code, 0);
    assert_eq!(support::assert_cli_json_shape(&out)["problems"], serde_json::json!([]));
}

/// A gadget.yaml nested past the reader's limit is refused in words, not Rust debug text.
#[test]
fn too_deep_yaml_is_said_in_words() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("deep.yaml");
    std::fs::write(&path, format!("a: {}{}\n", "[".repeat(100), "]".repeat(100))).expect("write");
    let (code, _, err) = pocketses(&["gadget".as_ref(), "show".as_ref(), path.as_os_str()]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot parse gadget metadata: line 1 column"), "{err}");
    assert!(err.contains("nested more than 64 levels deep"), "{err}");
    assert!(!err.contains("Depth {") && err.lines().count() == 1, "{err}");
}
