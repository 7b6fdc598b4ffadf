//! What a policy knows about the connection or request it places.

use std::net::{IpAddr, SocketAddr};

/// The connection or request being placed: the client's address, the address it
/// reached us on, and optional key bytes (a header, a user id, a session cookie).
///
/// Hash policies read what they need: relayd's `source-hash` the client IP,
/// `loadbalance` the client IP and the listen address, [`key`](Context::key)-based
/// policies the key. A context is two addresses and a slice: build one per pick.
///
/// ```
/// use lb_core::Context;
/// let ctx = Context::new()
///     .with_client("192.0.2.7:50123".parse().unwrap())
///     .with_key(b"user-42");
/// assert_eq!(ctx.client_ip(), Some("192.0.2.7".parse().unwrap()));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Context<'a> {
    client: Option<SocketAddr>,
    listen: Option<SocketAddr>,
    key: Option<&'a [u8]>,
}

impl<'a> Context<'a> {
    /// An empty context: no client, no listen address, no key.
    pub const fn new() -> Self {
        Context {
            client: None,
            listen: None,
            key: None,
        }
    }

    /// A context for a client address.
    pub const fn from_client(client: SocketAddr) -> Self {
        Context {
            client: Some(client),
            listen: None,
            key: None,
        }
    }

    /// The same context with a client address.
    pub const fn with_client(mut self, client: SocketAddr) -> Self {
        self.client = Some(client);
        self
    }

    /// The same context with the local address the client connected to.
    pub const fn with_listen(mut self, listen: SocketAddr) -> Self {
        self.listen = Some(listen);
        self
    }

    /// The same context with key bytes for key-hashing policies.
    pub const fn with_key(mut self, key: &'a [u8]) -> Self {
        self.key = Some(key);
        self
    }

    /// The client's address, if known.
    pub const fn client(&self) -> Option<SocketAddr> {
        self.client
    }

    /// The client's IP address, if known.
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.client.map(|a| a.ip())
    }

    /// The listen address, if known.
    pub const fn listen(&self) -> Option<SocketAddr> {
        self.listen
    }

    /// The key bytes, if any.
    pub const fn key(&self) -> Option<&'a [u8]> {
        self.key
    }
}
