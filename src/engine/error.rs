//! Error kinds and the one error type of the engine.
//!
//! This module owns [`UploadError`], [`ErrorKind`] and [`Phase`]. It does not classify
//! answers (that is [`crate::engine::classify`]) nor build CORS hints (that is
//! [`crate::engine::preflight`]); it only carries what they found.

use core::fmt;

/// Which request of a chunk an error or a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// The probe (`testChunks`): asks the server whether it already has the chunk.
    Test,
    /// The chunk upload itself (the POST, or `uploadMethod`; an S3 part's `PUT`).
    Upload,
    /// S3: the app's `createMultipartUpload` callback.
    CreateUpload,
    /// S3: the app's `listParts` callback.
    ListParts,
    /// S3: the app's `signPart` callback.
    SignPart,
    /// S3: the app's `signUpload` callback (a file sent as one signed `PUT`).
    SignUpload,
    /// S3: the app's `completeMultipartUpload` callback.
    CompleteUpload,
    /// S3: a part was stored but its `ETag` response header is not readable (bucket CORS).
    Etag,
    /// S3 POST: the app's `createUpload` callback (the file's signed POST policy).
    CreatePolicy,
    /// S3 POST: the app's `listChunks` callback.
    ListChunks,
    /// S3 POST: the app's `complete` callback (its server composes the chunks).
    Compose,
}

impl Phase {
    /// The JS name: `"test"`, `"upload"`, or for S3 the callback's name or `"etag"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Test => "test",
            Phase::Upload => "upload",
            Phase::CreateUpload => "createMultipartUpload",
            Phase::ListParts => "listParts",
            Phase::SignPart => "signPart",
            Phase::SignUpload => "signUpload",
            Phase::CompleteUpload => "completeMultipartUpload",
            Phase::Etag => "etag",
            Phase::CreatePolicy => "createUpload",
            Phase::ListChunks => "listChunks",
            Phase::Compose => "complete",
        }
    }
}

/// The class of a failure. JS sees it as the string of [`ErrorKind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The browser blocked the response (CORS), or likely did: every check of the request's
    /// CORS shape was blocked while the server answered (see [`crate::engine::verdict`]).
    Cors,
    /// No HTTP answer: connection refused or reset, DNS, offline.
    Network,
    /// The server answered with a status that fails the file (`status` and `body` are set).
    Http,
    /// No answer within `timeout` milliseconds.
    Timeout,
    /// The request was aborted without the engine asking for it.
    Aborted,
    /// The file was refused before any request (`rule` names the option that refused it).
    Rejected,
    /// An option is unusable (`option` names it).
    Invalid,
    /// One of the app's S3 callbacks failed (threw, rejected or answered something unusable)
    /// after its retries; `phase` names it.
    Callback,
    /// The server kept refusing a chunk's bytes as not matching their checksum, or the file it
    /// assembled did not match the file's digest (`chunk` and `algorithm` are set).
    Integrity,
}

impl ErrorKind {
    /// The JS name: `"cors"`, `"network"`, `"http"`, `"timeout"`, `"aborted"`, `"rejected"`
    /// `"invalid"`, `"callback"` or `"integrity"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Cors => "cors",
            ErrorKind::Network => "network",
            ErrorKind::Http => "http",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Aborted => "aborted",
            ErrorKind::Rejected => "rejected",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Callback => "callback",
            ErrorKind::Integrity => "integrity",
        }
    }
}

/// A failed upload, a refused file or a bad option, with everything known about it.
///
/// Request fields (`url`, `method`, `phase`, `chunk`, `attempts`) are set for failures of a
/// request; `rule` only for [`ErrorKind::Rejected`]; `option` only for [`ErrorKind::Invalid`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadError {
    /// The failure class.
    pub kind: ErrorKind,
    /// One line saying what happened.
    pub message: String,
    /// The HTTP status, when the server answered.
    pub status: Option<u16>,
    /// The response body, when the server answered.
    pub body: Option<String>,
    /// The URL of the failed request.
    pub url: Option<String>,
    /// The method of the failed request.
    pub method: Option<String>,
    /// Probe or upload.
    pub phase: Option<Phase>,
    /// The 1-based chunk number.
    pub chunk: Option<u32>,
    /// How many requests were made for this chunk, the failed one included (0 when none).
    pub attempts: u32,
    /// For [`ErrorKind::Cors`]: what the server must answer, built from the request's shape.
    pub hint: Option<String>,
    /// For [`ErrorKind::Rejected`]: the rule (`minFileSize`, `maxFileSize`, `fileType`,
    /// `maxFiles`, `duplicate`, `chunkCount`).
    pub rule: Option<String>,
    /// For [`ErrorKind::Invalid`]: the option's JS name.
    pub option: Option<String>,
    /// For [`ErrorKind::Integrity`] (and a `changed` rejection): the checksum algorithm.
    pub algorithm: Option<&'static str>,
}

impl UploadError {
    /// A bare error of `kind` with `message`; every other field empty.
    #[must_use]
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> UploadError {
        UploadError::with(kind, message.into(), None, None)
    }

    /// The one non-generic constructor behind [`UploadError::new`], [`UploadError::invalid`]
    /// and [`UploadError::rejected`] (one copy of this code in wasm, not one per message type).
    fn with(
        kind: ErrorKind,
        message: String,
        rule: Option<&str>,
        option: Option<&str>,
    ) -> UploadError {
        UploadError {
            kind,
            message,
            status: None,
            body: None,
            url: None,
            method: None,
            phase: None,
            chunk: None,
            attempts: 0,
            hint: None,
            rule: rule.map(str::to_string),
            option: option.map(str::to_string),
            algorithm: None,
        }
    }

    /// An [`ErrorKind::Invalid`] error naming `option`.
    #[must_use]
    pub fn invalid(option: &str, message: impl Into<String>) -> UploadError {
        UploadError::with(ErrorKind::Invalid, message.into(), None, Some(option))
    }

    /// An [`ErrorKind::Rejected`] error naming the `rule` that refused the file.
    #[must_use]
    pub fn rejected(rule: &str, message: impl Into<String>) -> UploadError {
        UploadError::with(ErrorKind::Rejected, message.into(), Some(rule), None)
    }
}

impl fmt::Display for UploadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.as_str())?;
        f.write_str(": ")?;
        f.write_str(&self.message)
    }
}

impl core::error::Error for UploadError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(ErrorKind::Cors.as_str(), "cors");
        assert_eq!(ErrorKind::Invalid.as_str(), "invalid");
        assert_eq!(Phase::Test.as_str(), "test");
        let e = UploadError::invalid("chunkSize", "bad");
        assert_eq!(e.option.as_deref(), Some("chunkSize"));
        assert_eq!(e.to_string(), "invalid: bad");
        let r = UploadError::rejected("maxFiles", "too many");
        assert_eq!(r.rule.as_deref(), Some("maxFiles"));
        assert_eq!(r.kind, ErrorKind::Rejected);
    }
}
