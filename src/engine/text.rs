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

/// `n` in decimal (`n.to_string()` without `core::fmt`).
pub(crate) fn dec(mut n: u64) -> String {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        if let Some(d) = digits.get_mut(at) {
            // n % 10 < 10: the cast is exact.
            #[allow(clippy::cast_possible_truncation)]
            let digit = (n % 10) as u8;
            *d = b'0' + digit;
        }
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    digits
        .get(at..)
        .unwrap_or(&[])
        .iter()
        .map(|&d| char::from(d))
        .collect()
}

/// `parts` concatenated (`[&str]::concat`, without the generic join's unrolled copies).
pub(crate) fn cat(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        s.push_str(p);
    }
    s
}

/// `prefix` followed by `items` joined with `sep`: one loop for every list in a message
/// (`[String]::join` is one more copy of the generic join in the wasm).
pub(crate) fn joined(prefix: &str, items: &[String], sep: &str) -> String {
    let mut out = String::from(prefix);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(item);
    }
    out
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
        for n in [0, 7, 10, 99, 1_000_000, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(dec(n), n.to_string());
        }
        for items in [
            vec![],
            vec!["a".to_string()],
            vec!["a".into(), "b".into(), "".into()],
        ] {
            assert_eq!(
                joined("p: ", &items, "; "),
                ["p: ", &items.join("; ")].concat()
            );
        }
    }
}
