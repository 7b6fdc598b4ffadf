//! `--config FILE`: the eight relays built from a relayd.conf by lb-config
//! ([`lb::config`]) instead of by [`Exchange::start`], then run through the same
//! demonstration.
//!
//! The file's macros are overridden (as `-D name=value` does for the relayd example)
//! so that its relays listen where the demonstration expects and forward to the demo
//! servers. lb-config gives each relay its own table per `forward to` (named
//! `exchange:PORT`, as relayctl does), which is this example's default
//! `--affinity service`; the mode and the checks are the file's. Two things are the
//! demonstration's rather than the file's, and the output says so: the check schedule
//! (every second, `retry 1`, timeout 500 ms instead of relayd's 10 s), so that the
//! demonstration stays short; and the hosts' names (the file names a host by its
//! address, the demonstration by the demo server at that address).

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use lb::config::model::{CheckKind as FileCheck, Mode as FileMode};
use lb::config::{parse_file, resolve, Plan, Running};
use lb::health::HostEvent;
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::cli::{CheckKind, Options};
use crate::health::{Schedule, TIMEOUT};
use crate::modes::{Base, Mode};
use crate::services::{Service, SERVICES};
use crate::setup::{forward, Exchange, Pool, Port, Relayed, SetupError};

/// The macro of a relay's listen port in `exchange.conf`: `https` for exchangeHTTPS,
/// the relay's name in lower case for the others (`pop3`, `rpccas`, ...).
pub fn port_macro(service: &Service) -> String {
    match service.relay {
        "exchangeHTTPS" => "https".to_owned(),
        name => name.to_ascii_lowercase(),
    }
}

/// The macro overrides that point the file at the demonstration: the listen address,
/// the demo servers (macros named as the servers: `exchange1`, `exchange2`) and the
/// relays' ports.
pub fn macros(
    listen: IpAddr,
    servers: &[(String, IpAddr)],
    ports: &[Port],
) -> Vec<(String, String)> {
    let mut out = vec![("ext_addr".to_owned(), listen.to_string())];
    out.extend(servers.iter().map(|(n, ip)| (n.clone(), ip.to_string())));
    out.extend(
        ports
            .iter()
            .map(|p| (port_macro(&p.service), p.listen.to_string())),
    );
    out
}

/// Parses and resolves the file with `macros` (its warnings stay in `plan.report`),
/// then makes it the demonstration's:
/// `schedule` for every check, and each host named after the server at its address.
pub fn plan(
    path: &Path,
    macros: &[(String, String)],
    schedule: Schedule,
    servers: &[(String, IpAddr)],
) -> Result<Plan, SetupError> {
    // The report renders its own `error:` lines, with the places in the file.
    let unusable =
        |report: lb::config::Report| format!("--config {}:\n{}", path.display(), report.render());
    let mut plan = resolve(parse_file(path, macros).map_err(unusable)?).map_err(unusable)?;
    let config = &mut plan.config;
    config.globals.interval = schedule.interval;
    config.globals.timeout = TIMEOUT;
    for host in config.tables.iter_mut().flat_map(|t| t.hosts.iter_mut()) {
        host.retry = schedule.retry;
    }
    for f in config.relays.iter_mut().flat_map(|r| r.forwards.iter_mut()) {
        f.interval = None;
        f.timeout = None;
    }
    for (name, ip) in plan.hosts.values_mut().flatten() {
        if let Some((server, _)) = servers.iter().find(|(_, s)| s == ip) {
            name.clone_from(server);
        }
    }
    Ok(plan)
}

/// The mode and the checks of the file, as this example names them: every relay must
/// forward with the same mode (the demonstration's expectations follow from it).
pub fn mode_and_check(plan: &Plan) -> Result<(Mode, CheckKind), SetupError> {
    let mut modes = plan.config.relays.iter().flat_map(|r| {
        r.forwards.iter().map(move |f| {
            let base = match f.mode {
                FileMode::Consistent => Base::Consistent,
                FileMode::SourceHash => Base::SourceHash,
                FileMode::LoadBalance => Base::LoadBalance,
                FileMode::RoundRobin => Base::RoundRobin,
                FileMode::Random => Base::Random,
                FileMode::LeastStates => Base::LeastStates,
                FileMode::PowerOfTwo => Base::PowerOfTwo,
            };
            Mode {
                base,
                sticky: r.sticky,
            }
        })
    });
    let first = modes
        .next()
        .ok_or("the file has no relay with a `forward to`")?;
    if let Some(other) = modes.find(|m| *m != first) {
        return Err(format!(
            "the file's relays use different modes ({first} and {other}): the demonstration \
             expects one mode on all eight"
        )
        .into());
    }
    let forwards = || plan.config.relays.iter().flat_map(|r| r.forwards.iter());
    let all_tcp = forwards().all(|f| {
        f.check
            .as_ref()
            .is_some_and(|c| matches!(c.kind, FileCheck::Tcp))
    });
    Ok((
        first,
        if all_tcp {
            CheckKind::Tcp
        } else {
            CheckKind::Protocol
        },
    ))
}

/// Starts the file's relays (waiting, as [`crate::bind::start_relay`] does, for a
/// port held by TIME_WAIT), and hands them to the demonstration as an [`Exchange`]:
/// one pool per relay, its table and monitor built by lb-config.
pub async fn start(
    options: &Options,
    plan: Plan,
    schedule: Schedule,
    started: Instant,
) -> Result<(Exchange, broadcast::Receiver<HostEvent>), SetupError> {
    let deadline = Instant::now() + crate::bind::TIME_WAIT_LIMIT;
    let mut told = false;
    let running: Running = loop {
        match plan.clone().start() {
            Ok(running) => break running,
            Err(lb::config::StartError::Bind { source, .. })
                if crate::bind::held_by_time_wait(&source, deadline, &mut told).await =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    let (merged, events) = broadcast::channel(1024);
    let mut pools = Vec::new();
    let mut relays = Vec::new();
    let mut forwarders = Vec::new();
    for mut r in running.relays {
        let service = *SERVICES
            .iter()
            .find(|s| s.relay == r.name())
            .ok_or_else(|| format!("relay \"{}\": not one of the seed's eight relays", r.name()))?;
        let name = r.name().to_owned();
        let why = |what: &str| format!("relay \"{name}\": {what}");
        if r.handles.len() != 1 || r.tables.len() != 1 {
            return Err(why("the demonstration needs one listen port and one `forward to`").into());
        }
        let (_, table) = r.tables.remove(0);
        let monitor = Arc::new(
            r.monitors
                .pop()
                .ok_or_else(|| why("the demonstration needs a `check` on the forward"))?,
        );
        let snapshot = table.snapshot();
        let backend_port = match snapshot.len() {
            0 => return Err(why("the demonstration needs hosts in the table").into()),
            _ => snapshot.host(0).backend().address().port(),
        };
        forwarders.push(tokio::spawn(forward(monitor.subscribe(), merged.clone())));
        // lb-config keeps the relay's own balancer inside the relay; this one, of the
        // same mode on the same table, is for what the demonstration asks a balancer.
        let balancer = options.mode.balancer(&table)?;
        pools.push(Pool {
            table,
            monitor,
            balancer,
        });
        relays.push(Relayed {
            service,
            backend_port,
            handle: r.handles.remove(0),
            pool: pools.len() - 1,
        });
    }
    // In the seed's order, which the demonstration's output follows.
    relays.sort_by_key(|r| SERVICES.iter().position(|s| *s == r.service));
    let mut seen = relays.iter().map(|r| r.service.relay).collect::<Vec<_>>();
    seen.dedup();
    if seen.len() != SERVICES.len() {
        return Err(format!(
            "the file has {} different relays of the seed's: the demonstration needs all eight",
            seen.len()
        )
        .into());
    }
    let exchange = Exchange::assemble(
        pools,
        relays,
        options.affinity,
        schedule,
        started,
        forwarders,
    );
    Ok((exchange, events))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo_servers::SERVERS;
    use crate::health::DEMO;
    use crate::setup::ports;

    fn shipped() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/exchange/exchange.conf")
    }

    fn servers() -> Vec<(String, IpAddr)> {
        SERVERS.iter().map(|(n, ip)| (n.to_string(), *ip)).collect()
    }

    #[test]
    fn shipped_file_plans_the_eight_relays_on_the_demo() {
        let options = Options::default();
        let ports = ports(&options, true);
        let macros = macros(options.listen, &servers(), &ports);
        assert_eq!(macros[0], ("ext_addr".to_owned(), "127.0.0.1".to_owned()));
        assert!(macros.contains(&("https".to_owned(), "10443".to_owned())));
        assert!(macros.contains(&("rpcabs".to_owned(), "59533".to_owned())));
        let plan = plan(&shipped(), &macros, DEMO, &servers()).expect("the shipped file loads");
        let names: Vec<&str> = plan.config.relays.iter().map(|r| r.name.as_str()).collect();
        let seed: Vec<&str> = SERVICES.iter().map(|s| s.relay).collect();
        assert_eq!(names, seed);
        for (relay, port) in plan.config.relays.iter().zip(&ports) {
            assert_eq!(relay.listen.len(), 1, "{}", relay.name);
            assert_eq!(relay.listen[0].port, port.listen, "{}", relay.name);
            assert_eq!(relay.forwards.len(), 1, "{}", relay.name);
        }
        assert_eq!(
            plan.hosts["exchange"],
            vec![
                ("exchange1".to_owned(), SERVERS[0].1),
                ("exchange2".to_owned(), SERVERS[1].1)
            ]
        );
        assert_eq!(plan.config.globals.interval, DEMO.interval);
        assert!(plan.config.tables[0]
            .hosts
            .iter()
            .all(|h| h.retry == DEMO.retry));
        let (mode, check) = mode_and_check(&plan).expect("one mode");
        assert_eq!(mode.to_string(), "source-hash");
        assert_eq!(check, CheckKind::Tcp);
    }

    #[tokio::test]
    async fn shipped_file_starts_eight_relays_with_a_table_each() {
        let options = Options::default();
        let macros = macros(options.listen, &servers(), &ports(&options, true));
        let mut plan = plan(&shipped(), &macros, DEMO, &servers()).expect("the shipped file loads");
        // Port 0 (which a file may not say): the test takes free ports, whatever else
        // runs on this machine.
        for listen in plan
            .config
            .relays
            .iter_mut()
            .flat_map(|r| r.listen.iter_mut())
        {
            listen.port = 0;
        }
        let (ex, _events) = start(&options, plan, DEMO, Instant::now())
            .await
            .expect("the relays start");
        assert_eq!(ex.relays.len(), 8);
        assert_eq!(ex.pools.len(), 8);
        for (i, (relay, service)) in ex.relays.iter().zip(SERVICES).enumerate() {
            assert_eq!(relay.service, service);
            assert_eq!(relay.pool, i);
            assert_ne!(relay.handle.local_addrs()[0].port(), 0);
            let snapshot = ex.pools[i].table.snapshot();
            let hosts: Vec<&str> = (0..snapshot.len())
                .map(|h| snapshot.host(h).name())
                .collect();
            assert_eq!(hosts, ["exchange1", "exchange2"]);
        }
        ex.shutdown().await;
    }
}
