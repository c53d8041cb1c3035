//! Nagios threshold ranges: `10`, `10:`, `~:10`, `10:20`, `@10:20`.
//!
//! \[pure\] The grammar of the Nagios plugin development guidelines ("Threshold and ranges"):
//! `[@]start:end`, where `start` and the colon may be left out when start is 0, an empty end is
//! infinity, `~` as start is minus infinity, and the range alerts when the value is outside
//! `start..=end`, or inside it when the range starts with `@`. Like the reference plugins' parser,
//! an empty start before the colon (`:10`) is 0.
//! Numbers are decimals with an optional sign (`-5`, `0.5`); exponents, `inf` and `nan` are refused
//! so that a range always reads the way it is written. This module does not know what is measured.

use std::fmt;

/// A parsed threshold range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// Lower end, inclusive; `f64::NEG_INFINITY` for `~`.
    pub start: f64,
    /// Upper end, inclusive; `f64::INFINITY` when left empty.
    pub end: f64,
    /// `@`: alert inside the range instead of outside it.
    pub inside: bool,
}

/// Why a range cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Nothing was given.
    #[error("must be a range such as 85, 10:, ~:10, 10:20 or @10:20, not an empty text")]
    Empty,
    /// A part is not a decimal number.
    #[error("must be a range such as 85, 10:, ~:10, 10:20 or @10:20; {0:?} is not a number")]
    Number(String),
    /// `~` where only a start may have it.
    #[error("must be a range whose end is a number or empty; \"~\" may only start it")]
    TildeEnd,
    /// The start is above the end.
    #[error("must be a range whose start ({start}) is not above its end ({end})")]
    Reversed {
        /// The start as written.
        start: String,
        /// The end as written.
        end: String,
    },
}

impl Range {
    /// Alerts above `end` (or below 0): `85`.
    pub const fn at(end: f64) -> Range {
        Range { start: 0.0, end, inside: false }
    }

    /// Alerts below `start`: `10:`.
    pub const fn below(start: f64) -> Range {
        Range { start, end: f64::INFINITY, inside: false }
    }

    /// Alerts above `end`, never below: `~:80`.
    pub const fn above(end: f64) -> Range {
        Range { start: f64::NEG_INFINITY, end, inside: false }
    }

    /// Whether `value` raises an alert. A NaN never matches; callers treat it as unknown.
    pub fn alerts(&self, value: f64) -> bool {
        if value.is_nan() {
            return false;
        }
        let within = self.start <= value && value <= self.end;
        within == self.inside
    }

    /// A few words for a sentence: `at 85`, `below 10`, `outside 10–20`, `between 10 and 20`,
    /// each number followed by `unit` (`" %"`, `" °C"`, or empty).
    pub fn describe(&self, unit: &str) -> String {
        let n = |v: f64| format!("{}{unit}", number(v));
        let low = self.start == f64::NEG_INFINITY || (self.start == 0.0 && !self.inside);
        match (self.inside, low, self.end.is_infinite()) {
            (false, true, true) => "never".to_string(),
            (false, true, false) => format!("at {}", n(self.end)),
            (false, false, true) => format!("below {}", n(self.start)),
            (false, false, false) => format!("outside {}–{}", number(self.start), n(self.end)),
            (true, _, _) => {
                let start =
                    if self.start.is_infinite() { "-∞".to_string() } else { n(self.start) };
                let end = if self.end.is_infinite() { "∞".to_string() } else { n(self.end) };
                format!("between {start} and {end}")
            }
        }
    }
}

/// `85`, `0.5`: Rust's shortest form that reads back to the same number (never an exponent).
fn number(value: f64) -> String {
    format!("{value}")
}

fn decimal(text: &str) -> Result<f64, Error> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let ok = !(whole.is_empty() && fraction.is_empty())
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && !(digits.contains('.') && fraction.is_empty() && whole.is_empty());
    match text.parse::<f64>() {
        Ok(v) if ok && v.is_finite() => Ok(v),
        _ => Err(Error::Number(text.to_string())),
    }
}

impl std::str::FromStr for Range {
    type Err = Error;

    fn from_str(text: &str) -> Result<Range, Error> {
        let text = text.trim();
        let (inside, body) = match text.strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if body.is_empty() {
            return Err(Error::Empty);
        }
        let (start_text, end_text) = match body.split_once(':') {
            Some((s, e)) => (Some(s), e),
            None => (None, body),
        };
        let start = match start_text {
            Some("~") => f64::NEG_INFINITY,
            Some("") | None => 0.0,
            Some(s) => decimal(s)?,
        };
        let end = match end_text {
            "" if start_text.is_some() => f64::INFINITY,
            "~" => return Err(Error::TildeEnd),
            e => decimal(e)?,
        };
        if start > end {
            return Err(Error::Reversed {
                start: start_text.unwrap_or("0").to_string(),
                end: end_text.to_string(),
            });
        }
        Ok(Range { start, end, inside })
    }
}

impl fmt::Display for Range {
    /// The shortest text that parses back to the same range.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.inside {
            f.write_str("@")?;
        }
        if self.start == f64::NEG_INFINITY {
            f.write_str("~:")?;
        } else if self.start != 0.0 || self.end.is_infinite() {
            write!(f, "{}:", number(self.start))?;
        }
        if self.end.is_finite() {
            f.write_str(&number(self.end))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> Range {
        text.parse().unwrap()
    }

    fn alerts(range: &str, values: &[f64]) -> Vec<bool> {
        values.iter().map(|v| r(range).alerts(*v)).collect()
    }

    #[test]
    fn guideline_examples() {
        // The table of the Nagios plugin guidelines, "Example ranges".
        let probe = [-1.0, 0.0, 5.0, 10.0, 10.5, 15.0, 20.0, 25.0];
        let t = true;
        let f = false;
        assert_eq!(alerts("10", &probe), [t, f, f, f, t, t, t, t], "< 0 or > 10");
        assert_eq!(alerts("10:", &probe), [t, t, t, f, f, f, f, f], "< 10");
        assert_eq!(alerts("~:10", &probe), [f, f, f, f, t, t, t, t], "> 10");
        assert_eq!(alerts("10:20", &probe), [t, t, t, f, f, f, f, t], "< 10 or > 20");
        assert_eq!(alerts("@10:20", &probe), [f, f, f, t, t, t, t, f], ">= 10 and <= 20");
    }

    #[test]
    fn guideline_command_line_examples() {
        // `-w 10 -c 20`, `-w 10:20 -c 30:`, `-w @5:10`, `-c 1:1`, `-c ~:0` (guidelines, examples).
        assert!(!r("10").alerts(10.0) && r("10").alerts(11.0) && r("20").alerts(21.0));
        assert!(r("30:").alerts(29.9) && !r("30:").alerts(1e9));
        assert!(r("@5:10").alerts(5.0) && r("@5:10").alerts(10.0) && !r("@5:10").alerts(10.1));
        assert!(!r("1:1").alerts(1.0) && r("1:1").alerts(0.0) && r("1:1").alerts(2.0));
        assert!(r("~:0").alerts(0.1) && !r("~:0").alerts(-100.0));
    }

    #[test]
    fn parts() {
        assert_eq!(r("10"), Range { start: 0.0, end: 10.0, inside: false });
        assert_eq!(r("10:"), Range { start: 10.0, end: f64::INFINITY, inside: false });
        assert_eq!(r("~:10"), Range { start: f64::NEG_INFINITY, end: 10.0, inside: false });
        assert_eq!(r("@10:20"), Range { start: 10.0, end: 20.0, inside: true });
        assert_eq!(r(":10"), r("10"));
        assert_eq!(r("~:"), Range { start: f64::NEG_INFINITY, end: f64::INFINITY, inside: false });
        assert_eq!(r(" 85 "), r("85"));
    }

    #[test]
    fn decimals_and_signs() {
        assert_eq!(r("0.5:1.25"), Range { start: 0.5, end: 1.25, inside: false });
        assert_eq!(r("-10:-5").start, -10.0);
        assert_eq!(r("+3").end, 3.0);
        assert_eq!(r(".5").end, 0.5);
        assert_eq!(r("5.").end, 5.0);
        assert!(r("-0.5:").alerts(-0.6));
    }

    #[test]
    fn edges_are_inclusive() {
        assert!(!r("10:20").alerts(10.0) && !r("10:20").alerts(20.0));
        assert!(r("@10:20").alerts(10.0) && r("@10:20").alerts(20.0));
        assert!(!r("0:0").alerts(0.0) && r("0:0").alerts(0.001));
        assert!(!r("10").alerts(f64::NAN) && !r("@0:10").alerts(f64::NAN));
    }

    #[test]
    fn errors_in_words() {
        let table = [
            ("", "must be a range such as 85, 10:, ~:10, 10:20 or @10:20, not an empty text"),
            ("@", "must be a range such as 85, 10:, ~:10, 10:20 or @10:20, not an empty text"),
            (
                "abc",
                r#"must be a range such as 85, 10:, ~:10, 10:20 or @10:20; "abc" is not a number"#,
            ),
            (
                "10:x",
                r#"must be a range such as 85, 10:, ~:10, 10:20 or @10:20; "x" is not a number"#,
            ),
            (
                "1e3",
                r#"must be a range such as 85, 10:, ~:10, 10:20 or @10:20; "1e3" is not a number"#,
            ),
            (
                "inf",
                r#"must be a range such as 85, 10:, ~:10, 10:20 or @10:20; "inf" is not a number"#,
            ),
            (
                "NaN:",
                r#"must be a range such as 85, 10:, ~:10, 10:20 or @10:20; "NaN" is not a number"#,
            ),
            (
                "1:2:3",
                r#"must be a range such as 85, 10:, ~:10, 10:20 or @10:20; "2:3" is not a number"#,
            ),
            (
                "@@1",
                r#"must be a range such as 85, 10:, ~:10, 10:20 or @10:20; "@1" is not a number"#,
            ),
            ("~", "must be a range whose end is a number or empty; \"~\" may only start it"),
            ("1:~", "must be a range whose end is a number or empty; \"~\" may only start it"),
            ("20:10", "must be a range whose start (20) is not above its end (10)"),
            ("-1", "must be a range whose start (0) is not above its end (-1)"),
            (".", r#"must be a range such as 85, 10:, ~:10, 10:20 or @10:20; "." is not a number"#),
            ("-", r#"must be a range such as 85, 10:, ~:10, 10:20 or @10:20; "-" is not a number"#),
        ];
        for (input, want) in table {
            assert_eq!(input.parse::<Range>().unwrap_err().to_string(), want, "{input:?}");
        }
    }

    #[test]
    fn display_is_the_short_form() {
        for text in [
            "10", "10:", "~:10", "10:20", "@10:20", "0:", "~:", "@10", "0.5", "-5:-1", "@~:3",
            "@3:",
        ] {
            assert_eq!(r(text).to_string(), text);
        }
        assert_eq!(r("0:10").to_string(), "10");
        assert_eq!(r(":10").to_string(), "10");
    }

    #[test]
    fn describe_for_sentences() {
        assert_eq!(r("85").describe(" %"), "at 85 %");
        assert_eq!(r("~:80").describe(" °C"), "at 80 °C");
        assert_eq!(r("10:").describe(" %"), "below 10 %");
        assert_eq!(r("10:20").describe(""), "outside 10–20");
        assert_eq!(r("@10:20").describe(" %"), "between 10 % and 20 %");
        assert_eq!(r("~:").describe(" %"), "never");
    }

    fn finite() -> impl proptest::strategy::Strategy<Value = f64> {
        proptest::prop_oneof![-1e6f64..1e6, (-1000i32..1000).prop_map(f64::from)]
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn display_parses_back(a in finite(), b in finite(), inside: bool, open_start: bool, open_end: bool) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let range = Range {
                start: if open_start { f64::NEG_INFINITY } else { lo },
                end: if open_end { f64::INFINITY } else { hi },
                inside,
            };
            let text = range.to_string();
            prop_assert_eq!(text.parse::<Range>(), Ok(range), "{}", text);
        }

        #[test]
        fn inside_is_the_opposite_of_outside(a in finite(), b in finite(), v in finite()) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let out = Range { start: lo, end: hi, inside: false };
            let ins = Range { inside: true, ..out };
            prop_assert_ne!(out.alerts(v), ins.alerts(v));
        }

        #[test]
        fn any_text_parses_or_errs_without_panic(text in "[@~:0-9.+-]{0,8}") {
            if let Ok(range) = text.parse::<Range>() {
                prop_assert!(range.start <= range.end);
                prop_assert_eq!(range.to_string().parse::<Range>(), Ok(range));
            }
        }
    }
}
