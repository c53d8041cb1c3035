//! Process accounting and process control for the benchmark: CPU clocks, RSS, descriptor limits,
//! and a guard that never leaves a server running.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

fn timespec_to_duration(ts: &libc::timespec) -> Duration {
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(ts.tv_nsec).unwrap_or(0);
    Duration::new(secs, nanos)
}

fn clock(clock: libc::clockid_t) -> io::Result<Duration> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(timespec_to_duration(&ts))
}

/// CPU time (user + system) used so far by the calling thread, with nanosecond resolution.
pub fn thread_cpu() -> Duration {
    clock(libc::CLOCK_THREAD_CPUTIME_ID).unwrap_or_default()
}

/// Wall-clock time since the Unix epoch in nanoseconds: the clock of `SO_TIMESTAMPNS` stamps.
pub fn realtime_ns() -> i64 {
    clock(libc::CLOCK_REALTIME)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// CPU time (user + system) used so far by every thread of process `pid`, exited threads included.
///
/// This is the kernel's process CPU clock (`clock_getcpuclockid`), so it has nanosecond resolution,
/// unlike the clock ticks of `/proc/PID/stat`.
///
/// # Errors
/// When the process does not exist.
pub fn process_cpu(pid: u32) -> anyhow::Result<Duration> {
    let raw = libc::pid_t::try_from(pid).context("internal error: pid out of range")?;
    let mut id: libc::clockid_t = 0;
    // SAFETY: `id` is a valid, writable clockid_t for the duration of the call.
    let rc = unsafe { libc::clock_getcpuclockid(raw, &mut id) };
    if rc != 0 {
        bail!("cannot get the cpu clock of process {pid}: {}", io::Error::from_raw_os_error(rc));
    }
    clock(id).with_context(|| format!("cannot read the cpu clock of process {pid}"))
}

/// `VmRSS` and `VmHWM` of process `pid`, in kB.
///
/// # Errors
/// When `/proc/PID/status` cannot be read.
pub fn rss_kb(pid: u32) -> anyhow::Result<(u64, u64)> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// `Rss` and `Pss` of process `pid` from `/proc/PID/smaps_rollup`, in kB: exact, summed from
/// the page tables, while `VmRSS` comes from counters the kernel updates in batches (per CPU
/// since Linux 6.2), so that it can lag by some hundred kB after a large change such as the
/// daemon's `MADV_PAGEOUT`.
///
/// # Errors
/// When `/proc/PID/smaps_rollup` cannot be read.
pub fn rss_pss_kb(pid: u32) -> anyhow::Result<(u64, u64)> {
    let path = format!("/proc/{pid}/smaps_rollup");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((field("Rss:"), field("Pss:")))
}

/// Number of open file descriptors of process `pid`.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// Raises this process's `RLIMIT_NOFILE` (soft and hard) to at least `want`; children inherit it.
/// Returns the soft limit in force afterwards.
pub fn raise_nofile(want: u64) -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid, writable rlimit.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if lim.rlim_cur >= want {
        return lim.rlim_cur;
    }
    let raised = libc::rlimit { rlim_cur: want, rlim_max: want.max(lim.rlim_max) };
    // SAFETY: `raised` is a valid rlimit; raising the hard limit needs CAP_SYS_RESOURCE.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        return want;
    }
    let soft = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
    // SAFETY: as above; the soft limit may always go up to the hard limit.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &soft) };
    lim.rlim_max
}

/// A free TCP port on 127.0.0.1 (bound and released: a small race, fine for a benchmark).
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("cannot bind an ephemeral port")?;
    Ok(l.local_addr()?.port())
}

/// Polls until `addr` accepts a TCP connection or `timeout` passes.
pub fn wait_port(addr: SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        sleep(Duration::from_millis(20));
    }
    false
}

/// A server process started by the benchmark. It is killed when the guard drops, and it gets
/// SIGKILL from the kernel if the benchmark itself dies first (`PR_SET_PDEATHSIG`).
pub struct Server {
    name: String,
    child: Option<Child>,
}

impl Server {
    /// Starts `cmd` with stdout and stderr going to `log`.
    ///
    /// # Errors
    /// When the log cannot be created or the program cannot be started.
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> anyhow::Result<Server> {
        let out = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(std::process::Stdio::null()).stdout(out).stderr(err);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().with_context(|| format!("cannot start {name}"))?;
        Ok(Server { name: name.to_string(), child: Some(child) })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Whether the process has exited already (then it is reaped).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Sends SIGTERM and waits up to `grace` for the exit; SIGKILL after that.
    /// Returns the exit status and whether SIGKILL was needed.
    pub fn stop(&mut self, grace: Duration) -> Option<(ExitStatus, bool)> {
        let mut child = self.child.take()?;
        if let Ok(Some(st)) = child.try_wait() {
            return Some((st, false));
        }
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: signalling our own unreaped child: the pid cannot have been reused.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = child.try_wait() {
                return Some((st, false));
            }
            sleep(Duration::from_millis(10));
        }
        eprintln!("bench: {} did not exit within {grace:?} of SIGTERM; killing it", self.name);
        let _ = child.kill();
        child.wait().ok().map(|st| (st, true))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `utime` and `stime` of process `pid` in clock ticks (`/proc/PID/stat`), for the user/system split.
pub fn stat_ticks(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line; `rest` starts at field 3.
    let get = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (get(11), get(12))
}
