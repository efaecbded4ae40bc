//! What the page can learn about the connection a request used, from Resource Timing.
//!
//! `nextHopProtocol` of a request's entry is the ALPN ID of its connection (`"h2"`,
//! `"http/1.1"`). Browsers show it for same-origin requests and for cross-origin ones whose
//! response allows the page's origin in `Timing-Allow-Origin`; otherwise it is `""`. The entry
//! appears once the response has ended, and not at all once the page's resource timing buffer
//! is full (250 entries unless the page raised it). Node's `fetch` adds entries too, without
//! `nextHopProtocol` (`undefined`): there the protocol stays unknown.

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    // `performance` may be missing (then this throws, and nothing is learned).
    #[wasm_bindgen(catch, js_namespace = performance, js_name = getEntriesByName)]
    fn entries_by_name(name: &str, kind: &str) -> Result<js_sys::Array, JsValue>;
}

/// The `nextHopProtocol` of the newest resource entry for `url`; `None` when there is none
/// yet or the browser hides it.
pub(crate) fn next_hop_protocol(url: &str) -> Option<String> {
    // Entries are named by the URL as the browser serialised it: the target is (the API
    // layer resolves it with the browser's URL parser); a URL written otherwise finds nothing.
    let entries = entries_by_name(url, "resource").ok()?;
    let newest = entries.get(entries.length().checked_sub(1)?);
    js_sys::Reflect::get(&newest, &JsValue::from_str("nextHopProtocol"))
        .ok()?
        .as_string()
}
