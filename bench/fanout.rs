//! Item 2 and the subscriber half of item 3: N TCP subscribers on one epoll, and the delay between
//! the first and the last of them receiving the same line.
//!
//! Every socket asks for kernel receive timestamps (`SO_TIMESTAMPNS`, CLOCK_REALTIME, stamped when
//! loopback hands the segment to the receiving socket, i.e. during the daemon's `write`), so the
//! spread measures the daemon's fan-out and not how fast this single-threaded client drains N sockets.
//! The user-space read time of each line is recorded too and reported next to it.
//!
//! A line is identified by a hash of its bytes (every snapshot carries its own timestamp, so lines
//! differ). Only lines that start after the measuring window opened count, and a message counts
//! only once every live subscriber has it. Connection is paced: at most `in_flight` sockets are
//! connecting or waiting for their first line (the snapshot sent on connect) at any time.

use std::collections::HashMap;
use std::io;
use std::mem::{size_of, size_of_val};
use std::net::SocketAddrV4;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::sys::{process_cpu, realtime_ns, rss_pss_kb, stat_ticks};

/// What to measure.
#[derive(Debug, Clone)]
pub struct Config {
    /// The daemon's line-stream address.
    pub addr: SocketAddrV4,
    /// Number of subscribers.
    pub n: usize,
    /// Messages to measure once all subscribers are connected.
    pub messages: usize,
    /// The daemon's process id, for its CPU clock and RSS.
    pub pid: u32,
    /// The daemon's collection interval (bounds the wait for messages).
    pub interval: Duration,
    /// Bound on the whole connect phase.
    pub connect_timeout: Duration,
    /// Most sockets connecting or waiting for their first line at once.
    pub in_flight: usize,
}

/// What one run measured.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Subscribers asked for.
    pub wanted: usize,
    /// Subscribers that connected and received the snapshot sent on connect.
    pub ready: usize,
    /// Failed connects, plus sockets closed before their first line or not ready in time.
    pub connect_errors: usize,
    /// The first connect error seen, if any.
    pub first_error: Option<String>,
    /// Wall time of the connect phase, s.
    pub connect_secs: f64,
    /// Per complete message: last minus first kernel receive stamp, ms.
    pub spreads_kernel_ms: Vec<f64>,
    /// Per complete message: last minus first user-space read time, ms.
    pub spreads_user_ms: Vec<f64>,
    /// Per complete message: median lag from kernel stamp to user-space read, ms (a sanity check).
    pub read_lag_ms: Vec<f64>,
    /// Lines seen in the window that did not reach every live subscriber (window edges or losses).
    pub incomplete: usize,
    /// Subscribers the daemon closed during the window.
    pub dropped: usize,
    /// Daemon CPU between the first and the last complete message, divided by the cycles between them, ms.
    pub cpu_per_cycle_ms: Option<f64>,
    /// Number of cycles `cpu_per_cycle_ms` is averaged over.
    pub cycles: usize,
    /// Share of user time in that CPU, from the clock ticks of `/proc/PID/stat` (coarse: 10 ms ticks).
    pub user_share: Option<f64>,
    /// Daemon VmRSS at the end of the window (all subscribers still connected), kB.
    pub rss_kb: u64,
    /// Length of the last complete line, bytes (newline included).
    pub line_bytes: usize,
    /// Lines in the window identical to the line before them on the same socket. Messages are told
    /// apart by content, so any such line makes the spreads meaningless (snapshots without timestamps).
    pub duplicate_lines: usize,
    /// Per daemon thread (by name, TID order): its CPU over the same cycles as `cpu_per_cycle_ms`,
    /// from `/proc/PID/task/TID/schedstat` (nanoseconds), ms per cycle. Shows how many threads write.
    pub thread_cpu_ms: Vec<(String, f64)>,
    /// This client's own CPU over the same cycles, ms per cycle: reading the N sockets. On a machine
    /// where it shares the publisher's cores it competes with the writes; the floor of a fan-out is
    /// the publisher's CPU over the cores (docs/performance.md, "Fan-out on two shared cores").
    pub client_cpu_ms: Option<f64>,
}

impl Report {
    /// One line: the figures `bench/fanout-ab` reads (`key=value`, space separated).
    pub fn summary(&self) -> String {
        use crate::stats::median;
        let threads: Vec<String> =
            self.thread_cpu_ms.iter().map(|(n, ms)| format!("{n}:{ms:.2}")).collect();
        format!(
            "summary: n={} ready={} dropped={} incomplete={} messages={} spread_ms={:.3} user_spread_ms={:.3} cpu_per_cycle_ms={:.3} threads={} client_ms={:.3}",
            self.wanted,
            self.ready,
            self.dropped,
            self.incomplete,
            self.spreads_kernel_ms.len(),
            median(&self.spreads_kernel_ms),
            median(&self.spreads_user_ms),
            self.cpu_per_cycle_ms.unwrap_or(f64::NAN),
            threads.join(","),
            self.client_cpu_ms.unwrap_or(f64::NAN),
        )
    }
}

/// The run time of each thread of `pid`, ns, from `/proc/PID/task/TID/schedstat` (its first field).
fn thread_times(pid: u32) -> Vec<(u32, String, u64)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else {
            continue;
        };
        let p = entry.path();
        let name = std::fs::read_to_string(p.join("comm")).unwrap_or_default().trim().to_string();
        let ns = std::fs::read_to_string(p.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|w| w.parse::<u64>().ok()))
            .unwrap_or(0);
        out.push((tid, name, ns));
    }
    out.sort_by_key(|t| t.0);
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting,
    First,
    Ready,
    Closed,
}

struct Conn {
    fd: Option<OwnedFd>,
    state: State,
    /// Running FNV-1a hash of the line being received.
    hash: u64,
    in_line: bool,
    start_kernel: i64,
    start_user: i64,
    len: usize,
    last_hash: u64,
}

struct Msg {
    count: usize,
    min_k: i64,
    max_k: i64,
    min_u: i64,
    max_u: i64,
    lags: Vec<i64>,
    len: usize,
    done: bool,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn socklen<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(size_of::<T>()).unwrap_or(0)
}

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// A non-blocking socket with receive timestamps on, connecting to `addr`.
fn open(addr: SocketAddrV4) -> io::Result<OwnedFd> {
    let flags = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: plain syscall; the returned descriptor is owned below.
    let raw = cvt(unsafe { libc::socket(libc::AF_INET, flags, 0) })?;
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let one: libc::c_int = 1;
    // SAFETY: the option value points to a live c_int of the given size.
    cvt(unsafe {
        libc::setsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&one as *const libc::c_int).cast(),
            socklen::<libc::c_int>(),
        )
    })?;
    let sa = libc::sockaddr_in {
        sin_family: libc::sa_family_t::try_from(libc::AF_INET).unwrap_or(2),
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(*addr.ip()).to_be() },
        sin_zero: [0; 8],
    };
    // SAFETY: `sa` is a valid sockaddr_in of the given length.
    let rc = unsafe {
        libc::connect(raw, (&sa as *const libc::sockaddr_in).cast(), socklen::<libc::sockaddr_in>())
    };
    if rc < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(err);
        }
    }
    Ok(fd)
}

fn so_error(fd: RawFd) -> i32 {
    let mut err: libc::c_int = 0;
    let mut len = socklen::<libc::c_int>();
    // SAFETY: `err` and `len` are valid for writes of their sizes.
    unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    err
}

fn epoll_ctl(
    ep: RawFd,
    op: libc::c_int,
    fd: RawFd,
    events: libc::c_int,
    token: usize,
) -> io::Result<()> {
    let mut ev = libc::epoll_event { events: events as u32, u64: token as u64 };
    // SAFETY: `ev` is a valid epoll_event.
    cvt(unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) }).map(|_| ())
}

/// One `recvmsg`: the bytes read and the kernel receive stamp (ns since the epoch) of the data.
fn recv(fd: RawFd, buf: &mut [u8], ctrl: &mut [u64; 32]) -> io::Result<(usize, Option<i64>)> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(ctrl);
    // SAFETY: `msg` points to live buffers of the stated lengths.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut stamp = None;
    // SAFETY: the CMSG_* walk stays within the control buffer the kernel filled in.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                stamp = Some(ts.tv_sec * 1_000_000_000 + ts.tv_nsec);
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((usize::try_from(n).unwrap_or(0), stamp))
}

/// A complete line: its hash, the stamps of the data its first byte came in with, its length.
struct Line {
    hash: u64,
    kernel: i64,
    user: i64,
    len: usize,
}

/// Feeds received bytes to a connection's line splitter; calls `done` for each complete line.
fn feed(conn: &mut Conn, data: &[u8], kernel: i64, user: i64, mut done: impl FnMut(Line)) {
    for &b in data {
        if !conn.in_line {
            conn.in_line = true;
            conn.hash = FNV_OFFSET;
            conn.start_kernel = kernel;
            conn.start_user = user;
            conn.len = 0;
        }
        conn.hash = (conn.hash ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        conn.len += 1;
        if b == b'\n' {
            conn.in_line = false;
            done(Line {
                hash: conn.hash,
                kernel: conn.start_kernel,
                user: conn.start_user,
                len: conn.len,
            });
        }
    }
}

/// Connects `cfg.n` subscribers, measures `cfg.messages` messages, closes them all.
///
/// # Errors
/// When epoll cannot be set up or the daemon's CPU clock cannot be read.
pub fn run(cfg: &Config) -> anyhow::Result<Report> {
    // SAFETY: plain syscall; the descriptor is owned below.
    let ep_raw = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })
        .context("cannot create an epoll instance")?;
    // SAFETY: fresh descriptor, owned only here.
    let ep_fd = unsafe { OwnedFd::from_raw_fd(ep_raw) };
    let ep = ep_fd.as_raw_fd();
    let mut report = Report { wanted: cfg.n, ..Report::default() };
    let mut conns: Vec<Conn> = Vec::with_capacity(cfg.n);
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut buf = vec![0u8; 256 * 1024];
    let mut ctrl = [0u64; 32];
    let max_events = libc::c_int::try_from(events.len()).unwrap_or(1024);

    // Phase 1: connect, paced, until every socket has its first line or the deadline passes.
    let started = Instant::now();
    let mut in_flight = 0usize;
    loop {
        while conns.len() < cfg.n && in_flight < cfg.in_flight {
            match open(cfg.addr) {
                Ok(fd) => {
                    let token = conns.len();
                    let ev = libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP;
                    epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd.as_raw_fd(), ev, token)
                        .context("cannot add a socket to epoll")?;
                    conns.push(Conn {
                        fd: Some(fd),
                        state: State::Connecting,
                        hash: 0,
                        in_line: false,
                        start_kernel: 0,
                        start_user: 0,
                        len: 0,
                        last_hash: 0,
                    });
                    in_flight += 1;
                }
                Err(err) => {
                    report.connect_errors += 1;
                    report.first_error.get_or_insert_with(|| err.to_string());
                    // Keep the slot so that the count of attempts stays bounded by n.
                    conns.push(Conn {
                        fd: None,
                        state: State::Closed,
                        hash: 0,
                        in_line: false,
                        start_kernel: 0,
                        start_user: 0,
                        len: 0,
                        last_hash: 0,
                    });
                    if report.connect_errors > cfg.n / 10 + 10 {
                        break;
                    }
                }
            }
        }
        if (conns.len() == cfg.n || report.connect_errors > cfg.n / 10 + 10) && in_flight == 0 {
            break;
        }
        if started.elapsed() > cfg.connect_timeout {
            break;
        }
        // SAFETY: `events` is a live buffer of `max_events` entries.
        let k = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), max_events, 10) };
        for ev in &events[..usize::try_from(k).unwrap_or(0)] {
            let flags = ev.events;
            let Ok(token) = usize::try_from(ev.u64) else { continue };
            let conn = &mut conns[token];
            let Some(fd) = conn.fd.as_ref().map(AsRawFd::as_raw_fd) else { continue };
            if conn.state == State::Connecting {
                let err = so_error(fd);
                if err != 0 {
                    report.connect_errors += 1;
                    report
                        .first_error
                        .get_or_insert_with(|| io::Error::from_raw_os_error(err).to_string());
                    conn.fd = None;
                    conn.state = State::Closed;
                    in_flight -= 1;
                    continue;
                }
                if flags & (libc::EPOLLOUT as u32) != 0 {
                    conn.state = State::First;
                    epoll_ctl(
                        ep,
                        libc::EPOLL_CTL_MOD,
                        fd,
                        libc::EPOLLIN | libc::EPOLLRDHUP,
                        token,
                    )?;
                }
            }
            if flags & ((libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32)
                == 0
            {
                continue;
            }
            match recv(fd, &mut buf, &mut ctrl) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Ok((0, _)) | Err(_) => {
                    if conn.state != State::Ready {
                        report.connect_errors += 1;
                        report.first_error.get_or_insert_with(|| {
                            "closed by the daemon before the first line".into()
                        });
                        in_flight -= 1;
                    } else {
                        report.dropped += 1;
                    }
                    conn.fd = None;
                    conn.state = State::Closed;
                }
                Ok((n, _)) => {
                    let mut got_line = false;
                    feed(conn, &buf[..n], 0, 0, |_| got_line = true);
                    if got_line && conn.state == State::First {
                        conn.state = State::Ready;
                        in_flight -= 1;
                    }
                }
            }
        }
    }
    report.connect_secs = started.elapsed().as_secs_f64();
    for conn in conns.iter_mut().filter(|c| matches!(c.state, State::Connecting | State::First)) {
        report.connect_errors += 1;
        report.first_error.get_or_insert_with(|| "not ready before the connect deadline".into());
        conn.fd = None;
        conn.state = State::Closed;
    }
    report.ready = conns.iter().filter(|c| c.state == State::Ready).count();
    if report.ready == 0 {
        bail!(
            "no subscriber connected to {} ({})",
            cfg.addr,
            report.first_error.as_deref().unwrap_or("no error reported")
        );
    }

    // Phase 2: the window. Lines whose data arrived before `t0` are ignored.
    let t0 = realtime_ns();
    let mut live = report.ready;
    let mut msgs: HashMap<u64, Msg> = HashMap::new();
    let mut cpu_marks: Vec<Duration> = Vec::new();
    let mut client_marks: Vec<Duration> = Vec::new();
    let mut tick_marks: Vec<(u64, u64)> = Vec::new();
    let mut thread_marks: Vec<Vec<(u32, String, u64)>> = Vec::new();
    let mut complete = 0usize;
    let window =
        cfg.interval * u32::try_from(cfg.messages + 2).unwrap_or(u32::MAX) + Duration::from_secs(5);
    let window_start = Instant::now();
    while complete < cfg.messages && window_start.elapsed() < window {
        // SAFETY: as above.
        let k = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), max_events, 100) };
        for ev in &events[..usize::try_from(k).unwrap_or(0)] {
            let Ok(token) = usize::try_from(ev.u64) else { continue };
            let conn = &mut conns[token];
            let Some(fd) = conn.fd.as_ref().map(AsRawFd::as_raw_fd) else { continue };
            match recv(fd, &mut buf, &mut ctrl) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Ok((0, _)) | Err(_) => {
                    report.dropped += 1;
                    live -= 1;
                    conn.fd = None;
                    conn.state = State::Closed;
                }
                Ok((n, stamp)) => {
                    let user = realtime_ns();
                    let kernel = stamp.unwrap_or(user);
                    let mut last_hash = conn.last_hash;
                    feed(conn, &buf[..n], kernel, user, |line| {
                        if line.kernel < t0 {
                            return;
                        }
                        if line.hash == last_hash {
                            report.duplicate_lines += 1;
                        }
                        last_hash = line.hash;
                        let m = msgs.entry(line.hash).or_insert(Msg {
                            count: 0,
                            min_k: i64::MAX,
                            max_k: i64::MIN,
                            min_u: i64::MAX,
                            max_u: i64::MIN,
                            lags: Vec::new(),
                            len: line.len,
                            done: false,
                        });
                        m.count += 1;
                        m.min_k = m.min_k.min(line.kernel);
                        m.max_k = m.max_k.max(line.kernel);
                        m.min_u = m.min_u.min(line.user);
                        m.max_u = m.max_u.max(line.user);
                        m.lags.push(line.user - line.kernel);
                    });
                    conn.last_hash = last_hash;
                }
            }
        }
        for m in msgs.values_mut().filter(|m| !m.done && m.count >= live) {
            m.done = true;
            complete += 1;
            cpu_marks.push(process_cpu(cfg.pid)?);
            client_marks.push(process_cpu(std::process::id())?);
            tick_marks.push(stat_ticks(cfg.pid));
            thread_marks.push(thread_times(cfg.pid));
        }
    }
    report.rss_kb = rss_pss_kb(cfg.pid).map(|(rss, _)| rss).unwrap_or(0);
    let n_msgs = msgs.len();
    let mut done: Vec<&mut Msg> = msgs.values_mut().filter(|m| m.done).collect();
    done.sort_by_key(|m| m.min_k);
    for m in &mut done {
        report.spreads_kernel_ms.push((m.max_k - m.min_k) as f64 / 1e6);
        report.spreads_user_ms.push((m.max_u - m.min_u) as f64 / 1e6);
        m.lags.sort_unstable();
        report.read_lag_ms.push(m.lags[m.lags.len() / 2] as f64 / 1e6);
        report.line_bytes = m.len;
    }
    report.incomplete = n_msgs - done.len();
    if let (Some(first), Some(last)) = (cpu_marks.first(), cpu_marks.last()) {
        if cpu_marks.len() >= 2 {
            report.cycles = cpu_marks.len() - 1;
            report.cpu_per_cycle_ms =
                Some((*last - *first).as_secs_f64() * 1e3 / report.cycles as f64);
            if let (Some(a), Some(b)) = (client_marks.first(), client_marks.last()) {
                report.client_cpu_ms = Some((*b - *a).as_secs_f64() * 1e3 / report.cycles as f64);
            }
            if let (Some(a), Some(b)) = (thread_marks.first(), thread_marks.last()) {
                for (tid, name, end) in b {
                    let start = a.iter().find(|t| t.0 == *tid).map_or(0, |t| t.2);
                    let ms = end.saturating_sub(start) as f64 / 1e6 / report.cycles as f64;
                    report.thread_cpu_ms.push((name.clone(), ms));
                }
            }
            if let (Some(t0), Some(t1)) = (tick_marks.first(), tick_marks.last()) {
                let user = t1.0.saturating_sub(t0.0);
                let system = t1.1.saturating_sub(t0.1);
                if user + system > 0 {
                    report.user_share = Some(user as f64 / (user + system) as f64);
                }
            }
        }
    }
    drop(conns);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Conn {
        Conn {
            fd: None,
            state: State::Ready,
            hash: 0,
            in_line: false,
            start_kernel: 0,
            start_user: 0,
            len: 0,
            last_hash: 0,
        }
    }

    fn lines(chunks: &[(&[u8], i64)]) -> Vec<(u64, i64, usize)> {
        let mut c = conn();
        let mut out = Vec::new();
        for (data, stamp) in chunks {
            feed(&mut c, data, *stamp, stamp + 1, |l| out.push((l.hash, l.kernel, l.len)));
        }
        out
    }

    #[test]
    fn a_line_keeps_the_stamp_of_the_chunk_it_started_in() {
        let got = lines(&[(b"{\"a\":1", 10), (b"}\n{\"b\"", 20), (b":2}\n", 30)]);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].1, got[0].2), (10, 8));
        assert_eq!((got[1].1, got[1].2), (20, 8));
    }

    #[test]
    fn the_hash_does_not_depend_on_how_the_line_was_split() {
        let whole = lines(&[(b"{\"t\":1.5}\n", 1)]);
        let split = lines(&[(b"{\"t", 1), (b"\":1", 2), (b".5}\n", 3)]);
        assert_eq!(whole[0].0, split[0].0);
        let other = lines(&[(b"{\"t\":1.6}\n", 1)]);
        assert_ne!(whole[0].0, other[0].0);
    }

    #[test]
    fn no_line_without_a_newline() {
        assert!(lines(&[(b"partial", 1)]).is_empty());
    }
}
