//! Our client against the real snapd (Debian's `snapd` package), started by hand for read-only calls.
//!
//! snapd runs without systemd here if told not to wait for socket activation
//! (`SNAPD_STANDBY_WAIT`); it seeds itself as a generic classic system. This test starts it as root,
//! checks system-info, the generic-classic model, snaps, changes and error kinds through
//! `pocketses::snapd::Client`, then stops it by its pid. It is the only test that touches
//! /run/snapd.socket, it is alone in this test binary, and it takes a lock file so that two test
//! runs on one machine do not start two snapds. It fails (never skips) when snapd is missing.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pocketses::snapd::socket::UnixTransport;
use pocketses::snapd::{ChangeSelect, Client};

const SNAPD: &str = "/usr/lib/snapd/snapd";
const SOCKET: &str = "/run/snapd.socket";
const LOCK: &str = "/run/lock/pocketses-real-snapd.lock";

/// Stops the snapd we started, by its pid, however the test ends.
struct Snapd(Option<Child>);

impl Drop for Snapd {
    fn drop(&mut self) {
        let Some(mut child) = self.0.take() else { return };
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

async fn until<T, F, Fut>(limit: Duration, mut f: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, pocketses::snapd::Error>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(err) if Instant::now() > deadline => return Err(err.to_string()),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_snapd_read_only_calls() {
    assert!(
        Path::new(SNAPD).exists(),
        "{SNAPD} is missing: install Debian's snapd package with .ci/install (it is listed in .ci/apt-packages)"
    );
    let uid = std::fs::metadata("/proc/self").expect("read /proc/self").uid();
    assert_eq!(uid, 0, "the real snapd test must run as root (snapd only starts as root)");
    std::fs::create_dir_all("/run/lock").expect("create /run/lock");
    let lock = File::create(LOCK).expect("create the lock file");
    lock.lock().expect("lock the real snapd test");

    let client =
        Client::new(Arc::new(UnixTransport::new(SOCKET))).with_timeout(Duration::from_secs(30));
    // A snapd already answering (a host that runs it under systemd) is used as it is.
    let _snapd = if client.system_info().await.is_ok() {
        eprintln!("a snapd already answers on {SOCKET}; using it");
        Snapd(None)
    } else {
        let log = tempfile::NamedTempFile::new().expect("log file");
        let child = Command::new(SNAPD)
            .env("SNAPD_STANDBY_WAIT", "1000h")
            .stdin(Stdio::null())
            .stdout(log.reopen().expect("log"))
            .stderr(log.reopen().expect("log"))
            .spawn()
            .expect("start snapd");
        Snapd(Some(child))
    };

    let info = until(Duration::from_secs(60), || client.system_info())
        .await
        .expect("snapd did not answer system-info");
    assert_eq!(info.series, "16");
    assert!(!info.version.is_empty());
    assert!(info.on_classic, "this host is classic: {info:?}");

    // The seed change makes the generic-classic model available.
    let model =
        until(Duration::from_secs(120), || client.model()).await.expect("no model assertion");
    assert!(model.starts_with("type: model\n"), "{model}");
    assert!(model.contains("\nmodel: generic-classic\n"), "{model}");
    let headers = client.model_headers(false).await.expect("model headers");
    assert_eq!(headers["brand-id"], "generic");
    assert_eq!(headers["classic"], "true");

    let snaps = client.snaps().await.expect("snaps");
    assert!(snaps.iter().all(|s| !s.name.is_empty() && !s.revision.is_empty()));
    let missing = client.snap("pocketses-not-installed").await.expect_err("no such snap");
    assert!(missing.is_kind("snap-not-found"), "{missing:?}");

    let changes = client.changes(ChangeSelect::All, None).await.expect("changes");
    assert!(changes.iter().any(|c| c.kind == "seed"), "no seed change in {changes:?}");
    let seed = changes.iter().find(|c| c.kind == "seed").expect("seed");
    let again = client.change(&seed.id).await.expect("one change");
    assert_eq!(again.id, seed.id);
    assert!(!again.tasks.is_empty());
    let nothing = client.change("999999").await.expect_err("no such change");
    assert_eq!(nothing.status(), Some(404));

    let conns = client.connections(None).await.expect("connections");
    assert!(conns.established.iter().all(|c| !c.interface.is_empty()));
    client.warnings(true).await.expect("warnings");
    let types = client
        .call(pocketses::snapd::Request::get("/v2/assertions"))
        .await
        .expect("assertion types");
    assert!(types.result["types"].as_array().is_some_and(|t| t.iter().any(|v| v == "model")));
    let none = client.assertions("serial", &[]).await.expect("serial assertions");
    assert!(none.count <= 1);
}
