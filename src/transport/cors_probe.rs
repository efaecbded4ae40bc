//! Telling a CORS failure from a network failure, as far as a page can (docs/cors.md §6).
//!
//! Both look the same to script (status 0). After such a failure on a cross-origin request, one
//! `fetch(target, { mode: 'no-cors', cache: 'no-store', credentials: 'omit' })` tells whether the
//! server answers at all: an opaque response means it is reachable, so the failure was CORS;
//! a rejection means it is unreachable. It is a heuristic, and the error message says so.

use super::global_fetch;
use js_sys::futures::JsFuture;
use web_sys::{Request, RequestCache, RequestCredentials, RequestInit, RequestMode};

/// How long the probe may take: a server that does not answer it within this is unreachable.
const PROBE_TIMEOUT_MS: u32 = 10_000;

/// Whether `url` answers a `no-cors` GET (any HTTP status counts as reachable) within
/// [`PROBE_TIMEOUT_MS`].
pub(crate) async fn is_reachable(url: &str) -> bool {
    let Ok(controller) = web_sys::AbortController::new() else {
        return false;
    };
    let abort = controller.clone();
    let _timer = crate::transport::clock::Timeout::new(PROBE_TIMEOUT_MS, move || abort.abort());
    let init = RequestInit::new();
    init.set_signal(Some(&controller.signal()));
    init.set_method("GET");
    init.set_mode(RequestMode::NoCors);
    init.set_cache(RequestCache::NoStore);
    init.set_credentials(RequestCredentials::Omit);
    let Ok(request) = Request::new_with_str_and_init(url, &init) else {
        return false;
    };
    JsFuture::from(global_fetch(&request)).await.is_ok()
}
