//! A monitor and passive health on a table with no hosts: the monitor idles and starts
//! checking hosts as they are added (real `tcp` checks on 127.0.0.1), passive health
//! ignores reports for hosts that are not there, and both follow the table back to
//! empty.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{event_to, servers};
use lb_core::{Backend, Health, Host, HostTable};
use lb_health::{Demotion, Monitor, Passive, Reason, Tcp};

const WITHIN: Duration = Duration::from_secs(10);

fn empty_table() -> Arc<HostTable> {
    HostTable::builder("dynamic").allow_empty().build().unwrap()
}

#[tokio::test]
async fn a_monitor_on_an_empty_table_checks_hosts_as_they_are_added() {
    let table = empty_table();
    let demotions = Arc::new(Mutex::new(Vec::new()));
    let seen = demotions.clone();
    let builder = Monitor::builder(table.clone())
        .check(Tcp)
        .interval(Duration::from_millis(500))
        .timeout(Duration::from_millis(400))
        .on_demote(move |_, d| seen.lock().unwrap().push(d));
    let mut events = builder.subscribe();
    let monitor = builder.start().unwrap();
    assert!(monitor.stats().is_empty());
    // No host can serve: demoted at once, as a table whose hosts are all down.
    assert!(monitor.is_demoted());

    let (_listener, up) = servers::listener().await;
    let down = servers::closed_port().await;
    for round in 0..2 {
        let up_id = table.add(Host::new("up", up), Health::Unknown).unwrap();
        let e = event_to(&mut events, Health::Up, WITHIN).await;
        assert_eq!((e.id, e.host.as_str()), (up_id, "up"), "round {round}");
        assert!(!monitor.is_demoted(), "round {round}");
        let down_id = table.add(Host::new("down", down), Health::Unknown).unwrap();
        let e = event_to(&mut events, Health::Down, WITHIN).await;
        assert_eq!((e.id, e.host.as_str()), (down_id, "down"), "round {round}");
        assert_eq!(monitor.stats().len(), 2);

        // Back to empty: no stats, no host to check, and the next round starts over.
        table.remove(up_id).unwrap();
        table.remove(down_id).unwrap();
        assert!(monitor.stats().is_empty());
        assert!(monitor.host_stats(up_id).is_none());
        assert!(monitor.is_demoted(), "round {round}: empty again");
    }
    // The hook heard each change once, in order (it runs on the supervisor task).
    let wait = async {
        while demotions.lock().unwrap().len() < 5 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(WITHIN, wait)
        .await
        .expect("every demotion heard");
    assert_eq!(
        *demotions.lock().unwrap(),
        [
            Demotion::Demoted,
            Demotion::Restored,
            Demotion::Demoted,
            Demotion::Restored,
            Demotion::Demoted
        ]
    );
    monitor.shutdown().await;
    assert_eq!(table.listener_count(), 0);
}

#[tokio::test]
async fn passive_health_on_an_empty_table() {
    let table = empty_table();
    let passive = Passive::new(table.clone()).with_threshold(1).unwrap();
    let a = SocketAddr::from(([127, 0, 0, 1], 1));
    let b = SocketAddr::from(([127, 0, 0, 2], 1));
    // Reports for hosts that are not in the table change nothing.
    assert!(!passive.report_failure(a.id(), Reason::ConnectRefused));
    passive.report_success(a.id());
    assert_eq!(passive.end_expired_ejections(), 0);

    let a_id = table.add(Host::from(a), Health::Up).unwrap();
    // The only host is the last usable one: never ejected.
    assert!(!passive.report_failure(a_id, Reason::ConnectRefused));
    let b_id = table.add(Host::from(b), Health::Up).unwrap();
    assert!(passive.report_failure(a_id, Reason::ConnectRefused));
    assert_eq!(table.snapshot().usable(), &[1]);
    assert!(!passive.report_failure(b_id, Reason::ConnectRefused));

    table.remove(a_id).unwrap();
    table.remove(b_id).unwrap();
    assert!(table.snapshot().is_empty());
    assert!(!passive.report_failure(a_id, Reason::ConnectRefused));
    assert_eq!(passive.end_expired_ejections(), 0);

    // A host added again starts with a clean record.
    let a_id = table.add(Host::from(a), Health::Up).unwrap();
    assert!(!passive.report_failure(a_id, Reason::ConnectRefused));
    assert_eq!(table.snapshot().usable(), &[0]);
}
