//! A hub's `POST /v1/ingest` answers 200 only for documents on disk: every running sink has
//! appended and synced them (docs/push.md, "Hub"). A spoke drops what was answered 200 from its
//! own spool, so a hub that fails to append them must refuse them (503, the spoke keeps them),
//! and a hub killed with SIGKILL right after its 200s must find every one of them in its spool.
//! A polled spoke's snapshot likewise counts as forwarded only once it is on disk. No store is
//! needed: the hub's sink points at a port nobody listens on, so everything it takes stays in
//! its spool (about 10 s for the file).

#![allow(clippy::unwrap_used)]

mod daemon_util;

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use daemon_util::kept::Kept;
use daemon_util::poll;

/// A hub taking documents into a json sink `h` whose store is down; `extra` settings last.
fn hub(dir: &Path, extra: &[&str]) -> Kept {
    let url = format!("push.h.url=http://127.0.0.1:{}/ingest", daemon_util::free_port());
    let mut args = vec!["--set", "hub.ingest=true", "--set", "interval=3600", "--set"];
    args.extend([url.as_str(), "--set", "push.h.format=json"]);
    for set in extra {
        args.extend(["--set", set]);
    }
    Kept::start(dir, &args)
}

/// The hub's own document, as a spoke would send it, with host name `host`.
fn document(template: &str, host: &str) -> String {
    let doc = template.trim();
    assert!(doc.starts_with('{') && doc.contains("\"hostname\":\""), "{doc:.80}");
    let start = doc.find("\"hostname\":\"").unwrap() + "\"hostname\":\"".len();
    let end = start + doc[start..].find('"').unwrap();
    format!("{}{host}{}", &doc[..start], &doc[end..])
}

/// POSTs `body` to `/v1/ingest`: status, head and body; `None` when the hub is gone.
fn post(addr: SocketAddr, body: &str) -> Option<(u16, String, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST /v1/ingest HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((status, head.to_string(), body.to_string()))
}

/// The host names of the documents spooled for sink `h`, read offline (the hub is stopped).
fn spooled_hosts(dir: &Path) -> BTreeSet<String> {
    let spool = pocketses::spool::Spool::open(&dir.join("spool/h"), Default::default()).unwrap();
    let mut hosts = BTreeSet::new();
    for entry in spool.peek(usize::MAX).unwrap() {
        let payload = pocketses::push::encode::payload(&entry.payload).unwrap();
        for line in String::from_utf8_lossy(&payload).lines().filter(|l| !l.trim().is_empty()) {
            let doc: serde_json::Value = serde_json::from_str(line).unwrap();
            hosts.insert(doc["hostname"].as_str().unwrap().to_string());
        }
    }
    hosts
}

/// The hub's own document once it collected one: what the spokes send, with their names.
fn template(hub: &Kept) -> String {
    poll("the hub's first snapshot", || {
        let body = hub.get("/v1/metrics").body;
        body.contains("\"hostname\":\"").then_some(body)
    })
}

/// Waits until the hub's sink takes documents (it starts just after the listener).
fn first_200(addr: SocketAddr, template: &str) {
    poll("the hub's sink taking documents", || {
        post(addr, &document(template, "first")).filter(|(status, _, _)| *status == 200)
    });
}

#[test]
fn documents_the_sink_cannot_append_are_refused_not_answered_200() {
    let dir = tempfile::tempdir().unwrap();
    // The smallest spool: 16 KiB segments, so appends soon need a new segment file.
    let hub = hub(dir.path(), &["push.h.spool.max-bytes=65536"]);
    let addr = hub.http();
    let template = template(&hub);
    first_200(addr, &template);
    // The spool's directory goes away under the running hub: the open segment still takes
    // appends until it is full, and then no new segment can be made.
    std::fs::remove_dir_all(dir.path().join("spool/h")).unwrap();
    let mut answers = Vec::new();
    let refused = (0..500).find_map(|i| {
        let (status, head, body) = post(addr, &document(&template, &format!("d{i}"))).unwrap();
        answers.push(status);
        (status != 200).then_some((status, head, body))
    });
    let (status, head, body) =
        refused.unwrap_or_else(|| panic!("every POST answered 200: {answers:?}"));
    assert_eq!(status, 503, "{body}");
    assert!(
        body.starts_with(
            r#"{"error":"cannot forward documents: cannot spool snapshot for push sink h: "#
        ),
        "{body}"
    );
    assert!(body.contains("no such file or directory"), "{body}");
    // Not a busy hub: the spoke's sink backs off rather than coming back in a second.
    assert!(!head.to_ascii_lowercase().contains("retry-after"), "{head}");
    let metrics = hub.metrics();
    assert!(
        !metrics.contains("pocketses_push_missed_records_total{sink=\"h\"} 0\n"),
        "the failed append counted: {metrics}"
    );
}

#[test]
fn kill_9_right_after_the_200s_loses_no_acknowledged_document() {
    const SPOKES: usize = 8;
    const KILL_AFTER: usize = 150;
    let dir = tempfile::tempdir().unwrap();
    let hub = hub(dir.path(), &[]);
    let addr = hub.http();
    let template = template(&hub);
    first_200(addr, &template);
    let pid = i32::try_from(hub.child.id()).unwrap();
    // Spokes posting at once; the one that gets the KILL_AFTER-th 200 kills the hub at once,
    // while the others' POSTs are on their way.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let answered = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let spokes: Vec<_> = (0..SPOKES)
        .map(|s| {
            let (acked, answered, killed) = (acked.clone(), answered.clone(), killed.clone());
            let template = template.clone();
            std::thread::spawn(move || {
                for n in 0.. {
                    if killed.load(Ordering::SeqCst) {
                        return;
                    }
                    // Three documents a request, as a json sink sends a batch.
                    let hosts: Vec<String> = (0..3).map(|k| format!("s{s}-{n}-{k}")).collect();
                    let body: Vec<String> = hosts.iter().map(|h| document(&template, h)).collect();
                    let Some((status, _, _)) = post(addr, &body.join("\n")) else { return };
                    if status != 200 {
                        continue;
                    }
                    acked.lock().unwrap().extend(hosts);
                    if answered.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER {
                        // SAFETY: kill(2) on the test's own child.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                        killed.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            })
        })
        .collect();
    for spoke in spokes {
        spoke.join().unwrap();
    }
    assert!(killed.load(Ordering::SeqCst), "the hub was never killed");
    hub.kill9();
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= KILL_AFTER * 3, "{} documents answered 200", acked.len());
    let spooled = spooled_hosts(dir.path());
    let lost: Vec<&String> = acked.iter().filter(|h| !spooled.contains(*h)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} documents answered 200 are not in the spool: {lost:?}",
        lost.len(),
        acked.len()
    );
}

/// A hub's figure on `/metrics`, `None` while the sample is not there.
fn metric(daemon: &Kept, sample: &str) -> Option<f64> {
    let text = daemon.metrics();
    text.lines().find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The spoke poller has nobody to answer, but it counts a snapshot as forwarded only once the
/// sinks have it on disk, and says once when they cannot append it.
#[test]
fn a_polled_snapshot_the_sink_cannot_append_is_not_counted_as_forwarded() {
    let spoke_dir = tempfile::tempdir().unwrap();
    let spoke = Kept::start(spoke_dir.path(), &[]);
    let name = format!("127.0.0.1:{}", spoke.http().port());
    let dir = tempfile::tempdir().unwrap();
    let spokes = format!("hub.spokes=http://{name}");
    let hub = hub(dir.path(), &[&spokes, "hub.interval=1", "push.h.spool.max-bytes=65536"]);
    let forwarded = format!("pocketses_hub_spoke_snapshots_forwarded_total{{spoke=\"{name}\"}}");
    let polls = format!("pocketses_hub_spoke_polls_total{{spoke=\"{name}\"}}");
    poll("a polled snapshot stored", || metric(&hub, &forwarded).filter(|n| *n >= 1.0));
    std::fs::remove_dir_all(dir.path().join("spool/h")).unwrap();
    let line = format!(
        "hub: cannot forward the snapshot of spoke {name}: cannot spool snapshot for push sink h: "
    );
    poll("the failed append logged", || hub.stderr().contains(&line).then_some(()));
    // From now on every append fails: the polls go on, nothing more counts as forwarded, and
    // the failure is not logged again at every poll.
    let before = metric(&hub, &forwarded).unwrap();
    let polled = metric(&hub, &polls).unwrap();
    poll("three more polls", || metric(&hub, &polls).filter(|n| *n >= polled + 3.0));
    assert_eq!(metric(&hub, &forwarded), Some(before));
    assert_eq!(hub.stderr().matches(&line).count(), 1, "{}", hub.stderr());
}
