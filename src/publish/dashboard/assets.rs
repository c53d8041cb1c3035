//! The files the dashboard loads, embedded in the binary: its script and style sheet, and uPlot
//! (vendored in `ui/uplot/` with its MIT licence). \[pure\]
//!
//! Each file is gzip-compressed once, on first use, and keeps that copy for the life of the daemon;
//! its ETag is a digest of its bytes, so it changes exactly when a new binary changes the file.
//! The page names each file with `?v=` and the digest, so a browser may keep it for a year
//! ([`IMMUTABLE`]); a request without the current digest is only allowed a revalidation.

use std::io::Write as _;
use std::sync::OnceLock;

use hyper::body::Bytes;
use sha2::{Digest, Sha256};

/// `Cache-Control` of an asset requested with its current digest.
pub const IMMUTABLE: &str = "private, max-age=31536000, immutable";
/// `Cache-Control` of everything else the dashboard serves: keep, but ask every time.
pub const REVALIDATE: &str = "private, no-cache";

/// The policy of every dashboard answer: nothing from outside, no inline script or style, no frames.
/// `data:` images only so that the page's empty icon (`data:,`) spares a request for /favicon.ico.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Path under which it is served (`/ui/app.js`).
    pub path: &'static str,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The file as embedded.
    pub raw: &'static [u8],
    compressed: OnceLock<Bytes>,
    digest: OnceLock<String>,
}

impl Asset {
    const fn new(path: &'static str, content_type: &'static str, raw: &'static [u8]) -> Asset {
        Asset { path, content_type, raw, compressed: OnceLock::new(), digest: OnceLock::new() }
    }

    /// The first 16 hex digits of the SHA-256 of the file: its version.
    pub fn digest(&self) -> &str {
        self.digest.get_or_init(|| digest(self.raw))
    }

    /// The `ETag` header value.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.digest())
    }

    /// The file gzip-compressed, made on first use.
    pub fn gzip(&self) -> Bytes {
        self.compressed.get_or_init(|| Bytes::from(gzip(self.raw))).clone()
    }

    /// The path with its version, as the page links it.
    pub fn url(&self) -> String {
        format!("{}?v={}", self.path, self.digest())
    }
}

/// Every embedded file.
pub static ASSETS: [Asset; 4] = [
    Asset::new("/ui/app.js", "text/javascript; charset=utf-8", include_bytes!("ui/app.js")),
    Asset::new("/ui/app.css", "text/css; charset=utf-8", include_bytes!("ui/app.css")),
    Asset::new(
        "/ui/uplot.js",
        "text/javascript; charset=utf-8",
        include_bytes!("ui/uplot/uPlot.iife.min.js"),
    ),
    Asset::new(
        "/ui/uplot.css",
        "text/css; charset=utf-8",
        include_bytes!("ui/uplot/uPlot.min.css"),
    ),
];

/// The asset served at `path`.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// The asset at `path` (which must be one of [`ASSETS`]; an unknown path is a bug in the page).
pub fn get(path: &str) -> &'static Asset {
    find(path).unwrap_or(&ASSETS[0])
}

/// The first 16 hex digits of the SHA-256 of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// `bytes` compressed with gzip at the best level (done once per file, so time does not matter).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    compress(bytes, flate2::Compression::best())
}

/// `bytes` compressed with gzip at a level fit for a page made per request (zlib's default).
pub fn gzip_fast(bytes: &[u8]) -> Vec<u8> {
    compress(bytes, flate2::Compression::default())
}

fn compress(bytes: &[u8], level: flate2::Compression) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 3), level);
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// Whether an `Accept-Encoding` header value accepts gzip (not with `q=0`).
pub fn accepts_gzip(header: Option<&str>) -> bool {
    header.is_some_and(|value| {
        value.split(',').any(|part| {
            let mut fields = part.split(';').map(str::trim);
            let coding = fields.next().unwrap_or_default();
            let refused = fields.any(|f| {
                f.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()).is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
    })
}

/// Whether an `If-None-Match` header value names `etag` (or is `*`).
pub fn matches_etag(header: Option<&str>, etag: &str) -> bool {
    header.is_some_and(|value| {
        value.split(',').map(str::trim).any(|tag| {
            tag == "*" || tag == etag || tag.strip_prefix("W/").is_some_and(|t| t == etag)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn every_asset_round_trips_through_gzip() {
        for asset in &ASSETS {
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&asset.gzip()[..]).read_to_end(&mut back).unwrap();
            assert_eq!(back, asset.raw, "{}", asset.path);
            assert!(asset.gzip().len() < asset.raw.len(), "{}", asset.path);
            assert_eq!(asset.etag().len(), 18);
            assert_eq!(find(asset.path).unwrap().path, asset.path);
        }
        assert!(find("/ui/nope.js").is_none());
    }

    #[test]
    fn gzip_is_accepted_unless_refused() {
        for (header, want) in [
            (None, false),
            (Some("gzip, deflate, br"), true),
            (Some("br;q=1.0, gzip;q=0.8"), true),
            (Some("GZIP"), true),
            (Some("gzip;q=0"), false),
            (Some("identity"), false),
            (Some("*"), true),
            (Some("x-gzip"), false),
        ] {
            assert_eq!(accepts_gzip(header), want, "{header:?}");
        }
    }

    #[test]
    fn etags_match_strong_weak_lists_and_star() {
        let etag = "\"0123456789abcdef\"";
        for (header, want) in [
            (None, false),
            (Some("\"0123456789abcdef\""), true),
            (Some("W/\"0123456789abcdef\""), true),
            (Some("\"x\", \"0123456789abcdef\""), true),
            (Some("*"), true),
            (Some("\"0123456789abcdeF\""), false),
        ] {
            assert_eq!(matches_etag(header, etag), want, "{header:?}");
        }
    }

    #[test]
    fn the_policy_lets_nothing_in_from_outside() {
        assert!(CONTENT_SECURITY_POLICY.starts_with("default-src 'none'; "));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
        assert!(!CONTENT_SECURITY_POLICY.contains("http"));
        assert!(!CONTENT_SECURITY_POLICY.contains('*'));
    }

    /// The vendored uPlot is the release its notice names, unmodified.
    #[test]
    fn uplot_is_the_vendored_release() {
        let notice = include_str!("ui/uplot/README.md");
        for asset in ["/ui/uplot.js", "/ui/uplot.css"] {
            let sha = Sha256::digest(get(asset).raw);
            let hex: String = sha.iter().map(|b| format!("{b:02x}")).collect();
            assert!(notice.contains(&hex), "{asset} is not the release README.md names ({hex})");
        }
    }
}
