//! [`Resolver`]: hickory's stub resolver, configured once and shared by memberships and
//! by configuration loading.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;

use crate::{Error, ResolveError};

/// A DNS resolver: where to send queries and how long to wait for them.
///
/// Cloning is cheap and clones share one cache and one set of connections.
///
/// - [`Resolver::system`]: the machine's configuration (`/etc/resolv.conf` and
///   `/etc/hosts` on Unix), what relayd.conf host names use.
/// - [`Resolver::with_servers`]: given name servers (UDP, with TCP for truncated
///   answers), no hosts file and no search domains: what tests and service-discovery
///   setups use.
/// - [`Resolver::from_config`]: any hickory configuration.
///
/// Lookups run on the calling tokio runtime; [`lookup_ip_blocking`](Resolver::lookup_ip_blocking)
/// is for synchronous callers.
#[derive(Clone)]
pub struct Resolver {
    inner: TokioResolver,
    config: ResolverConfig,
    opts: ResolverOpts,
}

impl Resolver {
    /// The system's resolver: name servers, search domains and options from
    /// `/etc/resolv.conf` (the registry on Windows), and the hosts file.
    pub fn system() -> Result<Self, Error> {
        let (config, mut opts) =
            hickory_resolver::system_conf::read_system_conf().map_err(|e| Error::SystemConfig {
                reason: e.to_string(),
            })?;
        opts.use_hosts_file = ResolveHosts::Always;
        Self::from_config(config, opts)
    }

    /// A resolver that asks these name servers (UDP first, TCP when an answer is
    /// truncated), reads no hosts file and appends no search domain.
    ///
    /// Defaults: a timeout of 5 s per attempt, 2 attempts (see
    /// [`with_timeout`](Resolver::with_timeout)).
    pub fn with_servers(servers: impl IntoIterator<Item = SocketAddr>) -> Result<Self, Error> {
        let name_servers = servers
            .into_iter()
            .map(|server| {
                let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                    .into_iter()
                    .map(|mut c| {
                        c.port = server.port();
                        c
                    })
                    .collect();
                NameServerConfig::new(server.ip(), true, connections)
            })
            .collect::<Vec<_>>();
        if name_servers.is_empty() {
            return Err(Error::InvalidSetting {
                setting: "servers",
                expected: "at least one name server address".into(),
            });
        }
        let mut opts = ResolverOpts::default();
        opts.use_hosts_file = ResolveHosts::Never;
        Self::from_config(ResolverConfig::from_name_servers(name_servers), opts)
    }

    /// A resolver from a hickory configuration and options.
    pub fn from_config(config: ResolverConfig, opts: ResolverOpts) -> Result<Self, Error> {
        let inner = build(&config, &opts)?;
        Ok(Resolver {
            inner,
            config,
            opts,
        })
    }

    /// The same resolver with another timeout per attempt and number of attempts
    /// (at least 1). A lookup that gets no answer fails after about
    /// `timeout * attempts` with [`ResolveError::Timeout`].
    pub fn with_timeout(mut self, timeout: Duration, attempts: usize) -> Result<Self, Error> {
        if timeout.is_zero() || attempts == 0 {
            return Err(Error::InvalidSetting {
                setting: "timeout",
                expected: "a timeout greater than zero and at least one attempt".into(),
            });
        }
        self.opts.timeout = timeout;
        self.opts.attempts = attempts;
        self.inner = build(&self.config, &self.opts)?;
        Ok(self)
    }

    /// The timeout of one attempt.
    pub fn timeout(&self) -> Duration {
        self.opts.timeout
    }

    /// The hickory resolver underneath, for lookups lb does not wrap.
    pub fn hickory(&self) -> &TokioResolver {
        &self.inner
    }

    /// Looks up the addresses of names from synchronous code: each name's A and
    /// AAAA addresses (deduplicated, in answer order), or why it has none. An IP
    /// address literal is returned as is.
    ///
    /// Runs the lookups concurrently on a thread of its own with a private runtime and
    /// a fresh resolver of the same configuration, so it may be called from anywhere,
    /// including from inside a tokio runtime (it blocks the calling thread, as
    /// `std::net::ToSocketAddrs` does).
    pub fn lookup_ip_blocking<S: AsRef<str> + Sync>(
        &self,
        names: &[S],
    ) -> Vec<Result<Vec<IpAddr>, ResolveError>> {
        let fail_all = |reason: String| {
            names
                .iter()
                .map(|n| {
                    Err(ResolveError::Other {
                        name: n.as_ref().to_owned(),
                        reason: reason.clone(),
                    })
                })
                .collect()
        };
        std::thread::scope(|scope| {
            let worker = scope.spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start a runtime for DNS lookups: {e}"))?;
                // A fresh resolver: the shared one's connections belong to the caller's
                // runtime, which this thread must not drive.
                let fresh = Resolver::from_config(self.config.clone(), self.opts.clone())
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>(runtime.block_on(futures_util::future::join_all(
                    names.iter().map(|n| fresh.lookup_ip(n.as_ref())),
                )))
            });
            match worker.join() {
                Ok(Ok(answers)) => answers.into_iter().map(|a| a.map(|a| a.addrs)).collect(),
                Ok(Err(reason)) => fail_all(reason),
                Err(_) => fail_all("the DNS lookup thread panicked".into()),
            }
        })
    }
}

fn build(config: &ResolverConfig, opts: &ResolverOpts) -> Result<TokioResolver, Error> {
    let mut builder =
        TokioResolver::builder_with_config(config.clone(), TokioRuntimeProvider::default());
    *builder.options_mut() = opts.clone();
    builder.build().map_err(|e| Error::InvalidSetting {
        setting: "resolver",
        expected: format!("a configuration hickory accepts ({e})"),
    })
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let servers: Vec<String> = self
            .config
            .name_servers()
            .iter()
            .map(|s| s.ip.to_string())
            .collect();
        f.debug_struct("Resolver")
            .field("servers", &servers)
            .field("timeout", &self.opts.timeout)
            .field("attempts", &self.opts.attempts)
            .finish()
    }
}
