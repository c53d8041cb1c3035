//! A real gooseBit 0.2.12 for the fleet tests, and a loopback proxy that can break downloads.
//!
//! gooseBit is the venv `.ci/install.d/goosebit.sh` builds at /var/cache/pocketses-ci/goosebit
//! (`$POCKETSES_GOOSEBIT` overrides it), started as ../shared/docs/real-servers.md says:
//! migrations, uvicorn on a free loopback port, `/setup`, `/login`. Its admin API is driven
//! with curl. When it is missing, [`GooseBit::start`] returns `None` and says so on stderr,
//! except under CI (`POCKETSES_CI` set), where it panics: CI installs it, so a skip would hide
//! a defect.
//!
//! [`Proxy`] forwards a loopback port to gooseBit and watches the device's downloads
//! (`GET …/download`): it records their `Range` headers, and on request cuts one after some
//! bytes, goes away altogether (refusing connections) after some bytes, or stalls one.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::free_port;
use super::stores::in_ci;

/// A running gooseBit, stopped on drop.
pub struct GooseBit {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    child: Child,
    token: String,
    dir: tempfile::TempDir,
}

fn venv() -> PathBuf {
    std::env::var_os("POCKETSES_GOOSEBIT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/pocketses-ci/goosebit"))
}

fn curl(args: &[&str]) -> String {
    let out =
        Command::new("curl").args(["-sS", "--fail-with-body", "-m", "30"]).args(args).output();
    let out = out.expect("run curl (install it: .ci/install)");
    assert!(
        out.status.success(),
        "curl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

impl GooseBit {
    /// Starts gooseBit with `env` added (e.g. device authentication); `None` when it is not
    /// installed outside CI.
    pub fn start(env: &[(&str, &str)]) -> Option<GooseBit> {
        let venv = venv();
        if !venv.join("bin/uvicorn").exists() {
            let why = format!(
                "gooseBit is not installed at {} (run .ci/install.d/goosebit.sh)",
                venv.display()
            );
            assert!(!in_ci(), "{why}");
            eprintln!(
                "goosebit: SKIPPED, nothing checked: {why}; CI (POCKETSES_CI=1) fails instead"
            );
            return None;
        }
        let dir = tempfile::Builder::new().prefix("pocketses-goosebit").tempdir().unwrap();
        let data = dir.path().join("data");
        let work = dir.path().join("work");
        std::fs::create_dir_all(data.join("artifacts")).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        let site = Command::new(venv.join("bin/python"))
            .args(["-c", "import goosebit, os; print(os.path.dirname(goosebit.__file__))"])
            .output()
            .unwrap();
        let site = String::from_utf8(site.stdout).unwrap().trim().to_string();
        let envs = |cmd: &mut Command| {
            cmd.current_dir(&work)
                .env("GOOSEBIT_DB_URI", format!("sqlite:///{}/db.sqlite3", data.display()))
                .env("GOOSEBIT_ARTIFACTS_DIR", data.join("artifacts"))
                .env("GOOSEBIT_POLL_TIME", "00:00:02")
                .env("GOOSEBIT_SECRET_KEY", "pocketses-test-not-a-secret")
                .envs(env.iter().copied());
        };
        for args in [
            vec![
                "init",
                "-t",
                "goosebit.db.config.TORTOISE_CONF",
                "--location",
                &format!("{site}/db/migrations"),
            ],
            vec!["upgrade"],
        ] {
            let mut cmd = Command::new(venv.join("bin/aerich"));
            envs(&mut cmd);
            let out = cmd.args(&args).output().unwrap();
            assert!(
                out.status.success(),
                "aerich {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let port = free_port();
        let mut cmd = Command::new(venv.join("bin/uvicorn"));
        envs(&mut cmd);
        let log = std::fs::File::create(dir.path().join("goosebit.log")).unwrap();
        let child = cmd
            .args(["goosebit:app", "--host", "127.0.0.1", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let mut gb = GooseBit { url, child, token: String::new(), dir };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "gooseBit did not start: {}",
                gb.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        curl(&[
            "-o",
            "/dev/null",
            "-XPOST",
            &format!("{}/setup", gb.url),
            "-d",
            "username=admin@goosebit.local&password=admin",
        ]);
        let login: Value = serde_json::from_str(&curl(&[
            "-XPOST",
            &format!("{}/login", gb.url),
            "-d",
            "username=admin@goosebit.local&password=admin",
        ]))
        .unwrap();
        gb.token = login["access_token"].as_str().unwrap().to_string();
        Some(gb)
    }

    /// gooseBit's own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("goosebit.log")).unwrap_or_default()
    }

    fn api(&self, args: &[&str]) -> String {
        let auth = format!("Authorization: Bearer {}", self.token);
        let mut all = vec!["-H", auth.as_str()];
        all.extend_from_slice(args);
        curl(&all)
    }

    /// Uploads a bundle; returns gooseBit's software id.
    pub fn upload(&self, file: &Path) -> String {
        let form = format!("file=@{}", file.display());
        let reply: Value = serde_json::from_str(&self.api(&[
            "-XPUT",
            &format!("{}/api/v1/software", self.url),
            "-F",
            &form,
        ]))
        .unwrap();
        reply["id"].to_string()
    }

    /// `PATCH /api/v1/devices` with `body`'s fields for `device`.
    pub fn patch(&self, device: &str, body: Value) {
        let mut doc = body;
        doc["devices"] = serde_json::json!([device]);
        self.api(&[
            "-XPATCH",
            &format!("{}/api/v1/devices", self.url),
            "-H",
            "Content-Type: application/json",
            "-d",
            &doc.to_string(),
        ]);
    }

    /// Assigns software `id` to `device`, forcing it (a device in Error gets it too).
    pub fn assign(&self, device: &str, id: &str) {
        self.patch(device, serde_json::json!({"software": id, "force_update": true}));
    }

    /// The device as gooseBit's device list shows it (`GET /api/v1/devices/ID` answers 500
    /// once software is assigned, in 0.2.12).
    pub fn device(&self, id: &str) -> Option<Value> {
        let all: Value =
            serde_json::from_str(&self.api(&[&format!("{}/api/v1/devices", self.url)])).unwrap();
        all["devices"].as_array()?.iter().find(|d| d["id"] == id).cloned()
    }

    /// The device's log as gooseBit keeps it (feedback details, one line each).
    pub fn device_log(&self, id: &str) -> String {
        let doc: Value =
            serde_json::from_str(&self.api(&[&format!("{}/api/v1/devices/{id}/log", self.url)]))
                .unwrap_or(Value::Null);
        doc["log"].as_str().map_or_else(|| doc.to_string(), str::to_string)
    }
}

impl Drop for GooseBit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the proxy does with the next download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward everything.
    Pass,
    /// Cut the next download's connection after this many bytes, then pass again.
    Cut(u64),
    /// After this many bytes of the next download, close every connection and refuse new ones
    /// (the server went away) until [`Proxy::set`] `Pass`.
    GoAway(u64),
    /// Forward this many bytes of the next download, then nothing more.
    Stall(u64),
    /// Refusing connections (after `GoAway`).
    Down,
}

#[derive(Debug)]
struct Shared {
    mode: Mode,
    ranges: Vec<Option<String>>,
    conns: Vec<TcpStream>,
}

/// A loopback TCP proxy in front of gooseBit.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    shared: Arc<Mutex<Shared>>,
}

impl Proxy {
    /// Starts forwarding a free port to `upstream` (`host:port`).
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared =
            Arc::new(Mutex::new(Shared { mode: Mode::Pass, ranges: vec![], conns: vec![] }));
        let upstream = upstream.to_string();
        let s = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if s.lock().unwrap().mode == Mode::Down {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else { continue };
                {
                    let mut g = s.lock().unwrap();
                    g.conns.push(client.try_clone().unwrap());
                    g.conns.push(server.try_clone().unwrap());
                }
                // Bytes of the current download answer still allowed; u64::MAX: no limit.
                let armed = Arc::new(Mutex::new(None::<Mode>));
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (a1, sh1) = (armed.clone(), s.clone());
                std::thread::spawn(move || upward(client, server, a1, sh1));
                let sh2 = s.clone();
                std::thread::spawn(move || downward(s2, c2, armed, sh2));
            }
        });
        Proxy { url, shared }
    }

    /// Sets the mode.
    pub fn set(&self, mode: Mode) {
        self.shared.lock().unwrap().mode = mode;
    }

    /// The mode now.
    pub fn mode(&self) -> Mode {
        self.shared.lock().unwrap().mode
    }

    /// The `Range` header of every download request so far (`None`: without one).
    pub fn ranges(&self) -> Vec<Option<String>> {
        self.shared.lock().unwrap().ranges.clone()
    }
}

fn upward(
    mut client: TcpStream,
    mut server: TcpStream,
    armed: Arc<Mutex<Option<Mode>>>,
    s: Arc<Mutex<Shared>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let text = String::from_utf8_lossy(&buf[..n]);
        if text.starts_with("GET ") && text.lines().next().is_some_and(|l| l.contains("/download "))
        {
            let range = text
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("range:"))
                .map(|l| l[6..].trim().to_string());
            let mut g = s.lock().unwrap();
            g.ranges.push(range);
            let mode = g.mode;
            if matches!(mode, Mode::Cut(_) | Mode::GoAway(_) | Mode::Stall(_)) {
                *armed.lock().unwrap() = Some(mode);
                g.mode = Mode::Pass;
            }
        }
        if server.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = server.shutdown(Shutdown::Both);
}

fn downward(
    mut server: TcpStream,
    mut client: TcpStream,
    armed: Arc<Mutex<Option<Mode>>>,
    s: Arc<Mutex<Shared>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut sent = 0u64;
    let mut counting = false;
    loop {
        let n = match server.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mode = *armed.lock().unwrap();
        // Count from the first answer byte after the download request, not the connection's.
        if mode.is_some() && !counting {
            counting = true;
            sent = 0;
        }
        let limit = match mode {
            Some(Mode::Cut(n) | Mode::GoAway(n) | Mode::Stall(n)) => Some(n),
            _ => None,
        };
        let allowed = limit.map_or(n as u64, |l| l.saturating_sub(sent).min(n as u64));
        let allowed = usize::try_from(allowed).unwrap();
        if client.write_all(&buf[..allowed]).is_err() {
            break;
        }
        sent += allowed as u64;
        if allowed < n {
            match mode {
                Some(Mode::Cut(_)) => {
                    let _ = client.shutdown(Shutdown::Both);
                    let _ = server.shutdown(Shutdown::Both);
                    return;
                }
                Some(Mode::GoAway(_)) => {
                    let mut g = s.lock().unwrap();
                    g.mode = Mode::Down;
                    for c in g.conns.drain(..) {
                        let _ = c.shutdown(Shutdown::Both);
                    }
                    return;
                }
                _ => {
                    // Stall: hold the connection open, forward nothing more.
                    std::thread::sleep(Duration::from_secs(600));
                    return;
                }
            }
        }
    }
    let _ = client.shutdown(Shutdown::Both);
}
