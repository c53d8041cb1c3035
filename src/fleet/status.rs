//! `pocketses fleet status [--json]`, `fleet poll`, `fleet history [--json]`. \[io\]
//!
//! `status` and `history` ask the running daemon over its control socket
//! (`{"command":"fleet-status"}`: the status as it holds it, with the last poll's time, which
//! it does not write at every poll), and without a daemon read the document it wrote
//! (`fleet-status.json` in the state directory, see [`super::daemon::status_path`]); `poll`
//! asks the running daemon to poll now (`{"command":"fleet-poll"}`), and without a daemon polls
//! once itself, with snapd's configuration and `--set` on top, and runs what the server offers
//! to its end.

use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::Value;

use super::daemon;
use super::state::{self, Status};

/// Flags of `pocketses fleet`.
#[derive(Debug, clap::Args)]
pub struct FleetArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: FleetCommand,
}

/// `pocketses fleet …`.
#[derive(Debug, clap::Subcommand)]
pub enum FleetCommand {
    /// Show the server, the controller id, the last poll, the action in progress and the last result.
    Status {
        /// The status document as JSON.
        #[arg(long)]
        json: bool,
        /// `--state-dir`.
        #[command(flatten)]
        state_dir: crate::paths::StateDirArg,
    },
    /// Poll the fleet server now (through the daemon when it runs, else once from here).
    Poll {
        /// A configuration key, as `pocketses daemon --set` takes it (repeatable), over snapd's;
        /// used only when no daemon runs.
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = crate::config::parse_setting)]
        set: Vec<(String, Value)>,
        /// `--state-dir`.
        #[command(flatten)]
        state_dir: crate::paths::StateDirArg,
    },
    /// List the finished actions, newest first.
    History {
        /// As JSON.
        #[arg(long)]
        json: bool,
        /// `--state-dir`.
        #[command(flatten)]
        state_dir: crate::paths::StateDirArg,
    },
}

/// The running daemon's status, else the file it wrote.
fn read() -> anyhow::Result<Status> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let socket = crate::control::socket_path();
    let req = crate::control::Request::FleetStatus;
    let asked = runtime.block_on(crate::control::call(&socket, &req, crate::control::CALL_TIMEOUT));
    let path = daemon::status_path();
    match asked {
        Ok(value) => serde_json::from_value(value)
            .map_err(|e| anyhow::anyhow!("cannot read the daemon's fleet status: {e}")),
        Err(crate::control::CallError::NotRunning(_)) => read_file(&path),
        Err(err) => {
            // Not root (the socket is root-only), or a daemon too old to answer: the file has
            // everything but the poll's times, which are those of its last write.
            eprintln!(
                "Showing {} as the daemon last wrote it: its poll times may be older ({err}).",
                path.display()
            );
            read_file(&path)
        }
    }
}

fn read_file(path: &std::path::Path) -> anyhow::Result<Status> {
    daemon::load_status(path).map_err(anyhow::Error::msg).map(|s| s.unwrap_or_default())
}

/// Runs the command.
///
/// # Errors
/// A status document that cannot be read, a poll that fails.
pub fn main(args: FleetArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        FleetCommand::Status { json, state_dir } => {
            state_dir.apply();
            let status = read()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else if status.server.is_empty() && status.current.is_none() {
                println!("The fleet client has not run (set fleet.url and fleet.enabled=true).");
            } else {
                print!("{}", state::render(&status, daemon::now()));
            }
            Ok(ExitCode::SUCCESS)
        }
        FleetCommand::History { json, state_dir } => {
            state_dir.apply();
            let status = read()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status.history)?);
            } else if status.history.is_empty() {
                println!("No fleet actions yet.");
            } else {
                for a in &status.history {
                    println!("{}", state::history_line(a));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        FleetCommand::Poll { set, state_dir } => {
            state_dir.apply();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(poll(set))
        }
    }
}

async fn poll(set: Vec<(String, Value)>) -> anyhow::Result<ExitCode> {
    let path = crate::control::socket_path();
    let req = crate::control::Request::FleetPoll;
    match crate::control::call(&path, &req, crate::control::CALL_TIMEOUT).await {
        Ok(_) => {
            println!("The daemon polls the fleet server now; see `pocketses fleet status`.");
            return Ok(ExitCode::SUCCESS);
        }
        Err(crate::control::CallError::NotRunning(_)) => {}
        Err(err) => return Err(err.into()),
    }
    let doc = snapd_document().await;
    let config = crate::config::load(&doc, &set).map(|l| l.config).map_err(|problems| {
        anyhow::anyhow!(
            "{}",
            problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        )
    })?;
    if config.fleet.url.is_none() {
        anyhow::bail!("cannot poll the fleet server: fleet.url is not set");
    }
    let status = daemon::poll_once(config).await;
    print!("{}", state::render(&status, daemon::now()));
    match status.last_error {
        Some(_) if status.last_success != status.last_poll => Ok(ExitCode::FAILURE),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// snapd's configuration document when snapd answers (in a snap), else nothing.
async fn snapd_document() -> Value {
    let source = crate::snapd::conf::ConfigSource::from_env();
    if !crate::control::uses_snapd(&source) {
        return Value::Null;
    }
    let Ok(via) = source.detect().await else { return Value::Null };
    source.document(via).await.unwrap_or(Value::Null)
}
