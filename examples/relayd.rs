//! relayd for lb: runs a relayd.conf (or a Halon SR configuration's load-balancer block).
//!
//! ```sh
//! cargo run --example relayd -- -n -f examples/exchange/exchange.conf   # check: "configuration OK"
//! cargo run --example relayd -- -f examples/exchange/exchange.conf -D ext_addr=127.0.0.1 ...
//! ```
//!
//! `-v` logs state changes, `-D name=value` overrides a macro, SIGHUP reloads the file
//! (a broken file changes nothing and says why), `--metrics 127.0.0.1:9100` serves
//! `GET /metrics` (Prometheus text) and `GET /status` (JSON, like `relayctl show summary`).
//! `redirect` blocks run at layer 3 (nftables) on Linux where they can, else as relays;
//! `--redirects layer4` forces relays, `--redirects layer3` refuses the fallback. What
//! each block runs as is printed at start.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use lb::config::running::RunningRelay;
use lb::config::{parse_file, resolve, Layer, Plan, RedirectMode, Report, Running, StartOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

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
    /// Serve Prometheus metrics (`GET /metrics`) and a JSON summary (`GET /status`).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// How `redirect` blocks run: `auto` (layer 3 on Linux where nftables can be used,
    /// else a relay), `layer3` (no fallback), `layer4` (always a relay).
    #[arg(long, value_enum, default_value_t = Redirects::Auto)]
    redirects: Redirects,
}

/// `--redirects`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Redirects {
    Auto,
    Layer3,
    Layer4,
}

impl From<Redirects> for RedirectMode {
    fn from(r: Redirects) -> Self {
        match r {
            Redirects::Auto => RedirectMode::Auto,
            Redirects::Layer3 => RedirectMode::Layer3,
            Redirects::Layer4 => RedirectMode::Layer4,
        }
    }
}

/// Prints what a block runs as, and where.
fn report_block(r: &RunningRelay) {
    match r.layer() {
        Layer::Redirect { tables } => println!(
            "redirect {}: layer 3, nftables table(s) inet {}",
            r.name(),
            tables.join(", inet ")
        ),
        Layer::Relay { fallback } => {
            if let Some(why) = fallback {
                println!("redirect {}: layer-4 relay ({why})", r.name());
            }
            for h in &r.handles {
                println!("relay {} listening on {:?}", h.name(), h.local_addrs());
            }
        }
    }
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
    // The file's `log state changes` / `log connection` choose what is logged, like -v.
    let globals = &plan.config.globals;
    let level = match (args.verbose, globals.log_connections) {
        (0, false) if globals.log_state_changes => "warn,lb_config=info,lb_health=info",
        (0, false) => "warn",
        (0, true) => "warn,lb_config=info,lb_health=info,lb_relay=debug",
        (1, _) => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into()),
        )
        .with_writer(std::io::stderr)
        .init();
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
    let options = StartOptions::redirects(args.redirects.into());
    println!("redirects: {:?}", options.redirects);
    let running = match plan.start_with(options) {
        Ok(r) => Arc::new(Mutex::new(r)),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    for r in &running.lock().await.relays {
        report_block(r);
    }
    if let Some(addr) = args.metrics {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                println!("metrics on http://{addr}/metrics and /status");
                tokio::spawn(serve_metrics(listener, running.clone()));
            }
            Err(e) => {
                eprintln!("--metrics {addr}: {e}");
                return ExitCode::from(1);
            }
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
                Ok(plan) => match running.lock().await.reload(plan).await {
                    Ok(done) => println!("reloaded: {done:?}"),
                    Err(e) => eprintln!("reload stopped: {e}"),
                },
            },
        }
    }
    // Sessions get 5 s; layer-3 redirects remove their nftables tables.
    running
        .lock()
        .await
        .shutdown(std::time::Duration::from_secs(5))
        .await;
    ExitCode::SUCCESS
}

/// A minimal HTTP/1.0 server: `GET /metrics` and `GET /status`, one request per
/// connection (enough for Prometheus and curl).
async fn serve_metrics(listener: tokio::net::TcpListener, running: Arc<Mutex<Running>>) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            continue;
        };
        let running = running.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            let mut len = 0;
            // Read the request head (bounded: 8 KiB, 5 s).
            let head = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                while len < buf.len() {
                    match conn.read(&mut buf[len..]).await {
                        Ok(0) | Err(_) => return false,
                        Ok(n) => len += n,
                    }
                    if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                        return true;
                    }
                }
                false
            });
            if !matches!(head.await, Ok(true)) {
                return;
            }
            let line = String::from_utf8_lossy(&buf[..len]);
            let path = line.split_whitespace().nth(1).unwrap_or("");
            let status = running.lock().await.status();
            let (code, kind, body) = match path {
                "/metrics" => (
                    "200 OK",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    status.metrics(),
                ),
                "/status" => ("200 OK", "application/json", status.summary_json()),
                _ => (
                    "404 Not Found",
                    "text/plain",
                    "try /metrics or /status\n".to_owned(),
                ),
            };
            let response = format!("HTTP/1.0 {code}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            let _ = conn.write_all(response.as_bytes()).await;
        });
    }
}
