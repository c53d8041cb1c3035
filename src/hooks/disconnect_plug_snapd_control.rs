//! `disconnect-plug-snapd-control`: the daemon must go back to snapctl.

use std::process::ExitCode;

use crate::control;

/// Runs the hook.
///
/// # Errors
/// Never; a daemon that is not running picks its source when it starts.
pub async fn run() -> anyhow::Result<ExitCode> {
    super::notify(control::Request::Source { snapd_control: Some(false) }).await;
    Ok(ExitCode::SUCCESS)
}
