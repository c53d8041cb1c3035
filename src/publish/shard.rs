//! Sharded fan-out of the TCP line stream: one task per runtime worker writes every plain
//! subscriber of its shard. \[io; [`Flow`], [`pick`] and [`shard_count`] are pure\]
//!
//! With one task per subscriber, a snapshot wakes every subscriber's task: thousands of wake-ups,
//! queue pushes and polls per cycle, and the writes land wherever the scheduler puts the tasks.
//! Here a snapshot wakes one task per shard ([`Shards`], as many as the runtime has workers), and
//! each writes its subscribers' sockets in a loop with a non-blocking `write`, so the shards write
//! on every core at once.
//!
//! A write the socket cannot take whole hands the subscriber back to its own task
//! (`tcp::subscriber`), which finishes the line as before, counted as blocked, while the shard
//! queues what comes next in the subscriber's [`Flow`]: at most [`QUEUE_CAPACITY`] snapshots,
//! dropping the oldest, counted in [`super::Counters::dropped`] when the subscriber catches up —
//! the same drop-oldest rule as the broadcast ring. Remodel reports are never dropped: the shard
//! takes them from the hub's state ring ([`STATE_CAPACITY`] deep), and a subscriber queues up to
//! [`STATE_CAPACITY`] of them; one that falls further behind is disconnected rather than silently
//! missing one, as an SSE stream is. Once its queue is empty the subscriber is live again and the
//! shard writes it directly. Flood limits, TLS and `AUTH` stay in the
//! subscriber's task; TLS subscribers are not sharded (their stream needs one owner).

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use hyper::body::Bytes;
use tokio::net::TcpStream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, Notify};

use super::{next_message, Event, Hub, Next, Wire, QUEUE_CAPACITY, STATE_CAPACITY};

/// Environment variable that sets the number of shards (0: one task per subscriber, as before
/// sharding). For measurements (`bench/fanout-ab`); the default is the runtime's worker count.
pub const SHARDS_ENV: &str = "POCKETSES_FANOUT_SHARDS";

/// Most shards, whatever the environment asks.
pub const MAX_SHARDS: usize = 64;

/// Subscribers a shard writes before it yields to the runtime's other tasks.
const YIELD_EVERY: usize = 256;

/// How many shards to run: `requested` (the environment's value, when it parses) or one per
/// runtime worker, at most [`MAX_SHARDS`]. 0 turns sharding off. \[pure\]
pub fn shard_count(requested: Option<&str>, workers: usize) -> usize {
    match requested.map(str::trim).and_then(|r| r.parse::<usize>().ok()) {
        Some(n) => n.min(MAX_SHARDS),
        None => workers.clamp(1, MAX_SHARDS),
    }
}

/// The shard a new subscriber joins: the one with the fewest subscribers, the first of equals.
/// \[pure\]
pub fn pick(loads: &[usize]) -> usize {
    loads.iter().enumerate().min_by_key(|&(i, &load)| (load, i)).map_or(0, |(i, _)| i)
}

/// Who writes a subscriber's socket now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The shard writes each message as it comes.
    Live,
    /// Its own task writes what is pending and queued; the shard only queues.
    Behind,
    /// Gone (its task ended, or a write failed): the shard skips it and forgets it.
    Closed,
}

/// One event as the line stream carries it, worked out once per event for all of a shard's
/// subscribers (a live subscriber's write borrows these bytes: no reference count is touched
/// per subscriber). \[pure\]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The snapshot's sequence number; `None` for a report, which is never skipped.
    pub seq: Option<u64>,
    /// The bytes to write.
    pub line: Bytes,
}

impl Message {
    /// What the line stream writes for `event`, if anything (as [`next_message`] decides).
    pub fn of(event: &Event, wire: Wire) -> Option<Message> {
        // Sequence numbers start at 1, so a last-sent of 0 lets every snapshot through.
        let mut none_sent = 0;
        match next_message(event, &mut none_sent, wire) {
            Next::Send(line) => {
                let seq = match event {
                    Event::Snapshot(p) => Some(p.seq),
                    Event::Remodel(_) | Event::Fleet(_) | Event::Checks(_) => None,
                };
                Some(Message { seq, line })
            }
            Next::Skip => None,
        }
    }
}

/// What a shard does with one message for one subscriber. \[pure\]
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing (already sent, not for this stream, queued, or the subscriber is closed).
    Nothing,
    /// Write these bytes now.
    Write(Bytes),
}

/// A sharded subscriber's delivery state, shared by its shard and its task. \[pure\]
#[derive(Debug)]
pub struct Flow {
    /// The last snapshot sent or queued, so nothing is sent twice.
    pub last_seq: u64,
    /// Who writes now.
    pub mode: Mode,
    /// The rest of a line the shard could not write whole: its bytes and how much was written.
    pub partial: Option<(Bytes, usize)>,
    /// Messages waiting behind `partial`, oldest first, each with whether it is a state event
    /// (a report): at most [`QUEUE_CAPACITY`] snapshots and [`STATE_CAPACITY`] reports.
    pub queue: VecDeque<(Bytes, bool)>,
    /// Messages dropped from the queue (drop-oldest) not yet counted in `dropped`.
    pub lost: u64,
}

impl Flow {
    /// A new subscriber: its task writes first (the latest snapshot), so it starts behind.
    pub fn new() -> Flow {
        Flow { last_seq: 0, mode: Mode::Behind, partial: None, queue: VecDeque::new(), lost: 0 }
    }

    /// A message for this subscriber: write it now, or queue it behind what is pending.
    pub fn offer(&mut self, event: &Event, wire: Wire) -> Step {
        match Message::of(event, wire) {
            Some(message) if self.take(&message) => Step::Write(message.line),
            Some(_) | None => Step::Nothing,
        }
    }

    /// [`Flow::offer`] for a message worked out once for every subscriber: true when the
    /// caller writes `message.line` now (the subscriber is live); queued when it is behind.
    pub fn take(&mut self, message: &Message) -> bool {
        if self.mode == Mode::Closed {
            return false;
        }
        if let Some(seq) = message.seq {
            if seq <= self.last_seq {
                return false;
            }
            self.last_seq = seq;
        }
        match self.mode {
            Mode::Live => true,
            Mode::Behind | Mode::Closed => {
                self.push(message.line.clone(), message.seq.is_none());
                false
            }
        }
    }

    /// Queues `line`: a snapshot drops the oldest queued snapshot past [`QUEUE_CAPACITY`]; a
    /// state event (`state`) is never dropped, and one past [`STATE_CAPACITY`] closes the flow
    /// instead (counted in `lost`): the subscriber is disconnected rather than silently missing it.
    pub fn push(&mut self, line: Bytes, state: bool) {
        self.queue.push_back((line, state));
        if state {
            if self.queue.iter().filter(|(_, state)| *state).count() > STATE_CAPACITY {
                self.queue.clear();
                self.partial = None;
                self.mode = Mode::Closed;
                self.lost += 1;
            }
            return;
        }
        while self.queue.iter().filter(|(_, state)| !*state).count() > QUEUE_CAPACITY {
            if let Some(oldest) = self.queue.iter().position(|(_, state)| !*state) {
                self.queue.remove(oldest);
                self.lost += 1;
            }
        }
    }

    /// The shard wrote `written` bytes of `line`: if not all, the subscriber's task takes over.
    /// Returns true when the task must be woken.
    pub fn wrote(&mut self, line: Bytes, written: usize) -> bool {
        if written >= line.len() {
            return false;
        }
        self.partial = Some((line, written));
        self.mode = Mode::Behind;
        true
    }

    /// The latest snapshot for a subscriber that just joined: queued unless the shard already
    /// queued it or a newer one.
    pub fn start(&mut self, seq: u64, line: Bytes) {
        if seq > self.last_seq {
            self.last_seq = seq;
            self.push(line, false);
        }
    }

    /// What the subscriber's task writes next: the rest of a partial line, then the queue; when
    /// nothing is left the subscriber is live again (`None`).
    pub fn next_for_task(&mut self) -> Option<(Bytes, usize)> {
        if let Some(partial) = self.partial.take() {
            return Some(partial);
        }
        match self.queue.pop_front() {
            Some((line, _)) => Some((line, 0)),
            None => {
                if self.mode == Mode::Behind {
                    self.mode = Mode::Live;
                }
                None
            }
        }
    }
}

impl Default for Flow {
    fn default() -> Flow {
        Flow::new()
    }
}

/// A sharded subscriber: its socket (the shard writes it, the task reads it) and its flow.
#[derive(Debug)]
pub struct Entry {
    /// The subscriber's socket.
    pub stream: Arc<TcpStream>,
    flow: Mutex<Flow>,
    /// Wakes the subscriber's task when it must write (a write the shard could not finish).
    pub wake: Notify,
}

impl Entry {
    /// The flow, locked (a poisoned lock still holds a usable flow).
    pub fn flow(&self) -> MutexGuard<'_, Flow> {
        self.flow.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One shard: its subscribers live in its task; new ones wait in `incoming` for the next pass.
#[derive(Debug, Default)]
struct Shard {
    incoming: Mutex<Vec<Arc<Entry>>>,
    load: AtomicUsize,
    /// Events this shard has taken off the broadcast (delivered or lost), for shutdown.
    seen: AtomicU64,
    passed: Notify,
}

/// The shards of one hub, started on first use.
#[derive(Debug)]
pub struct Shards {
    shards: Vec<Arc<Shard>>,
}

/// A subscriber's place in a shard; dropping it closes the flow, and the shard forgets it.
#[derive(Debug)]
pub struct Registration {
    /// The subscriber.
    pub entry: Arc<Entry>,
    shard: Arc<Shard>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.entry.flow().mode = Mode::Closed;
        self.shard.load.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Registration {
    /// Waits until the shard has taken every event the hub sent so far (at shutdown, so that
    /// what was published before it is handed over, as the broadcast ring used to).
    pub async fn caught_up(&self, hub: &Hub) {
        loop {
            let passed = self.shard.passed.notified();
            tokio::pin!(passed);
            passed.as_mut().enable();
            if self.shard.seen.load(Ordering::Acquire) >= hub.sent() {
                return;
            }
            passed.await;
        }
    }
}

impl Shards {
    /// Starts `n` shard tasks on the current runtime (n ≥ 1).
    pub fn start(hub: &Hub, n: usize) -> Shards {
        let shards: Vec<Arc<Shard>> = (0..n.max(1)).map(|_| Arc::new(Shard::default())).collect();
        for shard in &shards {
            let (rx, state, sent) = hub.receiver_at();
            shard.seen.store(sent, Ordering::Release);
            tokio::spawn(run(hub.clone(), Arc::clone(shard), rx, state));
        }
        Shards { shards }
    }

    /// Puts a subscriber in the least loaded shard. It starts [`Mode::Behind`]: its task sends
    /// the latest snapshot (see [`Flow::start`]), then the shard takes over.
    pub fn register(&self, stream: Arc<TcpStream>) -> Registration {
        let loads: Vec<usize> =
            self.shards.iter().map(|s| s.load.load(Ordering::Relaxed)).collect();
        let shard = Arc::clone(&self.shards[pick(&loads).min(self.shards.len() - 1)]);
        shard.load.fetch_add(1, Ordering::Relaxed);
        let entry = Arc::new(Entry { stream, flow: Mutex::new(Flow::new()), wake: Notify::new() });
        if let Ok(mut incoming) = shard.incoming.lock() {
            incoming.push(Arc::clone(&entry));
        }
        Registration { entry, shard }
    }

    /// Subscribers per shard now.
    pub fn loads(&self) -> Vec<usize> {
        self.shards.iter().map(|s| s.load.load(Ordering::Relaxed)).collect()
    }
}

/// A shard's task: one wake-up per event, then a write to each of its live subscribers.
///
/// Snapshots come from the hub's ring (`rx`, drop-oldest), remodel reports from its state ring
/// (`state`, never dropped), read first. A report is sent to the state ring before the
/// snapshots' ring, so by the time the shard takes it from `rx` (where it only counts towards
/// [`Shard::seen`]) it has already written it.
async fn run(
    hub: Hub,
    shard: Arc<Shard>,
    mut rx: broadcast::Receiver<Event>,
    mut state: broadcast::Receiver<Event>,
) {
    let mut entries: Vec<Arc<Entry>> = Vec::new();
    loop {
        let (event, from_state) = tokio::select! {
            biased;
            res = state.recv() => match res {
                Ok(event) => (event, true),
                Err(RecvError::Lagged(n)) => {
                    // The shard itself fell STATE_CAPACITY state events behind. When reports go
                    // on the line stream, its subscribers would miss one: disconnect them, as a
                    // subscriber that falls that far behind on its own is.
                    if hub.remodel_events() {
                        if let Ok(mut incoming) = shard.incoming.lock() {
                            entries.append(&mut incoming);
                        }
                        for entry in entries.drain(..) {
                            entry.flow().mode = Mode::Closed;
                            entry.wake.notify_one();
                            hub.counters().dropped.fetch_add(n, Ordering::Relaxed);
                        }
                    }
                    continue;
                }
                Err(RecvError::Closed) => return,
            },
            res = rx.recv() => match res {
                Ok(event) => (event, false),
                Err(RecvError::Lagged(n)) => {
                    // The shard itself fell behind the ring: every subscriber of it lost `n`.
                    entries.retain(|e| e.flow().mode != Mode::Closed);
                    let lost = n.saturating_mul(entries.len() as u64);
                    hub.counters().dropped.fetch_add(lost, Ordering::Relaxed);
                    shard.seen.fetch_add(n, Ordering::Release);
                    shard.passed.notify_waiters();
                    continue;
                }
                Err(RecvError::Closed) => return,
            },
        };
        // Reports from the state ring only; snapshots from the snapshots' ring only.
        let take = if from_state {
            matches!(event, Event::Remodel(_))
        } else {
            matches!(event, Event::Snapshot(_))
        };
        if take {
            if let Ok(mut incoming) = shard.incoming.lock() {
                entries.append(&mut incoming);
            }
            let wire = Wire::Line { remodel_events: hub.remodel_events() };
            if let Some(message) = Message::of(&event, wire) {
                deliver_all(&mut entries, &message).await;
            }
        }
        if !from_state {
            shard.seen.fetch_add(1, Ordering::Release);
            shard.passed.notify_waiters();
        }
    }
}

/// Offers `message` to every subscriber of a shard, forgetting those that are gone.
async fn deliver_all(entries: &mut Vec<Arc<Entry>>, message: &Message) {
    let mut i = 0;
    let mut written = 0;
    while i < entries.len() {
        match deliver(&entries[i], message) {
            Delivered::Closed => {
                entries.swap_remove(i);
                continue;
            }
            Delivered::Written => written += 1,
            Delivered::Nothing => {}
        }
        i += 1;
        if written >= YIELD_EVERY {
            written = 0;
            tokio::task::yield_now().await;
        }
    }
}

/// What [`deliver`] did for one subscriber.
enum Delivered {
    /// The subscriber is gone: the shard forgets it.
    Closed,
    /// A write was made (whole or not).
    Written,
    /// Nothing written (skipped or queued).
    Nothing,
}

/// Offers `message` to one subscriber and writes it when it is live.
fn deliver(entry: &Entry, message: &Message) -> Delivered {
    let mut flow = entry.flow();
    if flow.mode == Mode::Closed {
        return Delivered::Closed;
    }
    if !flow.take(message) {
        if flow.mode == Mode::Closed {
            // Too far behind on reports: its task ends the connection.
            entry.wake.notify_one();
            return Delivered::Closed;
        }
        return Delivered::Nothing;
    }
    match write_now(&entry.stream, &message.line) {
        Ok(n) if n >= message.line.len() => {}
        Ok(n) => {
            if flow.wrote(message.line.clone(), n) {
                entry.wake.notify_one();
            }
        }
        Err(_) => {
            flow.mode = Mode::Closed;
            entry.wake.notify_one();
        }
    }
    Delivered::Written
}

/// One non-blocking write: what the socket took (0 when it is full).
fn write_now(stream: &TcpStream, line: &[u8]) -> io::Result<usize> {
    loop {
        match stream.try_write(line) {
            Ok(n) => return Ok(n),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Format;
    use crate::metrics::Snapshot;
    use crate::publish::{Published, Report};

    const LINE: Wire = Wire::Line { remodel_events: false };

    fn snap(seq: u64) -> Event {
        let s = Snapshot { hostname: format!("h{seq}"), ..Snapshot::default() };
        Event::Snapshot(Arc::new(Published::new(seq, s, Format::Json)))
    }

    fn line_of(event: &Event) -> Bytes {
        match event {
            Event::Snapshot(p) => p.line.clone(),
            Event::Remodel(report) => report.line.clone(),
            _ => Bytes::new(),
        }
    }

    fn report(n: usize) -> Event {
        Event::Remodel(Report::new(format!(r#"{{"event":"remodel","n":{n}}}"#)))
    }

    const REPORTS: Wire = Wire::Line { remodel_events: true };

    #[test]
    fn shard_count_follows_the_workers_unless_asked() {
        assert_eq!(shard_count(None, 2), 2);
        assert_eq!(shard_count(None, 0), 1);
        assert_eq!(shard_count(None, 1000), MAX_SHARDS);
        assert_eq!(shard_count(Some("0"), 2), 0);
        assert_eq!(shard_count(Some(" 4 "), 2), 4);
        assert_eq!(shard_count(Some("999"), 2), MAX_SHARDS);
        assert_eq!(shard_count(Some("many"), 2), 2);
        assert_eq!(shard_count(Some(""), 3), 3);
    }

    #[test]
    fn new_subscribers_go_to_the_least_loaded_shard() {
        assert_eq!(pick(&[]), 0);
        assert_eq!(pick(&[0]), 0);
        assert_eq!(pick(&[3, 1, 2]), 1);
        assert_eq!(pick(&[2, 2, 2]), 0);
        assert_eq!(pick(&[5, 4, 4]), 1);
        // Filling two shards from empty alternates between them.
        let mut loads = [0usize; 2];
        let mut order = Vec::new();
        for _ in 0..6 {
            let i = pick(&loads);
            loads[i] += 1;
            order.push(i);
        }
        assert_eq!(order, [0, 1, 0, 1, 0, 1]);
    }

    #[test]
    fn a_live_subscriber_is_written_once_per_snapshot() {
        let mut flow = Flow::new();
        assert_eq!(flow.next_for_task(), None, "nothing to write: live");
        assert_eq!(flow.mode, Mode::Live);
        let e1 = snap(1);
        assert_eq!(flow.offer(&e1, LINE), Step::Write(line_of(&e1)));
        assert!(!flow.wrote(line_of(&e1), line_of(&e1).len()));
        // The same snapshot again (or an older one) is not sent twice.
        assert_eq!(flow.offer(&e1, LINE), Step::Nothing);
        assert_eq!(flow.last_seq, 1);
    }

    #[test]
    fn a_short_write_hands_the_subscriber_to_its_task_in_order() {
        let mut flow = Flow::new();
        flow.next_for_task();
        let (e1, e2, e3) = (snap(1), snap(2), snap(3));
        let Step::Write(l1) = flow.offer(&e1, LINE) else { panic!("not written") };
        assert!(flow.wrote(l1.clone(), 10), "the task must be woken");
        assert_eq!(flow.mode, Mode::Behind);
        // Later messages queue behind the partial line instead of being written.
        assert_eq!(flow.offer(&e2, LINE), Step::Nothing);
        assert_eq!(flow.offer(&e3, LINE), Step::Nothing);
        assert_eq!(flow.next_for_task(), Some((l1, 10)));
        assert_eq!(flow.next_for_task(), Some((line_of(&e2), 0)));
        assert_eq!(flow.next_for_task(), Some((line_of(&e3), 0)));
        assert_eq!(flow.mode, Mode::Behind);
        assert_eq!(flow.next_for_task(), None);
        assert_eq!(flow.mode, Mode::Live);
        assert_eq!(flow.lost, 0);
    }

    #[test]
    fn a_subscriber_behind_keeps_the_newest_and_counts_the_oldest() {
        let mut flow = Flow::new();
        let events: Vec<Event> = (1..=QUEUE_CAPACITY as u64 + 3).map(snap).collect();
        for e in &events {
            assert_eq!(flow.offer(e, LINE), Step::Nothing);
        }
        assert_eq!(flow.lost, 3);
        let got: Vec<Bytes> = std::iter::from_fn(|| flow.next_for_task().map(|(l, _)| l)).collect();
        let want: Vec<Bytes> = events[3..].iter().map(line_of).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_subscriber_behind_keeps_every_report_and_the_newest_snapshots() {
        let mut flow = Flow::new();
        let mut events = Vec::new();
        for seq in 1..=10usize {
            events.push(snap(seq as u64));
            if seq % 3 == 0 {
                events.push(report(seq));
            }
        }
        for e in &events {
            assert_eq!(flow.offer(e, REPORTS), Step::Nothing);
        }
        let got: Vec<Bytes> = std::iter::from_fn(|| flow.next_for_task().map(|(l, _)| l)).collect();
        // The reports in their places; of the snapshots, the newest QUEUE_CAPACITY.
        let want: Vec<Bytes> = events
            .iter()
            .filter(|e| match e {
                Event::Snapshot(p) => p.seq > 10 - QUEUE_CAPACITY as u64,
                _ => true,
            })
            .map(line_of)
            .collect();
        assert_eq!(got, want);
        assert_eq!(flow.lost, 10 - QUEUE_CAPACITY as u64);
        assert_eq!(flow.mode, Mode::Live);
    }

    #[test]
    fn a_subscriber_too_far_behind_on_reports_is_closed_not_left_short() {
        let mut flow = Flow::new();
        for n in 0..STATE_CAPACITY {
            assert_eq!(flow.offer(&report(n), REPORTS), Step::Nothing);
            assert_eq!(flow.offer(&snap(n as u64 + 1), REPORTS), Step::Nothing);
        }
        assert_eq!(flow.mode, Mode::Behind);
        assert_eq!(flow.queue.len(), STATE_CAPACITY + QUEUE_CAPACITY);
        assert_eq!(flow.offer(&report(STATE_CAPACITY), REPORTS), Step::Nothing);
        assert_eq!(flow.mode, Mode::Closed);
        assert!(flow.queue.is_empty());
        assert_eq!(flow.next_for_task(), None);
        assert_eq!(flow.mode, Mode::Closed);
    }

    #[test]
    fn a_new_subscriber_gets_the_latest_once() {
        // The shard queued snapshot 2 before the task read the latest (2): not queued twice.
        let mut flow = Flow::new();
        let e2 = snap(2);
        flow.offer(&e2, LINE);
        flow.start(2, line_of(&e2));
        assert_eq!(flow.queue.len(), 1);
        // The task read the latest (3) first: queued, and the shard skips it when it comes.
        let mut flow = Flow::new();
        let e3 = snap(3);
        flow.start(3, line_of(&e3));
        assert_eq!(flow.offer(&e3, LINE), Step::Nothing);
        assert_eq!(flow.queue.len(), 1);
        assert_eq!(flow.next_for_task(), Some((line_of(&e3), 0)));
        assert_eq!(flow.next_for_task(), None);
        let e4 = snap(4);
        assert_eq!(flow.offer(&e4, LINE), Step::Write(line_of(&e4)));
    }

    #[test]
    fn a_message_is_worked_out_once_per_event() {
        let e7 = snap(7);
        assert_eq!(Message::of(&e7, LINE), Some(Message { seq: Some(7), line: line_of(&e7) }));
        let report = Report::new(r#"{"event":"remodel"}"#.to_string());
        let event = Event::Remodel(report.clone());
        assert_eq!(Message::of(&event, LINE), None);
        let with_reports = Wire::Line { remodel_events: true };
        let want = Message { seq: None, line: report.line.clone() };
        assert_eq!(Message::of(&event, with_reports), Some(want.clone()));
        // Reports are never skipped as already sent; snapshots are.
        let mut flow = Flow::new();
        flow.next_for_task();
        assert!(flow.take(&Message::of(&e7, LINE).unwrap()));
        assert!(!flow.take(&Message::of(&e7, LINE).unwrap()));
        assert!(flow.take(&want));
        assert!(flow.take(&want));
        let checks = Event::Checks(Arc::new(crate::publish::CheckChanges::default()));
        assert_eq!(Message::of(&checks, with_reports), None);
    }

    #[test]
    fn closed_subscribers_get_nothing_and_reports_follow_the_wire() {
        let mut flow = Flow::new();
        flow.next_for_task();
        let report = Event::Remodel(Report::new(r#"{"event":"remodel"}"#.to_string()));
        assert_eq!(flow.offer(&report, LINE), Step::Nothing);
        let with_reports = Wire::Line { remodel_events: true };
        assert!(matches!(flow.offer(&report, with_reports), Step::Write(_)));
        flow.mode = Mode::Closed;
        assert_eq!(flow.offer(&snap(9), LINE), Step::Nothing);
        assert!(flow.queue.is_empty());
        assert_eq!(flow.last_seq, 0);
    }
}
