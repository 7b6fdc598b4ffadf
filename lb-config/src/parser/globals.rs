//! Global settings (`interval`, `timeout`, `log`, `prefork`) and Halon SR blocks.

use std::time::Duration;

use super::Parser;
use crate::lexer::Tok;

impl Parser {
    pub(super) fn global(&mut self, word: &str) -> Option<()> {
        let kw = self.bump();
        match word {
            "interval" => {
                let (n, _) = self.number("an interval in seconds", 1, 86_400)?;
                self.config.globals.interval = Duration::from_secs(n);
            }
            "timeout" => {
                let (n, span) = self.number("a timeout in milliseconds", 1, 3_600_000)?;
                self.config.globals.timeout = Duration::from_millis(n);
                self.timeout_span = Some(kw.span.to(&span));
            }
            "log" => {
                let mut state = false;
                let mut connections = false;
                if self.eat("state") {
                    self.want("changes")?;
                    state = true;
                } else if self.eat("host") {
                    self.want("checks")?;
                    state = true;
                } else if self.eat("connection") {
                    self.eat("errors");
                    connections = true;
                } else if self.eat("updates") {
                    state = true;
                } else if self.eat("all") {
                    state = true;
                    connections = true;
                } else {
                    return self.expected("`state changes`, `host checks` or `connection`");
                }
                let g = &mut self.config.globals;
                g.log_state_changes |= state;
                g.log_connections |= connections;
            }
            _ => {
                let (_, span) = self.number("a number of processes", 1, 32)?;
                self.warn(
                    kw.span.to(&span),
                    "prefork has no effect",
                    "accepted and ignored",
                );
                if let Some(d) = self.lx.diagnostics.last_mut() {
                    d.notes.push(
                        "lb serves every relay from one process on a multi-threaded runtime".into(),
                    );
                }
            }
        }
        Some(())
    }

    pub(super) fn halon_block(&mut self) -> Option<()> {
        let first = self.bump();
        let name = first.text().unwrap_or_default().to_owned();
        while !self.at_end() && self.peek().tok != Tok::Punct('{') {
            self.bump();
        }
        self.punct('{')?;
        match &mut self.halon {
            Some((_, names)) => names.push(name.clone()),
            None => {
                self.warn(
                    first.span.clone(),
                    format!("Halon block `{name}` skipped"),
                    "only the load-balancer block is read",
                );
                self.halon = Some((self.lx.diagnostics.len() - 1, vec![name]));
            }
        }
        // Skip the block, but read a load-balancer block nested in it.
        let mut depth = 1usize;
        while depth > 0 {
            let t = self.peek().clone();
            match &t.tok {
                Tok::Eof => {
                    self.err(
                        first.span.clone(),
                        format!(
                            "the `{}` block is not closed",
                            first.text().unwrap_or_default()
                        ),
                        "expected a `}` closing it before the end of the file",
                    );
                    return Some(());
                }
                Tok::Word(w)
                    if w == "load-balancer" && self.lx.peek_nth(1).tok == Tok::Punct('{') =>
                {
                    self.bump();
                    self.bump();
                    self.statements(Some(&t.span));
                }
                Tok::Punct('{') => {
                    self.bump();
                    depth += 1;
                }
                Tok::Punct('}') => {
                    self.bump();
                    depth -= 1;
                }
                _ => {
                    self.bump();
                }
            }
        }
        Some(())
    }
}
