//! The checks [`RelayBuilder::build`](crate::RelayBuilder::build) runs before anything
//! is bound: every setting that cannot work becomes a [`BuildError`] naming it, instead
//! of a bind failure, a panic in the accept loop (a backlog that overflows `i32`), or a
//! relay that silently never forwards (no table, a zero timeout).

use std::net::IpAddr;
use std::time::Duration;

use crate::{BackendPort, BuildError, Settings};

/// Checks the name, the listen addresses, that there is a table, and every setting.
pub(crate) fn check(
    name: &str,
    listen: &[IpAddr],
    tables: usize,
    settings: &Settings,
) -> Result<(), BuildError> {
    let relay = || name.to_owned();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(BuildError::InvalidName { name: relay() });
    }
    if listen.is_empty() {
        return Err(BuildError::NoListenAddress { relay: relay() });
    }
    for (i, ip) in listen.iter().enumerate() {
        if listen[..i].contains(ip) {
            return Err(BuildError::DuplicateListenAddress {
                relay: relay(),
                ip: *ip,
            });
        }
    }
    if tables == 0 {
        return Err(BuildError::NoTable { relay: relay() });
    }
    if settings.backend_port == BackendPort::Fixed(0) {
        return Err(BuildError::ZeroBackendPort { relay: relay() });
    }
    for (setting, value) in [
        ("connect timeout", settings.connect_timeout),
        ("session idle timeout", settings.idle_timeout),
        ("ejection time", settings.ejection_time),
        ("max ejection time", settings.max_ejection_time),
    ] {
        if value < Duration::from_millis(1) {
            return Err(BuildError::ZeroTimeout {
                relay: relay(),
                setting,
                value,
            });
        }
    }
    if settings.ejection_time > settings.max_ejection_time {
        return Err(BuildError::EjectionTime {
            relay: relay(),
            base: settings.ejection_time,
            max: settings.max_ejection_time,
        });
    }
    check_ranges(name, settings)
}

/// Limits on the numeric settings.
fn check_ranges(relay: &str, settings: &Settings) -> Result<(), BuildError> {
    let out_of_range = |setting, value: u64, expected| BuildError::OutOfRange {
        relay: relay.to_owned(),
        setting,
        value,
        expected,
    };
    if settings.max_sessions == 0 || settings.max_sessions > tokio::sync::Semaphore::MAX_PERMITS {
        return Err(out_of_range(
            "max sessions",
            settings.max_sessions as u64,
            "1 or more sessions, at most tokio's Semaphore::MAX_PERMITS",
        ));
    }
    if settings.passive_threshold == 0 {
        return Err(out_of_range(
            "passive threshold",
            0,
            "at least 1 consecutive failure",
        ));
    }
    if settings.max_ejected_percent > 100 {
        return Err(out_of_range(
            "max ejected percent",
            u64::from(settings.max_ejected_percent),
            "0..=100 percent",
        ));
    }
    let tcp = &settings.tcp;
    if tcp.backlog == 0 || tcp.backlog > i32::MAX as u32 {
        return Err(out_of_range(
            "backlog",
            u64::from(tcp.backlog),
            "1..=2147483647 connections",
        ));
    }
    for (setting, size) in [
        ("send buffer", tcp.send_buffer),
        ("recv buffer", tcp.recv_buffer),
    ] {
        if let Some(size) = size {
            if !(1024..=i32::MAX as u32).contains(&size) {
                return Err(out_of_range(
                    setting,
                    u64::from(size),
                    "1024..=2147483647 bytes",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::sync::Arc;
    use std::time::Duration;

    use lb_core::{Host, HostTable};

    use crate::{BackendPort, BuildError, Relay, RelayBuilder, TcpOptions};

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn table(name: &str) -> Arc<HostTable<Host>> {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        HostTable::new(name, [Host::from(addr)]).unwrap()
    }

    fn valid() -> RelayBuilder {
        Relay::builder("r").listen(LOCAL).forward_to(table("t"))
    }

    fn error(builder: RelayBuilder) -> BuildError {
        builder.build().unwrap_err()
    }

    #[test]
    fn defaults_build_and_are_documented_values() {
        let relay = valid().build().unwrap();
        let s = relay.settings();
        assert_eq!(s.listen, ["127.0.0.1:0".parse::<SocketAddr>().unwrap()]);
        assert_eq!(s.backend_port, BackendPort::Listen);
        assert_eq!(s.connect_timeout, Duration::from_secs(3));
        assert_eq!(s.idle_timeout, Duration::from_secs(600));
        assert_eq!(s.failover, 2);
        assert_eq!(s.max_sessions, 10_000);
        assert_eq!(s.passive_threshold, 1);
        assert_eq!(
            (s.ejection_time, s.max_ejection_time, s.max_ejected_percent),
            (Duration::from_secs(10), Duration::from_secs(300), 50)
        );
        assert_eq!(s.tcp, TcpOptions::default());
        assert_eq!(s.proxy_protocol, None);
        assert!(s.splice);
    }

    #[test]
    fn names_listen_addresses_and_tables() {
        let no_name = Relay::builder("").listen(LOCAL).forward_to(table("t"));
        assert_eq!(
            error(no_name),
            BuildError::InvalidName {
                name: String::new()
            }
        );
        let no_listen = Relay::builder("r").forward_to(table("t"));
        assert_eq!(
            error(no_listen).to_string(),
            "relay `r` has no listen address: add at least one with `listen(ip)`"
        );
        assert!(matches!(
            error(valid().listen(LOCAL)),
            BuildError::DuplicateListenAddress { ip: LOCAL, .. }
        ));
        let no_table = Relay::builder("r").listen(LOCAL);
        assert_eq!(
            error(no_table),
            BuildError::NoTable {
                relay: "r".to_owned()
            }
        );
        let twice = valid().forward_to(table("t"));
        assert!(matches!(error(twice), BuildError::DuplicateTable { table, .. } if table == "t"));
    }

    #[test]
    fn settings_out_of_range() {
        assert!(matches!(
            error(valid().backend_port(BackendPort::Fixed(0))),
            BuildError::ZeroBackendPort { .. }
        ));
        let zero = error(valid().connect_timeout(Duration::ZERO));
        assert_eq!(
            zero.to_string(),
            "relay `r`: connect timeout of 0ns is too short: expected at least 1 ms"
        );
        assert!(matches!(
            error(valid().idle_timeout(Duration::from_micros(10))),
            BuildError::ZeroTimeout {
                setting: "session idle timeout",
                ..
            }
        ));
        let out = |b: RelayBuilder| match error(b) {
            BuildError::OutOfRange { setting, value, .. } => (setting, value),
            other => panic!("expected OutOfRange, got {other:?}"),
        };
        assert_eq!(out(valid().max_sessions(0)), ("max sessions", 0));
        assert_eq!(out(valid().passive_threshold(0)), ("passive threshold", 0));
        assert_eq!(
            out(valid().max_ejected_percent(101)),
            ("max ejected percent", 101)
        );
        let ms = Duration::from_millis;
        assert!(matches!(
            error(valid().ejection(Duration::ZERO, ms(10))),
            BuildError::ZeroTimeout {
                setting: "ejection time",
                ..
            }
        ));
        assert!(matches!(
            error(valid().ejection(ms(10), Duration::ZERO)),
            BuildError::ZeroTimeout {
                setting: "max ejection time",
                ..
            }
        ));
        assert_eq!(
            error(valid().ejection(ms(300), ms(200))).to_string(),
            "relay `r`: ejection time 300ms is longer than the maximum ejection time 200ms: expected base <= max"
        );
        let edge = valid().ejection(ms(1), ms(1)).max_ejected_percent(100);
        assert!(edge.build().is_ok());
        let tcp = |t: TcpOptions| valid().tcp(t);
        let backlog = TcpOptions {
            backlog: 0,
            ..TcpOptions::default()
        };
        assert_eq!(out(tcp(backlog)), ("backlog", 0));
        let huge = TcpOptions {
            backlog: u32::MAX,
            ..TcpOptions::default()
        };
        assert_eq!(out(tcp(huge)), ("backlog", u64::from(u32::MAX)));
        let tiny = TcpOptions {
            send_buffer: Some(10),
            ..TcpOptions::default()
        };
        assert_eq!(out(tcp(tiny)), ("send buffer", 10));
    }
}
