//! Connection limits on the real daemon: one source cannot hold the listeners, and a
//! well-behaved scraper from another source is always served.
//!
//! Loopback accepts all of 127/8, so the attacker is 127.0.0.1 and the scraper 127.0.0.2.
//! "Served within one second" is a liveness bound, generous on any machine, not a measurement.

#![allow(clippy::unwrap_used)]

mod daemon_util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use daemon_util::{poll, Daemon};

/// Raises this process's open-files limit to its hard limit: the attacks below hold thousands.
fn raise_fd_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into our struct; setrlimit only reads it.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    assert!(limit.rlim_cur >= 4096, "the hard open-files limit is {}: too low", limit.rlim_cur);
}

/// A connection from `from` (any 127/8 address) to `to`.
fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    socket.bind(&local.into())?;
    socket.connect_timeout(&to.into(), Duration::from_secs(5))?;
    Ok(socket.into())
}

/// One request from 127.0.0.2 that must be answered within a second: status and text.
fn get_from_elsewhere(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = connect_from("127.0.0.2", addr).expect("connect the scraper");
    stream.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    if let Err(err) = stream.read_to_end(&mut raw) {
        panic!("the scraper was not served within 1 s: {err}");
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split_whitespace().nth(1).unwrap_or("none");
    let status = status.parse().unwrap_or_else(|_| panic!("no HTTP answer: {text:?}"));
    (status, text)
}

fn scrape_from_elsewhere(addr: SocketAddr) -> u16 {
    get_from_elsewhere(addr, "/metrics").0
}

/// The sum of the samples of `family` on `/metrics` whose labels contain `labels`.
fn sum(daemon: &Daemon, family: &str, labels: &str) -> f64 {
    let (_, text) = get_from_elsewhere(daemon.http.unwrap(), "/metrics");
    text.lines()
        .filter(|l| l.starts_with(family) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.trim().parse::<f64>().ok())
        .sum()
}

#[test]
fn slowloris_from_one_source_does_not_stop_a_scraper_from_another() {
    raise_fd_limit();
    let daemon = Daemon::start(&["--interval", "3600"]);
    let http = daemon.http.unwrap();
    daemon.metric("pocketses_snapshots_published_total");
    // Each sends half a request head and never the rest.
    let mut held = Vec::new();
    for _ in 0..600 {
        let Ok(mut stream) = connect_from("127.0.0.1", http) else { continue };
        let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: slow\r\n");
        held.push(stream);
    }
    assert_eq!(scrape_from_elsewhere(http), 200);
    // Refused for the source's limit, counted, and logged once, not 536 times.
    let n = poll("per-source refusals counted", || {
        let n = sum(&daemon, "pocketses_connections_refused_total{", "reason=\"per-source\"");
        Some(n).filter(|&n| n >= 500.0)
    });
    assert!(n <= 600.0, "{n}");
    let lines = daemon.stderr().matches("refusing connections from 127.0.0.1").count();
    assert_eq!(lines, 1, "{}", daemon.stderr());
    drop(held);
}

#[test]
fn sse_streams_from_one_source_do_not_stop_a_scraper_from_another() {
    raise_fd_limit();
    let daemon = Daemon::start(&["--interval", "3600"]);
    let http = daemon.http.unwrap();
    daemon.metric("pocketses_snapshots_published_total");
    // Each asks for the stream and never reads it.
    let mut held = Vec::new();
    for _ in 0..2000 {
        let Ok(mut stream) = connect_from("127.0.0.1", http) else { continue };
        let _ = stream.write_all(b"GET /v1/metrics/stream HTTP/1.1\r\nHost: sse\r\n\r\n");
        held.push(stream);
    }
    assert_eq!(scrape_from_elsewhere(http), 200);
    let streams = sum(&daemon, "pocketses_sse_streams ", "");
    assert!(streams <= 64.0, "one source holds {streams} streams");
    drop(held);
}

#[test]
fn a_huge_header_is_refused_with_431_and_a_long_url_with_414() {
    let daemon = Daemon::start(&["--interval", "3600"]);
    let http = daemon.http.unwrap();
    let mut stream = TcpStream::connect(http).unwrap();
    stream.set_read_timeout(Some(daemon_util::DEADLINE)).unwrap();
    let big = "x".repeat(1 << 20);
    // The daemon may answer and close before it has read all of it: a failed write is fine.
    let _ = write!(stream, "GET /metrics HTTP/1.1\r\nHost: test\r\nX-Big: {big}\r\n\r\n");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 431 "), "{text:?}");

    let res = daemon.get(&format!("/metrics?{}", "y".repeat(70_000)));
    assert_eq!(res.status, 414);
}

#[test]
fn a_silent_client_is_closed_after_the_header_timeout() {
    let daemon = Daemon::start(&["--interval", "3600"]);
    let mut stream = TcpStream::connect(daemon.http.unwrap()).unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    stream.set_read_timeout(Some(daemon_util::DEADLINE)).unwrap();
    let start = std::time::Instant::now();
    let mut raw = Vec::new();
    // hyper answers 408 or just closes; either way the connection ends, after about 10 s.
    let _ = stream.read_to_end(&mut raw);
    let waited = start.elapsed();
    assert!(waited >= Duration::from_secs(9), "closed after {waited:?}");
    assert!(waited < daemon_util::DEADLINE, "never closed");
}
