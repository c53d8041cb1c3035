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

use std::fmt::{self, Write as _};

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

/// What [`walk`] tells a writer, family by family: the family's name, HELP and TYPE, then its
/// samples. This walk is the one owner of which series a snapshot has, with what names, labels
/// and values: [`families`] collects them for `/metrics`, and the push writer
/// (`push::encode::series`) writes remote-write series from them as it goes.
pub trait Visit {
    /// A family begins; the samples that follow are its own. Called for every family of each
    /// section the snapshot has, also when the family gets no samples.
    fn family(&mut self, name: &str, help: fmt::Arguments<'_>, kind: Kind);
    /// One sample of the family last begun (`name` is its name); `labels` sorted by name.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64);
}

/// The families of a snapshot, in [`walk`]'s order (unsorted).
pub fn families(s: &Snapshot) -> Vec<Family> {
    /// Collects owned families.
    struct Collect(Vec<Family>);
    impl Visit for Collect {
        fn family(&mut self, name: &str, help: fmt::Arguments<'_>, kind: Kind) {
            self.0.push(Family {
                name: name.to_string(),
                help: help.to_string(),
                kind,
                samples: Vec::new(),
            });
        }
        fn sample(&mut self, _name: &str, labels: &[(&str, &str)], value: f64) {
            if let Some(f) = self.0.last_mut() {
                f.samples.push(Sample::with(labels, value));
            }
        }
    }
    let mut c = Collect(Vec::with_capacity(128));
    walk(s, &mut c);
    c.0
}

/// Tells `v` the families of `s` and their samples in order: family by family, samples in the
/// snapshot's order. One copy of the walk serves every writer (`dyn`).
#[allow(clippy::cast_precision_loss)] // counters and byte counts as f64, as client_golang has them
pub fn walk(s: &Snapshot, v: &mut dyn Visit) {
    let w = &mut Walker(v);
    w.single("node_time_seconds", "System time in seconds since epoch (1970).", s.timestamp);
    if let Some(b) = s.boot_time {
        w.single("node_boot_time_seconds", "Node boot time, in unixtime.", b as f64);
    }
    if let Some(u) = s.uptime {
        w.single("pocketses_uptime_seconds", "Seconds since boot, from /proc/uptime.", u);
    }
    if let Some(l) = s.load {
        w.single("node_load1", "1m load average.", l.one);
        w.single("node_load5", "5m load average.", l.five);
        w.single("node_load15", "15m load average.", l.fifteen);
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
        let name = "node_uname_info";
        w.gauge(name, "Labeled system information as provided by the uname system call.");
        w.sample(name, &labels, 1.0);
    }
    cpu(w, s);
    memory(w, s);
    network(w, s);
    filesystems(w, s);
    temperatures(w, s);
    if let Some(p) = &s.process {
        let name = "process_cpu_seconds_total";
        w.family(name, "Total user and system CPU time spent in seconds.", Kind::Counter);
        w.sample(name, &[], p.cpu_seconds);
        let resident = p.resident_bytes as f64;
        w.single("process_resident_memory_bytes", "Resident memory size in bytes.", resident);
        let virt = p.virtual_bytes as f64;
        w.single("process_virtual_memory_bytes", "Virtual memory size in bytes.", virt);
        let help = "Start time of the process since unix epoch in seconds.";
        w.single("process_start_time_seconds", help, p.start_time);
    }
}

/// The walk's shorthand over a [`Visit`].
struct Walker<'v>(&'v mut dyn Visit);

impl Walker<'_> {
    fn family(&mut self, name: &str, help: &str, kind: Kind) {
        self.0.family(name, format_args!("{help}"), kind);
    }

    fn gauge(&mut self, name: &str, help: &str) {
        self.family(name, help, Kind::Gauge);
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        debug_assert!(labels.windows(2).all(|p| p[0].0 < p[1].0), "{name}: labels not sorted");
        self.0.sample(name, labels, value);
    }

    /// A gauge family with one sample without labels.
    fn single(&mut self, name: &str, help: &str, value: f64) {
        self.gauge(name, help);
        self.sample(name, &[], value);
    }
}

/// A CPU's id as text, in a buffer on the stack.
struct Id {
    buf: [u8; 10],
    len: usize,
}

impl Id {
    fn new(id: u32) -> Id {
        let mut buf = [0u8; 10];
        let mut n = id;
        let mut len = 0;
        loop {
            // One decimal digit: below 10, so the cast keeps it.
            #[allow(clippy::cast_possible_truncation)]
            let digit = (n % 10) as u8;
            buf[len] = b'0' + digit;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        buf[..len].reverse();
        Id { buf, len }
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits were written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

#[allow(clippy::cast_precision_loss)] // the CPU count as f64
fn cpu(w: &mut Walker<'_>, s: &Snapshot) {
    let Some(cpu) = &s.cpu else { return };
    let ids: Vec<Id> = cpu.cores.iter().map(|c| Id::new(c.id)).collect();
    let cores = || cpu.cores.iter().zip(ids.iter().map(Id::as_str));
    let name = "node_cpu_seconds_total";
    w.family(name, "Seconds the CPUs spent in each mode.", Kind::Counter);
    for (core, id) in cores() {
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
            w.sample(name, &[("cpu", id), ("mode", mode)], v);
        }
    }
    let name = "node_cpu_guest_seconds_total";
    w.family(name, "Seconds the CPUs spent in guests (VMs) for each mode.", Kind::Counter);
    for (core, id) in cores() {
        let t = &core.times;
        w.sample(name, &[("cpu", id), ("mode", "nice")], t.guest_nice);
        w.sample(name, &[("cpu", id), ("mode", "user")], t.guest);
    }
    type Pick = fn(&crate::metrics::Frequency) -> Option<f64>;
    let cpufreq: [(&str, &str, Pick); 3] = [
        (
            "node_cpu_scaling_frequency_hertz",
            "Current scaled CPU thread frequency in hertz.",
            |f| f.current,
        ),
        (
            "node_cpu_scaling_frequency_max_hertz",
            "Maximum scaled CPU thread frequency in hertz.",
            |f| f.max,
        ),
        (
            "node_cpu_scaling_frequency_min_hertz",
            "Minimum scaled CPU thread frequency in hertz.",
            |f| f.min,
        ),
    ];
    for (name, help, pick) in cpufreq {
        w.gauge(name, help);
        for (core, id) in cores() {
            if core.frequency.source == FrequencySource::Cpufreq {
                if let Some(v) = pick(&core.frequency) {
                    w.sample(name, &[("cpu", id)], v);
                }
            }
        }
    }
    let name = "pocketses_cpu_frequency_hertz";
    w.gauge(name, "Current CPU frequency in hertz from /proc/cpuinfo, on hosts without cpufreq.");
    for (core, id) in cores() {
        if core.frequency.source == FrequencySource::Cpuinfo {
            if let Some(v) = core.frequency.current {
                w.sample(name, &[("cpu", id)], v);
            }
        }
    }
    let name = "pocketses_cpu_utilization_ratio";
    w.gauge(
        name,
        "Busy fraction of each CPU (neither idle nor iowait) since the previous collection.",
    );
    for (core, id) in cores() {
        w.sample(name, &[("cpu", id)], core.utilisation / 100.0);
    }
    w.single(
        "pocketses_cpu_overall_utilization_ratio",
        "Busy fraction of all CPUs together (neither idle nor iowait) since the previous collection.",
        cpu.utilisation / 100.0,
    );
    w.single("pocketses_cpus", "Number of online logical CPUs.", cpu.count as f64);
}

#[allow(clippy::cast_precision_loss)] // byte counts as f64, as node_exporter has them
fn memory(w: &mut Walker<'_>, s: &Snapshot) {
    let Some(m) = &s.memory else { return };
    let mut name = String::with_capacity(64);
    for field in &m.fields {
        name.clear();
        push_meminfo_metric_name(&mut name, &field.name, field.bytes);
        let short = &name["node_memory_".len()..];
        w.0.family(&name, format_args!("Memory information field {short}."), Kind::Gauge);
        w.sample(&name, &[], field.value as f64);
    }
    let help = "Memory in use: MemTotal - MemAvailable, in bytes.";
    w.single("pocketses_memory_used_bytes", help, m.used as f64);
    let help = "Swap in use: SwapTotal - SwapFree, in bytes.";
    w.single("pocketses_swap_used_bytes", help, m.swap.used as f64);
}

/// `node_network_{dir}_{stat}_total` and its HELP: receive then transmit; bytes, drop, errs,
/// packets.
const NET_COUNTERS: [(&str, &str); 8] = [
    ("node_network_receive_bytes_total", "Network device statistic receive_bytes."),
    ("node_network_receive_drop_total", "Network device statistic receive_drop."),
    ("node_network_receive_errs_total", "Network device statistic receive_errs."),
    ("node_network_receive_packets_total", "Network device statistic receive_packets."),
    ("node_network_transmit_bytes_total", "Network device statistic transmit_bytes."),
    ("node_network_transmit_drop_total", "Network device statistic transmit_drop."),
    ("node_network_transmit_errs_total", "Network device statistic transmit_errs."),
    ("node_network_transmit_packets_total", "Network device statistic transmit_packets."),
];

/// `pocketses_network_{dir}_{stat}_per_second` and its HELP, in the order of [`NET_COUNTERS`].
const NET_RATES: [(&str, &str); 8] = [
    (
        "pocketses_network_receive_bytes_per_second",
        "Bytes received per second since the previous collection.",
    ),
    (
        "pocketses_network_receive_drop_per_second",
        "Dropped packets received per second since the previous collection.",
    ),
    (
        "pocketses_network_receive_errs_per_second",
        "Errors received per second since the previous collection.",
    ),
    (
        "pocketses_network_receive_packets_per_second",
        "Packets received per second since the previous collection.",
    ),
    (
        "pocketses_network_transmit_bytes_per_second",
        "Bytes transmitted per second since the previous collection.",
    ),
    (
        "pocketses_network_transmit_drop_per_second",
        "Dropped packets transmitted per second since the previous collection.",
    ),
    (
        "pocketses_network_transmit_errs_per_second",
        "Errors transmitted per second since the previous collection.",
    ),
    (
        "pocketses_network_transmit_packets_per_second",
        "Packets transmitted per second since the previous collection.",
    ),
];

#[allow(clippy::cast_precision_loss)] // packet and byte counters as f64, as node_exporter has them
fn network(w: &mut Walker<'_>, s: &Snapshot) {
    if s.network.is_empty() {
        return;
    }
    for (n, (name, help)) in NET_COUNTERS.iter().enumerate() {
        w.family(name, help, Kind::Counter);
        for iface in s.network.iter().filter(|i| i.has_counters) {
            let c = if n < 4 { iface.rx } else { iface.tx };
            let v = [c.bytes, c.drop, c.errs, c.packets][n % 4];
            w.sample(name, &[("device", &iface.name)], v as f64);
        }
    }
    for (n, (name, help)) in NET_RATES.iter().enumerate() {
        w.gauge(name, help);
        for iface in &s.network {
            let Some(r) = (if n < 4 { iface.rx_rate } else { iface.tx_rate }) else { continue };
            let v = [r.bytes, r.drop, r.errs, r.packets][n % 4];
            w.sample(name, &[("device", &iface.name)], v);
        }
    }
    let name = "node_network_address_info";
    w.gauge(name, "node network address by device");
    let mut ip = String::with_capacity(48);
    let mut mask = String::with_capacity(4);
    for iface in &s.network {
        for a in &iface.addresses {
            ip.clear();
            mask.clear();
            let _ = write!(ip, "{}", a.ip);
            let _ = write!(mask, "{}", a.prefix_len);
            let labels = [
                ("address", ip.as_str()),
                ("device", &iface.name),
                ("netmask", &mask),
                ("scope", a.scope()),
            ];
            w.sample(name, &labels, 1.0);
        }
    }
    let name = "node_network_info";
    w.gauge(name, "Non-numeric data from /sys/class/net/<iface>, value is always 1.");
    for iface in &s.network {
        let link = &iface.link;
        let Some(operstate) = &link.operstate else { continue };
        fn text(v: &Option<String>) -> &str {
            v.as_deref().unwrap_or("")
        }
        let labels = [
            ("address", text(&link.address)),
            ("broadcast", text(&link.broadcast)),
            ("device", iface.name.as_str()),
            ("duplex", text(&link.duplex)),
            ("ifalias", text(&link.ifalias)),
            ("operstate", operstate.as_str()),
        ];
        w.sample(name, &labels, 1.0);
    }
    let name = "node_network_up";
    w.gauge(name, "Value is 1 if operstate is 'up', 0 otherwise.");
    for iface in &s.network {
        let Some(operstate) = &iface.link.operstate else { continue };
        let up = if operstate == "up" { 1.0 } else { 0.0 };
        w.sample(name, &[("device", &iface.name)], up);
    }
}

#[allow(clippy::cast_precision_loss)] // byte and inode counts as f64, as node_exporter has them
fn filesystems(w: &mut Walker<'_>, s: &Snapshot) {
    if s.filesystems.is_empty() {
        return;
    }
    type Pick = fn(&crate::metrics::Filesystem, &crate::metrics::FsUsage) -> f64;
    let families: [(&str, &str, Pick); 8] = [
        (
            "node_filesystem_avail_bytes",
            "Filesystem space available to non-root users in bytes.",
            |_, u| u.available as f64,
        ),
        (
            "node_filesystem_device_error",
            "Whether an error occurred while getting statistics for the given device.",
            |_, _| 0.0,
        ),
        ("node_filesystem_files", "Filesystem total file nodes.", |_, u| u.files as f64),
        ("node_filesystem_files_free", "Filesystem total free file nodes.", |_, u| {
            u.files_free as f64
        }),
        ("node_filesystem_free_bytes", "Filesystem free space in bytes.", |_, u| u.free as f64),
        ("node_filesystem_readonly", "Filesystem read-only status.", |fs, _| {
            if fs.read_only {
                1.0
            } else {
                0.0
            }
        }),
        ("node_filesystem_size_bytes", "Filesystem size in bytes.", |_, u| u.total as f64),
        (
            "pocketses_filesystem_used_bytes",
            "Filesystem space in use (size - free) in bytes.",
            |_, u| u.used as f64,
        ),
    ];
    for (name, help, pick) in families {
        w.gauge(name, help);
        for fs in &s.filesystems {
            let labels = [
                ("device", fs.device.as_str()),
                ("fstype", fs.fs_type.as_str()),
                ("mountpoint", fs.mount_point.as_str()),
            ];
            match fs.usage {
                Some(u) => w.sample(name, &labels, pick(fs, &u)),
                // A filesystem without figures has only its error series.
                None if name == "node_filesystem_device_error" => w.sample(name, &labels, 1.0),
                None => {}
            }
        }
    }
}

fn temperatures(w: &mut Walker<'_>, s: &Snapshot) {
    if s.temperatures.is_empty() {
        return;
    }
    let hwmon = || s.temperatures.iter().filter(|t| t.kind == SensorKind::Hwmon);
    let name = "node_hwmon_temp_celsius";
    w.gauge(name, "Hardware monitor for temperature (input)");
    for t in hwmon() {
        w.sample(name, &[("chip", &t.chip), ("sensor", &t.sensor)], t.celsius);
    }
    let name = "node_hwmon_sensor_label";
    w.gauge(name, "Label for given chip and sensor");
    for t in hwmon() {
        if let Some(label) = &t.label {
            let labels = [("chip", t.chip.as_str()), ("label", label), ("sensor", &t.sensor)];
            w.sample(name, &labels, 1.0);
        }
    }
    let name = "node_thermal_zone_temp";
    w.gauge(name, "Zone temperature in Celsius");
    for t in s.temperatures.iter().filter(|t| t.kind == SensorKind::ThermalZone) {
        w.sample(name, &[("type", &t.sensor), ("zone", &t.chip)], t.celsius);
    }
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
    fn cpu_ids_as_text() {
        for id in [0, 7, 10, 99, 100, 4_294_967_295] {
            assert_eq!(Id::new(id).as_str(), id.to_string());
        }
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
