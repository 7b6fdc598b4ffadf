//! relayd's `check script "/path"`: [`Script`].
//!
//! relayd runs the program with the host's name as its only argument and reads its
//! exit status: greater than 0 means up, 0 means down. A script still running at the
//! timeout is killed with `SIGKILL`; a child that did not exit normally counts as
//! status 0 (`!WIFEXITED` gives 0 in `check_script.c`, `script_exec`), so the host goes
//! down and the failure counts towards `retry` like any other. (Old relayd returned -1
//! there, which made the host unknown; current relayd does not.) We keep these rules,
//! pass the host's IP address as the last argument, and kill the child whenever the
//! check is dropped (`kill_on_drop`), so an aborted check leaves no process behind.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;

use futures_util::future::BoxFuture;
use tokio::process::Command;
use tokio::time::timeout_at;

use crate::{Check, Failure, Outcome, Probe, Reason};

/// relayd's `check script "/path"`: run a program, exit status > 0 is up.
///
/// The program gets the arguments given here, then the host's IP address. Its stdin,
/// stdout and stderr are closed (`/dev/null`).
///
/// | exit | outcome |
/// |---|---|
/// | status > 0 | [`Outcome::Up`] |
/// | status 0, or killed by a signal | [`Outcome::Down`], [`Reason::ScriptFailed`] |
/// | still running at the deadline: killed | [`Outcome::Down`], [`Reason::ScriptTimeout`] |
/// | could not be started | [`Outcome::Down`], [`Reason::ScriptError`] |
///
/// ```
/// use lb_health::Script;
/// // Runs `/usr/local/bin/check-exchange --quick 10.0.0.11`.
/// let check = Script::new("/usr/local/bin/check-exchange").arg("--quick");
/// # let _ = check;
/// ```
#[derive(Clone, Debug)]
pub struct Script {
    program: PathBuf,
    args: Vec<OsString>,
}

impl Script {
    /// Runs `program` with the host's address as its argument.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Script {
            program: program.into(),
            args: Vec::new(),
        }
    }

    /// Adds an argument before the host's address.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds arguments before the host's address.
    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    async fn run(&self, probe: &Probe) -> Outcome {
        let spawned = Command::new(&self.program)
            .args(&self.args)
            .arg(probe.addr().ip().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                return Outcome::Down(
                    Failure::new(Reason::ScriptError)
                        .with_detail(format!("could not run {}: {e}", self.program.display())),
                )
            }
        };
        match timeout_at(probe.deadline(), child.wait()).await {
            Ok(Ok(status)) => match status.code() {
                Some(code) if code > 0 => Outcome::Up,
                Some(code) => Outcome::Down(
                    Failure::new(Reason::ScriptFailed).with_detail(format!("exit status {code}")),
                ),
                None => Outcome::Down(
                    Failure::new(Reason::ScriptFailed).with_detail(format!("{status}")),
                ),
            },
            Ok(Err(e)) => Outcome::Down(
                Failure::new(Reason::ScriptError).with_detail(format!("could not wait: {e}")),
            ),
            Err(_) => {
                // SIGKILL and reap: the kill is immediate, the wait only collects it.
                // relayd counts the killed child as exit status 0: down.
                let _ = child.kill().await;
                Outcome::Down(
                    Failure::new(Reason::ScriptTimeout).with_detail("killed at the timeout"),
                )
            }
        }
    }
}

impl Check for Script {
    fn name(&self) -> &'static str {
        "script"
    }

    fn check<'a>(&'a self, probe: &'a Probe) -> BoxFuture<'a, Outcome> {
        Box::pin(self.run(probe))
    }
}
