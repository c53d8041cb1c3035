//! The fan-out baseline: the simplest possible publisher, run as a child process of the bench.
//!
//! One thread, blocking `write` of the same line to every subscriber in a loop, once per interval
//! (`--threads K`: K such threads, each with its share of the subscribers; `--zerocopy`: with
//! `MSG_ZEROCOPY`, to show what it does at 4 kB);
//! the latest line goes to a subscriber as soon as it connects. No queues, no tasks, no locks: what
//! it costs is almost all kernel (a loopback TCP write per subscriber, including the receive path
//! and the wake-up of the reader, which loopback runs in the writer's context). It is a baseline,
//! not a strict floor: a publisher writing from several threads can beat its spread. The same
//! client measures it and the daemon.

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::{mpsc, Arc};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;

/// A line of exactly `bytes` bytes (newline included, at least 64) that differs for each `seq`.
pub fn line(seq: u64, bytes: usize) -> Vec<u8> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let head = format!("{{\"seq\":{seq},\"timestamp\":{now:.6},\"pad\":\"");
    let tail = "\"}\n";
    let pad = bytes.max(64).saturating_sub(head.len() + tail.len());
    let mut out = Vec::with_capacity(bytes);
    out.extend_from_slice(head.as_bytes());
    out.resize(head.len() + pad, b'x');
    out.extend_from_slice(tail.as_bytes());
    out
}

/// How the baseline writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Writer threads; subscribers are dealt out to them in turn (1: the one-thread baseline).
    pub threads: usize,
    /// Send with `MSG_ZEROCOPY` (`SO_ZEROCOPY` on each socket), reaping the completions each cycle.
    pub zerocopy: bool,
}

/// Serves subscribers on 127.0.0.1:`port` until killed (the bench stops it with SIGTERM).
///
/// # Errors
/// When the port cannot be bound.
pub fn serve(port: u16, interval: Duration, bytes: usize, opts: Options) -> anyhow::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .with_context(|| format!("cannot bind port {port}"))?;
    listener.set_nonblocking(true)?;
    let threads = opts.threads.max(1);
    let mut seq = 0u64;
    let mut latest = Arc::new(line(seq, bytes));
    // Each writer thread gets new subscribers and each new line on its channel, in order.
    let mut writers = Vec::new();
    for _ in 0..threads {
        let (tx, rx) = mpsc::channel::<Work>();
        std::thread::spawn(move || writer(&rx, opts.zerocopy));
        writers.push(tx);
    }
    let mut next = Instant::now() + interval;
    let mut turn = 0usize;
    loop {
        while let Ok((s, _)) = listener.accept() {
            s.set_nonblocking(false)?;
            s.set_write_timeout(Some(Duration::from_secs(1)))?;
            if opts.zerocopy {
                set_zerocopy(&s);
            }
            let _ = writers[turn % threads].send(Work::Join(s, Arc::clone(&latest)));
            turn += 1;
        }
        if Instant::now() >= next {
            seq += 1;
            latest = Arc::new(line(seq, bytes));
            for w in &writers {
                let _ = w.send(Work::Line(Arc::clone(&latest)));
            }
            next += interval;
        }
        sleep(Duration::from_millis(1));
    }
}

enum Work {
    /// A new subscriber, and the latest line to send it first.
    Join(TcpStream, Arc<Vec<u8>>),
    /// A new line for every subscriber.
    Line(Arc<Vec<u8>>),
}

fn writer(rx: &mpsc::Receiver<Work>, zerocopy: bool) {
    let mut subscribers: Vec<TcpStream> = Vec::new();
    while let Ok(work) = rx.recv() {
        match work {
            Work::Join(mut s, first) => {
                if send(&mut s, &first, zerocopy) {
                    subscribers.push(s);
                }
            }
            Work::Line(l) => {
                subscribers.retain_mut(|s| send(s, &l, zerocopy));
                if zerocopy {
                    for s in &subscribers {
                        reap(s);
                    }
                }
            }
        }
    }
}

fn send(s: &mut TcpStream, data: &[u8], zerocopy: bool) -> bool {
    if !zerocopy {
        return s.write_all(data).is_ok();
    }
    let mut rest = data;
    while !rest.is_empty() {
        // SAFETY: `rest` is a live buffer of the given length.
        let n = unsafe {
            libc::send(s.as_raw_fd(), rest.as_ptr().cast(), rest.len(), libc::MSG_ZEROCOPY)
        };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::ENOBUFS) {
                reap(s);
                continue;
            }
            return false;
        }
        rest = &rest[usize::try_from(n).unwrap_or(0)..];
    }
    true
}

fn set_zerocopy(s: &TcpStream) {
    let one: libc::c_int = 1;
    // SAFETY: the option value points to a live c_int of the given size.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ZEROCOPY,
            (&one as *const libc::c_int).cast(),
            libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(4),
        )
    };
}

/// Reads the zero-copy completions of `s` off its error queue (the kernel holds the pages until then).
fn reap(s: &TcpStream) {
    let mut ctrl = [0u64; 16];
    loop {
        // SAFETY: msghdr is plain data; all-zero is a valid empty header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_control = ctrl.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&ctrl);
        // SAFETY: `msg` points to a live control buffer of the stated length.
        let n = unsafe {
            libc::recvmsg(s.as_raw_fd(), &mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT)
        };
        if n < 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_the_asked_length_and_differ() {
        let a = line(1, 4127);
        let b = line(2, 4127);
        assert_eq!(a.len(), 4127);
        assert_eq!(b.len(), 4127);
        assert_ne!(a, b);
        assert_eq!(a.iter().filter(|&&c| c == b'\n').count(), 1);
        assert_eq!(line(1, 10).len(), 64);
    }
}
