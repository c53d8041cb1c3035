//! The HTTP endpoint: latest snapshot as JSON, a Server-Sent Events stream, and Prometheus text. \[io\]
//!
//! | request | answer |
//! |---|---|
//! | `GET /v1/metrics` | the latest snapshot, JSON (the documented schema, whatever the stream format) |
//! | `GET /v1/metrics/stream` | SSE: one `snapshot` event per snapshot, the latest one at once; `remodel` events later |
//! | `GET /metrics` | Prometheus text format 0.0.4: the snapshot's families, then the daemon's own |
//! | other paths | 404 with `{"error":"…"}` |
//! | other methods | 405 with `{"error":"…"}` and `Allow: GET, HEAD` |
//!
//! Routing ([`route`]) and framing ([`sse_frame`]) are pure; this module only adds hyper around them.
//! Prometheus text is encoded once per snapshot (see [`super::Published::prometheus`]) and sent as is;
//! the daemon's own families, a few lines, are formatted per scrape and sent as a second chunk.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::{CancellationToken, ReusableBoxFuture, WaitForCancellationFutureOwned};
use tokio_util::task::TaskTracker;
use tracing::debug;

use super::tcp::{accept_loop, SHUTDOWN_GRACE};
use super::{Counters, Event, Hub, Published, Slot};
use crate::metrics::encode::prometheus::{self, Family, Kind};

/// The content type of Prometheus text format 0.0.4.
pub const PROMETHEUS_CONTENT_TYPE: &str = prometheus::CONTENT_TYPE;
/// Open HTTP connections beyond this number are closed at once (SSE streams also count as subscribers).
pub const MAX_CONNECTIONS: usize = 512;
/// A client must send its request headers within this time.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What a request asks for. \[pure\]
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /v1/metrics`.
    Json,
    /// `GET /v1/metrics/stream`.
    Stream,
    /// `GET /metrics`.
    Prometheus,
    /// An unknown path.
    NotFound,
    /// A known path with a method other than GET or HEAD.
    MethodNotAllowed,
}

/// Maps a method and a path (without query) to a [`Route`]. \[pure\]
pub fn route(method: &Method, path: &str) -> Route {
    let found = match path {
        "/v1/metrics" => Route::Json,
        "/v1/metrics/stream" => Route::Stream,
        "/metrics" => Route::Prometheus,
        _ => return Route::NotFound,
    };
    if method == Method::GET || method == Method::HEAD {
        found
    } else {
        Route::MethodNotAllowed
    }
}

/// One SSE event: `event:` name, optional `id:`, then one `data:` line per line of `data`. \[pure\]
pub fn sse_frame(name: &str, id: Option<u64>, data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 48);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.push(b'\n');
    if let Some(id) = id {
        out.extend_from_slice(format!("id: {id}\n").as_bytes());
    }
    for line in data.split(|&b| b == b'\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
        out.push(b'\n');
    }
    out.push(b'\n');
    Bytes::from(out)
}

/// The daemon's own Prometheus families. \[pure\]
///
/// The snapshot's families (including `process_*` for this process) come from the metrics encoder;
/// these are the publishers' counters, written with the same encoder after the cached snapshot text.
pub fn daemon_families(counters: &Counters) -> Vec<Family> {
    let gauge = |n: &AtomicUsize| n.load(Ordering::Relaxed) as f64;
    let counter = |n: &AtomicU64| n.load(Ordering::Relaxed) as f64;
    vec![
        Family::single(
            "pocketses_subscribers",
            "Subscribers connected now (TCP line stream and SSE).",
            Kind::Gauge,
            gauge(&counters.subscribers),
        ),
        Family::single(
            "pocketses_subscribers_blocked",
            "Subscribers whose socket is full now: a message waits for them to read.",
            Kind::Gauge,
            gauge(&counters.blocked),
        ),
        Family::single(
            "pocketses_snapshots_published_total",
            "Snapshots published to subscribers since start.",
            Kind::Counter,
            counter(&counters.published),
        ),
        Family::single(
            "pocketses_messages_dropped_total",
            "Messages a lagging subscriber never received (oldest dropped first).",
            Kind::Counter,
            counter(&counters.dropped),
        ),
        Family::single(
            "pocketses_connections_refused_total",
            "Connections refused because of the subscriber limit or no free file descriptor.",
            Kind::Counter,
            counter(&counters.refused),
        ),
        Family::single(
            "pocketses_subscribers_flooded_total",
            "Subscribers disconnected for sending too much input.",
            Kind::Counter,
            counter(&counters.flooded),
        ),
    ]
}

/// The daemon's own families as Prometheus text.
pub fn daemon_text(counters: &Counters) -> String {
    prometheus::write(&mut daemon_families(counters))
}

/// Serves HTTP on `listener` until `stop`; connections end at `shutdown`.
pub async fn serve(
    listener: TcpListener,
    hub: Hub,
    stop: CancellationToken,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let counters_hub = hub.clone();
    accept_loop(&listener, &stop, &counters_hub, "http", |stream, peer| {
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                tracker.spawn(connection(stream, hub.clone(), shutdown.clone(), permit));
            }
            Err(_) => {
                hub.counters().refused.fetch_add(1, Ordering::Relaxed);
                debug!(%peer, "http connection refused: limit reached");
            }
        }
    })
    .await;
}

async fn connection(
    stream: TcpStream,
    hub: Hub,
    shutdown: CancellationToken,
    _permit: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let service_shutdown = shutdown.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let res = respond(&req, &hub, &service_shutdown);
        std::future::ready(Ok::<_, Infallible>(res))
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(err) = res {
                debug!(error = %err, "http connection ended");
            }
        }
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
        }
    }
}

fn respond(
    req: &Request<Incoming>,
    hub: &Hub,
    shutdown: &CancellationToken,
) -> Response<ResponseBody> {
    match route(req.method(), req.uri().path()) {
        Route::Json => match hub.latest() {
            Some(latest) => ok("application/json", ResponseBody::full(latest.json.clone(), None)),
            None => error(StatusCode::SERVICE_UNAVAILABLE, "no snapshot collected yet"),
        },
        Route::Prometheus => match hub.latest() {
            Some(latest) => {
                let own = Bytes::from(daemon_text(hub.counters()));
                ok(PROMETHEUS_CONTENT_TYPE, ResponseBody::full(latest.prometheus(), Some(own)))
            }
            None => error(StatusCode::SERVICE_UNAVAILABLE, "no snapshot collected yet"),
        },
        Route::Stream => match hub.try_slot() {
            Some(slot) => {
                let mut res = ok("text/event-stream", SseBody::start(hub, slot, shutdown));
                res.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                res
            }
            None => error(StatusCode::SERVICE_UNAVAILABLE, "too many subscribers"),
        },
        Route::NotFound => {
            error(StatusCode::NOT_FOUND, &format!("no such endpoint: {}", req.uri().path()))
        }
        Route::MethodNotAllowed => {
            let mut res = error(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("method not allowed: {}", req.method()),
            );
            res.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            res
        }
    }
}

fn ok(content_type: &'static str, body: ResponseBody) -> Response<ResponseBody> {
    let mut res = Response::new(body);
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

/// The JSON error body `{"error":"…"}`. \[pure\]
pub fn error_body(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

fn error(status: StatusCode, message: &str) -> Response<ResponseBody> {
    let mut res =
        ok("application/json", ResponseBody::full(Bytes::from(error_body(message)), None));
    *res.status_mut() = status;
    res
}

/// A response body: up to two ready chunks, or an SSE stream.
pub enum ResponseBody {
    /// Ready bytes, sent in order.
    Full(Option<Bytes>, Option<Bytes>),
    /// A live event stream.
    Sse(Box<SseBody>),
}

impl ResponseBody {
    fn full(head: Bytes, tail: Option<Bytes>) -> ResponseBody {
        ResponseBody::Full(Some(head), tail)
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            ResponseBody::Full(head, tail) => {
                Poll::Ready(head.take().or_else(|| tail.take()).map(|b| Ok(Frame::data(b))))
            }
            ResponseBody::Sse(sse) => sse.poll_next(cx).map(|b| b.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, ResponseBody::Full(None, None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Full(head, tail) => {
                let len = |b: &Option<Bytes>| b.as_ref().map_or(0, |b| b.len() as u64);
                SizeHint::with_exact(len(head) + len(tail))
            }
            ResponseBody::Sse(_) => SizeHint::default(),
        }
    }
}

type Received = (Result<Event, RecvError>, broadcast::Receiver<Event>);

async fn receive(mut rx: broadcast::Receiver<Event>) -> Received {
    let res = rx.recv().await;
    (res, rx)
}

/// An SSE subscriber: the latest snapshot first, then every event until shutdown.
pub struct SseBody {
    first: Option<Bytes>,
    last_seq: u64,
    recv: ReusableBoxFuture<'static, Received>,
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    hub: Hub,
    _slot: Slot,
}

impl SseBody {
    fn start(hub: &Hub, slot: Slot, shutdown: &CancellationToken) -> ResponseBody {
        let (rx, latest) = hub.subscribe();
        ResponseBody::Sse(Box::new(SseBody {
            first: latest.as_deref().map(Published::sse),
            last_seq: latest.map_or(0, |p| p.seq),
            recv: ReusableBoxFuture::new(receive(rx)),
            shutdown: Box::pin(shutdown.clone().cancelled_owned()),
            hub: hub.clone(),
            _slot: slot,
        }))
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(first));
        }
        loop {
            if self.shutdown.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            let (res, rx) = ready!(self.recv.poll(cx));
            self.recv.set(receive(rx));
            match res {
                Ok(Event::Snapshot(p)) if p.seq > self.last_seq => {
                    self.last_seq = p.seq;
                    return Poll::Ready(Some(p.sse()));
                }
                Ok(Event::Snapshot(_)) => {}
                Ok(Event::Remodel(report)) => {
                    return Poll::Ready(Some(sse_frame(Event::SSE_REMODEL, None, &report.json)));
                }
                Err(RecvError::Lagged(n)) => {
                    self.hub.counters().dropped.fetch_add(n, Ordering::Relaxed);
                }
                Err(RecvError::Closed) => return Poll::Ready(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        for (method, path, want) in [
            (Method::GET, "/v1/metrics", Route::Json),
            (Method::HEAD, "/v1/metrics", Route::Json),
            (Method::GET, "/v1/metrics/stream", Route::Stream),
            (Method::GET, "/metrics", Route::Prometheus),
            (Method::POST, "/metrics", Route::MethodNotAllowed),
            (Method::DELETE, "/v1/metrics", Route::MethodNotAllowed),
            (Method::GET, "/", Route::NotFound),
            (Method::GET, "/v1/metrics/", Route::NotFound),
            (Method::POST, "/nope", Route::NotFound),
        ] {
            assert_eq!(route(&method, path), want, "{method} {path}");
        }
    }

    #[test]
    fn sse_frames() {
        let got = sse_frame("snapshot", Some(7), br#"{"a":1}"#);
        assert_eq!(&got[..], b"event: snapshot\nid: 7\ndata: {\"a\":1}\n\n");
        let got = sse_frame("remodel", None, b"one\r\ntwo");
        assert_eq!(&got[..], b"event: remodel\ndata: one\ndata: two\n\n");
    }

    #[test]
    fn error_bodies_are_json() {
        let body = error_body("no such endpoint: /\"x\"");
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["error"], "no such endpoint: /\"x\"");
    }

    #[test]
    fn daemon_families_have_help_and_type() {
        let counters = Counters::default();
        counters.dropped.store(3, Ordering::Relaxed);
        let text = daemon_text(&counters);
        assert!(text.contains(
            "# TYPE pocketses_messages_dropped_total counter\npocketses_messages_dropped_total 3\n"
        ));
        assert_eq!(text.matches("# HELP ").count(), 6);
        assert_eq!(text.matches("# TYPE ").count(), 6);
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 6);
    }

    #[test]
    fn daemon_families_do_not_clash_with_the_snapshot() {
        let snapshot = crate::metrics::collect::Collector::new().collect();
        let names: Vec<String> =
            prometheus::families(&snapshot).into_iter().map(|f| f.name).collect();
        for family in daemon_families(&Counters::default()) {
            assert!(!names.contains(&family.name), "{} is already a snapshot family", family.name);
        }
    }

    #[test]
    fn prometheus_content_type() {
        assert_eq!(PROMETHEUS_CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
    }
}
