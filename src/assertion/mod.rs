//! Snap assertions: decode, encode, typed views, signatures and the chain of trust. \[pure\]
//!
//! This module owns snapd's assertion text format and nothing else: it never reads files,
//! never talks to snapd and never looks at the clock (callers pass "now" in).
//! The CLI in [`cmd`] and the key store in [`crate::keys`] are the I/O edges.
//!
//! An assertion is `HEADERS "\n\n" [BODY "\n\n"] SIGNATURE`; the signed bytes are exactly
//! the part before the last `"\n\n"` ([`Assertion::content`]).
//! Signatures are OpenPGP v4 RSA packets as snapd makes them ([`sign`], [`verify`]);
//! snapd accepts RSA keys only, so no other algorithm has a place here.

pub mod account;
pub mod cmd;
pub mod encode;
pub mod model;
pub mod openpgp;
pub mod parse;
pub mod sign;
pub mod time;
pub mod trust;
pub mod verify;

use std::collections::BTreeMap;
use std::fmt;

pub use encode::{encode, encode_stream};
pub use parse::{decode, decode_stream, unsigned, ParseError, Unsigned};

/// A header value: snapd's only scalars are strings, nested in lists and maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string, possibly spanning several lines.
    String(String),
    /// A list of values.
    List(Vec<Value>),
    /// A map; snapd writes its keys sorted, so a sorted map keeps canonical order.
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The list, if this is one.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// The map, if this is one.
    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Converts to JSON (strings, arrays and objects only).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::List(l) => serde_json::Value::Array(l.iter().map(Value::to_json).collect()),
            Value::Map(m) => {
                serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }

    /// Converts from JSON as `snap sign` does: every scalar must be a string.
    ///
    /// # Errors
    /// snapd's message when a number, bool or null is found.
    pub fn from_json(json: &serde_json::Value) -> Result<Value, String> {
        match json {
            serde_json::Value::String(s) => Ok(Value::String(s.clone())),
            serde_json::Value::Array(a) => {
                Ok(Value::List(a.iter().map(Value::from_json).collect::<Result<_, _>>()?))
            }
            serde_json::Value::Object(o) => Ok(Value::Map(
                o.iter()
                    .map(|(k, v)| Ok((k.clone(), Value::from_json(v)?)))
                    .collect::<Result<_, String>>()?,
            )),
            other => Err(format!(
                "header values must be strings or nested lists or maps with strings as the only scalars: {other}"
            )),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_owned())
    }
}

/// Headers in the order they were read (or will be written).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, Value)>,
}

impl Headers {
    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The value of `name` if it is a string.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets `name`, replacing a previous value in place or appending.
    pub fn insert(&mut self, name: &str, value: Value) {
        match self.entries.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((name.to_owned(), value)),
        }
    }

    /// Removes `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        let pos = self.entries.iter().position(|(n, _)| n == name)?;
        Some(self.entries.remove(pos).1)
    }

    /// Entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Converts to a JSON object, keys in header order.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(self.iter().map(|(k, v)| (k.to_owned(), v.to_json())).collect())
    }
}

impl FromIterator<(String, Value)> for Headers {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Headers {
        let mut headers = Headers::default();
        for (name, value) in iter {
            headers.insert(&name, value);
        }
        headers
    }
}

/// A decoded assertion: typed headers plus the exact bytes that were signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    headers: Headers,
    body: String,
    content: Vec<u8>,
    signature: Vec<u8>,
}

impl Assertion {
    /// Assembles an assertion from its parts, running snapd's generic checks (`assemble`).
    ///
    /// # Errors
    /// The first failed generic check, in snapd's words.
    pub fn assemble(
        headers: Headers,
        body: String,
        content: Vec<u8>,
        signature: Vec<u8>,
    ) -> Result<Assertion, ParseError> {
        check_generic(&headers, &body, &signature)?;
        Ok(Assertion { headers, body, content, signature })
    }

    /// All headers, in the order they appear.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// A string header, or "" when absent or not a string.
    pub fn header_str(&self, name: &str) -> &str {
        self.headers.get_str(name).unwrap_or("")
    }

    /// The assertion type (`model`, `account-key`, …).
    pub fn type_name(&self) -> &str {
        self.header_str("type")
    }

    /// The type's description from snapd's table (always known after decoding).
    pub fn assertion_type(&self) -> Option<&'static AssertionType> {
        AssertionType::by_name(self.type_name())
    }

    /// `authority-id`.
    pub fn authority_id(&self) -> &str {
        self.header_str("authority-id")
    }

    /// `sign-key-sha3-384`: the id of the key that signed.
    pub fn sign_key_id(&self) -> &str {
        self.header_str("sign-key-sha3-384")
    }

    /// `revision`, 0 when absent.
    pub fn revision(&self) -> u64 {
        self.headers.get_str("revision").and_then(|r| r.parse().ok()).unwrap_or(0)
    }

    /// `format`, 0 when absent.
    pub fn format(&self) -> u64 {
        self.headers.get_str("format").and_then(|r| r.parse().ok()).unwrap_or(0)
    }

    /// The body ("" when there is none).
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The signed bytes: everything before the last `"\n\n"`.
    pub fn content(&self) -> &[u8] {
        &self.content
    }

    /// The signature block as written (base64 lines, usually ending in `"\n"`).
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// Primary key values in type order, e.g. `[16, brand, model]` for a model.
    pub fn primary_key(&self) -> Vec<&str> {
        match self.assertion_type() {
            Some(t) => t.primary_key.iter().map(|k| self.header_str(k)).collect(),
            None => Vec::new(),
        }
    }

    /// `type/pk1/pk2…`, as snapd names assertions in messages.
    pub fn reference(&self) -> String {
        let mut s = self.type_name().to_owned();
        for pk in self.primary_key() {
            s.push('/');
            s.push_str(pk);
        }
        s
    }
}

/// One row of snapd's assertion type table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssertionType {
    /// Type name.
    pub name: &'static str,
    /// Primary key headers in order.
    pub primary_key: &'static [&'static str],
    /// Optional primary keys and their defaults.
    pub optional_primary_key_defaults: &'static [(&'static str, &'static str)],
    /// Types with no definite authority (requests), which must not carry an `authority-id`.
    pub no_authority: bool,
    /// Highest `format` this implementation (and snapd's) understands.
    pub max_format: u64,
}

const fn t(
    name: &'static str,
    primary_key: &'static [&'static str],
    max_format: u64,
) -> AssertionType {
    AssertionType {
        name,
        primary_key,
        optional_primary_key_defaults: &[],
        no_authority: false,
        max_format,
    }
}

const fn no_auth(name: &'static str, primary_key: &'static [&'static str]) -> AssertionType {
    AssertionType {
        name,
        primary_key,
        optional_primary_key_defaults: &[],
        no_authority: true,
        max_format: 0,
    }
}

/// snapd's type table (asserts/asserts.go).
pub const TYPES: &[AssertionType] = &[
    t("account", &["account-id"], 0),
    t("account-key", &["public-key-sha3-384"], 1),
    t("repair", &["brand-id", "repair-id"], 0),
    t("model", &["series", "brand-id", "model"], 0),
    t("serial", &["brand-id", "model", "serial"], 0),
    t("base-declaration", &["series"], 6),
    t("snap-declaration", &["series", "snap-id"], 6),
    t("snap-build", &["snap-sha3-384"], 0),
    AssertionType {
        name: "snap-revision",
        primary_key: &["snap-sha3-384", "provenance"],
        optional_primary_key_defaults: &[("provenance", "global-upload")],
        no_authority: false,
        max_format: 0,
    },
    t("snap-developer", &["snap-id", "publisher-id"], 0),
    t("system-user", &["brand-id", "email"], 2),
    t("validation", &["series", "snap-id", "approved-snap-id", "approved-snap-revision"], 0),
    t("validation-set", &["series", "account-id", "name", "sequence"], 0),
    t("store", &["store"], 0),
    t("authority-delegation", &["account-id", "delegate-id"], 0),
    t("preseed", &["series", "brand-id", "model", "system-label"], 0),
    no_auth("device-session-request", &["brand-id", "model", "serial"]),
    no_auth("serial-request", &[]),
    no_auth("account-key-request", &["public-key-sha3-384"]),
];

impl AssertionType {
    /// Looks a type up by name.
    pub fn by_name(name: &str) -> Option<&'static AssertionType> {
        TYPES.iter().find(|t| t.name == name)
    }

    /// The default of an optional primary key header ("" when mandatory).
    pub fn primary_key_default(&self, name: &str) -> &'static str {
        self.optional_primary_key_defaults.iter().find(|(n, _)| *n == name).map_or("", |(_, d)| d)
    }
}

/// snapd's header name grammar `^[a-z](?:-?[a-z0-9])*$`, also used for map keys.
pub fn is_valid_header_name(name: &str) -> bool {
    let b = name.as_bytes();
    if b.is_empty() || !b[0].is_ascii_lowercase() {
        return false;
    }
    let mut prev_dash = false;
    for &c in &b[1..] {
        match c {
            b'-' if prev_dash => return false,
            b'-' => prev_dash = true,
            b'a'..=b'z' | b'0'..=b'9' => prev_dash = false,
            _ => return false,
        }
    }
    !prev_dash
}

/// Go's `%q` for a string, close enough for messages: escapes quotes, backslashes and controls.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.Atoi` plus snapd's prefix-zeros rule, for `%q header` integers.
pub(crate) fn check_int(name: &str, what: &str, s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("{} {what} is not an integer: {s}", quote(name)));
    }
    let Ok(value) = s.parse::<i64>() else {
        return Err(format!("{} {what} is out of range: {s}", quote(name)));
    };
    if s.starts_with('0') && s != "0" {
        return Err(format!("{} {what} has invalid prefix zeros: {s}", quote(name)));
    }
    Ok(value)
}

/// An integer header with a default: absent → default; not a string → error.
pub(crate) fn header_int(headers: &Headers, name: &str, default: i64) -> Result<i64, String> {
    match headers.get(name) {
        None => Ok(default),
        Some(Value::String(s)) => check_int(name, "header", s),
        Some(other) => {
            Err(format!("{} header is not an integer: {}", quote(name), go_value(other)))
        }
    }
}

/// Renders a header value as Go's `%v` would (for messages only).
pub(crate) fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::List(l) => format!("[{}]", l.iter().map(go_value).collect::<Vec<_>>().join(" ")),
        Value::Map(m) => format!(
            "map[{}]",
            m.iter().map(|(k, v)| format!("{k}:{}", go_value(v))).collect::<Vec<_>>().join(" ")
        ),
    }
}

/// A mandatory string header that must not be empty (snapd's `checkNotEmptyString`).
pub(crate) fn not_empty_str<'a>(headers: &'a Headers, name: &str) -> Result<&'a str, String> {
    match headers.get(name) {
        None => Err(format!("{} header is mandatory", quote(name))),
        Some(Value::String(s)) if s.is_empty() => {
            Err(format!("{} header should not be empty", quote(name)))
        }
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(format!("{} header must be a string", quote(name))),
    }
}

/// snapd's `assemble` checks, run on every decoded assertion.
fn check_generic(headers: &Headers, body: &str, signature: &[u8]) -> Result<(), ParseError> {
    let invalid = |m: String| ParseError::Invalid(format!("assertion: {m}"));
    let length = header_int(headers, "body-length", 0).map_err(invalid)?;
    if usize::try_from(length).ok() != Some(body.len()) {
        return Err(ParseError::Invalid(format!(
            "assertion body length and declared body-length don't match: {} != {length}",
            body.len()
        )));
    }
    let key = not_empty_str(headers, "sign-key-sha3-384").map_err(invalid)?;
    check_digest("sign-key-sha3-384", key).map_err(invalid)?;
    let type_name = not_empty_str(headers, "type").map_err(invalid)?;
    let Some(typ) = AssertionType::by_name(type_name) else {
        return Err(ParseError::Invalid(format!("unknown assertion type: {}", quote(type_name))));
    };
    if typ.no_authority {
        for h in ["authority-id", "signatory-id"] {
            if headers.contains(h) {
                return Err(ParseError::Invalid(format!(
                    "{} assertion cannot have {h} set",
                    quote(typ.name)
                )));
            }
        }
    } else {
        not_empty_str(headers, "authority-id").map_err(invalid)?;
        if headers.contains("signatory-id") {
            not_empty_str(headers, "signatory-id").map_err(invalid)?;
        }
    }
    let format = header_int(headers, "format", 0).map_err(invalid)?;
    if format < 0 {
        return Err(invalid(format!("format should be positive: {format}")));
    }
    for pk in typ.primary_key {
        let res = match (headers.get(pk), typ.primary_key_default(pk)) {
            (None, default) if !default.is_empty() => Ok(default),
            _ => not_empty_str(headers, pk),
        };
        let value = res.map_err(|m| ParseError::Invalid(format!("assertion {}: {m}", typ.name)))?;
        if value.contains('/') {
            return Err(ParseError::Invalid(format!(
                "assertion {}: {} primary key header cannot contain '/'",
                typ.name,
                quote(pk)
            )));
        }
    }
    let revision = header_int(headers, "revision", 0).map_err(invalid)?;
    if revision < 0 {
        return Err(invalid(format!("revision should be positive: {revision}")));
    }
    if signature.is_empty() {
        return Err(ParseError::Invalid("empty assertion signature".into()));
    }
    Ok(())
}

/// Checks a base64url-nopad SHA3-384 digest header (`checkDigest`).
pub(crate) fn check_digest(name: &str, value: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|e| format!("{} header cannot be decoded: {e}", quote(name)))?;
    if bytes.len() != 48 {
        return Err(format!(
            "{} header does not have the expected bit length: {}",
            quote(name),
            bytes.len() * 8
        ));
    }
    Ok(bytes)
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&go_value(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names() {
        for ok in ["a", "type", "sign-key-sha3-384", "a1-b2"] {
            assert!(is_valid_header_name(ok), "{ok}");
        }
        for bad in ["", "A", "1a", "a-", "a--b", "-a", "a_b", "a b"] {
            assert!(!is_valid_header_name(bad), "{bad}");
        }
    }

    #[test]
    fn quotes_like_go() {
        assert_eq!(quote("a\"b\\c\nd\u{1}"), r#""a\"b\\c\nd\x01""#);
        assert_eq!(quote("héllo"), "\"héllo\"");
    }

    #[test]
    fn ints_like_snapd() {
        assert_eq!(check_int("revision", "header", "12"), Ok(12));
        assert_eq!(
            check_int("revision", "header", "012"),
            Err(r#""revision" header has invalid prefix zeros: 012"#.into())
        );
        assert_eq!(
            check_int("revision", "header", "x"),
            Err(r#""revision" header is not an integer: x"#.into())
        );
        assert_eq!(
            check_int("revision", "header", "99999999999999999999"),
            Err(r#""revision" header is out of range: 99999999999999999999"#.into())
        );
    }

    #[test]
    fn json_values_must_be_strings() {
        let json: serde_json::Value = serde_json::json!({"a": ["x", {"b": "c"}]});
        let v = Value::from_json(&json).unwrap();
        assert_eq!(v.to_json(), json);
        let err = Value::from_json(&serde_json::json!({"a": 1})).unwrap_err();
        assert!(err.starts_with("header values must be strings"), "{err}");
    }

    #[test]
    fn headers_insert_replace_remove() {
        let mut h = Headers::default();
        h.insert("a", "1".into());
        h.insert("b", "2".into());
        h.insert("a", "3".into());
        assert_eq!(h.iter().map(|(n, _)| n).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(h.get_str("a"), Some("3"));
        assert_eq!(h.remove("a"), Some(Value::from("3")));
        assert_eq!(h.len(), 1);
    }
}
