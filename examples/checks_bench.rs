//! What the checks add to the daemon's cycle, for docs/performance.md: the thread CPU time of one
//! collection and its encoding (what the daemon does every interval without checks) against that
//! of the checks run on the same snapshot (evaluation, hysteresis, encoding of `/v1/checks`, SSE
//! and `/metrics`, the spool backlog read from disk). A benchmark, not a test: it prints, it
//! asserts nothing about time.
//!
//! ```text
//! cargo run --release --example checks_bench [CYCLES]
//! ```

use std::time::{Duration, UNIX_EPOCH};

use pocketses::checks::builtin::{Facts, SnapHealth, SnapdFacts};
use pocketses::checks::daemon::{spool_facts, Checker};
use pocketses::checks::health::Situation;
use pocketses::config::{Config, Format};
use pocketses::metrics::collect::Collector;
use pocketses::publish::Published;
use pocketses::spool::{Limits, Spool};

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the struct we own; the clock id is a constant.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(u64::try_from(ts.tv_sec).unwrap_or(0), u32::try_from(ts.tv_nsec).unwrap_or(0))
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let cycles: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(300);
    // Two sinks with a backlog of an hour of 60 s snapshots each, as a link that is down leaves them.
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("spool");
    let mut collector = Collector::new();
    let record = pocketses::metrics::encode::json::encode(&collector.collect()).into_bytes();
    for sink in ["influx", "prom"] {
        let mut spool = Spool::open(&root.join(sink), Limits::default())?;
        for minute in 0..60u64 {
            let at = UNIX_EPOCH + Duration::from_secs(1_800_000_000 + minute * 60);
            spool.append_batch(&[&record], at)?;
        }
    }
    let snapd = SnapdFacts {
        silent_for: 0.0,
        error: None,
        snaps: Some(
            ["core22", "snapd", "pc", "pc-kernel", "network-manager"]
                .iter()
                .map(|name| SnapHealth {
                    name: (*name).to_string(),
                    status: "okay".to_string(),
                    ..SnapHealth::default()
                })
                .collect(),
        ),
    };
    let config = Config::default();
    let mut checker = Checker::new();
    let (mut base, mut checks) = (Vec::new(), Vec::new());
    let mut n_results = 0;
    for seq in 1..=cycles as u64 {
        let t0 = thread_cpu();
        let published = Published::new(seq, collector.collect(), Format::Json);
        let t1 = thread_cpu();
        let facts = Facts {
            snapd: Some(snapd.clone()),
            spools: spool_facts(&root, pocketses::spool::millis(std::time::SystemTime::now())),
        };
        let outcome = checker.run(
            seq,
            &published.snapshot,
            &facts,
            &Situation::default(),
            &config,
            1_800_000_000.0 + seq as f64,
        );
        let t2 = thread_cpu();
        n_results = String::from_utf8_lossy(&outcome.set.sse).matches("event: check").count();
        base.push(t1 - t0);
        checks.push(t2 - t1);
    }
    let (base, checks) = (median(&mut base), median(&mut checks));
    println!(
        "cycles: {cycles}, check results per cycle: {n_results} (2 spools of 60 records, 5 snaps)"
    );
    println!("collect + encode (median thread CPU): {:?}", base);
    println!("checks on the same snapshot:          {:?}", checks);
    println!("checks add: {:.1} % to the cycle", checks.as_secs_f64() * 100.0 / base.as_secs_f64());
    Ok(())
}
