//! `pocketses model …`: validate, show, verify, sign, diff.

use std::process::ExitCode;

/// Flags of this command.
#[derive(Debug, clap::Args)]
pub struct ModelArgs {}

/// Runs the command.
///
/// # Errors
/// When the command fails; the message follows snapd's grammar.
pub fn main(_args: ModelArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("model is not built yet")
}
