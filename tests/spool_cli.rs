//! `pocketses spool status` against spools made by the library, through the real binary.
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod support;

use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use pocketses::spool::{Limits, Spool};

fn status(state_dir: &Path, json: bool) -> (bool, String, String) {
    let mut cmd = Command::new(support::bin());
    cmd.args(["spool", "status", "--state-dir"]).arg(state_dir);
    if json {
        cmd.arg("--json");
    }
    cmd.env_remove("POCKETSES_STATE_DIR");
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn no_spool_directory_means_no_spools() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout, _) = status(dir.path(), false);
    assert!(ok);
    assert_eq!(stdout, format!("No spools in {}.\n", dir.path().join("spool").display()));
    let (ok, stdout, _) = status(dir.path(), true);
    assert!(ok);
    let doc = support::assert_cli_json_shape(&stdout);
    assert_eq!(doc["spools"], serde_json::json!([]));
}

#[test]
fn lists_each_spool_with_its_backlog_and_damage() {
    let state = tempfile::tempdir().unwrap();
    let root = state.path().join("spool");
    let mut influx = Spool::open(&root.join("influx"), Limits::default()).unwrap();
    let batch: Vec<Vec<u8>> = (0..3).map(|i| vec![b'a' + i; 100]).collect();
    influx.append_batch(&batch, SystemTime::now()).unwrap();
    influx.append_batch(&batch, SystemTime::now()).unwrap();
    influx.ack(1).unwrap();
    drop(influx);
    // Flip bytes in the middle of the third record (the second pending one).
    let seg = root.join("influx/00000001.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    let third = 2 * 126;
    for b in &mut bytes[third + 30..third + 34] {
        *b ^= 0xff;
    }
    std::fs::write(&seg, &bytes).unwrap();
    Spool::open(&root.join("prom"), Limits::default()).unwrap();

    let (ok, stdout, stderr) = status(state.path(), true);
    assert!(ok, "{stderr}");
    let doc = support::assert_cli_json_shape(&stdout);
    let spools = doc["spools"].as_array().unwrap();
    assert_eq!(spools.len(), 2);
    let influx = &spools[0];
    assert_eq!(influx["name"], "influx");
    assert_eq!(influx["pending-records"], 4, "5 pending, one of them damaged: {influx}");
    assert_eq!(influx["corrupt-records"], 1);
    assert_eq!(influx["torn-tail"], false);
    assert_eq!(influx["dropped-records"], 0);
    assert!(influx["oldest-pending-seconds"].as_u64().unwrap() < 3600);
    assert_eq!(influx["error"], "");
    assert_eq!(spools[1]["name"], "prom");
    assert_eq!(spools[1]["pending-records"], 0);
    assert_eq!(spools[1]["oldest-pending-seconds"], serde_json::Value::Null);

    let (ok, text, _) = status(state.path(), false);
    assert!(ok);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("Spool"), "{text}");
    assert!(lines[1].starts_with("influx  4 "), "{text}");
    assert!(lines[2].starts_with("prom    0 "), "{text}");

    // status changed nothing; the next open skips and counts the damaged record, sends the rest.
    assert_eq!(std::fs::read(&seg).unwrap(), bytes);
    let spool = Spool::open(&root.join("influx"), Limits::default()).unwrap();
    assert_eq!(spool.stats().corrupt_skipped, 1);
    let seqs: Vec<u64> = spool.peek(100).unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [2, 4, 5, 6]);
}
