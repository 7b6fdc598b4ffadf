//! [`HostSlot`] and its [`HostState`]: a host's backend and counters, kept alive by the
//! slot and by every lease on it, with one atomic operation per lease taken or ended.
//!
//! # Why not an `Arc` per lease
//!
//! A lease must keep its host's backend alive (the host may leave the table while a
//! connection to it still runs) and must be counted (least-states reads the count).
//! With the backend behind an `Arc`, a lease cost five atomic read-modify-writes: the
//! reference count up and down, the active count up and down, plus the total. An
//! uncontended atomic increment costs 6-11 ns on the machines measured, most of a pick.
//! So the counts *are* the reference count: one word holds whether the slot is still
//! in use, the active leases and the low 32 bits of the total, so taking a lease is one
//! `fetch_add` and ending it one `fetch_sub`, and whichever of the slot and its last
//! lease goes last frees the block. (`pick_lease/consistent/<N>` in `benches/floor.rs`,
//! 2-core Intel Xeon VM: 35 ns with the `Arc` and the active and total counters; 29 ns
//! with the `Arc` and one counter per side; 18 ns with the one word.)
//!
//! Checked by `tests/lease_lifetime.rs` (also under AddressSanitizer) and by a loom
//! model of the word's orderings (`slot/loom_model.rs`, run by hand with
//! `RUSTFLAGS="--cfg loom"`; weakening the release decrement or dropping the acquire
//! fence fails it).

#[cfg(loom)]
use loom::sync::atomic::{fence, AtomicU64, Ordering};
use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
#[cfg(not(loom))]
use std::sync::atomic::{fence, AtomicU64, Ordering};

use crate::{Backend, BackendId};

/// Bit 0 of the state word: the slot itself still exists.
const SLOT: u64 = 1;
/// Bits 1-31: live leases.
const ACTIVE_ONE: u64 = 1 << 1;
const ACTIVE_MASK: u64 = 0x7fff_ffff << 1;
/// The top bit of the live leases: set once 2^30 leases are live, which only leaked
/// leases can reach. Taking a lease then aborts the process, as `Arc::clone` does past
/// its limit, rather than let the count carry into the total and free the backend
/// under a live lease; the other 2^30 are headroom for threads racing past the check.
const ACTIVE_LIMIT: u64 = 1 << 31;
/// Bits 32-63: the low 32 bits of the leases ever taken; each wrap is counted in
/// `total_wraps`.
const TOTAL_SHIFT: u32 = 32;
const TOTAL_ONE: u64 = 1 << TOTAL_SHIFT;

/// The counters of one host, shared by every snapshot it appears in.
///
/// Owned by the host's [`HostSlot`] and never rebuilt, so counts survive health,
/// admin and membership changes, and a removed host's counts live on while its
/// leases do. Counters are statistics and load signals, not synchronisation: read
/// them for reports and decisions, never to order other memory.
pub struct HostState {
    /// The slot bit, the live leases and the low bits of the total (see the consts).
    word: AtomicU64,
    /// How many times the total's low 32 bits wrapped.
    total_wraps: AtomicU64,
    connect_failures: AtomicU64,
}

impl Default for HostState {
    /// Counters at zero (and no slot: only [`HostSlot::new`] makes a live block).
    fn default() -> Self {
        HostState {
            word: AtomicU64::new(0),
            total_wraps: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
        }
    }
}

impl HostState {
    /// Counts one more lease, live and in the total.
    #[inline]
    fn begin(&self) {
        // Relaxed, as `Arc::clone`: a lease is only taken through a live slot, so the
        // block cannot be freed meanwhile.
        let before = self
            .word
            .fetch_add(TOTAL_ONE + ACTIVE_ONE, Ordering::Relaxed);
        if before & ACTIVE_LIMIT != 0 {
            too_many_leases();
        }
        if before >> TOTAL_SHIFT == u64::from(u32::MAX) {
            self.total_wraps.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one lease less; true when that was the last use of the block (the slot
    /// is gone and no other lease is left).
    #[inline]
    fn end(&self) -> bool {
        let before = self.word.fetch_sub(ACTIVE_ONE, Ordering::Release);
        before & (SLOT | ACTIVE_MASK) == ACTIVE_ONE
    }

    /// Marks the slot gone; true when no lease is left, so the block can go.
    fn retire(&self) -> bool {
        let before = self.word.fetch_sub(SLOT, Ordering::Release);
        before & ACTIVE_MASK == 0
    }

    /// Live leases on the host: its active states.
    #[inline]
    pub fn active(&self) -> u64 {
        (self.word.load(Ordering::Relaxed) & ACTIVE_MASK) >> 1
    }

    /// Leases ever taken on the host. (When its low 32 bits wrap, once every 2^32
    /// leases, a read racing with that very lease may come out 2^32 off, either way.)
    pub fn total(&self) -> u64 {
        let low = self.word.load(Ordering::Relaxed) >> TOTAL_SHIFT;
        (self.total_wraps.load(Ordering::Relaxed) << TOTAL_SHIFT) | low
    }

    /// Connect attempts that failed (counted by relays through
    /// [`record_connect_failure`](HostState::record_connect_failure)).
    pub fn connect_failures(&self) -> u64 {
        self.connect_failures.load(Ordering::Relaxed)
    }

    /// Counts one failed connect attempt.
    pub fn record_connect_failure(&self) {
        self.connect_failures.fetch_add(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for HostState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostState")
            .field("active", &self.active())
            .field("total", &self.total())
            .field("connect_failures", &self.connect_failures())
            .finish()
    }
}

/// What a slot and its leases share: freed by whichever of them goes last.
struct Shared<B> {
    backend: B,
    id: BackendId,
    name: Box<str>,
    state: HostState,
}

/// A host in a table: the backend, its id, name and weight as read when it was added,
/// and its [`HostState`].
///
/// Slots are shared (`Arc`) between snapshots: a health change publishes a new snapshot
/// that points at the same slots, so leases and counters carry over. A lease keeps the
/// backend alive after its slot is gone (the host left the table and every snapshot
/// holding it was dropped), without holding the `Arc`: see
/// [`Lease`](crate::Lease).
pub struct HostSlot<B> {
    shared: NonNull<Shared<B>>,
    _owns: PhantomData<Shared<B>>,
}

// SAFETY: a slot gives shared access to `B` (`&B`) on any thread and may drop it on
// any thread, as `Arc<B>` does, so it needs what `Arc<B>` needs. The counters are
// atomics.
unsafe impl<B: Send + Sync> Send for HostSlot<B> {}
// SAFETY: as above.
unsafe impl<B: Send + Sync> Sync for HostSlot<B> {}

impl<B: Backend> HostSlot<B> {
    /// A slot for `backend`, with fresh counters: for a [`Table`](crate::Table)
    /// implementation of your own, which keeps one slot (the same `Arc`) per host for as
    /// long as the host stays in the table.
    pub fn new(backend: B) -> Self {
        let shared = Box::new(Shared {
            id: backend.id(),
            name: backend.name().into(),
            backend,
            state: HostState {
                word: AtomicU64::new(SLOT),
                ..HostState::default()
            },
        });
        HostSlot {
            shared: NonNull::from(Box::leak(shared)),
            _owns: PhantomData,
        }
    }

    /// Takes a lease's share of the host: counts it, and keeps the backend alive until
    /// the share is dropped.
    #[inline]
    pub(crate) fn lease(&self) -> LeasedHost<B> {
        self.shared().state.begin();
        LeasedHost {
            shared: self.shared,
            _owns: PhantomData,
        }
    }
}

impl<B> HostSlot<B> {
    #[inline]
    fn shared(&self) -> &Shared<B> {
        // SAFETY: the block lives at least as long as the slot: only `retire` in the
        // slot's own `drop`, or the end of the last lease after it, frees it.
        unsafe { self.shared.as_ref() }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.shared().backend
    }

    /// The stable id.
    pub fn id(&self) -> BackendId {
        self.shared().id
    }

    /// The display name.
    pub fn name(&self) -> &str {
        &self.shared().name
    }

    /// The counters.
    pub fn state(&self) -> &HostState {
        &self.shared().state
    }
}

impl<B> Drop for HostSlot<B> {
    fn drop(&mut self) {
        if self.shared().state.retire() {
            // SAFETY: no lease is left and the slot is going, so nothing else points
            // at the block; the fence orders every lease's last use before the free.
            unsafe { free(self.shared) }
        }
    }
}

impl<B> fmt::Debug for HostSlot<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = self.shared();
        f.debug_struct("HostSlot")
            .field("name", &shared.name)
            .field("id", &shared.id)
            .field("state", &shared.state)
            .finish()
    }
}

/// A lease's share of a host: counted as one active state, and keeping the backend
/// alive, until dropped. Not `Clone`: one share, one count.
pub(crate) struct LeasedHost<B> {
    shared: NonNull<Shared<B>>,
    _owns: PhantomData<Shared<B>>,
}

// SAFETY: as for `HostSlot`: shared access to `B` and its drop, on any thread.
unsafe impl<B: Send + Sync> Send for LeasedHost<B> {}
// SAFETY: as above.
unsafe impl<B: Send + Sync> Sync for LeasedHost<B> {}

impl<B> LeasedHost<B> {
    #[inline]
    fn shared(&self) -> &Shared<B> {
        // SAFETY: this share is counted in the block's word, so the block is not freed
        // before the share's own `drop`.
        unsafe { self.shared.as_ref() }
    }

    pub(crate) fn backend(&self) -> &B {
        &self.shared().backend
    }

    pub(crate) fn id(&self) -> BackendId {
        self.shared().id
    }

    pub(crate) fn name(&self) -> &str {
        &self.shared().name
    }

    pub(crate) fn state(&self) -> &HostState {
        &self.shared().state
    }
}

impl<B> Drop for LeasedHost<B> {
    #[inline]
    fn drop(&mut self) {
        if self.shared().state.end() {
            // SAFETY: the slot is gone and this was the last lease, so nothing else
            // points at the block.
            unsafe { free(self.shared) }
        }
    }
}

/// Every other user released the block (`Release` on the word) before its last user saw
/// the count end; acquire their writes before dropping it, as `Arc` does.
#[inline]
fn before_free() {
    fence(Ordering::Acquire);
}

/// 2^30 leases live on one host: see [`ACTIVE_LIMIT`].
#[cold]
#[inline(never)]
fn too_many_leases() -> ! {
    eprintln!("lb-core: 2^30 leases live on one host (leaked leases?); aborting");
    std::process::abort()
}

/// Frees a block.
///
/// # Safety
///
/// Called once per block, by the last of its slot and leases to go (the one whose
/// atomic operation cleared the last of the slot bit and the live leases), after which
/// nothing touches the block.
#[cold]
unsafe fn free<B>(shared: NonNull<Shared<B>>) {
    before_free();
    // SAFETY: the block came from `Box::leak` in `HostSlot::new`, and the caller is
    // its last user.
    drop(unsafe { Box::from_raw(shared.as_ptr()) });
}

#[cfg(all(test, loom))]
mod loom_model;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn state_with(word: u64) -> HostState {
        HostState {
            word: AtomicU64::new(word),
            ..HostState::default()
        }
    }

    #[test]
    fn the_total_carries_its_wraps_and_leaves_the_live_count_alone() {
        let state = state_with((u64::from(u32::MAX) << TOTAL_SHIFT) | SLOT);
        assert_eq!(state.total(), u64::from(u32::MAX));
        state.begin();
        assert_eq!((state.total(), state.active()), (1 << 32, 1));
        state.begin();
        assert_eq!((state.total(), state.active()), ((1 << 32) + 1, 2));
        assert!(!state.end(), "the slot is still there");
        assert!(!state.end());
        assert_eq!((state.total(), state.active()), ((1 << 32) + 1, 0));
        assert!(state.retire(), "no lease left: the slot's end frees");
    }

    #[test]
    fn the_last_of_the_slot_and_its_leases_frees() {
        let state = state_with(SLOT);
        state.begin();
        state.begin();
        assert!(!state.retire(), "two leases left");
        assert!(!state.end());
        assert!(state.end(), "the last lease frees");
    }

    /// Taking a lease with 2^30 live aborts. Run in a child process (this test binary,
    /// this test alone), since an abort cannot be caught.
    #[test]
    fn leases_past_the_limit_abort_instead_of_corrupting_the_count() {
        const CHILD: &str = "LB_CORE_LEASE_LIMIT_CHILD";
        if std::env::var_os(CHILD).is_some() {
            let state = state_with(SLOT | ((ACTIVE_LIMIT - ACTIVE_ONE) & ACTIVE_MASK));
            state.begin(); // 2^30 - 1 live: fine
            state.begin(); // 2^30 were live: aborts
            std::process::exit(0);
        }
        let exe = std::env::current_exe().expect("the test binary's path");
        let status = std::process::Command::new(exe)
            .args([
                "--exact",
                "host::slot::tests::leases_past_the_limit_abort_instead_of_corrupting_the_count",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .stderr(std::process::Stdio::null())
            .status()
            .expect("the child test runs");
        assert!(!status.success(), "the child went past the limit: {status}");
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(6), "SIGABRT, not a panic: {status}");
        }
    }
}
