//! The `s3` option's callbacks: calling them with the arguments `@uppy/aws-s3` passes, and
//! reading what they resolve to. Nothing here signs or holds a credential: the app's server
//! does, behind these callbacks.

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;

use super::options::{get, scalar_text, string_pairs};
use crate::driver::S3Reply;
use crate::engine::preflight::find_str;
use crate::engine::s3::{Answer, Call, Part};
use crate::transport::js_error_text;

#[wasm_bindgen]
extern "C" {
    /// The platform's base64 encoder of a binary string (windows, workers, Node 16+). It throws
    /// only for a character above U+00FF, which a string made of bytes never has.
    #[wasm_bindgen(catch)]
    fn btoa(binary: &str) -> Result<String, JsValue>;
}

/// Sets `key` of `obj` (a fresh plain object: setting cannot fail).
fn set(obj: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(obj, &JsValue::from_str(key), value);
}

/// `{ uploadId, key }`.
fn upload_ref(upload_id: &str, key: &str) -> Object {
    let o = Object::new();
    set(&o, "uploadId", &JsValue::from_str(upload_id));
    set(&o, "key", &JsValue::from_str(key));
    o
}

/// `[{ PartNumber, ETag, Size }]`, S3's own field names (as `@uppy/aws-s3` uses them).
fn parts_array(parts: &[Part]) -> Array {
    parts
        .iter()
        .map(|p| {
            let o = Object::new();
            set(&o, "PartNumber", &JsValue::from(p.number));
            set(&o, "ETag", &JsValue::from_str(&p.etag));
            #[allow(clippy::cast_precision_loss)]
            set(&o, "Size", &JsValue::from(p.size as f64));
            JsValue::from(o)
        })
        .collect()
}

/// `{ keyPrefix }` (`s3-post`).
fn prefix_ref(key_prefix: &str) -> Object {
    let o = Object::new();
    set(&o, "keyPrefix", &JsValue::from_str(key_prefix));
    o
}

/// Calls the callback of `call` from the `s3` option with `file` (the `File`/`Blob` the app
/// added) and the call's object (`complete` of `s3-post` also gets the chunk numbers); a plain
/// value becomes a resolved promise.
pub(crate) fn call(s3: &JsValue, file: &JsValue, call: &Call) -> Result<Promise, String> {
    let name = call.callback();
    let f = get(s3, name)
        .dyn_into::<Function>()
        .map_err(|_| format!("s3.{name} is not a function"))?;
    let mut third = None;
    let arg = match call {
        Call::Create | Call::Chunk => None,
        Call::Policy {
            chunk_size,
            key_prefix,
        } => {
            let o = Object::new();
            #[allow(clippy::cast_precision_loss)]
            set(&o, "chunkSize", &JsValue::from(*chunk_size as f64));
            if let Some(k) = key_prefix {
                set(&o, "keyPrefix", &JsValue::from_str(k));
            }
            Some(o)
        }
        Call::ListChunks { key_prefix } | Call::Discard { key_prefix } => {
            Some(prefix_ref(key_prefix))
        }
        Call::Compose { key_prefix, chunks } => {
            third = Some(chunks.iter().map(|n| JsValue::from(*n)).collect::<Array>());
            Some(prefix_ref(key_prefix))
        }
        Call::ListParts { upload_id, key } | Call::Abort { upload_id, key } => {
            Some(upload_ref(upload_id, key))
        }
        Call::Upload { size } => {
            let o = Object::new();
            #[allow(clippy::cast_precision_loss)]
            set(&o, "size", &JsValue::from(*size as f64));
            Some(o)
        }
        Call::Part {
            upload_id,
            key,
            part_number,
            size,
            checksum,
        } => {
            let o = upload_ref(upload_id, key);
            set(&o, "partNumber", &JsValue::from(*part_number));
            #[allow(clippy::cast_precision_loss)]
            set(&o, "size", &JsValue::from(*size as f64));
            if let Some(c) = checksum {
                // S3's form of a checksum: base64 of its bytes, by the platform's own encoder.
                let binary: String = c.iter().copied().map(char::from).collect();
                set(
                    &o,
                    "checksum",
                    &JsValue::from(btoa(&binary).unwrap_or_default()),
                );
            }
            Some(o)
        }
        Call::Complete {
            upload_id,
            key,
            parts,
        } => {
            let o = upload_ref(upload_id, key);
            set(&o, "parts", &parts_array(parts));
            Some(o)
        }
    };
    let value = match (arg, third) {
        (Some(arg), Some(third)) => f.call3(&JsValue::NULL, file, &arg, &third),
        (Some(arg), None) => f.call2(&JsValue::NULL, file, &arg),
        _ => f.call1(&JsValue::NULL, file),
    }
    .map_err(|e| format!("threw: {}", js_error_text(&e)))?;
    Ok(Promise::resolve(&value))
}

/// A string property of `v`.
fn text(v: &JsValue, key: &str) -> Option<String> {
    get(v, key).as_string()
}

/// Whether a rejection says the store no longer knows the upload (`NoSuchUpload` as its
/// `code`, `name` or in its message).
fn is_no_such_upload(e: &JsValue) -> bool {
    let has = |t: &str| find_str(t, "NoSuchUpload").is_some();
    let said = |key: &str| text(e, key).is_some_and(|t| has(&t));
    said("code") || said("name") || said("error") || has(&js_error_text(e))
}

/// Reads what the callback of `call` settled to.
pub(crate) fn reply(call: &Call, settled: Result<JsValue, JsValue>) -> S3Reply {
    let name = call.callback();
    let failed = |m: String| S3Reply::Answer(Answer::Failed(m));
    let value = match settled {
        Ok(v) => v,
        Err(e) if matches!(call, Call::ListParts { .. }) && is_no_such_upload(&e) => {
            return S3Reply::Answer(Answer::UploadGone)
        }
        Err(e) => return failed(format!("rejected: {}", js_error_text(&e))),
    };
    match call {
        Call::Create => match (text(&value, "uploadId"), text(&value, "key")) {
            (Some(upload_id), Some(key)) if !upload_id.is_empty() => {
                S3Reply::Answer(Answer::Created { upload_id, key })
            }
            _ => failed(format!(
                "{name} must resolve to {{ uploadId, key }} (strings)"
            )),
        },
        Call::ListParts { .. } if value.is_null() => S3Reply::Answer(Answer::UploadGone),
        Call::ListParts { .. } => {
            if !Array::is_array(&value) {
                return failed(format!(
                    "{name} must resolve to an array of {{ PartNumber, ETag, Size }}"
                ));
            }
            let mut parts = Vec::new();
            for item in Array::from(&value).iter() {
                let number = get(&item, "PartNumber").as_f64();
                let etag = text(&item, "ETag");
                let size = get(&item, "Size").as_f64();
                match (number, etag, size) {
                    (Some(n), Some(etag), Some(size))
                        if (1.0..=10_000.0).contains(&n) && n.fract() == 0.0 && size >= 0.0 =>
                    {
                        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                        parts.push(Part {
                            number: n as u32,
                            etag,
                            size: size as u64,
                        });
                    }
                    _ => {
                        return failed(format!(
                        "{name} gave a part without a PartNumber (1 to 10000), an ETag or a Size"
                    ))
                    }
                }
            }
            S3Reply::Answer(Answer::Listed(parts))
        }
        Call::Part { .. } | Call::Upload { .. } => {
            let Some(url) = text(&value, "url").filter(|u| !u.is_empty()) else {
                return failed(format!("{name} must resolve to {{ url, headers? }}"));
            };
            let headers = match string_pairs(&get(&value, "headers")) {
                Ok(h) => h,
                Err(e) => return failed(format!("{name}'s headers threw when read: {e}")),
            };
            S3Reply::Signed { url, headers }
        }
        Call::Policy { .. } => match (
            text(&value, "url").filter(|u| !u.is_empty()),
            text(&value, "keyPrefix"),
            string_pairs(&get(&value, "fields")),
        ) {
            (Some(url), Some(key_prefix), Ok(fields)) => S3Reply::Answer(Answer::Policy {
                url,
                fields,
                key_prefix,
            }),
            _ => failed("createUpload must resolve to { url, fields, keyPrefix }".to_owned()),
        },
        // Numbers that are not chunks of the file are ignored by the engine.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Call::ListChunks { .. } if Array::is_array(&value) => S3Reply::Answer(Answer::Chunks(
            Array::from(&value)
                .iter()
                .filter_map(|v| v.as_f64())
                .map(|n| n as u32)
                .collect(),
        )),
        Call::ListChunks { .. } => {
            failed("listChunks must resolve to an array of chunk numbers".to_owned())
        }
        Call::Complete { .. } | Call::Compose { .. } => S3Reply::Answer(Answer::Completed {
            location: scalar_text(&get(&value, "location")),
        }),
        Call::Abort { .. } | Call::Discard { .. } | Call::Chunk => {
            S3Reply::Answer(Answer::Completed { location: None })
        }
    }
}
