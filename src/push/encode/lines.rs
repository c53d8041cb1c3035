//! A snapshot's influx lines with a sink's tags, written straight from the [`Snapshot`]. \[pure\]
//!
//! The lines are those of [`crate::metrics::encode::influx::lines`] written by
//! [`crate::metrics::encode::influx::write_line`], with the sink's tags applied as
//! [`super::record`] documents (a line keeps a tag of its own; `host` may be set by a tag), in
//! the same order and byte for byte; `lines` builds an owned `Line` with owned keys for every
//! tag and field, which this writer borrows or takes as static strings instead.
//! `tests::same_bytes_as_the_lines_path` compares the two for snapshots that take every branch.
//!
//! What this module does not do: check tags ([`super::check_tags`]), compress the record.

use std::fmt::Write as _;

use crate::metrics::encode::float;
use crate::metrics::encode::influx::{escape, timestamp_ns};
use crate::metrics::{SensorKind, Snapshot};

/// A field value, borrowed.
#[derive(Clone, Copy)]
enum Field<'a> {
    Float(f64),
    Int(i64),
    Str(&'a str),
}

impl From<f64> for Field<'_> {
    fn from(v: f64) -> Self {
        Field::Float(v)
    }
}

impl From<u64> for Field<'_> {
    fn from(v: u64) -> Self {
        Field::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

/// Writes lines into `out` at one timestamp with the sink's tags.
struct Writer<'o, 't> {
    out: &'o mut String,
    host: &'t str,
    sink_tags: &'t [(String, String)],
    timestamp_ns: i64,
    lines: usize,
}

const TAG_SPECIAL: [char; 3] = [',', '=', ' '];

impl Writer<'_, '_> {
    /// One line: `own` are the line's tags besides `host`; fields in the order given. A line
    /// whose fields are all NaN or infinite is not written.
    fn line(&mut self, measurement: &str, own: &[(&str, &str)], fields: &[(&str, Field<'_>)]) {
        if !fields.iter().any(|(_, v)| !matches!(v, Field::Float(f) if !f.is_finite())) {
            return;
        }
        let mut tags: Vec<(&str, &str)> = Vec::with_capacity(1 + own.len() + self.sink_tags.len());
        tags.push(("host", self.host));
        tags.extend_from_slice(own);
        for (key, value) in self.sink_tags {
            match tags.iter_mut().find(|(k, _)| *k == key) {
                Some(host) if key == "host" => host.1 = value,
                Some(_) => {}
                None => tags.push((key, value)),
            }
        }
        tags.retain(|(k, v)| !k.is_empty() && !v.is_empty());
        tags.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let out = &mut *self.out;
        escape(out, measurement, &[',', ' ']);
        for (k, v) in tags {
            out.push(',');
            escape(out, k, &TAG_SPECIAL);
            out.push('=');
            escape(out, v, &TAG_SPECIAL);
        }
        out.push(' ');
        let mut first = true;
        for (k, v) in fields {
            if matches!(v, Field::Float(f) if !f.is_finite()) {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            escape(out, k, &TAG_SPECIAL);
            out.push('=');
            match v {
                Field::Float(f) => float::push_go(out, *f),
                Field::Int(n) => {
                    let _ = write!(out, "{n}i");
                }
                Field::Str(s) => {
                    out.push('"');
                    for c in s.chars() {
                        if c == '"' || c == '\\' {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out.push('"');
                }
            }
        }
        let _ = writeln!(out, " {}", self.timestamp_ns);
        self.lines += 1;
    }
}

/// Appends the lines of `snapshot` with `tags` to `out`; returns the number of lines.
pub(super) fn write(out: &mut String, snapshot: &Snapshot, tags: &[(String, String)]) -> usize {
    let mut w = Writer {
        out,
        host: &snapshot.hostname,
        sink_tags: tags,
        timestamp_ns: timestamp_ns(snapshot.timestamp),
        lines: 0,
    };
    write_lines(&mut w, snapshot);
    w.lines
}

#[allow(clippy::cast_precision_loss)] // byte counts over totals, as `influx::lines` has them
fn write_lines(w: &mut Writer<'_, '_>, s: &Snapshot) {
    if let Some(cpu) = &s.cpu {
        let mut name = String::with_capacity(16);
        let all = std::iter::once((None, &cpu.times, cpu.utilisation, None));
        let cores =
            cpu.cores.iter().map(|c| (Some(c.id), &c.times, c.utilisation, Some(&c.frequency)));
        for (id, t, util, freq) in all.chain(cores) {
            name.clear();
            match id {
                None => name.push_str("cpu-total"),
                Some(id) => {
                    let _ = write!(name, "cpu{id}");
                }
            }
            let mut fields: Vec<(&str, Field<'_>)> = Vec::with_capacity(14);
            for (k, v) in [
                ("time_user", t.user),
                ("time_nice", t.nice),
                ("time_system", t.system),
                ("time_idle", t.idle),
                ("time_iowait", t.iowait),
                ("time_irq", t.irq),
                ("time_softirq", t.softirq),
                ("time_steal", t.steal),
                ("time_guest", t.guest),
                ("time_guest_nice", t.guest_nice),
                ("usage_active", util),
            ] {
                fields.push((k, v.into()));
            }
            if let Some(f) = freq {
                for (k, v) in [
                    ("frequency_hz", f.current),
                    ("frequency_min_hz", f.min),
                    ("frequency_max_hz", f.max),
                ] {
                    if let Some(v) = v {
                        fields.push((k, v.into()));
                    }
                }
            }
            w.line("cpu", &[("cpu", &name)], &fields);
        }
    }

    if let Some(m) = &s.memory {
        let pct = |part: u64, total: u64| {
            if total == 0 {
                0.0
            } else {
                part as f64 / total as f64 * 100.0
            }
        };
        w.line(
            "mem",
            &[],
            &[
                ("total", m.total.into()),
                ("available", m.available.into()),
                ("free", m.free.into()),
                ("used", m.used.into()),
                ("used_percent", pct(m.used, m.total).into()),
                ("available_percent", pct(m.available, m.total).into()),
            ],
        );
        w.line(
            "swap",
            &[],
            &[
                ("total", m.swap.total.into()),
                ("free", m.swap.free.into()),
                ("used", m.swap.used.into()),
                ("used_percent", pct(m.swap.used, m.swap.total).into()),
            ],
        );
    }

    let mut addresses = String::with_capacity(64);
    for iface in &s.network {
        let mut fields: Vec<(&str, Field<'_>)> = Vec::with_capacity(17);
        if iface.has_counters {
            for (k, v) in [
                ("bytes_recv", iface.rx.bytes),
                ("bytes_sent", iface.tx.bytes),
                ("packets_recv", iface.rx.packets),
                ("packets_sent", iface.tx.packets),
                ("err_in", iface.rx.errs),
                ("err_out", iface.tx.errs),
                ("drop_in", iface.rx.drop),
                ("drop_out", iface.tx.drop),
            ] {
                fields.push((k, v.into()));
            }
        }
        if let (Some(rx), Some(tx)) = (iface.rx_rate, iface.tx_rate) {
            for (k, v) in [
                ("bytes_recv_per_second", rx.bytes),
                ("bytes_sent_per_second", tx.bytes),
                ("packets_recv_per_second", rx.packets),
                ("packets_sent_per_second", tx.packets),
                ("err_in_per_second", rx.errs),
                ("err_out_per_second", tx.errs),
                ("drop_in_per_second", rx.drop),
                ("drop_out_per_second", tx.drop),
            ] {
                fields.push((k, v.into()));
            }
        }
        addresses.clear();
        for (i, a) in iface.addresses.iter().enumerate() {
            if i > 0 {
                addresses.push(',');
            }
            let _ = write!(addresses, "{}/{}", a.ip, a.prefix_len);
        }
        if !iface.addresses.is_empty() {
            fields.push(("addresses", Field::Str(&addresses)));
        }
        w.line("net", &[("interface", &iface.name)], &fields);
    }

    let mut system: Vec<(&str, Field<'_>)> = Vec::with_capacity(6);
    if let Some(l) = s.load {
        system.push(("load1", l.one.into()));
        system.push(("load5", l.five.into()));
        system.push(("load15", l.fifteen.into()));
    }
    if let Some(cpu) = &s.cpu {
        system.push(("n_cpus", (cpu.count as u64).into()));
    }
    if let Some(u) = s.uptime {
        // Telegraf's `uptime` is whole seconds.
        #[allow(clippy::cast_possible_truncation)] // saturating cast of a non-negative float
        let whole = u.max(0.0).floor() as u64;
        system.push(("uptime", whole.into()));
    }
    if let Some(b) = s.boot_time {
        system.push(("boot_time", b.into()));
    }
    w.line("system", &[], &system);

    for fs in &s.filesystems {
        let Some(u) = fs.usage else { continue };
        let denominator = u.used + u.available;
        let used_percent =
            if denominator == 0 { 0.0 } else { u.used as f64 / denominator as f64 * 100.0 };
        w.line(
            "disk",
            &[
                ("path", &fs.mount_point),
                ("device", &fs.device),
                ("fstype", &fs.fs_type),
                ("mode", if fs.read_only { "ro" } else { "rw" }),
            ],
            &[
                ("total", u.total.into()),
                ("free", u.available.into()),
                ("used", u.used.into()),
                ("used_percent", used_percent.into()),
                ("inodes_total", u.files.into()),
                ("inodes_free", u.files_free.into()),
                ("inodes_used", u.files.saturating_sub(u.files_free).into()),
            ],
        );
    }

    for t in &s.temperatures {
        let source = match t.kind {
            SensorKind::Hwmon => "hwmon",
            SensorKind::ThermalZone => "thermal_zone",
        };
        let with_label;
        let without_label;
        let tags: &[(&str, &str)] = match &t.label {
            Some(label) => {
                with_label = [
                    ("source", source),
                    ("chip", &t.chip),
                    ("sensor", &t.sensor),
                    ("label", label),
                ];
                &with_label
            }
            None => {
                without_label = [("source", source), ("chip", &t.chip), ("sensor", &t.sensor)];
                &without_label
            }
        };
        w.line("temp", tags, &[("temp", t.celsius.into())]);
    }

    if let Some(p) = &s.process {
        w.line(
            "pocketses",
            &[],
            &[
                ("cpu_seconds", p.cpu_seconds.into()),
                ("resident_bytes", p.resident_bytes.into()),
                ("virtual_bytes", p.virtual_bytes.into()),
                ("threads", p.threads.into()),
            ],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::encode::{influx, sample_snapshot};
    use crate::metrics::{Address, Core, Filesystem, FsUsage, Interface, Temperature};
    use crate::push::encode::tests::tags;

    /// The path records took before this writer: `influx::lines`, the sink's tags applied to
    /// each owned line, then `influx::write_line` (kept here as the reference).
    fn via_lines(s: &Snapshot, tags: &[(String, String)]) -> (String, usize) {
        let mut out = String::new();
        for mut line in influx::lines(s) {
            for (key, value) in tags {
                match line.tags.iter_mut().find(|(k, _)| k == key) {
                    Some(own) if key == "host" => own.1.clone_from(value),
                    Some(_) => {}
                    None => line.tags.push((key.clone(), value.clone())),
                }
            }
            influx::write_line(&mut out, &line);
        }
        let n = out.matches('\n').count();
        (out, n)
    }

    fn direct(s: &Snapshot, tags: &[(String, String)]) -> (String, usize) {
        let mut out = String::new();
        let n = write(&mut out, s, tags);
        (out, n)
    }

    /// Branches the sample does not take: many cores, cores without frequencies, an interface
    /// without counters, rates or addresses, names to escape, a disk without figures, a sensor
    /// without label, NaN and infinite values (left out), a line left without fields.
    fn wide_snapshot() -> Snapshot {
        let mut s = sample_snapshot();
        let cpu = s.cpu.as_mut().expect("cpu");
        let template = cpu.cores[0].clone();
        cpu.cores = (0..11)
            .map(|i| {
                let mut c = Core { id: i * 2, ..template.clone() };
                c.times.user = if i == 3 { f64::NAN } else { f64::from(i) * 0.25 };
                c.utilisation = if i == 4 { f64::INFINITY } else { 1e-7 * f64::from(i) };
                if i % 2 == 1 {
                    c.frequency = Default::default();
                }
                c
            })
            .collect();
        s.load =
            Some(crate::metrics::LoadAverage { one: f64::NAN, five: f64::NAN, fifteen: f64::NAN });
        s.network.push(Interface {
            name: "veth, odd=\"name\"\n".to_string(),
            has_counters: false,
            addresses: vec![
                Address { ip: "2001:db8::7".parse().expect("ip"), prefix_len: 48 },
                Address { ip: "10.1.2.3".parse().expect("ip"), prefix_len: 8 },
            ],
            ..Interface::default()
        });
        s.network.push(Interface { name: "empty".to_string(), ..Interface::default() });
        s.filesystems.push(Filesystem {
            mount_point: "/srv/my disk,1".to_string(),
            device: "/dev/sdb1".to_string(),
            fs_type: "xfs".to_string(),
            read_only: true,
            usage: Some(FsUsage {
                total: 0,
                free: 0,
                available: 0,
                used: 0,
                files: 5,
                files_free: 9,
            }),
        });
        s.temperatures.push(Temperature {
            kind: crate::metrics::SensorKind::Hwmon,
            chip: "nvme0".to_string(),
            sensor: "temp2".to_string(),
            label: None,
            celsius: f64::NEG_INFINITY,
            crit: None,
            max: None,
        });
        s.process.as_mut().expect("process").resident_bytes = u64::MAX;
        s
    }

    /// The lines of the snapshots that take every branch under tag sets that override, collide
    /// and escape, as one golden text (made by the owned-lines path before the writers became one).
    #[test]
    fn golden_with_tags() {
        let mut no_time = sample_snapshot();
        no_time.timestamp = f64::NAN;
        no_time.hostname = String::new();
        let snapshots = [("wide", wide_snapshot()), ("no time, no host", no_time)];
        let tag_sets = [
            tags(&[("host", "dev-7"), ("cpu", "x"), ("interface", "y"), ("A", "first")]),
            tags(&[("path", "p"), ("label", "l"), ("zz", "a b,c=d"), ("empty", "")]),
        ];
        let mut text = String::new();
        for (what, s) in &snapshots {
            for t in &tag_sets {
                let (lines, n) = direct(s, t);
                text.push_str(&format!("# {what}, tags {t:?}: {n} lines\n{lines}"));
            }
        }
        expect_test::expect_file!["../../../tests/fixtures/encode/tagged.influx"].assert_eq(&text);
    }

    #[test]
    fn same_bytes_as_the_lines_path() {
        let mut no_time = sample_snapshot();
        no_time.timestamp = f64::NAN;
        no_time.hostname = String::new();
        let snapshots = [
            ("sample", sample_snapshot()),
            ("wide", wide_snapshot()),
            ("empty", Snapshot::default()),
            ("no time, no host", no_time),
        ];
        let tag_sets = [
            Vec::new(),
            tags(&[("site", "lab"), ("rack", "4")]),
            tags(&[("host", "dev-7"), ("cpu", "x"), ("interface", "y"), ("A", "first")]),
            tags(&[("path", "p"), ("label", "l"), ("zz", "a b,c=d")]),
        ];
        for (what, s) in &snapshots {
            for t in &tag_sets {
                let want = via_lines(s, t);
                let got = direct(s, t);
                assert_eq!(got, want, "{what} {t:?}");
            }
        }
        let (text, n) = direct(&wide_snapshot(), &[]);
        assert!(n > 15, "{n} lines");
        assert!(!text.contains("NaN") && !text.contains("inf"), "{text}");
        assert!(text.contains("cpu,cpu=cpu20,host=pi-4 "), "{text}");
        assert!(text.contains("interface=veth\\,\\ odd\\=\"name\"\\ "), "{text}");
    }
}
