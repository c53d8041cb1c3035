//! The snapd client against the fake snapd over real unix sockets.

mod support;

use std::sync::Arc;
use std::time::Duration;

use pocketses::snapd::snapctl::Snapctl;
use pocketses::snapd::socket::UnixTransport;
use pocketses::snapd::{ChangeSelect, Client, Status};
use serde_json::json;
use support::fake_snapd::{ErrorReply, FakeSnapd, Step, COOKIE};

fn client(fake: &FakeSnapd) -> Client {
    Client::new(Arc::new(UnixTransport::new(fake.snapd_socket())))
        .with_timeout(Duration::from_secs(10))
}

fn snapctl(fake: &FakeSnapd) -> Snapctl {
    let client = Client::new(Arc::new(UnixTransport::new(fake.snapctl_socket())));
    Snapctl::new(client, COOKIE)
}

#[tokio::test]
async fn reads_system_snaps_model_and_connections() {
    let fake = FakeSnapd::start();
    let client = client(&fake);
    let info = client.system_info().await.unwrap();
    assert_eq!(info.version, "2.65-fake");
    assert!(!info.on_classic);
    let snaps = client.snaps().await.unwrap();
    assert_eq!(snaps[0].name, "pocketses");
    assert_eq!(client.snap("pocketses").await.unwrap().revision, "x1");
    let err = client.snap("nope").await.unwrap_err();
    assert!(err.is_kind("snap-not-found"), "{err:?}");
    assert!(client.model().await.unwrap().starts_with("type: model\n"));
    let headers = client.model_headers(false).await.unwrap();
    assert_eq!(headers["model"], "pocketses-pc");
    assert!(client.serial().await.unwrap_err().is_kind("assertion-not-found"));
    assert!(!client.is_connected("pocketses", "snapd-control").await.unwrap());
    fake.connect("snapd-control", true);
    assert!(client.is_connected("pocketses", "snapd-control").await.unwrap());
    let none = client.assertions("snap-declaration", &[("snap-name", "pocketses")]).await.unwrap();
    assert_eq!(none.count, 0);
    assert!(client.warnings(true).await.unwrap().is_empty());
    let rec = fake.requests();
    assert!(rec.iter().any(|r| r.path == "/v2/assertions/snap-declaration?snap-name=pocketses"));
}

#[tokio::test]
async fn conf_round_trip_with_dotted_keys_and_unset() {
    let fake = FakeSnapd::start();
    let client = client(&fake);
    let mut patch = serde_json::Map::new();
    patch.insert("http.port".into(), json!(9000));
    patch.insert("interval".into(), json!(5));
    let change = client.set_conf("pocketses", &patch).await.unwrap();
    assert_eq!(client.change(&change).await.unwrap().kind, "configure-snap");
    assert_eq!(fake.conf(), json!({"http": {"port": 9000}, "interval": 5}));
    assert_eq!(
        client.get_conf("pocketses", &["http.port"]).await.unwrap(),
        json!({"http.port": 9000})
    );
    let mut unset = serde_json::Map::new();
    unset.insert("http.port".into(), serde_json::Value::Null);
    client.set_conf("pocketses", &unset).await.unwrap();
    let err = client.get_conf("pocketses", &["http.port"]).await.unwrap_err();
    assert!(err.is_kind("option-not-found"), "{err:?}");
    assert_eq!(
        client.get_conf("pocketses", &[]).await.unwrap(),
        json!({"http": {}, "interval": 5})
    );
}

#[tokio::test]
async fn scripted_change_steps_and_restart() {
    let fake = FakeSnapd::start();
    let client = client(&fake);
    let id = fake.add_change(vec![
        Step::State(json!({"kind": "remodel", "status": "Doing", "ready": false,
            "tasks": [{"id": "1", "kind": "download-snap", "summary": "Download", "status": "Doing", "progress": {"label": "pc", "done": 5, "total": 10}}]})),
        Step::Gone(Duration::from_millis(200)),
        Step::State(json!({"kind": "remodel", "status": "Done", "ready": true})),
    ]);
    let first = client.change(&id).await.unwrap();
    assert_eq!(first.status, Status::Doing);
    assert_eq!(first.tasks[0].progress.done, 5);
    let gone = client.change(&id).await.unwrap_err();
    assert!(gone.is_retryable(), "{gone:?}");
    // Poll through the restart with backoff, as the daemon and the remodel driver do.
    let mut attempt = 0;
    let done = loop {
        match client.change(&id).await {
            Ok(change) => break change,
            Err(err) if err.is_retryable() && attempt < 50 => {
                tokio::time::sleep(pocketses::snapd::backoff(attempt.min(2))).await;
                attempt += 1;
            }
            Err(err) => panic!("{err:?}"),
        }
    };
    assert_eq!(done.status, Status::Done);
    assert!(done.ready);
    let listed = client.changes(ChangeSelect::Ready, None).await.unwrap();
    assert_eq!(listed.len(), 1);
}

#[tokio::test]
async fn forced_errors_keep_kind_and_abort_works() {
    let fake = FakeSnapd::start();
    let client = client(&fake);
    let mut reply = ErrorReply::new(
        409,
        Some("snap-change-conflict"),
        "snap \"pocketses\" has \"refresh\" change in progress",
    );
    reply.value = Some(json!({"snap-name": "pocketses", "change-kind": "refresh"}));
    fake.fail("PUT", "/v2/snaps/pocketses/conf", reply);
    let err = client.set_conf("pocketses", &serde_json::Map::new()).await.unwrap_err();
    assert!(err.is_kind("snap-change-conflict"));
    assert_eq!(err.status(), Some(409));
    fake.clear_failures();
    let id = fake.add_change(vec![Step::State(
        json!({"kind": "remodel", "status": "Doing", "ready": false}),
    )]);
    assert_eq!(client.abort_change(&id).await.unwrap().status, Status::Abort);
    let change_id = client.post_model("type: model\n", true).await.unwrap();
    assert_eq!(client.change(&change_id).await.unwrap().kind, "remodel");
    let form_id = client.post_model_multipart("type: model\n", &[], &[]).await.unwrap();
    assert_ne!(form_id, change_id);
    let posted = fake
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v2/model" && r.method == "POST")
        .collect::<Vec<_>>();
    assert_eq!(posted[0].json(), json!({"new-model": "type: model\n", "offline": true}));
    assert!(posted[1]
        .content_type
        .as_deref()
        .unwrap()
        .starts_with("multipart/form-data; boundary="));
}

#[tokio::test]
async fn unreachable_socket_is_a_connect_error() {
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new(Arc::new(UnixTransport::new(dir.path().join("none.socket"))));
    let err = client.system_info().await.unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
}

#[tokio::test]
async fn snapctl_get_set_unset_and_exit_codes() {
    let fake = FakeSnapd::start();
    let ctl = snapctl(&fake);
    ctl.set(&[("interval".into(), json!(30)), ("publish.format".into(), json!("legacy"))])
        .await
        .unwrap();
    assert_eq!(fake.conf(), json!({"interval": 30, "publish": {"format": "legacy"}}));
    let doc = ctl.get(&["interval", "publish", "port"]).await.unwrap();
    assert_eq!(
        serde_json::Value::Object(doc),
        json!({"interval": 30, "publish": {"format": "legacy"}})
    );
    ctl.unset(&["publish.format"]).await.unwrap();
    assert_eq!(fake.conf(), json!({"interval": 30, "publish": {}}));
    assert!(!ctl.is_connected("snapd-control").await.unwrap());
    fake.connect("snapd-control", true);
    assert!(ctl.is_connected("snapd-control").await.unwrap());
    assert_eq!(ctl.system_mode().await.unwrap(), "run");
    assert!(ctl.model().await.unwrap().contains("model: pocketses-pc"));
    assert!(ctl.services().await.unwrap().contains("pocketses.daemon"));
    ctl.set_health("okay", None, None).await.unwrap();
    assert_eq!(fake.state().health, Some(vec!["okay".to_string()]));
    // Errors other than "unsuccessful" print `error: …` and exit 1, like snapctl.
    let out = ctl.run(&["get".to_string()]).await.unwrap();
    assert_eq!(out.exit_code, 1);
    assert_eq!(out.stderr, "error: error running snapctl: get which option?\n");
    let bad =
        Snapctl::new(Client::new(Arc::new(UnixTransport::new(fake.snapctl_socket()))), "wrong");
    let out = bad.run(&["get".to_string(), "interval".to_string()]).await.unwrap();
    assert_eq!(out.exit_code, 1);
    assert!(out.stderr.contains("from outside of a snap"), "{}", out.stderr);
}

/// A change is followed with the one poller the product uses (`remodel::drive::follow`): progress
/// is seen, a snapd restart is waited out and said once, and the ready change is returned.
#[tokio::test]
async fn follow_sees_progress_through_a_restart() {
    use pocketses::remodel::view::RemodelEvent;
    let fake = FakeSnapd::start();
    let client = client(&fake);
    let doing = |done: u64| {
        Step::State(json!({"kind": "remodel", "status": "Doing", "ready": false,
            "tasks": [{"id": "1", "kind": "download-snap", "summary": "Download", "status": "Doing",
                "progress": {"label": "pc", "done": done, "total": 10}}]}))
    };
    let id = fake.add_change(vec![
        doing(1),
        doing(5),
        Step::Gone(Duration::from_millis(300)),
        Step::State(json!({"kind": "remodel", "status": "Error", "ready": true,
            "err": "cannot perform the following tasks:\n- Set new model assertion (boom)",
            "tasks": [{"id": "1", "kind": "set-model", "summary": "Set new model assertion", "status": "Error",
                "log": ["2024-08-09T12:00:00Z ERROR boom"]}]})),
    ]);
    let mut seen = Vec::new();
    let mut events = Vec::new();
    let mut emit = |event: &RemodelEvent, change: &pocketses::snapd::Change| {
        seen.push(change.tasks.first().map(|t| t.progress.done).unwrap_or_default());
        events.push(event.clone());
    };
    let change =
        pocketses::remodel::drive::follow(&client, &id, Duration::from_millis(10), &mut emit)
            .await
            .unwrap();
    assert_eq!(change.status, Status::Error);
    assert!(change.err.as_deref().unwrap().contains("(boom)"));
    assert_eq!(change.tasks[0].log, vec!["2024-08-09T12:00:00Z ERROR boom"]);
    assert_eq!(&seen[..2], &[1, 1], "attached, then progress at 1");
    assert!(seen.contains(&5), "{seen:?}");
    let waits = events.iter().filter(|e| matches!(e, RemodelEvent::Waiting { .. })).count();
    let resumed = events.iter().filter(|e| matches!(e, RemodelEvent::Resumed { .. })).count();
    assert_eq!((waits, resumed), (1, 1), "{events:?}");
    // snapd's API errors end the poll at once.
    let missing = pocketses::remodel::drive::follow(
        &client,
        "999",
        Duration::from_millis(10),
        &mut |_, _| {},
    )
    .await
    .unwrap_err();
    assert!(missing.is_not_found(), "{missing:?}");
}
