//! The real daemon's HTTP endpoint: /v1/metrics, the SSE stream, /metrics, 404 and 405.

#![allow(clippy::unwrap_used)] // Helpers outside #[test] functions: a failed unwrap is a failed test.

mod daemon_util;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use daemon_util::{Daemon, DEADLINE};

#[test]
fn v1_metrics_is_the_latest_snapshot() {
    let daemon = Daemon::start(&["--interval", "3600"]);
    let line = daemon.subscribe().line();
    let res = daemon.get("/v1/metrics");
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert_eq!(res.body, line.trim_end());
}

#[test]
fn v1_metrics_stays_v1_when_the_stream_is_legacy() {
    let daemon = Daemon::start(&["--interval", "3600", "--format", "legacy"]);
    daemon.subscribe().line();
    let res = daemon.get("/v1/metrics");
    assert_eq!(res.status, 200);
    let value: serde_json::Value = serde_json::from_str(&res.body).unwrap();
    assert!(value.is_object());
}

#[test]
fn prometheus_text_with_its_content_type() {
    let daemon = Daemon::start(&["--interval", "3600"]);
    daemon.subscribe().line();
    let res = daemon.get("/metrics");
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    for family in [
        "pocketses_subscribers",
        "pocketses_snapshots_published_total",
        "pocketses_messages_dropped_total",
        "pocketses_connections_refused_total",
        "pocketses_subscribers_flooded_total",
    ] {
        assert!(res.body.contains(&format!("# TYPE {family} ")), "{family} missing:\n{}", res.body);
    }
    assert!(res.body.ends_with('\n'));
    // Scraped twice, same snapshot: the snapshot part is the same text.
    let again = daemon.get("/metrics");
    let before_own =
        |body: &str| body.split("# HELP pocketses_subscribers ").next().unwrap().to_string();
    assert_eq!(before_own(&res.body), before_own(&again.body));
}

#[test]
fn unknown_paths_get_404_with_a_json_error() {
    let daemon = Daemon::start(&["--interval", "3600"]);
    for path in ["/index.html", "/v2/metrics", "/metrics/x", "/v1/metrics/", "/ui/"] {
        let res = daemon.get(path);
        assert_eq!(res.status, 404, "{path}");
        assert_eq!(res.header("content-type"), Some("application/json"));
        let value: serde_json::Value = serde_json::from_str(&res.body).unwrap();
        let message = value["error"].as_str().expect("error string");
        assert!(message.contains(path), "{message}");
    }
}

#[test]
fn wrong_method_gets_405() {
    let daemon = Daemon::start(&["--interval", "3600"]);
    let res = daemon.request("POST", "/v1/metrics");
    assert_eq!(res.status, 405);
    assert_eq!(res.header("allow"), Some("GET, HEAD"));
    let value: serde_json::Value = serde_json::from_str(&res.body).unwrap();
    assert!(value["error"].is_string());
}

/// Reads one SSE event (up to the blank line); returns its fields.
fn read_event(reader: &mut BufReader<TcpStream>) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).expect("sse line") > 0, "stream ended");
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            if fields.is_empty() {
                continue;
            }
            return fields;
        }
        // Chunked framing: skip chunk-size lines.
        if let Some((k, v)) = line.split_once(": ") {
            fields.push((k.to_string(), v.to_string()));
        }
    }
}

/// Opens the SSE stream; returns the reader positioned after the headers, and the content type.
fn open_sse(daemon: &Daemon) -> (BufReader<TcpStream>, Option<String>) {
    let mut stream = TcpStream::connect(daemon.http.unwrap()).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.write_all(b"GET /v1/metrics/stream HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let mut content_type = None;
    loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "headers ended early");
        if line == "\r\n" {
            return (reader, content_type);
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-type") {
                content_type = Some(v.trim().to_string());
            }
        }
    }
}

#[test]
fn sse_sends_the_latest_at_once_then_one_event_per_snapshot() {
    let daemon = Daemon::start(&["--interval", "1"]);
    let (mut reader, content_type) = open_sse(&daemon);
    assert_eq!(content_type.as_deref(), Some("text/event-stream"));
    let mut ids = Vec::new();
    let mut first = true;
    while ids.len() < 2 {
        let event = read_event(&mut reader);
        let get = |name: &str| event.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        // The stream carries other kinds too (`check` events after the first snapshot); a
        // snapshot-only client skips them by name. The very first event is the snapshot.
        if !first && get("event").as_deref() != Some("snapshot") {
            continue;
        }
        first = false;
        assert_eq!(get("event").as_deref(), Some("snapshot"), "{event:?}");
        let data = get("data").expect("data field");
        let value: serde_json::Value = serde_json::from_str(&data).unwrap();
        assert!(value.is_object());
        ids.push(get("id").expect("id field").parse::<u64>().unwrap());
    }
    assert!(ids[1] > ids[0], "{ids:?}");
}

#[test]
fn sse_first_event_comes_at_once_and_counts_as_a_subscriber() {
    // An hour-long interval: the event can only be the snapshot taken at start.
    let daemon = Daemon::start(&["--interval", "3600"]);
    let line = daemon.subscribe().line();
    let (mut reader, _) = open_sse(&daemon);
    let event = read_event(&mut reader);
    assert!(event.iter().any(|(k, v)| k == "event" && v == "snapshot"), "{event:?}");
    assert!(event.iter().any(|(k, v)| k == "data" && v == line.trim_end()), "{event:?}");
    // The TCP subscriber above is gone (once the daemon sees its close); the SSE one stays.
    daemon_util::poll("one subscriber", || {
        (daemon.metric("pocketses_subscribers") == 1.0).then_some(())
    });
}

#[test]
fn sse_stream_ends_cleanly_on_sigterm() {
    let mut daemon = Daemon::start(&["--interval", "3600"]);
    let (mut reader, _) = open_sse(&daemon);
    read_event(&mut reader);
    let status = daemon.terminate();
    assert!(status.success(), "exit status {status}: {}", daemon.stderr());
    // The chunked body is terminated properly, then the connection closes.
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).expect("read to the end");
    assert!(rest.ends_with("0\r\n\r\n"), "{rest:?}");
}
