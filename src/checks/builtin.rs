//! The built-in checks, computed from a `metrics::Snapshot` and [`Facts`] the daemon gathers:
//! filesystem, inodes, memory, swap, load, temperature, snapd, snaps, spool, push, fleet and
//! fleet-action.
//!
//! \[pure\] A snapshot, facts and the configuration in, results out. [`CHECKS`] is the one list of
//! built-in checks with their units and default thresholds (as numbers); `checks.<check>.*` keys
//! override them.
//! Read-only filesystems (every snap is a full squashfs) are not checked. A temperature sensor
//! that has its own limits is checked against them (`max` warns, `crit` is critical) unless
//! `checks.temperature.warn`/`crit` are set. `snapd`, `snaps`, `spool`, `push` and the fleet checks give results only when
//! their facts are there (the daemon polls snapd; nothing polls it for `pocketses checks run`).
//!
//! A result's sentence is not written here: it is a [`Sentence`] of numbers and shared names,
//! written when someone reads it. The daemon keeps an [`Evaluator`], which works the checks'
//! settings out once per configuration and reuses each result's name from one run to the next,
//! so a run formats nothing and allocates little.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{CheckConfig, Config};
use crate::metrics::Snapshot;

use super::sentence::{Sentence, What};
use super::state::Hysteresis;
use super::{Range, Result, State};

/// A built-in check and its defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Check {
    /// Name, as in `checks.<check>.warn`.
    pub name: &'static str,
    /// Unit of the value, as it follows a number in a sentence (`" %"`, `" °C"`, or empty).
    pub unit: &'static str,
    /// Default warning range.
    pub warn: Range,
    /// Default critical range.
    pub crit: Range,
    /// What is measured.
    pub doc: &'static str,
}

/// Every built-in check, in the order results are reported.
pub const CHECKS: &[Check] = &[
    Check {
        name: "filesystem",
        unit: " %",
        warn: Range::at(85.0),
        crit: Range::at(95.0),
        doc: "space in use on each writable filesystem, percent (as df's Use%)",
    },
    Check {
        name: "inodes",
        unit: " %",
        warn: Range::at(85.0),
        crit: Range::at(95.0),
        doc: "inodes in use on each writable filesystem that has a fixed number of them, percent",
    },
    Check {
        name: "memory",
        unit: " %",
        warn: Range::below(10.0),
        crit: Range::below(5.0),
        doc: "memory available for new work (MemAvailable), percent of the total",
    },
    Check {
        name: "swap",
        unit: " %",
        warn: Range::at(50.0),
        crit: Range::at(80.0),
        doc: "swap space in use, percent",
    },
    Check {
        name: "load",
        unit: "",
        warn: Range::at(2.0),
        crit: Range::at(4.0),
        doc: "1-minute load average divided by the number of CPUs",
    },
    Check {
        name: "temperature",
        unit: " °C",
        warn: Range::above(80.0),
        crit: Range::above(90.0),
        doc: "each temperature sensor, degrees Celsius; the sensor's own max and crit when it has them",
    },
    Check {
        name: "snapd",
        unit: " s",
        warn: Range::at(60.0),
        crit: Range::at(300.0),
        doc: "seconds since snapd last answered the daemon (0 while it answers; daemon only)",
    },
    Check {
        name: "snaps",
        unit: "",
        warn: Range::at(1.0),
        crit: Range::at(2.0),
        doc: "health each other snap set: 0 okay, 1 waiting, 2 blocked, 3 error (daemon only, needs snapd-control)",
    },
    Check {
        name: "spool",
        unit: " s",
        warn: Range::at(900.0),
        crit: Range::at(3600.0),
        doc: "age of the oldest record waiting in each sink's spool, seconds",
    },
    Check {
        name: "push",
        unit: " s",
        warn: Range::at(300.0),
        crit: Range::at(3600.0),
        doc: "seconds each running sink (push sinks, the notification webhook) has gone without delivering while its store refuses or does not answer (0 while it delivers; daemon only)",
    },
    Check {
        name: "fleet",
        unit: " s",
        warn: Range::at(3600.0),
        crit: Range::at(86400.0),
        doc: "seconds since the fleet server last answered a poll (fleet.enabled; daemon only)",
    },
    Check {
        name: "fleet-action",
        unit: "",
        warn: Range::at(1.0),
        crit: Range::at(2.0),
        doc: "the last fleet action that ended: 0 done, 1 cancelled, 2 failed (fleet.enabled; daemon only)",
    },
];

/// What the checks know besides the snapshot: gathered by the daemon, plain data here. Its
/// texts are shared (`Arc<str>`), so the facts of a run are cheap to hand over.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// snapd as the daemon sees it; `None` when the daemon does not use snapd.
    pub snapd: Option<SnapdFacts>,
    /// One entry per sink directory of the spool; empty without sinks.
    pub spools: Vec<SpoolFacts>,
    /// One entry per running sink (push sinks and `notify.webhook`); empty without sinks.
    pub sinks: Vec<SinkFacts>,
    /// The fleet client's state, when `fleet.enabled` and the client has started.
    pub fleet: Option<FleetFacts>,
}

/// The fleet client as its status says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetFacts {
    /// Seconds since the server last answered a poll (since the daemon started when none did).
    pub silent_for: f64,
    /// The client's last error, cleared by a good poll.
    pub error: Option<Arc<str>>,
    /// The last action that ended.
    pub last_action: Option<FleetOutcome>,
}

/// A fleet action that ended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetOutcome {
    /// The server's action id.
    pub id: Arc<str>,
    /// `done`, `failed` or `cancelled`.
    pub stage: Arc<str>,
    /// Its last detail line (the reason of a failure).
    pub detail: Option<Arc<str>>,
}

/// How one running sink delivers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SinkFacts {
    /// The sink.
    pub name: String,
    /// Its state: `ok`, `unauthorized`, `throttled`, `failing` (`disabled` sinks are left out).
    pub state: Arc<str>,
    /// Seconds since it last delivered (or since the daemon started) while not `ok`; 0 when `ok`.
    pub failing_for: f64,
    /// Its last failure, in words.
    pub last_error: Option<Arc<str>>,
}

/// snapd's reachability and the other snaps' health.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SnapdFacts {
    /// Seconds since snapd last answered (0 when the last call got an answer), or since the
    /// daemon started when it never answered.
    pub silent_for: f64,
    /// Why the last call failed, when it did.
    pub error: Option<Arc<str>>,
    /// The other snaps that set a health (`GET /v2/snaps`); `None` when snapd's API is out of
    /// reach (no snapd-control).
    pub snaps: Option<Arc<[SnapHealth]>>,
}

/// A snap's health as snapd reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SnapHealth {
    /// The snap.
    pub name: Arc<str>,
    /// `okay`, `waiting`, `blocked`, `error` or `unknown`.
    pub status: Arc<str>,
    /// Its message.
    pub message: Arc<str>,
    /// Its code.
    pub code: Arc<str>,
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
    pub error: Option<Arc<str>>,
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
        self.settings_in(&config.checks)
    }

    /// This check's settings in the configuration's `checks.*` keys.
    fn settings_in(&self, checks: &BTreeMap<String, CheckConfig>) -> Settings {
        let set = checks.get(self.name);
        let defaults = Hysteresis::default();
        Settings {
            warn: set.and_then(|s| s.warn).or(Some(self.warn)),
            crit: set.and_then(|s| s.crit).or(Some(self.crit)),
            hysteresis: Hysteresis {
                failures_before_critical: set
                    .and_then(|s| s.failures_before_critical)
                    .unwrap_or(defaults.failures_before_critical),
                successes_before_ok: set
                    .and_then(|s| s.successes_before_ok)
                    .unwrap_or(defaults.successes_before_ok),
            },
            enabled: set.and_then(|s| s.enabled).unwrap_or(true),
            explicit: (self.name == "temperature").then(|| set.map(|s| (s.warn, s.crit))).flatten(),
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
    let mut out = Vec::new();
    Evaluator::default().run(snapshot, facts, config, &mut out);
    out
}

/// Runs one check, whatever its `enabled`, without facts.
pub fn run(check: &'static Check, settings: &Settings, snapshot: &Snapshot) -> Vec<Result> {
    run_with(check, settings, snapshot, &Facts::default())
}

/// Runs one check, whatever its `enabled`.
pub fn run_with(
    check: &'static Check,
    settings: &Settings,
    snapshot: &Snapshot,
    facts: &Facts,
) -> Vec<Result> {
    let mut out = Vec::new();
    run_into(check, settings, snapshot, facts, &mut Names::default(), &mut out);
    out
}

/// The checks as the daemon runs them, run after run: each check's settings worked out once per
/// configuration (not parsed per run), and each result's name kept from one run to the next.
#[derive(Debug, Default)]
pub struct Evaluator {
    /// The `checks.*` keys the settings were worked out for, and the settings, as [`CHECKS`].
    settings: Option<(BTreeMap<String, CheckConfig>, Vec<Settings>)>,
    names: Names,
}

impl Evaluator {
    /// Runs every enabled built-in check on `snapshot` and `facts`, into `out` (emptied first).
    pub fn run(
        &mut self,
        snapshot: &Snapshot,
        facts: &Facts,
        config: &Config,
        out: &mut Vec<Result>,
    ) {
        out.clear();
        if self.settings.as_ref().is_none_or(|(for_checks, _)| *for_checks != config.checks) {
            let settings = CHECKS.iter().map(|c| c.settings_in(&config.checks)).collect();
            self.settings = Some((config.checks.clone(), settings));
        }
        if let Some((_, settings)) = &self.settings {
            for (check, settings) in CHECKS.iter().zip(settings) {
                if settings.enabled {
                    run_into(check, settings, snapshot, facts, &mut self.names, out);
                }
            }
        }
        self.names.finish();
    }
}

/// Result names of the last run, reused by the next: a result seen again gets the same shared
/// string instead of a new one, found in the order results came the last time.
#[derive(Debug, Default)]
struct Names {
    last: Vec<Arc<str>>,
    this: Vec<Arc<str>>,
    at: usize,
}

impl Names {
    /// The name that is `parts` joined.
    fn get(&mut self, parts: &[&str]) -> Arc<str> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let same = |name: &Arc<str>| {
            let mut rest: &str = name;
            name.len() == len
                && parts.iter().all(|part| match rest.strip_prefix(part) {
                    Some(after) => {
                        rest = after;
                        true
                    }
                    None => false,
                })
        };
        let found = match self.last.get(self.at) {
            Some(name) if same(name) => Some(self.at),
            _ => self.last.iter().position(same),
        };
        let name = match found {
            Some(i) => {
                self.at = i + 1;
                Arc::clone(&self.last[i])
            }
            None => Arc::from(parts.concat()),
        };
        self.this.push(Arc::clone(&name));
        name
    }

    /// The run is over: its names are the ones to find next time.
    fn finish(&mut self) {
        std::mem::swap(&mut self.last, &mut self.this);
        self.this.clear();
        self.at = 0;
    }
}

/// Runs one check into `out`.
fn run_into(
    check: &'static Check,
    settings: &Settings,
    snapshot: &Snapshot,
    facts: &Facts,
    names: &mut Names,
    out: &mut Vec<Result>,
) {
    let judge = Judge { check, settings };
    match check.name {
        "filesystem" | "inodes" => filesystems(&judge, snapshot, names, out),
        "memory" => out.push(match &snapshot.memory {
            Some(m) if m.total > 0 => {
                let percent = percent(m.available, m.total);
                judge.result(names.get(&["memory"]), percent, What::MemoryAvailable(percent))
            }
            _ => judge.unknown(names.get(&["memory"]), "cannot read the memory figures"),
        }),
        "swap" => out.push(match &snapshot.memory {
            Some(m) if m.swap.total == 0 => Result {
                check: names.get(&["swap"]),
                state: State::Ok,
                value: None,
                threshold: None,
                sentence: Sentence::plain(What::Static("there is no swap space")),
                flapping: false,
            },
            Some(m) => {
                let percent = percent(m.swap.used, m.swap.total);
                judge.result(names.get(&["swap"]), percent, What::SwapUsed(percent))
            }
            None => judge.unknown(names.get(&["swap"]), "cannot read the swap figures"),
        }),
        "load" => out.push(match (&snapshot.load, snapshot.cpu.as_ref().map(|c| c.count)) {
            (Some(load), Some(cpus)) if cpus > 0 => {
                let per_cpu = load.one / cpus as f64;
                let what = What::Load { per_cpu, one: load.one, cpus };
                judge.result(names.get(&["load"]), per_cpu, what)
            }
            _ => judge.unknown(names.get(&["load"]), "cannot read the load average"),
        }),
        "temperature" => {
            for t in &snapshot.temperatures {
                let id = names.get(&["temperature:", &t.chip, "/", &t.sensor]);
                let name = match &t.label {
                    Some(label) => names.get(&[label, " (", &t.chip, " ", &t.sensor, ")"]),
                    None => names.get(&[&t.chip, " ", &t.sensor]),
                };
                let own = sensor_settings(settings, t.max, t.crit);
                let judge = Judge { check, settings: &own };
                let what = What::Sensor { name, celsius: t.celsius, own: false };
                let mut result = judge.result(id, t.celsius, what);
                let sensors_own = |mine: Option<Range>, default: Option<Range>| {
                    mine.is_some() && mine != default && result.threshold == mine
                };
                if sensors_own(own.warn, settings.warn) || sensors_own(own.crit, settings.crit) {
                    if let What::Sensor { own, .. } = &mut result.sentence.what {
                        *own = true;
                    }
                }
                out.push(result);
            }
        }
        "snapd" => {
            if let Some(snapd) = &facts.snapd {
                let what = What::Snapd { silent_for: snapd.silent_for, error: snapd.error.clone() };
                out.push(judge.result(names.get(&["snapd"]), snapd.silent_for, what));
            }
        }
        "snaps" => {
            if let Some(snaps) = facts.snapd.as_ref().and_then(|s| s.snaps.as_ref()) {
                for snap in snaps.iter() {
                    out.push(snap_health(&judge, snap, names));
                }
            }
        }
        "spool" => {
            for spool in &facts.spools {
                out.push(spool_backlog(&judge, spool, names));
            }
        }
        "push" => {
            for sink in &facts.sinks {
                let id = names.get(&["push:", &sink.name]);
                let value = if &*sink.state == "ok" { 0.0 } else { sink.failing_for };
                let what = What::Sink {
                    state: Arc::clone(&sink.state),
                    failing_for: sink.failing_for,
                    error: sink.last_error.clone(),
                };
                out.push(judge.result(id, value, what));
            }
        }
        "fleet" => {
            if let Some(fleet) = &facts.fleet {
                let what = What::Fleet { silent_for: fleet.silent_for, error: fleet.error.clone() };
                out.push(judge.result(names.get(&["fleet"]), fleet.silent_for, what));
            }
        }
        "fleet-action" => {
            if let Some(action) = facts.fleet.as_ref().and_then(|f| f.last_action.as_ref()) {
                out.push(fleet_action(&judge, action, names));
            }
        }
        _ => {}
    }
}

/// A sensor's settings: its own `max` and `crit` instead of the defaults, unless the
/// configuration sets a threshold (`explicit`). A `max` at or above `crit` is not used.
fn sensor_settings(settings: &Settings, max: Option<f64>, crit: Option<f64>) -> Settings {
    let (set_warn, set_crit) = settings.explicit.unwrap_or((None, None));
    let above = |limit: f64| limit.is_finite().then(|| Range::above(limit));
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

fn snap_health(judge: &Judge<'_>, snap: &SnapHealth, names: &mut Names) -> Result {
    let id = names.get(&["snaps:", &snap.name]);
    let what = What::Snap {
        status: Arc::clone(&snap.status),
        message: Arc::clone(&snap.message),
        code: Arc::clone(&snap.code),
    };
    match health_level(&snap.status) {
        Some(level) => judge.result(id, level, what),
        None => judge.unknown_as(id, what),
    }
}

fn spool_backlog(judge: &Judge<'_>, spool: &SpoolFacts, names: &mut Names) -> Result {
    let id = names.get(&["spool:", &spool.name]);
    if let Some(err) = &spool.error {
        return judge.unknown_as(id, What::SpoolUnreadable(Arc::clone(err)));
    }
    let what =
        What::Spool { pending_bytes: spool.pending_bytes, oldest: spool.oldest_pending_seconds };
    judge.result(id, spool.oldest_pending_seconds.map_or(0.0, |age| age as f64), what)
}

fn fleet_action(judge: &Judge<'_>, action: &FleetOutcome, names: &mut Names) -> Result {
    let level = match &*action.stage {
        "done" => 0.0,
        "cancelled" => 1.0,
        _ => 2.0,
    };
    let what = What::FleetAction {
        id: Arc::clone(&action.id),
        stage: Arc::clone(&action.stage),
        detail: action.detail.clone().filter(|_| level > 0.0),
    };
    judge.result(names.get(&["fleet-action"]), level, what)
}

fn filesystems(judge: &Judge<'_>, snapshot: &Snapshot, names: &mut Names, out: &mut Vec<Result>) {
    let inodes = judge.check.name == "inodes";
    let prefix = if inodes { "inodes:" } else { "filesystem:" };
    for fs in snapshot.filesystems.iter().filter(|fs| !fs.read_only && fs.fs_type != "squashfs") {
        let Some(usage) = fs.usage else {
            let id = names.get(&[prefix, &fs.mount_point]);
            out.push(judge.unknown_as(id, What::Unreadable { inodes }));
            continue;
        };
        if inodes {
            // vfat and btrfs report no fixed number of inodes: nothing to run out of.
            if usage.files > 0 {
                let used = usage.files.saturating_sub(usage.files_free);
                let percent = percent(used, usage.files);
                let id = names.get(&[prefix, &fs.mount_point]);
                out.push(judge.result(id, percent, What::Inodes(percent)));
            }
        } else {
            // df's Use%: what is used out of what unprivileged users could use.
            let usable = usage.used.saturating_add(usage.available);
            if usable > 0 {
                let percent = percent(usage.used, usable);
                let id = names.get(&[prefix, &fs.mount_point]);
                out.push(judge.result(id, percent, What::Full(percent)));
            }
        }
    }
}

struct Judge<'a> {
    check: &'static Check,
    settings: &'a Settings,
}

impl Judge<'_> {
    /// The result for `value`: its state, the range that decided it, and a sentence that ends
    /// with the threshold in words (`/var is 91 % full (warn at 85 %)`).
    fn result(&self, check: Arc<str>, value: f64, what: What) -> Result {
        let state = State::of(value, self.settings.warn.as_ref(), self.settings.crit.as_ref());
        let (label, threshold) = match (state, self.settings.warn, self.settings.crit) {
            (State::Crit, _, Some(crit)) => ("crit", Some(crit)),
            (_, Some(warn), _) => ("warn", Some(warn)),
            (_, None, Some(crit)) => ("crit", Some(crit)),
            (_, None, None) => ("", None),
        };
        Result {
            check,
            state,
            value: Some(value),
            threshold,
            sentence: Sentence { what, label, unit: self.check.unit },
            flapping: false,
        }
    }

    /// An UNKNOWN result saying `why`.
    fn unknown(&self, check: Arc<str>, why: &'static str) -> Result {
        self.unknown_as(check, What::Static(why))
    }

    fn unknown_as(&self, check: Arc<str>, what: What) -> Result {
        Result {
            check,
            state: State::Unknown,
            value: None,
            threshold: None,
            sentence: Sentence::plain(what),
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
    super::sentence::Percent(value).to_string()
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
                format!("{} {} [{threshold}] {}", r.check, r.state, r.summary())
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
            snapd: Some(SnapdFacts { silent_for: 0.0, error: None, snaps: Some(snaps.into()) }),
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
    }

    #[test]
    fn fleet_client() {
        let facts = |silent_for: f64, error: Option<&str>, stage: Option<&str>| Facts {
            fleet: Some(FleetFacts {
                silent_for,
                error: error.map(Into::into),
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
            last_error: err.map(Into::into),
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
    fn every_default_reads_as_the_range_it_is() {
        let written: Vec<(String, String)> =
            CHECKS.iter().map(|c| (c.warn.to_string(), c.crit.to_string())).collect();
        let want = [
            ("85", "95"),
            ("85", "95"),
            ("10:", "5:"),
            ("50", "80"),
            ("2", "4"),
            ("~:80", "~:90"),
            ("60", "300"),
            ("1", "2"),
            ("900", "3600"),
            ("300", "3600"),
            ("3600", "86400"),
            ("1", "2"),
        ];
        let want: Vec<(String, String)> =
            want.iter().map(|(w, c)| (w.to_string(), c.to_string())).collect();
        assert_eq!(written, want);
        for c in CHECKS {
            assert_eq!(c.warn.to_string().parse::<Range>(), Ok(c.warn), "{}", c.name);
            assert_eq!(c.crit.to_string().parse::<Range>(), Ok(c.crit), "{}", c.name);
        }
    }

    #[test]
    fn percents_in_sentences() {
        assert_eq!(format_percent(91.4), "91");
        assert_eq!(format_percent(4.04), "4.0");
        assert_eq!(format_percent(0.0), "0.0");
    }
}
