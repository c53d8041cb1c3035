//! `pocketses completions SHELL` and `pocketses man`: shell completions and man pages generated
//! from the clap definitions of [`crate::cli::Cli`], so they never disagree with the parser. \[io\]
//!
//! The snap build runs both and ships what they print (`snap/snapcraft.yaml`: the bash script is
//! the `pocketses` app's `completer`; zsh and fish scripts and the man pages are under
//! `$SNAP/usr/share`). What this module does not do: install anything on the host.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::CommandFactory as _;

/// The name completions and man pages are written for.
const BIN: &str = "pocketses";

/// Arguments of `pocketses completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `pocketses man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write `pocketses.1` and one page per subcommand (`pocketses-status.1`, …) into this
    /// directory instead of printing `pocketses.1`.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The completion script for `shell`.
pub fn completion_script(shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut crate::cli::Cli::command(), BIN, &mut out);
    out
}

/// The top-level man page, `pocketses.1`, as roff.
///
/// # Errors
/// Only when rendering fails, which writing into memory does not.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(crate::cli::Cli::command()).render(&mut out)?;
    Ok(out)
}

/// Runs `pocketses completions SHELL`.
///
/// # Errors
/// When stdout cannot be written.
pub fn completions(args: &CompletionsArgs) -> anyhow::Result<ExitCode> {
    std::io::stdout()
        .write_all(&completion_script(args.shell))
        .context("cannot write completions")?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `pocketses man [--dir DIR]`.
///
/// # Errors
/// When a page cannot be written.
pub fn man(args: &ManArgs) -> anyhow::Result<ExitCode> {
    match &args.dir {
        Some(dir) => clap_mangen::generate_to(crate::cli::Cli::command(), dir)
            .with_context(|| format!("cannot write man pages into {}", dir.display()))?,
        None => std::io::stdout()
            .write_all(&man_page().context("cannot render man page")?)
            .context("cannot write man page")?,
    }
    Ok(ExitCode::SUCCESS)
}
