//! Talking to servers off the device over HTTP(S): the one client the push sinks, the fleet
//! client and the hub share.
//!
//! - [`http`] \[io\]: hyper-util's pooled client over hyper-rustls (TLS roots from a file or the
//!   system's store, deadlines, no redirects followed), requests with JSON or binary bodies,
//!   answers read whole up to a cap or streamed chunk by chunk; and the pure helpers around it
//!   ([`http::redact`], [`http::describe`], [`http::redirect`]).
pub mod http;
