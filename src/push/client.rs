//! The HTTP client of the push sinks. \[io\]: TCP, TLS, files (CA certificates).
//!
//! A sink's URL, credentials and TLS roots around the shared [`crate::net::http::Client`]
//! (hyper-util over hyper-rustls; roots are `push.NAME.ca` when set, else the system's store).
//! Credentials: `username`/`password` as Basic auth (InfluxDB 1.x), `token` as
//! `Authorization: Token …` on InfluxDB 2.x URLs (`/api/v2/…`) and `Bearer …` elsewhere.
//! Every request has a deadline ([`REQUEST_TIMEOUT`]) and redirects are not followed: a 3xx comes
//! back as it is and the sink treats it as a failure.
//!
//! What it does not do: decide what an answer means (`push::policy`), retry, encode.

use std::path::Path;

use base64::Engine as _;
use hyper::header::{HeaderName, HeaderValue, CONTENT_ENCODING};
use hyper::Uri;

use super::encode::Body;
use crate::config::SinkConfig;
use crate::net::http::{self, Request, Tls};
pub use crate::net::http::{describe, redact, ANSWER_MAX, CONNECT_TIMEOUT, REQUEST_TIMEOUT};

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
    http: http::Client,
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

impl Client {
    /// A client for `sink` (whose `url` is checked by `config`); relative CA paths are in `files_dir`.
    ///
    /// # Errors
    /// When the URL does not parse or the TLS roots cannot be read.
    pub fn new(sink: &SinkConfig, files_dir: &Path) -> Result<Client, String> {
        let url = sink.url.as_deref().unwrap_or_default();
        let uri: Uri = url.parse().map_err(|_| format!("cannot use URL {}", redact(url)))?;
        let https = uri.scheme_str() == Some("https");
        let http = http::Client::new(Tls {
            ca: sink.ca.as_deref(),
            files_dir,
            ca_key: "push.NAME.ca",
            https,
        })?;
        let authorization = authorization(sink, url)
            .map(|value| {
                HeaderValue::from_str(&value)
                    .map_err(|_| "cannot use credentials: not valid in a header".to_string())
            })
            .transpose()?;
        Ok(Client { uri, authorization, http })
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
        let mut req = Request::post(self.uri.clone()).body(body.content_type, body.bytes.clone());
        if let Some(encoding) = body.content_encoding {
            req = req.header(CONTENT_ENCODING, HeaderValue::from_static(encoding));
        }
        for (name, value) in &body.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("cannot build request: invalid header name {name:?}"))?;
            req = req.header(name, HeaderValue::from_static(value));
        }
        if let Some(auth) = &self.authorization {
            req = req.authorization(auth);
        }
        let exchange = async {
            let res = self
                .http
                .request(req)
                .await
                .map_err(|err| format!("cannot send to {}: {err}", self.url()))?;
            let status = res.status;
            let retry_after = res.header("retry-after").map(str::to_string);
            // The answer's text is only for messages: read what fits, ignore the rest.
            let body = res.text(ANSWER_MAX).await;
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
