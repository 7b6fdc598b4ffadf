//! Reload by difference, with real sockets on loopback: a session through relay A
//! survives a reload that adds a host, removes another and adds relay B; A keeps its
//! listening socket and refuses no connection meanwhile.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::{free_port, plan, BOUND};
use lb_config::{parse_str, resolve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn echo(listener: TcpListener) {
    while let Ok((mut s, _)) = listener.accept().await {
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        });
    }
}

async fn round_trip(s: &mut TcpStream, data: &[u8]) -> Vec<u8> {
    s.write_all(data).await.expect("write through the relay");
    let mut got = vec![0u8; data.len()];
    tokio::time::timeout(BOUND, s.read_exact(&mut got))
        .await
        .expect("echo in time")
        .expect("read through the relay");
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_survives_a_reload_that_changes_hosts_and_adds_a_relay() {
    let backend = TcpListener::bind("127.0.0.1:0").await.expect("backend");
    let bport = backend.local_addr().expect("addr").port();
    tokio::spawn(echo(backend));
    let (a, b) = (free_port(), free_port());
    let before = format!(
        "table <t> {{ 127.0.0.1, 127.0.0.3 }}\n\
         relay \"A\" {{\n listen on 127.0.0.1 port {a}\n forward to <t> port {bport} mode consistent\n}}\n"
    );
    let after = format!(
        "table <t> {{ 127.0.0.1, 127.0.0.2 }}\n\
         relay \"A\" {{\n listen on 127.0.0.1 port {a}\n forward to <t> port {bport} mode consistent\n}}\n\
         relay \"B\" {{\n listen on 127.0.0.1 port {b}\n forward to <t> port {bport}\n}}\n"
    );
    let mut running = plan("reload.conf", &before)
        .start()
        .expect("relay A starts");
    let handle_a = running.relays[0].handles[0].clone();
    let addr_a = handle_a.local_addrs()[0];

    // A session through A; connects keep coming during the reload.
    let mut session = TcpStream::connect(addr_a).await.expect("connect through A");
    assert_eq!(round_trip(&mut session, b"before").await, b"before");
    let done = Arc::new(AtomicBool::new(false));
    let (ok, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let prober = {
        let (done, ok, refused) = (done.clone(), ok.clone(), refused.clone());
        tokio::spawn(async move {
            for _ in 0..100_000 {
                match TcpStream::connect(addr_a).await {
                    Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(_) => refused.fetch_add(1, Ordering::Relaxed),
                };
                if done.load(Ordering::Relaxed) {
                    break;
                }
            }
        })
    };

    let report = running
        .reload(plan("reload.conf", &after))
        .await
        .expect("the reload applies");
    done.store(true, Ordering::Relaxed);
    tokio::time::timeout(BOUND, prober)
        .await
        .expect("prober ends")
        .expect("prober ran");

    assert_eq!(report.kept, ["A"]);
    assert_eq!(report.added, ["B"]);
    assert!(
        report.removed.is_empty() && report.changed.is_empty(),
        "{report:?}"
    );
    assert_eq!(report.hosts_added, [format!("t:{bport} 127.0.0.2")]);
    assert_eq!(report.hosts_removed, [format!("t:{bport} 127.0.0.3")]);
    // The same relay, the same socket, no refused connect.
    assert!(Arc::ptr_eq(&running.relays[0].handles[0], &handle_a));
    assert_eq!(running.relays[0].handles[0].local_addrs()[0], addr_a);
    assert_eq!(
        refused.load(Ordering::Relaxed),
        0,
        "connects refused during the reload"
    );
    assert!(ok.load(Ordering::Relaxed) > 0);
    // The session goes on, and B relays too.
    assert_eq!(round_trip(&mut session, b"after").await, b"after");
    let mut through_b = TcpStream::connect(("127.0.0.1", b))
        .await
        .expect("connect through B");
    assert_eq!(round_trip(&mut through_b, b"b").await, b"b");
    let names: Vec<_> = running.relays[0].tables[0]
        .1
        .snapshot()
        .hosts()
        .iter()
        .map(|h| h.name().to_owned())
        .collect();
    assert_eq!(names, ["127.0.0.1", "127.0.0.2"]);
}

#[test]
fn a_broken_new_file_is_refused_before_anything_changes() {
    let report = parse_str("new.conf", "table <t> { 127.0.0.1 }\nrelay A {\n listen on * port 1\n forward to <t> mode nonesuch\n}\n", &[]).unwrap_err();
    assert!(
        report.render().contains("new.conf:4:22"),
        "{}",
        report.render()
    );
}

#[test]
fn a_name_that_does_not_resolve_is_an_error_naming_it() {
    let parsed = parse_str(
        "n.conf",
        "table <t> { no-such-host.invalid }\nrelay A {\n listen on * port 1\n forward to <t>\n}\n",
        &[],
    )
    .expect("parses");
    let report = resolve(parsed).unwrap_err();
    let text = report.render();
    assert!(
        text.contains("host name no-such-host.invalid does not resolve"),
        "{text}"
    );
    assert!(text.contains("n.conf:1:13"), "{text}");
}
