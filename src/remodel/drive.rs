//! Driving a remodel through snapd: post the new model, follow the change, record it. \[io\]
//!
//! [`start`] sends `POST /v2/model` (JSON, or the multipart form for offline remodels).
//! [`follow`] polls `GET /v2/changes/{id}` until the change is ready, turning states into
//! [`RemodelEvent`]s through the pure [`super::view::diff`]; snapd being unreachable (it restarts,
//! the device reboots) is waited out with backoff and reported as `waiting`, never as a failure.
//! [`watch_events`] runs the same loop on a task for the daemon. The change id is recorded in
//! `remodel.json` in the state directory ([`crate::paths::state_dir`]: `$SNAP_DATA` in the snap)
//! so a restarted daemon can re-attach.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::view::{diff, RemodelEvent};
use crate::snapd::{self, multipart::SnapFile, Change, Client};

/// File name of the record of the last remodel.
pub const RECORD_FILE: &str = "remodel.json";
/// How often the change is polled unless told otherwise.
pub const DEFAULT_POLL: Duration = Duration::from_millis(500);

/// What `POST /v2/model` is sent.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The new model assertion, as signed.
    pub model: String,
    /// Offline remodel.
    pub offline: bool,
    /// Assertion streams to send along (multipart only).
    pub assertions: Vec<String>,
    /// Snap files to send along (multipart only).
    pub snaps: Vec<SnapFile>,
}

impl Request {
    /// Whether the multipart form is needed: local files imply it (and offline).
    pub fn is_multipart(&self) -> bool {
        !self.snaps.is_empty() || !self.assertions.is_empty()
    }
}

/// Posts the new model; returns the change id.
///
/// # Errors
/// snapd's refusal (400 `cannot remodel device: …`, with its kind) or a transport error.
pub async fn start(client: &Client, request: &Request) -> Result<String, snapd::Error> {
    if request.is_multipart() {
        client.post_model_multipart(&request.model, &request.assertions, &request.snaps).await
    } else {
        client.post_model(&request.model, request.offline).await
    }
}

/// The record of the last remodel, kept in `remodel.json` for the daemon and `pocketses status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Record {
    /// snapd's change id.
    pub change: String,
    /// snapd's summary of the change.
    #[serde(default)]
    pub summary: String,
    /// The target, `brand/model` and revision (`canonical/ubuntu-core-22-amd64 rev 1`).
    #[serde(default)]
    pub target: String,
    /// Last status seen.
    #[serde(default)]
    pub status: String,
    /// Whether the change was ready when last seen.
    #[serde(default)]
    pub ready: bool,
    /// snapd's error, when the change failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub err: Option<String>,
}

impl Record {
    /// Takes the status, readiness and error of the change the record is about.
    pub fn observe(&mut self, change: &Change) {
        self.status = change.status.as_str().to_string();
        self.ready = change.ready;
        self.err.clone_from(&change.err);
        if self.summary.is_empty() {
            self.summary.clone_from(&change.summary);
        }
    }
}

/// Path of `remodel.json`, in the state directory the daemon and every command share
/// ([`crate::paths::state_dir`]).
pub fn record_path() -> PathBuf {
    crate::paths::state_dir().join(RECORD_FILE)
}

/// Reads the record; `None` when there is none.
///
/// # Errors
/// When the file exists but cannot be read or parsed.
pub fn load_record(path: &Path) -> anyhow::Result<Option<Record>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("cannot parse {}", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes the record atomically (temp file, then rename).
///
/// # Errors
/// When the directory cannot be created or written.
pub fn save_record(path: &Path, record: &Record) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut text = serde_json::to_string_pretty(record).context("cannot encode remodel record")?;
    text.push('\n');
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Updates the record's status from a change, if the record is about that change.
///
/// # Errors
/// As [`save_record`].
pub fn update_record(path: &Path, change: &Change) -> anyhow::Result<()> {
    if let Some(mut record) = load_record(path)? {
        if record.change == change.id {
            record.observe(change);
            save_record(path, &record)?;
        }
    }
    Ok(())
}

/// Follows a change until it is ready, calling `emit` for every event; returns the ready change.
///
/// Transport errors (snapd restarting, the socket gone for a while) are retried with
/// [`snapd::backoff`] and reported once as [`RemodelEvent::Waiting`].
///
/// # Errors
/// snapd's API errors (such as 404 `cannot find change with id "N"`).
pub async fn follow(
    client: &Client,
    change_id: &str,
    poll: Duration,
    emit: &mut (dyn FnMut(&RemodelEvent, &Change) + Send),
) -> Result<Change, snapd::Error> {
    let mut previous: Option<Change> = None;
    let mut attempt = 0u32;
    let mut waiting = false;
    let mut announced: Option<String> = None;
    let path = format!("/v2/changes/{}", snapd::encode(change_id));
    loop {
        let reply = client.call(snapd::Request::get(path.clone())).await.and_then(|envelope| {
            let maintenance = envelope.maintenance.clone();
            envelope.into_sync::<Change>().map(|change| (change, maintenance))
        });
        match reply {
            Ok((change, maintenance)) => {
                if let Some(m) = maintenance {
                    if announced.as_deref() != Some(m.message.as_str()) {
                        announced = Some(m.message.clone());
                        let event = RemodelEvent::Maintenance {
                            change: change_id.to_string(),
                            kind: m.kind,
                            message: m.message,
                        };
                        emit(&event, &change);
                    }
                }
                if waiting {
                    waiting = false;
                    emit(&RemodelEvent::Resumed { change: change_id.to_string() }, &change);
                }
                attempt = 0;
                for event in diff(previous.as_ref(), &change) {
                    emit(&event, &change);
                }
                if change.ready {
                    return Ok(change);
                }
                previous = Some(change);
                tokio::time::sleep(poll).await;
            }
            Err(err) if err.is_retryable() => {
                if !waiting {
                    waiting = true;
                    let placeholder = previous.clone().unwrap_or_else(|| Change {
                        id: change_id.to_string(),
                        ..Change::default()
                    });
                    emit(
                        &RemodelEvent::Waiting {
                            change: change_id.to_string(),
                            reason: err.to_string(),
                        },
                        &placeholder,
                    );
                }
                tokio::time::sleep(snapd::backoff(attempt).max(poll)).await;
                attempt = attempt.saturating_add(1);
            }
            Err(err) => return Err(err),
        }
    }
}

/// Follows a change on a task of its own and streams its events (for the daemon).
///
/// The stream ends when the change is ready or cannot be followed; the last event is
/// [`RemodelEvent::Finished`] in the first case. Dropping the receiver stops the task at its next event.
pub fn watch_events(
    client: Arc<Client>,
    change_id: String,
    poll: Duration,
) -> tokio::sync::mpsc::Receiver<RemodelEvent> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        let sender = tx.clone();
        let mut emit = move |event: &RemodelEvent, _: &Change| {
            // A full or closed channel drops the event; the final state is re-sent below.
            let _ = sender.try_send(event.clone());
        };
        match follow(&client, &change_id, poll, &mut emit).await {
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(change = %change_id, "cannot follow remodel: {err}");
            }
        }
        drop(tx);
    });
    rx
}

/// Re-attaches to the recorded remodel, if one is recorded and not ready; for the daemon at start.
///
/// # Errors
/// When the record cannot be read.
pub fn pending_change(path: &Path) -> anyhow::Result<Option<String>> {
    Ok(load_record(path)?.filter(|r| !r.ready).map(|r| r.change))
}

/// How often the daemon looks for a remodel to follow (a record left by the CLI or before a reboot).
pub const DAEMON_CHECK: Duration = Duration::from_secs(5);

/// The daemon's remodel task on snapd's socket and the record under the state directory.
pub fn daemon_task(
    hub: crate::publish::Hub,
    shutdown: tokio_util::sync::CancellationToken,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    republish(Arc::new(Client::from_env()), record_path(), hub, DAEMON_CHECK, shutdown)
}

/// The daemon's remodel task: whenever `record` names a change that is not ready, follow it and
/// publish every event on the hub (SSE `event: remodel`), updating the record at the end.
///
/// It re-attaches after the daemon restarts (a reboot in the middle of a remodel), and picks up a
/// remodel the CLI starts while the daemon runs. Returns when `shutdown` is cancelled.
pub async fn republish(
    client: Arc<Client>,
    record: PathBuf,
    hub: crate::publish::Hub,
    check_every: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut episode = Episode::default();
    let mut announced = None;
    loop {
        let res = look(&client, &record, &hub, &shutdown, &mut announced).await;
        if shutdown.is_cancelled() {
            return;
        }
        match episode.observe(res) {
            Log::Failing(message) => tracing::warn!("{message} (said once until it recovers)"),
            Log::Recovered => tracing::info!("the remodel watcher works again"),
            Log::Quiet => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(check_every) => {}
        }
    }
}

/// One look of the daemon's watcher: follow the recorded change if there is one not ready.
async fn look(
    client: &Client,
    record: &Path,
    hub: &crate::publish::Hub,
    shutdown: &tokio_util::sync::CancellationToken,
    announced: &mut Option<String>,
) -> Result<(), String> {
    let pending =
        pending_change(record).map_err(|err| format!("cannot read the remodel record: {err:#}"))?;
    let Some(change_id) = pending else { return Ok(()) };
    if announced.as_ref() != Some(&change_id) {
        tracing::info!(change = %change_id, "following remodel");
        *announced = Some(change_id.clone());
    }
    let mut emit = |event: &RemodelEvent, _: &Change| {
        let line = event.to_json().to_string();
        hub.send(crate::publish::Event::Remodel(crate::publish::Report::new(line)));
    };
    let res = tokio::select! {
        _ = shutdown.cancelled() => return Ok(()),
        res = follow(client, &change_id, DEFAULT_POLL, &mut emit) => res,
    };
    match res {
        Ok(change) => update_record(record, &change)
            .map_err(|err| format!("cannot update the remodel record: {err:#}")),
        Err(err) => {
            // A change snapd forgot (pruned, 404) will never be ready: stop asking.
            if err.is_not_found() {
                if let Ok(Some(mut gone)) = load_record(record) {
                    gone.status = "unknown to snapd".to_string();
                    gone.ready = true;
                    let _ = save_record(record, &gone);
                }
            }
            Err(format!("cannot follow remodel change {change_id}: {err}"))
        }
    }
}

/// What the watcher should log after a look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Log {
    /// A new failure (or a different one): say it.
    Failing(String),
    /// Looks work again after failing.
    Recovered,
    /// Nothing new.
    Quiet,
}

/// The watcher's state between looks, so that a failure that lasts (descriptors exhausted,
/// an unreadable record) is logged once when it starts and once when it ends, not every
/// [`DAEMON_CHECK`]. \[pure\]
#[derive(Debug, Clone, Default)]
pub struct Episode {
    failing: Option<String>,
}

impl Episode {
    /// Takes the result of one look; says what to log.
    pub fn observe(&mut self, res: Result<(), String>) -> Log {
        match (res, &self.failing) {
            (Ok(()), None) => Log::Quiet,
            (Ok(()), Some(_)) => {
                self.failing = None;
                Log::Recovered
            }
            (Err(message), Some(before)) if *before == message => Log::Quiet,
            (Err(message), _) => {
                self.failing = Some(message.clone());
                Log::Failing(message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip_and_update() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join(RECORD_FILE);
        assert_eq!(load_record(&path).expect("none"), None);
        let record = Record {
            change: "29".into(),
            summary: "Remodel device to canonical/ubuntu-core-22-amd64 (1)".into(),
            target: "canonical/ubuntu-core-22-amd64 rev 1".into(),
            status: "Do".into(),
            ready: false,
            err: None,
        };
        save_record(&path, &record).expect("save");
        assert_eq!(load_record(&path).expect("load"), Some(record.clone()));
        assert_eq!(pending_change(&path).expect("pending"), Some("29".to_string()));
        let change: Change =
            serde_json::from_str(r#"{"id":"29","status":"Done","ready":true,"tasks":[]}"#)
                .expect("change");
        update_record(&path, &change).expect("update");
        let updated = load_record(&path).expect("load").expect("some");
        assert_eq!((updated.status.as_str(), updated.ready), ("Done", true));
        assert_eq!(pending_change(&path).expect("pending"), None);
        std::fs::write(&path, "{").expect("write");
        assert!(load_record(&path).is_err());
    }

    #[test]
    fn a_lasting_failure_is_logged_when_it_starts_and_when_it_ends() {
        let emfile =
            || Err("cannot read the remodel record: Too many open files (os error 24)".to_string());
        let mut episode = Episode::default();
        assert_eq!(episode.observe(Ok(())), Log::Quiet);
        assert_eq!(
            episode.observe(emfile()),
            Log::Failing(
                "cannot read the remodel record: Too many open files (os error 24)".into()
            )
        );
        for _ in 0..100 {
            assert_eq!(episode.observe(emfile()), Log::Quiet);
        }
        assert_eq!(episode.observe(Ok(())), Log::Recovered);
        assert_eq!(episode.observe(Ok(())), Log::Quiet);
        // A new episode is said again; so is a different failure within one.
        assert!(matches!(episode.observe(emfile()), Log::Failing(_)));
        assert_eq!(
            episode.observe(Err("cannot follow remodel change 7: boom".into())),
            Log::Failing("cannot follow remodel change 7: boom".into())
        );
        assert_eq!(episode.observe(Err("cannot follow remodel change 7: boom".into())), Log::Quiet);
    }

    #[test]
    fn multipart_when_files_are_given() {
        let mut request = Request { model: "m".into(), offline: true, ..Request::default() };
        assert!(!request.is_multipart());
        request.assertions.push("a".into());
        assert!(request.is_multipart());
    }
}
