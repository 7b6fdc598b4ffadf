//! relayd's `check icmp`: [`Icmp`], an ICMP (IPv4) or ICMPv6 echo.
//!
//! relayd sends an echo request to every host of the table, with its process id as
//! the echo identifier, and marks a host up when an echo reply with that identifier
//! comes back from the host's address before the timeout; a host without a reply by
//! then is down, `icmp read timeout` (`check_icmp.c`). relayd opens raw sockets at
//! start and refuses to run without them.
//!
//! We send one echo per check, from a socket of its own, connected to the host so that
//! the kernel passes up only what the host sends:
//! - a datagram ICMP socket (`socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)`, or
//!   `AF_INET6`/`IPPROTO_ICMPV6`) where the system allows it: on Linux, when the
//!   process's group is in `net.ipv4.ping_group_range` (which governs ICMPv6 too). The
//!   kernel then chooses the echo identifier and delivers only the replies to it;
//! - a raw socket otherwise, which needs `CAP_NET_RAW` (or root). The identifier is
//!   then our process id, as in relayd.
//!
//! The host is up when an echo reply arrives with our identifier, our sequence number
//! and our payload (the process id and a per-process counter). When neither socket
//! may be opened, the check cannot tell: [`Outcome::Unknown`] with
//! [`Reason::IcmpNotPermitted`], and [`Icmp::permitted`] says so up front as an
//! [`Error`], for a program that wants to refuse to start, as relayd does.

use std::fmt;
use std::io;
use std::net::{SocketAddr, SocketAddrV6};
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::future::BoxFuture;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::UdpSocket;
use tokio::time::timeout_at;

use crate::{Check, Error, Failure, Outcome, Probe, Reason};

/// The kind of socket an [`Icmp`] check sends from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IcmpSocket {
    /// `SOCK_DGRAM` with `IPPROTO_ICMP`/`IPPROTO_ICMPV6`: unprivileged where the
    /// system allows it (Linux: `net.ipv4.ping_group_range`).
    Datagram,
    /// `SOCK_RAW`: needs `CAP_NET_RAW` or root.
    Raw,
}

impl IcmpSocket {
    fn open(self, ipv6: bool) -> io::Result<Socket> {
        let (domain, protocol) = if ipv6 {
            (Domain::IPV6, Protocol::ICMPV6)
        } else {
            (Domain::IPV4, Protocol::ICMPV4)
        };
        let ty = match self {
            IcmpSocket::Datagram => Type::DGRAM,
            IcmpSocket::Raw => Type::RAW,
        };
        let socket = Socket::new(domain, ty, Some(protocol))?;
        socket.set_nonblocking(true)?;
        Ok(socket)
    }

    /// What the system asks for this kind of socket, for error messages.
    fn needs(self) -> &'static str {
        match self {
            IcmpSocket::Datagram => {
                "Linux allows it when the process's group is in net.ipv4.ping_group_range"
            }
            IcmpSocket::Raw => "it needs CAP_NET_RAW or root",
        }
    }
}

impl fmt::Display for IcmpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IcmpSocket::Datagram => "datagram ICMP socket",
            IcmpSocket::Raw => "raw ICMP socket",
        })
    }
}

/// relayd's `check icmp`: up when the host answers an echo request before the
/// timeout.
///
/// [`Icmp::new`] tries a datagram socket, then a raw one; [`Icmp::with_socket`] uses
/// one kind only. Fails with [`Reason::IcmpReadTimeout`] (no reply in time),
/// [`Reason::WriteError`] (the request could not be sent) or [`Reason::ConnectError`];
/// [`Outcome::Unknown`] with [`Reason::IcmpNotPermitted`] when no socket may be opened.
///
/// ```no_run
/// use lb_health::{Check, Icmp, Probe};
/// use std::time::Duration;
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let icmp = Icmp::new();
/// let kind = icmp.permitted(false)?; // refuse to start without ICMP, as relayd
/// let probe = Probe::new("10.0.0.11:0".parse()?, Duration::from_millis(200));
/// println!("{} with a {kind}", icmp.check(&probe).await);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Icmp {
    socket: Option<IcmpSocket>,
}

impl Icmp {
    /// An echo check from a datagram ICMP socket where the system allows it, else a
    /// raw socket.
    pub fn new() -> Self {
        Icmp { socket: None }
    }

    /// An echo check from this kind of socket only.
    pub fn with_socket(kind: IcmpSocket) -> Self {
        Icmp { socket: Some(kind) }
    }

    /// The kind of socket a check of an IPv4 (or, with `ipv6`, IPv6) host would use
    /// now, or why none may be opened. Opens and closes a socket to find out.
    pub fn permitted(&self, ipv6: bool) -> Result<IcmpSocket, Error> {
        self.open(ipv6)
            .map(|(_, kind)| kind)
            .map_err(|detail| Error::IcmpNotPermitted { detail })
    }

    fn kinds(&self) -> &'static [IcmpSocket] {
        match self.socket {
            None => &[IcmpSocket::Datagram, IcmpSocket::Raw],
            Some(IcmpSocket::Datagram) => &[IcmpSocket::Datagram],
            Some(IcmpSocket::Raw) => &[IcmpSocket::Raw],
        }
    }

    /// The first kind of socket that opens, or why each failed.
    fn open(&self, ipv6: bool) -> Result<(Socket, IcmpSocket), String> {
        let mut why = Vec::new();
        for &kind in self.kinds() {
            match kind.open(ipv6) {
                Ok(socket) => return Ok((socket, kind)),
                Err(e) => why.push(format!("no {kind}: {e} ({})", kind.needs())),
            }
        }
        Err(why.join("; "))
    }

    async fn run(&self, probe: &Probe) -> Outcome {
        let target = probe.addr();
        let (socket, kind) = match self.open(target.is_ipv6()) {
            Ok(opened) => opened,
            Err(detail) => {
                return Outcome::Unknown(Failure::new(Reason::IcmpNotPermitted).with_detail(detail))
            }
        };
        // ICMP has no ports; an IPv6 link-local address keeps its scope.
        let to = match target {
            SocketAddr::V4(a) => SocketAddr::new((*a.ip()).into(), 0),
            SocketAddr::V6(a) => SocketAddrV6::new(*a.ip(), 0, 0, a.scope_id()).into(),
        };
        // tokio's UdpSocket is only send/recv on a non-blocking descriptor that sends
        // datagrams, which a connected ICMP socket (datagram or raw) is; it saves the
        // unsafe registration a bare descriptor needs (`AsyncFd::register`).
        let connected = socket
            .connect(&SockAddr::from(to))
            .and_then(|()| UdpSocket::from_std(socket.into()));
        let socket = match connected {
            Ok(socket) => socket,
            Err(e) => {
                return Outcome::Down(Failure::new(Reason::ConnectError).with_detail(e.to_string()))
            }
        };
        let echo = Echo::next(kind, target.is_ipv6());
        let mut last_error = None;
        match timeout_at(probe.deadline(), echo.exchange(&socket, &mut last_error)).await {
            Ok(Ok(())) => Outcome::Up,
            Ok(Err(failure)) => Outcome::Down(failure),
            Err(_) => {
                let timeout = Failure::new(Reason::IcmpReadTimeout);
                Outcome::Down(match last_error {
                    Some(e) => timeout.with_detail(format!("last receive error: {e}")),
                    None => timeout,
                })
            }
        }
    }
}

impl Check for Icmp {
    fn name(&self) -> &'static str {
        "icmp"
    }

    fn check<'a>(&'a self, probe: &'a Probe) -> BoxFuture<'a, Outcome> {
        Box::pin(self.run(probe))
    }
}

/// Sequence numbers and payloads of this process's echo requests.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// One echo request, and what its reply must carry.
#[derive(Debug)]
struct Echo {
    ipv6: bool,
    /// Raw sockets see the IPv4 header, and no kernel filter on the identifier.
    raw: bool,
    id: u16,
    seq: u16,
    payload: [u8; 16],
}

impl Echo {
    fn next(kind: IcmpSocket, ipv6: bool) -> Echo {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let mut payload = [0u8; 16];
        payload[..4].copy_from_slice(b"lb-h");
        payload[4..8].copy_from_slice(&pid.to_be_bytes());
        payload[8..].copy_from_slice(&n.to_be_bytes());
        Echo {
            ipv6,
            raw: kind == IcmpSocket::Raw,
            // Truncation intended: the identifier is 16 bits, relayd's `getpid() & 0xffff`.
            id: pid as u16,
            seq: n as u16,
            payload,
        }
    }

    /// The echo request: type, code, checksum, identifier, sequence, payload.
    fn request(&self) -> Vec<u8> {
        let kind = if self.ipv6 { 128 } else { 8 };
        let mut packet = vec![kind, 0, 0, 0];
        packet.extend_from_slice(&self.id.to_be_bytes());
        packet.extend_from_slice(&self.seq.to_be_bytes());
        packet.extend_from_slice(&self.payload);
        // The kernel computes ICMPv6 checksums (they cover a pseudo-header).
        if !self.ipv6 {
            let sum = checksum(&packet);
            packet[2..4].copy_from_slice(&sum.to_be_bytes());
        }
        packet
    }

    /// Whether `packet`, as read from the socket, is the reply to this request.
    fn is_reply(&self, packet: &[u8]) -> bool {
        let icmp = if self.raw && !self.ipv6 {
            let header = usize::from(packet.first().map_or(0, |b| b & 0x0f)) * 4;
            match packet.get(header..) {
                Some(icmp) if header >= 20 => icmp,
                _ => return false,
            }
        } else {
            packet
        };
        let reply = if self.ipv6 { 129 } else { 0 };
        icmp.len() >= 8
            && icmp[0] == reply
            && icmp[1] == 0
            && (!self.raw || icmp[4..6] == self.id.to_be_bytes())
            && icmp[6..8] == self.seq.to_be_bytes()
            && icmp[8..] == self.payload
    }

    /// Sends the request and reads until its reply. Receive errors (an ICMP error
    /// reported on the socket) do not end the wait, as relayd ignores them; the last
    /// one is kept for the timeout's detail.
    async fn exchange(
        &self,
        socket: &UdpSocket,
        last_error: &mut Option<io::Error>,
    ) -> Result<(), Failure> {
        if let Err(e) = socket.send(&self.request()).await {
            return Err(Failure::new(Reason::WriteError).with_detail(e.to_string()));
        }
        let mut buf = [0u8; 2048];
        loop {
            match socket.recv(&mut buf).await {
                Ok(n) if self.is_reply(&buf[..n]) => return Ok(()),
                Ok(_) => {}
                Err(e) => *last_error = Some(e),
            }
        }
    }
}

/// The Internet checksum (RFC 1071): the one's complement of the one's complement sum
/// of the 16-bit big-endian words, an odd last byte padded with zero.
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The loop leaves a 16-bit value.
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo(kind: IcmpSocket, ipv6: bool) -> Echo {
        Echo::next(kind, ipv6)
    }

    /// The reply a host would send to `e`, as the socket hands it over.
    fn reply_to(e: &Echo) -> Vec<u8> {
        let mut r = e.request();
        r[0] = if e.ipv6 { 129 } else { 0 };
        if e.raw && !e.ipv6 {
            let mut ip = vec![0x45u8];
            ip.resize(20, 0);
            ip.extend(r);
            return ip;
        }
        r
    }

    #[test]
    fn checksum_of_known_packets() {
        // An echo request with id 1, seq 1 and no payload: 0x0800 + 0x0001 + 0x0001.
        assert_eq!(checksum(&[8, 0, 0, 0, 0, 1, 0, 1]), !0x0802);
        // A valid packet sums to 0xffff: its checksum over itself is 0.
        let e = echo(IcmpSocket::Raw, false);
        assert_eq!(checksum(&e.request()), 0);
        assert_eq!(checksum(&[0xff]), !0xff00);
    }

    #[test]
    fn only_our_reply_counts() {
        for (kind, ipv6) in [
            (IcmpSocket::Raw, false),
            (IcmpSocket::Raw, true),
            (IcmpSocket::Datagram, false),
            (IcmpSocket::Datagram, true),
        ] {
            let e = echo(kind, ipv6);
            let good = reply_to(&e);
            assert!(e.is_reply(&good), "{kind:?} ipv6={ipv6}");
            // Our own request, looped back to a raw socket, is not a reply.
            let mut request = good.clone();
            let at = good.len() - 24;
            request[at] = if ipv6 { 128 } else { 8 };
            assert!(!e.is_reply(&request));
            // Another sequence number or payload: another check's reply.
            let mut other_seq = good.clone();
            other_seq[at + 7] ^= 1;
            assert!(!e.is_reply(&other_seq));
            let mut other_payload = good.clone();
            other_payload[at + 20] ^= 1;
            assert!(!e.is_reply(&other_payload));
            assert!(!e.is_reply(&good[..at + 7]));
            // A datagram socket's identifier is the kernel's; a raw one's is ours.
            let mut other_id = good.clone();
            other_id[at + 4] ^= 1;
            assert_eq!(e.is_reply(&other_id), kind == IcmpSocket::Datagram);
        }
    }

    #[test]
    fn each_request_is_new() {
        let (a, b) = (echo(IcmpSocket::Raw, false), echo(IcmpSocket::Raw, false));
        assert_ne!(a.payload, b.payload);
        assert!(!a.is_reply(&reply_to(&b)));
    }
}
