//! Event listeners (`on`/`off`) and the objects events carry.

use crate::engine::text::cat;
use js_sys::{Array, Function, Object};
use wasm_bindgen::prelude::*;

use crate::driver::Handle;
use crate::engine::FileStatus;

/// The event names, as in Resumable.js where they exist.
pub(crate) const EVENTS: &[&str] = &[
    "fileAdded",
    "filesAdded",
    "fileRejected",
    "uploadStart",
    "fileProgress",
    "progress",
    "chunkSuccess",
    "fileRetry",
    "fileSuccess",
    "fileError",
    "error",
    "complete",
    "pause",
    "cancel",
];

/// Registered callbacks, in registration order.
#[derive(Default)]
pub(crate) struct Listeners {
    entries: Vec<(&'static str, Function)>,
}

impl Listeners {
    /// Adds `callback` for `event`; `false` for an unknown event name.
    pub(crate) fn add(&mut self, event: &str, callback: Function) -> bool {
        match EVENTS.iter().find(|e| **e == event) {
            Some(name) => {
                self.entries.push((name, callback));
                true
            }
            None => false,
        }
    }

    /// Removes `callback` for `event`, or every callback for `event` when `None`.
    pub(crate) fn remove(&mut self, event: &str, callback: Option<&Function>) {
        self.entries
            .retain(|(name, f)| *name != event || callback.is_some_and(|c| c != f));
    }

    fn for_event(&self, event: &str) -> Vec<Function> {
        self.entries
            .iter()
            .filter(|(name, _)| *name == event)
            .map(|(_, f)| f.clone())
            .collect()
    }
}

/// Calls every listener of `event` with `args`. No borrow is held while they run; a listener
/// that throws is reported on the console and does not stop the upload.
pub(crate) fn emit(handle: &Handle, event: &str, args: &[JsValue]) {
    let callbacks = handle.borrow().listeners.for_event(event);
    if callbacks.is_empty() {
        return;
    }
    let args: Array = args.iter().collect();
    for callback in callbacks {
        if let Err(err) = callback.apply(&JsValue::NULL, &args) {
            web_sys::console::error_2(
                &JsValue::from_str(&cat(&["resumable-wasm: a `", event, "` listener threw:"])),
                &err,
            );
        }
    }
}

/// `{ succeeded, failed, paused }` (arrays of `UploadFile`) for the files as they are now:
/// `failed` holds failed and cancelled files, `paused` the files paused with `pauseFile()`.
pub(crate) fn summary(handle: &Handle) -> JsValue {
    let ids: Vec<_> = handle
        .borrow()
        .scheduler
        .files()
        .into_iter()
        .map(|f| (f.id, f.status))
        .collect();
    let succeeded = Array::new();
    let failed = Array::new();
    let paused = Array::new();
    for (id, status) in ids {
        let list = match status {
            FileStatus::Success => &succeeded,
            FileStatus::Error | FileStatus::Cancelled => &failed,
            FileStatus::Paused => &paused,
            FileStatus::Queued | FileStatus::Uploading => continue,
        };
        list.push(&super::file_snapshot(handle, id));
    }
    let out = Object::new();
    super::set(&out, "succeeded", &succeeded);
    super::set(&out, "failed", &failed);
    super::set(&out, "paused", &paused);
    out.into()
}
