//! DOM bindings: a file picker on an element (`assignBrowse`) and drop targets (`assignDrop`).
//! The listeners live as long as the `Uploader`; `unAssignDrop` removes a drop target's.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    DragEvent, Event, EventTarget, FileSystemDirectoryEntry, FileSystemDirectoryReader,
    FileSystemEntry, FileSystemFileEntry, HtmlElement, HtmlInputElement,
};

/// Adds a `FileList` or array of files to the uploader.
pub(crate) type Adder = Rc<dyn Fn(JsValue)>;

type Listener = Closure<dyn FnMut(Event)>;

/// One listener this uploader registered: where, for which event, and the closure.
struct Registration {
    target: EventTarget,
    event: &'static str,
    listener: Listener,
}

impl Registration {
    fn remove(&self) {
        let _ = self.target.remove_event_listener_with_callback(
            self.event,
            self.listener.as_ref().unchecked_ref(),
        );
    }
}

/// The listeners this uploader registered (kept alive here) and the hidden inputs it created;
/// both are removed when the uploader is freed.
#[derive(Default)]
pub(crate) struct Bindings {
    registrations: RefCell<Vec<Registration>>,
    hidden_inputs: RefCell<Vec<HtmlInputElement>>,
}

impl Drop for Bindings {
    fn drop(&mut self) {
        for r in self.registrations.get_mut().drain(..) {
            r.remove();
        }
        for input in self.hidden_inputs.get_mut().drain(..) {
            input.remove();
        }
    }
}

impl Bindings {
    fn listen(
        &self,
        target: &EventTarget,
        event: &'static str,
        listener: Listener,
    ) -> Result<(), JsValue> {
        target.add_event_listener_with_callback(event, listener.as_ref().unchecked_ref())?;
        self.registrations.borrow_mut().push(Registration {
            target: target.clone(),
            event,
            listener,
        });
        Ok(())
    }

    /// `assignBrowse`: an `<input type=file>` is used as is; any other element opens a hidden one.
    pub(crate) fn browse(
        &self,
        element: &HtmlElement,
        options: &JsValue,
        add: Adder,
    ) -> Result<(), JsValue> {
        let directory = super::options::get(options, "directory")
            .as_bool()
            .unwrap_or(false);
        let accept = super::options::get(options, "accept").as_string();
        let input: HtmlInputElement = match element.clone().dyn_into::<HtmlInputElement>() {
            Ok(input) if input.type_() == "file" => input,
            _ => {
                let document = web_sys::window()
                    .and_then(|w| w.document())
                    .ok_or_else(|| {
                        super::error::invalid("assignBrowse", "assignBrowse needs a document")
                    })?;
                let input: HtmlInputElement = document.create_element("input")?.dyn_into()?;
                input.set_type("file");
                input.set_attribute("hidden", "")?;
                element.append_child(&input)?;
                self.hidden_inputs.borrow_mut().push(input.clone());
                let target = input.clone();
                let open: Listener = Closure::new(move |ev: Event| {
                    // Clicks on the hidden input itself bubble up here; don't reopen for them.
                    let from_input = ev
                        .target()
                        .is_some_and(|t| JsValue::from(t) == JsValue::from(&target));
                    if !from_input {
                        target.click();
                    }
                });
                self.listen(element, "click", open)?;
                input
            }
        };
        input.set_multiple(true);
        if directory {
            input.set_attribute("webkitdirectory", "")?;
        }
        if let Some(accept) = accept {
            input.set_accept(&accept);
        }
        let source = input.clone();
        let changed: Listener = Closure::new(move |_ev: Event| {
            if let Some(files) = source.files() {
                add(files.into());
            }
            // Allow choosing the same file again.
            source.set_value("");
        });
        self.listen(&input, "change", changed)
    }

    /// `assignDrop`: accept drags over `target` and add the dropped files.
    pub(crate) fn drop_target(&self, target: &EventTarget, add: Adder) -> Result<(), JsValue> {
        let over: Listener = Closure::new(move |ev: Event| ev.prevent_default());
        let dropped: Listener = Closure::new(move |ev: Event| {
            ev.prevent_default();
            let Some(transfer) = ev.dyn_ref::<DragEvent>().and_then(DragEvent::data_transfer)
            else {
                return;
            };
            // Entries must be taken during the event: the DataTransfer is emptied after it.
            let items = transfer.items();
            let entries: Vec<FileSystemEntry> = (0..items.length())
                .filter_map(|i| items.get(i))
                .filter(|item| item.kind() == "file")
                .filter_map(|item| item.webkit_get_as_entry().ok().flatten())
                .collect();
            if entries.is_empty() {
                // No entry API: plain files only.
                if let Some(files) = transfer.files() {
                    add(files.into());
                }
                return;
            }
            let add = Rc::clone(&add);
            wasm_bindgen_futures::spawn_local(async move {
                add(walk(entries).await.into());
            });
        });
        self.listen(target, "dragover", over)?;
        self.listen(target, "drop", dropped)
    }

    /// `unAssignDrop`.
    pub(crate) fn remove_drop_target(&self, target: &EventTarget) {
        self.registrations.borrow_mut().retain(|r| {
            let ours = &r.target == target && matches!(r.event, "dragover" | "drop");
            if ours {
                r.remove();
            }
            !ours
        });
    }
}

/// Runs a callback-style API as a promise: `call(resolve, reject)`.
async fn callback_result(call: impl FnOnce(&Function, &Function)) -> Result<JsValue, JsValue> {
    let mut call = Some(call);
    let promise = Promise::new(&mut |resolve, reject| {
        if let Some(call) = call.take() {
            call(&resolve, &reject);
        }
    });
    JsFuture::from(promise).await
}

/// One batch of a directory reader (empty when the directory is exhausted).
async fn read_batch(reader: &FileSystemDirectoryReader) -> Vec<FileSystemEntry> {
    let batch = callback_result(|ok, err| {
        let _ = reader.read_entries_with_callback_and_callback(ok, err);
    })
    .await;
    batch
        .map(|b| Array::from(&b).iter().map(JsCast::unchecked_into).collect())
        .unwrap_or_default()
}

/// Every file under the dropped entries, each wrapped as `{ file, relativePath }` so the path
/// inside the dropped folder reaches the protocol's `relativePath`. Unreadable entries are skipped.
async fn walk(roots: Vec<FileSystemEntry>) -> Array {
    let out = Array::new();
    let mut stack = roots;
    while let Some(entry) = stack.pop() {
        if entry.is_directory() {
            let reader = entry
                .unchecked_ref::<FileSystemDirectoryEntry>()
                .create_reader();
            loop {
                let batch = read_batch(&reader).await;
                if batch.is_empty() {
                    break;
                }
                stack.extend(batch);
            }
        } else if entry.is_file() {
            let file_entry = entry.unchecked_ref::<FileSystemFileEntry>();
            let file =
                callback_result(|ok, err| file_entry.file_with_callback_and_callback(ok, err))
                    .await;
            if let Ok(file) = file {
                let item = Object::new();
                let _ = Reflect::set(&item, &"file".into(), &file);
                let path = entry.full_path();
                let _ = Reflect::set(
                    &item,
                    &"relativePath".into(),
                    &path.trim_start_matches('/').into(),
                );
                out.push(&item);
            }
        }
    }
    out
}
