//! The HTTP client of the push sinks. \[io\]: TCP, TLS, files (CA certificates).
//!
//! hyper-util's pooled client over hyper-rustls (HTTP/1.1, rustls with *ring*, like the
//! listeners). TLS roots are `push.NAME.ca` when set, else the system's certificate store read
//! by `rustls-native-certs` (in the snap, the base snap's `/etc/ssl/certs`, which is refreshed
//! with it). Credentials: `username`/`password` as Basic auth (InfluxDB 1.x), `token` as
//! `Authorization: Token …` on InfluxDB 2.x URLs (`/api/v2/…`) and `Bearer …` elsewhere.
//! Every request has a deadline ([`REQUEST_TIMEOUT`]) and redirects are not followed: a 3xx comes
//! back as it is and the sink treats it as a failure.
//!
//! What it does not do: decide what an answer means (`push::policy`), retry, encode.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::encode::Body;
use crate::config::SinkConfig;

/// Deadline of one request, from connecting to the end of the answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Deadline of connecting (TCP and TLS).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of an answer's body is read (the store's error message).
pub const ANSWER_MAX: usize = 64 * 1024;

/// What the store answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// The `Retry-After` header, when present.
    pub retry_after: Option<String>,
    /// The start of the body, as text.
    pub body: String,
}

/// A sink's client: where, with which credentials, over which TLS roots.
#[derive(Clone)]
pub struct Client {
    uri: Uri,
    authorization: Option<HeaderValue>,
    http: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("uri", &redact(&self.uri.to_string())).finish()
    }
}

/// The `Authorization` header for a sink's credentials and URL. \[pure\]
pub fn authorization(sink: &SinkConfig, url: &str) -> Option<String> {
    if let (Some(user), Some(password)) = (&sink.username, &sink.password) {
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        return Some(format!("Basic {pair}"));
    }
    let token = sink.token.as_ref()?;
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = path.find('/').map_or("", |i| &path[i..]);
    let scheme = if path.starts_with("/api/v2/") { "Token" } else { "Bearer" };
    Some(format!("{scheme} {token}"))
}

/// A URL without what may be secret in it (user info, query: InfluxDB 1.x takes `u=` and `p=`
/// there), for logs and status. \[pure\]
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

/// Reads the CA certificates of `push.NAME.ca` (relative paths in `files_dir`), or the system's.
///
/// # Errors
/// When the file cannot be read or holds no certificate, or the system has no roots.
fn roots(ca: Option<&Path>, files_dir: &Path) -> Result<rustls::RootCertStore, String> {
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
                return Err("cannot find the system's CA certificates (set push.NAME.ca)".into());
            }
        }
    }
    Ok(roots)
}

impl Client {
    /// A client for `sink` (whose `url` is checked by `config`); relative CA paths are in `files_dir`.
    ///
    /// # Errors
    /// When the URL does not parse or the TLS roots cannot be read.
    pub fn new(sink: &SinkConfig, files_dir: &Path) -> Result<Client, String> {
        let url = sink.url.as_deref().unwrap_or_default();
        let uri: Uri = url.parse().map_err(|_| format!("cannot use URL {}", redact(url)))?;
        let https = uri.scheme_str() == Some("https");
        // Plain http needs no roots: do not read the system's store for nothing.
        let roots = if https {
            roots(sink.ca.as_deref(), files_dir)?
        } else {
            rustls::RootCertStore::empty()
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| format!("cannot set up TLS: {err}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(1)
            .build(connector);
        let authorization = authorization(sink, url)
            .map(|value| {
                let mut value = HeaderValue::from_str(&value)
                    .map_err(|_| "cannot use credentials: not valid in a header".to_string())?;
                value.set_sensitive(true);
                Ok::<_, String>(value)
            })
            .transpose()?;
        Ok(Client { uri, authorization, http: client })
    }

    /// The sink's URL without secrets.
    pub fn url(&self) -> String {
        redact(&self.uri.to_string())
    }

    /// POSTs `body` and reads the answer, within [`REQUEST_TIMEOUT`].
    ///
    /// # Errors
    /// When no answer came: connection refused, TLS failure, timeout (in snapd's grammar).
    pub async fn send(&self, body: &Body) -> Result<Answer, String> {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(CONTENT_TYPE, body.content_type)
            .header(USER_AGENT, concat!("pocketses/", env!("CARGO_PKG_VERSION")));
        if let Some(encoding) = body.content_encoding {
            req = req.header(CONTENT_ENCODING, encoding);
        }
        for (name, value) in &body.headers {
            req = req.header(*name, *value);
        }
        if let Some(auth) = &self.authorization {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        let req = req
            .body(Full::new(Bytes::from(body.bytes.clone())))
            .map_err(|err| format!("cannot build request: {err}"))?;
        let exchange = async {
            let res = self
                .http
                .request(req)
                .await
                .map_err(|err| format!("cannot send to {}: {}", self.url(), describe(&err)))?;
            let status = res.status().as_u16();
            let retry_after = res
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            // The answer's text is only for messages: read what fits, ignore the rest.
            let body = match Limited::new(res.into_body(), ANSWER_MAX).collect().await {
                Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
                Err(_) => String::new(),
            };
            Ok(Answer { status, retry_after, body })
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(res) => res,
            Err(_) => Err(format!(
                "cannot send to {}: no answer within {} s",
                self.url(),
                REQUEST_TIMEOUT.as_secs()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(url: &str) -> SinkConfig {
        SinkConfig { url: Some(url.into()), ..SinkConfig::default() }
    }

    #[test]
    fn credentials_become_the_header_each_store_wants() {
        let basic = SinkConfig {
            username: Some("alice".into()),
            password: Some("s3cret".into()),
            ..sink("http://h/write")
        };
        assert_eq!(authorization(&basic, "http://h/write").unwrap(), "Basic YWxpY2U6czNjcmV0");
        let token = SinkConfig { token: Some("tok".into()), ..sink("x") };
        assert_eq!(
            authorization(&token, "https://h:8086/api/v2/write?org=o&bucket=b").unwrap(),
            "Token tok"
        );
        assert_eq!(authorization(&token, "http://h/api/v1/write").unwrap(), "Bearer tok");
        assert_eq!(authorization(&token, "http://h/v1/ingest").unwrap(), "Bearer tok");
        assert_eq!(authorization(&sink("http://h/"), "http://h/"), None);
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
    fn a_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("empty.pem"), "").unwrap();
        let https = |ca: &str| SinkConfig {
            format: Some(crate::push::encode::SinkFormat::Json),
            ca: Some(ca.into()),
            ..sink("https://h/")
        };
        let err = Client::new(&https("empty.pem"), dir.path()).unwrap_err();
        assert!(err.contains("no certificate in it"), "{err}");
        let err = Client::new(&https("missing.pem"), dir.path()).unwrap_err();
        assert!(err.starts_with("cannot read CA file"), "{err}");
        assert!(err.contains("missing.pem"), "{err}");
        // Plain http reads no roots at all.
        assert!(Client::new(&sink("http://127.0.0.1:1/"), dir.path()).is_ok());
    }

    #[tokio::test]
    async fn no_answer_is_an_error_in_words() {
        let dir = tempfile::tempdir().unwrap();
        // A port nobody listens on: bind one, learn it, close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let client =
            Client::new(&sink(&format!("http://127.0.0.1:{port}/w?p=secret")), dir.path()).unwrap();
        let body = Body {
            bytes: b"x".to_vec(),
            content_type: "text/plain",
            content_encoding: None,
            headers: vec![],
        };
        let err = client.send(&body).await.unwrap_err();
        assert!(err.starts_with(&format!("cannot send to http://127.0.0.1:{port}/w: ")), "{err}");
        assert!(err.to_lowercase().contains("refused"), "{err}");
        assert!(!err.contains("secret"));
    }
}
