//! The command line, parsed by hand: a dozen flags do not need a parser crate, and
//! every mistake gets a message that says what was expected.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};

use crate::modes::Mode;

/// The help text of `--help`.
pub const HELP: &str = "\
lb exchange example: relayd's Exchange 2010 configuration as an lb program

USAGE:
    cargo run --example exchange -- [OPTIONS]

With no options: starts two demo Exchange servers on 127.0.0.2 and 127.0.0.3, the
eight relays of the configuration on 127.0.0.1 (ports below 1024 moved up by 10000),
runs a short demonstration, then serves until Ctrl-C.

OPTIONS:
    --mode NAME         balancing mode (default: consistent):
                          consistent    our source-hash: consistent hashing (Maglev)
                          source-hash   relayd's source-hash, bit for bit
                          loadbalance   relayd's loadbalance (client IP + listen address)
                          roundrobin    relayd's default mode
                          random        uniform over the usable hosts
                          least-states  fewest active sessions
                          p2c           power of two choices (less loaded of two)
                          sticky-MODE   pf's sticky-address over MODE (sticky-roundrobin,
                                        sticky-least-states, ...); sticky-address is
                                        sticky-roundrobin
    --affinity KIND     what a health check takes out of service (default: service):
                          service   each relay has its own table of the servers,
                                    checked on that relay's port (relayd's way): a
                                    server whose POP3 is stopped leaves the POP3
                                    relays only; OWA, IMAP and RPC still use it
                          server    one table shared by all eight relays, a server
                                    up only while all eight services answer: a
                                    client's sessions stay on one server, but one
                                    stopped service takes the whole server out
    --check KIND        health checks: `protocol` (default: https, POP3/IMAP banners,
                        tcp for RPC) or `tcp` (relayd's `check tcp` everywhere)
    --listen ADDR       the relays' listen address (default: 127.0.0.1)
    --real-ports        listen on the configuration's own ports (443, 110, ...): needs
                        root or CAP_NET_BIND_SERVICE
    --backend ADDR      balance this Exchange server (IP address or host name) instead
                        of the demo servers; repeat for each server. Relays connect to
                        each service's standard port (443, 110, 995, ...)
    --exit-after-demo   exit after the demonstration: status 0 if every expectation
                        held, 1 otherwise
    -h, --help          print this text

Set RUST_LOG (e.g. RUST_LOG=info) to see the library's tracing events on stderr.
";

/// Which health checks to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckKind {
    /// Protocol-aware checks where they tell more than a connect.
    Protocol,
    /// relayd's `check tcp` on every port, as in the seed configuration.
    Tcp,
}

/// What a failed health check takes out of service (`--affinity`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Affinity {
    /// The service: one table per relay, checked on the relay's port (relayd's
    /// semantics, the default).
    Service,
    /// The whole server: one table for all relays, up only while every service answers.
    Server,
}

impl fmt::Display for Affinity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Affinity::Service => "service",
            Affinity::Server => "server",
        })
    }
}

/// A real Exchange server given with `--backend`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    /// As given on the command line (the host's name in the table).
    pub name: String,
    /// The address it resolved to.
    pub ip: IpAddr,
}

/// What the user asked for.
#[derive(Clone, Debug)]
pub struct Options {
    /// The balancing mode.
    pub mode: Mode,
    /// The health checks.
    pub check: CheckKind,
    /// What a failed check takes out of service.
    pub affinity: Affinity,
    /// Where the relays listen.
    pub listen: IpAddr,
    /// Use the configuration's ports instead of moving those below 1024.
    pub real_ports: bool,
    /// Real servers; empty means the demo servers.
    pub backends: Vec<Backend>,
    /// End after the demonstration.
    pub exit_after_demo: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode::default(),
            check: CheckKind::Protocol,
            affinity: Affinity::Service,
            listen: IpAddr::V4(Ipv4Addr::LOCALHOST),
            real_ports: false,
            backends: Vec::new(),
            exit_after_demo: false,
        }
    }
}

/// The parsed command line.
#[derive(Debug)]
pub enum Command {
    /// Run with these options.
    Run(Options),
    /// Print [`HELP`].
    Help,
}

/// A command line that cannot work.
#[derive(Debug, PartialEq, Eq)]
pub enum ArgError {
    /// A flag we do not know.
    Unknown(String),
    /// A flag that needs a value got none.
    MissingValue(&'static str),
    /// A flag's value is not what it should be.
    BadValue {
        flag: &'static str,
        value: String,
        expected: String,
    },
    /// Two options that cannot go together.
    Conflict(String),
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::Unknown(arg) => write!(f, "unknown argument `{arg}` (see --help)"),
            ArgError::MissingValue(flag) => write!(f, "{flag} needs a value (see --help)"),
            ArgError::BadValue {
                flag,
                value,
                expected,
            } => write!(f, "{flag} {value:?}: expected {expected}"),
            ArgError::Conflict(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ArgError {}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, ArgError> {
    let mut options = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // `--flag=value` and `--flag value` both work.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &'static str| match inline.clone() {
            Some(v) => Ok(v),
            None => args.next().ok_or(ArgError::MissingValue(name)),
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--mode" => {
                let v = value("--mode")?;
                options.mode = v.parse().map_err(|expected| ArgError::BadValue {
                    flag: "--mode",
                    value: v,
                    expected,
                })?;
            }
            "--check" => {
                let v = value("--check")?;
                options.check = match v.as_str() {
                    "protocol" => CheckKind::Protocol,
                    "tcp" => CheckKind::Tcp,
                    _ => {
                        return Err(ArgError::BadValue {
                            flag: "--check",
                            value: v,
                            expected: "`protocol` or `tcp`".into(),
                        })
                    }
                };
            }
            "--affinity" => {
                let v = value("--affinity")?;
                options.affinity = match v.as_str() {
                    "service" => Affinity::Service,
                    "server" => Affinity::Server,
                    _ => {
                        return Err(ArgError::BadValue {
                            flag: "--affinity",
                            value: v,
                            expected: "`service` (one health state per relay) or `server` \
                                       (one per server, for all relays)"
                                .into(),
                        })
                    }
                };
            }
            "--listen" => {
                let v = value("--listen")?;
                options.listen = v.parse().map_err(|_| ArgError::BadValue {
                    flag: "--listen",
                    value: v,
                    expected: "an IP address such as 127.0.0.1, 0.0.0.0 or ::1".into(),
                })?;
            }
            "--backend" => {
                let v = value("--backend")?;
                options.backends.push(backend(&v)?);
            }
            "--real-ports" if inline.is_none() => options.real_ports = true,
            "--exit-after-demo" if inline.is_none() => options.exit_after_demo = true,
            _ => return Err(ArgError::Unknown(arg)),
        }
    }
    validate(&options)?;
    Ok(Command::Run(options))
}

/// Resolves a `--backend` value: an IP address, or a host name looked up now.
fn backend(value: &str) -> Result<Backend, ArgError> {
    let bad = |expected: &str| ArgError::BadValue {
        flag: "--backend",
        value: value.to_owned(),
        expected: expected.to_owned(),
    };
    if value.is_empty() {
        return Err(bad("an IP address or a host name"));
    }
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Ok(Backend {
            name: value.to_owned(),
            ip,
        });
    }
    if value.parse::<std::net::SocketAddr>().is_ok() || value.rsplit_once(':').is_some() {
        return Err(bad(
            "an address without a port: the relays connect to each service's own port",
        ));
    }
    let ip = (value, 0)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .map(|a| a.ip())
        .ok_or_else(|| bad("an IP address or a host name that resolves"))?;
    Ok(Backend {
        name: value.to_owned(),
        ip,
    })
}

fn validate(options: &Options) -> Result<(), ArgError> {
    for (i, b) in options.backends.iter().enumerate() {
        if options.backends[..i].iter().any(|o| o.ip == b.ip) {
            return Err(ArgError::Conflict(format!(
                "--backend {} is given twice (as {}): each server may appear once",
                b.name, b.ip
            )));
        }
    }
    if options.backends.is_empty() {
        if options.listen.is_ipv6() {
            return Err(ArgError::Conflict(format!(
                "--listen {}: the demonstration's clients come from 20 IPv4 loopback \
                 addresses (127.0.0.10 to 127.0.0.29), and IPv6 has only one (::1); \
                 give an IPv4 address",
                options.listen
            )));
        }
        let demo = crate::demo_servers::ADDRESSES;
        if options.listen.is_unspecified() || demo.contains(&options.listen) {
            return Err(ArgError::Conflict(format!(
                "--listen {}: the demo servers listen on 127.0.0.2 and 127.0.0.3 on the \
                 relays' ports, so the relays need another specific address \
                 (127.0.0.1, the default, or any other address of this machine)",
                options.listen
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Options, ArgError> {
        match parse(args.iter().map(|s| s.to_string()))? {
            Command::Run(o) => Ok(o),
            Command::Help => panic!("help"),
        }
    }

    #[test]
    fn flags() {
        let o = run(&[
            "--mode",
            "source-hash",
            "--listen=127.0.0.5",
            "--real-ports",
        ])
        .unwrap();
        assert_eq!(o.mode.to_string(), "source-hash");
        assert_eq!(o.listen, "127.0.0.5".parse::<IpAddr>().unwrap());
        assert!(o.real_ports);
        assert_eq!(o.affinity, Affinity::Service);
        assert_eq!(
            run(&["--affinity", "server"]).unwrap().affinity,
            Affinity::Server
        );
        assert_eq!(
            run(&["--affinity=service"]).unwrap().affinity,
            Affinity::Service
        );
        assert!(matches!(
            run(&["--affinity", "host"]),
            Err(ArgError::BadValue {
                flag: "--affinity",
                ..
            })
        ));
        assert_eq!(
            run(&["--bogus"]).unwrap_err(),
            ArgError::Unknown("--bogus".into())
        );
        assert_eq!(
            run(&["--mode"]).unwrap_err(),
            ArgError::MissingValue("--mode")
        );
        assert!(run(&["--listen", "0.0.0.0"]).is_err());
        assert!(run(&["--listen", "::1"]).is_err());
        assert!(run(&["--listen", "::1", "--backend", "192.0.2.1"]).is_ok());
        assert!(run(&["--backend", "10.0.0.1:443"]).is_err());
        assert!(run(&["--backend", "10.0.0.1", "--backend", "10.0.0.1"]).is_err());
    }
}
