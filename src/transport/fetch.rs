//! The default transport: `fetch()` with an `AbortController` for cancel and timeout.
//! `fetch` is bound as a global so it works in windows and workers alike.

use core::cell::Cell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;

use super::global_fetch;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    AbortController, AbortSignal, Headers, Request, RequestCache, RequestCredentials, RequestInit,
    Response,
};

use super::wire::{Wire, WireBody};
use super::{js_error_text, Outcome};

/// The `Request` of `wire`, aborted by `signal` when given: what [`send`] sends, and what a
/// `background` job sends in its place (no signal: the browser schedules it).
pub(crate) fn request(wire: &Wire<'_>, signal: Option<&AbortSignal>) -> Result<Request, String> {
    let init = RequestInit::new();
    init.set_method(wire.method);
    init.set_signal(signal);
    if wire.with_credentials {
        init.set_credentials(RequestCredentials::Include);
    }
    if matches!(wire.body, WireBody::None) {
        // A probe's answer must come from the server: a cached 200 would skip a chunk the
        // server no longer has. (The cache mode does not affect CORS.)
        init.set_cache(RequestCache::NoStore);
    }
    let headers = Headers::new().map_err(|e| js_error_text(&e))?;
    for (name, value) in wire.headers {
        if let Err(e) = headers.append(name, value) {
            return Err(format!("header {name}: {}", js_error_text(&e)));
        }
    }
    init.set_headers(&headers);
    let body = wire.body_value()?;
    if !body.is_undefined() {
        init.set_body(&body);
    }
    Request::new_with_str_and_init(wire.url, &init).map_err(|e| js_error_text(&e))
}

/// Sends `wire` with `fetch`. `controller` aborts it (cancel); a timeout aborts it too and is
/// reported as [`Outcome::Timeout`].
pub(crate) async fn send(wire: &Wire<'_>, controller: &AbortController) -> Outcome {
    let request = match request(wire, Some(&controller.signal())) {
        Ok(r) => r,
        Err(msg) => return Outcome::Invalid(msg),
    };

    let timed_out = Rc::new(Cell::new(false));
    let _timer = wire.timeout_ms.filter(|ms| *ms > 0).map(|ms| {
        let flag = Rc::clone(&timed_out);
        let controller = controller.clone();
        gloo_timers::callback::Timeout::new(super::clock::timer_ms(ms), move || {
            flag.set(true);
            controller.abort();
        })
    });

    let outcome = async {
        let response: Response = JsFuture::from(global_fetch(&request)).await?.dyn_into()?;
        let status = response.status();
        let retry_after = response.headers().get("Retry-After").ok().flatten();
        let etag = response.headers().get("ETag").ok().flatten();
        let body = JsFuture::from(response.text()?)
            .await?
            .as_string()
            .unwrap_or_default();
        Ok::<_, JsValue>(Outcome::Response {
            status,
            body,
            retry_after,
            etag,
        })
    }
    .await;

    match outcome {
        Ok(done) => done,
        Err(_) if timed_out.get() => Outcome::Timeout,
        Err(_) if controller.signal().aborted() => Outcome::Aborted,
        Err(_) => Outcome::NoResponse,
    }
}
