//! Item 1: the CPU cost of one collection, in process, against the floor of the raw reads it cannot avoid.
//!
//! The floor is what any agent reporting the same data has to pay: reading `/proc/stat`,
//! `/proc/meminfo`, `/proc/net/dev` and `/proc/loadavg`, and one `getifaddrs()` call.
//! "Cold" opens, reads to EOF and closes each file every time; "warm" keeps the file open and
//! `pread`s it from offset 0 (the kernel regenerates the text on each read either way).

use std::fs::File;
use std::hint::black_box;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use crate::stats::median;
use crate::sys::thread_cpu;

/// The files of the floor.
pub const FILES: [&str; 4] = ["/proc/stat", "/proc/meminfo", "/proc/net/dev", "/proc/loadavg"];

/// Cost of one operation: the median over repeats of the mean per iteration.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cost {
    /// CPU time of the measuring thread per iteration, µs.
    pub cpu_us: f64,
    /// Wall time per iteration, µs.
    pub wall_us: f64,
}

/// How long and how often to measure.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Iterations per repeat (fewer when `max_repeat_time` runs out first).
    pub iters: u32,
    /// Repeats; the median of their per-iteration means is reported.
    pub repeats: u32,
    /// Upper bound on one repeat's wall time.
    pub max_repeat_time: Duration,
}

/// Runs `op` `plan.repeats` times `plan.iters` times (after a short warm-up) and returns the medians.
pub fn measure(plan: Plan, mut op: impl FnMut()) -> Cost {
    for _ in 0..plan.iters.min(20) {
        op();
    }
    let mut cpu = Vec::new();
    let mut wall = Vec::new();
    for _ in 0..plan.repeats {
        let c0 = thread_cpu();
        let w0 = Instant::now();
        let mut n = 0u32;
        while n < plan.iters && (!n.is_multiple_of(16) || w0.elapsed() < plan.max_repeat_time) {
            op();
            n += 1;
        }
        let n = f64::from(n.max(1));
        cpu.push((thread_cpu() - c0).as_secs_f64() * 1e6 / n);
        wall.push(w0.elapsed().as_secs_f64() * 1e6 / n);
    }
    Cost { cpu_us: median(&cpu), wall_us: median(&wall) }
}

fn read_cold(path: &str, buf: &mut [u8]) -> usize {
    let Ok(mut f) = File::open(path) else { return 0 };
    let mut total = 0;
    while let Ok(k) = f.read(buf) {
        if k == 0 {
            break;
        }
        total += k;
    }
    total
}

fn read_warm(f: &File, buf: &mut [u8]) -> usize {
    let mut total = 0;
    while let Ok(k) = f.read_at(buf, total as u64) {
        if k == 0 {
            break;
        }
        total += k;
    }
    total
}

/// Calls `getifaddrs()` once, walks the list as a collector would, and frees it.
/// Returns the number of entries.
pub fn ifaddrs() -> usize {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` is a valid out-pointer; on success the list is freed below exactly once.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return 0;
    }
    let mut n = 0;
    let mut p = head;
    while !p.is_null() {
        // SAFETY: `p` points into the list returned by getifaddrs, which is still alive.
        let entry = unsafe { &*p };
        if !entry.ifa_addr.is_null() {
            // SAFETY: a non-null ifa_addr points to a sockaddr of the list.
            black_box(unsafe { (*entry.ifa_addr).sa_family });
        }
        n += 1;
        p = entry.ifa_next;
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    n
}

/// Everything item 1 measures.
#[derive(Debug, Default)]
pub struct FloorReport {
    /// Per file: (path, bytes, cold, warm).
    pub files: Vec<(&'static str, usize, Cost, Cost)>,
    /// One `getifaddrs()` and its number of entries.
    pub getifaddrs: (usize, Cost),
    /// The four files cold, then getifaddrs: the floor the target is set against.
    pub floor_cold: Cost,
    /// The four files warm (kept open), then getifaddrs.
    pub floor_warm: Cost,
}

/// Measures the floor.
pub fn floor(plan: Plan) -> FloorReport {
    let mut buf = vec![0u8; 256 * 1024];
    let mut report = FloorReport::default();
    let warm: Vec<Option<File>> = FILES.iter().map(|p| File::open(p).ok()).collect();
    for (path, file) in FILES.iter().zip(&warm) {
        let bytes = read_cold(path, &mut buf);
        let cold = measure(plan, || {
            black_box(read_cold(path, &mut buf));
        });
        let warm_cost = match file {
            Some(f) => measure(plan, || {
                black_box(read_warm(f, &mut buf));
            }),
            None => Cost::default(),
        };
        report.files.push((path, bytes, cold, warm_cost));
    }
    let entries = ifaddrs();
    report.getifaddrs = (
        entries,
        measure(plan, || {
            black_box(ifaddrs());
        }),
    );
    report.floor_cold = measure(plan, || {
        for path in FILES {
            black_box(read_cold(path, &mut buf));
        }
        black_box(ifaddrs());
    });
    report.floor_warm = measure(plan, || {
        for f in warm.iter().flatten() {
            black_box(read_warm(f, &mut buf));
        }
        black_box(ifaddrs());
    });
    report
}
