//! [`Assertion`] → bytes, and headers → canonical signed content in snapd's order. \[pure\]
//!
//! [`encode`] writes back exactly what was decoded (content, `"\n\n"`, signature), so a
//! signature stays valid; [`canonical_content`] builds the content snapd's `assembleAndSign`
//! would write for given headers and body, which is what a signer signs.

use super::{check_int, is_valid_header_name, quote, Assertion, AssertionType, Headers, Value};

/// Why headers cannot be written as an assertion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EncodeError(pub String);

/// The assertion as bytes: content, `"\n\n"`, signature (snapd's `Encode`).
pub fn encode(assertion: &Assertion) -> Vec<u8> {
    let mut out = Vec::with_capacity(assertion.content().len() + 2 + assertion.signature().len());
    out.extend_from_slice(assertion.content());
    out.extend_from_slice(b"\n\n");
    out.extend_from_slice(assertion.signature());
    out
}

/// Several assertions separated by one blank line (snapd's `Encoder`).
pub fn encode_stream(assertions: &[Assertion]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, a) in assertions.iter().enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        out.extend_from_slice(&encode(a));
        if !out.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
    out
}

fn nesting(base_indent: usize, prefix: &str) -> String {
    format!("{}{prefix}", " ".repeat(base_indent))
}

/// Writes one entry (snapd's `appendEntry`); empty lists and maps are omitted.
fn append_entry(buf: &mut String, intro: &str, value: &Value, base_indent: usize) {
    match value {
        Value::String(s) => {
            buf.push('\n');
            buf.push_str(intro);
            if s.contains('\n') {
                let pfx = nesting(base_indent, "    ");
                buf.push('\n');
                buf.push_str(&pfx);
                buf.push_str(&s.replace('\n', &format!("\n{pfx}")));
            } else {
                buf.push(' ');
                buf.push_str(s);
            }
        }
        Value::List(list) => {
            if list.is_empty() {
                return;
            }
            buf.push('\n');
            buf.push_str(intro);
            let pfx = nesting(base_indent, "  -");
            for elem in list {
                append_entry(buf, &pfx, elem, base_indent + 2);
            }
        }
        Value::Map(map) => {
            if map.is_empty() {
                return;
            }
            buf.push('\n');
            buf.push_str(intro);
            let pfx = nesting(base_indent, "  ");
            for (key, v) in map {
                append_entry(buf, &format!("{pfx}{key}:"), v, pfx.len());
            }
        }
    }
}

fn check_value(value: &Value) -> Result<(), String> {
    match value {
        Value::String(_) => Ok(()),
        Value::List(l) => l.iter().try_for_each(check_value),
        Value::Map(m) => m.iter().try_for_each(|(k, v)| {
            if is_valid_header_name(k) {
                check_value(v)
            } else {
                Err(format!("invalid map entry key: {}", quote(k)))
            }
        }),
    }
}

/// Builds the signed content snapd's `assembleAndSign` would write, and the final headers.
///
/// `headers` must hold `type`, `authority-id` (unless the type has none) and
/// `sign-key-sha3-384`; `body-length` is set from `body`.
/// Order: `type`, `format` (if > 0), `authority-id`, `revision` (if > 0), primary keys
/// (an optional one equal to its default is left out), every other header sorted by name,
/// `body-length` (if there is a body), `sign-key-sha3-384`; then `"\n\n"` and the body.
///
/// # Errors
/// snapd's message when a mandatory header is missing or a value cannot be written.
pub fn canonical_content(headers: &Headers, body: &str) -> Result<(Headers, Vec<u8>), EncodeError> {
    let err = |m: String| EncodeError(m);
    let type_name = headers.get_str("type").unwrap_or("");
    let typ = AssertionType::by_name(type_name)
        .ok_or_else(|| err(format!("unknown assertion type: {}", quote(type_name))))?;
    for (name, value) in headers.iter() {
        if !is_valid_header_name(name) {
            return Err(err(format!("invalid header name: {}", quote(name))));
        }
        check_value(value).map_err(|m| err(format!("header {}: {m}", quote(name))))?;
    }
    let mut fin = headers.clone();
    fin.insert("body-length", Value::String(body.len().to_string()));
    let sign_key = super::not_empty_str(&fin, "sign-key-sha3-384").map_err(err)?.to_owned();
    let mut buf = format!("type: {type_name}");
    let mut written: Vec<&str> = vec![
        "type",
        "format",
        "authority-id",
        "signatory-id",
        "revision",
        "body-length",
        "sign-key-sha3-384",
    ];
    let int_of = |fin: &Headers, name: &str| -> Result<i64, EncodeError> {
        match fin.get(name) {
            None => Ok(0),
            Some(Value::String(s)) => check_int(name, "header", s).map_err(err),
            Some(_) => Err(err(format!("{} header is not an integer", quote(name)))),
        }
    };
    let format = int_of(&fin, "format")?;
    if format > i64::try_from(typ.max_format).unwrap_or(i64::MAX) {
        return Err(err(format!(
            "cannot sign {} assertion with format {format} higher than max supported format {}",
            quote(typ.name),
            typ.max_format
        )));
    }
    if format > 0 {
        append_entry(
            &mut buf,
            "format:",
            fin.get("format").unwrap_or(&Value::String(String::new())),
            0,
        );
    } else {
        fin.remove("format");
    }
    if typ.no_authority {
        if fin.contains("authority-id") {
            return Err(err(format!("{} assertion cannot have authority-id set", quote(typ.name))));
        }
    } else {
        let authority = super::not_empty_str(&fin, "authority-id").map_err(err)?.to_owned();
        buf.push_str(&format!("\nauthority-id: {authority}"));
        if let Some(sig_id) = fin.get("signatory-id") {
            if sig_id.as_str() != Some(authority.as_str()) {
                append_entry(&mut buf, "signatory-id:", sig_id, 0);
            }
        }
    }
    let revision = int_of(&fin, "revision")?;
    if revision < 0 {
        return Err(err(format!("revision should be positive: {revision}")));
    }
    if revision > 0 {
        buf.push_str(&format!("\nrevision: {revision}"));
    } else {
        fin.remove("revision");
    }
    for pk in typ.primary_key {
        let default = typ.primary_key_default(pk);
        if !fin.contains(pk) && !default.is_empty() {
            fin.insert(pk, Value::String(default.to_owned()));
            written.push(pk);
            continue;
        }
        let value = super::not_empty_str(&fin, pk).map_err(err)?.to_owned();
        if value.contains('/') {
            return Err(err(format!("{} primary key header cannot contain '/'", quote(pk))));
        }
        if value != default {
            buf.push_str(&format!("\n{pk}: {value}"));
        }
        written.push(pk);
    }
    let mut others: Vec<(&str, &Value)> =
        fin.iter().filter(|(n, _)| !written.contains(n)).collect();
    others.sort_by(|a, b| a.0.cmp(b.0));
    for (name, value) in &others {
        append_entry(&mut buf, &format!("{name}:"), value, 0);
    }
    if body.is_empty() {
        fin.remove("body-length");
    } else {
        buf.push_str(&format!("\nbody-length: {}", body.len()));
    }
    buf.push_str(&format!("\nsign-key-sha3-384: {sign_key}"));
    if !body.is_empty() {
        buf.push_str("\n\n");
        buf.push_str(body);
    }
    // Report headers in the order they were written, which decode would give back.
    let ordered = super::parse::parse_headers(buf.split("\n\n").next().unwrap_or("").as_bytes())
        .map_err(|e| err(format!("internal error: {e}")))?;
    Ok((ordered, buf.into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::super::{decode, parse::parse_headers};
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const KEY: &str = "Jv8_JiHiIzJVcO9M55pPdqSDWUvuhfDIBJUS-3VW7F_idjix7Ffn5qMxB21ZQuij";

    fn headers(entries: &[(&str, Value)]) -> Headers {
        entries.iter().map(|(n, v)| ((*n).to_owned(), v.clone())).collect()
    }

    #[test]
    fn canonical_order_like_assemble_and_sign() {
        let h = headers(&[
            ("timestamp", "2024-01-01T00:00:00Z".into()),
            ("model", "m".into()),
            ("sign-key-sha3-384", KEY.into()),
            ("brand-id", "b".into()),
            ("authority-id", "b".into()),
            ("architecture", "amd64".into()),
            ("series", "16".into()),
            ("revision", "0".into()),
            ("type", "model".into()),
            ("empty", Value::List(vec![])),
        ]);
        let (fin, content) = canonical_content(&h, "").unwrap();
        let want = format!(
            "type: model\nauthority-id: b\nseries: 16\nbrand-id: b\nmodel: m\narchitecture: amd64\ntimestamp: 2024-01-01T00:00:00Z\nsign-key-sha3-384: {KEY}"
        );
        assert_eq!(String::from_utf8(content).unwrap(), want);
        assert_eq!(
            fin.iter().map(|(n, _)| n).collect::<Vec<_>>()[..3],
            ["type", "authority-id", "series"]
        );
    }

    #[test]
    fn body_revision_and_nested_values() {
        let m: BTreeMap<String, Value> =
            [("z".to_owned(), "1".into()), ("a".to_owned(), "x\ny".into())].into();
        let h = headers(&[
            ("type", "account".into()),
            ("authority-id", "canonical".into()),
            ("account-id", "acc".into()),
            ("revision", "3".into()),
            ("list", Value::List(vec!["a".into(), Value::Map(m)])),
            ("sign-key-sha3-384", KEY.into()),
        ]);
        let (_, content) = canonical_content(&h, "hello\n").unwrap();
        let want = format!(
            "type: account\nauthority-id: canonical\nrevision: 3\naccount-id: acc\nlist:\n  - a\n  -\n    a:\n        x\n        y\n    z: 1\nbody-length: 6\nsign-key-sha3-384: {KEY}\n\nhello\n"
        );
        assert_eq!(String::from_utf8(content).unwrap(), want);
    }

    #[test]
    fn refusals() {
        let base = [
            ("type", Value::from("account")),
            ("authority-id", "c".into()),
            ("sign-key-sha3-384", KEY.into()),
        ];
        let err = canonical_content(&headers(&base), "").unwrap_err();
        assert_eq!(err.to_string(), r#""account-id" header is mandatory"#);
        let mut h = headers(&base);
        h.insert("account-id", "a".into());
        h.insert("format", "1".into());
        assert_eq!(
            canonical_content(&h, "").unwrap_err().to_string(),
            r#"cannot sign "account" assertion with format 1 higher than max supported format 0"#
        );
        h.insert("format", "0".into());
        h.insert("Bad", "x".into());
        assert_eq!(
            canonical_content(&h, "").unwrap_err().to_string(),
            r#"invalid header name: "Bad""#
        );
    }

    #[test]
    fn stream_separates_with_one_blank_line() {
        let text = format!(
            "type: account\nauthority-id: c\naccount-id: a\nsign-key-sha3-384: {KEY}\n\nAXNpZw=="
        );
        let a = decode(text.as_bytes()).unwrap();
        let stream = encode_stream(&[a.clone(), a]);
        assert_eq!(String::from_utf8(stream).unwrap(), format!("{text}\n\n{text}\n"));
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-z]([a-z0-9]|-[a-z0-9]){0,6}".prop_filter("reserved", |n| {
            !matches!(
                n.as_str(),
                "type"
                    | "format"
                    | "authority-id"
                    | "signatory-id"
                    | "revision"
                    | "body-length"
                    | "sign-key-sha3-384"
                    | "account-id"
            )
        })
    }

    fn text() -> impl Strategy<Value = String> {
        // Any printable text including spaces, colons, dashes and newlines.
        "[ -~\u{e9}\n]{0,20}"
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = text().prop_map(Value::String);
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..4).prop_map(Value::List),
                prop::collection::btree_map(name(), inner, 1..4).prop_map(Value::Map),
            ]
        })
    }

    proptest! {
        #[test]
        fn decode_encode_round_trip(
            extra in prop::collection::btree_map(name(), value(), 0..6),
            body in "[ -~\n]{0,40}",
            sig in "[A-Za-z0-9+/]{4,80}",
        ) {
            let mut h = headers(&[
                ("type", "account".into()),
                ("authority-id", "canonical".into()),
                ("account-id", "acc".into()),
                ("sign-key-sha3-384", KEY.into()),
            ]);
            for (n, v) in &extra {
                h.insert(n, v.clone());
            }
            let (fin, content) = canonical_content(&h, &body).unwrap();
            let mut bytes = content.clone();
            bytes.extend_from_slice(b"\n\n");
            bytes.extend_from_slice(sig.as_bytes());
            bytes.push(b'\n');
            let a = decode(&bytes).unwrap();
            // decode(encode(a)) == a
            prop_assert_eq!(a.headers(), &fin);
            prop_assert_eq!(a.body(), body.as_str());
            prop_assert_eq!(decode(&encode(&a)).unwrap(), a.clone());
            // encode(decode(bytes)) == bytes, and the canonical content is reproduced from the headers.
            prop_assert_eq!(encode(&a), bytes);
            let (_, again) = canonical_content(a.headers(), a.body()).unwrap();
            prop_assert_eq!(again, content);
            // the stream decoder agrees with the one-shot decoder
            let stream = encode_stream(&[a.clone(), a.clone()]);
            let both = super::super::decode_stream(&stream).unwrap();
            prop_assert_eq!(both.len(), 2);
            prop_assert_eq!(both[1].headers(), a.headers());
            prop_assert_eq!(both[1].content(), a.content());
        }

        #[test]
        fn parse_headers_never_panics(head in "[ -~\n]{0,200}") {
            let _ = parse_headers(head.as_bytes());
        }
    }
}
