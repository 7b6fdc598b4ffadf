//! The nftables table a redirect owns, as nft text: created whole once, then changed by
//! small transactions (slot elements, one host's chains and set).
//!
//! For a redirect `web` on `198.18.100.1` port 80, source-hash, sticky-address:
//!
//! ```text
//! table inet lb_web {
//!   map slots4 { typeof numgen inc mod 4093 : ip daddr . tcp dport }   # slot -> backend
//!   set s_<host id> { type ipv4_addr; flags dynamic,timeout; timeout 300s }  # per host
//!   chain prerouting { type nat hook prerouting priority dstnat; policy accept;
//!     ip daddr { 198.18.100.1 } tcp dport 80 jump vip4 }
//!   chain vip4 {
//!     jump h_<host id>                      # per host: sticky sources first
//!     tcp dport 80 dnat ip to jhash ip saddr mod 4093 seed 0x... map @slots4 }
//!   chain h_<host id> { ip saddr @s_<host id> meta l4proto tcp dnat ip to 198.18.1.2:80 }  # while usable
//!   chain forward { type filter hook forward priority filter; policy accept;
//!     ct direction original meta l4proto tcp ct original ip daddr { 198.18.100.1 } ct original proto-dst 80 jump track4 }
//!   chain track4 { jump t_<host id> }
//!   chain t_<host id> { ip daddr 198.18.1.2 tcp dport 80 update @s_<host id> { ip saddr } }
//! }
//! ```
//!
//! Every packet a client sends on a redirected connection refreshes its source's entry
//! in the set of the host it reached (pf's `src.track`: an entry lives while its
//! connections carry traffic, plus the timeout). A host that stops being usable has its
//! two chains and its set flushed in the same transaction that rewrites its slots.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use lb_core::BackendId;

use crate::Mode;

/// IPv4 or IPv6: each has its own map, chains and hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Family {
    V4,
    V6,
}

impl Family {
    pub(crate) const BOTH: [Family; 2] = [Family::V4, Family::V6];

    pub(crate) fn of(ip: IpAddr) -> Family {
        if ip.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }

    fn ip(self) -> &'static str {
        match self {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Family::V4 => "4",
            Family::V6 => "6",
        }
    }

    fn addr_type(self) -> &'static str {
        match self {
            Family::V4 => "ipv4_addr",
            Family::V6 => "ipv6_addr",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// What the whole table looks like, fixed for the redirect's life.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub(crate) table: String,
    pub(crate) mode: Mode,
    pub(crate) slots: usize,
    pub(crate) seed: u32,
    pub(crate) port: u16,
    pub(crate) vips: Vec<IpAddr>,
    pub(crate) sticky: Option<Duration>,
    pub(crate) sticky_capacity: usize,
}

/// A host's set and chains are named after its stable id.
pub(crate) fn host_tag(id: BackendId) -> String {
    format!("{:016x}", id.get())
}

/// A backend as nft writes it in a map element: `198.18.1.2 . 80`.
fn element(target: SocketAddr) -> String {
    format!("{} . {}", target.ip(), target.port())
}

/// A backend as a `dnat` target: `198.18.1.2:80`, `[2001:2::2]:80`.
fn dnat_target(target: SocketAddr) -> String {
    match target {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

impl Layout {
    pub(crate) fn families(&self) -> impl Iterator<Item = Family> + '_ {
        Family::BOTH
            .into_iter()
            .filter(|f| self.vips.iter().any(|v| Family::of(*v) == *f))
    }

    fn vip_set(&self, family: Family) -> String {
        let vips: Vec<String> = self
            .vips
            .iter()
            .filter(|v| Family::of(**v) == family)
            .map(|v| v.to_string())
            .collect();
        format!("{{ {} }}", vips.join(", "))
    }

    fn key(&self, family: Family) -> String {
        let m = self.slots;
        match self.mode {
            Mode::SourceHash => format!(
                "jhash {} saddr mod {m} seed {:#010x}",
                family.ip(),
                self.seed
            ),
            Mode::RoundRobin => format!("numgen inc mod {m}"),
            Mode::Random | Mode::LeastStates => format!("numgen random mod {m}"),
        }
    }

    /// Replaces any table of this name (a crashed process's leftover) with an empty
    /// skeleton: maps, base chains and the dispatch rules without hosts.
    pub(crate) fn create(&self) -> String {
        let t = &self.table;
        let mut s = String::new();
        // `add` succeeds whether or not it exists, so the `delete` never fails: together
        // an atomic replace of our own table, and of nothing else.
        let _ = writeln!(
            s,
            "add table inet {t}\ndelete table inet {t}\nadd table inet {t}"
        );
        let _ = writeln!(
            s,
            "add chain inet {t} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}"
        );
        if self.sticky.is_some() {
            let _ = writeln!(
                s,
                "add chain inet {t} forward {{ type filter hook forward priority filter; policy accept; }}"
            );
        }
        for f in self.families() {
            let (ip, n) = (f.ip(), f.suffix());
            let _ = writeln!(
                s,
                "add map inet {t} slots{n} {{ typeof numgen inc mod {} : {ip} daddr . tcp dport; }}",
                self.slots
            );
            let _ = writeln!(s, "add chain inet {t} vip{n}");
            let _ = writeln!(
                s,
                "add rule inet {t} prerouting {ip} daddr {} tcp dport {} jump vip{n}",
                self.vip_set(f),
                self.port
            );
            if self.sticky.is_some() {
                let _ = writeln!(s, "add chain inet {t} track{n}");
                let _ = writeln!(
                    s,
                    "add rule inet {t} forward ct direction original meta l4proto tcp ct original {ip} daddr {} ct original proto-dst {} jump track{n}",
                    self.vip_set(f),
                    self.port
                );
            }
        }
        s
    }

    /// Rewrites a family's dispatch chains for these member hosts (membership changes).
    pub(crate) fn dispatch(&self, s: &mut String, family: Family, members: &[BackendId]) {
        let (t, ip, n) = (&self.table, family.ip(), family.suffix());
        let _ = writeln!(s, "flush chain inet {t} vip{n}");
        if self.sticky.is_some() {
            let _ = writeln!(s, "flush chain inet {t} track{n}");
            for id in members {
                let tag = host_tag(*id);
                let _ = writeln!(s, "add rule inet {t} vip{n} jump h_{tag}");
                let _ = writeln!(s, "add rule inet {t} track{n} jump t_{tag}");
            }
        }
        let _ = writeln!(
            s,
            "add rule inet {t} vip{n} tcp dport {} dnat {ip} to {} map @slots{n}",
            self.port,
            self.key(family)
        );
    }

    /// Declares a new host's set and (empty) chains; sticky-address only.
    pub(crate) fn add_host(&self, s: &mut String, id: BackendId, family: Family) {
        let (Some(timeout), t, tag) = (self.sticky, &self.table, host_tag(id)) else {
            return;
        };
        let _ = writeln!(
            s,
            "add set inet {t} s_{tag} {{ type {}; size {}; flags dynamic,timeout; timeout {}ms; }}",
            family.addr_type(),
            self.sticky_capacity,
            timeout.as_millis().max(1)
        );
        let _ = writeln!(s, "add chain inet {t} h_{tag}\nadd chain inet {t} t_{tag}");
    }

    /// Lets a host's sticky sources reach it, and record themselves.
    pub(crate) fn host_usable(&self, s: &mut String, id: BackendId, target: SocketAddr) {
        if self.sticky.is_none() {
            return;
        }
        let (t, tag, f) = (&self.table, host_tag(id), Family::of(target.ip()));
        let ip = f.ip();
        let _ = writeln!(
            s,
            "add rule inet {t} h_{tag} {ip} saddr @s_{tag} meta l4proto tcp dnat {ip} to {}",
            dnat_target(target)
        );
        let _ = writeln!(
            s,
            "add rule inet {t} t_{tag} {ip} daddr {} tcp dport {} update @s_{tag} {{ {ip} saddr }}",
            target.ip(),
            target.port()
        );
    }

    /// Forgets a host's sticky sources and stops recording new ones.
    pub(crate) fn host_unusable(&self, s: &mut String, id: BackendId) {
        if self.sticky.is_none() {
            return;
        }
        let (t, tag) = (&self.table, host_tag(id));
        let _ = writeln!(
            s,
            "flush chain inet {t} h_{tag}\nflush chain inet {t} t_{tag}\nflush set inet {t} s_{tag}"
        );
    }

    /// Deletes a host's set and chains (after the dispatch no longer jumps to them).
    pub(crate) fn remove_host(&self, s: &mut String, id: BackendId) {
        if self.sticky.is_none() {
            return;
        }
        let (t, tag) = (&self.table, host_tag(id));
        self.host_unusable(s, id);
        let _ = writeln!(
            s,
            "delete chain inet {t} h_{tag}\ndelete chain inet {t} t_{tag}\ndelete set inet {t} s_{tag}"
        );
    }

    /// Rewrites the slots whose backend differs between `old` and `new`.
    pub(crate) fn slots(
        &self,
        s: &mut String,
        family: Family,
        old: &[Option<SocketAddr>],
        new: &[Option<SocketAddr>],
    ) {
        let (t, n) = (&self.table, family.suffix());
        let changed: Vec<usize> = (0..new.len())
            .filter(|&k| old.get(k).copied().flatten() != new[k])
            .collect();
        let gone: Vec<String> = changed
            .iter()
            .filter(|&&k| old.get(k).copied().flatten().is_some())
            .map(|k| k.to_string())
            .collect();
        let added: Vec<String> = changed
            .iter()
            .filter_map(|&k| new[k].map(|b| format!("{k} : {}", element(b))))
            .collect();
        // Deletions and additions of one transaction: readers see the old or the new
        // backend of a slot, never neither.
        for chunk in gone.chunks(1024) {
            let _ = writeln!(
                s,
                "delete element inet {t} slots{n} {{ {} }}",
                chunk.join(", ")
            );
        }
        for chunk in added.chunks(1024) {
            let _ = writeln!(
                s,
                "add element inet {t} slots{n} {{ {} }}",
                chunk.join(", ")
            );
        }
    }

    /// Removes the table.
    pub(crate) fn delete(&self) -> String {
        format!("delete table inet {}\n", self.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(sticky: bool) -> Layout {
        Layout {
            table: "lb_web".into(),
            mode: Mode::SourceHash,
            slots: 7,
            seed: 0x1234,
            port: 80,
            vips: vec!["198.18.100.1".parse().unwrap()],
            sticky: sticky.then_some(Duration::from_secs(300)),
            sticky_capacity: 10_000,
        }
    }

    #[test]
    fn the_skeleton_replaces_only_our_table() {
        let s = layout(false).create();
        assert!(s.starts_with(
            "add table inet lb_web\ndelete table inet lb_web\nadd table inet lb_web\n"
        ));
        assert!(s.contains(
            "add map inet lb_web slots4 { typeof numgen inc mod 7 : ip daddr . tcp dport; }"
        ));
        assert!(s.contains("ip daddr { 198.18.100.1 } tcp dport 80 jump vip4"));
        assert!(!s.contains("slots6"), "no IPv6 listen address, no IPv6 map");
        assert!(
            !s.contains("forward"),
            "no sticky-address, no tracking chain"
        );
    }

    #[test]
    fn slots_rewrite_only_what_changed() {
        let a: SocketAddr = "198.18.1.2:80".parse().unwrap();
        let b: SocketAddr = "198.18.2.2:80".parse().unwrap();
        let mut s = String::new();
        layout(false).slots(
            &mut s,
            Family::V4,
            &[Some(a), Some(b), None],
            &[Some(a), Some(a), Some(b)],
        );
        assert_eq!(
            s,
            "delete element inet lb_web slots4 { 1 }\nadd element inet lb_web slots4 { 1 : 198.18.1.2 . 80, 2 : 198.18.2.2 . 80 }\n"
        );
    }

    #[test]
    fn sticky_hosts_get_a_set_and_two_chains() {
        let l = layout(true);
        let id = BackendId::from_raw(0xab);
        let mut s = String::new();
        l.add_host(&mut s, id, Family::V6);
        l.host_usable(&mut s, id, "[2001:2:0:1::2]:80".parse().unwrap());
        assert!(s.contains("add set inet lb_web s_00000000000000ab { type ipv6_addr; size 10000; flags dynamic,timeout; timeout 300000ms; }"));
        assert!(s.contains("add rule inet lb_web h_00000000000000ab ip6 saddr @s_00000000000000ab meta l4proto tcp dnat ip6 to [2001:2:0:1::2]:80"));
        assert!(s.contains("add rule inet lb_web t_00000000000000ab ip6 daddr 2001:2:0:1::2 tcp dport 80 update @s_00000000000000ab { ip6 saddr }"));
    }
}
