//! Metrics and the JSON summary of a running configuration: parseable exposition whose
//! counters move with traffic.

use std::time::Duration;

use lb_config::{parse_str, resolve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The OpenMetrics text format, line by line: comments, then `name{labels} value`,
/// then `# EOF`. Returns the samples.
fn samples(text: &str) -> Vec<(String, f64)> {
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.pop(), Some("# EOF"), "exposition ends with # EOF");
    let mut out = Vec::new();
    for line in lines {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line}"));
        let name = series.split('{').next().unwrap_or_default();
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "bad name: {line}"
        );
        assert!(
            !series.contains('{') || series.ends_with('}'),
            "bad labels: {line}"
        );
        out.push((series.to_owned(), value));
    }
    out
}

fn value(samples: &[(String, f64)], series: &str) -> f64 {
    samples
        .iter()
        .find(|(s, _)| s == series)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("{series} missing in {samples:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_with_traffic() {
    let backend = TcpListener::bind("127.0.0.1:0").await.expect("backend");
    let bport = backend.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = backend.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                if let Ok(n) = s.read(&mut buf).await {
                    let _ = s.write_all(&buf[..n]).await;
                }
            });
        }
    });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let text = format!("table <t> {{ 127.0.0.1 }}\nrelay \"A\" {{\n listen on 127.0.0.1 port {port}\n forward to <t> port {bport}\n}}\n");
    let plan = resolve(parse_str("m.conf", &text, &[]).expect("parses")).expect("resolves");
    let running = plan.start().expect("starts");
    let before = samples(&running.status().metrics());
    assert_eq!(value(&before, "lb_relay_sessions_total{relay=\"A\"}"), 0.0);

    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    s.write_all(b"hello").await.expect("write");
    let mut got = [0u8; 5];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut got))
        .await
        .expect("in time")
        .expect("read");
    drop(s);

    let after = samples(&running.status().metrics());
    assert_eq!(value(&after, "lb_relay_sessions_total{relay=\"A\"}"), 1.0);
    let host = format!("{{relay=\"A\",table=\"t:{bport}\",host=\"127.0.0.1\"}}");
    assert_eq!(value(&after, &format!("lb_host_sessions_total{host}")), 1.0);
    assert_eq!(value(&after, &format!("lb_host_health{host}")), 1.0);
    assert!(
        value(
            &after,
            "lb_relay_bytes_total{relay=\"A\",direction=\"client_to_server\"}"
        ) >= 5.0
    );

    let json: serde_json::Value =
        serde_json::from_str(&running.status().summary_json()).expect("JSON");
    assert_eq!(json["relays"][0]["name"], "A");
    assert_eq!(json["relays"][0]["total"], 1);
    assert_eq!(json["relays"][0]["tables"][0]["hosts"][0]["health"], "up");
}
