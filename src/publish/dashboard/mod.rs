//! The local dashboard: `GET /` on the HTTP listener, one page that updates live from the SSE stream.
//!
//! What the page shows comes from three places, none of them new work for the daemon:
//! the latest snapshot and the hour of history ([`super::history`]), both kept by the [`super::Hub`];
//! the device's facts (model, serial, snaps and their health) that [`device`] asks snapd for now
//! and then; and what other tasks already publish: check results (the hub keeps the latest for
//! `/v1/checks`) and remodel reports, whose state the [`Board`] folds so that a page opened later
//! shows the remodel in progress at once.
//!
//! Rendering is pure ([`page`]); the files the page loads are embedded in the binary and compressed
//! once ([`assets`]). The page subscribes to `/v1/metrics/stream` like any SSE client, so an open
//! page costs the daemon one SSE subscriber; there is no polling and no per-page state here.

pub mod assets;
pub mod device;
pub mod page;

use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::Value;

use super::history::History;
use crate::metrics::Snapshot;

/// What the dashboard keeps between pages: history, device facts and the state of the remodel in
/// progress. Shared through the [`super::Hub`], which also keeps the latest check results
/// ([`super::Hub::checks`]) for `/v1/checks`; the page reads those.
#[derive(Debug, Default)]
pub struct Board {
    history: Mutex<History>,
    device: Mutex<Arc<Device>>,
    action: Mutex<Action>,
    fleet: Mutex<FleetAction>,
}

impl Board {
    /// Adds a snapshot's figures to the history.
    pub fn record(&self, snapshot: &Snapshot) {
        if let Ok(mut history) = self.history.lock() {
            if history.is_empty() {
                if let Some(n) = bench_history() {
                    history.prefill(snapshot, n, 1.0);
                }
            }
            history.push(snapshot);
        }
    }

    /// `GET /v1/history`.
    pub fn history_json(&self) -> String {
        self.history.lock().map(|h| h.to_json()).unwrap_or_default()
    }

    /// Memory the history ring holds.
    pub fn history_bytes(&self) -> usize {
        self.history.lock().map(|h| h.heap_bytes()).unwrap_or(0)
    }

    /// The device's facts as last read.
    pub fn device(&self) -> Arc<Device> {
        self.device.lock().map(|d| Arc::clone(&d)).unwrap_or_default()
    }

    /// Replaces the device's facts; whether they changed.
    pub fn set_device(&self, device: Device) -> bool {
        match self.device.lock() {
            Ok(mut current) if **current != device => {
                *current = Arc::new(device);
                true
            }
            _ => false,
        }
    }

    /// Replaces the snaps (from the one `GET /v2/snaps` poller); whether they changed.
    pub fn set_snaps(&self, snaps: Vec<SnapHealth>) -> bool {
        match self.device.lock() {
            Ok(mut current) if current.snaps != snaps => {
                *current = Arc::new(Device { snaps, ..current.as_ref().clone() });
                true
            }
            _ => false,
        }
    }

    /// Folds a remodel report (`{"event":"remodel","type":…}`) into the action in progress.
    pub fn remodel_report(&self, json: &[u8]) {
        if let (Ok(event), Ok(mut action)) =
            (serde_json::from_slice::<Value>(json), self.action.lock())
        {
            action.apply(&event);
        }
    }

    /// The remodel (or other device action) in progress or last finished.
    pub fn action(&self) -> Action {
        self.action.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Folds a fleet report (`{"action","stage","progress","details","result"}`).
    pub fn fleet_report(&self, json: &[u8]) {
        if let (Ok(event), Ok(mut fleet)) =
            (serde_json::from_slice::<Value>(json), self.fleet.lock())
        {
            fleet.apply(&event);
        }
    }

    /// The fleet action in progress or last finished.
    pub fn fleet(&self) -> FleetAction {
        self.fleet.lock().map(|f| f.clone()).unwrap_or_default()
    }
}

/// `POCKETSES_BENCH_HISTORY=N`: the history starts with `N` points one second apart, as after `N`
/// cycles at `--interval 1` (at most [`super::history::MAX_POINTS`] are kept), so that the
/// benchmark measures the daemon's memory with the ring full without running for an hour
/// (docs/performance.md). Read when the ring is empty, that is at the first snapshot.
fn bench_history() -> Option<usize> {
    std::env::var("POCKETSES_BENCH_HISTORY").ok()?.parse().ok()
}

/// How many of a fleet action's detail lines the page keeps (the latest).
pub const FLEET_DETAILS: usize = 5;

/// The fleet action (a deployment from the fleet server) in progress or the last one, as folded
/// from SSE `fleet` reports: `{"action":ID,"stage":"downloading|verifying|applying|rebooting|
/// done|failed|cancelled","progress":0-100,"details":[…],"result":null|"success"|"failure"}`.
/// \[pure\]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetAction {
    /// The action's id; `None` when no fleet action was seen since the daemon started.
    pub action: Option<String>,
    /// The stage it is in.
    pub stage: String,
    /// Percent done, 0 to 100, when the report gave it.
    pub progress: Option<u8>,
    /// The latest detail lines, oldest first, at most [`FLEET_DETAILS`].
    pub details: Vec<String>,
    /// `success` or `failure` once it ended.
    pub result: Option<String>,
}

impl FleetAction {
    /// Folds one report; a report of another action starts afresh, one without an id is ignored.
    pub fn apply(&mut self, event: &Value) {
        let id = match event.get("action") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return,
        };
        if self.action.as_deref() != Some(id.as_str()) {
            *self = FleetAction { action: Some(id), ..FleetAction::default() };
        }
        if let Some(stage) = event.get("stage").and_then(Value::as_str) {
            self.stage = stage.to_string();
        }
        if let Some(p) = event.get("progress").and_then(Value::as_f64) {
            // Clamped, so a bad report never draws past the bar; NaN cannot come from JSON.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let p = p.clamp(0.0, 100.0) as u8;
            self.progress = Some(p);
        }
        if let Some(details) = event.get("details").and_then(Value::as_array) {
            let lines: Vec<String> =
                details.iter().filter_map(Value::as_str).map(str::to_string).collect();
            let skip = lines.len().saturating_sub(FLEET_DETAILS);
            self.details = lines.into_iter().skip(skip).collect();
        }
        match event.get("result").and_then(Value::as_str) {
            Some(result) => self.result = Some(result.to_string()),
            None if event.get("result").is_some() => self.result = None,
            None => {}
        }
        if self.stage == "done" {
            self.progress = Some(100);
        }
    }
}

/// The device as snapd describes it. \[pure\]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Device {
    /// `brand-id` of the model.
    pub brand: String,
    /// Model name.
    pub model: String,
    /// Grade (UC20+; empty before).
    pub grade: String,
    /// Revision of the model assertion.
    pub revision: String,
    /// Serial, once the device is registered.
    pub serial: Option<String>,
    /// Installed snaps, by name.
    pub snaps: Vec<SnapHealth>,
    /// Why the facts are missing or partial, in words.
    pub problem: Option<String>,
}

/// A snap and the health it reported with `snapctl set-health`. \[pure\]
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SnapHealth {
    /// Snap name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Revision.
    pub revision: String,
    /// `okay`, `waiting`, `blocked`, `error`; `None` when the snap never said (snapd: unknown).
    pub health: Option<Health>,
}

/// snapd's `health` object of a snap (`client.SnapHealth`). \[pure\]
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Health {
    /// `okay`, `waiting`, `blocked`, `error` or `unknown`.
    pub status: String,
    /// The snap's message.
    pub message: String,
    /// The snap's code.
    pub code: String,
}

/// A check results document: the JSON of `pocketses checks run --json`, `GET /v1/checks`. \[pure\]
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Checks {
    /// The worst state.
    pub state: String,
    /// One entry per check result.
    pub checks: Vec<CheckEntry>,
}

/// One check result (an entry of `checks[]`, and the data of an SSE `check` event). \[pure\]
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct CheckEntry {
    /// `filesystem:/var`, `memory`, …
    pub check: String,
    /// `OK`, `WARN`, `CRIT` or `UNKNOWN`.
    pub state: String,
    /// The measured value.
    pub value: Option<f64>,
    /// Its unit (`%`, `°C`, or empty).
    pub unit: String,
    /// The range that decided the state.
    pub threshold: Option<String>,
    /// A sentence.
    pub summary: String,
    /// Whether the state flaps.
    pub flapping: bool,
}

/// Order of states from best to worst, for the overall state. \[pure\]
pub fn severity(state: &str) -> u8 {
    match state {
        "OK" => 0,
        "WARN" => 1,
        "UNKNOWN" => 2,
        "CRIT" => 3,
        _ => 2,
    }
}

impl Checks {
    /// Reads a check results document; `None` when it is not one.
    pub fn from_json(json: &[u8]) -> Option<Checks> {
        serde_json::from_slice(json).ok()
    }

    /// Replaces (or adds) one entry, and recomputes the worst state.
    pub fn update(&mut self, entry: CheckEntry) {
        match self.checks.iter_mut().find(|c| c.check == entry.check) {
            Some(found) => *found = entry,
            None => self.checks.push(entry),
        }
        self.state = self
            .checks
            .iter()
            .map(|c| c.state.as_str())
            .max_by_key(|s| severity(s))
            .unwrap_or("OK")
            .to_string();
    }
}

/// The remodel in progress (or the last one), as folded from its reports. \[pure\]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Action {
    /// Change id; `None` when no remodel was seen since the daemon started.
    pub change: Option<String>,
    /// snapd's summary of the change.
    pub summary: String,
    /// The latest thing that happened, in words.
    pub step: String,
    /// Units done and in all, from the latest progress report.
    pub progress: Option<(u64, u64)>,
    /// The final status once ready (`Done`, `Error`, …).
    pub finished: Option<String>,
}

impl Action {
    /// Folds one remodel report into the state; reports of other kinds are ignored.
    pub fn apply(&mut self, event: &Value) {
        let text = |key: &str| event.get(key).and_then(Value::as_str).unwrap_or_default();
        let change = text("change");
        if !change.is_empty() && self.change.as_deref() != Some(change) {
            *self = Action { change: Some(change.to_string()), ..Action::default() };
        }
        match text("type") {
            "attached" => {
                self.summary = text("summary").to_string();
                self.step = format!("following ({})", text("status"));
            }
            "task" => {
                self.step = format!("{}: {}", text("summary"), text("status"));
                // A task that is done leaves the previous task's bar full, not stuck.
                self.progress = None;
            }
            "progress" => {
                let n = |key: &str| event.get(key).and_then(Value::as_u64).unwrap_or(0);
                self.step = match text("label") {
                    "" => text("summary").to_string(),
                    label => format!("{} ({label})", text("summary")),
                };
                self.progress = Some((n("done"), n("total")));
            }
            "waiting" => self.step = format!("waiting for snapd: {}", text("reason")),
            "maintenance" => self.step = text("message").to_string(),
            "resumed" => self.step = "snapd answers again".to_string(),
            "finished" => {
                let status = text("status");
                self.finished = Some(status.to_string());
                self.step = match event.get("err").and_then(Value::as_str) {
                    Some(err) => format!("{status}: {err}"),
                    None => status.to_string(),
                };
            }
            _ => {}
        }
    }

    /// Percent done, when a progress report gave a total.
    pub fn percent(&self) -> Option<u8> {
        if self.finished.as_deref() == Some("Done") {
            return Some(100);
        }
        let (done, total) = self.progress?;
        (total > 0).then(|| u8::try_from(done.min(total) * 100 / total).unwrap_or(100))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_action_follows_its_reports() {
        let mut action = Action::default();
        action.apply(&json!({"event":"remodel","type":"attached","change":"7","summary":"Refresh model assertion","status":"Doing"}));
        assert_eq!(action.change.as_deref(), Some("7"));
        assert_eq!(action.summary, "Refresh model assertion");
        action.apply(&json!({"event":"remodel","type":"progress","change":"7","id":"3","summary":"Download snap \"core22\"","label":"core22","done":25,"total":100}));
        assert_eq!(action.percent(), Some(25));
        assert_eq!(action.step, "Download snap \"core22\" (core22)");
        action.apply(&json!({"event":"remodel","type":"finished","change":"7","status":"Error","err":"cannot remodel"}));
        assert_eq!(action.finished.as_deref(), Some("Error"));
        assert_eq!(action.step, "Error: cannot remodel");
        // A new change starts afresh.
        action.apply(&json!({"event":"remodel","type":"task","change":"8","id":"1","kind":"set-model","summary":"Set new model","status":"Doing"}));
        assert_eq!(action.change.as_deref(), Some("8"));
        assert_eq!((action.finished.clone(), action.percent()), (None, None));
        action.apply(&json!({"event":"remodel","type":"finished","change":"8","status":"Done"}));
        assert_eq!(action.percent(), Some(100));
    }

    #[test]
    fn a_fleet_action_follows_its_reports() {
        let mut fleet = FleetAction::default();
        fleet.apply(&json!({"stage": "downloading", "progress": 10}));
        assert_eq!(fleet, FleetAction::default(), "no id, no action");
        fleet.apply(&json!({"action": 42, "stage": "downloading", "progress": 10, "details": ["core22 1/3"], "result": null}));
        assert_eq!(fleet.action.as_deref(), Some("42"));
        assert_eq!((fleet.stage.as_str(), fleet.progress), ("downloading", Some(10)));
        assert_eq!(fleet.details, ["core22 1/3"]);
        fleet.apply(&json!({"action": 42, "stage": "verifying", "progress": 250.0, "details": ["a", "b", "c", "d", "e", "f"]}));
        assert_eq!(fleet.progress, Some(100), "clamped");
        assert_eq!(fleet.details, ["b", "c", "d", "e", "f"], "the latest five");
        fleet.apply(&json!({"action": 42, "stage": "failed", "progress": 60, "result": "failure"}));
        assert_eq!(fleet.result.as_deref(), Some("failure"));
        // Another action starts afresh.
        fleet.apply(&json!({"action": "43", "stage": "done", "result": "success"}));
        assert_eq!(fleet.action.as_deref(), Some("43"));
        assert_eq!((fleet.progress, fleet.details.len()), (Some(100), 0));
        let board = Board::default();
        board.fleet_report(
            br#"{"action":7,"stage":"applying","progress":80,"details":[],"result":null}"#,
        );
        board.fleet_report(b"not json");
        assert_eq!(board.fleet().progress, Some(80));
    }

    #[test]
    fn progress_never_passes_100_or_divides_by_zero() {
        let mut action = Action { progress: Some((5, 0)), ..Action::default() };
        assert_eq!(action.percent(), None);
        action.progress = Some((150, 100));
        assert_eq!(action.percent(), Some(100));
    }

    #[test]
    fn a_check_update_replaces_one_entry_and_the_worst_state() {
        let mut checks = Checks::from_json(br#"{"state":"OK","exit-code":0,"checks":[{"check":"memory","state":"OK","value":90,"unit":"%","threshold":"10:","summary":"90 % available","flapping":false},{"check":"load","state":"OK","summary":"fine"}]}"#).unwrap();
        checks.update(serde_json::from_str(r#"{"check":"load","state":"CRIT","value":9,"unit":"","threshold":"4","summary":"load 9","flapping":false}"#).unwrap());
        assert_eq!(checks.state, "CRIT");
        assert_eq!(checks.checks.len(), 2);
        assert_eq!(checks.checks[1].summary, "load 9");
        assert!(Checks::from_json(b"{").is_none());
    }

    #[test]
    fn device_changes_are_noticed() {
        let board = Board::default();
        let device = Device { model: "m".into(), ..Device::default() };
        assert!(board.set_device(device.clone()));
        assert!(!board.set_device(device));
        assert_eq!(board.device().model, "m");
        // The poller's snaps replace the snaps only.
        let snaps = vec![SnapHealth { name: "core22".into(), ..SnapHealth::default() }];
        assert!(board.set_snaps(snaps.clone()));
        assert!(!board.set_snaps(snaps));
        assert_eq!((board.device().model.as_str(), board.device().snaps.len()), ("m", 1));
    }
}
