//! What the socket tests of lb-config share: a bound for every wait, free ports, and a
//! configuration text parsed and resolved or the test fails with the rendered report.
#![allow(dead_code)] // each test binary uses its own subset

use std::time::Duration;

use lb_config::{parse_str, resolve, Plan};

/// The longest any single wait of a test may take.
pub const BOUND: Duration = Duration::from_secs(10);

/// A port free a moment ago (the grammar has no `port 0`).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `text`, parsed as the file `name` and resolved.
pub fn plan(name: &str, text: &str) -> Plan {
    let parsed = parse_str(name, text, &[]).unwrap_or_else(|r| panic!("{}", r.render()));
    resolve(parsed).unwrap_or_else(|r| panic!("{}", r.render()))
}
