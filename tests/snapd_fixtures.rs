//! Replies captured from Debian's snapd 2.57 (tests/fixtures/snapd/) decode into our types.

use pocketses::snapd::envelope::{self, Type};
use pocketses::snapd::{Change, Connections, Snap, Status, SystemInfo};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/snapd/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|err| panic!("cannot read {path}: {err}"))
}

#[test]
fn system_info_of_a_classic_host() {
    let env = envelope::decode(200, &fixture("system-info.json")).unwrap();
    assert_eq!(env.kind, Type::Sync);
    let info: SystemInfo = env.into_sync().unwrap();
    assert!(info.on_classic);
    assert_eq!(info.series, "16");
    assert_eq!(info.confinement, "partial");
    assert_eq!(info.os_release.id, "debian");
    assert!(info.version.starts_with("2.57"));
}

#[test]
fn seed_change_with_tasks() {
    let changes: Vec<Change> =
        envelope::decode(200, &fixture("changes-all.json")).unwrap().into_sync().unwrap();
    let seed = changes.iter().find(|c| c.kind == "seed").unwrap();
    assert_eq!(seed.status, Status::Done);
    assert!(seed.ready);
    assert!(seed.ready_time.is_some());
    assert_eq!(seed.tasks[1].kind, "mark-seeded");
    assert_eq!(seed.tasks[1].progress.done, 1);
}

#[test]
fn empty_lists() {
    let env = envelope::decode(200, &fixture("snaps.json")).unwrap();
    assert_eq!(env.sources, vec!["local"]);
    let snaps: Vec<Snap> = env.into_sync().unwrap();
    assert!(snaps.is_empty());
    let conns: Connections =
        envelope::decode(200, &fixture("connections.json")).unwrap().into_sync().unwrap();
    assert!(conns.established.is_empty() && conns.undesired.is_empty());
}

#[test]
fn error_kinds() {
    for (file, status, kind, message) in [
        ("serial-missing.json", 404, Some("assertion-not-found"), "no serial assertion yet"),
        ("snap-not-found.json", 404, Some("snap-not-found"), "snap not installed"),
        (
            "conf-not-installed.json",
            400,
            Some("option-not-found"),
            "snap \"pocketses\" has no \"interval\" configuration option",
        ),
        ("changes-bad-select.json", 400, None, "select should be one of: all,in-progress,ready"),
    ] {
        let err = envelope::decode(status, &fixture(file)).unwrap_err();
        assert_eq!(err.kind(), kind, "{file}");
        assert_eq!(err.status(), Some(status), "{file}");
        assert_eq!(err.to_string(), message, "{file}");
    }
}

#[test]
fn generic_classic_model_is_assertion_text() {
    let text = String::from_utf8(fixture("model.assertion")).unwrap();
    assert!(text.starts_with("type: model\nauthority-id: generic\n"));
    assert!(text.contains("\nmodel: generic-classic\nclassic: true\n"));
}

/// The remodel change a real snapd 2.57 ran for `pocketses remodel update.model` on the test
/// brand (tests/spread/remodel/update, docs/remodel.md), as `GET /v2/changes/{id}` gave it.
fn real_remodel() -> Change {
    envelope::decode(200, &fixture("remodel-update-done.json"))
        .expect("remodel-update-done.json is an envelope")
        .into_sync()
        .expect("remodel-update-done.json holds a change")
}

#[test]
fn real_update_remodel_change_decodes() {
    let change = real_remodel();
    assert_eq!((change.kind.as_str(), change.status), ("remodel", Status::Done));
    assert!(change.ready);
    assert_eq!(change.summary, "Refresh model assertion from revision 0 to 1");
    let kinds: Vec<&str> = change.tasks.iter().map(|t| t.kind.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"prerequisites"));
    assert_eq!(kinds.last(), Some(&"set-model"));
    assert!(kinds.contains(&"download-snap") && kinds.contains(&"validate-snap"));
    let download = change.tasks.iter().find(|t| t.kind == "download-snap").unwrap();
    // The one task that counts bytes: the snap's size.
    assert!(download.progress.total > 1, "{:?}", download.progress);
    assert!(change.tasks.iter().all(|t| t.status == Status::Done));
}

#[test]
fn the_view_shows_every_task_of_the_real_remodel() {
    use pocketses::remodel::view::{self, Outcome};
    let done = real_remodel();
    // The change as first seen (every task queued), then done: one line per task, then the end.
    let mut queued = done.clone();
    queued.status = Status::Do;
    queued.ready = false;
    for t in &mut queued.tasks {
        t.status = Status::Do;
    }
    let mut lines: Vec<String> =
        view::diff(None, &queued).iter().filter_map(view::render_line).collect();
    lines.extend(view::diff(Some(&queued), &done).iter().filter_map(view::render_line));
    assert_eq!(lines[0], format!("change {}: {} (Do)", done.id, done.summary));
    for task in &done.tasks {
        let want = format!("Done    {}", task.summary);
        assert!(lines.contains(&want), "no line {want:?} in {lines:#?}");
    }
    assert_eq!(lines.last().map(String::as_str), Some("Done    change is ready"));
    assert_eq!(lines.len(), done.tasks.len() + 2);
    assert_eq!(view::outcome(&done), Outcome::Done);
    assert_eq!(
        view::render_outcome(&done),
        format!("remodel done: {} (change {})\n", done.summary, done.id)
    );
}
