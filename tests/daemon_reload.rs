//! `daemon::run_with` in-process: configuration changes apply live without dropping subscribers.

#![allow(clippy::unwrap_used)] // Helpers outside #[test] functions: a failed unwrap is a failed test.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use pocketses::config::{Config, Format};
use pocketses::daemon::{run_with, Listening, RunOptions};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

#[path = "support/port.rs"]
mod port;

const DEADLINE: Duration = Duration::from_secs(30);

struct Sub(BufReader<TcpStream>);

impl Sub {
    async fn connect(addr: SocketAddr) -> Sub {
        Sub(BufReader::new(TcpStream::connect(addr).await.unwrap()))
    }

    /// The next line, or `None` when the daemon closed the stream.
    async fn next(&mut self) -> Option<String> {
        let mut line = String::new();
        let n = timeout(DEADLINE, self.0.read_line(&mut line)).await.expect("a line in time");
        match n {
            Ok(n) if n > 0 => Some(line),
            _ => None,
        }
    }
}

async fn wait_listening(
    rx: &mut watch::Receiver<Listening>,
    cond: impl FnMut(&Listening) -> bool,
) -> Listening {
    *timeout(DEADLINE, rx.wait_for(cond)).await.expect("listening in time").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_changes_apply_live() {
    let localhost = IpAddr::from([127, 0, 0, 1]);
    let mut config = Config { bind: localhost, port: 0, interval: 3600, ..Config::default() };
    config.http.port = 0;
    let (config_tx, config_rx) = watch::channel(config.clone());
    let (listening_tx, mut listening_rx) = watch::channel(Listening::default());
    let shutdown = CancellationToken::new();
    let options = RunOptions { listening: Some(listening_tx), ..RunOptions::default() };
    let daemon = tokio::spawn(run_with(config_rx, shutdown.clone(), options));
    let first = wait_listening(&mut listening_rx, |l| l.tcp.is_some()).await;
    assert_eq!(first.http, None, "http port 0 disables http");
    let old_addr = first.tcp.unwrap();
    let mut old = Sub::connect(old_addr).await;
    assert!(old.next().await.is_some());

    // Interval 3600 -> 1: a second line can only come from the new interval, on the same connection.
    config.interval = 1;
    config_tx.send(config.clone()).unwrap();
    assert!(old.next().await.is_some());

    // Legacy format: the following lines, and the first line of a newcomer, take the original's shape.
    let is_legacy = |line: &str| {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        value.get("schema").is_none() && value.get("cpu").is_some()
    };
    assert!(!is_legacy(&old.next().await.unwrap()));
    config.publish.format = Format::Legacy;
    config_tx.send(config.clone()).unwrap();
    let mut n_lines = 0;
    while !is_legacy(&old.next().await.unwrap()) {
        n_lines += 1;
        assert!(n_lines < 10, "the stream never switched to legacy");
    }
    let mut newcomer = Sub::connect(old_addr).await;
    assert!(is_legacy(&newcomer.next().await.unwrap()), "a newcomer's first line is not legacy");
    drop(newcomer);
    config.publish.format = Format::Json;
    config_tx.send(config.clone()).unwrap();

    // Another address: the listener moves, the connected subscriber stays.
    config.bind = IpAddr::from([127, 0, 0, 2]);
    config_tx.send(config.clone()).unwrap();
    let moved = wait_listening(&mut listening_rx, |l| {
        l.tcp.is_some_and(|a| a.ip() == IpAddr::from([127, 0, 0, 2]))
    })
    .await;
    let mut new = Sub::connect(moved.tcp.unwrap()).await;
    assert!(new.next().await.is_some());
    assert!(old.next().await.is_some(), "the subscriber of the old listener was dropped");
    assert!(TcpStream::connect(old_addr).await.is_err(), "the old listener still accepts");

    // HTTP turned on live: it listens, and serves the latest snapshot.
    let port = port::free_port();
    config.http = pocketses::config::HttpConfig { port, bind: localhost, ..config.http };
    config_tx.send(config.clone()).unwrap();
    let with_http = wait_listening(&mut listening_rx, |l| l.http.is_some()).await;
    assert_eq!(with_http.http, Some(SocketAddr::new(localhost, port)));
    let mut http = TcpStream::connect(with_http.http.unwrap()).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut http,
        b"GET /v1/metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut response = String::new();
    timeout(DEADLINE, tokio::io::AsyncReadExt::read_to_string(&mut http, &mut response))
        .await
        .unwrap()
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"schema\""), "{response}");

    // A lower subscriber limit refuses newcomers and keeps the connected ones.
    config.publish.max_subscribers = 2;
    config_tx.send(config.clone()).unwrap();
    let mut refused = None;
    for _ in 0..100 {
        let mut extra = Sub::connect(moved.tcp.unwrap()).await;
        if extra.next().await.is_none() {
            refused = Some(());
            break;
        }
        // The limit may not have applied yet: this one got in; let it go and try again.
    }
    assert!(refused.is_some(), "the lower limit never applied");
    assert!(old.next().await.is_some());
    assert!(new.next().await.is_some());

    shutdown.cancel();
    timeout(DEADLINE, daemon).await.unwrap().unwrap().unwrap();
    // Lines already sent may still be buffered; then each stream ends.
    for sub in [&mut old, &mut new] {
        let mut n_lines = 0;
        while sub.next().await.is_some() {
            n_lines += 1;
            assert!(n_lines < 100, "not closed at shutdown");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_set_live_applies_to_newcomers_only() {
    use tokio::io::AsyncWriteExt;
    let localhost = IpAddr::from([127, 0, 0, 1]);
    let mut config = Config { bind: localhost, port: 0, interval: 3600, ..Config::default() };
    config.http.port = 0;
    let (config_tx, config_rx) = watch::channel(config.clone());
    let (listening_tx, mut listening_rx) = watch::channel(Listening::default());
    let shutdown = CancellationToken::new();
    let options = RunOptions { listening: Some(listening_tx), ..RunOptions::default() };
    let daemon = tokio::spawn(run_with(config_rx, shutdown.clone(), options));
    let addr = wait_listening(&mut listening_rx, |l| l.tcp.is_some()).await.tcp.unwrap();
    let mut before = Sub::connect(addr).await;
    assert!(before.next().await.is_some());

    config.http.token = Some("0123456789abcdef".to_string());
    config_tx.send(config.clone()).unwrap();
    // No acknowledgement of a reload: a newcomer without the token is refused once it applies.
    let mut refused = false;
    for _ in 0..300 {
        let mut newcomer = Sub::connect(addr).await;
        newcomer.0.get_mut().write_all(b"hello\n").await.unwrap();
        if newcomer.next().await.is_some_and(|l| l.contains("unauthorized")) {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "the token never applied");
    let mut with_token = Sub::connect(addr).await;
    with_token.0.get_mut().write_all(b"AUTH 0123456789abcdef\n").await.unwrap();
    assert!(with_token.next().await.unwrap().starts_with('{'));
    // The subscriber admitted before keeps its stream.
    config.interval = 1;
    config_tx.send(config.clone()).unwrap();
    assert!(before.next().await.is_some());
    shutdown.cancel();
    daemon.await.unwrap().unwrap();
}
