//! The fan-out baseline: the simplest possible publisher, run as a child process of the bench.
//!
//! One thread, blocking `write` of the same line to every subscriber in a loop, once per interval;
//! the latest line goes to a subscriber as soon as it connects. No queues, no tasks, no locks: what
//! it costs is almost all kernel (a loopback TCP write per subscriber, including the receive path
//! and the wake-up of the reader, which loopback runs in the writer's context). It is a baseline,
//! not a strict floor: a publisher writing from several threads can beat its spread. The same
//! client measures it and the daemon.

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
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

/// Serves subscribers on 127.0.0.1:`port` until killed (the bench stops it with SIGTERM).
///
/// # Errors
/// When the port cannot be bound.
pub fn serve(port: u16, interval: Duration, bytes: usize) -> anyhow::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .with_context(|| format!("cannot bind port {port}"))?;
    listener.set_nonblocking(true)?;
    let mut subscribers: Vec<TcpStream> = Vec::new();
    let mut seq = 0u64;
    let mut latest = line(seq, bytes);
    let mut next = Instant::now() + interval;
    loop {
        while let Ok((s, _)) = listener.accept() {
            s.set_nonblocking(false)?;
            s.set_write_timeout(Some(Duration::from_secs(1)))?;
            let mut s = s;
            if s.write_all(&latest).is_ok() {
                subscribers.push(s);
            }
        }
        if Instant::now() >= next {
            seq += 1;
            latest = line(seq, bytes);
            subscribers.retain_mut(|s| s.write_all(&latest).is_ok());
            next += interval;
        }
        sleep(Duration::from_millis(1));
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
