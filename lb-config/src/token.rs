//! Tokens: what the [lexer](crate::lexer) yields.

use crate::diag::Span;

/// What a token is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    /// An unquoted word: a keyword, a name, a number or an address.
    Word(String),
    /// A quoted string (never a keyword).
    Str(String),
    /// The end of a line: statements end here.
    Newline,
    /// One of `{ } < > = , ! ( )`.
    Punct(char),
    /// The end of the input.
    Eof,
}

/// A token and where it was written.
#[derive(Clone, Debug)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// Where: for text from a macro, the `$name` that expanded it.
    pub span: Span,
}

impl Token {
    /// The text of a word or a string.
    pub fn text(&self) -> Option<&str> {
        match &self.tok {
            Tok::Word(s) | Tok::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Whether this is the unquoted word `kw`.
    pub fn is(&self, kw: &str) -> bool {
        matches!(&self.tok, Tok::Word(w) if w == kw)
    }

    /// How the token reads in a message.
    pub fn describe(&self) -> String {
        match &self.tok {
            Tok::Word(w) => format!("`{w}`"),
            Tok::Str(s) => format!("\"{s}\""),
            Tok::Newline => "the end of the line".into(),
            Tok::Punct(c) => format!("`{c}`"),
            Tok::Eof => "the end of the file".into(),
        }
    }
}
