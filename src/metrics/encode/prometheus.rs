//! The Prometheus text format 0.0.4 encoding of a snapshot. \[pure\]
//!
//! Names, labels and HELP texts are node_exporter's wherever the meaning is the same, so
//! dashboards and alert rules written for node_exporter work unchanged; the rest is named
//! `pocketses_*` and follows the naming guide (base units, `_total` on counters, `_ratio`).
//! The byte layout is client_golang's: families sorted by name, HELP then TYPE, labels sorted
//! by name, samples sorted by label values (as strings), values formatted like Go's
//! `strconv.FormatFloat(v, 'g', -1, 64)`, no timestamps.
//!
//! [`Family`] and [`encode_with`] let the daemon append its own families (publisher counters)
//! into the same sorted output. Names must be unique: an extra family whose name is already
//! used is left out, so that every name has exactly one owner.

use super::float;
use crate::metrics::{FrequencySource, SensorKind, Snapshot};

/// The media type of this format, for the HTTP `Content-Type` header.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The TYPE of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A value that only goes up (name ends in `_total`).
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// No type given.
    Untyped,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Untyped => "untyped",
        }
    }
}

/// One sample: label pairs (any order; they are sorted when written) and a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// `(name, value)` label pairs.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// A sample without labels.
    pub fn new(value: f64) -> Sample {
        Sample { labels: Vec::new(), value }
    }

    /// A sample with the given labels.
    pub fn with(labels: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            labels: labels.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect(),
            value,
        }
    }
}

/// A metric family: a name, its HELP text, its TYPE and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// Metric name.
    pub name: String,
    /// HELP text (escaped when written).
    pub help: String,
    /// TYPE.
    pub kind: Kind,
    /// Samples; a family without samples is not written.
    pub samples: Vec<Sample>,
}

impl Family {
    /// A family with no samples yet.
    pub fn new(name: &str, help: &str, kind: Kind) -> Family {
        Family { name: name.to_string(), help: help.to_string(), kind, samples: Vec::new() }
    }

    /// A family with a single unlabelled sample.
    pub fn single(name: &str, help: &str, kind: Kind, value: f64) -> Family {
        Family { samples: vec![Sample::new(value)], ..Family::new(name, help, kind) }
    }
}

/// Encodes one snapshot.
pub fn encode(snapshot: &Snapshot) -> String {
    encode_with(snapshot, &[])
}

/// Encodes one snapshot followed by the caller's `extra` families, all in one sorted output.
pub fn encode_with(snapshot: &Snapshot, extra: &[Family]) -> String {
    let mut families = families(snapshot);
    for f in extra {
        if !families.iter().any(|g| g.name == f.name) {
            families.push(f.clone());
        }
    }
    write(&mut families)
}

/// Writes families in client_golang's layout (sorting them, their samples and labels first).
pub fn write(families: &mut [Family]) -> String {
    families.sort_by(|a, b| a.name.cmp(&b.name));
    let n_samples: usize = families.iter().map(|f| f.samples.len()).sum();
    let mut out = String::with_capacity(n_samples * 64 + families.len() * 96);
    for family in families.iter_mut() {
        if family.samples.is_empty() {
            continue;
        }
        for s in &mut family.samples {
            s.labels.sort_by(|a, b| a.0.cmp(&b.0));
        }
        family
            .samples
            .sort_by(|a, b| a.labels.iter().map(|l| &l.1).cmp(b.labels.iter().map(|l| &l.1)));
        out.push_str("# HELP ");
        out.push_str(&family.name);
        out.push(' ');
        escape_help(&mut out, &family.help);
        out.push_str("\n# TYPE ");
        out.push_str(&family.name);
        out.push(' ');
        out.push_str(family.kind.as_str());
        out.push('\n');
        for s in &family.samples {
            out.push_str(&family.name);
            if !s.labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in s.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(k);
                    out.push_str("=\"");
                    escape_label_value(&mut out, v);
                    out.push('"');
                }
                out.push('}');
            }
            out.push(' ');
            float::push_prometheus(&mut out, s.value);
            out.push('\n');
        }
    }
    out
}

fn escape_help(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_label_value(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// Turns a /proc/meminfo field name into node_exporter's: `Active(anon)` becomes `Active_anon`.
pub fn meminfo_metric_name(field: &str, bytes: bool) -> String {
    let mut name = String::with_capacity(field.len() + 20);
    push_meminfo_metric_name(&mut name, field, bytes);
    name
}

/// Appends [`meminfo_metric_name`] to `name` (for writers that reuse one buffer).
pub fn push_meminfo_metric_name(name: &mut String, field: &str, bytes: bool) {
    name.push_str("node_memory_");
    for c in field.chars() {
        match c {
            '(' => name.push('_'),
            ')' => {}
            c if c.is_ascii_alphanumeric() || c == '_' => name.push(c),
            _ => name.push('_'),
        }
    }
    if bytes {
        name.push_str("_bytes");
    }
}

/// The families of a snapshot, unsorted.
pub fn families(s: &Snapshot) -> Vec<Family> {
    let mut out = Vec::with_capacity(128);
    use Kind::{Counter, Gauge};

    out.push(Family::single(
        "node_time_seconds",
        "System time in seconds since epoch (1970).",
        Gauge,
        s.timestamp,
    ));
    if let Some(b) = s.boot_time {
        out.push(Family::single(
            "node_boot_time_seconds",
            "Node boot time, in unixtime.",
            Gauge,
            b as f64,
        ));
    }
    if let Some(u) = s.uptime {
        out.push(Family::single(
            "pocketses_uptime_seconds",
            "Seconds since boot, from /proc/uptime.",
            Gauge,
            u,
        ));
    }
    if let Some(l) = s.load {
        out.push(Family::single("node_load1", "1m load average.", Gauge, l.one));
        out.push(Family::single("node_load5", "5m load average.", Gauge, l.five));
        out.push(Family::single("node_load15", "15m load average.", Gauge, l.fifteen));
    }
    if let Some(u) = &s.uname {
        let labels = [
            ("domainname", u.domainname.as_str()),
            ("machine", u.machine.as_str()),
            ("nodename", u.nodename.as_str()),
            ("release", u.release.as_str()),
            ("sysname", u.sysname.as_str()),
            ("version", u.version.as_str()),
        ];
        let mut f = Family::new(
            "node_uname_info",
            "Labeled system information as provided by the uname system call.",
            Gauge,
        );
        f.samples.push(Sample::with(&labels, 1.0));
        out.push(f);
    }
    cpu_families(s, &mut out);
    memory_families(s, &mut out);
    network_families(s, &mut out);
    filesystem_families(s, &mut out);
    temperature_families(s, &mut out);
    if let Some(p) = &s.process {
        out.push(Family::single(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            Counter,
            p.cpu_seconds,
        ));
        out.push(Family::single(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            Gauge,
            p.resident_bytes as f64,
        ));
        out.push(Family::single(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            Gauge,
            p.virtual_bytes as f64,
        ));
        out.push(Family::single(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            Gauge,
            p.start_time,
        ));
    }
    out
}

fn cpu_families(s: &Snapshot, out: &mut Vec<Family>) {
    use Kind::{Counter, Gauge};
    let Some(cpu) = &s.cpu else { return };
    let mut seconds =
        Family::new("node_cpu_seconds_total", "Seconds the CPUs spent in each mode.", Counter);
    let mut guest = Family::new(
        "node_cpu_guest_seconds_total",
        "Seconds the CPUs spent in guests (VMs) for each mode.",
        Counter,
    );
    let mut cur = Family::new(
        "node_cpu_scaling_frequency_hertz",
        "Current scaled CPU thread frequency in hertz.",
        Gauge,
    );
    let mut max = Family::new(
        "node_cpu_scaling_frequency_max_hertz",
        "Maximum scaled CPU thread frequency in hertz.",
        Gauge,
    );
    let mut min = Family::new(
        "node_cpu_scaling_frequency_min_hertz",
        "Minimum scaled CPU thread frequency in hertz.",
        Gauge,
    );
    let mut cpuinfo = Family::new(
        "pocketses_cpu_frequency_hertz",
        "Current CPU frequency in hertz from /proc/cpuinfo, on hosts without cpufreq.",
        Gauge,
    );
    let mut util = Family::new(
        "pocketses_cpu_utilization_ratio",
        "Busy fraction of each CPU (neither idle nor iowait) since the previous collection.",
        Gauge,
    );
    for core in &cpu.cores {
        let id = core.id.to_string();
        let t = &core.times;
        for (mode, v) in [
            ("idle", t.idle),
            ("iowait", t.iowait),
            ("irq", t.irq),
            ("nice", t.nice),
            ("softirq", t.softirq),
            ("steal", t.steal),
            ("system", t.system),
            ("user", t.user),
        ] {
            seconds.samples.push(Sample::with(&[("cpu", &id), ("mode", mode)], v));
        }
        guest.samples.push(Sample::with(&[("cpu", &id), ("mode", "nice")], t.guest_nice));
        guest.samples.push(Sample::with(&[("cpu", &id), ("mode", "user")], t.guest));
        util.samples.push(Sample::with(&[("cpu", &id)], core.utilisation / 100.0));
        let f = &core.frequency;
        match f.source {
            FrequencySource::Cpufreq => {
                for (family, v) in [(&mut cur, f.current), (&mut max, f.max), (&mut min, f.min)] {
                    if let Some(v) = v {
                        family.samples.push(Sample::with(&[("cpu", &id)], v));
                    }
                }
            }
            FrequencySource::Cpuinfo => {
                if let Some(v) = f.current {
                    cpuinfo.samples.push(Sample::with(&[("cpu", &id)], v));
                }
            }
            FrequencySource::None => {}
        }
    }
    out.extend([seconds, guest, cur, max, min, cpuinfo, util]);
    out.push(Family::single(
        "pocketses_cpu_overall_utilization_ratio",
        "Busy fraction of all CPUs together (neither idle nor iowait) since the previous collection.",
        Gauge,
        cpu.utilisation / 100.0,
    ));
    out.push(Family::single(
        "pocketses_cpus",
        "Number of online logical CPUs.",
        Gauge,
        cpu.count as f64,
    ));
}

fn memory_families(s: &Snapshot, out: &mut Vec<Family>) {
    let Some(m) = &s.memory else { return };
    for field in &m.fields {
        let name = meminfo_metric_name(&field.name, field.bytes);
        let help = format!("Memory information field {}.", &name["node_memory_".len()..]);
        out.push(Family::single(&name, &help, Kind::Gauge, field.value as f64));
    }
    out.push(Family::single(
        "pocketses_memory_used_bytes",
        "Memory in use: MemTotal - MemAvailable, in bytes.",
        Kind::Gauge,
        m.used as f64,
    ));
    out.push(Family::single(
        "pocketses_swap_used_bytes",
        "Swap in use: SwapTotal - SwapFree, in bytes.",
        Kind::Gauge,
        m.swap.used as f64,
    ));
}

fn network_families(s: &Snapshot, out: &mut Vec<Family>) {
    use Kind::{Counter, Gauge};
    if s.network.is_empty() {
        return;
    }
    let mut counters: Vec<Family> = Vec::with_capacity(8);
    let mut rates: Vec<Family> = Vec::with_capacity(8);
    for dir in ["receive", "transmit"] {
        for stat in ["bytes", "drop", "errs", "packets"] {
            counters.push(Family::new(
                &format!("node_network_{dir}_{stat}_total"),
                &format!("Network device statistic {dir}_{stat}."),
                Counter,
            ));
            let what = match stat {
                "bytes" => "Bytes",
                "drop" => "Dropped packets",
                "errs" => "Errors",
                _ => "Packets",
            };
            rates.push(Family::new(
                &format!("pocketses_network_{dir}_{stat}_per_second"),
                &format!("{what} {dir}d per second since the previous collection."),
                Gauge,
            ));
        }
    }
    let mut addresses =
        Family::new("node_network_address_info", "node network address by device", Gauge);
    let mut info = Family::new(
        "node_network_info",
        "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
        Gauge,
    );
    let mut up =
        Family::new("node_network_up", "Value is 1 if operstate is 'up', 0 otherwise.", Gauge);
    for iface in &s.network {
        let dev = iface.name.as_str();
        if iface.has_counters {
            for (i, c) in [iface.rx, iface.tx].iter().enumerate() {
                for (j, v) in [c.bytes, c.drop, c.errs, c.packets].iter().enumerate() {
                    counters[i * 4 + j].samples.push(Sample::with(&[("device", dev)], *v as f64));
                }
            }
        }
        for (i, r) in [iface.rx_rate, iface.tx_rate].iter().enumerate() {
            let Some(r) = r else { continue };
            for (j, v) in [r.bytes, r.drop, r.errs, r.packets].iter().enumerate() {
                rates[i * 4 + j].samples.push(Sample::with(&[("device", dev)], *v));
            }
        }
        let link = &iface.link;
        if let Some(operstate) = &link.operstate {
            let text = |v: &Option<String>| v.clone().unwrap_or_default();
            let (address, broadcast, duplex, ifalias) = (
                text(&link.address),
                text(&link.broadcast),
                text(&link.duplex),
                text(&link.ifalias),
            );
            info.samples.push(Sample::with(
                &[
                    ("address", &address),
                    ("broadcast", &broadcast),
                    ("device", dev),
                    ("duplex", &duplex),
                    ("ifalias", &ifalias),
                    ("operstate", operstate),
                ],
                1.0,
            ));
            up.samples
                .push(Sample::with(&[("device", dev)], if operstate == "up" { 1.0 } else { 0.0 }));
        }
        for a in &iface.addresses {
            let ip = a.ip.to_string();
            let mask = a.prefix_len.to_string();
            addresses.samples.push(Sample::with(
                &[("address", &ip), ("device", dev), ("netmask", &mask), ("scope", a.scope())],
                1.0,
            ));
        }
    }
    out.extend(counters);
    out.extend(rates);
    out.extend([addresses, info, up]);
}

fn filesystem_families(s: &Snapshot, out: &mut Vec<Family>) {
    use Kind::Gauge;
    if s.filesystems.is_empty() {
        return;
    }
    let mut avail = Family::new(
        "node_filesystem_avail_bytes",
        "Filesystem space available to non-root users in bytes.",
        Gauge,
    );
    let mut error = Family::new(
        "node_filesystem_device_error",
        "Whether an error occurred while getting statistics for the given device.",
        Gauge,
    );
    let mut files = Family::new("node_filesystem_files", "Filesystem total file nodes.", Gauge);
    let mut files_free =
        Family::new("node_filesystem_files_free", "Filesystem total free file nodes.", Gauge);
    let mut free =
        Family::new("node_filesystem_free_bytes", "Filesystem free space in bytes.", Gauge);
    let mut readonly =
        Family::new("node_filesystem_readonly", "Filesystem read-only status.", Gauge);
    let mut size = Family::new("node_filesystem_size_bytes", "Filesystem size in bytes.", Gauge);
    let mut used = Family::new(
        "pocketses_filesystem_used_bytes",
        "Filesystem space in use (size - free) in bytes.",
        Gauge,
    );
    for fs in &s.filesystems {
        let labels = [
            ("device", fs.device.as_str()),
            ("fstype", fs.fs_type.as_str()),
            ("mountpoint", fs.mount_point.as_str()),
        ];
        error.samples.push(Sample::with(&labels, if fs.usage.is_some() { 0.0 } else { 1.0 }));
        let Some(u) = fs.usage else { continue };
        avail.samples.push(Sample::with(&labels, u.available as f64));
        files.samples.push(Sample::with(&labels, u.files as f64));
        files_free.samples.push(Sample::with(&labels, u.files_free as f64));
        free.samples.push(Sample::with(&labels, u.free as f64));
        readonly.samples.push(Sample::with(&labels, if fs.read_only { 1.0 } else { 0.0 }));
        size.samples.push(Sample::with(&labels, u.total as f64));
        used.samples.push(Sample::with(&labels, u.used as f64));
    }
    out.extend([avail, error, files, files_free, free, readonly, size, used]);
}

fn temperature_families(s: &Snapshot, out: &mut Vec<Family>) {
    use Kind::Gauge;
    if s.temperatures.is_empty() {
        return;
    }
    let mut hwmon =
        Family::new("node_hwmon_temp_celsius", "Hardware monitor for temperature (input)", Gauge);
    let mut labels =
        Family::new("node_hwmon_sensor_label", "Label for given chip and sensor", Gauge);
    let mut zones = Family::new("node_thermal_zone_temp", "Zone temperature in Celsius", Gauge);
    for t in &s.temperatures {
        match t.kind {
            SensorKind::Hwmon => {
                hwmon
                    .samples
                    .push(Sample::with(&[("chip", &t.chip), ("sensor", &t.sensor)], t.celsius));
                if let Some(label) = &t.label {
                    labels.samples.push(Sample::with(
                        &[("chip", &t.chip), ("label", label), ("sensor", &t.sensor)],
                        1.0,
                    ));
                }
            }
            SensorKind::ThermalZone => {
                zones
                    .samples
                    .push(Sample::with(&[("type", &t.sensor), ("zone", &t.chip)], t.celsius));
            }
        }
    }
    out.extend([hwmon, labels, zones]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::encode::sample_snapshot;
    use expect_test::expect;
    use proptest::prelude::*;

    /// (name, HELP, TYPE) of a family.
    type Meta = (String, String, String);
    /// (name, labels, value) of a sample.
    type Parsed = (String, Vec<(String, String)>, f64);

    /// A small reader of the text format for the round-trip tests: (name, labels, value) per
    /// sample, plus HELP and TYPE per family.
    fn parse(text: &str) -> (Vec<Meta>, Vec<Parsed>) {
        let mut meta = Vec::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').expect("help");
                meta.push((name.to_string(), unescape(help, false), String::new()));
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("type");
                let last = meta.last_mut().expect("help before type");
                assert_eq!(last.0, name);
                last.2 = kind.to_string();
            } else {
                let (series, value) = line.rsplit_once(' ').expect("value");
                let value: f64 = match value {
                    "+Inf" => f64::INFINITY,
                    "-Inf" => f64::NEG_INFINITY,
                    v => v.parse().expect("float"),
                };
                let (name, labels) = match series.split_once('{') {
                    None => (series.to_string(), Vec::new()),
                    Some((name, rest)) => {
                        (name.to_string(), parse_labels(rest.strip_suffix('}').expect("}")))
                    }
                };
                samples.push((name, labels, value));
            }
        }
        (meta, samples)
    }

    fn parse_labels(mut s: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        while !s.is_empty() {
            let (k, rest) = s.split_once("=\"").expect("label");
            let mut v = String::new();
            let mut chars = rest.char_indices();
            let mut end = 0;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => v.push(match chars.next().expect("escape").1 {
                        'n' => '\n',
                        c => c,
                    }),
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            out.push((k.to_string(), v));
            s = rest[end..].strip_prefix(',').unwrap_or(&rest[end..]);
        }
        out
    }

    fn unescape(s: &str, _label: bool) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            match (c, c == '\\') {
                (_, true) => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some(n) => out.push(n),
                    None => out.push('\\'),
                },
                (c, false) => out.push(c),
            }
        }
        out
    }

    #[test]
    fn golden() {
        expect_test::expect_file!["../../../tests/fixtures/encode/sample.prom"]
            .assert_eq(&encode(&sample_snapshot()));
    }

    #[test]
    fn meminfo_names_like_node_exporter() {
        assert_eq!(meminfo_metric_name("Active(anon)", true), "node_memory_Active_anon_bytes");
        assert_eq!(meminfo_metric_name("HugePages_Total", false), "node_memory_HugePages_Total");
        assert_eq!(meminfo_metric_name("MemTotal", true), "node_memory_MemTotal_bytes");
    }

    #[test]
    fn layout_sorting_and_escaping() {
        let mut fams = vec![
            Family {
                name: "b_total".to_string(),
                help: "Back\\slash and\nnewline.".to_string(),
                kind: Kind::Counter,
                samples: vec![
                    Sample::with(&[("z", "1"), ("a", "x\"y\\z\nw")], 2.0),
                    Sample::with(&[("z", "10"), ("a", "a")], -0.0),
                    Sample::with(&[("z", "2"), ("a", "a")], 1e21),
                ],
            },
            Family::single("a", "First.", Kind::Gauge, f64::NAN),
            Family::new("c_empty", "Not written.", Kind::Untyped),
        ];
        expect![[r#"
            # HELP a First.
            # TYPE a gauge
            a NaN
            # HELP b_total Back\\slash and\nnewline.
            # TYPE b_total counter
            b_total{a="a",z="10"} 0
            b_total{a="a",z="2"} 1e+21
            b_total{a="x\"y\\z\nw",z="1"} 2
        "#]]
        .assert_eq(&write(&mut fams));
    }

    #[test]
    fn extra_families_join_the_sort_and_cannot_steal_names() {
        let extra = [
            Family::single("pocketses_subscribers", "Connected subscribers.", Kind::Gauge, 3.0),
            Family::single("node_load1", "Impostor.", Kind::Gauge, 99.0),
        ];
        let text = encode_with(&sample_snapshot(), &extra);
        assert!(text.contains("# TYPE pocketses_subscribers gauge\npocketses_subscribers 3\n"));
        assert!(text.contains("node_load1 1.17\n"));
        assert!(!text.contains("99"));
        let (meta, _) = parse(&text);
        let names: Vec<&str> = meta.iter().map(|m| m.0.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted, "families sorted and unique");
    }

    #[test]
    fn every_family_has_help_type_and_samples() {
        let text = encode(&sample_snapshot());
        assert!(text.ends_with('\n'));
        let (meta, samples) = parse(&text);
        for (name, help, kind) in &meta {
            assert!(!help.is_empty(), "{name}");
            assert!(["counter", "gauge"].contains(&kind.as_str()), "{name}");
            assert_eq!(kind == "counter", name.ends_with("_total"), "{name}");
            assert!(samples.iter().any(|s| &s.0 == name), "{name}");
        }
        for (name, labels, _) in &samples {
            let keys: Vec<&String> = labels.iter().map(|l| &l.0).collect();
            let mut sorted = keys.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(keys, sorted, "{name}: labels sorted and unique");
        }
    }

    #[test]
    fn names_match_node_exporter_output() {
        // Every node_* family we write that the Debian node_exporter on this kind of host also
        // wrote has the same TYPE and HELP.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/node_exporter/debian-1.5.0-vm.prom"
        );
        let reference = std::fs::read_to_string(path).expect("fixture");
        let (theirs, their_samples) = parse(&reference);
        let (ours, our_samples) = parse(&encode(&sample_snapshot()));
        let mut compared = 0;
        for (name, help, kind) in
            ours.iter().filter(|m| m.0.starts_with("node_") || m.0.starts_with("process_"))
        {
            if let Some(t) = theirs.iter().find(|t| &t.0 == name) {
                assert_eq!((help, kind), (&t.1, &t.2), "{name}");
                let label_names = |s: &[Parsed]| {
                    s.iter()
                        .find(|x| &x.0 == name)
                        .map(|x| x.1.iter().map(|l| l.0.clone()).collect::<Vec<_>>())
                };
                assert_eq!(label_names(&our_samples), label_names(&their_samples), "{name}");
                compared += 1;
            }
        }
        assert!(compared > 30, "only {compared} families compared");
    }

    proptest! {
        #[test]
        fn values_and_labels_read_back(v in any::<f64>(), label in "(\\PC|\\\\n|\n|\"){0,12}", help in "(\\PC|\\\\n|\n){0,12}") {
            let mut fams = vec![Family {
                name: "x".to_string(),
                help: help.clone(),
                kind: Kind::Gauge,
                samples: vec![Sample::with(&[("l", &label)], v)],
            }];
            let (meta, samples) = parse(&write(&mut fams));
            prop_assert_eq!(&meta[0].1, &help);
            prop_assert_eq!(&samples[0].1[0].1, &label);
            let back = samples[0].2;
            prop_assert!(back.to_bits() == v.to_bits() || (v.is_nan() && back.is_nan()) || (v == 0.0 && back == 0.0));
        }
    }
}
