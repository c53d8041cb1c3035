//! Pushing snapshots off the device: each configured sink (`push.NAME.*`) gets its own on-disk
//! spool ([`crate::spool`]) and sender.
//!
//! - [`encode`] \[pure\]: what one snapshot becomes in a sink's spool (a *record*) and what a
//!   batch of records becomes on the wire (a request [`encode::Body`]).
pub mod encode;
