//! Item 1, the pocketses side: `Collector::collect()` and the encoders, in process.

use std::hint::black_box;

use pocketses::metrics::collect::Collector;
use pocketses::metrics::encode::{json, legacy, prometheus};

use crate::floor::{measure, Cost, Plan};

/// What the in-process measurement found.
#[derive(Debug, Default, Clone)]
pub struct CollectReport {
    /// One `Collector::collect()`.
    pub collect: Cost,
    /// One `collect()` followed by the JSON encoding the daemon sends each cycle.
    pub collect_json: Cost,
    /// The JSON encoding alone.
    pub json: Cost,
    /// The Prometheus encoding alone.
    pub prometheus: Cost,
    /// The legacy (Python `json.dumps` style) encoding alone.
    pub legacy: Cost,
    /// Size of one legacy encoding, bytes.
    pub legacy_bytes: usize,
    /// Size of one JSON encoding, bytes.
    pub json_bytes: usize,
    /// Size of one Prometheus encoding, bytes.
    pub prometheus_bytes: usize,
}

/// Measures a collector that lives across iterations, as in the daemon (it keeps counters for rates).
pub fn run(plan: Plan) -> CollectReport {
    let mut collector = Collector::new();
    let collect = measure(plan, || {
        black_box(collector.collect());
    });
    let collect_json = measure(plan, || {
        let snapshot = collector.collect();
        black_box(json::encode(&snapshot));
    });
    let snapshot = collector.collect();
    let json_text = json::encode(&snapshot);
    let prometheus_text = prometheus::encode(&snapshot);
    CollectReport {
        collect,
        collect_json,
        json: measure(plan, || {
            black_box(json::encode(black_box(&snapshot)));
        }),
        prometheus: measure(plan, || {
            black_box(prometheus::encode(black_box(&snapshot)));
        }),
        legacy: measure(plan, || {
            black_box(legacy::encode(black_box(&snapshot)));
        }),
        legacy_bytes: legacy::encode(&snapshot).len(),
        json_bytes: json_text.len(),
        prometheus_bytes: prometheus_text.len(),
    }
}
