//! HTTP/1.1 over a unix socket: the only place that knows hyper and hyperlocal.
//!
//! \[io\] [`UnixTransport`] sends one [`Request`] and reads the whole [`Response`]; a
//! [`FileBody`] is streamed from its file in [`CHUNK`]-sized pieces, never read whole.
//! It does not decode envelopes, apply timeouts or retry: [`super::Client`] does.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client as HyperClient;
use hyperlocal::{UnixClientExt, UnixConnector};

use super::{Error, FileBody, FilePart, Method, Request, Response, Transport};

/// The most of a streamed file read at once.
pub const CHUNK: usize = 64 * 1024;

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

    async fn send(&self, mut req: Request) -> Result<Response, Error> {
        let body = Full::new(Bytes::from(std::mem::take(&mut req.body)));
        self.exchange(&self.client, req, body).await
    }

    /// Sends `req` with `body` streamed: a client of its own (the pooled one's body type is
    /// `Full`), so one connection for the one request.
    async fn send_file(&self, req: Request, body: FileBody) -> Result<Response, Error> {
        let total = body.len();
        let FileBody { head, files } = body;
        let stream = FileStream {
            head: Some(Bytes::from(head)),
            files: files.into_iter().collect(),
            current: None,
            total,
            buf: Vec::new(),
        };
        let client: HyperClient<UnixConnector, FileStream> = HyperClient::unix();
        self.exchange(&client, req, stream).await
    }

    async fn exchange<B>(
        &self,
        client: &HyperClient<UnixConnector, B>,
        req: Request,
        body: B,
    ) -> Result<Response, Error>
    where
        B: hyper::body::Body + Send + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
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
            .body(body)
            .map_err(|err| Error::Http(format!("cannot build request: {err}")))?;
        let reply = client.request(request).await.map_err(|err| self.map_error(&err))?;
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
        // Every cause: a streamed body's read error is two levels down.
        let mut text = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(inner) = source {
            text = format!("{text}: {inner}");
            source = inner.source();
        }
        Error::Http(text)
    }
}

/// A [`FileBody`] as an HTTP body: the head, then each file's bytes read [`CHUNK`] at a time as
/// hyper asks for them (so at most a chunk or two of a file is in memory) and the bytes after it.
struct FileStream {
    head: Option<Bytes>,
    /// The files not opened for reading yet.
    files: std::collections::VecDeque<FilePart>,
    /// The file being read: its bytes left, and what follows it.
    current: Option<Reading>,
    /// Bytes not yet handed to hyper.
    total: u64,
    buf: Vec<u8>,
}

struct Reading {
    file: tokio::fs::File,
    left: u64,
    after: Option<Bytes>,
}

impl hyper::body::Body for FileStream {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        use std::task::Poll;
        let this = self.get_mut();
        let data = |this: &mut FileStream, bytes: Bytes| {
            this.total -= bytes.len() as u64;
            Poll::Ready(Some(Ok(hyper::body::Frame::data(bytes))))
        };
        if let Some(head) = this.head.take() {
            return data(this, head);
        }
        loop {
            let reading = match &mut this.current {
                Some(reading) => reading,
                None => match this.files.pop_front() {
                    Some(FilePart { file, len, after }) => this.current.insert(Reading {
                        file: tokio::fs::File::from_std(file),
                        left: len,
                        after: Some(Bytes::from(after)),
                    }),
                    None => return Poll::Ready(None),
                },
            };
            if reading.left > 0 {
                let want = usize::try_from(reading.left).unwrap_or(CHUNK).min(CHUNK);
                this.buf.resize(want, 0);
                let mut read = tokio::io::ReadBuf::new(&mut this.buf);
                return match tokio::io::AsyncRead::poll_read(
                    Pin::new(&mut reading.file),
                    cx,
                    &mut read,
                ) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Err(err)) => Poll::Ready(Some(Err(err))),
                    Poll::Ready(Ok(())) if read.filled().is_empty() => {
                        Poll::Ready(Some(Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            format!("the file ended {} bytes early", reading.left),
                        ))))
                    }
                    Poll::Ready(Ok(())) => {
                        let bytes = Bytes::copy_from_slice(read.filled());
                        reading.left -= bytes.len() as u64;
                        data(this, bytes)
                    }
                };
            }
            match reading.after.take() {
                Some(after) => return data(this, after),
                None => this.current = None,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.total == 0
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.total)
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

    fn round_trip_file(
        &self,
        req: Request,
        body: FileBody,
    ) -> Pin<Box<dyn Future<Output = Result<Response, Error>> + Send + '_>> {
        Box::pin(self.send_file(req, body))
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
