//! `redirect` blocks: on Linux, layer-3 redirects on nftables (`lb-redirect`); a
//! layer-4 relay elsewhere, or when nftables cannot be used, with a warning that says
//! why.
//!
//! The choice is the caller's ([`StartOptions::redirects`], a [`RedirectMode`]); the
//! default, [`RedirectMode::Auto`], takes layer 3 wherever it can. Each running block
//! says what it became ([`RunningRelay::layer`](crate::running::RunningRelay::layer)).
//!
//! A layer-3 redirect gets, from its block: the first `forward to` table (one table
//! instance per listen port, as relays), its mode and hash key, `sticky-address`, and as
//! the source-tracking timeout the block's `session timeout` (relayd gives pf the
//! session timeout as the established-state timeout, and pf keeps a source entry while
//! its states live: an idle connection within the session timeout keeps its source's
//! host either way). Each listen port is one nftables table `inet lb_<name>` (`name`:
//! the block's name, characters other than letters, digits and `_` as `_`, with `_<port>`
//! for every port after the first; a block whose name maps to a table an earlier block
//! has runs as a relay).

use std::path::PathBuf;

use crate::model::{ListenAddr, Mode, RelayDef, RelayKind};

/// How `redirect` blocks run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RedirectMode {
    /// Layer 3 on Linux when nftables can be used; otherwise a layer-4 relay, with a
    /// warning that says why (the default).
    #[default]
    Auto,
    /// Layer 3 or nothing: a redirect that cannot run in the kernel is a
    /// [`StartError::Redirect`](crate::StartError::Redirect).
    Layer3,
    /// Always a layer-4 relay (as on systems without nftables).
    Layer4,
}

/// Settings of [`Plan::start_with`](crate::Plan::start_with).
///
/// Defaults: [`RedirectMode::Auto`]; the `nft` tool from `PATH`.
#[derive(Clone, Debug)]
pub struct StartOptions {
    /// How `redirect` blocks run.
    pub redirects: RedirectMode,
    /// Where the `nft` tool is (layer-3 redirects).
    pub nft: PathBuf,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            redirects: RedirectMode::Auto,
            nft: PathBuf::from("nft"),
        }
    }
}

impl StartOptions {
    /// The defaults with `mode` for redirects.
    pub fn redirects(mode: RedirectMode) -> Self {
        StartOptions {
            redirects: mode,
            ..StartOptions::default()
        }
    }
}

/// What a block runs as.
#[derive(Debug)]
pub enum Layer {
    /// A layer-4 relay: a `relay` block, or a `redirect` that fell back.
    Relay {
        /// Why a `redirect` block runs as a relay (`None` for a `relay` block).
        fallback: Option<Fallback>,
    },
    /// A layer-3 redirect: the kernel rewrites packets (nftables tables, one per port).
    Redirect {
        /// The nftables tables (family `inet`), one per listen port; none while the
        /// block is disabled.
        tables: Vec<String>,
    },
}

/// Why a `redirect` block runs as a layer-4 relay.
#[derive(Debug, thiserror::Error)]
pub enum Fallback {
    /// The caller chose layer 4 ([`RedirectMode::Layer4`]).
    #[error("layer 4 was chosen by the caller")]
    Chosen,
    /// This system has no nftables (lb's redirects are Linux only).
    #[error("layer-3 redirects need Linux nftables")]
    NotLinux,
    /// The block asks for something the kernel redirect does not do.
    #[error("{0}")]
    Unsupported(String),
    /// nftables could not be used (not root, `nft` missing, no nf_tables, ...).
    #[cfg(target_os = "linux")]
    #[error("{0}")]
    Nftables(#[from] lb_redirect::Error),
}

/// The redirect's nftables name for a block and one of its listen ports.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) fn nft_name(def: &RelayDef, index: usize, port: u16) -> String {
    let mut name: String = def
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(26)
        .collect();
    if name.is_empty() {
        name.push('_');
    }
    if index > 0 {
        name = format!("{name}_{port}");
    }
    name
}

/// Why a block cannot run in the kernel, before nftables is asked; `all` are the
/// file's blocks.
pub(crate) fn unsupported(def: &RelayDef, all: &[RelayDef]) -> Option<Fallback> {
    if !cfg!(target_os = "linux") {
        return Some(Fallback::NotLinux);
    }
    let why = |s: &str| Some(Fallback::Unsupported(s.to_owned()));
    if def.forwards.len() > 1 {
        return why("backup tables (a second `forward to`) need a relay");
    }
    let f = def.forwards.first()?;
    if matches!(f.mode, Mode::LoadBalance | Mode::PowerOfTwo) {
        return why("modes loadbalance and p2c have no kernel form (roundrobin, random, source-hash, consistent, least-states have)");
    }
    if def.listen.iter().any(|l| l.addr.is_none()) {
        return why("`listen on *` needs a relay: a redirect rewrites packets to given addresses");
    }
    if def
        .listen
        .iter()
        .any(|l| matches!(l.addr, Some(ListenAddr::Name(_))))
    {
        return why("a redirect listens on IP addresses, not names");
    }
    // Names differing only in characters nftables does not take would share a table:
    // the first block keeps it.
    let table = nft_name(def, 0, 0);
    if let Some(first) = all
        .iter()
        .take_while(|d| d.name != def.name)
        .find(|d| d.kind == RelayKind::Redirect && nft_name(d, 0, 0) == table)
    {
        return Some(Fallback::Unsupported(format!(
            "its nftables table inet lb_{table} is redirect {}'s",
            first.name
        )));
    }
    None
}

#[cfg(target_os = "linux")]
pub(crate) use linux::start_layer3;

/// Removes kernel redirects off the async workers (each is an `nft` transaction), and
/// returns once they are gone: a block rebuilt under the same name needs its table name
/// free.
#[cfg(target_os = "linux")]
pub(crate) async fn remove(redirects: Vec<lb_redirect::Redirect>) {
    if redirects.is_empty() {
        return;
    }
    let removed = tokio::task::spawn_blocking(move || {
        for r in redirects {
            let table = r.table_name().to_owned();
            if let Err(error) = r.shutdown() {
                tracing::error!(%table, %error, "could not remove a redirect's nftables table");
            }
        }
    });
    if let Err(error) = removed.await {
        tracing::error!(%error, "removing redirects failed");
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::sync::Arc;

    use lb_core::{HashKey, Host, HostTable, TableEvent};
    use lb_redirect::{Mode as KernelMode, Redirect};

    use super::{nft_name, Layer, StartOptions};
    use crate::build::{listen_groups, make_monitor, make_table, Plan};
    use crate::model::{Forward, Mode, RelayDef};
    use crate::running::{shape, RunningRelay, StartError};

    fn kernel_mode(mode: Mode) -> KernelMode {
        match mode {
            Mode::Random => KernelMode::Random,
            Mode::SourceHash | Mode::Consistent => KernelMode::SourceHash,
            Mode::LeastStates => KernelMode::LeastStates,
            // `unsupported` keeps loadbalance and p2c away from here.
            _ => KernelMode::RoundRobin,
        }
    }

    /// Starts a block in the kernel: one table instance and one redirect per listen
    /// port (none while the block is disabled), then the monitors. `Ok(Err(_))`: nftables
    /// could not be used, nothing was left behind.
    pub(crate) fn start_layer3(
        plan: &Plan,
        def: &RelayDef,
        f: &Forward,
        options: &StartOptions,
    ) -> Result<Result<RunningRelay, lb_redirect::Error>, StartError> {
        let relay = || def.name.clone();
        let groups = listen_groups(plan, def);
        let mut tables = Vec::new();
        for (port, _) in &groups {
            let table = make_table(plan, f, *port).map_err(|source| StartError::Table {
                relay: relay(),
                source,
            })?;
            if plan.config.globals.log_state_changes {
                table.on_change(|e: &TableEvent| tracing::info!(table = %e.table, host = %e.host, change = ?e.change, "state change"));
            }
            tables.push(table);
        }
        let redirects = if def.disabled {
            Vec::new()
        } else {
            match start_redirects(def, f, &groups, &tables, options) {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            }
        };
        let mut monitors = Vec::new();
        for ((port, _), table) in groups.iter().zip(&tables) {
            if let Some(m) =
                make_monitor(plan, table, f, *port).map_err(|source| StartError::Monitor {
                    relay: relay(),
                    source,
                })?
            {
                monitors.push(m);
            }
        }
        Ok(Ok(RunningRelay {
            def: def.clone(),
            shape: shape(plan, def),
            layer: Layer::Redirect {
                tables: redirects
                    .iter()
                    .map(|r| r.table_name().to_owned())
                    .collect(),
            },
            handles: Vec::new(),
            monitors,
            tables: tables.into_iter().map(|t| (f.table.clone(), t)).collect(),
            redirects,
        }))
    }

    /// One kernel redirect per listen port, on the given table instances (one per
    /// port, in `listen_groups` order). Those started before a failure are removed.
    fn start_redirects(
        def: &RelayDef,
        f: &Forward,
        groups: &[(u16, Vec<std::net::IpAddr>)],
        tables: &[Arc<HostTable<Host>>],
        options: &StartOptions,
    ) -> Result<Vec<Redirect>, lb_redirect::Error> {
        let mut out = Vec::new();
        for (i, ((port, ips), table)) in groups.iter().zip(tables).enumerate() {
            let mut b = Redirect::builder(nft_name(def, i, *port))
                .port(*port)
                .forward_to(table.clone())
                .mode(kernel_mode(f.mode))
                .nft_path(&options.nft);
            for ip in ips {
                b = b.listen(*ip);
            }
            if let Some(p) = f.port {
                b = b.backend_port(p);
            }
            if let Some(k) = f.key.as_ref().and_then(|(k, _)| HashKey::parse(k).ok()) {
                b = b.hash_key(k);
            }
            if def.sticky {
                b = b.sticky_address(def.session_timeout);
            }
            // On error `out` drops, removing the tables already made.
            out.push(b.start()?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Span;
    use crate::model::{Forward, Listen, DEFAULT_SESSION_TIMEOUT};

    fn def(name: &str) -> RelayDef {
        RelayDef {
            name: name.into(),
            span: Span::default(),
            kind: RelayKind::Redirect,
            listen: Vec::new(),
            forwards: Vec::new(),
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            protocol: None,
            disabled: false,
            sticky: false,
        }
    }

    #[test]
    fn nft_names_are_letters_digits_and_underscores() {
        assert_eq!(nft_name(&def("www-1.example"), 0, 80), "www_1_example");
        assert_eq!(nft_name(&def("www"), 1, 443), "www_443");
        assert_eq!(nft_name(&def(""), 0, 80), "_");
        let long = nft_name(&def(&"x".repeat(40)), 1, 65535);
        assert!(long.len() <= 32, "{long}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_second_block_with_the_same_table_name_falls_back() {
        let block = |name: &str| RelayDef {
            listen: vec![Listen {
                addr: Some(ListenAddr::Ip("198.18.100.1".parse().unwrap())),
                port: 80,
                span: Span::default(),
            }],
            forwards: vec![Forward {
                table: "t".into(),
                span: Span::default(),
                port: None,
                mode: Mode::RoundRobin,
                key: None,
                check: None,
                interval: None,
                timeout: None,
            }],
            ..def(name)
        };
        let all = [block("a-b"), block("a_b")];
        assert!(unsupported(&all[0], &all).is_none());
        match unsupported(&all[1], &all) {
            Some(Fallback::Unsupported(why)) => {
                assert_eq!(why, "its nftables table inet lb_a_b is redirect a-b's")
            }
            other => panic!("expected a fallback, got {other:?}"),
        }
    }
}
