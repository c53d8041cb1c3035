//! The daemon's control socket, and the configuration service behind it.
//!
//! A unix socket at `$SNAP_DATA/control.sock` (or `POCKETSES_CONTROL_SOCKET`), mode 0600, so only
//! root (the daemon's user) can talk to it. One JSON request per line, one JSON reply per line:
//!
//! ```text
//! {"command":"reload"}                       → re-read the configuration from snapd and apply it
//! {"command":"reload","config":{…}}           → apply this document (what the configure hook validated)
//! {"command":"source","snapd-control":true}   → switch between REST and snapctl (connect/disconnect hooks)
//! {"command":"state"}                         → the daemon's state, for `pocketses status`
//! {"command":"checks"}                        → the latest health and check document (check-health hook)
//! {"command":"fleet-poll"}                    → poll the fleet server now (`pocketses fleet poll`)
//! {"command":"fleet-status"}                  → the fleet client's status, with the poll's times (`pocketses fleet status`)
//! ← {"ok":true,"result":…}  or  {"ok":false,"error":"cannot …"}
//! ```
//!
//! The configure hook passes the document it validated because snapd commits a `snap set` only
//! after the hook exits 0: a re-read from inside the hook would still see the old values.
//! [`ConfigService`] owns the `watch::Sender<Config>` the daemon follows; it never restarts anything.
//! Encoding and decoding are pure; [`serve`], [`call`] and [`ConfigService`] do the I/O.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt as _, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::{self, Config, Loaded, Settings};
use crate::error::describe_io;
use crate::snapd::conf::ConfigSource;
pub use crate::snapd::conf::Via;

/// Overrides the control socket path (tests, running outside a snap).
pub const SOCKET_ENV: &str = "POCKETSES_CONTROL_SOCKET";
/// File name of the socket in `$SNAP_DATA`.
pub const SOCKET_NAME: &str = "control.sock";
/// Longest request line accepted.
pub const MAX_LINE: usize = 1 << 20;
/// Time limit of one client call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the daemon waits for a client's request line before hanging up.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether the daemon reads its configuration from snapd: inside a snap, or when a snapd socket
/// is named explicitly (`POCKETSES_SNAPD_SOCKET`).
pub fn uses_snapd(source: &ConfigSource) -> bool {
    source.in_snap() || std::env::var_os(crate::snapd::SNAPD_SOCKET_ENV).is_some()
}

/// The control socket path: `POCKETSES_CONTROL_SOCKET`, else `control.sock` in the state
/// directory ([`crate::paths::state_dir`]), which the daemon and the CLI agree on, in a snap or not.
pub fn socket_path() -> PathBuf {
    crate::paths::env_path(SOCKET_ENV)
        .unwrap_or_else(|| crate::paths::state_dir().join(SOCKET_NAME))
}

/// A control request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Request {
    /// Apply `config` (a snapd document), or re-read snapd when absent.
    Reload {
        /// The document to apply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        config: Option<Value>,
    },
    /// Re-pick the configuration source; `snapd-control` says whether the plug is (about to be) connected.
    Source {
        /// Connected or not; detected when absent.
        #[serde(rename = "snapd-control", default, skip_serializing_if = "Option::is_none")]
        snapd_control: Option<bool>,
    },
    /// Report the daemon's state.
    State,
    /// Report the latest checks and the snap's health.
    Checks,
    /// Poll the fleet server now.
    FleetPoll,
    /// Report the fleet client's status as the daemon holds it (the poll's counters and times
    /// are not written to `fleet-status.json` at every poll).
    FleetStatus,
}

/// A control reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// Whether the request succeeded.
    pub ok: bool,
    /// The result when ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The error when not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Reply {
    fn from_result(res: Result<Value, String>) -> Self {
        match res {
            Ok(result) => Reply { ok: true, result: Some(result), error: None },
            Err(error) => Reply { ok: false, result: None, error: Some(error) },
        }
    }
}

/// One effective configuration value in a `state` reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigValue {
    /// Dotted key.
    pub key: String,
    /// Value, as snapd stores it.
    pub value: Value,
    /// Where it came from.
    pub source: config::Source,
}

/// Where the daemon's listeners are bound (real ports, also when 0 was asked for).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listening {
    /// The TCP line stream.
    pub tcp: Option<std::net::SocketAddr>,
    /// The HTTP endpoint, `None` when disabled.
    pub http: Option<std::net::SocketAddr>,
}

impl std::fmt::Display for Listening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show =
            |addr: Option<std::net::SocketAddr>| addr.map_or("off".to_string(), |a| a.to_string());
        write!(f, "tcp={} http={}", show(self.tcp), show(self.http))
    }
}

/// The `state` reply: what `pocketses status` shows of a running daemon. The daemon writes it and
/// `status` reads it with this one type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct State {
    /// Process id.
    pub pid: u32,
    /// Start time, seconds since the epoch.
    pub started: u64,
    /// How snapd's configuration is read (`rest`, `snapctl`), `None` when snapd is not a source.
    pub config_via: Option<Via>,
    /// Every effective value, in key-table order.
    pub config: Vec<ConfigValue>,
    /// Keys in snapd that pocketses does not use.
    pub unknown_keys: Vec<String>,
    /// Configurations applied since start.
    pub reloads: u64,
    /// When the last one was applied.
    pub last_reload: Option<u64>,
    /// The last configuration error (snapd unreachable, invalid document).
    pub last_error: Option<String>,
    /// Where the listeners are bound, once they are.
    #[serde(default)]
    pub listening: Option<Listening>,
    /// Listeners that face the network without TLS or authentication, said plainly.
    #[serde(default)]
    pub exposure: Vec<String>,
    /// The push sinks' figures, by name.
    #[serde(default)]
    pub push: Vec<crate::push::sink::SinkStatus>,
    /// The hub's spokes (`hub.spokes`), in order.
    #[serde(default)]
    pub hub: Vec<crate::hub::spoke::SpokeStatus>,
}

/// Decodes one request line. \[pure\]
///
/// # Errors
/// A message in snapd's grammar when the line is not a request.
pub fn decode_request(line: &str) -> Result<Request, String> {
    let req: Request = serde_json::from_str(line.trim())
        .map_err(|err| format!("cannot decode control request: {err}"))?;
    if let Request::Reload { config: Some(doc) } = &req {
        if !doc.is_object() {
            return Err(format!(
                "cannot decode control request: \"config\" must be an object of keys, not {doc}"
            ));
        }
    }
    Ok(req)
}

/// Decodes the bytes of one request line, which may not be text. \[pure\]
///
/// # Errors
/// As [`decode_request`], and when the bytes are not UTF-8 or have no end of line.
pub fn decode_request_bytes(line: &[u8]) -> Result<Request, String> {
    if line.last() != Some(&b'\n') {
        return Err(if line.len() >= MAX_LINE {
            format!("cannot decode control request: longer than {MAX_LINE} bytes")
        } else {
            "cannot decode control request: incomplete line".to_string()
        });
    }
    let text = std::str::from_utf8(line)
        .map_err(|_| "cannot decode control request: not UTF-8 text".to_string())?;
    decode_request(text)
}

/// Encodes a value as one line. \[pure\]
pub fn encode_line<T: Serialize>(value: &T) -> String {
    let mut line = serde_json::to_string(value)
        .unwrap_or_else(|_| r#"{"ok":false,"error":"internal error"}"#.into());
    line.push('\n');
    line
}

/// Errors of [`call`].
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Nobody listens: the daemon is not running (not an error for hooks).
    #[error("the daemon is not running (no control socket at {0})")]
    NotRunning(PathBuf),
    /// The daemon refused the request.
    #[error("{0}")]
    Refused(String),
    /// Anything else: permissions, timeouts, garbage.
    #[error("cannot talk to the daemon at {path}: {message}")]
    Io {
        /// The socket.
        path: PathBuf,
        /// What happened.
        message: String,
    },
}

/// Sends one request to the daemon and returns its result.
///
/// # Errors
/// [`CallError::NotRunning`] when no daemon listens, [`CallError::Refused`] when it said no.
pub async fn call(path: &Path, req: &Request, timeout: Duration) -> Result<Value, CallError> {
    let io = |message: String| CallError::Io { path: path.to_path_buf(), message };
    let exchange = async {
        let stream = match UnixStream::connect(path).await {
            Ok(stream) => stream,
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                return Err(CallError::NotRunning(path.to_path_buf()));
            }
            Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(io("the control socket is root-only (try with sudo)".to_string()));
            }
            Err(err) => return Err(io(describe_io(&err))),
        };
        let (read, mut write) = stream.into_split();
        // A daemon that refuses us answers before reading: its reply is worth more than our
        // failed write, so read it before reporting the write.
        let sent = write.write_all(encode_line(req).as_bytes()).await;
        let mut line = String::new();
        let got = BufReader::new(read).read_line(&mut line).await;
        match (sent, got) {
            (_, Ok(n)) if n > 0 => {}
            (Err(err), _) | (Ok(()), Err(err)) => return Err(io(describe_io(&err))),
            (Ok(()), Ok(_)) => return Err(io("the daemon closed the connection".to_string())),
        }
        let reply: Reply =
            serde_json::from_str(&line).map_err(|e| io(format!("bad reply: {e}")))?;
        if reply.ok {
            Ok(reply.result.unwrap_or(Value::Null))
        } else {
            Err(CallError::Refused(reply.error.unwrap_or_else(|| "request refused".into())))
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| io(format!("no reply within {}s", timeout.as_secs())))?
}

/// Answers control requests.
pub trait Handler: Send + Sync {
    /// Handles one request.
    fn handle(
        &self,
        req: Request,
    ) -> Pin<Box<dyn std::future::Future<Output = Result<Value, String>> + Send + '_>>;
}

/// A bound control socket: the listener, and which file is ours to remove.
#[derive(Debug)]
pub struct Bound {
    listener: UnixListener,
    path: PathBuf,
    /// Device and inode of the socket file we made: we remove that file and no other.
    id: (u64, u64),
}

impl Bound {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the socket file if it is still the one we made (another daemon may have replaced it).
    pub fn remove(&self) {
        if file_id(&self.path) == Some(self.id) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Binds the socket with mode 0600, replacing a stale one (a socket file nobody listens on).
/// A socket that answers belongs to a running daemon: it is left alone and binding fails.
///
/// # Errors
/// `AddrInUse` when another daemon listens there; otherwise when the directory cannot be made or
/// the socket cannot be bound.
pub fn bind(path: &Path) -> std::io::Result<Bound> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::AddrInUse,
                        "another pocketses daemon is running (its control socket answers)",
                    ))
                }
                // Nobody listens: a socket left by a daemon that was killed.
                Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(path)?;
                }
                Err(err) => return Err(err),
            }
        }
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        }
    }
    // Between bind and chmod the peer check in `serve` keeps other users out.
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let id = file_id(path).ok_or_else(|| std::io::Error::other("control socket vanished"))?;
    Ok(Bound { listener, path: path.to_path_buf(), id })
}

use std::os::unix::fs::DirBuilderExt as _;

/// Serves requests until `shutdown`; removes the socket file on the way out if it is still ours.
pub async fn serve(bound: Bound, handler: Arc<dyn Handler>, shutdown: CancellationToken) {
    // The daemon's own uid may talk to it, and root.
    let owner = crate::paths::effective_uid();
    let listener = &bound.listener;
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            res = listener.accept() => match res {
                Ok((stream, _)) => stream,
                Err(err) => {
                    warn!(error = %err, "control socket: cannot accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Mode 0600 already keeps others out; the peer check (SO_PEERCRED) also covers a socket
        // whose mode someone widened.
        let allowed = match stream.peer_cred() {
            Ok(cred) => cred.uid() == 0 || cred.uid() == owner,
            Err(_) => false,
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            if let Err(err) = connection(stream, allowed, handler).await {
                debug!(error = %err, "control connection ended");
            }
        });
    }
    bound.remove();
}

async fn connection(
    stream: UnixStream,
    allowed: bool,
    handler: Arc<dyn Handler>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(MAX_LINE as u64));
    let mut line = Vec::new();
    let reply = if !allowed {
        Reply::from_result(Err(
            "access denied: only root and the daemon's user may use the control socket".to_string(),
        ))
    } else {
        match tokio::time::timeout(READ_TIMEOUT, reader.read_until(b'\n', &mut line)).await {
            Err(_) => Reply::from_result(Err(format!(
                "cannot decode control request: no complete line within {}s",
                READ_TIMEOUT.as_secs()
            ))),
            Ok(res) => {
                res?;
                match decode_request_bytes(&line) {
                    Ok(req) => Reply::from_result(handler.handle(req).await),
                    Err(err) => Reply::from_result(Err(err)),
                }
            }
        }
    };
    let write_reply = async {
        write.write_all(encode_line(&reply).as_bytes()).await?;
        write.shutdown().await
    };
    tokio::time::timeout(READ_TIMEOUT, write_reply)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// Where the daemon's listeners are, for `state` replies.
pub type StateFn = Box<dyn Fn() -> Listening + Send + Sync>;
/// The push sinks' figures, for `state` replies.
pub type PushFn = Box<dyn Fn() -> Vec<crate::push::sink::SinkStatus> + Send + Sync>;
/// The hub's spokes, for `state` replies.
pub type HubFn = Box<dyn Fn() -> Vec<crate::hub::spoke::SpokeStatus> + Send + Sync>;

#[derive(Debug)]
struct ServiceState {
    via: Option<Via>,
    loaded: Loaded,
    from_snapd: bool,
    last_error: Option<String>,
    reloads: u64,
    last_reload: Option<u64>,
}

/// The configuration source of a running daemon: loads from snapd, applies to the watch channel,
/// answers the control socket.
pub struct ConfigService {
    source: ConfigSource,
    settings: Settings,
    tx: watch::Sender<Config>,
    state: Mutex<ServiceState>,
    extra: Option<StateFn>,
    push: Option<PushFn>,
    hub: Option<HubFn>,
    checks: Option<crate::checks::daemon::Latest>,
    fleet: Option<crate::fleet::daemon::Fleet>,
    started: u64,
}

impl std::fmt::Debug for ConfigService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigService").field("source", &self.source).finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl ConfigService {
    /// A service that sends configurations to `tx`; the command-line `settings` win over snapd.
    /// `loaded` is what the daemon starts on (defaults and `settings`, already checked).
    pub fn new(
        source: ConfigSource,
        settings: Settings,
        loaded: Loaded,
        tx: watch::Sender<Config>,
    ) -> Self {
        ConfigService {
            source,
            settings,
            tx,
            state: Mutex::new(ServiceState {
                via: None,
                loaded,
                from_snapd: false,
                last_error: None,
                reloads: 0,
                last_reload: None,
            }),
            extra: None,
            push: None,
            hub: None,
            checks: None,
            fleet: None,
            started: now_secs(),
        }
    }

    /// Adds daemon state (listeners, subscribers) to `state` replies.
    #[must_use]
    pub fn with_state(mut self, extra: StateFn) -> Self {
        self.extra = Some(extra);
        self
    }

    /// Adds the hub's spokes to `state` replies.
    #[must_use]
    pub fn with_hub(mut self, hub: HubFn) -> Self {
        self.hub = Some(hub);
        self
    }

    /// Adds the push sinks' figures to `state` replies.
    #[must_use]
    pub fn with_push(mut self, push: PushFn) -> Self {
        self.push = Some(push);
        self
    }

    /// Answers `checks` requests from the daemon's latest checks.
    #[must_use]
    pub fn with_checks(mut self, checks: crate::checks::daemon::Latest) -> Self {
        self.checks = Some(checks);
        self
    }

    /// Lets `fleet-poll` and `fleet-status` requests reach the fleet client.
    #[must_use]
    pub fn with_fleet(mut self, fleet: crate::fleet::daemon::Fleet) -> Self {
        self.fleet = Some(fleet);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ServiceState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The effective configuration with its sources.
    pub fn loaded(&self) -> Loaded {
        self.lock().loaded.clone()
    }

    fn apply(&self, loaded: Loaded, via: Option<Via>) {
        let config = loaded.config.clone();
        // Before anything logs about this change, so that it is filtered at the new level.
        crate::logging::set_level(&config.log_level);
        let changed = self.tx.send_if_modified(|current| {
            if *current == config {
                false
            } else {
                *current = config.clone();
                true
            }
        });
        let mut state = self.lock();
        if !loaded.unknown.is_empty() {
            debug!(keys = ?loaded.unknown, "configuration keys pocketses does not use");
        }
        state.loaded = loaded;
        state.from_snapd = true;
        state.last_error = None;
        state.reloads += 1;
        state.last_reload = Some(now_secs());
        if via.is_some() {
            state.via = via;
        }
        drop(state);
        if changed {
            info!(interval = config.interval, port = config.port, "configuration applied");
        }
    }

    fn check(&self, doc: &Value) -> Result<Loaded, String> {
        config::load(doc, &self.settings).map_err(|problems| {
            problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        })
    }

    /// Reads snapd (detecting the source the first time) and applies the result.
    ///
    /// # Errors
    /// snapd's error (retryable ones while it restarts), or the configuration's problems.
    pub async fn load(&self) -> Result<(), LoadError> {
        let known = self.lock().via;
        let via = match known {
            Some(via) => via,
            None => self.source.detect().await.map_err(LoadError::Snapd)?,
        };
        let (doc, via) = match self.source.document(via).await {
            Ok(doc) => (doc, via),
            // Without snapd-control the REST socket is out of reach for a strict snap: fall back.
            Err(err)
                if via == Via::Rest
                    && self.source.in_snap()
                    && (!err.is_retryable() || err.is_permission_denied()) =>
            {
                warn!(error = %err, "cannot read configuration over REST, using snapctl");
                (self.source.document(Via::Snapctl).await.map_err(LoadError::Snapd)?, Via::Snapctl)
            }
            Err(err) => return Err(LoadError::Snapd(err)),
        };
        let loaded = self.check(&doc).map_err(LoadError::Invalid)?;
        self.apply(loaded, Some(via));
        Ok(())
    }

    /// Loads from snapd, retrying with backoff while snapd is unreachable; never gives up until
    /// `shutdown`. Invalid configuration is logged and the defaults stay.
    pub async fn load_with_retry(&self, shutdown: &CancellationToken) {
        let mut attempt = 0;
        loop {
            match self.load().await {
                Ok(()) => return,
                Err(LoadError::Snapd(err)) if err.is_retryable() => {
                    self.lock().last_error = Some(err.to_string());
                    if attempt == 0 {
                        // The daemon's one line about an absent snapd (its error says "not reachable").
                        warn!("{err}; running on defaults and flags, retrying");
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(crate::snapd::backoff(attempt)) => {}
                    }
                    attempt += 1;
                }
                Err(err) => {
                    warn!(error = %err, "keeping the current configuration");
                    self.lock().last_error = Some(err.to_string());
                    return;
                }
            }
        }
    }

    /// Whether a configuration from snapd (or the configure hook) has been applied.
    pub fn has_loaded(&self) -> bool {
        self.lock().from_snapd
    }

    /// Whether the source is snapd at all (inside a snap, or a reachable snapd socket given by env).
    pub fn uses_snapd(&self) -> bool {
        uses_snapd(&self.source)
    }

    /// The `state` reply.
    pub fn state(&self) -> State {
        let state = self.lock();
        let config = state
            .loaded
            .effective()
            .into_iter()
            .map(|(key, value, source)| ConfigValue { key, value, source })
            .collect();
        let out = State {
            pid: std::process::id(),
            started: self.started,
            config_via: state.via,
            config,
            unknown_keys: state.loaded.unknown.clone(),
            reloads: state.reloads,
            last_reload: state.last_reload,
            last_error: state.last_error.clone(),
            listening: None,
            exposure: Vec::new(),
            push: self.push.as_ref().map(|push| push()).unwrap_or_default(),
            hub: self.hub.as_ref().map(|hub| hub()).unwrap_or_default(),
        };
        let want = crate::publish::listen::Want::from_config(
            &state.loaded.config,
            &crate::publish::listen::files_dir(),
        );
        drop(state);
        let listening = self.extra.as_ref().map(|extra| extra());
        let exposure = listening
            .map(|l| crate::publish::listen::exposures(l, &want.security))
            .unwrap_or_default();
        State { listening, exposure, ..out }
    }

    fn state_json(&self) -> Value {
        serde_json::to_value(self.state()).unwrap_or(Value::Null)
    }

    /// Re-reads snapd's configuration and applies it (SIGHUP); without snapd, says there is
    /// nothing to re-read.
    pub async fn reread(&self) {
        if !self.uses_snapd() {
            info!(
                "SIGHUP: the configuration comes from flags and defaults only; nothing to re-read"
            );
            return;
        }
        match self.load().await {
            Ok(()) => info!("SIGHUP: configuration re-read from snapd"),
            Err(err) => {
                warn!("SIGHUP: {err}; keeping the current configuration");
                self.lock().last_error = Some(err.to_string());
            }
        }
    }

    async fn handle_request(&self, req: Request) -> Result<Value, String> {
        match req {
            Request::State => Ok(self.state_json()),
            Request::FleetPoll => match &self.fleet {
                Some(fleet) if self.lock().loaded.config.fleet.enabled => {
                    fleet.poll_now();
                    Ok(serde_json::to_value(fleet.status()).unwrap_or(Value::Null))
                }
                _ => Err(crate::fleet::daemon::not_running()),
            },
            Request::FleetStatus => match &self.fleet {
                Some(fleet) => Ok(serde_json::to_value(fleet.status()).unwrap_or(Value::Null)),
                None => {
                    Err("cannot report the fleet status: this daemon has no fleet client".into())
                }
            },
            Request::Checks => match &self.checks {
                Some(checks) => Ok(checks.reply()),
                None => Err("cannot report checks: this daemon does not run them".to_string()),
            },
            Request::Reload { config: Some(doc) } => {
                let loaded = self.check(&doc)?;
                self.apply(loaded, None);
                Ok(self.state_json())
            }
            Request::Reload { config: None } => {
                self.load().await.map_err(|e| e.to_string())?;
                Ok(self.state_json())
            }
            Request::Source { snapd_control } => {
                let via = match snapd_control {
                    Some(true) => Via::Rest,
                    Some(false) => Via::Snapctl,
                    None => self
                        .source
                        .detect()
                        .await
                        .map_err(|e| format!("cannot pick configuration source: {e}"))?,
                };
                let via = if self.source.in_snap() { via } else { Via::Rest };
                self.lock().via = Some(via);
                info!(via = via.as_str(), "configuration source switched");
                Ok(self.state_json())
            }
        }
    }
}

impl Handler for ConfigService {
    fn handle(
        &self,
        req: Request,
    ) -> Pin<Box<dyn std::future::Future<Output = Result<Value, String>> + Send + '_>> {
        Box::pin(self.handle_request(req))
    }
}

/// Why loading failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// snapd could not be asked.
    /// The message includes snapd's error, which is therefore not also its `source()`.
    #[error("cannot read configuration from snapd: {0}")]
    Snapd(crate::snapd::Error),
    /// The stored configuration is invalid (one problem per line).
    #[error("{0}")]
    Invalid(String),
}

impl LoadError {
    /// snapd was unreachable or restarting: worth retrying.
    pub fn is_retryable(&self) -> bool {
        matches!(self, LoadError::Snapd(err) if err.is_retryable())
    }
}

/// Runs the configuration side of the daemon until `shutdown`: loads from snapd in the background
/// (retrying while snapd restarts) and serves the control socket at `path` when given.
///
/// # Errors
/// When the control socket cannot be bound.
pub async fn run(
    service: Arc<ConfigService>,
    bound: Option<Bound>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let loader = {
        let service = service.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            if service.uses_snapd() && !service.has_loaded() {
                service.load_with_retry(&shutdown).await;
            }
        })
    };
    if let Some(bound) = bound {
        info!(socket = %bound.path().display(), "control socket listening");
        serve(bound, service, shutdown.clone()).await;
    } else {
        shutdown.cancelled().await;
    }
    loader.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_load_error_names_snapds_cause_once() {
        let err = LoadError::Snapd(crate::snapd::Error::Connect {
            socket: "/run/snapd.socket".into(),
            cause: std::io::Error::from_raw_os_error(2),
        });
        let chain = format!("{:#}", anyhow::Error::new(err));
        assert_eq!(chain.matches("No such file or directory").count(), 1, "{chain}");
        assert_eq!(chain.matches("not reachable").count(), 1, "{chain}");
    }

    #[test]
    fn requests_decode() {
        assert_eq!(decode_request(r#"{"command":"state"}"#).unwrap(), Request::State);
        assert_eq!(
            decode_request(r#"{"command":"reload"}"#).unwrap(),
            Request::Reload { config: None }
        );
        assert_eq!(
            decode_request(r#"{"command":"reload","config":{"interval":5}}"#).unwrap(),
            Request::Reload { config: Some(json!({"interval": 5})) }
        );
        assert_eq!(
            decode_request(r#"{"command":"source","snapd-control":false}"#).unwrap(),
            Request::Source { snapd_control: Some(false) }
        );
        let err = decode_request(r#"{"command":"explode"}"#).unwrap_err();
        assert!(err.starts_with("cannot decode control request: "), "{err}");
        assert!(decode_request("not json").is_err());
    }

    #[test]
    fn lines_round_trip() {
        for req in [
            Request::State,
            Request::Reload { config: None },
            Request::Source { snapd_control: Some(true) },
        ] {
            let line = encode_line(&req);
            assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
            assert_eq!(decode_request(&line).unwrap(), req);
        }
    }

    #[tokio::test]
    async fn socket_is_0600_and_answers() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let (service, rx) = service(&dir);
        let bound = bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(bound, service, shutdown.clone()));
        let state = call_state(&path, &Request::State).await;
        assert_eq!(
            state.config[0],
            ConfigValue {
                key: "interval".into(),
                value: json!(60),
                source: config::Source::Default
            }
        );
        let reload = Request::Reload { config: Some(json!({"interval": 7})) };
        let state = call_state(&path, &reload).await;
        assert_eq!(
            state.config[0],
            ConfigValue { key: "interval".into(), value: json!(7), source: config::Source::Snapd }
        );
        assert_eq!(rx.borrow().interval, 7);
        let bad = Request::Reload { config: Some(json!({"interval": 0, "port": -1})) };
        let err = call(&path, &bad, CALL_TIMEOUT).await.unwrap_err().to_string();
        assert_eq!(err.lines().count(), 2, "{err}");
        assert_eq!(rx.borrow().interval, 7);
        shutdown.cancel();
        server.await.unwrap();
        assert!(!path.exists());
        let gone = call(&path, &Request::State, CALL_TIMEOUT).await.unwrap_err();
        assert!(matches!(gone, CallError::NotRunning(_)), "{gone:?}");
    }

    fn service(dir: &tempfile::TempDir) -> (Arc<ConfigService>, watch::Receiver<Config>) {
        let (tx, rx) = watch::channel(Config::default());
        let source = ConfigSource::new(
            crate::snapd::Client::new(Arc::new(crate::snapd::socket::UnixTransport::new(
                dir.path().join("none"),
            ))),
            None,
        );
        (Arc::new(ConfigService::new(source, Settings::new(), Loaded::default(), tx)), rx)
    }

    async fn call_state(path: &Path, req: &Request) -> State {
        serde_json::from_value(call(path, req, CALL_TIMEOUT).await.unwrap()).unwrap()
    }

    #[test]
    fn a_reload_whose_config_is_not_an_object_is_refused() {
        for line in [
            r#"{"command":"reload","config":"x"}"#,
            r#"{"command":"reload","config":[1,2]}"#,
            r#"{"command":"reload","config":42}"#,
        ] {
            let err = decode_request(line).unwrap_err();
            assert!(err.contains("must be an object of keys"), "{line}: {err}");
        }
    }

    #[test]
    fn request_bytes_must_be_a_whole_utf8_line() {
        assert_eq!(decode_request_bytes(b"{\"command\":\"state\"}\n"), Ok(Request::State));
        assert!(decode_request_bytes(b"{\"command\":\"state\"}")
            .unwrap_err()
            .contains("incomplete"));
        assert!(decode_request_bytes(b"\xff\xfe\n").unwrap_err().contains("not UTF-8"));
        let long = vec![b'x'; MAX_LINE];
        assert!(decode_request_bytes(&long).unwrap_err().contains("longer than"));
    }

    #[tokio::test]
    async fn a_second_daemon_leaves_the_live_socket_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let (service, _rx) = service(&dir);
        let first = bind(&path).unwrap();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(first, service, shutdown.clone()));
        let err = bind(&path).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
        // The first daemon still answers.
        call_state(&path, &Request::State).await;
        shutdown.cancel();
        server.await.unwrap();
        // A socket file nobody listens on is stale and replaced.
        let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(stale);
        let again = bind(&path).unwrap();
        // A socket replaced under us is not ours to remove.
        std::fs::remove_file(&path).unwrap();
        let other = std::os::unix::net::UnixListener::bind(&path).unwrap();
        again.remove();
        assert!(path.exists(), "removed a socket it did not make");
        drop(other);
    }

    #[tokio::test]
    async fn bad_requests_get_a_reply_and_silent_clients_are_dropped() {
        use tokio::io::AsyncReadExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let (service, rx) = service(&dir);
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(bind(&path).unwrap(), service, shutdown.clone()));
        let ask = |bytes: &'static [u8]| {
            let path = path.clone();
            async move {
                let mut stream = UnixStream::connect(&path).await.unwrap();
                stream.write_all(bytes).await.unwrap();
                let mut reply = String::new();
                stream.read_to_string(&mut reply).await.unwrap();
                serde_json::from_str::<Reply>(&reply).unwrap()
            }
        };
        let reply = ask(b"\xff\xfe\n").await;
        assert!(!reply.ok && reply.error.unwrap().contains("not UTF-8"));
        let reply = ask(b"{\"command\":\"reload\",\"config\":\"x\"}\n").await;
        assert!(!reply.ok && reply.error.unwrap().contains("must be an object"));
        assert_eq!(*rx.borrow(), Config::default(), "nothing was reset");
        // A client that never finishes its line is answered and dropped after READ_TIMEOUT.
        let started = std::time::Instant::now();
        let reply = ask(b"{\"command\":").await;
        assert!(reply.error.unwrap().contains("no complete line"));
        assert!(started.elapsed() < READ_TIMEOUT * 4);
        shutdown.cancel();
        server.await.unwrap();
    }
}
