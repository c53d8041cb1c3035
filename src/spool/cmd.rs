//! `pocketses spool status [--state-dir DIR] [--json]`: the figures of every spool, read without
//! changing anything (a running daemon may have them open), with the live figures of the
//! daemon's sinks (last success, last error, rejected) when it answers on the control socket;
//! `pocketses spool verify [NAME]`: checks every record offline. \[io\]; rendering is pure.

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
    /// Check every record of every spool (or of spool NAME); exit 1 when any is damaged.
    Verify(VerifyArgs),
}

/// Flags of `pocketses spool status`: those of `pocketses status` (`--json`, `--state-dir`).
pub use crate::status::StatusArgs;

/// Flags of `pocketses spool verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Only this spool (a sink's name).
    pub name: Option<String>,
    /// `--json`, `--state-dir`.
    #[command(flatten)]
    pub common: StatusArgs,
}

/// The document of `spool status --json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Report {
    /// The directory holding the spools.
    pub dir: String,
    /// When the report was made, milliseconds since the epoch (ages are relative to it).
    #[serde(skip)]
    pub now_ms: u64,
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
    /// Points in them: influx lines, prometheus samples, json documents (counted from the
    /// records' headers; a record without one counts as one point).
    pub pending_points: u64,
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
    /// Batches the store rejected, kept in `rejected/`.
    pub rejected_batches: u64,
    /// Records in them.
    pub rejected_records: u64,
    /// The running daemon's view of the sink: state, last success, last error, counters since
    /// start; `null` when no daemon answered or it has no such sink.
    pub live: Option<crate::push::sink::SinkStatus>,
}

impl SpoolReport {
    /// The line for `stats`, read at `now_ms`. \[pure\]
    pub fn new(name: &str, stats: &Stats, now_ms: u64) -> Self {
        SpoolReport {
            name: name.to_string(),
            pending_records: stats.pending_records,
            pending_points: 0,
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
            rejected_batches: 0,
            rejected_records: 0,
            live: None,
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
        SpoolCommand::Verify(args) => verify(args),
    }
}

fn root_of(state_dir: &crate::paths::StateDirArg) -> std::path::PathBuf {
    match &state_dir.dir {
        Some(dir) => dir.join("spool"),
        None => crate::paths::spool_dir(),
    }
}

/// The daemon's sinks, when it answers on the control socket within a second.
fn live_sinks() -> Vec<crate::push::sink::SinkStatus> {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return Vec::new();
    };
    let path = crate::control::socket_path();
    let state = runtime.block_on(crate::control::call(
        &path,
        &crate::control::Request::State,
        std::time::Duration::from_secs(1),
    ));
    state
        .ok()
        .and_then(|v| serde_json::from_value::<crate::control::State>(v).ok())
        .map(|s| s.push)
        .unwrap_or_default()
}

fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    args.state_dir.apply();
    let root = root_of(&args.state_dir);
    let mut report = gather(&root, millis(SystemTime::now()))?;
    let live = live_sinks();
    let now_ms = report.now_ms;
    for spool in &mut report.spools {
        spool.live = live.iter().find(|s| s.name == spool.name).cloned();
        if let Some(live) = &spool.live {
            // The daemon's figures are newer than the files, and taken together (the files may
            // be read in the middle of a change).
            spool.pending_records = live.pending_records;
            spool.pending_bytes = live.pending_bytes;
            spool.oldest_pending_seconds =
                live.oldest_pending_ms.map(|t| now_ms.saturating_sub(t) / 1000);
            spool.dropped_records = live.dropped_records;
            spool.corrupt_records = live.corrupt_records;
        }
    }
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
    let mut report = Report { dir: root.display().to_string(), now_ms, spools: Vec::new() };
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
        let dir = root.join(&name);
        let mut line = match inspect(&dir) {
            Ok(stats) => SpoolReport::new(&name, &stats, now_ms),
            Err(err) => SpoolReport { name, error: err.to_string(), ..SpoolReport::default() },
        };
        if line.error.is_empty() {
            line.pending_points = super::pending_weight(&dir, record_points).unwrap_or(0);
        }
        (line.rejected_batches, line.rejected_records) = crate::push::sink::rejected_counts(&dir);
        report.spools.push(line);
    }
    Ok(report)
}

/// The points of one spooled push record: the count its header carries (`push::encode`); a
/// record without a header (written before records were compressed) counts as one. \[pure\]
fn record_points(record: &[u8]) -> u64 {
    use crate::push::encode::{points, SinkFormat, RECORD_MARK};
    if record.first() != Some(&RECORD_MARK) {
        return 1;
    }
    // The format only matters for records without a header.
    points(SinkFormat::Json, record).map_or(1, |n| n as u64)
}

/// What `spool verify` found, per spool.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct VerifyReport {
    /// The spool's name.
    pub name: String,
    /// What was found; `None` when the spool could not be read.
    pub verified: Option<super::Verified>,
    /// Why it could not be read.
    pub error: String,
}

fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let VerifyArgs { name, common: StatusArgs { json, state_dir } } = args;
    state_dir.apply();
    let root = root_of(&state_dir);
    let names: Vec<String> = match &name {
        Some(name) => vec![name.clone()],
        None => gather(&root, 0)?.spools.into_iter().map(|s| s.name).collect(),
    };
    let reports: Vec<VerifyReport> = names
        .into_iter()
        .map(|name| match super::verify(&root.join(&name)) {
            Ok(v) => VerifyReport { name, verified: Some(v), error: String::new() },
            Err(err) => VerifyReport { name, verified: None, error: err.to_string() },
        })
        .collect();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&reports).context("cannot encode spool verify")?
        );
    } else {
        print!("{}", render_verify(&root, &reports));
    }
    let damaged =
        reports.iter().any(|r| r.verified.as_ref().is_none_or(|v| !v.findings.is_empty()));
    Ok(if damaged { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// The text of `spool verify`: one line per spool, one more per damaged region. \[pure\]
pub fn render_verify(root: &Path, reports: &[VerifyReport]) -> String {
    if reports.is_empty() {
        return format!("No spools in {}.\n", root.display());
    }
    let mut out = String::new();
    for r in reports {
        match &r.verified {
            None => out.push_str(&format!("{}: {}\n", r.name, r.error)),
            Some(v) if v.findings.is_empty() => out.push_str(&format!(
                "{}: ok, {} records in {} segments\n",
                r.name, v.records, v.segments
            )),
            Some(v) => {
                out.push_str(&format!(
                    "{}: damaged, {} valid records in {} segments, {} damaged regions:\n",
                    r.name,
                    v.records,
                    v.segments,
                    v.findings.len()
                ));
                for f in &v.findings {
                    let what = match f.kind {
                        "torn" => "incomplete record at the end (the next open truncates it)",
                        _ => "no valid record (the next open skips it)",
                    };
                    out.push_str(&format!(
                        "  {} at byte {}: {} bytes, {what}\n",
                        f.segment, f.offset, f.bytes
                    ));
                }
            }
        }
    }
    out
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
    let header = [
        "Spool", "Pending", "Points", "Bytes", "Oldest", "Dropped", "Rejected", "Corrupt", "Notes",
    ];
    let mut rows: Vec<[String; 9]> = vec![header.map(String::from)];
    for s in &report.spools {
        let mut notes = Vec::new();
        if !s.error.is_empty() {
            notes.push(s.error.clone());
        }
        if s.torn_tail {
            notes.push("torn tail".to_string());
        }
        if let Some(live) = &s.live {
            let ago = |t: u64| human_age((report.now_ms / 1000).saturating_sub(t));
            notes.push(match live.last_success {
                Some(t) => format!("{}, last sent {} ago", live.state, ago(t)),
                None => format!("{}, nothing sent yet", live.state),
            });
            if live.state != "ok" {
                if let Some(err) = &live.last_error {
                    notes.push(err.clone());
                }
            }
        }
        let notes = if notes.is_empty() { "-".to_string() } else { notes.join("; ") };
        rows.push([
            s.name.clone(),
            s.pending_records.to_string(),
            s.pending_points.to_string(),
            human_bytes(s.pending_bytes),
            s.oldest_pending_seconds.map_or_else(|| "-".to_string(), human_age),
            s.dropped_records.to_string(),
            s.rejected_records.to_string(),
            s.corrupt_records.to_string(),
            notes,
        ]);
    }
    crate::table::table(&rows)
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
    fn points_come_from_the_record_header() {
        let snapshot = crate::metrics::encode::sample_snapshot();
        let format = crate::push::encode::SinkFormat::Prometheus;
        let record = crate::push::encode::record(format, &snapshot, &[]).unwrap();
        let want = crate::push::encode::points(format, &record).unwrap() as u64;
        assert!(want > 50, "{want}");
        assert_eq!(record_points(&record), want);
        assert_eq!(record_points(b"mem total=1 1\n"), 1);
    }

    #[test]
    fn renders_no_spools_as_a_sentence() {
        let report =
            Report { dir: "/var/snap/pocketses/common/spool".into(), now_ms: 0, spools: vec![] };
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
            now_ms: 0,
            spools: vec![
                SpoolReport {
                    pending_points: 4680,
                    ..SpoolReport::new("influx", &stats, 1_000_000 + 3_600_000)
                },
                SpoolReport::new("prom", &Stats::default(), 0),
                SpoolReport {
                    name: "vm".into(),
                    error: "cannot read /x/vm/ack: permission denied".into(),
                    ..SpoolReport::default()
                },
            ],
        };
        expect![[r#"
            Spool   Pending  Points  Bytes    Oldest  Dropped  Rejected  Corrupt  Notes
            influx  360      4680    1.4 MiB  60m     2        0         1        -
            prom    0        0       0 B      -       0        0         0        -
            vm      0        0       0 B      -       0        0         0        cannot read /x/vm/ack: permission denied
        "#]]
        .assert_eq(&render(&report));
    }
}
