//! The one loop between the engine and the browser: feed the scheduler its inputs (calls from the
//! API, request outcomes, timers, online/offline) and carry out every action it answers with
//! (send, abort, CORS check, event). It decides nothing itself: for a request that got no
//! response it reports only what the browser alone can tell (an unreadable file, offline), and
//! it runs the CORS check pairs the engine asks for (`engine::verdict` decides).
//!
//! Re-entrancy: user callbacks may call back into the uploader (e.g. `pause()` inside
//! `fileProgress`), so no `RefCell` borrow is ever held while JS runs.

use core::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use web_sys::Blob;

use crate::engine::background;
use crate::engine::classify::no_response_failure;
use crate::engine::concurrency::HttpProtocol;
use crate::engine::integrity::Algorithm;
use crate::engine::persist::{self, Record};
use crate::engine::s3::{Answer, Call};
use crate::engine::{
    Action, Check, Event, Failure, FileControl, FileId, FileMeta, Input, Observation, Phase,
    RequestBody, RequestId, RequestSpec, Scheduler, UploadError, VecMap,
};
use crate::transport::hash::{HashError, HashedChunk};
use crate::transport::store::Store;
use crate::transport::wire::{Wire, WireBody};
use crate::transport::{self, clock, cors_check, Outcome, Via};
use gloo_timers::callback::Timeout;
use wasm_bindgen_futures::{spawn_local, JsFuture};

/// How to abort what runs for one request: the request itself, or its batch of CORS checks.
type InFlight = Vec<Via>;

/// Where the driver's outputs for the page go: engine events, and the page's per-request
/// `query`/`headers` values. `api` implements it; no driver borrow is held while it runs, so
/// it may call back into the driver.
pub(crate) trait Sink {
    /// Hands one engine event to the page (listeners, `upload()` promises).
    fn event(&self, driver: &Driver, event: Event);
    /// The page's `query` or `headers` values for `chunk` of `file`; `Ok(None)` when that
    /// option is not a function, `Err` (the message) when the function failed.
    fn dynamic(
        &self,
        driver: &Driver,
        part: Dynamic,
        file: FileId,
        chunk: u32,
    ) -> Result<Option<Vec<(String, String)>>, String>;
    /// The URL the page's `target` function gives for `chunk` of `file`, resolved against the
    /// page; `Ok(None)` when `target` is not a function, `Err` (the message) when it failed.
    fn target(&self, driver: &Driver, file: FileId, chunk: u32) -> Result<Option<String>, String>;
    /// Calls the page's `preprocess` function for `chunk` of `file`: what to await before the
    /// chunk's first request (`Ok(None)`: nothing), `Err` (the message) when it threw.
    fn preprocess(
        &self,
        driver: &Driver,
        file: FileId,
        chunk: u32,
    ) -> Result<Option<js_sys::Promise>, String>;
    /// `free()`: settle what waits on the uploader and let go of the page's callbacks.
    fn release(&self, driver: &Driver);
    /// Calls the page's S3 callback for `call` of `file`; `Err` (the message) when it threw
    /// synchronously or is missing. The promise resolves to what the callback returned.
    fn s3_call(
        &self,
        driver: &Driver,
        file: FileId,
        call: &Call,
    ) -> Result<js_sys::Promise, String>;
    /// Reads what the callback of `call` resolved to (`Ok`) or rejected with (`Err`).
    fn s3_reply(&self, call: &Call, settled: Result<JsValue, JsValue>) -> S3Reply;
    /// `persist`: the record store failed (`cause` is what it threw); called once, after which
    /// nothing is written and uploads go on.
    fn persist_warning(&self, driver: &Driver, cause: JsValue);
}

/// What an S3 callback's promise settled to, as the engine needs it.
pub(crate) enum S3Reply {
    /// For the file's own steps (and a `signPart` that failed).
    Answer(Answer),
    /// `signPart` resolved: where to `PUT` the part, with which headers.
    Signed {
        url: String,
        headers: Vec<(String, String)>,
    },
}

/// Which function-valued option a [`Sink::dynamic`] call asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dynamic {
    Query,
    Headers,
}

/// Everything one `Uploader` owns below the JS surface.
struct State {
    scheduler: Scheduler,
    /// The `File`/`Blob` of each queued file (the engine only knows sizes and names), at the
    /// index [`blob_index`] gives: found at once among thousands of files.
    blobs: Vec<Option<Blob>>,
    in_flight: VecMap<RequestId, InFlight>,
    sink: Rc<dyn Sink>,
    page_origin: Option<String>,
    timer: Option<(u64, Timeout)>,
    /// The `online`/`offline` listeners on the global object, removed on drop.
    connectivity: Option<Connectivity>,
    /// CORS hints already printed: each distinct one goes to the console once.
    logged_hints: Vec<String>,
    /// Whether the console was told that the `headers`/`query` functions' values cost a preflight.
    warned_dynamic_preflight: bool,
    /// Bumped by every `cancel()`: an `upload()` still waiting for its files to be added sees
    /// that it was cancelled meanwhile.
    cancel_generation: u32,
    /// `pause()` was called and no `resume()`/`upload()` since; an `upload()` still waiting for
    /// its files starts paused.
    paused_by_user: bool,
    /// This state itself, held while the engine has work ([`Scheduler::has_work`]): pending
    /// work keeps the uploader alive however the page holds it (or does not), and the cycle is
    /// broken as soon as it is idle, so an idle uploader the page dropped is freed.
    keep_alive: Option<Handle>,
    /// `free()` was called: everything was cancelled and released; nothing starts again.
    released: bool,
    /// `persist`: the record store, until it failed once (then `None`: nothing more is kept).
    store: Option<Store>,
    /// The file handle of the file being added, for its record's first write.
    adding_handle: JsValue,
    /// `checksum`: the reads and hashes of the chunks the engine will send next
    /// ([`Scheduler::read_ahead`]: as many as may be in flight), begun early so that they are
    /// read and hashed while earlier chunks are on the wire, and a freed slot sends at once
    /// even when several free together. At most a window of chunks: memory stays flat.
    read_ahead: Vec<(FileId, u32, js_sys::Promise)>,
    /// `checksum` + `persist`: a task is reading and hashing resumed files' kept chunks whose
    /// checksums their records lack ([`Scheduler::kept_to_hash`]), one at a time.
    hashing_kept: bool,
}

/// The shared handle every callback holds.
type Handle = Rc<RefCell<State>>;

/// Where the blob of file `id` is kept: the engine numbers files 1, 2, 3, … as they are added.
fn blob_index(id: FileId) -> Option<usize> {
    usize::try_from(id.0.checked_sub(1)?).ok()
}

impl State {
    /// The `File`/`Blob` of a queued file.
    fn blob(&self, id: FileId) -> Option<Blob> {
        self.blobs.get(blob_index(id)?)?.clone()
    }

    fn new(scheduler: Scheduler, page_origin: Option<String>, sink: Rc<dyn Sink>) -> State {
        State {
            scheduler,
            blobs: Vec::new(),
            in_flight: VecMap::default(),
            sink,
            page_origin,
            timer: None,
            connectivity: None,
            logged_hints: Vec::new(),
            warned_dynamic_preflight: false,
            cancel_generation: 0,
            paused_by_user: false,
            keep_alive: None,
            released: false,
            store: None,
            adding_handle: JsValue::UNDEFINED,
            read_ahead: Vec::new(),
            hashing_kept: false,
        }
    }
}

/// One uploader's loop, as the JS surface holds it. Every input goes in through its methods;
/// its state stays private, and the page may only read it.
#[derive(Clone)]
pub(crate) struct Driver(Handle);

impl Driver {
    /// A driver for `scheduler` whose events go to `sink`; it listens for `online`/`offline`.
    pub(crate) fn new(
        scheduler: Scheduler,
        page_origin: Option<String>,
        sink: Rc<dyn Sink>,
    ) -> Driver {
        let persist = scheduler.config().persist;
        let handle = Rc::new(RefCell::new(State::new(scheduler, page_origin, sink)));
        if persist {
            handle.borrow_mut().store = crate::transport::store::page_store();
        }
        watch_connectivity(&handle);
        Driver(handle)
    }

    /// Reads the engine (no borrow may be held across a call back into the driver).
    pub(crate) fn scheduler(&self) -> std::cell::Ref<'_, Scheduler> {
        std::cell::Ref::map(self.0.borrow(), |s| &s.scheduler)
    }

    /// The `File`/`Blob` of a queued file.
    pub(crate) fn blob(&self, id: FileId) -> Option<Blob> {
        self.0.borrow().blob(id)
    }

    /// The queued file added as `blob` (compared by identity).
    pub(crate) fn find_blob(&self, blob: &JsValue) -> Option<FileId> {
        let state = self.0.borrow();
        let found = state
            .blobs
            .iter()
            .position(|b| b.as_ref().is_some_and(|b| JsValue::from(b) == *blob));
        found.and_then(|i| Some(FileId(u32::try_from(i).ok()?.checked_add(1)?)))
    }

    /// The page's origin, as given at creation.
    pub(crate) fn page_origin(&self) -> Option<String> {
        self.0.borrow().page_origin.clone()
    }

    /// Hands `input` to the engine, then carries out what it asks for.
    pub(crate) fn input(&self, input: Input) {
        self::input(&self.0, input);
    }

    /// Queues a file: `meta` for the engine, `blob` for the requests. `generation` is the one
    /// the addition started in: a `cancel()` since cancels the file too. `added` runs once the
    /// file is queued, before anything the addition causes happens. `Ok(None)` after `free()`.
    /// `persist`: `kept` is the file's record found by [`Driver::kept_record`], `file_handle`
    /// its `FileSystemFileHandle` (or `undefined`), kept with the record when it is large.
    pub(crate) fn add_file(
        &self,
        meta: FileMeta,
        blob: Blob,
        generation: u32,
        added: impl FnOnce(FileId),
        kept: Option<Record>,
        file_handle: JsValue,
    ) -> Result<Option<FileId>, UploadError> {
        if self.0.borrow().released {
            return Ok(None);
        }
        let id = {
            let mut state = self.0.borrow_mut();
            state.adding_handle = file_handle;
            state.scheduler.add_file_kept(clock::now_ms(), meta, kept)?
        };
        if let Some(i) = blob_index(id) {
            let blobs = &mut self.0.borrow_mut().blobs;
            while blobs.len() <= i {
                blobs.push(None);
            }
            if let Some(slot) = blobs.get_mut(i) {
                *slot = Some(blob);
            }
        }
        if self.0.borrow().cancel_generation != generation {
            self.input(Input::CancelFile(id));
        }
        added(id);
        pump(&self.0);
        Ok(Some(id))
    }

    /// Removes a file and forgets its `Blob`.
    pub(crate) fn remove_file(&self, id: FileId) {
        self.input(Input::RemoveFile(id));
        let slot = blob_index(id).and_then(|i| self.0.borrow_mut().blobs.get_mut(i)?.take());
        drop(slot);
    }

    /// Applies a per-file control; whether it applied. Resuming a file lifts the queue's
    /// `pause()` for it, so an `upload()` still waiting for its files does not pause it again.
    pub(crate) fn control_file(&self, id: FileId, control: FileControl) -> bool {
        let applied = self
            .0
            .borrow_mut()
            .scheduler
            .control_file(clock::now_ms(), id, control);
        if applied && control == FileControl::Resume {
            self.0.borrow_mut().paused_by_user = false;
        }
        pump(&self.0);
        applied
    }

    /// `pause()`.
    pub(crate) fn pause(&self) {
        self.0.borrow_mut().paused_by_user = true;
        self.input(Input::Pause);
    }

    /// `resume()`.
    pub(crate) fn resume(&self) {
        self.0.borrow_mut().paused_by_user = false;
        self.input(Input::Resume);
    }

    /// `cancel()`: also cancels the files of additions still under way.
    pub(crate) fn cancel(&self) {
        {
            let mut state = self.0.borrow_mut();
            state.cancel_generation = state.cancel_generation.wrapping_add(1);
            state.paused_by_user = false;
        }
        self.input(Input::Cancel);
    }

    /// The generation additions start in (bumped by every `cancel()`).
    pub(crate) fn generation(&self) -> u32 {
        self.0.borrow().cancel_generation
    }

    /// An `upload()` call: lifts `pause()`; the generation it starts in.
    pub(crate) fn begin_upload(&self) -> u32 {
        let mut state = self.0.borrow_mut();
        state.paused_by_user = false;
        state.cancel_generation
    }

    /// Whether `cancel()` or `free()` came since `generation`.
    pub(crate) fn is_stale(&self, generation: u32) -> bool {
        let state = self.0.borrow();
        state.cancel_generation != generation || state.released
    }

    /// Starts the upload once its files are added; a `pause()` meanwhile starts it paused.
    pub(crate) fn start_upload(&self) {
        self.input(Input::Start);
        let paused = self.0.borrow().paused_by_user;
        if paused {
            self.input(Input::Pause);
        }
    }

    /// `free()` (see [`release`]).
    pub(crate) fn release(&self) {
        release(&self.0);
    }

    /// Whether records are kept (`persist`, and the store has not failed).
    pub(crate) fn persists(&self) -> bool {
        self.0.borrow().store.is_some()
    }

    /// `persist`: the kept record of the file `meta` describes (looked up by its identifier),
    /// if any. A store that fails gives `None` (and the one warning).
    pub(crate) async fn kept_record(&self, meta: &FileMeta) -> Option<Record> {
        let (store, key) = {
            let state = self.0.borrow();
            let store = state.store.clone()?;
            let s = &state.scheduler;
            (
                store,
                persist::key(&persist::scope(s.config()), &s.identifier_for(meta)),
            )
        };
        let found = self.stored(store.get(&key)).await?;
        let text = js_sys::Reflect::get_u32(&found, 0).ok()?.as_string()?;
        read_record(&self.scheduler(), &text)
    }

    /// `background`: takes every waiting file out of the queue for a Background Fetch job
    /// (see [`Scheduler::hand_over`]): `[policy, [record key, Blob, name, chunk, Request,
    /// chunk, Request, …], …]`, each `Request` the one the page would send (built as
    /// `transport::fetch` builds its own), the policy [`background::job_policy`]'s text.
    pub(crate) fn hand_over(&self) -> js_sys::Array {
        let out = js_sys::Array::of1(&background::job_policy(self.scheduler().config()).into());
        let handed = self.0.borrow_mut().scheduler.hand_over();
        for (id, key, name, specs) in handed {
            let blob = blob_index(id).and_then(|i| self.0.borrow_mut().blobs.get_mut(i)?.take());
            let job = js_sys::Array::of3(&key.into(), &blob.clone().into(), &name.into());
            for spec in &specs {
                let request = blob
                    .as_ref()
                    .and_then(|b| transport::fetch::request(&wire(spec, b, None), None).ok());
                job.push(&spec.chunk.into());
                job.push(&request.into());
            }
            out.push(&job);
        }
        pump(&self.0);
        out
    }

    /// `persist`: every kept record of this uploader's options whose file is not queued now,
    /// with its kept `Blob` or `FileSystemFileHandle` (or `undefined`).
    pub(crate) async fn pending(&self) -> Vec<(Record, JsValue)> {
        let Some(store) = self.0.borrow().store.clone() else {
            return Vec::new();
        };
        let Some(all) = self.stored(store.all()).await else {
            return Vec::new();
        };
        let state = self.0.borrow();
        let scope = persist::scope(state.scheduler.config());
        js_sys::Array::from(&all)
            .iter()
            .filter_map(|entry| {
                let text = js_sys::Reflect::get_u32(&entry, 1).ok()?.as_string()?;
                let record = read_record(&state.scheduler, &text).filter(|r| r.scope == scope)?;
                let queued = state.scheduler.find_by_identifier(&record.identifier);
                let file = js_sys::Reflect::get_u32(&entry, 2).unwrap_or(JsValue::UNDEFINED);
                queued.is_none().then_some((record, file))
            })
            .collect()
    }

    /// `persist`: deletes the kept record of `identifier` under these options (the user gave
    /// that upload up); whether the store took the deletion.
    pub(crate) async fn forget_pending(&self, identifier: &str) -> bool {
        let Some(store) = self.0.borrow().store.clone() else {
            return false;
        };
        let key = persist::key(&persist::scope(self.scheduler().config()), identifier);
        self.stored(store.del(&key)).await.is_some()
    }

    /// What the store's `promise` resolved with; `None` when it rejected (the store failed).
    async fn stored(&self, promise: js_sys::Promise) -> Option<JsValue> {
        match JsFuture::from(promise).await {
            Ok(v) => Some(v),
            Err(cause) => {
                store_failed(&self.0, cause);
                None
            }
        }
    }
}

/// A kept record's text as the engine reads it: decoded, with a background job's outcomes
/// folded in.
fn read_record(scheduler: &Scheduler, text: &str) -> Option<Record> {
    let mut record = Record::decode(text)?;
    let c = scheduler.config();
    let count = crate::engine::scheduler::kept_plan(c, &record).count();
    background::settle(&mut record, c, u32::try_from(count).unwrap_or(u32::MAX));
    Some(record)
}

/// `persist`: writes file `file`'s record (and, when it was just added, its Blob if it is
/// small enough, else its handle if it has one).
fn keep(handle: &Handle, file: FileId, added: bool) {
    let (store, key, text, kept) = {
        let mut state = handle.borrow_mut();
        let Some(store) = state.store.clone() else {
            return;
        };
        let Some(record) = state.scheduler.record(file) else {
            return;
        };
        let mut kept = JsValue::UNDEFINED;
        if added {
            let file_handle = core::mem::replace(&mut state.adding_handle, JsValue::UNDEFINED);
            kept = if persist::keeps_blob(state.scheduler.config(), record.size) {
                state.blob(file).map_or(JsValue::UNDEFINED, JsValue::from)
            } else {
                file_handle
            };
        }
        (store, record.key(), record.encode(), kept)
    };
    watch_store(handle, store.put(&key, &text, &kept));
}

/// `persist`: deletes the record under `key` (not after `free()`: the page going away is not
/// the user giving the upload up).
fn forget(handle: &Handle, key: &str) {
    let store = {
        let state = handle.borrow();
        match &state.store {
            Some(store) if !state.released => store.clone(),
            _ => return,
        }
    };
    watch_store(handle, store.del(key));
}

/// Waits for a store write; a failure is the store failing.
fn watch_store(handle: &Handle, promise: js_sys::Promise) {
    let weak = Rc::downgrade(handle);
    spawn_local(async move {
        if let Err(cause) = JsFuture::from(promise).await {
            if let Some(handle) = weak.upgrade() {
                store_failed(&handle, cause);
            }
        }
    });
}

/// The store threw (IndexedDB unavailable, `QuotaExceededError`, …): warn once, keep nothing
/// more, and delete what this uploader kept so far (best effort), so that no record a failed
/// write left behind is resumed later. Uploads go on.
fn store_failed(handle: &Handle, cause: JsValue) {
    let (store, keys) = {
        let mut state = handle.borrow_mut();
        let Some(store) = state.store.take() else {
            return;
        };
        (store, state.scheduler.record_keys())
    };
    for key in keys {
        let deleted = store.del(&key);
        spawn_local(async move {
            let _ = JsFuture::from(deleted).await;
        });
    }
    let sink = Rc::clone(&handle.borrow().sink);
    sink.persist_warning(&Driver(Rc::clone(handle)), cause);
}

/// The global `online`/`offline` listeners of one uploader.
struct Connectivity {
    target: web_sys::EventTarget,
    online: Closure<dyn FnMut()>,
    offline: Closure<dyn FnMut()>,
}

impl Drop for Connectivity {
    fn drop(&mut self) {
        let _ = self
            .target
            .remove_event_listener_with_callback("online", self.online.as_ref().unchecked_ref());
        let _ = self
            .target
            .remove_event_listener_with_callback("offline", self.offline.as_ref().unchecked_ref());
    }
}

/// Tells the engine when the browser goes offline and back online: offline pauses sending
/// without spending retries, and only `online` lets it continue. Where the global object is
/// no `EventTarget` (Node) there is nothing to listen to, and `navigator.onLine` is missing
/// too: offline is never reported, and a lost network is a network failure like any other.
fn watch_connectivity(handle: &Handle) {
    let Ok(target) = js_sys::global().dyn_into::<web_sys::EventTarget>() else {
        return;
    };
    let listener = |input_for: fn() -> Input| {
        let weak = Rc::downgrade(handle);
        Closure::<dyn FnMut()>::new(move || {
            if let Some(handle) = weak.upgrade() {
                input(&handle, input_for());
            }
        })
    };
    let online = listener(|| Input::Online);
    let offline = listener(|| Input::Offline);
    let _ = target.add_event_listener_with_callback("online", online.as_ref().unchecked_ref());
    let _ = target.add_event_listener_with_callback("offline", offline.as_ref().unchecked_ref());
    handle.borrow_mut().connectivity = Some(Connectivity {
        target,
        online,
        offline,
    });
}

/// Hands `input` to the engine, then carries out what it asks for.
fn input(handle: &Handle, input: Input) {
    handle.borrow_mut().scheduler.handle(clock::now_ms(), input);
    pump(handle);
}

/// Carries out the engine's actions until it has none, then arms the timer for its next deadline.
///
/// One action at a time: a listener that calls back in (say `cancel()` from `error`) runs a
/// nested pump, and taking actions one by one keeps them in the engine's order even then, so
/// no request the engine has since aborted is sent after the fact.
fn pump(handle: &Handle) {
    loop {
        let action = handle.borrow_mut().scheduler.poll_action();
        let Some(action) = action else { break };
        match action {
            Action::Send(spec) => start_request(handle, spec),
            Action::Abort(id) => abort(handle, id),
            Action::Check(check) => start_checks(handle, check),
            Action::Event(event) => dispatch(handle, event),
            Action::Keep { file, added } => keep(handle, file, added),
            Action::Forget { key } => forget(handle, &key),
        }
    }
    arm_timer(handle);
    keep_alive_while_busy(handle);
    hash_kept_chunks(handle);
}

/// Starts the task that reads and hashes the kept chunks the engine asks for
/// ([`Scheduler::kept_to_hash`]), unless it runs: one chunk at a time, so memory stays flat.
fn hash_kept_chunks(handle: &Handle) {
    {
        let mut state = handle.borrow_mut();
        if state.hashing_kept || state.scheduler.kept_to_hash().is_none() {
            return;
        }
        state.hashing_kept = true;
    }
    let handle = Rc::clone(handle);
    spawn_local(async move {
        loop {
            let next = {
                let state = handle.borrow();
                let algorithm = state.scheduler.config().checksum;
                state
                    .scheduler
                    .kept_to_hash()
                    .and_then(|(file, chunk, start, end)| {
                        Some((file, chunk, start, end, algorithm?, state.blob(file)?))
                    })
            };
            let Some((file, chunk, start, end, algorithm, blob)) = next else {
                break;
            };
            // The read that builds a request body too (its code is there anyway); the body
            // is dropped unsent.
            let started = transport::hash::start_hashed_read(&blob, start, end, algorithm);
            let sum = transport::hash::hashed_read(started)
                .await
                .ok()
                .map(|h| h.sum);
            handle
                .borrow_mut()
                .scheduler
                .kept_hashed(clock::now_ms(), file, chunk, sum.as_deref());
            // The flag is still set: this `pump` starts no second task.
            pump(&handle);
        }
        handle.borrow_mut().hashing_kept = false;
    });
}

/// Holds or lets go of the state's reference to itself (see [`State::keep_alive`]).
fn keep_alive_while_busy(handle: &Handle) {
    let released = {
        let mut state = handle.borrow_mut();
        // Paused, cancelled or done: the chunks read ahead are let go (read again when needed).
        if !state.scheduler.is_uploading() {
            state.read_ahead.clear();
        }
        if state.scheduler.has_work() && !state.released {
            if state.keep_alive.is_none() {
                state.keep_alive = Some(Rc::clone(handle));
            }
            None
        } else {
            state.keep_alive.take()
        }
    };
    // Dropped after the borrow ends (the caller still holds `handle`, so the state lives on).
    drop(released);
}

/// An explicit `free()`: cancels everything (so every pending `upload()` resolves, its files
/// `cancelled`), then lets go of everything that ties the uploader to the page — the global
/// `online`/`offline` listeners, timers, the app's callbacks and functions — whoever still
/// holds the state (a request being aborted, an addition waiting for an identifier).
fn release(handle: &Handle) {
    let busy = {
        let mut state = handle.borrow_mut();
        state.cancel_generation = state.cancel_generation.wrapping_add(1);
        state.paused_by_user = false;
        state.released = true;
        state.scheduler.has_work()
    };
    // An idle uploader has nothing to cancel (and no `cancel` event to fire).
    if busy {
        input(handle, Input::Cancel);
    }
    let sink = Rc::clone(&handle.borrow().sink);
    sink.release(&Driver(Rc::clone(handle)));
    let released = {
        let mut state = handle.borrow_mut();
        (
            state.connectivity.take(),
            state.timer.take(),
            state.keep_alive.take(),
            core::mem::take(&mut state.read_ahead),
        )
    };
    drop(released);
}

fn arm_timer(handle: &Handle) {
    let mut state = handle.borrow_mut();
    let deadline = state.scheduler.poll_deadline();
    match (deadline, &state.timer) {
        (None, _) => state.timer = None,
        (Some(d), Some((armed, _))) if *armed == d => {}
        (Some(d), _) => {
            let wait = d.saturating_sub(clock::now_ms());
            let weak = Rc::downgrade(handle);
            let timeout = Timeout::new(clock::timer_ms(wait), move || {
                if let Some(handle) = weak.upgrade() {
                    handle.borrow_mut().timer = None;
                    handle
                        .borrow_mut()
                        .scheduler
                        .handle_timeout(clock::now_ms());
                    pump(&handle);
                }
            });
            state.timer = Some((d, timeout));
        }
    }
}

fn abort(handle: &Handle, id: RequestId) {
    let request = handle.borrow_mut().in_flight.remove(&id);
    request.iter().flatten().for_each(Via::abort);
}

/// Asks the sink for the page's `query` or `headers` values (no borrow held while it runs).
fn dynamic(
    handle: &Handle,
    part: Dynamic,
    file: FileId,
    chunk: u32,
) -> Result<Option<Vec<(String, String)>>, String> {
    let sink = Rc::clone(&handle.borrow().sink);
    sink.dynamic(&Driver(Rc::clone(handle)), part, file, chunk)
}

/// Applies the user's `query`/`headers` functions (called without any borrow held). A function
/// that throws or returns a promise makes the request unsendable: its values are required.
fn with_dynamic_parts(handle: &Handle, spec: RequestSpec) -> Result<RequestSpec, String> {
    let query = dynamic(handle, Dynamic::Query, spec.file, spec.chunk)?;
    let headers = dynamic(handle, Dynamic::Headers, spec.file, spec.chunk)?;
    if query.is_none() && headers.is_none() {
        return Ok(spec);
    }
    let (query, headers) = (query.unwrap_or_default(), headers.unwrap_or_default());
    let spec = spec.with_dynamic(handle.borrow().scheduler.config(), &query, &headers);
    // The engine planned its warm-up without these values; at least say what they cost.
    let warn = spec.preflight.preflight && !handle.borrow().warned_dynamic_preflight;
    if warn {
        handle.borrow_mut().warned_dynamic_preflight = true;
        transport::console_warn(&format!(
            "resumable-wasm: the values from your headers/query function need a CORS preflight: {}",
            spec.preflight.reasons.join("; ")
        ));
    }
    Ok(spec)
}

/// [`with_dynamic_parts`] for request `id` about to be sent: `None` when the request is not sent
/// after all — a function failed (the request fails as unsendable) or aborted it (e.g. it
/// called `cancel()`).
fn ready_to_send(handle: &Handle, id: RequestId, spec: RequestSpec) -> Option<RequestSpec> {
    match with_dynamic_parts(handle, spec) {
        Ok(spec) => wanted(handle, id).then_some(spec),
        Err(message) => {
            fail_unsendable(handle, id, &message);
            None
        }
    }
}

fn start_request(handle: &Handle, spec: RequestSpec) {
    let id = spec.id;
    let Some(blob) = handle.borrow().blob(spec.file) else {
        // The file was removed between the engine's decision and now: the engine already forgot it.
        return;
    };
    if let Some(call) = spec.s3.clone().filter(|_| spec.checksum.is_none()) {
        return start_s3(handle, spec, call, blob, None);
    }
    let Some(via) = Via::new(spec.upload_listener) else {
        return fail_unsendable(handle, id, "no AbortController in this browser");
    };
    // Registered before any user code runs, so an abort from inside that code is seen.
    handle.borrow_mut().in_flight.insert(id, vec![via.clone()]);
    // An S3 part here has `checksum`: it is read and hashed, then `start_s3` signs and sends
    // it; as without `checksum`, no `target` function and no `preprocess` under 's3'.
    let s3 = spec.s3.is_some();
    let spec = match if s3 {
        Ok(Some(spec))
    } else {
        retargeted(handle, spec)
    } {
        Ok(Some(spec)) => spec,
        Ok(None) => return, // aborted meanwhile (by the function, or by the engine)
        Err(message) => {
            return fail_unsendable(handle, id, &message);
        }
    };
    let preprocess = !s3 && spec.attempt == 1 && handle.borrow().scheduler.config().preprocess_fn;
    if spec.checksum.is_some() || preprocess {
        let handle = Rc::clone(handle);
        spawn_local(
            async move { run_prepared_request(&handle, spec, preprocess, blob, via).await },
        );
        return;
    }
    let Some(spec) = ready_to_send(handle, id, spec) else {
        return;
    };
    let handle = Rc::clone(handle);
    spawn_local(async move { run_request(&handle, &spec, &blob, None, via).await });
}

/// Whether request `id` is still wanted (not aborted by the engine or the user meanwhile).
fn wanted(handle: &Handle, id: RequestId) -> bool {
    handle.borrow().in_flight.get(&id).is_some()
}

/// The read and hash of `spec`'s chunk: the one begun ahead if there is one, else a new one;
/// then, soon after, [`read_ahead`].
fn hashed_read_started(
    handle: &Handle,
    blob: &Blob,
    spec: &RequestSpec,
    algorithm: Algorithm,
) -> js_sys::Promise {
    let ahead = {
        let mut state = handle.borrow_mut();
        let at = state
            .read_ahead
            .iter()
            .position(|(file, chunk, _)| *file == spec.file && *chunk == spec.chunk);
        at.map(|i| state.read_ahead.swap_remove(i).2)
    };
    let started = ahead.unwrap_or_else(|| {
        transport::hash::start_hashed_read(blob, spec.start, spec.end, algorithm)
    });
    // After the reads of the requests started with this one (their tasks run first): the
    // browser reads one blob after another, and those are needed before the ones ahead.
    let handle = Rc::clone(handle);
    spawn_local(async move { read_ahead(&handle, algorithm) });
    started
}

/// Begins reading and hashing the chunks the engine will send next
/// ([`Scheduler::read_ahead`]) and drops the reads of those it no longer will (they finish
/// unheard).
fn read_ahead(handle: &Handle, algorithm: Algorithm) {
    let upcoming = handle.borrow().scheduler.read_ahead();
    handle
        .borrow_mut()
        .read_ahead
        .retain(|(file, chunk, _)| upcoming.iter().any(|(f, c, _, _)| f == file && c == chunk));
    for (file, chunk, start, end) in upcoming {
        let (begun, blob) = {
            let state = handle.borrow();
            let begun = state
                .read_ahead
                .iter()
                .any(|(f, c, _)| *f == file && *c == chunk);
            (begun, state.blob(file))
        };
        if let (false, Some(blob)) = (begun, blob) {
            // No borrow held: slicing the page's Blob may run its code.
            let read = transport::hash::start_hashed_read(&blob, start, end, algorithm);
            handle.borrow_mut().read_ahead.push((file, chunk, read));
        }
    }
}

/// With a `target` function: the request rendered for the URL it gives (the engine keeps it,
/// for the CORS checks too); `Ok(None)` when the request was aborted meanwhile.
fn retargeted(handle: &Handle, spec: RequestSpec) -> Result<Option<RequestSpec>, String> {
    let sink = Rc::clone(&handle.borrow().sink);
    let url = sink.target(&Driver(Rc::clone(handle)), spec.file, spec.chunk)?;
    if !wanted(handle, spec.id) {
        return Ok(None);
    }
    let Some(url) = url else {
        return Ok(Some(spec));
    };
    Ok(handle.borrow_mut().scheduler.retarget(spec.id, url))
}

/// A request that waits for the page's `preprocess` promise (the chunk's first request), and
/// with `checksum` reads the chunk once, hashes it, lets the engine record the checksum and
/// render the integrity parameters, then sends the bytes it read. A file that can no longer be
/// read fails as unreadable; one whose bytes changed since an earlier read is failed by the
/// engine.
async fn run_prepared_request(
    handle: &Handle,
    spec: RequestSpec,
    preprocess: bool,
    blob: Blob,
    via: Via,
) {
    let id = spec.id;
    if preprocess {
        let sink = Rc::clone(&handle.borrow().sink);
        let waited = match sink.preprocess(&Driver(Rc::clone(handle)), spec.file, spec.chunk) {
            Ok(Some(promise)) => wasm_bindgen_futures::JsFuture::from(promise)
                .await
                .map(drop)
                .map_err(|e| format!("preprocess rejected: {}", transport::js_error_text(&e))),
            Ok(None) => Ok(()),
            Err(message) => Err(message),
        };
        if !wanted(handle, id) {
            return;
        }
        if let Err(message) = waited {
            return fail_unsendable(handle, id, &message);
        }
    }
    let Some(algorithm) = spec.checksum else {
        if let Some(spec) = ready_to_send(handle, id, spec) {
            run_request(handle, &spec, &blob, None, via).await;
        }
        return;
    };
    let started = hashed_read_started(handle, &blob, &spec, algorithm);
    let read = transport::hash::hashed_read(started).await;
    if !wanted(handle, id) {
        return;
    }
    let HashedChunk { sum, body } = match read {
        Ok(read) => read,
        Err(HashError::Failed(message)) => {
            return fail_unsendable(handle, id, &message);
        }
        Err(HashError::Unreadable) => {
            handle.borrow_mut().in_flight.remove(&id);
            let failure = Failure::Unreadable;
            return input(
                handle,
                Input::Failed {
                    request: id,
                    failure,
                },
            );
        }
    };
    let hashed = handle
        .borrow_mut()
        .scheduler
        .hashed(clock::now_ms(), id, &sum);
    let Some(mut spec) = hashed else {
        handle.borrow_mut().in_flight.remove(&id);
        return pump(handle);
    };
    if let Some(call) = spec.s3.clone() {
        // An S3 part: `signPart` gets its checksum, and the bytes hashed are the bytes sent.
        return start_s3(handle, spec, call, blob, Some(body));
    }
    if let Some(input) = spec.file_digest_of.take() {
        // 'sha256': the file's digest is the SHA-256 of the chunk digests, by WebCrypto too.
        let input = js_sys::Uint8Array::from(input.as_slice());
        match transport::hash::sha256(&input).await {
            // Pure Rust (no JS runs), so the borrow is safe to hold.
            Ok(digest) => {
                spec = spec.with_file_checksum(handle.borrow().scheduler.config(), &digest)
            }
            Err(message) => {
                return fail_unsendable(handle, id, &message);
            }
        }
        if !wanted(handle, id) {
            return;
        }
    }
    let Some(spec) = ready_to_send(handle, id, spec) else {
        return;
    };
    // A probe only carries the checksum; an upload sends the bytes that were hashed.
    let body = spec.body.carries_chunk().then_some(body);
    run_request(handle, &spec, &blob, body.as_ref(), via).await;
}

/// Sends one request and hands its outcome to the engine. `read`: the chunk as read and hashed
/// (`checksum`), sent instead of a fresh slice.
async fn run_request(
    handle: &Handle,
    spec: &RequestSpec,
    blob: &Blob,
    read: Option<&Blob>,
    via: Via,
) {
    let outcome = send(handle, spec, blob, read, via).await;
    // Gone from the map: the engine aborted it and expects no answer.
    if handle.borrow_mut().in_flight.remove(&spec.id).is_none() {
        return;
    }
    let failure = match outcome {
        Outcome::Response {
            status,
            body,
            retry_after,
            ..
        } => {
            learn_protocol(handle, spec);
            let answer = Input::Response {
                request: spec.id,
                status,
                body,
                retry_after,
            };
            return input(handle, answer);
        }
        Outcome::Timeout => Failure::Timeout,
        Outcome::Aborted => Failure::Aborted,
        Outcome::Invalid(message) => return fail_unsendable(handle, spec.id, &message),
        Outcome::NoResponse => {
            let readable = if spec.body.carries_chunk() {
                Some(transport::blob::is_readable(blob, spec.start, spec.end).await)
            } else {
                None
            };
            no_response_failure(readable, clock::is_online())
        }
    };
    input(
        handle,
        Input::Failed {
            request: spec.id,
            failure,
        },
    );
}

/// Runs one S3 request: an app callback (a file's own step), or a part — `signPart`, then the
/// `PUT` to the URL it signed, whose answer (ETag included) goes back to the engine — or a
/// chunk's form POST (`s3-post`). An abort call is sent and forgotten. `read`: with `checksum`,
/// the part's bytes as read and hashed (its checksum is in `call`), sent instead of a fresh slice.
// Not inlined: it has two callers (a part with `checksum` comes after its hash).
#[inline(never)]
fn start_s3(handle: &Handle, spec: RequestSpec, call: Call, blob: Blob, read: Option<Blob>) {
    let id = spec.id;
    let sink = Rc::clone(&handle.borrow().sink);
    let driver = Driver(Rc::clone(handle));
    if matches!(call, Call::Abort { .. } | Call::Discard { .. }) {
        if let Ok(promise) = sink.s3_call(&driver, spec.file, &call) {
            // Nobody waits for it; a rejection must not surface as unhandled.
            spawn_local(async move {
                let _ = JsFuture::from(promise).await;
            });
        }
        return;
    }
    let Some(via) = Via::new(false) else {
        return fail_unsendable(handle, id, "no AbortController in this browser");
    };
    // Registered before any user code runs, so an abort from inside that code is seen.
    handle.borrow_mut().in_flight.insert(id, vec![via.clone()]);
    // A chunk POST (`s3-post`) is built whole by the engine: no callback before it.
    let called = (!matches!(call, Call::Chunk)).then(|| sink.s3_call(&driver, spec.file, &call));
    let handle = Rc::clone(handle);
    spawn_local(async move {
        let mut part = spec;
        if let Some(called) = called {
            let settled = match called {
                Ok(promise) => JsFuture::from(promise).await,
                Err(message) => Err(JsValue::from_str(&message)),
            };
            let reply = sink.s3_reply(&call, settled);
            // Gone from the map: the engine aborted it and expects no answer.
            if !wanted(&handle, id) {
                return;
            }
            match reply {
                S3Reply::Answer(answer) => {
                    handle.borrow_mut().in_flight.remove(&id);
                    return input(
                        &handle,
                        Input::S3Answer {
                            request: id,
                            answer,
                        },
                    );
                }
                S3Reply::Signed { url, headers } => {
                    part.url = url;
                    part.headers = headers;
                }
            }
        }
        let outcome = send(&handle, &part, &blob, read.as_ref(), via).await;
        if handle.borrow_mut().in_flight.remove(&id).is_none() {
            return;
        }
        let failure = match outcome {
            Outcome::Response {
                status, body, etag, ..
            } => {
                let answer = Input::PartAnswer {
                    request: id,
                    status,
                    etag,
                    body,
                };
                return input(&handle, answer);
            }
            Outcome::NoResponse => {
                if !transport::blob::is_readable(&blob, part.start, part.end).await {
                    Failure::Unreadable
                } else if !clock::is_online() {
                    Failure::Offline
                } else {
                    // CORS or a failed connection: whether the store answers at all tells.
                    let reachable = cors_check::is_reachable(&part.url).await;
                    let unread = Input::PartUnread {
                        request: id,
                        url: part.url,
                        reachable,
                    };
                    return input(&handle, unread);
                }
            }
            Outcome::Timeout => Failure::Timeout,
            Outcome::Aborted => Failure::Aborted,
            Outcome::Invalid(message) => return fail_unsendable(&handle, id, &message),
        };
        input(
            &handle,
            Input::Failed {
                request: id,
                failure,
            },
        );
    });
}

/// Tells the engine the protocol of the target's origin, from the Resource Timing entry of a
/// chunk upload that got an answer, while the engine wants it and the browser shows it. (The
/// entry may only appear after this answer: the next one finds it, the URL being the same.)
fn learn_protocol(handle: &Handle, spec: &RequestSpec) {
    if spec.phase != Phase::Upload || !handle.borrow().scheduler.wants_protocol() {
        return;
    }
    let alpn = transport::timing::next_hop_protocol(&spec.url);
    if let Some(protocol) = alpn.as_deref().and_then(HttpProtocol::from_alpn) {
        input(handle, Input::Protocol(protocol));
    }
}

/// The browser refused to build request `id`: say why on the console, forget it (if it was
/// registered) and fail it for good.
fn fail_unsendable(handle: &Handle, id: RequestId, message: &str) {
    handle.borrow_mut().in_flight.remove(&id);
    transport::console_error(&format!(
        "resumable-wasm: cannot send the request: {message}"
    ));
    input(
        handle,
        Input::Failed {
            request: id,
            failure: Failure::Unsendable,
        },
    );
}

/// The request of `spec` for the transport: the chunk of `blob`, or `read` (as read and hashed).
fn wire<'a>(spec: &'a RequestSpec, blob: &'a Blob, read: Option<&'a Blob>) -> Wire<'a> {
    let body = match &spec.body {
        RequestBody::None => WireBody::None,
        RequestBody::Raw => WireBody::Raw,
        RequestBody::Form { fields } => WireBody::Form { fields },
        RequestBody::Multipart {
            fields,
            file_field,
            file_name,
        } => WireBody::Multipart {
            fields,
            file_field,
            file_name,
        },
    };
    Wire {
        method: &spec.method,
        url: &spec.url,
        headers: &spec.headers,
        body,
        file: blob,
        read,
        start: spec.start,
        end: spec.end,
        with_credentials: spec.with_credentials,
        timeout_ms: spec.timeout_ms,
    }
}

async fn send(
    handle: &Handle,
    spec: &RequestSpec,
    blob: &Blob,
    read: Option<&Blob>,
    via: Via,
) -> Outcome {
    let wire = wire(spec, blob, read);
    match via {
        Via::Fetch(controller) => transport::fetch::send(&wire, &controller).await,
        Via::Xhr(slot) => {
            let weak = Rc::downgrade(handle);
            let id = spec.id;
            let on_progress: Rc<dyn Fn(u64)> = Rc::new(move |sent| {
                if let Some(handle) = weak.upgrade() {
                    input(&handle, Input::BytesSent { request: id, sent });
                }
            });
            transport::xhr::send(&wire, &slot, on_progress).await
        }
    }
}

/// Runs one batch of CORS check pairs for the engine, concurrently, and hands back what each
/// showed. `cancel()` and the engine's aborts stop them like any request.
fn start_checks(handle: &Handle, check: Check) {
    let id = check.request;
    // Each pair gets its own handle: a timeout aborts only its own request.
    let vias: Option<Vec<Via>> = (0..check.pairs)
        .map(|_| Via::new(check.upload_listener))
        .collect();
    let Some(vias) = vias else {
        let observations = vec![Observation::Inconclusive; check.pairs as usize];
        return input(
            handle,
            Input::Checked {
                request: id,
                observations,
            },
        );
    };
    // Registered before any user code runs, so an abort from inside that code is seen.
    handle.borrow_mut().in_flight.insert(id, vias.clone());
    // The header names decide the shape: the checks carry the function's headers too.
    let check = match dynamic(handle, Dynamic::Headers, check.file, check.chunk) {
        // `with_dynamic_headers` is pure Rust (no JS runs), so the borrow is safe to hold.
        Ok(Some(dynamic)) => {
            check.with_dynamic_headers(handle.borrow().scheduler.config(), &dynamic)
        }
        _ => check,
    };
    if !wanted(handle, id) {
        return; // aborted by the user's function (e.g. it called cancel())
    }
    // Each pair runs as its own task; the last one to finish hands all observations over.
    let pairs = vias.len();
    let results: Rc<RefCell<Vec<Observation>>> = Rc::default();
    let check = Rc::new(check);
    for via in vias {
        let (handle, check, results) = (Rc::clone(handle), Rc::clone(&check), Rc::clone(&results));
        spawn_local(async move {
            let seen = cors_check::pair(&check, via).await;
            let done = {
                let mut results = results.borrow_mut();
                results.push(seen);
                results.len() == pairs
            };
            // Gone from the map: the engine aborted the request and expects no answer.
            if done && handle.borrow_mut().in_flight.remove(&id).is_some() {
                let observations = core::mem::take(&mut *results.borrow_mut());
                input(
                    &handle,
                    Input::Checked {
                        request: id,
                        observations,
                    },
                );
            }
        });
    }
}

/// Delivers one engine event: CORS hints and preflight warnings to the console (each hint
/// once), everything else to the sink. Events of a file removed meanwhile are dropped.
fn dispatch(handle: &Handle, event: Event) {
    let file = match &event {
        Event::FileProgress(id) => Some(*id),
        Event::ChunkSuccess { file, .. }
        | Event::FileRetry { file, .. }
        | Event::FileSuccess { file, .. } => Some(*file),
        _ => None,
    };
    if file.is_some_and(|id| !handle.borrow().scheduler.has_file(id)) {
        return;
    }
    match &event {
        Event::FileError { error, .. } => {
            if let Some(hint) = &error.hint {
                let first = {
                    let hints = &mut handle.borrow_mut().logged_hints;
                    let new = !hints.contains(hint);
                    if new {
                        hints.push(hint.clone());
                    }
                    new
                };
                if first {
                    transport::console_warn(&format!("resumable-wasm: {} — {hint}", error.message));
                }
            }
        }
        Event::PreflightWarning { reasons } => {
            return transport::console_warn(&format!(
                "resumable-wasm: these requests need a CORS preflight: {}",
                reasons.join("; ")
            ));
        }
        _ => {}
    }
    let sink = Rc::clone(&handle.borrow().sink);
    sink.event(&Driver(Rc::clone(handle)), event);
}
