//! Browser I/O, and nothing else: sending one request (`fetch`, or XHR when byte progress is
//! wanted), slicing the `File`, the clock and timers, the CORS check pairs, online/offline
//! state, the protocol a request used (Resource Timing), and the record store of `persist`.
//!
//! It makes no decisions: the engine says what to send and the transport reports what happened,
//! as an [`Outcome`]. Chunk bytes never enter wasm memory: a `Blob` slice goes straight from the
//! user's `File` into the request body. With `checksum` the chunk is read once
//! (`Blob.arrayBuffer`), hashed (`hash`: CRC-32C through a fixed 64 KiB window of wasm memory,
//! SHA-256 by WebCrypto), and those very bytes are sent.

pub(crate) mod blob;
pub(crate) mod clock;
pub(crate) mod cors_check;
pub(crate) mod fetch;
pub(crate) mod hash;
pub(crate) mod store;
pub(crate) mod timing;
pub(crate) mod wire;
pub(crate) mod xhr;

use core::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use web_sys::AbortController;
use xhr::XhrSlot;

#[wasm_bindgen]
extern "C" {
    /// The global `fetch`, bound directly so the transport works in windows and workers.
    #[wasm_bindgen(js_name = fetch)]
    pub(crate) fn global_fetch(input: &web_sys::Request) -> js_sys::Promise;
}

/// How one request is sent, and so how it is aborted: `fetch` under an `AbortController`, or
/// XHR (with its upload listener) through a slot.
#[derive(Clone)]
pub(crate) enum Via {
    Fetch(AbortController),
    Xhr(Rc<RefCell<XhrSlot>>),
}

impl Via {
    /// A fresh handle: XHR when an upload listener is wanted, else `fetch` (`None` without
    /// `AbortController`).
    pub(crate) fn new(upload_listener: bool) -> Option<Via> {
        if upload_listener {
            Some(Via::Xhr(Rc::new(RefCell::new(XhrSlot::NotStarted))))
        } else {
            AbortController::new().ok().map(Via::Fetch)
        }
    }

    /// Aborts the request, whether it has started or not.
    pub(crate) fn abort(&self) {
        match self {
            Via::Fetch(controller) => controller.abort(),
            Via::Xhr(slot) => {
                let previous = core::mem::replace(&mut *slot.borrow_mut(), XhrSlot::Aborted);
                if let XhrSlot::Running(xhr) = previous {
                    let _ = xhr.abort();
                }
            }
        }
    }
}

/// What came back for one request.
pub(crate) enum Outcome {
    /// An HTTP answer the page may read (CORS passed).
    Response {
        status: u16,
        body: String,
        retry_after: Option<String>,
        /// The `ETag` header, when the page may read it (an S3 part's; CORS must expose it).
        etag: Option<String>,
    },
    /// No readable answer: a network error, which includes every CORS failure (status 0).
    NoResponse,
    /// The request's own timeout fired and the request was aborted.
    Timeout,
    /// Aborted on purpose (cancel, remove); nothing to report.
    Aborted,
    /// The request could not even be built (e.g. a header value the browser refuses).
    Invalid(String),
}

/// Renders a thrown JS value as one line of text for an error message.
pub(crate) fn js_error_text(err: &JsValue) -> String {
    if let Some(text) = err.as_string() {
        return text;
    }
    js_sys::Reflect::get(err, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| "unknown JavaScript error".to_owned())
}

/// `console.warn(text)`.
pub(crate) fn console_warn(text: &str) {
    web_sys::console::warn_1(&JsValue::from_str(text));
}

/// `console.error(text)`.
pub(crate) fn console_error(text: &str) {
    web_sys::console::error_1(&JsValue::from_str(text));
}
