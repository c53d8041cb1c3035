//! Shared support for integration tests: a fake snapd and small helpers.
//!
//! Each test crate includes this with `mod support;` and uses only part of it.
// Each tests/*.rs is its own crate and uses a different subset of these helpers.
#![allow(dead_code)]

pub mod fake_snapd;
pub mod goosebit;
pub mod port;
pub mod stores;

pub use port::free_port;

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

/// The shape every `--json` document follows (docs/cli.md): one top-level object whose keys, at
/// every depth, are kebab-case.
pub fn assert_cli_json_shape(text: &str) -> serde_json::Value {
    fn keys(value: &serde_json::Value, path: &str) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, child) in map {
                    assert!(
                        !key.is_empty()
                            && key
                                .chars()
                                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                        "{path}: key {key:?} is not kebab-case"
                    );
                    keys(child, &format!("{path}.{key}"));
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|item| keys(item, path)),
            _ => {}
        }
    }
    let value: serde_json::Value = serde_json::from_str(text).expect("one JSON document");
    assert!(value.is_object(), "not an object: {text}");
    keys(&value, "");
    value
}
