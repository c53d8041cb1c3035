//! The spoke tasks: one per spoke of `hub.spokes`, each polling on its own timer with its own
//! deadline, so that a spoke that is down, slow or unreachable never delays another. \[io\]:
//! HTTP, timers; what a poll means is `spoke::SpokeStatus::record`.
//!
//! A change of `hub.spokes`, `hub.interval`, `hub.timeout`, `hub.token`, `hub.ca` or `interval` stops every spoke
//! task and starts them again (their figures start again too); `hub.ingest` changes take effect
//! at once.

use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::document;
use super::ingest::FORWARD_WITHIN;
use super::spoke::{Outcome, Spoke, SpokeStatus, TAG};
use super::{forward_stored, Figures, Forwarded, Unstored};
use crate::config::{Config, DEFAULT_HUB_TIMEOUT};
use crate::spool::millis;

/// The largest document a spoke may answer with (a snapshot of a large host is tens of KiB).
pub const DOCUMENT_MAX: usize = 4 << 20;

/// What the spoke tasks follow: the spokes, the poll interval and the deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    spokes: Vec<String>,
    every: Duration,
    timeout: Duration,
    token: Option<String>,
    ca: Option<std::path::PathBuf>,
}

impl Plan {
    fn of(config: &Config) -> Plan {
        Plan {
            spokes: config.hub.spokes.clone(),
            every: Duration::from_secs(u64::from(config.hub.interval.unwrap_or(config.interval))),
            timeout: Duration::from_secs(u64::from(
                config.hub.timeout.unwrap_or(DEFAULT_HUB_TIMEOUT),
            )),
            token: config.hub.token.clone(),
            ca: config.hub.ca.clone(),
        }
    }
}

/// Polls the spokes of `config` into `forward` until `shutdown`, following reloads.
pub async fn run(
    figures: Figures,
    mut config: watch::Receiver<Config>,
    forward: mpsc::Sender<Forwarded>,
    files_dir: std::path::PathBuf,
    shutdown: CancellationToken,
) {
    let mut current: Option<Plan> = None;
    let mut running: Option<(CancellationToken, TaskTracker)> = None;
    loop {
        let (plan, ingest) = {
            let config = config.borrow_and_update();
            (Plan::of(&config), config.hub.ingest)
        };
        figures.set_ingest_enabled(ingest);
        if current.as_ref() != Some(&plan) {
            if let Some((stop, tasks)) = running.take() {
                stop.cancel();
                tasks.close();
                tasks.wait().await;
            }
            let spokes: Vec<Spoke> = plan.spokes.iter().map(|url| Spoke::new(url)).collect();
            figures.set_spokes(spokes.iter().map(SpokeStatus::new).collect());
            if !spokes.is_empty() {
                info!(spokes = spokes.len(), every = ?plan.every, "hub: polling spokes");
            }
            let stop = shutdown.child_token();
            let tasks = TaskTracker::new();
            for (index, spoke) in spokes.into_iter().enumerate() {
                let task = Task {
                    index,
                    spoke,
                    figures: figures.clone(),
                    forward: forward.clone(),
                    every: plan.every,
                    timeout: plan.timeout,
                    token: plan.token.clone(),
                    ca: plan.ca.clone(),
                    files_dir: files_dir.clone(),
                };
                tasks.spawn(task.run(stop.clone()));
            }
            running = Some((stop, tasks));
            current = Some(plan);
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            res = config.changed() => if res.is_err() {
                shutdown.cancelled().await;
                break;
            },
        }
    }
    if let Some((stop, tasks)) = running {
        stop.cancel();
        tasks.close();
        tasks.wait().await;
    }
}

/// One spoke's poller.
struct Task {
    index: usize,
    spoke: Spoke,
    figures: Figures,
    forward: mpsc::Sender<Forwarded>,
    every: Duration,
    timeout: Duration,
    token: Option<String>,
    ca: Option<std::path::PathBuf>,
    files_dir: std::path::PathBuf,
}

impl Task {
    async fn run(self, stop: CancellationToken) {
        let token = self.token.as_deref();
        let ca = self.ca.as_deref();
        // Made at the first poll, and again at each poll until it can be (a `hub.ca` file that
        // appears later), so a spoke whose client cannot be made is down with the reason.
        let mut client: Option<Fetcher> = None;
        // The sinks could not store this spoke's last snapshot: said once, until they can again.
        let mut unstored = false;
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            if client.is_none() {
                match Fetcher::new(&self.spoke, token, ca, self.timeout, &self.files_dir) {
                    Ok(made) => client = Some(made),
                    Err(err) => {
                        let step = self.figures.record(
                            self.index,
                            &Outcome::Failed(err),
                            millis(SystemTime::now()),
                        );
                        if let Some(line) = step.log {
                            warn!("hub: {line}");
                        }
                        continue;
                    }
                }
            }
            let Some(client) = client.as_ref() else { continue };
            let answer = tokio::select! {
                _ = stop.cancelled() => return,
                answer = tokio::time::timeout(self.timeout, client.get(DOCUMENT_MAX, self.timeout)) => answer,
            };
            let (outcome, doc) = match answer {
                Err(_) => (
                    Outcome::Failed(format!("no answer within {} s", self.timeout.as_secs())),
                    None,
                ),
                Ok(Err(why)) => (Outcome::Failed(why), None),
                Ok(Ok(bytes)) => match document::parse(&bytes) {
                    Ok(doc) => (Outcome::Snapshot(doc.snapshot.timestamp), Some(doc)),
                    Err(err) => (Outcome::Failed(err.to_string()), None),
                },
            };
            let step = self.figures.record(self.index, &outcome, millis(SystemTime::now()));
            match (&step.log, &outcome) {
                (Some(line), Outcome::Failed(_)) => warn!("hub: {line}"),
                (Some(line), Outcome::Snapshot(_)) => info!("hub: {line}"),
                (None, _) => {}
            }
            let Some(doc) = doc.filter(|_| step.forward) else { continue };
            let mut tags = doc.tags;
            tags.retain(|(k, _)| k != TAG);
            tags.push((TAG.to_string(), self.spoke.name.clone()));
            let timestamp = doc.snapshot.timestamp;
            let item =
                Forwarded { snapshot: std::sync::Arc::new(doc.snapshot), tags, receipt: None };
            // Counted as forwarded only once every sink has it on disk; a snapshot the sinks
            // could not store is forwarded again if the next poll brings it again.
            let stored = tokio::select! {
                _ = stop.cancelled() => return,
                stored = forward_stored(&self.forward, vec![item], FORWARD_WITHIN) => stored,
            };
            if self.forward.is_closed() {
                return;
            }
            match stored {
                Ok(()) => {
                    self.figures.stored(self.index, timestamp);
                    if unstored {
                        info!("hub: snapshots of spoke {} are spooled again", self.spoke.name);
                        unstored = false;
                    }
                }
                Err(why) if !unstored => {
                    let why = match why {
                        Unstored::Failed(why) => why,
                        Unstored::Late => format!(
                            "the push sinks did not spool it within {} s",
                            FORWARD_WITHIN.as_secs()
                        ),
                    };
                    warn!(
                        "hub: cannot forward the snapshot of spoke {}: {why}; polling on",
                        self.spoke.name
                    );
                    unstored = true;
                }
                Err(_) => {}
            }
        }
    }
}

/// GETs a spoke's document over the shared client (`net::http`): for `https://` spokes the CA
/// certificates of `hub.ca` when set, else the system's; `hub.token` as a bearer token when set.
struct Fetcher {
    uri: hyper::Uri,
    client: crate::net::http::Client,
    authorization: Option<hyper::header::HeaderValue>,
}

impl Fetcher {
    fn new(
        spoke: &Spoke,
        token: Option<&str>,
        ca: Option<&std::path::Path>,
        timeout: Duration,
        files_dir: &std::path::Path,
    ) -> Result<Fetcher, String> {
        let uri = crate::net::http::parse_url(&spoke.poll).map_err(|err| err.to_string())?;
        let tls = crate::net::http::Tls {
            ca,
            files_dir,
            ca_key: "hub.ca",
            https: uri.scheme_str() == Some("https"),
        };
        let client = crate::net::http::Client::new(tls)?.with_header_timeout(timeout);
        let authorization = token
            .map(|t| hyper::header::HeaderValue::from_str(&format!("Bearer {t}")))
            .transpose()
            .map_err(|_| "cannot use hub.token: not valid in a header".to_string())?;
        Ok(Fetcher { uri, client, authorization })
    }

    /// The document, when the spoke answers 200 with at most `max` bytes within `deadline`.
    async fn get(&self, max: usize, deadline: Duration) -> Result<Vec<u8>, String> {
        let mut req = crate::net::http::Request::get(self.uri.clone());
        if let Some(auth) = &self.authorization {
            req = req.authorization(auth);
        }
        let res = self.client.request(req).await.map_err(|err| err.to_string())?;
        if res.status != 200 {
            let status = res.status;
            let text = res.text(200).await;
            return Err(format!("answered {status}: {}", text.trim()));
        }
        let body = res.bytes(max, deadline).await.map_err(|err| err.to_string())?;
        Ok(body.to_vec())
    }
}
