//! A small streaming JSON writer shared by the `json` and `legacy` encoders. \[pure\]
//!
//! The encoders write fields straight into the output in the order their format documents,
//! without building a `serde_json::Value` or an intermediate struct per snapshot.
//! The bytes go through `serde_json`'s [`Formatter`]: its string escaping and integer
//! writing, and two formatters of ours for what differs: [`Compact`] writes floats in Rust's
//! shortest form (`100`, never `1e2`, as `pocketses.metrics/v1` always has), and [`Python`]
//! writes what Python's `json.dumps` writes (`", "` and `": "`, floats as `repr`, `NaN`,
//! `ensure_ascii`), which the legacy format is byte for byte.

use serde_json::ser::Formatter;

use super::float;

/// How numbers and separators look.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Style {
    /// Compact separators, floats in Rust's shortest form (`12.5`, `0`), UTF-8 strings.
    Compact,
    /// Python's `json.dumps` defaults: `", "` and `": "`, floats as `repr`, `ensure_ascii`.
    Python,
}

/// serde_json's compact layout with floats as Rust's `Display` writes them.
struct Compact;

impl Formatter for Compact {
    fn write_f64<W: ?Sized + std::io::Write>(&mut self, w: &mut W, v: f64) -> std::io::Result<()> {
        write!(w, "{v}")
    }
}

/// Python's `json.dumps` defaults (floats are written by the writer with `float::push_python`).
struct Python;

impl Formatter for Python {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.begin_array_value(w, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }

    /// `ensure_ascii`: everything outside ASCII as `\uXXXX` UTF-16 units.
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut rest = fragment;
        while let Some(at) = rest.find(|c: char| !c.is_ascii()) {
            w.write_all(&rest.as_bytes()[..at])?;
            let mut chars = rest[at..].chars();
            if let Some(c) = chars.next() {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    write!(w, "\\u{u:04x}")?;
                }
            }
            rest = chars.as_str();
        }
        w.write_all(rest.as_bytes())
    }
}

/// Writes one JSON document.
pub(crate) struct Writer {
    out: Vec<u8>,
    style: Style,
    /// One flag per open container: whether it has no item yet.
    first: Vec<bool>,
    /// Set after a key, so that its value gets no separator.
    after_key: bool,
    /// Reused for `float::push_python`, which appends to a `String`.
    scratch: String,
}

/// Calls the same `Formatter` method on the writer's style. Writing into a `Vec` cannot fail.
macro_rules! fmt {
    ($self:ident, $method:ident $(, $arg:expr)*) => {{
        let _ = match $self.style {
            Style::Compact => Compact.$method(&mut $self.out $(, $arg)*),
            Style::Python => Python.$method(&mut $self.out $(, $arg)*),
        };
    }};
}

impl Writer {
    pub(crate) fn new(style: Style) -> Writer {
        Writer {
            out: Vec::with_capacity(4096),
            style,
            first: Vec::with_capacity(8),
            after_key: false,
            scratch: String::new(),
        }
    }

    pub(crate) fn finish(self) -> String {
        // Only `&str`s and ASCII were written, so this is UTF-8 and never lossy.
        String::from_utf8(self.out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// The separator before a value: none after a key, else the container's.
    fn item(&mut self) {
        if self.after_key {
            self.after_key = false;
            return;
        }
        if let Some(first) = self.first.last_mut() {
            let was_first = std::mem::replace(first, false);
            fmt!(self, begin_array_value, was_first);
        }
    }

    pub(crate) fn begin_object(&mut self) {
        self.item();
        fmt!(self, begin_object);
        self.first.push(true);
    }

    pub(crate) fn end_object(&mut self) {
        self.first.pop();
        fmt!(self, end_object);
    }

    pub(crate) fn begin_array(&mut self) {
        self.item();
        fmt!(self, begin_array);
        self.first.push(true);
    }

    pub(crate) fn end_array(&mut self) {
        self.first.pop();
        fmt!(self, end_array);
    }

    pub(crate) fn key(&mut self, k: &str) {
        self.item();
        self.push_string(k);
        fmt!(self, begin_object_value);
        self.after_key = true;
    }

    pub(crate) fn string(&mut self, s: &str) {
        self.item();
        self.push_string(s);
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.item();
        fmt!(self, write_u64, v);
    }

    /// A float. JSON lacks NaN and infinities: they become `null`, except in the Python style,
    /// which writes `NaN` and `Infinity` as `json.dumps` does.
    pub(crate) fn f64(&mut self, v: f64) {
        self.item();
        if !v.is_finite() {
            let text: &[u8] = match (self.style, v.is_nan(), v > 0.0) {
                (Style::Compact, _, _) => b"null",
                (Style::Python, true, _) => b"NaN",
                (Style::Python, false, true) => b"Infinity",
                (Style::Python, false, false) => b"-Infinity",
            };
            self.out.extend_from_slice(text);
            return;
        }
        match self.style {
            Style::Compact => fmt!(self, write_f64, v),
            Style::Python => {
                self.scratch.clear();
                float::push_python(&mut self.scratch, v);
                self.out.extend_from_slice(self.scratch.as_bytes());
            }
        }
    }

    pub(crate) fn opt_f64(&mut self, v: Option<f64>) {
        match v {
            Some(v) => self.f64(v),
            None => self.null(),
        }
    }

    pub(crate) fn bool(&mut self, v: bool) {
        self.item();
        fmt!(self, write_bool, v);
    }

    pub(crate) fn null(&mut self) {
        self.item();
        fmt!(self, write_null);
    }

    /// A quoted, escaped string, through serde_json's escaping with this style's formatter.
    fn push_string(&mut self, s: &str) {
        use serde::Serializer as _;
        let out = &mut self.out;
        let _ = match self.style {
            Style::Compact => serde_json::Serializer::with_formatter(out, Compact).serialize_str(s),
            Style::Python => serde_json::Serializer::with_formatter(out, Python).serialize_str(s),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(style: Style) -> String {
        let mut w = Writer::new(style);
        w.begin_object();
        w.key("a");
        w.u64(1);
        w.key("b");
        w.begin_array();
        w.f64(1.0);
        w.f64(0.25);
        w.null();
        w.bool(true);
        w.end_array();
        w.key("c\"é\n");
        w.begin_object();
        w.end_object();
        w.key("d");
        w.f64(f64::NAN);
        w.end_object();
        w.finish()
    }

    #[test]
    fn compact() {
        assert_eq!(
            sample(Style::Compact),
            "{\"a\":1,\"b\":[1,0.25,null,true],\"c\\\"é\\n\":{},\"d\":null}"
        );
    }

    #[test]
    fn python() {
        // What Python's json.dumps writes for the same object.
        assert_eq!(
            sample(Style::Python),
            "{\"a\": 1, \"b\": [1.0, 0.25, null, true], \"c\\\"\\u00e9\\n\": {}, \"d\": NaN}"
        );
    }

    #[test]
    fn escapes_controls_and_astral() {
        let mut w = Writer::new(Style::Python);
        w.string("\u{1}\u{1F600}\t");
        assert_eq!(w.finish(), "\"\\u0001\\ud83d\\ude00\\t\"");
        let mut w = Writer::new(Style::Compact);
        w.string("\u{1}\u{1F600}");
        let s = w.finish();
        assert_eq!(serde_json::from_str::<String>(&s).expect("valid json"), "\u{1}\u{1F600}");
    }

    proptest::proptest! {
        #[test]
        fn any_string_reads_back_in_both_styles(s in "\\PC*|[\\x00-\\x1f\"\\\\\u{7f}-\u{10ffff}]*") {
            for style in [Style::Compact, Style::Python] {
                let mut w = Writer::new(style);
                w.string(&s);
                let out = w.finish();
                if matches!(style, Style::Python) {
                    proptest::prop_assert!(out.is_ascii(), "{out}");
                }
                proptest::prop_assert_eq!(serde_json::from_str::<String>(&out).expect("valid json"), s.clone());
            }
        }
    }
}
