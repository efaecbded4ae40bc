//! The validated upload configuration and the parsing of the user's JS option object.
//!
//! This module owns option names, defaults and validation messages. It does not read JS
//! values itself: the API layer hands each option over as an [`OptionValue`].
//!
//! Defaults differ by `protocol` where the two dialects differ (docs/protocol.md §3):
//!
//! | Option | `'resumable'` | `'flow'` |
//! |---|---|---|
//! | `successStatuses` | `[200, 201]` | `[200, 201, 202]` |
//! | `permanentErrors` | `[400, 401, 403, 404, 409, 415, 500, 501]` | `[404, 413, 415, 500, 501]` |
//! | `minFileSize` | `1` (empty files refused, as Resumable.js does) | `0` (Flow.js uploads empty files) |
//! | probe answers | status in `successStatuses` = present, else absent | the same, and `permanentErrors` fail the file |

use crate::engine::error::UploadError;
use crate::engine::float;
use crate::engine::integrity::Algorithm;
use crate::engine::plan::MAX_SAFE_INTEGER;
use crate::engine::preflight::authority;
use crate::engine::retry::MAX_DELAY_MS;

/// One JS option value as the API layer read it.
#[derive(Debug, Clone, PartialEq)]
pub enum OptionValue {
    /// The key is absent or `undefined`.
    Missing,
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A number, and its text as JavaScript prints it (`String(n)`: `1e+21`, `1e-7`, `0` for
    /// `-0`), which the API layer asks the JS engine for: messages and `query` values show it.
    Number(f64, String),
    /// A string.
    Str(String),
    /// An array.
    List(Vec<OptionValue>),
    /// A plain object, its own enumerable properties in order.
    Map(Vec<(String, OptionValue)>),
    /// A function (the API layer calls it; the engine only records that it exists).
    Function,
    /// Anything else, with its JS `typeof`.
    Other(String),
    /// Reading the option threw (a getter, a proxy); the text of what it threw.
    Threw(String),
}

impl OptionValue {
    /// The number `v` with Rust's text for it, for tests and native callers: the same as
    /// JavaScript's for integers below 10^21 and for most fractions, but not for exponents
    /// (Rust prints `1e21` whole, `1e-7` as `0.0000001`).
    #[must_use]
    pub fn number(v: f64) -> OptionValue {
        OptionValue::Number(v, format!("{v}"))
    }
}

/// The chunk protocol spoken to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Resumable.js: nine `resumable*` parameters, renamable, with a namespace. Default.
    Resumable,
    /// Flow.js: eight fixed `flow*` parameters.
    Flow,
}

/// When chunks are probed before being sent (`testChunks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestChunks {
    /// `'auto'` (default): probe chunk 1 alone; probe the rest only if the server had it; always
    /// re-probe a chunk before re-sending it after a failed attempt.
    Auto,
    /// `true`: probe every chunk before its upload (Resumable.js/Flow.js behaviour).
    Always,
    /// `false`: never probe.
    Never,
}

/// How the chunk body is sent (`method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadMode {
    /// `'multipart'` (default): `FormData` with the parameters and the chunk; the URL is the
    /// constant `target` (plus the custom query), so one preflight serves every chunk.
    Multipart,
    /// `'octet'`: the raw, untyped chunk as body; the parameters in the query string.
    Octet,
}

/// What progress is reported (`progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// `'chunk'` (default): per confirmed chunk; requests stay simple.
    Chunk,
    /// `'bytes'`: byte progress from an `xhr.upload` listener, which forces a preflight
    /// cross-origin.
    Bytes,
}

/// How a file's identifier is computed when the app supplies none (`identifier`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentifierMode {
    /// `'compatible'` (default): `size-` + the sanitised relative path, as Resumable.js and Flow.js.
    Compatible,
    /// `'unique'`: also uses `lastModified` and a hash of the raw path, so equal-sized files with
    /// similar names do not collide.
    Unique,
}

/// Index of each renamable Resumable.js parameter in [`Config::param_names`].
pub const PARAM_OPTIONS: [(&str, &str); 9] = [
    ("chunkNumberParameterName", "resumableChunkNumber"),
    ("chunkSizeParameterName", "resumableChunkSize"),
    ("currentChunkSizeParameterName", "resumableCurrentChunkSize"),
    ("totalSizeParameterName", "resumableTotalSize"),
    ("typeParameterName", "resumableType"),
    ("identifierParameterName", "resumableIdentifier"),
    ("fileNameParameterName", "resumableFilename"),
    ("relativePathParameterName", "resumableRelativePath"),
    ("totalChunksParameterName", "resumableTotalChunks"),
];

/// A validated configuration. Build it with [`Config::from_options`] (from JS) or
/// [`Config::new`] (defaults, for Rust callers and tests).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `target`: absolute http(s) URL of the chunk endpoint. Required.
    pub target: String,
    /// `testTarget`: URL for probes. Default: `target`.
    pub test_target: Option<String>,
    /// `chunkSize`: bytes per chunk. Default 1 MiB. Under `'auto'` ([`Config::chunk_auto`])
    /// the floor of the sizes it picks.
    pub chunk_size: u64,
    /// `chunkSize: 'auto'`: each new file's chunk size is picked from the measured round trip
    /// ([`crate::engine::plan::auto_chunk_size`]) and kept for the file's whole life.
    pub chunk_auto: bool,
    /// `maxChunkSize`: the largest chunk `'auto'` picks (the server's body limit). Default
    /// [`DEFAULT_MAX_CHUNK_SIZE`].
    pub max_chunk_size: u64,
    /// `forceChunkSize`: no chunk larger than `chunkSize`. Default `false`.
    pub force_chunk_size: bool,
    /// `simultaneousUploads`: requests in flight across all files, a fixed number 1..=64, or
    /// `None` for `'auto'` (default): [`crate::engine::concurrency::Window`] decides.
    pub simultaneous_uploads: Option<u32>,
    /// `maxSimultaneousUploads`: the most requests `'auto'` keeps in flight toward an HTTP/2
    /// or HTTP/3 origin, 1..=64. Default [`crate::engine::concurrency::DEFAULT_MAX_WINDOW`] (64).
    pub max_simultaneous_uploads: u32,
    /// `testChunks`: default `'auto'`.
    pub test_chunks: TestChunks,
    /// `protocol`: default `'resumable'`.
    pub protocol: Protocol,
    /// `parameterNamespace`: prefix of every parameter and the file field (Resumable only).
    /// Default `''`.
    pub parameter_namespace: String,
    /// The nine Resumable.js parameter names in [`PARAM_OPTIONS`] order; `None` drops one.
    pub param_names: [Option<String>; 9],
    /// `fileParameterName`: the multipart field of the chunk. Default `'file'`.
    pub file_parameter_name: String,
    /// `query`: static extra parameters.
    pub query: Vec<(String, String)>,
    /// `query` is a function: the API layer calls it per request, see
    /// [`crate::engine::RequestSpec::with_dynamic`].
    pub query_fn: bool,
    /// `headers`: static extra headers. Default none (no `X-Requested-With`, ever).
    pub headers: Vec<(String, String)>,
    /// `headers` is a function called per request by the API layer.
    pub headers_fn: bool,
    /// `withCredentials`: send cookies cross-origin. Default `false`.
    pub with_credentials: bool,
    /// `method`: default `'multipart'`.
    pub upload_mode: UploadMode,
    /// `uploadMethod`: HTTP method of chunk uploads. Default `'POST'`.
    pub upload_method: String,
    /// `testMethod`: HTTP method of probes. Default `'GET'`.
    pub test_method: String,
    /// `maxChunkRetries`: retries per chunk. Default 8.
    pub max_chunk_retries: u32,
    /// `chunkRetryInterval`: first backoff ceiling in ms. Default 500.
    pub chunk_retry_interval_ms: u64,
    /// `maxRetryInterval`: largest backoff ceiling in ms. Default 30 000.
    pub max_retry_interval_ms: u64,
    /// `permanentErrors`: statuses that fail the file. Default per protocol (module docs).
    pub permanent_errors: Vec<u16>,
    /// `successStatuses`: statuses that mean success (upload) or present (probe). Default per
    /// protocol.
    pub success_statuses: Vec<u16>,
    /// `timeout`: ms per request; 0 = none. Default 120 000 (two minutes: long enough for a
    /// 1 MiB chunk on a slow uplink, short enough that a stalled request does not hang forever).
    pub timeout_ms: u64,
    /// `progress`: default `'chunk'`.
    pub progress: ProgressMode,
    /// `maxFiles`: default no limit.
    pub max_files: Option<u32>,
    /// `minFileSize`: bytes. Default 1 for `'resumable'`, 0 for `'flow'`.
    pub min_file_size: u64,
    /// `maxFileSize`: bytes. Default no limit (besides 2^53−1).
    pub max_file_size: Option<u64>,
    /// `fileType`: accepted extensions (`'pdf'`, `'.pdf'`) or MIME types (`'image/png'`,
    /// `'image/*'`), lowercased. Default empty = any.
    pub file_type: Vec<String>,
    /// `generateUniqueIdentifier` is a function; the API layer calls it and passes the result
    /// in [`crate::engine::FileMeta::identifier`].
    pub identifier_fn: bool,
    /// `identifier`: default `'compatible'`.
    pub identifier: IdentifierMode,
    /// `parallelFiles`: spread slots across files instead of file by file. Default `false`.
    pub parallel_files: bool,
    /// `prioritizeFirstAndLastChunk`: send each file's first and last chunk first. Default `false`.
    pub prioritize_first_and_last_chunk: bool,
    /// `diagnoseCors`: check a cross-origin request that got no readable answer to tell a CORS
    /// block from a failed connection ([`crate::engine::verdict`]). Default `true`.
    pub diagnose_cors: bool,
    /// `persist`: keep a record of each unfinished upload in the browser's storage, so it
    /// resumes after a reload or a restart (see [`crate::engine::persist`]).
    pub persist: bool,
    /// `persistBlobMaxBytes`: files up to this size are kept whole with their record.
    pub persist_blob_max_bytes: u64,
    /// `background`: hand each file's remaining chunks to a Background Fetch job where the
    /// browser and the app's service worker allow (see [`crate::engine::background`]).
    pub background: bool,
    /// `checksum`: the algorithm of every chunk's checksum (`'crc32c'`, `'sha256'`; `true` is
    /// `'crc32c'`), carried with the chunk's parameters. Default `false`: none.
    pub checksum: Option<Algorithm>,
    /// `target` is a function `(file, chunk) => url`: the API layer calls it per request and
    /// [`crate::engine::Scheduler::retarget`] renders the request for that URL; `target` is
    /// then empty.
    pub target_fn: bool,
    /// `preprocess` is an async function `(file, chunk)` the driver awaits before a chunk's
    /// first request (Flow.js's `preprocess`, as a promise).
    pub preprocess_fn: bool,
    /// The page's origin (`scheme://host[:port]`) as given to [`Config::from_options`]; used
    /// for preflight prediction. `None` = unknown (treated as cross-origin).
    pub page_origin: Option<String>,
    /// Whether a browser enforces CORS on the requests: `true` in a window or a worker. Not an
    /// option: the API layer says it from the environment. `false` in Node, Deno or Bun, whose
    /// `fetch` sends every request as it is, so nothing is preflighted (no warm-up, an empty
    /// [`crate::engine::Scheduler::preflight_report`]) and a request without an answer is a
    /// failed connection, never a CORS block: no check pairs, no `cors` error.
    pub cors_enforced: bool,
    /// `protocol: 's3'` with its `s3` callbacks: parts go straight to object storage
    /// ([`crate::engine::s3`]); `None` for the Resumable.js and Flow.js protocols.
    pub s3: Option<S3Options>,
}

/// What the engine knows of the `s3` option (the API layer keeps the callbacks themselves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct S3Options {
    /// `s3.signUpload` was given: a file of one part is one signed `PUT`, no multipart upload.
    pub sign_upload: bool,
    /// `protocol: 's3-post'`: chunks are browser-form POSTs under one policy per file, composed
    /// by the app's server ([`S3_POST_CALLBACKS`]).
    pub post: bool,
}

/// The callbacks of the `s3` option: the five required ones, then `signUpload` (optional).
pub const S3_CALLBACKS: [&str; 6] = [
    "createMultipartUpload",
    "signPart",
    "listParts",
    "completeMultipartUpload",
    "abortMultipartUpload",
    "signUpload",
];

/// The callbacks of the `s3` option under `protocol: 's3-post'`, all required.
pub const S3_POST_CALLBACKS: [&str; 4] = ["createUpload", "listChunks", "complete", "abort"];

/// Every option name we accept.
pub const OPTION_NAMES: [&str; 48] = [
    "target",
    "testTarget",
    "chunkSize",
    "maxChunkSize",
    "forceChunkSize",
    "simultaneousUploads",
    "maxSimultaneousUploads",
    "testChunks",
    "protocol",
    "parameterNamespace",
    "chunkNumberParameterName",
    "chunkSizeParameterName",
    "currentChunkSizeParameterName",
    "totalSizeParameterName",
    "typeParameterName",
    "identifierParameterName",
    "fileNameParameterName",
    "relativePathParameterName",
    "totalChunksParameterName",
    "fileParameterName",
    "query",
    "headers",
    "withCredentials",
    "method",
    "uploadMethod",
    "testMethod",
    "maxChunkRetries",
    "chunkRetryInterval",
    "maxRetryInterval",
    "permanentErrors",
    "successStatuses",
    "timeout",
    "progress",
    "maxFiles",
    "minFileSize",
    "maxFileSize",
    "fileType",
    "generateUniqueIdentifier",
    "identifier",
    "parallelFiles",
    "prioritizeFirstAndLastChunk",
    "diagnoseCors",
    "s3",
    "persist",
    "persistBlobMaxBytes",
    "background",
    "checksum",
    "preprocess",
];

/// Resumable.js / Flow.js option names we do not take, with what to use instead.
const RENAMED: [(&str, &str); 14] = [
    ("xhrTimeout", "use `timeout` (milliseconds, 0 = none)"),
    ("singleFile", "use `maxFiles: 1`"),
    ("chunkFormat", "chunks are always sent as binary Blobs"),
    (
        "setChunkTypeFromFile",
        "chunks are sent untyped so requests stay CORS-simple",
    ),
    ("preprocessFile", "not supported"),
    ("readFileFn", "not supported"),
    ("asyncReadFileFn", "not supported"),
    ("changeRawDataBeforeSend", "not supported"),
    ("initFileFn", "not supported"),
    (
        "allowDuplicateUploads",
        "not supported: a file already queued is refused with rule `duplicate`",
    ),
    (
        "maxFilesErrorCallback",
        "refused files are returned as errors of kind `rejected`",
    ),
    (
        "minFileSizeErrorCallback",
        "refused files are returned as errors of kind `rejected`",
    ),
    (
        "maxFileSizeErrorCallback",
        "refused files are returned as errors of kind `rejected`",
    ),
    (
        "fileTypeErrorCallback",
        "refused files are returned as errors of kind `rejected`",
    ),
];

/// The default `maxChunkSize`: 8 MiB, under the common body limits of application servers
/// and proxies (PHP's `post_max_size` is 8 MB), enough for a 1 Gbit/s link at 200 ms.
pub const DEFAULT_MAX_CHUNK_SIZE: u64 = 8 << 20;

const RESUMABLE_PERMANENT: [u16; 8] = [400, 401, 403, 404, 409, 415, 500, 501];
const FLOW_PERMANENT: [u16; 5] = [404, 413, 415, 500, 501];

impl Config {
    /// A configuration with every default and the given `target` (not validated).
    #[must_use]
    pub fn new(target: &str) -> Config {
        let param_names = PARAM_OPTIONS.map(|(_, n)| Some(n.to_string()));
        Config {
            target: target.to_string(),
            test_target: None,
            chunk_size: 1 << 20,
            chunk_auto: false,
            max_chunk_size: DEFAULT_MAX_CHUNK_SIZE,
            force_chunk_size: false,
            simultaneous_uploads: None,
            max_simultaneous_uploads: crate::engine::concurrency::DEFAULT_MAX_WINDOW,
            test_chunks: TestChunks::Auto,
            protocol: Protocol::Resumable,
            parameter_namespace: String::new(),
            param_names,
            file_parameter_name: "file".to_string(),
            query: Vec::new(),
            query_fn: false,
            headers: Vec::new(),
            headers_fn: false,
            with_credentials: false,
            upload_mode: UploadMode::Multipart,
            upload_method: "POST".to_string(),
            test_method: "GET".to_string(),
            max_chunk_retries: 8,
            chunk_retry_interval_ms: 500,
            max_retry_interval_ms: 30_000,
            permanent_errors: RESUMABLE_PERMANENT.to_vec(),
            success_statuses: vec![200, 201],
            timeout_ms: 120_000,
            progress: ProgressMode::Chunk,
            max_files: None,
            min_file_size: 1,
            max_file_size: None,
            file_type: Vec::new(),
            identifier_fn: false,
            identifier: IdentifierMode::Compatible,
            parallel_files: false,
            prioritize_first_and_last_chunk: false,
            diagnose_cors: true,
            persist: false,
            persist_blob_max_bytes: 4 << 20,
            background: false,
            checksum: None,
            target_fn: false,
            preprocess_fn: false,
            page_origin: None,
            cors_enforced: true,
            s3: None,
        }
    }

    /// [`Config::new`] switched to `protocol` with that dialect's defaults.
    #[must_use]
    pub fn with_protocol(mut self, protocol: Protocol) -> Config {
        self.protocol = protocol;
        match protocol {
            Protocol::Resumable => {
                self.permanent_errors = RESUMABLE_PERMANENT.to_vec();
                self.success_statuses = vec![200, 201];
                self.min_file_size = 1;
            }
            Protocol::Flow => {
                self.permanent_errors = FLOW_PERMANENT.to_vec();
                self.success_statuses = vec![200, 201, 202];
                self.min_file_size = 0;
            }
        }
        self
    }

    /// Fits a parsed Config to the JavaScript runtime it runs in: `browser` — a window or a
    /// worker, whose browser enforces CORS ([`Config::cors_enforced`]); `xhr` — whether
    /// `XMLHttpRequest` exists (Node, Deno and Bun have none).
    ///
    /// # Errors
    /// `invalid` naming `progress` for `progress: 'bytes'` without `XMLHttpRequest`: byte
    /// progress comes from its upload listener, and quietly reporting per chunk instead would
    /// hide that the option does nothing.
    pub fn for_runtime(mut self, browser: bool, xhr: bool) -> Result<Config, UploadError> {
        self.cors_enforced = browser;
        if self.progress == ProgressMode::Bytes && !xhr {
            return Err(UploadError::invalid(
                "progress",
                "progress: 'bytes' needs XMLHttpRequest, which this runtime lacks (Node, Deno and Bun have none): use progress: 'chunk'",
            ));
        }
        Ok(self)
    }

    /// The URL probes go to: `testTarget`, else `target`.
    #[must_use]
    pub fn probe_target(&self) -> &str {
        self.test_target.as_deref().unwrap_or(&self.target)
    }

    /// Whether `testTarget` names a URL of its own.
    #[must_use]
    pub fn test_target_set(&self) -> bool {
        self.test_target.is_some()
    }

    /// Builds a validated Config from the user's option object. `get(name)` returns that
    /// option's value; `keys` are the object's own keys; `page_origin` is the page's origin.
    ///
    /// Unknown keys are errors too: a Resumable.js/Flow.js name we renamed gets a pointer to
    /// ours (`xhrTimeout` → `timeout`), a typo gets "did you mean".
    ///
    /// # Errors
    /// An [`crate::engine::ErrorKind::Invalid`] error whose `option` names the first bad option.
    ///
    /// ```
    /// use resumable_wasm::engine::config::{Config, OptionValue};
    /// let keys = vec!["target".to_string(), "chunkSize".to_string()];
    /// let get = |k: &str| match k {
    ///     "target" => OptionValue::Str("https://up.example/u".into()),
    ///     "chunkSize" => OptionValue::number(-5.0),
    ///     _ => OptionValue::Missing,
    /// };
    /// let err = Config::from_options(&keys, &get, None).unwrap_err();
    /// assert_eq!(err.message, "chunkSize must be a positive integer of at most 2^53-1, got -5");
    /// ```
    pub fn from_options(
        keys: &[String],
        get: &dyn Fn(&str) -> OptionValue,
        page_origin: Option<&str>,
    ) -> Result<Config, UploadError> {
        parse(keys, get, page_origin).map_err(|e| *e)
    }
}

/// [`Config::from_options`], with the error boxed: every `?` then moves one pointer instead of
/// a whole [`UploadError`], which keeps this long function small in wasm.
fn parse(
    keys: &[String],
    get: &dyn Fn(&str) -> OptionValue,
    page_origin: Option<&str>,
) -> Res<Config> {
    for k in keys {
        check_key(k)?;
    }
    // A getter (or proxy) that threw while its option was read: say which, and what it threw.
    for name in OPTION_NAMES {
        if let OptionValue::Threw(what) = get(name) {
            let mut m = String::from("reading option ");
            m.push_str(name);
            m.push_str(" threw: ");
            m.push_str(&what);
            return Err(bad(name, m));
        }
    }
    let which = choice(
        get("protocol"),
        "protocol",
        &["resumable", "flow", "s3", "s3-post"],
        "'resumable', 'flow', 's3' or 's3-post'",
    )?;
    let protocol = if which == 1 {
        Protocol::Flow
    } else {
        Protocol::Resumable
    };
    let mut c = Config::new("").with_protocol(protocol);
    c.page_origin = page_origin.map(str::to_string);
    c.s3 = s3_options(get("s3"), which >= 2, which == 3)?;
    c.target = match get("target") {
        // The app's callbacks say where each part goes: no target under 's3'.
        OptionValue::Missing if c.s3.is_some() => String::new(),
        OptionValue::Str(s) => url("target", s)?,
        OptionValue::Function => {
            c.target_fn = true;
            String::new()
        }
        OptionValue::Missing => {
            return Err(bad(
                "target",
                "target is required: the absolute URL of the upload endpoint",
            ))
        }
        v => return Err(wrong("target", "an http(s) URL string or a function", &v)),
    };
    c.test_target = match get("testTarget") {
        OptionValue::Missing | OptionValue::Null => None,
        OptionValue::Str(s) if s.is_empty() => None,
        OptionValue::Str(s) => Some(url("testTarget", s)?),
        v => return Err(wrong("testTarget", "an http(s) URL string", &v)),
    };
    match get("chunkSize") {
        OptionValue::Str(s) if s == "auto" => c.chunk_auto = true,
        v @ OptionValue::Str(_) => {
            return Err(wrong("chunkSize", "'auto' or a positive integer", &v))
        }
        _ => {
            if let Some(n) = int(get, "chunkSize", 1, MAX_SAFE_INTEGER, POSITIVE)? {
                c.chunk_size = n;
            }
        }
    }
    if let Some(n) = int(
        get,
        "maxChunkSize",
        c.chunk_size,
        MAX_SAFE_INTEGER,
        "an integer of at least 1 MiB (1048576)",
    )? {
        if !c.chunk_auto {
            return Err(bad(
                "maxChunkSize",
                "maxChunkSize applies only with chunkSize: 'auto'",
            ));
        }
        c.max_chunk_size = n;
    }
    bool_opt(get, "forceChunkSize", &mut c.force_chunk_size)?;
    let slots = "'auto' or an integer from 1 to 64";
    c.simultaneous_uploads = match get("simultaneousUploads") {
        OptionValue::Str(s) if s == "auto" => None,
        v @ OptionValue::Str(_) => return Err(wrong("simultaneousUploads", slots, &v)),
        _ => int(get, "simultaneousUploads", 1, 64, slots)?.map(u32_of),
    };
    let most = "an integer from 1 to 64";
    if let Some(n) = int(get, "maxSimultaneousUploads", 1, 64, most)? {
        c.max_simultaneous_uploads = u32_of(n);
    }
    c.test_chunks = match get("testChunks") {
        OptionValue::Bool(true) => TestChunks::Always,
        OptionValue::Bool(false) => TestChunks::Never,
        v => {
            choice(v, "testChunks", &["auto"], "'auto', true or false")?;
            TestChunks::Auto
        }
    };
    let ns = string(get, "parameterNamespace")?;
    for (i, (opt, _)) in PARAM_OPTIONS.iter().enumerate() {
        let v = get(opt);
        if matches!(v, OptionValue::Missing) {
            continue;
        }
        if protocol == Protocol::Flow {
            return Err(resumable_only(opt));
        }
        let name = match v {
            OptionValue::Null | OptionValue::Bool(false) => None,
            OptionValue::Number(n, _) if n == 0.0 || n.is_nan() => None,
            OptionValue::Str(s) if s.is_empty() => None,
            OptionValue::Str(s) => Some(s),
            v => return Err(wrong(opt, "a string, or a falsy value to drop it", &v)),
        };
        if let Some(slot) = c.param_names.get_mut(i) {
            *slot = name;
        }
    }
    if let Some(ns) = ns {
        if protocol == Protocol::Flow && !ns.is_empty() {
            return Err(resumable_only("parameterNamespace"));
        }
        c.parameter_namespace = ns;
    }
    if let Some(s) = string(get, "fileParameterName")? {
        if s.is_empty() {
            return Err(bad(
                "fileParameterName",
                "fileParameterName must be a non-empty string",
            ));
        }
        c.file_parameter_name = s;
    }
    match get("query") {
        OptionValue::Missing | OptionValue::Null => {}
        OptionValue::Function => c.query_fn = true,
        OptionValue::Map(m) => c.query = pairs("query", m, true)?,
        v => return Err(wrong("query", "an object or a function", &v)),
    }
    match get("headers") {
        OptionValue::Missing | OptionValue::Null => {}
        OptionValue::Function => c.headers_fn = true,
        OptionValue::Map(m) => c.headers = pairs("headers", m, false)?,
        v => return Err(wrong("headers", "an object of strings or a function", &v)),
    }
    bool_opt(get, "withCredentials", &mut c.with_credentials)?;
    if choice(
        get("method"),
        "method",
        &["multipart", "octet"],
        "'multipart' or 'octet'",
    )? == 1
    {
        c.upload_mode = UploadMode::Octet;
    }
    if let Some(m) = string(get, "uploadMethod")? {
        c.upload_method = http_method("uploadMethod", &m)?;
    }
    if let Some(m) = string(get, "testMethod")? {
        c.test_method = http_method("testMethod", &m)?;
    }
    if let Some(n) = int(get, "maxChunkRetries", 0, 1000, "an integer from 0 to 1000")? {
        c.max_chunk_retries = u32_of(n);
    }
    // A backoff is bounded (an hour): a retry years away is an upload() that never settles.
    let backoff = "an integer number of milliseconds from 0 to 3600000 (an hour)";
    if let Some(n) = int(get, "chunkRetryInterval", 0, MAX_DELAY_MS, backoff)? {
        c.chunk_retry_interval_ms = n;
    }
    match int(get, "maxRetryInterval", 0, MAX_DELAY_MS, backoff)? {
        Some(n) if n < c.chunk_retry_interval_ms => {
            let mut m = String::from("maxRetryInterval ");
            m.push_str(&n.to_string());
            m.push_str(" is below chunkRetryInterval ");
            m.push_str(&c.chunk_retry_interval_ms.to_string());
            m.push_str(": the largest backoff cannot be smaller than the first");
            return Err(bad("maxRetryInterval", m));
        }
        Some(n) => c.max_retry_interval_ms = n,
        // The default largest backoff never undercuts a larger first one.
        None => c.max_retry_interval_ms = c.max_retry_interval_ms.max(c.chunk_retry_interval_ms),
    }
    let ms = "an integer number of milliseconds from 0 to 2^53-1";
    if let Some(v) = statuses(get, "permanentErrors")? {
        c.permanent_errors = v;
    }
    if let Some(v) = statuses(get, "successStatuses")? {
        if v.is_empty() {
            return Err(bad(
                "successStatuses",
                "successStatuses must list at least one status: with none, no chunk could ever be stored",
            ));
        }
        c.success_statuses = v;
    }
    if let Some(&s) = c
        .success_statuses
        .iter()
        .find(|s| c.permanent_errors.contains(s))
    {
        let mut m = String::from("status ");
        m.push_str(&u64::from(s).to_string());
        m.push_str(" is in both successStatuses and permanentErrors");
        return Err(bad("successStatuses", m));
    }
    if let Some(n) = int(get, "timeout", 0, MAX_SAFE_INTEGER, ms)? {
        c.timeout_ms = n;
    }
    if choice(
        get("progress"),
        "progress",
        &["chunk", "bytes"],
        "'chunk' or 'bytes'",
    )? == 1
    {
        c.progress = ProgressMode::Bytes;
    }
    let count = "a positive integer";
    c.max_files = int(get, "maxFiles", 1, u64::from(u32::MAX), count)?.map(u32_of);
    let bytes = "an integer number of bytes from 0 to 2^53-1";
    if let Some(n) = int(get, "minFileSize", 0, MAX_SAFE_INTEGER, bytes)? {
        c.min_file_size = n;
    }
    c.max_file_size = int(get, "maxFileSize", 0, MAX_SAFE_INTEGER, bytes)?;
    if let (Some(max), min) = (c.max_file_size, c.min_file_size) {
        if max < min {
            return Err(bad(
                "maxFileSize",
                "maxFileSize is smaller than minFileSize: no file could be accepted",
            ));
        }
    }
    c.file_type = match get("fileType") {
        OptionValue::Missing | OptionValue::Null => Vec::new(),
        OptionValue::Str(s) => vec![s.to_ascii_lowercase()],
        OptionValue::List(l) => {
            let mut out = Vec::new();
            for v in l {
                match v {
                    OptionValue::Str(s) if !s.is_empty() => out.push(s.to_ascii_lowercase()),
                    v => {
                        return Err(wrong(
                            "fileType",
                            "a list of extensions or MIME types (non-empty strings)",
                            &v,
                        ))
                    }
                }
            }
            out
        }
        v => return Err(wrong("fileType", "a list of extensions or MIME types", &v)),
    };
    match get("generateUniqueIdentifier") {
        OptionValue::Missing | OptionValue::Null => {}
        OptionValue::Function => c.identifier_fn = true,
        v => return Err(wrong("generateUniqueIdentifier", "a function", &v)),
    }
    if choice(
        get("identifier"),
        "identifier",
        &["compatible", "unique"],
        "'compatible' or 'unique'",
    )? == 1
    {
        c.identifier = IdentifierMode::Unique;
    }
    bool_opt(get, "parallelFiles", &mut c.parallel_files)?;
    bool_opt(
        get,
        "prioritizeFirstAndLastChunk",
        &mut c.prioritize_first_and_last_chunk,
    )?;
    bool_opt(get, "diagnoseCors", &mut c.diagnose_cors)?;
    bool_opt(get, "persist", &mut c.persist)?;
    let bytes = "an integer number of bytes from 0 to 2^53-1";
    if let Some(n) = int(get, "persistBlobMaxBytes", 0, MAX_SAFE_INTEGER, bytes)? {
        c.persist_blob_max_bytes = n;
    }
    c.preprocess_fn = match get("preprocess") {
        OptionValue::Missing | OptionValue::Null => false,
        OptionValue::Function => true,
        v => return Err(wrong("preprocess", "a function", &v)),
    };
    c.checksum = match get("checksum") {
        OptionValue::Missing | OptionValue::Null | OptionValue::Bool(false) => None,
        OptionValue::Bool(true) => Some(Algorithm::Crc32c),
        OptionValue::Str(s) if s == "crc32c" => Some(Algorithm::Crc32c),
        OptionValue::Str(s) if s == "sha256" => Some(Algorithm::Sha256),
        v => return Err(wrong("checksum", "'crc32c', 'sha256' or false", &v)),
    };
    // Not wired into the POST-policy mode: refused by name rather than silently not done (chunks
    // would go unchecked).
    if c.checksum.is_some() && c.s3.is_some_and(|o| o.post) {
        return Err(bad(
            "checksum",
            "is not available with protocol 's3-post' yet",
        ));
    }
    bool_opt(get, "background", &mut c.background)?;
    // Object storage cuts parts by its own rules; a Background Fetch job is made before the
    // page has measured anything.
    if c.chunk_auto && (c.s3.is_some() || c.background) {
        return Err(bad(
            "chunkSize",
            "chunkSize 'auto' is not available with protocol 's3'/'s3-post' or background",
        ));
    }
    // A job's requests are made once, up front, and its answers land in the durable-resume
    // record: per-chunk page functions, checksums and S3's own steps have no place in it.
    let page_bound = c.query_fn || c.headers_fn || c.target_fn || c.preprocess_fn;
    if c.background && (!c.persist || page_bound || c.checksum.is_some() || c.s3.is_some()) {
        return Err(bad(
            "background",
            "needs persist: true, and no checksum, s3, preprocess or query/headers/target function",
        ));
    }
    Ok(c)
}

/// The `s3` option: an object of the callbacks in [`S3_CALLBACKS`] (all but `signUpload`
/// required), only with `protocol: 's3'`; with `protocol: 's3-post'` (`post`) those of
/// [`S3_POST_CALLBACKS`].
fn s3_options(v: OptionValue, wanted: bool, post: bool) -> Res<Option<S3Options>> {
    let names: &[&str] = if post {
        &S3_POST_CALLBACKS
    } else {
        &S3_CALLBACKS
    };
    let pairs = match v {
        OptionValue::Missing | OptionValue::Null if !wanted => return Ok(None),
        OptionValue::Missing | OptionValue::Null => {
            return Err(bad(
                "s3",
                if post {
                    "protocol 's3-post' needs the s3 option: { createUpload, listChunks, complete, abort }"
                } else {
                    "protocol 's3' needs the s3 option: { createMultipartUpload, signPart, listParts, completeMultipartUpload, abortMultipartUpload, signUpload? }"
                },
            ))
        }
        _ if !wanted => return Err(bad("s3", "the s3 option needs protocol: 's3' or 's3-post'")),
        OptionValue::Map(pairs) => pairs,
        v => return Err(wrong("s3", "an object of callbacks", &v)),
    };
    for (name, value) in &pairs {
        if !names.contains(&name.as_str()) {
            let mut m = String::from("s3.");
            m.push_str(name);
            m.push_str(" is not an S3 callback; the callbacks are ");
            m.push_str(&names.join(", "));
            return Err(bad("s3", m));
        }
        if !matches!(value, OptionValue::Function | OptionValue::Missing) {
            let mut m = String::from("s3.");
            m.push_str(name);
            m.push_str(" must be a function (it may be async), ");
            m.push_str(&describe(value));
            return Err(bad("s3", m));
        }
    }
    let given = |n: &str| {
        pairs
            .iter()
            .any(|(k, v)| k == n && *v == OptionValue::Function)
    };
    // Every POST callback is required; of the multipart ones all but `signUpload`.
    let required = if post { 4 } else { 5 };
    if let Some(missing) = names.iter().take(required).find(|n| !given(n)) {
        let mut m = String::from("s3.");
        m.push_str(missing);
        m.push_str(" is required: a function (it may be async)");
        return Err(bad("s3", m));
    }
    Ok(Some(S3Options {
        sign_upload: !post && given("signUpload"),
        post,
    }))
}

/// Results of the option parsers; see [`parse`].
type Res<T> = Result<T, Box<UploadError>>;

/// A boxed [`crate::engine::ErrorKind::Invalid`] error naming `option`.
fn bad(option: &str, message: impl Into<String>) -> Box<UploadError> {
    Box::new(UploadError::invalid(option, message))
}

const POSITIVE: &str = "a positive integer of at most 2^53-1";

fn u32_of(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn check_key(k: &str) -> Res<()> {
    if OPTION_NAMES.contains(&k) {
        return Ok(());
    }
    let mut m = String::from("unknown option `");
    m.push_str(k);
    m.push('`');
    if let Some((_, why)) = RENAMED.iter().find(|(n, _)| *n == k) {
        m.push_str(": ");
        m.push_str(why);
    } else if let Some(best) = suggest(k) {
        m.push_str(": did you mean `");
        m.push_str(best);
        m.push_str("`?");
    }
    Err(bad(k, m))
}

/// The closest known option name, if it is close enough to be a typo.
fn suggest(k: &str) -> Option<&'static str> {
    let lk = k.to_ascii_lowercase();
    let mut best: Option<(usize, &'static str)> = None;
    for n in OPTION_NAMES {
        let d = distance(&lk, &n.to_ascii_lowercase());
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, n));
        }
    }
    let limit = if k.len() > 8 { 3 } else { 2 };
    best.filter(|(d, _)| *d <= limit).map(|(_, n)| n)
}

/// Levenshtein distance over bytes.
fn distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = cur.get(j).copied().unwrap_or(0) + 1;
            cur.push(sub.min(del).min(ins));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

/// Describes a value for a message: `got -5`, `got a string "x"`, `got null`.
fn describe(v: &OptionValue) -> String {
    match v {
        OptionValue::Missing => "got undefined".into(),
        OptionValue::Null => "got null".into(),
        OptionValue::Bool(b) => if *b { "got true" } else { "got false" }.into(),
        OptionValue::Number(_, text) => {
            let mut s = String::from("got ");
            s.push_str(text);
            s
        }
        OptionValue::Str(s) => {
            let mut m = String::from("got \"");
            let end = s.char_indices().nth(60).map_or(s.len(), |(i, _)| i);
            m.push_str(s.get(..end).unwrap_or(s));
            m.push('"');
            m
        }
        OptionValue::List(_) => "got an array".into(),
        OptionValue::Map(_) => "got an object".into(),
        OptionValue::Function => "got a function".into(),
        OptionValue::Other(t) => {
            let mut m = String::from("got a value of type ");
            m.push_str(t);
            m
        }
        OptionValue::Threw(t) => {
            let mut m = String::from("reading it threw: ");
            m.push_str(t);
            m
        }
    }
}

fn wrong(name: &str, expected: &str, v: &OptionValue) -> Box<UploadError> {
    let mut m = String::from(name);
    m.push_str(" must be ");
    m.push_str(expected);
    m.push_str(", ");
    m.push_str(&describe(v));
    bad(name, m)
}

/// A string option with a fixed set of values: the index of `v` in `choices`, 0 when it is
/// absent or `null` (the first choice is the default).
fn choice(v: OptionValue, name: &str, choices: &[&str], expected: &str) -> Res<usize> {
    let at = match &v {
        OptionValue::Missing | OptionValue::Null => Some(0),
        OptionValue::Str(s) => choices.iter().position(|c| c == s),
        _ => None,
    };
    at.ok_or_else(|| wrong(name, expected, &v))
}

fn resumable_only(name: &str) -> Box<UploadError> {
    let mut m = String::from(name);
    m.push_str(" is a Resumable.js option; protocol 'flow' uses the fixed flow* names");
    bad(name, m)
}

fn url(name: &str, s: String) -> Res<String> {
    let lower = s.get(..8).unwrap_or(&s).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        s.get(8..)
    } else if lower.starts_with("http://") {
        s.get(7..)
    } else {
        None
    };
    match rest {
        Some(r)
            if !r.is_empty()
                && !r.starts_with('/')
                && !r.chars().any(char::is_whitespace)
                && valid_authority(&s) =>
        {
            Ok(s)
        }
        _ => {
            let mut m = String::from(name);
            m.push_str(" must be an absolute http(s) URL, ");
            m.push_str(&describe(&OptionValue::Str(s)));
            Err(bad(name, m))
        }
    }
}

/// Whether the host and port of the absolute http(s) URL `s` can be parsed: a host, an IPv6
/// literal in brackets made of hex digits, `:` and `.`, a port of digits up to 65535.
fn valid_authority(s: &str) -> bool {
    let Some((_, host, port)) = authority(s) else {
        return false;
    };
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(ip) => {
            !ip.is_empty()
                && ip
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        }
        None => !host.bytes().any(|b| b == b'[' || b == b']'),
    };
    host_ok
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u32>().map_or(port.is_empty(), |p| p <= 65_535)
}

fn http_method(name: &str, m: &str) -> Res<String> {
    let ok = !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphabetic());
    if !ok {
        return Err(wrong(
            name,
            "an HTTP method name such as 'POST'",
            &OptionValue::Str(m.to_string()),
        ));
    }
    let up = m.to_ascii_uppercase();
    if matches!(up.as_str(), "CONNECT" | "TRACE" | "TRACK") {
        return Err(wrong(
            name,
            "a method browsers allow (not CONNECT, TRACE or TRACK)",
            &OptionValue::Str(m.to_string()),
        ));
    }
    // XHR uppercases only the standard methods; others are sent as written.
    if matches!(
        up.as_str(),
        "DELETE" | "GET" | "HEAD" | "OPTIONS" | "POST" | "PUT"
    ) {
        Ok(up)
    } else {
        Ok(m.to_string())
    }
}

fn bool_opt(get: &dyn Fn(&str) -> OptionValue, name: &str, slot: &mut bool) -> Res<()> {
    match get(name) {
        OptionValue::Missing | OptionValue::Null => Ok(()),
        OptionValue::Bool(b) => {
            *slot = b;
            Ok(())
        }
        v => Err(wrong(name, "true or false", &v)),
    }
}

fn string(get: &dyn Fn(&str) -> OptionValue, name: &str) -> Res<Option<String>> {
    match get(name) {
        OptionValue::Missing | OptionValue::Null => Ok(None),
        OptionValue::Str(s) => Ok(Some(s)),
        v => Err(wrong(name, "a string", &v)),
    }
}

/// An integer option in `lo..=hi`; `what` completes "`name` must be ...".
fn int(
    get: &dyn Fn(&str) -> OptionValue,
    name: &str,
    lo: u64,
    hi: u64,
    what: &str,
) -> Res<Option<u64>> {
    let v = get(name);
    match v {
        OptionValue::Missing | OptionValue::Null => Ok(None),
        OptionValue::Number(n, _) => num_in(n, lo, hi)
            .map(Some)
            .ok_or_else(|| wrong(name, what, &v)),
        v => Err(wrong(name, what, &v)),
    }
}

/// `n` when it is a whole number in `lo..=hi` (`hi` at most 2^53-1).
fn num_in(n: f64, lo: u64, hi: u64) -> Option<u64> {
    float::whole(n).filter(|v| (lo..=hi).contains(v))
}

fn statuses(get: &dyn Fn(&str) -> OptionValue, name: &str) -> Res<Option<Vec<u16>>> {
    let what = "a list of HTTP statuses (integers from 100 to 599)";
    match get(name) {
        OptionValue::Missing | OptionValue::Null => Ok(None),
        OptionValue::List(l) => {
            let mut out = Vec::with_capacity(l.len());
            for v in l {
                match v {
                    OptionValue::Number(n, text) => match num_in(n, 100, 599) {
                        Some(s) => out.push(u16::try_from(s).unwrap_or(0)),
                        None => return Err(wrong(name, what, &OptionValue::Number(n, text))),
                    },
                    v => return Err(wrong(name, what, &v)),
                }
            }
            Ok(Some(out))
        }
        v => Err(wrong(name, what, &v)),
    }
}

fn pairs(
    name: &str,
    m: Vec<(String, OptionValue)>,
    allow_scalars: bool,
) -> Res<Vec<(String, String)>> {
    let mut out = Vec::with_capacity(m.len());
    for (k, v) in m {
        let s = match v {
            OptionValue::Str(s) => s,
            OptionValue::Number(_, text) => text,
            OptionValue::Bool(b) if allow_scalars => if b { "true" } else { "false" }.into(),
            v => {
                let mut field = String::from(name);
                field.push('.');
                field.push_str(&k);
                let what = if allow_scalars {
                    "a string, number or boolean"
                } else {
                    "a string"
                };
                let mut e = wrong(&field, what, &v);
                e.option = Some(name.to_string());
                return Err(e);
            }
        };
        if !allow_scalars && k.eq_ignore_ascii_case("content-type") {
            return Err(bad(
                name,
                "headers must not set Content-Type: the browser sets it for FormData, and a typed raw chunk would force a CORS preflight",
            ));
        }
        if !allow_scalars && !valid_header(&k, &s) {
            let mut m = String::from("headers must hold valid HTTP header names and values, got `");
            m.push_str(&k);
            m.push('`');
            return Err(bad(name, m));
        }
        out.push((k, s));
    }
    Ok(out)
}

fn valid_header(name: &str, value: &str) -> bool {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    !name.is_empty()
        && name.bytes().all(token)
        && !value.bytes().any(|b| b == 0 || b == b'\r' || b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(opts: &[(&str, OptionValue)]) -> Result<Config, UploadError> {
        let keys: Vec<String> = opts.iter().map(|(k, _)| (*k).to_string()).collect();
        let opts: Vec<(String, OptionValue)> = opts
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect();
        let get = move |k: &str| {
            opts.iter()
                .find(|(n, _)| n == k)
                .map_or(OptionValue::Missing, |(_, v)| v.clone())
        };
        Config::from_options(&keys, &get, Some("https://app.example"))
    }

    fn s(v: &str) -> OptionValue {
        OptionValue::Str(v.to_string())
    }
    fn n(v: f64) -> OptionValue {
        OptionValue::number(v)
    }
    const T: (&str, OptionValue) = ("target", OptionValue::Missing);

    fn with_target(extra: Vec<(&'static str, OptionValue)>) -> Result<Config, UploadError> {
        let mut v = vec![("target", s("https://up.example/upload"))];
        v.extend(extra);
        parse(&v)
    }

    #[test]
    fn background_needs_persist_and_no_per_chunk_page_work() {
        let on = OptionValue::Bool(true);
        let e = with_target(vec![("background", on.clone())]).unwrap_err();
        assert_eq!(e.option.as_deref(), Some("background"));
        assert!(e.message.contains("needs persist: true"), "{}", e.message);
        let c = with_target(vec![("background", on.clone()), ("persist", on.clone())]).unwrap();
        assert!(c.background && c.persist);
        for (name, value) in [
            ("checksum", s("crc32c")),
            ("preprocess", OptionValue::Function),
            ("query", OptionValue::Function),
            ("headers", OptionValue::Function),
        ] {
            let e = with_target(vec![
                ("background", on.clone()),
                ("persist", on.clone()),
                (name, value),
            ])
            .unwrap_err();
            assert_eq!(
                e.option.as_deref(),
                Some("background"),
                "background with {name}"
            );
        }
        assert!(!with_target(vec![]).unwrap().background);
    }

    #[test]
    fn s3_post_takes_its_own_four_callbacks() {
        let post = |names: &[&str]| {
            OptionValue::Map(
                names
                    .iter()
                    .map(|n| ((*n).to_owned(), OptionValue::Function))
                    .collect(),
            )
        };
        let c = parse(&[("protocol", s("s3-post")), ("s3", post(&S3_POST_CALLBACKS))]).unwrap();
        assert_eq!(
            c.s3,
            Some(S3Options {
                sign_upload: false,
                post: true
            })
        );
        // The multipart callbacks are not this protocol's, and every POST callback is required.
        let e = parse(&[("protocol", s("s3-post")), ("s3", post(&S3_CALLBACKS))]).unwrap_err();
        assert!(
            e.message
                .starts_with("s3.createMultipartUpload is not an S3 callback"),
            "{}",
            e.message
        );
        let e = parse(&[
            ("protocol", s("s3-post")),
            ("s3", post(&S3_POST_CALLBACKS[..3])),
        ])
        .unwrap_err();
        assert_eq!(
            e.message,
            "s3.abort is required: a function (it may be async)"
        );
        let e = parse(&[("protocol", s("s3-post"))]).unwrap_err();
        assert!(
            e.message
                .contains("{ createUpload, listChunks, complete, abort }"),
            "{}",
            e.message
        );
        let with = |name: &str, v: OptionValue| {
            parse(&[
                ("protocol", s("s3-post")),
                ("s3", post(&S3_POST_CALLBACKS)),
                (name, v),
            ])
        };
        assert!(with("persist", OptionValue::Bool(true)).is_ok_and(|c| c.persist));
        let e = with("checksum", OptionValue::Bool(true)).unwrap_err();
        assert_eq!(
            (e.option.as_deref(), e.message.as_str()),
            (
                Some("checksum"),
                "is not available with protocol 's3-post' yet"
            )
        );
    }

    #[test]
    fn s3_needs_its_callbacks_and_no_target() {
        let all = || {
            OptionValue::Map(
                S3_CALLBACKS
                    .iter()
                    .map(|n| ((*n).to_owned(), OptionValue::Function))
                    .collect(),
            )
        };
        let c = parse(&[("protocol", s("s3")), ("s3", all())]).unwrap();
        assert_eq!(
            c.s3,
            Some(S3Options {
                sign_upload: true,
                post: false
            })
        );
        let e = parse(&[("protocol", s("s3"))]).unwrap_err();
        assert_eq!(e.option.as_deref(), Some("s3"));
        // An S3 upload is kept and resumed through listParts.
        let c = parse(&[
            ("protocol", s("s3")),
            ("s3", all()),
            ("persist", OptionValue::Bool(true)),
        ])
        .unwrap();
        assert!(c.persist && c.s3.is_some());
        // Each part's checksum is handed to signPart and checked by the store.
        for algorithm in ["crc32c", "sha256"] {
            let c = parse(&[
                ("protocol", s("s3")),
                ("s3", all()),
                ("checksum", s(algorithm)),
            ]);
            assert_eq!(c.unwrap().checksum.map(Algorithm::as_str), Some(algorithm));
        }
        let e = with_target(vec![("s3", all())]).unwrap_err();
        assert!(e.message.contains("needs protocol: 's3'"), "{}", e.message);
        let OptionValue::Map(mut some) = all() else {
            unreachable!()
        };
        some.retain(|(n, _)| n != "listParts");
        let e = parse(&[
            ("protocol", s("s3")),
            ("s3", OptionValue::Map(some.clone())),
        ])
        .unwrap_err();
        assert_eq!(
            e.message,
            "s3.listParts is required: a function (it may be async)"
        );
        some.push(("signPart2".into(), OptionValue::Function));
        let e = parse(&[("protocol", s("s3")), ("s3", OptionValue::Map(some))]).unwrap_err();
        assert!(
            e.message.starts_with("s3.signPart2 is not an S3 callback"),
            "{}",
            e.message
        );
    }

    fn msg(r: Result<Config, UploadError>) -> (String, String) {
        let e = r.unwrap_err();
        (e.option.unwrap_or_default(), e.message)
    }

    #[test]
    fn the_runtime_decides_cors_and_whether_byte_progress_can_be_had() {
        let c = with_target(vec![]).unwrap();
        assert!(c.cors_enforced, "a browser by default");
        let node = c.clone().for_runtime(false, false).unwrap();
        assert!(!node.cors_enforced);
        assert!(c.clone().for_runtime(true, true).unwrap().cors_enforced);
        let bytes = with_target(vec![("progress", s("bytes"))]).unwrap();
        assert!(bytes.clone().for_runtime(true, true).is_ok());
        let (option, message) = msg(bytes.for_runtime(false, false));
        assert_eq!(option, "progress");
        assert!(message.contains("XMLHttpRequest"), "{message}");
    }

    #[test]
    fn defaults() {
        let c = with_target(vec![]).unwrap();
        assert_eq!(c.chunk_size, 1 << 20);
        assert_eq!(c.simultaneous_uploads, None, "'auto'");
        assert_eq!(c.max_simultaneous_uploads, 64);
        assert_eq!(c.test_chunks, TestChunks::Auto);
        assert_eq!(c.success_statuses, vec![200, 201]);
        assert_eq!(c.min_file_size, 1);
        assert_eq!(c.page_origin.as_deref(), Some("https://app.example"));
        let f = with_target(vec![("protocol", s("flow"))]).unwrap();
        assert_eq!(f.success_statuses, vec![200, 201, 202]);
        assert_eq!(f.permanent_errors, vec![404, 413, 415, 500, 501]);
        assert_eq!(f.min_file_size, 0);
    }

    #[test]
    fn target_rules() {
        let _ = T;
        assert_eq!(msg(parse(&[])).0, "target");
        assert!(msg(parse(&[("target", s("/upload"))]))
            .1
            .contains("absolute"));
        assert!(msg(parse(&[("target", s("ftp://x/"))]))
            .1
            .contains("absolute"));
        let f = parse(&[("target", OptionValue::Function)]).unwrap();
        assert!(
            f.target_fn && f.target.is_empty(),
            "a function: called per request"
        );
        assert_eq!(
            msg(parse(&[("target", n(3.0))])).1,
            "target must be an http(s) URL string or a function, got 3"
        );
        assert!(
            parse(&[
                ("target", OptionValue::Function),
                ("preprocess", OptionValue::Function)
            ])
            .unwrap()
            .preprocess_fn
        );
        assert_eq!(
            msg(with_target(vec![("preprocess", s("x"))])).0,
            "preprocess"
        );
        assert!(with_target(vec![("testTarget", s("http://probe.example/t"))]).is_ok());
    }

    #[test]
    fn numbers() {
        assert_eq!(
            msg(with_target(vec![("chunkSize", n(-5.0))])).1,
            "chunkSize must be a positive integer of at most 2^53-1, got -5"
        );
        assert_eq!(
            msg(with_target(vec![("chunkSize", n(1.5))])).1,
            "chunkSize must be a positive integer of at most 2^53-1, got 1.5"
        );
        assert!(with_target(vec![("chunkSize", n(9_007_199_254_740_991.0))]).is_ok());
        assert!(with_target(vec![("chunkSize", n(9_007_199_254_740_992.0))]).is_err());
        assert!(with_target(vec![("chunkSize", n(f64::NAN))]).is_err());
        assert_eq!(
            msg(with_target(vec![("chunkSize", s("1MB"))])).1,
            "chunkSize must be 'auto' or a positive integer, got \"1MB\""
        );
        // `'auto'`: the default floor, maxChunkSize 8 MiB unless given (at least the floor);
        // maxChunkSize alone, or 'auto' with object storage or background, is refused by name.
        let auto = with_target(vec![("chunkSize", s("auto"))]).unwrap();
        assert!(auto.chunk_auto);
        assert_eq!((auto.chunk_size, auto.max_chunk_size), (1 << 20, 8 << 20));
        let auto = with_target(vec![
            ("chunkSize", s("auto")),
            ("maxChunkSize", n(33554432.0)),
        ])
        .unwrap();
        assert_eq!(auto.max_chunk_size, 32 << 20);
        assert_eq!(
            msg(with_target(vec![("maxChunkSize", n(33554432.0))])).1,
            "maxChunkSize applies only with chunkSize: 'auto'"
        );
        assert!(with_target(vec![("chunkSize", s("auto")), ("maxChunkSize", n(1000.0))]).is_err());
        let e = with_target(vec![("chunkSize", s("auto")), ("protocol", s("s3-post"))]);
        assert!(e.is_err());
        assert_eq!(
            msg(with_target(vec![("simultaneousUploads", n(0.0))])).0,
            "simultaneousUploads"
        );
        assert!(with_target(vec![("simultaneousUploads", n(65.0))]).is_err());
        assert_eq!(
            with_target(vec![("simultaneousUploads", n(64.0))])
                .unwrap()
                .simultaneous_uploads,
            Some(64)
        );
        let auto = with_target(vec![
            ("simultaneousUploads", s("auto")),
            ("maxSimultaneousUploads", n(32.0)),
        ])
        .unwrap();
        assert_eq!(
            (auto.simultaneous_uploads, auto.max_simultaneous_uploads),
            (None, 32)
        );
        assert_eq!(
            msg(with_target(vec![("simultaneousUploads", s("max"))])).1,
            "simultaneousUploads must be 'auto' or an integer from 1 to 64, got \"max\""
        );
        assert_eq!(
            msg(with_target(vec![("maxSimultaneousUploads", n(65.0))])).1,
            "maxSimultaneousUploads must be an integer from 1 to 64, got 65"
        );
        assert!(with_target(vec![("maxChunkRetries", n(-1.0))]).is_err());
        assert_eq!(
            with_target(vec![("timeout", n(0.0))]).unwrap().timeout_ms,
            0
        );
        assert!(with_target(vec![("maxFiles", n(0.0))]).is_err());
        let (o, m) = msg(with_target(vec![
            ("minFileSize", n(10.0)),
            ("maxFileSize", n(5.0)),
        ]));
        assert_eq!(o, "maxFileSize");
        assert!(m.contains("smaller"));
    }

    #[test]
    fn enums_and_lists() {
        let c = with_target(vec![
            ("testChunks", OptionValue::Bool(true)),
            ("method", s("octet")),
            ("progress", s("bytes")),
            ("identifier", s("unique")),
            ("uploadMethod", s("put")),
            ("testMethod", s("head")),
            ("fileType", OptionValue::List(vec![s("PDF"), s("image/*")])),
            ("successStatuses", OptionValue::List(vec![n(200.0)])),
        ])
        .unwrap();
        assert_eq!(c.test_chunks, TestChunks::Always);
        assert_eq!(c.upload_mode, UploadMode::Octet);
        assert_eq!(c.progress, ProgressMode::Bytes);
        assert_eq!(c.identifier, IdentifierMode::Unique);
        assert_eq!(c.upload_method, "PUT");
        assert_eq!(c.test_method, "HEAD");
        assert_eq!(c.file_type, vec!["pdf", "image/*"]);
        assert_eq!(c.success_statuses, vec![200]);
        assert_eq!(
            msg(with_target(vec![("testChunks", s("yes"))])).0,
            "testChunks"
        );
        assert_eq!(msg(with_target(vec![("protocol", s("tus"))])).0, "protocol");
        assert_eq!(
            msg(with_target(vec![(
                "permanentErrors",
                OptionValue::List(vec![n(99.0)])
            )]))
            .0,
            "permanentErrors"
        );
        assert_eq!(
            msg(with_target(vec![(
                "successStatuses",
                OptionValue::List(vec![n(404.0)])
            )]))
            .0,
            "successStatuses"
        );
        assert!(with_target(vec![("uploadMethod", s("TRACE"))]).is_err());
        assert_eq!(
            with_target(vec![("uploadMethod", s("patch"))])
                .unwrap()
                .upload_method,
            "patch"
        );
    }

    #[test]
    fn query_headers_and_functions() {
        let c = with_target(vec![
            (
                "query",
                OptionValue::Map(vec![
                    ("a".into(), s("x")),
                    ("b".into(), n(2.0)),
                    ("c".into(), OptionValue::Bool(true)),
                ]),
            ),
            ("headers", OptionValue::Function),
            ("generateUniqueIdentifier", OptionValue::Function),
        ])
        .unwrap();
        assert_eq!(
            c.query,
            vec![
                ("a".into(), "x".into()),
                ("b".into(), "2".into()),
                ("c".into(), "true".into())
            ]
        );
        assert!(c.headers_fn && c.identifier_fn && !c.query_fn);
        let (o, m) = msg(with_target(vec![(
            "headers",
            OptionValue::Map(vec![("Authorization".into(), OptionValue::Bool(true))]),
        )]));
        assert_eq!(o, "headers");
        assert!(
            m.starts_with("headers.Authorization must be a string"),
            "{m}"
        );
        assert!(with_target(vec![(
            "headers",
            OptionValue::Map(vec![("Bad Name".into(), s("x"))]),
        )])
        .is_err());
    }

    #[test]
    fn content_type_header_refused() {
        let (o, m) = msg(with_target(vec![(
            "headers",
            OptionValue::Map(vec![("content-type".into(), s("application/json"))]),
        )]));
        assert_eq!(o, "headers");
        assert!(m.contains("Content-Type"), "{m}");
    }

    #[test]
    fn param_names() {
        let c = with_target(vec![
            ("chunkNumberParameterName", s("n")),
            ("typeParameterName", OptionValue::Bool(false)),
            ("parameterNamespace", s("up_")),
        ])
        .unwrap();
        assert_eq!(c.param_names[0].as_deref(), Some("n"));
        assert_eq!(c.param_names[4], None);
        assert_eq!(c.parameter_namespace, "up_");
        let (o, m) = msg(with_target(vec![
            ("protocol", s("flow")),
            ("typeParameterName", s("t")),
        ]));
        assert_eq!(o, "typeParameterName");
        assert!(m.contains("Resumable.js"));
    }

    #[test]
    fn unknown_keys() {
        let (o, m) = msg(with_target(vec![("xhrTimeout", n(5.0))]));
        assert_eq!(o, "xhrTimeout");
        assert!(m.contains("`timeout`"), "{m}");
        let (_, m) = msg(with_target(vec![("chunksize", n(5.0))]));
        assert!(m.contains("did you mean `chunkSize`"), "{m}");
        let (_, m) = msg(with_target(vec![("simultaneosUploads", n(5.0))]));
        assert!(m.contains("did you mean `simultaneousUploads`"), "{m}");
        let (_, m) = msg(with_target(vec![("zzzzzz", n(5.0))]));
        assert_eq!(m, "unknown option `zzzzzz`");
    }

    #[test]
    fn static_query_numbers_are_sent_as_javascript_printed_them() {
        // The text is the one the API layer got from JavaScript's String(n), not the engine's.
        let js = |v: f64, text: &str| OptionValue::Number(v, text.into());
        let c = with_target(vec![(
            "query",
            OptionValue::Map(vec![
                ("a".into(), js(1.1, "1.1")),
                ("b".into(), js(1e-7, "1e-7")),
                ("c".into(), js(1e21, "1e+21")),
            ]),
        )])
        .unwrap();
        let q: Vec<&str> = c.query.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(q, ["1.1", "1e-7", "1e+21"]);
    }

    #[test]
    fn gaps_in_option_checks_are_closed() {
        let opt = |r| msg(r).0;
        // A target the URL rules refuse (an unclosed IPv6 bracket, a port out of range).
        assert_eq!(opt(parse(&[("target", s("http://[::1"))])), "target");
        assert_eq!(opt(parse(&[("target", s("http://x:99999/u"))])), "target");
        assert_eq!(opt(parse(&[("target", s("http://x:8o/u"))])), "target");
        assert_eq!(
            opt(with_target(vec![("testTarget", s("https://[zz]/t"))])),
            "testTarget"
        );
        assert!(with_target(vec![("testTarget", s("http://[::1]:8080/t"))]).is_ok());
        // No status could ever mean success.
        let (o, m) = msg(with_target(vec![(
            "successStatuses",
            OptionValue::List(vec![]),
        )]));
        assert_eq!(o, "successStatuses");
        assert!(m.contains("at least one"), "{m}");
        // The largest backoff below the first one.
        assert_eq!(
            opt(with_target(vec![("maxRetryInterval", n(100.0))])),
            "maxRetryInterval"
        );
        assert_eq!(
            opt(with_target(vec![
                ("chunkRetryInterval", n(1000.0)),
                ("maxRetryInterval", n(500.0)),
            ])),
            "maxRetryInterval"
        );
        // A first backoff above the default largest one raises it (only an explicit one is wrong).
        let c = with_target(vec![("chunkRetryInterval", n(60_000.0))]).unwrap();
        assert_eq!(c.max_retry_interval_ms, 60_000);
        // Backoffs of years: refused, and so is anything beyond an hour.
        for name in ["chunkRetryInterval", "maxRetryInterval"] {
            let (o, m) = msg(with_target(vec![(name, n(1_099_511_627_776.0))]));
            assert_eq!(o, name);
            assert!(m.contains("3600000"), "{m}");
        }
        assert!(with_target(vec![
            ("chunkRetryInterval", n(3_600_000.0)),
            ("maxRetryInterval", n(3_600_000.0)),
        ])
        .is_ok());
        // An option whose getter threw is named, with what it threw.
        let (o, m) = msg(with_target(vec![(
            "chunkSize",
            OptionValue::Threw("boom".into()),
        )]));
        assert_eq!(o, "chunkSize");
        assert!(m.contains("boom") && m.contains("threw"), "{m}");
        let (o, _) = msg(with_target(vec![(
            "query",
            OptionValue::Threw("entries".into()),
        )]));
        assert_eq!(o, "query");
    }
}
