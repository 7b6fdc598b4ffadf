//! Blocks of option lines (`{ ... }`), and `protocol` definitions.

use super::Parser;
use crate::diag::Span;
use crate::lexer::Tok;
use crate::model::ProtocolDef;

impl Parser {
    /// Option lines after a `{` up to and with its `}`; `option` parses one line.
    pub(crate) fn block(
        &mut self,
        what: &str,
        open: &Span,
        mut option: impl FnMut(&mut Self) -> Option<()>,
    ) {
        loop {
            let starts_block = self.starts_block();
            match self.peek().tok {
                Tok::Newline => {
                    self.bump();
                }
                Tok::Punct('}') => {
                    self.bump();
                    return;
                }
                Tok::Eof => {
                    self.err(
                        open.clone(),
                        format!("{what} is not closed"),
                        "expected a `}` closing it before the end of the file",
                    );
                    return;
                }
                // A new top-level block: this one was not closed (the seed's text lost
                // its braces); say so once and let the new block be read.
                Tok::Word(_) if starts_block => {
                    let next = self.peek().clone();
                    self.err(
                        open.clone(),
                        format!("{what} is not closed"),
                        format!(
                            "expected a `}}` closing it before the {} on line {}",
                            next.describe(),
                            self.line_of(&next.span)
                        ),
                    );
                    return;
                }
                _ => match option(self) {
                    Some(()) => self.end_statement(),
                    None => self.recover(),
                },
            }
        }
    }

    /// `[tcp] protocol NAME { tcp { ... } }`; `http protocol` is an error.
    pub(crate) fn protocol(&mut self) -> Option<()> {
        let first = self.bump();
        if !first.is("protocol") {
            if !first.is("tcp") {
                let kind = first.text().unwrap_or_default().to_owned();
                self.err(
                    first.span,
                    format!("{kind} protocols are not supported"),
                    "lb relays TCP only: use `tcp protocol` or no protocol",
                );
                return None;
            }
            self.want("protocol")?;
        }
        let (name, span) = self.string("a protocol name")?;
        self.punct('{')?;
        let mut def = ProtocolDef {
            name,
            span: span.clone(),
            ..ProtocolDef::default()
        };
        let what = format!("protocol {}", def.name);
        self.block(&what, &span, |p| p.protocol_option(&mut def));
        if self.config.protocols.iter().any(|p| p.name == def.name) {
            self.err(
                span,
                format!("protocol {} defined twice", def.name),
                "expected another name",
            );
            return Some(());
        }
        self.config.protocols.push(def);
        Some(())
    }

    fn protocol_option(&mut self, def: &mut ProtocolDef) -> Option<()> {
        let t = self.peek().clone();
        if t.is("tcp") {
            self.bump();
            if self.peek().tok == Tok::Punct('{') {
                self.bump();
                loop {
                    match self.peek().tok {
                        Tok::Newline | Tok::Punct(',') => {
                            self.bump();
                        }
                        Tok::Punct('}') => {
                            self.bump();
                            return Some(());
                        }
                        Tok::Eof => return self.expected("`}` closing the tcp options"),
                        _ => self.tcp_option(def)?,
                    }
                }
            }
            return self.tcp_option(def);
        }
        if t.is("tls") || t.is("ssl") {
            self.err(
                t.span,
                "TLS options are not supported",
                "lb relays TCP and does not terminate TLS: let the backends do it",
            );
            return None;
        }
        let what = t.describe();
        self.err(
            t.span,
            format!("{what} is not supported in a protocol"),
            "expected `tcp { ... }` (lb has no HTTP or DNS filtering)",
        );
        None
    }

    fn tcp_option(&mut self, def: &mut ProtocolDef) -> Option<()> {
        let t = self.bump();
        let no = t.is("no");
        let opt = if no { self.bump() } else { t.clone() };
        let word = opt.text().unwrap_or_default().to_owned();
        match word.as_str() {
            "nodelay" => def.nodelay = Some(!no),
            "splice" => {
                def.splice = Some(!no);
                if !no
                    && matches!(self.peek().tok, Tok::Word(ref w) if w.bytes().all(|b| b.is_ascii_digit()))
                {
                    self.bump();
                }
            }
            "sack" => self.warn(
                t.span.to(&opt.span),
                "tcp sack is ignored",
                "the system's setting applies",
            ),
            "backlog" if !no => {
                def.backlog = Some(self.number("a backlog", 1, 2_147_483_647)?.0 as u32)
            }
            "socket" if !no => {
                self.want("buffer")?;
                def.socket_buffer =
                    Some(self.number("a buffer size in bytes", 1024, 1 << 30)?.0 as u32);
            }
            "ip" if !no => {
                let (_, end) = self.string("ttl or minttl")?;
                let (_, end2) = self.number("a TTL", 1, 255)?;
                let _ = end;
                self.warn(
                    t.span.to(&end2),
                    "tcp ip ttl/minttl is ignored",
                    "the system's setting applies",
                );
            }
            _ => {
                self.err(
                    opt.span.clone(),
                    format!("unknown tcp option {}", opt.describe()),
                    "expected nodelay, sack, splice, backlog N, socket buffer N or ip ttl N",
                );
                return None;
            }
        }
        Some(())
    }
}
