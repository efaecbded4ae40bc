//! resumable-wasm: resumable, CORS-aware chunked uploads for the browser.
//!
//! The crate has three layers, and the dependency graph keeps them apart:
//! - [`engine`] (pure Rust, builds natively): every decision — chunk plan, protocol parameters,
//!   scheduling, retries, preflight prediction, error kinds. Time and randomness are inputs.
//! - `transport` (wasm32 only): the browser I/O — `fetch`/XHR, `Blob` slicing, timers, the CORS probe.
//! - `driver` and `api` (wasm32 only): the one async loop between the two, and the
//!   `#[wasm_bindgen]` JavaScript surface (`Uploader`, `UploadError`, the TypeScript types).

#![cfg_attr(all(target_arch = "wasm32", not(feature = "std")), no_std)]

extern crate alloc;

/// What std's prelude would bring, for the `no_std` build of the shipped wasm.
mod prelude {
    pub(crate) use alloc::borrow::ToOwned;
    pub(crate) use alloc::boxed::Box;
    pub(crate) use alloc::string::{String, ToString};
    pub(crate) use alloc::vec;
    pub(crate) use alloc::vec::Vec;
}

pub mod engine;

#[cfg(target_arch = "wasm32")]
mod transport;

#[cfg(target_arch = "wasm32")]
mod driver;

#[cfg(target_arch = "wasm32")]
pub mod api;

/// Talc instead of std's dlmalloc: the same job in about a third of the code (the wasm is
/// shipped to every page; see README "Size"). Single-threaded wasm only, which is what we build.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

/// The shipped wasm is `no_std` (see Cargo.toml's `std` feature): a panic — a bug, never user
/// input — traps, as `panic = "abort"` does, without formatting a message nobody reads.
#[cfg(all(target_arch = "wasm32", not(feature = "std")))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
