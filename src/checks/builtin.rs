//! The built-in checks, computed from a `metrics::Snapshot` and [`Facts`] the daemon gathers:
//! filesystem, inodes, memory, swap, load, temperature, snapd, snaps, spool, push, fleet and
//! fleet-action.
//!
//! \[pure\] A snapshot, facts and the configuration in, results out. [`CHECKS`] is the one list of
//! built-in checks with their units and default thresholds; `checks.<check>.*` keys override them.
//! Read-only filesystems (every snap is a full squashfs) are not checked. A temperature sensor
//! that has its own limits is checked against them (`max` warns, `crit` is critical) unless
//! `checks.temperature.warn`/`crit` are set. `snapd`, `snaps`, `spool`, `push` and the fleet checks give results only when
//! their facts are there (the daemon polls snapd; nothing polls it for `pocketses checks run`).

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
        warn: "~:80",
        crit: "~:90",
        doc: "each temperature sensor, degrees Celsius; the sensor's own max and crit when it has them",
    },
    Check {
        name: "snapd",
        unit: " s",
        warn: "60",
        crit: "300",
        doc: "seconds since snapd last answered the daemon (0 while it answers; daemon only)",
    },
    Check {
        name: "snaps",
        unit: "",
        warn: "1",
        crit: "2",
        doc: "health each other snap set: 0 okay, 1 waiting, 2 blocked, 3 error (daemon only, needs snapd-control)",
    },
    Check {
        name: "spool",
        unit: " s",
        warn: "900",
        crit: "3600",
        doc: "age of the oldest record waiting in each sink's spool, seconds",
    },
    Check {
        name: "push",
        unit: " s",
        warn: "300",
        crit: "3600",
        doc: "seconds each running sink (push sinks, the notification webhook) has gone without delivering while its store refuses or does not answer (0 while it delivers; daemon only)",
    },
    Check {
        name: "fleet",
        unit: " s",
        warn: "3600",
        crit: "86400",
        doc: "seconds since the fleet server last answered a poll (fleet.enabled; daemon only)",
    },
    Check {
        name: "fleet-action",
        unit: "",
        warn: "1",
        crit: "2",
        doc: "the last fleet action that ended: 0 done, 1 cancelled, 2 failed (fleet.enabled; daemon only)",
    },
];

/// What the checks know besides the snapshot: gathered by the daemon, plain data here.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// snapd as the daemon sees it; `None` when the daemon does not use snapd.
    pub snapd: Option<SnapdFacts>,
    /// One entry per sink directory of the spool; empty without sinks.
    pub spools: Vec<SpoolFacts>,
    /// One entry per running sink (push sinks and `notify.webhook`); empty without sinks.
    pub sinks: Vec<SinkFacts>,
    /// The fleet client's state (`fleet-status.json`), when `fleet.enabled` and it wrote one.
    pub fleet: Option<FleetFacts>,
}

/// The fleet client as its status document says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetFacts {
    /// Seconds since the server last answered a poll (since the daemon started when none did).
    pub silent_for: f64,
    /// The client's last error, cleared by a good poll.
    pub error: Option<String>,
    /// The last action that ended.
    pub last_action: Option<FleetOutcome>,
}

/// A fleet action that ended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetOutcome {
    /// The server's action id.
    pub id: String,
    /// `done`, `failed` or `cancelled`.
    pub stage: String,
    /// Its last detail line (the reason of a failure).
    pub detail: Option<String>,
}

/// How one running sink delivers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SinkFacts {
    /// The sink.
    pub name: String,
    /// Its state: `ok`, `unauthorized`, `throttled`, `failing` (`disabled` sinks are left out).
    pub state: String,
    /// Seconds since it last delivered (or since the daemon started) while not `ok`; 0 when `ok`.
    pub failing_for: f64,
    /// Its last failure, in words.
    pub last_error: Option<String>,
}

/// snapd's reachability and the other snaps' health.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SnapdFacts {
    /// Seconds since snapd last answered (0 when the last call got an answer), or since the
    /// daemon started when it never answered.
    pub silent_for: f64,
    /// Why the last call failed, when it did.
    pub error: Option<String>,
    /// The other snaps that set a health (`GET /v2/snaps`); `None` when snapd's API is out of
    /// reach (no snapd-control).
    pub snaps: Option<Vec<SnapHealth>>,
}

/// A snap's health as snapd reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SnapHealth {
    /// The snap.
    pub name: String,
    /// `okay`, `waiting`, `blocked`, `error` or `unknown`.
    pub status: String,
    /// Its message.
    pub message: String,
    /// Its code.
    pub code: String,
}

/// The backlog of one sink's spool.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpoolFacts {
    /// The sink (the spool directory's name).
    pub name: String,
    /// Bytes waiting.
    pub pending_bytes: u64,
    /// Age of the oldest waiting record, seconds; `None` when nothing waits.
    pub oldest_pending_seconds: Option<u64>,
    /// Why the spool could not be read, when it could not.
    pub error: Option<String>,
}

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
    /// The `warn` and `crit` the configuration sets itself (not the defaults), for checks whose
    /// defaults depend on the subject (a sensor's own limits); `None` elsewhere.
    pub explicit: Option<(Option<Range>, Option<Range>)>,
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
            explicit: None,
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

/// Runs every enabled built-in check on `snapshot` (without facts: `snapd`, `snaps` and `spool`
/// give nothing).
pub fn evaluate(snapshot: &Snapshot, config: &Config) -> Vec<Result> {
    evaluate_with(snapshot, &Facts::default(), config)
}

/// Runs every enabled built-in check on `snapshot` and `facts`.
pub fn evaluate_with(snapshot: &Snapshot, facts: &Facts, config: &Config) -> Vec<Result> {
    CHECKS
        .iter()
        .filter_map(|c| {
            let settings = c.settings(config);
            settings.enabled.then(|| {
                let mut settings = settings;
                if c.name == "temperature" {
                    settings.explicit = config.checks.get(c.name).map(|s| (s.warn, s.crit));
                }
                run_with(c, &settings, snapshot, facts)
            })
        })
        .flatten()
        .collect()
}

/// Runs one check, whatever its `enabled`, without facts.
pub fn run(check: &Check, settings: &Settings, snapshot: &Snapshot) -> Vec<Result> {
    run_with(check, settings, snapshot, &Facts::default())
}

/// Runs one check, whatever its `enabled`.
pub fn run_with(
    check: &Check,
    settings: &Settings,
    snapshot: &Snapshot,
    facts: &Facts,
) -> Vec<Result> {
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
                let what = format!("{name} is {:.1} °C", t.celsius);
                let own = sensor_settings(settings, t.max, t.crit);
                let judge = Judge { check, settings: &own };
                let mut result = judge.result(&id, t.celsius, what);
                let sensors_own = |mine: Option<Range>, default: Option<Range>| {
                    mine.is_some() && mine != default && result.threshold == mine
                };
                if (sensors_own(own.warn, settings.warn) || sensors_own(own.crit, settings.crit))
                    && result.summary.ends_with(')')
                {
                    result.summary.insert_str(result.summary.len() - 1, ", the sensor's own");
                }
                result
            })
            .collect(),
        "snapd" => match &facts.snapd {
            Some(snapd) => {
                let what = match (&snapd.error, snapd.silent_for) {
                    (None, _) => "snapd answers".to_string(),
                    (Some(err), s) => format!("snapd has not answered for {s:.0} s: {err}"),
                };
                vec![judge.result("snapd", snapd.silent_for, what)]
            }
            None => Vec::new(),
        },
        "snaps" => facts
            .snapd
            .as_ref()
            .and_then(|s| s.snaps.as_ref())
            .map(|snaps| snaps.iter().map(|snap| snap_health(&judge, snap)).collect())
            .unwrap_or_default(),
        "spool" => facts.spools.iter().map(|spool| spool_backlog(&judge, spool)).collect(),
        "push" => facts.sinks.iter().map(|sink| sink_delivery(&judge, sink)).collect(),
        "fleet" => facts.fleet.iter().map(|fleet| fleet_server(&judge, fleet)).collect(),
        "fleet-action" => facts
            .fleet
            .iter()
            .filter_map(|fleet| fleet.last_action.as_ref())
            .map(|action| fleet_action(&judge, action))
            .collect(),
        _ => Vec::new(),
    }
}

/// A sensor's settings: its own `max` and `crit` instead of the defaults, unless the
/// configuration sets a threshold (`explicit`). A `max` at or above `crit` is not used.
fn sensor_settings(settings: &Settings, max: Option<f64>, crit: Option<f64>) -> Settings {
    let (set_warn, set_crit) = settings.explicit.unwrap_or((None, None));
    let above = |limit: f64| format!("~:{limit}").parse::<Range>().ok();
    let max = max.filter(|m| crit.is_none_or(|c| *m < c));
    Settings {
        warn: set_warn.or_else(|| max.and_then(above)).or(settings.warn),
        crit: set_crit.or_else(|| crit.and_then(above)).or(settings.crit),
        ..*settings
    }
}

/// snapd's health statuses as a number, in increasing gravity.
pub fn health_level(status: &str) -> Option<f64> {
    match status {
        "okay" => Some(0.0),
        "waiting" => Some(1.0),
        "blocked" => Some(2.0),
        "error" => Some(3.0),
        _ => None,
    }
}

fn snap_health(judge: &Judge<'_>, snap: &SnapHealth) -> Result {
    let id = format!("snaps:{}", snap.name);
    let mut what = format!("snap {:?} is {}", snap.name, snap.status);
    if !snap.message.is_empty() {
        what.push_str(": ");
        what.push_str(&snap.message);
    }
    if !snap.code.is_empty() {
        what.push_str(&format!(" [{}]", snap.code));
    }
    match health_level(&snap.status) {
        Some(level) => judge.result(&id, level, what),
        None => judge.unknown(&id, what),
    }
}

fn spool_backlog(judge: &Judge<'_>, spool: &SpoolFacts) -> Result {
    let id = format!("spool:{}", spool.name);
    if let Some(err) = &spool.error {
        return judge.unknown(&id, format!("cannot read the spool of sink {}: {err}", spool.name));
    }
    match spool.oldest_pending_seconds {
        None => judge.result(&id, 0.0, format!("nothing waits for sink {}", spool.name)),
        Some(age) => judge.result(
            &id,
            age as f64,
            format!(
                "{} waits for sink {}, the oldest for {age} s",
                human_bytes(spool.pending_bytes),
                spool.name
            ),
        ),
    }
}

fn sink_delivery(judge: &Judge<'_>, sink: &SinkFacts) -> Result {
    let id = format!("push:{}", sink.name);
    if sink.state == "ok" {
        return judge.result(&id, 0.0, format!("sink {} delivers", sink.name));
    }
    let why = match &sink.last_error {
        Some(err) => format!("{}: {err}", sink.state),
        None => sink.state.clone(),
    };
    let what =
        format!("sink {} has not delivered for {:.0} s ({why})", sink.name, sink.failing_for);
    judge.result(&id, sink.failing_for, what)
}

fn fleet_server(judge: &Judge<'_>, fleet: &FleetFacts) -> Result {
    let what = match &fleet.error {
        None if fleet.silent_for < 1.0 => "the fleet server answers".to_string(),
        None => format!("the fleet server last answered {:.0} s ago", fleet.silent_for),
        Some(err) => {
            format!("the fleet server has not answered for {:.0} s: {err}", fleet.silent_for)
        }
    };
    judge.result("fleet", fleet.silent_for, what)
}

fn fleet_action(judge: &Judge<'_>, action: &FleetOutcome) -> Result {
    let level = match action.stage.as_str() {
        "done" => 0.0,
        "cancelled" => 1.0,
        _ => 2.0,
    };
    let mut what = format!("fleet action {} ended {}", action.id, action.stage);
    if let Some(detail) = action.detail.as_ref().filter(|_| level > 0.0) {
        what.push_str(": ");
        what.push_str(detail);
    }
    judge.result("fleet-action", level, what)
}

/// `512 B`, `4.0 KiB`, `1.4 MiB`.
fn human_bytes(n: u64) -> String {
    match n {
        n if n < 1024 => format!("{n} B"),
        n if n < 1 << 20 => format!("{:.1} KiB", n as f64 / 1024.0),
        n if n < 1 << 30 => format!("{:.1} MiB", n as f64 / f64::from(1u32 << 20)),
        n => format!("{:.1} GiB", n as f64 / f64::from(1u32 << 30)),
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
                "temperature:platform_cpu_thermal/temp1 OK [~:80] CPU (platform_cpu_thermal temp1) is 47.2 °C (warn at 80 °C)",
                "temperature:0/cpu-thermal OK [~:80] 0 cpu-thermal is 47.2 °C (warn at 80 °C)",
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
                &"temperature:0/cpu-thermal WARN [~:80] 0 cpu-thermal is 85.0 °C (warn at 80 °C)"
                    .to_string()
            ),
            "{got:?}"
        );
    }

    #[test]
    fn a_cold_sensor_is_fine() {
        let mut snapshot = sample_snapshot();
        snapshot.temperatures[1].celsius = -20.0;
        let got = lines(&evaluate(&snapshot, &Config::default()));
        assert!(got.iter().any(|l| l.starts_with("temperature:0/cpu-thermal OK ")), "{got:?}");
    }

    #[test]
    fn sensors_use_their_own_limits_unless_configured() {
        let mut snapshot = sample_snapshot();
        snapshot.temperatures[0].max = Some(70.0);
        snapshot.temperatures[0].crit = Some(85.0);
        snapshot.temperatures[0].celsius = 75.0;
        // Only a crit: the default warn stays, the sensor's crit replaces the default one.
        snapshot.temperatures[1].crit = Some(105.0);
        snapshot.temperatures[1].celsius = 95.0;
        let got = lines(&evaluate(&snapshot, &Config::default()));
        let temps: Vec<&String> = got.iter().filter(|l| l.starts_with("temperature")).collect();
        assert_eq!(
            temps,
            [
                "temperature:platform_cpu_thermal/temp1 WARN [~:70] CPU (platform_cpu_thermal temp1) is 75.0 °C (warn at 70 °C, the sensor's own)",
                "temperature:0/cpu-thermal WARN [~:80] 0 cpu-thermal is 95.0 °C (warn at 80 °C)",
            ]
        );
        snapshot.temperatures[0].celsius = 86.0;
        let got = lines(&evaluate(&snapshot, &Config::default()));
        assert!(got.contains(&"temperature:platform_cpu_thermal/temp1 CRIT [~:85] CPU (platform_cpu_thermal temp1) is 86.0 °C (crit at 85 °C, the sensor's own)".to_string()), "{got:?}");
        // A threshold set by the user wins over the sensor's; the other stays the sensor's.
        let got = lines(&evaluate(&snapshot, &config(&["checks.temperature.crit=~:99"])));
        assert!(got.contains(&"temperature:platform_cpu_thermal/temp1 WARN [~:70] CPU (platform_cpu_thermal temp1) is 86.0 °C (warn at 70 °C, the sensor's own)".to_string()), "{got:?}");
        // A max at or above the crit is nonsense and ignored.
        snapshot.temperatures[0].max = Some(90.0);
        snapshot.temperatures[0].celsius = 82.0;
        let got = lines(&evaluate(&snapshot, &Config::default()));
        assert!(got.contains(&"temperature:platform_cpu_thermal/temp1 WARN [~:80] CPU (platform_cpu_thermal temp1) is 82.0 °C (warn at 80 °C)".to_string()), "{got:?}");
    }

    fn facts_lines(facts: &Facts, settings: &[&str]) -> Vec<String> {
        let got = lines(&evaluate_with(&sample_snapshot(), facts, &config(settings)));
        got.into_iter()
            .filter(|l| ["snapd", "snaps", "spool", "push"].iter().any(|k| l.starts_with(k)))
            .collect()
    }

    #[test]
    fn snapd_reachability() {
        assert!(facts_lines(&Facts::default(), &[]).is_empty(), "no facts, no result");
        let answering = SnapdFacts { silent_for: 0.0, error: None, snaps: None };
        let facts = Facts { snapd: Some(answering), ..Facts::default() };
        assert_eq!(facts_lines(&facts, &[]), ["snapd OK [60] snapd answers (warn at 60 s)"]);
        let silent = SnapdFacts {
            silent_for: 400.0,
            error: Some("cannot connect to /run/snapd.socket".into()),
            snaps: None,
        };
        let facts = Facts { snapd: Some(silent), ..Facts::default() };
        assert_eq!(
            facts_lines(&facts, &[]),
            ["snapd CRIT [300] snapd has not answered for 400 s: cannot connect to /run/snapd.socket (crit at 300 s)"]
        );
    }

    #[test]
    fn other_snaps_health() {
        let snap = |name: &str, status: &str, message: &str, code: &str| SnapHealth {
            name: name.into(),
            status: status.into(),
            message: message.into(),
            code: code.into(),
        };
        let snaps = vec![
            snap("a", "okay", "", ""),
            snap("b", "waiting", "waiting for network", ""),
            snap("c", "blocked", "connect the camera", "needs-camera"),
            snap("d", "error", "database is corrupt", "db-corrupt"),
            snap("e", "unknown", "hook did not call set-health", "snapd-hook-no-health-set"),
        ];
        let facts = Facts {
            snapd: Some(SnapdFacts { silent_for: 0.0, error: None, snaps: Some(snaps) }),
            ..Facts::default()
        };
        assert_eq!(
            facts_lines(&facts, &["checks.snapd.enabled=false"]),
            [
                "snaps:a OK [1] snap \"a\" is okay (warn at 1)",
                "snaps:b OK [1] snap \"b\" is waiting: waiting for network (warn at 1)",
                "snaps:c WARN [1] snap \"c\" is blocked: connect the camera [needs-camera] (warn at 1)",
                "snaps:d CRIT [2] snap \"d\" is error: database is corrupt [db-corrupt] (crit at 2)",
                "snaps:e UNKNOWN [] snap \"e\" is unknown: hook did not call set-health [snapd-hook-no-health-set]",
            ]
        );
    }

    #[test]
    fn spool_backlog() {
        let facts = Facts {
            snapd: None,
            spools: vec![
                SpoolFacts {
                    name: "influx".into(),
                    pending_bytes: 1_500_000,
                    oldest_pending_seconds: Some(1200),
                    error: None,
                },
                SpoolFacts {
                    name: "prom".into(),
                    pending_bytes: 0,
                    oldest_pending_seconds: None,
                    error: None,
                },
                SpoolFacts {
                    name: "vm".into(),
                    error: Some("permission denied".into()),
                    ..SpoolFacts::default()
                },
            ],
            ..Facts::default()
        };
        assert_eq!(
            facts_lines(&facts, &[]),
            [
                "spool:influx WARN [900] 1.4 MiB waits for sink influx, the oldest for 1200 s (warn at 900 s)",
                "spool:prom OK [900] nothing waits for sink prom (warn at 900 s)",
                "spool:vm UNKNOWN [] cannot read the spool of sink vm: permission denied",
            ]
        );
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(4096), "4.0 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn fleet_client() {
        let facts = |silent_for: f64, error: Option<&str>, stage: Option<&str>| Facts {
            fleet: Some(FleetFacts {
                silent_for,
                error: error.map(str::to_string),
                last_action: stage.map(|stage| FleetOutcome {
                    id: "12".into(),
                    stage: stage.into(),
                    detail: Some("cannot verify bundle: bad signature".into()),
                }),
            }),
            ..Facts::default()
        };
        let fleet_lines = |f: &Facts| -> Vec<String> {
            lines(&evaluate_with(&sample_snapshot(), f, &Config::default()))
                .into_iter()
                .filter(|l| l.starts_with("fleet"))
                .collect()
        };
        assert!(fleet_lines(&Facts::default()).is_empty(), "no client, no result");
        assert_eq!(
            fleet_lines(&facts(0.0, None, None)),
            ["fleet OK [3600] the fleet server answers (warn at 3600 s)"]
        );
        let refused = "cannot connect to https://fleet/: connection refused";
        assert_eq!(
            fleet_lines(&facts(90_000.0, Some(refused), Some("done"))),
            [
                format!("fleet CRIT [86400] the fleet server has not answered for 90000 s: {refused} (crit at 86400 s)"),
                "fleet-action OK [1] fleet action 12 ended done (warn at 1)".to_string(),
            ]
        );
        assert_eq!(
            fleet_lines(&facts(120.0, None, Some("failed")))[1],
            "fleet-action WARN [1] fleet action 12 ended failed: cannot verify bundle: bad signature (warn at 1)"
        );
    }

    #[test]
    fn sink_delivery() {
        let sink = |name: &str, state: &str, failing_for: f64, err: Option<&str>| SinkFacts {
            name: name.into(),
            state: state.into(),
            failing_for,
            last_error: err.map(str::to_string),
        };
        let facts = Facts {
            sinks: vec![
                sink("influx", "ok", 0.0, Some("an old failure")),
                sink(
                    "vm",
                    "failing",
                    420.0,
                    Some("cannot connect to http://vm:8428/: connection refused"),
                ),
                sink("notify.webhook", "unauthorized", 4000.0, None),
            ],
            ..Facts::default()
        };
        assert_eq!(
            facts_lines(&facts, &[]),
            [
                "push:influx OK [300] sink influx delivers (warn at 300 s)",
                "push:vm WARN [300] sink vm has not delivered for 420 s (failing: cannot connect to http://vm:8428/: connection refused) (warn at 300 s)",
                "push:notify.webhook CRIT [3600] sink notify.webhook has not delivered for 4000 s (unauthorized) (crit at 3600 s)",
            ]
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
