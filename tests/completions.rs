//! Shell completions and man pages (tools/generate.rs, run by the snap build): generated for
//! bash, zsh and fish, naming every subcommand; the man pages render; the snap's completer is
//! the file the generator writes.

#[allow(dead_code)] // the generator's `main` and argument parsing are not used here
#[path = "../tools/generate.rs"]
mod generate;

use std::path::Path;
use std::process::Command;

use clap::CommandFactory as _;

/// Every subcommand of the real parser, so a new one is checked without editing this test.
fn subcommands() -> Vec<String> {
    let cli = pocketses::cli::Cli::command();
    let names: Vec<String> = cli.get_subcommands().map(|c| c.get_name().to_string()).collect();
    assert!(names.len() >= 9, "{names:?}");
    names
}

fn script(shell: clap_complete::Shell) -> String {
    String::from_utf8(generate::completion_script(shell)).expect("utf-8")
}

#[test]
fn completions_for_bash_zsh_and_fish_name_every_subcommand() {
    use clap_complete::Shell;
    type Pattern = fn(&str) -> String;
    let shells: [(Shell, &str, Pattern); 3] = [
        (Shell::Bash, "complete -F _pocketses", |sub| format!("pocketses,{sub})")),
        (Shell::Zsh, "#compdef pocketses", |sub| format!("'{sub}:")),
        (Shell::Fish, "complete -c pocketses", |sub| format!("-a \"{sub}\"")),
    ];
    for (shell, header, pattern) in shells {
        let text = script(shell);
        assert!(text.contains(header), "{shell} script lacks {header:?}");
        for sub in subcommands() {
            let want = pattern(&sub);
            assert!(text.contains(&want), "{shell} completions miss {sub} ({want:?})");
        }
    }
}

#[test]
fn bash_completion_is_valid_bash() {
    let text = script(clap_complete::Shell::Bash);
    let out = Command::new("bash").arg("-n").arg("-c").arg(&text).output().expect("bash");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn check_roff(page: &str, name: &str) {
    assert!(page.contains(&format!(".TH {name} 1 ")), "{name}: no .TH header");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS"] {
        assert!(page.contains(section), "{name}: no {section}");
    }
}

/// The page as `man` shows it, when `man` is installed (it is on CI's machines); `None`
/// elsewhere, where the roff checks alone run.
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
    let page = String::from_utf8(generate::man_page().expect("render")).expect("utf-8");
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
fn the_tree_has_every_script_and_a_page_per_subcommand() {
    let dir = tempfile::tempdir().expect("tempdir");
    let written = generate::tree(dir.path()).expect("tree");
    assert_eq!(written.len(), 3);
    for path in &written {
        assert!(std::fs::metadata(path).expect("script").len() > 1000, "{}", path.display());
    }
    let mut pages = vec!["pocketses".to_string()];
    pages.extend(subcommands().iter().map(|sub| format!("pocketses-{sub}")));
    for name in pages {
        let path = dir.path().join("man/man1").join(format!("{name}.1"));
        let page = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}.1: {e}"));
        check_roff(&page, &name);
        rendered(&path);
    }
}

#[test]
fn the_snap_runs_the_generator_and_its_completer_is_the_bash_script() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("snap/snapcraft.yaml");
    let text = std::fs::read_to_string(path).expect("snapcraft.yaml");
    let yaml: serde_json::Value = serde_saphyr::from_str(&text).expect("yaml");
    let build = yaml["parts"]["pocketses"]["override-build"].as_str().expect("override-build");
    assert!(build.starts_with("craftctl default\n"), "{build}");
    let run =
        "cargo run --locked --example pocketses-generate -- tree \"$CRAFT_PART_INSTALL/usr/share\"";
    assert!(build.contains(run), "{build}");
    let completer = yaml["apps"]["pocketses"]["completer"].as_str().expect("completer");
    let bash = generate::SCRIPTS
        .iter()
        .find(|(shell, _)| *shell == clap_complete::Shell::Bash)
        .map(|(_, rel)| format!("usr/share/{rel}"));
    assert_eq!(Some(completer.to_string()), bash);
}

#[test]
fn the_generator_runs_as_a_program() {
    // `cargo test` builds the examples next to the binary; a targeted run may not have.
    let exe = support_examples_dir().join("pocketses-generate");
    let Ok(out) = Command::new(&exe).args(["completions", "fish"]).output() else {
        panic!("{} is missing: run `cargo build --example pocketses-generate`", exe.display());
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, generate::completion_script(clap_complete::Shell::Fish));
}

fn support_examples_dir() -> std::path::PathBuf {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_pocketses"));
    bin.parent().expect("target dir").join("examples")
}
