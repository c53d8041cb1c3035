//! Snap hooks as subcommands: `pocketses hook NAME`.

use std::process::ExitCode;

/// Flags of this command.
#[derive(Debug, clap::Args)]
pub struct HookArgs {}

/// Runs the command.
///
/// # Errors
/// When the command fails; the message follows snapd's grammar.
pub fn main(_args: HookArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("hook is not built yet")
}
