//! The notifier task. \[io\]: it owns the webhook's sink (a [`Pushes`] of its own, on the
//! daemon's spool directory and the push sinks' [`Registry`]), follows `notify.*`, and turns each
//! run's [`Changes`] into documents spooled in order.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::{document, sinks, Changes, Identity, SINK};
use crate::config::Config;
use crate::publish::dashboard::Device;
use crate::push::encode;
use crate::push::sink::{Pushes, Registry};

/// The sender's identity from the host name and snapd's facts. \[pure\]
pub fn identity(hostname: &str, device: &Device) -> Identity {
    Identity {
        hostname: hostname.to_string(),
        brand: device.brand.clone(),
        model: device.model.clone(),
        serial: device.serial.clone(),
    }
}

/// Runs the webhook until `shutdown`: `changes` come from the collector; `device` gives snapd's
/// facts (the dashboard's, read once a minute, never per notification).
pub async fn run(
    registry: Registry,
    device: impl Fn() -> Arc<Device> + Send,
    mut config: watch::Receiver<Config>,
    mut changes: mpsc::Receiver<Changes>,
    shutdown: CancellationToken,
) {
    let mut pushes =
        Pushes::new(crate::paths::spool_dir(), crate::publish::listen::files_dir(), registry);
    let initial = sinks(&config.borrow_and_update().notify);
    pushes.apply(&initial).await;
    let mut watching = true;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            got = changes.recv() => match got {
                Some(changes) => {
                    let who = identity(&changes.hostname, &device());
                    for transition in &changes.transitions {
                        let doc = document(transition, changes.time, &who);
                        match encode::document_record(&doc) {
                            Ok(record) => {
                                if !pushes.offer_record(SINK, record) {
                                    debug!(check = %transition.reported.result.check, "no webhook: notification not sent");
                                }
                            }
                            Err(err) => debug!(error = %err, "internal error: notification"),
                        }
                    }
                }
                None => break,
            },
            res = config.changed(), if watching => {
                if res.is_err() {
                    watching = false;
                    continue;
                }
                let wanted = sinks(&config.borrow_and_update().notify);
                pushes.apply(&wanted).await;
            }
        }
    }
    pushes.stop_all().await;
}
