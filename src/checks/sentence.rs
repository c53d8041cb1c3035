//! A result's sentence for people (`/var is 91 % full (warn at 85 %)`), kept as the numbers and
//! names it is made of and written out only when someone reads it.
//!
//! \[pure\] The daemon runs the checks every interval but the sentences are read far less often:
//! by `GET /v1/checks`, the SSE full set a new subscriber gets, a `check` event (a state change),
//! a notification and `pocketses checks`. So a check gives a [`Sentence`] (a few numbers, static
//! words and shared names: no formatting, no allocation of its own), and [`Sentence::write`] makes
//! the text when it is asked for, always the same text for the same result.
//! Names that are part of the result's name (the mount point of `filesystem:/var`, the sink of
//! `spool:influx`) are taken from it rather than kept twice.

use std::fmt::{self, Write};
use std::sync::Arc;

use super::Range;

/// A result's sentence, unwritten. Cheap to clone (numbers and shared strings).
#[derive(Debug, Clone, PartialEq)]
pub struct Sentence {
    /// What was found.
    pub what: What,
    /// `warn` or `crit`: the range the sentence ends with (the result's threshold), or empty.
    pub label: &'static str,
    /// The check's unit, as it follows a number (`" %"`).
    pub unit: &'static str,
}

/// What a check found, in the words of its sentence. The subject (a mount point, a snap, a sink)
/// is the part of the result's name after `:`.
#[derive(Debug, Clone, PartialEq)]
pub enum What {
    /// A fixed text.
    Static(&'static str),
    /// A text made elsewhere.
    Text(Arc<str>),
    /// `SUBJECT is P % full`.
    Full(f64),
    /// `SUBJECT has P % of its inodes in use`.
    Inodes(f64),
    /// `cannot read the usage of SUBJECT` (`inodes`: of its inodes).
    Unreadable {
        /// Inodes rather than space.
        inodes: bool,
    },
    /// `P % of memory is available`.
    MemoryAvailable(f64),
    /// `swap is P % used`.
    SwapUsed(f64),
    /// `load per CPU is L (1-minute load O over N CPUs)`.
    Load {
        /// Load per CPU.
        per_cpu: f64,
        /// The 1-minute load average.
        one: f64,
        /// CPUs.
        cpus: usize,
    },
    /// `NAME is C °C`; `own` when the threshold is the sensor's own limit.
    Sensor {
        /// The sensor's name for people: `CPU (coretemp temp1)`.
        name: Arc<str>,
        /// Degrees Celsius.
        celsius: f64,
        /// The threshold is the sensor's own.
        own: bool,
    },
    /// `snapd answers`, or `snapd has not answered for S s: ERROR`.
    Snapd {
        /// Seconds without an answer.
        silent_for: f64,
        /// The last error.
        error: Option<Arc<str>>,
    },
    /// `snap "SUBJECT" is STATUS[: MESSAGE][ [CODE]]`.
    Snap {
        /// snapd's health status.
        status: Arc<str>,
        /// The snap's message.
        message: Arc<str>,
        /// The snap's code.
        code: Arc<str>,
    },
    /// `nothing waits for sink SUBJECT`, or `B waits for sink SUBJECT, the oldest for A s`.
    Spool {
        /// Bytes waiting.
        pending_bytes: u64,
        /// Age of the oldest record, seconds.
        oldest: Option<u64>,
    },
    /// `cannot read the spool of sink SUBJECT: ERROR`.
    SpoolUnreadable(Arc<str>),
    /// `sink SUBJECT delivers`, or `sink SUBJECT has not delivered for S s (STATE[: ERROR])`.
    Sink {
        /// `ok`, `failing`, …
        state: Arc<str>,
        /// Seconds without delivering.
        failing_for: f64,
        /// The last failure.
        error: Option<Arc<str>>,
    },
    /// `the fleet server answers`, `… last answered S s ago`, `… has not answered for S s: ERROR`.
    Fleet {
        /// Seconds since the server last answered.
        silent_for: f64,
        /// The client's last error.
        error: Option<Arc<str>>,
    },
    /// `fleet action ID ended STAGE[: DETAIL]`.
    FleetAction {
        /// The action's id.
        id: Arc<str>,
        /// `done`, `failed`, `cancelled`.
        stage: Arc<str>,
        /// The reason of a failure.
        detail: Option<Arc<str>>,
    },
}

impl Sentence {
    /// A sentence that is only `what`, without a threshold.
    pub fn plain(what: What) -> Sentence {
        Sentence { what, label: "", unit: "" }
    }

    /// A fixed text (tests, results made by hand).
    pub fn text(text: &str) -> Sentence {
        Sentence::plain(What::Text(Arc::from(text)))
    }

    /// Writes the sentence of the result named `check` whose threshold is `threshold`.
    ///
    /// # Errors
    /// Only those of `out`.
    pub fn write(
        &self,
        out: &mut impl Write,
        check: &str,
        threshold: Option<Range>,
    ) -> fmt::Result {
        let subject = check.split_once(':').map_or("", |(_, subject)| subject);
        match &self.what {
            What::Static(text) => out.write_str(text)?,
            What::Text(text) => out.write_str(text)?,
            What::Full(p) => write!(out, "{subject} is {} % full", Percent(*p))?,
            What::Inodes(p) => write!(out, "{subject} has {} % of its inodes in use", Percent(*p))?,
            What::Unreadable { inodes } => {
                let what = if *inodes { "inodes" } else { "usage" };
                write!(out, "cannot read the {what} of {subject}")?;
            }
            What::MemoryAvailable(p) => write!(out, "{} % of memory is available", Percent(*p))?,
            What::SwapUsed(p) => write!(out, "swap is {} % used", Percent(*p))?,
            What::Load { per_cpu, one, cpus } => {
                let plural = if *cpus == 1 { "" } else { "s" };
                write!(
                    out,
                    "load per CPU is {per_cpu:.2} (1-minute load {one:.2} over {cpus} CPU{plural})"
                )?;
            }
            What::Sensor { name, celsius, .. } => write!(out, "{name} is {celsius:.1} °C")?,
            What::Snapd { error: None, .. } => out.write_str("snapd answers")?,
            What::Snapd { silent_for, error: Some(err) } => {
                write!(out, "snapd has not answered for {silent_for:.0} s: {err}")?;
            }
            What::Snap { status, message, code } => {
                write!(out, "snap {subject:?} is {status}")?;
                if !message.is_empty() {
                    write!(out, ": {message}")?;
                }
                if !code.is_empty() {
                    write!(out, " [{code}]")?;
                }
            }
            What::Spool { oldest: None, .. } => write!(out, "nothing waits for sink {subject}")?,
            What::Spool { pending_bytes, oldest: Some(age) } => write!(
                out,
                "{} waits for sink {subject}, the oldest for {age} s",
                HumanBytes(*pending_bytes)
            )?,
            What::SpoolUnreadable(err) => {
                write!(out, "cannot read the spool of sink {subject}: {err}")?;
            }
            What::Sink { state, .. } if &**state == "ok" => {
                write!(out, "sink {subject} delivers")?;
            }
            What::Sink { state, failing_for, error } => {
                write!(out, "sink {subject} has not delivered for {failing_for:.0} s ({state}")?;
                if let Some(err) = error {
                    write!(out, ": {err}")?;
                }
                out.write_char(')')?;
            }
            What::Fleet { silent_for, error: None } if *silent_for < 1.0 => {
                out.write_str("the fleet server answers")?;
            }
            What::Fleet { silent_for, error: None } => {
                write!(out, "the fleet server last answered {silent_for:.0} s ago")?;
            }
            What::Fleet { silent_for, error: Some(err) } => {
                write!(out, "the fleet server has not answered for {silent_for:.0} s: {err}")?;
            }
            What::FleetAction { id, stage, detail } => {
                write!(out, "fleet action {id} ended {stage}")?;
                if let Some(detail) = detail {
                    write!(out, ": {detail}")?;
                }
            }
        }
        if let (Some(range), false) = (threshold, self.label.is_empty()) {
            write!(out, " ({} {}", self.label, Words(range, self.unit))?;
            if matches!(self.what, What::Sensor { own: true, .. }) {
                out.write_str(", the sensor's own")?;
            }
            out.write_char(')')?;
        }
        Ok(())
    }
}

/// Whole percents from 10 up, one decimal below (`91`, `4.5`).
pub struct Percent(pub f64);

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 10.0 {
            write!(f, "{:.0}", self.0)
        } else {
            write!(f, "{:.1}", self.0)
        }
    }
}

/// `512 B`, `4.0 KiB`, `1.4 MiB`.
pub struct HumanBytes(pub u64);

impl fmt::Display for HumanBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            n if n < 1024 => write!(f, "{n} B"),
            n if n < 1 << 20 => write!(f, "{:.1} KiB", n as f64 / 1024.0),
            n if n < 1 << 30 => write!(f, "{:.1} MiB", n as f64 / f64::from(1u32 << 20)),
            n => write!(f, "{:.1} GiB", n as f64 / f64::from(1u32 << 30)),
        }
    }
}

/// A range in words ([`Range::describe`]).
struct Words(Range, &'static str);

impl fmt::Display for Words {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.describe(self.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(summary: &Sentence, check: &str, threshold: Option<&str>) -> String {
        let mut out = String::new();
        summary.write(&mut out, check, threshold.map(|t| t.parse().unwrap())).unwrap();
        out
    }

    #[test]
    fn the_subject_comes_from_the_name_and_the_threshold_ends_it() {
        let full = Sentence { what: What::Full(91.4), label: "warn", unit: " %" };
        assert_eq!(text(&full, "filesystem:/var", Some("85")), "/var is 91 % full (warn at 85 %)");
        // A mount point with a colon keeps it.
        assert_eq!(text(&full, "filesystem:/a:b", None), "/a:b is 91 % full");
        let sensor = Sentence {
            what: What::Sensor { name: "CPU (coretemp temp1)".into(), celsius: 86.04, own: true },
            label: "crit",
            unit: " °C",
        };
        assert_eq!(
            text(&sensor, "temperature:coretemp/temp1", Some("~:85")),
            "CPU (coretemp temp1) is 86.0 °C (crit at 85 °C, the sensor's own)"
        );
        // No label: no threshold words, whatever the threshold.
        assert_eq!(text(&Sentence::text("fine"), "x", Some("1")), "fine");
    }

    #[test]
    fn numbers_in_sentences() {
        assert_eq!(Percent(91.4).to_string(), "91");
        assert_eq!(Percent(4.04).to_string(), "4.0");
        assert_eq!(Percent(0.0).to_string(), "0.0");
        assert_eq!(HumanBytes(512).to_string(), "512 B");
        assert_eq!(HumanBytes(4096).to_string(), "4.0 KiB");
        assert_eq!(HumanBytes(1_500_000).to_string(), "1.4 MiB");
        assert_eq!(HumanBytes(3 << 30).to_string(), "3.0 GiB");
    }
}
