//! Demo clients: connect through a relay from a chosen source address, speak the
//! relay's protocol the way a real client would (log in, read the page, echo), and say
//! which server answered.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use lb::health::AcceptAnyServerCert;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;

use crate::services::{Protocol, Service};

/// How long one client visit may take, connect to goodbye.
const VISIT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the clients share: the TLS configuration.
#[derive(Clone)]
pub struct Clients {
    tls: TlsConnector,
}

impl Clients {
    /// Clients whose TLS accepts any certificate: the demo servers' are self-signed.
    pub fn new() -> Result<Self, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(AcceptAnyServerCert::new(provider.clone()));
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Clients {
            tls: TlsConnector::from(Arc::new(config)),
        })
    }

    /// The TLS connector (no certificate verification).
    pub fn connector(&self) -> &TlsConnector {
        &self.tls
    }

    /// Connects from `source` to the relay at `relay` and runs one session of its
    /// protocol. Returns the name of the server that answered, or what went wrong.
    pub async fn visit(
        &self,
        service: Service,
        source: IpAddr,
        relay: SocketAddr,
    ) -> Result<String, String> {
        match tokio::time::timeout(VISIT_TIMEOUT, self.session(service, source, relay)).await {
            Ok(Ok(server)) => Ok(server),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} s", VISIT_TIMEOUT.as_secs())),
        }
    }

    async fn session(
        &self,
        service: Service,
        source: IpAddr,
        relay: SocketAddr,
    ) -> io::Result<String> {
        let tcp = connect_from(source, relay).await?;
        if service.protocol.tls() {
            let name = ServerName::try_from("mail.demo.invalid").map_err(io::Error::other)?;
            let tls = self.tls.connect(name, tcp).await?;
            speak(service.protocol, tls).await
        } else {
            speak(service.protocol, tcp).await
        }
    }
}

/// A TCP connection from `source` (port chosen by the system) to `to`. A source of
/// the other address family than `to` cannot be used: the system then chooses.
///
/// `SO_REUSEADDR`, as lb's own outgoing sockets: the TIME_WAIT a closed client leaves on
/// its ephemeral port then never keeps a demo server from binding that port (the demo
/// ports 59532/59533 are in Linux's ephemeral range).
pub async fn connect_from(source: IpAddr, to: SocketAddr) -> io::Result<TcpStream> {
    let socket = match to {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    if source.is_ipv4() == to.is_ipv4() {
        socket.bind(SocketAddr::new(source, 0))?;
    }
    socket.connect(to).await
}

async fn speak<S: AsyncRead + AsyncWrite + Unpin>(
    protocol: Protocol,
    stream: S,
) -> io::Result<String> {
    let mut s = BufReader::new(stream);
    match protocol {
        Protocol::Https => https(&mut s).await,
        Protocol::Pop3 | Protocol::Pop3s => pop3(&mut s).await,
        Protocol::Imap | Protocol::Imaps => imap(&mut s).await,
        Protocol::Rpc => rpc(&mut s).await,
    }
}

/// `GET /`, then the server's name from the page.
async fn https<S: AsyncRead + AsyncWrite + Unpin>(s: &mut BufReader<S>) -> io::Result<String> {
    s.write_all(b"GET / HTTP/1.1\r\nHost: mail.demo.invalid\r\nConnection: close\r\n\r\n")
        .await?;
    let mut page = Vec::new();
    s.take(64 * 1024).read_to_end(&mut page).await?;
    let page = String::from_utf8_lossy(&page);
    if !page.starts_with("HTTP/1.1 200 ") {
        return Err(unexpected(
            "an HTTP 200 response",
            page.lines().next().unwrap_or(""),
        ));
    }
    let marker = "<b id=\"server\">";
    page.split_once(marker)
        .and_then(|(_, rest)| rest.split_once("</b>"))
        .map(|(name, _)| name.to_owned())
        .ok_or_else(|| unexpected("an OWA page naming its server", "a page without a name"))
}

/// Greeting, `USER`, `PASS`, `STAT`, `QUIT`; the name is the greeting's second word.
async fn pop3<S: AsyncRead + AsyncWrite + Unpin>(s: &mut BufReader<S>) -> io::Result<String> {
    let greeting = line(s).await?;
    let server = word(&greeting, 1, "+OK")?;
    for command in ["USER demo", "PASS demo", "STAT", "QUIT"] {
        s.write_all(format!("{command}\r\n").as_bytes()).await?;
        let reply = line(s).await?;
        if !reply.starts_with("+OK") {
            return Err(unexpected(&format!("+OK to {command}"), &reply));
        }
    }
    Ok(server)
}

/// Greeting, `LOGIN`, `LOGOUT` with tags; the name follows the greeting's `]`.
async fn imap<S: AsyncRead + AsyncWrite + Unpin>(s: &mut BufReader<S>) -> io::Result<String> {
    let greeting = line(s).await?;
    if !greeting.starts_with("* OK") {
        return Err(unexpected("an IMAP greeting", &greeting));
    }
    let server = greeting
        .split_once("] ")
        .and_then(|(_, rest)| rest.split(' ').next())
        .map(str::to_owned)
        .ok_or_else(|| unexpected("a greeting naming the server", &greeting))?;
    for (tag, command) in [("a1", "LOGIN demo \"demo\""), ("a2", "LOGOUT")] {
        s.write_all(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        loop {
            let reply = line(s).await?;
            if reply.starts_with("* ") {
                continue;
            }
            if !reply.starts_with(&format!("{tag} OK")) {
                return Err(unexpected(&format!("{tag} OK"), &reply));
            }
            break;
        }
    }
    Ok(server)
}

/// Banner, then one line echoed back; the name is the banner's first word.
async fn rpc<S: AsyncRead + AsyncWrite + Unpin>(s: &mut BufReader<S>) -> io::Result<String> {
    let banner = line(s).await?;
    let server = word(&banner, 0, "")?;
    s.write_all(b"ping from the lb demo\r\n").await?;
    let echo = line(s).await?;
    if echo != "ping from the lb demo" {
        return Err(unexpected("the echo of our line", &echo));
    }
    Ok(server)
}

async fn line<S: AsyncRead + AsyncWrite + Unpin>(s: &mut BufReader<S>) -> io::Result<String> {
    let mut out = String::new();
    let n = (&mut *s).take(4096).read_line(&mut out).await?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the connection closed before the server answered",
        ));
    }
    Ok(out.trim_end().to_owned())
}

/// Word `n` of `line`, which must start with `prefix`.
fn word(line: &str, n: usize, prefix: &str) -> io::Result<String> {
    line.strip_prefix(prefix)
        .and_then(|_| line.split(' ').nth(n))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| unexpected("a greeting naming the server", line))
}

fn unexpected(expected: &str, got: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("expected {expected}, got {got:?}"),
    )
}
