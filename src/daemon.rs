//! The daemon: wiring of collector, publishers, configuration reload and shutdown.

use std::process::ExitCode;

/// Flags of the daemon; the same set is accepted with no subcommand (the original's `--port`, `--interval`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DaemonArgs {
    /// TCP port of the JSON line stream.
    #[arg(long)]
    pub port: Option<u16>,
    /// Seconds between collections.
    #[arg(long)]
    pub interval: Option<u32>,
}

/// Runs the daemon until SIGTERM or SIGINT.
///
/// # Errors
/// When the runtime or a listener cannot start.
pub fn main(_args: DaemonArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the daemon is not built yet")
}
