//! The InfluxDB line protocol encoding of a snapshot. \[pure\]
//!
//! One line per measurement and tag set, `\n`-terminated, timestamps in nanoseconds (the
//! default precision of `/write` and `/api/v2/write`). Measurement and field names follow
//! Telegraf's `cpu`, `mem`, `swap`, `net`, `system`, `disk` and `temp` inputs where the meaning
//! is the same, so Telegraf dashboards mostly apply; every line carries a `host` tag.
//!
//! Escaping is the line protocol's, byte for byte: measurement names escape comma and space;
//! tag keys, tag values and field keys escape comma, `=` and space; string field values
//! escape `"` and `\`; nothing else is escaped. Line feeds, which the protocol cannot carry in
//! names, become spaces. Empty tag values are left out, as are NaN and infinite fields (the
//! protocol has no way to write them); a line left without fields is not written.
//!
//! A push sink's tags join every line ([`write()`]): a line keeps a tag of its own of the same
//! key, except `host`, which a tag may set. This module is the one writer of the format, for
//! `pocketses metrics --format influx`, the hub and the push spool alike; it borrows every name
//! from the snapshot, so a snapshot's lines cost no allocation but the output.
//! A backslash in a name is written as is, so a name with a backslash right before a comma,
//! `=` or space (or at its end) is ambiguous in the protocol itself; host, interface, mount
//! point and sensor names in practice have none.

use std::fmt::Write as _;

use super::float;
use crate::metrics::{SensorKind, Snapshot};

/// Encodes one snapshot: one `\n`-terminated line per measurement and tag set.
pub fn encode(s: &Snapshot) -> String {
    let mut out = String::with_capacity(4096);
    write(&mut out, s, &[]);
    out
}

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

/// Appends the lines of `snapshot` with a push sink's `tags` to `out`; returns the number of
/// lines.
pub fn write(out: &mut String, snapshot: &Snapshot, tags: &[(String, String)]) -> usize {
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

#[allow(clippy::cast_precision_loss)] // byte counts over totals, as Telegraf has them
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

/// Appends `s` with the characters in `special` escaped by a backslash and line breaks as spaces.
pub(crate) fn escape(out: &mut String, s: &str, special: &[char]) {
    for c in s.chars() {
        let c = if c == '\n' || c == '\r' { ' ' } else { c };
        match c {
            c if special.contains(&c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

// Float-to-int casts saturate, which is the wanted behaviour for out-of-range times.
#[allow(clippy::cast_possible_truncation)]
/// Nanoseconds since the epoch of a snapshot time in seconds; 0 when not finite or not positive.
pub(crate) fn timestamp_ns(seconds: f64) -> i64 {
    if !seconds.is_finite() || seconds <= 0.0 {
        return 0;
    }
    // Whole seconds and the fraction apart, so that a timestamp with an exact fraction
    // (…726.25) keeps it; saturates at i64::MAX (year 2262), as float-to-int casts do.
    let whole = seconds.floor();
    let nanos = ((seconds - whole) * 1e9).round() as i64;
    (whole as i64).saturating_mul(1_000_000_000).saturating_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::encode::sample_snapshot;
    use crate::metrics::{Address, Core, Filesystem, FsUsage, Interface, Temperature};
    use expect_test::expect;
    use proptest::prelude::*;

    /// A field value as read back.
    #[derive(Debug, Clone, PartialEq)]
    enum Value {
        Float(f64),
        Int(i64),
        Str(String),
    }

    /// A line as read back: measurement, tags in the order written, fields, timestamp.
    #[derive(Debug, PartialEq)]
    struct Parsed {
        measurement: String,
        tags: Vec<(String, String)>,
        fields: Vec<(String, Value)>,
        timestamp_ns: i64,
    }

    /// A small independent reader of line protocol, following the escaping rules of the spec:
    /// a backslash escapes the next character when it is one the element escapes.
    fn parse_line(line: &str) -> Option<Parsed> {
        fn until<'a>(s: &'a str, stops: &[char], escapable: &[char]) -> (String, &'a str) {
            let mut out = String::new();
            let mut chars = s.char_indices().peekable();
            while let Some((i, c)) = chars.next() {
                if c == '\\' {
                    if let Some(&(_, n)) = chars.peek() {
                        if escapable.contains(&n) {
                            out.push(n);
                            chars.next();
                            continue;
                        }
                    }
                    out.push(c);
                } else if stops.contains(&c) {
                    return (out, &s[i..]);
                } else {
                    out.push(c);
                }
            }
            (out, "")
        }
        let (measurement, mut rest) = until(line, &[',', ' '], &[',', ' ']);
        let mut tags = Vec::new();
        while let Some(r) = rest.strip_prefix(',') {
            let (k, r) = until(r, &['='], &[',', '=', ' ']);
            let (v, r) = until(r.strip_prefix('=')?, &[',', ' '], &[',', '=', ' ']);
            tags.push((k, v));
            rest = r;
        }
        rest = rest.strip_prefix(' ')?;
        let mut fields = Vec::new();
        loop {
            let (k, r) = until(rest, &['='], &[',', '=', ' ']);
            let r = r.strip_prefix('=')?;
            let (value, r) = if let Some(body) = r.strip_prefix('"') {
                let mut s = String::new();
                let mut chars = body.char_indices();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => s.push(chars.next()?.1),
                        '"' => {
                            end = Some(i + 1);
                            break;
                        }
                        c => s.push(c),
                    }
                }
                (Value::Str(s), &body[end?..])
            } else {
                let end = r.find([',', ' ']).unwrap_or(r.len());
                let raw = &r[..end];
                let v = match raw.strip_suffix('i') {
                    Some(n) => Value::Int(n.parse().ok()?),
                    None => Value::Float(raw.parse().ok()?),
                };
                (v, &r[end..])
            };
            fields.push((k, value));
            rest = r;
            match r.strip_prefix(',') {
                Some(r) => rest = r,
                None => break,
            }
        }
        let timestamp_ns = rest.strip_prefix(' ')?.parse().ok()?;
        Some(Parsed { measurement, tags, fields, timestamp_ns })
    }

    /// One line written at `ts` with no host and no sink tags.
    fn one(m: &str, tags: &[(&str, &str)], fields: &[(&str, Field<'_>)], ts: i64) -> String {
        let mut out = String::new();
        let mut w = Writer { out: &mut out, host: "", sink_tags: &[], timestamp_ns: ts, lines: 0 };
        w.line(m, tags, fields);
        out
    }

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
    }

    fn direct(s: &Snapshot, tags: &[(String, String)]) -> (String, usize) {
        let mut out = String::new();
        let n = write(&mut out, s, tags);
        (out, n)
    }

    #[test]
    fn escaping_table() {
        let table: &[(&str, &str, &str, &str, &str)] = &[
            // measurement, tag value, field key, string value, expected line
            ("cpu", "a", "f", "s", "cpu,k=a f=\"s\" 1\n"),
            ("my measurement", "a", "f", "s", "my\\ measurement,k=a f=\"s\" 1\n"),
            ("m,1", "a", "f", "s", "m\\,1,k=a f=\"s\" 1\n"),
            ("m=1", "a", "f", "s", "m=1,k=a f=\"s\" 1\n"),
            ("m", "a b", "f", "s", "m,k=a\\ b f=\"s\" 1\n"),
            ("m", "a,b=c", "f", "s", "m,k=a\\,b\\=c f=\"s\" 1\n"),
            ("m", "C:\\dir", "f", "s", "m,k=C:\\dir f=\"s\" 1\n"),
            ("m", "a", "f x,y=z", "s", "m,k=a f\\ x\\,y\\=z=\"s\" 1\n"),
            ("m", "a", "f", "say \"hi\"", "m,k=a f=\"say \\\"hi\\\"\" 1\n"),
            ("m", "a", "f", "back\\slash", "m,k=a f=\"back\\\\slash\" 1\n"),
            ("m", "a", "f", "a,b c=d", "m,k=a f=\"a,b c=d\" 1\n"),
            ("m", "line\nfeed", "f", "s", "m,k=line\\ feed f=\"s\" 1\n"),
            ("m", "", "f", "s", "m f=\"s\" 1\n"),
        ];
        for &(m, tv, fk, sv, want) in table {
            assert_eq!(
                one(m, &[("k", tv)], &[(fk, Field::Str(sv))], 1),
                want,
                "{m:?} {tv:?} {fk:?} {sv:?}"
            );
        }
    }

    #[test]
    fn value_kinds() {
        let fields = [
            ("i", Field::Int(-42)),
            ("f", Field::Float(2.5e9)),
            ("n", Field::Float(f64::NAN)),
            ("u", Field::from(u64::MAX)),
        ];
        expect![[r#"
            m,a=1,b=2 i=-42i,f=2.5e+09,u=9223372036854775807i 1795320726250000000
        "#]]
        .assert_eq(&one("m", &[("b", "2"), ("a", "1")], &fields, 1_795_320_726_250_000_000));
        assert_eq!(one("m", &[], &[("n", Field::Float(f64::INFINITY))], 1), "");
    }

    #[test]
    fn golden() {
        expect_test::expect_file!["../../../tests/fixtures/encode/sample.influx"]
            .assert_eq(&encode(&sample_snapshot()));
    }

    #[test]
    fn sample_parses_back_and_writes_again_the_same() {
        let s = sample_snapshot();
        let text = encode(&s);
        assert!(text.lines().count() > 10, "{text}");
        for line in text.lines() {
            let p = parse_line(line).expect("parse");
            assert_eq!(p.timestamp_ns, 1_795_320_726_250_000_000);
            assert!(p.tags.iter().any(|(k, v)| k == "host" && v == "pi-4"), "{line}");
            let own: Vec<(&str, &str)> =
                p.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let fields: Vec<(&str, Field<'_>)> = p
                .fields
                .iter()
                .map(|(k, v)| {
                    let f = match v {
                        Value::Float(f) => Field::Float(*f),
                        Value::Int(n) => Field::Int(*n),
                        Value::Str(s) => Field::Str(s),
                    };
                    (k.as_str(), f)
                })
                .collect();
            assert_eq!(one(&p.measurement, &own, &fields, p.timestamp_ns), format!("{line}\n"));
        }
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
    /// and escape, as one golden text (made by the owned-lines path before the writers became
    /// one).
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
    fn tags_join_every_line_and_count_is_the_lines() {
        let t = tags(&[("site", "lab"), ("rack", "4")]);
        for s in [sample_snapshot(), wide_snapshot(), Snapshot::default()] {
            let (text, n) = direct(&s, &t);
            assert_eq!(n, text.lines().count());
            assert!(
                text.lines().all(|l| l.contains(",rack=4,") && l.contains(",site=lab")),
                "{text}"
            );
            let (plain, m) = direct(&s, &[]);
            assert_eq!((plain, m), (encode(&s), n));
        }
        let (text, n) = direct(&wide_snapshot(), &[]);
        assert!(n > 15, "{n} lines");
        assert!(!text.contains("NaN") && !text.contains("inf"), "{text}");
        assert!(text.contains("cpu,cpu=cpu20,host=pi-4 "), "{text}");
        assert!(text.contains("interface=veth\\,\\ odd\\=\"name\"\\ "), "{text}");
    }

    proptest! {
        #[test]
        fn any_names_round_trip(
            m in "[a-z][a-z ,=\"]{0,12}",
            tk in "[a-z][a-z ,=\"]{0,8}",
            tv in "[a-z ,=\"é]{0,12}[a-z]",
            fk in "[a-z][a-z ,=\"]{0,8}",
            sv in "[a-z ,=\\\\\"é]{0,16}",
            f in any::<f64>().prop_filter("finite", |f| f.is_finite()),
            n in any::<i64>(),
        ) {
            let (ff, fi) = (format!("{fk}f"), format!("{fk}i"));
            let fields = [(fk.as_str(), Field::Str(&sv)), (ff.as_str(), Field::Float(f)), (fi.as_str(), Field::Int(n))];
            let text = one(&m, &[(&tk, &tv)], &fields, 7);
            let back = parse_line(text.trim_end_matches('\n')).expect("parse");
            let want = Parsed {
                measurement: m,
                tags: vec![(tk, tv)],
                fields: vec![(fk, Value::Str(sv)), (ff, Value::Float(f)), (fi, Value::Int(n))],
                timestamp_ns: 7,
            };
            prop_assert_eq!(back, want);
        }
    }
}
