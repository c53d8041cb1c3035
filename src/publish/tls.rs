//! TLS for both listeners: `tls.cert`, `tls.key` and `tls.client-ca` files, reloaded live. \[io\]
//!
//! rustls with the *ring* provider (ARCHITECTURE.md says why ring). The files are PEM, as
//! exporter-toolkit's `cert_file`, `key_file` and `client_ca_file`.
//! With `tls.client-ca`, every client must present a certificate signed by one of its CAs,
//! on both listeners (exporter-toolkit's `RequireAndVerifyClientCert`); such a client counts as
//! authenticated and needs no token.
//!
//! Live reload: at most every [`RELOAD_CHECK`], on an accept, the files' modification time,
//! size and inode are compared with those last loaded; when one changed, the files are loaded
//! again and new connections use them (open ones keep theirs). If the new files do not load
//! (a certificate replaced before its key, say), the old ones keep serving and the problem is
//! logged once per change.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

/// How often, at most, the files are checked for a change.
pub const RELOAD_CHECK: Duration = Duration::from_secs(2);

/// The files of `tls.cert`, `tls.key` and `tls.client-ca`, as absolute paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Server certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates (PEM) that client certificates must chain to; none: no client certificates.
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    fn paths(&self) -> impl Iterator<Item = &Path> {
        [Some(self.cert.as_path()), Some(self.key.as_path()), self.client_ca.as_deref()]
            .into_iter()
            .flatten()
    }
}

/// What identifies a version of the files: modification time, size and inode of each.
type Stamp = Vec<Option<(SystemTime, u64, u64)>>;

fn stamp(files: &TlsFiles) -> Stamp {
    files
        .paths()
        .map(|p| {
            std::fs::metadata(p).ok().and_then(|m| Some((m.modified().ok()?, m.len(), m.ino())))
        })
        .collect()
}

/// A listener's TLS: the acceptor of the files last loaded, reloaded when they change.
pub struct Tls {
    files: TlsFiles,
    state: Mutex<State>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("files", &self.files).finish_non_exhaustive()
    }
}

struct State {
    acceptor: TlsAcceptor,
    loaded: Stamp,
    /// The stamp whose load failed, so the failure is logged once.
    failed: Option<Stamp>,
    checked: Instant,
}

impl Tls {
    /// Loads the files.
    ///
    /// # Errors
    /// When a file cannot be read or holds no usable certificate or key; the message names the file.
    pub fn load(files: TlsFiles) -> anyhow::Result<Tls> {
        let loaded = stamp(&files);
        let acceptor = acceptor(&files)?;
        let state = State { acceptor, loaded, failed: None, checked: Instant::now() };
        Ok(Tls { files, state: Mutex::new(state) })
    }

    /// The files.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Whether clients must present a certificate.
    pub fn client_auth(&self) -> bool {
        self.files.client_ca.is_some()
    }

    /// The acceptor for a new connection, after reloading the files if they changed.
    pub fn acceptor(&self) -> Option<TlsAcceptor> {
        let mut state = self.state.lock().ok()?;
        let now = Instant::now();
        if now.saturating_duration_since(state.checked) >= RELOAD_CHECK {
            state.checked = now;
            let current = stamp(&self.files);
            if current != state.loaded && state.failed.as_ref() != Some(&current) {
                match acceptor(&self.files) {
                    Ok(acceptor) => {
                        info!(cert = %self.files.cert.display(), "TLS files reloaded");
                        state.acceptor = acceptor;
                        state.loaded = current;
                        state.failed = None;
                    }
                    Err(err) => {
                        warn!("{err:#}; the TLS files loaded before stay in use");
                        state.failed = Some(current);
                    }
                }
            }
        }
        Some(state.acceptor.clone())
    }
}

fn read(what: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read TLS {what} {}", path.display()))
}

fn certificates(what: &str, path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| anyhow::anyhow!("cannot read TLS {what} {}: {err}", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!("cannot read TLS {what} {}: no PEM certificate in it", path.display());
    }
    Ok(certs)
}

/// Builds an acceptor from the files.
fn acceptor(files: &TlsFiles) -> anyhow::Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = certificates("certificate", &files.cert)?;
    let key_pem = read("key", &files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
        anyhow::anyhow!("cannot read TLS key {}: no PEM private key in it", files.key.display())
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("internal error: no TLS protocol version")?;
    let builder = match &files.client_ca {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates("client CA", path)? {
                roots.add(cert).map_err(|err| {
                    anyhow::anyhow!("cannot use TLS client CA {}: {err}", path.display())
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|err| {
                    anyhow::anyhow!("cannot use TLS client CA {}: {err}", path.display())
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(certs, key).map_err(|err| {
        anyhow::anyhow!(
            "cannot use TLS certificate {} with key {}: {err}",
            files.cert.display(),
            files.key.display()
        )
    })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) -> TlsFiles {
        let cert = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        let files =
            TlsFiles { cert: dir.join("cert.pem"), key: dir.join("key.pem"), client_ca: None };
        std::fs::write(&files.cert, cert.cert.pem()).unwrap();
        std::fs::write(&files.key, cert.signing_key.serialize_pem()).unwrap();
        files
    }

    #[test]
    fn loads_a_pair_and_names_a_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_pair(dir.path(), "localhost");
        assert!(Tls::load(files.clone()).is_ok());
        std::fs::write(&files.key, "not a key").unwrap();
        let err = Tls::load(files.clone()).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("cannot read TLS key {}: no PEM private key in it", files.key.display())
        );
        let missing = TlsFiles { cert: dir.path().join("nope.pem"), ..files };
        let err = format!("{:#}", Tls::load(missing).unwrap_err());
        assert!(err.starts_with("cannot read TLS certificate "), "{err}");
        assert!(err.ends_with("No such file or directory (os error 2)"), "{err}");
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_pair(dir.path(), "a");
        let other = rcgen::generate_simple_self_signed(vec!["b".to_string()]).unwrap();
        std::fs::write(&files.key, other.signing_key.serialize_pem()).unwrap();
        let err = Tls::load(files).unwrap_err().to_string();
        assert!(err.starts_with("cannot use TLS certificate "), "{err}");
    }

    #[test]
    fn changed_files_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_pair(dir.path(), "a");
        let before = stamp(&files);
        assert_eq!(before, stamp(&files));
        // A new pair written aside and renamed in, as certificate tools do: a new inode.
        let fresh = tempfile::tempdir_in(dir.path()).unwrap();
        let new = write_pair(fresh.path(), "b");
        std::fs::rename(&new.cert, &files.cert).unwrap();
        std::fs::rename(&new.key, &files.key).unwrap();
        assert_ne!(before, stamp(&files));
    }
}
