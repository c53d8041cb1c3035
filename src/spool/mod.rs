//! The on-disk spool: an append-only queue of records for one sink that survives `kill -9` and
//! reboots. \[io\]: files, fsync, rename; time is passed in.
//!
//! A spool is a directory:
//!
//! - `00000001.seg`, `00000002.seg`, …: segment files, each a run of frames in the format of
//!   [`record`]; a new one is started when the next batch would take the current one past
//!   [`Limits::segment_bytes`];
//! - `ack`: the acknowledged position and the drop counters, a few lines of text
//!   (`acked 42`, `dropped-records 0`, `dropped-bytes 0`), replaced atomically
//!   (write `ack.tmp`, fsync, rename, fsync the directory);
//! - `lock`: holds a POSIX record lock (`fcntl`) of the one [`Spool`] that has the directory
//!   open (`DirLock`).
//!
//! Guarantees, which docs/spool.md explains to users:
//!
//! - A batch whose [`Spool::append_batch`] returned `Ok` is on disk: the batch is written with one
//!   `write` and made durable with one `fdatasync` (plus a directory fsync when it starts a segment).
//! - [`Spool::peek`] returns unacknowledged records oldest first; [`Spool::ack`] moves the
//!   acknowledged position and deletes segments that hold only acknowledged records. A crash
//!   between sending and acking sends the records again: at least once, never lost.
//! - [`Spool::open`] repairs what a crash or a bad disk left: a torn tail is truncated, a damaged
//!   record is skipped and counted, sequence numbers resume after the highest seen. It never
//!   panics and never refuses a damaged directory.
//! - Past [`Limits::max_bytes`] or [`Limits::max_age`] the oldest records are dropped, counted in
//!   [`Stats::dropped_records`] and [`Stats::dropped_bytes`] and logged; the newest never are.
//!
//! What this module does not do: sending, retries, formats of the payload, choosing directories
//! (see `paths::spool_dir`). `cmd` is `pocketses spool status`.

pub mod cmd;
pub mod record;

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::error::describe_io;
use record::{Item, Scanner};

/// The name of the acknowledged-position file in a spool directory.
pub const ACK_FILE: &str = "ack";
const ACK_TMP: &str = "ack.tmp";
/// [`Spool::ack_deferred`] writes the `ack` file at least every this many acknowledgements.
pub const ACK_WRITE_EVERY: u32 = 10;
const LOCK_FILE: &str = "lock";
const SEGMENT_EXT: &str = ".seg";

/// How much a spool may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Segment files together stay under this many bytes (default 64 MiB); past it, the oldest
    /// segment is dropped. One batch larger than the limit is still kept whole.
    pub max_bytes: u64,
    /// Records older than this are dropped (default: no limit).
    pub max_age: Option<Duration>,
    /// A segment is rolled when the next batch would take it past this size (default 1 MiB);
    /// never more than a quarter of `max_bytes`, so that dropping one segment frees little.
    pub segment_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bytes: 64 << 20, max_age: None, segment_bytes: 1 << 20 }
    }
}

impl Limits {
    fn effective_segment_bytes(&self) -> u64 {
        self.segment_bytes.min(self.max_bytes / 4).max(4096)
    }
}

/// Errors of the spool, in snapd's grammar.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error("cannot {action} {}: {}", path.display(), describe_io(source))]
    Io {
        /// What was being done ("write spool segment").
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Another process has the spool open.
    #[error("cannot open spool {}: in use by another process", .0.display())]
    Locked(PathBuf),
    /// A payload is larger than a record may be.
    #[error("cannot append to spool: {0}")]
    TooLarge(#[from] record::TooLarge),
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io { action, path: path.to_path_buf(), source }
}

/// One record, owned: what [`Spool::peek`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Sequence number; acknowledge up to it with [`Spool::ack`].
    pub seq: u64,
    /// Append time, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The bytes that were appended.
    pub payload: Vec<u8>,
}

/// What a record weighs for [`Stats::pending_weight`]: the records' own measure of their
/// content, which the spool does not know (a push sink: the points in a record). Called once for
/// each record appended, and for each record read at open or when the head moves within a
/// segment.
#[derive(Clone)]
pub struct Weigher(Option<std::sync::Arc<WeighFn>>);

/// What a [`Weigher`] calls.
type WeighFn = dyn Fn(&[u8]) -> u64 + Send + Sync;

impl Weigher {
    /// Every record weighs 0.
    pub const NONE: Weigher = Weigher(None);

    /// Records weigh what `weigh` says of their payload.
    pub fn new(weigh: impl Fn(&[u8]) -> u64 + Send + Sync + 'static) -> Weigher {
        Weigher(Some(std::sync::Arc::new(weigh)))
    }

    fn weigh(&self, payload: &[u8]) -> u64 {
        self.0.as_ref().map_or(0, |f| f(payload))
    }
}

impl std::fmt::Debug for Weigher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Weigher(..)" } else { "Weigher::NONE" })
    }
}

/// The newest records kept in memory while they are all that is pending, so that a sender that
/// keeps up reads what it sends from memory, not back from the disk; past this many bytes the
/// spool reads from disk until the backlog is gone.
pub const TAIL_BYTES: usize = 64 << 10;

/// The figures of a spool. Counts marked "since open" start at zero with each [`Spool::open`];
/// the drop counts are kept in the `ack` file and survive restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Stats {
    /// Records appended since open.
    pub appended_records: u64,
    /// Appends (batches of records, one `fdatasync` each) since open.
    #[serde(default)]
    pub appended_batches: u64,
    /// Records acknowledged since open.
    pub acked_records: u64,
    /// Records waiting for acknowledgement.
    pub pending_records: u64,
    /// Bytes on disk of the records waiting (frames, including skipped damage).
    pub pending_bytes: u64,
    /// The weight of the records waiting, as the spool's [`Weigher`] counts it (0 without one).
    pub pending_weight: u64,
    /// Append time of the oldest waiting record, milliseconds since the Unix epoch.
    pub oldest_pending_ms: Option<u64>,
    /// Records dropped by the limits, over the spool's life.
    pub dropped_records: u64,
    /// Bytes of those records.
    pub dropped_bytes: u64,
    /// Damaged regions skipped at open (each is usually one record).
    pub corrupt_skipped: u64,
    /// Incomplete records truncated at the end of the last segment at open.
    pub torn_truncations: u64,
    /// Bytes written since open: records and `ack` files (the wear figure).
    pub bytes_written: u64,
    /// Segment files.
    pub segments: u64,
    /// The highest acknowledged sequence number.
    pub acked_seq: u64,
    /// The sequence number the next record gets.
    pub next_seq: u64,
}

/// What the `ack` file holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct AckState {
    acked: u64,
    dropped_records: u64,
    dropped_bytes: u64,
}

impl AckState {
    fn render(&self) -> String {
        format!(
            "acked {}\ndropped-records {}\ndropped-bytes {}\n",
            self.acked, self.dropped_records, self.dropped_bytes
        )
    }

    /// Reads the file's text; unknown or malformed lines are ignored, so a damaged file costs at
    /// most re-sending (acked 0), never the spool. \[pure\]
    fn parse(text: &str) -> AckState {
        let mut state = AckState::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(' ') else { continue };
            let Ok(value) = value.trim().parse::<u64>() else { continue };
            match key {
                "acked" => state.acked = value,
                "dropped-records" => state.dropped_records = value,
                "dropped-bytes" => state.dropped_bytes = value,
                _ => {}
            }
        }
        state
    }
}

/// A damaged region of a segment, found by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Finding {
    /// The segment file's name.
    pub segment: String,
    /// Where the damage starts, in bytes from the start of the segment.
    pub offset: u64,
    /// How many bytes hold no valid record.
    pub bytes: u64,
    /// `corrupt` (a damaged record, skipped) or `torn` (an incomplete record at the end of the
    /// last segment, which the next open truncates).
    pub kind: &'static str,
}

/// What [`verify`] found in one spool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Verified {
    /// Valid records, acknowledged or not.
    pub records: u64,
    /// Segment files read.
    pub segments: u64,
    /// Every damaged region, in file order.
    pub findings: Vec<Finding>,
}

/// Checks every record of the spool in `dir` (checksums, lengths, increasing sequence numbers)
/// without changing anything or taking the lock.
///
/// # Errors
/// When the directory or a segment cannot be read.
pub fn verify(dir: &Path) -> Result<Verified, Error> {
    let ids = segment_ids(dir)?;
    let mut out = Verified::default();
    let mut last_seq = 0;
    for id in ids {
        let path = dir.join(segment_name(id));
        let buf = match fs::read(&path) {
            Ok(buf) => buf,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(Error::Io { action: "read", path, source: err }),
        };
        out.segments += 1;
        let mut scanner = Scanner::new(&buf, last_seq);
        for item in scanner.by_ref() {
            let (offset, bytes, kind) = match item {
                Item::Record { .. } => {
                    out.records += 1;
                    continue;
                }
                Item::Corrupt { start, end } => (start, end - start, "corrupt"),
                Item::Torn { offset } => (offset, buf.len() - offset, "torn"),
            };
            out.findings.push(Finding {
                segment: segment_name(id),
                offset: offset as u64,
                bytes: bytes as u64,
                kind,
            });
        }
        last_seq = scanner.last_seq();
    }
    Ok(out)
}

/// Milliseconds since the Unix epoch; 0 before it.
pub fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A segment file as the spool knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    id: u64,
    len: u64,
    count: u64,
    /// The records' weight, as [`Weigher`] counts it.
    weight: u64,
    last_seq: u64,
    last_time_ms: u64,
}

/// Where the first unacknowledged record of the first segment is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Head {
    offset: u64,
    consumed: u64,
    /// The weight of the `consumed` records.
    consumed_weight: u64,
    time_ms: Option<u64>,
}

/// What scanning one segment file found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Scanned {
    count: u64,
    weight: u64,
    last_seq: u64,
    last_time_ms: u64,
    corrupt: u64,
    /// A torn or damaged tail starting here, with whether it was torn.
    tail: Option<(u64, bool)>,
    /// The first record with a sequence number above the acknowledged one.
    head: Head,
    pending_found: bool,
}

/// Scans a segment's bytes. `after_seq` is the last sequence number of the segments before it.
/// \[pure\]
fn scan_segment(buf: &[u8], after_seq: u64, acked: u64, weigh: &Weigher) -> Scanned {
    let mut out = Scanned { last_seq: after_seq, ..Scanned::default() };
    let mut items = Scanner::new(buf, after_seq).peekable();
    while let Some(item) = items.next() {
        match item {
            Item::Record { offset, record } => {
                let weight = weigh.weigh(record.payload);
                out.count += 1;
                out.weight += weight;
                out.last_seq = record.seq;
                out.last_time_ms = record.time_ms;
                if record.seq > acked && !out.pending_found {
                    out.pending_found = true;
                    out.head.offset = offset as u64;
                    out.head.time_ms = Some(record.time_ms);
                } else if !out.pending_found {
                    out.head.consumed += 1;
                    out.head.consumed_weight += weight;
                }
            }
            Item::Corrupt { start, end } => {
                out.corrupt += 1;
                if end == buf.len() && items.peek().is_none() {
                    out.tail = Some((start as u64, false));
                }
            }
            Item::Torn { offset } => out.tail = Some((offset as u64, true)),
        }
    }
    if !out.pending_found {
        out.head.offset = buf.len() as u64;
    }
    out
}

fn segment_name(id: u64) -> String {
    format!("{id:08}{SEGMENT_EXT}")
}

fn segment_ids(dir: &Path) -> Result<Vec<u64>, Error> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("read spool directory", dir))? {
        let entry = entry.map_err(io_err("read spool directory", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(SEGMENT_EXT) else { continue };
        if !stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(id) = stem.parse::<u64>() {
                ids.push(id);
            }
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

fn read_ack(dir: &Path) -> Result<AckState, Error> {
    let path = dir.join(ACK_FILE);
    match fs::read(&path) {
        Ok(bytes) => Ok(AckState::parse(&String::from_utf8_lossy(&bytes))),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(AckState::default()),
        Err(err) => Err(Error::Io { action: "read", path, source: err }),
    }
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("sync spool directory", dir))
}

/// The figures of the spool in `dir`, read without changing anything: for `pocketses spool status`
/// while a daemon has the spool open. Damage is counted as [`Spool::open`] would count it.
///
/// # Errors
///
/// When the directory or a file cannot be read.
pub fn inspect(dir: &Path) -> Result<Stats, Error> {
    let ack = read_ack(dir)?;
    let ids = segment_ids(dir)?;
    let mut stats = Stats {
        acked_seq: ack.acked,
        dropped_records: ack.dropped_records,
        dropped_bytes: ack.dropped_bytes,
        ..Stats::default()
    };
    let mut last_seq = 0;
    for (i, id) in ids.iter().enumerate() {
        let path = dir.join(segment_name(*id));
        let buf = match fs::read(&path) {
            Ok(buf) => buf,
            // Acknowledged and deleted by the daemon while we were reading: nothing pending there.
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(Error::Io { action: "read", path, source: err }),
        };
        let scanned = scan_segment(&buf, last_seq, ack.acked, &Weigher::NONE);
        last_seq = scanned.last_seq;
        stats.segments += 1;
        stats.corrupt_skipped += scanned.corrupt;
        if let Some((_, true)) = scanned.tail {
            if i + 1 == ids.len() {
                stats.torn_truncations += 1;
            } else {
                stats.corrupt_skipped += 1;
            }
        }
        if scanned.pending_found {
            stats.pending_records += scanned.count - scanned.head.consumed;
            stats.pending_bytes += buf.len() as u64 - scanned.head.offset;
            if stats.oldest_pending_ms.is_none() {
                stats.oldest_pending_ms = scanned.head.time_ms;
            }
        }
    }
    stats.next_seq = last_seq.max(ack.acked) + 1;
    Ok(stats)
}

/// The sum of `weigh` over the records of the spool in `dir` that wait to be sent, read without
/// changing anything (like [`inspect`]): `spool status` counts points with it, which only the
/// payload's format knows.
///
/// # Errors
///
/// When the directory or a file cannot be read.
pub fn pending_weight(dir: &Path, weigh: impl Fn(&[u8]) -> u64) -> Result<u64, Error> {
    let ack = read_ack(dir)?;
    let mut total = 0u64;
    let mut last_seq = 0;
    for id in segment_ids(dir)? {
        let path = dir.join(segment_name(id));
        let buf = match fs::read(&path) {
            Ok(buf) => buf,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(Error::Io { action: "read", path, source: err }),
        };
        let mut scanner = Scanner::new(&buf, last_seq);
        for item in scanner.by_ref() {
            if let Item::Record { record, .. } = item {
                if record.seq > ack.acked {
                    total = total.saturating_add(weigh(record.payload));
                }
            }
        }
        last_seq = scanner.last_seq();
    }
    Ok(total)
}

/// The lock of an open spool directory: a write lock on its `lock` file.
///
/// A POSIX record lock (`fcntl(F_SETLK)`), not `flock`: an `flock` belongs to the open file, and
/// a child forked by another thread holds a copy of every descriptor until it execs, so a
/// spool closed meanwhile would stay locked by that child and the next open be refused. A
/// record lock belongs to the process and is never inherited. Record locks do not exclude the
/// process itself, and closing any descriptor of the file drops them, so the directories open
/// in this process are kept in [`OPEN_HERE`], checked before the file is opened.
#[derive(Debug)]
struct DirLock {
    file: Option<File>,
    key: PathBuf,
}

/// The spool directories this process has open (canonical paths).
static OPEN_HERE: std::sync::Mutex<std::collections::BTreeSet<PathBuf>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

fn open_here() -> std::sync::MutexGuard<'static, std::collections::BTreeSet<PathBuf>> {
    OPEN_HERE.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl DirLock {
    /// Takes the lock of the existing directory `dir`.
    #[allow(clippy::cast_possible_truncation)] // F_WRLCK and SEEK_SET are small constants
    fn take(dir: &Path) -> Result<DirLock, Error> {
        let key = fs::canonicalize(dir).map_err(io_err("open spool directory", dir))?;
        if !open_here().insert(key.clone()) {
            return Err(Error::Locked(dir.to_path_buf()));
        }
        // From here on `lock` releases the key when it goes, on every path.
        let mut lock = DirLock { file: None, key };
        let lock_path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err("open", &lock_path))?;
        // SAFETY: fcntl on a descriptor we own with a `flock` struct that lives across the call.
        let taken = unsafe {
            let mut range: libc::flock = std::mem::zeroed();
            range.l_type = libc::F_WRLCK as libc::c_short;
            range.l_whence = libc::SEEK_SET as libc::c_short;
            libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &range) == 0
        };
        if !taken {
            return Err(Error::Locked(dir.to_path_buf()));
        }
        lock.file = Some(file);
        Ok(lock)
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // The descriptor first (which releases the lock), then the key: a new open in this
        // process must not take the lock before this descriptor's close would drop it.
        drop(self.file.take());
        open_here().remove(&self.key);
    }
}

/// An open spool. One process at a time: [`Spool::open`] takes a lock on the directory.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    limits: Limits,
    segments: VecDeque<Segment>,
    head: Head,
    /// The last segment, open for appending, when it still has room.
    active: Option<File>,
    next_id: u64,
    next_seq: u64,
    /// The last segment may end with a failed write: the next batch starts a new segment.
    force_roll: bool,
    ack: AckState,
    stats: Stats,
    weigh: Weigher,
    /// The newest records, while they are every pending record ([`TAIL_BYTES`]): what
    /// [`Spool::peek`] returns without reading the disk. Empty, and not filled, while older
    /// pending records are only on disk.
    tail: VecDeque<Entry>,
    tail_bytes: usize,
    /// What the `ack` file on disk says, and the deferred acknowledgements since it was
    /// written ([`Spool::ack_deferred`]).
    ack_on_disk: AckState,
    acks_unwritten: u32,
    _lock: DirLock,
}

/// Records removed from the front of the spool, before the `ack` file and deletions are written.
#[derive(Debug, Default)]
struct Advance {
    records: u64,
    bytes: u64,
    delete: Vec<u64>,
}

impl Spool {
    /// Opens (creating if needed) the spool in `dir`, repairing what a crash left.
    ///
    /// # Errors
    ///
    /// When the directory cannot be created or read, a file cannot be repaired, or another
    /// process has the spool open. Damaged records are not errors: they are skipped and counted.
    pub fn open(dir: &Path, limits: Limits) -> Result<Spool, Error> {
        Spool::open_weighed(dir, limits, Weigher::NONE)
    }

    /// Like [`Spool::open`], with records weighed by `weigh` for [`Stats::pending_weight`].
    ///
    /// # Errors
    ///
    /// As [`Spool::open`].
    pub fn open_weighed(dir: &Path, limits: Limits, weigh: Weigher) -> Result<Spool, Error> {
        fs::create_dir_all(dir).map_err(io_err("create spool directory", dir))?;
        let lock = DirLock::take(dir)?;
        match fs::remove_file(dir.join(ACK_TMP)) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => {
                return Err(Error::Io { action: "remove", path: dir.join(ACK_TMP), source: err });
            }
            _ => {}
        }
        let ack = read_ack(dir)?;
        let ids = segment_ids(dir)?;
        let mut stats = Stats::default();
        let mut segments = VecDeque::new();
        let mut head: Option<Head> = None;
        let mut last_seq = 0;
        let mut removed = false;
        for (i, &id) in ids.iter().enumerate() {
            let path = dir.join(segment_name(id));
            let is_last = i + 1 == ids.len();
            let buf = fs::read(&path).map_err(io_err("read", &path))?;
            let scanned = scan_segment(&buf, last_seq, ack.acked, &weigh);
            last_seq = scanned.last_seq;
            stats.corrupt_skipped += scanned.corrupt;
            let mut len = buf.len() as u64;
            match scanned.tail {
                Some((at, torn)) if is_last => {
                    let file = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(io_err("open", &path))?;
                    file.set_len(at)
                        .and_then(|()| file.sync_data())
                        .map_err(io_err("truncate", &path))?;
                    len = at;
                    if torn {
                        stats.torn_truncations += 1;
                    }
                    tracing::warn!(spool = %dir.display(), segment = id, offset = at, torn, "truncated the end of a spool segment");
                }
                Some((_, true)) => stats.corrupt_skipped += 1,
                _ => {}
            }
            if scanned.corrupt > 0 {
                tracing::warn!(spool = %dir.display(), segment = id, regions = scanned.corrupt, "skipped damaged spool records");
            }
            let fully_acked = scanned.count > 0 && scanned.last_seq <= ack.acked;
            let empty_and_old = scanned.count == 0 && !is_last;
            if fully_acked || empty_and_old {
                fs::remove_file(&path).map_err(io_err("remove", &path))?;
                removed = true;
                continue;
            }
            if head.is_none() {
                head = Some(scanned.head);
            }
            segments.push_back(Segment {
                id,
                len,
                count: scanned.count,
                weight: scanned.weight,
                last_seq: scanned.last_seq,
                last_time_ms: scanned.last_time_ms,
            });
        }
        if removed {
            sync_dir(dir)?;
        }
        let next_seq = last_seq.max(ack.acked) + 1;
        let next_id = ids.last().map_or(1, |id| id + 1);
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            limits,
            segments,
            head: head.unwrap_or_default(),
            active: None,
            next_id,
            next_seq,
            force_roll: false,
            ack,
            stats,
            weigh,
            tail: VecDeque::new(),
            tail_bytes: 0,
            ack_on_disk: ack,
            acks_unwritten: 0,
            _lock: lock,
        };
        spool.refresh_stats();
        Ok(spool)
    }

    /// The directory of this spool.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current figures.
    pub fn stats(&self) -> Stats {
        self.stats.clone()
    }

    fn refresh_stats(&mut self) {
        let count: u64 = self.segments.iter().map(|s| s.count).sum();
        let bytes: u64 = self.segments.iter().map(|s| s.len).sum();
        let weight: u64 = self.segments.iter().map(|s| s.weight).sum();
        let stats = &mut self.stats;
        stats.pending_records = count - self.head.consumed.min(count);
        stats.pending_bytes = bytes - self.head.offset.min(bytes);
        stats.pending_weight = weight - self.head.consumed_weight.min(weight);
        stats.oldest_pending_ms = if stats.pending_records == 0 { None } else { self.head.time_ms };
        stats.dropped_records = self.ack.dropped_records;
        stats.dropped_bytes = self.ack.dropped_bytes;
        stats.segments = self.segments.len() as u64;
        stats.acked_seq = self.ack.acked;
        stats.next_seq = self.next_seq;
    }

    fn segment_path(&self, id: u64) -> PathBuf {
        self.dir.join(segment_name(id))
    }

    /// Appends one record per payload, all stamped `now`, and makes them durable with one
    /// `fdatasync`. Returns the sequence numbers given, first and last (`None` for no payloads).
    /// Then drops what the limits no longer allow, oldest first.
    ///
    /// # Errors
    ///
    /// When a payload is too large (nothing is written) or the write or sync fails. After a
    /// failed write the segment is cut back to where it was, so a later append starts clean.
    pub fn append_batch<P: AsRef<[u8]>>(
        &mut self,
        payloads: &[P],
        now: SystemTime,
    ) -> Result<Option<(u64, u64)>, Error> {
        if payloads.is_empty() {
            return Ok(None);
        }
        let time_ms = millis(now);
        let first = self.next_seq;
        let mut buf = Vec::with_capacity(
            payloads.iter().map(|p| p.as_ref().len() + record::HEADER_LEN).sum(),
        );
        for (i, payload) in payloads.iter().enumerate() {
            record::encode_into(&mut buf, first + i as u64, time_ms, payload.as_ref())?;
        }
        let n = payloads.len() as u64;
        let last = first + n - 1;
        let weight: u64 = payloads.iter().map(|p| self.weigh.weigh(p.as_ref())).sum();
        let segment_bytes = self.limits.effective_segment_bytes();
        let fits = !self.force_roll
            && self
                .segments
                .back()
                .is_some_and(|s| s.len == 0 || s.len + buf.len() as u64 <= segment_bytes);
        if !fits {
            self.new_segment()?;
        } else if self.active.is_none() {
            self.reopen_last()?;
        }
        let Some(seg) = self.segments.back_mut() else {
            return Err(Error::Io {
                action: "append to",
                path: self.dir.clone(),
                source: io::Error::other("internal error: no segment after roll"),
            });
        };
        let path = self.dir.join(segment_name(seg.id));
        let Some(file) = self.active.as_mut() else {
            return Err(Error::Io {
                action: "append to",
                path,
                source: io::Error::other("internal error: no open segment"),
            });
        };
        // The sequence numbers are spent whatever happens, so that a batch that did reach the
        // disk before an error can never share numbers with a later one.
        self.next_seq = last + 1;
        if let Err(err) = file.write_all(&buf).and_then(|()| file.sync_data()) {
            let restored = file.set_len(seg.len).and_then(|()| file.sync_data());
            if restored.is_err() {
                // Leave the damaged end behind: open counts it, and appends go to a new segment.
                self.active = None;
                self.force_roll = true;
            }
            return Err(Error::Io { action: "write", path, source: err });
        }
        seg.len += buf.len() as u64;
        seg.count += n;
        seg.weight += weight;
        seg.last_seq = last;
        seg.last_time_ms = time_ms;
        if self.head.time_ms.is_none() {
            // Nothing was pending at the head: the first record of this batch is the oldest now.
            self.head.time_ms = Some(time_ms);
        }
        // Kept in memory while the tail is every pending record and the batch fits.
        let bytes: usize = payloads.iter().map(|p| p.as_ref().len()).sum();
        let complete = self.tail.len() as u64 == self.stats.pending_records;
        if complete && self.tail_bytes + bytes <= TAIL_BYTES {
            for (i, payload) in payloads.iter().enumerate() {
                let payload = payload.as_ref().to_vec();
                self.tail.push_back(Entry { seq: first + i as u64, time_ms, payload });
            }
            self.tail_bytes += bytes;
        } else {
            self.tail.clear();
            self.tail_bytes = 0;
        }
        self.stats.appended_records += n;
        self.stats.appended_batches += 1;
        self.stats.bytes_written += buf.len() as u64;
        self.refresh_stats();
        self.enforce(now)?;
        Ok(Some((first, last)))
    }

    /// Opens the last segment (from before open, or after a failed write) for appending.
    fn reopen_last(&mut self) -> Result<(), Error> {
        let Some(seg) = self.segments.back() else { return self.new_segment() };
        let path = self.segment_path(seg.id);
        let file = OpenOptions::new().append(true).open(&path).map_err(io_err("open", &path))?;
        self.active = Some(file);
        Ok(())
    }

    /// Starts a new segment file and makes its name durable.
    fn new_segment(&mut self) -> Result<(), Error> {
        self.active = None;
        let id = self.next_id;
        let path = self.segment_path(id);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(io_err("create", &path))?;
        sync_dir(&self.dir)?;
        self.next_id = id + 1;
        if self.segments.is_empty() {
            self.head = Head::default();
        }
        self.segments.push_back(Segment {
            id,
            len: 0,
            count: 0,
            weight: 0,
            last_seq: self.next_seq - 1,
            last_time_ms: 0,
        });
        self.active = Some(file);
        self.force_roll = false;
        Ok(())
    }

    /// Up to `max` unacknowledged records, oldest first. From memory while every pending record
    /// is in the tail ([`TAIL_BYTES`]), else read from disk; damaged records found since open
    /// are skipped.
    ///
    /// # Errors
    ///
    /// When a segment cannot be read.
    pub fn peek(&self, max: usize) -> Result<Vec<Entry>, Error> {
        self.peek_held(max).map(|(entries, _)| entries)
    }

    /// [`Spool::peek`], and whether the records came from memory: `true` when every one was
    /// appended by this process and held since (never read back from disk), so a caller that
    /// checked what it appended need not check it again; `false` when they were read from the
    /// segment files (checksums verified, content not).
    ///
    /// # Errors
    ///
    /// As [`Spool::peek`].
    pub fn peek_held(&self, max: usize) -> Result<(Vec<Entry>, bool), Error> {
        if self.tail.len() as u64 == self.stats.pending_records {
            return Ok((self.tail.iter().take(max).cloned().collect(), true));
        }
        self.peek_disk(max).map(|entries| (entries, false))
    }

    /// [`Spool::peek`] from the segment files.
    fn peek_disk(&self, max: usize) -> Result<Vec<Entry>, Error> {
        let mut out = Vec::new();
        for (i, seg) in self.segments.iter().enumerate() {
            if out.len() >= max {
                break;
            }
            let from = if i == 0 { self.head.offset } else { 0 };
            if from >= seg.len {
                continue;
            }
            let buf = self.read_segment(seg, from)?;
            for item in Scanner::new(&buf, self.ack.acked) {
                if let Item::Record { record, .. } = item {
                    out.push(Entry {
                        seq: record.seq,
                        time_ms: record.time_ms,
                        payload: record.payload.to_vec(),
                    });
                    if out.len() >= max {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    fn read_segment(&self, seg: &Segment, from: u64) -> Result<Vec<u8>, Error> {
        use std::io::{Read as _, Seek as _, SeekFrom};
        let path = self.segment_path(seg.id);
        let mut file = File::open(&path).map_err(io_err("read", &path))?;
        file.seek(SeekFrom::Start(from)).map_err(io_err("read", &path))?;
        let mut buf = Vec::with_capacity(usize::try_from(seg.len - from).unwrap_or(0));
        file.take(seg.len - from).read_to_end(&mut buf).map_err(io_err("read", &path))?;
        Ok(buf)
    }

    /// Acknowledges every record up to `upto_seq`: records the position in the `ack` file, then
    /// deletes segments that hold nothing newer. Acknowledging an old position does nothing.
    ///
    /// # Errors
    ///
    /// When the `ack` file cannot be written or a segment cannot be read or removed; the records
    /// are then sent again after a restart, never lost.
    pub fn ack(&mut self, upto_seq: u64) -> Result<(), Error> {
        match self.acknowledge(upto_seq)? {
            Some(advance) => self.commit(advance),
            None => Ok(()),
        }
    }

    /// Moves the acknowledged position to `upto_seq` in memory: what [`Spool::ack`] and
    /// [`Spool::ack_deferred`] share. `None` when it is not past the position already.
    fn acknowledge(&mut self, upto_seq: u64) -> Result<Option<Advance>, Error> {
        let upto = upto_seq.min(self.next_seq - 1);
        if upto <= self.ack.acked {
            return Ok(None);
        }
        let advance = self.advance(|seg| seg.last_seq <= upto, |seq, _| seq <= upto)?;
        self.ack.acked = upto;
        self.stats.acked_records += advance.records;
        Ok(Some(advance))
    }

    /// [`Spool::ack`] for a sender that acknowledges after every request: the position moves at
    /// once in memory (peek, stats), but the `ack` file, one `fsync` and a rename each time, is
    /// written only every [`ACK_WRITE_EVERY`] calls, and whenever segments are deleted or the
    /// drop counts changed (so neither a deletion nor a drop ever reaches the disk without the
    /// position that explains it); dropping the spool writes what is left. A crash in between
    /// brings back an older position: those records are sent again, at least once, never lost.
    ///
    /// # Errors
    ///
    /// As [`Spool::ack`].
    pub fn ack_deferred(&mut self, upto_seq: u64) -> Result<(), Error> {
        let Some(advance) = self.acknowledge(upto_seq)? else { return Ok(()) };
        self.acks_unwritten += 1;
        if advance.delete.is_empty() && self.acks_unwritten < ACK_WRITE_EVERY {
            self.drop_tail_upto_ack();
            self.refresh_stats();
            return Ok(());
        }
        self.commit(advance)
    }

    /// Drops what [`Limits`] no longer allow at `now`: records older than `max_age`, then the
    /// oldest segments while the spool is larger than `max_bytes` (never the last one).
    ///
    /// # Errors
    ///
    /// As [`Spool::ack`].
    pub fn enforce(&mut self, now: SystemTime) -> Result<(), Error> {
        if let Some(max_age) = self.limits.max_age {
            let cutoff =
                millis(now).saturating_sub(u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX));
            let advance = self.advance(|seg| seg.last_time_ms < cutoff, |_, time| time < cutoff)?;
            self.drop_advance(advance, "older than max-age")?;
        }
        let mut advance = Advance::default();
        while self.segments.len() > 1
            && self.segments.iter().map(|s| s.len).sum::<u64>() > self.limits.max_bytes
        {
            let Some(seg) = self.segments.pop_front() else { break };
            advance.records += seg.count - self.head.consumed.min(seg.count);
            advance.bytes += seg.len - self.head.offset.min(seg.len);
            advance.delete.push(seg.id);
            self.head = self.head_of_front()?;
        }
        self.drop_advance(advance, "past max-bytes")
    }

    fn drop_advance(&mut self, advance: Advance, why: &str) -> Result<(), Error> {
        if advance.records == 0 && advance.delete.is_empty() {
            return Ok(());
        }
        tracing::warn!(spool = %self.dir.display(), records = advance.records, bytes = advance.bytes, "dropped the oldest spooled records: {why}");
        self.ack.dropped_records += advance.records;
        self.ack.dropped_bytes += advance.bytes;
        let acked = self.first_pending_seq()?.map_or(self.next_seq - 1, |seq| seq - 1);
        self.ack.acked = self.ack.acked.max(acked);
        self.commit(advance)
    }

    /// The sequence number of the oldest pending record.
    fn first_pending_seq(&self) -> Result<Option<u64>, Error> {
        for (i, seg) in self.segments.iter().enumerate() {
            let from = if i == 0 { self.head.offset } else { 0 };
            if from >= seg.len {
                continue;
            }
            let buf = self.read_segment(seg, from)?;
            let first = Scanner::new(&buf, self.ack.acked).find_map(|item| match item {
                Item::Record { record, .. } => Some(record.seq),
                _ => None,
            });
            if first.is_some() {
                return Ok(first);
            }
        }
        Ok(None)
    }

    /// The head of the first segment when all of it is pending.
    fn head_of_front(&self) -> Result<Head, Error> {
        let Some(seg) = self.segments.front() else { return Ok(Head::default()) };
        let buf = self.read_segment(seg, 0)?;
        let scanned = scan_segment(&buf, 0, 0, &Weigher::NONE);
        Ok(Head {
            offset: scanned.head.offset,
            consumed: 0,
            consumed_weight: 0,
            time_ms: scanned.head.time_ms,
        })
    }

    /// Moves the head past whole segments for which `whole` holds, then past the records of the
    /// first remaining segment for which `record` holds (sequence number, time).
    fn advance(
        &mut self,
        whole: impl Fn(&Segment) -> bool,
        record: impl Fn(u64, u64) -> bool,
    ) -> Result<Advance, Error> {
        let mut advance = Advance::default();
        while let Some(seg) = self.segments.front() {
            let all_of_it = seg.count > 0 && whole(seg);
            if all_of_it && self.segments.len() > 1 {
                advance.records += seg.count - self.head.consumed.min(seg.count);
                advance.bytes += seg.len - self.head.offset.min(seg.len);
                advance.delete.push(seg.id);
                self.segments.pop_front();
                self.head = self.head_of_front()?;
                continue;
            }
            if all_of_it {
                // Every record of the last segment goes: the head moves to its end without
                // reading it, and it stays the segment the next appends go to (a sender that
                // keeps up would otherwise make and delete a file, two directory changes, for
                // every record).
                advance.records += seg.count - self.head.consumed.min(seg.count);
                advance.bytes += seg.len - self.head.offset.min(seg.len);
                self.head = Head {
                    offset: seg.len,
                    consumed: seg.count,
                    consumed_weight: seg.weight,
                    time_ms: None,
                };
                break;
            }
            if self.head.offset >= seg.len {
                break;
            }
            let buf = self.read_segment(seg, self.head.offset)?;
            let mut head = Head { offset: seg.len, time_ms: None, ..self.head };
            for item in Scanner::new(&buf, 0) {
                if let Item::Record { offset, record: r } = item {
                    if record(r.seq, r.time_ms) {
                        head.consumed += 1;
                        head.consumed_weight += self.weigh.weigh(r.payload);
                        advance.records += 1;
                        advance.bytes += r.frame_len() as u64;
                    } else {
                        head.offset = self.head.offset + offset as u64;
                        head.time_ms = Some(r.time_ms);
                        break;
                    }
                }
            }
            self.head = head;
            if head.time_ms.is_none() && self.segments.len() > 1 {
                // Every record of this segment went: delete it and go on with the next.
                if let Some(seg) = self.segments.pop_front() {
                    advance.delete.push(seg.id);
                }
                self.head = self.head_of_front()?;
                continue;
            }
            break;
        }
        Ok(advance)
    }

    /// Writes the `ack` file, then deletes the segments `advance` emptied.
    /// Writes the position [`Spool::ack_deferred`] kept in memory, if any: a sender calls it
    /// when a request fails, so that a crash during an outage sends nothing again.
    ///
    /// # Errors
    ///
    /// When the `ack` file cannot be written (the records are then sent again after a restart).
    pub fn flush_ack(&mut self) -> Result<(), Error> {
        if self.ack == self.ack_on_disk {
            return Ok(());
        }
        self.write_ack(false)
    }

    fn drop_tail_upto_ack(&mut self) {
        while self.tail.front().is_some_and(|e| e.seq <= self.ack.acked) {
            if let Some(gone) = self.tail.pop_front() {
                self.tail_bytes -= gone.payload.len();
            }
        }
    }

    fn commit(&mut self, advance: Advance) -> Result<(), Error> {
        self.drop_tail_upto_ack();
        self.write_ack(!advance.delete.is_empty())?;
        for id in &advance.delete {
            let path = self.segment_path(*id);
            match fs::remove_file(&path) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => {
                    return Err(Error::Io { action: "remove", path, source: err });
                }
                _ => {}
            }
        }
        self.refresh_stats();
        Ok(())
    }

    /// Replaces the `ack` file: `ack.tmp` written and fsynced, then renamed over `ack`. The
    /// directory is fsynced too when segments are deleted next (`durable_rename`), so that no
    /// deletion reaches the disk before the position that allows it; otherwise a crash may bring
    /// back the previous `ack` file, which sends those records again (at least once) and saves
    /// a directory sync per request.
    fn write_ack(&mut self, durable_rename: bool) -> Result<(), Error> {
        let tmp = self.dir.join(ACK_TMP);
        let text = self.ack.render();
        let mut file = File::create(&tmp).map_err(io_err("create", &tmp))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io_err("write", &tmp))?;
        let path = self.dir.join(ACK_FILE);
        fs::rename(&tmp, &path).map_err(io_err("rename", &tmp))?;
        if durable_rename {
            sync_dir(&self.dir)?;
        }
        self.stats.bytes_written += text.len() as u64;
        self.ack_on_disk = self.ack;
        self.acks_unwritten = 0;
        Ok(())
    }
}

impl Drop for Spool {
    /// Writes the position [`Spool::ack_deferred`] kept in memory (best effort: after a failure
    /// those records are sent again).
    fn drop(&mut self) {
        let _ = self.flush_ack();
    }
}

#[cfg(test)]
mod tests;
