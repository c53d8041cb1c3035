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

use std::net::TcpListener;
use std::path::Path;

use daemon_util::kept::Kept;
use daemon_util::poll;
use daemon_util::scripted::{Answer, Got, Scripted as Endpoint};
use serde_json::{json, Value};

/// The notification tests' view of what the endpoint got.
trait Notified {
    /// The request's JSON document.
    fn doc(&self) -> Value;
}

impl Notified for Got {
    fn doc(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// The documents answered with a 2xx, in order.
fn acked(endpoint: &Endpoint) -> Vec<Value> {
    endpoint.got().iter().filter(|g| g.status / 100 == 2).map(Got::doc).collect()
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

/// The kept-directory daemon of the push tests (`daemon_util::kept`), with the checks set up so
/// that only `load` runs, and what this test asks of it.
struct Daemon(Kept);

impl Daemon {
    fn start(dir: &Path, extra: &[&str]) -> Daemon {
        let args: Vec<&str> = ARGS.iter().chain(extra).copied().collect();
        Daemon(Kept::start(dir, &args))
    }

    /// The reported state of `load`, once the checks have run.
    fn load_state(&self) -> Option<String> {
        let doc: Value = serde_json::from_str(&self.0.get("/v1/checks").body).ok()?;
        let load = doc["checks"].as_array()?.iter().find(|c| c["check"] == "load")?;
        load["state"].as_str().map(str::to_string)
    }

    /// A figure of the webhook's sink on `/metrics`.
    fn sink_figure(&self, family: &str) -> Option<f64> {
        let prefix = format!("{family}{{sink=\"notify.webhook\"}} ");
        let text = self.0.metrics();
        text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.parse().ok())
    }

    /// Reloads with `load` thresholds that make it `state`, and waits until it is.
    fn drive(&self, state: &str, webhook: Option<&str>) {
        let crit = if state == "CRIT" { "@0:1000000" } else { "~:" };
        let mut doc = json!({"checks": {"load": {"warn": "~:", "crit": crit}}});
        if let Some(url) = webhook {
            doc["notify"] = json!({"webhook": {"url": url}});
        }
        self.0.reload(doc);
        poll(&format!("load {state}"), || (self.load_state()? == state).then_some(()));
    }

    /// Sets the webhook (with `load` OK) and waits until its sink runs.
    fn arm(&self, url: &str) {
        self.drive("OK", None);
        self.drive("OK", Some(url));
        poll("the webhook's sink", || self.sink_figure("pocketses_push_up").map(|_| ()));
    }

    fn kill9(self) {
        self.0.kill9();
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
    let endpoint = Endpoint::start_on(listener, Box::new(|_, _| ok()));
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
    poll("three notifications delivered", || (acked(&endpoint).len() >= 3).then_some(()));
    poll("an empty spool", || {
        (daemon.sink_figure("pocketses_push_backlog_records")? == 0.0).then_some(())
    });
    let acked = acked(&endpoint);
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
        Box::new(|n, _| match n {
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
    poll("two notifications delivered", || (acked(&endpoint).len() >= 2).then_some(()));
    let got = endpoint.got();
    let statuses: Vec<u16> = got.iter().map(|g| g.status).collect();
    assert_eq!(statuses, [400, 500, 204, 401, 429, 204], "{got:?}");
    let bodies: Vec<Value> = got.iter().map(Got::doc).collect();
    let all = moves(&bodies);
    let want = expected();
    // The rejected one is never sent again; the others come again until a 2xx, in order.
    assert_eq!(all, [&want[0], &want[1], &want[1], &want[2], &want[2], &want[2]].map(Clone::clone));
    assert_eq!(moves(&acked(&endpoint)), want[1..]);
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
