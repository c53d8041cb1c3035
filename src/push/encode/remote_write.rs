//! Prometheus remote-write 1.0 messages: a hand-written protobuf writer and reader. \[pure\]
//!
//! ```text
//! message WriteRequest { repeated TimeSeries timeseries = 1; }
//! message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//! message Label        { string name = 1; string value = 2; }
//! message Sample       { double value = 1; int64 timestamp = 2; }   // milliseconds
//! ```
//!
//! Four messages of two fields each do not earn a code generator (ARCHITECTURE.md says why
//! there is no `prost`). The writer emits the canonical proto3 bytes: fields in number order,
//! zero scalars (`value` +0.0, `timestamp` 0) left out, lengths as the shortest varints. The
//! reader takes any valid encoding (fields in any order, repeated scalars keep the last,
//! unknown fields skipped by their wire type), and refuses truncated or malformed input with
//! an error, never a panic.
//!
//! A `WriteRequest` is nothing but its repeated `timeseries` entries one after the other, so the
//! concatenation of encoded requests is itself an encoded request with all their series: the
//! push spool keeps one request per snapshot and a batch is their concatenation.
//!
//! What this module does not do: choose labels, sort them or compress (see
//! [`super`]); other remote-write messages (metadata, exemplars, histograms, 2.0).

/// Protobuf wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// The NaN Prometheus uses for a real NaN value (`value.NormalNaN`); every other NaN payload is
/// written as this one, so that none can be taken for the staleness marker
/// (`value.StaleNaN`, 0x7ff0000000000002).
pub const NORMAL_NAN: u64 = 0x7ff8_0000_0000_0001;

/// One series as the reader sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSeries {
    /// `(name, value)` pairs in wire order.
    pub labels: Vec<(String, String)>,
    /// `(value, timestamp in ms)` pairs in wire order.
    pub samples: Vec<(f64, i64)>,
}

/// Why bytes are not a `WriteRequest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ends inside a field.
    #[error("truncated protobuf at byte {0}")]
    Truncated(usize),
    /// A varint longer than 10 bytes, a wire type protobuf does not have, field number 0, or a
    /// known field with the wrong wire type.
    #[error("malformed protobuf at byte {0}")]
    Malformed(usize),
    /// A label name or value that is not UTF-8.
    #[error("label at byte {0} is not utf-8")]
    NotUtf8(usize),
}

// Each cast keeps the low seven bits (or the last group, below 0x80) on purpose.
#[allow(clippy::cast_possible_truncation)]
pub(super) fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        // Seven bits per byte, low group first; the cast keeps exactly those bits.
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint at the start of `buf`: (value, bytes used), `None` when truncated or longer
/// than ten bytes.
pub(super) fn read_varint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut fields = Fields::new(buf, 0);
    let v = fields.varint().ok()?;
    Some((v, fields.at))
}

fn varint_len(v: u64) -> usize {
    // One byte per started group of seven bits; zero takes one byte.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

fn usize_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn tag(field: u8, wire: u8) -> u8 {
    (field << 3) | wire
}

/// Bytes of a length-delimited field's body of `n` bytes, tag and length included.
fn len_field(n: usize) -> usize {
    1 + varint_len(usize_u64(n)) + n
}

/// The bits written for a sample value: NaNs become [`NORMAL_NAN`].
pub fn value_bits(value: f64) -> u64 {
    if value.is_nan() {
        NORMAL_NAN
    } else {
        value.to_bits()
    }
}

fn sample_len(value_bits: u64, timestamp_ms: i64) -> usize {
    let mut n = 0;
    if value_bits != 0 {
        n += 1 + 8;
    }
    if timestamp_ms != 0 {
        // int64 is a plain varint of the two's complement: negative times take 10 bytes.
        n += 1 + varint_len(timestamp_ms as u64);
    }
    n
}

/// Appends one `timeseries` entry of a `WriteRequest` (field 1) with `labels` in the order
/// given and one sample; label pairs with an empty value are left out (Prometheus treats an
/// empty value as no label).
pub fn push_series(out: &mut Vec<u8>, labels: &[(&str, &str)], value: f64, timestamp_ms: i64) {
    let each = |f: &mut dyn FnMut(&str, &str)| {
        for (k, v) in labels {
            f(k, v);
        }
    };
    push_series_with(out, each, value, timestamp_ms);
}

/// [`push_series`] with the labels given by `labels`, which calls its argument once per label
/// pair, in wire order, the same pairs each time (it is called twice: to measure, then to
/// write). Lets a caller merge label lists without collecting them.
pub fn push_series_with<L>(out: &mut Vec<u8>, labels: L, value: f64, timestamp_ms: i64)
where
    L: Fn(&mut dyn FnMut(&str, &str)),
{
    let bits = value_bits(value);
    let label_body = |k: &str, v: &str| len_field(k.len()) + len_field(v.len());
    let mut labels_len = 0;
    labels(&mut |k, v| {
        if !v.is_empty() {
            labels_len += len_field(label_body(k, v));
        }
    });
    let series_len = labels_len + len_field(sample_len(bits, timestamp_ms));
    out.reserve(len_field(series_len));
    out.push(tag(1, LEN));
    push_varint(out, usize_u64(series_len));
    labels(&mut |k, v| {
        if v.is_empty() {
            return;
        }
        out.push(tag(1, LEN));
        push_varint(out, usize_u64(label_body(k, v)));
        for (field, text) in [(1, k), (2, v)] {
            out.push(tag(field, LEN));
            push_varint(out, usize_u64(text.len()));
            out.extend_from_slice(text.as_bytes());
        }
    });
    out.push(tag(2, LEN));
    push_varint(out, usize_u64(sample_len(bits, timestamp_ms)));
    if bits != 0 {
        out.push(tag(1, FIXED64));
        out.extend_from_slice(&bits.to_le_bytes());
    }
    if timestamp_ms != 0 {
        out.push(tag(2, VARINT));
        push_varint(out, timestamp_ms as u64);
    }
}

/// One field of a message: its number and its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32,
}

/// Walks the fields of one message; `base` is the message's offset in the whole input, for
/// error positions.
struct Fields<'a> {
    buf: &'a [u8],
    at: usize,
    base: usize,
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8], base: usize) -> Fields<'a> {
        Fields { buf, at: 0, base }
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let start = self.base + self.at;
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.at) else {
                return Err(DecodeError::Truncated(start));
            };
            self.at += 1;
            if i == 9 && b > 1 {
                return Err(DecodeError::Malformed(start));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(DecodeError::Malformed(start))
    }

    fn take(&mut self, n: usize, start: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n).ok_or(DecodeError::Malformed(start))?;
        let bytes = self.buf.get(self.at..end).ok_or(DecodeError::Truncated(start))?;
        self.at = end;
        Ok(bytes)
    }

    /// The next field as (number, payload, offset of its payload in the whole input).
    fn next_field(&mut self) -> Option<Result<(u64, Field<'a>, usize), DecodeError>> {
        if self.at >= self.buf.len() {
            return None;
        }
        Some(self.read_field())
    }

    fn read_field(&mut self) -> Result<(u64, Field<'a>, usize), DecodeError> {
        let start = self.base + self.at;
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 {
            return Err(DecodeError::Malformed(start));
        }
        let payload_at = self.base + self.at;
        let field = match (key & 7) as u8 {
            VARINT => Field::Varint(self.varint()?),
            FIXED64 => {
                let b = self.take(8, start)?;
                let mut le = [0u8; 8];
                le.copy_from_slice(b);
                Field::Fixed64(u64::from_le_bytes(le))
            }
            LEN => {
                let n =
                    usize::try_from(self.varint()?).map_err(|_| DecodeError::Malformed(start))?;
                let payload_at = self.base + self.at;
                let bytes = self.take(n, start)?;
                return Ok((number, Field::Bytes(bytes), payload_at));
            }
            FIXED32 => {
                self.take(4, start)?;
                Field::Fixed32
            }
            _ => return Err(DecodeError::Malformed(start)),
        };
        Ok((number, field, payload_at))
    }
}

/// Calls `each` with every `timeseries` entry of a `WriteRequest` (its bytes and offset).
fn each_series<'a>(
    buf: &'a [u8],
    mut each: impl FnMut(&'a [u8], usize) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let mut fields = Fields::new(buf, 0);
    while let Some(field) = fields.next_field() {
        let (number, field, at) = field?;
        match (number, field) {
            (1, Field::Bytes(series)) => each(series, at)?,
            (1, _) => return Err(DecodeError::Malformed(at)),
            _ => {}
        }
    }
    Ok(())
}

/// The number of samples in an encoded `WriteRequest`, checking its structure down to the
/// samples (labels are not decoded).
pub fn count_samples(buf: &[u8]) -> Result<usize, DecodeError> {
    let mut n = 0;
    each_series(buf, |series, base| {
        let mut fields = Fields::new(series, base);
        while let Some(field) = fields.next_field() {
            let (number, field, at) = field?;
            match (number, field) {
                (1 | 2, Field::Bytes(inner)) => {
                    // Walk the label or sample so that damage inside it is found too.
                    let mut inner = Fields::new(inner, at);
                    while let Some(f) = inner.next_field() {
                        f?;
                    }
                    if number == 2 {
                        n += 1;
                    }
                }
                (1 | 2, _) => return Err(DecodeError::Malformed(at)),
                _ => {}
            }
        }
        Ok(())
    })?;
    Ok(n)
}

/// Decodes an encoded `WriteRequest`.
pub fn decode(buf: &[u8]) -> Result<Vec<TimeSeries>, DecodeError> {
    let mut out = Vec::new();
    each_series(buf, |series, base| {
        let mut ts = TimeSeries { labels: Vec::new(), samples: Vec::new() };
        let mut fields = Fields::new(series, base);
        while let Some(field) = fields.next_field() {
            match field? {
                (1, Field::Bytes(label), at) => ts.labels.push(decode_label(label, at)?),
                (2, Field::Bytes(sample), at) => ts.samples.push(decode_sample(sample, at)?),
                (1 | 2, _, at) => return Err(DecodeError::Malformed(at)),
                _ => {}
            }
        }
        out.push(ts);
        Ok(())
    })?;
    Ok(out)
}

fn decode_label(buf: &[u8], base: usize) -> Result<(String, String), DecodeError> {
    let (mut name, mut value) = (String::new(), String::new());
    let mut fields = Fields::new(buf, base);
    while let Some(field) = fields.next_field() {
        let (number, field, at) = field?;
        let slot = match number {
            1 => &mut name,
            2 => &mut value,
            _ => continue,
        };
        let Field::Bytes(bytes) = field else { return Err(DecodeError::Malformed(at)) };
        *slot = std::str::from_utf8(bytes).map_err(|_| DecodeError::NotUtf8(at))?.to_string();
    }
    Ok((name, value))
}

fn decode_sample(buf: &[u8], base: usize) -> Result<(f64, i64), DecodeError> {
    let (mut value, mut timestamp) = (0.0, 0);
    let mut fields = Fields::new(buf, base);
    while let Some(field) = fields.next_field() {
        match field? {
            (1, Field::Fixed64(bits), _) => value = f64::from_bits(bits),
            (2, Field::Varint(v), _) => timestamp = v as i64,
            (1 | 2, _, at) => return Err(DecodeError::Malformed(at)),
            _ => {}
        }
    }
    Ok((value, timestamp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Labels, value and timestamp of one series.
    type Series<'a> = (Vec<(&'a str, &'a str)>, f64, i64);

    fn encode(series: &[Series]) -> Vec<u8> {
        let mut out = Vec::new();
        for (labels, v, t) in series {
            push_series(&mut out, labels, *v, *t);
        }
        out
    }

    #[test]
    fn hand_checked_bytes() {
        // up{job="a"} 1 @ 1000 ms:
        // WriteRequest.timeseries (0a len)
        // (0a 28: 16 + 10 + 14 bytes follow)
        //   TimeSeries.labels (0a 0e) Label{name "__name__" (0a 08 …), value "up" (12 02 …)}
        //   TimeSeries.labels (0a 08) Label{name "job" (0a 03 …), value "a" (12 01 …)}
        //   TimeSeries.samples (12 0c) Sample{value 1.0 (09 + 8 LE bytes), timestamp (10 e8 07)}
        let bytes = encode(&[(vec![("__name__", "up"), ("job", "a")], 1.0, 1000)]);
        let want: Vec<u8> = [
            &[0x0a, 0x28][..],
            &[0x0a, 0x0e, 0x0a, 0x08],
            b"__name__",
            &[0x12, 0x02],
            b"up",
            &[0x0a, 0x08, 0x0a, 0x03],
            b"job",
            &[0x12, 0x01],
            b"a",
            &[0x12, 0x0c, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0xe8, 0x07],
        ]
        .concat();
        assert_eq!(bytes, want);
    }

    #[test]
    fn zero_scalars_and_empty_labels_are_left_out() {
        let bytes = encode(&[(vec![("__name__", "z"), ("empty", "")], 0.0, 0)]);
        assert_eq!(
            bytes,
            [
                // series of 17 bytes: a label of 13 (10 + 3) and an empty sample
                0x0a, 0x11, 0x0a, 0x0d, 0x0a, 0x08, b'_', b'_', b'n', b'a', b'm', b'e', b'_', b'_',
                0x12, 0x01, b'z', 0x12, 0x00
            ]
        );
        let back = decode(&bytes).unwrap();
        assert_eq!(back[0].labels, [("__name__".to_string(), "z".to_string())]);
        assert_eq!(back[0].samples, [(0.0, 0)]);
        // -0.0 is not +0.0: it is written and keeps its sign.
        let neg = decode(&encode(&[(vec![("__name__", "z")], -0.0, 0)])).unwrap();
        assert!(neg[0].samples[0].0.is_sign_negative());
    }

    #[test]
    fn nan_is_prometheus_normal_nan_and_infinities_stay() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        for v in [f64::NAN, -f64::NAN, stale] {
            let back = decode(&encode(&[(vec![("__name__", "n")], v, 5)])).unwrap();
            assert_eq!(back[0].samples[0].0.to_bits(), NORMAL_NAN);
        }
        for v in [f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(
                decode(&encode(&[(vec![("__name__", "i")], v, 5)])).unwrap()[0].samples[0].0,
                v
            );
        }
    }

    #[test]
    fn negative_and_large_timestamps() {
        for t in [-1, i64::MIN, i64::MAX, 1_795_320_726_250] {
            let back = decode(&encode(&[(vec![("__name__", "t")], 2.5, t)])).unwrap();
            assert_eq!(back[0].samples, [(2.5, t)]);
        }
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(u64::MAX), 10);
    }

    #[test]
    fn concatenated_requests_are_one_request() {
        let a = encode(&[(vec![("__name__", "a")], 1.0, 1)]);
        let b = encode(&[(vec![("__name__", "b")], 2.0, 2), (vec![("__name__", "c")], 3.0, 3)]);
        let both = [a.clone(), b.clone()].concat();
        let series = decode(&both).unwrap();
        assert_eq!(series.len(), 3);
        assert_eq!(series[2].samples, [(3.0, 3)]);
        assert_eq!(count_samples(&both), Ok(3));
        assert_eq!(count_samples(&[]), Ok(0));
        assert_eq!(decode(&[]), Ok(vec![]));
    }

    #[test]
    fn reader_skips_unknown_fields_and_takes_any_order() {
        // A series with an unknown varint field 7, a fixed32 field 8, then sample before label,
        // and the sample's timestamp before its value; a request-level field 3 (metadata).
        let mut series = vec![0x38, 0x05, 0x45, 1, 2, 3, 4];
        series.extend([0x12, 0x0b, 0x10, 0x02, 0x09]);
        series.extend(4.0f64.to_le_bytes());
        series.extend([0x0a, 0x07, 0x0a, 0x01, b'k', 0x12, 0x02, b'v', b'w']);
        let mut req = vec![0x1a, 0x01, 0x00, 0x0a];
        req.push(u8::try_from(series.len()).unwrap());
        req.extend(&series);
        let back = decode(&req).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].labels, [("k".to_string(), "vw".to_string())]);
        assert_eq!(back[0].samples, [(4.0, 2)]);
        assert_eq!(count_samples(&req), Ok(1));
    }

    #[test]
    fn damage_is_an_error_never_a_panic() {
        let good = encode(&[(vec![("__name__", "up"), ("job", "a")], 1.0, 1000)]);
        for cut in 1..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
            assert!(count_samples(&good[..cut]).is_err(), "cut at {cut}");
        }
        for (bad, want) in [
            (&[0x0a, 0x05][..], DecodeError::Truncated(0)),
            (&[0x08, 0x01], DecodeError::Malformed(1)),
            (&[0x00], DecodeError::Malformed(0)),
            (&[0x0b], DecodeError::Malformed(0)),
            (
                &[0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
                DecodeError::Malformed(1),
            ),
            (&[0x0a, 0x05, 0x0a, 0x03, 0x0a, 0x01, 0xff], DecodeError::NotUtf8(6)),
            (&[0x0a, 0x04, 0x12, 0x02, 0x09, 0x00], DecodeError::Truncated(4)),
        ] {
            assert_eq!(decode(bad), Err(want), "{bad:02x?}");
        }
    }

    proptest! {
        #[test]
        fn round_trip(
            labels in proptest::collection::vec(("[a-z_]{1,8}", "\\PC{0,8}"), 0..5),
            bits in any::<u64>(),
            t in any::<i64>(),
        ) {
            let value = f64::from_bits(bits);
            let pairs: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let bytes = encode(&[(pairs.clone(), value, t)]);
            let back = decode(&bytes).unwrap();
            let kept: Vec<(String, String)> = labels.iter().filter(|(_, v)| !v.is_empty()).cloned().collect();
            prop_assert_eq!(&back[0].labels, &kept);
            prop_assert_eq!(back[0].samples[0].0.to_bits(), value_bits(value));
            prop_assert_eq!(back[0].samples[0].1, t);
            prop_assert_eq!(count_samples(&bytes), Ok(1));
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
            let _ = count_samples(&bytes);
        }
    }
}
