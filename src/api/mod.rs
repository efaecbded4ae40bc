//! The JavaScript surface: `Uploader`, `UploadError` (`isUploadError`) and the TypeScript types.
//!
//! It converts between JS values and engine types and hands every call to the driver; the
//! decisions stay in the engine. Its shape follows Resumable.js/Flow.js (`addFile`, `upload`,
//! `pause`, `on('fileSuccess', …)`), with promises and typed errors added.

pub mod error;
pub(crate) mod events;
pub(crate) mod options;
pub(crate) mod s3;
pub mod ts;

use core::cell::RefCell;
use core::future::Future;
use core::pin::Pin;
use std::rc::Rc;

use js_sys::{Array, Function, Promise, Reflect};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::Blob;

use crate::driver::{self, Driver};
use crate::engine::config::OPTION_NAMES;
use crate::engine::integrity::Algorithm;
use crate::engine::{
    float, Config, FileControl, FileId, FileMeta, FileStatus, OptionValue, Scheduler,
};
use crate::transport::{self, blob, clock};
use events::Page;
use ts::{AddFileOptionsJs, PreflightReportJs, UploadFileArrayJs, UploadOptionsJs};

/// Runs `future` as a JS promise. Every async body goes through this one non-generic call, so the
/// wasm holds one `future_to_promise` instance instead of one per caller.
#[inline(never)]
pub(crate) fn to_promise(
    future: Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>,
) -> Promise {
    wasm_bindgen_futures::future_to_promise(future)
}

/// `value` as a JS value: structs become plain objects (maps too), `None` fields are left
/// out where the struct says so. Only this library's own types go through it, so it cannot
/// fail (every `u64` is converted with the checked [`blob::offset_to_js`] first).
pub(crate) fn to_js<T: Serialize + ?Sized>(value: &T) -> JsValue {
    let serializer = serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true);
    value.serialize(&serializer).unwrap_or(JsValue::UNDEFINED)
}

/// A file as JavaScript sees it (`UploadFile` in TypeScript).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FileSnapshot {
    identifier: String,
    name: String,
    /// `NaN` above 2^53−1 bytes (the engine refuses such files; never seen in practice).
    size: f64,
    relative_path: String,
    status: &'static str,
    progress: f64,
    speed: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    eta: Option<f64>,
    /// The `UploadError` (a JS `Error`), when the file failed.
    #[serde(
        with = "serde_wasm_bindgen::preserve",
        skip_serializing_if = "JsValue::is_undefined"
    )]
    error: JsValue,
    /// The added `File`/`Blob`.
    #[serde(
        with = "serde_wasm_bindgen::preserve",
        skip_serializing_if = "JsValue::is_undefined"
    )]
    file: JsValue,
}

impl FileSnapshot {
    /// File `id` as it is now; `None` if the engine does not know it.
    pub(crate) fn of(driver: &Driver, id: FileId) -> Option<FileSnapshot> {
        let view = driver.scheduler().file(id)?;
        Some(FileSnapshot {
            identifier: view.identifier,
            name: view.name,
            size: blob::offset_to_js(view.size).unwrap_or(f64::NAN),
            relative_path: view.relative_path,
            status: view.status.as_str(),
            progress: view.progress,
            speed: view.speed_bps,
            eta: view.eta_ms.and_then(blob::offset_to_js),
            error: view.error.as_ref().map_or(JsValue::UNDEFINED, error::to_js),
            file: driver.blob(id).map_or(JsValue::UNDEFINED, JsValue::from),
        })
    }
}

/// A plain-object snapshot of one file (`UploadFile` in TypeScript); `undefined` if unknown.
pub(crate) fn file_snapshot(driver: &Driver, id: FileId) -> JsValue {
    FileSnapshot::of(driver, id).map_or(JsValue::UNDEFINED, |f| to_js(&f))
}

/// The page's origin and URL (`location`), in windows and workers.
fn page_location() -> (Option<String>, Option<String>) {
    let location =
        Reflect::get(&js_sys::global(), &"location".into()).unwrap_or(JsValue::UNDEFINED);
    let read = |key: &str| {
        options::get(&location, key)
            .as_string()
            .filter(|s| s != "null")
    };
    (read("origin"), read("href"))
}

/// Resolves a page-relative URL against the page; where there is no page URL (Node), only an
/// absolute URL is one. `None` when the URL parser refuses it.
pub(crate) fn resolve_url(value: &str, base: Option<&str>) -> Option<String> {
    match base {
        Some(b) => web_sys::Url::new_with_base(value, b).ok(),
        None => web_sys::Url::new(value).ok(),
    }
    .map(|u| u.href())
}

/// Whether global `name` is defined.
fn has_global(name: &str) -> bool {
    Reflect::get(&js_sys::global(), &name.into()).is_ok_and(|v| !v.is_undefined())
}

/// Whether a browser enforces CORS here: the global scope is a window (`document`) or a worker
/// (`WorkerGlobalScope`). Node, Deno and Bun have neither, and their `fetch` applies no CORS.
fn in_browser() -> bool {
    has_global("document") || has_global("WorkerGlobalScope")
}

/// Whether option `name` set to `url` means "probe the upload target": Resumable.js reads
/// `testTarget: '/'` so, and an empty one is no URL.
fn uses_target(name: &str, url: &str) -> bool {
    name == "testTarget" && (url == "/" || url.is_empty())
}

/// A resumable, chunked uploader for one endpoint.
#[wasm_bindgen]
pub struct Uploader {
    driver: Driver,
    page: Rc<Page>,
    id_fn: Option<Function>,
    /// Additions still waiting for an async identifier; `upload()` waits for them.
    pending: Rc<RefCell<Vec<Promise>>>,
}

#[wasm_bindgen]
impl Uploader {
    /// Creates an uploader. Throws an `UploadError` of kind `invalid` naming the bad option.
    #[wasm_bindgen(constructor)]
    pub fn new(options: UploadOptionsJs) -> Result<Uploader, JsValue> {
        let options: JsValue = options.into();
        if !options.is_object() {
            return Err(error::invalid(
                "options",
                "options must be an object with at least `target`",
            ));
        }
        let (origin, href) = page_location();
        let keys = options::keys(&options)
            .map_err(|e| error::invalid("options", &format!("listing the options threw: {e}")))?;
        // Each option is read once (a getter runs once), for the checks and for the functions;
        // unknown keys are refused by name without being read.
        let values: Vec<(&str, Result<JsValue, String>)> = OPTION_NAMES
            .iter()
            .map(|name| (*name, options::read(&options, name)))
            .collect();
        let value_of = |name: &str| {
            values
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, v)| v.as_ref().ok())
        };
        for name in ["target", "testTarget"] {
            let Some(url) = value_of(name).and_then(JsValue::as_string) else {
                continue;
            };
            if resolve_url(&url, href.as_deref()).is_none() && !uses_target(name, &url) {
                let message = if href.is_some() {
                    format!("{name} is not a URL the browser can parse, got \"{url}\"")
                } else {
                    format!("{name} must be an absolute URL here (there is no page to resolve it against), got \"{url}\"")
                };
                return Err(error::invalid(name, &message));
            }
        }
        let get = |name: &str| match values.iter().find(|(n, _)| *n == name) {
            None => OptionValue::Missing,
            Some((_, Err(thrown))) => OptionValue::Threw(thrown.clone()),
            Some((_, Ok(value))) => match (name, value.as_string()) {
                (_, Some(url)) if uses_target(name, &url) => OptionValue::Missing,
                ("target" | "testTarget", Some(url)) => {
                    OptionValue::Str(resolve_url(&url, href.as_deref()).unwrap_or(url))
                }
                _ => options::describe(value),
            },
        };
        let config = Config::from_options(&keys, &get, origin.as_deref())
            .and_then(|c| c.for_runtime(in_browser(), has_global("XMLHttpRequest")))
            .map_err(|e| error::to_js(&e))?;
        if config.checksum == Some(Algorithm::Sha256) && !transport::hash::has_sha256() {
            return Err(error::invalid(
                "checksum",
                "checksum 'sha256' needs WebCrypto (crypto.subtle), which browsers offer only in a secure context (https, or http://localhost): serve the page securely or use checksum 'crc32c'",
            ));
        }
        let function = |name: &str| value_of(name).and_then(|v| v.dyn_ref::<Function>().cloned());
        let page = Rc::new(Page::default());
        *page.query_fn.borrow_mut() = function("query");
        *page.headers_fn.borrow_mut() = function("headers");
        *page.s3.borrow_mut() = value_of("s3").filter(|_| config.s3.is_some()).cloned();
        *page.target_fn.borrow_mut() = function("target");
        *page.preprocess_fn.borrow_mut() = function("preprocess");
        *page.href.borrow_mut() = href;
        let scheduler = Scheduler::new(config, clock::random_seed());
        let driver = Driver::new(scheduler, origin, Rc::clone(&page) as Rc<dyn driver::Sink>);
        Ok(Uploader {
            driver,
            page,
            id_fn: function("generateUniqueIdentifier"),
            pending: Rc::default(),
        })
    }

    /// Queues one `File` or `Blob`. Resolves with its `UploadFile`, or `null` when a rule refused
    /// it (then `fileRejected` fired with an `UploadError` of kind `rejected`).
    /// Throws an `invalid` UploadError when `file` is not a `File` or `Blob`.
    #[wasm_bindgen(js_name = addFile, unchecked_return_type = "Promise<UploadFile | null>")]
    pub fn add_file(
        &self,
        #[wasm_bindgen(unchecked_param_type = "File | Blob | FileSystemFileHandle")] file: JsValue,
        options: Option<AddFileOptionsJs>,
    ) -> Result<Promise, JsValue> {
        let file = as_blob(file)?;
        let options: JsValue = options.map_or(JsValue::UNDEFINED, Into::into);
        let promise = add_one(
            &self.driver,
            &self.page,
            self.id_fn.clone(),
            file,
            options,
            true,
        );
        self.track(&promise);
        Ok(promise)
    }

    /// Queues several files (a `FileList` or an array). Resolves with the accepted ones.
    /// A single `File` is taken too; anything else that is not array-like throws an `invalid`
    /// UploadError.
    #[wasm_bindgen(js_name = addFiles, unchecked_return_type = "Promise<UploadFile[]>")]
    pub fn add_files(
        &self,
        #[wasm_bindgen(unchecked_param_type = "FileList | ArrayLike<File | Blob> | File | Blob")]
        files: JsValue,
    ) -> Result<Promise, JsValue> {
        let files = if files.is_instance_of::<Blob>() {
            Array::of1(&files)
        } else {
            list_items(&files)?
        };
        let promise = add_many(&self.driver, &self.page, self.id_fn.clone(), &files);
        self.track(&promise);
        Ok(promise)
    }

    fn track(&self, promise: &Promise) {
        self.pending.borrow_mut().push(promise.clone());
    }

    /// Starts or resumes uploading, and retries files that failed before; files paused with
    /// `pauseFile()` stay paused. Resolves once nothing is in flight and every file succeeded,
    /// failed, was cancelled or is paused with `pauseFile()`, with `{ succeeded, failed, paused }`.
    /// Failures are reported there and by events; it never rejects.
    #[wasm_bindgen(unchecked_return_type = "Promise<UploadSummary>")]
    pub fn upload(&self) -> Promise {
        let (driver, page) = (self.driver.clone(), Rc::clone(&self.page));
        let pending: Array = self.pending.borrow_mut().drain(..).collect();
        let generation = driver.begin_upload();
        to_promise(Box::pin(async move {
            let _ = JsFuture::from(Promise::all_settled(&pending)).await;
            // `cancel()` (or `free()`) while the files were still being added: nothing starts.
            if driver.is_stale(generation) {
                return Ok(events::summary(&driver));
            }
            let mut resolve_slot = None;
            let done = Promise::new(&mut |resolve, _| resolve_slot = Some(resolve));
            // Nothing left to send (every file succeeded or was cancelled): resolve at once.
            let has_work = driver
                .scheduler()
                .files()
                .iter()
                .any(|f| !matches!(f.status, FileStatus::Success | FileStatus::Cancelled));
            if !has_work {
                return Ok(events::summary(&driver));
            }
            if let Some(resolve) = resolve_slot {
                page.waiters.borrow_mut().push(resolve);
            }
            driver.start_upload();
            JsFuture::from(done).await
        }))
    }

    /// Stops starting new requests; requests in flight finish and count.
    pub fn pause(&self) {
        self.driver.pause();
    }

    /// Continues after `pause()` (chunks are re-probed where needed).
    pub fn resume(&self) {
        self.driver.resume();
    }

    /// Aborts every request in flight; the files become `cancelled` and `upload()` settles.
    pub fn cancel(&self) {
        self.driver.cancel();
    }

    /// Removes a file (by identifier, `UploadFile`, or the added `File`/`Blob`), aborting its requests.
    #[wasm_bindgen(js_name = removeFile)]
    pub fn remove_file(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | UploadFile | Blob")] file: JsValue,
    ) -> bool {
        let Some(id) = self.find_file(&file) else {
            return false;
        };
        self.driver.remove_file(id);
        true
    }

    /// Pauses one file (addressed like `removeFile`): it starts no new request, its requests in
    /// flight finish, and the free slots go to the other files. `false` if the file is unknown
    /// or finished, or already paused with `pauseFile()`.
    #[wasm_bindgen(js_name = pauseFile)]
    pub fn pause_file(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | UploadFile | Blob")] file: JsValue,
    ) -> bool {
        self.control_file(&file, FileControl::Pause)
    }

    /// Resumes one paused file; while the whole queue is paused (`pause()`), only this file goes
    /// on and the others stay paused one by one. Continues in a new run if the last one ended
    /// while the file was paused. `false` if the file is unknown or not paused.
    #[wasm_bindgen(js_name = resumeFile)]
    pub fn resume_file(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | UploadFile | Blob")] file: JsValue,
    ) -> bool {
        self.control_file(&file, FileControl::Resume)
    }

    /// Starts a failed or cancelled file over under the `testChunks` rule (chunks the server
    /// has are probed, not sent again); other failed files are not retried. `false` if the
    /// file is unknown, not failed or cancelled, or another queued file has its identifier.
    #[wasm_bindgen(js_name = retryFile)]
    pub fn retry_file(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | UploadFile | Blob")] file: JsValue,
    ) -> bool {
        self.control_file(&file, FileControl::Retry)
    }

    /// Cancels one file: its requests in flight are aborted, it becomes `cancelled` (and stays
    /// listed, unlike `removeFile`), the others go on. `false` if the file is unknown or finished.
    #[wasm_bindgen(js_name = cancelFile)]
    pub fn cancel_file(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | UploadFile | Blob")] file: JsValue,
    ) -> bool {
        self.control_file(&file, FileControl::Cancel)
    }

    /// The engine's handle of a file given by identifier, `UploadFile`, or the added `File`/`Blob`.
    fn find_file(&self, file: &JsValue) -> Option<FileId> {
        // Read before borrowing: a getter on `file` may call back into the uploader.
        let ident = file
            .as_string()
            .or_else(|| options::get(file, "identifier").as_string());
        match ident {
            Some(ident) => self.driver.scheduler().find_by_identifier(&ident),
            None => self.driver.find_blob(file),
        }
    }

    /// Applies a per-file control and carries out what the engine asks for; whether it applied.
    fn control_file(&self, file: &JsValue, control: FileControl) -> bool {
        let Some(id) = self.find_file(file) else {
            return false;
        };
        self.driver.control_file(id, control)
    }

    /// Every queued file, as snapshots.
    #[wasm_bindgen(getter, unchecked_return_type = "UploadFile[]")]
    pub fn files(&self) -> UploadFileArrayJs {
        let ids: Vec<FileId> = self
            .driver
            .scheduler()
            .files()
            .iter()
            .map(|f| f.id)
            .collect();
        let files: Vec<FileSnapshot> = ids
            .into_iter()
            .filter_map(|id| FileSnapshot::of(&self.driver, id))
            .collect();
        to_js(&files).unchecked_into()
    }

    /// Overall progress, 0..1.
    pub fn progress(&self) -> f64 {
        self.driver.scheduler().progress()
    }

    /// Whether requests are in flight or due.
    #[wasm_bindgen(js_name = isUploading)]
    pub fn is_uploading(&self) -> bool {
        self.driver.scheduler().is_uploading()
    }

    /// Which requests the current options make the browser preflight, and why.
    #[wasm_bindgen(js_name = preflightReport)]
    pub fn preflight_report(&self) -> PreflightReportJs {
        let origin = self.driver.page_origin();
        let (mut test, mut upload) = self.driver.scheduler().preflight_report(origin.as_deref());
        let cors_enforced = self.driver.scheduler().config().cors_enforced;
        // Function-valued options are only known per request; say so rather than guess.
        for (f, option) in [
            (&self.page.headers_fn, "headers"),
            (&self.page.query_fn, "query"),
        ] {
            if cors_enforced && f.borrow().is_some() {
                let reason = format!("{option} is a function: what it returns is not known in advance; any header that is not CORS-safelisted costs a preflight");
                test.reasons.push(reason.clone());
                upload.reasons.push(reason);
            }
        }
        if self.page.target_fn.borrow().is_some() {
            let reason = "target is a function: its URLs are not known in advance, so neither is whether they are cross-origin; the rest of this report assumes they are".to_string();
            if !self.driver.scheduler().config().test_target_set() {
                test.reasons.push(reason.clone());
            }
            upload.reasons.push(reason);
        }
        /// `PreflightPrediction` in TypeScript.
        #[derive(Serialize)]
        struct Prediction<'a> {
            preflight: bool,
            reasons: &'a [String],
        }
        /// `PreflightReport` in TypeScript.
        #[derive(Serialize)]
        struct Report<'a> {
            test: Prediction<'a>,
            upload: Prediction<'a>,
        }
        to_js(&Report {
            test: Prediction {
                preflight: test.preflight,
                reasons: &test.reasons,
            },
            upload: Prediction {
                preflight: upload.preflight,
                reasons: &upload.reasons,
            },
        })
        .unchecked_into()
    }

    /// What an explicit `free()` does before the wasm object is freed (`src/api/dom.js` calls
    /// it): cancel everything, settle every `upload()`, release every listener. The garbage
    /// collector's finalizer does not call it: an uploader with work keeps itself alive until
    /// the work is done (see `driver::State::keep_alive`), and dropping the last reference to
    /// an idle one frees it with its listeners.
    #[wasm_bindgen(js_name = __release, skip_typescript)]
    pub fn release(&self) {
        self.driver.release();
    }

    /// `persist`: the unfinished uploads kept under these options whose files are not queued
    /// now, as `[identifier, name, size, lastModified, relativePath, confirmed bytes, kept Blob
    /// or handle, over]` rows (`over`: every chunk confirmed where that finishes the upload); `pending()` in `dom.js` makes them `PendingUpload` objects.
    #[wasm_bindgen(js_name = __pending, skip_typescript)]
    pub fn pending_rows(&self) -> Promise {
        let driver = self.driver.clone();
        to_promise(Box::pin(async move {
            let rows = Array::new();
            for (r, kept) in driver.pending().await {
                let (confirmed, over) =
                    crate::engine::scheduler::pending_progress(driver.scheduler().config(), &r);
                let number = |n: u64| JsValue::from(blob::offset_to_js(n).unwrap_or(f64::NAN));
                let row: Array = [
                    JsValue::from(&r.identifier),
                    JsValue::from(&r.name),
                    number(r.size),
                    r.last_modified.map_or(JsValue::UNDEFINED, number),
                    JsValue::from(r.meta().path()),
                    number(confirmed),
                    kept,
                    JsValue::from(over),
                ]
                .iter()
                .collect();
                rows.push(&row);
            }
            Ok(rows.into())
        }))
    }

    /// `persist`: forgets the pending upload of `identifier` (its record and kept file), so the
    /// file is no longer resumed and may be uploaded anew. Resolves `false` without `persist`.
    #[wasm_bindgen(js_name = forgetPending, unchecked_return_type = "Promise<boolean>")]
    pub fn forget_pending(&self, identifier: String) -> Promise {
        let driver = self.driver.clone();
        to_promise(Box::pin(async move {
            Ok(driver.forget_pending(&identifier).await.into())
        }))
    }

    /// `background`: takes every waiting file out of the queue for a Background Fetch job
    /// (`background.js` waits for the files being added first): the engine's retry policy,
    /// then per file its record key, Blob, name and each chunk's number and `Request`
    /// (`Driver::hand_over`); `background.js` keeps and starts the jobs.
    #[wasm_bindgen(js_name = __handOver, skip_typescript)]
    pub fn hand_over(&self) -> Array {
        self.driver.hand_over()
    }

    /// `background`: emits one of the events of its page part (`background.js`), to the
    /// listeners `on()` registered like any other's.
    #[wasm_bindgen(js_name = __emit, skip_typescript)]
    pub fn emit(&self, event: &str, arg: JsValue) {
        self.page.emit(event, &[arg]);
    }

    /// Whether this uploader keeps records (`persist`, and its store has not failed): 0 no,
    /// 1 yes, 2 yes and `background` is on. Read by `assignBrowse`/`assignDrop` in `dom.js` to
    /// keep file handles, and by its `upload()` and `pending()`.
    #[wasm_bindgen(js_name = __persists, skip_typescript)]
    pub fn persists(&self) -> u8 {
        u8::from(self.driver.persists()) << u8::from(self.driver.scheduler().config().background)
    }

    /// Adds a listener. Throws an `invalid` UploadError for an unknown event name.
    #[wasm_bindgen(skip_typescript)]
    pub fn on(&self, event: &str, callback: JsValue) -> Result<(), JsValue> {
        let Ok(callback) = callback.dyn_into::<Function>() else {
            return Err(error::invalid(
                "callback",
                &format!("on('{event}', callback): callback must be a function"),
            ));
        };
        if self.page.listeners.borrow_mut().add(event, callback) {
            Ok(())
        } else {
            let known = events::EVENTS.join(", ");
            let m = format!("unknown event `{event}`; known: {known}");
            Err(error::invalid("event", &m))
        }
    }

    /// Removes one listener, or all listeners of `event`.
    #[wasm_bindgen(skip_typescript)]
    pub fn off(&self, event: &str, callback: Option<Function>) {
        self.page
            .listeners
            .borrow_mut()
            .remove(event, callback.as_ref());
    }
}

/// `value` as a `Blob`, or an `invalid` UploadError naming what it is.
fn as_blob(value: JsValue) -> Result<Blob, JsValue> {
    value.dyn_into::<Blob>().map_err(|v| {
        let kind = v.js_typeof().as_string().unwrap_or_default();
        error::invalid("file", &format!("addFile takes a File or Blob, got {kind}"))
    })
}

/// The most items one `addFiles` call takes: a `length` above it is refused rather than walked
/// (an array-like of 2^32 holes would be billions of reads for nothing).
const MAX_ADD_FILES: u32 = 1 << 20;

/// The items of the array-like `files` (a `FileList`, an array), read once each, or an
/// `invalid` UploadError naming `files` when it is not one, its `length` is not a count up to
/// [`MAX_ADD_FILES`], or reading it threw.
fn list_items(files: &JsValue) -> Result<Array, JsValue> {
    let not_a_list = || {
        error::invalid(
            "files",
            "addFiles takes a FileList or an array of File/Blob",
        )
    };
    let threw = |e: String| error::invalid("files", &format!("reading the files threw: {e}"));
    if !files.is_object() {
        return Err(not_a_list());
    }
    let length = options::read(files, "length").map_err(threw)?;
    if length.is_undefined() {
        return Err(not_a_list());
    }
    let count = length
        .as_f64()
        .and_then(float::whole)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n <= MAX_ADD_FILES);
    let Some(count) = count else {
        let m = format!(
            "addFiles takes at most {MAX_ADD_FILES} files at once; the list's length is not a count up to that"
        );
        return Err(error::invalid("files", &m));
    };
    let items = Array::new();
    for i in 0..count {
        let item =
            Reflect::get_u32(files, i).map_err(|e| threw(crate::transport::js_error_text(&e)))?;
        items.push(&item);
    }
    Ok(items)
}

/// Adds every file of `list`; resolves with the accepted `UploadFile`s and fires `filesAdded`.
fn add_many(driver: &Driver, page: &Rc<Page>, id_fn: Option<Function>, list: &Array) -> Promise {
    // Items are Blobs, or `{ file, relativePath }` from a dropped folder.
    let each: Array = list
        .iter()
        .filter_map(|item| match item.clone().dyn_into::<Blob>() {
            Ok(blob) => Some((blob, JsValue::UNDEFINED)),
            Err(_) => Some((options::get(&item, "file").dyn_into::<Blob>().ok()?, item)),
        })
        .map(|(f, opts)| JsValue::from(add_one(driver, page, id_fn.clone(), f, opts, true)))
        .collect();
    let page = Rc::clone(page);
    to_promise(Box::pin(async move {
        let results = JsFuture::from(Promise::all(&each)).await?;
        let accepted: Array = Array::from(&results)
            .iter()
            .filter(|v| !v.is_null() && !v.is_undefined())
            .collect();
        if accepted.length() > 0 {
            page.emit("filesAdded", &[accepted.clone().into()]);
        }
        Ok(accepted.into())
    }))
}

/// Adds one file once its identifier is known.
fn add_one(
    driver: &Driver,
    page: &Rc<Page>,
    id_fn: Option<Function>,
    file: Blob,
    options: JsValue,
    emit: bool,
) -> Promise {
    let (driver, page) = (driver.clone(), Rc::clone(page));
    // `cancel()` before this file is in the queue cancels it too.
    let generation = driver.generation();
    to_promise(Box::pin(async move {
        let mut identifier = options::get(&options, "identifier").as_string();
        if identifier.is_none() {
            if let Some(f) = &id_fn {
                match user_identifier(f, &file).await {
                    Ok(value) => identifier = value,
                    Err(e) => {
                        rejected_by_identifier(&page, &file, &e);
                        return Ok(JsValue::NULL);
                    }
                }
            }
        }
        let meta = FileMeta {
            name: options::get(&file, "name")
                .as_string()
                .unwrap_or_else(|| "blob".to_owned()),
            size: float::whole(file.size()).unwrap_or(u64::MAX),
            mime_type: file.type_(),
            relative_path: options::get(&options, "relativePath")
                .as_string()
                .or_else(|| options::get(&file, "relativePath").as_string())
                .or_else(|| options::get(&file, "webkitRelativePath").as_string())
                .filter(|p| !p.is_empty()),
            last_modified: options::get(&file, "lastModified")
                .as_f64()
                .and_then(float::whole),
            identifier,
        };
        let kept = driver.kept_record(&meta).await;
        let file_handle = options::get(&options, "handle");
        let mut snapshot = JsValue::NULL;
        let added = driver.add_file(
            meta,
            file.clone(),
            generation,
            |id| {
                snapshot = file_snapshot(&driver, id);
                if emit {
                    page.emit("fileAdded", std::slice::from_ref(&snapshot));
                }
            },
            kept,
            file_handle,
        );
        match added {
            Ok(_) => Ok(snapshot),
            Err(err) => {
                page.emit("fileRejected", &[file.into(), error::to_js(&err)]);
                Ok(JsValue::NULL)
            }
        }
    }))
}

/// Calls `generateUniqueIdentifier(file)`, awaiting it when it returns a promise.
async fn user_identifier(f: &Function, file: &Blob) -> Result<Option<String>, JsValue> {
    let mut value = f.call1(&JsValue::NULL, file)?;
    if value.has_type::<Promise>() {
        value = JsFuture::from(Promise::from(value)).await?;
    }
    Ok(options::scalar_text(&value).filter(|_| value.as_bool().is_none()))
}

/// `generateUniqueIdentifier` threw or rejected: the file is rejected, with the reason.
fn rejected_by_identifier(page: &Page, file: &Blob, err: &JsValue) {
    let error = crate::engine::UploadError::rejected(
        "generateUniqueIdentifier",
        format!(
            "generateUniqueIdentifier failed: {}",
            crate::transport::js_error_text(err)
        ),
    );
    page.emit("fileRejected", &[file.into(), error::to_js(&error)]);
}

/// The CRC-32C of `bytes` in lowercase hex, computed as `checksum: 'crc32c'` computes a chunk's.
/// Not part of the typed API: `make bench` measures the hashing throughput with it, and the
/// end-to-end tests compare it with server-fixture's value.
#[doc(hidden)]
#[wasm_bindgen(js_name = __crc32c, skip_typescript)]
pub fn crc32c_hex(bytes: &js_sys::Uint8Array) -> String {
    crate::engine::integrity::hex(&transport::hash::crc32c(bytes))
}
