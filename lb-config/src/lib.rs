//! # lb-config: relayd.conf for `lb`
//!
//! Reads relayd.conf(5) as far as TCP relays, tables and checks go (and Halon SR's
//! `load-balancer { ... }` block, which is relayd.conf), reports every error with its
//! place, and builds the running tables, monitors and relays from it. `redirect` blocks
//! run at layer 3 on Linux (nftables, through `lb-redirect`) where they can, as relays
//! elsewhere: see [`redirect`] and [`StartOptions`].
//!
//! ```
//! use lb_config::{parse_str, model::Mode};
//!
//! let text = r#"
//! ext_addr = "127.0.0.1"
//! table <exchange> { 10.0.0.11, 10.0.0.12 retry 2 }
//! relay "POP3" {
//!     listen on $ext_addr port 110
//!     forward to <exchange> check tcp mode source-hash
//! }
//! "#;
//! let parsed = parse_str("relayd.conf", text, &[]).map_err(|r| r.render())?;
//! assert_eq!(parsed.config.relays[0].forwards[0].mode, Mode::SourceHash);
//! assert_eq!(parsed.config.tables[0].hosts[1].retry, 2);
//!
//! let broken = parse_str("relayd.conf", "relay x {\n listen on * port 99999\n}\n", &[]);
//! let report = broken.unwrap_err();
//! assert!(report.render().contains("relayd.conf:2:19"));
//! # Ok::<(), String>(())
//! ```
//!
//! ## Map
//!
//! - [`token`]: [`Tok`](token::Tok), [`Token`](token::Token).
//! - [`lexer`]: macros, includes, comments, line continuation, quotes.
//! - `parser` (internal): the grammar, with error recovery.
//! - [`model`]: the typed configuration.
//! - [`build`]: [`resolve`] names (through `lb-dns`, or [`resolve_with`] a given
//!   resolver) and validate checks into a [`Plan`].
//! - [`running`]: [`Plan::start`] / [`Plan::start_with`] start tables, monitors, relays
//!   and redirects; [`Running::reload`] applies a new plan by difference;
//!   [`Running::shutdown`] stops everything.
//! - [`redirect`]: [`RedirectMode`], [`StartOptions`], [`Layer`], [`Fallback`]: what a
//!   `redirect` block runs as, and why.
//! - [`status`]: [`Status`]: stats as Prometheus text or a JSON summary.
//! - [`diag`]: [`Diagnostic`], [`Report`]: positioned errors and warnings, rendered with
//!   `codespan-reporting`.
#![warn(missing_docs)]

pub mod build;
pub mod diag;
pub mod lexer;
pub mod model;
mod parser;
pub mod redirect;
mod reload;
pub mod running;
pub mod status;
pub mod token;

use std::path::Path;

pub use build::{resolve, resolve_with, Plan};
pub use diag::{Diagnostic, Report, Severity, Span};
pub use model::Config;
pub use redirect::{Fallback, Layer, RedirectMode, StartOptions};
pub use reload::ReloadReport;
pub use running::{Running, StartError};
pub use status::Status;

/// A configuration that parsed without errors, and its warnings.
#[derive(Clone, Debug)]
pub struct Parsed {
    /// The configuration.
    pub config: Config,
    /// Warnings (no errors), and the files read.
    pub report: Report,
}

/// Parses `text` (named `name` in messages); `macros` are `-D name=value` overrides,
/// which win over the file's definitions. Includes are read from the file system,
/// relative to `name`'s folder.
///
/// # Errors
///
/// A [`Report`] of every error (and warning) found.
pub fn parse_str(name: &str, text: &str, macros: &[(String, String)]) -> Result<Parsed, Report> {
    let reader = Box::new(|p: &Path| std::fs::read(p));
    parse_with(name, text, macros, reader)
}

/// Reads and parses the file at `path`, as [`parse_str`].
///
/// # Errors
///
/// A report of every error; an unreadable file is one error.
pub fn parse_file(path: &Path, macros: &[(String, String)]) -> Result<Parsed, Report> {
    let name = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => parse_str(&name, &String::from_utf8_lossy(&bytes), macros),
        Err(e) => {
            let mut report = Report::default();
            let file = report.sources.add(name.clone(), "");
            report.diagnostics.push(Diagnostic::error(
                Span::new(file, 0..0),
                format!("cannot read {name}: {e}"),
                "expected a readable file",
            ));
            Err(report)
        }
    }
}

/// Parses with a custom reader for includes (tests use an in-memory one).
///
/// # Errors
///
/// A report of every error found.
pub fn parse_with(
    name: &str,
    text: &str,
    macros: &[(String, String)],
    reader: lexer::Reader,
) -> Result<Parsed, Report> {
    let mut lx = lexer::Lexer::new(name, text, reader);
    for (k, v) in macros {
        lx.define_persistent(k, v);
    }
    let (config, lx) = parser::Parser::new(lx).parse();
    let report = Report {
        sources: lx.sources,
        diagnostics: lx.diagnostics,
    };
    if report.has_errors() {
        Err(report)
    } else {
        Ok(Parsed { config, report })
    }
}
