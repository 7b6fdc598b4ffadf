//! `http` code and digest checks against real HTTP servers on 127.0.0.1.

mod common;

use std::time::Duration;

use common::servers;
use lb_health::{Check, Digest, Http, Outcome, Probe, Reason};

const TIMEOUT: Duration = Duration::from_millis(500);
const BODY: &[u8] = b"<html><body>Outlook Web App is healthy</body></html>";

async fn run(check: &impl Check, addr: std::net::SocketAddr) -> Outcome {
    check.check(&Probe::new(addr, TIMEOUT)).await
}

fn response(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 {status}\r\n{headers}\r\n").into_bytes();
    r.extend_from_slice(body);
    r
}

fn sha1_of(body: &[u8]) -> String {
    let zero: Digest = "0000000000000000000000000000000000000000".parse().unwrap();
    hex::encode(zero.of(body).as_bytes())
}

fn md5_of(body: &[u8]) -> String {
    let zero: Digest = "00000000000000000000000000000000".parse().unwrap();
    hex::encode(zero.of(body).as_bytes())
}

#[tokio::test]
async fn code_200_is_up_and_the_request_is_relayds() {
    let (addr, seen) = servers::respond(response("200 OK", "Content-Length: 0\r\n", b"")).await;
    let check = Http::code("/owa/healthcheck.htm", 200).unwrap();
    assert_eq!(run(&check, addr).await, Outcome::Up);
    assert_eq!(
        seen.lock()[0],
        b"HEAD /owa/healthcheck.htm HTTP/1.0\r\n\r\n"
    );
}

#[tokio::test]
async fn host_switches_to_http_1_1() {
    let (addr, seen) = servers::respond(response("200 OK", "", b"")).await;
    let check = Http::code("/", 200)
        .unwrap()
        .host("mail.example.com")
        .unwrap();
    assert_eq!(run(&check, addr).await, Outcome::Up);
    assert_eq!(
        seen.lock()[0],
        b"HEAD / HTTP/1.1\r\nHost: mail.example.com\r\nConnection: close\r\n\r\n"
    );
}

#[tokio::test]
async fn code_302_is_a_code_mismatch() {
    let (addr, _) = servers::respond(response(
        "302 Found",
        "Location: /owa/auth/logon.aspx\r\nContent-Length: 0\r\n",
        b"",
    ))
    .await;
    let out = run(&Http::code("/owa/", 200).unwrap(), addr).await;
    assert_eq!(out.reason(), Some(Reason::HttpCodeMismatch));
    assert_eq!(
        out.failure().and_then(|f| f.detail()),
        Some("expected 200, got 302")
    );
    assert_eq!(
        run(&Http::code("/owa/", 302).unwrap(), addr).await,
        Outcome::Up
    );
}

#[tokio::test]
async fn interim_responses_are_skipped() {
    let mut r = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
    r.extend(response("503 Service Unavailable", "", b""));
    let (addr, _) = servers::respond(r).await;
    let out = run(&Http::code("/", 200).unwrap(), addr).await;
    assert_eq!(
        out.failure().and_then(|f| f.detail()),
        Some("expected 200, got 503")
    );
}

#[tokio::test]
async fn body_digest_matches_with_content_length() {
    let headers = format!("Content-Length: {}\r\n", BODY.len());
    let (addr, seen) = servers::respond(response("200 OK", &headers, BODY)).await;
    let sha1 = Http::digest("/", &sha1_of(BODY)).unwrap();
    let md5 = Http::digest("/", &md5_of(BODY)).unwrap();
    assert_eq!(run(&sha1, addr).await, Outcome::Up);
    assert_eq!(run(&md5, addr).await, Outcome::Up);
    assert_eq!(seen.lock()[0], b"GET / HTTP/1.0\r\n\r\n");
}

#[tokio::test]
async fn body_digest_matches_when_read_to_close_and_chunked() {
    let (to_close, _) = servers::respond(response("200 OK", "", BODY)).await;
    let check = Http::digest("/", &sha1_of(BODY)).unwrap();
    assert_eq!(run(&check, to_close).await, Outcome::Up);
    let mut chunked = Vec::new();
    for part in BODY.chunks(20) {
        chunked.extend(format!("{:x}\r\n", part.len()).into_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (addr, _) = servers::respond(response(
        "200 OK",
        "Transfer-Encoding: chunked\r\n",
        &chunked,
    ))
    .await;
    assert_eq!(run(&check, addr).await, Outcome::Up);
}

#[tokio::test]
async fn body_digest_mismatch() {
    let changed = b"<html><body>Service Unavailable</body></html>";
    let headers = format!("Content-Length: {}\r\n", changed.len());
    let (addr, _) = servers::respond(response("200 OK", &headers, changed)).await;
    let want = sha1_of(BODY);
    let out = run(&Http::digest("/", &want).unwrap(), addr).await;
    assert_eq!(out.reason(), Some(Reason::HttpDigestMismatch));
    assert_eq!(
        out.failure().and_then(|f| f.detail()).map(str::to_owned),
        Some(format!(
            "expected sha1 {want}, got sha1 {}",
            sha1_of(changed)
        ))
    );
}

#[tokio::test]
async fn short_bodies_and_garbage_are_invalid_responses() {
    let (short, _) = servers::respond(response("200 OK", "Content-Length: 100\r\n", b"abc")).await;
    let check = Http::digest("/", &sha1_of(b"abc")).unwrap();
    assert_eq!(
        run(&check, short).await.reason(),
        Some(Reason::InvalidResponse)
    );
    let (garbage, _) = servers::respond(b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec()).await;
    assert_eq!(
        run(&Http::code("/", 200).unwrap(), garbage).await.reason(),
        Some(Reason::InvalidResponse)
    );
    let (big, _) = servers::respond(response("200 OK", "", &[b'x'; 4096])).await;
    let small = Http::digest("/", &sha1_of(b"")).unwrap().max_body(1024);
    let out = run(&small, big).await;
    assert_eq!(
        out.failure().and_then(|f| f.detail()),
        Some("body larger than 1024 bytes")
    );
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_read_timeout() {
    let silent = servers::silent().await;
    let probe = Probe::new(silent, Duration::from_millis(100));
    let out = Http::code("/", 200).unwrap().check(&probe).await;
    assert_eq!(out, Outcome::down(Reason::ReadTimeout));
}
