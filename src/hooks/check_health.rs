//! `check-health`: snapd runs it after install and refresh (and may run it again); it sets the
//! snap's health with `snapctl set-health` in the hook's own context, which snapd requires (a hook
//! that does not call set-health leaves the health `unknown`).
//!
//! The health is the running daemon's (its checks have a history: hysteresis and flapping), asked
//! over the control socket, so the hook and the daemon never disagree. With no daemon, the hook
//! runs the checks once itself, on the configuration snapctl sees, and maps them the same way.
//! A health snapd refuses is printed and the hook still exits 0: failing it would roll back the
//! install or refresh for a report.

use std::process::ExitCode;

use anyhow::Context;

use crate::checks::daemon::health_from_reply;
use crate::checks::health::{self, Health, Situation};
use crate::control;
use crate::snapd::snapctl::Snapctl;

/// Runs the hook.
///
/// # Errors
/// When no health can be worked out (the configuration cannot be read without a daemon).
pub async fn run(ctl: &Snapctl) -> anyhow::Result<ExitCode> {
    let health = match control::call(
        &control::socket_path(),
        &control::Request::Checks,
        control::CALL_TIMEOUT,
    )
    .await
    {
        Ok(reply) => match health_from_reply(&reply) {
            Ok(health) => health,
            Err(err) => {
                eprintln!("pocketses: {err}; running the checks here");
                run_here(ctl).await?
            }
        },
        Err(control::CallError::NotRunning(_)) => run_here(ctl).await?,
        Err(err) => {
            eprintln!("pocketses: cannot ask the daemon: {err}; running the checks here");
            run_here(ctl).await?
        }
    };
    let message = (!health.message.is_empty()).then_some(health.message.as_str());
    let code = (!health.code.is_empty()).then_some(health.code.as_str());
    if let Err(err) = ctl.set_health(health.status.as_str(), message, code).await {
        eprintln!("pocketses: cannot set the snap's health ({health}): {err}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The checks run once here: two collections a moment apart, as `pocketses checks run` does.
async fn run_here(ctl: &Snapctl) -> anyhow::Result<Health> {
    let doc = super::read_document(ctl).await?;
    let config = crate::config::load(&doc, &[])
        .map(|loaded| loaded.config)
        .unwrap_or_else(|_| crate::config::Config::default());
    let snapshot = tokio::task::spawn_blocking(|| {
        let mut collector = crate::metrics::collect::Collector::new();
        collector.collect();
        std::thread::sleep(crate::metrics::cmd::WINDOW);
        collector.collect()
    })
    .await
    .context("internal error: collection failed")?;
    let results = crate::checks::builtin::evaluate(&snapshot, &config);
    Ok(health::map(&results, &Situation::default()))
}
