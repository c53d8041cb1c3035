//! Entry point: parse arguments, set up logging, dispatch, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use pocketses::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.command.as_ref());
    let res = match cli.command {
        None => pocketses::daemon::main(cli.daemon),
        Some(Command::Daemon(args)) => pocketses::daemon::main(args),
        Some(Command::Subscribe(args)) => pocketses::publish::subscribe::main(args),
        Some(Command::Metrics(args)) => pocketses::metrics::cmd::main(args),
        Some(Command::Collectors(args)) => pocketses::metrics::collectors::main(args),
        Some(Command::Checks(args)) => pocketses::checks::cmd::main(args),
        Some(Command::Status(args)) => pocketses::status::main(args),
        Some(Command::Hook(args)) => pocketses::hooks::main(args),
        Some(Command::Model(args)) => pocketses::assertion::cmd::main(args),
        Some(Command::Key(args)) => pocketses::keys::main(args),
        Some(Command::Remodel(args)) => pocketses::remodel::cmd::main(args),
        Some(Command::Gadget(args)) => pocketses::gadget::cmd::main(args),
        Some(Command::Spool(args)) => pocketses::spool::cmd::main(args),
        Some(Command::Bundle(args)) => pocketses::fleet::cmd::main(args),
        Some(Command::Push(args)) => pocketses::push::cmd::main(args),
        Some(Command::Fleet(args)) => pocketses::fleet::status::main(args),
    };
    match res {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The daemon logs at info by default (then at `log.level`); one-shot commands stay quiet unless
/// `RUST_LOG` asks.
fn init_tracing(command: Option<&Command>) {
    let default = match command {
        None | Some(Command::Daemon(_)) => "info",
        _ => "warn",
    };
    pocketses::logging::init(default);
}
