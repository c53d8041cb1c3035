//! Number formatting shared by the encoders. \[pure\]
//!
//! Go's `strconv.FormatFloat(v, 'g', -1, 64)` (what node_exporter writes), Python's `repr` of a
//! float and Python's `round(x, n)` (what the original pocketses wrote). All three start from
//! the shortest decimal digits that read back to the same `f64`, which Rust's `{:e}` gives.

use std::fmt::Write as _;

/// The shortest round-trip decimal digits of a finite, non-zero magnitude:
/// value = 0.d₁d₂…dₙ × 10^`point`.
struct Digits {
    buf: [u8; 24],
    len: usize,
    point: i32,
}

impl Digits {
    fn of(v: f64) -> Digits {
        let mut w = StackWriter { buf: [0; 40], len: 0 };
        // `{:e}` writes the shortest digits that round-trip: "8.25524224e9".
        let _ = write!(w, "{:e}", v.abs());
        let text = &w.buf[..w.len];
        let mut out = Digits { buf: [0; 24], len: 0, point: 0 };
        let mut exp_at = text.len();
        for (i, &c) in text.iter().enumerate() {
            match c {
                b'0'..=b'9' if out.len < out.buf.len() => {
                    out.buf[out.len] = c;
                    out.len += 1;
                }
                b'e' => {
                    exp_at = i + 1;
                    break;
                }
                _ => {}
            }
        }
        let exp: i32 =
            std::str::from_utf8(&text[exp_at..]).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
        // Trailing zeros are not significant ("1e2" has one digit, but keep it safe).
        while out.len > 1 && out.buf[out.len - 1] == b'0' {
            out.len -= 1;
        }
        out.point = exp + 1;
        out.break_tie_to_even(v.abs());
        out
    }

    /// Rust's shortest digits break an exact tie between two equally close shortest candidates
    /// upwards; Go's Ryū (and CPython) pick the even last digit. A tie means `v` is exactly the
    /// midpoint, i.e. its exact expansion is the shorter digits followed by a single 5.
    fn break_tie_to_even(&mut self, v: f64) {
        let nd = self.len;
        if nd == 0 || (self.buf[nd - 1] - b'0').is_multiple_of(2) {
            return;
        }
        // nd + 1 significant digits, correctly rounded: a tie shows as a final 5.
        let longer = format!("{:.*e}", nd, v);
        let Some((mantissa, exp)) = longer.split_once('e') else { return };
        let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
        if digits.len() != nd + 1 || digits[nd] != b'5' {
            return;
        }
        // Exact only if nothing follows the 5: 767 digits cover any f64's full expansion.
        let exact = format!("{:.*e}", 770, v);
        let Some((exact_mantissa, _)) = exact.split_once('e') else { return };
        let exact_digits: Vec<u8> = exact_mantissa.bytes().filter(u8::is_ascii_digit).collect();
        if exact_digits.get(..nd + 1) != Some(&digits[..])
            || exact_digits[nd + 1..].iter().any(|&c| c != b'0')
        {
            return;
        }
        let Ok(exp) = exp.parse::<i32>() else { return };
        // The candidates are digits[..nd] and digits[..nd] + 1 ulp; take the even one.
        let mut lower = digits[..nd].to_vec();
        let mut point = exp + 1;
        if (lower[nd - 1] - b'0') % 2 == 1 {
            // Round the lower candidate up by one in the last place, carrying.
            let mut i = nd;
            loop {
                if i == 0 {
                    lower.insert(0, b'1');
                    lower.pop();
                    point += 1;
                    break;
                }
                i -= 1;
                if lower[i] == b'9' {
                    lower[i] = b'0';
                } else {
                    lower[i] += 1;
                    break;
                }
            }
        }
        while lower.len() > 1 && lower[lower.len() - 1] == b'0' {
            lower.pop();
        }
        self.buf = [0; 24];
        self.buf[..lower.len()].copy_from_slice(&lower);
        self.len = lower.len();
        self.point = point;
    }

    fn digits(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

struct StackWriter {
    buf: [u8; 40],
    len: usize,
}

impl std::fmt::Write for StackWriter {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let bytes = s.as_bytes();
        let end = self.len + bytes.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

/// Appends Go's `strconv.FormatFloat(v, 'g', -1, 64)`: shortest digits, exponent form
/// (`e+09`, at least two exponent digits) when the decimal exponent is below -4 or at least 6.
pub fn push_go(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if v.is_sign_negative() {
        out.push('-');
    }
    if v == 0.0 {
        out.push('0');
        return;
    }
    let d = Digits::of(v);
    let exp = d.point - 1;
    if !(-4..6).contains(&exp) {
        push_exponent(out, d.digits(), exp);
    } else {
        push_fixed(out, d.digits(), d.point);
    }
}

/// Go's `FormatFloat(v, 'g', -1, 64)` as a new string.
pub fn go(v: f64) -> String {
    let mut s = String::new();
    push_go(&mut s, v);
    s
}

/// Appends a sample value the way Prometheus' client_golang does: Go's format, except that
/// negative zero is written `0`.
pub fn push_prometheus(out: &mut String, v: f64) {
    if v == 0.0 {
        out.push('0');
    } else {
        push_go(out, v);
    }
}

/// Appends Python's `repr(v)` of a float: `12.3`, `100.0`, `1e-05`, `1.5e+16`, `nan`, `inf`.
pub fn push_python(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("nan");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "inf" } else { "-inf" });
        return;
    }
    if v.is_sign_negative() {
        out.push('-');
    }
    if v == 0.0 {
        out.push_str("0.0");
        return;
    }
    let d = Digits::of(v);
    if d.point <= -4 || d.point > 16 {
        push_exponent(out, d.digits(), d.point - 1);
    } else {
        push_fixed(out, d.digits(), d.point);
        if i32::try_from(d.digits().len()).unwrap_or(i32::MAX) <= d.point {
            out.push_str(".0");
        }
    }
}

/// Python's `round(v, ndigits)` for a float: the nearest `f64` to `v` correctly rounded to
/// `ndigits` decimals, ties to even on the exact binary value (as CPython does).
pub fn python_round(v: f64, ndigits: usize) -> f64 {
    if !v.is_finite() {
        return v;
    }
    // Rust's fixed-precision formatting is exact and rounds ties to even, like CPython's
    // `round`, which works on the exact decimal expansion too.
    format!("{v:.ndigits$}").parse().unwrap_or(v)
}

fn push_exponent(out: &mut String, digits: &[u8], exp: i32) {
    out.push(char::from(digits[0]));
    if digits.len() > 1 {
        out.push('.');
        for &c in &digits[1..] {
            out.push(char::from(c));
        }
    }
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    let e = exp.unsigned_abs();
    if e < 10 {
        out.push('0');
    }
    let _ = write!(out, "{e}");
}

fn push_fixed(out: &mut String, digits: &[u8], point: i32) {
    let nd = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    if point > 0 {
        for i in 0..point {
            out.push(if i < nd { char::from(digits[i as usize]) } else { '0' });
        }
    } else {
        out.push('0');
    }
    let frac = (nd - point).max(0);
    if frac > 0 {
        out.push('.');
        for i in 0..frac {
            let j = point + i;
            out.push(if (0..nd).contains(&j) { char::from(digits[j as usize]) } else { '0' });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Values taken from real node_exporter 1.5.0 output on this machine
    /// (tests/fixtures/node_exporter/debian-1.5.0-vm.prom) and from peers.md §2.1.
    const NODE_EXPORTER: &[(f64, &str)] = &[
        (8255242240.0, "8.25524224e+09"),
        (456372224.0, "4.56372224e+08"),
        (2.4e9, "2.4e+09"),
        (123456.78, "123456.78"),
        (2.1e-5, "2.1e-05"),
        (1795320726.0, "1.795320726e+09"),
        (586.11, "586.11"),
        (1.27, "1.27"),
        (0.8, "0.8"),
        (270553174016.0, "2.70553174016e+11"),
        (25276063744.0, "2.5276063744e+10"),
        (16777216.0, "1.6777216e+07"),
        (1795321466.704372, "1.795321466704372e+09"),
        (18446744073709551615.0, "1.8446744073709552e+19"),
        (1.79532146594e9, "1.79532146594e+09"),
        (20000.0, "20000"),
        (11.0, "11"),
        (0.01, "0.01"),
    ];

    #[test]
    fn matches_node_exporter() {
        for &(v, want) in NODE_EXPORTER {
            assert_eq!(go(v), want, "{v}");
        }
    }

    /// Go 1.19's `strconv.FormatFloat(v, 'g', -1, 64)` on edge values, produced by a throwaway
    /// Go program on this machine.
    #[test]
    fn matches_go_on_edges() {
        let table: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-1.0, "-1"),
            (100000.0, "100000"),
            (999999.0, "999999"),
            (1000000.0, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00012345, "0.00012345"),
            (0.00001, "1e-05"),
            (1e100, "1e+100"),
            (1e-100, "1e-100"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (0.1 + 0.2, "0.30000000000000004"),
            (123456.5, "123456.5"),
            (-2.5e-7, "-2.5e-07"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for &(v, want) in table {
            assert_eq!(go(v), want, "{v}");
        }
    }

    /// 2,000 values (random bit patterns and realistic magnitudes) formatted by Go 1.19's
    /// `strconv.FormatFloat(v, 'g', -1, 64)`: tests/fixtures/go-formatfloat-g.txt.
    #[test]
    fn matches_go_fixture() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/go-formatfloat-g.txt");
        let text = std::fs::read_to_string(path).expect("fixture");
        let mut n = 0;
        for line in text.lines() {
            let (bits, want) = line.split_once(' ').expect("line");
            let v = f64::from_bits(u64::from_str_radix(bits, 16).expect("hex"));
            assert_eq!(go(v), want, "{bits}");
            n += 1;
        }
        assert!(n > 2000);
    }

    #[test]
    fn prometheus_writes_negative_zero_as_zero() {
        let mut s = String::new();
        push_prometheus(&mut s, -0.0);
        assert_eq!(s, "0");
    }

    #[test]
    fn python_repr() {
        let table: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (12.3, "12.3"),
            (100.0, "100.0"),
            (2445.4, "2445.4"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (-3.25, "-3.25"),
            (f64::NAN, "nan"),
        ];
        for &(v, want) in table {
            let mut s = String::new();
            push_python(&mut s, v);
            assert_eq!(s, want, "{v}");
        }
    }

    #[test]
    fn python_round_ties() {
        // CPython: round(0.25, 1) == 0.2, round(0.35, 1) == 0.3 (0.35 is below the tie in binary),
        // round(0.45, 1) == 0.5, round(2.675, 2) == 2.67, round(42.25, 1) == 42.2.
        assert_eq!(python_round(0.25, 1), 0.2);
        assert_eq!(python_round(0.35, 1), 0.3);
        assert_eq!(python_round(0.45, 1), 0.5);
        assert_eq!(python_round(2.675, 2), 2.67);
        assert_eq!(python_round(42.25, 1), 42.2);
        assert_eq!(python_round(99.99, 1), 100.0);
    }

    proptest! {
        #[test]
        fn go_format_reads_back(bits in any::<u64>()) {
            let v = f64::from_bits(bits);
            let s = go(v);
            if v.is_nan() {
                prop_assert_eq!(s, "NaN");
            } else {
                let back: f64 = s.trim_start_matches('+').parse().expect("parse");
                prop_assert_eq!(back.to_bits(), v.to_bits(), "{} -> {}", v, s);
            }
        }

        #[test]
        fn python_repr_reads_back(v in any::<f64>().prop_filter("finite", |v| v.is_finite())) {
            let mut s = String::new();
            push_python(&mut s, v);
            let back: f64 = s.parse().expect("parse");
            prop_assert_eq!(back.to_bits(), v.to_bits(), "{} -> {}", v, s);
        }
    }
}
