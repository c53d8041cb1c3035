//! The last hour of a few figures, for the dashboard's charts. \[pure\]
//!
//! Each published snapshot adds one [`Point`]: CPU and memory use, network traffic in and out
//! (every interface but loopback, summed), and the use of up to [`MOUNTS`] filesystems.
//! The ring keeps points no older than [`SPAN`] seconds before the newest, and never more than
//! [`MAX_POINTS`] of them (an hour at the shortest interval, 1 s), so its memory is bounded
//! whatever the interval: at most `MAX_POINTS` × 24 bytes (see [`History::heap_bytes`]): the ring
//! keeps each point as milliseconds after a base time and percentages in tenths (`Stored`), the
//! precision `/v1/history` writes them with.
//!
//! This module keeps and encodes; it does not collect (the collector does) and does not serve
//! (`publish::http` sends [`History::to_json`] as `GET /v1/history`).
//! The dashboard's script computes the same figures from each SSE `snapshot` event, with the
//! same rules ([`Point::of`]), so a chart drawn from the ring and extended live is one series.

use std::collections::VecDeque;
use std::fmt::Write as _;

use crate::metrics::Snapshot;

/// How far back the ring reaches, in seconds.
pub const SPAN: f64 = 3600.0;
/// The most points kept: one hour at one point a second.
pub const MAX_POINTS: usize = 3600;

/// The ring grows by doubling up to this many points (an hour at the default 60 s interval fits),
/// then once to [`MAX_POINTS`].
const GROW_ONCE_FROM: usize = 64;
/// How many filesystems get a series.
pub const MOUNTS: usize = 4;

/// One snapshot's figures; `NAN` where the snapshot had none (written `null`).
///
/// `f32`, not `f64`: a chart needs no more, and the ring is half the size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Seconds since the Unix epoch.
    pub t: f64,
    /// CPU busy, percent of all processors.
    pub cpu: f32,
    /// Memory in use (`total - available`), percent of the total.
    pub memory: f32,
    /// Bytes per second received, all interfaces but loopback.
    pub rx: f32,
    /// Bytes per second sent, all interfaces but loopback.
    pub tx: f32,
    /// Use of each charted filesystem, percent as df's Use% (slot order of [`History::mounts`]).
    pub filesystems: [f32; MOUNTS],
}

/// Filesystems worth a chart line: writable, holding data, not in memory.
pub fn charted(fs_type: &str, read_only: bool) -> bool {
    !read_only && !matches!(fs_type, "squashfs" | "tmpfs" | "devtmpfs" | "ramfs" | "overlay")
}

/// A figure as the ring keeps it.
#[allow(clippy::cast_possible_truncation)] // On purpose: a chart needs no more than f32's 7 digits.
fn narrow(value: f64) -> f32 {
    value as f32
}

fn percent(part: u64, total: u64) -> f32 {
    if total == 0 {
        f32::NAN
    } else {
        narrow(part as f64 / total as f64 * 100.0)
    }
}

impl Point {
    /// The figures of `snapshot`, with filesystems placed in the slots of `mounts`.
    pub fn of(snapshot: &Snapshot, mounts: &[String]) -> Point {
        let cpu = snapshot.cpu.as_ref().map_or(f32::NAN, |c| narrow(c.utilisation));
        let memory = snapshot.memory.as_ref().map_or(f32::NAN, |m| percent(m.used, m.total));
        let (mut rx, mut tx, mut rated) = (0.0, 0.0, false);
        for iface in snapshot.network.iter().filter(|i| i.name != "lo") {
            if let (Some(r), Some(t)) = (&iface.rx_rate, &iface.tx_rate) {
                rx += r.bytes;
                tx += t.bytes;
                rated = true;
            }
        }
        let (rx, tx) = if rated { (narrow(rx), narrow(tx)) } else { (f32::NAN, f32::NAN) };
        let mut filesystems = [f32::NAN; MOUNTS];
        for (slot, mount) in filesystems.iter_mut().zip(mounts) {
            let fs = snapshot.filesystems.iter().find(|fs| &fs.mount_point == mount);
            if let Some(usage) = fs.and_then(|fs| fs.usage) {
                *slot = percent(usage.used, usage.used.saturating_add(usage.available));
            }
        }
        Point { t: snapshot.timestamp, cpu, memory, rx, tx, filesystems }
    }
}

/// A [`Point`] as the ring keeps it: 24 bytes instead of 40, which is 58 kB less for a full
/// hour at a 1 s interval.
#[derive(Debug, Clone, Copy)]
struct Stored {
    /// Milliseconds after [`History::base`].
    ms: u32,
    /// Percentages in tenths, [`NO_TENTHS`] for none.
    cpu: u16,
    memory: u16,
    filesystems: [u16; MOUNTS],
    rx: f32,
    tx: f32,
}

/// A missing percentage in [`Stored`].
const NO_TENTHS: u16 = u16::MAX;

/// A percentage in tenths, as `/v1/history` writes it (one decimal).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // Clamped to u16's range first.
fn tenths(value: f32) -> u16 {
    if value.is_finite() {
        (f64::from(value) * 10.0).round().clamp(0.0, f64::from(NO_TENTHS - 1)) as u16
    } else {
        NO_TENTHS
    }
}

fn from_tenths(value: u16) -> f32 {
    if value == NO_TENTHS {
        f32::NAN
    } else {
        f32::from(value) / 10.0
    }
}

/// Rebase when the newest point is this many milliseconds after the base (about 24 days).
const REBASE_MS: f64 = (u32::MAX / 2) as f64;

/// The ring of [`Point`]s and the names of the charted filesystems.
#[derive(Debug, Default)]
pub struct History {
    points: VecDeque<Stored>,
    /// Seconds since the Unix epoch that the points' milliseconds count from: a whole second at
    /// or before the oldest point.
    base: f64,
    mounts: Vec<String>,
}

impl History {
    /// Adds the figures of `snapshot`, forgetting what is older than [`SPAN`] or beyond [`MAX_POINTS`].
    ///
    /// The first filesystems seen (up to [`MOUNTS`], one per device, so the bind mounts of
    /// Ubuntu Core's writable partition count once) keep their slot for the life of the daemon.
    pub fn push(&mut self, snapshot: &Snapshot) {
        self.learn_mounts(snapshot);
        let point = Point::of(snapshot, &self.mounts);
        self.push_point(point);
    }

    /// Fills the ring as `n` snapshots like `snapshot`, one every `step` seconds and the last
    /// `step` seconds before it, would have: the ring's size after `n` cycles, without waiting
    /// for them (`POCKETSES_BENCH_HISTORY`, for the benchmark's steady-state memory).
    pub fn prefill(&mut self, snapshot: &Snapshot, n: usize, step: f64) {
        self.learn_mounts(snapshot);
        let point = Point::of(snapshot, &self.mounts);
        for i in (1..=n).rev() {
            self.push_point(Point { t: point.t - i as f64 * step, ..point });
        }
    }

    /// Whether the ring holds no point.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Gives the first filesystems seen their slots.
    fn learn_mounts(&mut self, snapshot: &Snapshot) {
        if self.mounts.len() < MOUNTS {
            let mut devices: Vec<&str> = self
                .mounts
                .iter()
                .filter_map(|m| snapshot.filesystems.iter().find(|fs| &fs.mount_point == m))
                .map(|fs| fs.device.as_str())
                .collect();
            for fs in &snapshot.filesystems {
                if self.mounts.len() >= MOUNTS {
                    break;
                }
                if charted(&fs.fs_type, fs.read_only)
                    && fs.usage.is_some()
                    && !devices.contains(&fs.device.as_str())
                    && !self.mounts.contains(&fs.mount_point)
                {
                    devices.push(&fs.device);
                    self.mounts.push(fs.mount_point.clone());
                }
            }
        }
    }

    /// Adds `point`, forgetting what is older than [`SPAN`] before it or beyond [`MAX_POINTS`].
    fn push_point(&mut self, point: Point) {
        // A clock set back would otherwise leave older points after newer ones.
        while self.points.back().is_some_and(|p| self.time(p) > point.t) {
            self.points.pop_back();
        }
        while self.points.len() >= MAX_POINTS
            || self.points.front().is_some_and(|p| self.time(p) < point.t - SPAN)
        {
            self.points.pop_front();
        }
        let oldest = self.points.front().map_or(point.t, |p| self.time(p));
        if self.points.is_empty() || (point.t - self.base) * 1000.0 > REBASE_MS {
            self.rebase(oldest.floor());
        }
        let stored = self.store(&point);
        if self.points.len() == self.points.capacity() && self.points.len() >= GROW_ONCE_FROM {
            // Past an hour at the default interval, straight to the bound: growing by doubling
            // would leave the freed smaller buffers (up to 48 kB) resident in the heap, and a ring
            // of 4,096 where 3,600 are kept. The reservation's pages become resident as points
            // reach them.
            self.points.reserve_exact(MAX_POINTS - self.points.len());
        }
        self.points.push_back(stored);
    }

    /// Counts the points' milliseconds from `base` (at or before the oldest point) from now on.
    fn rebase(&mut self, base: f64) {
        let times: Vec<f64> = self.points.iter().map(|p| self.time(p)).collect();
        self.base = base;
        for (p, t) in self.points.iter_mut().zip(times) {
            p.ms = Self::millis(t - base);
        }
    }

    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // Clamped to u32's range.
    fn millis(seconds: f64) -> u32 {
        (seconds * 1000.0).round().clamp(0.0, f64::from(u32::MAX)) as u32
    }

    fn time(&self, p: &Stored) -> f64 {
        self.base + f64::from(p.ms) / 1000.0
    }

    fn store(&self, p: &Point) -> Stored {
        Stored {
            ms: Self::millis(p.t - self.base),
            cpu: tenths(p.cpu),
            memory: tenths(p.memory),
            filesystems: p.filesystems.map(tenths),
            rx: p.rx,
            tx: p.tx,
        }
    }

    fn load(&self, p: &Stored) -> Point {
        Point {
            t: self.time(p),
            cpu: from_tenths(p.cpu),
            memory: from_tenths(p.memory),
            rx: p.rx,
            tx: p.tx,
            filesystems: p.filesystems.map(from_tenths),
        }
    }

    /// The points, oldest first, as kept: times to the millisecond, percentages to a tenth.
    pub fn points(&self) -> impl Iterator<Item = Point> + '_ {
        self.points.iter().map(|p| self.load(p))
    }

    /// The charted filesystems, in slot order.
    pub fn mounts(&self) -> &[String] {
        &self.mounts
    }

    /// Memory the ring holds on the heap: its capacity in points, not its length.
    pub fn heap_bytes(&self) -> usize {
        self.points.capacity() * std::mem::size_of::<Stored>()
            + self
                .mounts
                .iter()
                .map(|m| m.capacity() + std::mem::size_of::<String>())
                .sum::<usize>()
    }

    /// `GET /v1/history`: one array per series, as a chart library takes them.
    ///
    /// `{"schema":"pocketses.history/v1","span_seconds":3600,"mounts":[…],"t":[…],"cpu":[…],
    /// "memory":[…],"rx":[…],"tx":[…],"filesystems":[[…],…]}`; missing figures are `null`.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(64 + self.points.len() * 64);
        out.push_str("{\"schema\":\"pocketses.history/v1\",\"span_seconds\":3600,\"mounts\":");
        out.push_str(&serde_json::Value::from(self.mounts.clone()).to_string());
        out.push_str(",\"t\":[");
        join(&mut out, self.points().map(|p| p.t), 3);
        let series: [Series; 4] = [
            ("cpu", |p| p.cpu, 1),
            ("memory", |p| p.memory, 1),
            ("rx", |p| p.rx, 0),
            ("tx", |p| p.tx, 0),
        ];
        for (name, get, decimals) in series {
            let _ = write!(out, "],\"{name}\":[");
            join(&mut out, self.points().map(|p| f64::from(get(&p))), decimals);
        }
        out.push_str("],\"filesystems\":[");
        for slot in 0..self.mounts.len() {
            if slot > 0 {
                out.push(',');
            }
            out.push('[');
            join(&mut out, self.points().map(|p| f64::from(p.filesystems[slot])), 1);
            out.push(']');
        }
        out.push_str("]}");
        out
    }
}

/// A series of the JSON: its name, its figure in a point, its decimals.
type Series = (&'static str, fn(&Point) -> f32, usize);

/// Writes `values` comma-separated with at most `decimals` decimals; non-finite ones as `null`.
fn join(out: &mut String, values: impl Iterator<Item = f64>, decimals: usize) {
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push(',');
        }
        if v.is_finite() {
            let start = out.len();
            let _ = write!(out, "{v:.decimals$}");
            // 12.50 → 12.5, 3.000 → 3: fewer bytes, same number.
            if decimals > 0 {
                let trimmed = out[start..].trim_end_matches('0').trim_end_matches('.').len();
                out.truncate(start + trimmed);
            }
            if &out[start..] == "-0" {
                out.truncate(start);
                out.push('0');
            }
        } else {
            out.push_str("null");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Filesystem, FsUsage, Interface, Memory, NetRates, Snapshot};

    fn fs(mount: &str, device: &str, fs_type: &str, used: u64, available: u64) -> Filesystem {
        Filesystem {
            mount_point: mount.to_string(),
            device: device.to_string(),
            fs_type: fs_type.to_string(),
            read_only: false,
            usage: Some(FsUsage { total: used + available, used, available, ..FsUsage::default() }),
        }
    }

    fn snapshot(t: f64) -> Snapshot {
        let rate = |bytes| Some(NetRates { bytes, ..NetRates::default() });
        Snapshot {
            timestamp: t,
            memory: Some(Memory { total: 200, used: 50, ..Memory::default() }),
            network: vec![
                Interface {
                    name: "lo".into(),
                    rx_rate: rate(1e9),
                    tx_rate: rate(1e9),
                    ..Interface::default()
                },
                Interface {
                    name: "eth0".into(),
                    rx_rate: rate(100.0),
                    tx_rate: rate(10.0),
                    ..Interface::default()
                },
                Interface {
                    name: "wlan0".into(),
                    rx_rate: rate(1.0),
                    tx_rate: rate(2.0),
                    ..Interface::default()
                },
            ],
            filesystems: vec![
                fs("/writable", "/dev/sda5", "ext4", 30, 70),
                fs("/var/lib/snapd", "/dev/sda5", "ext4", 30, 70),
                fs("/run", "tmpfs", "tmpfs", 1, 1),
                fs("/boot", "/dev/sda1", "vfat", 3, 1),
            ],
            ..Snapshot::default()
        }
    }

    #[test]
    fn a_point_sums_interfaces_but_loopback_and_charts_one_mount_per_device() {
        let mut history = History::default();
        history.push(&snapshot(10.0));
        assert_eq!(history.mounts(), ["/writable", "/boot"]);
        let p = history.points().next().unwrap();
        assert_eq!((p.memory, p.rx, p.tx), (25.0, 101.0, 12.0));
        assert!(p.cpu.is_nan());
        assert_eq!(p.filesystems[..2], [30.0, 75.0]);
        assert!(p.filesystems[2].is_nan());
    }

    #[test]
    fn the_ring_keeps_an_hour_and_at_most_max_points() {
        let mut history = History::default();
        for t in 0..5000 {
            history.push(&snapshot(f64::from(t)));
        }
        assert_eq!(history.points().count(), MAX_POINTS);
        assert_eq!(history.points().next().unwrap().t, 5000.0 - MAX_POINTS as f64);
        // At one point a minute, an hour is 61 points (both ends included).
        let mut history = History::default();
        for t in 0..200 {
            history.push(&snapshot(f64::from(t) * 60.0));
        }
        assert_eq!(history.points().count(), 61);
        assert_eq!(history.points.capacity(), GROW_ONCE_FROM);
        // The bound said in docs/dashboard.md: 3600 points of 24 bytes, reserved once.
        assert_eq!(std::mem::size_of::<Stored>(), 24);
        let mut full = History::default();
        for t in 0..MAX_POINTS * 3 {
            full.push(&snapshot(t as f64));
        }
        assert!(full.heap_bytes() <= MAX_POINTS * 24 + 1024, "{}", full.heap_bytes());
        // Grown once past GROW_ONCE_FROM, to the bound exactly, not to the next power of two.
        assert_eq!(full.points.capacity(), MAX_POINTS);
    }

    #[test]
    fn a_prefilled_ring_is_the_ring_of_as_many_cycles() {
        let mut cycles = History::default();
        for t in 1000..1000 + MAX_POINTS + 10 {
            cycles.push(&snapshot(t as f64));
        }
        let mut filled = History::default();
        let last = (1000 + MAX_POINTS + 9) as f64;
        filled.prefill(&snapshot(last), MAX_POINTS + 9, 1.0);
        filled.push(&snapshot(last));
        assert_eq!(filled.points().count(), MAX_POINTS);
        assert_eq!(filled.heap_bytes(), cycles.heap_bytes());
        // cpu is NaN in these snapshots: compare the other figures.
        let figures = |h: &History| -> Vec<(f64, f32, f32, f32)> {
            h.points().map(|p| (p.t, p.memory, p.rx, p.filesystems[1])).collect()
        };
        assert_eq!(figures(&filled), figures(&cycles));
        assert_eq!(filled.mounts(), cycles.mounts());
        // Fewer than an hour's worth: that many, one second apart, ending before the snapshot.
        let mut some = History::default();
        some.prefill(&snapshot(100.0), 3, 1.0);
        let ts: Vec<f64> = some.points().map(|p| p.t).collect();
        assert_eq!(ts, [97.0, 98.0, 99.0]);
    }

    #[test]
    fn points_keep_milliseconds_and_tenths_for_weeks() {
        let mut history = History::default();
        // 40 days at one point a minute: the milliseconds outgrow half of u32 after about 24.
        let minutes = 40 * 24 * 60;
        for i in 0..minutes {
            let mut s = snapshot(1_764_000_000.0 + f64::from(i) * 60.0 + 0.125);
            s.memory = Some(Memory { total: 3, used: 1, ..Memory::default() });
            history.push(&s);
        }
        let ts: Vec<f64> = history.points().map(|p| p.t).collect();
        let last = 1_764_000_000.0 + f64::from(minutes - 1) * 60.0 + 0.125;
        let want: Vec<f64> = (0..61).rev().map(|k| last - f64::from(k) * 60.0).collect();
        assert_eq!(ts, want);
        let p = history.points().last().unwrap();
        assert_eq!(p.memory, 33.3, "a third, to a tenth");
        assert!(p.cpu.is_nan(), "no figure stays no figure");
        assert_eq!((p.rx, p.tx), (101.0, 12.0), "rates as they were");
    }

    #[test]
    fn a_clock_set_back_drops_the_points_from_the_future() {
        let mut history = History::default();
        for t in [100.0, 101.0, 102.0, 50.0] {
            history.push(&snapshot(t));
        }
        let ts: Vec<f64> = history.points().map(|p| p.t).collect();
        assert_eq!(ts, [50.0]);
    }

    #[test]
    fn json_is_columns_with_nulls() {
        let mut history = History::default();
        history.push(&snapshot(1.5));
        let mut s = snapshot(2.0);
        s.network.clear();
        history.push(&s);
        let json = history.to_json();
        assert_eq!(
            json,
            r#"{"schema":"pocketses.history/v1","span_seconds":3600,"mounts":["/writable","/boot"],"t":[1.5,2],"cpu":[null,null],"memory":[25,25],"rx":[101,null],"tx":[12,null],"filesystems":[[30,30],[75,75]]}"#
        );
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["t"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn numbers_are_short() {
        let mut out = String::new();
        join(&mut out, [12.5, 3.0, -0.0001, 100.0, 0.05].into_iter(), 1);
        assert_eq!(out, "12.5,3,0,100,0.1");
    }
}
