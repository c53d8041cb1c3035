//! `pocketses gadget check OLD NEW`: gadget layout compatibility.

use std::process::ExitCode;

/// Flags of this command.
#[derive(Debug, clap::Args)]
pub struct GadgetArgs {}

/// Runs the command.
///
/// # Errors
/// When the command fails; the message follows snapd's grammar.
pub fn main(_args: GadgetArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("gadget is not built yet")
}
