//! `pocketses bundle create|sign|verify|show|apply`: make, sign and check update bundles on
//! the operator's machine (or a device, for `verify` and `show`), and apply one on a device
//! without a fleet server (`apply`, [`super::apply`]). \[io\]
//!
//! Output files are written next to their destination under a temporary name and renamed
//! into place, so an interrupted command never leaves half a bundle under the real name.
//! [`extract`] is the device side: verify, then stream every file into a staging directory
//! that is renamed into place only when every check passed.

use std::fs;
use std::io::{self, BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use ed25519_dalek::VerifyingKey;

use super::apply::Progress;
use super::bundle::{self, Description, FileEntry, Kind};
use super::cpio;
use crate::keys::KeyStore;

/// Flags of `pocketses bundle`.
#[derive(Debug, clap::Args)]
pub struct BundleArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: BundleCommand,
}

/// `bundle` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum BundleCommand {
    /// Make an unsigned bundle of snaps, assertions and at most one model.
    Create {
        /// The bundle's version (dotted numbers or a semantic version), as gooseBit shows it.
        #[arg(long)]
        version: String,
        /// A model the bundle is for (gooseBit's hardware model); repeat for several.
        #[arg(long = "hardware", value_name = "MODEL")]
        hardware: Vec<String>,
        /// Where to write the bundle.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
        /// The files: `.snap` files and assertion files (a `type: model` one makes it a remodel).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Sign a bundle with an ed25519 key of the key store (replacing any signature).
    Sign {
        /// The key's name (`key create --type ed25519 NAME`).
        #[arg(long)]
        key: String,
        /// The bundle, rewritten in place.
        file: PathBuf,
    },
    /// Check a bundle's signature against trusted keys, and every file's size and sha256.
    Verify {
        /// A trusted public key (base64, as `key export` prints it) or a file of them;
        /// repeat for several. Default: the `fleet.trusted-keys` configuration.
        #[arg(long = "trusted", value_name = "KEY")]
        trusted: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The bundle.
        file: PathBuf,
    },
    /// Verify a bundle and apply it through snapd (assertions, snaps, then a remodel), as
    /// the fleet client does with a bundle from the server.
    Apply {
        /// A trusted public key (base64, as `key export` prints it) or a file of them;
        /// repeat for several. Default: the `fleet.trusted-keys` configuration.
        #[arg(long = "trusted", value_name = "KEY")]
        trusted: Vec<String>,
        /// Print one JSON object per line.
        #[arg(long)]
        json: bool,
        /// Follow the journal's unfinished action again (after a reboot) instead of a new file.
        #[arg(long, conflicts_with = "file")]
        resume: bool,
        /// The bundle.
        #[arg(required_unless_present = "resume")]
        file: Option<PathBuf>,
    },
    /// Print a bundle's version, hardware, signer and files without checking them.
    Show {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The bundle.
        file: PathBuf,
    },
}

/// `bundle show --json` and `bundle verify --json`.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
struct BundleDoc<'a> {
    file: String,
    version: &'a str,
    hardware: &'a [String],
    signed_by: String,
    verified: bool,
    files: &'a [FileEntry],
}

/// Runs the command.
///
/// # Errors
/// When the command fails; the message follows snapd's grammar.
pub fn main(args: BundleArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        BundleCommand::Create { version, hardware, output, files } => {
            create(&version, &hardware, &files, &output).context("cannot create bundle")?;
        }
        BundleCommand::Sign { key, file } => {
            let key = KeyStore::from_env()?.get_ed25519(&key)?;
            sign(&file, &key).context("cannot sign bundle")?;
        }
        BundleCommand::Verify { trusted, json, file } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the runtime")?;
            let client = crate::snapd::Client::from_env();
            let trusted = runtime.block_on(keys(&client, &trusted, "read"))?;
            let (desc, signer) = verify(&file, &trusted).context("cannot read bundle")?;
            let signer = bundle::encode_public_key(&signer);
            let mut out = io::stdout().lock();
            if json {
                let doc = doc(&file, &desc, signer, true);
                writeln!(out, "{}", serde_json::to_string(&doc)?)?;
            } else {
                writeln!(
                    out,
                    "bundle {} verified: version {}, {} files, signed by {signer}",
                    file.display(),
                    desc.version,
                    desc.files.len()
                )?;
            }
        }
        BundleCommand::Apply { trusted, json, resume: _, file } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the runtime")?;
            return runtime.block_on(apply(file.as_deref(), &trusted, json));
        }
        BundleCommand::Show { json, file } => {
            let (desc, signer) = show(&file).context("cannot read bundle")?;
            let signer = signer.as_ref().map(bundle::encode_public_key).unwrap_or_default();
            let mut out = io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string(&doc(&file, &desc, signer, false))?)?;
            } else {
                write!(out, "{}", render_show(&desc, &signer))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn doc<'a>(file: &Path, desc: &'a Description, signer: String, verified: bool) -> BundleDoc<'a> {
    BundleDoc {
        file: file.display().to_string(),
        version: &desc.version,
        hardware: &desc.hardware,
        signed_by: signer,
        verified,
        files: &desc.files,
    }
}

/// The text of `bundle show`. \[pure\]
pub fn render_show(desc: &Description, signer: &str) -> String {
    let mut s = String::new();
    s.push_str(&format!("version:   {}\n", desc.version));
    let hardware =
        if desc.hardware.is_empty() { "default".to_owned() } else { desc.hardware.join(", ") };
    s.push_str(&format!("hardware:  {hardware}\n"));
    let signer = if signer.is_empty() { "unsigned" } else { signer };
    s.push_str(&format!("signed-by: {signer} (not checked; use bundle verify)\n"));
    s.push_str("files:\n");
    for f in &desc.files {
        s.push_str(&format!(
            "  {:<10} {:>12}  {}  {}\n",
            f.kind.as_str(),
            f.size,
            f.sha256,
            f.filename
        ));
    }
    s
}

/// Reads `--trusted` arguments: each is a public key, or else a file holding keys (a key is
/// tried first: base64 may contain `/`).
///
/// # Errors
/// When an argument is neither a key nor a readable file of keys.
pub fn trusted_keys(args: &[String]) -> anyhow::Result<Vec<VerifyingKey>> {
    let mut out = Vec::new();
    for arg in args {
        match bundle::parse_public_key(arg) {
            Ok(key) => out.push(key),
            Err(_) if Path::new(arg).is_file() => {
                let text = fs::read_to_string(arg).map_err(|e| {
                    anyhow::anyhow!(
                        "cannot read trusted keys {arg}: {}",
                        crate::error::describe_io(&e)
                    )
                })?;
                out.extend(
                    bundle::parse_public_keys(&text)
                        .map_err(|e| anyhow::anyhow!("cannot read trusted keys {arg}: {e}"))?,
                );
            }
            Err(e) => bail!("{e} (and no such file)"),
        }
    }
    Ok(out)
}

fn open_file(path: &Path) -> anyhow::Result<BufReader<fs::File>> {
    let file = fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), crate::error::describe_io(&e)))?;
    Ok(BufReader::with_capacity(64 * 1024, file))
}

/// A temporary path next to `path`, for write-then-rename.
fn temporary(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes with `write` to a temporary file next to `path`, then renames it into place.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(BufWriter<fs::File>) -> anyhow::Result<BufWriter<fs::File>>,
) -> anyhow::Result<()> {
    let tmp = temporary(path);
    let result = (|| {
        let file = fs::File::create(&tmp).map_err(|e| {
            anyhow::anyhow!("{}: {}", path.display(), crate::error::describe_io(&e))
        })?;
        let out = write(BufWriter::with_capacity(64 * 1024, file))?;
        let file =
            out.into_inner().map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.error()))?;
        file.sync_all()?;
        fs::rename(&tmp, path)
            .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), crate::error::describe_io(&e)))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `bundle create`.
///
/// # Errors
/// Unreadable inputs, names a bundle cannot carry, duplicates, a second model, a bad
/// version or hardware name, write errors.
pub fn create(
    version: &str,
    hardware: &[String],
    inputs: &[PathBuf],
    output: &Path,
) -> anyhow::Result<Description> {
    bundle::check_version(version)?;
    for model in hardware {
        bundle::check_hardware(model)?;
    }
    let mut files: Vec<(FileEntry, u32, &Path)> = Vec::with_capacity(inputs.len());
    for path in inputs {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{} has no usable file name", path.display()))?
            .to_owned();
        cpio::check_name(&name).map_err(anyhow::Error::msg)?;
        if name == bundle::DESCRIPTION || name == bundle::SIGNATURE {
            bail!("{name:?} is a name the bundle uses itself");
        }
        if files.iter().any(|(f, _, _)| f.filename == name) {
            bail!("two files are named {name:?}");
        }
        let mut head = [0u8; 64];
        let mut reader = open_file(path)?;
        let n = read_up_to(&mut reader, &mut head)?;
        let kind = Kind::detect(&name, &head[..n])?;
        let (sha256, sum, size) = bundle::digest(&mut open_file(path)?).map_err(|e| {
            anyhow::anyhow!("{}: {}", path.display(), crate::error::describe_io(&e))
        })?;
        if u32::try_from(size).is_err() {
            bail!("{name:?} is {size} bytes; a cpio archive holds files of up to 4 GiB");
        }
        files.push((FileEntry { filename: name, kind, size, sha256 }, sum, path));
    }
    if files.iter().filter(|(f, _, _)| f.kind == Kind::Model).count() > 1 {
        bail!("a bundle carries at most one model");
    }
    let desc = Description {
        version: version.to_owned(),
        hardware: hardware.to_vec(),
        files: files.iter().map(|(f, _, _)| f.clone()).collect(),
    };
    let text = bundle::render(&desc);
    write_atomically(output, |out| {
        let mut failure = None;
        let out = bundle::write(out, text.as_bytes(), None, &mut |w| {
            for (entry, sum, path) in &files {
                let mut data = match open_file(path) {
                    Ok(d) => d,
                    Err(e) => {
                        failure = Some(e);
                        return Err(bundle::Error::Create(String::new()));
                    }
                };
                w.append(&entry.filename, entry.size, *sum, &mut data)?;
            }
            Ok(())
        });
        match (out, failure) {
            (_, Some(e)) => Err(e),
            (Ok(out), None) => Ok(out),
            (Err(e), None) => Err(e.into()),
        }
    })?;
    Ok(desc)
}

fn read_up_to(reader: &mut dyn io::Read, buf: &mut [u8]) -> anyhow::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// `bundle sign`: rewrites `path` with a new `sw-description.sig`.
///
/// # Errors
/// When the bundle cannot be read or its description is invalid, or writing fails.
pub fn sign(path: &Path, key: &ed25519_dalek::SigningKey) -> anyhow::Result<()> {
    let head = bundle::open(open_file(path)?)?;
    head.description_unverified()?;
    let sig = bundle::Sig::sign(&head.description, key);
    let description = head.description.clone();
    write_atomically(path, |out| {
        let mut pending = Some(head);
        Ok(bundle::write(out, &description, Some(&sig), &mut |w| {
            let Some(head) = pending.take() else { return Ok(()) };
            head.for_each_rest(&mut |header, data| {
                match header.check {
                    Some(sum) => w.append(&header.name, header.size, sum, data)?,
                    None => {
                        let mut bytes = Vec::new();
                        io::Read::read_to_end(data, &mut bytes).map_err(cpio::Error::from)?;
                        w.append_bytes(&header.name, &bytes)?;
                    }
                }
                Ok(())
            })
        })?)
    })
}

/// `bundle verify`: the signature, then every file.
///
/// # Errors
/// The first refusal (see `bundle`).
pub fn verify(
    path: &Path,
    trusted: &[VerifyingKey],
) -> anyhow::Result<(Description, VerifyingKey)> {
    let verified = bundle::open(open_file(path)?)?.verify(trusted)?;
    let signer = verified.signer;
    Ok((verified.check_all()?, signer))
}

/// `bundle show`: the description and the claimed signer, unchecked.
///
/// # Errors
/// When the head of the bundle cannot be read.
pub fn show(path: &Path) -> anyhow::Result<(Description, Option<VerifyingKey>)> {
    let head = bundle::open(open_file(path)?)?;
    let desc = head.description_unverified()?;
    Ok((desc, head.sig.map(|s| s.key)))
}

/// Verifies the bundle at `path` and extracts its files into the new directory `dest`
/// ([`super::apply::extract`]).
///
/// # Errors
/// The refusal, or I/O errors; `dest` then does not exist.
pub fn extract(path: &Path, trusted: &[VerifyingKey], dest: &Path) -> anyhow::Result<Description> {
    Ok(super::apply::extract(path, trusted, dest).map_err(anyhow::Error::msg)?.0)
}

/// `bundle apply`: the same checks, snapd calls, journal and progress as a bundle from the
/// fleet server, for a bundle on local storage; or `--resume` the journal's action.
async fn apply(file: Option<&Path>, trusted: &[String], json: bool) -> anyhow::Result<ExitCode> {
    let client = crate::snapd::Client::from_env();
    let keys = keys(&client, trusted, "apply").await?;
    let journal = super::journal::default_path();
    let mut out = io::stdout();
    let mut progress = |p: Progress| {
        if json {
            let line = serde_json::json!({"event": "fleet", "type": "progress",
                "stage": p.stage, "step": p.step, "steps": p.steps, "details": p.details});
            let _ = writeln!(out, "{line}");
        } else {
            for line in &p.details {
                let _ = writeln!(out, "{:<10} {line}", p.stage.as_str());
            }
        }
        let _ = out.flush();
    };
    let (action, result) = match file {
        Some(file) => {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            // Unique per run: the same id would resume that action instead.
            let action = format!("local-{secs}-{}", std::process::id());
            let result =
                super::apply::apply(&client, file, &keys, &journal, &action, &mut progress).await;
            (action, result)
        }
        None => match super::apply::resume(&client, &keys, &journal, &mut progress).await? {
            Some(resumed) => (resumed.action, resumed.result),
            None => bail!("no bundle to resume: {} holds no unfinished action", journal.display()),
        },
    };
    if let Err(e) = super::journal::acknowledge(&journal, &action) {
        eprintln!("warning: {e}");
    }
    match result {
        Ok(outcome) => {
            if json {
                let line = serde_json::json!({"event": "fleet", "type": "result",
                    "result": "success", "action": outcome.action, "version": outcome.version,
                    "changes": outcome.changes});
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            if json {
                let line = serde_json::json!({"event": "fleet", "type": "result",
                    "result": "failure", "action": action, "kind": err.kind,
                    "message": err.to_string(), "details": err.details});
                println!("{line}");
            }
            Err(anyhow::Error::new(err))
        }
    }
}

/// The keys `bundle verify` and `bundle apply` trust: those of `--trusted`, else those of
/// `fleet.trusted-keys`. `verb` names the command in the refusal (`cannot {verb} bundle: no
/// trusted keys …`).
///
/// # Errors
/// As [`trusted_keys`] and [`configured_trusted_keys`].
async fn keys(
    client: &crate::snapd::Client,
    trusted: &[String],
    verb: &str,
) -> anyhow::Result<Vec<VerifyingKey>> {
    if trusted.is_empty() {
        configured_trusted_keys(client, verb).await
    } else {
        trusted_keys(trusted)
    }
}

/// The keys of `fleet.trusted-keys`, read from snapd's configuration of the snap.
///
/// # Errors
/// When snapd cannot be asked, the value is unset, or its file cannot be read.
async fn configured_trusted_keys(
    client: &crate::snapd::Client,
    verb: &str,
) -> anyhow::Result<Vec<VerifyingKey>> {
    let source = crate::snapd::conf::ConfigSource::new(
        client.clone(),
        crate::snapd::snapctl::Snapctl::from_env(),
    );
    // Off a device (an operator's machine) snapd is not there: say what else works.
    let context = "cannot read fleet.trusted-keys (or pass --trusted)";
    let via = source.detect().await.context(context)?;
    let doc = source.document(via).await.context(context)?;
    let loaded = crate::config::from_document(&doc).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("{}", lines.join("\n"))
    })?;
    let Some(keys) = loaded.config.fleet.trusted_keys else {
        bail!("cannot {verb} bundle: no trusted keys (set fleet.trusted-keys or pass --trusted)");
    };
    super::apply::load_trusted(&keys).map_err(anyhow::Error::msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn inputs(dir: &Path) -> Vec<PathBuf> {
        let snap = dir.join("hello_1.snap");
        fs::write(&snap, b"hsqs not really a snap").unwrap();
        let decl = dir.join("hello.assert");
        fs::write(&decl, b"type: snap-declaration\n").unwrap();
        vec![decl, snap]
    }

    #[test]
    fn create_sign_verify_extract() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("b.swu");
        let desc = create("1.0.0", &["pocketses-pc".into()], &inputs(dir.path()), &out).unwrap();
        assert_eq!(desc.files.len(), 2);
        let key = SigningKey::from_bytes(&[1; 32]);
        let trusted = [key.verifying_key()];
        let e = verify(&out, &trusted).unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            "bundle is not signed (no sw-description.sig after sw-description)"
        );
        sign(&out, &key).unwrap();
        assert_eq!(verify(&out, &trusted).unwrap(), (desc.clone(), key.verifying_key()));
        // Signing again with another key replaces the signature.
        let other = SigningKey::from_bytes(&[2; 32]);
        sign(&out, &other).unwrap();
        assert!(verify(&out, &trusted).is_err());
        assert_eq!(verify(&out, &[other.verifying_key()]).unwrap().0, desc);
        let dest = dir.path().join("x");
        assert_eq!(extract(&out, &[other.verifying_key()], &dest).unwrap(), desc);
        assert_eq!(fs::read(dest.join("hello_1.snap")).unwrap(), b"hsqs not really a snap");
        assert_eq!(show(&out).unwrap(), (desc, Some(other.verifying_key())));
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn failed_extraction_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("b.swu");
        create("1.0.0", &[], &inputs(dir.path()), &out).unwrap();
        let key = SigningKey::from_bytes(&[1; 32]);
        sign(&out, &key).unwrap();
        let mut bytes = fs::read(&out).unwrap();
        let at = bytes.windows(4).position(|w| w == b"hsqs").unwrap();
        bytes[at] ^= 1;
        fs::write(&out, &bytes).unwrap();
        let dest = dir.path().join("x");
        let e = extract(&out, &[key.verifying_key()], &dest).unwrap_err();
        assert_eq!(format!("{e:#}"), "entry \"hello_1.snap\" does not match its cpio checksum");
        assert!(!dest.exists());
        assert!(!temporary(&dest).exists());
    }

    #[test]
    fn create_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("b.swu");
        let files = inputs(dir.path());
        let notes = dir.path().join("notes.txt");
        fs::write(&notes, b"hello").unwrap();
        let model_a = dir.path().join("a.model");
        fs::write(&model_a, b"type: model\n").unwrap();
        let model_b = dir.path().join("b.model");
        fs::write(&model_b, b"type: model\n").unwrap();
        let missing = dir.path().join("missing.snap");
        for (version, hardware, inputs, want) in [
            ("x", vec![], files.clone(), "invalid version \"x\": use dotted numbers (1.2.3) or a semantic version (1.2.3-rc.1)"),
            ("1", vec!["1pc".to_owned()], files.clone(), "invalid hardware \"1pc\": a model name starting with a letter (letters, digits, '-', '_')"),
            ("1", vec![], vec![notes], "\"notes.txt\" is neither a snap (.snap) nor an assertion (starting with \"type: \")"),
            ("1", vec![], vec![model_a, model_b], "a bundle carries at most one model"),
            ("1", vec![], vec![files[0].clone(), files[0].clone()], "two files are named \"hello.assert\""),
        ] {
            let e = create(version, &hardware, &inputs, &out).unwrap_err();
            assert_eq!(format!("{e:#}"), want);
        }
        let e = create("1", &[], &[missing], &out).unwrap_err();
        assert!(
            format!("{e:#}")
                .starts_with(&format!("{}: ", dir.path().join("missing.snap").display())),
            "{e:#}"
        );
        assert!(!out.exists());
    }

    #[test]
    fn trusted_keys_from_arguments_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = bundle::encode_public_key(&SigningKey::from_bytes(&[1; 32]).verifying_key());
        let b = bundle::encode_public_key(&SigningKey::from_bytes(&[2; 32]).verifying_key());
        let file = dir.path().join("keys");
        fs::write(&file, format!("# fleet operators\n{b}\n")).unwrap();
        let keys = trusted_keys(&[a.clone(), file.display().to_string()]).unwrap();
        assert_eq!(keys.len(), 2);
        let e = trusted_keys(&["nope".into()]).unwrap_err().to_string();
        assert_eq!(e, "invalid ed25519 public key \"nope\": 3 bytes, want 32 (and no such file)");
    }

    #[test]
    fn show_text() {
        let desc = Description {
            version: "1.0".into(),
            hardware: vec![],
            files: vec![FileEntry {
                filename: "a.snap".into(),
                kind: Kind::Snap,
                size: 3,
                sha256: "ab".into(),
            }],
        };
        assert_eq!(
            render_show(&desc, ""),
            "version:   1.0\nhardware:  default\nsigned-by: unsigned (not checked; use bundle verify)\nfiles:\n  snap                  3  ab  a.snap\n"
        );
    }
}
