//! Host metrics: the `Snapshot` value, its collection from /proc and /sys, and its encoders.
//!
//! Interface used by the publishers (keep stable): `collect::Collector::new()`,
//! `Collector::collect(&mut self) -> Snapshot`, and the pure encoders in `encode`.

pub mod cmd;
pub mod collect;
pub mod encode;

/// One collection cycle's worth of host metrics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    /// Wall-clock time of the collection, seconds since the Unix epoch.
    pub timestamp: f64,
    /// Host name.
    pub hostname: String,
}
