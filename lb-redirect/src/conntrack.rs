//! State counts per backend for least-states, read from the kernel's connection tracking
//! with the `conntrack` tool (conntrack-tools).
//!
//! Why the tool: this kernel has no `/proc/net/nf_conntrack` (the procfs view is an
//! option distributions turn off), nft's counters count packets and new connections,
//! not live ones, and the netlink crates that speak ctnetlink are GPL or unmaintained.
//! `conntrack -L` filtered by the original destination (the VIP and port) lists exactly
//! the connections this redirect rewrote; the reply direction's source is the backend.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;

use crate::Error;

/// The `conntrack` tool at a path.
#[derive(Clone, Debug)]
pub(crate) struct Conntrack {
    path: PathBuf,
}

impl Conntrack {
    pub(crate) fn new(path: PathBuf) -> Self {
        Conntrack { path }
    }

    /// Live states (any TCP state but `TIME_WAIT` and `CLOSE`) per backend, over the
    /// connections to `vips` on `port`.
    pub(crate) fn states(
        &self,
        vips: &[IpAddr],
        port: u16,
    ) -> Result<HashMap<SocketAddr, u64>, Error> {
        let mut counts = HashMap::new();
        for vip in vips {
            let family = if vip.is_ipv4() { "ipv4" } else { "ipv6" };
            let out = Command::new(&self.path)
                .args(["-L", "-f", family, "-p", "tcp", "--orig-dst"])
                .arg(vip.to_string())
                .args(["--orig-port-dst", &port.to_string()])
                .output()
                .map_err(|source| {
                    if source.kind() == std::io::ErrorKind::NotFound {
                        Error::ConntrackMissing {
                            path: self.path.clone(),
                        }
                    } else {
                        Error::Io {
                            tool: "conntrack",
                            source,
                        }
                    }
                })?;
            if !out.status.success() {
                return Err(Error::Conntrack {
                    detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                });
            }
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Some(backend) = live_backend(line) {
                    *counts.entry(backend).or_insert(0) += 1;
                }
            }
        }
        Ok(counts)
    }

    /// Whether the tool runs at all.
    pub(crate) fn check(&self) -> Result<(), Error> {
        match Command::new(&self.path).arg("--version").output() {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::ConntrackMissing {
                path: self.path.clone(),
            }),
            Err(source) => Err(Error::Io {
                tool: "conntrack",
                source,
            }),
        }
    }
}

/// The backend of one `conntrack -L` line if the connection is live: the reply tuple's
/// `src=` and `sport=` (the second of each on the line).
///
/// `tcp 6 431999 ESTABLISHED src=198.18.0.10 dst=198.18.100.1 sport=40000 dport=80
/// src=198.18.1.2 dst=198.18.0.10 sport=80 dport=40000 [ASSURED] mark=0 use=1`
fn live_backend(line: &str) -> Option<SocketAddr> {
    let mut fields = line.split_whitespace();
    let state = fields.nth(3)?;
    if matches!(state, "TIME_WAIT" | "CLOSE") {
        return None;
    }
    let nth = |key: &str, n: usize| {
        line.split_whitespace()
            .filter_map(|f| f.strip_prefix(key))
            .nth(n)
    };
    let ip: IpAddr = nth("src=", 1)?.parse().ok()?;
    let port: u16 = nth("sport=", 1)?.parse().ok()?;
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_its_backend() {
        let line = "tcp      6 431999 ESTABLISHED src=198.18.0.10 dst=198.18.100.1 sport=40000 dport=80 src=198.18.1.2 dst=198.18.0.10 sport=8080 dport=40000 [ASSURED] mark=0 use=1";
        assert_eq!(live_backend(line), Some("198.18.1.2:8080".parse().unwrap()));
        let v6 = "tcp      6 60 SYN_SENT src=2001:2::10 dst=2001:2:ff::1 sport=1 dport=80 [UNREPLIED] src=2001:2:0:2::2 dst=2001:2::10 sport=80 dport=1 mark=0 use=1";
        assert_eq!(
            live_backend(v6),
            Some("[2001:2:0:2::2]:80".parse().unwrap())
        );
        let closed = line.replace("ESTABLISHED", "TIME_WAIT");
        assert_eq!(live_backend(&closed), None);
        assert_eq!(live_backend("conntrack v1.4.7: 0 flow entries"), None);
    }
}
