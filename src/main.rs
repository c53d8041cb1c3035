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

// The only two libm functions the binary reaches, both from dependencies: tokio's scheduler
// statistics (`f64::powf` after every batch of polls) and num-bigint-dig's size estimates
// (`f64::ln`, RSA keys). Defined here from the `libm` crate (a pure-Rust port of musl's), the
// static link resolves them in the binary and `libm.so.6` is not needed: the loader maps one
// library fewer, about 0.5 MB of the daemon's RSS (docs/performance.md, "A library fewer").
// A new call into another libm function brings the library back; `tests/linkage.rs` fails then.

/// `pow(3)` for the binary, from the `libm` crate.
#[no_mangle]
pub extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

/// `log(3)` for the binary, from the `libm` crate.
#[no_mangle]
pub extern "C" fn log(x: f64) -> f64 {
    libm::log(x)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pow_and_log_agree_with_their_definitions() {
        assert_eq!(super::pow(2.0, 10.0), 1024.0);
        assert_eq!(super::pow(0.5, 0.0), 1.0);
        // tokio's use: 1 - (1 - alpha)^polls, alpha = 0.1.
        let w = 1.0 - super::pow(0.9, 3.0);
        assert!((w - 0.271).abs() < 1e-12, "{w}");
        assert_eq!(super::log(1.0), 0.0);
        assert!((super::log(std::f64::consts::E) - 1.0).abs() < 1e-15);
        assert!((super::log(1e6) - 6.0 * std::f64::consts::LN_10).abs() < 1e-12);
        assert!(super::log(-1.0).is_nan());
        assert_eq!(super::log(0.0), f64::NEG_INFINITY);
    }
}
