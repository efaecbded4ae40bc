//! Reading the user's option object: JS values → `engine::OptionValue`. Every check and every
//! message lives in `engine::config`; this file only describes what JS handed over. The option
//! functions (`query`, `headers`, `generateUniqueIdentifier`) are kept here as JS functions.

use crate::prelude::*;
use js_sys::{Array, Function, Object, Reflect};
use wasm_bindgen::prelude::*;

use crate::engine::OptionValue;

/// Describes one JS value for the engine's validator.
pub(crate) fn describe(value: &JsValue) -> OptionValue {
    if value.is_undefined() {
        OptionValue::Missing
    } else if value.is_null() {
        OptionValue::Null
    } else if let Some(b) = value.as_bool() {
        OptionValue::Bool(b)
    } else if let Some(n) = value.as_f64() {
        OptionValue::Number(n)
    } else if let Some(s) = value.as_string() {
        OptionValue::Str(s)
    } else if value.is_function() {
        OptionValue::Function
    } else if Array::is_array(value) {
        OptionValue::List(Array::from(value).iter().map(|v| describe(&v)).collect())
    } else if value.is_object() {
        let mut map = Vec::new();
        for pair in Object::entries(value.unchecked_ref::<Object>()).iter() {
            let pair = Array::from(&pair);
            if let Some(key) = pair.get(0).as_string() {
                map.push((key, describe(&pair.get(1))));
            }
        }
        OptionValue::Map(map)
    } else {
        OptionValue::Other(value.js_typeof().as_string().unwrap_or_default())
    }
}

/// The option object's own enumerable keys.
pub(crate) fn keys(options: &JsValue) -> Vec<String> {
    if !options.is_object() {
        return Vec::new();
    }
    Object::keys(options.unchecked_ref::<Object>())
        .iter()
        .filter_map(|k| k.as_string())
        .collect()
}

/// Reads one property (`undefined` when absent or unreadable).
pub(crate) fn get(obj: &JsValue, key: &str) -> JsValue {
    if !obj.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// The option at `key` when it is a function.
pub(crate) fn function(obj: &JsValue, key: &str) -> Option<Function> {
    get(obj, key).dyn_into::<Function>().ok()
}

/// Flattens an object of string/number/boolean values into name/value pairs (for the results
/// of the `query` and `headers` functions).
pub(crate) fn string_pairs(value: &JsValue) -> Vec<(String, String)> {
    if !value.is_object() {
        return Vec::new();
    }
    let mut pairs = Vec::new();
    for pair in Object::entries(value.unchecked_ref::<Object>()).iter() {
        let pair = Array::from(&pair);
        if let (Some(name), Some(value)) = (pair.get(0).as_string(), scalar_text(&pair.get(1))) {
            pairs.push((name, value));
        }
    }
    pairs
}

/// A string, number or boolean as JS would print it (`String(v)`); `None` for anything else.
/// Numbers are printed by JS, which keeps Rust's float formatting out of the wasm.
pub(crate) fn scalar_text(v: &JsValue) -> Option<String> {
    if let Some(s) = v.as_string() {
        Some(s)
    } else if let Some(b) = v.as_bool() {
        Some(if b { "true" } else { "false" }.to_owned())
    } else if let Some(n) = v.as_f64() {
        js_sys::Number::from(n)
            .to_string_with_radix(10)
            .ok()?
            .as_string()
    } else {
        None
    }
}
