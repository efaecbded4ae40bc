//! Time for the engine: a millisecond clock from JS globals (window or worker), and the one
//! clamp every timer delay goes through (the timers themselves are gloo-timers').

use wasm_bindgen::JsCast;

/// Longest wait one browser timer can hold: `setTimeout` takes a signed 32-bit delay and fires
/// at once above it (gloo-timers passes its `u32` on as `i32`, so it would wrap negative).
/// Longer waits are re-armed when the timer wakes early.
const MAX_TIMER_MS: u64 = 0x7fff_ffff;

/// A delay for `gloo_timers::callback::Timeout`, clamped to the range `setTimeout` honours.
pub(crate) fn timer_ms(ms: u64) -> u32 {
    u32::try_from(ms.min(MAX_TIMER_MS)).unwrap_or(u32::MAX >> 1)
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
