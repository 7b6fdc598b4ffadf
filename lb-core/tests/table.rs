//! `HostTable` and `Snapshot`: versions, per-host state across every kind of change, and
//! the errors a caller can act on, with their messages.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use lb_core::{
    Admin, Backend, BackendId, Balancer, Change, Context, Error, Health, Host, HostTable, Order,
    Policy, Snapshot, Weight,
};

fn addr(last: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last], 443))
}

fn exchange() -> Arc<HostTable> {
    HostTable::builder("exchange")
        .host(Host::new("exchange1", addr(11)))
        .host(Host::new("exchange2", addr(12)).with_weight(2).unwrap())
        .host(Host::new("exchange3", addr(13)))
        .build()
        .unwrap()
}

/// Prefers nothing: the first usable host in configuration order.
struct FirstUsable;

impl Policy for FirstUsable {
    type Plan = ();
    fn plan<B: Backend>(&self, _: &Snapshot<B>, _: Option<(&Snapshot<B>, &())>) {}
    fn order<B: Backend>(&self, _: &(), _: &Snapshot<B>, _: &Context<'_>, _: &mut Order) {}
}

#[test]
fn every_change_publishes_one_version() {
    let t = exchange();
    let s1 = t.snapshot();
    assert_eq!((s1.version(), s1.membership_version()), (1, 1));
    let id = s1.id(0);

    // Health and admin changes: a new version, the same membership.
    assert_eq!(
        t.set_health(id, Health::Down, "connect refused"),
        Ok(Health::Up)
    );
    assert_eq!(
        (t.snapshot().version(), t.snapshot().membership_version()),
        (2, 1)
    );
    assert_eq!(t.set_admin(id, Admin::Draining), Ok(Admin::Enabled));
    assert_eq!(
        (t.snapshot().version(), t.snapshot().membership_version()),
        (3, 1)
    );

    // Setting what is already there publishes nothing.
    assert_eq!(t.set_health(id, Health::Down, "again"), Ok(Health::Down));
    assert_eq!(t.set_admin(id, Admin::Draining), Ok(Admin::Draining));
    assert_eq!(t.set_weight(id, Weight::ONE), Ok(Weight::ONE));
    assert_eq!(t.snapshot().version(), 3);

    // Weights, additions and removals change the membership too.
    assert_eq!(t.set_weight(id, Weight::new(5).unwrap()), Ok(Weight::ONE));
    assert_eq!(
        (t.snapshot().version(), t.snapshot().membership_version()),
        (4, 4)
    );
    let added = t
        .add(Host::new("exchange4", addr(14)), Health::Unknown)
        .unwrap();
    assert_eq!(
        (t.snapshot().version(), t.snapshot().membership_version()),
        (5, 5)
    );
    t.remove(added).unwrap();
    assert_eq!(
        (t.snapshot().version(), t.snapshot().membership_version()),
        (6, 6)
    );

    // An old snapshot is immutable: it still shows the table as it was.
    assert_eq!(
        (s1.version(), s1.health(0), s1.usable()),
        (1, Health::Up, &[0, 1, 2][..])
    );
    assert_eq!(t.snapshot().usable(), &[1, 2]);
}

#[test]
fn usable_means_up_and_enabled() {
    let t = exchange();
    let s = t.snapshot();
    t.set_health(s.id(0), Health::Unknown, "not checked yet")
        .unwrap();
    t.set_admin(s.id(1), Admin::Disabled).unwrap();
    let now = t.snapshot();
    assert_eq!(now.usable(), &[2]);
    assert_eq!(now.usable_weight(), 1);
    assert!(!now.is_usable(0) && !now.is_usable(1) && now.is_usable(2) && !now.is_usable(3));
    t.set_admin(s.id(1), Admin::Enabled).unwrap();
    assert_eq!(t.snapshot().usable(), &[1, 2]);
    assert_eq!(t.snapshot().usable_weight(), 3);
}

#[test]
fn host_state_survives_every_change() {
    let t = exchange();
    let b = Balancer::new(&t, FirstUsable);
    let ctx = Context::new();
    let first = b.pick(&ctx).unwrap(); // exchange1
    let second = b.pick(&ctx).unwrap(); // exchange1 again
    assert_eq!((first.name(), second.name()), ("exchange1", "exchange1"));
    let id = first.id();
    let slot = t.snapshot().host(0).clone();

    t.set_health(id, Health::Down, "check failed").unwrap();
    t.set_admin(id, Admin::Draining).unwrap();
    t.set_weight(id, Weight::new(3).unwrap()).unwrap();
    t.add(Host::new("exchange4", addr(14)), Health::Up).unwrap();
    t.remove(t.snapshot().id(2)).unwrap(); // exchange3
    for _ in 0..3 {
        drop(b.pick(&ctx).unwrap()); // exchange2: exchange1 is down
    }

    let s = t.snapshot();
    let i = s.index_of(id).unwrap();
    assert!(
        Arc::ptr_eq(s.host(i), &slot),
        "the same state block in every snapshot"
    );
    assert_eq!((slot.state().active(), slot.state().total()), (2, 2));
    let stats = &t.stats()[i];
    assert_eq!(
        (
            stats.active,
            stats.total,
            stats.weight,
            stats.health,
            stats.admin,
            stats.usable
        ),
        (2, 2, 3, Health::Down, Admin::Draining, false)
    );
    assert_eq!(t.stats()[1].total, 3);
    drop((first, second));
    assert_eq!(slot.state().active(), 0);
}

#[test]
fn a_removed_host_keeps_counting_its_leases() {
    let t = exchange();
    let b = Balancer::new(&t, FirstUsable);
    let lease = b.pick(&Context::new()).unwrap();
    let slot = t.snapshot().host(0).clone();
    assert_eq!(slot.id(), lease.id());
    t.remove(lease.id()).unwrap();
    assert_eq!(t.snapshot().index_of(lease.id()), None);
    assert_eq!(slot.state().active(), 1);
    assert_eq!(b.pick(&Context::new()).unwrap().name(), "exchange2");
    drop(lease);
    assert_eq!(slot.state().active(), 0);
}

#[test]
fn listeners_hear_each_change_in_order() {
    let t = exchange();
    let seen: Arc<Mutex<Vec<(String, Change, u64)>>> = Arc::default();
    let log = seen.clone();
    t.on_change(move |e| {
        log.lock()
            .unwrap()
            .push((e.host.clone(), e.change.clone(), e.version))
    });
    let id = t.snapshot().id(1);
    t.set_health(id, Health::Down, "connect refused").unwrap();
    t.set_health(id, Health::Down, "connect refused").unwrap(); // no change, no event
    t.set_admin(id, Admin::Disabled).unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(
        *seen,
        [
            (
                "exchange2".to_owned(),
                Change::Health {
                    old: Health::Up,
                    new: Health::Down,
                    reason: "connect refused".into()
                },
                2
            ),
            (
                "exchange2".to_owned(),
                Change::Admin {
                    old: Admin::Enabled,
                    new: Admin::Disabled
                },
                3
            ),
        ]
    );
}

#[test]
fn errors_say_what_was_expected() {
    let empty = HostTable::<Host>::new("exchange", []).unwrap_err();
    assert_eq!(
        empty,
        Error::EmptyTable {
            table: "exchange".into()
        }
    );
    assert_eq!(
        empty.to_string(),
        "table `exchange` has no hosts: give it at least one, or build it with `HostTable::builder(name).allow_empty()` if its hosts are added at run time"
    );

    let name = HostTable::new("", [addr(1)]).unwrap_err();
    assert_eq!(
        name.to_string(),
        "invalid table name \"\": expected 1 to 64 characters"
    );
    assert!(HostTable::new("x".repeat(65), [addr(1)]).is_err());
    assert!(HostTable::new("x".repeat(64), [addr(1)]).is_ok());
    // Characters, as the message says, not bytes (relay names count the same way).
    assert!(HostTable::new("é".repeat(64), [addr(1)]).is_ok());
    assert!(HostTable::new("é".repeat(65), [addr(1)]).is_err());

    let dup = HostTable::new("web", [addr(1), addr(2), addr(1)]).unwrap_err();
    assert_eq!(
        dup,
        Error::DuplicateHost {
            table: "web".into(),
            host: "10.0.0.1:443".into(),
            id: addr(1).id()
        }
    );
    assert_eq!(
        dup.to_string(),
        format!(
            "host `10.0.0.1:443` is already in table `web`: each host's name (and so its id {}) must be unique",
            addr(1).id()
        )
    );

    let t = exchange();
    assert!(matches!(
        t.add(Host::new("exchange1", addr(99)), Health::Up),
        Err(Error::DuplicateHost { .. })
    ));
    let unknown = BackendId::of_name("exchange9");
    let expected = Error::UnknownHost {
        table: "exchange".into(),
        id: unknown,
    };
    assert_eq!(
        t.set_health(unknown, Health::Down, "x").unwrap_err(),
        expected
    );
    assert_eq!(t.set_admin(unknown, Admin::Disabled).unwrap_err(), expected);
    assert_eq!(t.set_weight(unknown, Weight::ONE).unwrap_err(), expected);
    assert_eq!(t.remove(unknown).unwrap_err(), expected);
    assert_eq!(
        expected.to_string(),
        format!("no host with id {unknown} in table `exchange`")
    );

    let single = HostTable::new("one", [addr(1)]).unwrap();
    // No usable host: a typed error from the pick.
    single.set_admin_all(Admin::Disabled);
    let b = Balancer::new(&single, FirstUsable);
    let none = b.pick(&Context::new()).unwrap_err();
    assert_eq!(
        none,
        Error::NoUsableHost {
            table: "one".into(),
            hosts: 1
        }
    );
    assert_eq!(
        none.to_string(),
        "table `one` has no usable host: none of its 1 hosts is both up and enabled"
    );
    assert_eq!(b.candidates(&Context::new()).count(), 0);

    let weight = Host::new("h", addr(1)).with_weight(0).unwrap_err();
    assert_eq!(
        weight.to_string(),
        "weight 0 is out of range: expected 1..=65535 (to take a host out of service, disable it)"
    );
}

#[test]
fn initial_health_is_configurable() {
    let t = HostTable::<SocketAddr>::builder("checked")
        .hosts([addr(1), addr(2)])
        .initial_health(Health::Unknown)
        .build()
        .unwrap();
    assert_eq!(t.snapshot().usable(), &[] as &[u32]);
    assert_eq!(t.snapshot().health(1), Health::Unknown);
}

#[test]
fn removed_listeners_hear_nothing_more() {
    let t = exchange();
    let other = exchange();
    let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
    let (log_a, log_b) = (seen.clone(), seen.clone());
    let a = t.on_change(move |e| log_a.lock().unwrap().push(e.version));
    let b = t.on_change(move |e| log_b.lock().unwrap().push(e.version * 100));
    assert_ne!(a, b);
    assert_eq!(t.listener_count(), 2);
    let id = t.snapshot().id(0);
    t.set_health(id, Health::Down, "connect refused").unwrap(); // version 2
                                                                // An id is only removed from the table that handed it out.
    assert!(!other.remove_listener(a));
    assert!(t.remove_listener(a));
    assert!(!t.remove_listener(a));
    assert_eq!(t.listener_count(), 1);
    t.set_health(id, Health::Up, "check ok").unwrap(); // version 3: only `b` hears it
    assert!(t.remove_listener(b));
    t.set_admin(id, Admin::Disabled).unwrap(); // version 4: nobody hears it
    assert_eq!(*seen.lock().unwrap(), [2, 200, 300]);
    assert_eq!(t.listener_count(), 0);
}

#[test]
fn a_listener_can_remove_itself_and_drops_its_captures() {
    let t = exchange();
    let captured = Arc::new(());
    let held = captured.clone();
    let table = Arc::downgrade(&t);
    let own: Arc<Mutex<Option<lb_core::ListenerId>>> = Arc::default();
    let own_id = own.clone();
    let calls = Arc::new(Mutex::new(0));
    let counted = calls.clone();
    let id = t.on_change(move |_| {
        let _ = &held;
        *counted.lock().unwrap() += 1;
        let id = own_id.lock().unwrap().take();
        if let (Some(t), Some(id)) = (table.upgrade(), id) {
            assert!(t.remove_listener(id));
        }
    });
    *own.lock().unwrap() = Some(id);
    assert_eq!(Arc::strong_count(&captured), 2);
    let host = t.snapshot().id(2);
    t.set_health(host, Health::Down, "connect refused").unwrap();
    t.set_health(host, Health::Up, "check ok").unwrap();
    assert_eq!(*calls.lock().unwrap(), 1);
    assert_eq!(t.listener_count(), 0);
    // The closure, and so what it captured, is gone once its last call returned.
    assert_eq!(Arc::strong_count(&captured), 1);
}
