//! PROXY protocol headers, byte for byte against HAProxy's specification
//! (<https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>), and decoded back by
//! an independent parser written here from the same text.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use lb_relay::proxy::{encode_header, ProxyProtocol, V2_SIGNATURE};

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn header(version: ProxyProtocol, client: &str, local: &str) -> Vec<u8> {
    let mut out = Vec::new();
    encode_header(version, addr(client), addr(local), &mut out);
    out
}

// ---- version 1 (spec section 2.1) ----

#[test]
fn v1_ipv4_is_the_spec_example() {
    // The example line of section 2.1, verbatim.
    assert_eq!(
        header(ProxyProtocol::V1, "192.168.0.1:56324", "192.168.0.11:443"),
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
    );
}

#[test]
fn v1_ipv6() {
    assert_eq!(
        header(
            ProxyProtocol::V1,
            "[2001:db8::1]:56324",
            "[2001:db8:0:0:1::11]:443"
        ),
        b"PROXY TCP6 2001:db8::1 2001:db8::1:0:0:11 56324 443\r\n"
    );
}

#[test]
fn v1_longest_lines_match_the_spec_maxima() {
    // Section 2.1: 56 characters for TCP/IPv4 and 104 for TCP/IPv6, CRLF included.
    let v4 = header(
        ProxyProtocol::V1,
        "255.255.255.255:65535",
        "255.255.255.255:65535",
    );
    assert_eq!(
        v4,
        b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"
    );
    assert_eq!(v4.len(), 56);
    let all = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535";
    let v6 = header(ProxyProtocol::V1, all, all);
    assert_eq!(
        v6,
        b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff \
          ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"
    );
    assert_eq!(v6.len(), 104);
}

#[test]
fn v1_mixed_families_are_written_as_ipv6_with_a_mapped_address() {
    // An IPv4 client on an IPv6 listener: the IPv4 address becomes ::ffff:c000:201
    // (192.0.2.1), in hexadecimal groups, never as a dotted quad.
    assert_eq!(
        header(ProxyProtocol::V1, "192.0.2.1:1234", "[2001:db8::11]:443"),
        b"PROXY TCP6 ::ffff:c000:201 2001:db8::11 1234 443\r\n"
    );
}

#[test]
fn v1_mapped_addresses_of_a_dual_stack_listener_are_unmapped() {
    assert_eq!(
        header(
            ProxyProtocol::V1,
            "[::ffff:192.0.2.1]:1234",
            "[::ffff:192.0.2.9]:80"
        ),
        b"PROXY TCP4 192.0.2.1 192.0.2.9 1234 80\r\n"
    );
}

#[test]
fn encoding_appends_to_what_is_already_buffered() {
    let mut out = b"already".to_vec();
    encode_header(
        ProxyProtocol::V1,
        addr("10.0.0.1:1"),
        addr("10.0.0.2:2"),
        &mut out,
    );
    assert_eq!(out, b"alreadyPROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\n");
}

// ---- version 2 (spec section 2.2) ----

#[test]
fn v2_ipv4() {
    let expected: [u8; 28] = [
        // signature
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
        // version 2, command PROXY; TCP over IPv4; 12 address bytes
        0x21, 0x11, 0x00, 0x0C, // 192.168.0.1, 192.168.0.11
        0xC0, 0xA8, 0x00, 0x01, 0xC0, 0xA8, 0x00, 0x0B, // 56324, 443
        0xDC, 0x04, 0x01, 0xBB,
    ];
    assert_eq!(
        header(ProxyProtocol::V2, "192.168.0.1:56324", "192.168.0.11:443"),
        expected
    );
}

#[test]
fn v2_ipv6() {
    let expected: [u8; 52] = [
        // signature
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
        // version 2, command PROXY; TCP over IPv6; 36 address bytes
        0x21, 0x21, 0x00, 0x24, // 2001:db8::1
        0x20, 0x01, 0x0D, 0xB8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x01, // 2001:db8::11
        0x20, 0x01, 0x0D, 0xB8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x11, // 56324, 443
        0xDC, 0x04, 0x01, 0xBB,
    ];
    assert_eq!(
        header(
            ProxyProtocol::V2,
            "[2001:db8::1]:56324",
            "[2001:db8::11]:443"
        ),
        expected
    );
}

#[test]
fn v2_mixed_families_map_the_ipv4_endpoint() {
    let out = header(ProxyProtocol::V2, "192.0.2.1:1234", "[2001:db8::11]:443");
    assert_eq!(out[12..16], [0x21, 0x21, 0x00, 0x24]);
    // ::ffff:192.0.2.1
    assert_eq!(
        out[16..32],
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 192, 0, 2, 1]
    );
    assert_eq!(
        parse_v2(&out),
        Some((
            addr("[::ffff:192.0.2.1]:1234"),
            addr("[2001:db8::11]:443"),
            52
        ))
    );
}

#[test]
fn signature_constant_is_the_spec_block() {
    assert_eq!(
        V2_SIGNATURE,
        [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    );
}

// ---- decoding back ----

/// Parses a v1 line: `(source, destination, header length)`, or `None` if the line
/// does not follow section 2.1 exactly.
fn parse_v1(bytes: &[u8]) -> Option<(SocketAddr, SocketAddr, usize)> {
    let end = bytes.windows(2).position(|w| w == b"\r\n")?;
    if end + 2 > 107 {
        return None;
    }
    let line = std::str::from_utf8(&bytes[..end]).ok()?;
    let fields: Vec<&str> = line.split(' ').collect();
    let [proxy, family, src, dst, sport, dport] = fields[..] else {
        return None;
    };
    if proxy != "PROXY" {
        return None;
    }
    let port = |p: &str| -> Option<u16> {
        (p == "0" || !p.starts_with('0')).then_some(())?;
        p.parse().ok()
    };
    let ip = |s: &str| -> Option<IpAddr> {
        match family {
            "TCP4" => s.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
            // Section 2.1: IPv6 is hexadecimal groups only, no dotted quad.
            "TCP6" if !s.contains('.') => s.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
            _ => None,
        }
    };
    Some((
        SocketAddr::new(ip(src)?, port(sport)?),
        SocketAddr::new(ip(dst)?, port(dport)?),
        end + 2,
    ))
}

/// Parses a v2 header with the PROXY command over TCP: `(source, destination, header
/// length)`, or `None`.
fn parse_v2(bytes: &[u8]) -> Option<(SocketAddr, SocketAddr, usize)> {
    if bytes.get(..12)? != V2_SIGNATURE || *bytes.get(12)? != 0x21 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*bytes.get(14)?, *bytes.get(15)?]));
    let block = bytes.get(16..16 + len)?;
    let port = |at: usize| u16::from_be_bytes([block[at], block[at + 1]]);
    let (src, dst) = match (bytes[13], len) {
        (0x11, 12) => {
            let a = |at: usize| {
                IpAddr::from(<[u8; 4]>::try_from(&block[at..at + 4]).unwrap_or_default())
            };
            (
                SocketAddr::new(a(0), port(8)),
                SocketAddr::new(a(4), port(10)),
            )
        }
        (0x21, 36) => {
            let a = |at: usize| {
                IpAddr::from(<[u8; 16]>::try_from(&block[at..at + 16]).unwrap_or_default())
            };
            (
                SocketAddr::new(a(0), port(32)),
                SocketAddr::new(a(16), port(34)),
            )
        }
        _ => return None,
    };
    Some((src, dst, 16 + len))
}

#[test]
fn the_spec_examples_decode_back() {
    let v1 = header(ProxyProtocol::V1, "192.168.0.1:56324", "192.168.0.11:443");
    assert_eq!(
        parse_v1(&v1),
        Some((addr("192.168.0.1:56324"), addr("192.168.0.11:443"), 47))
    );
    let v1 = header(
        ProxyProtocol::V1,
        "[2001:db8::1]:56324",
        "[2001:db8::11]:443",
    );
    assert_eq!(
        parse_v1(&v1),
        Some((addr("[2001:db8::1]:56324"), addr("[2001:db8::11]:443"), 47))
    );
    let v2 = header(ProxyProtocol::V2, "192.168.0.1:56324", "192.168.0.11:443");
    assert_eq!(
        parse_v2(&v2),
        Some((addr("192.168.0.1:56324"), addr("192.168.0.11:443"), 28))
    );
    let v2 = header(
        ProxyProtocol::V2,
        "[2001:db8::1]:56324",
        "[2001:db8::11]:443",
    );
    assert_eq!(
        parse_v2(&v2),
        Some((addr("[2001:db8::1]:56324"), addr("[2001:db8::11]:443"), 52))
    );
}

/// A small deterministic generator (SplitMix64) for the round-trip test.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn random_addr(state: &mut u64, v6: bool) -> SocketAddr {
    let r = splitmix(state);
    let port = (r >> 48) as u16;
    let ip = if v6 {
        let hi = u128::from(splitmix(state));
        // Zero some groups now and then so "::" compression is exercised.
        let lo = u128::from(splitmix(state) & (r & 0xFFFF_0000_FFFF_0000));
        IpAddr::V6(Ipv6Addr::from((hi << 64) | lo))
    } else {
        IpAddr::V4(Ipv4Addr::from(r as u32))
    };
    SocketAddr::new(ip, port)
}

#[test]
fn random_addresses_round_trip_through_both_versions() {
    let mut state = 0x5EED;
    for i in 0..2000 {
        let v6 = i % 2 == 1;
        let (client, local) = (random_addr(&mut state, v6), random_addr(&mut state, v6));
        let v1 = {
            let mut out = Vec::new();
            encode_header(ProxyProtocol::V1, client, local, &mut out);
            out
        };
        let v2 = {
            let mut out = Vec::new();
            encode_header(ProxyProtocol::V2, client, local, &mut out);
            out
        };
        // A v4-mapped random IPv6 address is written as IPv4; compare canonically.
        let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
        let expect_v4 = canonical(client).is_ipv4() && canonical(local).is_ipv4();
        let want = if expect_v4 {
            (canonical(client), canonical(local))
        } else {
            (client, local)
        };
        let got = parse_v1(&v1).expect("v1 header parses");
        assert_eq!((got.0, got.1), want, "v1 {}", String::from_utf8_lossy(&v1));
        assert_eq!(got.2, v1.len());
        let got = parse_v2(&v2).expect("v2 header parses");
        assert_eq!((got.0, got.1), want, "v2 {v2:02x?}");
        assert_eq!(got.2, v2.len());
    }
}
