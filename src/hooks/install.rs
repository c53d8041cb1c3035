//! `install`: on first install, write the default of every documented key that is unset.

use std::process::ExitCode;

use crate::snapd::snapctl::Snapctl;

/// Runs the hook.
///
/// # Errors
/// When snapctl fails.
pub async fn run(ctl: &Snapctl) -> anyhow::Result<ExitCode> {
    super::write_missing_defaults(ctl).await?;
    Ok(ExitCode::SUCCESS)
}
