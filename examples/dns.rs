//! A TCP relay whose hosts come from DNS: every A/AAAA address of a name (or the targets
//! of an SRV name), followed as the answers change.
//!
//! ```text
//! cargo run --example dns -- --listen 127.0.0.1:8080 www.example.com:80
//! cargo run --example dns -- --server 127.0.0.1:5353 --listen [::1]:8443 _https._tcp.example.test
//! ```
//!
//! Each source is `NAME:PORT` (A and AAAA records, that port) or an SRV name
//! (`_service._proto.domain`: each target's addresses, its port and weight). Clients are
//! spread with `Consistent` hashing of their address, so a change of the answer moves
//! only the clients of the addresses that came or went. Lookups, changes and failures
//! are logged (`RUST_LOG=debug` for more); a failed lookup keeps the last hosts.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use lb::core::{Host, HostTable};
use lb::dns::{Membership, Resolver};
use lb::policies::Consistent;
use lb::relay::{BackendPort, Relay};

/// A TCP relay to the hosts DNS gives for some names.
#[derive(Parser, Debug)]
#[command(name = "dns")]
struct Args {
    /// Where the relay listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// A name server to ask (repeat for several); the system's configuration otherwise.
    #[arg(long)]
    server: Vec<SocketAddr>,
    /// Look names up again at least this often, in seconds, whatever their TTL.
    #[arg(long, default_value_t = 300)]
    max_ttl: u64,
    /// Never look a name up more often than this, in seconds.
    #[arg(long, default_value_t = 1)]
    min_ttl: u64,
    /// `NAME:PORT` for A/AAAA records, or an SRV name (`_service._proto.domain`).
    #[arg(required = true)]
    sources: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let resolver = if args.server.is_empty() {
        Resolver::system()?
    } else {
        Resolver::with_servers(args.server.iter().copied())?
    };
    let mut builder = Membership::builder(resolver)
        .min_ttl(Duration::from_secs(args.min_ttl))
        .max_ttl(Duration::from_secs(args.max_ttl));
    for source in &args.sources {
        builder = if source.starts_with('_') {
            builder.srv(source.as_str())
        } else {
            let (name, port) = source
                .rsplit_once(':')
                .and_then(|(n, p)| Some((n, p.parse::<u16>().ok()?)))
                .ok_or_else(|| {
                    format!(
                        "{source:?}: expected NAME:PORT or an SRV name (_service._proto.domain)"
                    )
                })?;
            builder.ip(name.trim_start_matches('[').trim_end_matches(']'), port)
        };
    }

    let table = HostTable::<Host>::builder("dns").allow_empty().build()?;
    let membership = builder.start(table.clone())?;
    membership.ready().await;
    let relay = Relay::builder("dns")
        .listen(args.listen.ip())
        .port(args.listen.port())
        .forward_to(table.clone())
        .backend_port(BackendPort::Host)
        .policy(Consistent::new())
        .build()?
        .start()?;
    let hosts: Vec<String> = table
        .snapshot()
        .hosts()
        .iter()
        .map(|h| h.name().to_owned())
        .collect();
    tracing::info!(listen = %relay.local_addrs()[0], hosts = ?hosts, "relaying; Ctrl-C stops");
    tokio::signal::ctrl_c().await?;
    relay.shutdown(Duration::from_secs(5)).await;
    membership.shutdown().await;
    Ok(())
}
