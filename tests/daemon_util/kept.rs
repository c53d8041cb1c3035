//! A daemon on a state directory the test keeps, so that it can be killed (`kill -9`) and started
//! again on the same spools: the push tests' daemon (`tests/push_*.rs`, `tests/hub_*.rs`).

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::poll;

/// A running `pocketses daemon --interval 1` on loopback, killed on drop if still running.
pub struct Kept {
    pub child: Child,
    pub dir: PathBuf,
}

impl Kept {
    /// Starts the daemon with state directory `dir` (spools in `dir/spool`), a free HTTP port,
    /// no snapd, `args` last; returns once its ready file is written.
    pub fn start(dir: &Path, args: &[&str]) -> Kept {
        let ready = dir.join("ready");
        let _ = std::fs::remove_file(&ready);
        let child = Command::new(env!("CARGO_BIN_EXE_pocketses"))
            .args(["daemon", "--bind", "127.0.0.1", "--port", "0", "--interval", "1"])
            .args(["--http-port", &super::free_port().to_string()])
            .arg("--ready-file")
            .arg(&ready)
            .args(args)
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
        let mut daemon = Kept { child, dir: dir.to_path_buf() };
        poll("the ready file", || {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("daemon exited with {status}: {}", daemon.stderr());
            }
            std::fs::read_to_string(&ready).ok().filter(|t| t.ends_with('\n'))
        });
        daemon
    }

    /// Everything the daemon logged, over all its starts on this directory.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    /// The HTTP listener's address.
    pub fn http(&self) -> std::net::SocketAddr {
        let text = std::fs::read_to_string(self.dir.join("ready")).unwrap();
        super::parse_ready(&text).1.unwrap()
    }

    /// `GET path` on the HTTP listener.
    pub fn get(&self, path: &str) -> super::Response {
        let mut s = TcpStream::connect(self.http()).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        super::Response::parse(&raw)
    }

    /// The body of `GET /metrics`.
    pub fn metrics(&self) -> String {
        self.get("/metrics").body
    }

    /// `pocketses spool status --json` (live figures from this daemon when it runs).
    pub fn spool_status(&self) -> serde_json::Value {
        let out = Command::new(env!("CARGO_BIN_EXE_pocketses"))
            .args(["spool", "status", "--json", "--state-dir"])
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Records waiting in spool `name`; 0 while the spool does not exist yet (a sink added by a
    /// reload creates it when it starts).
    pub fn pending(&self, name: &str) -> u64 {
        let status = self.spool_status();
        let found = status["spools"].as_array().unwrap().iter().find(|s| s["name"] == name);
        found.map_or(0, |s| s["pending-records"].as_u64().unwrap())
    }

    /// Sends a configuration document over the control socket, as the configure hook does.
    pub fn reload(&self, doc: serde_json::Value) {
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

    /// Sends `signal` and waits for the daemon to end.
    pub fn stop(mut self, signal: i32) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
        self.child.wait().unwrap();
    }

    /// `kill -9`, and waits.
    pub fn kill9(self) {
        self.stop(libc::SIGKILL);
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
