//! Hub mode: this daemon forwards other devices' metrics through its own push sinks, as
//! pattoo's hub does (docs/push.md, "Hub").
//!
//! Two ways in, one way out:
//!
//! - **Polling** (`hub.spokes`): one task per spoke GETs its `pocketses.metrics/v1` document
//!   (`/v1/metrics` of another pocketses daemon) every `hub.interval`, each with its own
//!   deadline (`hub.timeout`), so a spoke that is down or slow never delays the others
//!   ([`poll`]).
//! - **Ingest** (`hub.ingest=true`): `POST /v1/ingest` takes the documents a spoke's `json` sink
//!   sends, behind the HTTP listener's credentials when they are set ([`ingest`]).
//!
//! Either way a document is read back into a `Snapshot` ([`document`]), tagged `spoke=HOST:PORT`
//! (polled) or `spoke=HOSTNAME` (ingested), and handed as a [`Forwarded`] to
//! `push::sink::run`, which spools and sends it like the daemon's own snapshots: the same sinks,
//! formats, spools and guarantees.
//!
//! - [`document`] \[pure\]: documents → snapshots and their tags.
//! - [`spoke`] \[pure\]: where to poll, each spoke's state and figures, `pocketses_hub_*`.
//! - [`poll`] \[io\]: the spoke tasks, following `hub.*` as the configuration changes.
//! - [`ingest`] \[io\]: the `POST /v1/ingest` handler the HTTP listener calls.
//! - [`receipt`] \[pure\]: how the sinks' appenders tell the ingest handler and the pollers
//!   that forwarded snapshots are on disk ([`forward_stored`]): a 200 to a spoke means synced.
//!
//! What it does not do: store anything itself (the sinks' spools do), or publish spokes'
//! snapshots to this daemon's own subscribers.

pub mod document;
pub mod ingest;
pub mod poll;
pub mod receipt;
pub mod spoke;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::metrics::Snapshot;
use crate::push::encode::{check_tags, SinkFormat};
use receipt::Receipt;
use spoke::{IngestStatus, Outcome, SpokeStatus, Step};

/// Snapshots from spokes waiting for the sinks; a spoke task waits when it is full (the sinks
/// take them without waiting, so it drains at once).
pub const FORWARD_CAPACITY: usize = 256;

/// A snapshot of another device for the push sinks, with the tags its points get on top of
/// each sink's own.
#[derive(Debug, Clone)]
pub struct Forwarded {
    /// The metrics.
    pub snapshot: Arc<Snapshot>,
    /// The tags of its source: the document's own and `spoke`.
    pub tags: Vec<(String, String)>,
    /// Settled by each sink's appender once its copy is on disk, for whoever waits for that
    /// (an ingest request, a spoke's poller: [`forward_stored`]); `None` when nobody waits.
    pub receipt: Option<Receipt>,
}

impl Forwarded {
    /// A snapshot of this device (no extra tags).
    pub fn local(snapshot: Arc<Snapshot>) -> Forwarded {
        Forwarded { snapshot, tags: Vec::new(), receipt: None }
    }

    /// Where it comes from, to keep each source's `push.NAME.interval` apart: the `spoke` tag,
    /// empty for this device.
    pub fn source(&self) -> &str {
        self.tags.iter().find(|(k, _)| k == spoke::TAG).map_or("", |(_, v)| v.as_str())
    }
}

/// Why forwarded snapshots are not known to be on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unstored {
    /// A sink cannot store them (an append or its sync failed, its feed stayed full, it
    /// stopped, no sink runs), and why.
    Failed(String),
    /// Not every sink had them on disk within the wait (they may still get there).
    Late,
}

/// Hands `items` to the push sinks through `forward`, and waits up to `within` until every
/// sink running when they were handed over has them on disk (appended and `fdatasync`ed): only
/// then may a spoke be told they are taken. The appenders still share one `fdatasync` among
/// whatever waits in their feed together (group commit), so this adds no sync of its own.
///
/// # Errors
/// [`Unstored::Failed`] with the first reason a sink gave, or [`Unstored::Late`].
pub async fn forward_stored(
    forward: &mpsc::Sender<Forwarded>,
    mut items: Vec<Forwarded>,
    within: Duration,
) -> Result<(), Unstored> {
    let (receipt, waiter) = Receipt::new();
    for item in &mut items {
        item.receipt = Some(receipt.clone());
    }
    receipt.passed_on();
    let stored = async {
        for item in items {
            forward.send(item).await.map_err(|_| "the push sinks are stopping".to_string())?;
        }
        waiter.wait().await
    };
    match tokio::time::timeout(within, stored).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(why)) => Err(Unstored::Failed(why)),
        Err(_) => Err(Unstored::Late),
    }
}

/// The tags of a forwarded snapshot for a sink of `format` with tags `own`: the sink's own
/// first, then the snapshot's tags whose keys the sink does not set and that `format` can
/// carry (a document's tag such as `__x` is left out for prometheus rather than refusing the
/// whole snapshot). \[pure\]
pub fn merge_tags(
    format: SinkFormat,
    own: &[(String, String)],
    forwarded: &[(String, String)],
) -> Vec<(String, String)> {
    let mut out = own.to_vec();
    for tag in forwarded {
        if out.iter().any(|(k, _)| *k == tag.0) {
            continue;
        }
        if check_tags(format, std::slice::from_ref(tag)).is_ok() {
            out.push(tag.clone());
        }
    }
    out
}

/// The hub's figures and its way to the sinks, shared by the spoke tasks, the ingest handler,
/// the control socket and `/metrics`. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    spokes: Mutex<Vec<SpokeStatus>>,
    ingest: Mutex<IngestStatus>,
    forward: OnceLock<mpsc::Sender<Forwarded>>,
    sinks: Mutex<Sinks>,
}

/// The push sinks forwarded snapshots go to, as `push::sink::run` last set them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sinks {
    /// Sinks configured, enabled or not.
    pub configured: usize,
    /// Of those, the ones running (taking snapshots): enabled, and started.
    pub running: usize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Figures {
    /// Every spoke's figures, in `hub.spokes` order.
    pub fn spokes(&self) -> Vec<SpokeStatus> {
        lock(&self.inner.spokes).clone()
    }

    /// The ingest figures.
    pub fn ingest(&self) -> IngestStatus {
        *lock(&self.inner.ingest)
    }

    /// The `pocketses_hub_*` families.
    pub fn families(&self) -> Vec<crate::metrics::encode::prometheus::Family> {
        spoke::families(&self.spokes(), &self.ingest())
    }

    /// Where forwarded snapshots go; set once by the daemon.
    pub fn set_forward(&self, forward: mpsc::Sender<Forwarded>) {
        let _ = self.inner.forward.set(forward);
    }

    /// Says which push sinks take forwarded snapshots (`push::sink::run`, after each change).
    pub fn set_sinks(&self, sinks: Sinks) {
        *lock(&self.inner.sinks) = sinks;
    }

    /// The push sinks that take forwarded snapshots.
    pub fn sinks(&self) -> Sinks {
        *lock(&self.inner.sinks)
    }

    /// Where forwarded snapshots go, once set.
    pub fn forward(&self) -> Option<mpsc::Sender<Forwarded>> {
        self.inner.forward.get().cloned()
    }

    fn set_spokes(&self, spokes: Vec<SpokeStatus>) {
        *lock(&self.inner.spokes) = spokes;
    }

    fn record(&self, index: usize, outcome: &Outcome, now_ms: u64) -> Step {
        match lock(&self.inner.spokes).get_mut(index) {
            Some(status) => status.record(outcome, now_ms),
            None => Step { forward: false, log: None },
        }
    }

    fn stored(&self, index: usize, timestamp: f64) {
        if let Some(status) = lock(&self.inner.spokes).get_mut(index) {
            status.stored(timestamp);
        }
    }

    fn set_ingest_enabled(&self, on: bool) {
        lock(&self.inner.ingest).enabled = on;
    }

    fn count_ingest(&self, documents: u64, refused: u64) {
        let mut ingest = lock(&self.inner.ingest);
        ingest.documents += documents;
        ingest.refused += refused;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_sinks_tags_win_and_tags_a_format_cannot_carry_are_left_out() {
        let own = tags(&[("site", "hub"), ("job", "fleet")]);
        let forwarded = tags(&[("site", "lab"), ("rack", "4"), ("__x", "y"), ("spoke", "d:9188")]);
        assert_eq!(
            merge_tags(SinkFormat::Prometheus, &own, &forwarded),
            tags(&[("site", "hub"), ("job", "fleet"), ("rack", "4"), ("spoke", "d:9188")])
        );
        // Influx refuses keys starting with `_` too; json takes anything.
        assert_eq!(
            merge_tags(SinkFormat::Influx, &[], &tags(&[("_t", "1"), ("spoke", "d")])),
            tags(&[("spoke", "d")])
        );
        assert_eq!(merge_tags(SinkFormat::Json, &[], &forwarded).len(), 4);
    }

    #[test]
    fn the_source_is_the_spoke_tag() {
        let snapshot = Arc::new(Snapshot::default());
        assert_eq!(Forwarded::local(snapshot.clone()).source(), "");
        let f =
            Forwarded { snapshot, tags: tags(&[("site", "x"), ("spoke", "d:1")]), receipt: None };
        assert_eq!(f.source(), "d:1");
    }
}
