//! What the fleet client knows and shows: the stages of an action and the moves between them,
//! the cancel decision, the progress lines, the status document `fleet status` reads, the SSE
//! `fleet` event and the `pocketses_fleet_*` families. \[pure\]
//!
//! The daemon ([`super::daemon`]) owns one [`Status`], changes it only through the functions
//! here, and writes it atomically to `fleet-status.json` in the state directory after each change.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::ddi;
use crate::metrics::encode::prometheus::{Family, Kind, Sample};

/// How many finished actions `fleet history` keeps.
pub const HISTORY: usize = 20;

/// Where an action is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Its artifact is being downloaded (or waits to be resumed).
    Downloading,
    /// The bundle's signature and files are being checked.
    Verifying,
    /// snapd is applying it.
    Applying,
    /// snapd asked for a reboot; the result comes after it.
    Rebooting,
    /// Applied with success.
    Done,
    /// Ended in failure (the reason is in the details).
    Failed,
    /// Stopped by the server before anything was applied.
    Cancelled,
}

/// Every stage, in the order of the `pocketses_fleet_action_stage` samples.
pub const STAGES: [Stage; 7] = [
    Stage::Downloading,
    Stage::Verifying,
    Stage::Applying,
    Stage::Rebooting,
    Stage::Done,
    Stage::Failed,
    Stage::Cancelled,
];

impl Stage {
    /// The stage's name, as in the SSE event and `fleet status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Downloading => "downloading",
            Stage::Verifying => "verifying",
            Stage::Applying => "applying",
            Stage::Rebooting => "rebooting",
            Stage::Done => "done",
            Stage::Failed => "failed",
            Stage::Cancelled => "cancelled",
        }
    }

    /// Whether the action is over.
    pub fn is_final(self) -> bool {
        matches!(self, Stage::Done | Stage::Failed | Stage::Cancelled)
    }

    /// The DDI view of a running stage (what decides a cancel); `None` once over.
    pub fn ddi(self) -> Option<ddi::Stage> {
        match self {
            Stage::Downloading => Some(ddi::Stage::Downloading),
            Stage::Verifying => Some(ddi::Stage::Verifying),
            Stage::Applying => Some(ddi::Stage::Applying),
            Stage::Rebooting => Some(ddi::Stage::Rebooting),
            Stage::Done | Stage::Failed | Stage::Cancelled => None,
        }
    }

    /// The move from `self` to `to`, when the stage machine allows it:
    /// downloading → verifying → applying → (rebooting →) done, any running stage → failed,
    /// and → cancelled only before snapd was asked anything.
    pub fn next(self, to: Stage) -> Option<Stage> {
        use Stage::*;
        let ok = matches!(
            (self, to),
            (Downloading, Verifying)
                | (Verifying, Applying)
                | (Applying, Rebooting | Done)
                | (Rebooting, Done)
                | (Downloading | Verifying | Applying | Rebooting, Failed)
                | (Downloading | Verifying, Cancelled)
        );
        ok.then_some(to)
    }
}

/// The final result of an action, as DDI feedback says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// `closed` / `success`.
    Success,
    /// `closed` / `failure`.
    Failure,
}

/// One action: a deployment the server sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Action {
    /// The server's action id.
    pub id: String,
    /// The artifact's file name.
    pub file: String,
    /// Its version, when the server named one (the chunk's `version`).
    #[serde(default)]
    pub version: String,
    /// Where it is.
    pub stage: Stage,
    /// 0–100.
    pub progress: u8,
    /// The latest detail lines (progress, snapd's task summaries, the reason of a failure).
    #[serde(default)]
    pub details: Vec<String>,
    /// The result, once over (`None` when cancelled or still running).
    #[serde(default)]
    pub result: Option<Outcome>,
    /// Bytes of the artifact on disk.
    #[serde(default)]
    pub downloaded: u64,
    /// The artifact's declared size.
    #[serde(default)]
    pub size: Option<u64>,
    /// When it started, seconds since the epoch.
    pub started: u64,
    /// When it last changed.
    pub updated: u64,
    /// Whether the final feedback reached the server.
    #[serde(default)]
    pub reported: bool,
    /// Downloaded, reported `downloaded`, and waiting until the server allows the update
    /// (`update: skip`, a maintenance window that is `unavailable`).
    #[serde(default)]
    pub waiting: bool,
}

impl Action {
    /// A new action, downloading.
    pub fn new(id: &str, file: &str, version: &str, size: Option<u64>, now: u64) -> Action {
        Action {
            id: id.to_string(),
            file: file.to_string(),
            version: version.to_string(),
            stage: Stage::Downloading,
            progress: 0,
            details: Vec::new(),
            result: None,
            downloaded: 0,
            size,
            started: now,
            updated: now,
            reported: false,
            waiting: false,
        }
    }

    /// Moves to `to` when the stage machine allows it (see [`Stage::next`]); returns whether it
    /// moved. `result` follows: `Done` is success, `Failed` is failure, `Cancelled` none.
    pub fn advance(&mut self, to: Stage, details: Vec<String>, now: u64) -> bool {
        let Some(stage) = self.stage.next(to) else { return false };
        self.stage = stage;
        self.waiting = false;
        self.details = details;
        self.updated = now;
        self.result = match stage {
            Stage::Done => Some(Outcome::Success),
            Stage::Failed => Some(Outcome::Failure),
            _ => None,
        };
        if stage == Stage::Done {
            self.progress = 100;
        }
        true
    }

    /// Whether `self` and `other` are the same but for a running download's figures
    /// (`downloaded`, `progress`), which change with every chunk (see [`Status::durable_eq`]).
    pub fn durable_eq(&self, other: &Action) -> bool {
        let Action {
            id,
            file,
            version,
            stage,
            progress: _,
            details,
            result,
            downloaded: _,
            size,
            started,
            updated,
            reported,
            waiting,
        } = self;
        *id == other.id
            && *file == other.file
            && *version == other.version
            && *stage == other.stage
            && *details == other.details
            && *result == other.result
            && *size == other.size
            && *started == other.started
            && *updated == other.updated
            && *reported == other.reported
            && *waiting == other.waiting
    }

    /// The SSE `fleet` event's data: `{"action","stage","progress","details","result"}`.
    pub fn event(&self) -> Value {
        json!({
            "action": self.id,
            "stage": self.stage.as_str(),
            "progress": self.progress,
            "details": self.details,
            "result": self.result,
        })
    }
}

/// The percentage of a download, when its size is known. \[pure\]
pub fn percent(done: u64, size: Option<u64>) -> Option<u8> {
    let size = size.filter(|s| *s > 0)?;
    let p = u128::from(done.min(size)) * 100 / u128::from(size);
    u8::try_from(p).ok()
}

/// Whether a download's progress is worth a feedback: every 10 % step (and 100 %), so a
/// download sends at most eleven. \[pure\]
pub fn progress_step(before: Option<u8>, now: Option<u8>) -> Option<u8> {
    let now = now?;
    match before {
        Some(b) if now / 10 <= b / 10 => None,
        _ => Some(now),
    }
}

/// The feedback line gooseBit turns into its progress bar (SWUpdate's words). \[pure\]
pub fn downloaded_line(percent: u8) -> String {
    format!("Downloaded {percent}%")
}

/// What to do with a `cancelAction` for `stop_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelDecision {
    /// Stop the running action and confirm (`closed`/`success`).
    Accept,
    /// Refuse (`rejected`): snapd is at work or a reboot is pending.
    Refuse(ddi::Stage),
    /// Nothing of that id runs here: confirm, there is nothing to stop.
    Nothing,
}

/// Decides a cancel from the running action. \[pure\]
pub fn cancel_decision(current: Option<&Action>, stop_id: &str) -> CancelDecision {
    match current.filter(|a| a.id == stop_id).and_then(|a| a.stage.ddi()) {
        None => CancelDecision::Nothing,
        Some(stage) if stage.cancellable() => CancelDecision::Accept,
        Some(stage) => CancelDecision::Refuse(stage),
    }
}

/// What the device does with an offered deployment, given what runs. \[pure\]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// A new action: start downloading.
    Start,
    /// The running action: carry on (resume a download that was interrupted).
    Continue,
    /// Another action is still being applied: wait for it before this one.
    Busy,
    /// `download: skip`: nothing to do yet.
    Skip,
    /// The action is downloaded and reported so, and the server still does not allow the
    /// update (`update: skip`, maintenance window `unavailable`): nothing to do, nothing to say.
    Wait,
    /// Already finished here but the final feedback did not reach the server: send it again.
    Report,
}

/// Decides an offer. \[pure\]
pub fn offer(deployment: &ddi::Deployment, current: Option<&Action>) -> Offer {
    match current {
        Some(a) if a.id == deployment.id && a.stage.is_final() && !a.reported => Offer::Report,
        Some(a) if a.id == deployment.id && a.waiting && !deployment.may_install() => Offer::Wait,
        Some(a) if a.id == deployment.id && !a.stage.is_final() => Offer::Continue,
        Some(a) if !a.stage.is_final() && !a.stage.ddi().is_some_and(|s| s.cancellable()) => {
            Offer::Busy
        }
        _ if deployment.download == ddi::Handling::Skip => Offer::Skip,
        _ => Offer::Start,
    }
}

/// The status document: `fleet-status.json`, `fleet status --json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Status {
    /// The server, without secrets.
    pub server: String,
    /// The controller id in use.
    pub controller_id: String,
    /// The daemon's process id.
    #[serde(default)]
    pub pid: u32,
    /// Last poll attempt, seconds since the epoch.
    pub last_poll: Option<u64>,
    /// Last poll that got an answer.
    pub last_success: Option<u64>,
    /// The next poll is due then.
    pub next_poll: Option<u64>,
    /// The last error (poll, download, feedback), cleared by a good poll.
    pub last_error: Option<String>,
    /// Polls since the daemon started.
    pub polls: u64,
    /// Errors since the daemon started.
    pub errors: u64,
    /// Artifact bytes downloaded since the daemon started.
    pub bytes_downloaded: u64,
    /// The action in progress, or the last one while its final feedback is not sent.
    pub current: Option<Action>,
    /// Finished actions, newest first, at most [`HISTORY`].
    #[serde(default)]
    pub history: Vec<Action>,
}

impl Status {
    /// Whether `self` and `other` agree on what must survive a restart: the server, the
    /// controller id, the last error, the action (all of it but the bytes and percentage of a
    /// running download: the part file on disk is what a resumed download starts from) and the
    /// history. The counters, the poll times and the pid live in the daemon's memory, which
    /// `fleet status` asks over the control socket; a change of them alone is not written.
    pub fn durable_eq(&self, other: &Status) -> bool {
        // Destructured, so that a new field has to be placed on one side or the other.
        let Status {
            server,
            controller_id,
            pid: _,
            last_poll: _,
            last_success: _,
            next_poll: _,
            last_error,
            polls: _,
            errors: _,
            bytes_downloaded: _,
            current,
            history,
        } = self;
        let same_action = match (current, &other.current) {
            (Some(a), Some(b)) => a.durable_eq(b),
            (None, None) => true,
            _ => false,
        };
        *server == other.server
            && *controller_id == other.controller_id
            && *last_error == other.last_error
            && same_action
            && *history == other.history
    }

    /// Moves a finished, reported `current` into the history.
    pub fn retire(&mut self) {
        if let Some(a) = self.current.take_if(|a| a.stage.is_final() && a.reported) {
            self.history.insert(0, a);
            self.history.truncate(HISTORY);
        }
    }

    /// The `pocketses_fleet_*` families.
    pub fn families(&self) -> Vec<Family> {
        let one = |name: &str, help: &str, kind: Kind, value: f64| Family {
            name: name.to_string(),
            help: help.to_string(),
            kind,
            samples: vec![Sample::new(value)],
        };
        let mut out = vec![
            one(
                "pocketses_fleet_polls_total",
                "Polls of the fleet server since start.",
                Kind::Counter,
                self.polls as f64,
            ),
            one(
                "pocketses_fleet_errors_total",
                "Fleet client errors (polls, downloads, feedback) since start.",
                Kind::Counter,
                self.errors as f64,
            ),
            one(
                "pocketses_fleet_downloaded_bytes_total",
                "Artifact bytes downloaded from the fleet server since start.",
                Kind::Counter,
                self.bytes_downloaded as f64,
            ),
        ];
        if let Some(t) = self.last_success {
            out.push(one(
                "pocketses_fleet_last_poll_timestamp_seconds",
                "When the fleet server last answered a poll, seconds since the epoch.",
                Kind::Gauge,
                t as f64,
            ));
        }
        let stage = self.current.as_ref().map(|a| a.stage);
        out.push(Family {
            name: "pocketses_fleet_action_stage".to_string(),
            help:
                "1 for the stage of the current fleet action, 0 for the others (all 0 when none)."
                    .to_string(),
            kind: Kind::Gauge,
            samples: STAGES
                .iter()
                .map(|s| Sample {
                    labels: vec![("stage".to_string(), s.as_str().to_string())],
                    value: if Some(*s) == stage { 1.0 } else { 0.0 },
                })
                .collect(),
        });
        out
    }
}

/// `fleet status` as text. \[pure\]
pub fn render(status: &Status, now: u64) -> String {
    let ago = |t: Option<u64>| match t {
        Some(t) => format!("{} s ago", now.saturating_sub(t)),
        None => "never".to_string(),
    };
    let mut out = String::new();
    out.push_str(&format!("server:         {}\n", status.server));
    out.push_str(&format!("controller-id:  {}\n", status.controller_id));
    out.push_str(&format!("last poll:      {}\n", ago(status.last_poll)));
    out.push_str(&format!("last answer:    {}\n", ago(status.last_success)));
    if let Some(next) = status.next_poll {
        out.push_str(&format!("next poll:      in {} s\n", next.saturating_sub(now)));
    }
    if let Some(err) = &status.last_error {
        out.push_str(&format!("last error:     {err}\n"));
    }
    match &status.current {
        Some(a) => out.push_str(&format!(
            "action:         {} {} {} {}%{}\n",
            a.id,
            a.file,
            a.stage.as_str(),
            a.progress,
            a.details.last().map(|d| format!(" ({d})")).unwrap_or_default()
        )),
        None => out.push_str("action:         none\n"),
    }
    if let Some(a) = status.history.first() {
        out.push_str(&format!("last result:    {}\n", history_line(a)));
    }
    out
}

/// One line of `fleet history`. \[pure\]
pub fn history_line(a: &Action) -> String {
    let result = match a.result {
        Some(Outcome::Success) => "success",
        Some(Outcome::Failure) => "failure",
        None => a.stage.as_str(),
    };
    let why = a.details.last().map(|d| format!(": {d}")).unwrap_or_default();
    format!(
        "{} action {} {} {}{why}",
        crate::fleet::ddi::feedback_time(a.updated),
        a.id,
        a.file,
        result
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(stage: Stage) -> Action {
        let mut a = Action::new("7", "b.swu", "1.0.1", Some(100), 10);
        a.stage = stage;
        a
    }

    #[test]
    fn the_stage_machine_moves_forward_only() {
        use Stage::*;
        assert_eq!(Downloading.next(Verifying), Some(Verifying));
        assert_eq!(Verifying.next(Applying), Some(Applying));
        assert_eq!(Applying.next(Rebooting), Some(Rebooting));
        assert_eq!(Rebooting.next(Done), Some(Done));
        assert_eq!(Applying.next(Done), Some(Done));
        for s in [Downloading, Verifying, Applying, Rebooting] {
            assert_eq!(s.next(Failed), Some(Failed), "{s:?}");
        }
        // Skipping verification, going back, leaving a final stage, cancelling snapd's work:
        for (from, to) in [
            (Downloading, Applying),
            (Downloading, Done),
            (Applying, Downloading),
            (Done, Failed),
            (Failed, Done),
            (Cancelled, Downloading),
            (Applying, Cancelled),
            (Rebooting, Cancelled),
        ] {
            assert_eq!(from.next(to), None, "{from:?} → {to:?}");
        }
    }

    /// A client that polled a server, with an action downloading and one done.
    fn polled() -> Status {
        Status {
            server: "http://h".into(),
            controller_id: "d".into(),
            current: Some(action(Stage::Downloading)),
            history: vec![action(Stage::Done)],
            ..Status::default()
        }
    }

    #[test]
    fn a_polls_times_and_counters_are_not_durable() {
        let before = polled();
        let mut after = before.clone();
        after.pid = 9;
        after.last_poll = Some(100);
        after.last_success = Some(100);
        after.next_poll = Some(160);
        after.polls = 3;
        after.errors = 1;
        after.bytes_downloaded = 4096;
        let a = after.current.as_mut().unwrap();
        a.downloaded = 4096;
        a.progress = 40;
        assert!(before.durable_eq(&after));
        assert!(after.durable_eq(&before));
        assert!(before.durable_eq(&before));
    }

    #[test]
    fn what_a_restart_needs_is_durable() {
        let before = polled();
        type Change = fn(&mut Status);
        let changes: Vec<(&str, Change)> = vec![
            ("server", |s| s.server = "http://other".into()),
            ("controller id", |s| s.controller_id = "e".into()),
            ("last error", |s| s.last_error = Some("cannot poll".into())),
            ("no action", |s| s.current = None),
            ("history", |s| s.history.clear()),
            ("stage", |s| s.current.as_mut().unwrap().stage = Stage::Verifying),
            ("details", |s| s.current.as_mut().unwrap().details = vec!["x".into()]),
            ("reported", |s| s.current.as_mut().unwrap().reported = true),
            ("waiting", |s| s.current.as_mut().unwrap().waiting = true),
            ("updated", |s| s.current.as_mut().unwrap().updated = 11),
            ("result", |s| s.current.as_mut().unwrap().result = Some(Outcome::Success)),
            ("id", |s| s.current.as_mut().unwrap().id = "8".into()),
            ("file", |s| s.current.as_mut().unwrap().file = "c.swu".into()),
            ("version", |s| s.current.as_mut().unwrap().version = "2".into()),
            ("size", |s| s.current.as_mut().unwrap().size = None),
            ("started", |s| s.current.as_mut().unwrap().started = 1),
        ];
        for (what, change) in changes {
            let mut after = before.clone();
            change(&mut after);
            assert!(!before.durable_eq(&after), "{what}");
            assert!(!after.durable_eq(&before), "{what}");
        }
        let none = Status { current: None, ..before.clone() };
        assert!(none.durable_eq(&none.clone()));
    }

    #[test]
    fn advancing_sets_the_result() {
        let mut a = action(Stage::Downloading);
        assert!(a.advance(Stage::Verifying, vec![], 11));
        assert_eq!(a.result, None);
        assert!(!a.advance(Stage::Done, vec![], 12), "verifying cannot jump to done");
        assert!(a.advance(Stage::Applying, vec![], 12));
        assert!(a.advance(Stage::Done, vec!["ok".into()], 13));
        assert_eq!((a.result, a.progress, a.updated), (Some(Outcome::Success), 100, 13));
        let mut b = action(Stage::Verifying);
        assert!(b.advance(Stage::Failed, vec!["cannot read bundle: x".into()], 14));
        assert_eq!(b.result, Some(Outcome::Failure));
        let mut c = action(Stage::Downloading);
        assert!(c.advance(Stage::Cancelled, vec![], 15));
        assert_eq!(c.result, None);
    }

    #[test]
    fn the_event_has_the_dashboard_shape() {
        let mut a = action(Stage::Downloading);
        a.progress = 40;
        a.details = vec!["Downloaded 40%".into()];
        assert_eq!(
            a.event(),
            json!({"action": "7", "stage": "downloading", "progress": 40,
                   "details": ["Downloaded 40%"], "result": null})
        );
        a.advance(Stage::Failed, vec!["why".into()], 20);
        assert_eq!(a.event()["result"], "failure");
        assert_eq!(a.event()["stage"], "failed");
    }

    #[test]
    fn cancels_are_decided_by_how_far_the_action_went() {
        for (stage, want) in [
            (Stage::Downloading, CancelDecision::Accept),
            (Stage::Verifying, CancelDecision::Accept),
            (Stage::Applying, CancelDecision::Refuse(ddi::Stage::Applying)),
            (Stage::Rebooting, CancelDecision::Refuse(ddi::Stage::Rebooting)),
            (Stage::Done, CancelDecision::Nothing),
            (Stage::Failed, CancelDecision::Nothing),
        ] {
            assert_eq!(cancel_decision(Some(&action(stage)), "7"), want, "{stage:?}");
        }
        assert_eq!(cancel_decision(Some(&action(Stage::Applying)), "8"), CancelDecision::Nothing);
        assert_eq!(cancel_decision(None, "7"), CancelDecision::Nothing);
    }

    #[test]
    fn progress_is_sent_in_steps_of_ten() {
        assert_eq!(percent(0, Some(100)), Some(0));
        assert_eq!(percent(55, Some(100)), Some(55));
        assert_eq!(percent(500, Some(100)), Some(100));
        assert_eq!(percent(5, None), None);
        assert_eq!(percent(5, Some(0)), None);
        assert_eq!(percent(u64::MAX, Some(u64::MAX)), Some(100));
        assert_eq!(progress_step(None, Some(0)), Some(0));
        assert_eq!(progress_step(Some(0), Some(9)), None);
        assert_eq!(progress_step(Some(9), Some(10)), Some(10));
        assert_eq!(progress_step(Some(10), Some(35)), Some(35));
        assert_eq!(progress_step(Some(95), Some(100)), Some(100));
        assert_eq!(progress_step(Some(100), Some(100)), None);
        assert_eq!(progress_step(Some(3), None), None);
        assert_eq!(downloaded_line(40), "Downloaded 40%");
    }

    fn deployment(id: &str, download: ddi::Handling) -> ddi::Deployment {
        ddi::Deployment {
            id: id.into(),
            download,
            update: ddi::Handling::Attempt,
            window: None,
            chunks: vec![],
        }
    }

    #[test]
    fn offers_start_continue_wait_or_report() {
        let d = deployment("7", ddi::Handling::Forced);
        assert_eq!(offer(&d, None), Offer::Start);
        assert_eq!(offer(&d, Some(&action(Stage::Downloading))), Offer::Continue);
        let mut done = action(Stage::Failed);
        assert_eq!(offer(&d, Some(&done)), Offer::Report);
        done.reported = true;
        assert_eq!(offer(&d, Some(&done)), Offer::Start, "a reported action offered again is new");
        let other = deployment("8", ddi::Handling::Attempt);
        assert_eq!(offer(&other, Some(&action(Stage::Applying))), Offer::Busy);
        // A download of another action is dropped for the new one.
        assert_eq!(offer(&other, Some(&action(Stage::Downloading))), Offer::Start);
        assert_eq!(offer(&deployment("9", ddi::Handling::Skip), None), Offer::Skip);
    }

    #[test]
    fn a_downloaded_action_waits_until_the_update_is_allowed() {
        let mut skip = deployment("7", ddi::Handling::Forced);
        skip.update = ddi::Handling::Skip;
        let mut waiting = action(Stage::Downloading);
        // Downloaded but not yet reported so: go on (the download is checked, then reported).
        assert_eq!(offer(&skip, Some(&waiting)), Offer::Continue);
        waiting.waiting = true;
        assert_eq!(offer(&skip, Some(&waiting)), Offer::Wait);
        let mut closed_window = deployment("7", ddi::Handling::Forced);
        closed_window.window = Some(ddi::Window::Unavailable);
        assert_eq!(offer(&closed_window, Some(&waiting)), Offer::Wait);
        let mut open_window = closed_window.clone();
        open_window.window = Some(ddi::Window::Available);
        assert_eq!(offer(&open_window, Some(&waiting)), Offer::Continue, "allowed: apply");
        // Another action replaces a waiting download.
        assert_eq!(offer(&deployment("8", ddi::Handling::Forced), Some(&waiting)), Offer::Start);
        // Any move of the stage ends the wait.
        assert!(waiting.advance(Stage::Verifying, vec![], 2));
        assert!(!waiting.waiting);
    }

    #[test]
    fn retired_actions_become_history_newest_first_and_bounded() {
        let mut s = Status::default();
        for i in 0..25 {
            let mut a = action(Stage::Done);
            a.id = i.to_string();
            a.reported = true;
            s.current = Some(a);
            s.retire();
        }
        assert_eq!(s.history.len(), HISTORY);
        assert_eq!(s.history[0].id, "24");
        // Not reported yet: it stays current.
        s.current = Some(action(Stage::Failed));
        s.retire();
        assert!(s.current.is_some());
    }

    #[test]
    fn families_name_every_stage() {
        let mut s = Status { polls: 3, errors: 1, bytes_downloaded: 9, ..Status::default() };
        s.current = Some(action(Stage::Verifying));
        let fams = s.families();
        let names: Vec<&str> = fams.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "pocketses_fleet_polls_total",
                "pocketses_fleet_errors_total",
                "pocketses_fleet_downloaded_bytes_total",
                "pocketses_fleet_action_stage"
            ]
        );
        let stage = &fams[3];
        assert_eq!(stage.samples.len(), STAGES.len());
        let on: Vec<&str> = stage
            .samples
            .iter()
            .filter(|x| x.value == 1.0)
            .map(|x| x.labels[0].1.as_str())
            .collect();
        assert_eq!(on, ["verifying"]);
        s.last_success = Some(5);
        assert!(s
            .families()
            .iter()
            .any(|f| f.name == "pocketses_fleet_last_poll_timestamp_seconds"));
    }

    #[test]
    fn status_text_says_what_runs() {
        let mut s = Status {
            server: "http://h:1".into(),
            controller_id: "dev-1".into(),
            last_poll: Some(90),
            ..Status::default()
        };
        let text = render(&s, 100);
        assert!(text.contains("last poll:      10 s ago"), "{text}");
        assert!(text.contains("action:         none"), "{text}");
        let mut a = action(Stage::Downloading);
        a.progress = 30;
        a.details = vec!["Downloaded 30%".into()];
        s.current = Some(a);
        let text = render(&s, 100);
        assert!(
            text.contains("action:         7 b.swu downloading 30% (Downloaded 30%)"),
            "{text}"
        );
        let mut h = action(Stage::Failed);
        h.result = Some(Outcome::Failure);
        h.details = vec!["cannot read bundle: signed by untrusted key K".into()];
        assert!(history_line(&h)
            .ends_with("action 7 b.swu failure: cannot read bundle: signed by untrusted key K"));
    }
}
