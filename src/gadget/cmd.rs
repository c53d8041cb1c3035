//! `pocketses gadget check OLD NEW` and `pocketses gadget show FILE`: gadget layout compatibility.
//!
//! Files are read by [`super::snapfile::load`]; the verdict and its wording come from the pure
//! [`render_check`] and [`render_layout`].

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use super::snapfile::load;
use super::{check_compatible, format_quantity, Incompatibility, Info, Ruleset};

/// Flags of this command.
#[derive(Debug, clap::Args)]
pub struct GadgetArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: GadgetCommand,
}

/// The `gadget` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum GadgetCommand {
    /// Check that a device installed with OLD can remodel to NEW (gadget.yaml files or gadget .snap files).
    Check {
        /// The current gadget: a gadget.yaml or a gadget .snap.
        old: PathBuf,
        /// The new gadget: a gadget.yaml or a gadget .snap.
        new: PathBuf,
        /// Read the gadgets as for a UC16/UC18 model (no grade) instead of UC20+.
        #[arg(long)]
        uc16: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the layout snapd computes for a gadget: structures, offsets and size ranges.
    Show {
        /// A gadget.yaml or a gadget .snap.
        file: PathBuf,
        /// Read the gadget as for a UC16/UC18 model (no grade) instead of UC20+.
        #[arg(long)]
        uc16: bool,
        /// Print the layout as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs the command.
///
/// # Errors
/// When a gadget cannot be read or parsed; an incompatible pair is not an error but exit code 1.
pub fn main(args: GadgetArgs) -> anyhow::Result<ExitCode> {
    let ruleset = |uc16: bool| if uc16 { Ruleset::Uc16 } else { Ruleset::Uc20 };
    match args.command {
        GadgetCommand::Check { old, new, uc16, json } => {
            let current = load(&old, ruleset(uc16))?;
            let target = load(&new, ruleset(uc16))?;
            let problems = check_compatible(&current, &target);
            let out = if json {
                render_check_json(&problems)?
            } else {
                render_check(&old.display().to_string(), &new.display().to_string(), &problems)
            };
            print!("{out}");
            Ok(if problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        GadgetCommand::Show { file, uc16, json } => {
            let info = load(&file, ruleset(uc16))?;
            print!("{}", if json { render_layout_json(&info)? } else { render_layout(&info) });
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The human verdict of a check: compatible, or snapd's error followed by every problem and its fix.
pub fn render_check(old: &str, new: &str, problems: &[Incompatibility]) -> String {
    let mut out = String::new();
    let Some(first) = problems.first() else {
        let _ = writeln!(out, "compatible: a device installed with {old} can remodel to {new}");
        return out;
    };
    let _ = writeln!(out, "incompatible: a device installed with {old} cannot remodel to {new}");
    let _ = writeln!(out, "snapd would fail the remodel with:");
    let _ = writeln!(out, "  {}", first.snapd_error());
    let _ = writeln!(out, "{}:", if problems.len() == 1 { "problem" } else { "problems" });
    for problem in problems {
        let _ = writeln!(out, "- {problem}");
        let _ = writeln!(out, "  fix: {}", problem.fix());
    }
    out
}

/// The verdict of `gadget check --json`.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
struct CheckDoc {
    /// Whether a device installed with the old gadget can remodel to the new one.
    compatible: bool,
    /// The error snapd would end the remodel with (its first problem), if any.
    error: Option<String>,
    /// Every problem, with what to change.
    problems: Vec<ProblemDoc>,
}

/// One problem of [`CheckDoc`].
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
struct ProblemDoc {
    message: String,
    fix: String,
}

/// The verdict as one JSON object: `{"compatible": bool, "error": snapd's error or null, "problems": [{"message", "fix"}]}`.
///
/// # Errors
/// When JSON encoding fails (it cannot for these plain values).
pub fn render_check_json(problems: &[Incompatibility]) -> serde_json::Result<String> {
    let doc = CheckDoc {
        compatible: problems.is_empty(),
        error: problems.first().map(Incompatibility::snapd_error),
        problems: problems
            .iter()
            .map(|p| ProblemDoc { message: p.to_string(), fix: p.fix() })
            .collect(),
    };
    json_line(&doc)
}

/// The layout of `gadget show --json`.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
struct LayoutDoc<'a> {
    volumes: Vec<VolumeDoc<'a>>,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
struct VolumeDoc<'a> {
    name: &'a str,
    schema: &'a str,
    bootloader: &'a str,
    id: &'a str,
    partial: &'a [String],
    structures: Vec<StructureDoc<'a>>,
}

/// One structure, in bytes; `min-offset` and `max-offset` differ when an earlier structure's
/// size is a range.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
struct StructureDoc<'a> {
    yaml_index: usize,
    name: &'a str,
    role: &'a str,
    label: &'a str,
    #[serde(rename = "type")]
    type_: &'a str,
    id: &'a str,
    filesystem: &'a str,
    min_offset: u64,
    max_offset: u64,
    min_size: u64,
    size: u64,
    offset_write: Option<&'a str>,
}

/// The layout as one JSON object (`gadget show --json`).
///
/// # Errors
/// When JSON encoding fails (it cannot for these plain values).
pub fn render_layout_json(info: &Info) -> serde_json::Result<String> {
    let volumes = info
        .volumes
        .values()
        .map(|v| VolumeDoc {
            name: &v.name,
            schema: &v.schema,
            bootloader: &v.bootloader,
            id: &v.id,
            partial: &v.partial,
            structures: v
                .structures
                .iter()
                .enumerate()
                .map(|(index, s)| StructureDoc {
                    yaml_index: s.yaml_index,
                    name: &s.name,
                    role: &s.role,
                    label: &s.label,
                    type_: &s.type_,
                    id: &s.id,
                    filesystem: &s.filesystem,
                    min_offset: v.min_offset(index),
                    max_offset: v.max_offset(index),
                    min_size: s.min_size,
                    size: s.size,
                    offset_write: s.offset_write.as_deref(),
                })
                .collect(),
        })
        .collect();
    json_line(&LayoutDoc { volumes })
}

/// One JSON document and a newline.
fn json_line(doc: &impl serde::Serialize) -> serde_json::Result<String> {
    serde_json::to_string(doc).map(|text| text + "\n")
}

/// The layout as snapd computes it, one line per structure.
pub fn render_layout(info: &Info) -> String {
    let mut out = String::new();
    for volume in info.volumes.values() {
        let _ = writeln!(
            out,
            "volume {} (schema {}, bootloader {})",
            volume.name,
            volume.schema,
            or_dash(&volume.bootloader)
        );
        let _ = writeln!(out, "  #   name           role           offset                size          filesystem   label");
        for (index, s) in volume.structures.iter().enumerate() {
            let (min_off, max_off) = (volume.min_offset(index), volume.max_offset(index));
            let offset = if min_off == max_off {
                format_quantity(min_off)
            } else {
                format!("{}..{}", format_quantity(min_off), format_quantity(max_off))
            };
            let size = if s.min_size == s.size {
                format_quantity(s.size)
            } else {
                format!("{}..{}", format_quantity(s.min_size), format_quantity(s.size))
            };
            let _ = writeln!(
                out,
                "  {:<3} {:<14} {:<14} {:<21} {:<13} {:<12} {}",
                s.yaml_index,
                or_dash(&s.name),
                or_dash(&s.role),
                offset,
                size,
                or_dash(&s.filesystem),
                or_dash(&s.label)
            );
        }
    }
    out
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() {
        "-"
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;

    fn fixture(name: &str) -> Info {
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gadget").join(name);
        load(&path, Ruleset::Uc20).expect("fixture")
    }

    #[test]
    fn seed_case_human_output() {
        let problems = check_compatible(&fixture("pc-20.yaml"), &fixture("pc-22-size-only.yaml"));
        expect![[r#"
            incompatible: a device installed with pc-20.yaml cannot remodel to pc-22-size-only.yaml
            snapd would fail the remodel with:
              cannot remodel to an incompatible gadget: incompatible layout change: incompatible structure #4 ("ubuntu-save") change: new valid structure size range [33554432, 33554432] is not compatible with current ([16777216, 16777216])
            problems:
            - incompatible layout change: incompatible structure #4 ("ubuntu-save") change: new valid structure size range [33554432, 33554432] is not compatible with current ([16777216, 16777216])
              fix: give "ubuntu-save" `min-size: 16M` and `size: 32M`: the partition on disk is not resized, so the new gadget must accept its current size (16M) as a minimum
            - incompatible layout change: incompatible structure #5 ("ubuntu-data") change: new valid structure offset range [2080374784, 2080374784] is not compatible with current ([2063597568, 2063597568])
              fix: this follows from the problem with structure #4: fixing that one fixes this one
        "#]]
        .assert_eq(&render_check("pc-20.yaml", "pc-22-size-only.yaml", &problems));
    }

    #[test]
    fn compatible_output() {
        let problems = check_compatible(&fixture("pc-20.yaml"), &fixture("pc-22.yaml"));
        expect![[r#"
            compatible: a device installed with pc-20.yaml can remodel to pc-22.yaml
        "#]]
        .assert_eq(&render_check("pc-20.yaml", "pc-22.yaml", &problems));
    }

    #[test]
    fn json_output() {
        let problems =
            check_compatible(&fixture("pc-22.yaml"), &fixture("pc-22-extra-structure.yaml"));
        expect![[r#"
            {"compatible":false,"error":"cannot remodel to an incompatible gadget: incompatible layout change: incompatible change in the number of structures from 6 to 7","problems":[{"message":"incompatible layout change: incompatible change in the number of structures from 6 to 7","fix":"keep the same 6 structures in the same order; a remodel cannot add or remove partitions"}]}
        "#]]
        .assert_eq(&render_check_json(&problems).expect("encode"));
    }

    #[test]
    fn layout_as_json() {
        let value: serde_json::Value =
            serde_json::from_str(&render_layout_json(&fixture("pc-22.yaml")).expect("encode"))
                .expect("JSON");
        let save = &value["volumes"][0]["structures"][4];
        assert_eq!(value["volumes"][0]["name"], "pc");
        assert_eq!(save["name"], "ubuntu-save");
        assert_eq!(save["min-size"], 16 * crate::gadget::MIB);
        assert_eq!(save["size"], 32 * crate::gadget::MIB);
        assert_eq!(save["yaml-index"], 4);
        let data = &value["volumes"][0]["structures"][5];
        assert_eq!(data["min-offset"], 1968 * crate::gadget::MIB);
        assert_eq!(data["max-offset"], 1984 * crate::gadget::MIB);
    }

    #[test]
    fn layout_of_the_appliance_gadget() {
        expect![[r#"
            volume pc (schema gpt, bootloader grub)
              #   name           role           offset                size          filesystem   label
              0   mbr            mbr            0                     440           -            -
              1   BIOS Boot      -              1M                    1M            -            -
              2   ubuntu-seed    system-seed    2M                    1200M         vfat         ubuntu-seed
              3   ubuntu-boot    system-boot    1202M                 750M          ext4         ubuntu-boot
              4   ubuntu-save    system-save    1952M                 16M..32M      ext4         ubuntu-save
              5   ubuntu-data    system-data    1968M..1984M          1G            ext4         ubuntu-data
        "#]]
        .assert_eq(&render_layout(&fixture("pc-22.yaml")));
    }
}
