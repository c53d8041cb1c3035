//! The `model` and `key` commands, run as the real binary on files in temp dirs.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/assertions");
const ASSERTIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assertions");
const GENERIC_CLASSIC: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/src/assertion/data/generic-classic.model");

fn fixture(rel: &str) -> PathBuf {
    Path::new(FIXTURES).join(rel)
}

/// Runs pocketses with a private key directory.
fn run(keys: &Path, args: &[&str]) -> Output {
    Command::new(support::bin())
        .args(args)
        .env("POCKETSES_KEYS_DIR", keys)
        .env_remove("SNAP_USER_DATA")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "failed: {}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

/// A key dir with the throwaway brand and root keys imported.
fn keys() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    ok(run(&keys, &["key", "import", "brand", fixture("keys/brand.pem").to_str().unwrap()]));
    ok(run(&keys, &["key", "import", "root", fixture("keys/root.pem").to_str().unwrap()]));
    dir
}

/// The input the committed chain's model was signed from (see make-chain.sh).
fn test_model_input(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(Path::new(ASSERTIONS).join("uc22-amd64.json")).unwrap();
    let text = text
        .replace("your-brand-id", "testbrand")
        .replace("pocketses-appliance-amd64", "test-appliance")
        .replace("\"2026-01-01T00:00:00+00:00\"", "\"2024-06-01T00:00:00+00:00\"");
    let path = dir.join("model.json");
    std::fs::write(&path, text).unwrap();
    path
}

fn trusted_args() -> Vec<String> {
    vec![
        "--trusted".into(),
        fixture("chain/root.account-key").display().to_string(),
        fixture("chain/root.account").display().to_string(),
    ]
}

#[test]
fn validate_reports_every_problem_and_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let k = dir.path();
    let inputs: Vec<String> =
        ["uc22-amd64.json", "uc22-amd64.yaml", "uc22-arm64.json", "uc22-arm64.yaml"]
            .iter()
            .map(|f| Path::new(ASSERTIONS).join(f).display().to_string())
            .collect();
    let mut args = vec!["model", "validate"];
    args.extend(inputs.iter().map(String::as_str));
    args.push(GENERIC_CLASSIC);
    let out = ok(run(k, &args));
    assert_eq!(out.matches(": valid").count(), 5, "{out}");

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"type": "model", "authority-id": "a", "brand-id": "b", "series": "16", "model": "Bad", "architecture": "amd64", "base": "core22", "grade": "nope", "snaps": [], "timestamp": "2024-01-01T00:00:00Z"}"#).unwrap();
    let o = run(k, &["model", "validate", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    for want in [
        r#"authority-id and brand-id must match, model assertions are expected to be signed by the brand: "a" != "b""#,
        r#""model" header cannot contain uppercase letters"#,
        r#"grade for model must be secured|signed|dangerous, not "nope""#,
        r#"one "snaps" header entry must specify the model gadget"#,
        r#"one "snaps" header entry must specify the model kernel"#,
    ] {
        assert!(out.contains(want), "missing {want:?} in {out}");
    }
}

#[test]
fn show_summary_and_json() {
    let k = tempfile::tempdir().unwrap();
    let out =
        ok(run(k.path(), &["model", "show", fixture("chain/model.assert").to_str().unwrap()]));
    for want in [
        "testbrand",
        "test-appliance",
        "signed",
        "core22",
        "pc (22/stable)",
        "pc-kernel (22/stable)",
        "pocketses",
        "POCKETSESSNAPIDPLACEHOLDER000000",
    ] {
        assert!(out.contains(want), "missing {want:?} in {out}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&ok(run(k.path(), &["model", "show", "--json", GENERIC_CLASSIC])))
            .unwrap();
    assert_eq!(json["headers"]["model"], "generic-classic");
    assert_eq!(json["headers"]["classic"], "true");
}

#[test]
fn reading_commands_print_one_kebab_case_object_with_json() {
    let k = keys();
    let keys_dir = k.path().join("keys");
    let list = support::assert_cli_json_shape(&ok(run(&keys_dir, &["key", "list", "--json"])));
    let names: Vec<&str> =
        list["keys"].as_array().unwrap().iter().map(|k| k["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["brand", "root"]);
    assert_eq!(list["keys"][0]["bits"], 4096);
    assert_eq!(list["keys"][0]["sha3-384"].as_str().unwrap().len(), 64);

    let show = support::assert_cli_json_shape(&ok(run(
        &keys_dir,
        &["model", "show", "--json", GENERIC_CLASSIC],
    )));
    assert_eq!(show["headers"]["model"], "generic-classic");
    assert_eq!(show["model"]["brand-id"], "generic");
    assert_eq!(show["model"]["classic"], true);
    assert_eq!(show["body"], "");

    let amd64 = Path::new(ASSERTIONS).join("uc22-amd64.json");
    let arm64 = Path::new(ASSERTIONS).join("uc22-arm64.yaml");
    let o = run(
        &keys_dir,
        &["model", "diff", "--json", amd64.to_str().unwrap(), arm64.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1), "a refused remodel is a verdict: document and exit 1");
    let diff = support::assert_cli_json_shape(&stdout(&o));
    assert_eq!(
        diff["refusals"][0]["snapd"],
        "cannot remodel device: cannot remodel to different architectures yet"
    );
    assert_eq!(diff["refusals"][0]["stage"], "post");
}

#[test]
fn show_without_file_asks_snapd() {
    let fake = support::fake_snapd::FakeSnapd::start();
    fake.state().model = Some(std::fs::read_to_string(fixture("chain/model.assert")).unwrap());
    let o = Command::new(support::bin()).args(["model", "show"]).envs(fake.env()).output().unwrap();
    let out = ok(o);
    assert!(out.contains("test-appliance"), "{out}");
    assert!(fake.requests().iter().any(|r| r.path.starts_with("/v2/model")));
}

#[test]
fn verify_real_and_private_chains() {
    let k = tempfile::tempdir().unwrap();
    let out = ok(run(k.path(), &["model", "verify", GENERIC_CLASSIC]));
    assert!(out.contains("account/generic: signed by -CvQKAwRQ5h3Ffn10FILJoEZUXOv6km9FwA80-Rcj-f-6jadQ89VRswHNiEB9Lxk (trusted)"), "{out}");

    let mut args: Vec<String> = vec![
        "model".into(),
        "verify".into(),
        fixture("chain/model-chain.assert").display().to_string(),
    ];
    args.extend(trusted_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(ok(run(k.path(), &args)).contains("verified"));

    // Without the private roots, the brand key is unknown.
    let o = run(k.path(), &["model", "verify", fixture("chain/model.assert").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no matching public key"), "{}", stderr(&o));

    // The account-key without its account.
    let mut args: Vec<String> = vec![
        "model".into(),
        "verify".into(),
        fixture("chain/model.assert").display().to_string(),
        "--assertions".into(),
        fixture("chain/brand.account-key").display().to_string(),
    ];
    args.extend(trusted_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(k.path(), &args);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(
            r#"account-key assertion for "testbrand" does not have a matching account assertion"#
        ),
        "{}",
        stderr(&o)
    );

    // A tampered model.
    let bad = k.path().join("bad.model");
    let text = std::fs::read_to_string(fixture("chain/model-chain.assert")).unwrap().replacen(
        "22/stable",
        "22/edge",
        1,
    );
    std::fs::write(&bad, text).unwrap();
    let mut args: Vec<String> = vec!["model".into(), "verify".into(), bad.display().to_string()];
    args.extend(trusted_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(k.path(), &args);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("failed signature verification"), "{}", stderr(&o));
}

#[test]
fn sign_is_reproducible_and_matches_the_committed_chain() {
    let dir = keys();
    let k = dir.path().join("keys");
    let input = test_model_input(dir.path());
    let args = [
        "model",
        "sign",
        "--key",
        "brand",
        "--signature-time",
        "2024-01-01T00:00:00Z",
        input.to_str().unwrap(),
    ];
    let first = ok(run(&k, &args));
    let second = ok(run(&k, &args));
    assert_eq!(first, second);
    assert_eq!(first, std::fs::read_to_string(fixture("chain/model.assert")).unwrap());

    // the same model from YAML signs to the same bytes
    let yaml = std::fs::read_to_string(Path::new(ASSERTIONS).join("uc22-amd64.yaml"))
        .unwrap()
        .replace("your-brand-id", "testbrand")
        .replace("pocketses-appliance-amd64", "test-appliance")
        .replace("\"2026-01-01T00:00:00+00:00\"", "\"2024-06-01T00:00:00+00:00\"");
    let yaml_path = dir.path().join("model.yaml");
    std::fs::write(&yaml_path, yaml).unwrap();
    let from_yaml = ok(run(
        &k,
        &[
            "model",
            "sign",
            "--key",
            "brand",
            "--signature-time",
            "2024-01-01T00:00:00Z",
            yaml_path.to_str().unwrap(),
        ],
    ));
    assert_eq!(from_yaml, first);
}

#[test]
fn sign_refuses_invalid_models_and_sets_timestamp() {
    let dir = keys();
    let k = dir.path().join("keys");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"type": "model", "authority-id": "testbrand", "brand-id": "testbrand", "series": "16", "model": "m", "architecture": "amd64", "timestamp": "2024-01-01T00:00:00Z"}"#).unwrap();
    let o = run(&k, &["model", "sign", "--key", "brand", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    assert!(stderr(&o).contains(r#""gadget" header is mandatory"#), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot sign model assertion: it is not valid (2 problems)"),
        "{}",
        stderr(&o)
    );

    let input = test_model_input(dir.path());
    let out = ok(run(
        &k,
        &["model", "sign", "--key", "brand", "--timestamp", "now", input.to_str().unwrap()],
    ));
    let ts = out.lines().find_map(|l| l.strip_prefix("timestamp: ")).unwrap();
    assert!(ts.ends_with('Z') && !ts.starts_with("2024-06-01"), "{ts}");
    let signed = dir.path().join("now.model");
    std::fs::write(&signed, &out).unwrap();
    let mut args: Vec<String> = vec![
        "model".into(),
        "verify".into(),
        signed.display().to_string(),
        "--assertions".into(),
        fixture("chain/brand.account-key").display().to_string(),
        fixture("chain/brand.account").display().to_string(),
    ];
    args.extend(trusted_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(run(&k, &args));

    let o = run(&k, &["model", "sign", "--key", "missing", input.to_str().unwrap()]);
    assert!(stderr(&o).contains(r#"cannot find key "missing""#), "{}", stderr(&o));
}

#[test]
fn verify_says_an_input_is_unsigned_and_how_to_sign_it() {
    let k = tempfile::tempdir().unwrap();
    for (file, what) in [("uc22-arm64.yaml", "YAML"), ("uc22-amd64.json", "JSON")] {
        let path = Path::new(ASSERTIONS).join(file);
        let o = run(k.path(), &["model", "verify", path.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1));
        let err = stderr(&o);
        assert!(
            err.starts_with(&format!(
                "error: cannot read model assertion: {} is not signed (it is a {what} input for `pocketses model sign`)",
                path.display()
            )),
            "{err}"
        );
        assert!(err.contains("pocketses model sign --key KEY"), "{err}");
    }
}

/// The command assertions/README.md gives, run as written (through the shell, for its globs).
#[test]
fn the_validate_command_of_the_assertions_readme_passes() {
    let readme = std::fs::read_to_string(Path::new(ASSERTIONS).join("README.md")).unwrap();
    let start =
        readme.find("`pocketses model validate ").expect("the README gives the command") + 1;
    let command = &readme[start..start + readme[start..].find('`').unwrap()];
    let bin = support::bin();
    let line = command.replacen("pocketses", &format!("'{}'", bin.display()), 1);
    let o = Command::new("sh")
        .arg("-c")
        .arg(&line)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let out = ok(o);
    assert_eq!(out.lines().filter(|l| l.ends_with(": valid")).count(), 4, "{command}: {out}");
}

/// A YAML input nested past the reader's limit is refused in words, not Rust debug text.
#[test]
fn too_deep_yaml_input_is_said_in_words() {
    let k = tempfile::tempdir().unwrap();
    let path = k.path().join("deep.yaml");
    std::fs::write(&path, format!("type: model\na: {}{}\n", "[".repeat(100), "]".repeat(100)))
        .unwrap();
    let o = run(k.path(), &["model", "validate", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("cannot decode YAML input: line 2 column"), "{out}");
    assert!(out.contains("nested more than 64 levels deep"), "{out}");
    assert!(!out.contains("Depth {"), "{out}");
}

#[test]
fn diff_as_text_and_json() {
    let k = tempfile::tempdir().unwrap();
    let amd64 = Path::new(ASSERTIONS).join("uc22-amd64.json");
    let arm64 = Path::new(ASSERTIONS).join("uc22-arm64.yaml");
    // amd64 -> arm64 is a re-registration snapd refuses: said in remodel --check's words, exit 1.
    let o = run(k.path(), &["model", "diff", amd64.to_str().unwrap(), arm64.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("architecture: amd64 -> arm64"), "{out}");
    assert!(
        out.contains(
            "remodel: re-registration (new brand or model: the device asks for a new serial)"
        ),
        "{out}"
    );
    assert!(out.contains("snapd would refuse this remodel"), "{out}");
    assert!(
        out.contains(
            "- cannot remodel device: cannot remodel to different architectures yet (at once)"
        ),
        "{out}"
    );
    // The same model twice: nothing changes, nothing refused, exit 0.
    let same =
        ok(run(k.path(), &["model", "diff", amd64.to_str().unwrap(), amd64.to_str().unwrap()]));
    assert!(same.contains("remodel: update (same brand, model and store)"), "{same}");
    assert!(same.contains("no differences"), "{same}");
    assert!(!same.contains("would refuse"), "{same}");
    let json: serde_json::Value = serde_json::from_str(&ok(run(
        k.path(),
        &[
            "model",
            "diff",
            "--json",
            amd64.to_str().unwrap(),
            fixture("chain/model.assert").to_str().unwrap(),
        ],
    )))
    .unwrap();
    assert_eq!(json["kind"], "reregistration");
    assert_eq!(json["refusals"], serde_json::json!([]));
    assert!(json["headers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["what"] == "brand-id" && c["new"] == "testbrand"));
}

#[test]
fn keys_import_list_export_delete_with_private_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let k = dir.path().join("keys");
    let pkcs1 = ok(run(&k, &["key", "import", "a", fixture("keys/brand.pem").to_str().unwrap()]));
    let pkcs8 =
        ok(run(&k, &["key", "import", "b", fixture("keys/brand-pkcs8.pem").to_str().unwrap()]));
    let id = "V0e-vpWCd0GucwsqS-4Rx6eAcoLlrBP1VoLdyn7ALUEO9U-clByVNWAWRpTxpZd9";
    assert_eq!(pkcs1.trim(), format!("a {id}"));
    assert_eq!(pkcs8.trim(), format!("b {id}"));
    assert_eq!(std::fs::metadata(&k).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(std::fs::metadata(k.join("a.pem")).unwrap().permissions().mode() & 0o777, 0o600);
    let list = ok(run(&k, &["key", "list"]));
    assert!(list.contains(&format!("a                    {id}")), "{list}");
    // export gives exactly the body of the committed account-key for this key
    let export = ok(run(&k, &["key", "export", "a"]));
    let account_key = std::fs::read_to_string(fixture("chain/brand.account-key")).unwrap();
    assert!(
        account_key.contains(&format!("\n\n{}\n\n", export.trim_end())),
        "export is not the account-key body"
    );
    let o = run(&k, &["key", "import", "a", fixture("keys/root.pem").to_str().unwrap()]);
    assert!(stderr(&o).contains("a key with that name exists"), "{}", stderr(&o));
    ok(run(&k, &["key", "delete", "a"]));
    assert!(!ok(run(&k, &["key", "list"])).contains("a    "));
    let o = run(&k, &["key", "delete", "a"]);
    assert!(!o.status.success());
    let o = run(&k, &["key", "import", "../evil", fixture("keys/root.pem").to_str().unwrap()]);
    assert!(stderr(&o).contains("invalid key name"), "{}", stderr(&o));
    let o = run(&k, &["key", "import", "c", fixture("chain/model.assert").to_str().unwrap()]);
    assert!(stderr(&o).contains("cannot read RSA private key"), "{}", stderr(&o));
}

/// snapd signs only with keys of 4096 bits or more (`snap sign`: "signing needs at least a 4096
/// bits key, got N"): a smaller key is refused at import, and at signing if it got in anyway.
#[test]
fn keys_below_4096_bits_are_refused_for_signing() {
    let dir = tempfile::tempdir().unwrap();
    let k = dir.path().join("keys");
    let o = run(&k, &["key", "import", "small", fixture("keys/rsa-512.pem").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o).trim(),
        "error: cannot import key \"small\": signing needs at least a 4096 bits key, got 512"
    );
    assert!(!k.join("small.pem").exists());
    // A key put in the directory by hand is refused when it would sign.
    std::fs::create_dir_all(&k).unwrap();
    std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::copy(fixture("keys/rsa-512.pem"), k.join("small.pem")).unwrap();
    std::fs::set_permissions(k.join("small.pem"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let input = dir.path().join("acc.json");
    std::fs::write(&input, r#"{"type": "account", "authority-id": "x1", "account-id": "x1", "display-name": "X", "validation": "unproven", "timestamp": "2024-01-01T00:00:00Z"}"#).unwrap();
    let o = run(&k, &["model", "sign", "--key", "small", input.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o)
            .contains("cannot sign assertion: signing needs at least a 4096 bits key, got 512"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty());
}

#[test]
fn key_create_makes_a_key_that_signs() {
    // Key generation in debug builds is slow; the size override is for tests only.
    let dir = tempfile::tempdir().unwrap();
    let k = dir.path().join("keys");
    let o = Command::new(support::bin())
        .args(["key", "create", "fresh"])
        .env("POCKETSES_KEYS_DIR", &k)
        .env("POCKETSES_KEY_BITS", "1024")
        .output()
        .unwrap();
    let out = ok(o);
    let id = out.trim().strip_prefix("fresh ").unwrap();
    assert_eq!(id.len(), 64);
    let input = dir.path().join("acc.json");
    std::fs::write(&input, r#"{"type": "account", "authority-id": "x1", "account-id": "x1", "display-name": "X", "validation": "unproven", "timestamp": "2024-01-01T00:00:00Z"}"#).unwrap();
    // The override lowers the signing minimum too (snapd's is 4096 bits).
    let signed = ok(Command::new(support::bin())
        .args(["model", "sign", "--key", "fresh", input.to_str().unwrap()])
        .env("POCKETSES_KEYS_DIR", &k)
        .env("POCKETSES_KEY_BITS", "1024")
        .output()
        .unwrap());
    assert!(signed.contains(&format!("sign-key-sha3-384: {id}\n\nAc")), "{signed}");
}

#[test]
fn every_invalid_fixture_is_refused() {
    let k = tempfile::tempdir().unwrap();
    let mut n = 0;
    for entry in std::fs::read_dir(fixture("invalid")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("model") {
            continue;
        }
        let o = run(k.path(), &["model", "validate", path.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{}: {}", path.display(), stdout(&o));
        assert!(!stdout(&o).contains(": valid"), "{}", stdout(&o));
        n += 1;
    }
    assert!(n >= 20, "{n}");
}
