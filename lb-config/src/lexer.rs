//! The lexer, as relayd's `yylex`: words, quoted strings, punctuation and newlines;
//! `#` comments; a backslash before a newline continues the line; `$name` at the start
//! of a token expands a macro (whose text is lexed again, once: no nested expansion);
//! `include "file"` reads another file in place.
//!
//! Differences from relayd: a quoted string ends at the end of its line (relayd drops
//! the newline and reads on, so a missing quote swallows the following lines; a
//! backslash before the newline still continues the string), an included relative path is taken from the including
//! file's folder (relayd takes it from its working directory), and an include nested
//! deeper than [`MAX_INCLUDE_DEPTH`] (or past [`MAX_FILES`] files) is an error instead
//! of running out of files.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::{Diagnostic, FileId, Sources, Span};
pub use crate::token::{Tok, Token};

/// Includes nested deeper than this are an error (a file including itself stops here).
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// At most this many files are read in all (a file including itself twice would
/// otherwise read 2^16 files before the depth limit stops it).
pub const MAX_FILES: usize = 256;

/// Reads an included file's bytes (the file system, or memory in tests).
pub type Reader = Box<dyn Fn(&Path) -> std::io::Result<Vec<u8>>>;

/// A macro's value and whether it came from the command line (those win over the file's).
#[derive(Clone, Debug)]
struct Macro {
    value: String,
    persist: bool,
}

/// One source being read: a file, or a macro's value (then `origin` is the `$name`).
struct Frame {
    file: FileId,
    text: Arc<str>,
    pos: usize,
    origin: Option<Span>,
    dir: PathBuf,
}

/// The token stream of a configuration: its files, macros and includes.
pub struct Lexer {
    pub(crate) sources: Sources,
    pub(crate) diagnostics: Vec<Diagnostic>,
    frames: Vec<Frame>,
    root: FileId,
    macros: HashMap<String, Macro>,
    ahead: VecDeque<Token>,
    reader: Reader,
}

fn special(c: u8) -> bool {
    matches!(
        c,
        b'{' | b'}' | b'<' | b'>' | b'=' | b',' | b'!' | b'(' | b')'
    )
}

/// relayd's `allowed_in_string`: letters, digits and punctuation but the specials and `#`.
fn in_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || (c.is_ascii_punctuation() && !special(c) && c != b'#')
}

impl Lexer {
    /// A lexer over `text`, named `name`, whose includes are read with `reader`.
    pub fn new(name: &str, text: &str, reader: Reader) -> Self {
        let mut sources = Sources::new();
        let root = sources.add(name, text);
        let dir = Path::new(name)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Lexer {
            frames: vec![Frame {
                file: root,
                text: text.into(),
                pos: 0,
                origin: None,
                dir,
            }],
            sources,
            diagnostics: Vec::new(),
            root,
            macros: HashMap::new(),
            ahead: VecDeque::new(),
            reader,
        }
    }

    /// Defines a macro from the file; one from the command line keeps its value.
    pub fn define(&mut self, name: &str, value: &str) {
        if self.macros.get(name).is_some_and(|m| m.persist) {
            return;
        }
        self.macros.insert(
            name.to_owned(),
            Macro {
                value: value.to_owned(),
                persist: false,
            },
        );
    }

    /// Defines a macro from the command line (`-D name=value`).
    pub fn define_persistent(&mut self, name: &str, value: &str) {
        self.macros.insert(
            name.to_owned(),
            Macro {
                value: value.to_owned(),
                persist: true,
            },
        );
    }

    /// The token `n` places ahead (0: the next one).
    pub fn peek_nth(&mut self, n: usize) -> &Token {
        while self.ahead.len() <= n {
            let t = self.lex();
            self.ahead.push_back(t);
        }
        &self.ahead[n]
    }

    /// The next token, without taking it.
    pub fn peek(&mut self) -> &Token {
        self.peek_nth(0)
    }

    /// Takes the next token.
    pub fn bump(&mut self) -> Token {
        self.peek();
        self.ahead.pop_front().unwrap_or_else(|| self.eof())
    }

    fn eof(&self) -> Token {
        let len = self.sources.text(self.root).len();
        Token {
            tok: Tok::Eof,
            span: Span::new(self.root, len..len),
        }
    }

    fn error(&mut self, span: Span, message: impl Into<String>, label: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::error(span, message, label));
    }

    /// Lexes one token, reading includes in place.
    fn lex(&mut self) -> Token {
        loop {
            let t = self.raw();
            if !t.is("include") || self.frames.iter().any(|f| f.origin.is_some()) {
                return t;
            }
            let path = self.raw();
            match &path.tok {
                Tok::Str(p) | Tok::Word(p) => {
                    let p = p.clone();
                    self.include(&p, t.span.to(&path.span));
                }
                _ => {
                    let what = path.describe();
                    self.error(
                        path.span.clone(),
                        format!("expected a file name after include, found {what}"),
                        "expected a quoted file name",
                    );
                    return path;
                }
            }
        }
    }

    fn include(&mut self, path: &str, span: Span) {
        let files = self.frames.iter().filter(|f| f.origin.is_none()).count();
        if files >= MAX_INCLUDE_DEPTH {
            let message = format!("include nested more than {MAX_INCLUDE_DEPTH} deep");
            self.error(span, message, "does a file include itself?");
            return;
        }
        if self.sources.len() >= MAX_FILES {
            let message = format!("more than {MAX_FILES} files included");
            self.error(span, message, "does a file include itself?");
            return;
        }
        let dir = self
            .frames
            .last()
            .map(|f| f.dir.clone())
            .unwrap_or_default();
        let full = if Path::new(path).is_absolute() {
            PathBuf::from(path)
        } else {
            dir.join(path)
        };
        match (self.reader)(&full) {
            Ok(bytes) => {
                let text: Arc<str> = String::from_utf8_lossy(&bytes).into();
                let file = self
                    .sources
                    .add(full.display().to_string(), text.to_string());
                let dir = full.parent().map(Path::to_path_buf).unwrap_or_default();
                self.frames.push(Frame {
                    file,
                    text,
                    pos: 0,
                    origin: None,
                    dir,
                });
            }
            Err(e) => {
                let message = format!("cannot include {}: {e}", full.display());
                self.error(span, message, "expected a readable file");
            }
        }
    }

    /// One token of the current frame, expanding macros and popping finished frames.
    fn raw(&mut self) -> Token {
        loop {
            let expanding = self.frames.iter().any(|f| f.origin.is_some());
            let frames = self.frames.len();
            let Some(frame) = self.frames.last_mut() else {
                return self.eof();
            };
            let bytes = frame.text.as_bytes();
            let mut pos = frame.pos;
            // Blanks and line continuations.
            loop {
                match bytes.get(pos) {
                    Some(b' ' | b'\t' | b'\r') => pos += 1,
                    Some(b'\\') if bytes.get(pos + 1) == Some(&b'\n') => pos += 2,
                    _ => break,
                }
            }
            let start = pos;
            let Some(&c) = bytes.get(pos) else {
                if frames > 1 {
                    self.frames.pop();
                    continue;
                }
                frame.pos = pos;
                return self.eof();
            };
            let file = frame.file;
            let origin = frame.origin.clone();
            let at =
                |range: std::ops::Range<usize>| origin.clone().unwrap_or(Span::new(file, range));
            if c == b'#' {
                while pos < bytes.len() && bytes[pos] != b'\n' {
                    pos += 1;
                }
                frame.pos = pos;
                continue;
            }
            if c == b'$' && !expanding {
                pos += 1;
                while pos < bytes.len()
                    && (bytes[pos].is_ascii_alphanumeric() || bytes[pos] == b'_')
                {
                    pos += 1;
                }
                frame.pos = pos;
                let name = frame.text[start + 1..pos].to_owned();
                let span = Span::new(file, start..pos);
                match self.macros.get(&name) {
                    Some(m) => {
                        let text: Arc<str> = m.value.as_str().into();
                        let dir = self
                            .frames
                            .last()
                            .map(|f| f.dir.clone())
                            .unwrap_or_default();
                        self.frames.push(Frame {
                            file,
                            text,
                            pos: 0,
                            origin: Some(span),
                            dir,
                        });
                    }
                    None if name.is_empty() => self.error(
                        span,
                        "expected a macro name after `$`",
                        "expected a name such as $ext_addr",
                    ),
                    None => {
                        let label = format!("define it with `{name} = \"value\"` before this line, or with -D {name}=value");
                        self.error(span, format!("macro '{name}' not defined"), label);
                    }
                }
                continue;
            }
            if c == b'"' || c == b'\'' {
                return self.quoted(start, c);
            }
            frame.pos = pos + 1;
            if c == b'\n' {
                // Empty, so that "found the end of the line" puts its caret there.
                return Token {
                    tok: Tok::Newline,
                    span: at(start..start),
                };
            }
            if special(c) {
                return Token {
                    tok: Tok::Punct(c as char),
                    span: at(start..pos + 1),
                };
            }
            if in_word(c) {
                let mut word = Vec::new();
                while pos < bytes.len() {
                    match bytes[pos] {
                        b'\\' if bytes.get(pos + 1) == Some(&b'\n') => pos += 2,
                        b if in_word(b) => {
                            word.push(b);
                            pos += 1;
                        }
                        _ => break,
                    }
                }
                frame.pos = pos;
                let word = String::from_utf8_lossy(&word).into_owned();
                return Token {
                    tok: Tok::Word(word),
                    span: at(start..pos),
                };
            }
            // Anything else (control characters, non-ASCII) is not part of the language.
            let ch = frame.text[start..].chars().next().unwrap_or('\u{fffd}');
            let end = start + ch.len_utf8();
            frame.pos = end;
            let span = at(start..end);
            self.error(
                span,
                format!("unexpected character {ch:?}"),
                "expected a word, a quoted string or one of { } < > = ,",
            );
        }
    }

    /// A quoted string, relayd's way: a backslash before the quote, a blank or a
    /// newline stands for it; before anything else the backslash is kept.
    fn quoted(&mut self, start: usize, quote: u8) -> Token {
        let Some(frame) = self.frames.last_mut() else {
            return self.eof();
        };
        let bytes = frame.text.as_bytes();
        let mut pos = start + 1;
        let mut value = Vec::new();
        let mut closed = false;
        while pos < bytes.len() {
            let b = bytes[pos];
            pos += 1;
            match b {
                b'\\' => match bytes.get(pos) {
                    Some(&n) if n == quote || n == b' ' || n == b'\t' => {
                        value.push(n);
                        pos += 1;
                    }
                    Some(b'\n') => pos += 1,
                    _ => value.push(b'\\'),
                },
                b if b == quote => {
                    closed = true;
                    break;
                }
                // relayd drops a newline inside quotes and goes on; a missing quote
                // then swallows the next lines. Stop at the end of the line instead.
                b'\n' => {
                    pos -= 1;
                    break;
                }
                b => value.push(b),
            }
        }
        frame.pos = pos;
        let span = frame
            .origin
            .clone()
            .unwrap_or(Span::new(frame.file, start..pos));
        if !closed {
            let q = quote as char;
            self.error(
                span.clone(),
                "unterminated quoted string",
                format!("expected a closing {q} before the end of the line"),
            );
        }
        Token {
            tok: Tok::Str(String::from_utf8_lossy(&value).into_owned()),
            span,
        }
    }
}
