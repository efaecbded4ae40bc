//! `Blob` slicing with checked `u64` → `f64` offsets (the other way is `engine::float::whole`).

use crate::engine::plan::MAX_SAFE_INTEGER;
use web_sys::Blob;

/// Converts a byte offset for a JS API; `None` above 2^53 − 1, where `f64` loses integers.
pub(crate) fn offset_to_js(offset: u64) -> Option<f64> {
    // The cast is exact below 2^53, which the check guarantees.
    #[allow(clippy::cast_precision_loss)]
    (offset <= MAX_SAFE_INTEGER).then_some(offset as f64)
}

/// The untyped slice `[start, end)` of `file`: no content type, so no `Content-Type` header and
/// no preflight because of the body.
pub(crate) fn untyped_slice(file: &Blob, start: u64, end: u64) -> Result<Blob, String> {
    let (Some(s), Some(e)) = (offset_to_js(start), offset_to_js(end)) else {
        return Err(format!("byte range {start}..{end} is beyond 2^53-1"));
    };
    file.slice_with_f64_and_f64(s, e)
        .map_err(|err| super::js_error_text(&err))
}

/// Whether the browser can still read `[start, end)` of `file` (one byte is read). A `File` that
/// was changed, moved or deleted after it was chosen fails its request with the same `TypeError`
/// as a network or CORS failure; this tells that case apart.
pub(crate) async fn is_readable(file: &Blob, start: u64, end: u64) -> bool {
    if start >= end {
        return true;
    }
    let Ok(probe) = untyped_slice(file, start, start.saturating_add(1)) else {
        return false;
    };
    wasm_bindgen_futures::JsFuture::from(probe.array_buffer())
        .await
        .is_ok()
}

/// Starts reading `[start, end)` of `file` (`Blob.arrayBuffer`); finish with [`read`].
pub(crate) fn start_read(file: &Blob, start: u64, end: u64) -> Result<js_sys::Promise, String> {
    Ok(untyped_slice(file, start, end)?.array_buffer())
}

/// The bytes of a read begun with [`start_read`]; the text of the error when the browser
/// cannot read them (the file changed, moved or was deleted after it was chosen).
pub(crate) async fn read(
    started: Result<js_sys::Promise, String>,
) -> Result<js_sys::Uint8Array, String> {
    let buffer = wasm_bindgen_futures::JsFuture::from(started?)
        .await
        .map_err(|e| super::js_error_text(&e))?;
    Ok(js_sys::Uint8Array::new(&buffer))
}

/// An untyped `Blob` of `bytes` (the chunk as read and hashed), to send as the body.
pub(crate) fn of_bytes(bytes: &js_sys::Uint8Array) -> Result<Blob, String> {
    let parts = js_sys::Array::of1(bytes);
    Blob::new_with_u8_array_sequence(&parts).map_err(|e| super::js_error_text(&e))
}
