//! Connection limits as values: who a connection counts against, why one was refused, and
//! when a refusal is worth a log line. \[pure\]
//!
//! Nothing here touches a socket or reads the clock: [`super::listen`] passes addresses and
//! instants in and acts on the answers.
//! Refusals are counted per listener and reason ([`Refusals`], `pocketses_connections_refused_total`)
//! and logged at most once per source per [`LOG_EVERY`] ([`RefusalLog`]), so a flood of refused
//! connections can neither fill the journal nor hide in it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::listen::Kind;

/// Default of `http.max-connections`: HTTP connections open at once.
pub const MAX_CONNECTIONS: usize = 512;
/// Default of `http.max-sse`: SSE streams open at once.
pub const MAX_SSE: usize = 256;
/// Default of `limits.per-source`: connections one source may hold, both listeners together.
pub const PER_SOURCE: usize = 64;
/// A refused source is logged at most once within this time.
pub const LOG_EVERY: Duration = Duration::from_secs(60);
/// Sources remembered by [`RefusalLog`]; beyond it, the others share one log line per minute.
pub const LOG_SOURCES: usize = 4096;

/// The limits of the listeners (`http.max-connections`, `http.max-sse`, `limits.per-source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// HTTP connections open at once; when full, the oldest idle one makes room for a newcomer.
    pub max_connections: usize,
    /// SSE streams open at once, apart from stream subscribers and scrapes.
    pub max_sse: usize,
    /// Connections one source holds at once, on both listeners together.
    pub per_source: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_connections: MAX_CONNECTIONS, max_sse: MAX_SSE, per_source: PER_SOURCE }
    }
}

impl Limits {
    /// SSE streams admitted: `max_sse`, but never more than three quarters of the HTTP
    /// connections, so that a quarter is always left for scrapes. \[pure\]
    pub fn sse_cap(&self) -> usize {
        self.max_sse.min(self.max_connections - self.max_connections / 4)
    }
}

/// Why a connection was refused; the `reason` label of `pocketses_connections_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The source already holds `limits.per-source` connections.
    PerSource,
    /// `http.max-connections` reached and no idle connection to close instead.
    MaxConnections,
    /// `http.max-sse` reached.
    MaxSse,
    /// `publish.max-subscribers` reached.
    MaxSubscribers,
    /// No file descriptor left.
    Descriptors,
    /// No or wrong credentials (token, user, client certificate).
    Unauthorized,
    /// The TLS handshake failed.
    Tls,
}

impl Reason {
    /// Every reason, in label order.
    pub const ALL: [Reason; 7] = [
        Reason::PerSource,
        Reason::MaxConnections,
        Reason::MaxSse,
        Reason::MaxSubscribers,
        Reason::Descriptors,
        Reason::Unauthorized,
        Reason::Tls,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::PerSource => "per-source",
            Reason::MaxConnections => "max-connections",
            Reason::MaxSse => "max-sse",
            Reason::MaxSubscribers => "max-subscribers",
            Reason::Descriptors => "no-descriptor",
            Reason::Unauthorized => "unauthorized",
            Reason::Tls => "tls",
        }
    }

    /// What the log says.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::PerSource => "too many connections from this source (limits.per-source)",
            Reason::MaxConnections => "too many HTTP connections (http.max-connections)",
            Reason::MaxSse => "too many SSE streams (http.max-sse)",
            Reason::MaxSubscribers => "too many subscribers (publish.max-subscribers)",
            Reason::Descriptors => "out of file descriptors",
            Reason::Unauthorized => "no or wrong credentials",
            Reason::Tls => "TLS handshake failed",
        }
    }
}

/// Refusal counters, one per listener and reason.
#[derive(Debug, Default)]
pub struct Refusals {
    counts: [[AtomicU64; Reason::ALL.len()]; 2],
}

impl Refusals {
    /// Counts one refusal.
    pub fn add(&self, kind: Kind, reason: Reason) {
        self.counts[kind as usize][reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Refusals of one listener for one reason so far.
    pub fn get(&self, kind: Kind, reason: Reason) -> u64 {
        self.counts[kind as usize][reason as usize].load(Ordering::Relaxed)
    }

    /// Every (listener, reason, count), zeros included so that the series exist from the start.
    pub fn all(&self) -> Vec<(Kind, Reason, u64)> {
        [Kind::Tcp, Kind::Http]
            .into_iter()
            .flat_map(|kind| Reason::ALL.into_iter().map(move |reason| (kind, reason)))
            .map(|(kind, reason)| (kind, reason, self.get(kind, reason)))
            .collect()
    }

    /// All refusals of every kind.
    pub fn total(&self) -> u64 {
        self.all().iter().map(|(_, _, n)| n).sum()
    }
}

/// What a connection counts against for `limits.per-source`. \[pure\]
///
/// An IPv4 address is one source; an IPv6 address counts with its /64, since a single host is
/// routinely given a whole /64; an IPv4-mapped IPv6 address is its IPv4 address.
pub fn source(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Decides which refusals are logged: one line per source per [`LOG_EVERY`], saying how many
/// were refused meanwhile without a line. \[pure\]
#[derive(Debug, Default)]
pub struct RefusalLog {
    seen: HashMap<IpAddr, Seen>,
    /// When full, forgotten entries are swept at most once a second, not on every refusal.
    swept: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    logged: Instant,
    quiet: u64,
}

impl RefusalLog {
    /// Records a refusal of `source` at `now`; `Some(n)` when it is to be logged, `n` being the
    /// refusals of that source left unlogged since its last line.
    ///
    /// At most [`LOG_SOURCES`] sources are remembered; when that many were refused within a
    /// minute, the others share the unspecified address's entry (logged as "other sources").
    pub fn note(&mut self, source: IpAddr, now: Instant) -> Option<u64> {
        let due =
            self.swept.is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1));
        if due && !self.seen.contains_key(&source) && self.seen.len() >= LOG_SOURCES {
            self.seen.retain(|_, seen| now.saturating_duration_since(seen.logged) < LOG_EVERY);
            self.swept = Some(now);
        }
        let key = if self.seen.contains_key(&source) || self.seen.len() < LOG_SOURCES {
            source
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        };
        match self.seen.get_mut(&key) {
            Some(seen) if now.saturating_duration_since(seen.logged) < LOG_EVERY => {
                seen.quiet += 1;
                None
            }
            Some(seen) => {
                let quiet = seen.quiet;
                *seen = Seen { logged: now, quiet: 0 };
                Some(quiet)
            }
            None => {
                self.seen.insert(key, Seen { logged: now, quiet: 0 });
                Some(0)
            }
        }
    }

    /// Sources remembered now.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no source is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn sources() {
        for (addr, want) in [
            ("192.0.2.7", "192.0.2.7"),
            ("::ffff:192.0.2.7", "192.0.2.7"),
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"),
            ("2001:db8:1:2::9", "2001:db8:1:2::"),
            ("::1", "::"),
        ] {
            assert_eq!(source(ip(addr)), ip(want), "{addr}");
        }
    }

    #[test]
    fn a_source_is_logged_once_per_minute_with_what_was_left_out() {
        let mut log = RefusalLog::default();
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        assert_eq!(log.note(a, t0), Some(0));
        for i in 1..=1000 {
            assert_eq!(log.note(a, t0 + Duration::from_millis(i)), None, "{i}");
        }
        assert_eq!(log.note(a, t0 + LOG_EVERY - Duration::from_millis(1)), None);
        assert_eq!(log.note(a, t0 + LOG_EVERY), Some(1001));
        assert_eq!(log.note(a, t0 + LOG_EVERY), None);
    }

    #[test]
    fn sources_are_logged_apart() {
        let mut log = RefusalLog::default();
        let t0 = Instant::now();
        assert_eq!(log.note(ip("192.0.2.1"), t0), Some(0));
        assert_eq!(log.note(ip("192.0.2.2"), t0), Some(0));
        assert_eq!(log.note(ip("192.0.2.1"), t0), None);
    }

    #[test]
    fn many_sources_share_one_line_and_memory_stays_bounded() {
        let mut log = RefusalLog::default();
        let t0 = Instant::now();
        let many = |i: usize| {
            IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + u32::try_from(i).unwrap()))
        };
        let logged = (0..LOG_SOURCES * 3).filter(|&i| log.note(many(i), t0).is_some()).count();
        // Each remembered source once, then one line for all the others.
        assert_eq!(logged, LOG_SOURCES + 1);
        assert!(log.len() <= LOG_SOURCES + 1);
        // A minute later the old entries make room again.
        let later = t0 + LOG_EVERY;
        assert_eq!(log.note(many(LOG_SOURCES * 5), later), Some(0));
        assert!(log.len() <= LOG_SOURCES + 1);
    }

    #[test]
    fn sse_never_takes_the_scrapes_quarter() {
        assert_eq!(Limits::default().sse_cap(), 256);
        let limits = Limits { max_connections: 100, max_sse: 1000, per_source: 1 };
        assert_eq!(limits.sse_cap(), 75);
    }

    #[test]
    fn refusals_are_counted_per_listener_and_reason() {
        let refusals = Refusals::default();
        refusals.add(Kind::Http, Reason::PerSource);
        refusals.add(Kind::Http, Reason::PerSource);
        refusals.add(Kind::Tcp, Reason::Descriptors);
        assert_eq!(refusals.get(Kind::Http, Reason::PerSource), 2);
        assert_eq!(refusals.get(Kind::Tcp, Reason::PerSource), 0);
        assert_eq!(refusals.total(), 3);
        assert_eq!(refusals.all().len(), 14);
    }
}
