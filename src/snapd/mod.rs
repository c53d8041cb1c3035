//! Client for snapd's REST API over its unix sockets, and the snapctl protocol.
//!
//! [`Client`] turns typed calls into [`Request`]s, sends them through a [`Transport`]
//! (the real one is [`socket::UnixTransport`]; tests pass canned replies) under a timeout,
//! and decodes snapd's envelope ([`envelope`]) into the types in [`types`].
//! It never spawns `snap` or `snapctl`: both sockets are spoken to directly.
//! Retrying while snapd restarts is the caller's choice ([`Error::is_retryable`], [`backoff`]).

pub mod conf;
pub mod envelope;
mod error;
pub mod multipart;
pub mod snapctl;
pub mod socket;
pub mod types;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

pub use error::{kind, Error};
pub use types::{
    App, AssertionText, Change, Connection, Connections, Headers, Plug, PlugRef, Progress, SlotRef,
    Snap, SnapHealth, Status, SystemInfo, Task, Warning,
};

/// snapd's full API socket.
pub const SNAPD_SOCKET: &str = "/run/snapd.socket";
/// snapd's snap-facing socket, the one snapctl uses.
pub const SNAPCTL_SOCKET: &str = "/run/snapd-snap.socket";
/// Overrides [`SNAPD_SOCKET`] (tests, unusual hosts).
pub const SNAPD_SOCKET_ENV: &str = "POCKETSES_SNAPD_SOCKET";
/// Overrides [`SNAPCTL_SOCKET`].
pub const SNAPCTL_SOCKET_ENV: &str = "POCKETSES_SNAPCTL_SOCKET";
/// Time limit of one call unless [`Client::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// This snap's name in snapd.
pub const SNAP_NAME: &str = "pocketses";

/// Path of snapd's API socket, honouring [`SNAPD_SOCKET_ENV`].
pub fn snapd_socket_path() -> PathBuf {
    socket_from_env(SNAPD_SOCKET_ENV, SNAPD_SOCKET)
}

/// Path of snapd's snap socket, honouring [`SNAPCTL_SOCKET_ENV`].
pub fn snapctl_socket_path() -> PathBuf {
    socket_from_env(SNAPCTL_SOCKET_ENV, SNAPCTL_SOCKET)
}

fn socket_from_env(var: &str, default: &str) -> PathBuf {
    crate::paths::env_path(var).unwrap_or_else(|| PathBuf::from(default))
}

/// HTTP methods snapd's API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// PUT.
    Put,
    /// POST.
    Post,
}

/// One HTTP request to snapd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Path and query, already encoded (`/v2/changes?select=all`).
    pub path: String,
    /// Content-Type of the body.
    pub content_type: Option<String>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Request {
    /// A GET of `path`.
    pub fn get(path: impl Into<String>) -> Self {
        Request { method: Method::Get, path: path.into(), content_type: None, body: Vec::new() }
    }

    /// A request with a JSON body.
    pub fn json(method: Method, path: impl Into<String>, body: &Value) -> Self {
        Request {
            method,
            path: path.into(),
            content_type: Some("application/json".to_string()),
            body: body.to_string().into_bytes(),
        }
    }
}

/// One HTTP response from snapd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Content-Type header.
    pub content_type: Option<String>,
    /// `X-Ubuntu-Assertions-Count` header.
    pub assertions_count: Option<usize>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// A request body sent from files, with pieces held in memory around them: a multipart form
/// around snap files (`head`, then each file's first `len` bytes followed by its `after`).
#[derive(Debug)]
pub struct FileBody {
    /// Bytes before the first file's.
    pub head: Vec<u8>,
    /// The files, in order, each with the bytes that follow it.
    pub files: Vec<FilePart>,
}

/// One file of a [`FileBody`].
#[derive(Debug)]
pub struct FilePart {
    /// The file, open for reading at its start.
    pub file: std::fs::File,
    /// How many of its bytes are sent.
    pub len: u64,
    /// Bytes after the file's.
    pub after: Vec<u8>,
}

impl FileBody {
    /// One file between `head` and `tail` (a snap installed from a file).
    pub fn around(head: Vec<u8>, file: std::fs::File, len: u64, tail: Vec<u8>) -> FileBody {
        FileBody { head, files: vec![FilePart { file, len, after: tail }] }
    }

    /// The body's length.
    pub fn len(&self) -> u64 {
        self.files.iter().fold(self.head.len() as u64, |n, f| n + f.len + f.after.len() as u64)
    }

    /// Whether the body has no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Carries requests to snapd; the real one is [`socket::UnixTransport`].
pub trait Transport: Send + Sync {
    /// Sends one request and reads the whole response.
    fn round_trip(
        &self,
        req: Request,
    ) -> Pin<Box<dyn Future<Output = Result<Response, Error>> + Send + '_>>;

    /// Sends `req` with `body` as its body (`req.body` is ignored). [`socket::UnixTransport`]
    /// streams the file, so a large snap never sits in memory; this default, for transports
    /// of canned replies, reads it whole.
    fn round_trip_file(
        &self,
        mut req: Request,
        body: FileBody,
    ) -> Pin<Box<dyn Future<Output = Result<Response, Error>> + Send + '_>> {
        Box::pin(async move {
            use std::io::Read as _;
            let FileBody { head, files } = body;
            let mut data = head;
            for FilePart { file, len, after } in files {
                file.take(len)
                    .read_to_end(&mut data)
                    .map_err(|e| Error::Http(format!("cannot read the body: {e}")))?;
                data.extend_from_slice(&after);
            }
            req.body = data;
            self.round_trip(req).await
        })
    }

    /// Where requests go, for messages (a socket path).
    fn describe(&self) -> String;
}

/// Which changes to list (`GET /v2/changes?select=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChangeSelect {
    /// Every change.
    All,
    /// Not ready yet (snapd's default).
    #[default]
    InProgress,
    /// Ready ones.
    Ready,
}

impl ChangeSelect {
    fn as_str(self) -> &'static str {
        match self {
            ChangeSelect::All => "all",
            ChangeSelect::InProgress => "in-progress",
            ChangeSelect::Ready => "ready",
        }
    }
}

/// A typed snapd client over any [`Transport`].
#[derive(Clone)]
pub struct Client {
    transport: Arc<dyn Transport>,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("transport", &self.transport.describe())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Client {
    /// A client over `transport` with [`DEFAULT_TIMEOUT`].
    pub fn new(transport: Arc<dyn Transport>) -> Self {
        Client { transport, timeout: DEFAULT_TIMEOUT }
    }

    /// A client of snapd's API socket ([`snapd_socket_path`]).
    pub fn from_env() -> Self {
        Client::new(Arc::new(socket::UnixTransport::new(snapd_socket_path())))
    }

    /// Sets the time limit of every call.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Where this client sends requests (a socket path).
    pub fn target(&self) -> String {
        self.transport.describe()
    }

    /// Sends a raw request under the timeout.
    ///
    /// # Errors
    /// [`Error::Timeout`] or the transport's error.
    pub async fn send(&self, req: Request) -> Result<Response, Error> {
        match tokio::time::timeout(self.timeout, self.transport.round_trip(req)).await {
            Ok(res) => res,
            Err(_) => Err(Error::Timeout { after: self.timeout }),
        }
    }

    /// Sends a request and decodes the envelope.
    ///
    /// # Errors
    /// Transport errors, or snapd's error envelope as [`Error::Api`].
    pub async fn call(&self, req: Request) -> Result<envelope::Envelope, Error> {
        let res = self.send(req).await?;
        envelope::decode(res.status, &res.body)
    }

    async fn get_sync<T: serde::de::DeserializeOwned>(&self, path: String) -> Result<T, Error> {
        self.call(Request::get(path)).await?.into_sync()
    }

    /// `GET /v2/system-info`.
    ///
    /// # Errors
    /// See [`Client::call`].
    pub async fn system_info(&self) -> Result<SystemInfo, Error> {
        self.get_sync("/v2/system-info".to_string()).await
    }

    /// `GET /v2/snaps`: the installed snaps.
    ///
    /// # Errors
    /// See [`Client::call`].
    pub async fn snaps(&self) -> Result<Vec<Snap>, Error> {
        self.get_sync("/v2/snaps".to_string()).await
    }

    /// `GET /v2/snaps/{name}`; `snap-not-found` when absent.
    ///
    /// # Errors
    /// See [`Client::call`].
    pub async fn snap(&self, name: &str) -> Result<Snap, Error> {
        self.get_sync(format!("/v2/snaps/{}", encode(name))).await
    }

    /// `GET /v2/find?name={name}`: whether the store has a snap of exactly this name.
    ///
    /// snapd asks its store for the snap's details (`store.SnapInfo`, the store's
    /// `v2/snaps/info/{name}`) and answers 404 `snap-not-found` ("snap not found") when the
    /// store has none.
    ///
    /// # Errors
    /// `snap-not-found` when the store has no such snap, or see [`Client::call`].
    pub async fn find_name(&self, name: &str) -> Result<(), Error> {
        let _: Value = self.get_sync(format!("/v2/find?name={}", encode(name))).await?;
        Ok(())
    }

    /// `GET /v2/snaps/{name}/conf`: the whole document when `keys` is empty, else an object
    /// keyed by the requested (dotted) keys; an unset key is `option-not-found`.
    ///
    /// # Errors
    /// See [`Client::call`].
    pub async fn get_conf(&self, name: &str, keys: &[&str]) -> Result<Value, Error> {
        let mut path = format!("/v2/snaps/{}/conf", encode(name));
        if !keys.is_empty() {
            let keys: Vec<String> = keys.iter().map(|k| encode(k)).collect();
            path = format!("{path}?keys={}", keys.join(","));
        }
        self.get_sync(path).await
    }

    /// `PUT /v2/snaps/{name}/conf` with a patch of dotted keys (`null` unsets); returns the change id.
    ///
    /// # Errors
    /// See [`Client::call`]; `snap-change-conflict` while another change runs.
    pub async fn set_conf(
        &self,
        name: &str,
        patch: &serde_json::Map<String, Value>,
    ) -> Result<String, Error> {
        let req = Request::json(
            Method::Put,
            format!("/v2/snaps/{}/conf", encode(name)),
            &Value::Object(patch.clone()),
        );
        self.call(req).await?.into_change_id()
    }

    /// `GET /v2/model`: the model assertion as text.
    ///
    /// # Errors
    /// `assertion-not-found` before the device has a model, or see [`Client::call`].
    pub async fn model(&self) -> Result<String, Error> {
        self.assertion_text("/v2/model").await
    }

    /// `GET /v2/model/serial`: the serial assertion as text.
    ///
    /// # Errors
    /// `assertion-not-found` before registration, or see [`Client::call`].
    pub async fn serial(&self) -> Result<String, Error> {
        self.assertion_text("/v2/model/serial").await
    }

    /// `GET /v2/model?json=headers` (or the serial): the assertion's headers.
    ///
    /// # Errors
    /// See [`Client::model`].
    pub async fn model_headers(&self, serial: bool) -> Result<Headers, Error> {
        let path = if serial { "/v2/model/serial?json=headers" } else { "/v2/model?json=headers" };
        let res: Value = self.get_sync(path.to_string()).await?;
        serde_json::from_value(res.get("headers").cloned().unwrap_or_default())
            .map_err(|err| Error::Decode(format!("assertion headers: {err}")))
    }

    async fn assertion_text(&self, path: &str) -> Result<String, Error> {
        Ok(self.assertions_at(path.to_string()).await?.text)
    }

    async fn assertions_at(&self, path: String) -> Result<AssertionText, Error> {
        let res = self.send(Request::get(path)).await?;
        let is_assertion = res
            .content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/x.ubuntu.assertion"));
        if res.status != 200 || !is_assertion {
            // Errors come as an envelope; a 200 without the assertion type is a protocol surprise.
            envelope::decode(res.status, &res.body)?;
            return Err(Error::Decode(format!(
                "expected application/x.ubuntu.assertion, got {}",
                res.content_type.as_deref().unwrap_or("no content type")
            )));
        }
        let text = String::from_utf8(res.body)
            .map_err(|_| Error::Decode("assertion is not UTF-8".into()))?;
        let count = res.assertions_count.unwrap_or(usize::from(!text.trim().is_empty()));
        Ok(AssertionText { text, count })
    }

    /// `GET /v2/changes?select=…[&for=snap]`.
    ///
    /// # Errors
    /// See [`Client::call`].
    pub async fn changes(
        &self,
        select: ChangeSelect,
        for_snap: Option<&str>,
    ) -> Result<Vec<Change>, Error> {
        let mut path = format!("/v2/changes?select={}", select.as_str());
        if let Some(snap) = for_snap {
            path = format!("{path}&for={}", encode(snap));
        }
        self.get_sync(path).await
    }

    /// `GET /v2/changes/{id}`.
    ///
    /// # Errors
    /// 404 when there is no such change, or see [`Client::call`].
    pub async fn change(&self, id: &str) -> Result<Change, Error> {
        self.get_sync(format!("/v2/changes/{}", encode(id))).await
    }

    /// `POST /v2/changes/{id}` `{"action":"abort"}`; returns the updated change.
    ///
    /// # Errors
    /// 400 `cannot abort change N with nothing pending` when ready, or see [`Client::call`].
    pub async fn abort_change(&self, id: &str) -> Result<Change, Error> {
        let body = serde_json::json!({"action": "abort"});
        let req = Request::json(Method::Post, format!("/v2/changes/{}", encode(id)), &body);
        self.call(req).await?.into_sync()
    }

    /// `GET /v2/connections[?snap=…]` (connected ones only).
    ///
    /// # Errors
    /// See [`Client::call`].
    pub async fn connections(&self, snap: Option<&str>) -> Result<Connections, Error> {
        let path = match snap {
            Some(snap) => format!("/v2/connections?snap={}", encode(snap)),
            None => "/v2/connections".to_string(),
        };
        self.get_sync(path).await
    }

    /// Whether `snap:plug` is connected.
    ///
    /// # Errors
    /// See [`Client::call`].
    pub async fn is_connected(&self, snap: &str, plug: &str) -> Result<bool, Error> {
        Ok(self.connections(Some(snap)).await?.is_connected(snap, plug))
    }

    /// `GET /v2/assertions/{type}?header=value…`: zero or more assertions as text.
    ///
    /// # Errors
    /// 400 for an unknown type, or see [`Client::call`].
    pub async fn assertions(
        &self,
        assertion_type: &str,
        headers: &[(&str, &str)],
    ) -> Result<AssertionText, Error> {
        let mut path = format!("/v2/assertions/{}", encode(assertion_type));
        let query: Vec<String> =
            headers.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
        if !query.is_empty() {
            path = format!("{path}?{}", query.join("&"));
        }
        self.assertions_at(path).await
    }

    /// `GET /v2/warnings?select=pending|all`.
    ///
    /// # Errors
    /// See [`Client::call`].
    pub async fn warnings(&self, all: bool) -> Result<Vec<Warning>, Error> {
        let select = if all { "all" } else { "pending" };
        let res: Value = self.get_sync(format!("/v2/warnings?select={select}")).await?;
        if res.is_null() {
            return Ok(Vec::new());
        }
        serde_json::from_value(res).map_err(|err| Error::Decode(err.to_string()))
    }

    /// `POST /v2/model` with the new signed model (remodel); returns the change id.
    ///
    /// # Errors
    /// 400 `cannot remodel device: …`, or see [`Client::call`].
    pub async fn post_model(&self, new_model: &str, offline: bool) -> Result<String, Error> {
        let body = serde_json::json!({"new-model": new_model, "offline": offline});
        self.call(Request::json(Method::Post, "/v2/model", &body)).await?.into_change_id()
    }

    /// `POST /v2/model` as multipart form (offline remodel with local assertions and snaps);
    /// returns the change id. The snaps are streamed from their files, never read whole (a
    /// kernel or a base is hundreds of megabytes), and the time limit is at least
    /// [`SIDELOAD_TIMEOUT`] when there are any: snapd answers once it has read them all.
    ///
    /// # Errors
    /// As [`Client::post_model`]; a snap file that cannot be opened or read is [`Error::Http`].
    pub async fn post_model_multipart(
        &self,
        new_model: &str,
        assertions: &[String],
        snaps: &[multipart::SnapFile],
    ) -> Result<String, Error> {
        let boundary = multipart::random_boundary(rand::random::<u128>());
        let names: Vec<&str> = snaps.iter().map(|s| s.filename.as_str()).collect();
        let (content_type, head, afters) =
            multipart::remodel_form_around(new_model, assertions, &names, &boundary);
        let mut files = Vec::with_capacity(snaps.len());
        for (snap, after) in snaps.iter().zip(afters) {
            let cannot = |e: std::io::Error| {
                Error::Http(format!(
                    "cannot read snap {}: {}",
                    snap.path.display(),
                    crate::error::describe_io(&e)
                ))
            };
            let file = std::fs::File::open(&snap.path).map_err(cannot)?;
            let len = file.metadata().map_err(cannot)?.len();
            files.push(FilePart { file, len, after });
        }
        let req = Request {
            method: Method::Post,
            path: "/v2/model".to_string(),
            content_type: Some(content_type),
            body: Vec::new(),
        };
        if files.is_empty() {
            return self.call(Request { body: head, ..req }).await?.into_change_id();
        }
        let body = FileBody { head, files };
        self.send_files(req, body).await
    }
}

impl Client {
    /// `POST /v2/assertions`: adds one or more assertions (raw text, blank-line separated) to
    /// snapd's database; snapd checks each against what it already trusts.
    ///
    /// # Errors
    /// 400 `assert failed: …` (snapd's words), or see [`Client::call`].
    pub async fn add_assertions(&self, text: &[u8]) -> Result<(), Error> {
        let req = Request {
            method: Method::Post,
            path: "/v2/assertions".to_string(),
            content_type: Some("application/x.ubuntu.assertion".to_string()),
            body: text.to_vec(),
        };
        self.call(req).await?.into_sync::<Value>().map(drop)
    }

    /// `POST /v2/snaps` as the multipart form `snap install FILE` sends: installs or refreshes
    /// a snap from a file; `dangerous` skips snapd's signature check. Returns the change id.
    ///
    /// The call's time limit is at least [`SIDELOAD_TIMEOUT`]: snapd answers only once it has
    /// read the whole file.
    ///
    /// # Errors
    /// 400 `cannot find signatures with metadata for snap "…"` and the like, or see [`Client::call`].
    pub async fn install_snap_file(
        &self,
        snap_path: &str,
        data: &[u8],
        dangerous: bool,
    ) -> Result<String, Error> {
        let form = multipart::install_form(snap_path, data, dangerous);
        let req = Request {
            method: Method::Post,
            path: "/v2/snaps".to_string(),
            content_type: Some(form.content_type),
            body: form.body,
        };
        let client = self.clone().with_timeout(self.timeout.max(SIDELOAD_TIMEOUT));
        client.call(req).await?.into_change_id()
    }

    /// [`Client::install_snap_file`] with the snap streamed from `file` (its first `len`
    /// bytes) instead of held in memory: the form around it is built first, and the file's
    /// bytes go to snapd as they are read.
    ///
    /// # Errors
    /// As [`Client::install_snap_file`]; a file that cannot be read is [`Error::Http`].
    pub async fn install_snap_from(
        &self,
        snap_path: &str,
        file: std::fs::File,
        len: u64,
        dangerous: bool,
    ) -> Result<String, Error> {
        let boundary = multipart::random_boundary(rand::random::<u128>());
        let (content_type, head, tail) =
            multipart::install_form_around(snap_path, dangerous, &boundary);
        let req = Request {
            method: Method::Post,
            path: "/v2/snaps".to_string(),
            content_type: Some(content_type),
            body: Vec::new(),
        };
        let body = FileBody::around(head, file, len, tail);
        self.send_files(req, body).await
    }

    /// Sends `req` with `body` (a form around snap files, streamed from disk) and returns the
    /// change id; the time limit is at least [`SIDELOAD_TIMEOUT`]: snapd answers once it has
    /// read every file.
    async fn send_files(&self, req: Request, body: FileBody) -> Result<String, Error> {
        let timeout = self.timeout.max(SIDELOAD_TIMEOUT);
        let res =
            match tokio::time::timeout(timeout, self.transport.round_trip_file(req, body)).await {
                Ok(res) => res?,
                Err(_) => return Err(Error::Timeout { after: timeout }),
            };
        envelope::decode(res.status, &res.body)?.into_change_id()
    }
}

/// Least time limit of [`Client::install_snap_file`].
pub const SIDELOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// Delay before retry number `attempt` (0-based): 100 ms doubling up to 5 s.
pub fn backoff(attempt: u32) -> Duration {
    let ms = 100u64.saturating_mul(1u64 << attempt.min(6));
    Duration::from_millis(ms.min(5_000))
}

/// Percent-encodes a path segment or query value (RFC 3986 unreserved characters stay).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Canned replies, recording what was asked.
    struct Canned {
        replies: Mutex<Vec<Response>>,
        seen: Mutex<Vec<Request>>,
    }

    impl Canned {
        fn client(replies: Vec<Response>) -> (Client, Arc<Canned>) {
            let canned =
                Arc::new(Canned { replies: Mutex::new(replies), seen: Mutex::new(Vec::new()) });
            (Client::new(canned.clone()), canned)
        }
    }

    impl Transport for Canned {
        fn round_trip(
            &self,
            req: Request,
        ) -> Pin<Box<dyn Future<Output = Result<Response, Error>> + Send + '_>> {
            self.seen.lock().unwrap().push(req);
            let reply = self.replies.lock().unwrap().remove(0);
            Box::pin(async move { Ok(reply) })
        }
        fn describe(&self) -> String {
            "canned".into()
        }
    }

    fn json(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: Some("application/json".into()),
            assertions_count: None,
            body: body.as_bytes().to_vec(),
        }
    }

    #[tokio::test]
    async fn get_conf_builds_keys_query() {
        let (client, canned) = Canned::client(vec![json(
            200,
            r#"{"type":"sync","status-code":200,"status":"OK","result":{"http.port":1}}"#,
        )]);
        let v = client.get_conf("pocketses", &["http.port", "interval"]).await.unwrap();
        assert_eq!(v["http.port"], 1);
        assert_eq!(
            canned.seen.lock().unwrap()[0].path,
            "/v2/snaps/pocketses/conf?keys=http.port,interval"
        );
    }

    #[tokio::test]
    async fn set_conf_returns_change_and_sends_nulls() {
        let (client, canned) = Canned::client(vec![json(
            202,
            r#"{"type":"async","status-code":202,"status":"Accepted","result":null,"change":"7"}"#,
        )]);
        let mut patch = serde_json::Map::new();
        patch.insert("interval".into(), Value::from(30));
        patch.insert("log.level".into(), Value::Null);
        assert_eq!(client.set_conf("pocketses", &patch).await.unwrap(), "7");
        let seen = canned.seen.lock().unwrap();
        assert_eq!(seen[0].method, Method::Put);
        let body: Value = serde_json::from_slice(&seen[0].body).unwrap();
        assert_eq!(body, serde_json::json!({"interval": 30, "log.level": null}));
    }

    #[tokio::test]
    async fn model_is_text_and_errors_are_envelopes() {
        let model = Response {
            status: 200,
            content_type: Some("application/x.ubuntu.assertion".into()),
            assertions_count: Some(1),
            body: b"type: model\n".to_vec(),
        };
        let missing = json(
            404,
            r#"{"type":"error","status-code":404,"status":"Not Found","result":{"message":"no serial assertion yet","kind":"assertion-not-found","value":"serial"}}"#,
        );
        let (client, _) = Canned::client(vec![model, missing]);
        assert_eq!(client.model().await.unwrap(), "type: model\n");
        let err = client.serial().await.unwrap_err();
        assert!(err.is_kind(kind::ASSERTION_NOT_FOUND), "{err:?}");
    }

    #[tokio::test]
    async fn timeout_is_its_own_error() {
        struct Never;
        impl Transport for Never {
            fn round_trip(
                &self,
                _: Request,
            ) -> Pin<Box<dyn Future<Output = Result<Response, Error>> + Send + '_>> {
                Box::pin(std::future::pending())
            }
            fn describe(&self) -> String {
                "never".into()
            }
        }
        let client = Client::new(Arc::new(Never)).with_timeout(Duration::from_millis(20));
        let err = client.system_info().await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
        assert!(err.is_retryable());
    }

    #[tokio::test]
    async fn changes_query_and_abort() {
        let (client, canned) = Canned::client(vec![
            json(200, r#"{"type":"sync","status-code":200,"status":"OK","result":[]}"#),
            json(
                200,
                r#"{"type":"sync","status-code":200,"status":"OK","result":{"id":"3","status":"Abort","ready":false,"tasks":[]}}"#,
            ),
        ]);
        assert!(client.changes(ChangeSelect::All, Some("pocketses")).await.unwrap().is_empty());
        let change = client.abort_change("3").await.unwrap();
        assert_eq!(change.status, Status::Abort);
        let seen = canned.seen.lock().unwrap();
        assert_eq!(seen[0].path, "/v2/changes?select=all&for=pocketses");
        assert_eq!(seen[1].path, "/v2/changes/3");
        assert_eq!(seen[1].body, br#"{"action":"abort"}"#);
    }

    #[test]
    fn encode_and_backoff() {
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
        assert_eq!(encode("snap-name_1.x"), "snap-name_1.x");
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(3), Duration::from_millis(800));
        assert_eq!(backoff(40), Duration::from_secs(5));
    }
}
