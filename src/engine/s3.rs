//! Direct-to-object-storage multipart uploads (S3 and S3-compatible stores): the protocol's own
//! decisions, apart from the scheduler.
//!
//! The page sends the parts; the app's server signs (the library never holds credentials). A
//! file goes through the steps of [`Step`]: open the upload (`createMultipartUpload`, or
//! `listParts` for an upload already known), then for every missing part a signed `PUT`
//! (`signPart`, then the part itself), then `completeMultipartUpload`; cancelling sends
//! `abortMultipartUpload`. [`S3File`] decides which step comes next from what it knows;
//! everything it knows is one serialisable value ([`S3Upload`]), so a durable resume record can
//! keep it as it is.
//!
//! `protocol: 's3-post'` goes through the same steps with no signing per chunk and no
//! preflight: `createUpload` once per file gives a signed POST policy (a form's URL and fields
//! admitting every key under the file's `keyPrefix`); every chunk is a browser-form POST of
//! those fields, its `key` (`keyPrefix` + chunk number) and the bytes last, a simple request;
//! `listChunks` lists what a resumed file already stored; `complete` has the app's server
//! compose the chunks into the object (UploadPartCopy), so chunks follow the same part rules.
//!
//! Part rules of S3, enforced before anything is sent ([`part_size`]): every part but the last
//! is at least 5 MiB, a part is at most 5 GiB, an upload has at most 10,000 parts. The part
//! size is the wanted one raised to 5 MiB, and for a file that would need more than 10,000
//! parts, the file size / 10,000 rounded up to a whole MiB.
//!
//! ```
//! use resumable_wasm::engine::s3::{part_size, MIB};
//! assert_eq!(part_size(64 * MIB, MIB), Ok(5 * MIB));          // raised to the minimum
//! assert_eq!(part_size(100_000 * MIB, 5 * MIB), Ok(10 * MIB)); // grown to fit 10,000 parts
//! ```

// Byte searches, not `str::find`/`contains` with a `&str` (their two-way searcher costs wasm).
use crate::engine::config::S3Options;
use crate::engine::error::{ErrorKind, Phase, UploadError};
use crate::engine::integrity::Algorithm;
use crate::engine::params::{FileId, RequestBody, RequestId, RequestSpec};
use crate::engine::preflight::{find_str, Prediction};
use crate::engine::text;

/// One mebibyte.
pub const MIB: u64 = 1024 * 1024;
/// The smallest part S3 accepts, except the last one.
pub const MIN_PART_SIZE: u64 = 5 * MIB;
/// The largest part S3 accepts.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * MIB;
/// The most parts of one upload.
pub const MAX_PARTS: u64 = 10_000;

/// Why a file cannot be sent under S3's part rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRuleError {
    /// What is wrong, in one line.
    pub message: String,
}

/// The part size for a file of `file_size` bytes when the app asked for `wanted` (its
/// `chunkSize`): at least [`MIN_PART_SIZE`], grown (to a whole MiB) until at most
/// [`MAX_PARTS`] parts cover the file.
///
/// # Errors
/// A file so large that even [`MAX_PART_SIZE`] parts need more than [`MAX_PARTS`] of them, or a
/// wanted size above [`MAX_PART_SIZE`].
pub fn part_size(file_size: u64, wanted: u64) -> Result<u64, PartRuleError> {
    if wanted > MAX_PART_SIZE {
        return Err(PartRuleError {
            message: format!(
                "chunkSize {wanted} is above S3's largest part of {MAX_PART_SIZE} bytes (5 GiB)"
            ),
        });
    }
    let mut size = wanted.max(MIN_PART_SIZE);
    if file_size.div_ceil(size) > MAX_PARTS {
        size = file_size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    }
    if size > MAX_PART_SIZE {
        return Err(PartRuleError {
            message: format!(
                "the file is {file_size} bytes, more than S3's 10,000 parts of 5 GiB hold"
            ),
        });
    }
    Ok(size)
}

/// The parts of a file of `file_size` bytes in parts of `size` (from [`part_size`]): their
/// count (at least 1: an empty file is one empty part).
#[must_use]
pub fn part_count(file_size: u64, size: u64) -> u64 {
    file_size.div_ceil(size.max(1)).max(1)
}

/// The byte range `[start, end)` of part `n` (1-based), if the file has it.
#[must_use]
pub fn part_range(file_size: u64, size: u64, n: u64) -> Option<(u64, u64)> {
    if n == 0 || n > part_count(file_size, size) {
        return None;
    }
    let start = (n - 1) * size;
    Some((start, (start + size).min(file_size)))
}

/// A part the store has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// 1-based.
    pub number: u32,
    /// The store's ETag, quoted as it sent it.
    pub etag: String,
    /// Bytes.
    pub size: u64,
}

/// Everything known about one file's multipart upload: what a durable resume keeps. `parts`
/// is ordered by number. Plain
/// public data (strings and numbers), so a resume record can store it field by field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Upload {
    /// The store's upload id, once created.
    pub upload_id: String,
    /// The object key the app's server chose.
    pub key: String,
    /// The part size the parts were cut with.
    pub part_size: u64,
    /// The parts the store confirmed, by number.
    pub parts: Vec<Part>,
}

/// The next thing one file needs, as the engine decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Call `createMultipartUpload`.
    Create,
    /// Call `listParts` for an upload known from before (a re-added or resumed file).
    ListParts,
    /// Sign then `PUT` part `n`.
    Part(u32),
    /// Call `completeMultipartUpload` with [`S3File::completion`].
    Complete,
    /// Nothing now (parts in flight, or done).
    Wait,
}

/// One file under the S3 protocol: its size, its part size and its [`S3Upload`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3File {
    size: u64,
    upload: S3Upload,
    /// `listParts` answered since the upload became known (a created upload has nothing to list).
    listed: bool,
    created: bool,
    completed: bool,
    /// Parts started and not yet confirmed.
    in_flight: Vec<u32>,
    /// One signed `PUT` of the whole file (`signUpload`), no multipart upload.
    single: bool,
    /// `protocol: 's3-post'`: chunks are form POSTs under one policy, composed by the app's
    /// server; `upload.key` is the `keyPrefix`.
    post: bool,
    /// The policy's form: where chunks are POSTed, and its fields.
    url: String,
    fields: Vec<(String, String)>,
    /// The policy was refused (expired): 1 while `createUpload` is to be called again for it,
    /// 2 once it was (a second refusal fails the file).
    renew: u8,
}

impl S3File {
    /// A new file of `size` bytes cut into parts of `part_size` (from [`part_size`]).
    #[must_use]
    pub fn new(size: u64, part_size: u64) -> S3File {
        S3File {
            size,
            upload: S3Upload {
                part_size,
                ..S3Upload::default()
            },
            listed: false,
            created: false,
            completed: false,
            in_flight: Vec::new(),
            single: false,
            post: false,
            url: String::new(),
            fields: Vec::new(),
            renew: 0,
        }
    }

    /// A file of one part sent as one signed `PUT` (`signUpload`): no create, list or complete.
    #[must_use]
    pub fn single(size: u64, part_size: u64) -> S3File {
        let mut f = S3File::new(size, part_size);
        f.single = true;
        f.created = true;
        f.listed = true;
        f
    }

    /// Whether this file is one signed `PUT` ([`S3File::single`]).
    #[must_use]
    pub fn is_single(&self) -> bool {
        self.single
    }

    /// A file whose upload is known from before: the next step asks the store which parts it has.
    #[must_use]
    pub fn resumed(size: u64, upload: S3Upload) -> S3File {
        let created = !upload.upload_id.is_empty();
        S3File {
            size,
            upload,
            listed: false,
            created,
            completed: false,
            in_flight: Vec::new(),
            single: false,
            post: false,
            url: String::new(),
            fields: Vec::new(),
            renew: 0,
        }
    }

    /// Continues in `upload`, kept from before (a re-added file, a durable resume): the next
    /// step lists what the store has (under POST once `createUpload` signed a policy for the
    /// kept prefix again). `false`, and nothing changes, for one signed `PUT`, an upload of
    /// another part size, or one never created.
    pub fn resume(&mut self, upload: S3Upload) -> bool {
        let fits = !self.single
            && self.upload.part_size == upload.part_size
            && !upload.key.is_empty()
            && (self.post || !upload.upload_id.is_empty());
        if fits {
            let post = self.post;
            *self = S3File::resumed(self.size, upload);
            self.post = post;
            self.created = true;
        }
        fits
    }

    /// What a durable resume record keeps.
    #[must_use]
    pub fn upload(&self) -> &S3Upload {
        &self.upload
    }

    /// Number of parts.
    #[must_use]
    pub fn count(&self) -> u32 {
        u32::try_from(part_count(self.size, self.upload.part_size)).unwrap_or(u32::MAX)
    }

    /// Bytes of part `n`.
    #[must_use]
    pub fn range(&self, n: u32) -> Option<(u64, u64)> {
        part_range(self.size, self.upload.part_size, u64::from(n))
    }

    fn has(&self, n: u32) -> bool {
        self.upload.parts.iter().any(|p| p.number == n)
    }

    /// The next step of this file.
    #[must_use]
    pub fn next(&self) -> Step {
        if self.completed {
            return Step::Wait;
        }
        // Under POST a kept prefix needs a policy first (none is kept across a reload).
        if !self.created || self.renew == 1 || (self.post && self.url.is_empty()) {
            return Step::Create;
        }
        if !self.listed {
            return Step::ListParts;
        }
        let missing = (1..=self.count()).find(|n| !self.has(*n) && !self.in_flight.contains(n));
        match missing {
            Some(n) => Step::Part(n),
            None if self.in_flight.is_empty() => Step::Complete,
            None => Step::Wait,
        }
    }

    /// `createMultipartUpload` answered.
    pub fn created(&mut self, upload_id: String, key: String) {
        self.upload.upload_id = upload_id;
        self.upload.key = key;
        self.upload.parts.clear();
        self.created = true;
        // A fresh upload has no parts: nothing to list.
        self.listed = true;
    }

    /// `listParts` answered with `parts`. A listed part whose size is not this file's cut of it
    /// is not counted (it is sent again and replaces the old one).
    pub fn listed(&mut self, parts: Vec<Part>) {
        self.upload.parts.clear();
        for p in parts {
            let fits = self
                .range(p.number)
                .is_some_and(|(start, end)| end - start == p.size);
            if fits {
                self.keep(p);
            }
        }
        self.listed = true;
    }

    /// `createUpload` answered with the policy's form; when it was fetched again for a refused
    /// policy, the chunks stored under the same `keyPrefix` stay. `None`, or the error's
    /// message: a policy fetched again must keep the prefix. For a kept prefix (a resumed
    /// file) the same prefix is listed next; another one is a new upload.
    fn policy(
        &mut self,
        url: String,
        fields: Vec<(String, String)>,
        prefix: String,
    ) -> Option<&'static str> {
        if self.renew == 1 {
            if prefix != self.upload.key {
                return Some("must keep the keyPrefix it was given");
            }
            self.renew = 2;
        } else if !self.created || prefix != self.upload.key {
            self.created(String::new(), prefix);
        }
        self.url = url;
        self.fields = fields;
        None
    }

    /// The store no longer knows the upload id (`NoSuchUpload`): start over with a new upload.
    pub fn forget_upload(&mut self) {
        let part_size = self.upload.part_size;
        self.upload = S3Upload {
            part_size,
            ..S3Upload::default()
        };
        self.created = false;
        self.listed = false;
        self.renew = 0;
        self.in_flight.clear();
    }

    /// Part `n` was started.
    pub fn started(&mut self, n: u32) {
        if !self.in_flight.contains(&n) {
            self.in_flight.push(n);
        }
    }

    /// Part `n` ended without being stored (it will be tried again).
    pub fn stopped(&mut self, n: u32) {
        self.in_flight.retain(|m| *m != n);
    }

    /// Part `n` was stored with `etag`.
    pub fn stored(&mut self, n: u32, etag: String) {
        self.stopped(n);
        let size = self.range(n).map_or(0, |(s, e)| e - s);
        self.keep(Part {
            number: n,
            etag,
            size,
        });
        // A single PUT is the whole upload: nothing to complete.
        self.completed |= self.single;
    }

    /// Records `part`, replacing one of its number, keeping the parts ordered by number.
    fn keep(&mut self, part: Part) {
        let parts = &mut self.upload.parts;
        match parts.binary_search_by_key(&part.number, |p| p.number) {
            Ok(i) => {
                if let Some(slot) = parts.get_mut(i) {
                    *slot = part;
                }
            }
            Err(i) => parts.insert(i, part),
        }
    }

    /// Bytes the store confirmed.
    #[must_use]
    pub fn confirmed_bytes(&self) -> u64 {
        self.upload.parts.iter().map(|p| p.size).sum()
    }

    /// The parts for `completeMultipartUpload`, by number (they are kept in that order).
    #[must_use]
    pub fn completion(&self) -> Vec<Part> {
        self.upload.parts.clone()
    }

    /// `completeMultipartUpload` answered.
    pub fn completed(&mut self) {
        self.completed = true;
    }

    /// Whether cancelling must call `abortMultipartUpload` (or, under POST, `abort`): an upload
    /// was created and not completed.
    #[must_use]
    pub fn needs_abort(&self) -> bool {
        self.created && !self.completed && !self.single
    }
}

/// A call of the app's S3 callbacks, as the engine plans it (in a request's
/// [`crate::engine::RequestSpec::s3`]). The driver calls the callback; for [`Call::Part`] it
/// then `PUT`s the part to the URL `signPart` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `createMultipartUpload(file)`.
    Create,
    /// `listParts(file, { uploadId, key })`.
    ListParts {
        /// The store's upload id.
        upload_id: String,
        /// The object key.
        key: String,
    },
    /// `signPart(file, { uploadId, key, partNumber, size, checksum })`, then the part's `PUT`.
    Part {
        /// The store's upload id.
        upload_id: String,
        /// The object key.
        key: String,
        /// 1-based.
        part_number: u32,
        /// Bytes of the part.
        size: u64,
        /// With `checksum`: the part's checksum, its big-endian bytes (the page hands it to
        /// `signPart` in S3's base64, for the server to sign as `x-amz-checksum-crc32c` or
        /// `-sha256`); set once the part was read and hashed.
        checksum: Option<Vec<u8>>,
    },
    /// `completeMultipartUpload(file, { uploadId, key, parts })`.
    Complete {
        /// The store's upload id.
        upload_id: String,
        /// The object key.
        key: String,
        /// Every part, by number.
        parts: Vec<Part>,
    },
    /// `signUpload(file, { size })`, then one `PUT` of the whole file (no multipart upload).
    Upload {
        /// Bytes of the file.
        size: u64,
    },
    /// `abortMultipartUpload(file, { uploadId, key })`: sent and forgotten (no answer expected).
    Abort {
        /// The store's upload id.
        upload_id: String,
        /// The object key.
        key: String,
    },
    /// S3 POST: `createUpload(file, { chunkSize, keyPrefix? })`, `keyPrefix` when a refused
    /// policy is fetched again.
    Policy {
        /// Bytes of every chunk but the last (for the policy's `content-length-range`).
        chunk_size: u64,
        /// The prefix to keep.
        key_prefix: Option<String>,
    },
    /// S3 POST: `listChunks(file, { keyPrefix })`.
    ListChunks {
        /// The file's prefix.
        key_prefix: String,
    },
    /// S3 POST: a chunk's form POST under the file's policy (no callback).
    Chunk,
    /// S3 POST: `complete(file, { keyPrefix }, chunks)`.
    Compose {
        /// The file's prefix.
        key_prefix: String,
        /// Every chunk number, in order.
        chunks: Vec<u32>,
    },
    /// S3 POST: `abort(file, { keyPrefix })`, sent and forgotten.
    Discard {
        /// The file's prefix.
        key_prefix: String,
    },
}

impl Call {
    /// The JS name of the callback.
    #[must_use]
    pub fn callback(&self) -> &'static str {
        match self {
            Call::Create => "createMultipartUpload",
            Call::ListParts { .. } => "listParts",
            Call::Part { .. } => "signPart",
            Call::Upload { .. } => "signUpload",
            Call::Complete { .. } => "completeMultipartUpload",
            Call::Abort { .. } => "abortMultipartUpload",
            Call::Policy { .. } => "createUpload",
            Call::ListChunks { .. } => "listChunks",
            Call::Chunk => "",
            Call::Compose { .. } => "complete",
            Call::Discard { .. } => "abort",
        }
    }
}

/// What an app callback answered (the part `PUT`s answer through [`classify_part`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `createMultipartUpload` gave `{ uploadId, key }`.
    Created {
        /// The store's upload id.
        upload_id: String,
        /// The object key.
        key: String,
    },
    /// `listParts` gave these parts.
    Listed(Vec<Part>),
    /// S3 POST: `createUpload` gave the policy's form.
    Policy {
        /// Where chunks are POSTed.
        url: String,
        /// The form fields, in order.
        fields: Vec<(String, String)>,
        /// The file's prefix.
        key_prefix: String,
    },
    /// S3 POST: `listChunks` gave these chunk numbers.
    Chunks(Vec<u32>),
    /// `listParts` said the store no longer knows the upload (it threw an error whose code
    /// or message is `NoSuchUpload`, or answered `null`).
    UploadGone,
    /// `completeMultipartUpload` resolved (`location` if it gave one).
    Completed {
        /// The object's URL, if the callback gave one.
        location: Option<String>,
    },
    /// The callback threw, rejected or answered something unusable: the message.
    Failed(String),
}

/// What a part `PUT`'s answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartOutcome {
    /// Stored; the ETag to complete with.
    Stored(String),
    /// Stored, but the page cannot read the ETag: the bucket's CORS rule does not expose it.
    EtagHidden,
    /// The signed URL expired or was refused: sign again and retry once.
    Resign,
    /// The store found the bytes differ from the signed checksum (`400 BadDigest`): read,
    /// hash and send again.
    BadDigest,
    /// The store no longer knows the upload: start over.
    UploadGone,
    /// A transient failure: retry with backoff.
    Retry,
    /// A permanent failure.
    Fail,
}

/// Classifies a part `PUT`'s answer: `status`, the `ETag` header as the page could read it, and
/// the body (S3's XML error, when readable).
#[must_use]
pub fn classify_part(status: u16, etag: Option<&str>, body: &str) -> PartOutcome {
    match status {
        200..=299 => match etag.map(str::trim).filter(|e| !e.is_empty()) {
            Some(e) => PartOutcome::Stored(e.to_owned()),
            None => PartOutcome::EtagHidden,
        },
        403 if is_signature_refusal(body) || body.is_empty() => PartOutcome::Resign,
        404 if error_code(body) == Some("NoSuchUpload") => PartOutcome::UploadGone,
        400 if error_code(body) == Some("BadDigest") => PartOutcome::BadDigest,
        408 | 429 | 500..=599 => PartOutcome::Retry,
        _ => PartOutcome::Fail,
    }
}

/// Whether an S3 error body says the signature expired or does not match.
fn is_signature_refusal(body: &str) -> bool {
    let code = error_code(body).unwrap_or("");
    matches!(
        code,
        "AccessDenied" | "SignatureDoesNotMatch" | "ExpiredToken" | "RequestExpired"
    ) || find_str(body, "Request has expired").is_some()
}

/// The `<Code>` of an S3 error body.
#[must_use]
pub fn error_code(body: &str) -> Option<&str> {
    let start = find_str(body, "<Code>")? + "<Code>".len();
    let rest = body.get(start..)?;
    rest.get(..find_str(rest, "</Code>")?)
}

/// The bucket CORS configuration a page at `page_origin` needs, as S3's JSON (the console's and
/// `aws s3api put-bucket-cors`'s form).
#[must_use]
pub fn bucket_cors_rule(page_origin: Option<&str>) -> String {
    let origin = page_origin.unwrap_or("https://your-app.example");
    let mut s = String::from("[{\"AllowedOrigins\":[\"");
    s.push_str(origin);
    s.push_str("\"],\"AllowedMethods\":[\"PUT\"],\"AllowedHeaders\":[\"*\"],\"ExposeHeaders\":[\"ETag\"],\"MaxAgeSeconds\":3000}]");
    s
}

/// The hint of a part `PUT` the browser blocked: the bucket has no CORS rule for the page.
#[must_use]
pub fn bucket_cors_hint(url: &str, page_origin: Option<&str>) -> String {
    let mut h = String::from("the bucket at ");
    h.push_str(text::head(url, b'?'));
    h.push_str(
        " has no CORS rule that lets this page PUT parts; add this bucket CORS configuration: ",
    );
    h.push_str(&bucket_cors_rule(page_origin));
    h
}

/// The hint of a chunk POST the browser blocked (`protocol: 's3-post'`): the bucket has no CORS
/// rule that lets the page POST (no headers or ETag needed: the POST is a simple request).
#[must_use]
pub fn post_cors_hint(url: &str, page_origin: Option<&str>) -> String {
    let mut h = String::from("the bucket at ");
    h.push_str(text::head(url, b'?'));
    h.push_str(" has no CORS rule that lets this page POST chunks; add this bucket CORS configuration: [{\"AllowedOrigins\":[\"");
    h.push_str(page_origin.unwrap_or("https://your-app.example"));
    h.push_str("\"],\"AllowedMethods\":[\"POST\"]}]");
    h
}

/// The hint of a part stored whose ETag the page cannot read.
#[must_use]
pub fn etag_hint(page_origin: Option<&str>) -> String {
    let mut h = String::from(
        "the part was stored but the bucket's CORS rule does not expose the ETag header, so the upload cannot be completed; add \"ExposeHeaders\": [\"ETag\"] to the rule: ",
    );
    h.push_str(&bucket_cors_rule(page_origin));
    h
}

// ---- The seam: what the scheduler asks a file under S3 ----
//
// The scheduler keeps one file's requests (waiting, in flight, retried, backed off) the same way
// under every protocol; which request comes next, what it is, and what its answer means are
// asked here. A file's own steps (create, list, complete) are kept under [`FILE_STEP`].

/// The chunk number under which a file's own steps (create, list, complete, abort) are kept in
/// the scheduler's chunk map, so they wait, back off and retry exactly like parts. Parts count
/// from 1.
pub const FILE_STEP: u32 = 0;

/// What the scheduler needs to frame a request of this file.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// The request's id.
    pub id: RequestId,
    /// The file.
    pub file: FileId,
    /// The file's name.
    pub file_name: &'a str,
    /// 1 for the first request of this step or part, 2 for the next, …
    pub attempt: u32,
    /// `xhr.timeout` in ms; `None` = no timeout.
    pub timeout_ms: Option<u64>,
    /// The `checksum` option: parts are read and hashed before `signPart`.
    pub checksum: Option<Algorithm>,
}

/// An answer to one of this protocol's requests, as the driver reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An app callback answered (a part's `signPart` that failed too).
    Callback(Answer),
    /// A part's `PUT` got an HTTP answer the page could read.
    Part {
        /// The HTTP status.
        status: u16,
        /// The `ETag` header, when readable.
        etag: Option<String>,
        /// The response text (S3's XML error, if any).
        body: String,
    },
    /// A part's `PUT` got no readable answer; a `no-cors` request to `url` showed whether the
    /// store answers at all.
    Unread {
        /// The signed URL.
        url: String,
        /// Whether the store answered the `no-cors` request.
        reachable: bool,
    },
}

impl Reply {
    /// Whether the bytes reached the store (a 2xx to a part), which the window learns from.
    #[must_use]
    pub fn delivered(&self) -> bool {
        matches!(
            self,
            Reply::Part {
                status: 200..=299,
                ..
            }
        )
    }
}

/// What the answer to a request means for the file, in the scheduler's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// The file's own step answered; what the store holds is in [`S3File::stored_parts`] and
    /// [`S3File::confirmed_bytes`].
    Stepped,
    /// The upload is complete: the object's location (empty if the app gave none).
    Finished(String),
    /// The part is stored (a single `PUT` completes the file with it).
    PartStored,
    /// The part's URL was refused (expired): sign it again and send it once more.
    SignAgain,
    /// The store forgot the upload: the file starts over (its in-flight parts are dropped).
    StartOver,
    /// Try the request again with backoff; this error is the file's if it gives up.
    Retry(UploadError),
    /// The file fails with this error.
    Fail(UploadError),
}

/// What the reading of an answer needs from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The page's origin, for the bucket CORS hints.
    pub page_origin: Option<&'a str>,
    /// Whether a blocked part is diagnosed as `cors` (else it is a network failure).
    pub diagnose_cors: bool,
}

impl S3File {
    /// The file of `size` bytes as the protocol cuts it: parts of [`part_size`] for `chunk_size`,
    /// one signed `PUT` when the file fits one part and the app gave `signUpload`.
    ///
    /// # Errors
    /// The file breaks S3's part rules.
    pub fn for_file(size: u64, chunk_size: u64, o: S3Options) -> Result<S3File, PartRuleError> {
        let part = part_size(size, chunk_size)?;
        let mut f = if o.sign_upload && size <= part {
            S3File::single(size, part)
        } else {
            S3File::new(size, part)
        };
        f.post = o.post;
        Ok(f)
    }

    /// The part size.
    #[must_use]
    pub fn part_size(&self) -> u64 {
        self.upload.part_size
    }

    /// The same file started over (a retried file): an upload already created is listed, not
    /// created again, so its stored parts are kept.
    #[must_use]
    pub fn again(&self) -> S3File {
        if self.post {
            let mut f = self.clone();
            f.listed = false;
            f.completed = false;
            f.renew = 0;
            f.in_flight.clear();
            return f;
        }
        if self.single {
            S3File::single(self.size, self.upload.part_size)
        } else {
            S3File::resumed(self.size, self.upload.clone())
        }
    }

    /// How many parts the store holds.
    #[must_use]
    pub fn stored_parts(&self) -> u32 {
        u32::try_from(self.upload.parts.len()).unwrap_or(u32::MAX)
    }

    /// Whether the file is done once all its parts are stored (one signed `PUT`), rather than
    /// when `completeMultipartUpload` answers.
    #[must_use]
    pub fn done_with_parts(&self) -> bool {
        self.single
    }

    /// The request the file sends next: its own step ([`FILE_STEP`]) while one is due or
    /// waiting to be retried (`step`: `Some(waiting)` when the scheduler holds one), else the
    /// lowest part waiting to be retried (`retry`), else the next missing part.
    #[must_use]
    pub fn next_request(&self, step: Option<bool>, retry: Option<u32>) -> Option<u32> {
        if let Some(waiting) = step {
            return waiting.then_some(FILE_STEP);
        }
        match self.next() {
            Step::Create | Step::ListParts | Step::Complete => Some(FILE_STEP),
            Step::Part(n) => Some(retry.unwrap_or(n)),
            Step::Wait => retry,
        }
    }

    /// Request `n` is sent: a part is in flight until it is stored or stopped.
    pub fn sending(&mut self, n: u32) {
        if n != FILE_STEP {
            self.started(n);
        }
    }

    /// The request for `n`: the file's own step for [`FILE_STEP`], else part `n` (`signPart`,
    /// or `signUpload` for one signed `PUT`, then the `PUT`).
    #[must_use]
    pub fn request(&self, n: u32, frame: Frame<'_>) -> Option<RequestSpec> {
        let up = &self.upload;
        let (upload_id, key) = (up.upload_id.clone(), up.key.clone());
        let (call, phase, range) = if n == FILE_STEP {
            match self.next() {
                Step::Create if self.post => {
                    // A prefix known already (renewed, or kept from before) is kept.
                    let call = Call::Policy {
                        chunk_size: up.part_size,
                        key_prefix: self.created.then_some(key),
                    };
                    (call, Phase::CreatePolicy, (0, 0))
                }
                Step::ListParts if self.post => (
                    Call::ListChunks { key_prefix: key },
                    Phase::ListChunks,
                    (0, 0),
                ),
                Step::Complete if self.post => {
                    let chunks = up.parts.iter().map(|p| p.number).collect();
                    let call = Call::Compose {
                        key_prefix: key,
                        chunks,
                    };
                    (call, Phase::Compose, (0, 0))
                }
                Step::Create => (Call::Create, Phase::CreateUpload, (0, 0)),
                Step::ListParts => (Call::ListParts { upload_id, key }, Phase::ListParts, (0, 0)),
                Step::Complete => {
                    let parts = self.completion();
                    let call = Call::Complete {
                        upload_id,
                        key,
                        parts,
                    };
                    (call, Phase::CompleteUpload, (0, 0))
                }
                Step::Part(_) | Step::Wait => return None,
            }
        } else {
            let (start, end) = self.range(n)?;
            if self.post {
                // The policy's fields, the chunk's key, then the bytes (S3 reads the file
                // field last): a simple request, never preflighted.
                let mut s = spec(n, Call::Chunk, Phase::Upload, (start, end), frame);
                let mut fields = self.fields.clone();
                let mut k = key;
                k.push_str(&u64::from(n).to_string());
                fields.push(("key".to_owned(), k));
                s.method = "POST".to_owned();
                s.url = self.url.clone();
                s.body = RequestBody::Multipart {
                    fields,
                    file_field: "file".to_owned(),
                    file_name: frame.file_name.to_owned(),
                };
                return Some(s);
            }
            let call = if self.single {
                Call::Upload { size: end - start }
            } else {
                Call::Part {
                    upload_id,
                    key,
                    part_number: n,
                    size: end - start,
                    checksum: None,
                }
            };
            (call, Phase::Upload, (start, end))
        };
        Some(spec(n, call, phase, range, frame))
    }

    /// `abortMultipartUpload` when the file has an upload to abort (created, not completed):
    /// sent and not awaited, so the upload is forgotten here.
    pub fn abort(&mut self, frame: Frame<'_>) -> Option<RequestSpec> {
        if !self.needs_abort() {
            return None;
        }
        let key = self.upload.key.clone();
        let call = if self.post {
            Call::Discard { key_prefix: key }
        } else {
            Call::Abort {
                upload_id: self.upload.upload_id.clone(),
                key,
            }
        };
        self.forget_upload();
        let frame = Frame {
            attempt: 1,
            timeout_ms: None,
            ..frame
        };
        Some(spec(FILE_STEP, call, Phase::CompleteUpload, (0, 0), frame))
    }

    /// Reads the answer `reply` to `sent` (one of this file's requests). `resigned`: the
    /// part's URL was already signed again once.
    pub fn read(
        &mut self,
        sent: &RequestSpec,
        reply: Reply,
        resigned: bool,
        cx: Context<'_>,
    ) -> Reading {
        match reply {
            Reply::Callback(answer) => self.read_callback(sent, answer),
            Reply::Part { status, etag, body } => {
                self.read_part(sent, status, etag.as_deref(), body, resigned, cx)
            }
            Reply::Unread { url, reachable } => {
                // The signed URL's query is a credential for this part: errors show the object.
                let object = text::head(&url, b'?').to_owned();
                if reachable && cx.diagnose_cors {
                    let mut e = sent.error(
                        ErrorKind::Cors,
                        "was blocked by the browser: the bucket's CORS rule does not allow this page",
                    );
                    e.url = Some(object);
                    e.hint = Some(if self.post {
                        post_cors_hint(&url, cx.page_origin)
                    } else {
                        bucket_cors_hint(&url, cx.page_origin)
                    });
                    Reading::Fail(e)
                } else {
                    let mut e = sent.error(ErrorKind::Network, "got no answer from the store");
                    e.url = Some(object);
                    Reading::Retry(e)
                }
            }
        }
    }

    fn read_callback(&mut self, sent: &RequestSpec, answer: Answer) -> Reading {
        let why = match answer {
            Answer::Created { upload_id, key } => {
                return self.stepped(|f| f.created(upload_id, key))
            }
            Answer::Listed(parts) => return self.stepped(|f| f.listed(parts)),
            Answer::Policy {
                url,
                fields,
                key_prefix,
            } => match self.policy(url, fields, key_prefix) {
                None => return Reading::Stepped,
                Some(why) => why.to_owned(),
            },
            Answer::Chunks(numbers) => {
                self.listed(Vec::new());
                for number in numbers {
                    if let Some((start, end)) = self.range(number) {
                        self.keep(Part {
                            number,
                            etag: String::new(),
                            size: end - start,
                        });
                    }
                }
                return Reading::Stepped;
            }
            Answer::UploadGone => return self.stepped(S3File::forget_upload),
            Answer::Completed { location } => {
                self.completed();
                return Reading::Finished(location.unwrap_or_default());
            }
            Answer::Failed(why) => why,
        };
        let call = sent.s3.as_ref();
        let mut e = UploadError::new(ErrorKind::Callback, call.map_or("", Call::callback));
        e.message.push_str(" failed: ");
        e.message.push_str(&why);
        e.phase = Some(match call {
            Some(Call::Upload { .. }) => Phase::SignUpload,
            Some(Call::Part { .. }) => Phase::SignPart,
            _ => sent.phase,
        });
        e.chunk = (sent.chunk != FILE_STEP).then_some(sent.chunk);
        e.attempts = sent.attempt;
        Reading::Retry(e)
    }

    /// Applies `step` to this file: the file's own step answered.
    fn stepped(&mut self, step: impl FnOnce(&mut S3File)) -> Reading {
        step(self);
        Reading::Stepped
    }

    fn read_part(
        &mut self,
        sent: &RequestSpec,
        status: u16,
        etag: Option<&str>,
        body: String,
        resigned: bool,
        cx: Context<'_>,
    ) -> Reading {
        let n = sent.chunk;
        let answered = |what: &str| {
            let mut e = sent.error(ErrorKind::Http, what);
            e.message.push_str(&u64::from(status).to_string());
            e.status = Some(status);
            e.body = Some(body.clone());
            e
        };
        let outcome = match classify_part(status, etag, &body) {
            // A single PUT completes nothing, and a chunk POST is composed by its key: their
            // ETag is not needed.
            PartOutcome::EtagHidden if self.single || self.post => {
                PartOutcome::Stored(String::new())
            }
            // A refused policy serves every chunk of the file: it is fetched again once per
            // file. A chunk sent under an older policy, or while the new one is on its way, is
            // just sent again.
            PartOutcome::Resign if self.post => {
                // Sent under the current policy: its URL and fields (a policy signed again within
                // the same second may have the same fields).
                let current = sent.url == self.url
                    && matches!(&sent.body, RequestBody::Multipart { fields, .. } if fields.starts_with(&self.fields));
                if current && self.renew == 2 {
                    return Reading::Fail(answered(
                        "was refused again after the policy was fetched anew: HTTP ",
                    ));
                }
                if current {
                    self.renew = 1;
                }
                return Reading::SignAgain;
            }
            outcome => outcome,
        };
        match outcome {
            PartOutcome::Stored(etag) => {
                self.stored(n, etag);
                Reading::PartStored
            }
            PartOutcome::EtagHidden => {
                let mut e = sent.error(
                    ErrorKind::Cors,
                    "was stored, but its ETag response header cannot be read",
                );
                e.phase = Some(Phase::Etag);
                e.status = Some(status);
                e.hint = Some(etag_hint(cx.page_origin));
                Reading::Fail(e)
            }
            PartOutcome::Resign if !resigned => Reading::SignAgain,
            PartOutcome::Resign => {
                Reading::Fail(answered("was refused again after signing it anew: HTTP "))
            }
            PartOutcome::UploadGone => {
                self.forget_upload();
                Reading::StartOver
            }
            PartOutcome::Retry | PartOutcome::BadDigest => {
                let mut e = answered("answered HTTP ");
                if outcome == PartOutcome::BadDigest {
                    // The bytes the store got differ from the checksum signed: read, hash and
                    // send again, within the retry budget (no back-off of the window).
                    e.kind = ErrorKind::Integrity;
                    e.algorithm = sent.checksum.map(Algorithm::as_str);
                }
                Reading::Retry(e)
            }
            PartOutcome::Fail => Reading::Fail(answered("was refused with HTTP ")),
        }
    }
}

/// A request of this protocol: a callback's (no URL, method or body until the driver calls it)
/// or a part's `PUT` of `range`.
fn spec(n: u32, call: Call, phase: Phase, range: (u64, u64), frame: Frame<'_>) -> RequestSpec {
    let put = phase == Phase::Upload;
    let checksum = frame.checksum.filter(|_| matches!(call, Call::Part { .. }));
    RequestSpec {
        id: frame.id,
        file: frame.file,
        chunk: n,
        phase,
        attempt: frame.attempt,
        method: if put { "PUT" } else { "" }.to_owned(),
        url: String::new(),
        body: if put {
            RequestBody::Raw
        } else {
            RequestBody::None
        },
        start: range.0,
        end: range.1,
        headers: Vec::new(),
        with_credentials: false,
        timeout_ms: frame.timeout_ms,
        upload_listener: false,
        // Every part URL is different (its signature), so each part pays its own preflight
        // and no warm-up can share one: the scheduler does not hold parts back for it.
        preflight: Prediction::default(),
        params: Vec::new(),
        file_name: frame.file_name.to_owned(),
        s3: Some(call),
        // The driver reads and hashes the part, then `Scheduler::hashed` fills `Call::Part`'s.
        checksum,
        file_digest_of: None,
        target: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_size_follows_s3s_rules() {
        assert_eq!(part_size(0, 1), Ok(MIN_PART_SIZE));
        assert_eq!(part_size(64 * MIB, 8 * MIB), Ok(8 * MIB));
        // 10,000 parts exactly stay at the minimum; one byte more grows the part to 6 MiB.
        assert_eq!(part_size(MAX_PARTS * MIN_PART_SIZE, 1), Ok(MIN_PART_SIZE));
        assert_eq!(part_size(MAX_PARTS * MIN_PART_SIZE + 1, 1), Ok(6 * MIB));
        assert_eq!(part_size(MAX_PARTS * MAX_PART_SIZE, 1), Ok(MAX_PART_SIZE));
        assert!(part_size(MAX_PARTS * MAX_PART_SIZE + 1, 1).is_err());
        assert!(part_size(1, MAX_PART_SIZE + 1).is_err());
    }

    #[test]
    fn every_accepted_size_obeys_the_rules() {
        let sizes = [
            0,
            1,
            5 * MIB - 1,
            5 * MIB,
            64 * MIB,
            49_999 * MIB,
            50_001 * MIB + 3,
            7 << 40,
        ];
        for file in sizes {
            for wanted in [1, MIB, 5 * MIB, 64 * MIB] {
                let size = part_size(file, wanted).unwrap();
                let n = part_count(file, size);
                assert!(n <= MAX_PARTS, "{file} in {size}: {n} parts");
                assert!((MIN_PART_SIZE..=MAX_PART_SIZE).contains(&size));
                for k in 1..n {
                    let (s, e) = part_range(file, size, k).unwrap();
                    assert!(e - s >= MIN_PART_SIZE);
                }
                let (_, end) = part_range(file, size, n).unwrap();
                assert_eq!(end, file, "the last part ends the file");
            }
        }
    }

    #[test]
    fn a_fresh_file_creates_sends_every_part_then_completes() {
        let mut f = S3File::new(12 * MIB, 5 * MIB);
        assert_eq!(f.next(), Step::Create);
        f.created("u1".into(), "k".into());
        assert_eq!(f.next(), Step::Part(1));
        f.started(1);
        assert_eq!(f.next(), Step::Part(2));
        f.started(2);
        f.started(3);
        assert_eq!(f.next(), Step::Wait);
        f.stored(2, "\"b\"".into());
        f.stopped(3);
        assert_eq!(f.next(), Step::Part(3));
        f.started(3);
        f.stored(3, "\"c\"".into());
        f.stored(1, "\"a\"".into());
        assert_eq!(f.next(), Step::Complete);
        let nums: Vec<u32> = f.completion().iter().map(|p| p.number).collect();
        assert_eq!(nums, [1, 2, 3]);
        assert_eq!(f.completion()[2].size, 2 * MIB);
        assert_eq!(f.confirmed_bytes(), 12 * MIB);
        assert!(f.needs_abort());
        f.completed();
        assert!(!f.needs_abort());
        assert_eq!(f.next(), Step::Wait);
    }

    #[test]
    fn a_resumed_file_lists_then_sends_only_missing_parts() {
        let mut first = S3File::new(20 * MIB, 5 * MIB);
        first.created("u1".into(), "k".into());
        first.stored(1, "\"a\"".into());
        first.stored(3, "\"c\"".into());
        let kept = first.upload().clone();
        let mut again = S3File::resumed(20 * MIB, kept);
        assert_eq!(again.next(), Step::ListParts);
        // The store has parts 1 and 3, and a part 2 of the wrong size (cut differently before).
        again.listed(vec![
            Part {
                number: 1,
                etag: "\"a\"".into(),
                size: 5 * MIB,
            },
            Part {
                number: 2,
                etag: "\"x\"".into(),
                size: 1,
            },
            Part {
                number: 3,
                etag: "\"c\"".into(),
                size: 5 * MIB,
            },
        ]);
        assert_eq!(again.next(), Step::Part(2));
        again.started(2);
        assert_eq!(again.next(), Step::Part(4));
    }

    #[test]
    fn an_upload_the_store_forgot_starts_over() {
        let mut f = S3File::resumed(
            6 * MIB,
            S3Upload {
                upload_id: "gone".into(),
                key: "k".into(),
                part_size: 5 * MIB,
                parts: vec![],
            },
        );
        assert_eq!(f.next(), Step::ListParts);
        f.forget_upload();
        assert_eq!(f.next(), Step::Create);
        assert_eq!(f.upload().part_size, 5 * MIB);
        assert!(!f.needs_abort());
    }

    #[test]
    fn part_answers_are_classified() {
        assert_eq!(
            classify_part(200, Some("\"e\""), ""),
            PartOutcome::Stored("\"e\"".into())
        );
        assert_eq!(classify_part(200, None, ""), PartOutcome::EtagHidden);
        assert_eq!(classify_part(200, Some(""), ""), PartOutcome::EtagHidden);
        let expired =
            "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>";
        assert_eq!(classify_part(403, None, expired), PartOutcome::Resign);
        let mismatch = "<Error><Code>SignatureDoesNotMatch</Code></Error>";
        assert_eq!(classify_part(403, None, mismatch), PartOutcome::Resign);
        assert_eq!(
            classify_part(403, None, "<Error><Code>AllAccessDisabled</Code></Error>"),
            PartOutcome::Fail
        );
        assert_eq!(
            classify_part(404, None, "<Error><Code>NoSuchUpload</Code></Error>"),
            PartOutcome::UploadGone
        );
        assert_eq!(classify_part(503, None, ""), PartOutcome::Retry);
        let bad = "<Error><Code>BadDigest</Code><Message>The CRC32C you specified did not match the calculated checksum.</Message></Error>";
        assert_eq!(classify_part(400, None, bad), PartOutcome::BadDigest);
        assert_eq!(classify_part(400, None, ""), PartOutcome::Fail);
    }

    fn frame() -> Frame<'static> {
        Frame {
            id: RequestId(7),
            file: FileId(1),
            file_name: "f.bin",
            attempt: 1,
            timeout_ms: None,
            checksum: None,
        }
    }

    const CX: Context<'static> = Context {
        page_origin: Some("http://app.test"),
        diagnose_cors: true,
    };

    #[test]
    fn the_seam_picks_the_file_step_then_retries_then_missing_parts() {
        let mut f = S3File::new(12 * MIB, MIN_PART_SIZE);
        assert_eq!(f.next_request(None, None), Some(FILE_STEP));
        // A step the scheduler holds (backing off) is the only request until it is due.
        assert_eq!(f.next_request(Some(false), Some(2)), None);
        assert_eq!(f.next_request(Some(true), None), Some(FILE_STEP));
        let create = f.request(FILE_STEP, frame()).unwrap();
        assert_eq!(
            (create.s3.clone(), create.phase),
            (Some(Call::Create), Phase::CreateUpload)
        );
        let answer = Reply::Callback(Answer::Created {
            upload_id: "u".into(),
            key: "k".into(),
        });
        assert_eq!(f.read(&create, answer, false, CX), Reading::Stepped);
        assert_eq!(f.next_request(None, None), Some(1));
        f.sending(1);
        // A part waiting to be retried goes before the next missing one.
        assert_eq!(f.next_request(None, Some(1)), Some(1));
        assert_eq!(f.next_request(None, None), Some(2));
        let part = f.request(1, frame()).unwrap();
        assert_eq!(
            (part.method.as_str(), part.start, part.end),
            ("PUT", 0, 5 * MIB)
        );
        assert!(f
            .abort(frame())
            .is_some_and(|a| matches!(a.s3, Some(Call::Abort { .. }))));
        assert_eq!(f.abort(frame()), None, "an upload is aborted once");
    }

    #[test]
    fn the_seam_reads_part_answers() {
        let mut f = S3File::new(12 * MIB, MIN_PART_SIZE);
        f.created("u".into(), "k".into());
        f.sending(1);
        let part = f.request(1, frame()).unwrap();
        let put = |status: u16, etag: Option<&str>, body: &str| Reply::Part {
            status,
            etag: etag.map(str::to_owned),
            body: body.to_owned(),
        };
        let expired =
            "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>";
        assert_eq!(
            f.read(&part, put(403, None, expired), false, CX),
            Reading::SignAgain
        );
        let again = f.read(&part, put(403, None, expired), true, CX);
        assert!(
            matches!(again, Reading::Fail(e) if e.kind == ErrorKind::Http && e.status == Some(403))
        );
        let hidden = f.read(&part, put(200, None, ""), false, CX);
        assert!(
            matches!(hidden, Reading::Fail(e) if e.kind == ErrorKind::Cors && e.phase == Some(Phase::Etag))
        );
        assert!(matches!(
            f.read(&part, put(503, None, ""), false, CX),
            Reading::Retry(_)
        ));
        assert_eq!(
            f.read(&part, put(200, Some("\"e1\""), ""), false, CX),
            Reading::PartStored
        );
        assert_eq!(f.stored_parts(), 1);
        let unread = Reply::Unread {
            url: "http://store.test/b/k?X-Amz-Signature=secret".into(),
            reachable: true,
        };
        let Reading::Fail(e) = f.read(&part, unread, false, CX) else {
            panic!("a blocked part fails the file");
        };
        assert_eq!(
            e.url.as_deref(),
            Some("http://store.test/b/k"),
            "no signature in errors"
        );
        assert!(e.hint.is_some_and(|h| h.contains("http://app.test")));
        let gone = "<Error><Code>NoSuchUpload</Code></Error>";
        assert_eq!(
            f.read(&part, put(404, None, gone), false, CX),
            Reading::StartOver
        );
        assert_eq!(f.next(), Step::Create);
    }

    const POST: S3Options = S3Options {
        sign_upload: false,
        post: true,
    };

    fn policy(url: &str, sig: &str, prefix: &str) -> Reply {
        Reply::Callback(Answer::Policy {
            url: url.into(),
            fields: vec![
                ("policy".into(), "cG9saWN5".into()),
                ("x-amz-signature".into(), sig.into()),
            ],
            key_prefix: prefix.into(),
        })
    }

    fn post_reply(status: u16, body: &str) -> Reply {
        Reply::Part {
            status,
            etag: None,
            body: body.to_owned(),
        }
    }

    const POLICY_EXPIRED: &str = "<Error><Code>AccessDenied</Code><Message>Invalid according to Policy: Policy expired.</Message></Error>";

    #[test]
    fn post_one_policy_per_file_then_form_posts_then_compose() {
        let mut f = S3File::for_file(12 * MIB, MIB, POST).unwrap();
        assert_eq!(f.part_size(), MIN_PART_SIZE, "chunks follow the part rules");
        let create = f.request(FILE_STEP, frame()).unwrap();
        assert_eq!(
            (create.s3.clone(), create.phase),
            (
                Some(Call::Policy {
                    chunk_size: 5 * MIB,
                    key_prefix: None
                }),
                Phase::CreatePolicy
            )
        );
        let b = "http://store.test/b";
        assert_eq!(
            f.read(&create, policy(b, "s1", "up/f/"), false, CX),
            Reading::Stepped
        );
        // A fresh prefix has nothing to list: the chunks go at once, several in flight.
        assert_eq!(f.next_request(None, None), Some(1));
        f.sending(1);
        assert_eq!(f.next_request(None, None), Some(2));
        let chunk = f.request(2, frame()).unwrap();
        assert_eq!((chunk.method.as_str(), chunk.url.as_str()), ("POST", b));
        assert_eq!(
            (chunk.start, chunk.end, chunk.s3.clone()),
            (5 * MIB, 10 * MIB, Some(Call::Chunk))
        );
        let RequestBody::Multipart {
            fields, file_field, ..
        } = &chunk.body
        else {
            panic!("a chunk is a multipart form: {:?}", chunk.body);
        };
        let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["policy", "x-amz-signature", "key"],
            "the policy's fields, then the key; the file field last"
        );
        assert_eq!(fields[2].1, "up/f/2");
        assert_eq!(file_field, "file");
        assert!(chunk.headers.is_empty() && !chunk.preflight.preflight && !chunk.with_credentials);
        f.sending(2);
        f.sending(3);
        // S3 answers a form POST 204 with nothing to read: stored.
        for n in [1, 3, 2] {
            let sent = f.request(n, frame()).unwrap();
            assert_eq!(
                f.read(&sent, post_reply(204, ""), false, CX),
                Reading::PartStored
            );
        }
        let done = f.request(FILE_STEP, frame()).unwrap();
        assert_eq!(
            (done.s3.clone(), done.phase),
            (
                Some(Call::Compose {
                    key_prefix: "up/f/".into(),
                    chunks: vec![1, 2, 3]
                }),
                Phase::Compose
            )
        );
        assert_eq!(
            f.abort(frame()).and_then(|a| a.s3),
            Some(Call::Discard {
                key_prefix: "up/f/".into()
            })
        );
    }

    #[test]
    fn post_resume_lists_chunks_once_and_sends_only_the_missing_ones() {
        let mut f = S3File::for_file(21 * MIB, MIN_PART_SIZE, POST).unwrap();
        let create = f.request(FILE_STEP, frame()).unwrap();
        f.read(&create, policy("http://s/b", "s1", "p/"), false, CX);
        let mut again = f.again();
        let list = again.request(FILE_STEP, frame()).unwrap();
        assert_eq!(
            list.s3,
            Some(Call::ListChunks {
                key_prefix: "p/".into()
            })
        );
        // Chunk 9 does not exist; 1 and 3 are stored.
        let chunks = Reply::Callback(Answer::Chunks(vec![3, 1, 9]));
        assert_eq!(again.read(&list, chunks, false, CX), Reading::Stepped);
        assert_eq!(
            (again.stored_parts(), again.confirmed_bytes()),
            (2, 10 * MIB)
        );
        let mut sent = Vec::new();
        while let Some(n) = again.next_request(None, None).filter(|n| *n != FILE_STEP) {
            again.sending(n);
            sent.push(n);
        }
        assert_eq!(sent, [2, 4, 5]);
    }

    #[test]
    fn post_expired_policy_is_fetched_again_once_with_the_same_prefix() {
        let mut f = S3File::for_file(12 * MIB, MIN_PART_SIZE, POST).unwrap();
        let create = f.request(FILE_STEP, frame()).unwrap();
        f.read(&create, policy("http://s/b", "old", "p/"), false, CX);
        for n in 1..=3 {
            f.sending(n);
        }
        let old: Vec<_> = (1..=3).map(|n| f.request(n, frame()).unwrap()).collect();
        assert_eq!(
            f.read(&old[0], post_reply(403, POLICY_EXPIRED), false, CX),
            Reading::SignAgain
        );
        // The file's policy is fetched again before anything else, with its prefix.
        assert_eq!(f.next_request(None, Some(1)), Some(FILE_STEP));
        let renew = f.request(FILE_STEP, frame()).unwrap();
        assert_eq!(
            renew.s3,
            Some(Call::Policy {
                chunk_size: 5 * MIB,
                key_prefix: Some("p/".into())
            })
        );
        // Another chunk of the old policy refused meanwhile is just sent again.
        assert_eq!(
            f.read(&old[1], post_reply(403, POLICY_EXPIRED), false, CX),
            Reading::SignAgain
        );
        // The new policy's form is elsewhere, with the same fields (signed within the same second).
        assert_eq!(
            f.read(&renew, policy("http://s/b2", "old", "p/"), false, CX),
            Reading::Stepped
        );
        // After the new policy, a chunk of the old one refused: sent again, no third policy.
        assert_eq!(
            f.read(&old[2], post_reply(403, POLICY_EXPIRED), true, CX),
            Reading::SignAgain
        );
        assert_eq!(f.next_request(None, Some(1)), Some(1));
        let fresh = f.request(1, frame()).unwrap();
        assert_eq!(fresh.url, "http://s/b2");
        // Refused under the new policy too: the file fails (`http`, 403), no third policy.
        let e = f.read(&fresh, post_reply(403, POLICY_EXPIRED), false, CX);
        assert!(
            matches!(&e, Reading::Fail(e) if e.kind == ErrorKind::Http && e.status == Some(403)),
            "{e:?}"
        );
        assert_ne!(f.next(), Step::Create);
    }

    #[test]
    fn post_kept_prefix_is_signed_again_then_listed_and_may_still_renew_once() {
        let mut f = S3File::for_file(12 * MIB, MIN_PART_SIZE, POST).unwrap();
        let kept = S3Upload {
            key: "p/".into(),
            part_size: 5 * MIB,
            ..S3Upload::default()
        };
        let other_cut = S3Upload {
            part_size: 6 * MIB,
            ..kept.clone()
        };
        assert!(!f.resume(other_cut), "chunks cut another way");
        assert!(f.resume(kept.clone()));
        assert!(f.needs_abort(), "a kept prefix is discarded on cancel");
        let create = f.request(FILE_STEP, frame()).unwrap();
        assert_eq!(
            create.s3,
            Some(Call::Policy {
                chunk_size: 5 * MIB,
                key_prefix: Some("p/".into())
            })
        );
        f.read(&create, policy("http://s/b", "s1", "p/"), false, CX);
        let list = f.request(FILE_STEP, frame()).unwrap();
        assert_eq!(
            list.s3,
            Some(Call::ListChunks {
                key_prefix: "p/".into()
            })
        );
        f.read(&list, Reply::Callback(Answer::Chunks(vec![1])), false, CX);
        f.sending(2);
        let chunk = f.request(2, frame()).unwrap();
        // The policy signed after the resume expires too: it is fetched again once.
        assert_eq!(
            f.read(&chunk, post_reply(403, POLICY_EXPIRED), false, CX),
            Reading::SignAgain
        );
        assert_eq!(
            f.request(FILE_STEP, frame()).and_then(|r| r.s3),
            Some(Call::Policy {
                chunk_size: 5 * MIB,
                key_prefix: Some("p/".into())
            })
        );
        // An app that answers a kept prefix with another one begins a new upload there.
        let mut g = S3File::for_file(12 * MIB, MIN_PART_SIZE, POST).unwrap();
        g.resume(kept);
        let create = g.request(FILE_STEP, frame()).unwrap();
        g.read(&create, policy("http://s/b", "s1", "q/"), false, CX);
        assert_eq!((g.next(), g.upload().key.as_str()), (Step::Part(1), "q/"));
    }

    #[test]
    fn post_policy_fetched_again_must_keep_its_prefix() {
        let mut f = S3File::for_file(6 * MIB, MIN_PART_SIZE, POST).unwrap();
        let create = f.request(FILE_STEP, frame()).unwrap();
        f.read(&create, policy("http://s/b", "old", "p/"), false, CX);
        f.sending(1);
        let chunk = f.request(1, frame()).unwrap();
        f.read(&chunk, post_reply(403, POLICY_EXPIRED), false, CX);
        let renew = f.request(FILE_STEP, frame()).unwrap();
        let e = f.read(&renew, policy("http://s/b", "new", "other/"), false, CX);
        assert!(
            matches!(&e, Reading::Retry(e) if e.kind == ErrorKind::Callback && e.phase == Some(Phase::CreatePolicy) && e.message.contains("keyPrefix")),
            "{e:?}"
        );
    }

    #[test]
    fn post_blocked_by_the_bucket_names_the_post_rule() {
        let mut f = S3File::for_file(6 * MIB, MIN_PART_SIZE, POST).unwrap();
        let create = f.request(FILE_STEP, frame()).unwrap();
        f.read(&create, policy("http://store.test/b", "s", "p/"), false, CX);
        f.sending(1);
        let chunk = f.request(1, frame()).unwrap();
        let unread = Reply::Unread {
            url: "http://store.test/b".into(),
            reachable: true,
        };
        let Reading::Fail(e) = f.read(&chunk, unread, false, CX) else {
            panic!("a blocked chunk fails the file");
        };
        let hint = e.hint.unwrap_or_default();
        assert_eq!(e.kind, ErrorKind::Cors);
        for want in [
            "\"AllowedOrigins\":[\"http://app.test\"]",
            "\"AllowedMethods\":[\"POST\"]",
            "POST chunks",
        ] {
            assert!(hint.contains(want), "{want} in {hint}");
        }
        assert!(
            !hint.contains("ExposeHeaders"),
            "a POST needs no exposed header: {hint}"
        );
    }

    #[test]
    fn hints_show_the_rule_to_add() {
        let h = bucket_cors_hint(
            "http://127.0.0.1:9/b/k?partNumber=1&X-Amz-Signature=s",
            Some("http://app:1"),
        );
        assert!(h.contains("http://127.0.0.1:9/b/k has no CORS rule"), "{h}");
        assert!(!h.contains("Signature"), "the signature is not shown: {h}");
        for want in [
            "\"AllowedOrigins\":[\"http://app:1\"]",
            "\"AllowedMethods\":[\"PUT\"]",
            "\"ExposeHeaders\":[\"ETag\"]",
            "MaxAgeSeconds",
        ] {
            assert!(h.contains(want), "{want} in {h}");
        }
        assert!(etag_hint(None).contains("ExposeHeaders"));
    }
}
