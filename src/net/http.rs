//! The HTTP(S) client for servers off the device: push sinks, the fleet server, hub spokes.
//! \[io\]: TCP, TLS, files (CA certificates); the URL helpers at the end are pure.
//!
//! hyper-util's pooled client over hyper-rustls (HTTP/1.1, rustls with *ring*, like the
//! listeners). TLS roots are a PEM file when the configuration names one (`push.NAME.ca`,
//! `fleet.ca`), else the system's certificate store read by `rustls-native-certs` (in the snap,
//! the base snap's `/etc/ssl/certs`, which is refreshed with it); a plain `http://` client reads
//! no roots at all.
//!
//! - [`Client::request`] sends one [`Request`] (any method, optional body, headers) and returns
//!   the [`Response`] once its head arrived, within [`Client::header_timeout`]
//!   ([`REQUEST_TIMEOUT`] by default). Connecting has its own deadline ([`CONNECT_TIMEOUT`]).
//! - The body is then read whole up to a cap ([`Response::text`], [`Response::bytes`]), or
//!   streamed ([`Response::chunk`], with a deadline per chunk, for downloads of any size).
//! - Redirects are never followed: a 3xx comes back as it is. A caller that wants to follow one
//!   asks [`redirect`] where it goes and whether it stays on the same origin (credentials must
//!   not travel to another origin).
//! - Messages never carry secrets: [`redact`] drops user info, query and fragment from URLs, and
//!   credential headers are marked sensitive ([`Request::authorization`]).
//!
//! What it does not do: retry, decide what a status means, encode bodies (the callers do).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RANGE, USER_AGENT,
};
use hyper::{Method, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// Default deadline for an answer's head (status and headers), from sending the request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Deadline of connecting (TCP and TLS).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A default cap for answers read whole (a server's message, a JSON document).
pub const ANSWER_MAX: usize = 64 * 1024;
/// The `User-Agent` of every request.
pub const AGENT: &str = concat!("pocketses/", env!("CARGO_PKG_VERSION"));

/// Why an exchange failed. The texts are fragments for the caller's own message
/// (`cannot send to URL: …`, `cannot poll the fleet server: …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The client or the request could not be made (bad URL, TLS roots, header value).
    #[error("{0}")]
    Setup(String),
    /// No answer: connection refused, TLS failure, connection closed (the causes, one line).
    #[error("{0}")]
    Send(String),
    /// No answer head within the deadline.
    #[error("no answer within {} s", .0.as_secs())]
    Timeout(Duration),
    /// The body stopped arriving for longer than the deadline of one chunk.
    #[error("no data for {} s", .0.as_secs())]
    Stalled(Duration),
    /// The body broke off (connection reset or closed before its end).
    #[error("answer broke off: {0}")]
    Body(String),
    /// The body is longer than the caller accepts.
    #[error("answer is longer than {0} bytes")]
    TooLarge(u64),
}

/// Where a client's TLS roots come from.
#[derive(Debug, Clone, Copy)]
pub struct Tls<'a> {
    /// A PEM file of CA certificates; relative paths are in `files_dir`.
    pub ca: Option<&'a Path>,
    /// Where relative CA paths are.
    pub files_dir: &'a Path,
    /// The configuration key that names the CA file, for messages (`push.NAME.ca`).
    pub ca_key: &'a str,
    /// Whether TLS roots are needed at all (false for plain `http://` servers).
    pub https: bool,
}

/// A pooled HTTP/1.1 client, plain or TLS. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct Client {
    http: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    header_timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("header_timeout", &self.header_timeout).finish()
    }
}

/// Reads the CA certificates of a PEM file (relative paths in `files_dir`), or the system's.
///
/// # Errors
/// When the file cannot be read or holds no certificate, or the system has no roots.
pub fn roots(
    ca: Option<&Path>,
    files_dir: &Path,
    ca_key: &str,
) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let path = files_dir.join(path);
            let pem = std::fs::read(&path).map_err(|err| {
                format!(
                    "cannot read CA file {}: {}",
                    path.display(),
                    crate::error::describe_io(&err)
                )
            })?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|_| {
                    format!("cannot read CA file {}: not PEM certificates", path.display())
                })?;
                roots
                    .add(cert)
                    .map_err(|err| format!("cannot use CA file {}: {err}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("cannot use CA file {}: no certificate in it", path.display()));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(format!("cannot find the system's CA certificates (set {ca_key})"));
            }
        }
    }
    Ok(roots)
}

impl Client {
    /// A client with the TLS roots `tls` names.
    ///
    /// # Errors
    /// When the TLS roots cannot be read (in words, naming the file or the key to set).
    pub fn new(tls: Tls<'_>) -> Result<Client, String> {
        // Plain http needs no roots: do not read the system's store for nothing.
        let roots = if tls.https {
            roots(tls.ca, tls.files_dir, tls.ca_key)?
        } else {
            rustls::RootCertStore::empty()
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| format!("cannot set up TLS: {err}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(1)
            .build(connector);
        Ok(Client { http: client, header_timeout: REQUEST_TIMEOUT })
    }

    /// The same client with another deadline for answer heads.
    #[must_use]
    pub fn with_header_timeout(mut self, timeout: Duration) -> Client {
        self.header_timeout = timeout;
        self
    }

    /// The deadline for an answer's head.
    pub fn header_timeout(&self) -> Duration {
        self.header_timeout
    }

    /// Sends `req` and waits for the answer's head (not its body), within
    /// [`Client::header_timeout`]. Whatever the status, including 3xx, it is an answer.
    ///
    /// # Errors
    /// When no answer came: connection refused, TLS failure, timeout.
    pub async fn request(&self, req: Request) -> Result<Response, Error> {
        let mut builder = hyper::Request::builder()
            .method(req.method)
            .uri(req.uri.clone())
            .header(USER_AGENT, AGENT);
        for (name, value) in req.headers {
            builder = builder.header(name, value);
        }
        let hyper_req = builder
            .body(Full::new(req.body))
            .map_err(|err| Error::Setup(format!("cannot build request: {err}")))?;
        let res =
            match tokio::time::timeout(self.header_timeout, self.http.request(hyper_req)).await {
                Ok(Ok(res)) => res,
                Ok(Err(err)) => return Err(Error::Send(describe(&err))),
                Err(_) => return Err(Error::Timeout(self.header_timeout)),
            };
        let (parts, body) = res.into_parts();
        Ok(Response { status: parts.status.as_u16(), headers: parts.headers, body, uri: req.uri })
    }
}

/// One request: method, URL, headers and an optional body.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    uri: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

impl Request {
    /// A request with no body.
    pub fn new(method: Method, uri: Uri) -> Request {
        Request { method, uri, headers: Vec::new(), body: Bytes::new() }
    }

    /// A `GET`.
    pub fn get(uri: Uri) -> Request {
        Request::new(Method::GET, uri)
    }

    /// A `POST` (give it a body with [`Request::body`] or [`Request::json`]).
    pub fn post(uri: Uri) -> Request {
        Request::new(Method::POST, uri)
    }

    /// A `PUT` (give it a body with [`Request::body`] or [`Request::json`]).
    pub fn put(uri: Uri) -> Request {
        Request::new(Method::PUT, uri)
    }

    /// The URL it goes to.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Request {
        self.headers.push((name, value));
        self
    }

    /// Adds `Authorization`, marked sensitive (hyper never shows it in debug output).
    #[must_use]
    pub fn authorization(self, value: &HeaderValue) -> Request {
        let mut value = value.clone();
        value.set_sensitive(true);
        self.header(AUTHORIZATION, value)
    }

    /// Asks for the body from byte `offset` on (`Range: bytes=OFFSET-`); 0 asks for all of it.
    #[must_use]
    pub fn range_from(self, offset: u64) -> Request {
        if offset == 0 {
            return self;
        }
        match HeaderValue::from_str(&format!("bytes={offset}-")) {
            Ok(value) => self.header(RANGE, value),
            Err(_) => self,
        }
    }

    /// Sets a binary body and its `Content-Type`.
    #[must_use]
    pub fn body(mut self, content_type: &'static str, bytes: impl Into<Bytes>) -> Request {
        self.body = bytes.into();
        self.header(CONTENT_TYPE, HeaderValue::from_static(content_type))
    }

    /// Sets a JSON body (`Content-Type: application/json`).
    #[must_use]
    pub fn json(self, value: &serde_json::Value) -> Request {
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        self.body("application/json", bytes)
    }
}

/// An answer whose head arrived; the body is still to be read.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    body: Incoming,
    uri: Uri,
}

impl Response {
    /// A header as text, when present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The URL that answered (the request's).
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The start of the body as text (at most `max` bytes, invalid UTF-8 replaced), for
    /// messages; a body that breaks off gives what arrived, or nothing. Never fails.
    pub async fn text(self, max: usize) -> String {
        let mut out = Vec::new();
        let mut body = self.body;
        while out.len() < max {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        let room = max - out.len();
                        out.extend_from_slice(&data[..data.len().min(room)]);
                    }
                }
                _ => break,
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The whole body, refused when longer than `max` bytes, within `deadline`.
    ///
    /// # Errors
    /// [`Error::TooLarge`], [`Error::Body`] when it broke off, [`Error::Timeout`].
    pub async fn bytes(self, max: usize, deadline: Duration) -> Result<Bytes, Error> {
        let read = Limited::new(self.body, max).collect();
        match tokio::time::timeout(deadline, read).await {
            Err(_) => Err(Error::Timeout(deadline)),
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(err)) => {
                if err.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                    Err(Error::TooLarge(max as u64))
                } else {
                    Err(Error::Body(describe(err.as_ref())))
                }
            }
        }
    }

    /// The next piece of the body, `None` at its end; waits at most `idle` for it.
    ///
    /// # Errors
    /// [`Error::Stalled`] when nothing came within `idle`, [`Error::Body`] when it broke off.
    pub async fn chunk(&mut self, idle: Duration) -> Result<Option<Bytes>, Error> {
        loop {
            let frame = match tokio::time::timeout(idle, self.body.frame()).await {
                Err(_) => return Err(Error::Stalled(idle)),
                Ok(None) => return Ok(None),
                Ok(Some(Err(err))) => return Err(Error::Body(describe(&err))),
                Ok(Some(Ok(frame))) => frame,
            };
            // Trailers carry no data: read on.
            if let Ok(data) = frame.into_data() {
                if !data.is_empty() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

/// A URL without what may be secret in it (user info, query: InfluxDB 1.x takes `u=` and `p=`
/// there; fragment), for logs and status. \[pure\]
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return String::new() };
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}{path}")
}

/// The error's causes on one line, without repeats: hyper's own text ("client error (Connect)")
/// says little, its sources say why (`connection refused`). \[pure\]
pub fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.retain(|p| !p.starts_with("client error"));
    if parts.is_empty() {
        return err.to_string();
    }
    parts.join(": ")
}

/// Parses an absolute `http://` or `https://` URL.
///
/// # Errors
/// When it is not one (the message shows it without secrets).
pub fn parse_url(url: &str) -> Result<Uri, Error> {
    let bad = || Error::Setup(format!("cannot use URL {}", redact(url)));
    let uri: Uri = url.parse().map_err(|_| bad())?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(host)) if !host.is_empty() => Ok(uri),
        _ => Err(bad()),
    }
}

/// scheme, host (lowercase), port (the scheme's default when absent). \[pure\]
fn origin(uri: &Uri) -> Option<(String, String, u16)> {
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let host = uri.host()?.to_ascii_lowercase();
    Some((scheme, host, uri.port_u16().unwrap_or(default)))
}

/// Whether two URLs have the same origin (scheme, host, port). \[pure\]
pub fn same_origin(a: &Uri, b: &Uri) -> bool {
    matches!((origin(a), origin(b)), (Some(x), Some(y)) if x == y)
}

/// Where a redirect goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The absolute target.
    pub uri: Uri,
    /// Whether it stays on the origin of the URL that redirected: only then may credentials
    /// go along.
    pub same_origin: bool,
}

/// Resolves a `Location` against the URL that answered with it (absolute, `//host/…`, `/path`
/// or a relative path), and refuses targets that are not http(s) and downgrades from https to
/// http. \[pure\]
///
/// # Errors
/// The reason, as a fragment (`redirect to "…" …`).
pub fn redirect(from: &Uri, location: &str) -> Result<Redirect, String> {
    let location = location.trim();
    let scheme = from.scheme_str().unwrap_or("http");
    let authority = from.authority().map(|a| a.as_str()).unwrap_or("");
    let target = if location.contains("://") {
        location.to_string()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else if location.is_empty() {
        return Err("redirect without a location".into());
    } else {
        let path = from.path();
        let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
        format!("{scheme}://{authority}{dir}{location}")
    };
    let uri = parse_url(&target)
        .map_err(|_| format!("redirect to {:?} is not an http(s) URL", redact(&target)))?;
    if scheme.eq_ignore_ascii_case("https") && uri.scheme_str() != Some("https") {
        return Err(format!("redirect from https to {:?} refused", redact(&target)));
    }
    let same_origin = same_origin(from, &uri);
    Ok(Redirect { uri, same_origin })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn urls_lose_their_secrets_in_messages() {
        assert_eq!(redact("http://h:8086/write?db=x&u=a&p=secret"), "http://h:8086/write");
        assert_eq!(redact("https://user:pw@h/api/v1/write"), "https://h/api/v1/write");
        assert_eq!(redact("http://h"), "http://h");
        assert_eq!(redact("http://h#frag"), "http://h");
        assert_eq!(redact("nonsense"), "");
    }

    #[test]
    fn only_absolute_http_urls_parse() {
        assert!(parse_url("https://fleet.example/x").is_ok());
        assert!(parse_url("http://127.0.0.1:8080").is_ok());
        for bad in ["ftp://h/x", "/just/a/path", "h:80", "", "http://"] {
            let err = parse_url(bad).unwrap_err().to_string();
            assert!(err.starts_with("cannot use URL"), "{bad}: {err}");
        }
        let err = parse_url("gopher://u:secret@h/?p=secret").unwrap_err().to_string();
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert!(same_origin(&uri("http://h/a"), &uri("http://H:80/b?x")));
        assert!(same_origin(&uri("https://h:443/a"), &uri("https://h/b")));
        assert!(!same_origin(&uri("http://h/a"), &uri("https://h/a")));
        assert!(!same_origin(&uri("http://h:8080/a"), &uri("http://h:8081/a")));
        assert!(!same_origin(&uri("http://h/a"), &uri("http://h.evil/a")));
    }

    #[test]
    fn redirects_resolve_and_say_whether_they_leave_the_origin() {
        let from = uri("https://fleet.example:8443/DEFAULT/controller/v1/d/file.swu?x=1");
        let r = redirect(&from, "/other/file.swu").unwrap();
        assert_eq!(r.uri, uri("https://fleet.example:8443/other/file.swu"));
        assert!(r.same_origin);
        let r = redirect(&from, "again.swu").unwrap();
        assert_eq!(r.uri, uri("https://fleet.example:8443/DEFAULT/controller/v1/d/again.swu"));
        assert!(r.same_origin);
        let r = redirect(&from, "https://cdn.example/f.swu?sig=abc").unwrap();
        assert!(!r.same_origin);
        let r = redirect(&from, "//cdn.example/f.swu").unwrap();
        assert_eq!(r.uri, uri("https://cdn.example/f.swu"));
        assert!(!r.same_origin);
        // Another port of the same host is another origin.
        assert!(!redirect(&from, "https://fleet.example/f").unwrap().same_origin);
    }

    #[test]
    fn redirects_never_downgrade_or_leave_http() {
        let from = uri("https://fleet.example/f");
        let err = redirect(&from, "http://fleet.example/f").unwrap_err();
        assert!(err.contains("from https"), "{err}");
        assert!(redirect(&from, "file:///etc/passwd").unwrap_err().contains("not an http(s) URL"));
        assert!(redirect(&from, "").is_err());
        // Plain http may go to https.
        let r = redirect(&uri("http://h/f"), "https://h/f").unwrap();
        assert!(!r.same_origin);
        // No secret of the target in the message.
        let err = redirect(&from, "http://u:pw@h/f?token=s").unwrap_err();
        assert!(!err.contains("pw") && !err.contains("token=s"), "{err}");
    }

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("empty.pem"), "").unwrap();
        let tls = |ca: &'static str| Tls {
            ca: Some(Path::new(ca)),
            files_dir: dir.path(),
            ca_key: "fleet.ca",
            https: true,
        };
        let err = Client::new(tls("empty.pem")).unwrap_err();
        assert!(err.contains("no certificate in it"), "{err}");
        let err = Client::new(tls("missing.pem")).unwrap_err();
        assert!(err.starts_with("cannot read CA file"), "{err}");
        // Plain http reads no roots at all, even from a file that is not there.
        assert!(Client::new(Tls { https: false, ..tls("missing.pem") }).is_ok());
    }

    #[test]
    fn ranges_ask_from_an_offset() {
        let req = Request::get(uri("http://h/f")).range_from(0);
        assert!(req.headers.is_empty());
        let req = Request::get(uri("http://h/f")).range_from(1234);
        assert_eq!(req.headers[0].0, RANGE);
        assert_eq!(req.headers[0].1, "bytes=1234-");
    }

    #[test]
    fn credentials_are_sensitive_headers() {
        let req = Request::get(uri("http://h/f"))
            .authorization(&HeaderValue::from_static("TargetToken s3cret"));
        assert!(req.headers[0].1.is_sensitive());
        assert!(!format!("{req:?}").contains("s3cret"));
    }

    /// A one-shot server on loopback: answers each connection with `reply`, then closes.
    async fn serve(reply: &'static [u8]) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            // The head, then as many body bytes as Content-Length says.
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = sock.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_lowercase();
                if let Some(end) = text.find("\r\n\r\n") {
                    let want = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                    if n == 0 || got.len() >= end + 4 + want {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            sock.write_all(reply).await.unwrap();
            sock.shutdown().await.unwrap();
            got
        });
        (url, task)
    }

    fn plain() -> Client {
        let dir = std::env::temp_dir();
        Client::new(Tls { ca: None, files_dir: &dir, ca_key: "x.ca", https: false }).unwrap()
    }

    #[tokio::test]
    async fn a_redirect_comes_back_as_it_is() {
        let (url, server) = serve(
            b"HTTP/1.1 302 Found\r\nLocation: http://elsewhere/\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        let req = Request::get(parse_url(&format!("{url}/f")).unwrap()).range_from(10);
        let res = plain().request(req).await.unwrap();
        assert_eq!(res.status, 302);
        assert_eq!(res.header("location"), Some("http://elsewhere/"));
        let sent = String::from_utf8(server.await.unwrap()).unwrap();
        assert!(sent.starts_with("GET /f HTTP/1.1\r\n"), "{sent}");
        assert!(sent.to_lowercase().contains("range: bytes=10-"), "{sent}");
        assert!(sent.contains(AGENT), "{sent}");
    }

    #[tokio::test]
    async fn bodies_stream_and_caps_hold() {
        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world";
        let (url, _server) = serve(reply).await;
        let mut res = plain().request(Request::get(parse_url(&url).unwrap())).await.unwrap();
        let mut got = Vec::new();
        while let Some(chunk) = res.chunk(Duration::from_secs(30)).await.unwrap() {
            got.extend_from_slice(&chunk);
        }
        assert_eq!(got, b"hello world");

        let (url, _server) = serve(reply).await;
        let res = plain().request(Request::get(parse_url(&url).unwrap())).await.unwrap();
        let err = res.bytes(5, Duration::from_secs(30)).await.unwrap_err();
        assert_eq!(err, Error::TooLarge(5));

        let (url, _server) = serve(reply).await;
        let res = plain().request(Request::get(parse_url(&url).unwrap())).await.unwrap();
        assert_eq!(res.text(5).await, "hello");
    }

    #[tokio::test]
    async fn a_body_cut_short_is_an_error_not_an_end() {
        let (url, _server) =
            serve(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this").await;
        let mut res = plain().request(Request::get(parse_url(&url).unwrap())).await.unwrap();
        let mut err = None;
        loop {
            match res.chunk(Duration::from_secs(30)).await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        assert!(matches!(err, Some(Error::Body(_))), "{err:?}");
    }

    #[tokio::test]
    async fn json_bodies_are_sent_with_their_type() {
        let (url, server) = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
        let req = Request::put(parse_url(&url).unwrap()).json(&serde_json::json!({"a": 1}));
        assert_eq!(plain().request(req).await.unwrap().status, 200);
        let sent = String::from_utf8(server.await.unwrap()).unwrap();
        assert!(sent.starts_with("PUT / HTTP/1.1\r\n"), "{sent}");
        assert!(sent.to_lowercase().contains("content-type: application/json"), "{sent}");
        assert!(sent.ends_with("{\"a\":1}"), "{sent}");
    }

    #[tokio::test]
    async fn no_answer_is_an_error_in_words() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let req = Request::get(parse_url(&format!("http://127.0.0.1:{port}/")).unwrap());
        let err = plain().request(req).await.unwrap_err();
        assert!(matches!(err, Error::Send(_)), "{err:?}");
        assert!(err.to_string().to_lowercase().contains("refused"), "{err}");
    }
}
