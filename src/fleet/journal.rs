//! The fleet journal, `fleet.json` in the state directory: which action is being applied,
//! from which bundle, how far it got, the snapd changes it started and how it ended.
//! \[io\] in [`load`], [`save`] and [`acknowledge`]; the record and its transitions are pure.
//!
//! It is written atomically (temporary file, fsync, rename, fsync of the directory) at
//! every step that matters: before and after verification, before a snap or model is posted
//! to snapd, as soon as snapd names the change, when the change needs a reboot, and at the end.
//! A daemon that restarts (or a device that reboots) in the middle reads it back and
//! [`super::apply::resume`] re-attaches to the change in flight; the result is reported only
//! when every change is ready, and marked [`Journal::reported`] once the caller has told the
//! server (or the user).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::apply::{ApplyError, ErrorKind, Outcome, Step};

/// The journal's file name in the state directory.
pub const FILE: &str = "fleet.json";

/// Path of `fleet.json` in the state directory the daemon and every command share
/// ([`crate::paths::state_dir`]: `$SNAP_DATA` in the snap).
pub fn default_path() -> PathBuf {
    crate::paths::state_dir().join(FILE)
}

/// How far an action got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// The bundle's signature and files are being checked and extracted.
    Verifying,
    /// snapd is being asked, and its changes followed.
    Applying,
    /// A change waits for the device to reboot (a base, kernel or gadget), or snapd announced
    /// a system restart.
    Rebooting,
    /// Every change is Done.
    Done,
    /// Refused or failed; nothing more happens.
    Failed,
}

impl Stage {
    /// The word used in `fleet.json`, progress and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Verifying => "verifying",
            Stage::Applying => "applying",
            Stage::Rebooting => "rebooting",
            Stage::Done => "done",
            Stage::Failed => "failed",
        }
    }

    /// Whether the action is over (done or failed).
    pub fn is_final(self) -> bool {
        matches!(self, Stage::Done | Stage::Failed)
    }
}

/// One step of the plan and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StepRecord {
    /// What to do.
    pub step: Step,
    /// snapd's change, once snapd named it (assertions have none: snapd answers at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<String>,
    /// snapd's summary of the change.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
    /// `pending` before it starts, `posting` while snapd is asked, then the change's status.
    pub status: String,
    /// Whether the step is over (the change is ready, or the assertions were added).
    #[serde(default)]
    pub ready: bool,
    /// snapd's error, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub err: Option<String>,
}

impl StepRecord {
    /// A step not started yet.
    pub fn pending(step: Step) -> StepRecord {
        StepRecord {
            step,
            change: None,
            summary: String::new(),
            status: "pending".to_string(),
            ready: false,
            err: None,
        }
    }

    /// Whether the step ended well.
    pub fn is_done(&self) -> bool {
        self.ready && self.status == "Done"
    }
}

/// The journal of the current (or last) action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Journal {
    /// The server's action id (DDI), or `local-…` for `bundle apply`.
    pub action: String,
    /// The bundle file.
    pub bundle: PathBuf,
    /// The bundle's version, once verified.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// How far it got.
    pub stage: Stage,
    /// The plan, and each step's change.
    #[serde(default)]
    pub steps: Vec<StepRecord>,
    /// Why it failed (`cannot apply bundle: …` without the prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// What kind of failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_kind: Option<ErrorKind>,
    /// More lines about the failure (snapd's error lines, failed tasks' logs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    /// Whether the final result was handed to the server or the user ([`acknowledge`]).
    #[serde(default)]
    pub reported: bool,
}

impl Journal {
    /// A new action, about to be verified.
    pub fn new(action: &str, bundle: &Path) -> Journal {
        Journal {
            action: action.to_string(),
            bundle: bundle.to_path_buf(),
            version: String::new(),
            stage: Stage::Verifying,
            steps: Vec::new(),
            failure: None,
            failure_kind: None,
            details: Vec::new(),
            reported: false,
        }
    }

    /// The change ids snapd gave, in order.
    pub fn changes(&self) -> Vec<String> {
        self.steps.iter().filter_map(|s| s.change.clone()).collect()
    }

    /// The index of the first step that is not over, if any.
    pub fn next_step(&self) -> Option<usize> {
        self.steps.iter().position(|s| !s.ready)
    }

    /// The final result, once the action is over: success only when every step is Done.
    pub fn result(&self) -> Option<Result<Outcome, ApplyError>> {
        match self.stage {
            Stage::Done if self.steps.iter().all(StepRecord::is_done) => Some(Ok(Outcome {
                action: self.action.clone(),
                version: self.version.clone(),
                changes: self.changes(),
            })),
            Stage::Done => Some(Err(ApplyError {
                kind: ErrorKind::Snapd,
                message: "internal error: the journal says done, but not every change is Done"
                    .to_string(),
                details: Vec::new(),
            })),
            Stage::Failed => Some(Err(ApplyError {
                kind: self.failure_kind.unwrap_or(ErrorKind::Snapd),
                message: self.failure.clone().unwrap_or_else(|| "unknown failure".to_string()),
                details: self.details.clone(),
            })),
            _ => None,
        }
    }

    /// Ends the action with `err`.
    pub fn fail(&mut self, err: &ApplyError) {
        self.stage = Stage::Failed;
        self.failure = Some(err.message.clone());
        self.failure_kind = Some(err.kind);
        self.details.clone_from(&err.details);
    }
}

/// Reads the journal; `None` when there is none.
///
/// # Errors
/// When the file exists but cannot be read or parsed (the message names it).
pub fn load(path: &Path) -> Result<Option<Journal>, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("cannot parse {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {}", path.display(), crate::error::describe_io(&e))),
    }
}

/// Writes the journal atomically: a temporary file next to it, fsync, rename, fsync of the
/// directory, so a crash leaves the old journal or the new one, never half of one.
///
/// # Errors
/// When the directory cannot be created or written.
pub fn save(path: &Path, journal: &Journal) -> Result<(), String> {
    let io = |what: &Path, e: std::io::Error| {
        format!("cannot write {}: {}", what.display(), crate::error::describe_io(&e))
    };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let tmp = path.with_extension("json.tmp");
    let mut text = serde_json::to_string_pretty(journal)
        .map_err(|e| format!("cannot encode the fleet journal: {e}"))?;
    text.push('\n');
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Marks the final result of `action` as handed on (feedback sent, or printed), so
/// [`super::apply::resume`] does not return it again.
///
/// # Errors
/// When the journal cannot be read or written.
pub fn acknowledge(path: &Path, action: &str) -> Result<(), String> {
    if let Some(mut journal) = load(path)? {
        if journal.action == action && journal.stage.is_final() && !journal.reported {
            journal.reported = true;
            save(path, &journal)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap_step(file: &str) -> Step {
        Step::Snap { file: file.into(), dangerous: false }
    }

    #[test]
    fn round_trip_and_atomic_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join(FILE);
        assert_eq!(load(&path).unwrap(), None);
        let mut j = Journal::new("12", Path::new("/var/snap/pocketses/common/fleet/12.swu"));
        j.steps.push(StepRecord::pending(Step::Assertions { file: "a.assert".into() }));
        j.steps.push(StepRecord::pending(snap_step("hello_1.snap")));
        j.steps[1].change = Some("7".into());
        save(&path, &j).unwrap();
        assert_eq!(load(&path).unwrap(), Some(j.clone()));
        let names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [FILE]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"do\": \"snap\""), "{text}");
        assert_eq!(j.changes(), ["7"]);
        assert_eq!(j.next_step(), Some(0));
        std::fs::write(&path, "{").unwrap();
        let e = load(&path).unwrap_err();
        assert!(e.starts_with(&format!("cannot parse {}: ", path.display())), "{e}");
    }

    #[test]
    fn results_only_when_over_and_success_only_when_all_done() {
        let mut j = Journal::new("3", Path::new("b.swu"));
        assert_eq!(j.result(), None);
        j.stage = Stage::Applying;
        j.steps.push(StepRecord::pending(snap_step("a.snap")));
        assert_eq!(j.result(), None);
        j.stage = Stage::Done;
        assert!(j.result().unwrap().is_err(), "a pending step is not success");
        j.steps[0].ready = true;
        j.steps[0].status = "Done".into();
        j.steps[0].change = Some("4".into());
        j.version = "1.0".into();
        assert_eq!(
            j.result(),
            Some(Ok(Outcome {
                action: "3".into(),
                version: "1.0".into(),
                changes: vec!["4".into()]
            }))
        );
        let err = ApplyError {
            kind: ErrorKind::Refused,
            message: "signed by untrusted key K".into(),
            details: vec![],
        };
        j.fail(&err);
        assert_eq!(j.result(), Some(Err(err)));
    }

    #[test]
    fn acknowledge_marks_only_a_finished_action() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        acknowledge(&path, "1").unwrap();
        let mut j = Journal::new("1", Path::new("b.swu"));
        save(&path, &j).unwrap();
        acknowledge(&path, "1").unwrap();
        assert!(!load(&path).unwrap().unwrap().reported, "not over yet");
        j.stage = Stage::Failed;
        save(&path, &j).unwrap();
        acknowledge(&path, "2").unwrap();
        assert!(!load(&path).unwrap().unwrap().reported, "another action");
        acknowledge(&path, "1").unwrap();
        assert!(load(&path).unwrap().unwrap().reported);
    }

    #[test]
    fn stages() {
        let words: Vec<&str> =
            [Stage::Verifying, Stage::Applying, Stage::Rebooting, Stage::Done, Stage::Failed]
                .iter()
                .map(|s| s.as_str())
                .collect();
        assert_eq!(words, ["verifying", "applying", "rebooting", "done", "failed"]);
        assert_eq!(serde_json::to_string(&Stage::Rebooting).unwrap(), "\"rebooting\"");
        assert!(Stage::Done.is_final() && Stage::Failed.is_final() && !Stage::Rebooting.is_final());
    }
}
