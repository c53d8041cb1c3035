//! Gadget layouts (`gadget.yaml`) and snapd's rules for compatible layout changes. \[pure\]
//!
//! [`parse`] turns the text of a `meta/gadget.yaml` into snapd's model of it: volumes with a
//! schema (default `gpt`), a bootloader and ordered structures whose `min-size` defaults to
//! `size` and whose offsets are filled in as snapd's `setImplicitForVolume` does.
//! [`check_compatible`] then applies snapd's remodel rules (`gadget.IsCompatible`,
//! `canUpdateStructure`) and says, for every problem, what to change in the new gadget.
//!
//! This module does no I/O: reading a gadget from a file (`gadget.yaml` or a `.snap`) lives in
//! [`snapfile`], the command in [`cmd`].
//! It deliberately ignores what the layout check does not look at: `content`, `update`,
//! `defaults`, `connections` and the kernel command line.

pub mod cmd;
mod compat;
pub mod snapfile;

use std::collections::BTreeMap;

use serde::Deserialize;

pub use compat::{check_compatible, Incompatibility, StructureProblem};

/// One mebibyte, the unit of most gadget sizes.
pub const MIB: u64 = 1 << 20;
/// One gibibyte.
pub const GIB: u64 = 1 << 30;
/// Where the first partition that is not the MBR starts when no offset is given (snapd's `NonMBRStartOffset`).
pub const NON_MBR_START_OFFSET: u64 = MIB;
/// The largest structure of role `mbr` (snapd's `SizeMBR`).
pub const SIZE_MBR: u64 = 446;
/// The value snapd uses for a size or offset without an upper bound.
pub const UNBOUNDED: u64 = u64::MAX;

/// Which implicit values apply, as snapd derives them from the model (`whichVolRuleset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ruleset {
    /// No model at hand: no implicit filesystem labels.
    Unknown,
    /// UC16/UC18 (model without grade): `system-data` is labelled `writable`.
    Uc16,
    /// UC20 and later (model with a grade): `ubuntu-seed`, `ubuntu-boot`, `ubuntu-save`, `ubuntu-data`.
    #[default]
    Uc20,
}

/// A parsed gadget: its volumes, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// Volumes in name order.
    pub volumes: BTreeMap<String, Volume>,
}

/// One volume (a disk image) of the gadget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// The volume's key in `volumes:`.
    pub name: String,
    /// Properties left for an installer to fill (`partial:`): `size`, `filesystem`, `schema`, `structure`.
    pub partial: Vec<String>,
    /// `gpt` or `mbr`; `gpt` when not given (empty only with `partial: [schema]`).
    pub schema: String,
    /// `grub`, `u-boot`, `android-boot`, `lk`, `piboot`, or empty.
    pub bootloader: String,
    /// Disk ID: two hex digits (MBR) or a GUID (GPT).
    pub id: String,
    /// Structures ordered by offset, as snapd keeps them.
    pub structures: Vec<Structure>,
}

/// One structure of a volume: a partition, the MBR, or a bare range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Structure {
    /// Index of the structure in `gadget.yaml` (0 based); snapd's messages use it as `#N`.
    pub yaml_index: usize,
    /// Partition name (effective with GPT only).
    pub name: String,
    /// `filesystem-label`, explicit or implied by the role.
    pub label: String,
    /// Start offset in bytes: given, or implied when the previous structure has a fixed end.
    pub offset: Option<u64>,
    /// Whether `offset:` was written in gadget.yaml (rather than implied).
    pub offset_given: bool,
    /// `offset-write`, kept as written (`[name+]offset`).
    pub offset_write: Option<String>,
    /// Smallest size in bytes; equals `size` unless `min-size` is given.
    pub min_size: u64,
    /// Size in bytes (0 only with `partial: [size]`).
    pub size: u64,
    /// Partition type: MBR code, GPT GUID, `code,GUID`, `bare` or the legacy `mbr`.
    pub type_: String,
    /// Role: `mbr`, `system-seed`, `system-boot`, `system-save`, `system-data`, … or empty.
    pub role: String,
    /// GPT partition ID.
    pub id: String,
    /// `ext4`, `vfat`, `vfat-16`, `vfat-32`, `none` or empty.
    pub filesystem: String,
}

/// A gadget.yaml that snapd would refuse to read, with snapd's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The YAML itself does not parse.
    #[error("cannot parse gadget metadata: {0}")]
    Yaml(String),
    /// A volume is invalid.
    #[error("invalid volume {volume:?}: {message}")]
    Volume {
        /// The volume's name.
        volume: String,
        /// What is wrong, in snapd's words.
        message: String,
    },
    /// A volume key is present but empty.
    #[error("volume {0:?} stanza is empty")]
    EmptyVolume(String),
    /// No volume names a bootloader.
    #[error("bootloader not declared in any volume")]
    NoBootloader,
    /// More than one volume names a bootloader.
    #[error("too many ({0}) bootloaders declared")]
    TooManyBootloaders(usize),
    /// The bootloader is not one snapd knows.
    #[error("bootloader must be one of grub, u-boot, android-boot, piboot or lk")]
    UnknownBootloader,
    /// A gadget for Ubuntu Core must define volumes.
    #[error("gadget does not define any volume")]
    NoVolumes,
}

#[derive(Debug, Deserialize)]
struct RawInfo {
    #[serde(default)]
    volumes: Option<BTreeMap<String, Option<RawVolume>>>,
}

#[derive(Debug, Deserialize)]
struct RawVolume {
    #[serde(default)]
    partial: Vec<String>,
    #[serde(default)]
    schema: String,
    #[serde(default)]
    bootloader: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    structure: Vec<RawStructure>,
}

#[derive(Debug, Deserialize)]
struct RawStructure {
    #[serde(default)]
    name: String,
    #[serde(default, rename = "filesystem-label")]
    label: String,
    #[serde(default)]
    offset: Option<String>,
    #[serde(default, rename = "offset-write")]
    offset_write: Option<String>,
    #[serde(default, rename = "min-size")]
    min_size: Option<String>,
    #[serde(default)]
    size: Option<String>,
    #[serde(default, rename = "type")]
    type_: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    filesystem: String,
}

/// Parses a size as snapd's `quantity.ParseSize` does: a signed 64-bit number of bytes, or of
/// MiB with `M` or GiB with `G`; `18446744073709551615` is refused as snapd refuses it.
///
/// # Errors
/// The message snapd gives (`invalid suffix "K"`, `no numerical prefix`, `"…" is not a number`,
/// `size cannot be negative`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    non_negative(text, "size")
}

/// Parses an offset as snapd's `quantity.ParseOffset` does (as [`parse_size`]).
///
/// # Errors
/// As [`parse_size`], with `offset cannot be negative`.
pub fn parse_offset(text: &str) -> Result<u64, String> {
    non_negative(text, "offset")
}

/// Parses `offset-write` as snapd's `parseRelativeOffset` does: `[NAME+]OFFSET`, at most 4G.
///
/// # Errors
/// snapd's message (`missing volume name`, `offset above 4G limit`, …), without the
/// `cannot parse relative offset "…": ` its caller adds.
pub fn parse_relative_offset(text: &str) -> Result<(String, u64), String> {
    let (to, spec) = match text.split_once('+') {
        Some(("", _)) => return Err("missing volume name".to_string()),
        Some((to, spec)) => (to, spec),
        None => ("", text),
    };
    if spec.is_empty() {
        return Err("missing offset".to_string());
    }
    let offset =
        parse_offset(spec).map_err(|err| format!("cannot parse offset {spec:?}: {err}"))?;
    if offset > 4 * GIB {
        return Err("offset above 4G limit".to_string());
    }
    Ok((to.to_string(), offset))
}

fn non_negative(text: &str, what: &str) -> Result<u64, String> {
    let number = size_or_offset(text)?;
    u64::try_from(number).map_err(|_| format!("{what} cannot be negative"))
}

/// snapd's `parseSizeOrOffset` over `strutil.SplitUnit`: digits and dashes, then a unit.
fn size_or_offset(text: &str) -> Result<i64, String> {
    let (prefix, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '-') {
        Some(0) => return Err("no numerical prefix".to_string()),
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let number: i64 = prefix.parse().map_err(|_| format!("{prefix:?} is not a number"))?;
    let factor: i64 = match unit {
        "" => 1,
        "M" => 1 << 20,
        "G" => 1 << 30,
        other => return Err(format!("invalid suffix {other:?}")),
    };
    // snapd's multiplication wraps silently; a size that does not fit is refused here instead.
    number.checked_mul(factor).ok_or_else(|| format!("{text:?} is out of range"))
}

/// Formats a byte count the way a gadget.yaml author writes it: `32M`, `1G`, or plain bytes.
pub fn format_quantity(bytes: u64) -> String {
    if bytes != 0 && bytes.is_multiple_of(GIB) {
        format!("{}G", bytes / GIB)
    } else if bytes != 0 && bytes.is_multiple_of(MIB) {
        format!("{}M", bytes / MIB)
    } else {
        bytes.to_string()
    }
}

/// Parses `gadget.yaml` text into snapd's model, filling in implicit values and validating
/// what snapd validates when it reads a gadget (`InfoFromGadgetYaml`).
///
/// # Errors
/// [`ParseError`] with snapd's wording when snapd would refuse the gadget.
pub fn parse(text: &str, ruleset: Ruleset) -> Result<Info, ParseError> {
    let raw: RawInfo = crate::yaml::from_str(text).map_err(ParseError::Yaml)?;
    let raw_volumes = raw.volumes.unwrap_or_default();
    if raw_volumes.is_empty() {
        return Err(ParseError::NoVolumes);
    }
    // snapd parses quantities while it decodes the YAML, so their errors come first and read
    // as YAML errors.
    let mut parsed = BTreeMap::new();
    for (name, raw_volume) in &raw_volumes {
        let structures = raw_volume.as_ref().map_or(&[][..], |v| &v.structure[..]);
        let quantities: Vec<Quantities> =
            structures.iter().map(Quantities::parse).collect::<Result<_, _>>()?;
        parsed.insert(name.clone(), quantities);
    }
    let mut volumes = BTreeMap::new();
    let mut n_bootloaders = 0;
    for (name, raw_volume) in raw_volumes {
        let raw_volume = raw_volume.ok_or_else(|| ParseError::EmptyVolume(name.clone()))?;
        let quantities = parsed.remove(&name).unwrap_or_default();
        let volume = build_volume(&name, raw_volume, &quantities, ruleset)
            .map_err(|message| ParseError::Volume { volume: name.clone(), message })?;
        match volume.bootloader.as_str() {
            "" => {}
            "grub" | "u-boot" | "android-boot" | "lk" | "piboot" => n_bootloaders += 1,
            _ => return Err(ParseError::UnknownBootloader),
        }
        volumes.insert(name, volume);
    }
    match n_bootloaders {
        0 => Err(ParseError::NoBootloader),
        1 => Ok(Info { volumes }),
        n => Err(ParseError::TooManyBootloaders(n)),
    }
}

/// The numbers of one structure, parsed.
#[derive(Debug, Clone, Copy, Default)]
struct Quantities {
    size: u64,
    min_size: u64,
    offset: Option<u64>,
}

impl Quantities {
    fn parse(raw: &RawStructure) -> Result<Quantities, ParseError> {
        let yaml = |what: &str, text: &str, err: String| {
            ParseError::Yaml(format!("cannot parse {what} {text:?}: {err}"))
        };
        let size = |text: &Option<String>| match text {
            None => Ok(0),
            Some(text) => parse_size(text).map_err(|err| yaml("size", text, err)),
        };
        let offset = match &raw.offset {
            None => None,
            Some(text) => Some(parse_offset(text).map_err(|err| yaml("offset", text, err))?),
        };
        if let Some(text) = &raw.offset_write {
            parse_relative_offset(text).map_err(|err| yaml("relative offset", text, err))?;
        }
        Ok(Quantities { size: size(&raw.size)?, min_size: size(&raw.min_size)?, offset })
    }
}

fn build_volume(
    name: &str,
    raw: RawVolume,
    quantities: &[Quantities],
    ruleset: Ruleset,
) -> Result<Volume, String> {
    const PARTIALS: [&str; 4] = ["size", "filesystem", "schema", "structure"];
    for (i, property) in raw.partial.iter().enumerate() {
        if !PARTIALS.contains(&property.as_str()) {
            return Err(format!("{property:?} is not a valid partial value"));
        }
        if raw.partial[..i].contains(property) {
            return Err(format!("partial value {property:?} is repeated"));
        }
    }
    let mut volume = Volume {
        name: name.to_string(),
        partial: raw.partial,
        schema: raw.schema,
        bootloader: raw.bootloader,
        id: raw.id,
        structures: Vec::with_capacity(raw.structure.len()),
    };
    if volume.has_partial("schema") {
        if !volume.schema.is_empty() {
            return Err(format!(
                "partial schema is set but schema is still specified as {:?}",
                volume.schema
            ));
        }
    } else if volume.schema.is_empty() {
        volume.schema = "gpt".to_string();
    }
    for (yaml_index, raw) in raw.structure.into_iter().enumerate() {
        let Quantities { size, min_size, offset } =
            quantities.get(yaml_index).copied().unwrap_or_default();
        volume.structures.push(Structure {
            yaml_index,
            name: raw.name,
            label: raw.label,
            offset_given: offset.is_some(),
            offset,
            offset_write: raw.offset_write,
            min_size: if min_size == 0 { size } else { min_size },
            size,
            type_: raw.type_,
            role: raw.role,
            id: raw.id,
            filesystem: raw.filesystem,
        });
    }
    set_implicit(&mut volume, ruleset)?;
    volume.structures = order_by_offset(std::mem::take(&mut volume.structures));
    validate_volume(&volume)?;
    Ok(volume)
}

/// Fills in roles, labels and offsets that snapd implies (`setImplicitForVolume`).
fn set_implicit(volume: &mut Volume, ruleset: Ruleset) -> Result<(), String> {
    let mut labels: Vec<String> = Vec::new();
    for s in &volume.structures {
        if !s.label.is_empty() {
            if !label_is_unique(&labels, &s.label, &s.filesystem) {
                return Err(format!("filesystem label {:?} is not unique", s.label));
            }
            labels.push(s.label.clone());
        }
    }
    let partial_size = volume.has_partial("size");
    let mut previous_end = Some(0u64);
    for s in &mut volume.structures {
        if s.role.is_empty() && s.type_ == "mbr" {
            s.role = "mbr".to_string();
        } else if ruleset == Ruleset::Uc16 && s.role.is_empty() && s.label == "system-boot" {
            s.role = "system-boot".to_string();
        } else if s.label.is_empty() {
            let implicit = match (ruleset, s.role.as_str()) {
                (Ruleset::Uc16, "system-data") => "writable",
                (Ruleset::Uc20, "system-data") => "ubuntu-data",
                (Ruleset::Uc20, "system-seed" | "system-seed-null") => "ubuntu-seed",
                (Ruleset::Uc20, "system-boot") => "ubuntu-boot",
                (Ruleset::Uc20, "system-save") => "ubuntu-save",
                _ => "",
            };
            if !implicit.is_empty() {
                if !label_is_unique(&labels, implicit, &s.filesystem) {
                    return Err(format!(
                        "filesystem label {implicit:?} is implied by {} role but was already set elsewhere",
                        s.role
                    ));
                }
                labels.push(implicit.to_string());
                s.label = implicit.to_string();
            }
        }
        if s.offset.is_none() {
            if let Some(end) = previous_end {
                let start = if s.role != "mbr" && end < NON_MBR_START_OFFSET {
                    NON_MBR_START_OFFSET
                } else {
                    end
                };
                s.offset = Some(start);
            }
        }
        let fixed_size = !(partial_size && s.size == 0) && s.size == s.min_size;
        previous_end = match s.offset {
            Some(offset) if fixed_size => offset.checked_add(s.size),
            _ => None,
        };
    }
    Ok(())
}

fn label_is_unique(known: &[String], label: &str, filesystem: &str) -> bool {
    let fat = |fs: &str| matches!(fs, "vfat" | "vfat-16" | "vfat-32");
    if fat(filesystem) {
        !known.iter().any(|k| k.eq_ignore_ascii_case(label))
    } else {
        !known.iter().any(|k| k == label)
    }
}

/// Orders blocks that start at a known offset, keeping structures without one after their predecessor
/// (`orderStructuresByOffset`).
fn order_by_offset(structures: Vec<Structure>) -> Vec<Structure> {
    let mut blocks: Vec<Vec<Structure>> = Vec::new();
    for s in structures {
        match blocks.last_mut() {
            Some(block) if s.offset.is_none() => block.push(s),
            _ => blocks.push(vec![s]),
        }
    }
    blocks.sort_by_key(|block| block.first().and_then(|s| s.offset).unwrap_or(0));
    blocks.into_iter().flatten().collect()
}

fn index_and_name(index: usize, name: &str) -> String {
    if name.is_empty() {
        format!("#{index}")
    } else {
        format!("#{index} ({name:?})")
    }
}

fn validate_volume(volume: &Volume) -> Result<(), String> {
    let valid_name = volume.name.len() >= 2
        && volume.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && volume.name.starts_with(|c: char| c.is_ascii_alphanumeric());
    if !valid_name {
        return Err("invalid name".to_string());
    }
    if !volume.has_partial("schema") && volume.schema != "gpt" && volume.schema != "mbr" {
        return Err(format!("invalid schema {:?}", volume.schema));
    }
    let mut names: Vec<&str> = Vec::new();
    for (index, s) in volume.structures.iter().enumerate() {
        validate_structure(s, volume).map_err(|err| {
            format!("invalid structure {}: {err}", index_and_name(index, &s.name))
        })?;
        if !s.name.is_empty() {
            if names.contains(&s.name.as_str()) {
                return Err(format!("structure name {:?} is not unique", s.name));
            }
            names.push(&s.name);
        }
    }
    let names: Vec<&str> = volume.structures.iter().map(|s| s.name.as_str()).collect();
    for s in &volume.structures {
        let Some(Ok((to, _))) = s.offset_write.as_deref().map(parse_relative_offset) else {
            continue;
        };
        if !to.is_empty() && !names.contains(&to.as_str()) {
            return Err(format!(
                "structure {} refers to an unknown structure {to:?}",
                index_and_name(s.yaml_index, &s.name)
            ));
        }
    }
    // `None` once a structure ends past the largest offset (snapd's sum would wrap around).
    let mut previous_end = Some(0u64);
    for (index, s) in volume.structures.iter().enumerate() {
        let before = index.checked_sub(1).and_then(|i| volume.structures.get(i));
        let before = before.map(|b| b.name.as_str()).unwrap_or_default();
        let Some(end) = previous_end else {
            return Err(format!(
                "structure {:?} overlaps with the preceding structure {before:?}",
                s.name
            ));
        };
        if s.role == "mbr" && s.offset != Some(0) {
            return Err(format!(
                "structure {:?} has \"mbr\" role and must start at offset 0",
                s.name
            ));
        }
        match s.offset {
            Some(offset) => {
                if offset < end {
                    return Err(format!(
                        "structure {:?} overlaps with the preceding structure {before:?}",
                        s.name
                    ));
                }
                previous_end = offset.checked_add(s.size);
            }
            None => previous_end = end.checked_add(s.size),
        }
    }
    if previous_end.is_none() {
        let last = volume.structures.last().map(|s| s.name.as_str()).unwrap_or_default();
        return Err(format!("structure {last:?} ends past the largest offset a disk can have"));
    }
    Ok(())
}

fn validate_structure(s: &Structure, volume: &Volume) -> Result<(), String> {
    if !s.has_partial_size(volume) {
        if s.size == 0 {
            return Err("missing size".to_string());
        }
        if s.min_size > s.size {
            return Err(format!("min-size ({}) is bigger than size ({})", s.min_size, s.size));
        }
    }
    validate_type(&s.type_, volume).map_err(|err| format!("invalid type {:?}: {err}", s.type_))?;
    validate_role(s).map_err(|err| {
        let what = if s.role.is_empty() {
            format!("implicit role {:?}", s.type_)
        } else {
            format!("role {:?}", s.role)
        };
        format!("invalid {what}: {err}")
    })?;
    if !matches!(s.filesystem.as_str(), "" | "ext4" | "vfat" | "vfat-16" | "vfat-32" | "none") {
        return Err(format!("invalid filesystem {:?}", s.filesystem));
    }
    Ok(())
}

fn is_mbr_type_code(text: &str) -> bool {
    text.len() == 2 && text.chars().all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c))
}

fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    groups.len() == 5
        && groups
            .iter()
            .zip(lens)
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn validate_type(type_: &str, volume: &Volume) -> Result<(), String> {
    if type_.is_empty() {
        return Err("type is not specified".to_string());
    }
    if type_ == "bare" || type_ == "mbr" {
        return Ok(());
    }
    let (is_gpt, is_mbr, is_hybrid) = match type_.split_once(',') {
        None if is_mbr_type_code(type_) => (false, true, false),
        None if is_guid(type_) => (true, false, false),
        None => return Err("invalid format".to_string()),
        Some((code, guid)) => {
            if !is_mbr_type_code(code) || !is_guid(guid) {
                return Err("invalid format of hybrid type".to_string());
            }
            (false, false, true)
        }
    };
    if volume.has_partial("schema") {
        if !is_hybrid {
            return Err(
                "both MBR type and GUID structure type needs to be defined on partial schemas"
                    .to_string(),
            );
        }
    } else if volume.schema != "gpt" && is_gpt {
        return Err(format!("GUID structure type with non-GPT schema {:?}", volume.schema));
    } else if volume.schema != "mbr" && is_mbr {
        return Err(format!("MBR structure type with non-MBR schema {:?}", volume.schema));
    }
    Ok(())
}

fn validate_role(s: &Structure) -> Result<(), String> {
    if s.type_ == "bare" && !s.role.is_empty() && s.role != "mbr" {
        return Err(format!("conflicting type: {:?}", s.type_));
    }
    let mut role = s.role.as_str();
    if s.type_ == "mbr" {
        if !role.is_empty() && role != "mbr" {
            return Err("conflicting legacy type: \"mbr\"".to_string());
        }
        role = "mbr";
    }
    match role {
        "mbr" => {
            if s.size > SIZE_MBR {
                return Err("mbr structures cannot be larger than 446 bytes".to_string());
            }
            if s.offset.is_some_and(|o| o != 0) {
                return Err("mbr structure must start at offset 0".to_string());
            }
            if !s.id.is_empty() {
                return Err("mbr structure must not specify partition ID".to_string());
            }
            if !s.filesystem.is_empty() && s.filesystem != "none" {
                return Err("mbr structures must not specify a file system".to_string());
            }
            Ok(())
        }
        "system-data" | "system-seed" | "system-seed-null" | "system-save" | "system-boot"
        | "system-boot-image" | "system-boot-select" | "system-seed-select"
        | "system-seed-image" | "bootimg" | "bootselect" | "" => Ok(()),
        _ => Err("unsupported role".to_string()),
    }
}

impl Volume {
    /// Whether a property is listed in `partial:`.
    pub fn has_partial(&self, property: &str) -> bool {
        self.partial.iter().any(|p| p == property)
    }

    /// The smallest start offset the structure at `index` (in [`Volume::structures`]) can have (`minStructureOffset`).
    pub fn min_offset(&self, index: usize) -> u64 {
        let all = &self.structures;
        if let Some(offset) = all[index].offset {
            return offset;
        }
        let mut sizes = 0u64;
        for s in all[..index].iter().rev() {
            sizes = sizes.saturating_add(s.min_size);
            if let Some(offset) = s.offset {
                return offset.saturating_add(sizes);
            }
        }
        0
    }

    /// The largest start offset the structure at `index` can have (`maxStructureOffset`).
    pub fn max_offset(&self, index: usize) -> u64 {
        let all = &self.structures;
        if let Some(offset) = all[index].offset {
            return offset;
        }
        let mut max = 0u64;
        let mut sizes = 0u64;
        for s in all[..index].iter().rev() {
            if s.has_partial_size(self) {
                max = UNBOUNDED;
                break;
            }
            sizes = sizes.saturating_add(s.size);
            if let Some(offset) = s.offset {
                max = offset.saturating_add(sizes);
                break;
            }
        }
        let mut forward = UNBOUNDED;
        let mut sizes = 0u64;
        for s in &all[index..] {
            if let Some(offset) = s.offset {
                forward = offset.saturating_sub(sizes);
                break;
            }
            sizes = sizes.saturating_add(s.min_size);
        }
        max.min(forward)
    }
}

impl Structure {
    /// Whether the structure has a filesystem, as snapd decides it (`HasFilesystem`).
    pub fn has_filesystem(&self, volume: &Volume) -> bool {
        match self.filesystem.as_str() {
            "" | "none" => {
                self.type_ != "bare" && self.type_ != "mbr" && volume.has_partial("filesystem")
            }
            _ => true,
        }
    }

    /// Whether the size is left to the installer (`partial: [size]` and no size).
    pub fn has_partial_size(&self, volume: &Volume) -> bool {
        volume.has_partial("size") && self.size == 0
    }

    /// The largest size the structure may have: `size`, or unbounded when partial (`effectivePartSize`).
    pub fn max_size(&self, volume: &Volume) -> u64 {
        if self.has_partial_size(volume) {
            UNBOUNDED
        } else {
            self.size
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const PC22: &str = include_str!("../../gadget/gadget.yaml");

    #[test]
    fn quantities() {
        for (input, want) in
            [("440", Ok(440)), ("1M", Ok(MIB)), ("1G", Ok(GIB)), ("1200M", Ok(1200 * MIB))]
        {
            assert_eq!(parse_size(input), want, "{input}");
        }
        for (input, want) in [
            ("16K", "invalid suffix \"K\""),
            ("123a", "invalid suffix \"a\""),
            ("M", "no numerical prefix"),
            ("a0M", "no numerical prefix"),
            ("-1", "size cannot be negative"),
            ("-123", "size cannot be negative"),
            // snapd's signed 64-bit parse: 2^63 and above are not numbers.
            ("9223372036854775808", "\"9223372036854775808\" is not a number"),
            ("18446744073709551615", "\"18446744073709551615\" is not a number"),
            ("99999999999999999999", "\"99999999999999999999\" is not a number"),
            ("1-2", "\"1-2\" is not a number"),
            ("", "\"\" is not a number"),
            ("9223372036854775807M", "\"9223372036854775807M\" is out of range"),
        ] {
            assert_eq!(parse_size(input), Err(want.to_string()), "{input}");
        }
        assert_eq!(parse_size("9223372036854775807"), Ok(i64::MAX.unsigned_abs()));
        assert_eq!(parse_offset("-5"), Err("offset cannot be negative".to_string()));
        assert_eq!(format_quantity(32 * MIB), "32M");
        assert_eq!(format_quantity(2 * GIB), "2G");
        assert_eq!(format_quantity(440), "440");
        assert_eq!(format_quantity(0), "0");
    }

    proptest::proptest! {
        #[test]
        fn quantity_round_trip(n in 0u64..(i64::MAX.unsigned_abs()), unit in 0usize..3) {
            let bytes = match unit { 0 => n, 1 => (n >> 20) << 20, _ => (n >> 30) << 30 };
            proptest::prop_assert_eq!(parse_size(&format_quantity(bytes)), Ok(bytes));
        }

        #[test]
        fn a_layout_is_compatible_with_itself(sizes in proptest::collection::vec((1u64..4096, 0u64..4096), 1..8)) {
            let mut text = String::from("volumes:\n  disk:\n    bootloader: grub\n    structure:\n");
            for (i, (size, extra)) in sizes.iter().enumerate() {
                text.push_str(&format!("      - {{name: s{i}, type: bare, min-size: {size}M, size: {}M}}\n", size + extra));
            }
            let info = parse(&text, Ruleset::Uc20).expect("generated gadget parses");
            proptest::prop_assert!(check_compatible(&info, &info).is_empty());
        }
    }

    #[test]
    fn pc22_gadget_parses_with_snapd_defaults() {
        let info = parse(PC22, Ruleset::Uc20).expect("pc gadget parses");
        let pc = &info.volumes["pc"];
        assert_eq!(pc.schema, "gpt");
        assert_eq!(pc.bootloader, "grub");
        let rows: Vec<String> = pc
            .structures
            .iter()
            .map(|s| {
                format!(
                    "{} {} {:?} {} {} {}",
                    s.yaml_index, s.name, s.offset, s.min_size, s.size, s.label
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                "0 mbr Some(0) 440 440 ",
                "1 BIOS Boot Some(1048576) 1048576 1048576 ",
                "2 ubuntu-seed Some(2097152) 1258291200 1258291200 ubuntu-seed",
                "3 ubuntu-boot Some(1260388352) 786432000 786432000 ubuntu-boot",
                "4 ubuntu-save Some(2046820352) 16777216 33554432 ubuntu-save",
                "5 ubuntu-data None 1073741824 1073741824 ubuntu-data",
            ]
        );
        assert_eq!(pc.structures[0].role, "mbr");
        // ubuntu-data follows a structure with a size range, so it can start anywhere in between.
        assert_eq!(pc.min_offset(5), 2046820352 + 16 * MIB);
        assert_eq!(pc.max_offset(5), 2046820352 + 32 * MIB);
    }

    #[test]
    fn defaults_schema_and_min_size() {
        let text = "volumes:\n  vol:\n    bootloader: u-boot\n    structure:\n      - name: a\n        type: 83,0FC63DAF-8483-4772-8E79-3D69D8477DE4\n        size: 10M\n";
        let info = parse(text, Ruleset::Unknown).expect("parses");
        let v = &info.volumes["vol"];
        assert_eq!(v.schema, "gpt");
        assert_eq!(v.structures[0].min_size, 10 * MIB);
        assert_eq!(v.structures[0].offset, Some(MIB));
    }

    #[test]
    fn relative_offsets_like_snapd() {
        // snapd's TestUnmarshalGadgetRelativeOffset.
        for (input, want) in [
            ("1234", Ok(("", 1234))),
            ("1234M", Ok(("", 1234 * MIB))),
            ("4096M", Ok(("", 4096 * MIB))),
            ("mbr+0", Ok(("mbr", 0))),
            ("foo+1G", Ok(("foo", GIB))),
            ("foo+4097M", Err("offset above 4G limit")),
            ("foo+", Err("missing offset")),
            ("+12", Err("missing volume name")),
            ("a0M", Err("cannot parse offset \"a0M\": no numerical prefix")),
            ("-123", Err("cannot parse offset \"-123\": offset cannot be negative")),
            ("123a", Err("cannot parse offset \"123a\": invalid suffix \"a\"")),
            (
                "mbr+18446744073709551615",
                Err("cannot parse offset \"18446744073709551615\": \"18446744073709551615\" is not a number"),
            ),
        ] {
            let got = parse_relative_offset(input);
            let want = want.map(|(to, n)| (to.to_string(), n)).map_err(str::to_string);
            assert_eq!(got, want, "{input}");
        }
        assert!(parse_relative_offset("foo+++12").is_err());
    }

    #[test]
    fn refuses_what_snapd_refuses() {
        let vol = |structure: &str| {
            format!("volumes:\n  pc:\n    bootloader: grub\n    structure:\n{structure}")
        };
        for (text, want) in [
            ("volumes: {}\n".to_string(), "gadget does not define any volume"),
            ("volumes:\n  pc:\n    structure: []\n".to_string(), "bootloader not declared in any volume"),
            ("volumes:\n  pc:\n    bootloader: syslinux\n".to_string(), "bootloader must be one of grub, u-boot, android-boot, piboot or lk"),
            (vol("      - name: a\n        type: bare\n"), "invalid volume \"pc\": invalid structure #0 (\"a\"): missing size"),
            (
                vol("      - name: a\n        type: bare\n        size: 1M\n        min-size: 2M\n"),
                "invalid volume \"pc\": invalid structure #0 (\"a\"): min-size (2097152) is bigger than size (1048576)",
            ),
            (vol("      - name: a\n        type: bare\n        size: 1K\n"), "cannot parse gadget metadata: cannot parse size \"1K\": invalid suffix \"K\""),
            (
                vol("      - name: a\n        type: bare\n        size: 18446744073709551615\n"),
                "cannot parse gadget metadata: cannot parse size \"18446744073709551615\": \"18446744073709551615\" is not a number",
            ),
            (
                vol("      - name: a\n        type: bare\n        size: 1M\n        offset: 9223372036854775808\n"),
                "cannot parse gadget metadata: cannot parse offset \"9223372036854775808\": \"9223372036854775808\" is not a number",
            ),
            (
                vol("      - name: a\n        type: bare\n        size: 1M\n        offset-write: mbr+18446744073709551615\n"),
                "cannot parse gadget metadata: cannot parse relative offset \"mbr+18446744073709551615\": cannot parse offset \"18446744073709551615\": \"18446744073709551615\" is not a number",
            ),
            (
                vol("      - name: a\n        type: bare\n        size: 1M\n        offset-write: nowhere+8\n"),
                "invalid volume \"pc\": structure #0 (\"a\") refers to an unknown structure \"nowhere\"",
            ),
            // Big but valid numbers: the third structure starts past 2^64, which snapd's sum wraps around.
            (
                vol("      - name: a\n        type: bare\n        size: 9223372036854775807\n      - name: b\n        type: bare\n        size: 9223372036854775807\n      - name: c\n        type: bare\n        size: 1M\n"),
                "invalid volume \"pc\": structure \"c\" overlaps with the preceding structure \"b\"",
            ),
            (
                vol("      - name: a\n        type: bare\n        size: 9223372036854775807\n      - name: b\n        type: bare\n        size: 9223372036854775807\n"),
                "invalid volume \"pc\": structure \"b\" ends past the largest offset a disk can have",
            ),
            (
                vol("      - name: a\n        type: bare\n        size: 9223372036854775807\n        offset: 1M\n      - name: b\n        type: bare\n        size: 1M\n        offset: 9223372036854775807\n"),
                "invalid volume \"pc\": structure \"b\" overlaps with the preceding structure \"a\"",
            ),
            (
                vol("      - name: a\n        type: 83\n        size: 1M\n"),
                "invalid volume \"pc\": invalid structure #0 (\"a\"): invalid type \"83\": MBR structure type with non-MBR schema \"gpt\"",
            ),
            (
                vol("      - name: a\n        type: bare\n        size: 1M\n        role: system-foo\n"),
                "invalid volume \"pc\": invalid structure #0 (\"a\"): invalid role \"system-foo\": conflicting type: \"bare\"",
            ),
            (
                vol("      - name: a\n        type: bare\n        size: 1M\n      - name: a\n        type: bare\n        size: 1M\n"),
                "invalid volume \"pc\": structure name \"a\" is not unique",
            ),
            (
                vol("      - name: a\n        type: bare\n        size: 2M\n        offset: 1M\n      - name: b\n        type: bare\n        size: 1M\n        offset: 2M\n"),
                "invalid volume \"pc\": structure \"b\" overlaps with the preceding structure \"a\"",
            ),
            (
                vol("      - name: a\n        type: mbr\n        size: 512\n"),
                "invalid volume \"pc\": invalid structure #0 (\"a\"): invalid role \"mbr\": mbr structures cannot be larger than 446 bytes",
            ),
        ] {
            assert_eq!(parse(&text, Ruleset::Uc20).map(|_| ()).map_err(|e| e.to_string()), Err(want.to_string()), "{text}");
        }
    }

    #[test]
    fn implicit_roles_and_labels_follow_the_ruleset() {
        let text = "volumes:\n  pc:\n    bootloader: grub\n    structure:\n      - {name: boot, type: 0C, size: 1M, filesystem: vfat, filesystem-label: system-boot}\n      - {name: data, type: 83, size: 1M, filesystem: ext4, role: system-data}\n    schema: mbr\n";
        let uc16 = parse(text, Ruleset::Uc16).expect("uc16");
        let labels: Vec<(&str, &str)> = uc16.volumes["pc"]
            .structures
            .iter()
            .map(|s| (s.role.as_str(), s.label.as_str()))
            .collect();
        assert_eq!(labels, [("system-boot", "system-boot"), ("system-data", "writable")]);
        let uc20 = parse(text, Ruleset::Uc20).expect("uc20");
        let labels: Vec<(&str, &str)> = uc20.volumes["pc"]
            .structures
            .iter()
            .map(|s| (s.role.as_str(), s.label.as_str()))
            .collect();
        assert_eq!(labels, [("", "system-boot"), ("system-data", "ubuntu-data")]);
    }

    #[test]
    fn bad_yaml_is_an_error_not_a_panic() {
        let err = parse("volumes: [\n", Ruleset::Uc20).expect_err("bad yaml");
        assert!(err.to_string().starts_with("cannot parse gadget metadata: "), "{err}");
    }

    #[test]
    fn offsets_are_reordered_like_snapd() {
        let text = "volumes:\n  vol:\n    bootloader: grub\n    structure:\n      - {name: late, type: bare, size: 1M, offset: 10M}\n      - {name: early, type: bare, size: 1M, offset: 2M}\n";
        let info = parse(text, Ruleset::Uc20).expect("parses");
        let names: Vec<(&str, usize)> = info.volumes["vol"]
            .structures
            .iter()
            .map(|s| (s.name.as_str(), s.yaml_index))
            .collect();
        assert_eq!(names, [("early", 1), ("late", 0)]);
    }
}
