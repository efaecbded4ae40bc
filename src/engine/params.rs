//! Protocol dialects on the wire: parameters, identifiers, and request rendering.
//!
//! This module owns what a probe or a chunk upload looks like: the `resumable*` / `flow*`
//! parameters (docs/protocol.md §2), how a custom `query` merges with them, where they travel
//! (query string or multipart fields), the file identifiers (§5), and the [`RequestSpec`] the
//! driver sends. It does not decide *when* to send (that is the scheduler).
//!
//! Where parameters travel:
//!
//! | Request | URL | Body |
//! |---|---|---|
//! | probe | `testTarget`/`target` + merged query and parameters | none (Flow with a non-GET `testMethod`: a form of the parameters) |
//! | multipart upload | `target` + the custom query only (namespaced like the fields): constant, so one preflight serves every chunk | form fields (merged) + the chunk |
//! | octet upload | `target` + merged query and parameters | the raw, untyped chunk |
//!
//! Merging a custom `query` with the protocol parameters:
//! - `resumable`: every custom key gets `parameterNamespace` as prefix, like the parameters.
//!   Probe: custom pairs first, then the parameters (both kept, as Resumable.js does). Upload:
//!   the parameters, then the custom pairs, which replace a parameter of the same name.
//! - `flow`: custom pairs first; a parameter of the same name replaces the custom value (the
//!   `flow*` parameters win), in probes and uploads alike.

use crate::engine::config::{Config, Protocol, UploadMode};
use crate::engine::error::{ErrorKind, Phase, UploadError};
use crate::engine::plan::ChunkPlan;
use crate::engine::preflight::{predict, BodyKind, Prediction, RequestShape};
use crate::engine::text;

/// A file's handle in the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// A request's handle: answers and failures name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// What the engine knows of a file: facts, never its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileMeta {
    /// `file.name`.
    pub name: String,
    /// `file.size` in bytes (at most 2^53−1).
    pub size: u64,
    /// `file.type` (may be empty).
    pub mime_type: String,
    /// `relativePath` or `webkitRelativePath`, when the file came from a folder.
    pub relative_path: Option<String>,
    /// `file.lastModified` in ms since the epoch.
    pub last_modified: Option<u64>,
    /// An identifier supplied by the app (`generateUniqueIdentifier`); it wins when set.
    pub identifier: Option<String>,
}

impl FileMeta {
    /// The path sent as `relativePath`: the relative path, else the name.
    #[must_use]
    pub fn path(&self) -> &str {
        match &self.relative_path {
            Some(p) if !p.is_empty() => p,
            _ => &self.name,
        }
    }
}

fn sanitized(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

/// The Resumable.js / Flow.js identifier: `size-` + the relative path (else the name) with every
/// character outside `[0-9A-Za-z_-]` removed.
///
/// ```
/// use resumable_wasm::engine::{default_identifier, FileMeta};
/// let m = FileMeta { name: "March 22 2018 - Rigor Defect Report.pdf".into(), size: 2_459_177, ..Default::default() };
/// assert_eq!(default_identifier(&m), "2459177-March222018-RigorDefectReportpdf");
/// ```
#[must_use]
pub fn default_identifier(meta: &FileMeta) -> String {
    let mut s = meta.size.to_string();
    s.push('-');
    s.push_str(&sanitized(meta.path()));
    s
}

/// A collision-resistant identifier: `size-lastModified-hash-` + the sanitised path, where
/// `hash` is FNV-1a (64-bit, hex) of the raw path, name and type. Two files of equal size and
/// similar names (`report 1.pdf`, `report1.pdf`) or edited copies get different identifiers.
#[must_use]
pub fn unique_identifier(meta: &FileMeta) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [meta.path(), "\0", &meta.name, "\0", &meta.mime_type] {
        for b in part.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    let mut s = meta.size.to_string();
    s.push('-');
    s.push_str(&(meta.last_modified.unwrap_or(0)).to_string());
    s.push('-');
    for i in (0..16).rev() {
        let nib = u8::try_from((h >> (i * 4)) & 0xf).unwrap_or(0);
        s.push(char::from(if nib < 10 {
            b'0' + nib
        } else {
            b'a' + nib - 10
        }));
    }
    s.push('-');
    s.push_str(&sanitized(meta.path()));
    s
}

/// Appends `s` percent-encoded as JS `encodeURIComponent` does.
pub fn encode_component(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

/// `url` with `pairs` appended as a query string: after `?`, or after `&` when the URL already
/// has a query; before any `#fragment`.
///
/// ```
/// use resumable_wasm::engine::params::append_query;
/// let q = vec![("a b".to_string(), "1&2".to_string())];
/// assert_eq!(append_query("https://x/u?k=v#f", &q), "https://x/u?k=v&a%20b=1%262#f");
/// ```
#[must_use]
pub fn append_query(url: &str, pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return url.to_string();
    }
    let (base, frag) = match url.bytes().position(|b| b == b'#') {
        Some(i) => (url.get(..i).unwrap_or(url), url.get(i..).unwrap_or("")),
        None => (url, ""),
    };
    let mut out = String::with_capacity(base.len() + 16 * pairs.len() + frag.len());
    out.push_str(base);
    if !base.as_bytes().contains(&b'?') {
        out.push('?');
    } else if !base.ends_with('?') && !base.ends_with('&') {
        out.push('&');
    }
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_component(k, &mut out);
        out.push('=');
        encode_component(v, &mut out);
    }
    out.push_str(frag);
    out
}

/// The facts of one chunk that its parameters are made of.
#[derive(Debug, Clone, Copy)]
pub struct ChunkFacts<'a> {
    /// The file's identifier.
    pub identifier: &'a str,
    /// The file.
    pub meta: &'a FileMeta,
    /// The file's plan.
    pub plan: &'a ChunkPlan,
    /// The 1-based chunk number.
    pub chunk: u32,
}

/// The protocol parameters of a chunk, in the dialect's order, names renamed/dropped and
/// namespaced per the config.
#[must_use]
pub fn protocol_params(config: &Config, f: &ChunkFacts) -> Vec<(String, String)> {
    let (start, end) = f.plan.range(u64::from(f.chunk)).unwrap_or((0, 0));
    let values: [String; 9] = [
        u64::from(f.chunk).to_string(),
        (f.plan.chunk_size()).to_string(),
        (end - start).to_string(),
        f.meta.size.to_string(),
        f.meta.mime_type.clone(),
        f.identifier.to_string(),
        f.meta.name.clone(),
        f.meta.path().to_string(),
        (f.plan.count()).to_string(),
    ];
    let mut out = Vec::with_capacity(9);
    match config.protocol {
        Protocol::Resumable => {
            for (name, value) in config.param_names.iter().zip(values) {
                if let Some(n) = name {
                    let mut k = config.parameter_namespace.clone();
                    k.push_str(n);
                    out.push((k, value));
                }
            }
        }
        Protocol::Flow => {
            const FLOW: [&str; 9] = [
                "flowChunkNumber",
                "flowChunkSize",
                "flowCurrentChunkSize",
                "flowTotalSize",
                "",
                "flowIdentifier",
                "flowFilename",
                "flowRelativePath",
                "flowTotalChunks",
            ];
            for (name, value) in FLOW.iter().zip(values) {
                if !name.is_empty() {
                    out.push(((*name).to_string(), value));
                }
            }
        }
    }
    out
}

/// The name of an integrity parameter (`ChecksumAlgorithm`, `ChunkChecksum`, `FileChecksum`) in
/// the configured dialect: `resumable` + `suffix` (namespaced like the other parameters), or
/// `flow` + `suffix`.
#[must_use]
pub fn integrity_param(config: &Config, suffix: &str) -> String {
    let mut name = match config.protocol {
        Protocol::Resumable => {
            let mut p = config.parameter_namespace.clone();
            p.push_str("resumable");
            p
        }
        Protocol::Flow => String::from("flow"),
    };
    name.push_str(suffix);
    name
}

/// Merges the custom `query` with the protocol `params` the way the dialect does (module docs).
#[must_use]
pub fn merge(
    config: &Config,
    phase: Phase,
    query: &[(String, String)],
    params: &[(String, String)],
) -> Vec<(String, String)> {
    fn set(list: &mut Vec<(String, String)>, k: &str, v: &str) {
        match list.iter_mut().find(|(n, _)| n == k) {
            Some(e) => v.clone_into(&mut e.1),
            None => list.push((k.to_string(), v.to_string())),
        }
    }
    match config.protocol {
        Protocol::Resumable => {
            let custom = query.iter().map(|(k, v)| {
                let mut n = config.parameter_namespace.clone();
                n.push_str(k);
                (n, v.clone())
            });
            if phase == Phase::Test {
                let mut out: Vec<(String, String)> = custom.collect();
                out.extend(params.iter().cloned());
                out
            } else {
                let mut out = params.to_vec();
                for (k, v) in custom {
                    set(&mut out, &k, &v);
                }
                out
            }
        }
        Protocol::Flow => {
            let mut out = Vec::with_capacity(query.len() + params.len());
            for (k, v) in query {
                set(&mut out, k, v);
            }
            for (k, v) in params {
                set(&mut out, k, v);
            }
            out
        }
    }
}

/// The body of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestBody {
    /// No body (probes).
    None,
    /// `FormData`: `fields` in order, then the chunk's bytes as `file_field` with `file_name` as
    /// the part's file name (an untyped slice, so the part is `application/octet-stream`).
    Multipart {
        /// Text fields in order.
        fields: Vec<(String, String)>,
        /// The name of the chunk's part.
        file_field: String,
        /// The part's file name: the original file name.
        file_name: String,
    },
    /// `FormData` of text fields only, no chunk (a Flow probe with a non-GET `testMethod`).
    Form {
        /// Text fields in order.
        fields: Vec<(String, String)>,
    },
    /// The raw chunk `[start, end)` as an untyped Blob; no `Content-Type` is set.
    Raw,
}

impl RequestBody {
    /// Whether the body carries the chunk's bytes (so an unreadable file can make it fail).
    #[must_use]
    pub fn carries_chunk(&self) -> bool {
        matches!(self, RequestBody::Multipart { .. } | RequestBody::Raw)
    }
}

/// One request for the driver to send.
#[must_use = "a request the driver does not send never gets an answer"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    /// Names the answer: pass it back in `Input::Response` / `Input::Failed`.
    pub id: RequestId,
    /// The file.
    pub file: FileId,
    /// The 1-based chunk number.
    pub chunk: u32,
    /// Probe or upload.
    pub phase: Phase,
    /// 1 for the chunk's first request, 2 for the next, … (probes and uploads both count).
    pub attempt: u32,
    /// The HTTP method.
    pub method: String,
    /// The final URL (see the module docs for what it carries).
    pub url: String,
    /// The body.
    pub body: RequestBody,
    /// First byte of the chunk.
    pub start: u64,
    /// End of the chunk, exclusive.
    pub end: u64,
    /// Only the headers the user asked for; never `Content-Type` (the browser sets it for
    /// `FormData`; a raw chunk stays untyped) and never an `X-Requested-With` of our own.
    pub headers: Vec<(String, String)>,
    /// `xhr.withCredentials`.
    pub with_credentials: bool,
    /// `xhr.timeout` in ms; `None` = no timeout.
    pub timeout_ms: Option<u64>,
    /// Register an `xhr.upload` progress listener (`progress: 'bytes'`, uploads only).
    pub upload_listener: bool,
    /// Whether this request will be preflighted, and why.
    pub preflight: Prediction,
    /// The protocol parameters of this request (before merging with the custom query).
    pub params: Vec<(String, String)>,
    /// The file's name (the multipart part's file name).
    pub file_name: String,
    /// Under `protocol: 's3'`: the app callback to call, or for a part the `signPart` call
    /// whose URL the part is `PUT` to; `url` is then empty until the app signed it.
    pub s3: Option<crate::engine::s3::Call>,
    /// `checksum` on: the driver reads the chunk's bytes, hashes them with this algorithm and
    /// hands the checksum to [`crate::engine::Scheduler::hashed`], which answers the request to
    /// send (its parameters carrying the checksum); the body is then the bytes it read.
    pub checksum: Option<crate::engine::integrity::Algorithm>,
    /// `checksum: 'sha256'`, every chunk read: the file's digest is the SHA-256 of these bytes;
    /// the driver computes it and adds it with [`RequestSpec::with_file_checksum`].
    pub file_digest_of: Option<Vec<u8>>,
    /// The URL the `target` function gave for this request (see
    /// [`crate::engine::Scheduler::retarget`]); `None`: the configured target.
    pub target: Option<String>,
}

impl RequestSpec {
    /// An error of this request: "`<phase>` of chunk `<n>` `what`", with its URL, method, phase,
    /// chunk and attempts.
    #[must_use]
    pub fn error(&self, kind: ErrorKind, what: &str) -> UploadError {
        let mut m = String::from(self.phase.as_str());
        m.push_str(" of chunk ");
        m.push_str(&u64::from(self.chunk).to_string());
        m.push(' ');
        m.push_str(what);
        let mut e = UploadError::new(kind, m);
        e.url = Some(self.url.clone());
        e.method = Some(self.method.clone());
        e.phase = Some(self.phase);
        e.chunk = Some(self.chunk);
        e.attempts = self.attempt;
        e
    }

    /// The value of parameter `name` as sent (URL query or form field), if any.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<String> {
        let fields = match &self.body {
            RequestBody::Multipart { fields, .. } | RequestBody::Form { fields } => Some(fields),
            _ => None,
        };
        if let Some((_, v)) = fields.and_then(|f| f.iter().find(|(k, _)| k == name)) {
            return Some(v.clone());
        }
        let query = text::head(text::cut(&self.url, b'?')?.1, b'#');
        let mut key = String::new();
        encode_component(name, &mut key);
        let mut rest = Some(query);
        while let Some(part) = rest {
            let (pair, next) = text::cut(part, b'&').map_or((part, None), |(p, n)| (p, Some(n)));
            if let Some((k, v)) = text::cut(pair, b'=') {
                if k == key {
                    return Some(decode_component(v));
                }
            }
            rest = next;
        }
        None
    }

    /// Re-renders url/fields/headers with per-request values from the user's query/headers
    /// functions, merged the way the dialect merges (docs/protocol.md §2), and re-predicts the
    /// preflight. Static `query`/`headers` from the config come first; a dynamic value replaces
    /// a static one of the same name (headers compared case-insensitively).
    pub fn with_dynamic(
        mut self,
        config: &Config,
        query: &[(String, String)],
        headers: &[(String, String)],
    ) -> RequestSpec {
        let mut q = config.query.clone();
        for (k, v) in query {
            match q.iter_mut().find(|(n, _)| n == k) {
                Some(e) => v.clone_into(&mut e.1),
                None => q.push((k.clone(), v.clone())),
            }
        }
        let h = merged_headers(config, headers);
        render(&mut self, config, &q, &h);
        self
    }

    /// Adds the whole-file digest the driver computed from [`RequestSpec::file_digest_of`] as
    /// the dialect's `FileChecksum` parameter (lowercase hex) and renders the request again.
    pub fn with_file_checksum(mut self, config: &Config, digest: &[u8]) -> RequestSpec {
        let name = integrity_param(config, "FileChecksum");
        self.params
            .push((name, crate::engine::integrity::hex(digest)));
        self.file_digest_of = None;
        render(&mut self, config, &config.query, &config.headers);
        self
    }

    /// The preflight shape of this request as the driver sends it.
    #[must_use]
    pub fn shape<'a>(&'a self, page_origin: Option<&'a str>) -> RequestShape<'a> {
        RequestShape {
            page_origin,
            url: &self.url,
            method: &self.method,
            headers: &self.headers,
            body: match self.body {
                RequestBody::None => BodyKind::None,
                RequestBody::Multipart { .. } | RequestBody::Form { .. } => BodyKind::FormData,
                RequestBody::Raw => BodyKind::UntypedBlob,
            },
            upload_listener: self.upload_listener,
        }
    }
}

fn decode_component(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex = |x: Option<&u8>| x.and_then(|h| char::from(*h).to_digit(16));
        if let (b'%', Some(hi), Some(lo)) = (c, hex(b.get(i + 1)), hex(b.get(i + 2))) {
            out.push(u8::try_from(hi * 16 + lo).unwrap_or(0));
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The static `headers` of `config` with the per-request `dynamic` ones applied: a dynamic value
/// replaces a static one of the same name (compared case-insensitively), others are appended.
#[must_use]
pub fn merged_headers(config: &Config, dynamic: &[(String, String)]) -> Vec<(String, String)> {
    let mut h = config.headers.clone();
    for (k, v) in dynamic {
        match h.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(k)) {
            Some(e) => v.clone_into(&mut e.1),
            None => h.push((k.clone(), v.clone())),
        }
    }
    h.retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
    h
}

/// Fills url, body, headers and preflight of `spec` from its `params` and the given custom
/// `query` and `headers`.
pub(crate) fn render(
    spec: &mut RequestSpec,
    config: &Config,
    query: &[(String, String)],
    headers: &[(String, String)],
) {
    let merged = merge(config, spec.phase, query, &spec.params);
    // A `target` function's URL serves probes too unless `testTarget` is set.
    let upload_target = spec.target.clone().unwrap_or_else(|| config.target.clone());
    match spec.phase {
        Phase::Test => {
            let target = config.test_target.as_deref().unwrap_or(&upload_target);
            let form = config.protocol == Protocol::Flow
                && !matches!(spec.method.as_str(), "GET" | "HEAD");
            if form {
                spec.url = target.to_string();
                spec.body = RequestBody::Form { fields: merged };
            } else {
                spec.url = append_query(target, &merged);
                spec.body = RequestBody::None;
            }
        }
        Phase::Upload => match config.upload_mode {
            UploadMode::Multipart => {
                let custom = merge(config, Phase::Upload, query, &[]);
                spec.url = append_query(&upload_target, &custom);
                let mut file_field = String::new();
                if config.protocol == Protocol::Resumable {
                    file_field.push_str(&config.parameter_namespace);
                }
                file_field.push_str(&config.file_parameter_name);
                spec.body = RequestBody::Multipart {
                    fields: merged,
                    file_field,
                    file_name: spec.file_name.clone(),
                };
            }
            UploadMode::Octet => {
                spec.url = append_query(&upload_target, &merged);
                spec.body = RequestBody::Raw;
            }
        },
        // S3's requests are planned by `engine::s3`, never rendered from the options.
        _ => return,
    }
    spec.headers = headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("content-type"))
        .cloned()
        .collect();
    spec.preflight = if config.cors_enforced {
        predict(&spec.shape(config.page_origin.as_deref()))
    } else {
        Prediction::default()
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::config::PARAM_OPTIONS;

    fn meta() -> FileMeta {
        FileMeta {
            name: "a b.txt".into(),
            size: 2_500_000,
            mime_type: "text/plain".into(),
            relative_path: Some("dir/a b.txt".into()),
            last_modified: Some(1_700_000_000_000),
            identifier: None,
        }
    }

    fn spec(config: &Config, phase: Phase, chunk: u32) -> RequestSpec {
        let m = meta();
        let plan = ChunkPlan::new(m.size, config.chunk_size, config.force_chunk_size);
        let ident = default_identifier(&m);
        let params = protocol_params(
            config,
            &ChunkFacts {
                identifier: &ident,
                meta: &m,
                plan: &plan,
                chunk,
            },
        );
        let (start, end) = plan.range(u64::from(chunk)).unwrap();
        let mut s = RequestSpec {
            id: RequestId(1),
            file: FileId(1),
            chunk,
            phase,
            attempt: 1,
            method: if phase == Phase::Test {
                config.test_method.clone()
            } else {
                config.upload_method.clone()
            },
            url: String::new(),
            body: RequestBody::None,
            start,
            end,
            headers: vec![],
            with_credentials: false,
            timeout_ms: None,
            upload_listener: false,
            preflight: Prediction::default(),
            params,
            file_name: m.name.clone(),
            s3: None,
            checksum: None,
            file_digest_of: None,
            target: None,
        };
        render(&mut s, config, &config.query, &config.headers);
        s
    }

    #[test]
    fn identifiers() {
        let m = meta();
        assert_eq!(default_identifier(&m), "2500000-dirabtxt");
        let u = unique_identifier(&m);
        assert!(u.starts_with("2500000-1700000000000-"), "{u}");
        assert!(u.ends_with("-dirabtxt"));
        let mut other = m.clone();
        other.relative_path = Some("dir/ab.txt".into());
        assert_eq!(default_identifier(&other), default_identifier(&m));
        assert_ne!(unique_identifier(&other), u);
    }

    #[test]
    fn resumable_probe_and_multipart() {
        let mut c = Config::new("https://up.example/u?tok=1");
        c.chunk_size = 1_000_000;
        c.query = vec![("extra".into(), "x y".into())];
        let p = spec(&c, Phase::Test, 2);
        assert_eq!(p.body, RequestBody::None);
        assert!(p.url.starts_with("https://up.example/u?tok=1&extra=x%20y&resumableChunkNumber=2&resumableChunkSize=1000000&resumableCurrentChunkSize=1500000&resumableTotalSize=2500000&resumableType=text%2Fplain&resumableIdentifier=2500000-dirabtxt&resumableFilename=a%20b.txt&resumableRelativePath=dir%2Fa%20b.txt&resumableTotalChunks=2"), "{}", p.url);
        assert_eq!(
            p.param("resumableRelativePath").as_deref(),
            Some("dir/a b.txt")
        );
        let u = spec(&c, Phase::Upload, 1);
        assert_eq!(u.url, "https://up.example/u?tok=1&extra=x%20y");
        match &u.body {
            RequestBody::Multipart {
                fields,
                file_field,
                file_name,
            } => {
                assert_eq!(fields.len(), 10);
                assert_eq!(fields[9], ("extra".to_string(), "x y".to_string()));
                assert_eq!(file_field, "file");
                assert_eq!(file_name, "a b.txt");
            }
            b => panic!("{b:?}"),
        }
        assert_eq!(
            u.param("resumableCurrentChunkSize").as_deref(),
            Some("1000000")
        );
        assert!(!u.preflight.preflight);
    }

    #[test]
    fn rename_drop_namespace_override() {
        let mut c = Config::new("https://up.example/u");
        c.param_names[0] = Some("n".into());
        c.param_names[4] = None;
        c.parameter_namespace = "ns_".into();
        c.query = vec![("n".into(), "override".into())];
        let u = spec(&c, Phase::Upload, 1);
        assert_eq!(u.param("ns_n").as_deref(), Some("override"));
        assert_eq!(u.param("ns_resumableType"), None);
        assert_eq!(u.url, "https://up.example/u?ns_n=override");
        match &u.body {
            RequestBody::Multipart { file_field, .. } => assert_eq!(file_field, "ns_file"),
            b => panic!("{b:?}"),
        }
        let p = spec(&c, Phase::Test, 1);
        assert!(p.url.contains("?ns_n=override&ns_n=1&"), "{}", p.url);
        assert_eq!(PARAM_OPTIONS.len(), 9);
    }

    #[test]
    fn flow_dialect() {
        let mut c = Config::new("https://up.example/u").with_protocol(Protocol::Flow);
        c.query = vec![
            ("flowChunkNumber".into(), "99".into()),
            ("k".into(), "v".into()),
        ];
        let p = spec(&c, Phase::Test, 1);
        assert!(
            p.url
                .starts_with("https://up.example/u?flowChunkNumber=1&k=v&flowChunkSize="),
            "{}",
            p.url
        );
        assert!(!p.url.contains("Type"));
        let u = spec(&c, Phase::Upload, 1);
        assert_eq!(u.url, "https://up.example/u?flowChunkNumber=99&k=v");
        assert_eq!(u.param("flowChunkNumber").as_deref(), Some("1"));
        c.test_method = "POST".into();
        let p = spec(&c, Phase::Test, 1);
        assert_eq!(p.url, "https://up.example/u");
        assert!(matches!(p.body, RequestBody::Form { .. }));
        assert_eq!(p.param("flowTotalChunks").as_deref(), Some("2"));
    }

    #[test]
    fn octet_and_dynamic() {
        let mut c = Config::new("https://up.example/u");
        c.upload_mode = UploadMode::Octet;
        c.page_origin = Some("https://app.example".into());
        let u = spec(&c, Phase::Upload, 1);
        assert_eq!(u.body, RequestBody::Raw);
        assert_eq!(u.param("resumableChunkNumber").as_deref(), Some("1"));
        assert!(!u.preflight.preflight);
        let d = u.with_dynamic(
            &c,
            &[("sig".into(), "abc".into())],
            &[("Authorization".into(), "Bearer t".into())],
        );
        assert_eq!(d.param("sig").as_deref(), Some("abc"));
        assert_eq!(
            d.headers,
            vec![("Authorization".to_string(), "Bearer t".to_string())]
        );
        assert!(d.preflight.preflight);
    }
}
