//! A small authoritative DNS responder on 127.0.0.1 (UDP, port 0) whose answers and TTLs
//! a test changes while it runs: the server the `lb-dns` and `lb-config` tests point
//! their resolver at. It answers from a map of names; a name not in the map is
//! NXDOMAIN, a name without records of the asked type gets an empty answer, and a name
//! can be set to answer SERVFAIL or nothing at all (a timeout).
//!
//! Include with `#[path = "../../test-support/dns.rs"] mod dns;` in a crate that has
//! `hickory-resolver` and `tokio` among its (dev-)dependencies.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use hickory_resolver::proto::op::{Message, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, AAAA, SRV};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// How a name answers.
#[derive(Clone, Debug)]
enum Answer {
    /// Records by type, each set with its TTL.
    Records(HashMap<RecordType, (u32, Vec<RData>)>),
    ServFail,
    Silent,
}

#[derive(Default)]
struct Zone {
    names: HashMap<String, Answer>,
    queries: HashMap<String, usize>,
}

/// The running responder; it stops when dropped.
pub struct DnsServer {
    addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    task: JoinHandle<()>,
}

fn key(name: &str) -> String {
    let mut k = name.to_ascii_lowercase();
    if !k.ends_with('.') {
        k.push('.');
    }
    k
}

impl DnsServer {
    /// Binds 127.0.0.1:0 and answers until dropped.
    pub async fn start() -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let addr = socket.local_addr().expect("local addr");
        let zone = Arc::new(Mutex::new(Zone::default()));
        let z = zone.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                if let Some(reply) = answer(&z, &query) {
                    let _ = socket.send_to(&reply, from).await;
                }
            }
        });
        DnsServer { addr, zone, task }
    }

    /// The address to give the resolver.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn set(&self, name: &str, rtype: RecordType, ttl: u32, data: Vec<RData>) {
        let mut zone = self.zone.lock().unwrap();
        let entry = zone
            .names
            .entry(key(name))
            .or_insert_with(|| Answer::Records(HashMap::new()));
        if !matches!(entry, Answer::Records(_)) {
            *entry = Answer::Records(HashMap::new());
        }
        if let Answer::Records(records) = entry {
            if data.is_empty() {
                records.remove(&rtype);
            } else {
                records.insert(rtype, (ttl, data));
            }
        }
    }

    /// The name's A and AAAA records: the given addresses, all with `ttl`. An empty list
    /// leaves the name existing with no addresses (an empty answer).
    pub fn set_ips(&self, name: &str, ttl: u32, ips: &[IpAddr]) {
        let v4 = ips
            .iter()
            .filter_map(|ip| match ip {
                IpAddr::V4(v4) => Some(RData::A(A(*v4))),
                IpAddr::V6(_) => None,
            })
            .collect();
        let v6 = ips
            .iter()
            .filter_map(|ip| match ip {
                IpAddr::V6(v6) => Some(RData::AAAA(AAAA(*v6))),
                IpAddr::V4(_) => None,
            })
            .collect();
        self.set(name, RecordType::A, ttl, v4);
        self.set(name, RecordType::AAAA, ttl, v6);
    }

    /// The name's SRV records: (priority, weight, port, target), all with `ttl`.
    pub fn set_srv(&self, name: &str, ttl: u32, records: &[(u16, u16, u16, &str)]) {
        let data = records
            .iter()
            .map(|&(priority, weight, port, target)| {
                RData::SRV(SRV::new(
                    priority,
                    weight,
                    port,
                    Name::from_ascii(key(target)).expect("target name"),
                ))
            })
            .collect();
        self.set(name, RecordType::SRV, ttl, data);
    }

    /// The name no longer exists: NXDOMAIN.
    pub fn remove(&self, name: &str) {
        self.zone.lock().unwrap().names.remove(&key(name));
    }

    /// The server fails for the name: SERVFAIL.
    pub fn servfail(&self, name: &str) {
        self.zone
            .lock()
            .unwrap()
            .names
            .insert(key(name), Answer::ServFail);
    }

    /// The server does not answer for the name at all.
    pub fn silent(&self, name: &str) {
        self.zone
            .lock()
            .unwrap()
            .names
            .insert(key(name), Answer::Silent);
    }

    /// How many queries (of any type) the name got.
    pub fn queries(&self, name: &str) -> usize {
        let zone = self.zone.lock().unwrap();
        zone.queries.get(&key(name)).copied().unwrap_or(0)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The encoded reply to a query, or `None` to stay silent.
fn answer(zone: &Mutex<Zone>, query: &Message) -> Option<Vec<u8>> {
    let q = query.queries.first()?.clone();
    let name = key(&q.name().to_string());
    let mut zone = zone.lock().unwrap();
    *zone.queries.entry(name.clone()).or_default() += 1;
    let mut reply = Message::response(query.metadata.id, OpCode::Query);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.authoritative = true;
    reply.add_query(q.clone());
    match zone.names.get(&name) {
        None => reply.metadata.response_code = ResponseCode::NXDomain,
        Some(Answer::ServFail) => reply.metadata.response_code = ResponseCode::ServFail,
        Some(Answer::Silent) => return None,
        Some(Answer::Records(records)) => {
            if let Some((ttl, data)) = records.get(&q.query_type()) {
                for d in data {
                    reply.add_answer(Record::from_rdata(q.name().clone(), *ttl, d.clone()));
                }
            }
        }
    }
    reply.to_vec().ok()
}
