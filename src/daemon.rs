//! The daemon: wiring of collector, publishers, configuration reload and shutdown.
//!
//! Data flow: the collector loop runs `metrics::collect::Collector::collect` on a blocking thread
//! every `interval`, encodes the snapshot once per format on that same thread
//! ([`crate::publish::Published`]) and hands it to the [`Hub`], which keeps it as the latest message and
//! broadcasts it to one task per subscriber (`publish::tcp`, `publish::http`).
//! On the same thread and the same snapshot, `checks::daemon::Checker` runs the checks; their
//! results go to the hub too, and the snap's health to `checks::daemon::report_health`.
//!
//! This module owns tasks and signals; listeners (bind, rebind, limits) are [`crate::publish::listen`]
//! and it decides nothing about wire formats.
//! Configuration arrives on a `watch` channel, so a source that reloads it live (snapd, a control
//! socket) only has to send a new [`Config`]: see [`run`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use serde_json::Value;

use crate::config::{Config, Loaded, Settings};
pub use crate::control::Listening;
use crate::metrics::collect::Collector;
use crate::publish::{listen, Hub, Published};

/// Default path of snapd's API socket; `POCKETSES_SNAPD_SOCKET` overrides it.
pub const SNAPD_SOCKET: &str = "/run/snapd.socket";
/// How long shutdown waits for subscribers to take their last message and close.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Flags of the daemon; the same set is accepted with no subcommand (the original's `--port`, `--interval`).
///
/// Every flag that sets configuration is a shorthand for `--set KEY=VALUE`: all of them become
/// [`Settings`], which `config::load` checks like snapd's values, with the same messages.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DaemonArgs {
    /// Set a configuration key, as `snap set pocketses KEY=VALUE` would (repeatable; see
    /// `pocketses config keys` or docs/configuration.md). Applied after the shorthand flags below.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = setting)]
    pub set: Vec<(String, Value)>,
    /// TCP port of the JSON line stream (`port`) [default: 8888; 0 picks a free port].
    #[arg(long, value_name = "PORT")]
    pub port: Option<String>,
    /// Seconds between collections, 1-86400 (`interval`) [default: 60].
    #[arg(long, value_name = "SECONDS")]
    pub interval: Option<String>,
    /// HTTP port for /v1/metrics, /v1/metrics/stream and /metrics (`http.port`) [default: 9188; 0 disables HTTP].
    #[arg(long, value_name = "PORT")]
    pub http_port: Option<String>,
    /// Address both listeners bind (`bind`, and `http.bind` unless --http-bind is given) [default: 0.0.0.0].
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
    /// Address the HTTP listener binds (`http.bind`) [default: 0.0.0.0, or --bind's].
    #[arg(long, value_name = "ADDR")]
    pub http_bind: Option<String>,
    /// JSON shape of the TCP stream, json or legacy (`publish.format`) [default: json].
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Stream subscribers admitted at once, 1-1000000 (`publish.max-subscribers`) [default: 10000].
    #[arg(long, value_name = "N")]
    pub max_subscribers: Option<String>,
    /// Also write remodel progress reports as lines on the TCP stream (`publish.remodel-events=true`).
    #[arg(long)]
    pub remodel_events: bool,
    /// Once listening, write "tcp=ADDR http=ADDR" to this file (for tests and supervisors).
    #[arg(long, value_name = "PATH")]
    pub ready_file: Option<PathBuf>,
    /// `--state-dir`.
    #[command(flatten)]
    pub state_dir: crate::paths::StateDirArg,
}

fn setting(arg: &str) -> Result<(String, Value), String> {
    crate::config::parse_setting(arg)
}

impl DaemonArgs {
    /// The configuration the flags give, shorthand flags first, then `--set` in order. \[pure\]
    pub fn settings(&self) -> Settings {
        let text = |key: &str, value: &Option<String>| {
            value.as_ref().map(|v| (key.to_string(), Value::String(v.clone())))
        };
        let http_bind = self.http_bind.as_ref().or(self.bind.as_ref()).cloned();
        [
            text("interval", &self.interval),
            text("port", &self.port),
            text("bind", &self.bind),
            text("http.port", &self.http_port),
            text("http.bind", &http_bind),
            text("publish.format", &self.format),
            text("publish.max-subscribers", &self.max_subscribers),
            self.remodel_events.then(|| ("publish.remodel-events".to_string(), Value::Bool(true))),
        ]
        .into_iter()
        .flatten()
        .chain(self.set.iter().cloned())
        .collect()
    }
}

/// The configuration the daemon starts on before snapd answers: defaults, then the flags.
///
/// snapd's values are applied later by [`crate::control::ConfigService`], under the flags, so a
/// daemon started by hand keeps what it was told.
///
/// # Errors
/// Every bad flag, in snapd's grammar and named by its key.
pub fn initial_config(settings: &[(String, Value)]) -> anyhow::Result<Loaded> {
    crate::config::load(&Value::Null, settings).map_err(|problems| {
        anyhow::anyhow!(
            "{}",
            problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        )
    })
}

/// How long the daemon waits for snapd's configuration before starting on defaults (and retrying).
pub const INITIAL_CONFIG_WAIT: Duration = Duration::from_secs(5);

/// Optional hooks of [`run_with`].
#[derive(Debug, Default)]
pub struct RunOptions {
    /// Rewritten with [`Listening`]'s text each time the listeners change.
    pub ready_file: Option<PathBuf>,
    /// Sent [`Listening`] each time the listeners change (tests use it in-process).
    pub listening: Option<watch::Sender<Listening>>,
    /// Where the push sinks' figures go (the control socket's `state` reads them too).
    pub push: Option<crate::push::sink::Registry>,
    /// Where the latest health and check document are kept for the control socket.
    pub checks: Option<crate::checks::daemon::Latest>,
    /// The fleet client's state (the control socket's `fleet-poll` reaches it).
    pub fleet: Option<crate::fleet::daemon::Fleet>,
}

/// Runs the daemon as `pocketses daemon` does: builds the runtime, reads the initial configuration,
/// and serves until SIGTERM or SIGINT, then exits 0.
///
/// # Errors
/// When the runtime or a listener cannot start.
pub fn main(args: DaemonArgs) -> anyhow::Result<ExitCode> {
    // Before anything else: it may start this program again, with the same arguments.
    without_malloc_thread_caches();
    // Still one thread: everything after this (control socket, remodel record) reads it.
    args.state_dir.apply();
    let settings = args.settings();
    let loaded = initial_config(&settings)?;
    one_malloc_arena();
    // One worker per core, at least 2 and at most 8: the line stream has one fan-out shard per
    // worker (publish::shard), so fan-out to thousands of subscribers writes on every core;
    // idle, each worker is a parked thread.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .max_blocking_threads(2)
        .thread_name("pocketses")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    raise_fd_limit();
    // The control listener registers with the runtime's reactor.
    let _entered = runtime.enter();
    // Before anything else that could fail: a second daemon stops here and touches nothing.
    let control_path = crate::control::socket_path();
    let control = crate::control::bind(&control_path).map_err(|err| {
        anyhow::anyhow!(
            "cannot listen on control socket {}: {}{}",
            control_path.display(),
            crate::error::describe_io(&err),
            if err.kind() == std::io::ErrorKind::AddrInUse {
                "; stop it first, or give this one its own --state-dir"
            } else {
                ""
            }
        )
    })?;
    let source = crate::snapd::conf::ConfigSource::from_env();
    // When snapd is the configuration source, its retry loop says once that snapd is away.
    if !crate::control::uses_snapd(&source) {
        say_if_snapd_unreachable();
    }
    let (config_tx, config_rx) = watch::channel(loaded.config.clone());
    let (listening_tx, listening_rx) = watch::channel(Listening::default());
    let checks = crate::checks::daemon::Latest::default();
    // The configuration service owns the sender: it loads snapd's values and applies reloads
    // from the control socket (configure hook, snapd-control plug hooks) and SIGHUP.
    let push = crate::push::sink::Registry::default();
    let push_figures = push.clone();
    let fleet = crate::fleet::daemon::Fleet::new(crate::fleet::daemon::status_path());
    let service = crate::control::ConfigService::new(source, settings, loaded, config_tx)
        .with_state(Box::new(move || *listening_rx.borrow()))
        .with_push(Box::new(move || push_figures.statuses()))
        .with_hub({
            let hub = push.hub().clone();
            Box::new(move || hub.spokes())
        })
        .with_checks(checks.clone())
        .with_fleet(fleet.clone());
    let service = Arc::new(service);
    let shutdown = CancellationToken::new();
    let options = RunOptions {
        ready_file: args.ready_file.clone(),
        listening: Some(listening_tx),
        push: Some(push),
        checks: Some(checks),
        fleet: Some(fleet),
    };
    let res = runtime.block_on(async {
        let signals = listen_for_signals(shutdown.clone(), service.clone())?;
        if service.uses_snapd() {
            // Start on snapd's values when it answers promptly; otherwise start on defaults and
            // let the control task keep trying with backoff (snapd may be restarting).
            match tokio::time::timeout(INITIAL_CONFIG_WAIT, service.load()).await {
                Ok(Ok(())) => {}
                // Unreachable snapd is said once, by the retry loop of the control task.
                Ok(Err(err)) if err.is_retryable() => {}
                Ok(Err(err)) => warn!(error = %err, "starting without snapd's configuration"),
                Err(_) => warn!("snapd did not answer in time; starting without its configuration"),
            }
        }
        let control =
            tokio::spawn(crate::control::run(service.clone(), Some(control), shutdown.clone()));
        // Once the start has settled, its pages are given back: the main thread's stack here,
        // since this future runs on the main thread (block_on) where the start ran; the heap and
        // the binary's start-up text on the blocking pool.
        let res = tokio::select! {
            res = run_with(config_rx, shutdown.clone(), options) => res,
            never = async {
                tokio::time::sleep(STARTUP_SETTLE).await;
                release_stack_below_here();
                let _ = tokio::task::spawn_blocking(release_startup_pages).await;
                std::future::pending::<std::convert::Infallible>().await
            } => match never {},
        };
        shutdown.cancel();
        match control.await {
            Ok(Err(err)) => warn!(error = %err, "control socket"),
            Err(err) => warn!(error = %err, "control task"),
            Ok(Ok(())) => {}
        }
        let _ = signals.await;
        res
    });
    drop(service);
    // A collection stuck in the kernel must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    res.map(|()| ExitCode::SUCCESS)
}

/// Runs the daemon until `shutdown` is cancelled, following configuration changes live.
///
/// CONTRACT with configuration sources (snapd, control socket): send a new [`Config`] on the
/// channel and it applies without restart:
/// - `interval`: the next collection is due `interval` after the start of the previous one;
///   subscribers stay connected;
/// - `port`, `bind`, `http.*`: the listener is rebound; connections already open stay,
///   and if the new address cannot be bound the old listener keeps serving (logged);
/// - `publish.format`: applies to the following messages and to what new subscribers get first;
/// - `publish.max_subscribers`: applies to new subscribers; nobody is disconnected;
/// - `publish.remodel_events`: applies to the next remodel report, for every subscriber.
///
/// Values are taken as valid (`config` validates them). Dropping the sender freezes the configuration.
///
/// # Errors
/// When the initial listeners cannot be bound.
pub async fn run(
    config: watch::Receiver<Config>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_with(config, shutdown, RunOptions::default()).await
}

/// [`run`] with [`RunOptions`].
///
/// # Errors
/// When the initial listeners cannot be bound.
pub async fn run_with(
    mut config: watch::Receiver<Config>,
    shutdown: CancellationToken,
    options: RunOptions,
) -> anyhow::Result<()> {
    let initial = config.borrow_and_update().clone();
    crate::logging::set_level(&initial.log_level);
    let hub = Hub::new(initial.publish.max_subscribers);
    hub.set_remodel_events(initial.publish.remodel_events);
    let tracker = TaskTracker::new();
    let announce =
        listen::Announce { ready_file: options.ready_file, listening: options.listening };
    let (notify_tx, notify_rx) = tokio::sync::mpsc::channel(crate::notify::QUEUE);
    let registry = options.push.unwrap_or_default();
    let checks = Checks {
        notify: notify_tx,
        sinks: registry.clone(),
        latest: options.checks.unwrap_or_default(),
        snapd: crate::checks::daemon::SnapdView::default(),
        health: watch::channel(crate::checks::health::map(
            &[],
            &crate::checks::health::Situation { starting: true, ..Default::default() },
        ))
        .0,
    };
    let mut listeners =
        listen::Listeners::new(hub.clone(), shutdown.clone(), tracker.clone(), announce);
    // Bind before anything else, so that a taken port fails the start with a clear error.
    listeners.start(&initial).await?;
    // Push sinks: snapshot → spool → store (crate::push::sink).
    hub.set_push(registry.clone());
    let (push_tx, push_rx) = tokio::sync::mpsc::channel(crate::push::sink::FEED_CAPACITY);
    // Hub mode: spokes' snapshots (polled, or POSTed to /v1/ingest) → the same sinks (crate::hub).
    let (forward_tx, forward_rx) = tokio::sync::mpsc::channel(crate::hub::FORWARD_CAPACITY);
    registry.hub().set_forward(forward_tx.clone());
    tracker.spawn(crate::hub::poll::run(
        registry.hub().clone(),
        config.clone(),
        forward_tx,
        crate::publish::listen::files_dir(),
        shutdown.clone(),
    ));
    let pushes = crate::push::sink::Pushes::new(
        crate::paths::spool_dir(),
        crate::publish::listen::files_dir(),
        registry.clone(),
    );
    // Check notifications: state changes → the webhook's sink (crate::notify).
    let board = hub.clone();
    tracker.spawn(crate::notify::task::run(
        registry,
        move || board.board().device(),
        config.clone(),
        notify_rx,
        shutdown.clone(),
    ));
    tracker.spawn(crate::push::sink::run(
        pushes,
        config.clone(),
        push_rx,
        forward_rx,
        shutdown.clone(),
    ));
    tracker
        .spawn(crate::checks::daemon::report_health(checks.health.subscribe(), shutdown.clone()));
    // The one `GET /v2/snaps` poller: the `snaps` check and the dashboard's snaps read its list.
    let board = hub.clone();
    tracker.spawn(crate::checks::daemon::poll_snapd(
        checks.snapd.clone(),
        move |snaps| {
            board.board().set_snaps(crate::publish::dashboard::device::snaps_from(snaps));
        },
        config.clone(),
        shutdown.clone(),
    ));
    tracker.spawn(collect_loop(hub.clone(), push_tx, config.clone(), checks, shutdown.clone()));
    // Re-attach to a remodel recorded before a restart and publish its progress (SSE `remodel`).
    tracker.spawn(crate::remodel::drive::daemon_task(hub.clone(), shutdown.clone()));
    // The fleet client (fleet.enabled): poll, download, verify, apply, feedback.
    let fleet = options
        .fleet
        .unwrap_or_else(|| crate::fleet::daemon::Fleet::new(crate::fleet::daemon::status_path()));
    hub.set_fleet(fleet.clone());
    tracker.spawn(crate::fleet::daemon::run(fleet, hub.clone(), config.clone(), shutdown.clone()));
    // The dashboard's model, serial and snaps, asked of snapd now and then, never per page.
    tracker.spawn(crate::publish::dashboard::device::follow(hub.clone(), shutdown.clone()));
    tracker.spawn(listeners.follow(config));
    shutdown.cancelled().await;
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_TIMEOUT, tracker.wait()).await.is_err() {
        warn!("shutdown: some subscribers did not close in time");
    }
    Ok(())
}

/// Where the checks' results go besides the hub.
struct Checks {
    latest: crate::checks::daemon::Latest,
    snapd: crate::checks::daemon::SnapdView,
    health: watch::Sender<crate::checks::health::Health>,
    notify: tokio::sync::mpsc::Sender<crate::notify::Changes>,
    /// The sinks' figures, for the `push` check.
    sinks: crate::push::sink::Registry,
}

/// Collects on the interval and publishes; collection, encoding and the checks run on a
/// blocking thread.
async fn collect_loop(
    hub: Hub,
    push: tokio::sync::mpsc::Sender<Arc<crate::metrics::Snapshot>>,
    mut config: watch::Receiver<Config>,
    checks: Checks,
    shutdown: CancellationToken,
) {
    // Shared with each cycle's blocking job: a reference, not a copy of the configuration.
    let mut current = Arc::new(config.borrow_and_update().clone());
    let collector = Arc::new(std::sync::Mutex::new((
        Collector::new(),
        crate::checks::daemon::Checker::new(),
        crate::checks::daemon::Gathered::default(),
        crate::metrics::units::Units::default(),
    )));
    // Shared with each cycle's job, not copied.
    let spool_dir: Arc<std::path::Path> = Arc::from(crate::paths::spool_dir());
    let started = crate::checks::daemon::now();
    let mut seq = 0;
    let mut last_start = Instant::now();
    let mut next = last_start;
    let mut watching = true;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep_until(next) => {
                last_start = Instant::now();
                seq += 1;
                let format = current.publish.format;
                let collector = Arc::clone(&collector);
                let config = Arc::clone(&current);
                let snapd = checks.snapd.clone();
                let spool_dir = Arc::clone(&spool_dir);
                // The sinks' statuses are read in place by the job, not copied here.
                let sinks = checks.sinks.clone();
                let hub_fleet = hub.clone();
                let job = tokio::task::spawn_blocking(move || {
                    // A collection that panicked leaves the collector as it was; carry on with it.
                    let mut guard = collector.lock().unwrap_or_else(|p| p.into_inner());
                    let (collector, checker, gathered, units) = &mut *guard;
                    // The checks see every group; what is published and pushed only the groups
                    // `collectors.*` keep (crate::metrics::units).
                    // Without `collectors.*` keys both are the same snapshot: no copy per cycle.
                    let collected = collector.collect();
                    let (published, full) = if config.collectors.is_empty() {
                        let published = Published::new(seq, collected, format);
                        let full = Arc::clone(&published.snapshot);
                        (published, full)
                    } else {
                        let mut kept = collected.clone();
                        units.apply(&mut kept, &config.collectors);
                        (Published::new(seq, kept, format), Arc::new(collected))
                    };
                    let now = crate::checks::daemon::now();
                    // Kept from the last run and brought up to date in place: the sinks' and the
                    // fleet client's state read where they are (no copy), texts made anew only
                    // when they changed.
                    let sources = crate::checks::daemon::Sources {
                        snapd: &snapd,
                        spool_dir: &spool_dir,
                        sinks: Some(&sinks),
                        fleet: hub_fleet.fleet().filter(|_| config.fleet.enabled),
                        started,
                    };
                    let now_ms = crate::spool::millis(std::time::SystemTime::now());
                    let (facts, situation) = gathered.gather(&sources, now, now_ms);
                    let mut outcome =
                        checker.run(seq, &full, facts, situation, &config, now);
                    let changes = (!outcome.transitions.is_empty()).then(|| crate::notify::Changes {
                        time: now,
                        hostname: published.snapshot.hostname.clone(),
                        transitions: std::mem::take(&mut outcome.transitions),
                    });
                    (published, outcome, changes)
                });
                let res = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    res = job => res,
                };
                match res {
                    Ok((published, outcome, changes)) => {
                        if let Some(changes) = changes {
                            // Never waits either: the notifier spools on its own task.
                            if checks.notify.try_send(changes).is_err() {
                                warn!("check notifications are not keeping up; some changes are not notified");
                            }
                        }
                        // Never waits: a full queue is counted by the sinks, not felt here.
                        let _ = push.try_send(Arc::clone(&published.snapshot));
                        hub.publish(published);
                        checks.latest.set(Arc::clone(&outcome.health), outcome.set.clone());
                        hub.publish_checks(outcome.set, outcome.changes);
                        checks.health.send_if_modified(|health| {
                            // Copied only when it changed.
                            let changed = *health != *outcome.health;
                            if changed {
                                *health = (*outcome.health).clone();
                            }
                            changed
                        });
                    }
                    Err(err) => error!(error = %err, "internal error: collection failed"),
                }
                next = due(last_start, current.interval, Instant::now());
            }
            res = config.changed(), if watching => {
                if res.is_err() {
                    watching = false;
                    continue;
                }
                let new = config.borrow_and_update().clone();
                // First, so that what this change logs is filtered at the new level.
                if new.log_level != current.log_level && crate::logging::set_level(&new.log_level) {
                    info!(level = %new.log_level, "log level changed");
                }
                if new.interval != current.interval {
                    info!(interval = new.interval, "collection interval changed");
                    next = due(last_start, new.interval, Instant::now());
                }
                if new.publish.format != current.publish.format {
                    info!(format = ?new.publish.format, "stream format changed");
                    if let Some(latest) = hub.latest() {
                        hub.set_latest(Arc::new(latest.with_format(new.publish.format)));
                    }
                }
                current = Arc::new(new);
            }
        }
    }
}

/// When the next collection is due: `interval` after the last start, but never in the past. \[pure\]
pub fn due(last_start: Instant, interval: u32, now: Instant) -> Instant {
    (last_start + Duration::from_secs(u64::from(interval.max(1)))).max(now)
}

/// Cancels `shutdown` on SIGTERM or SIGINT, and re-reads the configuration on SIGHUP, as daemons
/// do. Installed before the listeners open, so a signal sent as soon as the daemon is reachable is
/// handled, not fatal (a default SIGHUP would kill it and leave its files behind).
fn listen_for_signals(
    shutdown: CancellationToken,
    service: Arc<crate::control::ConfigService>,
) -> anyhow::Result<JoinHandle<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    Ok(tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
                _ = hup.recv() => {
                    service.reread().await;
                    continue;
                }
            };
            info!(signal = name, "shutting down");
            shutdown.cancel();
            return;
        }
    }))
}

/// Logs the one line saying that snapd's socket does not accept a connection.
fn say_if_snapd_unreachable() {
    let path = crate::snapd::snapd_socket_path();
    if let Err(err) = std::os::unix::net::UnixStream::connect(&path) {
        warn!(
            "snapd is not reachable at {}: {}; running on defaults and flags",
            path.display(),
            crate::error::describe_io(&err)
        );
    }
}

/// Keeps glibc's malloc to one arena (the brk heap) for every thread, before any thread starts.
/// By default each thread that allocates gets an arena of its own, whose first heap holds about
/// 60 kB more of idle RSS across the runtime's threads (docs/performance.md). One arena is one lock
/// for the main thread, two workers and the blocking thread; glibc's per-thread cache (tcache)
/// serves most small allocations without taking it.
///
/// It also fixes the thresholds that glibc otherwise raises at run time: a block of 128 kB or more
/// is always its own mapping, returned when freed, and the heap's free top is always given back.
/// Without this, the first large block freed (the gzip state of an influx sink's request, about
/// 256 kB) raises the mmap threshold, and every later one stays in the heap: about 500 kB more
/// idle RSS with two sinks (docs/performance.md).
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets malloc parameters; the process has one thread here.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}

/// The glibc tunable the daemon runs with: no per-thread malloc caches (tcache).
///
/// Each thread's tcache keeps up to 7 freed blocks of each size up to 1 kB for itself; the
/// daemon's threads (the main thread, a worker per core, the blocking pool's) each hold their
/// own, and blocks parked there are neither reused by the other threads nor coalesced, so the
/// heap grew cycle after cycle: with every feature configured, 680 kB after 3 cycles to 840 kB
/// after 60, against 600 and 630 kB without the caches, at the same CPU per cycle within the
/// measurement's noise (docs/performance.md, "Steady state"). One arena and no tcache means
/// every allocation takes the arena's lock, uncontended at the daemon's rate.
pub const MALLOC_TUNABLE: &str = "glibc.malloc.tcache_count=0";

/// `GLIBC_TUNABLES` with [`MALLOC_TUNABLE`] added to `current`, or `None` when `current`
/// already sets the tcache's count (the daemon's own setting after it started itself again, or
/// one given on purpose, which wins). \[pure\]
pub fn with_malloc_tunable(current: Option<&str>) -> Option<String> {
    match current.map(str::trim).filter(|c| !c.is_empty()) {
        None => Some(MALLOC_TUNABLE.to_string()),
        Some(c) if c.split(':').any(|t| t.starts_with("glibc.malloc.tcache_count=")) => None,
        Some(c) => Some(format!("{c}:{MALLOC_TUNABLE}")),
    }
}

/// Turns glibc's per-thread malloc caches off ([`MALLOC_TUNABLE`]). glibc reads its tunables
/// only from the environment at start, so the daemon starts itself again (`execve` of
/// `/proc/self/exe`, same arguments, same process id) with `GLIBC_TUNABLES` set, once: the
/// second start finds it set. It runs first in [`main`], with one thread and nothing opened.
/// Best effort: when the program cannot be started again, the daemon runs on with the caches.
fn without_malloc_thread_caches() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt as _;
        let current = std::env::var("GLIBC_TUNABLES").ok();
        let Some(tunables) = with_malloc_tunable(current.as_deref()) else { return };
        let mut args = std::env::args_os();
        let Some(argv0) = args.next() else { return };
        // Returns only when the program could not be started again.
        let err = std::process::Command::new("/proc/self/exe")
            .arg0(argv0)
            .args(args)
            .env("GLIBC_TUNABLES", tunables)
            .exec();
        debug!(error = %err, "running with glibc's per-thread malloc caches");
    }
}

/// How long after start the daemon gives back the pages only its start touched: by then the
/// listeners are bound and the first cycle is done.
pub const STARTUP_SETTLE: Duration = Duration::from_secs(2);

/// Gives back the memory that only the start needed: the free part of the heap (`malloc_trim`),
/// and the binary's clean file pages (`MADV_PAGEOUT` over its read-only mappings), most of which
/// held code run once (argument parsing, configuration, binding) and were mapped 64 kB at a time
/// around each fault. What the daemon runs afterwards faults back in, once; the idle RSS is then
/// that working set (docs/performance.md, "Memory and binary size"). The kernel pages out only
/// pages this process alone maps, and file pages only of a binary its user owns or may write
/// (root); elsewhere the call changes nothing. Best effort: errors are ignored.
fn release_startup_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only hands free pages of malloc's heap back to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
    #[cfg(target_os = "linux")]
    {
        let (Ok(maps), Ok(exe)) =
            (std::fs::read_to_string("/proc/self/maps"), std::fs::read_link("/proc/self/exe"))
        else {
            return;
        };
        for (start, end) in read_only_ranges(&maps, &exe.to_string_lossy()) {
            // SAFETY: the range is a whole mapping of this process, read from /proc/self/maps; paging
            // out clean read-only file pages changes no content, a later access faults them back in.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_PAGEOUT);
            }
        }
    }
}

/// How much of the stack below the caller's frame [`release_stack_below_here`] leaves alone: more
/// than `madvise` and the code between use.
const STACK_MARGIN: usize = 16 * 1024;

/// Gives back the main thread's stack pages below the caller's frame (`MADV_DONTNEED`): the start
/// (argument parsing, configuration, TLS and listener set-up) ran deeper than the steady daemon
/// ever does on this thread, and those anonymous pages would otherwise stay resident for the
/// process's life (docs/performance.md). Nothing lives below the stack pointer of the thread that
/// calls it, and only that thread uses its stack, so the dropped pages are free; a deeper call
/// later gets fresh zero pages. Call it on the main thread only, from a shallow frame. Best effort.
#[inline(never)]
fn release_stack_below_here() {
    #[cfg(target_os = "linux")]
    {
        let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else { return };
        let marker = 0u8;
        let here = std::ptr::addr_of!(marker) as usize;
        let Some((low, _)) = main_stack_range(&maps).filter(|(lo, hi)| (*lo..*hi).contains(&here))
        else {
            return;
        };
        let page = 4096;
        let top = here.saturating_sub(STACK_MARGIN) & !(page - 1);
        if top > low {
            // SAFETY: [low, top) is the part of this thread's own stack mapping more than
            // STACK_MARGIN below the current frame: no live frame or data is there.
            unsafe {
                libc::madvise(low as *mut libc::c_void, top - low, libc::MADV_DONTNEED);
            }
        }
    }
}

/// The address range of the main thread's stack (`[stack]`) in `/proc/self/maps`. \[pure\]
pub fn main_stack_range(maps: &str) -> Option<(usize, usize)> {
    let line = maps.lines().find(|l| l.trim_end().ends_with(" [stack]"))?;
    let (start, end) = line.split_whitespace().next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    (end > start).then_some((start, end))
}

/// The address ranges of `/proc/self/maps` lines that map file `path` without write permission. \[pure\]
pub fn read_only_ranges(maps: &str, path: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.splitn(6, ' ');
            let range = fields.next()?;
            let perms = fields.next()?;
            let file = fields.nth(3)?.trim_start();
            if file != path || perms.contains('w') {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            let start = usize::from_str_radix(start, 16).ok()?;
            let end = usize::from_str_radix(end, 16).ok()?;
            (end > start).then_some((start, end))
        })
        .collect()
}

/// Raises the soft open-files limit to the hard one: every subscriber is a descriptor.
fn raise_fd_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own; setrlimit only reads it.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        let want = if limit.rlim_max == libc::RLIM_INFINITY { 1 << 20 } else { limit.rlim_max };
        if want > limit.rlim_cur {
            let raised = libc::rlimit { rlim_cur: want, rlim_max: limit.rlim_max };
            // Failing leaves the soft limit as it was, which still works, only with fewer subscribers.
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &raised);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: DaemonArgs,
    }

    fn parse(args: &[&str]) -> anyhow::Result<Config> {
        let wrap = Wrap::try_parse_from(std::iter::once("pocketses").chain(args.iter().copied()))?;
        Ok(initial_config(&wrap.args.settings())?.config)
    }

    #[test]
    fn read_only_ranges_are_the_binarys_mappings_without_write() {
        let maps = "\
5581e0a00000-5581e0b0c000 r--p 00000000 fe:01 1234  /usr/bin/pocketses
5581e0b0c000-5581e0f00000 r-xp 0010c000 fe:01 1234  /usr/bin/pocketses
5581e0f00000-5581e0f1c000 r--p 00500000 fe:01 1234  /usr/bin/pocketses
5581e0f1c000-5581e0f1e000 rw-p 0051c000 fe:01 1234  /usr/bin/pocketses
5581e2000000-5581e2060000 rw-p 00000000 00:00 0     [heap]
7f0000000000-7f0000028000 r--p 00000000 fe:01 99    /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000100000-7f0000101000 r--p 00000000 fe:01 77    /usr/bin/pocketses-other
";
        assert_eq!(
            read_only_ranges(maps, "/usr/bin/pocketses"),
            vec![
                (0x5581_e0a0_0000, 0x5581_e0b0_c000),
                (0x5581_e0b0_c000, 0x5581_e0f0_0000),
                (0x5581_e0f0_0000, 0x5581_e0f1_c000),
            ]
        );
    }

    #[test]
    fn main_stack_range_is_the_stack_line() {
        let maps = "\
5581e2000000-5581e2060000 rw-p 00000000 00:00 0     [heap]
7ffc1a000000-7ffc1a021000 rw-p 00000000 00:00 0                          [stack]
7ffc1a1f0000-7ffc1a1f2000 r-xp 00000000 00:00 0                          [vdso]
";
        assert_eq!(main_stack_range(maps), Some((0x7ffc_1a00_0000, 0x7ffc_1a02_1000)));
        assert_eq!(main_stack_range("10-20 rw-p 0 00:00 0 [heap]\n"), None);
        assert_eq!(main_stack_range("zz-20 rw-p 0 00:00 0 [stack]\n"), None);
        assert_eq!(main_stack_range("20-10 rw-p 0 00:00 0 [stack]\n"), None);
    }

    #[test]
    fn read_only_ranges_skip_lines_that_do_not_parse() {
        let maps = "zz-10 r--p 0 fe:01 1 /bin/p\n10-20 r--p\n20-10 r--p 0 fe:01 1 /bin/p\n\n";
        assert!(read_only_ranges(maps, "/bin/p").is_empty());
        assert_eq!(
            read_only_ranges("30-40 r-xp 0 fe:01 1 /bin/p (deleted)", "/bin/p (deleted)"),
            vec![(0x30, 0x40)]
        );
    }

    #[test]
    fn defaults_without_flags() {
        assert_eq!(parse(&[]).unwrap(), Config::default());
    }

    #[test]
    fn flags_overlay_defaults() {
        let config = parse(&[
            "--port",
            "9000",
            "--interval",
            "5",
            "--http-port",
            "0",
            "--bind",
            "127.0.0.1",
            "--format",
            "legacy",
            "--max-subscribers",
            "3",
            "--remodel-events",
        ])
        .unwrap();
        let local = std::net::IpAddr::from([127, 0, 0, 1]);
        assert_eq!(config.port, 9000);
        assert_eq!(config.interval, 5);
        assert_eq!(config.http.port, 0);
        assert_eq!(config.bind, local);
        assert_eq!(config.http.bind, local);
        assert_eq!(config.publish.format, crate::config::Format::Legacy);
        assert_eq!(config.publish.max_subscribers, 3);
        assert!(config.publish.remodel_events);
    }

    #[test]
    fn http_bind_and_set_refine_the_shorthands() {
        let config = parse(&[
            "--bind",
            "127.0.0.1",
            "--http-bind",
            "::1",
            "--set",
            "interval=7",
            "--interval",
            "9",
        ])
        .unwrap();
        assert_eq!(config.bind.to_string(), "127.0.0.1");
        assert_eq!(config.http.bind.to_string(), "::1");
        assert_eq!(config.interval, 7, "--set comes after the shorthand flags");
    }

    #[test]
    fn bad_flags_are_refused_in_snapds_words() {
        for (args, want) in [
            (
                &["--interval", "0"][..],
                r#"cannot set "interval": must be a whole number of seconds from 1 to 86400, not "0""#,
            ),
            (&["--interval", "86401"], r#"cannot set "interval""#),
            (&["--port", "65536"], r#"cannot set "port""#),
            (
                &["--bind", "localhost"],
                r#"cannot set "bind": must be an IPv4 or IPv6 address, not "localhost""#,
            ),
            (
                &["--format", "xml"],
                r#"cannot set "publish.format": must be one of json, legacy, not "xml""#,
            ),
            (&["--max-subscribers", "0"], r#"cannot set "publish.max-subscribers""#),
            (&["--set", "nope=1"], r#"cannot set "nope": must be a known key"#),
            (&["--port", "9188"], r#"cannot set "port": must differ from "http.port" (9188)"#),
        ] {
            let err = parse(args).unwrap_err().to_string();
            assert!(err.starts_with(want), "{args:?}: {err}");
        }
        assert!(parse(&["--set", "interval"]).unwrap_err().to_string().contains("want key=value"));
    }

    #[test]
    fn listening_text() {
        let l = Listening { tcp: Some("127.0.0.1:1".parse().unwrap()), http: None };
        // The text the ready file and the start log carry.
        assert_eq!(l.to_string(), "tcp=127.0.0.1:1 http=off");
    }

    #[test]
    fn the_malloc_tunable_is_added_once_and_a_given_tcache_count_wins() {
        assert_eq!(with_malloc_tunable(None).as_deref(), Some(MALLOC_TUNABLE));
        assert_eq!(with_malloc_tunable(Some(" ")).as_deref(), Some(MALLOC_TUNABLE));
        assert_eq!(
            with_malloc_tunable(Some("glibc.malloc.mxfast=0")).as_deref(),
            Some("glibc.malloc.mxfast=0:glibc.malloc.tcache_count=0")
        );
        // After the daemon started itself again: nothing more to do, no loop.
        let once = with_malloc_tunable(Some("glibc.malloc.mxfast=0")).unwrap();
        assert_eq!(with_malloc_tunable(Some(&once)), None);
        // A count given on purpose is kept, whatever it is.
        assert_eq!(with_malloc_tunable(Some("glibc.malloc.tcache_count=7")), None);
        assert_eq!(with_malloc_tunable(Some("a.b=1:glibc.malloc.tcache_count=2")), None);
        // Another tunable whose name only contains the words is not it.
        assert_eq!(
            with_malloc_tunable(Some("glibc.malloc.tcache_count_x=1")).as_deref(),
            Some("glibc.malloc.tcache_count_x=1:glibc.malloc.tcache_count=0")
        );
    }

    #[test]
    fn next_collection_is_due_an_interval_after_the_last_start() {
        let t0 = Instant::now();
        assert_eq!(due(t0, 60, t0 + Duration::from_secs(1)), t0 + Duration::from_secs(60));
        // Shortened below what already elapsed: collect now, not in the past.
        let now = t0 + Duration::from_secs(30);
        assert_eq!(due(t0, 10, now), now);
    }
}
