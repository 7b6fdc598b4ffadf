//! [`Redirect`]: the running redirect, a handle on its worker thread.

use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lb_core::{Host, ListenerId, Table};
use shared::Shared;

use crate::builder::RedirectBuilder;
use crate::ruleset::Layout;
use crate::worker::{Msg, Worker};
use crate::Error;

/// A layer-3 redirect: relayd's `redirect`, pf's `rdr-to` over a pool, on nftables.
///
/// It owns the nftables table `inet lb_<name>` and keeps it in sync with its [`Table`]:
/// every health, admin or membership change becomes one `nft` transaction that rewrites
/// only what changed. Connections are never terminated: the kernel rewrites the
/// destination of a connection's first packet, conntrack the rest, and backends see the
/// clients' real addresses (their replies must route back through this machine).
///
/// Dropping the redirect (or [`shutdown`](Redirect::shutdown)) removes the table;
/// established connections then lose their translation.
pub struct Redirect {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Msg>,
    worker: Option<JoinHandle<()>>,
    table: Arc<dyn Table<Host>>,
    listener: ListenerId,
    layout: Layout,
}

/// What a redirect has done so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedirectStats {
    /// The table version the kernel reflects.
    pub applied_version: u64,
    /// Transactions applied, the first (creation) included.
    pub transactions: u64,
    /// How long the last one took (`nft` start to finish).
    pub last_transaction: Duration,
    /// The longest one.
    pub max_transaction: Duration,
    /// Transactions `nft` rejected (each retried as a full rebuild).
    pub failures: u64,
    /// The last failure.
    pub last_error: Option<String>,
}

/// State counts of one host, as least-states last read them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostStates {
    /// The host's name.
    pub host: String,
    /// Live connections (conntrack entries not closing) to it through the redirect.
    pub states: u64,
}

impl Redirect {
    pub(crate) fn start(
        builder: RedirectBuilder,
        layout: Layout,
        table: Arc<dyn Table<Host>>,
    ) -> Result<Redirect, Error> {
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::channel();
        // The listener first: a change made while the table is being created is then
        // applied right after.
        let notify = tx.clone();
        let listener = table.on_change(move |_| {
            let _ = notify.send(Msg::Changed);
        });
        let (ready_tx, ready_rx) = mpsc::channel();
        let worker = Worker::new(&builder, layout.clone(), table.clone(), shared.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("lb-redirect-{}", builder.name))
            .spawn(move || worker.run(rx, ready_tx));
        let handle = match spawned {
            Ok(h) => h,
            Err(source) => {
                table.remove_listener(listener);
                return Err(Error::Io {
                    tool: "thread",
                    source,
                });
            }
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Redirect {
                shared,
                tx,
                worker: Some(handle),
                table,
                listener,
                layout,
            }),
            Ok(Err(e)) => {
                table.remove_listener(listener);
                let _ = handle.join();
                Err(e)
            }
            Err(_) => {
                table.remove_listener(listener);
                let _ = handle.join();
                Err(Error::Stopped)
            }
        }
    }

    /// The nftables table's name: `lb_<name>` (family `inet`).
    pub fn table_name(&self) -> &str {
        &self.layout.table
    }

    /// The balanced table.
    pub fn table(&self) -> &Arc<dyn Table<Host>> {
        &self.table
    }

    /// What the redirect has done so far.
    pub fn stats(&self) -> RedirectStats {
        self.shared.stats()
    }

    /// Waits until the kernel reflects table version `version` (or a later one); `false`
    /// at the timeout. A change made with the table's writers is applied
    /// asynchronously; this is how a caller knows it is in force.
    pub fn wait_applied(&self, version: u64, timeout: Duration) -> bool {
        self.shared.wait_applied(version, Instant::now() + timeout)
    }

    /// Least-states: reads the state counts now and refills the slots, instead of at
    /// the next interval; returns the counts. Other modes: the counts only.
    pub fn refresh_states(&self) -> Result<Vec<HostStates>, Error> {
        let (reply, rx) = mpsc::channel();
        self.tx
            .send(Msg::Refresh(reply))
            .map_err(|_| Error::Stopped)?;
        rx.recv().map_err(|_| Error::Stopped)?
    }

    /// The source addresses sticky-address currently keeps, with their host's name.
    pub fn sticky_sources(&self) -> Result<Vec<(std::net::IpAddr, String)>, Error> {
        let (reply, rx) = mpsc::channel();
        self.tx
            .send(Msg::Sticky(reply))
            .map_err(|_| Error::Stopped)?;
        rx.recv().map_err(|_| Error::Stopped)?
    }

    /// The table as `nft list table inet lb_<name>` prints it.
    pub fn ruleset(&self) -> Result<String, Error> {
        let (reply, rx) = mpsc::channel();
        self.tx.send(Msg::List(reply)).map_err(|_| Error::Stopped)?;
        rx.recv().map_err(|_| Error::Stopped)?
    }

    /// Stops following the table and removes the nftables table.
    pub fn shutdown(mut self) -> Result<(), Error> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), Error> {
        let Some(worker) = self.worker.take() else {
            return Ok(());
        };
        self.table.remove_listener(self.listener);
        let (reply, rx) = mpsc::channel();
        let sent = self.tx.send(Msg::Stop(reply)).is_ok();
        let result = if sent {
            rx.recv().unwrap_or(Err(Error::Stopped))
        } else {
            Err(Error::Stopped)
        };
        let _ = worker.join();
        result
    }
}

impl Drop for Redirect {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::error!(table = %self.layout.table, error = %e, "could not remove the redirect's nftables table");
        }
    }
}

impl std::fmt::Debug for Redirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redirect")
            .field("table", &self.layout.table)
            .field("mode", &self.layout.mode)
            .field("vips", &self.layout.vips)
            .field("port", &self.layout.port)
            .finish()
    }
}

/// Shared between the handle and the worker: applied version and stats.
pub(crate) mod shared {
    use std::sync::{Condvar, Mutex};
    use std::time::{Duration, Instant};

    use super::RedirectStats;

    #[derive(Default)]
    pub(crate) struct Shared {
        stats: Mutex<RedirectStats>,
        applied: Condvar,
    }

    impl Shared {
        pub(crate) fn stats(&self) -> RedirectStats {
            self.stats.lock().map(|s| s.clone()).unwrap_or_default()
        }

        pub(crate) fn record(&self, f: impl FnOnce(&mut RedirectStats)) {
            if let Ok(mut s) = self.stats.lock() {
                f(&mut s);
            }
            self.applied.notify_all();
        }

        pub(crate) fn wait_applied(&self, version: u64, deadline: Instant) -> bool {
            let Ok(mut s) = self.stats.lock() else {
                return false;
            };
            while s.applied_version < version {
                let left = deadline.saturating_duration_since(Instant::now());
                if left == Duration::ZERO {
                    return false;
                }
                s = match self.applied.wait_timeout(s, left) {
                    Ok((s, _)) => s,
                    Err(_) => return false,
                };
            }
            true
        }
    }
}
