//! Our `fnmatch` against the C library's `fnmatch(3)` with flags 0, over random
//! patterns and strings drawn from an alphabet rich in metacharacters.
//!
//! The process never calls `setlocale`, so the C library runs in the C locale, where
//! glibc compares bytes (ranges by byte value, classes ASCII only): the same rules our
//! matcher implements, so bytes 0x80 and 0xff are in the alphabet too. relayd calls
//! `fnmatch` without `setlocale` as well. Strings hold no NUL (a C string cannot).
#![cfg(unix)]

use std::ffi::CString;

use lb_health::fnmatch::fnmatch;
use proptest::prelude::*;

/// The C library's verdict.
fn c_fnmatch(pattern: &[u8], string: &[u8]) -> bool {
    let p = CString::new(pattern).expect("no NUL in the alphabet");
    let s = CString::new(string).expect("no NUL in the alphabet");
    // SAFETY: both are valid NUL-terminated strings that outlive the call; fnmatch only
    // reads them.
    unsafe { libc::fnmatch(p.as_ptr(), s.as_ptr(), 0) == 0 }
}

/// Pieces of patterns: metacharacters, a few literals and bracket fragments.
const PIECES: &[&[u8]] = &[
    b"*",
    b"?",
    b"[",
    b"]",
    b"!",
    b"^",
    b"-",
    b"\\",
    b":",
    b".",
    b"=",
    b"a",
    b"b",
    b"z",
    b"A",
    b"0",
    b"9",
    b" ",
    b"/",
    b"\x80",
    b"\xff",
    b"[:digit:]",
    b"[:alpha:]",
    b"[:upper:]",
    b"[:space:]",
    b"[:xdigit:]",
    b"[:punct:]",
    b"[:foo:]",
    b"[:",
    b":]",
    b"[.a.]",
    b"[.-.]",
    b"[=a=]",
    b"[!",
    b"[^",
    b"a-z",
    b"]-",
];

/// Bytes of strings: what the pieces can match, and a few they cannot.
const BYTES: &[u8] = b"*?[]!^-\\:.=abzA09 /\x80\xff\t";

fn pattern() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(PIECES), 0..10).prop_map(|v| v.concat())
}

fn string() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(BYTES), 0..10)
}

/// A string made from the pattern itself, so that matches are frequent.
fn near(pattern: &[u8], drop: &[bool]) -> Vec<u8> {
    pattern
        .iter()
        .zip(drop.iter().cycle())
        .filter(|(_, &d)| !d)
        .map(|(&b, _)| b)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn agrees_with_the_c_library(p in pattern(), s in string()) {
        prop_assert_eq!(fnmatch(&p, &s), c_fnmatch(&p, &s), "pattern {:?} string {:?}",
            String::from_utf8_lossy(&p), String::from_utf8_lossy(&s));
    }

    #[test]
    fn agrees_on_strings_close_to_the_pattern(
        p in pattern(),
        drop in prop::collection::vec(any::<bool>(), 1..8),
    ) {
        let s = near(&p, &drop);
        prop_assert_eq!(fnmatch(&p, &s), c_fnmatch(&p, &s), "pattern {:?} string {:?}",
            String::from_utf8_lossy(&p), String::from_utf8_lossy(&s));
    }
}

#[test]
fn corners_agree() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"[[", b"[["),
        (b"[a-", b"a"),
        (b"[]", b"[]"),
        (b"[!]", b"!"),
        (b"[]]", b"]"),
        (b"a\\", b"a\\"),
        (b"[[:alpha:]]", b"\xe9"),
        (b"[a-\xff]", b"\x80"),
        (b"[[.a.]-]", b"a"),
        (b"[[:digit:]", b"[:digit:]"),
        (b"*[[:digit:]", b"x[:digit:]"),
        (b"\\", b""),
        (b"[\\", b"\\"),
    ];
    for (p, s) in cases {
        assert_eq!(fnmatch(p, s), c_fnmatch(p, s), "{:?} {:?}", p, s);
    }
    // A class name of 256 letters is ill-formed; one of 255 is merely unknown.
    let long = |n| [b"[[:".as_slice(), &vec![b'a'; n], b":]]"].concat();
    for n in [255, 256, 300] {
        assert_eq!(fnmatch(&long(n), b"a"), c_fnmatch(&long(n), b"a"));
    }
}

#[test]
fn the_strategies_find_matches_and_mismatches() {
    // A differential test of patterns that never match would prove little.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut matched, mut total) = (0, 0);
    for _ in 0..2_000 {
        let p = pattern()
            .new_tree(&mut runner)
            .expect("a pattern")
            .current();
        let drop = prop::collection::vec(any::<bool>(), 1..8)
            .new_tree(&mut runner)
            .expect("a mask")
            .current();
        matched += usize::from(c_fnmatch(&p, &near(&p, &drop)));
        total += 1;
    }
    assert!(matched * 20 > total, "only {matched} of {total} matched");
    assert!(matched < total, "every case matched");
}
