//! `post-refresh`: migrate keys written by an older revision and record the schema version.

use std::process::ExitCode;

use anyhow::Context;

use crate::config;
use crate::snapd::snapctl::Snapctl;

/// Runs the hook.
///
/// # Errors
/// When snapctl fails.
pub async fn run(ctl: &Snapctl) -> anyhow::Result<ExitCode> {
    let doc = super::read_document(ctl).await?;
    let patch = config::migrate(&doc);
    let (unset, set): (Vec<_>, Vec<_>) = patch.into_iter().partition(|(_, v)| v.is_null());
    ctl.set(&set).await.context("cannot write migrated configuration")?;
    let unset: Vec<&str> = unset.iter().map(|(k, _)| k.as_str()).collect();
    ctl.unset(&unset).await.context("cannot remove migrated keys")?;
    // Failing here would roll the refresh back; the configure hook that follows reports problems.
    Ok(ExitCode::SUCCESS)
}
