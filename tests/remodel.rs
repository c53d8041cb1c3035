//! `pocketses remodel` against the fake snapd: pre-flight refusals never post, scripted changes
//! are followed to their end (Done, Error, Undone, across a snapd restart), snapd's refusals
//! keep their kind, `--watch`, `--abort`, Ctrl-C detaching and the daemon's event stream.
//! The `recorded_*` tests replay the changes a real snapd 2.57 ran for the remodel spread tasks
//! (tests/spread/remodel/, recorded into tests/fixtures/snapd/remodel-*.json): the progress view,
//! the `--json` events and `status` must fit what the real change looked like.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::fake_snapd::{recorded_change, recorded_error, replay, ErrorReply, FakeSnapd, Step};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("fixture")
}

/// A fake device: registered, seeded, running `current.model`.
fn device() -> FakeSnapd {
    let fake = FakeSnapd::start();
    {
        let mut state = fake.state();
        state.model = Some(read(&fixture("remodel/current.model")));
        state.serial = Some("type: serial\nauthority-id: pocketses-brand\nbrand-id: pocketses-brand\nmodel: pocketses-pc\nserial: 42\ndevice-key-sha3-384: x\ntimestamp: 2024-01-05T09:00:00Z\nsign-key-sha3-384: y\n\nAAAA\n".to_string());
    }
    fake
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn command(fake: &FakeSnapd, state_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(support::bin());
    cmd.arg("remodel").arg("--poll-ms").arg("5").args(args);
    cmd.env("POCKETSES_SNAPD_SOCKET", fake.snapd_socket()).env("POCKETSES_STATE_DIR", state_dir);
    cmd.env_remove("SNAP_DATA");
    cmd
}

fn run(fake: &FakeSnapd, state_dir: &Path, args: &[&str]) -> Run {
    let out: Output = command(fake, state_dir, args).output().expect("run pocketses");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn model_posts(fake: &FakeSnapd) -> usize {
    fake.requests().iter().filter(|r| r.method == "POST" && r.path == "/v2/model").count()
}

fn change(status: &str, ready: bool, tasks: Value) -> Step {
    Step::State(json!({
        "kind": "remodel", "summary": "Refresh model assertion from revision 1 to 2",
        "status": status, "ready": ready, "tasks": tasks
    }))
}

fn task(id: &str, kind: &str, summary: &str, status: &str, done: u64, total: u64) -> Value {
    json!({"id": id, "kind": kind, "summary": summary, "status": status,
           "progress": {"label": "", "done": done, "total": total}, "spawn-time": "2024-01-05T09:04:00Z"})
}

const DL: &str = "Download snap \"pocketses\" (12) from channel \"latest/stable\"";
const SET: &str = "Set new model assertion";

fn happy_script() -> Vec<Step> {
    vec![
        change(
            "Do",
            false,
            json!([
                task("1", "download-snap", DL, "Do", 0, 1),
                task("2", "set-model", SET, "Do", 0, 1)
            ]),
        ),
        change(
            "Doing",
            false,
            json!([
                task("1", "download-snap", DL, "Doing", 1_048_576, 4_194_304),
                task("2", "set-model", SET, "Do", 0, 1)
            ]),
        ),
        change(
            "Doing",
            false,
            json!([
                task("1", "download-snap", DL, "Done", 4_194_304, 4_194_304),
                task("2", "set-model", SET, "Doing", 0, 1)
            ]),
        ),
        change(
            "Done",
            true,
            json!([
                task("1", "download-snap", DL, "Done", 4_194_304, 4_194_304),
                task("2", "set-model", SET, "Done", 1, 1)
            ]),
        ),
    ]
}

#[test]
fn check_prints_the_plan_and_never_posts() {
    let fake = device();
    let state = tempfile::tempdir().expect("tempdir");
    let model = fixture("remodel/rev2.model");
    let res = run(&fake, state.path(), &["--check", model.to_str().expect("utf8")]);
    assert_eq!(res.code, 0, "{}{}", res.stdout, res.stderr);
    assert!(res.stdout.contains("remodel: update (same brand, model and store)"), "{}", res.stdout);
    assert!(
        res.stdout.contains("change summary: Refresh model assertion from revision 1 to 2"),
        "{}",
        res.stdout
    );
    assert!(res.stdout.contains("add pocketses (required, from latest/stable)"), "{}", res.stdout);
    assert!(res.stdout.contains("gadget layout: not checked"), "{}", res.stdout);
    assert_eq!(model_posts(&fake), 0);
    assert!(!state.path().join("remodel.json").exists());
}

#[test]
fn refused_preflight_never_posts() {
    let fake = device();
    let state = tempfile::tempdir().expect("tempdir");
    for (model, want) in [
        ("remodel/arm64.model", "cannot remodel device: cannot remodel to different architectures yet"),
        ("remodel/arm64.model", "cannot remodel device: cannot remodel from grade signed to grade dangerous"),
        (
            "remodel/older.model",
            "cannot remodel device: cannot remodel to older revision 0 of model pocketses-brand/pocketses-pc than last revision 1 known to the device",
        ),
    ] {
        let res = run(&fake, state.path(), &[fixture(model).to_str().expect("utf8")]);
        assert_eq!(res.code, 1, "{model}: {}{}", res.stdout, res.stderr);
        assert!(res.stdout.contains(want), "{model}: {}", res.stdout);
        assert!(res.stdout.contains("nothing was sent to snapd"), "{}", res.stdout);
    }
    fake.state().serial = None;
    let res = run(&fake, state.path(), &[fixture("remodel/rev2.model").to_str().expect("utf8")]);
    assert_eq!(res.code, 1);
    assert!(
        res.stdout.contains("cannot remodel device: cannot remodel without a serial"),
        "{}",
        res.stdout
    );
    assert_eq!(model_posts(&fake), 0, "a refused pre-flight must never post");
}

/// `model diff` and `remodel --check` describe one change with the same lines: the kind, what
/// changes and every refusal the models alone decide; both exit 1 when snapd would refuse.
#[test]
fn model_diff_and_check_say_the_same() {
    let fake = device();
    let state = tempfile::tempdir().expect("tempdir");
    for (model, refused) in [("remodel/arm64.model", true), ("remodel/rev2.model", false)] {
        let check = run(&fake, state.path(), &["--check", fixture(model).to_str().expect("utf8")]);
        let diff = Command::new(support::bin())
            .args(["model", "diff"])
            .arg(fixture("remodel/current.model"))
            .arg(fixture(model))
            .output()
            .expect("run pocketses");
        let diff_out = String::from_utf8_lossy(&diff.stdout).into_owned();
        assert_eq!(diff.status.code(), Some(check.code), "{model}: {diff_out}\n{}", check.stdout);
        assert_eq!(check.code, if refused { 1 } else { 0 }, "{model}: {}", check.stdout);
        let shared: Vec<&str> = diff_out
            .lines()
            .filter(|l| l.starts_with("remodel: ") || l.starts_with("  - ") || l.starts_with("- "))
            .collect();
        assert!(!shared.is_empty(), "{diff_out}");
        for line in &shared {
            if refused && (line.starts_with("remodel: ") || line.starts_with("  - ")) {
                // A refused pre-flight prints no plan; its refusals are what it shares.
                continue;
            }
            assert!(
                check.stdout.lines().any(|l| l == *line),
                "{model}: {line:?} not in\n{}",
                check.stdout
            );
        }
        if refused {
            assert!(
                diff_out.contains("- cannot remodel device: cannot remodel to different architectures yet (at once)"),
                "{diff_out}"
            );
        }
    }
}

/// An unsigned model (the JSON input of `model sign`) is said to be unsigned, with how to sign it.
#[test]
fn an_unsigned_model_is_said_to_be_unsigned() {
    let fake = device();
    let state = tempfile::tempdir().expect("tempdir");
    let input = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assertions/uc22-amd64.json");
    let res = run(&fake, state.path(), &["--check", input.to_str().expect("utf8")]);
    assert_eq!(res.code, 1, "{}{}", res.stdout, res.stderr);
    let want = format!(
        "error: cannot read model assertion: {} is not signed (it is a JSON input for `pocketses model sign`); sign it with `pocketses model sign --key KEY {} > signed.model`",
        input.display(),
        input.display()
    );
    assert!(res.stderr.starts_with(&want), "{}", res.stderr);
    assert!(!res.stderr.contains("separator"), "{}", res.stderr);
    assert_eq!(model_posts(&fake), 0);
}

/// `pocketses status` reads the record where `pocketses remodel` wrote it (`POCKETSES_STATE_DIR`
/// wins over `SNAP_DATA`), through the record's own type, and shows the change's live status.
#[test]
fn status_reads_the_record_the_remodel_wrote() {
    let fake = device();
    let state = tempfile::tempdir().expect("tempdir");
    let res = run(&fake, state.path(), &[fixture("remodel/rev2.model").to_str().expect("utf8")]);
    assert_eq!(res.code, 0, "{}{}", res.stdout, res.stderr);
    let status = |json: bool| {
        let mut cmd = Command::new(support::bin());
        cmd.arg("status").env("POCKETSES_SNAPD_SOCKET", fake.snapd_socket());
        cmd.env("POCKETSES_STATE_DIR", state.path()).env_remove("SNAP_DATA");
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().expect("run pocketses");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let value: Value = serde_json::from_str(&status(true)).expect("JSON");
    assert_eq!(value["remodel"]["status"], "Done", "{value}");
    assert_eq!(value["remodel"]["target"], "pocketses-brand/pocketses-pc rev 2", "{value}");
    assert_eq!(value["remodel"]["ready"], true, "{value}");
    assert!(status(false).contains("remodel:     change 1 Done"), "{}", status(false));
    // A record that does not parse is said, not hidden.
    std::fs::write(state.path().join("remodel.json"), "{").expect("write");
    let value: Value = serde_json::from_str(&status(true)).expect("JSON");
    assert!(value["remodel-error"].as_str().unwrap_or("").starts_with("cannot parse "), "{value}");
}

#[test]
fn incompatible_gadget_is_refused_before_anything_is_downloaded() {
    let fake = device();
    let state = tempfile::tempdir().expect("tempdir");
    let args = [
        "--gadget".to_string(),
        fixture("gadget/pc-22-size-only.yaml").to_str().expect("utf8").to_string(),
        "--current-gadget".to_string(),
        fixture("gadget/pc-20.yaml").to_str().expect("utf8").to_string(),
        "--json".to_string(),
        fixture("remodel/rev2.model").to_str().expect("utf8").to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let res = run(&fake, state.path(), &args);
    assert_eq!(res.code, 1, "{}{}", res.stdout, res.stderr);
    let value: Value = serde_json::from_str(res.stdout.trim()).expect("one JSON line");
    assert_eq!(value["type"], "refused");
    assert_eq!(value["refusals"][0]["stage"], "change");
    assert_eq!(
        value["refusals"][0]["snapd"],
        "cannot remodel to an incompatible gadget: incompatible layout change: incompatible structure #4 (\"ubuntu-save\") change: new valid structure size range [33554432, 33554432] is not compatible with current ([16777216, 16777216])"
    );
    assert!(
        value["refusals"][0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("give \"ubuntu-save\" `min-size: 16M` and `size: 32M`"),
        "{value}"
    );
    assert_eq!(model_posts(&fake), 0);
}

#[test]
fn do_doing_done_is_followed_to_the_end_and_recorded() {
    let fake = device();
    fake.state().remodel_script = Some(happy_script());
    let state = tempfile::tempdir().expect("tempdir");
    let model = fixture("remodel/rev2.model");
    let res = run(&fake, state.path(), &[model.to_str().expect("utf8")]);
    assert_eq!(res.code, 0, "{}{}", res.stdout, res.stderr);
    for want in [
        "change 1: Refresh model assertion from revision 1 to 2 (Do)",
        &format!("Doing   {DL}"),
        &format!("Done    {DL}"),
        &format!("Doing   {SET}"),
        &format!("Done    {SET}"),
        "remodel done: Refresh model assertion from revision 1 to 2 (change 1)",
    ] {
        assert!(res.stdout.contains(want), "missing {want:?} in:\n{}", res.stdout);
    }
    let post = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path == "/v2/model")
        .expect("posted");
    assert_eq!(post.json()["new-model"].as_str(), Some(read(&model).as_str()));
    let record: Value = serde_json::from_str(
        &std::fs::read_to_string(state.path().join("remodel.json")).expect("record"),
    )
    .expect("json");
    assert_eq!(record["change"], "1");
    assert_eq!(record["status"], "Done");
    assert_eq!(record["ready"], true);
    assert_eq!(record["target"], "pocketses-brand/pocketses-pc rev 2");
}

#[test]
fn error_shows_task_logs_and_snapds_error() {
    let fake = device();
    let log = "2024-01-05T09:09:54Z ERROR cannot remodel to an incompatible gadget: incompatible layout change: incompatible structure #4 (\"ubuntu-save\") change: new valid structure size range [33554432, 33554432] is not compatible with current ([16777216, 16777216])";
    let mut failed = task("3", "mount-snap", "Mount snap \"pc\" (146)", "Error", 1, 1);
    failed["log"] = json!([log]);
    let Step::State(mut last) = change(
        "Error",
        true,
        json!([task("1", "download-snap", DL, "Undone", 1, 1), failed.clone()]),
    ) else {
        unreachable!()
    };
    last["err"] = json!("cannot perform the following tasks:\n- Mount snap \"pc\" (146) (cannot remodel to an incompatible gadget: …)");
    fake.state().remodel_script = Some(vec![
        change("Doing", false, json!([task("1", "download-snap", DL, "Doing", 0, 1)])),
        Step::State(last),
    ]);
    let state = tempfile::tempdir().expect("tempdir");
    let res = run(&fake, state.path(), &[fixture("remodel/rev2.model").to_str().expect("utf8")]);
    assert_eq!(res.code, 1, "{}{}", res.stdout, res.stderr);
    assert!(res.stdout.contains("remodel failed: change 1 is Error"), "{}", res.stdout);
    assert!(res.stdout.contains("  cannot perform the following tasks:"), "{}", res.stdout);
    assert!(
        res.stdout.contains("failed task 3 (mount-snap): Mount snap \"pc\" (146)"),
        "{}",
        res.stdout
    );
    assert!(res.stdout.contains(log), "{}", res.stdout);
}

#[test]
fn undone_explains_nothing_changed() {
    let fake = device();
    fake.state().remodel_script = Some(vec![
        change(
            "Doing",
            false,
            json!([task("1", "prepare-remodeling", "Prepare remodeling", "Doing", 0, 1)]),
        ),
        change(
            "Undone",
            true,
            json!([task("1", "prepare-remodeling", "Prepare remodeling", "Undone", 1, 1)]),
        ),
    ]);
    let state = tempfile::tempdir().expect("tempdir");
    let res = run(&fake, state.path(), &[fixture("remodel/rev2.model").to_str().expect("utf8")]);
    assert_eq!(res.code, 1);
    assert!(
        res.stdout.contains(
            "remodel undone: snapd reverted every step, the device still runs its previous model"
        ),
        "{}",
        res.stdout
    );
}

#[test]
fn snapd_restart_during_the_change_is_waited_out() {
    let fake = device();
    let mut script = happy_script();
    script.insert(2, Step::Gone(Duration::from_millis(300)));
    fake.state().remodel_script = Some(script);
    let state = tempfile::tempdir().expect("tempdir");
    let res = run(&fake, state.path(), &[fixture("remodel/rev2.model").to_str().expect("utf8")]);
    assert_eq!(res.code, 0, "{}{}", res.stdout, res.stderr);
    assert!(res.stdout.contains("snapd is not answering ("), "{}", res.stdout);
    assert!(res.stdout.contains("snapd is back"), "{}", res.stdout);
    assert!(res.stdout.contains("remodel done"), "{}", res.stdout);
}

#[test]
fn refused_post_keeps_snapds_message_and_kind() {
    let fake = device();
    let state = tempfile::tempdir().expect("tempdir");
    let model = fixture("remodel/rev2.model");
    fake.fail(
        "POST",
        "/v2/model",
        ErrorReply::new(400, None, "cannot remodel device: cannot remodel until fully seeded"),
    );
    let res = run(&fake, state.path(), &[model.to_str().expect("utf8")]);
    assert_eq!(res.code, 1);
    assert!(
        res.stderr.contains("error: cannot remodel device: cannot remodel until fully seeded"),
        "{}",
        res.stderr
    );
    fake.clear_failures();
    fake.fail(
        "POST",
        "/v2/model",
        ErrorReply::new(409, Some("snap-change-conflict"), "cannot remodel device: remodeling in progress, no other changes allowed until this is done"),
    );
    let res = run(&fake, state.path(), &[model.to_str().expect("utf8")]);
    assert_eq!(res.code, 1);
    assert!(res.stderr.contains("remodeling in progress, no other changes allowed until this is done [snap-change-conflict]"), "{}", res.stderr);
    assert!(!state.path().join("remodel.json").exists(), "nothing to record when snapd refuses");
}

#[test]
fn json_mode_prints_one_event_per_line() {
    let fake = device();
    fake.state().remodel_script = Some(happy_script());
    let state = tempfile::tempdir().expect("tempdir");
    let res = run(
        &fake,
        state.path(),
        &["--json", fixture("remodel/rev2.model").to_str().expect("utf8")],
    );
    assert_eq!(res.code, 0, "{}{}", res.stdout, res.stderr);
    let events: Vec<Value> =
        res.stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert!(events.iter().all(|e| e["event"] == "remodel"));
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap_or("")).collect();
    assert_eq!(types.first(), Some(&"plan"));
    assert!(types.contains(&"progress"), "{types:?}");
    assert_eq!(
        events.last().map(|e| (e["type"].clone(), e["status"].clone())),
        Some((json!("finished"), json!("Done")))
    );
}

#[test]
fn watch_and_abort_an_existing_change() {
    let fake = device();
    let state = tempfile::tempdir().expect("tempdir");
    let id = fake.add_change(happy_script());
    let res = run(&fake, state.path(), &["--watch", &id]);
    assert_eq!(res.code, 0, "{}{}", res.stdout, res.stderr);
    assert!(res.stdout.contains("remodel done"), "{}", res.stdout);

    let running = fake.add_change(vec![change(
        "Doing",
        false,
        json!([task("1", "download-snap", DL, "Doing", 0, 1)]),
    )]);
    let res = run(&fake, state.path(), &["--abort", &running]);
    assert_eq!(res.code, 0, "{}{}", res.stdout, res.stderr);
    assert!(res.stdout.contains(&format!("pocketses remodel --watch {running}")), "{}", res.stdout);
    let abort =
        fake.requests().into_iter().rev().find(|r| r.method == "POST").expect("abort posted");
    assert_eq!(abort.path, format!("/v2/changes/{running}"));
    assert_eq!(abort.json(), json!({"action": "abort"}));

    let res = run(&fake, state.path(), &["--abort", &id]);
    assert_eq!(res.code, 1);
    assert!(
        res.stderr.contains(&format!("cannot abort change {id} with nothing pending")),
        "{}",
        res.stderr
    );
    let res = run(&fake, state.path(), &["--watch", "99"]);
    assert_eq!(res.code, 1);
    assert!(res.stderr.contains("cannot find change with id \"99\""), "{}", res.stderr);
}

#[test]
fn ctrl_c_detaches_and_says_how_to_resume() {
    let fake = device();
    // A change that stays Doing: the last step repeats.
    let id = fake.add_change(vec![change(
        "Doing",
        false,
        json!([task("1", "download-snap", DL, "Doing", 0, 1)]),
    )]);
    let state = tempfile::tempdir().expect("tempdir");
    let child = command(&fake, state.path(), &["--watch", &id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let polled = support::wait_until(Duration::from_secs(20), || {
        fake.requests().iter().filter(|r| r.path == format!("/v2/changes/{id}")).count() >= 2
    });
    assert!(polled, "pocketses never polled the change");
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: sending SIGINT to the child we spawned.
    let rc = unsafe { libc::kill(pid, libc::SIGINT) };
    assert_eq!(rc, 0);
    let out = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stdout}");
    assert!(stdout.contains("detached: the remodel goes on in snapd"), "{stdout}");
    assert!(stdout.contains(&format!("pocketses remodel --watch {id}")), "{stdout}");
}

#[test]
fn offline_remodel_sends_the_multipart_form_and_checks_the_gadget_snap() {
    let fake = device();
    fake.state().remodel_script = Some(happy_script());
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("pc-root");
    std::fs::create_dir_all(root.join("meta")).expect("mkdir");
    std::fs::copy(fixture("gadget/pc-22.yaml"), root.join("meta/gadget.yaml")).expect("copy");
    std::fs::write(root.join("meta/snap.yaml"), "name: pc\ntype: gadget\nversion: '22'\n")
        .expect("snap.yaml");
    let snap = dir.path().join("pc_147.snap");
    let status = Command::new("mksquashfs")
        .arg(&root)
        .arg(&snap)
        .args(["-noappend", "-comp", "xz", "-all-root", "-no-progress", "-quiet"])
        .status()
        .expect("mksquashfs (squashfs-tools, from .ci/apt-packages)");
    assert!(status.success());
    let assertion =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/assertion/data/generic.account");
    let args = [
        "--offline".to_string(),
        "--snap".to_string(),
        snap.display().to_string(),
        "--assertion".to_string(),
        assertion.display().to_string(),
        "--current-gadget".to_string(),
        fixture("gadget/pc-20.yaml").display().to_string(),
        fixture("remodel/rev2.model").display().to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let res = run(&fake, dir.path(), &args);
    assert_eq!(res.code, 0, "{}{}", res.stdout, res.stderr);
    assert!(res.stdout.contains("pc_147.snap: compatible with the current one"), "{}", res.stdout);
    let post = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/v2/model" && r.method == "POST")
        .expect("posted");
    assert!(
        post.content_type.as_deref().unwrap_or("").starts_with("multipart/form-data; boundary="),
        "{post:?}"
    );
    let body = String::from_utf8_lossy(&post.body);
    assert!(
        body.contains("name=\"snap\"; filename=\"pc_147.snap\""),
        "multipart lacks the snap part"
    );
    assert!(body.contains("type: account\n"), "multipart lacks the assertion part");

    // The same gadget snap with the seed's layout is refused before posting.
    std::fs::copy(fixture("gadget/pc-22-size-only.yaml"), root.join("meta/gadget.yaml"))
        .expect("copy");
    let bad = dir.path().join("pc_146.snap");
    let status = Command::new("mksquashfs")
        .arg(&root)
        .arg(&bad)
        .args(["-noappend", "-comp", "xz", "-all-root", "-no-progress", "-quiet"])
        .status()
        .expect("mksquashfs");
    assert!(status.success());
    let posts_before = model_posts(&fake);
    let args = [
        "--offline".to_string(),
        "--snap".to_string(),
        bad.display().to_string(),
        "--current-gadget".to_string(),
        fixture("gadget/pc-20.yaml").display().to_string(),
        fixture("remodel/rev2.model").display().to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let res = run(&fake, dir.path(), &args);
    assert_eq!(res.code, 1, "{}{}", res.stdout, res.stderr);
    assert!(res.stdout.contains("incompatible structure #4 (\"ubuntu-save\")"), "{}", res.stdout);
    assert_eq!(model_posts(&fake), posts_before);
}

#[tokio::test]
async fn watch_events_streams_a_change_for_the_daemon() {
    let fake = device();
    let mut script = happy_script();
    script.insert(1, Step::Gone(Duration::from_millis(200)));
    let id = fake.add_change(script);
    let client = std::sync::Arc::new(pocketses::snapd::Client::new(std::sync::Arc::new(
        pocketses::snapd::socket::UnixTransport::new(fake.snapd_socket()),
    )));
    let mut rx =
        pocketses::remodel::drive::watch_events(client, id.clone(), Duration::from_millis(5));
    let mut types = Vec::new();
    let collect = async {
        while let Some(event) = rx.recv().await {
            types.push(event.to_json()["type"].as_str().unwrap_or("").to_string());
        }
    };
    tokio::time::timeout(Duration::from_secs(30), collect).await.expect("stream ends");
    assert_eq!(types.first().map(String::as_str), Some("attached"));
    assert!(
        types.contains(&"waiting".to_string()) && types.contains(&"resumed".to_string()),
        "{types:?}"
    );
    assert_eq!(types.last().map(String::as_str), Some("finished"));
}

#[tokio::test]
async fn daemon_task_reattaches_to_the_recorded_change_and_publishes_events() {
    use pocketses::publish::{Event, Hub};
    use pocketses::remodel::drive::{self, Record};

    let fake = device();
    let mut script = happy_script();
    script.insert(1, Step::Gone(Duration::from_millis(200)));
    let id = fake.add_change(script);
    let dir = tempfile::tempdir().expect("tempdir");
    let record = dir.path().join("remodel.json");
    // As left by `pocketses remodel` before the device rebooted.
    drive::save_record(
        &record,
        &Record {
            change: id.clone(),
            summary: String::new(),
            target: "pocketses-brand/pocketses-pc rev 2".into(),
            status: "Doing".into(),
            ready: false,
            err: None,
        },
    )
    .expect("record");
    let hub = Hub::new(16);
    let (mut rx, _) = hub.subscribe();
    let client = std::sync::Arc::new(pocketses::snapd::Client::new(std::sync::Arc::new(
        pocketses::snapd::socket::UnixTransport::new(fake.snapd_socket()),
    )));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(drive::republish(
        client,
        record.clone(),
        hub.clone(),
        Duration::from_millis(10),
        shutdown.clone(),
    ));
    let mut events: Vec<Value> = Vec::new();
    let collect = async {
        while let Ok(event) = rx.recv().await {
            if let Event::Remodel(report) = event {
                let value: Value = serde_json::from_slice(&report.json()).expect("JSON event");
                let done = value["type"] == "finished";
                events.push(value);
                if done {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), collect).await.expect("finished event");
    shutdown.cancel();
    task.await.expect("task ends on shutdown");
    assert!(
        events.iter().all(|e| e["event"] == "remodel" && e["change"] == id.as_str()),
        "{events:?}"
    );
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap_or("")).collect();
    assert_eq!(types.first(), Some(&"attached"));
    assert!(types.contains(&"waiting") && types.contains(&"resumed"), "{types:?}");
    let after = drive::load_record(&record).expect("load").expect("record");
    assert_eq!((after.status.as_str(), after.ready), ("Done", true));
}

#[test]
fn signature_is_verified_when_the_chain_is_at_hand() {
    let fake = device();
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/assertion/data");
    let generic = read(&data.join("generic-classic.model"));
    fake.state().model = Some(generic);
    let state = tempfile::tempdir().expect("tempdir");
    let (account, key, model) = (
        data.join("generic.account"),
        data.join("generic-models.account-key"),
        data.join("generic-classic.model"),
    );
    let args = [
        "--check",
        "--offline",
        "--assertion",
        account.to_str().expect("utf8"),
        "--assertion",
        key.to_str().expect("utf8"),
        model.to_str().expect("utf8"),
    ];
    let res = run(&fake, state.path(), &args);
    assert_eq!(res.code, 0, "{}{}", res.stdout, res.stderr);
    assert!(
        res.stdout
            .contains("signature: verified (model/16/generic/generic-classic <- account-key/"),
        "{}",
        res.stdout
    );
    // A brand key snapd does not have and that is not given: said, not refused.
    let other = device();
    let res = run(
        &other,
        state.path(),
        &["--check", fixture("remodel/rev2.model").to_str().expect("utf8")],
    );
    assert_eq!(res.code, 0, "{}{}", res.stdout, res.stderr);
    assert!(
        res.stdout.contains("signature: not verified here (no matching public key"),
        "{}",
        res.stdout
    );
    let asked = other
        .requests()
        .iter()
        .any(|r| r.path.starts_with("/v2/assertions/account-key?public-key-sha3-384="));
    assert!(asked, "snapd was not asked for the signing key");
    assert_eq!(model_posts(&fake), 0);
}

#[test]
fn a_model_whose_signature_fails_is_refused_before_posting() {
    let fake = device();
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/assertion/data");
    let genuine = read(&data.join("generic-classic.model"));
    fake.state().model = Some(genuine.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    // Same headers but a later timestamp: the signature no longer covers the content.
    let tampered = dir.path().join("tampered.model");
    std::fs::write(
        &tampered,
        genuine.replace("timestamp: 2017-07-27T00:00:00.0Z", "timestamp: 2017-07-28T00:00:00.0Z"),
    )
    .expect("write");
    let res = run(&fake, dir.path(), &[tampered.to_str().expect("utf8")]);
    assert_eq!(res.code, 1, "{}{}", res.stdout, res.stderr);
    assert!(res.stdout.contains("nothing was sent to snapd"), "{}", res.stdout);
    assert!(res.stdout.contains("(during the change)"), "{}", res.stdout);
    assert!(res.stdout.contains("signature when it sets the model"), "{}", res.stdout);
    assert_eq!(model_posts(&fake), 0);
}

#[test]
fn a_pending_reboot_is_announced_once() {
    let fake = device();
    fake.state().remodel_script = Some(happy_script());
    fake.state().maintenance = Some(
        json!({"kind": "system-restart", "message": "system is restarting", "value": {"op": "reboot"}}),
    );
    let state = tempfile::tempdir().expect("tempdir");
    let res = run(&fake, state.path(), &[fixture("remodel/rev2.model").to_str().expect("utf8")]);
    assert_eq!(res.code, 0, "{}{}", res.stdout, res.stderr);
    let line = "snapd: system is restarting; the remodel goes on after the reboot";
    assert_eq!(res.stdout.matches(line).count(), 1, "{}", res.stdout);
}

/// Kills the daemon however the test ends.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn daemon_writes_remodel_events_on_the_line_stream_when_asked() {
    use std::io::{BufRead, BufReader};

    let fake = device();
    let id = fake.add_change(happy_script());
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = dir.path().join("ready");
    let mut envs = fake.env();
    envs.push(("POCKETSES_STATE_DIR".into(), dir.path().display().to_string()));
    envs.push(("POCKETSES_CONTROL_SOCKET".into(), dir.path().join("c.sock").display().to_string()));
    let child = Command::new(support::bin())
        .args(["daemon", "--bind", "127.0.0.1", "--port", "0", "--http-port", "0"])
        .args(["--interval", "3600", "--remodel-events", "--ready-file"])
        .arg(&ready)
        .env_clear()
        .envs(envs)
        .stderr(Stdio::null())
        .spawn()
        .expect("start the daemon");
    let _daemon = Daemon(child);
    let tcp = || {
        let text = std::fs::read_to_string(&ready).ok()?;
        text.split_whitespace().find_map(|w| w.strip_prefix("tcp=")).map(str::to_string)
    };
    assert!(support::wait_until(Duration::from_secs(60), || tcp().is_some()), "not ready");
    let stream = std::net::TcpStream::connect(tcp().unwrap()).expect("subscribe");
    // A bound on each read, not a speed assertion.
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut reader = BufReader::new(stream);
    let mut next = || {
        let mut line = String::new();
        reader.read_line(&mut line).expect("a line");
        assert!(line.ends_with('\n'), "stream closed: {line:?}");
        serde_json::from_str::<Value>(&line).expect("one JSON object per line")
    };
    let first = next();
    assert!(first.get("event").is_none() && first["schema"].is_string(), "{first}");

    // `pocketses remodel` records the change; the daemon picks it up and reports on the stream.
    pocketses::remodel::drive::save_record(
        &dir.path().join("remodel.json"),
        &pocketses::remodel::drive::Record {
            change: id.clone(),
            summary: String::new(),
            target: "pocketses-brand/pocketses-pc rev 2".into(),
            status: "Doing".into(),
            ready: false,
            err: None,
        },
    )
    .expect("record");
    let mut events = Vec::new();
    loop {
        let value = next();
        assert_eq!(value["event"], "remodel", "only remodel reports before the next snapshot");
        assert_eq!(value["change"], id.as_str(), "{value}");
        let finished = value["type"] == "finished";
        events.push(value);
        if finished {
            break;
        }
    }
    assert!(events.iter().any(|e| e["type"] == "progress"), "{events:?}");
}

/// The status line and the JSON record `pocketses status` gives after a remodel.
fn status_of(fake: &FakeSnapd, state_dir: &Path) -> (String, Value) {
    let status = |json: bool| {
        let mut cmd = Command::new(support::bin());
        cmd.arg("status").env("POCKETSES_SNAPD_SOCKET", fake.snapd_socket());
        cmd.env("POCKETSES_STATE_DIR", state_dir).env_remove("SNAP_DATA");
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().expect("run pocketses");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = status(false);
    let line =
        text.lines().find(|l| l.trim_start().starts_with("remodel:")).unwrap_or("").to_string();
    (line, serde_json::from_str(&status(true)).expect("status --json"))
}

/// Runs `pocketses remodel` (plain, then `--json`) on a fake that replays a recorded change.
fn replayed(file: &str) -> (Value, Run, Run, FakeSnapd, tempfile::TempDir) {
    let recorded = recorded_change(file);
    let fake = device();
    let model = fixture("remodel/rev2.model");
    let state = tempfile::tempdir().expect("tempdir");
    fake.state().remodel_script = Some(replay(&recorded));
    let json = run(&fake, state.path(), &["--json", model.to_str().expect("utf8")]);
    fake.state().remodel_script = Some(replay(&recorded));
    let plain = run(&fake, state.path(), &[model.to_str().expect("utf8")]);
    (recorded, plain, json, fake, state)
}

fn summaries(recorded: &Value) -> Vec<(String, String)> {
    recorded["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| {
            (
                t["summary"].as_str().expect("summary").into(),
                t["status"].as_str().expect("status").into(),
            )
        })
        .collect()
}

fn events(res: &Run) -> Vec<Value> {
    res.stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()
}

#[test]
fn recorded_update_remodel_is_shown_task_by_task() {
    let (recorded, plain, json, fake, state) = replayed("remodel-update-done.json");
    assert_eq!(recorded["status"], "Done");
    assert_eq!(plain.code, 0, "{}{}", plain.stdout, plain.stderr);
    // Every task snapd ran, as snapd names it, in the order it finished.
    let shown: Vec<&str> = plain.stdout.lines().filter(|l| l.starts_with("Done    ")).collect();
    let want: Vec<String> =
        summaries(&recorded).iter().map(|(s, _)| format!("Done    {s}")).collect();
    assert_eq!(shown[..want.len()], want[..], "{}", plain.stdout);
    let summary = recorded["summary"].as_str().expect("summary");
    assert!(
        plain.stdout.contains(&format!("remodel done: {summary} (change 2)\n")),
        "{}",
        plain.stdout
    );
    // The download counted the snap's bytes.
    let evs = events(&json);
    let download = evs
        .iter()
        .find(|e| {
            e["type"] == "progress"
                && e["summary"].as_str().unwrap_or("").starts_with("Download snap")
        })
        .expect("a progress event for the download");
    assert_eq!(download["total"], recorded["tasks"][1]["progress"]["total"]);
    let kinds: Vec<&str> = evs
        .iter()
        .filter(|e| e["type"] == "task" && e["status"] == "Done")
        .map(|e| e["kind"].as_str().unwrap_or(""))
        .collect();
    let want_kinds: Vec<&str> = recorded["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, want_kinds);
    assert_eq!(
        evs.last().map(|e| (e["type"].clone(), e["status"].clone())),
        Some((json!("finished"), json!("Done")))
    );
    let (line, value) = status_of(&fake, state.path());
    assert_eq!(line.split_whitespace().collect::<Vec<_>>(), ["remodel:", "change", "2", "Done"]);
    assert_eq!(
        value["remodel"]["summary"], "Refresh model assertion from revision 1 to 2",
        "{value}"
    );
    assert_eq!(value["remodel"]["ready"], true);
}

#[test]
fn recorded_reregistration_shows_the_new_serial_request() {
    let (recorded, plain, json, _fake, _state) = replayed("remodel-rereg-done.json");
    assert_eq!(plain.code, 0, "{}{}", plain.stdout, plain.stderr);
    assert!(
        plain.stdout.lines().any(|l| l == "Done    Request new device serial"),
        "{}",
        plain.stdout
    );
    assert!(summaries(&recorded)
        .iter()
        .all(|(s, _)| plain.stdout.contains(&format!("Done    {s}\n"))));
    let evs = events(&json);
    assert!(evs
        .iter()
        .any(|e| e["type"] == "task" && e["kind"] == "request-serial" && e["status"] == "Done"));
}

#[test]
fn recorded_abort_is_reported_as_snapd_ended_it() {
    let (recorded, plain, json, fake, state) = replayed("remodel-abort-error.json");
    let status = recorded["status"].as_str().expect("status").to_string();
    assert_eq!(plain.code, 1, "{}{}", plain.stdout, plain.stderr);
    // Every task that left the queue is shown at the status snapd ended it with.
    for (summary, st) in summaries(&recorded) {
        if st != "Do" {
            let want = format!("{st:<7} {summary}");
            assert!(
                plain.stdout.lines().any(|l| l == want),
                "no line {want:?} in\n{}",
                plain.stdout
            );
        }
    }
    let outcome = if status == "Undone" {
        "remodel undone: snapd reverted every step, the device still runs its previous model (change 2)".to_string()
    } else {
        format!("remodel failed: change 2 is {status}")
    };
    assert!(plain.stdout.contains(&outcome), "{}", plain.stdout);
    // snapd's error, in its words (for the abort: the hook it killed).
    let err = recorded["err"].as_str().unwrap_or("");
    for line in err.lines() {
        assert!(plain.stdout.contains(&format!("  {line}\n")), "no {line:?} in\n{}", plain.stdout);
    }
    let evs = events(&json);
    assert_eq!(
        evs.last().map(|e| (e["type"].clone(), e["status"].clone())),
        Some((json!("finished"), json!(status)))
    );
    let (line, value) = status_of(&fake, state.path());
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>(),
        ["remodel:", "change", "2", status.as_str()]
    );
    assert_eq!(value["remodel"]["ready"], true);
}

#[test]
fn recorded_missing_snap_refusal_is_given_in_snapds_words() {
    let refusal = recorded_error("remodel-missing-post.json");
    let fake = device();
    let state = tempfile::tempdir().expect("tempdir");
    let want = match &refusal.kind {
        Some(kind) => format!("error: {} [{kind}]", refusal.message),
        None => format!("error: {}", refusal.message),
    };
    fake.fail("POST", "/v2/model", refusal);
    let res = run(&fake, state.path(), &[fixture("remodel/rev2.model").to_str().expect("utf8")]);
    assert_eq!(res.code, 1);
    assert!(res.stderr.contains(&want), "want {want:?} in {}", res.stderr);
    assert!(!state.path().join("remodel.json").exists(), "nothing to record when snapd refuses");
}

#[test]
fn a_classic_device_is_told_why_its_gadget_layout_is_not_checked() {
    let fake = device();
    {
        let mut state = fake.state();
        state.model = Some(read(&fixture("remodel/testbrand-seed.model")));
        state.system_info["on-classic"] = json!(true);
        state.system_info["version"] = json!("2.57.6-1+deb12u1");
    }
    let state = tempfile::tempdir().expect("tempdir");
    let model = fixture("remodel/testbrand-update.model");
    let want = "gadget layout: not checked (a classic device's disk is not laid out by its gadget; snapd does not check it either)";
    let res = run(&fake, state.path(), &["--check", model.to_str().expect("utf8")]);
    assert_eq!(res.code, 0, "{}{}", res.stdout, res.stderr);
    assert!(res.stdout.lines().any(|l| l == want), "{}", res.stdout);
    assert!(res.stdout.contains("change summary: Refresh model assertion from revision 0 to 1\n"));
    let res = run(&fake, state.path(), &["--check", "--json", model.to_str().expect("utf8")]);
    assert_eq!(res.code, 0, "{}{}", res.stdout, res.stderr);
    let plan: Value =
        serde_json::from_str(res.stdout.lines().next().expect("a line")).expect("JSON");
    assert_eq!((plan["type"].as_str(), plan["gadget-layout"].as_str()), (Some("plan"), Some(want)));
    assert_eq!(model_posts(&fake), 0);
}

#[test]
fn recorded_reattach_change_is_followed_by_the_daemon_to_its_end() {
    use pocketses::publish::{Event, Hub};
    use pocketses::remodel::drive::{self, Record};

    let recorded = recorded_change("remodel-reattach-error.json");
    let fake = device();
    // snapd restarted while the change was held, as in the spread task.
    let mut script = replay(&recorded);
    let held = script.len() - 1;
    script.insert(held, Step::Gone(Duration::from_millis(200)));
    let id = fake.add_change(script);
    let dir = tempfile::tempdir().expect("tempdir");
    let record = dir.path().join("remodel.json");
    drive::save_record(
        &record,
        &Record {
            change: id.clone(),
            summary: recorded["summary"].as_str().expect("summary").into(),
            target: "developer1/pocketses-classic rev 2".into(),
            status: "Doing".into(),
            ready: false,
            err: None,
        },
    )
    .expect("record");
    let hub = Hub::new(64);
    let (mut rx, _) = hub.subscribe();
    let client = std::sync::Arc::new(pocketses::snapd::Client::new(std::sync::Arc::new(
        pocketses::snapd::socket::UnixTransport::new(fake.snapd_socket()),
    )));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let events = rt.block_on(async {
        let task = tokio::spawn(drive::republish(
            client,
            record.clone(),
            hub.clone(),
            Duration::from_millis(10),
            shutdown.clone(),
        ));
        let mut events: Vec<Value> = Vec::new();
        let collect = async {
            // The hub's queue is short (publish::QUEUE_CAPACITY): the many task events of the
            // last step may lag this receiver; the newest, the finished event, stays.
            loop {
                let event = match rx.recv().await {
                    Ok(event) => event,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                };
                if let Event::Remodel(report) = event {
                    let value: Value = serde_json::from_slice(&report.json()).expect("JSON event");
                    let done = value["type"] == "finished";
                    events.push(value);
                    if done {
                        break;
                    }
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), collect).await.expect("finished event");
        shutdown.cancel();
        task.await.expect("task ends on shutdown");
        events
    });
    let status = recorded["status"].as_str().expect("status");
    // Each task as it ran, up to the one snapd was in when it restarted.
    let held =
        summaries(&recorded).into_iter().find(|(_, st)| st == "Error").expect("an Error task").0;
    assert!(
        events.iter().any(|e| e["type"] == "task"
            && e["summary"] == held.as_str()
            && e["status"] == "Doing"),
        "{events:?}"
    );
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap_or("")).collect();
    assert_eq!(types.first(), Some(&"attached"));
    // snapd's restart was seen ("resumed" comes with the burst of the last step and may lag).
    assert!(types.contains(&"waiting"), "{types:?}");
    assert_eq!(
        events.last().map(|e| (e["type"].clone(), e["status"].clone())),
        Some((json!("finished"), json!(status)))
    );
    let after = drive::load_record(&record).expect("load").expect("record");
    assert_eq!((after.status.as_str(), after.ready), (status, true));
}

/// The VM's test-brand device on the fake: classic, snapd 2.57, running the seed model, with
/// the seed's snaps (snapd, core22, the gadget) and pocketses installed.
fn testbrand_device() -> FakeSnapd {
    let fake = device();
    {
        let mut state = fake.state();
        state.model = Some(read(&fixture("remodel/testbrand-seed.model")));
        state.system_info["on-classic"] = json!(true);
        state.system_info["version"] = json!("2.57.6-1+deb12u1");
        for (name, kind) in
            [("snapd", "snapd"), ("core22", "base"), ("pocketses-test-gadget", "gadget")]
        {
            state.snaps.push(json!({"id": "", "name": name, "type": kind, "status": "active", "version": "1", "revision": "x1"}));
        }
    }
    fake
}

fn find_requests(fake: &FakeSnapd) -> Vec<String> {
    fake.requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/v2/find"))
        .map(|r| r.path.clone())
        .collect()
}

#[test]
fn check_predicts_snapds_refusal_of_a_snap_the_store_lacks() {
    let fake = testbrand_device();
    fake.state().store_lacks = vec!["remodel-missing".to_string()];
    let state = tempfile::tempdir().expect("tempdir");
    let model = fixture("remodel/testbrand-missing.model");
    let res = run(&fake, state.path(), &["--check", model.to_str().expect("utf8")]);
    assert_eq!(res.code, 1, "{}{}", res.stdout, res.stderr);
    // snapd 2.57's words for it, as the test-brand VM recorded its reply to POST /v2/model:
    // remodelTasks → the store's name-not-found (store.ErrSnapNotFound).
    let recorded = recorded_error("remodel-missing-post.json");
    assert_eq!(recorded.message, "cannot remodel device: snap not found");
    assert!(res.stdout.contains(&format!("- {} (at once)\n", recorded.message)), "{}", res.stdout);
    assert!(res.stdout.contains(r#"requires the snap "remodel-missing""#), "{}", res.stdout);
    // Only the snaps the remodel installs are looked up: core22 is installed already.
    assert_eq!(
        find_requests(&fake),
        ["/v2/find?name=remodel-extra", "/v2/find?name=remodel-missing"]
    );
    // Without --check nothing is posted either: the pre-flight refuses.
    let res = run(&fake, state.path(), &[model.to_str().expect("utf8")]);
    assert_eq!(res.code, 1, "{}{}", res.stdout, res.stderr);
    assert_eq!(model_posts(&fake), 0);
    let res = run(&fake, state.path(), &["--check", "--json", model.to_str().expect("utf8")]);
    let refused: Value =
        serde_json::from_str(res.stdout.lines().next().expect("a line")).expect("JSON");
    assert_eq!(refused["type"], "refused");
    assert_eq!(refused["refusals"][0]["snapd"], "cannot remodel device: snap not found");
    assert_eq!(refused["refusals"][0]["stage"], "post");
}

#[test]
fn check_says_what_the_store_has() {
    let fake = testbrand_device();
    let state = tempfile::tempdir().expect("tempdir");
    let model = fixture("remodel/testbrand-update.model");
    let res = run(&fake, state.path(), &["--check", model.to_str().expect("utf8")]);
    assert_eq!(res.code, 0, "{}{}", res.stdout, res.stderr);
    assert!(res.stdout.lines().any(|l| l == "store: has remodel-extra"), "{}", res.stdout);
    let res = run(&fake, state.path(), &["--check", "--json", model.to_str().expect("utf8")]);
    let plan: Value =
        serde_json::from_str(res.stdout.lines().next().expect("a line")).expect("JSON");
    assert_eq!(plan["store"], "store: has remodel-extra");
}

#[test]
fn a_store_snapd_cannot_ask_is_said_and_not_refused() {
    let fake = testbrand_device();
    // What snapd 2.57 answers when its store has no info endpoint (snapd's fakestore: 418).
    fake.fail(
        "GET",
        "/v2/find",
        ErrorReply::new(500, None, "cannot get details for snap \"remodel-extra\": got unexpected HTTP status code 418 via GET to \"http://127.0.0.1:11028/v2/snaps/info/remodel-extra\""),
    );
    let state = tempfile::tempdir().expect("tempdir");
    let model = fixture("remodel/testbrand-update.model");
    let res = run(&fake, state.path(), &["--check", model.to_str().expect("utf8")]);
    assert_eq!(res.code, 0, "{}{}", res.stdout, res.stderr);
    let line = res.stdout.lines().find(|l| l.starts_with("store: ")).expect("a store line");
    assert!(line.starts_with("store: not asked about remodel-extra (cannot get details"), "{line}");
    assert!(line.ends_with("; snapd asks it when the remodel starts"), "{line}");
}

#[test]
fn an_offline_remodel_does_not_ask_the_store() {
    let fake = testbrand_device();
    fake.state().store_lacks = vec!["remodel-extra".to_string()];
    let state = tempfile::tempdir().expect("tempdir");
    let model = fixture("remodel/testbrand-update.model");
    let res = run(&fake, state.path(), &["--check", "--offline", model.to_str().expect("utf8")]);
    assert!(find_requests(&fake).is_empty(), "{:?}", find_requests(&fake));
    assert!(!res.stdout.contains("snap not found"), "{}", res.stdout);
}
