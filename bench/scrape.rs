//! Item 4: `GET /metrics`, scraped sequentially over one keep-alive connection (the same client for
//! both servers), and optionally by `wrk`; the server's CPU per scrape comes from its process CPU clock.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::stats::percentile;
use crate::sys::{process_cpu, rss_kb};

/// What a sequential scrape run measured.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Scrapes that returned 200 with a complete body.
    pub scrapes: usize,
    /// Wall time of the loop, s.
    pub secs: f64,
    /// Latency per scrape, p50 and p99, ms.
    pub p50_ms: f64,
    /// See `p50_ms`.
    pub p99_ms: f64,
    /// Server CPU per scrape, ms.
    pub cpu_per_scrape_ms: f64,
    /// Size of the last body, bytes (uncompressed).
    pub body_bytes: usize,
    /// Samples in the last body (lines that are neither comments nor blank).
    pub samples: usize,
    /// Metric families in the last body (`# TYPE` lines).
    pub families: usize,
    /// New connections opened (1 when keep-alive held throughout).
    pub connections: usize,
    /// Server VmRSS after the loop, kB.
    pub rss_kb: u64,
}

impl Report {
    /// Scrapes per second.
    pub fn rate(&self) -> f64 {
        if self.secs > 0.0 {
            self.scrapes as f64 / self.secs
        } else {
            0.0
        }
    }
}

struct Client {
    addr: SocketAddr,
    conn: Option<BufReader<TcpStream>>,
    connections: usize,
}

impl Client {
    fn get(&mut self, path: &str) -> anyhow::Result<Vec<u8>> {
        if self.conn.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))
                .with_context(|| format!("cannot connect to {}", self.addr))?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            self.conn = Some(BufReader::with_capacity(256 * 1024, s));
            self.connections += 1;
        }
        let Some(conn) = self.conn.as_mut() else { bail!("internal error: no connection") };
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: pocketses-bench\r\nAccept: */*\r\n\r\n",
            self.addr
        );
        conn.get_mut().write_all(req.as_bytes()).context("cannot send the request")?;
        let mut line = String::new();
        conn.read_line(&mut line).context("cannot read the status line")?;
        let status = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut length = None;
        let mut chunked = false;
        let mut close = false;
        loop {
            line.clear();
            if conn.read_line(&mut line)? == 0 {
                bail!("connection closed in the headers");
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse::<usize>().ok(),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "connection" => close = value.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                conn.read_line(&mut line)?;
                let size_text = line.trim().split(';').next().unwrap_or("");
                let size = usize::from_str_radix(size_text, 16)
                    .with_context(|| format!("bad chunk size {size_text:?}"))?;
                if size == 0 {
                    // Trailers, then the empty line.
                    loop {
                        line.clear();
                        if conn.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                conn.read_exact(&mut body[start..])?;
                line.clear();
                conn.read_line(&mut line)?;
            }
        } else if let Some(n) = length {
            body.resize(n, 0);
            conn.read_exact(&mut body)?;
        } else {
            conn.read_to_end(&mut body)?;
            close = true;
        }
        if close {
            self.conn = None;
        }
        if status != "200" {
            bail!("GET {path} answered {status}");
        }
        Ok(body)
    }
}

/// Scrapes `path` at `addr` up to `count` times within `max_time` after 5 warm-up scrapes.
///
/// # Errors
/// When a scrape fails or the server's CPU clock cannot be read.
pub fn run(
    addr: SocketAddr,
    path: &str,
    pid: u32,
    count: usize,
    max_time: Duration,
) -> anyhow::Result<Report> {
    let mut client = Client { addr, conn: None, connections: 0 };
    let mut body = Vec::new();
    for _ in 0..5 {
        body = client.get(path)?;
    }
    let mut lat = Vec::with_capacity(count);
    let cpu0 = process_cpu(pid)?;
    let started = Instant::now();
    while lat.len() < count && started.elapsed() < max_time {
        let t = Instant::now();
        body = client.get(path)?;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = process_cpu(pid)? - cpu0;
    let text = String::from_utf8_lossy(&body);
    Ok(Report {
        scrapes: lat.len(),
        secs,
        p50_ms: percentile(&lat, 50.0),
        p99_ms: percentile(&lat, 99.0),
        cpu_per_scrape_ms: cpu.as_secs_f64() * 1e3 / lat.len().max(1) as f64,
        body_bytes: body.len(),
        samples: text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).count(),
        families: text.lines().filter(|l| l.starts_with("# TYPE ")).count(),
        connections: client.connections,
        rss_kb: rss_kb(pid).map(|(rss, _)| rss).unwrap_or(0),
    })
}

/// What one `wrk` run measured.
#[derive(Debug, Default, Clone)]
pub struct WrkReport {
    /// Connections.
    pub connections: usize,
    /// Requests completed.
    pub requests: u64,
    /// Requests per second as wrk reports it.
    pub rps: f64,
    /// Latency percentiles from `--latency`, ms.
    pub p50_ms: f64,
    /// See `p50_ms`.
    pub p99_ms: f64,
    /// Non-2xx responses plus socket errors.
    pub errors: u64,
    /// Server CPU per request, ms.
    pub cpu_per_scrape_ms: f64,
}

fn wrk_duration_ms(text: &str) -> Option<f64> {
    let text = text.trim();
    let (num, scale) = if let Some(v) = text.strip_suffix("us") {
        (v, 1e-3)
    } else if let Some(v) = text.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = text.strip_suffix('s') {
        (v, 1e3)
    } else if let Some(v) = text.strip_suffix('m') {
        (v, 60e3)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|v| v * scale)
}

/// Parses the text `wrk --latency` prints.
pub fn parse_wrk(out: &str) -> WrkReport {
    let mut r = WrkReport::default();
    for line in out.lines() {
        let t = line.trim();
        let words: Vec<&str> = t.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v, ..] => r.rps = v.parse().unwrap_or(0.0),
            ["50%", v] => r.p50_ms = wrk_duration_ms(v).unwrap_or(0.0),
            ["99%", v] => r.p99_ms = wrk_duration_ms(v).unwrap_or(0.0),
            [n, "requests", "in", ..] => r.requests = n.parse().unwrap_or(0),
            ["Non-2xx", "or", "3xx", "responses:", n] => r.errors += n.parse::<u64>().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                r.errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    r
}

/// Runs `wrk` against `url` for `secs` with `connections` connections and measures the server's CPU.
///
/// # Errors
/// When wrk cannot run or the server's CPU clock cannot be read.
pub fn wrk(
    wrk: &Path,
    url: &str,
    pid: u32,
    connections: usize,
    secs: u64,
) -> anyhow::Result<WrkReport> {
    let threads = connections.min(2);
    let cpu0 = process_cpu(pid)?;
    let out = Command::new(wrk)
        .args([
            "-t",
            &threads.to_string(),
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{secs}s"),
            "--latency",
            url,
        ])
        .output()
        .with_context(|| format!("cannot run {}", wrk.display()))?;
    let cpu = process_cpu(pid)? - cpu0;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let mut r = parse_wrk(&text);
    r.connections = connections;
    r.cpu_per_scrape_ms = cpu.as_secs_f64() * 1e3 / r.requests.max(1) as f64;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    const WRK: &str = "Running 1s test @ http://127.0.0.1:18765/
  1 threads and 1 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.16ms  583.04us   5.32ms   92.94%
    Req/Sec   826.90    114.61     0.93k    90.00%
  Latency Distribution
     50%  801.00us
     75%    1.08ms
     90%    1.61ms
     99%    1.02s
  823 requests in 1.00s, 3.52MB read
  Socket errors: connect 0, read 2, write 1, timeout 0
  Non-2xx or 3xx responses: 4
Requests/sec:    822.65
Transfer/sec:      3.51MB
";

    #[test]
    fn parses_wrk_latency_output() {
        let r = parse_wrk(WRK);
        assert_eq!(r.requests, 823);
        assert_eq!(r.rps, 822.65);
        assert!((r.p50_ms - 0.801).abs() < 1e-9, "{}", r.p50_ms);
        assert_eq!(r.p99_ms, 1020.0);
        assert_eq!(r.errors, 7);
    }

    #[test]
    fn wrk_units() {
        for (text, want) in [
            ("12us", Some(0.012)),
            ("3.5ms", Some(3.5)),
            ("2.00s", Some(2000.0)),
            ("1.00m", Some(60000.0)),
            ("7", None),
        ] {
            assert_eq!(wrk_duration_ms(text), want, "{text}");
        }
    }

    /// One keep-alive connection answers a chunked response, then a Content-Length one.
    #[test]
    fn client_reads_chunked_and_sized_bodies_on_one_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            let (s, _) = listener.accept().expect("accept");
            let mut r = BufReader::new(s.try_clone().expect("clone"));
            let mut w = s;
            let replies: [&[u8]; 2] = [
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\n# a\nb\r\n3\r\n 1\n\r\n0\r\nT: v\r\n\r\n",
                b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nc 2\n",
            ];
            for reply in replies {
                let mut line = String::new();
                loop {
                    line.clear();
                    r.read_line(&mut line).expect("request");
                    if line == "\r\n" {
                        break;
                    }
                }
                w.write_all(reply).expect("reply");
            }
        });
        let mut client = Client { addr, conn: None, connections: 0 };
        assert_eq!(client.get("/metrics").expect("first"), b"# a\nb 1\n");
        assert_eq!(client.get("/metrics").expect("second"), b"c 2\n");
        assert_eq!(client.connections, 1);
        server.join().expect("server");
    }
}
