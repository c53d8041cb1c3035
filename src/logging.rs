//! Logging to stderr with `tracing`; the daemon's filter follows `log.level` live.
//!
//! `RUST_LOG`, when set, wins over `log.level`: it is the operator's override for one run.
//! It takes `LEVEL` and `TARGET=LEVEL` directives separated by commas (`warn,pocketses=debug`),
//! tracing-subscriber's `Targets` syntax; span and field filters are not supported (they need
//! `EnvFilter` and its regular-expression engine, 223 kB of text; docs/performance.md).
//! A `RUST_LOG` that does not parse is ignored, as before.

use std::sync::OnceLock;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, Registry};

static FILTER: OnceLock<reload::Handle<Targets, Registry>> = OnceLock::new();

/// The filter of a directive list such as `info` or `warn,pocketses=debug`; `None` when it does
/// not parse. \[pure\]
pub fn parse_filter(directives: &str) -> Option<Targets> {
    if directives.trim().is_empty() {
        return None;
    }
    directives.parse::<Targets>().ok()
}

/// Installs the global subscriber: `RUST_LOG` if set, else `default` (a level such as `info`).
/// Call once, at startup.
pub fn init(default: &str) {
    let from_env = std::env::var_os("RUST_LOG").is_some();
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| parse_filter(&v))
        .or_else(|| parse_filter(default))
        .unwrap_or_default();
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
    let Some(filter) = parse_filter(level) else { return false };
    handle.reload(filter).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn a_level_alone_is_the_default_for_every_target() {
        let f = parse_filter("warn").unwrap();
        assert!(f.would_enable("pocketses::daemon", &Level::WARN));
        assert!(f.would_enable("hyper", &Level::ERROR));
        assert!(!f.would_enable("pocketses::daemon", &Level::INFO));
    }

    #[test]
    fn target_directives_refine_the_default() {
        let f = parse_filter("warn,pocketses=debug").unwrap();
        assert!(f.would_enable("pocketses::publish::tcp", &Level::DEBUG));
        assert!(!f.would_enable("pocketses::publish::tcp", &Level::TRACE));
        assert!(!f.would_enable("rustls::server", &Level::INFO));
        assert!(f.would_enable("rustls::server", &Level::WARN));
    }

    #[test]
    fn every_log_level_value_parses() {
        for level in ["error", "warn", "info", "debug", "trace"] {
            assert!(parse_filter(level).is_some(), "{level}");
        }
    }

    #[test]
    fn empty_or_malformed_directives_are_refused() {
        assert!(parse_filter("").is_none());
        assert!(parse_filter("  ").is_none());
        assert!(parse_filter("pocketses=loud").is_none());
    }
}
