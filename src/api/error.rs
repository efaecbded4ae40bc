//! `engine::UploadError` → a real JS `Error` named `UploadError` with typed fields.
//!
//! A plain `Error` with properties (not a JS class) so the same code works in the ES-module and
//! the script-tag builds; `isUploadError()` is the type guard.

use js_sys::{Error, Object, Reflect};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::engine::UploadError;

/// Builds the JS `UploadError` for `err`.
pub(crate) fn to_js(err: &UploadError) -> JsValue {
    /// The fields `UploadError` adds to `Error` (absent ones are left out).
    #[derive(Serialize)]
    struct Fields<'a> {
        kind: &'static str,
        attempts: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        body: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        url: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        method: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        hint: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        rule: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        option: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        phase: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        #[serde(skip_serializing_if = "Option::is_none")]
        chunk: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        algorithm: Option<&'static str>,
    }
    let fields = Fields {
        kind: err.kind.as_str(),
        attempts: err.attempts,
        body: err.body.as_deref(),
        url: err.url.as_deref(),
        method: err.method.as_deref(),
        hint: err.hint.as_deref(),
        rule: err.rule.as_deref(),
        option: err.option.as_deref(),
        phase: err.phase.map(|p| p.as_str()),
        status: err.status,
        chunk: err.chunk,
        algorithm: err.algorithm,
    };
    let js = Error::new(&err.message);
    js.set_name("UploadError");
    if let Ok(fields) = super::to_js(&fields).dyn_into::<Object>() {
        Object::assign(&js, &fields);
    }
    js.into()
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
