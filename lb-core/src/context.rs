//! What a policy knows about the connection or request it places.

use std::net::{IpAddr, SocketAddr};

/// The connection or request being placed: the client's address, the address the
/// service listens on, the address the client actually reached, and optional key bytes
/// (a header, a user id, a session cookie).
///
/// Hash policies read what they need: relayd's `source-hash` the client IP,
/// `loadbalance` the client IP and the [`listen`](Context::listen) address,
/// [`key`](Context::key)-based policies the key. A context is three addresses and a
/// slice: build one per pick.
///
/// Two addresses describe "our side", and they differ on wildcard listeners:
///
/// - [`listen`](Context::listen) is the *configured* listen address: for a relay
///   `listen on 0.0.0.0 port 443` it is `0.0.0.0:443`, whatever address the client
///   dialled. relayd's `loadbalance` hashes exactly this (`rl_conf.ss` and
///   `rl_conf.port` in `relay_from_table`), so picks agree with relayd's only if it is
///   the configured one.
/// - [`local`](Context::local) is the local address of the accepted connection (what
///   `getsockname` returns): `192.0.2.1:443` for a client that dialled that address of
///   the wildcard listener. For policies that want to tell such clients apart.
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
    local: Option<SocketAddr>,
    key: Option<&'a [u8]>,
}

impl<'a> Context<'a> {
    /// An empty context: no client, no listen address, no key.
    pub const fn new() -> Self {
        Context {
            client: None,
            listen: None,
            local: None,
            key: None,
        }
    }

    /// A context for a client address.
    pub const fn from_client(client: SocketAddr) -> Self {
        Context {
            client: Some(client),
            listen: None,
            local: None,
            key: None,
        }
    }

    /// The same context with a client address.
    pub const fn with_client(mut self, client: SocketAddr) -> Self {
        self.client = Some(client);
        self
    }

    /// The same context with the configured listen address (`0.0.0.0:443` for a
    /// wildcard listener): what relayd's `loadbalance` hashes.
    pub const fn with_listen(mut self, listen: SocketAddr) -> Self {
        self.listen = Some(listen);
        self
    }

    /// The same context with the local address of the accepted connection (the
    /// address the client dialled, `192.0.2.1:443` on a wildcard listener).
    pub const fn with_local(mut self, local: SocketAddr) -> Self {
        self.local = Some(local);
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

    /// The configured listen address, if known (see the type's docs).
    pub const fn listen(&self) -> Option<SocketAddr> {
        self.listen
    }

    /// The local address of the accepted connection, if known (see the type's docs).
    pub const fn local(&self) -> Option<SocketAddr> {
        self.local
    }

    /// The key bytes, if any.
    pub const fn key(&self) -> Option<&'a [u8]> {
        self.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_and_local_are_kept_apart() {
        let listen: SocketAddr = "0.0.0.0:443".parse().unwrap();
        let local: SocketAddr = "192.0.2.1:443".parse().unwrap();
        let ctx = Context::new().with_listen(listen).with_local(local);
        assert_eq!((ctx.listen(), ctx.local()), (Some(listen), Some(local)));
        assert_eq!(Context::new().with_local(local).listen(), None);
    }
}
