//! `pocketses key …`: RSA signing keys for assertions and ed25519 keys for fleet bundles,
//! kept in a private directory.
//!
//! Keys are PKCS#8 PEM files named `NAME.pem` in a directory with mode 0700, each file 0600:
//! `$POCKETSES_KEYS_DIR` if set (tests), else `$SNAP_USER_DATA/keys` inside the snap, else
//! `$XDG_DATA_HOME/pocketses/keys` (`~/.local/share/pocketses/keys`).
//! Private key material is never printed or logged; only public keys and their sha3-384 ids are.
//! Keys are RSA because snapd verifies nothing else; new keys are 4096 bits as snapd requires
//! for signing, and smaller keys are refused at import and at signing with snapd's words
//! (`signing needs at least a 4096 bits key, got 512`). `POCKETSES_KEY_BITS` lowers both, for
//! tests only: key generation is slow.
//!
//! ed25519 keys (`key create --type ed25519`) sign update bundles (`bundle sign`, see
//! `fleet::bundle`), never assertions; `key export` prints their public half as the base64 of
//! its 32 bytes, the form `fleet.trusted-keys` and `bundle verify --trusted` take.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use rsa::RsaPrivateKey;

use ed25519_dalek::SigningKey;

use crate::assertion::openpgp::PublicKey;
use crate::fleet::bundle::encode_public_key;

/// Overrides the key directory.
pub const KEYS_DIR_ENV: &str = "POCKETSES_KEYS_DIR";
/// Test-only override of the size of keys `key create` makes (default 4096).
pub const KEY_BITS_ENV: &str = "POCKETSES_KEY_BITS";
/// Size of new keys: snapd requires at least 4096 bits to sign.
pub const DEFAULT_KEY_BITS: usize = 4096;

/// Flags of this command.
#[derive(Debug, clap::Args)]
pub struct KeyArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: KeyCommand,
}

/// `key` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum KeyCommand {
    /// Create a new key: 4096-bit RSA for assertions, or ed25519 for fleet bundles.
    Create {
        /// Key name.
        name: String,
        /// Key type.
        #[arg(long = "type", value_enum, default_value_t = KeyType::Rsa)]
        key_type: KeyType,
    },
    /// Import an RSA private key from a PEM file (PKCS#1 or PKCS#8, unencrypted).
    Import {
        /// Key name.
        name: String,
        /// PEM file.
        file: PathBuf,
    },
    /// List keys with their sha3-384 ids (RSA: the `sign-key-sha3-384` they sign with) or
    /// public keys (ed25519).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the public key: RSA as an account-key assertion's body needs it, ed25519 as
    /// base64 of its 32 bytes (the form of `fleet.trusted-keys` and `bundle verify --trusted`).
    Export {
        /// Key name.
        name: String,
    },
    /// Delete a key.
    Delete {
        /// Key name.
        name: String,
    },
}

/// The kinds of key the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    /// RSA, for assertions.
    Rsa,
    /// ed25519, for fleet bundles.
    Ed25519,
}

/// A private key from the store.
#[derive(Debug)]
pub enum StoredKey {
    /// An RSA key.
    Rsa(Box<RsaPrivateKey>),
    /// An ed25519 key.
    Ed25519(Box<SigningKey>),
}

/// A directory of named private keys.
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
}

/// Whether `name` can name a key: letters, digits, `.`, `_`, `-`, not starting with `.` or `-`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        && !name.starts_with(['.', '-'])
}

/// Reads an RSA private key from PEM text, PKCS#8 or PKCS#1.
///
/// # Errors
/// When the text is neither (encrypted keys are not supported).
pub fn parse_private_key_pem(pem: &str) -> anyhow::Result<RsaPrivateKey> {
    if let Ok(key) = RsaPrivateKey::from_pkcs8_pem(pem) {
        return Ok(key);
    }
    if let Ok(key) = RsaPrivateKey::from_pkcs1_pem(pem) {
        return Ok(key);
    }
    bail!("cannot read RSA private key: expected an unencrypted PEM \"PRIVATE KEY\" (PKCS#8) or \"RSA PRIVATE KEY\" (PKCS#1)")
}

/// Reads a stored key: RSA (PKCS#8 or PKCS#1) or ed25519 (PKCS#8).
///
/// # Errors
/// When the text is none of these.
pub fn parse_stored_key_pem(pem: &str) -> anyhow::Result<StoredKey> {
    if let Ok(key) = SigningKey::from_pkcs8_pem(pem) {
        return Ok(StoredKey::Ed25519(Box::new(key)));
    }
    parse_private_key_pem(pem).map(|k| StoredKey::Rsa(Box::new(k)))
}

impl KeyStore {
    /// A store in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> KeyStore {
        KeyStore { dir: dir.into() }
    }

    /// The store the environment points at (see the module docs).
    ///
    /// # Errors
    /// When no directory can be derived (no HOME).
    pub fn from_env() -> anyhow::Result<KeyStore> {
        let var = |n: &str| std::env::var_os(n).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(dir) = var(KEYS_DIR_ENV) {
            return Ok(KeyStore::new(dir));
        }
        if let Some(dir) = var("SNAP_USER_DATA") {
            return Ok(KeyStore::new(dir.join("keys")));
        }
        let data = match var("XDG_DATA_HOME") {
            Some(d) => d,
            None => var("HOME")
                .context("cannot find the keys directory: HOME is not set")?
                .join(".local/share"),
        };
        Ok(KeyStore::new(data.join("pocketses/keys")))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> anyhow::Result<PathBuf> {
        if !is_valid_name(name) {
            bail!("invalid key name {name:?}: use letters, digits, '.', '_' and '-'");
        }
        Ok(self.dir.join(format!("{name}.pem")))
    }

    fn ensure_dir(&self) -> anyhow::Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .with_context(|| format!("cannot create keys directory {}", self.dir.display()))?;
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot set permissions of {}", self.dir.display()))
    }

    /// Stores `key` as `name`, refusing to overwrite.
    ///
    /// # Errors
    /// When the name is taken or the file cannot be written.
    pub fn add(&self, name: &str, key: &RsaPrivateKey) -> anyhow::Result<PublicKey> {
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| anyhow::anyhow!("cannot encode key: {e}"))?;
        self.write_new(name, pem.as_bytes())?;
        Ok(PublicKey::from_rsa(key.to_public_key()))
    }

    /// Stores the ed25519 key `key` as `name`, refusing to overwrite.
    ///
    /// # Errors
    /// When the name is taken or the file cannot be written.
    pub fn add_ed25519(&self, name: &str, key: &SigningKey) -> anyhow::Result<()> {
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| anyhow::anyhow!("cannot encode key: {e}"))?;
        self.write_new(name, pem.as_bytes())
    }

    fn write_new(&self, name: &str, pem: &[u8]) -> anyhow::Result<()> {
        let path = self.path(name)?;
        self.ensure_dir()?;
        let mut file =
            fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(
                |e| match e.kind() {
                    std::io::ErrorKind::AlreadyExists => {
                        anyhow::anyhow!("cannot add key {name:?}: a key with that name exists")
                    }
                    _ => anyhow::anyhow!("cannot write key {}: {e}", path.display()),
                },
            )?;
        file.write_all(pem).with_context(|| format!("cannot write key {}", path.display()))
    }

    /// Loads the key `name`, whatever its type.
    ///
    /// # Errors
    /// When there is no such key or it cannot be read.
    pub fn get_any(&self, name: &str) -> anyhow::Result<StoredKey> {
        let path = self.path(name)?;
        let pem = fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                anyhow::anyhow!("cannot find key {name:?} in {}", self.dir.display())
            }
            _ => anyhow::anyhow!("cannot read key {}: {e}", path.display()),
        })?;
        parse_stored_key_pem(&pem).with_context(|| format!("cannot use key {name:?}"))
    }

    /// Loads the ed25519 key `name` (to sign bundles).
    ///
    /// # Errors
    /// When there is no such key or it is an RSA key.
    pub fn get_ed25519(&self, name: &str) -> anyhow::Result<SigningKey> {
        match self.get_any(name)? {
            StoredKey::Ed25519(key) => Ok(*key),
            StoredKey::Rsa(_) => bail!(
                "cannot use key {name:?}: it is an RSA key; bundles are signed with ed25519 keys (key create --type ed25519)"
            ),
        }
    }

    /// Loads the RSA private key `name`.
    ///
    /// # Errors
    /// When there is no such key, it cannot be read, or it is an ed25519 key.
    pub fn get(&self, name: &str) -> anyhow::Result<RsaPrivateKey> {
        match self.get_any(name)? {
            StoredKey::Rsa(key) => Ok(*key),
            StoredKey::Ed25519(_) => bail!(
                "cannot use key {name:?}: it is an ed25519 key; assertions are signed with RSA keys"
            ),
        }
    }

    /// Names and public keys of all keys, sorted by name.
    ///
    /// # Errors
    /// When the directory or a key cannot be read.
    pub fn list(&self) -> anyhow::Result<Vec<(String, PublicKey)>> {
        Ok(self
            .list_any()?
            .into_iter()
            .filter_map(|(name, key)| match key {
                StoredKey::Rsa(key) => Some((name, PublicKey::from_rsa(key.to_public_key()))),
                StoredKey::Ed25519(_) => None,
            })
            .collect())
    }

    /// Names and keys of all keys of any type, sorted by name.
    ///
    /// # Errors
    /// When the directory or a key cannot be read.
    pub fn list_any(&self) -> anyhow::Result<Vec<(String, StoredKey)>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => bail!("cannot read keys directory {}: {e}", self.dir.display()),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry
                .with_context(|| format!("cannot read keys directory {}", self.dir.display()))?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(".pem")) else {
                continue;
            };
            if !is_valid_name(name) {
                continue;
            }
            let key = self.get_any(name)?;
            out.push((name.to_owned(), key));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Deletes key `name`.
    ///
    /// # Errors
    /// When there is no such key.
    pub fn delete(&self, name: &str) -> anyhow::Result<()> {
        let path = self.path(name)?;
        fs::remove_file(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                anyhow::anyhow!("cannot find key {name:?} in {}", self.dir.display())
            }
            _ => anyhow::anyhow!("cannot delete key {}: {e}", path.display()),
        })
    }
}

/// snapd's rule for a signing key's size (`extPGPPrivateKey.sign`, what `snap sign` uses):
/// `None` when a key of `bits` may sign, else snapd's words. \[pure\]
///
/// snapd verifies signatures of any size; it is signing that needs at least `min` bits, so a
/// smaller key is refused where it would be used to sign: at `key import` and at `model sign`.
pub fn signing_size_problem(bits: usize, min: usize) -> Option<String> {
    (bits < min).then(|| format!("signing needs at least a {min} bits key, got {bits}"))
}

/// The smallest key that may sign: 4096 bits as snapd requires, or the test-only
/// `POCKETSES_KEY_BITS` when set.
///
/// # Errors
/// When `POCKETSES_KEY_BITS` is set but not a valid size.
pub fn min_signing_bits() -> anyhow::Result<usize> {
    key_bits()
}

/// Refuses a key too small to sign with, in snapd's words.
///
/// # Errors
/// When the key has fewer bits than [`min_signing_bits`].
pub fn check_signing_key(key: &RsaPrivateKey) -> anyhow::Result<()> {
    let bits = PublicKey::from_rsa(key.to_public_key()).bits();
    match signing_size_problem(bits, min_signing_bits()?) {
        Some(problem) => bail!("{problem}"),
        None => Ok(()),
    }
}

fn key_bits() -> anyhow::Result<usize> {
    match std::env::var(KEY_BITS_ENV) {
        Err(_) => Ok(DEFAULT_KEY_BITS),
        Ok(v) => {
            let bits: usize =
                v.parse().with_context(|| format!("invalid {KEY_BITS_ENV}: {v:?}"))?;
            if !(1024..=16384).contains(&bits) {
                bail!("invalid {KEY_BITS_ENV}: {bits} is not within 1024..16384");
            }
            Ok(bits)
        }
    }
}

/// `key list --json`: `{"keys": [{"name", "sha3-384", "bits"}]}`.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
struct KeyListDoc<'a> {
    keys: Vec<KeyDoc<'a>>,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
struct KeyDoc<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    key_type: KeyType,
    #[serde(rename = "sha3-384")]
    sha3_384: &'a str,
    bits: usize,
    public_key: String,
}

/// A listed key's public half.
enum Listed {
    Rsa(PublicKey),
    Ed25519(String),
}

impl Listed {
    fn of(key: &StoredKey) -> Listed {
        match key {
            StoredKey::Rsa(key) => Listed::Rsa(PublicKey::from_rsa(key.to_public_key())),
            StoredKey::Ed25519(key) => Listed::Ed25519(encode_public_key(&key.verifying_key())),
        }
    }
}

/// Runs the command.
///
/// # Errors
/// When the command fails; the message follows snapd's grammar.
pub fn main(args: KeyArgs) -> anyhow::Result<ExitCode> {
    let store = KeyStore::from_env()?;
    let mut out = std::io::stdout().lock();
    match args.command {
        KeyCommand::Create { name, key_type } => {
            store.path(&name)?;
            if store.path(&name)?.exists() {
                bail!("cannot create key {name:?}: a key with that name exists");
            }
            if key_type == KeyType::Ed25519 {
                let mut seed = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
                let key = SigningKey::from_bytes(&seed);
                store.add_ed25519(&name, &key)?;
                writeln!(out, "{name} {}", encode_public_key(&key.verifying_key()))?;
                return Ok(ExitCode::SUCCESS);
            }
            let bits = key_bits()?;
            eprintln!("generating a {bits}-bit RSA key, this may take a while...");
            let key =
                RsaPrivateKey::new(&mut rand::rngs::OsRng, bits).context("cannot generate key")?;
            let public = store.add(&name, &key)?;
            writeln!(out, "{name} {}", public.id())?;
        }
        KeyCommand::Import { name, file } => {
            let pem = fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let key = parse_private_key_pem(&pem)?;
            let public = PublicKey::from_rsa(key.to_public_key());
            check_signing_key(&key).with_context(|| format!("cannot import key {name:?}"))?;
            store.add(&name, &key)?;
            writeln!(out, "{name} {}", public.id())?;
        }
        KeyCommand::List { json } => {
            let keys: Vec<(String, Listed)> =
                store.list_any()?.into_iter().map(|(name, key)| (name, Listed::of(&key))).collect();
            if json {
                let keys = keys
                    .iter()
                    .map(|(name, key)| match key {
                        Listed::Rsa(key) => KeyDoc {
                            name,
                            key_type: KeyType::Rsa,
                            sha3_384: key.id(),
                            bits: key.bits(),
                            public_key: String::new(),
                        },
                        Listed::Ed25519(public) => KeyDoc {
                            name,
                            key_type: KeyType::Ed25519,
                            sha3_384: "",
                            bits: 256,
                            public_key: public.clone(),
                        },
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&KeyListDoc { keys })?)?;
            } else {
                writeln!(out, "{:<20} SHA3-384", "Name")?;
                for (name, key) in keys {
                    match key {
                        Listed::Rsa(key) => writeln!(out, "{name:<20} {}", key.id())?,
                        Listed::Ed25519(public) => writeln!(out, "{name:<20} ed25519 {public}")?,
                    }
                }
            }
        }
        KeyCommand::Export { name } => match store.get_any(&name)? {
            StoredKey::Rsa(key) => {
                writeln!(out, "{}", PublicKey::from_rsa(key.to_public_key()).encode())?;
            }
            StoredKey::Ed25519(key) => {
                writeln!(out, "{}", encode_public_key(&key.verifying_key()))?;
            }
        },
        KeyCommand::Delete { name } => store.delete(&name)?,
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["default", "brand-models", "k1", "a.b_c"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "../x", "a/b", ".hidden", "-x", "a b"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn signing_needs_4096_bits_like_snapd() {
        assert_eq!(
            signing_size_problem(512, DEFAULT_KEY_BITS).as_deref(),
            Some("signing needs at least a 4096 bits key, got 512")
        );
        assert_eq!(
            signing_size_problem(4095, DEFAULT_KEY_BITS).as_deref(),
            Some("signing needs at least a 4096 bits key, got 4095")
        );
        assert_eq!(signing_size_problem(4096, DEFAULT_KEY_BITS), None);
        assert_eq!(signing_size_problem(8192, DEFAULT_KEY_BITS), None);
    }

    #[test]
    fn ed25519_keys_are_stored_and_kept_apart_from_rsa() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path().join("keys"));
        let key = SigningKey::from_bytes(&[9; 32]);
        store.add_ed25519("fleet", &key).unwrap();
        assert_eq!(store.get_ed25519("fleet").unwrap().to_bytes(), key.to_bytes());
        let e = store.get("fleet").unwrap_err().to_string();
        assert_eq!(
            e,
            "cannot use key \"fleet\": it is an ed25519 key; assertions are signed with RSA keys"
        );
        assert!(store.list().unwrap().is_empty());
        assert_eq!(store.list_any().unwrap().len(), 1);
        let e = store.add_ed25519("fleet", &key).unwrap_err().to_string();
        assert_eq!(e, "cannot add key \"fleet\": a key with that name exists");
        let pem = std::fs::read_to_string(dir.path().join("keys/fleet.pem")).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
    }

    #[test]
    fn bad_pem_is_refused() {
        let e =
            parse_private_key_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
                .unwrap_err();
        assert!(e.to_string().starts_with("cannot read RSA private key"), "{e}");
    }
}
