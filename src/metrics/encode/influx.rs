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
//! A backslash in a name is written as is, so a name with a backslash right before a comma,
//! `=` or space (or at its end) is ambiguous in the protocol itself; host, interface, mount
//! point and sensor names in practice have none.

use std::fmt::Write as _;

use super::float;
use crate::metrics::{SensorKind, Snapshot};

/// A field value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Written like Go's `%g` shortest form.
    Float(f64),
    /// Written with an `i` suffix.
    Int(i64),
    /// Written in double quotes.
    Str(String),
    /// Written `true` / `false`.
    Bool(bool),
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

/// One line: measurement, tags, fields and the timestamp in nanoseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Measurement name.
    pub measurement: String,
    /// Tags, any order (written sorted by key).
    pub tags: Vec<(String, String)>,
    /// Fields, in the order written.
    pub fields: Vec<(String, Value)>,
    /// Nanoseconds since the Unix epoch.
    pub timestamp_ns: i64,
}

impl Line {
    fn new(measurement: &str, host: &str, timestamp_ns: i64) -> Line {
        Line {
            measurement: measurement.to_string(),
            tags: vec![("host".to_string(), host.to_string())],
            fields: Vec::new(),
            timestamp_ns,
        }
    }

    fn tag(mut self, key: &str, value: &str) -> Line {
        self.tags.push((key.to_string(), value.to_string()));
        self
    }

    fn field(&mut self, key: &str, value: impl Into<Value>) {
        self.fields.push((key.to_string(), value.into()));
    }
}

/// Encodes one snapshot: one `\n`-terminated line per measurement and tag set.
pub fn encode(s: &Snapshot) -> String {
    let mut out = String::with_capacity(4096);
    for line in lines(s) {
        write_line(&mut out, &line);
    }
    out
}

/// Appends one line (with its `\n`) to `out`; a line without writable fields is skipped.
pub fn write_line(out: &mut String, line: &Line) {
    let fields: Vec<&(String, Value)> = line
        .fields
        .iter()
        .filter(|(_, v)| !matches!(v, Value::Float(f) if !f.is_finite()))
        .collect();
    if fields.is_empty() {
        return;
    }
    escape(out, &line.measurement, &[',', ' ']);
    let mut tags: Vec<&(String, String)> =
        line.tags.iter().filter(|(k, v)| !k.is_empty() && !v.is_empty()).collect();
    tags.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for (k, v) in tags {
        out.push(',');
        escape(out, k, &[',', '=', ' ']);
        out.push('=');
        escape(out, v, &[',', '=', ' ']);
    }
    out.push(' ');
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        escape(out, k, &[',', '=', ' ']);
        out.push('=');
        match v {
            Value::Float(f) => float::push_go(out, *f),
            Value::Int(n) => {
                let _ = write!(out, "{n}i");
            }
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Str(s) => {
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
    let _ = writeln!(out, " {}", line.timestamp_ns);
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

/// The lines of a snapshot, before escaping.
pub fn lines(s: &Snapshot) -> Vec<Line> {
    let ts = timestamp_ns(s.timestamp);
    let host = s.hostname.as_str();
    let mut out = Vec::new();

    if let Some(cpu) = &s.cpu {
        let all = std::iter::once(("cpu-total".to_string(), &cpu.times, cpu.utilisation, None));
        let cores = cpu
            .cores
            .iter()
            .map(|c| (format!("cpu{}", c.id), &c.times, c.utilisation, Some(&c.frequency)));
        for (name, t, util, freq) in all.chain(cores) {
            let mut line = Line::new("cpu", host, ts).tag("cpu", &name);
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
                line.field(k, v);
            }
            if let Some(f) = freq {
                for (k, v) in [
                    ("frequency_hz", f.current),
                    ("frequency_min_hz", f.min),
                    ("frequency_max_hz", f.max),
                ] {
                    if let Some(v) = v {
                        line.field(k, v);
                    }
                }
            }
            out.push(line);
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
        let mut mem = Line::new("mem", host, ts);
        mem.field("total", m.total);
        mem.field("available", m.available);
        mem.field("free", m.free);
        mem.field("used", m.used);
        mem.field("used_percent", pct(m.used, m.total));
        mem.field("available_percent", pct(m.available, m.total));
        out.push(mem);
        let mut swap = Line::new("swap", host, ts);
        swap.field("total", m.swap.total);
        swap.field("free", m.swap.free);
        swap.field("used", m.swap.used);
        swap.field("used_percent", pct(m.swap.used, m.swap.total));
        out.push(swap);
    }

    for iface in &s.network {
        let mut line = Line::new("net", host, ts).tag("interface", &iface.name);
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
                line.field(k, v);
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
                line.field(k, v);
            }
        }
        if !iface.addresses.is_empty() {
            let list: Vec<String> =
                iface.addresses.iter().map(|a| format!("{}/{}", a.ip, a.prefix_len)).collect();
            line.field("addresses", Value::Str(list.join(",")));
        }
        out.push(line);
    }

    let mut system = Line::new("system", host, ts);
    if let Some(l) = s.load {
        system.field("load1", l.one);
        system.field("load5", l.five);
        system.field("load15", l.fifteen);
    }
    if let Some(cpu) = &s.cpu {
        system.field("n_cpus", cpu.count as u64);
    }
    if let Some(u) = s.uptime {
        // Telegraf's `uptime` is whole seconds.
        #[allow(clippy::cast_possible_truncation)] // saturating cast of a non-negative float
        let whole = u.max(0.0).floor() as u64;
        system.field("uptime", whole);
    }
    if let Some(b) = s.boot_time {
        system.field("boot_time", b);
    }
    out.push(system);

    for fs in &s.filesystems {
        let Some(u) = fs.usage else { continue };
        let mut line = Line::new("disk", host, ts)
            .tag("path", &fs.mount_point)
            .tag("device", &fs.device)
            .tag("fstype", &fs.fs_type)
            .tag("mode", if fs.read_only { "ro" } else { "rw" });
        // Telegraf's `free` is the space available to unprivileged users.
        line.field("total", u.total);
        line.field("free", u.available);
        line.field("used", u.used);
        let denominator = u.used + u.available;
        line.field(
            "used_percent",
            if denominator == 0 { 0.0 } else { u.used as f64 / denominator as f64 * 100.0 },
        );
        line.field("inodes_total", u.files);
        line.field("inodes_free", u.files_free);
        line.field("inodes_used", u.files.saturating_sub(u.files_free));
        out.push(line);
    }

    for t in &s.temperatures {
        let source = match t.kind {
            SensorKind::Hwmon => "hwmon",
            SensorKind::ThermalZone => "thermal_zone",
        };
        let mut line = Line::new("temp", host, ts)
            .tag("source", source)
            .tag("chip", &t.chip)
            .tag("sensor", &t.sensor);
        if let Some(label) = &t.label {
            line = line.tag("label", label);
        }
        line.field("temp", t.celsius);
        out.push(line);
    }

    if let Some(p) = &s.process {
        let mut line = Line::new("pocketses", host, ts);
        line.field("cpu_seconds", p.cpu_seconds);
        line.field("resident_bytes", p.resident_bytes);
        line.field("virtual_bytes", p.virtual_bytes);
        line.field("threads", p.threads);
        out.push(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::encode::sample_snapshot;
    use expect_test::expect;
    use proptest::prelude::*;

    /// A small independent reader of line protocol, following the escaping rules of the spec:
    /// a backslash escapes the next character when it is one the element escapes.
    fn parse_line(line: &str) -> Option<Line> {
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
                let v = if let Some(n) = raw.strip_suffix('i') {
                    Value::Int(n.parse().ok()?)
                } else if raw == "true" || raw == "false" {
                    Value::Bool(raw == "true")
                } else {
                    Value::Float(raw.parse().ok()?)
                };
                (v, &r[end..])
            };
            fields.push((k, value));
            if let Some(r) = r.strip_prefix(',') {
                rest = r;
            } else {
                rest = r;
                break;
            }
        }
        let timestamp_ns = rest.strip_prefix(' ')?.parse().ok()?;
        Some(Line { measurement, tags, fields, timestamp_ns })
    }

    fn one(line: &Line) -> String {
        let mut s = String::new();
        write_line(&mut s, line);
        s
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
            let line = Line {
                measurement: m.to_string(),
                tags: vec![("k".to_string(), tv.to_string())],
                fields: vec![(fk.to_string(), Value::Str(sv.to_string()))],
                timestamp_ns: 1,
            };
            assert_eq!(one(&line), want, "{m:?} {tv:?} {fk:?} {sv:?}");
        }
    }

    #[test]
    fn value_kinds() {
        let line = Line {
            measurement: "m".to_string(),
            tags: vec![("b".to_string(), "2".to_string()), ("a".to_string(), "1".to_string())],
            fields: vec![
                ("i".to_string(), Value::Int(-42)),
                ("f".to_string(), Value::Float(2.5e9)),
                ("n".to_string(), Value::Float(f64::NAN)),
                ("t".to_string(), Value::Bool(true)),
                ("u".to_string(), Value::from(u64::MAX)),
            ],
            timestamp_ns: 1_795_320_726_250_000_000,
        };
        expect![[r#"
            m,a=1,b=2 i=-42i,f=2.5e+09,t=true,u=9223372036854775807i 1795320726250000000
        "#]]
        .assert_eq(&one(&line));
        let empty = Line { fields: vec![("n".to_string(), Value::Float(f64::INFINITY))], ..line };
        assert_eq!(one(&empty), "");
    }

    #[test]
    fn golden() {
        expect_test::expect_file!["../../../tests/fixtures/encode/sample.influx"]
            .assert_eq(&encode(&sample_snapshot()));
    }

    #[test]
    fn sample_parses_back() {
        let s = sample_snapshot();
        let text = encode(&s);
        let want: Vec<Line> = lines(&s);
        let got: Vec<Line> = text.lines().map(|l| parse_line(l).expect("parse")).collect();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.measurement, w.measurement);
            let mut wt = w.tags.clone();
            wt.sort();
            assert_eq!(g.tags, wt);
            assert_eq!(g.fields, w.fields);
            assert_eq!(g.timestamp_ns, 1_795_320_726_250_000_000);
        }
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
            let line = Line {
                measurement: m,
                tags: vec![(tk, tv)],
                fields: vec![
                    (fk.clone(), Value::Str(sv)),
                    (format!("{fk}f"), Value::Float(f)),
                    (format!("{fk}i"), Value::Int(n)),
                ],
                timestamp_ns: 7,
            };
            let text = one(&line);
            let back = parse_line(text.trim_end_matches('\n')).expect("parse");
            prop_assert_eq!(back, line);
        }
    }
}
