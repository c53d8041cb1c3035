//! A fake snapd for tests: snapd's exact envelope on two unix sockets in a temp dir.
//!
//! `snapd.socket` serves the REST API, `snapd-snap.socket` serves the same plus `POST /v2/snapctl`.
//! It records every request, keeps a configuration document, snaps, model and serial text,
//! connections, warnings and assertions, and plays scripted changes: each `GET /v2/changes/{id}`
//! advances one step; a [`Step::Gone`] step drops the connection and removes both sockets for a
//! while, as snapd does when it restarts.
//! It runs on its own thread and runtime, so it works from `#[test]` and `#[tokio::test]` alike.
//!
//! [`FakeSnapd::start_captured`] starts it as the host where replies were captured from a real
//! snapd (`tests/fixtures/snapd/`, listed in its `index`): each captured request gets the
//! captured reply byte for byte ([`State::captured`]), and everything else is answered from a
//! state built from those replies. `tests/snapd_captured.rs` checks that the replies this fake
//! builds itself, in that state, equal the captured ones.
//!
//! ```ignore
//! let fake = FakeSnapd::start();
//! fake.set_conf(json!({"interval": 30}));
//! std::env::set_var("POCKETSES_SNAPD_SOCKET", fake.snapd_socket());
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tokio::net::UnixListener;
use tokio::sync::oneshot;

/// The context id the fake accepts for snapctl (pass it as `SNAP_COOKIE`).
pub const COOKIE: &str = "fake-cookie-0123456789";

/// A recorded request.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// `snapd` or `snapctl`: which socket it came in on.
    pub socket: &'static str,
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Content-Type header.
    pub content_type: Option<String>,
    /// Body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// The body as JSON (Null when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// For snapctl requests, the args.
    pub fn snapctl_args(&self) -> Vec<String> {
        serde_json::from_value(self.json()["args"].clone()).unwrap_or_default()
    }
}

/// An error reply.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorReply {
    /// HTTP status.
    pub status: u16,
    /// snapd kind.
    pub kind: Option<String>,
    /// Message.
    pub message: String,
    /// Value.
    pub value: Option<Value>,
}

impl ErrorReply {
    /// An error with a kind.
    pub fn new(status: u16, kind: Option<&str>, message: &str) -> Self {
        ErrorReply {
            status,
            kind: kind.map(str::to_string),
            message: message.to_string(),
            value: None,
        }
    }
}

/// One step of a scripted change.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The change object to serve (id is filled in).
    State(Value),
    /// snapd restarts: the connection drops and the sockets are gone for this long.
    Gone(Duration),
}

#[derive(Debug, Clone)]
struct Scripted {
    steps: Vec<Step>,
    pos: usize,
    last: Value,
}

/// Everything the fake knows; tests change it through [`FakeSnapd`] methods or [`FakeSnapd::state`].
#[derive(Debug)]
pub struct State {
    /// The snap's configuration document (nested objects).
    pub conf: Value,
    /// `GET /v2/system-info` result.
    pub system_info: Value,
    /// Installed snaps (`client.Snap` objects).
    pub snaps: Vec<Value>,
    /// Snaps the store does not have: `GET /v2/find?name=` answers them as snapd does when its
    /// store answers 404 (`snap-not-found`, "snap not found"); the store has every other name.
    pub store_lacks: Vec<String>,
    /// Model assertion text (`None`: assertion-not-found).
    pub model: Option<String>,
    /// Serial assertion text.
    pub serial: Option<String>,
    /// Connected plugs of pocketses (plug names).
    pub connected: Vec<String>,
    /// Assertions by type (raw text each).
    pub assertions: Vec<(String, String)>,
    /// Warnings (objects).
    pub warnings: Vec<Value>,
    /// Maintenance object added to sync replies.
    pub maintenance: Option<Value>,
    /// Forced errors: (method, path prefix without query) → reply.
    pub errors: Vec<(String, String, ErrorReply)>,
    /// Steps given to the next change created by `POST /v2/model`.
    pub remodel_script: Option<Vec<Step>>,
    /// Steps given to the next change created by `POST /v2/snaps` (a snap from a file);
    /// without them the change is Done at once and the snap shows as installed.
    pub install_script: Option<Vec<Step>>,
    /// The error `POST /v2/assertions` answers with (snapd's `assert failed: …`), if any.
    pub assert_refusal: Option<String>,
    /// Snap files received by `POST /v2/snaps`: (snap-path, dangerous, bytes).
    pub installed_files: Vec<(String, bool, Vec<u8>)>,
    /// Last `snapctl set-health` arguments.
    pub health: Option<Vec<String>>,
    /// Every request, in order.
    pub requests: Vec<Recorded>,
    /// Replies captured from a real snapd, served byte for byte for exactly their request
    /// (after forced errors, before anything built from the state).
    pub captured: Vec<Captured>,
    changes: BTreeMap<u64, Scripted>,
    next_change: u64,
    down_until: Option<Instant>,
}

impl Default for State {
    fn default() -> Self {
        State {
            conf: json!({}),
            system_info: json!({
                "series": "16", "version": "2.65-fake", "build-id": "fake",
                "os-release": {"id": "ubuntu-core", "version-id": "22"},
                "on-classic": false, "managed": false, "kernel-version": "5.15.0-fake",
                "locations": {"snap-mount-dir": "/snap", "snap-bin-dir": "/snap/bin"},
                "refresh": {"timer": "00:00~24:00/4"}, "architecture": "amd64",
                "system-mode": "run", "confinement": "strict"
            }),
            snaps: vec![json!({
                "id": "", "name": "pocketses", "summary": "device agent", "status": "active",
                "type": "app", "base": "core22", "version": "0.1.0", "channel": "",
                "tracking-channel": "", "revision": "x1", "confinement": "strict", "devmode": false,
                "apps": [
                    {"snap": "pocketses", "name": "pocketses"},
                    {"snap": "pocketses", "name": "daemon", "daemon": "simple", "daemon-scope": "system", "enabled": true, "active": true}
                ],
                "links": null, "contact": ""
            })],
            store_lacks: Vec::new(),
            model: Some(FAKE_MODEL.to_string()),
            serial: None,
            connected: vec!["network".into(), "network-bind".into()],
            assertions: Vec::new(),
            warnings: Vec::new(),
            maintenance: None,
            errors: Vec::new(),
            remodel_script: None,
            install_script: None,
            assert_refusal: None,
            installed_files: Vec::new(),
            health: None,
            requests: Vec::new(),
            captured: Vec::new(),
            changes: BTreeMap::new(),
            next_change: 1,
            down_until: None,
        }
    }
}

/// One reply captured from a real snapd, and the request that got it.
#[derive(Debug, Clone, PartialEq)]
pub struct Captured {
    /// The request's method.
    pub method: String,
    /// The request's path and query, exactly as sent.
    pub path: String,
    /// The HTTP status snapd answered with.
    pub status: u16,
    /// snapd's Content-Type.
    pub content_type: String,
    /// `X-Ubuntu-Assertions-Count`, for assertion replies.
    pub assertions_count: Option<usize>,
    /// The body, as snapd sent it.
    pub body: Vec<u8>,
    /// The fixture file it comes from.
    pub file: String,
}

/// The directory of captured replies.
pub fn captured_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/snapd")
}

/// Every reply listed in `tests/fixtures/snapd/index` (`METHOD PATH STATUS FILE` a line).
pub fn captured_replies() -> Vec<Captured> {
    let dir = captured_dir();
    let index =
        std::fs::read_to_string(dir.join("index")).expect("read tests/fixtures/snapd/index");
    index
        .lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [method, path, status, file] = fields[..] else {
                panic!("tests/fixtures/snapd/index: want METHOD PATH STATUS FILE, got {line:?}")
            };
            let body = std::fs::read(dir.join(file))
                .unwrap_or_else(|err| panic!("read tests/fixtures/snapd/{file}: {err}"));
            let assertion = file.ends_with(".assertion");
            Captured {
                method: method.to_string(),
                path: path.to_string(),
                status: status.parse().expect("status in tests/fixtures/snapd/index"),
                content_type: if assertion {
                    "application/x.ubuntu.assertion".to_string()
                } else {
                    "application/json".to_string()
                },
                assertions_count: assertion.then_some(1),
                body,
                file: file.to_string(),
            }
        })
        .collect()
}

impl State {
    /// The host the replies were captured on (Debian, snapd 2.57, seeded as generic-classic,
    /// pocketses not installed): system-info, snaps, model, changes and connections come from
    /// the captured replies, and the captured replies themselves are served for their requests.
    pub fn captured() -> Self {
        let replies = captured_replies();
        let body = |file: &str| -> Vec<u8> {
            replies
                .iter()
                .find(|c| c.file == file)
                .unwrap_or_else(|| panic!("{file} is not in tests/fixtures/snapd/index"))
                .body
                .clone()
        };
        let result = |file: &str| -> Value {
            let env: Value = serde_json::from_slice(&body(file)).expect("captured JSON");
            env["result"].clone()
        };
        let connections = result("connections.json");
        let connected = connections["established"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["plug"]["snap"] == "pocketses")
            .filter_map(|c| c["plug"]["plug"].as_str().map(str::to_string))
            .collect();
        let mut state = State {
            system_info: result("system-info.json"),
            snaps: serde_json::from_value(result("snaps.json")).expect("captured snaps"),
            model: Some(String::from_utf8(body("model.assertion")).expect("captured model")),
            serial: None,
            connected,
            ..State::default()
        };
        for change in result("changes-all.json").as_array().into_iter().flatten() {
            let id: u64 =
                change["id"].as_str().and_then(|id| id.parse().ok()).expect("captured change id");
            let scripted =
                Scripted { steps: vec![Step::State(change.clone())], pos: 0, last: change.clone() };
            state.changes.insert(id, scripted);
            state.next_change = state.next_change.max(id + 1);
        }
        state.captured = replies;
        state
    }
}

/// An unsigned-looking model assertion good enough for header parsing.
pub const FAKE_MODEL: &str = "type: model\nauthority-id: brand\nseries: 16\nbrand-id: brand\nmodel: pocketses-pc\narchitecture: amd64\nbase: core22\ngrade: dangerous\nrevision: 1\ntimestamp: 2024-08-09T12:00:00Z\nsign-key-sha3-384: fake\n\nAcLBcwQAAQoAHRYhBFAKE\n";

/// A running fake snapd; dropping it stops it and removes the sockets.
pub struct FakeSnapd {
    dir: tempfile::TempDir,
    state: Arc<Mutex<State>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeSnapd {
    /// Starts a fake with default state; returns once both sockets accept connections.
    pub fn start() -> Self {
        Self::start_with(State::default())
    }

    /// Starts a fake as the host the replies in `tests/fixtures/snapd/` were captured on
    /// ([`State::captured`]).
    pub fn start_captured() -> Self {
        Self::start_with(State::captured())
    }

    /// Starts a fake with the given state.
    pub fn start_with(state: State) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = Arc::new(Mutex::new(state));
        let (stop_tx, stop_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let paths = (dir.path().join("snapd.socket"), dir.path().join("snapd-snap.socket"));
        let thread_state = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(serve(paths, thread_state, stop_rx, ready_tx));
        });
        ready_rx.recv_timeout(Duration::from_secs(10)).expect("fake snapd did not start");
        FakeSnapd { dir, state, stop: Some(stop_tx), thread: Some(thread) }
    }

    /// Path of the fake `/run/snapd.socket`.
    pub fn snapd_socket(&self) -> PathBuf {
        self.dir.path().join("snapd.socket")
    }

    /// Path of the fake `/run/snapd-snap.socket`.
    pub fn snapctl_socket(&self) -> PathBuf {
        self.dir.path().join("snapd-snap.socket")
    }

    /// The temp dir holding the sockets (tests may put more files there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Environment that points a child process at this fake, as a hook would see it.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("POCKETSES_SNAPD_SOCKET".into(), self.snapd_socket().display().to_string()),
            ("POCKETSES_SNAPCTL_SOCKET".into(), self.snapctl_socket().display().to_string()),
            ("SNAP_COOKIE".into(), COOKIE.into()),
        ]
    }

    /// Locks the state.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("fake snapd state")
    }

    /// Replaces the configuration document.
    pub fn set_conf(&self, conf: Value) {
        self.state().conf = conf;
    }

    /// The configuration document.
    pub fn conf(&self) -> Value {
        self.state().conf.clone()
    }

    /// Marks a plug of pocketses connected or not.
    pub fn connect(&self, plug: &str, connected: bool) {
        let mut state = self.state();
        state.connected.retain(|p| p != plug);
        if connected {
            state.connected.push(plug.to_string());
        }
    }

    /// Makes requests with this method and path prefix fail with `reply`.
    pub fn fail(&self, method: &str, path_prefix: &str, reply: ErrorReply) {
        self.state().errors.push((method.to_string(), path_prefix.to_string(), reply));
    }

    /// Clears forced errors.
    pub fn clear_failures(&self) {
        self.state().errors.clear();
    }

    /// Adds a change played step by step; returns its id.
    pub fn add_change(&self, steps: Vec<Step>) -> String {
        let mut state = self.state();
        add_change(&mut state, steps)
    }

    /// Replaces what is left of change `id`'s script (a change that goes on while nobody
    /// follows it, as after a reboot).
    pub fn script_change(&self, id: &str, steps: Vec<Step>) {
        let mut state = self.state();
        let Some(change) = id.parse::<u64>().ok().and_then(|n| state.changes.get_mut(&n)) else {
            panic!("no change {id}");
        };
        change.steps = steps;
        change.pos = 0;
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }

    /// The `snapctl set-health` calls, in order, as args after the command name.
    pub fn health_calls(&self) -> Vec<Vec<String>> {
        self.snapctl_calls()
            .into_iter()
            .filter(|args| args.first().map(String::as_str) == Some("set-health"))
            .map(|args| args[1..].to_vec())
            .collect()
    }

    /// Requests to `POST /v2/snapctl`, as args.
    pub fn snapctl_calls(&self) -> Vec<Vec<String>> {
        self.requests()
            .iter()
            .filter(|r| r.path == "/v2/snapctl")
            .map(Recorded::snapctl_args)
            .collect()
    }

    /// Takes both sockets away for `duration` (snapd restarting).
    pub fn go_away(&self, duration: Duration) {
        self.state().down_until = Some(Instant::now() + duration);
    }
}

impl Drop for FakeSnapd {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn add_change(state: &mut State, steps: Vec<Step>) -> String {
    let id = state.next_change;
    state.next_change += 1;
    let first =
        steps.iter().find_map(|s| if let Step::State(v) = s { Some(v.clone()) } else { None });
    let last = with_id(first.unwrap_or_else(|| json!({"status": "Do", "ready": false})), id);
    state.changes.insert(id, Scripted { steps, pos: 0, last });
    id.to_string()
}

fn with_id(mut change: Value, id: u64) -> Value {
    if let Some(obj) = change.as_object_mut() {
        obj.insert("id".into(), json!(id.to_string()));
        for (key, default) in [
            ("kind", json!("")),
            ("summary", json!("")),
            ("spawn-time", json!("2024-08-09T12:00:00Z")),
            ("tasks", json!([])),
        ] {
            obj.entry(key).or_insert(default);
        }
    }
    change
}

async fn serve(
    paths: (PathBuf, PathBuf),
    state: Arc<Mutex<State>>,
    mut stop: oneshot::Receiver<()>,
    ready: std::sync::mpsc::Sender<()>,
) {
    let mut snapd = Some(UnixListener::bind(&paths.0).expect("bind snapd.socket"));
    let mut snap = Some(UnixListener::bind(&paths.1).expect("bind snapd-snap.socket"));
    let _ = ready.send(());
    // Going away also cuts open connections, as a restarting snapd does.
    let (cut, _) = tokio::sync::broadcast::channel::<()>(1);
    loop {
        let down = state.lock().expect("state").down_until;
        if let Some(until) = down {
            let _ = cut.send(());
            drop(snapd.take());
            drop(snap.take());
            let _ = std::fs::remove_file(&paths.0);
            let _ = std::fs::remove_file(&paths.1);
            let now = Instant::now();
            if until > now {
                tokio::select! {
                    _ = &mut stop => break,
                    () = tokio::time::sleep(until - now) => {}
                }
            }
            let mut guard = state.lock().expect("state");
            if guard.down_until == Some(until) {
                guard.down_until = None;
            }
            drop(guard);
            snapd = Some(UnixListener::bind(&paths.0).expect("rebind snapd.socket"));
            snap = Some(UnixListener::bind(&paths.1).expect("rebind snapd-snap.socket"));
            continue;
        }
        let (Some(l1), Some(l2)) = (snapd.as_ref(), snap.as_ref()) else { break };
        tokio::select! {
            _ = &mut stop => break,
            // Wake up now and then to notice a go_away() from the test thread.
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
            res = l1.accept() => if let Ok((stream, _)) = res { spawn_conn(stream, "snapd", state.clone(), cut.subscribe()) },
            res = l2.accept() => if let Ok((stream, _)) = res { spawn_conn(stream, "snapctl", state.clone(), cut.subscribe()) },
        }
    }
    let _ = std::fs::remove_file(&paths.0);
    let _ = std::fs::remove_file(&paths.1);
}

fn spawn_conn(
    stream: tokio::net::UnixStream,
    socket: &'static str,
    state: Arc<Mutex<State>>,
    mut cut: tokio::sync::broadcast::Receiver<()>,
) {
    tokio::spawn(async move {
        let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let state = state.clone();
            async move {
                let method = req.method().to_string();
                let path = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
                let content_type = req
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let body = req
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes().to_vec())
                    .unwrap_or_default();
                let rec = Recorded { socket, method, path, content_type, body };
                match handle(&state, rec) {
                    Some(reply) => Ok::<_, std::io::Error>(reply),
                    None => Err(std::io::Error::other("snapd is restarting")),
                }
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service);
        tokio::select! {
            _ = conn => {}
            _ = cut.recv() => {}
        }
    });
}

type Reply = hyper::Response<Full<Bytes>>;

fn reply(status: u16, content_type: &str, body: Vec<u8>, count: Option<usize>) -> Reply {
    let mut builder =
        hyper::Response::builder().status(status).header("content-type", content_type);
    if let Some(count) = count {
        builder = builder.header("x-ubuntu-assertions-count", count.to_string());
    }
    builder.body(Full::new(Bytes::from(body))).expect("response")
}

fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        _ => "Internal Server Error",
    }
}

fn sync(state: &State, result: Value) -> Reply {
    let mut env = json!({"type": "sync", "status-code": 200, "status": "OK", "result": result});
    if let Some(m) = &state.maintenance {
        env["maintenance"] = m.clone();
    }
    if !state.warnings.is_empty() {
        env["warning-count"] = json!(state.warnings.len());
        env["warning-timestamp"] = json!("2024-08-09T12:00:00Z");
    }
    reply(200, "application/json", env.to_string().into_bytes(), None)
}

fn async_reply(change: &str) -> Reply {
    let env = json!({"type": "async", "status-code": 202, "status": "Accepted", "result": null, "change": change});
    reply(202, "application/json", env.to_string().into_bytes(), None)
}

fn error(e: &ErrorReply) -> Reply {
    let mut result = json!({"message": e.message});
    if let Some(kind) = &e.kind {
        result["kind"] = json!(kind);
    }
    if let Some(value) = &e.value {
        result["value"] = value.clone();
    }
    let env = json!({"type": "error", "status-code": e.status, "status": status_text(e.status), "result": result});
    reply(e.status, "application/json", env.to_string().into_bytes(), None)
}

fn err(status: u16, kind: Option<&str>, message: &str) -> Reply {
    error(&ErrorReply::new(status, kind, message))
}

fn query(path: &str) -> (String, BTreeMap<String, String>) {
    let (p, q) = path.split_once('?').unwrap_or((path, ""));
    let params = q
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect();
    (decode(p), params)
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Handles one request; `None` drops the connection (snapd restarting).
fn handle(state: &Arc<Mutex<State>>, rec: Recorded) -> Option<Reply> {
    let mut guard = state.lock().expect("state");
    let st = &mut *guard;
    // Between a restart starting and the listeners going away, connections still get in: drop them.
    if st.down_until.is_some_and(|until| until > Instant::now()) {
        return None;
    }
    st.requests.push(rec.clone());
    let (path, params) = query(&rec.path);
    if let Some((_, _, e)) =
        st.errors.iter().find(|(m, p, _)| *m == rec.method && path.starts_with(p.as_str()))
    {
        return Some(error(&e.clone()));
    }
    if let Some(c) = st.captured.iter().find(|c| c.method == rec.method && c.path == rec.path) {
        return Some(reply(c.status, &c.content_type, c.body.clone(), c.assertions_count));
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = rec.method.as_str();
    Some(match (method, segments.as_slice()) {
        ("GET", ["v2", "system-info"]) => sync(st, st.system_info.clone()),
        ("GET", ["v2", "snaps"]) => {
            let mut env = json!({"type": "sync", "status-code": 200, "status": "OK", "result": st.snaps, "sources": ["local"]});
            if let Some(m) = &st.maintenance {
                env["maintenance"] = m.clone();
            }
            reply(200, "application/json", env.to_string().into_bytes(), None)
        }
        // snapd 2.57 daemon/api_find.go: `findOne` (store.SnapInfo; ErrSnapNotFound → 404).
        ("GET", ["v2", "find"]) => match params.get("name") {
            Some(name) if st.store_lacks.contains(name) => error(&ErrorReply {
                status: 404,
                kind: Some("snap-not-found".into()),
                message: "snap not found".to_string(),
                value: Some(json!(name)),
            }),
            Some(name) => {
                let found = json!([{"name": name, "status": "available", "type": "app", "channel": "stable"}]);
                let env = json!({"type": "sync", "status-code": 200, "status": "OK", "result": found, "sources": ["store"], "suggested-currency": "USD"});
                reply(200, "application/json", env.to_string().into_bytes(), None)
            }
            None => err(400, None, "the fake snapd answers only GET /v2/find?name="),
        },
        ("GET", ["v2", "snaps", name]) => match st.snaps.iter().find(|s| s["name"] == *name) {
            Some(snap) => sync(st, snap.clone()),
            None => error(&ErrorReply {
                status: 404,
                kind: Some("snap-not-found".into()),
                message: "snap not installed".to_string(),
                value: Some(json!(name)),
            }),
        },
        ("GET", ["v2", "snaps", name, "conf"]) => {
            let keys: Vec<String> = params
                .get("keys")
                .map(|k| k.split(',').filter(|k| !k.is_empty()).map(str::to_string).collect())
                .unwrap_or_default();
            if keys.is_empty() {
                return Some(sync(st, st.conf.clone()));
            }
            let mut out = Map::new();
            for key in keys {
                match get_path(&st.conf, &key) {
                    Some(v) => {
                        out.insert(key, v.clone());
                    }
                    None => {
                        return Some(error(&ErrorReply {
                            status: 400,
                            kind: Some("option-not-found".into()),
                            message: format!(
                                "snap \"{name}\" has no \"{key}\" configuration option"
                            ),
                            value: Some(json!({"SnapName": name, "Key": key})),
                        }))
                    }
                }
            }
            sync(st, Value::Object(out))
        }
        ("PUT", ["v2", "snaps", name, "conf"]) => {
            if !st.snaps.iter().any(|s| s["name"] == *name) {
                return Some(error(&ErrorReply {
                    status: 404,
                    kind: Some("snap-not-found".into()),
                    message: format!("snap \"{name}\" is not installed"),
                    value: Some(json!(name)),
                }));
            }
            let Ok(Value::Object(patch)) = serde_json::from_slice::<Value>(&rec.body) else {
                return Some(err(400, None, "cannot decode request body into patch values"));
            };
            for (key, value) in patch {
                if value.is_null() {
                    unset_path(&mut st.conf, &key);
                } else {
                    set_path(&mut st.conf, &key, value);
                }
            }
            let summary = format!("Change configuration of \"{name}\" snap");
            let id = add_change(
                st,
                vec![Step::State(
                    json!({"kind": "configure-snap", "summary": summary, "status": "Done", "ready": true, "ready-time": "2024-08-09T12:00:01Z"}),
                )],
            );
            async_reply(&id)
        }
        ("GET", ["v2", "model"]) => assertion_or_json(st, st.model.clone(), "model", &params),
        ("GET", ["v2", "model", "serial"]) => {
            assertion_or_json(st, st.serial.clone(), "serial", &params)
        }
        ("POST", ["v2", "model"]) => {
            let multipart =
                rec.content_type.as_deref().is_some_and(|t| t.starts_with("multipart/form-data"));
            if !multipart && rec.json()["new-model"].as_str().is_none() {
                return Some(err(
                    400,
                    None,
                    "cannot decode request body into remodel operation: new-model missing",
                ));
            }
            let steps = st.remodel_script.take().unwrap_or_else(|| vec![Step::State(json!({"kind": "remodel", "summary": "Refresh model assertion from revision 1 to 2", "status": "Done", "ready": true}))]);
            let id = add_change(st, steps);
            async_reply(&id)
        }
        ("GET", ["v2", "changes"]) => {
            let select = params.get("select").map(String::as_str).unwrap_or("in-progress");
            if !["all", "in-progress", "ready"].contains(&select) {
                return Some(err(400, None, "select should be one of: all,in-progress,ready"));
            }
            let list: Vec<Value> = st
                .changes
                .values()
                .map(|c| c.last.clone())
                .filter(|c| {
                    let ready = c["ready"].as_bool().unwrap_or(false);
                    select == "all" || (select == "ready") == ready
                })
                .collect();
            sync(st, Value::Array(list))
        }
        ("GET", ["v2", "changes", id]) => {
            let Some(change) = id.parse::<u64>().ok().and_then(|n| st.changes.get_mut(&n)) else {
                return Some(err(404, None, &format!("cannot find change with id \"{id}\"")));
            };
            let n: u64 = id.parse().unwrap_or(0);
            let step = change.steps.get(change.pos).cloned();
            if change.pos + 1 < change.steps.len() {
                change.pos += 1;
            }
            match step {
                Some(Step::Gone(duration)) => {
                    if change.pos + 1 == change.steps.len()
                        && matches!(change.steps[change.pos], Step::Gone(_))
                    {
                        change.pos = change.steps.len();
                    }
                    st.down_until = Some(Instant::now() + duration);
                    return None;
                }
                Some(Step::State(v)) => change.last = with_id(v, n),
                None => {}
            }
            let last = change.last.clone();
            sync(st, last)
        }
        ("POST", ["v2", "changes", id]) => {
            let action = rec.json()["action"].as_str().unwrap_or("").to_string();
            if action != "abort" {
                return Some(err(400, None, &format!("change action \"{action}\" is unsupported")));
            }
            let Some(change) = id.parse::<u64>().ok().and_then(|n| st.changes.get_mut(&n)) else {
                return Some(err(404, None, &format!("cannot find change with id \"{id}\"")));
            };
            if change.last["ready"].as_bool().unwrap_or(false) {
                return Some(err(
                    400,
                    None,
                    &format!("cannot abort change {id} with nothing pending"),
                ));
            }
            change.last["status"] = json!("Abort");
            let last = change.last.clone();
            sync(st, last)
        }
        ("GET", ["v2", "connections"]) => sync(st, connections(&st.connected)),
        ("GET", ["v2", "assertions"]) => sync(
            st,
            json!({"types": ["account", "account-key", "model", "serial", "snap-declaration", "snap-revision"]}),
        ),
        ("GET", ["v2", "assertions", kind]) => {
            let texts: Vec<&str> =
                st.assertions.iter().filter(|(t, _)| t == kind).map(|(_, a)| a.as_str()).collect();
            let body = texts.join("\n");
            reply(
                200,
                "application/x.ubuntu.assertion; bundle=y",
                body.into_bytes(),
                Some(texts.len()),
            )
        }
        ("POST", ["v2", "assertions"]) => {
            // snapd: doAssert adds the whole batch or nothing (`assert failed: …`).
            if let Some(refusal) = &st.assert_refusal {
                return Some(err(400, None, &format!("assert failed: {refusal}")));
            }
            let text = String::from_utf8_lossy(&rec.body).into_owned();
            let mut added = Vec::new();
            for part in split_assertions(&text) {
                let Some(kind) = part.lines().next().and_then(|l| l.strip_prefix("type: ")) else {
                    return Some(err(
                        400,
                        None,
                        "cannot decode request body into assertions: assertion content/signature separator not found",
                    ));
                };
                added.push((kind.to_string(), part));
            }
            st.assertions.extend(added);
            sync(st, Value::Null)
        }
        ("POST", ["v2", "snaps"])
            if rec
                .content_type
                .as_deref()
                .is_some_and(|t| t.starts_with("multipart/form-data")) =>
        {
            let Some(form) = parse_form(rec.content_type.as_deref().unwrap_or(""), &rec.body)
            else {
                return Some(err(400, None, "cannot read POST form: multipart: NextPart: EOF"));
            };
            let Some(data) = form.file.clone() else {
                return Some(err(
                    400,
                    None,
                    "cannot find \"snap\" file field in provided multipart/form-data payload",
                ));
            };
            let path =
                form.fields.get("snap-path").cloned().unwrap_or_else(|| form.filename.clone());
            let dangerous = form.fields.get("dangerous").map(String::as_str) == Some("true");
            let digest = sha3_384(&data);
            let vouched = st.assertions.iter().any(|(t, a)| {
                t == "snap-revision" && a.lines().any(|l| l == format!("snap-sha3-384: {digest}"))
            });
            if !dangerous && !vouched {
                return Some(err(
                    400,
                    None,
                    &format!("cannot find signatures with metadata for snap \"{path}\""),
                ));
            }
            let name = path.rsplit('/').next().unwrap_or(&path);
            let name = name.split(['_', '.']).next().unwrap_or(name).to_string();
            st.installed_files.push((path.clone(), dangerous, data));
            let summary = format!("Install \"{name}\" snap from file \"{path}\"");
            let steps = match st.install_script.take() {
                Some(steps) => steps,
                None => {
                    let mut snap = st.snaps[0].clone();
                    snap["name"] = json!(name);
                    snap["revision"] = json!(if vouched { "1" } else { "x1" });
                    snap["apps"] = json!([]);
                    st.snaps.retain(|s| s["name"] != json!(name));
                    st.snaps.push(snap);
                    vec![Step::State(json!({"status": "Done", "ready": true, "tasks": [
                        {"id": "1", "kind": "prerequisites", "summary": format!("Ensure prerequisites for \"{name}\" are available"), "status": "Done"},
                        {"id": "2", "kind": "mount-snap", "summary": format!("Mount snap \"{name}\" (unset)"), "status": "Done"},
                        {"id": "3", "kind": "link-snap", "summary": format!("Make snap \"{name}\" (unset) available to the system"), "status": "Done"}
                    ]}))]
                }
            };
            let steps = steps
                .into_iter()
                .map(|step| match step {
                    Step::State(mut v) => {
                        v["kind"] = json!("install-snap");
                        v["summary"] = json!(summary);
                        Step::State(v)
                    }
                    gone => gone,
                })
                .collect();
            let id = add_change(st, steps);
            async_reply(&id)
        }
        ("GET", ["v2", "warnings"]) => sync(st, Value::Array(st.warnings.clone())),
        ("POST", ["v2", "snapctl"]) if rec.socket == "snapctl" => snapctl(st, &rec.json()),
        ("POST", ["v2", "snapctl"]) => err(403, Some("login-required"), "access denied"),
        (_, ["v2", ..]) if !matches!(method, "GET" | "PUT" | "POST") => {
            err(405, None, &format!("method \"{method}\" not allowed"))
        }
        _ => err(404, None, "not found"),
    })
}

/// Splits an assertion stream at the blank lines that end each signature.
fn split_assertions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut blanks = 0;
    for line in text.lines() {
        if line.is_empty() {
            blanks += 1;
            if blanks == 2 {
                out.push(std::mem::take(&mut current).trim().to_string());
                blanks = 0;
                continue;
            }
        }
        current.push_str(line);
        current.push('\n');
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// sha3-384 as snapd writes it in `snap-sha3-384`.
pub fn sha3_384(data: &[u8]) -> String {
    use base64::Engine as _;
    use sha3::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha3::Sha3_384::digest(data))
}

/// A multipart form: its plain fields and the `snap` file part.
struct Form {
    fields: BTreeMap<String, String>,
    filename: String,
    file: Option<Vec<u8>>,
}

fn parse_form(content_type: &str, body: &[u8]) -> Option<Form> {
    let boundary = content_type.split("boundary=").nth(1)?.trim_matches('"');
    let delim = format!("--{boundary}");
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|i| i + from)
    };
    let mut form = Form { fields: BTreeMap::new(), filename: String::new(), file: None };
    let mut at = find(body, delim.as_bytes(), 0)? + delim.len();
    loop {
        if body.get(at..at + 2)? == b"--" {
            return Some(form);
        }
        at += 2;
        let head_end = find(body, b"\r\n\r\n", at)?;
        let head = String::from_utf8_lossy(&body[at..head_end]).into_owned();
        let data_start = head_end + 4;
        let next = find(body, format!("\r\n{delim}").as_bytes(), data_start)?;
        let data = body[data_start..next].to_vec();
        let attr = |name: &str| {
            head.split(&format!("{name}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .map(str::to_string)
        };
        let name = attr("name").unwrap_or_default();
        match attr("filename") {
            Some(filename) if name == "snap" => {
                form.filename = filename;
                form.file = Some(data);
            }
            _ => {
                form.fields.insert(name, String::from_utf8_lossy(&data).into_owned());
            }
        }
        at = next + 2 + delim.len();
    }
}

fn assertion_or_json(
    st: &State,
    text: Option<String>,
    what: &str,
    params: &BTreeMap<String, String>,
) -> Reply {
    let Some(text) = text else {
        return error(&ErrorReply {
            status: 404,
            kind: Some("assertion-not-found".into()),
            message: format!("no {what} assertion yet"),
            value: Some(json!(what)),
        });
    };
    match params.get("json").map(String::as_str) {
        Some("true" | "headers") => {
            let mut headers = Map::new();
            for line in text.lines().take_while(|l| !l.is_empty()) {
                if let Some((k, v)) = line.split_once(": ") {
                    headers.insert(k.to_string(), json!(v));
                }
            }
            sync(st, json!({"headers": headers}))
        }
        _ => reply(200, "application/x.ubuntu.assertion", text.into_bytes(), Some(1)),
    }
}

fn connections(plugs: &[String]) -> Value {
    let established: Vec<Value> = plugs
        .iter()
        .map(|p| json!({"slot": {"snap": "snapd", "slot": p}, "plug": {"snap": "pocketses", "plug": p}, "interface": p, "manual": true}))
        .collect();
    let plug_list: Vec<Value> = plugs
        .iter()
        .map(|p| json!({"snap": "pocketses", "plug": p, "interface": p, "apps": ["daemon"], "connections": [{"snap": "snapd", "slot": p}]}))
        .collect();
    // snapd leaves `undesired` out when it is empty (`omitempty`), and keeps the other three.
    json!({"established": established, "plugs": plug_list, "slots": []})
}

/// Reads a dotted path in a nested document.
pub fn get_path<'a>(doc: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(doc, |v, seg| v.get(seg))
}

/// Sets a dotted path, creating objects on the way.
pub fn set_path(doc: &mut Value, key: &str, value: Value) {
    let mut cur = doc;
    let segs: Vec<&str> = key.split('.').collect();
    for seg in &segs[..segs.len() - 1] {
        if !cur.get(*seg).is_some_and(Value::is_object) {
            cur[*seg] = json!({});
        }
        cur = &mut cur[*seg];
    }
    if !cur.is_object() {
        *cur = json!({});
    }
    cur[segs[segs.len() - 1]] = value;
}

/// Removes a dotted path.
pub fn unset_path(doc: &mut Value, key: &str) {
    let (parent, last) = match key.rsplit_once('.') {
        Some((p, l)) => (p, l),
        None => ("", key),
    };
    let target = if parent.is_empty() {
        Some(doc)
    } else {
        parent.split('.').try_fold(doc, |v, seg| v.get_mut(seg))
    };
    if let Some(Value::Object(map)) = target {
        map.remove(last);
    }
}

fn snapctl_ok(st: &State, stdout: String) -> Reply {
    sync(st, json!({"stdout": stdout, "stderr": ""}))
}

fn unsuccessful(code: i32, stdout: &str, stderr: &str) -> Reply {
    error(&ErrorReply {
        status: 200,
        kind: Some("unsuccessful".into()),
        message: format!("unsuccessful with exit code: {code}"),
        value: Some(json!({"stdout": stdout, "stderr": stderr, "exit-code": code})),
    })
}

fn snapctl(st: &mut State, body: &Value) -> Reply {
    let args: Vec<String> = serde_json::from_value(body["args"].clone()).unwrap_or_default();
    if args.is_empty() {
        return err(400, None, "snapctl cannot run without args");
    }
    let command = args[0].as_str();
    if body["context-id"].as_str() != Some(COOKIE) && command != "-h" {
        return err(400, None, &format!("error running snapctl: cannot invoke snapctl operation commands (here \"{command}\") from outside of a snap"));
    }
    let flags: Vec<&str> =
        args[1..].iter().filter(|a| a.starts_with('-')).map(String::as_str).collect();
    let rest: Vec<&str> =
        args[1..].iter().filter(|a| !a.starts_with('-')).map(String::as_str).collect();
    match command {
        "get" => {
            if rest.is_empty() {
                return err(400, None, "error running snapctl: get which option?");
            }
            let document = flags.contains(&"-d");
            let typed = flags.contains(&"-t");
            let mut patch = Map::new();
            for key in &rest {
                if let Some(v) = get_path(&st.conf, key) {
                    patch.insert((*key).to_string(), v.clone());
                }
            }
            let value = if !document && rest.len() == 1 { patch.get(rest[0]).cloned() } else { Some(Value::Object(patch)) };
            let stdout = match value {
                None if typed => "null\n".to_string(),
                None => "\n".to_string(),
                Some(Value::String(s)) if !typed => format!("{s}\n"),
                Some(v) => format!("{}\n", to_tab_json(&v)),
            };
            snapctl_ok(st, stdout)
        }
        "set" => {
            if rest.is_empty() {
                return err(400, None, "error running snapctl: set which option?");
            }
            let strict = flags.contains(&"-t");
            for kv in rest {
                if let Some(key) = kv.strip_suffix('!') {
                    unset_path(&mut st.conf, key);
                    continue;
                }
                let Some((key, raw)) = kv.split_once('=') else {
                    return err(400, None, &format!("error running snapctl: invalid parameter: {kv:?} (want key=value)"));
                };
                let value = match serde_json::from_str::<Value>(raw) {
                    Ok(v) => v,
                    Err(_) if strict => return err(400, None, &format!("error running snapctl: failed to parse JSON: {raw}")),
                    Err(_) => Value::String(raw.to_string()),
                };
                set_path(&mut st.conf, key, value);
            }
            snapctl_ok(st, String::new())
        }
        "unset" => {
            for key in rest {
                unset_path(&mut st.conf, key);
            }
            snapctl_ok(st, String::new())
        }
        "is-connected" => {
            let Some(plug) = rest.first() else { return err(400, None, "error running snapctl: the required argument `<plug|slot>` was not provided") };
            if st.connected.iter().any(|p| p == plug) {
                snapctl_ok(st, String::new())
            } else {
                unsuccessful(1, "", "")
            }
        }
        "services" => snapctl_ok(st, "Service             Startup  Current  Notes\npocketses.daemon    enabled  active   -\n".to_string()),
        "set-health" => match set_health(&args[1..]) {
            Ok(health) => {
                st.health = Some(args[1..].to_vec());
                // As snapd: the health shows in the snap's object (`snap info`, GET /v2/snaps).
                if let Some(snap) = st.snaps.iter_mut().find(|s| s["name"] == "pocketses") {
                    snap["health"] = health;
                }
                snapctl_ok(st, String::new())
            }
            Err(message) => err(400, None, &format!("error running snapctl: {message}")),
        },
        "model" => match &st.model {
            Some(text) if flags.contains(&"--assertion") => snapctl_ok(st, text.clone()),
            Some(_) => snapctl_ok(st, "brand-id:  brand\nmodel:     pocketses-pc\n".to_string()),
            None => err(400, None, "error running snapctl: cannot get model assertion for snap \"pocketses\": no model assertion yet"),
        },
        "system-mode" => snapctl_ok(st, "system-mode: run\nseed-loaded: true\n".to_string()),
        other => err(400, None, &format!("error running snapctl: Unknown command `{other}'")),
    }
}

/// `snapctl set-health [--code=CODE] STATUS [MESSAGE]` checked with snapd's rules
/// (`overlord/hookstate/ctlcmd/health.go`, message cut past 70 characters), as the snap object's
/// `health` (`client.SnapHealth`).
fn set_health(args: &[String]) -> Result<Value, String> {
    let mut code = String::new();
    let mut positional = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if let Some(c) = args[i].strip_prefix("--code=") {
            code = c.to_string();
        } else if args[i] == "--code" {
            i += 1;
            code = args.get(i).cloned().unwrap_or_default();
        } else {
            positional.push(args[i].clone());
        }
        i += 1;
    }
    let status =
        positional.first().cloned().ok_or("the required argument `<status>` was not provided")?;
    let mut message = positional.get(1).cloned().unwrap_or_default();
    if positional.len() > 2 {
        return Err("too many arguments for command".into());
    }
    if status == "okay" && (!message.is_empty() || !code.is_empty()) {
        return Err(r#"when status is "okay", message and code must be empty"#.into());
    }
    if !["okay", "waiting", "blocked", "error"].contains(&status.as_str()) {
        return Err(if status == "unknown" {
            r#"status cannot be manually set to "unknown""#.to_string()
        } else {
            format!("invalid status {status:?}, must be one of \"unknown\", \"okay\", \"waiting\", \"blocked\", \"error\"")
        });
    }
    if !code.is_empty() {
        if code.len() < 3 || code.len() > 30 {
            return Err(format!("code must have between 3 and 30 characters, got {}", code.len()));
        }
        let b = code.as_bytes();
        let valid = b[0].is_ascii_lowercase()
            && !code.ends_with('-')
            && !code.contains("--")
            && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
        if !valid {
            return Err(format!("invalid code {code:?} (code must start with lowercase ASCII letters, and contain only ASCII letters and numbers, optionally separated by single dashes)"));
        }
    }
    if status != "okay" {
        let n = message.chars().count();
        if n == 0 {
            return Err(r#"when status is not "okay", message is required"#.into());
        }
        if n < 7 {
            return Err(format!("message must be at least 7 characters long (got {n})"));
        }
        if n > 70 {
            message = message.chars().take(69).chain(std::iter::once('…')).collect();
        }
    }
    let mut health =
        json!({"revision": "x1", "timestamp": "2024-08-09T12:00:00Z", "status": status});
    if !message.is_empty() {
        health["message"] = json!(message);
    }
    if !code.is_empty() {
        health["code"] = json!(code);
    }
    Ok(health)
}

/// JSON indented with tabs, as snapctl prints it.
fn to_tab_json(value: &Value) -> String {
    let mut buf = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
    serde::Serialize::serialize(value, &mut ser).expect("json");
    String::from_utf8(buf).expect("utf-8")
}

/// Waits (bounded) until the fake has seen a request matching `pred`.
pub fn wait_for_request(
    fake: &FakeSnapd,
    limit: Duration,
    pred: impl Fn(&Recorded) -> bool,
) -> bool {
    super::wait_until(limit, || fake.requests().iter().any(&pred))
}

/// The change a real snapd ran, as the remodel spread tasks recorded it into
/// `tests/fixtures/snapd/FILE` (the envelope of `GET /v2/changes/{id}`): its `result`.
pub fn recorded_change(file: &str) -> Value {
    let path = captured_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
    let envelope: Value = serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("{} is not JSON: {err}", path.display()));
    assert_eq!(envelope["type"], "sync", "{} is not a sync reply", path.display());
    envelope["result"].clone()
}

/// snapd's error reply recorded into `tests/fixtures/snapd/FILE`, as the fake serves it.
pub fn recorded_error(file: &str) -> ErrorReply {
    let path = captured_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
    let envelope: Value = serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("{} is not JSON: {err}", path.display()));
    assert_eq!(envelope["type"], "error", "{} is not an error reply", path.display());
    let result = &envelope["result"];
    ErrorReply {
        status: envelope["status-code"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .expect("status-code"),
        kind: result["kind"].as_str().map(str::to_string),
        message: result["message"].as_str().expect("message").to_string(),
        value: result.get("value").cloned(),
    }
}

/// A script that replays a recorded change: first every task queued (`Do`); then, in order, each
/// task that ran (every one not left on `Hold`) as `Doing`, the ones before it `Done`; then the
/// recording itself, byte for byte but for the id. The last task that ran is the one snapd was in
/// when the change was aborted or failed; a `download-snap` shows half its bytes while `Doing`.
pub fn replay(recorded: &Value) -> Vec<Step> {
    let tasks = recorded["tasks"].as_array().cloned().unwrap_or_default();
    let at = |doing: Option<usize>| -> Value {
        let tasks: Vec<Value> = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut t = t.clone();
                let (status, done) = match doing {
                    Some(d) if i < d => ("Done", t["progress"]["total"].clone()),
                    Some(d) if i == d => {
                        ("Doing", json!(t["progress"]["total"].as_u64().unwrap_or(1) / 2))
                    }
                    _ => ("Do", json!(0)),
                };
                t["status"] = json!(status);
                t["progress"]["done"] = done;
                if let Some(obj) = t.as_object_mut() {
                    obj.remove("ready-time");
                }
                t
            })
            .collect();
        let mut change = recorded.clone();
        change["status"] = json!(if doing.is_some() { "Doing" } else { "Do" });
        change["ready"] = json!(false);
        change["tasks"] = Value::Array(tasks);
        if let Some(obj) = change.as_object_mut() {
            obj.remove("ready-time");
            obj.remove("err");
        }
        change
    };
    let mut steps = vec![Step::State(at(None))];
    for (i, t) in tasks.iter().enumerate() {
        if t["status"] != "Hold" {
            steps.push(Step::State(at(Some(i))));
        }
    }
    steps.push(Step::State(recorded.clone()));
    steps
}
