//! `table <name> [disable] { host [retry N], ... }`, and the checks of references
//! between tables, protocols and relays.

use super::Parser;
use crate::diag::Span;
use crate::lexer::Tok;
use crate::model::{HostDef, TableDef};

impl Parser {
    /// `<name>`.
    pub(crate) fn table_name(&mut self) -> Option<(String, Span)> {
        let open = self.punct('<')?;
        let (name, _) = self.string("a table name")?;
        let close = self.punct('>')?;
        if name.is_empty() || name.chars().count() > 64 {
            self.err(
                open.to(&close),
                "invalid table name",
                "expected 1 to 64 characters",
            );
            return None;
        }
        Some((name, open.to(&close)))
    }

    pub(crate) fn table(&mut self) -> Option<()> {
        self.bump();
        let (name, span) = self.table_name()?;
        let mut def = TableDef {
            name,
            span: span.clone(),
            disabled: false,
            hosts: Vec::new(),
        };
        let mut body = false;
        loop {
            if self.eat("disable") {
                def.disabled = true;
            } else if self.peek().tok == Tok::Punct('{') {
                self.bump();
                self.hosts(&mut def);
                body = true;
            } else {
                break;
            }
        }
        if !body {
            return self.expected("`{` and the table's hosts");
        }
        if self.config.tables.iter().any(|t| t.name == def.name) {
            self.err(
                span,
                format!("table <{}> defined twice", def.name),
                "expected another name",
            );
            return Some(());
        }
        self.config.tables.push(def);
        Some(())
    }

    /// The host list after `{`, up to and with the `}`: hosts separated by commas or
    /// newlines, each with its options.
    fn hosts(&mut self, def: &mut TableDef) {
        loop {
            if self.starts_block() {
                let next = self.peek().clone();
                self.err(
                    def.span.clone(),
                    format!("table <{}> is not closed", def.name),
                    format!(
                        "expected a `}}` after its hosts, before the {} on line {}",
                        next.describe(),
                        self.line_of(&next.span)
                    ),
                );
                return;
            }
            let t = self.peek().clone();
            match &t.tok {
                Tok::Newline | Tok::Punct(',') => {
                    self.bump();
                }
                Tok::Punct('}') => {
                    self.bump();
                    return;
                }
                Tok::Eof => {
                    self.err(
                        def.span.clone(),
                        format!("table <{}> is not closed", def.name),
                        "expected a `}` after its hosts",
                    );
                    return;
                }
                Tok::Word(_) | Tok::Str(_) => {
                    if self.host(def).is_none() {
                        while !matches!(
                            self.peek().tok,
                            Tok::Newline | Tok::Punct(',' | '}') | Tok::Eof
                        ) {
                            self.bump();
                        }
                    }
                }
                _ => {
                    self.err(
                        t.span.clone(),
                        format!("unexpected {}", t.describe()),
                        "expected a host address or name",
                    );
                    self.bump();
                }
            }
        }
    }

    fn host(&mut self, def: &mut TableDef) -> Option<()> {
        let (name, span) = self.string("a host")?;
        let mut host = HostDef {
            name,
            span: span.clone(),
            retry: 0,
        };
        loop {
            let t = self.peek().clone();
            if t.is("retry") {
                self.bump();
                host.retry = self.number("a number of retries", 0, 1000)?.0 as u32;
            } else if t.is("parent") || t.is("priority") {
                self.bump();
                let (_, n) = self.number("a number", 0, 1_000_000)?;
                let what = t.text().unwrap_or_default().to_owned();
                self.warn(
                    t.span.to(&n),
                    format!("host `{what}` is ignored"),
                    "accepted, no effect",
                );
                if let Some(d) = self.lx.diagnostics.last_mut() {
                    d.notes.push("lb has no parent hosts (they inherit their parent's health in relayd) and no routing priority".into());
                }
            } else if t.is("ip") {
                self.bump();
                self.want("ttl")?;
                let (_, n) = self.number("a TTL", 1, 255)?;
                self.warn(
                    t.span.to(&n),
                    "host `ip ttl` is ignored",
                    "accepted, no effect",
                );
            } else {
                break;
            }
        }
        if def.hosts.iter().any(|h| h.name == host.name) {
            self.err(
                span,
                format!("host {} is twice in table <{}>", host.name, def.name),
                "expected each host once",
            );
            return Some(());
        }
        def.hosts.push(host);
        Some(())
    }

    /// Tables and protocols that relays name must exist; unused ones are warned about.
    pub(crate) fn check_references(&mut self) {
        let mut errors = Vec::new();
        let mut used_tables = Vec::new();
        let mut used_protocols = Vec::new();
        for relay in &self.config.relays {
            for f in &relay.forwards {
                if self.config.tables.iter().any(|t| t.name == f.table) {
                    used_tables.push(f.table.clone());
                } else {
                    errors.push((
                        f.span.clone(),
                        format!("unknown table <{}>", f.table),
                        "expected a table defined with `table <name> { ... }`".to_owned(),
                    ));
                }
            }
            if let Some((p, span)) = &relay.protocol {
                if self.config.protocols.iter().any(|d| &d.name == p) {
                    used_protocols.push(p.clone());
                } else {
                    errors.push((
                        span.clone(),
                        format!("unknown protocol {p}"),
                        "expected a protocol defined with `protocol NAME { ... }`".to_owned(),
                    ));
                }
            }
        }
        for (span, message, label) in errors {
            self.err(span, message, label);
        }
        let unused: Vec<_> = self
            .config
            .tables
            .iter()
            .filter(|t| !used_tables.contains(&t.name))
            .map(|t| (t.span.clone(), t.name.clone()))
            .collect();
        for (span, name) in unused {
            self.warn(
                span,
                format!("unused table <{name}>"),
                "no relay forwards to it",
            );
        }
        let unused: Vec<_> = self
            .config
            .protocols
            .iter()
            .filter(|p| !used_protocols.contains(&p.name))
            .map(|p| (p.span.clone(), p.name.clone()))
            .collect();
        for (span, name) in unused {
            self.warn(span, format!("unused protocol {name}"), "no relay uses it");
        }
    }
}
