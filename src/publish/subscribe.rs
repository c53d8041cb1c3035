//! `pocketses subscribe`: print a daemon's stream.

use std::process::ExitCode;

/// Flags of `pocketses subscribe`.
#[derive(Debug, clap::Args)]
pub struct SubscribeArgs {}

/// Connects and prints every line.
///
/// # Errors
/// When the daemon cannot be reached.
pub fn main(_args: SubscribeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("subscribe is not built yet")
}
