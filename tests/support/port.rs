//! The one place integration tests get a loopback port to hand to a server they start.
//!
//! A port from `bind(127.0.0.1:0)` comes out of the kernel's ephemeral range, the same range
//! every outgoing `connect` takes its local port from. Between the moment the test drops its
//! listener and the moment the server binds the port, any connection from the tests running in
//! parallel (a slowloris test opens dozens) can take it, and the server fails with "address
//! already in use" (CI at stop 21: `daemon_limits`). So ports come from below the ephemeral
//! range, which the kernel never hands out on its own, and a counter keeps two threads of one test
//! binary from picking the same one. A test crate that includes both `support` and `daemon_util`
//! has two copies of this file, so two counters: each starts at an offset scattered by its own
//! address, far from the other's. Test binaries run one at a time.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

/// The lowest port handed out; well above the well-known and the usual service ports.
const FLOOR: u32 = 12_000;

/// The first port of the kernel's ephemeral range (`ip_local_port_range`), 32768 by default.
fn ephemeral_low() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|w| w.parse().ok()))
        .unwrap_or(32_768)
}

/// A loopback port outside the ephemeral range that was free a moment ago and that no other
/// caller in this process has been given.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let high = ephemeral_low().max(FLOOR + 1_000);
    let span = high - FLOOR;
    // Scatter the start by pid (the previous test binary) and by this copy's counter address.
    let addr = std::ptr::addr_of!(NEXT) as u64;
    let seed = (u64::from(std::process::id()) << 32 ^ addr).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let start = u32::try_from((seed >> 40) % u64::from(span)).unwrap_or(0);
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = FLOOR + (start + n) % span;
        let Ok(port) = u16::try_from(port) else { continue };
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {FLOOR}..{high}");
}

#[test]
fn ports_are_outside_the_ephemeral_range_and_never_repeat() {
    let low = ephemeral_low();
    let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
    assert!(ports.iter().all(|&p| u32::from(p) >= FLOOR && u32::from(p) < low.max(FLOOR + 1_000)));
    let mut unique = ports.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ports.len(), "{ports:?}");
}
