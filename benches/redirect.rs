//! Redirect vs direct, in network namespaces: connections per second and throughput
//! from a client namespace to a backend namespace through the balancer namespace, once
//! to the redirect's VIP (the kernel rewrites the destination) and once straight to the
//! backend's address (the same route, no rewrite). Printed as ratios; the goal is 0.9x
//! direct or better on both.
//!
//! `cargo bench --bench redirect` measures (five alternating rounds, about 20 s; medians). Without `--bench`
//! (`cargo test --benches`) it runs a short smoke pass and prints no figures. Needs
//! root and nft: without them it says why and exits 0.

#[cfg(target_os = "linux")]
#[path = "../test-support/netns.rs"]
mod netns;

#[cfg(target_os = "linux")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use std::io::{Read, Write};
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    use lb::core::{Host, HostTable};
    use lb::redirect::Redirect;
    use netns::{backend4, connect, lab, source4, visit, PORT, VIP4};

    let measure = std::env::args().any(|a| a == "--bench");
    let Some(lab) = lab(1) else { return Ok(()) };
    let _server = lab.serve(1);
    let table = HostTable::new(
        "bench",
        [Host::new("s1", SocketAddr::new(backend4(1), PORT))],
    )?;
    let builder = Redirect::builder("bench")
        .listen(VIP4)
        .port(PORT)
        .forward_to(table);
    let redirect = lab.in_ns(&lab.balancer(), move || builder.start())?;

    let (conn_time, bytes) = if measure {
        (Duration::from_secs(1), 128 << 20)
    } else {
        (Duration::from_millis(100), 1 << 20)
    };
    // Connections per second: connect, read the greeting, close; bounded in time and count.
    let rate = |to: SocketAddr| {
        lab.in_ns(&lab.client(), move || {
            let started = Instant::now();
            let mut n = 0u64;
            while started.elapsed() < conn_time && n < 1_000_000 {
                visit(source4((n % 50) as u8), to).expect("bench connection");
                n += 1;
            }
            n as f64 / started.elapsed().as_secs_f64()
        })
    };
    // Throughput: send `bytes` and read them back (the backend echoes), one connection.
    let throughput = |to: SocketAddr| {
        lab.in_ns(&lab.client(), move || {
            let conn = connect(source4(0), to).expect("bench connection");
            let mut stream = conn.stream.into_inner();
            let mut reader = stream.try_clone().expect("clone");
            let started = Instant::now();
            let echo = std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                let mut got = 0usize;
                while got < bytes {
                    match reader.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got += n,
                    }
                }
                got
            });
            let chunk = vec![7u8; 1 << 16];
            let mut sent = 0usize;
            while sent < bytes {
                stream.write_all(&chunk).expect("bench write");
                sent += chunk.len();
            }
            let got = echo.join().expect("echo reader");
            assert_eq!(got, bytes, "the echo came back short");
            (2 * bytes) as f64 * 8.0 / started.elapsed().as_secs_f64() / 1e9
        })
    };
    let vip = SocketAddr::new(VIP4, PORT);
    let direct: SocketAddr = SocketAddr::new(backend4(1), PORT);
    // Alternating rounds, medians: other load on the machine hits both sides alike.
    let rounds = if measure { 5 } else { 1 };
    let (mut rr, mut dr, mut rt, mut dt) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        rr.push(rate(vip));
        dr.push(rate(direct));
        rt.push(throughput(vip));
        dt.push(throughput(direct));
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (r_rate, d_rate, r_tp, d_tp) = (median(rr), median(dr), median(rt), median(dt));
    if measure {
        println!(
            "connections: redirect {r_rate:.0} conn/s, direct {d_rate:.0} conn/s, ratio {:.3}",
            r_rate / d_rate
        );
        println!(
            "throughput: redirect {r_tp:.2} Gbit/s, direct {d_tp:.2} Gbit/s, ratio {:.3}",
            r_tp / d_tp
        );
        println!("nft transactions: {:?}", redirect.stats());
    } else {
        println!("redirect bench smoke pass ok; `cargo bench --bench redirect` measures");
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("skipped: redirects need Linux nftables");
}
