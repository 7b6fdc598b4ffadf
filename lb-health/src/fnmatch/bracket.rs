//! Bracket expressions, `[...]`: the set's members, ranges, classes, and what glibc
//! does with malformed ones.

use super::class::{in_class_name, Class};
use super::{Pattern, MAX_CLASS_NAME};

/// How a bracket expression `[...]` ended for one byte of the string.
pub(super) enum Bracket {
    /// The byte is in the set; the pattern goes on at this index.
    In(usize),
    /// The byte is not in the set; the pattern goes on at this index.
    Out(usize),
    /// No closing `]`: the `[` is an ordinary byte.
    Unterminated,
    /// A malformed set that matches nothing.
    Fail,
}

/// What an element of a set turned out to be, before the range check.
enum Elem {
    /// An ordinary byte (glibc's `normal_bracket`).
    Byte(u8),
    /// A class or an equivalence class that did not contain the byte; `c` already holds
    /// the next pattern byte.
    Done,
}

impl Pattern<'_> {
    /// Reads the set that starts at `p` (after `[` and a negation) for the byte `b`.
    pub(super) fn bracket(&self, mut p: usize, b: u8) -> Bracket {
        let mut c = self.at(p);
        p += 1;
        loop {
            let elem = if c == b'\\' {
                if self.at(p) == 0 {
                    return Bracket::Fail;
                }
                p += 1;
                Elem::Byte(self.at(p - 1))
            } else if c == b'[' && self.at(p) == b':' {
                match self.class_name(p) {
                    Err(Malformed::NotAName) => Elem::Byte(b'['),
                    Err(Malformed::TooLong) => return Bracket::Fail,
                    Ok((name, after)) => {
                        let Some(class) = Class::named(name) else {
                            return Bracket::Fail;
                        };
                        if class.contains(b) {
                            return Bracket::In(after);
                        }
                        p = after + 1;
                        c = self.at(after);
                        Elem::Done
                    }
                }
            } else if c == b'[' && self.at(p) == b'=' {
                let (x, close) = (self.at(p + 1), self.at(p + 2));
                if x == 0 || close != b'=' || self.at(p + 3) != b']' {
                    Elem::Byte(b'[')
                } else if b == x {
                    return Bracket::In(p + 4);
                } else {
                    c = self.at(p + 4);
                    p += 5;
                    Elem::Done
                }
            } else if c == 0 {
                return Bracket::Unterminated;
            } else if c == b'[' && self.at(p) == b'.' {
                // A collating symbol: the C locale only knows one-byte ones.
                let Some((x, after)) = self.collating_symbol(p) else {
                    return Bracket::Fail;
                };
                p = after;
                let is_range = self.at(p) == b'-' && self.at(p + 1) != 0;
                if !is_range && b == x {
                    return Bracket::In(p);
                }
                c = self.at(p);
                p += 1;
                match self.range(x, c, p, b) {
                    Range::Absent => {}
                    Range::In(at) => return Bracket::In(at),
                    Range::Out(next, at) => (c, p) = (next, at),
                    Range::Fail => return Bracket::Fail,
                }
                Elem::Done
            } else {
                Elem::Byte(c)
            };
            if let Elem::Byte(x) = elem {
                // Before a range, the first byte alone is not a member.
                let is_range = self.at(p) == b'-' && self.at(p + 1) != 0 && self.at(p + 1) != b']';
                if !is_range && x == b {
                    return Bracket::In(p);
                }
                c = self.at(p);
                p += 1;
                match self.range(x, c, p, b) {
                    Range::Absent => {}
                    Range::In(at) => return Bracket::In(at),
                    Range::Out(next, at) => (c, p) = (next, at),
                    Range::Fail => return Bracket::Fail,
                }
            }
            if c == b']' {
                return Bracket::Out(p);
            }
        }
    }

    /// After a range's first byte `low`, with `c` the next pattern byte and `p` the index
    /// after it: whether a range `low-high` follows, and whether it holds `b`.
    fn range(&self, low: u8, c: u8, mut p: usize, b: u8) -> Range {
        if c != b'-' || self.at(p) == b']' {
            return Range::Absent;
        }
        let mut high = self.at(p);
        p += 1;
        if high == b'[' && self.at(p) == b'.' {
            match self.collating_symbol(p) {
                Some((x, after)) => (high, p) = (x, after),
                None => return Range::Fail,
            }
        } else {
            if high == b'\\' {
                high = self.at(p);
                p += 1;
            }
            if high == 0 {
                return Range::Fail;
            }
        }
        // The C locale's collation sequence is the byte value.
        if low <= b && b <= high {
            return Range::In(p);
        }
        Range::Out(self.at(p), p + 1)
    }

    /// The name of `[:name:]`, `p` at its `:`; and the index after `:]`.
    fn class_name(&self, p: usize) -> Result<(&[u8], usize), Malformed> {
        let start = p + 1;
        let mut i = start;
        loop {
            if i - start == MAX_CLASS_NAME {
                return Err(Malformed::TooLong);
            }
            let c = self.at(i);
            if c == b':' && self.at(i + 1) == b']' {
                return Ok((&self.0[start..i], i + 2));
            }
            if !in_class_name(c) {
                return Err(Malformed::NotAName);
            }
            i += 1;
        }
    }

    /// The byte of `[.c.]`, `p` at its `.`; and the index after `.]`. `None` when the
    /// symbol is unterminated or not one byte long (the C locale names no others).
    fn collating_symbol(&self, p: usize) -> Option<(u8, usize)> {
        let mut i = p + 1;
        loop {
            let c = self.at(i);
            if c == b'.' && self.at(i + 1) == b']' {
                break;
            }
            if c == 0 {
                return None;
            }
            i += 1;
        }
        (i - p == 2).then(|| (self.at(p + 1), i + 2))
    }

    /// Skips the rest of a set whose member matched, from `p`: `Some(Some(after))` past
    /// its `]`, `Some(None)` when it is unterminated (the `[` is then literal), `None`
    /// when it is malformed (no match).
    pub(super) fn skip_rest(&self, mut p: usize) -> Option<Option<usize>> {
        loop {
            let c = self.at(p);
            p += 1;
            match c {
                b']' => return Some(Some(p)),
                0 => return Some(None),
                b'\\' => {
                    if self.at(p) == 0 {
                        return None;
                    }
                    p += 1;
                }
                b'[' if self.at(p) == b':' => {
                    // glibc only looks for `:]` here, stopping at a byte outside `a`..`y`.
                    let mut i = p;
                    let mut count = 0;
                    loop {
                        i += 1;
                        count += 1;
                        if count == MAX_CLASS_NAME {
                            return None;
                        }
                        if self.at(i) == b':' && self.at(i + 1) == b']' {
                            p = i + 2;
                            break;
                        }
                        if !in_class_name(self.at(i)) {
                            break;
                        }
                    }
                }
                b'[' if self.at(p) == b'=' => {
                    if self.at(p + 1) == 0 || self.at(p + 2) != b'=' || self.at(p + 3) != b']' {
                        return None;
                    }
                    p += 4;
                }
                b'[' if self.at(p) == b'.' => {
                    let mut i = p;
                    loop {
                        i += 1;
                        match self.at(i) {
                            0 => return None,
                            b'.' if self.at(i + 1) == b']' => break,
                            _ => {}
                        }
                    }
                    p = i + 2;
                }
                _ => {}
            }
        }
    }
}

/// A range after a set's byte.
enum Range {
    /// No range follows.
    Absent,
    /// The byte is in the range; the pattern goes on at this index.
    In(usize),
    /// The byte is not in the range: the next pattern byte and the index after it.
    Out(u8, usize),
    /// The range has no end: the set matches nothing.
    Fail,
}

/// Why `[:` does not start a class.
enum Malformed {
    /// A byte outside `a`..`y` before `:]`: the `[` is an ordinary member.
    NotAName,
    /// The name is too long: the set matches nothing.
    TooLong,
}
