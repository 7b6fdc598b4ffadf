//! [`Lease`]: one active state on a host, counted until it is dropped.

use std::fmt;
use std::sync::Arc;

use crate::{Backend, BackendId, HostSlot};

/// Something to tell when a lease ends, beyond the host's own count: a sticky-address
/// table counting the leases of each entry, for example.
///
/// Called from [`Lease`]'s `Drop`, on whatever thread drops it: keep it short and
/// never block on the table.
pub trait Release: Send + Sync + 'static {
    /// The lease that carried `token` ended.
    fn release(&self, token: u128);
}

/// A [`Release`] to call when a lease ends, with the token the policy gave it.
///
/// Returned by [`Policy::leased`](crate::Policy::leased). Cloning the `Arc` does not
/// allocate, so a hook costs a picked host nothing on the hot path.
#[derive(Clone)]
pub struct LeaseHook {
    release: Arc<dyn Release>,
    token: u128,
}

impl LeaseHook {
    /// A hook that calls `release.release(token)` when the lease is dropped.
    pub fn new(release: Arc<dyn Release>, token: u128) -> Self {
        LeaseHook { release, token }
    }
}

impl fmt::Debug for LeaseHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseHook")
            .field("token", &self.token)
            .finish()
    }
}

/// One active state on a host: a connection, a request in flight.
///
/// A pick returns a lease. While it lives, the host's active-state count includes it
/// (least-states and P2C read that count); dropping it, on any thread, decrements the
/// count and tells the policy (sticky-address keeps its entry while leases use it).
/// A lease is two pointers: move it into the task that serves the connection.
///
/// Hold it for exactly as long as the work lasts. Leaking a lease (for example with
/// `mem::forget`) leaves the host looking busy forever.
pub struct Lease<B: Backend> {
    slot: Arc<HostSlot<B>>,
    hook: Option<LeaseHook>,
}

impl<B: Backend> Lease<B> {
    /// Takes a lease on a host: counts one more active state and one more total.
    pub(crate) fn acquire(slot: Arc<HostSlot<B>>, hook: Option<LeaseHook>) -> Self {
        slot.state().begin();
        Lease { slot, hook }
    }

    /// The leased backend.
    pub fn backend(&self) -> &B {
        self.slot.backend()
    }

    /// The leased host's id.
    pub fn id(&self) -> BackendId {
        self.slot.id()
    }

    /// The leased host's name.
    pub fn name(&self) -> &str {
        self.slot.name()
    }

    /// The leased host's slot: its state block and counters.
    pub fn host(&self) -> &Arc<HostSlot<B>> {
        &self.slot
    }
}

impl<B: Backend> Drop for Lease<B> {
    fn drop(&mut self) {
        self.slot.state().end();
        if let Some(hook) = self.hook.take() {
            hook.release.release(hook.token);
        }
    }
}

impl<B: Backend> fmt::Debug for Lease<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("host", &self.slot.name())
            .field("id", &self.slot.id())
            .field("hook", &self.hook)
            .finish()
    }
}
