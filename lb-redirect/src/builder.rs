//! [`RedirectBuilder`]: relayd's `redirect "name" { listen on ... forward to ... }`,
//! checked before anything touches the kernel.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lb_core::{HashKey, Host, IntoTable, Table};

use crate::ruleset::Layout;
use crate::{Error, Mode, Redirect};

/// The default number of slots: a prime; a full table is one transaction of about a
/// quarter second on the development machine, a host going down rewrites its share.
pub const DEFAULT_SLOTS: usize = 4093;

/// Builds a [`Redirect`]. Start one with [`Redirect::builder`].
///
/// Defaults:
/// - backend port: the listen port (relayd's `forward to <table>` without `port`);
/// - mode [`Mode::RoundRobin`] (relayd's default);
/// - no sticky-address; when on, 10 000 sources per host (pf's `src-nodes`);
/// - [`DEFAULT_SLOTS`] slots (4093);
/// - hash key [`HashKey::DEFAULT`] (the Maglev table and the kernel's `jhash` seed);
/// - least-states refresh every second;
/// - the tools `nft` and `conntrack` from `PATH`.
#[must_use = "a builder does nothing until started"]
pub struct RedirectBuilder {
    pub(crate) name: String,
    pub(crate) listen: Vec<IpAddr>,
    pub(crate) port: u16,
    pub(crate) backend_port: Option<u16>,
    pub(crate) table: Option<Arc<dyn Table<Host>>>,
    pub(crate) mode: Mode,
    pub(crate) sticky: Option<Duration>,
    pub(crate) sticky_capacity: usize,
    pub(crate) slots: usize,
    pub(crate) key: HashKey,
    pub(crate) least_states_interval: Duration,
    pub(crate) nft: PathBuf,
    pub(crate) conntrack: PathBuf,
}

impl Redirect {
    /// Starts building a redirect called `name`: letters, digits and `_`, 1 to 32
    /// characters. Its nftables table is `inet lb_<name>`.
    pub fn builder(name: impl Into<String>) -> RedirectBuilder {
        RedirectBuilder {
            name: name.into(),
            listen: Vec::new(),
            port: 0,
            backend_port: None,
            table: None,
            mode: Mode::default(),
            sticky: None,
            sticky_capacity: 10_000,
            slots: DEFAULT_SLOTS,
            key: HashKey::DEFAULT,
            least_states_interval: Duration::from_secs(1),
            nft: PathBuf::from("nft"),
            conntrack: PathBuf::from("conntrack"),
        }
    }
}

impl RedirectBuilder {
    /// Redirects connections to `ip` (the VIP; IPv4 or IPv6, call once per address).
    /// The address need not be local: the redirect rewrites packets routed through
    /// this machine.
    pub fn listen(mut self, ip: IpAddr) -> Self {
        self.listen.push(ip);
        self
    }

    /// The TCP port to redirect (required, 1 to 65535).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Forwards to `table`'s hosts of the VIP's family (IPv4 hosts for IPv4 VIPs).
    pub fn forward_to(mut self, table: impl IntoTable<Host>) -> Self {
        let table = table.into_table();
        self.table = Some(table);
        self
    }

    /// The backends' port (`forward to <table> port P`); the listen port by default.
    pub fn backend_port(mut self, port: u16) -> Self {
        self.backend_port = Some(port);
        self
    }

    /// The mode (see [`Mode`]).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// pf's `sticky-address` with its source-tracking timeout: a client address keeps
    /// the host it was first sent to while its connections carry traffic, plus
    /// `timeout`; its entry goes when the host stops being usable.
    pub fn sticky_address(mut self, timeout: Duration) -> Self {
        self.sticky = Some(timeout);
        self
    }

    /// Sticky sources remembered per host (default 10 000); new sources beyond it are
    /// balanced but not remembered.
    pub fn sticky_capacity(mut self, sources: usize) -> Self {
        self.sticky_capacity = sources;
        self
    }

    /// The number of slots of the kernel's map: a prime from 2 to 65 537. More slots
    /// split weights and failed hosts more finely; each is a map element, so a full
    /// rewrite costs more (measured: 4093 slots 0.27 s, 65 537 slots 2.6 s).
    pub fn slots(mut self, slots: usize) -> Self {
        self.slots = slots;
        self
    }

    /// The hash key of source-hash: the Maglev table and the kernel's `jhash` seed
    /// derive from it, so instances with the same key and hosts agree.
    pub fn hash_key(mut self, key: HashKey) -> Self {
        self.key = key;
        self
    }

    /// How often least-states reads the state counts and refills the slots.
    pub fn least_states_interval(mut self, interval: Duration) -> Self {
        self.least_states_interval = interval;
        self
    }

    /// Where the `nft` tool is (default: `nft` from `PATH`).
    pub fn nft_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.nft = path.into();
        self
    }

    /// Where the `conntrack` tool is (least-states; default: `conntrack` from `PATH`).
    pub fn conntrack_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.conntrack = path.into();
        self
    }

    /// Checks the settings and builds the table's layout.
    pub(crate) fn layout(&self) -> Result<Layout, Error> {
        let invalid = |setting, expected: String| Err(Error::InvalidSetting { setting, expected });
        if self.name.is_empty()
            || self.name.len() > 32
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return invalid(
                "name",
                format!("1 to 32 letters, digits or '_', got {:?}", self.name),
            );
        }
        if self.listen.is_empty() {
            return invalid("listen", "at least one address".into());
        }
        if self.table.is_none() {
            return invalid("forward_to", "a table".into());
        }
        if self.port == 0 || self.backend_port == Some(0) {
            return invalid("port", "a port from 1 to 65535, got 0".into());
        }
        if !(2..=65_537).contains(&self.slots) || !is_prime(self.slots) {
            return invalid(
                "slots",
                format!("a prime from 2 to 65537, got {}", self.slots),
            );
        }
        if self.sticky.is_some_and(|t| t.is_zero()) || self.sticky_capacity == 0 {
            return invalid(
                "sticky_address",
                "a timeout above 0 and a capacity above 0".into(),
            );
        }
        if self.least_states_interval.is_zero() {
            return invalid("least_states_interval", "an interval above 0".into());
        }
        // The kernel's jhash takes a 32-bit seed: drawn from the key, so that it changes
        // with it and instances with one key agree.
        let seed = lb_core::siphash24(&self.key, b"lb redirect jhash seed") as u32;
        let mut vips = self.listen.clone();
        vips.sort();
        vips.dedup();
        Ok(Layout {
            table: format!("lb_{}", self.name),
            mode: self.mode,
            slots: self.slots,
            seed,
            port: self.port,
            vips,
            sticky: self.sticky,
            sticky_capacity: self.sticky_capacity,
        })
    }

    /// Creates the nftables table (replacing a leftover one of the same name) with the
    /// table's current hosts, in one transaction, and keeps it in sync from then on.
    ///
    /// The redirect works in the network namespace of the calling thread: its worker
    /// thread, which runs every `nft` transaction, is started from it.
    pub fn start(self) -> Result<Redirect, Error> {
        let layout = self.layout()?;
        let Some(table) = self.table.clone() else {
            return Err(Error::InvalidSetting {
                setting: "forward_to",
                expected: "a table".into(),
            });
        };
        Redirect::start(self, layout, table)
    }
}

fn is_prime(n: usize) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> RedirectBuilder {
        Redirect::builder("web")
            .listen("198.18.100.1".parse().unwrap())
            .port(80)
    }

    #[test]
    fn a_missing_nft_is_named() {
        let table =
            lb_core::HostTable::new("t", [Host::new("s1", "198.18.1.2:80".parse().unwrap())])
                .unwrap();
        match valid()
            .forward_to(table.clone())
            .nft_path("/nonexistent/nft")
            .start()
        {
            Err(Error::NftMissing { path }) => assert_eq!(path, PathBuf::from("/nonexistent/nft")),
            other => panic!("expected NftMissing, got {other:?}"),
        }
        assert_eq!(
            table.listener_count(),
            0,
            "a failed start leaves no listener"
        );
    }

    #[test]
    fn settings_are_checked() {
        let setting = |b: RedirectBuilder| match b.layout() {
            Err(Error::InvalidSetting { setting, .. }) => setting,
            other => panic!("expected an invalid setting, got {other:?}"),
        };
        let t = lb_core::HostTable::new("t", [Host::new("s1", "198.18.1.2:80".parse().unwrap())])
            .unwrap();
        let valid = || valid().forward_to(t.clone());
        assert_eq!(setting(Redirect::builder("web").port(80)), "listen");
        assert_eq!(setting(valid().port(0)), "port");
        assert_eq!(setting(valid().slots(4096)), "slots");
        assert_eq!(
            setting(
                Redirect::builder("a-b")
                    .listen("::1".parse().unwrap())
                    .port(1)
            ),
            "name"
        );
        assert_eq!(
            setting(valid().sticky_address(Duration::ZERO)),
            "sticky_address"
        );
        assert_eq!(setting(super::tests::valid()), "forward_to");
        let layout = valid().slots(65_537).layout().unwrap();
        assert_eq!((layout.table.as_str(), layout.slots), ("lb_web", 65_537));
    }
}
