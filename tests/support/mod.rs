//! Shared support for integration tests: a fake snapd and small helpers.
//!
//! Each test crate includes this with `mod support;` and uses only part of it.
// Each tests/*.rs is its own crate and uses a different subset of these helpers.
#![allow(dead_code)]

pub mod fake_snapd;

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The pocketses binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pocketses"))
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
