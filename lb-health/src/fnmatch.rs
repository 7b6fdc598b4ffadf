//! [`fnmatch`]: the `fnmatch(3)` of relayd's `check send ... expect`, with flags 0, over
//! bytes.
//!
//! relayd matches the expected pattern against the received data with
//! `fnmatch(pattern, data, 0)` (`check_tcp.c`, `check_send_expect`). With flags 0:
//!
//! - `*` matches any run of bytes (also `/`, a leading `.` and newlines), `?` any one
//!   byte;
//! - `[...]` matches one byte of a set: single bytes, ranges `a-z` (byte values, as the
//!   C locale's collation is byte order), classes `[:digit:]` (the twelve of POSIX, by
//!   the C locale: no byte above 0x7f belongs to one), `[=c=]` and `[.c.]` of one byte;
//!   `!` or `^` first negates the set, and a `]` first is a member;
//! - a backslash makes the next byte literal, outside and inside brackets;
//! - a `[` whose set is not closed by `]` is a literal `[`.
//!
//! The corner cases follow GNU libc's `posix/fnmatch_loop.c` in the C locale exactly
//! (a differential property test runs it against the C library's `fnmatch`): an
//! unknown class name (`[[:foo:]]`) or a class name longer than 255 bytes matches
//! nothing; a range whose end is missing (`[a-`) or a trailing backslash matches
//! nothing; a class name stops at a byte outside `a`..`y`, making its `[` an ordinary
//! member. relayd runs on OpenBSD, whose `fnmatch` agrees on every well-formed pattern
//! and may differ on such malformed ones. `^` negates as in glibc without
//! `POSIXLY_CORRECT` (and in OpenBSD).
//!
//! Like the C function, the matcher reads the pattern and the string up to their
//! first NUL byte. It never fails and never panics: every pattern is valid.
//!
//! The algorithm is glibc's: between two `*`, the segment of pattern is matched at the
//! first position where the rest up to the next `*` matches, and the search goes on
//! from there, so the work is bounded by about the product of the two lengths.

/// glibc's `CHAR_CLASS_MAX_LENGTH`: a class name of this length or more is ill-formed.
const MAX_CLASS_NAME: usize = 256;

/// Whether `string` matches `pattern` as `fnmatch(pattern, string, 0)` decides it in
/// the C locale, both read up to their first NUL byte.
///
/// ```
/// use lb_health::fnmatch::fnmatch;
/// assert!(fnmatch(b"220*", b"220 mx.example.com ESMTP\r\n"));
/// assert!(fnmatch(b"HTTP/1.[01] 200*", b"HTTP/1.1 200 OK\r\n"));
/// assert!(fnmatch(b"[[:digit:]][[:digit:]][[:digit:]] *", b"250 ok"));
/// assert!(fnmatch(b"a\\*b", b"a*b") && !fnmatch(b"a\\*b", b"axb"));
/// assert!(fnmatch(b"[unclosed", b"[unclosed")); // a lone `[` is literal
/// assert!(fnmatch(b"**", b"any/thing"));
/// ```
pub fn fnmatch(pattern: &[u8], string: &[u8]) -> bool {
    let pattern = Pattern(until_nul(pattern));
    pattern.fct(0, until_nul(string), 0, None)
}

/// The bytes before the first NUL: what a C function sees of a string.
fn until_nul(bytes: &[u8]) -> &[u8] {
    bytes
        .iter()
        .position(|&b| b == 0)
        .map_or(bytes, |end| &bytes[..end])
}

/// Where a segment after a `*` stopped: at the next `*`, to go on from there.
#[derive(Default)]
struct End {
    pattern: Option<usize>,
    string: usize,
}

/// A pattern read as C reads a NUL-terminated string: past the end is NUL.
struct Pattern<'a>(&'a [u8]);

/// How a bracket expression `[...]` ended for one byte of the string.
enum Bracket {
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
    fn at(&self, i: usize) -> u8 {
        self.0.get(i).copied().unwrap_or(0)
    }

    /// glibc's `FCT`: whether `s[n..]` matches the pattern from `p`. With `ends`, a `*`
    /// stops the match there with success and records where (the caller goes on).
    fn fct(&self, mut p: usize, s: &[u8], mut n: usize, mut ends: Option<&mut End>) -> bool {
        loop {
            let c = self.at(p);
            p += 1;
            match c {
                0 => return n == s.len(),
                b'?' => {
                    if n == s.len() {
                        return false;
                    }
                }
                b'\\' => {
                    let c = self.at(p);
                    p += 1;
                    if c == 0 || n == s.len() || s[n] != c {
                        return false;
                    }
                }
                b'*' => {
                    if let Some(end) = ends.as_deref_mut() {
                        end.pattern = Some(p - 1);
                        end.string = n;
                        return true;
                    }
                    let mut c = self.at(p);
                    p += 1;
                    while c == b'?' || c == b'*' {
                        if c == b'?' {
                            if n == s.len() {
                                return false;
                            }
                            n += 1;
                        }
                        c = self.at(p);
                        p += 1;
                    }
                    if c == 0 {
                        return true;
                    }
                    p -= 1;
                    // The byte the segment must start with, unless it starts with a set.
                    let first = match c {
                        b'[' => None,
                        b'\\' => Some(self.at(p + 1)),
                        _ => Some(c),
                    };
                    let mut end = End::default();
                    let found = (n..s.len()).find(|&at| {
                        first.is_none_or(|b| s[at] == b) && self.fct(p, s, at, Some(&mut end))
                    });
                    match (found, end.pattern) {
                        (Some(_), None) => return true,
                        (Some(_), Some(next)) => {
                            p = next;
                            n = end.string;
                            continue;
                        }
                        (None, _) => return false,
                    }
                }
                b'[' => {
                    if n == s.len() {
                        return false;
                    }
                    let negated = matches!(self.at(p), b'!' | b'^');
                    let start = if negated { p + 1 } else { p };
                    let verdict = match self.bracket(start, s[n]) {
                        Bracket::In(at) => match self.skip_rest(at) {
                            Some(Some(after)) => Some((!negated).then_some(after)),
                            Some(None) => None,
                            None => return false,
                        },
                        Bracket::Out(after) => Some(negated.then_some(after)),
                        Bracket::Unterminated => None,
                        Bracket::Fail => return false,
                    };
                    match verdict {
                        Some(Some(after)) => p = after,
                        Some(None) => return false,
                        // An unterminated `[` is an ordinary byte; the set's bytes follow.
                        None if s[n] == b'[' => {}
                        None => return false,
                    }
                }
                _ => {
                    if n == s.len() || s[n] != c {
                        return false;
                    }
                }
            }
            n += 1;
        }
    }

    /// Reads the set that starts at `p` (after `[` and a negation) for the byte `b`.
    fn bracket(&self, mut p: usize, b: u8) -> Bracket {
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
    fn skip_rest(&self, mut p: usize) -> Option<Option<usize>> {
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

/// Whether glibc reads `c` as part of a class name: `a` to `y`, as its test is
/// `c < 'a' || c >= 'z'` (so `z` ends a name).
fn in_class_name(c: u8) -> bool {
    (b'a'..=b'y').contains(&c)
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

/// A POSIX character class, as the C locale defines it (ASCII only).
#[derive(Clone, Copy)]
enum Class {
    Alnum,
    Alpha,
    Blank,
    Cntrl,
    Digit,
    Graph,
    Lower,
    Print,
    Punct,
    Space,
    Upper,
    Xdigit,
}

impl Class {
    fn named(name: &[u8]) -> Option<Class> {
        Some(match name {
            b"alnum" => Class::Alnum,
            b"alpha" => Class::Alpha,
            b"blank" => Class::Blank,
            b"cntrl" => Class::Cntrl,
            b"digit" => Class::Digit,
            b"graph" => Class::Graph,
            b"lower" => Class::Lower,
            b"print" => Class::Print,
            b"punct" => Class::Punct,
            b"space" => Class::Space,
            b"upper" => Class::Upper,
            b"xdigit" => Class::Xdigit,
            _ => return None,
        })
    }

    fn contains(self, b: u8) -> bool {
        match self {
            Class::Alnum => b.is_ascii_alphanumeric(),
            Class::Alpha => b.is_ascii_alphabetic(),
            Class::Blank => b == b' ' || b == b'\t',
            Class::Cntrl => b.is_ascii_control(),
            Class::Digit => b.is_ascii_digit(),
            Class::Graph => b.is_ascii_graphic(),
            Class::Lower => b.is_ascii_lowercase(),
            Class::Print => b.is_ascii_graphic() || b == b' ',
            Class::Punct => b.is_ascii_punctuation(),
            // C's isspace also counts the vertical tab, which Rust's ASCII space omits.
            Class::Space => b.is_ascii_whitespace() || b == 0x0b,
            Class::Upper => b.is_ascii_uppercase(),
            Class::Xdigit => b.is_ascii_hexdigit(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fnmatch;

    #[test]
    fn wildcards() {
        assert!(fnmatch(b"*", b""));
        assert!(fnmatch(b"a*b*c", b"a/x\ny.b.c"));
        assert!(!fnmatch(b"a*b*c", b"abcx"));
        assert!(fnmatch(b"?*?", b"ab"));
        assert!(!fnmatch(b"?*?", b"a"));
        assert!(fnmatch(b"**a", b"xxa"));
    }

    #[test]
    fn sets() {
        assert!(fnmatch(b"[a-c]", b"b") && !fnmatch(b"[a-c]", b"d"));
        assert!(fnmatch(b"[!a-c]", b"d") && fnmatch(b"[^a-c]", b"d"));
        assert!(fnmatch(b"[]]", b"]") && fnmatch(b"[!]]", b"a"));
        assert!(fnmatch(b"[a-]", b"-"));
        assert!(fnmatch(b"[[:upper:][:digit:]]", b"7"));
        assert!(!fnmatch(b"[[:foo:]]", b"f"));
        assert!(fnmatch(b"[[=a=]]", b"a") && fnmatch(b"[[.-.]]", b"-"));
        assert!(fnmatch(b"[\\]]", b"]"));
        assert!(!fnmatch(b"[[:alpha:]]", &[0xe9]));
    }

    #[test]
    fn glibc_corners() {
        // Verified against glibc 2.36's fnmatch in the C locale.
        assert!(fnmatch(b"[[", b"[["));
        assert!(!fnmatch(b"[a-", b"a"));
        assert!(!fnmatch(b"[[.a.]-]", b"a"));
        assert!(fnmatch(b"[]", b"[]"));
        assert!(!fnmatch(b"a\\", b"a\\"));
        assert!(!fnmatch(b"[!]", b"!"));
    }

    #[test]
    fn nul_ends_both() {
        assert!(fnmatch(b"ab\0cd", b"ab"));
        assert!(fnmatch(b"ab*", b"abc\0\xff"));
        assert!(!fnmatch(b"*x", b"ab\0x"));
    }
}
