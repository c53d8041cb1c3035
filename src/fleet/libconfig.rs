//! The part of the libconfig text format that an SWUpdate `sw-description` uses: settings
//! (`name = value;` or `name: value;`), groups `{…}`, arrays `[…]`, lists `(…)`, strings with
//! C escapes (adjacent strings join), integers (decimal or `0x`, optional `L`), floats,
//! booleans and the three comment styles. \[pure\]
//!
//! It reads `sw-description` files written by `bundle create` and by SWUpdate's tools;
//! it does not write (the writer is [`crate::fleet::bundle`]'s, which emits a fixed layout).
//! Nesting is bounded ([`MAX_DEPTH`]) so no input can exhaust the stack.

/// Deepest nesting of groups, arrays and lists accepted.
pub const MAX_DEPTH: usize = 32;

/// A libconfig value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `true` / `false`.
    Bool(bool),
    /// An integer (64-bit, as libconfig's `L` integers).
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string.
    Str(String),
    /// `[ … ]` (scalars) or `( … )` (any values).
    List(Vec<Value>),
    /// `{ name = value; … }`, in order.
    Group(Vec<(String, Value)>),
}

impl Value {
    /// The setting `name` of a group.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Group(settings) => settings.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// A syntax error with its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct Error {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses a whole document: the top-level settings as one group.
///
/// # Errors
/// The first syntax error, with its line.
pub fn parse(text: &str) -> Result<Value, Error> {
    let mut p = Parser { s: text.as_bytes(), i: 0, line: 1 };
    let settings = p.settings(None, 0)?;
    Ok(Value::Group(settings))
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
}

impl Parser<'_> {
    fn err<T>(&self, message: impl Into<String>) -> Result<T, Error> {
        Err(Error { line: self.line, message: message.into() })
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn skip_ws(&mut self) -> Result<(), Error> {
        loop {
            match self.peek() {
                Some(c) if c.is_ascii_whitespace() => {
                    self.bump();
                }
                Some(b'#') => self.skip_line(),
                Some(b'/') if self.s.get(self.i + 1) == Some(&b'/') => self.skip_line(),
                Some(b'/') if self.s.get(self.i + 1) == Some(&b'*') => {
                    self.i += 2;
                    loop {
                        match self.bump() {
                            None => return self.err("unterminated comment"),
                            Some(b'*') if self.peek() == Some(b'/') => {
                                self.i += 1;
                                break;
                            }
                            Some(_) => {}
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.bump() {
            if c == b'\n' {
                break;
            }
        }
    }

    /// Settings up to `close` (or the end of input when `None`).
    fn settings(&mut self, close: Option<u8>, depth: usize) -> Result<Vec<(String, Value)>, Error> {
        let mut out = Vec::new();
        loop {
            self.skip_ws()?;
            match (self.peek(), close) {
                (None, None) => return Ok(out),
                (None, Some(_)) => return self.err("unexpected end of input"),
                (Some(c), Some(want)) if c == want => {
                    self.bump();
                    return Ok(out);
                }
                _ => {}
            }
            let name = self.name()?;
            self.skip_ws()?;
            match self.bump() {
                Some(b'=' | b':') => {}
                _ => return self.err(format!("expected '=' or ':' after {name:?}")),
            }
            let value = self.value(depth)?;
            self.skip_ws()?;
            if matches!(self.peek(), Some(b';' | b',')) {
                self.bump();
            }
            out.push((name, value));
        }
    }

    fn name(&mut self) -> Result<String, Error> {
        let start = self.i;
        while let Some(c) = self.peek() {
            let ok = c.is_ascii_alphabetic()
                || c == b'*'
                || (self.i > start && (c.is_ascii_digit() || c == b'-' || c == b'_'));
            if !ok {
                break;
            }
            self.i += 1;
        }
        if self.i == start {
            return self.err("expected a setting name");
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        if depth >= MAX_DEPTH {
            return self.err("nested too deeply");
        }
        self.skip_ws()?;
        match self.peek() {
            Some(b'{') => {
                self.bump();
                Ok(Value::Group(self.settings(Some(b'}'), depth + 1)?))
            }
            Some(open @ (b'[' | b'(')) => {
                self.bump();
                let close = if open == b'[' { b']' } else { b')' };
                let mut items = Vec::new();
                loop {
                    self.skip_ws()?;
                    if self.peek() == Some(close) {
                        self.bump();
                        return Ok(Value::List(items));
                    }
                    let item = self.value(depth + 1)?;
                    if open == b'[' && matches!(item, Value::List(_) | Value::Group(_)) {
                        return self.err("arrays hold only scalar values");
                    }
                    items.push(item);
                    self.skip_ws()?;
                    match self.peek() {
                        Some(b',') => {
                            self.bump();
                        }
                        Some(c) if c == close => {}
                        _ => return self.err(format!("expected ',' or '{}'", close as char)),
                    }
                }
            }
            Some(b'"') => {
                let mut out = Vec::new();
                loop {
                    self.string(&mut out)?;
                    self.skip_ws()?;
                    if self.peek() != Some(b'"') {
                        break;
                    }
                }
                match String::from_utf8(out) {
                    Ok(s) => Ok(Value::Str(s)),
                    Err(_) => self.err("string is not valid UTF-8"),
                }
            }
            Some(_) => self.scalar(),
            None => self.err("expected a value"),
        }
    }

    fn string(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.bump();
        loop {
            match self.bump() {
                None => return self.err("unterminated string"),
                Some(b'"') => return Ok(()),
                Some(b'\\') => {
                    let c = match self.bump() {
                        Some(b'n') => b'\n',
                        Some(b't') => b'\t',
                        Some(b'r') => b'\r',
                        Some(b'f') => 0x0c,
                        Some(b'\\') => b'\\',
                        Some(b'"') => b'"',
                        Some(b'x') => {
                            let hex = self.s.get(self.i..self.i + 2).unwrap_or_default();
                            let v = std::str::from_utf8(hex)
                                .ok()
                                .filter(|h| h.len() == 2)
                                .and_then(|h| u8::from_str_radix(h, 16).ok());
                            match v {
                                Some(v) => {
                                    self.i += 2;
                                    v
                                }
                                None => return self.err("invalid \\x escape"),
                            }
                        }
                        _ => return self.err("invalid escape in string"),
                    };
                    out.push(c);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn scalar(&mut self) -> Result<Value, Error> {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.') {
                self.i += 1;
            } else {
                break;
            }
        }
        let word = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        if word.eq_ignore_ascii_case("true") {
            return Ok(Value::Bool(true));
        }
        if word.eq_ignore_ascii_case("false") {
            return Ok(Value::Bool(false));
        }
        let digits = word.trim_end_matches(['L', 'l']);
        let (negative, unsigned) = match digits.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, digits.strip_prefix('+').unwrap_or(digits)),
        };
        let int = match unsigned.strip_prefix("0x").or_else(|| unsigned.strip_prefix("0X")) {
            Some(hex) => i64::from_str_radix(hex, 16).ok(),
            None if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) => {
                unsigned.parse::<i64>().ok()
            }
            None => None,
        };
        if let Some(v) = int {
            return Ok(Value::Int(if negative { -v } else { v }));
        }
        if !word.is_empty() && word.bytes().any(|b| b.is_ascii_digit()) {
            if let Ok(f) = word.parse::<f64>() {
                if f.is_finite() {
                    return Ok(Value::Float(f));
                }
            }
        }
        if word.is_empty() {
            return self.err("expected a value");
        }
        self.err(format!("invalid value {word:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sw_description_shapes() {
        let text = r#"
            # comment
            software =
            {
                version = "1.2.3";   // trailing comment
                /* block
                   comment */
                hardware-compatibility: [ "1.0", "rev-b" ];
                images: (
                    { filename = "a.snap"; size = 4096L; sha256 = "ab" "cd"; enabled = TRUE; },
                    { filename = "b"; size = 0x10; ratio = 1.5; }
                );
            };
        "#;
        let v = parse(text).unwrap();
        let sw = v.get("software").unwrap();
        assert_eq!(sw.get("version").unwrap().as_str(), Some("1.2.3"));
        assert_eq!(
            sw.get("hardware-compatibility"),
            Some(&Value::List(vec![Value::Str("1.0".into()), Value::Str("rev-b".into())]))
        );
        let Some(Value::List(images)) = sw.get("images") else { panic!() };
        assert_eq!(images[0].get("size"), Some(&Value::Int(4096)));
        assert_eq!(images[0].get("sha256").unwrap().as_str(), Some("abcd"));
        assert_eq!(images[0].get("enabled"), Some(&Value::Bool(true)));
        assert_eq!(images[1].get("size"), Some(&Value::Int(16)));
        assert_eq!(images[1].get("ratio"), Some(&Value::Float(1.5)));
    }

    #[test]
    fn escapes() {
        let v = parse(r#"s = "a\"b\\c\n\x41";"#).unwrap();
        assert_eq!(v.get("s").unwrap().as_str(), Some("a\"b\\c\nA"));
    }

    #[test]
    fn errors_name_their_line() {
        for (text, want) in [
            ("a = ;", "line 1: expected a value"),
            ("a = 1;\nb 2;", "line 2: expected '=' or ':' after \"b\""),
            ("a = \"x", "line 1: unterminated string"),
            ("a = { b = 1;", "line 1: unexpected end of input"),
            ("a = [ 1 2 ];", "line 1: expected ',' or ']'"),
            ("a = [ (1) ];", "line 1: arrays hold only scalar values"),
            ("a = \"\\q\";", "line 1: invalid escape in string"),
            ("a = zz;", "line 1: invalid value \"zz\""),
            ("/* x", "line 1: unterminated comment"),
            ("= 1;", "line 1: expected a setting name"),
        ] {
            assert_eq!(parse(text).unwrap_err().to_string(), want, "{text}");
        }
    }

    #[test]
    fn depth_is_bounded() {
        let deep = format!("a = {}{};", "(".repeat(100), ")".repeat(100));
        assert_eq!(parse(&deep).unwrap_err().message, "nested too deeply");
    }

    proptest! {
        #[test]
        fn never_panics(text in "[ -~\n]{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn never_panics_on_structure(text in proptest::collection::vec(proptest::sample::select(vec![
            "a", "=", ":", ";", ",", "{", "}", "(", ")", "[", "]", "\"s\"", "1", "0x", "-", "L", "#", "\n", "/*", "*/", "\\",
        ]), 0..60)) {
            let _ = parse(&text.concat());
        }
    }
}
