//! Host metrics: the `Snapshot` value, its collection from /proc and /sys, and its encoders.
//!
//! Data flows one way: `collect::Collector` reads the host (the only \[io\] part), parsing with the
//! pure functions of `proc`, into a `Snapshot`; the encoders in `encode` turn a snapshot into a
//! wire format. `Snapshot` is plain data and deliberately does not derive `Serialize`: every
//! format (JSON, legacy JSON, Prometheus text, Influx line protocol) is owned by its encoder.
//!
//! Interface used by the publishers (keep stable): `collect::Collector::new()`,
//! `Collector::collect(&mut self) -> Snapshot`, and the pure encoders in `encode`.
//! Units are base units everywhere: bytes, seconds, hertz, degrees Celsius; utilisation is a
//! percentage (0 to 100) as a float.

use std::net::IpAddr;

pub mod cmd;
pub mod collect;
pub mod collectors;
pub mod encode;
mod ifaddrs;
pub mod proc;
mod rates;
mod reader;
mod sensors;
mod statvfs;
pub mod units;

/// One collection cycle's worth of host metrics.
///
/// A part the host does not expose (or that could not be read) is `None` or empty.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    /// Wall-clock time of the collection, seconds since the Unix epoch.
    pub timestamp: f64,
    /// Host name (uname's nodename).
    pub hostname: String,
    /// Seconds since the previous collection of the same collector, `None` on the first one.
    /// Rates are computed over this window.
    pub interval: Option<f64>,
    /// Processors, from /proc/stat and cpufreq or /proc/cpuinfo.
    pub cpu: Option<Cpu>,
    /// Memory and swap, from /proc/meminfo.
    pub memory: Option<Memory>,
    /// Network interfaces, from /proc/net/dev and getifaddrs(3), in the kernel's order.
    pub network: Vec<Interface>,
    /// Load averages, from /proc/loadavg.
    pub load: Option<LoadAverage>,
    /// Seconds since boot, from /proc/uptime.
    pub uptime: Option<f64>,
    /// Boot time, seconds since the Unix epoch (`btime` of /proc/stat).
    pub boot_time: Option<u64>,
    /// Mounted filesystems that hold data (pseudo filesystems are left out), with their usage.
    pub filesystems: Vec<Filesystem>,
    /// Temperature sensors (hwmon and thermal zones), where the host has any.
    pub temperatures: Vec<Temperature>,
    /// uname(2) of the host.
    pub uname: Option<Uname>,
    /// The agent's own process.
    pub process: Option<Process>,
}

/// Processors.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cpu {
    /// Number of online logical processors (the `cpuN` lines of /proc/stat).
    pub count: usize,
    /// Time counters summed over all processors.
    pub times: CpuTimes,
    /// Busy percentage of all processors together, since the previous collection
    /// (since boot on the first one).
    pub utilisation: f64,
    /// One entry per online logical processor, in /proc/stat order.
    pub cores: Vec<Core>,
}

/// One logical processor.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Core {
    /// The kernel's number of the processor (`N` of `cpuN`).
    pub id: u32,
    /// Time counters of this processor.
    pub times: CpuTimes,
    /// Busy percentage since the previous collection (since boot on the first one).
    pub utilisation: f64,
    /// Clock frequency, where the host exposes it.
    pub frequency: Frequency,
}

/// The time counters of /proc/stat, converted from USER_HZ ticks to seconds.
///
/// As in the kernel, `user` includes `guest` and `nice` includes `guest_nice`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CpuTimes {
    /// Normal processes in user mode.
    pub user: f64,
    /// Niced processes in user mode.
    pub nice: f64,
    /// Kernel mode.
    pub system: f64,
    /// Idle.
    pub idle: f64,
    /// Idle while waiting for I/O.
    pub iowait: f64,
    /// Servicing interrupts.
    pub irq: f64,
    /// Servicing soft interrupts.
    pub softirq: f64,
    /// Stolen by the hypervisor.
    pub steal: f64,
    /// Running a guest (included in `user`).
    pub guest: f64,
    /// Running a niced guest (included in `nice`).
    pub guest_nice: f64,
}

impl CpuTimes {
    /// All time, counting guest time once (it is already in `user` and `nice`).
    pub fn total(&self) -> f64 {
        self.user
            + self.nice
            + self.system
            + self.idle
            + self.iowait
            + self.irq
            + self.softirq
            + self.steal
    }

    /// Time not idle and not waiting for I/O.
    pub fn busy(&self) -> f64 {
        self.total() - self.idle - self.iowait
    }

    /// Busy percentage between `prev` and `self` (0 when no time passed).
    ///
    /// This is psutil's definition and arithmetic, which the original pocketses reported:
    /// per-field deltas (negative ones count as 0), summed in field order, guest time taken
    /// out of the total, idle and iowait out of the busy time.
    pub fn utilisation_since(&self, prev: &CpuTimes) -> f64 {
        let d = |a: f64, b: f64| (a - b).max(0.0);
        let deltas = [
            d(self.user, prev.user),
            d(self.nice, prev.nice),
            d(self.system, prev.system),
            d(self.idle, prev.idle),
            d(self.iowait, prev.iowait),
            d(self.irq, prev.irq),
            d(self.softirq, prev.softirq),
            d(self.steal, prev.steal),
            d(self.guest, prev.guest),
            d(self.guest_nice, prev.guest_nice),
        ];
        let mut total = 0.0;
        for v in deltas {
            total += v;
        }
        total -= deltas[8];
        total -= deltas[9];
        let busy = total - deltas[3] - deltas[4];
        if total <= 0.0 {
            return 0.0;
        }
        (busy / total * 100.0).clamp(0.0, 100.0)
    }
}

/// Where a processor's frequency came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FrequencySource {
    /// No frequency is known.
    #[default]
    None,
    /// `/sys/devices/system/cpu/cpuN/cpufreq/scaling_{cur,min,max}_freq`.
    Cpufreq,
    /// The `cpu MHz` line of /proc/cpuinfo (current frequency only).
    Cpuinfo,
}

/// Clock frequency of one processor, in hertz.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Frequency {
    /// Current frequency.
    pub current: Option<f64>,
    /// Lowest frequency the governor may pick.
    pub min: Option<f64>,
    /// Highest frequency the governor may pick.
    pub max: Option<f64>,
    /// Where the figures come from.
    pub source: FrequencySource,
}

/// Memory and swap, in bytes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Memory {
    /// Usable RAM (`MemTotal`).
    pub total: u64,
    /// RAM available for new work without swapping (`MemAvailable`, estimated on old kernels).
    pub available: u64,
    /// RAM not used at all (`MemFree`).
    pub free: u64,
    /// `total - available`.
    pub used: u64,
    /// Swap space.
    pub swap: Swap,
    /// Every /proc/meminfo field, in file order, converted to bytes when it has a `kB` unit.
    pub fields: Vec<MeminfoField>,
}

/// Swap space, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Swap {
    /// `SwapTotal`.
    pub total: u64,
    /// `SwapFree`.
    pub free: u64,
    /// `total - free`.
    pub used: u64,
}

/// One line of /proc/meminfo.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MeminfoField {
    /// The field name as the kernel writes it, e.g. `Active(anon)`.
    pub name: String,
    /// The value, in bytes when `bytes` is set, else a plain count.
    pub value: u64,
    /// Whether the kernel gave the value in kB (now converted to bytes).
    pub bytes: bool,
}

/// One network interface.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Interface {
    /// Interface name, e.g. `eth0`.
    pub name: String,
    /// Whether /proc/net/dev lists the interface; when not, `rx` and `tx` are zero and
    /// meaningless (the interface is known from getifaddrs(3) only).
    pub has_counters: bool,
    /// Received: counters since the interface appeared.
    pub rx: NetCounters,
    /// Transmitted: counters since the interface appeared.
    pub tx: NetCounters,
    /// Received per second since the previous collection (`None` on the first one).
    pub rx_rate: Option<NetRates>,
    /// Transmitted per second since the previous collection (`None` on the first one).
    pub tx_rate: Option<NetRates>,
    /// IPv4 and IPv6 addresses, in getifaddrs(3) order.
    pub addresses: Vec<Address>,
    /// Link layer facts (MAC address, operational state), where known.
    pub link: Link,
}

/// Link layer facts of an interface: getifaddrs(3)'s `AF_PACKET` entry and
/// `/sys/class/net/<name>/{operstate,duplex,ifalias}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Link {
    /// Hardware address, lowercase hex with colons (`02:fc:00:00:00:01`).
    pub address: Option<String>,
    /// Hardware broadcast address, same form.
    pub broadcast: Option<String>,
    /// RFC 2863 operational state: `up`, `down`, `unknown`, `dormant`, …
    pub operstate: Option<String>,
    /// `full`, `half` or `unknown`; `None` where the driver has no notion of duplex.
    pub duplex: Option<String>,
    /// The administrator's alias (`ip link set … alias`), empty when unset.
    pub ifalias: Option<String>,
}

/// Counters of one direction of an interface (/proc/net/dev).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetCounters {
    /// Bytes.
    pub bytes: u64,
    /// Packets.
    pub packets: u64,
    /// Errors.
    pub errs: u64,
    /// Dropped packets.
    pub drop: u64,
}

/// Per-second rates of one direction of an interface.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct NetRates {
    /// Bytes per second.
    pub bytes: f64,
    /// Packets per second.
    pub packets: f64,
    /// Errors per second.
    pub errs: f64,
    /// Dropped packets per second.
    pub drop: f64,
}

impl NetRates {
    /// Rates between two readings `seconds` apart; a counter that went backwards
    /// (interface reset, wrap) counts as 0.
    pub fn between(prev: &NetCounters, cur: &NetCounters, seconds: f64) -> Option<NetRates> {
        if seconds <= 0.0 || !seconds.is_finite() {
            return None;
        }
        let rate = |a: u64, b: u64| b.saturating_sub(a) as f64 / seconds;
        Some(NetRates {
            bytes: rate(prev.bytes, cur.bytes),
            packets: rate(prev.packets, cur.packets),
            errs: rate(prev.errs, cur.errs),
            drop: rate(prev.drop, cur.drop),
        })
    }
}

/// An IP address of an interface with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    /// The address.
    pub ip: IpAddr,
    /// The network prefix length (24 for 255.255.255.0).
    pub prefix_len: u8,
}

impl Address {
    /// node_exporter's scope of an address: `link-local` (loopback and link-local),
    /// `interface-local`, `global` or empty.
    pub fn scope(&self) -> &'static str {
        match self.ip {
            IpAddr::V4(ip) => {
                if ip.is_loopback() || ip.is_link_local() || is_v4_link_local_multicast(ip) {
                    "link-local"
                } else if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
                    ""
                } else {
                    "global"
                }
            }
            IpAddr::V6(ip) => {
                let s = ip.segments();
                if ip.is_loopback() || (s[0] & 0xffc0) == 0xfe80 || (s[0] & 0xff0f) == 0xff02 {
                    "link-local"
                } else if (s[0] & 0xff0f) == 0xff01 {
                    "interface-local"
                } else if ip.is_unspecified() || ip.is_multicast() {
                    ""
                } else {
                    "global"
                }
            }
        }
    }
}

fn is_v4_link_local_multicast(ip: std::net::Ipv4Addr) -> bool {
    let o = ip.octets();
    o[0] == 224 && o[1] == 0 && o[2] == 0
}

/// Load averages (/proc/loadavg).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LoadAverage {
    /// Over 1 minute.
    pub one: f64,
    /// Over 5 minutes.
    pub five: f64,
    /// Over 15 minutes.
    pub fifteen: f64,
}

/// A mounted filesystem and its usage (statvfs(3)), in bytes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filesystem {
    /// Where it is mounted.
    pub mount_point: String,
    /// The mount source, e.g. `/dev/vda`.
    pub device: String,
    /// Filesystem type, e.g. `ext4`.
    pub fs_type: String,
    /// Whether it is mounted read-only.
    pub read_only: bool,
    /// Usage, `None` when statvfs failed.
    pub usage: Option<FsUsage>,
}

/// The usage figures of a filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FsUsage {
    /// Size.
    pub total: u64,
    /// Free space, including what is reserved for root.
    pub free: u64,
    /// Space available to unprivileged users.
    pub available: u64,
    /// `total - free`.
    pub used: u64,
    /// Number of inodes.
    pub files: u64,
    /// Free inodes.
    pub files_free: u64,
}

/// Which kind of sensor a temperature comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SensorKind {
    /// `/sys/class/hwmon/hwmonN/tempM_input`.
    Hwmon,
    /// `/sys/class/thermal/thermal_zoneN/temp`.
    ThermalZone,
}

/// One temperature reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Temperature {
    /// Where it comes from.
    pub kind: SensorKind,
    /// The hwmon chip name (node_exporter's `chip` label) or the thermal zone number.
    pub chip: String,
    /// The hwmon sensor (`temp1`) or the thermal zone type (`x86_pkg_temp`).
    pub sensor: String,
    /// The hwmon sensor label (`tempN_label`), when the driver gives one.
    pub label: Option<String>,
    /// Degrees Celsius.
    pub celsius: f64,
    /// The sensor's own critical limit, °C: hwmon `tempN_crit`, a thermal zone's `critical` trip
    /// point; read once when the sensor is found.
    pub crit: Option<f64>,
    /// The sensor's own high limit, °C: hwmon `tempN_max`, a thermal zone's `hot` trip point.
    pub max: Option<f64>,
}

/// uname(2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Uname {
    /// e.g. `Linux`.
    pub sysname: String,
    /// Host name.
    pub nodename: String,
    /// Kernel release.
    pub release: String,
    /// Kernel version string.
    pub version: String,
    /// Machine hardware name, e.g. `x86_64`.
    pub machine: String,
    /// NIS domain name, `(none)` when unset.
    pub domainname: String,
}

/// The agent's own process (/proc/self/stat).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Process {
    /// User and system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Resident set size, bytes.
    pub resident_bytes: u64,
    /// Virtual memory size, bytes.
    pub virtual_bytes: u64,
    /// Start time, seconds since the Unix epoch.
    pub start_time: f64,
    /// Number of threads.
    pub threads: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(user: f64, idle: f64, iowait: f64, guest: f64) -> CpuTimes {
        CpuTimes { user, idle, iowait, guest, ..CpuTimes::default() }
    }

    #[test]
    fn utilisation_is_busy_over_total() {
        let prev = times(10.0, 100.0, 0.0, 0.0);
        assert_eq!(times(13.0, 101.0, 0.0, 0.0).utilisation_since(&prev), 75.0);
        // iowait is not busy; guest time is inside user and counts once.
        assert_eq!(times(11.0, 101.0, 2.0, 0.0).utilisation_since(&prev), 25.0);
        assert_eq!(times(12.0, 102.0, 0.0, 1.0).utilisation_since(&prev), 50.0);
    }

    #[test]
    fn utilisation_without_time_or_with_counters_going_back() {
        let prev = times(10.0, 100.0, 0.0, 0.0);
        assert_eq!(prev.utilisation_since(&prev), 0.0);
        // A counter that went backwards (CPU hot-unplug, kernel quirk) counts as no time.
        assert_eq!(times(9.0, 101.0, 0.0, 0.0).utilisation_since(&prev), 0.0);
        assert_eq!(times(12.0, 90.0, 0.0, 0.0).utilisation_since(&prev), 100.0);
    }

    #[test]
    fn rates_per_second() {
        let prev = NetCounters { bytes: 1000, packets: 10, errs: 0, drop: 5 };
        let cur = NetCounters { bytes: 3000, packets: 30, errs: 1, drop: 4 };
        assert_eq!(
            NetRates::between(&prev, &cur, 2.0),
            Some(NetRates { bytes: 1000.0, packets: 10.0, errs: 0.5, drop: 0.0 })
        );
        assert_eq!(NetRates::between(&prev, &cur, 0.0), None);
        assert_eq!(NetRates::between(&prev, &cur, f64::NAN), None);
    }

    #[test]
    fn scopes_like_node_exporter() {
        let table = [
            ("127.0.0.1", "link-local"),
            ("169.254.1.1", "link-local"),
            ("192.0.2.2", "global"),
            ("10.1.2.3", "global"),
            ("224.0.0.251", "link-local"),
            ("239.1.1.1", ""),
            ("0.0.0.0", ""),
            ("::1", "link-local"),
            ("fe80::fc:ff:fe00:1", "link-local"),
            ("fd00::2", "global"),
            ("2001:db8::1", "global"),
            ("ff02::1", "link-local"),
            ("ff01::1", "interface-local"),
            ("ff05::1", ""),
            ("::", ""),
        ];
        for (ip, want) in table {
            let a = Address { ip: ip.parse().expect("ip"), prefix_len: 0 };
            assert_eq!(a.scope(), want, "{ip}");
        }
    }
}
