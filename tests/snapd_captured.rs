//! The fake snapd against replies captured from Debian's snapd 2.57 (tests/fixtures/snapd/):
//! it serves them byte for byte, our client and `pocketses status` read them through a real
//! socket, and the replies the fake builds itself in the captured host's state equal them.

mod support;

use std::process::Command;
use std::sync::Arc;

use pocketses::snapd::socket::UnixTransport;
use pocketses::snapd::{ChangeSelect, Client, Request};
use serde_json::Value;
use support::fake_snapd::{captured_replies, FakeSnapd, State};

fn client(fake: &FakeSnapd) -> Client {
    Client::new(Arc::new(UnixTransport::new(fake.snapd_socket())))
}

#[tokio::test]
async fn captured_replies_are_served_byte_for_byte() {
    let fake = FakeSnapd::start_captured();
    let client = client(&fake);
    let replies = captured_replies();
    assert_eq!(replies.len(), 9, "every fixture is in the index");
    for captured in replies {
        assert_eq!(captured.method, "GET", "only reads were captured");
        let res = client.send(Request::get(&captured.path)).await.unwrap();
        assert_eq!(res.status, captured.status, "{}", captured.file);
        assert_eq!(res.content_type.as_deref(), Some(captured.content_type.as_str()));
        assert_eq!(res.assertions_count, captured.assertions_count, "{}", captured.file);
        assert_eq!(res.body, captured.body, "{} is served as captured", captured.file);
    }
}

#[tokio::test]
async fn the_client_reads_real_snapd_replies() {
    let fake = FakeSnapd::start_captured();
    let client = client(&fake);

    let info = client.system_info().await.unwrap();
    assert!(info.on_classic);
    assert_eq!(info.version, "2.57.6-1+deb12u1+b2");
    assert_eq!((info.os_release.id.as_str(), info.confinement.as_str()), ("debian", "partial"));
    assert!(client.snaps().await.unwrap().is_empty());

    let missing = client.snap("pocketses").await.unwrap_err();
    assert!(missing.is_kind("snap-not-found"), "{missing:?}");
    assert_eq!(missing.to_string(), "snap not installed");
    let unset = client.get_conf("pocketses", &["interval"]).await.unwrap_err();
    assert!(unset.is_kind("option-not-found"), "{unset:?}");
    assert_eq!(unset.status(), Some(400));
    let serial = client.serial().await.unwrap_err();
    assert!(serial.is_kind("assertion-not-found"), "{serial:?}");

    let model = client.model().await.unwrap();
    assert!(model.starts_with("type: model\nauthority-id: generic\n"), "{model}");
    // Built by the fake from the captured model text.
    let headers = client.model_headers(false).await.unwrap();
    assert_eq!((&headers["brand-id"], &headers["classic"]), (&"generic".into(), &"true".into()));

    let changes = client.changes(ChangeSelect::All, None).await.unwrap();
    let seed = changes.iter().find(|c| c.kind == "seed").expect("the seed change");
    // Built by the fake from the captured change list.
    let again = client.change(&seed.id).await.unwrap();
    assert_eq!(again, *seed);
    assert_eq!(again.tasks[1].kind, "mark-seeded");
    let bad = client.call(Request::get("/v2/changes?select=bogus")).await.unwrap_err();
    assert_eq!(bad.to_string(), "select should be one of: all,in-progress,ready");
    assert_eq!(bad.kind(), None);

    let conns = client.connections(None).await.unwrap();
    assert!(conns.established.is_empty());
    assert!(!client.is_connected("pocketses", "snapd-control").await.unwrap());
}

/// What the fake builds from its state must be what snapd answered in the same state, so the
/// other tests, which use built replies, see snapd's shapes and words.
#[tokio::test]
async fn the_fakes_own_replies_equal_the_captured_ones() {
    let mut state = State::captured();
    state.captured.clear();
    let fake = FakeSnapd::start_with(state);
    let client = client(&fake);
    for captured in captured_replies() {
        let res = client.send(Request::get(&captured.path)).await.unwrap();
        let what = &captured.file;
        assert_eq!(res.status, captured.status, "{what}");
        assert_eq!(res.content_type.as_deref(), Some(captured.content_type.as_str()), "{what}");
        assert_eq!(res.assertions_count, captured.assertions_count, "{what}");
        if captured.content_type == "application/json" {
            // Key order is serde_json's, not Go's: compare the documents.
            let built: Value = serde_json::from_slice(&res.body).unwrap();
            let real: Value = serde_json::from_slice(&captured.body).unwrap();
            assert_eq!(built, real, "{what}");
        } else {
            assert_eq!(res.body, captured.body, "{what}");
        }
    }
}

#[test]
fn status_reads_a_real_snapd_s_replies() {
    let fake = FakeSnapd::start_captured();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(support::bin())
        .arg("status")
        .env_clear()
        .env("POCKETSES_SNAPD_SOCKET", fake.snapd_socket())
        .env("POCKETSES_CONTROL_SOCKET", dir.path().join("control.sock"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(
            "2.57.6-1+deb12u1+b2 (classic, partial confinement, system mode run; debian 12)"
        ),
        "{text}"
    );
    assert!(text.contains("generic/generic-classic"), "{text}");
    assert!(text.contains("device not registered yet"), "{text}");
    assert!(fake.requests().iter().any(|r| r.path == "/v2/system-info"));
}
