//! The parser: relayd.conf's grammar (as far as TCP relays, tables and checks go) by
//! recursive descent over the [lexer](crate::lexer)'s tokens, into the [model](crate::model).
//!
//! Every error is recorded and parsing goes on at the next line (or after the block a
//! broken line opened), so one run reports all the errors of a file. Every loop takes at
//! least one token per turn, so no input makes it loop.

mod block;
mod globals;
mod relay;
mod table;

use crate::diag::{Diagnostic, Span};
use crate::lexer::{Lexer, Tok, Token};
use crate::model::{Config, Globals};

/// Halon SR top-level blocks other than `load-balancer`: skipped with one warning.
const HALON_BLOCKS: [&str; 8] = [
    "interface",
    "system",
    "firewall",
    "routing",
    "network",
    "cluster",
    "vpn",
    "services",
];

pub(crate) struct Parser {
    pub(crate) lx: Lexer,
    pub(crate) config: Config,
    /// The skipped Halon blocks' warning (index into the diagnostics) and names.
    halon: Option<(usize, Vec<String>)>,
    timeout_span: Option<Span>,
}

impl Parser {
    pub(crate) fn new(lx: Lexer) -> Self {
        Parser {
            lx,
            config: Config {
                globals: Globals::default(),
                tables: Vec::new(),
                protocols: Vec::new(),
                relays: Vec::new(),
            },
            halon: None,
            timeout_span: None,
        }
    }

    /// Parses the whole input.
    pub(crate) fn parse(mut self) -> (Config, Lexer) {
        self.statements(None);
        self.finish();
        if let Some((i, names)) = self.halon.take() {
            if let Some(d) = self.lx.diagnostics.get_mut(i) {
                d.notes.push(format!("skipped: {}", names.join(", ")));
            }
        }
        (self.config, self.lx)
    }

    // --- helpers ---------------------------------------------------------------

    pub(crate) fn peek(&mut self) -> &Token {
        self.lx.peek()
    }

    pub(crate) fn bump(&mut self) -> Token {
        self.lx.bump()
    }

    pub(crate) fn err(&mut self, span: Span, message: impl Into<String>, label: impl Into<String>) {
        self.lx
            .diagnostics
            .push(Diagnostic::error(span, message, label));
    }

    pub(crate) fn warn(
        &mut self,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) {
        self.lx
            .diagnostics
            .push(Diagnostic::warning(span, message, label));
    }

    /// An error at the next token: "expected X, found Y". Takes nothing.
    pub(crate) fn expected<T>(&mut self, what: &str) -> Option<T> {
        let t = self.peek().clone();
        self.err(
            t.span.clone(),
            format!("expected {what}, found {}", t.describe()),
            format!("expected {what}"),
        );
        None
    }

    /// Takes the word `kw` if it is next.
    pub(crate) fn eat(&mut self, kw: &str) -> bool {
        if self.peek().is(kw) {
            self.bump();
            true
        } else {
            false
        }
    }

    /// Takes the word `kw` or reports what was expected.
    pub(crate) fn want(&mut self, kw: &str) -> Option<Span> {
        if self.peek().is(kw) {
            Some(self.bump().span)
        } else {
            self.expected(&format!("`{kw}`"))
        }
    }

    pub(crate) fn punct(&mut self, c: char) -> Option<Span> {
        if self.peek().tok == Tok::Punct(c) {
            Some(self.bump().span)
        } else {
            self.expected(&format!("`{c}`"))
        }
    }

    /// A word or a quoted string.
    pub(crate) fn string(&mut self, what: &str) -> Option<(String, Span)> {
        match &self.peek().tok {
            Tok::Word(s) | Tok::Str(s) => {
                let s = s.clone();
                Some((s, self.bump().span))
            }
            _ => self.expected(what),
        }
    }

    /// A decimal number in `min..=max`.
    pub(crate) fn number(&mut self, what: &str, min: u64, max: u64) -> Option<(u64, Span)> {
        let t = self.peek().clone();
        let Tok::Word(w) = &t.tok else {
            return self.expected(what);
        };
        if w.is_empty() || !w.bytes().all(|b| b.is_ascii_digit()) {
            return self.expected(what);
        }
        self.bump();
        match w.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Some((n, t.span)),
            _ => {
                let message = format!("{what}: {w} is out of range");
                self.err(t.span, message, format!("expected {min} to {max}"));
                None
            }
        }
    }

    /// Whether the next tokens open a top-level block (`relay`, `redirect`, `table`, or
    /// `protocol NAME {`, as `protocol NAME` alone is a relay option).
    pub(crate) fn starts_block(&mut self) -> bool {
        let t = self.peek().clone();
        if t.is("relay") || t.is("redirect") || t.is("table") {
            return true;
        }
        t.is("protocol") && self.lx.peek_nth(2).tok == Tok::Punct('{')
    }

    /// The number of errors so far.
    pub(crate) fn error_count(&self) -> usize {
        self.lx.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// The line number (from 1) of the start of `span`.
    pub(crate) fn line_of(&self, span: &Span) -> usize {
        let text = self.lx.sources.text(span.file);
        let end = span.range.start.min(text.len());
        text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    pub(crate) fn at_end(&mut self) -> bool {
        matches!(self.peek().tok, Tok::Newline | Tok::Punct('}') | Tok::Eof)
    }

    /// After a statement: the end of the line (or of the block, or of the input).
    pub(crate) fn end_statement(&mut self) {
        match self.peek().tok {
            Tok::Newline => {
                self.bump();
            }
            Tok::Punct('}') | Tok::Eof => {}
            _ => {
                let t = self.peek().clone();
                self.err(
                    t.span.clone(),
                    format!("unexpected {}", t.describe()),
                    "expected the end of the line",
                );
                self.recover();
            }
        }
    }

    /// Skips the rest of a broken statement: to the end of the line (taken), a `}` (left
    /// for the block) or the end; a `{` on the way skips its whole block.
    pub(crate) fn recover(&mut self) {
        loop {
            match self.peek().tok {
                Tok::Newline => {
                    self.bump();
                    return;
                }
                Tok::Punct('}') | Tok::Eof => return,
                Tok::Punct('{') => {
                    self.bump();
                    self.skip_block();
                }
                _ => {
                    self.bump();
                }
            }
        }
    }

    /// Skips to the `}` closing a block whose `{` was just taken (nested blocks too).
    pub(crate) fn skip_block(&mut self) {
        let mut depth = 1usize;
        loop {
            match self.bump().tok {
                Tok::Punct('{') => depth += 1,
                Tok::Punct('}') => {
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                Tok::Eof => return,
                _ => {}
            }
        }
    }

    // --- top level -------------------------------------------------------------

    /// Statements until the end of the input, or until the `}` closing a
    /// `load-balancer` block opened at `open`.
    fn statements(&mut self, open: Option<&Span>) {
        loop {
            let t = self.peek().clone();
            match &t.tok {
                Tok::Eof => {
                    if let Some(open) = open {
                        self.err(
                            open.clone(),
                            "this load-balancer block is not closed",
                            "expected a `}` closing it before the end of the file",
                        );
                    }
                    return;
                }
                Tok::Newline => {
                    self.bump();
                }
                Tok::Punct('}') if open.is_some() => {
                    self.bump();
                    return;
                }
                Tok::Word(w) => {
                    let ok = self.statement(w, &t);
                    match ok {
                        // A block that was not closed ends at the next block's keyword.
                        Some(()) if self.starts_block() => {}
                        Some(()) => self.end_statement(),
                        None => self.recover(),
                    }
                }
                _ => {
                    self.err(t.span.clone(), format!("unexpected {}", t.describe()), "expected a directive (table, relay, redirect, protocol, interval, timeout, log) or a macro definition");
                    self.bump();
                    self.recover();
                }
            }
        }
    }

    fn statement(&mut self, word: &str, t: &Token) -> Option<()> {
        if self.lx.peek_nth(1).tok == Tok::Punct('=') {
            return self.macro_definition();
        }
        match word {
            "interval" | "timeout" | "log" | "prefork" => self.global(word),
            "table" => self.table(),
            "relay" | "redirect" => self.relay(),
            "protocol" | "tcp" | "http" | "dns" => self.protocol(),
            "load-balancer" => {
                self.bump();
                self.punct('{')?;
                self.statements(Some(&t.span));
                Some(())
            }
            "router" => {
                self.err(
                    t.span.clone(),
                    "`router` is not supported",
                    "lb balances connections; it does not change routes",
                );
                None
            }
            w if HALON_BLOCKS.contains(&w) => self.halon_block(),
            w => {
                let message = format!("unknown directive `{w}`");
                self.err(t.span.clone(), message, "expected table, relay, redirect, protocol, interval, timeout, log, prefork, include or `name = \"value\"`");
                None
            }
        }
    }

    fn macro_definition(&mut self) -> Option<()> {
        let name = self.bump();
        self.bump(); // `=`
        let (value, _) = self.string("a value (\"text\")")?;
        let Tok::Word(n) = &name.tok else { return None };
        if n.bytes().any(|b| !(b.is_ascii_alphanumeric() || b == b'_')) {
            self.err(
                name.span,
                format!("invalid macro name `{n}`"),
                "expected letters, digits and `_` only",
            );
            return None;
        }
        self.lx.define(n, &value);
        Some(())
    }

    /// Checks that need the whole file.
    fn finish(&mut self) {
        let g = &self.config.globals;
        if g.timeout >= g.interval {
            let span = self.timeout_span.clone().unwrap_or_default();
            let message = format!(
                "global timeout ({} ms) exceeds the interval ({} s)",
                g.timeout.as_millis(),
                g.interval.as_secs()
            );
            self.err(
                span,
                message,
                "expected a timeout shorter than the interval",
            );
        }
        self.check_references();
    }
}
