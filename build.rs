//! Lays out the daemon's steady code together (issue 14, docs/performance.md "The steady daemon's
//! text"): the kernel maps a binary's text 64 kB around each fault, so a working set of ~1 MB of
//! functions spread over the 7 MB text held ~3.4 MB of it resident. lld's
//! `--symbol-ordering-file` places the functions of `tools/hot-symbols.txt` (what the idle daemon
//! with every feature configured, scraped and subscribed to, runs; made by `bench/smaps-hot` under
//! callgrind, then corrected from the native daemon's page faults) first, in that order. Names
//! that no longer exist (code changed since the list was made) are skipped silently; a stale list
//! costs resident memory, never correctness.
//!
//! Only the release build of the `pocketses` binary for x86_64 Linux with glibc, which rustc links
//! with lld (its default there since 1.90); elsewhere the linker may not know the option.
//! `POCKETSES_NO_SYMBOL_ORDER=1` turns it off.

fn main() {
    println!("cargo:rerun-if-changed=tools/hot-symbols.txt");
    println!("cargo:rerun-if-env-changed=POCKETSES_NO_SYMBOL_ORDER");
    let target = std::env::var("TARGET").unwrap_or_default();
    let profile = std::env::var("PROFILE").unwrap_or_default();
    let off = std::env::var_os("POCKETSES_NO_SYMBOL_ORDER").is_some_and(|v| v == "1");
    if target != "x86_64-unknown-linux-gnu" || profile != "release" || off {
        return;
    }
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let list = std::path::Path::new(&dir).join("tools/hot-symbols.txt");
    if list.is_file() {
        // Relative to the package root, where cargo runs rustc and so the linker: a build
        // script's output is reused by another checkout sharing the target directory (the VM
        // harness's), which must read its own list, not a path into the first checkout.
        println!(
            "cargo:rustc-link-arg-bin=pocketses=-Wl,--symbol-ordering-file=tools/hot-symbols.txt"
        );
        println!("cargo:rustc-link-arg-bin=pocketses=-Wl,--no-warn-symbol-ordering");
    }
}
