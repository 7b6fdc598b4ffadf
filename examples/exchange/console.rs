//! Serving until Ctrl-C: health changes are printed as they happen, and a few commands
//! typed on standard input act on the demo servers and show the balancer's state.

use std::io::{BufRead, IsTerminal};

use lb::health::HostEvent;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use crate::demo_servers::DemoServer;
use crate::overview::describe_event;
use crate::report::Table;
use crate::services::{Daemon, DAEMONS};
use crate::setup::Exchange;

/// The commands understood while serving.
const COMMANDS: &str = "commands: `stop NAME [SERVICE]` / `start NAME [SERVICE]` (a demo \
     server, or one of its services: https, pop3, imap, rpc), `hosts`, `stats`, `help`";

/// Serves until Ctrl-C, printing health changes and obeying commands from stdin.
pub async fn serve(
    ex: &Exchange,
    servers: &mut [DemoServer],
    mut events: broadcast::Receiver<HostEvent>,
) -> std::io::Result<()> {
    let mut commands = read_stdin();
    let mut monitors_running = true;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let result = loop {
        tokio::select! {
            signal = &mut ctrl_c => break signal,
            Some(line) = commands.recv() => command(ex, servers, line.trim()).await,
            event = events.recv(), if monitors_running => match event {
                Ok(event) => println!("  {}", describe_event(ex, ex.started, &event)),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    println!("  ({n} health events missed)")
                }
                // The monitors are gone: nothing more to print, but serve on.
                Err(broadcast::error::RecvError::Closed) => monitors_running = false,
            },
        }
    };
    println!();
    println!("Ctrl-C: stopping the relays (sessions get 5 s to finish) and the demo servers.");
    result
}

/// Lines typed on stdin. A plain thread: tokio's stdin would keep the runtime from
/// shutting down while it waits for a line that never comes.
///
/// A process started in the background (`cargo run --example exchange &`) must not
/// read its terminal: the kernel would stop it (SIGTTIN) and the relays with it. Then
/// no commands are read; pipes and files are read either way.
fn read_stdin() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(16);
    if !commands_available() {
        return rx;
    }
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { return };
            if tx.blocking_send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Whether commands can be read from stdin (see [`read_stdin`]).
pub fn commands_available() -> bool {
    !std::io::stdin().is_terminal() || in_foreground()
}

/// Whether this process's group owns its terminal, from `/proc/self/stat` (Linux):
/// after `pid (comm)` come state, ppid, pgrp, session, tty_nr and tpgid, the terminal's
/// foreground group. Elsewhere, assume the foreground.
fn in_foreground() -> bool {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return true;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return true;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    match (fields.get(2), fields.get(5)) {
        (Some(pgrp), Some(tpgid)) => pgrp == tpgid,
        _ => true,
    }
}

async fn command(ex: &Exchange, servers: &mut [DemoServer], line: &str) {
    let mut words = line.split_whitespace();
    match (words.next(), words.next(), words.next(), words.next()) {
        (None, ..) => {}
        (Some(verb @ ("stop" | "start")), Some(name), service, None) => {
            let daemon = match service.map(|s| (s, Daemon::named(s))) {
                None => None,
                Some((_, Some(daemon))) => Some(daemon),
                Some((s, None)) => {
                    let names: Vec<&str> = DAEMONS.iter().map(|(_, n)| *n).collect();
                    println!("  no service {s:?}: expected one of {}", names.join(", "));
                    return;
                }
            };
            let Some(server) = servers.iter_mut().find(|s| s.name() == name) else {
                let names: Vec<&str> = servers.iter().map(|s| s.name()).collect();
                if names.is_empty() {
                    println!("  no demo servers: the relays balance real servers (--backend)");
                } else {
                    println!(
                        "  no demo server {name:?}: expected one of {}",
                        names.join(", ")
                    );
                }
                return;
            };
            let what = daemon.map_or(String::new(), |d| format!("'s {}", d.describe()));
            let at = crate::report::since(ex.started, Instant::now());
            if verb == "stop" {
                match daemon {
                    Some(d) => server.stop_daemon(d).await,
                    None => server.stop().await,
                }
                println!("  [{at}] {name}{what} stopped: its ports refuse connections");
            } else {
                let started = match daemon {
                    Some(d) => server.start_daemon(d).await,
                    None => server.start().await,
                };
                match started {
                    Ok(()) => println!("  [{at}] {name}{what} started"),
                    Err(e) => println!("  {e}"),
                }
            }
        }
        (Some("hosts"), None, ..) => ex.print_hosts(),
        (Some("stats"), None, ..) => print_stats(ex),
        (Some("help"), None, ..) => println!("  {COMMANDS}"),
        _ => println!("  unknown command {line:?}; {COMMANDS}"),
    }
}

/// Every relay's counters, and every host's sessions.
pub fn print_stats(ex: &Exchange) {
    let mut t = Table::new([
        "relay",
        "sessions",
        "active",
        "failed",
        "connect failures",
        "bytes in",
        "bytes out",
    ]);
    for r in &ex.relays {
        let s = r.handle.stats();
        t.row([
            s.name,
            s.total.to_string(),
            s.active.to_string(),
            s.failed.to_string(),
            s.connect_failures.to_string(),
            s.bytes_client_to_server.to_string(),
            s.bytes_server_to_client.to_string(),
        ]);
    }
    t.print("  ");
    let mut t = Table::new([
        "table",
        "host",
        "health",
        "sessions",
        "active",
        "connect failures",
    ]);
    for (pool, h) in ex
        .pools
        .iter()
        .flat_map(|p| p.table.stats().into_iter().map(move |h| (p, h)))
    {
        t.row([
            format!("<{}>", pool.table.name()),
            h.name,
            h.health.to_string(),
            h.total.to_string(),
            h.active.to_string(),
            h.connect_failures.to_string(),
        ]);
    }
    t.print("  ");
}
