//! `connect-plug-snapd-control`: the daemon may now read configuration over REST.

use std::process::ExitCode;

use crate::control;

/// Runs the hook.
///
/// # Errors
/// Never; a daemon that is not running picks its source when it starts.
pub async fn run() -> anyhow::Result<ExitCode> {
    super::notify(control::Request::Source { snapd_control: Some(true) }).await;
    Ok(ExitCode::SUCCESS)
}
