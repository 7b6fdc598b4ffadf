//! Output helpers: aligned columns, time stamps, and the demonstration's list of
//! expectations with their verdicts.

use std::fmt::Display;

use tokio::time::Instant;

/// Left-aligned columns, sized to their widest cell.
pub struct Table<const N: usize> {
    header: [String; N],
    rows: Vec<[String; N]>,
}

impl<const N: usize> Table<N> {
    /// A table with these column titles.
    pub fn new(header: [&str; N]) -> Self {
        Table {
            header: header.map(str::to_owned),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: [String; N]) {
        self.rows.push(cells);
    }

    /// Prints the table, each line after `indent`.
    pub fn print(&self, indent: &str) {
        let mut widths = [0; N];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::from(indent);
            for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
                if i + 1 == N {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}  "));
                }
            }
            println!("{}", line.trim_end());
        }
    }
}

/// Prints `text` wrapped at 92 columns, each line after `indent`.
pub fn print_wrapped(indent: &str, text: &str) {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.len() + line.len() + 1 + word.len() > 92 {
            println!("{indent}{line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        println!("{indent}{line}");
    }
}

/// Seconds from `start` to `at`, as `12.345 s`.
pub fn since(start: Instant, at: Instant) -> String {
    format!(
        "{:7.3} s",
        at.saturating_duration_since(start).as_secs_f64()
    )
}

/// The demonstration's expectations: each is printed with its verdict as it is
/// checked, and the run fails if any did not hold.
#[derive(Default)]
pub struct Expectations {
    met: usize,
    failed: Vec<String>,
}

impl Expectations {
    /// Records and prints one expectation.
    pub fn check(&mut self, holds: bool, what: impl Display) {
        let what = what.to_string();
        println!("  {} {what}", if holds { "ok    " } else { "FAILED" });
        if holds {
            self.met += 1;
        } else {
            self.failed.push(what);
        }
    }

    /// Whether every expectation held.
    pub fn all_met(&self) -> bool {
        self.failed.is_empty()
    }

    /// Prints the verdict.
    pub fn print_summary(&self) {
        let total = self.met + self.failed.len();
        if self.all_met() {
            println!("Demonstration passed: {total} of {total} expectations met.");
        } else {
            println!(
                "Demonstration FAILED: {} of {total} expectations not met:",
                self.failed.len()
            );
            for f in &self.failed {
                println!("  - {f}");
            }
        }
    }
}
