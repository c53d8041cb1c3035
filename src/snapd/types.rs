//! Typed results of snapd's endpoints, field names as snapd spells them (`snapd:client/*.go`).
//!
//! \[pure\] Every struct tolerates fields snapd adds later (unknown fields are ignored) and
//! missing optional ones (`#[serde(default)]`), so a newer or older snapd still decodes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `GET /v2/system-info`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct SystemInfo {
    /// Always "16".
    pub series: String,
    /// snapd's version.
    pub version: String,
    /// Build id of the snapd binary.
    pub build_id: String,
    /// `os-release` `id` and `version-id`.
    pub os_release: OsRelease,
    /// true on classic systems, false on Ubuntu Core.
    pub on_classic: bool,
    /// Whether a user was created through the store.
    pub managed: bool,
    /// Running kernel.
    pub kernel_version: String,
    /// `strict` or `partial` (no full AppArmor).
    pub confinement: String,
    /// Architecture, e.g. amd64.
    pub architecture: String,
    /// `run`, `install`, `recover`, … (Ubuntu Core 20+).
    pub system_mode: String,
    /// Detected virtualization, if any.
    pub virtualization: String,
    /// Refresh schedule.
    pub refresh: Value,
}

/// `os-release` part of system-info.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct OsRelease {
    /// e.g. `ubuntu-core`, `debian`.
    pub id: String,
    /// e.g. `22`.
    pub version_id: String,
}

/// One installed snap (`client.Snap`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct Snap {
    /// Store id, empty for unasserted snaps.
    pub id: String,
    /// Snap name.
    pub name: String,
    /// One-line summary.
    pub summary: String,
    /// `active` or `installed`.
    pub status: String,
    /// `app`, `gadget`, `kernel`, `base`, `os`, `snapd`.
    #[serde(rename = "type")]
    pub snap_type: String,
    /// Base snap.
    pub base: String,
    /// Version string.
    pub version: String,
    /// Channel installed from.
    pub channel: String,
    /// Channel tracked for refreshes.
    pub tracking_channel: String,
    /// Revision, always a string ("x1" for unasserted installs).
    pub revision: String,
    /// `strict`, `classic` or `devmode`.
    pub confinement: String,
    /// Installed in devmode.
    pub devmode: bool,
    /// Apps and services.
    pub apps: Vec<App>,
    /// The health the snap last set (`snapctl set-health`, the check-health hook); absent when
    /// it never set one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<SnapHealth>,
}

/// A snap's health as snapd reports it (`client.SnapHealth`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct SnapHealth {
    /// The revision that set it.
    pub revision: String,
    /// When it was set, RFC 3339.
    pub timestamp: String,
    /// `okay`, `waiting`, `blocked`, `error`, or snapd's own `unknown`.
    pub status: String,
    /// Why, when not okay.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// A word for tools.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub code: String,
}

/// An app of a snap.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct App {
    /// Owning snap.
    pub snap: String,
    /// App name.
    pub name: String,
    /// Daemon type when a service (`simple`, …).
    pub daemon: String,
    /// Service enabled.
    pub enabled: bool,
    /// Service running.
    pub active: bool,
}

/// Status of a change or task (`snapd:overlord/state/status.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
pub enum Status {
    /// `Default`.
    #[default]
    Default,
    /// `Hold`: will not run.
    Hold,
    /// `Do`: queued.
    Do,
    /// `Doing`: running.
    Doing,
    /// `Done`: finished fine.
    Done,
    /// `Abort`: abort requested.
    Abort,
    /// `Undo`: queued for undo.
    Undo,
    /// `Undoing`: being undone.
    Undoing,
    /// `Undone`: undone after an error elsewhere.
    Undone,
    /// `Error`: failed.
    Error,
    /// `Wait`: waiting for an external event such as a reboot.
    Wait,
}

impl Status {
    /// snapd's string.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Default => "Default",
            Status::Hold => "Hold",
            Status::Do => "Do",
            Status::Doing => "Doing",
            Status::Done => "Done",
            Status::Abort => "Abort",
            Status::Undo => "Undo",
            Status::Undoing => "Undoing",
            Status::Undone => "Undone",
            Status::Error => "Error",
            Status::Wait => "Wait",
        }
    }

    /// Whether snapd counts this status as ready (Done, Undone, Hold, Error).
    pub fn is_ready(self) -> bool {
        matches!(self, Status::Done | Status::Undone | Status::Hold | Status::Error)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change (`GET /v2/changes/{id}`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct Change {
    /// Change id (a decimal string).
    pub id: String,
    /// e.g. `remodel`, `configure-snap`.
    pub kind: String,
    /// Human summary.
    pub summary: String,
    /// Overall status.
    pub status: Status,
    /// Whether the change is finished.
    pub ready: bool,
    /// snapd's error text when it failed (`cannot perform the following tasks: …`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub err: Option<String>,
    /// When it was created.
    pub spawn_time: String,
    /// When it became ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_time: Option<String>,
    /// Its tasks.
    pub tasks: Vec<Task>,
}

/// A task of a change.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct Task {
    /// Task id.
    pub id: String,
    /// e.g. `download-snap`, `set-model`.
    pub kind: String,
    /// Human summary.
    pub summary: String,
    /// Status.
    pub status: Status,
    /// Progress.
    pub progress: Progress,
    /// Log lines.
    pub log: Vec<String>,
    /// When it was created.
    pub spawn_time: String,
    /// When it became ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_time: Option<String>,
    /// Task data snapd exposes (`affected-snaps`, …).
    #[serde(skip_serializing_if = "Value::is_null")]
    pub data: Value,
}

/// Progress of a task.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Progress {
    /// What is being counted (e.g. a snap name while downloading).
    pub label: String,
    /// Units done.
    pub done: u64,
    /// Units in all.
    pub total: u64,
}

impl Default for Progress {
    fn default() -> Self {
        Progress { label: String::new(), done: 0, total: 1 }
    }
}

/// `GET /v2/connections`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Connections {
    /// Connected plug/slot pairs.
    pub established: Vec<Connection>,
    /// Plugs involved.
    pub plugs: Vec<Plug>,
    /// Slots involved.
    pub slots: Vec<Value>,
    /// Connections removed by the user.
    pub undesired: Vec<Connection>,
}

impl Connections {
    /// Whether `snap:plug` has an established connection.
    pub fn is_connected(&self, snap: &str, plug: &str) -> bool {
        self.established.iter().any(|c| c.plug.snap == snap && c.plug.plug == plug)
            || self
                .plugs
                .iter()
                .any(|p| p.snap == snap && p.plug == plug && !p.connections.is_empty())
    }
}

/// One connection.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Connection {
    /// The slot end.
    pub slot: SlotRef,
    /// The plug end.
    pub plug: PlugRef,
    /// Interface name.
    pub interface: String,
    /// Made by `snap connect`.
    pub manual: bool,
    /// Made by the gadget's `connections:`.
    pub gadget: bool,
}

/// A plug reference.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct PlugRef {
    /// Snap.
    pub snap: String,
    /// Plug name.
    pub plug: String,
}

/// A slot reference.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct SlotRef {
    /// Snap.
    pub snap: String,
    /// Slot name.
    pub slot: String,
}

/// A plug with its connections.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Plug {
    /// Snap.
    pub snap: String,
    /// Plug name.
    pub plug: String,
    /// Interface.
    pub interface: String,
    /// Slots it is connected to.
    pub connections: Vec<SlotRef>,
}

/// One warning (`GET /v2/warnings`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct Warning {
    /// Text.
    pub message: String,
    /// First seen.
    pub first_added: String,
    /// Last seen.
    pub last_added: String,
    /// Last shown to a user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_shown: Option<String>,
}

/// Headers of an assertion as JSON (`?json=true`): string or list values.
pub type Headers = BTreeMap<String, Value>;

/// Assertions fetched as text, with snapd's count header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionText {
    /// The raw assertion stream (`application/x.ubuntu.assertion`).
    pub text: String,
    /// `X-Ubuntu-Assertions-Count`.
    pub count: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_decodes_snapd_shape() {
        let json = r#"{"id":"42","kind":"remodel","summary":"Refresh model assertion from revision 1 to 2","status":"Doing","ready":false,
 "spawn-time":"2024-08-09T12:00:00.123456789Z",
 "tasks":[{"id":"300","kind":"download-snap","summary":"Download snap \"pc\"","status":"Doing",
   "progress":{"label":"pc","done":1048576,"total":10485760},"spawn-time":"t","log":["x INFO y"],
   "data":{"affected-snaps":["pc"]}},
  {"id":"301","kind":"set-model","summary":"Set new model assertion","status":"Do",
   "progress":{"label":"","done":0,"total":1},"spawn-time":"t"}]}"#;
        let change: Change = serde_json::from_str(json).unwrap();
        assert_eq!(change.status, Status::Doing);
        assert!(!change.status.is_ready());
        assert_eq!(change.tasks.len(), 2);
        assert_eq!(change.tasks[0].progress.done, 1_048_576);
        assert_eq!(change.tasks[0].log, vec!["x INFO y"]);
        assert_eq!(change.tasks[1].status, Status::Do);
        assert_eq!(change.err, None);
    }

    #[test]
    fn status_strings_round_trip() {
        for s in [
            "Default", "Hold", "Do", "Doing", "Done", "Abort", "Undo", "Undoing", "Undone",
            "Error", "Wait",
        ] {
            let status: Status = serde_json::from_value(Value::String(s.to_string())).unwrap();
            assert_eq!(status.as_str(), s);
        }
        assert!(Status::Undone.is_ready() && Status::Hold.is_ready() && !Status::Wait.is_ready());
    }

    #[test]
    fn connections_find_a_plug() {
        let json = r#"{"established":[{"slot":{"snap":"snapd","slot":"snapd-control"},"plug":{"snap":"pocketses","plug":"snapd-control"},"interface":"snapd-control","manual":true}],"plugs":[],"slots":[]}"#;
        let conns: Connections = serde_json::from_str(json).unwrap();
        assert!(conns.is_connected("pocketses", "snapd-control"));
        assert!(!conns.is_connected("pocketses", "network"));
    }

    #[test]
    fn snap_revision_is_a_string() {
        let snap: Snap = serde_json::from_str(
            r#"{"name":"pocketses","revision":"x1","type":"app","confinement":"strict","apps":[{"snap":"pocketses","name":"daemon","daemon":"simple","enabled":true,"active":true}]}"#,
        )
        .unwrap();
        assert_eq!(snap.revision, "x1");
        assert_eq!(snap.snap_type, "app");
        assert!(snap.apps[0].active);
    }
}
