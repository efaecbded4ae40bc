//! The browser side of the CORS verdict (`engine::verdict`): one check pair is a cors-mode
//! request of the failed request's shape, then, if that got no readable answer, a `no-cors`
//! request to the failed request's URL.
//!
//! A `fetch(url, { mode: 'no-cors', cache: 'no-store', credentials: 'omit' })` resolves (with an
//! opaque response) for any HTTP answer and rejects when nothing answered: it tells whether the
//! server is reachable, never what CORS decided. The engine combines pairs into a verdict.

use std::rc::Rc;

use super::global_fetch;
use super::wire::{Wire, WireBody};
use super::{Outcome, Via};
use crate::engine::verdict::{Check, Observation};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, Request, RequestCache, RequestCredentials, RequestInit, RequestMode};

/// How long the `no-cors` request may take: a server that does not answer it within this is
/// unreachable.
const PROBE_TIMEOUT_MS: u32 = 10_000;

/// Whether `url` answers a `no-cors` GET (any HTTP status counts as reachable) within
/// [`PROBE_TIMEOUT_MS`].
pub(crate) async fn is_reachable(url: &str) -> bool {
    let Ok(controller) = web_sys::AbortController::new() else {
        return false;
    };
    let abort = controller.clone();
    let _timer = gloo_timers::callback::Timeout::new(PROBE_TIMEOUT_MS, move || abort.abort());
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

/// Runs one check pair of `check`; its cors-mode request goes through `via` (XHR with an
/// upload listener when the listener is part of the shape).
pub(crate) async fn pair(check: &Check, via: Via) -> Observation {
    // Body-less, or an empty untyped Blob for methods that take one (no chunk is re-sent).
    let empty = Blob::new().ok();
    let Some(empty) = empty else {
        return Observation::Inconclusive;
    };
    let wire = Wire {
        method: &check.method,
        url: &check.url,
        headers: &check.headers,
        body: if check.has_body() {
            WireBody::Raw
        } else {
            WireBody::None
        },
        file: &empty,
        read: None,
        start: 0,
        end: 0,
        with_credentials: check.with_credentials,
        timeout_ms: Some(check.timeout_ms),
    };
    let outcome = match via {
        Via::Fetch(controller) => super::fetch::send(&wire, &controller).await,
        Via::Xhr(slot) => super::xhr::send(&wire, &slot, Rc::new(|_| {})).await,
    };
    match outcome {
        Outcome::Response { .. } => Observation::Readable,
        Outcome::NoResponse if is_reachable(&check.reach_url).await => Observation::Blocked,
        _ => Observation::Inconclusive,
    }
}
