//! The legacy encoding: the exact JSON shape of the original Python pocketses. \[pure\]
//!
//! The original (`pocketses/collector.py`, psutil 5.9.7) sent
//! `json.dumps({"cpu": …, "memory": …, "network": …})`, so this encoder reproduces Python's
//! separators (`", "`, `": "`), float `repr`, `ensure_ascii` escaping, psutil's rounding and its
//! `bytes2human` sizes (`"15.4G"`) and percentages (`"42.3%"`). One line, no newline (the
//! original's `\r\n` framing is the publisher's business).
//!
//! Known differences, all where the original had no defined answer or took psutil's detours:
//! - CPU utilisation covers the time since the previous collection, not a blocking second.
//! - `frequency` averages over processors; psutil averages over cpufreq policies (the same on
//!   symmetric CPUs) and crashed when the host had no frequency at all, where this writes 0.0.
//! - `addresses` lists interfaces in /proc/net/dev order, psutil in getifaddrs(3) order.

use super::float;
use super::jsonw::{Style, Writer};
use crate::metrics::{FrequencySource, Snapshot};

/// Encodes one snapshot in the original pocketses' shape.
pub fn encode(s: &Snapshot) -> String {
    let mut w = Writer::new(Style::Python);
    w.begin_object();
    cpu(&mut w, s);
    memory(&mut w, s);
    network(&mut w, s);
    w.end_object();
    w.finish()
}

fn cpu(w: &mut Writer, s: &Snapshot) {
    let cores = s.cpu.as_ref().map(|c| c.cores.as_slice()).unwrap_or_default();
    let count = cores.len();
    // psutil rounds each processor to 0.1, and the original averages the rounded values.
    let per_cpu: Vec<f64> = cores.iter().map(|c| float::python_round(c.utilisation, 1)).collect();
    let mut sum = 0.0;
    for v in &per_cpu {
        sum += v;
    }
    let overall = if count == 0 { 0.0 } else { float::python_round(sum / count as f64, 1) };

    // psutil.cpu_freq(): MHz, averaged over the entries; min and max are 0.0 without cpufreq.
    let mut n = 0.0;
    let (mut cur, mut min, mut max) = (0.0, 0.0, 0.0);
    for core in cores {
        let f = &core.frequency;
        if let Some(c) = f.current {
            n += 1.0;
            cur += c / 1e6;
            if f.source == FrequencySource::Cpufreq {
                min += f.min.unwrap_or(0.0) / 1e6;
                max += f.max.unwrap_or(0.0) / 1e6;
            }
        }
    }
    if n > 1.0 {
        cur /= n;
        min /= n;
        max /= n;
    }

    w.key("cpu");
    w.begin_object();
    w.key("count");
    w.u64(count as u64);
    w.key("utilization");
    w.begin_object();
    w.key("overall");
    w.f64(overall);
    w.key("per_cpu");
    w.begin_array();
    for v in per_cpu {
        w.f64(v);
    }
    w.end_array();
    w.end_object();
    w.key("frequency");
    w.begin_object();
    w.key("current");
    w.f64(float::python_round(cur, 1));
    w.key("max");
    w.f64(max);
    w.key("min");
    w.f64(min);
    w.end_object();
    w.end_object();
}

fn memory(w: &mut Writer, s: &Snapshot) {
    let m = s.memory.clone().unwrap_or_default();
    w.key("memory");
    w.begin_object();
    for (key, total, used, available) in [
        ("virtual", m.total, m.total.saturating_sub(m.available), m.available),
        ("swap", m.swap.total, m.swap.used, m.swap.free),
    ] {
        w.key(key);
        w.begin_object();
        w.key("total");
        w.string(&bytes2human(total));
        w.key("used");
        w.string(&percent(used, total));
        w.key("available");
        w.string(&bytes2human(available));
        w.end_object();
    }
    w.end_object();
}

fn network(w: &mut Writer, s: &Snapshot) {
    // psutil.net_io_counters(): the sum over every interface, loopback included.
    let sent: u64 = s.network.iter().map(|i| i.tx.bytes).fold(0, u64::saturating_add);
    let recv: u64 = s.network.iter().map(|i| i.rx.bytes).fold(0, u64::saturating_add);
    w.key("network");
    w.begin_object();
    w.key("traffic");
    w.begin_object();
    w.key("sent");
    w.string(&bytes2human(sent));
    w.key("recv");
    w.string(&bytes2human(recv));
    w.end_object();
    w.key("addresses");
    w.begin_object();
    for iface in &s.network {
        let v4: Vec<String> =
            iface.addresses.iter().filter(|a| a.ip.is_ipv4()).map(|a| a.ip.to_string()).collect();
        if v4.is_empty() {
            continue;
        }
        w.key(&iface.name);
        w.begin_array();
        for a in &v4 {
            w.string(a);
        }
        w.end_array();
    }
    w.end_object();
    w.end_object();
}

/// psutil's `bytes2human`: `"%.1f%s"` with binary prefixes B, K, M, G, T, P, E, Z, Y.
pub fn bytes2human(n: u64) -> String {
    const SYMBOLS: [char; 8] = ['K', 'M', 'G', 'T', 'P', 'E', 'Z', 'Y'];
    for (i, symbol) in (1..9).zip(SYMBOLS.iter()).rev() {
        let prefix = 2f64.powi(10 * i);
        if n as f64 >= prefix {
            return format!("{:.1}{symbol}", n as f64 / prefix);
        }
    }
    format!("{n}.0B")
}

/// psutil's `usage_percent(used, total, round_=1)` written as the original did: `f"{p}%"`.
pub fn percent(used: u64, total: u64) -> String {
    let p =
        if total == 0 { 0.0 } else { float::python_round(used as f64 / total as f64 * 100.0, 1) };
    let mut s = String::new();
    float::push_python(&mut s, p);
    s.push('%');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::encode::sample_snapshot;
    use expect_test::expect;

    #[test]
    fn sizes_like_psutil() {
        // psutil's own doctests, and edges around each prefix.
        let table: &[(u64, &str)] = &[
            (10000, "9.8K"),
            (100_001_221, "95.4M"),
            (0, "0.0B"),
            (1023, "1023.0B"),
            (1024, "1.0K"),
            (1_048_575, "1024.0K"),
            (1_048_576, "1.0M"),
            (24_683_656 * 1024, "23.5G"),
            (16_542_945_280, "15.4G"),
            (u64::MAX, "16.0E"),
        ];
        for &(n, want) in table {
            assert_eq!(bytes2human(n), want, "{n}");
        }
    }

    #[test]
    fn percentages_like_psutil() {
        assert_eq!(percent(0, 0), "0.0%");
        assert_eq!(percent(0, 100), "0.0%");
        assert_eq!(percent(100, 100), "100.0%");
        assert_eq!(percent(423, 1000), "42.3%");
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(percent(2, 3), "66.7%");
    }

    /// The expected line was printed by Python 3 with psutil 5.9.7's own `bytes2human` and
    /// `usage_percent`, `round` and `json.dumps` over the same figures as `sample_snapshot`.
    #[test]
    fn golden() {
        expect![[r#"{"cpu": {"count": 2, "utilization": {"overall": 12.3, "per_cpu": [20.0, 4.7]}, "frequency": {"current": 1950.0, "max": 2400.0, "min": 600.0}}, "memory": {"virtual": {"total": "7.7G", "used": "44.7%", "available": "4.3G"}, "swap": {"total": "1.0G", "used": "25.0%", "available": "768.0M"}}, "network": {"traffic": {"sent": "260.0K", "recv": "133.0M"}, "addresses": {"lo": ["127.0.0.1"], "wlan0": ["192.168.1.20"]}}}"#]]
        .assert_eq(&encode(&sample_snapshot()));
    }

    #[test]
    fn cpuinfo_frequency_has_no_min_max() {
        // psutil's /proc/cpuinfo fallback: the mean current MHz, min and max 0.0.
        let mut s = sample_snapshot();
        let cpu = s.cpu.as_mut().expect("cpu");
        for (core, hz) in cpu.cores.iter_mut().zip([2_445_410_000.0, 2_445_460_000.0]) {
            core.frequency = crate::metrics::Frequency {
                current: Some(hz),
                min: None,
                max: None,
                source: FrequencySource::Cpuinfo,
            };
        }
        let v: serde_json::Value = serde_json::from_str(&encode(&s)).expect("json");
        assert_eq!(
            v["cpu"]["frequency"],
            serde_json::json!({"current": 2445.4, "max": 0.0, "min": 0.0})
        );
        assert!(
            encode(&s).contains("\"frequency\": {\"current\": 2445.4, \"max\": 0.0, \"min\": 0.0}")
        );
    }

    #[test]
    fn empty_snapshot_keeps_the_shape() {
        expect![[r#"{"cpu": {"count": 0, "utilization": {"overall": 0.0, "per_cpu": []}, "frequency": {"current": 0.0, "max": 0.0, "min": 0.0}}, "memory": {"virtual": {"total": "0.0B", "used": "0.0%", "available": "0.0B"}, "swap": {"total": "0.0B", "used": "0.0%", "available": "0.0B"}}, "network": {"traffic": {"sent": "0.0B", "recv": "0.0B"}, "addresses": {}}}"#]]
        .assert_eq(&encode(&Snapshot::default()));
    }

    #[test]
    fn one_line_and_valid_json() {
        let text = encode(&sample_snapshot());
        assert!(!text.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["memory"]["virtual"]["total"], "7.7G");
    }
}
