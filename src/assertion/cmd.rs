//! `pocketses model …`: validate, show, verify, sign, diff. \[io\]
//!
//! The I/O edge of the assertion module: reads files and stdin, asks snapd for the device's
//! model, reads keys from [`crate::keys::KeyStore`], looks at the clock, then hands values to
//! the pure code in [`crate::assertion`].

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};

use super::model::{self, Model};
use super::time::Timestamp;
use super::trust::Database;
use super::{decode_stream, encode, Assertion, Headers, Value};

/// Flags of this command.
#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ModelCommand,
}

/// `model` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ModelCommand {
    /// Check model assertions (or unsigned JSON/YAML model inputs) by snapd's rules; print every problem.
    Validate {
        /// Files holding a model assertion, or a JSON/YAML input as `model sign` takes.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Show a model: brand, model, grade, base, gadget, kernel and snaps.
    Show {
        /// The model assertion file; the device's current model (from snapd) when absent.
        file: Option<PathBuf>,
        /// Print the headers (and body) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify a model's signature and its whole chain of trust.
    Verify {
        /// The model assertion (the file may also hold its account-key and account).
        file: PathBuf,
        /// Files with more assertions (accounts, account-keys) to check along the way.
        #[arg(long, num_args = 1..)]
        assertions: Vec<PathBuf>,
        /// Trust roots replacing snapd's built-in ones: a root account-key and the account it signs for.
        #[arg(long, num_args = 1..)]
        trusted: Vec<PathBuf>,
    },
    /// Sign an assertion from JSON (as `snap sign` takes, all values strings) or YAML; models are validated first.
    Sign {
        /// Name of the key to sign with (see `pocketses key list`).
        #[arg(long, short = 'k')]
        key: String,
        /// The input file; `-` reads stdin.
        input: PathBuf,
        /// Set the `timestamp` header: `now`, or an RFC 3339 time.
        #[arg(long)]
        timestamp: Option<String>,
        /// Creation time written in the signature (RFC 3339), for reproducible output; default now.
        #[arg(long)]
        signature_time: Option<String>,
    },
    /// Show what changed between two models, as the remodel pre-flight sees it.
    Diff {
        /// The current model.
        old: PathBuf,
        /// The new model.
        new: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs the command.
///
/// # Errors
/// When the command fails; the message follows snapd's grammar.
pub fn main(args: ModelArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ModelCommand::Validate { files } => validate_files(&files),
        ModelCommand::Show { file, json } => show(file.as_deref(), json),
        ModelCommand::Verify { file, assertions, trusted } => verify(&file, &assertions, &trusted),
        ModelCommand::Sign { key, input, timestamp, signature_time } => {
            sign(&key, &input, timestamp.as_deref(), signature_time.as_deref())
        }
        ModelCommand::Diff { old, new, json } => diff(&old, &new, json),
    }
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).context("cannot read stdin")?;
        return Ok(buf);
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn now() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    Timestamp::from_unix(secs)
}

/// Reads every assertion of a file (a stream).
fn read_assertions(path: &Path) -> anyhow::Result<Vec<Assertion>> {
    let bytes = read(path)?;
    decode_stream(&bytes).with_context(|| format!("cannot decode assertions in {}", path.display()))
}

/// Whether the bytes look like a JSON or YAML input rather than an assertion.
fn is_input(path: &Path, bytes: &[u8]) -> bool {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    matches!(ext, "json" | "yaml" | "yml")
        || bytes.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'{')
}

/// Parses a `snap sign`-style input: a JSON object of strings (YAML also accepted, where
/// integers and booleans are taken as their text); `body` is the body.
///
/// # Errors
/// When the input is not an object of strings, lists and maps.
pub fn parse_input(bytes: &[u8]) -> anyhow::Result<(Headers, String)> {
    let text = std::str::from_utf8(bytes).context("cannot read input: not UTF-8")?;
    let json: serde_json::Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).context("cannot decode JSON input")?
    } else {
        let yaml: serde_json::Value = crate::yaml::from_str(text)
            .map_err(|e| anyhow::anyhow!("cannot decode YAML input: {e}"))?;
        stringify_yaml_scalars(yaml)?
    };
    let serde_json::Value::Object(map) = json else {
        bail!("cannot use input: expected an object of headers")
    };
    let mut headers = Headers::default();
    let mut body = String::new();
    for (name, value) in &map {
        if name == "body" {
            let serde_json::Value::String(b) = value else {
                bail!("cannot use input: \"body\" must be a string")
            };
            body = b.clone();
            continue;
        }
        let value = Value::from_json(value)
            .map_err(|e| anyhow::anyhow!("cannot use input: header {name:?}: {e}"))?;
        headers.insert(name, value);
    }
    Ok((headers, body))
}

fn stringify_yaml_scalars(v: serde_json::Value) -> anyhow::Result<serde_json::Value> {
    use serde_json::Value as J;
    Ok(match v {
        J::Bool(b) => J::String(b.to_string()),
        J::Number(n) if n.is_i64() || n.is_u64() => J::String(n.to_string()),
        J::Number(n) => bail!("cannot use input: quote the number {n}, header values are strings"),
        J::Null => bail!("cannot use input: null is not a header value"),
        J::Array(a) => {
            J::Array(a.into_iter().map(stringify_yaml_scalars).collect::<Result<_, _>>()?)
        }
        J::Object(o) => J::Object(
            o.into_iter()
                .map(|(k, v)| Ok((k, stringify_yaml_scalars(v)?)))
                .collect::<anyhow::Result<_>>()?,
        ),
        s @ J::String(_) => s,
    })
}

/// The headers of the model in a file: an assertion's (the first model of the stream) or an input's.
fn model_headers(path: &Path) -> anyhow::Result<Headers> {
    let bytes = read(path)?;
    if is_input(path, &bytes) {
        let (mut headers, _) = parse_input(&bytes)?;
        if !headers.contains("type") {
            headers.insert("type", Value::from("model"));
        }
        return Ok(headers);
    }
    let all = decode_stream(&bytes)
        .with_context(|| format!("cannot decode model assertion in {}", path.display()))?;
    let model = all
        .into_iter()
        .find(|a| a.type_name() == "model")
        .with_context(|| format!("cannot find a model assertion in {}", path.display()))?;
    Ok(model.headers().clone())
}

fn validate_files(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    for path in files {
        let shown = path.display();
        let headers = match model_headers(path) {
            Ok(h) => h,
            Err(e) => {
                writeln!(out, "{shown}: {e:#}")?;
                failed = true;
                continue;
            }
        };
        let problems = model::validate(&headers);
        if problems.is_empty() {
            writeln!(out, "{shown}: valid")?;
        }
        for p in &problems {
            writeln!(out, "{shown}: {p}")?;
        }
        failed |= !problems.is_empty();
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn current_model_text() -> anyhow::Result<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let client = crate::snapd::Client::from_env();
    runtime.block_on(client.model()).context("cannot get the device's model from snapd")
}

fn show(file: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let (headers, body) = match file {
        Some(path) => {
            let bytes = read(path)?;
            if is_input(path, &bytes) {
                parse_input(&bytes)?
            } else {
                let all = decode_stream(&bytes).with_context(|| {
                    format!("cannot decode model assertion in {}", path.display())
                })?;
                let a = all
                    .into_iter()
                    .find(|a| a.type_name() == "model")
                    .context("cannot find a model assertion")?;
                (a.headers().clone(), a.body().to_owned())
            }
        }
        None => {
            let text = current_model_text()?;
            let a = super::decode(text.as_bytes())
                .context("cannot decode the device's model assertion")?;
            (a.headers().clone(), a.body().to_owned())
        }
    };
    let mut out = std::io::stdout().lock();
    if json {
        let doc = ShowDoc { model: model::view(&headers), headers: headers.to_json(), body };
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
    } else {
        write!(out, "{}", summary(&model::view(&headers)))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `model show --json`: the headers as written, the body if any, and the typed view with
/// snapd's defaults applied.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
struct ShowDoc {
    headers: serde_json::Value,
    body: String,
    model: Model,
}

/// The readable summary `model show` prints.
pub fn summary(m: &Model) -> String {
    let or_dash = |s: &str| if s.is_empty() { "-".to_owned() } else { s.to_owned() };
    let snap_desc = |s: &Option<model::ModelSnap>| match s {
        None => "-".to_owned(),
        Some(s) if !s.pinned_track.is_empty() => format!("{}={}", s.name, s.pinned_track),
        Some(s) if !s.default_channel.is_empty() => format!("{} ({})", s.name, s.default_channel),
        Some(s) => s.name.clone(),
    };
    let mut out = String::new();
    let mut row = |k: &str, v: String| out.push_str(&format!("{k:<16}{v}\n"));
    row("brand-id:", m.brand_id.clone());
    row("model:", m.model.clone());
    row("display-name:", m.display_name.clone());
    row("revision:", m.revision.to_string());
    row("architecture:", or_dash(&m.architecture));
    row("classic:", m.classic.to_string());
    row("grade:", if m.grade.is_empty() { "- (pre-UC20)".into() } else { m.grade.clone() });
    row("storage-safety:", or_dash(&m.storage_safety));
    row(
        "base:",
        match (m.base.is_empty(), m.classic) {
            (false, _) => m.base.clone(),
            (true, true) => "-".into(),
            (true, false) => "core (UC16)".into(),
        },
    );
    row("gadget:", snap_desc(&m.gadget));
    row("kernel:", snap_desc(&m.kernel));
    row("store:", or_dash(&m.store));
    row("timestamp:", or_dash(&m.timestamp));
    row("sign-key:", or_dash(&m.sign_key));
    if !m.snaps.is_empty() {
        out.push_str(&format!(
            "\n{:<28} {:<8} {:<22} {:<9} {:<16} {}\n",
            "Name", "Type", "Default-channel", "Presence", "Modes", "Id"
        ));
        for s in &m.snaps {
            let channel = if !s.default_channel.is_empty() {
                s.default_channel.clone()
            } else if !s.pinned_track.is_empty() {
                format!("{}/stable", s.pinned_track)
            } else {
                "-".into()
            };
            out.push_str(&format!(
                "{:<28} {:<8} {:<22} {:<9} {:<16} {}\n",
                s.name,
                or_dash(&s.snap_type),
                channel,
                s.presence,
                s.modes.join(","),
                or_dash(&s.id)
            ));
        }
    }
    out
}

fn verify(file: &Path, assertions: &[PathBuf], trusted: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let bytes = read(file)?;
    let all = match decode_stream(&bytes) {
        Ok(all) => all,
        Err(err) => match super::unsigned(&bytes) {
            Some(unsigned) => {
                bail!(
                    "cannot read model assertion: {}",
                    unsigned.explain(&file.display().to_string())
                )
            }
            None => bail!("cannot decode assertions in {}: {err}", file.display()),
        },
    };
    let Some(target) = all.iter().find(|a| a.type_name() == "model").cloned() else {
        bail!("cannot find a model assertion in {}", file.display());
    };
    let mut db = if trusted.is_empty() {
        Database::builtin()
    } else {
        let mut roots = Vec::new();
        for path in trusted {
            roots.extend(read_assertions(path)?);
        }
        Database::new(roots)
    };
    db.add(all.iter().filter(|a| a.content() != target.content()).cloned());
    for path in assertions {
        db.add(read_assertions(path)?);
    }
    let mut out = std::io::stdout().lock();
    let problems = model::validate(target.headers());
    if !problems.is_empty() {
        for p in &problems {
            writeln!(out, "{}: {p}", file.display())?;
        }
        bail!("cannot verify model assertion: it is not valid ({} problems)", problems.len());
    }
    match db.verify_chain(&target, now()) {
        Ok(links) => {
            for link in &links {
                let by = if link.by_trusted_key { " (trusted)" } else { "" };
                writeln!(out, "{}: signed by {}{by}", link.reference, link.sign_key)?;
            }
            writeln!(out, "{}: verified", file.display())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => bail!("cannot verify model assertion: {e}"),
    }
}

fn parse_time_flag(flag: &str, value: &str) -> anyhow::Result<Timestamp> {
    if value == "now" {
        return Ok(now());
    }
    Timestamp::parse(value).map_err(|e| anyhow::anyhow!("invalid --{flag}: {e}"))
}

fn sign(
    key_name: &str,
    input: &Path,
    timestamp: Option<&str>,
    signature_time: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let bytes = read(input)?;
    let (mut headers, body) = parse_input(&bytes)?;
    if !headers.contains("type") {
        bail!("cannot sign assertion: \"type\" header is mandatory");
    }
    if let Some(ts) = timestamp {
        let t = parse_time_flag("timestamp", ts)?;
        let text = if ts == "now" { t.to_rfc3339_utc() } else { ts.to_owned() };
        headers.insert("timestamp", Value::String(text));
    }
    let store = crate::keys::KeyStore::from_env()?;
    let key = store.get(key_name)?;
    crate::keys::check_signing_key(&key).context("cannot sign assertion")?;
    if headers.get_str("type") == Some("model") {
        // Fill the key id first so the check sees what will be signed.
        let mut check = headers.clone();
        check.insert(
            "sign-key-sha3-384",
            Value::String(super::openpgp::PublicKey::from_rsa(key.to_public_key()).id().to_owned()),
        );
        let problems = model::validate(&check);
        if !problems.is_empty() {
            let mut err = std::io::stderr().lock();
            for p in &problems {
                writeln!(err, "{}: {p}", input.display())?;
            }
            bail!("cannot sign model assertion: it is not valid ({} problems)", problems.len());
        }
    }
    let sig_time = match signature_time {
        Some(s) => parse_time_flag("signature-time", s)?,
        None => now(),
    };
    let creation = u32::try_from(sig_time.unix)
        .context("invalid --signature-time: outside OpenPGP's range (1970..2106)")?;
    let signed = super::sign::sign(&headers, &body, &key, creation)?;
    std::io::stdout().lock().write_all(&encode(&signed))?;
    Ok(ExitCode::SUCCESS)
}

/// `model diff`: what changes and what snapd would refuse from the two models alone, in the
/// words of `remodel --check`. Exit 0 when snapd would accept the remodel as far as the models
/// tell, 1 when it would refuse (or on an error).
fn diff(old: &Path, new: &Path, json: bool) -> anyhow::Result<ExitCode> {
    use crate::remodel::plan;
    let old_model = model::view(&model_headers(old)?);
    let new_model = model::view(&model_headers(new)?);
    let d = model::diff(&old_model, &new_model);
    let refusals = match plan::plan(&old_model, &new_model, &plan::Context::models_only()) {
        Ok(_) => Vec::new(),
        Err(refusals) => refusals,
    };
    let mut out = std::io::stdout().lock();
    if json {
        #[derive(serde::Serialize)]
        struct Doc<'a> {
            #[serde(flatten)]
            diff: &'a model::ModelDiff,
            refusals: &'a [plan::Refusal],
        }
        writeln!(out, "{}", serde_json::to_string_pretty(&Doc { diff: &d, refusals: &refusals })?)?;
    } else {
        writeln!(out, "remodel: {}", d.kind.describe())?;
        write!(out, "{}", model::render_changes(&d))?;
        if !refusals.is_empty() {
            write!(out, "{}", plan::render_refusals(&refusals, plan::Origin::Models))?;
        }
    }
    Ok(if refusals.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_yaml_inputs() {
        let (h, body) =
            parse_input(br#"{"type": "model", "series": "16", "body": "hi", "l": ["a"]}"#).unwrap();
        assert_eq!(h.get_str("series"), Some("16"));
        assert_eq!(body, "hi");
        let (h, _) = parse_input(
            b"type: model\nseries: 16\nclassic: false\nsnaps:\n  - name: pc\n    type: gadget\n",
        )
        .unwrap();
        assert_eq!(h.get_str("series"), Some("16"));
        assert_eq!(h.get_str("classic"), Some("false"));
        assert_eq!(
            h.get("snaps").unwrap().as_list().unwrap()[0].as_map().unwrap()["type"],
            Value::from("gadget")
        );
        let e = parse_input(br#"{"series": 16}"#).unwrap_err();
        assert!(format!("{e:#}").contains("header values must be strings"), "{e:#}");
        assert!(parse_input(b"series: 1.5\n").is_err());
        assert!(parse_input(b"- a\n").is_err());
    }
}
