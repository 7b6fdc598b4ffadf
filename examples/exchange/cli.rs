//! The command line, parsed by `clap` (derive); the help text is written out by hand
//! ([`HELP`]) because it explains the modes and affinities at more length than doc
//! comments would.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, ValueEnum};

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
    --config FILE       build the relays from a relayd.conf file instead of code
                        (lb-config, as `cargo run --example relayd -- -f FILE`), e.g.
                        examples/exchange/exchange.conf. The demo servers start as
                        usual and the file's macros are overridden so that its relays
                        listen where the demonstration expects and forward to the demo
                        servers: ext_addr (--listen), exchange1 and exchange2 (the
                        demo servers), https, pop3, pop3s, imap, imaps, rpcls, rpccas,
                        rpcabs (the ports). The mode, the checks and one table per
                        relay come from the file, so --mode, --check, --affinity and
                        --backend cannot go with it; the demonstration checks every
                        1 s instead of the file's interval, so that it stays short
    -h, --help          print this text

Set RUST_LOG (e.g. RUST_LOG=info) to see the library's tracing events on stderr.
";

/// Which health checks to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CheckKind {
    /// Protocol-aware checks where they tell more than a connect.
    Protocol,
    /// relayd's `check tcp` on every port, as in the seed configuration.
    Tcp,
}

/// What a failed health check takes out of service (`--affinity`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
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
#[derive(Clone, Debug, Parser)]
#[command(name = "exchange", override_help = HELP, disable_version_flag = true)]
pub struct Options {
    /// The balancing mode.
    #[arg(long, value_name = "NAME", default_value = "consistent", value_parser = mode)]
    pub mode: Mode,
    /// The health checks.
    #[arg(long, value_name = "KIND", value_enum, default_value_t = CheckKind::Protocol)]
    pub check: CheckKind,
    /// What a failed check takes out of service.
    #[arg(long, value_name = "KIND", value_enum, default_value_t = Affinity::Service)]
    pub affinity: Affinity,
    /// Where the relays listen.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1", value_parser = listen)]
    pub listen: IpAddr,
    /// Use the configuration's ports instead of moving those below 1024.
    #[arg(long)]
    pub real_ports: bool,
    /// Real servers; empty means the demo servers.
    #[arg(long = "backend", value_name = "ADDR", value_parser = backend)]
    pub backends: Vec<Backend>,
    /// A relayd.conf to build the relays from, instead of code.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["mode", "check", "affinity", "backends"]
    )]
    pub config: Option<PathBuf>,
    /// End after the demonstration.
    #[arg(long)]
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
            config: None,
            exit_after_demo: false,
        }
    }
}

/// Parses the arguments after the program name. `--help` is an error of kind
/// [`ErrorKind::DisplayHelp`] whose text is [`HELP`] (clap's way: `print` it, exit 0).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, clap::Error> {
    let argv = std::iter::once("exchange".to_owned()).chain(args);
    let options = Options::try_parse_from(argv)?;
    validate(&options).map_err(|why| Options::command().error(ErrorKind::ArgumentConflict, why))?;
    Ok(options)
}

/// `--mode`'s value.
fn mode(value: &str) -> Result<Mode, String> {
    value
        .parse()
        .map_err(|expected| format!("expected {expected}"))
}

/// `--listen`'s value.
fn listen(value: &str) -> Result<IpAddr, String> {
    value
        .parse()
        .map_err(|_| "expected an IP address such as 127.0.0.1, 0.0.0.0 or ::1".to_owned())
}

/// Resolves a `--backend` value: an IP address, or a host name looked up now.
fn backend(value: &str) -> Result<Backend, String> {
    if value.is_empty() {
        return Err("expected an IP address or a host name".into());
    }
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Ok(Backend {
            name: value.to_owned(),
            ip,
        });
    }
    if value.parse::<std::net::SocketAddr>().is_ok() || value.rsplit_once(':').is_some() {
        return Err(
            "expected an address without a port: the relays connect to each service's own port"
                .into(),
        );
    }
    let ip = (value, 0)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .map(|a| a.ip())
        .ok_or("expected an IP address or a host name that resolves")?;
    Ok(Backend {
        name: value.to_owned(),
        ip,
    })
}

/// The checks between options that clap's attributes cannot express.
fn validate(options: &Options) -> Result<(), String> {
    for (i, b) in options.backends.iter().enumerate() {
        if options.backends[..i].iter().any(|o| o.ip == b.ip) {
            return Err(format!(
                "--backend {} is given twice (as {}): each server may appear once",
                b.name, b.ip
            ));
        }
    }
    if options.backends.is_empty() {
        if options.listen.is_ipv6() {
            return Err(format!(
                "--listen {}: the demonstration's clients come from 20 IPv4 loopback \
                 addresses (127.0.0.10 to 127.0.0.29), and IPv6 has only one (::1); \
                 give an IPv4 address",
                options.listen
            ));
        }
        let demo = crate::demo_servers::ADDRESSES;
        if options.listen.is_unspecified() || demo.contains(&options.listen) {
            return Err(format!(
                "--listen {}: the demo servers listen on 127.0.0.2 and 127.0.0.3 on the \
                 relays' ports, so the relays need another specific address \
                 (127.0.0.1, the default, or any other address of this machine)",
                options.listen
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::{ContextKind, ContextValue};

    fn run(args: &[&str]) -> Result<Options, clap::Error> {
        parse(args.iter().map(|s| s.to_string()))
    }

    /// The kind of a refused command line, and the flag it names.
    fn refused(args: &[&str]) -> (ErrorKind, Option<String>) {
        let e = run(args).expect_err("refused");
        let arg = match e.get(ContextKind::InvalidArg) {
            Some(ContextValue::String(s)) => Some(s.clone()),
            _ => None,
        };
        (e.kind(), arg)
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
        assert_eq!(o.check, CheckKind::Protocol);
        assert_eq!(run(&[]).unwrap().mode, Mode::default());
        assert_eq!(
            run(&["--affinity", "server"]).unwrap().affinity,
            Affinity::Server
        );
        assert_eq!(
            run(&["--affinity=service"]).unwrap().affinity,
            Affinity::Service
        );
        assert_eq!(run(&["--check", "tcp"]).unwrap().check, CheckKind::Tcp);
        let (kind, arg) = refused(&["--affinity", "host"]);
        assert_eq!(kind, ErrorKind::InvalidValue);
        assert_eq!(arg.as_deref(), Some("--affinity <KIND>"));
        let (kind, arg) = refused(&["--bogus"]);
        assert_eq!(kind, ErrorKind::UnknownArgument);
        assert_eq!(arg.as_deref(), Some("--bogus"));
        let (kind, arg) = refused(&["--mode"]);
        assert_eq!(kind, ErrorKind::InvalidValue);
        assert_eq!(arg.as_deref(), Some("--mode <NAME>"));
        let (kind, arg) = refused(&["--mode", "fastest"]);
        assert_eq!(kind, ErrorKind::ValueValidation);
        assert_eq!(arg.as_deref(), Some("--mode <NAME>"));
        assert_eq!(refused(&["--real-ports=yes"]).0, ErrorKind::TooManyValues);
        assert!(run(&["--listen", "0.0.0.0"]).is_err());
        assert!(run(&["--listen", "::1"]).is_err());
        assert!(run(&["--listen", "::1", "--backend", "192.0.2.1"]).is_ok());
        assert!(run(&["--backend", "10.0.0.1:443"]).is_err());
        assert!(run(&["--backend", "10.0.0.1", "--backend", "10.0.0.1"]).is_err());
    }

    #[test]
    fn help_is_the_written_text() {
        let e = run(&["--help"]).expect_err("help is clap's early exit");
        assert_eq!(e.kind(), ErrorKind::DisplayHelp);
        assert_eq!(e.render().to_string(), HELP);
        assert_eq!(
            run(&["-h"]).expect_err("help").kind(),
            ErrorKind::DisplayHelp
        );
    }

    #[test]
    fn config_flag() {
        let o = run(&["--config", "examples/exchange/exchange.conf"]).unwrap();
        assert_eq!(
            o.config.as_deref(),
            Some(std::path::Path::new("examples/exchange/exchange.conf"))
        );
        assert_eq!(run(&[]).unwrap().config, None);
        for other in [
            &["--mode", "p2c"][..],
            &["--check", "tcp"],
            &["--affinity", "server"],
            &["--backend", "192.0.2.1"],
        ] {
            let mut args = vec!["--config", "x.conf"];
            args.extend_from_slice(other);
            assert_eq!(refused(&args).0, ErrorKind::ArgumentConflict, "{other:?}");
        }
    }
}
