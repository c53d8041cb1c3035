//! Reads the host's state on demand. [io]

use super::Snapshot;

/// Keeps what a collection needs between cycles (previous counters for rates, open files).
#[derive(Debug, Default)]
pub struct Collector {}

impl Collector {
    /// A collector with no history: the first snapshot has no rates.
    pub fn new() -> Self {
        Collector {}
    }

    /// Collects one snapshot. Never fails as a whole: a source that cannot be read is left out.
    pub fn collect(&mut self) -> Snapshot {
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        Snapshot { timestamp, hostname }
    }
}
