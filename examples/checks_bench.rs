//! What the checks add to the daemon's cycle, for docs/performance.md. A benchmark, not a test:
//! it prints, it asserts nothing about time.
//!
//! 1. In this process, thread CPU time and allocations per cycle: one collection and its JSON
//!    encoding (what the daemon does every interval without checks) against the checks run on
//!    the same snapshot as the daemon runs them (`Gathered::gather`: snapd's view, the spools
//!    through `SpoolWatch`, two sinks' statuses read in place, the fleet client's state; then
//!    `Checker::run`: evaluation, hysteresis, health), and the same checks with their facts
//!    gathered as the daemon did before 2026-11-30 10:00 (a copy of every sink's status, every
//!    fact made anew each cycle), on a checker of its own, in alternate order; apart, the
//!    encodings a reader pays for on first use.
//! 2. End to end, when the release binary is built: the daemon's process CPU per cycle at
//!    `--interval 1` with every check off, then on, alternately, twice each.
//! 3. The dashboard's hour of history, full: the ring's memory and `/v1/history`'s weight.
//!
//! ```text
//! cargo build --release && cargo run --release --example checks_bench [CYCLES]
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use pocketses::checks::builtin::{Facts, SnapHealth};
use pocketses::checks::daemon::{
    fleet_state, sink_facts, Checker, Gathered, SnapdView, Sources, SpoolWatch,
};
use pocketses::checks::health::Situation;
use pocketses::config::{Config, Format};
use pocketses::metrics::collect::Collector;
use pocketses::publish::Published;
use pocketses::push::sink::SinkStatus;
use pocketses::spool::{Limits, Spool};

/// Counts this thread's allocations (and reallocations); a thread-local add, nothing more.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call goes to the system allocator as it came; counting touches only a
// thread-local `Cell` with a constant initialiser (no allocation, no destructor).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the struct we own; the clock id is a constant.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(u64::try_from(ts.tv_sec).unwrap_or(0), u32::try_from(ts.tv_nsec).unwrap_or(0))
}

fn median<T: Ord + Copy>(values: &mut [T]) -> T {
    values.sort();
    values[values.len() / 2]
}

/// One cycle's thread CPU and allocations of one part.
#[derive(Default)]
struct Part {
    cpu: Vec<Duration>,
    allocations: Vec<u64>,
}

impl Part {
    fn measure<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let (a, t) = (allocations(), thread_cpu());
        let out = f();
        let (t, a) = (thread_cpu() - t, allocations() - a);
        self.cpu.push(t);
        self.allocations.push(a);
        out
    }

    fn medians(&mut self) -> (Duration, u64) {
        (median(&mut self.cpu), median(&mut self.allocations))
    }
}

fn main() -> anyhow::Result<()> {
    let cycles: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(300);
    // Two sinks with a backlog of an hour of 60 s snapshots each, as a link that is down leaves them.
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("spool");
    let mut collector = Collector::new();
    let record = pocketses::metrics::encode::json::encode(&collector.collect()).into_bytes();
    for sink in ["influx", "vm"] {
        let mut spool = Spool::open(&root.join(sink), Limits::default())?;
        for minute in 0..60u64 {
            let at = UNIX_EPOCH + Duration::from_secs(1_800_000_000 + minute * 60);
            spool.append_batch(&[&record], at)?;
        }
    }
    let started_secs = std::time::SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let started = started_secs as f64;
    // snapd answering, with five other snaps' health.
    let snapd = SnapdView::default();
    snapd.mark_used(started);
    let snaps: Arc<[SnapHealth]> = ["core22", "snapd", "pc", "pc-kernel", "network-manager"]
        .iter()
        .map(|name| SnapHealth {
            name: (*name).into(),
            status: "okay".into(),
            ..Default::default()
        })
        .collect();
    snapd.record(started, true, None, Some(snaps), Vec::new());
    // Two sinks: one delivering, one failing (the `push` check), as the registry holds them.
    let sink = |name: &str, state: &str, error: Option<&str>| SinkStatus {
        name: name.into(),
        format: "influx".into(),
        state: state.into(),
        last_success: Some(started_secs),
        last_error: error.map(String::from),
        pending_records: 60,
        ..SinkStatus::default()
    };
    let sinks = vec![
        sink("influx", "ok", None),
        sink("vm", "failing", Some("cannot connect to http://vm:8428/: connection refused")),
    ];
    // The fleet client after a failed action, its server not answering.
    let fleet = fleet_client(dir.path(), started_secs)?;
    let sources = Sources {
        snapd: &snapd,
        spool_dir: &root,
        sinks: Some(&sinks),
        fleet: Some(&fleet),
        started,
    };
    let config = Config::default();
    let (mut checker, mut gathered) = (Checker::new(), Gathered::default());
    let (mut checker_before, mut spools_before) = (Checker::new(), SpoolWatch::default());
    let (mut base, mut checks, mut before, mut encode) =
        (Part::default(), Part::default(), Part::default(), Part::default());
    let mut n_results = 0;
    for seq in 1..=cycles as u64 {
        let published = base.measure(|| Published::new(seq, collector.collect(), Format::Json));
        let now = pocketses::checks::daemon::now();
        let now_ms = pocketses::spool::millis(std::time::SystemTime::now());
        let mut now_way = |checks: &mut Part| {
            checks.measure(|| {
                let (facts, situation) = gathered.gather(&sources, now, now_ms);
                checker.run(seq, &published.snapshot, facts, situation, &config, now)
            })
        };
        let mut before_way = |before: &mut Part| {
            before.measure(|| {
                // As collect_loop did: `Registry::statuses()` (a copy of every status), then
                // every fact made anew.
                let statuses = sinks.clone();
                let facts = Facts {
                    snapd: snapd.facts(now),
                    spools: spools_before.facts(&root, now_ms),
                    sinks: sink_facts(&statuses, now, started),
                    fleet: fleet_state(&fleet, now, started),
                };
                let situation =
                    Situation { missing_plugs: snapd.missing_plugs(), ..Default::default() };
                checker_before.run(seq, &published.snapshot, &facts, &situation, &config, now)
            })
        };
        let outcome = if seq % 2 == 0 {
            let outcome = now_way(&mut checks);
            std::hint::black_box(before_way(&mut before));
            outcome
        } else {
            std::hint::black_box(before_way(&mut before));
            now_way(&mut checks)
        };
        let (json, sse, prom) =
            encode.measure(|| (outcome.set.json(), outcome.set.sse(), outcome.set.prometheus()));
        n_results = String::from_utf8_lossy(&sse).matches("event: check").count();
        std::hint::black_box((json, prom));
    }
    let (base, base_allocs) = base.medians();
    let (checks, checks_allocs) = checks.medians();
    let (before, before_allocs) = before.medians();
    let (encode, encode_allocs) = encode.medians();
    println!(
        "cycles: {cycles}, check results per cycle: {n_results} (2 spools of 60 records, 2 sinks, 5 snaps, snapd, the fleet client)"
    );
    println!("collect + JSON encode (median thread CPU): {base:?}, {base_allocs} allocations");
    println!("checks on the same snapshot:               {checks:?}, {checks_allocs} allocations");
    println!("  = {:.1} % of collect + encode", checks.as_secs_f64() * 100.0 / base.as_secs_f64());
    println!(
        "  facts gathered as before (copies, made anew): {before:?}, {before_allocs} allocations"
    );
    println!(
        "on first read: /v1/checks + SSE set + /metrics encodings: {encode:?}, {encode_allocs} allocations"
    );
    history(&collector.collect());
    end_to_end(dir.path())
}

/// A fleet client's state as the daemon holds it, from a status file: its server silent, the
/// last action failed.
fn fleet_client(
    dir: &std::path::Path,
    now: u64,
) -> anyhow::Result<pocketses::fleet::daemon::Fleet> {
    use pocketses::fleet::state::{Action, Stage, Status};
    let failed = Action {
        stage: Stage::Failed,
        details: vec!["downloaded".into(), "cannot verify bundle: bad signature".into()],
        ..Action::new("7", "bundle.swu", "1.0", None, now)
    };
    let status = Status {
        server: "https://fleet.example".into(),
        controller_id: "pocketses-bench".into(),
        last_success: Some(now),
        last_error: Some("cannot connect to https://fleet.example/: connection refused".into()),
        history: vec![failed],
        ..Status::default()
    };
    let path = dir.join("fleet-status.json");
    std::fs::write(&path, serde_json::to_string(&status)?)?;
    Ok(pocketses::fleet::daemon::Fleet::new(path))
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

const CHECKS: [&str; 12] = [
    "filesystem",
    "inodes",
    "memory",
    "swap",
    "load",
    "temperature",
    "snapd",
    "snaps",
    "spool",
    "push",
    "fleet",
    "fleet-action",
];

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
