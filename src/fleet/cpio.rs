//! The cpio "newc" archive format of `.swu` bundles: a streaming reader that refuses what a
//! bundle must never contain, and the writer `bundle create` uses. \[pure\]
//!
//! The reader works on any [`Read`] and never touches the file system: it yields one
//! [`Header`] at a time and the caller streams the entry's data out with [`Reader::copy_data`]
//! (or skips it). Before a header is returned it is checked: magic `070701` or `070702`,
//! hexadecimal fields, a name that is one plain file name (no `/`, no `..`, not `.`, no NUL,
//! printable ASCII), a regular file (links, directories and devices are refused), one link,
//! and a size within the caller's bound. With magic `070702` the data's byte sum is checked
//! against the header's `check` field as SWUpdate does. Every failure is a [`Error`] with
//! snapd-style words; nothing here panics on any input (see the property tests).
//!
//! The writer emits `070702` (SWUpdate's `cpio -H crc`) with fixed owner, time and inode
//! numbers, so the same files always give the same bytes.

use std::io::{self, Read, Write};

/// The trailer entry's name.
pub const TRAILER: &str = "TRAILER!!!";
/// Longest accepted entry name, including nothing else (bytes).
pub const MAX_NAME: usize = 255;

const HEADER_LEN: usize = 110;
const MODE_TYPE_MASK: u32 = 0o170_000;
const MODE_REGULAR: u32 = 0o100_000;
const MODE_SYMLINK: u32 = 0o120_000;
const MODE_DIR: u32 = 0o040_000;

/// Why an archive cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The input ended inside an entry or before the trailer.
    #[error("unexpected end of archive")]
    Truncated,
    /// Not a newc header.
    #[error("invalid cpio header: {0}")]
    Header(String),
    /// A name a bundle may not carry.
    #[error("invalid entry name {0:?}: {1}")]
    Name(String, &'static str),
    /// Not a regular file.
    #[error("entry {0:?} is {1}, not a regular file")]
    NotRegular(String, &'static str),
    /// Larger than the caller allows.
    #[error("entry {name:?} is {size} bytes, more than the {limit} allowed")]
    TooLarge {
        /// Entry name.
        name: String,
        /// Declared size.
        size: u64,
        /// The bound.
        limit: u64,
    },
    /// The `070702` byte sum does not match.
    #[error("entry {0:?} does not match its cpio checksum")]
    Checksum(String),
    /// Reading or writing failed.
    #[error("{0}")]
    Io(String),
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        match e.kind() {
            io::ErrorKind::UnexpectedEof => Error::Truncated,
            _ => Error::Io(crate::error::describe_io(&e)),
        }
    }
}

/// One entry's header, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The plain file name.
    pub name: String,
    /// Data size in bytes.
    pub size: u64,
    /// Permission bits (`mode & 0o7777`).
    pub perm: u32,
    /// The `070702` byte sum, when the archive carries one.
    pub check: Option<u32>,
}

/// A streaming newc reader.
#[derive(Debug)]
pub struct Reader<R> {
    inner: R,
    /// Bytes of the current entry's data not yet read.
    remaining: u64,
    /// Padding after the current entry's data.
    pad: u64,
    /// The current entry, for the checksum at its end.
    current: Option<Header>,
    sum: u32,
    done: bool,
}

fn hex_field(field: &[u8], what: &str) -> Result<u32, Error> {
    let text = std::str::from_utf8(field)
        .map_err(|_| Error::Header(format!("{what} is not hexadecimal")))?;
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Header(format!("{what} {text:?} is not hexadecimal")));
    }
    u32::from_str_radix(text, 16).map_err(|_| Error::Header(format!("{what} {text:?} is invalid")))
}

/// Checks that `name` is one plain file name a bundle may carry.
///
/// # Errors
/// Names with `/` (absolute or nested), `.`, `..`, control or non-ASCII bytes, or empty.
pub fn check_name(name: &str) -> Result<(), Error> {
    let bad = |why| Err(Error::Name(name.to_owned(), why));
    if name.is_empty() {
        return bad("empty name");
    }
    if name.len() > MAX_NAME {
        return bad("name too long");
    }
    if name.starts_with('/') {
        return bad("absolute path");
    }
    if name.split('/').any(|part| part == "..") {
        return bad("\"..\" in path");
    }
    if name.contains('/') {
        return bad("not a plain file name");
    }
    if name == "." {
        return bad("not a plain file name");
    }
    if !name.bytes().all(|b| b.is_ascii_graphic()) {
        return bad("control, space or non-ASCII character");
    }
    Ok(())
}

fn pad4(n: u64) -> u64 {
    (4 - n % 4) % 4
}

impl<R: Read> Reader<R> {
    /// A reader over `inner`, positioned at the first header.
    pub fn new(inner: R) -> Reader<R> {
        Reader { inner, remaining: 0, pad: 0, current: None, sum: 0, done: false }
    }

    /// Gives the underlying reader back.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The next entry's header, after skipping what is left of the current one; `None` at
    /// the trailer. Entries larger than `max_size` are refused before any data is read.
    ///
    /// # Errors
    /// See the module docs.
    pub fn next_entry(&mut self, max_size: u64) -> Result<Option<Header>, Error> {
        if self.done {
            return Ok(None);
        }
        self.skip_data()?;
        let mut raw = [0u8; HEADER_LEN];
        self.inner.read_exact(&mut raw)?;
        let magic = &raw[..6];
        let with_check = match magic {
            b"070701" => false,
            b"070702" => true,
            _ => return Err(Error::Header("not a newc archive (bad magic)".into())),
        };
        let field = |i: usize, what: &str| hex_field(&raw[6 + i * 8..6 + (i + 1) * 8], what);
        let mode = field(1, "mode")?;
        let nlink = field(4, "nlink")?;
        let size = u64::from(field(6, "filesize")?);
        let namesize = field(11, "namesize")?;
        let check = field(12, "check")?;
        let namesize = usize::try_from(namesize).unwrap_or(usize::MAX);
        if namesize == 0 || namesize > MAX_NAME + 1 {
            return Err(Error::Header(format!("name size {namesize} is out of range")));
        }
        let mut name = vec![0u8; namesize];
        self.inner.read_exact(&mut name)?;
        if name.pop() != Some(0) {
            return Err(Error::Header("name is not NUL-terminated".into()));
        }
        let name =
            String::from_utf8(name).map_err(|_| Error::Header("name is not valid UTF-8".into()))?;
        let mut skip = pad4((HEADER_LEN + namesize) as u64);
        self.discard(&mut skip)?;
        if name == TRAILER {
            self.done = true;
            return Ok(None);
        }
        check_name(&name)?;
        let kind = match mode & MODE_TYPE_MASK {
            MODE_REGULAR => None,
            MODE_SYMLINK => Some("a symbolic link"),
            MODE_DIR => Some("a directory"),
            _ => Some("a special file"),
        };
        if let Some(kind) = kind {
            return Err(Error::NotRegular(name, kind));
        }
        if nlink > 1 {
            return Err(Error::NotRegular(name, "a hard link"));
        }
        if size > max_size {
            return Err(Error::TooLarge { name, size, limit: max_size });
        }
        let header = Header { name, size, perm: mode & 0o7777, check: with_check.then_some(check) };
        self.remaining = size;
        self.pad = pad4(size);
        self.sum = 0;
        self.current = Some(header.clone());
        Ok(Some(header))
    }

    /// Streams the current entry's data into `out`, then checks its cpio checksum.
    ///
    /// # Errors
    /// When the input ends early, `out` fails, or the checksum does not match.
    pub fn copy_data(&mut self, out: &mut dyn Write) -> Result<(), Error> {
        let mut buf = [0u8; 16 * 1024];
        while self.remaining > 0 {
            let want = usize::try_from(self.remaining.min(buf.len() as u64)).unwrap_or(buf.len());
            let n = self.inner.read(&mut buf[..want])?;
            if n == 0 {
                return Err(Error::Truncated);
            }
            self.sum = buf[..n].iter().fold(self.sum, |s, b| s.wrapping_add(u32::from(*b)));
            out.write_all(&buf[..n])?;
            self.remaining -= n as u64;
        }
        let mut pad = self.pad;
        self.discard(&mut pad)?;
        self.pad = 0;
        if let Some(header) = self.current.take() {
            if header.check.is_some_and(|c| c != self.sum) {
                return Err(Error::Checksum(header.name));
            }
        }
        Ok(())
    }

    /// A reader of the current entry's data; the padding and the checksum are dealt with by
    /// the next [`Reader::next_entry`].
    pub fn data(&mut self) -> Data<'_, R> {
        Data { reader: self }
    }

    /// Reads the current entry's data into memory (the caller bounded its size).
    ///
    /// # Errors
    /// As [`Reader::copy_data`].
    pub fn read_data(&mut self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(usize::try_from(self.remaining).unwrap_or(0).min(1 << 20));
        self.copy_data(&mut out)?;
        Ok(out)
    }

    fn skip_data(&mut self) -> Result<(), Error> {
        if self.current.is_some() {
            self.copy_data(&mut io::sink())?;
        }
        Ok(())
    }

    fn discard(&mut self, n: &mut u64) -> Result<(), Error> {
        let mut buf = [0u8; 4];
        while *n > 0 {
            let want = usize::try_from((*n).min(4)).unwrap_or(4);
            self.inner.read_exact(&mut buf[..want])?;
            *n -= want as u64;
        }
        Ok(())
    }
}

/// The data of the current entry, as [`Reader::data`] gives it.
#[derive(Debug)]
pub struct Data<'a, R> {
    reader: &'a mut Reader<R>,
}

impl<R: Read> Read for Data<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = &mut *self.reader;
        if r.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(r.remaining.min(buf.len() as u64)).unwrap_or(buf.len());
        let n = r.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        r.sum = byte_sum(r.sum, &buf[..n]);
        r.remaining -= n as u64;
        Ok(n)
    }
}

/// A newc (`070702`) writer.
#[derive(Debug)]
pub struct Writer<W> {
    inner: W,
    ino: u32,
}

impl<W: Write> Writer<W> {
    /// A writer over `inner`.
    pub fn new(inner: W) -> Writer<W> {
        Writer { inner, ino: 1 }
    }

    fn header(&mut self, name: &str, mode: u32, size: u64, check: u32) -> Result<(), Error> {
        let size = u32::try_from(size).map_err(|_| Error::TooLarge {
            name: name.to_owned(),
            size,
            limit: u64::from(u32::MAX),
        })?;
        let namesize = u32::try_from(name.len() + 1)
            .map_err(|_| Error::Name(name.to_owned(), "name too long"))?;
        let nlink = u32::from(name != TRAILER);
        let ino = if name == TRAILER { 0 } else { self.ino };
        self.ino += 1;
        let fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, namesize, check];
        let mut text = String::with_capacity(HEADER_LEN + name.len() + 4);
        text.push_str("070702");
        for f in fields {
            text.push_str(&format!("{f:08X}"));
        }
        text.push_str(name);
        text.push('\0');
        for _ in 0..pad4(text.len() as u64) {
            text.push('\0');
        }
        self.inner.write_all(text.as_bytes())?;
        Ok(())
    }

    /// Appends a regular file of `size` bytes read from `data`; `check` is its byte sum
    /// (see [`byte_sum`]).
    ///
    /// # Errors
    /// When the name is not a plain file name, `data` is shorter than `size`, or writing fails.
    pub fn append(
        &mut self,
        name: &str,
        size: u64,
        check: u32,
        data: &mut dyn Read,
    ) -> Result<(), Error> {
        check_name(name)?;
        self.header(name, MODE_REGULAR | 0o644, size, check)?;
        let copied = io::copy(&mut data.take(size), &mut self.inner)?;
        if copied != size {
            return Err(Error::Truncated);
        }
        self.inner.write_all(&[0u8; 3][..usize::try_from(pad4(size)).unwrap_or(0)])?;
        Ok(())
    }

    /// Appends a file held in memory.
    ///
    /// # Errors
    /// As [`Writer::append`].
    pub fn append_bytes(&mut self, name: &str, data: &[u8]) -> Result<(), Error> {
        self.append(name, data.len() as u64, byte_sum(0, data), &mut &data[..])
    }

    /// Writes the trailer and gives the output back.
    ///
    /// # Errors
    /// When writing fails.
    pub fn finish(mut self) -> Result<W, Error> {
        self.header(TRAILER, 0, 0, 0)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// The `070702` checksum: the 32-bit wrapping sum of all bytes, continued from `sum`.
pub fn byte_sum(sum: u32, data: &[u8]) -> u32 {
    data.iter().fold(sum, |s, b| s.wrapping_add(u32::from(*b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = Writer::new(Vec::new());
        for (name, data) in files {
            w.append_bytes(name, data).unwrap();
        }
        w.finish().unwrap()
    }

    fn read_all(bytes: &[u8], max: u64) -> Result<Vec<(String, Vec<u8>)>, Error> {
        let mut r = Reader::new(bytes);
        let mut out = Vec::new();
        while let Some(h) = r.next_entry(max)? {
            let data = r.read_data()?;
            assert_eq!(data.len() as u64, h.size);
            out.push((h.name, data));
        }
        Ok(out)
    }

    /// A raw header with every field settable, to build what the writer refuses to.
    fn raw(magic: &str, mode: u32, nlink: u32, size: u32, name: &str, check: u32) -> Vec<u8> {
        let fields = [
            1,
            mode,
            0,
            0,
            nlink,
            0,
            size,
            0,
            0,
            0,
            0,
            u32::try_from(name.len()).unwrap() + 1,
            check,
        ];
        let mut s = magic.to_owned();
        for f in fields {
            s.push_str(&format!("{f:08x}"));
        }
        s.push_str(name);
        s.push('\0');
        while !s.len().is_multiple_of(4) {
            s.push('\0');
        }
        s.into_bytes()
    }

    #[test]
    fn round_trip_with_padding_of_every_length() {
        let files: Vec<(String, Vec<u8>)> = (0..9)
            .map(|n| (format!("f{}", "x".repeat(n)), vec![b'a' + u8::try_from(n).unwrap(); n]))
            .collect();
        let refs: Vec<(&str, &[u8])> =
            files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
        let bytes = archive(&refs);
        assert_eq!(bytes.len() % 4, 0);
        assert_eq!(read_all(&bytes, 100).unwrap(), files);
    }

    #[test]
    fn writer_output_is_deterministic_and_cpio_shaped() {
        let a = archive(&[("sw-description", b"x")]);
        assert_eq!(a, archive(&[("sw-description", b"x")]));
        assert!(a.starts_with(b"070702"));
        let text = String::from_utf8_lossy(&a);
        assert!(text.contains("sw-description\0"));
        assert!(text.contains("TRAILER!!!\0"));
    }

    #[test]
    fn plain_070701_is_read_without_checksum() {
        let mut bytes = raw("070701", 0o100644, 1, 2, "a", 0);
        bytes.extend(b"hi\0\0");
        bytes.extend(raw("070701", 0, 1, 0, TRAILER, 0));
        assert_eq!(read_all(&bytes, 10).unwrap(), vec![("a".to_owned(), b"hi".to_vec())]);
    }

    #[test]
    fn checksum_mismatch_is_refused() {
        let mut bytes = raw("070702", 0o100644, 1, 2, "a", 7);
        bytes.extend(b"hi\0\0");
        bytes.extend(raw("070702", 0, 1, 0, TRAILER, 0));
        assert_eq!(read_all(&bytes, 10), Err(Error::Checksum("a".into())));
    }

    #[test]
    fn refusals() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                raw("070701", 0o100644, 1, 0, "../etc/passwd", 0),
                "invalid entry name \"../etc/passwd\": \"..\" in path",
            ),
            (raw("070701", 0o100644, 1, 0, "..", 0), "invalid entry name \"..\": \"..\" in path"),
            (
                raw("070701", 0o100644, 1, 0, "/etc/passwd", 0),
                "invalid entry name \"/etc/passwd\": absolute path",
            ),
            (
                raw("070701", 0o100644, 1, 0, "a/b", 0),
                "invalid entry name \"a/b\": not a plain file name",
            ),
            (
                raw("070701", 0o100644, 1, 0, ".", 0),
                "invalid entry name \".\": not a plain file name",
            ),
            (
                raw("070701", 0o100644, 1, 0, "a b", 0),
                "invalid entry name \"a b\": control, space or non-ASCII character",
            ),
            (
                raw("070701", 0o120777, 1, 4, "link", 0),
                "entry \"link\" is a symbolic link, not a regular file",
            ),
            (
                raw("070701", 0o040755, 2, 0, "dir", 0),
                "entry \"dir\" is a directory, not a regular file",
            ),
            (
                raw("070701", 0o020644, 1, 0, "tty", 0),
                "entry \"tty\" is a special file, not a regular file",
            ),
            (
                raw("070701", 0o100644, 2, 0, "hard", 0),
                "entry \"hard\" is a hard link, not a regular file",
            ),
            (
                raw("070701", 0o100644, 1, 11, "big", 0),
                "entry \"big\" is 11 bytes, more than the 10 allowed",
            ),
            (
                raw("070703", 0o100644, 1, 0, "a", 0),
                "invalid cpio header: not a newc archive (bad magic)",
            ),
            (b"0707".to_vec(), "unexpected end of archive"),
        ];
        for (bytes, want) in cases {
            let got = read_all(&bytes, 10).unwrap_err().to_string();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn bad_hex_and_name_sizes() {
        let mut bytes = raw("070701", 0o100644, 1, 0, "a", 0);
        bytes[6 + 6 * 8] = b'g';
        assert_eq!(
            read_all(&bytes, 10).unwrap_err().to_string(),
            "invalid cpio header: filesize \"g0000000\" is not hexadecimal"
        );
        let mut bytes = raw("070701", 0o100644, 1, 0, "a", 0);
        bytes[6 + 11 * 8..6 + 12 * 8].copy_from_slice(b"00000000");
        assert_eq!(
            read_all(&bytes, 10).unwrap_err().to_string(),
            "invalid cpio header: name size 0 is out of range"
        );
        let mut bytes = raw("070701", 0o100644, 1, 0, "ab", 0);
        bytes[HEADER_LEN + 2] = b'c';
        assert_eq!(
            read_all(&bytes, 10).unwrap_err().to_string(),
            "invalid cpio header: name is not NUL-terminated"
        );
    }

    #[test]
    fn missing_trailer_and_short_data_are_truncation() {
        let full = archive(&[("a", b"hello")]);
        let without_trailer = &full[..full.len() - 124];
        assert_eq!(read_all(without_trailer, 10), Err(Error::Truncated));
        let mut r = Reader::new(&full[..HEADER_LEN + 4 + 2]);
        r.next_entry(10).unwrap();
        assert_eq!(r.read_data(), Err(Error::Truncated));
    }

    #[test]
    fn unread_data_is_skipped_and_checked() {
        let bytes = archive(&[("a", b"one"), ("b", b"two")]);
        let mut r = Reader::new(&bytes[..]);
        assert_eq!(r.next_entry(10).unwrap().unwrap().name, "a");
        assert_eq!(r.next_entry(10).unwrap().unwrap().name, "b");
        assert_eq!(r.read_data().unwrap(), b"two");
        assert_eq!(r.next_entry(10).unwrap(), None);
        assert_eq!(r.next_entry(10).unwrap(), None);
    }

    #[test]
    fn data_reader_streams_and_the_next_entry_checks_the_sum() {
        let bytes = archive(&[("a", b"hello"), ("b", b"x")]);
        let mut r = Reader::new(&bytes[..]);
        r.next_entry(10).unwrap();
        let mut got = Vec::new();
        r.data().read_to_end(&mut got).unwrap();
        assert_eq!(got, b"hello");
        assert_eq!(r.next_entry(10).unwrap().unwrap().name, "b");
        let mut bad = archive(&[("a", b"hello"), ("b", b"x")]);
        let at = bad.windows(5).position(|w| w == b"hello").unwrap();
        bad[at] = b'j';
        let mut r = Reader::new(&bad[..]);
        r.next_entry(10).unwrap();
        r.data().read_to_end(&mut Vec::new()).unwrap();
        assert_eq!(r.next_entry(10), Err(Error::Checksum("a".into())));
    }

    #[test]
    fn gnu_cpio_archives_are_read_with_their_checksums() {
        let crc = include_bytes!("../../tests/fixtures/fleet/gnu-crc.cpio");
        assert_eq!(
            read_all(crc, 10).unwrap(),
            vec![("a.txt".to_owned(), b"hello\n".to_vec()), ("b".to_owned(), b"xy".to_vec())]
        );
        let newc = include_bytes!("../../tests/fixtures/fleet/gnu-newc.cpio");
        assert_eq!(read_all(newc, 10).unwrap(), vec![("a.txt".to_owned(), b"hello\n".to_vec())]);
        let mut r = Reader::new(&crc[..]);
        assert_eq!(r.next_entry(10).unwrap().unwrap().check, Some(542));
    }

    #[test]
    fn writer_refuses_bad_names() {
        let mut w = Writer::new(Vec::new());
        assert!(w.append_bytes("../x", b"").is_err());
        assert!(w.append_bytes("/x", b"").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = read_all(&bytes, 1 << 20);
        }

        #[test]
        fn mutated_archives_never_panic(
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            cut in any::<usize>(),
        ) {
            let mut bytes = archive(&[("sw-description", b"software = {};"), ("x.snap", &[7u8; 37])]);
            for (at, b) in flips {
                let i = at % bytes.len();
                bytes[i] = b;
            }
            let cut = cut % (bytes.len() + 1);
            let _ = read_all(&bytes[..cut], 1 << 20);
        }

        #[test]
        fn mutated_headers_in_hex_never_panic(
            at in 0usize..HEADER_LEN, digit in proptest::sample::select(b"0123456789abcdefABCDEF".to_vec()),
        ) {
            let mut bytes = archive(&[("a", b"data")]);
            if at >= 6 {
                bytes[at] = digit;
            }
            let _ = read_all(&bytes, 1 << 20);
        }

        #[test]
        fn round_trip(files in proptest::collection::btree_map("[a-z0-9._-]{1,20}", proptest::collection::vec(any::<u8>(), 0..64), 0..5)) {
            let files: Vec<(String, Vec<u8>)> = files.into_iter().filter(|(n, _)| n != "." && n != "..").collect();
            let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
            prop_assert_eq!(read_all(&archive(&refs), 1 << 20).unwrap(), files);
        }
    }
}
