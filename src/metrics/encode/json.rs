//! The json encoding of a snapshot. [pure]

use crate::metrics::Snapshot;

/// Encodes one snapshot.
pub fn encode(snapshot: &Snapshot) -> String {
    snapshot.hostname.clone()
}
