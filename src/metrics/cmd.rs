//! `pocketses metrics`: collect and print one snapshot.
//!
//! It collects twice, [`WINDOW`] apart, and prints the second snapshot, so that CPU utilisation
//! and network rates cover a real quarter second instead of the time since boot.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use super::encode::{self, Format};

/// The time between the two collections of `pocketses metrics`.
pub const WINDOW: Duration = Duration::from_millis(250);

/// Flags of `pocketses metrics`.
#[derive(Debug, clap::Args)]
pub struct MetricsArgs {
    /// Output format: json (pocketses.metrics/v1), prometheus (text 0.0.4), influx (line
    /// protocol) or legacy (the original pocketses' JSON).
    ///
    /// Whatever the format, the command collects twice, 250 ms apart, and prints the second
    /// snapshot, so that CPU utilisation and network rates are measured over those 250 ms.
    #[arg(long, default_value_t = Format::Json, value_name = "FORMAT",
          value_parser = |name: &str| name.parse::<Format>())]
    pub format: Format,
}

/// Collects, waits [`WINDOW`], collects again and prints the second snapshot.
///
/// # Errors
/// When stdout cannot be written.
pub fn main(args: MetricsArgs) -> anyhow::Result<ExitCode> {
    let mut collector = super::collect::Collector::new();
    collector.collect();
    // A one-shot command measuring a window, not a readiness wait.
    std::thread::sleep(WINDOW);
    let snapshot = collector.collect();
    let mut text = encode::encode(&snapshot, args.format);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).context("cannot write metrics")?;
    stdout.flush().context("cannot write metrics")?;
    Ok(ExitCode::SUCCESS)
}
