//! The sinks of a running daemon. \[io\]: spool files, HTTP, tasks; decisions are `push::policy`.
//!
//! Each enabled sink has two tasks around its [`Spool`]:
//!
//! - the **appender** takes every snapshot the collector hands over (respecting
//!   `push.NAME.interval`), encodes it as the sink's record and appends it to the spool, durable
//!   (`fdatasync`) before anything is sent, then wakes the sender;
//! - the **sender** peeks the oldest batch, POSTs it, and acknowledges it only on 2xx; 400 moves
//!   the batch to `rejected/`, 413 splits it, 429/503 wait for `Retry-After`, 401/403 and every
//!   other failure keep it and back off. While a backlog remains the sender goes on at once, so a
//!   replay after an outage runs as fast as the store answers.
//!
//! [`Pushes`] owns the sinks and follows the configuration: a new sink starts, a changed one is
//! stopped and started again on the same spool, a removed one stops and leaves its spool on disk
//! (nothing spooled is lost; `pocketses spool status` still shows it). [`Registry`] holds every
//! sink's [`SinkStatus`] for the control socket's `state` reply and `/metrics`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use super::client::{redact, Client};
use super::encode::{self, SinkFormat};
use super::policy::{self, Backoff, Health, Sizer, Verdict};
use crate::config::{Config, SinkConfig};
use crate::hub::Forwarded;
use crate::metrics::encode::prometheus::{Family, Kind, Sample};
use crate::metrics::Snapshot;
use crate::spool::{self, millis, Entry, Limits, Spool};

/// Snapshots waiting for a sink's appender; past this (a disk stuck for minutes) a snapshot is
/// counted as missed, never queued without bound.
pub const FEED_CAPACITY: usize = 64;
/// How long a spoke's snapshot waits for room in a sink's feed ([`Pushes::offer_waiting`]).
pub const FORWARD_WAIT: Duration = Duration::from_secs(5);
/// The directory in a spool where rejected batches are kept.
pub const REJECTED_DIR: &str = "rejected";

/// The figures of one sink: `pocketses status`, `spool status` (live) and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SinkStatus {
    /// The sink's name.
    pub name: String,
    /// Its URL without credentials or query.
    pub url: String,
    /// `influx`, `prometheus` or `json`.
    pub format: String,
    /// `ok`, `unauthorized`, `throttled`, `failing`, `disabled`.
    pub state: String,
    /// Records (snapshots) waiting in the spool.
    pub pending_records: u64,
    /// Their bytes on disk.
    pub pending_bytes: u64,
    /// The points in them (influx lines, prometheus samples, json documents).
    #[serde(default)]
    pub pending_points: u64,
    /// Append time of the oldest waiting record, milliseconds since the epoch.
    pub oldest_pending_ms: Option<u64>,
    /// Records dropped by the spool's limits, over the spool's life.
    pub dropped_records: u64,
    /// Damaged records skipped when the spool was opened.
    pub corrupt_records: u64,
    /// Snapshots that could not be spooled (a failed write, a full feed), since start.
    pub missed_records: u64,
    /// Records the store rejected (400) and that were moved to `rejected/`, since start.
    pub rejected_records: u64,
    /// Records delivered (2xx), since start.
    pub sent_records: u64,
    /// Points in them (influx lines, prometheus samples, json documents).
    pub sent_points: u64,
    /// Requests that got a 2xx, since start.
    pub sent_requests: u64,
    /// Requests that failed (no 2xx), since start.
    pub failed_requests: u64,
    /// Request bytes delivered, since start.
    pub sent_bytes: u64,
    /// Bytes written to the spool since start (records and `ack` files: the wear).
    pub spool_bytes_written: u64,
    /// Appends to the spool since start, one `fdatasync` each (fewer than the records when
    /// snapshots arrive together: group commit).
    #[serde(default)]
    pub spool_appends: u64,
    /// When the store last answered 2xx, seconds since the epoch.
    pub last_success: Option<u64>,
    /// The last failure, in words.
    pub last_error: Option<String>,
    /// When it happened, seconds since the epoch.
    pub last_error_time: Option<u64>,
}

impl SinkStatus {
    fn take_stats(&mut self, stats: &spool::Stats) {
        self.pending_records = stats.pending_records;
        self.pending_bytes = stats.pending_bytes;
        self.pending_points = stats.pending_weight;
        self.oldest_pending_ms = stats.oldest_pending_ms;
        self.dropped_records = stats.dropped_records;
        self.corrupt_records = stats.corrupt_skipped;
        self.spool_bytes_written = stats.bytes_written;
        self.spool_appends = stats.appended_batches;
    }

    fn error(&mut self, text: String, now: SystemTime) {
        self.last_error = Some(text);
        self.last_error_time = Some(millis(now) / 1000);
    }
}

/// One line about a sink for `pocketses status`:
/// `vm (influx) ok: 0 waiting, last sent 3s ago, 0 dropped, 0 rejected`. \[pure\]
pub fn summary(s: &SinkStatus, now_ms: u64) -> String {
    let ago = |ms: u64| format!("{}s ago", now_ms.saturating_sub(ms) / 1000);
    let oldest = s.oldest_pending_ms.map(|t| format!(" (oldest {})", ago(t))).unwrap_or_default();
    let sent = s.last_success.map_or("nothing sent yet".to_string(), |t| {
        format!("last sent {}", ago(t.saturating_mul(1000)))
    });
    format!(
        "{} ({}) {}: {} waiting{oldest}, {sent}, {} dropped, {} rejected",
        s.name, s.format, s.state, s.pending_records, s.dropped_records, s.rejected_records
    )
}

/// Every sink's status, shared by the sinks and the readers, and the hub's figures
/// (`crate::hub`), whose snapshots go through the same sinks. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    sinks: Arc<Mutex<BTreeMap<String, Arc<Mutex<SinkStatus>>>>>,
    hub: crate::hub::Figures,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Registry {
    /// The status of every sink, by name.
    pub fn statuses(&self) -> Vec<SinkStatus> {
        lock(&self.sinks).values().map(|s| lock(s).clone()).collect()
    }

    /// Reads every sink's status in place, by name, without a copy (the checks, every cycle).
    pub fn for_each(&self, mut f: impl FnMut(&SinkStatus)) {
        for status in lock(&self.sinks).values() {
            f(&lock(status));
        }
    }

    fn entry(&self, name: &str) -> Arc<Mutex<SinkStatus>> {
        lock(&self.sinks)
            .entry(name.to_string())
            .or_insert_with(|| {
                Arc::new(Mutex::new(SinkStatus { name: name.to_string(), ..SinkStatus::default() }))
            })
            .clone()
    }

    fn remove(&self, name: &str) {
        lock(&self.sinks).remove(name);
    }

    /// The `pocketses_push_*` and `pocketses_hub_*` families for `/metrics`, at `now_ms`.
    pub fn families(&self, now_ms: u64) -> Vec<Family> {
        let mut out = families(&self.statuses(), now_ms);
        out.extend(self.hub.families());
        out
    }

    /// The hub's figures and its way into the sinks.
    pub fn hub(&self) -> &crate::hub::Figures {
        &self.hub
    }
}

/// The `pocketses_push_*` families of `statuses`. \[pure\]
pub fn families(statuses: &[SinkStatus], now_ms: u64) -> Vec<Family> {
    type Field = fn(&SinkStatus, u64) -> Option<f64>;
    let table: [(&str, &str, Kind, Field); 15] = [
        (
            "pocketses_push_backlog_records",
            "Snapshots spooled for the sink and not yet acknowledged.",
            Kind::Gauge,
            |s, _| Some(s.pending_records as f64),
        ),
        (
            "pocketses_push_backlog_points",
            "Points (influx lines, prometheus samples, json documents) in the sink's spooled snapshots not yet acknowledged.",
            Kind::Gauge,
            |s, _| Some(s.pending_points as f64),
        ),
        (
            "pocketses_push_backlog_bytes",
            "Bytes on disk of the sink's spooled snapshots not yet acknowledged.",
            Kind::Gauge,
            |s, _| Some(s.pending_bytes as f64),
        ),
        (
            "pocketses_push_backlog_age_seconds",
            "Age of the oldest snapshot waiting for the sink (0 when none waits).",
            Kind::Gauge,
            |s, now| {
                Some(s.oldest_pending_ms.map_or(0.0, |t| now.saturating_sub(t) as f64 / 1000.0))
            },
        ),
        (
            "pocketses_push_sent_records_total",
            "Snapshots the sink's store acknowledged (2xx) since start.",
            Kind::Counter,
            |s, _| Some(s.sent_records as f64),
        ),
        (
            "pocketses_push_sent_points_total",
            "Points (influx lines, prometheus samples, json documents) the sink's store acknowledged since start.",
            Kind::Counter,
            |s, _| Some(s.sent_points as f64),
        ),
        (
            "pocketses_push_sent_bytes_total",
            "Request bytes the sink's store acknowledged since start.",
            Kind::Counter,
            |s, _| Some(s.sent_bytes as f64),
        ),
        (
            "pocketses_push_requests_failed_total",
            "Requests to the sink's store that got no 2xx since start.",
            Kind::Counter,
            |s, _| Some(s.failed_requests as f64),
        ),
        (
            "pocketses_push_dropped_records_total",
            "Spooled snapshots dropped by the spool's limits (max-bytes, max-age), oldest first.",
            Kind::Counter,
            |s, _| Some(s.dropped_records as f64),
        ),
        (
            "pocketses_push_rejected_records_total",
            "Snapshots the store rejected (400) and that were moved to rejected/ since start.",
            Kind::Counter,
            |s, _| Some(s.rejected_records as f64),
        ),
        (
            "pocketses_push_missed_records_total",
            "Snapshots that could not be spooled for the sink since start.",
            Kind::Counter,
            |s, _| Some(s.missed_records as f64),
        ),
        (
            "pocketses_push_spool_appends_total",
            "Appends to the sink's spool since start, one fdatasync each (snapshots arriving together share one).",
            Kind::Counter,
            |s, _| Some(s.spool_appends as f64),
        ),
        (
            "pocketses_push_corrupt_records",
            "Damaged spool records skipped when the sink's spool was opened.",
            Kind::Gauge,
            |s, _| Some(s.corrupt_records as f64),
        ),
        (
            "pocketses_push_last_success_timestamp_seconds",
            "When the sink's store last acknowledged a request.",
            Kind::Gauge,
            |s, _| s.last_success.map(|t| t as f64),
        ),
        (
            "pocketses_push_up",
            "Whether the sink's last attempt succeeded (1) or not (0).",
            Kind::Gauge,
            |s, _| Some(if s.state == Health::Ok.as_str() { 1.0 } else { 0.0 }),
        ),
    ];
    table
        .iter()
        .map(|(name, help, kind, field)| {
            let mut family = Family::new(name, help, *kind);
            family.samples = statuses
                .iter()
                .filter_map(|s| field(s, now_ms).map(|v| Sample::with(&[("sink", &s.name)], v)))
                .collect();
            family
        })
        .collect()
}

/// What the two tasks of a sink share.
struct Ctx {
    name: String,
    dir: PathBuf,
    config: SinkConfig,
    format: SinkFormat,
    spool: Arc<Mutex<Spool>>,
    client: Client,
    status: Arc<Mutex<SinkStatus>>,
    wake: Notify,
}

impl Ctx {
    fn status(&self) -> std::sync::MutexGuard<'_, SinkStatus> {
        lock(&self.status)
    }

    /// Runs `job` on the spool on a blocking thread, and takes its figures afterwards.
    async fn with_spool<T: Send + 'static>(
        self: &Arc<Self>,
        job: impl FnOnce(&mut Spool) -> Result<T, spool::Error> + Send + 'static,
    ) -> Result<T, String> {
        let spool = Arc::clone(&self.spool);
        let res = tokio::task::spawn_blocking(move || {
            let mut spool = lock(&spool);
            let res = job(&mut spool);
            (res, spool.stats())
        })
        .await;
        match res {
            Ok((res, stats)) => {
                self.status().take_stats(&stats);
                res.map_err(|err| err.to_string())
            }
            Err(err) => Err(format!("internal error: spool task failed: {err}")),
        }
    }
}

/// What a sink's appender takes.
///
/// Extension point for sinks whose records are made elsewhere (`crate::notify`'s webhook): a
/// [`Feed::Record`] is spooled as it is and then sent, retried and acknowledged exactly like
/// a snapshot's record.
#[derive(Debug)]
enum Feed {
    /// A snapshot (this device's or a spoke's, with its tags), encoded in the sink's format.
    Snapshot(Forwarded),
    /// A record already in the sink's format, spooled as it is.
    Record(Vec<u8>),
}

/// A running sink.
struct Running {
    config: SinkConfig,
    feed: Option<mpsc::Sender<Feed>>,
    stop: CancellationToken,
    tasks: TaskTracker,
    full: bool,
    /// The start failed (a CA file missing, a spool that cannot be opened): when to try again,
    /// how many tries failed, and the last error (logged again only when it changes).
    retry: Option<Retry>,
}

/// A sink whose start failed, waiting to be started again.
#[derive(Debug, Clone)]
struct Retry {
    at: tokio::time::Instant,
    failures: u32,
    error: String,
}

/// The wait before starting a failed sink again: 5 s doubling to 5 minutes. \[pure\]
fn retry_delay(failures: u32) -> Duration {
    let secs = 5u64.saturating_mul(1 << failures.saturating_sub(1).min(6));
    Duration::from_secs(secs.min(300))
}

/// The sinks of the daemon; see the module documentation.
pub struct Pushes {
    root: PathBuf,
    files_dir: PathBuf,
    registry: Registry,
    sinks: BTreeMap<String, Running>,
}

impl Pushes {
    /// Sinks with their spools under `root` (`paths::spool_dir`), relative CA paths in `files_dir`.
    pub fn new(root: PathBuf, files_dir: PathBuf, registry: Registry) -> Self {
        Pushes { root, files_dir, registry, sinks: BTreeMap::new() }
    }

    /// Starts, restarts and stops sinks to match `wanted`.
    pub async fn apply(&mut self, wanted: &BTreeMap<String, SinkConfig>) {
        let stale: Vec<String> = self
            .sinks
            .iter()
            .filter(|(name, running)| wanted.get(*name) != Some(&running.config))
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some(running) = self.sinks.remove(&name) {
                stop(running).await;
                if !wanted.contains_key(&name) {
                    info!(sink = %name, "push sink removed; its spool stays in {}", self.root.join(&name).display());
                    self.registry.remove(&name);
                }
            }
        }
        for (name, config) in wanted {
            if !self.sinks.contains_key(name) {
                let running = self.start(name, config).await;
                self.sinks.insert(name.clone(), running);
            }
        }
    }

    /// Hands a snapshot to every sink; never waits (a full feed counts a missed snapshot).
    pub fn offer(&mut self, item: &Forwarded) {
        for (name, running) in &mut self.sinks {
            let Some(feed) = &running.feed else { continue };
            match feed.try_send(Feed::Snapshot(item.clone())) {
                Ok(()) => running.full = false,
                Err(_) => {
                    if !running.full {
                        warn!(sink = %name, "push sink is not keeping up with its spool; missing snapshots");
                        running.full = true;
                    }
                    lock(&self.registry.entry(name)).missed_records += 1;
                }
            }
        }
    }

    /// Hands a spoke's snapshot to every sink, waiting up to [`FORWARD_WAIT`] for room in each
    /// feed: a hub's spokes are told to wait (their POSTs queue behind the full forward channel,
    /// then get 503 and keep their data) instead of having their documents dropped. Only a sink
    /// whose feed stays full that long (a disk stuck for seconds) misses it, counted as missed,
    /// and its receipt fails, so the spoke is not told the documents are taken.
    ///
    /// Each sink's copy carries its own clone of the snapshot's receipt, which the appender
    /// settles after the append's sync (`crate::hub::receipt`); with no sink running the
    /// receipt fails.
    pub async fn offer_waiting(&mut self, item: Forwarded) {
        self.offer_within(item, FORWARD_WAIT).await;
    }

    async fn offer_within(&mut self, mut item: Forwarded, wait: Duration) {
        let receipt = item.receipt.take();
        let mut handed = 0;
        for (name, running) in &mut self.sinks {
            let Some(feed) = &running.feed else { continue };
            match tokio::time::timeout(wait, feed.reserve()).await {
                Ok(Ok(permit)) => {
                    permit.send(Feed::Snapshot(Forwarded {
                        receipt: receipt.clone(),
                        ..item.clone()
                    }));
                    running.full = false;
                    handed += 1;
                }
                _ => {
                    if !running.full {
                        warn!(sink = %name, "push sink is not keeping up with its spool; missing snapshots");
                        running.full = true;
                    }
                    lock(&self.registry.entry(name)).missed_records += 1;
                    if let Some(receipt) = &receipt {
                        receipt.clone().failed(format!(
                            "push sink {name} is not keeping up with its spool (see pocketses status)"
                        ));
                    }
                }
            }
        }
        match receipt {
            Some(receipt) if handed == 0 => {
                receipt.failed("no push sink is running on this hub (see pocketses status)")
            }
            Some(receipt) => receipt.passed_on(),
            None => {}
        }
    }

    /// Hands a record made elsewhere (in the sink's format) to sink `name`; never waits.
    /// `false` when the sink is not running or its feed is full (counted as missed).
    pub fn offer_record(&mut self, name: &str, record: Vec<u8>) -> bool {
        let Some(running) = self.sinks.get_mut(name) else { return false };
        let Some(feed) = &running.feed else { return false };
        if feed.try_send(Feed::Record(record)).is_ok() {
            return true;
        }
        warn!(sink = %name, "sink is not keeping up with its spool; missing a record");
        lock(&self.registry.entry(name)).missed_records += 1;
        false
    }

    /// The sinks configured, and the ones of them running (taking snapshots).
    fn counts(&self) -> crate::hub::Sinks {
        crate::hub::Sinks {
            configured: self.sinks.len(),
            running: self.sinks.values().filter(|r| r.feed.is_some()).count(),
        }
    }

    /// When the next failed sink is due to be started again.
    fn next_retry(&self) -> Option<tokio::time::Instant> {
        self.sinks.values().filter_map(|r| r.retry.as_ref().map(|r| r.at)).min()
    }

    /// Starts again the failed sinks that are due.
    async fn retry(&mut self) {
        let now = tokio::time::Instant::now();
        let due: Vec<String> = self
            .sinks
            .iter()
            .filter(|(_, r)| r.retry.as_ref().is_some_and(|r| r.at <= now))
            .map(|(name, _)| name.clone())
            .collect();
        for name in due {
            let Some(old) = self.sinks.remove(&name) else { continue };
            let config = old.config.clone();
            let previous = old.retry.clone();
            stop(old).await;
            let running = self.start_after(&name, &config, previous).await;
            self.sinks.insert(name, running);
        }
    }

    /// Stops every sink (the appenders spool what they already took).
    pub async fn stop_all(&mut self) {
        for (_, running) in std::mem::take(&mut self.sinks) {
            stop(running).await;
        }
    }

    async fn start(&mut self, name: &str, config: &SinkConfig) -> Running {
        self.start_after(name, config, None).await
    }

    /// Starts a sink; `previous` is the failure of its last start, if any.
    async fn start_after(
        &mut self,
        name: &str,
        config: &SinkConfig,
        previous: Option<Retry>,
    ) -> Running {
        let status = self.registry.entry(name);
        let format = config.format.unwrap_or(SinkFormat::Json);
        {
            let mut s = lock(&status);
            *s = SinkStatus {
                name: name.to_string(),
                url: redact(config.url.as_deref().unwrap_or_default()),
                format: format.as_str().to_string(),
                state: Health::Ok.as_str().to_string(),
                ..s.clone()
            };
        }
        let stopped = Running {
            config: config.clone(),
            feed: None,
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
            full: false,
            retry: None,
        };
        if !config.enabled() {
            lock(&status).state = Health::Disabled.as_str().to_string();
            info!(sink = %name, "push sink disabled; its spool is kept");
            return stopped;
        }
        // A start that failed is tried again later (the CA file may appear, the disk may come
        // back): logged when it first fails and when the reason changes, not at every try.
        let fail = |text: String, stopped: Running| -> Running {
            let failures = previous.as_ref().map_or(0, |p| p.failures) + 1;
            let delay = retry_delay(failures);
            if previous.as_ref().is_none_or(|p| p.error != text) {
                error!(sink = %name, "{text}; trying again in {} s", delay.as_secs());
            }
            let mut s = lock(&status);
            s.state = Health::Failing.as_str().to_string();
            s.error(text.clone(), SystemTime::now());
            drop(s);
            let at = tokio::time::Instant::now() + delay;
            Running { retry: Some(Retry { at, failures, error: text }), ..stopped }
        };
        let client = match Client::new(config, &self.files_dir) {
            Ok(client) => client,
            Err(err) => return fail(format!("cannot start push sink {name}: {err}"), stopped),
        };
        let dir = self.root.join(name);
        let spool_dir = dir.clone();
        let limits = Limits {
            max_bytes: config.spool_max_bytes(),
            max_age: config.spool_max_age.map(Duration::from_secs),
            ..Limits::default()
        };
        let opened = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir).map_err(|err| {
                format!(
                    "cannot create spool directory {}: {}",
                    dir.display(),
                    crate::error::describe_io(&err)
                )
            })?;
            // The spool counts the points waiting as it goes, read from the records' headers.
            let weigh = spool::Weigher::new(move |record: &[u8]| {
                encode::points(format, record).map_or(0, |n| n as u64)
            });
            Spool::open_weighed(&dir, limits, weigh).map_err(|err| err.to_string())
        })
        .await;
        let spool = match opened {
            Ok(Ok(spool)) => spool,
            Ok(Err(err)) => return fail(format!("cannot start push sink {name}: {err}"), stopped),
            Err(err) => {
                return fail(
                    format!("internal error: cannot start push sink {name}: {err}"),
                    stopped,
                )
            }
        };
        if previous.is_some() {
            info!(sink = %name, "push sink starts after all");
        }
        let stats = spool.stats();
        lock(&status).take_stats(&stats);
        if stats.corrupt_skipped > 0 || stats.torn_truncations > 0 {
            warn!(sink = %name, corrupt = stats.corrupt_skipped, torn = stats.torn_truncations, "push spool was damaged; skipped what could not be read");
        }
        info!(sink = %name, url = %client.url(), format = format.as_str(), pending = stats.pending_records, "push sink started");
        let ctx = Arc::new(Ctx {
            name: name.to_string(),
            dir: spool_dir,
            config: config.clone(),
            format,
            spool: Arc::new(Mutex::new(spool)),
            client,
            status,
            wake: Notify::new(),
        });
        // Whatever was spooled before this start goes out first.
        ctx.wake.notify_one();
        let (tx, rx) = mpsc::channel(FEED_CAPACITY);
        let Running { stop: token, tasks, .. } = &stopped;
        tasks.spawn(append_loop(Arc::clone(&ctx), rx, token.clone()));
        tasks.spawn(send_loop(ctx, token.clone()));
        Running { feed: Some(tx), ..stopped }
    }
}

async fn stop(running: Running) {
    running.stop.cancel();
    drop(running.feed);
    running.tasks.close();
    running.tasks.wait().await;
}

/// Runs the sinks: follows the configuration and hands each snapshot of `snapshots` (this
/// device's) and of `forwarded` (the hub's spokes', `crate::hub`) to them, until `shutdown`.
/// Sinks whose start failed are started again after a while.
pub async fn run(
    mut pushes: Pushes,
    mut config: watch::Receiver<Config>,
    mut snapshots: mpsc::Receiver<Arc<Snapshot>>,
    mut forwarded: mpsc::Receiver<Forwarded>,
    shutdown: CancellationToken,
) {
    let initial = config.borrow_and_update().push.clone();
    pushes.apply(&initial).await;
    // What `POST /v1/ingest` needs to know: whether a sink would take its documents.
    pushes.registry.hub().set_sinks(pushes.counts());
    let mut watching = true;
    let mut forwarding = true;
    loop {
        let retry = pushes.next_retry();
        tokio::select! {
            _ = shutdown.cancelled() => break,
            snapshot = snapshots.recv() => match snapshot {
                Some(snapshot) => pushes.offer(&Forwarded::local(snapshot)),
                None => break,
            },
            item = forwarded.recv(), if forwarding => match item {
                Some(item) => tokio::select! {
                    _ = shutdown.cancelled() => break,
                    () = pushes.offer_waiting(item) => {}
                },
                None => forwarding = false,
            },
            _ = tokio::time::sleep_until(retry.unwrap_or_else(tokio::time::Instant::now)), if retry.is_some() => {
                pushes.retry().await;
                pushes.registry.hub().set_sinks(pushes.counts());
            }
            res = config.changed(), if watching => {
                if res.is_err() {
                    watching = false;
                    continue;
                }
                let wanted = config.borrow_and_update().push.clone();
                pushes.apply(&wanted).await;
                pushes.registry.hub().set_sinks(pushes.counts());
            }
        }
    }
    pushes.stop_all().await;
    pushes.registry.hub().set_sinks(pushes.counts());
}

/// Takes snapshots, keeps those `push.NAME.interval` wants, spools them (and records made
/// elsewhere, as they come).
///
/// Group commit: whatever waits in the feed when an append starts (a hub's spokes answering
/// together, ingest POSTs arriving at once, snapshots queued while the previous `fdatasync`
/// ran) is taken with it, up to [`FEED_CAPACITY`] items, and appended as one batch with one
/// `fdatasync`. The sender is woken only after that sync returned, so nothing is sent, and
/// nothing is counted as spooled, before it is durable; then the spokes' snapshots' receipts
/// are settled, so a hub answers an ingest POST 200 only once its documents are synced.
async fn append_loop(ctx: Arc<Ctx>, mut feed: mpsc::Receiver<Feed>, stop: CancellationToken) {
    // The last snapshot spooled per source (this device: ""; each spoke), for `interval`.
    let mut last: BTreeMap<String, f64> = BTreeMap::new();
    let mut failing = false;
    // The plain bytes of the record being made, kept from one record to the next.
    let scratch = Arc::new(Mutex::new(Vec::new()));
    loop {
        let first = tokio::select! {
            // Spool what was already handed over before stopping: nothing taken is dropped.
            _ = stop.cancelled() => match feed.try_recv() {
                Ok(item) => item,
                Err(_) => return,
            },
            item = feed.recv() => match item {
                Some(item) => item,
                None => return,
            },
        };
        let mut items = vec![first];
        while items.len() < FEED_CAPACITY {
            match feed.try_recv() {
                Ok(item) => items.push(item),
                Err(_) => break,
            }
        }
        let format = ctx.format;
        let mut jobs = Vec::with_capacity(items.len());
        // Settled once the batch's sync returned, or failed with why (`crate::hub::receipt`).
        let mut receipts = Vec::with_capacity(items.len());
        // What `last` said before this batch, to put back if the append fails: a spoke sends
        // the same documents again after a 503, and they must not be skipped as already spooled.
        let mut before = Vec::new();
        for mut item in items {
            let mut tags = ctx.config.tags.clone();
            let mut receipt = None;
            if let Feed::Snapshot(forwarded) = &mut item {
                receipt = forwarded.receipt.take();
                let previous = last.get(forwarded.source()).copied();
                if !policy::due(previous, forwarded.snapshot.timestamp, ctx.config.interval) {
                    // Not wanted by this sink's interval: nothing of it to store.
                    if let Some(receipt) = receipt {
                        receipt.stored();
                    }
                    continue;
                }
                if last.len() > 10_000 && previous.is_none() {
                    // Bounded whatever spokes come and go: forget them all, this costs one extra record.
                    last.clear();
                }
                let source = forwarded.source().to_string();
                before.push((source.clone(), previous));
                last.insert(source, forwarded.snapshot.timestamp);
                if !forwarded.tags.is_empty() {
                    tags = crate::hub::merge_tags(format, &ctx.config.tags, &forwarded.tags);
                }
            }
            jobs.push((item, tags));
            receipts.push(receipt);
        }
        if jobs.is_empty() {
            continue;
        }
        let n_jobs = jobs.len() as u64;
        let scratch = Arc::clone(&scratch);
        let res = ctx
            .with_spool(move |spool| {
                let mut scratch = lock(&scratch);
                let mut records = Vec::with_capacity(jobs.len());
                let mut bad = Vec::new();
                for (i, (item, tags)) in jobs.into_iter().enumerate() {
                    let made = match item {
                        Feed::Snapshot(forwarded) => {
                            encode::record_with(format, &forwarded.snapshot, &tags, &mut scratch)
                        }
                        Feed::Record(record) => Ok(record),
                    };
                    match made {
                        Ok(record) => records.push(record),
                        Err(err) => bad.push((i, err.to_string())),
                    }
                }
                let n = records.len() as u64;
                Ok(match spool.append_batch(&records, SystemTime::now()) {
                    Ok(_) => (n, bad, None),
                    Err(err) => (0, bad, Some((n, err.to_string()))),
                })
            })
            .await;
        let (spooled, bad, failed) = match res {
            Ok(outcome) => outcome,
            Err(err) => (0, Vec::new(), Some((n_jobs, err))),
        };
        if spooled > 0 {
            ctx.wake.notify_one();
        }
        settle(&ctx.name, receipts, &bad, failed.as_ref().map(|(_, err)| err.as_str()));
        if failed.is_some() {
            for (source, previous) in before.into_iter().rev() {
                match previous {
                    Some(timestamp) => last.insert(source, timestamp),
                    None => last.remove(&source),
                };
            }
        }
        let mut errors: Vec<(u64, String)> = bad.into_iter().map(|(_, e)| (1, e)).collect();
        errors.extend(failed);
        if errors.is_empty() {
            if failing {
                info!(sink = %ctx.name, "spooling again");
                failing = false;
            }
            continue;
        }
        for (missed, err) in errors {
            let text = format!("cannot spool snapshot for push sink {}: {err}", ctx.name);
            if !failing {
                error!("{text}");
                failing = true;
            }
            let mut status = ctx.status();
            status.missed_records += missed;
            status.error(text, SystemTime::now());
        }
    }
}

/// Tells whoever waits for an appended group's snapshots (an ingest request, a spoke's poller)
/// how it went, once the append and its sync returned: stored, or why not (`bad`: the jobs that
/// could not be encoded, by index; `failed`: why the whole append failed). \[pure\]
fn settle(
    sink: &str,
    receipts: Vec<Option<crate::hub::receipt::Receipt>>,
    bad: &[(usize, String)],
    failed: Option<&str>,
) {
    for (i, receipt) in receipts.into_iter().enumerate() {
        let Some(receipt) = receipt else { continue };
        let why = bad.iter().find(|(j, _)| *j == i).map(|(_, e)| e.as_str()).or(failed);
        match why {
            Some(err) => {
                receipt.failed(format!("cannot spool snapshot for push sink {sink}: {err}"))
            }
            None => receipt.stored(),
        }
    }
}

/// Sends the spool's backlog, oldest first, for as long as the sink runs.
async fn send_loop(ctx: Arc<Ctx>, stop: CancellationToken) {
    let mut backoff = Backoff::default();
    let mut sizer = Sizer::new(ctx.config.batch());
    let mut health = Health::Ok;
    // After an unreadable record, the records before it go alone first.
    let mut cap: Option<usize> = None;
    loop {
        if stop.is_cancelled() {
            return;
        }
        let limit = cap.take().unwrap_or_else(|| sizer.limit());
        let (entries, held) = match ctx.with_spool(move |spool| spool.peek_held(limit)).await {
            Ok(peeked) => peeked,
            Err(err) => {
                let text = format!("cannot read spool of push sink {}: {err}", ctx.name);
                health = change(&ctx, health, Health::Failing, &text);
                ctx.status().error(text, SystemTime::now());
                if !pause(&stop, backoff.next(rand::random())).await {
                    return;
                }
                continue;
            }
        };
        let Some(last) = entries.last().map(|e| e.seq) else {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ctx.wake.notified() => continue,
            }
        };
        let payloads: Vec<&[u8]> = entries.iter().map(|e| e.payload.as_slice()).collect();
        // Records this process made and held in memory since are not decoded again to check
        // them; records read back from disk are (their checksums were checked by the spool).
        let (verdict, sent_bytes) = match encode::body_checked(ctx.format, &payloads, !held) {
            Ok(body) => {
                let answer = tokio::select! {
                    _ = stop.cancelled() => return,
                    answer = ctx.client.send(&body) => answer,
                };
                match answer {
                    Ok(answer) => {
                        let now = millis(SystemTime::now()) / 1000;
                        let verdict = policy::classify(
                            answer.status,
                            answer.retry_after.as_deref(),
                            now,
                            &answer.body,
                        );
                        if verdict != Verdict::Ack {
                            let text = format!(
                                "{} answered {}",
                                ctx.client.url(),
                                policy::message(answer.status, &answer.body)
                            );
                            ctx.status().error(text, SystemTime::now());
                        }
                        (verdict, body.bytes.len())
                    }
                    Err(text) => {
                        ctx.status().error(text, SystemTime::now());
                        (Verdict::Backoff, 0)
                    }
                }
            }
            // A record the format cannot read can never be sent: set it aside like a 400, alone.
            Err(encode::Error::BadRecord(text)) => {
                let bad = entries
                    .iter()
                    .position(|e| encode::body(ctx.format, &[e.payload.as_slice()]).is_err())
                    .unwrap_or(0);
                if bad == 0 {
                    reject(&ctx, &entries[..1], &format!("unreadable record: {text}")).await;
                } else {
                    cap = Some(bad);
                }
                continue;
            }
            Err(err) => {
                ctx.status().error(err.to_string(), SystemTime::now());
                (Verdict::Backoff, 0)
            }
        };
        let next = health.after(&verdict);
        let why = ctx.status().last_error.clone().unwrap_or_default();
        health = change(&ctx, health, next, &why);
        if verdict != Verdict::Ack {
            ctx.status().failed_requests += 1;
            // The deferred acknowledgements go to disk when the store stops taking requests,
            // so a crash during an outage sends nothing again (writes only when some wait).
            if let Err(err) = ctx.with_spool(Spool::flush_ack).await {
                error!(sink = %ctx.name, "cannot acknowledge sent records: {err}");
            }
        }
        match verdict {
            Verdict::Ack => {
                backoff.reset();
                sizer.success();
                // Deferred: the ack file is written every few requests (spool::ACK_WRITE_EVERY);
                // a crash in between sends those records again, at least once, never lost.
                if let Err(err) = ctx.with_spool(move |spool| spool.ack_deferred(last)).await {
                    // The records go again after a restart: at least once, never lost.
                    error!(sink = %ctx.name, "cannot acknowledge sent records: {err}");
                }
                let points: usize = entries
                    .iter()
                    .filter_map(|e| encode::points(ctx.format, &e.payload).ok())
                    .sum();
                let mut status = ctx.status();
                status.sent_records += entries.len() as u64;
                status.sent_points += points as u64;
                status.sent_requests += 1;
                status.sent_bytes += sent_bytes as u64;
                status.last_success = Some(millis(SystemTime::now()) / 1000);
            }
            Verdict::Reject(message) => {
                backoff.reset();
                reject(&ctx, &entries, &message).await;
            }
            Verdict::Split => {
                if sizer.too_large(entries.len()) {
                    info!(sink = %ctx.name, records = sizer.limit(), "store says the request is too large (413); sending fewer records per request");
                } else {
                    let message = "413: one record is larger than the store accepts".to_string();
                    reject(&ctx, &entries, &message).await;
                }
            }
            Verdict::RetryAfter(wait) => {
                if !pause(&stop, wait).await {
                    return;
                }
            }
            Verdict::Unauthorized | Verdict::Backoff => {
                if !pause(&stop, backoff.next(rand::random())).await {
                    return;
                }
            }
        }
    }
}

/// Logs a change of a sink's state, once, and shows it in the status.
fn change(ctx: &Ctx, from: Health, to: Health, why: &str) -> Health {
    if from != to {
        let pending = ctx.status().pending_records;
        match to {
            Health::Ok => {
                info!(sink = %ctx.name, pending, "push sink delivers again");
            }
            Health::Unauthorized => {
                warn!(sink = %ctx.name, pending, "push sink: credentials refused ({why}); keeping the data and retrying")
            }
            Health::Throttled => {
                info!(sink = %ctx.name, pending, "push sink: store asks to wait ({why})")
            }
            Health::Failing => {
                warn!(sink = %ctx.name, pending, "push sink: {why}; keeping the data and retrying with backoff")
            }
            Health::Disabled => {}
        }
    }
    ctx.status().state = to.as_str().to_string();
    to
}

/// Waits `wait`, or until `stop`; `false` when stopped.
async fn pause(stop: &CancellationToken, wait: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(wait) => true,
    }
}

/// Moves a batch the store refused to `rejected/` with the store's message, then acknowledges it.
async fn reject(ctx: &Arc<Ctx>, entries: &[Entry], message: &str) {
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else { return };
    let (first, last) = (first.seq, last.seq);
    let dir = ctx.dir.join(REJECTED_DIR);
    // Kept as plain bytes (line protocol, JSON, protobuf), not as the spool's compressed records.
    let payloads: Vec<Vec<u8>> = entries
        .iter()
        .map(|e| encode::payload(&e.payload).map_or_else(|_| e.payload.clone(), |p| p.into_owned()))
        .collect();
    let note = format!(
        "time {}\nrecords {first}-{last}\nmessage {message}\n",
        millis(SystemTime::now()) / 1000
    );
    let budget = ctx.config.spool_max_bytes() / 4;
    let saved = tokio::task::spawn_blocking(move || {
        save_rejected(&dir, first, last, &note, &payloads, budget)
    })
    .await
    .unwrap_or_else(|err| Err(format!("internal error: {err}")));
    if let Err(err) = &saved {
        error!(sink = %ctx.name, "cannot keep rejected records: {err}");
    }
    warn!(sink = %ctx.name, records = entries.len(), "store rejected a batch ({message}); moved to {REJECTED_DIR}/ and going on");
    ctx.status().rejected_records += entries.len() as u64;
    if let Err(err) = ctx.with_spool(move |spool| spool.ack(last)).await {
        error!(sink = %ctx.name, "cannot acknowledge rejected records: {err}");
    }
}

/// Writes `FIRST-LAST.reason` (the store's message) and `FIRST-LAST.records` (the records, as
/// spooled), fsynced; then, past `budget` bytes of `.records` files, deletes the oldest ones
/// (their `.reason` files stay, so the count of rejections stays true).
fn save_rejected(
    dir: &Path,
    first: u64,
    last: u64,
    note: &str,
    payloads: &[Vec<u8>],
    budget: u64,
) -> Result<(), String> {
    use std::io::Write as _;
    let io = |what: &str, path: &Path, err: std::io::Error| {
        format!("cannot {what} {}: {}", path.display(), crate::error::describe_io(&err))
    };
    std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
    let stem = format!("{first:020}-{last:020}");
    for (ext, bytes) in [("records", payloads.concat()), ("reason", note.as_bytes().to_vec())] {
        let path = dir.join(format!("{stem}.{ext}"));
        let mut file = std::fs::File::create(&path).map_err(|e| io("create", &path, e))?;
        file.write_all(&bytes).and_then(|()| file.sync_all()).map_err(|e| io("write", &path, e))?;
    }
    let mut records: Vec<(String, u64)> = std::fs::read_dir(dir)
        .map_err(|e| io("read", dir, e))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let len = e.metadata().ok()?.len();
            name.ends_with(".records").then_some((name, len))
        })
        .collect();
    records.sort();
    let mut total: u64 = records.iter().map(|(_, len)| len).sum();
    for (name, len) in records {
        if total <= budget || name.starts_with(&stem) {
            break;
        }
        let path = dir.join(&name);
        std::fs::remove_file(&path).map_err(|e| io("remove", &path, e))?;
        total -= len;
    }
    Ok(())
}

/// Rejected batches and records kept in a spool directory's `rejected/`, read from the names of
/// its `.reason` files. \[io\]
pub fn rejected_counts(spool_dir: &Path) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir(spool_dir.join(REJECTED_DIR)) else { return (0, 0) };
    let mut batches = 0;
    let mut records = 0;
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".reason") else { continue };
        let Some((first, last)) = stem.split_once('-') else { continue };
        if let (Ok(first), Ok(last)) = (first.parse::<u64>(), last.parse::<u64>()) {
            batches += 1;
            records += last.saturating_sub(first) + 1;
        }
    }
    (batches, records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::receipt::Receipt;

    /// A sink's context on a spool in `dir` (the URL is never called).
    fn ctx(dir: &Path, limits: Limits) -> Arc<Ctx> {
        let config = SinkConfig {
            url: Some("http://127.0.0.1:9/write".into()),
            format: Some(SinkFormat::Influx),
            ..SinkConfig::default()
        };
        Arc::new(Ctx {
            name: "t".into(),
            dir: dir.to_path_buf(),
            client: Client::new(&config, dir).unwrap(),
            config,
            format: SinkFormat::Influx,
            spool: Arc::new(Mutex::new(Spool::open(&dir.join("spool"), limits).unwrap())),
            status: Arc::default(),
            wake: Notify::new(),
        })
    }

    /// Whether the sender was woken (a permit is waiting).
    async fn woken(ctx: &Ctx) -> bool {
        tokio::time::timeout(Duration::ZERO, ctx.wake.notified()).await.is_ok()
    }

    #[tokio::test]
    async fn what_waits_in_the_feed_shares_one_append_and_one_sync() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = ctx(dir.path(), Limits::default());
        let (tx, rx) = mpsc::channel(FEED_CAPACITY);
        let snapshot = Arc::new(crate::metrics::encode::sample_snapshot());
        // Whoever waits for them (an ingest POST) learns only after the append and its sync.
        let (receipt, mut waiter) = Receipt::new();
        for i in 0..10u32 {
            // Ten spokes answering together: each its own source, so none is held back.
            let tags = vec![(crate::hub::spoke::TAG.to_string(), format!("spoke-{i}"))];
            let receipt = Some(receipt.clone());
            tx.try_send(Feed::Snapshot(Forwarded {
                snapshot: Arc::clone(&snapshot),
                tags,
                receipt,
            }))
            .unwrap();
        }
        receipt.passed_on();
        drop(tx);
        assert!(!woken(&ctx).await);
        assert_eq!(settled(&mut waiter).await, None, "not stored before the appender ran");
        append_loop(Arc::clone(&ctx), rx, CancellationToken::new()).await;
        let stats = lock(&ctx.spool).stats();
        assert_eq!((stats.appended_records, stats.appended_batches), (10, 1), "{stats:?}");
        assert!(woken(&ctx).await, "the sender is woken after the sync");
        assert_eq!(settled(&mut waiter).await, Some(Ok(())));
        // In order, each with its spoke's tag.
        let entries = lock(&ctx.spool).peek(100).unwrap();
        for (i, e) in entries.iter().enumerate() {
            let text = encode::describe(SinkFormat::Influx, &e.payload).unwrap();
            assert!(text.contains(&format!(",spoke=spoke-{i}")), "{i}: {text}");
        }
        assert_eq!(ctx.status().missed_records, 0);
    }

    /// Whether every receipt of a waiter is settled, and how.
    async fn settled(waiter: &mut crate::hub::receipt::Waiter) -> Option<Result<(), String>> {
        tokio::time::timeout(Duration::ZERO, waiter).await.ok()
    }

    #[tokio::test]
    async fn a_group_that_cannot_be_spooled_is_missed_and_never_sent() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = ctx(dir.path(), Limits::default());
        let (tx, rx) = mpsc::channel(FEED_CAPACITY);
        let line = |i: usize| format!("m,host=a v={i} 1\n").into_bytes();
        tx.try_send(Feed::Record(line(1))).unwrap();
        // Larger than a spool record can be: the whole batch is refused before anything is written.
        tx.try_send(Feed::Record(vec![b'x'; spool::record::MAX_PAYLOAD + 1])).unwrap();
        // A spoke's snapshot in the same group: its POST must hear that it was not stored.
        let (receipt, waiter) = Receipt::new();
        let item = Forwarded { receipt: Some(receipt.clone()), ..spoke_snapshot() };
        receipt.passed_on();
        tx.try_send(Feed::Snapshot(item)).unwrap();
        drop(tx);
        append_loop(Arc::clone(&ctx), rx, CancellationToken::new()).await;
        // One batch, refused whole: nothing appended, all three counted, the sender not woken.
        let stats = lock(&ctx.spool).stats();
        assert_eq!((stats.appended_records, stats.pending_records), (0, 0), "{stats:?}");
        assert_eq!(ctx.status().missed_records, 3);
        let why = waiter.wait().await.unwrap_err();
        assert!(
            why.starts_with("cannot spool snapshot for push sink t: cannot append to spool: "),
            "{why}"
        );
        assert!(ctx
            .status()
            .last_error
            .as_deref()
            .unwrap_or("")
            .starts_with("cannot spool snapshot for push sink t: "));
        assert!(!woken(&ctx).await);
    }

    /// A sink that is not running (disabled).
    fn stopped_running() -> Running {
        Running {
            config: SinkConfig::default(),
            feed: None,
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
            full: false,
            retry: None,
        }
    }

    /// Sinks with one running sink `t` whose feed is `tx`.
    fn pushes_with_feed(tx: mpsc::Sender<Feed>) -> Pushes {
        let mut pushes =
            Pushes::new("/nonexistent".into(), "/nonexistent".into(), Registry::default());
        pushes.sinks.insert("t".into(), Running { feed: Some(tx), ..stopped_running() });
        pushes
    }

    fn spoke_snapshot() -> Forwarded {
        let tags = vec![(crate::hub::spoke::TAG.to_string(), "s1".to_string())];
        let snapshot = Arc::new(crate::metrics::encode::sample_snapshot());
        Forwarded { snapshot, tags, receipt: None }
    }

    /// A spoke's snapshot with a receipt, and the receipt's waiter.
    fn waited_for() -> (Forwarded, crate::hub::receipt::Waiter) {
        let (receipt, waiter) = Receipt::new();
        let item = Forwarded { receipt: Some(receipt.clone()), ..spoke_snapshot() };
        receipt.passed_on();
        (item, waiter)
    }

    fn missed(pushes: &Pushes) -> u64 {
        pushes.registry.statuses().first().map_or(0, |s| s.missed_records)
    }

    /// A spoke's snapshot (answered 200 to its spoke) waits for room in a full feed instead of
    /// being dropped, as `offer` drops this device's own.
    #[tokio::test]
    async fn a_spokes_snapshot_waits_for_a_full_feed() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut pushes = pushes_with_feed(tx);
        pushes.offer(&spoke_snapshot());
        pushes.offer(&spoke_snapshot());
        assert_eq!(missed(&pushes), 1, "offer drops what does not fit");
        let reader = tokio::spawn(async move {
            let mut n = 0;
            while rx.recv().await.is_some() {
                n += 1;
            }
            n
        });
        pushes.offer_waiting(spoke_snapshot()).await;
        pushes.offer_waiting(spoke_snapshot()).await;
        assert_eq!(missed(&pushes), 1, "nothing more missed");
        pushes.sinks.clear();
        assert_eq!(reader.await.unwrap(), 3);
    }

    /// A feed that stays full past FORWARD_WAIT (a stuck disk) misses the snapshot, counted,
    /// and its POST hears so.
    #[tokio::test]
    async fn a_feed_full_for_too_long_misses_the_snapshot_and_counts_it() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut pushes = pushes_with_feed(tx);
        let wait = Duration::from_millis(20);
        let (first, mut taken) = waited_for();
        pushes.offer_within(first, wait).await;
        assert_eq!(missed(&pushes), 0);
        let (second, missing) = waited_for();
        pushes.offer_within(second, wait).await;
        assert_eq!(missed(&pushes), 1);
        assert_eq!(
            missing.wait().await,
            Err("push sink t is not keeping up with its spool (see pocketses status)".into())
        );
        // The first is in the feed: not stored until an appender settles it.
        assert_eq!(settled(&mut taken).await, None);
        let Some(Feed::Snapshot(item)) = rx.recv().await else { panic!("a snapshot") };
        item.receipt.unwrap().stored();
        assert_eq!(taken.await, Ok(()));
    }

    /// Every running sink gets its own copy to settle; with none running, nothing is stored.
    #[tokio::test]
    async fn each_sink_settles_its_own_copy_and_no_sink_is_a_failure() {
        let (tx_a, mut rx_a) = mpsc::channel(4);
        let (tx_b, mut rx_b) = mpsc::channel(4);
        let mut pushes = pushes_with_feed(tx_a);
        let b = Running { feed: Some(tx_b), ..stopped_running() };
        pushes.sinks.insert("u".into(), b);
        let (item, mut waiter) = waited_for();
        pushes.offer_waiting(item).await;
        let Some(Feed::Snapshot(a)) = rx_a.recv().await else { panic!("a snapshot") };
        let Some(Feed::Snapshot(b)) = rx_b.recv().await else { panic!("a snapshot") };
        a.receipt.unwrap().stored();
        assert_eq!(settled(&mut waiter).await, None, "sink u has not stored its copy");
        b.receipt.unwrap().stored();
        assert_eq!(waiter.await, Ok(()));
        // No sink running (a disabled one only): the POST must not be told it is taken.
        let mut pushes = pushes_with_feed(mpsc::channel(1).0);
        pushes.sinks.insert("t".into(), stopped_running());
        let (item, waiter) = waited_for();
        pushes.offer_waiting(item).await;
        assert_eq!(
            waiter.wait().await,
            Err("no push sink is running on this hub (see pocketses status)".into())
        );
    }

    /// A spoke sends again what a failed append refused (its POST got 503): with a sink
    /// `interval`, the same snapshot must be appended then, not skipped as already spooled.
    #[tokio::test]
    async fn a_snapshot_sent_again_after_a_failed_append_is_appended() {
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = ctx(dir.path(), Limits::default());
        Arc::get_mut(&mut ctx).unwrap().config.interval = Some(60);
        let (tx, rx) = mpsc::channel(FEED_CAPACITY);
        // A group whose append fails whole (a record too large stands for a full disk).
        tx.try_send(Feed::Record(vec![b'x'; spool::record::MAX_PAYLOAD + 1])).unwrap();
        let (item, refused) = waited_for();
        tx.try_send(Feed::Snapshot(item)).unwrap();
        let appender = tokio::spawn(append_loop(Arc::clone(&ctx), rx, CancellationToken::new()));
        assert!(refused.await.is_err());
        let (again, taken) = waited_for();
        tx.try_send(Feed::Snapshot(again)).unwrap();
        assert_eq!(taken.await, Ok(()));
        drop(tx);
        appender.await.unwrap();
        assert_eq!(lock(&ctx.spool).stats().appended_records, 1, "the snapshot sent again");
    }

    /// A snapshot a sink's `interval` does not want is not waited for.
    #[tokio::test]
    async fn a_snapshot_the_interval_skips_is_settled_as_stored() {
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = ctx(dir.path(), Limits::default());
        Arc::get_mut(&mut ctx).unwrap().config.interval = Some(3600);
        let (tx, rx) = mpsc::channel(FEED_CAPACITY);
        let (first, one) = waited_for();
        let (second, two) = waited_for();
        tx.try_send(Feed::Snapshot(first)).unwrap();
        tx.try_send(Feed::Snapshot(second)).unwrap();
        drop(tx);
        append_loop(Arc::clone(&ctx), rx, CancellationToken::new()).await;
        assert_eq!(lock(&ctx.spool).stats().appended_records, 1);
        assert_eq!((one.wait().await, two.wait().await), (Ok(()), Ok(())));
    }

    #[test]
    fn rejected_batches_are_kept_within_their_budget() {
        let dir = tempfile::tempdir().unwrap();
        let rej = dir.path().join(REJECTED_DIR);
        save_rejected(&rej, 1, 2, "message 400: a\n", &[b"a\n".to_vec(), b"b\n".to_vec()], 10)
            .unwrap();
        assert_eq!(
            std::fs::read(rej.join(format!("{:020}-{:020}.records", 1, 2))).unwrap(),
            b"a\nb\n"
        );
        save_rejected(&rej, 3, 5, "message 400: b\n", &[b"0123456789".to_vec()], 10).unwrap();
        // The older records went to keep the budget; every reason stays, so the counts hold.
        assert!(!rej.join(format!("{:020}-{:020}.records", 1, 2)).exists());
        assert!(rej.join(format!("{:020}-{:020}.records", 3, 5)).exists());
        assert_eq!(rejected_counts(dir.path()), (2, 5));
        assert_eq!(rejected_counts(&dir.path().join("none")), (0, 0));
    }

    #[test]
    fn summary_says_state_backlog_and_last_success() {
        let s = SinkStatus {
            name: "vm".into(),
            format: "influx".into(),
            state: "failing".into(),
            pending_records: 12,
            oldest_pending_ms: Some(40_000),
            last_success: Some(30),
            dropped_records: 1,
            ..SinkStatus::default()
        };
        assert_eq!(
            summary(&s, 52_000),
            "vm (influx) failing: 12 waiting (oldest 12s ago), last sent 22s ago, 1 dropped, 0 rejected"
        );
        let fresh = SinkStatus { name: "j".into(), format: "json".into(), state: "ok".into(), ..s };
        assert!(
            summary(&SinkStatus { last_success: None, ..fresh }, 0).contains("nothing sent yet")
        );
    }

    #[test]
    fn figures_become_push_families() {
        let s = SinkStatus {
            name: "vm".into(),
            state: "ok".into(),
            pending_records: 3,
            pending_points: 550,
            oldest_pending_ms: Some(1_000),
            last_success: None,
            ..SinkStatus::default()
        };
        let mut fams = families(&[s], 11_000);
        let text = crate::metrics::encode::prometheus::write(&mut fams);
        assert!(text.contains("pocketses_push_backlog_records{sink=\"vm\"} 3\n"), "{text}");
        assert!(text.contains("pocketses_push_backlog_points{sink=\"vm\"} 550\n"), "{text}");
        assert!(text.contains("pocketses_push_backlog_age_seconds{sink=\"vm\"} 10\n"), "{text}");
        assert!(text.contains("pocketses_push_up{sink=\"vm\"} 1\n"), "{text}");
        assert!(!text.contains("last_success_timestamp_seconds{"), "no sample before a success");
        assert!(families(&[], 0).iter().all(|f| f.samples.is_empty()));
    }
}
