//! `pocketses key …`: RSA signing keys for assertions.

use std::process::ExitCode;

/// Flags of this command.
#[derive(Debug, clap::Args)]
pub struct KeyArgs {}

/// Runs the command.
///
/// # Errors
/// When the command fails; the message follows snapd's grammar.
pub fn main(_args: KeyArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("key is not built yet")
}
