//! Reads the host's state on demand. \[io\]
//!
//! `Collector` keeps the hot files (/proc/stat, meminfo, net/dev, loadavg, uptime, cpufreq,
//! cpuinfo, sensors, /proc/self/stat) open and re-reads them with pread(2) at offset 0
//! (`metrics::reader`), which saves the open/close of every cycle; parsing is done by the pure
//! functions of [`super::proc`] into buffers that are reused from cycle to cycle, and rates
//! by the pure functions of `metrics::rates` against the previous cycle's counters.
//! The mount table is parsed again only when the kernel signals a change on
//! /proc/self/mountinfo (poll(2) with `POLLPRI`), while statvfs(3) runs every cycle.
//! statvfs(3) of a filesystem that can hang (network, FUSE: [`proc::may_hang`]) goes through
//! `metrics::statvfs::GuardedStat` with a deadline (`STATVFS_TIMEOUT`), so a dead NFS server
//! never stalls the collection. Sensors are discovered once, when the collector is created
//! (`metrics::sensors`); addresses come from getifaddrs(3) (`metrics::ifaddrs`).
//!
//! Nothing here sleeps, and nothing fails a collection as a whole: a source that cannot be
//! read is absent from the snapshot. What this module does not do: decide formats (that is
//! `encode`) or schedule collections (that is the daemon's loop). System calls go through the
//! safe wrappers of `rustix` and `nix`.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::proc::{self, Mount, NetDev, Stat, USER_HZ};
use super::reader::ProcFile;
use super::sensors::{self, Sensor};
use super::statvfs::{statvfs, GuardedStat, STATVFS_TIMEOUT};
use super::{
    ifaddrs, rates, Cpu, CpuTimes, Filesystem, Frequency, FrequencySource, Interface, MeminfoField,
    Memory, Process, Snapshot, Swap, Temperature, Uname,
};

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
            sensors: sensors::discover(sysfs),
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
        let hostname = uname.nodename.clone();

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
            uname: Some(uname),
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
        let utilisation = rates::utilisation((!first).then_some(&self.prev.total), &stat.total);
        let mut cores = rates::cores((!first).then_some(&self.prev.cores[..]), &stat.cores);
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
            out = rates::interfaces(&self.prev.net, &self.net_buf, interval);
            self.prev.net.clone_from(&self.net_buf);
        }
        ifaddrs::add_addresses(&mut out);
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
            self.mounts_stale = self.mountinfo.flagged_change();
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
                crit: s.crit,
                max: s.max,
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

fn uname() -> Uname {
    let u = rustix::system::uname();
    let field = |f: &std::ffi::CStr| f.to_string_lossy().into_owned();
    Uname {
        sysname: field(u.sysname()),
        nodename: field(u.nodename()),
        release: field(u.release()),
        version: field(u.version()),
        machine: field(u.machine()),
        domainname: field(u.domainname()),
    }
}

fn page_size() -> u64 {
    u64::try_from(rustix::param::page_size()).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_this_host() {
        let mut c = Collector::new();
        let first = c.collect();
        assert!(first.interval.is_none());
        let cpu = first.cpu.as_ref().expect("cpu");
        assert!(cpu.count > 0);
        assert_eq!(cpu.count, cpu.cores.len());
        assert!(first.memory.as_ref().expect("memory").total > 0);
        let lo = first.network.iter().find(|i| i.name == "lo").expect("lo");
        assert!(lo.has_counters);
        assert_eq!(lo.link.address.as_deref(), Some("00:00:00:00:00:00"));
        assert_eq!(lo.link.broadcast.as_deref(), Some("00:00:00:00:00:00"));
        assert!(lo.addresses.iter().any(|a| a.ip.is_loopback()));
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
}
