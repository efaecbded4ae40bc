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

use crate::driver::Handle;

/// Adds a `FileList` or array of files to the uploader.
pub(crate) type Adder = Rc<dyn Fn(JsValue)>;

type Listener = Closure<dyn FnMut(Event)>;

/// The listeners this uploader registered, kept alive here.
pub(crate) struct Bindings {
    browse: RefCell<Vec<Listener>>,
    drops: RefCell<Vec<(EventTarget, Listener, Listener)>>,
}

impl Bindings {
    pub(crate) fn new(_handle: &Handle) -> Bindings {
        Bindings {
            browse: RefCell::default(),
            drops: RefCell::default(),
        }
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
                element.add_event_listener_with_callback("click", open.as_ref().unchecked_ref())?;
                self.browse.borrow_mut().push(open);
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
        input.add_event_listener_with_callback("change", changed.as_ref().unchecked_ref())?;
        self.browse.borrow_mut().push(changed);
        Ok(())
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
        target.add_event_listener_with_callback("dragover", over.as_ref().unchecked_ref())?;
        target.add_event_listener_with_callback("drop", dropped.as_ref().unchecked_ref())?;
        self.drops
            .borrow_mut()
            .push((target.clone(), over, dropped));
        Ok(())
    }

    /// `unAssignDrop`.
    pub(crate) fn remove_drop_target(&self, target: &EventTarget) {
        self.drops.borrow_mut().retain(|(t, over, dropped)| {
            if t != target {
                return true;
            }
            let _ =
                t.remove_event_listener_with_callback("dragover", over.as_ref().unchecked_ref());
            let _ = t.remove_event_listener_with_callback("drop", dropped.as_ref().unchecked_ref());
            false
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
