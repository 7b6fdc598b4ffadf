//! What valid configurations parse into, exactly, and which warnings they give.

use std::path::Path;
use std::time::Duration;

use lb_config::model::{CheckKind, ListenAddr, Mode, RelayKind};
use lb_config::{parse_str, parse_with, Parsed};

fn parse(text: &str) -> Parsed {
    parse_str("t.conf", text, &[]).unwrap_or_else(|r| panic!("{}", r.render()))
}

fn warnings(p: &Parsed) -> Vec<String> {
    p.report.warnings().map(|d| d.message.clone()).collect()
}

#[test]
fn globals_tables_and_a_relay() {
    let p = parse(
        "interval 5\ntimeout 300\nlog state changes\nlog connection\n\
         table <a> disable { 10.0.0.1 retry 2, \"10.0.0.2\"\n 10.0.0.3 }\ntable <empty> { }\n\
         relay www {\n listen on 127.0.0.1 port 80\n listen on * port 81\n\
         forward to <a> port 8080 mode loadbalance \"secret\" check http \"/\" host example.org code 200 interval 3 timeout 100\n\
         forward to <empty> mode least-states\n session timeout 30\n disable\n sticky-address\n}\n",
    );
    let g = &p.config.globals;
    assert_eq!(
        (g.interval, g.timeout),
        (Duration::from_secs(5), Duration::from_millis(300))
    );
    assert!(g.log_state_changes && g.log_connections);
    let a = &p.config.tables[0];
    assert!(a.disabled);
    let hosts: Vec<_> = a.hosts.iter().map(|h| (h.name.as_str(), h.retry)).collect();
    assert_eq!(hosts, [("10.0.0.1", 2), ("10.0.0.2", 0), ("10.0.0.3", 0)]);
    assert!(p.config.tables[1].hosts.is_empty());
    let r = &p.config.relays[0];
    assert_eq!(
        (r.name.as_str(), r.kind, r.disabled, r.sticky),
        ("www", RelayKind::Relay, true, true)
    );
    assert_eq!(
        r.listen[0].addr,
        Some(ListenAddr::Ip("127.0.0.1".parse().unwrap()))
    );
    assert_eq!((r.listen[1].addr.clone(), r.listen[1].port), (None, 81));
    let f = &r.forwards[0];
    assert_eq!((f.port, f.mode), (Some(8080), Mode::LoadBalance));
    assert_eq!(f.key.as_ref().map(|k| k.0.as_str()), Some("secret"));
    assert_eq!(
        f.check.as_ref().map(|c| c.kind.clone()),
        Some(CheckKind::HttpCode {
            tls: false,
            path: "/".into(),
            host: Some("example.org".into()),
            code: 200
        })
    );
    assert_eq!(
        (f.interval, f.timeout),
        (
            Some(Duration::from_secs(3)),
            Some(Duration::from_millis(100))
        )
    );
    assert_eq!(r.forwards[1].mode, Mode::LeastStates);
    assert_eq!(r.session_timeout, Duration::from_secs(30));
    assert!(warnings(&p).is_empty(), "{:?}", warnings(&p));
}

#[test]
fn every_mode_and_every_check_with_relayds_spelling() {
    for (name, mode) in Mode::ALL {
        let p = parse(&format!("table <t> {{ 10.0.0.1 }}\nrelay r {{\n listen on * port 1\n forward to <t> mode {name}\n}}\n"));
        assert_eq!(p.config.relays[0].forwards[0].mode, mode);
    }
    let checks = [
        ("tcp", CheckKind::Tcp),
        ("tls", CheckKind::Tls),
        ("ssl", CheckKind::Tls),
        (
            "https \"/x\" digest \"abc\"",
            CheckKind::HttpDigest {
                tls: true,
                path: "/x".into(),
                host: None,
                digest: "abc".into(),
            },
        ),
        (
            "send nothing expect \"+OK*\" tls",
            CheckKind::SendExpect {
                send: String::new(),
                expect: "+OK*".into(),
                tls: true,
            },
        ),
        (
            "send \"HELO\" expect '250*'",
            CheckKind::SendExpect {
                send: "HELO".into(),
                expect: "250*".into(),
                tls: false,
            },
        ),
        (
            "binary send \"00ff\" expect \"01\"",
            CheckKind::Binary {
                send: "00ff".into(),
                expect: "01".into(),
                tls: false,
            },
        ),
        (
            "script \"/bin/true\"",
            CheckKind::Script("/bin/true".into()),
        ),
    ];
    for (text, kind) in checks {
        let p = parse(&format!("table <t> {{ 10.0.0.1 }}\nrelay r {{\n listen on * port 1\n forward to <t> check {text}\n}}\n"));
        assert_eq!(
            p.config.relays[0].forwards[0]
                .check
                .as_ref()
                .map(|c| c.kind.clone()),
            Some(kind),
            "{text}"
        );
    }
}

#[test]
fn macros_continuation_comments_and_command_line_overrides() {
    let text = "addr = \"10.0.0.9\" # a comment\nport = 8443\ntable <t> { $addr }\nrelay r {\n listen on * \\\n  port $port\n forward to <t>\n}\n";
    let p = parse(text);
    assert_eq!(p.config.tables[0].hosts[0].name, "10.0.0.9");
    assert_eq!(p.config.relays[0].listen[0].port, 8443);
    let overridden = parse_str("t.conf", text, &[("addr".into(), "10.0.0.7".into())])
        .unwrap_or_else(|r| panic!("{}", r.render()));
    assert_eq!(overridden.config.tables[0].hosts[0].name, "10.0.0.7");
}

#[test]
fn includes_are_read_in_place_relative_to_the_including_file() {
    let reader = Box::new(|p: &Path| {
        if p == Path::new("/etc/lb/tables.conf") {
            Ok(b"table <t> { 10.0.0.1 }\n".to_vec())
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such file",
            ))
        }
    });
    let text = "include \"tables.conf\"\nrelay r {\n listen on * port 1\n forward to <t>\n}\n";
    let p = parse_with("/etc/lb/relayd.conf", text, &[], reader)
        .unwrap_or_else(|r| panic!("{}", r.render()));
    assert_eq!(p.config.tables[0].name, "t");
    assert_eq!(p.report.sources.len(), 2);
}

#[test]
fn protocols_redirects_and_halon_blocks() {
    let p = parse(
        "prefork 5\ntcp protocol \"fast\" { tcp { nodelay, backlog 64, socket buffer 65536, no splice } }\n\
         table <t> { 10.0.0.1 parent 1 }\n\
         interface vic0 {\n address 192.0.2.1\n load-balancer {\n\
         relay r {\n  listen on * port 1\n  forward to <t>\n  protocol fast\n }\n\
         redirect d {\n  listen on 127.0.0.1 tcp port 25 interface em0\n  forward to <t> mode source-hash check tcp\n  sticky-address\n }\n\
         }\n}\nsystem {\n dns { }\n}\n",
    );
    let proto = &p.config.protocols[0];
    assert_eq!(
        (
            proto.nodelay,
            proto.backlog,
            proto.socket_buffer,
            proto.splice
        ),
        (Some(true), Some(64), Some(65536), Some(false))
    );
    assert_eq!(p.config.relays[1].kind, RelayKind::Redirect);
    assert!(p.config.relays[1].sticky);
    let mut expected = vec![
        "prefork has no effect",
        "host `parent` is ignored",
        "Halon block `interface` skipped",
        "`interface` is ignored",
    ];
    // On Linux the redirect runs at layer 3 where it can; a fallback warns at start.
    if !cfg!(target_os = "linux") {
        expected.push("redirect d runs as a layer-4 relay");
    }
    assert_eq!(warnings(&p), expected);
    let halon = p
        .report
        .warnings()
        .find(|d| d.message.starts_with("Halon"))
        .expect("one Halon warning");
    assert_eq!(halon.notes, ["skipped: interface, system"]);
}
