//! Who may read: the bearer token (`http.token`), basic-auth users with bcrypt hashes
//! (`http.users.<name>`), and the stream's `AUTH <token>` line. \[pure\]
//!
//! Decisions only: the listeners pass in what a client presented and act on the answer.
//! Secrets are compared in constant time (over SHA-256 digests, so that their lengths do not
//! leak either), and never logged.
//! bcrypt is deliberately slow (a hundred milliseconds at cost 12), so [`verify_user`] is CPU
//! work that the HTTP listener runs off the async workers, and remembers for scrapers that
//! present the same credentials every few seconds.

use std::collections::BTreeMap;

use base64::Engine;
use sha2::{Digest, Sha256};

/// The credentials a listener accepts. Empty means no authentication (the default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// `http.token`: `Authorization: Bearer <token>` on HTTP, `AUTH <token>` on the stream.
    pub token: Option<String>,
    /// `http.users.<name>`: user name → bcrypt hash, for `Authorization: Basic` on HTTP.
    pub users: BTreeMap<String, String>,
}

impl Credentials {
    /// Whether anything is asked of clients.
    pub fn required(&self) -> bool {
        self.token.is_some() || !self.users.is_empty()
    }
}

/// What a client presented in its `Authorization` header. \[pure\]
#[derive(Debug, PartialEq, Eq)]
pub enum Presented {
    /// No header.
    Nothing,
    /// `Bearer <token>`.
    Bearer(String),
    /// `Basic base64(user:password)`.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
    /// A header we cannot read.
    Malformed,
}

/// Reads an `Authorization` header value. \[pure\]
pub fn presented(header: Option<&[u8]>) -> Presented {
    let Some(header) = header else { return Presented::Nothing };
    let Ok(text) = std::str::from_utf8(header) else { return Presented::Malformed };
    let (scheme, rest) = text.trim().split_once(' ').unwrap_or((text, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        return Presented::Bearer(rest.to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest);
        if let Some((user, password)) = decoded
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| text.split_once(':').map(|(u, p)| (u.to_string(), p.to_string())))
        {
            return Presented::Basic { user, password };
        }
    }
    Presented::Malformed
}

/// Whether `given` is the token, in time independent of where they differ. \[pure\]
pub fn token_matches(expected: &str, given: &[u8]) -> bool {
    let a = Sha256::digest(expected.as_bytes());
    let b = Sha256::digest(given);
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// How a presented credential is checked. \[pure\]
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    /// Accepted.
    Allow,
    /// Refused.
    Deny,
    /// A bcrypt verification of `password` against `hash` decides (slow: run it off the workers).
    Bcrypt {
        /// The user's hash from `http.users`.
        hash: String,
        /// What the client sent.
        password: String,
    },
}

/// Checks what a client presented against `credentials` (which must be [`Credentials::required`]). \[pure\]
pub fn check(credentials: &Credentials, presented: Presented) -> Check {
    match presented {
        Presented::Bearer(token) => match &credentials.token {
            Some(expected) if token_matches(expected, token.as_bytes()) => Check::Allow,
            _ => Check::Deny,
        },
        Presented::Basic { user, password } => match credentials.users.get(&user) {
            Some(hash) => Check::Bcrypt { hash: hash.clone(), password },
            None => Check::Deny,
        },
        Presented::Nothing | Presented::Malformed => Check::Deny,
    }
}

/// bcrypt verification; a malformed hash never matches. CPU-bound, about 2^cost rounds.
pub fn verify_user(password: &str, hash: &str) -> bool {
    bcrypt::verify(password, hash).unwrap_or(false)
}

/// A key for remembering a successful bcrypt check without keeping the password. \[pure\]
pub fn remembered(hash: &str, password: &str) -> [u8; 32] {
    let mut digest = Sha256::new();
    digest.update(hash.as_bytes());
    digest.update([0]);
    digest.update(password.as_bytes());
    digest.finalize().into()
}

/// Longest first line the stream reads while waiting for `AUTH <token>`.
pub const AUTH_LINE_MAX: usize = 1024;

/// Whether the stream's first line (without its newline) carries the token. \[pure\]
pub fn auth_line_matches(expected: &str, line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match line.strip_prefix(b"AUTH ") {
        Some(token) => token_matches(expected, token),
        None => false,
    }
}

/// Whether a bcrypt hash is one `http.users` accepts (`$2a$`, `$2b$` or `$2y$`, cost 4 to 31). \[pure\]
pub fn valid_hash(hash: &str) -> bool {
    let parts: Vec<&str> = hash.split('$').collect();
    matches!(parts.as_slice(), ["", "2a" | "2b" | "2y", cost, rest]
        if cost.len() == 2
            && cost.parse::<u32>().is_ok_and(|c| (4..=31).contains(&c))
            && rest.len() == 53)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        // Cost 4: the smallest bcrypt allows, so the tests stay quick.
        let hash = bcrypt::hash_with_result("s3cret", 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        Credentials {
            token: Some("tok".to_string()),
            users: BTreeMap::from([("alice".to_string(), hash)]),
        }
    }

    fn basic(user_pass: &str) -> Vec<u8> {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_pass))
            .into_bytes()
    }

    #[test]
    fn headers() {
        assert_eq!(presented(None), Presented::Nothing);
        assert_eq!(presented(Some(b"Bearer abc")), Presented::Bearer("abc".into()));
        assert_eq!(presented(Some(b"bearer  abc ")), Presented::Bearer("abc".into()));
        assert_eq!(
            presented(Some(&basic("alice:pa:ss"))),
            Presented::Basic { user: "alice".into(), password: "pa:ss".into() }
        );
        for bad in [&b"Bearer"[..], b"Basic !!!", b"Digest x", b"\xff", b"Basic YWxpY2U="] {
            assert_eq!(presented(Some(bad)), Presented::Malformed, "{bad:?}");
        }
    }

    #[test]
    fn tokens() {
        let creds = creds();
        assert_eq!(check(&creds, Presented::Bearer("tok".into())), Check::Allow);
        assert_eq!(check(&creds, Presented::Bearer("to".into())), Check::Deny);
        assert_eq!(check(&creds, Presented::Bearer("tokk".into())), Check::Deny);
        assert_eq!(check(&creds, Presented::Nothing), Check::Deny);
        assert_eq!(check(&creds, Presented::Malformed), Check::Deny);
        let no_token = Credentials { token: None, ..creds };
        assert_eq!(check(&no_token, Presented::Bearer("tok".into())), Check::Deny);
    }

    #[test]
    fn users() {
        let creds = creds();
        let Check::Bcrypt { hash, password } =
            check(&creds, presented(Some(&basic("alice:s3cret"))))
        else {
            panic!("alice is a user")
        };
        assert!(verify_user(&password, &hash));
        assert!(!verify_user("wrong", &hash));
        assert!(!verify_user("s3cret", "not a hash"));
        assert_eq!(check(&creds, presented(Some(&basic("bob:s3cret")))), Check::Deny);
        assert_ne!(remembered(&hash, "a"), remembered(&hash, "b"));
    }

    #[test]
    fn required_only_with_something_to_check() {
        assert!(!Credentials::default().required());
        assert!(creds().required());
    }

    #[test]
    fn auth_lines() {
        assert!(auth_line_matches("tok", b"AUTH tok"));
        assert!(auth_line_matches("tok", b"AUTH tok\r"));
        for bad in [&b"AUTH tok "[..], b"auth tok", b"AUTH", b"AUTH to", b"", b"tok"] {
            assert!(!auth_line_matches("tok", bad), "{bad:?}");
        }
    }

    #[test]
    fn hashes() {
        let good = creds().users["alice"].clone();
        assert!(valid_hash(&good), "{good}");
        assert!(valid_hash(&good.replacen("$2y$", "$2b$", 1)));
        for bad in ["", "plain", "$2y$3$x", "$1$04$abc", &good[..good.len() - 1]] {
            assert!(!valid_hash(bad), "{bad}");
        }
    }
}
