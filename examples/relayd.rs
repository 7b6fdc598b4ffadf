//! relayd for lb: runs a relayd.conf (or a Halon SR configuration's load-balancer block).
//!
//! ```sh
//! cargo run --example relayd -- -n -f examples/exchange/exchange.conf   # check: "configuration OK"
//! cargo run --example relayd -- -f examples/exchange/exchange.conf -D ext_addr=127.0.0.1 ...
//! ```
//!
//! `-v` logs state changes, `-D name=value` overrides a macro, SIGHUP reloads the file
//! (a broken file changes nothing and says why).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use lb::config::{parse_file, resolve, Plan, Report};

/// relayd's command line, as far as lb goes.
#[derive(Parser, Debug)]
#[command(about = "Run a relayd.conf with lb")]
struct Args {
    /// The configuration file.
    #[arg(short = 'f', default_value = "/etc/relayd.conf")]
    file: PathBuf,
    /// Check the configuration and exit: 0 and "configuration OK", or the errors and 1.
    #[arg(short = 'n')]
    check: bool,
    /// Log state changes (and, twice, every session).
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    verbose: u8,
    /// Define a macro, overriding the file's: `-D name=value`.
    #[arg(short = 'D', value_name = "NAME=VALUE")]
    define: Vec<String>,
}

fn macros(args: &Args) -> Result<Vec<(String, String)>, String> {
    args.define
        .iter()
        .map(|d| match d.rsplit_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(format!("-D {d}: expected name=value")),
        })
        .collect()
}

/// Parses and resolves the file: the plan, or the report of its errors.
fn load(args: &Args, macros: &[(String, String)]) -> Result<Plan, Report> {
    let plan = resolve(parse_file(&args.file, macros)?)?;
    eprint!("{}", plan.report.render());
    Ok(plan)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let level = match args.verbose {
        0 => "warn,lb_config=info",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let macros = match macros(&args) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let plan = match load(&args, &macros) {
        Ok(plan) => plan,
        Err(report) => {
            eprint!("{}", report.render());
            return ExitCode::from(1);
        }
    };
    if args.check {
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(run(args, macros, plan))
}

async fn run(args: Args, macros: Vec<(String, String)>, plan: Plan) -> ExitCode {
    let mut running = match plan.start() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    for r in &running.relays {
        for h in &r.handles {
            println!("relay {} listening on {:?}", h.name(), h.local_addrs());
        }
    }
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        eprintln!("cannot catch SIGHUP");
        return ExitCode::from(1);
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = hup.recv() => match load(&args, &macros) {
                // The new file is checked first: a broken one changes nothing.
                Err(report) => eprint!("reload refused, nothing changed:\n{}", report.render()),
                Ok(plan) => match running.reload(plan).await {
                    Ok(done) => println!("reloaded: {done:?}"),
                    Err(e) => eprintln!("reload stopped: {e}"),
                },
            },
        }
    }
    for r in &running.relays {
        for h in &r.handles {
            h.shutdown(std::time::Duration::from_secs(5)).await;
        }
    }
    ExitCode::SUCCESS
}
