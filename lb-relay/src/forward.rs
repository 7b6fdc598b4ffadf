//! `forward to <table>`: the tables a relay sends sessions to, and the failover walk
//! that finds a backend which answers.
//!
//! relayd tries one host per session, retries `connect()` on the *same* host, and never
//! tells anyone that the host refused. Here a session walks the candidates its policy
//! orders ([`Select::candidates`]: the pick, then the failover order), table after
//! table (backup tables: the first with a usable host wins, and the next is reached
//! when every candidate of the previous one failed). Each refused or timed-out connect
//! is counted on the host ([`HostState::record_connect_failure`]) and reported to
//! passive health, which ejects the host at once for an ejection time that ends by
//! itself (Envoy's outlier detection), so the next sessions do not even try it. Passive
//! health never ejects a table's last usable host: its failed connects are still
//! counted, and the session still walks on to the backup tables. A host is never tried
//! twice in one session, and at most `1 + failover` connects are made.
//!
//! [`HostState::record_connect_failure`]: lb_core::HostState::record_connect_failure

use std::net::SocketAddr;
use std::sync::Arc;

use lb_core::{Backend, BackendId, Context, Host, Lease, Select, Table};
use lb_health::{Passive, Reason};
use tokio::net::TcpStream;

use crate::stats::Counters;
use crate::{connect, Settings};

/// One table a relay forwards to, with the balancer that orders its hosts and the
/// passive health that ejects them.
pub(crate) struct Forward {
    pub(crate) select: Arc<dyn Select<Host>>,
    pub(crate) passive: Passive<Host>,
}

impl Forward {
    pub(crate) fn table(&self) -> &Arc<dyn Table<Host>> {
        self.select.table()
    }
}

/// A connected backend: the lease that counts the session on its host, and the stream.
pub(crate) struct Connected {
    pub(crate) lease: Lease<Host>,
    pub(crate) stream: TcpStream,
    pub(crate) addr: SocketAddr,
    /// The name of the table the host belongs to.
    pub(crate) table: String,
}

/// The hosts a session tried, at most `1 + failover`: inline up to [`Tried::INLINE`]
/// (the default failover tries 3), so a session allocates nothing for it; a larger
/// failover setting spills to the heap. Searched linearly.
#[derive(Default)]
struct Tried {
    inline: [Option<BackendId>; Tried::INLINE],
    len: usize,
    spilled: Vec<BackendId>,
}

impl Tried {
    const INLINE: usize = 4;

    fn len(&self) -> usize {
        self.len
    }

    fn contains(&self, id: &BackendId) -> bool {
        self.inline.contains(&Some(*id)) || self.spilled.contains(id)
    }

    fn push(&mut self, id: BackendId) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = Some(id),
            None => self.spilled.push(id),
        }
        self.len += 1;
    }
}

/// Walks the candidates of every table in order and connects to the first host that
/// answers, within the failover limit. `None` when no table has a host that answered.
pub(crate) async fn open(
    forwards: &[Forward],
    settings: &Settings,
    counters: &Counters,
    ctx: &Context<'_>,
    local: SocketAddr,
) -> Option<Connected> {
    let limit = settings.failover as usize + 1;
    let mut tried = Tried::default();
    for forward in forwards {
        for candidate in forward.select.candidates(ctx) {
            let id = candidate.host().id();
            if tried.contains(&id) {
                continue;
            }
            if tried.len() == limit {
                tracing::warn!(relay = %settings.name, client = ?ctx.client(), attempts = limit, "failover limit reached");
                return None;
            }
            tried.push(id);
            let lease = forward.select.lease(&candidate, ctx);
            let Some(host_addr) = candidate.backend().addr() else {
                continue;
            };
            let addr = settings.backend_port.resolve(host_addr, local);
            match connect::connect(addr, settings.connect_timeout, &settings.tcp).await {
                Ok(stream) => {
                    forward.passive.report_success(id);
                    return Some(Connected {
                        lease,
                        stream,
                        addr,
                        table: forward.table().name().to_owned(),
                    });
                }
                Err(error) => {
                    candidate.host().state().record_connect_failure();
                    Counters::bump(&counters.connect_failures);
                    let reason = Reason::from_connect_error(&error);
                    let ejected = match reason {
                        // The host's fault: refused, or silent. Anything else (no local
                        // port, no route) says nothing about the host: fail over only.
                        Reason::ConnectRefused | Reason::ConnectTimeout => {
                            forward.passive.report_failure(id, reason)
                        }
                        _ => false,
                    };
                    tracing::warn!(
                        relay = %settings.name,
                        table = %forward.table().name(),
                        host = %candidate.host().name(),
                        %addr,
                        %reason,
                        %error,
                        ejected,
                        "backend connect failed, trying the next candidate"
                    );
                }
            }
        }
    }
    None
}
