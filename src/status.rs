//! `pocketses status`: snapd, model, snap, daemon and configuration state.

use std::process::ExitCode;

/// Flags of this command.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {}

/// Runs the command.
///
/// # Errors
/// When the command fails; the message follows snapd's grammar.
pub fn main(_args: StatusArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("status is not built yet")
}
