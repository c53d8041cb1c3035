//! `pocketses completions SHELL` and `pocketses man`: generated for bash, zsh and fish, naming
//! every subcommand; the man page renders; the snap ships what the build generates.

mod support;

use std::path::Path;
use std::process::Command;

use clap::CommandFactory as _;

/// Every subcommand of the real parser, so a new one is checked without editing this test.
fn subcommands() -> Vec<String> {
    let cli = pocketses::cli::Cli::command();
    let names: Vec<String> = cli.get_subcommands().map(|c| c.get_name().to_string()).collect();
    assert!(names.len() >= 10, "{names:?}");
    names
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(support::bin()).args(args).output().expect("run pocketses");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn completions_for_bash_zsh_and_fish_name_every_subcommand() {
    type Pattern = fn(&str) -> String;
    let shells: [(&str, &str, Pattern); 3] = [
        ("bash", "complete -F _pocketses", |sub| format!("pocketses,{sub})")),
        ("zsh", "#compdef pocketses", |sub| format!("'{sub}:")),
        ("fish", "complete -c pocketses", |sub| format!("-a \"{sub}\"")),
    ];
    for (shell, header, pattern) in shells {
        let (code, script, stderr) = run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {stderr}");
        assert!(script.contains(header), "{shell} script lacks {header:?}");
        for sub in subcommands() {
            let want = pattern(&sub);
            assert!(script.contains(&want), "{shell} completions miss {sub} ({want:?})");
        }
    }
}

#[test]
fn bash_completion_is_valid_bash() {
    let (code, script, _) = run(&["completions", "bash"]);
    assert_eq!(code, 0);
    let out = Command::new("bash").arg("-n").arg("-c").arg(&script).output().expect("bash");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn an_unknown_shell_is_refused() {
    let (code, stdout, stderr) = run(&["completions", "tcsh"]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(stderr.contains("invalid value 'tcsh'"), "{stderr}");
}

fn check_roff(page: &str, name: &str) {
    assert!(page.contains(&format!(".TH {name} 1 ")), "{name}: no .TH header");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS"] {
        assert!(page.contains(section), "{name}: no {section}");
    }
}

/// The page as `man` shows it, when `man` is installed (it is on CI's machines); `None` elsewhere,
/// where the roff checks alone run.
fn rendered(path: &Path) -> Option<String> {
    let out = Command::new("man")
        .args(["-l", "-P", "cat"])
        .arg(path)
        .env("MANWIDTH", "100")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .ok()?;
    assert!(out.status.success(), "man -l: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "man -l warns: {}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn the_man_page_renders_and_lists_every_subcommand() {
    let (code, page, stderr) = run(&["man"]);
    assert_eq!(code, 0, "{stderr}");
    check_roff(&page, "pocketses");
    assert!(page.contains(".SH SUBCOMMANDS"));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pocketses.1");
    std::fs::write(&path, &page).expect("write");
    if let Some(text) = rendered(&path) {
        assert!(text.contains("NAME") && text.contains("SYNOPSIS"), "{text}");
        for sub in subcommands() {
            assert!(text.contains(&format!("pocketses-{sub}(1)")), "man page lacks {sub}");
        }
    }
}

#[test]
fn man_dir_writes_a_page_per_subcommand() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, stdout, stderr) = run(&["man", "--dir", dir.path().to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty());
    let mut pages = vec!["pocketses".to_string()];
    pages.extend(subcommands().iter().map(|sub| format!("pocketses-{sub}")));
    for name in pages {
        let path = dir.path().join(format!("{name}.1"));
        let page = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}.1: {e}"));
        check_roff(&page, &name);
        rendered(&path);
    }
}

#[test]
fn the_snap_ships_the_completer_its_build_writes() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("snap/snapcraft.yaml");
    let text = std::fs::read_to_string(path).expect("snapcraft.yaml");
    let yaml: serde_json::Value = serde_saphyr::from_str(&text).expect("yaml");
    let completer = yaml["apps"]["pocketses"]["completer"].as_str().expect("completer");
    let build = yaml["parts"]["pocketses"]["override-build"].as_str().expect("override-build");
    assert!(
        build.contains(
            "\"$bin\" completions bash > \"$share/bash-completion/completions/pocketses\""
        ),
        "{build}"
    );
    assert_eq!(completer, "usr/share/bash-completion/completions/pocketses");
    assert!(build.contains("\"$bin\" man --dir \"$share/man/man1\""), "{build}");
    assert!(build.starts_with("craftctl default\n"), "{build}");
}
