//! Ejection is a state of its own: it takes a host out of rotation without touching its
//! health, survives health, admin and membership changes, and ends without undoing what
//! checks decided.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use lb_core::{Admin, BackendId, Change, Error, Health, Host, HostTable, Weight};

fn table() -> Arc<HostTable> {
    let hosts = (11..=13).map(|last| {
        let addr = SocketAddr::from(([10, 0, 0, last], 443));
        Host::new(format!("exchange{}", last - 10), addr)
    });
    HostTable::new("exchange", hosts).unwrap()
}

#[test]
fn an_ejected_host_keeps_its_health_and_is_not_usable() {
    let t = table();
    let id = t.snapshot().id(1);
    assert!(t.eject(id, "connect refused, ejected for 10 s").unwrap());
    let snap = t.snapshot();
    assert_eq!(snap.health(1), Health::Up);
    assert!(snap.is_ejected(1) && !snap.is_usable(1));
    assert_eq!(snap.usable(), &[0, 2]);
    assert_eq!(snap.usable_weight(), 2);
    let stats = t.stats();
    assert_eq!((stats[1].ejected, stats[1].usable), (true, false));
    assert_eq!((stats[0].ejected, stats[0].usable), (false, true));
    // Out of range: neither ejected nor usable, no panic.
    assert!(!snap.is_ejected(9) && !snap.is_usable(9));
}

#[test]
fn ejection_is_orthogonal_to_health_admin_and_membership() {
    let t = table();
    let id = t.snapshot().id(0);
    t.eject(id, "connect refused").unwrap();
    // A check marks it down while ejected, then the ejection ends: the check wins.
    t.set_health(id, Health::Down, "connect refused").unwrap();
    t.set_weight(id, Weight::new(3).unwrap()).unwrap();
    t.set_admin(id, Admin::Draining).unwrap();
    assert!(t.snapshot().is_ejected(0));
    t.set_admin(id, Admin::Enabled).unwrap();
    t.add(
        Host::from(SocketAddr::from(([10, 0, 0, 14], 443))),
        Health::Up,
    )
    .unwrap();
    t.remove(t.snapshot().id(2)).unwrap();
    let snap = t.snapshot();
    assert_eq!((snap.is_ejected(0), snap.is_ejected(2)), (true, false));
    assert!(t.end_ejection(id, "ejection time over").unwrap());
    assert!(!t.end_ejection(id, "ejection time over").unwrap()); // no-op
    let snap = t.snapshot();
    assert_eq!((snap.health(0), snap.is_usable(0)), (Health::Down, false));
    t.set_health(id, Health::Up, "tcp ok").unwrap();
    assert_eq!(t.snapshot().usable(), &[0, 1, 2]);
}

#[test]
fn listeners_hear_ejections_and_their_end_and_no_ops_publish_nothing() {
    let t = table();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    t.on_change(move |e| s.lock().unwrap().push((e.change.clone(), e.version)));
    let id = t.snapshot().id(2);
    let version = t.snapshot().version();
    assert!(!t.end_ejection(id, "tcp ok").unwrap());
    assert!(t.eject(id, "connect timeout, ejected for 10 s").unwrap());
    assert!(!t.eject(id, "connect timeout").unwrap());
    assert!(t.end_ejection(id, "ejection time over").unwrap());
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (
                Change::Ejected {
                    reason: "connect timeout, ejected for 10 s".into()
                },
                version + 1
            ),
            (
                Change::EjectionEnded {
                    reason: "ejection time over".into()
                },
                version + 2
            ),
        ]
    );
}

#[test]
fn unknown_hosts_are_errors() {
    let t = table();
    let unknown = BackendId::from_raw(7);
    assert!(matches!(
        t.eject(unknown, "x"),
        Err(Error::UnknownHost { .. })
    ));
    assert!(matches!(
        t.end_ejection(unknown, "x"),
        Err(Error::UnknownHost { .. })
    ));
}
