//! The pocketses benchmark (issue 2, "Performance"): one run measures pocketses and its peers side
//! by side and prints a table of ratios. `bench/run` builds this and runs `pocketses-bench all`.
//!
//! 1. CPU per collection: `Collector::collect()` in process against the floor of raw reads.
//! 2. Fan-out: first-to-last delay of one line over N TCP subscribers, daemon CPU per cycle.
//! 3. RSS: idle (with the smaps table by mapping), and per subscriber; node_exporter's idle RSS.
//! 4. `GET /metrics`: CPU per scrape and scrapes/s against node_exporter.
//! 5. Binary size against node_exporter's.
//!
//! `push` (module `push`): the push sinks against vmagent, and the idle RSS with every feature configured.
//!
//! Figures of the original Python pocketses come from `anchor-figures.md` and are labelled as such:
//! they are not measured by this program. This is a benchmark, not a test: nothing here asserts on time.

mod broadcast;
mod collect;
mod fanout;
mod floor;
mod push;
mod scrape;
mod smaps;
mod stats;
mod sys;

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::thread::sleep;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::stats::{median, min_max, summary};

/// Figures of the original pocketses (Python) and node_exporter from anchor-figures.md (2026-11-22).
mod anchor {
    /// Pure collection work of one cycle (psutil calls + json.dumps), ms.
    pub const ORIG_COLLECT_MS: f64 = 0.477;
    /// Whole-process CPU per cycle, idle, ms.
    pub const ORIG_CPU_CYCLE_IDLE_MS: f64 = 2.60;
    /// Whole-process CPU per cycle with 1000 subscribers, ms.
    pub const ORIG_CPU_CYCLE_1000_MS: f64 = 27.5;
    /// Fan-out spread at N=1000, ms.
    pub const ORIG_SPREAD_1000_MS: f64 = 26.6;
    /// Fan-out spread at N=1000 from user-space read times, ms.
    pub const ORIG_USER_SPREAD_1000_MS: f64 = 26.8;
    /// Fan-out spread at N=5000 (one run), ms.
    pub const ORIG_SPREAD_5000_MS: f64 = 112.0;
    /// Idle RSS, kB.
    pub const ORIG_IDLE_RSS_KB: f64 = 31_580.0;
    /// RSS per subscriber at 1000 subscribers, kB.
    pub const ORIG_KB_PER_SUB: f64 = 2.6;
    /// node_exporter CPU per scrape at c=1 (wrk), ms.
    pub const NE_CPU_PER_SCRAPE_MS: f64 = 7.09;
}

/// Benchmark pocketses against its peers.
#[derive(Debug, Parser)]
#[command(name = "pocketses-bench")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Everything, in one run, then the table.
    All(AllArgs),
    /// Item 1 only: collect() against the floor.
    Floor(FloorArgs),
    /// Item 2 only, against a running daemon.
    Fanout(FanoutArgs),
    /// Item 4 only, against a running server.
    Scrape(ScrapeArgs),
    /// Item 3 only: start the daemon idle, then its RSS and its smaps table by mapping.
    Idle(IdleArgs),
    /// The smaps table by mapping (binary segments, heap, stacks, libraries) of a running process.
    Smaps {
        /// The process id.
        pid: u32,
    },
    /// Push against vmagent and VictoriaMetrics (issue 10), and the idle RSS with every feature
    /// configured (issue 14): `bench/run` runs it after `all`.
    Push(push::PushArgs),
    /// The fan-out baseline publisher (started by `all`).
    #[command(hide = true)]
    Broadcast(BroadcastArgs),
}

#[derive(Debug, clap::Args)]
struct FloorArgs {
    /// Iterations per repeat.
    #[arg(long, default_value_t = 5000)]
    iters: u32,
    /// Repeats (the median is reported).
    #[arg(long, default_value_t = 5)]
    repeats: u32,
}

#[derive(Debug, clap::Args)]
struct FanoutArgs {
    /// The daemon's line-stream address.
    #[arg(long)]
    addr: SocketAddrV4,
    /// The daemon's pid.
    #[arg(long)]
    pid: u32,
    /// Subscribers.
    #[arg(long, default_value_t = 1000)]
    n: usize,
    /// Messages to measure.
    #[arg(long, default_value_t = 8)]
    messages: usize,
    /// The daemon's interval, s.
    #[arg(long, default_value_t = 1)]
    interval: u64,
}

#[derive(Debug, clap::Args)]
struct BroadcastArgs {
    /// Port on 127.0.0.1.
    #[arg(long)]
    port: u16,
    /// Seconds between messages.
    #[arg(long, default_value_t = 1)]
    interval: u64,
    /// Bytes per line.
    #[arg(long, default_value_t = 4096)]
    bytes: usize,
    /// Writer threads (1: the one-thread baseline the table compares with).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Send with MSG_ZEROCOPY.
    #[arg(long)]
    zerocopy: bool,
}

#[derive(Debug, clap::Args)]
struct IdleArgs {
    /// The pocketses binary.
    #[arg(long)]
    pocketses: PathBuf,
    /// The daemon's collection interval, s; RSS is read after 3 cycles.
    #[arg(long, default_value_t = 1)]
    interval: u64,
    /// Extra configuration for the daemon (`--set KEY=VALUE`), repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Directory for the daemon's log and state.
    #[arg(long, default_value = "target/bench/idle")]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
struct ScrapeArgs {
    /// The server's HTTP address.
    #[arg(long)]
    addr: SocketAddr,
    /// The server's pid.
    #[arg(long)]
    pid: u32,
    /// Scrapes.
    #[arg(long, default_value_t = 1000)]
    count: usize,
}

#[derive(Debug, Clone, clap::Args)]
struct AllArgs {
    /// The pocketses binary (a release build).
    #[arg(long)]
    pocketses: PathBuf,
    /// node_exporter's binary; the peer rows are left empty without it.
    #[arg(long)]
    node_exporter: Option<PathBuf>,
    /// wrk's binary; the wrk rows are left out without it.
    #[arg(long)]
    wrk: Option<PathBuf>,
    /// The daemon's collection interval, s.
    #[arg(long, default_value_t = 1)]
    interval: u64,
    /// Subscriber counts of the fan-out runs (the first is the one CPU per cycle is reported at).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    subscribers: Vec<usize>,
    /// Repeats of each fan-out run and of the in-process timings.
    #[arg(long, default_value_t = 3)]
    repeats: u32,
    /// Messages measured per fan-out run.
    #[arg(long, default_value_t = 8)]
    messages: usize,
    /// Sequential scrapes per server (bounded by 30 s).
    #[arg(long, default_value_t = 1000)]
    scrapes: usize,
    /// Seconds of each wrk run.
    #[arg(long, default_value_t = 10)]
    wrk_seconds: u64,
    /// Directory for the servers' logs.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.command {
        Cmd::All(args) => all(&args),
        Cmd::Floor(args) => {
            let plan = floor::Plan {
                iters: args.iters,
                repeats: args.repeats,
                max_repeat_time: Duration::from_secs(3),
            };
            print_floor(&floor::floor(plan), &collect::run(plan));
            Ok(())
        }
        Cmd::Fanout(args) => {
            sys::raise_nofile(args.n as u64 + 1024);
            let cfg = fanout::Config {
                addr: args.addr,
                n: args.n,
                messages: args.messages,
                pid: args.pid,
                interval: Duration::from_secs(args.interval),
                connect_timeout: Duration::from_secs(120),
                in_flight: 256,
            };
            fanout::run(&cfg).map(|r| println!("{r:#?}\n{}", r.summary()))
        }
        Cmd::Idle(args) => idle(&args),
        Cmd::Push(args) => push::run(&args),
        Cmd::Smaps { pid } => smaps::report(pid).map(|t| print!("{t}")),
        Cmd::Broadcast(args) => {
            let opts = broadcast::Options { threads: args.threads, zerocopy: args.zerocopy };
            broadcast::serve(args.port, Duration::from_secs(args.interval), args.bytes, opts)
        }
        Cmd::Scrape(args) => {
            scrape::run(args.addr, "/metrics", args.pid, args.count, Duration::from_secs(60))
                .map(|r| println!("{r:#?}"))
        }
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|s| s.trim().to_string()).unwrap_or_default()
}

fn step(what: &str) {
    println!("\n== {what}   [loadavg {}]", loadavg());
}

fn print_floor(f: &floor::FloorReport, c: &collect::CollectReport) {
    println!(
        "{:<28} {:>7} {:>16} {:>16}",
        "operation", "bytes", "cold cpu/wall µs", "warm cpu/wall µs"
    );
    for (path, bytes, cold, warm) in &f.files {
        println!(
            "{:<28} {:>7} {:>7.1} / {:>6.1} {:>7.1} / {:>6.1}",
            path, bytes, cold.cpu_us, cold.wall_us, warm.cpu_us, warm.wall_us
        );
    }
    let (entries, g) = f.getifaddrs;
    println!(
        "{:<28} {:>7} {:>7.1} / {:>6.1}",
        format!("getifaddrs ({entries} entries)"),
        "",
        g.cpu_us,
        g.wall_us
    );
    println!(
        "{:<28} {:>7} {:>7.1} / {:>6.1} {:>7.1} / {:>6.1}",
        "floor: 4 files + getifaddrs",
        "",
        f.floor_cold.cpu_us,
        f.floor_cold.wall_us,
        f.floor_warm.cpu_us,
        f.floor_warm.wall_us
    );
    println!(
        "{:<28} {:>7} {:>7.1} / {:>6.1}",
        "Collector::collect()", "", c.collect.cpu_us, c.collect.wall_us
    );
    println!(
        "{:<28} {:>7} {:>7.1} / {:>6.1}",
        "collect() + json::encode", "", c.collect_json.cpu_us, c.collect_json.wall_us
    );
    println!(
        "{:<28} {:>7} {:>7.1} / {:>6.1}",
        "json::encode", c.json_bytes, c.json.cpu_us, c.json.wall_us
    );
    println!(
        "{:<28} {:>7} {:>7.1} / {:>6.1}",
        "prometheus::encode", c.prometheus_bytes, c.prometheus.cpu_us, c.prometheus.wall_us
    );
    println!(
        "{:<28} {:>7} {:>7.1} / {:>6.1}",
        "legacy::encode", c.legacy_bytes, c.legacy.cpu_us, c.legacy.wall_us
    );
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n    ")
}

/// Waits until the daemon's descriptor count falls back to `baseline` (subscribers cleaned up).
fn wait_fds(pid: u32, baseline: usize, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if sys::fd_count(pid) <= baseline + 2 {
            return true;
        }
        sleep(Duration::from_millis(50));
    }
    false
}

/// One N's fan-out repeats.
struct FanoutSet {
    n: usize,
    runs: Vec<fanout::Report>,
}

impl FanoutSet {
    fn spreads(&self, user: bool) -> Vec<f64> {
        self.runs
            .iter()
            .filter(|r| !r.spreads_kernel_ms.is_empty() && r.duplicate_lines == 0)
            .map(|r| median(if user { &r.spreads_user_ms } else { &r.spreads_kernel_ms }))
            .collect()
    }
    fn worst(&self) -> f64 {
        self.runs
            .iter()
            .filter(|r| r.duplicate_lines == 0)
            .flat_map(|r| r.spreads_kernel_ms.iter().copied())
            .fold(0.0, f64::max)
    }
    /// "median (min–max)" of `values`, or why there is none.
    fn cell(&self, values: &[f64], decimals: usize) -> String {
        if values.is_empty() && self.runs.iter().any(|r| r.duplicate_lines > 0) {
            return "invalid: identical lines".into();
        }
        summary(values, decimals)
    }
    fn cpu(&self) -> Vec<f64> {
        self.runs.iter().filter_map(|r| r.cpu_per_cycle_ms).collect()
    }
    fn rss(&self) -> Vec<f64> {
        self.runs.iter().map(|r| r.rss_kb as f64).filter(|v| *v > 0.0).collect()
    }
    fn ready(&self) -> String {
        let v: Vec<String> = self.runs.iter().map(|r| r.ready.to_string()).collect();
        v.join("/")
    }
}

/// Everything measured in one run.
#[derive(Default)]
struct Results {
    floor: floor::FloorReport,
    collect: collect::CollectReport,
    idle_rss_kb: Option<u64>,
    idle: Option<fanout::Report>,
    fanout: Vec<FanoutSet>,
    baseline_fanout: Vec<FanoutSet>,
    pk_scrape: Option<scrape::Report>,
    pk_wrk: Vec<scrape::WrkReport>,
    pk_exit: Option<String>,
    ne_idle_rss_kb: Option<u64>,
    ne_scrape: Option<scrape::Report>,
    ne_wrk: Vec<scrape::WrkReport>,
    notes: Vec<String>,
}

fn all(args: &AllArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let max_n = args.subscribers.iter().copied().max().unwrap_or(0);
    let nofile = sys::raise_nofile(max_n as u64 + 4096);
    println!("pocketses-bench: RLIMIT_NOFILE {nofile} for this process and the servers it starts");
    let mut res = Results::default();

    step("1. CPU per collection: Collector::collect() vs the floor (in process, this thread's CPU clock)");
    let plan = floor::Plan {
        iters: 5000,
        repeats: args.repeats.max(3),
        max_repeat_time: Duration::from_secs(2),
    };
    res.floor = floor::floor(plan);
    res.collect = collect::run(floor::Plan { iters: 2000, ..plan });
    print_floor(&res.floor, &res.collect);

    daemon_items(args, &mut res);
    baseline_fanout_items(args, &mut res);
    node_exporter_items(args, &mut res);

    println!("\n== table   [loadavg {}]\n", loadavg());
    print!("{}", table(args, &res));
    if !res.notes.is_empty() {
        println!("\nnotes:");
        for n in &res.notes {
            println!("- {n}");
        }
    }
    Ok(())
}

fn daemon_items(args: &AllArgs, res: &mut Results) {
    if let Err(err) = daemon_items_inner(args, res) {
        println!("pocketses daemon items stopped: {err:#}");
        res.notes.push(format!("pocketses daemon items incomplete: {err:#}"));
    }
}

/// A daemon started by the bench, listening on 127.0.0.1.
struct Daemon {
    server: sys::Server,
    pid: u32,
    http: SocketAddr,
    stream: SocketAddrV4,
}

/// Starts `bin daemon` on free loopback ports with its state in `out`, and waits until it listens.
fn start_daemon(
    bin: &Path,
    out: &Path,
    interval: u64,
    max_subscribers: usize,
    sets: &[String],
) -> anyhow::Result<Daemon> {
    start_daemon_env(bin, out, interval, max_subscribers, sets, &[])
}

/// [`start_daemon`] with extra environment variables.
fn start_daemon_env(
    bin: &Path,
    out: &Path,
    interval: u64,
    max_subscribers: usize,
    sets: &[String],
    envs: &[(&str, &str)],
) -> anyhow::Result<Daemon> {
    let port = sys::free_port()?;
    let http_port = sys::free_port()?;
    let log = out.join("pocketses-daemon.log");
    let mut cmd = Command::new(bin);
    cmd.args([
        "daemon",
        "--bind",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--http-port",
        &http_port.to_string(),
    ])
    .args(["--interval", &interval.to_string()])
    .arg("--state-dir")
    .arg(out)
    // The daemon's admission limit (default 10000) must not be what the largest run measures.
    .args(["--max-subscribers", &max_subscribers.to_string()])
    // Every subscriber comes from 127.0.0.1: one source, so its limit (default 64) must go too.
    .args(["--set", &format!("limits.per-source={max_subscribers}")]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    cmd.env("RUST_LOG", "warn");
    // As snapd starts it: a backtrace variable inherited from a developer's shell makes every
    // error (a failed poll each cycle) capture a backtrace, which costs CPU and heap.
    cmd.env_remove("RUST_BACKTRACE").env_remove("RUST_LIB_BACKTRACE");
    cmd.envs(envs.iter().copied());
    println!("starting {cmd:?} (log: {})", log.display());
    let mut server = sys::Server::spawn("pocketses daemon", &mut cmd, &log)?;
    let pid = server.pid();
    let http: SocketAddr = SocketAddr::from((Ipv4Addr::LOCALHOST, http_port));
    let stream = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    if !sys::wait_port(http, Duration::from_secs(20)) {
        let status = server.exited();
        anyhow::bail!(
            "the daemon did not listen on {http} within 20 s (exit: {status:?}); log:\n    {}",
            log_tail(&log)
        );
    }
    Ok(Daemon { server, pid, http, stream })
}

/// Prints the idle daemon's RSS, threads and smaps table; returns its Rss (smaps_rollup), kB.
fn print_idle(pid: u32) -> anyhow::Result<u64> {
    let (vmrss, hwm) = sys::rss_kb(pid)?;
    let (rss, pss) = sys::rss_pss_kb(pid)?;
    let threads = smaps::threads(pid);
    let names: Vec<&str> = threads.iter().map(|t| t.name.as_str()).collect();
    println!(
        "idle (0 subscribers, after 3 cycles): Rss {rss} kB (smaps_rollup), Pss {pss} kB, VmRSS {vmrss} kB, VmHWM {hwm} kB, fds {}, threads {} ({})",
        sys::fd_count(pid),
        threads.len(),
        names.join(", ")
    );
    match smaps::report(pid) {
        Ok(t) => print!("{t}"),
        Err(err) => println!("smaps not read: {err:#}"),
    }
    Ok(rss)
}

fn idle(args: &IdleArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let size = std::fs::metadata(&args.pocketses).map(|m| m.len()).unwrap_or(0);
    println!("binary: {}, {size} bytes", args.pocketses.display());
    let mut d = start_daemon(&args.pocketses, &args.out, args.interval, 10_000, &args.set)?;
    let interval = Duration::from_secs(args.interval);
    sleep(interval * 3 + interval / 2);
    let res = print_idle(d.pid);
    d.server.stop(Duration::from_secs(5));
    res.map(|_| ())
}

fn daemon_items_inner(args: &AllArgs, res: &mut Results) -> anyhow::Result<()> {
    step("2-4. pocketses daemon");
    let interval = Duration::from_secs(args.interval);
    let max_n = args.subscribers.iter().copied().max().unwrap_or(0);
    let d = start_daemon(&args.pocketses, &args.out, args.interval, max_n + 1000, &[])?;
    let Daemon { server: mut daemon, pid, http, stream } = d;
    sleep(interval * 3 + interval / 2);
    res.idle_rss_kb = Some(print_idle(pid)?);

    let base_fds = sys::fd_count(pid);
    let fan = |n: usize, messages: usize| fanout::Config {
        addr: stream,
        n,
        messages,
        pid,
        interval,
        connect_timeout: Duration::from_secs(90),
        in_flight: 256,
    };
    println!("CPU per cycle with 1 subscriber (the cycle clock), 10 cycles:");
    match fanout::run(&fan(1, 11)) {
        Ok(r) => {
            println!(
                "  {:.3} ms per cycle over {} cycles; line {} bytes",
                r.cpu_per_cycle_ms.unwrap_or(f64::NAN),
                r.cycles,
                r.line_bytes
            );
            res.idle = Some(r);
        }
        Err(err) => res.notes.push(format!("idle CPU per cycle not measured: {err:#}")),
    }
    wait_fds(pid, base_fds, Duration::from_secs(10));

    res.fanout = fanout_sets("pocketses", args, &fan, pid, base_fds, &mut res.notes);

    step("4. pocketses GET /metrics");
    match scrape::run(http, "/metrics", pid, args.scrapes, Duration::from_secs(30)) {
        Ok(r) => {
            print_scrape("pocketses", &r);
            res.pk_scrape = Some(r);
        }
        Err(err) => res.notes.push(format!("pocketses scrape failed: {err:#}")),
    }
    run_wrk(
        args,
        &format!("http://{http}/metrics"),
        pid,
        "pocketses",
        &mut res.pk_wrk,
        &mut res.notes,
    );
    let (rss, hwm) = sys::rss_kb(pid).unwrap_or_default();
    println!("pocketses after everything: VmRSS {rss} kB, VmHWM {hwm} kB");

    let exit = daemon.stop(Duration::from_secs(5));
    let text = match exit {
        Some((st, false)) => format!("exited on SIGTERM with {st}"),
        Some((st, true)) => format!("did not exit within 5 s of SIGTERM; killed ({st})"),
        None => "already gone".to_string(),
    };
    println!("pocketses daemon {text}");
    res.pk_exit = Some(text);
    Ok(())
}

/// Runs the fan-out repeats for every N of `args` against one publisher.
fn fanout_sets(
    name: &str,
    args: &AllArgs,
    fan: &dyn Fn(usize, usize) -> fanout::Config,
    pid: u32,
    base_fds: usize,
    notes: &mut Vec<String>,
) -> Vec<FanoutSet> {
    let mut sets = Vec::new();
    for &n in &args.subscribers {
        let mut set = FanoutSet { n, runs: Vec::new() };
        for rep in 1..=args.repeats {
            match fanout::run(&fan(n, args.messages)) {
                Ok(r) => {
                    if r.duplicate_lines > 0 {
                        notes.push(format!(
                            "{name} N={n} run {rep}: {} lines repeated the previous line: messages cannot be told apart, the spreads are not valid",
                            r.duplicate_lines
                        ));
                    }
                    println!(
                        "{name} N={n} run {rep}: ready {}/{} in {:.1} s, errors {} ({}), dropped {}; {} messages, {} incomplete; \
                         spread kernel median {:.3} ms max {:.3}; user median {:.3} ms; read lag {:.3} ms; \
                         CPU/cycle {:.3} ms over {} cycles (user share {}); VmRSS {} kB",
                        r.ready,
                        r.wanted,
                        r.connect_secs,
                        r.connect_errors,
                        r.first_error.as_deref().unwrap_or("-"),
                        r.dropped,
                        r.spreads_kernel_ms.len(),
                        r.incomplete,
                        median(&r.spreads_kernel_ms),
                        min_max(&r.spreads_kernel_ms).1,
                        median(&r.spreads_user_ms),
                        median(&r.read_lag_ms),
                        r.cpu_per_cycle_ms.unwrap_or(f64::NAN),
                        r.cycles,
                        r.user_share.map(|u| format!("{:.0}%", u * 100.0)).unwrap_or_else(|| "n/a".into()),
                        r.rss_kb
                    );
                    set.runs.push(r);
                }
                Err(err) => {
                    println!("{name} N={n} run {rep}: {err:#}");
                    notes.push(format!("{name} fan-out N={n} run {rep} failed: {err:#}"));
                }
            }
            if !wait_fds(pid, base_fds, Duration::from_secs(20)) {
                notes.push(format!(
                    "after N={n} run {rep} {name} still had {} fds (idle: {base_fds})",
                    sys::fd_count(pid)
                ));
            }
        }
        sets.push(set);
    }

    sets
}

fn baseline_fanout_items(args: &AllArgs, res: &mut Results) {
    if let Err(err) = baseline_fanout_inner(args, res) {
        println!("fan-out baseline stopped: {err:#}");
        res.notes.push(format!("fan-out baseline incomplete: {err:#}"));
    }
}

fn baseline_fanout_inner(args: &AllArgs, res: &mut Results) -> anyhow::Result<()> {
    step("2. fan-out baseline: one thread, blocking write of each line to every subscriber (same client)");
    let bytes = res.idle.as_ref().map(|r| r.line_bytes).filter(|b| *b > 0).unwrap_or(4096);
    let port = sys::free_port()?;
    let exe = std::env::current_exe().context("cannot find the bench program")?;
    let log = args.out.join("fanout-baseline.log");
    let mut cmd = Command::new(exe);
    cmd.args(["broadcast", "--port", &port.to_string(), "--interval", &args.interval.to_string()])
        .args(["--bytes", &bytes.to_string()]);
    println!("starting {cmd:?} (lines of {bytes} bytes, as the daemon's)");
    let mut server = sys::Server::spawn("fan-out baseline", &mut cmd, &log)?;
    let pid = server.pid();
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    if !sys::wait_port(SocketAddr::V4(addr), Duration::from_secs(10)) {
        anyhow::bail!(
            "the baseline publisher did not listen on {addr}; log:\n    {}",
            log_tail(&log)
        );
    }
    // wait_port's probe connection is a subscriber until the next write finds it closed.
    sleep(Duration::from_secs(args.interval) * 2);
    let base_fds = sys::fd_count(pid);
    let interval = Duration::from_secs(args.interval);
    let fan = |n: usize, messages: usize| fanout::Config {
        addr,
        n,
        messages,
        pid,
        interval,
        connect_timeout: Duration::from_secs(90),
        in_flight: 256,
    };
    res.baseline_fanout = fanout_sets("baseline", args, &fan, pid, base_fds, &mut res.notes);
    server.stop(Duration::from_secs(2));
    Ok(())
}

fn print_scrape(name: &str, r: &scrape::Report) {
    println!(
        "{name}: {} sequential scrapes (keep-alive, {} connection(s)) in {:.2} s = {:.1}/s; p50 {:.3} ms p99 {:.3} ms; \
         server CPU {:.3} ms/scrape; body {} B, {} samples, {} families; VmRSS after {} kB",
        r.scrapes,
        r.connections,
        r.secs,
        r.rate(),
        r.p50_ms,
        r.p99_ms,
        r.cpu_per_scrape_ms,
        r.body_bytes,
        r.samples,
        r.families,
        r.rss_kb
    );
}

fn run_wrk(
    args: &AllArgs,
    url: &str,
    pid: u32,
    name: &str,
    out: &mut Vec<scrape::WrkReport>,
    notes: &mut Vec<String>,
) {
    let Some(wrk) = &args.wrk else { return };
    for c in [1, 16] {
        match scrape::wrk(wrk, url, pid, c, args.wrk_seconds) {
            Ok(r) => {
                println!(
                    "{name}: wrk c={c} {} s: {} requests, {:.1}/s, p50 {:.3} ms p99 {:.3} ms, errors {}, server CPU {:.3} ms/scrape",
                    args.wrk_seconds, r.requests, r.rps, r.p50_ms, r.p99_ms, r.errors, r.cpu_per_scrape_ms
                );
                out.push(r);
            }
            Err(err) => notes.push(format!("{name}: wrk c={c} failed: {err:#}")),
        }
    }
}

fn node_exporter_items(args: &AllArgs, res: &mut Results) {
    let Some(bin) = &args.node_exporter else {
        res.notes.push("node_exporter not given: its rows are empty".into());
        return;
    };
    if let Err(err) = node_exporter_inner(args, bin, res) {
        println!("node_exporter items stopped: {err:#}");
        res.notes.push(format!("node_exporter items incomplete: {err:#}"));
    }
}

fn node_exporter_inner(args: &AllArgs, bin: &Path, res: &mut Results) -> anyhow::Result<()> {
    step("3-4. node_exporter (peer)");
    let port = sys::free_port()?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let log = args.out.join("node-exporter.log");
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--web.listen-address={addr}"));
    println!("starting {cmd:?} (log: {})", log.display());
    let mut ne = sys::Server::spawn("node_exporter", &mut cmd, &log)?;
    let pid = ne.pid();
    if !sys::wait_port(addr, Duration::from_secs(20)) {
        anyhow::bail!(
            "node_exporter did not listen on {addr} within 20 s; log:\n    {}",
            log_tail(&log)
        );
    }
    sleep(Duration::from_secs(3));
    let (rss, pss) = sys::rss_pss_kb(pid)?;
    let (vmrss, _) = sys::rss_kb(pid)?;
    println!(
        "node_exporter idle (3 s after start, 0 scrapes): Rss {rss} kB (smaps_rollup), Pss {pss} kB, VmRSS {vmrss} kB"
    );
    res.ne_idle_rss_kb = Some(rss);
    match scrape::run(addr, "/metrics", pid, args.scrapes, Duration::from_secs(30)) {
        Ok(r) => {
            print_scrape("node_exporter", &r);
            res.ne_scrape = Some(r);
        }
        Err(err) => res.notes.push(format!("node_exporter scrape failed: {err:#}")),
    }
    run_wrk(
        args,
        &format!("http://{addr}/metrics"),
        pid,
        "node_exporter",
        &mut res.ne_wrk,
        &mut res.notes,
    );
    ne.stop(Duration::from_secs(5));
    Ok(())
}

/// A ratio cell: "a / b" as "0.12×", or "–" when either is missing.
fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 && a.is_finite() && a > 0.0 && a / b < 0.1 => {
            format!("{:.4}× (1/{:.0})", a / b, b / a)
        }
        (Some(a), Some(b)) if b > 0.0 && a.is_finite() => format!("{:.2}×", a / b),
        _ => "–".into(),
    }
}

fn met(value: Option<f64>, limit: f64) -> &'static str {
    match value {
        Some(v) if v.is_finite() && v <= limit => "yes",
        Some(v) if v.is_finite() => "**no**",
        _ => "–",
    }
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map(|v| format!("{v:.decimals$}")).unwrap_or_else(|| "–".into())
}

fn table(args: &AllArgs, res: &Results) -> String {
    let mut t = String::new();
    let m = "measured";
    let a = "anchor, not measured in this run";
    let _ = writeln!(
        t,
        "| # | metric | pocketses | peer | peer figure is | pocketses / peer | target | met |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|---|");
    let mut row = |item: &str,
                   metric: &str,
                   ours: String,
                   peer: String,
                   kind: &str,
                   r: String,
                   target: &str,
                   ok: &str| {
        let _ =
            writeln!(t, "| {item} | {metric} | {ours} | {peer} | {kind} | {r} | {target} | {ok} |");
    };

    // 1. collection
    let collect_us = res.collect.collect.cpu_us;
    let floor_cold = res.floor.floor_cold.cpu_us;
    let floor_warm = res.floor.floor_warm.cpu_us;
    row(
        "1",
        "CPU per collection, `Collector::collect()`, µs",
        format!("{collect_us:.1}"),
        format!("floor (4 files cold + getifaddrs) {floor_cold:.1}"),
        m,
        ratio(Some(collect_us), Some(floor_cold)),
        "≤ 2× floor",
        met(Some(collect_us / floor_cold), 2.0),
    );
    row(
        "1",
        "same, against the warm floor (files kept open), µs",
        format!("{collect_us:.1}"),
        format!("floor (4 files pread + getifaddrs) {floor_warm:.1}"),
        m,
        ratio(Some(collect_us), Some(floor_warm)),
        "–",
        "–",
    );
    let cj = res.collect.collect_json.cpu_us;
    row(
        "1",
        "collect() + JSON encode, µs",
        format!("{cj:.1}"),
        format!("original pocketses, psutil + json.dumps {:.0}", anchor::ORIG_COLLECT_MS * 1e3),
        a,
        ratio(Some(cj), Some(anchor::ORIG_COLLECT_MS * 1e3)),
        "–",
        "–",
    );

    // 2. fan-out
    let idle_cpu = res.idle.as_ref().and_then(|r| r.cpu_per_cycle_ms);
    row(
        "2",
        "daemon CPU per cycle, idle (1 subscriber as the cycle clock), ms",
        opt(idle_cpu, 3),
        format!("original, 0 subscribers {:.2}", anchor::ORIG_CPU_CYCLE_IDLE_MS),
        a,
        ratio(idle_cpu, Some(anchor::ORIG_CPU_CYCLE_IDLE_MS)),
        "–",
        "–",
    );
    for set in &res.fanout {
        let spreads = set.spreads(false);
        let s = (!spreads.is_empty()).then(|| median(&spreads));
        let (peer, peer_value, kind) = match set.n {
            1000 => (
                format!("original {:.1}", anchor::ORIG_SPREAD_1000_MS),
                Some(anchor::ORIG_SPREAD_1000_MS),
                a,
            ),
            10000 => (format!("original at N=5000: {:.0}", anchor::ORIG_SPREAD_5000_MS), None, a),
            _ => ("–".to_string(), None, "–"),
        };
        let target = match set.n {
            1000 => Some(3.0),
            10000 => Some(10.0),
            _ => None,
        };
        row(
            "2",
            &format!(
                "fan-out spread first→last, N={}, kernel stamps, ms (runs: {}, connected: {}, worst message: {:.2})",
                set.n,
                spreads.len(),
                set.ready(),
                set.worst()
            ),
            set.cell(&spreads, 3),
            peer,
            kind,
            ratio(s, peer_value),
            &target.map(|v| format!("≤ {v} ms")).unwrap_or_else(|| "–".into()),
            target.map(|v| met(s, v)).unwrap_or("–"),
        );
        if let Some(base) = res.baseline_fanout.iter().find(|f| f.n == set.n) {
            let fs = base.spreads(false);
            let f = (!fs.is_empty()).then(|| median(&fs));
            row(
                "2",
                &format!(
                    "same, against a baseline publisher (one thread, blocking write loop), N={}, ms",
                    set.n
                ),
                set.cell(&spreads, 3),
                format!("baseline {}", base.cell(&fs, 3)),
                m,
                ratio(s, f),
                "–",
                "–",
            );
        }
        let user = set.spreads(true);
        let u = (!user.is_empty()).then(|| median(&user));
        let (peer, pv, kind) = if set.n == 1000 {
            (
                format!("original {:.1}", anchor::ORIG_USER_SPREAD_1000_MS),
                Some(anchor::ORIG_USER_SPREAD_1000_MS),
                a,
            )
        } else {
            ("–".into(), None, "–")
        };
        row(
            "2",
            &format!(
                "same, user-space read times (one epoll thread drains all N), N={}, ms",
                set.n
            ),
            set.cell(&user, 3),
            peer,
            kind,
            ratio(u, pv),
            "–",
            "–",
        );
    }
    for set in &res.fanout {
        if let Some(base) = res.baseline_fanout.iter().find(|f| f.n == set.n) {
            let cpu = set.cpu();
            let fc = base.cpu();
            let c = (!cpu.is_empty()).then(|| median(&cpu));
            let f = (!fc.is_empty()).then(|| median(&fc));
            row(
                "2",
                &format!(
                    "CPU per cycle, {} subscribers, against the baseline publisher, ms",
                    set.n
                ),
                summary(&cpu, 3),
                format!("baseline {}", summary(&fc, 3)),
                m,
                ratio(c, f),
                "–",
                "–",
            );
        }
        let cpu = set.cpu();
        let c = (!cpu.is_empty()).then(|| median(&cpu));
        let (peer, pv, kind) = if set.n == 1000 {
            (
                format!("original {:.1}", anchor::ORIG_CPU_CYCLE_1000_MS),
                Some(anchor::ORIG_CPU_CYCLE_1000_MS),
                a,
            )
        } else {
            ("–".into(), None, "–")
        };
        row(
            "2",
            &format!("daemon CPU per cycle, {} subscribers, ms", set.n),
            summary(&cpu, 3),
            peer,
            kind,
            ratio(c, pv),
            "–",
            "–",
        );
    }

    // 3. RSS
    let idle = res.idle_rss_kb.map(|v| v as f64);
    let ne_idle = res.ne_idle_rss_kb.map(|v| v as f64);
    row(
        "3",
        "idle RSS (0 subscribers, after 3 cycles), kB",
        opt(idle, 0),
        format!("node_exporter idle {}", opt(ne_idle, 0)),
        m,
        ratio(idle, ne_idle),
        "≤ 5 MB",
        met(idle, 5.0 * 1024.0),
    );
    row(
        "3",
        "same, against the original",
        opt(idle, 0),
        format!("original {:.0}", anchor::ORIG_IDLE_RSS_KB),
        a,
        ratio(idle, Some(anchor::ORIG_IDLE_RSS_KB)),
        "–",
        "–",
    );
    for set in &res.fanout {
        let rss = set.rss();
        let per: Vec<f64> =
            idle.map(|i| rss.iter().map(|r| (r - i) / set.n as f64).collect()).unwrap_or_default();
        let p = (!per.is_empty()).then(|| median(&per));
        row(
            "3",
            &format!("RSS with {} subscribers, kB → kB per subscriber over idle", set.n),
            format!("{} → {}", summary(&rss, 0), summary(&per, 2)),
            format!("original {:.1} kB/subscriber at N=1000", anchor::ORIG_KB_PER_SUB),
            a,
            ratio(p, Some(anchor::ORIG_KB_PER_SUB)),
            "≤ 2 KB/subscriber",
            met(p, 2.0),
        );
    }

    // 4. /metrics
    let pk = res.pk_scrape.as_ref();
    let ne = res.ne_scrape.as_ref();
    let pk_cpu = pk.map(|r| r.cpu_per_scrape_ms);
    let ne_cpu = ne.map(|r| r.cpu_per_scrape_ms);
    let ratio_cpu = match (pk_cpu, ne_cpu) {
        (Some(p), Some(n)) if n > 0.0 => Some(p / n),
        _ => None,
    };
    row(
        "4",
        &format!("server CPU per scrape, {} sequential keep-alive scrapes, ms", args.scrapes),
        opt(pk_cpu, 3),
        format!(
            "node_exporter {} (anchor: {:.2} with wrk c=1)",
            opt(ne_cpu, 3),
            anchor::NE_CPU_PER_SCRAPE_MS
        ),
        m,
        ratio(pk_cpu, ne_cpu),
        "≤ 0.1× node_exporter",
        met(ratio_cpu, 0.1),
    );
    row(
        "4",
        "sequential scrapes/s (p50 / p99 latency, ms)",
        pk.map(|r| format!("{:.0} ({:.2} / {:.2})", r.rate(), r.p50_ms, r.p99_ms))
            .unwrap_or_else(|| "–".into()),
        ne.map(|r| format!("{:.0} ({:.2} / {:.2})", r.rate(), r.p50_ms, r.p99_ms))
            .unwrap_or_else(|| "–".into()),
        m,
        ratio(pk.map(scrape::Report::rate), ne.map(scrape::Report::rate)),
        "–",
        "–",
    );
    for c in [1usize, 16] {
        let p = res.pk_wrk.iter().find(|r| r.connections == c);
        let n = res.ne_wrk.iter().find(|r| r.connections == c);
        if p.is_none() && n.is_none() {
            continue;
        }
        let cell = |r: Option<&scrape::WrkReport>| {
            r.map(|r| {
                format!(
                    "{:.0}/s, p50 {:.2} p99 {:.2}, CPU {:.3}",
                    r.rps, r.p50_ms, r.p99_ms, r.cpu_per_scrape_ms
                )
            })
            .unwrap_or_else(|| "–".into())
        };
        row(
            "4",
            &format!(
                "wrk c={c}, {} s: scrapes/s, latency ms, server CPU ms/scrape",
                args.wrk_seconds
            ),
            cell(p),
            cell(n),
            m,
            format!(
                "rps {}, CPU {}",
                ratio(p.map(|r| r.rps), n.map(|r| r.rps)),
                ratio(p.map(|r| r.cpu_per_scrape_ms), n.map(|r| r.cpu_per_scrape_ms))
            ),
            "–",
            "–",
        );
    }
    row(
        "4",
        "one scrape: bytes / samples / families",
        pk.map(|r| format!("{} / {} / {}", r.body_bytes, r.samples, r.families))
            .unwrap_or_else(|| "–".into()),
        ne.map(|r| format!("{} / {} / {}", r.body_bytes, r.samples, r.families))
            .unwrap_or_else(|| "–".into()),
        m,
        ratio(pk.map(|r| r.body_bytes as f64), ne.map(|r| r.body_bytes as f64)),
        "–",
        "–",
    );
    // 5. binary size, both read from the files run in this run
    let size = |p: Option<&Path>| {
        p.and_then(|p| std::fs::metadata(p).ok()).map(|m| m.len() as f64).filter(|v| *v > 0.0)
    };
    let pk_size = size(Some(args.pocketses.as_path()));
    let ne_size = size(args.node_exporter.as_deref());
    let size_ratio = match (pk_size, ne_size) {
        (Some(p), Some(n)) => Some(p / n),
        _ => None,
    };
    row(
        "5",
        "binary size as run (stripped), bytes",
        opt(pk_size, 0),
        format!("node_exporter {}", opt(ne_size, 0)),
        m,
        ratio(pk_size, ne_size),
        "≤ 1/3 of node_exporter",
        met(size_ratio, 1.0 / 3.0),
    );
    if let Some(exit) = &res.pk_exit {
        let _ = writeln!(t, "\npocketses daemon {exit}.");
    }
    t
}
