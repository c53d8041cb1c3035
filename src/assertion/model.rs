//! The `model` assertion: a typed view, snapd's validation rules, and the difference between two models. \[pure\]
//!
//! snapd's `assembleModel` stops at the first problem; [`validate`] applies the same rules
//! (UC16/18 "non-extended" models and UC20+ models with a `snaps` header) but keeps going,
//! so a user sees every problem at once. Messages are snapd's own words.
//! [`diff`] says what changed between two models, in the terms the remodel pre-flight needs.

use super::time::Timestamp;
use super::{quote, Assertion, Headers, Value};
use serde::Serialize;
use std::collections::BTreeMap;

/// One thing wrong with a model, in snapd's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The message, e.g. `"model" header cannot contain uppercase letters`.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A snap the model lists (an entry of `snaps`, or `gadget`/`kernel`/`base`/`required-snaps` before UC20).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelSnap {
    /// Snap name.
    pub name: String,
    /// Snap id ("" when not given, e.g. in a dangerous model).
    pub id: String,
    /// `app`, `base`, `gadget`, `kernel`, `core` or `snapd` ("" for UC16/18 `required-snaps`).
    #[serde(rename = "type")]
    pub snap_type: String,
    /// Default channel (UC20+; `latest/stable` unless set).
    #[serde(rename = "default-channel", skip_serializing_if = "String::is_empty")]
    pub default_channel: String,
    /// Track pinned with `NAME=TRACK` in a UC16/18 `gadget` or `kernel` header.
    #[serde(rename = "pinned-track", skip_serializing_if = "String::is_empty")]
    pub pinned_track: String,
    /// `required` or `optional`.
    pub presence: String,
    /// Modes the snap is available in (`run`, `ephemeral`, …).
    pub modes: Vec<String>,
}

/// A typed view of a model's headers, with snapd's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Model {
    /// `authority-id`.
    #[serde(rename = "authority-id")]
    pub authority_id: String,
    /// `brand-id`.
    #[serde(rename = "brand-id")]
    pub brand_id: String,
    /// `model`.
    pub model: String,
    /// `series` (always 16 today).
    pub series: String,
    /// `display-name`, or the model name when absent.
    #[serde(rename = "display-name")]
    pub display_name: String,
    /// `architecture`.
    pub architecture: String,
    /// `base` ("" on UC16, which runs on `core`).
    pub base: String,
    /// `classic`.
    pub classic: bool,
    /// `distribution` (extended classic models only).
    pub distribution: String,
    /// `grade`; "" for pre-UC20 models, else `signed` unless set.
    pub grade: String,
    /// `storage-safety`; "" for pre-UC20 models.
    #[serde(rename = "storage-safety")]
    pub storage_safety: String,
    /// `store` ("" for the global store).
    pub store: String,
    /// `revision`.
    pub revision: u64,
    /// `timestamp` as written.
    pub timestamp: String,
    /// The gadget snap, if any.
    pub gadget: Option<ModelSnap>,
    /// The kernel snap, if any.
    pub kernel: Option<ModelSnap>,
    /// All snaps: essential ones first (snapd, kernel, base, gadget), then the others in order.
    pub snaps: Vec<ModelSnap>,
    /// Accounts that may sign serials (brand first).
    #[serde(rename = "serial-authority")]
    pub serial_authority: Vec<String>,
    /// Accounts that may sign system users; `None` means any (`*`).
    #[serde(rename = "system-user-authority")]
    pub system_user_authority: Option<Vec<String>>,
    /// `sign-key-sha3-384`.
    #[serde(rename = "sign-key-sha3-384")]
    pub sign_key: String,
}

impl Model {
    /// Whether this is a UC20+ model (it has a `snaps` header).
    pub fn is_extended(&self) -> bool {
        !self.grade.is_empty()
    }

    /// Validates and views an assertion as a model.
    ///
    /// # Errors
    /// Every problem [`validate`] finds.
    pub fn from_assertion(assertion: &Assertion) -> Result<Model, Vec<Problem>> {
        let problems = validate(assertion.headers());
        if problems.is_empty() {
            Ok(view(assertion.headers()))
        } else {
            Err(problems)
        }
    }
}

/// snapd's snap-ids for well-known snaps (snap/naming/wellknown.go).
pub const WELL_KNOWN_SNAP_IDS: &[(&str, &str)] = &[
    ("core", "99T7MUlRhtI3U0QFgl5mXXESAiSwt776"),
    ("snapd", "PMrrV4ml8uWuEUDBT8dSGnKUYbevVhc4"),
    ("core18", "CSO04Jhav2yK0uz97cr0ipQRyqg0qQL6"),
    ("core20", "DLqre5XGLbDqg9jPtiAhRRjDuPVa5X1q"),
    ("core22", "amcUKQILKXHHTlmSa7NMdnXSx02dNeeT"),
    ("core24", "dwTAh7MZZ01zyriOZErqd1JynQLiOGvM"),
];

fn well_known_id(name: &str) -> Option<&'static str> {
    WELL_KNOWN_SNAP_IDS.iter().find(|(n, _)| *n == name).map(|(_, id)| *id)
}

/// snapd's snap name rule: 2–40 of `[a-z0-9-]`, at least one letter, no leading, trailing or double `-`.
pub fn is_valid_snap_name(name: &str) -> bool {
    (2..=40).contains(&name.len())
        && name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && name.bytes().any(|c| c.is_ascii_lowercase())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

fn is_valid_model_name(s: &str) -> bool {
    // ^[a-zA-Z0-9](?:-?[a-zA-Z0-9])*$
    !s.is_empty()
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

fn is_valid_snap_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|c| c.is_ascii_alphanumeric())
}

/// snapd's account id rule `^(?:[a-z0-9A-Z]{32}|[-a-z0-9]{2,28})$`.
pub fn is_valid_account_id(s: &str) -> bool {
    is_valid_snap_id(s)
        || ((2..=28).contains(&s.len())
            && s.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'))
}

fn is_valid_mode(s: &str) -> bool {
    // ^[a-z][-a-z]+$
    s.len() >= 2
        && s.as_bytes()[0].is_ascii_lowercase()
        && s.bytes().all(|c| c.is_ascii_lowercase() || c == b'-')
}

fn is_valid_distribution(s: &str) -> bool {
    s.bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-'))
}

const RISKS: [&str; 4] = ["stable", "candidate", "beta", "edge"];

/// snapd's `channel.ParseVerbatim`: the track, or the error.
fn channel_track(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("channel name cannot be empty".into());
    }
    let p: Vec<&str> = s.split('/').collect();
    let (track, risk, branch) = match p.as_slice() {
        [t, r, b] => (Some(*t), Some(*r), Some(*b)),
        [a, b] if RISKS.contains(a) => (None, Some(*a), Some(*b)),
        [a, b] => (Some(*a), Some(*b), None),
        [a] if RISKS.contains(a) => (None, Some(*a), None),
        [a] => (Some(*a), None, None),
        _ => return Err(format!("channel name has too many components: {s}")),
    };
    if risk.is_some_and(|r| !RISKS.contains(&r)) {
        return Err(format!("invalid risk in channel name: {s}"));
    }
    if track == Some("") {
        return Err(format!("invalid track in channel name: {s}"));
    }
    if branch == Some("") {
        return Err(format!("invalid branch in channel name: {s}"));
    }
    Ok(track.unwrap_or("").to_owned())
}

struct Checker<'a> {
    headers: &'a Headers,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn fail(&mut self, message: String) {
        self.problems.push(Problem { message });
    }

    /// `checkNotEmptyString`.
    fn not_empty(&mut self, name: &str) -> Option<String> {
        match super::not_empty_str(self.headers, name) {
            Ok(s) => Some(s.to_owned()),
            Err(m) => {
                self.fail(m);
                None
            }
        }
    }

    /// `checkOptionalString`.
    fn optional(&mut self, name: &str) -> String {
        match self.headers.get(name) {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                self.fail(format!("{} header must be a string", quote(name)));
                String::new()
            }
        }
    }

    /// `checkStringListMatches` on a top-level header.
    fn string_list(&mut self, name: &str, valid: fn(&str) -> bool) -> Option<Vec<String>> {
        string_list_in(self.headers.get(name), &format!("{} header", quote(name)), valid)
            .unwrap_or_else(|m| {
                self.fail(m);
                None
            })
    }
}

/// `checkStringListInMap`: `Ok(None)` when absent.
fn string_list_in(
    value: Option<&Value>,
    what: &str,
    valid: fn(&str) -> bool,
) -> Result<Option<Vec<String>>, String> {
    let Some(value) = value else { return Ok(None) };
    let Value::List(list) = value else { return Err(format!("{what} must be a list of strings")) };
    let mut out = Vec::new();
    for v in list {
        let Value::String(s) = v else { return Err(format!("{what} must be a list of strings")) };
        if !valid(s) {
            return Err(format!("{what} contains an invalid element: {}", quote(s)));
        }
        out.push(s.clone());
    }
    Ok(Some(out))
}

/// Checks a UC16/18 `gadget` or `kernel` header, `NAME` or `NAME=TRACK` (`checkSnapWithTrack`).
fn check_snap_with_track(value: Option<&Value>, which: &str) -> Result<Option<ModelSnap>, String> {
    let Some(value) = value else { return Ok(None) };
    let Value::String(value) = value else {
        return Err(format!("{} header must be a string", quote(which)));
    };
    let (name, track) = value.split_once('=').unwrap_or((value, ""));
    if !is_valid_snap_name(name) {
        return Err(format!("invalid snap name in {} header: {name}", quote(which)));
    }
    if value.contains('=') {
        if track.contains('/') {
            return Err(format!("{} channel selector must be a track name only", quote(which)));
        }
        if RISKS.contains(&track) {
            return Err(format!("{} channel selector must be a track name", quote(which)));
        }
    }
    Ok(Some(ModelSnap {
        name: name.to_owned(),
        id: String::new(),
        snap_type: which.to_owned(),
        default_channel: String::new(),
        pinned_track: track.to_owned(),
        presence: "required".into(),
        modes: vec!["run".into()],
    }))
}

/// Checks one `snaps` entry (`checkModelSnap`).
fn check_model_snap(snap: &BTreeMap<String, Value>, grade: &str) -> Result<ModelSnap, String> {
    let name = match snap.get("name") {
        None => return Err(r#""name" of snap is mandatory"#.into()),
        Some(Value::String(s)) if s.is_empty() => {
            return Err(r#""name" of snap should not be empty"#.into())
        }
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(r#""name" of snap must be a string"#.into()),
    };
    if !is_valid_snap_name(&name) {
        return Err(format!("invalid snap name {}", quote(&name)));
    }
    let what = format!("of snap {}", quote(&name));
    let opt = |field: &str| -> Result<String, String> {
        match snap.get(field) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(format!("{} {what} must be a string", quote(field))),
        }
    };
    let id = match snap.get("id") {
        Some(Value::String(s)) if s.is_empty() => {
            return Err(format!(r#""id" {what} should not be empty"#))
        }
        Some(Value::String(s)) if !is_valid_snap_id(s) => {
            return Err(format!(r#""id" {what} contains invalid characters: {}"#, quote(s)))
        }
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(format!(r#""id" {what} must be a string"#)),
        None if grade != "dangerous" => {
            return Err(format!(r#""id" {what} is mandatory for {grade} grade model"#))
        }
        None => String::new(),
    };
    let mut snap_type = opt("type")?;
    if snap_type.is_empty() {
        snap_type = "app".into();
    }
    if !["app", "base", "gadget", "kernel", "core", "snapd"].contains(&snap_type.as_str()) {
        return Err(format!(
            "type of snap {} must be one of app|base|gadget|kernel|core|snapd",
            quote(&name)
        ));
    }
    let modes = string_list_in(snap.get("modes"), &format!(r#""modes" {what}"#), is_valid_mode)?
        .unwrap_or_default();
    let mut default_channel = opt("default-channel")?;
    if default_channel.is_empty() {
        default_channel = "latest/stable".into();
    }
    match channel_track(&default_channel) {
        Err(e) => return Err(format!("invalid default channel for snap {}: {e}", quote(&name))),
        Ok(track) if track.is_empty() => {
            return Err(format!("default channel for snap {} must specify a track", quote(&name)))
        }
        Ok(_) => {}
    }
    let presence = opt("presence")?;
    if !presence.is_empty() && presence != "required" && presence != "optional" {
        return Err(format!("presence of snap {} must be one of required|optional", quote(&name)));
    }
    Ok(ModelSnap {
        name,
        id,
        snap_type,
        default_channel,
        pinned_track: String::new(),
        presence,
        modes,
    })
}

/// Validates a model's headers by snapd's rules, returning every problem (empty when valid).
///
/// Works on decoded assertions and on `model sign` input alike (it also runs the generic
/// checks decoding would, so unsigned input gets the same verdict).
pub fn validate(headers: &Headers) -> Vec<Problem> {
    let mut c = Checker { headers, problems: Vec::new() };
    check_model(&mut c);
    c.problems
}

fn check_model(c: &mut Checker<'_>) {
    let h = c.headers;
    if h.get_str("type") != Some("model") {
        c.fail(format!(
            "assertion is not a model assertion: type {}",
            quote(h.get_str("type").unwrap_or(""))
        ));
    }
    if let Some(format) = h.get_str("format") {
        if format != "0" {
            c.fail(format!(
                r#"proposed "model" assertion has format {format} but 0 is latest supported"#
            ));
        }
    }
    let authority = c.not_empty("authority-id");
    for pk in ["series", "brand-id"] {
        if let Some(v) = c.not_empty(pk) {
            if v.contains('/') {
                c.fail(format!("{} primary key header cannot contain '/'", quote(pk)));
            }
        }
    }
    let brand = h.get_str("brand-id").unwrap_or("").to_owned();
    if let Some(authority) = &authority {
        if h.get_str("brand-id").is_some() && *authority != brand {
            c.fail(format!(
                "authority-id and brand-id must match, model assertions are expected to be signed by the brand: {} != {}",
                quote(authority),
                quote(&brand)
            ));
        }
    }
    if let Some(model) = c.not_empty("model") {
        if !is_valid_model_name(&model) {
            c.fail(format!(r#""model" header contains invalid characters: {}"#, quote(&model)));
        } else if model.to_lowercase() != model {
            c.fail(r#""model" header cannot contain uppercase letters"#.into());
        }
    }
    let classic = match h.get("classic") {
        None => false,
        Some(Value::String(s)) if s == "true" => true,
        Some(Value::String(s)) if s == "false" => false,
        Some(_) => {
            c.fail(r#""classic" header must be 'true' or 'false'"#.into());
            false
        }
    };
    let extended = h.contains("snaps");
    if extended {
        for conflicting in ["gadget", "kernel", "required-snaps"] {
            if h.contains(conflicting) {
                c.fail(format!(
                    "cannot specify separate {} header once using the extended snaps header",
                    quote(conflicting)
                ));
            }
        }
    } else {
        if h.contains("grade") {
            c.fail("cannot specify a grade for model without the extended snaps header".into());
        }
        if h.contains("storage-safety") {
            c.fail(
                "cannot specify storage-safety for model without the extended snaps header".into(),
            );
        }
    }
    if classic && !extended {
        if h.contains("kernel") {
            c.fail("cannot specify a kernel with a non-extended classic model".into());
        }
        if h.contains("base") {
            c.fail("cannot specify a base with a non-extended classic model".into());
        }
    }
    if classic && extended {
        match c.not_empty("distribution") {
            Some(d) if !is_valid_distribution(&d) => c.fail(format!(
                r#""distribution" header contains invalid characters: {}, see distribution ID in os-release spec"#,
                quote(&d)
            )),
            None => {
                if let Some(last) = c.problems.last_mut() {
                    last.message.push_str(", see distribution ID in os-release spec");
                }
            }
            Some(_) => {}
        }
    } else if h.contains("distribution") {
        c.fail("cannot specify distribution for model unless it is classic and has an extended snaps header".into());
    }
    let mandatory: &[&str] = if extended {
        &["architecture", "base"]
    } else if classic {
        &[]
    } else {
        &["architecture", "gadget", "kernel"]
    };
    for name in mandatory {
        c.not_empty(name);
    }
    if classic && !extended {
        for name in ["architecture", "gadget"] {
            c.optional(name);
        }
    }
    let base = c.optional("base");
    if !base.is_empty() && !is_valid_snap_name(&base) {
        c.fail(format!(r#"invalid snap name in "base" header: {base}"#));
    }
    c.optional("store");
    c.optional("display-name");
    if extended {
        check_extended(c, &base);
    } else {
        for which in ["kernel", "gadget"] {
            // Absent mandatory ones were reported above; the classic case forbids kernel above.
            if let Err(m) = check_snap_with_track(h.get(which), which) {
                if h.get(which).and_then(Value::as_str) != Some("") {
                    c.fail(m);
                }
            }
        }
        if let Some(names) = c.string_list("required-snaps", |_| true) {
            for name in names {
                if !is_valid_snap_name(&name) {
                    c.fail(format!(r#"invalid snap name in "required-snaps" header: {name}"#));
                }
            }
        }
    }
    // preseed-authority is newer snapd's (2.61+), with the serial-authority rule.
    for name in ["serial-authority", "preseed-authority"] {
        if h.contains(name) && string_list_in(h.get(name), "", is_valid_account_id).is_err() {
            c.fail(format!("{} header must be a list of account ids", quote(name)));
        }
    }
    if let Some(v) = h.get("system-user-authority") {
        let ok = match v {
            Value::String(s) => s == "*",
            Value::List(_) => string_list_in(Some(v), "", is_valid_account_id).is_ok(),
            Value::Map(_) => false,
        };
        if !ok {
            c.fail(r#""system-user-authority" header must be '*' or a list of account ids"#.into());
        }
    }
    if let Some(ts) = c.not_empty("timestamp") {
        if let Err(e) = Timestamp::parse(&ts) {
            c.fail(format!(r#""timestamp" header is not a RFC3339 date: {e}"#));
        }
    }
    check_validation_sets(c, &brand);
}

fn check_extended(c: &mut Checker<'_>, base: &str) {
    let h = c.headers;
    let grade = c.optional("grade");
    let grade = match grade.as_str() {
        "" => "signed".to_owned(),
        "secured" | "signed" | "dangerous" => grade,
        other => {
            c.fail(format!(
                "grade for model must be secured|signed|dangerous, not {}",
                quote(other)
            ));
            "signed".to_owned()
        }
    };
    let safety = c.optional("storage-safety");
    let safety = match safety.as_str() {
        "" if grade == "secured" => "encrypted".to_owned(),
        "" => "prefer-encrypted".to_owned(),
        "encrypted" | "prefer-encrypted" | "prefer-unencrypted" => safety,
        other => {
            c.fail(format!(
                "storage-safety for model must be encrypted|prefer-encrypted|prefer-unencrypted, not {}",
                quote(other)
            ));
            safety.clone()
        }
    };
    if grade == "secured" && safety != "encrypted" {
        c.fail(r#"secured grade model must not have storage-safety overridden, only "encrypted" is valid"#.into());
    }
    let Some(Value::List(entries)) = h.get("snaps") else {
        c.fail(r#""snaps" header must be a list of maps"#.into());
        return;
    };
    let mut seen: Vec<String> = Vec::new();
    let mut seen_ids: Vec<(String, String)> = Vec::new();
    let mut essential_of: BTreeMap<String, String> = BTreeMap::new();
    let mut has_base_entry = false;
    for entry in entries {
        let Value::Map(map) = entry else {
            c.fail(r#""snaps" header must be a list of maps"#.into());
            continue;
        };
        let snap = match check_model_snap(map, &grade) {
            Ok(s) => s,
            Err(m) => {
                c.fail(m);
                continue;
            }
        };
        if seen.contains(&snap.name) {
            c.fail(format!("cannot list the same snap {} multiple times", quote(&snap.name)));
        }
        seen.push(snap.name.clone());
        if !snap.id.is_empty() {
            if let Some((_, under)) = seen_ids.iter().find(|(id, _)| *id == snap.id) {
                c.fail(format!(
                    "cannot specify the same snap id {} multiple times, specified for snaps {} and {}",
                    quote(&snap.id),
                    quote(under),
                    quote(&snap.name)
                ));
            } else {
                seen_ids.push((snap.id.clone(), snap.name.clone()));
            }
        }
        let essential = match snap.snap_type.as_str() {
            t @ ("snapd" | "kernel" | "gadget") => {
                if let Some(prev) = essential_of.get(t) {
                    c.fail(format!(
                        "cannot specify multiple {t} snaps: {} and {}",
                        quote(prev),
                        quote(&snap.name)
                    ));
                } else {
                    essential_of.insert(t.to_owned(), snap.name.clone());
                }
                true
            }
            _ if snap.name == base => {
                has_base_entry = true;
                if snap.snap_type != "base" {
                    c.fail(format!(
                        r#"boot base {} must specify type "base", not {}"#,
                        quote(base),
                        quote(&snap.snap_type)
                    ));
                }
                true
            }
            _ => false,
        };
        if essential && (!snap.modes.is_empty() || !snap.presence.is_empty()) {
            c.fail(format!(
                "essential snaps are always available, cannot specify modes or presence for snap {}",
                quote(&snap.name)
            ));
        }
    }
    let classic = h.get_str("classic") == Some("true");
    if !essential_of.contains_key("gadget") && !classic {
        c.fail(r#"one "snaps" header entry must specify the model gadget"#.into());
    }
    if !essential_of.contains_key("kernel") {
        if classic && !essential_of.contains_key("gadget") {
            // an extended classic model may have neither
        } else if !classic {
            c.fail(r#"one "snaps" header entry must specify the model kernel"#.into());
        }
    } else if classic && !essential_of.contains_key("gadget") {
        c.fail(
            "cannot specify a kernel in an extended classic model without a model gadget".into(),
        );
    }
    if !has_base_entry && !base.is_empty() && well_known_id(base).is_none() && grade != "dangerous"
    {
        c.fail(format!(
            r#"cannot specify not well-known base {} without a corresponding "snaps" header entry"#,
            quote(base)
        ));
    }
}

fn check_validation_sets(c: &mut Checker<'_>, brand: &str) {
    let Some(value) = c.headers.get("validation-sets") else { return };
    let Value::List(entries) = value else {
        c.fail(r#""validation-sets" must be a list of validation sets"#.into());
        return;
    };
    let mut seen: Vec<String> = Vec::new();
    for entry in entries {
        let Value::Map(vs) = entry else {
            c.fail(r#""validation-sets" must be a list of validation sets"#.into());
            continue;
        };
        let account = vs.get("account-id").and_then(Value::as_str).unwrap_or(brand).to_owned();
        let name = vs.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            c.fail(r#""name" of validation-set is mandatory"#.into());
            continue;
        }
        if !super::is_valid_header_name(name) {
            c.fail(format!(
                r#""name" of validation-set contains invalid characters: {}"#,
                quote(name)
            ));
        }
        if let Some(seq) = vs.get("sequence") {
            let ok = seq.as_str().and_then(|s| s.parse::<u64>().ok()).is_some_and(|n| n > 0);
            if !ok {
                c.fail(format!(
                    "\"sequence\" of validation-set {}/{name} must be a positive integer",
                    account
                ));
            }
        }
        match vs.get("mode").and_then(Value::as_str) {
            Some("prefer-enforce" | "enforce") => {}
            _ => c.fail(format!(
                "\"mode\" of validation-set \"{account}/{name}\" must be prefer-enforce|enforce"
            )),
        }
        let key = format!("{account}/{name}");
        if seen.contains(&key) {
            c.fail(format!("cannot add validation set {} twice", quote(&key)));
        }
        seen.push(key);
    }
}

/// Views headers as a model, applying snapd's defaults; tolerant of invalid input (see [`validate`]).
pub fn view(h: &Headers) -> Model {
    let s = |n: &str| h.get_str(n).unwrap_or("").to_owned();
    let brand = s("brand-id");
    let classic = h.get_str("classic") == Some("true");
    let extended = h.contains("snaps");
    let base = s("base");
    let (mut grade, mut storage_safety) = (String::new(), String::new());
    let mut snapd = None;
    let mut kernel = None;
    let mut gadget = None;
    let mut base_snap = None;
    let mut others = Vec::new();
    if extended {
        grade = match h.get_str("grade") {
            Some(g @ ("secured" | "signed" | "dangerous")) => g.to_owned(),
            _ => "signed".into(),
        };
        storage_safety = match h.get_str("storage-safety") {
            Some(s) if !s.is_empty() => s.to_owned(),
            _ if grade == "secured" => "encrypted".into(),
            _ => "prefer-encrypted".into(),
        };
        for entry in h.get("snaps").and_then(Value::as_list).unwrap_or(&[]) {
            let Some(map) = entry.as_map() else { continue };
            let Ok(mut snap) = check_model_snap(map, "dangerous") else { continue };
            let slot = match snap.snap_type.as_str() {
                "snapd" => Some(&mut snapd),
                "kernel" => Some(&mut kernel),
                "gadget" => Some(&mut gadget),
                _ if snap.name == base => Some(&mut base_snap),
                _ => None,
            };
            if snap.presence.is_empty() {
                snap.presence = "required".into();
            }
            match slot {
                Some(slot) => {
                    snap.modes = vec!["run".into(), "ephemeral".into()];
                    *slot = Some(snap);
                }
                None => {
                    if snap.modes.is_empty() {
                        snap.modes = vec!["run".into()];
                    }
                    others.push(snap);
                }
            }
        }
        if base_snap.is_none() && !base.is_empty() {
            base_snap = Some(ModelSnap {
                name: base.clone(),
                id: well_known_id(&base).unwrap_or("").to_owned(),
                snap_type: "base".into(),
                default_channel: "latest/stable".into(),
                pinned_track: String::new(),
                presence: "required".into(),
                modes: vec!["run".into(), "ephemeral".into()],
            });
        }
    } else {
        kernel = check_snap_with_track(h.get("kernel"), "kernel").ok().flatten();
        gadget = check_snap_with_track(h.get("gadget"), "gadget").ok().flatten();
        if !base.is_empty() {
            base_snap = Some(ModelSnap {
                name: base.clone(),
                id: String::new(),
                snap_type: "base".into(),
                default_channel: String::new(),
                pinned_track: String::new(),
                presence: "required".into(),
                modes: vec!["run".into()],
            });
        }
        for name in h.get("required-snaps").and_then(Value::as_list).unwrap_or(&[]) {
            if let Some(name) = name.as_str() {
                others.push(ModelSnap {
                    name: name.to_owned(),
                    id: String::new(),
                    snap_type: String::new(),
                    default_channel: String::new(),
                    pinned_track: String::new(),
                    presence: "required".into(),
                    modes: vec!["run".into()],
                });
            }
        }
    }
    let mut snaps: Vec<ModelSnap> =
        [&snapd, &kernel, &base_snap, &gadget].into_iter().flatten().cloned().collect();
    snaps.extend(others);
    let authority_list = |name: &str| -> Vec<String> {
        let mut ids =
            string_list_in(h.get(name), "", is_valid_account_id).ok().flatten().unwrap_or_default();
        if !ids.contains(&brand) {
            ids.insert(0, brand.clone());
        }
        ids
    };
    let system_user_authority = match h.get("system-user-authority") {
        Some(Value::String(s)) if s == "*" => None,
        _ => Some(authority_list("system-user-authority")),
    };
    let display_name = h
        .get_str("display-name")
        .filter(|d| !d.is_empty())
        .map_or_else(|| s("model"), str::to_owned);
    Model {
        authority_id: s("authority-id"),
        brand_id: brand.clone(),
        model: s("model"),
        series: s("series"),
        display_name,
        architecture: s("architecture"),
        base,
        classic,
        distribution: s("distribution"),
        grade,
        storage_safety,
        store: s("store"),
        revision: h.get_str("revision").and_then(|r| r.parse().ok()).unwrap_or(0),
        timestamp: s("timestamp"),
        gadget,
        kernel,
        snaps,
        serial_authority: authority_list("serial-authority"),
        system_user_authority,
        sign_key: s("sign-key-sha3-384"),
    }
}

/// How snapd would classify a remodel from one model to the other (devicestate `ClassifyRemodel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RemodelKind {
    /// Same brand and model, same store: a new revision or contents.
    Update,
    /// Same brand and model, other store.
    StoreSwitch,
    /// Brand or model name changed: the device needs a new serial.
    Reregistration,
}

impl RemodelKind {
    /// What it means, in plain words; `model diff` and `remodel --check` both print it.
    pub fn describe(self) -> &'static str {
        match self {
            RemodelKind::Update => "update (same brand, model and store)",
            RemodelKind::StoreSwitch => "store switch (same brand and model, new store)",
            RemodelKind::Reregistration => {
                "re-registration (new brand or model: the device asks for a new serial)"
            }
        }
    }
}

/// One changed value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// What changed: a header name, or `snap NAME: field`.
    pub what: String,
    /// Old value ("" when absent).
    pub old: String,
    /// New value ("" when absent).
    pub new: String,
}

/// What changed between two models, for `model diff` and the remodel pre-flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelDiff {
    /// snapd's remodel kind.
    pub kind: RemodelKind,
    /// Changed model-level values (brand-id, model, series, architecture, base, grade, …).
    pub headers: Vec<Change>,
    /// Snaps only in the new model.
    pub added: Vec<ModelSnap>,
    /// Snaps only in the old model.
    pub removed: Vec<ModelSnap>,
    /// Changes of snaps in both (type, id, default-channel, pinned-track, presence, modes).
    pub changed: Vec<Change>,
}

impl ModelDiff {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
            && self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
    }

    /// The change of a model-level value, if it changed.
    pub fn header(&self, what: &str) -> Option<&Change> {
        self.headers.iter().find(|c| c.what == what)
    }
}

/// The lines saying what changes, as `model diff` and `remodel --check` print them.
pub fn render_changes(d: &ModelDiff) -> String {
    let or_none = |s: &str| if s.is_empty() { "(none)".to_owned() } else { s.to_owned() };
    let channel = |s: &ModelSnap| {
        if !s.default_channel.is_empty() {
            s.default_channel.clone()
        } else if !s.pinned_track.is_empty() {
            s.pinned_track.clone()
        } else {
            "the default channel".to_owned()
        }
    };
    if d.is_empty() {
        return "no differences: the models name the same snaps and channels\n".to_owned();
    }
    let mut out = String::from("what changes:\n");
    for c in d.headers.iter().chain(&d.changed) {
        out.push_str(&format!("  - {}: {} -> {}\n", c.what, or_none(&c.old), or_none(&c.new)));
    }
    for s in &d.added {
        out.push_str(&format!("  - add {} ({}, from {})\n", s.name, s.presence, channel(s)));
    }
    for s in &d.removed {
        out.push_str(&format!(
            "  - {} is no longer in the model (snapd leaves it installed)\n",
            s.name
        ));
    }
    out
}

/// Compares two models.
pub fn diff(old: &Model, new: &Model) -> ModelDiff {
    let kind = if old.brand_id != new.brand_id || old.model != new.model {
        RemodelKind::Reregistration
    } else if old.store != new.store {
        RemodelKind::StoreSwitch
    } else {
        RemodelKind::Update
    };
    let snap_name = |s: &Option<ModelSnap>| s.as_ref().map_or_else(String::new, |s| s.name.clone());
    let fields: Vec<(&str, String, String)> = vec![
        ("brand-id", old.brand_id.clone(), new.brand_id.clone()),
        ("model", old.model.clone(), new.model.clone()),
        ("series", old.series.clone(), new.series.clone()),
        ("architecture", old.architecture.clone(), new.architecture.clone()),
        ("classic", old.classic.to_string(), new.classic.to_string()),
        ("distribution", old.distribution.clone(), new.distribution.clone()),
        ("grade", old.grade.clone(), new.grade.clone()),
        ("storage-safety", old.storage_safety.clone(), new.storage_safety.clone()),
        ("base", old.base.clone(), new.base.clone()),
        ("gadget", snap_name(&old.gadget), snap_name(&new.gadget)),
        ("kernel", snap_name(&old.kernel), snap_name(&new.kernel)),
        ("store", old.store.clone(), new.store.clone()),
        ("display-name", old.display_name.clone(), new.display_name.clone()),
        ("revision", old.revision.to_string(), new.revision.to_string()),
        ("serial-authority", old.serial_authority.join(","), new.serial_authority.join(",")),
        (
            "system-user-authority",
            old.system_user_authority.as_ref().map_or("*".into(), |l| l.join(",")),
            new.system_user_authority.as_ref().map_or("*".into(), |l| l.join(",")),
        ),
        ("timestamp", old.timestamp.clone(), new.timestamp.clone()),
        ("sign-key-sha3-384", old.sign_key.clone(), new.sign_key.clone()),
    ];
    let headers = fields
        .into_iter()
        .filter(|(_, o, n)| o != n)
        .map(|(what, old, new)| Change { what: what.to_owned(), old, new })
        .collect();
    let added =
        new.snaps.iter().filter(|s| !old.snaps.iter().any(|o| o.name == s.name)).cloned().collect();
    let removed =
        old.snaps.iter().filter(|s| !new.snaps.iter().any(|n| n.name == s.name)).cloned().collect();
    let mut changed = Vec::new();
    for o in &old.snaps {
        let Some(n) = new.snaps.iter().find(|n| n.name == o.name) else { continue };
        for (field, a, b) in [
            ("type", &o.snap_type, &n.snap_type),
            ("id", &o.id, &n.id),
            ("default-channel", &o.default_channel, &n.default_channel),
            ("pinned-track", &o.pinned_track, &n.pinned_track),
            ("presence", &o.presence, &n.presence),
        ] {
            if a != b {
                changed.push(Change {
                    what: format!("snap {}: {field}", o.name),
                    old: a.clone(),
                    new: b.clone(),
                });
            }
        }
        if o.modes != n.modes {
            changed.push(Change {
                what: format!("snap {}: modes", o.name),
                old: o.modes.join(","),
                new: n.modes.join(","),
            });
        }
    }
    ModelDiff { kind, headers, added, removed, changed }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "Jv8_JiHiIzJVcO9M55pPdqSDWUvuhfDIBJUS-3VW7F_idjix7Ffn5qMxB21ZQuij";
    const GADGET_ID: &str = "UqFziVZDHLSyO3TqSWgNBoAdHbLI4dAH";
    const KERNEL_ID: &str = "pYVQrBcKmBa0mZ4CCN7ExT6jH8rY1hza";

    /// A valid UC22 model as header text, which tests edit.
    fn uc22() -> String {
        format!(
            "type: model
authority-id: brand
series: 16
brand-id: brand
model: appliance
architecture: amd64
base: core22
grade: signed
snaps:
  -
    default-channel: 22/stable
    id: {GADGET_ID}
    name: pc
    type: gadget
  -
    default-channel: 22/stable
    id: {KERNEL_ID}
    name: pc-kernel
    type: kernel
  -
    default-channel: latest/stable
    id: amcUKQILKXHHTlmSa7NMdnXSx02dNeeT
    name: core22
    type: base
  -
    default-channel: latest/stable
    id: PMrrV4ml8uWuEUDBT8dSGnKUYbevVhc4
    name: snapd
    type: snapd
timestamp: 2024-01-01T00:00:00+00:00
sign-key-sha3-384: {KEY}"
        )
    }

    fn uc18() -> String {
        format!(
            "type: model
authority-id: brand
series: 16
brand-id: brand
model: appliance
architecture: armhf
base: core18
gadget: pi=18
kernel: pi-kernel=18
required-snaps:
  - network-manager
timestamp: 2019-01-01T00:00:00Z
sign-key-sha3-384: {KEY}"
        )
    }

    fn problems(head: &str) -> Vec<String> {
        let h = super::super::parse::parse_headers(head.as_bytes()).unwrap();
        validate(&h).into_iter().map(|p| p.message).collect()
    }

    /// Each rule: an edit of a valid model and the exact problems snapd's words give.
    fn check(base: &str, from: &str, to: &str, want: &[&str]) {
        assert!(base.contains(from), "{from}");
        let head = base.replacen(from, to, 1);
        assert_eq!(problems(&head), want, "edit {from:?} -> {to:?}");
    }

    #[test]
    fn valid_models_have_no_problems() {
        assert_eq!(problems(&uc22()), Vec::<String>::new());
        assert_eq!(problems(&uc18()), Vec::<String>::new());
    }

    #[test]
    fn brand_must_be_authority() {
        check(
            &uc22(),
            "authority-id: brand",
            "authority-id: other",
            &[
                r#"authority-id and brand-id must match, model assertions are expected to be signed by the brand: "other" != "brand""#,
            ],
        );
    }

    #[test]
    fn model_name() {
        check(
            &uc22(),
            "model: appliance",
            "model: Appliance",
            &[r#""model" header cannot contain uppercase letters"#],
        );
        check(
            &uc22(),
            "model: appliance",
            "model: a_b",
            &[r#""model" header contains invalid characters: "a_b""#],
        );
        check(&uc22(), "model: appliance\n", "", &[r#""model" header is mandatory"#]);
    }

    #[test]
    fn classic_bool() {
        check(
            &uc18(),
            "series: 16",
            "series: 16\nclassic: yes",
            &[r#""classic" header must be 'true' or 'false'"#],
        );
    }

    #[test]
    fn grade_and_storage_safety() {
        check(
            &uc22(),
            "grade: signed",
            "grade: secret",
            &["grade for model must be secured|signed|dangerous, not \"secret\""],
        );
        check(
            &uc22(),
            "grade: signed",
            "grade: secured\nstorage-safety: prefer-encrypted",
            &[
                r#"secured grade model must not have storage-safety overridden, only "encrypted" is valid"#,
            ],
        );
        check(
            &uc22(),
            "grade: signed",
            "grade: signed\nstorage-safety: plain",
            &[
                r#"storage-safety for model must be encrypted|prefer-encrypted|prefer-unencrypted, not "plain""#,
            ],
        );
        check(
            &uc18(),
            "base: core18",
            "base: core18\ngrade: signed\nstorage-safety: encrypted",
            &[
                "cannot specify a grade for model without the extended snaps header",
                "cannot specify storage-safety for model without the extended snaps header",
            ],
        );
    }

    #[test]
    fn extended_conflicts_and_mandatory() {
        check(
            &uc22(),
            "grade: signed",
            "grade: signed\ngadget: pc\nkernel: pc-kernel",
            &[
                r#"cannot specify separate "gadget" header once using the extended snaps header"#,
                r#"cannot specify separate "kernel" header once using the extended snaps header"#,
            ],
        );
        check(
            &uc22(),
            "architecture: amd64\nbase: core22\n",
            "",
            &[r#""architecture" header is mandatory"#, r#""base" header is mandatory"#],
        );
    }

    #[test]
    fn snaps_entries() {
        check(
            &uc22(),
            "    name: pc\n",
            "",
            &[
                r#""name" of snap is mandatory"#,
                r#"one "snaps" header entry must specify the model gadget"#,
            ],
        );
        check(
            &uc22(),
            "name: pc\n",
            "name: PC\n",
            &[
                r#"invalid snap name "PC""#,
                r#"one "snaps" header entry must specify the model gadget"#,
            ],
        );
        check(
            &uc22(),
            &format!("    id: {GADGET_ID}\n"),
            "",
            &[
                r#""id" of snap "pc" is mandatory for signed grade model"#,
                r#"one "snaps" header entry must specify the model gadget"#,
            ],
        );
        check(
            &uc22(),
            "type: gadget",
            "type: thing",
            &[
                r#"type of snap "pc" must be one of app|base|gadget|kernel|core|snapd"#,
                r#"one "snaps" header entry must specify the model gadget"#,
            ],
        );
        check(
            &uc22(),
            "default-channel: 22/stable",
            "default-channel: stable",
            &[
                r#"default channel for snap "pc" must specify a track"#,
                r#"one "snaps" header entry must specify the model gadget"#,
            ],
        );
        check(
            &uc22(),
            "default-channel: 22/stable",
            "default-channel: 22/solid",
            &[
                r#"invalid default channel for snap "pc": invalid risk in channel name: 22/solid"#,
                r#"one "snaps" header entry must specify the model gadget"#,
            ],
        );
        check(
            &uc22(),
            "type: gadget",
            "type: gadget\n    presence: optional",
            &[
                r#"essential snaps are always available, cannot specify modes or presence for snap "pc""#,
            ],
        );
        check(
            &uc22(),
            "type: gadget",
            "type: gadget\n    modes:\n      - run",
            &[
                r#"essential snaps are always available, cannot specify modes or presence for snap "pc""#,
            ],
        );
        check(
            &uc22(),
            "name: core22\n    type: base",
            "name: core22\n    type: app",
            &[r#"boot base "core22" must specify type "base", not "app""#],
        );
        check(
            &uc22(),
            "name: pc-kernel\n    type: kernel",
            "name: pc\n    type: kernel",
            &[r#"cannot list the same snap "pc" multiple times"#],
        );
        check(
            &uc22(),
            KERNEL_ID,
            GADGET_ID,
            &[&format!(
                r#"cannot specify the same snap id "{GADGET_ID}" multiple times, specified for snaps "pc" and "pc-kernel""#
            )],
        );
        check(
            &uc22(),
            "name: snapd\n    type: snapd",
            "name: extra\n    type: app\n    presence: sometimes",
            &[r#"presence of snap "extra" must be one of required|optional"#],
        );
        check(
            &uc22(),
            "name: snapd\n    type: snapd",
            "name: extra\n    modes:\n      - Run",
            &[r#""modes" of snap "extra" contains an invalid element: "Run""#],
        );
        check(
            &uc22(),
            "name: snapd\n    type: snapd",
            "name: pc2\n    type: gadget",
            &[r#"cannot specify multiple gadget snaps: "pc" and "pc2""#],
        );
        check(
            &uc22(),
            "snaps:\n",
            "snaps: none\nold-snaps:\n",
            &[r#""snaps" header must be a list of maps"#],
        );
    }

    #[test]
    fn kernel_and_gadget_required_in_extended() {
        let no_kernel =
            uc22().replacen("name: pc-kernel\n    type: kernel", "name: extra\n    type: app", 1);
        assert_eq!(
            problems(&no_kernel),
            [r#"one "snaps" header entry must specify the model kernel"#]
        );
    }

    #[test]
    fn base_must_be_well_known_or_listed() {
        let head = uc22().replace("base: core22", "base: mybase").replacen(
            "name: core22",
            "name: other",
            1,
        );
        assert_eq!(
            problems(&head),
            [
                r#"cannot specify not well-known base "mybase" without a corresponding "snaps" header entry"#
            ]
        );
        let dangerous = head.replace("grade: signed", "grade: dangerous");
        assert_eq!(problems(&dangerous), Vec::<String>::new());
    }

    #[test]
    fn distribution_rules() {
        check(&uc22(), "series: 16", "series: 16\ndistribution: ubuntu", &[
            "cannot specify distribution for model unless it is classic and has an extended snaps header",
        ]);
        check(
            &uc22(),
            "series: 16",
            "series: 16\nclassic: true\ndistribution: Ubuntu",
            &[
                r#""distribution" header contains invalid characters: "Ubuntu", see distribution ID in os-release spec"#,
            ],
        );
        check(
            &uc22(),
            "series: 16",
            "series: 16\nclassic: true",
            &[r#""distribution" header is mandatory, see distribution ID in os-release spec"#],
        );
    }

    #[test]
    fn uc18_rules() {
        check(
            &uc18(),
            "gadget: pi=18",
            "gadget: pi=stable",
            &[r#""gadget" channel selector must be a track name"#],
        );
        check(
            &uc18(),
            "kernel: pi-kernel=18",
            "kernel: pi-kernel=18/beta",
            &[r#""kernel" channel selector must be a track name only"#],
        );
        check(
            &uc18(),
            "kernel: pi-kernel=18",
            "kernel: Pi",
            &[r#"invalid snap name in "kernel" header: Pi"#],
        );
        check(&uc18(), "gadget: pi=18\n", "", &[r#""gadget" header is mandatory"#]);
        check(
            &uc18(),
            "  - network-manager",
            "  - NM",
            &[r#"invalid snap name in "required-snaps" header: NM"#],
        );
        check(
            &uc18(),
            "required-snaps:\n  - network-manager",
            "required-snaps: nm",
            &[r#""required-snaps" header must be a list of strings"#],
        );
        check(
            &uc18(),
            "base: core18",
            "base: Core",
            &[r#"invalid snap name in "base" header: Core"#],
        );
        check(
            &uc18(),
            "series: 16",
            "series: 16\nclassic: true",
            &[
                "cannot specify a kernel with a non-extended classic model",
                "cannot specify a base with a non-extended classic model",
            ],
        );
    }

    #[test]
    fn authorities_and_timestamp() {
        check(
            &uc22(),
            "grade: signed",
            "grade: signed\nserial-authority: x",
            &[r#""serial-authority" header must be a list of account ids"#],
        );
        check(
            &uc22(),
            "grade: signed",
            "grade: signed\npreseed-authority:\n  - A",
            &[r#""preseed-authority" header must be a list of account ids"#],
        );
        check(&uc22(), "grade: signed", "grade: signed\nserial-authority:\n  - other-brand", &[]);
        check(
            &uc22(),
            "grade: signed",
            "grade: signed\nsystem-user-authority: some",
            &[r#""system-user-authority" header must be '*' or a list of account ids"#],
        );
        check(
            &uc22(),
            "timestamp: 2024-01-01T00:00:00+00:00",
            "timestamp: yesterday",
            &[
                r#""timestamp" header is not a RFC3339 date: parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006""#,
            ],
        );
    }

    #[test]
    fn validation_sets() {
        check(&uc22(), "grade: signed", "grade: signed\nvalidation-sets:\n  -\n    name: set\n    mode: enforce\n  -\n    name: set\n    mode: maybe", &[
            r#""mode" of validation-set "brand/set" must be prefer-enforce|enforce"#,
            r#"cannot add validation set "brand/set" twice"#,
        ]);
    }

    #[test]
    fn all_problems_reported_together() {
        let head = uc22()
            .replace("model: appliance", "model: Bad")
            .replace("grade: signed", "grade: x")
            .replace("authority-id: brand", "authority-id: b2");
        assert_eq!(problems(&head).len(), 3, "{:?}", problems(&head));
    }

    #[test]
    fn view_applies_defaults() {
        let h = super::super::parse::parse_headers(uc22().as_bytes()).unwrap();
        let m = view(&h);
        assert_eq!(m.grade, "signed");
        assert_eq!(m.storage_safety, "prefer-encrypted");
        assert_eq!(m.gadget.as_ref().unwrap().default_channel, "22/stable");
        assert_eq!(
            m.snaps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["snapd", "pc-kernel", "core22", "pc"]
        );
        assert_eq!(m.snaps[0].modes, ["run", "ephemeral"]);
        assert_eq!(m.serial_authority, ["brand"]);
        assert_eq!(m.display_name, "appliance");
        let h = super::super::parse::parse_headers(uc18().as_bytes()).unwrap();
        let m = view(&h);
        assert_eq!(m.grade, "");
        assert_eq!(m.kernel.as_ref().unwrap().pinned_track, "18");
        assert_eq!(m.snaps.last().unwrap().name, "network-manager");
    }

    #[test]
    fn diff_classifies_and_lists_changes() {
        let parse = |s: &str| view(&super::super::parse::parse_headers(s.as_bytes()).unwrap());
        let old = parse(&uc22());
        assert!(diff(&old, &old).is_empty());
        let new = parse(&uc22().replace("grade: signed", "grade: signed\nrevision: 2").replacen("22/stable", "22/edge", 1).replace("name: snapd\n    type: snapd", "name: snapd\n    type: snapd\n  -\n    id: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n    name: extra"));
        let d = diff(&old, &new);
        assert_eq!(d.kind, RemodelKind::Update);
        assert_eq!(d.header("revision").unwrap().new, "2");
        assert_eq!(d.added.len(), 1);
        assert_eq!(
            d.changed,
            [Change {
                what: "snap pc: default-channel".into(),
                old: "22/stable".into(),
                new: "22/edge".into()
            }]
        );
        let store = parse(&uc22().replace("grade: signed", "grade: signed\nstore: mystore"));
        assert_eq!(diff(&old, &store).kind, RemodelKind::StoreSwitch);
        let rereg = parse(&uc22().replace("model: appliance", "model: other"));
        assert_eq!(diff(&old, &rereg).kind, RemodelKind::Reregistration);
        let to18 = parse(&uc18());
        let d = diff(&old, &to18);
        assert_eq!(d.header("grade").unwrap().old, "signed");
        assert_eq!(d.header("grade").unwrap().new, "");
    }
}
