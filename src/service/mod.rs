//! A `tower::Service` that balances requests over inner services with any [`Policy`].
//!
//! [`Balance`] routes each request to one of several inner services. The service is
//! chosen by a policy over a [`Table`](lb_core::Table) whose hosts stand for the inner
//! services, with a [`Context`] the caller's closure takes from the request: the client
//! address, a header, a user id, anything. Each request holds a [`Lease`](lb_core::Lease)
//! until its response future completes, so [`LeastStates`](lb_policies::LeastStates) and
//! [`PowerOfTwo`](lb_policies::PowerOfTwo) see requests in flight, not just connections
//! (as tower's own `PeakEwma`/`PendingRequests` load does, with a pin-projected future
//! that holds a handle until the work is done).
//!
//! Readiness: `poll_ready` answers at once. It fails with
//! [`BalanceError::NoUsableService`] when the table has no usable host (so a caller never
//! hangs waiting for a service that cannot come), and succeeds otherwise; the chosen
//! inner service (a clone, so `S: Clone`) is driven to readiness inside the response
//! future, which gives per-service backpressure without making one slow service block
//! the others.
//!
//! ```
//! use lb::service::Balance;
//! use lb::policies::LeastStates;
//! use lb::core::Context;
//! use std::convert::Infallible;
//! use tower::{service_fn, Service, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let backend = |name: &'static str| service_fn(move |req: String| async move {
//!     Ok::<_, Infallible>(format!("{name} answers {req}"))
//! });
//! let mut balance = Balance::builder("api", LeastStates::new())
//!     .service("a", backend("a"))
//!     .service("b", backend("b"))
//!     .build(|_req: &String| Context::new())?;
//! let answer = balance.ready().await?.call("ping".to_owned()).await?;
//! assert!(answer.ends_with("answers ping"));
//! # Ok(())
//! # }
//! ```

mod builder;
mod discover;
mod future;

pub use builder::{BalanceBuilder, Named};
pub use future::ResponseFuture;

use std::fmt;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use arc_swap::ArcSwap;
use lb_core::{Backend, BackendId, Balancer, Context, Policy};
use tower_service::Service;

use discover::{Discovery, Services};

/// A boxed error, as tower middleware uses.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why [`Balance`] could not serve a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BalanceError {
    /// Every host of the table is down, disabled or draining, or has no service.
    #[error("no usable service in table `{table}`: every host is down, disabled or draining")]
    NoUsableService {
        /// The table's name.
        table: String,
    },
    /// A [`ResponseFuture`] was polled again after it had returned its output.
    #[error("response future polled after completion: expected it to be polled until ready, once")]
    PolledAfterCompletion,
}

/// Balances requests over inner services; see the [module docs](self).
///
/// `K` takes the [`Context`] from a request: `for<'a> Fn(&'a Req) -> Context<'a>`, so a
/// key can borrow from the request without copying.
pub struct Balance<S, P: Policy, K, B: Backend = Named> {
    balancer: Arc<Balancer<P, B>>,
    services: Arc<Services<S>>,
    key: Arc<K>,
    /// The discovery stream, for a balance built by [`Balance::discover`].
    discovery: Option<Arc<Discovery<S>>>,
}

impl<S, P: Policy, K, B: Backend> Balance<S, P, K, B> {
    /// Balances over `services`, keyed by the ids of `balancer`'s hosts. Hosts without a
    /// service are never picked; use this form to share a table with a health monitor
    /// or an admin API.
    pub fn new(
        balancer: Arc<Balancer<P, B>>,
        services: impl IntoIterator<Item = (BackendId, S)>,
        key: K,
    ) -> Self {
        Balance {
            balancer,
            services: Arc::new(ArcSwap::from_pointee(services.into_iter().collect())),
            key: Arc::new(key),
            discovery: None,
        }
    }

    /// The balancer (its table, policy and snapshot).
    pub fn balancer(&self) -> &Arc<Balancer<P, B>> {
        &self.balancer
    }
}

impl<S, P, K, B> Balance<S, P, K, B>
where
    P: Policy,
    B: Backend,
{
    fn no_service(&self) -> BalanceError {
        BalanceError::NoUsableService {
            table: self.balancer.table().name().to_owned(),
        }
    }
}

impl<S, P, K, B, Req> Service<Req> for Balance<S, P, K, B>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    P: Policy,
    B: Backend,
    K: for<'a> Fn(&'a Req) -> Context<'a>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req, B>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
        let open = self
            .discovery
            .as_ref()
            .is_some_and(|d| d.poll(cx, &self.services));
        let snapshot = self.balancer.snapshot();
        let services = self.services.load();
        let any = snapshot
            .usable()
            .iter()
            .any(|&i| services.contains_key(&snapshot.id(i as usize)));
        if any {
            Poll::Ready(Ok(()))
        } else if open && snapshot.is_empty() {
            // Discovery has brought no service yet: wait for the first.
            if let Some(d) = &self.discovery {
                d.wait(cx);
            }
            Poll::Pending
        } else {
            Poll::Ready(Err(self.no_service().into()))
        }
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let ctx = (self.key)(&req);
        let services = self.services.load();
        let picked = self
            .balancer
            .candidates(&ctx)
            .find_map(|c| services.get(&c.host().id()).map(|s| (c, s)));
        match picked {
            Some((candidate, service)) => {
                let lease = self.balancer.lease(&candidate, &ctx);
                tracing::trace!(table = %self.balancer.table().name(), host = %lease.name(), "route request");
                ResponseFuture::new(service.clone(), req, lease)
            }
            None => ResponseFuture::failed(self.no_service()),
        }
    }
}

impl<S, P: Policy, K, B: Backend> Clone for Balance<S, P, K, B> {
    fn clone(&self) -> Self {
        Balance {
            balancer: self.balancer.clone(),
            services: self.services.clone(),
            key: self.key.clone(),
            discovery: self.discovery.clone(),
        }
    }
}

impl<S, P: Policy, K, B: Backend> fmt::Debug for Balance<S, P, K, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balance")
            .field("table", &self.balancer.table().name())
            .field("services", &self.services.load().len())
            .finish()
    }
}
