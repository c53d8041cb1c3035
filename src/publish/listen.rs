//! Listeners: binding, rebinding on a configuration change, and where they are announced. \[io\]
//!
//! The daemon owns two listeners, the TCP line stream ([`super::tcp`]) and HTTP ([`super::http`]).
//! This module binds them, moves them when `port`, `bind` or `http.*` change, and says where
//! they listen (log line, ready file, watch channel) only once they are bound.
//! It does not speak any protocol: each accepted connection goes to its publisher.
//!
//! Both listeners accept through [`accept_loop`], which survives descriptor exhaustion:
//! when `accept` fails with EMFILE or ENFILE, pending connections are refused (accepted and closed
//! at once with a spare descriptor kept for that purpose), publishing to connected subscribers
//! goes on, and accepting resumes by itself as soon as descriptors are free again.
//!
//! Admission is the [`Gate`], shared by both listeners: per-source counts (`limits.per-source`),
//! the limits in force, refusals (counted by listener and reason, logged at most once per source
//! per minute), and the TLS files and credentials for new connections ([`Secured`]). Changes to
//! any of them apply to newcomers; nobody connected is dropped.
//!
//! Rebinding never loses the stream: the new address is bound before the old listener stops,
//! and when the same port must be let go of first (same address, or a wildcard overlap) and the
//! new bind still fails, the old address is bound again.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use super::auth::{self, Credentials};
use super::limits::{self, Limits, Reason, RefusalLog};
use super::tls::{Tls, TlsFiles};
use super::Hub;
use crate::config::Config;

pub use crate::control::Listening;

/// Which listener. \[pure\]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The TCP line stream (`port`, `bind`).
    Tcp,
    /// HTTP (`http.port`, `http.bind`).
    Http,
}

impl Kind {
    /// The name used in logs and in `listener` labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Tcp => "tcp",
            Kind::Http => "http",
        }
    }
}

/// What the configuration asks the listeners to be. \[pure\]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    /// The TCP line stream's address.
    pub tcp: SocketAddr,
    /// HTTP's address, `None` when `http.port` is 0.
    pub http: Option<SocketAddr>,
    /// Connection limits of both.
    pub limits: Limits,
    /// TLS and credentials of both.
    pub security: Security,
}

/// TLS and authentication settings of both listeners (`tls.*`, `http.token`, `http.users.*`,
/// `http.metrics-public`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Security {
    /// TLS files; `None` serves plain TCP.
    pub tls: Option<TlsFiles>,
    /// Token and users; empty asks nothing of clients.
    pub credentials: Credentials,
    /// Whether `/metrics` stays open when credentials are set.
    pub metrics_public: bool,
}

/// [`Security`] in force: the TLS files loaded.
#[derive(Debug, Default)]
pub struct Secured {
    /// Loaded TLS files, reloaded when they change.
    pub tls: Option<Arc<Tls>>,
    /// Token and users.
    pub credentials: Credentials,
    /// Whether `/metrics` stays open when credentials are set.
    pub metrics_public: bool,
}

/// What the start log says about a listener that faces the network, if anything. \[pure\]
///
/// A listener faces the network when it is bound to an address other than loopback; it is then
/// worth a warning without TLS (whatever it sends, credentials included, crosses in clear text)
/// or without authentication (anyone who reaches it reads it).
pub fn exposure(kind: Kind, addr: SocketAddr, security: &Security) -> Option<String> {
    if addr.ip().is_loopback() {
        return None;
    }
    let tls = security.tls.is_some();
    let client_certs = security.tls.as_ref().is_some_and(|t| t.client_ca.is_some());
    let authenticated = client_certs
        || match kind {
            Kind::Tcp => security.credentials.token.is_some(),
            Kind::Http => security.credentials.required(),
        };
    let what = match (tls, authenticated) {
        (true, true) => return None,
        (false, false) => "with neither TLS nor authentication: anyone who reaches it reads it",
        (true, false) => "without authentication: anyone who reaches it reads it",
        (false, true) => {
            "without TLS: what it sends, credentials included, crosses it in clear text"
        }
    };
    let mut text = format!("the {} listener on {addr} faces the network {what}", kind.as_str());
    if kind == Kind::Http && authenticated && security.metrics_public {
        text.push_str("; /metrics is public (http.metrics-public)");
    }
    Some(text)
}

/// [`exposure`] of each bound listener: what the start log and `pocketses status` say. \[pure\]
pub fn exposures(listening: Listening, security: &Security) -> Vec<String> {
    [(Kind::Tcp, listening.tcp), (Kind::Http, listening.http)]
        .into_iter()
        .filter_map(|(kind, addr)| exposure(kind, addr?, security))
        .collect()
}

impl Want {
    /// The listener part of `config`; relative TLS paths are resolved in `base`. \[pure\]
    pub fn from_config(config: &Config, base: &Path) -> Want {
        let resolve = |path: &PathBuf| base.join(path);
        let tls = &config.tls;
        let files = match (&tls.cert, &tls.key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: resolve(cert),
                key: resolve(key),
                client_ca: tls.client_ca.as_ref().map(resolve),
            }),
            // The configuration checks that they come together.
            _ => None,
        };
        Want {
            tcp: SocketAddr::new(config.bind, config.port),
            http: (config.http.port != 0)
                .then(|| SocketAddr::new(config.http.bind, config.http.port)),
            limits: Limits {
                max_connections: config.http.max_connections,
                max_sse: config.http.max_sse,
                per_source: config.limits.per_source,
            },
            security: Security {
                tls: files,
                credentials: Credentials {
                    token: config.http.token.clone(),
                    users: config.http.users.clone(),
                },
                metrics_public: config.http.metrics_public,
            },
        }
    }
}

/// Where relative TLS paths are resolved: `$SNAP_COMMON`, else the state directory.
/// \[io\]: reads the environment.
pub fn files_dir() -> PathBuf {
    crate::paths::env_path("SNAP_COMMON").unwrap_or_else(crate::paths::state_dir)
}

/// The error of a bind that failed, naming the flag and the key that choose another address. \[pure\]
pub fn cannot_listen(kind: Kind, addr: SocketAddr, err: &std::io::Error) -> anyhow::Error {
    use std::io::ErrorKind;
    let (flag, key) = match (kind, err.kind()) {
        // The address is not one of this host's, or not allowed: the bind address is what to change.
        (Kind::Tcp, ErrorKind::AddrNotAvailable) => ("--bind", "bind"),
        (Kind::Http, ErrorKind::AddrNotAvailable) => ("--http-bind", "http.bind"),
        (Kind::Tcp, _) => ("--port", "port"),
        (Kind::Http, _) => ("--http-port", "http.port"),
    };
    anyhow::anyhow!(
        "cannot listen on {addr}: {}; choose another with {flag} or snap set pocketses {key}=…",
        crate::error::describe_io(err)
    )
}

/// Where to say that the listeners changed, besides the log.
#[derive(Debug, Default)]
pub struct Announce {
    /// Rewritten with [`Listening`]'s text each time the listeners change; removed at the end.
    pub ready_file: Option<PathBuf>,
    /// Sent [`Listening`] each time the listeners change.
    pub listening: Option<watch::Sender<Listening>>,
}

/// What an accept loop needs besides its listener.
#[derive(Debug, Clone)]
pub struct Serving {
    /// Where messages come from.
    pub hub: Hub,
    /// Admission, shared by both listeners.
    pub gate: Gate,
    /// Ends the accept loop only (shutdown, or the listener moved).
    pub stop: CancellationToken,
    /// Ends the connections too.
    pub shutdown: CancellationToken,
    /// Where connection tasks run, so shutdown can wait for them.
    pub tracker: TaskTracker,
}

impl Serving {
    /// For tests and in-process use: one token for both `stop` and `shutdown`, default limits.
    pub fn new(hub: Hub, shutdown: CancellationToken, tracker: TaskTracker) -> Serving {
        let gate = Gate::new(hub.clone(), Limits::default());
        Serving { hub, gate, stop: shutdown.clone(), shutdown, tracker }
    }
}

/// One running accept loop.
struct Running {
    /// The address asked for (port 0 stays 0 here, so an unchanged config does not rebind).
    want: SocketAddr,
    bound: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// The two listeners and what they need to start accept loops.
pub struct Listeners {
    hub: Hub,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    tcp: Option<Running>,
    http: Option<Running>,
    announce: Announce,
    gate: Gate,
    /// The security settings last asked for, to warn again only when they change.
    security: Security,
    /// Where relative TLS paths are resolved ([`files_dir`]).
    files_dir: PathBuf,
}

impl Listeners {
    /// No listener yet; accept loops and their connections will run on `tracker` until `shutdown`.
    pub fn new(
        hub: Hub,
        shutdown: CancellationToken,
        tracker: TaskTracker,
        announce: Announce,
    ) -> Listeners {
        let gate = Gate::new(hub.clone(), Limits::default());
        let security = Security::default();
        let files_dir = files_dir();
        Listeners {
            hub,
            shutdown,
            tracker,
            tcp: None,
            http: None,
            announce,
            gate,
            security,
            files_dir,
        }
    }

    /// Binds both listeners as `config` asks, or neither: on failure nothing stays bound and
    /// nothing was announced.
    ///
    /// # Errors
    /// When an address cannot be bound (the message names the flag and key to change), or TLS
    /// files do not load.
    pub async fn start(&mut self, config: &Config) -> anyhow::Result<()> {
        let want = &Want::from_config(config, &self.files_dir);
        self.gate.set_limits(want.limits);
        self.gate.set_security(&want.security)?;
        let res = match self.rebind(Kind::Tcp, Some(want.tcp)).await {
            Ok(()) => self.rebind(Kind::Http, want.http).await,
            Err(err) => Err(err),
        };
        self.security = want.security.clone();
        match res {
            Ok(()) => {
                let now = self.listening();
                info!("listening {now}");
                self.warn_exposure(now, &want.security);
                self.publish(now);
                Ok(())
            }
            Err(err) => {
                self.stop_all().await;
                Err(err)
            }
        }
    }

    /// Follows configuration changes until `shutdown`, then removes the ready file.
    pub async fn follow(mut self, mut config: watch::Receiver<Config>) {
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                res = config.changed() => {
                    if res.is_err() {
                        // Nobody will reload the configuration any more; serve as is.
                        self.shutdown.cancelled().await;
                        break;
                    }
                    let new = config.borrow_and_update().clone();
                    self.hub.set_max_subscribers(new.publish.max_subscribers);
                    self.hub.set_remodel_events(new.publish.remodel_events);
                    let want = Want::from_config(&new, &self.files_dir);
                    if let Err(err) = self.apply(&want).await {
                        error!("{err:#}");
                    }
                }
            }
        }
        self.remove_ready_file();
    }

    /// Rebinds what changed; a listener that cannot move keeps its old address.
    async fn apply(&mut self, want: &Want) -> anyhow::Result<()> {
        self.gate.set_limits(want.limits);
        let before = self.listening();
        let res_security = self.gate.set_security(&want.security);
        let res_tcp = self.rebind(Kind::Tcp, Some(want.tcp)).await;
        let res_http = self.rebind(Kind::Http, want.http).await;
        let after = self.listening();
        if after != before {
            info!("listening {after}");
            self.publish(after);
        }
        if after != before || want.security != self.security {
            self.warn_exposure(after, &want.security);
        }
        self.security = want.security.clone();
        res_security.and(res_tcp).and(res_http)
    }

    fn warn_exposure(&self, listening: Listening, security: &Security) {
        for text in exposures(listening, security) {
            warn!("{text}");
        }
    }

    fn listening(&self) -> Listening {
        Listening {
            tcp: self.tcp.as_ref().map(|r| r.bound),
            http: self.http.as_ref().map(|r| r.bound),
        }
    }

    async fn rebind(&mut self, kind: Kind, want: Option<SocketAddr>) -> anyhow::Result<()> {
        let slot = self.slot(kind);
        if slot.as_ref().map(|r| r.want) == want {
            return Ok(());
        }
        let Some(want) = want else {
            if let Some(old) = slot.take() {
                stop(old).await;
            }
            return Ok(());
        };
        let listener = match super::tcp::bind(want) {
            Ok(listener) => listener,
            // Same port on another address, or the same address: let go of the old one first.
            Err(err) if err.kind() == std::io::ErrorKind::AddrInUse && slot.is_some() => {
                let old_want = slot.as_ref().map(|r| r.want);
                if let Some(old) = slot.take() {
                    stop(old).await;
                }
                match super::tcp::bind(want) {
                    Ok(listener) => listener,
                    Err(err) => {
                        // Put the old listener back so the stream stays reachable.
                        if let Some(old_want) = old_want {
                            if let Ok(listener) = super::tcp::bind(old_want) {
                                let running = self.run(kind, old_want, listener);
                                *self.slot(kind) = Some(running);
                            }
                        }
                        return Err(cannot_listen(kind, want, &err));
                    }
                }
            }
            Err(err) => return Err(cannot_listen(kind, want, &err)),
        };
        let running = self.run(kind, want, listener);
        if let Some(old) = self.slot(kind).replace(running) {
            stop(old).await;
        }
        Ok(())
    }

    async fn stop_all(&mut self) {
        for running in [self.tcp.take(), self.http.take()].into_iter().flatten() {
            stop(running).await;
        }
    }

    fn slot(&mut self, kind: Kind) -> &mut Option<Running> {
        match kind {
            Kind::Tcp => &mut self.tcp,
            Kind::Http => &mut self.http,
        }
    }

    fn run(&self, kind: Kind, want: SocketAddr, listener: TcpListener) -> Running {
        let bound = listener.local_addr().unwrap_or(want);
        let stop = self.shutdown.child_token();
        let serving = Serving {
            hub: self.hub.clone(),
            gate: self.gate.clone(),
            stop: stop.clone(),
            shutdown: self.shutdown.clone(),
            tracker: self.tracker.clone(),
        };
        let task = match kind {
            Kind::Tcp => self.tracker.spawn(super::tcp::serve(listener, serving)),
            Kind::Http => self.tracker.spawn(super::http::serve(listener, serving)),
        };
        Running { want, bound, stop, task }
    }

    fn publish(&self, listening: Listening) {
        if let Some(tx) = &self.announce.listening {
            tx.send_replace(listening);
        }
        if let Some(path) = &self.announce.ready_file {
            if let Err(err) = write_atomically(path, &format!("{listening}\n")) {
                warn!(path = %path.display(), error = %err, "cannot write ready file");
            }
        }
    }

    fn remove_ready_file(&self) {
        if let Some(path) = &self.announce.ready_file {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Stops an accept loop and waits until its listener is closed; its connections stay.
async fn stop(running: Running) {
    running.stop.cancel();
    let _ = running.task.await;
}

fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Admission shared by both listeners: the limits, what each source holds, the refusal log.
///
/// Cheap to clone. Limits change live ([`Gate::set_limits`]) and apply to newcomers only.
#[derive(Debug, Clone)]
pub struct Gate {
    inner: Arc<GateInner>,
}

#[derive(Debug)]
struct GateInner {
    hub: Hub,
    limits: Mutex<Limits>,
    sources: Mutex<HashMap<IpAddr, usize>>,
    log: Mutex<RefusalLog>,
    secured: Mutex<Arc<Secured>>,
    /// Successful bcrypt checks (digests of hash and password).
    verified: Mutex<HashSet<[u8; 32]>>,
    /// One bcrypt verification at a time.
    bcrypt: tokio::sync::Semaphore,
}

/// Successful bcrypt checks remembered; more clears the memory (and costs a verification each).
const VERIFIED_MAX: usize = 256;

impl Gate {
    /// TLS and credentials for a new connection.
    pub fn secured(&self) -> Arc<Secured> {
        self.inner.secured.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Puts `security` in force for new connections, loading TLS files when they changed.
    ///
    /// # Errors
    /// When TLS files do not load; what was in force stays.
    pub fn set_security(&self, security: &Security) -> anyhow::Result<()> {
        let now = self.secured();
        let tls = match (&security.tls, &now.tls) {
            (Some(files), Some(tls)) if tls.files() == files => Some(tls.clone()),
            (Some(files), _) => Some(Arc::new(Tls::load(files.clone())?)),
            (None, _) => None,
        };
        let secured = Secured {
            tls,
            credentials: security.credentials.clone(),
            metrics_public: security.metrics_public,
        };
        if let Ok(mut now) = self.inner.secured.lock() {
            *now = Arc::new(secured);
        }
        Ok(())
    }

    /// A gate counting its refusals in `hub`'s counters.
    pub fn new(hub: Hub, limits: Limits) -> Gate {
        Gate {
            inner: Arc::new(GateInner {
                hub,
                limits: Mutex::new(limits),
                sources: Mutex::new(HashMap::new()),
                log: Mutex::new(RefusalLog::default()),
                secured: Mutex::new(Arc::new(Secured::default())),
                verified: Mutex::new(HashSet::new()),
                bcrypt: tokio::sync::Semaphore::new(1),
            }),
        }
    }

    /// The limits now.
    pub fn limits(&self) -> Limits {
        self.inner.limits.lock().map_or_else(|p| *p.into_inner(), |l| *l)
    }

    /// Changes the limits; nobody already connected is disconnected.
    pub fn set_limits(&self, limits: Limits) {
        if let Ok(mut now) = self.inner.limits.lock() {
            *now = limits;
        }
    }

    /// Admits a connection from `peer` within `limits.per-source`, or refuses it (counted, logged).
    pub fn admit(&self, kind: Kind, peer: IpAddr) -> Option<Ticket> {
        let source = limits::source(peer);
        let max = self.limits().per_source;
        let admitted = match self.inner.sources.lock() {
            Ok(mut sources) => {
                let held = sources.entry(source).or_insert(0);
                if *held < max {
                    *held += 1;
                    true
                } else {
                    false
                }
            }
            // A poisoned map cannot count: admit rather than lock everybody out.
            Err(_) => return Some(Ticket { gate: None, source }),
        };
        if admitted {
            Some(Ticket { gate: Some(self.clone()), source })
        } else {
            self.refuse(kind, Reason::PerSource, peer);
            None
        }
    }

    /// Counts a refusal and logs it, at most once per source per minute.
    pub fn refuse(&self, kind: Kind, reason: Reason, peer: IpAddr) {
        self.inner.hub.counters().refusals.add(kind, reason);
        let source = limits::source(peer);
        let due = self.inner.log.lock().ok().and_then(|mut log| log.note(source, Instant::now()));
        if let Some(quiet) = due {
            warn!(
                listener = kind.as_str(),
                %source,
                "refusing connections from {source}: {} ({quiet} more refused since the last such line)",
                reason.describe(),
            );
        }
    }

    /// Verifies a basic-auth password against its bcrypt hash, off the async workers and one at
    /// a time (bcrypt is made to be slow); a success is remembered, so that a scraper presenting
    /// the same credentials every few seconds costs one verification, not one per scrape.
    pub async fn verify_user(&self, hash: String, password: String) -> bool {
        let key = auth::remembered(&hash, &password);
        if self.inner.verified.lock().is_ok_and(|v| v.contains(&key)) {
            return true;
        }
        let Ok(_turn) = self.inner.bcrypt.acquire().await else { return false };
        let ok = tokio::task::spawn_blocking(move || auth::verify_user(&password, &hash))
            .await
            .unwrap_or(false);
        if ok {
            if let Ok(mut verified) = self.inner.verified.lock() {
                if verified.len() >= VERIFIED_MAX {
                    verified.clear();
                }
                verified.insert(key);
            }
        }
        ok
    }

    /// Connections `peer`'s source holds now.
    pub fn held(&self, peer: IpAddr) -> usize {
        let source = limits::source(peer);
        self.inner.sources.lock().map_or(0, |s| s.get(&source).copied().unwrap_or(0))
    }
}

/// A connection's place in its source's count; dropping it frees the place.
#[derive(Debug)]
pub struct Ticket {
    gate: Option<Gate>,
    source: IpAddr,
}

impl Ticket {
    /// The source this connection counts against.
    pub fn source(&self) -> IpAddr {
        self.source
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let Some(gate) = &self.gate else { return };
        if let Ok(mut sources) = gate.inner.sources.lock() {
            if let Some(held) = sources.get_mut(&self.source) {
                *held -= 1;
                if *held == 0 {
                    sources.remove(&self.source);
                }
            }
        }
    }
}

/// Runs `handle` for every accepted connection that `gate` admits, until `stop`;
/// survives descriptor exhaustion.
pub async fn accept_loop<F>(
    listener: &TcpListener,
    stop: &CancellationToken,
    gate: &Gate,
    kind: Kind,
    mut handle: F,
) where
    F: FnMut(TcpStream, SocketAddr, Ticket),
{
    let what = kind.as_str();
    let mut fds = Exhaustion::new(what);
    loop {
        let res = tokio::select! {
            _ = stop.cancelled() => return,
            res = listener.accept() => res,
        };
        match res {
            Ok((stream, peer)) => {
                fds.recovered();
                if let Some(ticket) = gate.admit(kind, peer.ip()) {
                    handle(stream, peer, ticket);
                }
            }
            Err(err) if is_fd_exhaustion(&err) => {
                // Logged once per episode by `fds`, not per refusal.
                gate.inner.hub.counters().refusals.add(kind, Reason::Descriptors);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhaustion_errors() {
        for (errno, want) in [
            (libc::EMFILE, true),
            (libc::ENFILE, true),
            (libc::ENOBUFS, true),
            (libc::ECONNABORTED, false),
            (libc::EINVAL, false),
        ] {
            assert_eq!(
                is_fd_exhaustion(&std::io::Error::from_raw_os_error(errno)),
                want,
                "{errno}"
            );
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let mut fds = Exhaustion::new("test");
        let pauses: Vec<u128> = (0..8).map(|_| fds.backoff().as_millis()).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 500, 500]);
        fds.started(&std::io::Error::from_raw_os_error(libc::EMFILE));
        fds.recovered();
        assert_eq!(fds.backoff().as_millis(), 10);
    }

    #[test]
    fn exposure_is_said_plainly() {
        let open: SocketAddr = "0.0.0.0:8888".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:8888".parse().unwrap();
        let nothing = Security::default();
        let files = TlsFiles { cert: "c".into(), key: "k".into(), client_ca: None };
        let token = Credentials { token: Some("t".into()), ..Credentials::default() };
        let users = Credentials {
            users: [("a".to_string(), "h".to_string())].into(),
            ..Credentials::default()
        };
        assert_eq!(exposure(Kind::Tcp, local, &nothing), None);
        assert_eq!(
            exposure(Kind::Tcp, open, &nothing).unwrap(),
            "the tcp listener on 0.0.0.0:8888 faces the network with neither TLS nor \
             authentication: anyone who reaches it reads it"
        );
        let tls_only = Security { tls: Some(files.clone()), ..Security::default() };
        assert!(exposure(Kind::Http, open, &tls_only)
            .unwrap()
            .ends_with("without authentication: anyone who reaches it reads it"));
        let token_only = Security { credentials: token.clone(), ..Security::default() };
        assert!(exposure(Kind::Tcp, open, &token_only).unwrap().contains("without TLS"));
        let both = Security { tls: Some(files.clone()), credentials: token, ..Security::default() };
        assert_eq!(exposure(Kind::Tcp, open, &both), None);
        assert_eq!(exposure(Kind::Http, open, &both), None);
        // Users protect HTTP only: the stream takes the token or a client certificate.
        let users = Security { tls: Some(files.clone()), credentials: users, metrics_public: true };
        assert!(exposure(Kind::Tcp, open, &users).is_some());
        assert_eq!(exposure(Kind::Http, open, &users), None);
        let users_plain = Security { tls: None, ..users };
        assert_eq!(
            exposure(Kind::Http, open, &users_plain).unwrap(),
            "the http listener on 0.0.0.0:8888 faces the network without TLS: what it sends, \
             credentials included, crosses it in clear text; /metrics is public (http.metrics-public)"
        );
        let certs = TlsFiles { client_ca: Some("ca".into()), ..files };
        let certs = Security { tls: Some(certs), ..Security::default() };
        assert_eq!(exposure(Kind::Tcp, open, &certs), None);
    }

    #[test]
    fn http_port_zero_wants_no_http() {
        let mut config = Config::default();
        config.http.port = 0;
        let base = Path::new("/common");
        assert_eq!(Want::from_config(&config, base).http, None);
        config.http.port = 9;
        config.http.bind = "127.0.0.2".parse().unwrap();
        assert_eq!(Want::from_config(&config, base).http, Some("127.0.0.2:9".parse().unwrap()));
    }

    #[test]
    fn tls_paths_resolve_in_the_files_dir() {
        let mut config = Config::default();
        config.tls.cert = Some("cert.pem".into());
        config.tls.key = Some("/etc/ssl/key.pem".into());
        config.tls.client_ca = Some("ca/clients.pem".into());
        let want = Want::from_config(&config, Path::new("/var/snap/pocketses/common"));
        let files = want.security.tls.unwrap();
        assert_eq!(files.cert, Path::new("/var/snap/pocketses/common/cert.pem"));
        assert_eq!(files.key, Path::new("/etc/ssl/key.pem"));
        assert_eq!(
            files.client_ca.unwrap(),
            Path::new("/var/snap/pocketses/common/ca/clients.pem")
        );
    }

    #[test]
    fn bind_errors_name_what_to_change() {
        use std::io::{Error, ErrorKind};
        let addr: SocketAddr = "0.0.0.0:8888".parse().unwrap();
        for (kind, err, want) in [
            (
                Kind::Tcp,
                ErrorKind::AddrInUse,
                "cannot listen on 0.0.0.0:8888: address in use; \
                 choose another with --port or snap set pocketses port=…",
            ),
            (
                Kind::Http,
                ErrorKind::AddrInUse,
                "cannot listen on 0.0.0.0:8888: address in use; \
                 choose another with --http-port or snap set pocketses http.port=…",
            ),
            (
                Kind::Tcp,
                ErrorKind::AddrNotAvailable,
                "cannot listen on 0.0.0.0:8888: address not available; \
                 choose another with --bind or snap set pocketses bind=…",
            ),
            (
                Kind::Http,
                ErrorKind::AddrNotAvailable,
                "cannot listen on 0.0.0.0:8888: address not available; \
                 choose another with --http-bind or snap set pocketses http.bind=…",
            ),
        ] {
            assert_eq!(cannot_listen(kind, addr, &Error::from(err)).to_string(), want);
        }
    }
}
