//! What a user sees of a remodel change: successive change states in, events and lines out. \[pure\]
//!
//! [`diff`] compares two states of snapd's change and yields [`RemodelEvent`]s (task transitions,
//! progress, the end). [`render_line`] gives the one plain line per event shown when stdout is
//! not a terminal; [`render_outcome`] explains the end. The pre-flight's outcome and the
//! command's own actions (abort, detach) are events too, so `remodel --json` prints only this type. The live terminal view
//! (indicatif bars) and the polling live in [`super::drive`]; the daemon publishes the same events
//! as JSON (`{"event":"remodel",...}`).

use std::fmt::Write as _;

use serde::Serialize;

use super::plan::{Plan, Refusal};
use crate::snapd::{Change, Status, Task};

/// One thing that happened to a remodel change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum RemodelEvent {
    /// The pre-flight passed: what the remodel will do (`remodel --json`, before anything is posted).
    Plan {
        /// The plan.
        plan: Plan,
        /// The new gadget whose layout was checked, if one was given.
        gadget: Option<String>,
        /// What became of the gadget layout check, in words: compatible, or why it was not
        /// checked (a classic device has no layout to check).
        #[serde(rename = "gadget-layout")]
        gadget_layout: String,
        /// What became of the new model's signature, in words.
        signature: String,
        /// What the store said about the snaps the remodel installs from it, in words (absent
        /// when none comes from the store).
        #[serde(skip_serializing_if = "Option::is_none")]
        store: Option<String>,
    },
    /// The pre-flight found reasons snapd would refuse; nothing was posted.
    Refused {
        /// Every refusal, in snapd's order.
        refusals: Vec<Refusal>,
    },
    /// `remodel --abort`: snapd was asked to abort the change.
    Abort {
        /// Change id.
        change: String,
        /// The change's status after the request.
        status: String,
    },
    /// The user stopped following (Ctrl-C); the change goes on in snapd.
    Detached {
        /// Change id.
        change: String,
    },
    /// pocketses started following the change.
    Attached {
        /// Change id.
        change: String,
        /// snapd's summary of the change.
        summary: String,
        /// The change's status when attaching.
        status: String,
    },
    /// A task changed status (or appeared, already past `Do`).
    Task {
        /// Change id.
        change: String,
        /// Task id.
        id: String,
        /// Task kind (`download-snap`, `set-model`, …).
        kind: String,
        /// Task summary.
        summary: String,
        /// New status.
        status: String,
        /// Previous status, when pocketses saw one.
        #[serde(skip_serializing_if = "Option::is_none")]
        from: Option<String>,
    },
    /// A running task reported progress.
    Progress {
        /// Change id.
        change: String,
        /// Task id.
        id: String,
        /// Task summary.
        summary: String,
        /// What is counted (often a snap name).
        label: String,
        /// Units done.
        done: u64,
        /// Units in all.
        total: u64,
    },
    /// snapd could not be reached (restarting, rebooting); pocketses keeps waiting.
    Waiting {
        /// Change id.
        change: String,
        /// Why, as the client saw it.
        reason: String,
    },
    /// snapd announced a restart of itself or of the device (`maintenance` in its replies).
    Maintenance {
        /// Change id.
        change: String,
        /// `daemon-restart` or `system-restart`.
        kind: String,
        /// snapd's text, e.g. "system is restarting".
        message: String,
    },
    /// snapd answers again after [`RemodelEvent::Waiting`].
    Resumed {
        /// Change id.
        change: String,
    },
    /// The change is ready.
    Finished {
        /// Change id.
        change: String,
        /// Final status (`Done`, `Error`, `Undone`, `Hold`).
        status: String,
        /// snapd's error, when it failed.
        #[serde(skip_serializing_if = "Option::is_none")]
        err: Option<String>,
    },
}

impl RemodelEvent {
    /// The event as published on the daemon's streams: `{"event":"remodel","type":…,…}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(map) = value.as_object_mut() {
            map.insert("event".to_string(), serde_json::Value::String("remodel".to_string()));
        }
        value
    }
}

fn task_event(change: &str, task: &Task, from: Option<Status>) -> RemodelEvent {
    RemodelEvent::Task {
        change: change.to_string(),
        id: task.id.clone(),
        kind: task.kind.clone(),
        summary: task.summary.clone(),
        status: task.status.as_str().to_string(),
        from: from.map(|s| s.as_str().to_string()),
    }
}

/// Whether a progress report is worth showing: the task counts more than one unit.
pub fn has_progress(task: &Task) -> bool {
    task.status == Status::Doing && task.progress.total > 1
}

/// Events between two observed states of one change (`previous` is `None` on attach).
pub fn diff(previous: Option<&Change>, next: &Change) -> Vec<RemodelEvent> {
    let mut out = Vec::new();
    let change = next.id.as_str();
    if previous.is_none() {
        out.push(RemodelEvent::Attached {
            change: change.to_string(),
            summary: next.summary.clone(),
            status: next.status.as_str().to_string(),
        });
    }
    for task in &next.tasks {
        let before = previous.and_then(|p| p.tasks.iter().find(|t| t.id == task.id));
        match before {
            Some(old) if old.status == task.status => {
                if has_progress(task) && old.progress != task.progress {
                    out.push(RemodelEvent::Progress {
                        change: change.to_string(),
                        id: task.id.clone(),
                        summary: task.summary.clone(),
                        label: task.progress.label.clone(),
                        done: task.progress.done,
                        total: task.progress.total,
                    });
                }
            }
            Some(old) => out.push(task_event(change, task, Some(old.status))),
            // Tasks still queued are not news; anything further along is.
            None if task.status == Status::Do => {}
            None => out.push(task_event(change, task, None)),
        }
        if before.is_none_or(|old| old.status != task.status) && has_progress(task) {
            out.push(RemodelEvent::Progress {
                change: change.to_string(),
                id: task.id.clone(),
                summary: task.summary.clone(),
                label: task.progress.label.clone(),
                done: task.progress.done,
                total: task.progress.total,
            });
        }
    }
    if next.ready && previous.is_none_or(|p| !p.ready) {
        out.push(RemodelEvent::Finished {
            change: change.to_string(),
            status: next.status.as_str().to_string(),
            err: next.err.clone(),
        });
    }
    out
}

/// The plain line for an event (no terminal), or `None` for events only the live view shows.
pub fn render_line(event: &RemodelEvent) -> Option<String> {
    match event {
        RemodelEvent::Attached { change, summary, status } => {
            Some(format!("change {change}: {summary} ({status})"))
        }
        RemodelEvent::Task { status, summary, .. } if status == "Wait" => Some(format!(
            "{status:<7} {summary} (snapd waits for a reboot; after it, `pocketses remodel --watch` or the daemon follows on)"
        )),
        RemodelEvent::Task { status, summary, .. } => Some(format!("{status:<7} {summary}")),
        RemodelEvent::Progress { .. } => None,
        RemodelEvent::Waiting { reason, .. } => Some(format!(
            "snapd is not answering ({reason}); it restarts during a remodel, waiting"
        )),
        RemodelEvent::Resumed { .. } => Some("snapd is back".to_string()),
        RemodelEvent::Maintenance { kind, message, .. } if kind == "system-restart" => Some(format!(
            "snapd: {message}; the remodel goes on after the reboot (the daemon follows it, or run `pocketses remodel --watch`)"
        )),
        RemodelEvent::Maintenance { message, .. } => Some(format!("snapd: {message}")),
        RemodelEvent::Finished { status, .. } => Some(format!("{status:<7} change is ready")),
        // The command's own text says these, with more context than the event carries.
        RemodelEvent::Plan { .. }
        | RemodelEvent::Refused { .. }
        | RemodelEvent::Abort { .. }
        | RemodelEvent::Detached { .. } => None,
    }
}

/// How a finished change ended, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `Done`: the device runs the new model.
    Done,
    /// `Undone`: something failed and snapd put everything back.
    Undone,
    /// `Error` (or `Hold`): failed.
    Failed,
}

/// The outcome of a ready change.
pub fn outcome(change: &Change) -> Outcome {
    match change.status {
        Status::Done => Outcome::Done,
        Status::Undone => Outcome::Undone,
        _ => Outcome::Failed,
    }
}

/// The closing explanation of a ready change: success, or snapd's error with the failing tasks' logs.
pub fn render_outcome(change: &Change) -> String {
    let mut out = String::new();
    match outcome(change) {
        Outcome::Done => {
            let _ = writeln!(out, "remodel done: {} (change {})", change.summary, change.id);
            return out;
        }
        Outcome::Undone => {
            let _ = writeln!(
                out,
                "remodel undone: snapd reverted every step, the device still runs its previous model (change {})",
                change.id
            );
        }
        Outcome::Failed => {
            let _ =
                writeln!(out, "remodel failed: change {} is {}", change.id, change.status.as_str());
        }
    }
    if let Some(err) = &change.err {
        let _ = writeln!(out, "snapd's error:");
        for line in err.lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    for task in change.tasks.iter().filter(|t| t.status == Status::Error) {
        let _ = writeln!(out, "failed task {} ({}): {}", task.id, task.kind, task.summary);
        for line in &task.log {
            let _ = writeln!(out, "  {line}");
        }
    }
    if outcome(change) == Outcome::Undone || change.status == Status::Error {
        let _ = writeln!(out, "see every task with: snap change {}", change.id);
    }
    out
}

#[cfg(test)]
mod tests {
    use expect_test::{expect, Expect};
    use serde_json::json;

    use super::*;

    fn change(status: &str, ready: bool, tasks: serde_json::Value) -> Change {
        serde_json::from_value(json!({
            "id": "29", "kind": "remodel", "summary": "Remodel device to canonical/ubuntu-core-22-amd64 (1)",
            "status": status, "ready": ready, "spawn-time": "2024-01-05T09:04:00Z", "tasks": tasks
        }))
        .expect("change")
    }

    fn task(id: &str, summary: &str, status: &str, done: u64, total: u64) -> serde_json::Value {
        json!({"id": id, "kind": "download-snap", "summary": summary, "status": status,
               "progress": {"label": "pc-kernel", "done": done, "total": total}, "spawn-time": "t"})
    }

    /// Feeds the states in order and renders every plain line.
    fn check(states: &[Change], want: Expect) {
        let mut lines = Vec::new();
        let mut previous: Option<&Change> = None;
        for state in states {
            for event in diff(previous, state) {
                match render_line(&event) {
                    Some(line) => lines.push(line),
                    None => lines.push(format!("  (progress {})", event.to_json())),
                }
            }
            previous = Some(state);
        }
        if let Some(last) = states.last().filter(|c| c.ready) {
            lines.push(render_outcome(last).trim_end().to_string());
        }
        want.assert_eq(&(lines.join("\n") + "\n"));
    }

    #[test]
    fn do_doing_done_with_progress() {
        let dl = "Download snap \"pc-kernel\" (1540) from channel \"22/stable\"";
        check(
            &[
                change(
                    "Do",
                    false,
                    json!([
                        task("1", dl, "Do", 0, 1),
                        task("2", "Set new model assertion", "Do", 0, 1)
                    ]),
                ),
                change(
                    "Doing",
                    false,
                    json!([
                        task("1", dl, "Doing", 0, 100),
                        task("2", "Set new model assertion", "Do", 0, 1)
                    ]),
                ),
                change(
                    "Doing",
                    false,
                    json!([
                        task("1", dl, "Doing", 50, 100),
                        task("2", "Set new model assertion", "Do", 0, 1)
                    ]),
                ),
                change(
                    "Doing",
                    false,
                    json!([
                        task("1", dl, "Done", 100, 100),
                        task("2", "Set new model assertion", "Doing", 0, 1)
                    ]),
                ),
                change(
                    "Done",
                    true,
                    json!([
                        task("1", dl, "Done", 100, 100),
                        task("2", "Set new model assertion", "Done", 1, 1)
                    ]),
                ),
            ],
            expect![[r#"
                change 29: Remodel device to canonical/ubuntu-core-22-amd64 (1) (Do)
                Doing   Download snap "pc-kernel" (1540) from channel "22/stable"
                  (progress {"change":"29","done":0,"event":"remodel","id":"1","label":"pc-kernel","summary":"Download snap \"pc-kernel\" (1540) from channel \"22/stable\"","total":100,"type":"progress"})
                  (progress {"change":"29","done":50,"event":"remodel","id":"1","label":"pc-kernel","summary":"Download snap \"pc-kernel\" (1540) from channel \"22/stable\"","total":100,"type":"progress"})
                Done    Download snap "pc-kernel" (1540) from channel "22/stable"
                Doing   Set new model assertion
                Done    Set new model assertion
                Done    change is ready
                remodel done: Remodel device to canonical/ubuntu-core-22-amd64 (1) (change 29)
            "#]],
        );
    }

    #[test]
    fn error_like_the_seed_shows_logs_and_err() {
        let mount = json!({"id": "40", "kind": "mount-snap", "summary": "Mount snap \"pc\" (146)", "status": "Error",
            "log": ["2024-01-05T09:09:54Z ERROR cannot remodel to an incompatible gadget: incompatible layout change: incompatible structure #4 (\"ubuntu-save\") change: new valid structure size range [33554432, 33554432] is not compatible with current ([16777216, 16777216])"],
            "spawn-time": "t"});
        let mut failed = change(
            "Error",
            true,
            json!([
                task(
                    "1",
                    "Download snap \"pc-kernel\" (1540) from channel \"22/stable\"",
                    "Undone",
                    1,
                    1
                ),
                mount
            ]),
        );
        failed.err = Some("cannot perform the following tasks:\n- Mount snap \"pc\" (146) (cannot remodel to an incompatible gadget: incompatible layout change: incompatible structure #4 (\"ubuntu-save\") change: new valid structure size range [33554432, 33554432] is not compatible with current ([16777216, 16777216]))".to_string());
        check(
            &[failed],
            expect![[r#"
                change 29: Remodel device to canonical/ubuntu-core-22-amd64 (1) (Error)
                Undone  Download snap "pc-kernel" (1540) from channel "22/stable"
                Error   Mount snap "pc" (146)
                Error   change is ready
                remodel failed: change 29 is Error
                snapd's error:
                  cannot perform the following tasks:
                  - Mount snap "pc" (146) (cannot remodel to an incompatible gadget: incompatible layout change: incompatible structure #4 ("ubuntu-save") change: new valid structure size range [33554432, 33554432] is not compatible with current ([16777216, 16777216]))
                failed task 40 (mount-snap): Mount snap "pc" (146)
                  2024-01-05T09:09:54Z ERROR cannot remodel to an incompatible gadget: incompatible layout change: incompatible structure #4 ("ubuntu-save") change: new valid structure size range [33554432, 33554432] is not compatible with current ([16777216, 16777216])
                see every task with: snap change 29
            "#]],
        );
    }

    #[test]
    fn undone_says_nothing_changed() {
        check(
            &[
                change("Doing", false, json!([task("1", "Prepare remodeling", "Doing", 0, 1)])),
                change("Undone", true, json!([task("1", "Prepare remodeling", "Undone", 1, 1)])),
            ],
            expect![[r#"
                change 29: Remodel device to canonical/ubuntu-core-22-amd64 (1) (Doing)
                Doing   Prepare remodeling
                Undone  Prepare remodeling
                Undone  change is ready
                remodel undone: snapd reverted every step, the device still runs its previous model (change 29)
                see every task with: snap change 29
            "#]],
        );
        assert_eq!(outcome(&change("Undone", true, json!([]))), Outcome::Undone);
        assert_eq!(outcome(&change("Hold", true, json!([]))), Outcome::Failed);
    }

    #[test]
    fn command_events_are_typed_like_the_others() {
        let abort = RemodelEvent::Abort { change: "7".into(), status: "Abort".into() };
        assert_eq!(
            abort.to_json(),
            json!({"event": "remodel", "type": "abort", "change": "7", "status": "Abort"})
        );
        let detached = RemodelEvent::Detached { change: "7".into() };
        assert_eq!(
            detached.to_json(),
            json!({"event": "remodel", "type": "detached", "change": "7"})
        );
        let refused = RemodelEvent::Refused { refusals: Vec::new() };
        assert_eq!(
            refused.to_json(),
            json!({"event": "remodel", "type": "refused", "refusals": []})
        );
        assert_eq!(render_line(&detached), None);
    }

    #[test]
    fn events_carry_the_remodel_tag() {
        let event =
            RemodelEvent::Waiting { change: "7".into(), reason: "connection refused".into() };
        assert_eq!(
            event.to_json(),
            json!({"event": "remodel", "type": "waiting", "change": "7", "reason": "connection refused"})
        );
        assert_eq!(
            render_line(&RemodelEvent::Resumed { change: "7".into() }).as_deref(),
            Some("snapd is back")
        );
        let reboot = RemodelEvent::Maintenance {
            change: "7".into(),
            kind: "system-restart".into(),
            message: "system is restarting".into(),
        };
        assert_eq!(
            render_line(&reboot).as_deref(),
            Some("snapd: system is restarting; the remodel goes on after the reboot (the daemon follows it, or run `pocketses remodel --watch`)")
        );
        let wait = RemodelEvent::Task {
            change: "7".into(),
            id: "3".into(),
            kind: "link-snap".into(),
            summary: "Make snap \"pc-kernel\" (1540) available to the system".into(),
            status: "Wait".into(),
            from: Some("Doing".into()),
        };
        assert_eq!(
            render_line(&wait).as_deref(),
            Some("Wait    Make snap \"pc-kernel\" (1540) available to the system (snapd waits for a reboot; after it, `pocketses remodel --watch` or the daemon follows on)")
        );
    }
}
