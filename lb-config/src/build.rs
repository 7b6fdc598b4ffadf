//! From a parsed configuration to what runs: host names resolved (through `lb-dns`,
//! the resolver DNS memberships use), checks validated ([`resolve`] or
//! [`resolve_with`] into a [`Plan`]), then tables, monitors and relays started
//! ([`Plan::start`]).
//!
//! As in relayd, health belongs to a relay's service: each `forward to <table>` of
//! each relay gets its own table instance, named `table:port` like relayd's, checked
//! on the port the relay forwards to (the forward's `port`, else the listen port).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use lb_core::{Balancer, HashKey, Host, HostTable, Select};
use lb_health::{Binary, Check, Http, Monitor, Script, SendExpect, Tcp, Tls, TlsOptions};
use lb_policies::{
    Consistent, LeastStates, LoadBalance, PowerOfTwo, Random, RoundRobin, SourceHash, StickyAddress,
};

use crate::diag::{Diagnostic, Report};
use crate::model::{CheckDef, CheckKind, Config, Forward, ListenAddr, Mode, RelayDef};
use crate::Parsed;

/// A configuration with its names resolved and its checks validated: ready to start.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The configuration.
    pub config: Config,
    /// Each table's hosts: (name, address), in order.
    pub hosts: HashMap<String, Vec<(String, IpAddr)>>,
    /// The addresses of each host name a `listen on` line gives.
    pub listen: HashMap<String, Vec<IpAddr>>,
    /// Warnings of the parse, and the files read.
    pub report: Report,
}

/// Resolves host and listen names with the system's resolver (`/etc/resolv.conf` and
/// `/etc/hosts`, through [`lb_dns::Resolver::system`]) and validates checks and
/// tables. A configuration whose hosts are all IP addresses reads no resolver
/// configuration and sends no query.
///
/// # Errors
///
/// The report with an error for each name that does not resolve and each invalid
/// check. A table written without hosts is accepted with a warning saying that relayd
/// refuses it and that its hosts must be added at run time.
pub fn resolve(parsed: Parsed) -> Result<Plan, Report> {
    resolve_names(parsed, None)
}

/// [`resolve`] with a given resolver: the one a program's DNS memberships use, or
/// one pointed at a particular name server. Blocks the calling thread while the
/// lookups run (concurrently, on a thread of their own), from inside a tokio runtime
/// or not.
///
/// ```no_run
/// use lb_config::{parse_str, resolve_with};
/// use lb_dns::Resolver;
///
/// let resolver = Resolver::with_servers(["127.0.0.1:5353".parse()?])?;
/// let parsed = parse_str("web.conf", "table <web> { www.example.com }", &[]).map_err(|r| r.render())?;
/// let plan = resolve_with(parsed, &resolver).map_err(|r| r.render())?;
/// println!("{:?}", plan.hosts["web"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// As [`resolve`]; an error names the host and says what the server answered
/// (`host name www.example.com does not resolve: www.example.com does not exist
/// (NXDOMAIN)`).
pub fn resolve_with(parsed: Parsed, resolver: &lb_dns::Resolver) -> Result<Plan, Report> {
    resolve_names(parsed, Some(resolver))
}

fn resolve_names(parsed: Parsed, resolver: Option<&lb_dns::Resolver>) -> Result<Plan, Report> {
    let Parsed { config, mut report } = parsed;
    let mut names: Vec<&str> = config
        .tables
        .iter()
        .flat_map(|t| t.hosts.iter().map(|h| h.name.as_str()))
        .chain(config.relays.iter().flat_map(|r| {
            r.listen.iter().filter_map(|l| match &l.addr {
                Some(ListenAddr::Name(n)) => Some(n.as_str()),
                _ => None,
            })
        }))
        .collect();
    names.sort_unstable();
    names.dedup();
    let found = lookup_all(&names, resolver);
    let lookup = |name: &str| {
        found
            .get(name)
            .cloned()
            .unwrap_or_else(|| Err(format!("{name} was not looked up")))
    };
    let mut hosts = HashMap::new();
    let mut listen = HashMap::new();
    for table in &config.tables {
        let mut list = Vec::new();
        for h in &table.hosts {
            match lookup(&h.name) {
                Ok(addrs) if addrs.len() == 1 => list.push((h.name.clone(), addrs[0])),
                Ok(addrs) => {
                    list.extend(addrs.into_iter().map(|a| (format!("{} ({a})", h.name), a)))
                }
                Err(e) => report.diagnostics.push(Diagnostic::error(
                    h.span.clone(),
                    format!("host name {} does not resolve: {e}", h.name),
                    "expected an IP address or a name the resolver knows",
                )),
            }
        }
        hosts.insert(table.name.clone(), list);
        if table.hosts.is_empty() {
            report.diagnostics.push(empty_table(table));
        }
    }
    for relay in &config.relays {
        for l in &relay.listen {
            if let Some(ListenAddr::Name(n)) = &l.addr {
                match lookup(n) {
                    Ok(addrs) => {
                        listen.insert(n.clone(), addrs);
                    }
                    Err(e) => report.diagnostics.push(Diagnostic::error(
                        l.span.clone(),
                        format!("listen address {n} does not resolve: {e}"),
                        "expected an IP address, `*` or a resolvable name",
                    )),
                }
            }
        }
        for f in &relay.forwards {
            if let Some(c) = &f.check {
                if let Err(e) = make_check(c) {
                    report.diagnostics.push(Diagnostic::error(
                        c.span.clone(),
                        format!("invalid check: {e}"),
                        "expected a check lb-health accepts",
                    ));
                }
            }
        }
    }
    if report.has_errors() {
        Err(report)
    } else {
        Ok(Plan {
            config,
            hosts,
            listen,
            report,
        })
    }
}

/// The warning for `table <name> { }`. relayd's parser refuses such a table ("table
/// ... has no hosts"); the seed's Halon configuration has one, whose hosts the web
/// interface adds while it runs. lb accepts it: relays forwarding to it start and close
/// every client's connection, as for a table whose hosts are all down, until hosts are
/// added (a reload that lists them, or `RelayHandle::add_host`).
fn empty_table(table: &crate::model::TableDef) -> Diagnostic {
    Diagnostic::warning(
        table.span.clone(),
        format!("table <{}> has no hosts", table.name),
        "relays forwarding here refuse clients until hosts are added",
    )
    .with_note(
        "relayd refuses a table without hosts; lb accepts it for hosts added at run time \
         (a reload that lists them, or the relay's add_host)",
    )
}

/// Each name's addresses, or why it has none. IP address literals need no resolver;
/// the others are looked up together with `resolver`, else with the system's.
fn lookup_all(
    names: &[&str],
    resolver: Option<&lb_dns::Resolver>,
) -> HashMap<String, Result<Vec<IpAddr>, String>> {
    let mut found = HashMap::new();
    let mut to_ask = Vec::new();
    for &name in names {
        match name.parse::<IpAddr>() {
            Ok(ip) => {
                found.insert(name.to_owned(), Ok(vec![ip]));
            }
            Err(_) => to_ask.push(name),
        }
    }
    if to_ask.is_empty() {
        return found;
    }
    let system;
    let resolver = match resolver {
        Some(r) => r,
        None => match lb_dns::Resolver::system() {
            Ok(r) => {
                system = r;
                &system
            }
            Err(e) => {
                for name in to_ask {
                    found.insert(name.to_owned(), Err(e.to_string()));
                }
                return found;
            }
        },
    };
    let answers = resolver.lookup_ip_blocking(&to_ask);
    for (name, answer) in to_ask.into_iter().zip(answers) {
        found.insert(name.to_owned(), answer.map_err(|e| e.to_string()));
    }
    found
}

/// The lb-health check for a `check` line.
pub fn make_check(def: &CheckDef) -> Result<Box<dyn Check>, lb_health::Error> {
    fn http(tls: bool, h: Http, host: &Option<String>) -> Result<Box<dyn Check>, lb_health::Error> {
        let h = match host {
            Some(host) => h.host(host)?,
            None => h,
        };
        Ok(Box::new(if tls { h.tls(TlsOptions::new()) } else { h }))
    }
    Ok(match &def.kind {
        CheckKind::Tcp => Box::new(Tcp),
        CheckKind::Tls => Box::new(Tls::new()),
        CheckKind::HttpCode {
            tls,
            path,
            host,
            code,
        } => http(*tls, Http::code(path, *code)?, host)?,
        CheckKind::HttpDigest {
            tls,
            path,
            host,
            digest,
        } => http(*tls, Http::digest(path, digest)?, host)?,
        CheckKind::SendExpect { send, expect, tls } => {
            let c = if send.is_empty() {
                SendExpect::banner(expect)?
            } else {
                SendExpect::new(send.as_bytes().to_vec(), expect)?
            };
            Box::new(if *tls { c.tls(TlsOptions::new()) } else { c })
        }
        CheckKind::Binary { send, expect, tls } => {
            let c = Binary::new(send, expect)?;
            Box::new(if *tls { c.tls(TlsOptions::new()) } else { c })
        }
        CheckKind::Script(path) => Box::new(Script::new(path)),
    })
}

/// The addresses a relay listens on, grouped by port (one lb relay per port); names
/// take the addresses [`resolve`] found.
pub(crate) fn listen_groups(plan: &Plan, def: &RelayDef) -> Vec<(u16, Vec<IpAddr>)> {
    let mut groups: Vec<(u16, Vec<IpAddr>)> = Vec::new();
    for l in &def.listen {
        let ips = match &l.addr {
            None => vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)],
            Some(ListenAddr::Ip(ip)) => vec![*ip],
            Some(ListenAddr::Name(n)) => plan.listen.get(n).cloned().unwrap_or_default(),
        };
        match groups.iter_mut().find(|(p, _)| *p == l.port) {
            Some((_, v)) => v.extend(
                ips.into_iter()
                    .filter(|ip| !v.contains(ip))
                    .collect::<Vec<_>>(),
            ),
            None => groups.push((l.port, ips)),
        }
    }
    groups
}

/// A table instance for one forward of one relay listening on `port`.
pub(crate) fn make_table(
    plan: &Plan,
    f: &Forward,
    port: u16,
) -> Result<Arc<HostTable<Host>>, lb_core::Error> {
    let backend_port = f.port.unwrap_or(port);
    let hosts = plan.hosts.get(&f.table).cloned().unwrap_or_default();
    // `table <name> { }` is valid here: its hosts come at run time (see `empty_table`).
    let table = HostTable::builder(format!("{}:{backend_port}", f.table))
        .allow_empty()
        .hosts(
            hosts
                .into_iter()
                .map(|(n, ip)| Host::new(n, SocketAddr::new(ip, backend_port))),
        )
        .build()?;
    if plan
        .config
        .tables
        .iter()
        .any(|t| t.name == f.table && t.disabled)
    {
        table.set_admin_all(lb_core::Admin::Disabled);
    }
    Ok(table)
}

/// The balancer of a forward: its mode, key and (relay-wide) stickiness.
pub(crate) fn make_balancer(
    table: &Arc<HostTable<Host>>,
    f: &Forward,
    sticky: bool,
) -> Arc<dyn Select<Host>> {
    let key = f.key.as_ref().and_then(|(k, _)| HashKey::parse(k).ok());
    fn bind<P: lb_core::Policy + 'static>(
        t: &Arc<HostTable<Host>>,
        p: P,
        sticky: bool,
    ) -> Arc<dyn Select<Host>> {
        if sticky {
            Balancer::new(t, StickyAddress::new(p))
        } else {
            Balancer::new(t, p)
        }
    }
    match f.mode {
        Mode::RoundRobin => bind(table, RoundRobin::new(), sticky),
        Mode::Random => bind(table, Random::new(), sticky),
        Mode::LeastStates => bind(table, LeastStates::new(), sticky),
        Mode::PowerOfTwo => bind(table, PowerOfTwo::new(), sticky),
        Mode::SourceHash => bind(
            table,
            key.map(SourceHash::with_key).unwrap_or_default(),
            sticky,
        ),
        Mode::LoadBalance => bind(
            table,
            key.map(LoadBalance::with_key).unwrap_or_default(),
            sticky,
        ),
        Mode::Consistent => {
            let c = Consistent::new();
            bind(
                table,
                match key {
                    Some(k) => c.with_key(k),
                    None => c,
                },
                sticky,
            )
        }
    }
}

/// The monitor of a forward's table, if it has a check.
pub(crate) fn make_monitor(
    plan: &Plan,
    table: &Arc<HostTable<Host>>,
    f: &Forward,
    port: u16,
) -> Result<Option<Monitor>, lb_health::Error> {
    let Some(def) = &f.check else { return Ok(None) };
    let g = &plan.config.globals;
    let retry = plan
        .config
        .tables
        .iter()
        .find(|t| t.name == f.table)
        .and_then(|t| t.hosts.iter().map(|h| h.retry).max())
        .unwrap_or(0);
    let monitor = Monitor::builder(table.clone())
        .check(make_check(def)?)
        .interval(f.interval.unwrap_or(g.interval))
        .timeout(f.timeout.unwrap_or(g.timeout))
        .retry(retry)
        .port(f.port.unwrap_or(port))
        .start()?;
    Ok(Some(monitor))
}
