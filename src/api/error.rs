//! `engine::UploadError` → a real JS `Error` named `UploadError` with typed fields.
//!
//! A plain `Error` with properties (not a JS class) so the same code works in the ES-module and
//! the script-tag builds; `isUploadError()` is the type guard.

use js_sys::{Error, Reflect};
use wasm_bindgen::prelude::*;

use super::set;
use crate::engine::UploadError;

/// Builds the JS `UploadError` for `err`.
pub(crate) fn to_js(err: &UploadError) -> JsValue {
    let js = Error::new(&err.message);
    js.set_name("UploadError");
    let v: JsValue = js.into();
    set(&v, "kind", &JsValue::from_str(err.kind.as_str()));
    set(&v, "attempts", &JsValue::from(err.attempts));
    let optional_str = [
        ("body", err.body.as_deref()),
        ("url", err.url.as_deref()),
        ("method", err.method.as_deref()),
        ("hint", err.hint.as_deref()),
        ("rule", err.rule.as_deref()),
        ("option", err.option.as_deref()),
        ("phase", err.phase.map(|p| p.as_str())),
    ];
    for (key, value) in optional_str {
        if let Some(value) = value {
            set(&v, key, &JsValue::from_str(value));
        }
    }
    if let Some(status) = err.status {
        set(&v, "status", &JsValue::from(status));
    }
    if let Some(chunk) = err.chunk {
        set(&v, "chunk", &JsValue::from(chunk));
    }
    v
}

/// An `invalid` error for a bad argument of an API call (not an option).
pub(crate) fn invalid(option: &str, message: &str) -> JsValue {
    to_js(&UploadError::invalid(option, message))
}

/// Whether `value` is an `UploadError` thrown or passed by this library.
#[wasm_bindgen(js_name = isUploadError, unchecked_return_type = "value is UploadError")]
pub fn is_upload_error(value: &JsValue) -> bool {
    value.is_instance_of::<Error>()
        && Reflect::get(value, &JsValue::from_str("name"))
            .ok()
            .and_then(|n| n.as_string())
            .as_deref()
            == Some("UploadError")
}
