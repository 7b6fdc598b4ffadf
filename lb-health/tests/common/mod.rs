//! Helpers shared by the integration tests: servers on 127.0.0.1 port 0, a scripted
//! check, and bounded waits on the event stream.
#![allow(dead_code)]

pub mod scripted;
pub mod servers;
#[cfg(feature = "tls")]
pub mod tls;

use std::time::Duration;

use lb_core::Health;
use lb_health::{EventKind, HostEvent};
use tokio::sync::broadcast;

/// The next event, or a panic naming what was awaited after `within`.
pub async fn next_event(rx: &mut broadcast::Receiver<HostEvent>, within: Duration) -> HostEvent {
    match tokio::time::timeout(within, rx.recv()).await {
        Ok(Ok(e)) => e,
        Ok(Err(e)) => panic!("event stream failed: {e}"),
        Err(_) => panic!("no event within {within:?}"),
    }
}

/// Skips events until a health change to `new`, within `within` in all. The panic after
/// `within` lists the events skipped.
pub async fn event_to(
    rx: &mut broadcast::Receiver<HostEvent>,
    new: Health,
    within: Duration,
) -> HostEvent {
    let mut skipped = Vec::new();
    let wait = async {
        loop {
            match rx.recv().await {
                Ok(e) if e.kind == EventKind::Health && e.new == new => return e,
                Ok(e) => skipped.push(e),
                Err(e) => panic!("event stream failed: {e}"),
            }
        }
    };
    match tokio::time::timeout(within, wait).await {
        Ok(e) => e,
        Err(_) => panic!("no change to {new} within {within:?}; skipped: {skipped:?}"),
    }
}

/// Skips events until one of `kind` (an ejection or its end), within `within` in all.
pub async fn event_of(
    rx: &mut broadcast::Receiver<HostEvent>,
    kind: EventKind,
    within: Duration,
) -> HostEvent {
    let mut skipped = Vec::new();
    let wait = async {
        loop {
            match rx.recv().await {
                Ok(e) if e.kind == kind => return e,
                Ok(e) => skipped.push(e),
                Err(e) => panic!("event stream failed: {e}"),
            }
        }
    };
    match tokio::time::timeout(within, wait).await {
        Ok(e) => e,
        Err(_) => panic!("no {kind:?} event within {within:?}; skipped: {skipped:?}"),
    }
}
