//! The lease word under loom, which runs every interleaving and weak-memory outcome of
//! a few threads: exactly one of the slot and its leases frees the block, and the free
//! happens after every other user's last read of it.
//!
//! Run by hand (not in CI): `RUSTFLAGS="--cfg loom" cargo test -p lb-core --release --lib loom`.

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use super::{before_free, HostState, SLOT};

/// A block: its word, and data that users read and the freer overwrites (loom reports
/// a read and the "free" that are not ordered by happens-before).
struct Block {
    state: HostState,
    data: UnsafeCell<u64>,
    frees: AtomicUsize,
}

impl Block {
    fn new() -> Self {
        Block {
            state: HostState {
                word: super::AtomicU64::new(SLOT),
                ..HostState::default()
            },
            data: UnsafeCell::new(7),
            frees: AtomicUsize::new(0),
        }
    }

    /// A user's last read, then its end; frees when told to, as `free` does.
    fn use_then(&self, end: impl FnOnce(&HostState) -> bool) {
        // SAFETY (model): the block is live while this user holds its share.
        let seen = self.data.with(|p| unsafe { *p });
        assert_eq!(seen, 7, "read after the free");
        if end(&self.state) {
            before_free();
            // SAFETY (model): the last user; loom checks that every read came before.
            self.data.with_mut(|p| unsafe { *p = 0 });
            self.frees.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Two leases dropped on two threads while the slot goes on a third.
#[test]
fn loom_two_leases_and_the_slot_free_once_after_every_use() {
    loom::model(|| {
        let block = Arc::new(Block::new());
        block.state.begin();
        block.state.begin();
        let leases: Vec<_> = (0..2)
            .map(|_| {
                let block = block.clone();
                thread::spawn(move || block.use_then(HostState::end))
            })
            .collect();
        block.use_then(HostState::retire);
        for lease in leases {
            lease.join().unwrap();
        }
        assert_eq!(block.frees.load(Ordering::Relaxed), 1);
    });
}

/// A lease taken on one thread through the live slot and dropped on another, racing the
/// slot's end.
#[test]
fn loom_a_lease_taken_while_the_slot_lives_then_racing_its_end() {
    loom::model(|| {
        let block = Arc::new(Block::new());
        block.state.begin();
        let taker = {
            let block = block.clone();
            thread::spawn(move || {
                // A second lease, taken through the slot (which the main thread still
                // holds until the join below), dropped here.
                block.state.begin();
                block.use_then(HostState::end);
            })
        };
        let dropper = {
            let block = block.clone();
            thread::spawn(move || block.use_then(HostState::end))
        };
        taker.join().unwrap();
        block.use_then(HostState::retire);
        dropper.join().unwrap();
        assert_eq!(block.frees.load(Ordering::Relaxed), 1);
    });
}
