//! `pocketses metrics --format prometheus` checked by the real `promtool check metrics`.
//!
//! promtool comes from Debian's `prometheus` package, extracted (not installed) by
//! `.ci/install.d/metrics.sh` into /var/cache/pocketses-ci/prometheus; `$POCKETSES_PROMTOOL`
//! overrides the path. promtool 2.42 exits 1 on a parse error and 3 when it only has lint
//! remarks, and has no switch to turn linting off, so the tests look at the remarks themselves.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use pocketses::metrics::encode::prometheus::{self, Family, Kind};

const DEFAULT_PROMTOOL: &str = "/var/cache/pocketses-ci/prometheus/usr/bin/promtool";

/// The only remark node_exporter's own names draw (its meminfo fields keep the kernel's case).
const CAMEL_CASE: &str = " metric names should be written in 'snake_case' not 'camelCase'";

fn promtool() -> PathBuf {
    let path = std::env::var_os("POCKETSES_PROMTOOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| DEFAULT_PROMTOOL.into());
    assert!(
        path.is_file(),
        "promtool not found at {}: run `bash .ci/install.d/metrics.sh` (or set POCKETSES_PROMTOOL)",
        path.display()
    );
    path
}

/// Runs `promtool check metrics` on `text`: (exit code, remark lines from stdout and stderr).
fn check(text: &str) -> (i32, Vec<String>) {
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write to promtool");
    let out = child.wait_with_output().expect("promtool output");
    let remarks = String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    (out.status.code().unwrap_or(-1), remarks)
}

fn pocketses_metrics() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pocketses"))
        .args(["metrics", "--format", "prometheus"])
        .output()
        .expect("run pocketses metrics");
    assert!(
        out.status.success(),
        "pocketses metrics failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn is_allowed(remark: &str) -> bool {
    remark
        .strip_suffix(CAMEL_CASE)
        .is_some_and(|name| name.starts_with("node_memory_") && !name.contains(' '))
}

#[test]
fn real_output_parses_and_lints_only_like_node_exporter() {
    let text = pocketses_metrics();
    assert!(text.contains("# TYPE node_cpu_seconds_total counter\n"), "{text}");
    let (code, remarks) = check(&text);
    assert!(code == 0 || code == 3, "promtool exit {code}: {remarks:?}");
    let bad: Vec<&String> = remarks.iter().filter(|r| !is_allowed(r)).collect();
    assert!(bad.is_empty(), "unexpected promtool remarks: {bad:#?}");
    assert!(remarks.iter().all(|r| !r.contains("pocketses_")));
}

#[test]
fn without_meminfo_families_promtool_is_silent() {
    // Drop the node_memory_* families whose names are camelCase; everything else must pass
    // promtool with exit 0 and no remark at all.
    let text = pocketses_metrics();
    let kept: String = text
        .lines()
        .filter(|l| {
            let name = l.trim_start_matches("# HELP ").trim_start_matches("# TYPE ");
            !(name.starts_with("node_memory_") && name.chars().any(|c| c.is_ascii_uppercase()))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(kept.contains("pocketses_cpu_utilization_ratio"));
    let (code, remarks) = check(&kept);
    assert_eq!((code, remarks), (0, Vec::<String>::new()));
}

#[test]
fn promtool_does_flag_a_bad_family() {
    // The check above can fail: a counter without `_total` draws a remark.
    let mut families = [Family::single(
        "pocketses_bad_counter",
        "A counter without the suffix.",
        Kind::Counter,
        1.0,
    )];
    let text = prometheus::write(&mut families);
    let (code, remarks) = check(&text);
    assert_eq!(code, 3, "{remarks:?}");
    assert!(
        remarks.iter().any(|r| r.contains("pocketses_bad_counter") && !is_allowed(r)),
        "{remarks:?}"
    );
    // And a malformed exposition is a parse error.
    let (code, _) = check("pocketses_x{ 1\n");
    assert_eq!(code, 1);
}
