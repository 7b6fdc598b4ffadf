//! What a table balances over: [`Backend`], its stable [`BackendId`], its [`Weight`],
//! and the ready-made [`Host`].

use std::borrow::Cow;
use std::fmt;
use std::hash::Hasher;
use std::net::SocketAddr;
use std::num::NonZeroU16;

use siphasher::sip::SipHasher24;

use crate::{Error, Result};

/// The fixed SipHash key behind [`BackendId::of_name`]: the bytes of
/// `"lb backend ids\0\0"`, read as two little-endian words. Never change it: ids are
/// persisted in mappings shared by every balancer instance.
const ID_KEY: (u64, u64) = (0x656b_6361_6220_626c, 0x0000_7364_6920_646e);

/// A backend's stable 64-bit identity.
///
/// Derived from the backend's name (for an address, its canonical text form), never
/// from insertion order or a random seed: the same host has the same id in every
/// process, on every platform. Consistent hashing and sticky entries are keyed by it,
/// which is why several balancer instances agree without sharing state.
///
/// ```
/// use lb_core::BackendId;
/// let a = BackendId::of_name("10.0.0.1:443");
/// assert_eq!(a, BackendId::of_name("10.0.0.1:443"));
/// assert_ne!(a, BackendId::of_name("10.0.0.2:443"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BackendId(u64);

impl BackendId {
    /// The id of a backend with this name: SipHash-2-4 of the UTF-8 bytes under a fixed
    /// key.
    pub fn of_name(name: &str) -> Self {
        let mut h = SipHasher24::new_with_keys(ID_KEY.0, ID_KEY.1);
        h.write(name.as_bytes());
        BackendId(h.finish())
    }

    /// An id from a raw value, for backends that carry their own identity.
    pub const fn from_raw(raw: u64) -> Self {
        BackendId(raw)
    }

    /// The raw 64-bit value.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for BackendId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BackendId({:#018x})", self.0)
    }
}

impl fmt::Display for BackendId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}

/// A host's weight: `1..=65535`, default 1.
///
/// Weighted policies give a host a share proportional to its weight. There is no
/// weight 0: a host that should get no traffic is disabled or drained instead, so that
/// its state is visible rather than implied.
///
/// ```
/// use lb_core::Weight;
/// assert_eq!(Weight::new(3).unwrap().get(), 3);
/// assert!(Weight::new(0).is_err());
/// assert!(Weight::new(70_000).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Weight(NonZeroU16);

impl Weight {
    /// Weight 1, the default.
    pub const ONE: Weight = Weight(NonZeroU16::MIN);
    /// The largest weight, 65535.
    pub const MAX: Weight = Weight(NonZeroU16::MAX);

    /// A weight from a number, or [`Error::InvalidWeight`] outside `1..=65535`.
    pub fn new(weight: u64) -> Result<Self> {
        u16::try_from(weight)
            .ok()
            .and_then(NonZeroU16::new)
            .map(Weight)
            .ok_or(Error::InvalidWeight { weight })
    }

    /// The weight as a number.
    pub const fn get(self) -> u16 {
        self.0.get()
    }
}

impl Default for Weight {
    fn default() -> Self {
        Weight::ONE
    }
}

impl TryFrom<u64> for Weight {
    type Error = Error;
    fn try_from(weight: u64) -> Result<Self> {
        Weight::new(weight)
    }
}

impl fmt::Display for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Something a table balances over: a server address, a named host, an inner service.
///
/// A table reads [`id`](Backend::id), [`weight`](Backend::weight) and
/// [`name`](Backend::name) once, when the backend is added; they must not change while
/// it is in a table (change the weight through [`HostTable::set_weight`](crate::HostTable::set_weight)).
pub trait Backend: Send + Sync + 'static {
    /// A display name, unique within a table: `"exchange1"`, `"10.0.0.1:443"`.
    fn name(&self) -> Cow<'_, str>;

    /// The stable identity. The default derives it from [`name`](Backend::name) with
    /// [`BackendId::of_name`]; override it only with something equally stable.
    fn id(&self) -> BackendId {
        BackendId::of_name(&self.name())
    }

    /// The weight, default 1.
    fn weight(&self) -> Weight {
        Weight::ONE
    }

    /// The address to connect to, if the backend has one (relays need it).
    fn addr(&self) -> Option<SocketAddr> {
        None
    }
}

impl Backend for SocketAddr {
    /// The canonical text form, `10.0.0.1:443` or `[::1]:443`.
    fn name(&self) -> Cow<'_, str> {
        Cow::Owned(self.to_string())
    }

    fn addr(&self) -> Option<SocketAddr> {
        Some(*self)
    }
}

/// A named host with an address and a weight: relayd's table entry.
///
/// Its id is derived from its name, so renaming a host is a membership change while
/// moving it to another address is not.
///
/// ```
/// use lb_core::{Backend, Host};
/// let h = Host::new("exchange1", "10.0.0.11:443".parse().unwrap()).with_weight(2).unwrap();
/// assert_eq!(h.name(), "exchange1");
/// assert_eq!(h.weight().get(), 2);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Host {
    name: String,
    addr: SocketAddr,
    weight: Weight,
}

impl Host {
    /// A host of weight 1.
    pub fn new(name: impl Into<String>, addr: SocketAddr) -> Self {
        Host {
            name: name.into(),
            addr,
            weight: Weight::ONE,
        }
    }

    /// The same host with another weight, or [`Error::InvalidWeight`].
    pub fn with_weight(mut self, weight: u64) -> Result<Self> {
        self.weight = Weight::new(weight)?;
        Ok(self)
    }

    /// The host's address.
    pub fn address(&self) -> SocketAddr {
        self.addr
    }
}

impl From<SocketAddr> for Host {
    /// A host named by its address.
    fn from(addr: SocketAddr) -> Self {
        Host::new(addr.to_string(), addr)
    }
}

impl Backend for Host {
    fn name(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.name)
    }

    fn weight(&self) -> Weight {
        self.weight
    }

    fn addr(&self) -> Option<SocketAddr> {
        Some(self.addr)
    }
}

impl<B: Backend> Backend for std::sync::Arc<B> {
    fn name(&self) -> Cow<'_, str> {
        (**self).name()
    }
    fn id(&self) -> BackendId {
        (**self).id()
    }
    fn weight(&self) -> Weight {
        (**self).weight()
    }
    fn addr(&self) -> Option<SocketAddr> {
        (**self).addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_pinned() {
        // Golden values: these ids are shared by every instance; they must never change.
        assert_eq!(
            BackendId::of_name("10.0.0.1:443").get(),
            0xe11c_0087_93c9_1ed3
        );
        assert_eq!(BackendId::of_name("exchange1").get(), 0x3a9d_0335_16b9_76f4);
        let addr: SocketAddr = "10.0.0.1:443".parse().unwrap();
        assert_eq!(addr.id(), BackendId::of_name("10.0.0.1:443"));
        assert_eq!(Host::from(addr).id(), addr.id());
    }

    #[test]
    fn weight_bounds() {
        assert_eq!(Weight::new(1).unwrap(), Weight::ONE);
        assert_eq!(Weight::new(65535).unwrap(), Weight::MAX);
        assert_eq!(Weight::new(0), Err(Error::InvalidWeight { weight: 0 }));
        assert_eq!(
            Weight::new(65536),
            Err(Error::InvalidWeight { weight: 65536 })
        );
        let msg = Weight::new(0).unwrap_err().to_string();
        assert!(msg.contains("expected 1..=65535"), "{msg}");
    }
}
