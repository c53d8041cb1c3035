//! Records and request bodies of the push formats. \[pure\]
//!
//! A sink spools one *record* per snapshot, already in the sink's own format, so that a replay
//! after a restart needs nothing but the spool; a batch of records, oldest first, becomes one
//! request [`Body`].
//!
//! - `influx`: a record is the snapshot's line protocol ([`crate::metrics::encode::influx`]);
//!   a body is the records one after the other.
//! - `json`: a record is the snapshot's `pocketses.metrics/v1` document on one line; a body is
//!   those lines, newline-delimited (`application/x-ndjson`), so a body of one record is also
//!   one plain JSON document.
//! - `prometheus`: remote-write 1.0 (not written yet).

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
}

impl SinkFormat {
    /// The value of `push.NAME.format` that names this format.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkFormat::Influx => "influx",
            SinkFormat::Prometheus => "prometheus",
            SinkFormat::Json => "json",
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

/// Why records could not become a body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The format has no encoder yet.
    #[error("cannot encode for {0}: format not supported yet")]
    Unsupported(&'static str),
    /// A spooled record is not valid for the format.
    #[error("cannot decode spooled record: {0}")]
    BadRecord(String),
}

/// The spool record of one snapshot for a sink of `format`, with the sink's extra tags
/// (`push.NAME.tags`) applied.
pub fn record(
    format: SinkFormat,
    snapshot: &Snapshot,
    tags: &[(String, String)],
) -> Result<Vec<u8>, Error> {
    match format {
        SinkFormat::Influx => {
            let mut out = String::with_capacity(4096);
            for mut line in influx::lines(snapshot) {
                line.tags.extend(tags.iter().cloned());
                influx::write_line(&mut out, &line);
            }
            Ok(out.into_bytes())
        }
        SinkFormat::Json => Ok(json::encode(snapshot).into_bytes()),
        SinkFormat::Prometheus => Err(Error::Unsupported("prometheus")),
    }
}

/// One request body from `records`, oldest first.
pub fn body(format: SinkFormat, records: &[&[u8]]) -> Result<Body, Error> {
    match format {
        SinkFormat::Influx => Ok(Body {
            bytes: records.concat(),
            content_type: "text/plain; charset=utf-8",
            content_encoding: None,
            headers: Vec::new(),
        }),
        SinkFormat::Json => {
            let mut bytes = Vec::new();
            for r in records {
                bytes.extend_from_slice(r.strip_suffix(b"\n").unwrap_or(r));
                bytes.push(b'\n');
            }
            Ok(Body {
                bytes,
                content_type: "application/x-ndjson",
                content_encoding: None,
                headers: Vec::new(),
            })
        }
        SinkFormat::Prometheus => Err(Error::Unsupported("prometheus")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip_through_their_names() {
        for f in [SinkFormat::Influx, SinkFormat::Prometheus, SinkFormat::Json] {
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
}
