//! Reads the host's state on demand. \[io\]
//!
//! `Collector` keeps the hot files (/proc/stat, meminfo, net/dev, loadavg, uptime, cpufreq,
//! cpuinfo, sensors, /proc/self/stat) open and re-reads them with pread(2) at offset 0, which
//! saves the open/close of every cycle; parsing is done by the pure functions of
//! [`super::proc`] into buffers that are reused from cycle to cycle.
//! The mount table is parsed again only when the kernel signals a change on
//! /proc/self/mountinfo (poll(2) with `POLLPRI`), while statvfs(3) runs every cycle.
//! statvfs(3) of a filesystem that can hang (network, FUSE: [`proc::may_hang`]) runs on a
//! short-lived thread with a deadline ([`STATVFS_TIMEOUT`]); one that misses it is left out
//! until that call returns, so a dead NFS server never stalls the collection.
//! Sensors are discovered once, when the collector is created.
//!
//! Nothing here sleeps, and nothing fails a collection as a whole: a source that cannot be
//! read is absent from the snapshot. What this module does not do: decide formats (that is
//! `encode`) or schedule collections (that is the daemon's loop).

use std::ffi::CStr;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::proc::{self, Mount, NetDev, Stat, USER_HZ};
use super::{
    Address, Core, Cpu, CpuTimes, Filesystem, Frequency, FrequencySource, FsUsage, Interface,
    MeminfoField, Memory, NetRates, Process, SensorKind, Snapshot, Swap, Temperature, Uname,
};

/// A file kept open and re-read from offset 0 on every cycle.
#[derive(Debug)]
struct ProcFile {
    path: PathBuf,
    file: Option<File>,
    buf: Vec<u8>,
}

impl ProcFile {
    fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let file = File::open(&path).ok();
        ProcFile { path, file, buf: Vec::with_capacity(4096) }
    }

    /// The file's whole content, or `None` when it cannot be opened or read.
    /// A file that could not be opened is tried again on the next call.
    fn read(&mut self) -> Option<&str> {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        let file = self.file.as_ref()?;
        self.buf.clear();
        loop {
            if self.buf.capacity() - self.buf.len() < 1024 {
                self.buf.reserve(self.buf.capacity().max(4096));
            }
            let len = self.buf.len();
            let cap = self.buf.capacity();
            self.buf.resize(cap, 0);
            match file.read_at(&mut self.buf[len..], len as u64) {
                Ok(0) => {
                    self.buf.truncate(len);
                    break;
                }
                Ok(n) => self.buf.truncate(len + n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => self.buf.truncate(len),
                Err(_) => {
                    // Some sysfs attributes refuse reads for good (`duplex` of a virtual
                    // device); keep the descriptor, since reopening would cost more.
                    self.buf.clear();
                    return None;
                }
            }
        }
        std::str::from_utf8(&self.buf).ok()
    }
}

/// Open files of one processor's cpufreq directory.
#[derive(Debug)]
struct CpufreqFiles {
    id: u32,
    cur: ProcFile,
    min: ProcFile,
    max: ProcFile,
}

/// Open sysfs attributes of one network interface.
///
/// `duplex` and `ifalias` rarely change, so they are read when the interface appears and again
/// only when its operstate changes (a renegotiated link goes down and up) or every
/// [`LINK_REFRESH_CYCLES`] collections.
#[derive(Debug)]
struct NetClassFiles {
    name: String,
    operstate: ProcFile,
    duplex: ProcFile,
    ifalias: ProcFile,
    /// What the last full read saw: (operstate, duplex, ifalias).
    last: Option<(Option<String>, Option<String>, Option<String>)>,
    cycles_since_full_read: u32,
}

/// How many collections may reuse an interface's `duplex` and `ifalias`.
const LINK_REFRESH_CYCLES: u32 = 60;

/// One temperature source found at start.
#[derive(Debug)]
struct Sensor {
    kind: SensorKind,
    chip: String,
    sensor: String,
    label: Option<String>,
    file: ProcFile,
}

/// What the previous cycle saw, for utilisation and rates.
#[derive(Debug, Default)]
struct Previous {
    at: Option<Instant>,
    total: CpuTimes,
    cores: Vec<(u32, CpuTimes)>,
    net: Vec<NetDev>,
}

/// Keeps what a collection needs between cycles (previous counters for rates, open files).
#[derive(Debug)]
pub struct Collector {
    stat: ProcFile,
    meminfo: ProcFile,
    net_dev: ProcFile,
    loadavg: ProcFile,
    uptime: ProcFile,
    cpuinfo: ProcFile,
    self_stat: ProcFile,
    mountinfo: ProcFile,
    cpufreq: Vec<CpufreqFiles>,
    /// Whether any cpufreq directory exists; when not, /proc/cpuinfo gives the current frequency.
    has_cpufreq: bool,
    sensors: Vec<Sensor>,
    sysfs: PathBuf,
    net_class: Vec<NetClassFiles>,
    mounts: Vec<Mount>,
    mounts_stale: bool,
    guarded: GuardedStat,
    stat_buf: Stat,
    meminfo_buf: Vec<MeminfoField>,
    net_buf: Vec<NetDev>,
    prev: Previous,
    page_size: u64,
}

impl Default for Collector {
    fn default() -> Self {
        Self::new()
    }
}

impl Collector {
    /// A collector with no history: the first snapshot has no rates, and its utilisation is
    /// the average since boot.
    pub fn new() -> Self {
        Self::with_sysfs(Path::new("/sys"))
    }

    /// A collector that looks for cpufreq and sensors under `sysfs` instead of `/sys`
    /// (for tests; /proc is always the real one).
    pub fn with_sysfs(sysfs: &Path) -> Self {
        let stat = ProcFile::new("/proc/stat");
        let mut collector = Collector {
            stat,
            meminfo: ProcFile::new("/proc/meminfo"),
            net_dev: ProcFile::new("/proc/net/dev"),
            loadavg: ProcFile::new("/proc/loadavg"),
            uptime: ProcFile::new("/proc/uptime"),
            cpuinfo: ProcFile::new("/proc/cpuinfo"),
            self_stat: ProcFile::new("/proc/self/stat"),
            mountinfo: ProcFile::new("/proc/self/mountinfo"),
            cpufreq: Vec::new(),
            has_cpufreq: false,
            sensors: discover_sensors(sysfs),
            sysfs: sysfs.to_path_buf(),
            net_class: Vec::new(),
            mounts: Vec::new(),
            mounts_stale: true,
            guarded: GuardedStat::new(statvfs, STATVFS_TIMEOUT),
            stat_buf: Stat::default(),
            meminfo_buf: Vec::new(),
            net_buf: Vec::new(),
            prev: Previous::default(),
            page_size: page_size(),
        };
        let ids: Vec<u32> = collector
            .stat
            .read()
            .map(proc::stat)
            .map(|s| s.cores.iter().map(|c| c.0).collect())
            .unwrap_or_default();
        for id in ids {
            let dir = sysfs.join(format!("devices/system/cpu/cpu{id}/cpufreq"));
            if dir.is_dir() {
                collector.has_cpufreq = true;
                collector.cpufreq.push(CpufreqFiles {
                    id,
                    cur: ProcFile::new(dir.join("scaling_cur_freq")),
                    min: ProcFile::new(dir.join("scaling_min_freq")),
                    max: ProcFile::new(dir.join("scaling_max_freq")),
                });
            }
        }
        collector
    }

    /// Collects one snapshot. Never fails as a whole: a source that cannot be read is left out.
    pub fn collect(&mut self) -> Snapshot {
        let now = Instant::now();
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        let interval = self.prev.at.map(|at| now.duration_since(at).as_secs_f64());
        let uname = uname();
        let hostname = uname.as_ref().map(|u| u.nodename.clone()).unwrap_or_default();

        let (cpu, boot_time) = self.cpu();
        let memory = self.memory();
        let network = self.network(interval);
        let load = self.loadavg.read().and_then(proc::loadavg);
        let uptime = self.uptime.read().and_then(proc::uptime);
        let filesystems = self.filesystems();
        let temperatures = self.temperatures();
        let process = self.process(boot_time);
        self.prev.at = Some(now);

        Snapshot {
            timestamp,
            hostname,
            interval,
            cpu,
            memory,
            network,
            load,
            uptime,
            boot_time,
            filesystems,
            temperatures,
            uname,
            process,
        }
    }

    fn cpu(&mut self) -> (Option<Cpu>, Option<u64>) {
        let Some(text) = self.stat.read() else { return (None, None) };
        proc::stat_into(text, &mut self.stat_buf);
        let stat = &self.stat_buf;
        if stat.cores.is_empty() {
            return (None, stat.boot_time);
        }
        let first = self.prev.at.is_none();
        let zero = CpuTimes::default();
        let prev_total = if first { &zero } else { &self.prev.total };
        let utilisation = stat.total.utilisation_since(prev_total);

        let mut cores: Vec<Core> = Vec::with_capacity(stat.cores.len());
        for (i, (id, times)) in stat.cores.iter().enumerate() {
            let prev = if first {
                &zero
            } else {
                match self.prev.cores.get(i) {
                    Some((pid, t)) if pid == id => t,
                    _ => self
                        .prev
                        .cores
                        .iter()
                        .find(|(pid, _)| pid == id)
                        .map(|(_, t)| t)
                        .unwrap_or(&zero),
                }
            };
            cores.push(Core {
                id: *id,
                times: *times,
                utilisation: times.utilisation_since(prev),
                frequency: Frequency::default(),
            });
        }
        self.prev.total = stat.total;
        self.prev.cores.clone_from(&stat.cores);

        if self.has_cpufreq {
            for files in &mut self.cpufreq {
                let Some(core) = cores.iter_mut().find(|c| c.id == files.id) else { continue };
                let khz = |f: &mut ProcFile| {
                    f.read().and_then(|t| proc::parse_u64(t.trim())).map(|k| k as f64 * 1000.0)
                };
                core.frequency = Frequency {
                    current: khz(&mut files.cur),
                    min: khz(&mut files.min),
                    max: khz(&mut files.max),
                    source: FrequencySource::Cpufreq,
                };
            }
        } else if let Some(text) = self.cpuinfo.read() {
            for (id, hz) in proc::cpuinfo_hz(text) {
                if let Some(core) = cores.iter_mut().find(|c| c.id == id) {
                    core.frequency = Frequency {
                        current: Some(hz),
                        min: None,
                        max: None,
                        source: FrequencySource::Cpuinfo,
                    };
                }
            }
        }
        let cpu = Cpu { count: cores.len(), times: stat.total, utilisation, cores };
        (Some(cpu), stat.boot_time)
    }

    fn memory(&mut self) -> Option<Memory> {
        let text = self.meminfo.read()?;
        proc::meminfo_into(text, &mut self.meminfo_buf);
        let fields = &self.meminfo_buf;
        let get = |name| proc::meminfo_get(fields, name);
        let total = get("MemTotal")?;
        let free = get("MemFree").unwrap_or(0);
        // Kernels before 3.14 have no MemAvailable; free + page cache + buffers is the usual estimate.
        let available = get("MemAvailable").unwrap_or_else(|| {
            free + get("Cached").unwrap_or(0)
                + get("Buffers").unwrap_or(0)
                + get("SReclaimable").unwrap_or(0)
        });
        let swap_total = get("SwapTotal").unwrap_or(0);
        let swap_free = get("SwapFree").unwrap_or(0);
        Some(Memory {
            total,
            available,
            free,
            used: total.saturating_sub(available),
            swap: Swap {
                total: swap_total,
                free: swap_free,
                used: swap_total.saturating_sub(swap_free),
            },
            fields: fields.clone(),
        })
    }

    fn network(&mut self, interval: Option<f64>) -> Vec<Interface> {
        let mut out: Vec<Interface> = Vec::new();
        if let Some(text) = self.net_dev.read() {
            proc::net_dev_into(text, &mut self.net_buf);
            for (i, dev) in self.net_buf.iter().enumerate() {
                let prev = match self.prev.net.get(i) {
                    Some(p) if p.name == dev.name => Some(p),
                    _ => self.prev.net.iter().find(|p| p.name == dev.name),
                };
                let (rx_rate, tx_rate) = match (prev, interval) {
                    (Some(p), Some(secs)) => (
                        NetRates::between(&p.rx, &dev.rx, secs),
                        NetRates::between(&p.tx, &dev.tx, secs),
                    ),
                    _ => (None, None),
                };
                out.push(Interface {
                    name: dev.name.clone(),
                    has_counters: true,
                    rx: dev.rx,
                    tx: dev.tx,
                    rx_rate,
                    tx_rate,
                    addresses: Vec::new(),
                    link: Default::default(),
                });
            }
            self.prev.net.clone_from(&self.net_buf);
        }
        interface_addresses(&mut out);
        self.net_class.retain(|f| out.iter().any(|i| i.name == f.name));
        for iface in &mut out {
            let files = match self.net_class.iter().position(|f| f.name == iface.name) {
                Some(i) => &mut self.net_class[i],
                None => {
                    let dir = self.sysfs.join("class/net").join(&iface.name);
                    self.net_class.push(NetClassFiles {
                        name: iface.name.clone(),
                        operstate: ProcFile::new(dir.join("operstate")),
                        duplex: ProcFile::new(dir.join("duplex")),
                        ifalias: ProcFile::new(dir.join("ifalias")),
                        last: None,
                        cycles_since_full_read: 0,
                    });
                    let last = self.net_class.len() - 1;
                    &mut self.net_class[last]
                }
            };
            let attr = |f: &mut ProcFile| f.read().map(|t| t.trim_end_matches('\n').to_string());
            let operstate = attr(&mut files.operstate);
            files.cycles_since_full_read += 1;
            let (duplex, ifalias) = match &files.last {
                Some((prev, duplex, ifalias))
                    if *prev == operstate && files.cycles_since_full_read < LINK_REFRESH_CYCLES =>
                {
                    (duplex.clone(), ifalias.clone())
                }
                _ => {
                    files.cycles_since_full_read = 0;
                    (attr(&mut files.duplex), attr(&mut files.ifalias))
                }
            };
            files.last = Some((operstate.clone(), duplex.clone(), ifalias.clone()));
            iface.link.operstate = operstate;
            iface.link.duplex = duplex;
            iface.link.ifalias = ifalias;
        }
        out
    }

    fn filesystems(&mut self) -> Vec<Filesystem> {
        if !self.mounts_stale {
            self.mounts_stale = mount_table_changed(&self.mountinfo);
        }
        if self.mounts_stale {
            if let Some(text) = self.mountinfo.read() {
                let mut mounts: Vec<Mount> = proc::mountinfo(text)
                    .into_iter()
                    .filter(|m| !proc::is_excluded_mount(m))
                    .collect();
                // A mount point mounted over keeps only its last (visible) mount.
                let mut seen = std::collections::HashSet::new();
                mounts.reverse();
                mounts.retain(|m| seen.insert(m.mount_point.clone()));
                mounts.reverse();
                self.mounts = mounts;
                self.mounts_stale = false;
            }
        }
        let guarded = &mut self.guarded;
        self.mounts
            .iter()
            .map(|m| Filesystem {
                mount_point: m.mount_point.clone(),
                device: m.device.clone(),
                fs_type: m.fs_type.clone(),
                read_only: m.read_only,
                usage: if proc::may_hang(&m.fs_type) {
                    guarded.stat(&m.mount_point)
                } else {
                    statvfs(&m.mount_point)
                },
            })
            .collect()
    }

    fn temperatures(&mut self) -> Vec<Temperature> {
        let mut out = Vec::with_capacity(self.sensors.len());
        for s in &mut self.sensors {
            let Some(milli) = s.file.read().and_then(|t| t.trim().parse::<i64>().ok()) else {
                continue;
            };
            out.push(Temperature {
                kind: s.kind,
                chip: s.chip.clone(),
                sensor: s.sensor.clone(),
                label: s.label.clone(),
                celsius: milli as f64 / 1000.0,
            });
        }
        out
    }

    fn process(&mut self, boot_time: Option<u64>) -> Option<Process> {
        let stat = self.self_stat.read().and_then(proc::proc_stat)?;
        Some(Process {
            cpu_seconds: (stat.utime + stat.stime) as f64 / USER_HZ,
            resident_bytes: stat.rss_pages.saturating_mul(self.page_size),
            virtual_bytes: stat.vsize,
            start_time: boot_time.unwrap_or(0) as f64 + stat.start_time as f64 / USER_HZ,
            threads: stat.threads,
        })
    }
}

/// Whether the kernel flagged a mount table change on the open mountinfo file since it was last
/// read (proc(5): poll reports `POLLPRI | POLLERR`). Unknown counts as changed.
fn mount_table_changed(file: &ProcFile) -> bool {
    let Some(f) = file.file.as_ref() else { return true };
    let mut pfd = libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLPRI, revents: 0 };
    // SAFETY: one valid pollfd, timeout 0 (never blocks).
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n != 0 || pfd.revents != 0
}

/// How long statvfs(3) of a filesystem that can hang may take before it is left out.
pub const STATVFS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// statvfs(3) with a deadline, for filesystems whose server may not answer.
///
/// Each call runs on its own small thread. A call that misses the deadline keeps its mount point
/// in `in_flight` until it returns; meanwhile that mount is skipped at once (usage unknown), so
/// a hung mount costs one deadline, once, and never a thread per cycle.
struct GuardedStat {
    stat: fn(&str) -> Option<FsUsage>,
    timeout: std::time::Duration,
    in_flight: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Mount points reported as unresponsive, so the log says it once per episode.
    reported: std::collections::HashSet<String>,
}

impl std::fmt::Debug for GuardedStat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedStat").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl GuardedStat {
    fn new(stat: fn(&str) -> Option<FsUsage>, timeout: std::time::Duration) -> Self {
        GuardedStat { stat, timeout, in_flight: Default::default(), reported: Default::default() }
    }

    fn stat(&mut self, path: &str) -> Option<FsUsage> {
        {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            if in_flight.contains(path) {
                return None;
            }
            in_flight.insert(path.to_string());
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let in_flight = std::sync::Arc::clone(&self.in_flight);
        let owned = path.to_string();
        let stat = self.stat;
        let spawned = std::thread::Builder::new()
            .name("pocketses-statvfs".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let usage = stat(&owned);
                in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&owned);
                let _ = tx.send(usage);
            });
        if spawned.is_err() {
            self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(path);
            return None;
        }
        match rx.recv_timeout(self.timeout) {
            Ok(usage) => {
                if self.reported.remove(path) {
                    tracing::info!(mount = path, "filesystem answers again");
                }
                usage
            }
            Err(_) => {
                if self.reported.insert(path.to_string()) {
                    tracing::warn!(
                        mount = path,
                        "statvfs did not answer within {:?}; leaving this filesystem out until it does",
                        self.timeout
                    );
                }
                None
            }
        }
    }
}

// The statvfs field types are u32 on some 32-bit targets (armhf, i386) and u64 here.
#[allow(clippy::useless_conversion)]
fn statvfs(path: &str) -> Option<FsUsage> {
    let c_path = std::ffi::CString::new(path).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: a NUL-terminated path and a buffer of the right type; it is read only on success.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs succeeded, so it filled the struct.
    let st = unsafe { st.assume_init() };
    let unit = u64::from(if st.f_frsize > 0 { st.f_frsize } else { st.f_bsize });
    let total = u64::from(st.f_blocks).saturating_mul(unit);
    let free = u64::from(st.f_bfree).saturating_mul(unit);
    Some(FsUsage {
        total,
        free,
        available: u64::from(st.f_bavail).saturating_mul(unit),
        used: total.saturating_sub(free),
        files: u64::from(st.f_files),
        files_free: u64::from(st.f_ffree),
    })
}

/// Adds getifaddrs(3)'s IPv4 and IPv6 addresses to `interfaces`, appending interfaces that
/// /proc/net/dev did not list.
fn interface_addresses(interfaces: &mut Vec<Interface>) {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, alive until freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_name.is_null() || ifa.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_addr is non-null and points to a sockaddr of its family.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) }.to_bytes();
        if family == libc::AF_PACKET {
            // SAFETY: the family says both are sockaddr_ll (the broadcast one when present).
            let (address, broadcast) = unsafe {
                let ll = &*(ifa.ifa_addr as *const libc::sockaddr_ll);
                let broadcast = (!ifa.ifa_ifu.is_null())
                    .then(|| hw_address(&*(ifa.ifa_ifu as *const libc::sockaddr_ll)));
                (hw_address(ll), broadcast)
            };
            let iface = interface_named(interfaces, name);
            iface.link.address = Some(address);
            iface.link.broadcast = broadcast;
            continue;
        }
        let addr = match family {
            libc::AF_INET => {
                // SAFETY: the family says it is a sockaddr_in; the netmask, when present, too.
                let (ip, mask) = unsafe {
                    let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    let mask = (!ifa.ifa_netmask.is_null())
                        .then(|| (*(ifa.ifa_netmask as *const libc::sockaddr_in)).sin_addr.s_addr);
                    (sin.sin_addr.s_addr, mask)
                };
                let prefix_len = mask.map(|m| u32::from_be(m).leading_ones()).unwrap_or(32);
                Address {
                    ip: IpAddr::V4(Ipv4Addr::from(u32::from_be(ip))),
                    prefix_len: prefix_u8(prefix_len),
                }
            }
            libc::AF_INET6 => {
                // SAFETY: the family says it is a sockaddr_in6; the netmask, when present, too.
                let (ip, mask) = unsafe {
                    let sin6 = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    let mask = (!ifa.ifa_netmask.is_null()).then(|| {
                        (*(ifa.ifa_netmask as *const libc::sockaddr_in6)).sin6_addr.s6_addr
                    });
                    (sin6.sin6_addr.s6_addr, mask)
                };
                let prefix_len = mask.map(|m| u128::from_be_bytes(m).leading_ones()).unwrap_or(128);
                Address { ip: IpAddr::V6(Ipv6Addr::from(ip)), prefix_len: prefix_u8(prefix_len) }
            }
            _ => continue,
        };
        interface_named(interfaces, name).addresses.push(addr);
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
}

/// The interface called `name`, appended (without counters) when /proc/net/dev lacked it.
fn interface_named<'a>(interfaces: &'a mut Vec<Interface>, name: &[u8]) -> &'a mut Interface {
    let i = match interfaces.iter().position(|i| i.name.as_bytes() == name) {
        Some(i) => i,
        None => {
            interfaces.push(Interface {
                name: String::from_utf8_lossy(name).into_owned(),
                ..Interface::default()
            });
            interfaces.len() - 1
        }
    };
    &mut interfaces[i]
}

/// A link layer address as lowercase hex bytes joined by colons.
fn hw_address(ll: &libc::sockaddr_ll) -> String {
    let len = usize::from(ll.sll_halen).min(ll.sll_addr.len());
    let mut s = String::with_capacity(len * 3);
    for (i, b) in ll.sll_addr[..len].iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn prefix_u8(n: u32) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

fn uname() -> Option<Uname> {
    let mut u = std::mem::MaybeUninit::<libc::utsname>::uninit();
    // SAFETY: uname fills the struct; it is read only on success.
    if unsafe { libc::uname(u.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: uname succeeded.
    let u = unsafe { u.assume_init() };
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Some(Uname {
        sysname: field(&u.sysname),
        nodename: field(&u.nodename),
        release: field(&u.release),
        version: field(&u.version),
        machine: field(&u.machine),
        domainname: field(&u.domainname),
    })
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// Finds hwmon temperature inputs and thermal zones under `sysfs`.
fn discover_sensors(sysfs: &Path) -> Vec<Sensor> {
    let mut out = Vec::new();
    for dir in sorted_entries(&sysfs.join("class/hwmon")) {
        let chip = hwmon_chip_name(&dir);
        for file in sorted_entries(&dir) {
            let Some(name) = file.file_name().and_then(|n| n.to_str()) else { continue };
            let Some(sensor) = name.strip_prefix("temp").and_then(|s| s.strip_suffix("_input"))
            else {
                continue;
            };
            let label = std::fs::read_to_string(dir.join(format!("temp{sensor}_label")))
                .ok()
                .map(|s| s.trim().to_string());
            out.push(Sensor {
                kind: SensorKind::Hwmon,
                chip: chip.clone(),
                sensor: format!("temp{sensor}"),
                label,
                file: ProcFile::new(&file),
            });
        }
    }
    for dir in sorted_entries(&sysfs.join("class/thermal")) {
        let Some(zone) =
            dir.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix("thermal_zone"))
        else {
            continue;
        };
        let kind = std::fs::read_to_string(dir.join("type"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        out.push(Sensor {
            kind: SensorKind::ThermalZone,
            chip: zone.to_string(),
            sensor: kind,
            label: None,
            file: ProcFile::new(dir.join("temp")),
        });
    }
    out
}

/// node_exporter's `chip` label: `<parent dir>_<device>` of the resolved `device` link
/// (`platform_coretemp_0`), else the `name` file, else the hwmon directory name, each cleaned.
fn hwmon_chip_name(dir: &Path) -> String {
    if let Ok(dev) = std::fs::canonicalize(dir.join("device")) {
        let name = clean_chip(dev.file_name().and_then(|n| n.to_str()).unwrap_or_default());
        let parent = clean_chip(
            dev.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()).unwrap_or_default(),
        );
        match (parent.is_empty(), name.is_empty()) {
            (false, false) => return format!("{parent}_{name}"),
            (true, false) => return name,
            _ => {}
        }
    }
    if let Ok(name) = std::fs::read_to_string(dir.join("name")) {
        let name = clean_chip(&name);
        if !name.is_empty() {
            return name;
        }
    }
    clean_chip(dir.file_name().and_then(|n| n.to_str()).unwrap_or_default())
}

/// node_exporter's cleaning of chip names: lowercase, `[^a-z0-9:_]` to `_`, `_` trimmed.
fn clean_chip(raw: &str) -> String {
    let s: String = raw
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == ':' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.trim_matches('_').to_string()
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => Vec::new(),
    };
    v.sort_by_key(|p| natural_key(p));
    v
}

/// Sorts `temp10` after `temp9`: by the name with its digits read as a number.
fn natural_key(p: &Path) -> (String, u64) {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let digits: String = name.chars().filter(char::is_ascii_digit).collect();
    let letters: String = name.chars().filter(|c| !c.is_ascii_digit()).collect();
    (letters, digits.parse().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    mod guarded {
        use super::*;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::time::Duration;

        static HANG: AtomicBool = AtomicBool::new(true);
        static CALLS: AtomicUsize = AtomicUsize::new(0);

        /// A statvfs whose server is down while `HANG` is set.
        fn dead_server(_: &str) -> Option<FsUsage> {
            CALLS.fetch_add(1, Ordering::SeqCst);
            while HANG.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            Some(FsUsage { total: 10, free: 4, available: 3, used: 6, files: 2, files_free: 1 })
        }

        fn idle(g: &GuardedStat) -> bool {
            g.in_flight.lock().unwrap().is_empty()
        }

        #[test]
        fn a_hung_mount_is_left_out_and_comes_back() {
            let mut g = GuardedStat::new(dead_server, Duration::from_millis(50));
            // The call returns (after the deadline) instead of hanging the collection.
            assert_eq!(g.stat("/mnt/nfs"), None);
            assert_eq!(CALLS.load(Ordering::SeqCst), 1);
            assert!(!idle(&g));
            // While that call is stuck, the mount is skipped without a new thread or wait.
            assert_eq!(g.stat("/mnt/nfs"), None);
            assert_eq!(CALLS.load(Ordering::SeqCst), 1);
            assert!(g.reported.contains("/mnt/nfs"));
            // The server answers: the stuck call ends and the next cycle gets the usage again.
            HANG.store(false, Ordering::SeqCst);
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !idle(&g) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            assert!(idle(&g), "the stuck call never ended");
            assert_eq!(g.stat("/mnt/nfs").map(|u| u.total), Some(10));
            assert_eq!(CALLS.load(Ordering::SeqCst), 2);
            assert!(!g.reported.contains("/mnt/nfs"));
        }

        #[test]
        fn a_live_mount_answers_through_the_guard() {
            let mut g = GuardedStat::new(statvfs, STATVFS_TIMEOUT);
            let usage = g.stat("/").expect("statvfs of /");
            assert!(usage.total > 0 && usage.used <= usage.total);
            assert!(idle(&g));
            assert_eq!(g.stat("/nonexistent-pocketses-mount"), None);
            assert!(idle(&g));
        }
    }

    #[test]
    fn collects_this_host() {
        let mut c = Collector::new();
        let first = c.collect();
        assert!(first.interval.is_none());
        let cpu = first.cpu.as_ref().expect("cpu");
        assert!(cpu.count > 0);
        assert_eq!(cpu.count, cpu.cores.len());
        assert!(first.memory.as_ref().expect("memory").total > 0);
        assert!(first.network.iter().any(|i| i.name == "lo"));
        assert!(first.network.iter().all(|i| i.rx_rate.is_none()));
        assert!(first.boot_time.is_some());
        assert!(!first.hostname.is_empty());
        let second = c.collect();
        assert!(second.interval.is_some());
        assert!(second.network.iter().filter(|i| i.name == "lo").all(|i| i.rx_rate.is_some()));
        let u = second.cpu.expect("cpu").utilisation;
        assert!((0.0..=100.0).contains(&u), "{u}");
    }

    #[test]
    fn loopback_has_its_addresses() {
        let mut ifaces = Vec::new();
        interface_addresses(&mut ifaces);
        let lo = ifaces.iter().find(|i| i.name == "lo").expect("lo");
        assert!(lo
            .addresses
            .contains(&Address { ip: IpAddr::V4(Ipv4Addr::LOCALHOST), prefix_len: 8 }));
    }

    #[test]
    fn proc_file_rereads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, "one").expect("write");
        let mut f = ProcFile::new(&path);
        assert_eq!(f.read(), Some("one"));
        std::fs::write(&path, "two, longer").expect("write");
        assert_eq!(f.read(), Some("two, longer"));
        let big = "x".repeat(100_000);
        std::fs::write(&path, &big).expect("write");
        assert_eq!(f.read().map(str::len), Some(100_000));
        assert_eq!(ProcFile::new(dir.path().join("absent")).read(), None);
    }

    #[test]
    fn fake_sysfs_sensors_and_cpufreq() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sys = dir.path();
        let w = |p: &str, s: &str| {
            let p = sys.join(p);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, s).expect("write");
        };
        w("class/hwmon/hwmon0/name", "coretemp\n");
        w("class/hwmon/hwmon0/temp1_input", "45000\n");
        w("class/hwmon/hwmon0/temp1_label", "Package id 0\n");
        w("class/hwmon/hwmon0/temp10_input", "-1500\n");
        w("class/hwmon/hwmon0/temp2_input", "47000\n");
        w("class/thermal/thermal_zone0/type", "x86_pkg_temp\n");
        w("class/thermal/thermal_zone0/temp", "51000\n");
        w("class/thermal/cooling_device0/type", "Processor\n");
        w("devices/system/cpu/cpu0/cpufreq/scaling_cur_freq", "2400000\n");
        w("devices/system/cpu/cpu0/cpufreq/scaling_min_freq", "800000\n");
        w("devices/system/cpu/cpu0/cpufreq/scaling_max_freq", "3500000\n");
        let mut c = Collector::with_sysfs(sys);
        let s = c.collect();
        let temps: Vec<String> = s
            .temperatures
            .iter()
            .map(|t| format!("{:?} {} {} {:?} {}", t.kind, t.chip, t.sensor, t.label, t.celsius))
            .collect();
        assert_eq!(
            temps,
            [
                "Hwmon coretemp temp1 Some(\"Package id 0\") 45",
                "Hwmon coretemp temp2 None 47",
                "Hwmon coretemp temp10 None -1.5",
                "ThermalZone 0 x86_pkg_temp None 51",
            ]
        );
        let cpu = s.cpu.expect("cpu");
        let f = cpu.cores.iter().find(|c| c.id == 0).expect("cpu0").frequency;
        assert_eq!(
            f,
            Frequency {
                current: Some(2.4e9),
                min: Some(8e8),
                max: Some(3.5e9),
                source: FrequencySource::Cpufreq
            }
        );
    }

    #[test]
    fn mount_table_is_quiet_after_a_read() {
        let mut f = ProcFile::new("/proc/self/mountinfo");
        assert!(f.read().is_some_and(|t| t.contains(" / ")));
        // The kernel flags only changes since the file was opened or last polled.
        assert!(!mount_table_changed(&f));
        assert!(mount_table_changed(&ProcFile::new("/nonexistent/mountinfo")));
    }

    #[test]
    fn chip_names_are_cleaned() {
        assert_eq!(clean_chip("coretemp\n"), "coretemp");
        assert_eq!(clean_chip("coretemp.0"), "coretemp_0");
        assert_eq!(clean_chip("0000:00:18.3"), "0000:00:18_3");
        assert_eq!(clean_chip("--"), "");
    }

    #[test]
    fn duplex_and_alias_are_reread_when_operstate_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let net = dir.path().join("class/net/lo");
        std::fs::create_dir_all(&net).expect("mkdir");
        let w = |f: &str, s: &str| std::fs::write(net.join(f), s).expect("write");
        w("operstate", "unknown\n");
        w("duplex", "full\n");
        w("ifalias", "loop\n");
        let mut c = Collector::with_sysfs(dir.path());
        let link = |c: &mut Collector| {
            c.collect().network.into_iter().find(|i| i.name == "lo").expect("lo").link
        };
        let first = link(&mut c);
        assert_eq!(
            (first.operstate.as_deref(), first.duplex.as_deref(), first.ifalias.as_deref()),
            (Some("unknown"), Some("full"), Some("loop"))
        );
        w("duplex", "half\n");
        assert_eq!(link(&mut c).duplex.as_deref(), Some("full"), "cached while operstate holds");
        w("operstate", "up\n");
        let after = link(&mut c);
        assert_eq!(
            (after.operstate.as_deref(), after.duplex.as_deref()),
            (Some("up"), Some("half"))
        );
    }

    #[test]
    fn natural_order() {
        let mut v = vec![
            PathBuf::from("temp10_input"),
            PathBuf::from("temp2_input"),
            PathBuf::from("temp1_input"),
        ];
        v.sort_by_key(|p| natural_key(p));
        assert_eq!(
            v,
            [
                PathBuf::from("temp1_input"),
                PathBuf::from("temp2_input"),
                PathBuf::from("temp10_input")
            ]
        );
    }
}
