//! A throw-away network lab for redirect tests and benches: network namespaces for a
//! client, a balancer and backends, joined by veth pairs, with addresses in the
//! benchmarking ranges 198.18.0.0/15 and 2001:2::/48 only. Everything is removed when
//! the `Lab` is dropped, on failure too. Needs root and the `ip` and `nft` tools:
//! without them `Lab::new` says why and returns `None`, unless `LB_REQUIRE_NETNS=1`
//! makes that a failure.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// The virtual addresses the redirect listens on.
pub const VIP4: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 100, 1));
pub const VIP6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0xff, 0, 0, 0, 0, 1));
/// The port backends serve on.
pub const PORT: u16 = 80;
/// Client source addresses available: `source4(k)` / `source6(k)` for k < SOURCES.
pub const SOURCES: u8 = 60;

static RUN: AtomicUsize = AtomicUsize::new(0);

pub fn source4(k: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, 0, 10 + k))
}

pub fn source6(k: u8) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x10 + u16::from(k)))
}

/// Backend `i`'s addresses (1-based).
pub fn backend4(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, i as u8, 2))
}

pub fn backend6(i: usize) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, i as u16, 0, 0, 0, 2))
}

/// The namespaces of one test.
pub struct Lab {
    prefix: String,
    backends: usize,
}

/// Returns a lab, or `None` (with the reason printed) when this machine cannot make one.
pub fn lab(backends: usize) -> Option<Lab> {
    match Lab::new(backends) {
        Ok(lab) => Some(lab),
        Err(why) => {
            if std::env::var("LB_REQUIRE_NETNS").as_deref() == Ok("1") {
                panic!("LB_REQUIRE_NETNS=1 but the namespace test cannot run: {why}");
            }
            eprintln!("skipped: {why} (set LB_REQUIRE_NETNS=1 to make this a failure)");
            None
        }
    }
}

fn run(cmd: &str, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {cmd}: {e}"))?;
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(stdin.unwrap_or("").as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{cmd} {args:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Lab {
    fn new(backends: usize) -> Result<Lab, String> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root: network namespaces and nftables need it".into());
        }
        run("nft", &["--version"], None).map_err(|e| format!("nft is not usable: {e}"))?;
        run("ip", &["-V"], None).map_err(|e| format!("iproute2 is not usable: {e}"))?;
        let prefix = format!(
            "lbr{}-{}",
            std::process::id(),
            RUN.fetch_add(1, Ordering::Relaxed)
        );
        let lab = Lab { prefix, backends };
        // The prerequisites are there: a failure from here on is a failure, not a skip
        // (and `lab`'s drop removes what was made).
        if let Err(e) = lab.build() {
            panic!("could not build the network lab: {e}");
        }
        Ok(lab)
    }

    pub fn ns(&self, role: &str) -> String {
        format!("{}{role}", self.prefix)
    }

    pub fn client(&self) -> String {
        self.ns("c")
    }

    pub fn balancer(&self) -> String {
        self.ns("b")
    }

    pub fn backend(&self, i: usize) -> String {
        self.ns(&format!("s{i}"))
    }

    fn ip(&self, ns: &str, batch: &str) -> Result<(), String> {
        run("ip", &["-n", ns, "-batch", "-"], Some(batch)).map(drop)
    }

    fn build(&self) -> Result<(), String> {
        let (c, b) = (self.client(), self.balancer());
        let mut all = vec![c.clone(), b.clone()];
        all.extend((1..=self.backends).map(|i| self.backend(i)));
        for ns in &all {
            run("ip", &["netns", "add", ns], None)?;
            self.ip(ns, "link set lo up\n")?;
        }
        run(
            "ip",
            &[
                "netns",
                "exec",
                &b,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1",
            ],
            None,
        )?;
        run(
            "ip",
            &[
                "link", "add", "eth0", "netns", &c, "type", "veth", "peer", "name", "c", "netns",
                &b,
            ],
            None,
        )?;
        let mut client = String::from(
            "addr add 198.18.0.2/24 dev eth0\naddr add 2001:2::2/64 dev eth0 nodad\nlink set eth0 up\n",
        );
        for k in 0..SOURCES {
            client += &format!(
                "addr add {}/24 dev eth0\naddr add {}/64 dev eth0 nodad\n",
                source4(k),
                source6(k)
            );
        }
        client += "route add default via 198.18.0.1\nroute add default via 2001:2::1\n";
        self.ip(&c, &client)?;
        let mut bal = String::from(
            "addr add 198.18.0.1/24 dev c\naddr add 2001:2::1/64 dev c nodad\nlink set c up\n",
        );
        for i in 1..=self.backends {
            let s = self.backend(i);
            let dev = format!("s{i}");
            run(
                "ip",
                &[
                    "link", "add", "eth0", "netns", &s, "type", "veth", "peer", "name", &dev,
                    "netns", &b,
                ],
                None,
            )?;
            self.ip(
                &s,
                &format!(
                    "addr add {}/24 dev eth0\naddr add {}/64 dev eth0 nodad\nlink set eth0 up\n\
                     route add default via 198.18.{i}.1\nroute add default via 2001:2:0:{i}::1\n",
                    backend4(i),
                    backend6(i)
                ),
            )?;
            bal += &format!(
                "addr add 198.18.{i}.1/24 dev {dev}\naddr add 2001:2:0:{i}::1/64 dev {dev} nodad\nlink set {dev} up\n"
            );
        }
        self.ip(&b, &bal)
    }

    /// Runs `f` on a thread inside namespace `ns`.
    pub fn in_ns<T: Send + 'static>(&self, ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{ns}");
        std::thread::spawn(move || {
            enter(&path);
            f()
        })
        .join()
        .expect("the namespace thread panicked")
    }

    /// `nft <args>` in namespace `ns`.
    pub fn nft(&self, ns: &str, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["netns", "exec", ns, "nft"];
        all.extend_from_slice(args);
        run("ip", &all, None)
    }

    /// `nft -f -` in namespace `ns`.
    pub fn nft_apply(&self, ns: &str, script: &str) -> Result<(), String> {
        run("ip", &["netns", "exec", ns, "nft", "-f", "-"], Some(script)).map(drop)
    }

    /// Starts backend `i`'s server.
    pub fn serve(&self, i: usize) -> Server {
        let name = format!("s{i}");
        let path = format!("/run/netns/{}", self.backend(i));
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            enter(&path);
            let socket = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::STREAM, None)
                .expect("backend socket");
            socket.set_only_v6(false).expect("dual stack");
            socket.set_reuse_address(true).expect("reuse");
            let any: SocketAddr = (Ipv6Addr::UNSPECIFIED, PORT).into();
            socket.bind(&any.into()).expect("backend bind");
            socket.listen(1024).expect("backend listen");
            let listener: TcpListener = socket.into();
            tx.send(listener.try_clone().expect("clone listener"))
                .expect("hand over");
            while let Ok((conn, peer)) = listener.accept() {
                let name = name.clone();
                std::thread::spawn(move || echo(conn, &name, peer));
            }
        });
        let listener = rx.recv().expect("backend started");
        Server {
            listener,
            thread: Some(thread),
        }
    }
}

/// Enters a network namespace on this thread.
fn enter(path: &str) {
    let file = std::fs::File::open(path).expect("open the namespace");
    // SAFETY: setns with a valid namespace descriptor changes only this thread's
    // network namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
}

/// One backend connection: greets with its name and the client address it sees, then
/// echoes lines until the client closes.
fn echo(mut conn: TcpStream, name: &str, peer: SocketAddr) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    if writeln!(conn, "{name} {}", peer.ip().to_canonical()).is_err() {
        return;
    }
    let mut buf = [0u8; 65536];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// A running backend server; dropping it stops accepting (connections then refused).
pub struct Server {
    listener: TcpListener,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: shutdown on a valid listening socket wakes its blocked accept with
        // an error, ending the accept loop; the descriptor stays owned by `listener`.
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A client connection through the redirect: the backend's greeting, and the stream.
pub struct Conn {
    pub host: String,
    pub seen: IpAddr,
    pub stream: BufReader<TcpStream>,
}

impl Conn {
    /// Sends a line and reads it back: the connection still works.
    pub fn ping(&mut self) -> Result<(), String> {
        self.stream
            .get_mut()
            .write_all(b"ping\n")
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        self.stream
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        (line == "ping\n")
            .then_some(())
            .ok_or(format!("echo {line:?}"))
    }
}

/// Connects from `source` to `to` (call inside the client namespace).
pub fn connect(source: IpAddr, to: SocketAddr) -> Result<Conn, String> {
    let domain = if to.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let socket =
        socket2::Socket::new(domain, socket2::Type::STREAM, None).map_err(|e| e.to_string())?;
    socket
        .bind(&SocketAddr::new(source, 0).into())
        .map_err(|e| format!("bind {source}: {e}"))?;
    socket
        .connect_timeout(&to.into(), Duration::from_secs(3))
        .map_err(|e| format!("connect {source} -> {to}: {e}"))?;
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    stream
        .read_line(&mut line)
        .map_err(|e| format!("greeting from {to}: {e}"))?;
    let mut parts = line.split_whitespace();
    let host = parts.next().ok_or("empty greeting")?.to_owned();
    let seen = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or(format!("greeting {line:?}"))?;
    Ok(Conn { host, seen, stream })
}

/// Connects once from `source`, reads the greeting and closes.
pub fn visit(source: IpAddr, to: SocketAddr) -> Result<(String, IpAddr), String> {
    let conn = connect(source, to)?;
    let _ = conn.stream.get_ref().shutdown(Shutdown::Both);
    Ok((conn.host, conn.seen))
}

impl Drop for Lab {
    fn drop(&mut self) {
        let mut all = vec![self.client(), self.balancer()];
        all.extend((1..=self.backends).map(|i| self.backend(i)));
        for ns in all {
            let _ = run("ip", &["netns", "del", &ns], None);
        }
    }
}
