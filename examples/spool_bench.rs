//! The spool's figures for docs/spool.md: append cost, replay of a day of 10 s snapshots, and
//! bytes written per day at the default 60 s interval. A benchmark, not a test: it prints, it
//! asserts nothing about time.
//!
//! ```text
//! cargo run --release --example spool_bench [DIR]
//! ```
//!
//! DIR (default: a new directory under $TMPDIR) should be on the disk you care about: tmpfs makes
//! fsync free and the append figures meaningless.

use std::path::PathBuf;
use std::time::{Duration, Instant, UNIX_EPOCH};

use pocketses::metrics::collect::Collector;
use pocketses::metrics::encode::json;
use pocketses::spool::{Limits, Spool};

const DAY_AT_10S: u64 = 8_640;
const DAY_AT_60S: u64 = 1_440;

fn main() -> anyhow::Result<()> {
    let base = match std::env::args_os().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => std::env::temp_dir(),
    };
    let dir = base.join(format!("pocketses-spool-bench-{}", std::process::id()));
    let res = run(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    res
}

fn run(dir: &std::path::Path) -> anyhow::Result<()> {
    // A real snapshot of this machine, as the json sink would spool it.
    let mut collector = Collector::new();
    collector.collect();
    let snapshot = json::encode(&collector.collect()).into_bytes();
    println!("spool directory: {}", dir.display());
    println!("snapshot: {} bytes of pocketses.metrics/v1 JSON", snapshot.len());
    let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);

    // 1. A day of 10 s snapshots, one batch (one fsync) each.
    let day = dir.join("day");
    let mut spool = Spool::open(&day, Limits::default())?;
    let start = Instant::now();
    for i in 0..DAY_AT_10S {
        spool.append_batch(&[&snapshot], t0 + Duration::from_secs(i * 10))?;
    }
    let append = start.elapsed();
    let stats = spool.stats();
    println!(
        "append: {DAY_AT_10S} snapshots, one fsync each: {:.2} s, {:.0} µs per snapshot, {} bytes on disk ({:.1} bytes of frame per snapshot over the payload)",
        append.as_secs_f64(),
        append.as_secs_f64() * 1e6 / DAY_AT_10S as f64,
        stats.pending_bytes,
        (stats.pending_bytes as f64 / DAY_AT_10S as f64) - snapshot.len() as f64,
    );
    drop(spool);

    // 2. Replay: reopen (the scan a restart does), then peek and ack in batches of 100.
    let start = Instant::now();
    let mut spool = Spool::open(&day, Limits::default())?;
    let open = start.elapsed();
    let mut n = 0u64;
    loop {
        let batch = spool.peek(100)?;
        let Some(last) = batch.last() else { break };
        n += batch.len() as u64;
        spool.ack(last.seq)?;
    }
    let replay = start.elapsed();
    println!(
        "replay: open {:.0} ms, then {n} records peeked and acked in batches of 100 in {:.2} s ({:.0} records/s, {:.0}x real time at 10 s)",
        open.as_secs_f64() * 1e3,
        replay.as_secs_f64(),
        n as f64 / replay.as_secs_f64(),
        86_400.0 / replay.as_secs_f64(),
    );
    drop(spool);

    // 3. Points: 100 batches of 1,000 line-protocol-sized records (~100 bytes).
    let points = dir.join("points");
    let mut spool = Spool::open(&points, Limits::default())?;
    let point = vec![b'p'; 100];
    let batch: Vec<&[u8]> = (0..1000).map(|_| point.as_slice()).collect();
    let start = Instant::now();
    for i in 0..100u64 {
        spool.append_batch(&batch, t0 + Duration::from_secs(i))?;
    }
    let elapsed = start.elapsed();
    println!(
        "append points: 100,000 records of 100 bytes in batches of 1,000: {:.0} records/s",
        100_000.0 / elapsed.as_secs_f64()
    );
    drop(spool);

    // 4. A day at the default 60 s interval, each snapshot sent and acked before the next.
    let wear = dir.join("wear");
    let mut spool = Spool::open(&wear, Limits::default())?;
    for i in 0..DAY_AT_60S {
        let now = t0 + Duration::from_secs(i * 60);
        if let Some((_, last)) = spool.append_batch(&[&snapshot], now)? {
            spool.ack(last)?;
        }
    }
    let written = spool.stats().bytes_written;
    println!(
        "wear: a day at 60 s with an ack after each snapshot: {written} bytes written by pocketses ({:.1} MiB), {} fsyncs of segments and {} of ack files",
        written as f64 / (1 << 20) as f64,
        DAY_AT_60S,
        DAY_AT_60S,
    );
    Ok(())
}
