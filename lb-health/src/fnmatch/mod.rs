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

mod bracket;
mod class;

use bracket::Bracket;

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
