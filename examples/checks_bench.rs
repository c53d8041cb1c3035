//! What the checks add to the daemon's cycle, for docs/performance.md. A benchmark, not a test:
//! it prints, it asserts nothing about time.
//!
//! 1. In this process, thread CPU time per cycle: one collection and its JSON encoding (what the
//!    daemon does every interval without checks) against the checks run on the same snapshot as
//!    the daemon runs them (evaluation, hysteresis, health, the spool backlog through
//!    `SpoolWatch`), and, apart, the encodings a reader pays for on first use.
//! 2. End to end, when the release binary is built: the daemon's process CPU per cycle at
//!    `--interval 1` with every check off, then on, alternately, twice each.
//! 3. The dashboard's hour of history, full: the ring's memory and `/v1/history`'s weight.
//!
//! ```text
//! cargo build --release && cargo run --release --example checks_bench [CYCLES]
//! ```

use std::time::{Duration, UNIX_EPOCH};

use pocketses::checks::builtin::{Facts, SinkFacts, SnapHealth, SnapdFacts};
use pocketses::checks::daemon::{Checker, SpoolWatch};
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
                    name: (*name).into(),
                    status: "okay".into(),
                    ..SnapHealth::default()
                })
                .collect::<Vec<_>>()
                .into(),
        ),
    };
    // Two sinks: one delivering, one failing (the `push` check).
    let sinks: Vec<SinkFacts> = [("influx", "ok", 0.0), ("vm", "failing", 120.0)]
        .iter()
        .map(|(name, state, failing_for)| SinkFacts {
            name: name.to_string(),
            state: (*state).into(),
            failing_for: *failing_for,
            last_error: None,
        })
        .collect();
    let config = Config::default();
    let mut checker = Checker::new();
    let mut spools = SpoolWatch::default();
    let (mut base, mut checks, mut encode): (Vec<Duration>, Vec<Duration>, Vec<Duration>) =
        (Vec::new(), Vec::new(), Vec::new());
    let mut n_results = 0;
    for seq in 1..=cycles as u64 {
        let t0 = thread_cpu();
        let published = Published::new(seq, collector.collect(), Format::Json);
        let t1 = thread_cpu();
        let facts = Facts {
            snapd: Some(snapd.clone()),
            spools: spools.facts(&root, pocketses::spool::millis(std::time::SystemTime::now())),
            sinks: sinks.clone(),
            fleet: None,
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
        let (json, sse, prom) = (outcome.set.json(), outcome.set.sse(), outcome.set.prometheus());
        let t3 = thread_cpu();
        n_results = String::from_utf8_lossy(&sse).matches("event: check").count();
        std::hint::black_box((json, prom));
        base.push(t1 - t0);
        checks.push(t2 - t1);
        encode.push(t3 - t2);
    }
    let (base, checks, encode) = (median(&mut base), median(&mut checks), median(&mut encode));
    println!(
        "cycles: {cycles}, check results per cycle: {n_results} (2 spools of 60 records, 2 sinks, 5 snaps)"
    );
    println!("collect + JSON encode (median thread CPU): {base:?}");
    println!("checks on the same snapshot:               {checks:?}");
    println!("  = {:.1} % of collect + encode", checks.as_secs_f64() * 100.0 / base.as_secs_f64());
    println!("on first read: /v1/checks + SSE set + /metrics encodings: {encode:?}");
    history(&collector.collect());
    end_to_end(dir.path())
}

/// The dashboard's hour of history: its memory and `/v1/history`'s weight, full, at the shortest
/// interval (1 s) and at the default (60 s), with this host's figures.
fn history(snapshot: &pocketses::metrics::Snapshot) {
    use pocketses::publish::dashboard::assets::gzip_fast;
    use pocketses::publish::history::History;
    for interval in [1u32, 60] {
        let mut history = History::default();
        let mut s = snapshot.clone();
        for i in 0..(2 * 3600 / interval) {
            s.timestamp = 1_800_000_000.0 + f64::from(i * interval);
            history.push(&s);
        }
        let json = history.to_json();
        println!(
            "history ring at a {interval} s interval, full hour: {} points, {} bytes on the heap; /v1/history {} bytes, {} gzip",
            history.points().count(),
            history.heap_bytes(),
            json.len(),
            gzip_fast(json.as_bytes()).len()
        );
    }
}

/// CPU time of another process (all its threads).
fn process_cpu(pid: u32) -> Option<Duration> {
    let mut clock: libc::clockid_t = 0;
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: both calls write into values we own; a pid that is gone makes them fail.
    let ok = unsafe {
        libc::clock_getcpuclockid(i32::try_from(pid).ok()?, &mut clock) == 0
            && libc::clock_gettime(clock, &mut ts) == 0
    };
    ok.then(|| {
        Duration::new(u64::try_from(ts.tv_sec).unwrap_or(0), u32::try_from(ts.tv_nsec).unwrap_or(0))
    })
}

const CHECKS: [&str; 9] =
    ["filesystem", "inodes", "memory", "swap", "load", "temperature", "snapd", "snaps", "spool"];

/// The daemon's CPU per cycle with the checks off and on, alternately.
fn end_to_end(state: &std::path::Path) -> anyhow::Result<()> {
    let bin = std::env::current_exe()?
        .parent()
        .and_then(|examples| examples.parent())
        .map(|release| release.join("pocketses"));
    let Some(bin) = bin.filter(|b| b.is_file()) else {
        println!("end to end: skipped, build the binary first (cargo build --release)");
        return Ok(());
    };
    const WARMUP: Duration = Duration::from_secs(3);
    const WINDOW: u32 = 20;
    let mut figures: Vec<(bool, f64)> = Vec::new();
    for on in [false, true, false, true] {
        let mut cmd = std::process::Command::new(&bin);
        cmd.args(["daemon", "--bind", "127.0.0.1", "--port", "0", "--http-port", "0"])
            .args(["--interval", "1"])
            .env("POCKETSES_STATE_DIR", state)
            .env("POCKETSES_SNAPD_SOCKET", state.join("no-snapd.socket"))
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if !on {
            for check in CHECKS {
                cmd.args(["--set", &format!("checks.{check}.enabled=false")]);
            }
        }
        let mut child = cmd.spawn()?;
        std::thread::sleep(WARMUP);
        let a = process_cpu(child.id());
        std::thread::sleep(Duration::from_secs(u64::from(WINDOW)));
        let b = process_cpu(child.id());
        let _ = child.kill();
        let _ = child.wait();
        if let (Some(a), Some(b)) = (a, b) {
            figures.push((on, (b - a).as_secs_f64() * 1e6 / f64::from(WINDOW)));
        }
    }
    let mean = |want: bool| {
        let v: Vec<f64> = figures.iter().filter(|f| f.0 == want).map(|f| f.1).collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    let (off, on) = (mean(false), mean(true));
    println!("end to end, daemon CPU per 1 s cycle (µs), runs in order: {figures:?}");
    println!("checks off {off:.0} µs, on {on:.0} µs: +{:.1} %", (on - off) * 100.0 / off);
    Ok(())
}
