//! Embedding `lb` in a Rust service: a table, a policy, picks with leases.
//!
//! Run with `cargo run --example embed`.

use lb::core::{Balancer, Context, Health, Host, HostTable};
use lb::policies::{Consistent, LeastStates};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A table of three hosts; the third has twice the capacity.
    let table = HostTable::new(
        "api",
        [
            Host::new("api1", "10.0.0.1:8080".parse()?),
            Host::new("api2", "10.0.0.2:8080".parse()?),
            Host::new("api3", "10.0.0.3:8080".parse()?).with_weight(2)?,
        ],
    )?;

    // Least-states: each lease is one connection in flight until it is dropped.
    let least = Balancer::new(&table, LeastStates::new());
    let leases: Vec<_> = (0..4)
        .map(|_| least.pick(&Context::new()))
        .collect::<Result<_, _>>()?;
    let names: Vec<&str> = leases.iter().map(|l| l.name()).collect();
    println!("least-states, 4 connections in flight: {names:?}");

    // Consistent hashing on the client address: a client always lands on one host...
    let hash = Balancer::new(&table, Consistent::new());
    let client = Context::from_client("192.0.2.7:50000".parse()?);
    let home = hash.pick(&client)?.id();
    println!(
        "consistent: 192.0.2.7 goes to {}",
        hash.pick(&client)?.name()
    );

    // ...and only moves while its host is down; it comes back when the host recovers.
    table.set_health(home, Health::Down, "connect refused")?;
    println!("  its host is down: now {}", hash.pick(&client)?.name());
    table.set_health(home, Health::Up, "check ok")?;
    assert_eq!(hash.pick(&client)?.id(), home);
    println!("  its host is back: {} again", hash.pick(&client)?.name());

    drop(leases);
    for host in table.stats() {
        println!(
            "{:5} active {} total {}",
            host.name, host.active, host.total
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// `cargo test --workspace` runs the example (`test = true` in Cargo.toml), so its
    /// assertion and every `?` are checked in CI.
    #[test]
    fn runs() {
        super::main().expect("the example runs to its end");
    }
}
