//! Browser tests of the client in Chromium, Firefox and WebKit (wasm-bindgen-test), against a
//! running server-fixture whose URL and control token `scripts/test-wasm.sh` bakes in as
//! `UPLOAD_FIXTURE_URL` and `UPLOAD_FIXTURE_TOKEN`.
//!
//! The test page is on another port than the fixture, so every request here is cross-origin.
//! Each test resets the fixture and uses its own target URL (`?t=name`), so browser preflight
//! cache entries of one test never hide another test's OPTIONS.
#![cfg(target_arch = "wasm32")]
// `option_env!` + expect, not `env!`: lint builds this file without a fixture; the tests then fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::option_env_unwrap,
    missing_docs
)]

use js_sys::futures::JsFuture;
use js_sys::{Array, Promise, Reflect, Uint8Array, JSON};
use resumable_wasm::api::Uploader;
use sha2::{Digest, Sha256};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;
use web_sys::{Blob, RequestCredentials, RequestInit};

wasm_bindgen_test_configure!(run_in_browser);

fn fixture() -> &'static str {
    option_env!("UPLOAD_FIXTURE_URL")
        .expect("UPLOAD_FIXTURE_URL must be set at compile time (scripts/test-wasm.sh sets it)")
}

/// Calls a fixture control endpoint (with the control token; JSON for POSTs) and returns its
/// JSON.
async fn control(method: &str, path: &str, body: Option<&str>) -> JsValue {
    let token = option_env!("UPLOAD_FIXTURE_TOKEN")
        .expect("UPLOAD_FIXTURE_TOKEN must be set at compile time (scripts/test-wasm.sh sets it)");
    let init = RequestInit::new();
    init.set_method(method);
    let headers = web_sys::Headers::new().unwrap();
    headers.set("x-fixture-token", token).unwrap();
    if method == "POST" {
        headers.set("content-type", "application/json").unwrap();
    }
    init.set_headers(&headers);
    if let Some(body) = body {
        init.set_body(&JsValue::from_str(body));
    }
    let window = web_sys::window().unwrap();
    let resp: web_sys::Response =
        JsFuture::from(window.fetch_with_str_and_init(&format!("{}{path}", fixture()), &init))
            .await
            .unwrap()
            .into();
    assert!(resp.ok(), "{method} {path} answered {}", resp.status());
    let text = JsFuture::from(resp.text().unwrap())
        .await
        .unwrap()
        .as_string()
        .unwrap();
    if text.is_empty() {
        JsValue::NULL
    } else {
        JSON::parse(&text).unwrap_or(JsValue::NULL)
    }
}

async fn reset() {
    control("POST", "/__fixture/reset?data=1", None).await;
    control(
        "POST",
        "/__fixture/config",
        Some(r#"{"cors":"reflect","stall":false,"delay_ms":0,"require_session":false,"fail_rate":0}"#),
    )
    .await;
}

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &key.into()).unwrap()
}

/// The fixture's request log entries for this test's target (`?t=name`).
async fn log_for(name: &str) -> Vec<JsValue> {
    let stats = control("GET", "/__fixture/stats", None).await;
    let tag = format!("t={name}");
    Array::from(&get(&stats, "log"))
        .iter()
        .filter(|e| {
            get(e, "query")
                .as_string()
                .is_some_and(|q| q.contains(&tag))
        })
        .collect()
}

/// Resolves after `ms` milliseconds.
async fn sleep_ms(ms: i32) {
    JsFuture::from(Promise::new(&mut |resolve, _| {
        web_sys::window()
            .unwrap()
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms)
            .unwrap();
    }))
    .await
    .unwrap();
}

fn in_flight(e: &JsValue) -> bool {
    get(e, "in_flight").as_bool() == Some(true)
}

/// This test's log entries once the fixture has served every one of them: the log records a
/// request on arrival and marks it `in_flight` until it ends (answered, dropped or aborted).
async fn served_log_for(name: &str) -> Vec<JsValue> {
    loop {
        let log = log_for(name).await;
        if !log.iter().any(in_flight) {
            return log;
        }
        sleep_ms(20).await;
    }
}

/// How long a "nothing more is sent" check watches after the requests it knows of were served.
/// Not a duration under test: the fixture logs a request on arrival, so one sent in the window
/// is seen whatever the fixture does with it; a longer window only sees more.
const QUIET_WINDOW_MS: i32 = 1000;

fn count(log: &[JsValue], method: &str) -> usize {
    log.iter()
        .filter(|e| get(e, "method").as_string().as_deref() == Some(method))
        .count()
}

/// Deterministic pseudo-random bytes.
fn bytes(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x & 0xff) as u8
        })
        .collect()
}

fn blob(data: &[u8]) -> Blob {
    let parts = Array::of1(&Uint8Array::from(data));
    Blob::new_with_u8_array_sequence(&parts).unwrap()
}

fn options(name: &str, extra: &str) -> JsValue {
    let text = format!(
        r#"{{"target":"{}/upload?t={name}","chunkSize":1024{}{extra}}}"#,
        fixture(),
        if extra.is_empty() { "" } else { "," }
    );
    JSON::parse(&text).unwrap()
}

fn uploader(opts: JsValue) -> Uploader {
    Uploader::new(opts.unchecked_into())
        .map_err(|e| format!("{:?}", get(&e, "message")))
        .unwrap()
}

/// Adds `data` and uploads it; returns the summary.
async fn upload(up: &Uploader, data: &[u8]) -> JsValue {
    JsFuture::from(up.add_file(blob(data).into(), None).unwrap())
        .await
        .unwrap();
    JsFuture::from(up.upload()).await.unwrap()
}

fn failed_error(summary: &JsValue) -> JsValue {
    let failed = Array::from(&get(summary, "failed"));
    assert_eq!(failed.length(), 1, "expected one failed file");
    get(&failed.get(0), "error")
}

fn succeeded(summary: &JsValue) -> u32 {
    Array::from(&get(summary, "succeeded")).length()
}

async fn stored_sha256() -> Vec<String> {
    let files = control("GET", "/__fixture/files", None).await;
    Array::from(&files)
        .iter()
        .map(|f| get(&f, "sha256").as_string().unwrap())
        .collect()
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[wasm_bindgen_test]
async fn fetch_multipart_keeps_a_constant_url_and_stores_identical_bytes() {
    reset().await;
    let data = bytes(2_600, 1);
    let summary = upload(&uploader(options("multipart", "")), &data).await;
    assert_eq!(succeeded(&summary), 1);
    assert_eq!(stored_sha256().await, vec![sha256_hex(&data)]);
    let log = log_for("multipart").await;
    let posts: Vec<_> = log
        .iter()
        .filter(|e| get(e, "method").as_string().as_deref() == Some("POST"))
        .collect();
    assert_eq!(posts.len(), 2, "2 chunks (the last absorbs the remainder)");
    for post in posts {
        assert_eq!(
            get(post, "query").as_string().as_deref(),
            Some("t=multipart"),
            "parameters travel in the body only"
        );
    }
    assert_eq!(
        count(&log, "OPTIONS"),
        0,
        "multipart FormData with untyped slices is a simple request"
    );
    assert_eq!(
        count(&log, "GET"),
        1,
        "testChunks 'auto' probes only the first chunk of a fresh upload"
    );
}

#[wasm_bindgen_test]
async fn octet_mode_sends_untyped_slices_without_a_preflight() {
    reset().await;
    let data = bytes(3_000, 2);
    let summary = upload(&uploader(options("octet", r#""method":"octet""#)), &data).await;
    assert_eq!(succeeded(&summary), 1);
    assert_eq!(stored_sha256().await, vec![sha256_hex(&data)]);
    let log = log_for("octet").await;
    assert_eq!(count(&log, "POST"), 2);
    assert_eq!(
        count(&log, "OPTIONS"),
        0,
        "an untyped Blob body sets no Content-Type, so no preflight"
    );
}

#[wasm_bindgen_test]
async fn xhr_byte_progress_costs_exactly_one_preflight() {
    reset().await;
    let data = bytes(5_000, 3);
    let opts = options("bytes", r#""progress":"bytes","simultaneousUploads":3"#);
    // The API by host name: Firefox may preflight again the first preflighted requests of a
    // session to an IP-address host (127.0.0.1), which no client can change (README, "Browser
    // engines"; measured by tests/engines). What is tested here is the client's share: one
    // preflight for all chunk POSTs where the browser caches it.
    let by_name = format!(
        "{}/upload?t=bytes",
        fixture().replace("://127.0.0.1:", "://localhost:")
    );
    Reflect::set(&opts, &"target".into(), &by_name.into()).unwrap();
    let up = uploader(opts);
    let seen = std::rc::Rc::new(std::cell::Cell::new(0u32));
    let counter = std::rc::Rc::clone(&seen);
    let on_progress =
        Closure::<dyn FnMut(JsValue)>::new(move |_f: JsValue| counter.set(counter.get() + 1));
    up.on("fileProgress", on_progress.as_ref().clone()).unwrap();
    let summary = upload(&up, &data).await;
    assert_eq!(succeeded(&summary), 1);
    assert_eq!(stored_sha256().await, vec![sha256_hex(&data)]);
    let log = log_for("bytes").await;
    assert_eq!(
        count(&log, "OPTIONS"),
        1,
        "the upload listener forces one preflight; the constant URL reuses it"
    );
    assert_eq!(count(&log, "POST"), 4);
    assert!(seen.get() >= 4, "fileProgress fired {} times", seen.get());
}

#[wasm_bindgen_test]
async fn with_credentials_sends_the_session_cookie() {
    reset().await;
    let init = RequestInit::new();
    init.set_credentials(RequestCredentials::Include);
    let window = web_sys::window().unwrap();
    let login: web_sys::Response =
        JsFuture::from(window.fetch_with_str_and_init(&format!("{}/login", fixture()), &init))
            .await
            .unwrap()
            .into();
    assert!(login.ok());
    control(
        "POST",
        "/__fixture/config",
        Some(r#"{"require_session":true}"#),
    )
    .await;

    let without = upload(
        &uploader(options("nocred", r#""maxChunkRetries":0"#)),
        &bytes(1_500, 4),
    )
    .await;
    let err = failed_error(&without);
    assert_eq!(get(&err, "kind").as_string().as_deref(), Some("http"));
    assert_eq!(get(&err, "status").as_f64(), Some(401.0));

    let data = bytes(1_700, 5);
    let with = upload(
        &uploader(options("cred", r#""withCredentials":true"#)),
        &data,
    )
    .await;
    assert_eq!(succeeded(&with), 1);
    assert!(stored_sha256().await.contains(&sha256_hex(&data)));
    reset().await;
}

#[wasm_bindgen_test]
async fn a_stalled_request_times_out() {
    reset().await;
    control("POST", "/__fixture/config", Some(r#"{"stall":true}"#)).await;
    let summary = upload(
        &uploader(options(
            "stall",
            r#""timeout":300,"maxChunkRetries":0,"testChunks":false"#,
        )),
        &bytes(1_200, 6),
    )
    .await;
    control("POST", "/__fixture/config", Some(r#"{"stall":false}"#)).await;
    let err = failed_error(&summary);
    assert_eq!(get(&err, "kind").as_string().as_deref(), Some("timeout"));
    assert_eq!(get(&err, "phase").as_string().as_deref(), Some("upload"));
}

#[wasm_bindgen_test]
async fn a_cors_misconfiguration_is_reported_as_cors_with_a_hint() {
    reset().await;
    control("POST", "/__fixture/config", Some(r#"{"cors":"none"}"#)).await;
    let summary = upload(
        &uploader(options("cors", r#""testChunks":false"#)),
        &bytes(1_300, 7),
    )
    .await;
    reset().await;
    let err = failed_error(&summary);
    assert_eq!(get(&err, "kind").as_string().as_deref(), Some("cors"));
    let hint = get(&err, "hint").as_string().unwrap_or_default();
    assert!(hint.contains("Access-Control-Allow-Origin"), "hint: {hint}");
    let attempts = get(&err, "attempts")
        .as_f64()
        .expect("a cors error carries its attempts");
    assert!(
        (1.0..=2.0).contains(&attempts),
        "a CORS failure is re-checked once, not retried in a loop ({attempts} attempts)"
    );
}

#[wasm_bindgen_test]
async fn a_closed_port_is_a_network_error() {
    let opts = JSON::parse(
        r#"{"target":"http://127.0.0.1:65534/upload","maxChunkRetries":0,"testChunks":false}"#,
    )
    .unwrap();
    let summary = upload(&uploader(opts), &bytes(100, 8)).await;
    let err = failed_error(&summary);
    assert_eq!(get(&err, "kind").as_string().as_deref(), Some("network"));
}

#[wasm_bindgen_test]
async fn cancel_aborts_and_settles_the_promise() {
    reset().await;
    control("POST", "/__fixture/config", Some(r#"{"delay_ms":3000}"#)).await;
    let up = uploader(options(
        "cancel",
        r#""testChunks":false,"simultaneousUploads":1"#,
    ));
    JsFuture::from(up.add_file(blob(&bytes(4_096, 9)).into(), None).unwrap())
        .await
        .unwrap();
    let pending = up.upload();
    // Cancel while the fixture is serving the first chunk POST (it answers after 3 s): the
    // log shows the request on arrival, still in flight.
    loop {
        let log = log_for("cancel").await;
        if log
            .iter()
            .any(|e| get(e, "method").as_string().as_deref() == Some("POST") && in_flight(e))
        {
            break;
        }
        assert!(
            log.iter().all(in_flight),
            "a request ended before the cancel: {:?}",
            log.iter()
                .map(|e| JSON::stringify(e).unwrap())
                .collect::<Vec<_>>()
        );
        sleep_ms(10).await;
    }
    up.cancel();
    let summary = JsFuture::from(pending).await.unwrap();
    assert_eq!(succeeded(&summary), 0);
    let failed = Array::from(&get(&summary, "failed"));
    assert_eq!(
        get(&failed.get(0), "status").as_string().as_deref(),
        Some("cancelled")
    );
    // Cancelling is not an error (README, Errors): the file has none.
    let error = get(&failed.get(0), "error");
    assert!(error.is_undefined() || error.is_null(), "{error:?}");
    assert!(!up.is_uploading());
    // The POST was aborted: it ended on the fixture without an answer.
    let log = served_log_for("cancel").await;
    assert_eq!(count(&log, "POST"), 1, "one chunk POST, cut by cancel()");
    assert!(
        log.iter().all(|e| get(e, "status").is_null()),
        "every request of the cancelled upload ended unanswered: {:?}",
        log.iter()
            .map(|e| JSON::stringify(e).unwrap())
            .collect::<Vec<_>>()
    );
    sleep_ms(QUIET_WINDOW_MS).await;
    assert_eq!(
        log_for("cancel").await.len(),
        log.len(),
        "nothing was sent after cancel()"
    );
    control("POST", "/__fixture/config", Some(r#"{"delay_ms":0}"#)).await;
}

#[wasm_bindgen_test]
fn invalid_options_throw_an_upload_error_naming_the_option() {
    let opts = JSON::parse(r#"{"target":"http://127.0.0.1:1/upload","chunkSize":-5}"#).unwrap();
    let err = Uploader::new(opts.unchecked_into())
        .err()
        .expect("chunkSize -5 must be refused");
    assert!(resumable_wasm::api::error::is_upload_error(&err));
    assert_eq!(get(&err, "kind").as_string().as_deref(), Some("invalid"));
    assert_eq!(
        get(&err, "option").as_string().as_deref(),
        Some("chunkSize")
    );
    let message = get(&err, "message").as_string().unwrap();
    assert!(
        message.contains("chunkSize") && message.contains("-5"),
        "{message}"
    );
}

#[wasm_bindgen_test]
fn preflight_report_names_the_header_that_costs_a_preflight() {
    let simple = uploader(options("report", r#""withCredentials":true"#)).preflight_report();
    assert_eq!(
        get(&get(&simple, "upload"), "preflight").as_bool(),
        Some(false)
    );
    assert_eq!(
        get(&get(&simple, "test"), "preflight").as_bool(),
        Some(false)
    );

    let with_header = uploader(options(
        "report",
        r#""headers":{"Authorization":"Bearer x"}"#,
    ))
    .preflight_report();
    let upload = get(&with_header, "upload");
    assert_eq!(get(&upload, "preflight").as_bool(), Some(true));
    let reasons: Vec<String> = Array::from(&get(&upload, "reasons"))
        .iter()
        .filter_map(|r| r.as_string())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.to_lowercase().contains("authorization")),
        "{reasons:?}"
    );
}

#[wasm_bindgen_test]
fn add_file_refuses_what_is_not_a_blob() {
    let up = uploader(options("notblob", ""));
    let err = up
        .add_file(JsValue::from_str("a.txt"), None)
        .expect_err("a string is not a file");
    assert_eq!(get(&err, "kind").as_string().as_deref(), Some("invalid"));
    assert_eq!(get(&err, "option").as_string().as_deref(), Some("file"));
    let err = up
        .on("fileAdded", JsValue::from(3))
        .expect_err("3 is no callback");
    assert_eq!(get(&err, "kind").as_string().as_deref(), Some("invalid"));
}

#[wasm_bindgen_test]
async fn cancel_from_an_error_listener_sends_nothing_more() {
    reset().await;
    control(
        "POST",
        "/__fixture/config",
        Some(r#"{"fail_status":500,"fail_chunk_once":1}"#),
    )
    .await;
    let up = std::rc::Rc::new(uploader(options(
        "cancelonerror",
        r#""testChunks":false,"simultaneousUploads":1"#,
    )));
    // The usual "stop everything on the first error" listener.
    let this = std::rc::Rc::clone(&up);
    let canceller = Closure::<dyn FnMut(JsValue)>::new(move |_e: JsValue| this.cancel());
    up.on("error", canceller.as_ref().clone()).unwrap();
    JsFuture::from(up.add_file(blob(&bytes(1_000, 10)).into(), None).unwrap())
        .await
        .unwrap();
    JsFuture::from(up.add_file(blob(&bytes(1_100, 11)).into(), None).unwrap())
        .await
        .unwrap();
    let summary = JsFuture::from(up.upload()).await.unwrap();
    control("POST", "/__fixture/config", Some(r#"{"fail_status":503}"#)).await;
    assert_eq!(succeeded(&summary), 0);
    assert_eq!(
        count(&served_log_for("cancelonerror").await, "POST"),
        1,
        "only the failing POST of the first file"
    );
    // A request sent wrongly after the cancel would be logged on arrival, answered or not.
    sleep_ms(QUIET_WINDOW_MS).await;
    assert_eq!(
        count(&log_for("cancelonerror").await, "POST"),
        1,
        "nothing was sent after cancel()"
    );
}

#[wasm_bindgen(inline_js = "export function js(source) { return (0, eval)('(' + source + ')'); }")]
extern "C" {
    /// A JS value built from JS source (getters, array-likes: what JSON cannot express).
    fn js(source: &str) -> JsValue;
}

/// The `option` and `message` of the `invalid` UploadError `err`.
fn invalid_option(err: &JsValue) -> (String, String) {
    assert!(resumable_wasm::api::error::is_upload_error(err), "{err:?}");
    assert_eq!(get(err, "kind").as_string().as_deref(), Some("invalid"));
    (
        get(err, "option").as_string().unwrap_or_default(),
        get(err, "message").as_string().unwrap_or_default(),
    )
}

#[wasm_bindgen_test]
fn numbers_in_messages_are_printed_as_javascript_prints_them() {
    let got = |chunk_size: &str| {
        let source =
            format!(r#"{{ target: "http://127.0.0.1:1/upload", chunkSize: {chunk_size} }}"#);
        let err = Uploader::new(js(&source).unchecked_into())
            .err()
            .unwrap_or_else(|| panic!("chunkSize {chunk_size} must be refused"));
        let (option, message) = invalid_option(&err);
        assert_eq!(option, "chunkSize");
        message.rsplit("got ").next().unwrap_or_default().to_owned()
    };
    // Each right-hand side is what `String(n)` prints (Rust would print 1e21 whole).
    for (source, text) in [
        ("1e21", "1e+21"),
        ("1e-7", "1e-7"),
        ("-0", "0"),
        ("0.1 + 0.2", "0.30000000000000004"),
        ("-1.5", "-1.5"),
        ("NaN", "NaN"),
        ("-Infinity", "-Infinity"),
        ("2 ** 53", "9007199254740992"),
    ] {
        assert_eq!(got(source), text, "chunkSize: {source}");
    }
}

#[wasm_bindgen_test]
fn option_gaps_are_invalid_errors_naming_the_option() {
    let refused = |source: &str| {
        let err = Uploader::new(js(source).unchecked_into())
            .err()
            .unwrap_or_else(|| panic!("{source} must be refused"));
        invalid_option(&err)
    };
    let target = r#"target: "http://127.0.0.1:1/upload""#;
    assert_eq!(refused(r#"{ target: "http://[::1" }"#).0, "target");
    assert_eq!(
        refused(&format!("{{ {target}, successStatuses: [] }}")).0,
        "successStatuses"
    );
    assert_eq!(
        refused(&format!(
            "{{ {target}, chunkRetryInterval: 1000, maxRetryInterval: 10 }}"
        ))
        .0,
        "maxRetryInterval"
    );
    assert_eq!(
        refused(&format!("{{ {target}, chunkRetryInterval: 2 ** 40 }}")).0,
        "chunkRetryInterval"
    );
    // A getter that throws is named with what it threw, not skipped.
    let (option, message) = refused(&format!(
        "{{ {target}, get chunkSize() {{ throw new Error('no size'); }} }}"
    ));
    assert_eq!(option, "chunkSize");
    assert!(message.contains("no size"), "{message}");
    let (option, message) = refused(&format!(
        "{{ {target}, query: {{ get token() {{ throw new Error('no token'); }} }} }}"
    ));
    assert_eq!(option, "query");
    assert!(message.contains("no token"), "{message}");
}

#[wasm_bindgen_test]
fn add_files_refuses_a_huge_or_throwing_array_like() {
    let up = uploader(options("addfiles", ""));
    for source in [
        "{ length: 2 ** 32 }",
        "{ length: -1 }",
        "{ length: 1.5 }",
        "{ length: 1, get 0() { throw new Error('gone'); } }",
        "{ get length() { throw new Error('no length'); } }",
    ] {
        let err = up
            .add_files(js(source))
            .err()
            .unwrap_or_else(|| panic!("addFiles({source}) must throw"));
        let (option, message) = invalid_option(&err);
        assert_eq!(option, "files", "{source}: {message}");
    }
    assert!(up.add_files(js("{ length: 0 }")).is_ok());
}

#[wasm_bindgen_test]
async fn numeric_query_values_go_on_the_wire_as_javascript_prints_them() {
    reset().await;
    let opts = js(&format!(
        r#"{{ target: "{}/upload?t=numbers", chunkSize: 1024, testChunks: true,
             query: {{ a: 1.1, b: 1e-7, c: 1e21, d: 0.1 + 0.2, e: -0 }} }}"#,
        fixture()
    ));
    let summary = upload(&uploader(opts), &bytes(1_500, 12)).await;
    assert_eq!(succeeded(&summary), 1);
    let probes: Vec<String> = log_for("numbers")
        .await
        .iter()
        .filter(|e| get(e, "method").as_string().as_deref() == Some("GET"))
        .filter_map(|e| get(e, "query").as_string())
        .collect();
    assert!(!probes.is_empty());
    for q in probes {
        for expected in [
            "a=1.1&",
            "b=1e-7&",
            "c=1e%2B21&",
            "d=0.30000000000000004&",
            "e=0&",
        ] {
            assert!(q.contains(expected), "{expected} in {q}");
        }
    }
}

#[wasm_bindgen_test]
async fn checks_carry_the_headers_of_a_headers_function() {
    // The server refuses the header the function adds: only checks with that header see the
    // block; checks without it would pass and make it a network retry.
    reset().await;
    // This page's origin is allowed (simple requests pass); the header is not.
    let before = control("GET", "/__fixture/config", None).await;
    let allowed = JSON::stringify(&get(&before, "allow_origins")).unwrap();
    let origin = js("location.origin").as_string().unwrap();
    let config = format!(r#"{{"cors":"no-allow-headers","allow_origins":["{origin}"]}}"#);
    control("POST", "/__fixture/config", Some(&config)).await;
    let opts = js(&format!(
        r#"{{ target: "{}/upload?t=dynheaders", chunkSize: 1024, testChunks: false,
             headers: () => ({{ "X-Token": "t" }}) }}"#,
        fixture()
    ));
    let summary = upload(&uploader(opts), &bytes(900, 13)).await;
    let restore = format!(r#"{{"allow_origins":{}}}"#, String::from(allowed));
    control("POST", "/__fixture/config", Some(&restore)).await;
    reset().await;
    let err = failed_error(&summary);
    assert_eq!(get(&err, "kind").as_string().as_deref(), Some("cors"));
    assert_eq!(get(&err, "attempts").as_f64(), Some(1.0));
}
