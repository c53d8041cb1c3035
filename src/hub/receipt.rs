//! Receipts: whoever hands spokes' snapshots to the push sinks (an ingest request, a spoke's
//! poller) learns when every sink's appender has them on disk (appended and `fdatasync`ed), or
//! why one could not. \[pure\]: no I/O, a one-shot channel.
//!
//! A [`Receipt`] travels with each copy of a snapshot (`Forwarded::receipt`); the sinks' loop
//! gives each sink's copy its own clone. Every receipt must be settled: [`Receipt::stored`]
//! by the appender once the append's sync returned (or when the sink's `interval` does not
//! want the snapshot), [`Receipt::failed`] with the reason, or [`Receipt::passed_on`] by a hand
//! that gave clones to others. One dropped unsettled (a sink stopped with the snapshot in its
//! feed, a shutdown) counts as a failure, so nothing is reported stored that was not. When the
//! last receipt of a request is gone, its [`Waiter`] gets `Ok` if none failed, else the first
//! failure.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Why a dropped receipt failed.
pub const DROPPED: &str = "a push sink stopped before spooling them";

/// One copy of forwarded snapshots on its way to a spool, or the hand that carries them there.
pub struct Receipt {
    shared: Arc<Shared>,
    settled: bool,
}

/// What the receipts of one request share; tells the waiter when the last one is gone.
struct Shared {
    failure: Mutex<Option<String>>,
    done: Option<oneshot::Sender<Result<(), String>>>,
}

/// The other end: waits until every receipt is settled.
#[derive(Debug)]
pub struct Waiter {
    done: oneshot::Receiver<Result<(), String>>,
}

impl Receipt {
    /// A receipt and its waiter. Give clones of the receipt to what carries the snapshots
    /// before settling it (a receipt settled with no clones alive tells the waiter at once).
    pub fn new() -> (Receipt, Waiter) {
        let (tx, rx) = oneshot::channel();
        let shared = Arc::new(Shared { failure: Mutex::new(None), done: Some(tx) });
        (Receipt { shared, settled: false }, Waiter { done: rx })
    }

    /// This copy is on disk (or the sink does not want it).
    pub fn stored(mut self) {
        self.settled = true;
    }

    /// This hand gave clones to every place the snapshots go; they settle them.
    pub fn passed_on(mut self) {
        self.settled = true;
    }

    /// This copy cannot be stored, and why; the waiter gets the first such reason.
    pub fn failed(mut self, why: impl Into<String>) {
        self.fail(why.into());
        self.settled = true;
    }

    fn fail(&self, why: String) {
        let mut failure = self.shared.failure.lock().unwrap_or_else(|e| e.into_inner());
        failure.get_or_insert(why);
    }
}

impl Clone for Receipt {
    /// Another copy on its way, to be settled on its own.
    fn clone(&self) -> Receipt {
        Receipt { shared: Arc::clone(&self.shared), settled: false }
    }
}

impl Drop for Receipt {
    fn drop(&mut self) {
        if !self.settled {
            self.fail(DROPPED.to_string());
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let failure = self.failure.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(done) = self.done.take() {
            // The waiter may have given up (its request timed out): nobody to tell.
            let _ = done.send(failure.map_or(Ok(()), Err));
        }
    }
}

impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receipt").field("settled", &self.settled).finish_non_exhaustive()
    }
}

impl Waiter {
    /// `Ok` once every receipt is settled and none failed; else the first failure.
    ///
    /// # Errors
    /// Why a copy could not be stored.
    pub async fn wait(self) -> Result<(), String> {
        self.await
    }
}

impl std::future::Future for Waiter {
    type Output = Result<(), String>;

    /// What [`Waiter::wait`] answers; polled in place (`&mut waiter`) too.
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.done)
            .poll(cx)
            .map(|got| got.unwrap_or_else(|_| Err(DROPPED.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the waiter has its answer already.
    fn ready(waiter: &mut Waiter) -> Option<Result<(), String>> {
        waiter.done.try_recv().ok()
    }

    #[test]
    fn the_waiter_learns_only_when_every_copy_is_stored() {
        let (receipt, mut waiter) = Receipt::new();
        let copies: Vec<Receipt> = (0..3).map(|_| receipt.clone()).collect();
        receipt.passed_on();
        let mut copies = copies.into_iter();
        copies.next().unwrap().stored();
        copies.next().unwrap().stored();
        assert_eq!(ready(&mut waiter), None, "one copy is still on its way");
        copies.next().unwrap().stored();
        assert_eq!(ready(&mut waiter), Some(Ok(())));
    }

    #[test]
    fn one_failure_fails_the_whole_and_the_first_reason_is_told() {
        let (receipt, mut waiter) = Receipt::new();
        let (a, b, c) = (receipt.clone(), receipt.clone(), receipt.clone());
        receipt.passed_on();
        a.failed("cannot spool snapshot for push sink vm: disk full");
        b.stored();
        c.failed("another reason");
        assert_eq!(
            ready(&mut waiter),
            Some(Err("cannot spool snapshot for push sink vm: disk full".into()))
        );
    }

    #[test]
    fn a_copy_dropped_unsettled_is_a_failure() {
        let (receipt, mut waiter) = Receipt::new();
        let copy = receipt.clone();
        receipt.passed_on();
        drop(copy);
        assert_eq!(ready(&mut waiter), Some(Err(DROPPED.into())));
        // The hand itself dropped without passing its copies on: the same.
        let (receipt, mut waiter) = Receipt::new();
        drop(receipt);
        assert_eq!(ready(&mut waiter), Some(Err(DROPPED.into())));
    }

    #[tokio::test]
    async fn wait_answers_once_the_last_copy_is_settled_elsewhere() {
        let (receipt, waiter) = Receipt::new();
        let copy = receipt.clone();
        receipt.passed_on();
        let appender = tokio::spawn(async move { copy.stored() });
        assert_eq!(waiter.wait().await, Ok(()));
        appender.await.unwrap();
    }
}
