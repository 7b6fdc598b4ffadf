//! Chaos: two backends behind a relay, 300 clients spread over a few seconds, and one
//! backend stopped (listener closed, live connections dropped) and restarted three
//! times. No client may fail for want of a backend (only sessions cut because their
//! own backend died under them, counted apart), and the restarted backend must be back
//! in rotation within its ejection time each time. Once without a monitor (passive
//! health alone), once with a `tcp` check.
//!
//! ```text
//!   a: up all along                       (127.0.0.1)
//!   b: up ─ stop ─ 600 ms down ─ restart ─ serves ≥ 500 ms ─ stop ... three times
//!      (127.0.0.2, the same port each time)
//!   clients: one every 15 ms, each: greeting, one echo, close; 300, and more (counted
//!   apart) while the third restart has not been served yet
//! ```
//!
//! Each stop waits until b has served since its restart: with the back-off, a fixed
//! schedule could stop b again before its ejection ended, and there would be no coming
//! back to measure.
//!
//! b listens on 127.0.0.2 so that, while it is stopped, no `bind(0)` on 127.0.0.1
//! (another test, another process) can be handed its port.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{bounded, relay, Run, BOUND};
use lb_core::{Change, Host, HostTable};
use lb_health::{Monitor, Tcp};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{sleep, sleep_until, Instant};

const CLIENTS: usize = 300;
const SPACING: Duration = Duration::from_millis(15);
const FIRST_STOP: Duration = Duration::from_millis(300);
/// How long b serves after coming back before it is stopped again.
const UP_FOR: Duration = Duration::from_millis(500);
const DOWN_FOR: Duration = Duration::from_millis(600);
/// Clients beyond the 300 while the chaos is not over: a bound, never reached unless b
/// never comes back.
const MAX_EXTRA: usize = 2000;
const CYCLES: u32 = 3;
/// Short ejection times, for CI: with the defaults (10 s, doubled up to 5 min) each
/// cycle would take tens of seconds. The rules are the same at any scale.
const BASE: Duration = Duration::from_millis(300);
const MAX: Duration = Duration::from_secs(2);
/// Added to every bound on coming back: generous, so that a loaded machine cannot
/// make it flake; the figures printed show the real times.
const MARGIN: Duration = Duration::from_secs(5);
const CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// The two chaos tests take turns: each stops and rebinds a port.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A backend that greets with its name, echoes, and can be stopped and started again on
/// the same address.
struct Chaotic {
    name: &'static str,
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
    /// When each incarnation accepted its first session (0: the first start).
    firsts: Vec<Arc<OnceLock<Instant>>>,
    accepted: Arc<AtomicUsize>,
}

impl Chaotic {
    async fn start(name: &'static str, ip: &str) -> Chaotic {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let mut b = Chaotic {
            name,
            addr: listener.local_addr().unwrap(),
            task: None,
            firsts: Vec::new(),
            accepted: Arc::new(AtomicUsize::new(0)),
        };
        b.serve(listener);
        b
    }

    fn serve(&mut self, listener: TcpListener) {
        let first = Arc::new(OnceLock::new());
        self.firsts.push(first.clone());
        let (name, accepted) = (self.name, self.accepted.clone());
        self.task = Some(tokio::spawn(async move {
            // Dropped with this task: aborting it drops every live connection too.
            let mut sessions = JoinSet::new();
            loop {
                tokio::select! {
                    accept = listener.accept() => {
                        let Ok((stream, _)) = accept else { continue };
                        first.get_or_init(Instant::now);
                        accepted.fetch_add(1, Ordering::SeqCst);
                        sessions.spawn(greet_and_echo(stream, name));
                    }
                    Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
                }
            }
        }));
    }

    /// Closes the listener and drops every live connection.
    async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    async fn restart(&mut self) {
        let listener = TcpListener::bind(self.addr).await.expect("rebind the port");
        self.serve(listener);
    }
}

async fn greet_and_echo(mut stream: TcpStream, name: &str) {
    if stream
        .write_all(format!("{name}\n").as_bytes())
        .await
        .is_err()
    {
        return;
    }
    let (mut r, mut w) = stream.split();
    let _ = tokio::io::copy(&mut r, &mut w).await;
    let _ = w.shutdown().await;
}

/// One client session: when it ran, who greeted it, whether it completed.
struct Session {
    start: Instant,
    end: Instant,
    greeting: Option<String>,
    error: Option<String>,
}

async fn client(to: SocketAddr) -> Session {
    let start = Instant::now();
    let mut greeting = None;
    let run = async {
        let stream = common::connect(to)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let mut stream = BufReader::new(stream);
        let mut line = String::new();
        stream
            .read_line(&mut line)
            .await
            .map_err(|e| format!("greeting: {e}"))?;
        if !line.ends_with('\n') {
            return Err("closed before a greeting".to_owned());
        }
        greeting = Some(line.trim_end().to_owned());
        stream
            .write_all(b"ping\n")
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut back = [0; 5];
        stream
            .read_exact(&mut back)
            .await
            .map_err(|e| format!("echo: {e}"))?;
        if &back != b"ping\n" {
            return Err(format!("echo {back:?}"));
        }
        Ok(())
    };
    let error = match tokio::time::timeout(BOUND, run).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some(format!("no answer within {BOUND:?}")),
    };
    Session {
        start,
        end: Instant::now(),
        greeting,
        error,
    }
}

/// The ejection of b in force at `at`, from the table's changes: zero if none.
fn ejection_at(log: &[(Instant, Change)], at: Instant) -> Duration {
    let mut current = Duration::ZERO;
    for (_, change) in log.iter().filter(|(t, _)| *t <= at) {
        match change {
            Change::Ejected { reason } => {
                let secs = reason.rsplit("ejected for ").next().unwrap_or_default();
                let secs: f64 = secs.trim_end_matches(" s").parse().expect("a time in s");
                current = Duration::from_secs_f64(secs);
            }
            Change::EjectionEnded { .. } => current = Duration::ZERO,
            _ => {}
        }
    }
    current
}

async fn chaos(name: &str, monitored: bool) {
    let _turn = TURN.lock().await;
    let a = Chaotic::start("a", "127.0.0.1").await;
    let mut b = Chaotic::start("b", "127.0.0.2").await;
    let web = HostTable::new("web", [Host::new("a", a.addr), Host::new("b", b.addr)]).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    web.on_change(move |e| l.lock().unwrap().push((Instant::now(), e.change.clone())));
    let monitor = monitored.then(|| {
        Monitor::builder(web.clone())
            .check(Tcp)
            .interval(CHECK_INTERVAL)
            .timeout(Duration::from_millis(200))
            .retry(1)
            .keep_initial_health(true)
            .start()
            .unwrap()
    });
    let relay = relay(name)
        .forward_to(web.clone())
        .ejection(BASE, MAX)
        .run();
    let to = relay.local_addrs()[0];

    let origin = Instant::now();
    let over = AtomicBool::new(false);
    let stops = async {
        let (mut windows, mut restarts) = (Vec::new(), Vec::new());
        let mut since = origin;
        for cycle in 0..CYCLES as usize {
            sleep_until(since + if cycle == 0 { FIRST_STOP } else { UP_FOR }).await;
            let served = b.firsts[cycle].clone();
            bounded("b to serve before it is stopped", async {
                while served.get().is_none() {
                    sleep(SPACING).await;
                }
            })
            .await;
            let begin = Instant::now();
            b.stop().await;
            windows.push((begin, Instant::now()));
            sleep(DOWN_FOR).await;
            b.restart().await;
            since = Instant::now();
            restarts.push(since);
        }
        let last = b.firsts[CYCLES as usize].clone();
        bounded("b to serve after its last restart", async {
            while last.get().is_none() {
                sleep(SPACING).await;
            }
        })
        .await;
        over.store(true, Ordering::SeqCst);
        (windows, restarts)
    };
    let clients = async {
        let mut tick = tokio::time::interval(SPACING);
        let mut all = Vec::with_capacity(CLIENTS);
        while all.len() < CLIENTS || !over.load(Ordering::SeqCst) {
            assert!(all.len() < CLIENTS + MAX_EXTRA, "the chaos never ended");
            tick.tick().await;
            all.push(tokio::spawn(client(to)));
        }
        all
    };
    let ((windows, restarts), sessions) = tokio::join!(stops, clients);
    let extra = sessions.len() - CLIENTS;
    let mut done = Vec::with_capacity(sessions.len());
    for s in sessions {
        done.push(bounded("a client", s).await.unwrap());
    }

    // Failed sessions: cut by b's stop (running across a stop window, and not a's), or
    // real failures.
    let cut_by_stop = |s: &Session| {
        s.greeting.as_deref() != Some("a")
            && windows
                .iter()
                .any(|&(begin, end)| s.start <= end && s.end >= begin)
    };
    let failed: Vec<&Session> = done.iter().filter(|s| s.error.is_some()).collect();
    let cut = failed.iter().filter(|s| cut_by_stop(s)).count();
    let real: Vec<&str> = failed
        .iter()
        .filter(|s| !cut_by_stop(s))
        .filter_map(|s| s.error.as_deref())
        .collect();
    let by = |n: &str| {
        done.iter()
            .filter(|s| s.error.is_none() && s.greeting.as_deref() == Some(n))
            .count()
    };
    let stats = relay.stats();
    let log = log.lock().unwrap().clone();
    let ejections = log
        .iter()
        .filter(|(_, c)| matches!(c, Change::Ejected { .. }))
        .count();
    // A line of its own: libtest may have printed the test's name without a newline.
    eprintln!(
        "\nchaos {name}: {CLIENTS} clients + {extra} after the last restart over {} ms: {} served (a {}, b {}), \
         {cut} cut by b's stops, {} failed; relay: {} connect failures, {} sessions without a backend; \
         b ejected {ejections} times, accepted {} sessions",
        origin.elapsed().as_millis(),
        by("a") + by("b"),
        by("a"),
        by("b"),
        real.len(),
        stats.connect_failures,
        stats.failed,
        b.accepted.load(Ordering::SeqCst),
    );
    for (k, &restart) in restarts.iter().enumerate() {
        let first = *b.firsts[k + 1].get().expect("b served after each restart");
        let back = first - restart;
        let in_force = ejection_at(&log, restart);
        // With a monitor, a check that found b down keeps it out until the next check.
        let bound = in_force
            + if monitored {
                CHECK_INTERVAL
            } else {
                Duration::ZERO
            };
        eprintln!(
            "chaos {name}: restart {}: b back in rotation after {} ms (ejection in force {} ms; asserted <= {} ms + {} ms)",
            k + 1,
            back.as_millis(),
            in_force.as_millis(),
            bound.as_millis(),
            MARGIN.as_millis()
        );
        assert!(
            back <= bound + MARGIN,
            "restart {}: back after {back:?}",
            k + 1
        );
    }
    assert!(real.is_empty(), "clients failed: {real:?}");
    assert_eq!(stats.failed, 0, "sessions found no backend");
    assert_eq!(by("a") + by("b") + cut, CLIENTS + extra);
    assert!(ejections >= CYCLES as usize, "b ejected {ejections} times");
    if let Some(monitor) = monitor {
        monitor.shutdown().await;
    }
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_without_a_monitor_cost_no_client() {
    chaos("chaos-passive", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_with_a_monitor_cost_no_client() {
    chaos("chaos-monitored", true).await;
}
