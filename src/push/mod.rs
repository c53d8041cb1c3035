//! Pushing snapshots off the device: each configured sink (`push.NAME.*`) gets its own on-disk
//! spool ([`crate::spool`]) and sender.
//!
//! - [`encode`] \[pure\]: what one snapshot becomes in a sink's spool (a *record*) and what a
//!   batch of records becomes on the wire (a request [`encode::Body`]).
//! - [`policy`] \[pure\]: status code → what to do, backoff, `Retry-After`, batch splitting.
//! - [`client`] \[io\]: the HTTP(S) client: TLS roots, credentials, timeout, no redirects.
//! - [`sink`] \[io\]: one sink's appender and sender tasks, and [`sink::Pushes`], which starts,
//!   changes and stops sinks as the configuration changes.
//! - [`cmd`] \[io\]: `pocketses push --dry-run` and `pocketses spool verify`.
pub mod client;
pub mod cmd;
pub mod encode;
pub mod policy;
pub mod sink;
