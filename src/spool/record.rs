//! The spool's record format. \[pure\]: bytes in, records or errors out.
//!
//! A segment file is a plain concatenation of frames, with no file header:
//!
//! ```text
//! offset size field
//!      0    2 magic     0xF5 0x01 (format version 1)
//!      2    4 length    payload bytes, u32 little-endian, at most MAX_PAYLOAD
//!      6    8 seq       sequence number, u64 little-endian, strictly increasing in a spool
//!     14    8 time      append time, milliseconds since the Unix epoch, u64 little-endian
//!     22    4 crc       CRC-32 (IEEE) of bytes 0..22 and of the payload, u32 little-endian
//!     26    … payload
//! ```
//!
//! 26 bytes per record, whatever the payload. The checksum covers the length, so a damaged length
//! is caught like damaged data. [`decode`] tells an incomplete frame ([`DecodeError::Torn`], what a
//! crash in the middle of a write leaves at the end of a file) from a damaged one
//! ([`DecodeError::Corrupt`]); [`Scanner`] walks a buffer, skipping damaged regions by searching for
//! the next valid frame, so one bad byte costs one record and never the rest of the file.
//!
//! What this module does not do: files, fsync, sequence allocation (see `spool::Spool`).

/// The first two bytes of every frame: a marker and the format version.
pub const MAGIC: [u8; 2] = [0xF5, 0x01];
/// Bytes before the payload.
pub const HEADER_LEN: usize = 26;
/// The largest payload a frame may carry (16 MiB); a larger length field is damage.
pub const MAX_PAYLOAD: usize = 16 << 20;

/// One record, borrowed from the buffer it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Sequence number.
    pub seq: u64,
    /// Append time, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The bytes the caller appended.
    pub payload: &'a [u8],
}

impl Record<'_> {
    /// Bytes this record takes on disk.
    pub fn frame_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The buffer ends before the frame does: `need` bytes in all would complete it.
    /// At the end of a file this is what an interrupted write leaves.
    #[error("incomplete record: {need} bytes needed")]
    Torn {
        /// Bytes the whole frame needs (header and payload).
        need: usize,
    },
    /// The bytes are not a valid frame.
    #[error("corrupt record: {0}")]
    Corrupt(Damage),
}

/// What is wrong with a damaged frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    /// The frame does not start with [`MAGIC`].
    #[error("bad marker")]
    Magic,
    /// The length field is larger than [`MAX_PAYLOAD`].
    #[error("bad length {0}")]
    Length(u32),
    /// The checksum does not match the contents.
    #[error("checksum mismatch")]
    Checksum,
}

/// Errors of [`encode_into`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("record too large: {len} bytes (at most {max})", max = MAX_PAYLOAD)]
pub struct TooLarge {
    /// The payload's length.
    pub len: usize,
}

/// Appends the frame of one record to `out`.
///
/// # Errors
///
/// [`TooLarge`] when the payload is larger than [`MAX_PAYLOAD`]; `out` is then unchanged.
pub fn encode_into(
    out: &mut Vec<u8>,
    seq: u64,
    time_ms: u64,
    payload: &[u8],
) -> Result<(), TooLarge> {
    if payload.len() > MAX_PAYLOAD {
        return Err(TooLarge { len: payload.len() });
    }
    let len = u32::try_from(payload.len()).map_err(|_| TooLarge { len: payload.len() })?;
    let start = out.len();
    out.reserve(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&time_ms.to_le_bytes());
    let crc = checksum(&out[start..start + 22], payload);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// The frame of one record, as a new vector.
///
/// # Errors
///
/// [`TooLarge`] when the payload is larger than [`MAX_PAYLOAD`].
pub fn encode(seq: u64, time_ms: u64, payload: &[u8]) -> Result<Vec<u8>, TooLarge> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    encode_into(&mut out, seq, time_ms, payload)?;
    Ok(out)
}

fn checksum(header: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(header);
    hasher.update(payload);
    hasher.finalize()
}

fn le_u32(bytes: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(a)
}

fn le_u64(bytes: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(a)
}

/// Decodes the frame at the start of `buf`, returning the record and the frame's length.
///
/// # Errors
///
/// [`DecodeError::Torn`] when `buf` is a strict prefix of a frame that may be valid;
/// [`DecodeError::Corrupt`] when the bytes cannot be a valid frame.
pub fn decode(buf: &[u8]) -> Result<(Record<'_>, usize), DecodeError> {
    let magic_seen = buf.len().min(MAGIC.len());
    if buf[..magic_seen] != MAGIC[..magic_seen] {
        return Err(DecodeError::Corrupt(Damage::Magic));
    }
    if buf.len() < 6 {
        return Err(DecodeError::Torn { need: HEADER_LEN });
    }
    let len32 = le_u32(&buf[2..6]);
    let len = len32 as usize;
    if len > MAX_PAYLOAD {
        return Err(DecodeError::Corrupt(Damage::Length(len32)));
    }
    let frame_len = HEADER_LEN + len;
    if buf.len() < frame_len {
        return Err(DecodeError::Torn { need: frame_len });
    }
    let payload = &buf[HEADER_LEN..frame_len];
    if checksum(&buf[..22], payload) != le_u32(&buf[22..26]) {
        return Err(DecodeError::Corrupt(Damage::Checksum));
    }
    let record = Record { seq: le_u64(&buf[6..14]), time_ms: le_u64(&buf[14..22]), payload };
    Ok((record, frame_len))
}

/// One step of a [`Scanner`]; offsets are relative to the scanned buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    /// A valid record starting at `offset`.
    Record {
        /// Where its frame starts.
        offset: usize,
        /// The record.
        record: Record<'a>,
    },
    /// Bytes `start..end` hold no valid record: a damaged frame, skipped. `end` is the offset of the
    /// next valid record, or the end of the buffer when none follows.
    Corrupt {
        /// First damaged byte.
        start: usize,
        /// One past the last.
        end: usize,
    },
    /// The buffer ends with an incomplete frame starting at `offset` and nothing valid after it:
    /// what a write cut short leaves at the end of a file.
    Torn {
        /// Where the incomplete frame starts.
        offset: usize,
    },
}

/// Walks the frames of a buffer in order.
///
/// A record must carry a sequence number greater than the one before it (and than `after_seq`); a
/// frame that decodes but goes backwards is damage too. After damage the scanner looks, byte by
/// byte, for the next offset where a valid frame with a greater sequence number starts; the
/// marker and length checks make most candidates cost a few comparisons.
#[derive(Debug, Clone)]
pub struct Scanner<'a> {
    buf: &'a [u8],
    pos: usize,
    last_seq: u64,
}

impl<'a> Scanner<'a> {
    /// A scanner over `buf` that accepts only sequence numbers greater than `after_seq`.
    pub fn new(buf: &'a [u8], after_seq: u64) -> Self {
        Scanner { buf, pos: 0, last_seq: after_seq }
    }

    /// The sequence number of the last record returned (or `after_seq`).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    fn valid_at(&self, offset: usize) -> Option<(Record<'a>, usize)> {
        match decode(&self.buf[offset..]) {
            Ok((record, len)) if record.seq > self.last_seq => Some((record, len)),
            _ => None,
        }
    }

    /// The offset of the next valid frame after `from`, if any.
    fn resync(&self, from: usize) -> Option<usize> {
        let mut at = from;
        while at + HEADER_LEN <= self.buf.len() {
            match self.buf[at..].iter().position(|&b| b == MAGIC[0]) {
                None => return None,
                Some(skip) => at += skip,
            }
            if self.valid_at(at).is_some() {
                return Some(at);
            }
            at += 1;
        }
        None
    }
}

impl<'a> Iterator for Scanner<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let start = self.pos;
        let torn = match decode(&self.buf[start..]) {
            Ok((record, len)) if record.seq > self.last_seq => {
                self.pos += len;
                self.last_seq = record.seq;
                return Some(Item::Record { offset: start, record });
            }
            Ok(_) | Err(DecodeError::Corrupt(_)) => false,
            Err(DecodeError::Torn { .. }) => true,
        };
        match self.resync(start + 1) {
            Some(next) => {
                self.pos = next;
                Some(Item::Corrupt { start, end: next })
            }
            None => {
                self.pos = self.buf.len();
                if torn {
                    Some(Item::Torn { offset: start })
                } else {
                    Some(Item::Corrupt { start, end: self.buf.len() })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frames(records: &[(u64, u64, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (seq, time, payload) in records {
            encode_into(&mut out, *seq, *time, payload).unwrap();
        }
        out
    }

    fn items(buf: &[u8]) -> Vec<String> {
        Scanner::new(buf, 0)
            .map(|item| match item {
                Item::Record { offset, record } => format!(
                    "record {offset} seq={} time={} {:?}",
                    record.seq,
                    record.time_ms,
                    String::from_utf8_lossy(record.payload)
                ),
                Item::Corrupt { start, end } => format!("corrupt {start}..{end}"),
                Item::Torn { offset } => format!("torn {offset}"),
            })
            .collect()
    }

    #[test]
    fn layout_is_fixed() {
        let frame = encode(0x0102, 0x0a0b, b"hi").unwrap();
        assert_eq!(frame.len(), HEADER_LEN + 2);
        assert_eq!(&frame[..2], &MAGIC);
        assert_eq!(&frame[2..6], &[2, 0, 0, 0]);
        assert_eq!(&frame[6..14], &[2, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&frame[14..22], &[0x0b, 0x0a, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&frame[26..], b"hi");
    }

    #[test]
    fn checksum_is_crc32_ieee_of_header_and_payload() {
        let frame = encode(7, 9, b"payload").unwrap();
        let mut all = frame[..22].to_vec();
        all.extend_from_slice(b"payload");
        assert_eq!(le_u32(&frame[22..26]), crc32fast::hash(&all));
    }

    #[test]
    fn empty_payload_round_trips() {
        let frame = encode(1, 2, b"").unwrap();
        let (record, len) = decode(&frame).unwrap();
        assert_eq!((record.seq, record.time_ms, record.payload, len), (1, 2, &b""[..], HEADER_LEN));
    }

    #[test]
    fn decode_reads_only_the_first_frame() {
        let buf = frames(&[(1, 10, b"a"), (2, 20, b"bb")]);
        let (record, len) = decode(&buf).unwrap();
        assert_eq!((record.seq, record.payload, len), (1, &b"a"[..], HEADER_LEN + 1));
    }

    #[test]
    fn empty_and_short_buffers_are_torn() {
        assert_eq!(decode(&[]), Err(DecodeError::Torn { need: HEADER_LEN }));
        assert_eq!(decode(&[0xF5]), Err(DecodeError::Torn { need: HEADER_LEN }));
        assert_eq!(
            decode(&[0xF5, 0x01, 5, 0, 0, 0]),
            Err(DecodeError::Torn { need: HEADER_LEN + 5 })
        );
    }

    #[test]
    fn damage_is_named() {
        let table: [(&[u8], DecodeError); 4] = [
            (&[0x00], DecodeError::Corrupt(Damage::Magic)),
            (&[0xF5, 0x02], DecodeError::Corrupt(Damage::Magic)),
            (&[0xF5, 0x01, 0xff, 0xff, 0xff, 0xff], DecodeError::Corrupt(Damage::Length(u32::MAX))),
            (&[0xF5, 0x01, 0, 0, 0, 2], DecodeError::Corrupt(Damage::Length(1 << 25))),
        ];
        for (input, want) in table {
            assert_eq!(decode(input), Err(want), "{input:?}");
        }
        let mut frame = encode(1, 1, b"x").unwrap();
        frame[26] ^= 1;
        assert_eq!(decode(&frame), Err(DecodeError::Corrupt(Damage::Checksum)));
    }

    #[test]
    fn errors_read_as_sentences() {
        assert_eq!(
            DecodeError::Torn { need: 30 }.to_string(),
            "incomplete record: 30 bytes needed"
        );
        assert_eq!(
            DecodeError::Corrupt(Damage::Checksum).to_string(),
            "corrupt record: checksum mismatch"
        );
        assert_eq!(
            TooLarge { len: 20_000_000 }.to_string(),
            "record too large: 20000000 bytes (at most 16777216)"
        );
    }

    #[test]
    fn too_large_payload_is_refused_and_leaves_out_unchanged() {
        let mut out = vec![1, 2, 3];
        let big = vec![0u8; MAX_PAYLOAD + 1];
        assert_eq!(encode_into(&mut out, 1, 1, &big), Err(TooLarge { len: MAX_PAYLOAD + 1 }));
        assert_eq!(out, [1, 2, 3]);
    }

    #[test]
    fn scanner_lists_records_in_order() {
        let buf = frames(&[(1, 10, b"a"), (2, 20, b"b"), (5, 30, b"c")]);
        assert_eq!(
            items(&buf),
            [
                "record 0 seq=1 time=10 \"a\"",
                "record 27 seq=2 time=20 \"b\"",
                "record 54 seq=5 time=30 \"c\""
            ]
        );
    }

    #[test]
    fn scanner_skips_a_damaged_middle_record() {
        let mut buf = frames(&[(1, 10, b"a"), (2, 20, b"b"), (3, 30, b"c")]);
        buf[27 + 26] ^= 0xff;
        assert_eq!(
            items(&buf),
            ["record 0 seq=1 time=10 \"a\"", "corrupt 27..54", "record 54 seq=3 time=30 \"c\""]
        );
    }

    #[test]
    fn scanner_skips_a_record_whose_length_grew() {
        // A longer length turns the middle frame into a torn one that swallows the next frame; the
        // scanner still finds the third record.
        let mut buf = frames(&[(1, 10, b"a"), (2, 20, b"b"), (3, 30, b"c")]);
        buf[27 + 2] = 200;
        assert_eq!(
            items(&buf),
            ["record 0 seq=1 time=10 \"a\"", "corrupt 27..54", "record 54 seq=3 time=30 \"c\""]
        );
    }

    #[test]
    fn scanner_reports_a_torn_tail() {
        let buf = frames(&[(1, 10, b"a"), (2, 20, b"bbbb")]);
        assert_eq!(items(&buf[..40]), ["record 0 seq=1 time=10 \"a\"", "torn 27"]);
    }

    #[test]
    fn scanner_reports_garbage_at_the_end_as_corrupt() {
        let mut buf = frames(&[(1, 10, b"a")]);
        buf.extend_from_slice(&[0; 100]);
        assert_eq!(items(&buf), ["record 0 seq=1 time=10 \"a\"", "corrupt 27..127"]);
    }

    #[test]
    fn scanner_refuses_sequence_numbers_that_go_backwards() {
        let buf = frames(&[(5, 10, b"a"), (3, 20, b"b"), (6, 30, b"c")]);
        assert_eq!(
            items(&buf),
            ["record 0 seq=5 time=10 \"a\"", "corrupt 27..54", "record 54 seq=6 time=30 \"c\""]
        );
        let after: Vec<u64> = Scanner::new(&buf, 5)
            .filter_map(|item| match item {
                Item::Record { record, .. } => Some(record.seq),
                _ => None,
            })
            .collect();
        assert_eq!(after, [6]);
    }

    #[test]
    fn scanner_over_nothing_yields_nothing() {
        assert_eq!(items(&[]), Vec::<String>::new());
    }

    #[test]
    fn scanner_over_pure_garbage_is_one_corrupt_region() {
        assert_eq!(items(&[0xF5; 300]), ["corrupt 0..300"]);
    }

    fn payloads() -> impl Strategy<Value = Vec<(u64, Vec<u8>)>> {
        prop::collection::vec((any::<u64>(), prop::collection::vec(any::<u8>(), 0..200)), 1..8)
    }

    fn build(records: &[(u64, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (time, payload)) in records.iter().enumerate() {
            encode_into(&mut out, i as u64 + 1, *time, payload).unwrap();
        }
        out
    }

    proptest! {
        #[test]
        fn round_trip(seq in any::<u64>(), time in any::<u64>(), payload in prop::collection::vec(any::<u8>(), 0..2000)) {
            let frame = encode(seq, time, &payload).unwrap();
            let (record, len) = decode(&frame).unwrap();
            prop_assert_eq!(len, frame.len());
            prop_assert_eq!(record, Record { seq, time_ms: time, payload: &payload });
        }

        #[test]
        fn scanner_round_trips_many(records in payloads()) {
            let buf = build(&records);
            let got: Vec<(u64, Vec<u8>)> = Scanner::new(&buf, 0)
                .map(|item| match item {
                    Item::Record { record, .. } => Ok((record.time_ms, record.payload.to_vec())),
                    other => Err(format!("{other:?}")),
                })
                .collect::<Result<_, _>>()
                .unwrap();
            prop_assert_eq!(got, records);
        }

        #[test]
        fn any_truncation_is_a_torn_tail(payload in prop::collection::vec(any::<u8>(), 0..300), cut in any::<prop::sample::Index>()) {
            let frame = encode(3, 4, &payload).unwrap();
            let cut = cut.index(frame.len());
            prop_assert!(matches!(decode(&frame[..cut]), Err(DecodeError::Torn { .. })), "cut at {}", cut);
        }

        #[test]
        fn truncating_a_sequence_keeps_whole_records_and_reports_torn(records in payloads(), cut in any::<prop::sample::Index>()) {
            let buf = build(&records);
            let cut = cut.index(buf.len());
            let got: Vec<Item<'_>> = Scanner::new(&buf[..cut], 0).collect();
            let whole = got.iter().filter(|i| matches!(i, Item::Record { .. })).count();
            let mut ends = 0;
            let mut n_whole = 0;
            for (_, payload) in &records {
                ends += HEADER_LEN + payload.len();
                if ends <= cut { n_whole += 1; }
            }
            prop_assert_eq!(whole, n_whole);
            let at_boundary = got.iter().all(|i| matches!(i, Item::Record { .. }));
            if !at_boundary {
                prop_assert!(matches!(got.last(), Some(Item::Torn { .. })), "{:?}", got);
                prop_assert_eq!(got.len(), n_whole + 1);
            }
        }

        #[test]
        fn any_single_byte_change_is_detected(payload in prop::collection::vec(any::<u8>(), 0..300), at in any::<prop::sample::Index>(), xor in 1u8..=255) {
            let mut frame = encode(3, 4, &payload).unwrap();
            let at = at.index(frame.len());
            frame[at] ^= xor;
            prop_assert!(decode(&frame).is_err(), "change at {} not detected", at);
        }

        #[test]
        fn a_changed_middle_record_costs_only_that_record(records in payloads(), which in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(), xor in 1u8..=255) {
            prop_assume!(records.len() >= 3);
            let which = 1 + which.index(records.len() - 2);
            let mut buf = build(&records);
            let start: usize = records[..which].iter().map(|(_, p)| HEADER_LEN + p.len()).sum();
            let len = HEADER_LEN + records[which].1.len();
            buf[start + at.index(len)] ^= xor;
            let seqs: Vec<u64> = Scanner::new(&buf, 0)
                .filter_map(|item| match item { Item::Record { record, .. } => Some(record.seq), _ => None })
                .collect();
            let want: Vec<u64> = (1..=records.len() as u64).filter(|s| *s != which as u64 + 1).collect();
            prop_assert_eq!(seqs, want);
        }
    }
}
