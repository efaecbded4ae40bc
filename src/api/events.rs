//! Event listeners (`on`/`off`) and the objects events carry.

use std::cell::RefCell;

use js_sys::{Array, Function};
use wasm_bindgen::prelude::*;

use serde::Serialize;

use super::{file_snapshot, FileSnapshot};
use crate::driver::{Driver, Dynamic, S3Reply, Sink};
use crate::engine::s3::Call;
use crate::engine::{Event, FileId, FileStatus};
use crate::transport::js_error_text;

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
    "persistWarning",
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

    /// Whether `event` has a listener: the arguments of an event (a file's snapshot costs
    /// more than the rest of its event) are built only then.
    fn has(&self, event: &str) -> bool {
        self.entries.iter().any(|(name, _)| *name == event)
    }

    fn for_event(&self, event: &str) -> Vec<Function> {
        self.entries
            .iter()
            .filter(|(name, _)| *name == event)
            .map(|(_, f)| f.clone())
            .collect()
    }
}

/// The page's side of one uploader: its listeners, the `upload()` promises waiting for the
/// queue to drain, and the function-valued options the driver asks for per request. The
/// driver reaches it only through [`Sink`].
#[derive(Default)]
pub(crate) struct Page {
    pub(crate) listeners: RefCell<Listeners>,
    /// `resolve` functions of `upload()` promises waiting for the queue to drain.
    pub(crate) waiters: RefCell<Vec<Function>>,
    pub(crate) query_fn: RefCell<Option<Function>>,
    pub(crate) headers_fn: RefCell<Option<Function>>,
    /// The `s3` option object (its callbacks), with `protocol: 's3'`.
    pub(crate) s3: RefCell<Option<JsValue>>,
    pub(crate) target_fn: RefCell<Option<Function>>,
    pub(crate) preprocess_fn: RefCell<Option<Function>>,
    /// The page's URL, against which a `target` function's relative URLs resolve.
    pub(crate) href: RefCell<Option<String>>,
}

impl Page {
    /// Calls every listener of `event` with `args`. No borrow is held while they run; a
    /// listener that throws is reported on the console and does not stop the upload.
    pub(crate) fn emit(&self, event: &str, args: &[JsValue]) {
        let callbacks = self.listeners.borrow().for_event(event);
        if callbacks.is_empty() {
            return;
        }
        let args: Array = args.iter().collect();
        for callback in callbacks {
            if let Err(err) = callback.apply(&JsValue::NULL, &args) {
                web_sys::console::error_2(
                    &JsValue::from_str(&format!("resumable-wasm: a `{event}` listener threw:")),
                    &err,
                );
            }
        }
    }

    /// Resolves every waiting `upload()` with the summary of the files as they are now.
    fn settle_waiters(&self, driver: &Driver) {
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        if !waiters.is_empty() {
            let result = summary(driver);
            for resolve in waiters {
                let _ = resolve.call1(&JsValue::NULL, &result);
            }
        }
    }
}

impl Sink for Page {
    fn event(&self, driver: &Driver, event: Event) {
        let snapshot = |id| file_snapshot(driver, id);
        // The events of every chunk: their arguments are built only for a listener.
        let per_chunk = match &event {
            Event::FileProgress(_) => "fileProgress",
            Event::Progress => "progress",
            Event::ChunkSuccess { .. } => "chunkSuccess",
            Event::FileSuccess { .. } => "fileSuccess",
            _ => "",
        };
        if !per_chunk.is_empty() && !self.listeners.borrow().has(per_chunk) {
            return;
        }
        match event {
            Event::UploadStart => self.emit("uploadStart", &[]),
            Event::FileProgress(id) => self.emit("fileProgress", &[snapshot(id)]),
            Event::Progress => {
                let p = driver.scheduler().progress();
                self.emit("progress", &[JsValue::from(p)]);
            }
            Event::ChunkSuccess { file, chunk, body } => {
                self.emit("chunkSuccess", &[snapshot(file), chunk.into(), body.into()]);
            }
            Event::FileRetry {
                file,
                error,
                delay_ms,
                ..
            } => {
                #[allow(clippy::cast_precision_loss)]
                let delay = delay_ms as f64;
                self.emit(
                    "fileRetry",
                    &[snapshot(file), super::error::to_js(&error), delay.into()],
                );
            }
            Event::FileSuccess { file, body } => {
                self.emit("fileSuccess", &[snapshot(file), body.into()]);
            }
            Event::FileError { file, error } => {
                let snapshot = snapshot(file);
                let js_error = super::error::to_js(&error);
                self.emit("fileError", &[snapshot.clone(), js_error.clone()]);
                self.emit("error", &[js_error, snapshot]);
            }
            Event::Complete => {
                self.emit("complete", &[]);
                self.settle_waiters(driver);
            }
            Event::Pause => self.emit("pause", &[]),
            Event::Cancel => self.emit("cancel", &[]),
            // The driver prints it; it has no listener.
            Event::PreflightWarning { .. } => {}
        }
    }

    fn dynamic(
        &self,
        driver: &Driver,
        part: Dynamic,
        file: FileId,
        chunk: u32,
    ) -> Result<Option<Vec<(String, String)>>, String> {
        let (f, option) = match part {
            Dynamic::Query => (self.query_fn.borrow().clone(), "query"),
            Dynamic::Headers => (self.headers_fn.borrow().clone(), "headers"),
        };
        let Some(f) = f else { return Ok(None) };
        let value = call_per_chunk(&f, option, driver, file, chunk)?;
        if value.has_type::<js_sys::Promise>() {
            return Err(format!(
                "{option} function returned a Promise; it must return an object"
            ));
        }
        super::options::string_pairs(&value)
            .map(Some)
            .map_err(|e| format!("{option} function returned an object that threw when read: {e}"))
    }

    fn persist_warning(&self, _driver: &Driver, cause: JsValue) {
        self.emit("persistWarning", &[cause]);
    }

    fn target(&self, driver: &Driver, file: FileId, chunk: u32) -> Result<Option<String>, String> {
        let Some(f) = self.target_fn.borrow().clone() else {
            return Ok(None);
        };
        let value = call_per_chunk(&f, "target", driver, file, chunk)?;
        let url = value
            .as_string()
            .ok_or("target function returned no string; it must return the URL")?;
        super::resolve_url(&url, self.href.borrow().as_deref())
            .map(Some)
            .ok_or_else(|| format!("target function returned \"{url}\", not a URL"))
    }

    fn preprocess(
        &self,
        driver: &Driver,
        file: FileId,
        chunk: u32,
    ) -> Result<Option<js_sys::Promise>, String> {
        let Some(f) = self.preprocess_fn.borrow().clone() else {
            return Ok(None);
        };
        let value = call_per_chunk(&f, "preprocess", driver, file, chunk)?;
        Ok(Some(js_sys::Promise::resolve(&value)))
    }

    fn release(&self, driver: &Driver) {
        self.settle_waiters(driver);
        let released = (
            std::mem::take(&mut *self.listeners.borrow_mut()),
            self.query_fn.borrow_mut().take(),
            self.headers_fn.borrow_mut().take(),
            self.s3.borrow_mut().take(),
            self.target_fn.borrow_mut().take(),
            self.preprocess_fn.borrow_mut().take(),
        );
        drop(released);
    }

    fn s3_call(
        &self,
        driver: &Driver,
        file: FileId,
        call: &Call,
    ) -> Result<js_sys::Promise, String> {
        let s3 = self.s3.borrow().clone().ok_or("the uploader was freed")?;
        let blob = driver.blob(file).map(JsValue::from).unwrap_or_default();
        super::s3::call(&s3, &blob, call)
    }

    fn s3_reply(&self, call: &Call, settled: Result<JsValue, JsValue>) -> S3Reply {
        super::s3::reply(call, settled)
    }
}

/// Calls the page's per-request function `option` (`query`, `headers`, `target`, `preprocess`)
/// with the file's snapshot and the chunk number; a throw becomes a message naming it.
fn call_per_chunk(
    f: &Function,
    option: &str,
    driver: &Driver,
    file: FileId,
    chunk: u32,
) -> Result<JsValue, String> {
    f.call2(
        &JsValue::NULL,
        &file_snapshot(driver, file),
        &JsValue::from(chunk),
    )
    .map_err(|e| format!("{option} function threw: {}", js_error_text(&e)))
}

/// `{ succeeded, failed, paused }` (arrays of `UploadFile`) for the files as they are now:
/// `failed` holds failed and cancelled files, `paused` the files paused with `pauseFile()`.
pub(crate) fn summary(driver: &Driver) -> JsValue {
    /// `UploadSummary` in TypeScript.
    #[derive(Serialize, Default)]
    struct Summary {
        succeeded: Vec<FileSnapshot>,
        failed: Vec<FileSnapshot>,
        paused: Vec<FileSnapshot>,
    }
    let ids: Vec<_> = driver
        .scheduler()
        .files()
        .into_iter()
        .map(|f| (f.id, f.status))
        .collect();
    let mut out = Summary::default();
    for (id, status) in ids {
        let list = match status {
            FileStatus::Success => &mut out.succeeded,
            FileStatus::Error | FileStatus::Cancelled => &mut out.failed,
            FileStatus::Paused => &mut out.paused,
            FileStatus::Queued | FileStatus::Uploading => continue,
        };
        list.extend(FileSnapshot::of(driver, id));
    }
    super::to_js(&out)
}
