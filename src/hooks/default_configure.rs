//! `default-configure`: after gadget defaults are in place, fill the keys still unset.
//!
//! Values a gadget preset are kept: only missing keys are written.

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
