//! The daemon's memory of its checks: one [`Tracker`] per result (`filesystem:/var`), fed with every
//! run, so states go through hysteresis and flapping detection, and the changes of each run are known.
//!
//! \[pure\] Raw results, the configuration and the time in; reported results and what changed out.
//! A result whose check no longer reports (a filesystem unmounted, a check disabled) is forgotten
//! and returned once in [`Run::removed`].

use std::collections::BTreeMap;
use std::sync::Arc;

use super::state::{Hysteresis, Tracker};
use super::{builtin, Result, State};
use crate::config::Config;

/// A result as reported, with when its state last changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Reported {
    /// The result, its state held back by hysteresis and `flapping` set.
    pub result: Result,
    /// When its reported state last changed, seconds since the Unix epoch.
    pub since: f64,
}

/// What one run gave.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Run {
    /// Every result, in the order the checks gave them.
    pub results: Vec<Reported>,
    /// Those whose state or flapping flag differs from the previous run (or that are new).
    pub changed: Vec<Reported>,
    /// Results of the previous run that this run did not give, as they were last reported.
    pub removed: Vec<Reported>,
    /// Changes of reported state, in result order, then the removed results: what the
    /// notifications (`crate::notify`) say. A new result counts only when it is not OK, and a
    /// change of the flapping flag alone is not one.
    pub transitions: Vec<Transition>,
}

/// A change of one result's reported state.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The state before; `None` for a result seen for the first time.
    pub from: Option<State>,
    /// The result now; for a removed result, as it was last reported.
    pub reported: Reported,
    /// The result is no longer reported (a filesystem unmounted, a check disabled).
    pub removed: bool,
}

#[derive(Debug)]
struct Tracked {
    tracker: Tracker,
    last: Reported,
    /// The last run that gave this result.
    seen: u64,
}

/// The trackers of every result seen, by result name.
#[derive(Debug, Default)]
pub struct Runner {
    tracked: BTreeMap<Arc<str>, Tracked>,
    /// Runs observed so far.
    runs: u64,
}

/// The hysteresis of the check that gave `result`, in `config`.
fn rules(result: &Result, config: &Config) -> Hysteresis {
    builtin::check(result.kind())
        .map_or_else(Hysteresis::default, |c| c.settings(config).hysteresis)
}

impl Runner {
    /// A runner with no history.
    pub fn new() -> Runner {
        Runner::default()
    }

    /// Passes one run's raw results, measured at `now`, through their trackers.
    pub fn observe(&mut self, raw: Vec<Result>, config: &Config, now: f64) -> Run {
        self.observe_from(&mut raw.into_iter(), config, now)
    }

    /// [`Runner::observe`] over results taken from `raw` (the daemon drains a buffer it keeps).
    pub fn observe_from(
        &mut self,
        raw: &mut dyn Iterator<Item = Result>,
        config: &Config,
        now: f64,
    ) -> Run {
        self.runs += 1;
        let run_no = self.runs;
        let mut run = Run::default();
        run.results.reserve(self.tracked.len());
        for result in raw {
            let rules = rules(&result, config);
            let reported = match self.tracked.get_mut(&*result.check) {
                Some(tracked) => {
                    tracked.tracker.set_rules(rules);
                    tracked.seen = run_no;
                    let result = tracked.tracker.observe(result, now);
                    let reported = Reported { result, since: tracked.tracker.since() };
                    let before = &tracked.last.result;
                    if before.state != reported.result.state
                        || before.flapping != reported.result.flapping
                    {
                        run.changed.push(reported.clone());
                    }
                    if before.state != reported.result.state {
                        run.transitions.push(Transition {
                            from: Some(before.state),
                            reported: reported.clone(),
                            removed: false,
                        });
                    }
                    tracked.last = reported.clone();
                    reported
                }
                None => {
                    let mut tracker = Tracker::new(rules);
                    let result = tracker.observe(result, now);
                    let reported = Reported { result, since: tracker.since() };
                    run.changed.push(reported.clone());
                    if reported.result.state != State::Ok {
                        run.transitions.push(Transition {
                            from: None,
                            reported: reported.clone(),
                            removed: false,
                        });
                    }
                    let name = Arc::clone(&reported.result.check);
                    let tracked = Tracked { tracker, last: reported.clone(), seen: run_no };
                    self.tracked.insert(name, tracked);
                    reported
                }
            };
            run.results.push(reported);
        }
        if self.tracked.len() > run.results.len() {
            let gone: Vec<Arc<str>> = self
                .tracked
                .iter()
                .filter(|(_, t)| t.seen != run_no)
                .map(|(name, _)| Arc::clone(name))
                .collect();
            for name in gone {
                if let Some(tracked) = self.tracked.remove(&name) {
                    run.transitions.push(Transition {
                        from: Some(tracked.last.result.state),
                        reported: tracked.last.clone(),
                        removed: true,
                    });
                    run.removed.push(tracked.last);
                }
            }
        }
        run
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn raw(check: &str, state: State) -> Result {
        Result {
            check: check.into(),
            state,
            value: Some(1.0),
            threshold: None,
            sentence: crate::checks::sentence::Sentence::text(""),
            flapping: false,
        }
    }

    fn names(list: &[Reported]) -> Vec<String> {
        list.iter().map(|r| format!("{} {}", r.result.check, r.result.state)).collect()
    }

    fn config(settings: &[&str]) -> Config {
        let settings: Vec<(String, Value)> =
            settings.iter().map(|s| crate::config::parse_setting(s).unwrap()).collect();
        crate::config::load(&Value::Null, &settings).unwrap().config
    }

    #[test]
    fn the_first_run_changes_everything_then_only_changes_count() {
        let mut runner = Runner::new();
        let config = Config::default();
        let run =
            runner.observe(vec![raw("load", State::Ok), raw("swap", State::Ok)], &config, 10.0);
        assert_eq!(names(&run.changed), ["load OK", "swap OK"]);
        let run =
            runner.observe(vec![raw("load", State::Ok), raw("swap", State::Ok)], &config, 20.0);
        assert!(run.changed.is_empty());
        assert_eq!(run.results[0].since, 10.0);
    }

    #[test]
    fn hysteresis_comes_from_the_configuration() {
        let mut runner = Runner::new();
        let three = Config::default();
        runner.observe(vec![raw("load", State::Ok)], &three, 0.0);
        // Two CRIT results in a row: not enough with the default of 3.
        for t in [1.0, 2.0] {
            let run = runner.observe(vec![raw("load", State::Crit)], &three, t);
            assert!(run.changed.is_empty(), "{t}");
            assert_eq!(run.results[0].result.state, State::Ok);
        }
        let run = runner.observe(vec![raw("load", State::Crit)], &three, 3.0);
        assert_eq!(names(&run.changed), ["load CRIT"]);
        assert_eq!(run.changed[0].since, 3.0);
        // A live change of the rules applies to the next results.
        let slow = config(&["checks.load.successes-before-ok=2"]);
        let run = runner.observe(vec![raw("load", State::Ok)], &slow, 4.0);
        assert!(run.changed.is_empty());
        let run = runner.observe(vec![raw("load", State::Ok)], &slow, 5.0);
        assert_eq!(names(&run.changed), ["load OK"]);
    }

    #[test]
    fn flapping_is_a_change() {
        let mut runner = Runner::new();
        let config = config(&["checks.load.failures-before-critical=1"]);
        let mut flagged_at = None;
        for i in 0..12 {
            let state = if i % 2 == 0 { State::Ok } else { State::Crit };
            let run = runner.observe(vec![raw("load", state)], &config, f64::from(i));
            // Every run changes the state; the change that starts flapping carries the flag.
            assert_eq!(run.changed.len(), 1);
            if run.changed[0].result.flapping && flagged_at.is_none() {
                flagged_at = Some(i);
            }
        }
        assert!(flagged_at.is_some());
    }

    fn moves(run: &Run) -> Vec<String> {
        run.transitions
            .iter()
            .map(|t| {
                let from = t.from.map_or("-", State::as_str);
                let to = if t.removed { "gone" } else { t.reported.result.state.as_str() };
                format!("{} {from}>{to}", t.reported.result.check)
            })
            .collect()
    }

    #[test]
    fn transitions_are_state_changes_new_problems_and_removals() {
        let mut runner = Runner::new();
        let config = config(&["checks.load.failures-before-critical=1"]);
        let run = runner.observe(
            vec![raw("load", State::Ok), raw("filesystem:/", State::Warn)],
            &config,
            0.0,
        );
        // A new OK result is no news; a new problem is.
        assert_eq!(moves(&run), ["filesystem:/ ->WARN"]);
        let run = runner.observe(
            vec![raw("load", State::Crit), raw("filesystem:/", State::Warn)],
            &config,
            1.0,
        );
        assert_eq!(moves(&run), ["load OK>CRIT"]);
        let run = runner.observe(vec![raw("load", State::Ok)], &config, 2.0);
        assert_eq!(moves(&run), ["load CRIT>OK", "filesystem:/ WARN>gone"]);
        let run = runner.observe(vec![raw("load", State::Ok)], &config, 3.0);
        assert!(run.transitions.is_empty());
    }

    #[test]
    fn vanished_results_are_removed_once() {
        let mut runner = Runner::new();
        let config = Config::default();
        runner.observe(
            vec![raw("filesystem:/", State::Ok), raw("filesystem:/media/usb", State::Warn)],
            &config,
            0.0,
        );
        let run = runner.observe(vec![raw("filesystem:/", State::Ok)], &config, 1.0);
        assert_eq!(names(&run.removed), ["filesystem:/media/usb WARN"]);
        let run = runner.observe(vec![raw("filesystem:/", State::Ok)], &config, 2.0);
        assert!(run.removed.is_empty());
        // Mounted again: a new result, reported as it is.
        let run = runner.observe(
            vec![raw("filesystem:/", State::Ok), raw("filesystem:/media/usb", State::Crit)],
            &config,
            3.0,
        );
        assert_eq!(names(&run.changed), ["filesystem:/media/usb CRIT"]);
    }
}
