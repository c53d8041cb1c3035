//! Checks: whether the device's numbers are fine, as OK, WARN, CRIT or UNKNOWN.
//!
//! `range` parses Nagios threshold ranges, `state` holds the states, a check's [`Result`] and the
//! history rules (hysteresis and flapping).

pub mod range;
pub mod state;

pub use range::Range;
pub use state::{Result, State};
