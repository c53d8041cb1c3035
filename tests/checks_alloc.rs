//! What the daemon's checks allocate per cycle, counted by a global allocator (issue 12: the
//! checks' share of a cycle's CPU). Gathering facts that did not change allocates nothing: the
//! sinks' and the fleet client's statuses are read in place, the spools are read from disk once
//! a minute, and texts are kept from run to run. A run of the checks allocates only what it
//! publishes: the list of results and the shared set that holds it.

#![allow(clippy::unwrap_used)] // Helpers outside #[test] functions: a failed unwrap is a failed test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use pocketses::checks::builtin::SnapHealth;
use pocketses::checks::daemon::{Checker, Gathered, SnapdView, Sources};
use pocketses::push::sink::SinkStatus;

/// Counts the allocations (and reallocations) of the thread that makes them.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: a thread being torn down has no counter any more, and needs none.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is passed to the system allocator as it came; counting touches only a
// thread-local `Cell` with a constant initialiser (no allocation, no destructor).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
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

/// `f`'s result and the allocations it made on this thread.
fn allocations<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    (out, ALLOCATIONS.with(Cell::get) - before)
}

/// Everything the daemon's checks read, as a device with two sinks (one failing), a spool
/// with a backlog, the fleet client after a failed action, snapd answering with a plug
/// missing and five other snaps' health.
struct Device {
    _dir: tempfile::TempDir,
    spool_dir: std::path::PathBuf,
    snapd: SnapdView,
    sinks: Vec<SinkStatus>,
    fleet: pocketses::fleet::daemon::Fleet,
}

const T0: u64 = 1_800_000_000;

fn device() -> Device {
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().join("spool");
    let mut spool =
        pocketses::spool::Spool::open(&spool_dir.join("vm"), pocketses::spool::Limits::default())
            .unwrap();
    for minute in 0..10 {
        spool
            .append_batch(&[b"record"], UNIX_EPOCH + Duration::from_secs(T0 + minute * 60))
            .unwrap();
    }
    let snapd = SnapdView::default();
    snapd.mark_used(T0 as f64);
    let snaps: Arc<[SnapHealth]> = ["core22", "snapd", "pc", "pc-kernel", "network-manager"]
        .iter()
        .map(|name| SnapHealth {
            name: (*name).into(),
            status: "okay".into(),
            ..Default::default()
        })
        .collect();
    snapd.record(T0 as f64, true, None, Some(snaps), vec!["mount-observe".into()]);
    let sink = |name: &str, state: &str, error: Option<&str>| SinkStatus {
        name: name.into(),
        state: state.into(),
        last_success: Some(T0),
        last_error: error.map(String::from),
        ..SinkStatus::default()
    };
    let sinks = vec![
        sink("influx", "ok", None),
        sink("vm", "failing", Some("cannot connect to http://vm:8428/: connection refused")),
    ];
    let fleet_status = dir.path().join("fleet-status.json");
    use pocketses::fleet::state::{Action, Stage, Status};
    let failed = Action {
        stage: Stage::Failed,
        details: vec!["downloaded".into(), "cannot verify bundle: bad signature".into()],
        ..Action::new("7", "bundle.swu", "1.0", None, T0)
    };
    let status = Status {
        server: "https://fleet.example".into(),
        controller_id: "c1".into(),
        last_success: Some(T0),
        last_error: Some("cannot connect to https://fleet.example/: connection refused".into()),
        history: vec![failed],
        ..Status::default()
    };
    std::fs::write(&fleet_status, serde_json::to_string(&status).unwrap()).unwrap();
    let fleet = pocketses::fleet::daemon::Fleet::new(fleet_status);
    Device { _dir: dir, spool_dir, snapd, sinks, fleet }
}

impl Device {
    fn sources(&self) -> Sources<'_> {
        Sources {
            snapd: &self.snapd,
            spool_dir: &self.spool_dir,
            sinks: Some(&self.sinks),
            fleet: Some(&self.fleet),
            started: T0 as f64,
        }
    }
}

#[test]
fn gathering_facts_that_did_not_change_allocates_nothing() {
    let device = device();
    let sources = device.sources();
    let mut gathered = Gathered::default();
    let now = |i: u64| ((T0 + 600 + i) as f64, (T0 + 600 + i) * 1000);
    let (t, ms) = now(0);
    let (facts, situation) = gathered.gather(&sources, t, ms);
    // Every source is there: the counts below are of real work.
    assert_eq!(facts.sinks.len(), 2);
    assert_eq!(facts.spools.len(), 1);
    assert!(facts.spools[0].oldest_pending_seconds.is_some());
    assert_eq!(facts.snapd.as_ref().and_then(|s| s.snaps.as_ref()).map(|s| s.len()), Some(5));
    let fleet = facts.fleet.as_ref().unwrap();
    assert!(fleet.error.is_some() && fleet.last_action.as_ref().unwrap().detail.is_some());
    assert_eq!(situation.missing_plugs, ["mount-observe"]);
    for i in 1..30 {
        let (t, ms) = now(i);
        let (silent, n) = allocations(|| {
            let (facts, _) = gathered.gather(&sources, t, ms);
            facts.sinks[1].failing_for
        });
        assert_eq!(silent, 600.0 + i as f64);
        assert_eq!(n, 0, "run {i}: {n} allocations");
    }
}

#[test]
fn a_run_of_the_checks_allocates_only_what_it_publishes() {
    let device = device();
    let sources = device.sources();
    let mut gathered = Gathered::default();
    let mut checker = Checker::new();
    // One check always CRIT (memory available below 101 %), so the health has words to make.
    let settings: Vec<(String, serde_json::Value)> =
        ["checks.memory.crit=101:", "checks.memory.failures-before-critical=1"]
            .iter()
            .map(|s| pocketses::config::parse_setting(s).unwrap())
            .collect();
    let config = pocketses::config::load(&serde_json::Value::Null, &settings).unwrap().config;
    // One snapshot for every run: the same values, so no state changes from run to run.
    let snapshot = pocketses::metrics::collect::Collector::new().collect();
    let mut results = 0;
    for i in 0..40u64 {
        let t = (T0 + 600 + i) as f64;
        let (outcome, n) = allocations(|| {
            let (facts, situation) = gathered.gather(&sources, t, (T0 + 600 + i) * 1000);
            checker.run(i + 1, &snapshot, facts, situation, &config, t)
        });
        // The first runs make the names, the trackers and their histories; then nothing changes.
        assert_eq!(outcome.health.code, "memory-critical");
        if i >= 20 {
            assert!(outcome.changes.is_none() && outcome.transitions.is_empty(), "run {i}");
            // The results' list and the `Arc` of the set that holds it.
            assert!(n <= 2, "run {i}: {n} allocations for {results} results");
        }
        results = outcome.set.results.len();
    }
    // The host's own checks and the facts': 2 sinks, 1 spool, 5 snaps, snapd, the fleet's two.
    assert!(results >= 11, "{results}");
}
