//! The real daemon's sharded fan-out: many subscribers over several shards all get every
//! snapshot, in order, and the same ones; none is skipped, which an SSE stream (not sharded)
//! read beside them proves by its sequence numbers.

#![allow(clippy::unwrap_used)] // Helpers outside #[test] functions: a failed unwrap is a failed test.

mod daemon_util;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use daemon_util::{is_json_line, poll, Daemon, DEADLINE};

/// The snapshot's `timestamp` (RFC 3339, so it sorts as text).
fn timestamp(line: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(line).unwrap();
    value["timestamp"].as_str().unwrap().to_string()
}

/// Reads the SSE stream on a thread: each snapshot's timestamp with its sequence number (`id:`).
fn sse_sequence(daemon: &Daemon) -> Arc<Mutex<BTreeMap<String, u64>>> {
    let seen = Arc::new(Mutex::new(BTreeMap::new()));
    let mut stream = TcpStream::connect(daemon.http.unwrap()).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.write_all(b"GET /v1/metrics/stream HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let out = Arc::clone(&seen);
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let (mut event, mut id) = (String::new(), None);
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(n) if n > 0 => {}
                // The daemon is gone at the end of the test.
                _ => return,
            }
            // Chunked transfer: chunk sizes come between the fields and are ignored.
            let line = line.trim_end_matches(['\r', '\n']);
            if let Some(name) = line.strip_prefix("event: ") {
                event = name.to_string();
            } else if let Some(n) = line.strip_prefix("id: ") {
                id = n.parse::<u64>().ok();
            } else if let Some(data) = line.strip_prefix("data: ") {
                if let (true, Some(seq)) = (event == "snapshot", id.take()) {
                    out.lock().unwrap().insert(timestamp(data), seq);
                }
            }
        }
    });
    seen
}

#[test]
fn many_subscribers_over_several_shards_get_every_snapshot_in_order() {
    const SUBSCRIBERS: usize = 300;
    const MESSAGES: usize = 4;
    let shards = ("POCKETSES_FANOUT_SHARDS".to_string(), "3".to_string());
    let daemon = Daemon::start_env(
        &["--interval", "1", "--max-subscribers", "1000", "--set", "limits.per-source=1000"],
        true,
        None,
        &[shards],
    );
    let sequence = sse_sequence(&daemon);
    let mut subscribers: Vec<_> = (0..SUBSCRIBERS).map(|_| daemon.subscribe()).collect();
    // Each gets the latest snapshot at once; the newest of those marks where the window starts.
    let firsts: Vec<String> = subscribers.iter_mut().map(|s| timestamp(&s.line())).collect();
    let start = firsts.iter().max().unwrap().clone();
    assert_eq!(daemon.metric("pocketses_subscribers"), (SUBSCRIBERS + 1) as f64);
    let mut expected: Option<Vec<String>> = None;
    for (i, sub) in subscribers.iter_mut().enumerate() {
        let mut previous = firsts[i].clone();
        let mut window = Vec::new();
        while window.len() < MESSAGES {
            let line = sub.line();
            assert!(is_json_line(&line), "{line:?}");
            let ts = timestamp(&line);
            assert!(ts > previous, "subscriber {i}: {ts} after {previous}: out of order or twice");
            previous = ts.clone();
            if ts > start {
                window.push(ts);
            }
        }
        // Every subscriber got the same snapshots after the window opened: none missed one.
        match &expected {
            None => expected = Some(window),
            Some(want) => assert!(want == &window, "subscriber {i} got other snapshots"),
        }
    }
    // And those are consecutive snapshots: the same ones with no gap in their sequence numbers,
    // so a shard that skipped a message for all of its subscribers alike would be seen too.
    let window = expected.unwrap();
    let last = window.last().unwrap().clone();
    poll("the SSE stream to reach the window's end", || {
        sequence.lock().unwrap().contains_key(&last).then_some(())
    });
    let seqs: Vec<u64> = {
        let seen = sequence.lock().unwrap();
        let got = window.iter().map(|ts| seen.get(ts).copied()).collect::<Option<Vec<u64>>>();
        got.unwrap_or_else(|| panic!("the SSE stream missed some of {window:?}: {seen:?}"))
    };
    let consecutive: Vec<u64> = (seqs[0]..seqs[0] + MESSAGES as u64).collect();
    assert_eq!(seqs, consecutive, "the line stream skipped snapshots the SSE stream got");
    assert_eq!(daemon.metric("pocketses_messages_dropped_total"), 0.0);
    assert_eq!(daemon.metric("pocketses_subscribers_blocked"), 0.0);
}
