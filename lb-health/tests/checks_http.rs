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
async fn interim_responses_are_not_skipped_as_in_relayd() {
    // relayd's check_http_code reads the first status line, whatever it is.
    let mut r = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
    r.extend(response("200 OK", "", b""));
    let (addr, _) = servers::respond(r).await;
    let out = run(&Http::code("/", 200).unwrap(), addr).await;
    assert_eq!(out.reason(), Some(Reason::HttpCodeMismatch));
    assert_eq!(
        out.failure().and_then(|f| f.detail()),
        Some("expected 200, got 100")
    );
    assert_eq!(run(&Http::code("/", 100).unwrap(), addr).await, Outcome::Up);
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

fn chunked(body: &[u8]) -> Vec<u8> {
    let mut chunked = Vec::new();
    for part in body.chunks(20) {
        chunked.extend(format!("{:x}\r\n", part.len()).into_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    chunked
}

#[tokio::test]
async fn digest_of_a_chunked_response_is_relayds_raw_bytes() {
    // relayd hashes what follows the first blank line, chunk framing included.
    let framed = chunked(BODY);
    let (addr, _) = servers::respond(response(
        "200 OK",
        "Transfer-Encoding: chunked\r\n",
        &framed,
    ))
    .await;
    assert_eq!(
        run(&Http::digest("/", &sha1_of(&framed)).unwrap(), addr).await,
        Outcome::Up
    );
    let decoded = Http::digest("/", &sha1_of(BODY)).unwrap();
    assert_eq!(
        run(&decoded, addr).await.reason(),
        Some(Reason::HttpDigestMismatch)
    );
    // Ours, on request: the decoded body.
    let body = Http::body_digest("/", &sha1_of(BODY)).unwrap();
    assert_eq!(body.name(), "http body digest");
    assert_eq!(run(&body, addr).await, Outcome::Up);
}

#[tokio::test]
async fn digest_stops_at_the_first_nul_as_in_relayd() {
    // relayd's digeststr(head, strlen(head)): the body ends at its first NUL.
    let body = b"<html>\0binary tail</html>";
    let headers = format!("Content-Length: {}\r\n", body.len());
    let (addr, _) = servers::respond(response("200 OK", &headers, body)).await;
    let relayd = Http::digest("/", &md5_of(b"<html>")).unwrap();
    assert_eq!(run(&relayd, addr).await, Outcome::Up);
    let whole = Http::body_digest("/", &md5_of(body)).unwrap();
    assert_eq!(run(&whole, addr).await, Outcome::Up);
    assert_eq!(
        run(&Http::digest("/", &md5_of(body)).unwrap(), addr)
            .await
            .reason(),
        Some(Reason::HttpDigestMismatch)
    );
}

#[tokio::test]
async fn body_digest_matches_when_read_to_close() {
    let (to_close, _) = servers::respond(response("200 OK", "", BODY)).await;
    for check in [
        Http::digest("/", &sha1_of(BODY)).unwrap(),
        Http::body_digest("/", &sha1_of(BODY)).unwrap(),
    ] {
        assert_eq!(run(&check, to_close).await, Outcome::Up);
    }
}

#[tokio::test]
async fn hostile_lengths_with_the_largest_max_body() {
    // usize::MAX is clamped; lengths near u64::MAX must not overflow the framing.
    let headers = format!("Content-Length: {}\r\n", u64::MAX);
    let (huge, _) = servers::respond(response("200 OK", &headers, b"abc")).await;
    let check = Http::body_digest("/", &sha1_of(b"abc"))
        .unwrap()
        .max_body(usize::MAX);
    let out = run(&check, huge).await;
    assert_eq!(out.reason(), Some(Reason::InvalidResponse));
    assert_eq!(
        out.failure().and_then(|f| f.detail()).map(str::to_owned),
        Some(format!("body larger than {} bytes", Http::MAX_BODY))
    );
    let (chunk, _) = servers::respond(response(
        "200 OK",
        "Transfer-Encoding: chunked\r\n",
        b"ffffffffffffffff\r\nabc\r\n0\r\n\r\n",
    ))
    .await;
    let out = run(&check, chunk).await;
    assert_eq!(out.reason(), Some(Reason::InvalidResponse));
    // relayd's digest never looks at the framing: the raw bytes are hashed.
    let raw = Http::digest("/", &sha1_of(b"abc"))
        .unwrap()
        .max_body(usize::MAX);
    assert_eq!(run(&raw, huge).await, Outcome::Up);
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
    let decoded = Http::body_digest("/", &sha1_of(b"abc")).unwrap();
    assert_eq!(
        run(&decoded, short).await.reason(),
        Some(Reason::InvalidResponse)
    );
    // relayd hashes what arrived before the close: the short body matches.
    let raw = Http::digest("/", &sha1_of(b"abc")).unwrap();
    assert_eq!(run(&raw, short).await, Outcome::Up);
    let (garbage, _) = servers::respond(b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec()).await;
    assert_eq!(
        run(&Http::code("/", 200).unwrap(), garbage).await.reason(),
        Some(Reason::InvalidResponse)
    );
    let (no_blank_line, _) = servers::respond(b"HTTP/1.0 200 OK\r\n".to_vec()).await;
    let out = run(&raw, no_blank_line).await;
    assert_eq!(
        out.failure().and_then(|f| f.detail()),
        Some("no blank line ending the response head")
    );
    let (big, _) = servers::respond(response("200 OK", "", &[b'x'; 4096])).await;
    for check in [
        Http::digest("/", &sha1_of(b"")).unwrap().max_body(1024),
        Http::body_digest("/", &sha1_of(b""))
            .unwrap()
            .max_body(1024),
    ] {
        let out = run(&check, big).await;
        assert_eq!(
            out.failure().and_then(|f| f.detail()),
            Some("body larger than 1024 bytes")
        );
    }
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_read_timeout() {
    let silent = servers::silent().await;
    let probe = Probe::new(silent, Duration::from_millis(100));
    let out = Http::code("/", 200).unwrap().check(&probe).await;
    assert_eq!(out, Outcome::down(Reason::ReadTimeout));
}
