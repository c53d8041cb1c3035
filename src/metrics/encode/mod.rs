//! Encoders own the wire formats: `&Snapshot` in, `String` out. [pure]
//!
//! `json` is pocketses' own schema, `legacy` the exact shape of the original Python pocketses,
//! `prometheus` the text format 0.0.4 with node_exporter's names, `influx` the InfluxDB line
//! protocol. `float` holds the number formatting they share. No encoder does I/O.

pub mod float;
pub mod influx;
pub mod json;
pub mod legacy;
pub mod prometheus;

use crate::metrics::Snapshot;

/// The output formats of `pocketses metrics` and the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// pocketses' JSON schema (one line).
    #[default]
    Json,
    /// Prometheus text format 0.0.4.
    Prometheus,
    /// InfluxDB line protocol.
    Influx,
    /// The original pocketses' JSON shape (one line).
    Legacy,
}

/// Encodes `snapshot` in `format`.
pub fn encode(snapshot: &Snapshot, format: Format) -> String {
    match format {
        Format::Json => json::encode(snapshot),
        Format::Prometheus => prometheus::encode(snapshot),
        Format::Influx => influx::encode(snapshot),
        Format::Legacy => legacy::encode(snapshot),
    }
}
