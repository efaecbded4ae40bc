//! Classification of answers and transport failures into outcomes.
//!
//! This module owns the one place where a status code or a [`Failure`] becomes "present",
//! "absent", "success", "retry" or "fail" (docs/protocol.md §6, §7). It does not count
//! retries or compute delays ([`crate::engine::retry`]) and has no state.

use crate::engine::config::{Config, Protocol};
use crate::engine::error::ErrorKind;

/// What the transport observed for a request that got no HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// No HTTP answer the page can read (status 0): a failed connection, or a response CORS
    /// blocked, which script cannot tell apart. For a cross-origin request the engine checks
    /// which ([`crate::engine::verdict`]); otherwise it is a network error.
    NoResponse,
    /// The request's `timeout` elapsed.
    Timeout,
    /// The request was aborted without the engine asking for it.
    Aborted,
    /// The browser is offline (`navigator.onLine` is false). The request goes back to the queue
    /// without spending a retry and sending stops until the driver sends `Input::Online`.
    Offline,
    /// The browser could not read the file's bytes (changed, moved or deleted after it was
    /// chosen). Permanent: the file fails with kind `rejected`, rule `readable`.
    Unreadable,
    /// The browser refused to build the request (an invalid header from a `headers` function, a
    /// `query`/`headers` function that threw, a URL `fetch` rejects). Permanent: the file fails
    /// with kind `invalid`.
    Unsendable,
}

/// What a probe answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The server has the chunk: skip it.
    Present,
    /// The server lacks the chunk: upload it.
    Absent,
    /// Flow dialect: a status in `permanentErrors` fails the file.
    Fail,
}

/// What an upload answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadOutcome {
    /// The chunk is stored.
    Success,
    /// Transient: back off and retry (408, 429, 5xx outside `permanentErrors`, and every status
    /// on neither list).
    Retry,
    /// Permanent: the file fails at once.
    Fail,
}

/// Classifies a probe answer: `successStatuses` → present; for `protocol: 'flow'`,
/// `permanentErrors` → fail; anything else → absent.
///
/// ```
/// use resumable_wasm::engine::classify::{classify_probe, ProbeOutcome};
/// use resumable_wasm::engine::config::{Config, Protocol};
/// let r = Config::new("https://x/u");
/// assert_eq!(classify_probe(&r, 404), ProbeOutcome::Absent);
/// let f = Config::new("https://x/u").with_protocol(Protocol::Flow);
/// assert_eq!(classify_probe(&f, 404), ProbeOutcome::Fail);
/// assert_eq!(classify_probe(&f, 202), ProbeOutcome::Present);
/// ```
#[must_use]
pub fn classify_probe(config: &Config, status: u16) -> ProbeOutcome {
    if config.success_statuses.contains(&status) {
        ProbeOutcome::Present
    } else if config.protocol == Protocol::Flow && config.permanent_errors.contains(&status) {
        ProbeOutcome::Fail
    } else {
        ProbeOutcome::Absent
    }
}

/// Classifies an upload answer: `successStatuses` → success, `permanentErrors` → fail,
/// anything else → retry.
///
/// ```
/// use resumable_wasm::engine::classify::{classify_upload, UploadOutcome};
/// use resumable_wasm::engine::config::Config;
/// let c = Config::new("https://x/u");
/// assert_eq!(classify_upload(&c, 200), UploadOutcome::Success);
/// assert_eq!(classify_upload(&c, 503), UploadOutcome::Retry);
/// assert_eq!(classify_upload(&c, 415), UploadOutcome::Fail);
/// ```
#[must_use]
pub fn classify_upload(config: &Config, status: u16) -> UploadOutcome {
    if config.success_statuses.contains(&status) {
        UploadOutcome::Success
    } else if config.permanent_errors.contains(&status) {
        UploadOutcome::Fail
    } else {
        UploadOutcome::Retry
    }
}

/// The error kind of a transport failure. `timed_out` says whether the request's timeout had
/// elapsed when it ended, so an abort caused by a timeout counts as [`ErrorKind::Timeout`].
#[must_use]
pub fn failure_kind(failure: Failure, timed_out: bool) -> ErrorKind {
    match failure {
        Failure::NoResponse | Failure::Offline => ErrorKind::Network,
        Failure::Unreadable => ErrorKind::Rejected,
        Failure::Unsendable => ErrorKind::Invalid,
        Failure::Timeout => ErrorKind::Timeout,
        Failure::Aborted if timed_out => ErrorKind::Timeout,
        Failure::Aborted => ErrorKind::Aborted,
    }
}

/// What a request that got no readable response failed of, from the facts only the browser
/// has: whether the chunk's bytes could be read (`None` when the request carried none) and
/// whether the browser is online. An unreadable file wins (retrying cannot help), then offline;
/// anything else is [`Failure::NoResponse`], which the engine's CORS checks tell apart from a
/// network failure later ([`crate::engine::verdict`]).
#[must_use]
pub fn no_response_failure(file_readable: Option<bool>, online: bool) -> Failure {
    match (file_readable, online) {
        (Some(false), _) => Failure::Unreadable,
        (_, false) => Failure::Offline,
        _ => Failure::NoResponse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_without_response_is_unreadable_then_offline_then_no_response() {
        assert_eq!(no_response_failure(Some(false), true), Failure::Unreadable);
        assert_eq!(no_response_failure(Some(false), false), Failure::Unreadable);
        assert_eq!(no_response_failure(Some(true), false), Failure::Offline);
        assert_eq!(no_response_failure(None, false), Failure::Offline);
        assert_eq!(no_response_failure(Some(true), true), Failure::NoResponse);
        assert_eq!(no_response_failure(None, true), Failure::NoResponse);
    }

    #[test]
    fn protocol_tables() {
        let r = Config::new("https://x/u");
        let f = Config::new("https://x/u").with_protocol(Protocol::Flow);
        // The probe table of docs/protocol.md §6.
        for (s, res, flow) in [
            (200, ProbeOutcome::Present, ProbeOutcome::Present),
            (201, ProbeOutcome::Present, ProbeOutcome::Present),
            (202, ProbeOutcome::Absent, ProbeOutcome::Present),
            (204, ProbeOutcome::Absent, ProbeOutcome::Absent),
            (400, ProbeOutcome::Absent, ProbeOutcome::Absent),
            (404, ProbeOutcome::Absent, ProbeOutcome::Fail),
            (413, ProbeOutcome::Absent, ProbeOutcome::Fail),
            (500, ProbeOutcome::Absent, ProbeOutcome::Fail),
            (503, ProbeOutcome::Absent, ProbeOutcome::Absent),
        ] {
            assert_eq!(classify_probe(&r, s), res, "resumable {s}");
            assert_eq!(classify_probe(&f, s), flow, "flow {s}");
        }
        // The upload status table of docs/protocol.md §7 (default lists).
        use UploadOutcome::{Fail, Retry, Success};
        for (s, res, flow) in [
            (200, Success, Success),
            (202, Retry, Success),
            (204, Retry, Retry),
            (400, Fail, Retry),
            (401, Fail, Retry),
            (404, Fail, Fail),
            (408, Retry, Retry),
            (413, Retry, Fail),
            (429, Retry, Retry),
            (500, Fail, Fail),
            (503, Retry, Retry),
        ] {
            assert_eq!(classify_upload(&r, s), res, "resumable {s}");
            assert_eq!(classify_upload(&f, s), flow, "flow {s}");
        }
    }

    #[test]
    fn failures() {
        assert_eq!(failure_kind(Failure::Aborted, true), ErrorKind::Timeout);
        assert_eq!(failure_kind(Failure::Aborted, false), ErrorKind::Aborted);
        assert_eq!(failure_kind(Failure::NoResponse, false), ErrorKind::Network);
        assert_eq!(failure_kind(Failure::Offline, false), ErrorKind::Network);
    }
}
