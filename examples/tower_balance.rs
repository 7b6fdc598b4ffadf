//! A tower request balancer: requests routed by a key taken from each request.
//!
//! Three inner services (here `service_fn`s; in a real program, clients of three
//! backends). Requests carry a user id; consistent hashing on it keeps each user on one
//! service, and a service that goes down moves only its own users.
//!
//! Run with `cargo run --example tower_balance`.

use std::convert::Infallible;

use lb::core::{Context, Health};
use lb::policies::Consistent;
use lb::service::Balance;
use tower::{service_fn, Service, ServiceExt};

/// A request: who asks, and what.
struct Request {
    user: String,
    body: &'static str,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let backend = |name: &'static str| {
        service_fn(move |req: Request| async move {
            Ok::<_, Infallible>(format!("{name} serves {} for {}", req.body, req.user))
        })
    };
    let mut balance = Balance::builder("users", Consistent::new())
        .service("backend-a", backend("backend-a"))
        .service("backend-b", backend("backend-b"))
        .service("backend-c", backend("backend-c"))
        // The key borrows from the request: no copy per request.
        .build(|req: &Request| Context::new().with_key(req.user.as_bytes()))?;

    let users = ["alice", "bob", "carol", "dave"];
    for user in users {
        let req = Request {
            user: user.into(),
            body: "GET /inbox",
        };
        println!("{}", balance.ready().await?.call(req).await?);
    }

    // Take backend-a down, as a health check would: only its users move.
    let table = balance.balancer().table().clone();
    let a = table.snapshot().id(0);
    table.set_health(a, Health::Down, "connect refused".into())?;
    println!("-- backend-a is down --");
    for user in users {
        let req = Request {
            user: user.into(),
            body: "GET /inbox",
        };
        println!("{}", balance.ready().await?.call(req).await?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// `cargo test --workspace` runs the example (`test = true` in Cargo.toml), so every
    /// `?` is checked in CI.
    #[test]
    fn runs() {
        super::main().expect("the example runs to its end");
    }
}
