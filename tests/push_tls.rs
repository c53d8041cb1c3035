//! A push sink over https to a real TLS store: VictoriaMetrics with `-tls` and a certificate
//! made here with openssl (a CA and a server certificate for 127.0.0.1). With `push.NAME.ca`
//! naming the CA the points arrive, even when the CA file appears only after the daemon started
//! (a sink whose start failed is started again); without it the push fails with a certificate
//! error, said in `spool status`, and keeps its data.
//!
//! Needs `openssl` and VictoriaMetrics (`.ci/install.d/stores.sh`); without them it fails under
//! CI (`POCKETSES_CI`) and is skipped elsewhere, saying so.

#![allow(clippy::unwrap_used)]

mod daemon_util;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use daemon_util::kept::Kept;
use daemon_util::poll;

/// The VictoriaMetrics binary, or `None` (a failure under CI).
fn victoria_metrics() -> Option<PathBuf> {
    let path =
        std::env::var_os("POCKETSES_VICTORIA_METRICS").map(PathBuf::from).unwrap_or_else(|| {
            "/var/cache/pocketses-ci/victoria-metrics/usr/bin/victoria-metrics".into()
        });
    let openssl = Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success());
    if path.is_file() && openssl {
        return Some(path);
    }
    let why = format!("need {} and openssl", path.display());
    assert!(!support::stores::in_ci(), "{why}");
    eprintln!("push_tls: SKIPPED, nothing checked: {why}; CI (POCKETSES_CI=1) fails instead");
    None
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// `ca.pem`, and `cert.pem` + `key.pem` for 127.0.0.1 signed by it.
fn certificates(dir: &Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=pocketses test CA",
    ]);
    openssl(dir, &ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend(["-keyout", "key.pem", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

/// VictoriaMetrics serving https only, killed on drop.
struct TlsStore {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl TlsStore {
    fn start(binary: &Path, dir: &Path) -> TlsStore {
        let port = daemon_util::free_port();
        let log = std::fs::File::create(dir.join("store.log")).unwrap();
        let child = Command::new(binary)
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!("-storageDataPath={}", dir.join("data").display()))
            .args(["-search.latencyOffset=0s", "-dedup.minScrapeInterval=1ms", "-tls"])
            .arg(format!("-tlsCertFile={}", dir.join("cert.pem").display()))
            .arg(format!("-tlsKeyFile={}", dir.join("key.pem").display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let store = TlsStore { child, port, dir: dir.to_path_buf() };
        poll("VictoriaMetrics over TLS", || (store.curl("/health") == "OK").then_some(()));
        store
    }

    /// GET `path` with curl, trusting the test CA (as a user would check the store).
    fn curl(&self, path: &str) -> String {
        let out = Command::new("curl")
            .args(["-sS", "-g", "--cacert"])
            .arg(self.dir.join("ca.pem"))
            .arg(format!("https://127.0.0.1:{}{path}", self.port))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Samples of `mem_total` with `db="DB"`, flushed first.
    fn samples(&self, db: &str) -> usize {
        let _ = self.curl("/internal/force_flush");
        let text =
            self.curl(&format!("/api/v1/export?match[]={{__name__=\"mem_total\",db=\"{db}\"}}"));
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| v["timestamps"].as_array().map_or(0, Vec::len))
            .sum()
    }
}

impl Drop for TlsStore {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn https_with_the_stores_ca_delivers_and_without_it_keeps_the_data() {
    let Some(binary) = victoria_metrics() else { return };
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path());
    let store = TlsStore::start(&binary, certs.path());
    let url = |db: &str| format!("push.vm.url=https://127.0.0.1:{}/write?db={db}", store.port);

    // The CA file is missing when the daemon starts: the sink fails to start, says why, and is
    // started again once the file is there.
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("store-ca.pem");
    let ca_key = format!("push.vm.ca={}", ca.display());
    let good_url = url("good");
    let daemon = Kept::start(
        dir.path(),
        &["--set", &good_url, "--set", "push.vm.format=influx", "--set", &ca_key],
    );
    poll("the failed start in the log", || {
        daemon.stderr().contains("cannot start push sink vm: cannot read CA file").then_some(())
    });
    std::fs::copy(certs.path().join("ca.pem"), &ca).unwrap();
    poll("points over https", || (store.samples("good") >= 2).then_some(()));
    let log = daemon.stderr();
    assert!(log.contains("push sink starts after all"), "{log}");
    assert_eq!(log.matches("cannot read CA file").count(), 1, "said once: {log}");

    // Without the CA: the system's roots do not know the test CA; a certificate error, kept data.
    let other = tempfile::tempdir().unwrap();
    let bad_url = url("bad");
    let untrusting =
        Kept::start(other.path(), &["--set", &bad_url, "--set", "push.vm.format=influx"]);
    let status = poll("a certificate error", || {
        let status = untrusting.spool_status();
        let live = &status["spools"][0]["live"];
        let err = live["last-error"].as_str().unwrap_or_default().to_string();
        (err.contains("certificate") && status["spools"][0]["pending-records"].as_u64() >= Some(2))
            .then_some(status)
    });
    let err = status["spools"][0]["live"]["last-error"].as_str().unwrap().to_string();
    assert!(
        err.starts_with(&format!("cannot send to https://127.0.0.1:{}/write", store.port)),
        "{err}"
    );
    assert!(err.to_lowercase().contains("unknownissuer") || err.contains("issuer"), "{err}");
    assert_eq!(status["spools"][0]["live"]["state"], "failing", "{status}");
    assert_eq!(store.samples("bad"), 0);
}
