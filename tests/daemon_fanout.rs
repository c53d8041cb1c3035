//! The real daemon's sharded fan-out: many subscribers over several shards all get every
//! snapshot, in order, and the same ones.

#![allow(clippy::unwrap_used)] // Helpers outside #[test] functions: a failed unwrap is a failed test.

mod daemon_util;

use daemon_util::{is_json_line, Daemon};

/// The snapshot's `timestamp` (RFC 3339, so it sorts as text).
fn timestamp(line: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(line).unwrap();
    value["timestamp"].as_str().unwrap().to_string()
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
    let mut subscribers: Vec<_> = (0..SUBSCRIBERS).map(|_| daemon.subscribe()).collect();
    // Each gets the latest snapshot at once; the newest of those marks where the window starts.
    let firsts: Vec<String> = subscribers.iter_mut().map(|s| timestamp(&s.line())).collect();
    let start = firsts.iter().max().unwrap().clone();
    assert_eq!(daemon.metric("pocketses_subscribers"), SUBSCRIBERS as f64);
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
                window.push(line);
            }
        }
        // Every subscriber got the same snapshots after the window opened: none missed one.
        match &expected {
            None => expected = Some(window),
            Some(want) => assert!(want == &window, "subscriber {i} got other snapshots"),
        }
    }
    assert_eq!(daemon.metric("pocketses_messages_dropped_total"), 0.0);
    assert_eq!(daemon.metric("pocketses_subscribers_blocked"), 0.0);
}
