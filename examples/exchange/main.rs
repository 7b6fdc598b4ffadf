//! # The Exchange balancer: relayd's configuration from the Halon guide, as an lb program
//!
//! The seed (Halon's guide *Load balancing Microsoft Exchange 2010*, "The resulting
//! configuration"; completed in `exchange.conf` beside this file) balances two Exchange
//! 2010 servers with relayd:
//!
//! ```text
//! table <exchange> { }
//! relay "exchangeHTTPS" { listen on port 443   forward to <exchange> check tcp mode source-hash }
//! relay "POP3"          { listen on port 110   ... }      relay "POP3S"  { ... port 995 ... }
//! relay "IMAP"          { listen on port 143   ... }      relay "IMAPS"  { ... port 993 ... }
//! relay "RPCLS"         { listen on port 135   ... }      relay "RPCCAS" { ... port 59532 ... }
//! relay "RPCABS"        { listen on port 59533 ... }
//! ```
//!
//! `cargo run --example exchange` builds the same thing with `lb`: eight relays named
//! as in the seed in source-hash mode ([`Consistent`](lb::policies::Consistent) by
//! default, see `modes.rs`), and passive health on every relay (a refused connect marks
//! the host down at once and the session fails over). As relayd, each relay has its own
//! table of the servers (`exchange:443`, `exchange:110`, ...) checked on that relay's
//! port, so a server with one stopped service leaves only that service's relays;
//! `--affinity server` gives all relays one table `exchange` whose check needs every
//! service instead (`health.rs`). With no arguments it also starts two demo Exchange
//! servers on 127.0.0.2 and 127.0.0.3 (`demo_servers.rs`), runs a demonstration whose
//! every claim is checked (`demo.rs`, `demo_service.rs`), then serves until Ctrl-C.
//! `--help` lists the options; `--backend` balances real servers instead; `--config
//! FILE` builds the relays from a relayd.conf (`exchange.conf`, the seed's, beside this
//! file) through lb-config and runs the same demonstration over them (`from_file.rs`).
//!
//! Map: `cli` (arguments, `clap`), `from_file` (`--config`), `services` (the seed's
//! relays and ports), `modes` (`--mode`),
//! `health` (the checks), `setup` (tables, monitors, relays), `bind` (listening),
//! `overview` (listen map, hosts, health changes), `demo_servers` (+ `https`, `pop3`,
//! `imap`, `rpc`, `lines`), `clients` and `rounds` (the demo clients), `demo`,
//! `demo_service`, `waits` and `demo_real` (the demonstrations), `console` (serving),
//! `report` (output), `https_only` (a test: servers that run only HTTPS). `cargo test
//! --workspace` runs this example's tests too (`test = true` in Cargo.toml).

mod bind;
mod cli;
mod clients;
mod console;
mod demo;
mod demo_real;
mod demo_servers;
mod demo_service;
mod from_file;
mod health;
#[cfg(test)]
mod https_only;
mod modes;
mod overview;
mod report;
mod rounds;
mod services;
mod setup;
mod waits;

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use lb::core::Host;
use tokio::time::Instant;

use crate::cli::{CheckKind, Options};
use crate::demo_servers::{DemoServer, SERVERS};
use crate::overview::{affinity_summary, check_summary};
use crate::setup::Exchange;

fn main() -> ExitCode {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let options = match cli::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        // `--help` (exit 0) or a command line that cannot work (exit 2), printed by clap.
        Err(e) => {
            let shown = e.print();
            let code = if e.use_stderr() { 2 } else { 0 };
            return match shown {
                Ok(()) => ExitCode::from(code),
                Err(_) => ExitCode::FAILURE,
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(run(options)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    };
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}

async fn run(mut options: Options) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let demo = options.backends.is_empty();
    println!("lb exchange example: relayd's Exchange 2010 configuration (Halon guide) on lb");
    println!();

    let ports = setup::ports(&options, demo);
    let schedule = if demo { health::DEMO } else { health::REAL };
    // `--config`: the file is read first, so that a broken one stops everything early.
    let plan = match options.config.clone() {
        Some(path) => Some(load_config(&path, &mut options, &ports, schedule)?),
        None => None,
    };
    let mut servers = Vec::new();
    let hosts: Vec<Host> = if demo {
        let ports: Vec<_> = ports.iter().map(|p| (p.service, p.backend)).collect();
        println!("Demo Exchange servers (HTTPS with OWA's page, POP3, POP3S, IMAP, IMAPS, and the RPC ports as echo services):");
        for (name, ip) in SERVERS {
            let mut server = DemoServer::new(name, ip, ports.clone())?;
            server.start().await?;
            println!(
                "  {name}  {ip}  self-signed certificate for {name}.demo.invalid, made just now"
            );
            servers.push(server);
        }
        println!();
        servers
            .iter()
            .map(|s| Host::new(s.name(), SocketAddr::new(s.ip(), 0)))
            .collect()
    } else {
        println!("Real Exchange servers (--backend): the relays connect to each service's standard port.");
        println!();
        options
            .backends
            .iter()
            .map(|b| Host::new(b.name.clone(), SocketAddr::new(b.ip, 0)))
            .collect()
    };

    let (ex, mut events) = match plan {
        Some(plan) => from_file::start(&options, plan, schedule, started).await?,
        None => Exchange::start(&options, hosts, &ports, schedule, started).await?,
    };
    ex.print_listen_map(&options);
    println!("Mode {} ({}):", options.mode, options.mode.relayd_name());
    report::print_wrapped("  ", &options.mode.explanation());
    println!("Affinity {}:", options.affinity);
    report::print_wrapped("  ", affinity_summary(options.affinity));
    println!("Health checks:");
    report::print_wrapped(
        "  ",
        &check_summary(options.check, options.affinity, ex.schedule, demo),
    );
    report::print_wrapped(
        "  ",
        "Passive health on every relay: the first failed connect to a server ejects it at once \
         for 10 s (doubled while it keeps failing, ended early by a successful check), and the \
         session fails over to the next server (relayd would keep sending clients to it until \
         the next check).",
    );
    println!();
    ex.first_round(ex.schedule.down_bound() + Duration::from_secs(1))
        .await;
    // The first round's changes (unknown -> up) are shown by the table below.
    while events.try_recv().is_ok() {}
    println!("Hosts after the first round of checks:");
    ex.print_hosts();
    println!();

    let expectations = if demo {
        demo::run(&ex, &mut servers, options.mode, &mut events).await?
    } else {
        demo_real::run(&ex).await?
    };
    ex.settle(Duration::from_secs(1)).await;
    println!("After the demonstration:");
    console::print_stats(&ex);
    println!();
    expectations.print_summary();
    println!();

    if !options.exit_after_demo {
        print_try(&ex, &options, demo);
        console::serve(&ex, &mut servers, events).await?;
    }
    ex.shutdown().await;
    for server in &mut servers {
        server.stop().await;
    }
    Ok(if expectations.all_met() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Reads `--config`'s file with the demonstration's macros, takes its mode and checks
/// into `options`, and says what the demonstration changed.
fn load_config(
    path: &std::path::Path,
    options: &mut Options,
    ports: &[setup::Port],
    schedule: health::Schedule,
) -> Result<lb::config::Plan, Box<dyn std::error::Error>> {
    let servers: Vec<(String, IpAddr)> =
        SERVERS.iter().map(|(n, ip)| (n.to_string(), *ip)).collect();
    let macros = from_file::macros(options.listen, &servers, ports);
    let plan = from_file::plan(path, &macros, schedule, &servers)?;
    (options.mode, options.check) = from_file::mode_and_check(&plan)?;
    println!(
        "Relays from {} (lb-config), its macros overridden as `-D name=value` would:",
        path.display()
    );
    let defines: Vec<String> = macros.iter().map(|(k, v)| format!("{k}={v}")).collect();
    report::print_wrapped("  ", &defines.join(" "));
    if !plan.report.diagnostics.is_empty() {
        print!("{}", plan.report.render());
    }
    report::print_wrapped(
        "  ",
        &format!(
            "The demonstration's own, not the file's: checks every {} s with retry {} and a \
             {} ms timeout (so that it stays short), and each host named after the demo \
             server at its address. lb-config gives each relay its own table (relayd's way, \
             --affinity service); --affinity server, one table for all relays, has no \
             relayd.conf spelling, so its variant of step 4 is not shown.",
            schedule.interval.as_secs(),
            schedule.retry,
            health::TIMEOUT.as_millis()
        ),
    );
    if options.check == CheckKind::Protocol {
        report::print_wrapped(
            "  ",
            "The file's checks are not all `check tcp`: the check column below shows the \
             example's protocol checks, while the file's own checks run.",
        );
    }
    println!();
    Ok(plan)
}

/// What to try while the example serves.
fn print_try(ex: &Exchange, options: &Options, demo: bool) {
    let port = |i: usize| ex.target(&ex.relays[i]);
    println!("Serving until Ctrl-C; health changes are printed as they happen. Try, from another terminal:");
    println!(
        "  curl -sk https://{}/                                  (OWA page of one server)",
        port(0)
    );
    println!("  curl -sk --interface 127.0.0.5 https://{}/            (always the same server for one source)", port(0));
    let (pop3, imaps) = (port(1), port(4));
    println!(
        "  python3 -c 'import poplib; p = poplib.POP3(\"{}\", {}); print(p.getwelcome()); p.user(\"u\"); p.pass_(\"p\"); print(p.stat()); p.quit()'",
        pop3.ip(),
        pop3.port()
    );
    println!(
        "  python3 -c 'import imaplib, ssl; c = ssl.create_default_context(); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE; m = imaplib.IMAP4_SSL(\"{}\", {}, ssl_context=c); print(m.welcome); print(m.login(\"u\", \"p\")); m.logout()'",
        imaps.ip(),
        imaps.port()
    );
    if !console::commands_available() {
        println!("(Started in the background: commands are not read from the terminal.)");
    } else if demo {
        println!("Type `stop exchange2` (or any demo server) here to watch it go down and its clients move,");
        println!(
            "`stop exchange2 pop3` to stop one of its services (https, pop3, imap, rpc) and watch"
        );
        println!(
            "what leaves, `start exchange2 [SERVICE]` to bring it back, `hosts` or `stats` for the state. Mode: {}, affinity: {}.",
            options.mode, options.affinity
        );
    } else {
        println!("Type `hosts` or `stats` here for the state.");
    }
}
