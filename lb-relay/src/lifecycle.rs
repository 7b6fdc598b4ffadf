//! The relay's lifecycle: the [`Phase`] every task watches, and the [`Tracker`] that
//! knows when the last session ended.
//!
//! Graceful shutdown is three steps (see
//! [`RelayHandle::shutdown`](crate::RelayHandle::shutdown)): the accept loop sees
//! [`Phase::Draining`] and drops its listeners, so new connections are refused by the
//! kernel; sessions keep running until the tracker reaches zero or the deadline passes;
//! then [`Phase::Closing`] makes every remaining session drop its sockets.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{watch, Notify};

/// Where the relay is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// Accepting and serving.
    Running,
    /// Not accepting; sessions finish.
    Draining,
    /// Every session closes now.
    Closing,
}

/// Waits until the phase reaches `at_least`. Returns at once if it already has, or if
/// the sender is gone (the relay handle was dropped: treated as closing).
pub(crate) async fn reached(rx: &mut watch::Receiver<Phase>, at_least: Phase) {
    // An error means the sender was dropped: everything stops.
    let _ = rx.wait_for(|p| *p >= at_least).await;
}

/// Counts live sessions and wakes whoever waits for the count to reach zero.
#[derive(Default)]
pub(crate) struct Tracker {
    live: AtomicUsize,
    idle: Notify,
}

/// One live session: dropping it ends it.
pub(crate) struct Token(Arc<Tracker>);

impl Tracker {
    /// Counts a session until the token is dropped.
    pub(crate) fn enter(self: &Arc<Self>) -> Token {
        self.live.fetch_add(1, Ordering::AcqRel);
        Token(self.clone())
    }

    /// Live sessions.
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Returns once no session is live.
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Register before checking, so a session ending in between is not missed.
            notified.as_mut().enable();
            if self.live() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    /// Bound on every wait here: only there so a bug fails instead of hanging.
    const BOUND: Duration = Duration::from_secs(10);

    /// Polls `fut` once, by hand: whether it is done now, with nothing else running.
    fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        std::pin::Pin::new(fut).poll(&mut cx)
    }

    #[tokio::test]
    async fn idle_waits_for_the_last_token() {
        let tracker = Arc::new(Tracker::default());
        // Nothing live: ready at the first poll.
        assert!(poll_once(&mut pin!(tracker.idle())).is_ready());
        let a = tracker.enter();
        let b = tracker.enter();
        assert_eq!(tracker.live(), 2);
        let mut idle = pin!(tracker.idle());
        assert!(poll_once(&mut idle).is_pending(), "two sessions live");
        drop(a);
        assert_eq!(tracker.live(), 1);
        assert!(poll_once(&mut idle).is_pending(), "one session still live");
        drop(b);
        assert_eq!(tracker.live(), 0);
        tokio::time::timeout(BOUND, idle)
            .await
            .expect("idle() returns when the last token drops");
    }

    #[tokio::test]
    async fn phases_are_ordered() {
        let (tx, mut rx) = watch::channel(Phase::Running);
        // Running has not reached Draining.
        assert!(poll_once(&mut pin!(reached(&mut rx, Phase::Draining))).is_pending());
        tx.send(Phase::Closing).unwrap();
        // Closing implies draining: ready at once.
        assert!(poll_once(&mut pin!(reached(&mut rx, Phase::Draining))).is_ready());
        assert_eq!(*rx.borrow(), Phase::Closing);
        let (tx, mut rx) = watch::channel(Phase::Running);
        // A dropped sender (the handle is gone) counts as closing.
        drop(tx);
        tokio::time::timeout(BOUND, reached(&mut rx, Phase::Closing))
            .await
            .expect("a closed channel ends the wait");
        assert!(Phase::Running < Phase::Draining && Phase::Draining < Phase::Closing);
    }
}
