//! HTTP/1.1 over a unix socket: the only place that knows hyper and hyperlocal.
//!
//! \[io\] [`UnixTransport`] sends one [`Request`] and reads the whole [`Response`].
//! It does not decode envelopes, apply timeouts or retry: [`super::Client`] does.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client as HyperClient;
use hyperlocal::{UnixClientExt, UnixConnector};

use super::{Error, Method, Request, Response, Transport};

/// A transport to one unix socket, with a small connection pool.
#[derive(Clone)]
pub struct UnixTransport {
    socket: PathBuf,
    client: HyperClient<UnixConnector, Full<Bytes>>,
}

impl std::fmt::Debug for UnixTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixTransport").field("socket", &self.socket).finish()
    }
}

impl UnixTransport {
    /// A transport to `socket`; nothing is connected until the first request.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        UnixTransport { socket: socket.into(), client: HyperClient::unix() }
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    async fn send(&self, req: Request) -> Result<Response, Error> {
        let uri = unix_uri(&self.socket, &req.path)?;
        let method = match req.method {
            Method::Get => hyper::Method::GET,
            Method::Put => hyper::Method::PUT,
            Method::Post => hyper::Method::POST,
        };
        let mut builder =
            hyper::Request::builder().method(method).uri(uri).header("host", "localhost");
        if let Some(content_type) = &req.content_type {
            builder = builder.header("content-type", content_type.as_str());
        }
        let request = builder
            .body(Full::new(Bytes::from(req.body)))
            .map_err(|err| Error::Http(format!("cannot build request: {err}")))?;
        let reply = self.client.request(request).await.map_err(|err| self.map_error(&err))?;
        let status = reply.status().as_u16();
        let header = |name: &str| {
            reply.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
        };
        let content_type = header("content-type");
        let assertions_count = header("x-ubuntu-assertions-count").and_then(|v| v.parse().ok());
        let body = reply
            .into_body()
            .collect()
            .await
            .map_err(|err| Error::Http(format!("cannot read response: {err}")))?
            .to_bytes()
            .to_vec();
        Ok(Response { status, content_type, assertions_count, body })
    }

    fn map_error(&self, err: &hyper_util::client::legacy::Error) -> Error {
        if err.is_connect() {
            let mut source: Option<&(dyn std::error::Error + 'static)> =
                std::error::Error::source(err);
            while let Some(inner) = source {
                if let Some(io) = inner.downcast_ref::<std::io::Error>() {
                    return Error::Connect {
                        socket: self.socket.clone(),
                        cause: std::io::Error::new(io.kind(), io.to_string()),
                    };
                }
                source = inner.source();
            }
            return Error::Connect {
                socket: self.socket.clone(),
                cause: std::io::Error::other(err.to_string()),
            };
        }
        let mut text = err.to_string();
        if let Some(inner) = std::error::Error::source(err) {
            text = format!("{text}: {inner}");
        }
        Error::Http(text)
    }
}

/// The `unix://<hex path>:0/<path>` URI hyperlocal's connector understands, built without
/// `hyperlocal::Uri::new`, which panics on a malformed path.
fn unix_uri(socket: &Path, path: &str) -> Result<hyper::Uri, Error> {
    use std::fmt::Write as _;
    use std::os::unix::ffi::OsStrExt as _;
    let mut host = String::with_capacity(socket.as_os_str().len() * 2);
    for byte in socket.as_os_str().as_bytes() {
        let _ = write!(host, "{byte:02x}");
    }
    format!("unix://{host}:0{path}")
        .parse()
        .map_err(|err| Error::Http(format!("invalid request path {path:?}: {err}")))
}

impl Transport for UnixTransport {
    fn round_trip(
        &self,
        req: Request,
    ) -> Pin<Box<dyn Future<Output = Result<Response, Error>> + Send + '_>> {
        Box::pin(self.send(req))
    }

    fn describe(&self) -> String {
        self.socket.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_matches_hyperlocal_and_refuses_bad_paths() {
        let ours = unix_uri(Path::new("/run/snapd.socket"), "/v2/changes?select=all").unwrap();
        let theirs: hyper::Uri =
            hyperlocal::Uri::new("/run/snapd.socket", "/v2/changes?select=all").into();
        assert_eq!(ours, theirs);
        assert!(matches!(unix_uri(Path::new("/s"), "/v2/a b"), Err(Error::Http(_))));
    }

    #[tokio::test]
    async fn missing_socket_is_a_connect_error() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("snapd.socket");
        let transport = UnixTransport::new(&socket);
        let err = transport.send(Request::get("/v2/system-info")).await.unwrap_err();
        match err {
            Error::Connect { socket: s, cause } => {
                assert_eq!(s, socket);
                assert_eq!(cause.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
