//! `pocketses collectors list` and `pocketses collectors run NAME [--format …]`: the collector
//! groups as units (`crate::metrics::units`), their settings, and one group's reading alone.
//! \[io\]: collects, reads snapd's configuration; rendering is pure.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::Value;

use super::encode::{self, Format};
use super::units::{Group, GROUPS};
use crate::config::Config;

/// Flags of `pocketses collectors`.
#[derive(Debug, clap::Args)]
pub struct CollectorsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: CollectorsCommand,
}

/// The `collectors` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CollectorsCommand {
    /// List the collector groups with their interval and whether they are on.
    List {
        /// A configuration key, as `pocketses daemon --set` takes it (repeatable), over snapd's.
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = crate::config::parse_setting)]
        set: Vec<(String, Value)>,
    },
    /// Collect once and print only group NAME (cpu, memory, network, filesystems,
    /// temperatures, load).
    Run {
        /// The group.
        name: String,
        /// Output format: json, prometheus or influx.
        #[arg(long, default_value_t = Format::Json, value_name = "FORMAT",
              value_parser = |name: &str| name.parse::<Format>())]
        format: Format,
    },
}

/// Runs the command.
///
/// # Errors
/// On an unknown group, a bad configuration or when stdout cannot be written.
pub fn main(args: CollectorsArgs) -> anyhow::Result<ExitCode> {
    let text = match args.command {
        CollectorsCommand::List { set } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let doc = runtime.block_on(crate::push::cmd::snapd_document());
            list(&crate::push::cmd::load(&doc, &set)?)
        }
        CollectorsCommand::Run { name, format } => {
            let group = group(&name)?;
            let mut collector = super::collect::Collector::new();
            collector.collect();
            // A one-shot command measuring a window, as `pocketses metrics`.
            std::thread::sleep(super::cmd::WINDOW);
            let mut snapshot = collector.collect();
            only(&mut snapshot, group);
            let mut text = encode::encode(&snapshot, format);
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text
        }
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).context("cannot write collectors")?;
    stdout.flush().context("cannot write collectors")?;
    Ok(ExitCode::SUCCESS)
}

/// The group `name`. \[pure\]
///
/// # Errors
/// When no group has that name, listing the names.
pub fn group(name: &str) -> anyhow::Result<Group> {
    Group::parse(name).ok_or_else(|| {
        let names: Vec<&str> = GROUPS.iter().map(|g| g.as_str()).collect();
        anyhow::anyhow!("cannot find collector {name:?} (collectors: {})", names.join(", "))
    })
}

/// Leaves only `group` in `snapshot` (and what every snapshot carries: time, host). \[pure\]
pub fn only(snapshot: &mut super::Snapshot, group: Group) {
    for other in GROUPS.into_iter().filter(|g| *g != group) {
        other.clear(snapshot);
    }
    snapshot.uname = None;
    snapshot.process = None;
    snapshot.uptime = None;
    snapshot.boot_time = None;
}

/// The table of `collectors list`. \[pure\]
pub fn list(config: &Config) -> String {
    let mut rows = vec![["Collector", "Interval", "Enabled", "Reads"].map(String::from)];
    for group in GROUPS {
        let unit = config.collectors.get(group.as_str()).cloned().unwrap_or_default();
        let interval = match unit.interval {
            Some(n) => format!("{n}s"),
            None => format!("{}s (interval)", config.interval),
        };
        let enabled = unit.enabled.unwrap_or(true).to_string();
        rows.push([group.as_str().to_string(), interval, enabled, group.describe().to_string()]);
    }
    crate::table::table(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CollectorConfig;

    #[test]
    fn the_list_shows_each_groups_settings() {
        let mut config = Config { interval: 10, ..Config::default() };
        config
            .collectors
            .insert("temperatures".into(), CollectorConfig { interval: Some(300), enabled: None });
        config
            .collectors
            .insert("load".into(), CollectorConfig { interval: None, enabled: Some(false) });
        expect_test::expect![[r#"
            Collector     Interval        Enabled  Reads
            cpu           10s (interval)  true     processors: time counters, utilisation, frequencies (/proc/stat, cpufreq)
            memory        10s (interval)  true     memory and swap (/proc/meminfo)
            network       10s (interval)  true     interfaces: counters, rates, addresses (/proc/net/dev, getifaddrs)
            filesystems   10s (interval)  true     mounted filesystems and their usage (mountinfo, statvfs)
            temperatures  300s            true     temperature sensors (hwmon, thermal zones)
            load          10s (interval)  false    load averages (/proc/loadavg)
        "#]]
        .assert_eq(&list(&config));
    }

    #[test]
    fn run_keeps_only_the_group() {
        let mut s = crate::metrics::encode::sample_snapshot();
        only(&mut s, Group::Load);
        assert!(s.load.is_some());
        assert!(GROUPS.iter().filter(|g| **g != Group::Load).all(|g| !g.present(&s)));
        let influx = encode::encode(&s, Format::Influx);
        assert!(influx.lines().all(|l| l.starts_with("system,")), "{influx}");
        assert_eq!(
            group("gpu").unwrap_err().to_string(),
            "cannot find collector \"gpu\" (collectors: cpu, memory, network, filesystems, temperatures, load)"
        );
    }
}
