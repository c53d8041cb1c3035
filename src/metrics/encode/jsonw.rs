//! A small streaming JSON writer shared by the `json` and `legacy` encoders. \[pure\]
//!
//! The encoders write straight into a `String` in a fixed key order instead of going through
//! `serde_json::Value`, which would sort the keys: key order is part of the legacy format.

use super::float;

/// How numbers and separators look.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Style {
    /// Compact separators, floats in Rust's shortest form (`12.5`, `0`), UTF-8 strings.
    Compact,
    /// Python's `json.dumps` defaults: `", "` and `": "`, floats as `repr`, `ensure_ascii`.
    Python,
}

/// Writes one JSON document.
pub(crate) struct Writer {
    out: String,
    style: Style,
    /// One flag per open container: whether it has no item yet.
    first: Vec<bool>,
    /// Set after a key, so that its value gets no separator.
    after_key: bool,
}

impl Writer {
    pub(crate) fn new(style: Style) -> Writer {
        Writer {
            out: String::with_capacity(4096),
            style,
            first: Vec::with_capacity(8),
            after_key: false,
        }
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }

    fn item(&mut self) {
        if self.after_key {
            self.after_key = false;
            return;
        }
        if let Some(first) = self.first.last_mut() {
            if *first {
                *first = false;
            } else {
                self.out.push_str(match self.style {
                    Style::Compact => ",",
                    Style::Python => ", ",
                });
            }
        }
    }

    pub(crate) fn begin_object(&mut self) {
        self.item();
        self.out.push('{');
        self.first.push(true);
    }

    pub(crate) fn end_object(&mut self) {
        self.first.pop();
        self.out.push('}');
    }

    pub(crate) fn begin_array(&mut self) {
        self.item();
        self.out.push('[');
        self.first.push(true);
    }

    pub(crate) fn end_array(&mut self) {
        self.first.pop();
        self.out.push(']');
    }

    pub(crate) fn key(&mut self, k: &str) {
        self.item();
        self.push_string(k);
        self.out.push_str(match self.style {
            Style::Compact => ":",
            Style::Python => ": ",
        });
        self.after_key = true;
    }

    pub(crate) fn string(&mut self, s: &str) {
        self.item();
        self.push_string(s);
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.item();
        use std::fmt::Write as _;
        let _ = write!(self.out, "{v}");
    }

    /// A float. JSON lacks NaN and infinities: they become `null`, except in the Python style,
    /// which writes `NaN` and `Infinity` as `json.dumps` does.
    pub(crate) fn f64(&mut self, v: f64) {
        self.item();
        if !v.is_finite() {
            self.out.push_str(match (self.style, v.is_nan(), v > 0.0) {
                (Style::Compact, _, _) => "null",
                (Style::Python, true, _) => "NaN",
                (Style::Python, false, true) => "Infinity",
                (Style::Python, false, false) => "-Infinity",
            });
            return;
        }
        match self.style {
            Style::Compact => {
                use std::fmt::Write as _;
                let _ = write!(self.out, "{v}");
            }
            Style::Python => float::push_python(&mut self.out, v),
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
        self.out.push_str(if v { "true" } else { "false" });
    }

    pub(crate) fn null(&mut self) {
        self.item();
        self.out.push_str("null");
    }

    fn push_string(&mut self, s: &str) {
        use std::fmt::Write as _;
        let ascii = matches!(self.style, Style::Python);
        self.out.push('"');
        for c in s.chars() {
            match c {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                '\r' => self.out.push_str("\\r"),
                '\t' => self.out.push_str("\\t"),
                '\u{8}' => self.out.push_str("\\b"),
                '\u{c}' => self.out.push_str("\\f"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(self.out, "\\u{:04x}", c as u32);
                }
                c if ascii && !c.is_ascii() => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        let _ = write!(self.out, "\\u{u:04x}");
                    }
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
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
}
