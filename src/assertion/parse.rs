//! Bytes → [`Assertion`], exactly as snapd's `asserts.Decode` and `asserts.Decoder` split and read them. \[pure\]
//!
//! [`decode`] takes one whole assertion (no size limits, like snapd's `Decode`);
//! [`decode_stream`] reads a stream of several separated by blank lines and enforces snapd's
//! header, body and signature size limits, so it is the one to use on untrusted input.

use super::{header_int, is_valid_header_name, quote, Assertion, Headers, Value};
use std::collections::BTreeMap;

/// Largest headers block the stream decoder reads (snapd's `MaxHeadersSize`).
pub const MAX_HEADERS_SIZE: usize = 128 * 1024;
/// Largest body the stream decoder accepts (snapd's `MaxBodySize`).
pub const MAX_BODY_SIZE: usize = 2 * 1024 * 1024;
/// Largest signature the stream decoder reads (snapd's `MaxSignatureSize`).
pub const MAX_SIGNATURE_SIZE: usize = 128 * 1024;

/// Why bytes are not an assertion; the text is snapd's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No `"\n\n"` between content and signature.
    #[error("assertion content/signature separator not found")]
    NoSeparator,
    /// The headers block does not follow the grammar.
    #[error("parsing assertion headers: {0}")]
    Headers(String),
    /// A generic or type check of `assemble` failed.
    #[error("{0}")]
    Invalid(String),
    /// A stream component is larger than snapd allows.
    #[error("{0}")]
    TooLarge(String),
    /// A stream ended in the middle of an assertion.
    #[error("unexpected EOF")]
    UnexpectedEof,
    /// A stream assertion with a body has no separator before its signature.
    #[error("missing content/signature separator")]
    MissingSignatureSeparator,
}

const NLNL: &[u8] = b"\n\n";

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// What a file that should hold a signed assertion holds instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsigned {
    /// A JSON object: the input `pocketses model sign` (like `snap sign`) takes.
    Json,
    /// A YAML mapping with a `type`: the YAML input `pocketses model sign` takes.
    Yaml,
    /// Assertion headers with no signature after them.
    NoSignature,
}

impl Unsigned {
    /// Says that `file` is not signed and how to sign it (callers prefix "cannot read … assertion: ").
    pub fn explain(self, file: &str) -> String {
        let what = match self {
            Unsigned::Json => "it is a JSON input for `pocketses model sign`",
            Unsigned::Yaml => "it is a YAML input for `pocketses model sign`",
            Unsigned::NoSignature => "its headers are not followed by a signature",
        };
        format!(
            "{file} is not signed ({what}); sign it with `pocketses model sign --key KEY {file} > signed.model` and use signed.model"
        )
    }
}

/// Why bytes that did not decode are not a signed assertion, when that is the reason: a
/// `model sign` input (JSON or YAML), or headers without a signature.
pub fn unsigned(bytes: &[u8]) -> Option<Unsigned> {
    let text = std::str::from_utf8(bytes).ok()?;
    let trimmed = text.trim();
    if trimmed.starts_with('{') {
        return Some(Unsigned::Json);
    }
    if !trimmed.contains("\n\n") && parse_headers(trimmed.as_bytes()).is_ok() {
        return Some(Unsigned::NoSignature);
    }
    let yaml: serde_json::Value = crate::yaml::from_str(text).ok()?;
    yaml.get("type").is_some().then_some(Unsigned::Yaml)
}

/// Decodes one assertion (snapd's `asserts.Decode`).
///
/// # Errors
/// snapd's message for the first problem found.
pub fn decode(bytes: &[u8]) -> Result<Assertion, ParseError> {
    let split = rfind(bytes, NLNL).ok_or(ParseError::NoSeparator)?;
    let content = &bytes[..split];
    let signature = &bytes[split + 2..];
    let (head, body) = match find(content, NLNL) {
        Some(i) => (&content[..i], &content[i + 2..]),
        None => (content, &[][..]),
    };
    let headers = parse_headers(head)?;
    assemble(headers, body, content.to_vec(), signature.to_vec())
}

fn assemble(
    headers: Headers,
    body: &[u8],
    content: Vec<u8>,
    signature: Vec<u8>,
) -> Result<Assertion, ParseError> {
    // snapd checks the declared length before the encoding of the body.
    let declared = header_int(&headers, "body-length", 0)
        .map_err(|m| ParseError::Invalid(format!("assertion: {m}")))?;
    if usize::try_from(declared).ok() != Some(body.len()) {
        return Err(ParseError::Invalid(format!(
            "assertion body length and declared body-length don't match: {} != {declared}",
            body.len()
        )));
    }
    let body = std::str::from_utf8(body)
        .map_err(|_| ParseError::Invalid("assertion body is not utf8".into()))?;
    Assertion::assemble(headers, body.to_owned(), content, signature)
}

/// Decodes a stream of assertions separated by blank lines (snapd's `asserts.Decoder`),
/// enforcing [`MAX_HEADERS_SIZE`], [`MAX_BODY_SIZE`] and [`MAX_SIGNATURE_SIZE`].
///
/// # Errors
/// snapd's message for the first assertion that cannot be read.
pub fn decode_stream(bytes: &[u8]) -> Result<Vec<Assertion>, ParseError> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some(a) = decode_next(&mut rest)? {
        out.push(a);
    }
    Ok(out)
}

/// Reads up to and including the delimiter within `max` bytes; `Ok(None)` when it hits the end first.
fn read_until<'a>(rest: &mut &'a [u8], max: usize) -> Result<(&'a [u8], bool), String> {
    let window = &rest[..rest.len().min(max)];
    if let Some(i) = find(window, NLNL) {
        let (taken, after) = rest.split_at(i + 2);
        *rest = after;
        return Ok((taken, true));
    }
    if rest.len() > max {
        return Err(r#"maximum size exceeded while looking for delimiter "\n\n""#.into());
    }
    let taken = *rest;
    *rest = &[];
    Ok((taken, false))
}

/// Decodes the next assertion of a stream, advancing `rest`; `Ok(None)` at a clean end.
///
/// # Errors
/// As [`decode_stream`].
pub fn decode_next(rest: &mut &[u8]) -> Result<Option<Assertion>, ParseError> {
    let (head_and_sep, found) = read_until(rest, MAX_HEADERS_SIZE)
        .map_err(|e| ParseError::TooLarge(format!("error reading assertion headers: {e}")))?;
    if !found {
        if head_and_sep.is_empty() {
            return Ok(None);
        }
        return Err(ParseError::UnexpectedEof);
    }
    let head_len = head_and_sep.len() - 2;
    let headers = parse_headers(&head_and_sep[..head_len])?;
    let length = header_int(&headers, "body-length", 0)
        .map_err(|m| ParseError::Invalid(format!("assertion: {m}")))?;
    let length = usize::try_from(length).unwrap_or(0);
    if length > MAX_BODY_SIZE {
        return Err(ParseError::TooLarge(format!(
            "assertion body length {length} exceeds maximum body size"
        )));
    }
    let mut content = head_and_sep.to_vec();
    if length > 0 {
        if rest.len() < length {
            *rest = &[];
            return Err(ParseError::UnexpectedEof);
        }
        let (body, after) = rest.split_at(length);
        content.extend_from_slice(body);
        *rest = after;
    }
    let (end_of_body, _) = read_until(rest, MAX_SIGNATURE_SIZE)
        .map_err(|e| ParseError::TooLarge(format!("error reading assertion trailer: {e}")))?;
    let mut signature = if end_of_body == NLNL {
        let (sig, _) = read_until(rest, MAX_SIGNATURE_SIZE)
            .map_err(|e| ParseError::TooLarge(format!("error reading assertion signature: {e}")))?;
        sig
    } else {
        if length > 0 {
            return Err(ParseError::MissingSignatureSeparator);
        }
        content.truncate(head_len);
        end_of_body
    };
    if signature.ends_with(NLNL) {
        signature = &signature[..signature.len() - 1];
    }
    let body = if length > 0 { content[head_len + 2..].to_vec() } else { Vec::new() };
    assemble(headers, &body, content, signature.to_vec()).map(Some)
}

/// Parses a headers block (snapd's `parseHeaders`).
///
/// # Errors
/// [`ParseError::Headers`] with snapd's message.
pub fn parse_headers(head: &[u8]) -> Result<Headers, ParseError> {
    let head =
        std::str::from_utf8(head).map_err(|_| ParseError::Headers("header is not utf8".into()))?;
    let lines: Vec<&str> = head.split('\n').collect();
    let mut headers = Headers::default();
    let mut i = 0;
    while i < lines.len() {
        let entry = lines[i];
        let Some(colon) = entry.find(':') else {
            return Err(ParseError::Headers(format!(
                "header entry missing ':' separator: {}",
                quote(entry)
            )));
        };
        let name = &entry[..colon];
        if !is_valid_header_name(name) {
            return Err(ParseError::Headers(format!("invalid header name: {}", quote(name))));
        }
        let (value, next) = parse_entry(colon + 1, i, &lines, 0).map_err(ParseError::Headers)?;
        if headers.contains(name) {
            return Err(ParseError::Headers(format!("repeated header: {}", quote(name))));
        }
        headers.insert(name, value);
        i = next;
    }
    Ok(headers)
}

fn prefix(base_indent: usize, p: &str) -> String {
    format!("{}{p}", " ".repeat(base_indent))
}

/// Deepest nesting read (snapd has no limit; real assertions nest a few levels). Bounding it
/// bounds the recursion on hostile input given to the one-shot [`decode`].
pub const MAX_NESTING: usize = 64;

fn parse_entry(
    consumed: usize,
    first: usize,
    lines: &[&str],
    base_indent: usize,
) -> Result<(Value, usize), String> {
    if base_indent > 2 * MAX_NESTING {
        return Err(format!("header values nest deeper than {MAX_NESTING} levels"));
    }
    let entry = lines[first];
    let i = first + 1;
    if consumed == entry.len() {
        let base = prefix(base_indent, "  ");
        if let Some(rest) = lines.get(i).and_then(|l| l.strip_prefix(base.as_str())) {
            if rest.starts_with('-') {
                return parse_list(i, lines, base_indent);
            }
            if !rest.is_empty() && !rest.starts_with(' ') {
                return parse_map(i, lines, base_indent);
            }
        }
        return parse_multiline(i, lines, base_indent);
    }
    match entry.as_bytes()[consumed] {
        b' ' => Ok((Value::String(entry[consumed + 1..].to_owned()), i)),
        _ => Err(format!(
            "header entry should have a space or newline (for multiline) before value: {}",
            quote(entry)
        )),
    }
}

fn parse_multiline(
    first: usize,
    lines: &[&str],
    base_indent: usize,
) -> Result<(Value, usize), String> {
    let pfx = prefix(base_indent, "    ");
    let mut j = first;
    while j < lines.len() && lines[j].starts_with(pfx.as_str()) {
        j += 1;
    }
    if j == first {
        let cur = lines.get(first).map_or_else(|| "EOF".to_owned(), |l| quote(l));
        return Err(format!(
            "expected {} chars nesting prefix after multiline introduction {}: {cur}",
            pfx.len(),
            quote(lines[first - 1])
        ));
    }
    let text: Vec<&str> = lines[first..j].iter().map(|l| &l[pfx.len()..]).collect();
    Ok((Value::String(text.join("\n")), j))
}

fn parse_list(first: usize, lines: &[&str], base_indent: usize) -> Result<(Value, usize), String> {
    let pfx = prefix(base_indent, "  -");
    let mut list = Vec::new();
    let mut j = first;
    while j < lines.len() && lines[j].starts_with(pfx.as_str()) {
        let (v, next) = parse_entry(pfx.len(), j, lines, base_indent + 2)?;
        list.push(v);
        j = next;
    }
    Ok((Value::List(list), j))
}

fn parse_map(first: usize, lines: &[&str], base_indent: usize) -> Result<(Value, usize), String> {
    let pfx = prefix(base_indent, "  ");
    let mut map = BTreeMap::new();
    let mut j = first;
    while j < lines.len() && lines[j].starts_with(pfx.as_str()) {
        let entry = &lines[j][pfx.len()..];
        let Some(colon) = entry.find(':') else {
            return Err(format!("map entry missing ':' separator: {}", quote(entry)));
        };
        let key = &entry[..colon];
        if !is_valid_header_name(key) {
            return Err(format!("invalid map entry key: {}", quote(key)));
        }
        let (v, next) = parse_entry(pfx.len() + colon + 1, j, lines, pfx.len())?;
        if map.contains_key(key) {
            return Err(format!("repeated map entry: {}", quote(key)));
        }
        map.insert(key.to_owned(), v);
        j = next;
    }
    Ok((Value::Map(map), j))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "Jv8_JiHiIzJVcO9M55pPdqSDWUvuhfDIBJUS-3VW7F_idjix7Ffn5qMxB21ZQuij";

    fn sample(extra: &str) -> String {
        format!("type: account\nauthority-id: canonical\naccount-id: acc\n{extra}sign-key-sha3-384: {KEY}\n\nAXNpZw==")
    }

    fn check_headers(head: &str, want: Result<Vec<(&str, Value)>, &str>) {
        let got = parse_headers(head.as_bytes())
            .map(|h| h.iter().map(|(n, v)| (n.to_owned(), v.clone())).collect::<Vec<_>>());
        match want {
            Ok(entries) => {
                let entries: Vec<_> = entries.into_iter().map(|(n, v)| (n.to_owned(), v)).collect();
                assert_eq!(got, Ok(entries), "{head:?}");
            }
            Err(msg) => assert_eq!(got.unwrap_err().to_string(), msg, "{head:?}"),
        }
    }

    fn s(x: &str) -> Value {
        Value::String(x.into())
    }

    #[test]
    fn simple_and_empty_values() {
        check_headers("a: b\nc: ", Ok(vec![("a", s("b")), ("c", s(""))]));
        check_headers("a:  two  ", Ok(vec![("a", s(" two  "))]));
    }

    #[test]
    fn multiline_list_and_map() {
        check_headers("a:\n    x\n    \n    y", Ok(vec![("a", s("x\n\ny"))]));
        check_headers("l:\n  - x\n  - y", Ok(vec![("l", Value::List(vec![s("x"), s("y")]))]));
        let m: BTreeMap<String, Value> =
            [("k".to_owned(), s("v")), ("n".to_owned(), Value::List(vec![s("1")]))].into();
        check_headers("m:\n  k: v\n  n:\n    - 1", Ok(vec![("m", Value::Map(m.clone()))]));
        check_headers(
            "l:\n  -\n    k: v\n    n:\n      - 1\n  -\n      text\n      more",
            Ok(vec![("l", Value::List(vec![Value::Map(m), s("text\nmore")]))]),
        );
    }

    #[test]
    fn header_errors_in_snapds_words() {
        for (head, want) in [
            ("a b", r#"parsing assertion headers: header entry missing ':' separator: "a b""#),
            ("A: b", r#"parsing assertion headers: invalid header name: "A""#),
            (
                "a:b",
                r#"parsing assertion headers: header entry should have a space or newline (for multiline) before value: "a:b""#,
            ),
            ("a: 1\na: 2", r#"parsing assertion headers: repeated header: "a""#),
            (
                "a:\nb: c",
                r#"parsing assertion headers: expected 4 chars nesting prefix after multiline introduction "a:": "b: c""#,
            ),
            (
                "a:",
                r#"parsing assertion headers: expected 4 chars nesting prefix after multiline introduction "a:": EOF"#,
            ),
            ("m:\n  k v", r#"parsing assertion headers: map entry missing ':' separator: "k v""#),
            ("m:\n  K: v", r#"parsing assertion headers: invalid map entry key: "K""#),
            ("m:\n  k: v\n  k: w", r#"parsing assertion headers: repeated map entry: "k""#),
        ] {
            check_headers(head, Err(want));
        }
        assert_eq!(
            parse_headers(b"a: \xff").unwrap_err().to_string(),
            "parsing assertion headers: header is not utf8"
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let mut head = String::from("a:");
        for level in 0..200 {
            head.push_str(&format!("\n{}-", " ".repeat(2 + 2 * level)));
        }
        head.push_str(" x");
        let err = parse_headers(head.as_bytes()).unwrap_err().to_string();
        assert_eq!(err, "parsing assertion headers: header values nest deeper than 64 levels");
        let mut ok = String::from("a:");
        for level in 0..10 {
            ok.push_str(&format!("\n{}-", " ".repeat(2 + 2 * level)));
        }
        ok.push_str(" x");
        assert!(parse_headers(ok.as_bytes()).is_ok());
    }

    #[test]
    fn decode_splits_content_body_and_signature() {
        let text = format!(
            "type: account\nauthority-id: canonical\naccount-id: acc\nbody-length: 7\nsign-key-sha3-384: {KEY}\n\nb\n\nody\n\n\nAXNpZw==\n"
        );
        let a = decode(text.as_bytes()).unwrap();
        assert_eq!(a.body(), "b\n\nody\n");
        assert_eq!(a.signature(), b"AXNpZw==\n");
        assert!(a.content().ends_with(b"ody\n"));
        assert_eq!(super::super::encode(&a), text.as_bytes());
    }

    #[test]
    fn decode_errors_in_snapds_words() {
        let k = KEY;
        for (text, want) in [
            ("type: account".to_owned(), "assertion content/signature separator not found".to_owned()),
            (sample("").replace("AXNpZw==", ""), "empty assertion signature".into()),
            (sample("body-length: 3\n"), "assertion body length and declared body-length don't match: 0 != 3".into()),
            (sample("body-length: 03\n"), r#"assertion: "body-length" header has invalid prefix zeros: 03"#.into()),
            (sample("").replace("type: account", "type: nope"), r#"unknown assertion type: "nope""#.into()),
            (sample("").replace("type: account\n", ""), r#"assertion: "type" header is mandatory"#.into()),
            (sample("").replace("authority-id: canonical\n", ""), r#"assertion: "authority-id" header is mandatory"#.into()),
            (sample("").replace(k, "abc"), r#"assertion: "sign-key-sha3-384" header does not have the expected bit length: 16"#.into()),
            (sample("").replace("account-id: acc", "account-id: a/b"), r#"assertion account: "account-id" primary key header cannot contain '/'"#.into()),
            (sample("").replace("account-id: acc", "account-id: "), r#"assertion account: "account-id" header should not be empty"#.into()),
            (sample("revision: -1\n"), "assertion: revision should be positive: -1".into()),
            (sample("format: x\n"), r#"assertion: "format" header is not an integer: x"#.into()),
        ] {
            assert_eq!(decode(text.as_bytes()).unwrap_err().to_string(), want, "{text}");
        }
    }

    #[test]
    fn stream_reads_several_and_normalises_signature_newlines() {
        let one = sample("");
        let stream = format!("{one}\n\n{one}\n");
        let all = decode_stream(stream.as_bytes()).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].signature(), b"AXNpZw==\n");
        assert_eq!(all[1].signature(), b"AXNpZw==\n");
        assert_eq!(decode_stream(b"").unwrap(), vec![]);
    }

    #[test]
    fn stream_limits() {
        let huge = format!("a: {}", "x".repeat(MAX_HEADERS_SIZE + 10));
        assert_eq!(
            decode_stream(huge.as_bytes()).unwrap_err().to_string(),
            r#"error reading assertion headers: maximum size exceeded while looking for delimiter "\n\n""#
        );
        let big_body = sample("body-length: 3000000\n");
        assert_eq!(
            decode_stream(big_body.as_bytes()).unwrap_err().to_string(),
            "assertion body length 3000000 exceeds maximum body size"
        );
        let truncated = sample("body-length: 30\n");
        assert_eq!(decode_stream(truncated.as_bytes()).unwrap_err(), ParseError::UnexpectedEof);
        assert_eq!(decode_stream(b"type: model").unwrap_err(), ParseError::UnexpectedEof);
    }

    mod fuzz_like {
        //! A libFuzzer-free stand-in for `fuzz/` that runs in every `cargo test`: the decoders
        //! never panic on arbitrary bytes or on edited real assertions.
        use super::super::super::trust::{GENERIC_CLASSIC_MODEL, GENERIC_MODELS_ACCOUNT_KEY};
        use super::super::*;
        use proptest::prelude::*;

        fn decode_all(bytes: &[u8]) {
            if let Ok(a) = decode(bytes) {
                assert_eq!(super::super::super::encode(&a), bytes);
                let _ = super::super::super::model::validate(a.headers());
                let _ = super::super::super::verify::decode_signature(a.signature());
            }
            let _ = decode_stream(bytes);
            let _ = parse_headers(bytes);
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            #[test]
            fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
                decode_all(&bytes);
            }

            #[test]
            fn edited_real_assertions(
                which in any::<bool>(),
                edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..8),
            ) {
                let mut bytes = if which { GENERIC_CLASSIC_MODEL.to_vec() } else { GENERIC_MODELS_ACCOUNT_KEY.to_vec() };
                for (at, value, kind) in edits {
                    let i = at.index(bytes.len());
                    match kind {
                        0 => bytes[i] = value,
                        1 => bytes.insert(i, value),
                        _ => { bytes.remove(i); }
                    }
                }
                decode_all(&bytes);
            }
        }
    }

    #[test]
    fn unsigned_inputs_are_recognised() {
        let root = env!("CARGO_MANIFEST_DIR");
        for (file, want) in [
            ("assertions/uc22-amd64.json", Some(Unsigned::Json)),
            ("assertions/uc22-arm64.yaml", Some(Unsigned::Yaml)),
            ("tests/fixtures/remodel/rev2.model", None),
        ] {
            let bytes = std::fs::read(format!("{root}/{file}")).expect("fixture");
            assert_eq!(unsigned(&bytes), want, "{file}");
        }
        assert_eq!(unsigned(b"type: model\nseries: 16\n"), Some(Unsigned::NoSignature));
        assert_eq!(unsigned(b"\x00\x01garbage"), None);
        assert_eq!(unsigned(b"- a list\n- not a model\n"), None);
        let text = Unsigned::Json.explain("a.json");
        assert!(text.contains("pocketses model sign --key KEY a.json"), "{text}");
    }
}
