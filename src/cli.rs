//! Command-line surface: the top-level parser and the list of subcommands.
//!
//! Each subcommand's arguments are defined next to the code that runs it
//! (`daemon::DaemonArgs`, `assertion::cmd::ModelArgs`, …); this file only lists them,
//! so that areas of the program can grow their flags without touching each other.

use clap::{Parser, Subcommand};

/// pocketses: host metrics, snapd integration, model assertions and remodel for Ubuntu Core.
#[derive(Debug, Parser)]
#[command(name = "pocketses", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// With no subcommand, pocketses runs the daemon, taking the original pocketses' flags.
    #[command(flatten)]
    pub daemon: crate::daemon::DaemonArgs,
    /// What to do; the daemon when absent.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: collect metrics and publish them to subscribers.
    Daemon(crate::daemon::DaemonArgs),
    /// Print the stream of a running daemon (a friendlier telnet).
    Subscribe(crate::publish::subscribe::SubscribeArgs),
    /// Collect metrics once and print them.
    Metrics(crate::metrics::cmd::MetricsArgs),
    /// List the collector groups and their settings, or run one: `collectors list`, `collectors run cpu --format influx`.
    Collectors(crate::metrics::collectors::CollectorsArgs),
    /// Run the health checks and exit like a Nagios plugin (0 OK, 1 WARN, 2 CRIT, 3 UNKNOWN).
    Checks(crate::checks::cmd::ChecksArgs),
    /// Show snapd, model, snap, daemon and configuration state.
    Status(crate::status::StatusArgs),
    /// Run a snap hook (called by the shims in the snap's meta/hooks).
    Hook(crate::hooks::HookArgs),
    /// Validate, show, verify, sign and compare model assertions.
    Model(crate::assertion::cmd::ModelArgs),
    /// Manage signing keys: RSA for assertions, ed25519 for update bundles.
    Key(crate::keys::KeyArgs),
    /// Check a new model, then remodel the device through snapd and follow the change.
    Remodel(crate::remodel::cmd::RemodelArgs),
    /// Compare gadget layouts by snapd's compatibility rules.
    Gadget(crate::gadget::cmd::GadgetArgs),
    /// Inspect the on-disk spools that keep metrics for push sinks.
    Spool(crate::spool::cmd::SpoolArgs),
    /// Create, sign, verify and show signed update bundles for fleet updates.
    Bundle(crate::fleet::cmd::BundleArgs),
    /// Fleet updates from a hawkBit DDI server: status, poll now, history.
    Fleet(crate::fleet::status::FleetArgs),
    /// Show what each push sink would be sent (`--dry-run`), without sending.
    Push(crate::push::cmd::PushArgs),
}
