//! `snapd::Error`: what can go wrong talking to snapd, keeping snapd's own error kind.
//!
//! \[pure\] Callers match on [`Error::kind`] or the helpers (`is_not_found`, `is_retryable`), never on the text.

use std::path::PathBuf;
use std::time::Duration;

/// Error kinds snapd uses that pocketses reacts to (`snapd:client/errors.go`).
pub mod kind {
    /// The snap is not installed.
    pub const SNAP_NOT_FOUND: &str = "snap-not-found";
    /// A configuration key is not set.
    pub const OPTION_NOT_FOUND: &str = "option-not-found";
    /// No such assertion (no model or serial yet).
    pub const ASSERTION_NOT_FOUND: &str = "assertion-not-found";
    /// Another change touches the same snap.
    pub const SNAP_CHANGE_CONFLICT: &str = "snap-change-conflict";
    /// A snapctl command ran and exited non-zero; `value` holds stdout, stderr and exit-code.
    pub const UNSUCCESSFUL: &str = "unsuccessful";
    /// The caller is not allowed (missing root or authentication).
    pub const LOGIN_REQUIRED: &str = "login-required";
}

/// Errors from the snapd client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// snapd answered with an error envelope (`"type": "error"`).
    #[error("{message}")]
    Api {
        /// snapd's error kind (`snap-not-found`, `option-not-found`, …), absent for generic errors.
        kind: Option<String>,
        /// snapd's message, shown to the user as is.
        message: String,
        /// The HTTP status code (`status-code`).
        status: u16,
        /// snapd's `value`, when it gave one.
        value: Option<serde_json::Value>,
    },
    /// The socket could not be reached: snapd is not running, restarting, or the socket is not allowed.
    ///
    /// The message ends with the operating system's reason, so `cause` is not also exposed as
    /// [`std::error::Error::source`]: a chain printed with `{:#}` would name it twice.
    #[error("snapd is not reachable at {}: {cause}", socket.display())]
    Connect {
        /// The socket path.
        socket: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// snapd did not answer in time.
    #[error("snapd did not answer within {}s", after.as_secs_f32())]
    Timeout {
        /// The time limit that passed.
        after: Duration,
    },
    /// The HTTP exchange broke off (connection reset while snapd restarts, bad HTTP).
    #[error("cannot talk to snapd: {0}")]
    Http(String),
    /// snapd's reply is not what its API promises.
    #[error("cannot decode snapd response: {0}")]
    Decode(String),
}

impl Error {
    /// snapd's error kind, when snapd gave one.
    pub fn kind(&self) -> Option<&str> {
        match self {
            Error::Api { kind, .. } => kind.as_deref(),
            _ => None,
        }
    }

    /// Whether snapd answered with this error kind.
    pub fn is_kind(&self, want: &str) -> bool {
        self.kind() == Some(want)
    }

    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A 404 or one of the "not found" kinds.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
            || matches!(
                self.kind(),
                Some(kind::SNAP_NOT_FOUND | kind::OPTION_NOT_FOUND | kind::ASSERTION_NOT_FOUND)
            )
    }

    /// The socket is absent, refused or the exchange broke: worth retrying with backoff (snapd restarting).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Connect { .. } | Error::Timeout { .. } | Error::Http(_))
    }

    /// The caller may not use this socket or endpoint: AppArmor refusing /run/snapd.socket to a
    /// strict snap without `snapd-control`, or snapd answering 401/403.
    pub fn is_permission_denied(&self) -> bool {
        match self {
            Error::Connect { cause, .. } => cause.kind() == std::io::ErrorKind::PermissionDenied,
            Error::Api { status, .. } => matches!(status, 401 | 403),
            _ => false,
        }
    }

    /// The socket could not be reached at all.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::Connect { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_names_the_cause_once() {
        let err = Error::Connect {
            socket: "/run/snapd.socket".into(),
            cause: std::io::Error::from_raw_os_error(2),
        };
        assert!(std::error::Error::source(&err).is_none());
        let chain = format!("{:#}", anyhow::Error::new(err).context("cannot get the model"));
        assert_eq!(
            chain,
            "cannot get the model: snapd is not reachable at /run/snapd.socket: \
             No such file or directory (os error 2)"
        );
    }

    fn api(kind: Option<&str>, status: u16) -> Error {
        Error::Api { kind: kind.map(str::to_string), message: "m".to_string(), status, value: None }
    }

    #[test]
    fn kinds_are_matchable() {
        let err = api(Some(kind::SNAP_CHANGE_CONFLICT), 409);
        assert!(err.is_kind("snap-change-conflict"));
        assert_eq!(err.status(), Some(409));
        assert!(!err.is_not_found());
        assert!(!err.is_retryable());
        assert!(api(Some(kind::OPTION_NOT_FOUND), 400).is_not_found());
        assert!(api(None, 404).is_not_found());
    }

    #[test]
    fn transport_errors_are_retryable() {
        let err = Error::Connect {
            socket: "/run/snapd.socket".into(),
            cause: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        assert!(err.is_retryable());
        assert!(err.is_unreachable());
        assert!(err.to_string().starts_with("snapd is not reachable at /run/snapd.socket"));
        assert!(Error::Timeout { after: Duration::from_secs(5) }.is_retryable());
        let denied = Error::Connect {
            socket: "/run/snapd.socket".into(),
            cause: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert!(denied.is_permission_denied());
        assert!(api(Some(kind::LOGIN_REQUIRED), 403).is_permission_denied());
        assert!(!api(None, 404).is_permission_denied());
        assert_eq!(Error::Timeout { after: Duration::from_secs(5) }.kind(), None);
    }
}
