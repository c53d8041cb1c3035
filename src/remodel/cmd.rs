//! `pocketses remodel`: pre-flight, drive and follow a remodel.

use std::process::ExitCode;

/// Flags of this command.
#[derive(Debug, clap::Args)]
pub struct RemodelArgs {}

/// Runs the command.
///
/// # Errors
/// When the command fails; the message follows snapd's grammar.
pub fn main(_args: RemodelArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("remodel is not built yet")
}
