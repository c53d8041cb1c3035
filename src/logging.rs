//! Logging to stderr with `tracing`; the daemon's filter follows `log.level` live.
//!
//! `RUST_LOG`, when set, wins over `log.level`: it is the operator's override for one run.

use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Installs the global subscriber: `RUST_LOG` if set, else `default` (a level such as `info`).
/// Call once, at startup.
pub fn init(default: &str) {
    let from_env = std::env::var_os("RUST_LOG").is_some();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let (layer, handle) = reload::Layer::new(filter);
    // Colours only for a person at a terminal, never into journald or a file.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer().with_ansi(ansi).with_writer(std::io::stderr);
    if tracing_subscriber::registry().with(layer).with(fmt).try_init().is_ok() && !from_env {
        // Only a filter that did not come from RUST_LOG may be replaced by `log.level`.
        let _ = FILTER.set(handle);
    }
}

/// Applies `log.level` (one of error, warn, info, debug, trace) to the running process.
/// Returns false when nothing changed: `RUST_LOG` is set, logging is not ours (tests), or the
/// level does not parse (the configuration has validated it before).
pub fn set_level(level: &str) -> bool {
    let Some(handle) = FILTER.get() else { return false };
    let Ok(filter) = EnvFilter::try_new(level) else { return false };
    handle.reload(filter).is_ok()
}
