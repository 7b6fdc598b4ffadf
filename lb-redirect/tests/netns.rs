//! Redirects in network namespaces: a client, a balancer running the redirect, and
//! backends, joined by veth pairs (see `test-support/netns.rs`). Needs root and nft;
//! skipped otherwise unless `LB_REQUIRE_NETNS=1`.
#![cfg(target_os = "linux")]

#[path = "../../test-support/netns.rs"]
mod netns;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lb_core::{Admin, Change, Health, Host, HostTable};
use lb_redirect::{Mode, Redirect, RedirectBuilder};
use netns::{backend4, backend6, connect, lab, source4, source6, visit, Lab, PORT, VIP4, VIP6};

/// A table of the lab's backends (IPv4 and IPv6 addresses of each).
fn table(backends: usize) -> Arc<HostTable<Host>> {
    let mut hosts = Vec::new();
    for i in 1..=backends {
        hosts.push(Host::new(
            format!("s{i}"),
            SocketAddr::new(backend4(i), PORT),
        ));
        hosts.push(Host::new(
            format!("s{i}v6"),
            SocketAddr::new(backend6(i), PORT),
        ));
    }
    HostTable::new("web", hosts).unwrap()
}

fn builder(name: &str, table: &Arc<HostTable<Host>>) -> RedirectBuilder {
    Redirect::builder(name)
        .listen(VIP4)
        .listen(VIP6)
        .port(PORT)
        .forward_to(table.clone())
}

fn start(lab: &Lab, b: RedirectBuilder) -> Redirect {
    lab.in_ns(&lab.balancer(), move || b.start())
        .expect("redirect started")
}

/// Which backend each source reaches (one connection per source), checking that the
/// backend saw the source's own address.
fn homes(lab: &Lab, sources: Vec<IpAddr>, vip: IpAddr) -> HashMap<IpAddr, String> {
    lab.in_ns(&lab.client(), move || {
        sources
            .into_iter()
            .map(|s| {
                let (host, seen) = visit(s, SocketAddr::new(vip, PORT)).unwrap();
                assert_eq!(seen, s, "the backend must see the client's real address");
                (s, host)
            })
            .collect()
    })
}

/// Sets a host's admin state and waits until the kernel has it.
fn admin(redirect: &Redirect, table: &HostTable<Host>, name: &str, state: Admin) {
    let snap = table.snapshot();
    let i = (0..snap.len())
        .find(|&i| snap.host(i).name() == name)
        .unwrap();
    table.set_admin(snap.id(i), state).unwrap();
    let version = table.snapshot().version();
    assert!(
        redirect.wait_applied(version, Duration::from_secs(10)),
        "change not applied"
    );
}

/// The ruleset without the table `ours`, and the table names.
fn ruleset_without(lab: &Lab, ours: &str) -> String {
    let text = lab
        .nft(&lab.balancer(), &["-s", "list", "ruleset"])
        .unwrap();
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.starts_with("table ") {
            skipping = line.starts_with(&format!("table inet {ours} "));
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn connections_reach_the_backends_with_the_real_client_address() {
    let Some(lab) = lab(2) else { return };
    let _servers: Vec<_> = (1..=2).map(|i| lab.serve(i)).collect();
    // Someone else's rules in the balancer: the redirect must leave them alone.
    lab.nft_apply(
        &lab.balancer(),
        "table inet other {\n chain input {\n  type filter hook input priority 0; policy accept;\n  counter\n }\n}\n\
         table ip lb_other {\n chain pre {\n  type nat hook prerouting priority 50; policy accept;\n }\n}\n",
    )
    .unwrap();
    let before = lab
        .nft(&lab.balancer(), &["-s", "list", "ruleset"])
        .unwrap();
    let t = table(2);
    let redirect = start(&lab, builder("reach", &t));
    assert_eq!(redirect.table_name(), "lb_reach");
    let tables = lab.nft(&lab.balancer(), &["list", "tables"]).unwrap();
    assert!(tables.contains("table inet lb_reach"), "{tables}");
    assert!(tables.contains("table inet other") && tables.contains("table ip lb_other"));
    let listing = redirect.ruleset().unwrap();
    // The listing without the thousands of slot elements.
    for line in listing.lines().filter(|l| !l.contains(" . 80")) {
        println!("{line}");
    }
    assert!(
        listing.contains("numgen inc mod 4093 map @slots4"),
        "{listing}"
    );

    // Round-robin: four sources, both backends, every one sees its client.
    let v4 = homes(&lab, (0..4).map(source4).collect(), VIP4);
    let v6 = homes(&lab, (0..4).map(source6).collect(), VIP6);
    for homes in [&v4, &v6] {
        let mut hosts: Vec<&String> = homes.values().collect();
        hosts.sort();
        hosts.dedup();
        assert_eq!(hosts.len(), 2, "round-robin reached {hosts:?}");
    }
    assert_eq!(
        ruleset_without(&lab, "lb_reach"),
        before,
        "rules outside lb_reach changed"
    );
    let stats = redirect.stats();
    println!(
        "first transaction (create + 4093 slots per family): {:?}",
        stats.last_transaction
    );
    drop(redirect);
    assert_eq!(
        lab.nft(&lab.balancer(), &["-s", "list", "ruleset"])
            .unwrap(),
        before
    );
}

#[test]
fn a_leftover_table_is_replaced() {
    let Some(lab) = lab(1) else { return };
    lab.nft_apply(
        &lab.balancer(),
        "table inet lb_left {\n chain junk {\n }\n}\n",
    )
    .unwrap();
    let t = table(1);
    let redirect = start(&lab, builder("left", &t));
    let listing = redirect.ruleset().unwrap();
    assert!(!listing.contains("junk"), "{listing}");
    assert!(listing.contains("chain vip4"));
}

#[test]
fn a_failing_check_moves_only_that_hosts_clients_and_they_come_back() {
    let Some(lab) = lab(3) else { return };
    let mut servers: Vec<_> = (1..=3).map(|i| Some(lab.serve(i))).collect();
    let t = table(3);
    let redirect = start(&lab, builder("hash", &t).mode(Mode::SourceHash));
    // Health checks run in the balancer's namespace, as the redirect does.
    let (events_tx, events) = mpsc::channel();
    t.on_change(move |e| {
        if let Change::Health { new, .. } = &e.change {
            let _ = events_tx.send((e.host.clone(), *new, e.version));
        }
    });
    let monitor_table = t.clone();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let balancer = lab.balancer();
    let monitor = std::thread::spawn({
        let path = format!("/run/netns/{balancer}");
        move || {
            let file = std::fs::File::open(path).unwrap();
            // SAFETY: see test-support/netns.rs `enter`.
            assert_eq!(
                unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) },
                0
            );
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let _m = lb_health::Monitor::builder(monitor_table)
                    .check(lb_health::Tcp)
                    .interval(Duration::from_millis(500))
                    .timeout(Duration::from_millis(400))
                    // A loaded machine may miss one check of a live host; three in a
                    // row it does not.
                    .retry(2)
                    // Not `unknown` until the first round: with no usable host the
                    // redirect rewrites nothing and clients would hit the bare VIP.
                    .keep_initial_health(true)
                    .start()
                    .unwrap();
                let _ = tokio::task::spawn_blocking(move || stop_rx.recv()).await;
            });
        }
    });
    let sources: Vec<IpAddr> = (0..40).map(source4).collect();
    let before = homes(&lab, sources.clone(), VIP4);
    let wait_health = |host: &str, want: Health| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (h, health, version) = events.recv_timeout(left).expect("health change");
            if h == host && health == want {
                assert!(redirect.wait_applied(version, Duration::from_secs(10)));
                return;
            }
        }
    };
    servers[1] = None; // s2 stops: its check fails
    wait_health("s2", Health::Down);
    let during = homes(&lab, sources.clone(), VIP4);
    let mut moved = 0;
    for s in &sources {
        if before[s] == "s2" {
            assert_ne!(during[s], "s2");
            moved += 1;
        } else {
            assert_eq!(during[s], before[s], "{s} moved although its host is up");
        }
    }
    assert!(moved > 0, "no source was on s2: {before:?}");
    servers[1] = Some(lab.serve(2));
    wait_health("s2", Health::Up);
    assert_eq!(
        homes(&lab, sources, VIP4),
        before,
        "clients did not come back"
    );
    let stats = redirect.stats();
    println!(
        "source-hash: {moved} of 40 sources moved; transactions {}, last {:?}, max {:?}",
        stats.transactions, stats.last_transaction, stats.max_transaction
    );
    let _ = stop_tx.send(());
    monitor.join().unwrap();
}

#[test]
fn established_connections_survive_a_slot_rewrite() {
    let Some(lab) = lab(2) else { return };
    let _servers: Vec<_> = (1..=2).map(|i| lab.serve(i)).collect();
    let t = table(2);
    let redirect = start(&lab, builder("held", &t).mode(Mode::SourceHash));
    let (tx, rx) = mpsc::channel::<()>();
    let (conn_tx, conn_rx) = mpsc::channel();
    let client = std::thread::spawn({
        let path = format!("/run/netns/{}", lab.client());
        move || {
            let file = std::fs::File::open(path).unwrap();
            // SAFETY: see test-support/netns.rs `enter`.
            assert_eq!(
                unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) },
                0
            );
            let mut conn = connect(source4(7), SocketAddr::new(VIP4, PORT)).unwrap();
            conn_tx.send(conn.host.clone()).unwrap();
            rx.recv().unwrap();
            let survived = conn.ping();
            let again = visit(source4(7), SocketAddr::new(VIP4, PORT)).unwrap().0;
            (survived, again)
        }
    });
    let home = conn_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    admin(&redirect, &t, &home, Admin::Disabled);
    tx.send(()).unwrap();
    let (survived, again) = client.join().unwrap();
    assert_eq!(survived, Ok(()), "the established connection broke");
    assert_ne!(
        again, home,
        "a new connection still went to the disabled host"
    );
}

#[test]
fn sticky_address_keeps_a_source_until_the_timeout() {
    let Some(lab) = lab(2) else { return };
    let _servers: Vec<_> = (1..=2).map(|i| lab.serve(i)).collect();
    let t = table(2);
    let redirect = start(
        &lab,
        builder("sticky", &t).sticky_address(Duration::from_secs(2)),
    );
    let source = source4(3);
    // Round-robin alone would alternate; sticky-address keeps the first host.
    let visits: Vec<String> = lab.in_ns(&lab.client(), move || {
        (0..6)
            .map(|_| visit(source, SocketAddr::new(VIP4, PORT)).unwrap().0)
            .collect()
    });
    assert!(visits.iter().all(|h| *h == visits[0]), "{visits:?}");
    let kept = redirect.sticky_sources().unwrap();
    assert_eq!(kept, vec![(source, visits[0].clone())]);
    // Without traffic the entry expires after the timeout.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !redirect.sticky_sources().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the sticky entry never expired");
        std::thread::sleep(Duration::from_millis(200));
    }
    // A down host's entries are dropped at once.
    let s2 = source4(4);
    let home = lab.in_ns(&lab.client(), move || {
        visit(s2, SocketAddr::new(VIP4, PORT)).unwrap().0
    });
    assert_eq!(redirect.sticky_sources().unwrap(), vec![(s2, home.clone())]);
    admin(&redirect, &t, &home, Admin::Disabled);
    assert_eq!(redirect.sticky_sources().unwrap(), vec![]);
    let other = lab.in_ns(&lab.client(), move || {
        visit(s2, SocketAddr::new(VIP4, PORT)).unwrap().0
    });
    assert_ne!(other, home);
}

#[test]
fn least_states_sends_new_sources_to_the_least_loaded_host() {
    let Some(lab) = lab(2) else { return };
    let _servers: Vec<_> = (1..=2).map(|i| lab.serve(i)).collect();
    let t = table(2);
    let redirect = match lab.in_ns(&lab.balancer(), {
        let b = builder("least", &t)
            .mode(Mode::LeastStates)
            .sticky_address(Duration::from_secs(60));
        move || b.start()
    }) {
        Ok(r) => r,
        Err(lb_redirect::Error::ConntrackMissing { .. })
            if std::env::var("LB_REQUIRE_NETNS").as_deref() != Ok("1") =>
        {
            eprintln!("skipped: the conntrack tool is missing");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    // s2 out of service while four clients connect and stay: s1 holds four states.
    admin(&redirect, &t, "s2", Admin::Disabled);
    let (tx, rx) = mpsc::channel::<()>();
    let (held_tx, held_rx) = mpsc::channel();
    let holder = std::thread::spawn({
        let path = format!("/run/netns/{}", lab.client());
        move || {
            let file = std::fs::File::open(path).unwrap();
            // SAFETY: see test-support/netns.rs `enter`.
            assert_eq!(
                unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) },
                0
            );
            let conns: Vec<_> = (0..4)
                .map(|k| connect(source4(k), SocketAddr::new(VIP4, PORT)).unwrap())
                .collect();
            held_tx
                .send(conns.iter().map(|c| c.host.clone()).collect::<Vec<_>>())
                .unwrap();
            let _ = rx.recv();
            drop(conns);
        }
    });
    let held = held_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(held, vec!["s1"; 4]);
    admin(&redirect, &t, "s2", Admin::Enabled);
    let states = redirect.refresh_states().unwrap();
    let count = |name: &str| states.iter().find(|s| s.host == name).map(|s| s.states);
    assert_eq!((count("s1"), count("s2")), (Some(4), Some(0)), "{states:?}");
    // New sources go to s2, the least loaded.
    let fresh = homes(&lab, (10..12).map(source4).collect(), VIP4);
    assert!(fresh.values().all(|h| h == "s2"), "{fresh:?}");
    // Sticky sources stay where they are.
    let back = homes(&lab, vec![source4(0)], VIP4);
    assert_eq!(back[&source4(0)], "s1");
    tx.send(()).unwrap();
    holder.join().unwrap();
}
