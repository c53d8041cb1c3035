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
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::{self, Config, Flags, Loaded};
use crate::snapd::conf::{ConfigSource, Via};

/// Overrides the control socket path (tests, running outside a snap).
pub const SOCKET_ENV: &str = "POCKETSES_CONTROL_SOCKET";
/// File name of the socket in `$SNAP_DATA`.
pub const SOCKET_NAME: &str = "control.sock";
/// Longest request line accepted.
pub const MAX_LINE: usize = 1 << 20;
/// Time limit of one client call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the daemon reads its configuration from snapd: inside a snap, or when a snapd socket
/// is named explicitly (`POCKETSES_SNAPD_SOCKET`).
pub fn uses_snapd(source: &ConfigSource) -> bool {
    source.in_snap() || std::env::var_os(crate::snapd::SNAPD_SOCKET_ENV).is_some()
}

/// The control socket path: `POCKETSES_CONTROL_SOCKET`, else `$SNAP_DATA/control.sock`, else none.
pub fn socket_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(SOCKET_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("SNAP_DATA")
        .filter(|p| !p.is_empty())
        .map(|dir| PathBuf::from(dir).join(SOCKET_NAME))
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

/// Decodes one request line. \[pure\]
///
/// # Errors
/// A message in snapd's grammar when the line is not a request.
pub fn decode_request(line: &str) -> Result<Request, String> {
    serde_json::from_str(line.trim()).map_err(|err| format!("cannot decode control request: {err}"))
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
            Err(err) => return Err(io(err.to_string())),
        };
        let (read, mut write) = stream.into_split();
        write.write_all(encode_line(req).as_bytes()).await.map_err(|e| io(e.to_string()))?;
        let mut line = String::new();
        BufReader::new(read).read_line(&mut line).await.map_err(|e| io(e.to_string()))?;
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

/// Binds the socket, replacing a stale one, with mode 0600.
///
/// # Errors
/// When the directory is missing or the socket cannot be bound.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            std::fs::remove_file(path)?;
        }
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves requests until `shutdown`; removes the socket file on the way out.
pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    handler: Arc<dyn Handler>,
    shutdown: CancellationToken,
) {
    let owner = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&path).map(|m| m.uid()).ok()
    };
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
        // Mode 0600 already keeps others out; the peer check also covers a socket made in a laxer umask.
        let allowed = match (stream.peer_cred(), owner) {
            (Ok(cred), Some(owner)) => cred.uid() == 0 || cred.uid() == owner,
            _ => false,
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            if let Err(err) = connection(stream, allowed, handler).await {
                debug!(error = %err, "control connection ended");
            }
        });
    }
    let _ = std::fs::remove_file(&path);
}

async fn connection(
    stream: UnixStream,
    allowed: bool,
    handler: Arc<dyn Handler>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(MAX_LINE as u64));
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let reply = if !allowed {
        Reply::from_result(Err("access denied".to_string()))
    } else {
        match decode_request(&line) {
            Ok(req) => Reply::from_result(handler.handle(req).await),
            Err(err) => Reply::from_result(Err(err)),
        }
    };
    write.write_all(encode_line(&reply).as_bytes()).await?;
    write.shutdown().await
}

use tokio::io::AsyncReadExt as _;

/// Extra state the daemon adds to `state` replies (listeners, subscribers, …).
pub type StateFn = Box<dyn Fn() -> Value + Send + Sync>;

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
    flags: Flags,
    tx: watch::Sender<Config>,
    state: Mutex<ServiceState>,
    extra: Option<StateFn>,
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
    /// A service that sends configurations to `tx`; `flags` win over snapd.
    pub fn new(source: ConfigSource, flags: Flags, tx: watch::Sender<Config>) -> Self {
        let loaded = Loaded::default().with_flags(&flags);
        ConfigService {
            source,
            flags,
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
            started: now_secs(),
        }
    }

    /// Adds daemon state (listeners, subscribers) to `state` replies.
    #[must_use]
    pub fn with_state(mut self, extra: StateFn) -> Self {
        self.extra = Some(extra);
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
        config::from_document(doc).map(|loaded| loaded.with_flags(&self.flags)).map_err(
            |problems| problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"),
        )
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
    pub fn state_json(&self) -> Value {
        let state = self.lock();
        let config = &state.loaded.config;
        let effective: serde_json::Map<String, Value> = config::KEYS
            .iter()
            .filter(|k| k.name != config::SCHEMA_VERSION_KEY)
            .filter_map(|k| {
                let source =
                    state.loaded.sources.get(k.name).copied().unwrap_or(config::Source::Default);
                config
                    .value_of(k.name)
                    .map(|v| (k.name.to_string(), json!({"value": v, "source": source.as_str()})))
            })
            .collect();
        let mut out = json!({
            "pid": std::process::id(),
            "started": self.started,
            "config-via": state.via.map(Via::as_str),
            "config": effective,
            "unknown-keys": state.loaded.unknown,
            "reloads": state.reloads,
            "last-reload": state.last_reload,
            "last-error": state.last_error,
        });
        drop(state);
        if let Some(extra) = &self.extra {
            out["daemon"] = extra();
        }
        out
    }

    async fn handle_request(&self, req: Request) -> Result<Value, String> {
        match req {
            Request::State => Ok(self.state_json()),
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
    path: Option<PathBuf>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let listener = match &path {
        Some(path) => Some(
            bind(path)
                .with_context(|| format!("cannot listen on control socket {}", path.display()))?,
        ),
        None => None,
    };
    let loader = {
        let service = service.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            if service.uses_snapd() && !service.has_loaded() {
                service.load_with_retry(&shutdown).await;
            }
        })
    };
    if let (Some(listener), Some(path)) = (listener, path) {
        info!(socket = %path.display(), "control socket listening");
        serve(listener, path, service, shutdown.clone()).await;
    } else {
        shutdown.cancelled().await;
    }
    loader.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let (tx, rx) = watch::channel(Config::default());
        let source = ConfigSource::new(
            crate::snapd::Client::new(Arc::new(crate::snapd::socket::UnixTransport::new(
                dir.path().join("none"),
            ))),
            None,
        );
        let service = Arc::new(ConfigService::new(source, Flags::default(), tx));
        let listener = bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(listener, path.clone(), service, shutdown.clone()));
        let state = call(&path, &Request::State, CALL_TIMEOUT).await.unwrap();
        assert_eq!(state["config"]["interval"], json!({"value": 60, "source": "default"}));
        let reload = Request::Reload { config: Some(json!({"interval": 7})) };
        let state = call(&path, &reload, CALL_TIMEOUT).await.unwrap();
        assert_eq!(state["config"]["interval"], json!({"value": 7, "source": "snapd"}));
        assert_eq!(rx.borrow().interval, 7);
        let bad = Request::Reload { config: Some(json!({"interval": 0, "port": 0})) };
        let err = call(&path, &bad, CALL_TIMEOUT).await.unwrap_err().to_string();
        assert_eq!(err.lines().count(), 2, "{err}");
        assert_eq!(rx.borrow().interval, 7);
        shutdown.cancel();
        server.await.unwrap();
        assert!(!path.exists());
        let gone = call(&path, &Request::State, CALL_TIMEOUT).await.unwrap_err();
        assert!(matches!(gone, CallError::NotRunning(_)), "{gone:?}");
    }
}
