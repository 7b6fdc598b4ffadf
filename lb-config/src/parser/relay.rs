//! `relay NAME { ... }` and `redirect NAME { ... }`: listen, forward (with mode and
//! check), session timeout, protocol, disable, sticky-address.

use std::time::Duration;

use lb_core::HashKey;

use super::Parser;
use crate::diag::Span;
use crate::lexer::Tok;
use crate::model::{
    CheckDef, CheckKind, Forward, Listen, ListenAddr, Mode, RelayDef, RelayKind,
    DEFAULT_SESSION_TIMEOUT,
};

/// Words that start a forward option (anything else after a mode is its key).
const FORWARD_OPTIONS: [&str; 7] = [
    "port", "mode", "check", "interval", "timeout", "retry", "demote",
];

impl Parser {
    pub(crate) fn relay(&mut self) -> Option<()> {
        let kw = self.bump();
        let kind = if kw.is("redirect") {
            RelayKind::Redirect
        } else {
            RelayKind::Relay
        };
        let (name, span) = self.string("a name")?;
        self.punct('{')?;
        let mut def = RelayDef {
            name,
            span: span.clone(),
            kind,
            listen: Vec::new(),
            forwards: Vec::new(),
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            protocol: None,
            disabled: false,
            sticky: false,
        };
        let what = format!("{} {}", kw.text().unwrap_or_default(), def.name);
        let errors = self.error_count();
        self.block(&what, &span, |p| p.relay_option(&mut def));
        // A broken line already said what is missing.
        let clean = self.error_count() == errors;
        if clean && def.listen.is_empty() {
            self.err(
                span.clone(),
                format!("{what} has no listen address"),
                "expected a `listen on ADDR port P` line in it",
            );
        }
        if clean && def.forwards.is_empty() {
            self.err(
                span.clone(),
                format!("{what} has no table"),
                "expected a `forward to <table>` line in it",
            );
        }
        // On Linux a redirect runs at layer 3 when nftables can be used; whether it can
        // is known when it starts, which warns if it falls back (`running::start_block`).
        if kind == RelayKind::Redirect && !cfg!(target_os = "linux") {
            self.warn(
                span.clone(),
                format!("redirect {} runs as a layer-4 relay", def.name),
                "relayed, not redirected by pf",
            );
            if let Some(d) = self.lx.diagnostics.last_mut() {
                d.notes.push("pf rewrites packets (layer 3) and the backend sees the client's address; lb accepts the connection and opens another, so the backend sees the relay's address (unless PROXY protocol is on)".into());
            }
        }
        if self.config.relays.iter().any(|r| r.name == def.name) {
            self.err(
                span,
                format!("{what} defined twice"),
                "expected another name",
            );
            return Some(());
        }
        self.config.relays.push(def);
        Some(())
    }

    fn relay_option(&mut self, def: &mut RelayDef) -> Option<()> {
        let t = self.peek().clone();
        let word = match &t.tok {
            Tok::Word(w) => w.clone(),
            _ => {
                return self
                    .expected("a relay option (listen, forward, session, protocol, disable)")
            }
        };
        match word.as_str() {
            "listen" => {
                let l = self.listen(def.kind)?;
                def.listen.push(l);
            }
            "forward" => {
                let f = self.forward()?;
                def.forwards.push(f);
            }
            "session" => {
                self.bump();
                self.want("timeout")?;
                let (n, _) = self.number("a session timeout in seconds", 1, 2_147_483_647)?;
                def.session_timeout = Duration::from_secs(n);
            }
            "protocol" => {
                self.bump();
                def.protocol = Some(self.string("a protocol name")?);
            }
            "disable" => {
                self.bump();
                def.disabled = true;
            }
            "sticky-address" => {
                self.bump();
                def.sticky = true;
            }
            "tls" | "ssl" | "transparent" | "route" | "destination" => {
                self.bump();
                let message = format!("`{word}` is not supported");
                let label = match word.as_str() {
                    "tls" | "ssl" => {
                        "lb relays TCP and does not terminate TLS: let the backends do it"
                    }
                    "route" => "lb relays connections; it does not route packets",
                    _ => "lb connects to the table's hosts only",
                };
                self.err(t.span, message, label);
                return None;
            }
            "tag" | "match" => {
                self.bump();
                self.eat("tag");
                let (_, end) = self.string("a tag")?;
                self.warn(
                    t.span.to(&end),
                    "pf tags are ignored",
                    "accepted, no effect",
                );
            }
            w => {
                let message = format!("unknown relay option `{w}`");
                self.err(t.span, message, "expected listen, forward, session timeout, protocol, disable or sticky-address");
                return None;
            }
        }
        Some(())
    }

    /// `listen on ADDR|* [tcp] [port P] [tls] [interface IF]`, or Halon's `listen on port P`.
    fn listen(&mut self, kind: RelayKind) -> Option<Listen> {
        let start = self.bump().span;
        self.want("on")?;
        let mut addr = None;
        if !self.peek().is("port") {
            let (a, _) = self.string("an address, `*` or `port`")?;
            if a != "*" {
                addr = Some(match a.parse() {
                    Ok(ip) => ListenAddr::Ip(ip),
                    Err(_) => ListenAddr::Name(a),
                });
            }
        }
        if kind == RelayKind::Redirect && self.peek().is("tcp") {
            self.bump();
        }
        let mut end = start.clone();
        let mut port = None;
        if self.eat("port") {
            let (p, span) = self.number("a port number", 1, 65_535)?;
            port = Some(p as u16);
            end = span;
        }
        let t = self.peek().clone();
        if t.is("tls") || t.is("ssl") {
            self.err(
                t.span,
                "TLS on a relay's listener is not supported",
                "lb relays TCP and does not terminate TLS: let the backends do it",
            );
            return None;
        }
        if self.eat("interface") {
            let (_, span) = self.string("an interface name")?;
            self.warn(span, "`interface` is ignored", "accepted, no effect");
        }
        let span = start.to(&end);
        let Some(port) = port else {
            self.err(
                span,
                "listen on needs a port",
                "expected `port P` (relayd has no default port)",
            );
            return None;
        };
        Some(Listen { addr, port, span })
    }

    /// `forward to <table> [port P] [mode M [key]] [check ...] [interval N] [timeout N]`.
    fn forward(&mut self) -> Option<Forward> {
        let kw = self.bump();
        if self.peek().is("with") {
            let t = self.bump();
            self.err(
                kw.span.to(&t.span),
                "`forward with tls` is not supported",
                "lb relays TCP and does not originate TLS",
            );
            return None;
        }
        self.want("to")?;
        if self.peek().tok != Tok::Punct('<') {
            return self
                .expected("a table (`<name>`); `destination` and `nat lookup` are not supported");
        }
        let (table, span) = self.table_name()?;
        let mut f = Forward {
            table,
            span,
            port: None,
            mode: Mode::RoundRobin,
            key: None,
            check: None,
            interval: None,
            timeout: None,
        };
        while !self.at_end() {
            let t = self.peek().clone();
            let Some(w) = t.text().map(str::to_owned) else {
                return self.expected("a forward option (port, mode, check, interval, timeout)");
            };
            self.bump();
            match w.as_str() {
                "port" => f.port = Some(self.number("a port number", 1, 65_535)?.0 as u16),
                "mode" => self.mode(&mut f)?,
                "check" => f.check = Some(self.check(&t.span)?),
                "interval" => {
                    f.interval = Some(Duration::from_secs(
                        self.number("an interval in seconds", 1, 86_400)?.0,
                    ))
                }
                "timeout" => {
                    f.timeout = Some(Duration::from_millis(
                        self.number("a timeout in milliseconds", 1, 3_600_000)?.0,
                    ))
                }
                "retry" => {
                    let (_, n) = self.number("a number of retries", 0, 1000)?;
                    self.warn(
                        t.span.to(&n),
                        "`retry` on forward is ignored",
                        "lb fails over to the next host instead",
                    );
                }
                "demote" => {
                    let (_, n) = self.string("a carp group")?;
                    self.warn(
                        t.span.to(&n),
                        "`demote` is ignored",
                        "lb does not manage carp groups",
                    );
                }
                _ => {
                    let message = format!("unknown forward option `{w}`");
                    self.err(
                        t.span,
                        message,
                        "expected port, mode, check, interval or timeout",
                    );
                    return None;
                }
            }
        }
        Some(f)
    }

    fn mode(&mut self, f: &mut Forward) -> Option<()> {
        let t = self.peek().clone();
        let name = t.text().unwrap_or_default().to_owned();
        let Some(&(_, mode)) = Mode::ALL.iter().find(|(n, _)| *n == name) else {
            let names: Vec<_> = Mode::ALL.iter().map(|(n, _)| *n).collect();
            return self.expected(&format!("a mode ({})", names.join(", ")));
        };
        self.bump();
        f.mode = mode;
        let next = self.peek().clone();
        let is_key = match &next.tok {
            Tok::Str(_) => true,
            Tok::Word(w) => !FORWARD_OPTIONS.contains(&w.as_str()),
            _ => false,
        };
        if is_key {
            let (key, span) = self.string("a hash key")?;
            if !mode.takes_key() {
                self.warn(span.clone(), format!("mode {name} takes no key"), "ignored");
            } else if let Err(e) = HashKey::parse(&key) {
                self.err(
                    span,
                    format!("invalid hash key: {e}"),
                    "expected 0x and 32 hex digits, or any other string",
                );
                return None;
            }
            f.key = Some((key, span));
        }
        Some(())
    }

    /// `check ...` after the word `check` (at `start`).
    fn check(&mut self, start: &Span) -> Option<CheckDef> {
        let t = self.peek().clone();
        let w = t.text().unwrap_or_default().to_owned();
        let kind = match w.as_str() {
            "tcp" => {
                self.bump();
                CheckKind::Tcp
            }
            "tls" | "ssl" => {
                self.bump();
                CheckKind::Tls
            }
            "http" | "https" => {
                self.bump();
                let tls = w == "https";
                let (path, _) = self.string("a path (\"/\")")?;
                let host = if self.eat("host") {
                    Some(self.string("a host name")?.0)
                } else {
                    None
                };
                if self.eat("code") {
                    let code = self.number("an HTTP status code", 100, 999)?.0 as u16;
                    CheckKind::HttpCode {
                        tls,
                        path,
                        host,
                        code,
                    }
                } else if self.eat("digest") {
                    let digest = self.string("a digest (SHA-1 or MD5, hex)")?.0;
                    CheckKind::HttpDigest {
                        tls,
                        path,
                        host,
                        digest,
                    }
                } else {
                    return self.expected("`code N` or `digest \"D\"`");
                }
            }
            "send" => {
                self.bump();
                let send = if self.eat("nothing") {
                    String::new()
                } else {
                    self.string("data to send, or `nothing`")?.0
                };
                self.want("expect")?;
                let expect = self.string("a pattern (\"220*\")")?.0;
                let tls = self.eat("tls") || self.eat("ssl");
                CheckKind::SendExpect { send, expect, tls }
            }
            "binary" => {
                self.bump();
                self.want("send")?;
                let send = self.string("hex data to send")?.0;
                self.want("expect")?;
                let expect = self.string("hex data expected")?.0;
                let tls = self.eat("tls") || self.eat("ssl");
                CheckKind::Binary { send, expect, tls }
            }
            "script" => {
                self.bump();
                CheckKind::Script(self.string("a program path")?.0)
            }
            "icmp" => {
                self.err(
                    t.span,
                    "check icmp is not supported",
                    "lb has no ICMP check (it needs raw sockets): use check tcp",
                );
                return None;
            }
            _ => return self.expected("a check (tcp, tls, http, https, send, binary, script)"),
        };
        Some(CheckDef {
            kind,
            span: start.to(&t.span),
        })
    }
}
