//! Fan-out of encoded snapshots to subscribers: the [`Hub`], and the TCP, HTTP and SSE publishers.
//!
//! The hub owns the latest message and a bounded broadcast ring.
//! A snapshot is encoded once, into shared [`Bytes`], and every subscriber task writes the same bytes;
//! nothing here encodes per subscriber.
//! The hub does not collect (that is `daemon`'s collector loop) and does not know about sockets
//! (that is `tcp` and `http`).
//!
//! Queue policy: drop-oldest.
//! Each subscriber reads the broadcast ring at its own pace; one that falls more than
//! [`QUEUE_CAPACITY`] messages behind loses the oldest ones, which are counted in
//! [`Counters::dropped`], and carries on with the newest.
//! A stuck subscriber therefore costs the others nothing.
//!
//! The rule is for snapshots, which supersede each other. Events that report a change of state
//! (`remodel`, `fleet`, `check`) also travel on a ring of their own, [`STATE_CAPACITY`] deep,
//! which SSE subscribers and the line stream (its remodel reports) read them from: a reader that
//! falls behind on snapshots still gets every state event, in order. One that falls
//! [`STATE_CAPACITY`] state events behind is disconnected rather than silently missing one (a
//! browser's `EventSource` reconnects; a line subscriber reconnects and reads the latest).

pub mod auth;
pub mod dashboard;
pub mod history;
pub mod http;
pub mod limits;
pub mod listen;
pub mod shard;
pub mod subscribe;
pub mod tcp;
pub mod tls;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use hyper::body::Bytes;
use tokio::sync::broadcast;

use crate::checks::report;
use crate::checks::runner::Reported;
use crate::metrics::encode;
use crate::metrics::encode::Format;
use crate::metrics::Snapshot;

/// How many messages a subscriber may fall behind before it loses the oldest.
///
/// Kept small: the ring holds `Arc`s of whole snapshots, and a subscriber that is more than
/// a few intervals behind is better served by the newest than by history.
pub const QUEUE_CAPACITY: usize = 4;

/// How many state events (`remodel`, `fleet`, `check`) an SSE or line-stream subscriber may fall
/// behind before it is disconnected; they are never dropped by the drop-oldest rule of
/// [`QUEUE_CAPACITY`].
/// They are rare (a state change, a remodel's progress), so this is minutes of a stuck reader.
pub const STATE_CAPACITY: usize = 64;

/// One collected snapshot with its encodings, shared by every publisher.
#[derive(Debug)]
pub struct Published {
    /// Sequence number, 1 for the first snapshot; lets a new subscriber skip what it already has.
    pub seq: u64,
    /// The snapshot itself.
    pub snapshot: Arc<Snapshot>,
    /// The documented JSON schema (`json::encode`), one line without newline: `/v1/metrics` and SSE.
    pub json: Bytes,
    /// The line for the TCP stream in the configured format, newline included.
    pub line: Bytes,
    /// Prometheus text of the snapshot, encoded on the first scrape and kept for the next.
    prometheus: OnceLock<Bytes>,
    /// The SSE event of the snapshot, framed for the first SSE subscriber and kept for the others.
    sse: OnceLock<Bytes>,
}

impl Published {
    /// Encodes `snapshot` once for every publisher. \[pure\]
    pub fn new(seq: u64, snapshot: Snapshot, format: Format) -> Published {
        let json = encode::json::encode(&snapshot);
        let line = line_for(&snapshot, &json, format);
        Published {
            seq,
            snapshot: Arc::new(snapshot),
            json: Bytes::from(json),
            line,
            prometheus: OnceLock::new(),
            sse: OnceLock::new(),
        }
    }

    /// The same snapshot re-encoded for another stream format (after a live format change).
    pub fn with_format(&self, format: Format) -> Published {
        let json = String::from_utf8_lossy(&self.json);
        Published {
            seq: self.seq,
            snapshot: Arc::clone(&self.snapshot),
            json: self.json.clone(),
            line: line_for(&self.snapshot, &json, format),
            prometheus: OnceLock::new(),
            sse: OnceLock::new(),
        }
    }

    /// Prometheus text of the snapshot, encoded once per snapshot however often it is scraped.
    pub fn prometheus(&self) -> Bytes {
        self.prometheus
            .get_or_init(|| Bytes::from(encode::prometheus::encode(&self.snapshot)))
            .clone()
    }

    /// The SSE `snapshot` event of this snapshot, framed once for all SSE subscribers.
    pub fn sse(&self) -> Bytes {
        self.sse
            .get_or_init(|| http::sse_frame(Event::SSE_SNAPSHOT, Some(self.seq), &self.json))
            .clone()
    }
}

fn line_for(snapshot: &Snapshot, json: &str, format: Format) -> Bytes {
    let mut line = match format {
        Format::Legacy => encode::legacy::encode(snapshot),
        // The stream only takes line formats (config checks it); anything else gets the schema.
        Format::Json | Format::Prometheus | Format::Influx => json.to_string(),
    };
    line.push('\n');
    Bytes::from(line)
}

/// What travels on the hub.
///
/// The SSE stream carries every kind, each under its own `event:` name ([`Event::sse_name`]);
/// the TCP line stream carries snapshots, and remodel reports when `publish.remodel-events` is on.
#[derive(Debug, Clone)]
pub enum Event {
    /// A new snapshot.
    Snapshot(Arc<Published>),
    /// A remodel progress report (`{"event":"remodel",…}`).
    Remodel(Report),
    /// A fleet action's progress (SSE `fleet`, `{"action","stage","progress","details","result"}`).
    Fleet(Report),
    /// Checks whose state changed in one run (SSE only).
    Checks(Arc<CheckChanges>),
}

/// The latest results of the checks, for every reader: `GET /v1/checks`, `/metrics` and what a
/// new SSE subscriber gets first. Each encoding is made on its first use and kept, like
/// [`Published`]'s, so a run nobody reads costs no encoding at all.
#[derive(Debug, Default)]
pub struct CheckSet {
    /// The run's number (the sequence number of the snapshot the checks ran on).
    pub seq: u64,
    /// When the checks ran, seconds since the Unix epoch.
    pub timestamp: f64,
    /// The results as reported.
    pub results: Vec<Reported>,
    json: OnceLock<Bytes>,
    sse: OnceLock<Bytes>,
    prometheus: OnceLock<Bytes>,
}

impl CheckSet {
    /// The results of run `seq`, made at `timestamp`.
    pub fn new(seq: u64, timestamp: f64, results: Vec<Reported>) -> CheckSet {
        CheckSet { seq, timestamp, results, ..CheckSet::default() }
    }

    /// The document of `GET /v1/checks` (`pocketses checks run --json`'s, compact).
    pub fn json(&self) -> Bytes {
        self.json
            .get_or_init(|| {
                let entries = self.results.iter().map(report::Entry::reported).collect();
                let worst = report::worst(self.results.iter().map(|r| &r.result));
                let doc = report::Document::new(worst, Some(self.timestamp), entries);
                Bytes::from(doc.compact())
            })
            .clone()
    }

    /// One SSE `check` event per result.
    pub fn sse(&self) -> Bytes {
        self.sse
            .get_or_init(|| {
                let entries: Vec<report::Entry> =
                    self.results.iter().map(report::Entry::reported).collect();
                report::sse_events(&entries)
            })
            .clone()
    }

    /// `pocketses_check_state` as Prometheus text.
    pub fn prometheus(&self) -> Bytes {
        self.prometheus
            .get_or_init(|| {
                Bytes::from(report::prometheus_text(self.results.iter().map(|r| &r.result)))
            })
            .clone()
    }
}

/// The checks whose state changed in one run, as SSE `check` events, framed once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckChanges {
    /// The run's number, as [`CheckSet::seq`].
    pub seq: u64,
    /// One SSE `check` event per change.
    pub sse: Bytes,
}

/// A report that is not a snapshot, encoded once for both kinds of stream: fan-out only clones
/// these bytes, whatever the number of subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// One JSON object with its newline: a line of the TCP stream.
    pub line: Bytes,
    /// The same object as an SSE `remodel` event.
    pub sse: Bytes,
}

impl Report {
    /// A report from one JSON object (its text must hold no newline, as `serde_json` writes it).
    pub fn new(json: String) -> Report {
        Report::named(Event::SSE_REMODEL, json)
    }

    /// A report sent as SSE event `name`.
    pub fn named(name: &str, json: String) -> Report {
        let sse = http::sse_frame(name, None, json.as_bytes());
        let mut line = json;
        line.push('\n');
        Report { line: Bytes::from(line), sse }
    }

    /// The JSON object without its newline (a view of the line, not a copy).
    pub fn json(&self) -> Bytes {
        self.line.slice(..self.line.len().saturating_sub(1))
    }
}

impl Event {
    /// SSE `event:` name of snapshots.
    pub const SSE_SNAPSHOT: &'static str = "snapshot";
    /// SSE `event:` name of remodel reports.
    pub const SSE_REMODEL: &'static str = "remodel";
    /// SSE `event:` name of check state changes.
    pub const SSE_CHECK: &'static str = "check";
    /// SSE `event:` name of fleet action progress.
    pub const SSE_FLEET: &'static str = "fleet";

    /// The SSE `event:` field of this kind.
    pub fn sse_name(&self) -> &'static str {
        match self {
            Event::Snapshot(_) => Event::SSE_SNAPSHOT,
            Event::Remodel(_) => Event::SSE_REMODEL,
            Event::Checks(_) => Event::SSE_CHECK,
            Event::Fleet(_) => Event::SSE_FLEET,
        }
    }
}

/// Counters the publishers keep; read by `/metrics` and the logs.
#[derive(Debug, Default)]
pub struct Counters {
    /// Line-stream subscribers now: what `publish.max-subscribers` limits (SSE has its own cap).
    pub lines: AtomicUsize,
    /// SSE streams open now.
    pub sse: AtomicUsize,
    /// Snapshots published since start.
    pub published: AtomicU64,
    /// Messages a lagging subscriber never received (drop-oldest), counted when it reads again.
    pub dropped: AtomicU64,
    /// Subscribers whose socket is full right now (a write waiting for them to read).
    pub blocked: AtomicUsize,
    /// Connections refused, per listener and reason.
    pub refusals: limits::Refusals,
    /// Subscribers disconnected for sending too much input.
    pub flooded: AtomicU64,
}

impl Counters {
    /// Subscribers connected now: line stream and SSE together.
    pub fn subscribers(&self) -> usize {
        self.lines.load(Ordering::Relaxed) + self.sse.load(Ordering::Relaxed)
    }
}

/// The fan-out point between the collector and the publishers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tx: broadcast::Sender<Event>,
    /// State events only (not snapshots), for SSE and line subscribers: never dropped for a
    /// slow one.
    state_tx: broadcast::Sender<Event>,
    latest: Mutex<Option<Arc<Published>>>,
    checks: Mutex<Option<Arc<CheckSet>>>,
    counters: Counters,
    max_subscribers: AtomicUsize,
    remodel_events: AtomicBool,
    /// The push sinks' figures, written on `/metrics` after the publishers' own.
    push: std::sync::OnceLock<crate::push::sink::Registry>,
    /// The fleet client's figures (`pocketses_fleet_*`), when it runs.
    fleet: std::sync::OnceLock<crate::fleet::daemon::Fleet>,
    board: dashboard::Board,
    /// Events sent on the broadcast so far; sending and counting happen under this lock, so a
    /// shard that subscribes under it knows exactly which events it will see.
    sent: Mutex<u64>,
    /// The line stream's fan-out shards, started by the first plain subscriber (`None`: off).
    shards: OnceLock<Option<Arc<shard::Shards>>>,
}

impl Hub {
    /// A hub that admits at most `max_subscribers` subscribers at once.
    pub fn new(max_subscribers: usize) -> Hub {
        let (tx, _) = broadcast::channel(QUEUE_CAPACITY);
        let (state_tx, _) = broadcast::channel(STATE_CAPACITY);
        Hub {
            inner: Arc::new(Inner {
                tx,
                state_tx,
                latest: Mutex::new(None),
                checks: Mutex::new(None),
                counters: Counters::default(),
                max_subscribers: AtomicUsize::new(max_subscribers),
                remodel_events: AtomicBool::new(false),
                push: std::sync::OnceLock::new(),
                fleet: std::sync::OnceLock::new(),
                board: dashboard::Board::default(),
                sent: Mutex::new(0),
                shards: OnceLock::new(),
            }),
        }
    }

    /// Makes `published` the latest message and sends it to every subscriber.
    pub fn publish(&self, published: Published) {
        let published = Arc::new(published);
        self.inner.board.record(&published.snapshot);
        self.set_latest(published.clone());
        self.inner.counters.published.fetch_add(1, Ordering::Relaxed);
        self.broadcast(Event::Snapshot(published));
    }

    /// Sends `event` to its receivers: a state event on the state ring (SSE), snapshots and
    /// remodel reports on the ring the line stream reads too, and counts those.
    fn broadcast(&self, event: Event) {
        let mut sent = self.inner.sent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // An error only means nobody is subscribed right now.
        if !matches!(event, Event::Snapshot(_)) {
            let _ = self.inner.state_tx.send(event.clone());
        }
        // Checks and fleet reports are for SSE only: they take no place on the snapshots' ring.
        if !matches!(event, Event::Checks(_) | Event::Fleet(_)) {
            let _ = self.inner.tx.send(event);
            *sent += 1;
        }
    }

    /// Events sent on the broadcast so far.
    pub fn sent(&self) -> u64 {
        *self.inner.sent.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A receiver of the broadcast, one of the state events' ring, and the number of events
    /// sent on the broadcast before they joined (both at the same point of the stream).
    fn receiver_at(&self) -> (broadcast::Receiver<Event>, broadcast::Receiver<Event>, u64) {
        let sent = self.inner.sent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (self.inner.tx.subscribe(), self.inner.state_tx.subscribe(), *sent)
    }

    /// Turns the line stream's shards off for this hub (one task per subscriber), as
    /// [`shard::SHARDS_ENV`]`=0` does for a daemon, without the process-wide variable.
    #[cfg(test)]
    pub(crate) fn without_shards(&self) {
        let _ = self.inner.shards.set(None);
    }

    /// The line stream's fan-out shards: one per runtime worker, started on the current runtime
    /// at the first call; `None` when [`shard::SHARDS_ENV`] is 0 or there is no runtime.
    pub fn shards(&self) -> Option<Arc<shard::Shards>> {
        self.inner
            .shards
            .get_or_init(|| {
                let workers = tokio::runtime::Handle::try_current().ok()?.metrics().num_workers();
                let env = std::env::var(shard::SHARDS_ENV).ok();
                let n = shard::shard_count(env.as_deref(), workers);
                (n > 0).then(|| Arc::new(shard::Shards::start(self, n)))
            })
            .clone()
    }

    /// Sends an event that is not a snapshot (it is not kept for late subscribers).
    /// The dashboard keeps what it needs of it for pages opened later.
    pub fn send(&self, event: Event) {
        match &event {
            Event::Remodel(report) => self.inner.board.remodel_report(&report.json()),
            Event::Fleet(report) => self.inner.board.fleet_report(&report.json()),
            Event::Snapshot(_) | Event::Checks(_) => {}
        }
        self.broadcast(event);
    }

    /// Makes `set` the latest check results, then sends `changes` to SSE subscribers (when any
    /// check changed): a subscriber that joins in between gets both and skips the event by `seq`.
    pub fn publish_checks(&self, set: Arc<CheckSet>, changes: Option<CheckChanges>) {
        if let Ok(mut checks) = self.inner.checks.lock() {
            *checks = Some(set);
        }
        if let Some(changes) = changes {
            self.broadcast(Event::Checks(Arc::new(changes)));
        }
    }

    /// The latest check results, once the checks have run.
    pub fn checks(&self) -> Option<Arc<CheckSet>> {
        self.inner.checks.lock().ok().and_then(|checks| checks.clone())
    }

    /// Replaces the latest message without sending it (used when the stream format changes).
    pub fn set_latest(&self, published: Arc<Published>) {
        if let Ok(mut latest) = self.inner.latest.lock() {
            *latest = Some(published);
        }
    }

    /// The latest message, if a snapshot was collected yet.
    pub fn latest(&self) -> Option<Arc<Published>> {
        self.inner.latest.lock().ok().and_then(|latest| latest.clone())
    }

    /// Joins the broadcast, then returns the latest message to send first.
    ///
    /// Subscribing before reading the latest means nothing published in between is missed;
    /// the subscriber skips messages whose `seq` it already sent.
    pub fn subscribe(&self) -> (broadcast::Receiver<Event>, Option<Arc<Published>>) {
        let rx = self.inner.tx.subscribe();
        (rx, self.latest())
    }

    /// Joins the ring of state events (`remodel`, `fleet`, `check`), which is never dropped
    /// from for a slow reader (see [`STATE_CAPACITY`]); join it before the broadcast and before
    /// reading the latest checks.
    pub fn subscribe_state(&self) -> broadcast::Receiver<Event> {
        self.inner.state_tx.subscribe()
    }

    /// Shows the push sinks of `registry` on `/metrics` (`pocketses_push_*`); set once.
    pub fn set_push(&self, registry: crate::push::sink::Registry) {
        let _ = self.inner.push.set(registry);
    }

    /// Shows the fleet client's figures on `/metrics` (`pocketses_fleet_*`); set once.
    pub fn set_fleet(&self, fleet: crate::fleet::daemon::Fleet) {
        let _ = self.inner.fleet.set(fleet);
    }

    /// The fleet client, when set.
    pub fn fleet(&self) -> Option<&crate::fleet::daemon::Fleet> {
        self.inner.fleet.get()
    }

    /// The push sinks' registry, when set.
    pub fn push(&self) -> Option<&crate::push::sink::Registry> {
        self.inner.push.get()
    }

    /// What the dashboard keeps: history, device facts, latest checks and remodel.
    pub fn board(&self) -> &dashboard::Board {
        &self.inner.board
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// Whether line-stream subscribers also get remodel reports (`publish.remodel-events`).
    pub fn remodel_events(&self) -> bool {
        self.inner.remodel_events.load(Ordering::Relaxed)
    }

    /// Turns remodel reports on the line stream on or off, for every subscriber at once.
    pub fn set_remodel_events(&self, on: bool) {
        self.inner.remodel_events.store(on, Ordering::Relaxed);
    }

    /// Changes the subscriber limit; subscribers already connected stay.
    pub fn set_max_subscribers(&self, max: usize) {
        self.inner.max_subscribers.store(max, Ordering::Relaxed);
    }

    /// Takes a line-stream subscriber slot, or `None` when `publish.max-subscribers` is reached.
    ///
    /// A counter rather than a `Semaphore`: the limit can change live, and a lowered limit
    /// must not disconnect anyone, which permits cannot express without debt bookkeeping.
    /// The caller counts the refusal, with its listener and reason.
    pub fn try_slot(&self) -> Option<Slot> {
        let max = self.inner.max_subscribers.load(Ordering::Relaxed);
        self.take(&self.inner.counters.lines, max).then(|| Slot { hub: self.clone(), sse: false })
    }

    /// Takes an SSE slot, or `None` when `max` streams are open; SSE streams do not count
    /// against `publish.max-subscribers`, nor line subscribers against `max`.
    pub fn try_sse_slot(&self, max: usize) -> Option<Slot> {
        self.take(&self.inner.counters.sse, max).then(|| Slot { hub: self.clone(), sse: true })
    }

    fn take(&self, count: &AtomicUsize, max: usize) -> bool {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .is_ok()
    }
}

/// A subscriber's place in its limit; dropping it frees the place.
#[derive(Debug)]
pub struct Slot {
    hub: Hub,
    sse: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let inner = &self.hub.inner;
        let count = if self.sse { &inner.counters.sse } else { &inner.counters.lines };
        count.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a subscriber should do with one item taken from the broadcast ring. \[pure\]
#[derive(Debug, PartialEq)]
pub enum Next {
    /// Write these bytes.
    Send(Bytes),
    /// Nothing to write (already sent, or a kind this publisher does not carry).
    Skip,
}

/// Which stream a subscriber writes, and so which bytes of an event it takes. \[pure\]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// The TCP line stream; remodel reports only when `publish.remodel-events` is on.
    Line {
        /// Whether remodel reports go on the line stream.
        remodel_events: bool,
    },
    /// Server-Sent Events: every kind of event, each under its own name.
    Sse,
}

/// Decides what a subscriber does with a received event, given the last `seq` it sent
/// and the stream it writes; the one place both publishers skip what they already sent. \[pure\]
pub fn next_message(event: &Event, last_seq: &mut u64, wire: Wire) -> Next {
    match (event, wire) {
        (Event::Snapshot(p), _) if p.seq <= *last_seq => Next::Skip,
        (Event::Snapshot(p), Wire::Line { .. }) => {
            *last_seq = p.seq;
            Next::Send(p.line.clone())
        }
        (Event::Snapshot(p), Wire::Sse) => {
            *last_seq = p.seq;
            Next::Send(p.sse())
        }
        (Event::Remodel(report), Wire::Line { remodel_events: true }) => {
            Next::Send(report.line.clone())
        }
        (Event::Remodel(_), Wire::Line { remodel_events: false }) => Next::Skip,
        (Event::Remodel(report), Wire::Sse) => Next::Send(report.sse.clone()),
        (Event::Checks(_), Wire::Line { .. }) => Next::Skip,
        (Event::Checks(changes), Wire::Sse) => Next::Send(changes.sse.clone()),
        (Event::Fleet(_), Wire::Line { .. }) => Next::Skip,
        (Event::Fleet(report), Wire::Sse) => Next::Send(report.sse.clone()),
    }
}

/// What an SSE subscriber does with check changes, given the run whose full set it already
/// sent: runs up to that one are skipped. \[pure\]
pub fn next_checks(changes: &CheckChanges, last_checks: &mut u64) -> Next {
    if changes.seq <= *last_checks {
        return Next::Skip;
    }
    *last_checks = changes.seq;
    Next::Send(changes.sse.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: Wire = Wire::Line { remodel_events: false };

    #[test]
    fn sse_subscribers_get_the_framed_snapshot_once() {
        let p = Arc::new(Published::new(4, snapshot("a"), Format::Json));
        let mut last = 3;
        let event = Event::Snapshot(p.clone());
        assert_eq!(next_message(&event, &mut last, Wire::Sse), Next::Send(p.sse()));
        assert_eq!(last, 4);
        assert_eq!(next_message(&event, &mut last, Wire::Sse), Next::Skip);
    }

    fn snapshot(hostname: &str) -> Snapshot {
        Snapshot { hostname: hostname.to_string(), ..Snapshot::default() }
    }

    #[test]
    fn encodes_once_with_newline_on_the_line_only() {
        let p = Published::new(1, snapshot("h"), Format::Json);
        assert!(p.line.ends_with(b"\n"));
        assert!(!p.json.ends_with(b"\n"));
        assert_eq!(&p.line[..p.line.len() - 1], &p.json[..]);
    }

    #[test]
    fn legacy_format_changes_the_line_not_the_json() {
        let s = snapshot("h");
        let p = Published::new(1, s.clone(), Format::Legacy);
        let want = format!("{}\n", encode::legacy::encode(&s));
        assert_eq!(p.line, Bytes::from(want));
        assert_eq!(p.json, Bytes::from(encode::json::encode(&s)));
        let back = p.with_format(Format::Json);
        assert_eq!(back.line, Bytes::from(format!("{}\n", encode::json::encode(&s))));
        assert_eq!(back.seq, 1);
    }

    #[test]
    fn prometheus_is_cached_per_snapshot() {
        let p = Published::new(1, snapshot("h"), Format::Json);
        let a = p.prometheus();
        let b = p.prometheus();
        // Same allocation: the second scrape did not encode again.
        assert_eq!(a.as_ptr(), b.as_ptr());
    }

    #[test]
    fn late_subscriber_gets_latest_and_then_new_ones() {
        let hub = Hub::new(10);
        hub.publish(Published::new(1, snapshot("a"), Format::Json));
        let (mut rx, latest) = hub.subscribe();
        let mut last = 0;
        let latest = latest.map(Event::Snapshot);
        let first = latest.as_ref().map(|e| next_message(e, &mut last, LINE));
        assert!(matches!(first, Some(Next::Send(_))));
        assert_eq!(last, 1);
        hub.publish(Published::new(2, snapshot("b"), Format::Json));
        let ev = rx.try_recv().expect("second message");
        assert!(matches!(next_message(&ev, &mut last, LINE), Next::Send(_)));
        assert_eq!(last, 2);
    }

    #[test]
    fn a_message_already_sent_is_skipped() {
        let p = Arc::new(Published::new(3, snapshot("a"), Format::Json));
        let mut last = 3;
        assert_eq!(next_message(&Event::Snapshot(p), &mut last, Wire::Sse), Next::Skip);
    }

    #[test]
    fn remodel_reports_reach_the_line_stream_only_when_asked() {
        let report = Report::new(r#"{"event":"remodel","type":"status"}"#.to_string());
        assert_eq!(&report.line[..], b"{\"event\":\"remodel\",\"type\":\"status\"}\n");
        assert_eq!(&report.json()[..], &report.line[..report.line.len() - 1]);
        let event = Event::Remodel(report.clone());
        let mut last = 7;
        assert_eq!(next_message(&event, &mut last, LINE), Next::Skip);
        let with_reports = Wire::Line { remodel_events: true };
        assert_eq!(next_message(&event, &mut last, with_reports), Next::Send(report.line.clone()));
        let sse = next_message(&event, &mut last, Wire::Sse);
        assert_eq!(sse, Next::Send(http::sse_frame("remodel", None, &report.json())));
        // A report never moves the snapshot sequence.
        assert_eq!(last, 7);
        let hub = Hub::new(1);
        assert!(!hub.remodel_events());
        hub.set_remodel_events(true);
        assert!(hub.remodel_events());
    }

    #[test]
    fn lagging_receiver_loses_oldest_only() {
        let hub = Hub::new(10);
        let (mut rx, _) = hub.subscribe();
        for seq in 1..=(QUEUE_CAPACITY as u64 + 2) {
            hub.publish(Published::new(seq, snapshot("a"), Format::Json));
        }
        assert!(matches!(rx.try_recv(), Err(broadcast::error::TryRecvError::Lagged(2))));
        let Ok(Event::Snapshot(p)) = rx.try_recv() else { panic!("expected a snapshot") };
        assert_eq!(p.seq, 3);
    }

    #[test]
    fn slots_respect_the_limit_and_free_on_drop() {
        let hub = Hub::new(2);
        let a = hub.try_slot();
        let b = hub.try_slot();
        assert!(a.is_some() && b.is_some());
        assert!(hub.try_slot().is_none());
        drop(a);
        assert!(hub.try_slot().is_some());
        hub.set_max_subscribers(0);
        assert!(hub.try_slot().is_none());
        assert_eq!(hub.counters().subscribers(), 1);
    }

    #[test]
    fn sse_streams_have_their_own_limit() {
        let hub = Hub::new(1);
        let line = hub.try_slot();
        assert!(line.is_some());
        assert!(hub.try_slot().is_none());
        // The line stream is full; SSE is not.
        let a = hub.try_sse_slot(2);
        let b = hub.try_sse_slot(2);
        assert!(a.is_some() && b.is_some());
        assert!(hub.try_sse_slot(2).is_none());
        let counters = hub.counters();
        assert_eq!(counters.subscribers(), 3);
        assert_eq!(counters.sse.load(Ordering::Relaxed), 2);
        drop(a);
        drop(line);
        assert_eq!(counters.subscribers(), 1);
        assert_eq!(counters.sse.load(Ordering::Relaxed), 1);
        assert!(hub.try_slot().is_some());
    }

    #[test]
    fn check_changes_reach_sse_only_and_once() {
        let hub = Hub::new(1);
        assert!(hub.checks().is_none());
        let (mut snapshots, _) = hub.subscribe();
        let mut rx = hub.subscribe_state();
        let set = Arc::new(CheckSet::new(3, 0.0, Vec::new()));
        let changes = CheckChanges { seq: 3, sse: Bytes::from_static(b"event: check\n") };
        hub.publish_checks(set.clone(), Some(changes.clone()));
        assert!(hub.checks().is_some_and(|c| Arc::ptr_eq(&c, &set)));
        assert_eq!(
            &set.json()[..],
            br#"{"state":"OK","exit-code":0,"timestamp":"1970-01-01T00:00:00Z","checks":[]}"#
        );
        // Encoded once, on first use.
        assert_eq!(set.json().as_ptr(), set.json().as_ptr());
        let event = rx.try_recv().unwrap();
        assert_eq!(event.sse_name(), "check");
        let mut last = 0;
        assert_eq!(next_message(&event, &mut last, LINE), Next::Skip);
        assert_eq!(next_message(&event, &mut last, Wire::Sse), Next::Send(changes.sse.clone()));
        // A subscriber that got run 3's full set skips run 3's changes, not run 4's.
        let mut sent = 3;
        assert_eq!(next_checks(&changes, &mut sent), Next::Skip);
        let later = CheckChanges { seq: 4, ..changes };
        assert_eq!(next_checks(&later, &mut sent), Next::Send(later.sse.clone()));
        assert_eq!(sent, 4);
        // No change, no event; and none on the snapshots' ring, which the line stream reads.
        hub.publish_checks(Arc::new(CheckSet::new(5, 0.0, Vec::new())), None);
        assert!(rx.try_recv().is_err());
        assert!(snapshots.try_recv().is_err());
        assert_eq!(hub.checks().map(|c| c.seq), Some(5));
    }

    #[test]
    fn sse_names() {
        let p = Arc::new(Published::new(1, snapshot("a"), Format::Json));
        assert_eq!(Event::Snapshot(p).sse_name(), "snapshot");
        assert_eq!(Event::Remodel(Report::new(String::new())).sse_name(), "remodel");
    }
}
