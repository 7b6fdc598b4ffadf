//! TLS for checks: [`TlsOptions`] and the `tls` check, [`Tls`].
//!
//! relayd's `check tls` connects and completes a TLS handshake, nothing more
//! (`check_tls.c`); `check https` and `send ... expect ... tls` run their protocol over
//! the same kind of connection. By default no certificate is verified and no server
//! name (SNI) is sent, as in relayd (`tls_connect_socket(tls, s, NULL)`; see
//! [`AcceptAnyServerCert`]); [`TlsOptions::verify_with_ca_pem`] verifies the server's
//! certificate against a CA instead, for name and chain, and presents the name.

use std::fmt;
use std::io::BufReader;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use futures_util::future::BoxFuture;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio::time::timeout_at;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::conn::Transport;
use crate::{AcceptAnyServerCert, Check, Error, Failure, Outcome, Probe, Reason};

/// How a check speaks TLS: whether it verifies the server's certificate, and the
/// server name it verifies and presents.
///
/// Defaults:
/// - no certificate verification (relayd's behaviour);
/// - no SNI with [`new`](TlsOptions::new) (relayd's behaviour), SNI with the verifying
///   constructors; [`send_sni`](TlsOptions::send_sni) changes it;
/// - server name: the check's HTTP `host` if it has one, else the host's IP address
///   (rustls never sends SNI for an address).
///
/// ```
/// use lb_health::TlsOptions;
/// let relayd_like = TlsOptions::new();
/// assert!(!relayd_like.verifies() && !relayd_like.sends_sni());
/// assert!(TlsOptions::new().send_sni(true).sends_sni());
/// ```
#[derive(Clone)]
pub struct TlsOptions {
    /// The rustls configuration, or why rustls refused to build it (reported by every
    /// handshake rather than a panic: the ring provider supports the default versions,
    /// so this is a broken build, not user input).
    config: Result<Arc<ClientConfig>, String>,
    server_name: Option<ServerName<'static>>,
    verifies: bool,
}

impl TlsOptions {
    /// Handshake without verifying the certificate, as relayd does.
    pub fn new() -> Self {
        static INSECURE: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
        let config = INSECURE.get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = Arc::new(AcceptAnyServerCert::new(provider.clone()));
            ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| {
                    let mut config = b
                        .dangerous()
                        .with_custom_certificate_verifier(verifier)
                        .with_no_client_auth();
                    // relayd's check_tls passes no server name.
                    config.enable_sni = false;
                    Arc::new(config)
                })
                .map_err(|e| e.to_string())
        });
        TlsOptions {
            config: config.clone(),
            server_name: None,
            verifies: false,
        }
    }

    /// Verify the server's certificate against the CA certificates in `pem` (one or
    /// more `BEGIN CERTIFICATE` blocks). Fails if `pem` holds no usable certificate.
    pub fn verify_with_ca_pem(pem: &[u8]) -> Result<Self, Error> {
        let mut roots = RootCertStore::empty();
        let mut reader = BufReader::new(pem);
        for cert in rustls_pemfile::certs(&mut reader) {
            let cert = cert.map_err(|e| Error::Tls {
                reason: format!("could not read the CA PEM: {e}"),
            })?;
            roots.add(cert).map_err(|e| Error::Tls {
                reason: format!("CA certificate rejected: {e}"),
            })?;
        }
        if roots.is_empty() {
            return Err(Error::Tls {
                reason: "the CA PEM holds no certificate: expected at least one `BEGIN CERTIFICATE` block".to_owned(),
            });
        }
        Self::verify_with_roots(roots)
    }

    /// Verify the server's certificate against these roots.
    pub fn verify_with_roots(roots: RootCertStore) -> Result<Self, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls {
                reason: e.to_string(),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsOptions {
            config: Ok(Arc::new(config)),
            server_name: None,
            verifies: true,
        })
    }

    /// Use a client configuration of your own (client certificates, other roots).
    /// [`verifies`](TlsOptions::verifies) reports `true` for it.
    pub fn with_config(config: Arc<ClientConfig>) -> Self {
        TlsOptions {
            config: Ok(config),
            server_name: None,
            verifies: true,
        }
    }

    /// The server name to present and verify (`"mail.example.com"`), instead of the
    /// default.
    pub fn server_name(mut self, name: &str) -> Result<Self, Error> {
        let name = ServerName::try_from(name.to_owned()).map_err(|e| Error::Tls {
            reason: format!("invalid server name {name:?}: {e}"),
        })?;
        self.server_name = Some(name);
        Ok(self)
    }

    /// Whether to present the server name (SNI) in the handshake. Off by default for
    /// [`new`](TlsOptions::new), as relayd sends none; on for the verifying
    /// constructors, and as configured for [`with_config`](TlsOptions::with_config).
    /// Turn it on when the server picks its certificate by name.
    pub fn send_sni(mut self, on: bool) -> Self {
        if let Ok(config) = &mut self.config {
            if config.enable_sni != on {
                let mut changed = ClientConfig::clone(config);
                changed.enable_sni = on;
                *config = Arc::new(changed);
            }
        }
        self
    }

    /// Whether the server's certificate is verified.
    pub fn verifies(&self) -> bool {
        self.verifies
    }

    /// Whether the server name is presented (SNI).
    pub fn sends_sni(&self) -> bool {
        self.config.as_ref().is_ok_and(|c| c.enable_sni)
    }

    fn name_for(&self, addr: SocketAddr, hint: Option<&str>) -> ServerName<'static> {
        if let Some(name) = &self.server_name {
            return name.clone();
        }
        hint.and_then(|h| ServerName::try_from(h.to_owned()).ok())
            .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()))
    }

    /// Completes a handshake over `tcp` by the probe's deadline.
    pub(crate) async fn handshake(
        &self,
        tcp: TcpStream,
        probe: &Probe,
        hint: Option<&str>,
    ) -> Result<TlsStream<TcpStream>, Failure> {
        let config = self.config.as_ref().map_err(|e| {
            Failure::new(Reason::TlsHandshakeFailed)
                .with_detail(format!("no tls configuration: {e}"))
        })?;
        let connector = TlsConnector::from(config.clone());
        let name = self.name_for(probe.addr(), hint);
        match timeout_at(probe.deadline(), connector.connect(name, tcp)).await {
            Err(_) => Err(Failure::new(Reason::TlsHandshakeTimeout)),
            Ok(Err(e)) => Err(Failure::new(Reason::TlsHandshakeFailed).with_detail(e.to_string())),
            Ok(Ok(stream)) => Ok(stream),
        }
    }
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions::new()
    }
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("verifies", &self.verifies)
            .field("server_name", &self.server_name)
            .finish()
    }
}

/// relayd's `check tls`: connect and complete a TLS handshake.
///
/// Fails with [`Reason::ConnectRefused`], [`Reason::ConnectTimeout`],
/// [`Reason::TlsHandshakeFailed`] or [`Reason::TlsHandshakeTimeout`].
///
/// ```
/// use lb_health::{Tls, TlsOptions};
/// let unverified = Tls::new();
/// assert!(TlsOptions::verify_with_ca_pem(b"not a pem").is_err());
/// # let _ = unverified;
/// ```
#[derive(Clone, Debug)]
pub struct Tls {
    transport: Transport,
}

impl Tls {
    /// A handshake check without certificate verification.
    pub fn new() -> Self {
        Tls::with_options(TlsOptions::new())
    }

    /// A handshake check with these options.
    pub fn with_options(options: TlsOptions) -> Self {
        Tls {
            transport: Transport { tls: Some(options) },
        }
    }
}

impl Default for Tls {
    fn default() -> Self {
        Tls::new()
    }
}

impl Check for Tls {
    fn name(&self) -> &'static str {
        "tls"
    }

    fn check<'a>(&'a self, probe: &'a Probe) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { self.transport.open(probe, None).await.map(drop).into() })
    }
}
