//! Diagnostics: errors and warnings with a file, a position and what was expected,
//! rendered by `codespan-reporting` as the line of the file with a caret under the place.

use std::fmt;
use std::ops::Range;

use codespan_reporting::diagnostic::{Diagnostic as Rendered, Label};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, Config as TermConfig};

/// Which file a [`Span`] points into: an index into [`Sources`].
pub type FileId = usize;

/// A place in one of the configuration's files: a byte range of its text.
///
/// Text that came from a macro (`$name`) is reported at the `$name` reference, so a
/// span always points into a file the user wrote.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    /// The file.
    pub file: FileId,
    /// Byte offsets into the file's text.
    pub range: Range<usize>,
}

impl Span {
    /// A span of `range` in `file`.
    pub fn new(file: FileId, range: Range<usize>) -> Self {
        Span { file, range }
    }

    /// The span from the start of `self` to the end of `other` (same file), or `self`.
    pub fn to(&self, other: &Span) -> Span {
        if other.file == self.file && other.range.end >= self.range.start {
            Span::new(self.file, self.range.start..other.range.end)
        } else {
            self.clone()
        }
    }
}

/// How serious a [`Diagnostic`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The configuration cannot be used.
    Error,
    /// The configuration works, but a directive does less than in relayd (or nothing).
    Warning,
}

/// One error or warning: where, what, and what was expected instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Where in the input.
    pub span: Span,
    /// What is wrong, one line.
    pub message: String,
    /// What was expected, or what happens instead (shown under the caret).
    pub label: String,
    /// Further explanation lines.
    pub notes: Vec<String>,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn error(span: Span, message: impl Into<String>, label: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            span,
            message: message.into(),
            label: label.into(),
            notes: Vec::new(),
        }
    }

    /// A warning at `span`.
    pub fn warning(span: Span, message: impl Into<String>, label: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(span, message, label)
        }
    }

    /// Adds a note line.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The text of every file read (the main file and its includes), for rendering.
#[derive(Clone, Default)]
pub struct Sources {
    files: SimpleFiles<String, String>,
    lens: Vec<usize>,
}

impl Sources {
    /// No files yet.
    pub fn new() -> Self {
        Sources::default()
    }

    /// Adds a file and returns its id.
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> FileId {
        let text = text.into();
        self.lens.push(text.len());
        self.files.add(name.into(), text)
    }

    /// The text of a file (empty for an unknown id).
    pub fn text(&self, file: FileId) -> &str {
        self.files
            .get(file)
            .map(|f| f.source().as_str())
            .unwrap_or("")
    }

    /// The name of a file (empty for an unknown id).
    pub fn name(&self, file: FileId) -> &str {
        self.files
            .get(file)
            .map(|f| f.name().as_str())
            .unwrap_or("")
    }

    /// How many files.
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// Whether no file was read.
    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// Whether `span` lies inside its file's text (on character boundaries).
    pub fn contains(&self, span: &Span) -> bool {
        let text = self.text(span.file);
        span.file < self.len()
            && span.range.start <= span.range.end
            && span.range.end <= text.len()
            && text.is_char_boundary(span.range.start)
            && text.is_char_boundary(span.range.end)
    }

    /// Renders one diagnostic as plain text: the message, `file:line:column`, the line
    /// with a caret under the place, the label and the notes.
    pub fn render(&self, diagnostic: &Diagnostic) -> String {
        let rendered = match diagnostic.severity {
            Severity::Error => Rendered::error(),
            Severity::Warning => Rendered::warning(),
        }
        .with_message(&diagnostic.message)
        .with_labels(vec![Label::primary(
            diagnostic.span.file,
            diagnostic.span.range.clone(),
        )
        .with_message(&diagnostic.label)])
        .with_notes(diagnostic.notes.clone());
        let config = TermConfig::default();
        term::emit_into_string(&config, &self.files, &rendered).unwrap_or_else(|_| {
            // Only a span outside its file gets here; say so rather than lose the message.
            format!(
                "{}: {} ({}, bytes {:?})\n",
                diagnostic.severity,
                diagnostic.message,
                self.name(diagnostic.span.file),
                diagnostic.span.range
            )
        })
    }
}

impl fmt::Debug for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sources")
            .field("files", &self.lens.len())
            .finish()
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// Every diagnostic of a load, with the files they point into.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The files read.
    pub sources: Sources,
    /// Errors and warnings, in the order found.
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }

    /// Every diagnostic rendered, in order, followed by a count of the errors.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for d in &self.diagnostics {
            out.push_str(&self.sources.render(d));
        }
        let errors = self.errors().count();
        if errors > 0 {
            out.push_str(&format!(
                "{errors} error{}\n",
                if errors == 1 { "" } else { "s" }
            ));
        }
        out
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for Report {}
