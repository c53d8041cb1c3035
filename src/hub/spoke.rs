//! Spokes as the hub sees them: where to poll, the tag their points get, and the state of each
//! (up, down, never polled), with the figures of `pocketses status` and `/metrics`
//! (`pocketses_hub_*`). \[pure\]: time is passed in.

use serde::{Deserialize, Serialize};

use crate::metrics::encode::prometheus::{Family, Kind, Sample};

/// The tag key a hub puts on every point it forwards, with the spoke's `HOST:PORT` as value.
pub const TAG: &str = "spoke";

/// Where a spoke is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spoke {
    /// The URL as configured (`hub.spokes`).
    pub url: String,
    /// What is polled: `URL/v1/metrics` for a URL without a path, else the URL itself.
    pub poll: String,
    /// The spoke's name, `HOST:PORT` (or `HOST`) of the URL: the value of its [`TAG`].
    pub name: String,
}

impl Spoke {
    /// The spoke of a `hub.spokes` URL (checked by `config`: `http://` or `https://` with a host).
    pub fn new(url: &str) -> Spoke {
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        let name = authority.rsplit_once('@').map_or(authority, |(_, host)| host).to_string();
        let path_empty = rest[end..].is_empty() || &rest[end..] == "/";
        let poll = if path_empty {
            format!("{}/v1/metrics", url.trim_end_matches('/'))
        } else {
            url.to_string()
        };
        Spoke { url: url.to_string(), poll, name }
    }
}

/// How a spoke is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Not polled yet.
    Waiting,
    /// The last poll brought a document.
    Up,
    /// The last poll failed.
    Down,
}

impl State {
    /// The word for status and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Up => "up",
            State::Down => "down",
        }
    }
}

/// The figures of one spoke: `pocketses status`, the control socket's `state`, `/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SpokeStatus {
    /// `HOST:PORT`, the value of the `spoke` tag.
    pub name: String,
    /// What is polled, without credentials or query.
    pub url: String,
    /// Up, down, or waiting for its first poll.
    pub state: State,
    /// Polls that brought a document, since start.
    pub polls_ok: u64,
    /// Polls that failed (no answer, not 200, not a document), since start.
    pub polls_failed: u64,
    /// Snapshots forwarded to the sinks and on disk in every one's spool, since start.
    pub forwarded: u64,
    /// Polls that found the snapshot already forwarded (the spoke collects less often than the
    /// hub polls), since start.
    pub repeated: u64,
    /// When a poll last succeeded, seconds since the epoch.
    pub last_success: Option<u64>,
    /// The timestamp of the last snapshot forwarded, milliseconds since the epoch.
    pub last_snapshot_ms: Option<u64>,
    /// Why the last failed poll failed.
    pub last_error: Option<String>,
    /// When, seconds since the epoch.
    pub last_error_time: Option<u64>,
}

/// What one poll brought.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A document whose snapshot was taken at this time (seconds since the epoch).
    Snapshot(f64),
    /// No document, and why.
    Failed(String),
}

/// What a poll means for the sinks and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Forward the snapshot (it is newer than the last one forwarded).
    pub forward: bool,
    /// The state changed: log this line, once.
    pub log: Option<String>,
}

impl SpokeStatus {
    /// A spoke not polled yet.
    pub fn new(spoke: &Spoke) -> SpokeStatus {
        SpokeStatus {
            name: spoke.name.clone(),
            url: crate::push::client::redact(&spoke.poll),
            state: State::Waiting,
            polls_ok: 0,
            polls_failed: 0,
            forwarded: 0,
            repeated: 0,
            last_success: None,
            last_snapshot_ms: None,
            last_error: None,
            last_error_time: None,
        }
    }

    /// Takes one poll's outcome at `now_ms`: counts it, and says whether to forward the snapshot
    /// (only a newer one than the last stored: polling faster than the spoke collects must not
    /// send a snapshot twice) and what to log (only changes of state, never every failed poll).
    pub fn record(&mut self, outcome: &Outcome, now_ms: u64) -> Step {
        let before = self.state;
        match outcome {
            Outcome::Snapshot(timestamp) => {
                self.state = State::Up;
                self.polls_ok += 1;
                self.last_success = Some(now_ms / 1000);
                let ms = millis(*timestamp);
                // Counted as forwarded only once the sinks stored it ([`SpokeStatus::stored`]):
                // until then the same snapshot is forwarded again at the next poll.
                let forward = self.last_snapshot_ms.is_none_or(|last| ms > last);
                if !forward {
                    self.repeated += 1;
                }
                let log =
                    (before == State::Down).then(|| format!("spoke {} is up again", self.name));
                Step { forward, log }
            }
            Outcome::Failed(why) => {
                self.state = State::Down;
                self.polls_failed += 1;
                self.last_error = Some(why.clone());
                self.last_error_time = Some(now_ms / 1000);
                let log = (before != State::Down)
                    .then(|| format!("spoke {} is down: {why}; polling on", self.name));
                Step { forward: false, log }
            }
        }
    }
}

impl SpokeStatus {
    /// The snapshot taken at `timestamp` (seconds since the epoch), which [`SpokeStatus::record`]
    /// said to forward, is on disk in every sink's spool: counted, and never forwarded again.
    /// A snapshot the sinks could not store is not counted, so a later poll that brings it
    /// again forwards it again.
    pub fn stored(&mut self, timestamp: f64) {
        let ms = millis(timestamp);
        self.forwarded += 1;
        self.last_snapshot_ms = Some(self.last_snapshot_ms.map_or(ms, |last| last.max(ms)));
    }
}

fn millis(seconds: f64) -> u64 {
    if seconds.is_finite() && seconds > 0.0 {
        // Whole milliseconds of a time after the epoch; far-future values saturate.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let ms = (seconds * 1000.0).round() as u64;
        ms
    } else {
        0
    }
}

/// One line about a spoke for `pocketses status`:
/// `10.0.0.7:9188 up: last snapshot 3s ago, 120 forwarded, 2 failed polls`. \[pure\]
pub fn summary(s: &SpokeStatus, now_ms: u64) -> String {
    let ago = |ms: u64| format!("{}s ago", now_ms.saturating_sub(ms) / 1000);
    let last = s
        .last_snapshot_ms
        .map_or("no snapshot yet".to_string(), |t| format!("last snapshot {}", ago(t)));
    let mut line = format!(
        "{} {}: {last}, {} forwarded, {} failed polls",
        s.name,
        s.state.as_str(),
        s.forwarded,
        s.polls_failed
    );
    if s.state == State::Down {
        if let Some(err) = &s.last_error {
            line.push_str(&format!(" ({err})"));
        }
    }
    line
}

/// The figures of `POST /v1/ingest`, since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct IngestStatus {
    /// Whether ingest is on (`hub.ingest`).
    pub enabled: bool,
    /// Documents taken (answered 200: on disk in every sink's spool).
    pub documents: u64,
    /// Requests refused (bad document, too large, wrong type, ingest off, not stored).
    pub refused: u64,
}

/// The `pocketses_hub_*` families. \[pure\]
pub fn families(spokes: &[SpokeStatus], ingest: &IngestStatus) -> Vec<Family> {
    type Field = fn(&SpokeStatus) -> Option<f64>;
    let table: [(&str, &str, Kind, Field); 5] = [
        (
            "pocketses_hub_spoke_up",
            "Whether the spoke's last poll brought a document (1) or not (0).",
            Kind::Gauge,
            |s| Some(if s.state == State::Up { 1.0 } else { 0.0 }),
        ),
        (
            "pocketses_hub_spoke_polls_total",
            "Polls of the spoke that brought a document, since start.",
            Kind::Counter,
            |s| Some(s.polls_ok as f64),
        ),
        (
            "pocketses_hub_spoke_polls_failed_total",
            "Polls of the spoke that failed (no answer, an error status, not a document), since start.",
            Kind::Counter,
            |s| Some(s.polls_failed as f64),
        ),
        (
            "pocketses_hub_spoke_snapshots_forwarded_total",
            "Snapshots of the spoke on disk in every push sink's spool, since start.",
            Kind::Counter,
            |s| Some(s.forwarded as f64),
        ),
        (
            "pocketses_hub_spoke_last_success_timestamp_seconds",
            "When a poll of the spoke last brought a document.",
            Kind::Gauge,
            |s| s.last_success.map(|t| t as f64),
        ),
    ];
    let mut out: Vec<Family> = table
        .iter()
        .map(|(name, help, kind, field)| {
            let mut family = Family::new(name, help, *kind);
            family.samples = spokes
                .iter()
                .filter_map(|s| field(s).map(|v| Sample::with(&[(TAG, &s.name)], v)))
                .collect();
            family
        })
        .collect();
    if ingest.enabled || ingest.documents > 0 || ingest.refused > 0 {
        out.push(Family::single(
            "pocketses_hub_ingest_documents_total",
            "Documents taken by POST /v1/ingest (answered 200: on disk in every push sink's spool), since start.",
            Kind::Counter,
            ingest.documents as f64,
        ));
        out.push(Family::single(
            "pocketses_hub_ingest_refused_total",
            "Requests to POST /v1/ingest refused (bad document, too large, wrong type, not stored by a sink), since start.",
            Kind::Counter,
            ingest.refused as f64,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spoke_is_polled_at_v1_metrics_unless_its_url_has_a_path() {
        let table = [
            ("http://10.0.0.7:9188", "http://10.0.0.7:9188/v1/metrics", "10.0.0.7:9188"),
            ("http://10.0.0.7:9188/", "http://10.0.0.7:9188/v1/metrics", "10.0.0.7:9188"),
            ("https://dev1", "https://dev1/v1/metrics", "dev1"),
            ("http://u:p@dev2:80/other/doc.json", "http://u:p@dev2:80/other/doc.json", "dev2:80"),
            ("http://[::1]:9188", "http://[::1]:9188/v1/metrics", "[::1]:9188"),
            ("http://h:1?x=1", "http://h:1?x=1", "h:1"),
        ];
        for (url, poll, name) in table {
            let spoke = Spoke::new(url);
            assert_eq!((spoke.poll.as_str(), spoke.name.as_str()), (poll, name), "{url}");
        }
    }

    #[test]
    fn a_snapshot_is_forwarded_once_and_state_changes_are_logged_once() {
        let spoke = Spoke::new("http://d:9188");
        let mut s = SpokeStatus::new(&spoke);
        assert_eq!(s.state, State::Waiting);
        let up = s.record(&Outcome::Snapshot(100.0), 100_500);
        assert_eq!(up, Step { forward: true, log: None });
        s.stored(100.0);
        // The spoke has not collected since: the same snapshot is not sent twice.
        assert!(!s.record(&Outcome::Snapshot(100.0), 101_000).forward);
        assert_eq!(s.repeated, 1);
        let down = s.record(&Outcome::Failed("connection refused".into()), 102_000);
        assert_eq!(
            down.log.as_deref(),
            Some("spoke d:9188 is down: connection refused; polling on")
        );
        assert_eq!(s.record(&Outcome::Failed("connection refused".into()), 103_000).log, None);
        let back = s.record(&Outcome::Snapshot(104.0), 104_000);
        assert_eq!(back, Step { forward: true, log: Some("spoke d:9188 is up again".into()) });
        s.stored(104.0);
        assert_eq!((s.polls_ok, s.polls_failed, s.forwarded), (3, 2, 2));
        assert_eq!(s.last_success, Some(104));
        assert_eq!(s.last_error_time, Some(103));
        // An older snapshot (the spoke's clock went back) is not forwarded either.
        assert!(!s.record(&Outcome::Snapshot(90.0), 105_000).forward);
    }

    #[test]
    fn a_snapshot_the_sinks_did_not_store_is_forwarded_again() {
        let mut s = SpokeStatus::new(&Spoke::new("http://d:9188"));
        assert!(s.record(&Outcome::Snapshot(100.0), 100_000).forward);
        // The sinks could not spool it (a full disk): not counted, and the next poll, which
        // brings the same snapshot (the spoke has not collected since), forwards it again.
        assert!(s.record(&Outcome::Snapshot(100.0), 101_000).forward);
        assert_eq!((s.forwarded, s.repeated, s.last_snapshot_ms), (0, 0, None));
        s.stored(100.0);
        assert!(!s.record(&Outcome::Snapshot(100.0), 102_000).forward);
        assert_eq!((s.forwarded, s.repeated, s.last_snapshot_ms), (1, 1, Some(100_000)));
    }

    #[test]
    fn summary_says_state_and_why() {
        let mut s = SpokeStatus::new(&Spoke::new("http://d:9188"));
        assert_eq!(summary(&s, 0), "d:9188 waiting: no snapshot yet, 0 forwarded, 0 failed polls");
        s.record(&Outcome::Snapshot(10.0), 10_000);
        s.stored(10.0);
        s.record(&Outcome::Failed("no answer within 10 s".into()), 13_000);
        assert_eq!(
            summary(&s, 13_000),
            "d:9188 down: last snapshot 3s ago, 1 forwarded, 1 failed polls (no answer within 10 s)"
        );
    }

    #[test]
    fn families_per_spoke_and_for_ingest() {
        let mut up = SpokeStatus::new(&Spoke::new("http://a:1"));
        up.record(&Outcome::Snapshot(5.0), 5_000);
        let down = SpokeStatus::new(&Spoke::new("http://b:2"));
        let ingest = IngestStatus { enabled: true, documents: 3, refused: 1 };
        let mut fams = families(&[up, down], &ingest);
        let text = crate::metrics::encode::prometheus::write(&mut fams);
        assert!(text.contains("pocketses_hub_spoke_up{spoke=\"a:1\"} 1\n"), "{text}");
        assert!(text.contains("pocketses_hub_spoke_up{spoke=\"b:2\"} 0\n"), "{text}");
        assert!(
            text.contains("pocketses_hub_spoke_last_success_timestamp_seconds{spoke=\"a:1\"} 5\n")
        );
        assert!(!text.contains("last_success_timestamp_seconds{spoke=\"b:2\"}"), "{text}");
        assert!(text.contains("pocketses_hub_ingest_documents_total 3\n"), "{text}");
        assert!(text.contains("# TYPE pocketses_hub_spoke_polls_total counter\n"), "{text}");
        // No hub at all: no samples and no ingest families.
        let none = families(&[], &IngestStatus::default());
        assert!(none.iter().all(|f| f.samples.is_empty()));
        assert!(none.iter().all(|f| !f.name.contains("ingest")));
    }
}
