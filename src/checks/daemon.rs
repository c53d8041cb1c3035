//! The checks in the running daemon: run on every snapshot, published, and reported to snapd.
//!
//! [`Checker`] runs on the collector's blocking thread right after the snapshot is encoded (no
//! second collection): it evaluates the built-in checks on the snapshot and the latest
//! [`Facts`], passes the results through the [`Runner`] (hysteresis, flapping), and hands the
//! hub a [`CheckSet`] (encoded on first use, once for every reader: `/v1/checks`, SSE,
//! `/metrics`) and the [`CheckChanges`] (encoded at once, only when something changed).
//! [`SpoolWatch`] reads the spools at most every [`SPOOL_REFRESH`].
//! [`poll_snapd`] keeps the snapd facts (reachability, other snaps' health, the plugs the daemon
//! needs) at most once per interval, never per check; [`report_health`] calls
//! `snapctl set-health` only when the mapped health changes. \[io\] in the tasks and
//! [`spool_facts`]; [`Checker`] itself is pure.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::builtin::{
    self, Facts, FleetFacts, FleetOutcome, SinkFacts, SnapHealth, SnapdFacts, SpoolFacts,
};
use super::health::{self, Health, Reporter, Situation};
use super::report::{self, Entry};
use super::runner::{Runner, Transition};
use crate::config::Config;
use crate::metrics::Snapshot;
use crate::publish::{CheckChanges, CheckSet};
use crate::snapd::snapctl::Snapctl;
use crate::snapd::{Client, SNAP_NAME};

/// The interfaces the daemon needs to see the whole device; one not connected makes the snap
/// `blocked`. (network and network-bind connect by themselves; snapd-control is optional.)
pub const NEEDED_PLUGS: [&str; 4] =
    ["system-observe", "network-observe", "hardware-observe", "mount-observe"];

/// snapd is asked at most this often, whatever the interval.
pub const SNAPD_POLL_MIN: Duration = Duration::from_secs(10);

/// Time limit of one snapd call of the poller and of `set-health`.
pub const SNAPD_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Seconds since the Unix epoch, now.
pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// What one run of the checks gives the daemon.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The latest results.
    pub set: Arc<CheckSet>,
    /// The changes, encoded; `None` when nothing changed.
    pub changes: Option<CheckChanges>,
    /// The snap's health for these results (shared: the same one run after run while no state
    /// and no situation changes).
    pub health: Arc<Health>,
    /// Changes of reported state, for the notifications (`crate::notify`).
    pub transitions: Vec<Transition>,
}

/// The checks' state in the daemon: the evaluator (settings worked out once per configuration,
/// result names kept), the runner, a buffer for the raw results reused every run, and the last
/// health with the situation it was mapped in (mapped again only when a state or the situation
/// changes: a CRIT result's health is words, made once). \[pure\]
#[derive(Debug, Default)]
pub struct Checker {
    evaluator: builtin::Evaluator,
    runner: Runner,
    raw: Vec<crate::checks::Result>,
    health: Option<(Situation, Arc<Health>)>,
}

impl Checker {
    /// A checker with no history.
    pub fn new() -> Checker {
        Checker::default()
    }

    /// Runs the checks on snapshot number `seq`, measured at `now`.
    pub fn run(
        &mut self,
        seq: u64,
        snapshot: &Snapshot,
        facts: &Facts,
        situation: &Situation,
        config: &Config,
        now: f64,
    ) -> Outcome {
        self.evaluator.run(snapshot, facts, config, &mut self.raw);
        let run = self.runner.observe_from(&mut self.raw.drain(..), config, now);
        let mut changed: Vec<Entry> = run.changed.iter().map(Entry::reported).collect();
        changed.extend(run.removed.iter().map(|r| Entry { removed: true, ..Entry::reported(r) }));
        let changes =
            (!changed.is_empty()).then(|| CheckChanges { seq, sse: report::sse_events(&changed) });
        // The health depends on the results' states (and the first CRIT's name, which comes and
        // goes with a state) and the situation: the last one holds while neither changed.
        let unchanged = run.changed.is_empty() && run.removed.is_empty();
        let health = match &self.health {
            Some((seen, health))
                if unchanged
                    && seen.missing_plugs == situation.missing_plugs
                    && seen.missing_keys == situation.missing_keys =>
            {
                Arc::clone(health)
            }
            _ => {
                // A run of the checks is never the start.
                let situation = Situation { starting: false, ..situation.clone() };
                let health =
                    Arc::new(health::map(run.results.iter().map(|r| &r.result), &situation));
                self.health = Some((situation, Arc::clone(&health)));
                health
            }
        };
        Outcome {
            set: Arc::new(CheckSet::new(seq, now, run.results)),
            changes,
            health,
            transitions: run.transitions,
        }
    }
}

/// How often the spools are read from disk; between two reads the age of the oldest waiting
/// record is worked out from the last read.
pub const SPOOL_REFRESH: Duration = Duration::from_secs(60);

/// The spools' backlog, read from disk at most every [`SPOOL_REFRESH`]. \[io\]
#[derive(Debug, Default)]
pub struct SpoolWatch {
    read_at_ms: Option<u64>,
    /// As read, with `oldest_pending_seconds` holding the oldest record's time in ms.
    spools: Vec<SpoolFacts>,
}

impl SpoolWatch {
    /// The backlog of every sink's spool under `root` at `now_ms`.
    pub fn facts(&mut self, root: &Path, now_ms: u64) -> Vec<SpoolFacts> {
        let mut out = Vec::new();
        self.refresh(root, now_ms, &mut out);
        out
    }

    /// [`SpoolWatch::facts`] written over `out`, the facts of the run before: between two reads
    /// from disk nothing is allocated (names are copied into the strings already there).
    pub fn refresh(&mut self, root: &Path, now_ms: u64, out: &mut Vec<SpoolFacts>) {
        let refresh = u64::try_from(SPOOL_REFRESH.as_millis()).unwrap_or(u64::MAX);
        if self.read_at_ms.is_none_or(|at| now_ms.saturating_sub(at) >= refresh) {
            self.spools = spool_facts(root, now_ms)
                .into_iter()
                .map(|mut s| {
                    s.oldest_pending_seconds =
                        s.oldest_pending_seconds.map(|age| now_ms.saturating_sub(age * 1000));
                    s
                })
                .collect();
            self.read_at_ms = Some(now_ms);
        }
        out.truncate(self.spools.len());
        out.resize_with(self.spools.len(), SpoolFacts::default);
        for (to, from) in out.iter_mut().zip(&self.spools) {
            to.name.clone_from(&from.name);
            to.pending_bytes = from.pending_bytes;
            to.oldest_pending_seconds =
                from.oldest_pending_seconds.map(|at_ms| now_ms.saturating_sub(at_ms) / 1000);
            to.error.clone_from(&from.error);
        }
    }
}

/// The backlog of every sink's spool under `root` (none when it does not exist). \[io\]
pub fn spool_facts(root: &Path, now_ms: u64) -> Vec<SpoolFacts> {
    match crate::spool::cmd::gather(root, now_ms) {
        Ok(report) => report
            .spools
            .into_iter()
            .map(|s| SpoolFacts {
                error: (!s.error.is_empty()).then(|| Arc::from(s.error)),
                name: s.name,
                pending_bytes: s.pending_bytes,
                oldest_pending_seconds: s.oldest_pending_seconds,
            })
            .collect(),
        Err(err) => {
            debug!(error = %err, "spool check");
            Vec::new()
        }
    }
}

/// The `push` check's facts from the sinks' figures at `now`: every sink but the disabled ones,
/// failing since its last delivery, or since `started` (the daemon's start) when it never
/// delivered. \[pure\]
pub fn sink_facts(
    statuses: &[crate::push::sink::SinkStatus],
    now: f64,
    started: f64,
) -> Vec<SinkFacts> {
    let (mut out, mut at) = (Vec::new(), 0);
    for status in statuses {
        update_sink(&mut out, &mut at, status, now, started);
    }
    out.truncate(at);
    out
}

/// [`sink_facts`] one status at a time, written over the facts of the run before: `status` is
/// the next sink after the `*at` already written (the caller truncates `out` to `*at` when every
/// sink has been seen). A sink seen in the same state as the last run costs no allocation: its
/// name, state and error are kept, and made anew only when they changed. \[pure\]
pub fn update_sink(
    out: &mut Vec<SinkFacts>,
    at: &mut usize,
    status: &crate::push::sink::SinkStatus,
    now: f64,
    started: f64,
) {
    if status.state == "disabled" || status.state.is_empty() {
        return;
    }
    if *at == out.len() {
        out.push(SinkFacts { name: status.name.clone(), ..SinkFacts::default() });
    }
    let facts = &mut out[*at];
    facts.name.clone_from(&status.name);
    keep_text(&mut facts.state, &status.state);
    keep_some_text(&mut facts.last_error, status.last_error.as_deref());
    facts.failing_for = if status.state == "ok" {
        0.0
    } else {
        let since = status.last_success.map_or(started, |t| (t as f64).max(started));
        (now - since).max(0.0)
    };
    *at += 1;
}

/// Makes `slot` say `text`, allocating only when it says something else.
fn keep_text(slot: &mut Arc<str>, text: &str) {
    if **slot != *text {
        *slot = Arc::from(text);
    }
}

/// [`keep_text`] for a text that may be absent.
fn keep_some_text(slot: &mut Option<Arc<str>>, text: Option<&str>) {
    match (slot.as_mut(), text) {
        (_, None) => *slot = None,
        (Some(slot), Some(text)) => keep_text(slot, text),
        (None, Some(text)) => *slot = Some(Arc::from(text)),
    }
}

/// The `fleet` checks' facts from the fleet client's state in the daemon (the typed
/// [`Status`](crate::fleet::state::Status) the client keeps and writes to `fleet-status.json`),
/// at `now`; `started` is when the daemon started. `None` until the client has started (or
/// failed to): nothing to judge yet. The last action that ended is `current` when its stage is
/// final, else the newest of `history`. \[pure\]
pub fn fleet_facts(
    status: &crate::fleet::state::Status,
    now: f64,
    started: f64,
) -> Option<FleetFacts> {
    let mut out = None;
    update_fleet(&mut out, status, now, started);
    out
}

/// [`fleet_facts`] written over the facts of the run before: texts (the error, the last
/// action's id, stage and reason) are made anew only when they changed, so a run that finds the
/// client as it was allocates nothing. \[pure\]
pub fn update_fleet(
    out: &mut Option<FleetFacts>,
    status: &crate::fleet::state::Status,
    now: f64,
    started: f64,
) {
    let never_ran = status.server.is_empty()
        && status.last_error.is_none()
        && status.last_poll.is_none()
        && status.current.is_none()
        && status.history.is_empty();
    if never_ran {
        *out = None;
        return;
    }
    let facts = out.get_or_insert_with(FleetFacts::default);
    let since = status.last_success.map_or(started, |t| t as f64);
    facts.silent_for = (now - since).max(0.0);
    keep_some_text(&mut facts.error, status.last_error.as_deref());
    let ended = |a: &&crate::fleet::state::Action| a.stage.is_final();
    let last =
        status.current.as_ref().filter(ended).or_else(|| status.history.first().filter(ended));
    match last {
        None => facts.last_action = None,
        Some(action) => {
            let outcome = facts.last_action.get_or_insert_with(|| FleetOutcome {
                id: Arc::from(action.id.as_str()),
                stage: Arc::from(action.stage.as_str()),
                detail: None,
            });
            keep_text(&mut outcome.id, &action.id);
            keep_text(&mut outcome.stage, action.stage.as_str());
            keep_some_text(&mut outcome.detail, action.details.last().map(String::as_str));
        }
    }
}

/// The `fleet` checks' facts from the fleet client `fleet` runs in this daemon (read in place,
/// no file, no copy of its status). \[pure\]
pub fn fleet_state(
    fleet: &crate::fleet::daemon::Fleet,
    now: f64,
    started: f64,
) -> Option<FleetFacts> {
    fleet.read(|status| fleet_facts(status, now, started))
}

/// Sinks' statuses, read in place one after the other (the daemon's
/// [`Registry`](crate::push::sink::Registry); a plain list in tests and the benchmark).
pub trait SinkStatuses: std::fmt::Debug {
    /// Calls `f` with every sink's status, in name order.
    fn for_each_status(&self, f: &mut dyn FnMut(&crate::push::sink::SinkStatus));
}

impl SinkStatuses for crate::push::sink::Registry {
    fn for_each_status(&self, f: &mut dyn FnMut(&crate::push::sink::SinkStatus)) {
        self.for_each(f);
    }
}

impl SinkStatuses for Vec<crate::push::sink::SinkStatus> {
    fn for_each_status(&self, f: &mut dyn FnMut(&crate::push::sink::SinkStatus)) {
        self.iter().for_each(f);
    }
}

/// Where the daemon's checks find their facts besides the snapshot.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// What the snapd poller learned.
    pub snapd: &'a SnapdView,
    /// The spool directory (`spool`).
    pub spool_dir: &'a Path,
    /// The sinks' figures (`push`): the daemon's [`Registry`](crate::push::sink::Registry).
    pub sinks: Option<&'a dyn SinkStatuses>,
    /// The fleet client, while `fleet.enabled` (`fleet`, `fleet-action`).
    pub fleet: Option<&'a crate::fleet::daemon::Fleet>,
    /// When the daemon started, seconds since the epoch.
    pub started: f64,
}

/// The checks' facts and situation, kept by the collector from one run to the next and brought
/// up to date in place by [`Gathered::gather`]. The sinks' statuses and the fleet client's are
/// read where they are kept (no copy per run), and a text (a name, a state, an error) is made
/// anew only when it changed: a run that finds everything as it was allocates nothing here.
/// \[io: the spools, through [`SpoolWatch`]\]
#[derive(Debug, Default)]
pub struct Gathered {
    facts: Facts,
    situation: Situation,
    spools: SpoolWatch,
}

impl Gathered {
    /// The facts and situation at `now` (seconds) and `now_ms` (milliseconds, the spools' clock).
    pub fn gather(&mut self, from: &Sources<'_>, now: f64, now_ms: u64) -> (&Facts, &Situation) {
        self.facts.snapd = from.snapd.facts(now);
        from.snapd.missing_plugs_into(&mut self.situation.missing_plugs);
        self.spools.refresh(from.spool_dir, now_ms, &mut self.facts.spools);
        let mut at = 0;
        if let Some(sinks) = from.sinks {
            sinks.for_each_status(&mut |status| {
                update_sink(&mut self.facts.sinks, &mut at, status, now, from.started);
            });
        }
        self.facts.sinks.truncate(at);
        match from.fleet {
            Some(fleet) => fleet.read(|status| {
                update_fleet(&mut self.facts.fleet, status, now, from.started);
            }),
            None => self.facts.fleet = None,
        }
        (&self.facts, &self.situation)
    }
}

/// What the poller last learned from snapd.
#[derive(Debug, Clone, Default)]
struct Known {
    /// The daemon uses snapd at all.
    used: bool,
    started: f64,
    last_answer: Option<f64>,
    error: Option<Arc<str>>,
    snaps: Option<Arc<[SnapHealth]>>,
    missing_plugs: Vec<String>,
}

/// The snapd facts, shared by the poller (writer) and the collector (reader). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct SnapdView {
    inner: Arc<Mutex<Known>>,
}

impl SnapdView {
    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The facts at `now`; `None` while the daemon does not use snapd.
    pub fn facts(&self, now: f64) -> Option<SnapdFacts> {
        let known = self.lock();
        known.used.then(|| SnapdFacts {
            silent_for: match (&known.error, known.last_answer) {
                (None, Some(_)) => 0.0,
                (_, Some(at)) => (now - at).max(0.0),
                (_, None) => (now - known.started).max(0.0),
            },
            error: known.error.clone(),
            snaps: known.snaps.clone(),
        })
    }

    /// The daemon uses snapd, from `started` (seconds since the epoch) on.
    pub fn mark_used(&self, started: f64) {
        let mut known = self.lock();
        known.used = true;
        known.started = started;
    }

    /// What one poll of snapd learned at `now`: whether snapd answered, the error of the last
    /// call that failed, the other snaps' health (`None`: not asked, or no answer), and the
    /// needed plugs that are not connected (kept from the last answer when snapd did not answer).
    pub fn record(
        &self,
        now: f64,
        answered: bool,
        error: Option<String>,
        snaps: Option<Arc<[SnapHealth]>>,
        missing: Vec<String>,
    ) {
        let mut known = self.lock();
        if !known.used {
            return;
        }
        if answered {
            known.last_answer = Some(now);
        }
        // At debug: the configuration's retry loop already says once that snapd is away,
        // and the `snapd` check reports it.
        if known.error.is_none() && error.is_some() {
            debug!(error = error.as_deref().unwrap_or_default(), "snapd does not answer");
        } else if known.error.is_some() && error.is_none() {
            debug!("snapd answers again");
        }
        known.error = error.map(Arc::from);
        known.snaps = snaps;
        if answered {
            known.missing_plugs = missing;
        }
    }

    /// The needed plugs that are not connected, as last seen.
    pub fn missing_plugs(&self) -> Vec<String> {
        self.lock().missing_plugs.clone()
    }

    /// [`SnapdView::missing_plugs`] into `out`, copied only when they changed.
    pub fn missing_plugs_into(&self, out: &mut Vec<String>) {
        let known = self.lock();
        if *out != known.missing_plugs {
            out.clone_from(&known.missing_plugs);
        }
    }
}

/// Asks snapd every `max(interval, SNAPD_POLL_MIN)` whether it answers, which needed plugs are
/// connected (snapctl, in a snap) and the snaps with their health (`GET /v2/snaps`, when the API
/// socket is within reach: snapd-control connected, or outside a snap). That list is the only
/// `GET /v2/snaps` of the daemon: the `snaps` check reads it from `view`, and `snaps` gets each
/// list as it comes (the dashboard's board). When the daemon does not use snapd (outside a snap
/// and no `POCKETSES_SNAPD_SOCKET`), only the list is asked for, for the dashboard, and the
/// checks see no snapd facts. \[io\]
pub async fn poll_snapd(
    view: SnapdView,
    snaps: impl Fn(&[crate::snapd::Snap]) + Send,
    mut config: watch::Receiver<Config>,
    shutdown: CancellationToken,
) {
    let ctl = Snapctl::from_env();
    let env_socket = std::env::var_os(crate::snapd::SNAPD_SOCKET_ENV).is_some();
    let used = ctl.is_some() || env_socket;
    if used {
        view.mark_used(now());
    }
    let rest = Client::from_env().with_timeout(SNAPD_CALL_TIMEOUT);
    loop {
        let mut error = None;
        let mut answered = false;
        let mut missing = Vec::new();
        let mut rest_allowed = ctl.is_none();
        if let Some(ctl) = &ctl {
            match tokio::time::timeout(SNAPD_CALL_TIMEOUT, ctl.is_connected("snapd-control")).await
            {
                Ok(Ok(connected)) => {
                    answered = true;
                    rest_allowed = connected;
                    for plug in NEEDED_PLUGS {
                        if let Ok(Ok(false)) =
                            tokio::time::timeout(SNAPD_CALL_TIMEOUT, ctl.is_connected(plug)).await
                        {
                            missing.push(plug.to_string());
                        }
                    }
                }
                Ok(Err(err)) => error = Some(err.to_string()),
                Err(_) => error = Some("snapctl did not answer in time".to_string()),
            }
        }
        let mut others = None;
        if rest_allowed {
            match rest.snaps().await {
                Ok(list) => {
                    answered = true;
                    error = None;
                    snaps(&list);
                    others = Some(others_health(list));
                }
                Err(err) if ctl.is_none() => error = Some(err.to_string()),
                Err(err) => debug!(error = %err, "cannot list snaps"),
            }
        }
        view.record(now(), answered, error, others, missing);
        let period =
            Duration::from_secs(u64::from(config.borrow_and_update().interval)).max(SNAPD_POLL_MIN);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(period) => {}
        }
    }
}

/// The health of every other snap that set one, by name.
fn others_health(snaps: Vec<crate::snapd::Snap>) -> Arc<[SnapHealth]> {
    let mut out: Vec<SnapHealth> = snaps
        .into_iter()
        .filter(|s| s.name != SNAP_NAME)
        .filter_map(|s| {
            s.health.map(|h| SnapHealth {
                name: s.name.into(),
                status: h.status.into(),
                message: h.message.into(),
                code: h.code.into(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.into()
}

/// How long a failed `set-health` waits before it is tried again.
pub const HEALTH_RETRY: Duration = Duration::from_secs(30);

/// Sends the snap's health to snapd each time it changes (`snapctl set-health`), and only then;
/// a call that fails is tried again after [`HEALTH_RETRY`]. Outside a snap it says so once and
/// returns. \[io\]
pub async fn report_health(mut wanted: watch::Receiver<Health>, shutdown: CancellationToken) {
    let Some(ctl) = Snapctl::from_env() else {
        info!("not running inside a snap (no SNAP_COOKIE): snap health is not reported to snapd");
        return;
    };
    let mut reporter = Reporter::default();
    let mut failing = false;
    loop {
        let health = wanted.borrow_and_update().clone();
        if let Some(due) = reporter.due(&health) {
            let status = due.status.as_str();
            let message = (!due.message.is_empty()).then_some(due.message.as_str());
            let code = (!due.code.is_empty()).then_some(due.code.as_str());
            let call = ctl.set_health(status, message, code);
            match tokio::time::timeout(SNAPD_CALL_TIMEOUT, call).await {
                Ok(Ok(())) => {
                    info!(health = %health, "snap health set");
                    reporter.accepted(health);
                    failing = false;
                }
                res => {
                    let error = match res {
                        Ok(Err(err)) => err.to_string(),
                        _ => "snapctl did not answer in time".to_string(),
                    };
                    if !failing {
                        warn!(%error, "cannot set the snap's health; trying again");
                    }
                    failing = true;
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            res = wanted.changed() => if res.is_err() { return },
            () = tokio::time::sleep(HEALTH_RETRY), if failing => {}
        }
    }
}

/// The latest health and check results, for the control socket's `checks` request (the
/// check-health hook). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Latest {
    inner: Arc<Mutex<Option<LatestRun>>>,
}

/// A run's health and results.
type LatestRun = (Arc<Health>, Arc<CheckSet>);

impl Latest {
    /// Records a run's health and results.
    pub fn set(&self, health: Arc<Health>, set: Arc<CheckSet>) {
        if let Ok(mut latest) = self.inner.lock() {
            *latest = Some((health, set));
        }
    }

    /// The `checks` reply: `{"health": {"status", "message", "code"}, "document": …}`; before the
    /// first run, the health is `waiting` and the document `null`.
    pub fn reply(&self) -> serde_json::Value {
        let latest = self.inner.lock().ok().and_then(|l| l.clone());
        let (health, document) = match latest {
            Some((health, set)) => {
                (health, serde_json::from_slice(&set.json()).unwrap_or(serde_json::Value::Null))
            }
            None => (
                Arc::new(health::map(&[], &Situation { starting: true, ..Situation::default() })),
                serde_json::Value::Null,
            ),
        };
        serde_json::json!({
            "health": {"status": health.status.as_str(), "message": health.message, "code": health.code},
            "document": document,
        })
    }
}

/// A health from a `checks` reply.
///
/// # Errors
/// When the reply has no valid health.
pub fn health_from_reply(reply: &serde_json::Value) -> Result<Health, String> {
    let h = &reply["health"];
    let status = match h["status"].as_str() {
        Some("okay") => health::Status::Okay,
        Some("waiting") => health::Status::Waiting,
        Some("blocked") => health::Status::Blocked,
        Some("error") => health::Status::Error,
        other => return Err(format!("the daemon sent no valid health status ({other:?})")),
    };
    let text = |key: &str| h[key].as_str().unwrap_or_default().to_string();
    let health = Health { status, message: text("message"), code: text("code") };
    health.validate()?;
    Ok(health)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::encode::sample_snapshot;
    use serde_json::Value;

    fn config(settings: &[&str]) -> Config {
        let settings: Vec<(String, Value)> =
            settings.iter().map(|s| crate::config::parse_setting(s).unwrap()).collect();
        crate::config::load(&Value::Null, &settings).unwrap().config
    }

    #[test]
    fn a_run_encodes_the_set_the_changes_and_the_health() {
        let mut checker = Checker::new();
        let snapshot = sample_snapshot();
        let none = Situation::default();
        let out = checker.run(1, &snapshot, &Facts::default(), &none, &Config::default(), 0.0);
        let doc: Value = serde_json::from_slice(&out.set.json()).unwrap();
        assert_eq!(doc["state"], "OK");
        assert_eq!(doc["timestamp"], "1970-01-01T00:00:00Z");
        let n = doc["checks"].as_array().unwrap().len();
        assert_eq!(String::from_utf8_lossy(&out.set.sse()).matches("event: check\n").count(), n);
        // Every result is new on the first run.
        let changes = out.changes.unwrap();
        assert_eq!(changes.seq, 1);
        assert_eq!(changes.sse, out.set.sse());
        assert_eq!(*out.health, Health::okay());
        assert!(String::from_utf8_lossy(&out.set.prometheus())
            .contains("pocketses_check_state{check=\"load\"} 0\n"));
        // Nothing changed: no event.
        let out = checker.run(2, &snapshot, &Facts::default(), &none, &Config::default(), 60.0);
        assert!(out.changes.is_none());
        // A threshold set live turns / CRIT at once (the first CRIT after OK waits for
        // failures-before-critical, set to 1 here).
        let crit =
            config(&["checks.filesystem.crit=0:1", "checks.filesystem.failures-before-critical=1"]);
        let out = checker.run(3, &snapshot, &Facts::default(), &none, &crit, 120.0);
        let changes = String::from_utf8_lossy(&out.changes.unwrap().sse).to_string();
        assert!(
            changes
                .starts_with("event: check\ndata: {\"check\":\"filesystem:/\",\"state\":\"CRIT\""),
            "{changes}"
        );
        assert!(changes.contains("\"since\":\"1970-01-01T00:02:00Z\""), "{changes}");
        assert_eq!(out.health.status, health::Status::Error);
        assert_eq!(out.health.code, "filesystem-critical");
        let doc: Value = serde_json::from_slice(&out.set.json()).unwrap();
        assert_eq!(doc["state"], "CRIT");
        assert_eq!(doc["exit-code"], 2);
    }

    #[test]
    fn the_health_is_mapped_again_only_when_a_state_or_the_situation_changes() {
        let mut checker = Checker::new();
        let snapshot = sample_snapshot();
        let none = Situation::default();
        let crit = config(&["checks.memory.crit=101:", "checks.memory.failures-before-critical=1"]);
        let run = |checker: &mut Checker, situation: &Situation, config: &Config, t: f64| {
            checker.run(1, &snapshot, &Facts::default(), situation, config, t).health
        };
        let first = run(&mut checker, &none, &crit, 0.0);
        assert_eq!(first.code, "memory-critical");
        // Nothing changed: the same health, not a new one.
        let again = run(&mut checker, &none, &crit, 1.0);
        assert!(Arc::ptr_eq(&first, &again));
        // The situation changed: mapped again (CRIT still wins over a missing plug).
        let blocked =
            Situation { missing_plugs: vec!["mount-observe".into()], ..Situation::default() };
        let later = run(&mut checker, &blocked, &crit, 2.0);
        assert!(!Arc::ptr_eq(&first, &later));
        assert_eq!(*later, *first);
        // A state changed: memory back to OK, the plug shows.
        let ok = run(&mut checker, &blocked, &Config::default(), 3.0);
        assert_eq!((ok.status, ok.code.as_str()), (health::Status::Blocked, "needs-mount-observe"));
        // A starting situation is never what a run reports.
        let starting = Situation { starting: true, ..Situation::default() };
        assert_eq!(*run(&mut checker, &starting, &Config::default(), 4.0), Health::okay());
    }

    #[test]
    fn vanished_checks_are_sent_once_as_removed() {
        let mut checker = Checker::new();
        let none = Situation::default();
        let snapshot = sample_snapshot();
        checker.run(1, &snapshot, &Facts::default(), &none, &Config::default(), 0.0);
        let off = config(&["checks.load.enabled=false"]);
        let out = checker.run(2, &snapshot, &Facts::default(), &none, &off, 1.0);
        let sse = String::from_utf8_lossy(&out.changes.unwrap().sse).to_string();
        assert_eq!(sse.matches("event: check").count(), 1);
        assert!(sse.contains("\"check\":\"load\"") && sse.contains("\"removed\":true"), "{sse}");
    }

    #[test]
    fn missing_plugs_block_the_snap() {
        let mut checker = Checker::new();
        let blocked =
            Situation { missing_plugs: vec!["mount-observe".into()], ..Situation::default() };
        let out = checker.run(
            1,
            &sample_snapshot(),
            &Facts::default(),
            &blocked,
            &Config::default(),
            0.0,
        );
        assert_eq!(out.health.status, health::Status::Blocked);
    }

    #[test]
    fn spools_are_read_once_a_minute_and_their_age_grows_in_between() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("spool");
        let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let t0_ms = 1_800_000_000_000;
        let limits = crate::spool::Limits::default();
        let mut spool = crate::spool::Spool::open(&root.join("influx"), limits).unwrap();
        spool.append_batch(&[b"one"], t0).unwrap();
        let mut watch = SpoolWatch::default();
        let facts = watch.facts(&root, t0_ms + 5_000);
        assert_eq!(facts.len(), 1);
        assert_eq!((facts[0].name.as_str(), facts[0].oldest_pending_seconds), ("influx", Some(5)));
        // Acknowledged on disk, but not read again before a minute: the age grows.
        spool.ack(1).unwrap();
        let facts = watch.facts(&root, t0_ms + 35_000);
        assert_eq!(facts[0].oldest_pending_seconds, Some(35));
        let facts = watch.facts(&root, t0_ms + 65_000);
        assert_eq!(facts[0].oldest_pending_seconds, None);
    }

    #[test]
    fn the_fleet_clients_state_makes_the_facts() {
        use crate::fleet::state::{Action, Stage, Status};
        let action = |id: &str, stage: Stage, details: &[&str]| Action {
            stage,
            details: details.iter().map(|d| d.to_string()).collect(),
            ..Action::new(id, "bundle.swu", "1.0", None, 0)
        };
        let status = Status {
            server: "https://fleet".into(),
            controller_id: "c1".into(),
            last_poll: Some(990),
            last_success: Some(900),
            last_error: Some("cannot connect to https://fleet/: connection refused".into()),
            current: Some(action("8", Stage::Downloading, &["1/3"])),
            history: vec![action(
                "7",
                Stage::Failed,
                &["downloaded", "cannot verify bundle: bad signature"],
            )],
            ..Status::default()
        };
        let facts = fleet_facts(&status, 1000.0, 500.0).unwrap();
        assert_eq!(facts.silent_for, 100.0);
        assert_eq!(
            facts.error.as_deref(),
            Some("cannot connect to https://fleet/: connection refused")
        );
        let last = facts.last_action.unwrap();
        assert_eq!((&*last.id, &*last.stage), ("7", "failed"));
        assert_eq!(last.detail.as_deref(), Some("cannot verify bundle: bad signature"));
        // A final `current` is the last one; a client that never got an answer counts from the start.
        let status = Status {
            server: "https://fleet".into(),
            current: Some(action("9", Stage::Done, &[])),
            ..Status::default()
        };
        let facts = fleet_facts(&status, 1000.0, 500.0).unwrap();
        assert_eq!(facts.silent_for, 500.0);
        let last = facts.last_action.unwrap();
        assert_eq!((&*last.id, &*last.stage, last.detail), ("9", "done", None));
        let started = Status { server: "https://fleet".into(), ..Status::default() };
        assert_eq!(fleet_facts(&started, 1.0, 0.0).unwrap().last_action, None);
        // A client that never started gives nothing to judge.
        assert_eq!(fleet_facts(&Status::default(), 1.0, 0.0), None);
    }

    #[test]
    fn the_fleet_facts_come_from_the_clients_memory_not_its_file() {
        // The client's status file is there at start (a previous run) and then goes away: the
        // facts are those of the handle the daemon shares, read in place.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet-status.json");
        std::fs::write(
            &path,
            r#"{"server":"https://fleet","controller-id":"c1","last-success":900,"last-error":"refused","polls":3,"errors":1,"bytes-downloaded":0}"#,
        )
        .unwrap();
        let fleet = crate::fleet::daemon::Fleet::new(path.clone());
        std::fs::remove_file(&path).unwrap();
        let facts = fleet_state(&fleet, 1000.0, 0.0).unwrap();
        assert_eq!((facts.silent_for, facts.error.as_deref()), (100.0, Some("refused")));
        // A handle that never ran and has no file: nothing.
        let fresh = crate::fleet::daemon::Fleet::new(dir.path().join("none.json"));
        assert_eq!(fleet_state(&fresh, 1000.0, 0.0), None);
    }

    #[test]
    fn sinks_fail_since_their_last_delivery_or_the_start() {
        use crate::push::sink::SinkStatus;
        let status = |name: &str, state: &str, last_success: Option<u64>| SinkStatus {
            name: name.into(),
            state: state.into(),
            last_success,
            ..SinkStatus::default()
        };
        let facts = sink_facts(
            &[
                status("a", "ok", Some(10)),
                status("b", "failing", Some(900)),
                status("c", "unauthorized", None),
                status("d", "disabled", None),
            ],
            1000.0,
            500.0,
        );
        let got: Vec<(&str, f64)> =
            facts.iter().map(|f| (f.name.as_str(), f.failing_for)).collect();
        assert_eq!(got, [("a", 0.0), ("b", 100.0), ("c", 500.0)]);
    }

    #[test]
    fn sink_facts_written_over_the_last_run_keep_what_did_not_change() {
        use crate::push::sink::SinkStatus;
        let status = |name: &str, state: &str, error: Option<&str>| SinkStatus {
            name: name.into(),
            state: state.into(),
            last_error: error.map(String::from),
            ..SinkStatus::default()
        };
        let update = |out: &mut Vec<SinkFacts>, statuses: &[SinkStatus], now: f64| {
            let mut at = 0;
            for s in statuses {
                update_sink(out, &mut at, s, now, 500.0);
            }
            out.truncate(at);
        };
        let first = [
            status("a", "ok", None),
            status("b", "failing", Some("cannot connect")),
            status("c", "disabled", None),
        ];
        let mut out = Vec::new();
        update(&mut out, &first, 1000.0);
        assert_eq!(out, sink_facts(&first, 1000.0, 500.0));
        let (state_a, error_b) = (Arc::clone(&out[0].state), out[1].last_error.clone().unwrap());
        // The same sinks a run later: the same texts, only the time moved.
        update(&mut out, &first, 1010.0);
        assert_eq!(out, sink_facts(&first, 1010.0, 500.0));
        assert!(Arc::ptr_eq(&out[0].state, &state_a));
        assert!(Arc::ptr_eq(out[1].last_error.as_ref().unwrap(), &error_b));
        // A state and an error that changed are new; a sink gone is gone; one enabled counts.
        let second = [
            status("a", "throttled", None),
            status("b", "failing", Some("refused")),
            status("c", "ok", None),
        ];
        update(&mut out, &second, 1020.0);
        assert_eq!(out, sink_facts(&second, 1020.0, 500.0));
        assert_eq!(&*out[0].state, "throttled");
        let third = [status("c", "ok", None)];
        update(&mut out, &third, 1030.0);
        assert_eq!(out, sink_facts(&third, 1030.0, 500.0));
        update(&mut out, &[], 1040.0);
        assert!(out.is_empty());
    }

    #[test]
    fn fleet_facts_written_over_the_last_run_equal_fresh_ones() {
        use crate::fleet::state::{Action, Stage, Status};
        let action = |id: &str, stage: Stage, details: &[&str]| Action {
            stage,
            details: details.iter().map(|d| d.to_string()).collect(),
            ..Action::new(id, "bundle.swu", "1.0", None, 0)
        };
        let server = || Status { server: "https://fleet".into(), ..Status::default() };
        let statuses = [
            server(),
            Status { last_error: Some("refused".into()), last_success: Some(900), ..server() },
            Status {
                last_error: Some("refused".into()),
                history: vec![action("7", Stage::Failed, &["bad signature"])],
                ..server()
            },
            Status {
                current: Some(action("8", Stage::Downloading, &[])),
                history: vec![action("7", Stage::Failed, &["bad signature"])],
                ..server()
            },
            Status { current: Some(action("8", Stage::Done, &[])), ..server() },
            Status::default(),
            Status { current: Some(action("9", Stage::Cancelled, &["by the server"])), ..server() },
        ];
        let mut out = None;
        for (i, status) in statuses.iter().enumerate() {
            let now = 1000.0 + i as f64;
            update_fleet(&mut out, status, now, 500.0);
            assert_eq!(out, fleet_facts(status, now, 500.0), "{i}");
            // Again, unchanged: the same texts, not new ones.
            let before = out.clone();
            update_fleet(&mut out, status, now, 500.0);
            assert_eq!(out, before, "{i}");
            if let (Some(a), Some(b)) = (&out, &before) {
                if let (Some(x), Some(y)) = (&a.error, &b.error) {
                    assert!(Arc::ptr_eq(x, y), "{i}");
                }
                if let (Some(x), Some(y)) = (&a.last_action, &b.last_action) {
                    assert!(Arc::ptr_eq(&x.id, &y.id) && Arc::ptr_eq(&x.stage, &y.stage), "{i}");
                }
            }
        }
    }

    #[test]
    fn gathered_facts_follow_their_sources() {
        use crate::push::sink::SinkStatus;
        let dir = tempfile::tempdir().unwrap();
        let snapd = SnapdView::default();
        let mut gathered = Gathered::default();
        let sinks = vec![SinkStatus {
            name: "vm".into(),
            state: "failing".into(),
            last_success: Some(900),
            ..SinkStatus::default()
        }];
        let fleet_path = dir.path().join("fleet-status.json");
        std::fs::write(&fleet_path, r#"{"server":"https://fleet","controller-id":"c1","last-success":950,"polls":0,"errors":0,"bytes-downloaded":0}"#).unwrap();
        let fleet = crate::fleet::daemon::Fleet::new(fleet_path);
        let spool_dir = dir.path().join("spool");
        let sources = Sources {
            snapd: &snapd,
            spool_dir: &spool_dir,
            sinks: Some(&sinks),
            fleet: Some(&fleet),
            started: 500.0,
        };
        let (facts, situation) = gathered.gather(&sources, 1000.0, 1_000_000);
        assert_eq!(facts.snapd, None, "the daemon does not use snapd");
        assert_eq!(facts.sinks, sink_facts(&sinks, 1000.0, 500.0));
        assert_eq!(facts.fleet.as_ref().map(|f| f.silent_for), Some(50.0));
        assert!(facts.spools.is_empty() && situation.missing_plugs.is_empty());
        // snapd answers, with a plug missing; the fleet is turned off, the sinks go away.
        snapd.mark_used(900.0);
        snapd.record(990.0, true, None, None, vec!["mount-observe".into()]);
        let sources = Sources { sinks: None, fleet: None, ..sources };
        let (facts, situation) = gathered.gather(&sources, 1000.0, 1_000_000);
        assert_eq!(facts.snapd.as_ref().map(|s| s.silent_for), Some(0.0));
        assert_eq!((facts.sinks.len(), facts.fleet.is_none()), (0, true));
        assert_eq!(situation.missing_plugs, ["mount-observe"]);
        // snapd stops answering: the plugs stay as last seen, the silence counts.
        snapd.record(1000.0, false, Some("refused".into()), None, Vec::new());
        let (facts, situation) = gathered.gather(&sources, 1030.0, 1_000_000);
        assert_eq!(facts.snapd.as_ref().map(|s| s.silent_for), Some(40.0));
        assert_eq!(situation.missing_plugs, ["mount-observe"]);
    }

    #[test]
    fn snapd_silence_is_counted_from_the_last_answer() {
        let view = SnapdView::default();
        assert_eq!(view.facts(10.0), None, "not used");
        {
            let mut known = view.lock();
            known.used = true;
            known.started = 100.0;
            known.error = Some("not reachable".into());
        }
        assert_eq!(view.facts(130.0).unwrap().silent_for, 30.0);
        view.lock().last_answer = Some(120.0);
        assert_eq!(view.facts(130.0).unwrap().silent_for, 10.0);
        view.lock().error = None;
        assert_eq!(view.facts(130.0).unwrap().silent_for, 0.0);
    }

    #[test]
    fn other_snaps_only_when_they_set_a_health() {
        let snap = |name: &str, status: Option<&str>| crate::snapd::Snap {
            name: name.to_string(),
            health: status.map(|s| crate::snapd::SnapHealth {
                status: s.to_string(),
                message: "m".repeat(7),
                ..Default::default()
            }),
            ..Default::default()
        };
        let got = others_health(vec![
            snap("zz", Some("error")),
            snap(SNAP_NAME, Some("okay")),
            snap("core22", None),
            snap("aa", Some("okay")),
        ]);
        let names: Vec<&str> = got.iter().map(|s| &*s.name).collect();
        assert_eq!(names, ["aa", "zz"]);
    }

    #[test]
    fn the_control_reply_round_trips_the_health() {
        let latest = Latest::default();
        let waiting = health_from_reply(&latest.reply()).unwrap();
        assert_eq!(waiting.status, health::Status::Waiting);
        let error =
            Health::new(health::Status::Error, "load is critical", "load-critical").unwrap();
        latest.set(Arc::new(error.clone()), Arc::new(CheckSet::new(1, 0.0, Vec::new())));
        let reply = latest.reply();
        assert_eq!(reply["document"]["state"], "OK");
        assert_eq!(health_from_reply(&reply).unwrap(), error);
        assert!(health_from_reply(&serde_json::json!({"health": {"status": "fine"}})).is_err());
    }
}
