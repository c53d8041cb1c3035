//! Fan-out of encoded snapshots to subscribers (TCP line stream, HTTP, SSE).

pub mod subscribe;
