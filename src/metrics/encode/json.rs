//! The JSON encoding of a snapshot: schema `pocketses.metrics/v1`. \[pure\]
//!
//! One line, no trailing newline (publishers add their own framing). Numbers are in base
//! units, named by suffix: `_bytes`, `_seconds`, `_hz`, `_percent` (0 to 100, a float),
//! `_per_second`. A part the host lacks is `null` (objects) or `[]` (lists).
//! docs/metrics.md documents every field; change both together and bump [`SCHEMA`] on any
//! incompatible change.

use super::jsonw::{Style, Writer};
use crate::metrics::{CpuTimes, FrequencySource, NetCounters, NetRates, SensorKind, Snapshot};

/// The value of the `schema` field.
pub const SCHEMA: &str = "pocketses.metrics/v1";

/// Encodes one snapshot as one line of JSON.
pub fn encode(s: &Snapshot) -> String {
    let mut w = Writer::new(Style::Compact);
    w.begin_object();
    w.key("schema");
    w.string(SCHEMA);
    w.key("timestamp");
    w.string(&rfc3339(s.timestamp));
    w.key("hostname");
    w.string(&s.hostname);
    w.key("interval_seconds");
    w.opt_f64(s.interval);
    w.key("uptime_seconds");
    w.opt_f64(s.uptime);
    w.key("boot_time_seconds");
    match s.boot_time {
        Some(b) => w.u64(b),
        None => w.null(),
    }
    cpu(&mut w, s);
    memory(&mut w, s);
    network(&mut w, s);
    w.key("load");
    match s.load {
        Some(l) => {
            w.begin_object();
            w.key("1m");
            w.f64(l.one);
            w.key("5m");
            w.f64(l.five);
            w.key("15m");
            w.f64(l.fifteen);
            w.end_object();
        }
        None => w.null(),
    }
    filesystems(&mut w, s);
    temperatures(&mut w, s);
    w.key("uname");
    match &s.uname {
        Some(u) => {
            w.begin_object();
            for (k, v) in [
                ("sysname", &u.sysname),
                ("release", &u.release),
                ("version", &u.version),
                ("machine", &u.machine),
                ("domainname", &u.domainname),
            ] {
                w.key(k);
                w.string(v);
            }
            w.end_object();
        }
        None => w.null(),
    }
    w.key("process");
    match &s.process {
        Some(p) => {
            w.begin_object();
            w.key("cpu_seconds");
            w.f64(p.cpu_seconds);
            w.key("resident_bytes");
            w.u64(p.resident_bytes);
            w.key("virtual_bytes");
            w.u64(p.virtual_bytes);
            w.key("start_time_seconds");
            w.f64(p.start_time);
            w.key("threads");
            w.u64(p.threads);
            w.end_object();
        }
        None => w.null(),
    }
    w.end_object();
    w.finish()
}

fn times(w: &mut Writer, t: &CpuTimes) {
    w.key("times_seconds");
    w.begin_object();
    for (k, v) in [
        ("user", t.user),
        ("nice", t.nice),
        ("system", t.system),
        ("idle", t.idle),
        ("iowait", t.iowait),
        ("irq", t.irq),
        ("softirq", t.softirq),
        ("steal", t.steal),
        ("guest", t.guest),
        ("guest_nice", t.guest_nice),
    ] {
        w.key(k);
        w.f64(v);
    }
    w.end_object();
}

fn cpu(w: &mut Writer, s: &Snapshot) {
    w.key("cpu");
    let Some(cpu) = &s.cpu else {
        w.null();
        return;
    };
    w.begin_object();
    w.key("count");
    w.u64(cpu.count as u64);
    w.key("utilization_percent");
    w.f64(cpu.utilisation);
    times(w, &cpu.times);
    w.key("cores");
    w.begin_array();
    for core in &cpu.cores {
        w.begin_object();
        w.key("id");
        w.u64(u64::from(core.id));
        w.key("utilization_percent");
        w.f64(core.utilisation);
        times(w, &core.times);
        w.key("frequency");
        let f = &core.frequency;
        if f.source == FrequencySource::None {
            w.null();
        } else {
            w.begin_object();
            w.key("current_hz");
            w.opt_f64(f.current);
            w.key("min_hz");
            w.opt_f64(f.min);
            w.key("max_hz");
            w.opt_f64(f.max);
            w.key("source");
            w.string(if f.source == FrequencySource::Cpufreq { "cpufreq" } else { "cpuinfo" });
            w.end_object();
        }
        w.end_object();
    }
    w.end_array();
    w.end_object();
}

fn percent(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 / total as f64 * 100.0
    }
}

fn memory(w: &mut Writer, s: &Snapshot) {
    w.key("memory");
    let Some(m) = &s.memory else {
        w.null();
        return;
    };
    w.begin_object();
    for (k, v) in [
        ("total_bytes", m.total),
        ("available_bytes", m.available),
        ("free_bytes", m.free),
        ("used_bytes", m.used),
    ] {
        w.key(k);
        w.u64(v);
    }
    w.key("used_percent");
    w.f64(percent(m.used, m.total));
    w.key("swap");
    w.begin_object();
    for (k, v) in [
        ("total_bytes", m.swap.total),
        ("available_bytes", m.swap.free),
        ("free_bytes", m.swap.free),
        ("used_bytes", m.swap.used),
    ] {
        w.key(k);
        w.u64(v);
    }
    w.key("used_percent");
    w.f64(percent(m.swap.used, m.swap.total));
    w.end_object();
    w.end_object();
}

fn counters(w: &mut Writer, key: &str, c: &NetCounters) {
    w.key(key);
    w.begin_object();
    for (k, v) in
        [("bytes", c.bytes), ("packets", c.packets), ("errors", c.errs), ("drops", c.drop)]
    {
        w.key(k);
        w.u64(v);
    }
    w.end_object();
}

fn rates(w: &mut Writer, key: &str, r: Option<&NetRates>) {
    w.key(key);
    let Some(r) = r else {
        w.null();
        return;
    };
    w.begin_object();
    for (k, v) in [
        ("bytes_per_second", r.bytes),
        ("packets_per_second", r.packets),
        ("errors_per_second", r.errs),
        ("drops_per_second", r.drop),
    ] {
        w.key(k);
        w.f64(v);
    }
    w.end_object();
}

fn network(w: &mut Writer, s: &Snapshot) {
    w.key("network");
    w.begin_object();
    w.key("interfaces");
    w.begin_array();
    for iface in &s.network {
        w.begin_object();
        w.key("name");
        w.string(&iface.name);
        if iface.has_counters {
            counters(w, "rx", &iface.rx);
            counters(w, "tx", &iface.tx);
        } else {
            w.key("rx");
            w.null();
            w.key("tx");
            w.null();
        }
        rates(w, "rx_rate", iface.rx_rate.as_ref());
        rates(w, "tx_rate", iface.tx_rate.as_ref());
        w.key("mac_address");
        opt_str(w, iface.link.address.as_deref());
        w.key("operstate");
        opt_str(w, iface.link.operstate.as_deref());
        w.key("addresses");
        w.begin_array();
        for a in &iface.addresses {
            w.begin_object();
            w.key("address");
            w.string(&a.ip.to_string());
            w.key("prefix_length");
            w.u64(u64::from(a.prefix_len));
            w.key("family");
            w.string(if a.ip.is_ipv4() { "ipv4" } else { "ipv6" });
            w.key("scope");
            w.string(a.scope());
            w.end_object();
        }
        w.end_array();
        w.end_object();
    }
    w.end_array();
    w.end_object();
}

fn opt_str(w: &mut Writer, v: Option<&str>) {
    match v {
        Some(v) => w.string(v),
        None => w.null(),
    }
}

fn filesystems(w: &mut Writer, s: &Snapshot) {
    w.key("filesystems");
    w.begin_array();
    for fs in &s.filesystems {
        w.begin_object();
        w.key("mount_point");
        w.string(&fs.mount_point);
        w.key("device");
        w.string(&fs.device);
        w.key("fs_type");
        w.string(&fs.fs_type);
        w.key("read_only");
        w.bool(fs.read_only);
        let u = fs.usage;
        for (k, v) in [
            ("total_bytes", u.map(|u| u.total)),
            ("used_bytes", u.map(|u| u.used)),
            ("free_bytes", u.map(|u| u.free)),
            ("available_bytes", u.map(|u| u.available)),
            ("files", u.map(|u| u.files)),
            ("files_free", u.map(|u| u.files_free)),
        ] {
            w.key(k);
            match v {
                Some(v) => w.u64(v),
                None => w.null(),
            }
        }
        w.key("used_percent");
        // df's figure: used / (used + available), so the root reserve does not count as free.
        w.opt_f64(u.map(|u| percent(u.used, u.used + u.available)));
        w.end_object();
    }
    w.end_array();
}

fn temperatures(w: &mut Writer, s: &Snapshot) {
    w.key("temperatures");
    w.begin_array();
    for t in &s.temperatures {
        w.begin_object();
        w.key("source");
        w.string(match t.kind {
            SensorKind::Hwmon => "hwmon",
            SensorKind::ThermalZone => "thermal_zone",
        });
        w.key("chip");
        w.string(&t.chip);
        w.key("sensor");
        w.string(&t.sensor);
        w.key("label");
        match &t.label {
            Some(l) => w.string(l),
            None => w.null(),
        }
        w.key("celsius");
        w.f64(t.celsius);
        w.end_object();
    }
    w.end_array();
}

/// Formats seconds since the Unix epoch as RFC 3339 in UTC with milliseconds:
/// `2026-11-22T04:40:12.345Z`. Times before the epoch or absurdly far ahead are clamped.
pub fn rfc3339(seconds: f64) -> String {
    let millis = if seconds.is_finite() {
        (seconds * 1000.0).round().clamp(0.0, 253_402_300_799_999.0)
    } else {
        0.0
    };
    // The clamp above keeps this in range (year 9999).
    #[allow(clippy::cast_possible_truncation)]
    let millis = millis as u64;
    let (secs, ms) = (millis / 1000, millis % 1000);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm, for non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::encode::sample_snapshot;
    use expect_test::expect;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400.0), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_320_726.5), "2026-11-22T04:12:06.500Z");
        assert_eq!(rfc3339(4_107_542_399.999_4), "2100-02-28T23:59:59.999Z");
        assert_eq!(rfc3339(-5.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(f64::NAN), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn one_line_valid_json() {
        let text = encode(&sample_snapshot());
        assert!(!text.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&text).expect("valid json");
        assert_eq!(v["schema"], SCHEMA);
        assert_eq!(v["cpu"]["cores"][1]["frequency"]["current_hz"], 2.4e9);
    }

    #[test]
    fn empty_snapshot() {
        expect![[r#"{"schema":"pocketses.metrics/v1","timestamp":"1970-01-01T00:00:00.000Z","hostname":"","interval_seconds":null,"uptime_seconds":null,"boot_time_seconds":null,"cpu":null,"memory":null,"network":{"interfaces":[]},"load":null,"filesystems":[],"temperatures":[],"uname":null,"process":null}"#]]
        .assert_eq(&encode(&Snapshot::default()));
    }

    #[test]
    fn golden() {
        expect_test::expect_file!["../../../tests/fixtures/encode/sample.json"]
            .assert_eq(&format!("{}\n", encode(&sample_snapshot())));
    }
}
