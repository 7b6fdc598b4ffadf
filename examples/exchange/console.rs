//! Serving until Ctrl-C: health changes are printed as they happen, and a few commands
//! typed on standard input act on the demo servers and show the balancer's state.

use std::io::{BufRead, IsTerminal};
use std::sync::Arc;

use lb::core::Host;
use lb::health::{HostEvent, Monitor};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use crate::demo_servers::DemoServer;
use crate::report::Table;
use crate::setup::{describe_event, Exchange};

/// The commands understood while serving.
const COMMANDS: &str =
    "commands: `stop NAME` / `start NAME` (a demo server), `hosts`, `stats`, `help`";

/// Serves until Ctrl-C, printing health changes and obeying commands from stdin.
pub async fn serve(
    ex: &Exchange,
    servers: &mut [DemoServer],
    events: broadcast::Receiver<HostEvent>,
) -> std::io::Result<()> {
    let printer = tokio::spawn(print_events(ex.monitor.clone(), ex.started, events));
    let mut commands = read_stdin();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let result = loop {
        tokio::select! {
            signal = &mut ctrl_c => break signal,
            Some(line) = commands.recv() => command(ex, servers, line.trim()).await,
        }
    };
    printer.abort();
    println!();
    println!("Ctrl-C: stopping the relays (sessions get 5 s to finish) and the demo servers.");
    result
}

async fn print_events(
    monitor: Arc<Monitor<Host>>,
    started: Instant,
    mut events: broadcast::Receiver<HostEvent>,
) {
    loop {
        match events.recv().await {
            Ok(event) => println!("  {}", describe_event(&monitor, started, &event)),
            Err(broadcast::error::RecvError::Lagged(n)) => println!("  ({n} health events missed)"),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
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
    match (words.next(), words.next(), words.next()) {
        (None, ..) => {}
        (Some(verb @ ("stop" | "start")), Some(name), None) => {
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
            if verb == "stop" {
                server.stop().await;
                println!(
                    "  [{}] {name} stopped: its ports refuse connections",
                    crate::report::since(ex.started, Instant::now())
                );
            } else {
                match server.start().await {
                    Ok(()) => println!(
                        "  [{}] {name} started",
                        crate::report::since(ex.started, Instant::now())
                    ),
                    Err(e) => println!("  {e}"),
                }
            }
        }
        (Some("hosts"), None, _) => ex.print_hosts(),
        (Some("stats"), None, _) => print_stats(ex),
        (Some("help"), None, _) => println!("  {COMMANDS}"),
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
    let mut t = Table::new(["host", "health", "sessions", "active", "connect failures"]);
    for h in ex.table.stats() {
        t.row([
            h.name,
            h.health.to_string(),
            h.total.to_string(),
            h.active.to_string(),
            h.connect_failures.to_string(),
        ]);
    }
    t.print("  ");
}
