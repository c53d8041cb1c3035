//! `configure`: validate the whole configuration; reject with every problem, or tell the daemon.
//!
//! Exiting 1 makes snapd discard the `snap set` and keep the old values; snapd shows our stderr
//! in the change error, so each problem goes on its own line.
//! When valid, the daemon gets the validated document over the control socket: snapd commits
//! the new values only after this hook exits, so the daemon could not read them yet.

use std::process::ExitCode;

use crate::config;
use crate::control;
use crate::snapd::snapctl::Snapctl;

/// Runs the hook.
///
/// # Errors
/// When snapctl fails.
pub async fn run(ctl: &Snapctl) -> anyhow::Result<ExitCode> {
    let doc = super::read_document(ctl).await?;
    let problems = config::validate(&doc);
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("{problem}");
        }
        return Ok(ExitCode::FAILURE);
    }
    super::notify(control::Request::Reload { config: Some(doc) }).await;
    Ok(ExitCode::SUCCESS)
}
