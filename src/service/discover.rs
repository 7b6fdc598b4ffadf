//! Membership from tower's [`Discover`]: [`Balance::discover`].

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};

use arc_swap::ArcSwap;
use hashbrown::HashMap;
use lb_core::{BackendId, Balancer, Health, HostTable, Policy, Update};
use parking_lot::Mutex;
use tower::discover::{Change, Discover};

use super::{Balance, BoxError, Named};

/// The services by host, swapped whole on each change so that `call` reads them
/// without locking.
pub(super) type Services<S> = ArcSwap<HashMap<BackendId, S>>;

/// A discovery stream with its key and error types erased.
type Changes<S> = Pin<Box<dyn Discover<Key = String, Service = S, Error = BoxError> + Send>>;

/// The discovery half of a [`Balance`]: the stream and the table it fills, shared by
/// every clone.
pub(super) struct Discovery<S> {
    table: Arc<HostTable<Named>>,
    state: Mutex<State<S>>,
}

struct State<S> {
    changes: Changes<S>,
    ended: bool,
    /// Callers waiting in `poll_ready` for a first service, woken by the next change.
    waiting: Vec<Waker>,
}

impl<S> Discovery<S> {
    /// Applies every ready change to `table` and `services`. Returns whether the stream
    /// may still bring services.
    pub(super) fn poll(&self, cx: &mut TaskContext<'_>, services: &Services<S>) -> bool
    where
        S: Clone,
    {
        let table = &*self.table;
        let mut state = self.state.lock();
        let mut changes = Vec::new();
        while !state.ended {
            match state.changes.as_mut().poll_discover(cx) {
                Poll::Pending => break,
                Poll::Ready(None) => {
                    tracing::warn!(table = %table.name(), hosts = table.snapshot().len(), "service discovery ended; the last set keeps serving");
                    state.ended = true;
                }
                Poll::Ready(Some(Err(error))) => {
                    tracing::error!(table = %table.name(), %error, "service discovery failed; the last set keeps serving");
                }
                Poll::Ready(Some(Ok(change))) => changes.push(change),
            }
        }
        if !changes.is_empty() {
            apply(changes, table, services);
            for w in state.waiting.drain(..) {
                w.wake();
            }
        }
        !state.ended
    }

    /// Wakes `cx` at the next change.
    pub(super) fn wait(&self, cx: &mut TaskContext<'_>) {
        let mut state = self.state.lock();
        if !state.waiting.iter().any(|w| w.will_wake(cx.waker())) {
            state.waiting.push(cx.waker().clone());
        }
    }
}

/// Applies the changes that were ready, in order: the services first (a host without
/// a service is passed over by `call`), then the table in one batch, so that balancers
/// rebuild once however many services came or went.
fn apply<S: Clone>(
    changes: Vec<Change<String, S>>,
    table: &HostTable<Named>,
    services: &Services<S>,
) {
    services.rcu(|all| {
        let mut all = HashMap::clone(all);
        for change in &changes {
            match change {
                Change::Insert(key, service) => {
                    all.insert(BackendId::of_name(key), service.clone());
                }
                Change::Remove(key) => {
                    all.remove(&BackendId::of_name(key));
                }
            }
        }
        all
    });
    let updates: Vec<Update<Named>> = changes
        .into_iter()
        .map(|change| match change {
            Change::Insert(key, _) => Update::Add(Named::new(key), Health::Up),
            Change::Remove(key) => Update::Remove(BackendId::of_name(&key)),
        })
        .collect();
    let kinds: Vec<bool> = updates
        .iter()
        .map(|u| matches!(u, Update::Add(..)))
        .collect();
    for (result, added) in table.update(updates).into_iter().zip(kinds) {
        match (result, added) {
            (Ok(id), true) => {
                tracing::info!(table = %table.name(), host = %id, "service discovered")
            }
            (Ok(id), false) => {
                tracing::info!(table = %table.name(), host = %id, "service removed by discovery")
            }
            // A key inserted again keeps its host (and takes the new service, above); a
            // key removed that was never inserted changes nothing.
            (Err(lb_core::Error::DuplicateHost { .. } | lb_core::Error::UnknownHost { .. }), _) => {
            }
            (Err(error), _) => {
                tracing::error!(table = %table.name(), %error, "a discovered change could not be applied")
            }
        }
    }
}

impl<S, P: Policy, K> Balance<S, P, K, Named> {
    /// Balances over the services of a tower [`Discover`] stream, as
    /// `tower::balance::p2c::Balance::new` takes one, with `policy` and leases; `key`
    /// takes each request's [`Context`](lb_core::Context). Its table, named `table`, starts empty and
    /// follows the stream: each key is a host named by its `Display` form.
    ///
    /// The stream is polled in [`poll_ready`](tower_service::Service::poll_ready), as tower's
    /// balancers do, so no task is spawned and any runtime will do. Every ready change is
    /// applied before the readiness answer:
    ///
    /// - `Change::Insert(key, service)` adds a host named `key.to_string()` (id
    ///   [`BackendId::of_name`] of that name, so every instance fed the same keys agrees),
    ///   up and enabled, and routes its requests to `service`. A key inserted again keeps
    ///   its host (and its leases) and gets the new service.
    /// - `Change::Remove(key)` removes the host. Requests already routed to it finish on
    ///   their service; their leases count on its slot until they end.
    /// - An error from the stream is logged at error level and the stream is polled on:
    ///   the last good set keeps serving. The end of the stream is logged; the set it left
    ///   keeps serving.
    ///
    /// The changes ready at one poll are applied as one batch ([`HostTable::update`]):
    /// what the policy precomputes is rebuilt once for them, on the polling thread (for a
    /// consistent-hash table of hundreds of hosts, some milliseconds).
    ///
    /// Readiness: while the table is empty and the stream has not ended, `poll_ready`
    /// waits for the first service (tower's balancers do the same). Once there are hosts,
    /// it answers at once, failing with
    /// [`BalanceError::NoUsableService`](super::BalanceError::NoUsableService) when none is
    /// usable.
    ///
    /// ```
    /// use futures::channel::mpsc;
    /// use lb::core::Context;
    /// use lb::policies::Consistent;
    /// use lb::service::Balance;
    /// use std::convert::Infallible;
    /// use tower::discover::Change;
    /// use tower::{service_fn, Service, ServiceExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    /// let backend = |name: &'static str| service_fn(move |_: String| async move {
    ///     Ok::<_, Infallible>(name)
    /// });
    /// // The key borrows from the request: a function, whose signature says so.
    /// fn by_user(req: &String) -> Context<'_> {
    ///     Context::new().with_key(req.as_bytes())
    /// }
    /// let (changes, discover) = mpsc::unbounded();
    /// let mut balance = Balance::discover("api", Consistent::new(), discover, by_user)?;
    /// changes.unbounded_send(Ok::<_, Infallible>(Change::Insert("10.0.0.1:80", backend("a"))))?;
    /// assert_eq!(balance.ready().await?.call("user-7".into()).await?, "a");
    /// # Ok(())
    /// # }
    /// ```
    pub fn discover<D, Req>(
        table: impl Into<String>,
        policy: P,
        discover: D,
        key: K,
    ) -> Result<Self, lb_core::Error>
    where
        D: Discover<Service = S> + Send + 'static,
        D::Key: fmt::Display,
        D::Error: Into<BoxError>,
        S: Clone + Send + 'static,
        K: for<'a> Fn(&'a Req) -> lb_core::Context<'a>,
    {
        let table = HostTable::<Named>::builder(table).allow_empty().build()?;
        let balancer = Balancer::new(&table, policy);
        let changes: Changes<S> = Box::pin(Erased {
            inner: Box::pin(discover),
        });
        let mut balance = Balance::new(balancer, std::iter::empty(), key);
        balance.discovery = Some(Arc::new(Discovery {
            table,
            state: Mutex::new(State {
                changes,
                ended: false,
                waiting: Vec::new(),
            }),
        }));
        Ok(balance)
    }
}

/// A discovery stream with its key turned into a host name and its error boxed.
struct Erased<D> {
    inner: Pin<Box<D>>,
}

impl<D> futures_core::Stream for Erased<D>
where
    D: Discover,
    D::Key: fmt::Display,
    D::Error: Into<BoxError>,
{
    type Item = Result<Change<String, D::Service>, BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_discover(cx).map(|next| {
            next.map(|change| match change {
                Ok(Change::Insert(k, s)) => Ok(Change::Insert(k.to_string(), s)),
                Ok(Change::Remove(k)) => Ok(Change::Remove(k.to_string())),
                Err(e) => Err(e.into()),
            })
        })
    }
}
