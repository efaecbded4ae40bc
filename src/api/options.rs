//! Reading the user's option object: JS values → `engine::OptionValue`. Every check and every
//! message lives in `engine::config`; this file only describes what JS handed over. The option
//! functions (`query`, `headers`, `generateUniqueIdentifier`) are kept here as JS functions.

use js_sys::{Array, Reflect};
use wasm_bindgen::prelude::*;

use crate::engine::OptionValue;
use crate::transport::js_error_text;

#[wasm_bindgen]
extern "C" {
    // The catching forms: the page's values may be proxies or have getters that throw, and a
    // JS exception must become an UploadError, not unwind through the wasm.
    #[wasm_bindgen(catch, js_namespace = Object, js_name = keys)]
    fn object_keys(value: &JsValue) -> Result<Array, JsValue>;
    #[wasm_bindgen(catch, js_namespace = Object, js_name = entries)]
    fn object_entries(value: &JsValue) -> Result<Array, JsValue>;
    #[wasm_bindgen(catch, js_namespace = Array, js_name = from)]
    fn array_from(value: &JsValue) -> Result<Array, JsValue>;
}

/// Describes one JS value for the engine's validator; a value whose reading throws (a getter
/// inside an object or array) is [`OptionValue::Threw`].
pub(crate) fn describe(value: &JsValue) -> OptionValue {
    if value.is_undefined() {
        OptionValue::Missing
    } else if value.is_null() {
        OptionValue::Null
    } else if let Some(b) = value.as_bool() {
        OptionValue::Bool(b)
    } else if let Some(n) = value.as_f64() {
        OptionValue::Number(n, number_text(n))
    } else if let Some(s) = value.as_string() {
        OptionValue::Str(s)
    } else if value.is_function() {
        OptionValue::Function
    } else if Array::is_array(value) {
        match array_from(value) {
            Ok(items) => OptionValue::List(items.iter().map(|v| describe(&v)).collect()),
            Err(e) => OptionValue::Threw(js_error_text(&e)),
        }
    } else if value.is_object() {
        match entries(value) {
            Ok(pairs) => OptionValue::Map(
                pairs
                    .into_iter()
                    .map(|(key, v)| (key, describe(&v)))
                    .collect(),
            ),
            Err(e) => OptionValue::Threw(e),
        }
    } else {
        OptionValue::Other(value.js_typeof().as_string().unwrap_or_default())
    }
}

/// An object's own enumerable string-keyed properties, in order (getters run once each).
fn entries(value: &JsValue) -> Result<Vec<(String, JsValue)>, String> {
    let pairs = object_entries(value).map_err(|e| js_error_text(&e))?;
    Ok(pairs
        .iter()
        .filter_map(|pair| {
            let pair: Array = pair.unchecked_into();
            Some((pair.get(0).as_string()?, pair.get(1)))
        })
        .collect())
}

/// The option object's own enumerable keys; the text of what was thrown if listing them threw
/// (a proxy).
pub(crate) fn keys(options: &JsValue) -> Result<Vec<String>, String> {
    if !options.is_object() {
        return Ok(Vec::new());
    }
    let keys = object_keys(options).map_err(|e| js_error_text(&e))?;
    Ok(keys.iter().filter_map(|k| k.as_string()).collect())
}

/// Reads one property; the text of what was thrown if reading it threw (a getter, a proxy).
pub(crate) fn read(obj: &JsValue, key: &str) -> Result<JsValue, String> {
    if !obj.is_object() {
        return Ok(JsValue::UNDEFINED);
    }
    Reflect::get(obj, &JsValue::from_str(key)).map_err(|e| js_error_text(&e))
}

/// Reads one property (`undefined` when absent or unreadable).
pub(crate) fn get(obj: &JsValue, key: &str) -> JsValue {
    read(obj, key).unwrap_or(JsValue::UNDEFINED)
}

/// Flattens an object of string/number/boolean values into name/value pairs (for the results
/// of the `query` and `headers` functions); the text of what was thrown if reading it threw.
pub(crate) fn string_pairs(value: &JsValue) -> Result<Vec<(String, String)>, String> {
    if !value.is_object() {
        return Ok(Vec::new());
    }
    Ok(entries(value)?
        .into_iter()
        .filter_map(|(name, v)| Some((name, scalar_text(&v)?)))
        .collect())
}

/// A string, number or boolean as JS would print it (`String(v)`); `None` for anything else.
pub(crate) fn scalar_text(v: &JsValue) -> Option<String> {
    if let Some(s) = v.as_string() {
        Some(s)
    } else if let Some(b) = v.as_bool() {
        Some(if b { "true" } else { "false" }.to_owned())
    } else {
        v.as_f64().map(number_text)
    }
}

/// `n` as JavaScript prints it (`String(n)`: `1e+21`, `1e-7`, `0` for `-0`), by the JS engine
/// itself: exact by definition, and a Rust port of the algorithm cost 2 KB of wasm.
pub(crate) fn number_text(n: f64) -> String {
    js_sys::Number::from(n)
        .to_string_with_radix(10)
        .map(String::from)
        .unwrap_or_default()
}
