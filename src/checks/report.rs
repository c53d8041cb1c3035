//! The checks' documents: the JSON of `pocketses checks run --json` and `GET /v1/checks` (one
//! encoder for both), an entry of it (the data of an SSE `check` event), and the Prometheus
//! family `pocketses_check_state`.
//!
//! \[pure\] Results in, text out. The document is
//! `{"state", "exit-code", "checks": [{"check", "state", "value", "unit", "threshold", "summary",
//! "flapping"}]}`; the daemon adds `since` to each entry (when its state last changed, RFC 3339)
//! and `timestamp` to the document (when the checks ran). A check that stopped reporting (a
//! filesystem unmounted, a check disabled) is sent once as an SSE event with `"removed": true`.

use serde::Serialize;

use super::runner::Reported;
use super::{builtin, Result, State};
use crate::assertion::time::Timestamp;
use crate::metrics::encode::prometheus::{self, Family, Kind, Sample};

/// The whole document.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Document {
    /// The worst state (`OK` with no results).
    pub state: &'static str,
    /// Its Nagios exit code.
    pub exit_code: u8,
    /// When the checks ran (daemon only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// One entry per result.
    pub checks: Vec<Entry>,
}

/// One result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Entry {
    /// `filesystem:/var`, `load`.
    pub check: String,
    /// `OK`, `WARN`, `CRIT`, `UNKNOWN`.
    pub state: &'static str,
    /// What was measured, or `null`.
    pub value: Option<f64>,
    /// Its unit (`%`, `°C`, `s`, or empty).
    pub unit: &'static str,
    /// The range that decided, or `null`.
    pub threshold: Option<String>,
    /// The sentence for people.
    pub summary: String,
    /// Whether the check is flapping.
    pub flapping: bool,
    /// When the state last changed, RFC 3339 (daemon only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Set on the one SSE event of a check that stopped reporting.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
}

/// The unit of a result's value, as it follows a number in a sentence (`" %"`).
pub fn unit_of(result: &Result) -> &'static str {
    builtin::check(result.kind()).map_or("", |c| c.unit)
}

/// RFC 3339 (UTC, whole seconds) of `secs` since the epoch.
pub fn rfc3339(secs: f64) -> String {
    // Seconds since 1970 fit an i64 for any clock this runs on.
    #[allow(clippy::cast_possible_truncation)]
    Timestamp::from_unix(secs.floor() as i64).to_rfc3339_utc()
}

impl Entry {
    /// The entry of one result; `since` when the daemon knows it.
    pub fn new(result: &Result, since: Option<f64>) -> Entry {
        Entry {
            check: result.check.to_string(),
            state: result.state.as_str(),
            value: result.value,
            unit: unit_of(result).trim(),
            threshold: result.threshold.map(|t| t.to_string()),
            summary: result.summary(),
            flapping: result.flapping,
            since: since.map(rfc3339),
            removed: false,
        }
    }

    /// The entry of a reported result (with its `since`).
    pub fn reported(reported: &Reported) -> Entry {
        Entry::new(&reported.result, Some(reported.since))
    }

    /// One line of JSON.
    pub fn json(&self) -> String {
        // Strings, numbers and booleans only: encoding cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The worst state of `results` (OK when there are none).
pub fn worst<'a>(results: impl IntoIterator<Item = &'a Result>) -> State {
    results.into_iter().map(|r| r.state).max().unwrap_or(State::Ok)
}

impl Document {
    /// The document of `entries` whose worst state is `worst`.
    pub fn new(worst: State, timestamp: Option<f64>, checks: Vec<Entry>) -> Document {
        Document {
            state: worst.as_str(),
            exit_code: worst.exit_code(),
            timestamp: timestamp.map(rfc3339),
            checks,
        }
    }

    /// Pretty JSON with a final newline, as the command prints it.
    pub fn pretty(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Compact JSON, as `/v1/checks` serves it.
    pub fn compact(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// One SSE `check` event per entry, back to back.
pub fn sse_events(entries: &[Entry]) -> hyper::body::Bytes {
    let mut out = Vec::new();
    for entry in entries {
        let frame = crate::publish::http::sse_frame(
            crate::publish::Event::SSE_CHECK,
            None,
            entry.json().as_bytes(),
        );
        out.extend_from_slice(&frame);
    }
    hyper::body::Bytes::from(out)
}

/// Name of the Prometheus family of check states.
pub const STATE_FAMILY: &str = "pocketses_check_state";

/// `pocketses_check_state{check="…"}`: each result's state as its Nagios exit code.
pub fn state_family<'a>(results: impl IntoIterator<Item = &'a Result>) -> Family {
    let mut family = Family::new(
        STATE_FAMILY,
        "State of each check as its Nagios exit code: 0 OK, 1 WARN, 2 CRIT, 3 UNKNOWN.",
        Kind::Gauge,
    );
    family.samples = results
        .into_iter()
        .map(|r| Sample::with(&[("check", &*r.check)], f64::from(r.state.exit_code())))
        .collect();
    family
}

/// [`state_family`] as Prometheus text.
pub fn prometheus_text<'a>(results: impl IntoIterator<Item = &'a Result>) -> String {
    prometheus::write(&mut [state_family(results)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(check: &str, state: State, value: Option<f64>) -> Result {
        Result {
            check: check.into(),
            state,
            value,
            threshold: "85".parse().ok(),
            sentence: crate::checks::sentence::Sentence::text(&format!("{check} is fine")),
            flapping: false,
        }
    }

    #[test]
    fn an_entry_is_the_commands_entry_plus_since() {
        let r = result("filesystem:/var", State::Warn, Some(91.5));
        assert_eq!(
            Entry::new(&r, None).json(),
            r#"{"check":"filesystem:/var","state":"WARN","value":91.5,"unit":"%","threshold":"85","summary":"filesystem:/var is fine","flapping":false}"#
        );
        let with_since = Entry::new(&r, Some(86_400.9)).json();
        assert!(with_since.ends_with(r#""flapping":false,"since":"1970-01-02T00:00:00Z"}"#));
        let mut removed = Entry::new(&r, None);
        removed.removed = true;
        assert!(removed.json().ends_with(r#""removed":true}"#));
    }

    #[test]
    fn documents() {
        let results = [result("load", State::Ok, Some(0.5)), result("swap", State::Unknown, None)];
        let entries = results.iter().map(|r| Entry::new(r, None)).collect();
        let doc = Document::new(worst(&results), None, entries);
        let value: serde_json::Value = serde_json::from_str(&doc.compact()).unwrap();
        assert_eq!(value["state"], "UNKNOWN");
        assert_eq!(value["exit-code"], 3);
        assert_eq!(value["checks"][1]["value"], serde_json::Value::Null);
        assert!(value.get("timestamp").is_none());
        assert!(doc.pretty().ends_with("}\n"));
        assert_eq!(worst(&[]), State::Ok);
        let doc = Document::new(State::Ok, Some(0.0), Vec::new());
        assert_eq!(
            doc.compact(),
            r#"{"state":"OK","exit-code":0,"timestamp":"1970-01-01T00:00:00Z","checks":[]}"#
        );
    }

    #[test]
    fn the_state_family_uses_exit_codes() {
        let results = [
            result("filesystem:/", State::Ok, None),
            result("load", State::Crit, None),
            result("temperature:a\"b/c", State::Unknown, None),
        ];
        let text = prometheus_text(&results);
        assert_eq!(
            text,
            "# HELP pocketses_check_state State of each check as its Nagios exit code: 0 OK, 1 WARN, 2 CRIT, 3 UNKNOWN.\n\
             # TYPE pocketses_check_state gauge\n\
             pocketses_check_state{check=\"filesystem:/\"} 0\n\
             pocketses_check_state{check=\"load\"} 2\n\
             pocketses_check_state{check=\"temperature:a\\\"b/c\"} 3\n"
        );
    }
}
