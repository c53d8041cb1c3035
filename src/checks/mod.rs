//! Checks: whether the device's numbers are fine, as OK, WARN, CRIT or UNKNOWN.
//!
//! `range` parses Nagios threshold ranges, `state` holds the states, a check's [`Result`] and the
//! history rules (hysteresis and flapping), `builtin` computes the built-in checks from a
//! `metrics::Snapshot`, and `cmd` is `pocketses checks`. All but `cmd` are \[pure\].
//! The daemon does not run checks yet: snap health, `/v1/checks` and notifications come later.

pub mod builtin;
pub mod cmd;
pub mod range;
pub mod state;

pub use range::Range;
pub use state::{Result, State};
