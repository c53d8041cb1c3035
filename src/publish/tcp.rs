//! The TCP line stream: one JSON object per line to every subscriber. \[io\]
//!
//! A subscriber gets the latest message as soon as it connects, then one per snapshot.
//! Subscribers are read-only: their input is read and thrown away, never forwarded;
//! one that sends more than [`FLOOD_LIMIT`] bytes within [`FLOOD_WINDOW`] is disconnected,
//! and one that shuts down its sending side (EOF) is taken as gone.
//! Each subscriber has its own task, so a slow one only ever delays itself.
//! Plain subscribers are written by their shard ([`super::shard`]: one task per runtime worker)
//! while they keep up; their own task reads their input and finishes a write the shard could not.
//!
//! Accepting, and surviving descriptor exhaustion while doing it, is [`super::listen::accept_loop`].

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use tracing::debug;

use super::auth;
use super::http::HEADER_TIMEOUT;
use super::limits::Reason;
use super::listen::{accept_loop, Gate, Kind, Serving, Ticket};
use super::shard::{Mode, Registration, Shards};
use super::tls::Tls;
use super::{next_message, Event, Hub, Next, Slot, Wire};

/// Listen backlog: connections the kernel completes while the daemon has not accepted them yet.
pub const LISTEN_BACKLOG: u32 = 1024;
/// Input a subscriber may send within [`FLOOD_WINDOW`] before it is disconnected.
pub const FLOOD_LIMIT: usize = 64 * 1024;
/// The window of [`FLOOD_LIMIT`].
pub const FLOOD_WINDOW: Duration = Duration::from_secs(10);
/// Send buffer of a subscriber's socket (the kernel doubles it).
///
/// Fixed rather than autotuned: on loopback the kernel would grow it to megabytes, which a stuck
/// subscriber pins for as long as it stays. A few lines per subscriber is all a stream needs;
/// a longer line is written in parts and still arrives whole.
pub const SEND_BUFFER: usize = 32 * 1024;
/// At shutdown, how long a subscriber gets to take the message already queued for it.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Binds a listening socket with a large backlog.
///
/// # Errors
/// When the address cannot be bound (in use, not local, no permission).
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Accepts subscribers on `listener` until `serving.stop` is cancelled.
///
/// `stop` ends only the accept loop (on shutdown, or when the listener is replaced after a port change);
/// subscribers keep going until `serving.shutdown`.
pub async fn serve(listener: TcpListener, serving: Serving) {
    let Serving { hub, gate, stop, shutdown, tracker } = serving;
    accept_loop(&listener, &stop, &gate, Kind::Tcp, |stream, peer, ticket| match hub.try_slot() {
        Some(slot) => {
            debug!(%peer, "subscriber connected");
            let task = subscriber(
                stream,
                hub.clone(),
                slot,
                ticket,
                gate.clone(),
                shutdown.clone(),
                tracker.clone(),
            );
            tracker.spawn(task);
        }
        None => gate.refuse(Kind::Tcp, Reason::MaxSubscribers, peer.ip()),
    })
    .await;
}

/// One-second slots of [`FloodGuard`]: the current second and the ten before it.
const FLOOD_SLOTS: usize = 11;

/// Counts a subscriber's input over a sliding window. \[pure\]
///
/// The window is made of one-second slots: the bytes of the current second and of the ten
/// before it are summed, so it always spans between 10 and 11 seconds. More than
/// [`FLOOD_LIMIT`] within any 10 seconds therefore always trips it, wherever the seconds fall,
/// while a fixed window would let up to twice the limit through across its boundary.
/// It takes 56 bytes and never allocates, which matters in every subscriber's task.
#[derive(Debug, Default)]
pub struct FloodGuard {
    /// The start of second 0, set by the first input.
    start: Option<Instant>,
    /// The newest second that received input, counted from `start`.
    newest: u64,
    /// Bytes per second, at index `second % FLOOD_SLOTS`.
    slots: [u32; FLOOD_SLOTS],
}

impl FloodGuard {
    /// Records `n` bytes received at `now`; true when the subscriber is over the limit.
    pub fn take(&mut self, n: usize, now: Instant) -> bool {
        let start = *self.start.get_or_insert(now);
        let second = now.saturating_duration_since(start).as_secs();
        if second > self.newest {
            // Empty the slots of the seconds that passed without input, and the one reused.
            let passed = (second - self.newest).min(FLOOD_SLOTS as u64);
            for s in (second + 1 - passed)..=second {
                self.slots[slot_of(s)] = 0;
            }
            self.newest = second;
        }
        let slot = &mut self.slots[slot_of(second)];
        *slot = slot.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
        let total: u64 = self.slots.iter().map(|&b| u64::from(b)).sum();
        total > FLOOD_LIMIT as u64
    }
}

fn slot_of(second: u64) -> usize {
    // The remainder is below FLOOD_SLOTS, which fits any usize.
    usize::try_from(second % FLOOD_SLOTS as u64).unwrap_or(0)
}

/// What reading a subscriber's pending input found.
#[derive(Debug, PartialEq)]
enum Input {
    /// Read and thrown away; the subscriber stays.
    Open,
    /// The subscriber closed its side or the connection broke.
    Gone,
    /// Over the flood limit.
    Flood,
}

/// Reads and discards what is pending. A plain function so its buffer lives on the stack
/// only while it runs, not in every subscriber's task.
fn discard_input(stream: &TcpStream, guard: &mut FloodGuard) -> Input {
    let mut buf = [0u8; 4096];
    loop {
        match stream.try_read(&mut buf) {
            Ok(0) => return Input::Gone,
            Ok(n) => {
                if guard.take(n, Instant::now()) {
                    return Input::Flood;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Input::Open,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Input::Gone,
        }
    }
}

/// Writes one whole line; on shutdown, a write under way gets [`SHUTDOWN_GRACE`] to finish.
///
/// A write the socket cannot take at once counts the subscriber in [`super::Counters::blocked`]
/// until it completes: that is how a stuck subscriber shows, since it only learns what it
/// lost (and counts it in `dropped`) once it reads again.
async fn write_line(
    stream: &mut TcpStream,
    line: &[u8],
    hub: &Hub,
    shutdown: &CancellationToken,
) -> io::Result<()> {
    let written = match stream.try_write(line) {
        Ok(n) => n,
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => 0,
        Err(err) => return Err(err),
    };
    if written == line.len() {
        return Ok(());
    }
    let _blocked = Blocked::new(&hub.counters().blocked);
    let write = stream.write_all(&line[written..]);
    tokio::pin!(write);
    tokio::select! {
        res = &mut write => res,
        _ = shutdown.cancelled() => match tokio::time::timeout(SHUTDOWN_GRACE, write).await {
            Ok(res) => res,
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        },
    }
}

/// Counts a subscriber as blocked while alive.
struct Blocked<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Blocked<'a> {
    fn new(gauge: &'a std::sync::atomic::AtomicUsize) -> Blocked<'a> {
        gauge.fetch_add(1, Ordering::Relaxed);
        Blocked(gauge)
    }
}

impl Drop for Blocked<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Sets SO_SNDBUF, which also stops the kernel from autotuning it;
/// failing leaves the kernel's default, which works too.
pub(crate) fn set_send_buffer(stream: &TcpStream, bytes: usize) {
    let _ = socket2::SockRef::from(stream).set_send_buffer_size(bytes);
}

fn wire(hub: &Hub) -> Wire {
    Wire::Line { remodel_events: hub.remodel_events() }
}

/// A subscriber's connection: plain TCP, or TLS over it.
enum Link {
    Plain(TcpStream),
    Tls(Box<TlsLink>),
}

struct TlsLink {
    stream: tokio_rustls::server::TlsStream<TcpStream>,
    /// Input is decrypted into this and thrown away; on the heap, like the rest of TLS state.
    buf: [u8; 1024],
}

impl Link {
    /// Waits for input and throws it away.
    async fn input(&mut self, guard: &mut FloodGuard) -> Input {
        match self {
            Link::Plain(stream) => match stream.readable().await {
                Ok(()) => discard_input(stream, guard),
                Err(_) => Input::Gone,
            },
            Link::Tls(tls) => match tls.stream.read(&mut tls.buf).await {
                Ok(0) | Err(_) => Input::Gone,
                Ok(n) if guard.take(n, Instant::now()) => Input::Flood,
                Ok(_) => Input::Open,
            },
        }
    }

    async fn write_line(
        &mut self,
        line: &[u8],
        hub: &Hub,
        shutdown: &CancellationToken,
    ) -> io::Result<()> {
        match self {
            Link::Plain(stream) => write_line(stream, line, hub, shutdown).await,
            // Boxed: TLS subscribers pay for the state of a generic write, plain ones do not.
            Link::Tls(tls) => {
                Box::pin(write_all_counted(&mut tls.stream, line, hub, shutdown)).await
            }
        }
    }

    async fn shutdown(&mut self) {
        let res = match self {
            Link::Plain(stream) => tokio::time::timeout(SHUTDOWN_GRACE, stream.shutdown()).await,
            Link::Tls(tls) => tokio::time::timeout(SHUTDOWN_GRACE, tls.stream.shutdown()).await,
        };
        drop(res);
    }

    /// Reads the first line and checks it is `AUTH <token>`, within [`HEADER_TIMEOUT`].
    async fn authenticate(&mut self, token: &str) -> bool {
        let mut line = Vec::with_capacity(64);
        let read = async {
            let mut byte = [0u8; 1];
            while line.len() < auth::AUTH_LINE_MAX {
                let n = match self {
                    Link::Plain(stream) => stream.read(&mut byte).await,
                    Link::Tls(tls) => tls.stream.read(&mut byte).await,
                };
                match n {
                    Ok(1) if byte[0] == b'\n' => return true,
                    Ok(1) => line.push(byte[0]),
                    _ => return false,
                }
            }
            false
        };
        let complete = tokio::time::timeout(HEADER_TIMEOUT, read).await.unwrap_or(false);
        complete && auth::auth_line_matches(token, &line)
    }
}

/// [`write_line`] for any stream: counted as blocked when it cannot complete at once.
async fn write_all_counted<W: AsyncWrite + Unpin>(
    stream: &mut W,
    line: &[u8],
    hub: &Hub,
    shutdown: &CancellationToken,
) -> io::Result<()> {
    let write = async {
        stream.write_all(line).await?;
        stream.flush().await
    };
    tokio::pin!(write);
    // Polled once: most writes complete at once and are not counted.
    let first = tokio::select! {
        biased;
        res = &mut write => Some(res),
        _ = std::future::ready(()) => None,
    };
    if let Some(res) = first {
        return res;
    }
    let _blocked = Blocked::new(&hub.counters().blocked);
    tokio::select! {
        res = &mut write => res,
        _ = shutdown.cancelled() => match tokio::time::timeout(SHUTDOWN_GRACE, write).await {
            Ok(res) => res,
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        },
    }
}

/// The line a subscriber gets before it is closed for lack of credentials.
pub const UNAUTHORIZED_LINE: &[u8] =
    b"{\"error\":\"unauthorized: send AUTH <token> as the first line\"}\n";

/// One subscriber, from the first line to the close.
async fn subscriber(
    stream: TcpStream,
    hub: Hub,
    slot: Slot,
    ticket: Ticket,
    gate: Gate,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    // Lines are written whole, so Nagle would only delay the next message behind an unacked one.
    let _ = stream.set_nodelay(true);
    set_send_buffer(&stream, SEND_BUFFER);
    let secured = gate.secured();
    let mut stream = match &secured.tls {
        None => Link::Plain(stream),
        Some(tls) => match handshake(tls, stream).await {
            Some(stream) => Link::Tls(Box::new(TlsLink { stream, buf: [0; 1024] })),
            None => {
                gate.refuse(Kind::Tcp, Reason::Tls, ticket.source());
                return;
            }
        },
    };
    // A verified client certificate is the alternative to the token.
    let cert_verified = secured.tls.as_ref().is_some_and(|tls| tls.client_auth());
    if let (Some(token), false) = (&secured.credentials.token, cert_verified) {
        // Boxed, like the handshake: only subscribers that must authenticate pay for its state.
        if !Box::pin(stream.authenticate(token)).await {
            gate.refuse(Kind::Tcp, Reason::Unauthorized, ticket.source());
            let _ = stream.write_line(UNAUTHORIZED_LINE, &hub, &shutdown).await;
            stream.shutdown().await;
            return;
        }
    }
    drop(secured);
    // A plain subscriber gets a task of its own, sized for what it does, and this one ends.
    if let (Link::Plain(_), Some(shards)) = (&stream, hub.shards()) {
        if let Link::Plain(plain) = stream {
            tracker.spawn(sharded(plain, shards, hub, slot, ticket, shutdown));
        }
        return;
    }
    drop(tracker);
    // The state ring first (as SSE): remodel reports come from it, never dropped; snapshots from
    // the broadcast, drop-oldest.
    let mut state = hub.subscribe_state();
    let (mut rx, latest) = hub.subscribe();
    let mut last_seq = 0;
    if let Some(first) = latest {
        last_seq = first.seq;
        if stream.write_line(&first.line, &hub, &shutdown).await.is_err() {
            return;
        }
    }
    let mut flood = FloodGuard::default();
    // Registered once, not on every message: thousands of subscribers share this token.
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    loop {
        tokio::select! {
            biased;
            _ = &mut cancelled => break,
            res = state.recv() => match res {
                Ok(event @ Event::Remodel(_)) => {
                    if let Next::Send(line) = next_message(&event, &mut last_seq, wire(&hub)) {
                        if stream.write_line(&line, &hub, &shutdown).await.is_err() {
                            return;
                        }
                    }
                }
                // Check and fleet events are not carried on the line stream.
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => {
                    if hub.remodel_events() {
                        // Never skip a report: end the connection instead.
                        hub.counters().dropped.fetch_add(n, Ordering::Relaxed);
                        debug!(missed = n, "a subscriber fell too far behind on remodel reports");
                        return;
                    }
                }
                Err(RecvError::Closed) => break,
            },
            res = rx.recv() => match res {
                Ok(event @ Event::Snapshot(_)) => {
                    if let Next::Send(line) = next_message(&event, &mut last_seq, wire(&hub)) {
                        if stream.write_line(&line, &hub, &shutdown).await.is_err() {
                            return;
                        }
                    }
                }
                // Reports come on the state ring.
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => {
                    hub.counters().dropped.fetch_add(n, Ordering::Relaxed);
                }
                Err(RecvError::Closed) => break,
            },
            input = stream.input(&mut flood) => match input {
                Input::Open => {}
                Input::Gone => return,
                Input::Flood => {
                    hub.counters().flooded.fetch_add(1, Ordering::Relaxed);
                    debug!("subscriber dropped: too much input");
                    return;
                }
            },
        }
    }
    // Shutting down: hand over what is already queued, then close our side cleanly.
    while let Ok(event) = state.try_recv() {
        if let (Event::Remodel(_), Next::Send(line)) =
            (&event, next_message(&event, &mut last_seq, wire(&hub)))
        {
            if stream.write_line(&line, &hub, &shutdown).await.is_err() {
                return;
            }
        }
    }
    loop {
        match rx.try_recv() {
            Ok(event @ Event::Snapshot(_)) => {
                if let Next::Send(line) = next_message(&event, &mut last_seq, wire(&hub)) {
                    if stream.write_line(&line, &hub, &shutdown).await.is_err() {
                        return;
                    }
                }
            }
            Ok(_) => {}
            Err(TryRecvError::Lagged(n)) => {
                hub.counters().dropped.fetch_add(n, Ordering::Relaxed);
            }
            Err(_) => break,
        }
    }
    stream.shutdown().await;
}

/// A plain subscriber written by its shard: this task sends the latest snapshot, then reads and
/// discards input (the flood limit) and finishes the writes the shard could not.
async fn sharded(
    stream: TcpStream,
    shards: std::sync::Arc<Shards>,
    hub: Hub,
    _slot: Slot,
    _ticket: Ticket,
    shutdown: CancellationToken,
) {
    let (hub, shutdown) = (&hub, &shutdown);
    let stream = std::sync::Arc::new(stream);
    let reg = shards.register(std::sync::Arc::clone(&stream));
    if let Some(first) = hub.latest() {
        reg.entry.flow().start(first.seq, first.line.clone());
    }
    if Box::pin(catch_up(&reg, hub, shutdown)).await.is_err() {
        return;
    }
    let mut flood = FloodGuard::default();
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    loop {
        tokio::select! {
            _ = &mut cancelled => break,
            _ = reg.entry.wake.notified() => {
                if Box::pin(catch_up(&reg, hub, shutdown)).await.is_err() {
                    return;
                }
            }
            ready = stream.readable() => {
                let input = match ready {
                    Ok(()) => discard_input(&stream, &mut flood),
                    Err(_) => Input::Gone,
                };
                match input {
                    Input::Open => {}
                    Input::Gone => return,
                    Input::Flood => {
                        hub.counters().flooded.fetch_add(1, Ordering::Relaxed);
                        debug!("subscriber dropped: too much input");
                        return;
                    }
                }
            }
        }
    }
    Box::pin(hand_over(&reg, hub, shutdown)).await;
}

/// Shutting down: the shard hands over what was published before, then this task writes what
/// is queued and closes its side cleanly.
async fn hand_over(reg: &Registration, hub: &Hub, shutdown: &CancellationToken) {
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, reg.caught_up(hub)).await;
    reg.entry.flow().mode = Mode::Behind;
    if catch_up(reg, hub, shutdown).await.is_ok() {
        let _ = socket2::SockRef::from(&*reg.entry.stream).shutdown(std::net::Shutdown::Write);
    }
}

/// Writes what the shard left to this subscriber's task, until it is live again.
/// An error when the subscriber is gone. Boxed by its callers: only a subscriber that falls
/// behind pays for its state, not every subscriber's task.
async fn catch_up(reg: &Registration, hub: &Hub, shutdown: &CancellationToken) -> io::Result<()> {
    loop {
        let next = {
            let mut flow = reg.entry.flow();
            let lost = std::mem::take(&mut flow.lost);
            if lost > 0 {
                hub.counters().dropped.fetch_add(lost, Ordering::Relaxed);
            }
            if flow.mode == Mode::Closed {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            flow.next_for_task()
        };
        match next {
            Some((line, from)) => {
                write_shared(&reg.entry.stream, &line[from.min(line.len())..], hub, shutdown)
                    .await?;
            }
            None => return Ok(()),
        }
    }
}

/// [`write_line`] on a socket the shard also writes (through `&TcpStream`).
async fn write_shared(
    stream: &TcpStream,
    mut rest: &[u8],
    hub: &Hub,
    shutdown: &CancellationToken,
) -> io::Result<()> {
    let step = |rest: &mut &[u8]| match stream.try_write(rest) {
        Ok(n) => {
            *rest = &rest[n..];
            Ok(())
        }
        Err(err)
            if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) =>
        {
            Ok(())
        }
        Err(err) => Err(err),
    };
    step(&mut rest)?;
    if rest.is_empty() {
        return Ok(());
    }
    let _blocked = Blocked::new(&hub.counters().blocked);
    let write = async {
        while !rest.is_empty() {
            stream.writable().await?;
            step(&mut rest)?;
        }
        Ok(())
    };
    tokio::pin!(write);
    tokio::select! {
        res = &mut write => res,
        _ = shutdown.cancelled() => match tokio::time::timeout(SHUTDOWN_GRACE, write).await {
            Ok(res) => res,
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        },
    }
}

/// A TLS handshake within [`HEADER_TIMEOUT`]; `None` when it fails. Boxed: its state is large
/// and would otherwise sit in every subscriber's task, TLS or not.
pub(crate) async fn handshake(
    tls: &Tls,
    stream: TcpStream,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let acceptor = tls.acceptor()?;
    let accept = Box::pin(acceptor.accept(stream));
    match tokio::time::timeout(HEADER_TIMEOUT, accept).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(err)) => {
            debug!(error = %err, "TLS handshake failed");
            None
        }
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flood_guard_trips_over_the_limit_within_a_window() {
        let mut guard = FloodGuard::default();
        let t0 = Instant::now();
        assert!(!guard.take(FLOOD_LIMIT, t0));
        assert!(guard.take(1, t0 + Duration::from_secs(1)));
    }

    #[test]
    fn flood_guard_forgets_what_is_older_than_the_window() {
        let mut guard = FloodGuard::default();
        let t0 = Instant::now();
        assert!(!guard.take(FLOOD_LIMIT, t0));
        assert!(!guard.take(FLOOD_LIMIT, t0 + Duration::from_secs(11)));
        assert!(!guard.take(10, t0 + Duration::from_secs(33)));
        assert!(!guard.take(FLOOD_LIMIT - 10, t0 + Duration::from_secs(44)));
    }

    #[test]
    fn flood_guard_sees_across_what_a_fixed_window_would_reset() {
        // The attack probe: 120 kB within 1.2 s, across the 10 s boundary of a fixed window
        // opened by one byte at t0.
        let mut guard = FloodGuard::default();
        let t0 = Instant::now();
        assert!(!guard.take(1, t0));
        assert!(!guard.take(60_000, t0 + Duration::from_millis(9_400)));
        assert!(guard.take(60_000, t0 + Duration::from_millis(10_600)));
    }

    #[test]
    fn flood_guard_trips_on_any_ten_seconds_over_the_limit() {
        // Wherever a 10 s span falls, more than the limit within it trips the guard.
        for offset_ms in (0..2_000).step_by(100) {
            let mut guard = FloodGuard::default();
            let t0 = Instant::now();
            assert!(!guard.take(1, t0));
            let from = t0 + Duration::from_millis(5_000 + offset_ms);
            let mut tripped = false;
            for i in 0..=10 {
                // 6 KiB a second for 10 s: 66 KiB within 10 s.
                tripped |= guard.take(6 * 1024, from + Duration::from_millis(i * 999));
            }
            assert!(tripped, "{offset_ms}");
        }
    }

    #[test]
    fn flood_guard_lets_a_trickle_through() {
        // 4 KiB a second is 44 KiB in any window: never dropped, for as long as it goes on.
        let mut guard = FloodGuard::default();
        let t0 = Instant::now();
        for i in 0..1000 {
            assert!(!guard.take(4 * 1024, t0 + Duration::from_secs(i)), "{i}");
        }
    }

    #[test]
    fn flood_guard_stays_small() {
        assert!(std::mem::size_of::<FloodGuard>() <= 80);
    }

    #[tokio::test]
    async fn subscriber_gets_latest_first_and_input_is_not_echoed() {
        use crate::config::Format;
        use crate::metrics::Snapshot;
        use crate::publish::Published;
        use tokio::io::{AsyncBufReadExt, BufReader};

        let hub = Hub::new(10);
        let snap = |h: &str| Snapshot { hostname: h.to_string(), ..Snapshot::default() };
        hub.publish(Published::new(1, snap("first"), Format::Json));
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let tracker = tokio_util::task::TaskTracker::new();
        let task = tokio::spawn(serve(
            listener,
            Serving::new(hub.clone(), shutdown.clone(), tracker.clone()),
        ));
        let mut a = BufReader::new(TcpStream::connect(addr).await.unwrap());
        let mut b = BufReader::new(TcpStream::connect(addr).await.unwrap());
        let mut line = String::new();
        a.read_line(&mut line).await.unwrap();
        assert_eq!(line.as_bytes(), &hub.latest().unwrap().line[..]);
        line.clear();
        b.read_line(&mut line).await.unwrap();
        assert!(line.contains("first"));
        a.get_mut().write_all(b"echo me\n").await.unwrap();
        hub.publish(Published::new(2, snap("second"), Format::Json));
        for reader in [&mut a, &mut b] {
            line.clear();
            reader.read_line(&mut line).await.unwrap();
            assert!(line.contains("second"), "{line}");
            assert!(!line.contains("echo me"));
        }
        shutdown.cancel();
        task.await.unwrap();
        tracker.close();
        tracker.wait().await;
        line.clear();
        assert_eq!(b.read_line(&mut line).await.unwrap(), 0, "closed after shutdown");
    }

    #[tokio::test]
    async fn a_subscriber_task_stays_small() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let hub = Hub::new(1);
        let slot = hub.try_slot().unwrap();
        let gate = crate::publish::listen::Gate::new(hub.clone(), Default::default());
        let ticket = gate.admit(Kind::Tcp, "127.0.0.1".parse().unwrap()).unwrap();
        let task = subscriber(
            server,
            hub.clone(),
            slot,
            ticket,
            gate.clone(),
            CancellationToken::new(),
            TaskTracker::new(),
        );
        let size = std::mem::size_of_val(&task);
        // Part of a TLS subscriber's memory (its TLS state, tens of kB, is on the heap beside it);
        // a plain subscriber's task is the sharded one below.
        assert!(size <= 1088, "{size}");
        drop(client);
    }

    #[tokio::test]
    async fn a_sharded_subscriber_task_stays_small() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let hub = Hub::new(1);
        let slot = hub.try_slot().unwrap();
        let gate = crate::publish::listen::Gate::new(hub.clone(), Default::default());
        let ticket = gate.admit(Kind::Tcp, "127.0.0.1".parse().unwrap()).unwrap();
        let shards = hub.shards().expect("sharding is on by default");
        let task = sharded(server, shards, hub.clone(), slot, ticket, CancellationToken::new());
        let size = std::mem::size_of_val(&task);
        // Part of the per-subscriber memory budget (2 KB with the socket, the task header, the
        // shard's entry and its flow): every plain subscriber is one of these.
        assert!(size <= 1024, "{size}");
        drop(client);
    }

    /// Publishes a burst of snapshots with four remodel reports among them, with no await in
    /// between (the test's runtime has one thread: no subscriber task or shard runs meanwhile,
    /// and all fall far behind the snapshots' ring), then reads up to the last snapshot: the
    /// line stream must have dropped old snapshots and no report.
    async fn a_burst_loses_snapshots_but_no_report(hub: Hub) {
        use crate::config::Format;
        use crate::metrics::Snapshot;
        use crate::publish::{Event, Published, Report};
        use tokio::io::{AsyncBufReadExt, BufReader};

        hub.set_remodel_events(true);
        let snap = |seq: u64| Snapshot { hostname: format!("n{seq}"), ..Snapshot::default() };
        hub.publish(Published::new(1, snap(1), Format::Json));
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let tracker = tokio_util::task::TaskTracker::new();
        tokio::spawn(serve(listener, Serving::new(hub.clone(), shutdown.clone(), tracker.clone())));
        let mut client = BufReader::new(TcpStream::connect(addr).await.unwrap());
        let mut line = String::new();
        client.read_line(&mut line).await.unwrap();
        assert!(line.contains(r#""hostname":"n1""#), "{line}");
        // The subscriber is live (sharded: its shard writes it) once a snapshot reaches it.
        hub.publish(Published::new(2, snap(2), Format::Json));
        line.clear();
        client.read_line(&mut line).await.unwrap();
        assert!(line.contains(r#""hostname":"n2""#), "{line}");
        for seq in 3..=40 {
            hub.publish(Published::new(seq, snap(seq), Format::Json));
            if seq % 10 == 0 {
                let report = format!(r#"{{"event":"remodel","after":{seq}}}"#);
                hub.send(Event::Remodel(Report::new(report)));
            }
        }
        let mut reports = Vec::new();
        let mut snapshots = 0;
        loop {
            line.clear();
            let read = tokio::time::timeout(Duration::from_secs(30), client.read_line(&mut line));
            assert!(read.await.unwrap().unwrap() > 0, "closed; reports {reports:?}");
            if line.contains(r#""event":"remodel""#) {
                reports.push(line.trim().to_string());
            } else {
                snapshots += 1;
            }
            if line.contains(r#""hostname":"n40""#) {
                break;
            }
        }
        // Snapshots 3..=40 were dropped down to the ring's newest; the reports, all four, in order.
        assert!(snapshots < 38, "{snapshots} snapshots: none dropped?");
        assert!(hub.counters().dropped.load(Ordering::Relaxed) > 0);
        let want: Vec<String> =
            [10, 20, 30, 40].map(|n| format!(r#"{{"event":"remodel","after":{n}}}"#)).to_vec();
        // Reports are read first (state ring before snapshots), so all four come before n40.
        assert_eq!(reports, want);
        shutdown.cancel();
        tracker.close();
        tracker.wait().await;
    }

    #[tokio::test]
    async fn a_sharded_subscriber_behind_loses_snapshots_but_no_remodel_report() {
        let hub = Hub::new(10);
        a_burst_loses_snapshots_but_no_report(hub).await;
    }

    #[tokio::test]
    async fn an_unsharded_subscriber_behind_loses_snapshots_but_no_remodel_report() {
        let hub = Hub::new(10);
        hub.without_shards();
        assert!(hub.shards().is_none());
        a_burst_loses_snapshots_but_no_report(hub).await;
    }

    /// Polls `cond` every few milliseconds, failing after 30 s.
    async fn eventually(what: &str, cond: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !cond() {
            assert!(tokio::time::Instant::now() < deadline, "gave up waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stuck_subscriber_blocks_alone() {
        use crate::config::Format;
        use crate::metrics::Snapshot;
        use crate::publish::{Published, QUEUE_CAPACITY};
        use tokio::io::{AsyncBufReadExt, BufReader};

        let hub = Hub::new(10);
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let tracker = tokio_util::task::TaskTracker::new();
        tokio::spawn(serve(listener, Serving::new(hub.clone(), shutdown.clone(), tracker.clone())));
        // Never reads, with the smallest receive buffer the kernel allows.
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(1024).unwrap();
        let stuck = socket.connect(addr).await.unwrap();
        let mut healthy = BufReader::new(TcpStream::connect(addr).await.unwrap());
        let counters = hub.counters();
        eventually("two subscribers", || counters.subscribers() == 2).await;

        // A message far larger than any socket buffer: the stuck subscriber's write cannot finish.
        let snap = |h: String| Snapshot { hostname: h, ..Snapshot::default() };
        hub.publish(Published::new(1, snap("x".repeat(1 << 20)), Format::Json));
        let mut line = String::new();
        healthy.read_line(&mut line).await.unwrap();
        assert!(line.len() > 1 << 20);
        eventually("a blocked subscriber", || counters.blocked.load(Ordering::Relaxed) == 1).await;

        // More messages than the stuck one's queue holds: the healthy one gets each of them, in order.
        for seq in 2..=(QUEUE_CAPACITY as u64 + 3) {
            hub.publish(Published::new(seq, snap(format!("n{seq}")), Format::Json));
            line.clear();
            healthy.read_line(&mut line).await.unwrap();
            assert!(line.contains(&format!("n{seq}")), "{seq}: {line}");
        }
        assert_eq!(counters.blocked.load(Ordering::Relaxed), 1);
        assert_eq!(counters.subscribers(), 2);

        // Once it goes away, its task ends and frees its slot.
        drop(stuck);
        eventually("the stuck subscriber gone", || {
            counters.subscribers() == 1 && counters.blocked.load(Ordering::Relaxed) == 0
        })
        .await;
        shutdown.cancel();
        tracker.close();
        tracker.wait().await;
    }
}
