//! The typed model of a configuration: what the file says, checked for syntax and
//! ranges, with the place each item was written. Nothing is resolved or bound yet
//! (that is [`build`](crate::build)).

use std::net::IpAddr;
use std::time::Duration;

use crate::diag::Span;

/// relayd's default check interval (`interval`).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// relayd's default check timeout (`timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(200);
/// relayd's default `session timeout`.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(600);

/// A whole configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Global settings.
    pub globals: Globals,
    /// `table <name> { ... }` definitions, in order.
    pub tables: Vec<TableDef>,
    /// `protocol` definitions (TCP only).
    pub protocols: Vec<ProtocolDef>,
    /// `relay` and `redirect` blocks, in order.
    pub relays: Vec<RelayDef>,
}

/// The global settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Globals {
    /// `interval N` (seconds): between two checks of a host.
    pub interval: Duration,
    /// `timeout N` (milliseconds): the whole check.
    pub timeout: Duration,
    /// `log state changes` (relayd's `log updates`).
    pub log_state_changes: bool,
    /// `log connection` (relayd's `log all`).
    pub log_connections: bool,
}

impl Default for Globals {
    fn default() -> Self {
        Globals {
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            log_state_changes: false,
            log_connections: false,
        }
    }
}

/// `table <name> [disable] { host [retry N], ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct TableDef {
    /// The name between `<` and `>`.
    pub name: String,
    /// Where the table was defined.
    pub span: Span,
    /// `disable`: every host starts disabled.
    pub disabled: bool,
    /// The hosts, in order (may be empty).
    pub hosts: Vec<HostDef>,
}

/// One host of a table.
#[derive(Clone, Debug, PartialEq)]
pub struct HostDef {
    /// An IP address or a host name, as written (after macro expansion).
    pub name: String,
    /// Where it was written.
    pub span: Span,
    /// `retry N`: failures absorbed before the host goes down.
    pub retry: u32,
}

/// `tcp protocol NAME { tcp { ... } }` (or `protocol NAME`).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ProtocolDef {
    /// Its name.
    pub name: String,
    /// Where it was defined.
    pub span: Span,
    /// `tcp nodelay` / `tcp no nodelay` (unset: lb's default, on).
    pub nodelay: Option<bool>,
    /// `tcp backlog N`.
    pub backlog: Option<u32>,
    /// `tcp socket buffer N`: both `SO_SNDBUF` and `SO_RCVBUF`.
    pub socket_buffer: Option<u32>,
    /// `tcp splice` / `tcp no splice`.
    pub splice: Option<bool>,
}

impl Default for Span {
    fn default() -> Self {
        Span::new(0, 0..0)
    }
}

/// Whether a block was a `relay` or a `redirect` (layer 3 on Linux where it can, else
/// a relay: see [`redirect`](crate::redirect)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayKind {
    /// `relay NAME { ... }`.
    Relay,
    /// `redirect NAME { ... }`: pf's layer 3 in relayd; nftables on Linux, or a layer-4
    /// relay.
    Redirect,
}

/// `relay NAME { ... }` or `redirect NAME { ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct RelayDef {
    /// Its name.
    pub name: String,
    /// Where it was defined (the name).
    pub span: Span,
    /// Relay or redirect.
    pub kind: RelayKind,
    /// `listen on ...` lines.
    pub listen: Vec<Listen>,
    /// `forward to` lines: the first is the main table, the others backups.
    pub forwards: Vec<Forward>,
    /// `session timeout N` (seconds).
    pub session_timeout: Duration,
    /// `protocol NAME`, and where.
    pub protocol: Option<(String, Span)>,
    /// `disable`.
    pub disabled: bool,
    /// `sticky-address` (pf's, for redirects; here for relays too).
    pub sticky: bool,
}

/// `listen on ADDR|* [port P]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Listen {
    /// The address: `None` for `*` or no address (Halon's `listen on port P`): every IPv4
    /// address. A host name is resolved when building.
    pub addr: Option<ListenAddr>,
    /// The port.
    pub port: u16,
    /// Where.
    pub span: Span,
}

/// An address to listen on.
#[derive(Clone, Debug, PartialEq)]
pub enum ListenAddr {
    /// An IP address.
    Ip(IpAddr),
    /// A name, resolved when building.
    Name(String),
}

/// `forward to <table> [port P] [mode M ["key"]] [check ...] [interval N] [timeout N]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Forward {
    /// The table's name.
    pub table: String,
    /// Where (the table reference).
    pub span: Span,
    /// `port P`: connect to this port (default: the port the client connected to).
    pub port: Option<u16>,
    /// `mode M`.
    pub mode: Mode,
    /// The hash key after the mode, and where.
    pub key: Option<(String, Span)>,
    /// `check ...`; `None`: no active check (passive health only).
    pub check: Option<CheckDef>,
    /// `interval N` (seconds) for this forward's checks.
    pub interval: Option<Duration>,
    /// `timeout N` (milliseconds) for this forward's checks.
    pub timeout: Option<Duration>,
}

/// A balancing mode, with relayd's spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// `roundrobin` (the default).
    #[default]
    RoundRobin,
    /// `random`.
    Random,
    /// `source-hash`: relayd's algorithm.
    SourceHash,
    /// `loadbalance`: source and listen address.
    LoadBalance,
    /// `least-states`.
    LeastStates,
    /// `consistent` (ours): Maglev consistent hashing of the source.
    Consistent,
    /// `p2c` (ours): power of two choices.
    PowerOfTwo,
}

impl Mode {
    /// Every mode with its spelling.
    pub const ALL: [(&'static str, Mode); 7] = [
        ("roundrobin", Mode::RoundRobin),
        ("random", Mode::Random),
        ("source-hash", Mode::SourceHash),
        ("loadbalance", Mode::LoadBalance),
        ("least-states", Mode::LeastStates),
        ("consistent", Mode::Consistent),
        ("p2c", Mode::PowerOfTwo),
    ];

    /// Whether the mode takes a hash key.
    pub fn takes_key(self) -> bool {
        matches!(
            self,
            Mode::SourceHash | Mode::LoadBalance | Mode::Consistent
        )
    }
}

/// `check ...`, with relayd's spelling.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckDef {
    /// Which check.
    pub kind: CheckKind,
    /// Where.
    pub span: Span,
}

/// The checks.
#[derive(Clone, Debug, PartialEq)]
pub enum CheckKind {
    /// `check tcp`.
    Tcp,
    /// `check tls` (or relayd's older `check ssl`).
    Tls,
    /// `check http|https "path" [host "H"] code N`.
    HttpCode {
        /// `https`.
        tls: bool,
        /// The path.
        path: String,
        /// `host H`.
        host: Option<String>,
        /// The expected status.
        code: u16,
    },
    /// `check http|https "path" [host "H"] digest "D"`.
    HttpDigest {
        /// `https`.
        tls: bool,
        /// The path.
        path: String,
        /// `host H`.
        host: Option<String>,
        /// SHA-1 or MD5, hex.
        digest: String,
    },
    /// `check send "data"|nothing expect "glob" [tls]`.
    SendExpect {
        /// What to send (empty: `nothing`).
        send: String,
        /// The glob.
        expect: String,
        /// Over TLS.
        tls: bool,
    },
    /// `check binary send "HEX" expect "HEX" [tls]`.
    Binary {
        /// Hex to send.
        send: String,
        /// Hex expected.
        expect: String,
        /// Over TLS.
        tls: bool,
    },
    /// `check script "path"`.
    Script(String),
}
