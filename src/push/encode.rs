//! Records and request bodies of the push formats. \[pure\]
//!
//! A sink spools one *record* per snapshot, already in the sink's own format, so that a replay
//! after a restart needs nothing but the spool; a batch of records, oldest first, becomes one
//! request [`Body`]. docs/push.md ("Formats") describes them for users, with their sizes.
//!
//! - `influx`: a record is the snapshot's line protocol with the sink's tags, written by the
//!   format's one writer ([`crate::metrics::encode::influx::write`]); a body is the records one
//!   after the other, gzip-compressed.
//! - `prometheus`: a record is a remote-write 1.0 `WriteRequest` (protobuf, [`remote_write`])
//!   with one series per sample of `/metrics`, as the one walk over a snapshot's families
//!   tells them ([`crate::metrics::encode::prometheus::walk`]), written as it goes (`series`);
//!   a body is the records concatenated (which is again one `WriteRequest`), compressed as one
//!   snappy block.
//! - `json`: a record is the snapshot's `pocketses.metrics/v1` document on one line, with a
//!   `tags` object when the sink has tags; a body is those lines, newline-delimited
//!   (`application/x-ndjson`), so a body of one record is also one plain JSON document.
//!
//! A record is stored compressed: the byte [`RECORD_MARK`] (0xFF, which starts no line
//! protocol, JSON or protobuf), the number of points as a varint, then the plain bytes above as
//! one snappy block. A remote-write record of one snapshot repeats every label on every series
//! and shrinks about six times; docs/push.md has the measurements. [`payload`] gives the plain
//! bytes back and [`describe`] a text for people (`--dry-run`). Records without the mark are
//! taken as plain bytes.
//!
//! Tags (`push.NAME.tags`) never change which series a value belongs to: a tag whose key the
//! line or series already has is left out of that line or series, so that two series can never
//! merge. The exceptions are the identity a store uses to tell devices apart, which a tag may
//! set: influx's `host` tag, and the `job` (default `pocketses`) and `instance` (default: the
//! host name) labels that prometheus records add to every series.
//! [`check_tags`] says which tags a format can carry; `record` refuses the others.
//!
//! Interface used by the sinks (keep stable): [`SinkFormat`], [`Body`], [`Error`], [`record`],
//! [`record_with`], [`body`], [`body_checked`], [`points`], [`payload`], [`describe`], [`check_tags`].
//!
//! What this module does not do: HTTP, the spool, batching decisions (see the sink's sender).

pub mod remote_write;
mod series;

use std::io::Write as _;

use crate::metrics::encode::{influx, json};
use crate::metrics::Snapshot;

/// The wire format of a sink (`push.NAME.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkFormat {
    /// InfluxDB line protocol, for `/write` (1.x) and `/api/v2/write` (2.x).
    Influx,
    /// Prometheus remote-write 1.0: protobuf `WriteRequest`, snappy block compression.
    Prometheus,
    /// `pocketses.metrics/v1` documents, newline-delimited.
    Json,
    /// One JSON document per request, `application/json`: the webhook of check notifications
    /// (`crate::notify`). Not a value of `push.NAME.format`: its records are made by the
    /// notifier ([`document_record`]), never from a snapshot.
    Webhook,
}

impl SinkFormat {
    /// The value of `push.NAME.format` that names this format.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkFormat::Influx => "influx",
            SinkFormat::Prometheus => "prometheus",
            SinkFormat::Json => "json",
            SinkFormat::Webhook => "webhook",
        }
    }

    /// Parses a value of `push.NAME.format`.
    pub fn parse(text: &str) -> Option<SinkFormat> {
        match text {
            "influx" => Some(SinkFormat::Influx),
            "prometheus" => Some(SinkFormat::Prometheus),
            "json" => Some(SinkFormat::Json),
            _ => None,
        }
    }
}

/// One request body and the headers that describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// The bytes to send, already compressed when `content_encoding` says so.
    pub bytes: Vec<u8>,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// `Content-Encoding`, when the body is compressed.
    pub content_encoding: Option<&'static str>,
    /// Other headers the format requires (remote-write's version header).
    pub headers: Vec<(&'static str, &'static str)>,
}

/// Why a record or a body could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The format has no encoder (kept for callers written before every format had one).
    #[error("cannot encode for {0}: format not supported yet")]
    Unsupported(&'static str),
    /// A spooled record is not valid for the format.
    #[error("cannot decode spooled record: {0}")]
    BadRecord(String),
    /// A tag the format cannot carry.
    #[error("cannot use tag {key:?} for {format}: {reason}")]
    BadTag {
        /// The format's name.
        format: &'static str,
        /// The tag's key.
        key: String,
        /// Why, in a few words.
        reason: &'static str,
    },
    /// The body is too large to compress (snappy blocks stop at about 4 GiB).
    #[error("cannot compress request body: {0}")]
    Compress(String),
}

/// The `Content-Type` of each format's bodies.
pub const INFLUX_CONTENT_TYPE: &str = "text/plain; charset=utf-8";
/// The `Content-Type` of remote-write bodies.
pub const PROMETHEUS_CONTENT_TYPE: &str = "application/x-protobuf";
/// The `Content-Type` of JSON bodies.
pub const JSON_CONTENT_TYPE: &str = "application/x-ndjson";
/// The `Content-Type` of webhook bodies (one document).
pub const WEBHOOK_CONTENT_TYPE: &str = "application/json";

/// The `job` label of prometheus series unless a tag sets it.
pub const DEFAULT_JOB: &str = "pocketses";

/// Checks that `tags` can be carried by `format`: keys and values non-empty and without
/// control characters, no key twice, and the format's own rules (prometheus: label names
/// `[a-zA-Z_][a-zA-Z0-9_]*` not starting with `__`; influx: keys not starting with `_` and not
/// `time`).
///
/// # Errors
///
/// [`Error::BadTag`] for the first tag that cannot be carried.
pub fn check_tags(format: SinkFormat, tags: &[(String, String)]) -> Result<(), Error> {
    for (i, (key, value)) in tags.iter().enumerate() {
        let bad = |reason| Err(Error::BadTag { format: format.as_str(), key: key.clone(), reason });
        if key.is_empty() {
            return bad("empty key");
        }
        if value.is_empty() {
            return bad("empty value");
        }
        if key.chars().chain(value.chars()).any(char::is_control) {
            return bad("control character");
        }
        if tags[..i].iter().any(|(k, _)| k == key) {
            return bad("key given twice");
        }
        match format {
            SinkFormat::Prometheus => {
                let mut chars = key.chars();
                let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
                if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return bad("label names are letters, digits and _, not starting with a digit");
                }
                if key.starts_with("__") {
                    return bad("label names starting with __ are reserved");
                }
            }
            SinkFormat::Influx => {
                if key.starts_with('_') {
                    return bad("keys starting with _ are reserved");
                }
                if key == "time" {
                    return bad("time is not a tag key");
                }
            }
            SinkFormat::Json | SinkFormat::Webhook => {}
        }
    }
    Ok(())
}

/// The spool record of one snapshot for a sink of `format`, with the sink's extra tags
/// (`push.NAME.tags`) applied (see the module documentation for which tag wins).
///
/// # Errors
///
/// [`Error::BadTag`] when [`check_tags`] refuses `tags`.
pub fn record(
    format: SinkFormat,
    snapshot: &Snapshot,
    tags: &[(String, String)],
) -> Result<Vec<u8>, Error> {
    record_with(format, snapshot, tags, &mut Vec::new())
}

/// [`record`], writing the plain bytes in `scratch` (a buffer the caller keeps from one record
/// to the next, so that a sink does not allocate it for every snapshot). What `scratch` holds
/// afterwards is unspecified.
///
/// # Errors
///
/// As [`record`].
pub fn record_with(
    format: SinkFormat,
    snapshot: &Snapshot,
    tags: &[(String, String)],
    scratch: &mut Vec<u8>,
) -> Result<Vec<u8>, Error> {
    check_tags(format, tags)?;
    match format {
        SinkFormat::Influx => {
            let mut text = String::from_utf8(std::mem::take(scratch)).unwrap_or_default();
            text.clear();
            let n_points = influx::write(&mut text, snapshot, tags);
            *scratch = text.into_bytes();
            pack(scratch, n_points)
        }
        SinkFormat::Prometheus => {
            let n_points = prometheus_record(scratch, snapshot, tags);
            pack(scratch, n_points)
        }
        SinkFormat::Json | SinkFormat::Webhook => pack(&json_record(snapshot, tags), 1),
    }
}

/// The spool record of a JSON document made elsewhere (a notification of `crate::notify`), for
/// a [`SinkFormat::Webhook`] sink: one point.
///
/// # Errors
///
/// [`Error::BadRecord`] when `document` is not one JSON document.
pub fn document_record(document: &[u8]) -> Result<Vec<u8>, Error> {
    plain_points(SinkFormat::Webhook, document)?;
    pack(document, 1)
}

/// The first byte of a compressed record.
pub const RECORD_MARK: u8 = 0xFF;

/// The largest plain record [`payload`] unpacks (a snapshot is tens of KiB); a larger length is
/// damage, refused rather than allocated.
pub const MAX_PLAIN_RECORD: usize = 64 << 20;

fn pack(plain: &[u8], n_points: usize) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(16 + snap::raw::max_compress_len(plain.len()));
    out.push(RECORD_MARK);
    remote_write::push_varint(&mut out, u64::try_from(n_points).unwrap_or(u64::MAX));
    let start = out.len();
    out.resize(start + snap::raw::max_compress_len(plain.len()), 0);
    let n = snap::raw::Encoder::new()
        .compress(plain, &mut out[start..])
        .map_err(|e| Error::Compress(e.to_string()))?;
    out.truncate(start + n);
    Ok(out)
}

/// A compressed record's point count and snappy block.
fn unpack_header(record: &[u8]) -> Result<Option<(usize, &[u8])>, Error> {
    let Some(rest) = record.strip_prefix(&[RECORD_MARK]) else { return Ok(None) };
    let (n_points, used) = remote_write::read_varint(rest)
        .ok_or_else(|| Error::BadRecord("truncated point count".to_string()))?;
    let block = &rest[used..];
    let plain_len = snap::raw::decompress_len(block)
        .map_err(|e| Error::BadRecord(format!("bad snappy block: {e}")))?;
    if plain_len > MAX_PLAIN_RECORD {
        return Err(Error::BadRecord(format!("record claims {plain_len} bytes")));
    }
    let n_points = usize::try_from(n_points)
        .map_err(|_| Error::BadRecord(format!("point count {n_points} too large")))?;
    Ok(Some((n_points, block)))
}

/// The plain bytes of a record: line protocol, a protobuf `WriteRequest` or a JSON document.
///
/// # Errors
///
/// [`Error::BadRecord`] when a compressed record does not decompress.
pub fn payload(record: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, Error> {
    match unpack_header(record)? {
        None => Ok(std::borrow::Cow::Borrowed(record)),
        Some((_, block)) => snap::raw::Decoder::new()
            .decompress_vec(block)
            .map(std::borrow::Cow::Owned)
            .map_err(|e| Error::BadRecord(format!("bad snappy block: {e}"))),
    }
}

/// A record as text for people (`pocketses push --dry-run`): the line protocol, the JSON
/// document, or for remote-write one line per sample in the exposition format's shape,
/// `name{label="value",…} value timestamp_ms`, labels in wire order without `__name__`.
///
/// # Errors
///
/// [`Error::BadRecord`] when the record does not decode.
pub fn describe(format: SinkFormat, record: &[u8]) -> Result<String, Error> {
    let plain = payload(record)?;
    plain_points(format, &plain)?;
    match format {
        SinkFormat::Influx | SinkFormat::Json | SinkFormat::Webhook => {
            let mut text = String::from_utf8_lossy(&plain).into_owned();
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            Ok(text)
        }
        SinkFormat::Prometheus => {
            let series = remote_write::decode(&plain)
                .map_err(|e| Error::BadRecord(format!("prometheus record: {e}")))?;
            let mut out = String::with_capacity(plain.len());
            for ts in &series {
                let name = ts.labels.iter().find(|(k, _)| k == "__name__").map(|(_, v)| v.as_str());
                out.push_str(name.unwrap_or(""));
                out.push('{');
                let mut first = true;
                for (k, v) in ts.labels.iter().filter(|(k, _)| k != "__name__") {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    out.push_str(k);
                    out.push('=');
                    push_json_string(&mut out, v);
                }
                out.push('}');
                for (value, timestamp_ms) in &ts.samples {
                    out.push(' ');
                    crate::metrics::encode::float::push_prometheus(&mut out, *value);
                    out.push(' ');
                    out.push_str(&timestamp_ms.to_string());
                }
                out.push('\n');
            }
            Ok(out)
        }
    }
}

/// Milliseconds since the epoch of a snapshot time in seconds; saturating, 0 when not finite.
#[allow(clippy::cast_possible_truncation)] // float-to-int casts saturate, as wanted here
fn timestamp_ms(seconds: f64) -> i64 {
    if !seconds.is_finite() {
        return 0;
    }
    (seconds * 1000.0).round() as i64
}

/// Writes the remote-write `WriteRequest` of a snapshot into `out` (cleared first): one series
/// per sample of `/metrics`, straight from the snapshot ([`series`]). Returns the samples.
fn prometheus_record(out: &mut Vec<u8>, snapshot: &Snapshot, tags: &[(String, String)]) -> usize {
    out.clear();
    let identity = [("job", DEFAULT_JOB), ("instance", snapshot.hostname.as_str())];
    series::write(out, snapshot, tags, &identity, timestamp_ms(snapshot.timestamp))
}

fn json_record(snapshot: &Snapshot, tags: &[(String, String)]) -> Vec<u8> {
    let mut doc = json::encode(snapshot);
    if !tags.is_empty() && doc.ends_with('}') {
        doc.pop();
        doc.push_str(",\"tags\":{");
        for (i, (key, value)) in tags.iter().enumerate() {
            if i > 0 {
                doc.push(',');
            }
            push_json_string(&mut doc, key);
            doc.push(':');
            push_json_string(&mut doc, value);
        }
        doc.push_str("}}");
    }
    doc.into_bytes()
}

fn push_json_string(out: &mut String, text: &str) {
    // Serialising a str cannot fail; the fallback keeps the document valid regardless.
    out.push_str(&serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_string()));
}

/// The number of points in a record: influx lines, prometheus samples, json documents. For a
/// compressed record this reads its header only (cheap enough for status over a whole spool);
/// [`body`] checks every record in full.
///
/// # Errors
///
/// [`Error::BadRecord`] when the record is not valid for `format`.
pub fn points(format: SinkFormat, record: &[u8]) -> Result<usize, Error> {
    match unpack_header(record)? {
        Some((n_points, _)) => Ok(n_points),
        None => plain_points(format, record),
    }
}

/// Counts the points of plain bytes, checking them as far as the count needs.
fn plain_points(format: SinkFormat, plain: &[u8]) -> Result<usize, Error> {
    match format {
        SinkFormat::Influx => {
            let text = std::str::from_utf8(plain)
                .map_err(|e| Error::BadRecord(format!("influx record is not utf-8: {e}")))?;
            Ok(text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).count())
        }
        SinkFormat::Prometheus => remote_write::count_samples(plain)
            .map_err(|e| Error::BadRecord(format!("prometheus record: {e}"))),
        SinkFormat::Webhook => {
            serde_json::from_slice::<serde::de::IgnoredAny>(plain.trim_ascii())
                .map_err(|e| Error::BadRecord(format!("webhook record: {e}")))?;
            Ok(1)
        }
        SinkFormat::Json => {
            let mut n = 0;
            for line in plain.split(|&b| b == b'\n').filter(|l| !l.trim_ascii().is_empty()) {
                serde_json::from_slice::<serde::de::IgnoredAny>(line)
                    .map_err(|e| Error::BadRecord(format!("json record: {e}")))?;
                n += 1;
            }
            Ok(n)
        }
    }
}

/// One request body from `records`, oldest first. An empty `records` gives a valid body
/// without points.
///
/// # Errors
///
/// [`Error::BadRecord`] naming the first record (counting from 0) that is not valid for
/// `format` (the sender can find it with [`points`]); [`Error::Compress`] when the body is
/// too large to compress.
pub fn body(format: SinkFormat, records: &[&[u8]]) -> Result<Body, Error> {
    body_checked(format, records, true)
}

/// [`body`], checking each record's content in full only when `check` is set. A sink passes
/// `false` for records it made itself with [`record`] and held in memory since
/// (`Spool::peek_held`): they were valid when made and never left the process, so decoding
/// them again would only spend CPU. Records read back from disk are checked (`true`): the
/// spool's checksum catches damage, this catches records that were never valid.
///
/// With `check` false a prometheus body of one compressed record is its snappy block as it is,
/// without decompressing it; every other body is byte for byte what [`body`] makes.
///
/// # Errors
///
/// As [`body`]; with `check` false only what decompressing finds.
pub fn body_checked(format: SinkFormat, records: &[&[u8]], check: bool) -> Result<Body, Error> {
    if !check && format == SinkFormat::Prometheus {
        if let [one] = records {
            if let Some((_, block)) = unpack_header(one)? {
                return Ok(prometheus_body(block.to_vec()));
            }
        }
    }
    let mut plain = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let checked = if check {
            payload(r).and_then(|p| plain_points(format, &p).map(|_| p))
        } else {
            payload(r)
        };
        plain.push(checked.map_err(|e| match e {
            Error::BadRecord(why) => Error::BadRecord(format!("record {i} of the batch: {why}")),
            e => e,
        })?);
    }
    match format {
        SinkFormat::Influx => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            for r in &plain {
                gz.write_all(r).map_err(|e| Error::Compress(e.to_string()))?;
                if !r.is_empty() && !r.ends_with(b"\n") {
                    gz.write_all(b"\n").map_err(|e| Error::Compress(e.to_string()))?;
                }
            }
            Ok(Body {
                bytes: gz.finish().map_err(|e| Error::Compress(e.to_string()))?,
                content_type: INFLUX_CONTENT_TYPE,
                content_encoding: Some("gzip"),
                headers: Vec::new(),
            })
        }
        SinkFormat::Prometheus => {
            // One compressed record (what a sink that keeps up sends): its snappy block is
            // already the body, checked above by decompressing it.
            let single = match records {
                [one] => unpack_header(one)?.map(|(_, block)| block.to_vec()),
                _ => None,
            };
            let bytes = match single {
                Some(block) => block,
                None => {
                    let request: Vec<u8> = plain.iter().flat_map(|r| r.iter().copied()).collect();
                    snap::raw::Encoder::new()
                        .compress_vec(&request)
                        .map_err(|e| Error::Compress(e.to_string()))?
                }
            };
            Ok(prometheus_body(bytes))
        }
        SinkFormat::Json => {
            let mut bytes = Vec::new();
            for r in &plain {
                bytes.extend_from_slice(r.strip_suffix(b"\n").unwrap_or(r));
                bytes.push(b'\n');
            }
            Ok(Body {
                bytes,
                content_type: JSON_CONTENT_TYPE,
                content_encoding: None,
                headers: Vec::new(),
            })
        }
        // One document per request: the notifier's sink sends batches of one. Should more come,
        // they go as a JSON array, still one document.
        SinkFormat::Webhook => {
            let bytes = match plain.as_slice() {
                [one] => one.trim_ascii().to_vec(),
                many => {
                    let parts: Vec<&[u8]> = many.iter().map(|r| r.trim_ascii()).collect();
                    let mut bytes = b"[".to_vec();
                    bytes.extend_from_slice(&parts.join(&b","[..]));
                    bytes.push(b']');
                    bytes
                }
            };
            Ok(Body {
                bytes,
                content_type: WEBHOOK_CONTENT_TYPE,
                content_encoding: None,
                headers: Vec::new(),
            })
        }
    }
}

/// A remote-write body of a snappy block.
fn prometheus_body(bytes: Vec<u8>) -> Body {
    Body {
        bytes,
        content_type: PROMETHEUS_CONTENT_TYPE,
        content_encoding: Some("snappy"),
        headers: vec![("X-Prometheus-Remote-Write-Version", "0.1.0")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::encode::sample_snapshot;
    use proptest::prelude::*;
    use std::io::Read as _;

    const ALL: [SinkFormat; 3] = [SinkFormat::Influx, SinkFormat::Prometheus, SinkFormat::Json];

    /// Owned tag pairs, as a sink's configuration holds them (also for the writers' tests).
    pub(super) fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn plain(format: SinkFormat, t: &[(&str, &str)]) -> Vec<u8> {
        payload(&record(format, &sample_snapshot(), &tags(t)).unwrap()).unwrap().into_owned()
    }

    fn text(format: SinkFormat, t: &[(&str, &str)]) -> String {
        String::from_utf8(plain(format, t)).unwrap()
    }

    fn series(t: &[(&str, &str)]) -> Vec<remote_write::TimeSeries> {
        remote_write::decode(&plain(SinkFormat::Prometheus, t)).unwrap()
    }

    fn label<'a>(s: &'a remote_write::TimeSeries, name: &str) -> Option<&'a str> {
        s.labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn formats_round_trip_through_their_names() {
        for f in ALL {
            assert_eq!(SinkFormat::parse(f.as_str()), Some(f));
        }
        assert_eq!(SinkFormat::parse("graphite"), None);
    }

    #[test]
    fn json_body_is_one_document_per_line() {
        let b = body(SinkFormat::Json, &[b"{\"a\":1}", b"{\"a\":2}\n"]).unwrap();
        assert_eq!(b.bytes, b"{\"a\":1}\n{\"a\":2}\n");
        assert_eq!(b.content_type, "application/x-ndjson");
    }

    #[test]
    fn records_are_marked_compressed_and_unpack_to_the_plain_encoding() {
        let s = sample_snapshot();
        let r = record(SinkFormat::Influx, &s, &[]).unwrap();
        assert_eq!(r[0], RECORD_MARK);
        assert_eq!(payload(&r).unwrap().as_ref(), influx::encode(&s).as_bytes());
        let r = record(SinkFormat::Json, &s, &[]).unwrap();
        assert_eq!(payload(&r).unwrap().as_ref(), json::encode(&s).as_bytes());
        // Plain bytes (no mark) are taken as they are.
        assert_eq!(payload(b"cpu v=1 1\n").unwrap().as_ref(), b"cpu v=1 1\n");
    }

    #[test]
    fn prometheus_records_shrink_several_times() {
        let r =
            record(SinkFormat::Prometheus, &sample_snapshot(), &tags(&[("site", "b")])).unwrap();
        let p = payload(&r).unwrap();
        assert!(r.len() * 4 < p.len(), "{} of {} bytes", r.len(), p.len());
    }

    #[test]
    fn points_count_lines_samples_and_documents() {
        let s = sample_snapshot();
        let n_samples: usize =
            crate::metrics::encode::prometheus::families(&s).iter().map(|f| f.samples.len()).sum();
        let n_lines = influx::encode(&s).lines().count();
        for (f, want) in [
            (SinkFormat::Influx, n_lines),
            (SinkFormat::Prometheus, n_samples),
            (SinkFormat::Json, 1),
        ] {
            let r = record(f, &s, &[]).unwrap();
            assert_eq!(points(f, &r), Ok(want), "{f:?}");
            // The header's count is the count of the plain bytes.
            assert_eq!(plain_points(f, &payload(&r).unwrap()), Ok(want), "{f:?}");
        }
        assert_eq!(points(SinkFormat::Influx, b"a v=1 1\n# comment\n\nb v=2 2\n"), Ok(2));
    }

    #[test]
    fn influx_tags_join_every_line_without_replacing_its_own() {
        let t =
            text(SinkFormat::Influx, &[("site", "north pole"), ("cpu", "mine"), ("rack", "r=7,b")]);
        for line in t.lines() {
            assert!(line.contains(",site=north\\ pole"), "{line}");
            assert!(line.contains(",rack=r\\=7\\,b,"), "{line}");
        }
        // `cpu` lines keep their own cpu tag; other lines get the sink's.
        assert!(t.lines().any(|l| l.starts_with("cpu,cpu=cpu-total,host=pi-4,rack=")), "{t}");
        assert!(!t.lines().any(|l| l.starts_with("cpu,") && l.contains("cpu=mine")), "{t}");
        assert!(t.lines().any(|l| l.starts_with("mem,cpu=mine,host=pi-4,rack=")), "{t}");
    }

    #[test]
    fn influx_host_tag_may_be_set() {
        let t = text(SinkFormat::Influx, &[("host", "kiosk-7")]);
        assert!(t.lines().all(|l| l.contains(",host=kiosk-7") && !l.contains("pi-4,")), "{t}");
    }

    #[test]
    fn prometheus_series_are_the_metrics_families_with_identity_labels() {
        let s = sample_snapshot();
        let got = series(&[]);
        let mut want = Vec::new();
        for f in crate::metrics::encode::prometheus::families(&s) {
            for sample in f.samples {
                let mut labels: Vec<(String, String)> =
                    sample.labels.into_iter().filter(|(_, v)| !v.is_empty()).collect();
                labels.push(("__name__".to_string(), f.name.clone()));
                labels.push(("instance".to_string(), "pi-4".to_string()));
                labels.push(("job".to_string(), "pocketses".to_string()));
                labels.sort();
                want.push((labels, sample.value.to_bits()));
            }
        }
        let mut have: Vec<_> = got
            .iter()
            .map(|t| {
                assert_eq!(t.samples.len(), 1);
                assert_eq!(t.samples[0].1, 1_795_320_726_250, "timestamp in ms");
                (t.labels.clone(), t.samples[0].0.to_bits())
            })
            .collect();
        have.sort();
        want.sort();
        assert_eq!(have, want);
    }

    #[test]
    fn prometheus_labels_are_sorted_by_bytes_and_unique() {
        for t in series(&[("Zone", "a"), ("site", "b"), ("mode", "x")]) {
            let names: Vec<&[u8]> = t.labels.iter().map(|(k, _)| k.as_bytes()).collect();
            let mut sorted = names.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(names, sorted);
            assert!(t.labels.iter().all(|(_, v)| !v.is_empty()));
            assert!(label(&t, "__name__").is_some());
        }
        // With lowercase tags `__name__` is the first label, as in Prometheus' own requests.
        assert!(series(&[("site", "b")]).iter().all(|t| t.labels[0].0 == "__name__"));
    }

    #[test]
    fn prometheus_tags_add_labels_but_never_replace_a_series_own() {
        let all = series(&[("mode", "tagged"), ("site", "b")]);
        let cpu: Vec<_> =
            all.iter().filter(|t| label(t, "__name__") == Some("node_cpu_seconds_total")).collect();
        assert!(!cpu.is_empty());
        assert!(cpu.iter().all(|t| label(t, "mode") != Some("tagged")));
        let load = all.iter().find(|t| label(t, "__name__") == Some("node_load1")).unwrap();
        assert_eq!(label(load, "mode"), Some("tagged"));
        assert!(all.iter().all(|t| label(t, "site") == Some("b")));
        // Distinct series stay distinct.
        let mut keys: Vec<_> = all.iter().map(|t| t.labels.clone()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), all.len());
    }

    #[test]
    fn prometheus_job_and_instance_may_be_set_by_tags() {
        for t in series(&[("job", "node"), ("instance", "kiosk-7")]) {
            assert_eq!(label(&t, "job"), Some("node"));
            assert_eq!(label(&t, "instance"), Some("kiosk-7"));
        }
    }

    #[test]
    fn prometheus_nan_values_are_normal_nan() {
        let mut s = sample_snapshot();
        s.load =
            Some(crate::metrics::LoadAverage { one: f64::NAN, five: f64::INFINITY, fifteen: 0.5 });
        let r = record(SinkFormat::Prometheus, &s, &[]).unwrap();
        let all = remote_write::decode(&payload(&r).unwrap()).unwrap();
        let value =
            |name| all.iter().find(|t| label(t, "__name__") == Some(name)).unwrap().samples[0].0;
        assert_eq!(value("node_load1").to_bits(), remote_write::NORMAL_NAN);
        assert_eq!(value("node_load5"), f64::INFINITY);
        assert_eq!(value("node_load15"), 0.5);
    }

    #[test]
    fn json_tags_are_an_object_at_the_end_of_the_document() {
        let t = text(SinkFormat::Json, &[("site", "a \"b\""), ("rack", "7")]);
        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
        assert_eq!(v["tags"], serde_json::json!({"site": "a \"b\"", "rack": "7"}));
        assert_eq!(v["schema"], json::SCHEMA);
        assert!(t.ends_with(r#","tags":{"site":"a \"b\"","rack":"7"}}"#), "{t}");
        // Without tags the document is exactly /v1/metrics'.
        assert_eq!(text(SinkFormat::Json, &[]), json::encode(&sample_snapshot()));
    }

    #[test]
    fn bad_tags_are_refused_with_a_reason() {
        use SinkFormat::{Influx, Json, Prometheus};
        for (format, key, value, want) in [
            (Prometheus, "__name__", "x", "label names starting with __ are reserved"),
            (
                Prometheus,
                "9lives",
                "x",
                "label names are letters, digits and _, not starting with a digit",
            ),
            (
                Prometheus,
                "a-b",
                "x",
                "label names are letters, digits and _, not starting with a digit",
            ),
            (Influx, "_measurement", "x", "keys starting with _ are reserved"),
            (Influx, "time", "x", "time is not a tag key"),
            (Json, "", "x", "empty key"),
            (Influx, "site", "", "empty value"),
            (Prometheus, "site", "a\nb", "control character"),
        ] {
            let t = tags(&[(key, value)]);
            let err = check_tags(format, &t).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("cannot use tag {key:?} for {}: {want}", format.as_str())
            );
            assert_eq!(record(format, &sample_snapshot(), &t), Err(err));
        }
        let twice = tags(&[("a", "1"), ("a", "2")]);
        assert!(check_tags(Json, &twice).is_err());
        for f in ALL {
            assert_eq!(check_tags(f, &tags(&[("site", "x y"), ("Rack_2", "ü")])), Ok(()));
        }
    }

    #[test]
    fn influx_body_is_gzip_of_the_records_in_order() {
        let s = sample_snapshot();
        let mut later = s.clone();
        later.timestamp += 10.0;
        let a = record(SinkFormat::Influx, &s, &[]).unwrap();
        let b = record(SinkFormat::Influx, &later, &[]).unwrap();
        let body = body(SinkFormat::Influx, &[&a, &b, b"plain v=1 5"]).unwrap();
        assert_eq!(body.content_type, "text/plain; charset=utf-8");
        assert_eq!(body.content_encoding, Some("gzip"));
        assert!(body.headers.is_empty());
        let want = format!("{}{}plain v=1 5\n", influx::encode(&s), influx::encode(&later));
        assert_eq!(String::from_utf8(gunzip(&body.bytes)).unwrap(), want);
    }

    #[test]
    fn prometheus_body_is_one_snappy_write_request_of_all_records() {
        let s = sample_snapshot();
        let mut later = s.clone();
        later.timestamp += 10.0;
        let a = record(SinkFormat::Prometheus, &s, &[]).unwrap();
        let b = record(SinkFormat::Prometheus, &later, &[]).unwrap();
        let body = body(SinkFormat::Prometheus, &[&a, &b]).unwrap();
        assert_eq!(body.content_type, "application/x-protobuf");
        assert_eq!(body.content_encoding, Some("snappy"));
        assert_eq!(body.headers, [("X-Prometheus-Remote-Write-Version", "0.1.0")]);
        let request = snap::raw::Decoder::new().decompress_vec(&body.bytes).unwrap();
        assert_eq!(request, [payload(&a).unwrap(), payload(&b).unwrap()].concat());
        let all = remote_write::decode(&request).unwrap();
        let n = points(SinkFormat::Prometheus, &a).unwrap();
        assert_eq!(all.len(), 2 * n);
        assert_eq!(all[0].samples[0].1, 1_795_320_726_250);
        assert_eq!(all[n].samples[0].1, 1_795_320_736_250);
    }

    #[test]
    fn a_prometheus_body_of_one_record_is_its_block_as_spooled() {
        let a = record(SinkFormat::Prometheus, &sample_snapshot(), &[]).unwrap();
        let one = body(SinkFormat::Prometheus, &[&a]).unwrap();
        // The record is the mark, the point count, then the block: nothing compressed again.
        assert!(a.ends_with(&one.bytes));
        assert_eq!(a.len() - one.bytes.len(), 2, "0xFF and the count of 110 samples, one byte");
        let request = snap::raw::Decoder::new().decompress_vec(&one.bytes).unwrap();
        assert_eq!(request, payload(&a).unwrap().as_ref());
        // A plain (uncompressed) record of one is compressed as before.
        let plain = payload(&a).unwrap().into_owned();
        let b = body(SinkFormat::Prometheus, &[&plain]).unwrap();
        assert_eq!(snap::raw::Decoder::new().decompress_vec(&b.bytes).unwrap(), plain);
    }

    #[test]
    fn unchecked_bodies_of_valid_records_are_the_checked_bodies() {
        let s = sample_snapshot();
        let mut later = s.clone();
        later.timestamp += 10.0;
        let t = tags(&[("site", "b")]);
        for f in [SinkFormat::Influx, SinkFormat::Prometheus, SinkFormat::Json] {
            let a = record(f, &s, &t).unwrap();
            let b = record(f, &later, &t).unwrap();
            for batch in [&[][..], &[&a[..]][..], &[&a[..], &b[..]][..]] {
                assert_eq!(body_checked(f, batch, false), body(f, batch), "{f:?}");
            }
        }
        let n = document_record(b"{\"check\":\"cpu\"}").unwrap();
        assert_eq!(
            body_checked(SinkFormat::Webhook, &[&n], false),
            body(SinkFormat::Webhook, &[&n])
        );
        // Unchecked means the content is trusted, not that damage goes unseen: a block that
        // does not decompress is still an error when the body needs its bytes.
        let wrong = pack(&[0x0a, 0x05], 1).unwrap();
        assert!(body(SinkFormat::Prometheus, &[&wrong]).is_err());
        assert!(body_checked(SinkFormat::Prometheus, &[&wrong], false).is_ok());
        let torn = [RECORD_MARK, 1, 40, 0];
        assert!(body_checked(SinkFormat::Influx, &[&torn], false).is_err());
    }

    #[test]
    fn empty_batches_are_valid_bodies_without_points() {
        let b = body(SinkFormat::Influx, &[]).unwrap();
        assert!(gunzip(&b.bytes).is_empty());
        let b = body(SinkFormat::Prometheus, &[]).unwrap();
        assert_eq!(snap::raw::Decoder::new().decompress_vec(&b.bytes).unwrap(), b"");
        assert_eq!(body(SinkFormat::Json, &[]).unwrap().bytes, b"");
    }

    #[test]
    fn bad_records_are_errors_naming_the_record() {
        let good = record(SinkFormat::Prometheus, &sample_snapshot(), &[]).unwrap();
        // A compressed record claiming 4 GiB: refused before anything is allocated.
        let huge = [RECORD_MARK, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0];
        for (format, bad) in [
            (SinkFormat::Prometheus, &[0x0a, 0x05][..]),
            (SinkFormat::Prometheus, &[RECORD_MARK][..]),
            (SinkFormat::Prometheus, &[RECORD_MARK, 3][..]),
            (SinkFormat::Prometheus, &huge[..]),
            (SinkFormat::Influx, &[b'a', 0xc3, 0x28][..]),
            (SinkFormat::Json, b"{\"a\":"),
        ] {
            let err = body(format, &[&good[..0], bad]).unwrap_err();
            assert!(
                matches!(&err, Error::BadRecord(m) if m.starts_with("record 1 of the batch: ")),
                "{err}"
            );
            assert!(err.to_string().starts_with("cannot decode spooled record: record 1"), "{err}");
        }
        assert!(payload(&huge).is_err());
        assert!(points(SinkFormat::Prometheus, &huge).is_err());
        // A compressed record whose header is fine but whose bytes are not a request: points
        // trusts the header, body checks the bytes.
        let wrong = pack(&[0x0a, 0x05], 1).unwrap();
        assert_eq!(points(SinkFormat::Prometheus, &wrong), Ok(1));
        assert!(matches!(body(SinkFormat::Prometheus, &[&wrong]), Err(Error::BadRecord(_))));
    }

    #[test]
    fn describe_shows_records_as_text() {
        let s = sample_snapshot();
        let t = tags(&[("site", "b")]);
        let influx_text =
            describe(SinkFormat::Influx, &record(SinkFormat::Influx, &s, &t).unwrap());
        assert_eq!(influx_text, Ok(text(SinkFormat::Influx, &[("site", "b")])));
        let json_text = describe(SinkFormat::Json, &record(SinkFormat::Json, &s, &t).unwrap());
        assert_eq!(json_text, Ok(format!("{}\n", text(SinkFormat::Json, &[("site", "b")]))));
        let prom =
            describe(SinkFormat::Prometheus, &record(SinkFormat::Prometheus, &s, &t).unwrap())
                .unwrap();
        assert!(
            prom.contains(
                "\nnode_load1{instance=\"pi-4\",job=\"pocketses\",site=\"b\"} 1.17 1795320726250\n"
            ),
            "{prom}"
        );
        assert!(prom.contains(r#"mountpoint="/media/my \"usb\"""#), "{prom}");
        assert_eq!(
            prom.lines().count(),
            points(SinkFormat::Prometheus, &record(SinkFormat::Prometheus, &s, &t).unwrap())
                .unwrap()
        );
        assert!(describe(SinkFormat::Prometheus, &[RECORD_MARK]).is_err());
    }

    proptest! {
        #[test]
        fn garbage_records_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80), mark in any::<bool>()) {
            let mut r = bytes;
            if mark {
                r.insert(0, RECORD_MARK);
            }
            for f in ALL {
                let _ = points(f, &r);
                let _ = body(f, &[&r]);
            }
            let _ = payload(&r);
        }

        #[test]
        fn tags_that_pass_the_check_make_records(key in "[a-zA-Z][a-zA-Z0-9_]{0,6}", value in "\\PC{1,8}") {
            let t = vec![(key, value)];
            for f in ALL {
                if check_tags(f, &t).is_ok() {
                    let r = record(f, &sample_snapshot(), &t).unwrap();
                    prop_assert!(body(f, &[&r]).is_ok());
                }
            }
        }
    }
}
