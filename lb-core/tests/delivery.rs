//! Listeners hear a table's changes in the order they were made: with writers on
//! several threads, with writes made by a listener, and after a listener panicked.

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use lb_core::{Change, Health, HostTable};

/// How long a test waits for a thread that must finish before failing.
const DEADLINE: Duration = Duration::from_secs(20);

fn table(n: u8) -> Arc<HostTable<SocketAddr>> {
    HostTable::new("t", (1..=n).map(|i| SocketAddr::from(([10, 0, 0, i], 80)))).unwrap()
}

/// Runs `f` on a thread and waits for it at most [`DEADLINE`]: a writer stuck waiting
/// for a turn fails the test instead of hanging it.
fn within_deadline(f: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        f();
        let _ = done.send(());
    });
    finished
        .recv_timeout(DEADLINE)
        .expect("the write finished (no stalled delivery)");
}

#[test]
fn concurrent_writers_are_heard_in_version_order() {
    const THREADS: usize = 8;
    const WRITES: usize = 250;
    let t = table(THREADS as u8);
    let heard: Arc<Mutex<Vec<u64>>> = Arc::default();
    let log = heard.clone();
    t.on_change(move |e| {
        // Give the other writers a chance to run between a commit and its record: out
        // of order delivery would show here.
        thread::yield_now();
        log.lock().unwrap().push(e.version);
    });
    let writers: Vec<_> = (0..THREADS)
        .map(|k| {
            let t = t.clone();
            thread::spawn(move || {
                // Each thread toggles its own host: every write is a change.
                let id = t.snapshot().id(k);
                for w in 0..WRITES {
                    let health = if w % 2 == 0 { Health::Down } else { Health::Up };
                    t.set_health(id, health, "test").unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let heard = heard.lock().unwrap();
    let expected: Vec<u64> = (2..2 + (THREADS * WRITES) as u64).collect();
    assert_eq!(*heard, expected);
}

/// Which listener heard which version, on which thread.
type Heard = (&'static str, u64, thread::ThreadId);

#[test]
fn a_write_made_by_a_listener_is_heard_right_after_the_current_event() {
    let t = table(3);
    let (a, b) = (t.snapshot().id(0), t.snapshot().id(1));
    let heard: Arc<Mutex<Vec<Heard>>> = Arc::default();
    let (log1, log2) = (heard.clone(), heard.clone());
    let weak = Arc::downgrade(&t);
    t.on_change(move |e| {
        log1.lock()
            .unwrap()
            .push(("first", e.version, thread::current().id()));
        if e.id == a {
            // Re-entrant: host `a` down takes host `b` down too.
            weak.upgrade()
                .unwrap()
                .set_health(b, Health::Down, "follows a")
                .unwrap();
        }
    });
    t.on_change(move |e| {
        log2.lock()
            .unwrap()
            .push(("second", e.version, thread::current().id()));
    });
    t.set_health(a, Health::Down, "test").unwrap();
    let me = thread::current().id();
    assert_eq!(
        *heard.lock().unwrap(),
        [
            ("first", 2, me),
            ("second", 2, me),
            ("first", 3, me),
            ("second", 3, me)
        ]
    );
    assert_eq!(t.snapshot().usable(), &[2]);
    // Later writes are delivered as usual.
    t.set_health(a, Health::Up, "test").unwrap();
    assert_eq!(heard.lock().unwrap().len(), 6);
}

#[test]
fn a_panicking_listener_does_not_stall_later_deliveries() {
    let t = table(3);
    let (a, b) = (t.snapshot().id(0), t.snapshot().id(1));
    let heard: Arc<Mutex<Vec<u64>>> = Arc::default();
    let log = heard.clone();
    let weak = Arc::downgrade(&t);
    t.on_change(move |e| {
        log.lock().unwrap().push(e.version);
        if let Change::Health { reason, .. } = &e.change {
            if reason == "write then panic" {
                // Queued behind this event, then given up by the panic below.
                weak.upgrade()
                    .unwrap()
                    .set_health(b, Health::Down, "queued")
                    .unwrap();
            }
            if reason.starts_with("panic") || reason == "write then panic" {
                panic!("listener failed");
            }
        }
    });
    let first = catch_unwind(AssertUnwindSafe(|| {
        t.set_health(a, Health::Down, "panic").unwrap();
    }));
    assert!(first.is_err(), "the writer sees the listener's panic");
    assert_eq!(t.snapshot().health(0), Health::Down, "the change was made");
    // Another thread's write is delivered: the panicking turn was passed on.
    let t2 = t.clone();
    within_deadline(move || {
        t2.set_health(a, Health::Up, "check ok").unwrap();
    });
    // A panic after a re-entrant write: the queued event (version 5) is skipped, the
    // next write (version 6) is delivered.
    let second = catch_unwind(AssertUnwindSafe(|| {
        t.set_health(a, Health::Down, "write then panic").unwrap();
    }));
    assert!(second.is_err());
    assert_eq!(
        t.snapshot().health(1),
        Health::Down,
        "the queued write was made"
    );
    let t3 = t.clone();
    within_deadline(move || {
        t3.set_health(a, Health::Up, "check ok").unwrap();
    });
    assert_eq!(*heard.lock().unwrap(), [2, 3, 4, 6]);
}
