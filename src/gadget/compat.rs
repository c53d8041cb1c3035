//! snapd's rules for replacing one gadget layout with another in a remodel. \[pure\]
//!
//! Mirrors `gadget.IsCompatible` → `isLayoutCompatible` → `canUpdateStructure` in snapd. snapd stops
//! at the first problem; [`check_compatible`] reports every structure that fails (each with the
//! first rule it breaks, in snapd's order), so the first entry is exactly snapd's error.

use super::{format_quantity, Info, Structure, Volume};

/// Why snapd would refuse to remodel from one gadget layout to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incompatibility {
    /// The new gadget has more than one volume.
    MultipleVolumes,
    /// The current gadget has more than one volume.
    CurrentMultipleVolumes,
    /// The new gadget lacks the current gadget's volume.
    MissingVolume {
        /// The current volume's name.
        name: String,
    },
    /// The disk ID changed.
    Id {
        /// Current ID.
        from: String,
        /// New ID.
        to: String,
    },
    /// The new schema is left partial while the current one is not.
    PartialSchema,
    /// The partition schema changed.
    Schema {
        /// Current schema.
        from: String,
        /// New schema.
        to: String,
    },
    /// The bootloader changed.
    Bootloader {
        /// Current bootloader.
        from: String,
        /// New bootloader.
        to: String,
    },
    /// Structures were added or removed.
    StructureCount {
        /// Current count.
        from: usize,
        /// New count.
        to: usize,
    },
    /// One structure cannot become the other.
    Structure {
        /// The new structure's index in its gadget.yaml.
        yaml_index: usize,
        /// The new structure's name.
        name: String,
        /// What is wrong with it.
        problem: StructureProblem,
        /// For an offset problem: the yaml index of an earlier structure whose size or offset
        /// problem moves this one (fixing that one fixes this one).
        caused_by: Option<usize>,
    },
}

/// Why one structure of the current layout cannot be replaced by the new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StructureProblem {
    /// GPT partition names must stay.
    Name {
        /// Current name.
        from: String,
        /// New name.
        to: String,
    },
    /// The `[min-size, size]` ranges do not intersect.
    SizeRange {
        /// New `min-size`.
        new_min: u64,
        /// New `size` (or unbounded).
        new_max: u64,
        /// Current `min-size`.
        current_min: u64,
        /// Current `size` (or unbounded).
        current_max: u64,
    },
    /// The ranges of possible start offsets do not intersect.
    OffsetRange {
        /// New smallest offset.
        new_min: u64,
        /// New largest offset.
        new_max: u64,
        /// Current smallest offset.
        current_min: u64,
        /// Current largest offset.
        current_max: u64,
    },
    /// The role changed.
    Role {
        /// Current role.
        from: String,
        /// New role.
        to: String,
    },
    /// The partition types share no value.
    Type {
        /// Current type.
        from: String,
        /// New type.
        to: String,
    },
    /// The partition ID changed.
    Id {
        /// Current ID.
        from: String,
        /// New ID.
        to: String,
    },
    /// A bare structure would gain a filesystem.
    BareToFilesystem,
    /// A filesystem structure would become bare.
    FilesystemToBare,
    /// The filesystem changed.
    Filesystem {
        /// Current filesystem.
        from: String,
        /// New filesystem.
        to: String,
    },
    /// The filesystem label changed.
    Label {
        /// Current label.
        from: String,
        /// New label.
        to: String,
    },
}

impl std::fmt::Display for StructureProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Name { from, to } => write!(f, "cannot change structure name from {from:?} to {to:?}"),
            Self::SizeRange { new_min, new_max, current_min, current_max } => write!(
                f,
                "new valid structure size range [{}, {}] is not compatible with current ([{}, {}])",
                *new_min,
                *new_max,
                *current_min,
                *current_max
            ),
            Self::OffsetRange { new_min, new_max, current_min, current_max } => write!(
                f,
                "new valid structure offset range [{}, {}] is not compatible with current ([{}, {}])",
                *new_min,
                *new_max,
                *current_min,
                *current_max
            ),
            Self::Role { from, to } => write!(f, "cannot change structure role from {from:?} to {to:?}"),
            Self::Type { from, to } => write!(f, "cannot change structure type from {from:?} to {to:?}"),
            Self::Id { from, to } => write!(f, "cannot change structure ID from {from:?} to {to:?}"),
            Self::BareToFilesystem => write!(f, "cannot change a bare structure to filesystem one"),
            Self::FilesystemToBare => write!(f, "cannot change a filesystem structure to a bare one"),
            Self::Filesystem { from, to } => write!(f, "cannot change filesystem from {from:?} to {to:?}"),
            Self::Label { from, to } => write!(f, "cannot change filesystem label from {from:?} to {to:?}"),
        }
    }
}

/// snapd's text for the problem, exactly as `gadget.IsCompatible` returns it.
impl std::fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MultipleVolumes => write!(f, "gadgets with multiple volumes are unsupported"),
            Self::CurrentMultipleVolumes => write!(f, "cannot update with more than one volume"),
            Self::MissingVolume { name } => write!(f, "cannot find entry for volume {name:?} in updated gadget info"),
            Self::Id { from, to } => write!(f, "incompatible layout change: incompatible ID change from {from} to {to}"),
            Self::PartialSchema => write!(f, "incompatible layout change: new schema is partial, while old was not"),
            Self::Schema { from, to } => {
                write!(f, "incompatible layout change: incompatible schema change from {from} to {to}")
            }
            Self::Bootloader { from, to } => {
                write!(f, "incompatible layout change: incompatible bootloader change from {from} to {to}")
            }
            Self::StructureCount { from, to } => write!(
                f,
                "incompatible layout change: incompatible change in the number of structures from {from} to {to}"
            ),
            Self::Structure { yaml_index, name, problem, .. } => write!(
                f,
                "incompatible layout change: incompatible structure #{yaml_index} ({name:?}) change: {problem}"
            ),
        }
    }
}

impl Incompatibility {
    /// The error a remodel to this gadget ends with (`checkGadgetRemodelCompatible`).
    pub fn snapd_error(&self) -> String {
        format!("cannot remodel to an incompatible gadget: {self}")
    }

    /// What to change in the new gadget.yaml so that snapd accepts it, in plain words.
    pub fn fix(&self) -> String {
        match self {
            Self::MultipleVolumes | Self::CurrentMultipleVolumes => {
                "snapd checks remodels of single-volume gadgets only: describe the system disk in one volume".to_string()
            }
            Self::MissingVolume { name } => format!("keep the volume named {name:?} in the new gadget.yaml"),
            Self::Id { from, .. } => format!("keep the volume `id: {from}`; the disk ID cannot change"),
            Self::PartialSchema => "give the new volume an explicit `schema:` like the current one".to_string(),
            Self::Schema { from, .. } => format!("keep `schema: {from}`; the partition table cannot be converted"),
            Self::Bootloader { from, .. } => {
                format!("keep `bootloader: {from}`; a remodel cannot switch the bootloader")
            }
            Self::StructureCount { from, .. } => format!(
                "keep the same {from} structures in the same order; a remodel cannot add or remove partitions"
            ),
            Self::Structure { caused_by: Some(earlier), .. } => {
                format!("this follows from the problem with structure #{earlier}: fixing that one fixes this one")
            }
            Self::Structure { name, problem, .. } => structure_fix(name, problem),
        }
    }
}

fn structure_fix(name: &str, problem: &StructureProblem) -> String {
    let who = if name.is_empty() { "the structure".to_string() } else { format!("{name:?}") };
    match problem {
        StructureProblem::Name { from, .. } => {
            format!("keep `name: {from}`; GPT partition names cannot change")
        }
        StructureProblem::SizeRange { new_min, new_max, current_min, current_max } => {
            if new_min > current_max {
                // Growing: the partition on disk keeps its size, so the new gadget must still accept it.
                format!(
                    "give {who} `min-size: {}` and `size: {}`: the partition on disk is not resized, so the new gadget must accept its current size ({}) as a minimum",
                    format_quantity(*current_max),
                    format_quantity(*new_max),
                    format_quantity(*current_max)
                )
            } else {
                format!(
                    "give {who} a `size:` of at least {} (keep `min-size: {}` if you need the smaller size for new installs): the partition on disk is not resized",
                    format_quantity(*current_min),
                    format_quantity(*new_min)
                )
            }
        }
        StructureProblem::OffsetRange { current_min, current_max, .. } => {
            if current_min == current_max {
                format!(
                    "make {who} start at {} (`offset: {}`), where it starts now: sizes and offsets of the structures before it must not move it",
                    current_min,
                    format_quantity(*current_min)
                )
            } else {
                format!(
                    "keep {who} within offsets [{current_min}, {current_max}]: sizes and offsets of the structures before it must not move it"
                )
            }
        }
        StructureProblem::Role { from, .. } => {
            let role =
                if from.is_empty() { "no role".to_string() } else { format!("`role: {from}`") };
            format!("keep {role} on {who}; roles cannot change in a remodel")
        }
        StructureProblem::Type { from, .. } => {
            format!("keep `type: {from}` on {who} (or a hybrid type that contains it)")
        }
        StructureProblem::Id { from, .. } => {
            if from.is_empty() {
                format!("remove `id:` from {who}; partition IDs cannot change")
            } else {
                format!("keep `id: {from}` on {who}; partition IDs cannot change")
            }
        }
        StructureProblem::BareToFilesystem => {
            format!("remove `filesystem:` from {who}; it has none on disk")
        }
        StructureProblem::FilesystemToBare => {
            format!("keep the filesystem of {who}; it has one on disk")
        }
        StructureProblem::Filesystem { from, .. } => {
            format!("keep `filesystem: {from}` on {who}; filesystems are not reformatted")
        }
        StructureProblem::Label { from, .. } => {
            format!(
                "keep `filesystem-label: {from}` on {who} (or leave it out if the role implies it)"
            )
        }
    }
}

/// Checks whether a device laid out with `current` can remodel to `new`, by snapd's rules.
///
/// An empty result means compatible. Otherwise the first entry is the error snapd gives.
pub fn check_compatible(current: &Info, new: &Info) -> Vec<Incompatibility> {
    if new.volumes.len() > 1 {
        return vec![Incompatibility::MultipleVolumes];
    }
    if current.volumes.len() != 1 || new.volumes.len() != 1 {
        return vec![Incompatibility::CurrentMultipleVolumes];
    }
    let Some((name, current_volume)) = current.volumes.iter().next() else {
        return vec![Incompatibility::CurrentMultipleVolumes];
    };
    let Some(new_volume) = new.volumes.get(name) else {
        return vec![Incompatibility::MissingVolume { name: name.clone() }];
    };
    check_volumes(current_volume, new_volume)
}

fn check_volumes(current: &Volume, new: &Volume) -> Vec<Incompatibility> {
    let mut problems = Vec::new();
    if current.id != new.id {
        problems.push(Incompatibility::Id { from: current.id.clone(), to: new.id.clone() });
    }
    if !current.has_partial("schema") {
        if new.has_partial("schema") {
            problems.push(Incompatibility::PartialSchema);
        } else if current.schema != new.schema {
            problems.push(Incompatibility::Schema {
                from: current.schema.clone(),
                to: new.schema.clone(),
            });
        }
    }
    if current.bootloader != new.bootloader {
        problems.push(Incompatibility::Bootloader {
            from: current.bootloader.clone(),
            to: new.bootloader.clone(),
        });
    }
    if current.structures.len() != new.structures.len() {
        problems.push(Incompatibility::StructureCount {
            from: current.structures.len(),
            to: new.structures.len(),
        });
        return problems;
    }
    // A structure whose size range or offset moved shifts the structures after it, up to the next
    // one with an offset written in gadget.yaml.
    let mut mover: Option<usize> = None;
    for (index, to) in new.structures.iter().enumerate() {
        if to.offset_given {
            mover = None;
        }
        if let Err(problem) = can_update_structure(current, new, index) {
            let caused_by = match problem {
                StructureProblem::OffsetRange { .. } => mover,
                _ => None,
            };
            if matches!(
                problem,
                StructureProblem::SizeRange { .. } | StructureProblem::OffsetRange { .. }
            ) {
                mover = mover.or(Some(to.yaml_index));
            }
            problems.push(Incompatibility::Structure {
                yaml_index: to.yaml_index,
                name: to.name.clone(),
                problem,
                caused_by,
            });
        }
    }
    problems
}

fn types_compatible(from: &Structure, to: &Structure) -> bool {
    let to_types: Vec<&str> = to.type_.split(',').collect();
    from.type_.split(',').any(|t| to_types.contains(&t))
        || (from.type_ == "mbr" && to.role == "mbr")
}

fn can_update_structure(
    from_volume: &Volume,
    to_volume: &Volume,
    index: usize,
) -> Result<(), StructureProblem> {
    let from = &from_volume.structures[index];
    let to = &to_volume.structures[index];
    if !to_volume.has_partial("schema") && to_volume.schema == "gpt" && from.name != to.name {
        return Err(StructureProblem::Name { from: from.name.clone(), to: to.name.clone() });
    }
    let (from_max, to_max) = (from.max_size(from_volume), to.max_size(to_volume));
    if !(from_max >= to.min_size && from.min_size <= to_max) {
        return Err(StructureProblem::SizeRange {
            new_min: to.min_size,
            new_max: to_max,
            current_min: from.min_size,
            current_max: from_max,
        });
    }
    let (from_min_off, from_max_off) =
        (from_volume.min_offset(index), from_volume.max_offset(index));
    let (to_min_off, to_max_off) = (to_volume.min_offset(index), to_volume.max_offset(index));
    if !(from_max_off >= to_min_off && from_min_off <= to_max_off) {
        return Err(StructureProblem::OffsetRange {
            new_min: to_min_off,
            new_max: to_max_off,
            current_min: from_min_off,
            current_max: from_max_off,
        });
    }
    if from.role != to.role {
        return Err(StructureProblem::Role { from: from.role.clone(), to: to.role.clone() });
    }
    if !types_compatible(from, to) {
        return Err(StructureProblem::Type { from: from.type_.clone(), to: to.type_.clone() });
    }
    if from.id != to.id {
        return Err(StructureProblem::Id { from: from.id.clone(), to: to.id.clone() });
    }
    if to.has_filesystem(to_volume) {
        if !from.has_filesystem(from_volume) {
            return Err(StructureProblem::BareToFilesystem);
        }
        if !from.filesystem.is_empty() && from.filesystem != to.filesystem {
            return Err(StructureProblem::Filesystem {
                from: from.filesystem.clone(),
                to: to.filesystem.clone(),
            });
        }
        if from.label != to.label {
            return Err(StructureProblem::Label { from: from.label.clone(), to: to.label.clone() });
        }
    } else if from.has_filesystem(from_volume) {
        return Err(StructureProblem::FilesystemToBare);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{parse, Ruleset};
    use super::*;

    fn fixture(name: &str) -> Info {
        let path = format!("{}/tests/fixtures/gadget/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("fixture");
        parse(&text, Ruleset::Uc20).expect("fixture parses")
    }

    fn check(old: &str, new: &str) -> Vec<String> {
        check_compatible(&fixture(old), &fixture(new))
            .iter()
            .map(|p| format!("{p}\n  fix: {}", p.fix()))
            .collect()
    }

    #[test]
    fn seed_case_gives_snapds_exact_error_and_the_fix() {
        let problems = check_compatible(&fixture("pc-20.yaml"), &fixture("pc-22-size-only.yaml"));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(
            problems[0].snapd_error(),
            "cannot remodel to an incompatible gadget: incompatible layout change: incompatible structure #4 (\"ubuntu-save\") change: new valid structure size range [33554432, 33554432] is not compatible with current ([16777216, 16777216])"
        );
        let fix = problems[0].fix();
        assert!(fix.starts_with("give \"ubuntu-save\" `min-size: 16M` and `size: 32M`"), "{fix}");
        // ubuntu-data moves with it; snapd stops before saying so.
        assert_eq!(
            problems[1].to_string(),
            "incompatible layout change: incompatible structure #5 (\"ubuntu-data\") change: new valid structure offset range [2080374784, 2080374784] is not compatible with current ([2063597568, 2063597568])"
        );
        assert_eq!(
            problems[1].fix(),
            "this follows from the problem with structure #4: fixing that one fixes this one"
        );
    }

    #[test]
    fn min_size_range_is_compatible() {
        assert_eq!(check("pc-20.yaml", "pc-22.yaml"), Vec::<String>::new());
        assert_eq!(check("pc-22.yaml", "pc-22.yaml"), Vec::<String>::new());
    }

    #[test]
    fn structure_count_change() {
        let got = check("pc-22.yaml", "pc-22-extra-structure.yaml");
        assert_eq!(got.len(), 1);
        assert!(
            got[0].starts_with(
                "incompatible layout change: incompatible change in the number of structures from 6 to 7\n  fix: keep the same 6 structures"
            ),
            "{got:?}"
        );
    }

    #[test]
    fn role_change() {
        let got = check("pc-22.yaml", "pc-22-role-change.yaml");
        assert_eq!(
            got,
            [
                "incompatible layout change: incompatible structure #4 (\"ubuntu-save\") change: cannot change structure role from \"system-save\" to \"system-data\"\n  fix: keep `role: system-save` on \"ubuntu-save\"; roles cannot change in a remodel",
                "incompatible layout change: incompatible structure #5 (\"ubuntu-data\") change: cannot change structure role from \"system-data\" to \"system-save\"\n  fix: keep `role: system-data` on \"ubuntu-data\"; roles cannot change in a remodel",
            ]
        );
    }

    fn one_structure(extra_old: &str, extra_new: &str) -> Vec<String> {
        let yaml = |extra: &str| {
            format!("volumes:\n  vol:\n    bootloader: grub\n    structure:\n      - name: a\n        type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4\n        size: 10M\n{extra}")
        };
        let old = parse(&yaml(extra_old), Ruleset::Uc20).expect("old");
        let new = parse(&yaml(extra_new), Ruleset::Uc20).expect("new");
        check_compatible(&old, &new).iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn per_structure_rules_in_snapds_order() {
        let prefix = "incompatible layout change: incompatible structure #0 (\"a\") change: ";
        for (old, new, want) in [
            ("        filesystem: ext4\n", "        filesystem: vfat\n", "cannot change filesystem from \"ext4\" to \"vfat\""),
            ("", "        filesystem: ext4\n", "cannot change a bare structure to filesystem one"),
            ("        filesystem: ext4\n", "", "cannot change a filesystem structure to a bare one"),
            ("        id: X\n", "        id: Y\n", "cannot change structure ID from \"X\" to \"Y\""),
            ("        offset: 1M\n", "        offset: 2M\n", "new valid structure offset range [2097152, 2097152] is not compatible with current ([1048576, 1048576])"),
            (
                "        filesystem: ext4\n        filesystem-label: x\n",
                "        filesystem: ext4\n        filesystem-label: y\n",
                "cannot change filesystem label from \"x\" to \"y\"",
            ),
        ] {
            assert_eq!(one_structure(old, new), [format!("{prefix}{want}")], "{old} -> {new}");
        }
    }

    #[test]
    fn schema_bootloader_and_volume_changes() {
        let a = parse("volumes:\n  vol:\n    bootloader: grub\n    structure: []\n", Ruleset::Uc20)
            .expect("a");
        let b = parse(
            "volumes:\n  vol:\n    bootloader: u-boot\n    schema: mbr\n    structure: []\n",
            Ruleset::Uc20,
        )
        .expect("b");
        let c =
            parse("volumes:\n  other:\n    bootloader: grub\n    structure: []\n", Ruleset::Uc20)
                .expect("c");
        let got: Vec<String> = check_compatible(&a, &b).iter().map(|p| p.to_string()).collect();
        assert_eq!(
            got,
            [
                "incompatible layout change: incompatible schema change from gpt to mbr",
                "incompatible layout change: incompatible bootloader change from grub to u-boot"
            ]
        );
        assert_eq!(
            check_compatible(&a, &c).iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            ["cannot find entry for volume \"vol\" in updated gadget info"]
        );
    }

    #[test]
    fn multiple_volumes_are_refused_like_snapd() {
        let one =
            parse("volumes:\n  pc:\n    bootloader: grub\n    structure: []\n", Ruleset::Uc20)
                .expect("one");
        let two = parse(
            "volumes:\n  pc:\n    bootloader: grub\n    structure: []\n  extra:\n    structure: []\n",
            Ruleset::Uc20,
        )
        .expect("two");
        let text = |a: &Info, b: &Info| {
            check_compatible(a, b).iter().map(|p| p.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(text(&one, &two), ["gadgets with multiple volumes are unsupported"]);
        assert_eq!(text(&two, &one), ["cannot update with more than one volume"]);
    }

    #[test]
    fn shrinking_below_the_disk_suggests_a_size() {
        let got = check_compatible(
            &parse("volumes:\n  vol:\n    bootloader: grub\n    structure:\n      - {name: a, type: bare, size: 32M}\n", Ruleset::Uc20)
                .expect("a"),
            &parse("volumes:\n  vol:\n    bootloader: grub\n    structure:\n      - {name: a, type: bare, size: 16M}\n", Ruleset::Uc20)
                .expect("b"),
        );
        assert_eq!(got.len(), 1);
        assert!(
            got[0].fix().starts_with("give \"a\" a `size:` of at least 32M"),
            "{}",
            got[0].fix()
        );
    }
}
