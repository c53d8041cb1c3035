//! The TCP line stream: one JSON object per line to every subscriber. \[io\]
//!
//! A subscriber gets the latest message as soon as it connects, then one per snapshot.
//! Subscribers are read-only: their input is read and thrown away, never forwarded;
//! one that sends more than [`FLOOD_LIMIT`] bytes within [`FLOOD_WINDOW`] is disconnected,
//! and one that shuts down its sending side (EOF) is taken as gone.
//! Each subscriber has its own task, so a slow one only ever delays itself.
//!
//! When the process runs out of file descriptors, `accept` fails with EMFILE or ENFILE:
//! pending connections are then refused (accepted and closed at once with a spare descriptor
//! kept for that purpose), publishing to connected subscribers goes on, and accepting resumes by
//! itself as soon as descriptors are free again.
//! The accept loop here is shared with the HTTP listener.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::{next_line, Hub, Next, Slot};

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

/// Accepts subscribers on `listener` until `stop` is cancelled.
///
/// `stop` ends only the accept loop (on shutdown, or when the listener is replaced after a port change);
/// subscribers keep going until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    hub: Hub,
    stop: CancellationToken,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let counters_hub = hub.clone();
    accept_loop(&listener, &stop, &counters_hub, "tcp", |stream, peer| match hub.try_slot() {
        Some(slot) => {
            debug!(%peer, "subscriber connected");
            tracker.spawn(subscriber(stream, hub.clone(), slot, shutdown.clone()));
        }
        None => debug!(%peer, "subscriber refused: limit reached"),
    })
    .await;
}

/// Runs `handle` for every accepted connection until `stop`, surviving descriptor exhaustion.
pub(crate) async fn accept_loop<F>(
    listener: &TcpListener,
    stop: &CancellationToken,
    hub: &Hub,
    what: &'static str,
    mut handle: F,
) where
    F: FnMut(TcpStream, SocketAddr),
{
    let mut fds = Exhaustion::new(what);
    loop {
        let res = tokio::select! {
            _ = stop.cancelled() => return,
            res = listener.accept() => res,
        };
        match res {
            Ok((stream, peer)) => {
                fds.recovered();
                handle(stream, peer);
            }
            Err(err) if is_fd_exhaustion(&err) => {
                hub.counters().refused.fetch_add(1, Ordering::Relaxed);
                fds.started(&err);
                // Counted once above: the refused connection is the one that hit the limit.
                if fds.refuse_one(listener).await {
                    continue;
                }
                let pause = fds.backoff();
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
            // The peer gave up before we accepted: nothing to do.
            Err(err) if is_transient(&err) => continue,
            Err(err) => {
                warn!(listener = what, error = %err, "cannot accept connection");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        }
    }
}

/// Whether an accept error means no descriptor (or kernel memory) is left.
pub fn is_fd_exhaustion(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

fn is_transient(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ECONNABORTED | libc::EINTR | libc::EPROTO | libc::EPERM | libc::ECONNRESET)
    )
}

/// State of one descriptor-exhaustion episode: logs once, backs off, refuses with a spare descriptor.
struct Exhaustion {
    what: &'static str,
    spare: Option<File>,
    episode: Option<u64>,
    pause: Duration,
}

impl Exhaustion {
    fn new(what: &'static str) -> Exhaustion {
        Exhaustion { what, spare: open_spare(), episode: None, pause: Duration::from_millis(10) }
    }

    fn started(&mut self, err: &io::Error) {
        match &mut self.episode {
            Some(n) => *n += 1,
            None => {
                warn!(
                    listener = self.what,
                    error = %err,
                    "cannot accept connections: out of file descriptors; refusing new ones until some are free"
                );
                self.episode = Some(1);
            }
        }
    }

    fn recovered(&mut self) {
        if let Some(n) = self.episode.take() {
            info!(listener = self.what, refused = n, "accepting connections again");
            self.pause = Duration::from_millis(10);
        }
        if self.spare.is_none() {
            self.spare = open_spare();
        }
    }

    fn backoff(&mut self) -> Duration {
        let pause = self.pause;
        self.pause = (self.pause * 2).min(Duration::from_millis(500));
        pause
    }

    /// Frees the spare descriptor, accepts one pending connection and closes it, then takes the spare back.
    ///
    /// Without this, refused clients would wait in the backlog with no answer.
    async fn refuse_one(&mut self, listener: &TcpListener) -> bool {
        let Some(spare) = self.spare.take() else {
            self.spare = open_spare();
            return false;
        };
        drop(spare);
        // Poll accept once: the connection that failed is still pending.
        let res = tokio::select! {
            biased;
            res = listener.accept() => Some(res),
            _ = std::future::ready(()) => None,
        };
        let refused = matches!(res, Some(Ok(_)));
        drop(res);
        self.spare = open_spare();
        refused
    }
}

fn open_spare() -> Option<File> {
    File::open("/dev/null").ok()
}

/// Counts a subscriber's input over fixed windows. \[pure\]
#[derive(Debug, Default)]
pub struct FloodGuard {
    window_start: Option<Instant>,
    bytes: usize,
}

impl FloodGuard {
    /// Records `n` bytes received at `now`; true when the subscriber is over the limit.
    pub fn take(&mut self, n: usize, now: Instant) -> bool {
        match self.window_start {
            Some(start) if now.duration_since(start) < FLOOD_WINDOW => {}
            _ => {
                self.window_start = Some(now);
                self.bytes = 0;
            }
        }
        self.bytes = self.bytes.saturating_add(n);
        self.bytes > FLOOD_LIMIT
    }
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

/// Sets SO_SNDBUF; failing leaves the kernel's default, which works too.
fn set_send_buffer(stream: &TcpStream, bytes: usize) {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(4);
    // SAFETY: the descriptor is open for the lifetime of `stream`; setsockopt only reads `value`.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            std::ptr::addr_of!(value).cast(),
            len,
        );
    }
}

/// One subscriber, from the first line to the close.
async fn subscriber(mut stream: TcpStream, hub: Hub, _slot: Slot, shutdown: CancellationToken) {
    // Lines are written whole, so Nagle would only delay the next message behind an unacked one.
    let _ = stream.set_nodelay(true);
    set_send_buffer(&stream, SEND_BUFFER);
    let (mut rx, latest) = hub.subscribe();
    let mut last_seq = 0;
    if let Some(first) = latest {
        last_seq = first.seq;
        if write_line(&mut stream, &first.line, &hub, &shutdown).await.is_err() {
            return;
        }
    }
    let mut flood = FloodGuard::default();
    // Registered once, not on every message: thousands of subscribers share this token.
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    loop {
        tokio::select! {
            _ = &mut cancelled => break,
            res = rx.recv() => match res {
                Ok(event) => {
                    if let Next::Send(line) = next_line(&event, &mut last_seq, hub.remodel_events()) {
                        if write_line(&mut stream, &line, &hub, &shutdown).await.is_err() {
                            return;
                        }
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    hub.counters().dropped.fetch_add(n, Ordering::Relaxed);
                }
                Err(RecvError::Closed) => break,
            },
            res = stream.readable() => {
                if res.is_err() {
                    return;
                }
                match discard_input(&stream, &mut flood) {
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
    // Shutting down: hand over what is already queued, then close our side cleanly.
    loop {
        match rx.try_recv() {
            Ok(event) => {
                if let Next::Send(line) = next_line(&event, &mut last_seq, hub.remodel_events()) {
                    if write_line(&mut stream, &line, &hub, &shutdown).await.is_err() {
                        return;
                    }
                }
            }
            Err(TryRecvError::Lagged(n)) => {
                hub.counters().dropped.fetch_add(n, Ordering::Relaxed);
            }
            Err(_) => break,
        }
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, stream.shutdown()).await;
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
    fn flood_guard_resets_with_a_new_window() {
        let mut guard = FloodGuard::default();
        let t0 = Instant::now();
        assert!(!guard.take(FLOOD_LIMIT, t0));
        assert!(!guard.take(FLOOD_LIMIT, t0 + FLOOD_WINDOW));
        assert!(!guard.take(10, t0 + FLOOD_WINDOW * 3));
    }

    #[test]
    fn exhaustion_errors() {
        for (errno, want) in [
            (libc::EMFILE, true),
            (libc::ENFILE, true),
            (libc::ENOBUFS, true),
            (libc::ECONNABORTED, false),
            (libc::EINVAL, false),
        ] {
            assert_eq!(is_fd_exhaustion(&io::Error::from_raw_os_error(errno)), want, "{errno}");
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let mut fds = Exhaustion::new("test");
        let pauses: Vec<u128> = (0..8).map(|_| fds.backoff().as_millis()).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 500, 500]);
        fds.started(&io::Error::from_raw_os_error(libc::EMFILE));
        fds.recovered();
        assert_eq!(fds.backoff().as_millis(), 10);
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
        let tracker = TaskTracker::new();
        let task = tokio::spawn(serve(
            listener,
            hub.clone(),
            shutdown.clone(),
            shutdown.clone(),
            tracker.clone(),
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
        let task = subscriber(server, hub.clone(), slot, CancellationToken::new());
        let size = std::mem::size_of_val(&task);
        // Part of the per-subscriber memory budget (2 KB with the socket and the task header).
        assert!(size <= 1024, "{size}");
        drop(client);
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
        let tracker = TaskTracker::new();
        tokio::spawn(serve(
            listener,
            hub.clone(),
            shutdown.clone(),
            shutdown.clone(),
            tracker.clone(),
        ));
        // Never reads, with the smallest receive buffer the kernel allows.
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(1024).unwrap();
        let stuck = socket.connect(addr).await.unwrap();
        let mut healthy = BufReader::new(TcpStream::connect(addr).await.unwrap());
        let counters = hub.counters();
        eventually("two subscribers", || counters.subscribers.load(Ordering::Relaxed) == 2).await;

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
        assert_eq!(counters.subscribers.load(Ordering::Relaxed), 2);

        // Once it goes away, its task ends and frees its slot.
        drop(stuck);
        eventually("the stuck subscriber gone", || {
            counters.subscribers.load(Ordering::Relaxed) == 1
                && counters.blocked.load(Ordering::Relaxed) == 0
        })
        .await;
        shutdown.cancel();
        tracker.close();
        tracker.wait().await;
    }
}
