//! The push pipeline of the real daemon against a tiny HTTP store that answers what each test
//! tells it and records every request: acknowledgement only on 2xx, `rejected/`, 413 splits,
//! `Retry-After`, credentials refused, backoff; `kill -9` in the middle of an outage loses
//! nothing; a reload adds, changes and removes sinks without losing spooled data.
//!
//! Every sink here uses the `json` format: one `pocketses.metrics/v1` document per snapshot and
//! per line, so a test can tell snapshots apart by their `timestamp`.

#![allow(clippy::unwrap_used)]

mod daemon_util;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use daemon_util::poll;
use daemon_util::scripted::{Answer, Got, Scripted as Store};
use serde_json::Value;

/// The push tests' views of what the store got.
trait Pushed {
    /// The snapshots' timestamps (RFC 3339, milliseconds) in the body, in order.
    fn timestamps(&self) -> Vec<String>;
}

impl Pushed for Got {
    fn timestamps(&self) -> Vec<String> {
        timestamps(&self.body)
    }
}

/// Timestamps the store acknowledged (2xx), in the order it got them.
fn acked(store: &Store) -> Vec<String> {
    store.got().iter().filter(|g| g.status / 100 == 2).flat_map(Got::timestamps).collect()
}

fn timestamps(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let doc: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            doc["timestamp"].as_str().unwrap().to_string()
        })
        .collect()
}

fn ok() -> Answer {
    (204, vec![], String::new())
}

type Daemon = daemon_util::kept::Kept;

/// The figures of spool `name` in a `spool status --json` document.
fn spool<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["spools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no spool {name} in {status}"))
}

fn pending(daemon: &Daemon, name: &str) -> u64 {
    daemon.pending(name)
}

/// The records spooled for `name`, read offline (the daemon must be stopped): their timestamps.
fn spooled(dir: &Path, name: &str) -> Vec<String> {
    let spool =
        pocketses::spool::Spool::open(&dir.join("spool").join(name), Default::default()).unwrap();
    spool
        .peek(usize::MAX)
        .unwrap()
        .iter()
        .flat_map(|e| timestamps(&pocketses::push::encode::payload(&e.payload).unwrap()))
        .collect()
}

fn strictly_increasing(ts: &[String]) -> bool {
    ts.windows(2).all(|w| w[0] < w[1])
}

#[test]
fn each_status_code_does_what_the_store_means() {
    // 400 first; then any request of more than one record is too large (413); single records
    // get 429 with Retry-After, 401, 500, and then 204 for good.
    let mut singles = 0;
    let store = Store::start(Box::new(move |n, body| {
        if n == 0 {
            return (400, vec![], "{\"error\":\"unable to parse 'x'\"}".into());
        }
        if timestamps(body).len() > 1 {
            return (413, vec![], "too large".into());
        }
        singles += 1;
        match singles {
            1 => (429, vec![("Retry-After".into(), "1".into())], "slow down".into()),
            2 => (401, vec![], "bad token".into()),
            3 => (500, vec![], "oops".into()),
            _ => ok(),
        }
    }));
    let dir = tempfile::tempdir().unwrap();
    let url = format!("push.t.url={}", store.url("/ingest"));
    let daemon = Daemon::start(
        dir.path(),
        &["--set", &url, "--set", "push.t.format=json", "--set", "push.t.token=s3cret"],
    );
    // Wait until ten snapshots were acknowledged.
    poll("ten snapshots acknowledged", || (acked(&store).len() >= 10).then_some(()));
    let got = store.got();
    let statuses: Vec<u16> = got.iter().map(|g| g.status).collect();
    assert_eq!(&statuses[..2], [400, 429], "{statuses:?}");
    assert!(statuses.contains(&401) && statuses.contains(&500), "{statuses:?}");
    // Failures in between made a backlog, sent as one request, too large, then split.
    let first_413 = got.iter().position(|g| g.status == 413).expect("a 413");
    assert!(got[first_413].timestamps().len() > 1);
    let split = got[first_413 + 1..].iter().find(|g| g.status != 413).unwrap();
    assert_eq!(split.timestamps().len(), 1, "split down to what the store takes");
    // Headers: the bearer token, the format's content type.
    assert_eq!(got[0].header("authorization"), Some("Bearer s3cret"));
    assert_eq!(got[0].header("content-type"), Some("application/x-ndjson"));
    assert_eq!(got[0].path, "/ingest");
    // Acknowledged only on 2xx: every snapshot of a failed request came again in a 204, once,
    // in order; the rejected one never came again.
    let acked = acked(&store);
    assert!(strictly_increasing(&acked), "{acked:?}");
    let rejected = got[0].timestamps();
    assert!(rejected.iter().all(|t| !acked.contains(t)));
    let last = acked.last().unwrap().clone();
    for g in got.iter().filter(|g| g.status / 100 != 2 && g.status != 400) {
        for t in g.timestamps().iter().filter(|t| **t <= last) {
            assert!(acked.contains(t), "snapshot {t} of a {} was never delivered", g.status);
        }
    }
    // The rejected batch is in rejected/ with the store's message.
    let rej = dir.path().join("spool/t/rejected");
    let names: Vec<String> = std::fs::read_dir(&rej)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let reason = names.iter().find(|n| n.ends_with(".reason")).expect("a .reason file");
    let reason = std::fs::read_to_string(rej.join(reason)).unwrap();
    assert!(reason.contains("message 400: {\"error\":\"unable to parse 'x'\"}"), "{reason}");
    let records = names.iter().find(|n| n.ends_with(".records")).unwrap();
    assert_eq!(timestamps(&std::fs::read(rej.join(records)).unwrap()), rejected);
    // The credentials problem is said once, not at every retry.
    let stderr = daemon.stderr();
    assert_eq!(stderr.matches("credentials refused").count(), 1, "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
    // The figures: spool status (live) and /metrics.
    let status = daemon.spool_status();
    let t = spool(&status, "t");
    assert_eq!(t["rejected-batches"], 1, "{t}");
    assert_eq!(t["live"]["rejected-records"], 1, "{t}");
    assert!(t["live"]["sent-records"].as_u64().unwrap() >= 10, "{t}");
    assert!(t["live"]["last-success"].as_u64().is_some(), "{t}");
    assert!(t["live"]["failed-requests"].as_u64().unwrap() >= 4, "{t}");
    let metrics = daemon.metrics();
    assert!(metrics.contains("pocketses_push_rejected_records_total{sink=\"t\"} 1\n"), "{metrics}");
    assert!(metrics.contains("# TYPE pocketses_push_backlog_records gauge\n"), "{metrics}");
}

#[test]
fn kill_9_in_an_outage_loses_nothing() {
    // The store is down: its port is reserved but nobody accepts.
    let dir = tempfile::tempdir().unwrap();
    let port = daemon_util::free_port();
    let url = format!("push.o.url=http://127.0.0.1:{port}/ingest");
    let args = ["--set", &url, "--set", "push.o.format=json", "--set", "push.o.batch=3"];
    let daemon = Daemon::start(dir.path(), &args);
    poll("five snapshots spooled", || (pending(&daemon, "o") >= 5).then_some(()));
    let status = daemon.spool_status();
    assert_eq!(spool(&status, "o")["live"]["state"], "failing", "{status}");
    assert!(
        spool(&status, "o")["live"]["last-error"].as_str().unwrap().contains("refused"),
        "{status}"
    );
    daemon.kill9();
    let before = spooled(dir.path(), "o");
    assert!(before.len() >= 5 && strictly_increasing(&before), "{before:?}");
    // The store comes back on its port; the daemon starts again on the same spool.
    let store =
        Store::start_on(TcpListener::bind(("127.0.0.1", port)).unwrap(), Box::new(|_, _| ok()));
    let daemon = Daemon::start(dir.path(), &args);
    poll("the backlog delivered", || {
        let acked = acked(&store);
        before.iter().all(|t| acked.contains(t)).then_some(())
    });
    let acked = acked(&store);
    assert!(strictly_increasing(&acked), "in order, none twice: {acked:?}");
    assert_eq!(&acked[..before.len()], &before[..], "the backlog first, oldest first");
    // Sent in batches of push.o.batch, faster than they were collected.
    assert!(store.got().iter().any(|g| g.timestamps().len() == 3));
    drop(daemon);
}

#[test]
fn reload_adds_changes_and_removes_sinks_keeping_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    let port = daemon_util::free_port();
    // Added by a reload, with the store down.
    let sink = |batch: u32| {
        serde_json::json!({"push": {"r": {"url": format!("http://127.0.0.1:{port}/i"),
            "format": "json", "batch": batch}}})
    };
    daemon.reload(sink(60));
    poll("three snapshots spooled", || (pending(&daemon, "r") >= 3).then_some(()));
    // Changed while the store is still down: the sink restarts on the same spool.
    daemon.reload(sink(2));
    let store =
        Store::start_on(TcpListener::bind(("127.0.0.1", port)).unwrap(), Box::new(|_, _| ok()));
    poll("the backlog delivered", || {
        (pending(&daemon, "r") == 0 && acked(&store).len() >= 3).then_some(())
    });
    let acked = acked(&store);
    assert!(strictly_increasing(&acked), "{acked:?}");
    assert!(store.got().iter().all(|g| g.timestamps().len() <= 2), "the changed batch size");
    // Removed: nothing more is sent, and the spool stays on disk.
    daemon.reload(serde_json::json!({}));
    let sent = store.got().len();
    poll("the sink gone from the daemon's figures", || {
        spool(&daemon.spool_status(), "r")["live"].is_null().then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(store.got().len() <= sent + 1, "a removed sink stops sending");
    assert!(dir.path().join("spool/r").is_dir());
    let stderr = daemon.stderr();
    assert!(stderr.contains("push sink removed"), "{stderr}");
    let names: BTreeSet<&str> = ["push sink started"].into_iter().collect();
    for n in names {
        assert_eq!(stderr.matches(n).count(), 2, "{stderr}");
    }
}

/// Appends one record per timestamp to spool `name` under `dir`, offline, as a json sink would
/// (a document with a `timestamp` and `pad` bytes of padding).
fn prefill(dir: &Path, name: &str, stamps: &[String], pad: usize) {
    let path = dir.join("spool").join(name);
    std::fs::create_dir_all(&path).unwrap();
    // Segments as small as a 64 KiB spool makes them (a quarter of it).
    let limits = pocketses::spool::Limits {
        max_bytes: 1 << 30,
        segment_bytes: 16 << 10,
        ..Default::default()
    };
    let mut spool = pocketses::spool::Spool::open(&path, limits).unwrap();
    for t in stamps {
        let doc = serde_json::json!({"timestamp": t, "pad": "x".repeat(pad)}).to_string();
        spool.append_batch(&[doc], std::time::SystemTime::now()).unwrap();
    }
}

fn stamps(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("2020-01-01T00:{:02}:{:02}.000Z", i / 60, i % 60)).collect()
}

#[test]
fn a_corrupt_record_is_found_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let old = stamps(7);
    prefill(dir.path(), "c", &old[..5], 10);
    // Flip a byte in the third record's payload.
    let seg = dir.path().join("spool/c/00000001.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    let third = bytes.windows(old[2].len()).position(|w| w == old[2].as_bytes()).unwrap();
    bytes[third + 5] ^= 0x20;
    std::fs::write(&seg, bytes).unwrap();
    // A record whose frame is sound but whose content no format reads (a compressed record
    // that does not decompress), then a good one.
    {
        let mut spool =
            pocketses::spool::Spool::open(&dir.path().join("spool/c"), Default::default()).unwrap();
        let now = std::time::SystemTime::now();
        spool.append_batch(&[vec![0xFF, 0x01, 0xAA, 0xBB, 0xCC]], now).unwrap();
        let good = serde_json::json!({"timestamp": old[6]}).to_string();
        spool.append_batch(&[good], now).unwrap();
    }
    let verify = Command::new(env!("CARGO_BIN_EXE_pocketses"))
        .args(["spool", "verify", "--state-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(1), "{text}");
    assert!(
        text.starts_with("c: damaged, 6 valid records in 1 segments, 1 damaged regions:\n"),
        "{text}"
    );
    assert!(text.contains("00000001.seg at byte "), "{text}");
    // The daemon starts, counts the bad record and sends the rest.
    let store = Store::start(Box::new(|_, _| ok()));
    let url = format!("push.c.url={}", store.url("/i"));
    let daemon = Daemon::start(dir.path(), &["--set", &url, "--set", "push.c.format=json"]);
    let want: Vec<String> = [0, 1, 3, 4, 6].iter().map(|i| old[*i].clone()).collect();
    poll("the five good records delivered", || acked(&store).starts_with(&want).then_some(()));
    assert!(!acked(&store).contains(&old[2]));
    // The unreadable record was set aside alone, with why.
    let rej = dir.path().join("spool/c/rejected");
    let reasons: Vec<String> = std::fs::read_dir(&rej)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "reason"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains("message unreadable record: "), "{reasons:?}");
    assert!(reasons[0].contains("records 6-6\n"), "{reasons:?}");
    let status = daemon.spool_status();
    assert_eq!(spool(&status, "c")["live"]["corrupt-records"], 1, "{status}");
}

#[test]
fn past_max_bytes_the_oldest_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    // 40 records of about 5 KiB: 200 KiB spooled, three times what the sink will allow.
    let old = stamps(40);
    prefill(dir.path(), "d", &old, 5000);
    let port = daemon_util::free_port();
    let url = format!("push.d.url=http://127.0.0.1:{port}/i");
    let args =
        ["--set", &url, "--set", "push.d.format=json", "--set", "push.d.spool.max-bytes=65536"];
    let daemon = Daemon::start(dir.path(), &args);
    // The first snapshot appended enforces the limit.
    let dropped = poll("the oldest dropped", || {
        let status = daemon.spool_status();
        let d = spool(&status, "d");
        let n = d["dropped-records"].as_u64().unwrap();
        (n > 0).then(|| (n, d["pending-bytes"].as_u64().unwrap()))
    });
    assert!(dropped.0 >= 20, "{dropped:?}");
    assert!(dropped.1 <= 65536, "{dropped:?}");
    let metrics = daemon.metrics();
    let counted: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("pocketses_push_dropped_records_total{sink=\"d\"} "))
        .unwrap_or_else(|| panic!("no dropped count: {metrics}"))
        .parse()
        .unwrap();
    assert!(counted >= dropped.0 as f64, "{counted} {dropped:?}");
    assert!(daemon.stderr().contains("dropped the oldest spooled records: past max-bytes"));
    // The store comes back: what is left arrives, newest kept, oldest gone, in order.
    let store =
        Store::start_on(TcpListener::bind(("127.0.0.1", port)).unwrap(), Box::new(|_, _| ok()));
    poll("the rest delivered", || acked(&store).contains(&old[39]).then_some(()));
    let acked = acked(&store);
    assert!(strictly_increasing(&acked), "{acked:?}");
    let kept: Vec<String> = acked.iter().filter(|t| t.starts_with("2020")).cloned().collect();
    assert!(!kept.is_empty() && !kept.contains(&old[0]), "{kept:?}");
    assert_eq!(kept, old[40 - kept.len()..], "the newest kept, the oldest dropped");
    let total = spool(&daemon.spool_status(), "d")["dropped-records"].as_u64().unwrap();
    assert!(kept.len() as u64 + total >= 40, "every record delivered or counted");
}
