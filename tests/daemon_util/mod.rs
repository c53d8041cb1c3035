//! Helpers for the daemon's integration tests: start the real binary on ephemeral loopback ports,
//! subscribe, speak raw HTTP, and poll for conditions with bounded deadlines (never sleep for readiness).

#![allow(dead_code)] // Each test file uses a different part of this module.
#![allow(clippy::unwrap_used)] // Test helpers: a failed unwrap is a failed test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub mod kept;
pub mod scripted;

/// Upper bound for anything a test waits for; reaching it is a failure, not a measurement.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A running `pocketses daemon`, killed on drop if still running.
pub struct Daemon {
    pub child: Child,
    pub tcp: SocketAddr,
    pub http: Option<SocketAddr>,
    dir: tempfile::TempDir,
}

// HTTP port 0 means "disabled", so tests pick one; support/port.rs owns how. A crate that also
// has `mod support;` loads the file twice, on purpose: port.rs keeps the two copies apart.
#[allow(clippy::duplicate_mod)]
#[path = "../support/port.rs"]
mod port;
pub use port::free_port;

/// The effective uid of the test process.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// Polls `cond` until it returns `Some`, failing with `what` after [`DEADLINE`].
pub fn poll<T>(what: &str, mut cond: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Daemon {
    /// Starts the daemon with `args` on 127.0.0.1, TCP port 0, an HTTP port, and no snapd.
    pub fn start(args: &[&str]) -> Daemon {
        Daemon::start_with(args, true, None)
    }

    /// Like [`Daemon::start`]; `http` false disables HTTP, `nofile` caps RLIMIT_NOFILE (soft and hard).
    pub fn start_with(args: &[&str], http: bool, nofile: Option<u64>) -> Daemon {
        Daemon::start_env(args, http, nofile, &[])
    }

    /// Like [`Daemon::start_with`], with more environment (a fake snapd's `env()`), set last.
    pub fn start_env(
        args: &[&str],
        http: bool,
        nofile: Option<u64>,
        envs: &[(String, String)],
    ) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let ready = dir.path().join("ready");
        let http_port = if http { free_port().to_string() } else { "0".to_string() };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pocketses"));
        cmd.arg("daemon")
            .args(["--bind", "127.0.0.1", "--port", "0", "--http-port", &http_port])
            .arg("--ready-file")
            .arg(&ready)
            .args(args)
            .env("POCKETSES_SNAPD_SOCKET", dir.path().join("no-snapd.socket"))
            .env("POCKETSES_STATE_DIR", dir.path())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr")).expect("stderr file"));
        if let Some(limit) = nofile {
            // SAFETY: setrlimit is async-signal-safe and only reads the struct.
            unsafe {
                cmd.pre_exec(move || {
                    let rl = libc::rlimit { rlim_cur: limit, rlim_max: limit };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        cmd.envs(envs.iter().cloned());
        let child = cmd.spawn().expect("start pocketses");
        let mut daemon = Daemon { child, tcp: "0.0.0.0:0".parse().unwrap(), http: None, dir };
        let text = poll("the ready file", || {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("daemon exited with {status}: {}", daemon.stderr());
            }
            std::fs::read_to_string(&ready).ok().filter(|t| t.ends_with('\n'))
        });
        let (tcp, http) = parse_ready(&text);
        daemon.tcp = tcp.expect("tcp address in ready file");
        daemon.http = http;
        daemon
    }

    /// The daemon's stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    pub fn ready_file(&self) -> PathBuf {
        self.dir.path().join("ready")
    }

    /// The daemon's state directory (`POCKETSES_STATE_DIR`), where its control socket is.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Sends `signal` to the daemon.
    pub fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: plain kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    /// A new subscriber on the TCP stream.
    pub fn subscribe(&self) -> Subscriber {
        Subscriber::connect(self.tcp)
    }

    /// GET `path` over a fresh connection; returns status, lowercased headers and body.
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path)
    }

    /// One raw HTTP/1.1 request with `Connection: close`.
    pub fn request(&self, method: &str, path: &str) -> Response {
        let addr = self.http.expect("http enabled");
        let mut stream = TcpStream::connect(addr).expect("connect http");
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        write!(stream, "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read http response");
        Response::parse(&raw)
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: plain kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        poll("the daemon to exit", || self.child.try_wait().expect("wait"))
    }

    /// The value of a family in `/metrics`: its sample without labels, or the sum of its labelled ones.
    pub fn metric(&self, name: &str) -> f64 {
        // 503 until the first collection is done.
        let res = poll("a first snapshot on /metrics", || {
            Some(self.get("/metrics")).filter(|res| res.status != 503)
        });
        assert_eq!(res.status, 200, "{}", res.body);
        let values: Vec<f64> = res
            .body
            .lines()
            .filter_map(|l| l.strip_prefix(name))
            .filter(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            .map(|rest| rest.rsplit(' ').next().unwrap().trim().parse().expect("a number"))
            .collect();
        assert!(!values.is_empty(), "{name} not in /metrics:\n{}", res.body);
        values.iter().sum()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Parses "tcp=ADDR http=ADDR|off".
pub fn parse_ready(text: &str) -> (Option<SocketAddr>, Option<SocketAddr>) {
    let mut tcp = None;
    let mut http = None;
    for word in text.split_whitespace() {
        if let Some(v) = word.strip_prefix("tcp=") {
            tcp = v.parse().ok();
        } else if let Some(v) = word.strip_prefix("http=") {
            http = v.parse().ok();
        }
    }
    (tcp, http)
}

/// A TCP stream subscriber; reads fail the test after [`DEADLINE`].
pub struct Subscriber {
    pub reader: BufReader<TcpStream>,
}

/// How a read on a subscriber ended.
#[derive(Debug, PartialEq)]
pub enum Read1 {
    Line(String),
    /// The daemon closed the connection (EOF or reset) before a whole line.
    Closed,
}

impl Subscriber {
    pub fn connect(addr: SocketAddr) -> Subscriber {
        let stream = TcpStream::connect(addr).expect("connect to the stream");
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        Subscriber { reader: BufReader::new(stream) }
    }

    /// The next line, or `Closed`; a timeout fails the test.
    pub fn next(&mut self) -> Read1 {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Read1::Closed,
            Ok(_) if line.ends_with('\n') => Read1::Line(line),
            Ok(_) => Read1::Closed,
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("no line within {DEADLINE:?}")
            }
            Err(_) => Read1::Closed,
        }
    }

    /// The next line, which must be there.
    pub fn line(&mut self) -> String {
        match self.next() {
            Read1::Line(line) => line,
            Read1::Closed => panic!("the daemon closed the stream"),
        }
    }

    pub fn stream(&mut self) -> &mut TcpStream {
        self.reader.get_mut()
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// Parses a whole raw answer (a chunked body is joined).
    pub fn parse(raw: &[u8]) -> Response {
        let text = String::from_utf8_lossy(raw);
        let (head, body) = text.split_once("\r\n\r\n").expect("http head");
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v == "chunked");
        let body = if chunked { dechunk(body) } else { body.to_string() };
        Response { status, headers, body }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

/// Whether `line` is one JSON object followed by a newline.
pub fn is_json_line(line: &str) -> bool {
    line.ends_with('\n')
        && !line[..line.len() - 1].contains('\n')
        && serde_json::from_str::<serde_json::Value>(line).map(|v| v.is_object()).unwrap_or(false)
}
