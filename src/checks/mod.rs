//! Checks: whether the device's numbers are fine, as OK, WARN, CRIT or UNKNOWN.
//!
//! `range` parses Nagios threshold ranges, `state` holds the states, a check's [`Result`] and the
//! history rules (hysteresis and flapping), `builtin` computes the built-in checks from a
//! `metrics::Snapshot` and the daemon's facts, `runner` keeps a tracker per result, `sentence` writes a result's sentence when it is read, `report`
//! encodes the documents (`checks run --json`, `/v1/checks`, SSE `check`, `pocketses_check_state`),
//! `health` maps results to the snap's health under snapd's rules, `daemon` runs all this in the
//! daemon and reports the health, and `cmd` is `pocketses checks`.
//! All but `daemon` and `cmd` are \[pure\].
//! Notifications of state changes (`runner::Transition`) are sent by `crate::notify`.

pub mod builtin;
pub mod cmd;
pub mod daemon;
pub mod health;
pub mod range;
pub mod report;
pub mod runner;
pub mod sentence;
pub mod state;

pub use range::Range;
pub use state::{Result, State};
