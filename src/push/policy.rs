//! What a sink does after each answer of its store. \[pure\]: status codes, headers and time in,
//! decisions out; the sender (`push::sink`) does the waiting and the files.
//!
//! | answer | [`Verdict`] | what happens to the batch |
//! |---|---|---|
//! | 2xx | [`Verdict::Ack`] | acknowledged: leaves the spool |
//! | 400, 422 | [`Verdict::Reject`] | moved to `rejected/` with the store's message, counted, acknowledged |
//! | 413 | [`Verdict::Split`] | sent again in halves; a single record too large is rejected |
//! | 429, 503 | [`Verdict::RetryAfter`] (or [`Verdict::Backoff`] without a usable `Retry-After`) | kept, sent again later |
//! | 401, 403 | [`Verdict::Unauthorized`] | kept; said once per change of state |
//! | anything else, no answer | [`Verdict::Backoff`] | kept; 1 s doubling to 5 min, with jitter |
//!
//! Redirects are not followed (a 3xx is a failure like a 5xx): a store that moved is a
//! configuration to fix, and following one would send credentials to another host.

use std::time::Duration;

/// The first wait after a failure.
pub const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between two attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// The longest `Retry-After` honoured; a store asking for more is asked again after this.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(3600);
/// Successful requests in a row after which a batch size halved by a 413 doubles again.
pub const GROW_AFTER: u32 = 16;
/// How much of a store's error message is kept (logs, status, `rejected/`).
pub const MESSAGE_MAX: usize = 512;

/// What to do with a batch after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered: acknowledge the batch.
    Ack,
    /// The store refuses the data itself: set it aside with this message and go on.
    Reject(String),
    /// Too large: send fewer records per request.
    Split,
    /// The store asked to come back after this long.
    RetryAfter(Duration),
    /// Credentials refused: keep the data, wait, try again.
    Unauthorized,
    /// Any other failure: keep the data, wait, try again.
    Backoff,
}

/// Classifies an answer: `status`, its `Retry-After` header when present, and its body.
pub fn classify(status: u16, retry_after: Option<&str>, now_secs: u64, body: &str) -> Verdict {
    match status {
        200..=299 => Verdict::Ack,
        400 | 422 => Verdict::Reject(message(status, body)),
        413 => Verdict::Split,
        401 | 403 => Verdict::Unauthorized,
        429 | 503 => match retry_after.and_then(|v| parse_retry_after(v, now_secs)) {
            Some(wait) => Verdict::RetryAfter(wait),
            None => Verdict::Backoff,
        },
        _ => Verdict::Backoff,
    }
}

/// The store's message, on one line and at most [`MESSAGE_MAX`] bytes: `400: unable to parse …`.
pub fn message(status: u16, body: &str) -> String {
    let flat: String =
        body.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(MESSAGE_MAX).collect();
    if flat.is_empty() {
        format!("{status}")
    } else {
        format!("{status}: {flat}")
    }
}

/// `Retry-After`: delay-seconds, or an HTTP date (IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`)
/// compared with `now_secs`. At least 1 s (never a busy loop), at most [`RETRY_AFTER_MAX`].
/// `None` when the value is neither.
pub fn parse_retry_after(value: &str, now_secs: u64) -> Option<Duration> {
    let value = value.trim();
    let secs = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        value.parse::<u64>().unwrap_or(u64::MAX)
    } else {
        http_date(value)?.saturating_sub(now_secs)
    };
    Some(Duration::from_secs(secs.clamp(1, RETRY_AFTER_MAX.as_secs())))
}

/// Seconds since the epoch of an IMF-fixdate. \[pure\]
fn http_date(value: &str) -> Option<u64> {
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    let rest = value.split_once(", ")?.1;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts.as_slice() else { return None };
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| m == month)? as u64 + 1;
    let day: u64 = day.parse().ok()?;
    let year: u64 = year.parse().ok()?;
    let hms: Vec<u64> = time.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else { return None };
    if !(1..=31).contains(&day) || year < 1970 || *h > 23 || *m > 59 || *s > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
/// algorithm), for years from 1970.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).saturating_sub(719_468)
}

/// Exponential backoff with jitter: the n-th wait in a row is `1 s × 2ⁿ`, at most 5 minutes,
/// of which a random part (the upper half) is taken, so that devices cut off together do not
/// come back together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    /// The wait before the next attempt; `random` in `[0, 1)` picks the jitter.
    pub fn next(&mut self, random: f64) -> Duration {
        let ceiling = BACKOFF_FIRST
            .checked_mul(1u32.checked_shl(self.failures).unwrap_or(u32::MAX))
            .unwrap_or(BACKOFF_MAX)
            .min(BACKOFF_MAX);
        self.failures = self.failures.saturating_add(1);
        ceiling.mul_f64(0.5 + 0.5 * random.clamp(0.0, 1.0))
    }

    /// Failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// After a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// How many records go into the next request: the configured batch, halved by each 413 and
/// doubled back after [`GROW_AFTER`] successes in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizer {
    configured: usize,
    limit: usize,
    streak: u32,
}

impl Sizer {
    /// A sizer for `batch` records per request.
    pub fn new(batch: usize) -> Self {
        let batch = batch.max(1);
        Sizer { configured: batch, limit: batch, streak: 0 }
    }

    /// Records to take for the next request.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The store answered 413 to `sent` records: `true` when a smaller request is possible,
    /// `false` when a single record is already too large.
    pub fn too_large(&mut self, sent: usize) -> bool {
        self.streak = 0;
        if sent <= 1 {
            return false;
        }
        self.limit = sent.div_ceil(2).min(self.limit).max(1);
        true
    }

    /// A request succeeded.
    pub fn success(&mut self) {
        if self.limit == self.configured {
            return;
        }
        self.streak += 1;
        if self.streak >= GROW_AFTER {
            self.streak = 0;
            self.limit = (self.limit * 2).min(self.configured);
        }
    }
}

/// What a sink is doing, as `status` says it; a change of state is logged once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    /// The last attempt succeeded (or none was needed yet).
    Ok,
    /// The store refuses the credentials (401/403).
    Unauthorized,
    /// The store asked to wait (429/503 with `Retry-After`).
    Throttled,
    /// The store is unreachable or failing; retrying with backoff.
    Failing,
    /// The sink is configured with `enabled=false`: spooling and sending stopped.
    Disabled,
}

impl Health {
    /// `ok`, `unauthorized`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Unauthorized => "unauthorized",
            Health::Throttled => "throttled",
            Health::Failing => "failing",
            Health::Disabled => "disabled",
        }
    }

    /// The state after `verdict`.
    pub fn after(self, verdict: &Verdict) -> Health {
        match verdict {
            Verdict::Ack | Verdict::Reject(_) | Verdict::Split => Health::Ok,
            Verdict::RetryAfter(_) => Health::Throttled,
            Verdict::Unauthorized => Health::Unauthorized,
            Verdict::Backoff => Health::Failing,
        }
    }
}

/// Whether a snapshot taken at `timestamp` goes to a sink with `interval` whose last spooled
/// snapshot was taken at `last`. Half a second of slack absorbs collection jitter, so an interval
/// equal to the daemon's takes every snapshot.
pub fn due(last: Option<f64>, timestamp: f64, interval: Option<u32>) -> bool {
    match (last, interval) {
        (Some(last), Some(interval)) => timestamp - last >= f64::from(interval) - 0.5,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_decide_as_the_stores_define_them() {
        let c = |status, retry| classify(status, retry, 1000, "bad line");
        assert_eq!(c(200, None), Verdict::Ack);
        assert_eq!(c(204, None), Verdict::Ack);
        assert_eq!(c(299, None), Verdict::Ack);
        assert_eq!(c(400, None), Verdict::Reject("400: bad line".into()));
        assert_eq!(c(422, None), Verdict::Reject("422: bad line".into()));
        assert_eq!(c(413, None), Verdict::Split);
        assert_eq!(c(401, None), Verdict::Unauthorized);
        assert_eq!(c(403, Some("5")), Verdict::Unauthorized);
        assert_eq!(c(429, Some("7")), Verdict::RetryAfter(Duration::from_secs(7)));
        assert_eq!(c(503, Some("2")), Verdict::RetryAfter(Duration::from_secs(2)));
        assert_eq!(c(429, None), Verdict::Backoff);
        assert_eq!(c(503, Some("soon")), Verdict::Backoff);
        for status in [301, 302, 307, 308, 404, 405, 500, 502, 504, 100] {
            assert_eq!(c(status, Some("3")), Verdict::Backoff, "{status}");
        }
    }

    #[test]
    fn messages_are_one_bounded_line() {
        assert_eq!(message(400, ""), "400");
        assert_eq!(
            message(400, "{\"error\":\"unable to parse\n'x y'\"}\n"),
            "400: {\"error\":\"unable to parse 'x y'\"}"
        );
        assert_eq!(message(400, &"é".repeat(2000)).chars().count(), MESSAGE_MAX + 5);
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        assert_eq!(parse_retry_after("120", 0), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", 0), Some(Duration::from_secs(1)), "never zero");
        assert_eq!(parse_retry_after("99999999999999999999", 0), Some(RETRY_AFTER_MAX));
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(http_date(date), Some(784_111_777));
        assert_eq!(parse_retry_after(date, 784_111_777 - 30), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after(date, 784_111_777 + 30), Some(Duration::from_secs(1)));
        assert_eq!(http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(http_date("Tue, 29 Feb 2028 23:59:59 GMT"), Some(1_835_481_599));
        for bad in [
            "",
            "-5",
            "1.5",
            "soon",
            "Sun, 06 Nov 1994 08:49:37 CET",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, 0), None, "{bad:?}");
        }
    }

    #[test]
    fn backoff_doubles_from_one_second_to_five_minutes_with_jitter() {
        let mut top = Backoff::default();
        let ceilings: Vec<u64> = (0..12).map(|_| top.next(1.0).as_secs()).collect();
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        let mut low = Backoff::default();
        let floors: Vec<u128> = (0..3).map(|_| low.next(0.0).as_millis()).collect();
        assert_eq!(floors, [500, 1000, 2000]);
        assert_eq!(low.failures(), 3);
        low.reset();
        assert_eq!(low.next(0.0), Duration::from_millis(500));
        // Far into an outage, nothing overflows.
        let mut long = Backoff { failures: u32::MAX - 1 };
        assert_eq!(long.next(1.0), BACKOFF_MAX);
        assert_eq!(long.next(1.0), BACKOFF_MAX);
    }

    #[test]
    fn a_413_halves_the_batch_which_grows_back_slowly() {
        let mut sizer = Sizer::new(60);
        assert_eq!(sizer.limit(), 60);
        assert!(sizer.too_large(60));
        assert_eq!(sizer.limit(), 30);
        assert!(sizer.too_large(30));
        assert!(sizer.too_large(15));
        assert_eq!(sizer.limit(), 8);
        // A short batch (the backlog's tail) that is too large halves from its own size.
        assert!(sizer.too_large(3));
        assert_eq!(sizer.limit(), 2);
        assert!(sizer.too_large(2));
        assert_eq!(sizer.limit(), 1);
        assert!(!sizer.too_large(1), "one record cannot be split");
        for _ in 0..GROW_AFTER - 1 {
            sizer.success();
        }
        assert_eq!(sizer.limit(), 1);
        sizer.success();
        assert_eq!(sizer.limit(), 2);
        for _ in 0..10 * GROW_AFTER {
            sizer.success();
        }
        assert_eq!(sizer.limit(), 60, "never past the configured batch");
        assert_eq!(Sizer::new(0).limit(), 1);
    }

    #[test]
    fn health_follows_the_last_verdict() {
        assert_eq!(Health::Ok.after(&Verdict::Unauthorized), Health::Unauthorized);
        assert_eq!(Health::Unauthorized.after(&Verdict::Unauthorized), Health::Unauthorized);
        assert_eq!(Health::Unauthorized.after(&Verdict::Ack), Health::Ok);
        assert_eq!(Health::Ok.after(&Verdict::Backoff), Health::Failing);
        assert_eq!(Health::Failing.after(&Verdict::RetryAfter(BACKOFF_FIRST)), Health::Throttled);
        assert_eq!(Health::Failing.after(&Verdict::Reject("x".into())), Health::Ok);
        assert_eq!(Health::Throttled.as_str(), "throttled");
    }

    #[test]
    fn interval_picks_snapshots() {
        assert!(due(None, 100.0, Some(60)));
        assert!(due(Some(100.0), 101.0, None));
        assert!(!due(Some(100.0), 101.0, Some(2)));
        assert!(due(Some(100.0), 102.0, Some(2)));
        assert!(due(Some(100.0), 101.6, Some(2)), "collection jitter");
        assert!(due(Some(100.0), 100.9, Some(1)));
    }
}
