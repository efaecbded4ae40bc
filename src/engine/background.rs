//! `background`: handing a file's remaining chunks to the browser (a Background Fetch job run
//! by the app's service worker) and reading what the job did back into the file's record.
//!
//! The engine decides three things here, all without a browser:
//! - **What goes into a job** ([`job_chunks`]): every chunk the record does not list as
//!   confirmed, as the upload request the page would send. A job cannot probe first, so
//!   `testChunks` does not apply to it: the record is trusted, as under `testChunks: false`.
//! - **Reading the outcomes** ([`settle`]): the worker part appends one `o chunk<TAB>status`
//!   line per answered (or unanswered: status 0) chunk to the record's text; the next page
//!   folds them in. A success status confirms its chunk; anything else leaves it to send.
//! - **Retries** ([`retry_delays`], [`retryable`]): the worker part sends failed chunks again
//!   itself (Chromium lets only pages start jobs) after each delay, as many rounds as
//!   `maxChunkRetries` allows, each delay the backoff ceiling of that retry (no jitter: one
//!   round per file, not a crowd of chunks); what is left the page sends on its next visit.

use crate::engine::config::Config;
use crate::engine::persist::{Record, Runs};
use crate::engine::retry::RetryPolicy;

/// The longest wait between two jobs of one file: the service worker keeps the job's event
/// open while it waits, and browsers end a worker's event after a few minutes.
pub const MAX_JOB_DELAY_MS: u64 = 60_000;

/// The chunks (1-based, ascending) of a file of `count` chunks that a job sends: those not in
/// `confirmed`.
#[must_use]
pub fn job_chunks(count: u32, confirmed: &Runs) -> Vec<u32> {
    let mut v = Vec::new();
    for n in 1..=count {
        if !confirmed.contains(n) {
            v.push(n);
        }
    }
    v
}

/// Folds the job outcomes kept in `record` (see [`Record::outcomes`]) into its confirmed
/// chunks: a status in `successStatuses` confirms its chunk (within the file's `count`
/// chunks); any other outcome leaves it to send again.
pub fn settle(record: &mut Record, config: &Config, count: u32) {
    for (n, status) in core::mem::take(&mut record.outcomes) {
        let ok = u16::try_from(status).is_ok_and(|s| config.success_statuses.contains(&s));
        if ok && (1..=count).contains(&n) {
            record.confirmed.insert(n);
        }
    }
}

/// The wait before each retry round of a file whose job left chunks unsent: one entry per
/// retry `maxChunkRetries` allows.
pub fn retry_delays(config: &Config) -> impl Iterator<Item = u64> {
    let policy = RetryPolicy {
        max_retries: config.max_chunk_retries,
        base_interval_ms: config.chunk_retry_interval_ms,
        max_interval_ms: config.max_retry_interval_ms,
    };
    (1..=config.max_chunk_retries).map(move |n| policy.ceiling_ms(n).min(MAX_JOB_DELAY_MS))
}

/// Whether a failed chunk's `status` is worth another job: not one of `permanentErrors`
/// (those fail the file when the page sends the chunk itself).
#[must_use]
pub fn retryable(config: &Config, status: u16) -> bool {
    !config.success_statuses.contains(&status) && !config.permanent_errors.contains(&status)
}

/// What the worker part needs to retry a job's failed chunks, as the page glue reads it (text
/// costs less wasm than JS arrays): the retry delays ([`retry_delays`]), the success statuses
/// and the permanent errors ([`retryable`]), each comma-separated, tab between them.
#[must_use]
pub fn job_policy(config: &Config) -> String {
    let mut s = String::new();
    for (i, d) in retry_delays(config).enumerate() {
        push_number(&mut s, d, i);
    }
    for list in [&config.success_statuses, &config.permanent_errors] {
        s.push('\t');
        for (i, &n) in list.iter().enumerate() {
            push_number(&mut s, u64::from(n), i);
        }
    }
    s
}

/// Appends `n`, after a comma unless it is the list's first (`i` 0).
fn push_number(s: &mut String, n: u64, i: usize) {
    if i > 0 {
        s.push(',');
    }
    s.push_str(&n.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_sends_what_the_record_lacks() {
        let mut kept = Runs::default();
        assert_eq!(job_chunks(3, &kept), vec![1, 2, 3]);
        kept.insert(2);
        kept.insert(4);
        assert_eq!(job_chunks(4, &kept), vec![1, 3]);
        for n in 1..=4 {
            kept.insert(n);
        }
        assert!(job_chunks(4, &kept).is_empty());
    }

    #[test]
    fn outcomes_confirm_only_successes_within_the_file() {
        let config = Config::new("https://u/x");
        let mut r = Record::default();
        r.confirmed.insert(1);
        // A failure then a later success of chunk 3; 0 = no answer; 9 is past the file.
        r.outcomes = vec![
            (2, 503),
            (3, 500),
            (3, 201),
            (4, 0),
            (9, 200),
            (0, 200),
            (5, 200),
        ];
        settle(&mut r, &config, 5);
        assert_eq!(r.confirmed.runs(), &[(1, 1), (3, 3), (5, 5)]);
        assert!(r.outcomes.is_empty());
        assert_eq!(job_chunks(5, &r.confirmed), vec![2, 4]);
    }

    #[test]
    fn outcome_lines_round_trip_through_the_record_text() {
        let config = Config::new("https://u/x");
        let mut r = Record {
            scope: "s".into(),
            identifier: "i".into(),
            name: "n".into(),
            size: 3,
            ..Record::default()
        };
        // What the worker part appends to the stored text.
        let text = r.encode() + "\no 1\t200\no 2\t503\no 3\t200";
        let mut read = Record::decode(&text).unwrap();
        settle(&mut read, &config, 3);
        r.confirmed.insert(1);
        r.confirmed.insert(3);
        assert_eq!(read, r);
        assert!(Record::decode(&(r.encode() + "\no 1\tx")).is_none());
    }

    #[test]
    fn retries_are_bounded_by_max_chunk_retries_with_growing_delays() {
        let mut c = Config::new("https://u/x");
        let delays = |c: &Config| retry_delays(c).collect::<Vec<_>>();
        assert_eq!(
            delays(&c),
            vec![500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]
        );
        c.max_chunk_retries = 0;
        assert!(delays(&c).is_empty());
        c.max_chunk_retries = 2;
        c.max_retry_interval_ms = 3_600_000;
        c.chunk_retry_interval_ms = 50_000;
        assert_eq!(delays(&c), vec![50_000, MAX_JOB_DELAY_MS]);
        assert!(retryable(&c, 503) && retryable(&c, 0));
        assert!(!retryable(&c, 200) && !retryable(&c, 415));
    }

    #[test]
    fn hand_over_takes_the_file_with_its_unconfirmed_chunks_as_uploads() {
        use crate::engine::params::RequestBody;
        use crate::engine::{
            Action, FileMeta, FileStatus, Phase, Scheduler, TestChunks, UploadMode,
        };
        let mut c = Config::new("https://u/x");
        c.persist = true;
        c.background = true;
        c.chunk_size = 10;
        c.test_chunks = TestChunks::Auto;
        c.upload_mode = UploadMode::Multipart;
        let meta = FileMeta {
            name: "a.bin".into(),
            size: 30,
            ..FileMeta::default()
        };
        let mut s = Scheduler::new(c.clone(), 1);
        let mut kept = Record::new(&c, &s.identifier_for(&meta), &meta);
        kept.confirmed.insert(2);
        let id = s.add_file_kept(0, meta.clone(), Some(kept)).unwrap();
        let record = s.record(id).unwrap();
        let mut handed = s.hand_over();
        assert!(s.files().is_empty() && s.hand_over().is_empty());
        let (file, key, name, specs) = handed.pop().unwrap();
        assert_eq!((file, key, name.as_str()), (id, record.key(), "a.bin"));
        assert_eq!(
            job_policy(&c),
            "500,1000,2000,4000,8000,16000,30000,30000\t200,201\t400,401,403,404,409,415,500,501"
        );
        // Chunks 1 and 3, each as the upload the page would send: multipart, its parameters.
        let sent: Vec<_> = specs
            .iter()
            .map(|r| (r.chunk, r.start, r.end, r.phase, r.method.as_str()))
            .collect();
        assert_eq!(
            sent,
            vec![
                (1, 0, 10, Phase::Upload, "POST"),
                (3, 20, 30, Phase::Upload, "POST")
            ]
        );
        let RequestBody::Multipart {
            fields, file_name, ..
        } = &specs[1].body
        else {
            panic!("{:?}", specs[1].body);
        };
        assert_eq!(file_name, "a.bin");
        assert!(fields.contains(&("resumableChunkNumber".into(), "3".into())));
        // The record was not forgotten: it belongs to the job now.
        while let Some(a) = s.poll_action() {
            assert!(
                !matches!(a, Action::Forget { .. } | Action::Send(_)),
                "{a:?}"
            );
        }
        // A file paused on its own stays in the page's queue: a job could not be paused.
        let mut q = Scheduler::new(c.clone(), 3);
        let held = q.add_file(0, meta.clone()).unwrap();
        assert!(q.control_file(0, held, crate::engine::FileControl::Pause));
        assert!(q.hand_over().is_empty());
        assert_eq!(q.file(held).unwrap().status, FileStatus::Paused);
        // The next page: a record the job completed resumes as done, with nothing sent.
        let mut done = record;
        done.outcomes = vec![(1, 200), (3, 201)];
        settle(&mut done, &c, 3);
        let mut next = Scheduler::new(c, 2);
        let id = next.add_file_kept(0, meta, Some(done)).unwrap();
        assert_eq!(next.file(id).unwrap().status, FileStatus::Success);
        while let Some(a) = next.poll_action() {
            assert!(!matches!(a, Action::Send(_)), "{a:?}");
        }
    }
}
