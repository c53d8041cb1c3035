//! The fleet client's download of one artifact, timed, for the fleet benchmark
//! (`bench/fleet.sh`, docs/performance.md). A benchmark, not a test: it prints, it asserts
//! nothing about time.
//!
//! It runs `pocketses::fleet::download::fetch` exactly as the daemon's action does (the same
//! HTTP client, hash checked while streaming, the part renamed only when the hash matched, one
//! fsync at the end), `REPEATS` times into a fresh destination, and prints each run's wall time
//! and process CPU, and the best throughput.
//!
//! ```text
//! cargo run --release --example fleet_download -- URL SIZE ALGO:HEX DEST [REPEATS]
//! ```
//! `ALGO` is `sha256`, `sha1` or `md5`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pocketses::config::FleetConfig;
use pocketses::fleet::client::Ddi;
use pocketses::fleet::ddi::HashAlgo;
use pocketses::fleet::download::{self, Target};
use tokio_util::sync::CancellationToken;

/// CPU time (user + system) this process has used.
fn process_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the struct we own; the clock id is a constant.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(u64::try_from(ts.tv_sec).unwrap_or(0), u32::try_from(ts.tv_nsec).unwrap_or(0))
}

fn usage() -> ! {
    eprintln!("usage: fleet_download URL SIZE ALGO:HEX DEST [REPEATS]");
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        usage();
    }
    let url = args[0].clone();
    let size: u64 = args[1].parse().unwrap_or_else(|_| usage());
    let (algo, hex) = args[2].split_once(':').unwrap_or_else(|| usage());
    let algo = match algo {
        "sha256" => HashAlgo::Sha256,
        "sha1" => HashAlgo::Sha1,
        "md5" => HashAlgo::Md5,
        _ => usage(),
    };
    let dest = PathBuf::from(&args[3]);
    let repeats: usize = args.get(4).map_or(3, |r| r.parse().unwrap_or_else(|_| usage()));

    let origin = url.split('/').take(3).collect::<Vec<_>>().join("/");
    let config = FleetConfig {
        url: Some(origin),
        ca: None,
        tenant: "DEFAULT".into(),
        controller_id: Some("bench".into()),
        token: None,
        gateway_token: None,
        trusted_keys: None,
        enabled: true,
    };
    let ddi = Ddi::new(&config, "bench", std::path::Path::new("/")).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let target = Target { url, size: Some(size), hash: Some((algo, hex.to_ascii_lowercase())) };
    // The daemon's runtime: tokio's multi-thread scheduler.
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap_or_else(|e| {
        eprintln!("cannot start the runtime: {e}");
        std::process::exit(1)
    });
    let mut best = f64::MAX;
    for run in 1..=repeats {
        let _ = std::fs::remove_file(&dest);
        let _ = std::fs::remove_file(download::part_path(&dest));
        let cancel = CancellationToken::new();
        let cpu = process_cpu();
        let start = Instant::now();
        let res = rt.block_on(download::fetch(&ddi, &target, &dest, &mut |_, _| {}, &cancel));
        let wall = start.elapsed().as_secs_f64();
        let cpu = (process_cpu() - cpu).as_secs_f64();
        if let Err(err) = res {
            eprintln!("run {run}: {err}");
            std::process::exit(1);
        }
        best = best.min(wall);
        println!(
            "fleet_download run {run}: {size} bytes in {wall:.3} s ({:.1} MB/s), cpu {cpu:.3} s",
            size as f64 / wall / 1e6
        );
    }
    println!("fleet_download best: {best:.3} s ({:.1} MB/s)", size as f64 / best / 1e6);
    let _ = std::fs::remove_file(&dest);
}
