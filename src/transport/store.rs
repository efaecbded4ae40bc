//! The record store of `persist`: IndexedDB, reached through the plain-JS store that
//! `src/api/dom.js` installs on the global object under `Symbol.for('resumable-wasm/store')`
//! (reads and writes in JS cost less wasm than through web-sys). It keeps what it is given
//! under a key — a record's text, and the first time the file's Blob or handle — and decides
//! nothing; every promise rejects with what IndexedDB threw.

use js_sys::{Promise, Reflect, Symbol};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// The page's record store.
    #[derive(Clone)]
    pub(crate) type Store;
    /// Writes `record` under `key`, and `file` (a Blob or FileSystemFileHandle) when given.
    #[wasm_bindgen(method)]
    pub(crate) fn put(this: &Store, key: &str, record: &str, file: &JsValue) -> Promise;
    /// Deletes the record and kept file of `key`.
    #[wasm_bindgen(method)]
    pub(crate) fn del(this: &Store, key: &str) -> Promise;
    /// `[text, file]` of `key`, or `undefined`.
    #[wasm_bindgen(method)]
    pub(crate) fn get(this: &Store, key: &str) -> Promise;
    /// Every `[key, text, file]`.
    #[wasm_bindgen(method)]
    pub(crate) fn all(this: &Store) -> Promise;
}

/// The store `dom.js` installed, if any.
pub(crate) fn page_store() -> Option<Store> {
    let key = Symbol::for_("resumable-wasm/store");
    let store = Reflect::get(&js_sys::global(), &key).ok()?;
    store.is_object().then(|| store.unchecked_into())
}
