//! `pocketses spool status [--state-dir DIR] [--json]`: the figures of every spool, read without
//! changing anything (a running daemon may have them open). \[io\]; rendering is pure.

use std::path::Path;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;
use serde::Serialize;

use super::{inspect, millis, Stats};
use crate::error::describe_io;

/// Flags of `pocketses spool`.
#[derive(Debug, clap::Args)]
pub struct SpoolArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: SpoolCommand,
}

/// The `spool` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SpoolCommand {
    /// Show each spool's backlog: pending records, bytes and age, dropped and damaged records.
    Status(StatusArgs),
}

/// Flags of `pocketses spool status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// `--state-dir`.
    #[command(flatten)]
    pub state_dir: crate::paths::StateDirArg,
}

/// The document of `spool status --json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Report {
    /// The directory holding the spools.
    pub dir: String,
    /// One entry per spool, by name.
    pub spools: Vec<SpoolReport>,
}

/// One spool's line.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SpoolReport {
    /// The spool's (the sink's) name: its directory's name.
    pub name: String,
    /// Records waiting to be sent.
    pub pending_records: u64,
    /// Their bytes on disk.
    pub pending_bytes: u64,
    /// Seconds since the oldest waiting record was appended; `null` when nothing waits.
    pub oldest_pending_seconds: Option<u64>,
    /// Records dropped by the limits over the spool's life.
    pub dropped_records: u64,
    /// Their bytes.
    pub dropped_bytes: u64,
    /// Damaged records the next open will skip.
    pub corrupt_records: u64,
    /// Whether the last segment ends with an incomplete record (the next open truncates it).
    pub torn_tail: bool,
    /// Segment files.
    pub segments: u64,
    /// Why the spool could not be read; empty when it could.
    pub error: String,
}

impl SpoolReport {
    /// The line for `stats`, read at `now_ms`. \[pure\]
    pub fn new(name: &str, stats: &Stats, now_ms: u64) -> Self {
        SpoolReport {
            name: name.to_string(),
            pending_records: stats.pending_records,
            pending_bytes: stats.pending_bytes,
            oldest_pending_seconds: stats
                .oldest_pending_ms
                .map(|t| now_ms.saturating_sub(t) / 1000),
            dropped_records: stats.dropped_records,
            dropped_bytes: stats.dropped_bytes,
            corrupt_records: stats.corrupt_skipped,
            torn_tail: stats.torn_truncations > 0,
            segments: stats.segments,
            error: String::new(),
        }
    }
}

/// Runs the command.
///
/// # Errors
///
/// When the spool directory exists but cannot be listed; a spool that cannot be read is a line of
/// the report.
pub fn main(args: SpoolArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        SpoolCommand::Status(args) => status(args),
    }
}

fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let root = match &args.state_dir.dir {
        Some(dir) => dir.join("spool"),
        None => crate::paths::spool_dir(),
    };
    let report = gather(&root, millis(SystemTime::now()))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("cannot encode spool status")?
        );
    } else {
        print!("{}", render(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads every spool under `root`, sorted by name. A missing `root` has no spools.
///
/// # Errors
///
/// When `root` exists but cannot be listed.
pub fn gather(root: &Path, now_ms: u64) -> anyhow::Result<Report> {
    let mut report = Report { dir: root.display().to_string(), spools: Vec::new() };
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(err) => {
            anyhow::bail!("cannot read spool directory {}: {}", root.display(), describe_io(&err))
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|err| {
            anyhow::anyhow!("cannot read spool directory {}: {}", root.display(), describe_io(&err))
        })?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    for name in names {
        let line = match inspect(&root.join(&name)) {
            Ok(stats) => SpoolReport::new(&name, &stats, now_ms),
            Err(err) => SpoolReport { name, error: err.to_string(), ..SpoolReport::default() },
        };
        report.spools.push(line);
    }
    Ok(report)
}

/// Bytes in the units people read: `512 B`, `4.0 KiB`, `63.9 MiB`. \[pure\]
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// An age as snap prints durations: `45s`, `12m`, `3h`, `2d`. \[pure\]
fn human_age(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// The text output: a table, or a sentence when there are no spools. \[pure\]
pub fn render(report: &Report) -> String {
    if report.spools.is_empty() {
        return format!("No spools in {}.\n", report.dir);
    }
    let header = ["Spool", "Pending", "Bytes", "Oldest", "Dropped", "Corrupt", "Notes"];
    let mut rows: Vec<[String; 7]> = vec![header.map(String::from)];
    for s in &report.spools {
        let notes = if !s.error.is_empty() {
            s.error.clone()
        } else if s.torn_tail {
            "torn tail".to_string()
        } else {
            "-".to_string()
        };
        rows.push([
            s.name.clone(),
            s.pending_records.to_string(),
            human_bytes(s.pending_bytes),
            s.oldest_pending_seconds.map_or_else(|| "-".to_string(), human_age),
            s.dropped_records.to_string(),
            s.corrupt_records.to_string(),
            notes,
        ]);
    }
    let widths: Vec<usize> =
        (0..7).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> =
            row.iter().enumerate().map(|(c, cell)| format!("{cell:<w$}", w = widths[c])).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    #[test]
    fn units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(4096), "4.0 KiB");
        assert_eq!(human_bytes(64 << 20), "64.0 MiB");
        assert_eq!(human_age(5), "5s");
        assert_eq!(human_age(600), "10m");
        assert_eq!(human_age(3 * 3600), "3h");
        assert_eq!(human_age(3 * 86400), "3d");
    }

    #[test]
    fn renders_no_spools_as_a_sentence() {
        let report = Report { dir: "/var/snap/pocketses/common/spool".into(), spools: vec![] };
        assert_eq!(render(&report), "No spools in /var/snap/pocketses/common/spool.\n");
    }

    #[test]
    fn renders_a_table() {
        let stats = Stats {
            pending_records: 360,
            pending_bytes: 1_500_000,
            oldest_pending_ms: Some(1_000_000),
            dropped_records: 2,
            corrupt_skipped: 1,
            segments: 2,
            ..Stats::default()
        };
        let report = Report {
            dir: "/x".into(),
            spools: vec![
                SpoolReport::new("influx", &stats, 1_000_000 + 3_600_000),
                SpoolReport::new("prom", &Stats::default(), 0),
                SpoolReport {
                    name: "vm".into(),
                    error: "cannot read /x/vm/ack: permission denied".into(),
                    ..SpoolReport::default()
                },
            ],
        };
        expect![[r#"
            Spool   Pending  Bytes    Oldest  Dropped  Corrupt  Notes
            influx  360      1.4 MiB  60m     2        1        -
            prom    0        0 B      -       0        0        -
            vm      0        0 B      -       0        0        cannot read /x/vm/ack: permission denied
        "#]]
        .assert_eq(&render(&report));
    }
}
