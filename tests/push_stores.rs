//! Push bodies from `push::encode` written to the real stores and read back: InfluxDB 1.6
//! (`/write`), Prometheus 2.42 (remote-write receiver) and VictoriaMetrics 1.79 (Influx
//! `/write` and `/api/v2/write`, remote-write `/api/v1/write`). Stores: tests/support/stores.rs.
//!
//! Each test collects a real snapshot on this host, adds a filesystem whose names need every
//! escape, makes three snapshots of it ten seconds apart (a fraction of a second in the
//! timestamps, so precision shows), encodes one record per snapshot with two extra tags, sends
//! them as one body and checks that every point the records hold is in the store with the
//! right name, tags or labels, value and timestamp, and nothing else is.

mod support;

use std::collections::BTreeMap;

use pocketses::metrics::collect::Collector;
use pocketses::metrics::{Filesystem, FsUsage, Snapshot};
use pocketses::push::encode::{self, remote_write, Body, SinkFormat};
use support::stores::{Kind, Response, Store, INFLUX_DB};

const TAGS: &[(&str, &str)] = &[("site", "ci lab"), ("rack", "r=7,b")];

fn tags(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    TAGS.iter().chain(extra).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Three snapshots of this host, 10 s apart, ending about 10 s ago.
fn snapshots() -> Vec<Snapshot> {
    let mut collector = Collector::new();
    let _ = collector.collect();
    let mut s = collector.collect();
    s.filesystems.push(Filesystem {
        mount_point: "/media/my \"usb\", a=b\\c ü".to_string(),
        device: "/dev/sd a".to_string(),
        fs_type: "vfat".to_string(),
        read_only: false,
        usage: Some(FsUsage {
            total: 1 << 30,
            free: 1 << 29,
            available: 1 << 28,
            used: 1 << 29,
            files: 1000,
            files_free: 900,
        }),
    });
    let start = (s.timestamp - 40.0).floor() + 0.125;
    (0..3)
        .map(|i| {
            let mut t = s.clone();
            t.timestamp = start + 10.0 * f64::from(i);
            t
        })
        .collect()
}

fn records(format: SinkFormat, snapshots: &[Snapshot], tags: &[(String, String)]) -> Vec<Vec<u8>> {
    snapshots.iter().map(|s| encode::record(format, s, tags).expect("record")).collect()
}

fn body_of(format: SinkFormat, records: &[Vec<u8>]) -> Body {
    let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
    encode::body(format, &refs).expect("body")
}

fn post(store: &Store, path: &str, body: &Body) -> Response {
    let mut headers = vec![("Content-Type", body.content_type)];
    if let Some(encoding) = body.content_encoding {
        headers.push(("Content-Encoding", encoding));
    }
    headers.extend(body.headers.iter().copied());
    let res = store.post(path, &headers, &body.bytes);
    assert_eq!(res.status, 204, "POST {path}: {}\n{}", res.text(), store.log());
    res
}

/// A field value of a line.
#[derive(Debug, Clone, PartialEq)]
enum Field {
    Float(f64),
    Int(i64),
    Str(String),
}

/// One point of line protocol.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    measurement: String,
    tags: BTreeMap<String, String>,
    fields: BTreeMap<String, Field>,
    time_ns: i64,
}

/// Splits `s` at each `sep` that is neither escaped nor inside double quotes, keeping the
/// escapes (names are unescaped after the last split).
fn split(s: &str, sep: char) -> Vec<String> {
    let mut out = vec![String::new()];
    let (mut chars, mut quoted) = (s.chars(), false);
    while let Some(c) = chars.next() {
        let part = out.last_mut().expect("a part");
        match c {
            '\\' => {
                part.push(c);
                if let Some(n) = chars.next() {
                    part.push(n);
                }
            }
            '"' => {
                quoted = !quoted;
                part.push(c);
            }
            c if c == sep && !quoted => out.push(String::new()),
            c => part.push(c),
        }
    }
    out
}

/// Removes the escapes of a name: `\,` `\=` `\ `.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && matches!(chars.peek(), Some(',' | '=' | ' ')) {
            continue;
        }
        out.push(c);
    }
    out
}

/// A reader of the line protocol pocketses writes, independent of its encoder.
fn parse_lines(text: &str) -> Vec<Line> {
    text.lines()
        .map(|line| {
            let parts = split(line, ' ');
            assert_eq!(parts.len(), 3, "{line}");
            let mut series = split(&parts[0], ',').into_iter();
            let measurement = unescape(&series.next().expect("measurement"));
            let tags = series
                .map(|t| {
                    let kv = split(&t, '=');
                    assert_eq!(kv.len(), 2, "{t}");
                    (unescape(&kv[0]), unescape(&kv[1]))
                })
                .collect();
            let fields = split(&parts[1], ',')
                .iter()
                .map(|f| {
                    let kv = split(f, '=');
                    assert_eq!(kv.len(), 2, "{f}");
                    let v = &kv[1];
                    let value = if let Some(s) = v.strip_prefix('"') {
                        let s = s.strip_suffix('"').expect("closing quote");
                        Field::Str(s.replace("\\\"", "\"").replace("\\\\", "\\"))
                    } else if let Some(i) = v.strip_suffix('i') {
                        Field::Int(i.parse().expect("integer field"))
                    } else {
                        Field::Float(v.parse().expect("float field"))
                    };
                    (unescape(&kv[0]), value)
                })
                .collect();
            Line { measurement, tags, fields, time_ns: parts[2].parse().expect("timestamp") }
        })
        .collect()
}

fn sent_lines(records: &[Vec<u8>]) -> Vec<Line> {
    records
        .iter()
        .flat_map(|r| {
            parse_lines(std::str::from_utf8(&encode::payload(r).expect("payload")).expect("utf-8"))
        })
        .collect()
}

fn same_number(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// How a store keeps a value: Prometheus and InfluxDB keep the `f64`; VictoriaMetrics keeps
/// a decimal of 12 significant digits (66.66666666666666 reads back as 66.6666666666).
fn stored_as(store: &Store, stored: f64, sent: f64) -> bool {
    match store.kind() {
        Kind::VictoriaMetrics => {
            same_number(stored, sent)
                || (stored - sent).abs() <= 1e-11 * sent.abs().max(stored.abs())
        }
        _ => same_number(stored, sent),
    }
}

#[test]
fn influx_records_reach_influxdb_1_6() {
    let Some(influx) = Store::influxdb() else { return };
    let snaps = snapshots();
    let recs = records(SinkFormat::Influx, &snaps, &tags(&[]));
    post(&influx, &format!("/write?db={INFLUX_DB}"), &body_of(SinkFormat::Influx, &recs));

    let sent = sent_lines(&recs);
    let got = influx.influx_points("/.*/");
    assert_eq!(got.len(), sent.len(), "points in the store");
    assert!(sent.iter().any(|l| l.tags.get("path").is_some_and(|p| p.contains("\"usb\", a=b"))));
    for line in &sent {
        assert_eq!(line.tags["site"], "ci lab");
        assert_eq!(line.tags["rack"], "r=7,b");
        let point = got
            .iter()
            .find(|p| {
                p.measurement == line.measurement
                    && p.tags == line.tags
                    && p.time_ns == line.time_ns
            })
            .unwrap_or_else(|| panic!("not in influxdb: {line:?}"));
        assert_eq!(point.fields.len(), line.fields.len(), "{line:?} vs {point:?}");
        for (key, want) in &line.fields {
            let have = &point.fields[key];
            let ok = match want {
                Field::Int(i) => have.as_i64() == Some(*i),
                Field::Float(f) => have.as_f64().is_some_and(|h| same_number(h, *f)),
                Field::Str(s) => have.as_str() == Some(s.as_str()),
            };
            assert!(ok, "{}.{key}: sent {want:?}, stored {have}", line.measurement);
        }
    }
    // Nanosecond timestamps: the fraction of the snapshot's second is kept.
    let first = snaps[0].timestamp;
    assert!(got.iter().any(|p| p.time_ns % 1_000_000_000 == 125_000_000), "{first}");
}

/// Checks that VictoriaMetrics holds, for every numeric field of `sent`, the series
/// `measurement_field` with the line's tags (plus `extra` labels) and its value at its time.
fn check_vm_influx(vm: &Store, sent: &[Line], selector: &str, extra: &[(&str, &str)]) {
    let got = vm.series(selector);
    let mut want: BTreeMap<BTreeMap<String, String>, Vec<(i64, f64)>> = BTreeMap::new();
    for line in sent {
        for (key, value) in &line.fields {
            let value = match value {
                Field::Float(f) => *f,
                Field::Int(i) => *i as f64,
                // VictoriaMetrics reads a string field as a number, 0 when it is none (the
                // `addresses` of `net`: docs/push.md).
                Field::Str(s) => s.parse().unwrap_or(0.0),
            };
            let mut labels = line.tags.clone();
            labels.insert("__name__".to_string(), format!("{}_{key}", line.measurement));
            for (k, v) in extra {
                labels.insert(k.to_string(), v.to_string());
            }
            want.entry(labels).or_default().push((line.time_ns / 1_000_000, value));
        }
    }
    let have: BTreeMap<_, _> = got.into_iter().map(|s| (s.labels, s.samples)).collect();
    let extra: Vec<_> = have.keys().filter(|k| !want.contains_key(*k)).collect();
    let missing: Vec<_> = want.keys().filter(|k| !have.contains_key(*k)).collect();
    assert!(extra.is_empty() && missing.is_empty(), "extra: {extra:#?}\nmissing: {missing:#?}");
    for (labels, samples) in &want {
        let stored = have.get(labels).unwrap_or_else(|| panic!("missing {labels:?}"));
        assert_eq!(stored.len(), samples.len(), "{labels:?}");
        for ((t1, v1), (t2, v2)) in stored.iter().zip(samples) {
            assert_eq!(t1, t2, "{labels:?}");
            assert!(stored_as(vm, *v1, *v2), "{labels:?}: {v1} != {v2}");
        }
    }
}

#[test]
fn influx_records_reach_victoria_metrics_v1_and_v2_endpoints() {
    let Some(vm) = Store::victoria_metrics() else { return };
    let snaps = snapshots();
    let v1 = records(SinkFormat::Influx, &snaps, &tags(&[("endpoint", "v1")]));
    post(&vm, "/write?db=pocketses", &body_of(SinkFormat::Influx, &v1));
    let v2 = records(SinkFormat::Influx, &snaps, &tags(&[("endpoint", "v2")]));
    post(&vm, "/api/v2/write?org=o&bucket=b&precision=ns", &body_of(SinkFormat::Influx, &v2));
    check_vm_influx(&vm, &sent_lines(&v1), r#"{endpoint="v1"}"#, &[("db", "pocketses")]);
    // VictoriaMetrics 1.79 labels `/write` points with the `db` it names, and `/api/v2/write`
    // points with nothing (not the bucket).
    check_vm_influx(&vm, &sent_lines(&v2), r#"{endpoint="v2"}"#, &[]);
}

/// Every series the records hold, as the store should return it: labels and (ms, value)
/// samples, oldest first.
fn sent_series(records: &[Vec<u8>]) -> BTreeMap<BTreeMap<String, String>, Vec<(i64, f64)>> {
    let mut out: BTreeMap<_, Vec<(i64, f64)>> = BTreeMap::new();
    for r in records {
        for ts in
            remote_write::decode(&encode::payload(r).expect("payload")).expect("write request")
        {
            let labels: BTreeMap<String, String> = ts.labels.into_iter().collect();
            out.entry(labels).or_default().extend(ts.samples.iter().map(|(v, t)| (*t, *v)));
        }
    }
    out
}

fn check_prometheus_records(store: &Store) {
    let snaps = snapshots();
    let recs = records(SinkFormat::Prometheus, &snaps, &tags(&[]));
    post(store, "/api/v1/write", &body_of(SinkFormat::Prometheus, &recs));

    let want = sent_series(&recs);
    let n_points: usize =
        recs.iter().map(|r| encode::points(SinkFormat::Prometheus, r).expect("points")).sum();
    assert_eq!(want.values().map(Vec::len).sum::<usize>(), n_points);
    let got = store.series(r#"{job="pocketses"}"#);
    let have: BTreeMap<_, _> = got.into_iter().map(|s| (s.labels, s.samples)).collect();
    assert_eq!(
        have.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{:?}: series names and labels",
        store.kind()
    );
    let host = &snaps[0].hostname;
    let mount = "/media/my \"usb\", a=b\\c ü";
    assert!(have.keys().any(|l| l.get("mountpoint").is_some_and(|m| m == mount)));
    for (labels, samples) in &want {
        assert_eq!(labels["site"], "ci lab");
        assert_eq!(labels["rack"], "r=7,b");
        assert_eq!(&labels["instance"], host);
        let stored = &have[labels];
        assert_eq!(stored.len(), 3, "{labels:?}: {stored:?}");
        for ((t1, v1), (t2, v2)) in stored.iter().zip(samples) {
            assert_eq!(t1, t2, "{labels:?}");
            assert!(stored_as(store, *v1, *v2), "{labels:?}: {v1} != {v2}");
        }
    }
    // Millisecond timestamps, the snapshot's fraction kept.
    let t0 = have.values().next().expect("a series")[0].0;
    assert_eq!(t0.rem_euclid(1000), 125);
    assert!(have.keys().any(|l| l["__name__"] == "node_cpu_seconds_total"));
}

#[test]
fn prometheus_records_reach_prometheus() {
    let Some(prometheus) = Store::prometheus() else { return };
    check_prometheus_records(&prometheus);
}

#[test]
fn prometheus_records_reach_victoria_metrics() {
    let Some(vm) = Store::victoria_metrics() else { return };
    check_prometheus_records(&vm);
}

/// The support's outage tools: a store stopped (VictoriaMetrics, which has no WAL: SIGTERM) or
/// killed (InfluxDB, Prometheus: SIGKILL) starts again on the same port with the data it had.
#[test]
fn stores_restart_with_their_data_after_sigkill() {
    let snaps = snapshots();
    if let Some(mut vm) = Store::victoria_metrics() {
        let recs = records(SinkFormat::Prometheus, &snaps[..1], &tags(&[]));
        post(&vm, "/api/v1/write", &body_of(SinkFormat::Prometheus, &recs));
        let before = vm.series(r#"{__name__="node_load1"}"#);
        let port = vm.port();
        vm.stop();
        assert!(!vm.is_running());
        assert!(vm.request("GET", "/health", &[], b"").is_err(), "still answering");
        vm.start();
        assert_eq!(vm.port(), port);
        assert_eq!(vm.series(r#"{__name__="node_load1"}"#), before);
        assert_eq!(before.len(), 1);
    }
    if let Some(mut influx) = Store::influxdb() {
        let recs = records(SinkFormat::Influx, &snaps[..1], &tags(&[]));
        post(&influx, &format!("/write?db={INFLUX_DB}"), &body_of(SinkFormat::Influx, &recs));
        let before = influx.influx_points("system");
        influx.kill();
        influx.start();
        assert_eq!(influx.influx_points("system"), before);
        assert_eq!(before.len(), 1);
    }
    if let Some(mut prometheus) = Store::prometheus() {
        let recs = records(SinkFormat::Prometheus, &snaps[..1], &tags(&[]));
        post(&prometheus, "/api/v1/write", &body_of(SinkFormat::Prometheus, &recs));
        let before = prometheus.series(r#"{__name__="node_load1"}"#);
        prometheus.kill();
        prometheus.start();
        assert_eq!(prometheus.series(r#"{__name__="node_load1"}"#), before);
        assert_eq!(before.len(), 1);
    }
}

/// A NaN is sent as Prometheus' own NaN, which Prometheus keeps as a value (not a staleness
/// marker) and VictoriaMetrics drops; infinities are values to both.
#[test]
fn nan_and_infinities_reach_the_remote_write_stores() {
    let mut snaps = snapshots();
    snaps.truncate(1);
    snaps[0].load = Some(pocketses::metrics::LoadAverage {
        one: f64::NAN,
        five: f64::INFINITY,
        fifteen: f64::NEG_INFINITY,
    });
    let recs = records(SinkFormat::Prometheus, &snaps, &tags(&[]));
    let mut checked = 0;
    for store in [Store::prometheus(), Store::victoria_metrics()].into_iter().flatten() {
        post(&store, "/api/v1/write", &body_of(SinkFormat::Prometheus, &recs));
        let value = |name: &str| {
            let series = store.series(&format!(r#"{{__name__="{name}"}}"#));
            assert_eq!(series.len(), 1, "{:?} {name}: {series:?}", store.kind());
            assert_eq!(series[0].samples.len(), 1, "{:?} {name}: {series:?}", store.kind());
            series[0].samples[0].1
        };
        if store.kind() == Kind::VictoriaMetrics {
            // VictoriaMetrics drops NaN samples (it keeps only the staleness marker's NaN).
            assert_eq!(store.series(r#"{__name__="node_load1"}"#), []);
        } else {
            assert!(value("node_load1").is_nan(), "{:?}", store.kind());
        }
        assert_eq!(value("node_load5"), f64::INFINITY, "{:?}", store.kind());
        assert_eq!(value("node_load15"), f64::NEG_INFINITY, "{:?}", store.kind());
        checked += 1;
    }
    assert!(checked == 2 || !support::stores::in_ci());
}
