//! snap/snapcraft.yaml and hooks/ agree with the code: apps, plugs, hooks and their shims.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use pocketses::hooks::Hook;
use serde_json::Value;

fn snapcraft() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/snap/snapcraft.yaml"))
        .expect("read snap/snapcraft.yaml");
    serde_saphyr::from_str(&text).expect("parse snap/snapcraft.yaml")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

#[test]
fn snap_is_strict_core22_with_cli_and_daemon() {
    let y = snapcraft();
    assert_eq!(y["name"], "pocketses");
    assert_eq!(y["base"], "core22");
    assert_eq!(y["confinement"], "strict");
    assert_eq!(y["parts"]["pocketses"]["plugin"], "rust");
    assert_eq!(y["apps"]["pocketses"]["command"], "bin/pocketses");
    let daemon = &y["apps"]["daemon"];
    assert_eq!(daemon["command"], "bin/pocketses daemon");
    assert_eq!(daemon["daemon"], "simple");
    assert_eq!(daemon["restart-condition"], "always");
    let plugs = strings(&daemon["plugs"]);
    for plug in [
        "network",
        "network-bind",
        "network-observe",
        "system-observe",
        "hardware-observe",
        "mount-observe",
        "snapd-control",
    ] {
        assert!(plugs.contains(&plug.to_string()), "daemon lacks plug {plug}");
    }
}

#[test]
fn every_hook_has_a_shim_and_an_entry() {
    let y = snapcraft();
    let declared: BTreeMap<String, Value> =
        y["hooks"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/hooks");
    let mut shims: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    shims.sort();
    let mut names: Vec<String> = Hook::ALL.iter().map(|h| h.name().to_string()).collect();
    names.sort();
    assert_eq!(shims, names);
    assert_eq!(declared.keys().cloned().collect::<Vec<_>>(), names);
    for hook in Hook::ALL {
        let path = format!("{dir}/{}", hook.name());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!("#!/bin/sh\nexec \"$SNAP/bin/pocketses\" hook {} \"$@\"\n", hook.name())
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "{path} is not executable");
    }
    // The dump part puts the shims where snapcraft looks for hooks.
    assert_eq!(y["parts"]["hooks"]["plugin"], "dump");
    assert_eq!(y["parts"]["hooks"]["source"], "hooks/");
    assert_eq!(y["parts"]["hooks"]["organize"]["*"], "snap/hooks/");
}
