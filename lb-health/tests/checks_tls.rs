//! `tls`, `https` and `send ... tls` against a TLS server with an `rcgen` self-signed
//! certificate on 127.0.0.1.
#![cfg(feature = "tls")]

mod common;

use std::time::Duration;

use common::{servers, tls};
use lb_health::{Check, Http, Outcome, Probe, Reason, SendExpect, Tls, TlsOptions};

const TIMEOUT: Duration = Duration::from_millis(1000);

async fn run(check: &impl Check, addr: std::net::SocketAddr) -> Outcome {
    check.check(&Probe::new(addr, TIMEOUT)).await
}

#[tokio::test]
async fn handshake_without_verification_as_relayd() {
    let server = tls::serve(b"HTTP/1.0 200 OK\r\n\r\n").await;
    assert_eq!(run(&Tls::new(), server.addr).await, Outcome::Up);
}

#[tokio::test]
async fn handshake_verified_against_the_ca() {
    let server = tls::serve(b"HTTP/1.0 200 OK\r\n\r\n").await;
    let trusted = TlsOptions::verify_with_ca_pem(server.cert_pem.as_bytes()).unwrap();
    assert!(trusted.verifies());
    // The certificate names 127.0.0.1 and localhost: both verify.
    assert_eq!(
        run(&Tls::with_options(trusted.clone()), server.addr).await,
        Outcome::Up
    );
    let by_name = trusted.clone().server_name("localhost").unwrap();
    assert_eq!(
        run(&Tls::with_options(by_name), server.addr).await,
        Outcome::Up
    );
    // A name the certificate does not carry fails.
    let wrong_name = trusted.server_name("mail.example.com").unwrap();
    let out = run(&Tls::with_options(wrong_name), server.addr).await;
    assert_eq!(out.reason(), Some(Reason::TlsHandshakeFailed));
}

#[tokio::test]
async fn another_ca_fails_the_handshake() {
    let server = tls::serve(b"HTTP/1.0 200 OK\r\n\r\n").await;
    let other = tls::serve(b"HTTP/1.0 200 OK\r\n\r\n").await;
    let wrong_ca = TlsOptions::verify_with_ca_pem(other.cert_pem.as_bytes()).unwrap();
    let out = run(&Tls::with_options(wrong_ca), server.addr).await;
    assert_eq!(out.reason(), Some(Reason::TlsHandshakeFailed));
    assert!(out
        .failure()
        .and_then(|f| f.detail())
        .is_some_and(|d| d.contains("certificate")));
}

#[tokio::test]
async fn plain_servers_fail_tls() {
    let plain = servers::banner(b"220 mx.example.com ESMTP\r\n").await;
    assert_eq!(
        run(&Tls::new(), plain).await.reason(),
        Some(Reason::TlsHandshakeFailed)
    );
    let silent = servers::silent().await;
    let probe = Probe::new(silent, Duration::from_millis(100));
    assert_eq!(
        Tls::new().check(&probe).await.reason(),
        Some(Reason::TlsHandshakeTimeout)
    );
    let closed = servers::closed_port().await;
    assert_eq!(
        run(&Tls::new(), closed).await.reason(),
        Some(Reason::ConnectRefused)
    );
}

#[tokio::test]
async fn https_code_and_send_expect_over_tls() {
    let web = tls::serve(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
    let https = Http::code("/", 200).unwrap().tls(TlsOptions::new());
    assert_eq!(https.name(), "https code");
    assert_eq!(run(&https, web.addr).await, Outcome::Up);
    let moved = Http::code("/", 302).unwrap().tls(TlsOptions::new());
    assert_eq!(
        run(&moved, web.addr).await.reason(),
        Some(Reason::HttpCodeMismatch)
    );
    let imaps = tls::serve(b"* OK IMAP4rev1 ready\r\n").await;
    let check = SendExpect::imap().tls(TlsOptions::new());
    assert_eq!(run(&check, imaps.addr).await, Outcome::Up);
    assert_eq!(
        run(&SendExpect::pop3().tls(TlsOptions::new()), imaps.addr)
            .await
            .reason(),
        Some(Reason::ExpectMismatch)
    );
}

#[tokio::test]
async fn no_sni_by_default_as_in_relayd() {
    // relayd's check_tls: tls_connect_socket(tls, s, NULL), no server name.
    let web = tls::serve(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
    let named = Http::code("/", 200).unwrap().host("localhost").unwrap();
    let relayd = named.clone().tls(TlsOptions::new());
    // The server records the name before it answers: each check's answer orders it.
    assert_eq!(run(&relayd, web.addr).await, Outcome::Up);
    assert_eq!(*web.sni.lock(), [None]);
    // On request, the HTTP host is presented.
    let sni = named.clone().tls(TlsOptions::new().send_sni(true));
    assert_eq!(run(&sni, web.addr).await, Outcome::Up);
    // A verifying check names its server, and presents the name.
    let trusted = TlsOptions::verify_with_ca_pem(web.cert_pem.as_bytes()).unwrap();
    assert_eq!(run(&named.tls(trusted), web.addr).await, Outcome::Up);
    assert_eq!(
        web.sni.lock()[1..],
        [Some("localhost".to_owned()), Some("localhost".to_owned())]
    );
}

#[test]
fn ca_pem_must_hold_a_certificate() {
    let err = TlsOptions::verify_with_ca_pem(
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("no certificate"), "{err}");
}
