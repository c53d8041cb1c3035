//! The real daemon under stress: a flooding subscriber, a stuck subscriber, no file descriptors left.

#![allow(clippy::unwrap_used)] // Helpers outside #[test] functions: a failed unwrap is a failed test.

mod daemon_util;

use std::io::Write;

use daemon_util::{is_json_line, poll, Daemon, Read1, DEADLINE};
use pocketses::publish::QUEUE_CAPACITY;

#[test]
fn a_flooding_subscriber_is_dropped_and_the_others_stay() {
    let daemon = Daemon::start(&["--interval", "1"]);
    let mut flooder = daemon.subscribe();
    let mut quiet = daemon.subscribe();
    flooder.line();
    quiet.line();
    flooder.stream().set_write_timeout(Some(DEADLINE)).unwrap();
    // Well over the 64 KiB the daemon allows within its window. Writes start failing once it hangs up.
    let chunk = vec![b'x'; 16 * 1024];
    for _ in 0..32 {
        if flooder.stream().write_all(&chunk).is_err() {
            break;
        }
    }
    // Lines already on their way may still arrive, then the stream ends.
    let mut n_lines = 0;
    while let Read1::Line(line) = flooder.next() {
        assert!(is_json_line(&line), "{line:?}");
        n_lines += 1;
        assert!(n_lines < 60, "the flooding subscriber was not dropped");
    }
    assert_eq!(daemon.metric("pocketses_subscribers_flooded_total"), 1.0);
    // The quiet one is still served.
    for _ in 0..2 {
        let line = quiet.line();
        assert!(is_json_line(&line), "{line:?}");
    }
    assert_eq!(daemon.metric("pocketses_subscribers"), 1.0);
}

#[test]
fn a_stuck_subscriber_does_not_delay_the_others() {
    let daemon = Daemon::start(&["--interval", "1"]);
    // A subscriber that never reads, with the smallest receive buffer the kernel allows.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let stuck = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(1024).unwrap();
        socket.connect(daemon.tcp).await.unwrap()
    });
    let mut healthy = daemon.subscribe();
    let mut other = daemon.subscribe();
    // Read on until the daemon reports a subscriber whose socket is full: only the stuck one can be,
    // and only once its receive and send buffers are full and its writer waits.
    let mut n_lines = 0;
    while daemon.metric("pocketses_subscribers_blocked") == 0.0 {
        for sub in [&mut healthy, &mut other] {
            let line = sub.line();
            assert!(is_json_line(&line), "{line:?}");
        }
        n_lines += 1;
        assert!(n_lines < 600, "the stuck subscriber never blocked");
    }
    // While it stays blocked, the others keep getting every snapshot, more than its queue holds.
    let mut next_of = std::collections::HashMap::new();
    let mut previous = (healthy.line(), other.line());
    for _ in 0..=QUEUE_CAPACITY {
        let now = (healthy.line(), other.line());
        assert!(is_json_line(&now.0) && is_json_line(&now.1));
        for (before, after) in [(&previous.0, &now.0), (&previous.1, &now.1)] {
            let seen = next_of.entry(before.clone()).or_insert_with(|| after.clone());
            assert_eq!(seen, after, "the two healthy subscribers got different messages");
        }
        previous = now;
    }
    assert_eq!(daemon.metric("pocketses_subscribers_blocked"), 1.0);
    assert_eq!(daemon.metric("pocketses_subscribers"), 3.0);
    drop(stuck);
}

#[test]
fn out_of_descriptors_refuses_new_subscribers_keeps_publishing_and_recovers() {
    // A low descriptor limit, HTTP off: subscribers use up the descriptors quickly.
    // No per-source limit: every refusal here must come from the descriptor limit.
    let daemon = Daemon::start_with(
        &["--interval", "1", "--set", "limits.per-source=1000"],
        false,
        Some(48),
    );
    let mut first = daemon.subscribe();
    first.line();
    let mut accepted = Vec::new();
    let mut refused = false;
    for _ in 0..200 {
        let mut sub = daemon.subscribe();
        match sub.next() {
            Read1::Line(_) => accepted.push(sub),
            Read1::Closed => {
                refused = true;
                break;
            }
        }
    }
    assert!(refused, "never refused with a descriptor limit of 48");
    assert!(accepted.len() > 10, "only {} subscribers before refusal", accepted.len());
    // Connected subscribers keep getting snapshots while new ones are refused.
    for _ in 0..3 {
        let line = first.line();
        assert!(is_json_line(&line), "{line:?}");
    }
    let last = accepted.last_mut().unwrap();
    assert!(is_json_line(&last.line()));
    // Free a few descriptors: new subscribers are accepted again, without a restart.
    accepted.truncate(accepted.len() - 5);
    poll("a subscriber accepted again", || match daemon.subscribe().next() {
        Read1::Line(_) => Some(()),
        Read1::Closed => None,
    });
    for _ in 0..2 {
        assert!(is_json_line(&first.line()));
    }
    let stderr = daemon.stderr();
    assert!(stderr.contains("out of file descriptors"), "{stderr}");
    assert!(stderr.contains("accepting connections again"), "{stderr}");
}
