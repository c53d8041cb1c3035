//! Applying a signed bundle through snapd: verify, extract, then assertions, snaps and a
//! remodel, each snapd change followed to its end and recorded in the journal.
//! \[io\] at the edges ([`apply`], [`resume`], [`extract`]); the planning is pure ([`plan`],
//! [`vouches`], [`describe`], [`failure_lines`]).
//!
//! The order (docs/fleet.md):
//!
//! 1. Verify the signature against the trusted keys *before* anything is extracted, then
//!    stream every file into a staging directory under the state directory, checking its
//!    size and sha256 as it streams ([`super::bundle`] refuses `..`, absolute names, links
//!    and oversize entries). A refusal applies nothing.
//! 2. `POST /v2/assertions` for each assertion file, in the bundle's order.
//! 3. `POST /v2/snaps` (the multipart form of `snap install FILE`) for each snap, with
//!    `dangerous` only when no `snap-revision` assertion in the bundle has the file's
//!    `snap-sha3-384`. With a model in the bundle the snaps go with the remodel instead:
//!    snapd installs a new base, kernel or gadget only as part of a remodel.
//! 4. The remodel, when the bundle has a model: the pre-flight of `pocketses remodel`
//!    ([`crate::remodel::cmd::check`]) first, whose refusals become the failure text, then
//!    `POST /v2/model` (offline with the bundle's snaps and assertions when it has snaps).
//!
//! Every change is followed with [`crate::remodel::drive::follow`], through snapd restarts
//! and reboots; success needs every change Done. A failure carries snapd's own words.
//! [`resume`] picks an action up from the journal after the daemon or the device restarted.

use std::collections::BTreeMap;
use std::io::{self, BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use sha3::Digest as _;

use super::bundle::{self, Description, Kind};
use super::journal::{self, Journal, Stage, StepRecord};
use crate::remodel::drive;
use crate::remodel::view::{self, RemodelEvent};
use crate::snapd::{self, Change, Client, Status};

/// What kind of failure ended an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The bundle failed its checks (signature, names, sizes, hashes): nothing was applied.
    Refused,
    /// Another action is still being applied: nothing was done for this one.
    Busy,
    /// snapd refused a request, a change ended other than Done, or the remodel pre-flight
    /// found a reason snapd would refuse.
    Snapd,
    /// The state directory or the journal could not be written or read.
    State,
}

/// Why an action failed; shown as `cannot apply bundle: …`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot apply bundle: {message}")]
pub struct ApplyError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The reason, with snapd's own words where snapd gave them.
    pub message: String,
    /// More lines for the server's feedback or the terminal: snapd's error lines and the
    /// logs of the tasks that failed, or the pre-flight's refusals.
    pub details: Vec<String>,
}

impl ApplyError {
    /// The detail lines of a failure: the reason, then snapd's lines. \[pure\]
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![self.to_string()];
        lines.extend(self.details.iter().cloned());
        lines
    }

    fn new(kind: ErrorKind, message: impl Into<String>) -> ApplyError {
        ApplyError { kind, message: message.into(), details: Vec::new() }
    }
}

/// A successful action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Outcome {
    /// The action id.
    pub action: String,
    /// The bundle's version (what the device now reports as `sw_version`).
    pub version: String,
    /// snapd's changes, every one Done.
    pub changes: Vec<String>,
}

impl Outcome {
    /// The one detail line of a success, for the terminal and the server's feedback. \[pure\]
    pub fn summary(&self) -> String {
        let changes =
            if self.changes.is_empty() { "none".to_string() } else { self.changes.join(", ") };
        format!("version {} applied (changes {changes})", self.version)
    }
}

/// One progress report: the stage, how many steps are over out of how many, and detail
/// lines (snapd's task summaries as they change status, what is being asked of snapd).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// The stage.
    pub stage: Stage,
    /// Steps over.
    pub step: usize,
    /// Steps in all (0 while verifying).
    pub steps: usize,
    /// Lines to show or send as DDI feedback `details`.
    pub details: Vec<String>,
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "kebab-case")]
pub enum Step {
    /// `POST /v2/assertions` with the file's assertions.
    Assertions {
        /// The file in the bundle.
        file: String,
    },
    /// `POST /v2/snaps` with the file.
    Snap {
        /// The file in the bundle.
        file: String,
        /// Sent with `dangerous`: no assertion in the bundle vouches for it.
        dangerous: bool,
    },
    /// The remodel's pre-flight, then `POST /v2/model`.
    Remodel {
        /// The model assertion's file.
        file: String,
        /// Snap files sent with it (an offline remodel when there are any).
        #[serde(default)]
        snaps: Vec<String>,
        /// Assertion files sent with it (with the snaps).
        #[serde(default)]
        assertions: Vec<String>,
    },
}

/// What the plan needs to know about one file of a verified bundle.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileFacts {
    /// The file's name in the bundle.
    pub name: String,
    /// What it is.
    pub kind: Option<Kind>,
    /// A snap's sha3-384 as snapd writes it in `snap-sha3-384` (base64url, no padding).
    pub sha3_384: String,
    /// An assertion file's `snap-revision` assertions: their `snap-sha3-384` headers.
    pub vouches: Vec<String>,
}

/// Decides what to do, in which order, and which snaps need `dangerous`. \[pure\]
///
/// # Errors
/// A bundle with nothing to apply.
pub fn plan(files: &[FileFacts]) -> Result<Vec<Step>, String> {
    let of = |kind: Kind| files.iter().filter(move |f| f.kind == Some(kind));
    let vouched: Vec<&str> =
        of(Kind::Assertion).flat_map(|f| &f.vouches).map(String::as_str).collect();
    let assertions: Vec<String> = of(Kind::Assertion).map(|f| f.name.clone()).collect();
    let snaps: Vec<String> = of(Kind::Snap).map(|f| f.name.clone()).collect();
    let mut steps: Vec<Step> =
        assertions.iter().map(|file| Step::Assertions { file: file.clone() }).collect();
    match of(Kind::Model).next() {
        Some(model) => {
            let with_files = !snaps.is_empty();
            steps.push(Step::Remodel {
                file: model.name.clone(),
                assertions: if with_files { assertions } else { Vec::new() },
                snaps,
            });
        }
        None => {
            for snap in of(Kind::Snap) {
                let dangerous = !vouched.contains(&snap.sha3_384.as_str());
                steps.push(Step::Snap { file: snap.name.clone(), dangerous });
            }
        }
    }
    if steps.is_empty() {
        return Err("the bundle carries nothing to apply".to_string());
    }
    Ok(steps)
}

/// sha3-384 of `data` as snapd writes it (`snap-sha3-384`: base64url without padding).
pub fn encode_sha3_384(digest: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

/// The `snap-sha3-384` headers of the `snap-revision` assertions in an assertion file; an
/// empty list when it does not decode (snapd then refuses it at its step). \[pure\]
pub fn vouches(text: &[u8]) -> Vec<String> {
    crate::assertion::decode_stream(text)
        .unwrap_or_default()
        .iter()
        .filter(|a| a.type_name() == "snap-revision")
        .map(|a| a.header_str("snap-sha3-384").to_string())
        .filter(|h| !h.is_empty())
        .collect()
}

/// The line that says what a step does. \[pure\]
pub fn describe(step: &Step) -> String {
    match step {
        Step::Assertions { file } => format!("adding the assertions in {file:?}"),
        Step::Snap { file, dangerous: false } => format!("installing {file:?}"),
        Step::Snap { file, dangerous: true } => format!(
            "installing {file:?} as dangerous (no snap-revision in the bundle vouches for it)"
        ),
        Step::Remodel { file, snaps, .. } if snaps.is_empty() => {
            format!("remodelling to the model in {file:?}")
        }
        Step::Remodel { file, snaps, .. } => format!(
            "remodelling to the model in {file:?}, offline with {}",
            snaps.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// snapd's words about a change that did not end Done: its error, line by line, then each
/// failed task's summary and log. \[pure\]
pub fn failure_lines(change: &Change) -> Vec<String> {
    let mut lines: Vec<String> = change
        .err
        .as_deref()
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    for task in change.tasks.iter().filter(|t| t.status == Status::Error) {
        lines.push(format!("failed task {} ({}): {}", task.id, task.kind, task.summary));
        lines.extend(task.log.iter().map(|l| format!("  {l}")));
    }
    lines
}

/// The failure of a change that is ready but not Done. \[pure\]
pub fn change_failure(change: &Change) -> ApplyError {
    let err = change.err.as_deref().map(str::trim).filter(|e| !e.is_empty());
    let message = match err {
        Some(err) => format!(
            "change {} ({}) ended in {}: {err}",
            change.id,
            change.summary,
            change.status.as_str()
        ),
        None => {
            format!("change {} ({}) ended in {}", change.id, change.summary, change.status.as_str())
        }
    };
    ApplyError { kind: ErrorKind::Snapd, message, details: failure_lines(change) }
}

/// Whether a change event means the device is about to reboot or waits for one. \[pure\]
pub fn announces_reboot(event: &RemodelEvent) -> bool {
    match event {
        RemodelEvent::Maintenance { kind, .. } => kind == "system-restart",
        RemodelEvent::Task { status, .. } => status == "Wait",
        _ => false,
    }
}

/// Reads the keys `fleet.trusted-keys` names: the keys themselves, or a file of them
/// (relative: in `$SNAP_COMMON`, else the state directory).
///
/// # Errors
/// A key that does not parse, or a file that cannot be read.
pub fn load_trusted(keys: &crate::config::TrustedKeys) -> Result<Vec<VerifyingKey>, String> {
    match keys {
        crate::config::TrustedKeys::Keys(keys) => {
            keys.iter().map(|k| bundle::parse_public_key(k)).collect()
        }
        crate::config::TrustedKeys::File(file) => {
            let base =
                crate::paths::env_path("SNAP_COMMON").unwrap_or_else(crate::paths::state_dir);
            let path = base.join(file);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!(
                    "cannot read trusted keys {}: {}",
                    path.display(),
                    crate::error::describe_io(&e)
                )
            })?;
            bundle::parse_public_keys(&text)
                .map_err(|e| format!("cannot read trusted keys {}: {e}", path.display()))
        }
    }
}

/// Where [`apply`] extracts bundles: `fleet-bundle/` next to the journal.
pub fn extract_dir(journal: &Path) -> PathBuf {
    journal.with_file_name("fleet-bundle")
}

/// Verifies the bundle at `path` and extracts its files into the new directory `dest`: they
/// are written to a staging directory next to it, which becomes `dest` only when the
/// signature, every size and every hash checked out; on any refusal it is removed. Returns
/// the description and each snap's sha3-384 ([`encode_sha3_384`]).
///
/// # Errors
/// The refusal, or an I/O error, in words; `dest` then does not exist.
pub fn extract(
    path: &Path,
    trusted: &[VerifyingKey],
    dest: &Path,
) -> Result<(Description, BTreeMap<String, String>), String> {
    let staging = staging(dest);
    let _ = std::fs::remove_dir_all(&staging);
    let io = |p: &Path, e: io::Error| format!("{}: {}", p.display(), crate::error::describe_io(&e));
    let result = (|| {
        let file = std::fs::File::open(path).map_err(|e| io(path, e))?;
        let head =
            bundle::open(BufReader::with_capacity(64 * 1024, file)).map_err(|e| e.to_string())?;
        // The signature is checked here, before any file of the bundle is read.
        let mut verified = head.verify(trusted).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&staging).map_err(|e| io(&staging, e))?;
        let mut digests = BTreeMap::new();
        while let Some(entry) = verified.next_file().map_err(|e| e.to_string())? {
            let target = staging.join(&entry.filename);
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&target)
                .map_err(|e| io(&target, e))?;
            let mut out = Sha3Writer {
                inner: BufWriter::with_capacity(64 * 1024, file),
                hash: (entry.kind == Kind::Snap).then(sha3::Sha3_384::new),
            };
            verified.copy(&entry, &mut out).map_err(|e| e.to_string())?;
            out.inner.flush().map_err(|e| io(&target, e))?;
            if let Some(hash) = out.hash {
                digests.insert(entry.filename.clone(), encode_sha3_384(&hash.finalize()));
            }
        }
        let desc = verified.description.clone();
        let _ = std::fs::remove_dir_all(dest);
        std::fs::rename(&staging, dest).map_err(|e| io(dest, e))?;
        Ok((desc, digests))
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

fn staging(dest: &Path) -> PathBuf {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dest.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

struct Sha3Writer<W> {
    inner: W,
    hash: Option<sha3::Sha3_384>,
}

impl<W: io::Write> io::Write for Sha3Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(hash) = &mut self.hash {
            hash.update(&buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Applies the bundle at `bundle` as action `action`: verifies it against `trusted`,
/// extracts it next to `journal` (`fleet.json`), and drives snapd; reports progress through
/// `progress` and records every step in the journal. Returns when every change is ready.
///
/// When the journal holds an unfinished action with the same id, that action is resumed
/// (as [`resume`] does), and a finished one with the same id returns its recorded result
/// without doing anything again; another unfinished action makes this one fail with
/// [`ErrorKind::Busy`] without touching anything.
///
/// # Errors
/// The refusal or failure, with snapd's words ([`ApplyError`]); the journal records it too.
pub async fn apply(
    snapd: &Client,
    bundle: &Path,
    trusted: &[VerifyingKey],
    journal: &Path,
    action: &str,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Outcome, ApplyError> {
    let current = journal::load(journal).map_err(|e| ApplyError::new(ErrorKind::State, e))?;
    let record = match current {
        Some(j) if !j.stage.is_final() && j.action == action => j,
        // The same action again once it is over (its feedback was lost): its result, not a
        // second run.
        Some(j) if j.action == action => {
            return j.result().unwrap_or_else(|| {
                Err(ApplyError::new(
                    ErrorKind::State,
                    "internal error: a final stage without a result",
                ))
            });
        }
        Some(j) if !j.stage.is_final() => {
            return Err(ApplyError::new(
                ErrorKind::Busy,
                format!(
                    "action {} ({}) is still being applied ({})",
                    j.action,
                    j.bundle.display(),
                    j.stage.as_str()
                ),
            ));
        }
        _ => {
            let j = Journal::new(action, bundle);
            journal::save(journal, &j).map_err(|e| ApplyError::new(ErrorKind::State, e))?;
            j
        }
    };
    run(snapd, trusted, journal, record, progress).await
}

/// An action picked up again from the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resumed {
    /// The action id.
    pub action: String,
    /// Its final result.
    pub result: Result<Outcome, ApplyError>,
}

/// Picks up the journal's action after a restart: re-attaches to the change in flight,
/// runs the steps not yet started (extracting the bundle again, verified, if its files are
/// gone), and returns the final result; or returns the result of an action that ended but
/// was not yet [`journal::acknowledge`]d. `None` when there is nothing to report.
///
/// # Errors
/// When the journal cannot be read.
pub async fn resume(
    snapd: &Client,
    trusted: &[VerifyingKey],
    journal: &Path,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Option<Resumed>, ApplyError> {
    let Some(record) = journal::load(journal).map_err(|e| ApplyError::new(ErrorKind::State, e))?
    else {
        return Ok(None);
    };
    if record.reported {
        return Ok(None);
    }
    let action = record.action.clone();
    if let Some(result) = record.result() {
        return Ok(Some(Resumed { action, result }));
    }
    let result = run(snapd, trusted, journal, record, progress).await;
    Ok(Some(Resumed { action, result }))
}

async fn run(
    snapd: &Client,
    trusted: &[VerifyingKey],
    path: &Path,
    mut record: Journal,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Outcome, ApplyError> {
    let res = drive_steps(snapd, trusted, path, &mut record, progress).await;
    let dir = extract_dir(path);
    let steps = record.steps.len();
    let res = res.and_then(|()| {
        record.stage = Stage::Done;
        journal::save(path, &record).map_err(|e| ApplyError::new(ErrorKind::State, e))?;
        record.result().unwrap_or_else(|| {
            Err(ApplyError::new(ErrorKind::State, "internal error: no result after the last step"))
        })
    });
    match &res {
        Ok(outcome) => progress(Progress {
            stage: Stage::Done,
            step: steps,
            steps,
            details: vec![outcome.summary()],
        }),
        Err(err) => {
            record.fail(err);
            // The failure is returned even when it cannot be recorded.
            if let Err(e) = journal::save(path, &record) {
                tracing::warn!("{e}");
            }
            progress(Progress {
                stage: Stage::Failed,
                step: record.steps.iter().filter(|s| s.ready).count(),
                steps,
                details: err.lines(),
            });
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    res
}

async fn drive_steps(
    snapd: &Client,
    trusted: &[VerifyingKey],
    path: &Path,
    record: &mut Journal,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<(), ApplyError> {
    let save =
        |r: &Journal| journal::save(path, r).map_err(|e| ApplyError::new(ErrorKind::State, e));
    let dir = extract_dir(path);
    // While verifying, a directory left there (by a crash between extracting and saving the
    // plan) is never trusted: the bundle is verified and extracted again.
    let needs_files = record.steps.iter().any(|s| !s.ready && s.change.is_none());
    if record.stage == Stage::Verifying || (needs_files && !dir.is_dir()) {
        progress(Progress {
            stage: Stage::Verifying,
            step: 0,
            steps: 0,
            details: vec![format!("verifying {}", record.bundle.display())],
        });
        let (bundle_path, keys, dest) = (record.bundle.clone(), trusted.to_vec(), dir.clone());
        let (desc, digests) =
            tokio::task::spawn_blocking(move || extract(&bundle_path, &keys, &dest))
                .await
                .map_err(|e| ApplyError::new(ErrorKind::State, format!("internal error: {e}")))?
                .map_err(|e| ApplyError::new(ErrorKind::Refused, e))?;
        if record.stage == Stage::Verifying {
            let mut files = Vec::with_capacity(desc.files.len());
            for entry in &desc.files {
                let mut facts = FileFacts {
                    name: entry.filename.clone(),
                    kind: Some(entry.kind),
                    sha3_384: digests.get(&entry.filename).cloned().unwrap_or_default(),
                    vouches: Vec::new(),
                };
                if entry.kind == Kind::Assertion {
                    let file = dir.join(&entry.filename);
                    let text = std::fs::read(&file).map_err(|e| {
                        ApplyError::new(
                            ErrorKind::State,
                            format!("{}: {}", file.display(), crate::error::describe_io(&e)),
                        )
                    })?;
                    facts.vouches = vouches(&text);
                }
                files.push(facts);
            }
            let steps = plan(&files).map_err(|e| ApplyError::new(ErrorKind::Refused, e))?;
            record.version = desc.version;
            record.steps = steps.into_iter().map(StepRecord::pending).collect();
            record.stage = Stage::Applying;
            save(record)?;
        }
    }
    let total = record.steps.len();
    while let Some(i) = record.next_step() {
        let step = record.steps[i].step.clone();
        if record.stage != Stage::Rebooting || record.steps[i].change.is_none() {
            record.stage = Stage::Applying;
        }
        let change_id = match record.steps[i].change.clone() {
            Some(id) => {
                progress(Progress {
                    stage: record.stage,
                    step: i,
                    steps: total,
                    details: vec![format!("following change {id} ({})", describe(&step))],
                });
                id
            }
            None => {
                progress(Progress {
                    stage: Stage::Applying,
                    step: i,
                    steps: total,
                    details: vec![describe(&step)],
                });
                record.steps[i].status = "posting".to_string();
                save(record)?;
                match start(snapd, &dir, path, &step).await? {
                    None => {
                        record.steps[i].status = "Done".to_string();
                        record.steps[i].ready = true;
                        save(record)?;
                        continue;
                    }
                    Some(id) => {
                        record.steps[i].change = Some(id.clone());
                        record.steps[i].status = "Do".to_string();
                        save(record)?;
                        id
                    }
                }
            }
        };
        let change = follow(snapd, path, record, i, &change_id, total, progress).await?;
        let rec = &mut record.steps[i];
        rec.status = change.status.as_str().to_string();
        rec.ready = true;
        rec.err.clone_from(&change.err);
        if rec.summary.is_empty() {
            rec.summary.clone_from(&change.summary);
        }
        save(record)?;
        if change.status != Status::Done {
            return Err(change_failure(&change));
        }
    }
    Ok(())
}

/// Starts one step: `None` when it is over at once (assertions), else snapd's change id.
async fn start(
    snapd: &Client,
    dir: &Path,
    journal: &Path,
    step: &Step,
) -> Result<Option<String>, ApplyError> {
    let read = |file: &str| {
        let path = dir.join(file);
        std::fs::read(&path).map_err(|e| {
            ApplyError::new(
                ErrorKind::State,
                format!("{}: {}", path.display(), crate::error::describe_io(&e)),
            )
        })
    };
    let refused = |what: String, err: snapd::Error| {
        let kind = err.kind().map(|k| format!(" [{k}]")).unwrap_or_default();
        ApplyError::new(ErrorKind::Snapd, format!("snapd refused {what}: {err}{kind}"))
    };
    match step {
        Step::Assertions { file } => {
            let text = read(file)?;
            snapd
                .add_assertions(&text)
                .await
                .map_err(|e| refused(format!("the assertions in {file:?}"), e))?;
            Ok(None)
        }
        Step::Snap { file, dangerous } => {
            // Streamed from disk: a snap of hundreds of megabytes never sits in memory.
            let path = dir.join(file);
            let state = |e: std::io::Error| {
                ApplyError::new(
                    ErrorKind::State,
                    format!("{}: {}", path.display(), crate::error::describe_io(&e)),
                )
            };
            let opened = std::fs::File::open(&path).map_err(state)?;
            let len = opened.metadata().map_err(state)?.len();
            let id = snapd
                .install_snap_from(file, opened, len, *dangerous)
                .await
                .map_err(|e| refused(format!("{file:?}"), e))?;
            Ok(Some(id))
        }
        Step::Remodel { file, snaps, assertions } => {
            let input = crate::remodel::cmd::Input {
                model: dir.join(file),
                offline: !snaps.is_empty(),
                snaps: snaps.iter().map(|s| dir.join(s)).collect(),
                assertions: assertions.iter().map(|a| dir.join(a)).collect(),
                gadget: None,
                current_gadget: None,
            };
            let checked = crate::remodel::cmd::check(snapd, &input).await.map_err(|e| {
                ApplyError::new(ErrorKind::Snapd, format!("remodel pre-flight: {e:#}"))
            })?;
            let (plan, request) = checked.map_err(|refusals| {
                let first = refusals.first().map(|r| r.snapd.clone()).unwrap_or_default();
                let text = crate::remodel::plan::render_refusals(
                    &refusals,
                    crate::remodel::plan::Origin::Preflight,
                );
                ApplyError {
                    kind: ErrorKind::Snapd,
                    message: format!("snapd would refuse the remodel: {first}"),
                    details: text.lines().map(str::to_string).collect(),
                }
            })?;
            let id = drive::start(snapd, &request)
                .await
                .map_err(|e| refused(format!("the remodel to {file:?}"), e))?;
            // Also the remodel's own record, so `pocketses status` and the dashboard show it.
            let target = crate::assertion::decode(request.model.as_bytes())
                .map(|m| {
                    let h = |name: &str| m.header_str(name).to_string();
                    format!("{}/{} rev {}", h("brand-id"), h("model"), m.revision())
                })
                .unwrap_or_default();
            let remodel = drive::Record {
                change: id.clone(),
                summary: plan.summary,
                target,
                status: "Do".to_string(),
                ready: false,
                err: None,
            };
            if let Err(e) =
                drive::save_record(&journal.with_file_name(drive::RECORD_FILE), &remodel)
            {
                tracing::warn!("cannot record the remodel: {e:#}");
            }
            Ok(Some(id))
        }
    }
}

/// Follows step `i`'s change to its end, turning task changes into progress details and
/// noting a reboot in the journal.
async fn follow(
    snapd: &Client,
    path: &Path,
    record: &mut Journal,
    i: usize,
    change_id: &str,
    total: usize,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Change, ApplyError> {
    let mut emit = |event: &RemodelEvent, _: &Change| {
        if announces_reboot(event) && record.stage != Stage::Rebooting {
            // Written down before the reboot happens, so `fleet status` and a resumed
            // daemon know why snapd went away.
            record.stage = Stage::Rebooting;
            if let Err(e) = journal::save(path, record) {
                tracing::warn!("{e}");
            }
        }
        if matches!(event, RemodelEvent::Progress { .. }) {
            return;
        }
        if let Some(line) = view::render_line(event) {
            progress(Progress { stage: record.stage, step: i, steps: total, details: vec![line] });
        }
    };
    let followed = drive::follow(snapd, change_id, drive::DEFAULT_POLL, &mut emit).await;
    followed.map_err(|e| {
        ApplyError::new(ErrorKind::Snapd, format!("cannot follow change {change_id}: {e}"))
    })
}

#[cfg(test)]
mod tests;
