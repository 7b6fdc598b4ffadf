//! The seed's shape: a Halon load-balancer block whose table is empty (`table <exchange>
//! { }`) and relays forwarding to it with `check tcp mode source-hash`. The file loads
//! with one warning, its relays start and refuse clients, and they serve once hosts are
//! added at run time: through a relay's handle, or by a reload that lists them.

mod common;

use std::time::Duration;

use common::{free_port, BOUND};
use lb_config::{parse_str, resolve};
use lb_core::{Health, Host};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The seed's load-balancer block on loopback, with `hosts` in the table.
fn seed(hosts: &str, https: u16, pop3: u16, backend: u16) -> String {
    format!(
        "interface vic0 {{\n}}\n\
         load-balancer {{\n\
         table <exchange> {{ {hosts} }}\n\
         relay \"exchangeHTTPS\" {{\n\
         \tlisten on 127.0.0.1 port {https}\n\
         \tforward to <exchange> port {backend} check tcp mode source-hash\n\
         }}\n\
         relay \"POP3\" {{\n\
         \tlisten on 127.0.0.1 port {pop3}\n\
         \tforward to <exchange> port {backend} check tcp mode source-hash\n\
         }}\n\
         }}\n"
    )
}

/// An echo server on 127.0.0.1.
async fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("backend");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 256];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// What a client of the relay at `port` gets: `Some(echo)` when served, `None` when the
/// relay closes its connection.
async fn try_session(port: u16) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the relay accepts");
    // The relay may close before or after this write; either way the read says.
    let _ = s.write_all(b"ping").await;
    let mut got = Vec::new();
    match tokio::time::timeout(BOUND, s.read_to_end(&mut got)).await {
        Ok(Ok(_)) | Ok(Err(_)) if got.is_empty() => None,
        Ok(_) => Some(got),
        // Served: the echo keeps the session open after answering.
        Err(_) => Some(got),
    }
}

/// Waits until the relay at `port` serves (its host passes its first check).
async fn served(port: u16) {
    let wait = async {
        loop {
            let mut s = TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("the relay accepts");
            if s.write_all(b"ping").await.is_ok() {
                let mut got = [0u8; 4];
                if let Ok(Ok(_)) = tokio::time::timeout(BOUND, s.read_exact(&mut got)).await {
                    assert_eq!(&got, b"ping");
                    return;
                }
            }
            // Refused: the host is not up yet. Try again shortly.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(BOUND, wait)
        .await
        .unwrap_or_else(|_| panic!("relay on port {port} never served"));
}

#[test]
fn an_empty_table_loads_with_one_warning() {
    let parsed = parse_str("seed.conf", &seed("", 1, 2, 3), &[]).expect("parses");
    let plan = resolve(parsed).unwrap_or_else(|r| panic!("{}", r.render()));
    let warnings: Vec<_> = plan.report.warnings().map(|d| d.message.clone()).collect();
    assert_eq!(
        warnings,
        [
            "Halon block `interface` skipped",
            "table <exchange> has no hosts"
        ]
    );
    let text = plan.report.render();
    assert!(text.contains("seed.conf:4:"), "{text}");
    assert!(
        text.contains("relayd refuses a table without hosts"),
        "{text}"
    );
    assert_eq!(plan.hosts["exchange"], []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_on_an_empty_table_serve_once_hosts_are_added() {
    let backend = echo_server().await;
    let (https, pop3) = (free_port(), free_port());
    let parsed = parse_str("seed.conf", &seed("", https, pop3, backend), &[]).expect("parses");
    let plan = resolve(parsed).unwrap_or_else(|r| panic!("{}", r.render()));
    let mut running = plan.start().expect("relays on an empty table start");
    assert_eq!(running.relays.len(), 2);
    for relay in &running.relays {
        assert!(relay.tables[0].1.snapshot().is_empty());
    }
    assert_eq!(try_session(https).await, None, "no host: refused");
    assert_eq!(try_session(pop3).await, None, "no host: refused");

    // At run time, through the API: a host for exchangeHTTPS, checked before it serves.
    let relay = &running.relays[0];
    let table = relay.tables[0].1.name().to_owned();
    let host = Host::new(
        "127.0.0.1",
        std::net::SocketAddr::from(([127, 0, 0, 1], backend)),
    );
    relay.handles[0]
        .add_host(&table, host, Health::Unknown)
        .await
        .expect("the host is added");
    served(https).await;
    assert_eq!(try_session(pop3).await, None, "POP3's table is its own");

    // By a reload that lists the host: POP3 gains it, exchangeHTTPS already has it.
    let reloaded =
        parse_str("seed.conf", &seed("127.0.0.1", https, pop3, backend), &[]).expect("parses");
    let report = running
        .reload(resolve(reloaded).unwrap_or_else(|r| panic!("{}", r.render())))
        .await
        .expect("the reload applies");
    assert_eq!(report.kept, ["exchangeHTTPS", "POP3"], "{report:?}");
    assert_eq!(
        report.hosts_added,
        [format!("exchange:{backend} 127.0.0.1")]
    );
    served(pop3).await;
    served(https).await;

    // And back to empty: the relays keep running and refuse again.
    let emptied = parse_str("seed.conf", &seed("", https, pop3, backend), &[]).expect("parses");
    let report = running
        .reload(resolve(emptied).unwrap_or_else(|r| panic!("{}", r.render())))
        .await
        .expect("the reload applies");
    assert_eq!(report.hosts_removed.len(), 2, "{report:?}");
    assert_eq!(try_session(https).await, None);
    assert_eq!(try_session(pop3).await, None);
}
