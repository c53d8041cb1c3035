//! Filesystem usage from statvfs(3), and a deadline for filesystems that can hang. \[io\]
//!
//! statvfs(3) of a network or FUSE filesystem ([`super::proc::may_hang`]) waits for its server,
//! for ever if the server is gone. [`GuardedStat`] runs each such call on a short-lived thread
//! with a deadline ([`STATVFS_TIMEOUT`]); a mount that misses it is left out until that call
//! returns, so a dead NFS server never stalls the collection. Local filesystems are asked
//! directly with [`statvfs`].

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::FsUsage;

/// How long statvfs(3) of a filesystem that can hang may take before it is left out.
pub const STATVFS_TIMEOUT: Duration = Duration::from_secs(1);

/// statvfs(3) with a deadline, for filesystems whose server may not answer.
///
/// Each call runs on its own small thread. A call that misses the deadline keeps its mount point
/// in `in_flight` until it returns; meanwhile that mount is skipped at once (usage unknown), so
/// a hung mount costs one deadline, once, and never a thread per cycle.
pub(super) struct GuardedStat {
    stat: fn(&str) -> Option<FsUsage>,
    timeout: Duration,
    in_flight: Arc<Mutex<HashSet<String>>>,
    /// Mount points reported as unresponsive, so the log says it once per episode.
    reported: HashSet<String>,
}

impl std::fmt::Debug for GuardedStat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedStat").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl GuardedStat {
    /// A guard that calls `stat` and waits at most `timeout` for it.
    pub(super) fn new(stat: fn(&str) -> Option<FsUsage>, timeout: Duration) -> Self {
        GuardedStat { stat, timeout, in_flight: Default::default(), reported: Default::default() }
    }

    /// The usage of the filesystem mounted at `path`, or `None` when it is unknown: the call
    /// failed, missed the deadline, or an earlier call on that mount has not returned yet.
    pub(super) fn stat(&mut self, path: &str) -> Option<FsUsage> {
        {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            if in_flight.contains(path) {
                return None;
            }
            in_flight.insert(path.to_string());
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let in_flight = Arc::clone(&self.in_flight);
        let owned = path.to_string();
        let stat = self.stat;
        let spawned = std::thread::Builder::new()
            .name("pocketses-statvfs".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let usage = stat(&owned);
                in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&owned);
                let _ = tx.send(usage);
            });
        if spawned.is_err() {
            self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(path);
            return None;
        }
        match rx.recv_timeout(self.timeout) {
            Ok(usage) => {
                if self.reported.remove(path) {
                    tracing::info!(mount = path, "filesystem answers again");
                }
                usage
            }
            Err(_) => {
                if self.reported.insert(path.to_string()) {
                    tracing::warn!(
                        mount = path,
                        "statvfs did not answer within {:?}; leaving this filesystem out until it does",
                        self.timeout
                    );
                }
                None
            }
        }
    }
}

/// statvfs(3) of the filesystem mounted at `path`, in bytes and inodes; `None` when it fails.
pub(super) fn statvfs(path: &str) -> Option<FsUsage> {
    let st = rustix::fs::statvfs(path).ok()?;
    let unit = if st.f_frsize > 0 { st.f_frsize } else { st.f_bsize };
    let total = st.f_blocks.saturating_mul(unit);
    let free = st.f_bfree.saturating_mul(unit);
    Some(FsUsage {
        total,
        free,
        available: st.f_bavail.saturating_mul(unit),
        used: total.saturating_sub(free),
        files: st.f_files,
        files_free: st.f_ffree,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    static HANG: AtomicBool = AtomicBool::new(true);
    static CALLS: AtomicUsize = AtomicUsize::new(0);

    /// A statvfs whose server is down while `HANG` is set.
    fn dead_server(_: &str) -> Option<FsUsage> {
        CALLS.fetch_add(1, Ordering::SeqCst);
        while HANG.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        Some(FsUsage { total: 10, free: 4, available: 3, used: 6, files: 2, files_free: 1 })
    }

    fn idle(g: &GuardedStat) -> bool {
        g.in_flight.lock().unwrap().is_empty()
    }

    #[test]
    fn a_hung_mount_is_left_out_and_comes_back() {
        let mut g = GuardedStat::new(dead_server, Duration::from_millis(50));
        // The call returns (after the deadline) instead of hanging the collection.
        assert_eq!(g.stat("/mnt/nfs"), None);
        assert_eq!(CALLS.load(Ordering::SeqCst), 1);
        assert!(!idle(&g));
        // While that call is stuck, the mount is skipped without a new thread or wait.
        assert_eq!(g.stat("/mnt/nfs"), None);
        assert_eq!(CALLS.load(Ordering::SeqCst), 1);
        assert!(g.reported.contains("/mnt/nfs"));
        // The server answers: the stuck call ends and the next cycle gets the usage again.
        HANG.store(false, Ordering::SeqCst);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !idle(&g) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(idle(&g), "the stuck call never ended");
        assert_eq!(g.stat("/mnt/nfs").map(|u| u.total), Some(10));
        assert_eq!(CALLS.load(Ordering::SeqCst), 2);
        assert!(!g.reported.contains("/mnt/nfs"));
    }

    #[test]
    fn a_live_mount_answers_through_the_guard() {
        let mut g = GuardedStat::new(statvfs, STATVFS_TIMEOUT);
        let usage = g.stat("/").expect("statvfs of /");
        assert!(usage.total > 0 && usage.used <= usage.total);
        assert!(idle(&g));
        assert_eq!(g.stat("/nonexistent-pocketses-mount"), None);
        assert!(idle(&g));
    }

    #[test]
    fn a_path_with_a_nul_byte_has_no_usage() {
        assert_eq!(statvfs("/tmp\0x"), None);
    }

    #[test]
    fn usage_agrees_with_df_arithmetic() {
        let u = statvfs("/").expect("statvfs of /");
        assert_eq!(u.used, u.total - u.free);
        assert!(u.available <= u.free);
        assert!(u.files_free <= u.files);
    }
}
