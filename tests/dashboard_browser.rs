//! The dashboard in a real browser: Debian's Chromium, driven through chromedriver's W3C WebDriver
//! HTTP API (a few JSON requests, spoken here directly; no Selenium needed), against the real
//! daemon and a fake snapd that holds a model, a serial and snaps with health.
//!
//! Checks, with JavaScript off, that the facts are in the HTML; with it on, that the page goes
//! live, that a chart gets new points as snapshots arrive, that the page is one SSE subscriber,
//! that a check made CRIT by a configuration reload turns red within one interval, and that a
//! remodel the daemon follows shows its progress bar; and, on a hub fed by the test itself, that
//! a fleet action's SSE `fleet` events move their progress bar and stay on a page opened later.
//! Leaves a screenshot in `target/dashboard.png` (docs/dashboard.png is a copy of one).
//! Without `chromium` and `chromedriver` it fails under POCKETSES_CI and is skipped elsewhere.

#![allow(clippy::unwrap_used)] // Test helpers: a failed unwrap is a failed test.

mod daemon_util;
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use base64::Engine;
use serde_json::{json, Value};

use daemon_util::{free_port, poll, Daemon, DEADLINE};
use pocketses::remodel::drive::{self, Record};
use support::fake_snapd::{FakeSnapd, State, Step};

/// Finds `name` on PATH.
fn tool(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|path| path.is_file())
}

/// chromium and chromedriver, or `None` (a failure under POCKETSES_CI).
fn browser() -> Option<(PathBuf, PathBuf)> {
    match (tool("chromium"), tool("chromedriver")) {
        (Some(chromium), Some(driver)) => Some((chromium, driver)),
        _ if std::env::var_os("POCKETSES_CI").is_some() => {
            panic!("chromium and chromedriver are missing: run .ci/install (.ci/apt-packages)")
        }
        _ => {
            eprintln!("skipped: chromium and chromedriver are not installed");
            None
        }
    }
}

/// A running chromedriver, killed on drop.
struct Driver {
    child: Child,
    port: u16,
    _profiles: tempfile::TempDir,
    chromium: PathBuf,
}

impl Driver {
    fn start(chromium: PathBuf, driver: PathBuf) -> Driver {
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Driver { child, port, _profiles: tempfile::tempdir().unwrap(), chromium };
        poll("chromedriver to be ready", || {
            let res = driver.call("GET", "/status", None).ok()?;
            res["value"]["ready"].as_bool().filter(|r| *r)
        });
        driver
    }

    /// One WebDriver request; the reply's JSON.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> std::io::Result<Value> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(DEADLINE))?;
        let body = body.map(Value::to_string).unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\
Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        )?;
        // chromedriver keeps the connection open whatever the request says: read by length.
        let mut raw = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                if length.is_some_and(|len| raw.len() >= end + 4 + len) {
                    break;
                }
            }
        }
        let text = String::from_utf8_lossy(&raw);
        let (_, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        serde_json::from_str(body).map_err(|err| std::io::Error::other(format!("{err}: {body}")))
    }

    /// A new headless browser window, with JavaScript on or off.
    fn session(&self, javascript: bool) -> Session<'_> {
        let profile = self._profiles.path().join(if javascript { "js" } else { "nojs" });
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": self.chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1200,1300", format!("--user-data-dir={}", profile.display())],
                "prefs": {"profile.managed_default_content_settings.javascript": if javascript { 1 } else { 2 }}
            }
        }}});
        let res = self.call("POST", "/session", Some(&caps)).unwrap();
        let id = res["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {res}"));
        Session { driver: self, id: id.to_string() }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser window.
struct Session<'a> {
    driver: &'a Driver,
    id: String,
}

impl Session<'_> {
    fn call(&self, method: &str, what: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{what}", self.id);
        let res = self.driver.call(method, &path, body.as_ref()).unwrap();
        assert!(res["value"]["error"].is_null(), "{method} {what}: {res}");
        res["value"].clone()
    }

    fn open(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body) in the page; its return value.
    fn eval(&self, script: &str) -> Value {
        self.call("POST", "/execute/sync", Some(json!({"script": script, "args": []})))
    }

    fn source(&self) -> String {
        self.call("GET", "/source", None).as_str().unwrap().to_string()
    }

    fn screenshot(&self) -> Vec<u8> {
        let b64 = self.call("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap()).unwrap()
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = self.driver.call("DELETE", &format!("/session/{}", self.id), None);
    }
}

const SERIAL: &str = "type: serial\nauthority-id: brand\nbrand-id: brand\nmodel: pocketses-pc\nserial: P0CK-7\ndevice-key: AcbB\ndevice-key-sha3-384: fake\ntimestamp: 2024-08-09T12:00:00Z\nsign-key-sha3-384: fake\n\nAcLB\n";

fn fake_snapd() -> FakeSnapd {
    let mut state = State::default();
    state.serial = Some(SERIAL.to_string());
    state.snaps[0]["health"] =
        json!({"revision": "x1", "timestamp": "2024-08-09T12:00:00Z", "status": "okay"});
    state.snaps.push(json!({
        "id": "", "name": "sensor-feed", "summary": "", "status": "active", "type": "app",
        "version": "2.1", "revision": "14", "confinement": "strict", "apps": [],
        "health": {"revision": "14", "timestamp": "2024-08-09T12:00:00Z", "status": "error",
                   "message": "cannot reach the sensor bus", "code": "no-bus"}
    }));
    let fake = FakeSnapd::start_with(state);
    // The snaps come from the daemon's one `GET /v2/snaps` poll, which needs snapd's API, as on
    // a device.
    fake.connect("snapd-control", true);
    fake
}

#[test]
fn the_dashboard_in_chromium() {
    let Some((chromium, chromedriver)) = browser() else { return };
    let snapd = fake_snapd();
    // Three results in a row before CRIT is the default; one here, so CRIT shows in one interval.
    let args = ["--interval", "1", "--set", "checks.memory.failures-before-critical=1"];
    let daemon = Daemon::start_env(&args, true, None, &snapd.env());
    let url = format!("http://{}/", daemon.http.unwrap());
    let host: Value = serde_json::from_str(
        &poll("a snapshot", || Some(daemon.get("/v1/metrics")).filter(|r| r.status == 200)).body,
    )
    .unwrap();
    let host = host["hostname"].as_str().unwrap().to_string();
    poll("the device facts on the page", || daemon.get("/").body.contains("P0CK-7").then_some(()));
    let driver = Driver::start(chromium, chromedriver);

    // JavaScript off: the HTML alone carries the facts.
    {
        let page = driver.session(false);
        page.open(&url);
        let html = page.source();
        for want in [
            format!("<h1 id=\"hostname\">{host}</h1>"),
            "<dd id=\"brand\">brand</dd>".to_string(),
            "<dd id=\"model\">pocketses-pc</dd>".to_string(),
            "<dd id=\"grade\">dangerous</dd>".to_string(),
            "<dd id=\"revision\">1</dd>".to_string(),
            "<dd id=\"serial\">P0CK-7</dd>".to_string(),
            "<dd id=\"uptime\">".to_string(),
            "<span class=\"badge crit\">error</span> cannot reach the sensor bus".to_string(),
        ] {
            assert!(html.contains(&want), "{want} not in:\n{html}");
        }
        // pocketses' own row shows the health the daemon itself set through snapctl (or the
        // fake's initial "okay" if snapd was asked before that).
        let own = html.split("<tr data-snap=\"pocketses\">").nth(1).expect("a row for pocketses");
        let own = own.split("</tr>").next().unwrap();
        assert!(
            ["okay</span>", "waiting</span>", "error</span>"].iter().any(|s| own.contains(s)),
            "{own}"
        );
        // The script did not run: the page still says it is static.
        assert!(html.contains("data-state=\"static\""), "{html}");
    }

    // JavaScript on: live from the SSE stream.
    let page = driver.session(true);
    page.open(&url);
    poll("the page to go live", || {
        (page.eval("return document.getElementById('live').dataset.state;") == "live").then_some(())
    });
    let points = |chart: &str| -> u64 {
        let script = format!(
            "var f = document.getElementById('chart-{chart}'); return f && f.dataset.points ? Number(f.dataset.points) : -1;"
        );
        page.eval(&script).as_u64().unwrap_or(0)
    };
    let first = poll("charts drawn", || Some(points("cpu")).filter(|n| *n >= 1));
    for chart in ["cpu", "memory", "network", "filesystems"] {
        let n = poll("a chart to get a new point", || Some(points(chart)).filter(|n| *n > first));
        let canvas = format!("return document.querySelectorAll('#chart-{chart} canvas').length;");
        assert_eq!(page.eval(&canvas), 1, "{chart}");
        assert!(n > first, "{chart}");
    }
    // The page is one SSE subscriber, and nothing else stays open for it.
    assert_eq!(daemon.metric("pocketses_sse_streams"), 1.0);
    assert_eq!(daemon.metric("pocketses_subscribers"), 1.0);

    // A check goes CRIT through a configuration reload, as `snap set` makes it: red within one interval.
    let row_class =
        "var r = document.querySelector('tr[data-check=\"memory\"]'); return r ? r.className : '';";
    // Not CRIT yet (the machine has memory to spare), so the change to CRIT is the reload's.
    poll("the memory check on the page", || {
        let class = page.eval(row_class);
        (class != "" && class != "crit").then_some(())
    });
    let before = points("cpu");
    {
        let mut conf = snapd.conf();
        conf["checks"] = json!({"memory": {"crit": "101:"}});
        snapd.set_conf(conf);
    }
    daemon.signal(libc::SIGHUP);
    poll("the memory check to turn red", || (page.eval(row_class) == "crit").then_some(()));
    let after = points("cpu");
    // Counted in snapshots, not seconds: the reload lands within one interval, the checks run
    // on the next snapshot, and their event comes with it.
    assert!(after - before <= 2, "CRIT after {} snapshots", after - before);
    let color = page.eval(
        "return getComputedStyle(document.querySelector('tr[data-check=\"memory\"] .badge')).backgroundColor;",
    );
    assert_eq!(color, "rgb(198, 40, 40)", "the CRIT badge is red");
    let worst = page.eval("return document.getElementById('checks-state').textContent;");
    assert_eq!(worst, "CRIT");

    // A remodel under way (recorded by `pocketses remodel`, followed by the daemon): its bar moves.
    let change = snapd.add_change(vec![Step::State(json!({
        "kind": "remodel", "summary": "Refresh model assertion from revision 1 to 2",
        "status": "Doing", "ready": false,
        "tasks": [
            {"id": "1", "kind": "download-snap", "summary": "Download snap \"core22\"", "status": "Doing",
             "progress": {"label": "core22", "done": 1_048_576, "total": 4_194_304}},
            {"id": "2", "kind": "set-model", "summary": "Set new model assertion", "status": "Do",
             "progress": {"label": "", "done": 0, "total": 1}}
        ]
    }))]);
    let record = Record {
        change: change.clone(),
        summary: String::new(),
        target: "brand/pocketses-pc rev 2".into(),
        status: "Doing".into(),
        ready: false,
        err: None,
    };
    drive::save_record(&daemon.state_dir().join("remodel.json"), &record).unwrap();
    let progress = "var p = document.getElementById('action-progress'); \
        return document.getElementById('action-detail').hidden ? -1 : (p.hasAttribute('value') ? p.value : -2);";
    poll("the remodel's progress bar at 25 %", || (page.eval(progress) == 25).then_some(()));
    let summary = page.eval("return document.getElementById('action-summary').textContent;");
    assert_eq!(summary, format!("change {change}: Refresh model assertion from revision 1 to 2"));

    let shot = page.screenshot();
    assert!(shot.starts_with(b"\x89PNG"), "a PNG");
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&target, shot).unwrap();
    eprintln!("screenshot: {}", target.display());
}

/// A fleet report as the fleet client sends it (SSE `fleet`).
fn fleet_event(doc: Value) -> pocketses::publish::Event {
    use pocketses::publish::{Event, Report};
    Event::Fleet(Report::named(Event::SSE_FLEET, doc.to_string()))
}

#[test]
fn a_fleet_action_in_chromium() {
    let Some((chromium, chromedriver)) = browser() else { return };
    // The daemon's own listeners on a hub this test feeds: the fleet client's events are what
    // the page reads, whoever sends them.
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let _context = runtime.enter();
    let hub = pocketses::publish::Hub::new(16);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let tracker = tokio_util::task::TaskTracker::new();
    let http_port = free_port();
    let settings: Vec<(String, Value)> =
        ["bind=127.0.0.1", "port=0", "http.bind=127.0.0.1", &format!("http.port={http_port}")]
            .iter()
            .map(|s| pocketses::config::parse_setting(s).unwrap())
            .collect();
    let config = pocketses::config::load(&Value::Null, &settings).unwrap().config;
    let mut listeners = pocketses::publish::listen::Listeners::new(
        hub.clone(),
        shutdown.clone(),
        tracker.clone(),
        pocketses::publish::listen::Announce { ready_file: None, listening: None },
    );
    runtime.block_on(listeners.start(&config)).unwrap();
    let snapshot = pocketses::metrics::collect::Collector::new().collect();
    hub.publish(pocketses::publish::Published::new(1, snapshot, pocketses::config::Format::Json));
    let url = format!("http://127.0.0.1:{http_port}/");

    let driver = Driver::start(chromium, chromedriver);
    let page = driver.session(true);
    page.open(&url);
    poll("the page to go live", || {
        (page.eval("return document.getElementById('live').dataset.state;") == "live").then_some(())
    });
    let shown = "return document.getElementById('fleet-none').hidden;";
    assert_eq!(page.eval(shown), false, "no fleet action yet");
    let bar = "var p = document.getElementById('fleet-progress'); \
        return document.getElementById('fleet-detail').hidden ? -1 : (p.hasAttribute('value') ? p.value : -2);";
    let stage = "return document.getElementById('fleet-stage').textContent;";
    // Sent again on each look: a report is not kept for subscribers, and folding it twice is
    // the same as once.
    let downloading = json!({"action": 17, "stage": "downloading", "progress": 30,
        "details": ["downloading core22_1.snap"], "result": null});
    poll("the fleet bar at 30 %", || {
        hub.send(fleet_event(downloading.clone()));
        (page.eval(bar) == 30).then_some(())
    });
    assert_eq!(page.eval(stage), "downloading");
    assert_eq!(page.eval(shown), true);
    let applying = json!({"action": 17, "stage": "applying", "progress": 80,
        "details": ["downloaded core22_1.snap", "installing core22_1.snap"], "result": null});
    poll("the fleet bar at 80 %", || {
        hub.send(fleet_event(applying.clone()));
        (page.eval(bar) == 80).then_some(())
    });
    let details = page.eval(
        "return Array.from(document.querySelectorAll('#fleet-details li')).map(function (l) { return l.textContent; });",
    );
    assert_eq!(details, json!(["downloaded core22_1.snap", "installing core22_1.snap"]));
    let done =
        json!({"action": 17, "stage": "done", "progress": 100, "details": [], "result": "success"});
    poll("the fleet action done", || {
        hub.send(fleet_event(done.clone()));
        (page.eval(stage) == "done").then_some(())
    });
    assert_eq!(page.eval(bar), 100);
    assert_eq!(page.eval("return document.getElementById('fleet-result').textContent;"), "success");
    assert_eq!(page.eval("return document.getElementById('fleet-stage').className;"), "badge ok");

    // A page opened now shows the action as it ended, without JavaScript.
    let later = driver.session(false);
    later.open(&url);
    let html = later.source();
    for want in [
        "<p id=\"fleet-none\" hidden=\"\">",
        "<span id=\"fleet-action\">17</span>",
        "<progress id=\"fleet-progress\" max=\"100\" value=\"100\">",
    ] {
        assert!(html.contains(want), "{want} not in:\n{html}");
    }
    shutdown.cancel();
}
