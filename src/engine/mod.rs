//! The upload engine: pure Rust, no browser APIs, no clock or RNG reads.
//!
//! Every upload decision is made here, from facts handed in (a file's size and name, a
//! response, a failure, the time) to actions handed out (send this request, wait until then,
//! report this progress, fail this file). The browser driver owns all I/O.
//!
//! | Module | Owns |
//! |---|---|
//! | [`config`] | options parsing and validation, defaults |
//! | [`plan`] | the chunk plan (`u64`, exact to 2^53−1 bytes) |
//! | [`params`] | dialects, parameters, identifiers, request rendering |
//! | [`preflight`] | the CORS preflight predictor and failure hints |
//! | [`retry`] | backoff with jitter, `Retry-After`, the seeded RNG |
//! | [`classify`] | status / transport failure → outcome |
//! | [`concurrency`] | how many requests in flight under `simultaneousUploads: 'auto'` |
//! | [`verdict`] | CORS block or failed connection: request shapes, checks, the verdict |
//! | [`integrity`] | checksum algorithms, chunk checksums per file, the whole-file digest, mismatch answers |
//! | [`error`] | [`UploadError`], [`ErrorKind`], [`Phase`] |
//! | [`background`] | Background Fetch jobs: which chunks go, reading their outcomes, retries |
//! | [`persist`] | durable resume: the kept record, its matching and resume rules |
//! | [`progress`] | speed and ETA |
//! | [`s3`] | direct-to-S3 multipart: part rules, per-file upload state, next step, part answers |
//! | [`float`] | `trunc`/`round` for JS numbers (not in `core`) |
//! | `identifiers` | the index of files by identifier |
//! | [`scheduler`] | the state machine: [`Scheduler`], [`Input`], [`Action`], [`Event`] |

// `UploadError` is returned by value as the JS-facing contract; errors are rare and off the hot
// path, so its size does not matter.
#![allow(clippy::result_large_err)]

pub mod background;
pub mod classify;
pub mod concurrency;
pub mod config;
pub mod error;
pub mod float;
pub(crate) mod identifiers;
pub mod integrity;
pub mod params;
pub mod persist;
pub mod plan;
pub mod preflight;
pub mod progress;
pub mod retry;
pub mod s3;
pub mod scheduler;
pub(crate) mod text;
pub mod vec_map;
pub mod verdict;

pub use classify::Failure;
pub use config::{
    Config, IdentifierMode, OptionValue, ProgressMode, Protocol, TestChunks, UploadMode,
};
pub use error::{ErrorKind, Phase, UploadError};
pub use params::{
    default_identifier, unique_identifier, FileId, FileMeta, RequestBody, RequestId, RequestSpec,
};
pub use plan::{ChunkPlan, MAX_SAFE_INTEGER};
pub use preflight::{predict, BodyKind, Prediction, RequestShape};
pub use scheduler::{Action, Event, FileControl, FileStatus, FileView, Input, Scheduler};
pub use vec_map::VecMap;
pub use verdict::{Check, CorsShape, Observation};
