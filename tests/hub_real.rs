//! Hub mode against a real store: two daemons, a spoke and a hub, the hub forwarding the
//! spoke's snapshots to VictoriaMetrics (started from Debian's package by
//! tests/support/stores.rs) tagged with the spoke; a dead spoke next to a live one; documents
//! POSTed to `/v1/ingest` by a spoke's json sink, with and without the listener's token; the
//! hub's `/metrics` checked by the real promtool.

#![allow(clippy::unwrap_used)]

mod daemon_util;
mod support;

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use daemon_util::kept::Kept;
use daemon_util::poll;
use support::stores::Store;

/// A hub's figure on `/metrics`, `None` while the sample is not there.
fn metric(daemon: &Kept, sample: &str) -> Option<f64> {
    let text = daemon.metrics();
    text.lines().find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The timestamps (ms) of the `mem_total` series with `labels` in VictoriaMetrics.
fn samples(vm: &Store, labels: &str) -> Vec<i64> {
    let series = vm.series(&format!("{{__name__=\"mem_total\",{labels}}}"));
    assert!(series.len() <= 1, "one series: {series:?}");
    series.first().map(|s| s.samples.iter().map(|(t, _)| *t).collect()).unwrap_or_default()
}

#[test]
fn a_hub_forwards_a_live_spoke_tagged_and_reports_a_dead_one() {
    let Some(vm) = Store::victoria_metrics() else { return };
    let spoke_dir = tempfile::tempdir().unwrap();
    let spoke = Kept::start(spoke_dir.path(), &[]);
    let live = format!("127.0.0.1:{}", spoke.http().port());
    // A spoke that takes connections and never answers: every poll of it waits for the timeout.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("127.0.0.1:{}", silent.local_addr().unwrap().port());
    let hub_dir = tempfile::tempdir().unwrap();
    let spokes = format!("hub.spokes=http://{live},http://{dead}");
    let url = format!("push.vm.url={}", vm.url("/write?db=hub"));
    let hub = Kept::start(
        hub_dir.path(),
        &[
            "--set",
            &spokes,
            "--set",
            "hub.interval=1",
            "--set",
            "hub.timeout=4",
            "--set",
            &url,
            "--set",
            "push.vm.format=influx",
        ],
    );
    // The dead spoke fails its second poll after two timeouts (8 s); by then the live one has
    // been polled every second. Were the polls one after the other, it would have had two.
    poll("the dead spoke's second failed poll", || {
        metric(&hub, &format!("pocketses_hub_spoke_polls_failed_total{{spoke=\"{dead}\"}}"))
            .filter(|n| *n >= 2.0)
    });
    let forwarded =
        metric(&hub, &format!("pocketses_hub_spoke_snapshots_forwarded_total{{spoke=\"{live}\"}}"))
            .unwrap();
    assert!(forwarded >= 5.0, "the live spoke was held back: {forwarded} snapshots");
    assert_eq!(metric(&hub, &format!("pocketses_hub_spoke_up{{spoke=\"{live}\"}}")), Some(1.0));
    assert_eq!(metric(&hub, &format!("pocketses_hub_spoke_up{{spoke=\"{dead}\"}}")), Some(0.0));
    // The spoke's points arrive tagged with it, apart from the hub's own.
    let spoke_label = format!("spoke=\"{live}\",db=\"hub\"");
    poll("the spoke's points in VictoriaMetrics", || {
        (samples(&vm, &spoke_label).len() >= 3).then_some(())
    });
    let own = vm.series(r#"{__name__="mem_total",db="hub"}"#);
    assert!(own.iter().any(|s| !s.labels.contains_key("spoke")), "the hub's own: {own:?}");
    // Each spoke snapshot once: polled every second, a spoke collecting every second is never
    // forwarded twice, and the store's samples are one per snapshot.
    let spooled = samples(&vm, &spoke_label);
    assert!(spooled.windows(2).all(|w| w[0] < w[1]), "{spooled:?}");
    // `pocketses status` shows both spokes (the control socket's state, as the CLI reads it).
    let out = Command::new(env!("CARGO_BIN_EXE_pocketses"))
        .args(["status", "--state-dir"])
        .arg(hub_dir.path())
        .env("POCKETSES_SNAPD_SOCKET", hub_dir.path().join("no-snapd.socket"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("spoke:       {live} up: last snapshot ")), "{text}");
    assert!(text.contains(&format!("spoke:       {dead} down: ")), "{text}");
    assert!(text.contains("(no answer within 4 s)"), "{text}");
    let log = hub.stderr();
    assert_eq!(log.matches(&format!("spoke {dead} is down")).count(), 1, "logged once: {log}");
    promtool_accepts(&hub.metrics());
    drop(silent);
}

#[test]
fn ingest_takes_a_spokes_json_sink_with_the_token() {
    let Some(vm) = Store::victoria_metrics() else { return };
    let token = "0123456789abcdef-hub";
    let hub_dir = tempfile::tempdir().unwrap();
    let url = format!("push.vm.url={}", vm.url("/write?db=ingest"));
    let http_token = format!("http.token={token}");
    let hub = Kept::start(
        hub_dir.path(),
        &[
            "--set",
            "hub.ingest=true",
            "--set",
            &http_token,
            "--set",
            &url,
            "--set",
            "push.vm.format=influx",
            "--set",
            "interval=3600",
            "--set",
            "http.metrics-public=true",
        ],
    );
    let addr = hub.http();
    // A minute ago, to the millisecond: VictoriaMetrics keeps only samples within its retention.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let at_ms = i64::try_from(now.as_millis()).unwrap() - 60_000;
    let doc = pocketses::metrics::encode::json::encode(&pocketses::metrics::Snapshot {
        timestamp: at_ms as f64 / 1000.0,
        hostname: "dev-ingest".into(),
        memory: Some(pocketses::metrics::Memory { total: 1000, ..Default::default() }),
        ..Default::default()
    });
    // Without the token: 401, nothing taken.
    let (status, body) = post(addr, None, "application/x-ndjson", doc.as_bytes());
    assert_eq!(status, 401, "{body}");
    // A bad document: 400 naming it.
    let (status, body) = post(addr, Some(token), "application/x-ndjson", b"{}\n");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("line 1: no schema"), "{body}");
    let (status, _) = post(addr, Some(token), "text/plain", doc.as_bytes());
    assert_eq!(status, 415);
    // A spoke daemon with a json sink pointing at the hub: its snapshots arrive tagged with its
    // host name. (Both run here, so the hub's own and the spoke's differ by the tag only.)
    let spoke_dir = tempfile::tempdir().unwrap();
    let sink_url = format!("push.hub.url=http://{addr}/v1/ingest");
    let sink_token = format!("push.hub.token={token}");
    let spoke = Kept::start(
        spoke_dir.path(),
        &["--set", &sink_url, "--set", "push.hub.format=json", "--set", &sink_token],
    );
    let host = hostname();
    let label = format!("spoke=\"{host}\",db=\"ingest\"");
    poll("the spoke's points in VictoriaMetrics", || {
        (samples(&vm, &label).len() >= 3).then_some(())
    });
    assert!(spoke.pending("hub") <= 2, "the spoke's sink delivers");
    // By hand, with the token: 200 and the document's count.
    let (status, body) = post(addr, Some(token), "application/x-ndjson", doc.as_bytes());
    assert_eq!((status, body.as_str()), (200, r#"{"documents":1}"#));
    poll("the hand-made document in VictoriaMetrics", || {
        (samples(&vm, "spoke=\"dev-ingest\"") == [at_ms]).then_some(())
    });
    let text = hub.metrics();
    // The 400 and the 415; the 401 never reached the hub (the listener refused it, and counts it).
    assert!(text.contains("pocketses_hub_ingest_refused_total 2\n"), "{text}");
    assert!(text.contains("reason=\"unauthorized\"} 1\n"), "{text}");
    drop(spoke);
}

#[test]
fn ingest_is_off_unless_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Kept::start(dir.path(), &["--set", "interval=3600"]);
    let (status, body) = post(hub.http(), None, "application/x-ndjson", b"{}\n");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("hub.ingest is false"), "{body}");
}

/// A spoke serving https with a certificate of a private CA: polled with `hub.ca`, down with the
/// TLS error without it.
#[test]
fn an_https_spoke_is_polled_with_the_hub_ca() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let pki = tempfile::tempdir().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "spokes test CA");
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "spoke");
    let cert = leaf.signed_by(&key, &ca).unwrap();
    let (ca_pem, cert_pem, key_pem) =
        (pki.path().join("ca.pem"), pki.path().join("spoke.pem"), pki.path().join("spoke.key"));
    std::fs::write(&ca_pem, ca.pem()).unwrap();
    std::fs::write(&cert_pem, cert.pem()).unwrap();
    std::fs::write(&key_pem, key.serialize_pem()).unwrap();
    let spoke_dir = tempfile::tempdir().unwrap();
    let spoke = Kept::start(
        spoke_dir.path(),
        &[
            "--set",
            &format!("tls.cert={}", cert_pem.display()),
            "--set",
            &format!("tls.key={}", key_pem.display()),
        ],
    );
    let name = format!("127.0.0.1:{}", spoke.http().port());
    let spokes = format!("hub.spokes=https://{name}");
    let up = format!("pocketses_hub_spoke_up{{spoke=\"{name}\"}}");
    let with_ca = tempfile::tempdir().unwrap();
    let hub_ca = format!("hub.ca={}", ca_pem.display());
    let hub = Kept::start(
        with_ca.path(),
        &["--set", &spokes, "--set", "hub.interval=1", "--set", &hub_ca],
    );
    poll("the https spoke up", || metric(&hub, &up).filter(|v| *v == 1.0));
    drop(hub);
    let without = tempfile::tempdir().unwrap();
    let hub = Kept::start(without.path(), &["--set", &spokes, "--set", "hub.interval=1"]);
    poll("the https spoke down", || metric(&hub, &up).filter(|v| *v == 0.0));
    poll("the reason logged", || hub.stderr().contains("UnknownIssuer").then_some(()));
}

#[test]
fn ingest_without_a_running_push_sink_is_refused_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let doc = pocketses::metrics::encode::json::encode(&pocketses::metrics::Snapshot {
        timestamp: 1.0,
        hostname: "dev-nowhere".into(),
        ..Default::default()
    });
    // No sink at all: 503 saying so, and no Retry-After (the spoke backs off and keeps the data).
    let hub = Kept::start(dir.path(), &["--set", "hub.ingest=true", "--set", "interval=3600"]);
    let (status, head, body) = post_full(hub.http(), None, "application/x-ndjson", doc.as_bytes());
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no push sink is configured"), "{body}");
    assert!(!head.to_ascii_lowercase().contains("retry-after"), "{head}");
    let refused =
        poll("the refusal counted", || metric(&hub, "pocketses_hub_ingest_refused_total"));
    assert_eq!(refused, 1.0);
    drop(hub);
    // Only a disabled sink: the same.
    let hub = Kept::start(
        dir.path(),
        &[
            "--set",
            "hub.ingest=true",
            "--set",
            "interval=3600",
            "--set",
            "push.off.url=http://127.0.0.1:9/write",
            "--set",
            "push.off.format=influx",
            "--set",
            "push.off.enabled=false",
        ],
    );
    let (status, _, body) = post_full(hub.http(), None, "application/x-ndjson", doc.as_bytes());
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no push sink is running"), "{body}");
}

/// POSTs `body` to `/v1/ingest`: status and body of the answer.
fn post(
    addr: std::net::SocketAddr,
    token: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> (u16, String) {
    let (status, _, body) = post_full(addr, token, content_type, body);
    (status, body)
}

/// POSTs `body` to `/v1/ingest`: status, head and body of the answer.
fn post_full(
    addr: std::net::SocketAddr,
    token: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(
        s,
        "POST /v1/ingest HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{auth}Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    (status, head.to_string(), body.to_string())
}

/// This host's name, as the daemon's snapshots carry it (uname's nodename).
fn hostname() -> String {
    let out = Command::new("uname").arg("-n").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn promtool_accepts(text: &str) {
    let path = std::env::var_os("POCKETSES_PROMTOOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/cache/pocketses-ci/prometheus/usr/bin/promtool".into());
    assert!(path.is_file(), "promtool not found at {}", path.display());
    let body = text;
    let mut child = Command::new(path)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let remarks: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
        .filter(|l| l.contains("pocketses_hub"))
        .map(str::to_string)
        .collect();
    assert!(body.contains("# TYPE pocketses_hub_spoke_up gauge"), "{body}");
    let code = out.status.code().unwrap_or(-1);
    assert!(code == 0 || code == 3, "promtool exit {code}");
    assert!(remarks.is_empty(), "promtool on pocketses_hub_*: {remarks:?}");
}
