//! A TLS server on 127.0.0.1 with a self-signed certificate made by `rcgen`.

use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;

use super::servers;

/// A running TLS server, the PEM of its self-signed certificate, and the server name
/// (SNI) each handshake presented.
pub struct TlsServer {
    pub addr: SocketAddr,
    pub cert_pem: String,
    pub sni: Arc<Mutex<Vec<Option<String>>>>,
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, as a server config.
fn config() -> (Arc<rustls::ServerConfig>, String) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("rcgen certificate");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("tls versions")
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .expect("server certificate");
    (Arc::new(config), ck.cert.pem())
}

/// A TLS server that completes handshakes, reads a request head (if any arrives
/// before the client waits) and answers with `response`, then closes.
pub async fn serve(response: &'static [u8]) -> TlsServer {
    let (config, cert_pem) = config();
    let acceptor = TlsAcceptor::from(config);
    let (l, addr) = servers::listener().await;
    let sni = Arc::new(Mutex::new(Vec::new()));
    let seen = sni.clone();
    servers::accept_loop(l, move |tcp| {
        let acceptor = acceptor.clone();
        let seen = seen.clone();
        async move {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                return;
            };
            seen.lock()
                .push(tls.get_ref().1.server_name().map(str::to_owned));
            if !response.starts_with(b"HTTP/") {
                // A banner protocol: speak first.
                let _ = tls.write_all(response).await;
                let mut buf = [0u8; 256];
                while matches!(tls.read(&mut buf).await, Ok(n) if n > 0) {}
                return;
            }
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.ends_with(b"\r\n\r\n") {
                match tls.read(&mut buf).await {
                    Ok(n) if n > 0 => req.extend_from_slice(&buf[..n]),
                    _ => return,
                }
            }
            let _ = tls.write_all(response).await;
            let _ = tls.shutdown().await;
        }
    });
    TlsServer {
        addr,
        cert_pem,
        sni,
    }
}
