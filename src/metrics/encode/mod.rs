//! Encoders own the wire formats: `&Snapshot` in, bytes out. [pure]

pub mod influx;
pub mod json;
pub mod legacy;
pub mod prometheus;
