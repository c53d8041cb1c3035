//! `pocketses metrics`: collect once and print.

use std::process::ExitCode;

/// Flags of `pocketses metrics`.
#[derive(Debug, clap::Args)]
pub struct MetricsArgs {}

/// Collects once and prints.
///
/// # Errors
/// When stdout cannot be written.
pub fn main(_args: MetricsArgs) -> anyhow::Result<ExitCode> {
    let snapshot = super::collect::Collector::new().collect();
    println!("{}", super::encode::json::encode(&snapshot));
    Ok(ExitCode::SUCCESS)
}
