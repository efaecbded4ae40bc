//! The byte-progress transport: `XMLHttpRequest` with an `xhr.upload` progress listener.
//!
//! Used only when the app asks for `progress: 'bytes'`: registering any upload listener forces a
//! CORS preflight (docs/cors.md §2), which is the price of byte-level progress.

use core::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ProgressEvent, XmlHttpRequest};

use super::wire::Wire;
use super::{js_error_text, Outcome};

/// Where an XHR request is, for aborting it: an abort may come before the request task first
/// runs, and must then keep it from being sent at all.
pub(crate) enum XhrSlot {
    NotStarted,
    Aborted,
    Running(XmlHttpRequest),
}

/// How an XHR ended, as recorded by its event handlers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Load,
    Error,
    Timeout,
    Abort,
}

/// Sends `wire` with XHR, calling `on_progress(bytes_sent)` from upload progress events.
/// `abort_slot` receives the XHR so the caller can abort it.
pub(crate) async fn send(
    wire: &Wire<'_>,
    abort_slot: &RefCell<XhrSlot>,
    on_progress: Rc<dyn Fn(u64)>,
) -> Outcome {
    if matches!(*abort_slot.borrow(), XhrSlot::Aborted) {
        return Outcome::Aborted;
    }
    let xhr = match XmlHttpRequest::new() {
        Ok(x) => x,
        Err(e) => return Outcome::Invalid(js_error_text(&e)),
    };
    if let Err(e) = xhr.open_with_async(wire.method, wire.url, true) {
        return Outcome::Invalid(js_error_text(&e));
    }
    xhr.set_with_credentials(wire.with_credentials);
    if let Some(ms) = wire.timeout_ms.filter(|ms| *ms > 0) {
        xhr.set_timeout(u32::try_from(ms).unwrap_or(u32::MAX));
    }
    for (name, value) in wire.headers {
        if let Err(e) = xhr.set_request_header(name, value) {
            return Outcome::Invalid(format!("header {name}: {}", js_error_text(&e)));
        }
    }
    let body = match wire.body_value() {
        Ok(b) => b,
        Err(msg) => return Outcome::Invalid(msg),
    };

    let ended: Rc<RefCell<Option<End>>> = Rc::new(RefCell::new(None));
    let mut resolve_slot: Option<js_sys::Function> = None;
    let promise = js_sys::Promise::new(&mut |resolve, _reject| resolve_slot = Some(resolve));
    let Some(resolve) = resolve_slot else {
        return Outcome::Invalid("could not create a promise".to_owned());
    };
    let handler = |kind: End| {
        let ended = Rc::clone(&ended);
        let resolve = resolve.clone();
        Closure::<dyn FnMut()>::new(move || {
            ended.borrow_mut().get_or_insert(kind);
            let _ = resolve.call0(&JsValue::UNDEFINED);
        })
    };
    let on_load = handler(End::Load);
    let on_error = handler(End::Error);
    let on_timeout = handler(End::Timeout);
    let on_abort = handler(End::Abort);
    xhr.set_onload(Some(on_load.as_ref().unchecked_ref()));
    xhr.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    xhr.set_ontimeout(Some(on_timeout.as_ref().unchecked_ref()));
    xhr.set_onabort(Some(on_abort.as_ref().unchecked_ref()));

    // The listener must be registered before send(): that is what asks for progress (and the preflight).
    let on_upload_progress = Closure::<dyn FnMut(ProgressEvent)>::new(move |ev: ProgressEvent| {
        if let Some(sent) = crate::engine::float::whole(ev.loaded()) {
            on_progress(sent);
        }
    });
    if let Ok(upload) = xhr.upload() {
        upload.set_onprogress(Some(on_upload_progress.as_ref().unchecked_ref()));
    }

    let sent = if let Some(form) = body.dyn_ref::<web_sys::FormData>() {
        xhr.send_with_opt_form_data(Some(form))
    } else if let Some(blob) = body.dyn_ref::<web_sys::Blob>() {
        xhr.send_with_opt_blob(Some(blob))
    } else {
        xhr.send()
    };
    if let Err(e) = sent {
        return Outcome::Invalid(js_error_text(&e));
    }
    *abort_slot.borrow_mut() = XhrSlot::Running(xhr.clone());
    let _ = JsFuture::from(promise).await;
    *abort_slot.borrow_mut() = XhrSlot::NotStarted;

    let end = *ended.borrow();
    match end {
        Some(End::Load) => {
            let status = xhr.status().unwrap_or(0);
            if status == 0 {
                return Outcome::NoResponse;
            }
            let body = xhr.response_text().ok().flatten().unwrap_or_default();
            let retry_after = xhr.get_response_header("Retry-After").ok().flatten();
            let etag = xhr.get_response_header("ETag").ok().flatten();
            Outcome::Response {
                status,
                body,
                retry_after,
                etag,
            }
        }
        Some(End::Timeout) => Outcome::Timeout,
        Some(End::Abort) => Outcome::Aborted,
        Some(End::Error) | None => Outcome::NoResponse,
    }
}
