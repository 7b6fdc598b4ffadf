//! Property tests: no input makes the parser panic or loop, and every diagnostic points
//! inside the input. Three generators: random bytes, soups of the language's tokens,
//! and mutations (deletions, insertions, swaps) of valid configurations.

use std::path::Path;

use lb_config::{parse_with, Report};
use proptest::prelude::*;

const VALID: [&str; 3] = [
    include_str!("../../examples/exchange/exchange.conf"),
    "ext = \"127.0.0.1\"\ninterval 5\ntimeout 300\nlog state changes\nprefork 3\n\
     table <a> disable { 10.0.0.1 retry 2, 10.0.0.2 parent 1 }\ntable <b> { }\n\
     tcp protocol \"p\" { tcp { nodelay, backlog 10, socket buffer 65536 } }\n\
     relay r {\n listen on $ext port 80\n forward to <a> port 8080 mode loadbalance \"k\" check http \"/\" host h code 200 interval 3 timeout 100\n\
     forward to <b> mode least-states check send nothing expect \"+OK*\" tls\n session timeout 30\n protocol \"p\"\n disable\n}\n\
     redirect d {\n listen on 127.0.0.1 tcp port 25 interface em0\n forward to <a> mode source-hash check binary send \"00\" expect \"01\"\n sticky-address\n}\n",
    "include \"other.conf\"\nx = 'a b'\nrelay \"s\" {\n listen on * port 1\n forward to <t> check script \"/bin/true\" mode p2c\n}\n",
];

const TOKENS: [&str; 48] = [
    "table",
    "relay",
    "redirect",
    "protocol",
    "tcp",
    "http",
    "listen",
    "on",
    "port",
    "forward",
    "to",
    "mode",
    "check",
    "source-hash",
    "interval",
    "timeout",
    "session",
    "log",
    "state",
    "changes",
    "include",
    "\"x.conf\"",
    "load-balancer",
    "interface",
    "{",
    "}",
    "<",
    ">",
    "=",
    ",",
    "\n",
    "\n",
    " ",
    "$",
    "$a",
    "a",
    "\"q\"",
    "'",
    "\"",
    "#c\n",
    "\\\n",
    "\\",
    "80",
    "0",
    "99999999999999999999",
    "*",
    "retry",
    "é",
];

/// Includes read from memory: `other.conf` includes itself (twice), anything else fails.
fn reader() -> lb_config::lexer::Reader {
    Box::new(|p: &Path| {
        if p.ends_with("other.conf") {
            Ok(
                b"include \"other.conf\"\ninclude \"other.conf\"\ntable <t> { 10.0.0.1 }\n"
                    .to_vec(),
            )
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "not in the test's files",
            ))
        }
    })
}

fn check(text: &str) {
    let macros = [("a".to_owned(), "relay { $a".to_owned())];
    let report: Report = match parse_with("fuzz.conf", text, &macros, reader()) {
        Ok(parsed) => parsed.report,
        Err(report) => report,
    };
    for d in &report.diagnostics {
        assert!(report.sources.contains(&d.span), "{d:?} outside its file");
    }
    // Rendering must not panic either.
    let _ = report.render();
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 4000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn token_soups(tokens in proptest::collection::vec(proptest::sample::select(&TOKENS[..]), 0..80)) {
        check(&tokens.join(" "));
        check(&tokens.concat());
    }

    #[test]
    fn mutated_configurations(
        which in 0..VALID.len(),
        edits in proptest::collection::vec((0..3u8, any::<prop::sample::Index>(), 0..12usize, proptest::sample::select(&TOKENS[..])), 1..6),
    ) {
        let mut text: Vec<u8> = VALID[which].as_bytes().to_vec();
        for (kind, at, len, token) in edits {
            let i = at.index(text.len() + 1);
            match kind {
                0 => { let end = (i + len).min(text.len()); text.drain(i..end); }
                1 => { text.splice(i..i, token.bytes()); }
                _ => { let end = (i + len).min(text.len()); text[i..end].reverse(); }
            }
        }
        check(&String::from_utf8_lossy(&text));
    }
}
