//! DOM bindings: a file picker on an element (`assignBrowse`) and drop targets (`assignDrop`).
//! The listeners live as long as the `Uploader`; `unAssignDrop` removes a drop target's.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use web_sys::{DragEvent, Event, EventTarget, HtmlElement, HtmlInputElement};

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
            if let Some(files) = ev
                .dyn_ref::<DragEvent>()
                .and_then(DragEvent::data_transfer)
                .and_then(|d| d.files())
            {
                add(files.into());
            }
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
