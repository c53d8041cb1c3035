//! `pocketses checks` as a user runs it: the real binary on this host.
//!
//! Thresholds are forced with `--set` so each test knows the state whatever the host's figures,
//! and `run filesystem` keeps the busy build machine's load out of the verdict.

mod support;

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(support::bin()).args(args).output().expect("run pocketses");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const NEVER: &str = "checks.filesystem.crit=~:";

#[test]
fn a_forced_warning_exits_1_with_the_sentence() {
    let (code, out, err) = run(&[
        "checks",
        "run",
        "filesystem",
        "--set",
        "checks.filesystem.warn=0:0",
        "--set",
        NEVER,
    ]);
    assert_eq!(code, Some(1), "{out}{err}");
    let root = out.lines().find(|l| l.starts_with("filesystem:/ ")).expect("a row for /");
    assert!(root.contains(" WARN "), "{root}");
    assert!(root.contains("/ is ") && root.ends_with("% full (warn at 0 %)"), "{root}");
    assert!(out.starts_with("CHECK"), "{out}");
}

#[test]
fn a_forced_critical_exits_2_and_ok_exits_0() {
    let (code, out, err) =
        run(&["checks", "run", "filesystem", "--set", "checks.filesystem.crit=0:0"]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(out.contains("(crit at 0 %)"), "{out}");
    let (code, out, err) =
        run(&["checks", "run", "filesystem", "--set", "checks.filesystem.warn=~:", "--set", NEVER]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(" OK "), "{out}");
}

#[test]
fn json_is_one_kebab_case_document() {
    let (code, out, err) = run(&[
        "checks",
        "run",
        "filesystem:/",
        "--json",
        "--set",
        "checks.filesystem.warn=0:0",
        "--set",
        NEVER,
    ]);
    assert_eq!(code, Some(1), "{out}{err}");
    let doc = support::assert_cli_json_shape(&out);
    assert_eq!(doc["state"], "WARN");
    assert_eq!(doc["exit-code"], 1);
    let checks = doc["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 1, "{doc}");
    assert_eq!(checks[0]["check"], "filesystem:/");
    assert_eq!(checks[0]["threshold"], "0");
    assert!(checks[0]["value"].as_f64().is_some_and(|v| (0.0..=100.0).contains(&v)));
}

#[test]
fn list_shows_defaults_and_settings() {
    let (code, out, err) = run(&[
        "checks",
        "list",
        "--set",
        "checks.load.warn=1.5",
        "--set",
        "checks.swap.enabled=false",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let load = out.lines().find(|l| l.starts_with("load ")).expect("load row");
    assert!(load.split_whitespace().take(4).eq(["load", "yes", "1.5", "4"]), "{load}");
    let swap = out.lines().find(|l| l.starts_with("swap ")).expect("swap row");
    assert!(swap.split_whitespace().take(2).eq(["swap", "no"]), "{swap}");
    let (code, out, _) = run(&["checks", "list", "--json"]);
    assert_eq!(code, Some(0));
    let doc = support::assert_cli_json_shape(&out);
    let names: Vec<&str> = doc["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "filesystem",
            "inodes",
            "memory",
            "swap",
            "load",
            "temperature",
            "snapd",
            "snaps",
            "spool",
            "push",
            "fleet",
            "fleet-action"
        ]
    );
    assert_eq!(doc["checks"][0]["warn"], "85");
    assert_eq!(doc["checks"][0]["failures-before-critical"], 3);
}

#[test]
fn problems_exit_3_with_one_clear_line() {
    for (args, want) in [
        (
            vec!["checks", "run", "--set", "checks.filesystem.warn=20:10"],
            "error: cannot set \"checks.filesystem.warn\": must be a Nagios range such as 85, 10:, ~:10, 10:20 or @10:20, not \"20:10\"\n",
        ),
        (
            vec!["checks", "list", "--set", "checks.disk.warn=80"],
            "error: cannot set \"checks.disk\": must name a check (filesystem, inodes, memory, swap, load, temperature, snapd, snaps, spool, push, fleet, fleet-action), not \"disk\"\n",
        ),
        (
            vec!["checks", "run", "cpu"],
            "error: cannot run checks: no check is called \"cpu\" (see `pocketses checks list`)\n",
        ),
    ] {
        let (code, out, err) = run(&args);
        assert_eq!(code, Some(3), "{args:?}");
        assert_eq!(out, "", "{args:?}");
        assert_eq!(err, want, "{args:?}");
    }
}
