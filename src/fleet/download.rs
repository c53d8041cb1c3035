//! Downloading an artifact: resumable, hashed while it streams, bounded by its declared size.
//! \[io\]; [`Hasher`], [`content_range_start`] and [`part_path`] are pure.
//!
//! The rules (docs/fleet.md, "Downloads"):
//!
//! - Bytes go to `NAME.part` next to the destination; the destination appears (by rename) only
//!   when the whole file arrived and its hash matched.
//! - A `NAME.part` left by an interrupted download is resumed with `Range: bytes=N-`; its
//!   bytes are hashed again first. A server that answers `200` instead of `206` sends the whole
//!   file, and the part is started over; a `206` whose `Content-Range` does not start at `N`
//!   is refused.
//! - The hash is the strongest the server sent ([`super::ddi::Hashes::strongest`]: sha256, then
//!   sha1, then md5), computed while streaming. A mismatch removes the part.
//! - A file longer than its declared size is cut off at the first byte beyond it (and removed);
//!   so is a `Content-Length` that announces more.
//! - Redirects are followed (at most [`MAX_REDIRECTS`]), never from https to http; the token
//!   goes only to the origin of `fleet.url` ([`super::client::Ddi::auth_for`]), so a redirect to
//!   another origin (a CDN, object storage) is fetched without it.
//! - A connection that breaks, or stalls for [`STALL`], leaves the part for the next attempt
//!   ([`Failure::Interrupted`]); only a refusal removes it ([`Failure::Refused`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::Digest as _;
use tokio::io::AsyncWriteExt as _;
use tokio_util::sync::CancellationToken;

use super::client::Ddi;
use super::ddi::HashAlgo;
use crate::net::http::{self, Request};

/// How long a download may receive nothing before it counts as interrupted.
pub const STALL: Duration = Duration::from_secs(60);
/// Redirects followed for one download.
pub const MAX_REDIRECTS: usize = 5;

/// What to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The artifact's URL.
    pub url: String,
    /// Its declared size.
    pub size: Option<u64>,
    /// The strongest hash the server sent, hex lowercase.
    pub hash: Option<(HashAlgo, String)>,
}

/// Why a download did not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The connection broke, stalled or was refused: the part stays, a later attempt resumes it.
    #[error("{0}")]
    Interrupted(String),
    /// The file is not what the server declared (hash, size): the part was removed.
    #[error("{0}")]
    Refused(String),
    /// Stopped on request: the part stays.
    #[error("download cancelled")]
    Cancelled,
}

/// `NAME.part` next to `dest`. \[pure\]
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".part");
    dest.with_file_name(name)
}

/// A running hash of one of the DDI algorithms. \[pure\]
#[derive(Debug, Clone)]
pub enum Hasher {
    /// SHA-256.
    Sha256(sha2::Sha256),
    /// SHA-1.
    Sha1(sha1::Sha1),
    /// MD5.
    Md5(md5::Md5),
    /// No hash was sent.
    None,
}

impl Hasher {
    /// A fresh hasher for `algo`.
    pub fn new(algo: Option<HashAlgo>) -> Hasher {
        match algo {
            Some(HashAlgo::Sha256) => Hasher::Sha256(sha2::Sha256::new()),
            Some(HashAlgo::Sha1) => Hasher::Sha1(sha1::Sha1::new()),
            Some(HashAlgo::Md5) => Hasher::Md5(md5::Md5::new()),
            None => Hasher::None,
        }
    }

    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha1(h) => h.update(bytes),
            Hasher::Md5(h) => h.update(bytes),
            Hasher::None => {}
        }
    }

    /// The digest as lowercase hex; `None` without an algorithm.
    pub fn finish(self) -> Option<String> {
        let bytes: Vec<u8> = match self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Md5(h) => h.finalize().to_vec(),
            Hasher::None => return None,
        };
        Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }
}

fn algo_name(algo: HashAlgo) -> &'static str {
    match algo {
        HashAlgo::Sha256 => "sha256",
        HashAlgo::Sha1 => "sha1",
        HashAlgo::Md5 => "md5",
    }
}

/// The first byte of a `Content-Range: bytes START-END/TOTAL` header. \[pure\]
pub fn content_range_start(value: &str) -> Option<u64> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, _) = rest.split_once('/')?;
    let (start, _) = range.split_once('-')?;
    start.trim().parse().ok()
}

/// Whether a file of `len` bytes may still grow by `more` within `size`. \[pure\]
pub fn within(size: Option<u64>, len: u64, more: u64) -> bool {
    size.is_none_or(|size| len.checked_add(more).is_some_and(|total| total <= size))
}

fn io_text(path: &Path, err: &std::io::Error) -> String {
    format!("{}: {}", path.display(), crate::error::describe_io(err))
}

/// Hashes what a file already holds (on a blocking thread).
async fn rehash(part: &Path, mut hasher: Hasher) -> Result<(Hasher, u64), String> {
    let part = part.to_path_buf();
    tokio::task::spawn_blocking(move || {
        use std::io::Read as _;
        let mut file = std::fs::File::open(&part).map_err(|e| io_text(&part, &e))?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut len = 0u64;
        loop {
            let n = file.read(&mut buf).map_err(|e| io_text(&part, &e))?;
            if n == 0 {
                return Ok((hasher, len));
            }
            hasher.update(&buf[..n]);
            len += n as u64;
        }
    })
    .await
    .map_err(|e| format!("internal error: {e}"))?
}

/// Downloads `target` to `dest` (see the module's rules). `progress` gets the bytes on disk
/// after each write and how many of them this call received.
///
/// # Errors
/// [`Failure`]: interrupted (part kept), refused (part removed) or cancelled.
pub async fn fetch(
    ddi: &Ddi,
    target: &Target,
    dest: &Path,
    progress: &mut (dyn FnMut(u64, u64) + Send),
    cancel: &CancellationToken,
) -> Result<(), Failure> {
    let part = part_path(dest);
    let algo = target.hash.as_ref().map(|(a, _)| *a);
    let refuse = |message: String| {
        let _ = std::fs::remove_file(&part);
        Failure::Refused(message)
    };
    if let Some(dir) = dest.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| Failure::Interrupted(format!("cannot create {}", io_text(dir, &e))))?;
    }
    // A file complete from an earlier attempt (downloaded outside a maintenance window).
    if let Ok(meta) = tokio::fs::metadata(dest).await {
        if target.size.is_none_or(|size| size == meta.len()) {
            let (hasher, _) =
                rehash(dest, Hasher::new(algo)).await.map_err(Failure::Interrupted)?;
            let matches = match (&target.hash, hasher.finish()) {
                (Some((_, want)), Some(got)) => &got == want,
                _ => true,
            };
            if matches {
                return Ok(());
            }
        }
        let _ = tokio::fs::remove_file(dest).await;
    }
    // What an earlier attempt left.
    let (mut hasher, mut len) = match tokio::fs::metadata(&part).await {
        Ok(meta) if within(target.size, meta.len(), 0) && meta.len() > 0 => {
            rehash(&part, Hasher::new(algo)).await.map_err(Failure::Interrupted)?
        }
        _ => (Hasher::new(algo), 0),
    };
    let mut url = http::parse_url(&target.url).map_err(|e| Failure::Refused(e.to_string()))?;
    let mut res = None;
    for _ in 0..=MAX_REDIRECTS {
        let mut req = Request::get(url.clone()).range_from(len);
        if let Some(auth) = ddi.auth_for(&url) {
            req = req.authorization(auth);
        }
        let answer = tokio::select! {
            () = cancel.cancelled() => return Err(Failure::Cancelled),
            r = ddi.http().request(req) => r,
        }
        .map_err(|e| {
            Failure::Interrupted(format!("cannot download {}: {e}", http::redact(&url.to_string())))
        })?;
        if (300..400).contains(&answer.status) && answer.status != 304 {
            let location = answer.header("location").unwrap_or_default().to_string();
            url = http::redirect(&url, &location)
                .map_err(|e| Failure::Interrupted(format!("cannot download: {e}")))?
                .uri;
            continue;
        }
        res = Some(answer);
        break;
    }
    let shown = http::redact(&url.to_string());
    let Some(mut res) = res else {
        return Err(Failure::Interrupted(format!(
            "cannot download {shown}: more than {MAX_REDIRECTS} redirects"
        )));
    };
    let mut append = false;
    match res.status {
        200 => {
            // The whole file: start over, whatever the part held.
            hasher = Hasher::new(algo);
            len = 0;
        }
        206 => {
            let start = res.header("content-range").and_then(content_range_start);
            if start != Some(len) {
                // Not the range asked for: drop the part, the next attempt starts over.
                return Err(refuse(format!(
                    "cannot download {shown}: the server sent a range from {} instead of {len}",
                    start.map_or("an unknown offset".to_string(), |s| s.to_string())
                )));
            }
            append = true;
        }
        416 if len > 0 && target.size == Some(len) => {
            // Everything is there already; only the check remains.
            append = true;
        }
        416 => {
            return Err(refuse(format!(
                "cannot download {shown}: the server refused range {len}-"
            )));
        }
        status => {
            let text = res.text(256).await;
            return Err(Failure::Interrupted(format!(
                "cannot download {shown}: the server answered {status}{}",
                if text.trim().is_empty() { String::new() } else { format!(" ({})", text.trim()) }
            )));
        }
    }
    if let Some(announced) = res.header("content-length").and_then(|v| v.parse::<u64>().ok()) {
        if res.status != 416 && !within(target.size, len, announced) {
            return Err(refuse(format!(
                "cannot download {shown}: the server announces {} bytes, more than the {} declared",
                len + announced,
                target.size.unwrap_or_default()
            )));
        }
    }
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(&part)
        .await
        .map_err(|e| Failure::Interrupted(format!("cannot write {}", io_text(&part, &e))))?;
    let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, file);
    let write_err =
        |e: std::io::Error| Failure::Interrupted(format!("cannot write {}", io_text(&part, &e)));
    let mut received = 0u64;
    if res.status != 416 {
        loop {
            let chunk = tokio::select! {
                () = cancel.cancelled() => {
                    out.flush().await.map_err(write_err)?;
                    return Err(Failure::Cancelled);
                }
                c = res.chunk(STALL) => c,
            };
            let chunk = match chunk {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    // Keep what arrived for the next attempt.
                    out.flush().await.map_err(write_err)?;
                    return Err(Failure::Interrupted(format!("cannot download {shown}: {e}")));
                }
            };
            if !within(target.size, len, chunk.len() as u64) {
                drop(out);
                return Err(refuse(format!(
                    "cannot download {shown}: longer than the {} bytes declared",
                    target.size.unwrap_or_default()
                )));
            }
            hasher.update(&chunk);
            out.write_all(&chunk).await.map_err(write_err)?;
            len += chunk.len() as u64;
            received += chunk.len() as u64;
            progress(len, received);
        }
    }
    out.flush().await.map_err(write_err)?;
    out.get_ref().sync_all().await.map_err(write_err)?;
    drop(out);
    if let Some(size) = target.size {
        if len < size {
            return Err(Failure::Interrupted(format!(
                "cannot download {shown}: the answer ended after {len} of {size} bytes"
            )));
        }
    }
    if let (Some((algo, want)), Some(got)) = (&target.hash, hasher.finish()) {
        if &got != want {
            return Err(refuse(format!(
                "cannot download {shown}: its {} does not match (got {got}, want {want})",
                algo_name(*algo)
            )));
        }
    }
    tokio::fs::rename(&part, dest)
        .await
        .map_err(|e| Failure::Interrupted(format!("cannot rename {}", io_text(&part, &e))))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_sit_next_to_their_file() {
        assert_eq!(part_path(Path::new("/c/fleet/7.swu")), Path::new("/c/fleet/7.swu.part"));
    }

    #[test]
    fn hashes_are_the_usual_digests() {
        let digest = |algo| {
            let mut h = Hasher::new(algo);
            h.update(b"te");
            h.update(b"st");
            h.finish()
        };
        assert_eq!(
            digest(Some(HashAlgo::Sha256)).unwrap(),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
        assert_eq!(
            digest(Some(HashAlgo::Sha1)).unwrap(),
            "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"
        );
        assert_eq!(digest(Some(HashAlgo::Md5)).unwrap(), "098f6bcd4621d373cade4e832627b4f6");
        assert_eq!(digest(None), None);
    }

    #[test]
    fn content_ranges_give_their_start() {
        assert_eq!(content_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(content_range_start("bytes 0-0/*"), Some(0));
        assert_eq!(content_range_start("bytes */200"), None);
        assert_eq!(content_range_start("items 1-2/3"), None);
        assert_eq!(content_range_start(""), None);
    }

    #[test]
    fn sizes_bound_the_file() {
        assert!(within(Some(10), 5, 5));
        assert!(!within(Some(10), 5, 6));
        assert!(!within(Some(10), u64::MAX, 1));
        assert!(within(None, u64::MAX - 1, 1));
        assert!(within(Some(0), 0, 0));
    }

    /// A loopback server that answers one connection per reply, in order, then closes it;
    /// returns its URL and, at the end, the request heads it got.
    async fn serve(replies: Vec<Vec<u8>>) -> (String, tokio::task::JoinHandle<Vec<String>>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut heads = Vec::new();
            for reply in replies {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = sock.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    head.extend_from_slice(&buf[..n]);
                }
                heads.push(String::from_utf8_lossy(&head).to_lowercase());
                let _ = sock.write_all(&reply).await;
                let _ = sock.shutdown().await;
            }
            heads
        });
        (url, task)
    }

    fn reply(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    }

    fn ddi(url: &str, token: Option<&str>) -> Ddi {
        let config = crate::config::FleetConfig {
            url: Some(url.into()),
            ca: None,
            tenant: "DEFAULT".into(),
            controller_id: None,
            token: token.map(str::to_string),
            gateway_token: None,
            trusted_keys: None,
            enabled: true,
        };
        Ddi::new(&config, "d", Path::new("/nonexistent")).unwrap()
    }

    const BODY: &[u8] = b"0123456789";
    const SHA256: &str = "84d89877f0d4041efb6bf91a16f0248f2fd573e6af05c19f96bedb9f882f7882";

    fn target(url: &str) -> Target {
        Target {
            url: format!("{url}/file"),
            size: Some(10),
            hash: Some((HashAlgo::Sha256, SHA256.into())),
        }
    }

    async fn run(ddi: &Ddi, target: &Target, dest: &Path) -> Result<(), Failure> {
        fetch(ddi, target, dest, &mut |_, _| {}, &CancellationToken::new()).await
    }

    #[tokio::test]
    async fn a_part_is_resumed_with_range_and_the_whole_is_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a.swu");
        std::fs::write(part_path(&dest), &BODY[..4]).unwrap();
        let (url, server) = serve(vec![reply(
            "206 Partial Content",
            "Content-Range: bytes 4-9/10\r\n",
            &BODY[4..],
        )])
        .await;
        run(&ddi(&url, None), &target(&url), &dest).await.unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), BODY);
        assert!(!part_path(&dest).exists());
        let heads = server.await.unwrap();
        assert!(heads[0].contains("range: bytes=4-"), "{heads:?}");
    }

    #[tokio::test]
    async fn a_server_that_ignores_range_sends_it_all_again() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a.swu");
        std::fs::write(part_path(&dest), b"0123").unwrap();
        let (url, _server) = serve(vec![reply("200 OK", "", BODY)]).await;
        run(&ddi(&url, None), &target(&url), &dest).await.unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), BODY);
    }

    #[tokio::test]
    async fn a_wrong_range_or_hash_or_size_is_refused_and_the_part_removed() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a.swu");
        std::fs::write(part_path(&dest), b"0123").unwrap();
        let (url, _s) = serve(vec![reply(
            "206 Partial Content",
            "Content-Range: bytes 2-9/10\r\n",
            &BODY[2..],
        )])
        .await;
        let err = run(&ddi(&url, None), &target(&url), &dest).await.unwrap_err();
        assert!(
            matches!(&err, Failure::Refused(m) if m.contains("range from 2 instead of 4")),
            "{err:?}"
        );
        assert!(!part_path(&dest).exists());

        let (url, _s) = serve(vec![reply("200 OK", "", b"0123456780")]).await;
        let err = run(&ddi(&url, None), &target(&url), &dest).await.unwrap_err();
        assert!(
            matches!(&err, Failure::Refused(m) if m.contains("its sha256 does not match (got ")),
            "{err:?}"
        );
        assert!(!part_path(&dest).exists() && !dest.exists());

        let (url, _s) = serve(vec![reply("200 OK", "", b"0123456789A")]).await;
        let err = run(&ddi(&url, None), &target(&url), &dest).await.unwrap_err();
        assert!(
            matches!(&err, Failure::Refused(m) if m.contains("announces 11 bytes, more than the 10 declared")),
            "{err:?}"
        );
        assert!(!part_path(&dest).exists() && !dest.exists());
    }

    #[tokio::test]
    async fn a_cut_answer_keeps_its_part_for_the_next_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a.swu");
        let mut cut = reply("200 OK", "", BODY);
        cut.truncate(cut.len() - 4);
        let (url, _s) = serve(vec![cut]).await;
        let err = run(&ddi(&url, None), &target(&url), &dest).await.unwrap_err();
        assert!(matches!(err, Failure::Interrupted(_)), "{err:?}");
        assert_eq!(std::fs::read(part_path(&dest)).unwrap(), &BODY[..6]);
    }

    #[tokio::test]
    async fn the_token_stays_on_the_servers_origin_across_redirects() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a.swu");
        let (cdn, cdn_heads) = serve(vec![reply("200 OK", "", BODY)]).await;
        let (url, heads) = serve(vec![
            reply("302 Found", "Location: /moved\r\n", b""),
            reply("302 Found", &format!("Location: {cdn}/signed?x=1\r\n"), b""),
        ])
        .await;
        run(&ddi(&url, Some("s3cret")), &target(&url), &dest).await.unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), BODY);
        let heads = heads.await.unwrap();
        assert!(heads[0].contains("authorization: targettoken s3cret"), "{heads:?}");
        assert!(heads[1].starts_with("get /moved "), "{heads:?}");
        assert!(heads[1].contains("authorization: targettoken s3cret"), "same origin: {heads:?}");
        let cdn_heads = cdn_heads.await.unwrap();
        assert!(cdn_heads[0].starts_with("get /signed?x=1 "), "{cdn_heads:?}");
        assert!(!cdn_heads[0].contains("authorization"), "another origin: {cdn_heads:?}");
    }

    #[tokio::test]
    async fn a_complete_file_from_an_earlier_attempt_is_not_fetched_again() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a.swu");
        std::fs::write(&dest, BODY).unwrap();
        // Nobody listens: a request would fail.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}");
        run(&ddi(&url, None), &target(&url), &dest).await.unwrap();
        std::fs::write(&dest, b"0000000000").unwrap();
        let err = run(&ddi(&url, None), &target(&url), &dest).await.unwrap_err();
        assert!(matches!(err, Failure::Interrupted(_)), "a damaged file is fetched again: {err:?}");
        assert!(!dest.exists());
    }
}
