//! Two demo Exchange servers on loopback, each speaking enough of every protocol of
//! the seed for health checks and real clients (curl, Python's poplib and imaplib).
//!
//! Linux routes all of 127.0.0.0/8 to the loopback interface, so an unprivileged
//! process can bind 127.0.0.2 and 127.0.0.3 as two "machines". Each server has its own
//! self-signed certificate, made at start with rcgen, for HTTPS, POP3S and IMAPS.
//!
//! A server can be stopped (every listener closed, every session cut, as if the
//! machine died) and started again on the same ports: that is how the demonstration
//! takes a server down. One daemon can be stopped alone (POP3's ports 110 and 995,
//! say), as an administrator stops one Windows service: that is how it shows that one
//! broken service takes a server out of that service's relays only.

mod https;
mod imap;
mod lines;
mod pop3;
mod rpc;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::services::{Daemon, Protocol, Service};

/// The demo servers' names and addresses.
pub const SERVERS: [(&str, IpAddr); 2] = [
    ("exchange1", IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))),
    ("exchange2", IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3))),
];
/// The demo servers' addresses.
pub const ADDRESSES: [IpAddr; 2] = [SERVERS[0].1, SERVERS[1].1];

/// How long a TLS handshake with a demo server may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a demo server could not start.
#[derive(Debug)]
pub struct StartError(String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// One demo Exchange server.
pub struct DemoServer {
    name: Arc<str>,
    ip: IpAddr,
    services: Vec<(Service, u16)>,
    https_tls: TlsAcceptor,
    mail_tls: TlsAcceptor,
    /// The serving task of each service, in the order of `services`; `None` when stopped.
    tasks: Vec<Option<JoinHandle<()>>>,
}

impl DemoServer {
    /// A server called `name` on `ip`, for these services on these ports, with a fresh
    /// self-signed certificate. Not listening yet: see [`start`](DemoServer::start).
    pub fn new(name: &str, ip: IpAddr, services: Vec<(Service, u16)>) -> Result<Self, StartError> {
        let (https, mail) = tls_configs(name)
            .map_err(|e| StartError(format!("{name}: cannot make its certificate: {e}")))?;
        Ok(DemoServer {
            name: name.into(),
            ip,
            https_tls: TlsAcceptor::from(https),
            mail_tls: TlsAcceptor::from(mail),
            tasks: services.iter().map(|_| None).collect(),
            services,
        })
    }

    /// The server's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server's address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Starts every service that is not running: see [`start_where`](Self::start_where).
    pub async fn start(&mut self) -> Result<(), StartError> {
        self.start_where(|_| true).await
    }

    /// Starts only `daemon`'s services (POP3 is 110 and 995).
    pub async fn start_daemon(&mut self, daemon: Daemon) -> Result<(), StartError> {
        self.start_where(|s| s.protocol.daemon() == daemon).await
    }

    /// Binds the port of every stopped service that `which` selects, then serves each
    /// on its own task. Binds all before serving any, so that the selection is either
    /// fully up or not started.
    async fn start_where(&mut self, which: impl Fn(Service) -> bool) -> Result<(), StartError> {
        let mut bound = Vec::with_capacity(self.services.len());
        for (i, (service, port)) in self.services.iter().enumerate() {
            if self.tasks[i].is_some() || !which(*service) {
                continue;
            }
            let addr = SocketAddr::new(self.ip, *port);
            let listener = TcpListener::bind(addr).await.map_err(|e| {
                StartError(format!(
                    "demo server {} cannot listen on {addr} ({}): {}",
                    self.name,
                    service.relay,
                    bind_hint(&e, *port)
                ))
            })?;
            bound.push((i, *service, listener));
        }
        for (i, service, listener) in bound {
            let handler = Handler {
                server: self.name.clone(),
                service,
                tls: match service.protocol {
                    Protocol::Https => Some(self.https_tls.clone()),
                    Protocol::Pop3s | Protocol::Imaps => Some(self.mail_tls.clone()),
                    _ => None,
                },
            };
            self.tasks[i] = Some(tokio::spawn(serve(listener, Arc::new(handler))));
        }
        Ok(())
    }

    /// Closes every listener and cuts every session, as if the machine died, and
    /// returns once they are all gone (the ports refuse connections from then on).
    pub async fn stop(&mut self) {
        self.stop_where(|_| true).await;
    }

    /// Stops only `daemon`'s services, as an administrator stopping one Windows
    /// service: its ports refuse connections, the others serve on.
    pub async fn stop_daemon(&mut self, daemon: Daemon) {
        self.stop_where(|s| s.protocol.daemon() == daemon).await;
    }

    async fn stop_where(&mut self, which: impl Fn(Service) -> bool) {
        let mut stopping = Vec::new();
        for ((service, _), task) in self.services.iter().zip(&mut self.tasks) {
            if which(*service) {
                if let Some(task) = task.take() {
                    task.abort();
                    stopping.push(task);
                }
            }
        }
        for task in stopping {
            // An aborted task's handle resolves once its future (listener, sessions)
            // has been dropped.
            let _ = task.await;
        }
    }
}

/// What to tell a user whose bind failed.
pub fn bind_hint(error: &io::Error, port: u16) -> String {
    match error.kind() {
        io::ErrorKind::PermissionDenied if port < 1024 => format!(
            "{error}: ports below 1024 need root or CAP_NET_BIND_SERVICE; run without \
             --real-ports to use {}",
            port + crate::services::PORT_SHIFT
        ),
        io::ErrorKind::AddrInUse => {
            format!("{error}: is another copy of this example (or a real server) running?")
        }
        io::ErrorKind::AddrNotAvailable => {
            format!("{error}: the address is not one of this machine's")
        }
        _ => error.to_string(),
    }
}

/// How one listener's sessions are served.
struct Handler {
    server: Arc<str>,
    service: Service,
    tls: Option<TlsAcceptor>,
}

/// Accepts until aborted. Sessions live in a `JoinSet` owned by this task, so aborting
/// the task cuts them all.
async fn serve(listener: TcpListener, handler: Arc<Handler>) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let handler = handler.clone();
                    sessions.spawn(async move { handler.session(stream, peer).await });
                }
                Err(error) => {
                    // Out of descriptors or an aborted handshake: wait, then go on.
                    tracing::warn!(server = %handler.server, %error, "demo server accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}

impl Handler {
    async fn session(&self, stream: TcpStream, peer: SocketAddr) {
        let _ = stream.set_nodelay(true);
        let result = match &self.tls {
            None => self.speak(stream).await,
            Some(acceptor) => {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => self.speak(tls).await,
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "tls handshake")),
                }
            }
        };
        if let Err(error) = result {
            tracing::debug!(server = %self.server, relay = self.service.relay, %peer, %error, "demo session ended with an error");
        }
    }

    async fn speak<S: AsyncRead + AsyncWrite + Unpin>(&self, stream: S) -> io::Result<()> {
        let server = &*self.server;
        match self.service.protocol {
            Protocol::Https => https::serve(stream, server).await,
            Protocol::Pop3 | Protocol::Pop3s => pop3::serve(stream, server).await,
            Protocol::Imap | Protocol::Imaps => imap::serve(stream, server).await,
            Protocol::Rpc => rpc::serve(stream, server, self.service).await,
        }
    }
}

type TlsConfigs = (Arc<ServerConfig>, Arc<ServerConfig>);

/// A self-signed certificate for `name`, as two server configurations: HTTPS (ALPN
/// `http/1.1`, so that curl does not try HTTP/2) and the mail protocols (no ALPN).
fn tls_configs(name: &str) -> Result<TlsConfigs, Box<dyn std::error::Error>> {
    let certified = rcgen::generate_simple_self_signed(vec![
        format!("{name}.demo.invalid"),
        "mail.demo.invalid".to_owned(),
    ])?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mail = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)?;
    let mut https = mail.clone();
    https.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(https), Arc::new(mail)))
}
