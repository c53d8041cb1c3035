//! Reading gadgets from files: a `gadget.yaml`, or `meta/gadget.yaml` out of a gadget `.snap`
//! (a squashfs image), parsed by the pure [`super::parse`]. \[io\]
//!
//! Every command that needs a gadget from a file ([`load`]) or asks whether a snap is a gadget
//! ([`is_gadget_snap`]) comes here.
//!
//! Uses `backhand`, a pure-Rust squashfs reader, so no `unsquashfs` process is spawned.
//! Snaps are xz-compressed by default (gzip is accepted too); other compressions are refused with a clear error.

use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::Context;

use super::{parse, Info, Ruleset};

/// The path of the gadget metadata inside a gadget snap.
pub const GADGET_YAML: &str = "meta/gadget.yaml";

/// Whether the file starts with the squashfs magic (`hsqs`), i.e. looks like a `.snap`.
///
/// # Errors
/// When the file cannot be read.
pub fn is_squashfs(path: &Path) -> anyhow::Result<bool> {
    let mut magic = [0u8; 4];
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    match file.read_exact(&mut magic) {
        Ok(()) => Ok(&magic == b"hsqs"),
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Reads one file from a squashfs image.
///
/// # Errors
/// When the image cannot be read or does not hold `inner`.
pub fn read_file(snap: &Path, inner: &str) -> anyhow::Result<Vec<u8>> {
    let file =
        std::fs::File::open(snap).with_context(|| format!("cannot open {}", snap.display()))?;
    let fs = backhand::FilesystemReader::from_reader(BufReader::new(file))
        .map_err(|err| anyhow::anyhow!("cannot read {} as a snap: {err}", snap.display()))?;
    let wanted = Path::new("/").join(inner);
    for node in fs.files() {
        if node.fullpath != wanted {
            continue;
        }
        let backhand::InnerNode::File(entry) = &node.inner else {
            anyhow::bail!("cannot read {inner} from {}: not a regular file", snap.display());
        };
        let mut data = Vec::new();
        fs.file(entry)
            .reader()
            .read_to_end(&mut data)
            .with_context(|| format!("cannot read {inner} from {}", snap.display()))?;
        return Ok(data);
    }
    anyhow::bail!("cannot find {inner} in {}", snap.display())
}

/// Reads a gadget definition: a `gadget.yaml` file as is, or `meta/gadget.yaml` from a gadget `.snap`.
///
/// # Errors
/// When the file cannot be read or is not UTF-8.
pub fn read_gadget_yaml(path: &Path) -> anyhow::Result<String> {
    let bytes = if is_squashfs(path)? {
        read_file(path, GADGET_YAML)?
    } else {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    String::from_utf8(bytes)
        .with_context(|| format!("cannot read gadget metadata from {}: not UTF-8", path.display()))
}

/// Reads and parses a gadget.yaml or a gadget .snap.
///
/// # Errors
/// When the file cannot be read or snapd would refuse its gadget.yaml.
pub fn load(path: &Path, ruleset: Ruleset) -> anyhow::Result<Info> {
    let text = read_gadget_yaml(path)?;
    parse(&text, ruleset).with_context(|| format!("cannot use gadget {}", path.display()))
}

/// Whether a `.snap` file is a gadget (`type: gadget` in its `meta/snap.yaml`).
///
/// # Errors
/// When the file is not a squashfs image or its `meta/snap.yaml` cannot be read.
pub fn is_gadget_snap(path: &Path) -> anyhow::Result<bool> {
    #[derive(serde::Deserialize)]
    struct SnapYaml {
        #[serde(default, rename = "type")]
        type_: String,
    }
    if !is_squashfs(path)? {
        anyhow::bail!("cannot use {} as a snap: not a squashfs file", path.display());
    }
    let yaml = read_file(path, "meta/snap.yaml")?;
    let yaml = String::from_utf8_lossy(&yaml);
    let parsed: SnapYaml = crate::yaml::from_str(&yaml).map_err(|err| {
        anyhow::anyhow!("cannot read meta/snap.yaml of {}: {err}", path.display())
    })?;
    Ok(parsed.type_ == "gadget")
}
