//! Byte-wise splitting and trimming of `str`s around ASCII bytes. `str`'s own `char`-pattern
//! methods (`split_once('/')`, `trim_matches([..])`) each pull a pattern searcher and `memchr`
//! into the wasm; for ASCII delimiters a byte scan gives the same results.

/// `s.split_once(b as char)`: the text before and after the first `b` (ASCII).
pub(crate) fn cut(s: &str, b: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|c| c == b)?;
    // An ASCII byte is always a char boundary.
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// `s.split(b as char).next()`: the text before the first `b`, or all of `s`.
pub(crate) fn head(s: &str, b: u8) -> &str {
    cut(s, b).map_or(s, |(h, _)| h)
}

/// `s.trim_start_matches(b as char)`.
pub(crate) fn trim_start_byte(s: &str, b: u8) -> &str {
    let i = s.bytes().position(|c| c != b).unwrap_or(s.len());
    s.get(i..).unwrap_or("")
}

fn is_http_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// `s.trim_end_matches([' ', '\t', '\n', '\r'])`.
pub(crate) fn trim_http_ws_end(s: &str) -> &str {
    let end = s.bytes().rposition(|c| !is_http_ws(c)).map_or(0, |i| i + 1);
    s.get(..end).unwrap_or("")
}

/// `s.trim_matches([' ', '\t', '\n', '\r'])`.
pub(crate) fn trim_http_ws(s: &str) -> &str {
    let s = trim_http_ws_end(s);
    let start = s.bytes().position(|c| !is_http_ws(c)).unwrap_or(s.len());
    s.get(start..).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_as_the_char_pattern_methods() {
        for s in [
            "",
            "a",
            "/",
            "a/b",
            "/a/",
            "a//b",
            " \t a b \r\n",
            "   ",
            "ü/é;x",
            "00120",
            "0",
        ] {
            assert_eq!(cut(s, b'/'), s.split_once('/'), "{s:?}");
            assert_eq!(head(s, b'/'), s.split('/').next().unwrap_or(""), "{s:?}");
            assert_eq!(trim_start_byte(s, b'0'), s.trim_start_matches('0'), "{s:?}");
            let ws = [' ', '\t', '\n', '\r'];
            assert_eq!(trim_http_ws(s), s.trim_matches(ws), "{s:?}");
            assert_eq!(trim_http_ws_end(s), s.trim_end_matches(ws), "{s:?}");
        }
    }
}
