//! `pocketses metrics` as a user runs it: the real binary on this host, every format.

use std::process::Command;

fn run(args: &[&str]) -> (bool, String, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_pocketses")).args(args).output().expect("run pocketses");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn online_cpus() -> usize {
    let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    stat.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count()
}

#[test]
fn json_is_one_line_with_real_rates() {
    let (ok, out, err) = run(&["metrics"]);
    assert!(ok, "{err}");
    assert!(out.ends_with('\n'));
    assert_eq!(out.lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid json");
    assert_eq!(v["schema"], "pocketses.metrics/v1");
    assert!(
        v["timestamp"].as_str().is_some_and(|t| t.ends_with('Z') && t.len() == 24),
        "{}",
        v["timestamp"]
    );
    assert_eq!(v["cpu"]["count"].as_u64(), Some(online_cpus() as u64));
    // Two collections a quarter second apart: the window is real and rates exist.
    let interval = v["interval_seconds"].as_f64().expect("interval");
    assert!(interval >= 0.2, "{interval}");
    let lo = v["network"]["interfaces"]
        .as_array()
        .expect("interfaces")
        .iter()
        .find(|i| i["name"] == "lo")
        .expect("lo");
    assert!(lo["rx_rate"]["bytes_per_second"].is_number(), "{lo}");
    assert!(lo["addresses"]
        .as_array()
        .expect("addresses")
        .iter()
        .any(|a| a["address"] == "127.0.0.1" && a["prefix_length"] == 8));
    let util = v["cpu"]["utilization_percent"].as_f64().expect("utilization");
    assert!((0.0..=100.0).contains(&util));
    assert!(v["memory"]["total_bytes"].as_u64().expect("memory") > 0);
    assert!(v["filesystems"]
        .as_array()
        .expect("filesystems")
        .iter()
        .all(|f| f["fs_type"] != "proc" && f["fs_type"] != "sysfs"));
}

#[test]
fn legacy_has_the_original_shape() {
    let (ok, out, err) = run(&["metrics", "--format", "legacy"]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 1);
    assert!(out.starts_with("{\"cpu\": {\"count\": "), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid json");
    let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["cpu", "memory", "network"]);
    let size = |s: &serde_json::Value| {
        let s = s.as_str().expect("string");
        let (num, unit) = s.split_at(s.len() - 1);
        "BKMGTPEZY".contains(unit)
            && num.split_once('.').is_some_and(|(a, b)| a.parse::<u64>().is_ok() && b.len() == 1)
    };
    assert!(size(&v["memory"]["virtual"]["total"]), "{}", v["memory"]);
    assert!(size(&v["network"]["traffic"]["recv"]));
    assert!(v["memory"]["virtual"]["used"].as_str().is_some_and(|s| s.ends_with('%')));
    assert_eq!(v["cpu"]["utilization"]["per_cpu"].as_array().map(Vec::len), Some(online_cpus()));
    assert_eq!(v["network"]["addresses"]["lo"][0], "127.0.0.1");
}

#[test]
fn influx_lines_are_well_formed() {
    let (ok, out, err) = run(&["metrics", "--format", "influx"]);
    assert!(ok, "{err}");
    assert!(out.ends_with('\n'));
    let mut measurements = Vec::new();
    for line in out.lines() {
        let (_, ts) = line.rsplit_once(' ').expect("timestamp");
        assert!(ts.parse::<i64>().is_ok_and(|t| t > 1_600_000_000_000_000_000), "{line}");
        let m = line.split([',', ' ']).next().expect("measurement");
        if !measurements.contains(&m) {
            measurements.push(m);
        }
    }
    for m in ["cpu", "mem", "swap", "net", "system"] {
        assert!(measurements.contains(&m), "{m} missing: {measurements:?}");
    }
}

#[test]
fn prometheus_ends_with_newline() {
    let (ok, out, err) = run(&["metrics", "--format", "prometheus"]);
    assert!(ok, "{err}");
    assert!(out.ends_with("\n") && !out.ends_with("\n\n"));
    assert!(out.contains("\nnode_load1 "));
}

#[test]
fn unknown_format_is_refused() {
    let (ok, _, err) = run(&["metrics", "--format", "xml"]);
    assert!(!ok);
    assert!(err.contains("invalid value 'xml'"), "{err}");
}

#[test]
fn help_says_it_measures_a_window() {
    let (ok, out, _) = run(&["metrics", "--help"]);
    assert!(ok);
    assert!(out.contains("250 ms"), "{out}");
}
