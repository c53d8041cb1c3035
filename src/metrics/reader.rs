//! Files kept open and re-read from offset 0 with pread(2). \[io\]
//!
//! /proc and /sys files are generated when read, so a descriptor kept open sees fresh content
//! at every read from offset 0; keeping it saves the open and close of every cycle.
//! The buffer is reused from read to read. What this module does not do: parse (that is
//! [`super::proc`]).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use rustix::event::{PollFd, PollFlags, Timespec};

/// A file kept open and re-read from offset 0 on every cycle.
#[derive(Debug)]
pub(super) struct ProcFile {
    path: PathBuf,
    file: Option<File>,
    buf: Vec<u8>,
}

impl ProcFile {
    /// Opens `path` now; a file that cannot be opened is tried again on each read.
    pub(super) fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let file = File::open(&path).ok();
        ProcFile { path, file, buf: Vec::with_capacity(4096) }
    }

    /// The file's whole content, or `None` when it cannot be opened or read.
    /// A file that could not be opened is tried again on the next call.
    pub(super) fn read(&mut self) -> Option<&str> {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        let file = self.file.as_ref()?;
        self.buf.clear();
        loop {
            if self.buf.capacity() - self.buf.len() < 1024 {
                self.buf.reserve(self.buf.capacity().max(4096));
            }
            let len = self.buf.len();
            let cap = self.buf.capacity();
            self.buf.resize(cap, 0);
            match file.read_at(&mut self.buf[len..], len as u64) {
                Ok(0) => {
                    self.buf.truncate(len);
                    break;
                }
                Ok(n) => self.buf.truncate(len + n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => self.buf.truncate(len),
                Err(_) => {
                    // Some sysfs attributes refuse reads for good (`duplex` of a virtual
                    // device); keep the descriptor, since reopening would cost more.
                    self.buf.clear();
                    return None;
                }
            }
        }
        std::str::from_utf8(&self.buf).ok()
    }

    /// Whether the kernel flagged a change on this open file since it was last read: proc(5)
    /// says poll(2) on /proc/self/mountinfo reports `POLLPRI | POLLERR` after a mount table
    /// change. Never blocks (timeout 0). Unknown (not open, poll failed) counts as changed.
    pub(super) fn flagged_change(&self) -> bool {
        let Some(file) = self.file.as_ref() else { return true };
        let mut fds = [PollFd::new(file, PollFlags::PRI)];
        let now = Timespec { tv_sec: 0, tv_nsec: 0 };
        match rustix::event::poll(&mut fds, Some(&now)) {
            Ok(n) => n != 0 || !fds[0].revents().is_empty(),
            Err(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rereads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, "one").expect("write");
        let mut f = ProcFile::new(&path);
        assert_eq!(f.read(), Some("one"));
        std::fs::write(&path, "two, longer").expect("write");
        assert_eq!(f.read(), Some("two, longer"));
        let big = "x".repeat(100_000);
        std::fs::write(&path, &big).expect("write");
        assert_eq!(f.read().map(str::len), Some(100_000));
        assert_eq!(ProcFile::new(dir.path().join("absent")).read(), None);
    }

    #[test]
    fn a_file_created_later_is_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("late");
        let mut f = ProcFile::new(&path);
        assert_eq!(f.read(), None);
        std::fs::write(&path, "here").expect("write");
        assert_eq!(f.read(), Some("here"));
    }

    #[test]
    fn mount_table_is_quiet_after_a_read() {
        let mut f = ProcFile::new("/proc/self/mountinfo");
        assert!(f.read().is_some_and(|t| t.contains(" / ")));
        // The kernel flags only changes since the file was opened or last polled.
        assert!(!f.flagged_change());
        assert!(ProcFile::new("/nonexistent/mountinfo").flagged_change());
    }
}
