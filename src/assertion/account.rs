//! Typed views of `account` and `account-key` assertions, with snapd's checks. \[pure\]
//!
//! Room is left for `serial` and `validation-set` views next to these; they follow the same
//! pattern (a struct read from [`Assertion`] headers, errors in snapd's words).

use super::openpgp::PublicKey;
use super::time::Timestamp;
use super::{not_empty_str, quote, Assertion, Value};

/// Why an assertion is not a valid account or account-key (snapd's message, prefixed like snapd).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("assertion {kind}: {message}")]
pub struct ViewError {
    /// `account` or `account-key`.
    pub kind: &'static str,
    /// snapd's message.
    pub message: String,
}

fn date(a: &Assertion, name: &str, kind: &'static str) -> Result<Timestamp, ViewError> {
    let s = not_empty_str(a.headers(), name).map_err(|message| ViewError { kind, message })?;
    Timestamp::parse(s).map_err(|e| ViewError {
        kind,
        message: format!("{} header is not a RFC3339 date: {e}", quote(name)),
    })
}

/// An `account` assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// `account-id`.
    pub account_id: String,
    /// `display-name`.
    pub display_name: String,
    /// `validation` (`certified` is read as `verified`, as snapd does).
    pub validation: String,
    /// `username` ("" when absent).
    pub username: String,
    /// `timestamp`.
    pub timestamp: Timestamp,
}

impl Account {
    /// Views an assertion as an account (snapd's `assembleAccount`).
    ///
    /// # Errors
    /// The first failed check.
    pub fn from_assertion(a: &Assertion) -> Result<Account, ViewError> {
        const KIND: &str = "account";
        let fail = |message: String| ViewError { kind: KIND, message };
        if a.type_name() != KIND {
            return Err(fail(format!("not an account assertion: {}", quote(a.type_name()))));
        }
        let display_name = not_empty_str(a.headers(), "display-name").map_err(fail)?.to_owned();
        let mut validation = not_empty_str(a.headers(), "validation").map_err(fail)?.to_owned();
        if validation == "certified" {
            validation = "verified".into();
        }
        let timestamp = date(a, "timestamp", KIND)?;
        let username = match a.headers().get("username") {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(fail(r#""username" header must be a string"#.into())),
        };
        Ok(Account {
            account_id: a.header_str("account-id").to_owned(),
            display_name,
            validation,
            username,
            timestamp,
        })
    }
}

/// An `account-key` assertion: a public key an account may sign with, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountKey {
    /// `account-id`: the account whose key this is.
    pub account_id: String,
    /// `name` ("" when absent).
    pub name: String,
    /// Start of validity.
    pub since: Timestamp,
    /// End of validity (exclusive), if any.
    pub until: Option<Timestamp>,
    /// The key from the body.
    pub public_key: PublicKey,
}

/// snapd's account-key name rule `^(?:[a-z0-9]+-?)*[a-z](?:-?[a-z0-9])*$`: lowercase words
/// joined by single dashes, with at least one letter.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
        && name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && name.bytes().any(|c| c.is_ascii_lowercase())
}

impl AccountKey {
    /// Views an assertion as an account-key (snapd's `assembleAccountKey`): the body must be
    /// an RSA public key whose id is `public-key-sha3-384`.
    ///
    /// # Errors
    /// The first failed check.
    pub fn from_assertion(a: &Assertion) -> Result<AccountKey, ViewError> {
        const KIND: &str = "account-key";
        let fail = |message: String| ViewError { kind: KIND, message };
        if a.type_name() != KIND {
            return Err(fail(format!("not an account-key assertion: {}", quote(a.type_name()))));
        }
        let account_id = not_empty_str(a.headers(), "account-id").map_err(fail)?.to_owned();
        let name = match a.headers().get("name") {
            None => String::new(),
            Some(_) => {
                let n = not_empty_str(a.headers(), "name").map_err(fail)?;
                if !is_valid_key_name(n) {
                    return Err(fail(format!(
                        r#""name" header contains invalid characters: {}"#,
                        quote(n)
                    )));
                }
                n.to_owned()
            }
        };
        let since = date(a, "since", KIND)?;
        let until = match a.headers().get("until") {
            None => None,
            Some(Value::String(s)) => Some(
                Timestamp::parse(s)
                    .map_err(|e| fail(format!(r#""until" header is not a RFC3339 date: {e}"#)))?,
            ),
            Some(_) => return Err(fail(r#""until" header must be a string"#.into())),
        };
        if until.is_some_and(|u| u < since) {
            return Err(fail("'until' time cannot be before 'since' time".into()));
        }
        let public_key = PublicKey::decode(a.body().as_bytes()).map_err(|e| fail(e.0))?;
        if a.header_str("public-key-sha3-384") != public_key.id() {
            return Err(fail("public key does not match provided key id".into()));
        }
        Ok(AccountKey { account_id, name, since, until, public_key })
    }

    /// Whether `when` is within `[since, until)`.
    pub fn is_valid_at(&self, when: Timestamp) -> bool {
        when >= self.since && self.until.is_none_or(|u| when < u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names() {
        for ok in ["root", "models", "my-key-2", "2-a", "a"] {
            assert!(is_valid_key_name(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a--b", "A", "123", "a_b"] {
            assert!(!is_valid_key_name(bad), "{bad}");
        }
    }
}
