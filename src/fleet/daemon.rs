//! The fleet client in the daemon: the poll loop, the action task, feedback, the state file,
//! SSE `fleet` events and the figures for `/metrics`. \[io\]
//!
//! ```text
//! run (one task, follows the configuration)
//!  └ every sleep ±10 % (5 s while an action runs), or at once on `fleet poll`:
//!     poll ─ configData asked / not yet sent / model changed → PUT configData
//!          ─ cancelAction → decide by stage (state::cancel_decision) → stop the task, answer
//!          ─ deploymentBase → state::offer → start | carry on | report again | busy | skip
//!          ─ no deployment while a download runs → the operator withdrew it: cancel
//!  action task (one at a time)
//!     download (download::fetch, resumed on the next attempt) ─ "Downloaded N%" feedback
//!     → verifying → applying ([`apply_bundle`], the one wiring point to the applier)
//!     → closed success | failure; configData again
//! ```
//!
//! Every change of the [`Status`] goes through `Fleet::update`, which publishes the action's
//! SSE `fleet` event and writes `fleet-status.json` atomically when what must survive a restart
//! changed ([`Status::durable_eq`]: the action, the history, the server, the last error). The
//! poll's counters and times stay in memory: an idle poll writes nothing, and `pocketses fleet
//! status` asks the daemon for them over the control socket (`{"command":"fleet-status"}`);
//! the whole status is written once more when the client stops. The final feedback is sent
//! until the server took it (`Action::reported`), also after a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::client::Ddi;
use super::ddi::{self, Facts};
use super::download::{self, Failure, Target};
use super::state::{self, Action, CancelDecision, Offer, Stage, Status};
use super::{apply, journal};
use crate::config::{Config, FleetConfig, TrustedKeys};
use crate::metrics::encode::prometheus::Family;
use crate::publish::{Event, Hub, Report};

/// File name of the status document in the state directory.
pub const STATUS_FILE: &str = "fleet-status.json";
/// Retries of an interrupted download within one action before waiting for the next poll.
pub const DOWNLOAD_ATTEMPTS: u32 = 3;

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Where the status document is: `fleet-status.json` in the state directory.
pub fn status_path() -> PathBuf {
    crate::paths::state_dir().join(STATUS_FILE)
}

/// Where artifacts are downloaded: `$SNAP_COMMON/fleet` in the snap, `fleet/` in the state
/// directory off it (`--state-dir`), next to the spools.
pub fn downloads_dir() -> PathBuf {
    crate::paths::spool_dir().with_file_name("fleet")
}

/// Reads the status document (`None` when there is none yet).
///
/// # Errors
/// When it exists but cannot be read or parsed.
pub fn load_status(path: &Path) -> Result<Option<Status>, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("cannot read {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {}", path.display(), crate::error::describe_io(&e))),
    }
}

/// Writes `status` to `path` atomically (temporary file, fsync, rename).
///
/// # Errors
/// When the file cannot be written.
pub fn save_status(path: &Path, status: &Status) -> Result<(), String> {
    use std::io::Write as _;
    let io = |e: std::io::Error| {
        format!("cannot write {}: {}", path.display(), crate::error::describe_io(&e))
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension(format!("json.tmp-{}", std::process::id()));
    let bytes = serde_json::to_vec_pretty(status).unwrap_or_default();
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(&bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The fleet client's shared state: the status, and the "poll now" signal. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    status: Mutex<Status>,
    /// What the file holds (`None`: nothing known to be there); its lock also keeps the writes
    /// in the order of the changes they carry.
    written: Mutex<Option<Status>>,
    poke: Notify,
    hub: std::sync::OnceLock<Hub>,
    path: std::sync::OnceLock<PathBuf>,
}

impl Fleet {
    /// A fleet handle whose status is written to `path`, starting from what is there.
    pub fn new(path: PathBuf) -> Fleet {
        let fleet = Fleet::default();
        let loaded = match load_status(&path) {
            Ok(status) => status,
            Err(err) => {
                warn!("{err}; starting the fleet status afresh");
                None
            }
        };
        let status = loaded.clone().unwrap_or_default();
        *fleet.lock() = Status { polls: 0, errors: 0, bytes_downloaded: 0, ..status };
        *fleet.written() = loaded;
        let _ = fleet.inner.path.set(path);
        fleet
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Status> {
        self.inner.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn written(&self) -> std::sync::MutexGuard<'_, Option<Status>> {
        self.inner.written.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of the status.
    pub fn status(&self) -> Status {
        self.lock().clone()
    }

    /// Reads the status in place, without a copy (the checks, on every collection).
    pub fn read<R>(&self, f: impl FnOnce(&Status) -> R) -> R {
        f(&self.lock())
    }

    /// The `pocketses_fleet_*` families for `/metrics`, once the client has run (none while
    /// `fleet.enabled` was never on).
    pub fn families(&self) -> Vec<Family> {
        let status = self.lock();
        if status.server.is_empty() {
            return Vec::new();
        }
        status.families()
    }

    /// Asks the loop to poll now (`pocketses fleet poll`).
    pub fn poll_now(&self) {
        self.inner.poke.notify_one();
    }

    /// Changes the status in memory only: the counters and times of a poll, which are never
    /// durable ([`Status::durable_eq`]).
    fn note(&self, change: impl FnOnce(&mut Status)) {
        change(&mut self.lock());
    }

    /// Changes the status; writes it when what must survive a restart changed (an idle poll
    /// does not: each write is a temporary file, an fsync and a rename, flash wear and once most
    /// of a poll's CPU, docs/fleet.md "Performance"); publishes the action's event when `event`.
    fn update<R>(&self, event: bool, change: impl FnOnce(&mut Status) -> R) -> R {
        let mut written = self.written();
        let (out, snapshot, json) = {
            let mut status = self.lock();
            let out = change(&mut status);
            let path = self.inner.path.get();
            let durable = written.as_ref().is_some_and(|w| w.durable_eq(&status));
            let snapshot = (path.is_some() && !durable).then(|| status.clone());
            let json = event
                .then(|| status.current.as_ref().or(status.history.first()))
                .flatten()
                .map(|a| a.event().to_string());
            (out, snapshot, json)
        };
        if let (Some(path), Some(snapshot)) = (self.inner.path.get(), snapshot) {
            match save_status(path, &snapshot) {
                Ok(()) => *written = Some(snapshot),
                // Tried again at the next change.
                Err(err) => warn!("{err}"),
            }
        }
        drop(written);
        if let (Some(hub), Some(json)) = (self.inner.hub.get(), json) {
            hub.send(Event::Fleet(Report::named(Event::SSE_FLEET, json)));
        }
        out
    }

    /// Writes the whole status, the poll's counters and times too (when the client stops, and
    /// after `fleet poll` without a daemon), so the file says when it last polled.
    pub fn flush(&self) {
        let Some(path) = self.inner.path.get() else { return };
        let mut written = self.written();
        let snapshot = self.status();
        match save_status(path, &snapshot) {
            Ok(()) => *written = Some(snapshot),
            Err(err) => warn!("{err}"),
        }
    }

    fn error(&self, message: String) {
        warn!("fleet: {message}");
        self.update(false, |s| {
            s.errors += 1;
            s.last_error = Some(message);
        });
    }
}

/// What the device is, for configData and the default controller id.
async fn facts(hub: &Hub, sw_version: Option<String>) -> Facts {
    let source = crate::snapd::conf::ConfigSource::from_env();
    let device = crate::publish::dashboard::device::look(&source).await;
    hub.board().set_device(device.clone());
    Facts {
        brand: device.brand.clone(),
        model: device.model.clone(),
        model_revision: device.revision.clone(),
        serial: device.serial.clone(),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        sw_version,
        snaps: device.snaps.iter().map(|s| (s.name.clone(), s.revision.clone())).collect(),
    }
}

fn hostname() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

/// The controller id: `fleet.controller-id`, else the serial, else brand-model-hostname.
fn controller_id(config: &FleetConfig, facts: &Facts) -> String {
    if let Some(id) = &config.controller_id {
        return id.clone();
    }
    let or = |s: &str| if s.is_empty() { "unknown".to_string() } else { s.to_string() };
    ddi::default_controller_id(
        facts.serial.as_deref(),
        &or(&facts.brand),
        &or(&facts.model),
        &hostname(),
    )
}

/// The version of the last bundle applied with success (configData's `sw_version`).
fn sw_version(status: &Status) -> Option<String> {
    status
        .current
        .iter()
        .chain(status.history.iter())
        .find(|a| a.stage == Stage::Done && !a.version.is_empty())
        .map(|a| a.version.clone())
}

/// One running client: its configuration, server and what it last sent.
struct Session {
    config: FleetConfig,
    ddi: Ddi,
    facts: Facts,
    sent_facts: Option<Facts>,
    /// The last finished action when configData was last sent.
    last_ended: Option<String>,
    sleep: Option<Duration>,
}

/// The running action's task.
struct Running {
    id: String,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// Runs the fleet client until `shutdown`, following `fleet.*` in `config`.
pub async fn run(
    fleet: Fleet,
    hub: Hub,
    mut config: watch::Receiver<Config>,
    shutdown: CancellationToken,
) {
    let _ = fleet.inner.hub.set(hub.clone());
    let mut session: Option<Session> = None;
    let mut running: Option<Running> = None;
    let mut want = config.borrow_and_update().fleet.clone();
    loop {
        // (Re)start the session when the configuration changed.
        let enabled = want.enabled && want.url.is_some();
        if !enabled {
            if let Some(r) = running.take() {
                r.cancel.cancel();
            }
            session = None;
        } else if session.as_ref().is_none_or(|s| s.config != want) {
            session = open(&fleet, &hub, &want).await;
            // An action snapd was applying when the daemon stopped (or the device rebooted)
            // is picked up from the applier's journal, whether or not the server answers.
            if let (None, Some(s)) = (&running, &session) {
                let current = fleet.status().current;
                if let Some(a) =
                    current.filter(|a| matches!(a.stage, Stage::Applying | Stage::Rebooting))
                {
                    running = Some(spawn(Job {
                        fleet: fleet.clone(),
                        ddi: s.ddi.clone(),
                        action: a.id.clone(),
                        install: true,
                        target: Target { url: String::new(), size: a.size, hash: None },
                        dest: downloads_dir().join(format!("{}.swu", safe_name(&a.id))),
                        trusted: s.config.trusted_keys.clone(),
                    }));
                }
            }
        }
        let wait = match &mut session {
            Some(s) => {
                cycle(&fleet, &hub, s, &mut running).await;
                let active = running.as_ref().is_some_and(|r| !r.task.is_finished());
                let wait = ddi::next_poll(s.sleep, active, rand::random::<f64>());
                let next = now() + wait.as_secs();
                // After the poll's `note`s: writes only when the poll changed something durable
                // (its error came or went).
                fleet.update(false, |st| st.next_poll = Some(next));
                wait
            }
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(wait) => {}
            () = fleet.inner.poke.notified() => {}
            res = config.changed() => {
                if res.is_err() {
                    // The sender is gone: keep the configuration as it is.
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(wait) => {}
                    }
                } else {
                    want = config.borrow_and_update().fleet.clone();
                }
            }
        }
    }
    if let Some(r) = running.take() {
        // A download stops where it is (the part stays); an apply is left to the journal.
        r.cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(2), r.task).await;
    }
    // The client ran (now or earlier in this daemon's life): the file gets its poll times.
    if fleet.read(|st| st.polls > 0) {
        fleet.flush();
    }
}

/// Opens a session on `want`'s server: the device's facts, the controller id, the client.
async fn open(fleet: &Fleet, hub: &Hub, want: &FleetConfig) -> Option<Session> {
    let sw = sw_version(&fleet.status());
    let facts = facts(hub, sw).await;
    let id = controller_id(want, &facts);
    match Ddi::new(want, &id, &crate::publish::listen::files_dir()) {
        Ok(ddi) => {
            info!(server = %ddi.base(), "fleet client started");
            let server = crate::net::http::redact(want.url.as_deref().unwrap_or_default());
            fleet.update(false, |s| {
                s.server = server;
                s.controller_id = id;
                s.pid = std::process::id();
            });
            let last_ended = fleet.status().history.first().map(|a| a.id.clone());
            Some(Session {
                config: want.clone(),
                ddi,
                facts,
                sent_facts: None,
                last_ended,
                sleep: None,
            })
        }
        Err(err) => {
            fleet.error(err);
            None
        }
    }
}

/// One poll without a daemon (`pocketses fleet poll`): what the server offers is run to its
/// end. Returns the status afterwards.
pub async fn poll_once(config: Config) -> Status {
    let fleet = Fleet::new(status_path());
    let hub = Hub::new(1);
    let _ = fleet.inner.hub.set(hub.clone());
    if let Some(mut session) = open(&fleet, &hub, &config.fleet).await {
        let mut running = None;
        cycle(&fleet, &hub, &mut session, &mut running).await;
        if let Some(r) = running {
            let _ = r.task.await;
        }
        // The poll's counters and times, noted in memory by `cycle`, reach the file.
        fleet.flush();
    }
    fleet.status()
}

/// One poll and what follows from it.
async fn cycle(fleet: &Fleet, hub: &Hub, s: &mut Session, running: &mut Option<Running>) {
    let t = now();
    fleet.note(|st| {
        st.polls += 1;
        st.last_poll = Some(t);
    });
    let base = match s.ddi.poll().await {
        Ok(base) => base,
        Err(err) => {
            fleet.error(err);
            return;
        }
    };
    fleet.note(|st| {
        st.last_success = Some(t);
        st.last_error = None;
    });
    s.sleep = base.sleep;
    if running.as_ref().is_some_and(|r| r.task.is_finished()) {
        *running = None;
    }
    // The model may have changed (a remodel: the dashboard's look is at most a minute old),
    // and an action that ended changed the snaps: look again.
    // Read in place: an idle poll copies no status (docs/fleet.md, "Performance").
    let (last_ended, sw) =
        fleet.read(|st| (st.history.first().map(|a| a.id.clone()), sw_version(st)));
    let seen = hub.board().device();
    let remodelled = !seen.model.is_empty()
        && (seen.model != s.facts.model
            || seen.brand != s.facts.brand
            || seen.revision != s.facts.model_revision);
    if remodelled || last_ended != s.last_ended {
        s.facts = facts(hub, sw.clone()).await;
    }
    s.facts.sw_version = sw;
    let changed = s.sent_facts.as_ref() != Some(&s.facts) || last_ended != s.last_ended;
    if base.config_data.is_some() || changed {
        match s.ddi.config_data(&ddi::config_data(&s.facts)).await {
            Ok(()) => {
                s.sent_facts = Some(s.facts.clone());
                s.last_ended = last_ended;
            }
            Err(err) => fleet.error(err),
        }
    }
    // A final feedback the server has not taken yet.
    report_pending(fleet, &s.ddi).await;
    if let Some(href) = &base.cancel {
        match s.ddi.cancel_action(href).await {
            Ok(cancel) => handle_cancel(fleet, &s.ddi, &cancel, running).await,
            Err(err) => fleet.error(err),
        }
        return;
    }
    let Some(href) = &base.deployment else {
        // gooseBit withdraws an assignment by no longer offering it: a download stops.
        withdraw(fleet, running);
        return;
    };
    let deployment = match s.ddi.deployment(href).await {
        Ok(d) => d,
        Err(err) => {
            fleet.error(err);
            return;
        }
    };
    let current = fleet.status().current;
    match state::offer(&deployment, current.as_ref()) {
        Offer::Report => report_pending(fleet, &s.ddi).await,
        Offer::Busy | Offer::Skip | Offer::Wait => {}
        Offer::Continue if running.as_ref().is_some_and(|r| r.id == deployment.id) => {}
        Offer::Continue | Offer::Start => {
            if let Some(r) = running.take() {
                // A download of an action the server replaced.
                r.cancel.cancel();
            }
            match start(fleet, s, &deployment) {
                Ok(r) => *running = Some(r),
                Err(err) => fleet.error(err),
            }
        }
    }
}

/// The running download's action is no longer offered: stop it, nothing was applied.
fn withdraw(fleet: &Fleet, running: &mut Option<Running>) {
    let running_download =
        |a: &&Action| !a.stage.is_final() && a.stage.ddi().is_some_and(|s| s.cancellable());
    let Some(current) = fleet.read(|st| st.current.as_ref().filter(running_download).cloned())
    else {
        return;
    };
    if let Some(r) = running.take() {
        r.cancel.cancel();
    }
    let t = now();
    // A download-only action (`update: skip`) ends so: hawkBit closes it on `downloaded`.
    let why = if current.waiting {
        "downloaded; the server no longer offers the update, nothing applied"
    } else {
        "the server no longer offers this update"
    };
    fleet.update(true, |st| {
        if let Some(a) = &mut st.current {
            a.advance(Stage::Cancelled, vec![why.into()], t);
            a.reported = true;
        }
        st.retire();
    });
    discard(&current.id);
    info!(action = %current.id, "fleet: the server withdrew the update; download stopped");
}

/// Removes what was downloaded for `action` (the file or its part): nothing of it will be
/// applied.
fn discard(action: &str) {
    let dest = downloads_dir().join(format!("{}.swu", safe_name(action)));
    for path in [download::part_path(&dest), dest] {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                warn!("fleet: cannot remove {}: {}", path.display(), crate::error::describe_io(&e))
            }
        }
    }
}

async fn handle_cancel(
    fleet: &Fleet,
    ddi_client: &Ddi,
    cancel: &ddi::Cancel,
    running: &mut Option<Running>,
) {
    let current = fleet.status().current;
    let decision = state::cancel_decision(current.as_ref(), &cancel.stop_id);
    let stage = match &decision {
        CancelDecision::Refuse(stage) => Some(*stage),
        _ => None,
    };
    if decision == CancelDecision::Accept {
        if let Some(r) = running.take() {
            r.cancel.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(5), r.task).await;
        }
        let t = now();
        fleet.update(true, |st| {
            if let Some(a) = &mut st.current {
                a.advance(Stage::Cancelled, vec!["cancelled by the server".into()], t);
                a.reported = true;
            }
            st.retire();
        });
        discard(&cancel.stop_id);
    }
    let answer = ddi::cancel_answer(&ddi::feedback_time(now()), stage);
    if let Err(err) = ddi_client.cancel_feedback(&cancel.id, &answer).await {
        fleet.error(err);
    }
}

/// Tells the applier's journal that the server has the result of `action`.
fn acknowledge(action: &str) {
    if let Err(err) = journal::acknowledge(&journal::default_path(), action) {
        warn!("fleet: {err}");
    }
}

/// Sends the final feedback of a finished action the server has not taken yet.
async fn report_pending(fleet: &Fleet, ddi_client: &Ddi) {
    let pending = |a: &&Action| a.stage.is_final() && !a.reported;
    let Some(a) = fleet.read(|st| st.current.as_ref().filter(pending).cloned()) else {
        return;
    };
    let doc = ddi::closed(&ddi::feedback_time(a.updated), a.stage == Stage::Done, &a.details);
    match ddi_client.feedback(&a.id, &doc).await {
        Ok(()) => {
            fleet.update(false, |st| {
                if let Some(c) = &mut st.current {
                    c.reported = true;
                }
                st.retire();
            });
            acknowledge(&a.id);
        }
        Err(err) => fleet.error(err),
    }
}

/// Starts the task of an offered deployment.
fn start(fleet: &Fleet, s: &Session, d: &ddi::Deployment) -> Result<Running, String> {
    let (chunk, artifact) = d
        .chunks
        .iter()
        .flat_map(|c| c.artifacts.iter().map(move |a| (c, a)))
        .next()
        .ok_or_else(|| format!("cannot run action {}: the deployment has no artifact", d.id))?;
    let url = artifact
        .url
        .clone()
        .ok_or_else(|| format!("cannot run action {}: the artifact has no download link", d.id))?;
    let t = now();
    let fresh = fleet.status().current.is_none_or(|a| a.id != d.id || a.stage.is_final());
    if fresh {
        let a = Action::new(&d.id, &artifact.filename, &chunk.version, artifact.size, t);
        fleet.update(true, |st| {
            // An unreported final action would be lost: it goes to history as it is.
            if let Some(old) = st.current.take() {
                st.history.insert(0, old);
                st.history.truncate(state::HISTORY);
            }
            st.current = Some(a);
        });
    }
    info!(action = %d.id, file = %artifact.filename, "fleet: deployment offered");
    let job = Job {
        fleet: fleet.clone(),
        ddi: s.ddi.clone(),
        action: d.id.clone(),
        install: d.may_install(),
        target: Target { url, size: artifact.size, hash: artifact.hashes.strongest() },
        dest: downloads_dir().join(format!("{}.swu", safe_name(&d.id))),
        trusted: s.config.trusted_keys.clone(),
    };
    Ok(spawn(job))
}

/// Runs `job` in its own task.
fn spawn(job: Job) -> Running {
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    let id = job.action.clone();
    let task = tokio::spawn(async move { job.run(token).await });
    Running { id, cancel, task }
}

/// An action id as a file name: letters, digits, `.`, `_`, `-`; anything else becomes `_`.
/// \[pure\]
pub fn safe_name(id: &str) -> String {
    let name: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '-') { c } else { '_' })
        .collect();
    if name.is_empty() {
        "action".into()
    } else {
        name
    }
}

/// One action, from download to final feedback.
struct Job {
    fleet: Fleet,
    ddi: Ddi,
    action: String,
    install: bool,
    target: Target,
    dest: PathBuf,
    trusted: Option<TrustedKeys>,
}

impl Job {
    fn set(&self, event: bool, change: impl FnOnce(&mut Action)) {
        self.fleet.update(event, |st| {
            if let Some(a) = st.current.as_mut().filter(|a| a.id == self.action) {
                change(a);
            }
        });
    }

    /// One progress report of the applier: stage, details, SSE event, `proceeding` feedback.
    async fn progress(&self, p: &apply::Progress) {
        let stage = stage_of(p.stage);
        if stage.is_final() {
            // The result is closed by `finish`, after the applier returned.
            return;
        }
        let t = now();
        let details = p.details.clone();
        self.set(true, |a| {
            if a.stage != stage {
                a.advance(stage, details.clone(), t);
            } else {
                a.details = details.clone();
                a.updated = t;
            }
        });
        let progress = (p.steps > 0).then_some((p.step as u64, p.steps as u64));
        self.proceeding(progress, &p.details).await;
    }

    async fn proceeding(&self, progress: Option<(u64, u64)>, details: &[String]) {
        let doc = ddi::proceeding(&ddi::feedback_time(now()), progress, details);
        if let Err(err) = self.ddi.feedback(&self.action, &doc).await {
            // Progress is best effort; the final result is sent until it is taken.
            self.fleet.error(err);
        }
    }

    async fn run(self, cancel: CancellationToken) {
        let stage = self.fleet.status().current.filter(|a| a.id == self.action).map(|a| a.stage);
        if stage == Some(Stage::Downloading) {
            match self.download(&cancel).await {
                Ok(()) => {}
                Err(Failure::Cancelled) => return,
                Err(Failure::Interrupted(err)) => {
                    // The part stays; the next poll that offers the action resumes it.
                    self.fleet.error(err);
                    return;
                }
                Err(Failure::Refused(err)) => {
                    self.finish(Err(vec![err])).await;
                    return;
                }
            }
        } else if matches!(stage, Some(Stage::Applying | Stage::Rebooting)) {
            // After a restart or a reboot: the applier picks it up from its journal.
            let result = apply_bundle(&self, true).await;
            self.finish(result).await;
            return;
        } else if stage != Some(Stage::Verifying) {
            return;
        }
        if !self.install {
            // `update: skip` or a closed maintenance window: say `downloaded` once, then wait
            // (state::offer answers `Wait` while the server does not allow the update). Not
            // said: the next poll that offers the action tries again.
            let details = vec!["downloaded; waiting for the update to be allowed".to_string()];
            let doc = ddi::downloaded(&ddi::feedback_time(now()), &details);
            match self.ddi.feedback(&self.action, &doc).await {
                Ok(()) => {
                    let t = now();
                    self.set(true, |a| {
                        a.waiting = true;
                        a.details = details.clone();
                        a.updated = t;
                    });
                }
                Err(err) => self.fleet.error(err),
            }
            return;
        }
        let t = now();
        self.set(true, |a| {
            a.advance(Stage::Verifying, vec!["verifying the bundle".into()], t);
        });
        self.proceeding(None, &["verifying the bundle".into()]).await;
        if cancel.is_cancelled() {
            return;
        }
        let result = apply_bundle(&self, false).await;
        self.finish(result).await;
    }

    async fn download(&self, cancel: &CancellationToken) -> Result<(), Failure> {
        let mut last_step = None;
        let mut attempt = 0;
        loop {
            // The fetch reports each 10 % step on a channel; the feedback is sent while the
            // download goes on.
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u8>();
            let size = self.target.size;
            let fleet = self.fleet.clone();
            let action = self.action.clone();
            let mut counted = 0u64;
            let progress = move |len: u64, received: u64| {
                let pct = state::percent(len, size);
                let delta = received.saturating_sub(counted);
                counted = received;
                fleet.update(false, |st| {
                    st.bytes_downloaded += delta;
                    if let Some(a) = st.current.as_mut().filter(|a| a.id == action) {
                        a.downloaded = len;
                        if let Some(p) = pct {
                            a.progress = p;
                        }
                    }
                });
                if let Some(p) = state::progress_step(last_step, pct) {
                    last_step = Some(p);
                    let _ = tx.send(p);
                }
            };
            // The fetch owns `progress` and so the sender: when it ends, the channel closes and
            // the report drains it. Joined, not raced: a feedback in flight when the fetch ends
            // (the last step of a small file, sent while the file is hashed and synced) is
            // completed, not dropped with its connection (gooseBit then never records it).
            let fetch = async {
                let mut progress = progress;
                download::fetch(&self.ddi, &self.target, &self.dest, &mut progress, cancel).await
            };
            let report = async {
                while let Some(p) = rx.recv().await {
                    let line = state::downloaded_line(p);
                    self.set(true, |a| a.details = vec![line.clone()]);
                    self.proceeding(Some((u64::from(p), 100)), &[line]).await;
                }
            };
            let (res, ()) = tokio::join!(fetch, report);
            last_step = self
                .fleet
                .status()
                .current
                .filter(|a| a.id == self.action)
                .and_then(|a| state::percent(a.downloaded, size));
            match res {
                Err(Failure::Interrupted(err))
                    if attempt + 1 < DOWNLOAD_ATTEMPTS && !cancel.is_cancelled() =>
                {
                    attempt += 1;
                    self.fleet.error(err);
                    tokio::select! {
                        () = cancel.cancelled() => return Err(Failure::Cancelled),
                        () = tokio::time::sleep(Duration::from_secs(u64::from(attempt) * 2)) => {}
                    }
                }
                other => return other,
            }
        }
    }

    /// Closes the action: success or failure, the reason in the details, feedback, configData
    /// after it (on the next poll).
    async fn finish(&self, result: Result<Vec<String>, Vec<String>>) {
        let t = now();
        let (to, details) = match result {
            Ok(details) => (Stage::Done, details),
            Err(details) => (Stage::Failed, details),
        };
        self.set(true, |a| {
            a.advance(to, details.clone(), t);
        });
        let doc = ddi::closed(&ddi::feedback_time(t), to == Stage::Done, &details);
        match self.ddi.feedback(&self.action, &doc).await {
            Ok(()) => {
                self.fleet.update(false, |st| {
                    if let Some(a) = st.current.as_mut().filter(|a| a.id == self.action) {
                        a.reported = true;
                    }
                    st.retire();
                });
                acknowledge(&self.action);
            }
            Err(err) => self.fleet.error(err),
        }
        let _ = tokio::fs::remove_file(&self.dest).await;
        info!(action = %self.action, result = if to == Stage::Done { "success" } else { "failure" }, "fleet: action finished");
    }
}

/// The applier's stage in the fleet status's words. \[pure\]
pub fn stage_of(stage: journal::Stage) -> Stage {
    match stage {
        journal::Stage::Verifying => Stage::Verifying,
        journal::Stage::Applying => Stage::Applying,
        journal::Stage::Rebooting => Stage::Rebooting,
        journal::Stage::Done => Stage::Done,
        journal::Stage::Failed => Stage::Failed,
    }
}

/// The detail lines of the applier's result. \[pure\]
pub fn result_details(
    result: &Result<apply::Outcome, apply::ApplyError>,
) -> Result<Vec<String>, Vec<String>> {
    match result {
        Ok(outcome) => Ok(vec![outcome.summary()]),
        Err(err) => Err(err.lines()),
    }
}

/// The one call into the applier (`super::apply`): verify the bundle against
/// `fleet.trusted-keys` (before anything is extracted), then assertions → snaps → remodel
/// through snapd, each change followed to its end and recorded in the journal (`fleet.json`).
/// With `resume`, the journal's unfinished action is picked up instead (after a restart or a
/// reboot). Its progress becomes the action's stage and details, SSE events and `proceeding`
/// feedback. Returns the detail lines of a success, or of a failure.
async fn apply_bundle(job: &Job, resume: bool) -> Result<Vec<String>, Vec<String>> {
    let trusted = match job.trusted.as_ref().map(apply::load_trusted) {
        Some(Ok(keys)) => keys,
        Some(Err(err)) => return Err(vec![format!("cannot read bundle: {err}")]),
        None => {
            return Err(vec!["cannot read bundle: no trusted keys (set fleet.trusted-keys)".into()])
        }
    };
    let snapd = crate::snapd::Client::from_env();
    let journal_path = journal::default_path();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<apply::Progress>();
    let mut progress = move |p: apply::Progress| {
        let _ = tx.send(p);
    };
    let work = async {
        if resume {
            match apply::resume(&snapd, &trusted, &journal_path, &mut progress).await {
                Ok(Some(resumed)) if resumed.action == job.action => Some(resumed.result),
                Ok(_) => None,
                Err(err) => Some(Err(err)),
            }
        } else {
            Some(
                apply::apply(
                    &snapd,
                    &job.dest,
                    &trusted,
                    &journal_path,
                    &job.action,
                    &mut progress,
                )
                .await,
            )
        }
    };
    let report = async {
        while let Some(p) = rx.recv().await {
            job.progress(&p).await;
        }
    };
    let result = tokio::select! {
        r = work => r,
        // Never first: the channel stays open as long as the applier runs.
        () = report => None,
    };
    while let Ok(p) = rx.try_recv() {
        job.progress(&p).await;
    }
    match result {
        Some(result) => result_details(&result),
        None => Err(vec![format!(
            "cannot apply bundle: the journal {} holds no unfinished action {}",
            journal_path.display(),
            job.action
        )]),
    }
}

/// The `{"command":"fleet-poll"}` refusal when the daemon runs no fleet client.
pub fn not_running() -> String {
    "cannot poll the fleet server: the fleet client is not enabled (set fleet.enabled=true and fleet.url)".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_ids_become_plain_file_names() {
        assert_eq!(safe_name("42"), "42");
        assert_eq!(safe_name("../../etc"), "______etc");
        assert_eq!(safe_name(""), "action");
    }

    #[test]
    fn sw_version_is_the_last_success() {
        let mut st = Status::default();
        assert_eq!(sw_version(&st), None);
        let mut ok = Action::new("1", "a", "1.0.1", None, 1);
        ok.stage = Stage::Done;
        let mut bad = Action::new("2", "a", "1.0.2", None, 2);
        bad.stage = Stage::Failed;
        st.history = vec![bad, ok];
        assert_eq!(sw_version(&st).as_deref(), Some("1.0.1"));
    }

    /// One idle poll as `cycle` and `run` record it: two notes and the next poll's time.
    fn idle_poll(fleet: &Fleet, t: u64) {
        fleet.note(|st| {
            st.polls += 1;
            st.last_poll = Some(t);
        });
        fleet.note(|st| {
            st.last_success = Some(t);
            st.last_error = None;
        });
        fleet.update(false, |st| st.next_poll = Some(t + 60));
    }

    #[test]
    fn an_idle_poll_writes_nothing_and_the_memory_has_its_times() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATUS_FILE);
        let fleet = Fleet::new(path.clone());
        fleet.update(false, |st| st.server = "http://h".into());
        let first = std::fs::read(&path).unwrap();
        for t in 1..=3 {
            idle_poll(&fleet, t);
        }
        assert_eq!(std::fs::read(&path).unwrap(), first, "idle polls leave the file as it was");
        let live = fleet.status();
        assert_eq!((live.polls, live.last_poll, live.next_poll), (3, Some(3), Some(63)));
        // What a restart needs is written at once, with the times of that moment.
        fleet.update(false, |st| st.current = Some(Action::new("1", "a.swu", "1", None, 4)));
        let on_disk = load_status(&path).unwrap().unwrap();
        assert_eq!(on_disk.current.map(|a| a.id).as_deref(), Some("1"));
        assert_eq!(on_disk.last_poll, Some(3));
    }

    #[test]
    fn an_error_that_comes_or_goes_is_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATUS_FILE);
        let fleet = Fleet::new(path.clone());
        fleet.update(false, |st| st.server = "http://h".into());
        for _ in 0..3 {
            fleet.note(|st| st.polls += 1);
            fleet.error("cannot poll http://h: connection refused".into());
        }
        let on_disk = load_status(&path).unwrap().unwrap();
        assert_eq!(on_disk.last_error.as_deref(), Some("cannot poll http://h: connection refused"));
        assert_eq!(on_disk.errors, 1, "written at the first error only");
        assert_eq!(fleet.status().errors, 3);
        idle_poll(&fleet, 9);
        let on_disk = load_status(&path).unwrap().unwrap();
        assert_eq!((on_disk.last_error, on_disk.last_success), (None, Some(9)));
    }

    #[test]
    fn download_progress_stays_in_memory_until_its_step() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATUS_FILE);
        let fleet = Fleet::new(path.clone());
        fleet.update(false, |st| st.current = Some(Action::new("1", "a.swu", "1", Some(100), 1)));
        let first = std::fs::read(&path).unwrap();
        for n in 1..=9 {
            fleet.update(false, |st| {
                st.bytes_downloaded += 10;
                let a = st.current.as_mut().unwrap();
                a.downloaded = n * 10;
                a.progress = u8::try_from(n * 10).unwrap();
            });
        }
        assert_eq!(std::fs::read(&path).unwrap(), first, "one write per chunk no more");
        assert_eq!(fleet.status().current.unwrap().downloaded, 90);
        fleet.update(false, |st| {
            st.current.as_mut().unwrap().details = vec!["Downloaded 90%".into()];
        });
        let a = load_status(&path).unwrap().unwrap().current.unwrap();
        assert_eq!((a.downloaded, a.progress, a.details.len()), (90, 90, 1));
    }

    #[test]
    fn a_restarted_daemon_does_not_rewrite_what_it_read_and_flush_writes_the_times() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATUS_FILE);
        let st = Status { server: "http://h".into(), polls: 7, ..Status::default() };
        save_status(&path, &st).unwrap();
        let first = std::fs::read(&path).unwrap();
        let fleet = Fleet::new(path.clone());
        assert_eq!(fleet.status().polls, 0, "the counters start again");
        idle_poll(&fleet, 5);
        assert_eq!(std::fs::read(&path).unwrap(), first);
        fleet.flush();
        let on_disk = load_status(&path).unwrap().unwrap();
        assert_eq!((on_disk.polls, on_disk.last_poll, on_disk.next_poll), (1, Some(5), Some(65)));
    }

    #[test]
    fn the_status_file_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATUS_FILE);
        assert_eq!(load_status(&path).unwrap(), None);
        let st = Status { server: "http://h".into(), polls: 2, ..Status::default() };
        save_status(&path, &st).unwrap();
        assert_eq!(load_status(&path).unwrap(), Some(st));
        std::fs::write(&path, "{").unwrap();
        assert!(load_status(&path).unwrap_err().starts_with("cannot read"));
    }
}
