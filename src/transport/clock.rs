//! Time for the engine: a millisecond clock and sleeping, from JS globals (window or worker).

use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

#[wasm_bindgen]
extern "C" {
    // The global functions, so they work in windows, workers and Node alike.
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &js_sys::Function, ms: u32) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

/// A `setTimeout` that is cancelled when dropped. Dropping it from inside its own callback is
/// fine: wasm-bindgen frees a closure only once its running call has returned.
#[must_use = "dropping a Timeout cancels it"]
pub(crate) struct Timeout {
    id: JsValue,
    _callback: Closure<dyn FnMut()>,
}

impl Timeout {
    /// Calls `callback` once after `ms` milliseconds (see `driver::timer_ms` for the range).
    pub(crate) fn new(ms: u32, callback: impl FnOnce() + 'static) -> Timeout {
        let callback = Closure::once(callback);
        let id = set_timeout(callback.as_ref().unchecked_ref(), ms);
        Timeout {
            id,
            _callback: callback,
        }
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        clear_timeout(&self.id);
    }
}

/// A monotonic millisecond clock for the engine: `performance.timeOrigin + performance.now()`
/// (a wall-clock jump must not stretch retry deadlines), or `Date.now()` where there is no
/// `performance`. The engine only compares these values.
pub(crate) fn now_ms() -> u64 {
    let performance = js_sys::Reflect::get(&js_sys::global(), &"performance".into()).ok();
    let monotonic = performance.and_then(|p| {
        let now: js_sys::Function = js_sys::Reflect::get(&p, &"now".into())
            .ok()?
            .dyn_into()
            .ok()?;
        let origin = js_sys::Reflect::get(&p, &"timeOrigin".into())
            .ok()?
            .as_f64()?;
        Some(origin + now.call0(&p).ok()?.as_f64()?)
    });
    let now = monotonic.unwrap_or_else(js_sys::Date::now);
    // A non-negative integer far below 2^53 once truncated.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let ms = if now.is_finite() && now > 0.0 {
        now as u64
    } else {
        0
    };
    ms
}

/// A random seed for the engine's jitter, from `Math.random()`.
pub(crate) fn random_seed() -> u64 {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let seed = (js_sys::Math::random() * 9_007_199_254_740_991.0) as u64;
    seed | 1
}

/// Whether the browser believes it is online (`navigator.onLine`); `true` when unknown.
pub(crate) fn is_online() -> bool {
    let global = js_sys::global();
    js_sys::Reflect::get(&global, &"navigator".into())
        .and_then(|nav| js_sys::Reflect::get(&nav, &"onLine".into()))
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(true)
}
