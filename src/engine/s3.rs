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
use crate::engine::preflight::find_str;
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
        }
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
        if !self.created {
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

    /// The store no longer knows the upload id (`NoSuchUpload`): start over with a new upload.
    pub fn forget_upload(&mut self) {
        let part_size = self.upload.part_size;
        self.upload = S3Upload {
            part_size,
            ..S3Upload::default()
        };
        self.created = false;
        self.listed = false;
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

    /// Whether cancelling must call `abortMultipartUpload` (an upload was created and not completed).
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
        /// The part's checksum for the server to sign (`x-amz-checksum-*`); `None` until
        /// checksums are computed (the `checksum` option).
        checksum: Option<String>,
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

/// The hint of a part stored whose ETag the page cannot read.
#[must_use]
pub fn etag_hint(page_origin: Option<&str>) -> String {
    let mut h = String::from(
        "the part was stored but the bucket's CORS rule does not expose the ETag header, so the upload cannot be completed; add \"ExposeHeaders\": [\"ETag\"] to the rule: ",
    );
    h.push_str(&bucket_cors_rule(page_origin));
    h
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
        assert_eq!(classify_part(400, None, ""), PartOutcome::Fail);
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
