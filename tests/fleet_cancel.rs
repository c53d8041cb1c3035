//! What gooseBit never sends, against the daemon: a small scripted DDI server on loopback plays
//! hawkBit's documents (as hawkBit documents and serves them) around the real daemon and a fake
//! snapd.
//!
//! - `cancelAction`: a cancel while the artifact downloads is accepted: the download stops, the
//!   feedback is `closed`/`success`, the action ends `cancelled` with nothing applied, the part
//!   removed; a cancel while snapd applies is refused: the feedback is `rejected`, the action
//!   goes on.
//! - `update: skip` (hawkBit's download-only action): downloaded once, reported `downloaded`
//!   once, nothing applied; when the server then closes the action the file is removed.
//! - `maintenanceWindow: unavailable` (hawkBit sends `update: skip` with it): downloaded,
//!   reported `downloaded`, nothing applied while it lasts; once `available`, applied from the
//!   file already there, without a second download.

#![allow(clippy::unwrap_used)] // Helpers outside #[test] functions: a failed unwrap is a failed test.

mod daemon_util;
mod support;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use daemon_util::Daemon;
use serde_json::{json, Value};
use support::fake_snapd::{FakeSnapd, Step};

const LIMIT: Duration = Duration::from_secs(90);

/// What the scripted server answers and what it got.
#[derive(Default)]
struct Script {
    /// The artifact's bytes.
    artifact: Vec<u8>,
    /// Bytes of the artifact sent before the download stalls (`None`: all of it).
    stall_after: Option<usize>,
    /// Whether the base offers the deployment (action 1).
    deploy: bool,
    /// The cancel action to offer (its id, the action to stop).
    cancel: Option<(String, String)>,
    /// `deployment.update` (`None`: `forced`).
    update: Option<&'static str>,
    /// `deployment.maintenanceWindow`, when sent.
    window: Option<&'static str>,
    /// GETs of the artifact.
    downloads: usize,
    /// (path, body) of every PUT and POST.
    received: Vec<(String, Value)>,
}

fn serve(listener: TcpListener, script: Arc<Mutex<Script>>) {
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let (script, url) = (script.clone(), url.clone());
            std::thread::spawn(move || connection(conn, &script, &url));
        }
    });
}

fn connection(conn: TcpStream, script: &Mutex<Script>, url: &str) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) =
            (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
        let mut length = 0;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            if h.trim().is_empty() {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).unwrap();
        let base = "/DEFAULT/controller/v1/dev";
        let json_reply = |out: &mut TcpStream, v: Value| {
            let b = v.to_string();
            let _ = write!(out, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}", b.len());
        };
        if method != "GET" {
            let doc = serde_json::from_slice(&body).unwrap_or(Value::Null);
            script.lock().unwrap().received.push((path.clone(), doc));
            json_reply(&mut out, json!({}));
            continue;
        }
        let s = script.lock().unwrap();
        if path == base {
            let mut links = serde_json::Map::new();
            if s.deploy {
                links.insert(
                    "deploymentBase".into(),
                    json!({"href": format!("{url}{base}/deploymentBase/1?c=-2")}),
                );
            }
            if let Some((id, _)) = &s.cancel {
                links.insert(
                    "cancelAction".into(),
                    json!({"href": format!("{url}{base}/cancelAction/{id}")}),
                );
            }
            json_reply(
                &mut out,
                json!({"config": {"polling": {"sleep": "00:00:01"}}, "_links": links}),
            );
        } else if path.starts_with(&format!("{base}/deploymentBase/1")) {
            let sha256: String = sha2::Digest::finalize(
                <sha2::Sha256 as sha2::Digest>::new_with_prefix(&s.artifact),
            )
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
            let mut deployment =
                json!({"download": "forced", "update": s.update.unwrap_or("forced")});
            if let Some(window) = s.window {
                deployment["maintenanceWindow"] = json!(window);
            }
            deployment["chunks"] = json!([
                {"part": "os", "name": "release", "version": "2.0.0", "artifacts": [
                    {"filename": "release.swu", "size": s.artifact.len(), "hashes": {"sha256": sha256},
                     "_links": {"download": {"href": format!("{url}{base}/softwaremodules/1/artifacts/release.swu")}}}]}]);
            json_reply(&mut out, json!({"id": "1", "deployment": deployment}));
        } else if path.starts_with(&format!("{base}/cancelAction/")) {
            let (id, stop) = s.cancel.clone().unwrap();
            json_reply(&mut out, json!({"id": id, "cancelAction": {"stopId": stop}}));
        } else if path.ends_with("/artifacts/release.swu") {
            drop(s);
            let mut s = script.lock().unwrap();
            s.downloads += 1;
            let artifact = s.artifact.clone();
            let stall = s.stall_after;
            drop(s);
            let _ = write!(out, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", artifact.len());
            match stall {
                Some(n) => {
                    let _ = out.write_all(&artifact[..n]);
                    let _ = out.flush();
                    // Hold the connection: the download waits for more.
                    std::thread::sleep(Duration::from_secs(600));
                    return;
                }
                None => {
                    let _ = out.write_all(&artifact);
                }
            }
        } else {
            let _ = write!(out, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        }
    }
}

fn fleet_status(daemon: &Daemon) -> Value {
    let out = Command::new(support::bin())
        .args(["fleet", "status", "--json"])
        .env("POCKETSES_STATE_DIR", daemon.state_dir())
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

fn wait<T>(what: &str, daemon: &Daemon, mut cond: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(
            start.elapsed() < LIMIT,
            "gave up waiting for {what}\n{}\n{}",
            fleet_status(daemon),
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A signed bundle of one snap, and the operator's public key.
fn signed_bundle(dir: &std::path::Path) -> (Vec<u8>, String) {
    use ed25519_dalek::SigningKey;
    use pocketses::fleet::{bundle, cmd};
    let key = SigningKey::from_bytes(&[9; 32]);
    let snap = dir.join("hello_1.snap");
    std::fs::write(&snap, vec![7u8; 200_000]).unwrap();
    let out = dir.join("release.swu");
    cmd::create("2.0.0", &["pocketses-pc".into()], &[snap], &out).unwrap();
    cmd::sign(&out, &key).unwrap();
    (std::fs::read(&out).unwrap(), bundle::encode_public_key(&key.verifying_key()))
}

fn start(script: &Arc<Mutex<Script>>, key: &str, snapd: &FakeSnapd) -> Daemon {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("fleet.url=http://{}", listener.local_addr().unwrap());
    serve(listener, script.clone());
    let keys = format!("fleet.trusted-keys={key}");
    Daemon::start_env(
        &[
            "--set",
            &url,
            "--set",
            "fleet.enabled=true",
            "--set",
            "fleet.controller-id=dev",
            "--set",
            &keys,
        ],
        true,
        None,
        &snapd.env(),
    )
}

/// The files in the daemon's downloads directory.
fn downloads_left(daemon: &Daemon) -> Vec<String> {
    let dir = daemon.state_dir().join("fleet");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// Waits until the daemon has polled `more` more times than now (each poll is a second apart).
fn polls_later(daemon: &Daemon, more: u64) {
    let from = fleet_status(daemon)["polls"].as_u64().unwrap();
    wait("more polls", daemon, || {
        (fleet_status(daemon)["polls"].as_u64().unwrap() >= from + more).then_some(())
    });
}

fn executions(script: &Mutex<Script>) -> Vec<String> {
    feedback(script, "/deploymentBase/1/feedback")
        .iter()
        .map(|f| f["status"]["execution"].as_str().unwrap().to_string())
        .collect()
}

fn feedback(script: &Mutex<Script>, path: &str) -> Vec<Value> {
    script
        .lock()
        .unwrap()
        .received
        .iter()
        .filter(|(p, _)| p.ends_with(path))
        .map(|(_, v)| v.clone())
        .collect()
}

#[test]
fn a_cancel_while_downloading_is_accepted_and_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let (artifact, key) = signed_bundle(dir.path());
    let script = Arc::new(Mutex::new(Script {
        artifact,
        stall_after: Some(50_000),
        deploy: true,
        ..Script::default()
    }));
    let snapd = FakeSnapd::start();
    let daemon = start(&script, &key, &snapd);
    wait("the download under way", &daemon, || {
        let st = fleet_status(&daemon);
        (st["current"]["downloaded"].as_u64() >= Some(50_000)).then_some(())
    });
    {
        let mut s = script.lock().unwrap();
        s.deploy = false;
        s.cancel = Some(("11".into(), "1".into()));
    }
    let answers = wait("the answer to the cancel", &daemon, || {
        Some(feedback(&script, "/cancelAction/11/feedback")).filter(|v| !v.is_empty())
    });
    assert_eq!(answers[0]["status"]["execution"], "closed", "{answers:?}");
    assert_eq!(answers[0]["status"]["result"]["finished"], "success", "{answers:?}");
    let st = wait("the cancelled action in the history", &daemon, || {
        let st = fleet_status(&daemon);
        (st["history"][0]["id"] == "1").then_some(st)
    });
    assert_eq!(st["history"][0]["stage"], "cancelled", "{st}");
    assert!(snapd.state().installed_files.is_empty(), "nothing applied");
    assert_eq!(downloads_left(&daemon), Vec::<String>::new(), "the part is removed");
    // No closed feedback for the deployment itself: the cancel answered it.
    assert!(feedback(&script, "/deploymentBase/1/feedback")
        .iter()
        .all(|f| f["status"]["execution"] == "proceeding"));
}

#[test]
fn a_cancel_while_snapd_applies_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (artifact, key) = signed_bundle(dir.path());
    let script = Arc::new(Mutex::new(Script { artifact, deploy: true, ..Script::default() }));
    let snapd = FakeSnapd::start();
    // snapd's change stays in Doing: the action stays in `applying`.
    snapd.state().install_script = Some(vec![Step::State(
        json!({"status": "Doing", "ready": false, "tasks": [
        {"id": "2", "kind": "mount-snap", "summary": "Mount snap \"hello\" (unset)", "status": "Doing"}]}),
    )]);
    let daemon = start(&script, &key, &snapd);
    wait("snapd applying", &daemon, || {
        (fleet_status(&daemon)["current"]["stage"] == "applying").then_some(())
    });
    script.lock().unwrap().cancel = Some(("12".into(), "1".into()));
    let answers = wait("the answer to the cancel", &daemon, || {
        Some(feedback(&script, "/cancelAction/12/feedback")).filter(|v| !v.is_empty())
    });
    assert_eq!(answers[0]["status"]["execution"], "rejected", "{answers:?}");
    assert_eq!(
        answers[0]["status"]["details"][0],
        "cannot cancel: the update is being applied by snapd"
    );
    assert_eq!(fleet_status(&daemon)["current"]["stage"], "applying");
}

/// `downloaded` as the DDI spec has it: `{"execution": "downloaded", "result": {"finished": "none"}}`.
fn is_downloaded(f: &Value) -> bool {
    f["status"]["execution"] == "downloaded" && f["status"]["result"]["finished"] == "none"
}

/// A daemon offered action 1 with `update: skip` (and the maintenance `window` when given): it
/// downloaded the artifact, said `downloaded`, and has polled four times since.
fn downloaded_and_waiting(
    window: Option<&'static str>,
) -> (tempfile::TempDir, Arc<Mutex<Script>>, FakeSnapd, Daemon) {
    let dir = tempfile::tempdir().unwrap();
    let (artifact, key) = signed_bundle(dir.path());
    let script = Arc::new(Mutex::new(Script {
        artifact,
        deploy: true,
        update: Some("skip"),
        window,
        ..Script::default()
    }));
    let snapd = FakeSnapd::start();
    let daemon = start(&script, &key, &snapd);
    wait("the downloaded feedback", &daemon, || {
        feedback(&script, "/deploymentBase/1/feedback").iter().any(is_downloaded).then_some(())
    });
    polls_later(&daemon, 4);
    (dir, script, snapd, daemon)
}

/// The fleet status once action 1 heads the history.
fn first_in_history(daemon: &Daemon) -> Value {
    wait("action 1 in the history", daemon, || {
        let st = fleet_status(daemon);
        (st["history"][0]["id"] == "1").then_some(st)
    })
}

#[test]
fn update_skip_downloads_reports_downloaded_once_and_applies_nothing() {
    // The server keeps offering the action: the device waits, and says nothing more.
    let (_dir, script, snapd, daemon) = downloaded_and_waiting(None);
    let sent = feedback(&script, "/deploymentBase/1/feedback");
    assert_eq!(sent.iter().filter(|f| is_downloaded(f)).count(), 1, "{sent:?}");
    assert!(!executions(&script).contains(&"closed".to_string()), "{sent:?}");
    assert_eq!(script.lock().unwrap().downloads, 1, "downloaded once");
    assert!(snapd.state().installed_files.is_empty(), "nothing applied");
    let asked: Vec<String> = snapd
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path != "/v2/snapctl")
        .map(|r| r.path.clone())
        .collect();
    assert!(asked.is_empty(), "nothing asked of snapd: {asked:?}");
    let st = fleet_status(&daemon);
    assert_eq!(st["current"]["stage"], "downloading", "{st}");
    assert_eq!(st["current"]["waiting"], true, "{st}");
    assert_eq!(st["current"]["progress"], 100, "{st}");
    assert_eq!(downloads_left(&daemon), ["1.swu"]);
    // hawkBit closes a download-only action on `downloaded`: it is no longer offered.
    script.lock().unwrap().deploy = false;
    let st = first_in_history(&daemon);
    assert_eq!(st["history"][0]["stage"], "cancelled", "{st}");
    assert_eq!(
        st["history"][0]["details"][0],
        "downloaded; the server no longer offers the update, nothing applied"
    );
    assert_eq!(downloads_left(&daemon), Vec::<String>::new(), "the download is removed");
    assert!(snapd.state().installed_files.is_empty(), "nothing applied");
}

#[test]
fn an_unavailable_maintenance_window_waits_then_applies_without_a_second_download() {
    let (_dir, script, snapd, daemon) = downloaded_and_waiting(Some("unavailable"));
    assert!(snapd.state().installed_files.is_empty(), "nothing applied outside the window");
    assert_eq!(fleet_status(&daemon)["current"]["waiting"], true);
    // The window opens: hawkBit sends the action's own `update` and `available`.
    {
        let mut s = script.lock().unwrap();
        s.update = Some("attempt");
        s.window = Some("available");
    }
    let closed = wait("the final feedback", &daemon, || {
        feedback(&script, "/deploymentBase/1/feedback")
            .into_iter()
            .find(|f| f["status"]["execution"] == "closed")
    });
    assert_eq!(closed["status"]["result"]["finished"], "success", "{closed}");
    let files = snapd.state().installed_files.clone();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].0, "hello_1.snap");
    assert_eq!(script.lock().unwrap().downloads, 1, "applied from the file already downloaded");
    let ex = executions(&script);
    assert_eq!(ex.iter().filter(|e| *e == "downloaded").count(), 1, "{ex:?}");
    let st = first_in_history(&daemon);
    assert_eq!(st["history"][0]["stage"], "done", "{st}");
    assert_eq!(st["history"][0]["waiting"], false, "{st}");
}

/// `fleet status` shows the poll the daemon made a moment ago, although an idle poll writes
/// nothing to `fleet-status.json`; the file gets the times when the daemon stops.
#[test]
fn fleet_status_shows_the_last_poll_the_file_does_not_carry() {
    let dir = tempfile::tempdir().unwrap();
    let (_, key) = signed_bundle(dir.path());
    let script = Arc::new(Mutex::new(Script::default()));
    let snapd = FakeSnapd::start();
    let mut daemon = start(&script, &key, &snapd);
    let file = daemon.state_dir().join("fleet-status.json");
    wait("three polls", &daemon, || (fleet_status(&daemon)["polls"].as_u64()? >= 3).then_some(()));
    let live = fleet_status(&daemon);
    let on_disk: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let last = live["last-poll"].as_u64().unwrap();
    // Polls are a second apart (±10 %): the last one is recent, whatever the machine's load.
    assert!(now - last <= LIMIT.as_secs(), "{live}");
    assert!(live["next-poll"].as_u64().unwrap() >= last, "{live}");
    assert_eq!(live["last-success"], live["last-poll"], "{live}");
    assert_eq!(live["pid"], on_disk["pid"], "{live}");
    assert!(
        on_disk["polls"].as_u64().unwrap() < live["polls"].as_u64().unwrap(),
        "the file is not rewritten at every poll: {on_disk}"
    );
    let text = Command::new(support::bin())
        .args(["fleet", "status"])
        .env("POCKETSES_STATE_DIR", daemon.state_dir())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    let line = text.lines().find(|l| l.starts_with("last poll:")).unwrap();
    assert!(line.ends_with(" s ago"), "{text}");
    daemon.terminate();
    let on_disk: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert!(on_disk["polls"].as_u64().unwrap() >= live["polls"].as_u64().unwrap(), "{on_disk}");
    assert!(on_disk["last-poll"].as_u64().unwrap() >= last, "{on_disk}");
    // Without the daemon, `fleet status` reads that file.
    assert_eq!(fleet_status(&daemon)["polls"], on_disk["polls"]);
}
