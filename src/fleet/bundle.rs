//! Update bundles: `.swu`-shaped cpio archives of snaps, assertions and a model, whose
//! `sw-description` lists every file with its size and sha256 and is signed with an
//! operator's ed25519 key. \[pure\]
//!
//! The layout (docs/fleet.md has the whole format):
//!
//! ```text
//! sw-description        libconfig, SWUpdate's shape; gooseBit reads software.version and
//!                       the hardware-compatibility lists; pocketses reads software.images
//! sw-description.sig    "ed25519 <public key, base64> <signature, base64>\n"
//! <files>               in the order sw-description lists them, flat names only
//! TRAILER!!!
//! ```
//!
//! Reading follows the security rules in this order, and every step refuses with a
//! [`Error`] the caller prefixes with `cannot read bundle: `: the first entry must be
//! `sw-description` (at most [`MAX_DESCRIPTION`] bytes) and the second its signature;
//! the signature is checked against the trusted keys *before* `sw-description` is parsed
//! and before any file is read; each file must be listed, appear once, have exactly its
//! listed size (so oversize entries are refused from the header, before their data) and
//! its sha256, checked while it streams to the caller's writer; every listed file must be
//! present. Names, links and other entry kinds are refused by [`cpio::Reader`].
//!
//! This module does no I/O of its own: it reads from any `Read` and writes where the
//! caller says. `fleet::cmd` extracts to a staging directory and removes it on failure.

use std::io::{self, Read, Write};

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use super::cpio;
use super::libconfig::{self, Value};
use crate::assertion::quote;

/// The description's entry name.
pub const DESCRIPTION: &str = "sw-description";
/// The signature's entry name.
pub const SIGNATURE: &str = "sw-description.sig";
/// Largest `sw-description` read.
pub const MAX_DESCRIPTION: u64 = 256 * 1024;
/// Largest `sw-description.sig` read.
pub const MAX_SIGNATURE: u64 = 1024;
/// Most files in one bundle.
pub const MAX_FILES: usize = 1024;

/// Why a bundle cannot be made or read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The archive itself.
    #[error(transparent)]
    Archive(#[from] cpio::Error),
    /// The first entry is not `sw-description`.
    #[error("first entry is {0:?}, not \"sw-description\"")]
    NoDescription(String),
    /// No `sw-description.sig` second.
    #[error("bundle is not signed (no sw-description.sig after sw-description)")]
    Unsigned,
    /// The signature file does not parse.
    #[error("invalid sw-description.sig: {0}")]
    BadSignatureFile(String),
    /// Nothing to verify against.
    #[error("no trusted keys (set fleet.trusted-keys or pass --trusted)")]
    NoTrustedKeys,
    /// Signed, but by a key not in the trusted set.
    #[error("signed by untrusted key {0}")]
    Untrusted(String),
    /// The signature does not match the description.
    #[error("sw-description does not match its signature by {0}")]
    BadSignature(String),
    /// `sw-description` does not parse or lacks what a bundle needs.
    #[error("invalid sw-description: {0}")]
    BadDescription(String),
    /// An entry not listed in `sw-description`.
    #[error("file {0:?} is not listed in sw-description")]
    Unlisted(String),
    /// An entry seen twice.
    #[error("file {0:?} appears twice")]
    Duplicate(String),
    /// An entry whose size differs from the listing.
    #[error("file {name:?} is {got} bytes, sw-description says {want}")]
    SizeMismatch {
        /// File name.
        name: String,
        /// Size in the archive.
        got: u64,
        /// Size listed.
        want: u64,
    },
    /// An entry whose sha256 differs from the listing.
    #[error("file {name:?} does not match its sha256 (got {got}, want {want})")]
    HashMismatch {
        /// File name.
        name: String,
        /// Computed.
        got: String,
        /// Listed.
        want: String,
    },
    /// A listed file that is not in the archive.
    #[error("file {0:?} listed in sw-description is missing")]
    Missing(String),
    /// Inputs of `bundle create` that cannot make a bundle.
    #[error("{0}")]
    Create(String),
}

/// What a file in a bundle is, by which snapd call applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A `.snap`, installed through `POST /v2/snaps`.
    Snap,
    /// Assertions (one or more), acknowledged through `POST /v2/assertions`.
    Assertion,
    /// A model assertion: the bundle remodels the device.
    Model,
}

impl Kind {
    /// The word in `sw-description`'s `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Snap => "snap",
            Kind::Assertion => "assertion",
            Kind::Model => "model",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        [Kind::Snap, Kind::Assertion, Kind::Model].into_iter().find(|k| k.as_str() == s)
    }

    /// The kind of a file from its name and first bytes: assertions start with a `type:`
    /// header (`type: model` is a model), snaps are `.snap` files.
    ///
    /// # Errors
    /// When it is neither.
    pub fn detect(name: &str, head: &[u8]) -> Result<Kind, Error> {
        if let Some(rest) = head.strip_prefix(b"type: ") {
            let word: Vec<u8> = rest.iter().copied().take_while(|b| *b != b'\n').collect();
            return Ok(if word == b"model" { Kind::Model } else { Kind::Assertion });
        }
        if name.ends_with(".snap") {
            return Ok(Kind::Snap);
        }
        Err(Error::Create(format!(
            "{name:?} is neither a snap (.snap) nor an assertion (starting with \"type: \")"
        )))
    }
}

/// One file listed in `sw-description`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct FileEntry {
    /// Plain file name in the archive.
    pub filename: String,
    /// How it is applied.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex sha256.
    pub sha256: String,
}

/// The typed content of `sw-description`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Description {
    /// `software.version`: what gooseBit versions the bundle by and the device reports as
    /// its `sw_version` once applied.
    pub version: String,
    /// Models the bundle is for (gooseBit's hardware model, revision `default`); empty
    /// means gooseBit's `default` hardware.
    pub hardware: Vec<String>,
    /// The files, in archive order.
    pub files: Vec<FileEntry>,
}

/// Checks a bundle version as gooseBit parses it (SWUpdate's versions): up to four dotted
/// numbers of at most 65535 each, or a semantic version (`1.2.3-rc.1+build`).
///
/// # Errors
/// Any other text.
pub fn check_version(version: &str) -> Result<(), Error> {
    let dotted = !version.is_empty()
        && version.split('.').count() <= 4
        && version.split('.').all(|p| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok());
    if dotted {
        return Ok(());
    }
    let (core, rest) = match version.find(['-', '+']) {
        Some(i) => (&version[..i], &version[i..]),
        None => (version, ""),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    let semver_core = (1..=3).contains(&numbers.len())
        && numbers.iter().all(|n| {
            !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
                && (n.len() == 1 || !n.starts_with('0'))
        });
    let semver_rest = rest.is_empty()
        || (rest.len() > 1
            && rest[1..].split(['.', '+']).all(|id| {
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }));
    if semver_core && semver_rest {
        return Ok(());
    }
    Err(Error::Create(format!(
        "invalid version {version:?}: use dotted numbers (1.2.3) or a semantic version (1.2.3-rc.1)"
    )))
}

/// Checks a `--hardware` model name: a libconfig setting name (gooseBit reads the
/// compatibility of board `MODEL` from `software.MODEL.hardware-compatibility`).
///
/// # Errors
/// When the name cannot be a libconfig setting or is one `sw-description` already uses.
pub fn check_hardware(model: &str) -> Result<(), Error> {
    let mut bytes = model.bytes();
    let ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && model.len() <= 64;
    if !ok {
        return Err(Error::Create(format!(
            "invalid hardware {model:?}: a model name starting with a letter (letters, digits, '-', '_')"
        )));
    }
    if matches!(model, "version" | "description" | "images" | "hardware-compatibility") {
        return Err(Error::Create(format!("invalid hardware {model:?}: reserved name")));
    }
    Ok(())
}

/// Writes `sw-description`. Sizes that do not fit libconfig's 32-bit integers get the `L`
/// suffix (64-bit). Strings are quoted with [`crate::assertion::quote`]: every string written
/// here is a checked version, a plain ASCII file name, a type word or hex, so only `"` and
/// `\` are ever escaped, and libconfig reads those escapes back the same.
pub fn render(desc: &Description) -> String {
    let mut s = String::new();
    s.push_str("software =\n{\n");
    s.push_str(&format!("\tversion = {};\n", quote(&desc.version)));
    s.push_str("\tdescription = \"pocketses bundle\";\n");
    for model in &desc.hardware {
        s.push_str(&format!(
            "\t{model} = {{\n\t\thardware-compatibility = [ \"default\" ];\n\t}};\n"
        ));
    }
    s.push_str("\timages = (\n");
    for (i, f) in desc.files.iter().enumerate() {
        let size =
            if i32::try_from(f.size).is_ok() { f.size.to_string() } else { format!("{}L", f.size) };
        s.push_str(&format!(
            "\t\t{{\n\t\t\tfilename = {};\n\t\t\ttype = {};\n\t\t\tsize = {size};\n\t\t\tsha256 = {};\n\t\t}}{}\n",
            quote(&f.filename),
            quote(f.kind.as_str()),
            quote(&f.sha256),
            if i + 1 < desc.files.len() { "," } else { "" }
        ));
    }
    s.push_str("\t);\n};\n");
    s
}

/// Reads `sw-description`: `software.version` (checked like [`check_version`]), the boards
/// with a `hardware-compatibility` list, and `software.images`, each with `filename`,
/// `type`, `size` and `sha256`. Unknown settings are ignored.
///
/// # Errors
/// Syntax errors and missing or invalid fields, each as [`Error::BadDescription`].
pub fn parse_description(text: &[u8]) -> Result<Description, Error> {
    let bad = |m: String| Error::BadDescription(m);
    let text = std::str::from_utf8(text).map_err(|_| bad("not valid UTF-8".into()))?;
    let doc = libconfig::parse(text).map_err(|e| bad(e.to_string()))?;
    let software = doc.get("software").ok_or_else(|| bad("no \"software\" group".into()))?;
    let version = software
        .get("version")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no software.version string".into()))?;
    check_version(version).map_err(|_| bad(format!("invalid software.version {version:?}")))?;
    let mut hardware = Vec::new();
    if let Value::Group(settings) = software {
        for (name, value) in settings {
            if value.get("hardware-compatibility").is_some() {
                hardware.push(name.clone());
            }
        }
    }
    let images = match software.get("images") {
        Some(Value::List(items)) => items.as_slice(),
        Some(_) => return Err(bad("software.images is not a list".into())),
        None => &[],
    };
    if images.len() > MAX_FILES {
        return Err(bad(format!("more than {MAX_FILES} images")));
    }
    let mut files: Vec<FileEntry> = Vec::with_capacity(images.len());
    for (i, image) in images.iter().enumerate() {
        let field = |name: &str| image.get(name);
        let string = |name: &str| {
            field(name)
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("software.images[{i}] has no {name} string")))
        };
        let filename = string("filename")?.to_owned();
        cpio::check_name(&filename).map_err(|e| bad(format!("software.images[{i}]: {e}")))?;
        if filename == DESCRIPTION || filename == SIGNATURE {
            return Err(bad(format!("software.images[{i}] names {filename:?}")));
        }
        let kind_word = string("type")?;
        let kind = Kind::parse(kind_word)
            .ok_or_else(|| bad(format!("software.images[{i}] has unknown type {kind_word:?}")))?;
        let size = match field("size") {
            Some(Value::Int(n)) => u64::try_from(*n).ok(),
            _ => None,
        }
        .ok_or_else(|| bad(format!("software.images[{i}] has no size in bytes")))?;
        let sha256 = string("sha256")?;
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(format!("software.images[{i}] has an invalid sha256")));
        }
        if files.iter().any(|f| f.filename == filename) {
            return Err(bad(format!("{filename:?} is listed twice")));
        }
        files.push(FileEntry { filename, kind, size, sha256: sha256.to_ascii_lowercase() });
    }
    if files.iter().filter(|f| f.kind == Kind::Model).count() > 1 {
        return Err(bad("more than one model".into()));
    }
    Ok(Description { version: version.to_owned(), hardware, files })
}

/// The form `key export`, `--trusted` and `fleet.trusted-keys` use for a public key:
/// standard base64 of its 32 bytes.
pub fn encode_public_key(key: &VerifyingKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.as_bytes())
}

/// Reads a public key in [`encode_public_key`]'s form.
///
/// # Errors
/// When it is not base64 of 32 bytes of a valid ed25519 point.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let text = text.trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| format!("invalid ed25519 public key {text:?}: not base64"))?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
        format!("invalid ed25519 public key {text:?}: {} bytes, want 32", b.len())
    })?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| format!("invalid ed25519 public key {text:?}: not a curve point"))
}

/// Reads a list of public keys: separated by whitespace or commas, `#` comments to the end
/// of a line (the content of a `fleet.trusted-keys` file or value).
///
/// # Errors
/// The first key that does not parse.
pub fn parse_public_keys(text: &str) -> Result<Vec<VerifyingKey>, String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        for word in line.split(|c: char| c.is_whitespace() || c == ',').filter(|w| !w.is_empty()) {
            out.push(parse_public_key(word)?);
        }
    }
    Ok(out)
}

/// A parsed `sw-description.sig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sig {
    /// The key that claims to have signed (trust comes from the trusted set, not from here).
    pub key: VerifyingKey,
    /// The signature of `sw-description`'s bytes.
    pub signature: Signature,
}

impl Sig {
    /// Signs `description` with `key`.
    pub fn sign(description: &[u8], key: &SigningKey) -> Sig {
        Sig { key: key.verifying_key(), signature: key.sign(description) }
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        format!(
            "ed25519 {} {}\n",
            encode_public_key(&self.key),
            b64.encode(self.signature.to_bytes())
        )
    }

    /// Reads the file's text.
    ///
    /// # Errors
    /// [`Error::BadSignatureFile`].
    pub fn parse(bytes: &[u8]) -> Result<Sig, Error> {
        let bad = |m: &str| Error::BadSignatureFile(m.to_owned());
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not text"))?;
        let words: Vec<&str> = text.split_whitespace().collect();
        let [algo, key, sig] = words.as_slice() else {
            return Err(bad("want \"ed25519 KEY SIGNATURE\""));
        };
        if *algo != "ed25519" {
            return Err(bad(&format!("unsupported algorithm {algo:?}")));
        }
        let key = parse_public_key(key).map_err(|e| bad(&e))?;
        let sig = base64::engine::general_purpose::STANDARD
            .decode(sig)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .ok_or_else(|| bad("signature is not base64 of 64 bytes"))?;
        Ok(Sig { key, signature: Signature::from_bytes(&sig) })
    }

    /// Checks the signature of `description` against `trusted`.
    ///
    /// # Errors
    /// No trusted keys, a key not trusted, or a signature that does not match.
    pub fn verify(&self, description: &[u8], trusted: &[VerifyingKey]) -> Result<(), Error> {
        if trusted.is_empty() {
            return Err(Error::NoTrustedKeys);
        }
        let name = encode_public_key(&self.key);
        if !trusted.contains(&self.key) {
            return Err(Error::Untrusted(name));
        }
        self.key.verify_strict(description, &self.signature).map_err(|_| Error::BadSignature(name))
    }
}

/// The first two entries of a bundle, read but not yet trusted.
#[derive(Debug)]
pub struct Head<R> {
    /// `sw-description`'s bytes.
    pub description: Vec<u8>,
    /// `sw-description.sig`, when the second entry is one.
    pub sig: Option<Sig>,
    /// The first entry after them, already read, when the bundle is unsigned.
    pending: Option<cpio::Header>,
    reader: cpio::Reader<R>,
}

/// Reads the head of a bundle: `sw-description` and, if present, its signature.
///
/// # Errors
/// When the archive does not start with `sw-description`, or the entries are malformed.
pub fn open<R: Read>(input: R) -> Result<Head<R>, Error> {
    let mut reader = cpio::Reader::new(input);
    let first = reader.next_entry(MAX_DESCRIPTION)?;
    match first {
        Some(h) if h.name == DESCRIPTION => {}
        Some(h) => return Err(Error::NoDescription(h.name)),
        None => return Err(Error::NoDescription(String::new())),
    }
    let description = reader.read_data()?;
    let (sig, pending) = match reader.next_entry(u64::MAX)? {
        Some(h) if h.name == SIGNATURE => {
            if h.size > MAX_SIGNATURE {
                return Err(cpio::Error::TooLarge {
                    name: h.name,
                    size: h.size,
                    limit: MAX_SIGNATURE,
                }
                .into());
            }
            (Some(Sig::parse(&reader.read_data()?)?), None)
        }
        other => (None, other),
    };
    Ok(Head { description, sig, pending, reader })
}

impl<R: Read> Head<R> {
    /// Checks the signature against `trusted`, then parses `sw-description`.
    ///
    /// # Errors
    /// [`Error::Unsigned`], the errors of [`Sig::verify`] and of [`parse_description`].
    pub fn verify(self, trusted: &[VerifyingKey]) -> Result<Verified<R>, Error> {
        let sig = self.sig.as_ref().ok_or(Error::Unsigned)?;
        sig.verify(&self.description, trusted)?;
        let description = parse_description(&self.description)?;
        Ok(Verified {
            seen: vec![false; description.files.len()],
            description,
            signer: sig.key,
            reader: self.reader,
        })
    }

    /// Parses `sw-description` without checking the signature (`bundle show`, `bundle sign`).
    ///
    /// # Errors
    /// Those of [`parse_description`].
    pub fn description_unverified(&self) -> Result<Description, Error> {
        parse_description(&self.description)
    }

    /// The remaining entries, raw, for re-signing: calls `each` with each entry's header and
    /// a reader of its data.
    ///
    /// # Errors
    /// Archive errors and those of `each`.
    pub fn for_each_rest(
        mut self,
        each: &mut dyn FnMut(&cpio::Header, &mut dyn Read) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut next = self.pending.take();
        if next.is_none() {
            next = self.reader.next_entry(u64::MAX)?;
        }
        while let Some(header) = next {
            each(&header, &mut self.reader.data())?;
            next = self.reader.next_entry(u64::MAX)?;
        }
        Ok(())
    }
}

/// A bundle whose signature is checked and whose description is parsed.
#[derive(Debug)]
pub struct Verified<R> {
    /// The listing.
    pub description: Description,
    /// The trusted key that signed it.
    pub signer: VerifyingKey,
    seen: Vec<bool>,
    reader: cpio::Reader<R>,
}

impl<R: Read> Verified<R> {
    /// The next file's listing, checked against its header (listed, once, exact size);
    /// `None` when the archive ends and every listed file was seen. Call
    /// [`Verified::copy`] next to stream its data.
    ///
    /// # Errors
    /// See the module docs.
    pub fn next_file(&mut self) -> Result<Option<FileEntry>, Error> {
        let max = self.description.files.iter().map(|f| f.size).max().unwrap_or(0);
        let Some(header) = self.reader.next_entry(max)? else {
            if let Some(i) = self.seen.iter().position(|s| !s) {
                return Err(Error::Missing(self.description.files[i].filename.clone()));
            }
            return Ok(None);
        };
        let Some(i) = self.description.files.iter().position(|f| f.filename == header.name) else {
            return Err(Error::Unlisted(header.name));
        };
        if self.seen[i] {
            return Err(Error::Duplicate(header.name));
        }
        self.seen[i] = true;
        let entry = self.description.files[i].clone();
        if header.size != entry.size {
            return Err(Error::SizeMismatch {
                name: header.name,
                got: header.size,
                want: entry.size,
            });
        }
        Ok(Some(entry))
    }

    /// Streams the current file's data into `out`, hashing as it goes, and compares the
    /// hash with `entry`'s. On a mismatch the caller must discard what `out` received.
    ///
    /// # Errors
    /// [`Error::HashMismatch`], archive and write errors.
    pub fn copy(&mut self, entry: &FileEntry, out: &mut dyn Write) -> Result<(), Error> {
        let mut hashing = HashingWriter { inner: out, hash: Sha256::new() };
        self.reader.copy_data(&mut hashing)?;
        let got = hex(&hashing.hash.finalize());
        if got != entry.sha256 {
            return Err(Error::HashMismatch {
                name: entry.filename.clone(),
                got,
                want: entry.sha256.clone(),
            });
        }
        Ok(())
    }

    /// Reads every file, checking sizes and hashes, writing nothing (`bundle verify`).
    ///
    /// # Errors
    /// The first problem found.
    pub fn check_all(mut self) -> Result<Description, Error> {
        while let Some(entry) = self.next_file()? {
            self.copy(&entry, &mut io::sink())?;
        }
        Ok(self.description)
    }
}

struct HashingWriter<'a> {
    inner: &'a mut dyn Write,
    hash: Sha256,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a whole bundle: `sw-description`, its signature when `key` is given, then the
/// files, each read from `open(entry)`.
///
/// # Errors
/// Write errors and those of `open`.
pub fn write<W: Write>(
    out: W,
    description: &[u8],
    sig: Option<&Sig>,
    files: &mut dyn FnMut(&mut cpio::Writer<W>) -> Result<(), Error>,
) -> Result<W, Error> {
    let mut w = cpio::Writer::new(out);
    w.append_bytes(DESCRIPTION, description)?;
    if let Some(sig) = sig {
        w.append_bytes(SIGNATURE, sig.render().as_bytes())?;
    }
    files(&mut w)?;
    Ok(w.finish()?)
}

/// sha256 and cpio byte sum of `data`, read once.
///
/// # Errors
/// When reading fails.
pub fn digest(data: &mut dyn Read) -> io::Result<(String, u32, u64)> {
    let mut hash = Sha256::new();
    let mut sum = 0u32;
    let mut size = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = data.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        sum = cpio::byte_sum(sum, &buf[..n]);
        size += n as u64;
    }
    Ok((hex(&hash.finalize()), sum, size))
}

#[cfg(test)]
mod tests;
