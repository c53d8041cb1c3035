//! What the `pocketses` binary asks of the loader: the C library and the unwinder only. The
//! daemon's RSS counts every mapped library's touched pages, and `libm.so.6` was about 0.5 MB of
//! it for two functions (docs/performance.md, "A library fewer"); `src/main.rs` defines them.

use std::process::Command;

fn needed(binary: &str) -> Vec<String> {
    let out = Command::new("readelf")
        .args(["--dynamic", "--wide", binary])
        .output()
        .expect("readelf (binutils, which the Rust linker needs anyway) runs");
    assert!(out.status.success(), "readelf failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l.split_once('[')?.1.split_once(']')?.0.to_string()))
        .collect()
}

#[test]
fn the_binary_needs_no_libm() {
    let libs = needed(env!("CARGO_BIN_EXE_pocketses"));
    assert!(
        libs.iter().any(|l| l.starts_with("libc.so")),
        "no libc among {libs:?}: readelf output not understood"
    );
    assert!(
        !libs.iter().any(|l| l.starts_with("libm.so")),
        "the binary needs {libs:?}: a new call into libm (f64::exp, sin, …) came in; define it in \
         src/main.rs from the libm crate, or avoid it"
    );
}
