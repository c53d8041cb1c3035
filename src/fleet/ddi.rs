//! The hawkBit Direct Device Integration (DDI) API as hawkBit documents it and gooseBit 0.2
//! serves it: reading the server's replies and writing the device's documents. \[pure\]
//!
//! Replies are read leniently, because servers differ: every field is optional unless the
//! client cannot act without it, hashes may be any subset of sha256/sha1/md5 (gooseBit sends
//! only sha1), sizes are `u64`, and unknown fields are ignored. Documents the device sends
//! (configData, feedback) are built here as `serde_json::Value`s; the HTTP edge sends them.
//! Time and randomness are passed in.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

/// How often to poll while an action runs, whatever the server's sleep.
pub const ACTIVE_POLL: Duration = Duration::from_secs(5);
/// Shortest sleep accepted from a server (a zero sleep would hammer it).
pub const MIN_SLEEP: Duration = Duration::from_secs(1);
/// Longest sleep accepted from a server.
pub const MAX_SLEEP: Duration = Duration::from_secs(24 * 3600);
/// The sleep when the server names none (hawkBit's default polling time is 5 minutes).
pub const DEFAULT_SLEEP: Duration = Duration::from_secs(300);

/// A reply that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Not JSON of the expected shape.
    #[error("cannot read {what} from the fleet server: {message}")]
    Json {
        /// Which reply.
        what: &'static str,
        /// serde_json's words (position and what was expected).
        message: String,
    },
    /// JSON, but without what the client needs.
    #[error("cannot read {what} from the fleet server: {message}")]
    Missing {
        /// Which reply.
        what: &'static str,
        /// What is missing.
        message: String,
    },
}

fn json<'a, T: Deserialize<'a>>(what: &'static str, bytes: &'a [u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Json { what, message: e.to_string() })
}

#[derive(Debug, Default, Deserialize)]
struct Link {
    #[serde(default)]
    href: Option<String>,
}

fn href(links: &BTreeMap<String, Link>, name: &str) -> Option<String> {
    links.get(name).and_then(|l| l.href.clone()).filter(|h| !h.is_empty())
}

/// The controller base resource (`GET /{tenant}/controller/v1/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Base {
    /// `config.polling.sleep`, when given and readable.
    pub sleep: Option<Duration>,
    /// `_links.deploymentBase.href`: an action to run.
    pub deployment: Option<String>,
    /// `_links.cancelAction.href`: an action to cancel.
    pub cancel: Option<String>,
    /// `_links.configData.href`: the server asks for the device's attributes.
    pub config_data: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawBase {
    #[serde(default)]
    config: Option<RawConfig>,
    #[serde(default, rename = "_links")]
    links: BTreeMap<String, Link>,
}

#[derive(Debug, Default, Deserialize)]
struct RawConfig {
    #[serde(default)]
    polling: Option<RawPolling>,
}

#[derive(Debug, Default, Deserialize)]
struct RawPolling {
    #[serde(default)]
    sleep: Option<String>,
}

/// Reads the controller base reply.
///
/// # Errors
/// When it is not a JSON object.
pub fn parse_base(bytes: &[u8]) -> Result<Base, Error> {
    let raw: RawBase = json("the controller base", bytes)?;
    let sleep =
        raw.config.and_then(|c| c.polling).and_then(|p| p.sleep).and_then(|s| parse_sleep(&s));
    Ok(Base {
        sleep,
        deployment: href(&raw.links, "deploymentBase"),
        cancel: href(&raw.links, "cancelAction"),
        config_data: href(&raw.links, "configData"),
    })
}

/// hawkBit's `HH:MM:SS` sleep; `None` when it is not one.
pub fn parse_sleep(text: &str) -> Option<Duration> {
    let parts: Vec<&str> = text.trim().split(':').collect();
    let [h, m, s] = parts.as_slice() else { return None };
    let num = |t: &str| {
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse::<u64>().ok())
            .flatten()
    };
    let (h, m, s) = (num(h)?, num(m)?, num(s)?);
    if m >= 60 || s >= 60 {
        return None;
    }
    Some(Duration::from_secs(h.checked_mul(3600)?.checked_add(m * 60 + s)?))
}

/// The time until the next poll: the server's sleep (clamped to [`MIN_SLEEP`]..[`MAX_SLEEP`],
/// [`DEFAULT_SLEEP`] when it named none) spread by ±10 % with `random` in `[0, 1)`, so a fleet
/// that restarted together does not poll together; [`ACTIVE_POLL`] while an action runs.
pub fn next_poll(sleep: Option<Duration>, action_running: bool, random: f64) -> Duration {
    if action_running {
        return ACTIVE_POLL;
    }
    let base = sleep.unwrap_or(DEFAULT_SLEEP).clamp(MIN_SLEEP, MAX_SLEEP);
    // A NaN from a broken random source must not panic `mul_f64`: it counts as 0.
    let random = if random.is_finite() { random.clamp(0.0, 1.0) } else { 0.0 };
    let factor = 0.9 + 0.2 * random;
    base.mul_f64(factor)
}

/// `skip`, `attempt` or `forced` (hawkBit's handling types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Handling {
    /// Do not do it (yet).
    Skip,
    /// Do it when convenient (the device may wait, e.g. for a maintenance window).
    #[default]
    Attempt,
    /// Do it now.
    Forced,
}

/// Hashes of an artifact, as the server sent them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Hashes {
    /// SHA-256, hex.
    #[serde(default)]
    pub sha256: Option<String>,
    /// SHA-1, hex (gooseBit's only hash).
    #[serde(default)]
    pub sha1: Option<String>,
    /// MD5, hex.
    #[serde(default)]
    pub md5: Option<String>,
}

/// A hash algorithm the download is checked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgo {
    /// SHA-256.
    Sha256,
    /// SHA-1.
    Sha1,
    /// MD5.
    Md5,
}

impl Hashes {
    /// The strongest hash given: sha256, then sha1, then md5 (lowercased).
    pub fn strongest(&self) -> Option<(HashAlgo, String)> {
        let valid = |h: &Option<String>, len: usize| {
            h.as_deref()
                .filter(|h| h.len() == len && h.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(str::to_ascii_lowercase)
        };
        valid(&self.sha256, 64)
            .map(|h| (HashAlgo::Sha256, h))
            .or_else(|| valid(&self.sha1, 40).map(|h| (HashAlgo::Sha1, h)))
            .or_else(|| valid(&self.md5, 32).map(|h| (HashAlgo::Md5, h)))
    }
}

/// One file to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// Its name.
    pub filename: String,
    /// Declared size: the download is cut off beyond it.
    pub size: Option<u64>,
    /// Hashes given.
    pub hashes: Hashes,
    /// `_links.download.href` (https), else `_links.download-http.href`.
    pub url: Option<String>,
}

/// A software module of a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// `part` (`os`, `bApp`, …).
    pub part: String,
    /// `name`.
    pub name: String,
    /// `version`.
    pub version: String,
    /// Its files.
    pub artifacts: Vec<Artifact>,
}

/// A maintenance window as the server states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    /// Inside the window: the update may be installed.
    Available,
    /// Outside: download only.
    Unavailable,
}

/// A deployment action (`deploymentBase`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// The action id (a string in the reply; gooseBit's are numbers in strings).
    pub id: String,
    /// `deployment.download`.
    pub download: Handling,
    /// `deployment.update`.
    pub update: Handling,
    /// `deployment.maintenanceWindow`, when the server sends one.
    pub window: Option<Window>,
    /// The modules.
    pub chunks: Vec<Chunk>,
}

impl Deployment {
    /// Whether the update may be installed now (not skipped, and inside any window).
    pub fn may_install(&self) -> bool {
        self.update != Handling::Skip && self.window != Some(Window::Unavailable)
    }
}

#[derive(Debug, Deserialize)]
struct RawDeploymentBase {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    deployment: Option<RawDeployment>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDeployment {
    #[serde(default)]
    download: Option<Handling>,
    #[serde(default)]
    update: Option<Handling>,
    #[serde(default)]
    maintenance_window: Option<Window>,
    #[serde(default)]
    chunks: Vec<RawChunk>,
}

#[derive(Debug, Default, Deserialize)]
struct RawChunk {
    #[serde(default)]
    part: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    artifacts: Vec<RawArtifact>,
}

#[derive(Debug, Default, Deserialize)]
struct RawArtifact {
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    hashes: Hashes,
    #[serde(default, rename = "_links")]
    links: BTreeMap<String, Link>,
}

/// An id given as a JSON string or number.
fn id_text(id: Option<Value>) -> Option<String> {
    match id? {
        Value::String(s) if !s.is_empty() => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads a `deploymentBase` reply.
///
/// # Errors
/// When it is not JSON of that shape, or has no id or no `deployment`.
pub fn parse_deployment(bytes: &[u8]) -> Result<Deployment, Error> {
    let what = "the deployment";
    let raw: RawDeploymentBase = json(what, bytes)?;
    let id = id_text(raw.id).ok_or(Error::Missing { what, message: "no action id".into() })?;
    let d = raw.deployment.ok_or(Error::Missing { what, message: "no deployment".into() })?;
    let chunks = d
        .chunks
        .into_iter()
        .map(|c| Chunk {
            part: c.part.unwrap_or_default(),
            name: c.name.unwrap_or_default(),
            version: c.version.unwrap_or_default(),
            artifacts: c
                .artifacts
                .into_iter()
                .map(|a| Artifact {
                    url: href(&a.links, "download").or_else(|| href(&a.links, "download-http")),
                    filename: a.filename.unwrap_or_default(),
                    size: a.size,
                    hashes: a.hashes,
                })
                .collect(),
        })
        .collect();
    Ok(Deployment {
        id,
        download: d.download.unwrap_or_default(),
        update: d.update.unwrap_or_default(),
        window: d.maintenance_window,
        chunks,
    })
}

/// A `cancelAction` reply: which action to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancel {
    /// The cancel action's own id (feedback goes to it).
    pub id: String,
    /// The action to stop (`cancelAction.stopId`).
    pub stop_id: String,
}

#[derive(Debug, Deserialize)]
struct RawCancel {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default, rename = "cancelAction")]
    cancel_action: Option<RawCancelAction>,
}

#[derive(Debug, Deserialize)]
struct RawCancelAction {
    #[serde(default, rename = "stopId")]
    stop_id: Option<Value>,
}

/// Reads a `cancelAction` reply.
///
/// # Errors
/// When it is not JSON of that shape or has no ids.
pub fn parse_cancel(bytes: &[u8]) -> Result<Cancel, Error> {
    let what = "the cancel action";
    let raw: RawCancel = json(what, bytes)?;
    let id = id_text(raw.id).ok_or(Error::Missing { what, message: "no action id".into() })?;
    let stop_id = raw.cancel_action.and_then(|c| id_text(c.stop_id)).unwrap_or_else(|| id.clone());
    Ok(Cancel { id, stop_id })
}

/// How far an action went, which decides whether a cancel is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Downloading the bundle: nothing applied, cancel is accepted.
    Downloading,
    /// Verifying it: nothing applied, cancel is accepted.
    Verifying,
    /// snapd is applying it: a cancel is refused (snapd changes are not stopped half-way).
    Applying,
    /// Waiting for a reboot snapd asked for: refused.
    Rebooting,
}

impl Stage {
    /// Whether a cancel is accepted at this stage.
    pub fn cancellable(self) -> bool {
        self < Stage::Applying
    }
}

/// What the device knows about itself, for `configData`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    /// brand-id of the model.
    pub brand: String,
    /// Model name.
    pub model: String,
    /// The model's revision.
    pub model_revision: String,
    /// The serial, when the device has a serial assertion.
    pub serial: Option<String>,
    /// pocketses' version.
    pub agent_version: String,
    /// Version of the last bundle applied with success, when any.
    pub sw_version: Option<String>,
    /// Installed snaps and their revisions.
    pub snaps: Vec<(String, String)>,
}

/// The `configData` document: `{"mode": "merge", "data": {…}}` with string values only (as
/// hawkBit requires). `hw_boardname` is the model name and `hw_revision` is `default`, the
/// pair gooseBit matches a bundle's `--hardware MODEL` against; `sw_version` is the last
/// applied bundle's version, which gooseBit compares with the assigned software to decide
/// whether there is anything to do. Each snap is a `snap.NAME` key with its revision.
pub fn config_data(facts: &Facts) -> Value {
    let mut data = serde_json::Map::new();
    let mut put = |k: &str, v: &str| {
        data.insert(k.to_owned(), Value::from(v));
    };
    put("hw_boardname", &facts.model);
    put("hw_revision", "default");
    if let Some(v) = &facts.sw_version {
        put("sw_version", v);
    }
    put("brand", &facts.brand);
    put("model", &facts.model);
    put("model_revision", &facts.model_revision);
    if let Some(serial) = &facts.serial {
        put("serial", serial);
    }
    put("pocketses_version", &facts.agent_version);
    for (name, revision) in &facts.snaps {
        put(&format!("snap.{name}"), revision);
    }
    json!({"mode": "merge", "data": data})
}

/// The default controller id: the serial, else `brand-model-hostname`.
pub fn default_controller_id(
    serial: Option<&str>,
    brand: &str,
    model: &str,
    hostname: &str,
) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    match serial.filter(|s| !s.is_empty()) {
        Some(serial) => clean(serial),
        None => format!("{}-{}-{}", clean(brand), clean(model), clean(hostname)),
    }
}

/// Progress feedback (`execution: proceeding`): `progress` as `(count, of)`, and detail lines
/// (gooseBit reads "Downloaded N%" from them for its progress bar).
pub fn proceeding(time: &str, progress: Option<(u64, u64)>, details: &[String]) -> Value {
    let mut result = json!({"finished": "none"});
    if let Some((cnt, of)) = progress {
        result["progress"] = json!({"cnt": cnt, "of": of});
    }
    json!({"time": time, "status": {"execution": "proceeding", "result": result, "details": details}})
}

/// The artifacts are downloaded and the update waits (`execution: downloaded`, `finished:
/// none`): what hawkBit records as `DOWNLOADED`, and takes as the end of a download-only action.
pub fn downloaded(time: &str, details: &[String]) -> Value {
    json!({"time": time, "status": {"execution": "downloaded", "result": {"finished": "none"}, "details": details}})
}

/// Final feedback (`execution: closed`, `success` or `failure`), the reason in `details`.
pub fn closed(time: &str, success: bool, details: &[String]) -> Value {
    let finished = if success { "success" } else { "failure" };
    json!({"time": time, "status": {"execution": "closed", "result": {"finished": finished}, "details": details}})
}

/// The answer to a cancel: accepted (`closed`/`success`) before anything was applied,
/// refused (`rejected`) once snapd is at work.
pub fn cancel_answer(time: &str, stage: Option<Stage>) -> Value {
    match stage {
        Some(stage) if !stage.cancellable() => json!({"time": time, "status": {
        "execution": "rejected", "result": {"finished": "none"},
        "details": [format!("cannot cancel: the update is {}", match stage {
            Stage::Rebooting => "waiting for a reboot",
            _ => "being applied by snapd",
        })]}}),
        _ => {
            json!({"time": time, "status": {"execution": "closed", "result": {"finished": "success"},
            "details": ["cancelled before anything was applied"]}})
        }
    }
}

/// hawkBit's feedback time format, `YYYYMMDDTHHMMSS` (UTC), from seconds since the epoch.
pub fn feedback_time(unix_seconds: u64) -> String {
    let days = unix_seconds / 86_400;
    let rem = unix_seconds % 86_400;
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 → (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The controller base URL: `{url}/{tenant}/controller/v1/{id}`.
pub fn base_url(url: &str, tenant: &str, controller_id: &str) -> String {
    format!("{}/{tenant}/controller/v1/{controller_id}", url.trim_end_matches('/'))
}

#[cfg(test)]
mod tests;
