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

use js_sys::Function;
use wasm_bindgen::prelude::*;
use web_sys::Blob;

use crate::api::events::Listeners;
use crate::engine::text::{cat, joined};
use crate::engine::{
    Action, Check, Event, Failure, FileId, Input, Observation, RequestBody, RequestId, RequestSpec,
    Scheduler, VecMap,
};
use crate::transport::wire::{Wire, WireBody};
use crate::transport::{self, clock, cors_check, Outcome, Via};
use gloo_timers::callback::Timeout;
use wasm_bindgen_futures::spawn_local;

/// How to abort what runs for one request: the request itself, or its batch of CORS checks.
type InFlight = Vec<Via>;

/// When the browser says it is offline, the queue waits for its `online` event; if that never
/// comes (`navigator.onLine` is only a hint), it tries again after this long anyway.
const OFFLINE_RECHECK_MS: u32 = 30_000;

/// Everything one `Uploader` owns.
pub(crate) struct State {
    pub(crate) scheduler: Scheduler,
    /// The `File`/`Blob` of each queued file; the engine only knows sizes and names.
    pub(crate) blobs: VecMap<FileId, Blob>,
    in_flight: VecMap<RequestId, InFlight>,
    pub(crate) listeners: Listeners,
    /// `resolve` functions of `upload()` promises waiting for the queue to drain.
    pub(crate) waiters: Vec<Function>,
    pub(crate) query_fn: Option<Function>,
    pub(crate) headers_fn: Option<Function>,
    pub(crate) page_origin: Option<String>,
    timer: Option<(u64, Timeout)>,
    /// The `online`/`offline` listeners on the global object, removed on drop.
    connectivity: Option<Connectivity>,
    /// CORS hints already printed: each distinct one goes to the console once.
    logged_hints: Vec<String>,
    /// Whether the console was told that the `headers`/`query` functions' values cost a preflight.
    warned_dynamic_preflight: bool,
    /// Retries the queue after [`OFFLINE_RECHECK_MS`] when no `online` event comes.
    offline_recheck: Option<Timeout>,
    /// Bumped by every `cancel()`: an `upload()` still waiting for its files to be added sees
    /// that it was cancelled meanwhile.
    pub(crate) cancel_generation: u32,
    /// `pause()` was called and no `resume()`/`upload()` since; an `upload()` still waiting for
    /// its files starts paused.
    pub(crate) paused_by_user: bool,
    /// This state itself, held while the engine has work ([`Scheduler::has_work`]): pending
    /// work keeps the uploader alive however the page holds it (or does not), and the cycle is
    /// broken as soon as it is idle, so an idle uploader the page dropped is freed.
    keep_alive: Option<Handle>,
    /// `free()` was called: everything was cancelled and released; nothing starts again.
    pub(crate) released: bool,
}

/// The shared handle every callback holds.
pub(crate) type Handle = Rc<RefCell<State>>;

impl State {
    pub(crate) fn new(scheduler: Scheduler, page_origin: Option<String>) -> State {
        State {
            scheduler,
            blobs: VecMap::default(),
            in_flight: VecMap::default(),
            listeners: Listeners::default(),
            waiters: Vec::new(),
            query_fn: None,
            headers_fn: None,
            page_origin,
            timer: None,
            connectivity: None,
            logged_hints: Vec::new(),
            warned_dynamic_preflight: false,
            offline_recheck: None,
            cancel_generation: 0,
            paused_by_user: false,
            keep_alive: None,
            released: false,
        }
    }
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
/// without spending retries, and only `online` lets it continue.
pub(crate) fn watch_connectivity(handle: &Handle) {
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
pub(crate) fn input(handle: &Handle, input: Input) {
    handle.borrow_mut().scheduler.handle(clock::now_ms(), input);
    pump(handle);
}

/// Carries out the engine's actions until it has none, then arms the timer for its next deadline.
///
/// One action at a time: a listener that calls back in (say `cancel()` from `error`) runs a
/// nested pump, and taking actions one by one keeps them in the engine's order even then, so
/// no request the engine has since aborted is sent after the fact.
pub(crate) fn pump(handle: &Handle) {
    loop {
        let action = handle.borrow_mut().scheduler.poll_action();
        let Some(action) = action else { break };
        match action {
            Action::Send(spec) => start_request(handle, spec),
            Action::Abort(id) => abort(handle, id),
            Action::Check(check) => start_checks(handle, check),
            Action::Event(event) => dispatch(handle, event),
        }
    }
    arm_timer(handle);
    keep_alive_while_busy(handle);
}

/// Holds or lets go of the state's reference to itself (see [`State::keep_alive`]).
fn keep_alive_while_busy(handle: &Handle) {
    let released = {
        let mut state = handle.borrow_mut();
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
pub(crate) fn release(handle: &Handle) {
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
    let waiters = core::mem::take(&mut handle.borrow_mut().waiters);
    if !waiters.is_empty() {
        let result = crate::api::events::summary(handle);
        for resolve in waiters {
            let _ = resolve.call1(&JsValue::NULL, &result);
        }
    }
    let released = {
        let mut state = handle.borrow_mut();
        (
            state.connectivity.take(),
            state.timer.take(),
            state.offline_recheck.take(),
            core::mem::take(&mut state.listeners),
            state.query_fn.take(),
            state.headers_fn.take(),
            state.keep_alive.take(),
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

/// Calls the user's `query` or `headers` function `f` (named `option`) for a chunk, without any
/// borrow held; its answer as name/value pairs (none without a function).
fn call_option_fn(
    handle: &Handle,
    f: Option<&Function>,
    option: &str,
    file: FileId,
    chunk: u32,
) -> Result<Vec<(String, String)>, String> {
    let Some(f) = f else { return Ok(Vec::new()) };
    let snapshot = crate::api::file_snapshot(handle, file);
    let value = f
        .call2(&JsValue::NULL, &snapshot, &JsValue::from(chunk))
        .map_err(|e| cat(&[option, " function threw: ", &transport::js_error_text(&e)]))?;
    if value.has_type::<js_sys::Promise>() {
        return Err(cat(&[
            option,
            " function returned a Promise; it must return an object",
        ]));
    }
    crate::api::options::string_pairs(&value).map_err(|e| {
        cat(&[
            option,
            " function returned an object that threw when read: ",
            &e,
        ])
    })
}

/// Applies the user's `query`/`headers` functions (called without any borrow held). A function
/// that throws or returns a promise makes the request unsendable: its values are required.
fn with_dynamic_parts(handle: &Handle, spec: RequestSpec) -> Result<RequestSpec, String> {
    let (query_fn, headers_fn) = {
        let state = handle.borrow();
        (state.query_fn.clone(), state.headers_fn.clone())
    };
    if query_fn.is_none() && headers_fn.is_none() {
        return Ok(spec);
    }
    let query = call_option_fn(handle, query_fn.as_ref(), "query", spec.file, spec.chunk)?;
    let headers = call_option_fn(
        handle,
        headers_fn.as_ref(),
        "headers",
        spec.file,
        spec.chunk,
    )?;
    let spec = spec.with_dynamic(handle.borrow().scheduler.config(), &query, &headers);
    // The engine planned its warm-up without these values; at least say what they cost.
    let warn = spec.preflight.preflight && !handle.borrow().warned_dynamic_preflight;
    if warn {
        handle.borrow_mut().warned_dynamic_preflight = true;
        transport::console_warn(&joined(
            "resumable-wasm: the values from your headers/query function need a CORS preflight: ",
            &spec.preflight.reasons,
            "; ",
        ));
    }
    Ok(spec)
}

fn start_request(handle: &Handle, spec: RequestSpec) {
    let id = spec.id;
    let Some(blob) = handle.borrow().blobs.get(&spec.file).cloned() else {
        // The file was removed between the engine's decision and now: the engine already forgot it.
        return;
    };
    let Some(via) = Via::new(spec.upload_listener) else {
        return fail_unsendable(handle, id, "no AbortController in this browser");
    };
    // Registered before any user code runs, so an abort from inside that code is seen.
    handle.borrow_mut().in_flight.insert(id, vec![via.clone()]);
    let spec = match with_dynamic_parts(handle, spec) {
        Ok(spec) => spec,
        Err(message) => {
            handle.borrow_mut().in_flight.remove(&id);
            return fail_unsendable(handle, id, &message);
        }
    };
    if handle.borrow().in_flight.get(&id).is_none() {
        return; // aborted by the user's function (e.g. it called cancel())
    }
    let handle = Rc::clone(handle);
    spawn_local(async move { run_request(&handle, &spec, &blob, via).await });
}

/// Sends one request and hands its outcome to the engine.
async fn run_request(handle: &Handle, spec: &RequestSpec, blob: &Blob, via: Via) {
    let outcome = send(handle, spec, blob, via).await;
    // Gone from the map: the engine aborted it and expects no answer.
    if handle.borrow_mut().in_flight.remove(&spec.id).is_none() {
        return;
    }
    let failure = match outcome {
        Outcome::Response {
            status,
            body,
            retry_after,
        } => {
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
        Outcome::NoResponse => no_response(spec, blob).await,
    };
    if failure == Failure::Offline {
        recheck_when_offline_too_long(handle);
    }
    input(
        handle,
        Input::Failed {
            request: spec.id,
            failure,
        },
    );
}

/// The browser refused to build request `id`: say why on the console, fail it for good.
fn fail_unsendable(handle: &Handle, id: RequestId, message: &str) {
    transport::console_error(&cat(&[
        "resumable-wasm: cannot send the request: ",
        message,
    ]));
    input(
        handle,
        Input::Failed {
            request: id,
            failure: Failure::Unsendable,
        },
    );
}

/// Arms the fallback that resumes an offline queue without an `online` event.
fn recheck_when_offline_too_long(handle: &Handle) {
    let weak = Rc::downgrade(handle);
    let timer = Timeout::new(OFFLINE_RECHECK_MS, move || {
        if let Some(handle) = weak.upgrade() {
            handle.borrow_mut().offline_recheck = None;
            input(&handle, Input::Online);
        }
    });
    handle.borrow_mut().offline_recheck = Some(timer);
}

async fn send(handle: &Handle, spec: &RequestSpec, blob: &Blob, via: Via) -> Outcome {
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
    let wire = Wire {
        method: &spec.method,
        url: &spec.url,
        headers: &spec.headers,
        body,
        file: blob,
        start: spec.start,
        end: spec.end,
        with_credentials: spec.with_credentials,
        timeout_ms: spec.timeout_ms,
    };
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

/// A request got no response: what only the browser can tell about it (an unreadable file,
/// offline). Whether it was CORS is the engine's to find out, with checks.
async fn no_response(spec: &RequestSpec, file: &Blob) -> Failure {
    if !matches!(spec.body, RequestBody::None | RequestBody::Form { .. })
        && !transport::blob::is_readable(file, spec.start, spec.end).await
    {
        return Failure::Unreadable;
    }
    if !clock::is_online() {
        return Failure::Offline;
    }
    Failure::NoResponse
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
    let headers_fn = handle.borrow().headers_fn.clone();
    // The header names decide the shape: the checks carry the function's headers too.
    let check = match call_option_fn(
        handle,
        headers_fn.as_ref(),
        "headers",
        check.file,
        check.chunk,
    ) {
        Ok(dynamic) if headers_fn.is_some() => {
            let config = handle.borrow().scheduler.config().clone();
            check.with_dynamic_headers(&config, &dynamic)
        }
        _ => check,
    };
    if handle.borrow().in_flight.get(&id).is_none() {
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

/// Delivers one engine event to the page: listeners, console, and `upload()` promises.
fn dispatch(handle: &Handle, event: Event) {
    use crate::api::events::{emit, summary};
    // Events of a file removed meanwhile have no `UploadFile` to carry: drop them.
    let file = match &event {
        Event::FileProgress(id) => Some(*id),
        Event::ChunkSuccess { file, .. }
        | Event::FileRetry { file, .. }
        | Event::FileSuccess { file, .. } => Some(*file),
        _ => None,
    };
    if file.is_some_and(|id| handle.borrow().scheduler.file(id).is_none()) {
        return;
    }
    match event {
        Event::UploadStart => emit(handle, "uploadStart", &[]),
        Event::FileProgress(id) => emit(
            handle,
            "fileProgress",
            &[crate::api::file_snapshot(handle, id)],
        ),
        Event::Progress => {
            let p = handle.borrow().scheduler.progress();
            emit(handle, "progress", &[JsValue::from(p)]);
        }
        Event::ChunkSuccess { file, chunk, body } => emit(
            handle,
            "chunkSuccess",
            &[
                crate::api::file_snapshot(handle, file),
                chunk.into(),
                body.into(),
            ],
        ),
        Event::FileRetry {
            file,
            error,
            delay_ms,
            ..
        } => {
            #[allow(clippy::cast_precision_loss)]
            let delay = delay_ms as f64;
            emit(
                handle,
                "fileRetry",
                &[
                    crate::api::file_snapshot(handle, file),
                    crate::api::error::to_js(&error),
                    delay.into(),
                ],
            );
        }
        Event::FileSuccess { file, body } => {
            emit(
                handle,
                "fileSuccess",
                &[crate::api::file_snapshot(handle, file), body.into()],
            );
        }
        Event::FileError { file, error } => {
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
                    transport::console_warn(&cat(&[
                        "resumable-wasm: ",
                        &error.message,
                        " — ",
                        hint,
                    ]));
                }
            }
            let snapshot = crate::api::file_snapshot(handle, file);
            let js_error = crate::api::error::to_js(&error);
            emit(handle, "fileError", &[snapshot.clone(), js_error.clone()]);
            emit(handle, "error", &[js_error, snapshot]);
        }
        Event::Complete => {
            emit(handle, "complete", &[]);
            let waiters = core::mem::take(&mut handle.borrow_mut().waiters);
            if !waiters.is_empty() {
                let result = summary(handle);
                for resolve in waiters {
                    let _ = resolve.call1(&JsValue::NULL, &result);
                }
            }
        }
        Event::Pause => emit(handle, "pause", &[]),
        Event::Cancel => emit(handle, "cancel", &[]),
        Event::PreflightWarning { reasons } => transport::console_warn(&joined(
            "resumable-wasm: these requests need a CORS preflight: ",
            &reasons,
            "; ",
        )),
    }
}
