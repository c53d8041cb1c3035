//! `pocketses-generate`: shell completions and man pages from the clap definitions of
//! `pocketses::cli::Cli`, so they never disagree with the parser. Run by the snap build
//! (`snap/snapcraft.yaml`), never shipped: clap_complete and clap_mangen would add about 220 kB
//! to the `pocketses` binary for output that only changes with it (docs/performance.md).
//!
//! ```text
//! pocketses-generate completions bash|zsh|fish   # the script on stdout
//! pocketses-generate man                         # pocketses.1 on stdout
//! pocketses-generate tree DIR                    # everything, in the usr/share layout, under DIR
//! ```
//!
//! `tests/completions.rs` includes this file to check what it writes.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser};

/// The program completions and man pages are written for.
const BIN: &str = "pocketses";

/// Where `tree` puts each shell's script, relative to its directory (`usr/share` in the snap).
/// The bash one is the `pocketses` app's `completer` in snap/snapcraft.yaml.
pub(crate) const SCRIPTS: [(clap_complete::Shell, &str); 3] = [
    (clap_complete::Shell::Bash, "bash-completion/completions/pocketses"),
    (clap_complete::Shell::Zsh, "zsh/vendor-completions/_pocketses"),
    (clap_complete::Shell::Fish, "fish/vendor_completions.d/pocketses.fish"),
];

/// Where `tree` puts the man pages, relative to its directory.
const MAN1: &str = "man/man1";

/// Generates pocketses' shell completions and man pages.
#[derive(Debug, Parser)]
#[command(name = "pocketses-generate")]
enum Generate {
    /// Print the completion script for a shell.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page `pocketses.1` (roff).
    Man,
    /// Write bash, zsh and fish completions and one man page per command under DIR.
    Tree {
        /// The `usr/share` directory to fill.
        dir: PathBuf,
    },
}

/// The completion script for `shell`.
pub(crate) fn completion_script(shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut pocketses::cli::Cli::command(), BIN, &mut out);
    out
}

/// The top-level man page, `pocketses.1`, as roff.
pub(crate) fn man_page() -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(pocketses::cli::Cli::command()).render(&mut out)?;
    Ok(out)
}

/// Writes every script and man page under `dir`; returns the files written.
pub(crate) fn tree(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (shell, rel) in SCRIPTS {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, completion_script(shell))
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    let man1 = dir.join(MAN1);
    std::fs::create_dir_all(&man1).with_context(|| format!("cannot create {}", man1.display()))?;
    clap_mangen::generate_to(pocketses::cli::Cli::command(), &man1)
        .with_context(|| format!("cannot write man pages into {}", man1.display()))?;
    Ok(written)
}

fn run(command: Generate) -> anyhow::Result<()> {
    let bytes = match command {
        Generate::Completions { shell } => completion_script(shell),
        Generate::Man => man_page().context("cannot render man page")?,
        Generate::Tree { dir } => {
            tree(&dir)?;
            return Ok(());
        }
    };
    std::io::stdout().write_all(&bytes).context("cannot write to stdout")
}

fn main() -> ExitCode {
    match run(Generate::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
