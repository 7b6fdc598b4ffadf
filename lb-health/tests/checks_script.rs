//! `script` checks: relayd's exit-status rule, the timeout, and the argument.

use std::net::SocketAddr;
use std::time::Duration;

use lb_health::{Check, Outcome, Probe, Reason, Script};

const TIMEOUT: Duration = Duration::from_secs(5);

fn host() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 25))
}

fn sh(code: &str) -> Script {
    Script::new("sh").args(["-c", code])
}

#[tokio::test]
async fn exit_status_above_zero_is_up() {
    let out = sh("exit 1").check(&Probe::new(host(), TIMEOUT)).await;
    assert_eq!(out, Outcome::Up);
}

#[tokio::test]
async fn exit_status_zero_is_down() {
    let out = sh("exit 0").check(&Probe::new(host(), TIMEOUT)).await;
    assert_eq!(out.reason(), Some(Reason::ScriptFailed));
    assert_eq!(
        out.failure().and_then(|f| f.detail()),
        Some("exit status 0")
    );
}

#[tokio::test]
async fn killed_at_the_timeout_is_down_as_in_relayd() {
    // relayd's script_exec: a child that did not exit normally counts as status 0.
    let probe = Probe::new(host(), Duration::from_millis(200));
    let out = sh("sleep 30").check(&probe).await;
    assert!(matches!(out, Outcome::Down(_)), "{out}");
    assert_eq!(out.reason(), Some(Reason::ScriptTimeout));
    assert_eq!(
        out.failure().and_then(|f| f.detail()),
        Some("killed at the timeout")
    );
}

#[tokio::test]
async fn the_host_address_is_the_last_argument() {
    // With `sh -c`, the first argument after the command is `$0`.
    let out = sh("[ \"$0\" = 127.0.0.1 ] && exit 7; exit 0")
        .check(&Probe::new(host(), TIMEOUT))
        .await;
    assert_eq!(out, Outcome::Up);
}

#[tokio::test]
async fn a_missing_program_is_a_script_error() {
    let out = Script::new("/nonexistent/check-exchange")
        .check(&Probe::new(host(), TIMEOUT))
        .await;
    assert_eq!(out.reason(), Some(Reason::ScriptError));
}
