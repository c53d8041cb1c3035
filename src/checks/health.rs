//! The snap's health, as `snapctl set-health` reports it to snapd, from the checks' results.
//!
//! \[pure\] Results and the daemon's situation in, a [`Health`] out; [`Reporter`] decides when a
//! health must be sent (only when it differs from the last one snapd accepted).
//! snapd's rules are checked here, so what we send is what snapd stores
//! (`snapd:overlord/hookstate/ctlcmd/health.go`): a code of 3–30 bytes matching
//! `[a-z](-?[a-z0-9])+`; a message of at least 7 characters, which snapd cuts to 69 characters and
//! `…` past 70 (we cut the same way first, so the health we remember is the one snapd keeps);
//! no message nor code with `okay`.
//!
//! The mapping, worst first: any CRIT check is `error` (code `<check>-critical`); else a missing
//! interface or key is `blocked`; else a daemon that has not run its first checks is `waiting`;
//! else `okay`. WARN and UNKNOWN stay `okay`: snap health has no level between working and
//! broken, and they are visible in `pocketses checks`, `/v1/checks` and `/metrics`.
//! Messages name checks, never values, so a disk filling from 96 % to 97 % is no new health.

use std::fmt;

use super::{Result, State};

/// snapd's health statuses that a snap may set (`unknown` is snapd's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// The snap is healthy.
    Okay,
    /// Something the snap needs is not ready yet.
    Waiting,
    /// Something needs doing (connect an interface, set a key).
    Blocked,
    /// Something is broken.
    Error,
}

impl Status {
    /// snapd's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Okay => "okay",
            Status::Waiting => "waiting",
            Status::Blocked => "blocked",
            Status::Error => "error",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One health, as `snapctl set-health [--code=CODE] STATUS [MESSAGE]` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// The status.
    pub status: Status,
    /// Why, for people; empty with `okay`, 7–70 characters otherwise.
    pub message: String,
    /// A word for tools; empty or 3–30 characters of `[a-z](-?[a-z0-9])+`.
    pub code: String,
}

impl Health {
    /// `okay`, no message, no code.
    pub fn okay() -> Health {
        Health { status: Status::Okay, message: String::new(), code: String::new() }
    }

    /// A health with its message cut to snapd's length; an invalid code or a message too short
    /// is a bug of the caller, reported as an error.
    ///
    /// # Errors
    /// The rule the health breaks, in snapd's words.
    pub fn new(status: Status, message: &str, code: &str) -> std::result::Result<Health, String> {
        let health = Health { status, message: cut_message(message), code: code.to_string() };
        health.validate()?;
        Ok(health)
    }

    /// Checks snapd's rules (`snapctl set-health` refuses what breaks them).
    ///
    /// # Errors
    /// The first rule broken, worded as snapd words it.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.status == Status::Okay {
            if !self.message.is_empty() || !self.code.is_empty() {
                return Err(r#"when status is "okay", message and code must be empty"#.to_string());
            }
            return Ok(());
        }
        if !self.code.is_empty() {
            valid_code(&self.code)?;
        }
        let n = self.message.chars().count();
        if n == 0 {
            return Err(r#"when status is not "okay", message is required"#.to_string());
        }
        if n < MESSAGE_MIN {
            return Err(format!("message must be at least 7 characters long (got {n})"));
        }
        if n > MESSAGE_MAX {
            return Err(format!("message must be at most 70 characters long (got {n})"));
        }
        Ok(())
    }

    /// The arguments of `snapctl set-health` after the command name.
    pub fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if !self.code.is_empty() {
            args.push(format!("--code={}", self.code));
        }
        args.push(self.status.as_str().to_string());
        if !self.message.is_empty() {
            args.push(self.message.clone());
        }
        args
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.status.as_str())?;
        if !self.code.is_empty() {
            write!(f, " ({})", self.code)?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// Shortest message snapd takes, in characters.
pub const MESSAGE_MIN: usize = 7;
/// Longest message snapd keeps whole, in characters.
pub const MESSAGE_MAX: usize = 70;
/// Shortest code, in bytes.
pub const CODE_MIN: usize = 3;
/// Longest code, in bytes.
pub const CODE_MAX: usize = 30;

/// snapd's code rule: 3–30 bytes, `^[a-z](?:-?[a-z0-9])+$`.
///
/// # Errors
/// snapd's message for the rule broken.
pub fn valid_code(code: &str) -> std::result::Result<(), String> {
    let n = code.len();
    if !(CODE_MIN..=CODE_MAX).contains(&n) {
        return Err(format!("code must have between 3 and 30 characters, got {n}"));
    }
    let bytes = code.as_bytes();
    let mut ok = bytes[0].is_ascii_lowercase();
    let mut after_dash = false;
    for &b in &bytes[1..] {
        match b {
            b'-' if !after_dash => after_dash = true,
            b'a'..=b'z' | b'0'..=b'9' => after_dash = false,
            _ => ok = false,
        }
    }
    // A dash must be followed by a letter or digit: none may end the code.
    if ok && !after_dash {
        Ok(())
    } else {
        Err(format!(
            "invalid code {code:?} (code must start with lowercase ASCII letters, and contain only ASCII letters and numbers, optionally separated by single dashes)"
        ))
    }
}

/// A message cut as snapd cuts it: past 70 characters, the first 69 and `…`.
pub fn cut_message(message: &str) -> String {
    if message.chars().count() <= MESSAGE_MAX {
        return message.to_string();
    }
    let mut out: String = message.chars().take(MESSAGE_MAX - 1).collect();
    out.push('…');
    out
}

/// What the daemon knows besides the results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Situation {
    /// The first checks have not run yet.
    pub starting: bool,
    /// Interfaces (plug names) the daemon needs that are not connected.
    pub missing_plugs: Vec<String>,
    /// Configuration keys that must be set and are not.
    pub missing_keys: Vec<String>,
}

/// The health of the snap for these (reported) results. \[pure\]
pub fn map<'a>(results: impl IntoIterator<Item = &'a Result>, situation: &Situation) -> Health {
    let critical: Vec<&Result> = results.into_iter().filter(|r| r.state == State::Crit).collect();
    if let Some(first) = critical.first() {
        let message = match critical.len() {
            1 => format!("{} is critical", first.check),
            n => format!("{} and {} more checks are critical", first.check, n - 1),
        };
        let code = format!("{}-critical", first.kind());
        return checked(Status::Error, &message, &code);
    }
    if let Some(plug) = situation.missing_plugs.first() {
        let message = match situation.missing_plugs.len() {
            1 => format!("not connected, run: snap connect pocketses:{plug}"),
            n => format!("{n} plugs not connected, run: snap connect pocketses:{plug}"),
        };
        return checked(Status::Blocked, &message, &format!("needs-{plug}"));
    }
    if let Some(key) = situation.missing_keys.first() {
        return checked(
            Status::Blocked,
            &format!("set {key}: snap set pocketses {key}=…"),
            "needs-configuration",
        );
    }
    if situation.starting {
        return checked(Status::Waiting, "pocketses is starting its checks", "starting");
    }
    Health::okay()
}

/// A health from parts this module made; should one break snapd's rules (a plug name too long
/// for a code), the code is dropped and the message made long enough rather than sending
/// something snapd would refuse.
fn checked(status: Status, message: &str, code: &str) -> Health {
    Health::new(status, message, code).unwrap_or_else(|_| {
        let message = if message.chars().count() < MESSAGE_MIN {
            format!("pocketses: {message}")
        } else {
            message.to_string()
        };
        Health { status, message: cut_message(&message), code: String::new() }
    })
}

/// Sends a health only when it changed: remembers the last one snapd accepted.
#[derive(Debug, Clone, Default)]
pub struct Reporter {
    accepted: Option<Health>,
}

impl Reporter {
    /// The health to send now, if `wanted` is not what snapd already has.
    pub fn due<'a>(&self, wanted: &'a Health) -> Option<&'a Health> {
        (self.accepted.as_ref() != Some(wanted)).then_some(wanted)
    }

    /// snapd accepted `health`.
    pub fn accepted(&mut self, health: Health) {
        self.accepted = Some(health);
    }

    /// The last health snapd accepted.
    pub fn last(&self) -> Option<&Health> {
        self.accepted.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(check: &str, state: State) -> Result {
        Result {
            check: check.into(),
            state,
            value: Some(1.0),
            threshold: None,
            sentence: crate::checks::sentence::Sentence::text(&format!("{check} summary")),
            flapping: false,
        }
    }

    #[test]
    fn codes_follow_snapds_rule() {
        for good in ["abc", "a-b", "filesystem-critical", "needs-snapd-control", "a1", "x9-y"] {
            let res = valid_code(good);
            if good == "a1" {
                // Two bytes: the length rule, not the pattern, refuses it.
                assert_eq!(res, Err("code must have between 3 and 30 characters, got 2".into()));
            } else {
                assert_eq!(res, Ok(()), "{good}");
            }
        }
        for bad in ["Abc", "1ab", "-ab", "ab-", "a--b", "a_b", "ab c", "abé", "a.b"] {
            let err = valid_code(bad).unwrap_err();
            assert!(err.starts_with(&format!("invalid code {bad:?}")), "{bad}: {err}");
        }
        assert_eq!(valid_code(""), Err("code must have between 3 and 30 characters, got 0".into()));
        assert!(valid_code(&"a".repeat(30)).is_ok());
        assert_eq!(
            valid_code(&"a".repeat(31)),
            Err("code must have between 3 and 30 characters, got 31".into())
        );
    }

    #[test]
    fn messages_follow_snapds_rule() {
        assert_eq!(cut_message("short"), "short");
        let seventy = "x".repeat(70);
        assert_eq!(cut_message(&seventy), seventy);
        let long = "é".repeat(71);
        let cut = cut_message(&long);
        assert_eq!(cut.chars().count(), 70);
        assert!(cut.ends_with("é…"));
        assert_eq!(
            Health::new(Status::Error, "sixsix", "").unwrap_err(),
            "message must be at least 7 characters long (got 6)"
        );
        assert_eq!(
            Health::new(Status::Blocked, "", "").unwrap_err(),
            r#"when status is not "okay", message is required"#
        );
        // Characters, not bytes: seven two-byte characters are enough.
        assert!(Health::new(Status::Waiting, "ééééééé", "").is_ok());
        let okay =
            Health { status: Status::Okay, message: "all good!".into(), code: String::new() };
        assert_eq!(
            okay.validate().unwrap_err(),
            r#"when status is "okay", message and code must be empty"#
        );
        assert_eq!(Health::okay().validate(), Ok(()));
        let long = Health::new(Status::Error, &"m".repeat(100), "abc").unwrap();
        assert_eq!(long.message.chars().count(), 70);
    }

    #[test]
    fn args_are_snapctls() {
        assert_eq!(Health::okay().args(), ["okay"]);
        let h = Health::new(Status::Error, "/var is critical", "filesystem-critical").unwrap();
        assert_eq!(h.args(), ["--code=filesystem-critical", "error", "/var is critical"]);
        assert_eq!(h.to_string(), "error (filesystem-critical): /var is critical");
    }

    #[test]
    fn the_worst_situation_wins() {
        let ok = [result("load", State::Ok), result("memory", State::Warn)];
        let none = Situation::default();
        assert_eq!(map(&ok, &none), Health::okay());
        // WARN and UNKNOWN are no reason to call the snap unhealthy.
        assert_eq!(map(&[result("swap", State::Unknown)], &none), Health::okay());
        let starting = Situation { starting: true, ..Situation::default() };
        assert_eq!(
            map(&[], &starting),
            Health::new(Status::Waiting, "pocketses is starting its checks", "starting").unwrap()
        );
        let blocked = Situation {
            starting: true,
            missing_plugs: vec!["mount-observe".into()],
            ..Situation::default()
        };
        let got = map(&ok, &blocked);
        assert_eq!(got.status, Status::Blocked);
        assert_eq!(got.code, "needs-mount-observe");
        assert_eq!(got.message, "not connected, run: snap connect pocketses:mount-observe");
        let two = Situation {
            missing_plugs: vec!["mount-observe".into(), "hardware-observe".into()],
            ..Situation::default()
        };
        assert_eq!(
            map(&ok, &two).message,
            "2 plugs not connected, run: snap connect pocketses:mount-observe"
        );
        let crit = [result("load", State::Ok), result("filesystem:/var", State::Crit)];
        let got = map(&crit, &blocked);
        assert_eq!(
            got,
            Health::new(Status::Error, "filesystem:/var is critical", "filesystem-critical")
                .unwrap()
        );
        let two = [result("temperature:0/x", State::Crit), result("filesystem:/", State::Crit)];
        assert_eq!(map(&two, &none).message, "temperature:0/x and 1 more checks are critical");
        assert_eq!(map(&two, &none).code, "temperature-critical");
    }

    #[test]
    fn keys_block_after_plugs() {
        let situation =
            Situation { missing_keys: vec!["push.x.url".into()], ..Situation::default() };
        let got = map(&[], &situation);
        assert_eq!(got.status, Status::Blocked);
        assert_eq!(got.code, "needs-configuration");
        assert!(got.validate().is_ok());
    }

    #[test]
    fn every_mapped_health_is_valid_even_with_odd_names() {
        let odd = Situation {
            missing_plugs: vec!["a-very-long-interface-name-beyond-thirty".into()],
            ..Situation::default()
        };
        let got = map(&[], &odd);
        assert_eq!(got.validate(), Ok(()));
        assert!(got.code.is_empty(), "{got:?}");
        let long_check = result(&format!("filesystem:/{}", "d".repeat(200)), State::Crit);
        let got = map(&[long_check], &Situation::default());
        assert_eq!(got.validate(), Ok(()));
        assert_eq!(got.message.chars().count(), 70);
    }

    #[test]
    fn the_reporter_sends_only_changes() {
        let mut reporter = Reporter::default();
        let okay = Health::okay();
        let error = Health::new(Status::Error, "load is critical", "load-critical").unwrap();
        assert_eq!(reporter.due(&okay), Some(&okay), "nothing sent yet");
        reporter.accepted(okay.clone());
        assert_eq!(reporter.due(&okay), None);
        assert_eq!(reporter.due(&error), Some(&error));
        // Not accepted (snapd unreachable): still due next time.
        assert_eq!(reporter.due(&error), Some(&error));
        reporter.accepted(error.clone());
        assert_eq!(reporter.due(&error), None);
        assert_eq!(reporter.last(), Some(&error));
        assert_eq!(reporter.due(&okay), Some(&okay));
    }
}
