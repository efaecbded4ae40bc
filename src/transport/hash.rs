//! Hashing a chunk as read (`checksum`): CRC-32C in the wasm, SHA-256 through WebCrypto.

use js_sys::{Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::engine::integrity::{crc32c_bytes, Algorithm, Crc32c};

/// Bytes copied into wasm memory at a time: memory stays this size for any chunk size.
const WINDOW: u32 = 64 * 1024;

/// The checksum of `bytes` under `algorithm` (big-endian bytes); the error text when WebCrypto
/// failed.
pub(crate) async fn checksum(algorithm: Algorithm, bytes: &Uint8Array) -> Result<Vec<u8>, String> {
    match algorithm {
        Algorithm::Crc32c => Ok(crc32c(bytes)),
        Algorithm::Sha256 => sha256(bytes).await,
    }
}

/// The CRC-32C of `bytes`, copied into wasm memory one window at a time (`to_vec` of a
/// subarray; `copy_to` would bring in its length assertion's panic code).
pub(crate) fn crc32c(bytes: &Uint8Array) -> Vec<u8> {
    let mut crc = Crc32c::new();
    let len = bytes.length();
    let mut at = 0u32;
    while at < len {
        let end = len.min(at.saturating_add(WINDOW));
        crc.update(&bytes.subarray(at, end).to_vec());
        at = end;
    }
    crc32c_bytes(crc.finish())
}

/// `crypto.subtle`, where the browser offers it (secure contexts only).
fn subtle() -> Option<JsValue> {
    let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto")).ok()?;
    let subtle = Reflect::get(&crypto, &JsValue::from_str("subtle")).ok()?;
    (!subtle.is_undefined() && !subtle.is_null()).then_some(subtle)
}

/// Whether SHA-256 can be computed here (`crypto.subtle` exists).
pub(crate) fn has_sha256() -> bool {
    subtle().is_some()
}

/// `crypto.subtle.digest('SHA-256', bytes)`.
pub(crate) async fn sha256(bytes: &Uint8Array) -> Result<Vec<u8>, String> {
    let subtle = subtle().ok_or("crypto.subtle is not available (not a secure context)")?;
    let digest: Function = Reflect::get(&subtle, &JsValue::from_str("digest"))
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or("crypto.subtle.digest is not a function")?;
    let promise: Promise = digest
        .call2(&subtle, &JsValue::from_str("SHA-256"), bytes)
        .and_then(JsCast::dyn_into)
        .map_err(|e| super::js_error_text(&e))?;
    let buffer = JsFuture::from(promise)
        .await
        .map_err(|e| super::js_error_text(&e))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// A chunk as read and hashed (`checksum`): its checksum, and its bytes as the body to send.
pub(crate) struct HashedChunk {
    pub(crate) sum: Vec<u8>,
    pub(crate) body: web_sys::Blob,
}

/// Why a chunk could not be read and hashed.
pub(crate) enum HashError {
    /// The browser could not read the bytes (the file changed, moved or was deleted).
    Unreadable,
    /// The hash could not be computed (WebCrypto failed): its text.
    Failed(String),
}

/// Starts reading `[start, end)` of `file` and hashing it under `algorithm`, and building the
/// body from the bytes read; it runs on its own while earlier chunks are on the wire. Finish
/// with [`hashed_read`]. A promise, so that the work runs whether or not anyone awaits it yet.
pub(crate) fn start_hashed_read(
    file: &web_sys::Blob,
    start: u64,
    end: u64,
    algorithm: Algorithm,
) -> Promise {
    let started = super::blob::start_read(file, start, end);
    wasm_bindgen_futures::future_to_promise(async move {
        // Rejections: `null` for an unreadable file, else the text of the failure.
        let bytes = super::blob::read(started)
            .await
            .map_err(|_| JsValue::NULL)?;
        let sum = checksum(algorithm, &bytes)
            .await
            .map_err(|m| JsValue::from_str(&m))?;
        let body = super::blob::of_bytes(&bytes).map_err(|m| JsValue::from_str(&m))?;
        // The bytes now live in `body` only: one chunk's memory.
        drop(bytes);
        Ok(js_sys::Array::of2(&body, &Uint8Array::from(sum.as_slice())).into())
    })
}

/// The chunk of a read begun with [`start_hashed_read`].
pub(crate) async fn hashed_read(started: Promise) -> Result<HashedChunk, HashError> {
    let done = JsFuture::from(started).await.map_err(|e| {
        if e.is_null() {
            HashError::Unreadable
        } else {
            HashError::Failed(e.as_string().unwrap_or_default())
        }
    })?;
    let done = js_sys::Array::from(&done);
    let body = done
        .get(0)
        .dyn_into()
        .map_err(|_| HashError::Failed("no body".into()))?;
    Ok(HashedChunk {
        sum: Uint8Array::new(&done.get(1)).to_vec(),
        body,
    })
}
