//! One session, from the accepted client to the last byte: the steps of relayd's
//! `relay_session`, with failover, a PROXY header and live stats.
//!
//! 1. A disabled relay closes the client at once ([`Outcome::Refused`]).
//! 2. [`forward::open`] walks the tables' candidates and connects, with failover.
//!    When nothing answers, the client is closed and the session counts as failed.
//! 3. The PROXY protocol header, if configured, goes to the backend before any payload.
//! 4. [`copy::bidirectional`] relays both ways until both sides closed or the idle
//!    timeout; the bytes are counted live.
//!
//! The lease taken in step 2 lives until step 4 ends, so the host's active-state count
//! (and least-states, sticky entries) follow the session exactly.

use std::sync::atomic::Ordering;
use std::time::Instant;

use lb_core::Context;
use tokio::io::AsyncWriteExt;

use crate::copy::{self, CopyOptions, End};
use crate::service::{Accepted, Outcome, Shared};
use crate::stats::Counters;
use crate::{connect, forward, proxy};

/// Decrements the relay's active count when the session ends, however it ends.
struct ActiveGuard<'a>(&'a Counters);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves one accepted connection to its end.
pub(crate) async fn serve(shared: &Shared, accepted: Accepted) -> Outcome {
    let settings = &shared.settings;
    let counters = &shared.counters;
    let Accepted {
        stream: client,
        peer,
        listen,
        local,
        tuned,
    } = accepted;
    if !shared.enabled.load(Ordering::Acquire) {
        Counters::bump(&counters.refused);
        tracing::debug!(relay = %settings.name, %peer, "relay disabled, closing the client");
        return Outcome::Refused;
    }
    Counters::bump(&counters.total);
    counters.active.fetch_add(1, Ordering::Relaxed);
    let _active = ActiveGuard(counters);
    counters.windows.record();
    // A stream from the relay's own listener has the options already.
    let tune = if tuned {
        Ok(())
    } else {
        connect::tune(&client, &settings.tcp)
    };
    if let Err(error) = tune {
        // The client may already be gone; the copy will find out.
        tracing::debug!(relay = %settings.name, %peer, %error, "cannot set client socket options");
    }

    // The configured listen address, as relayd's `loadbalance` hashes it; the address
    // the client dialled stays available to policies as `local`.
    let ctx = Context::from_client(peer)
        .with_listen(listen)
        .with_local(local);
    let Some(connected) = forward::open(&shared.forwards, settings, counters, &ctx, local).await
    else {
        Counters::bump(&counters.failed);
        tracing::warn!(relay = %settings.name, %peer, "no backend answered, closing the client");
        return Outcome::NoBackend;
    };
    let forward::Connected {
        lease,
        stream: mut server,
        addr,
        table,
    } = connected;
    tracing::debug!(relay = %settings.name, %peer, %table, host = %lease.name(), %addr, "session started");
    let progress = copy::Progress::default();
    let started = Instant::now();
    let result = async {
        if let Some(version) = settings.proxy_protocol {
            let mut header = Vec::with_capacity(108);
            proxy::encode_header(version, peer, local, &mut header);
            server.write_all(&header).await?;
        }
        let opts = CopyOptions {
            idle_timeout: settings.idle_timeout,
            splice: settings.splice,
        };
        copy::bidirectional_counted(client, server, &opts, &progress, &counters.bytes.progress)
            .await
    }
    .await;
    let (up, down) = (progress.client_to_server(), progress.server_to_client());
    let end = match result {
        Ok(totals) => {
            if totals.end == End::IdleTimeout {
                Counters::bump(&counters.idle_timeouts);
            }
            tracing::debug!(
                relay = %settings.name, %peer, host = %lease.name(), %addr,
                client_to_server = up, server_to_client = down,
                duration_ms = started.elapsed().as_millis() as u64, end = ?totals.end,
                "session ended"
            );
            Some(totals.end)
        }
        Err(error) => {
            tracing::warn!(
                relay = %settings.name, %peer, host = %lease.name(), %addr,
                client_to_server = up, server_to_client = down, %error,
                "session ended with an error"
            );
            None
        }
    };
    Outcome::Relayed {
        table,
        host: lease.name().to_owned(),
        addr,
        client_to_server: up,
        server_to_client: down,
        end,
    }
}
