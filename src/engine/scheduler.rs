//! The upload state machine: which request to send next, and what every answer means.
//!
//! [`Scheduler`] is sans-IO in the quinn-proto style: facts go in through
//! [`Scheduler::add_file`], [`Scheduler::handle`] and [`Scheduler::handle_timeout`]; decisions
//! come out of [`Scheduler::poll_action`] and [`Scheduler::poll_deadline`]. It reads no clock
//! and no random source (time is `now_ms`, jitter comes from the seed). It does not touch
//! bytes: the driver slices the file for `[start, end)`.
//!
//! Rules, in short:
//! - at most `simultaneousUploads` requests in flight across all files (under `'auto'`, as many
//!   as [`crate::engine::concurrency::Window`] allows, fed every answer and failure); chunks file by file
//!   (or spread across files with `parallelFiles`), each file's first and last chunk first with
//!   `prioritizeFirstAndLastChunk`;
//! - `testChunks: 'auto'` probes chunk 1 alone; if the server has it, every other chunk is
//!   probed, else the rest are uploaded without probes. A file of one chunk is sent without a
//!   probe (the probe's round trip would be paid by every fresh upload to save re-sending one
//!   chunk on a resume). A chunk whose attempt failed is probed again before it is re-sent (a
//!   failed request may still have been stored);
//! - warm-up: when a request will be preflighted, the first one of its kind (per URL for
//!   multipart uploads, whose URL is constant; per method and phase otherwise) goes alone and
//!   the rest fan out after it answered;
//! - retries back off with full jitter (see [`crate::engine::retry`]), at most
//!   `maxChunkRetries` per chunk; the counts of a file's chunks reset whenever one of its
//!   chunks is confirmed (the server is making progress). Probes that get no HTTP answer are
//!   retried the same way; probe statuses never are (they mean present, absent or, for Flow,
//!   a permanent error);
//! - `Offline` (the input, or a request that failed with [`Failure::Offline`]) pauses sending
//!   until `Online` without spending retries; after a request failed offline, sending is also
//!   tried again [`OFFLINE_RECHECK_MS`] later without `Online` (the browser's `onLine` is only
//!   a hint), at [`Scheduler::poll_deadline`]; an abort the engine did not ask for counts as
//!   a transient failure ([`ErrorKind::Timeout`] once the request's timeout had elapsed);
//! - a cross-origin request that got no readable answer ([`Failure::NoResponse`]) is checked
//!   before it is retried: the scheduler asks the driver for check pairs of its CORS shape
//!   ([`Action::Check`], answered by [`Input::Checked`]) until [`crate::engine::verdict`]
//!   decides. CORS fails the file at once with kind `cors` and a hint (a configuration error
//!   is not retried); anything else is retried as a network error. The request keeps its slot
//!   while it is checked;
//! - a failed file does not stop the others; `Complete` fires once each time the queue drains
//!   after `Start`/`Resume`, and after `Cancel`;
//! - per-file controls ([`Scheduler::control_file`]): a file paused on its own starts no
//!   request (its requests in flight finish and count, their slots go to other files) and
//!   counts as drained, so a run completes around it; `Resume` resumes every file, `Start`
//!   none of those paused on their own; resuming one file while the whole queue is paused lifts
//!   the queue's pause for that file only (the others become paused one by one); retry starts a
//!   failed or cancelled file over like a fresh one; cancel aborts only that file's requests.
//!
//! - `persist` ([`crate::engine::persist`]): each file has a record, written through
//!   [`Action::Keep`] when it is added and after each confirmed chunk, deleted through
//!   [`Action::Forget`] when it succeeds, is cancelled or removed (a failed file keeps it); a file
//!   added with its record ([`Scheduler::add_file_kept`]) probes its first kept chunk and skips
//!   every kept chunk if the server has it, or starts over probing every chunk if not. With
//!   `checksum` the record keeps each confirmed chunk's checksum and a resumed file's sums start
//!   from them; kept chunks without one are hashed locally ([`Scheduler::kept_to_hash`]) and
//!   the file's last chunk waits for them, so the whole-file digest is always sent.
//!
//! Per-request `query`/`headers` functions are applied by the driver with
//! [`RequestSpec::with_dynamic`]; the scheduler's warm-up and [`Scheduler::preflight_report`]
//! only see the static options.
//!
//! ```
//! use resumable_wasm::engine::{Action, Config, FileMeta, Input, Scheduler};
//! let mut s = Scheduler::new(Config::new("https://up.example/u"), 7);
//! let f = s.add_file(0, FileMeta { name: "a.bin".into(), size: 10, ..Default::default() }).unwrap();
//! s.handle(0, Input::Start);
//! let mut sent = None;
//! while let Some(a) = s.poll_action() {
//!     if let Action::Send(req) = a { sent = Some(req); }
//! }
//! // One chunk: `testChunks: 'auto'` sends it at once, without a probe.
//! let post = sent.unwrap();
//! assert_eq!(post.method, "POST");
//! s.handle(5, Input::Response { request: post.id, status: 200, body: "ok".into(), retry_after: None });
//! assert_eq!(s.file(f).unwrap().status.as_str(), "success");
//! assert!(s.is_drained());
//! ```

use std::collections::VecDeque;

use super::identifiers::Identifiers;
use super::vec_map::VecMap;

use crate::engine::background;
use crate::engine::classify::{
    classify_probe, classify_upload, failure_kind, Failure, ProbeOutcome, UploadOutcome,
};
use crate::engine::concurrency::{HttpProtocol, Window};
use crate::engine::config::{
    Config, IdentifierMode, ProgressMode, Protocol, TestChunks, UploadMode,
};
use crate::engine::error::{ErrorKind, Phase, UploadError};
use crate::engine::integrity::{self, FileDigest, FileSums, Reading};
use crate::engine::params::{
    default_identifier, integrity_param, protocol_params, render, unique_identifier, ChunkFacts,
    FileId, FileMeta, RequestBody, RequestId, RequestSpec,
};
use crate::engine::persist::{self, Match, Record, Resume, Runs};
use crate::engine::plan::{auto_chunk_size, ChunkPlan, MAX_SAFE_INTEGER};
use crate::engine::preflight::{cors_hint, predict, BodyKind, Prediction, RequestShape};
use crate::engine::progress::Speed;
use crate::engine::retry::{parse_retry_after, RetryPolicy, Rng};
use crate::engine::s3::{self, Answer, Reply, S3File, FILE_STEP};
use crate::engine::text;
use crate::engine::verdict::{
    is_cross_origin, verdict, Check, CorsShape, Evidence, Ledger, Observation, Verdict,
};

/// A fact for the scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Start (or restart after `Complete`) uploading every queued file, retrying failed ones;
    /// files paused on their own ([`FileControl::Pause`]) stay paused.
    Start,
    /// Send no new requests; in-flight ones may finish and their answers count.
    Pause,
    /// Continue after `Pause`, files paused on their own included (starts if not started).
    Resume,
    /// Abort every in-flight request; unfinished files become cancelled.
    Cancel,
    /// Forget a file, aborting its requests.
    RemoveFile(FileId),
    /// Cancel one file (say, one whose addition finished after `Cancel`): it becomes cancelled
    /// unless it already finished, and its requests are aborted.
    CancelFile(FileId),
    /// The browser is online again.
    Online,
    /// The browser went offline: no new requests until `Online`.
    Offline,
    /// A request got an HTTP answer.
    Response {
        /// The request.
        request: RequestId,
        /// The HTTP status (not 0: status 0 is a `Failed`).
        status: u16,
        /// The response text.
        body: String,
        /// The raw `Retry-After` header, if readable; delta-seconds are honoured.
        retry_after: Option<String>,
    },
    /// A request ended without an HTTP answer.
    Failed {
        /// The request.
        request: RequestId,
        /// What the transport observed.
        failure: Failure,
    },
    /// The outcome of an [`Action::Check`] batch, one observation per pair.
    Checked {
        /// The failed request being checked.
        request: RequestId,
        /// What each check pair showed.
        observations: Vec<Observation>,
    },
    /// The protocol the target's origin answered a chunk upload with (Resource Timing's
    /// `nextHopProtocol`), when the page could learn it.
    Protocol(HttpProtocol),
    /// `protocol: 's3'`: what an app callback answered (a part's `signPart` that failed too).
    S3Answer {
        /// The request the callback belongs to.
        request: RequestId,
        /// The answer.
        answer: Answer,
    },
    /// `protocol: 's3'`: a part's `PUT` got an HTTP answer the page could read.
    PartAnswer {
        /// The request.
        request: RequestId,
        /// The HTTP status.
        status: u16,
        /// The `ETag` response header, when the page could read it.
        etag: Option<String>,
        /// The response text (S3's XML error, if any).
        body: String,
    },
    /// `protocol: 's3'`: a part's `PUT` got no readable answer, and a `no-cors` request to its
    /// URL showed whether the store answers at all (then the bucket's CORS blocked it).
    PartUnread {
        /// The request.
        request: RequestId,
        /// The signed URL it was sent to.
        url: String,
        /// Whether the store answered the `no-cors` request.
        reachable: bool,
    },
    /// Upload progress of a request (`progress: 'bytes'`).
    BytesSent {
        /// The request.
        request: RequestId,
        /// Body bytes sent so far.
        sent: u64,
    },
}

/// Something the driver must do.
#[must_use = "actions are the scheduler's only output"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this request.
    Send(RequestSpec),
    /// Abort this in-flight request (and its checks); no `Failed` input is needed after it.
    Abort(RequestId),
    /// Send these CORS check pairs for a request that got no readable answer, and answer with
    /// [`Input::Checked`].
    Check(Check),
    /// Tell the app.
    Event(Event),
    /// `persist`: write file `file`'s record (read it with [`Scheduler::record`]); `added` on
    /// the first write, which also keeps the file's bytes or handle.
    Keep {
        /// The file.
        file: FileId,
        /// The first write, when the file was added.
        added: bool,
    },
    /// `persist`: delete the record under this storage key ([`Record::key`]): the file
    /// succeeded, was cancelled or removed.
    Forget {
        /// The record's storage key.
        key: String,
    },
}

/// Something that happened, for the app's callbacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An upload run started (`Start`, or `Resume` when idle).
    UploadStart,
    /// A file's progress changed.
    FileProgress(FileId),
    /// Overall progress changed.
    Progress,
    /// A chunk is on the server (uploaded, or found present by a probe).
    ChunkSuccess {
        /// The file.
        file: FileId,
        /// The chunk.
        chunk: u32,
        /// The response body.
        body: String,
    },
    /// A chunk will be retried after `delay_ms`.
    FileRetry {
        /// The file.
        file: FileId,
        /// The chunk.
        chunk: u32,
        /// What went wrong.
        error: UploadError,
        /// The backoff delay.
        delay_ms: u64,
    },
    /// Every chunk of a file is on the server.
    FileSuccess {
        /// The file.
        file: FileId,
        /// The body of the last answer.
        body: String,
    },
    /// A file failed; the others go on.
    FileError {
        /// The file.
        file: FileId,
        /// Why.
        error: UploadError,
    },
    /// The queue drained: every file succeeded, failed, was cancelled or is paused on its own.
    Complete,
    /// `Pause` took effect.
    Pause,
    /// `Cancel` took effect (followed by `Complete`).
    Cancel,
    /// Once per run when requests will be preflighted: the causes and cheaper alternatives.
    PreflightWarning {
        /// One line per cause.
        reasons: Vec<String>,
    },
}

/// A control of one file: the uploader's `pauseFile`, `resumeFile`, `retryFile` and
/// `cancelFile`, applied with [`Scheduler::control_file`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileControl {
    /// Start no new request for an unfinished file; its requests in flight finish and count.
    Pause,
    /// Continue a paused file (paused on its own or with the whole queue); while idle after a
    /// run, this starts a new one.
    Resume,
    /// Start a failed or cancelled file over under the `testChunks` rule, so chunks the server
    /// has are probed rather than sent again; while idle after a run, this starts a new one.
    Retry,
    /// Abort an unfinished file's requests; it becomes cancelled and the others go on.
    Cancel,
}

/// A file's state as the app sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    /// Waiting for `Start` or for a slot.
    Queued,
    /// Requests started.
    Uploading,
    /// The upload is paused.
    Paused,
    /// Every chunk is on the server.
    Success,
    /// Failed (see `error`).
    Error,
    /// Cancelled.
    Cancelled,
}

impl FileStatus {
    /// `"queued"`, `"uploading"`, `"paused"`, `"success"`, `"error"` or `"cancelled"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Queued => "queued",
            FileStatus::Uploading => "uploading",
            FileStatus::Paused => "paused",
            FileStatus::Success => "success",
            FileStatus::Error => "error",
            FileStatus::Cancelled => "cancelled",
        }
    }
}

/// A snapshot of one file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileView {
    /// The handle.
    pub id: FileId,
    /// The identifier sent to the server.
    pub identifier: String,
    /// The file name.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// The relative path (the name when none).
    pub relative_path: String,
    /// The state.
    pub status: FileStatus,
    /// Bytes in chunks the server confirmed.
    pub confirmed_bytes: u64,
    /// Bytes of in-flight chunks the transport reported sent (`progress: 'bytes'`).
    pub in_flight_bytes: u64,
    /// `(confirmed + in flight) / size`, 0..=1 (an empty file: 1 once done).
    pub progress: f64,
    /// Why the file failed.
    pub error: Option<UploadError>,
    /// Smoothed bytes per second.
    pub speed_bps: f64,
    /// Estimated ms left; `None` while unknown.
    pub eta_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    Queued,
    Started,
    Success,
    Error,
    Cancelled,
}

impl Life {
    fn terminal(self) -> bool {
        matches!(self, Life::Success | Life::Error | Life::Cancelled)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probing {
    /// `'auto'`: chunk 1's probe has not answered yet; nothing else of the file starts.
    First,
    /// Probe every chunk.
    All,
    /// Probe only chunks whose attempt failed.
    Off,
    /// Resumed from a record: only the probe of the first kept chunk runs; if the server has
    /// it, every kept chunk is done, else the file starts over probing every chunk.
    Verify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    InFlight,
    Waiting(u64),
}

#[derive(Debug, Clone)]
struct Chunk {
    state: State,
    probe: bool,
    attempts: u32,
    retries: u32,
    sent: u64,
    /// S3: this part's URL was refused once (expired) and signed again.
    resigned: bool,
}

impl Chunk {
    /// A chunk about to be sent for the first time: probed first when `probe`.
    fn pending(probe: bool) -> Chunk {
        Chunk {
            state: State::Pending,
            probe,
            attempts: 0,
            retries: 0,
            sent: 0,
            resigned: false,
        }
    }
}

#[derive(Debug)]
struct File {
    id: FileId,
    meta: FileMeta,
    identifier: String,
    plan: ChunkPlan,
    count: u32,
    life: Life,
    /// Boxed: most files never fail, and thousands of them are kept.
    error: Option<Box<UploadError>>,
    /// Order positions below `cursor` have been started.
    cursor: u32,
    /// Started chunks that are not done.
    chunks: VecMap<u32, Chunk>,
    done: u32,
    confirmed: u64,
    probing: Probing,
    speed: Speed,
    prio: bool,
    /// Paused on its own ([`FileControl::Pause`]): no request starts until it is resumed.
    paused: bool,
    /// `chunkSize: 'auto'`: the chunk size is not chosen yet; the plan is provisional (in
    /// `maxChunkSize`) until [`Scheduler::settle_size`].
    size_open: bool,
    /// `protocol: 's3'`: the multipart upload's state, which decides the file's own steps and
    /// which parts are missing ([`crate::engine::s3`]).
    s3: Option<S3File>,
    /// Chunks a record says are on the server, skipped once verified (or trusted).
    kept: Runs,
    /// The file's record: with `persist`, or once a protocol keeps state in it.
    record: Option<Box<Record>>,
    /// Every chunk checksum read so far (`checksum` on; made at the first read, or from the
    /// record a file resumed from).
    sums: Option<Box<FileSums>>,
    /// `checksum` on a resumed file: kept chunks whose checksum the record lacks (an older
    /// record, or one of another algorithm). They are read and hashed locally, never sent
    /// ([`Scheduler::kept_to_hash`]), and the file's last chunk waits for them, so that the
    /// whole-file digest goes with it.
    unhashed: Runs,
}

impl File {
    fn chunk_at(&self, pos: u32) -> u32 {
        if self.prio && self.count > 2 {
            match pos {
                0 => 1,
                1 => self.count,
                p => p,
            }
        } else {
            pos.saturating_add(1)
        }
    }

    fn pos_of(&self, chunk: u32) -> u32 {
        if self.prio && self.count > 2 {
            if chunk == 1 {
                0
            } else if chunk == self.count {
                1
            } else {
                chunk
            }
        } else {
            chunk.saturating_sub(1)
        }
    }

    /// The chunks not started yet, in the order they go, with their ranges (see
    /// [`Scheduler::read_ahead`]).
    fn unstarted(&self) -> impl Iterator<Item = (FileId, u32, u64, u64)> + '_ {
        (self.cursor..self.count)
            .map(|pos| self.chunk_at(pos))
            // Kept chunks (a resumed file) are not sent: not read either.
            .filter(|n| !self.chunks.contains_key(n) && !self.kept.contains(*n))
            .filter_map(|n| {
                let (start, end) = self.plan.range(u64::from(n))?;
                Some((self.id, n, start, end))
            })
    }

    /// The chunk this file would send next, if any.
    fn next(&self) -> Option<u32> {
        if self.life.terminal() || self.paused {
            return None;
        }
        let pending = |c: &Chunk| c.state == State::Pending;
        if let Some(s3) = &self.s3 {
            // The protocol decides; the scheduler says what it holds waiting to be retried.
            let step = self.chunks.get(&FILE_STEP).map(pending);
            let retry = self
                .chunks
                .iter()
                .filter(|(_, c)| pending(c))
                .map(|(n, _)| *n);
            return s3.next_request(step, retry.min());
        }
        if self.probing == Probing::Verify {
            return self
                .chunks
                .iter()
                .find(|(_, c)| c.state == State::Pending)
                .map(|(n, _)| *n);
        }
        if self.probing == Probing::First {
            let first = self.chunk_at(0);
            if self.cursor == 0 {
                return Some(first);
            }
            return match self.chunks.get(&first) {
                Some(c) if c.state == State::Pending => Some(first),
                _ => None,
            };
        }
        let pending = self
            .chunks
            .iter()
            .filter(|(_, c)| pending(c))
            .map(|(n, _)| *n)
            .min_by_key(|n| self.pos_of(*n));
        if pending.is_some() {
            return pending;
        }
        // The last chunk still to start carries the whole-file digest: it waits until every
        // kept chunk's checksum is known.
        let unstarted = self
            .count
            .saturating_sub(self.done)
            .saturating_sub(u32::try_from(self.chunks.len()).unwrap_or(u32::MAX));
        if unstarted <= 1 && !self.unhashed.is_empty() {
            return None;
        }
        (self.cursor < self.count).then(|| self.chunk_at(self.cursor))
    }

    fn in_flight_bytes(&self) -> u64 {
        self.chunks
            .values()
            .filter(|c| c.state == State::InFlight)
            .map(|c| c.sent)
            .sum()
    }

    /// What this file adds to the queue's running totals.
    fn tally(&self) -> Tally {
        let moved = self.confirmed + self.in_flight_bytes();
        let counted = self.life != Life::Cancelled;
        let unfinished = !self.life.terminal();
        let if_counted = |n: u64| if counted { n } else { 0 };
        Tally {
            counted: usize::from(counted),
            unfinished: usize::from(unfinished),
            unhashed: usize::from(unfinished && !self.unhashed.is_empty()),
            open: usize::from(unfinished && !self.paused),
            size: if_counted(self.meta.size),
            reached: if_counted(moved.min(self.meta.size)),
            remaining: if unfinished {
                self.meta.size.saturating_sub(moved)
            } else {
                0
            },
        }
    }

    /// Starts the file over as if it had just been added: what the server already has is
    /// found by probes under `probing`, not sent again.
    fn requeue(&mut self, probing: Probing) {
        self.kept = Runs::default();
        self.life = Life::Queued;
        self.error = None;
        self.cursor = 0;
        self.chunks.clear();
        self.done = 0;
        self.confirmed = 0;
        self.probing = probing;
        self.paused = false;
        if let Some(s3) = &mut self.s3 {
            *s3 = s3.again();
        }
        // Started over: the file is read afresh (a file replaced on disk is then no error).
        self.sums = None;
        self.unhashed = Runs::default();
    }

    /// Moves the cursor past chunks that are kept (verified or trusted): they are done.
    fn skip_kept(&mut self) {
        if self.probing == Probing::Verify {
            return;
        }
        while self.cursor < self.count && self.kept.contains(self.chunk_at(self.cursor)) {
            self.cursor += 1;
        }
    }

    /// Counts every kept chunk but `except` (confirmed by its own answer) as done.
    fn take_kept(&mut self, except: u32) {
        for n in self.kept.chunks() {
            if n != except {
                self.done += 1;
                self.confirmed = self.confirmed.saturating_add(self.plan.len(u64::from(n)));
            }
        }
        self.skip_kept();
    }

    fn key(&self) -> Option<String> {
        self.record.as_ref().map(|r| r.key())
    }

    /// `checksum` on a resumed file: the checksums its record keeps for its kept chunks join
    /// its sums; the kept chunks without one (or with one of another algorithm) are to be
    /// hashed locally.
    fn restore_sums(&mut self, algorithm: integrity::Algorithm) {
        if self.kept.is_empty() {
            return;
        }
        let mut sums = FileSums::new(algorithm, self.count);
        let mut unhashed = Runs::default();
        for n in self.kept.chunks() {
            let kept = self.record.as_deref().and_then(|r| r.checksum(n));
            match kept.and_then(|t| integrity::from_kept_text(algorithm, t)) {
                Some(sum) => {
                    sums.record(n, &sum);
                }
                None => unhashed.insert(n),
            }
        }
        self.sums = Some(Box::new(sums));
        self.unhashed = unhashed;
    }
}

/// Running totals over every file, kept as files change (see [`Scheduler::change_file`]), so
/// that overall progress, speed, ETA, `maxFiles` and "drained" cost the same however many
/// files are queued.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    /// Files not cancelled.
    counted: usize,
    /// Files not finished.
    unfinished: usize,
    /// Files not finished with kept chunks to hash locally.
    unhashed: usize,
    /// Files not finished and not paused on their own.
    open: usize,
    /// Bytes of the files not cancelled.
    size: u64,
    /// Bytes confirmed or in flight (at most each file's size) of the files not cancelled: also
    /// the speed's running total (a cancelled file's bytes leave it, which restarts the sampling).
    reached: u64,
    /// Bytes left of the unfinished files.
    remaining: u64,
}

impl Tally {
    /// Replaces a file's share `old` by `new`. Wrapping: a subtraction undoes its addition
    /// exactly, whatever the order.
    fn swap(&mut self, old: &Tally, new: &Tally) {
        let count = |t: usize, o: usize, n: usize| t.wrapping_sub(o).wrapping_add(n);
        let bytes = |t: u64, o: u64, n: u64| t.wrapping_sub(o).wrapping_add(n);
        self.counted = count(self.counted, old.counted, new.counted);
        self.unfinished = count(self.unfinished, old.unfinished, new.unfinished);
        self.unhashed = count(self.unhashed, old.unhashed, new.unhashed);
        self.open = count(self.open, old.open, new.open);
        self.size = bytes(self.size, old.size, new.size);
        self.reached = bytes(self.reached, old.reached, new.reached);
        self.remaining = bytes(self.remaining, old.remaining, new.remaining);
    }
}

/// A file whose chunk `chunk` read again hashes differently than before (`rejected`, rule
/// `changed`).
fn changed(chunk: u32, algorithm: integrity::Algorithm) -> UploadError {
    let mut e = UploadError::rejected(
        "changed",
        format!(
            "the file changed while it was uploaded: chunk {chunk} read again has a different {} than before (select the file again)",
            algorithm.as_str()
        ),
    );
    e.chunk = Some(chunk);
    e.algorithm = Some(algorithm.as_str());
    e
}

/// How a fresh (or freshly re-queued) file of `count` chunks probes under `testChunks`.
/// `'auto'` sends a one-chunk file without a probe: the probe would cost a round trip in
/// every fresh upload to save re-sending at most one chunk when resuming.
/// The record state of an S3 file's upload ([`Scheduler::keep_s3_upload`]): its part size,
/// upload id and key, one a line; under `'s3-post'` the chunk size, an empty line and the
/// `keyPrefix` (the policy is not kept: a resumed file has it signed again).
const S3_STATE: &str = "s3";

/// The record state of a file's chunk size under `chunkSize: 'auto'`, in bytes: chosen once,
/// it is the file's for life (the server holds its chunks in it).
const CHUNK_STATE: &str = "chunk";

/// The chunk size a record of a `chunkSize: 'auto'` file kept, if one was chosen.
fn kept_chunk_size(r: &Record) -> Option<u64> {
    let (_, v) = r.state.iter().find(|(n, _)| n == CHUNK_STATE)?;
    v.parse().ok().filter(|n| *n > 0)
}

/// The upload a record kept, if it has one (what the store has comes from `listParts` /
/// `listChunks`).
fn kept_s3_upload(r: &Record) -> Option<s3::S3Upload> {
    let (_, v) = r.state.iter().find(|(n, _)| n == S3_STATE)?;
    let mut lines = v.splitn(3, '\n');
    Some(s3::S3Upload {
        part_size: lines.next()?.parse().ok()?,
        upload_id: lines.next()?.to_owned(),
        key: lines.next()?.to_owned(),
        parts: Vec::new(),
    })
}

/// The chunks of a kept record's file under `config`: an object-storage upload's parts, in
/// the part size its record keeps (else the one `config` would choose), cut as the store wants
/// (forced, a shorter last one); otherwise the page's own chunk plan.
#[must_use]
pub fn kept_plan(config: &Config, r: &Record) -> ChunkPlan {
    let part_size = kept_s3_upload(r).map(|u| u.part_size).or_else(|| {
        config
            .s3
            .and_then(|_| s3::part_size(r.size, config.chunk_size).ok())
    });
    match part_size {
        Some(part) => ChunkPlan::new(r.size, part, true),
        None => ChunkPlan::new(
            r.size,
            kept_chunk_size(r).unwrap_or(config.chunk_size),
            config.force_chunk_size,
        ),
    }
}

/// What `pending()` shows of a kept record under `config`: the bytes its confirmed chunks hold
/// ([`kept_plan`]), and whether the upload is over. An object-storage upload is over only once
/// `complete` answered, and its record is deleted then, so a kept one never is, even with every
/// part stored. Otherwise a file whose every chunk is confirmed is over: the server assembles
/// it on the last chunk (a Background Fetch job's answers, read from the record).
#[must_use]
pub fn pending_progress(config: &Config, r: &Record) -> (u64, bool) {
    let plan = kept_plan(config, r);
    let confirmed = r.confirmed.chunks().map(|n| plan.len(u64::from(n))).sum();
    let object_storage = config.s3.is_some() || r.state.iter().any(|(n, _)| n == S3_STATE);
    (
        confirmed,
        !object_storage && r.size > 0 && confirmed == r.size,
    )
}

fn fresh_probing(test_chunks: TestChunks, count: u32) -> Probing {
    match test_chunks {
        TestChunks::Auto if count <= 1 => Probing::Off,
        TestChunks::Auto => Probing::First,
        TestChunks::Always => Probing::All,
        TestChunks::Never => Probing::Off,
    }
}

#[derive(Debug)]
struct Flight {
    file: FileId,
    chunk: u32,
    phase: Phase,
    sent_at: u64,
    spec: RequestSpec,
    /// Blocked check pairs of this request's own CORS checks (see [`crate::engine::verdict`]).
    checked: u32,
    /// Pairs of its check batch under way (0 when none).
    checking: u32,
}

#[derive(Debug, PartialEq, Eq)]
enum Warm {
    Warming(RequestId),
    Done,
}

/// The upload state machine. See the module docs.
#[derive(Debug)]
pub struct Scheduler {
    config: Config,
    policy: RetryPolicy,
    /// In order of addition, which is the order of their ids: found by binary search.
    files: Vec<File>,
    /// The files by identifier.
    identifiers: Identifiers,
    tally: Tally,
    /// The files before this index are finished: the search for work starts here.
    settled: usize,
    /// No file from this index on was ever started: none has chunks started or waiting.
    started_end: usize,
    next_file: u32,
    next_request: u64,
    flights: VecMap<RequestId, Flight>,
    actions: VecDeque<Action>,
    warm: Vec<(String, Warm)>,
    rng: Rng,
    now: u64,
    running: bool,
    paused: bool,
    offline: bool,
    /// When sending is tried again without `Online` (a request failed offline).
    offline_recheck_at: Option<u64>,
    speed: Speed,
    /// A run was started at least once: resuming or retrying a file while idle starts another.
    ran: bool,
    /// Blocked CORS checks in a row, per request shape.
    ledger: Ledger,
    /// Requests in flight under `simultaneousUploads: 'auto'`.
    window: Window,
    /// Files looked at by the searches over files (the work the scale test counts).
    #[cfg(test)]
    visited: core::cell::Cell<usize>,
}

/// After a request failed because the browser was offline, how long the queue waits for the
/// `online` input before it tries again anyway (`navigator.onLine` is only a hint).
pub const OFFLINE_RECHECK_MS: u64 = 30_000;

impl Scheduler {
    /// A scheduler for `config`; `seed` drives the retry jitter.
    #[must_use]
    pub fn new(config: Config, seed: u64) -> Scheduler {
        let policy = RetryPolicy {
            max_retries: config.max_chunk_retries,
            base_interval_ms: config.chunk_retry_interval_ms,
            max_interval_ms: config.max_retry_interval_ms,
        };
        let window = Window::new(config.max_simultaneous_uploads, 0);
        Scheduler {
            config,
            policy,
            files: Vec::new(),
            identifiers: Identifiers::default(),
            tally: Tally::default(),
            settled: 0,
            started_end: 0,
            next_file: 1,
            next_request: 1,
            flights: VecMap::default(),
            actions: VecDeque::new(),
            warm: Vec::new(),
            rng: Rng::new(seed),
            now: 0,
            running: false,
            paused: false,
            offline: false,
            offline_recheck_at: None,
            speed: Speed::default(),
            ran: false,
            ledger: Ledger::default(),
            window,
            #[cfg(test)]
            visited: core::cell::Cell::new(0),
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The identifier a file `meta` describes is sent under: the app's, else the `identifier` rule's.
    #[must_use]
    pub fn identifier_for(&self, meta: &FileMeta) -> String {
        match &meta.identifier {
            Some(i) if !i.is_empty() => i.clone(),
            _ => match self.config.identifier {
                IdentifierMode::Compatible => default_identifier(meta),
                IdentifierMode::Unique => unique_identifier(meta),
            },
        }
    }

    /// The record of file `id` as it is now (`persist`, or once a protocol kept state).
    #[must_use]
    pub fn record(&self, id: FileId) -> Option<Record> {
        let f = self.files.get(self.index(id)?)?;
        f.record.as_deref().cloned()
    }

    /// The storage keys of every queued file's record.
    #[must_use]
    pub fn record_keys(&self) -> Vec<String> {
        self.files.iter().filter_map(File::key).collect()
    }

    /// Keeps protocol state `name` = `value` in file `id`'s record (e.g. an object store's
    /// upload id), written with it under `persist` and given back when the file resumes
    /// ([`Scheduler::file_state`]). `false` for an unknown file.
    pub fn set_file_state(&mut self, id: FileId, name: &str, value: &str) -> bool {
        self.change_record(id, |r| r.set_state(name, value))
    }

    /// Keeps the checksum of chunk `chunk` of file `id` in its record. `false` for an unknown file.
    pub fn set_chunk_checksum(&mut self, id: FileId, chunk: u32, sum: &str) -> bool {
        self.change_record(id, |r| r.set_checksum(chunk, sum))
    }

    /// Protocol state `name` of file `id` (kept with [`Scheduler::set_file_state`], or from
    /// the record it resumed from).
    #[must_use]
    pub fn file_state(&self, id: FileId, name: &str) -> Option<String> {
        let f = self.files.get(self.index(id)?)?;
        let r = f.record.as_deref()?;
        r.state
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    fn change_record(&mut self, id: FileId, change: impl FnOnce(&mut Record)) -> bool {
        let Some(i) = self.index(id) else {
            return false;
        };
        let config = &self.config;
        let Some(f) = self.files.get_mut(i) else {
            return false;
        };
        let r = f
            .record
            .get_or_insert_with(|| Box::new(Record::new(config, &f.identifier, &f.meta)));
        change(r);
        self.keep(i);
        true
    }

    /// Queues a file at time `now_ms`. If an upload is running, the file joins it. Files are
    /// numbered 1, 2, 3, … in the order they are added.
    ///
    /// # Errors
    /// [`ErrorKind::Rejected`] with `rule` `minFileSize`, `maxFileSize`, `fileType`, `maxFiles`,
    /// `duplicate` (an unfinished or successful file has the same identifier) or `chunkCount`
    /// (more than 2^32−1 chunks: raise `chunkSize`).
    pub fn add_file(&mut self, now_ms: u64, meta: FileMeta) -> Result<FileId, UploadError> {
        self.add_file_kept(now_ms, meta, None)
    }

    /// [`Scheduler::add_file`] for a file that may have a kept record (`persist`: the driver
    /// looked it up by identifier). A record of the same file ([`Match::Same`]) resumes it
    /// under [`persist::resume_probing`]; one of another file of that identifier is replaced.
    ///
    /// # Errors
    /// As [`Scheduler::add_file`], and [`ErrorKind::Rejected`] with rule `changed` when the
    /// file has the record's name but another size or `lastModified`.
    pub fn add_file_kept(
        &mut self,
        now_ms: u64,
        meta: FileMeta,
        kept: Option<Record>,
    ) -> Result<FileId, UploadError> {
        // Engine time never goes back (the other inputs may have come later in a test).
        self.now = self.now.max(now_ms);
        let c = &self.config;
        let quoted = |m: &str| {
            let mut s = String::from("`");
            s.push_str(&meta.name);
            s.push_str("` ");
            s.push_str(m);
            s
        };
        if meta.size > MAX_SAFE_INTEGER {
            return Err(UploadError::rejected(
                "maxFileSize",
                quoted("is larger than 2^53-1 bytes"),
            ));
        }
        if meta.size < c.min_file_size {
            let mut m = String::from("is ");
            m.push_str(&meta.size.to_string());
            m.push_str(" bytes, below minFileSize ");
            m.push_str(&c.min_file_size.to_string());
            return Err(UploadError::rejected("minFileSize", quoted(&m)));
        }
        if let Some(max) = c.max_file_size {
            if meta.size > max {
                let mut m = String::from("is ");
                m.push_str(&meta.size.to_string());
                m.push_str(" bytes, above maxFileSize ");
                m.push_str(&max.to_string());
                return Err(UploadError::rejected("maxFileSize", quoted(&m)));
            }
        }
        if !c.file_type.is_empty() && !type_matches(&c.file_type, &meta) {
            let m = format!("is not an accepted file type ({})", c.file_type.join(", "));
            return Err(UploadError::rejected("fileType", quoted(&m)));
        }
        if let Some(max) = c.max_files.filter(|_| self.max_files_reached()) {
            let m = format!("was refused: maxFiles is {max}");
            return Err(UploadError::rejected("maxFiles", quoted(&m)));
        }
        let identifier = self.identifier_for(&meta);
        if self.identifier_taken(&identifier, None) {
            let mut m = String::from("is already queued (identifier ");
            m.push_str(&identifier);
            m.push(')');
            return Err(UploadError::rejected("duplicate", quoted(&m)));
        }
        let mut s3 = match c.s3 {
            Some(o) => match S3File::for_file(meta.size, c.chunk_size, o) {
                Ok(s3) => Some(s3),
                Err(e) => return Err(UploadError::rejected("chunkSize", quoted(&e.message))),
            },
            None => None,
        };
        // `chunkSize: 'auto'`: the size a record of this file kept, else one from the round trip
        // measured so far; with none yet, `maxChunkSize` until the file's first probe answers.
        let kept = kept.filter(|r| r.identifier == identifier);
        let same = kept.as_ref().map(|r| r.matches(&meta)) == Some(Match::Same);
        let kept_size = kept.as_ref().filter(|_| same).and_then(kept_chunk_size);
        let rtt = self.window.round_trip_ms();
        let size_open = c.chunk_auto && kept_size.is_none() && rtt.is_none();
        let chunk_size = match kept_size {
            Some(n) if c.chunk_auto => n,
            _ if c.chunk_auto => auto_chunk_size(rtt, c.chunk_size, c.max_chunk_size),
            _ => c.chunk_size,
        };
        // S3 cuts parts of its part size with a shorter last one (forced), as the store requires.
        let plan = match &s3 {
            Some(s3) => ChunkPlan::new(meta.size, s3.part_size(), true),
            None => ChunkPlan::new(meta.size, chunk_size, c.force_chunk_size),
        };
        let Ok(count) = u32::try_from(plan.count()) else {
            return Err(UploadError::rejected(
                "chunkCount",
                quoted("needs more than 2^32-1 chunks; raise chunkSize"),
            ));
        };
        let mut probing = if s3.is_some() {
            Probing::Off
        } else {
            fresh_probing(c.test_chunks, count)
        };
        let resume = match kept.as_ref().map(|r| (r, r.matches(&meta))) {
            Some((_, Match::Changed)) => {
                return Err(UploadError::rejected(
                    "changed",
                    quoted("changed since its upload began (another size or lastModified than the kept record): the server holds chunks of the old version under this identifier"),
                ));
            }
            // Chunk numbers past the plan: not a record of this file's chunks.
            Some((r, _)) if r.confirmed.runs().last().is_some_and(|run| run.1 > count) => {
                Resume::Fresh
            }
            // S3 learns the stored parts from `listParts`, not from kept chunk numbers.
            Some((r, Match::Same)) if s3.is_none() => {
                persist::resume_probing(c.test_chunks, &r.confirmed, count)
            }
            _ => Resume::Fresh,
        };
        // The same file's record goes on (its protocol state too); another file's is replaced.
        let mut record = kept.filter(|_| same).map(Box::new);
        if let Some(r) = record.as_deref_mut().filter(|_| resume == Resume::Fresh) {
            // Nothing of it is trusted: `'auto'` probes as for a fresh file, `true` every chunk.
            // Its checksums stay: one is only ever used for a chunk listed as confirmed.
            r.confirmed = Runs::default();
        }
        if record.is_none() && c.persist {
            record = Some(Box::new(Record::new(c, &identifier, &meta)));
        }
        if let Some(r) = record.as_deref_mut().filter(|_| c.chunk_auto && !size_open) {
            r.set_state(CHUNK_STATE, &chunk_size.to_string());
        }
        // An upload the record kept goes on (`listParts` / `listChunks` first) when its parts
        // are cut the same.
        let upload = record.as_deref().and_then(kept_s3_upload);
        if let (Some(f3), Some(u)) = (s3.as_mut(), upload) {
            f3.resume(u);
        }
        let kept_runs = match resume {
            Resume::Fresh => Runs::default(),
            _ => record
                .as_ref()
                .map(|r| r.confirmed.clone())
                .unwrap_or_default(),
        };
        let mut chunks = VecMap::default();
        if let Resume::Verify(n) = resume {
            probing = Probing::Verify;
            chunks.insert(n, Chunk::pending(true));
        } else if resume == Resume::Trust {
            probing = Probing::Off;
        }
        // Ids only grow (2^32 additions per uploader), so `files` stays sorted by id.
        let id = FileId(self.next_file);
        self.next_file = self.next_file.wrapping_add(1);
        self.identifiers.insert(&identifier, id);
        let file = File {
            id,
            meta,
            identifier,
            plan,
            count,
            life: Life::Queued,
            error: None,
            cursor: 0,
            chunks,
            done: 0,
            confirmed: 0,
            probing,
            speed: Speed::default(),
            prio: c.prioritize_first_and_last_chunk && s3.is_none(),
            paused: false,
            size_open,
            s3,
            kept: kept_runs,
            record,
            sums: None,
            unhashed: Runs::default(),
        };
        let mut file = file;
        if let Some(algorithm) = c.checksum.filter(|_| file.s3.is_none()) {
            file.restore_sums(algorithm);
        }
        if resume == Resume::Trust {
            file.take_kept(0);
            if file.done >= file.count {
                file.life = Life::Success;
            }
        }
        let persist = c.persist;
        let finished = file.life == Life::Success;
        self.tally.swap(&Tally::default(), &file.tally());
        self.files.push(file);
        if finished {
            self.forget(self.files.len() - 1);
        } else if persist {
            self.actions.push_back(Action::Keep {
                file: id,
                added: true,
            });
        }
        self.pump();
        Ok(id)
    }

    /// Feeds a fact at time `now_ms`. Call [`Scheduler::poll_action`] until `None` afterwards.
    pub fn handle(&mut self, now_ms: u64, input: Input) {
        self.now = now_ms;
        match input {
            Input::Start => self.start(),
            Input::Pause => {
                if !self.paused {
                    self.paused = true;
                    self.emit(Event::Pause);
                }
            }
            Input::Resume => {
                self.paused = false;
                for i in 0..self.files.len() {
                    self.change_file(i, |f| f.paused = false);
                }
                self.start();
            }
            Input::Cancel => self.cancel(),
            Input::RemoveFile(id) => self.remove(id, true),
            Input::CancelFile(id) => {
                if let Some(i) = self.index(id) {
                    self.cancel_file(i);
                }
            }
            Input::Online => {
                self.offline = false;
                self.offline_recheck_at = None;
            }
            Input::Offline => self.offline = true,
            Input::Response {
                request,
                status,
                body,
                retry_after,
            } => self.on_response(request, status, body, retry_after.as_deref()),
            Input::Failed { request, failure } => self.on_failed(request, failure),
            Input::Checked {
                request,
                observations,
            } => self.on_checked(request, &observations),
            Input::Protocol(protocol) => self.window.set_protocol(protocol),
            Input::BytesSent { request, sent } => self.on_bytes(request, sent),
            Input::S3Answer { request, answer } => self.on_s3(request, Reply::Callback(answer)),
            Input::PartAnswer {
                request,
                status,
                etag,
                body,
            } => self.on_s3(request, Reply::Part { status, etag, body }),
            Input::PartUnread {
                request,
                url,
                reachable,
            } => self.on_s3(request, Reply::Unread { url, reachable }),
        }
        self.promote(now_ms);
        self.pump();
        self.check_complete();
    }

    /// Fires due retry timers and the offline re-check at `now_ms`. Call it at
    /// [`Scheduler::poll_deadline`].
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.now = now_ms;
        if self.offline_recheck_at.is_some_and(|at| at <= now_ms) {
            self.offline_recheck_at = None;
            self.offline = false;
        }
        self.promote(now_ms);
        self.pump();
        self.check_complete();
    }

    /// The next action, or `None` when there is nothing to do until the next input or deadline.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Scheduler::handle_timeout`] should next be called, if a retry is waiting or, in
    /// a run, the offline re-check.
    #[must_use]
    pub fn poll_deadline(&self) -> Option<u64> {
        let retry = self
            .started_files()
            .iter()
            .filter(|f| !f.life.terminal() && !f.paused)
            .flat_map(|f| f.chunks.values())
            .filter_map(|c| match c.state {
                State::Waiting(t) => Some(t),
                _ => None,
            })
            .min();
        let recheck = self.offline_recheck_at.filter(|_| self.running);
        retry.into_iter().chain(recheck).min()
    }

    /// Snapshots of every file, in the order they were added.
    #[must_use]
    pub fn files(&self) -> Vec<FileView> {
        self.files.iter().map(|f| self.view(f)).collect()
    }

    /// A snapshot of one file.
    #[must_use]
    pub fn file(&self, id: FileId) -> Option<FileView> {
        let f = self.files.get(self.index(id)?)?;
        Some(self.view(f))
    }

    /// `protocol: 's3'`: what is known of file `id`'s multipart upload (upload id, key, part
    /// size, confirmed parts) — the one value a durable resume record keeps for it.
    #[must_use]
    pub fn s3_upload(&self, id: FileId) -> Option<&s3::S3Upload> {
        let f = self.files.get(self.index(id)?)?;
        f.s3.as_ref().map(S3File::upload)
    }

    /// `protocol: 's3'`: continues file `id` (just added, not started) in the multipart upload
    /// `upload` kept from before (a re-added file, a durable resume): its first request is then
    /// `listParts` (under `'s3-post'`, `createUpload` for the kept prefix then `listChunks`),
    /// and only the parts the store lacks are sent. `false` (nothing changes) when the file is
    /// unknown, started, not under S3, sent as one PUT, or when `upload` has no id (no prefix)
    /// or was cut into parts of another size than this file now is.
    pub fn resume_s3(&mut self, id: FileId, upload: s3::S3Upload) -> bool {
        let Some(i) = self.index(id) else {
            return false;
        };
        self.change_file(i, |f| {
            f.life == Life::Queued
                && f.chunks.is_empty()
                && f.s3.as_mut().is_some_and(|s3| s3.resume(upload))
        })
        .unwrap_or(false)
    }

    /// The chunks the next requests will send, as far as the engine can tell now, with their
    /// byte ranges `[start, end)`: ones not started yet, as many as may be in flight at once
    /// ([`Scheduler::slots`]), in the order files and chunks go (with `parallelFiles`, one
    /// chunk of each file in turn). With `checksum` the driver reads and hashes them ahead, so
    /// that each freed slot sends at once even when several free together: reading ahead fewer
    /// leaves slots idle while a chunk is read. Only chunks never read before are listed: a
    /// chunk sent again (after a mismatch, or its upload after its probe) is always read anew.
    /// Empty while nothing is being uploaded (paused, offline, not started).
    #[must_use]
    pub fn read_ahead(&self) -> Vec<(FileId, u32, u64, u64)> {
        if !self.running || self.paused || self.offline {
            return Vec::new();
        }
        let slots = usize::try_from(self.slots()).unwrap_or(1);
        let mut files = self
            .files
            .iter()
            .skip(self.settled)
            .filter(|f| !f.life.terminal() && !f.paused);
        if !self.config.parallel_files {
            return files.flat_map(File::unstarted).take(slots).collect();
        }
        // One chunk of each file in turn, over the first files with chunks left.
        let mut each: Vec<_> = files
            .by_ref()
            .filter(|f| f.cursor < f.count)
            .take(slots)
            .map(File::unstarted)
            .collect();
        let mut ahead = Vec::new();
        while ahead.len() < slots {
            let before = ahead.len();
            ahead.extend(each.iter_mut().filter_map(Iterator::next));
            if ahead.len() == before {
                break;
            }
        }
        ahead.truncate(slots);
        ahead
    }

    /// Whether the engine knows file `id` (it was added and not removed).
    #[must_use]
    pub fn has_file(&self, id: FileId) -> bool {
        self.index(id).is_some()
    }

    /// The file with this identifier (the newest, when a failed or cancelled one has it too).
    #[must_use]
    pub fn find_by_identifier(&self, ident: &str) -> Option<FileId> {
        let mut newest = None;
        self.for_identifier(ident, |f| newest = newest.max(Some(f.id)));
        newest
    }

    /// Calls `each` with every file whose identifier is `ident`.
    fn for_identifier(&self, ident: &str, mut each: impl FnMut(&File)) {
        for id in self.identifiers.candidates(ident) {
            match self.index(id).and_then(|i| self.files.get(i)) {
                Some(f) if f.identifier == ident => each(f),
                _ => {}
            }
        }
    }

    /// Smoothed overall speed in bytes per second.
    #[must_use]
    pub fn speed_bps(&self) -> f64 {
        self.speed.bytes_per_second()
    }

    /// Estimated ms until every unfinished file is done; `None` while unknown.
    #[must_use]
    pub fn eta_ms(&self) -> Option<u64> {
        self.speed.eta_ms(self.tally.remaining)
    }

    fn sample_speed(&mut self) {
        self.speed.sample(self.now, self.tally.reached);
    }

    /// Overall progress, 0..=1, over files that are not cancelled.
    #[must_use]
    pub fn progress(&self) -> f64 {
        let t = &self.tally;
        ratio(t.reached, t.size, t.counted > 0 && t.unfinished == 0)
    }

    /// Whether the running totals behind [`Scheduler::progress`], [`Scheduler::eta_ms`],
    /// [`Scheduler::is_drained`] and `maxFiles` equal a count over every file (for tests).
    #[doc(hidden)]
    #[must_use]
    pub fn totals_are_true(&self) -> bool {
        let mut t = Tally::default();
        for f in &self.files {
            t.swap(&Tally::default(), &f.tally());
        }
        let settled = self
            .files
            .iter()
            .take(self.settled)
            .all(|f| f.life.terminal());
        let unstarted = self
            .files
            .get(self.started_end..)
            .is_some_and(|rest| rest.iter().all(|f| f.chunks.is_empty()));
        t == self.tally && settled && unstarted
    }

    /// How many requests may be in flight now: the fixed `simultaneousUploads`, or the
    /// adaptive window under `'auto'`.
    #[must_use]
    pub fn slots(&self) -> u32 {
        self.config
            .simultaneous_uploads
            .unwrap_or_else(|| self.window.get())
            .max(1)
    }

    /// Whether the window would use the target's protocol ([`Input::Protocol`]): `'auto'`, and
    /// not learned yet.
    #[must_use]
    pub fn wants_protocol(&self) -> bool {
        self.config.simultaneous_uploads.is_none() && self.window.protocol().is_none()
    }

    /// Whether an upload run is active and not paused.
    #[must_use]
    pub fn is_uploading(&self) -> bool {
        self.running && !self.paused && !self.is_drained()
    }

    /// Whether there is work the driver must keep going for: an upload run (paused or not,
    /// until `Complete`) or a request in flight. A file paused on its own after its run ended
    /// is not work: only a call to `resumeFile` (which needs a reference) continues it.
    #[must_use]
    pub fn has_work(&self) -> bool {
        self.running || !self.flights.is_empty()
    }

    /// Whether nothing is left to do: no request in flight and every file finished or paused
    /// on its own.
    #[must_use]
    pub fn is_drained(&self) -> bool {
        self.flights.is_empty() && self.tally.open == 0
    }

    /// Applies a per-file control at `now_ms`. `false` (and nothing changes) when the file is
    /// unknown or the control does not apply: pause and cancel take unfinished files (pause
    /// one not already paused on its own), resume a paused one, retry a failed or cancelled one
    /// whose identifier no other queued file has (and within `maxFiles`). Call
    /// [`Scheduler::poll_action`] until `None` afterwards.
    pub fn control_file(&mut self, now_ms: u64, id: FileId, control: FileControl) -> bool {
        self.now = now_ms;
        let Some(i) = self.index(id) else {
            return false;
        };
        let applied = match control {
            FileControl::Pause => self.pause_file(i),
            FileControl::Resume => self.resume_file(i),
            FileControl::Retry => self.retry_file(i),
            FileControl::Cancel => self.cancel_file(i),
        };
        if applied {
            self.promote(now_ms);
            self.pump();
            self.check_complete();
        }
        applied
    }

    /// The predicted preflight of a probe and of a chunk upload under this configuration, for
    /// a page at `page_origin`.
    #[must_use]
    pub fn preflight_report(&self, page_origin: Option<&str>) -> (Prediction, Prediction) {
        let c = &self.config;
        if !c.cors_enforced {
            return (Prediction::default(), Prediction::default());
        }
        if c.s3.is_some_and(|o| o.post) {
            // No probes; every chunk is a browser-form POST with no header of ours: simple.
            return (Prediction::default(), Prediction::default());
        }
        if c.s3.is_some() {
            // No probes; every part is a PUT to a URL of its own (its signature), and the
            // preflight cache is keyed by URL: one OPTIONS per part, whatever the bucket's
            // MaxAgeSeconds.
            let parts = Prediction {
                preflight: true,
                reasons: vec![
                    "each S3 part is a PUT to its own signed URL: one preflight per part (the browser caches preflights per URL)".to_owned(),
                ],
            };
            return (Prediction::default(), parts);
        }
        let flow_form =
            c.protocol == Protocol::Flow && !matches!(c.test_method.as_str(), "GET" | "HEAD");
        let test = predict(&RequestShape {
            page_origin,
            url: c.probe_target(),
            method: &c.test_method,
            headers: &c.headers,
            body: if flow_form {
                BodyKind::FormData
            } else {
                BodyKind::None
            },
            upload_listener: false,
        });
        let upload = predict(&RequestShape {
            page_origin,
            url: &c.target,
            method: &c.upload_method,
            headers: &c.headers,
            body: match c.upload_mode {
                UploadMode::Multipart => BodyKind::FormData,
                UploadMode::Octet => BodyKind::UntypedBlob,
            },
            upload_listener: c.progress == ProgressMode::Bytes,
        });
        (test, upload)
    }

    // ---- internals ----

    fn emit(&mut self, e: Event) {
        self.actions.push_back(Action::Event(e));
    }

    fn index(&self, id: FileId) -> Option<usize> {
        self.files.binary_search_by_key(&id, |f| f.id).ok()
    }

    /// Changes file `i` through `change`, keeping the running totals and the search bounds true.
    /// Every change to a file's state, bytes or pause goes through here.
    fn change_file<R>(&mut self, i: usize, change: impl FnOnce(&mut File) -> R) -> Option<R> {
        let before = self.files.get(i)?.tally();
        let out = self.files.get_mut(i).map(change);
        self.changed_file(i, &before);
        out
    }

    /// Brings the totals and the search bounds up to date after file `i`, whose share was
    /// `before`, changed.
    fn changed_file(&mut self, i: usize, before: &Tally) {
        let Some(f) = self.files.get(i) else {
            return;
        };
        self.tally.swap(before, &f.tally());
        if !f.life.terminal() {
            self.settled = self.settled.min(i);
        }
    }

    /// The files that may have chunks started or waiting: after the finished ones, before
    /// those never started.
    fn started_files(&self) -> &[File] {
        let files = self
            .files
            .get(self.settled..self.started_end)
            .unwrap_or_default();
        #[cfg(test)]
        self.visited.set(self.visited.get() + files.len());
        files
    }

    fn start(&mut self) {
        self.paused = false;
        self.requeue_failed();
        self.begin_run();
    }

    /// Starts an upload run unless one is active.
    fn begin_run(&mut self) {
        self.ran = true;
        if self.running {
            return;
        }
        self.running = true;
        // The time since the last run says nothing about the link.
        self.window.new_round(self.now);
        // Browsers keep preflights for seconds to hours (Access-Control-Max-Age): warm up again
        // in each run. A server's CORS may have been fixed since the last run: check afresh.
        self.warm.clear();
        self.ledger.clear();
        self.emit(Event::UploadStart);
        let (test, upload) = self.preflight_report(self.config.page_origin.as_deref());
        let mut reasons: Vec<String> = Vec::new();
        let probes = if self.config.test_chunks == TestChunks::Never {
            Vec::new()
        } else {
            test.reasons
        };
        for r in probes.into_iter().chain(upload.reasons) {
            let r = with_alternative(r);
            if !reasons.contains(&r) {
                reasons.push(r);
            }
        }
        if !reasons.is_empty() {
            self.emit(Event::PreflightWarning { reasons });
        }
    }

    /// A new `upload()` retries the files that failed (e.g. once a CORS mistake is fixed): they
    /// start over under the `testChunks` rule of a fresh file, so what the server already
    /// stored is probed rather than sent again.
    fn requeue_failed(&mut self) {
        let test_chunks = self.config.test_chunks;
        for i in 0..self.files.len() {
            self.change_file(i, |f| {
                if f.life == Life::Error {
                    f.requeue(fresh_probing(test_chunks, f.count));
                }
            });
        }
    }

    fn pause_file(&mut self, i: usize) -> bool {
        self.change_file(i, |f| {
            let applies = !f.life.terminal() && !f.paused;
            f.paused |= applies;
            applies
        })
        .unwrap_or(false)
    }

    fn resume_file(&mut self, i: usize) -> bool {
        let queue_paused = self.paused;
        let applies = self.change_file(i, |f| {
            let applies = !f.life.terminal() && (f.paused || queue_paused);
            f.paused &= !applies;
            applies
        });
        if applies != Some(true) {
            return false;
        }
        if queue_paused {
            // The whole queue is paused: lift that for this file alone, so the others stay
            // paused, now one by one (as Flow.js's and Uppy's pause-all then resume-one).
            self.paused = false;
            for j in (0..self.files.len()).filter(|j| *j != i) {
                self.change_file(j, |g| g.paused |= !g.life.terminal());
            }
        }
        self.continue_after_run();
        true
    }

    /// Whether another file (not `except`) with `identifier` is unfinished or succeeded: a
    /// failed or cancelled one may be queued again beside it.
    fn identifier_taken(&self, identifier: &str, except: Option<FileId>) -> bool {
        let mut taken = false;
        self.for_identifier(identifier, |f| {
            taken |= Some(f.id) != except && !matches!(f.life, Life::Error | Life::Cancelled);
        });
        taken
    }

    /// Whether `maxFiles` files that are not cancelled are in the queue.
    fn max_files_reached(&self) -> bool {
        self.config
            .max_files
            .is_some_and(|max| self.tally.counted >= usize::try_from(max).unwrap_or(usize::MAX))
    }

    fn retry_file(&mut self, i: usize) -> bool {
        let Some(f) = self.files.get(i) else {
            return false;
        };
        if !matches!(f.life, Life::Error | Life::Cancelled) {
            return false;
        }
        // The rules `add_file` applies to a file joining the queue: no second unfinished or
        // successful file with the identifier, and a cancelled file counts against maxFiles again.
        let taken = self.identifier_taken(&f.identifier, Some(f.id));
        let full = f.life == Life::Cancelled && self.max_files_reached();
        if taken || full {
            return false;
        }
        let test_chunks = self.config.test_chunks;
        self.change_file(i, |f| f.requeue(fresh_probing(test_chunks, f.count)));
        self.continue_after_run();
        true
    }

    fn cancel_file(&mut self, i: usize) -> bool {
        if self.files.get(i).is_some_and(|f| !f.life.terminal()) {
            self.abort_s3_upload(i);
        }
        let cancelled = self.change_file(i, |f| {
            if f.life.terminal() {
                return None;
            }
            f.life = Life::Cancelled;
            f.paused = false;
            f.chunks.clear();
            Some(f.id)
        });
        let Some(Some(id)) = cancelled else {
            return false;
        };
        self.abort_file(id);
        self.forget(i);
        true
    }

    /// `chunkSize: 'auto'`: chooses the chunk size of file `i` before its first request when a
    /// round trip is measured, or when it will not probe chunk 1 alone (then `maxChunkSize`).
    fn settle_unstarted(&mut self, i: usize) {
        let measured = self.window.round_trip_ms().is_some();
        if self.files.get(i).is_some_and(|f| {
            f.size_open
                && f.cursor == 0
                && f.chunks.is_empty()
                && (measured || f.probing != Probing::First)
        }) {
            self.settle_size(i, false);
        }
    }

    /// `chunkSize: 'auto'`: fixes the chunk size of file `i` for life, from the round trip
    /// measured so far (`keep`: the provisional one), re-cuts its plan and keeps the size in
    /// its record. Only while nothing but chunk 1 has started.
    fn settle_size(&mut self, i: usize, keep: bool) {
        if !self.files.get(i).is_some_and(|f| f.size_open) {
            return;
        }
        let c = &self.config;
        let rtt = self.window.round_trip_ms();
        let test_chunks = c.test_chunks;
        let (floor, max, force) = (c.chunk_size, c.max_chunk_size, c.force_chunk_size);
        self.change_file(i, |f| {
            f.size_open = false;
            let size = if keep {
                f.plan.chunk_size()
            } else {
                auto_chunk_size(rtt, floor, max)
            };
            let plan = ChunkPlan::new(f.meta.size, size, force);
            if let Ok(count) = u32::try_from(plan.count()) {
                f.plan = plan;
                f.count = count;
                if f.cursor == 0 {
                    f.probing = fresh_probing(test_chunks, count);
                }
            }
            let size = f.plan.chunk_size().to_string();
            if let Some(r) = f.record.as_deref_mut() {
                r.set_state(CHUNK_STATE, &size);
            }
        });
        self.keep(i);
    }

    /// `persist`: asks the driver to write file `i`'s record.
    fn keep(&mut self, i: usize) {
        if let Some(f) = self.files.get(i).filter(|_| self.config.persist) {
            let file = f.id;
            self.actions.push_back(Action::Keep { file, added: false });
        }
    }

    /// `persist`: asks the driver to delete file `i`'s record.
    fn forget(&mut self, i: usize) {
        if !self.config.persist {
            return;
        }
        if let Some(key) = self.files.get(i).and_then(File::key) {
            self.actions.push_back(Action::Forget { key });
        }
    }

    /// A resumed or retried file after the run ended (say, around it while it was paused)
    /// goes on in a new run; before the first `Start` it waits for one like any queued file.
    fn continue_after_run(&mut self) {
        if self.ran && !self.running {
            self.begin_run();
        }
    }

    fn cancel(&mut self) {
        let ids: Vec<RequestId> = self.flights.keys().copied().collect();
        self.flights.clear();
        for id in ids {
            self.actions.push_back(Action::Abort(id));
        }
        self.warm.retain(|(_, w)| *w == Warm::Done);
        for i in 0..self.files.len() {
            if self.files.get(i).is_some_and(|f| !f.life.terminal()) {
                self.abort_s3_upload(i);
            }
            let cancelled = self.change_file(i, |f| {
                let unfinished = !f.life.terminal();
                if unfinished {
                    f.life = Life::Cancelled;
                    f.chunks.clear();
                }
                unfinished
            });
            if cancelled == Some(true) {
                self.forget(i);
            }
        }
        self.emit(Event::Cancel);
        self.emit(Event::Complete);
        self.running = false;
        self.paused = false;
    }

    fn abort_file(&mut self, id: FileId) {
        let ids: Vec<RequestId> = self
            .flights
            .iter()
            .filter(|(_, fl)| fl.file == id)
            .map(|(r, _)| *r)
            .collect();
        for r in ids {
            self.flights.remove(&r);
            self.unwarm(r);
            self.actions.push_back(Action::Abort(r));
        }
    }

    /// Takes file `id` out of the queue; `forget`: its record too (not when a background job
    /// took the file over).
    fn remove(&mut self, id: FileId, forget: bool) {
        self.abort_file(id);
        let Some(i) = self.index(id) else {
            return;
        };
        self.abort_s3_upload(i);
        // A failed file's record is kept for a later retry; removing it forgets it.
        if forget {
            self.forget(i);
        }
        let f = self.files.remove(i);
        self.tally.swap(&f.tally(), &Tally::default());
        if i < self.settled {
            self.settled -= 1;
        }
        if i < self.started_end {
            self.started_end -= 1;
        }
        self.identifiers.remove(&f.identifier, id);
    }

    fn unwarm(&mut self, r: RequestId) {
        self.warm.retain(|(_, w)| *w != Warm::Warming(r));
    }

    fn promote(&mut self, now: u64) {
        let started = self.settled..self.started_end;
        #[cfg(test)]
        self.visited.set(self.visited.get() + started.len());
        for f in self.files.get_mut(started).unwrap_or_default() {
            for c in f.chunks.values_mut() {
                if matches!(c.state, State::Waiting(t) if t <= now) {
                    c.state = State::Pending;
                }
            }
        }
    }

    fn check_complete(&mut self) {
        if self.running && self.is_drained() {
            self.running = false;
            self.paused = false;
            self.emit(Event::Complete);
        }
    }

    /// The file index and chunk to send next. The search starts after the finished files and
    /// stops at the first file with work and no request in flight (with `parallelFiles`, none
    /// can beat it), so it visits about as many files as there are slots.
    fn candidate(&self) -> Option<(usize, u32)> {
        let mut best: Option<(usize, u32, usize)> = None;
        for (i, f) in self.files.iter().enumerate().skip(self.settled) {
            #[cfg(test)]
            self.visited.set(self.visited.get() + 1);
            let Some(chunk) = f.next() else { continue };
            if !self.config.parallel_files {
                return Some((i, chunk));
            }
            let in_flight = self.flights.values().filter(|fl| fl.file == f.id).count();
            if best.is_none_or(|(_, _, least)| in_flight < least) {
                best = Some((i, chunk, in_flight));
            }
            if in_flight == 0 {
                break;
            }
        }
        best.map(|(i, chunk, _)| (i, chunk))
    }

    fn pump(&mut self) {
        if !self.running || self.paused || self.offline {
            self.window.app_limited();
            return;
        }
        while self
            .files
            .get(self.settled)
            .is_some_and(|f| f.life.terminal())
        {
            self.settled += 1;
        }
        let slots = usize::try_from(self.slots()).unwrap_or(1);
        while self.flights.len() < slots {
            let Some((i, n)) = self.candidate() else {
                break;
            };
            self.settle_unstarted(i);
            let Some(spec) = self.build(i, n) else {
                break;
            };
            let mut warming = None;
            if spec.preflight.preflight {
                let key = warm_key(&spec);
                match self.warm.iter().find(|(k, _)| *k == key) {
                    Some((_, Warm::Done)) => {}
                    Some((_, Warm::Warming(_))) => break,
                    None if !self.flights.is_empty() => break,
                    None => warming = Some(key),
                }
            }
            let started = self.change_file(i, |f| {
                let fresh = !f.chunks.contains_key(&n)
                    && (f.s3.is_some() || (f.chunk_at(f.cursor) == n && f.cursor < f.count));
                if fresh {
                    if let Some(s3) = &mut f.s3 {
                        s3.sending(n);
                    } else {
                        f.cursor += 1;
                        f.skip_kept();
                    }
                    f.chunks
                        .insert(n, Chunk::pending(f.probing != Probing::Off));
                }
                f.life = Life::Started;
                let ch = f.chunks.get_mut(&n)?;
                ch.state = State::InFlight;
                ch.attempts = ch.attempts.saturating_add(1);
                ch.sent = 0;
                Some(())
            });
            if started.flatten().is_none() {
                break;
            }
            self.started_end = self.started_end.max(i + 1);
            self.next_request += 1;
            if let Some(key) = warming {
                self.warm.push((key, Warm::Warming(spec.id)));
            }
            self.flights.insert(
                spec.id,
                Flight {
                    file: spec.file,
                    chunk: n,
                    phase: spec.phase,
                    sent_at: self.now,
                    spec: spec.clone(),
                    checked: 0,
                    checking: 0,
                },
            );
            self.actions.push_back(Action::Send(spec));
        }
        if self.flights.len() < slots {
            // Nothing more to send (or a request goes alone): this round says nothing of the link.
            self.window.app_limited();
        }
    }

    /// The request for chunk `n` of file `i` (not yet committed).
    fn build(&self, i: usize, n: u32) -> Option<RequestSpec> {
        let c = &self.config;
        let f = self.files.get(i)?;
        if let Some(s3) = &f.s3 {
            let attempts = f.chunks.get(&n).map_or(0, |ch| ch.attempts);
            return s3.request(n, self.frame(f, attempts.saturating_add(1)));
        }
        let (start, end) = f.plan.range(u64::from(n))?;
        let (probe, attempts) = match f.chunks.get(&n) {
            Some(ch) => (ch.probe, ch.attempts),
            None => (f.probing != Probing::Off, 0),
        };
        let phase = if probe && c.test_chunks != TestChunks::Never {
            Phase::Test
        } else {
            Phase::Upload
        };
        // `chunkSize: 'auto'`: the identifier the server sees names the file's chunk size, so
        // that chunks cut in one size never answer a probe of another (a file re-added without
        // its record may pick another size).
        let sized;
        let identifier = if c.chunk_auto {
            sized = format!("{}-{}", f.identifier, f.plan.chunk_size());
            &sized
        } else {
            &f.identifier
        };
        let params = protocol_params(
            c,
            &ChunkFacts {
                identifier,
                meta: &f.meta,
                plan: &f.plan,
                chunk: n,
            },
        );
        let mut spec = RequestSpec {
            id: RequestId(self.next_request),
            file: f.id,
            chunk: n,
            phase,
            attempt: attempts.saturating_add(1),
            method: if phase == Phase::Test {
                c.test_method.clone()
            } else {
                c.upload_method.clone()
            },
            url: String::new(),
            body: RequestBody::None,
            start,
            end,
            headers: Vec::new(),
            with_credentials: c.with_credentials,
            timeout_ms: (c.timeout_ms > 0).then_some(c.timeout_ms),
            upload_listener: phase == Phase::Upload && c.progress == ProgressMode::Bytes,
            preflight: Prediction::default(),
            params,
            file_name: f.meta.name.clone(),
            s3: None,
            checksum: c.checksum,
            file_digest_of: None,
            target: None,
        };
        render(&mut spec, c, &c.query, &c.headers);
        Some(spec)
    }

    /// What a request of file `f` is framed with, whatever its protocol builds.
    fn frame<'a>(&self, f: &'a File, attempt: u32) -> s3::Frame<'a> {
        let t = self.config.timeout_ms;
        s3::Frame {
            id: RequestId(self.next_request),
            file: f.id,
            file_name: &f.meta.name,
            attempt,
            timeout_ms: (t > 0).then_some(t),
            checksum: self.config.checksum,
        }
    }

    /// `background`: takes every file that can go out of the page's queue for a Background
    /// Fetch job, as `(file, record key, name, requests)`: the upload request of every chunk
    /// its record does not list as confirmed ([`background::job_chunks`]), as the page would
    /// send it. A file with a request in flight, a finished one, one paused on its own, an S3
    /// file or one without a record stays. A record stays kept: the job's outcomes are written into it.
    pub fn hand_over(&mut self) -> Vec<(FileId, String, String, Vec<RequestSpec>)> {
        let mut out = Vec::new();
        let mut i = 0;
        while let Some(f) = self.files.get_mut(i) {
            let id = f.id;
            // A file paused on its own stays: a job cannot be paused from the page.
            let busy = f.life.terminal()
                || f.s3.is_some()
                || f.paused
                || self.flights.values().any(|fl| fl.file == id);
            let (Some(record), false) = (f.record.as_deref(), busy) else {
                i += 1;
                continue;
            };
            let (key, name, sends) = (
                record.key(),
                record.name.clone(),
                background::job_chunks(f.count, &record.confirmed),
            );
            // Every request goes as an upload: a job cannot probe first.
            f.probing = Probing::Off;
            f.chunks.clear();
            let mut specs = Vec::new();
            for n in sends {
                specs.extend(self.build(i, n));
            }
            out.push((id, key, name, specs));
            self.remove(id, false);
        }
        self.pump();
        out
    }

    /// An answer to one of an S3 file's requests: the protocol reads it, the scheduler does
    /// what the reading says.
    fn on_s3(&mut self, r: RequestId, reply: Reply) {
        let Some(fl) = self.flights.remove(&r) else {
            return;
        };
        let Some(i) = self.index(fl.file) else {
            return;
        };
        if reply.delivered() {
            self.window
                .on_answer(fl.sent_at, self.now, fl.spec.end - fl.spec.start);
        }
        let (n, file) = (fl.chunk, fl.file);
        let origin = self.config.page_origin.clone();
        let cx = s3::Context {
            page_origin: origin.as_deref(),
            diagnose_cors: self.config.diagnose_cors,
        };
        let reading = self.change_file(i, |f| {
            let resigned = f.chunks.get(&n).is_some_and(|ch| ch.resigned);
            let s3 = f.s3.as_mut()?;
            let reading = s3.read(&fl.spec, reply, resigned, cx);
            match &reading {
                s3::Reading::Stepped | s3::Reading::Finished(_) => {
                    f.chunks.remove(&FILE_STEP);
                    // What the store has now counts as done.
                    f.done = s3.stored_parts();
                    f.confirmed = s3.confirmed_bytes();
                    f.life = match reading {
                        s3::Reading::Finished(_) => Life::Success,
                        _ => Life::Started,
                    };
                }
                s3::Reading::SignAgain => {
                    if let Some(ch) = f.chunks.get_mut(&n) {
                        ch.resigned = true;
                        ch.state = State::Pending;
                        ch.sent = 0;
                    }
                }
                s3::Reading::StartOver => {
                    f.chunks.clear();
                    f.done = 0;
                    f.confirmed = 0;
                }
                _ => {}
            }
            Some(reading)
        });
        match reading.flatten() {
            Some(s3::Reading::Stepped) => {
                self.keep_s3_upload(i);
                self.emit(Event::FileProgress(file));
                self.emit(Event::Progress);
            }
            Some(s3::Reading::Finished(location)) => {
                self.forget(i);
                self.emit(Event::FileProgress(file));
                self.emit(Event::Progress);
                self.emit(Event::FileSuccess {
                    file,
                    body: location,
                });
            }
            Some(s3::Reading::PartStored) => self.chunk_done(i, n, String::new()),
            Some(s3::Reading::StartOver) => {
                self.keep_s3_upload(i);
                self.abort_file(file);
            }
            Some(s3::Reading::Retry(e)) => self.retry(i, &fl, e, None),
            Some(s3::Reading::Fail(e)) => self.fail_file(i, e),
            Some(s3::Reading::SignAgain) | None => {}
        }
    }

    /// Keeps file `i`'s multipart upload (part size, id, key) in its record when it changed, so
    /// that after a reload the file goes on with `listParts`; an upload the store lost leaves an
    /// empty value.
    fn keep_s3_upload(&mut self, i: usize) {
        let Some(f) = self.files.get_mut(i) else {
            return;
        };
        let (Some(s3), Some(r)) = (&f.s3, f.record.as_deref_mut()) else {
            return;
        };
        let u = s3.upload();
        let mut value = String::new();
        if !u.key.is_empty() {
            value = u.part_size.to_string();
            for part in [&u.upload_id, &u.key] {
                value.push('\n');
                value.push_str(part);
            }
        }
        let kept = r.state.iter().find(|(n, _)| n == S3_STATE);
        if kept.map_or("", |(_, v)| v.as_str()) != value {
            r.set_state(S3_STATE, &value);
            self.keep(i);
        }
    }

    /// `abortMultipartUpload` for file `i` when it has an upload to abort: sent, not awaited.
    fn abort_s3_upload(&mut self, i: usize) {
        let Some(f) = self.files.get(i) else {
            return;
        };
        let (id, file, name) = (RequestId(self.next_request), f.id, f.meta.name.clone());
        let spec = self.change_file(i, |f| {
            f.s3.as_mut()?.abort(s3::Frame {
                id,
                file,
                file_name: &name,
                attempt: 1,
                timeout_ms: None,
                checksum: None,
            })
        });
        if let Some(Some(spec)) = spec {
            self.next_request += 1;
            self.actions.push_back(Action::Send(spec));
        }
    }

    /// The URL the `target` function gave for request `r`: the request is rendered for it (its
    /// query, its preflight), and its CORS checks will go there too. `None` when the request is
    /// no longer wanted.
    pub fn retarget(&mut self, r: RequestId, url: String) -> Option<RequestSpec> {
        let c = &self.config;
        let fl = self.flights.get_mut(&r)?;
        fl.spec.target = Some(url);
        render(&mut fl.spec, c, &c.query, &c.headers);
        Some(fl.spec.clone())
    }

    /// `checksum` on a resumed file: the next kept chunk whose checksum its record lacks, with
    /// its byte range `[start, end)`. The driver reads and hashes it locally (one at a time,
    /// it is not sent) and answers with [`Scheduler::kept_hashed`]; the file's last chunk is
    /// not sent before, so that it carries the whole-file digest. `None` while nothing is being
    /// uploaded (not started, paused) and when every checksum is known.
    #[must_use]
    pub fn kept_to_hash(&self) -> Option<(FileId, u32, u64, u64)> {
        if self.tally.unhashed == 0 || !self.running || self.paused {
            return None;
        }
        self.files
            .iter()
            .skip(self.settled)
            .filter(|f| !f.life.terminal() && !f.paused)
            .find_map(|f| {
                let n = f.unhashed.first()?;
                let (start, end) = f.plan.range(u64::from(n))?;
                Some((f.id, n, start, end))
            })
    }

    /// The checksum of kept chunk `chunk` of file `file`, read and hashed locally
    /// ([`Scheduler::kept_to_hash`]): it joins the file's sums and its record (written once the
    /// last one is known). `None` (the file fails, `rejected`, rule `readable`) is a chunk that
    /// could not be read. Call [`Scheduler::poll_action`] until `None` afterwards.
    pub fn kept_hashed(&mut self, now_ms: u64, file: FileId, chunk: u32, sum: Option<&[u8]>) {
        self.now = self.now.max(now_ms);
        let Some(i) = self.index(file) else {
            return;
        };
        let Some(sum) = sum else {
            let wanted = self
                .files
                .get(i)
                .is_some_and(|f| !f.life.terminal() && f.unhashed.first() == Some(chunk));
            if wanted {
                let mut e = UploadError::rejected(
                    "readable",
                    "the file can no longer be read (was it changed, moved or deleted after it was chosen?)",
                );
                e.chunk = Some(chunk);
                self.fail_file(i, e);
                self.pump();
                self.check_complete();
            }
            return;
        };
        let outcome = self.change_file(i, |f| {
            if f.life.terminal() || f.unhashed.first() != Some(chunk) {
                return None;
            }
            f.unhashed.pop_first();
            let sums = f.sums.as_deref_mut()?;
            let algorithm = sums.algorithm();
            let reading = sums.record(chunk, sum);
            if let Some(r) = f.record.as_deref_mut() {
                r.set_checksum(chunk, &integrity::kept_text(algorithm, sum));
            }
            Some((reading, algorithm, f.unhashed.is_empty()))
        });
        let Some(Some((reading, algorithm, all))) = outcome else {
            return;
        };
        if reading == Reading::Changed {
            self.fail_file(i, changed(chunk, algorithm));
        } else if all {
            self.keep(i);
        }
        self.promote(self.now);
        self.pump();
        self.check_complete();
    }

    /// The checksum of the bytes the driver read for request `r` (`spec.checksum` set): records
    /// it and answers the request to send, its parameters now carrying the chunk's checksum and,
    /// once every chunk of the file has been read, the file's digest. `None` when the request
    /// is no longer wanted, or when the bytes differ from an earlier read of the same chunk:
    /// the file changed on disk, and it fails (`rejected`, rule `changed`).
    pub fn hashed(&mut self, now_ms: u64, r: RequestId, sum: &[u8]) -> Option<RequestSpec> {
        self.now = self.now.max(now_ms);
        let algorithm = self.config.checksum?;
        let fl = self.flights.get(&r)?;
        let (file, chunk) = (fl.file, fl.chunk);
        let i = self.index(file)?;
        let reading = self.change_file(i, |f| {
            let count = f.count;
            let sums = f
                .sums
                .get_or_insert_with(|| Box::new(FileSums::new(algorithm, count)));
            let reading = sums.record(chunk, sum);
            (reading, sums.digest(&f.plan))
        });
        let (reading, digest) = reading?;
        if reading == Reading::Changed {
            let fl = self.flights.remove(&r)?;
            let mut e = changed(chunk, algorithm);
            e.url = Some(fl.spec.url.clone());
            e.method = Some(fl.spec.method.clone());
            e.phase = Some(fl.phase);
            e.attempts = fl.spec.attempt;
            self.fail_file(i, e);
            // As after any input: the freed slot goes to other work, and the run may be over.
            self.promote(self.now);
            self.pump();
            self.check_complete();
            return None;
        }
        let c = &self.config;
        let now = self.now;
        let fl = self.flights.get_mut(&r)?;
        // The request goes on the wire now: its round trip starts after the read and the hash.
        fl.sent_at = now;
        // An S3 part: its checksum goes to `signPart` and into its header.
        if let Some(s3::Call::Part { checksum, .. }) = &mut fl.spec.s3 {
            *checksum = Some(sum.to_vec());
            return Some(fl.spec.clone());
        }
        let mut add = |suffix: &str, value: String| {
            fl.spec.params.push((integrity_param(c, suffix), value));
        };
        add("ChecksumAlgorithm", algorithm.as_str().to_string());
        add("ChunkChecksum", integrity::hex(sum));
        match digest {
            Some(FileDigest::Done(d)) => add("FileChecksum", integrity::hex(&d)),
            Some(FileDigest::Sha256Of(input)) => fl.spec.file_digest_of = Some(input),
            None => {}
        }
        render(&mut fl.spec, c, &c.query, &c.headers);
        Some(fl.spec.clone())
    }

    fn on_response(&mut self, r: RequestId, status: u16, body: String, retry_after: Option<&str>) {
        let Some(fl) = self.flights.remove(&r) else {
            return;
        };
        for (_, w) in &mut self.warm {
            if *w == Warm::Warming(r) {
                *w = Warm::Done;
            }
        }
        let Some(i) = self.index(fl.file) else {
            return;
        };
        // A readable answer: this shape passes CORS right now.
        self.ledger.readable_answer(&fl.spec);
        let stored = fl.phase == Phase::Upload
            && classify_upload(&self.config, status) == UploadOutcome::Success;
        if fl.phase == Phase::Test || stored {
            let bytes = if stored {
                fl.spec.end - fl.spec.start
            } else {
                0
            };
            self.window.on_answer(fl.sent_at, self.now, bytes);
        }
        match fl.phase {
            Phase::Test => match classify_probe(&self.config, status) {
                ProbeOutcome::Present => {
                    // The server holds chunk 1 in the provisional size (the identifier sent
                    // names it): that is the file's size.
                    self.settle_size(i, true);
                    self.change_file(i, |f| {
                        if f.probing == Probing::First {
                            f.probing = Probing::All;
                        }
                        if f.probing == Probing::Verify {
                            // The server still has the upload: what the record says is there.
                            f.probing = Probing::Off;
                            f.take_kept(fl.chunk);
                        }
                    });
                    self.chunk_done(i, fl.chunk, body);
                }
                ProbeOutcome::Absent => {
                    let lost = self.change_file(i, |f| {
                        if f.probing != Probing::Verify {
                            return false;
                        }
                        // The server lost what the record says it has (say, it was reset):
                        // start over and ask it about every chunk.
                        f.requeue(Probing::All);
                        if let Some(r) = f.record.as_deref_mut() {
                            r.clear_chunks();
                        }
                        true
                    });
                    if lost == Some(true) {
                        self.keep(i);
                        return;
                    }
                    self.change_file(i, |f| {
                        if f.probing == Probing::First {
                            f.probing = Probing::Off;
                        }
                        if let Some(ch) = f.chunks.get_mut(&fl.chunk) {
                            ch.probe = false;
                            ch.state = State::Pending;
                            ch.sent = 0;
                        }
                    });
                    // A new file: its probe measured the round trip, its size is chosen now
                    // (chunk 1 is still chunk 1, only its range changes).
                    self.settle_size(i, false);
                }
                ProbeOutcome::Fail => {
                    let mut e = self.request_error(&fl, ErrorKind::Http, "answered HTTP ");
                    e.message.push_str(&u64::from(status).to_string());
                    e.message.push_str(
                        ", a permanent error for the flow protocol (answer 204 for an absent chunk)",
                    );
                    e.status = Some(status);
                    e.body = Some(body);
                    self.fail_file(i, e);
                }
            },
            Phase::Upload
                if fl.spec.checksum.is_some()
                    && integrity::verdict(status, &body) != integrity::Verdict::None =>
            {
                self.on_mismatch(i, &fl, status, body);
            }
            Phase::Upload => match classify_upload(&self.config, status) {
                UploadOutcome::Success => self.chunk_done(i, fl.chunk, body),
                UploadOutcome::Retry => {
                    let mut e = self.request_error(&fl, ErrorKind::Http, "answered HTTP ");
                    e.message.push_str(&u64::from(status).to_string());
                    e.status = Some(status);
                    e.body = Some(body);
                    let wait = retry_after.and_then(parse_retry_after);
                    self.retry(i, &fl, e, wait);
                }
                UploadOutcome::Fail => {
                    let mut e = self.request_error(&fl, ErrorKind::Http, "was refused with HTTP ");
                    e.message.push_str(&u64::from(status).to_string());
                    e.message.push_str(" (in permanentErrors)");
                    e.status = Some(status);
                    e.body = Some(body);
                    self.fail_file(i, e);
                }
            },
            // S3's callbacks and parts answer through their own inputs.
            _ => {}
        }
    }

    /// The server refused a checksummed chunk (`integrity::verdict`): a chunk whose bytes did
    /// not match is read, hashed and sent again within the retry budget (its next read tells
    /// whether the file changed, see [`Scheduler::hashed`]); a file whose assembly did not
    /// match its digest fails.
    fn on_mismatch(&mut self, i: usize, fl: &Flight, status: u16, body: String) {
        let algorithm = fl.spec.checksum.map(integrity::Algorithm::as_str);
        let file = integrity::verdict(status, &body) == integrity::Verdict::FileMismatch;
        let what = if file {
            "was answered: the file the server assembled does not match the file's checksum"
        } else {
            "was refused: the bytes the server received do not match the chunk's checksum"
        };
        let mut e = self.request_error(fl, ErrorKind::Integrity, what);
        e.status = Some(status);
        e.body = Some(body);
        e.algorithm = algorithm;
        if file {
            self.fail_file(i, e);
        } else {
            self.retry(i, fl, e, None);
        }
    }

    fn on_failed(&mut self, r: RequestId, failure: Failure) {
        let Some(fl) = self.flights.remove(&r) else {
            return;
        };
        self.unwarm(r);
        let Some(i) = self.index(fl.file) else {
            return;
        };
        let reprobe = self.config.test_chunks != TestChunks::Never;
        if failure == Failure::Offline {
            self.offline = true;
            self.offline_recheck_at = Some(self.now.saturating_add(OFFLINE_RECHECK_MS));
            self.change_file(i, |f| {
                if let Some(ch) = f.chunks.get_mut(&fl.chunk) {
                    ch.state = State::Pending;
                    ch.sent = 0;
                    ch.probe |= reprobe;
                }
            });
            return;
        }
        // Permanent failures of the file or of the request itself: no retry helps.
        let permanent = match failure {
            Failure::Unreadable => Some(UploadError::rejected(
                "readable",
                "the file can no longer be read (was it changed, moved or deleted after it was chosen?)",
            )),
            Failure::Unsendable => Some(UploadError::invalid(
                "headers",
                "the request could not be built: a header name or value or the URL is not valid, or a headers/query/target/preprocess function failed (the console names it)",
            )),
            _ => None,
        };
        if let Some(mut e) = permanent {
            e.url = Some(fl.spec.url.clone());
            e.method = Some(fl.spec.method.clone());
            e.phase = Some(fl.phase);
            e.chunk = Some(fl.chunk);
            e.attempts = fl.spec.attempt;
            self.fail_file(i, e);
            return;
        }
        if failure == Failure::NoResponse
            && self.config.diagnose_cors
            && self.config.cors_enforced
            && is_cross_origin(&fl.spec.url, self.config.page_origin.as_deref())
        {
            // CORS or a failed connection? Check the shape; the request keeps its slot meanwhile.
            self.flights.insert(r, fl);
            self.decide(r, None);
            return;
        }
        let timed_out = fl
            .spec
            .timeout_ms
            .is_some_and(|t| self.now >= fl.sent_at.saturating_add(t));
        let kind = failure_kind(failure, timed_out);
        let what = match kind {
            ErrorKind::Timeout => "timed out",
            ErrorKind::Aborted => "was aborted",
            _ => "failed with a network error (no HTTP answer)",
        };
        let e = self.request_error(&fl, kind, what);
        self.retry(i, &fl, e, None);
    }

    /// The driver's answer to an [`Action::Check`] batch of request `r`.
    fn on_checked(&mut self, r: RequestId, batch: &[Observation]) {
        if self.flights.get(&r).is_some_and(|fl| fl.checking > 0) {
            self.decide(r, Some(batch));
        }
    }

    /// Records `batch` (the checks of request `r` that just came back, if any), then asks for
    /// more checks, retries the request as a network failure, or fails its file as CORS.
    fn decide(&mut self, r: RequestId, batch: Option<&[Observation]>) {
        let Some(fl) = self.flights.get(&r) else {
            return;
        };
        let shape = CorsShape::of(&fl.spec);
        let mut refuted = false;
        let mut checked = fl.checked;
        if let Some(batch) = batch {
            if self.ledger.record(&shape, batch) {
                checked = checked.saturating_add(u32::try_from(batch.len()).unwrap_or(u32::MAX));
            } else {
                refuted = true;
            }
        }
        let pending = self
            .flights
            .iter()
            .filter(|(id, f)| **id != r && f.checking > 0 && CorsShape::of(&f.spec) == shape)
            .map(|(_, f)| f.checking)
            .sum();
        let streak = self.ledger.streak(&shape);
        let evidence = Evidence {
            streak,
            pending,
            checked,
            refuted,
        };
        if let Verdict::Verify(pairs) = verdict(evidence) {
            if let Some(fl) = self.flights.get_mut(&r) {
                fl.checked = checked;
                fl.checking = pairs;
                let check = Check::of(&fl.spec, pairs);
                self.actions.push_back(Action::Check(check));
            }
            return;
        }
        let Some(fl) = self.flights.remove(&r) else {
            return;
        };
        let Some(i) = self.index(fl.file) else {
            return;
        };
        if refuted {
            let readable = batch.is_some_and(|b| b.contains(&Observation::Readable));
            let what = if readable {
                "got no HTTP answer, while a request of the same CORS shape did: a failed connection, not CORS"
            } else {
                "failed with a network error (no HTTP answer)"
            };
            let e = self.request_error(&fl, ErrorKind::Network, what);
            self.retry(i, &fl, e, None);
            return;
        }
        let mut what = String::from("was blocked, likely by CORS: ");
        what.push_str(&u64::from(streak).to_string());
        what.push_str(" requests with its URL, method, credentials and headers got no readable answer while the server answered each no-cors request after them");
        let mut e = self.request_error(&fl, ErrorKind::Cors, &what);
        e.hint = Some(cors_hint(
            &fl.spec.shape(self.config.page_origin.as_deref()),
            fl.spec.with_credentials,
        ));
        if let Some(ch) = self.files.get(i).and_then(|f| f.chunks.get(&fl.chunk)) {
            e.attempts = ch.attempts;
        }
        self.fail_file(i, e);
    }

    fn on_bytes(&mut self, r: RequestId, sent: u64) {
        let Some(fl) = self.flights.get(&r) else {
            return;
        };
        if fl.phase != Phase::Upload {
            return;
        }
        let (file, chunk) = (fl.file, fl.chunk);
        let now = self.now;
        let Some(i) = self.index(file) else {
            return;
        };
        self.change_file(i, |f| {
            let len = f.plan.len(u64::from(chunk));
            if let Some(ch) = f.chunks.get_mut(&chunk) {
                ch.sent = sent.min(len);
            }
            let total = f.confirmed + f.in_flight_bytes();
            f.speed.sample(now, total);
        });
        self.sample_speed();
        self.emit(Event::FileProgress(file));
        self.emit(Event::Progress);
    }

    fn request_error(&self, fl: &Flight, kind: ErrorKind, what: &str) -> UploadError {
        fl.spec.error(kind, what)
    }

    /// Schedules another attempt of the chunk of `fl`, whose request failed in a way that may
    /// be the link's or the server's load: the window backs off too.
    fn retry(&mut self, i: usize, fl: &Flight, mut e: UploadError, retry_after: Option<u64>) {
        // A checksum mismatch says nothing about the link's load, and the server answered that
        // it stored nothing: no back-off of the window, no probe before the re-send.
        let mismatch = e.kind == ErrorKind::Integrity;
        if !mismatch {
            self.window
                .on_failure(fl.sent_at, self.now, retry_after.is_some());
        }
        let n = fl.chunk;
        let reprobe = self.config.test_chunks != TestChunks::Never && !mismatch;
        let policy = self.policy;
        let random = self.rng.next_u64();
        let now = self.now;
        // The chunk's attempts, and the delay before its retry (`None`: it gave up).
        let outcome = self.change_file(i, |f| {
            let ch = f.chunks.get_mut(&n)?;
            ch.sent = 0;
            ch.probe |= reprobe;
            if !policy.allows(ch.retries) {
                ch.state = State::Pending;
                return Some((f.id, ch.attempts, None));
            }
            ch.retries += 1;
            let delay = policy.delay_ms(ch.retries, random, retry_after);
            ch.state = if delay == 0 {
                State::Pending
            } else {
                State::Waiting(now.saturating_add(delay))
            };
            Some((f.id, ch.attempts, Some(delay)))
        });
        let Some(Some((file, attempts, delay))) = outcome else {
            return;
        };
        e.attempts = attempts;
        let Some(delay) = delay else {
            let mut m = String::from("gave up after ");
            m.push_str(&u64::from(attempts).to_string());
            m.push_str(" attempts: ");
            m.push_str(&e.message);
            e.message = m;
            self.fail_file(i, e);
            return;
        };
        self.emit(Event::FileRetry {
            file,
            chunk: n,
            error: e,
            delay_ms: delay,
        });
    }

    fn chunk_done(&mut self, i: usize, n: u32, body: String) {
        let now = self.now;
        let done = self.change_file(i, |f| {
            f.chunks.remove(&n)?;
            f.done += 1;
            f.confirmed = f.confirmed.saturating_add(f.plan.len(u64::from(n)));
            for ch in f.chunks.values_mut() {
                ch.retries = 0;
            }
            let total = f.confirmed + f.in_flight_bytes();
            f.speed.sample(now, total);
            // An S3 file is done once `completeMultipartUpload` answered, not with its last part
            // (unless it was one signed PUT).
            let finished = f.done >= f.count && f.s3.as_ref().is_none_or(S3File::done_with_parts);
            if finished {
                f.life = Life::Success;
            }
            if let Some(r) = f.record.as_deref_mut() {
                r.confirmed.insert(n);
                // The checksum the server accepted the chunk with, for the digest after a reload.
                if let Some(sums) = f.sums.as_deref() {
                    if let Some(sum) = sums.get(n) {
                        r.set_checksum(n, &integrity::kept_text(sums.algorithm(), sum));
                    }
                }
            }
            Some((f.id, finished))
        });
        let Some(Some((file, finished))) = done else {
            return;
        };
        if finished {
            self.forget(i);
        } else {
            self.keep(i);
        }
        self.sample_speed();
        self.emit(Event::ChunkSuccess {
            file,
            chunk: n,
            body: body.clone(),
        });
        self.emit(Event::FileProgress(file));
        self.emit(Event::Progress);
        if finished {
            self.emit(Event::FileSuccess { file, body });
        }
    }

    fn fail_file(&mut self, i: usize, e: UploadError) {
        let failed = self.change_file(i, |f| {
            f.life = Life::Error;
            f.error = Some(Box::new(e.clone()));
            f.chunks.clear();
            f.id
        });
        let Some(file) = failed else {
            return;
        };
        self.abort_file(file);
        self.emit(Event::FileError { file, error: e });
    }

    fn view(&self, f: &File) -> FileView {
        let status = match f.life {
            Life::Success => FileStatus::Success,
            Life::Error => FileStatus::Error,
            Life::Cancelled => FileStatus::Cancelled,
            _ if self.paused || f.paused => FileStatus::Paused,
            Life::Started => FileStatus::Uploading,
            Life::Queued => FileStatus::Queued,
        };
        let in_flight = f.in_flight_bytes();
        let reached = (f.confirmed + in_flight).min(f.meta.size);
        FileView {
            id: f.id,
            identifier: f.identifier.clone(),
            name: f.meta.name.clone(),
            size: f.meta.size,
            relative_path: f.meta.path().to_string(),
            status,
            confirmed_bytes: f.confirmed,
            in_flight_bytes: in_flight,
            progress: ratio(reached, f.meta.size, f.life == Life::Success),
            error: f.error.as_deref().cloned(),
            speed_bps: f.speed.bytes_per_second(),
            eta_ms: if f.life.terminal() {
                Some(0)
            } else {
                f.speed.eta_ms(f.meta.size - reached)
            },
        }
    }
}

#[allow(clippy::cast_precision_loss)]
fn ratio(done: u64, total: u64, finished: bool) -> f64 {
    if total == 0 {
        return if finished { 1.0 } else { 0.0 };
    }
    (done as f64 / total as f64).min(1.0)
}

/// The warm-up key of a request: the URL for multipart uploads (constant), else method and phase.
fn warm_key(spec: &RequestSpec) -> String {
    let mut k = spec.method.clone();
    k.push(' ');
    if matches!(spec.body, RequestBody::Multipart { .. }) {
        k.push_str(&spec.url);
    } else {
        k.push_str(spec.phase.as_str());
    }
    k
}

/// Adds the cheaper alternative to a preflight cause, for the warning event.
fn with_alternative(mut r: String) -> String {
    let alt = if crate::engine::preflight::find_str(&r, "progress listener").is_some() {
        "; use progress: 'chunk' to keep requests simple"
    } else if r.starts_with("method") {
        "; use uploadMethod 'POST' and testMethod 'GET'"
    } else if r.starts_with("header") {
        "; pass such values in `query` instead, or let the server list the header in Access-Control-Allow-Headers with Access-Control-Max-Age: 600"
    } else {
        ""
    };
    r.push_str(alt);
    r
}

fn type_matches(types: &[String], meta: &FileMeta) -> bool {
    let name = meta.name.to_ascii_lowercase();
    // After the last `.` (byte search: no reverse `char` searcher in the wasm).
    let ext = name
        .bytes()
        .rposition(|b| b == b'.')
        .and_then(|i| name.get(i + 1..))
        .unwrap_or("");
    let mime = meta.mime_type.to_ascii_lowercase();
    types.iter().any(|t| {
        let t = t.to_ascii_lowercase();
        if let Some(prefix) = t.strip_suffix("/*") {
            text::cut(&mime, b'/').is_some_and(|(ty, _)| ty == prefix)
        } else if t.as_bytes().contains(&b'/') {
            t == mime
        } else {
            !ext.is_empty() && text::trim_start_byte(&t, b'.') == ext
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::s3::Call;

    fn meta(name: &str, size: u64) -> FileMeta {
        FileMeta {
            name: name.into(),
            size,
            mime_type: "image/png".into(),
            ..Default::default()
        }
    }

    fn drain(s: &mut Scheduler) -> Vec<Action> {
        core::iter::from_fn(|| s.poll_action()).collect()
    }

    fn sends(actions: &[Action]) -> Vec<RequestSpec> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    fn respond(s: &mut Scheduler, now: u64, r: &RequestSpec, status: u16) {
        s.handle(
            now,
            Input::Response {
                request: r.id,
                status,
                body: String::new(),
                retry_after: None,
            },
        );
    }

    /// The chunk size file `f`'s record keeps (`chunkSize: 'auto'`), as written.
    fn kept_size(s: &Scheduler, f: FileId) -> Option<String> {
        let r = s.record(f)?;
        r.state
            .into_iter()
            .find_map(|(n, v)| (n == CHUNK_STATE).then_some(v))
    }

    fn auto_config() -> Config {
        let mut c = Config::new("https://x/u");
        c.chunk_auto = true;
        c.max_chunk_size = 16 * MIB;
        c.persist = true;
        c
    }

    /// `(method, chunk, resumableChunkSize, resumableTotalChunks, resumableIdentifier)`.
    fn wire(r: &RequestSpec) -> (String, u32, String, String, String) {
        let p = |n: &str| r.param(n).unwrap_or_default();
        (
            r.method.clone(),
            r.chunk,
            p("resumableChunkSize"),
            p("resumableTotalChunks"),
            p("resumableIdentifier"),
        )
    }

    #[test]
    fn auto_chunk_size_is_chosen_from_the_first_probe_and_kept_for_the_file() {
        let mut s = Scheduler::new(auto_config(), 1);
        let f = s.add_file(0, meta("a.bin", 64 * MIB)).unwrap();
        s.handle(0, Input::Start);
        // Nothing measured: chunk 1 is probed alone in the provisional size, maxChunkSize,
        // under an identifier that names it.
        let probe = sends(&drain(&mut s));
        assert_eq!(probe.len(), 1);
        let id = s.identifier_for(&meta("a.bin", 64 * MIB));
        assert_eq!(
            wire(&probe[0]),
            (
                "GET".into(),
                1,
                "16777216".into(),
                "4".into(),
                format!("{id}-16777216")
            )
        );
        // Absent after 200 ms: 6 × 8 MiB carry twice 1 Gbit/s × 200 ms. Chunk 1 goes again as
        // an upload, cut in 8 MiB, and the rest follow without probes.
        respond(&mut s, 200, &probe[0], 204);
        let actions = drain(&mut s);
        let posts = sends(&actions);
        assert!(!posts.is_empty() && posts.iter().all(|r| r.method == "POST"));
        assert_eq!(
            wire(&posts[0]),
            (
                "POST".into(),
                1,
                "8388608".into(),
                "8".into(),
                format!("{id}-8388608")
            )
        );
        assert_eq!((posts[0].start, posts[0].end), (0, 8 * MIB));
        assert!(actions
            .iter()
            .any(|a| matches!(a, Action::Keep { file, .. } if *file == f)));
        assert_eq!(kept_size(&s, f).as_deref(), Some("8388608"));
        assert_eq!(
            kept_plan(s.config(), &s.record(f).unwrap()).chunk_size(),
            8 * MIB
        );
        // Every chunk confirmed: 8 of 8 MiB, the file is done.
        let mut pending = posts;
        let mut t = 400;
        while let Some(r) = pending.pop() {
            respond(&mut s, t, &r, 200);
            t += 10;
            pending.extend(sends(&drain(&mut s)));
        }
        assert_eq!(s.file(f).unwrap().status.as_str(), "success");
        assert_eq!(s.file(f).unwrap().confirmed_bytes, 64 * MIB);
    }

    #[test]
    fn auto_chunk_size_a_measured_link_sizes_new_files_at_once_and_a_kept_size_wins() {
        let mut s = Scheduler::new(auto_config(), 1);
        let first = s.add_file(0, meta("a.bin", 3 * MIB)).unwrap();
        s.handle(0, Input::Start);
        // One file under maxChunkSize: one chunk, no probe, so it goes in the provisional size.
        let post = sends(&drain(&mut s));
        assert_eq!(wire(&post[0]).2, "16777216");
        respond(&mut s, 100, &post[0], 200);
        drain(&mut s);
        assert_eq!(s.file(first).unwrap().status.as_str(), "success");
        // A round trip of 100 ms is known: the next file is cut in 4 MiB when added.
        let second = s.add_file(100, meta("b.bin", 40 * MIB)).unwrap();
        s.handle(100, Input::Start);
        let probe = sends(&drain(&mut s));
        assert_eq!(wire(&probe[0]).0, "GET");
        assert_eq!(wire(&probe[0]).2, "4194304");
        assert_eq!(wire(&probe[0]).3, "10");
        assert_eq!(kept_size(&s, second).as_deref(), Some("4194304"));
        // A file re-added with its record keeps the record's size (2 MiB), whatever the link
        // says now, and probes the chunk the record lists, in that size.
        let mut kept = Record::new(
            s.config(),
            &s.identifier_for(&meta("c.bin", 40 * MIB)),
            &meta("c.bin", 40 * MIB),
        );
        kept.set_state(CHUNK_STATE, "2097152");
        kept.confirmed.insert(1);
        let third = s
            .add_file_kept(200, meta("c.bin", 40 * MIB), Some(kept))
            .unwrap();
        assert_eq!(s.file(third).unwrap().size, 40 * MIB);
        let f = s.files.iter().find(|f| f.id == third).unwrap();
        assert_eq!(
            (f.plan.chunk_size(), f.count, f.size_open),
            (2 * MIB, 20, false)
        );
    }

    #[test]
    fn auto_chunk_size_server_holding_the_provisional_size_keeps_it() {
        let mut s = Scheduler::new(auto_config(), 1);
        let f = s.add_file(0, meta("a.bin", 64 * MIB)).unwrap();
        s.handle(0, Input::Start);
        let probe = sends(&drain(&mut s));
        // Present: an earlier upload of this file was cut in 16 MiB (the identifier says so).
        respond(&mut s, 300, &probe[0], 200);
        let next = sends(&drain(&mut s));
        assert!(next
            .iter()
            .all(|r| r.method == "GET" && wire(r).2 == "16777216"));
        assert_eq!(kept_size(&s, f).as_deref(), Some("16777216"));
    }

    #[test]
    fn rejections() {
        let mut c = Config::new("https://x/u");
        c.max_file_size = Some(100);
        c.file_type = vec!["png".into(), "image/*".into()];
        c.max_files = Some(2);
        let mut s = Scheduler::new(c, 1);
        let rule = |r: Result<FileId, UploadError>| r.unwrap_err().rule.unwrap();
        assert_eq!(rule(s.add_file(0, meta("a.png", 0))), "minFileSize");
        assert_eq!(rule(s.add_file(0, meta("a.png", 101))), "maxFileSize");
        let mut pdf = meta("a.pdf", 5);
        pdf.mime_type = "application/pdf".into();
        let e = s.add_file(0, pdf).unwrap_err();
        assert_eq!(e.rule.as_deref(), Some("fileType"));
        assert_eq!(
            e.message,
            "`a.pdf` is not an accepted file type (png, image/*)"
        );
        let mut gif = meta("a.gif", 5);
        gif.mime_type = "image/gif".into();
        s.add_file(0, gif).unwrap();
        assert_eq!(rule(s.add_file(0, meta("a.gif", 5))), "duplicate");
        s.add_file(0, meta("b.png", 5)).unwrap();
        assert_eq!(rule(s.add_file(0, meta("c.png", 5))), "maxFiles");
        let mut t = Config::new("https://x/u");
        t.chunk_size = 1;
        let mut s = Scheduler::new(t, 1);
        assert_eq!(rule(s.add_file(0, meta("big", 1 << 33))), "chunkCount");
        assert_eq!(rule(s.add_file(0, meta("huge", 1 << 54))), "maxFileSize");
    }

    /// A scheduler under `protocol: 's3'` with `n` slots.
    fn s3_scheduler(slots: u32) -> Scheduler {
        s3_scheduler_retrying(slots, 8)
    }

    fn s3_scheduler_retrying(slots: u32, retries: u32) -> Scheduler {
        let mut c = Config::new("");
        c.s3 = Some(crate::engine::config::S3Options {
            sign_upload: false,
            post: false,
        });
        c.simultaneous_uploads = Some(slots);
        c.max_chunk_retries = retries;
        Scheduler::new(c, 1)
    }

    fn answer(s: &mut Scheduler, r: &RequestSpec, answer: Answer) {
        s.handle(
            1,
            Input::S3Answer {
                request: r.id,
                answer,
            },
        );
    }

    fn stored(s: &mut Scheduler, r: &RequestSpec) {
        let etag = Some(format!("\"e{}\"", r.chunk));
        s.handle(
            1,
            Input::PartAnswer {
                request: r.id,
                status: 200,
                etag,
                body: String::new(),
            },
        );
    }

    const MIB: u64 = 1 << 20;

    /// `protocol: 's3'` with `persist`, one slot.
    fn s3_persisting() -> Scheduler {
        let mut c = Config::new("");
        c.s3 = Some(crate::engine::config::S3Options {
            sign_upload: false,
            post: false,
        });
        c.simultaneous_uploads = Some(1);
        c.persist = true;
        Scheduler::new(c, 1)
    }

    /// A 12 MiB file (three parts) created as upload `u-1` with part 1 stored: its record.
    fn s3_record_after_one_part() -> Record {
        let mut s = s3_persisting();
        let f = s.add_file(0, meta("a.bin", 12 * MIB)).unwrap();
        s.handle(0, Input::Start);
        let create = sends(&drain(&mut s));
        assert_eq!(create[0].s3, Some(Call::Create));
        let created = Answer::Created {
            upload_id: "u-1".into(),
            key: "k/a.bin".into(),
        };
        answer(&mut s, &create[0], created);
        let actions = drain(&mut s);
        assert!(
            actions.contains(&Action::Keep {
                file: f,
                added: false
            }),
            "the created upload is written at once"
        );
        stored(&mut s, &sends(&actions)[0]);
        let r = s.record(f).unwrap();
        assert_eq!(
            s.file_state(f, "s3").as_deref(),
            Some("5242880\nu-1\nk/a.bin"),
            "part size, upload id, key"
        );
        // What the store keeps, read back.
        Record::decode(&r.encode()).unwrap()
    }

    #[test]
    fn pending_counts_an_object_storage_record_in_its_parts_and_never_calls_it_over() {
        // 12 MiB in 5 MiB parts (5 + 5 + 2); the page's own plan would be 5 + 7 MiB chunks.
        let mut c = s3_persisting().config().clone();
        c.chunk_size = 5 * MIB;
        let mut r = s3_record_after_one_part();
        r.confirmed.insert(2);
        assert_eq!(pending_progress(&c, &r), (10 * MIB, false));
        r.confirmed.insert(3);
        assert_eq!(
            pending_progress(&c, &r),
            (12 * MIB, false),
            "every part stored, but complete has not answered"
        );
        // Under options without `s3` too (the record's own state says what it is).
        let plain = Config::new("");
        assert_eq!(pending_progress(&plain, &r), (12 * MIB, false));
        // A Resumable.js upload whose every chunk is confirmed is over (the server assembled it).
        let mut plain5 = Config::new("");
        plain5.chunk_size = 5 * MIB;
        let mut chunks = Record::new(&plain5, "id", &meta("a.bin", 12 * MIB));
        chunks.confirmed.insert(1);
        assert_eq!(pending_progress(&plain5, &chunks), (5 * MIB, false));
        chunks.confirmed.insert(2);
        assert_eq!(pending_progress(&plain5, &chunks), (12 * MIB, true));
    }

    #[test]
    fn s3_resumed_from_its_record_lists_parts_then_sends_only_the_missing_ones() {
        let kept = s3_record_after_one_part();
        let mut s = s3_persisting();
        let f = s
            .add_file_kept(0, meta("a.bin", 12 * MIB), Some(kept.clone()))
            .unwrap();
        s.handle(0, Input::Start);
        let list = sends(&drain(&mut s));
        assert_eq!(list.len(), 1);
        let Some(Call::ListParts { .. }) = &list[0].s3 else {
            panic!("listParts first, got {list:?}");
        };
        assert_eq!(s.s3_upload(f).unwrap().upload_id, "u-1");
        assert_eq!(s.s3_upload(f).unwrap().key, "k/a.bin");
        let part1 = s3::Part {
            number: 1,
            etag: "\"e1\"".into(),
            size: 5 * MIB,
        };
        answer(&mut s, &list[0], Answer::Listed(vec![part1]));
        let mut numbers = Vec::new();
        loop {
            let next = sends(&drain(&mut s));
            let Some(r) = next.first() else { break };
            match &r.s3 {
                Some(Call::Part { .. }) => {
                    numbers.push(r.chunk);
                    stored(&mut s, r);
                }
                Some(Call::Complete { .. }) => {
                    answer(&mut s, r, Answer::Completed { location: None });
                    assert!(drain(&mut s).contains(&Action::Forget { key: kept.key() }));
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(numbers, [2, 3], "part 1 is not sent again");
        assert_eq!(s.file(f).unwrap().status, FileStatus::Success);
    }

    #[test]
    fn s3_resumed_upload_the_store_lost_starts_over_with_create() {
        let kept = s3_record_after_one_part();
        let mut s = s3_persisting();
        let f = s
            .add_file_kept(0, meta("a.bin", 12 * MIB), Some(kept))
            .unwrap();
        s.handle(0, Input::Start);
        let list = sends(&drain(&mut s));
        assert!(matches!(list[0].s3, Some(Call::ListParts { .. })));
        answer(&mut s, &list[0], Answer::UploadGone);
        assert_eq!(
            s.file_state(f, "s3").as_deref(),
            Some(""),
            "the lost upload is dropped"
        );
        let create = sends(&drain(&mut s));
        assert_eq!(create[0].s3, Some(Call::Create));
        let created = Answer::Created {
            upload_id: "u-2".into(),
            key: "k/a.bin".into(),
        };
        answer(&mut s, &create[0], created);
        assert_eq!(
            s.file_state(f, "s3").as_deref(),
            Some("5242880\nu-2\nk/a.bin")
        );
    }

    #[test]
    fn s3_record_of_another_part_size_creates_a_new_upload() {
        // chunkSize changed between the sessions: the kept upload's parts are 6 MiB, this
        // session cuts 5 MiB parts. The kept upload is not continued (the file's chunks are
        // cut before the record is read); a new one begins and the record keeps it.
        let mut kept = s3_record_after_one_part();
        kept.set_state("s3", "6291456\nu-1\nk/a.bin");
        let mut s = s3_persisting();
        let f = s
            .add_file_kept(0, meta("a.bin", 12 * MIB), Some(kept))
            .unwrap();
        s.handle(0, Input::Start);
        let create = sends(&drain(&mut s));
        assert_eq!(create[0].s3, Some(Call::Create));
        let created = Answer::Created {
            upload_id: "u-2".into(),
            key: "k/a.bin".into(),
        };
        answer(&mut s, &create[0], created);
        assert_eq!(
            s.file_state(f, "s3").as_deref(),
            Some("5242880\nu-2\nk/a.bin")
        );
        let part = sends(&drain(&mut s));
        assert_eq!((part[0].start, part[0].end), (0, 5 * MIB));
    }

    #[test]
    fn s3_cancel_of_a_kept_upload_aborts_it_and_deletes_the_record() {
        let kept = s3_record_after_one_part();
        let mut s = s3_persisting();
        let f = s
            .add_file_kept(0, meta("a.bin", 12 * MIB), Some(kept.clone()))
            .unwrap();
        s.handle(0, Input::Start);
        let list = sends(&drain(&mut s));
        answer(&mut s, &list[0], Answer::Listed(vec![]));
        drain(&mut s);
        s.handle(1, Input::CancelFile(f));
        let actions = drain(&mut s);
        let abort = Call::Abort {
            upload_id: "u-1".into(),
            key: "k/a.bin".into(),
        };
        assert!(
            sends(&actions)
                .iter()
                .any(|r| r.s3.as_ref() == Some(&abort)),
            "{actions:?}"
        );
        assert!(
            actions.contains(&Action::Forget { key: kept.key() }),
            "{actions:?}"
        );
    }

    /// `protocol: 's3-post'` with `persist`, one slot.
    fn s3_post_persisting() -> Scheduler {
        let mut c = Config::new("");
        c.s3 = Some(crate::engine::config::S3Options {
            sign_upload: false,
            post: true,
        });
        c.simultaneous_uploads = Some(1);
        c.persist = true;
        Scheduler::new(c, 1)
    }

    fn policy_at(url: &str, prefix: &str) -> Answer {
        Answer::Policy {
            url: url.into(),
            fields: vec![("policy".into(), "p".into())],
            key_prefix: prefix.into(),
        }
    }

    fn posted(s: &mut Scheduler, r: &RequestSpec) {
        s.handle(
            1,
            Input::PartAnswer {
                request: r.id,
                status: 204,
                etag: None,
                body: String::new(),
            },
        );
    }

    /// A 12 MiB file (three chunks) under the policy of prefix `p/a/` with chunk 1 stored: its
    /// record.
    fn s3_post_record_after_one_chunk() -> Record {
        let mut s = s3_post_persisting();
        let f = s.add_file(0, meta("a.bin", 12 * MIB)).unwrap();
        s.handle(0, Input::Start);
        let create = sends(&drain(&mut s));
        assert_eq!(
            create[0].s3,
            Some(Call::Policy {
                chunk_size: 5 * MIB,
                key_prefix: None
            })
        );
        answer(&mut s, &create[0], policy_at("http://store.test/b", "p/a/"));
        let actions = drain(&mut s);
        assert!(
            actions.contains(&Action::Keep {
                file: f,
                added: false
            }),
            "the prefix is written as soon as createUpload gives it"
        );
        posted(&mut s, &sends(&actions)[0]);
        let r = s.record(f).unwrap();
        assert_eq!(
            s.file_state(f, "s3").as_deref(),
            Some("5242880\n\np/a/"),
            "chunk size, no upload id, keyPrefix"
        );
        Record::decode(&r.encode()).unwrap()
    }

    #[test]
    fn s3_post_resumed_from_its_record_signs_the_kept_prefix_lists_once_then_sends_only_the_missing_chunks(
    ) {
        let kept = s3_post_record_after_one_chunk();
        let mut s = s3_post_persisting();
        let f = s
            .add_file_kept(0, meta("a.bin", 12 * MIB), Some(kept.clone()))
            .unwrap();
        s.handle(0, Input::Start);
        let create = sends(&drain(&mut s));
        assert_eq!(
            create.iter().map(|r| r.s3.clone()).collect::<Vec<_>>(),
            [Some(Call::Policy {
                chunk_size: 5 * MIB,
                key_prefix: Some("p/a/".into())
            })],
            "the policy (not kept) is signed again for the kept prefix, alone"
        );
        answer(
            &mut s,
            &create[0],
            policy_at("http://store.test/b2", "p/a/"),
        );
        let list = sends(&drain(&mut s));
        assert_eq!(
            list.iter().map(|r| r.s3.clone()).collect::<Vec<_>>(),
            [Some(Call::ListChunks {
                key_prefix: "p/a/".into()
            })]
        );
        answer(&mut s, &list[0], Answer::Chunks(vec![1]));
        let mut numbers = Vec::new();
        loop {
            let next = sends(&drain(&mut s));
            let Some(r) = next.first() else { break };
            match &r.s3 {
                Some(Call::Chunk) => {
                    assert_eq!(r.url, "http://store.test/b2", "under the new policy");
                    numbers.push(r.chunk);
                    posted(&mut s, r);
                }
                Some(Call::Compose { key_prefix, chunks }) => {
                    assert_eq!(
                        (key_prefix.as_str(), chunks.as_slice()),
                        ("p/a/", &[1, 2, 3][..])
                    );
                    answer(&mut s, r, Answer::Completed { location: None });
                    assert!(drain(&mut s).contains(&Action::Forget { key: kept.key() }));
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(numbers, [2, 3], "chunk 1 is not sent again");
        assert_eq!(s.file(f).unwrap().status, FileStatus::Success);
    }

    #[test]
    fn s3_post_record_of_another_chunk_size_starts_a_new_upload() {
        // The kept prefix holds 6 MiB chunks, this session cuts 5 MiB ones: a new prefix is
        // asked for (the old one is left to the app) and the record keeps it.
        let mut kept = s3_post_record_after_one_chunk();
        kept.set_state("s3", "6291456\n\np/a/");
        let mut s = s3_post_persisting();
        let f = s
            .add_file_kept(0, meta("a.bin", 12 * MIB), Some(kept))
            .unwrap();
        s.handle(0, Input::Start);
        let create = sends(&drain(&mut s));
        assert_eq!(
            create[0].s3,
            Some(Call::Policy {
                chunk_size: 5 * MIB,
                key_prefix: None
            })
        );
        answer(&mut s, &create[0], policy_at("http://store.test/b", "p/b/"));
        assert_eq!(s.file_state(f, "s3").as_deref(), Some("5242880\n\np/b/"));
        let chunk = sends(&drain(&mut s));
        assert_eq!((chunk[0].start, chunk[0].end), (0, 5 * MIB));
    }

    #[test]
    fn s3_post_cancel_of_a_kept_upload_discards_its_prefix_and_deletes_the_record() {
        let kept = s3_post_record_after_one_chunk();
        let mut s = s3_post_persisting();
        let f = s
            .add_file_kept(0, meta("a.bin", 12 * MIB), Some(kept.clone()))
            .unwrap();
        s.handle(0, Input::Start);
        drain(&mut s);
        // Cancelled before the policy was signed again: the kept prefix is still discarded.
        s.handle(1, Input::CancelFile(f));
        let actions = drain(&mut s);
        let discard = Call::Discard {
            key_prefix: "p/a/".into(),
        };
        assert!(
            sends(&actions)
                .iter()
                .any(|r| r.s3.as_ref() == Some(&discard)),
            "{actions:?}"
        );
        assert!(
            actions.contains(&Action::Forget { key: kept.key() }),
            "{actions:?}"
        );
    }

    #[test]
    fn s3_creates_sends_parts_in_parallel_then_completes() {
        let mut s = s3_scheduler(3);
        let f = s.add_file(0, meta("a.bin", 12 * MIB)).unwrap();
        s.handle(0, Input::Start);
        let create = sends(&drain(&mut s));
        assert_eq!(create.len(), 1, "create goes alone");
        assert_eq!(create[0].s3, Some(Call::Create));
        answer(
            &mut s,
            &create[0],
            Answer::Created {
                upload_id: "u".into(),
                key: "k".into(),
            },
        );
        let parts = sends(&drain(&mut s));
        let numbers: Vec<u32> = parts.iter().map(|r| r.chunk).collect();
        assert_eq!(
            numbers,
            [1, 2, 3],
            "three 5 MiB parts (the last 2 MiB) in flight at once"
        );
        assert_eq!((parts[2].start, parts[2].end), (10 * MIB, 12 * MIB));
        assert!(parts
            .iter()
            .all(|r| r.method == "PUT" && r.phase == Phase::Upload));
        for p in &parts {
            stored(&mut s, p);
        }
        let complete = sends(&drain(&mut s));
        let Some(Call::Complete { parts: done, .. }) = &complete[0].s3 else {
            panic!("complete expected, got {complete:?}");
        };
        assert_eq!(
            done.iter().map(|p| p.etag.as_str()).collect::<Vec<_>>(),
            ["\"e1\"", "\"e2\"", "\"e3\""]
        );
        assert_eq!(
            s.file(f).unwrap().status,
            FileStatus::Uploading,
            "not done before complete"
        );
        answer(
            &mut s,
            &complete[0],
            Answer::Completed {
                location: Some("https://b/k".into()),
            },
        );
        let events = drain(&mut s);
        assert!(events.contains(&Action::Event(Event::FileSuccess {
            file: f,
            body: "https://b/k".into()
        })));
        assert!(s.is_drained());
    }

    #[test]
    fn s3_post_one_policy_then_every_chunk_a_simple_post_in_parallel_then_compose() {
        let mut c = Config::new("");
        c.s3 = Some(crate::engine::config::S3Options {
            sign_upload: false,
            post: true,
        });
        c.simultaneous_uploads = Some(3);
        c.page_origin = Some("http://app.test".into());
        let mut s = Scheduler::new(c, 1);
        assert_eq!(
            s.preflight_report(Some("http://app.test")),
            (Prediction::default(), Prediction::default()),
            "no preflight at all"
        );
        let f = s.add_file(0, meta("a.bin", 12 * MIB)).unwrap();
        s.handle(0, Input::Start);
        let create = sends(&drain(&mut s));
        assert_eq!(create.len(), 1, "the policy is fetched alone, once");
        assert!(matches!(create[0].s3, Some(Call::Policy { .. })));
        answer(
            &mut s,
            &create[0],
            Answer::Policy {
                url: "http://store.test/b".into(),
                fields: vec![("policy".into(), "p".into())],
                key_prefix: "k/".into(),
            },
        );
        let chunks = sends(&drain(&mut s));
        assert_eq!(
            chunks.iter().map(|r| r.chunk).collect::<Vec<_>>(),
            [1, 2, 3],
            "every chunk in flight at once, no warm-up"
        );
        assert!(chunks
            .iter()
            .all(|r| r.method == "POST" && r.s3 == Some(Call::Chunk) && !r.preflight.preflight));
        for r in &chunks {
            s.handle(
                1,
                Input::PartAnswer {
                    request: r.id,
                    status: 204,
                    etag: None,
                    body: String::new(),
                },
            );
        }
        let compose = sends(&drain(&mut s));
        assert_eq!(
            compose[0].s3,
            Some(Call::Compose {
                key_prefix: "k/".into(),
                chunks: vec![1, 2, 3]
            })
        );
        answer(&mut s, &compose[0], Answer::Completed { location: None });
        drain(&mut s);
        assert_eq!(s.file(f).unwrap().status, FileStatus::Success);
    }

    #[test]
    fn s3_unreadable_etag_is_a_cors_error_of_phase_etag() {
        let mut s = s3_scheduler(1);
        let f = s.add_file(0, meta("a.bin", 6 * MIB)).unwrap();
        s.handle(0, Input::Start);
        let create = sends(&drain(&mut s));
        answer(
            &mut s,
            &create[0],
            Answer::Created {
                upload_id: "u".into(),
                key: "k".into(),
            },
        );
        let part = sends(&drain(&mut s));
        s.handle(
            1,
            Input::PartAnswer {
                request: part[0].id,
                status: 200,
                etag: None,
                body: String::new(),
            },
        );
        let e = s.file(f).unwrap().error.unwrap();
        assert_eq!((e.kind, e.phase), (ErrorKind::Cors, Some(Phase::Etag)));
        assert!(e.hint.unwrap().contains("ExposeHeaders"));
        assert!(s.is_drained(), "no hang: the run ends");
    }

    #[test]
    fn s3_expired_url_is_signed_again_once() {
        let mut s = s3_scheduler(1);
        let f = s.add_file(0, meta("a.bin", MIB)).unwrap();
        s.handle(0, Input::Start);
        let create = sends(&drain(&mut s));
        answer(
            &mut s,
            &create[0],
            Answer::Created {
                upload_id: "u".into(),
                key: "k".into(),
            },
        );
        let expired =
            "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>";
        for attempt in 1..=2 {
            let part = sends(&drain(&mut s));
            assert_eq!(
                (part.len(), part[0].attempt),
                (1, attempt),
                "signed and sent again at once"
            );
            s.handle(
                1,
                Input::PartAnswer {
                    request: part[0].id,
                    status: 403,
                    etag: None,
                    body: expired.into(),
                },
            );
        }
        let e = s.file(f).unwrap().error.unwrap();
        assert_eq!((e.kind, e.status), (ErrorKind::Http, Some(403)));
    }

    #[test]
    fn s3_checksum_is_handed_to_sign_part_and_bad_digest_is_an_integrity_retry() {
        let mut c = Config::new("");
        c.s3 = Some(crate::engine::config::S3Options {
            sign_upload: false,
            post: false,
        });
        c.simultaneous_uploads = Some(1);
        c.max_chunk_retries = 1;
        c.chunk_retry_interval_ms = 0;
        c.checksum = Some(integrity::Algorithm::Crc32c);
        let mut s = Scheduler::new(c, 1);
        let f = s.add_file(0, meta("a.bin", MIB)).unwrap();
        s.handle(0, Input::Start);
        let create = sends(&drain(&mut s));
        assert_eq!(create[0].checksum, None, "only parts are hashed");
        let created = Answer::Created {
            upload_id: "u".into(),
            key: "k".into(),
        };
        answer(&mut s, &create[0], created);
        let bad = "<Error><Code>BadDigest</Code></Error>";
        for attempt in 1..=2 {
            let part = sends(&drain(&mut s));
            assert_eq!(part[0].checksum, Some(integrity::Algorithm::Crc32c));
            let hashed = s.hashed(1, part[0].id, &[0xe3, 0x06, 0x92, 0x83]).unwrap();
            let Some(Call::Part { checksum, .. }) = hashed.s3 else {
                panic!("a part: {hashed:?}");
            };
            assert_eq!(
                checksum.as_deref(),
                Some(&[0xe3, 0x06, 0x92, 0x83][..]),
                "the CRC's big-endian bytes"
            );
            s.handle(
                1,
                Input::PartAnswer {
                    request: part[0].id,
                    status: 400,
                    etag: None,
                    body: bad.into(),
                },
            );
            if attempt == 1 {
                assert!(s.file(f).unwrap().error.is_none(), "sent again");
            }
        }
        let e = s.file(f).unwrap().error.unwrap();
        assert_eq!((e.kind, e.status), (ErrorKind::Integrity, Some(400)));
        assert_eq!((e.algorithm, e.attempts), (Some("crc32c"), 2));
    }

    #[test]
    fn s3_retry_lists_parts_and_sends_only_missing_ones_and_cancel_aborts() {
        let mut s = s3_scheduler_retrying(1, 0);
        let f = s.add_file(0, meta("a.bin", 15 * MIB)).unwrap();
        s.handle(0, Input::Start);
        let create = sends(&drain(&mut s));
        answer(
            &mut s,
            &create[0],
            Answer::Created {
                upload_id: "u".into(),
                key: "k".into(),
            },
        );
        let p1 = sends(&drain(&mut s));
        stored(&mut s, &p1[0]);
        let p2 = sends(&drain(&mut s));
        s.handle(
            1,
            Input::PartAnswer {
                request: p2[0].id,
                status: 503,
                etag: None,
                body: String::new(),
            },
        );
        assert_eq!(s.file(f).unwrap().status, FileStatus::Error);
        s.handle(2, Input::Start);
        let list = sends(&drain(&mut s));
        assert_eq!(
            list[0].s3,
            Some(Call::ListParts {
                upload_id: "u".into(),
                key: "k".into()
            })
        );
        let listed = vec![crate::engine::s3::Part {
            number: 1,
            etag: "\"e1\"".into(),
            size: 5 * MIB,
        }];
        answer(&mut s, &list[0], Answer::Listed(listed));
        let next = sends(&drain(&mut s));
        assert_eq!(next[0].chunk, 2, "part 1 is not sent again");
        assert_eq!(s.file(f).unwrap().confirmed_bytes, 5 * MIB);
        s.handle(3, Input::Cancel);
        let aborts: Vec<_> = sends(&drain(&mut s))
            .into_iter()
            .filter_map(|r| r.s3)
            .collect();
        assert_eq!(
            aborts,
            [Call::Abort {
                upload_id: "u".into(),
                key: "k".into()
            }]
        );
    }

    #[test]
    fn s3_callback_failures_back_off_then_fail_naming_the_callback() {
        let mut s = s3_scheduler_retrying(1, 2);
        let f = s.add_file(0, meta("a.bin", MIB)).unwrap();
        s.handle(0, Input::Start);
        let mut calls = 0;
        let mut now = 0;
        while s.file(f).unwrap().error.is_none() {
            let sent = sends(&drain(&mut s));
            if let Some(create) = sent.first() {
                assert_eq!(create.s3, Some(Call::Create));
                calls += 1;
                answer(&mut s, create, Answer::Failed("HTTP 500".into()));
            } else {
                now = s.poll_deadline().expect("a retry is waiting").max(now);
                s.handle_timeout(now);
            }
            assert!(calls <= 3, "gave up after its retries");
        }
        assert_eq!(calls, 3, "the first call and 2 retries");
        let e = s.file(f).unwrap().error.unwrap();
        assert_eq!(
            (e.kind, e.phase),
            (ErrorKind::Callback, Some(Phase::CreateUpload))
        );
        assert!(
            e.message.contains("createMultipartUpload failed: HTTP 500"),
            "{}",
            e.message
        );
    }

    #[test]
    fn s3_sign_upload_sends_a_one_part_file_as_one_put() {
        let mut c = Config::new("");
        c.s3 = Some(crate::engine::config::S3Options {
            sign_upload: true,
            post: false,
        });
        c.simultaneous_uploads = Some(1);
        let mut s = Scheduler::new(c, 1);
        let small = s.add_file(0, meta("small.bin", MIB)).unwrap();
        let big = s.add_file(0, meta("big.bin", 6 * MIB)).unwrap();
        s.handle(0, Input::Start);
        let first = sends(&drain(&mut s));
        assert_eq!(
            first[0].s3,
            Some(Call::Upload { size: MIB }),
            "no create for a one-part file"
        );
        assert_eq!(
            (first[0].method.as_str(), first[0].start, first[0].end),
            ("PUT", 0, MIB)
        );
        // No ETag readable: a single PUT does not need one.
        s.handle(
            1,
            Input::PartAnswer {
                request: first[0].id,
                status: 200,
                etag: None,
                body: String::new(),
            },
        );
        assert_eq!(s.file(small).unwrap().status, FileStatus::Success);
        let next = sends(&drain(&mut s));
        assert_eq!(
            next[0].s3,
            Some(Call::Create),
            "a file of two parts is a multipart upload"
        );
        assert_eq!(s.file(big).unwrap().status, FileStatus::Uploading);
    }

    #[test]
    fn s3_a_file_continued_from_a_kept_upload_lists_its_parts_first() {
        let mut s = s3_scheduler(1);
        let f = s.add_file(0, meta("a.bin", 12 * MIB)).unwrap();
        let mut kept = s.s3_upload(f).unwrap().clone();
        assert!(kept.upload_id.is_empty(), "nothing created yet");
        kept.upload_id = "u".into();
        kept.key = "k".into();
        let mut other_cut = kept.clone();
        other_cut.part_size = 8 * MIB;
        assert!(
            !s.resume_s3(f, other_cut),
            "parts cut another way cannot be listed"
        );
        assert!(s.resume_s3(f, kept));
        s.handle(0, Input::Start);
        let list = sends(&drain(&mut s));
        assert_eq!(
            list[0].s3,
            Some(Call::ListParts {
                upload_id: "u".into(),
                key: "k".into()
            })
        );
        let two = vec![
            crate::engine::s3::Part {
                number: 1,
                etag: "\"a\"".into(),
                size: 5 * MIB,
            },
            crate::engine::s3::Part {
                number: 3,
                etag: "\"c\"".into(),
                size: 2 * MIB,
            },
        ];
        answer(&mut s, &list[0], Answer::Listed(two));
        let next = sends(&drain(&mut s));
        assert_eq!(
            next.iter().map(|r| r.chunk).collect::<Vec<_>>(),
            [2],
            "only the missing part"
        );
        assert_eq!(s.s3_upload(f).unwrap().parts.len(), 2);
        assert!(
            !s.resume_s3(f, s.s3_upload(f).unwrap().clone()),
            "not once started"
        );
        stored(&mut s, &next[0]);
        let complete = sends(&drain(&mut s));
        assert!(
            matches!(&complete[0].s3, Some(Call::Complete { parts, .. }) if parts.len() == 3),
            "part 3 is not sent again: {complete:?}"
        );
    }

    #[test]
    fn s3_part_rules_refuse_files_before_sending() {
        let mut s = s3_scheduler(1);
        let e = s
            .add_file(0, meta("huge", 10_000 * 5 * 1024 * MIB + 1))
            .unwrap_err();
        assert_eq!(e.rule.as_deref(), Some("chunkSize"));
        let (_, upload) = s.preflight_report(Some("https://app.example"));
        assert!(upload.preflight && upload.reasons[0].contains("one preflight per part"));
    }

    #[test]
    fn first_and_last_order() {
        let mut c = Config::new("https://x/u");
        c.chunk_size = 10;
        c.test_chunks = TestChunks::Never;
        c.prioritize_first_and_last_chunk = true;
        c.simultaneous_uploads = Some(64);
        let mut s = Scheduler::new(c, 1);
        s.add_file(0, meta("a", 50)).unwrap();
        s.handle(0, Input::Start);
        let chunks: Vec<u32> = sends(&drain(&mut s)).iter().map(|r| r.chunk).collect();
        assert_eq!(chunks, vec![1, 5, 2, 3, 4]);
    }

    #[test]
    fn parallel_files_spread() {
        let mut c = Config::new("https://x/u");
        c.chunk_size = 10;
        c.test_chunks = TestChunks::Never;
        c.parallel_files = true;
        c.simultaneous_uploads = Some(4);
        let mut s = Scheduler::new(c.clone(), 1);
        let a = s.add_file(0, meta("a", 50)).unwrap();
        let b = s.add_file(0, meta("b", 50)).unwrap();
        s.handle(0, Input::Start);
        let files: Vec<FileId> = sends(&drain(&mut s)).iter().map(|r| r.file).collect();
        assert_eq!(files, vec![a, b, a, b]);
        c.parallel_files = false;
        let mut s = Scheduler::new(c, 1);
        let a = s.add_file(0, meta("a", 50)).unwrap();
        s.add_file(0, meta("b", 50)).unwrap();
        s.handle(0, Input::Start);
        let files: Vec<FileId> = sends(&drain(&mut s)).iter().map(|r| r.file).collect();
        assert_eq!(files, vec![a; 4]);
    }

    #[test]
    fn empty_start_completes_and_views() {
        let mut s = Scheduler::new(Config::new("https://x/u"), 1);
        s.handle(0, Input::Start);
        let a = drain(&mut s);
        assert_eq!(
            a,
            vec![
                Action::Event(Event::UploadStart),
                Action::Event(Event::Complete)
            ]
        );
        let mut c = Config::new("https://x/u").with_protocol(Protocol::Flow);
        c.test_chunks = TestChunks::Never;
        let mut s = Scheduler::new(c, 1);
        let f = s.add_file(0, meta("empty", 0)).unwrap();
        assert_eq!(s.file(f).unwrap().status, FileStatus::Queued);
        s.handle(0, Input::Start);
        let r = sends(&drain(&mut s));
        assert_eq!((r[0].start, r[0].end), (0, 0));
        s.handle(
            1,
            Input::Response {
                request: r[0].id,
                status: 200,
                body: "ok".into(),
                retry_after: None,
            },
        );
        let v = s.file(f).unwrap();
        assert_eq!(v.status, FileStatus::Success);
        assert_eq!(v.progress, 1.0);
        assert_eq!(s.progress(), 1.0);
        assert_eq!(s.find_by_identifier("0-empty"), Some(f));
        assert!(drain(&mut s).contains(&Action::Event(Event::Complete)));
    }

    #[test]
    fn byte_progress_and_speed() {
        let mut c = Config::new("https://x/u");
        c.chunk_size = 1000;
        c.test_chunks = TestChunks::Never;
        c.progress = ProgressMode::Bytes;
        c.page_origin = Some("https://x".into());
        let mut s = Scheduler::new(c, 1);
        let f = s.add_file(0, meta("a", 4000)).unwrap();
        s.handle(0, Input::Start);
        let r = sends(&drain(&mut s));
        assert!(r.iter().all(|r| r.upload_listener));
        assert!(!r[0].preflight.preflight, "same origin");
        s.handle(
            0,
            Input::BytesSent {
                request: r[0].id,
                sent: 0,
            },
        );
        s.handle(
            1000,
            Input::BytesSent {
                request: r[0].id,
                sent: 500,
            },
        );
        let v = s.file(f).unwrap();
        assert_eq!(v.in_flight_bytes, 500);
        assert_eq!(v.progress, 0.125);
        assert_eq!(v.speed_bps, 500.0);
        assert_eq!(v.eta_ms, Some(7000));
        assert_eq!(s.speed_bps(), 500.0);
        assert_eq!(s.eta_ms(), Some(7000));
        s.handle(
            2000,
            Input::Response {
                request: r[0].id,
                status: 200,
                body: String::new(),
                retry_after: None,
            },
        );
        assert_eq!(s.file(f).unwrap().confirmed_bytes, 1000);
    }

    /// Uploads `files` one-chunk files, answering in a shuffled order; asserts that each is
    /// sent once with no probe and the run completes once. The files the searches over files
    /// looked at, per request.
    fn files_looked_at_per_request(files: u64, parallel: bool) -> f64 {
        let mut c = Config::new("https://x/u");
        c.parallel_files = parallel;
        let mut s = Scheduler::new(c, 1);
        for i in 0..files {
            s.add_file(0, meta(&format!("f{i}"), 1 + i % 1024)).unwrap();
        }
        s.handle(0, Input::Start);
        let (mut posts, mut probes, mut completes) = (0u64, 0u64, 0u64);
        let mut queue: Vec<RequestId> = Vec::new();
        let mut rng = crate::engine::retry::Rng::new(3);
        let mut now = 0;
        loop {
            for a in drain(&mut s) {
                match a {
                    Action::Send(r) if r.phase == Phase::Test => probes += 1,
                    Action::Send(r) => {
                        posts += 1;
                        queue.push(r.id);
                    }
                    Action::Event(Event::Complete) => completes += 1,
                    _ => {}
                }
            }
            if queue.is_empty() {
                break;
            }
            let pick = usize::try_from(rng.next_u64() % queue.len() as u64).unwrap();
            let request = queue.swap_remove(pick);
            now += 1;
            s.handle(
                now,
                Input::Response {
                    request,
                    status: 200,
                    body: String::new(),
                    retry_after: None,
                },
            );
            assert!(s.poll_deadline().is_none());
        }
        assert_eq!((posts, probes, completes), (files, 0, 1));
        assert_eq!(s.progress(), 1.0);
        assert!(s.is_drained() && s.totals_are_true());
        s.visited.get() as f64 / files as f64
    }

    /// The work per file does not grow with the number of files: the searches look at about as
    /// many files per request with 10,000 files as with 1,000 (a search over every file would
    /// look at ~5,000 per request, ten times more than with 1,000).
    #[test]
    fn ten_thousand_files_cost_what_one_thousand_cost_per_file() {
        for parallel in [false, true] {
            let few = files_looked_at_per_request(1_000, parallel);
            let many = files_looked_at_per_request(10_000, parallel);
            assert!(
                many <= 30.0 && many <= few * 1.05,
                "files looked at per request: {few} with 1,000 files, {many} with 10,000 (parallelFiles {parallel})"
            );
        }
    }

    #[test]
    fn alternatives() {
        assert!(with_alternative("header `x` is not CORS-safelisted".into()).contains("query"));
        assert!(
            with_alternative("an `xhr.upload` progress listener forces a preflight".into())
                .contains("'chunk'")
        );
        assert!(type_matches(
            &[".PNG".to_ascii_lowercase()],
            &meta("x.png", 1)
        ));
        assert!(!type_matches(&["png".into()], &meta("png", 1)));
    }
}
