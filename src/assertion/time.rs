//! RFC 3339 timestamps as Go's `time.Parse(time.RFC3339, s)` reads them. \[pure\]
//!
//! Only what assertions need: parse (fractional seconds and offsets accepted), compare
//! instants, format as RFC 3339 in UTC, and Go's `Time.String()` form for snapd's messages.

use std::cmp::Ordering;
use std::fmt;

/// An instant read from an RFC 3339 string, keeping the offset it was written with.
#[derive(Debug, Clone, Copy)]
pub struct Timestamp {
    /// Seconds since the Unix epoch (UTC).
    pub unix: i64,
    /// Nanoseconds within the second.
    pub nanos: u32,
    /// The written offset from UTC in seconds (`None` for `Z`).
    pub offset: Option<i32>,
}

impl PartialEq for Timestamp {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Timestamp {}
impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timestamp {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.unix, self.nanos).cmp(&(other.unix, other.nanos))
    }
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn digits(s: &[u8], n: usize) -> Option<u32> {
    if s.len() < n || !s[..n].iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s[..n].iter().fold(0, |acc, c| acc * 10 + u32::from(c - b'0')))
}

impl Timestamp {
    /// Parses `2006-01-02T15:04:05[.frac](Z|±hh:mm)`.
    ///
    /// # Errors
    /// Go's `time.Parse` message, e.g. `parsing time "x" as "2006-01-02T15:04:05Z07:00": cannot parse "x" as "2006"`.
    pub fn parse(s: &str) -> Result<Timestamp, String> {
        const LAYOUT: &str = "2006-01-02T15:04:05Z07:00";
        let q = super::quote;
        let b = s.as_bytes();
        let cannot = |at: usize, elem: &str| {
            format!(
                "parsing time {} as {}: cannot parse {} as {}",
                q(s),
                q(LAYOUT),
                q(s.get(at..).unwrap_or("")),
                q(elem)
            )
        };
        let range = |what: &str| format!("parsing time {}: {what} out of range", q(s));
        // Layout elements: (position, width, name) for numbers, literals in between.
        let num = |at: usize, n: usize, elem: &str| {
            digits(b.get(at..).unwrap_or(&[]), n).ok_or_else(|| cannot(at, elem))
        };
        let lit = |at: usize, c: u8| {
            if b.get(at) == Some(&c) {
                Ok(())
            } else {
                Err(cannot(at, std::str::from_utf8(&[c]).unwrap_or("")))
            }
        };
        let year = num(0, 4, "2006")?;
        lit(4, b'-')?;
        let month = num(5, 2, "01")?;
        lit(7, b'-')?;
        let day = num(8, 2, "02")?;
        lit(10, b'T')?;
        let hour = num(11, 2, "15")?;
        lit(13, b':')?;
        let min = num(14, 2, "04")?;
        lit(16, b':')?;
        let sec = num(17, 2, "05")?;
        let year = i64::from(year);
        if !(1..=12).contains(&month) {
            return Err(range("month"));
        }
        if day < 1 || day > days_in_month(year, month) {
            return Err(range("day"));
        }
        if hour > 23 {
            return Err(range("hour"));
        }
        if min > 59 {
            return Err(range("minute"));
        }
        if sec > 59 {
            return Err(range("second"));
        }
        let mut at = 19;
        let mut nanos = 0u32;
        if b.get(at) == Some(&b'.') {
            let n = b[at + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return Err(cannot(at, "Z07:00"));
            }
            let kept = n.min(9);
            nanos = digits(&b[at + 1..], kept).ok_or_else(|| cannot(at, "Z07:00"))?
                * 10u32.pow(u32::try_from(9 - kept).unwrap_or(0));
            at += 1 + n;
        }
        let rest = &b[at..];
        let offset = match rest {
            [b'Z', ..] => {
                if rest.len() > 1 {
                    return Err(format!(
                        "parsing time {}: extra text: {}",
                        q(s),
                        q(s.get(at + 1..).unwrap_or(""))
                    ));
                }
                None
            }
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2, tail @ ..] => {
                let h = digits(&[*h1, *h2], 2).ok_or_else(|| cannot(at, "Z07:00"))?;
                let m = digits(&[*m1, *m2], 2).ok_or_else(|| cannot(at, "Z07:00"))?;
                if !tail.is_empty() {
                    return Err(format!(
                        "parsing time {}: extra text: {}",
                        q(s),
                        q(s.get(at + 6..).unwrap_or(""))
                    ));
                }
                if h > 23 || m > 59 {
                    return Err(range("time zone offset"));
                }
                let secs = i32::try_from(h * 3600 + m * 60).unwrap_or(0);
                Some(if *sign == b'-' { -secs } else { secs })
            }
            _ => return Err(cannot(at, "Z07:00")),
        };
        let days = days_from_civil(year, month, day);
        let local = days * 86_400 + i64::from(hour * 3600 + min * 60 + sec);
        Ok(Timestamp { unix: local - i64::from(offset.unwrap_or(0)), nanos, offset })
    }

    /// The instant `unix` seconds after the epoch, in UTC.
    pub fn from_unix(unix: i64) -> Timestamp {
        Timestamp { unix, nanos: 0, offset: None }
    }

    fn parts(&self) -> (i64, u32, u32, u32, u32, u32) {
        let local = self.unix + i64::from(self.offset.unwrap_or(0));
        let (y, mo, d) = civil_from_days(local.div_euclid(86_400));
        let secs = u32::try_from(local.rem_euclid(86_400)).unwrap_or(0);
        (y, mo, d, secs / 3600, secs / 60 % 60, secs % 60)
    }

    /// RFC 3339 in UTC without fractions, e.g. `2024-01-02T03:04:05Z` (what `--timestamp now` writes).
    pub fn to_rfc3339_utc(&self) -> String {
        let t = Timestamp { offset: None, ..*self };
        let (y, mo, d, h, mi, s) = t.parts();
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }
}

/// Go's `Time.String()`: `2017-07-27 00:00:00 +0000 UTC`, used in snapd's messages.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d, h, mi, s) = self.parts();
        write!(f, "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")?;
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        match self.offset {
            None => write!(f, " +0000 UTC"),
            Some(o) => {
                let sign = if o < 0 { '-' } else { '+' };
                let zone = format!("{sign}{:02}{:02}", o.abs() / 3600, o.abs() / 60 % 60);
                write!(f, " {zone} {zone}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_rfc3339() {
        let t = Timestamp::parse("2016-01-01T00:00:00Z").unwrap();
        assert_eq!(t.unix, 1_451_606_400);
        let t = Timestamp::parse("2017-07-27T00:00:00.0Z").unwrap();
        assert_eq!(t.to_string(), "2017-07-27 00:00:00 +0000 UTC");
        let t = Timestamp::parse("2022-04-04T10:40:41+02:00").unwrap();
        assert_eq!(t.to_rfc3339_utc(), "2022-04-04T08:40:41Z");
        assert_eq!(t.to_string(), "2022-04-04 10:40:41 +0200 +0200");
        let t = Timestamp::parse("2024-02-29T23:59:59.5-01:30").unwrap();
        assert_eq!(t.nanos, 500_000_000);
        assert_eq!(t.to_rfc3339_utc(), "2024-03-01T01:29:59Z");
        assert!(
            Timestamp::parse("2024-01-01T00:00:00.0Z")
                == Timestamp::parse("2024-01-01T01:00:00+01:00")
        );
    }

    #[test]
    fn errors_like_go() {
        assert_eq!(
            Timestamp::parse("yesterday").unwrap_err(),
            r#"parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006""#
        );
        assert_eq!(
            Timestamp::parse("2016-01-01").unwrap_err(),
            r#"parsing time "2016-01-01" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "T""#
        );
        assert_eq!(
            Timestamp::parse("2016-13-01T00:00:00Z").unwrap_err(),
            r#"parsing time "2016-13-01T00:00:00Z": month out of range"#
        );
        assert_eq!(
            Timestamp::parse("2016-01-01T00:00:00").unwrap_err(),
            r#"parsing time "2016-01-01T00:00:00" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "Z07:00""#
        );
    }

    #[test]
    fn rejects_non_rfc3339() {
        for bad in [
            "",
            "2016-01-01",
            "2016-01-01 00:00:00Z",
            "2016-01-01T00:00:00",
            "2016-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2016-01-01T24:00:00Z",
            "2016-01-01T00:00:00.Z",
            "2016-01-01T00:00:00+0100",
            "2016-01-01T00:00:00Zjunk",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn civil_round_trip() {
        for days in [-800_000i64, -1, 0, 1, 59, 365, 10_000, 20_000, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
