//! A scripted HTTP/1.1 endpoint on loopback for the push and notification tests: keep-alive,
//! `Content-Length` bodies, each answer decided by a script from the request's index and body;
//! every request is logged with what it was answered.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// One request the endpoint got, and what it answered.
#[derive(Debug, Clone)]
pub struct Got {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub status: u16,
}

impl Got {
    /// A header's value (names are lowercased).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// What the endpoint answers: status, extra headers, body.
pub type Answer = (u16, Vec<(String, String)>, String);
/// Decides the answer from the index of the request and its body.
pub type Script = Box<dyn FnMut(usize, &[u8]) -> Answer + Send>;

/// The endpoint: its port and the requests it got.
pub struct Scripted {
    pub port: u16,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Scripted {
    /// Starts on a free loopback port.
    pub fn start(script: Script) -> Scripted {
        Scripted::start_on(TcpListener::bind("127.0.0.1:0").unwrap(), script)
    }

    /// Starts on `listener` (bound by the caller, to start late on a known port).
    pub fn start_on(listener: TcpListener, script: Script) -> Scripted {
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
        Scripted { port, got }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every request so far, in order.
    pub fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
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
        let (status, extra, text) = (script.lock().unwrap())(log.len(), &body);
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
