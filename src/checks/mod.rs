//! Checks: whether the device's numbers are fine, as OK, WARN, CRIT or UNKNOWN.
//!
//! `range` parses Nagios threshold ranges.

pub mod range;

pub use range::Range;
