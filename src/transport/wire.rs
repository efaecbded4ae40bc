//! The request the transport sends, built by the driver from an engine `RequestSpec`, and the
//! body construction both transports share.

use wasm_bindgen::JsValue;
use web_sys::{Blob, FormData};

/// How the chunk travels.
pub(crate) enum WireBody<'a> {
    /// No body (a probe GET).
    None,
    /// `FormData`: the protocol fields, then the untyped slice as `file_field`.
    Multipart {
        fields: &'a [(String, String)],
        file_field: &'a str,
        file_name: &'a str,
    },
    /// `FormData` of text fields only, no chunk (a Flow probe with a non-GET `testMethod`).
    Form { fields: &'a [(String, String)] },
    /// The untyped slice itself, with no `Content-Type` (octet mode).
    Raw,
}

/// One request, as the transport needs it.
pub(crate) struct Wire<'a> {
    pub(crate) method: &'a str,
    pub(crate) url: &'a str,
    pub(crate) headers: &'a [(String, String)],
    pub(crate) body: WireBody<'a>,
    pub(crate) file: &'a Blob,
    /// The chunk as read and hashed (`checksum`): sent instead of a fresh slice of `file`.
    pub(crate) read: Option<&'a Blob>,
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) with_credentials: bool,
    pub(crate) timeout_ms: Option<u64>,
}

impl Wire<'_> {
    /// The body as a JS value: `undefined`, a `FormData` or an untyped `Blob` slice.
    pub(crate) fn body_value(&self) -> Result<JsValue, String> {
        match self.body {
            WireBody::None => Ok(JsValue::UNDEFINED),
            WireBody::Raw => Ok(self.chunk()?.into()),
            WireBody::Form { fields } => Ok(text_form(fields)?.into()),
            WireBody::Multipart {
                fields,
                file_field,
                file_name,
            } => {
                let form = text_form(fields)?;
                let slice = self.chunk()?;
                form.append_with_blob_and_filename(file_field, &slice, file_name)
                    .map_err(|e| super::js_error_text(&e))?;
                Ok(form.into())
            }
        }
    }
}

impl Wire<'_> {
    /// The chunk's bytes: as read and hashed, else a fresh untyped slice of the file.
    fn chunk(&self) -> Result<Blob, String> {
        match self.read {
            Some(read) => Ok(read.clone()),
            None => super::blob::untyped_slice(self.file, self.start, self.end),
        }
    }
}

/// A `FormData` holding `fields` in order.
fn text_form(fields: &[(String, String)]) -> Result<FormData, String> {
    let form = FormData::new().map_err(|e| super::js_error_text(&e))?;
    for (name, value) in fields {
        form.append_with_str(name, value)
            .map_err(|e| super::js_error_text(&e))?;
    }
    Ok(form)
}
