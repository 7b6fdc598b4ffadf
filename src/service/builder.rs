//! [`BalanceBuilder`]: a [`Balance`] over named services, with its own table.

use std::borrow::Cow;
use std::sync::Arc;

use lb_core::{Backend, Balancer, Context, Error, HostTable, Policy, Weight};

use super::Balance;

/// A backend known only by its name and weight: an inner service of a [`Balance`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Named {
    name: String,
    weight: Weight,
}

impl Named {
    /// A backend of weight 1.
    pub fn new(name: impl Into<String>) -> Self {
        Named {
            name: name.into(),
            weight: Weight::ONE,
        }
    }

    /// The same backend with another weight.
    pub fn with_weight(mut self, weight: Weight) -> Self {
        self.weight = weight;
        self
    }
}

impl Backend for Named {
    fn name(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.name)
    }
    fn weight(&self) -> Weight {
        self.weight
    }
}

/// Builds a [`Balance`] with a table of its own, one host per service.
///
/// Defaults: every service has weight 1 and starts up.
pub struct BalanceBuilder<S, P> {
    name: String,
    policy: P,
    services: Vec<(Named, S)>,
    error: Option<Error>,
}

impl<S, P: Policy> Balance<S, P, (), Named> {
    /// Starts a balancer named `table` (the name its table and events carry).
    pub fn builder(table: impl Into<String>, policy: P) -> BalanceBuilder<S, P> {
        BalanceBuilder {
            name: table.into(),
            policy,
            services: Vec::new(),
            error: None,
        }
    }
}

impl<S, P: Policy> BalanceBuilder<S, P> {
    /// Adds a service of weight 1.
    pub fn service(mut self, name: impl Into<String>, service: S) -> Self {
        self.services.push((Named::new(name), service));
        self
    }

    /// Adds a service with a weight (`1..=65535`; anything else fails the build).
    pub fn weighted_service(mut self, name: impl Into<String>, weight: u64, service: S) -> Self {
        match Weight::new(weight) {
            Ok(w) => self
                .services
                .push((Named::new(name).with_weight(w), service)),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Builds the balancer; `key` takes each request's [`Context`]. Fails on an invalid
    /// weight, no services, or two services with one name.
    pub fn build<K, Req>(self, key: K) -> Result<Balance<S, P, K, Named>, Error>
    where
        K: for<'a> Fn(&'a Req) -> Context<'a>,
    {
        if let Some(e) = self.error {
            return Err(e);
        }
        let (hosts, services): (Vec<Named>, Vec<S>) = self.services.into_iter().unzip();
        let ids: Vec<_> = hosts.iter().map(Backend::id).collect();
        let table: Arc<HostTable<Named>> = HostTable::new(self.name, hosts)?;
        let balancer = Balancer::new(&table, self.policy);
        Ok(Balance::new(balancer, ids.into_iter().zip(services), key))
    }
}
