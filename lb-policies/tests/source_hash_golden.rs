//! relayd `source-hash` and `loadbalance` picks, checked against values derived by
//! hand from relayd's `relay_from_table` (see `src/source_hash.rs`), not by running
//! our code.
//!
//! Setup: key `0x000102030405060708090a0b0c0d0e0f` (w0..w3 = 00010203 04050607
//! 08090a0b 0c0d0e0f, so SipHash k0 = 0x0405060700010203, k1 = 0x0c0d0e0f08090a0b),
//! five hosts 10.0.0.1..5:80 (indexes 0..4), hosts 1 and 3 down:
//!
//! ```text
//! index:  0   1    2   3    4
//! host:   up  DOWN up  DOWN up
//! ```
//!
//! The expected values were computed once with this independent Python script (its
//! `siphash24` is the one quoted in `lb-core/tests/hash_golden.rs`, checked there
//! against the reference vectors):
//!
//! ```text
//! import ipaddress
//! from siphash import siphash24
//! w = [0x00010203, 0x04050607, 0x08090a0b, 0x0c0d0e0f]
//! k0 = w[0] | w[1] << 32; k1 = w[2] | w[3] << 32
//! up = [True, False, True, False, True]
//! def relay_from_table(p, n=5):
//!     tried = []
//!     for cnt in range(min(n, 5)):
//!         idx = p % n; tried.append(idx)
//!         if up[idx]: return idx, tried
//!         p >>= 1
//!     i = tried[-1]
//!     while not up[i]: i = (i + 1) % n   # TAILQ_NEXT from the last tried, then the head
//!     return i, tried
//! for a in addrs:
//!     p = siphash24(k0, k1, ipaddress.ip_address(a).packed)
//!     print(a, hex(p), p % 5, relay_from_table(p))
//! ```
//!
//! Each row: address, p = SipHash-2-4, then the indexes tried (p % 5, (p >> 1) % 5, ...)
//! up to the first up host, and the pick. `192.0.2.5` exhausts its five tries on down
//! hosts and is placed by the forward scan from index 1.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use lb_core::{Balancer, Context, HashKey, Health, HostTable};
use lb_policies::{LoadBalance, SourceHash};

#[rustfmt::skip]
const PICKS: [(&str, u64, &[usize], usize); 20] = [
    // address           p = siphash24            tries (p >> k) % 5  pick
    ("192.0.2.1",        0x2bd0_e541_0649_4175,   &[1, 0],            0),
    ("192.0.2.2",        0xf093_4a86_a4ba_e397,   &[3, 1, 0],         0),
    ("192.0.2.3",        0x8588_2065_4821_ec91,   &[3, 1, 3, 4],      4),
    ("192.0.2.4",        0xe713_cee8_6cd8_00d8,   &[3, 4],            4),
    ("192.0.2.5",        0x92a6_bba2_2209_034a,   &[1, 3, 1, 3, 1],   2),
    ("192.0.2.10",       0xb7f0_3329_c714_d7f8,   &[2],               2),
    ("192.0.2.77",       0x397d_eddc_5e06_db6f,   &[4],               4),
    ("192.0.2.200",      0x0027_114b_eab9_a62a,   &[3, 4],            4),
    ("192.0.2.254",      0xee45_5542_150d_a60e,   &[2],               2),
    ("10.1.2.3",         0xf07c_c706_10da_fa78,   &[3, 4],            4),
    ("172.16.0.9",       0x744e_8182_a61a_c56f,   &[3, 1, 0],         0),
    ("198.51.100.42",    0x6d3c_9495_21f9_7a11,   &[2],               2),
    ("2001:db8::1",      0xbd79_941f_8f60_95d3,   &[3, 1, 0],         0),
    ("2001:db8::2",      0xe96d_f3c9_0fc2_b0ba,   &[2],               2),
    ("2001:db8::3",      0x8512_d703_78c2_2a4e,   &[3, 4],            4),
    ("2001:db8::a",      0xeed5_1781_4866_3def,   &[2],               2),
    ("2001:db8:1::42",   0xc245_b1b2_867b_5a4c,   &[1, 3, 4],         4),
    ("fe80::1",          0x3320_a869_4353_aa80,   &[4],               4),
    ("::1",              0x3d72_acb4_8cc3_5f11,   &[4],               4),
    ("2001:db8::ffff:1", 0xa2c5_21b9_4387_924d,   &[2],               2),
];

fn key() -> HashKey {
    "0x000102030405060708090a0b0c0d0e0f".parse().unwrap()
}

fn five_hosts_1_and_3_down() -> Arc<HostTable<SocketAddr>> {
    let hosts: Vec<SocketAddr> = (1..=5)
        .map(|i| format!("10.0.0.{i}:80").parse().unwrap())
        .collect();
    let table = HostTable::new("relayd", hosts).unwrap();
    for i in [1, 3] {
        let id = table.snapshot().id(i);
        table.set_health(id, Health::Down, "check failed").unwrap();
    }
    table
}

fn client(addr: &str) -> Context<'static> {
    let ip: IpAddr = addr.parse().unwrap();
    Context::from_client(SocketAddr::new(ip, 51_000))
}

#[test]
fn source_hash_matches_relayd_by_hand() {
    let table = five_hosts_1_and_3_down();
    let policy = SourceHash::with_key(key());
    let balancer = Balancer::new(&table, policy.clone());
    for (addr, p, tries, pick) in PICKS {
        let ctx = client(addr);
        assert_eq!(policy.hash(&ctx), p, "siphash of {addr}");
        // The tries are the shifted hashes, and they are what the order prefers first.
        let shifted: Vec<usize> = (0..tries.len()).map(|k| ((p >> k) % 5) as usize).collect();
        assert_eq!(shifted, tries, "tries of {addr}");
        let lease = balancer.pick(&ctx).unwrap();
        let expected: SocketAddr = format!("10.0.0.{}:80", pick + 1).parse().unwrap();
        assert_eq!(*lease.backend(), expected, "pick of {addr}");
    }
}

#[test]
fn every_host_up_takes_the_first_try() {
    let hosts: Vec<SocketAddr> = (1..=5)
        .map(|i| format!("10.0.0.{i}:80").parse().unwrap())
        .collect();
    let table = HostTable::new("relayd", hosts).unwrap();
    let balancer = Balancer::new(&table, SourceHash::with_key(key()));
    for (addr, p, _, _) in PICKS {
        let lease = balancer.pick(&client(addr)).unwrap();
        let expected: SocketAddr = format!("10.0.0.{}:80", p % 5 + 1).parse().unwrap();
        assert_eq!(*lease.backend(), expected, "pick of {addr}");
    }
}

#[test]
fn candidates_are_what_relayd_would_pick_as_hosts_fail() {
    // 192.0.2.3: all five tries (p >> k) % 5 = 3, 1, 3, 4, 2. Usable among them: 4, 2;
    // then the scan from the last try + 1 = 3: 3 (down), 4 (seen), 0.
    // 192.0.2.10: tries 2, 1, 3, 4, 4 -> 2, 4; scan from 0: 0.
    // 192.0.2.5: tries 1, 3, 1, 3, 1 -> none usable; scan from 2: 2, 4, 0.
    let table = five_hosts_1_and_3_down();
    let balancer = Balancer::new(&table, SourceHash::with_key(key()));
    for (addr, expected) in [
        ("192.0.2.3", [4, 2, 0]),
        ("192.0.2.10", [2, 4, 0]),
        ("192.0.2.5", [2, 4, 0]),
    ] {
        let got: Vec<usize> = balancer
            .candidates(&client(addr))
            .map(|c| c.index())
            .collect();
        assert_eq!(got, expected, "candidates of {addr}");
    }
}

#[test]
fn loadbalance_hashes_client_then_listen_address_and_port() {
    // p = siphash24(client IP || listen IP || listen port, big-endian), same script.
    //   192.0.2.1   -> 203.0.113.1:443  p = 0x9f159ba590dd2cc7  tries 3, 1, 0        -> 0
    //   192.0.2.1   -> 203.0.113.1:80   p = 0x826d1a82eda9398a  tries 1, 3, 1, 3, 1  -> scan -> 2
    //   2001:db8::1 -> 203.0.113.1:443  p = 0x07e43295c8f876c3  tries 0              -> 0
    //   2001:db8::1 -> 203.0.113.1:80   p = 0xa263f992a990b345  tries 2              -> 2
    let table = five_hosts_1_and_3_down();
    let policy = LoadBalance::with_key(key());
    let balancer = Balancer::new(&table, policy.clone());
    for (addr, port, p, pick) in [
        ("192.0.2.1", 443, 0x9f15_9ba5_90dd_2cc7_u64, 0),
        ("192.0.2.1", 80, 0x826d_1a82_eda9_398a, 2),
        ("2001:db8::1", 443, 0x07e4_3295_c8f8_76c3, 0),
        ("2001:db8::1", 80, 0xa263_f992_a990_b345, 2),
    ] {
        let listen = SocketAddr::new("203.0.113.1".parse().unwrap(), port);
        let ctx = client(addr).with_listen(listen);
        assert_eq!(policy.hash(&ctx), p, "hash of {addr} via port {port}");
        let expected: SocketAddr = format!("10.0.0.{}:80", pick + 1).parse().unwrap();
        assert_eq!(*balancer.pick(&ctx).unwrap().backend(), expected);
    }
}

#[test]
fn loadbalance_on_wildcard_listeners_hashes_the_configured_address() {
    // relayd hashes the relay's configured address (`rl_conf.ss`, `rl_conf.port`), so a
    // relay `listen on 0.0.0.0` hashes 4 zero bytes and `listen on ::` 16, then the
    // port, big-endian (relay_hash_addr: the family's address bytes, then the
    // in_port_t as stored, in network order), whatever address the client dialled.
    // `Context::local` (the dialled address, 127.0.0.1 here) takes no part. Same
    // script, with
    //
    //   def lb(client, listen, port):
    //       return siphash24(k0, k1, ipaddress.ip_address(client).packed
    //                        + ipaddress.ip_address(listen).packed + port.to_bytes(2, 'big'))
    //
    // The last column is the pick had the dialled 127.0.0.1 been hashed instead: each
    // row but one differs, so a relay that fed the dialled address would fail here.
    //   client         listen      p = lb(...)          tries             pick  (127.0.0.1)
    //   192.0.2.1      0.0.0.0:80  0x73920d9efded43a4  3, 4                4    (2)
    //   192.0.2.1      [::]:443    0x2ef512d5f8f78bc5  3, 1, 3, 1, 3 scan  4    (0)
    //   192.0.2.2      0.0.0.0:443 0x0a325f5ab2ef3408  2                   2    (4)
    //   198.51.100.42  [::]:80     0x81f9768d093c45fb  1, 0                0    (2)
    //   2001:db8::1    0.0.0.0:443 0x41e2dc23d985740f  2                   2    (4)
    //   2001:db8::2    [::]:80     0xc01fc4a38b8a2d6d  3, 1, 3, 1, 0       0    (2)
    //   ::1            0.0.0.0:443 0x197b99e5db799ad2  4                   4    (4: same)
    //   ::1            [::]:443    0x55d362a852774dce  1, 3, 1, 0          0    (4)
    let table = five_hosts_1_and_3_down();
    let policy = LoadBalance::with_key(key());
    let balancer = Balancer::new(&table, policy.clone());
    #[rustfmt::skip]
    let rows: [(&str, &str, u64, usize, usize); 8] = [
        ("192.0.2.1",     "0.0.0.0:80",  0x7392_0d9e_fded_43a4, 4, 2),
        ("192.0.2.1",     "[::]:443",    0x2ef5_12d5_f8f7_8bc5, 4, 0),
        ("192.0.2.2",     "0.0.0.0:443", 0x0a32_5f5a_b2ef_3408, 2, 4),
        ("198.51.100.42", "[::]:80",     0x81f9_768d_093c_45fb, 0, 2),
        ("2001:db8::1",   "0.0.0.0:443", 0x41e2_dc23_d985_740f, 2, 4),
        ("2001:db8::2",   "[::]:80",     0xc01f_c4a3_8b8a_2d6d, 0, 2),
        ("::1",           "0.0.0.0:443", 0x197b_99e5_db79_9ad2, 4, 4),
        ("::1",           "[::]:443",    0x55d3_62a8_5277_4dce, 0, 4),
    ];
    for (addr, listen, p, pick, pick_if_dialled) in rows {
        let listen: SocketAddr = listen.parse().unwrap();
        let dialled = SocketAddr::new("127.0.0.1".parse().unwrap(), listen.port());
        let ctx = client(addr).with_listen(listen).with_local(dialled);
        assert_eq!(policy.hash(&ctx), p, "hash of {addr} via {listen}");
        let expected: SocketAddr = format!("10.0.0.{}:80", pick + 1).parse().unwrap();
        assert_eq!(
            *balancer.pick(&ctx).unwrap().backend(),
            expected,
            "{addr} via {listen}"
        );
        let as_dialled = client(addr).with_listen(dialled);
        let expected: SocketAddr = format!("10.0.0.{}:80", pick_if_dialled + 1)
            .parse()
            .unwrap();
        assert_eq!(
            *balancer.pick(&as_dialled).unwrap().backend(),
            expected,
            "{addr} via {dialled}"
        );
    }
}

#[test]
fn no_client_address_hashes_the_empty_input() {
    // siphash24(k, "") = 0xbfca2ae50030bcb5 (same script): tries 1 (down), 0 -> 0.
    let table = five_hosts_1_and_3_down();
    let policy = SourceHash::with_key(key());
    assert_eq!(policy.hash(&Context::new()), 0xbfca_2ae5_0030_bcb5);
    let balancer = Balancer::new(&table, policy);
    let expected: SocketAddr = "10.0.0.1:80".parse().unwrap();
    assert_eq!(*balancer.pick(&Context::new()).unwrap().backend(), expected);
}
