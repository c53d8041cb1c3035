//! The built-in checks, computed from a `metrics::Snapshot`: filesystem, inodes, memory, swap,
//! load and temperature.
//!
//! \[pure\] A snapshot and the configuration in, results out. [`CHECKS`] is the one list of
//! built-in checks with their units and default thresholds; `checks.<check>.*` keys override them.
//! Read-only filesystems (every snap is a full squashfs) are not checked. Temperatures use the
//! defaults of [`CHECKS`]: the snapshot does not carry a sensor's own crit or max yet.

use crate::config::Config;
use crate::metrics::Snapshot;

use super::state::Hysteresis;
use super::{Range, Result, State};

/// A built-in check and its defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// Name, as in `checks.<check>.warn`.
    pub name: &'static str,
    /// Unit of the value, as it follows a number in a sentence (`" %"`, `" °C"`, or empty).
    pub unit: &'static str,
    /// Default warning range.
    pub warn: &'static str,
    /// Default critical range.
    pub crit: &'static str,
    /// What is measured.
    pub doc: &'static str,
}

/// Every built-in check, in the order results are reported.
pub const CHECKS: &[Check] = &[
    Check {
        name: "filesystem",
        unit: " %",
        warn: "85",
        crit: "95",
        doc: "space in use on each writable filesystem, percent (as df's Use%)",
    },
    Check {
        name: "inodes",
        unit: " %",
        warn: "85",
        crit: "95",
        doc: "inodes in use on each writable filesystem that has a fixed number of them, percent",
    },
    Check {
        name: "memory",
        unit: " %",
        warn: "10:",
        crit: "5:",
        doc: "memory available for new work (MemAvailable), percent of the total",
    },
    Check { name: "swap", unit: " %", warn: "50", crit: "80", doc: "swap space in use, percent" },
    Check {
        name: "load",
        unit: "",
        warn: "2",
        crit: "4",
        doc: "1-minute load average divided by the number of CPUs",
    },
    Check {
        name: "temperature",
        unit: " °C",
        warn: "80",
        crit: "90",
        doc: "each temperature sensor, degrees Celsius",
    },
];

/// The effective settings of a check: its defaults with the configuration on top.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Warning range.
    pub warn: Option<Range>,
    /// Critical range.
    pub crit: Option<Range>,
    /// Results in a row before a state changes.
    pub hysteresis: Hysteresis,
    /// Whether the check runs.
    pub enabled: bool,
}

impl Check {
    /// This check's settings in `config`.
    pub fn settings(&self, config: &Config) -> Settings {
        let set = config.checks.get(self.name);
        let defaults = Hysteresis::default();
        Settings {
            warn: set.and_then(|s| s.warn).or_else(|| self.warn.parse().ok()),
            crit: set.and_then(|s| s.crit).or_else(|| self.crit.parse().ok()),
            hysteresis: Hysteresis {
                failures_before_critical: set
                    .and_then(|s| s.failures_before_critical)
                    .unwrap_or(defaults.failures_before_critical),
                successes_before_ok: set
                    .and_then(|s| s.successes_before_ok)
                    .unwrap_or(defaults.successes_before_ok),
            },
            enabled: set.and_then(|s| s.enabled).unwrap_or(true),
        }
    }
}

/// The built-in check called `name`.
pub fn check(name: &str) -> Option<&'static Check> {
    CHECKS.iter().find(|c| c.name == name)
}

/// Names under `checks.` in the configuration that are no built-in check (typos, or checks of a
/// later revision).
pub fn unknown_names(config: &Config) -> Vec<String> {
    config.checks.keys().filter(|name| check(name).is_none()).cloned().collect()
}

/// Runs every enabled built-in check on `snapshot`.
pub fn evaluate(snapshot: &Snapshot, config: &Config) -> Vec<Result> {
    CHECKS
        .iter()
        .filter_map(|c| {
            let settings = c.settings(config);
            settings.enabled.then(|| run(c, &settings, snapshot))
        })
        .flatten()
        .collect()
}

/// Runs one check, whatever its `enabled`.
pub fn run(check: &Check, settings: &Settings, snapshot: &Snapshot) -> Vec<Result> {
    let judge = Judge { check, settings };
    match check.name {
        "filesystem" | "inodes" => filesystems(&judge, snapshot),
        "memory" => vec![match &snapshot.memory {
            Some(m) if m.total > 0 => {
                let percent = percent(m.available, m.total);
                judge.result(
                    "memory",
                    percent,
                    format!("{} % of memory is available", format_percent(percent)),
                )
            }
            _ => judge.unknown("memory", "cannot read the memory figures".to_string()),
        }],
        "swap" => vec![match &snapshot.memory {
            Some(m) if m.swap.total == 0 => Result {
                check: "swap".to_string(),
                state: State::Ok,
                value: None,
                threshold: None,
                summary: "there is no swap space".to_string(),
                flapping: false,
            },
            Some(m) => {
                let percent = percent(m.swap.used, m.swap.total);
                judge.result("swap", percent, format!("swap is {} % used", format_percent(percent)))
            }
            None => judge.unknown("swap", "cannot read the swap figures".to_string()),
        }],
        "load" => vec![match (&snapshot.load, snapshot.cpu.as_ref().map(|c| c.count)) {
            (Some(load), Some(cpus)) if cpus > 0 => {
                let per_cpu = load.one / cpus as f64;
                let plural = if cpus == 1 { "" } else { "s" };
                judge.result(
                    "load",
                    per_cpu,
                    format!(
                        "load per CPU is {per_cpu:.2} (1-minute load {:.2} over {cpus} CPU{plural})",
                        load.one
                    ),
                )
            }
            _ => judge.unknown("load", "cannot read the load average".to_string()),
        }],
        "temperature" => snapshot
            .temperatures
            .iter()
            .map(|t| {
                let id = format!("temperature:{}/{}", t.chip, t.sensor);
                let name = match &t.label {
                    Some(label) => format!("{label} ({} {})", t.chip, t.sensor),
                    None => format!("{} {}", t.chip, t.sensor),
                };
                judge.result(&id, t.celsius, format!("{name} is {:.1} °C", t.celsius))
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn filesystems(judge: &Judge<'_>, snapshot: &Snapshot) -> Vec<Result> {
    let inodes = judge.check.name == "inodes";
    snapshot
        .filesystems
        .iter()
        .filter(|fs| !fs.read_only && fs.fs_type != "squashfs")
        .filter_map(|fs| {
            let id = format!("{}:{}", judge.check.name, fs.mount_point);
            let Some(usage) = fs.usage else {
                let what = if inodes { "inodes" } else { "usage" };
                return Some(
                    judge.unknown(&id, format!("cannot read the {what} of {}", fs.mount_point)),
                );
            };
            if inodes {
                // vfat and btrfs report no fixed number of inodes: nothing to run out of.
                (usage.files > 0).then(|| {
                    let used = usage.files.saturating_sub(usage.files_free);
                    let percent = percent(used, usage.files);
                    let sentence = format!(
                        "{} has {} % of its inodes in use",
                        fs.mount_point,
                        format_percent(percent)
                    );
                    judge.result(&id, percent, sentence)
                })
            } else {
                // df's Use%: what is used out of what unprivileged users could use.
                let usable = usage.used.saturating_add(usage.available);
                (usable > 0).then(|| {
                    let percent = percent(usage.used, usable);
                    let sentence =
                        format!("{} is {} % full", fs.mount_point, format_percent(percent));
                    judge.result(&id, percent, sentence)
                })
            }
        })
        .collect()
}

struct Judge<'a> {
    check: &'a Check,
    settings: &'a Settings,
}

impl Judge<'_> {
    /// The result for `value`: its state, the range that decided it, and `what` followed by the
    /// threshold in words (`/var is 91 % full (warn at 85 %)`).
    fn result(&self, id: &str, value: f64, what: String) -> Result {
        let state = State::of(value, self.settings.warn.as_ref(), self.settings.crit.as_ref());
        let (label, threshold) = match (state, self.settings.warn, self.settings.crit) {
            (State::Crit, _, Some(crit)) => ("crit", Some(crit)),
            (_, Some(warn), _) => ("warn", Some(warn)),
            (_, None, Some(crit)) => ("crit", Some(crit)),
            (_, None, None) => ("", None),
        };
        let summary = match threshold {
            Some(range) => format!("{what} ({label} {})", range.describe(self.check.unit)),
            None => what,
        };
        Result {
            check: id.to_string(),
            state,
            value: Some(value),
            threshold,
            summary,
            flapping: false,
        }
    }

    fn unknown(&self, id: &str, summary: String) -> Result {
        Result {
            check: id.to_string(),
            state: State::Unknown,
            value: None,
            threshold: None,
            summary,
            flapping: false,
        }
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return f64::NAN;
    }
    part as f64 * 100.0 / whole as f64
}

/// Whole percents from 10 up, one decimal below (`91`, `4.5`).
pub fn format_percent(value: f64) -> String {
    if value >= 10.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::config;
    use crate::metrics::encode::sample_snapshot;
    use crate::metrics::{FsUsage, LoadAverage};

    fn config(settings: &[&str]) -> Config {
        let settings: Vec<(String, Value)> =
            settings.iter().map(|s| config::parse_setting(s).unwrap()).collect();
        config::load(&Value::Null, &settings).unwrap().config
    }

    fn lines(results: &[Result]) -> Vec<String> {
        results
            .iter()
            .map(|r| {
                let threshold = r.threshold.map(|t| t.to_string()).unwrap_or_default();
                format!("{} {} [{threshold}] {}", r.check, r.state, r.summary)
            })
            .collect()
    }

    #[test]
    fn the_sample_host_is_fine() {
        let got = lines(&evaluate(&sample_snapshot(), &Config::default()));
        assert_eq!(
            got,
            [
                "filesystem:/ OK [85] / is 37 % full (warn at 85 %)",
                "inodes:/ OK [85] / has 11 % of its inodes in use (warn at 85 %)",
                "memory OK [10:] 55 % of memory is available (warn below 10 %)",
                "swap OK [50] swap is 25 % used (warn at 50 %)",
                "load OK [2] load per CPU is 0.58 (1-minute load 1.17 over 2 CPUs) (warn at 2)",
                "temperature:platform_cpu_thermal/temp1 OK [80] CPU (platform_cpu_thermal temp1) is 47.2 °C (warn at 80 °C)",
                "temperature:0/cpu-thermal OK [80] 0 cpu-thermal is 47.2 °C (warn at 80 °C)",
            ]
        );
    }

    #[test]
    fn a_full_var_warns_then_goes_critical() {
        let mut snapshot = sample_snapshot();
        snapshot.filesystems[0].mount_point = "/var".to_string();
        let usage = |used: u64| FsUsage {
            total: 100,
            free: 100 - used,
            available: 100 - used,
            used,
            files: 0,
            files_free: 0,
        };
        snapshot.filesystems[0].usage = Some(usage(91));
        let fs = check("filesystem").unwrap();
        let settings = fs.settings(&Config::default());
        let got = lines(&run(fs, &settings, &snapshot));
        assert_eq!(got, ["filesystem:/var WARN [85] /var is 91 % full (warn at 85 %)"]);
        snapshot.filesystems[0].usage = Some(usage(97));
        let got = lines(&run(fs, &settings, &snapshot));
        assert_eq!(got, ["filesystem:/var CRIT [95] /var is 97 % full (crit at 95 %)"]);
    }

    #[test]
    fn filesystem_use_is_dfs_use_percent() {
        let mut snapshot = sample_snapshot();
        // 5 % reserved for root: 90 used out of 95 usable is 95 %, not 90 %.
        snapshot.filesystems[0].usage =
            Some(FsUsage { total: 100, free: 10, available: 5, used: 90, files: 0, files_free: 0 });
        let results = run(
            check("filesystem").unwrap(),
            &check("filesystem").unwrap().settings(&Config::default()),
            &snapshot,
        );
        let value = results[0].value.unwrap();
        assert!((value - 94.736_842).abs() < 1e-3, "{value}");
    }

    #[test]
    fn read_only_and_unreadable_filesystems() {
        let mut snapshot = sample_snapshot();
        // The read-only vfat of the sample is skipped; made writable, its missing usage is UNKNOWN.
        snapshot.filesystems[1].read_only = false;
        let fs = check("filesystem").unwrap();
        let got = lines(&run(fs, &fs.settings(&Config::default()), &snapshot));
        assert_eq!(
            got[1],
            "filesystem:/media/my \"usb\" UNKNOWN [] cannot read the usage of /media/my \"usb\""
        );
        snapshot.filesystems[1].fs_type = "squashfs".to_string();
        assert_eq!(run(fs, &fs.settings(&Config::default()), &snapshot).len(), 1);
    }

    #[test]
    fn inodes_only_where_there_is_a_fixed_number() {
        let mut snapshot = sample_snapshot();
        let mut usage = snapshot.filesystems[0].usage.unwrap();
        usage.files = 0;
        snapshot.filesystems[0].usage = Some(usage);
        let inodes = check("inodes").unwrap();
        assert!(run(inodes, &inodes.settings(&Config::default()), &snapshot).is_empty());
    }

    #[test]
    fn low_memory_is_below_the_range() {
        let mut snapshot = sample_snapshot();
        if let Some(m) = snapshot.memory.as_mut() {
            m.available = m.total / 25;
        }
        let memory = check("memory").unwrap();
        let got = lines(&run(memory, &memory.settings(&Config::default()), &snapshot));
        assert_eq!(got, ["memory CRIT [5:] 4.0 % of memory is available (crit below 5 %)"]);
    }

    #[test]
    fn no_swap_is_fine_and_missing_figures_are_unknown() {
        let mut snapshot = sample_snapshot();
        if let Some(m) = snapshot.memory.as_mut() {
            m.swap.total = 0;
        }
        let got = lines(&evaluate(&snapshot, &config(&["checks.swap.warn=0:0"])));
        assert!(got.contains(&"swap OK [] there is no swap space".to_string()), "{got:?}");
        snapshot.memory = None;
        snapshot.load = None;
        let got = lines(&evaluate(&snapshot, &Config::default()));
        assert!(got.contains(&"memory UNKNOWN [] cannot read the memory figures".to_string()));
        assert!(got.contains(&"swap UNKNOWN [] cannot read the swap figures".to_string()));
        assert!(got.contains(&"load UNKNOWN [] cannot read the load average".to_string()));
    }

    #[test]
    fn load_is_per_cpu() {
        let mut snapshot = sample_snapshot();
        snapshot.load = Some(LoadAverage { one: 9.0, five: 1.0, fifteen: 1.0 });
        let load = check("load").unwrap();
        let got = lines(&run(load, &load.settings(&Config::default()), &snapshot));
        assert_eq!(
            got,
            ["load CRIT [4] load per CPU is 4.50 (1-minute load 9.00 over 2 CPUs) (crit at 4)"]
        );
    }

    #[test]
    fn hot_sensors() {
        let mut snapshot = sample_snapshot();
        snapshot.temperatures[1].celsius = 85.04;
        let got = lines(&evaluate(&snapshot, &config(&["checks.temperature.crit=~:100"])));
        assert!(
            got.contains(
                &"temperature:0/cpu-thermal WARN [80] 0 cpu-thermal is 85.0 °C (warn at 80 °C)"
                    .to_string()
            ),
            "{got:?}"
        );
    }

    #[test]
    fn configuration_overrides_and_disables() {
        let config = config(&[
            "checks.filesystem.warn=0:0",
            "checks.memory.enabled=false",
            "checks.load.failures-before-critical=5",
            "checks.swap.crit=@20:30",
        ]);
        let fs = check("filesystem").unwrap().settings(&config);
        assert_eq!(fs.warn, Some("0:0".parse().unwrap()));
        assert_eq!(fs.crit, Some("95".parse().unwrap()));
        assert_eq!(check("load").unwrap().settings(&config).hysteresis.failures_before_critical, 5);
        let got = lines(&evaluate(&sample_snapshot(), &config));
        assert_eq!(got[0], "filesystem:/ WARN [0] / is 37 % full (warn at 0 %)");
        assert!(!got.iter().any(|l| l.starts_with("memory")));
        assert!(
            got.contains(
                &"swap CRIT [@20:30] swap is 25 % used (crit between 20 % and 30 %)".to_string()
            ),
            "{got:?}"
        );
    }

    #[test]
    fn unknown_check_names_are_found() {
        assert_eq!(
            unknown_names(&config(&["checks.filesytem.warn=1", "checks.load.warn=1"])),
            ["filesytem"]
        );
        assert!(unknown_names(&Config::default()).is_empty());
    }

    #[test]
    fn every_default_is_a_valid_range() {
        for c in CHECKS {
            assert!(
                c.warn.parse::<Range>().is_ok() && c.crit.parse::<Range>().is_ok(),
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn percents_in_sentences() {
        assert_eq!(format_percent(91.4), "91");
        assert_eq!(format_percent(4.04), "4.0");
        assert_eq!(format_percent(0.0), "0.0");
    }
}
