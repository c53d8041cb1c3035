//! The HTTP endpoint: latest snapshot as JSON, a Server-Sent Events stream, and Prometheus text. \[io\]
//!
//! | request | answer |
//! |---|---|
//! | `GET /v1/metrics` | the latest snapshot, JSON (the documented schema, whatever the stream format) |
//! | `GET /v1/metrics/stream` | SSE: one `snapshot` event per snapshot, the latest one at once, then every check's `check` event; `check` events on changes and `remodel` events later |
//! | `GET /v1/checks` | the latest check results, JSON (`pocketses checks run --json`'s document) |
//! | `GET /metrics` | Prometheus text format 0.0.4: the snapshot's families, then the daemon's own and `pocketses_check_state` |
//! | `GET /` | the dashboard ([`super::dashboard`]): HTML with every fact, live from the SSE stream |
//! | `GET /ui/…` | the dashboard's script, style sheet and uPlot, embedded, gzip, ETag, cacheable |
//! | `GET /v1/history` | the last hour of the dashboard's figures ([`super::history`]), JSON columns |
//! | `POST /v1/ingest` | hub mode: documents from spokes' json sinks ([`crate::hub::ingest`]), when `hub.ingest` is true |
//! | other paths | 404 with `{"error":"…"}` |
//! | other methods | 405 with `{"error":"…"}` and `Allow: GET, HEAD` |
//!
//! Routing ([`route`]) and framing ([`sse_frame`]) are pure; this module only adds hyper around them.
//! Prometheus text is encoded once per snapshot (see [`super::Published::prometheus`]) and sent as is;
//! the daemon's own families, a few lines, are formatted per scrape and sent as a second chunk.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{
    HeaderValue, ACCEPT_ENCODING, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_ENCODING,
    CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY, VARY,
    WWW_AUTHENTICATE, X_CONTENT_TYPE_OPTIONS,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::{CancellationToken, ReusableBoxFuture, WaitForCancellationFutureOwned};
use tracing::debug;

use super::auth;
use super::dashboard::{assets, page, Checks};
use super::limits::Reason;
use super::listen::{self, accept_loop, Gate, Secured, Serving, Ticket};
use super::tcp::{handshake, set_send_buffer, SEND_BUFFER, SHUTDOWN_GRACE};
use super::{next_checks, next_message, Counters, Event, Hub, Next, Published, Slot, Wire};
use crate::metrics::encode::prometheus::{self, Family, Kind, Sample};

/// The content type of Prometheus text format 0.0.4.
pub const PROMETHEUS_CONTENT_TYPE: &str = prometheus::CONTENT_TYPE;
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
    /// `GET /v1/checks`.
    Checks,
    /// `GET /`: the dashboard.
    Dashboard,
    /// `GET /v1/history`.
    History,
    /// `GET /ui/…`: one of the dashboard's embedded files, by path.
    Asset(&'static str),
    /// `/v1/ingest`, any method: [`crate::hub::ingest`] answers.
    Ingest,
    /// An unknown path.
    NotFound,
    /// A known path with a method other than GET or HEAD.
    MethodNotAllowed,
}

/// Maps a method and a path (without query) to a [`Route`]. \[pure\]
pub fn route(method: &Method, path: &str) -> Route {
    if path == "/v1/ingest" {
        return Route::Ingest;
    }
    let found = match path {
        "/v1/metrics" => Route::Json,
        "/v1/metrics/stream" => Route::Stream,
        "/metrics" => Route::Prometheus,
        "/v1/checks" => Route::Checks,
        "/" => Route::Dashboard,
        "/v1/history" => Route::History,
        _ => match assets::find(path) {
            Some(asset) => Route::Asset(asset.path),
            None => return Route::NotFound,
        },
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
    let mut refused = Family::new(
        "pocketses_connections_refused_total",
        "Connections refused, by listener (tcp, http) and reason (a limit, credentials, TLS, no descriptor).",
        Kind::Counter,
    );
    refused.samples = counters
        .refusals
        .all()
        .into_iter()
        .map(|(listener, reason, n)| {
            Sample::with(&[("listener", listener.as_str()), ("reason", reason.as_str())], n as f64)
        })
        .collect();
    vec![
        Family::single(
            "pocketses_sse_streams",
            "SSE streams open now (also counted in pocketses_subscribers).",
            Kind::Gauge,
            gauge(&counters.sse),
        ),
        Family::single(
            "pocketses_subscribers",
            "Subscribers connected now (TCP line stream and SSE).",
            Kind::Gauge,
            counters.subscribers() as f64,
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
        refused,
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

/// Serves HTTP on `listener` until `serving.stop`; connections end at `serving.shutdown`.
pub async fn serve(listener: TcpListener, serving: Serving) {
    let Serving { hub, gate, stop, shutdown, tracker } = serving;
    let pool = Pool::default();
    accept_loop(&listener, &stop, &gate, listen::Kind::Http, |stream, peer, ticket| {
        match pool.enter(gate.limits().max_connections) {
            Some(member) => {
                let conn = Conn { hub: hub.clone(), gate: gate.clone(), member, ticket };
                tracker.spawn(connection(stream, conn, shutdown.clone()));
            }
            None => gate.refuse(listen::Kind::Http, Reason::MaxConnections, peer.ip()),
        }
    })
    .await;
}

/// The open HTTP connections, oldest first, so that a full pool can make room.
///
/// When `http.max-connections` are open, a newcomer takes the place of the oldest connection
/// that has no request under way: one still waiting for its request head (a slowloris), or an
/// idle keep-alive. Connections serving a request or an SSE stream are never closed for it,
/// and SSE streams never take more than [`super::limits::Limits::sse_cap`], so a scrape always finds room.
#[derive(Debug, Clone, Default)]
struct Pool {
    inner: Arc<Mutex<PoolInner>>,
}

#[derive(Debug, Default)]
struct PoolInner {
    next: u64,
    open: BTreeMap<u64, (Arc<AtomicUsize>, CancellationToken)>,
}

impl Pool {
    /// A place for a new connection, closing the oldest idle one if the pool is full.
    fn enter(&self, max: usize) -> Option<Member> {
        let mut inner = self.inner.lock().ok()?;
        if inner.open.len() >= max {
            let idle = inner
                .open
                .iter()
                .find(|(_, (busy, _))| busy.load(Ordering::Acquire) == 0)
                .map(|(id, _)| *id)?;
            if let Some((_, evict)) = inner.open.remove(&idle) {
                evict.cancel();
            }
        }
        let id = inner.next;
        inner.next += 1;
        let busy = Arc::new(AtomicUsize::new(0));
        let evict = CancellationToken::new();
        inner.open.insert(id, (busy.clone(), evict.clone()));
        Some(Member { pool: self.clone(), id, busy, evict })
    }
}

/// A connection's place in the [`Pool`].
#[derive(Debug)]
struct Member {
    pool: Pool,
    id: u64,
    /// Requests under way on this connection (a response body not yet sent counts).
    busy: Arc<AtomicUsize>,
    /// Cancelled when a newcomer takes this connection's place.
    evict: CancellationToken,
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Ok(mut inner) = self.pool.inner.lock() {
            inner.open.remove(&self.id);
        }
    }
}

/// Marks a connection busy while a response is under way.
#[derive(Debug)]
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn new(count: &Arc<AtomicUsize>) -> Busy {
        count.fetch_add(1, Ordering::AcqRel);
        Busy(count.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One HTTP connection's state.
struct Conn {
    hub: Hub,
    gate: Gate,
    member: Member,
    ticket: Ticket,
}

async fn connection(stream: TcpStream, conn: Conn, shutdown: CancellationToken) {
    let _ = stream.set_nodelay(true);
    // Like the line stream's: an SSE client that stops reading pins 64 KiB, not megabytes.
    set_send_buffer(&stream, SEND_BUFFER);
    let secured = conn.gate.secured();
    match &secured.tls {
        None => serve_connection(stream, conn, secured.clone(), shutdown).await,
        Some(tls) => match handshake(tls, stream).await {
            Some(stream) => serve_connection(stream, conn, secured.clone(), shutdown).await,
            None => conn.gate.refuse(listen::Kind::Http, Reason::Tls, conn.ticket.source()),
        },
    }
}

async fn serve_connection<S>(io: S, conn: Conn, secured: Arc<Secured>, shutdown: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let evict = conn.member.evict.clone();
    let conn = Arc::new(conn);
    let service_shutdown = shutdown.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let (conn, secured, shutdown) = (conn.clone(), secured.clone(), service_shutdown.clone());
        async move {
            let busy = Busy::new(&conn.member.busy);
            let mut res = match authorize(&req, &conn, &secured).await {
                Ok(()) if route(req.method(), req.uri().path()) == Route::Ingest => {
                    ingest(req, &conn).await
                }
                Ok(()) => respond(&req, &conn, &shutdown),
                Err(res) => res,
            };
            res.body_mut().busy = Some(busy);
            Ok::<_, Infallible>(res)
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(err) = res {
                debug!(error = %err, "http connection ended");
            }
        }
        // A newcomer needed the place of this idle connection.
        _ = evict.cancelled() => {}
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
        }
    }
}

/// Whether a request needs credentials: when some are set, every route but a public `/metrics`,
/// unless the connection's client certificate was verified. \[pure\]
pub fn needs_credentials(route: &Route, secured: &Secured) -> bool {
    let cert_verified = secured.tls.as_ref().is_some_and(|tls| tls.client_auth());
    secured.credentials.required()
        && !cert_verified
        && !(secured.metrics_public && *route == Route::Prometheus)
}

/// Checks the request's credentials; the 401 answer when they are missing or wrong.
async fn authorize(
    req: &Request<Incoming>,
    conn: &Conn,
    secured: &Secured,
) -> Result<(), Response<ResponseBody>> {
    if !needs_credentials(&route(req.method(), req.uri().path()), secured) {
        return Ok(());
    }
    let header = req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
    let allowed = match auth::check(&secured.credentials, auth::presented(header)) {
        auth::Check::Allow => true,
        auth::Check::Deny => false,
        auth::Check::Bcrypt { hash, password } => conn.gate.verify_user(hash, password).await,
    };
    if allowed {
        return Ok(());
    }
    conn.gate.refuse(listen::Kind::Http, Reason::Unauthorized, conn.ticket.source());
    let mut res = error(StatusCode::UNAUTHORIZED, "unauthorized");
    let headers = res.headers_mut();
    if !secured.credentials.users.is_empty() {
        headers.append(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"pocketses\""));
    }
    if secured.credentials.token.is_some() {
        headers.append(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"pocketses\""));
    }
    Err(res)
}

fn respond(
    req: &Request<Incoming>,
    conn: &Conn,
    shutdown: &CancellationToken,
) -> Response<ResponseBody> {
    let hub = &conn.hub;
    match route(req.method(), req.uri().path()) {
        Route::Json => match hub.latest() {
            Some(latest) => ok("application/json", ResponseBody::full(latest.json.clone(), None)),
            None => error(StatusCode::SERVICE_UNAVAILABLE, "no snapshot collected yet"),
        },
        Route::Prometheus => match hub.latest() {
            Some(latest) => {
                let mut own = daemon_families(hub.counters());
                if let Some(push) = hub.push() {
                    own.extend(push.families(crate::spool::millis(std::time::SystemTime::now())));
                }
                if let Some(fleet) = hub.fleet() {
                    own.extend(fleet.families());
                }
                let mut own = prometheus::write(&mut own);
                if let Some(checks) = hub.checks() {
                    own.push_str(&String::from_utf8_lossy(&checks.prometheus()));
                }
                let own = Bytes::from(own);
                ok(PROMETHEUS_CONTENT_TYPE, ResponseBody::full(latest.prometheus(), Some(own)))
            }
            None => error(StatusCode::SERVICE_UNAVAILABLE, "no snapshot collected yet"),
        },
        Route::Checks => match hub.checks() {
            Some(checks) => ok("application/json", ResponseBody::full(checks.json(), None)),
            None => error(StatusCode::SERVICE_UNAVAILABLE, "no checks run yet"),
        },
        Route::Stream => match hub.try_sse_slot(conn.gate.limits().sse_cap()) {
            Some(slot) => {
                let mut res = ok("text/event-stream", SseBody::start(hub, slot, shutdown));
                res.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                res
            }
            None => {
                conn.gate.refuse(listen::Kind::Http, Reason::MaxSse, conn.ticket.source());
                error(StatusCode::SERVICE_UNAVAILABLE, "too many SSE streams")
            }
        },
        Route::Dashboard => {
            let board = hub.board();
            let latest = hub.latest();
            let (device, action, fleet) = (board.device(), board.action(), board.fleet());
            let checks = hub.checks().and_then(|set| Checks::from_json(&set.json()));
            let html = page::render(&page::View {
                snapshot: latest.as_ref().map(|p| p.snapshot.as_ref()),
                device: &device,
                checks: checks.as_ref(),
                action: &action,
                fleet: &fleet,
            });
            let etag = format!("\"{}\"", assets::digest(html.as_bytes()));
            let body = Content::Dynamic(Bytes::from(html));
            dashboard(req, "text/html; charset=utf-8", body, &etag, assets::REVALIDATE)
        }
        Route::History => {
            let json = Bytes::from(hub.board().history_json());
            let etag = format!("\"{}\"", assets::digest(&json));
            dashboard(req, "application/json", Content::Dynamic(json), &etag, assets::REVALIDATE)
        }
        Route::Asset(path) => {
            let asset = assets::get(path);
            // Linked with its digest by the page: it can never change under that name.
            let current = req.uri().query() == Some(&format!("v={}", asset.digest()));
            let cache = if current { assets::IMMUTABLE } else { assets::REVALIDATE };
            dashboard(req, asset.content_type, Content::Static(asset), &asset.etag(), cache)
        }
        // Ingest is answered by `ingest` before this.
        Route::NotFound | Route::Ingest => {
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

/// `/v1/ingest`: the hub's handler decides, this only frames its answer.
async fn ingest(req: Request<Incoming>, conn: &Conn) -> Response<ResponseBody> {
    let figures = conn.hub.push().map(crate::push::sink::Registry::hub);
    let answer = crate::hub::ingest::handle(req, figures).await;
    let mut res = ok("application/json", ResponseBody::full(Bytes::from(answer.body), None));
    *res.status_mut() = answer.status;
    if answer.allow_post {
        res.headers_mut().insert(ALLOW, HeaderValue::from_static("POST"));
    }
    if answer.retry {
        res.headers_mut().insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    res
}

/// What a dashboard answer carries: an embedded file (compressed once) or bytes made for this request.
enum Content {
    Static(&'static assets::Asset),
    Dynamic(Bytes),
}

/// A dashboard answer: 304 when the client has `etag`, gzip when it takes it, and the headers
/// that keep the page to itself (Content-Security-Policy, no sniffing, no referrer).
fn dashboard(
    req: &Request<Incoming>,
    content_type: &'static str,
    body: Content,
    etag: &str,
    cache: &'static str,
) -> Response<ResponseBody> {
    let header = |name| req.headers().get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    let fresh = assets::matches_etag(header(IF_NONE_MATCH), etag);
    let gzip = assets::accepts_gzip(header(ACCEPT_ENCODING));
    let mut res = if fresh {
        let mut res = Response::new(ResponseBody::full(Bytes::new(), None));
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        res
    } else {
        let bytes = match (body, gzip) {
            (Content::Static(asset), true) => asset.gzip(),
            (Content::Static(asset), false) => Bytes::from_static(asset.raw),
            (Content::Dynamic(bytes), true) => Bytes::from(assets::gzip_fast(&bytes)),
            (Content::Dynamic(bytes), false) => bytes,
        };
        ok(content_type, ResponseBody::full(bytes, None))
    };
    let headers = res.headers_mut();
    if gzip && !fresh {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if let Ok(etag) = HeaderValue::from_str(etag) {
        headers.insert(ETAG, etag);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    headers
        .insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(assets::CONTENT_SECURITY_POLICY));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
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
pub struct ResponseBody {
    kind: BodyKind,
    /// Keeps the connection busy (not to be closed for a newcomer) until the body is sent.
    busy: Option<Busy>,
}

enum BodyKind {
    /// Ready bytes, sent in order.
    Full(Option<Bytes>, Option<Bytes>),
    /// A live event stream.
    Sse(Box<SseBody>),
}

impl ResponseBody {
    fn full(head: Bytes, tail: Option<Bytes>) -> ResponseBody {
        ResponseBody { kind: BodyKind::Full(Some(head), tail), busy: None }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.get_mut().kind {
            BodyKind::Full(head, tail) => {
                Poll::Ready(head.take().or_else(|| tail.take()).map(|b| Ok(Frame::data(b))))
            }
            BodyKind::Sse(sse) => sse.poll_next(cx).map(|b| b.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.kind, BodyKind::Full(None, None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            BodyKind::Full(head, tail) => {
                let len = |b: &Option<Bytes>| b.as_ref().map_or(0, |b| b.len() as u64);
                SizeHint::with_exact(len(head) + len(tail))
            }
            BodyKind::Sse(_) => SizeHint::default(),
        }
    }
}

type Received = (Result<Event, RecvError>, broadcast::Receiver<Event>);

async fn receive(mut rx: broadcast::Receiver<Event>) -> Received {
    let res = rx.recv().await;
    (res, rx)
}

/// An SSE subscriber: the latest snapshot first, then every check's state, then every event until
/// shutdown. Snapshots come from the hub's ring (drop-oldest), state events from its state ring
/// (never dropped; a reader too far behind on it is disconnected).
pub struct SseBody {
    first: VecDeque<Bytes>,
    last_seq: u64,
    /// The run of checks whose results were sent whole; changes up to it are skipped.
    last_checks: u64,
    recv: ReusableBoxFuture<'static, Received>,
    state: ReusableBoxFuture<'static, Received>,
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    hub: Hub,
    _slot: Slot,
}

impl SseBody {
    fn start(hub: &Hub, slot: Slot, shutdown: &CancellationToken) -> ResponseBody {
        // The state ring first: a change published while the latest checks are read is then
        // either in the full set or on the ring (and skipped by its run number when in both).
        let state = hub.subscribe_state();
        let (rx, latest) = hub.subscribe();
        let checks = latest.as_ref().and_then(|_| hub.checks());
        let first = latest.as_deref().map(Published::sse).into_iter();
        let sse = Box::new(SseBody {
            first: first.chain(checks.as_ref().map(|c| c.sse())).collect(),
            last_seq: latest.map_or(0, |p| p.seq),
            last_checks: checks.map_or(0, |c| c.seq),
            recv: ReusableBoxFuture::new(receive(rx)),
            state: ReusableBoxFuture::new(receive(state)),
            shutdown: Box::pin(shutdown.clone().cancelled_owned()),
            hub: hub.clone(),
            _slot: slot,
        });
        ResponseBody { kind: BodyKind::Sse(sse), busy: None }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if let Some(first) = self.first.pop_front() {
            return Poll::Ready(Some(first));
        }
        loop {
            if self.shutdown.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            // A stream opened before the first snapshot starts with it all the same: the
            // collector publishes a cycle's snapshot before its checks, and both may be waiting.
            if self.last_seq == 0 {
                if let Poll::Ready((res, rx)) = self.recv.poll(cx) {
                    self.recv.set(receive(rx));
                    match res {
                        Ok(event @ Event::Snapshot(_)) => {
                            if let Next::Send(bytes) =
                                next_message(&event, &mut self.last_seq, Wire::Sse)
                            {
                                return Poll::Ready(Some(bytes));
                            }
                        }
                        Ok(_) => {}
                        Err(RecvError::Lagged(n)) => {
                            self.hub.counters().dropped.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(RecvError::Closed) => return Poll::Ready(None),
                    }
                    continue;
                }
            }
            // State events first: they are never dropped, snapshots may be.
            if let Poll::Ready((res, rx)) = self.state.poll(cx) {
                self.state.set(receive(rx));
                match res {
                    Ok(event) => {
                        let next = match &event {
                            Event::Checks(changes) => next_checks(changes, &mut self.last_checks),
                            _ => next_message(&event, &mut self.last_seq, Wire::Sse),
                        };
                        if let Next::Send(bytes) = next {
                            return Poll::Ready(Some(bytes));
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        // Never skip a state event: end the stream; the client reconnects and
                        // starts again from the latest snapshot and checks.
                        self.hub.counters().dropped.fetch_add(n, Ordering::Relaxed);
                        debug!(missed = n, "an SSE subscriber fell too far behind on state events");
                        return Poll::Ready(None);
                    }
                    Err(RecvError::Closed) => return Poll::Ready(None),
                }
                continue;
            }
            let (res, rx) = ready!(self.recv.poll(cx));
            self.recv.set(receive(rx));
            match res {
                Ok(event @ Event::Snapshot(_)) => {
                    if let Next::Send(bytes) = next_message(&event, &mut self.last_seq, Wire::Sse) {
                        return Poll::Ready(Some(bytes));
                    }
                }
                // The same event comes on the state ring.
                Ok(_) => {}
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
    use crate::publish::limits::Limits;
    use std::net::SocketAddr;

    #[test]
    fn routes() {
        for (method, path, want) in [
            (Method::GET, "/v1/metrics", Route::Json),
            (Method::HEAD, "/v1/metrics", Route::Json),
            (Method::GET, "/v1/metrics/stream", Route::Stream),
            (Method::GET, "/metrics", Route::Prometheus),
            (Method::GET, "/v1/checks", Route::Checks),
            (Method::PUT, "/v1/checks", Route::MethodNotAllowed),
            (Method::POST, "/metrics", Route::MethodNotAllowed),
            (Method::DELETE, "/v1/metrics", Route::MethodNotAllowed),
            (Method::GET, "/", Route::Dashboard),
            (Method::POST, "/", Route::MethodNotAllowed),
            (Method::GET, "/v1/history", Route::History),
            (Method::GET, "/ui/app.js", Route::Asset("/ui/app.js")),
            (Method::GET, "/ui/uplot.css", Route::Asset("/ui/uplot.css")),
            (Method::GET, "/ui/", Route::NotFound),
            (Method::GET, "/ui/../metrics", Route::NotFound),
            (Method::GET, "/index.html", Route::NotFound),
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
        assert_eq!(text.matches("# HELP ").count(), 7);
        assert_eq!(text.matches("# TYPE ").count(), 7);
        // Six single samples and one per listener and reason.
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 6 + 2 * 7);
        counters.refusals.add(listen::Kind::Http, super::super::limits::Reason::PerSource);
        let text = daemon_text(&counters);
        assert!(text.contains(
            "pocketses_connections_refused_total{listener=\"http\",reason=\"per-source\"} 1\n"
        ));
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

    /// Serves HTTP on an ephemeral loopback port with `limits`; one snapshot is published.
    async fn start(limits: Limits) -> (Hub, SocketAddr, CancellationToken) {
        let hub = Hub::new(10);
        let snapshot = crate::metrics::Snapshot::default();
        hub.publish(Published::new(1, snapshot, crate::config::Format::Json));
        serve_hub(hub, limits).await
    }

    /// Serves `hub` as it is.
    async fn serve_hub(hub: Hub, limits: Limits) -> (Hub, SocketAddr, CancellationToken) {
        let listener = super::super::tcp::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let tracker = tokio_util::task::TaskTracker::new();
        let serving = Serving::new(hub.clone(), shutdown.clone(), tracker);
        serving.gate.set_limits(limits);
        tokio::spawn(serve(listener, serving));
        (hub, addr, shutdown)
    }

    async fn get(addr: SocketAddr, path: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).await.unwrap();
        text
    }

    #[tokio::test]
    async fn a_slow_sse_reader_loses_old_snapshots_but_no_state_event() {
        use crate::publish::{CheckChanges, CheckSet, Report};
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let (hub, addr, shutdown) = start(Limits::default()).await;
        let mut stream = BufReader::new(TcpStream::connect(addr).await.unwrap());
        let req = "GET /v1/metrics/stream HTTP/1.1\r\nHost: t\r\n\r\n";
        stream.get_mut().write_all(req.as_bytes()).await.unwrap();
        let mut line = String::new();
        while line != "event: snapshot\n" {
            line.clear();
            stream.read_line(&mut line).await.unwrap();
        }
        // The test's runtime has one thread: while this loop runs, the stream's task cannot
        // write, and falls far more than QUEUE_CAPACITY messages behind.
        let snapshot = || crate::metrics::Snapshot::default();
        for seq in 2..=40 {
            hub.publish(Published::new(seq, snapshot(), crate::config::Format::Json));
            match seq {
                10 => hub.send(Event::Remodel(Report::new(r#"{"event":"remodel","n":1}"#.into()))),
                20 => {
                    let event = sse_frame("check", None, br#"{"check":"load","state":"CRIT"}"#);
                    let changes = CheckChanges { seq: 20, sse: event };
                    hub.publish_checks(Arc::new(CheckSet::new(20, 0.0, Vec::new())), Some(changes));
                }
                30 => hub.send(Event::Fleet(Report::named("fleet", r#"{"action":"7"}"#.into()))),
                _ => {}
            }
        }
        let mut events = Vec::new();
        let mut last_id = 0;
        while last_id < 40 {
            line.clear();
            let read = tokio::time::timeout(Duration::from_secs(30), stream.read_line(&mut line));
            assert!(read.await.unwrap().unwrap() > 0, "the stream ended: {events:?}");
            if let Some(name) = line.strip_prefix("event: ") {
                events.push(name.trim().to_string());
            } else if let Some(id) = line.strip_prefix("id: ") {
                last_id = id.trim().parse().unwrap();
            }
        }
        // Snapshots were dropped (drop-oldest), the three state events were not.
        assert!(hub.counters().dropped.load(Ordering::Relaxed) > 0, "{events:?}");
        for kind in ["remodel", "check", "fleet"] {
            assert_eq!(events.iter().filter(|e| *e == kind).count(), 1, "{kind}: {events:?}");
        }
        shutdown.cancel();
    }

    #[tokio::test]
    async fn the_page_is_served_before_the_first_snapshot() {
        let (_hub, addr, shutdown) = serve_hub(Hub::new(10), Limits::default()).await;
        // The figures are not there yet; the page with the device's facts and its files are.
        for path in ["/", "/ui/app.js", "/v1/history"] {
            let text = get(addr, path).await;
            assert!(text.starts_with("HTTP/1.1 200 "), "{path}: {text}");
        }
        assert!(get(addr, "/").await.contains("<html"));
        let text = get(addr, "/v1/metrics").await;
        assert!(text.starts_with("HTTP/1.1 503 ") && text.contains("no snapshot"), "{text}");
        shutdown.cancel();
    }

    #[tokio::test]
    async fn a_full_pool_closes_its_oldest_idle_connection_for_a_scrape() {
        use tokio::io::AsyncReadExt;
        let limits = Limits { max_connections: 4, max_sse: 1, per_source: 100 };
        let (_hub, addr, shutdown) = start(limits).await;
        // Four connections that never send a request fill the pool.
        let mut idle = Vec::new();
        for _ in 0..4 {
            idle.push(TcpStream::connect(addr).await.unwrap());
        }
        let text = get(addr, "/metrics").await;
        assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
        // The oldest made room: it is closed without an answer.
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(30), idle[0].read(&mut buf)).await;
        assert!(matches!(n, Ok(Ok(0)) | Ok(Err(_))), "{n:?}");
        shutdown.cancel();
    }

    #[tokio::test]
    async fn sse_streams_are_capped_apart_from_scrapes() {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let limits = Limits { max_connections: 8, max_sse: 2, per_source: 100 };
        let (hub, addr, shutdown) = start(limits).await;
        let mut streams = Vec::new();
        for _ in 0..2 {
            let mut stream = BufReader::new(TcpStream::connect(addr).await.unwrap());
            let req = "GET /v1/metrics/stream HTTP/1.1\r\nHost: t\r\n\r\n";
            stream.get_mut().write_all(req.as_bytes()).await.unwrap();
            let mut line = String::new();
            stream.read_line(&mut line).await.unwrap();
            assert!(line.starts_with("HTTP/1.1 200 "), "{line}");
            streams.push(stream);
        }
        let text = get(addr, "/v1/metrics/stream").await;
        assert!(text.starts_with("HTTP/1.1 503 "), "{text}");
        assert!(text.contains("too many SSE streams"), "{text}");
        assert!(get(addr, "/metrics").await.starts_with("HTTP/1.1 200 "));
        let refusals = &hub.counters().refusals;
        assert_eq!(refusals.get(listen::Kind::Http, Reason::MaxSse), 1);
        shutdown.cancel();
    }

    /// SO_SNDBUF of this process's socket whose peer is `peer`.
    fn send_buffer_of_socket_to(peer: SocketAddr) -> usize {
        use std::os::fd::{AsRawFd, BorrowedFd};
        for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
            let Ok(fd) = entry.unwrap().file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let dir = std::fs::File::open("/proc/self/fd").unwrap();
            if fd == dir.as_raw_fd() {
                continue;
            }
            // SAFETY: the descriptor is open (listed just now) and only borrowed for two calls;
            // a descriptor that is not a socket makes them fail, which is skipped.
            let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
            let sock = socket2::SockRef::from(&borrowed);
            let Ok(addr) = sock.peer_addr() else { continue };
            if addr.as_socket() == Some(peer) {
                return sock.send_buffer_size().unwrap();
            }
        }
        panic!("no socket to {peer}");
    }

    #[tokio::test]
    async fn sse_sockets_keep_a_small_send_buffer() {
        use tokio::io::AsyncWriteExt;
        let (hub, addr, shutdown) = start(Limits::default()).await;
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut client = socket.connect(addr).await.unwrap();
        let req = "GET /v1/metrics/stream HTTP/1.1\r\nHost: t\r\n\r\n";
        client.write_all(req.as_bytes()).await.unwrap();
        // Never read: megabytes of events wait for this client.
        for seq in 2..6 {
            let snapshot = crate::metrics::Snapshot {
                hostname: "x".repeat(1 << 20),
                ..crate::metrics::Snapshot::default()
            };
            hub.publish(Published::new(seq, snapshot, crate::config::Format::Json));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let local = client.local_addr().unwrap();
        let size = send_buffer_of_socket_to(local);
        // The kernel doubles what is asked for; autotuned, it would be megabytes.
        assert!(size <= 2 * SEND_BUFFER, "{size}");
        shutdown.cancel();
    }

    #[test]
    fn prometheus_content_type() {
        assert_eq!(PROMETHEUS_CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
    }
}
