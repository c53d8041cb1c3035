//! Real metric stores for the push tests: VictoriaMetrics 1.79, Prometheus 2.42 (remote-write
//! receiver) and InfluxDB 1.6, each started on a free loopback port in its own temp dir and
//! killed when dropped.
//!
//! The binaries are extracted from Debian's packages, not installed, by
//! `.ci/install.d/stores.sh` (VictoriaMetrics, InfluxDB) and `.ci/install.d/metrics.sh`
//! (Prometheus), under /var/cache/pocketses-ci; `$POCKETSES_VICTORIA_METRICS`,
//! `$POCKETSES_PROMETHEUS` and `$POCKETSES_INFLUXD` override the paths. When a binary is missing,
//! the start functions return `None` and say so on stderr, except under CI (`POCKETSES_CI` set),
//! where they panic: CI has every store, so a skip there would hide a defect.
//!
//! Every start function returns once the store answers its readiness URL, so a test can write at
//! once. The stores' own quirks (docs: ../shared/docs/real-servers.md) are handled here:
//! VictoriaMetrics runs with `-search.latencyOffset=0s` (otherwise queries lag 30 s) and
//! `-dedup.minScrapeInterval=1ms` (one sample per series and millisecond, as Prometheus and
//! InfluxDB keep one point per series and timestamp, so a re-sent point counts once), and
//! [`Store::series`] flushes it before reading; InfluxDB gets the database [`INFLUX_DB`].
//!
//! ```ignore
//! let Some(vm) = Store::victoria_metrics() else { return };
//! let res = vm.post("/api/v1/write", &[("Content-Encoding", "snappy")], &body);
//! assert_eq!(res.status, 204, "{}", res.text());
//! let series = vm.series(r#"{__name__="node_load1"}"#);
//! ```
//!
//! [`Store::kill`] (SIGKILL) or [`Store::stop`] (SIGTERM) and then [`Store::start`] stop and
//! restart a store on the same port and data, for outage tests. Mind that VictoriaMetrics has
//! no write-ahead log: SIGKILL loses the samples it took in its last few seconds, as a crash
//! would, so a test that must find every sample it sent stops it with [`Store::stop`].
//! InfluxDB and Prometheus keep what they acknowledged across SIGKILL (their WALs).

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// The database every InfluxDB store has from the start (write with `/write?db=pocketses`).
pub const INFLUX_DB: &str = "pocketses";

/// How long a store may take to answer its readiness URL (about 0.1 s here; generous for a
/// loaded machine, never a performance bound).
const READY_WITHIN: Duration = Duration::from_secs(60);

/// Which store a [`Store`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// VictoriaMetrics: Influx `/write`, `/api/v2/write` and remote-write `/api/v1/write`.
    VictoriaMetrics,
    /// Prometheus with `--web.enable-remote-write-receiver`: `/api/v1/write`.
    Prometheus,
    /// InfluxDB 1.6: `/write?db=…` (no `/api/v2/write`).
    Influx,
}

impl Kind {
    fn binary(self) -> (&'static str, &'static str) {
        match self {
            Kind::VictoriaMetrics => (
                "POCKETSES_VICTORIA_METRICS",
                "/var/cache/pocketses-ci/victoria-metrics/usr/bin/victoria-metrics",
            ),
            Kind::Prometheus => {
                ("POCKETSES_PROMETHEUS", "/var/cache/pocketses-ci/prometheus/usr/bin/prometheus")
            }
            Kind::Influx => {
                ("POCKETSES_INFLUXD", "/var/cache/pocketses-ci/influxdb/usr/bin/influxd")
            }
        }
    }

    fn ready_path(self) -> &'static str {
        match self {
            Kind::VictoriaMetrics => "/health",
            Kind::Prometheus => "/-/ready",
            Kind::Influx => "/ping",
        }
    }
}

/// One running store; SIGKILLed and its directory removed on drop.
pub struct Store {
    kind: Kind,
    binary: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// InfluxDB's backup RPC port, which cannot be turned off (kept on loopback).
    rpc_port: u16,
    child: Option<Child>,
    /// InfluxDB with `auth-enabled`: the admin user and password every query sends.
    credentials: Option<(String, String)>,
}

/// One series read back from VictoriaMetrics or Prometheus.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// All labels, `__name__` included.
    pub labels: BTreeMap<String, String>,
    /// (timestamp in milliseconds, value), oldest first.
    pub samples: Vec<(i64, f64)>,
}

impl Series {
    /// The metric name (`__name__`).
    pub fn name(&self) -> &str {
        self.labels.get("__name__").map(String::as_str).unwrap_or("")
    }
}

/// One point read back from InfluxDB.
#[derive(Debug, Clone, PartialEq)]
pub struct InfluxPoint {
    /// The measurement.
    pub measurement: String,
    /// The tags (only those the point has).
    pub tags: BTreeMap<String, String>,
    /// The timestamp in nanoseconds.
    pub time_ns: i64,
    /// The fields the point has (null columns of other points left out).
    pub fields: BTreeMap<String, serde_json::Value>,
}

/// An HTTP response from a store.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text, for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("store answered non-JSON ({e}): {}", self.text()))
    }
}

/// Whether this is a CI run, where every store must be there.
pub fn in_ci() -> bool {
    std::env::var("POCKETSES_CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

impl Store {
    /// Starts VictoriaMetrics; `None` (with a note on stderr) when its binary is missing
    /// outside CI.
    pub fn victoria_metrics() -> Option<Store> {
        Store::launch(Kind::VictoriaMetrics)
    }

    /// Starts Prometheus as a remote-write receiver; `None` (with a note on stderr) when its
    /// binary is missing outside CI.
    pub fn prometheus() -> Option<Store> {
        Store::launch(Kind::Prometheus)
    }

    /// Starts InfluxDB 1.6 with the database [`INFLUX_DB`]; `None` (with a note on stderr) when
    /// its binary is missing outside CI.
    pub fn influxdb() -> Option<Store> {
        let store = Store::launch(Kind::Influx)?;
        let res = store.post_form("/query", &[("q", &format!("CREATE DATABASE {INFLUX_DB}"))]);
        assert_eq!(res.status, 200, "influxdb: cannot create database: {}", res.text());
        Some(store)
    }

    /// Starts InfluxDB 1.6 with authentication on (`[http] auth-enabled`), an admin `user`
    /// with `password` (InfluxDB lets the first user be made without credentials) and the
    /// database [`INFLUX_DB`]; queries of this store send the credentials.
    pub fn influxdb_with_auth(user: &str, password: &str) -> Option<Store> {
        let mut store = Store::launch_with(Kind::Influx, Some((user.into(), password.into())))?;
        let create =
            format!("CREATE USER \"{user}\" WITH PASSWORD '{password}' WITH ALL PRIVILEGES");
        let credentials = store.credentials.take();
        let res = store.post_form("/query", &[("q", &create)]);
        assert_eq!(res.status, 200, "influxdb: cannot create user: {}", res.text());
        store.credentials = credentials;
        let res = store.post_form("/query", &[("q", &format!("CREATE DATABASE {INFLUX_DB}"))]);
        assert_eq!(res.status, 200, "influxdb: cannot create database: {}", res.text());
        Some(store)
    }

    /// Starts the store of `kind` (see the named constructors).
    pub fn launch(kind: Kind) -> Option<Store> {
        Store::launch_with(kind, None)
    }

    fn launch_with(kind: Kind, credentials: Option<(String, String)>) -> Option<Store> {
        let (var, default) = kind.binary();
        let binary = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| default.into());
        if !binary.is_file() {
            let why = format!(
                "{} not found: run `bash .ci/install.d/stores.sh` and `bash .ci/install.d/metrics.sh` \
                 (or set {var})",
                binary.display()
            );
            assert!(!in_ci(), "{why}");
            let _ = writeln!(
                std::io::stderr(),
                "stores: SKIPPED, nothing checked: {why}; CI (POCKETSES_CI=1) fails instead"
            );
            return None;
        }
        let dir = tempfile::Builder::new().prefix("pocketses-store").tempdir().expect("temp dir");
        let mut store = Store { kind, binary, dir, port: 0, rpc_port: 0, child: None, credentials };
        // A port free a moment ago may be taken by the time the store binds it (another test
        // starting a store): then the store exits, and it is tried again on other ports.
        for attempt in 1.. {
            store.port = free_port();
            store.rpc_port = free_port();
            while store.rpc_port == store.port {
                store.rpc_port = free_port();
            }
            if kind == Kind::Influx {
                store.write_influx_config();
            }
            match store.try_start() {
                Ok(()) => break,
                Err(why) if attempt >= 3 => panic!("{why}"),
                Err(_) => {}
            }
        }
        Some(store)
    }

    /// The kind of store.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The HTTP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` followed by `path` (`/api/v1/write`, `/write?db=pocketses`).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The store's temp dir (its data, config and `store.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The store's output so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("store.log")).unwrap_or_default()
    }

    /// Whether the store process is running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Starts the store (again, after [`Store::kill`]) on the same port and data, and waits
    /// until it is ready. Does nothing when it runs.
    pub fn start(&mut self) {
        if let Err(why) = self.try_start() {
            panic!("{why}");
        }
    }

    /// Starts the store and waits until it is ready; `Err` with its log when it exits first.
    fn try_start(&mut self) -> Result<(), String> {
        if self.is_running() {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir().join("store.log"))
            .expect("store log");
        let dir = self.dir().to_path_buf();
        let addr = format!("127.0.0.1:{}", self.port);
        let mut cmd = Command::new(&self.binary);
        match self.kind {
            Kind::VictoriaMetrics => {
                cmd.arg(format!("-httpListenAddr={addr}"))
                    .arg(format!("-storageDataPath={}", dir.join("data").display()))
                    .arg("-search.latencyOffset=0s")
                    .arg("-dedup.minScrapeInterval=1ms");
            }
            Kind::Prometheus => {
                let config = dir.join("prometheus.yml");
                std::fs::write(&config, "").expect("write prometheus.yml");
                cmd.arg(format!("--config.file={}", config.display()))
                    .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
                    .arg(format!("--web.listen-address={addr}"))
                    .arg("--web.enable-remote-write-receiver");
            }
            Kind::Influx => {
                cmd.args(["run", "-config"]).arg(dir.join("influxdb.conf"));
            }
        }
        cmd.current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("store log"))
            .stderr(log);
        let child =
            cmd.spawn().unwrap_or_else(|e| panic!("cannot run {}: {e}", self.binary.display()));
        self.child = Some(child);
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Ok(res) = self.request("GET", self.kind.ready_path(), &[], b"") {
                if (200..300).contains(&res.status) {
                    return Ok(());
                }
            }
            if !self.is_running() {
                return Err(format!("{:?} exited before it was ready:\n{}", self.kind, self.log()));
            }
            assert!(
                Instant::now() < deadline,
                "{:?} not ready within {READY_WITHIN:?}:\n{}",
                self.kind,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the store with SIGKILL and waits for it to be gone; its data stays for
    /// [`Store::start`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the store with SIGTERM, as a service manager would, and waits until it is gone
    /// (SIGKILL after a minute); its data stays for [`Store::start`].
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: kill(2) on our own child, which has not been waited for yet.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + READY_WITHIN;
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    fn write_influx_config(&self) {
        let d = self.dir().display();
        let config = format!(
            "reporting-enabled = false\n\
             bind-address = \"127.0.0.1:{rpc}\"\n\
             [meta]\n  dir = \"{d}/meta\"\n\
             [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
             [monitor]\n  store-enabled = false\n\
             [http]\n  bind-address = \"127.0.0.1:{port}\"\n  log-enabled = false\n  auth-enabled = {auth}\n\
             [logging]\n  suppress-logo = true\n",
            rpc = self.rpc_port,
            port = self.port,
            auth = self.credentials.is_some(),
        );
        std::fs::write(self.dir().join("influxdb.conf"), config).expect("write influxdb.conf");
    }

    /// One HTTP/1.1 request to the store; `Err` when it cannot be reached.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        http(self.port, method, path, headers, body)
    }

    /// `GET path`; panics when the store cannot be reached.
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
            .unwrap_or_else(|e| panic!("{:?}: GET {path}: {e}\n{}", self.kind, self.log()))
    }

    /// `POST path` with `body` and `headers`; panics when the store cannot be reached.
    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        self.request("POST", path, headers, body)
            .unwrap_or_else(|e| panic!("{:?}: POST {path}: {e}\n{}", self.kind, self.log()))
    }

    /// `POST path` with a form-urlencoded body of `fields`.
    pub fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let body = form(fields);
        let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded".to_string())];
        if let Some((user, password)) = &self.credentials {
            use base64::Engine as _;
            let pair =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            headers.push(("Authorization", format!("Basic {pair}")));
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.post(path, &headers, body.as_bytes())
    }

    /// Every series matching `selector` with all its samples, sorted by labels: VictoriaMetrics
    /// `/api/v1/export` after a flush, or a Prometheus range query over ten years.
    /// Panics for InfluxDB (use [`Store::influx_points`]).
    pub fn series(&self, selector: &str) -> Vec<Series> {
        let mut out = match self.kind {
            Kind::VictoriaMetrics => {
                let flush = self.get("/internal/force_flush");
                assert!(flush.status < 300, "force_flush: {} {}", flush.status, flush.text());
                let res = self.post_form("/api/v1/export", &[("match[]", selector)]);
                assert_eq!(res.status, 200, "export: {}", res.text());
                res.text()
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|line| {
                        let line = quote_special_values(line);
                        let v: serde_json::Value = serde_json::from_str(&line)
                            .unwrap_or_else(|e| panic!("export line {line}: {e}"));
                        let labels = labels_of(&v["metric"]);
                        let values = v["values"].as_array().expect("values");
                        let times = v["timestamps"].as_array().expect("timestamps");
                        let samples = times
                            .iter()
                            .zip(values)
                            .map(|(t, v)| (t.as_i64().expect("timestamp"), number(v)))
                            .collect();
                        Series { labels, samples }
                    })
                    .collect::<Vec<_>>()
            }
            Kind::Prometheus => {
                let query = format!("{selector}[3650d]");
                let v = self.query(&query);
                v["data"]["result"]
                    .as_array()
                    .expect("result")
                    .iter()
                    .map(|s| Series {
                        labels: labels_of(&s["metric"]),
                        samples: s["values"]
                            .as_array()
                            .expect("values")
                            .iter()
                            .map(|pair| (prom_time_ms(&pair[0]), number(&pair[1])))
                            .collect(),
                    })
                    .collect()
            }
            Kind::Influx => panic!("series() is for VictoriaMetrics and Prometheus"),
        };
        for s in &mut out {
            s.samples.sort_by_key(|(t, _)| *t);
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// A PromQL instant query (`/api/v1/query`, both VictoriaMetrics and Prometheus): the
    /// whole JSON answer, checked for `"status":"success"`.
    pub fn query(&self, promql: &str) -> serde_json::Value {
        if self.kind == Kind::VictoriaMetrics {
            let _ = self.get("/internal/force_flush");
        }
        let res = self.post_form("/api/v1/query", &[("query", promql)]);
        let v = res.json();
        assert_eq!(v["status"], "success", "query {promql}: {}", res.text());
        v
    }

    /// An InfluxQL query on [`INFLUX_DB`] with nanosecond epochs: the whole JSON answer,
    /// checked for errors.
    pub fn influx_query(&self, influxql: &str) -> serde_json::Value {
        let res = self.post_form("/query", &[("db", INFLUX_DB), ("epoch", "ns"), ("q", influxql)]);
        assert_eq!(res.status, 200, "influx query {influxql}: {}", res.text());
        let v = res.json();
        let result = &v["results"][0];
        assert!(result.get("error").is_none(), "influx query {influxql}: {}", res.text());
        v
    }

    /// Every point of the measurements `from` names (an InfluxQL FROM clause: `cpu`,
    /// `/.*/`), with its tags, sorted by measurement, time and tags.
    pub fn influx_points(&self, from: &str) -> Vec<InfluxPoint> {
        let v = self.influx_query(&format!("SELECT * FROM {from} GROUP BY *"));
        let mut out = Vec::new();
        for series in v["results"][0]["series"].as_array().into_iter().flatten() {
            let measurement = series["name"].as_str().expect("name").to_string();
            let tags: BTreeMap<String, String> = series["tags"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| {
                    let v = v.as_str()?;
                    (!v.is_empty()).then(|| (k.clone(), v.to_string()))
                })
                .collect();
            let columns: Vec<&str> = series["columns"]
                .as_array()
                .expect("columns")
                .iter()
                .map(|c| c.as_str().expect("column"))
                .collect();
            for row in series["values"].as_array().expect("values") {
                let row = row.as_array().expect("row");
                let mut point = InfluxPoint {
                    measurement: measurement.clone(),
                    tags: tags.clone(),
                    time_ns: 0,
                    fields: BTreeMap::new(),
                };
                for (column, value) in columns.iter().zip(row) {
                    if *column == "time" {
                        point.time_ns = value.as_i64().expect("time");
                    } else if !value.is_null() {
                        point.fields.insert(column.to_string(), value.clone());
                    }
                }
                out.push(point);
            }
        }
        out.sort_by(|a, b| {
            (&a.measurement, a.time_ns, &a.tags).cmp(&(&b.measurement, b.time_ns, &b.tags))
        });
        out
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.kill();
    }
}

/// VictoriaMetrics' export writes infinite values as bare `Inf` and `-Inf`, which JSON has not:
/// quote them (and `NaN`, for safety) inside the `values` array, for [`number`].
fn quote_special_values(line: &str) -> String {
    let Some(start) = line.find("\"values\":[").map(|i| i + "\"values\":[".len()) else {
        return line.to_string();
    };
    let Some(len) = line[start..].find(']') else { return line.to_string() };
    let values: Vec<String> = line[start..start + len]
        .split(',')
        .map(|v| match v {
            "Inf" | "+Inf" | "-Inf" | "NaN" => format!("\"{v}\""),
            v => v.to_string(),
        })
        .collect();
    format!("{}{}{}", &line[..start], values.join(","), &line[start + len..])
}

fn labels_of(metric: &serde_json::Value) -> BTreeMap<String, String> {
    metric
        .as_object()
        .expect("metric labels")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("label value").to_string()))
        .collect()
}

/// A sample value: a JSON number (VictoriaMetrics export) or a string that may be `NaN`/`+Inf`
/// (Prometheus).
fn number(v: &serde_json::Value) -> f64 {
    match v {
        serde_json::Value::Number(n) => n.as_f64().expect("number"),
        serde_json::Value::String(s) => match s.as_str() {
            "NaN" => f64::NAN,
            "+Inf" | "Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            s => s.parse().unwrap_or_else(|e| panic!("sample value {s:?}: {e}")),
        },
        v => panic!("sample value {v}"),
    }
}

/// Prometheus answers timestamps in seconds as a float with millisecond digits.
fn prom_time_ms(v: &serde_json::Value) -> i64 {
    let seconds = v.as_f64().expect("timestamp");
    #[allow(clippy::cast_possible_truncation)] // milliseconds since 1970 fit in i64
    let ms = (seconds * 1000.0).round() as i64;
    ms
}

/// `application/x-www-form-urlencoded` of `fields`.
pub fn form(fields: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&urlencode(k));
        out.push('=');
        out.push_str(&urlencode(v));
    }
    out
}

fn urlencode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One HTTP/1.1 request to 127.0.0.1:`port` on a fresh connection (`Connection: close`).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw).ok_or_else(|| {
        std::io::Error::other(format!("bad response: {}", String::from_utf8_lossy(&raw)))
    })
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let rest = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked =
        headers.iter().any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { dechunk(rest)? } else { rest.to_vec() };
    Some(Response { status, headers, body })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}
