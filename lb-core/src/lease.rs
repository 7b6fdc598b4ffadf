//! [`Lease`]: one active state on a host, counted until it is dropped.

use std::fmt;
use std::sync::Arc;

use crate::host::LeasedHost;
use crate::{Backend, BackendId, HostSlot, HostState};

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
/// A lease costs one atomic increment when taken and one when dropped (no reference
/// count beside them: the host's own counts keep its backend alive, see
/// [`HostSlot`]). Move it into the task that serves the connection.
///
/// Hold it for exactly as long as the work lasts. Leaking a lease (for example with
/// `mem::forget`) leaves the host looking busy forever and its backend never dropped;
/// with 2^30 leases live on one host, taking another aborts the process (as cloning an
/// `Arc` past its limit does).
pub struct Lease<B: Backend> {
    // Fields drop in declaration order: the host's count ends before the policy's
    // hook hears of it.
    host: LeasedHost<B>,
    hook: Option<ReleaseOnDrop>,
}

/// Tells a [`LeaseHook`]'s [`Release`] when dropped.
struct ReleaseOnDrop(LeaseHook);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.release.release(self.0.token);
    }
}

impl<B: Backend> Lease<B> {
    /// Takes a lease on a host: counts one more active state and one more total.
    #[inline]
    pub(crate) fn acquire(slot: &HostSlot<B>, hook: Option<LeaseHook>) -> Self {
        Lease {
            host: slot.lease(),
            hook: hook.map(ReleaseOnDrop),
        }
    }

    /// The leased backend.
    pub fn backend(&self) -> &B {
        self.host.backend()
    }

    /// The leased host's id.
    pub fn id(&self) -> BackendId {
        self.host.id()
    }

    /// The leased host's name.
    pub fn name(&self) -> &str {
        self.host.name()
    }

    /// The leased host's counters, live for as long as the lease, even once the host
    /// has left its table.
    pub fn state(&self) -> &HostState {
        self.host.state()
    }
}

impl<B: Backend> fmt::Debug for Lease<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("host", &self.host.name())
            .field("id", &self.host.id())
            .field("hook", &self.hook.as_ref().map(|h| &h.0))
            .finish()
    }
}
