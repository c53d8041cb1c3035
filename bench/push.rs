//! Push against vmagent (issue 10, "Performance") and the daemon with every feature configured
//! (issue 14): `pocketses-bench push`, run by `bench/run` after `all`.
//!
//! Five sections, each its own function, all against one VictoriaMetrics started here:
//! - [`full_idle`]: the daemon's RSS with two push sinks, the fleet client, checks and a TLS
//!   listener configured (and the smaps table);
//! - [`outage`]: pocketses (two sinks, `--interval 1`) and vmagent (scraping pocketses' `/metrics`
//!   every 10 s, remote-writing to the same store) side by side while the store is stopped until
//!   pocketses has spooled the backlog; both processes' RSS with it, disk bytes per spooled point;
//!   then the store comes back: replay time of each; then a steady window: CPU per pushed sample,
//!   also less a daemon without sinks beside it, and like for like (a daemon with one prometheus
//!   sink only, less that daemon without sinks);
//! - [`spool_append`]: the spool's append rate in points/s, one `fdatasync` per snapshot as the
//!   sinks append, and per batch of `--append-batch` snapshots as a replay or a hub appends, in
//!   process;
//! - [`stages`]: the CPU of each step a sink takes for one snapshot (encode, append, peek, body,
//!   send, acknowledge), this thread's CPU clock, in process;
//! - [`hub_ingest`]: a hub with many spokes posting documents to `/v1/ingest` at once: the
//!   points its sink spools per second with group commit, and the `fdatasync`s they took.
//!
//! A benchmark: it prints figures and asserts nothing about time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use base64::Engine as _;

use crate::sys;

/// What `pocketses-bench push` is given.
#[derive(Debug, Clone, clap::Args)]
pub struct PushArgs {
    /// The pocketses binary (a release build).
    #[arg(long)]
    pub pocketses: PathBuf,
    /// VictoriaMetrics' binary (Debian's victoria-metrics, as .ci/install.d/stores.sh extracts it).
    #[arg(
        long,
        default_value = "/var/cache/pocketses-ci/victoria-metrics/usr/bin/victoria-metrics"
    )]
    pub victoria_metrics: PathBuf,
    /// vmagent's binary (same package).
    #[arg(long, default_value = "/var/cache/pocketses-ci/victoria-metrics/usr/bin/vmagent")]
    pub vmagent: PathBuf,
    /// The fleet server the fully configured daemon points at (gooseBit); without it, a
    /// loopback port nobody listens on.
    #[arg(long)]
    pub fleet_url: Option<String>,
    /// node_exporter's binary: its idle RSS (3 s after start, as `all` reads it) is what row A's
    /// every-feature idle RSS is compared with; without it the row has no ratio.
    #[arg(long)]
    pub node_exporter: Option<PathBuf>,
    /// Snapshots of backlog spooled at `--interval 1` while the store is stopped (360: an hour at 10 s).
    #[arg(long, default_value_t = 360)]
    pub backlog: u64,
    /// Seconds of the steady window after the replay (CPU per pushed sample).
    #[arg(long, default_value_t = 60)]
    pub steady: u64,
    /// Appends of the in-process spool measurement.
    #[arg(long, default_value_t = 2000)]
    pub appends: u64,
    /// Snapshots per `append_batch` in the batched append measurement.
    #[arg(long, default_value_t = 60)]
    pub append_batch: u64,
    /// Rounds of the per-step CPU measurement (D).
    #[arg(long, default_value_t = 300)]
    pub stage_rounds: u64,
    /// Cycles (at `--interval 1`) before section A's steady-state reading, as it is and with
    /// the history ring full.
    #[arg(long, default_value_t = 100)]
    pub full_cycles: u64,
    /// Spokes posting to the hub at once (E), one thread each.
    #[arg(long, default_value_t = 32)]
    pub spokes: usize,
    /// Documents per `POST /v1/ingest` (E): a spoke's json sink sends a batch after an outage.
    #[arg(long, default_value_t = 10)]
    pub ingest_batch: usize,
    /// Seconds the spokes post (E).
    #[arg(long, default_value_t = 10)]
    pub ingest_seconds: u64,
    /// Sections to run: full (A), outage (B), append (C), stages (D), hub (E).
    #[arg(long, value_delimiter = ',', default_value = "full,outage,append,stages,hub")]
    pub parts: Vec<String>,
    /// Directory for the servers' logs, state and spools (on the disk whose fsync is measured).
    #[arg(long, default_value = "target/bench/push")]
    pub out: PathBuf,
}

/// The figures of the three sections.
#[derive(Debug, Default)]
struct Results {
    full_rss_kb: Option<u64>,
    full_rss_later_kb: Option<u64>,
    full_pss_kb: Option<u64>,
    full_cycles: Option<u64>,
    full_rss_steady_kb: Option<u64>,
    full_rss_ring_kb: Option<u64>,
    full_pss_ring_kb: Option<u64>,
    ne_idle_rss_kb: Option<u64>,
    pk_backlog_rss_kb: Option<u64>,
    va_backlog_rss_kb: Option<u64>,
    pk_steady_rss_kb: Option<u64>,
    va_steady_rss_kb: Option<u64>,
    backlog_records: Option<f64>,
    backlog_points: Option<f64>,
    spool_disk_bytes: Option<u64>,
    va_queue_bytes: Option<f64>,
    va_backlog_rows: Option<f64>,
    pk_first_send_s: Option<f64>,
    pk_replay_s: Option<f64>,
    pk_replay_points: Option<f64>,
    pk_replay_cpu_ms: Option<f64>,
    va_replay_s: Option<f64>,
    /// Per sink: (name, first send after the store's restart s, replay s from its own first send
    /// until its own backlog is drained, points sent in that time).
    sink_replays: Vec<(String, f64, f64, f64)>,
    pk_cpu_per_sample_us: Option<f64>,
    /// A daemon without sinks at the same interval in the same window: its CPU over the same
    /// samples (collection and the runtime, what pushing does not cost).
    bare_cpu_per_sample_us: Option<f64>,
    va_cpu_per_sample_us: Option<f64>,
    /// The like-for-like daemon: one prometheus sink, nobody scraping it; its whole CPU over
    /// its sink's samples in the same window.
    one_cpu_per_sample_us: Option<f64>,
    /// The daemon without sinks' CPU over the one-sink daemon's samples.
    one_bare_cpu_per_sample_us: Option<f64>,
    one_steady_samples: Option<f64>,
    pk_steady_samples: Option<f64>,
    va_steady_samples: Option<f64>,
    append: Option<AppendReport>,
    stages: Vec<StageReport>,
    hub: Option<HubReport>,
    notes: Vec<String>,
}

/// The CPU of each step of a sink for one snapshot, µs (thread CPU, user + system).
#[derive(Debug, Clone)]
struct StageReport {
    format: &'static str,
    rounds: u64,
    sent: u64,
    record_us: f64,
    append_us: f64,
    peek_us: f64,
    body_us: f64,
    send_us: f64,
    ack_us: f64,
}

/// What a hub took from many spokes at once (E).
#[derive(Debug, Clone)]
struct HubReport {
    spokes: usize,
    batch: usize,
    seconds: f64,
    posts_ok: u64,
    posts_failed: u64,
    records: f64,
    points: f64,
    appends: f64,
    missed: f64,
    cpu_s: f64,
}

/// The in-process append figures.
#[derive(Debug, Clone)]
struct AppendReport {
    appends: u64,
    points_per_record: BTreeMap<&'static str, usize>,
    record_bytes: BTreeMap<&'static str, usize>,
    us_per_append: f64,
    points_per_s: f64,
    disk_bytes_per_point: f64,
    /// Batches of `--append-batch` snapshots per `fdatasync`: points/s.
    batched_points_per_s: f64,
    batch: u64,
}

/// Runs the three sections and prints their table.
///
/// # Errors
/// When the store's or vmagent's binary is missing or the out directory cannot be made.
pub fn run(args: &PushArgs) -> anyhow::Result<()> {
    for (what, bin) in [("VictoriaMetrics", &args.victoria_metrics), ("vmagent", &args.vmagent)] {
        if !bin.is_file() {
            anyhow::bail!(
                "{what} is missing at {}: run .ci/install.d/stores.sh (Debian's victoria-metrics)",
                bin.display()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&args.out);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut res = Results::default();
    let mut store = Store::start(args, &args.out.join("vm"))?;
    let part = |name: &str| args.parts.iter().any(|p| p == name);
    crate::step("push A. the daemon with every feature configured");
    if !part("full") {
        println!("skipped");
    } else if let Err(err) = full_idle(args, &store, &mut res) {
        println!("full-feature idle stopped: {err:#}");
        res.notes.push(format!("full-feature idle RSS not measured: {err:#}"));
    }
    crate::step("push B. an outage: pocketses and vmagent against VictoriaMetrics");
    if !part("outage") {
        println!("skipped");
    } else if let Err(err) = outage(args, &mut store, &mut res) {
        println!("outage stopped: {err:#}");
        res.notes.push(format!("outage figures incomplete: {err:#}"));
    }
    crate::step("push D. CPU of each step of a sink, in process");
    if part("stages") {
        match stages(args, &store) {
            Ok(r) => res.stages = r,
            Err(err) => res.notes.push(format!("steps not measured: {err:#}")),
        }
    }
    store.server.stop(Duration::from_secs(10));
    crate::step("push E. a hub: many spokes posting documents at once");
    if part("hub") {
        match hub_ingest(args) {
            Ok(r) => res.hub = Some(r),
            Err(err) => res.notes.push(format!("hub ingest not measured: {err:#}")),
        }
    }
    crate::step("push C. spool append rate, in process");
    if part("append") {
        match spool_append(args) {
            Ok(r) => res.append = Some(r),
            Err(err) => res.notes.push(format!("spool append not measured: {err:#}")),
        }
    }
    crate::step("push: results");
    print!("{}", table(args, &res));
    for n in &res.notes {
        println!("note: {n}");
    }
    Ok(())
}

/// VictoriaMetrics on a free loopback port with its data in `dir`; restartable on the same data.
struct Store {
    server: sys::Server,
    port: u16,
    dir: PathBuf,
    bin: PathBuf,
    starts: u32,
}

impl Store {
    fn start(args: &PushArgs, dir: &Path) -> anyhow::Result<Store> {
        let port = sys::free_port()?;
        let server = Self::spawn(&args.victoria_metrics, dir, port, 0)?;
        Ok(Store {
            server,
            port,
            dir: dir.to_path_buf(),
            bin: args.victoria_metrics.clone(),
            starts: 1,
        })
    }

    fn spawn(bin: &Path, dir: &Path, port: u16, n: u32) -> anyhow::Result<sys::Server> {
        std::fs::create_dir_all(dir)?;
        let mut cmd = Command::new(bin);
        cmd.arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!("-storageDataPath={}", dir.join("data").display()))
            .arg("-search.latencyOffset=0s");
        let log = dir.join(format!("victoria-metrics-{n}.log"));
        let server = sys::Server::spawn("victoria-metrics", &mut cmd, &log)?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        if !sys::wait_port(addr, Duration::from_secs(30)) {
            anyhow::bail!(
                "VictoriaMetrics did not listen on {addr} within 30 s ({})",
                log.display()
            );
        }
        Ok(server)
    }

    fn stop(&mut self) {
        self.server.stop(Duration::from_secs(10));
    }

    fn restart(&mut self) -> anyhow::Result<()> {
        self.server = Self::spawn(&self.bin, &self.dir, self.port, self.starts)?;
        self.starts += 1;
        Ok(())
    }

    fn sink_sets(&self) -> Vec<String> {
        let p = self.port;
        vec![
            format!("push.vm.url=http://127.0.0.1:{p}/api/v1/write"),
            "push.vm.format=prometheus".into(),
            format!("push.influx.url=http://127.0.0.1:{p}/write?db=pocketses"),
            "push.influx.format=influx".into(),
        ]
    }
}

/// A self-signed certificate and key for the TLS listener; an ed25519 public key for the fleet.
/// Also gives the certificate (DER), which [`metrics_tls`] trusts to read `/metrics`.
fn feature_sets(
    args: &PushArgs,
    store: &Store,
    dir: &Path,
) -> anyhow::Result<(Vec<String>, Vec<u8>)> {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .context("cannot make a certificate")?;
    // Absolute: the daemon reads relative paths in its state directory ($SNAP_COMMON).
    let dir = &std::path::absolute(dir)?;
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem())?;
    std::fs::write(&key_path, cert.signing_key.serialize_pem())?;
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]).verifying_key();
    let trusted = base64::engine::general_purpose::STANDARD.encode(key.to_bytes());
    let fleet_url = match &args.fleet_url {
        Some(url) => url.clone(),
        None => format!("http://127.0.0.1:{}", sys::free_port()?),
    };
    let mut sets = store.sink_sets();
    sets.extend([
        format!("tls.cert={}", cert_path.display()),
        format!("tls.key={}", key_path.display()),
        format!("fleet.url={fleet_url}"),
        "fleet.controller-id=pocketses-bench".into(),
        format!("fleet.trusted-keys={trusted}"),
        "fleet.enabled=true".into(),
        // Every built-in check runs unless disabled; two get thresholds of their own.
        "checks.cpu.warn=85".into(),
        "checks.memory.crit=95".into(),
        // Hub mode: ingest on, one spoke polled every cycle (a loopback port nobody listens on:
        // each poll fails and is retried at the next, the most the poller does).
        "hub.ingest=true".into(),
        format!("hub.spokes=http://127.0.0.1:{}", sys::free_port()?),
    ]);
    Ok((sets, cert.cert.der().to_vec()))
}

/// Section A: idle RSS with two sinks, the fleet client, checks and TLS configured, after 3 and
/// 23 cycles, and in the steady state: after `--full-cycles` cycles (100), both as it is and with
/// the dashboard's history ring full. The ring keeps an hour (3,600 points at `--interval 1`);
/// rather than run for an hour, a second daemon started at the same moment is given
/// `POCKETSES_BENCH_HISTORY=3600`, which fills its ring with as many points at its first
/// snapshot, through the ring's own `push` (the same capacity, the same allocations).
fn full_idle(args: &PushArgs, store: &Store, res: &mut Results) -> anyhow::Result<()> {
    let dir = args.out.join("full");
    let ring_dir = args.out.join("full-ring");
    std::fs::create_dir_all(&dir)?;
    std::fs::create_dir_all(&ring_dir)?;
    let (sets, cert) = feature_sets(args, store, &dir)?;
    let (ring_sets, ring_cert) = feature_sets(args, store, &ring_dir)?;
    // Its own copy of the binary: the start's page-out (daemon::release_startup_pages) leaves
    // alone the pages another process maps, so two daemons of one file would both keep them.
    let ring_bin = ring_dir.join("pocketses");
    std::fs::copy(&args.pocketses, &ring_bin)
        .with_context(|| format!("cannot copy {}", args.pocketses.display()))?;
    // Written back, so that its pages are clean, as the installed binary's are.
    // SAFETY: sync takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let mut d = crate::start_daemon(&args.pocketses, &dir, 1, 10_000, &sets)?;
    let t0 = Instant::now();
    let ring_fill = MAX_HISTORY.to_string();
    let mut ring = crate::start_daemon_env(
        &ring_bin,
        &ring_dir,
        1,
        10_000,
        &ring_sets,
        &[("POCKETSES_BENCH_HISTORY", &ring_fill)],
    )?;
    let at = |secs: f64| {
        let left = Duration::from_secs_f64(secs).saturating_sub(t0.elapsed());
        sleep(left);
    };
    at(3.5);
    let (rss, pss) = sys::rss_pss_kb(d.pid)?;
    let (vmrss, hwm) = sys::rss_kb(d.pid)?;
    println!(
        "every feature configured, after 3 cycles: Rss {rss} kB, Pss {pss} kB (smaps_rollup); VmRSS {vmrss} kB, VmHWM {hwm} kB"
    );
    match crate::smaps::report(d.pid) {
        Ok(t) => print!("{t}"),
        Err(err) => println!("smaps not read: {err:#}"),
    }
    res.full_rss_kb = Some(rss);
    at(23.5);
    let (later, later_pss) = sys::rss_pss_kb(d.pid)?;
    println!("same, after 23 cycles: Rss {later} kB, Pss {later_pss} kB");
    res.full_pss_kb = Some(later_pss);
    res.full_rss_later_kb = Some(later);
    let cycles = args.full_cycles.max(24);
    at(cycles as f64 + 3.5);
    let (steady, steady_pss) = sys::rss_pss_kb(d.pid)?;
    let (full, full_pss) = sys::rss_pss_kb(ring.pid)?;
    println!("same, after {cycles} cycles: Rss {steady} kB, Pss {steady_pss} kB");
    println!(
        "same, after {cycles} cycles with the history ring full ({MAX_HISTORY} points): Rss {full} kB, Pss {full_pss} kB"
    );
    match crate::smaps::report(ring.pid) {
        Ok(t) => print!("{t}"),
        Err(err) => println!("smaps not read: {err:#}"),
    }
    res.full_cycles = Some(cycles);
    res.full_rss_steady_kb = Some(steady);
    res.full_rss_ring_kb = Some(full);
    res.full_pss_ring_kb = Some(full_pss);
    // TLS is on for both listeners: `/metrics` is read over TLS, trusting the certificate made above.
    let m = metrics_tls(d.http, &cert)?;
    println!(
        "sinks: sent points vm {}, influx {}; backlog {} + {} records",
        m.get(&["pocketses_push_sent_points_total", "vm"]).unwrap_or(-1.0),
        m.get(&["pocketses_push_sent_points_total", "influx"]).unwrap_or(-1.0),
        m.get(&["pocketses_push_backlog_records", "vm"]).unwrap_or(-1.0),
        m.get(&["pocketses_push_backlog_records", "influx"]).unwrap_or(-1.0),
    );
    let points = history_points(ring.http, &ring_cert).unwrap_or(0);
    println!("history ring of the second daemon: {points} points in /v1/history");
    if points < MAX_HISTORY {
        res.notes.push(format!(
            "the ring-full daemon's history held {points} points, not {MAX_HISTORY}: row A (ring full) is not what it says"
        ));
    }
    d.server.stop(Duration::from_secs(5));
    ring.server.stop(Duration::from_secs(5));
    if let Some(ne) = &args.node_exporter {
        match node_exporter_idle(ne, &dir) {
            Ok(rss) => res.ne_idle_rss_kb = Some(rss),
            Err(err) => res.notes.push(format!("node_exporter's idle RSS not measured: {err:#}")),
        }
    }
    Ok(())
}

/// The history ring's size at `--interval 1`: an hour, one point a second (`history::MAX_POINTS`).
const MAX_HISTORY: usize = 3600;

/// How many points `GET /v1/history` holds (the length of its `t` array), over TLS.
fn history_points(addr: SocketAddr, cert: &[u8]) -> anyhow::Result<usize> {
    let raw = tls_get(addr, cert, b"GET /v1/history HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(body).context("cannot parse /v1/history")?;
    Ok(v["t"].as_array().map_or(0, Vec::len))
}

/// node_exporter's idle `Rss` (smaps_rollup), kB, 3 s after start before any scrape, as `all`
/// reads it: the figure row A is compared with.
fn node_exporter_idle(bin: &Path, dir: &Path) -> anyhow::Result<u64> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, sys::free_port()?));
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--web.listen-address={addr}"));
    let mut ne = sys::Server::spawn("node_exporter", &mut cmd, &dir.join("node-exporter.log"))?;
    if !sys::wait_port(addr, Duration::from_secs(20)) {
        anyhow::bail!("node_exporter did not listen on {addr} within 20 s");
    }
    sleep(Duration::from_secs(3));
    let (rss, pss) = sys::rss_pss_kb(ne.pid())?;
    println!("node_exporter idle (3 s after start, 0 scrapes): Rss {rss} kB, Pss {pss} kB");
    ne.stop(Duration::from_secs(5));
    Ok(rss)
}

/// Section B: the outage, the replay and the steady window, pocketses and vmagent side by side.
fn outage(args: &PushArgs, store: &mut Store, res: &mut Results) -> anyhow::Result<()> {
    // The sinks of `Store::sink_sets`, by name.
    const SINKS: [&str; 2] = ["vm", "influx"];
    let dir = args.out.join("outage");
    std::fs::create_dir_all(&dir)?;
    store.stop();
    let sets = store.sink_sets();
    let d = crate::start_daemon(&args.pocketses, &dir, 1, 10_000, &sets)?;
    let va = Vmagent::start(args, &dir, d.http, store.port)?;
    println!(
        "store stopped; pocketses (pid {}) spools at --interval 1, vmagent (pid {}) scrapes it every 10 s",
        d.pid, va.server.pid()
    );
    // Until both sinks hold the backlog (bounded: the backlog's seconds plus a minute).
    let deadline = Instant::now() + Duration::from_secs(args.backlog + 60);
    let want = args.backlog as f64;
    loop {
        let m = metrics(d.http)?;
        let vm = m.get(&["pocketses_push_backlog_records", "vm"]).unwrap_or(0.0);
        let inf = m.get(&["pocketses_push_backlog_records", "influx"]).unwrap_or(0.0);
        if vm >= want && inf >= want {
            break;
        }
        if Instant::now() > deadline {
            anyhow::bail!("the backlog did not reach {want} records (vm {vm}, influx {inf})");
        }
        sleep(Duration::from_millis(500));
    }
    let m = metrics(d.http)?;
    let records: f64 =
        SINKS.iter().filter_map(|s| m.get(&["pocketses_push_backlog_records", s])).sum();
    res.backlog_records = Some(records);
    let spool = dir.join("spool");
    res.spool_disk_bytes = Some(disk_bytes(&spool));
    // The spools are locked by the daemon: points from this host's snapshot encoded as each sink's.
    res.backlog_points = record_points().ok().map(|(vm, influx)| {
        m.get(&["pocketses_push_backlog_records", "vm"]).unwrap_or(0.0) * vm
            + m.get(&["pocketses_push_backlog_records", "influx"]).unwrap_or(0.0) * influx
    });
    let (pk_rss, _) = sys::rss_pss_kb(d.pid)?;
    let (va_rss, _) = sys::rss_pss_kb(va.server.pid())?;
    res.pk_backlog_rss_kb = Some(pk_rss);
    res.va_backlog_rss_kb = Some(va_rss);
    let vm_metrics = metrics(va.addr)?;
    res.va_queue_bytes = vm_metrics.sum("vm_persistentqueue_bytes_pending");
    res.va_backlog_rows =
        vm_metrics.sum("vmagent_remotewrite_global_rows_pushed_before_relabel_total");
    println!(
        "backlog: pocketses {records} records, {:?} points, {:?} bytes on disk, RSS {pk_rss} kB; vmagent {:?} rows taken, {:?} bytes queued, RSS {va_rss} kB",
        res.backlog_points, res.spool_disk_bytes, res.va_backlog_rows, res.va_queue_bytes
    );
    match crate::smaps::report(d.pid) {
        Ok(t) => print!("pocketses with the backlog:\n{t}"),
        Err(err) => println!("smaps not read: {err:#}"),
    }

    // The store returns: how long until each has delivered everything.
    let sent = |m: &Metrics| -> f64 {
        SINKS.iter().filter_map(|s| m.get(&["pocketses_push_sent_points_total", s])).sum()
    };
    let m0 = metrics(d.http)?;
    let sent0 = sent(&m0);
    let cpu0 = sys::process_cpu(d.pid)?;
    store.restart()?;
    let t0 = Instant::now();
    let (mut pk_first, mut pk_done, mut va_done) = (None, None, None);
    // Bounded by the sinks' longest backoff (5 min) and a minute for the replay itself.
    let deadline = t0 + Duration::from_secs(360);
    let mut pk_cpu_done = None;
    let mut before = (cpu0, sent0);
    let mut at_first = before;
    // Each sink on its own clock: its backoff decides its first send, its backlog its end, so a
    // sink that started late does not lengthen the other's replay.
    struct SinkReplay {
        name: &'static str,
        sent_before: f64,
        first: Option<f64>,
        done: Option<(f64, f64)>,
    }
    let mut sinks: Vec<SinkReplay> = SINKS
        .into_iter()
        .map(|name| SinkReplay {
            name,
            sent_before: m0.get(&["pocketses_push_sent_points_total", name]).unwrap_or(0.0),
            first: None,
            done: None,
        })
        .collect();
    while Instant::now() < deadline && (pk_done.is_none() || va_done.is_none()) {
        sleep(Duration::from_millis(100));
        let m = metrics(d.http)?;
        let now = t0.elapsed().as_secs_f64();
        for sr in &mut sinks {
            let sent = m.get(&["pocketses_push_sent_points_total", sr.name]).unwrap_or(0.0);
            if sr.first.is_none() {
                if sent > sr.sent_before {
                    sr.first = Some(now);
                }
                continue;
            }
            let backlog = m.get(&["pocketses_push_backlog_records", sr.name]).unwrap_or(f64::MAX);
            if sr.done.is_none() && backlog <= 1.0 {
                sr.done = Some((now, sent));
            }
        }
        if pk_first.is_none() {
            if sent(&m) > sent0 {
                pk_first = Some(now);
                at_first = before;
            } else {
                before = (sys::process_cpu(d.pid)?, sent(&m));
            }
        }
        let backlog: f64 =
            SINKS.iter().filter_map(|s| m.get(&["pocketses_push_backlog_records", s])).sum();
        if pk_done.is_none() && pk_first.is_some() && backlog <= 2.0 {
            pk_done = Some(now);
            pk_cpu_done = Some((sys::process_cpu(d.pid)?, sent(&m)));
        }
        if va_done.is_none() {
            let v = metrics(va.addr)?;
            let pending = v.sum("vm_persistentqueue_bytes_pending").unwrap_or(f64::MAX)
                + v.sum("vmagent_remotewrite_pending_data_bytes").unwrap_or(0.0);
            let ok = v.sum_where("vmagent_remotewrite_requests_total", "2XX").unwrap_or(0.0);
            if pending == 0.0 && ok > 0.0 {
                va_done = Some(now);
            }
        }
    }
    res.pk_first_send_s = pk_first;
    if let (Some(first), Some(done), Some((cpu, sent1))) = (pk_first, pk_done, pk_cpu_done) {
        res.pk_replay_s = Some(done - first);
        res.pk_replay_points = Some(sent1 - at_first.1);
        res.pk_replay_cpu_ms = Some((cpu - at_first.0).as_secs_f64() * 1e3);
    }
    res.va_replay_s = va_done;
    for sr in &sinks {
        if let (Some(first), Some((done, sent))) = (sr.first, sr.done) {
            // The points of the backlog sent from the sink's first send on (the first batch's
            // points are in `sent`; `sent_before` was read before the store came back).
            res.sink_replays.push((
                sr.name.to_string(),
                first,
                done - first,
                sent - sr.sent_before,
            ));
        }
    }
    println!(
        "store back: pocketses first send after {pk_first:?} s, backlog ≤ 2 records after {pk_done:?} s; vmagent queue empty after {va_done:?} s"
    );

    // Steady window: CPU per pushed sample, both delivering on time.
    let va_rows = |m: &Metrics| m.sum("vmagent_remotewrite_rows_pushed_after_relabel_total");
    // Beside it, a daemon without sinks at the same interval: what collection costs alone.
    let bare_dir = dir.join("bare");
    std::fs::create_dir_all(&bare_dir)?;
    let mut bare = crate::start_daemon(&args.pocketses, &bare_dir, 1, 10_000, &[])?;
    // And the like-for-like one (B2, third row): a daemon with one prometheus sink to the same
    // store, vmagent's job, which nobody scrapes.
    let one_dir = dir.join("one-sink");
    std::fs::create_dir_all(&one_dir)?;
    let one_sets = store.sink_sets()[..2].to_vec();
    let mut one = crate::start_daemon(&args.pocketses, &one_dir, 1, 10_000, &one_sets)?;
    // Past the start (the first collection, the sink's first request and connection).
    sleep(Duration::from_secs(3));
    let (bare0, one0) = (sys::process_cpu(bare.pid)?, sys::process_cpu(one.pid)?);
    let (pk_cpu0, va_cpu0) = (sys::process_cpu(d.pid)?, sys::process_cpu(va.server.pid())?);
    // Conservative for pocketses: its whole CPU (collection, checks, both sinks, vmagent's scrapes)
    // over the samples of its prometheus sink alone; the influx sink carries the same values again.
    let vm_sent = |m: &Metrics| m.get(&["pocketses_push_sent_points_total", "vm"]).unwrap_or(0.0);
    let (pk_s0, va_s0) = (vm_sent(&metrics(d.http)?), va_rows(&metrics(va.addr)?).unwrap_or(0.0));
    let one_s0 = vm_sent(&metrics(one.http)?);
    sleep(Duration::from_secs(args.steady));
    let (pk_cpu1, va_cpu1) = (sys::process_cpu(d.pid)?, sys::process_cpu(va.server.pid())?);
    let (bare1, one1) = (sys::process_cpu(bare.pid)?, sys::process_cpu(one.pid)?);
    let one_s1 = vm_sent(&metrics(one.http)?);
    bare.server.stop(Duration::from_secs(5));
    one.server.stop(Duration::from_secs(5));
    let (pk_s1, va_s1) = (vm_sent(&metrics(d.http)?), va_rows(&metrics(va.addr)?).unwrap_or(0.0));
    let (pk_n, va_n) = (pk_s1 - pk_s0, va_s1 - va_s0);
    res.pk_steady_samples = Some(pk_n);
    res.va_steady_samples = Some(va_n);
    if pk_n > 0.0 {
        res.pk_cpu_per_sample_us = Some((pk_cpu1 - pk_cpu0).as_secs_f64() * 1e6 / pk_n);
        res.bare_cpu_per_sample_us = Some((bare1 - bare0).as_secs_f64() * 1e6 / pk_n);
    }
    let one_n = one_s1 - one_s0;
    res.one_steady_samples = Some(one_n);
    if one_n > 0.0 {
        res.one_cpu_per_sample_us = Some((one1 - one0).as_secs_f64() * 1e6 / one_n);
        res.one_bare_cpu_per_sample_us = Some((bare1 - bare0).as_secs_f64() * 1e6 / one_n);
    }
    println!(
        "steady {} s, like for like: one-sink daemon {one_n} samples, CPU {:?}; daemon without sinks CPU {:?}",
        args.steady,
        one1 - one0,
        bare1 - bare0
    );
    if va_n > 0.0 {
        res.va_cpu_per_sample_us = Some((va_cpu1 - va_cpu0).as_secs_f64() * 1e6 / va_n);
    }
    res.pk_steady_rss_kb = sys::rss_pss_kb(d.pid).ok().map(|r| r.0);
    res.va_steady_rss_kb = sys::rss_pss_kb(va.server.pid()).ok().map(|r| r.0);
    println!(
        "steady {} s: pocketses {pk_n} samples, CPU {:?}; vmagent {va_n} samples, CPU {:?}",
        args.steady,
        pk_cpu1 - pk_cpu0,
        va_cpu1 - va_cpu0
    );
    Ok(())
}

/// vmagent scraping pocketses' `/metrics` every 10 s and remote-writing to the store.
struct Vmagent {
    server: sys::Server,
    addr: SocketAddr,
}

impl Vmagent {
    fn start(
        args: &PushArgs,
        dir: &Path,
        target: SocketAddr,
        store: u16,
    ) -> anyhow::Result<Vmagent> {
        let port = sys::free_port()?;
        let config = dir.join("scrape.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 10s}}\nscrape_configs: [{{job_name: pocketses, static_configs: [{{targets: ['{target}']}}]}}]\n"
            ),
        )?;
        let mut cmd = Command::new(&args.vmagent);
        cmd.arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!("-promscrape.config={}", config.display()))
            .arg(format!("-remoteWrite.url=http://127.0.0.1:{store}/api/v1/write"))
            .arg(format!("-remoteWrite.tmpDataPath={}", dir.join("vmagent-rwdata").display()));
        let server = sys::Server::spawn("vmagent", &mut cmd, &dir.join("vmagent.log"))?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        if !sys::wait_port(addr, Duration::from_secs(30)) {
            anyhow::bail!("vmagent did not listen on {addr} within 30 s");
        }
        Ok(Vmagent { server, addr })
    }
}

/// Section C: the spool's append rate, one snapshot's record per `fdatasync`, as a sink appends.
fn spool_append(args: &PushArgs) -> anyhow::Result<AppendReport> {
    use pocketses::push::encode::{points, record, SinkFormat};
    use pocketses::spool::{Limits, Spool};
    let mut collector = pocketses::metrics::collect::Collector::new();
    collector.collect();
    let snapshot = collector.collect();
    let mut points_per_record = BTreeMap::new();
    let mut record_bytes = BTreeMap::new();
    let mut records = Vec::new();
    for (name, format) in [("prometheus", SinkFormat::Prometheus), ("influx", SinkFormat::Influx)] {
        let r = record(format, &snapshot, &[])?;
        let n = points(format, &r)?;
        points_per_record.insert(name, n);
        record_bytes.insert(name, r.len());
        records.push((name, r, n));
    }
    // The prometheus sink's record: the one VictoriaMetrics and vmagent's peers take.
    let (_, rec, pts) = &records[0];
    let dir = args.out.join("append");
    let mut spool = Spool::open(&dir, Limits::default())?;
    let start = Instant::now();
    for _ in 0..args.appends {
        spool.append_batch(&[rec.as_slice()], SystemTime::now())?;
    }
    let secs = start.elapsed().as_secs_f64();
    drop(spool);
    let disk = disk_bytes(&dir) as f64;
    let _ = std::fs::remove_dir_all(&dir);
    // As a replay after an outage or a hub appends: `--append-batch` snapshots per fdatasync.
    let batch = args.append_batch.max(1);
    let mut spool = Spool::open(&dir, Limits::default())?;
    let payloads: Vec<&[u8]> = (0..batch).map(|_| rec.as_slice()).collect();
    let rounds = (args.appends / batch).max(1);
    let start = Instant::now();
    for _ in 0..rounds {
        spool.append_batch(&payloads, SystemTime::now())?;
    }
    let batched_secs = start.elapsed().as_secs_f64();
    drop(spool);
    let n = args.appends as f64;
    let report = AppendReport {
        appends: args.appends,
        points_per_record,
        record_bytes,
        us_per_append: secs * 1e6 / n,
        points_per_s: n * *pts as f64 / secs,
        disk_bytes_per_point: disk / (n * *pts as f64),
        batched_points_per_s: (rounds * batch) as f64 * *pts as f64 / batched_secs,
        batch,
    };
    println!("{report:#?}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(report)
}

/// Section E: a hub with `--spokes` spokes posting `--ingest-batch` documents per request to
/// `POST /v1/ingest` at once, for `--ingest-seconds`, its one prometheus sink's store away (a
/// port nobody listens on), so that every point stays in the spool: the points spooled (the
/// sink's backlog at the end of the window, so nothing still queued counts) over the window,
/// and the appends (`fdatasync`s) they took.
fn hub_ingest(args: &PushArgs) -> anyhow::Result<HubReport> {
    let dir = args.out.join("hub");
    std::fs::create_dir_all(&dir)?;
    let sets = vec![
        format!("push.hub.url=http://127.0.0.1:{}/api/v1/write", sys::free_port()?),
        "push.hub.format=prometheus".into(),
        "push.hub.spool.max-bytes=4294967296".into(),
        "hub.ingest=true".into(),
    ];
    let mut d = crate::start_daemon(&args.pocketses, &dir, 10, 10_000, &sets)?;
    sleep(Duration::from_millis(1500));
    let doc = get(d.http, "/v1/metrics")?;
    let doc = doc.trim();
    anyhow::ensure!(doc.starts_with('{'), "/v1/metrics is not a document: {doc:.80}");
    let m = metrics(d.http)?;
    let of = |m: &Metrics, name: &str| m.get(&[name, "hub"]).unwrap_or(0.0);
    let base = [
        of(&m, "pocketses_push_backlog_records"),
        of(&m, "pocketses_push_backlog_points"),
        of(&m, "pocketses_push_spool_appends_total"),
        of(&m, "pocketses_push_missed_records_total"),
    ];
    let cpu0 = sys::process_cpu(d.pid)?;
    let start = Instant::now();
    let until = start + Duration::from_secs(args.ingest_seconds);
    let threads: Vec<_> = (0..args.spokes)
        .map(|i| {
            let one = doc.replacen("\"hostname\":\"", &format!("\"hostname\":\"spoke-{i}-"), 1);
            let body = vec![one; args.ingest_batch.max(1)].join("\n");
            let addr = d.http;
            std::thread::spawn(move || {
                let (mut ok, mut failed) = (0u64, 0u64);
                while Instant::now() < until {
                    match post(addr, "/v1/ingest", "application/x-ndjson", &body) {
                        Ok(200) => ok += 1,
                        _ => failed += 1,
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let (mut posts_ok, mut posts_failed) = (0, 0);
    for t in threads {
        let (ok, failed) = t.join().map_err(|_| anyhow::anyhow!("a spoke thread panicked"))?;
        posts_ok += ok;
        posts_failed += failed;
    }
    let seconds = start.elapsed().as_secs_f64();
    let m = metrics(d.http)?;
    let cpu_s = (sys::process_cpu(d.pid)? - cpu0).as_secs_f64();
    let report = HubReport {
        spokes: args.spokes,
        batch: args.ingest_batch,
        seconds,
        posts_ok,
        posts_failed,
        records: of(&m, "pocketses_push_backlog_records") - base[0],
        points: of(&m, "pocketses_push_backlog_points") - base[1],
        appends: of(&m, "pocketses_push_spool_appends_total") - base[2],
        missed: of(&m, "pocketses_push_missed_records_total") - base[3],
        cpu_s,
    };
    println!("{report:#?}");
    d.server.stop(Duration::from_secs(10));
    Ok(report)
}

/// `GET path` over HTTP/1.0: the body.
fn get(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("cannot connect to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    Ok(raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

/// `POST path` with `body`, one connection: the status code.
fn post(addr: SocketAddr, path: &str, content_type: &str, body: &str) -> anyhow::Result<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let line = String::from_utf8_lossy(&raw[..raw.len().min(32)]).into_owned();
    line.split(' ').nth(1).and_then(|c| c.parse().ok()).context("no status line")
}

/// Bytes allocated on disk under `dir` (st_blocks × 512), every file.
fn disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    for e in entries.flatten() {
        let Ok(meta) = e.metadata() else { continue };
        if meta.is_dir() {
            total += disk_bytes(&e.path());
        } else {
            total += meta.blocks() * 512;
        }
    }
    total
}

/// Points of one snapshot of this host as each sink's record: (vm = prometheus, influx).
fn record_points() -> anyhow::Result<(f64, f64)> {
    use pocketses::push::encode::{points, record, SinkFormat};
    let mut collector = pocketses::metrics::collect::Collector::new();
    collector.collect();
    let snapshot = collector.collect();
    let n = |f| -> anyhow::Result<f64> { Ok(points(f, &record(f, &snapshot, &[])?)? as f64) };
    Ok((n(SinkFormat::Prometheus)?, n(SinkFormat::Influx)?))
}

/// A `/metrics` page: sample lines by name, labels kept as text.
struct Metrics(Vec<(String, String, f64)>);

impl Metrics {
    /// The value of the sample `[name, label value]` (the label value is matched anywhere in the labels).
    fn get(&self, key: &[&str]) -> Option<f64> {
        self.0
            .iter()
            .find(|(n, l, _)| {
                n == key[0] && key[1..].iter().all(|v| l.contains(&format!("\"{v}\"")))
            })
            .map(|(_, _, v)| *v)
    }

    /// The sum of every sample named `name`.
    fn sum(&self, name: &str) -> Option<f64> {
        let xs: Vec<f64> =
            self.0.iter().filter(|(n, _, _)| n == name).map(|(_, _, v)| *v).collect();
        (!xs.is_empty()).then(|| xs.iter().sum())
    }

    /// The sum of the samples named `name` whose labels contain `label`.
    fn sum_where(&self, name: &str, label: &str) -> Option<f64> {
        let xs: Vec<f64> = self
            .0
            .iter()
            .filter(|(n, l, _)| n == name && l.contains(label))
            .map(|(_, _, v)| *v)
            .collect();
        (!xs.is_empty()).then(|| xs.iter().sum())
    }
}

/// `GET /metrics` over HTTP/1.0, parsed into samples.
fn metrics(addr: SocketAddr) -> anyhow::Result<Metrics> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("cannot connect to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(METRICS_REQUEST)?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(parse_metrics(&body))
}

const METRICS_REQUEST: &[u8] = b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";

/// `GET /metrics` over HTTPS from a listener whose certificate is `cert` (DER, self-signed for
/// `localhost`), parsed into samples.
fn metrics_tls(addr: SocketAddr, cert: &[u8]) -> anyhow::Result<Metrics> {
    Ok(parse_metrics(&tls_get(addr, cert, METRICS_REQUEST)?))
}

/// The whole answer (headers and body) to `request` over HTTPS from a listener whose
/// certificate is `cert`.
fn tls_get(addr: SocketAddr, cert: &[u8], request: &[u8]) -> anyhow::Result<String> {
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(cert.to_vec())).context("cannot trust the certificate")?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("cannot make a TLS client")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").context("bad server name")?;
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name)
        .context("cannot start TLS")?;
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("cannot connect to {addr}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    s.write_all(request).with_context(|| format!("cannot ask {addr} over TLS"))?;
    let mut raw = Vec::new();
    // The server may close without close_notify: what was read so far is the answer.
    if let Err(err) = s.read_to_end(&mut raw) {
        if raw.is_empty() {
            return Err(err).with_context(|| format!("cannot read from {addr} over TLS"));
        }
    }
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

/// An HTTP answer of `/metrics` as samples (the body after the headers).
fn parse_metrics(body: &str) -> Metrics {
    let text = body.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.rsplit_once(' ') else { continue };
        let Ok(v) = value.parse::<f64>() else { continue };
        let (name, labels) = match key.split_once('{') {
            Some((n, l)) => (n.to_string(), l.to_string()),
            None => (key.to_string(), String::new()),
        };
        out.push((name, labels, v));
    }
    Metrics(out)
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map(|v| format!("{v:.decimals$}")).unwrap_or_else(|| "–".into())
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => {
            let r = a / b;
            if r < 0.1 && r > 0.0 {
                format!("{r:.3}× (1/{:.0})", 1.0 / r)
            } else {
                format!("{r:.2}×")
            }
        }
        _ => "–".into(),
    }
}

fn met(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "–",
    }
}

fn table(args: &PushArgs, r: &Results) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "| # | metric | pocketses | peer | pocketses / peer | target | met |");
    let _ = writeln!(t, "|---|---|---|---|---|---|---|");
    let mut row = |item: &str,
                   metric: &str,
                   ours: String,
                   peer: String,
                   r: String,
                   target: &str,
                   ok: &str| {
        let _ = writeln!(t, "| {item} | {metric} | {ours} | {peer} | {r} | {target} | {ok} |");
    };
    let kb = |v: Option<u64>| v.map(|v| v as f64);
    row(
        "A",
        "idle RSS (smaps_rollup), two sinks + fleet client + checks + TLS on both listeners + hub, after 3 cycles, kB",
        opt(kb(r.full_rss_kb), 0),
        format!("node_exporter idle {}", opt(kb(r.ne_idle_rss_kb), 0)),
        ratio(kb(r.full_rss_kb), kb(r.ne_idle_rss_kb)),
        "≤ 5,120 kB",
        met(r.full_rss_kb.map(|v| v <= 5120)),
    );
    row(
        "A",
        &format!("same, after 23 cycles, kB (Pss {})", opt(kb(r.full_pss_kb), 0)),
        opt(kb(r.full_rss_later_kb), 0),
        "–".into(),
        "–".into(),
        "≤ 5,120 kB",
        met(r.full_rss_later_kb.map(|v| v <= 5120)),
    );
    row(
        "A",
        &format!("same, after {} cycles, kB", opt(r.full_cycles.map(|c| c as f64), 0)),
        opt(kb(r.full_rss_steady_kb), 0),
        "–".into(),
        "–".into(),
        "≤ 5,120 kB",
        met(r.full_rss_steady_kb.map(|v| v <= 5120)),
    );
    row(
        "A",
        &format!(
            "same, after {} cycles with the dashboard's history ring full (an hour: {MAX_HISTORY} points), kB (Pss {})",
            opt(r.full_cycles.map(|c| c as f64), 0),
            opt(kb(r.full_pss_ring_kb), 0)
        ),
        opt(kb(r.full_rss_ring_kb), 0),
        "–".into(),
        "–".into(),
        "≤ 5,120 kB",
        met(r.full_rss_ring_kb.map(|v| v <= 5120)),
    );
    row(
        "B1",
        &format!("RSS, two sinks with {} snapshots spooled (store stopped), kB", args.backlog),
        opt(kb(r.pk_backlog_rss_kb), 0),
        format!("vmagent, same outage, {} {}", opt(kb(r.va_backlog_rss_kb), 0), "kB"),
        ratio(kb(r.pk_backlog_rss_kb), kb(r.va_backlog_rss_kb)),
        "≤ 1/2 of vmagent",
        met(r.pk_backlog_rss_kb.zip(r.va_backlog_rss_kb).map(|(p, v)| 2 * p <= v)),
    );
    row(
        "B1",
        "RSS after the replay and the steady window, kB",
        opt(kb(r.pk_steady_rss_kb), 0),
        format!("vmagent {}", opt(kb(r.va_steady_rss_kb), 0)),
        ratio(kb(r.pk_steady_rss_kb), kb(r.va_steady_rss_kb)),
        "≤ 1/2 of vmagent",
        met(r.pk_steady_rss_kb.zip(r.va_steady_rss_kb).map(|(p, v)| 2 * p <= v)),
    );
    row(
        "B2",
        &format!(
            "CPU per pushed sample, steady {} s window, µs: the whole process over the samples of one sink (prometheus: pocketses {}, vmagent {})",
            args.steady,
            opt(r.pk_steady_samples, 0),
            opt(r.va_steady_samples, 0)
        ),
        opt(r.pk_cpu_per_sample_us, 3),
        format!("vmagent {}", opt(r.va_cpu_per_sample_us, 3)),
        ratio(r.pk_cpu_per_sample_us, r.va_cpu_per_sample_us),
        "≤ 1/5 of vmagent",
        met(r.pk_cpu_per_sample_us.zip(r.va_cpu_per_sample_us).map(|(p, v)| 5.0 * p <= v)),
    );
    // Not the same work on both sides (docs/push.md, "Benchmark"): pocketses collects and
    // pushes every second, vmagent scrapes every 10 s. Without collection: the CPU of a daemon
    // without sinks at the same interval in the same window taken away.
    let push_only = r.pk_cpu_per_sample_us.zip(r.bare_cpu_per_sample_us).map(|(p, b)| p - b);
    row(
        "B2",
        &format!(
            "same, less the CPU of a daemon without sinks at the same interval in the same window ({} µs a sample: collection and the runtime): the two sinks' and the scrapes' work, µs",
            opt(r.bare_cpu_per_sample_us, 3)
        ),
        opt(push_only, 3),
        format!("vmagent {}", opt(r.va_cpu_per_sample_us, 3)),
        ratio(push_only, r.va_cpu_per_sample_us),
        "≤ 1/5 of vmagent",
        met(push_only.zip(r.va_cpu_per_sample_us).map(|(p, v)| 5.0 * p <= v)),
    );
    // Like for like: one daemon doing vmagent's job (one remote-write sink to the same store),
    // less a daemon without sinks (collection, checks, the runtime) beside it, over that sink's
    // samples; process CPU clocks, to the nanosecond (docs/push.md, "Benchmark").
    let one_push = r.one_cpu_per_sample_us.zip(r.one_bare_cpu_per_sample_us).map(|(p, b)| p - b);
    row(
        "B2",
        &format!(
            "like for like: a daemon with one prometheus sink only ({} µs a sample, {} samples), less the daemon without sinks beside it ({} µs a sample): the remote-write work, µs",
            opt(r.one_cpu_per_sample_us, 3),
            opt(r.one_steady_samples, 0),
            opt(r.one_bare_cpu_per_sample_us, 3)
        ),
        opt(one_push, 3),
        format!("vmagent {}", opt(r.va_cpu_per_sample_us, 3)),
        ratio(one_push, r.va_cpu_per_sample_us),
        "≤ 1/5 of vmagent",
        met(one_push.zip(r.va_cpu_per_sample_us).map(|(p, v)| 5.0 * p <= v)),
    );
    if let Some(a) = &r.append {
        row(
            "B3",
            &format!(
                "spool append, one prometheus record ({} points, {} bytes) per fdatasync, {} appends: points/s (µs per append)",
                a.points_per_record.get("prometheus").unwrap_or(&0),
                a.record_bytes.get("prometheus").unwrap_or(&0),
                a.appends
            ),
            format!("{:.0} ({:.0})", a.points_per_s, a.us_per_append),
            "–".into(),
            "–".into(),
            "≥ 200,000 points/s",
            met(Some(a.points_per_s >= 200_000.0)),
        );
        row(
            "B3",
            &format!(
                "spool append, {} such records per append_batch (one fdatasync), as a replay or a hub appends: points/s",
                a.batch
            ),
            format!("{:.0}", a.batched_points_per_s),
            "–".into(),
            "–".into(),
            "≥ 200,000 points/s",
            met(Some(a.batched_points_per_s >= 200_000.0)),
        );
        row(
            "B3",
            "disk bytes per spooled point, in-process spool",
            format!("{:.2}", a.disk_bytes_per_point),
            "–".into(),
            "–".into(),
            "–",
            "–",
        );
    }
    let per_point = r.spool_disk_bytes.zip(r.backlog_points).map(|(b, p)| b as f64 / p);
    row(
        "B3",
        &format!(
            "disk bytes per spooled point, the daemon's two spools ({} bytes, {} points, {} records)",
            r.spool_disk_bytes.map(|b| b.to_string()).unwrap_or_else(|| "–".into()),
            opt(r.backlog_points, 0),
            opt(r.backlog_records, 0)
        ),
        opt(per_point, 2),
        format!(
            "vmagent: {} bytes queued for {} rows",
            opt(r.va_queue_bytes, 0),
            opt(r.va_backlog_rows, 0)
        ),
        ratio(per_point, r.va_queue_bytes.zip(r.va_backlog_rows).map(|(b, n)| b / n)),
        "–",
        "–",
    );
    let real = args.backlog as f64 * 10.0;
    let times = r.pk_replay_s.map(|s| real / s.max(0.001));
    row(
        "B3",
        &format!(
            "replay after the outage: {} points in s (first send {} s after the store's restart: the sinks' backoff)",
            opt(r.pk_replay_points, 0),
            opt(r.pk_first_send_s, 1)
        ),
        opt(r.pk_replay_s, 2),
        format!("vmagent queue empty {} s after the restart", opt(r.va_replay_s, 1)),
        "–".into(),
        "–",
        "–",
    );
    row(
        "B3",
        &format!(
            "replay rate against real time at a 10 s interval ({} snapshots = {real:.0} s)",
            args.backlog
        ),
        times.map(|x| format!("{x:.0}×")).unwrap_or_else(|| "–".into()),
        "–".into(),
        "–".into(),
        "≥ 10×",
        met(times.map(|x| x >= 10.0)),
    );
    for (name, first, secs, points) in &r.sink_replays {
        let rate = real / secs.max(0.001);
        row(
            "B3",
            &format!(
                "replay of sink {name} alone: {points:.0} points in s, from its own first send ({first:.1} s after the restart) until its own backlog ≤ 1 record; rate against real time"
            ),
            format!("{secs:.2} s ({rate:.0}×)"),
            "–".into(),
            "–".into(),
            "≥ 10×",
            met(Some(rate >= 10.0)),
        );
    }
    row(
        "B3",
        "CPU of the replay, µs per point",
        opt(r.pk_replay_cpu_ms.zip(r.pk_replay_points).map(|(c, p)| c * 1e3 / p), 3),
        "–".into(),
        "–".into(),
        "–",
        "–",
    );
    if let Some(h) = &r.hub {
        row(
            "B3",
            &format!(
                "hub: {} spokes POSTing {} documents each to /v1/ingest for {:.0} s, spooled for a prometheus sink with group commit: points/s ({} posts ok, {} failed; {:.0} records in {:.0} appends = fdatasyncs; {:.0} missed; hub CPU {:.1} s)",
                h.spokes, h.batch, h.seconds, h.posts_ok, h.posts_failed, h.records, h.appends, h.missed, h.cpu_s
            ),
            format!("{:.0}", h.points / h.seconds),
            "–".into(),
            "–".into(),
            "≥ 200,000 points/s",
            met(Some(h.points / h.seconds >= 200_000.0)),
        );
    }
    for s in &r.stages {
        row(
            "D",
            &format!(
                "CPU of one snapshot through a {} sink, µs ({} rounds, {} sent): encode / append (fdatasync) / peek / body / send / ack",
                s.format, s.rounds, s.sent
            ),
            format!(
                "{:.0} / {:.0} / {:.0} / {:.0} / {:.0} / {:.0} = {:.0}",
                s.record_us,
                s.append_us,
                s.peek_us,
                s.body_us,
                s.send_us,
                s.ack_us,
                s.record_us + s.append_us + s.peek_us + s.body_us + s.send_us + s.ack_us
            ),
            "–".into(),
            "–".into(),
            "–",
            "–",
        );
    }
    t
}

/// Section D: the CPU of each step a sink takes for one snapshot of this host, in process, as
/// this thread's CPU clock (user + system: the `fdatasync`s' kernel work included), which a
/// loaded machine does not inflate the way it inflates wall time. Steps: encode the record,
/// append it (one `fdatasync`), peek it back, make the request body, send it to the store on a
/// current-thread runtime (so hyper's work is on this thread too), acknowledge it (deferred, as
/// the sinks do: the `ack` file every `spool::ACK_WRITE_EVERY` requests).
fn stages(args: &PushArgs, store: &Store) -> anyhow::Result<Vec<StageReport>> {
    use pocketses::push::encode::{body_checked, record, SinkFormat};
    use pocketses::spool::{Limits, Spool};
    let mut collector = pocketses::metrics::collect::Collector::new();
    collector.collect();
    let snapshot = collector.collect();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let files = std::path::absolute(&args.out)?;
    let mut out = Vec::new();
    for (name, format, path) in [
        ("prometheus", SinkFormat::Prometheus, "/api/v1/write".to_string()),
        ("influx", SinkFormat::Influx, "/write?db=stages".to_string()),
    ] {
        let sink = pocketses::config::SinkConfig {
            url: Some(format!("http://127.0.0.1:{}{path}", store.port)),
            format: Some(format),
            ..Default::default()
        };
        let client = pocketses::push::client::Client::new(&sink, &files)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let dir = args.out.join(format!("stages-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        let mut spool = Spool::open(&dir, Limits::default())?;
        let mut cpu = [Duration::ZERO; 6];
        let n = args.stage_rounds.max(1);
        let mut sent = 0;
        for _ in 0..n {
            let t = sys::thread_cpu();
            let rec = record(format, &snapshot, &[])?;
            let t1 = sys::thread_cpu();
            spool.append_batch(&[rec.as_slice()], SystemTime::now())?;
            let t2 = sys::thread_cpu();
            // As the sender: records held in memory since this process appended them are not
            // decoded again to check them.
            let (entries, held) = spool.peek_held(60)?;
            let t3 = sys::thread_cpu();
            let payloads: Vec<&[u8]> = entries.iter().map(|e| e.payload.as_slice()).collect();
            let b = body_checked(format, &payloads, !held)?;
            let t4 = sys::thread_cpu();
            let answer = rt.block_on(client.send(&b)).map_err(|e| anyhow::anyhow!("{e}"))?;
            let t5 = sys::thread_cpu();
            if answer.status / 100 == 2 {
                sent += 1;
            }
            if let Some(last) = entries.last() {
                spool.ack_deferred(last.seq)?;
            }
            let t6 = sys::thread_cpu();
            for (i, (a, b)) in
                [(t, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5), (t5, t6)].into_iter().enumerate()
            {
                cpu[i] += b - a;
            }
        }
        drop(spool);
        let _ = std::fs::remove_dir_all(&dir);
        let us = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
        let report = StageReport {
            format: name,
            rounds: n,
            sent,
            record_us: us(cpu[0]),
            append_us: us(cpu[1]),
            peek_us: us(cpu[2]),
            body_us: us(cpu[3]),
            send_us: us(cpu[4]),
            ack_us: us(cpu[5]),
        };
        println!("{report:?}");
        out.push(report);
    }
    Ok(out)
}
