//! `pocketses checks [list|run [NAME…]] [--json] [--set KEY=VALUE…]`.
//!
//! \[io\] `run` collects twice, 250 ms apart (as `pocketses metrics` does), evaluates the built-in
//! checks and exits like a Nagios plugin: 0, 1, 2 or 3 for the worst state (OK, WARN, CRIT,
//! UNKNOWN). A command that cannot run exits 3 too, so a monitoring system reads it as UNKNOWN.
//! Thresholds come from the defaults and `--set`; snapd's configuration is not read yet.
//! Each result is reported as measured: hysteresis and flapping need a history only a daemon keeps.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use serde::Serialize;
use serde_json::Value;

use super::builtin::{self, CHECKS};
use super::{Result, State};
use crate::config::{self, Config};

/// Flags of `pocketses checks`.
#[derive(Debug, clap::Args)]
pub struct ChecksArgs {
    /// What to do; `run` when absent.
    #[command(subcommand)]
    pub action: Option<Action>,
    /// Print one JSON document (docs/cli.md) instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Set a configuration key for this run, as `snap set` would (`checks.filesystem.warn=80`).
    #[arg(long = "set", value_name = "KEY=VALUE", global = true,
          value_parser = config::parse_setting)]
    pub settings: Vec<(String, Value)>,
}

/// `list` or `run`.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// List the checks with their thresholds.
    List,
    /// Collect metrics, run the checks (all, or those named) and print the results.
    Run {
        /// Checks to run: a check's name (`filesystem`) or one result of it (`filesystem:/var`).
        names: Vec<String>,
    },
}

/// Runs the command; the exit code is the worst state's.
///
/// # Errors
/// Never: problems are printed on stderr and exit 3 (UNKNOWN), as a Nagios plugin does.
pub fn main(args: ChecksArgs) -> anyhow::Result<ExitCode> {
    match execute(args) {
        Ok(code) => Ok(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            Ok(ExitCode::from(State::Unknown.exit_code()))
        }
    }
}

fn execute(args: ChecksArgs) -> anyhow::Result<ExitCode> {
    let config = configure(&args.settings)?;
    let (text, code) = match args.action.unwrap_or(Action::Run { names: Vec::new() }) {
        Action::List => (list(&config, args.json)?, ExitCode::SUCCESS),
        Action::Run { names } => {
            for name in &names {
                let kind = name.split_once(':').map_or(name.as_str(), |(kind, _)| kind);
                if builtin::check(kind).is_none() {
                    anyhow::bail!(
                        "cannot run checks: no check is called {:?} (see `pocketses checks list`)",
                        name
                    );
                }
            }
            let snapshot = {
                let mut collector = crate::metrics::collect::Collector::new();
                collector.collect();
                // A one-shot command measuring a window, not a readiness wait.
                std::thread::sleep(crate::metrics::cmd::WINDOW);
                collector.collect()
            };
            let results: Vec<Result> = builtin::evaluate(&snapshot, &config)
                .into_iter()
                .filter(|r| {
                    names.is_empty() || names.iter().any(|n| **n == *r.check || n == r.kind())
                })
                .collect();
            let worst = results.iter().map(|r| r.state).max().unwrap_or(State::Ok);
            (run_output(&results, worst, args.json)?, ExitCode::from(worst.exit_code()))
        }
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).context("cannot write the checks")?;
    stdout.flush().context("cannot write the checks")?;
    Ok(code)
}

/// The configuration from defaults and `--set`, refusing check names that are no check.
fn configure(settings: &[(String, Value)]) -> anyhow::Result<Config> {
    let config = match config::load(&Value::Null, settings) {
        Ok(loaded) => loaded.config,
        Err(problems) => {
            let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
            anyhow::bail!("{}", lines.join("\n"));
        }
    };
    if let Some(name) = builtin::unknown_names(&config).first() {
        let known: Vec<&str> = CHECKS.iter().map(|c| c.name).collect();
        anyhow::bail!(
            "cannot set \"checks.{name}\": must name a check ({}), not {name:?}",
            known.join(", ")
        );
    }
    Ok(config)
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ListDoc {
    checks: Vec<ListItem>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ListItem {
    name: &'static str,
    enabled: bool,
    warn: Option<String>,
    crit: Option<String>,
    failures_before_critical: u32,
    successes_before_ok: u32,
    unit: &'static str,
    doc: &'static str,
}

fn list(config: &Config, json: bool) -> anyhow::Result<String> {
    let items: Vec<ListItem> = CHECKS
        .iter()
        .map(|c| {
            let s = c.settings(config);
            ListItem {
                name: c.name,
                enabled: s.enabled,
                warn: s.warn.map(|r| r.to_string()),
                crit: s.crit.map(|r| r.to_string()),
                failures_before_critical: s.hysteresis.failures_before_critical,
                successes_before_ok: s.hysteresis.successes_before_ok,
                unit: c.unit.trim(),
                doc: c.doc,
            }
        })
        .collect();
    if json {
        return document(&ListDoc { checks: items });
    }
    let mut rows = vec![[
        "CHECK".to_string(),
        "ENABLED".to_string(),
        "WARN".to_string(),
        "CRIT".to_string(),
        "FAILURES".to_string(),
        "SUCCESSES".to_string(),
        "WHAT".to_string(),
    ]];
    for i in &items {
        rows.push([
            i.name.to_string(),
            if i.enabled { "yes" } else { "no" }.to_string(),
            i.warn.clone().unwrap_or_else(|| "-".to_string()),
            i.crit.clone().unwrap_or_else(|| "-".to_string()),
            i.failures_before_critical.to_string(),
            i.successes_before_ok.to_string(),
            i.doc.to_string(),
        ]);
    }
    Ok(crate::table::table(&rows))
}

use super::report::{unit_of, Document, Entry};

fn run_output(results: &[Result], worst: State, json: bool) -> anyhow::Result<String> {
    if json {
        let checks = results.iter().map(|r| Entry::new(r, None)).collect();
        return Ok(Document::new(worst, None, checks).pretty());
    }
    let mut rows = vec![[
        "CHECK".to_string(),
        "STATE".to_string(),
        "VALUE".to_string(),
        "THRESHOLD".to_string(),
        "SUMMARY".to_string(),
    ]];
    for r in results {
        let value = match r.value {
            Some(v) if unit_of(r) == " %" => format!("{} %", builtin::format_percent(v)),
            Some(v) => format!("{v:.2}{}", unit_of(r)),
            None => "-".to_string(),
        };
        let state =
            if r.flapping { format!("{} (flapping)", r.state) } else { r.state.to_string() };
        let threshold = r.threshold.map_or_else(|| "-".to_string(), |t| t.to_string());
        rows.push([r.check.to_string(), state, value, threshold, r.summary()]);
    }
    Ok(crate::table::table(&rows))
}

fn document(value: &impl Serialize) -> anyhow::Result<String> {
    let mut text =
        serde_json::to_string_pretty(value).context("internal error: cannot encode JSON")?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_check_names_are_refused() {
        let settings = vec![config::parse_setting("checks.filesytem.warn=80").unwrap()];
        let err = configure(&settings).unwrap_err().to_string();
        assert_eq!(
            err,
            "cannot set \"checks.filesytem\": must name a check (filesystem, inodes, memory, swap, load, temperature, snapd, snaps, spool, push, fleet, fleet-action), not \"filesytem\""
        );
        let bad = vec![config::parse_setting("checks.load.warn=x").unwrap()];
        assert!(configure(&bad)
            .unwrap_err()
            .to_string()
            .starts_with("cannot set \"checks.load.warn\": must be a Nagios range"));
    }
}
