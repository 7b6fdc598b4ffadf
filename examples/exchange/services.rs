//! The eight relays of the seed configuration (the Halon guide's "resulting
//! configuration"), their ports, and the protocol each one carries.

/// What a relay carries, which decides the demo server's behaviour, the demo client
/// and the health check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Outlook Web App over HTTPS.
    Https,
    /// POP3 (RFC 1939).
    Pop3,
    /// POP3 inside TLS.
    Pop3s,
    /// IMAP (RFC 3501).
    Imap,
    /// IMAP inside TLS.
    Imaps,
    /// Exchange's RPC ports (endpoint mapper, CAS and address book): DCE/RPC, which
    /// the demo servers stand in for with a banner line and an echo.
    Rpc,
}

impl Protocol {
    /// Whether the service runs inside TLS.
    pub fn tls(self) -> bool {
        matches!(self, Protocol::Https | Protocol::Pop3s | Protocol::Imaps)
    }

    /// The program that serves this protocol on a server.
    pub fn daemon(self) -> Daemon {
        match self {
            Protocol::Https => Daemon::Web,
            Protocol::Pop3 | Protocol::Pop3s => Daemon::Pop3,
            Protocol::Imap | Protocol::Imaps => Daemon::Imap4,
            Protocol::Rpc => Daemon::Rpc,
        }
    }
}

/// The program behind a group of ports, which an administrator starts and stops as
/// one: on Exchange 2010 the "Microsoft Exchange POP3" Windows service listens on 110
/// and 995, and it is installed stopped (so is IMAP4's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Daemon {
    /// IIS: HTTPS with OWA.
    Web,
    /// Microsoft Exchange POP3: POP3 and POP3S.
    Pop3,
    /// Microsoft Exchange IMAP4: IMAP and IMAPS.
    Imap4,
    /// The RPC endpoint mapper, RPC Client Access and the address book.
    Rpc,
}

/// Every daemon with the name the console command takes.
pub const DAEMONS: [(Daemon, &str); 4] = [
    (Daemon::Web, "https"),
    (Daemon::Pop3, "pop3"),
    (Daemon::Imap4, "imap"),
    (Daemon::Rpc, "rpc"),
];

impl Daemon {
    /// The daemon called `name` (`https`, `pop3`, `imap`, `rpc`), any case.
    pub fn named(name: &str) -> Option<Daemon> {
        DAEMONS
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(d, _)| *d)
    }

    /// Its short name: `POP3`, `IMAP4`, `HTTPS`, `RPC`.
    pub fn label(self) -> &'static str {
        match self {
            Daemon::Web => "HTTPS",
            Daemon::Pop3 => "POP3",
            Daemon::Imap4 => "IMAP4",
            Daemon::Rpc => "RPC",
        }
    }

    /// Its name for people, with the relays it serves.
    pub fn describe(self) -> String {
        let relays: Vec<&str> = SERVICES
            .iter()
            .filter(|s| s.protocol.daemon() == self)
            .map(|s| s.relay)
            .collect();
        let name = match self {
            Daemon::Web => "web service (IIS)",
            Daemon::Pop3 => "POP3 service",
            Daemon::Imap4 => "IMAP4 service",
            Daemon::Rpc => "RPC services",
        };
        format!("{name} (relays {})", relays.join(", "))
    }
}

/// One `relay "name" { listen on port P; forward to <exchange> ... }` block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Service {
    /// The relay's name in the seed.
    pub relay: &'static str,
    /// The port in the seed.
    pub seed_port: u16,
    /// What it carries.
    pub protocol: Protocol,
}

/// The seed's relays, in its order.
pub const SERVICES: [Service; 8] = [
    Service::new("exchangeHTTPS", 443, Protocol::Https),
    Service::new("POP3", 110, Protocol::Pop3),
    Service::new("POP3S", 995, Protocol::Pop3s),
    Service::new("IMAP", 143, Protocol::Imap),
    Service::new("IMAPS", 993, Protocol::Imaps),
    Service::new("RPCLS", 135, Protocol::Rpc),
    Service::new("RPCCAS", 59532, Protocol::Rpc),
    Service::new("RPCABS", 59533, Protocol::Rpc),
];

/// How far ports below 1024 move so that an unprivileged user can bind them.
pub const PORT_SHIFT: u16 = 10_000;

impl Service {
    const fn new(relay: &'static str, seed_port: u16, protocol: Protocol) -> Self {
        Service {
            relay,
            seed_port,
            protocol,
        }
    }

    /// The port the relay listens on: the seed's with `--real-ports`, else ports below
    /// 1024 moved up by [`PORT_SHIFT`] (443 -> 10443); 59532 and 59533 stay.
    pub fn listen_port(&self, real_ports: bool) -> u16 {
        if real_ports || self.seed_port >= 1024 {
            self.seed_port
        } else {
            self.seed_port + PORT_SHIFT
        }
    }
}
