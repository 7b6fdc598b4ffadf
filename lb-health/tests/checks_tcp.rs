//! `tcp`, `send`/`expect` (banners) and `binary` against real servers on 127.0.0.1.

mod common;
#[cfg(target_os = "linux")]
#[path = "../../test-support/rebind.rs"]
mod rebind;

use std::time::Duration;

use common::servers;
use lb_health::{Binary, Check, Outcome, Probe, Reason, SendExpect, Tcp};

const TIMEOUT: Duration = Duration::from_millis(500);

async fn run(check: &impl Check, addr: std::net::SocketAddr) -> Outcome {
    check.check(&Probe::new(addr, TIMEOUT)).await
}

#[tokio::test]
async fn tcp_connects_or_is_refused() {
    let (_l, up) = servers::listener().await;
    assert_eq!(run(&Tcp, up).await, Outcome::Up);
    let down = servers::closed_port().await;
    assert_eq!(run(&Tcp, down).await.reason(), Some(Reason::ConnectRefused));
}

#[tokio::test]
async fn banners_of_mail_protocols() {
    let smtp = servers::banner(b"220 mx.example.com ESMTP ready\r\n").await;
    let pop3 = servers::banner(b"+OK POP3 server ready\r\n").await;
    let imap = servers::banner(b"* OK [CAPABILITY IMAP4rev1] ready\r\n").await;
    assert_eq!(run(&SendExpect::smtp(), smtp).await, Outcome::Up);
    assert_eq!(run(&SendExpect::pop3(), pop3).await, Outcome::Up);
    assert_eq!(run(&SendExpect::imap(), imap).await, Outcome::Up);
    // Each protocol's check against another's banner.
    assert_eq!(
        run(&SendExpect::smtp(), pop3).await.reason(),
        Some(Reason::ExpectMismatch)
    );
    assert_eq!(
        run(&SendExpect::imap(), smtp).await.reason(),
        Some(Reason::ExpectMismatch)
    );
}

#[tokio::test]
async fn wrong_banner_is_an_expect_mismatch() {
    // The server keeps the connection open: the literal prefix "220" decides at once.
    let wrong = servers::banner(b"554 5.3.2 service unavailable\r\n").await;
    let out = run(&SendExpect::smtp(), wrong).await;
    let failure = out.failure().expect("a mismatch");
    assert_eq!(failure.reason(), Reason::ExpectMismatch);
    assert_eq!(
        failure.detail(),
        Some("expected \"220*\", received \"554 5.3.2 service unavailable\\r\\n\"")
    );
    // A pattern without a literal prefix waits; at the timeout, what came is reported.
    let any_ok = SendExpect::banner("*OK*").unwrap();
    let out = any_ok
        .check(&Probe::new(wrong, Duration::from_millis(100)))
        .await;
    assert_eq!(out.reason(), Some(Reason::ExpectMismatch));
    assert!(out
        .failure()
        .and_then(|f| f.detail())
        .is_some_and(|d| d.ends_with("before the timeout")));
}

#[tokio::test]
async fn pattern_matches_the_buffer_as_it_grows() {
    // The echo server returns our request; the pattern spans the whole of it.
    let echo = servers::echo().await;
    let check = SendExpect::new("PING 1\r\nPING 2\r\n", "PING 1*PING 2*").unwrap();
    assert_eq!(run(&check, echo).await, Outcome::Up);
}

#[tokio::test]
async fn silence_is_a_read_timeout() {
    let silent = servers::silent().await;
    let probe = Probe::new(silent, Duration::from_millis(100));
    assert_eq!(
        SendExpect::smtp().check(&probe).await.reason(),
        Some(Reason::ReadTimeout)
    );
    let probe = Probe::new(silent, Duration::from_millis(100));
    assert_eq!(
        Binary::new("", "00").unwrap().check(&probe).await.reason(),
        Some(Reason::ReadTimeout)
    );
}

#[tokio::test]
async fn a_closed_connection_without_a_match_is_unknown_as_in_relayd() {
    // relayd's check_send_expect leaves HOST_UNKNOWN when the server closes first.
    let (addr, _) = servers::respond(Vec::new()).await;
    // `respond` waits for a blank line: send one, get nothing back.
    let check = SendExpect::new("\r\n\r\n", "+OK*").unwrap();
    let out = run(&check, addr).await;
    assert!(matches!(out, Outcome::Unknown(_)), "{out}");
    assert_eq!(out.reason(), Some(Reason::ExpectMismatch));
    assert_eq!(
        out.failure().and_then(|f| f.detail()),
        Some("expected \"+OK*\", received \"\" before the connection closed")
    );
    // Data that fits the literal prefix but never completes the match: unknown too.
    let (addr, _) = servers::respond(b"+OK".to_vec()).await;
    let out = run(&SendExpect::new("\r\n\r\n", "+OK ready*").unwrap(), addr).await;
    assert!(matches!(out, Outcome::Unknown(_)), "{out}");
}

#[tokio::test]
async fn the_end_of_the_stream_is_matched_too() {
    // fnmatch("*", "") matches: relayd marks the host up when it closes at once.
    let (addr, _) = servers::respond(Vec::new()).await;
    let check = SendExpect::new("\r\n\r\n", "*").unwrap();
    assert_eq!(run(&check, addr).await, Outcome::Up);
}

#[tokio::test]
async fn data_after_a_nul_byte_is_not_matched() {
    // relayd copies the buffer with strndup: fnmatch sees it up to the first NUL.
    let (addr, _) = servers::respond(b"+OK\0\xff binary tail".to_vec()).await;
    let exact = SendExpect::new("\r\n\r\n", "+OK").unwrap();
    assert_eq!(run(&exact, addr).await, Outcome::Up);
    let (addr, _) = servers::respond(b"+OK\0 ready".to_vec()).await;
    let tail = SendExpect::new("\r\n\r\n", "+OK*ready").unwrap();
    let out = run(&tail, addr).await;
    assert_eq!(out.reason(), Some(Reason::ExpectMismatch));
}

#[tokio::test]
async fn backslash_escapes_and_bytes_that_are_not_utf8() {
    let (addr, _) = servers::respond(b"\xfe* OK\r\n".to_vec()).await;
    let check = SendExpect::new("\r\n\r\n", "?\\* OK*").unwrap();
    assert_eq!(run(&check, addr).await, Outcome::Up);
}

#[tokio::test]
async fn binary_compares_the_first_bytes() {
    let echo = servers::echo().await;
    let ok = Binary::new("cafe0001ff", "cafe00").unwrap();
    assert_eq!(run(&ok, echo).await, Outcome::Up);
    let bad = Binary::new("cafe0001ff", "cafe01").unwrap();
    let out = run(&bad, echo).await;
    assert_eq!(out.reason(), Some(Reason::ExpectMismatch));
    assert_eq!(
        out.failure().and_then(|f| f.detail()),
        Some("expected cafe01, received cafe00")
    );
}

/// A check closes first, so its socket lingers on an ephemeral port; a listener must
/// still be able to bind that port (check sockets set `SO_REUSEADDR`).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_finished_check_does_not_block_a_listener_on_its_port() {
    rebind::assert_rebindable(|addr| async move {
        assert_eq!(run(&Tcp, addr).await, Outcome::Up);
    })
    .await;
}
