//! The demonstration with real Exchange servers (`--backend`): nothing is stopped and
//! no mailbox is touched. It shows where the 20 demo sources would go (the balancer's
//! own answer, as each relay asks it) and opens one connection through every relay to
//! read the server's first answer. A relay whose service runs on no server (POP3 and
//! IMAP4 are installed stopped on Exchange 2010) must refuse its clients at once, and
//! that is what is expected of it.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use lb::core::Context;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use crate::cli::Affinity;
use crate::clients::{connect_from, Clients};
use crate::report::Expectations;
use crate::rounds::{print_sources, sources};
use crate::services::{Protocol, Service};
use crate::setup::Exchange;

/// How long the first answer of a real server may take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the demonstration against real servers.
pub async fn run(ex: &Exchange) -> Result<Expectations, Box<dyn std::error::Error>> {
    let mut checks = Expectations::default();
    let clients = Clients::new()?;
    let sources = sources();
    println!("Demonstration with real servers (nothing is stopped, no mailbox is opened)");
    println!();
    let https = &ex.relays[0];
    println!(
        "1. Where the balancer sends each source address on {} (its own answer, no connection):",
        https.service.relay
    );
    let listen = ex.target(https);
    print_sources(&sources, |s| {
        let ctx = Context::from_client(SocketAddr::new(sources[s], 40_000)).with_listen(listen);
        ex.pool_of(https)
            .balancer
            .candidates(&ctx)
            .next()
            .map_or_else(
                || "no usable host".to_owned(),
                |c| c.host().name().to_owned(),
            )
    });
    println!();
    println!(
        "2. One connection from {} through every relay, reading the server's first answer:",
        sources[0]
    );
    for r in &ex.relays {
        let target = ex.target(r);
        let answer = tokio::time::timeout(
            ANSWER_TIMEOUT,
            first_answer(&clients, r.service, sources[0], target),
        )
        .await;
        let verdict = match answer {
            Ok(Ok(text)) => Ok(text),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} s", ANSWER_TIMEOUT.as_secs())),
        };
        // A relay whose every server has its service down must turn clients away at
        // once (a server without POP3 is no fault of the balancer); one with a usable
        // server must answer.
        let usable = !ex.pool_of(r).table.snapshot().usable().is_empty();
        let (holds, what) = match (usable, verdict) {
            (true, Ok(text)) => (true, text),
            (true, Err(e)) => (false, format!("failed: {e}")),
            (false, Ok(text)) => (false, format!("answered with every server down: {text}")),
            (false, Err(e)) => (
                true,
                format!("{}: turned away at once ({e})", no_server(ex)),
            ),
        };
        checks.check(holds, format!("{:<13} {target}: {what}", r.service.relay));
    }
    println!();
    Ok(checks)
}

/// Why a relay has no usable server.
fn no_server(ex: &Exchange) -> &'static str {
    match ex.affinity {
        Affinity::Service => "no server runs this service",
        Affinity::Server => "every server is down (--affinity server: some service of each fails)",
    }
}

/// Connects from `source` through the relay at `target` and returns the server's first
/// answer: the HTTP status line of `HEAD` of OWA's logon page, the POP3 or IMAP
/// greeting, or for RPC (where the client speaks first) that the connection stays open.
async fn first_answer(
    clients: &Clients,
    service: Service,
    source: IpAddr,
    target: SocketAddr,
) -> io::Result<String> {
    let tcp = connect_from(source, target).await?;
    if service.protocol.tls() {
        let name = ServerName::try_from("exchange").map_err(io::Error::other)?;
        let tls = clients.connector().connect(name, tcp).await?;
        answer(service.protocol, tls).await
    } else {
        answer(service.protocol, tcp).await
    }
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    protocol: Protocol,
    stream: S,
) -> io::Result<String> {
    let mut s = BufReader::new(stream);
    if protocol == Protocol::Https {
        let request = format!(
            "HEAD {} HTTP/1.1\r\nHost: exchange\r\nConnection: close\r\n\r\n",
            crate::health::OWA_PATH
        );
        s.write_all(request.as_bytes()).await?;
    }
    if protocol == Protocol::Rpc {
        // The relay closes a client at once when no server answers.
        let mut byte = [0u8; 1];
        return match tokio::time::timeout(Duration::from_millis(300), s.read(&mut byte)).await {
            Ok(Ok(0)) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed: no server took the connection",
            )),
            Ok(Ok(_)) => Ok("connected, and the server spoke first".to_owned()),
            Err(_) => Ok("connected (the client speaks first on RPC)".to_owned()),
            Ok(Err(e)) => Err(e),
        };
    }
    let mut line = String::new();
    if (&mut s).take(1024).read_line(&mut line).await? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed before any answer",
        ));
    }
    Ok(line.trim_end().to_owned())
}
