//! A `redirect` block at layer 3, in the balancer namespace of a network lab: its
//! nftables table appears, clients reach the backends with their own address, a reload
//! keeps, rebuilds or deletes the table as the block is kept, changed or removed, and
//! shutdown removes it.

use std::net::SocketAddr;
use std::time::Duration;

use lb_config::{Layer, ReloadReport, Running};

use super::common::plan;
use super::netns::{backend4, lab, source4, visit, Lab, PORT, VIP4};

/// The block, with the table's hosts and mode.
fn config(hosts: &[usize], mode: &str) -> String {
    let hosts: Vec<String> = hosts.iter().map(|&i| backend4(i).to_string()).collect();
    format!(
        "table <web> {{ {} }}\n\
         redirect \"www\" {{\n listen on {VIP4} port {PORT}\n forward to <web> mode {mode}\n sticky-address\n session timeout 300\n}}\n",
        hosts.join(", ")
    )
}

/// The handle of `inet lb_www` in the balancer's namespace, if the table exists.
fn table_handle(lab: &Lab) -> Option<u64> {
    let out = lab
        .nft(&lab.balancer(), &["-j", "list", "tables"])
        .expect("nft list tables");
    let json: serde_json::Value = serde_json::from_str(&out).expect("nft's JSON");
    json["nftables"].as_array()?.iter().find_map(|item| {
        let t = &item["table"];
        (t["family"] == "inet" && t["name"] == "lb_www").then(|| t["handle"].as_u64())?
    })
}

/// Runs `f` with a runtime on a thread of the balancer's namespace: the redirects'
/// worker threads, which run `nft`, are started from it.
fn in_balancer<T: Send + 'static>(
    lab: &Lab,
    f: impl FnOnce(&tokio::runtime::Runtime) -> T + Send + 'static,
) -> T {
    lab.in_ns(&lab.balancer(), move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        f(&rt)
    })
}

fn reload(lab: &Lab, mut running: Running, text: String) -> (Running, ReloadReport) {
    in_balancer(lab, move |rt| {
        let report = rt
            .block_on(running.reload(plan("redirect.conf", &text)))
            .expect("the reload applies");
        (running, report)
    })
}

/// Which backend a connection from client source `k` reaches, checking that the
/// backend saw the client's own address.
fn visit_from(lab: &Lab, k: u8) -> String {
    lab.in_ns(&lab.client(), move || {
        let (host, seen) = visit(source4(k), SocketAddr::new(VIP4, PORT)).expect("a visit");
        assert_eq!(seen, source4(k), "the backend sees the client's address");
        host
    })
}

#[test]
fn a_redirect_block_runs_in_the_kernel_reloads_and_is_removed() {
    let Some(lab) = lab(2) else { return };
    let _servers: Vec<_> = (1..=2).map(|i| lab.serve(i)).collect();

    let text = config(&[1, 2], "source-hash");
    let running = in_balancer(&lab, move |_| {
        plan("redirect.conf", &text)
            .start()
            .expect("the redirect starts")
    });
    match running.relays[0].layer() {
        Layer::Redirect { tables } => assert_eq!(tables, &["lb_www"]),
        other => panic!("expected layer 3, got {other:?}"),
    }
    assert!(running.relays[0].handles.is_empty(), "no relay at layer 3");
    let first = table_handle(&lab).expect("nft list tables shows inet lb_www");
    let ruleset = running.relays[0].redirects[0].ruleset().expect("ruleset");
    assert!(
        ruleset.contains("jhash"),
        "source-hash in the kernel:\n{ruleset}"
    );
    assert!(
        ruleset.contains("timeout 5m"),
        "session timeout as src.track:\n{ruleset}"
    );
    assert!(["s1", "s2"].contains(&visit_from(&lab, 0).as_str()));

    // Hosts only: the table stays, the host goes from the kernel map.
    let (running, report) = reload(&lab, running, config(&[1], "source-hash"));
    assert_eq!(report.kept, ["www"]);
    assert_eq!(
        report.hosts_removed,
        [format!("web:{PORT} {}", backend4(2))]
    );
    assert_eq!(
        table_handle(&lab),
        Some(first),
        "an unchanged redirect keeps its table"
    );
    let redirect = &running.relays[0].redirects[0];
    let version = redirect.table().snapshot().version();
    assert!(redirect.wait_applied(version, Duration::from_secs(10)));
    let ruleset = redirect.ruleset().expect("ruleset");
    assert!(!ruleset.contains(&backend4(2).to_string()), "{ruleset}");
    for k in 0..4 {
        assert_eq!(visit_from(&lab, k), "s1");
    }

    // A new mode: rebuilt (a new table of the same name).
    let (running, report) = reload(&lab, running, config(&[1], "roundrobin"));
    assert_eq!(report.changed, ["www"]);
    let second = table_handle(&lab).expect("the rebuilt table");
    assert_ne!(second, first, "a changed redirect is rebuilt");
    assert_eq!(visit_from(&lab, 1), "s1");

    // Gone from the file: its table is deleted by the time the reload returns.
    let (running, report) = reload(&lab, running, "table <web> { 198.18.1.2 }\n".into());
    assert_eq!(report.removed, ["www"]);
    assert_eq!(table_handle(&lab), None);
    drop(running);

    // Shutdown removes the table.
    let text = config(&[1, 2], "least-states");
    in_balancer(&lab, move |rt| {
        let mut running = plan("redirect.conf", &text)
            .start()
            .expect("the redirect starts");
        rt.block_on(running.shutdown(Duration::from_secs(1)));
    });
    assert_eq!(table_handle(&lab), None, "shutdown removes the table");
}
