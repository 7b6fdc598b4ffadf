//! The lookups of a [`Resolver`]: A and AAAA together, SRV with its targets, and the
//! mapping of hickory's errors to [`ResolveError`].

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use lb_core::Weight;

use crate::{Member, ResolveError, Resolver, Source};

/// The addresses of one name, and how long they may be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpAnswer {
    /// The A and AAAA addresses, deduplicated, A first, each in answer order.
    pub addrs: Vec<IpAddr>,
    /// The smallest TTL of the records that gave them (CNAMEs included).
    pub ttl: Duration,
}

/// The hosts a [`Source`] gives, and how long they may be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The hosts, sorted by address, each address once.
    pub members: Vec<Member>,
    /// The smallest TTL of the records that gave them (for SRV, of the SRV records and
    /// of the addresses of the targets used).
    pub ttl: Duration,
}

impl Resolver {
    /// The A and AAAA addresses of a name, through the resolver's cache.
    ///
    /// A name with addresses of one family only is fine; a name with none fails with
    /// [`ResolveError::NxDomain`] or [`ResolveError::Empty`]. If either query fails
    /// otherwise (timeout, SERVFAIL), the lookup fails: half an answer is not taken for
    /// the whole. An IP address literal is returned as is, with hickory's largest TTL.
    pub async fn lookup_ip(&self, name: &str) -> Result<IpAnswer, ResolveError> {
        self.ip(name, false).await
    }

    /// The hosts a source gives, through the resolver's cache (see [`Source`] for SRV
    /// priorities and weights).
    pub async fn resolve(&self, source: &Source) -> Result<Answer, ResolveError> {
        self.source(source, false).await
    }

    /// [`resolve`](Resolver::resolve), but first dropping what the cache holds for
    /// the names involved: a membership asks again because its own (bounded) TTL ended,
    /// which may be before the cache's.
    pub(crate) async fn resolve_fresh(&self, source: &Source) -> Result<Answer, ResolveError> {
        self.source(source, true).await
    }

    async fn source(&self, source: &Source, fresh: bool) -> Result<Answer, ResolveError> {
        match source {
            Source::Ip { name, port } => {
                let answer = self.ip(name, fresh).await?;
                let members = answer
                    .addrs
                    .iter()
                    .map(|ip| (SocketAddr::new(*ip, *port), Weight::ONE));
                Ok(Answer {
                    members: merge(members),
                    ttl: answer.ttl,
                })
            }
            Source::Srv { name } => self.srv(name, fresh).await,
        }
    }

    async fn ip(&self, name: &str, fresh: bool) -> Result<IpAnswer, ResolveError> {
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(IpAnswer {
                addrs: vec![ip],
                ttl: Duration::from_secs(u64::from(hickory_resolver::MAX_TTL)),
            });
        }
        let parsed = parse(name)?;
        if fresh {
            self.hickory()
                .clear_lookup_cache(parsed.clone(), RecordType::A);
            self.hickory()
                .clear_lookup_cache(parsed.clone(), RecordType::AAAA);
        }
        let (v4, v6) = tokio::join!(
            self.hickory().lookup(parsed.clone(), RecordType::A),
            self.hickory().lookup(parsed, RecordType::AAAA),
        );
        let kind = "A/AAAA";
        let mut addrs = Vec::new();
        let mut ttl = None;
        let mut missing = Vec::new();
        for result in [v4, v6] {
            match result {
                Ok(lookup) => {
                    ttl = min_ttl(ttl, lookup.answers());
                    for record in lookup.answers() {
                        let ip = match &record.data {
                            RData::A(a) => IpAddr::V4(a.0),
                            RData::AAAA(a) => IpAddr::V6(a.0),
                            _ => continue,
                        };
                        if !addrs.contains(&ip) {
                            addrs.push(ip);
                        }
                    }
                }
                Err(e) => match classify(name, kind, &e, self.timeout()) {
                    no_records if no_records.is_no_records() => missing.push(no_records),
                    failure => return Err(failure),
                },
            }
        }
        match ttl {
            Some(ttl) if !addrs.is_empty() => Ok(IpAnswer { addrs, ttl }),
            _ => Err(missing
                .into_iter()
                .find(|e| matches!(e, ResolveError::NxDomain { .. }))
                .unwrap_or_else(|| ResolveError::Empty {
                    name: name.to_owned(),
                    kind,
                })),
        }
    }

    async fn srv(&self, name: &str, fresh: bool) -> Result<Answer, ResolveError> {
        let parsed = parse(name)?;
        if fresh {
            self.hickory()
                .clear_lookup_cache(parsed.clone(), RecordType::SRV);
        }
        let lookup = self
            .hickory()
            .lookup(parsed, RecordType::SRV)
            .await
            .map_err(|e| classify(name, "SRV", &e, self.timeout()))?;
        let mut ttl = min_ttl(None, lookup.answers());
        // A target of "." says the service is not offered at this name (RFC 2782).
        let records: Vec<_> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(srv) if !srv.target.is_root() => Some(srv),
                _ => None,
            })
            .collect();
        let empty = || ResolveError::Empty {
            name: name.to_owned(),
            kind: "SRV",
        };
        let best = records.iter().map(|s| s.priority).min().ok_or_else(empty)?;
        let records: Vec<_> = records.into_iter().filter(|s| s.priority == best).collect();
        let mut targets: Vec<&Name> = records.iter().map(|s| &s.target).collect();
        targets.sort();
        targets.dedup();
        let target_names: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
        let answers =
            futures_util::future::join_all(target_names.iter().map(|t| self.ip(t, fresh))).await;
        let mut addrs = BTreeMap::new();
        for (target, answer) in targets.iter().zip(answers) {
            match answer {
                Ok(a) => {
                    ttl = Some(ttl.map_or(a.ttl, |t: Duration| t.min(a.ttl)));
                    addrs.insert(*target, a.addrs);
                }
                // A target that is gone is left out; one that cannot be asked about
                // now fails the whole answer, so that the last good set is kept.
                Err(e) if e.is_no_records() => {
                    tracing::warn!(srv = %name, target = %target, error = %e, "SRV target has no address; left out");
                }
                Err(e) => return Err(e),
            }
        }
        let members = records.iter().flat_map(|srv| {
            let weight = Weight::new(u64::from(srv.weight.max(1))).unwrap_or(Weight::ONE);
            addrs
                .get(&srv.target)
                .into_iter()
                .flatten()
                .map(move |ip| (SocketAddr::new(*ip, srv.port), weight))
        });
        let members = merge(members);
        match ttl {
            Some(ttl) if !members.is_empty() => Ok(Answer { members, ttl }),
            _ => Err(empty()),
        }
    }
}

/// Members sorted by address, each once; an address given twice keeps its largest
/// weight.
fn merge(members: impl Iterator<Item = (SocketAddr, Weight)>) -> Vec<Member> {
    let mut by_addr: BTreeMap<SocketAddr, Weight> = BTreeMap::new();
    for (addr, weight) in members {
        let w = by_addr.entry(addr).or_insert(weight);
        *w = (*w).max(weight);
    }
    by_addr
        .into_iter()
        .map(|(addr, weight)| Member { addr, weight })
        .collect()
}

fn min_ttl(ttl: Option<Duration>, records: &[Record]) -> Option<Duration> {
    records
        .iter()
        .map(|r| Duration::from_secs(u64::from(r.ttl)))
        .chain(ttl)
        .min()
}

fn parse(name: &str) -> Result<Name, ResolveError> {
    Name::from_utf8(name).map_err(|e| ResolveError::InvalidName {
        name: name.to_owned(),
        reason: e.to_string(),
    })
}

/// hickory's error as one of ours, naming `name`.
fn classify(name: &str, kind: &'static str, e: &NetError, timeout: Duration) -> ResolveError {
    let name = name.to_owned();
    match e {
        NetError::Dns(DnsError::NoRecordsFound(n)) if n.response_code == ResponseCode::NXDomain => {
            ResolveError::NxDomain { name }
        }
        NetError::Dns(DnsError::NoRecordsFound(_)) => ResolveError::Empty { name, kind },
        NetError::Dns(DnsError::ResponseCode(code)) => ResolveError::ServerFailure {
            name,
            code: code.to_string(),
        },
        NetError::Timeout => ResolveError::Timeout { name, timeout },
        NetError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            ResolveError::Timeout { name, timeout }
        }
        other => ResolveError::Other {
            name,
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_sorts_and_keeps_the_largest_weight() {
        let a: SocketAddr = "127.0.0.2:80".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let w = |n| Weight::new(n).unwrap();
        let merged = merge([(a, w(1)), (b, w(2)), (a, w(5))].into_iter());
        assert_eq!(
            merged,
            vec![
                Member {
                    addr: b,
                    weight: w(2)
                },
                Member {
                    addr: a,
                    weight: w(5)
                }
            ]
        );
    }

    #[test]
    fn invalid_names_are_named() {
        let e = parse("a..b").unwrap_err();
        assert!(
            e.to_string().starts_with("invalid DNS name \"a..b\""),
            "{e}"
        );
    }
}
