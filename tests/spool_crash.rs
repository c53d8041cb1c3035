//! `kill -9` at random moments loses nothing that `append_batch` said was appended.
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report
//!
//! The test binary re-executes itself as the child (`POCKETSES_SPOOL_CHILD` names the spool): the
//! child appends batches in a loop and acks now and then, printing `appended FIRST LAST` after each
//! `append_batch` returned and `acked SEQ` after each `ack` returned. The parent kills it with
//! SIGKILL after a random delay, reopens the spool and checks: every record the child reported
//! appended and not acknowledged is there, in order, with its payload, no sequence number twice.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use pocketses::spool::{Limits, Spool};
use rand::Rng as _;

const CHILD_ENV: &str = "POCKETSES_SPOOL_CHILD";
const ROUNDS: usize = 8;

fn limits() -> Limits {
    // Small segments, so that kills land during rolls and deletions too.
    Limits { max_bytes: 64 << 20, max_age: None, segment_bytes: 8 * 1024 }
}

fn payload(seq: u64) -> Vec<u8> {
    let mut p = format!("record {seq}:").into_bytes();
    p.resize(200 + (seq % 7) as usize * 50, b'x');
    p
}

/// The child: append and ack until killed.
fn child(dir: &Path) -> ! {
    let mut spool = Spool::open(dir, limits()).expect("child opens the spool");
    let mut out = std::io::stdout().lock();
    let mut batch_no: u64 = 0;
    loop {
        let first = spool.stats().next_seq;
        let n = 1 + batch_no % 5;
        let batch: Vec<Vec<u8>> = (first..first + n).map(payload).collect();
        let (a, b) =
            spool.append_batch(&batch, SystemTime::now()).expect("append").expect("a range");
        assert_eq!((a, b), (first, first + n - 1));
        writeln!(out, "appended {a} {b}").expect("stdout");
        out.flush().expect("stdout");
        batch_no += 1;
        if batch_no.is_multiple_of(9) {
            // Acknowledge all but the last few records, as a sink would after a send.
            let upto = b.saturating_sub(6);
            spool.ack(upto).expect("ack");
            writeln!(out, "acked {upto}").expect("stdout");
            out.flush().expect("stdout");
        }
    }
}

#[derive(Debug, Default)]
struct Seen {
    appended: u64,
    acked: u64,
    lines: u64,
}

#[test]
fn kill_9_loses_no_appended_batch() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::thread_rng();
    let mut prev = Seen::default();
    for round in 0..ROUNDS {
        let mut proc = Command::new(&exe)
            .args(["--exact", "kill_9_loses_no_appended_batch", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = proc.stdout.take().unwrap();
        let seen =
            Arc::new(Mutex::new(Seen { appended: prev.appended, acked: prev.acked, lines: 0 }));
        let reader = {
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let words: Vec<&str> = line.split_whitespace().collect();
                    let mut s = seen.lock().unwrap();
                    match words.as_slice() {
                        ["appended", _, last] => {
                            s.appended = last.parse().unwrap();
                            s.lines += 1;
                        }
                        ["acked", upto] => s.acked = upto.parse().unwrap(),
                        _ => {}
                    }
                }
            })
        };
        // Liveness only: the child must have appended something before we kill it.
        let started = std::time::Instant::now();
        while seen.lock().unwrap().lines == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "round {round}: the child never appended"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(5..250)));
        proc.kill().unwrap(); // SIGKILL
        let status = proc.wait().unwrap();
        assert!(!status.success(), "round {round}: the child exited by itself: {status}");
        reader.join().unwrap();
        let seen = std::mem::take(&mut *seen.lock().unwrap());

        let spool = Spool::open(dir.path(), limits()).unwrap();
        let stats = spool.stats();
        assert_eq!(stats.corrupt_skipped, 0, "round {round}: a crash is not damage");
        assert!(stats.acked_seq >= seen.acked, "round {round}: an ack that returned was lost");
        let records = spool.peek(usize::MAX).unwrap();
        let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "round {round}: out of order or twice: {seqs:?}"
        );
        for record in &records {
            assert!(record.seq > stats.acked_seq);
            assert_eq!(record.payload, payload(record.seq), "round {round}: seq {}", record.seq);
        }
        let from = stats.acked_seq.max(seen.acked) + 1;
        for seq in from..=seen.appended {
            assert!(
                seqs.binary_search(&seq).is_ok(),
                "round {round}: appended seq {seq} is missing"
            );
        }
        assert!(seen.appended > prev.appended, "round {round}: nothing appended");
        assert!(stats.next_seq > seen.appended, "round {round}: sequence numbers went back");
        prev = seen;
    }
}
