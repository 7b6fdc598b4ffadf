//! The [`Check`] trait, what a check is given ([`Probe`]) and what it returns
//! ([`Outcome`]).
//!
//! relayd runs one check method per table (`check tcp`, `check http ...`, ...) against
//! every host, with one global timeout for the whole check: connect, send and read
//! (`hce.c`, `check_tcp.c`). We keep that shape: a check is a value that knows its
//! method, a [`Probe`] carries the host's address and the deadline, and the check
//! reports the phase that failed as a [`Reason`]. Passing a deadline rather than
//! wrapping the whole check in a timeout is what lets a check say "connect timeout"
//! rather than just "timeout".

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use lb_core::Health;
use tokio::time::Instant;

use crate::Reason;

/// A health check method: `tcp`, `tls`, `http`, `send`/`expect`, `binary`, `script`, or
/// one of your own.
///
/// Object-safe (the monitor holds an `Arc<dyn Check>`), so the future is boxed. A check
/// must respect [`Probe::deadline`]; one that does not is aborted by the monitor when
/// the next check is due, with [`Reason::IntervalTimeout`].
///
/// ```
/// use futures_util::future::BoxFuture;
/// use lb_health::{Check, Outcome, Probe};
///
/// /// Up when the port is even: a check of our own.
/// struct EvenPort;
/// impl Check for EvenPort {
///     fn name(&self) -> &'static str { "even port" }
///     fn check<'a>(&'a self, probe: &'a Probe) -> BoxFuture<'a, Outcome> {
///         Box::pin(async move {
///             if probe.addr().port() % 2 == 0 { Outcome::Up } else {
///                 Outcome::down(lb_health::Reason::ExpectMismatch)
///             }
///         })
///     }
/// }
/// ```
pub trait Check: Send + Sync + 'static {
    /// The method in relayd's spelling (`"tcp"`, `"http code"`, `"send/expect"`, ...),
    /// for logs and events.
    fn name(&self) -> &'static str;

    /// Checks the host described by `probe`, by `probe.deadline()`.
    fn check<'a>(&'a self, probe: &'a Probe) -> BoxFuture<'a, Outcome>;
}

impl<C: Check + ?Sized> Check for Arc<C> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn check<'a>(&'a self, probe: &'a Probe) -> BoxFuture<'a, Outcome> {
        (**self).check(probe)
    }
}

impl<C: Check + ?Sized> Check for Box<C> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn check<'a>(&'a self, probe: &'a Probe) -> BoxFuture<'a, Outcome> {
        (**self).check(probe)
    }
}

/// One check of one host: where to connect, and when to give up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    addr: SocketAddr,
    deadline: Instant,
}

impl Probe {
    /// A probe of `addr` that must finish within `timeout` from now. A timeout too
    /// long for the clock (`Duration::MAX`) means a deadline 30 years away.
    pub fn new(addr: SocketAddr, timeout: Duration) -> Self {
        Probe {
            addr,
            deadline: deadline_after(Instant::now(), timeout),
        }
    }

    /// A probe of `addr` that must finish by `deadline`.
    pub fn with_deadline(addr: SocketAddr, deadline: Instant) -> Self {
        Probe { addr, deadline }
    }

    /// The address to check (the host's address, with the monitor's port override).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// When the whole check (connect, send, read) must be finished.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

/// `start + timeout`, or 30 years after `start` when that does not fit the clock: a
/// user's timeout must not make `Instant` arithmetic panic.
pub(crate) fn deadline_after(start: Instant, timeout: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(30 * 365 * 86_400);
    start.checked_add(timeout).unwrap_or_else(|| start + FAR)
}

/// Why a check did not find its host up: a [`Reason`] and, when it helps, what was
/// seen (`"expected 200, got 302"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    reason: Reason,
    detail: Option<String>,
}

impl Failure {
    /// A failure without detail.
    pub fn new(reason: Reason) -> Self {
        Failure {
            reason,
            detail: None,
        }
    }

    /// The same failure with a detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The reason.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// What was seen, if the check said.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
}

impl From<Reason> for Failure {
    fn from(reason: Reason) -> Self {
        Failure::new(reason)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            Some(d) => write!(f, "{}: {d}", self.reason),
            None => fmt::Display::fmt(&self.reason, f),
        }
    }
}

/// The result of one check: relayd's `up`, `down` and `unknown`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The host passed.
    Up,
    /// The host failed.
    Down(Failure),
    /// The check could not tell: a send/expect check whose connection closed before
    /// the data matched (relayd's `HOST_UNKNOWN`), or an ICMP check that may not open a
    /// socket. The host is not usable, but this is not counted towards `retry`.
    Unknown(Failure),
}

impl Outcome {
    /// A [`Down`](Outcome::Down) outcome without detail.
    pub fn down(reason: Reason) -> Self {
        Outcome::Down(Failure::new(reason))
    }

    /// Whether the host passed.
    pub fn is_up(&self) -> bool {
        matches!(self, Outcome::Up)
    }

    /// The failure, unless the host passed.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Outcome::Up => None,
            Outcome::Down(f) | Outcome::Unknown(f) => Some(f),
        }
    }

    /// The reason, unless the host passed.
    pub fn reason(&self) -> Option<Reason> {
        self.failure().map(Failure::reason)
    }

    /// The health this outcome points to.
    pub fn health(&self) -> Health {
        match self {
            Outcome::Up => Health::Up,
            Outcome::Down(_) => Health::Down,
            Outcome::Unknown(_) => Health::Unknown,
        }
    }
}

impl From<Result<(), Failure>> for Outcome {
    fn from(r: Result<(), Failure>) -> Self {
        match r {
            Ok(()) => Outcome::Up,
            Err(f) => Outcome::Down(f),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Up => f.write_str("up"),
            Outcome::Down(e) => write!(f, "down ({e})"),
            Outcome::Unknown(e) => write!(f, "unknown ({e})"),
        }
    }
}
