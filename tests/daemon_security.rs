//! TLS and authentication on the real daemon, seen from curl and from a rustls client.
//!
//! Certificates are made here with rcgen: a CA, a server certificate for 127.0.0.1 and
//! localhost, and a client CA with one client certificate.

#![allow(clippy::unwrap_used)]

mod daemon_util;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use daemon_util::{poll, Daemon, DEADLINE};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// A CA that signs server and client certificates, kept as PEM files in a temp dir.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        Pki { dir: tempfile::tempdir().unwrap() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `{name}-ca.pem`, and `{name}.pem` with `{name}.key` signed by it.
    fn issue(&self, name: &str, names: &[&str]) -> (PathBuf, PathBuf, PathBuf) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Distinct names: a leaf named like its issuer would look self-signed.
        params.distinguished_name.push(DnType::CommonName, format!("{name} test CA"));
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut leaf = CertificateParams::new(names).unwrap();
        leaf.distinguished_name.push(DnType::CommonName, name);
        let cert = leaf.signed_by(&key, &ca).unwrap();
        let paths = (
            self.path(&format!("{name}-ca.pem")),
            self.path(&format!("{name}.pem")),
            self.path(&format!("{name}.key")),
        );
        std::fs::write(&paths.0, ca.pem()).unwrap();
        std::fs::write(&paths.1, cert.pem()).unwrap();
        std::fs::write(&paths.2, key.serialize_pem()).unwrap();
        paths
    }
}

fn set(key: &str, value: &Path) -> String {
    format!("{key}={}", value.display())
}

/// curl's exit code and output for `url` with extra arguments.
fn curl(url: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), text)
}

/// The HTTP status curl saw (the last line of its output), 0 when it got no answer.
fn status(url: &str, args: &[&str]) -> u16 {
    let (_, text) = curl(url, args);
    text.lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or(0)
}

fn http_url(daemon: &Daemon, scheme: &str, path: &str) -> String {
    format!("{scheme}://{}{path}", daemon.http.unwrap())
}

/// A rustls client configuration trusting `ca`, with an optional client certificate.
fn client_config(ca: &Path, client: Option<(&Path, &Path)>) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(&std::fs::read(ca).unwrap()).unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let cert = CertificateDer::from_pem_slice(&std::fs::read(cert).unwrap()).unwrap();
            let key = PrivateKeyDer::from_pem_slice(&std::fs::read(key).unwrap()).unwrap();
            builder.with_client_auth_cert(vec![cert], key).unwrap()
        }
    };
    Arc::new(config)
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TLS connection to the stream, handshake done; `Err` when the handshake fails.
fn tls_connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<BufReader<TlsStream>> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(BufReader::new(stream))
}

fn read_line(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    let _ = reader.read_line(&mut line);
    line
}

#[test]
fn a_token_guards_http_and_the_stream() {
    let daemon = Daemon::start(&["--interval", "3600", "--set", "http.token=s3cret-token-0123"]);
    let bearer = ["-H", "Authorization: Bearer s3cret-token-0123"];
    let url = |path| http_url(&daemon, "http", path);
    poll("a first snapshot", || Some(()).filter(|()| status(&url("/metrics"), &bearer) == 200));
    assert_eq!(status(&url("/v1/metrics"), &bearer), 200);
    assert_eq!(status(&url("/v1/metrics"), &[]), 401);
    assert_eq!(status(&url("/v1/metrics"), &["-H", "Authorization: Bearer s3cre"]), 401);
    // /metrics is behind the token too unless http.metrics-public says otherwise.
    assert_eq!(status(&url("/metrics"), &[]), 401);
    let (_, text) = curl(&url("/metrics"), &["-D", "-"]);
    assert!(text.to_ascii_lowercase().contains("www-authenticate: bearer"), "{text}");

    // The stream: the token on the first line, or an error line and the end.
    let mut sub = daemon.subscribe();
    sub.stream().write_all(b"AUTH s3cret-token-0123\n").unwrap();
    assert!(daemon_util::is_json_line(&sub.line()));
    let mut sub = daemon.subscribe();
    sub.stream().write_all(b"AUTH nope\n").unwrap();
    assert!(sub.line().contains("unauthorized: send AUTH <token> as the first line"));
    assert_eq!(sub.next(), daemon_util::Read1::Closed);
    let refused = status(&url("/metrics"), &bearer);
    assert_eq!(refused, 200);
    let (_, text) = curl(&url("/metrics"), &bearer);
    assert!(
        text.contains(
            "pocketses_connections_refused_total{listener=\"tcp\",reason=\"unauthorized\"} 1"
        ),
        "{text}"
    );
    assert!(!daemon.stderr().contains("s3cret-token-0123"), "the token was logged");
}

#[test]
fn metrics_public_opens_metrics_only() {
    let daemon = Daemon::start(&[
        "--interval",
        "3600",
        "--set",
        "http.token=s3cret-token-0123",
        "--set",
        "http.metrics-public=true",
    ]);
    let url = |path| http_url(&daemon, "http", path);
    poll("a first snapshot", || Some(()).filter(|()| status(&url("/metrics"), &[]) == 200));
    assert_eq!(status(&url("/v1/metrics"), &[]), 401);
    assert_eq!(status(&url("/v1/metrics/stream"), &[]), 401);
}

#[test]
fn basic_auth_users_with_bcrypt_hashes() {
    let hash = bcrypt::hash("pa55word", 4).unwrap();
    let daemon =
        Daemon::start(&["--interval", "3600", "--set", &format!("http.users.alice={hash}")]);
    let url = http_url(&daemon, "http", "/v1/metrics");
    poll("a first snapshot", || {
        Some(()).filter(|()| status(&url, &["-u", "alice:pa55word"]) == 200)
    });
    assert_eq!(status(&url, &["-u", "alice:wrong"]), 401);
    assert_eq!(status(&url, &["-u", "bob:pa55word"]), 401);
    let (_, text) = curl(&url, &["-D", "-"]);
    assert!(
        text.to_ascii_lowercase().contains("www-authenticate: basic realm=\"pocketses\""),
        "{text}"
    );
    // `pocketses status` names the user and never shows the hash.
    let out = Command::new(env!("CARGO_BIN_EXE_pocketses"))
        .args(["status", "--json"])
        .env("POCKETSES_STATE_DIR", daemon.state_dir())
        .env("POCKETSES_SNAPD_SOCKET", daemon.state_dir().join("no-snapd.socket"))
        .output()
        .unwrap();
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(report.contains("\"http.users.alice\"") && report.contains("(hidden)"), "{report}");
    assert!(!report.contains(&hash), "the hash leaked: {report}");
}

#[test]
fn tls_works_with_the_right_ca_and_fails_with_a_wrong_one() {
    let pki = Pki::new();
    let (ca, cert, key) = pki.issue("server", &["localhost", "127.0.0.1"]);
    let (other_ca, _, _) = pki.issue("other", &["localhost"]);
    let daemon = Daemon::start(&[
        "--interval",
        "3600",
        "--set",
        &set("tls.cert", &cert),
        "--set",
        &set("tls.key", &key),
    ]);
    let url = http_url(&daemon, "https", "/v1/metrics");
    let right = ["--cacert", ca.to_str().unwrap()];
    poll("a first snapshot over TLS", || Some(()).filter(|()| status(&url, &right) == 200));
    let (code, _) = curl(&url, &["--cacert", other_ca.to_str().unwrap()]);
    assert_eq!(code, 60, "curl must refuse a certificate its CA did not sign");
    // Plain HTTP on a TLS port gets no answer.
    assert_eq!(status(&http_url(&daemon, "http", "/v1/metrics"), &[]), 0);

    // The stream over TLS.
    let mut reader = tls_connect(daemon.tcp, client_config(&ca, None)).unwrap();
    assert!(daemon_util::is_json_line(&read_line(&mut reader)));
    assert!(tls_connect(daemon.tcp, client_config(&other_ca, None)).is_err());
    let (_, text) = curl(&http_url(&daemon, "https", "/metrics"), &right);
    assert!(
        text.contains("pocketses_connections_refused_total{listener=\"tcp\",reason=\"tls\"}"),
        "{text}"
    );
}

#[test]
fn client_certificates_replace_the_token() {
    let pki = Pki::new();
    let (ca, cert, key) = pki.issue("server", &["localhost", "127.0.0.1"]);
    let (client_ca, client_cert, client_key) = pki.issue("client", &["client"]);
    let daemon = Daemon::start(&[
        "--interval",
        "3600",
        "--set",
        &set("tls.cert", &cert),
        "--set",
        &set("tls.key", &key),
        "--set",
        &set("tls.client-ca", &client_ca),
        "--set",
        "http.token=s3cret-token-0123",
    ]);
    let url = http_url(&daemon, "https", "/v1/metrics");
    let with_cert = [
        "--cacert",
        ca.to_str().unwrap(),
        "--cert",
        client_cert.to_str().unwrap(),
        "--key",
        client_key.to_str().unwrap(),
    ];
    poll("a first snapshot", || Some(()).filter(|()| status(&url, &with_cert) == 200));
    assert_eq!(status(&url, &["--cacert", ca.to_str().unwrap()]), 0, "no client certificate");
    // The stream: a verified certificate needs no AUTH line.
    let config = client_config(&ca, Some((&client_cert, &client_key)));
    let mut reader = tls_connect(daemon.tcp, config).unwrap();
    assert!(daemon_util::is_json_line(&read_line(&mut reader)));
}

#[test]
fn replaced_certificates_are_used_without_restart() {
    let pki = Pki::new();
    let (ca, cert, key) = pki.issue("first", &["localhost", "127.0.0.1"]);
    let live_cert = pki.path("live.pem");
    let live_key = pki.path("live.key");
    std::fs::copy(&cert, &live_cert).unwrap();
    std::fs::copy(&key, &live_key).unwrap();
    let daemon = Daemon::start(&[
        "--interval",
        "3600",
        "--set",
        &set("tls.cert", &live_cert),
        "--set",
        &set("tls.key", &live_key),
    ]);
    let url = http_url(&daemon, "https", "/v1/metrics");
    poll("a first snapshot", || {
        Some(()).filter(|()| status(&url, &["--cacert", ca.to_str().unwrap()]) == 200)
    });
    let (new_ca, new_cert, new_key) = pki.issue("second", &["localhost", "127.0.0.1"]);
    // Written aside and renamed in, key first, as certificate tools do.
    std::fs::copy(&new_key, pki.path("tmp.key")).unwrap();
    std::fs::rename(pki.path("tmp.key"), &live_key).unwrap();
    std::fs::copy(&new_cert, pki.path("tmp.pem")).unwrap();
    std::fs::rename(pki.path("tmp.pem"), &live_cert).unwrap();
    let new = ["--cacert", new_ca.to_str().unwrap()];
    poll("the new certificate in use", || Some(()).filter(|()| status(&url, &new) == 200));
    assert!(daemon.stderr().contains("TLS files reloaded"), "{}", daemon.stderr());
}

#[test]
fn the_start_log_says_when_a_listener_faces_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let stderr = dir.path().join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pocketses"))
        .args([
            "daemon",
            "--bind",
            "0.0.0.0",
            "--port",
            "0",
            "--http-port",
            "0",
            "--interval",
            "3600",
        ])
        .arg("--ready-file")
        .arg(&ready)
        .env("POCKETSES_SNAPD_SOCKET", dir.path().join("none"))
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    poll("the ready file", || std::fs::read_to_string(&ready).ok().filter(|t| t.ends_with('\n')));
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&stderr).unwrap();
    assert!(
        text.contains(
            "faces the network with neither TLS nor authentication: anyone who reaches it reads it"
        ),
        "{text}"
    );
}
