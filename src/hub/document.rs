//! `pocketses.metrics/v1` documents back into [`Snapshot`]s: what a hub reads from its spokes
//! (`GET /v1/metrics`) and from `POST /v1/ingest`, so that their points go through the same
//! sinks, encoders and spools as the hub's own. \[pure\]
//!
//! The reader is the inverse of `metrics::encode::json` for everything the document carries;
//! encoding a read document again gives the same document. What the document does not carry is
//! missing from the snapshot, and so from what the sinks send for a spoke: the meminfo fields
//! other than `MemTotal`, `MemFree`, `MemAvailable`, `SwapTotal` and `SwapFree` (rebuilt from
//! the memory figures), interfaces' broadcast address, duplex and alias, and sensors' limits.
//!
//! Leniency: unknown members are ignored (a newer spoke may add some), a missing member is the
//! part the host lacks, as a `null` is. The `schema` must be `pocketses.metrics/v1` and the
//! `timestamp` an RFC 3339 time: without them the points would land at a wrong time or mean
//! something else, so such a document is refused, with why.

use std::net::IpAddr;

use serde::Deserialize;

use crate::metrics::encode::json::SCHEMA;
use crate::metrics::{
    Address, Core, Cpu, CpuTimes, Filesystem, Frequency, FrequencySource, FsUsage, Interface,
    LoadAverage, MeminfoField, Memory, NetCounters, NetRates, Process, SensorKind, Snapshot, Swap,
    Temperature, Uname,
};

/// A document read back: the snapshot and the tags a json sink added (`"tags":{…}`), sorted
/// by key.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The metrics.
    pub snapshot: Snapshot,
    /// The document's own tags.
    pub tags: Vec<(String, String)>,
}

/// Why a document was refused, in words (`not JSON: …`, `schema is "x", not …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Error(pub String);

/// Reads one document.
///
/// # Errors
/// When `bytes` is not JSON, not an object of schema `pocketses.metrics/v1`, or has no valid
/// `timestamp`.
pub fn parse(bytes: &[u8]) -> Result<Document, Error> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|err| {
        Error(format!("not a {SCHEMA} document: {}", first_line(&err.to_string())))
    })?;
    if !value.is_object() {
        return Err(Error(format!("not a {SCHEMA} document: not a JSON object")));
    }
    let doc = Doc::deserialize(value).map_err(|err| {
        Error(format!("not a {SCHEMA} document: {}", first_line(&err.to_string())))
    })?;
    doc.into_document()
}

/// Reads one document per non-empty line (a json sink's batch), all or nothing.
///
/// # Errors
/// As [`parse`], naming the line (counting from 1).
pub fn parse_lines(bytes: &[u8]) -> Result<Vec<Document>, Error> {
    let mut out = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.trim_ascii().is_empty() {
            continue;
        }
        out.push(parse(line).map_err(|Error(text)| Error(format!("line {}: {text}", i + 1)))?);
    }
    Ok(out)
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// Seconds since the Unix epoch of an RFC 3339 time: `2026-11-22T04:40:12.345Z`, any number of
/// fraction digits, `Z` or a `+HH:MM`/`-HH:MM` offset, `T` or `t` or a space. \[pure\]
pub fn rfc3339(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u64> {
        let part = b.get(range)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut fraction = 0.0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        fraction = format!("0.{}", &text[start..i]).parse().ok()?;
    }
    let offset: i64 = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hh = digits(i + 1..i + 3)?;
            let mm = digits(i + 4..i + 6)?;
            let _ = (h1, h2, m1, m2);
            if hh > 23 || mm > 59 {
                return None;
            }
            let secs = i64::try_from(hh * 3600 + mm * 60).ok()?;
            if *sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day)?;
    let secs = days * 86_400 + i64::try_from(hour * 3600 + minute * 60 + second).ok()? - offset;
    Some(secs as f64 + fraction)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date (Howard Hinnant's algorithm, years 0 to 9999).
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<i64> {
    let y = i64::try_from(year).ok()? - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::try_from(month).ok()?;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::try_from(day).ok()? - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

// The document's shape, as metrics::encode::json writes it (docs/metrics.md).

#[derive(Deserialize)]
#[serde(expecting = "an object")]
struct Doc {
    schema: Option<String>,
    timestamp: Option<String>,
    #[serde(default)]
    hostname: String,
    interval_seconds: Option<f64>,
    uptime_seconds: Option<f64>,
    boot_time_seconds: Option<u64>,
    cpu: Option<DocCpu>,
    memory: Option<DocMemory>,
    network: Option<DocNetwork>,
    load: Option<DocLoad>,
    #[serde(default)]
    filesystems: Vec<DocFilesystem>,
    #[serde(default)]
    temperatures: Vec<DocTemperature>,
    uname: Option<DocUname>,
    process: Option<DocProcess>,
    #[serde(default)]
    tags: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "an object")]
#[serde(default)]
struct DocTimes {
    user: f64,
    nice: f64,
    system: f64,
    idle: f64,
    iowait: f64,
    irq: f64,
    softirq: f64,
    steal: f64,
    guest: f64,
    guest_nice: f64,
}

impl From<DocTimes> for CpuTimes {
    fn from(t: DocTimes) -> CpuTimes {
        CpuTimes {
            user: t.user,
            nice: t.nice,
            system: t.system,
            idle: t.idle,
            iowait: t.iowait,
            irq: t.irq,
            softirq: t.softirq,
            steal: t.steal,
            guest: t.guest,
            guest_nice: t.guest_nice,
        }
    }
}

#[derive(Deserialize)]
#[serde(expecting = "an object")]
struct DocCpu {
    #[serde(default)]
    count: usize,
    #[serde(default)]
    utilization_percent: f64,
    #[serde(default)]
    times_seconds: DocTimes,
    #[serde(default)]
    cores: Vec<DocCore>,
}

#[derive(Deserialize)]
#[serde(expecting = "an object")]
struct DocCore {
    #[serde(default)]
    id: u32,
    #[serde(default)]
    utilization_percent: f64,
    #[serde(default)]
    times_seconds: DocTimes,
    frequency: Option<DocFrequency>,
}

#[derive(Deserialize)]
#[serde(expecting = "an object")]
struct DocFrequency {
    current_hz: Option<f64>,
    min_hz: Option<f64>,
    max_hz: Option<f64>,
    #[serde(default)]
    source: String,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "an object")]
#[serde(default)]
struct DocMemory {
    total_bytes: u64,
    available_bytes: u64,
    free_bytes: u64,
    used_bytes: u64,
    swap: DocSwap,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "an object")]
#[serde(default)]
struct DocSwap {
    total_bytes: u64,
    free_bytes: u64,
    used_bytes: u64,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "an object")]
#[serde(default)]
struct DocNetwork {
    interfaces: Vec<DocInterface>,
}

#[derive(Deserialize)]
#[serde(expecting = "an object")]
struct DocInterface {
    #[serde(default)]
    name: String,
    rx: Option<DocCounters>,
    tx: Option<DocCounters>,
    rx_rate: Option<DocRates>,
    tx_rate: Option<DocRates>,
    mac_address: Option<String>,
    operstate: Option<String>,
    #[serde(default)]
    addresses: Vec<DocAddress>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(expecting = "an object")]
#[serde(default)]
struct DocCounters {
    bytes: u64,
    packets: u64,
    errors: u64,
    drops: u64,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(expecting = "an object")]
#[serde(default)]
struct DocRates {
    bytes_per_second: f64,
    packets_per_second: f64,
    errors_per_second: f64,
    drops_per_second: f64,
}

#[derive(Deserialize)]
#[serde(expecting = "an object")]
struct DocAddress {
    address: String,
    #[serde(default)]
    prefix_length: u8,
}

#[derive(Deserialize)]
#[serde(expecting = "an object")]
struct DocLoad {
    #[serde(rename = "1m", default)]
    one: f64,
    #[serde(rename = "5m", default)]
    five: f64,
    #[serde(rename = "15m", default)]
    fifteen: f64,
}

#[derive(Deserialize)]
#[serde(expecting = "an object")]
struct DocFilesystem {
    #[serde(default)]
    mount_point: String,
    #[serde(default)]
    device: String,
    #[serde(default)]
    fs_type: String,
    #[serde(default)]
    read_only: bool,
    total_bytes: Option<u64>,
    used_bytes: Option<u64>,
    free_bytes: Option<u64>,
    available_bytes: Option<u64>,
    files: Option<u64>,
    files_free: Option<u64>,
}

#[derive(Deserialize)]
#[serde(expecting = "an object")]
struct DocTemperature {
    #[serde(default)]
    source: String,
    #[serde(default)]
    chip: String,
    #[serde(default)]
    sensor: String,
    label: Option<String>,
    #[serde(default)]
    celsius: f64,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "an object")]
#[serde(default)]
struct DocUname {
    sysname: String,
    release: String,
    version: String,
    machine: String,
    domainname: String,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "an object")]
#[serde(default)]
struct DocProcess {
    cpu_seconds: f64,
    resident_bytes: u64,
    virtual_bytes: u64,
    start_time_seconds: f64,
    threads: u64,
}

impl Doc {
    fn into_document(self) -> Result<Document, Error> {
        match self.schema.as_deref() {
            Some(SCHEMA) => {}
            Some(other) => return Err(Error(format!("schema is {other:?}, not {SCHEMA:?}"))),
            None => return Err(Error(format!("no schema (want {SCHEMA:?})"))),
        }
        let Some(text) = self.timestamp else {
            return Err(Error("no timestamp".to_string()));
        };
        let Some(timestamp) = rfc3339(&text) else {
            return Err(Error(format!("timestamp {text:?} is not an RFC 3339 time")));
        };
        // Half a microsecond into its millisecond: an f64 of today's seconds is exact to about
        // 0.24 µs, so `.215` may be stored as `.21499991`, which an encoder that cuts nanoseconds
        // to milliseconds (as the stores do) would read as `.214`. The spoke's millisecond is the
        // point's identity in the store; this keeps it, and JSON writes the same millisecond.
        let timestamp = timestamp + 0.000_000_5;
        let mut tags = Vec::with_capacity(self.tags.len());
        for (key, value) in self.tags {
            match value {
                serde_json::Value::String(value) => tags.push((key, value)),
                other => return Err(Error(format!("tag {key:?} is {other}, not a string"))),
            }
        }
        let snapshot = Snapshot {
            timestamp,
            uname: self.uname.map(|u| Uname {
                sysname: u.sysname,
                nodename: self.hostname.clone(),
                release: u.release,
                version: u.version,
                machine: u.machine,
                domainname: u.domainname,
            }),
            hostname: self.hostname,
            interval: self.interval_seconds,
            uptime: self.uptime_seconds,
            boot_time: self.boot_time_seconds,
            cpu: self.cpu.map(cpu),
            memory: self.memory.map(memory),
            network: self
                .network
                .unwrap_or_default()
                .interfaces
                .into_iter()
                .map(interface)
                .collect(),
            load: self.load.map(|l| LoadAverage { one: l.one, five: l.five, fifteen: l.fifteen }),
            filesystems: self.filesystems.into_iter().map(filesystem).collect(),
            temperatures: self.temperatures.into_iter().map(temperature).collect(),
            process: self.process.map(|p| Process {
                cpu_seconds: p.cpu_seconds,
                resident_bytes: p.resident_bytes,
                virtual_bytes: p.virtual_bytes,
                start_time: p.start_time_seconds,
                threads: p.threads,
            }),
        };
        Ok(Document { snapshot, tags })
    }
}

fn cpu(c: DocCpu) -> Cpu {
    Cpu {
        count: c.count,
        times: c.times_seconds.into(),
        utilisation: c.utilization_percent,
        cores: c
            .cores
            .into_iter()
            .map(|core| Core {
                id: core.id,
                times: core.times_seconds.into(),
                utilisation: core.utilization_percent,
                frequency: core.frequency.map_or_else(Frequency::default, |f| Frequency {
                    current: f.current_hz,
                    min: f.min_hz,
                    max: f.max_hz,
                    source: if f.source == "cpufreq" {
                        FrequencySource::Cpufreq
                    } else {
                        FrequencySource::Cpuinfo
                    },
                }),
            })
            .collect(),
    }
}

fn memory(m: DocMemory) -> Memory {
    let field =
        |name: &str, value: u64| MeminfoField { name: name.to_string(), value, bytes: true };
    Memory {
        total: m.total_bytes,
        available: m.available_bytes,
        free: m.free_bytes,
        used: m.used_bytes,
        swap: Swap { total: m.swap.total_bytes, free: m.swap.free_bytes, used: m.swap.used_bytes },
        fields: vec![
            field("MemTotal", m.total_bytes),
            field("MemFree", m.free_bytes),
            field("MemAvailable", m.available_bytes),
            field("SwapTotal", m.swap.total_bytes),
            field("SwapFree", m.swap.free_bytes),
        ],
    }
}

fn interface(i: DocInterface) -> Interface {
    let counters = |c: DocCounters| NetCounters {
        bytes: c.bytes,
        packets: c.packets,
        errs: c.errors,
        drop: c.drops,
    };
    let rates = |r: DocRates| NetRates {
        bytes: r.bytes_per_second,
        packets: r.packets_per_second,
        errs: r.errors_per_second,
        drop: r.drops_per_second,
    };
    Interface {
        name: i.name,
        has_counters: i.rx.is_some() || i.tx.is_some(),
        rx: i.rx.map(counters).unwrap_or_default(),
        tx: i.tx.map(counters).unwrap_or_default(),
        rx_rate: i.rx_rate.map(rates),
        tx_rate: i.tx_rate.map(rates),
        addresses: i
            .addresses
            .into_iter()
            .filter_map(|a| {
                a.address
                    .parse::<IpAddr>()
                    .ok()
                    .map(|ip| Address { ip, prefix_len: a.prefix_length })
            })
            .collect(),
        link: crate::metrics::Link {
            address: i.mac_address,
            operstate: i.operstate,
            ..Default::default()
        },
    }
}

fn filesystem(f: DocFilesystem) -> Filesystem {
    let usage = f.total_bytes.map(|total| FsUsage {
        total,
        free: f.free_bytes.unwrap_or_default(),
        available: f.available_bytes.unwrap_or_default(),
        used: f.used_bytes.unwrap_or_default(),
        files: f.files.unwrap_or_default(),
        files_free: f.files_free.unwrap_or_default(),
    });
    Filesystem {
        mount_point: f.mount_point,
        device: f.device,
        fs_type: f.fs_type,
        read_only: f.read_only,
        usage,
    }
}

fn temperature(t: DocTemperature) -> Temperature {
    Temperature {
        kind: if t.source == "hwmon" { SensorKind::Hwmon } else { SensorKind::ThermalZone },
        chip: t.chip,
        sensor: t.sensor,
        label: t.label,
        celsius: t.celsius,
        crit: None,
        max: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::encode::{json, sample_snapshot};

    #[test]
    fn a_document_reads_back_to_what_encodes_the_same() {
        let text = json::encode(&sample_snapshot());
        let doc = parse(text.as_bytes()).unwrap();
        assert_eq!(json::encode(&doc.snapshot), text);
        assert!(doc.tags.is_empty());
        // The figures the sinks send are there, at the document's millisecond.
        let s = &doc.snapshot;
        let want = sample_snapshot();
        assert_eq!(s.hostname, want.hostname);
        assert_eq!((s.timestamp * 1000.0).round(), (want.timestamp * 1000.0).round());
        assert_eq!(s.cpu, want.cpu);
        assert_eq!(s.load, want.load);
        assert_eq!(s.filesystems, want.filesystems);
        assert_eq!(s.memory.as_ref().map(|m| m.total), want.memory.as_ref().map(|m| m.total));
    }

    #[test]
    fn an_empty_snapshot_reads_back() {
        let text = json::encode(&Snapshot::default());
        let doc = parse(text.as_bytes()).unwrap();
        assert_eq!(Snapshot { timestamp: 0.0, ..doc.snapshot }, Snapshot::default());
    }

    #[test]
    fn the_millisecond_survives_encoders_that_cut_to_milliseconds() {
        // 1796006804.215 is stored as 1796006804.2149999 in an f64: cut to milliseconds, .214.
        let memory = Some(Memory { total: 1, ..Memory::default() });
        let text =
            json::encode(&Snapshot { timestamp: 1_796_006_804.215, memory, ..Snapshot::default() });
        let doc = parse(text.as_bytes()).unwrap();
        let lines = crate::metrics::encode::influx::encode(&doc.snapshot);
        let ns: i64 = lines.lines().next().unwrap().rsplit(' ').next().unwrap().parse().unwrap();
        assert_eq!(ns / 1_000_000, 1_796_006_804_215, "{lines}");
        assert_eq!(json::encode(&doc.snapshot), text);
    }

    #[test]
    fn memory_fields_are_rebuilt_for_node_exporter_names() {
        let doc = parse(json::encode(&sample_snapshot()).as_bytes()).unwrap();
        let fams = crate::metrics::encode::prometheus::families(&doc.snapshot);
        let names: Vec<&str> = fams.iter().map(|f| f.name.as_str()).collect();
        for want in ["node_memory_MemTotal_bytes", "node_memory_MemAvailable_bytes"] {
            assert!(names.contains(&want), "{names:?}");
        }
    }

    #[test]
    fn tags_of_a_json_sink_are_kept() {
        let text = json::encode(&Snapshot { timestamp: 1.5, ..Snapshot::default() });
        let tagged =
            format!("{},\"tags\":{{\"site\":\"lab\",\"rack\":\"4\"}}}}", &text[..text.len() - 1]);
        let doc = parse(tagged.as_bytes()).unwrap();
        assert_eq!(doc.tags, vec![("rack".into(), "4".into()), ("site".into(), "lab".into())]);
        assert_eq!((doc.snapshot.timestamp * 1000.0).round(), 1500.0);
    }

    #[test]
    fn unknown_members_are_ignored_and_missing_ones_are_absent() {
        let doc = parse(
            br#"{"schema":"pocketses.metrics/v1","timestamp":"2026-11-22T04:12:06.500Z","future":{"x":1},"load":{"1m":0.5}}"#,
        )
        .unwrap();
        assert_eq!((doc.snapshot.timestamp * 1000.0).round(), 1_795_320_726_500.0);
        assert_eq!(doc.snapshot.load, Some(LoadAverage { one: 0.5, five: 0.0, fifteen: 0.0 }));
        assert_eq!(doc.snapshot.cpu, None);
    }

    #[test]
    fn refusals_say_why() {
        let table: [(&[u8], &str); 9] = [
            (b"", "not a pocketses.metrics/v1 document: EOF while parsing a value at line 1 column 0"),
            (b"[1]", "not a pocketses.metrics/v1 document: not a JSON object"),
            (br#"{"timestamp":"2026-11-22T04:12:06Z"}"#, r#"no schema (want "pocketses.metrics/v1")"#),
            (br#"{"schema":"other/v2"}"#, r#"schema is "other/v2", not "pocketses.metrics/v1""#),
            (br#"{"schema":"pocketses.metrics/v1"}"#, "no timestamp"),
            (br#"{"schema":"pocketses.metrics/v1","timestamp":"yesterday"}"#, r#"timestamp "yesterday" is not an RFC 3339 time"#),
            (br#"{"schema":"pocketses.metrics/v1","timestamp":"2026-11-22T04:12:06Z","tags":{"a":1}}"#, r#"tag "a" is 1, not a string"#),
            (br#"{"schema":"pocketses.metrics/v1","cpu":"x"}"#, r#"not a pocketses.metrics/v1 document: invalid type: string "x", expected an object"#),
            (br#"{"schema":"pocketses.metrics/v1","load":{"1m":"high"}}"#, r#"not a pocketses.metrics/v1 document: invalid type: string "high", expected f64"#),
        ];
        for (input, want) in table {
            assert_eq!(
                parse(input).unwrap_err().to_string(),
                want,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn lines_are_read_all_or_nothing() {
        let one = json::encode(&Snapshot { timestamp: 1.0, ..Snapshot::default() });
        let two = json::encode(&Snapshot { timestamp: 2.0, ..Snapshot::default() });
        let docs = parse_lines(format!("{one}\n\n{two}\n").as_bytes()).unwrap();
        assert_eq!(
            docs.iter().map(|d| d.snapshot.timestamp.round()).collect::<Vec<_>>(),
            [1.0, 2.0]
        );
        let err = parse_lines(format!("{one}\n{{}}\n").as_bytes()).unwrap_err();
        assert_eq!(err.to_string(), r#"line 2: no schema (want "pocketses.metrics/v1")"#);
        assert!(parse_lines(b"\n").unwrap().is_empty());
    }

    #[test]
    fn times() {
        let table = [
            ("1970-01-01T00:00:00Z", Some(0.0)),
            ("1970-01-01T00:00:00.000Z", Some(0.0)),
            ("2000-02-29T00:00:00.000Z", Some(951_782_400.0)),
            ("2026-11-22T04:12:06.500Z", Some(1_795_320_726.5)),
            ("2026-11-22T05:12:06.5+01:00", Some(1_795_320_726.5)),
            ("2026-11-22 03:12:06.5-01:00", Some(1_795_320_726.5)),
            ("2100-02-28T23:59:59.999Z", Some(4_107_542_399.999)),
            ("2001-02-29T00:00:00Z", None),
            ("2026-13-01T00:00:00Z", None),
            ("2026-11-22T24:00:00Z", None),
            ("2026-11-22T04:12:06", None),
            ("2026-11-22T04:12:06.Z", None),
            ("2026-11-22T04:12:06+1:00", None),
            ("2026-11-22T04:12:06Zjunk", None),
            ("", None),
        ];
        for (text, want) in table {
            assert_eq!(rfc3339(text), want, "{text}");
        }
        // Every time the encoder writes reads back to its millisecond.
        for secs in [0.0, 1.001, 951_782_400.123, 1_795_320_726.5, 4_107_542_399.999] {
            let back = rfc3339(&json::rfc3339(secs)).unwrap();
            assert_eq!((back * 1000.0).round(), (secs * 1000.0_f64).round(), "{secs}");
        }
    }
}
