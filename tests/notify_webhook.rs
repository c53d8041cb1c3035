//! Check notifications (`notify.webhook.url`) from the real daemon to a tiny scripted HTTP
//! endpoint: one `application/json` document per state change, in order; nothing lost while the
//! endpoint is down, across a `kill -9`; and the push sinks' error table (400 to `rejected/`, 5xx
//! and 401 retried, 429 `Retry-After`).
//!
//! Only the `load` check runs, driven by thresholds sent over the control socket as the configure
//! hook does: `crit=@0:1000000` alerts for any load, `~:` never, so every state is known whatever
//! the build machine's load. The first reloads happen before the webhook is set, so the state the
//! daemon starts in (under the default thresholds) is never notified.

#![allow(clippy::unwrap_used)] // Helpers outside #[test] functions: a failed unwrap is a failed test.

mod daemon_util;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use daemon_util::poll;
use serde_json::{json, Value};

/// One request the endpoint got, and what it answered.
#[derive(Debug, Clone)]
struct Got {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    status: u16,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn doc(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// What the endpoint answers: status, extra headers, body.
type Answer = (u16, Vec<(String, String)>, String);
/// Decides the answer from the index of the request.
type Script = Box<dyn FnMut(usize) -> Answer + Send>;

/// A tiny HTTP/1.1 endpoint on loopback: keep-alive, Content-Length bodies, answers from a script.
struct Endpoint {
    port: u16,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Endpoint {
    fn start_on(listener: TcpListener, script: Script) -> Endpoint {
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script));
        let log = Arc::clone(&got);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (log, script) = (Arc::clone(&log), Arc::clone(&script));
                std::thread::spawn(move || serve(stream, &log, &script));
            }
        });
        Endpoint { port, got }
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// The documents answered with a 2xx, in order.
    fn acked(&self) -> Vec<Value> {
        self.got().iter().filter(|g| g.status / 100 == 2).map(Got::doc).collect()
    }
}

fn serve(stream: TcpStream, log: &Mutex<Vec<Got>>, script: &Mutex<Script>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_lowercase(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut log = log.lock().unwrap();
        let (status, extra, text) = (script.lock().unwrap())(log.len());
        log.push(Got { path, headers, body, status });
        drop(log);
        let mut res = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", text.len());
        for (k, v) in extra {
            res.push_str(&format!("{k}: {v}\r\n"));
        }
        res.push_str("\r\n");
        res.push_str(&text);
        if out.write_all(res.as_bytes()).is_err() {
            return;
        }
    }
}

fn ok() -> Answer {
    (204, vec![], String::new())
}

/// Only `load` runs, and it changes state on the first result that differs.
const ARGS: [&str; 18] = [
    "--set",
    "checks.load.failures-before-critical=1",
    "--set",
    "checks.filesystem.enabled=false",
    "--set",
    "checks.inodes.enabled=false",
    "--set",
    "checks.memory.enabled=false",
    "--set",
    "checks.swap.enabled=false",
    "--set",
    "checks.temperature.enabled=false",
    "--set",
    "checks.snapd.enabled=false",
    "--set",
    "checks.spool.enabled=false",
    "--set",
    "checks.snaps.enabled=false",
];

/// A daemon on a state directory the test keeps, so that it can be killed and started again.
struct Daemon {
    child: Child,
    dir: PathBuf,
}

impl Daemon {
    fn start(dir: &Path, extra: &[&str]) -> Daemon {
        let ready = dir.join("ready");
        let _ = std::fs::remove_file(&ready);
        let child = Command::new(env!("CARGO_BIN_EXE_pocketses"))
            .args(["daemon", "--bind", "127.0.0.1", "--port", "0", "--interval", "1"])
            .args(["--http-port", &daemon_util::free_port().to_string()])
            .arg("--ready-file")
            .arg(&ready)
            .args(ARGS)
            .args(extra)
            .env("POCKETSES_SNAPD_SOCKET", dir.join("no-snapd.socket"))
            .env("POCKETSES_STATE_DIR", dir)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("stderr"))
                    .unwrap(),
            )
            .spawn()
            .unwrap();
        let mut daemon = Daemon { child, dir: dir.to_path_buf() };
        poll("the ready file", || {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("daemon exited with {status}: {}", daemon.stderr());
            }
            std::fs::read_to_string(&ready).ok().filter(|t| t.ends_with('\n'))
        });
        daemon
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    fn http(&self) -> std::net::SocketAddr {
        let text = std::fs::read_to_string(self.dir.join("ready")).unwrap();
        daemon_util::parse_ready(&text).1.unwrap()
    }

    fn get(&self, path: &str) -> String {
        let mut s = TcpStream::connect(self.http()).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    }

    /// The reported state of `load`, once the checks have run.
    fn load_state(&self) -> Option<String> {
        let res = self.get("/v1/checks");
        let body = res.split_once("\r\n\r\n")?.1;
        let doc: Value = serde_json::from_str(body).ok()?;
        let load = doc["checks"].as_array()?.iter().find(|c| c["check"] == "load")?;
        load["state"].as_str().map(str::to_string)
    }

    /// A figure of the webhook's sink on `/metrics`.
    fn sink_figure(&self, family: &str) -> Option<f64> {
        let prefix = format!("{family}{{sink=\"notify.webhook\"}} ");
        let text = self.get("/metrics");
        text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.parse().ok())
    }

    /// Sends a configuration document over the control socket, as the configure hook does.
    fn reload(&self, doc: Value) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let req = pocketses::control::Request::Reload { config: Some(doc) };
        runtime
            .block_on(pocketses::control::call(
                &self.dir.join("control.sock"),
                &req,
                Duration::from_secs(10),
            ))
            .unwrap();
    }

    /// Reloads with `load` thresholds that make it `state`, and waits until it is.
    fn drive(&self, state: &str, webhook: Option<&str>) {
        let crit = if state == "CRIT" { "@0:1000000" } else { "~:" };
        let mut doc = json!({"checks": {"load": {"warn": "~:", "crit": crit}}});
        if let Some(url) = webhook {
            doc["notify"] = json!({"webhook": {"url": url}});
        }
        self.reload(doc);
        poll(&format!("load {state}"), || (self.load_state()? == state).then_some(()));
    }

    /// Sets the webhook (with `load` OK) and waits until its sink runs.
    fn arm(&self, url: &str) {
        self.drive("OK", None);
        self.drive("OK", Some(url));
        poll("the webhook's sink", || self.sink_figure("pocketses_push_up").map(|_| ()));
    }

    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `(from, to)` of each document.
fn moves(docs: &[Value]) -> Vec<(Value, Value)> {
    docs.iter().map(|d| (d["from"].clone(), d["to"].clone())).collect()
}

fn expected() -> Vec<(Value, Value)> {
    vec![(json!("OK"), json!("CRIT")), (json!("CRIT"), json!("OK")), (json!("OK"), json!("CRIT"))]
}

#[test]
fn notifications_wait_out_an_outage_and_a_kill_9_and_arrive_in_order() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on the webhook's port yet: connections are refused.
    let port = daemon_util::free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let daemon = Daemon::start(dir.path(), &[]);
    daemon.arm(&url);
    for state in ["CRIT", "OK", "CRIT"] {
        daemon.drive(state, Some(&url));
    }
    // All three are on disk before the kill.
    poll("three notifications spooled", || {
        (daemon.sink_figure("pocketses_push_backlog_records")? == 3.0).then_some(())
    });
    assert_eq!(daemon.sink_figure("pocketses_push_up"), Some(0.0), "the endpoint is down");
    daemon.kill9();

    // The endpoint comes up; the daemon comes back with no checks at all, so whatever arrives
    // was spooled by the one that was killed.
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let endpoint = Endpoint::start_on(listener, Box::new(|_| ok()));
    let webhook = format!("notify.webhook.url={url}");
    let daemon = Daemon::start(
        dir.path(),
        &[
            "--set",
            "checks.load.enabled=false",
            "--set",
            &webhook,
            "--set",
            "notify.webhook.token=s3cret-token",
        ],
    );
    poll("three notifications delivered", || (endpoint.acked().len() >= 3).then_some(()));
    poll("an empty spool", || {
        (daemon.sink_figure("pocketses_push_backlog_records")? == 0.0).then_some(())
    });
    let acked = endpoint.acked();
    assert_eq!(moves(&acked), expected(), "{acked:?}");
    // Each once: the killed daemon never got an answer, so nothing was sent twice.
    assert_eq!(endpoint.got().len(), 3);
    let got = &endpoint.got()[0];
    assert_eq!(got.path, "/hook");
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(got.header("authorization"), Some("Bearer s3cret-token"));
    // The document: the check, both states, the sentence, the value and threshold, the time,
    // who sent it.
    let doc = &acked[0];
    assert_eq!((doc["event"].as_str(), doc["check"].as_str()), (Some("check"), Some("load")));
    assert!(doc["message"].as_str().unwrap().starts_with("load per CPU is "), "{doc}");
    assert!(doc["value"].is_number() && doc["threshold"] == "@1000000", "{doc}");
    assert!(doc["time"].as_str().unwrap().ends_with('Z'), "{doc}");
    assert!(!doc["device"]["hostname"].as_str().unwrap().is_empty(), "{doc}");
    let times: Vec<&str> = acked.iter().map(|d| d["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

#[test]
fn the_webhook_follows_the_push_error_table() {
    // 400: set aside; 500 and 401: kept and sent again; 429 with Retry-After: sent again after it.
    let endpoint = Endpoint::start_on(
        TcpListener::bind("127.0.0.1:0").unwrap(),
        Box::new(|n| match n {
            0 => (400, vec![], "{\"error\":\"bad document\"}".into()),
            1 => (500, vec![], "oops".into()),
            3 => (401, vec![], "who are you".into()),
            4 => (429, vec![("Retry-After".into(), "1".into())], "slow down".into()),
            _ => ok(),
        }),
    );
    let url = format!("http://127.0.0.1:{}/hook", endpoint.port);
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    daemon.arm(&url);
    for state in ["CRIT", "OK", "CRIT"] {
        daemon.drive(state, Some(&url));
    }
    poll("two notifications delivered", || (endpoint.acked().len() >= 2).then_some(()));
    let got = endpoint.got();
    let statuses: Vec<u16> = got.iter().map(|g| g.status).collect();
    assert_eq!(statuses, [400, 500, 204, 401, 429, 204], "{got:?}");
    let bodies: Vec<Value> = got.iter().map(Got::doc).collect();
    let all = moves(&bodies);
    let want = expected();
    // The rejected one is never sent again; the others come again until a 2xx, in order.
    assert_eq!(all, [&want[0], &want[1], &want[1], &want[2], &want[2], &want[2]].map(Clone::clone));
    assert_eq!(moves(&endpoint.acked()), want[1..]);
    // The rejected document is kept with the endpoint's message, as a push sink keeps a batch.
    let rejected = dir.path().join("spool/notify.webhook/rejected");
    let mut records = String::new();
    let mut reasons = String::new();
    for entry in std::fs::read_dir(&rejected).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        match path.extension().and_then(|e| e.to_str()) {
            Some("records") => records.push_str(&text),
            Some("reason") => reasons.push_str(&text),
            _ => {}
        }
    }
    let kept: Value = serde_json::from_str(records.trim()).unwrap();
    assert_eq!(moves(&[kept]), want[..1]);
    assert!(reasons.contains("400: {\"error\":\"bad document\"}"), "{reasons}");
    poll("an empty spool", || {
        (daemon.sink_figure("pocketses_push_backlog_records")? == 0.0).then_some(())
    });
    assert_eq!(daemon.sink_figure("pocketses_push_rejected_records_total"), Some(1.0));
}
