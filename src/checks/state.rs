//! States, a check's result, and the rules over a check's history: hysteresis and flapping.
//!
//! \[pure\] Time is passed in (seconds since the Unix epoch); nothing here reads the clock.
//! The states are Nagios' (exit codes 0, 1, 2, 3), ordered by severity: OK < WARN < UNKNOWN < CRIT,
//! so a CRIT is never hidden behind a check that could not run (Icinga orders them the same way).
//! Hysteresis follows Consul: a check turns non-OK after `failures-before-critical` non-OK results
//! in a row and back to OK after `successes-before-ok` OK results in a row.
//! Flapping follows Nagios: the weighted share of state changes over the last 21 raw results,
//! flapping from above 20 % until below 5 % (Nagios' sample thresholds).

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use super::sentence::Sentence;
use super::Range;

/// The state of a check, in increasing severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// Fine.
    Ok,
    /// Past the warning threshold.
    Warn,
    /// The check could not run.
    Unknown,
    /// Past the critical threshold.
    Crit,
}

impl State {
    /// The Nagios plugin exit code: 0, 1, 2 for CRIT, 3 for UNKNOWN.
    pub fn exit_code(self) -> u8 {
        match self {
            State::Ok => 0,
            State::Warn => 1,
            State::Crit => 2,
            State::Unknown => 3,
        }
    }

    /// `OK`, `WARN`, `CRIT`, `UNKNOWN`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Warn => "WARN",
            State::Crit => "CRIT",
            State::Unknown => "UNKNOWN",
        }
    }

    /// The state a value is in: CRIT when `crit` alerts, else WARN when `warn` alerts, else OK;
    /// UNKNOWN for a value that is not a number.
    pub fn of(value: f64, warn: Option<&Range>, crit: Option<&Range>) -> State {
        if !value.is_finite() {
            State::Unknown
        } else if crit.is_some_and(|r| r.alerts(value)) {
            State::Crit
        } else if warn.is_some_and(|r| r.alerts(value)) {
            State::Warn
        } else {
            State::Ok
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One result of one check.
#[derive(Debug, Clone, PartialEq)]
pub struct Result {
    /// Which check, with its subject when it has several (`filesystem:/var`, `load`); shared,
    /// so the daemon's runs reuse one string per result.
    pub check: Arc<str>,
    /// The state.
    pub state: State,
    /// What was measured, in the check's unit; `None` when nothing could be.
    pub value: Option<f64>,
    /// The range that decided the state (the warning range while OK).
    pub threshold: Option<Range>,
    /// The sentence for people, written out by [`Result::summary`] when someone reads it.
    pub sentence: Sentence,
    /// Whether the check is flapping (set by [`Tracker`]; a single result never is).
    pub flapping: bool,
}

impl Result {
    /// The check's name without its subject (`filesystem` for `filesystem:/var`).
    pub fn kind(&self) -> &str {
        self.check.split_once(':').map_or(&*self.check, |(kind, _)| kind)
    }

    /// A short sentence for people: `/var is 91 % full (warn at 85 %)`.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.sentence.write(&mut out, &self.check, self.threshold);
        out
    }
}

/// How many results in a row change a check's state (Consul's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hysteresis {
    /// Non-OK results in a row before the state leaves OK.
    pub failures_before_critical: u32,
    /// OK results in a row before the state returns to OK.
    pub successes_before_ok: u32,
}

impl Default for Hysteresis {
    /// Nagios' `max_check_attempts` of 3; recovery on the first OK result.
    fn default() -> Self {
        Hysteresis { failures_before_critical: 3, successes_before_ok: 1 }
    }
}

/// Results kept for flapping detection (Nagios keeps 21).
pub const FLAP_HISTORY: usize = 21;
/// Percent state change above which a check starts flapping.
pub const FLAP_HIGH: f64 = 20.0;
/// Percent state change below which a check stops flapping.
pub const FLAP_LOW: f64 = 5.0;

/// The history of one check: applies hysteresis and detects flapping.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    rules: Hysteresis,
    state: Option<State>,
    since: f64,
    failures: u32,
    successes: u32,
    history: VecDeque<State>,
    flapping: bool,
}

impl Tracker {
    /// A tracker with no history.
    pub fn new(rules: Hysteresis) -> Self {
        Tracker { rules, ..Tracker::default() }
    }

    /// Changes the rules for the results to come (after `snap set`); the history stays.
    pub fn set_rules(&mut self, rules: Hysteresis) {
        self.rules = rules;
    }

    /// The reported state, `None` before the first result.
    pub fn state(&self) -> Option<State> {
        self.state
    }

    /// When the reported state last changed (seconds since the Unix epoch).
    pub fn since(&self) -> f64 {
        self.since
    }

    /// Takes a raw result measured at `now` and returns it as reported: its state held back by
    /// hysteresis, `flapping` set. The first result is reported as it is, as there is no state to
    /// hold on to. While non-OK, the reported state follows the raw one (WARN to CRIT at once).
    pub fn observe(&mut self, mut result: Result, now: f64) -> Result {
        let raw = result.state;
        if raw == State::Ok {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
        }
        let next = match self.state {
            None => raw,
            Some(State::Ok) if raw != State::Ok => {
                if self.failures >= self.rules.failures_before_critical.max(1) {
                    raw
                } else {
                    State::Ok
                }
            }
            Some(current) if current != State::Ok && raw == State::Ok => {
                if self.successes >= self.rules.successes_before_ok.max(1) {
                    State::Ok
                } else {
                    current
                }
            }
            Some(_) => raw,
        };
        if self.state != Some(next) {
            self.since = now;
            self.state = Some(next);
        }
        if self.history.len() == FLAP_HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(raw);
        let change = percent_state_change(&self.history);
        if change > FLAP_HIGH {
            self.flapping = true;
        } else if change < FLAP_LOW {
            self.flapping = false;
        }
        result.state = next;
        result.flapping = self.flapping;
        result
    }
}

/// Nagios' weighted percent state change: each change between two consecutive results counts from
/// 0.75 (oldest) to 1.25 (newest), over the 20 transitions of a full history.
pub fn percent_state_change(history: &VecDeque<State>) -> f64 {
    let transitions = (FLAP_HISTORY - 1) as f64;
    let offset = FLAP_HISTORY - history.len();
    let mut weighted = 0.0;
    for (i, pair) in history.iter().zip(history.iter().skip(1)).enumerate() {
        if pair.0 != pair.1 {
            let position = (i + offset) as f64;
            weighted += 0.75 + position * 0.5 / (transitions - 1.0);
        }
    }
    weighted * 100.0 / transitions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(state: State) -> Result {
        Result {
            check: "load".into(),
            state,
            value: Some(1.0),
            threshold: None,
            sentence: Sentence::text(""),
            flapping: false,
        }
    }

    fn run(rules: Hysteresis, raw: &[State]) -> Vec<State> {
        let mut tracker = Tracker::new(rules);
        raw.iter().enumerate().map(|(i, s)| tracker.observe(result(*s), i as f64).state).collect()
    }

    use State::{Crit as C, Ok as O, Unknown as U, Warn as W};

    #[test]
    fn severity_order_and_exit_codes() {
        assert!(O < W && W < U && U < C);
        assert_eq!([O, W, C, U].map(State::exit_code), [0, 1, 2, 3]);
        assert_eq!([O, W, C, U].map(State::as_str), ["OK", "WARN", "CRIT", "UNKNOWN"]);
        assert_eq!([W, O, C, U].iter().max(), Some(&C));
    }

    #[test]
    fn state_of_a_value() {
        let warn: Range = "85".parse().unwrap();
        let crit: Range = "95".parse().unwrap();
        assert_eq!(State::of(50.0, Some(&warn), Some(&crit)), O);
        assert_eq!(State::of(85.0, Some(&warn), Some(&crit)), O);
        assert_eq!(State::of(85.1, Some(&warn), Some(&crit)), W);
        assert_eq!(State::of(96.0, Some(&warn), Some(&crit)), C);
        assert_eq!(State::of(96.0, Some(&warn), None), W);
        assert_eq!(State::of(96.0, None, None), O);
        assert_eq!(State::of(f64::NAN, Some(&warn), Some(&crit)), U);
        assert_eq!(State::of(f64::INFINITY, None, None), U);
    }

    #[test]
    fn kind_drops_the_subject() {
        let mut r = result(O);
        assert_eq!(r.kind(), "load");
        r.check = "filesystem:/var".into();
        assert_eq!(r.kind(), "filesystem");
    }

    #[test]
    fn first_result_is_taken_as_is() {
        assert_eq!(run(Hysteresis::default(), &[C]), [C]);
        assert_eq!(run(Hysteresis::default(), &[O]), [O]);
    }

    #[test]
    fn one_crossing_does_not_page() {
        let rules = Hysteresis { failures_before_critical: 3, successes_before_ok: 1 };
        assert_eq!(run(rules, &[O, C, O, W, C, O]), [O, O, O, O, O, O]);
        assert_eq!(run(rules, &[O, C, C, C, C]), [O, O, O, C, C]);
        // Warnings count as failures; the state reported is the latest one.
        assert_eq!(run(rules, &[O, W, W, C]), [O, O, O, C]);
        assert_eq!(run(rules, &[O, U, U, U]), [O, O, O, U]);
    }

    #[test]
    fn while_failing_the_state_follows_the_raw_one() {
        let rules = Hysteresis { failures_before_critical: 2, successes_before_ok: 1 };
        assert_eq!(run(rules, &[O, W, W, C, W, C]), [O, O, W, C, W, C]);
    }

    #[test]
    fn recovery_waits_for_successes() {
        let rules = Hysteresis { failures_before_critical: 1, successes_before_ok: 3 };
        assert_eq!(run(rules, &[C, O, O, C, O, O, O]), [C, C, C, C, C, C, O]);
    }

    #[test]
    fn one_and_one_is_no_hysteresis() {
        let rules = Hysteresis { failures_before_critical: 1, successes_before_ok: 1 };
        let raw = [O, C, O, W, U, O];
        assert_eq!(run(rules, &raw), raw);
        // 0 is read as 1, like Consul's default of 0.
        let zero = Hysteresis { failures_before_critical: 0, successes_before_ok: 0 };
        assert_eq!(run(zero, &raw), raw);
    }

    #[test]
    fn since_moves_only_when_the_reported_state_changes() {
        let mut tracker =
            Tracker::new(Hysteresis { failures_before_critical: 2, successes_before_ok: 1 });
        tracker.observe(result(O), 100.0);
        tracker.observe(result(C), 160.0);
        assert_eq!((tracker.state(), tracker.since()), (Some(O), 100.0));
        tracker.observe(result(C), 220.0);
        assert_eq!((tracker.state(), tracker.since()), (Some(C), 220.0));
        tracker.observe(result(C), 280.0);
        assert_eq!(tracker.since(), 220.0);
    }

    #[test]
    fn percent_state_change_weights_recent_changes_more() {
        let full = |changes_at: &[usize]| {
            let mut state = O;
            let history: VecDeque<State> = (0..FLAP_HISTORY)
                .map(|i| {
                    if changes_at.contains(&i) {
                        state = if state == O { C } else { O };
                    }
                    state
                })
                .collect();
            percent_state_change(&history)
        };
        assert_eq!(full(&[]), 0.0);
        // The oldest transition weighs 0.75, the newest 1.25, out of 20 transitions.
        assert!((full(&[1]) - 3.75).abs() < 1e-9);
        assert!((full(&[20]) - 6.25).abs() < 1e-9);
        // Every result different from the last: 100 %.
        let all: Vec<usize> = (1..FLAP_HISTORY).collect();
        assert!((full(&all) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn alternating_results_flap_and_calm_down() {
        let mut tracker = Tracker::new(Hysteresis::default());
        let mut flags = Vec::new();
        for i in 0..10 {
            let raw = if i % 2 == 0 { O } else { C };
            flags.push(tracker.observe(result(raw), f64::from(i)).flapping);
        }
        // Five changes weigh more than 20 % of twenty transitions: flapping from then on.
        assert!(!flags[3] && flags[5] && flags[9], "{flags:?}");
        // Steady results push the changes out of the window; flapping ends below 5 %.
        let mut calm_at = None;
        for i in 10..60 {
            let r = tracker.observe(result(O), f64::from(i));
            if !r.flapping && calm_at.is_none() {
                calm_at = Some(i);
            }
        }
        let calm_at = calm_at.unwrap();
        assert!((25..=30).contains(&calm_at), "{calm_at}");
        assert!(!tracker.observe(result(O), 61.0).flapping);
    }

    #[test]
    fn flapping_has_its_own_hysteresis() {
        // Between the low and high thresholds the flag keeps its previous value.
        let mut tracker = Tracker::new(Hysteresis::default());
        let mut raw = vec![O; 15];
        raw.extend([C, O]); // two changes near the end: about 11 %
        let flags: Vec<bool> = raw
            .iter()
            .enumerate()
            .map(|(i, s)| tracker.observe(result(*s), i as f64).flapping)
            .collect();
        assert!(flags.iter().all(|f| !f), "{flags:?}");
    }
}
