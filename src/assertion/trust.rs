//! The chain of trust: which account-key signed an assertion, up to a trusted root. \[pure\]
//!
//! Follows snapd's `Database.Check` with its default checkers: find the account-key named by
//! `sign-key-sha3-384`, require it to belong to the authority, not be expired now, verify the
//! signature, require the assertion's timestamp to be within the key's validity, then the
//! type's consistency rules (accounts and account-keys must be signed by a directly trusted
//! authority; an account-key needs its account). [`Database::verify_chain`] repeats that for
//! every link that is not itself trusted, so a brand model is checked all the way to the root.
//!
//! snapd's compiled-in trusted assertions (Canonical's root account-key and account) and its
//! predefined `generic` ones are embedded as data files extracted from snapd's source by
//! `tools/snapd-check/extract-sysdb.sh`.

use super::account::{Account, AccountKey};
use super::time::Timestamp;
use super::{decode, quote, Assertion};

/// Canonical's account, trusted by snapd.
pub const CANONICAL_ACCOUNT: &[u8] = include_bytes!("data/canonical.account");
/// Canonical's self-signed root account-key, trusted by snapd.
pub const CANONICAL_ROOT_ACCOUNT_KEY: &[u8] = include_bytes!("data/canonical-root.account-key");
/// The `generic` account (predefined in snapd).
pub const GENERIC_ACCOUNT: &[u8] = include_bytes!("data/generic.account");
/// The `generic` account's `models` key (predefined in snapd).
pub const GENERIC_MODELS_ACCOUNT_KEY: &[u8] = include_bytes!("data/generic-models.account-key");
/// The `generic-classic` model (predefined in snapd).
pub const GENERIC_CLASSIC_MODEL: &[u8] = include_bytes!("data/generic-classic.model");

/// Why an assertion is not trusted; the text is snapd's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CheckError(pub String);

/// One verified link of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The assertion checked, e.g. `model/16/generic/generic-classic`.
    pub reference: String,
    /// The key that signed it.
    pub sign_key: String,
    /// Whether that key is a trust root.
    pub by_trusted_key: bool,
}

/// Whether `a` is a self-signed account-key: signed by its own account with its own key.
///
/// snapd only ever holds such a key as one of its trust roots: adding an assertion to snapd's
/// database checks its signature with a key snapd already has, which a self-signed key that is
/// not trusted cannot pass. So a self-signed key that snapd returns is a root of *that* snapd.
pub fn is_self_signed_key(a: &Assertion) -> bool {
    a.type_name() == "account-key"
        && !a.header_str("account-id").is_empty()
        && a.authority_id() == a.header_str("account-id")
        && a.sign_key_id() == a.header_str("public-key-sha3-384")
}

/// Trusted roots plus a pool of other assertions to look keys and accounts up in.
#[derive(Debug, Clone, Default)]
pub struct Database {
    trusted: Vec<Assertion>,
    pool: Vec<Assertion>,
}

fn builtin(bytes: &[u8]) -> Option<Assertion> {
    decode(bytes).ok()
}

impl Database {
    /// A database trusting exactly `trusted` (a root account-key and the account(s) it signs for).
    pub fn new(trusted: Vec<Assertion>) -> Database {
        Database { trusted, pool: Vec::new() }
    }

    /// snapd's built-in trust: Canonical's root key and account, with the `generic` account
    /// and `models` key in the pool (they are checked like any other link).
    pub fn builtin() -> Database {
        let trusted = [CANONICAL_ROOT_ACCOUNT_KEY, CANONICAL_ACCOUNT]
            .into_iter()
            .filter_map(builtin)
            .collect();
        let mut db = Database::new(trusted);
        db.pool
            .extend([GENERIC_ACCOUNT, GENERIC_MODELS_ACCOUNT_KEY].into_iter().filter_map(builtin));
        db
    }

    /// Adds assertions to look up while checking (accounts, account-keys); they are not trusted.
    pub fn add(&mut self, assertions: impl IntoIterator<Item = Assertion>) {
        self.pool.extend(assertions);
    }

    /// Adds trust roots: a self-signed root account-key and the account(s) it signs for, as a
    /// snapd built with other roots (snapd's test keys, `-tags withtestkeys`) has them.
    pub fn trust(&mut self, assertions: impl IntoIterator<Item = Assertion>) {
        for a in assertions {
            if !self.is_trusted(&a) {
                self.trusted.push(a);
            }
        }
    }

    fn is_trusted(&self, a: &Assertion) -> bool {
        self.trusted.iter().any(|t| t.content() == a.content())
    }

    fn is_trusted_account(&self, account_id: &str) -> bool {
        !account_id.is_empty()
            && self.trusted.iter().any(|t| {
                matches!(t.type_name(), "account" | "account-key")
                    && t.header_str("account-id") == account_id
            })
    }

    fn find<'a>(&'a self, type_name: &str, header: &str, value: &str) -> Option<&'a Assertion> {
        self.trusted
            .iter()
            .chain(self.pool.iter())
            .filter(|a| a.type_name() == type_name && a.header_str(header) == value)
            .max_by_key(|a| a.revision())
    }

    /// Finds the key that signed `a` (snapd's `findAccountKey`).
    fn signing_key(&self, a: &Assertion) -> Result<(&Assertion, AccountKey), CheckError> {
        let key_id = a.sign_key_id();
        let authority = a.authority_id();
        let Some(key_assertion) = self.find("account-key", "public-key-sha3-384", key_id) else {
            return Err(CheckError(format!(
                "no matching public key {} for signature by {}",
                quote(key_id),
                quote(authority)
            )));
        };
        let key =
            AccountKey::from_assertion(key_assertion).map_err(|e| CheckError(e.to_string()))?;
        if key.account_id != authority {
            return Err(CheckError(format!(
                "found public key {} from {} but expected it from: {authority}",
                quote(key_id),
                quote(&key.account_id)
            )));
        }
        Ok((key_assertion, key))
    }

    /// Checks one assertion as snapd's `Database.Check` would at time `now`.
    ///
    /// # Errors
    /// The first failed check, in snapd's words.
    pub fn check(&self, a: &Assertion, now: Timestamp) -> Result<Link, CheckError> {
        if a.format() > a.assertion_type().map_or(0, |t| t.max_format) {
            return Err(CheckError(format!(
                "proposed {} assertion has format {} but {} is latest supported",
                quote(a.type_name()),
                a.format(),
                a.assertion_type().map_or(0, |t| t.max_format)
            )));
        }
        let (key_assertion, key) = self.signing_key(a)?;
        let key_window = || match key.until {
            Some(until) => {
                format!("during [{}, {})", key.since.to_rfc3339_utc(), until.to_rfc3339_utc())
            }
            None => format!("from {}", key.since.to_rfc3339_utc()),
        };
        if now < key.since || key.until.is_some_and(|u| now >= u) {
            return Err(CheckError(format!(
                "assertion is signed with expired public key {} from {}: current time is {} but key is valid {}",
                quote(a.sign_key_id()),
                quote(a.authority_id()),
                now.to_rfc3339_utc(),
                key_window()
            )));
        }
        super::verify::verify(a, &key.public_key).map_err(|e| match e {
            super::verify::VerifyError::Decode(m) => CheckError(m),
            mismatch => CheckError(mismatch.to_string()),
        })?;
        if a.type_name() != "account-key" {
            if let Some(ts) = a.headers().get_str("timestamp") {
                let ts = Timestamp::parse(ts).map_err(|e| {
                    CheckError(format!(
                        "assertion {}: \"timestamp\" header is not a RFC3339 date: {e}",
                        a.type_name()
                    ))
                })?;
                if !key.is_valid_at(ts) {
                    let until = key
                        .until
                        .map_or_else(String::new, |u| format!(" until {}", quote(&u.to_string())));
                    return Err(CheckError(format!(
                        "{} assertion timestamp {} outside of signing key validity (key valid since {}{until})",
                        a.type_name(),
                        quote(&ts.to_string()),
                        quote(&key.since.to_string())
                    )));
                }
            }
        }
        match a.type_name() {
            "account" => {
                let account = Account::from_assertion(a).map_err(|e| CheckError(e.to_string()))?;
                if !self.is_trusted_account(a.authority_id()) {
                    return Err(CheckError(format!(
                        "account assertion for {} is not signed by a directly trusted authority: {}",
                        quote(&account.account_id),
                        a.authority_id()
                    )));
                }
            }
            "account-key" => {
                let ak = AccountKey::from_assertion(a).map_err(|e| CheckError(e.to_string()))?;
                if !self.is_trusted_account(a.authority_id()) {
                    return Err(CheckError(format!(
                        "account-key assertion for {} is not signed by a directly trusted authority: {}",
                        quote(&ak.account_id),
                        a.authority_id()
                    )));
                }
                if self.find("account", "account-id", &ak.account_id).is_none() {
                    return Err(CheckError(format!(
                        "account-key assertion for {} does not have a matching account assertion",
                        quote(&ak.account_id)
                    )));
                }
            }
            _ => {}
        }
        Ok(Link {
            reference: a.reference(),
            sign_key: a.sign_key_id().to_owned(),
            by_trusted_key: self.is_trusted(key_assertion),
        })
    }

    /// Checks `a` and every untrusted assertion it depends on (its signing account-key and,
    /// for account-keys, their account), up to the trusted roots. Returns the links checked,
    /// `a` first.
    ///
    /// # Errors
    /// The first failing link, prefixed by its reference when it is not `a` itself.
    pub fn verify_chain(&self, a: &Assertion, now: Timestamp) -> Result<Vec<Link>, CheckError> {
        let mut links = Vec::new();
        let mut todo = vec![a.clone()];
        while let Some(cur) = todo.pop() {
            if links.len() > 16 {
                return Err(CheckError("chain of trust is too long".into()));
            }
            let is_target = cur.content() == a.content();
            let link = self.check(&cur, now).map_err(|e| {
                if is_target {
                    e
                } else {
                    CheckError(format!("{}: {e}", cur.reference()))
                }
            })?;
            let (key_assertion, _) = self.signing_key(&cur)?;
            if !self.is_trusted(key_assertion)
                && !links.iter().any(|l: &Link| l.reference == key_assertion.reference())
            {
                todo.push(key_assertion.clone());
            }
            if cur.type_name() == "account-key" {
                if let Some(account) =
                    self.find("account", "account-id", cur.header_str("account-id"))
                {
                    if !self.is_trusted(account)
                        && !links.iter().any(|l| l.reference == account.reference())
                    {
                        todo.push(account.clone());
                    }
                }
            }
            links.push(link);
        }
        Ok(links)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::parse("2026-01-01T00:00:00Z").unwrap()
    }

    #[test]
    fn builtin_assertions_decode() {
        for bytes in [
            CANONICAL_ACCOUNT,
            CANONICAL_ROOT_ACCOUNT_KEY,
            GENERIC_ACCOUNT,
            GENERIC_MODELS_ACCOUNT_KEY,
            GENERIC_CLASSIC_MODEL,
        ] {
            let a = decode(bytes).unwrap();
            assert_eq!(super::super::encode(&a), bytes);
        }
        let root =
            AccountKey::from_assertion(&decode(CANONICAL_ROOT_ACCOUNT_KEY).unwrap()).unwrap();
        assert_eq!(
            root.public_key.id(),
            "-CvQKAwRQ5h3Ffn10FILJoEZUXOv6km9FwA80-Rcj-f-6jadQ89VRswHNiEB9Lxk"
        );
        assert_eq!(root.public_key.bits(), 8192);
        let models =
            AccountKey::from_assertion(&decode(GENERIC_MODELS_ACCOUNT_KEY).unwrap()).unwrap();
        assert_eq!(
            models.public_key.id(),
            "d-JcZF9nD9eBw7bwMnH61x-bklnQOhQud1Is6o_cn2wTj8EYDi9musrIT9z2MdAa"
        );
        assert_eq!(models.public_key.bits(), 4096);
        assert_eq!(
            Account::from_assertion(&decode(CANONICAL_ACCOUNT).unwrap()).unwrap().validation,
            "verified"
        );
    }

    #[test]
    fn generic_classic_model_verifies_through_the_whole_chain() {
        let db = Database::builtin();
        let model = decode(GENERIC_CLASSIC_MODEL).unwrap();
        assert_eq!(super::super::model::validate(model.headers()), vec![]);
        let links = db.verify_chain(&model, now()).unwrap();
        let refs: Vec<&str> = links.iter().map(|l| l.reference.as_str()).collect();
        assert_eq!(
            refs,
            [
                "model/16/generic/generic-classic",
                "account-key/d-JcZF9nD9eBw7bwMnH61x-bklnQOhQud1Is6o_cn2wTj8EYDi9musrIT9z2MdAa",
                "account/generic",
            ]
        );
        assert!(!links[0].by_trusted_key);
        assert!(links[1].by_trusted_key && links[2].by_trusted_key);
        // the root signs itself and Canonical's account
        for bytes in [CANONICAL_ACCOUNT, CANONICAL_ROOT_ACCOUNT_KEY] {
            db.check(&decode(bytes).unwrap(), now()).unwrap();
        }
    }

    #[test]
    fn missing_links_and_time_windows() {
        let model = decode(GENERIC_CLASSIC_MODEL).unwrap();
        let trusted_only = Database::new(vec![
            decode(CANONICAL_ROOT_ACCOUNT_KEY).unwrap(),
            decode(CANONICAL_ACCOUNT).unwrap(),
        ]);
        assert_eq!(
            trusted_only.check(&model, now()).unwrap_err().0,
            r#"no matching public key "d-JcZF9nD9eBw7bwMnH61x-bklnQOhQud1Is6o_cn2wTj8EYDi9musrIT9z2MdAa" for signature by "generic""#
        );
        let mut no_account = trusted_only.clone();
        no_account.add([decode(GENERIC_MODELS_ACCOUNT_KEY).unwrap()]);
        assert_eq!(
            no_account.verify_chain(&model, now()).unwrap_err().0,
            r#"account-key/d-JcZF9nD9eBw7bwMnH61x-bklnQOhQud1Is6o_cn2wTj8EYDi9musrIT9z2MdAa: account-key assertion for "generic" does not have a matching account assertion"#
        );
        let before = Timestamp::parse("2017-01-01T00:00:00Z").unwrap();
        assert_eq!(
            Database::builtin().check(&model, before).unwrap_err().0,
            r#"assertion is signed with expired public key "d-JcZF9nD9eBw7bwMnH61x-bklnQOhQud1Is6o_cn2wTj8EYDi9musrIT9z2MdAa" from "generic": current time is 2017-01-01T00:00:00Z but key is valid from 2017-07-27T00:00:00Z"#
        );
        // nothing is trusted: even the root is just a key
        let untrusting = Database::new(vec![]);
        assert!(untrusting.check(&decode(CANONICAL_ACCOUNT).unwrap(), now()).is_err());
    }
}

#[cfg(test)]
mod private_chain_tests {
    use super::*;
    use crate::assertion::{sign::sign, Headers, Value};
    use rsa::pkcs1::DecodeRsaPrivateKey as _;

    const CHAIN: [&[u8]; 4] = [
        include_bytes!("../../tests/fixtures/assertions/chain/root.account-key"),
        include_bytes!("../../tests/fixtures/assertions/chain/root.account"),
        include_bytes!("../../tests/fixtures/assertions/chain/brand.account-key"),
        include_bytes!("../../tests/fixtures/assertions/chain/brand.account"),
    ];

    fn db() -> Database {
        let mut db = Database::new(vec![decode(CHAIN[0]).unwrap(), decode(CHAIN[1]).unwrap()]);
        db.add([decode(CHAIN[2]).unwrap(), decode(CHAIN[3]).unwrap()]);
        db
    }

    fn model_at(timestamp: &str) -> Assertion {
        let text = String::from_utf8(
            include_bytes!("../../tests/fixtures/assertions/chain/model.assert").to_vec(),
        )
        .unwrap();
        let head = text.split("\n\n").next().unwrap();
        let mut headers: Headers = crate::assertion::parse::parse_headers(head.as_bytes()).unwrap();
        headers.remove("sign-key-sha3-384");
        headers.insert("timestamp", Value::from(timestamp));
        let key = rsa::RsaPrivateKey::from_pkcs1_pem(include_str!(
            "../../tests/fixtures/assertions/keys/brand.pem"
        ))
        .unwrap();
        sign(&headers, "", &key, 1_704_067_200).unwrap()
    }

    #[test]
    fn only_a_root_key_is_self_signed() {
        assert!(is_self_signed_key(&decode(CHAIN[0]).unwrap()));
        // signed by the root, not by itself
        assert!(!is_self_signed_key(&decode(CHAIN[2]).unwrap()));
        // not an account-key
        assert!(!is_self_signed_key(&decode(CHAIN[1]).unwrap()));
        assert!(is_self_signed_key(&decode(CANONICAL_ROOT_ACCOUNT_KEY).unwrap()));
    }

    #[test]
    fn roots_given_with_trust_verify_the_chain_that_only_the_pool_could_not() {
        let now = Timestamp::parse("2025-01-01T00:00:00Z").unwrap();
        let model = model_at("2024-06-01T00:00:00Z");
        let mut db = Database::builtin();
        db.add(CHAIN.iter().map(|c| decode(c).unwrap()));
        // In the pool only, the root is just another assertion: the chain does not end.
        let err = db.verify_chain(&model, now).unwrap_err().0;
        assert!(err.ends_with("is not signed by a directly trusted authority: testroot"), "{err}");
        db.trust([decode(CHAIN[0]).unwrap(), decode(CHAIN[1]).unwrap()]);
        let links = db.verify_chain(&model, now).unwrap();
        assert!(links.last().unwrap().by_trusted_key);
        // Adding the same root twice changes nothing.
        db.trust([decode(CHAIN[0]).unwrap()]);
        assert_eq!(db.verify_chain(&model, now).unwrap(), links);
    }

    #[test]
    fn model_timestamp_must_be_within_the_key_window() {
        let now = Timestamp::parse("2025-01-01T00:00:00Z").unwrap();
        db().verify_chain(&model_at("2024-06-01T00:00:00Z"), now).unwrap();
        for ts in ["2023-12-31T23:59:59Z", "2034-01-01T00:00:00Z"] {
            assert_eq!(
                db().check(&model_at(ts), now).unwrap_err().0,
                format!(
                    r#"model assertion timestamp "{}" outside of signing key validity (key valid since "2024-01-01 00:00:00 +0000 UTC" until "2034-01-01 00:00:00 +0000 UTC")"#,
                    Timestamp::parse(ts).unwrap()
                )
            );
        }
    }

    #[test]
    fn expired_key_is_refused_now() {
        let now = Timestamp::parse("2035-01-01T00:00:00Z").unwrap();
        let e = db().check(&model_at("2024-06-01T00:00:00Z"), now).unwrap_err().0;
        assert!(e.starts_with("assertion is signed with expired public key"), "{e}");
        assert!(e.ends_with("current time is 2035-01-01T00:00:00Z but key is valid during [2024-01-01T00:00:00Z, 2034-01-01T00:00:00Z)"), "{e}");
    }

    #[test]
    fn only_trusted_authorities_sign_accounts() {
        // An account signed by the brand key is not signed by a directly trusted authority.
        let key = rsa::RsaPrivateKey::from_pkcs1_pem(include_str!(
            "../../tests/fixtures/assertions/keys/brand.pem"
        ))
        .unwrap();
        let headers: Headers = [
            ("type", "account"),
            ("authority-id", "testbrand"),
            ("account-id", "sub"),
            ("display-name", "Sub"),
            ("validation", "unproven"),
            ("timestamp", "2024-06-01T00:00:00Z"),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), Value::from(v)))
        .collect();
        let a = sign(&headers, "", &key, 1_704_067_200).unwrap();
        let now = Timestamp::parse("2025-01-01T00:00:00Z").unwrap();
        assert_eq!(
            db().check(&a, now).unwrap_err().0,
            r#"account assertion for "sub" is not signed by a directly trusted authority: testbrand"#
        );
    }
}
