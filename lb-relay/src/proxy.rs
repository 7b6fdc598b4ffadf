//! The PROXY protocol header a relay sends to a backend before any client byte.
//!
//! A relay terminates the client's TCP connection and opens its own to the backend, so
//! the backend sees the relay's address, not the client's. HAProxy's PROXY protocol
//! (<https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>, the same text as
//! `doc/proxy-protocol.txt` in the HAProxy sources) prepends one header that carries the
//! original connection's endpoints; relayd sends it with `proxy-protocol v1|v2`.
//!
//! - **Version 1** (spec section 2.1) is one line of US-ASCII:
//!   `PROXY TCP4 <client ip> <relay ip> <client port> <relay port>\r\n`, `TCP6` for IPv6.
//!   IPv4 addresses are dotted quads without leading zeroes; IPv6 addresses are colon
//!   separated hexadecimal groups with at most one `::` (we write the RFC 5952 canonical
//!   form, and never the dotted `::ffff:a.b.c.d` notation, which the spec's grammar for
//!   IPv6 does not allow).
//! - **Version 2** (spec section 2.2) is binary: the 12-byte signature
//!   `\r\n\r\n\0\r\nQUIT\n`, the version and command byte `0x21` (version 2, `PROXY`),
//!   the family and protocol byte (`0x11` TCP over IPv4, `0x21` TCP over IPv6), the
//!   length of the address block (big-endian `u16`: 12 or 36), then source address,
//!   destination address, source port, destination port, all in network byte order.
//!
//! ## Mixed address families
//!
//! Both formats describe one address family for both endpoints. A dual-stack listener
//! (`[::]`) sees IPv4 clients as IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, RFC 4291
//! section 2.5.5.2), and a relay may listen on IPv6 while a client is IPv4 or the other
//! way round. The spec asks senders to use `UNKNOWN`/`AF_UNSPEC` *only* "when it is not
//! possible to correctly fill the PROXY line", because some receivers reject it (section
//! 2.1). So we always fill it:
//!
//! 1. an IPv4-mapped IPv6 address is first unmapped to its IPv4 address;
//! 2. if both endpoints are then IPv4, the header is `TCP4` / `0x11`;
//! 3. otherwise any remaining IPv4 endpoint is written as its IPv4-mapped IPv6 address
//!    and the header is `TCP6` / `0x21` (HAProxy's own sender does the same mapping for
//!    version 2 headers).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The 12-byte signature that opens every version 2 header (spec section 2.2).
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// Which PROXY protocol header a relay sends to its backends (relayd's
/// `proxy-protocol v1|v2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyProtocol {
    /// The human-readable line, `PROXY TCP4 ...\r\n` (spec section 2.1).
    V1,
    /// The binary header with the `\r\n\r\n\0\r\nQUIT\n` signature (spec section 2.2).
    V2,
}

/// The endpoints of one connection after the family rules of the module docs.
enum Endpoints {
    V4(Ipv4Addr, Ipv4Addr),
    V6(Ipv6Addr, Ipv6Addr),
}

impl Endpoints {
    fn of(client: IpAddr, local: IpAddr) -> Self {
        match (client.to_canonical(), local.to_canonical()) {
            (IpAddr::V4(c), IpAddr::V4(l)) => Endpoints::V4(c, l),
            (c, l) => Endpoints::V6(as_v6(c), as_v6(l)),
        }
    }
}

fn as_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// Appends the PROXY protocol header for a connection from `client` accepted on the
/// relay's `local` address to `out`.
///
/// `out` is appended to, not cleared, so a caller can build the header in front of
/// bytes it already buffered. The header is at most 104 bytes (v1) or 52 bytes (v2),
/// less than any MSS, so it can be written with the first segment.
///
/// ```
/// use lb_relay::proxy::{encode_header, ProxyProtocol};
///
/// let client = "192.168.0.1:56324".parse().unwrap();
/// let local = "192.168.0.11:443".parse().unwrap();
/// let mut out = Vec::new();
/// encode_header(ProxyProtocol::V1, client, local, &mut out);
/// assert_eq!(out, b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
/// ```
pub fn encode_header(
    version: ProxyProtocol,
    client: SocketAddr,
    local: SocketAddr,
    out: &mut Vec<u8>,
) {
    let endpoints = Endpoints::of(client.ip(), local.ip());
    match version {
        ProxyProtocol::V1 => encode_v1(&endpoints, client.port(), local.port(), out),
        ProxyProtocol::V2 => encode_v2(&endpoints, client.port(), local.port(), out),
    }
}

fn encode_v1(endpoints: &Endpoints, client_port: u16, local_port: u16, out: &mut Vec<u8>) {
    let mut line = String::with_capacity(104);
    // Writing into a String cannot fail; the results are ignored for that reason.
    match endpoints {
        Endpoints::V4(c, l) => {
            let _ = write!(line, "PROXY TCP4 {c} {l}");
        }
        Endpoints::V6(c, l) => {
            line.push_str("PROXY TCP6 ");
            write_v6(&mut line, c);
            line.push(' ');
            write_v6(&mut line, l);
        }
    }
    let _ = write!(line, " {client_port} {local_port}\r\n");
    out.extend_from_slice(line.as_bytes());
}

/// Writes `ip` in RFC 5952 canonical form (lowercase hexadecimal, no leading zeroes,
/// the first longest run of two or more zero groups as `::`), never with an embedded
/// dotted quad: the PROXY v1 grammar for IPv6 only has hexadecimal groups.
fn write_v6(out: &mut String, ip: &Ipv6Addr) {
    let groups = ip.segments();
    let (mut best_start, mut best_len) = (0, 0);
    let mut i = 0;
    while i < groups.len() {
        if groups[i] == 0 {
            let start = i;
            while i < groups.len() && groups[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                (best_start, best_len) = (start, i - start);
            }
        } else {
            i += 1;
        }
    }
    if best_len < 2 {
        best_len = 0;
    }
    let write_groups = |out: &mut String, range: &[u16]| {
        for (n, g) in range.iter().enumerate() {
            if n > 0 {
                out.push(':');
            }
            let _ = write!(out, "{g:x}");
        }
    };
    if best_len == 0 {
        write_groups(out, &groups);
    } else {
        write_groups(out, &groups[..best_start]);
        out.push_str("::");
        write_groups(out, &groups[best_start + best_len..]);
    }
}

fn encode_v2(endpoints: &Endpoints, client_port: u16, local_port: u16, out: &mut Vec<u8>) {
    out.extend_from_slice(&V2_SIGNATURE);
    // Version 2 in the high nibble, command PROXY (0x1) in the low nibble.
    out.push(0x21);
    match endpoints {
        Endpoints::V4(c, l) => {
            out.push(0x11);
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&c.octets());
            out.extend_from_slice(&l.octets());
        }
        Endpoints::V6(c, l) => {
            out.push(0x21);
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&c.octets());
            out.extend_from_slice(&l.octets());
        }
    }
    out.extend_from_slice(&client_port.to_be_bytes());
    out.extend_from_slice(&local_port.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(s: &str) -> String {
        let mut out = String::new();
        write_v6(&mut out, &s.parse().expect("test address"));
        out
    }

    #[test]
    fn ipv6_text_is_rfc5952_without_dotted_quads() {
        assert_eq!(v6("::"), "::");
        assert_eq!(v6("::1"), "::1");
        assert_eq!(v6("2001:db8::1"), "2001:db8::1");
        assert_eq!(v6("2001:db8:0:1:0:0:0:1"), "2001:db8:0:1::1");
        // Equal runs: the first one is compressed (RFC 5952 section 4.2.3).
        assert_eq!(v6("2001:0:0:1:0:0:1:1"), "2001::1:0:0:1:1");
        // A single zero group is not compressed (RFC 5952 section 4.2.2).
        assert_eq!(v6("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1");
        assert_eq!(v6("::ffff:7f00:1"), "::ffff:7f00:1");
        assert_eq!(v6("fe80::ab:cdef"), "fe80::ab:cdef");
        assert_eq!(
            v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        );
    }

    #[test]
    fn mapped_endpoints_are_unmapped_and_mixed_ones_mapped() {
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("test address");
        let v4: IpAddr = "10.0.0.2".parse().expect("test address");
        let v6: IpAddr = "2001:db8::2".parse().expect("test address");
        assert!(matches!(Endpoints::of(mapped, v4), Endpoints::V4(..)));
        match Endpoints::of(v4, v6) {
            Endpoints::V6(c, _) => assert_eq!(c.to_string(), "::ffff:10.0.0.2"),
            Endpoints::V4(..) => panic!("mixed families must be written as IPv6"),
        }
    }
}
