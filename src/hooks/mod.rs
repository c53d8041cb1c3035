//! Snap hooks as subcommands: `pocketses hook NAME`, called by the shims in the snap's `meta/hooks/`.
//!
//! Hooks read, validate, write and exit: they talk to snapd through snapctl (the pending `snap set`
//! values are visible only there), tell a running daemon over its control socket, and never start
//! daemon tasks. One file per hook; [`Hook`] uses snapd's names.
//! Outside a snap (no `SNAP_COOKIE` or `SNAP_CONTEXT`) every hook fails with one line saying so.

mod check_health;
mod configure;
mod connect_plug_snapd_control;
mod default_configure;
mod disconnect_plug_snapd_control;
mod install;
mod post_refresh;
mod remove;

use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use crate::config;
use crate::control;
use crate::snapd::snapctl::Snapctl;

/// Flags of this command.
#[derive(Debug, clap::Args)]
pub struct HookArgs {
    /// The hook, by snapd's name (install, default-configure, configure, post-refresh, remove,
    /// connect-plug-snapd-control, disconnect-plug-snapd-control, check-health).
    pub name: String,
    /// Arguments the shim passes on (snapd passes none).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub rest: Vec<String>,
}

/// The hooks pocketses ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// `install`: first install, before the daemon starts.
    Install,
    /// `default-configure`: first install, after gadget defaults, before the daemon starts.
    DefaultConfigure,
    /// `configure`: every `snap set`, and after install and refresh.
    Configure,
    /// `post-refresh`: after a refresh, before the daemon restarts.
    PostRefresh,
    /// `remove`: the snap is being removed.
    Remove,
    /// `connect-plug-snapd-control`.
    ConnectPlugSnapdControl,
    /// `disconnect-plug-snapd-control`.
    DisconnectPlugSnapdControl,
    /// `check-health`: after install and refresh; sets the snap's health.
    CheckHealth,
}

impl Hook {
    /// Every hook, in the order snapd may run them.
    pub const ALL: [Hook; 8] = [
        Hook::Install,
        Hook::DefaultConfigure,
        Hook::Configure,
        Hook::PostRefresh,
        Hook::CheckHealth,
        Hook::ConnectPlugSnapdControl,
        Hook::DisconnectPlugSnapdControl,
        Hook::Remove,
    ];

    /// snapd's name.
    pub fn name(self) -> &'static str {
        match self {
            Hook::Install => "install",
            Hook::DefaultConfigure => "default-configure",
            Hook::Configure => "configure",
            Hook::PostRefresh => "post-refresh",
            Hook::Remove => "remove",
            Hook::ConnectPlugSnapdControl => "connect-plug-snapd-control",
            Hook::DisconnectPlugSnapdControl => "disconnect-plug-snapd-control",
            Hook::CheckHealth => "check-health",
        }
    }

    /// The hook called `name`.
    ///
    /// # Errors
    /// A message listing the known hooks.
    pub fn from_name(name: &str) -> Result<Hook, String> {
        Hook::ALL.into_iter().find(|h| h.name() == name).ok_or_else(|| {
            let names: Vec<&str> = Hook::ALL.iter().map(|h| h.name()).collect();
            format!("unknown hook {name:?} (known: {})", names.join(", "))
        })
    }
}

/// Runs the command.
///
/// # Errors
/// When the hook fails; the message follows snapd's grammar and is one line.
pub fn main(args: HookArgs) -> anyhow::Result<ExitCode> {
    let hook = Hook::from_name(&args.name).map_err(anyhow::Error::msg)?;
    let Some(ctl) = Snapctl::from_env() else {
        anyhow::bail!(
            "cannot run hook {:?}: not running inside a snap (SNAP_COOKIE and SNAP_CONTEXT are unset)",
            hook.name()
        );
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(hook, &ctl)).with_context(|| format!("cannot run hook {:?}", hook.name()))
}

/// Runs one hook with this snapctl context.
///
/// # Errors
/// When snapctl fails or the hook's own work fails.
pub async fn run(hook: Hook, ctl: &Snapctl) -> anyhow::Result<ExitCode> {
    match hook {
        Hook::Install => install::run(ctl).await,
        Hook::DefaultConfigure => default_configure::run(ctl).await,
        Hook::Configure => configure::run(ctl).await,
        Hook::PostRefresh => post_refresh::run(ctl).await,
        Hook::Remove => remove::run().await,
        Hook::ConnectPlugSnapdControl => connect_plug_snapd_control::run().await,
        Hook::DisconnectPlugSnapdControl => disconnect_plug_snapd_control::run().await,
        Hook::CheckHealth => check_health::run(ctl).await,
    }
}

/// The configuration document as snapctl sees it (pending values included inside configure).
async fn read_document(ctl: &Snapctl) -> anyhow::Result<Value> {
    let doc = ctl.get(&config::top_level_keys()).await.context("cannot read configuration")?;
    Ok(Value::Object(doc))
}

/// Writes the defaults of documented keys that are unset, keeping values already there (gadget defaults).
async fn write_missing_defaults(ctl: &Snapctl) -> anyhow::Result<()> {
    let doc = read_document(ctl).await?;
    let mut missing = config::missing_defaults(&doc);
    if !config::flatten(&doc).contains_key(config::SCHEMA_VERSION_KEY) {
        missing.push((config::SCHEMA_VERSION_KEY.to_string(), Value::from(config::SCHEMA_VERSION)));
    }
    ctl.set(&missing).await.context("cannot write default configuration")
}

/// Tells a running daemon; a daemon that is not running is fine (it reads snapd when it starts).
async fn notify(req: control::Request) {
    let path = control::socket_path();
    match control::call(&path, &req, control::CALL_TIMEOUT).await {
        Ok(_) | Err(control::CallError::NotRunning(_)) => {}
        // The hook's own work is done and valid: report, but do not fail snapd's change for it.
        Err(err) => eprintln!("pocketses: cannot notify the daemon: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for hook in Hook::ALL {
            assert_eq!(Hook::from_name(hook.name()), Ok(hook));
        }
        let err = Hook::from_name("pre-refresh").unwrap_err();
        assert!(err.starts_with("unknown hook \"pre-refresh\" (known: install, "), "{err}");
    }
}
