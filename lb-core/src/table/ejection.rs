//! Ejection: a host taken out of rotation for a while by passive health, whatever its
//! health.
//!
//! Health is what checks say; an ejection is what traffic saw. The two are kept apart so
//! that neither overwrites the other: a host is usable only when it is up, enabled *and*
//! not ejected, so when an ejection ends a host that a check found down stays out (the
//! check wins), and a check that marks a host up does not silently undo an ejection
//! (the monitor ends it explicitly, see `lb-health`). Who ejects, for how long and when
//! it ends is the ejector's policy (`lb_health::Passive`); the table only records it.
//!
//! Sticky entries (`lb_policies::sticky`) of an ejected host are dropped at their
//! source's next pick, as for a host that is down: pf drops the source nodes of a down
//! host, and a client whose connect was just refused is better placed anew.

use std::borrow::Cow;

use super::HostTable;
use crate::event::Change;
use crate::{Backend, BackendId, Result};

impl<B: Backend> HostTable<B> {
    /// Ejects host `id`: it stays in the table with its health and admin state, but is
    /// not usable until [`end_ejection`](HostTable::end_ejection). Returns `true` if this
    /// call ejected it, `false` if it was already ejected (nothing is published then).
    /// [`Error::UnknownHost`](crate::Error::UnknownHost) for an id not in the table.
    ///
    /// ```
    /// use lb_core::{Change, Health, HostTable};
    /// use std::net::SocketAddr;
    /// let a: SocketAddr = "10.0.0.11:443".parse()?;
    /// let b: SocketAddr = "10.0.0.12:443".parse()?;
    /// let table = HostTable::new("exchange", [a, b])?;
    /// let id = table.snapshot().id(0);
    /// assert!(table.eject(id, "connect refused")?);
    /// assert!(!table.eject(id, "connect refused")?); // already out
    /// let snap = table.snapshot();
    /// assert_eq!((snap.health(0), snap.is_ejected(0), snap.usable()), (Health::Up, true, &[1][..]));
    /// assert!(table.end_ejection(id, "ejection time over")?);
    /// assert_eq!(table.snapshot().usable(), &[0, 1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn eject(&self, id: BackendId, reason: impl Into<Cow<'static, str>>) -> Result<bool> {
        self.set_ejected(id, true, reason.into())
    }

    /// Ends the ejection of host `id`: usable again if it is up and enabled. Returns
    /// `true` if it was ejected, `false` (a cheap no-op, nothing published) if not.
    /// [`Error::UnknownHost`](crate::Error::UnknownHost) for an id not in the table.
    pub fn end_ejection(
        &self,
        id: BackendId,
        reason: impl Into<Cow<'static, str>>,
    ) -> Result<bool> {
        // The common case (a check's success on a host that is not ejected) takes no lock.
        let snap = self.snapshot();
        if snap.index_of(id).is_some_and(|i| !snap.is_ejected(i)) {
            return Ok(false);
        }
        self.set_ejected(id, false, reason.into())
    }

    fn set_ejected(&self, id: BackendId, ejected: bool, reason: Cow<'static, str>) -> Result<bool> {
        let changed = self.change(id, |snap, i| {
            if snap.ejected[i] == ejected {
                return None;
            }
            let change = if ejected {
                Change::Ejected { reason }
            } else {
                Change::EjectionEnded { reason }
            };
            Some((snap.with_ejected(i, ejected), change))
        })?;
        Ok(changed.is_some())
    }
}
