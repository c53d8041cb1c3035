//! Parsers for the text files of /proc. \[pure\]
//!
//! Each parser takes the file's content as `&str` and returns plain values; none reads a file.
//! They are lenient the way a monitoring agent must be: a malformed or unknown line is skipped,
//! so one odd kernel line costs one value, not the whole snapshot. A file that lacks what a
//! parser needs at all yields `None`.
//! The `_into` variants reuse the caller's buffers, which keeps the collector's hot path free of
//! allocations once it has warmed up.

use super::{CpuTimes, LoadAverage, MeminfoField, NetCounters};

/// USER_HZ: the unit of the time counters of /proc/stat, fixed at 100 by the kernel's ABI.
pub const USER_HZ: f64 = 100.0;

/// The parts of /proc/stat that pocketses reports.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stat {
    /// The `cpu` line: all processors together.
    pub total: CpuTimes,
    /// The `cpuN` lines: (N, times).
    pub cores: Vec<(u32, CpuTimes)>,
    /// `btime`: boot time, seconds since the Unix epoch.
    pub boot_time: Option<u64>,
}

/// Parses /proc/stat.
pub fn stat(text: &str) -> Stat {
    let mut out = Stat::default();
    stat_into(text, &mut out);
    out
}

/// Parses /proc/stat into `out`, reusing its buffers.
pub fn stat_into(text: &str, out: &mut Stat) {
    out.cores.clear();
    out.boot_time = None;
    out.total = CpuTimes::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("cpu") {
            let (id, fields) = match rest.split_once(' ') {
                Some(("", fields)) => (None, fields),
                Some((digits, fields)) => match digits.parse::<u32>() {
                    Ok(id) => (Some(id), fields),
                    Err(_) => continue,
                },
                None => continue,
            };
            let times = cpu_times(fields);
            match id {
                None => out.total = times,
                Some(id) => out.cores.push((id, times)),
            }
        } else if let Some(rest) = line.strip_prefix("btime ") {
            out.boot_time = parse_u64(rest.trim());
        }
    }
}

/// Converts the tick counters of one `cpu` line (after the name) to seconds.
/// Old kernels have fewer than ten columns; the missing ones are 0.
fn cpu_times(fields: &str) -> CpuTimes {
    let mut ticks = [0u64; 10];
    for (slot, field) in ticks.iter_mut().zip(fields.split_ascii_whitespace()) {
        *slot = parse_u64(field).unwrap_or(0);
    }
    let s = |i: usize| ticks[i] as f64 / USER_HZ;
    CpuTimes {
        user: s(0),
        nice: s(1),
        system: s(2),
        idle: s(3),
        iowait: s(4),
        irq: s(5),
        softirq: s(6),
        steal: s(7),
        guest: s(8),
        guest_nice: s(9),
    }
}

/// Parses /proc/meminfo: every `Name: value [kB]` line, values with a unit converted to bytes.
pub fn meminfo(text: &str) -> Vec<MeminfoField> {
    let mut out = Vec::new();
    meminfo_into(text, &mut out);
    out
}

/// Parses /proc/meminfo into `out`, reusing the names already there when they have not changed.
pub fn meminfo_into(text: &str, out: &mut Vec<MeminfoField>) {
    let mut n = 0;
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(':') else { continue };
        let mut parts = rest.split_ascii_whitespace();
        let Some(value) = parts.next().and_then(parse_u64) else { continue };
        let bytes = match parts.next() {
            None => false,
            Some("kB") => true,
            Some(_) => continue,
        };
        let value = if bytes { value.saturating_mul(1024) } else { value };
        if let Some(field) = out.get_mut(n) {
            if field.name != name {
                name.clone_into(&mut field.name);
            }
            field.value = value;
            field.bytes = bytes;
        } else {
            out.push(MeminfoField { name: name.to_string(), value, bytes });
        }
        n += 1;
    }
    out.truncate(n);
}

/// Looks a field up by its kernel name.
pub fn meminfo_get(fields: &[MeminfoField], name: &str) -> Option<u64> {
    fields.iter().find(|f| f.name == name).map(|f| f.value)
}

/// One interface line of /proc/net/dev.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetDev {
    /// Interface name.
    pub name: String,
    /// Receive counters.
    pub rx: NetCounters,
    /// Transmit counters.
    pub tx: NetCounters,
}

/// Parses /proc/net/dev (the two header lines are skipped).
pub fn net_dev(text: &str) -> Vec<NetDev> {
    let mut out = Vec::new();
    net_dev_into(text, &mut out);
    out
}

/// Parses /proc/net/dev into `out`, reusing its names when they have not changed.
pub fn net_dev_into(text: &str, out: &mut Vec<NetDev>) {
    let mut n = 0;
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(':') else { continue };
        let name = name.trim();
        if name.is_empty() || name.contains('|') {
            continue;
        }
        let mut cols = [0u64; 16];
        let mut n_cols = 0;
        for (slot, field) in cols.iter_mut().zip(rest.split_ascii_whitespace()) {
            *slot = parse_u64(field).unwrap_or(0);
            n_cols += 1;
        }
        if n_cols < 12 {
            continue;
        }
        let rx = NetCounters { bytes: cols[0], packets: cols[1], errs: cols[2], drop: cols[3] };
        let tx = NetCounters { bytes: cols[8], packets: cols[9], errs: cols[10], drop: cols[11] };
        if let Some(dev) = out.get_mut(n) {
            if dev.name != name {
                name.clone_into(&mut dev.name);
            }
            dev.rx = rx;
            dev.tx = tx;
        } else {
            out.push(NetDev { name: name.to_string(), rx, tx });
        }
        n += 1;
    }
    out.truncate(n);
}

/// Parses /proc/loadavg.
pub fn loadavg(text: &str) -> Option<LoadAverage> {
    let mut parts = text.split_ascii_whitespace();
    let mut next = || parts.next().and_then(|s| s.parse::<f64>().ok());
    Some(LoadAverage { one: next()?, five: next()?, fifteen: next()? })
}

/// Parses /proc/uptime: seconds since boot.
pub fn uptime(text: &str) -> Option<f64> {
    text.split_ascii_whitespace().next()?.parse().ok()
}

/// Parses the `processor` and `cpu MHz` lines of /proc/cpuinfo: (processor, hertz) pairs.
/// Architectures without `cpu MHz` (most ARM kernels) yield nothing.
pub fn cpuinfo_hz(text: &str) -> Vec<(u32, f64)> {
    let mut out = Vec::new();
    let mut processor = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        match key.trim_end() {
            "processor" => processor = value.trim().parse::<u32>().ok(),
            "cpu MHz" => {
                if let (Some(id), Ok(mhz)) = (processor, value.trim().parse::<f64>()) {
                    out.push((id, mhz * 1e6));
                }
            }
            _ => {}
        }
    }
    out
}

/// One line of /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mount {
    /// Mount point, with the kernel's octal escapes (`\040` for space) decoded.
    pub mount_point: String,
    /// Mount source, e.g. `/dev/vda`, decoded the same way.
    pub device: String,
    /// Filesystem type.
    pub fs_type: String,
    /// Whether the mount is read-only (`ro` in the per-mount options).
    pub read_only: bool,
}

/// Parses /proc/self/mountinfo (see proc(5)).
pub fn mountinfo(text: &str) -> Vec<Mount> {
    text.lines().filter_map(mountinfo_line).collect()
}

fn mountinfo_line(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let mut left = left.split(' ');
    let mount_point = left.nth(4)?;
    let options = left.next()?;
    let mut right = right.split(' ');
    let fs_type = right.next()?;
    let device = right.next()?;
    Some(Mount {
        mount_point: unescape_octal(mount_point),
        device: unescape_octal(device),
        fs_type: unescape_octal(fs_type),
        read_only: options.split(',').any(|o| o == "ro"),
    })
}

/// Decodes the kernel's `\ooo` escapes of space, tab, newline and backslash in mount fields.
fn unescape_octal(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let code = bytes.get(i + 1..i + 4).and_then(|d| {
                d.iter().try_fold(0u32, |acc, &c| {
                    (b'0'..=b'7').contains(&c).then(|| acc * 8 + u32::from(c - b'0'))
                })
            });
            if let Some(code) = code.and_then(|c| u8::try_from(c).ok()) {
                out.push(code);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Filesystem types that hold no data of their own: node_exporter's default
/// `--collector.filesystem.fs-types-exclude` list.
pub const PSEUDO_FS_TYPES: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "procfs",
    "pstore",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tracefs",
];

/// Whether a mount is left out of the filesystems: a pseudo filesystem type, or a mount point
/// under node_exporter's default exclusions (`/dev`, `/proc`, `/sys`, `/run/credentials/…`,
/// `/var/lib/docker/…`, `/var/lib/containers/storage/…`).
pub fn is_excluded_mount(mount: &Mount) -> bool {
    if PSEUDO_FS_TYPES.contains(&mount.fs_type.as_str()) {
        return true;
    }
    let mp = mount.mount_point.as_str();
    let under =
        |dir: &str| mp == dir || mp.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'));
    let strictly_under = |dir: &str| {
        mp.strip_prefix(dir).is_some_and(|rest| rest.len() > 1 && rest.starts_with('/'))
    };
    under("/dev")
        || under("/proc")
        || under("/sys")
        || strictly_under("/run/credentials")
        || strictly_under("/var/lib/docker")
        || strictly_under("/var/lib/containers/storage")
}

/// Whether statvfs(3) of this filesystem type may block for as long as a remote server or a
/// user-space daemon does not answer: network filesystems and FUSE.
pub fn may_hang(fs_type: &str) -> bool {
    let network =
        "nfs nfs4 cifs smb3 smbfs ncpfs ceph glusterfs 9p afs lustre gfs2 ocfs2 beegfs davfs";
    fs_type == "fuse"
        || fs_type == "fuseblk"
        || fs_type.starts_with("fuse.")
        || network.split(' ').any(|t| t == fs_type)
}

/// The parts of /proc/self/stat that pocketses reports (raw kernel units).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcStat {
    /// User time, ticks.
    pub utime: u64,
    /// System time, ticks.
    pub stime: u64,
    /// Number of threads.
    pub threads: u64,
    /// Start time after boot, ticks.
    pub start_time: u64,
    /// Virtual memory size, bytes.
    pub vsize: u64,
    /// Resident set size, pages.
    pub rss_pages: u64,
}

/// Parses /proc/PID/stat. The command name may hold spaces and parentheses, so fields are
/// counted from the last `)`.
pub fn proc_stat(text: &str) -> Option<ProcStat> {
    let (_, rest) = text.rsplit_once(')')?;
    // Fields after the name, numbered from 3 (state) as in proc(5).
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|s| parse_u64(s));
    Some(ProcStat {
        utime: field(14)?,
        stime: field(15)?,
        threads: field(20)?,
        start_time: field(22)?,
        vsize: field(23)?,
        rss_pages: field(24)?,
    })
}

/// Parses a decimal unsigned integer without the overhead of `str::parse`'s error values.
pub fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &c in s.as_bytes() {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{expect, Expect};

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/proc/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn filesystems_that_may_hang() {
        for t in ["nfs", "nfs4", "cifs", "fuse.sshfs", "fuse", "fuseblk", "ceph", "9p"] {
            assert!(may_hang(t), "{t}");
        }
        for t in ["ext4", "xfs", "btrfs", "vfat", "squashfs", "tmpfs", "fusectl", "nfsd"] {
            assert!(!may_hang(t), "{t}");
        }
    }

    fn check(actual: impl std::fmt::Debug, expect: Expect) {
        expect.assert_eq(&format!("{actual:?}"));
    }

    #[test]
    fn stat_fixture() {
        let s = stat(&fixture("vm-2cpu/stat"));
        assert_eq!(s.cores.len(), 2);
        assert_eq!(s.boot_time, Some(1795320726));
        check(s.total, expect!["CpuTimes { user: 258.04, nice: 0.0, system: 67.97, idle: 1163.65, iowait: 4.34, irq: 0.0, softirq: 1.08, steal: 2.15, guest: 0.0, guest_nice: 0.0 }"]);
        check(s.cores[1], expect!["(1, CpuTimes { user: 130.45, nice: 0.0, system: 35.72, idle: 577.34, iowait: 3.05, irq: 0.0, softirq: 0.81, steal: 1.09, guest: 0.0, guest_nice: 0.0 })"]);
    }

    #[test]
    fn stat_old_kernel_has_fewer_columns() {
        let s = stat("cpu  1 2 3 4\ncpu0 1 2 3 4\n");
        check(s.total, expect!["CpuTimes { user: 0.01, nice: 0.02, system: 0.03, idle: 0.04, iowait: 0.0, irq: 0.0, softirq: 0.0, steal: 0.0, guest: 0.0, guest_nice: 0.0 }"]);
        assert_eq!(s.boot_time, None);
    }

    #[test]
    fn stat_sparse_core_numbers_are_kept() {
        // Offline processors have no line; the others keep their kernel numbers.
        let s = stat("cpu  4 0 0 0\ncpu0 2 0 0 0\ncpu3 2 0 0 0\nbtime 12\n");
        check(s.cores.iter().map(|c| c.0).collect::<Vec<_>>(), expect!["[0, 3]"]);
        assert_eq!(s.boot_time, Some(12));
    }

    #[test]
    fn stat_skips_garbage() {
        let s = stat("cpux 1 2\ncpu\nintr 1 2 3\nbtime x\n");
        assert!(s.cores.is_empty());
        assert_eq!(s.boot_time, None);
    }

    #[test]
    fn stat_into_reuses_and_resets() {
        let mut s = stat("cpu  1 1 1 1\ncpu0 1 1 1 1\ncpu1 1 1 1 1\nbtime 5\n");
        stat_into("cpu  1 1 1 1\ncpu0 1 1 1 1\n", &mut s);
        assert_eq!(s.cores.len(), 1);
        assert_eq!(s.boot_time, None);
    }

    #[test]
    fn meminfo_fixture() {
        let m = meminfo(&fixture("vm-2cpu/meminfo"));
        assert_eq!(meminfo_get(&m, "MemTotal"), Some(24683656 * 1024));
        assert_eq!(meminfo_get(&m, "HugePages_Total"), Some(0));
        check(
            m.iter().find(|f| f.name == "HugePages_Total"),
            expect![[r#"Some(MeminfoField { name: "HugePages_Total", value: 0, bytes: false })"#]],
        );
        check(
            m.iter().find(|f| f.name == "Active(anon)"),
            expect![[
                r#"Some(MeminfoField { name: "Active(anon)", value: 1617920, bytes: true })"#
            ]],
        );
        assert_eq!(m.len(), fixture("vm-2cpu/meminfo").lines().count());
    }

    #[test]
    fn meminfo_skips_bad_lines() {
        check(
            meminfo("A: 1 kB\nB 2 kB\nC: x kB\nD: 3 MB\nE: 4\n"),
            expect![[
                r#"[MeminfoField { name: "A", value: 1024, bytes: true }, MeminfoField { name: "E", value: 4, bytes: false }]"#
            ]],
        );
    }

    #[test]
    fn meminfo_into_shrinks() {
        let mut m = meminfo("A: 1 kB\nB: 2 kB\n");
        meminfo_into("C: 3\n", &mut m);
        check(m, expect![[r#"[MeminfoField { name: "C", value: 3, bytes: false }]"#]]);
    }

    #[test]
    fn net_dev_fixture() {
        let n = net_dev(&fixture("vm-2cpu/net_dev"));
        check(
            n.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
            expect![[r#"["lo", "ifb0", "ifb1", "eth0"]"#]],
        );
        check(
            &n[3],
            expect![[
                r#"NetDev { name: "eth0", rx: NetCounters { bytes: 234793094, packets: 7686, errs: 0, drop: 0 }, tx: NetCounters { bytes: 446171, packets: 5333, errs: 0, drop: 0 } }"#
            ]],
        );
    }

    #[test]
    fn net_dev_name_glued_to_counters() {
        // Long counters leave no space after the colon.
        let n = net_dev("h1\nh2\nveth0:123456789012 1 2 3 0 0 0 0 9 8 7 6 0 0 0 0\n");
        check(
            &n[0],
            expect![[
                r#"NetDev { name: "veth0", rx: NetCounters { bytes: 123456789012, packets: 1, errs: 2, drop: 3 }, tx: NetCounters { bytes: 9, packets: 8, errs: 7, drop: 6 } }"#
            ]],
        );
    }

    #[test]
    fn net_dev_short_line_skipped() {
        assert!(net_dev("eth0: 1 2 3\n").is_empty());
    }

    #[test]
    fn loadavg_fixture() {
        check(
            loadavg(&fixture("vm-2cpu/loadavg")),
            expect!["Some(LoadAverage { one: 1.64, five: 0.79, fifteen: 0.35 })"],
        );
        check(loadavg("1.0 2.0"), expect!["None"]);
    }

    #[test]
    fn uptime_fixture() {
        check(uptime(&fixture("vm-2cpu/uptime")), expect!["Some(751.06)"]);
        check(uptime(""), expect!["None"]);
    }

    #[test]
    fn cpuinfo_fixture() {
        check(
            cpuinfo_hz(&fixture("vm-2cpu/cpuinfo")),
            expect!["[(0, 2445410000.0), (1, 2445410000.0)]"],
        );
    }

    #[test]
    fn cpuinfo_arm_has_no_mhz() {
        check(
            cpuinfo_hz("processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd\n"),
            expect!["[]"],
        );
    }

    #[test]
    fn mountinfo_fixture() {
        let m = mountinfo(&fixture("vm-2cpu/mountinfo"));
        check(
            &m[5],
            expect![[
                r#"Mount { mount_point: "/", device: "/dev/vda", fs_type: "ext4", read_only: false }"#
            ]],
        );
        let kept: Vec<_> =
            m.iter().filter(|m| !is_excluded_mount(m)).map(|m| m.mount_point.as_str()).collect();
        check(kept, expect![[r#"["/"]"#]]);
    }

    #[test]
    fn mountinfo_escapes_and_optional_fields() {
        let line = r"36 35 98:0 /mnt1 /mnt/my\040disk rw,noatime master:1 shared:2 - ext3 /dev/root\134x ro,errors=continue";
        check(
            mountinfo(line),
            expect![[
                r#"[Mount { mount_point: "/mnt/my disk", device: "/dev/root\\x", fs_type: "ext3", read_only: false }]"#
            ]],
        );
        check(
            mountinfo("36 35 98:0 / /ro ro,noatime - vfat /dev/sda1 rw\nbroken line"),
            expect![[
                r#"[Mount { mount_point: "/ro", device: "/dev/sda1", fs_type: "vfat", read_only: true }]"#
            ]],
        );
    }

    #[test]
    fn unescape_keeps_bad_escapes() {
        assert_eq!(unescape_octal(r"a\09b\"), r"a\09b\");
        assert_eq!(unescape_octal(r"\011"), "\t");
    }

    #[test]
    fn exclusions() {
        let m = |mp: &str, fs: &str| Mount {
            mount_point: mp.into(),
            fs_type: fs.into(),
            ..Mount::default()
        };
        let table = [
            ("/", "ext4", false),
            ("/", "squashfs", true),
            ("/snap/core22/1", "squashfs", true),
            ("/dev", "devtmpfs", true),
            ("/dev/shm", "tmpfs", true),
            ("/device", "ext4", false),
            ("/run", "tmpfs", false),
            ("/run/credentials", "tmpfs", false),
            ("/run/credentials/x.service", "tmpfs", true),
            ("/var/lib/docker", "ext4", false),
            ("/var/lib/docker/overlay2", "xfs", true),
            ("/sys/fs/cgroup", "tmpfs", true),
            ("/writable", "ext4", false),
        ];
        for (mp, fs, want) in table {
            assert_eq!(is_excluded_mount(&m(mp, fs)), want, "{mp} {fs}");
        }
    }

    #[test]
    fn proc_stat_with_odd_name() {
        let text = "42 (a) b) S 1 42 42 0 -1 4194560 100 0 0 0 150 25 0 0 20 0 3 0 500 1000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
        check(proc_stat(text), expect!["Some(ProcStat { utime: 150, stime: 25, threads: 3, start_time: 500, vsize: 1000000, rss_pages: 200 })"]);
        check(proc_stat("42 (x) S 1"), expect!["None"]);
    }

    #[test]
    fn parse_u64_edges() {
        assert_eq!(parse_u64("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64("18446744073709551616"), None);
        assert_eq!(parse_u64(""), None);
        assert_eq!(parse_u64("-1"), None);
        assert_eq!(parse_u64("12a"), None);
    }
}
