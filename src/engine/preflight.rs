//! The CORS preflight predictor: the Fetch standard's rules as code (docs/cors.md §2–§4).
//!
//! This module owns the decision "will the browser send an `OPTIONS` before this request?" and
//! every reason why, plus the server-side fix hint for a CORS failure. It does not send
//! anything and does not know about chunks.
//!
//! A cross-origin request is preflighted when its method is not GET/HEAD/POST, when a header
//! the page set (or the body's implied `Content-Type`) is not CORS-safelisted, when the
//! safelisted values total more than 1024 bytes, when an `xhr.upload` listener is registered,
//! or when the body is a `ReadableStream`. Same-origin requests never are.
//!
//! ```
//! use resumable_wasm::engine::preflight::{predict, BodyKind, RequestShape};
//! let headers = vec![("Authorization".to_string(), "Bearer t".to_string())];
//! let p = predict(&RequestShape {
//!     page_origin: Some("https://app.example"),
//!     url: "https://up.example/upload",
//!     method: "POST",
//!     headers: &headers,
//!     body: BodyKind::FormData,
//!     upload_listener: false,
//! });
//! assert!(p.preflight);
//! assert_eq!(p.reasons, vec!["header `authorization` is not CORS-safelisted".to_string()]);
//! ```

use crate::engine::text;

/// Whether a request will be preflighted, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prediction {
    /// `true` when the browser sends an `OPTIONS` first (unless its preflight cache has the URL).
    pub preflight: bool,
    /// Human-readable causes, e.g. "header `authorization` is not CORS-safelisted".
    pub reasons: Vec<String>,
}

/// The kind of request body, which decides the implied `Content-Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyKind {
    /// No body.
    None,
    /// `FormData`: `multipart/form-data; boundary=…` (safelisted).
    FormData,
    /// A Blob with an empty type (`file.slice(a, b)`), `ArrayBuffer` or typed array: no
    /// `Content-Type`.
    UntypedBlob,
    /// A `File` or typed Blob: its type becomes the `Content-Type`.
    TypedBlob(String),
    /// A string: `text/plain;charset=UTF-8`.
    Text,
    /// `URLSearchParams`: `application/x-www-form-urlencoded;charset=UTF-8`.
    UrlEncoded,
    /// A `ReadableStream` (fetch only): always preflighted.
    Stream,
}

/// The parts of a request that decide a preflight.
#[derive(Debug, Clone)]
pub struct RequestShape<'a> {
    /// The page's origin (`https://app.example:8443`); `None` when unknown (treated as
    /// cross-origin).
    pub page_origin: Option<&'a str>,
    /// The absolute request URL.
    pub url: &'a str,
    /// The method as the page passes it to `open()`.
    pub method: &'a str,
    /// Headers set by the page.
    pub headers: &'a [(String, String)],
    /// The body.
    pub body: BodyKind,
    /// Whether a listener is registered on `xhr.upload` before `send()`.
    pub upload_listener: bool,
}

/// Predicts whether `shape` is preflighted, with every reason. Same-origin never preflights.
#[must_use]
pub fn predict(shape: &RequestShape) -> Prediction {
    let mut reasons = Vec::new();
    if let (Some(page), Some(target)) =
        (shape.page_origin.and_then(origin_of), origin_of(shape.url))
    {
        if page == target {
            return Prediction::default();
        }
    }
    let method = normalize_method(shape.method);
    if !matches!(method.as_str(), "GET" | "HEAD" | "POST") {
        reasons.push(format!(
            "method `{method}` is not CORS-safelisted (only GET, HEAD, POST)"
        ));
    }
    if shape.upload_listener {
        reasons.push("an `xhr.upload` progress listener forces a preflight".into());
    }
    if shape.body == BodyKind::Stream {
        reasons.push("a ReadableStream body forces a preflight".into());
    }
    unsafe_header_names(shape, &mut reasons);
    Prediction {
        preflight: !reasons.is_empty(),
        reasons,
    }
}

/// The CORS-unsafe request-header names of `shape` (lowercased, sorted), appending the reasons.
fn unsafe_header_names(shape: &RequestShape, reasons: &mut Vec<String>) -> Vec<String> {
    let list = header_list(shape, reasons);
    cors_unsafe_names(
        &list,
        |name| {
            shape
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        },
        reasons,
    )
}

/// The request's header list as XHR builds it: the page's headers (same name → values joined
/// with ", ", as `setRequestHeader` combines them; forbidden names dropped; values trimmed),
/// plus the `Content-Type` implied by the body when the page set none.
fn header_list(shape: &RequestShape, reasons: &mut Vec<String>) -> Vec<(String, String)> {
    let mut list: Vec<(String, String)> = Vec::new();
    for (n, v) in shape.headers {
        let name = n.to_ascii_lowercase();
        if is_forbidden(&name) {
            continue;
        }
        let value = text::trim_http_ws(v);
        if let Some(e) = list.iter_mut().find(|(k, _)| *k == name) {
            e.1.push_str(", ");
            e.1.push_str(value);
        } else {
            list.push((name, value.to_string()));
        }
    }
    if !list.iter().any(|(k, _)| k == "content-type") {
        let implied = match &shape.body {
            BodyKind::FormData => Some("multipart/form-data; boundary=----x".to_string()),
            BodyKind::TypedBlob(t) if !t.is_empty() => Some(t.clone()),
            BodyKind::Text => Some("text/plain;charset=UTF-8".to_string()),
            BodyKind::UrlEncoded => {
                Some("application/x-www-form-urlencoded;charset=UTF-8".to_string())
            }
            _ => None,
        };
        if let Some(t) = implied {
            if !safelisted("content-type", &t) {
                reasons.push(format!("the body's type `{t}` becomes a Content-Type that is not CORS-safelisted; send an untyped slice"));
            }
            list.push(("content-type".into(), t));
        }
    }
    list
}

/// Fetch's "CORS-unsafe request-header names" over a header list (one entry per header, names
/// lowercased): every non-safelisted name, and every name at all once the safelisted values
/// total more than 1024 bytes. Sorted, deduplicated. `explain(name)` says whether to add a
/// reason for a non-safelisted name (implied body types are explained by the caller).
fn cors_unsafe_names(
    list: &[(String, String)],
    explain: impl Fn(&str) -> bool,
    reasons: &mut Vec<String>,
) -> Vec<String> {
    let mut unsafe_names: Vec<String> = Vec::new();
    let mut total = 0usize;
    let mut safe = Vec::new();
    for (name, value) in list {
        if safelisted(name, value) {
            total += value.len();
            safe.push(name);
        } else {
            if explain(name) {
                reasons.push(header_reason(name, value));
            }
            insert_sorted(&mut unsafe_names, name);
        }
    }
    if total > 1024 {
        reasons.push(format!(
            "CORS-safelisted header values total {total} bytes, more than 1024"
        ));
        for name in safe {
            insert_sorted(&mut unsafe_names, name);
        }
    }
    unsafe_names
}

/// Inserts `name` into the sorted, duplicate-free `list` (a few entries; no sort machinery).
pub(crate) fn insert_sorted(list: &mut Vec<String>, name: &str) {
    let at = list.iter().position(|n| n.as_str() >= name);
    match at {
        Some(i) if list.get(i).is_some_and(|n| n == name) => {}
        Some(i) => list.insert(i, name.to_string()),
        None => list.push(name.to_string()),
    }
}

fn header_reason(name: &str, value: &str) -> String {
    let known = matches!(
        name,
        "accept" | "accept-language" | "content-language" | "content-type" | "range"
    );
    if !known {
        return format!("header `{name}` is not CORS-safelisted");
    }
    if value.len() > 128 {
        return format!("header `{name}` has a value longer than 128 bytes");
    }
    if name == "content-type" {
        return format!("header `content-type: {value}` is not CORS-safelisted (only application/x-www-form-urlencoded, multipart/form-data or text/plain, unquoted)");
    }
    format!("header `{name}: {value}` has a value that is not CORS-safelisted")
}

/// The CORS-unsafe request-header names of a request, lowercased and sorted, as the browser
/// would send them in `Access-Control-Request-Headers`.
#[must_use]
pub fn unsafe_headers(shape: &RequestShape) -> Vec<String> {
    let mut ignore = Vec::new();
    unsafe_header_names(shape, &mut ignore)
}

/// The byte offset of the first `needle` in `hay`: a plain byte loop instead of the `&str`
/// pattern searcher (which is large in wasm).
pub(crate) fn find_str(hay: &str, needle: &str) -> Option<usize> {
    let n = needle.as_bytes();
    if n.is_empty() {
        return Some(0);
    }
    hay.as_bytes().windows(n.len()).position(|w| w == n)
}

/// Fetch's method normalization: the six standard methods are uppercased, others kept.
fn normalize_method(m: &str) -> String {
    let up = m.to_ascii_uppercase();
    if matches!(
        up.as_str(),
        "DELETE" | "GET" | "HEAD" | "OPTIONS" | "POST" | "PUT"
    ) {
        up
    } else {
        m.to_string()
    }
}

/// Forbidden request-header names: script cannot set them, so they never cause a preflight.
fn is_forbidden(name: &str) -> bool {
    name.starts_with("proxy-")
        || name.starts_with("sec-")
        || matches!(
            name,
            "accept-charset"
                | "accept-encoding"
                | "access-control-request-headers"
                | "access-control-request-method"
                | "connection"
                | "content-length"
                | "cookie"
                | "cookie2"
                | "date"
                | "dnt"
                | "expect"
                | "host"
                | "keep-alive"
                | "origin"
                | "referer"
                | "set-cookie"
                | "te"
                | "trailer"
                | "transfer-encoding"
                | "upgrade"
                | "via"
        )
}

/// A CORS-unsafe request-header byte (Fetch): controls but tab, `"():<>?@[\]{}` and DEL.
fn unsafe_byte(b: u8) -> bool {
    (b < 0x20 && b != 0x09) || b"\"():<>?@[\\]{}\x7f".contains(&b)
}

/// Whether (lowercased `name`, normalized `value`) is a CORS-safelisted request header.
#[must_use]
pub fn safelisted(name: &str, value: &str) -> bool {
    if value.len() > 128 {
        return false;
    }
    match name {
        "accept" => !value.bytes().any(unsafe_byte),
        "accept-language" | "content-language" => value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" *,-.;=".contains(&b)),
        "content-type" => {
            if value.bytes().any(unsafe_byte) {
                return false;
            }
            matches!(
                mime_essence(value).as_deref(),
                Some("application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain")
            )
        }
        "range" => simple_range(value),
        _ => false,
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The essence (`type/subtype`, lowercased) of a MIME type by the strict "parse a MIME type";
/// `None` on failure. Parameters do not make the parse fail.
#[must_use]
pub fn mime_essence(value: &str) -> Option<String> {
    let v = text::trim_http_ws(value);
    let (ty, rest) = text::cut(v, b'/')?;
    let sub = text::trim_http_ws_end(text::head(rest, b';'));
    if !is_token(ty) || !is_token(sub) {
        return None;
    }
    let mut e = ty.to_ascii_lowercase();
    e.push('/');
    e.push_str(&sub.to_ascii_lowercase());
    Some(e)
}

/// Fetch's "simple range header value": `bytes=N-` or `bytes=N-M` with N ≤ M, no whitespace.
fn simple_range(v: &str) -> bool {
    let Some(rest) = v.strip_prefix("bytes=") else {
        return false;
    };
    let Some((a, b)) = text::cut(rest, b'-') else {
        return false;
    };
    let digits = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
    if a.is_empty() || !digits(a) || !digits(b) {
        return false;
    }
    if b.is_empty() {
        return true;
    }
    // Compare as decimal strings so huge numbers do not overflow.
    let a = text::trim_start_byte(a, b'0');
    let b = text::trim_start_byte(b, b'0');
    a.len() < b.len() || (a.len() == b.len() && a <= b)
}

/// The scheme (lowercased), host (as written, IPv6 literals with their brackets) and port (as
/// written, maybe empty) of an absolute http(s) URL; `None` if it is not one.
pub(crate) fn authority(url: &str) -> Option<(String, &str, &str)> {
    let at = find_str(url, "://")?;
    let scheme = url.get(..at)?.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let rest = url.get(at + 3..)?;
    let end = rest
        .bytes()
        .position(|b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let authority = rest.get(..end).unwrap_or("");
    // After the last `@` (byte search: no reverse `char` searcher in the wasm).
    let hostport = match authority.bytes().rposition(|b| b == b'@') {
        Some(i) => authority.get(i + 1..).unwrap_or(""),
        None => authority,
    };
    let (host, port) = if hostport.starts_with('[') {
        let close = hostport.bytes().position(|b| b == b']')?;
        let after = hostport.get(close + 1..)?;
        (
            hostport.get(..=close)?,
            after.strip_prefix(':').unwrap_or(after),
        )
    } else {
        text::cut(hostport, b':').unwrap_or((hostport, ""))
    };
    if host.is_empty() {
        return None;
    }
    Some((scheme, host, port))
}

/// The ASCII-serialized origin of an absolute http(s) URL (`scheme://host[:port]`, default
/// port dropped, scheme and host lowercased); `None` if it is not one.
#[must_use]
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, host, port) = authority(url)?;
    let default_port = if scheme == "http" { "80" } else { "443" };
    let mut o = scheme;
    o.push_str("://");
    o.push_str(&host.to_ascii_lowercase());
    let port = text::trim_start_byte(port, b'0');
    if !port.is_empty() && port != default_port {
        o.push(':');
        o.push_str(port);
    }
    Some(o)
}

/// The server-side fix for a CORS failure of a request of this shape (docs/cors.md §5, §7).
///
/// Credentials → the exact origin and `Access-Control-Allow-Credentials: true` (no `*`), said
/// first because a page cannot tell a missing header from a `*` or a missing credentials flag;
/// preflighted → the `OPTIONS` answer must be 2xx and list the method and each non-safelisted
/// header by name; simple → the response lacks `Access-Control-Allow-Origin` for this origin.
/// The URL appears without its query, so the hint is the same for every chunk (and is logged
/// once).
#[must_use]
pub fn cors_hint(shape: &RequestShape, with_credentials: bool) -> String {
    let origin = shape
        .page_origin
        .map_or_else(|| "the page's origin".to_string(), |o| format!("`{o}`"));
    let p = predict(shape);
    let mut h = String::new();
    if with_credentials {
        h.push_str("with credentials every response");
        if p.preflight {
            h.push_str(" (the OPTIONS preflight too)");
        }
        h.push_str(" must carry Access-Control-Allow-Origin: ");
        h.push_str(&origin);
        h.push_str(
            " exactly (not `*`) and Access-Control-Allow-Credentials: true, on error responses too",
        );
    }
    if p.preflight {
        h.push_str(if with_credentials { "; " } else { "" });
        h.push_str("the preflight OPTIONS ");
        let url = shape.url;
        h.push_str(text::head(url, b'?'));
        h.push_str(" must answer 2xx (no redirect, no auth) with Access-Control-Allow-Origin for ");
        h.push_str(&origin);
        let method = normalize_method(shape.method);
        if !matches!(method.as_str(), "GET" | "HEAD" | "POST") {
            h.push_str(", Access-Control-Allow-Methods listing ");
            h.push_str(&method);
        }
        let names = unsafe_headers(shape);
        if !names.is_empty() {
            h.push_str(", Access-Control-Allow-Headers listing ");
            h.push_str(&names.join(", "));
            h.push_str(" by name");
        }
        h.push_str("; the response itself needs Access-Control-Allow-Origin too");
    } else if !with_credentials {
        h.push_str("the response lacks Access-Control-Allow-Origin for ");
        h.push_str(&origin);
        h.push_str(" (send it on error responses too)");
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "https://app.example";
    const URL: &str = "https://up.example/upload";

    fn shape<'a>(
        method: &'a str,
        headers: &'a [(String, String)],
        body: BodyKind,
        listener: bool,
    ) -> RequestShape<'a> {
        RequestShape {
            page_origin: Some(PAGE),
            url: URL,
            method,
            headers,
            body,
            upload_listener: listener,
        }
    }

    fn h(name: &str, value: &str) -> Vec<(String, String)> {
        vec![(name.to_string(), value.to_string())]
    }

    /// (description, method, headers, body, listener, expected preflight)
    /// (description, method, headers, body, listener, expected preflight)
    type Case = (
        &'static str,
        &'static str,
        Vec<(String, String)>,
        BodyKind,
        bool,
        bool,
    );

    fn cases() -> Vec<Case> {
        let long = "a".repeat(128);
        let longer = "a".repeat(129);
        vec![
            (
                "GET no headers",
                "GET",
                vec![],
                BodyKind::None,
                false,
                false,
            ),
            ("HEAD", "HEAD", vec![], BodyKind::None, false, false),
            (
                "POST FormData",
                "POST",
                vec![],
                BodyKind::FormData,
                false,
                false,
            ),
            (
                "lowercase post is normalized",
                "post",
                vec![],
                BodyKind::FormData,
                false,
                false,
            ),
            ("PUT", "PUT", vec![], BodyKind::UntypedBlob, false, true),
            ("PATCH", "PATCH", vec![], BodyKind::UntypedBlob, false, true),
            (
                "patch lowercase is not normalized",
                "patch",
                vec![],
                BodyKind::None,
                false,
                true,
            ),
            ("DELETE", "DELETE", vec![], BodyKind::None, false, true),
            ("OPTIONS", "OPTIONS", vec![], BodyKind::None, false, true),
            (
                "untyped blob",
                "POST",
                vec![],
                BodyKind::UntypedBlob,
                false,
                false,
            ),
            (
                "typed blob video/mp4",
                "POST",
                vec![],
                BodyKind::TypedBlob("video/mp4".into()),
                false,
                true,
            ),
            (
                "typed blob text/plain",
                "POST",
                vec![],
                BodyKind::TypedBlob("text/plain".into()),
                false,
                false,
            ),
            (
                "typed blob octet-stream",
                "POST",
                vec![],
                BodyKind::TypedBlob("application/octet-stream".into()),
                false,
                true,
            ),
            ("string body", "POST", vec![], BodyKind::Text, false, false),
            (
                "URLSearchParams body",
                "POST",
                vec![],
                BodyKind::UrlEncoded,
                false,
                false,
            ),
            ("stream body", "POST", vec![], BodyKind::Stream, false, true),
            (
                "upload listener",
                "POST",
                vec![],
                BodyKind::FormData,
                true,
                true,
            ),
            (
                "upload listener on GET",
                "GET",
                vec![],
                BodyKind::None,
                true,
                true,
            ),
            (
                "Authorization",
                "GET",
                h("Authorization", "Bearer x"),
                BodyKind::None,
                false,
                true,
            ),
            (
                "X-Requested-With",
                "POST",
                h("X-Requested-With", "XMLHttpRequest"),
                BodyKind::FormData,
                false,
                true,
            ),
            (
                "Content-Range",
                "POST",
                h("Content-Range", "bytes 0-1/2"),
                BodyKind::None,
                false,
                true,
            ),
            (
                "Accept json",
                "GET",
                h("Accept", "application/json"),
                BodyKind::None,
                false,
                false,
            ),
            (
                "Accept 128 bytes",
                "GET",
                h("Accept", &long),
                BodyKind::None,
                false,
                false,
            ),
            (
                "Accept 129 bytes",
                "GET",
                h("Accept", &longer),
                BodyKind::None,
                false,
                true,
            ),
            (
                "Accept with quote",
                "GET",
                h("Accept", "a\"b"),
                BodyKind::None,
                false,
                true,
            ),
            (
                "Accept with @",
                "GET",
                h("Accept", "a@b"),
                BodyKind::None,
                false,
                true,
            ),
            (
                "Accept with tab",
                "GET",
                h("Accept", "a\tb"),
                BodyKind::None,
                false,
                false,
            ),
            (
                "Accept with DEL",
                "GET",
                h("Accept", "a\u{7f}b"),
                BodyKind::None,
                false,
                true,
            ),
            (
                "Accept-Language en-US,fr;q=0.5",
                "GET",
                h("Accept-Language", "en-US,fr;q=0.5"),
                BodyKind::None,
                false,
                false,
            ),
            (
                "Accept-Language with _",
                "GET",
                h("Accept-Language", "en_US"),
                BodyKind::None,
                false,
                true,
            ),
            (
                "Content-Language de",
                "GET",
                h("Content-Language", "de-DE"),
                BodyKind::None,
                false,
                false,
            ),
            (
                "Content-Language with /",
                "GET",
                h("Content-Language", "de/DE"),
                BodyKind::None,
                false,
                true,
            ),
            (
                "Content-Type text/plain",
                "POST",
                h("Content-Type", "text/plain"),
                BodyKind::Text,
                false,
                false,
            ),
            (
                "Content-Type with charset",
                "POST",
                h("Content-Type", "text/plain;charset=UTF-8"),
                BodyKind::Text,
                false,
                false,
            ),
            (
                "Content-Type spaces before ;",
                "POST",
                h("Content-Type", "text/plain ; charset=utf-8"),
                BodyKind::Text,
                false,
                false,
            ),
            (
                "Content-Type uppercase essence",
                "POST",
                h("Content-Type", "Text/Plain"),
                BodyKind::Text,
                false,
                false,
            ),
            (
                "Content-Type quoted param",
                "POST",
                h("Content-Type", "text/plain; charset=\"utf-8\""),
                BodyKind::Text,
                false,
                true,
            ),
            (
                "Content-Type json",
                "POST",
                h("Content-Type", "application/json"),
                BodyKind::Text,
                false,
                true,
            ),
            (
                "Content-Type octet-stream",
                "POST",
                h("Content-Type", "application/octet-stream"),
                BodyKind::UntypedBlob,
                false,
                true,
            ),
            (
                "Content-Type two values",
                "POST",
                h("Content-Type", "application/json, text/plain"),
                BodyKind::Text,
                false,
                true,
            ),
            (
                "Content-Type multipart",
                "POST",
                h("Content-Type", "multipart/form-data; boundary=x"),
                BodyKind::FormData,
                false,
                false,
            ),
            (
                "Content-Type urlencoded",
                "POST",
                h("Content-Type", "application/x-www-form-urlencoded"),
                BodyKind::UrlEncoded,
                false,
                false,
            ),
            (
                "Content-Type no subtype",
                "POST",
                h("Content-Type", "text/"),
                BodyKind::Text,
                false,
                true,
            ),
            (
                "Content-Type garbage",
                "POST",
                h("Content-Type", "text"),
                BodyKind::Text,
                false,
                true,
            ),
            (
                "Range bytes=0-",
                "GET",
                h("Range", "bytes=0-"),
                BodyKind::None,
                false,
                false,
            ),
            (
                "Range bytes=0-499",
                "GET",
                h("Range", "bytes=0-499"),
                BodyKind::None,
                false,
                false,
            ),
            (
                "Range suffix",
                "GET",
                h("Range", "bytes=-500"),
                BodyKind::None,
                false,
                true,
            ),
            (
                "Range start > end",
                "GET",
                h("Range", "bytes=500-100"),
                BodyKind::None,
                false,
                true,
            ),
            (
                "Range with space",
                "GET",
                h("Range", "bytes= 0-1"),
                BodyKind::None,
                false,
                true,
            ),
            (
                "Range two ranges",
                "GET",
                h("Range", "bytes=0-1,3-4"),
                BodyKind::None,
                false,
                true,
            ),
            (
                "Range units",
                "GET",
                h("Range", "items=0-1"),
                BodyKind::None,
                false,
                true,
            ),
            (
                "forbidden header ignored",
                "GET",
                h("Content-Length", "5"),
                BodyKind::None,
                false,
                false,
            ),
            (
                "sec- header ignored",
                "GET",
                h("Sec-Foo", "5"),
                BodyKind::None,
                false,
                false,
            ),
        ]
    }

    #[test]
    fn fetch_table() {
        let table = cases();
        assert!(table.len() >= 40);
        for (desc, method, headers, body, listener, expected) in table {
            let p = predict(&shape(method, &headers, body, listener));
            assert_eq!(p.preflight, expected, "{desc}: {:?}", p.reasons);
            assert_eq!(p.preflight, !p.reasons.is_empty(), "{desc}");
        }
    }

    #[test]
    fn limit_of_1024() {
        // XHR combines repeated names, so a repeated Accept exceeds 128 bytes by itself.
        let headers: Vec<(String, String)> = (0..2)
            .map(|_| ("Accept".to_string(), "a".repeat(100)))
            .collect();
        let p = predict(&shape("GET", &headers, BodyKind::None, false));
        assert!(p.preflight);
        assert!(p.reasons[0].contains("longer than 128"), "{:?}", p.reasons);
        // Distinct safelisted names of 128 bytes each stay under 1024 together.
        let headers: Vec<(String, String)> = ["Accept", "Accept-Language", "Content-Language"]
            .iter()
            .map(|n| (n.to_string(), "x".repeat(128)))
            .collect();
        assert!(!predict(&shape("POST", &headers, BodyKind::FormData, false)).preflight);
        // A header list with separate entries (fetch's Headers.append): 8 × 128 = 1024 is fine,
        // 1025 makes every safelisted name unsafe.
        let mut list: Vec<(String, String)> = (0..8)
            .map(|_| ("accept".to_string(), "a".repeat(128)))
            .collect();
        let mut r = Vec::new();
        assert!(cors_unsafe_names(&list, |_| true, &mut r).is_empty());
        list.push(("content-language".into(), "d".into()));
        let names = cors_unsafe_names(&list, |_| true, &mut r);
        assert_eq!(
            names,
            vec!["accept".to_string(), "content-language".to_string()]
        );
        assert!(r[0].contains("1025 bytes"), "{r:?}");
        let r = unsafe_headers(&shape("GET", &h("X-B", "1"), BodyKind::None, false));
        assert_eq!(r, vec!["x-b".to_string()]);
        let empty_ct = h("Content-Type", "");
        assert!(predict(&shape("POST", &empty_ct, BodyKind::Text, false)).preflight);
    }

    #[test]
    fn same_origin_never() {
        let headers = h("Authorization", "x");
        let s = RequestShape {
            page_origin: Some("HTTPS://Up.Example:443"),
            url: "https://up.example/upload?x=1",
            method: "PUT",
            headers: &headers,
            body: BodyKind::Stream,
            upload_listener: true,
        };
        assert!(!predict(&s).preflight);
        let s2 = RequestShape {
            page_origin: Some("https://up.example:8443"),
            ..s.clone()
        };
        assert!(predict(&s2).preflight);
        let s3 = RequestShape {
            page_origin: None,
            ..s
        };
        assert!(predict(&s3).preflight);
    }

    #[test]
    fn origins() {
        assert_eq!(origin_of("http://a.b:80/x").as_deref(), Some("http://a.b"));
        assert_eq!(
            origin_of("http://u:p@a.b:8080?x").as_deref(),
            Some("http://a.b:8080")
        );
        assert_eq!(
            origin_of("http://[::1]:3000/").as_deref(),
            Some("http://[::1]:3000")
        );
        assert_eq!(origin_of("ftp://a"), None);
        assert_eq!(origin_of("/rel"), None);
    }

    #[test]
    fn hints() {
        let none: Vec<(String, String)> = vec![];
        let simple = cors_hint(&shape("POST", &none, BodyKind::FormData, false), false);
        assert!(
            simple.contains("lacks Access-Control-Allow-Origin for `https://app.example`"),
            "{simple}"
        );
        let auth = h("Authorization", "x");
        let pre = cors_hint(&shape("PUT", &auth, BodyKind::UntypedBlob, false), true);
        assert!(pre.contains("must answer 2xx"), "{pre}");
        assert!(pre.contains("listing PUT"), "{pre}");
        assert!(pre.contains("listing authorization by name"), "{pre}");
        assert!(
            pre.contains("Access-Control-Allow-Credentials: true"),
            "{pre}"
        );
        assert!(pre.contains("not `*`"), "{pre}");
        assert!(pre.starts_with("with credentials"), "{pre}");

        let credentialed = cors_hint(&shape("POST", &none, BodyKind::FormData, false), true);
        assert!(credentialed.starts_with("with credentials every response must carry Access-Control-Allow-Origin: `https://app.example` exactly (not `*`) and Access-Control-Allow-Credentials: true"), "{credentialed}");
        assert!(!credentialed.contains("lacks"), "{credentialed}");

        // The same hint for every chunk: the probe URL's per-chunk query is left out.
        let chunk3 = RequestShape {
            url: "https://up.example/upload?resumableChunkNumber=3",
            ..shape("GET", &auth, BodyKind::None, false)
        };
        let probe = cors_hint(&chunk3, false);
        assert!(
            probe.contains("OPTIONS https://up.example/upload must"),
            "{probe}"
        );
        assert!(!probe.contains("ChunkNumber"), "{probe}");
    }

    #[test]
    fn essences() {
        assert_eq!(mime_essence(" Text/HTML ;x").as_deref(), Some("text/html"));
        assert_eq!(mime_essence("a b/c"), None);
        assert_eq!(mime_essence("/c"), None);
    }
}
