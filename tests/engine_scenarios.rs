//! Scenario tests of the upload engine against a scripted server with a simulated clock.
//! They run natively and on wasm32 (where `usize` is 32-bit).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[path = "support/engine_harness.rs"]
mod harness;

use harness::{Harness, Reply};
use resumable_wasm::engine::concurrency::HttpProtocol;
use resumable_wasm::engine::scheduler::OFFLINE_RECHECK_MS;
use resumable_wasm::engine::verdict::CORS_EVIDENCE;
use resumable_wasm::engine::{
    Config, ErrorKind, Event, Failure, FileControl, FileId, FileStatus, Input, Observation, Phase,
    Protocol, RequestBody, RequestId, RequestSpec, TestChunks,
};

const PAGE: &str = "https://app.example";

fn config(chunk: u64) -> Config {
    let mut c = Config::new("https://up.example/upload");
    c.chunk_size = chunk;
    c.page_origin = Some(PAGE.into());
    c
}

fn ok(status: u16) -> impl FnMut(&resumable_wasm::engine::RequestSpec) -> Reply {
    move |_| Reply::Status(status)
}

#[test]
fn fresh_upload_auto_probes_once() {
    let mut h = Harness::new(config(10), 1);
    let f = h.add("a.bin", 50);
    h.start();
    assert!(h.has_event(|e| *e == Event::UploadStart));
    let probe = h.next_request();
    assert_eq!(probe.phase, Phase::Test);
    assert_eq!(probe.method, "GET");
    assert_eq!(probe.chunk, 1);
    assert_eq!(probe.body, RequestBody::None);
    assert_eq!(probe.param("resumableChunkNumber").as_deref(), Some("1"));
    assert_eq!(probe.param("resumableTotalChunks").as_deref(), Some("5"));
    assert!(h.try_next().is_none(), "the first probe goes alone");
    h.respond(probe.id, 204);
    let posts = h.take_all();
    assert_eq!(posts.len(), 3, "fans out to the 3 slots");
    assert!(posts
        .iter()
        .all(|r| r.phase == Phase::Upload && r.method == "POST"));
    assert_eq!(posts[0].chunk, 1);
    // Multipart POSTs share one constant URL: the parameters travel in the body only.
    assert!(posts.iter().all(|r| r.url == "https://up.example/upload"));
    for r in posts {
        h.respond(r.id, 200);
    }
    assert!(!h.drive_bounded(100, ok(200)));
    assert_eq!(h.count_sent(Phase::Test), 1);
    assert_eq!(h.count_sent(Phase::Upload), 5);
    assert_eq!(h.s.file(f).unwrap().status, FileStatus::Success);
    assert_eq!(h.count_events(|e| *e == Event::Complete), 1);
    assert!(h.has_event(|e| matches!(e, Event::FileSuccess { file, .. } if *file == f)));
    assert!(!h.has_event(|e| matches!(e, Event::PreflightWarning { .. })));
    assert_eq!(h.s.progress(), 1.0);
    assert!(h.max_in_flight <= 3);
}

#[test]
fn resume_with_some_chunks_present() {
    let mut h = Harness::new(config(10), 2);
    let f = h.add("a.bin", 50);
    h.start();
    let present = [1u32, 2, 3];
    assert!(!h.drive_bounded(100, |r| {
        match r.phase {
            Phase::Test if present.contains(&r.chunk) => Reply::Status(200),
            Phase::Test => Reply::Status(204),
            Phase::Upload => {
                assert!(!present.contains(&r.chunk), "chunk {} re-sent", r.chunk);
                Reply::Status(200)
            }
            other => unreachable!("no S3 request under these options: {other:?}"),
        }
    }));
    assert_eq!(
        h.count_sent(Phase::Test),
        5,
        "chunk 1 was present: probe the rest"
    );
    assert_eq!(h.count_sent(Phase::Upload), 2);
    let chunks: Vec<u32> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::ChunkSuccess { chunk, .. } => Some(*chunk),
            _ => None,
        })
        .collect();
    assert_eq!(chunks.len(), 5);
    assert_eq!(h.s.file(f).unwrap().status, FileStatus::Success);
}

#[test]
fn test_chunks_true_and_false() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Always;
    let mut h = Harness::new(c.clone(), 3);
    h.add("a", 30);
    h.start();
    assert!(
        !h.drive_bounded(100, |r| Reply::Status(if r.phase == Phase::Test {
            204
        } else {
            200
        }))
    );
    assert_eq!(
        (h.count_sent(Phase::Test), h.count_sent(Phase::Upload)),
        (3, 3)
    );
    c.test_chunks = TestChunks::Never;
    let mut h = Harness::new(c, 3);
    h.add("a", 30);
    h.start();
    assert!(!h.drive_bounded(100, ok(200)));
    assert_eq!(
        (h.count_sent(Phase::Test), h.count_sent(Phase::Upload)),
        (0, 3)
    );
}

#[test]
fn flow_404_probe_fails_only_that_file() {
    let c = config(10).with_protocol(Protocol::Flow);
    let mut h = Harness::new(c, 4);
    let a = h.add("a", 20);
    let b = h.add("b", 20);
    h.start();
    let p = h.next_request();
    assert_eq!(p.param("flowChunkNumber").as_deref(), Some("1"));
    assert_eq!(p.file, a);
    h.reply(
        p.id,
        Reply::Full {
            status: 404,
            body: "not found".into(),
            retry_after: None,
        },
    );
    let err = h
        .events
        .iter()
        .find_map(|e| match e {
            Event::FileError { file, error } if *file == a => Some(error.clone()),
            _ => None,
        })
        .expect("file a failed");
    assert_eq!(err.kind, ErrorKind::Http);
    assert_eq!(err.status, Some(404));
    assert_eq!(err.body.as_deref(), Some("not found"));
    assert_eq!(err.phase, Some(Phase::Test));
    assert_eq!(err.chunk, Some(1));
    assert_eq!(err.attempts, 1);
    assert_eq!(err.method.as_deref(), Some("GET"));
    assert!(err.url.unwrap().contains("flowChunkNumber=1"));
    assert!(err.message.contains("404"), "{}", err.message);
    assert!(
        !h.drive_bounded(100, |r| Reply::Status(if r.phase == Phase::Test {
            204
        } else {
            200
        }))
    );
    assert_eq!(h.s.file(a).unwrap().status, FileStatus::Error);
    assert_eq!(h.s.file(b).unwrap().status, FileStatus::Success);
    assert_eq!(h.count_events(|e| *e == Event::Complete), 1);
}

#[test]
fn resumable_404_probe_means_absent() {
    let mut h = Harness::new(config(10), 5);
    let a = h.add("a", 10);
    h.start();
    assert!(
        !h.drive_bounded(100, |r| Reply::Status(if r.phase == Phase::Test {
            404
        } else {
            200
        }))
    );
    assert_eq!(h.s.file(a).unwrap().status, FileStatus::Success);
}

#[test]
fn retries_back_off_then_reprobe() {
    let mut c = config(10);
    c.chunk_retry_interval_ms = 1000;
    c.max_retry_interval_ms = 4000;
    let mut h = Harness::new(c, 6);
    // One chunk: under 'auto' it is sent without a probe first.
    let f = h.add("a", 10);
    h.start();
    let mut ceilings = vec![1000u64, 2000, 4000, 4000];
    ceilings.reverse();
    for n in 0..4 {
        let r = h.next_request();
        assert_eq!(r.phase, if n == 0 { Phase::Upload } else { Phase::Test });
        if r.phase == Phase::Test {
            // After a failed attempt the chunk is probed again before it is re-sent.
            h.respond(r.id, 204);
            let post = h.next_request();
            assert_eq!(post.phase, Phase::Upload);
            h.respond(post.id, 503);
        } else {
            h.respond(r.id, 503);
        }
        let delay = h
            .events
            .iter()
            .rev()
            .find_map(|e| match e {
                Event::FileRetry {
                    delay_ms, error, ..
                } => {
                    assert_eq!(error.kind, ErrorKind::Http);
                    assert_eq!(error.status, Some(503));
                    Some(*delay_ms)
                }
                _ => None,
            })
            .unwrap();
        assert!(
            delay <= ceilings.pop().unwrap(),
            "delay {delay} too long at retry {n}"
        );
        assert_eq!(h.s.poll_deadline(), Some(h.now + delay));
        if delay > 0 {
            h.advance_ms(delay - 1);
            assert!(h.try_next().is_none(), "resent before the backoff elapsed");
            h.advance_ms(1);
        }
    }
    let r = h.next_request();
    assert_eq!(r.phase, Phase::Test);
    h.respond(r.id, 200); // the last failed POST had in fact been stored
    assert_eq!(h.s.file(f).unwrap().status, FileStatus::Success);
    assert_eq!(h.count_events(|e| matches!(e, Event::FileRetry { .. })), 4);
}

#[test]
fn retries_exhausted_fail_the_file() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    c.max_chunk_retries = 2;
    let mut h = Harness::new(c, 7);
    let f = h.add("a", 10);
    h.start();
    assert!(!h.drive_bounded(100, |_| Reply::Fail(Failure::NoResponse)));
    assert_eq!(h.count_sent(Phase::Upload), 3);
    let v = h.s.file(f).unwrap();
    assert_eq!(v.status, FileStatus::Error);
    let e = v.error.unwrap();
    assert_eq!(e.kind, ErrorKind::Network);
    assert_eq!(e.attempts, 3);
    assert!(
        e.message.starts_with("gave up after 3 attempts"),
        "{}",
        e.message
    );
}

#[test]
fn retry_after_is_a_minimum() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    let mut h = Harness::new(c, 8);
    h.add("a", 10);
    h.start();
    let r = h.next_request();
    h.reply(
        r.id,
        Reply::Full {
            status: 429,
            body: "slow down".into(),
            retry_after: Some("7".into()),
        },
    );
    let delay = h
        .events
        .iter()
        .find_map(|e| match e {
            Event::FileRetry { delay_ms, .. } => Some(*delay_ms),
            _ => None,
        })
        .unwrap();
    assert!(delay >= 7000, "{delay}");
    h.advance_ms(6999);
    assert!(h.try_next().is_none());
    h.advance_ms(delay - 6999);
    let again = h.next_request();
    assert_eq!(again.attempt, 2);
}

#[test]
fn permanent_status_fails_at_once() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    let mut h = Harness::new(c, 9);
    let a = h.add("a", 30);
    h.start();
    let r = h.next_request();
    h.reply(
        r.id,
        Reply::Full {
            status: 415,
            body: "no".into(),
            retry_after: None,
        },
    );
    // The file's other requests are aborted.
    assert_eq!(h.aborted.len(), 2);
    let e = h.s.file(a).unwrap().error.unwrap();
    assert_eq!(
        (e.kind, e.status, e.phase),
        (ErrorKind::Http, Some(415), Some(Phase::Upload))
    );
    assert!(!h.has_event(|e| matches!(e, Event::FileRetry { .. })));
    assert!(h.in_flight.is_empty());
    assert_eq!(h.count_events(|e| *e == Event::Complete), 1);
}

#[test]
fn a_new_start_retries_failed_files() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    let mut h = Harness::new(c, 9);
    let a = h.add("a", 20);
    h.start();
    let r = h.next_request();
    h.respond(r.id, 500);
    h.drain();
    assert_eq!(h.s.file(a).unwrap().status, FileStatus::Error);
    h.start();
    for r in h.take_all() {
        h.respond(r.id, 200);
    }
    h.drain();
    let view = h.s.file(a).unwrap();
    assert_eq!(view.status, FileStatus::Success);
    assert!(view.error.is_none());
    assert_eq!(view.confirmed_bytes, 20);
}

#[test]
fn offline_pauses_without_spending_retries() {
    let mut c = config(10);
    c.max_chunk_retries = 0;
    let mut h = Harness::new(c, 10);
    let f = h.add("a", 20);
    h.start();
    let p = h.next_request();
    h.respond(p.id, 204);
    let posts = h.take_all();
    assert_eq!(posts.len(), 2);
    h.fail(posts[0].id, Failure::Offline);
    h.input(Input::Offline);
    h.respond(posts[1].id, 200);
    assert!(h.try_next().is_none(), "nothing is sent while offline");
    assert!(!h.has_event(|e| matches!(e, Event::FileRetry { .. })));
    h.advance_ms(OFFLINE_RECHECK_MS - 1);
    assert!(h.try_next().is_none());
    h.input(Input::Online);
    let r = h.next_request();
    assert_eq!(r.chunk, 1);
    assert_eq!(r.phase, Phase::Test, "re-probed after the failed attempt");
    h.respond(r.id, 204);
    assert!(
        !h.drive_bounded(100, |r| Reply::Status(if r.phase == Phase::Test {
            204
        } else {
            200
        }))
    );
    assert_eq!(h.s.file(f).unwrap().status, FileStatus::Success);
}

/// README (Errors, `network`; Known limitations, Offline): without an `online` event the queue
/// tries again 30 s after a request failed offline — and 30 s after each such failure — without
/// spending retries.
#[test]
fn offline_is_rechecked_after_30_s_without_an_online_event() {
    assert_eq!(OFFLINE_RECHECK_MS, 30_000);
    let mut c = config(10);
    c.max_chunk_retries = 0;
    let mut h = Harness::new(c, 10);
    let f = h.add("a", 20);
    h.start();
    let p = h.next_request();
    h.respond(p.id, 204);
    let posts = h.take_all();
    assert_eq!(posts.len(), 2);
    h.fail(posts[0].id, Failure::Offline);
    h.respond(posts[1].id, 200);
    let failed_at = h.now;
    assert_eq!(h.s.poll_deadline(), Some(failed_at + OFFLINE_RECHECK_MS));
    h.advance_ms(OFFLINE_RECHECK_MS - 1);
    assert!(
        h.try_next().is_none(),
        "no `online` event, and not 30 s yet"
    );
    h.advance_ms(1);
    let r = h.next_request();
    assert_eq!(
        (r.chunk, r.phase),
        (1, Phase::Test),
        "the re-check re-probes the chunk"
    );
    assert!(h.try_next().is_none());
    // Still offline: the re-check's probe fails offline too; the next re-check is 30 s later.
    h.fail(r.id, Failure::Offline);
    assert!(h.try_next().is_none());
    assert_eq!(h.s.poll_deadline(), Some(h.now + OFFLINE_RECHECK_MS));
    h.advance_ms(OFFLINE_RECHECK_MS);
    let r = h.next_request();
    assert_eq!((r.chunk, r.phase), (1, Phase::Test));
    h.respond(r.id, 204);
    assert!(!h.drive_bounded(100, |_| Reply::Status(200)));
    assert_eq!(h.s.file(f).unwrap().status, FileStatus::Success);
    assert!(
        !h.has_event(|e| matches!(e, Event::FileRetry { .. })),
        "going offline spends no retry"
    );
    assert_eq!(h.s.poll_deadline(), None, "no re-check is left once online");
}

/// The batch sizes of the CORS checks of one request, in order.
fn check_batches(h: &Harness, request: resumable_wasm::engine::RequestId) -> Vec<u32> {
    h.checks
        .iter()
        .filter(|c| c.request == request)
        .map(|c| c.pairs)
        .collect()
}

#[test]
fn a_cors_block_is_declared_after_checks_on_the_first_attempt() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    c.with_credentials = true;
    c.headers = vec![("Authorization".into(), "Bearer t".into())];
    let mut h = Harness::new(c, 11);
    let a = h.add("a", 30);
    h.check_all(Observation::Blocked);
    h.start();
    assert!(!h.drive_bounded(1000, |_| Reply::Fail(Failure::NoResponse)));
    assert_eq!(h.sent.len(), 1, "no retry of a CORS block\n{}", h.dump());
    let first = h.sent[0].id;
    assert_eq!(
        check_batches(&h, first),
        vec![1, 1, 2, 4, 8],
        "{}",
        h.dump()
    );
    // The checks mirror the request's shape: a GET with its URL, headers and credentials.
    let check = &h.checks[0];
    assert_eq!(check.method, "GET");
    assert_eq!(check.url, h.sent[0].url);
    assert_eq!(check.headers, h.sent[0].headers);
    assert!(check.with_credentials);
    let e = h.s.file(a).unwrap().error.unwrap();
    assert_eq!(e.kind, ErrorKind::Cors);
    assert_eq!(e.attempts, 1);
    assert!(e.message.contains("16 requests"), "{}", e.message);
    let hint = e.hint.unwrap();
    assert!(hint.contains("must answer 2xx"), "{hint}");
    assert!(hint.contains("authorization"), "{hint}");
    assert!(
        hint.contains("Access-Control-Allow-Credentials: true"),
        "{hint}"
    );
    assert!(hint.contains("`https://app.example`"), "{hint}");
    assert!(!h.has_event(|e| matches!(e, Event::FileRetry { .. })));
}

#[test]
fn a_blocked_post_after_a_readable_probe_is_cors_within_two_attempts() {
    let mut h = Harness::new(config(10), 13);
    let a = h.add("a", 30);
    h.check_all(Observation::Blocked);
    h.start();
    assert!(!h.drive_bounded(1000, |r| if r.phase == Phase::Test {
        Reply::Status(204)
    } else {
        Reply::Fail(Failure::NoResponse)
    }));
    let posts = h.sent.iter().filter(|r| r.phase == Phase::Upload).count();
    assert_eq!(posts, 3, "the 3 parallel POSTs, no retry\n{}", h.dump());
    let e = h.s.file(a).unwrap().error.unwrap();
    assert_eq!(e.kind, ErrorKind::Cors);
    assert_eq!(e.phase, Some(Phase::Upload));
    // Attempts count every request for the chunk: the probe and the POST.
    assert!(e.attempts <= 2, "{e:?}");
    // The three failures checked in parallel and pooled their evidence: at most one fresh
    // pair each beyond what the verdict needs.
    let pairs: u32 = h.checks.iter().map(|c| c.pairs).sum();
    assert!(pairs <= CORS_EVIDENCE + 3, "{pairs} pairs\n{}", h.dump());
}

#[test]
fn parallel_cors_failures_pool_their_checks_and_other_files_go_on() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    let mut h = Harness::new(c, 21);
    let a = h.add("a", 60);
    let b = h.add("b", 10);
    h.start();
    let first = h.take_all();
    assert_eq!(first.len(), 3, "simple requests: no warm-up");
    // The three check at the same time: answers come back interleaved.
    h.checker = Box::new(|_| None);
    for r in &first {
        h.fail(r.id, Failure::NoResponse);
    }
    while let Some(c) = h.held_checks.first().cloned() {
        h.answer_check(c.request, vec![Observation::Blocked; c.pairs as usize]);
    }
    let pairs: u32 = h.checks.iter().map(|c| c.pairs).sum();
    assert!(
        pairs <= CORS_EVIDENCE + 3,
        "pooled evidence: {pairs} pairs\n{}",
        h.dump()
    );
    h.check_all(Observation::Blocked);
    assert!(!h.drive_bounded(100, |r| if r.file == a {
        Reply::Fail(Failure::NoResponse)
    } else {
        Reply::Status(200)
    }));
    let to_a = h.sent.iter().filter(|r| r.file == a).count();
    assert_eq!(to_a, 3, "the 3 parallel requests only\n{}", h.dump());
    let e = h.s.file(a).unwrap().error.unwrap();
    assert_eq!(e.kind, ErrorKind::Cors);
    assert!(e
        .hint
        .unwrap()
        .contains("lacks Access-Control-Allow-Origin"));
    assert_eq!(h.s.file(b).unwrap().status, FileStatus::Success);
    // The file failed once: the other two checks were aborted with it.
    assert_eq!(h.count_events(|e| matches!(e, Event::FileError { .. })), 1);
    assert!(h.checking.is_empty());
}

#[test]
fn a_readable_check_makes_it_a_network_retry() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    let mut h = Harness::new(c, 22);
    let a = h.add("a", 30);
    h.start();
    let first = h.take_all();
    // The first pair is blocked, the second readable: a dropped connection, not CORS.
    let mut answers = vec![vec![Observation::Blocked], vec![Observation::Readable]].into_iter();
    h.checker = Box::new(move |_| answers.next());
    h.fail(first[0].id, Failure::NoResponse);
    assert_eq!(check_batches(&h, first[0].id), vec![1, 1]);
    let retry = h
        .events
        .iter()
        .find_map(|e| match e {
            Event::FileRetry { error, .. } => Some(error.clone()),
            _ => None,
        })
        .expect("a network retry");
    assert_eq!(retry.kind, ErrorKind::Network);
    assert!(retry.message.contains("not CORS"), "{}", retry.message);
    h.check_all(Observation::Readable);
    h.respond(first[1].id, 200);
    h.respond(first[2].id, 200);
    assert!(!h.drive_bounded(100, ok(200)));
    assert_eq!(h.s.file(a).unwrap().status, FileStatus::Success);
}

#[test]
fn an_unreachable_server_is_a_network_error_after_the_retries() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    c.max_chunk_retries = 2;
    let mut h = Harness::new(c, 23);
    let a = h.add("a", 10);
    h.check_all(Observation::Inconclusive);
    h.start();
    assert!(!h.drive_bounded(100, |_| Reply::Fail(Failure::NoResponse)));
    let e = h.s.file(a).unwrap().error.unwrap();
    assert_eq!(e.kind, ErrorKind::Network);
    assert_eq!(e.attempts, 3);
    assert!(
        h.checks.iter().all(|c| c.pairs == 1),
        "one pair per failure"
    );
}

#[test]
fn no_checks_same_origin_or_with_diagnose_cors_off() {
    for same_origin in [true, false] {
        let mut c = config(10);
        c.test_chunks = TestChunks::Never;
        c.max_chunk_retries = 1;
        if same_origin {
            c.target = "https://app.example/upload".into();
        } else {
            c.diagnose_cors = false;
        }
        let mut h = Harness::new(c, 24);
        let a = h.add("a", 10);
        h.check_all(Observation::Blocked);
        h.start();
        assert!(!h.drive_bounded(100, |_| Reply::Fail(Failure::NoResponse)));
        assert!(h.checks.is_empty());
        assert_eq!(h.s.file(a).unwrap().error.unwrap().kind, ErrorKind::Network);
    }
}

/// Outside a browser (Node, Deno, Bun) nobody enforces CORS: a request without an answer is a
/// failed connection. Even when every check would come back "blocked", none is made and the
/// verdict is `network`, never `cors`.
#[test]
fn no_browser_no_checks_and_never_cors() {
    let mut c = config(10);
    c.page_origin = None;
    c.cors_enforced = false;
    c.test_chunks = TestChunks::Never;
    c.max_chunk_retries = 1;
    let mut h = Harness::new(c, 26);
    let a = h.add("a", 10);
    h.check_all(Observation::Blocked);
    h.start();
    assert!(!h.drive_bounded(100, |_| Reply::Fail(Failure::NoResponse)));
    assert!(h.checks.is_empty(), "{} check batches", h.checks.len());
    let e = h.s.file(a).unwrap().error.unwrap();
    assert_eq!(e.kind, ErrorKind::Network);
    assert_eq!(e.attempts, 2, "the first attempt and one retry");
    assert!(e.hint.is_none());
}

/// Outside a browser nothing is preflighted: no warning, an empty report, and a request that a
/// browser would preflight does not go alone first.
#[test]
fn no_browser_nothing_is_preflighted() {
    let mut c = config(10);
    c.page_origin = None;
    c.cors_enforced = false;
    c.test_chunks = TestChunks::Never;
    c.headers = vec![("Authorization".into(), "Bearer t".into())];
    c.upload_method = "PUT".into();
    c.simultaneous_uploads = Some(3);
    let mut h = Harness::new(c, 27);
    h.add("a", 100);
    let (test, upload) = h.s.preflight_report(None);
    assert_eq!((test.preflight, upload.preflight), (false, false));
    assert!(test.reasons.is_empty() && upload.reasons.is_empty());
    h.start();
    assert!(!h.has_event(|e| matches!(e, Event::PreflightWarning { .. })));
    let first = h.take_all();
    assert_eq!(first.len(), 3, "no warm-up: the slots fill at once");
    assert!(first.iter().all(|r| !r.preflight.preflight));
}

#[test]
fn cancel_during_a_check_aborts_it() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    let mut h = Harness::new(c, 25);
    let a = h.add("a", 10);
    h.checker = Box::new(|_| None);
    h.start();
    let r = h.next_request();
    h.fail(r.id, Failure::NoResponse);
    assert_eq!(h.held_checks.len(), 1);
    assert!(!h.s.is_drained(), "a checked request keeps its slot");
    h.input(Input::Cancel);
    assert_eq!(h.aborted, vec![r.id]);
    assert!(h.s.is_drained());
    // A late answer is ignored.
    h.answer_check(r.id, vec![Observation::Blocked]);
    assert_eq!(h.s.file(a).unwrap().status, FileStatus::Cancelled);
    assert!(h.s.file(a).unwrap().error.is_none());
}

#[test]
fn cors_breaking_mid_run_is_caught_and_a_fix_is_seen() {
    // The server's CORS works (readable answers), then breaks for every request, then is fixed.
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    c.simultaneous_uploads = Some(1);
    let mut h = Harness::new(c, 26);
    let a = h.add("a", 40);
    let b = h.add("b", 20);
    h.start();
    let r = h.next_request();
    h.respond(r.id, 200);
    h.check_all(Observation::Blocked);
    let r = h.next_request();
    h.fail(r.id, Failure::NoResponse);
    let e = h.s.file(a).unwrap().error.unwrap();
    assert_eq!((e.kind, e.attempts), (ErrorKind::Cors, 1));
    // File b: the shape is known blocked, so one fresh pair decides; the server was fixed.
    let r = h.next_request();
    assert_eq!(r.file, b);
    h.check_all(Observation::Readable);
    h.fail(r.id, Failure::NoResponse);
    assert_eq!(check_batches(&h, r.id), vec![1]);
    assert!(!h.drive_bounded(100, ok(200)));
    assert_eq!(h.s.file(b).unwrap().status, FileStatus::Success);
    // upload() again retries file a from scratch.
    h.start();
    assert!(!h.drive_bounded(100, ok(200)));
    assert_eq!(h.s.file(a).unwrap().status, FileStatus::Success);
}

#[test]
fn random_drops_are_never_called_cors() {
    // Half of all requests and of all check requests are lost at random, as with the fixture's
    // --drop-rate 0.5: a check pair is blocked with probability 1/4.
    let mut rng = resumable_wasm::engine::retry::Rng::new(99);
    let mut coin = move || rng.next_u64() & 1 == 0;
    // Three slots, as before 'auto' (which shrinks to one request under such losses).
    // Losing 9 attempts of a chunk in a row (1 in 512) is likely somewhere among ~150 chunks:
    // enough retries that no file gives up, which is not what this test is about.
    let mut c = config(10);
    c.simultaneous_uploads = Some(3);
    c.max_chunk_retries = 40;
    let mut h = Harness::new(c, 27);
    let files: Vec<_> = (0..20)
        .map(|i| h.add(&format!("f{i}"), 10 + 13 * i))
        .collect();
    let mut pair_rng = resumable_wasm::engine::retry::Rng::new(5);
    h.checker = Box::new(move |c| {
        Some(
            (0..c.pairs)
                .map(|_| match pair_rng.next_u64() % 4 {
                    0 | 1 => Observation::Readable,
                    2 => Observation::Inconclusive,
                    _ => Observation::Blocked,
                })
                .collect(),
        )
    });
    h.start();
    let mut stored = std::collections::BTreeSet::new();
    assert!(!h.drive_bounded(100_000, |r| {
        if coin() {
            return Reply::Fail(Failure::NoResponse);
        }
        match r.phase {
            Phase::Test => Reply::Status(if stored.contains(&(r.file, r.chunk)) {
                200
            } else {
                204
            }),
            Phase::Upload => {
                stored.insert((r.file, r.chunk));
                Reply::Status(200)
            }
            other => unreachable!("no S3 request under these options: {other:?}"),
        }
    }));
    let failures = h.sent.len() - stored.len();
    assert!(failures > 100, "{failures} failures");
    for f in files {
        let v = h.s.file(f).unwrap();
        assert_eq!(v.status, FileStatus::Success, "{:?}", v.error);
    }
    assert!(!h.has_event(
        |e| matches!(e, Event::FileRetry { error, .. } if error.kind == ErrorKind::Cors)
    ));
}

#[test]
fn an_unreadable_file_fails_at_once_as_rejected() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    let mut h = Harness::new(c, 14);
    let a = h.add("a", 30);
    let b = h.add("b", 10);
    h.start();
    assert!(!h.drive_bounded(100, |r| if r.file == a {
        Reply::Fail(Failure::Unreadable)
    } else {
        Reply::Status(200)
    }));
    let e = h.s.file(a).unwrap().error.unwrap();
    assert_eq!(e.kind, ErrorKind::Rejected);
    assert_eq!(e.rule.as_deref(), Some("readable"));
    assert!(!h.has_event(|e| matches!(e, Event::FileRetry { .. })));
    assert_eq!(h.s.file(b).unwrap().status, FileStatus::Success);
}

#[test]
fn an_unsendable_request_fails_its_file_as_invalid_without_retries() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    let mut h = Harness::new(c, 15);
    let a = h.add("a", 30);
    h.start();
    assert!(!h.drive_bounded(100, |_| Reply::Fail(Failure::Unsendable)));
    let e = h.s.file(a).unwrap().error.unwrap();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert_eq!(e.phase, Some(Phase::Upload));
    assert!(!h.has_event(|e| matches!(e, Event::FileRetry { .. })));
}

#[test]
fn warm_up_sends_the_first_preflighted_request_alone() {
    let mut c = config(10);
    c.headers = vec![("Authorization".into(), "Bearer t".into())];
    let mut h = Harness::new(c, 12);
    h.add("a", 100);
    h.start();
    let warning = h
        .events
        .iter()
        .find_map(|e| match e {
            Event::PreflightWarning { reasons } => Some(reasons.clone()),
            _ => None,
        })
        .expect("a preflight warning");
    assert!(
        warning
            .iter()
            .any(|r| r.contains("authorization") && r.contains("query")),
        "{warning:?}"
    );
    let probe = h.next_request();
    assert!(probe.preflight.preflight);
    assert!(h.try_next().is_none());
    h.respond(probe.id, 204);
    let first = h.next_request();
    assert_eq!(first.phase, Phase::Upload);
    assert!(
        h.try_next().is_none(),
        "the first preflighted POST goes alone"
    );
    h.respond(first.id, 200);
    assert_eq!(h.take_all().len(), 3, "then the rest fan out");
}

#[test]
fn warm_up_retries_alone_after_a_failed_first_request() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    c.headers = vec![("X-Token".into(), "t".into())];
    c.chunk_retry_interval_ms = 0;
    // Fixed: under 'auto' the failure would also halve the window.
    c.simultaneous_uploads = Some(3);
    let mut h = Harness::new(c, 13);
    h.add("a", 100);
    h.start();
    let first = h.next_request();
    assert!(h.try_next().is_none());
    h.fail(first.id, Failure::NoResponse);
    let again = h.next_request();
    assert!(
        h.try_next().is_none(),
        "still alone: the preflight cache is not warm yet"
    );
    h.respond(again.id, 200);
    assert_eq!(h.take_all().len(), 3);
}

#[test]
fn no_warm_up_same_origin() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    c.headers = vec![("Authorization".into(), "x".into())];
    c.page_origin = Some("https://up.example".into());
    let mut h = Harness::new(c, 14);
    h.add("a", 100);
    h.start();
    assert_eq!(h.take_all().len(), 3);
    assert!(!h.has_event(|e| matches!(e, Event::PreflightWarning { .. })));
}

#[test]
fn pause_and_resume() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    let mut h = Harness::new(c, 15);
    let f = h.add("a", 60);
    h.start();
    let first = h.take_all();
    assert_eq!(first.len(), 3);
    h.input(Input::Pause);
    assert!(h.has_event(|e| *e == Event::Pause));
    assert_eq!(h.s.file(f).unwrap().status, FileStatus::Paused);
    for r in &first {
        h.respond(r.id, 200);
    }
    assert!(h.try_next().is_none(), "no new request while paused");
    assert_eq!(
        h.s.file(f).unwrap().confirmed_bytes,
        30,
        "answers during the pause count"
    );
    assert!(!h.has_event(|e| *e == Event::Complete));
    h.input(Input::Resume);
    assert!(!h.drive_bounded(100, ok(200)));
    assert_eq!(h.count_sent(Phase::Upload), 6);
    assert_eq!(h.count_events(|e| *e == Event::Complete), 1);
    assert_eq!(h.count_events(|e| *e == Event::UploadStart), 1);
}

#[test]
fn cancel_aborts_everything() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    let mut h = Harness::new(c, 16);
    let a = h.add("a", 60);
    let b = h.add("b", 60);
    h.start();
    let sent = h.take_all();
    h.input(Input::Cancel);
    assert_eq!(h.aborted.len(), sent.len());
    assert!(h.in_flight.is_empty());
    let tail: Vec<&Event> = h.events.iter().rev().take(2).collect();
    assert_eq!(tail, vec![&Event::Complete, &Event::Cancel]);
    assert_eq!(h.s.file(a).unwrap().status, FileStatus::Cancelled);
    assert_eq!(h.s.file(b).unwrap().status, FileStatus::Cancelled);
    assert!(h.s.is_drained());
    // Late answers are ignored.
    h.respond(sent[0].id, 200);
    assert!(h.try_next().is_none());
}

#[test]
fn timeout_abort_is_a_timeout() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    c.timeout_ms = 5000;
    let mut h = Harness::new(c, 17);
    h.add("a", 10);
    h.start();
    let r = h.next_request();
    assert_eq!(r.timeout_ms, Some(5000));
    h.now += 5000;
    h.fail(r.id, Failure::Aborted);
    let kind = h
        .events
        .iter()
        .find_map(|e| match e {
            Event::FileRetry { error, .. } => Some(error.kind),
            _ => None,
        })
        .unwrap();
    assert_eq!(kind, ErrorKind::Timeout);
}

/// README, Errors: `aborted` is a request the browser aborted without the uploader asking
/// (not a timeout): retried, and the file's error once retries run out. `cancel()` is not an
/// error: the file is `cancelled` with none and no `FileError` event.
#[test]
fn an_abort_nobody_asked_for_is_an_aborted_error_and_a_cancel_is_none() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    c.max_chunk_retries = 1;
    let mut h = Harness::new(c, 18);
    let a = h.add("a", 10);
    h.start();
    let r = h.next_request();
    h.fail(r.id, Failure::Aborted);
    assert!(h.has_event(
        |e| matches!(e, Event::FileRetry { error, .. } if error.kind == ErrorKind::Aborted)
    ));
    h.advance_to_deadline();
    let r = h.next_request();
    h.fail(r.id, Failure::Aborted);
    let view = h.s.file(a).unwrap();
    assert_eq!(view.status, FileStatus::Error);
    assert_eq!(view.error.map(|e| e.kind), Some(ErrorKind::Aborted));

    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    let mut h = Harness::new(c, 19);
    let b = h.add("b", 30);
    h.start();
    assert!(!h.take_all().is_empty());
    h.input(Input::Cancel);
    let view = h.s.file(b).unwrap();
    assert_eq!(view.status, FileStatus::Cancelled);
    assert!(view.error.is_none(), "a cancelled file has no error");
    assert!(!h.has_event(|e| matches!(e, Event::FileError { .. })));
}

#[test]
fn remove_file_and_restart() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    let mut h = Harness::new(c, 18);
    let a = h.add("a", 30);
    h.start();
    let sent = h.take_all();
    h.input(Input::RemoveFile(a));
    assert_eq!(h.aborted.len(), sent.len());
    assert!(h.s.file(a).is_none());
    assert_eq!(h.count_events(|e| *e == Event::Complete), 1);
    let b = h.add("b", 10);
    assert!(h.try_next().is_none(), "not started yet");
    h.start();
    assert!(!h.drive_bounded(10, ok(200)));
    assert_eq!(h.s.file(b).unwrap().status, FileStatus::Success);
    assert_eq!(h.count_events(|e| *e == Event::Complete), 2);
    assert_eq!(h.count_events(|e| *e == Event::UploadStart), 2);
}

#[test]
fn octet_mode_carries_parameters_in_the_url() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    c.upload_mode = resumable_wasm::engine::UploadMode::Octet;
    let mut h = Harness::new(c, 19);
    h.add("a b.bin", 25);
    h.start();
    let r = h.next_request();
    assert_eq!(r.body, RequestBody::Raw);
    assert!(r.url.contains("resumableChunkNumber=1"));
    assert!(r.url.contains("resumableFilename=a%20b.bin"));
    assert!(r.headers.is_empty());
    assert!(!r.preflight.preflight);
}

#[test]
fn huge_file_offsets_are_exact() {
    let mut c = config(1 << 30);
    c.test_chunks = TestChunks::Never;
    c.force_chunk_size = true;
    let mut h = Harness::new(c, 20);
    let size = (1u64 << 53) - 1;
    h.add("huge", size);
    h.start();
    let r = h.next_request();
    assert_eq!((r.start, r.end), (0, 1 << 30));
    assert_eq!(
        r.param("resumableTotalSize").as_deref(),
        Some("9007199254740991")
    );
    assert_eq!(r.param("resumableTotalChunks").as_deref(), Some("8388608"));
}

#[test]
fn first_and_last_chunk_first_with_auto_probe() {
    let mut c = config(10);
    c.prioritize_first_and_last_chunk = true;
    c.simultaneous_uploads = Some(1);
    let mut h = Harness::new(c, 23);
    h.add("a", 50);
    h.start();
    assert!(
        !h.drive_bounded(100, |r| Reply::Status(if r.phase == Phase::Test {
            204
        } else {
            200
        }))
    );
    let order: Vec<(Phase, u32)> = h.sent.iter().map(|r| (r.phase, r.chunk)).collect();
    assert_eq!(
        order,
        vec![
            (Phase::Test, 1),
            (Phase::Upload, 1),
            (Phase::Upload, 5),
            (Phase::Upload, 2),
            (Phase::Upload, 3),
            (Phase::Upload, 4),
        ]
    );
}

#[test]
fn options_to_requests_flow_multipart() {
    use resumable_wasm::engine::OptionValue;
    let opts: Vec<(String, OptionValue)> = vec![
        (
            "target".into(),
            OptionValue::Str("https://up.example/flow".into()),
        ),
        ("protocol".into(), OptionValue::Str("flow".into())),
        ("chunkSize".into(), OptionValue::number(4.0)),
        ("testChunks".into(), OptionValue::Bool(false)),
        ("fileParameterName".into(), OptionValue::Str("blob".into())),
        (
            "query".into(),
            OptionValue::Map(vec![("tenant".into(), OptionValue::Str("t1".into()))]),
        ),
    ];
    let keys: Vec<String> = opts.iter().map(|(k, _)| k.clone()).collect();
    let get = |k: &str| {
        opts.iter()
            .find(|(n, _)| n == k)
            .map_or(OptionValue::Missing, |(_, v)| v.clone())
    };
    let c = Config::from_options(&keys, &get, Some(PAGE)).unwrap();
    let mut h = Harness::new(c, 24);
    h.add("x.bin", 9);
    h.start();
    let r = h.next_request();
    assert_eq!(r.url, "https://up.example/flow?tenant=t1");
    match &r.body {
        RequestBody::Multipart {
            fields,
            file_field,
            file_name,
        } => {
            assert_eq!(file_field, "blob");
            assert_eq!(file_name, "x.bin");
            let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(
                names,
                vec![
                    "tenant",
                    "flowChunkNumber",
                    "flowChunkSize",
                    "flowCurrentChunkSize",
                    "flowTotalSize",
                    "flowIdentifier",
                    "flowFilename",
                    "flowRelativePath",
                    "flowTotalChunks",
                ]
            );
        }
        b => panic!("{b:?}"),
    }
    assert_eq!(r.param("flowTotalChunks").as_deref(), Some("2"));
    assert_eq!(r.param("flowIdentifier").as_deref(), Some("9-xbin"));
    // The last chunk absorbs the remainder: 4 + 5 bytes.
    let second = h.next_request();
    assert_eq!((second.start, second.end), (4, 9));
    // Flow counts 202 as success.
    h.respond(r.id, 202);
    h.respond(second.id, 202);
    assert!(h.s.is_drained());
}

#[test]
fn dynamic_headers_rerender_and_repredict() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    c.headers_fn = true;
    c.query_fn = true;
    let mut h = Harness::new(c.clone(), 25);
    h.add("a", 10);
    h.start();
    let r = h.next_request();
    assert!(!r.preflight.preflight);
    let d = r.with_dynamic(
        &c,
        &[("sig".into(), "s1".into())],
        &[("Authorization".into(), "Bearer t".into())],
    );
    assert_eq!(d.url, "https://up.example/upload?sig=s1");
    assert_eq!(d.param("sig").as_deref(), Some("s1"));
    assert!(d.preflight.preflight);
    assert!(d.preflight.reasons[0].contains("authorization"));
}

#[test]
fn parallel_files_share_slots() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    c.parallel_files = true;
    c.simultaneous_uploads = Some(2);
    let mut h = Harness::new(c, 26);
    let a = h.add("a", 40);
    let b = h.add("b", 40);
    h.start();
    let first = h.take_all();
    assert_eq!(first.iter().map(|r| r.file).collect::<Vec<_>>(), vec![a, b]);
    for r in first {
        h.respond(r.id, 200);
    }
    assert!(!h.drive_bounded(100, ok(200)));
    assert!(h.max_in_flight <= 2);
    assert_eq!(h.s.file(a).unwrap().status, FileStatus::Success);
    assert_eq!(h.s.file(b).unwrap().status, FileStatus::Success);
}

// ---- per-file pause, resume, retry and cancel ----

/// Requests of `file` among `sent`.
fn of_file(sent: &[RequestSpec], file: FileId) -> Vec<RequestSpec> {
    sent.iter().filter(|r| r.file == file).cloned().collect()
}

#[test]
fn a_paused_file_gets_no_request_and_its_slots_go_to_the_others() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    c.simultaneous_uploads = Some(2);
    let mut h = Harness::new(c, 30);
    let a = h.add("a", 60);
    let b = h.add("b", 30);
    h.start();
    let first = h.take_all();
    assert_eq!(first.iter().map(|r| r.file).collect::<Vec<_>>(), vec![a, a]);
    assert!(h.control(a, FileControl::Pause));
    assert!(!h.control(a, FileControl::Pause), "already paused");
    assert_eq!(h.s.file(a).unwrap().status, FileStatus::Paused);
    assert_eq!(h.s.file(b).unwrap().status, FileStatus::Queued);
    assert!(h.aborted.is_empty(), "requests in flight are not aborted");
    assert!(h.try_next().is_none(), "no slot is free yet");
    // Each answer of the paused file frees a slot, which goes to the other file at once.
    let before = h.sent.len();
    h.respond(first[0].id, 200);
    assert_eq!(h.queue.front().map(|r| r.file), Some(b));
    h.respond(first[1].id, 200);
    assert_eq!(h.queue.back().map(|r| r.file), Some(b));
    assert!(!h.drive_bounded(100, ok(200)));
    assert!(of_file(&h.sent[before..], a).is_empty(), "{}", h.dump());
    let va = h.s.file(a).unwrap();
    assert_eq!(va.status, FileStatus::Paused);
    assert_eq!(va.confirmed_bytes, 20, "answers after the pause count");
    assert_eq!(h.s.file(b).unwrap().status, FileStatus::Success);
    // The run ends around the paused file.
    assert_eq!(h.count_events(|e| *e == Event::Complete), 1);
    assert!(h.s.is_drained());
    assert!(!h.s.is_uploading());
    assert!(h.s.poll_deadline().is_none());
    assert!(!h.control(b, FileControl::Pause), "a finished file");
    // Resuming it after the run ended starts a new run that sends only what is missing.
    assert!(h.control(a, FileControl::Resume));
    assert!(!h.control(a, FileControl::Resume), "not paused any more");
    assert_eq!(h.count_events(|e| *e == Event::UploadStart), 2);
    assert!(!h.drive_bounded(100, ok(200)));
    assert_eq!(h.s.file(a).unwrap().status, FileStatus::Success);
    assert_eq!(of_file(&h.sent, a).len(), 6, "each chunk of a sent once");
    assert_eq!(of_file(&h.sent, b).len(), 3);
    assert_eq!(h.count_events(|e| *e == Event::Complete), 2);
}

#[test]
fn resuming_one_file_does_not_resume_another() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    c.parallel_files = true;
    c.simultaneous_uploads = Some(3);
    let mut h = Harness::new(c, 31);
    let a = h.add("a", 40);
    let b = h.add("b", 40);
    let d = h.add("d", 40);
    h.start();
    assert!(h.control(a, FileControl::Pause));
    assert!(h.control(b, FileControl::Pause));
    let before = h.sent.len();
    // Answer everything until only the paused files are left.
    assert!(!h.drive_bounded(100, ok(200)));
    let after_pause = h.sent[before..].to_vec();
    assert!(after_pause.iter().all(|r| r.file == d), "{}", h.dump());
    assert_eq!(h.s.file(d).unwrap().status, FileStatus::Success);
    assert!(h.control(a, FileControl::Resume));
    let before = h.sent.len();
    assert!(!h.drive_bounded(100, ok(200)));
    assert!(h.sent[before..].iter().all(|r| r.file == a), "{}", h.dump());
    assert_eq!(h.s.file(a).unwrap().status, FileStatus::Success);
    assert_eq!(h.s.file(b).unwrap().status, FileStatus::Paused);
    assert_eq!(h.count_events(|e| *e == Event::Complete), 2);
}

#[test]
fn retrying_a_file_resets_only_its_own_retry_counters() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    c.parallel_files = true;
    c.simultaneous_uploads = Some(2);
    c.max_chunk_retries = 1;
    let mut h = Harness::new(c, 32);
    let a = h.add("a", 10);
    let b = h.add("b", 10);
    h.start();
    let first = h.take_all();
    assert_eq!(first.iter().map(|r| r.file).collect::<Vec<_>>(), vec![a, b]);
    assert!(!h.control(a, FileControl::Retry), "an uploading file");
    // Both spend their one retry.
    for r in &first {
        h.respond(r.id, 503);
    }
    while h.queue.len() < 2 {
        assert!(h.advance_to_deadline(), "{}", h.dump());
    }
    let second = h.take_all();
    let b2 = second.iter().find(|r| r.file == b).unwrap().clone();
    let a2 = second.iter().find(|r| r.file == a).unwrap().clone();
    h.respond(b2.id, 503);
    assert_eq!(h.s.file(b).unwrap().status, FileStatus::Error);
    // Retrying b starts it over with fresh counters ...
    assert!(h.control(b, FileControl::Retry));
    assert_eq!(h.s.file(b).unwrap().status, FileStatus::Uploading);
    assert!(h.s.file(b).unwrap().error.is_none());
    let b3 = h.next_request();
    assert_eq!((b3.file, b3.attempt), (b, 1));
    // ... but not a's: a's next failure exhausts its retries.
    h.respond(a2.id, 503);
    assert_eq!(h.s.file(a).unwrap().status, FileStatus::Error);
    let retries_of_b =
        |h: &Harness| h.count_events(|e| matches!(e, Event::FileRetry { file, .. } if *file == b));
    let before = retries_of_b(&h);
    h.respond(b3.id, 503);
    assert_eq!(retries_of_b(&h), before + 1, "b may retry again");
    assert!(h.advance_to_deadline());
    let b4 = h.next_request();
    h.respond(b4.id, 200);
    assert_eq!(h.s.file(b).unwrap().status, FileStatus::Success);
    assert!(!h.control(b, FileControl::Retry), "a successful file");
    assert_eq!(h.s.file(a).unwrap().status, FileStatus::Error);
}

#[test]
fn cancelling_a_file_aborts_only_its_requests_and_a_retry_probes_what_the_server_has() {
    use std::collections::BTreeSet;
    let mut c = config(10);
    c.simultaneous_uploads = Some(3);
    let mut h = Harness::new(c, 33);
    let a = h.add("a", 80);
    let b = h.add("b", 30);
    h.start();
    let mut stored: BTreeSet<(FileId, u32)> = BTreeSet::new();
    let answer = |stored: &mut BTreeSet<(FileId, u32)>, r: &RequestSpec| match r.phase {
        Phase::Test => Reply::Status(if stored.contains(&(r.file, r.chunk)) {
            200
        } else {
            204
        }),
        Phase::Upload => {
            stored.insert((r.file, r.chunk));
            Reply::Status(200)
        }
        other => unreachable!("no S3 request under these options: {other:?}"),
    };
    while h.s.file(a).unwrap().confirmed_bytes < 30 {
        let r = h.next_request();
        let reply = answer(&mut stored, &r);
        h.reply(r.id, reply);
    }
    let in_flight_a: Vec<RequestId> = h
        .in_flight
        .iter()
        .copied()
        .filter(|id| h.sent.iter().any(|r| r.id == *id && r.file == a))
        .collect();
    assert!(h.control(a, FileControl::Cancel));
    assert!(!h.control(a, FileControl::Cancel), "already cancelled");
    assert!(!h.control(a, FileControl::Pause), "a cancelled file");
    assert_eq!(h.aborted, in_flight_a, "exactly a's requests are aborted");
    assert!(
        h.queue.iter().all(|r| r.file == b),
        "the freed slots went to b: {}",
        h.dump()
    );
    assert_eq!(h.s.file(a).unwrap().status, FileStatus::Cancelled);
    let before = h.sent.len();
    assert!(!h.drive_bounded(100, |r| answer(&mut stored, r)));
    assert!(of_file(&h.sent[before..], a).is_empty());
    assert_eq!(h.s.file(b).unwrap().status, FileStatus::Success);
    assert_eq!(h.count_events(|e| *e == Event::Complete), 1);
    // Retry: every chunk is probed (chunk 1 is on the server), and only missing ones are sent.
    let had: BTreeSet<u32> = stored
        .iter()
        .filter(|(f, _)| *f == a)
        .map(|(_, n)| *n)
        .collect();
    assert!(had.len() >= 3 && had.len() < 8, "{had:?}");
    let before = h.sent.len();
    assert!(h.control(a, FileControl::Retry));
    assert_eq!(h.s.file(a).unwrap().confirmed_bytes, 0, "starts over");
    assert!(!h.drive_bounded(100, |r| answer(&mut stored, r)));
    let retried = of_file(&h.sent[before..], a);
    let probes: Vec<u32> = retried
        .iter()
        .filter(|r| r.phase == Phase::Test)
        .map(|r| r.chunk)
        .collect();
    let uploads: BTreeSet<u32> = retried
        .iter()
        .filter(|r| r.phase == Phase::Upload)
        .map(|r| r.chunk)
        .collect();
    assert_eq!(probes.len(), 8, "every chunk probed once: {probes:?}");
    assert_eq!(uploads, (1..=8).filter(|n| !had.contains(n)).collect());
    assert_eq!(
        retried.iter().filter(|r| r.phase == Phase::Upload).count(),
        uploads.len()
    );
    assert_eq!(h.s.file(a).unwrap().status, FileStatus::Success);
    assert_eq!(h.count_events(|e| *e == Event::Complete), 2);
}

#[test]
fn per_file_controls_meet_the_queue_controls() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    c.simultaneous_uploads = Some(1);
    let mut h = Harness::new(c, 34);
    let a = h.add("a", 30);
    let b = h.add("b", 30);
    let d = h.add("d", 30);
    h.start();
    let a1 = h.next_request();
    // The whole queue paused, then one file resumed: only that one goes on.
    h.input(Input::Pause);
    assert!(h.files_are(&[a, b, d], FileStatus::Paused));
    assert!(h.control(b, FileControl::Resume));
    assert!(h.s.is_uploading());
    let before = h.sent.len();
    h.respond(a1.id, 200);
    assert_eq!(h.queue.front().map(|r| r.file), Some(b), "{}", h.dump());
    assert_eq!(h.s.file(a).unwrap().status, FileStatus::Paused);
    assert_eq!(h.s.file(d).unwrap().status, FileStatus::Paused);
    // A new `Start` (upload()) leaves files paused on their own paused.
    h.start();
    assert!(!h.drive_bounded(100, ok(200)));
    assert!(h.sent[before..].iter().all(|r| r.file == b), "{}", h.dump());
    assert_eq!(h.s.file(b).unwrap().status, FileStatus::Success);
    assert_eq!(h.count_events(|e| *e == Event::Complete), 1);
    // `Resume` resumes every file.
    h.input(Input::Resume);
    assert!(!h.drive_bounded(100, ok(200)));
    assert!(h.files_are(&[a, b, d], FileStatus::Success));
    assert_eq!(h.count_sent(Phase::Upload), 9, "no chunk sent twice");
    // `Cancel` cancels files paused on their own too; they can be retried.
    let e = h.add("e", 30);
    let f = h.add("f", 30);
    h.start();
    assert!(h.control(e, FileControl::Pause));
    h.input(Input::Cancel);
    assert!(h.files_are(&[e, f], FileStatus::Cancelled));
    assert!(h.in_flight.is_empty());
    assert!(!h.control(e, FileControl::Resume));
    assert!(h.control(e, FileControl::Retry));
    assert!(!h.drive_bounded(100, ok(200)));
    assert_eq!(h.s.file(e).unwrap().status, FileStatus::Success);
    assert_eq!(h.s.file(f).unwrap().status, FileStatus::Cancelled);
}

#[test]
fn upload_retries_failed_files_but_leaves_paused_ones_paused() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    c.parallel_files = true;
    c.simultaneous_uploads = Some(2);
    let mut h = Harness::new(c, 35);
    let a = h.add("a", 20);
    let b = h.add("b", 20);
    h.start();
    let first = h.take_all();
    assert!(h.control(b, FileControl::Pause));
    for r in &first {
        h.respond(r.id, if r.file == a { 500 } else { 200 });
    }
    assert_eq!(h.s.file(a).unwrap().status, FileStatus::Error);
    assert_eq!(h.s.file(b).unwrap().status, FileStatus::Paused);
    assert_eq!(h.count_events(|e| *e == Event::Complete), 1);
    h.start();
    let before = h.sent.len();
    assert!(!h.drive_bounded(100, ok(200)));
    assert!(h.sent[before..].iter().all(|r| r.file == a));
    assert_eq!(h.s.file(a).unwrap().status, FileStatus::Success);
    assert_eq!(h.s.file(b).unwrap().status, FileStatus::Paused);
    // A run with nothing but paused files completes at once.
    h.start();
    assert_eq!(h.count_events(|e| *e == Event::Complete), 3);
}

#[test]
fn before_the_first_upload_file_controls_start_nothing() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    let mut h = Harness::new(c, 36);
    let a = h.add("a", 20);
    let b = h.add("b", 20);
    assert!(h.control(a, FileControl::Pause));
    assert_eq!(h.s.file(a).unwrap().status, FileStatus::Paused);
    assert!(h.control(a, FileControl::Resume));
    assert!(h.control(b, FileControl::Cancel));
    assert!(h.control(b, FileControl::Retry));
    assert!(h.control(a, FileControl::Pause));
    assert!(h.sent.is_empty() && h.events.is_empty(), "{}", h.dump());
    assert!(!h.control(FileId(99), FileControl::Pause), "unknown file");
    h.start();
    assert!(!h.drive_bounded(100, ok(200)));
    assert_eq!(h.s.file(b).unwrap().status, FileStatus::Success);
    assert_eq!(h.s.file(a).unwrap().status, FileStatus::Paused);
}

#[test]
fn a_retry_keeps_the_queue_rules() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    c.max_files = Some(1);
    let mut h = Harness::new(c, 37);
    let a = h.add("a", 20);
    assert!(h.control(a, FileControl::Cancel));
    // The same file added again: the cancelled entry cannot come back beside it.
    let again = h.add("a", 20);
    assert!(!h.control(a, FileControl::Retry), "identifier taken");
    h.input(Input::RemoveFile(again));
    let other = h.add("other", 20);
    assert!(!h.control(a, FileControl::Retry), "maxFiles reached");
    h.input(Input::RemoveFile(other));
    assert!(h.control(a, FileControl::Retry));
}

#[test]
fn retrying_one_file_leaves_the_other_failed_files_failed() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    c.parallel_files = true;
    let mut h = Harness::new(c, 38);
    let a = h.add("a", 10);
    let b = h.add("b", 10);
    h.start();
    for r in h.take_all() {
        h.respond(r.id, 500);
    }
    assert!(h.files_are(&[a, b], FileStatus::Error));
    assert!(h.control(b, FileControl::Retry));
    assert_eq!(h.count_events(|e| *e == Event::UploadStart), 2);
    assert!(!h.drive_bounded(100, ok(200)));
    assert_eq!(h.s.file(b).unwrap().status, FileStatus::Success);
    let va = h.s.file(a).unwrap();
    assert_eq!(va.status, FileStatus::Error);
    assert_eq!(va.error.unwrap().status, Some(500));
    assert_eq!(of_file(&h.sent, a).len(), 1);
}

#[test]
fn cancel_file_cancels_one_unfinished_file() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    let mut h = Harness::new(c, 28);
    let a = h.add("a", 30);
    let b = h.add("b", 10);
    let done = h.add("done", 10);
    h.input(Input::CancelFile(b));
    assert_eq!(h.s.file(b).unwrap().status, FileStatus::Cancelled);
    h.start();
    let first = h.take_all();
    assert!(first.iter().all(|r| r.file == a));
    h.input(Input::CancelFile(a));
    let aborted: Vec<_> = first.iter().map(|r| r.id).collect();
    assert_eq!(h.aborted, aborted);
    assert!(!h.drive_bounded(100, ok(200)));
    assert_eq!(h.s.file(a).unwrap().status, FileStatus::Cancelled);
    assert_eq!(h.s.file(done).unwrap().status, FileStatus::Success);
    h.input(Input::CancelFile(done));
    assert_eq!(
        h.s.file(done).unwrap().status,
        FileStatus::Success,
        "finished stays"
    );
    assert_eq!(h.count_events(|e| *e == Event::Complete), 1);
}

#[test]
fn has_work_while_a_run_is_on_paused_or_not() {
    let mut c = config(10);
    c.test_chunks = TestChunks::Never;
    let mut h = Harness::new(c, 29);
    assert!(!h.s.has_work());
    h.add("a", 60);
    assert!(
        !h.s.has_work(),
        "queued files alone are no work until a run starts"
    );
    h.start();
    assert!(h.s.has_work());
    h.input(Input::Pause);
    let r = h.take_all();
    for r in r {
        h.respond(r.id, 200);
    }
    assert!(h.s.has_work(), "a paused run still has work");
    h.input(Input::Resume);
    assert!(!h.drive_bounded(100, ok(200)));
    assert!(!h.s.has_work(), "drained");
    h.add("b", 30);
    h.start();
    assert!(h.s.has_work());
    h.input(Input::Cancel);
    assert!(!h.s.has_work(), "cancelled");
}

/// Uploads through a link where every request is answered `rtt` ms after it was sent (no
/// bandwidth limit: more requests in flight always carry more), with `reply` for each answer,
/// until the engine is idle or `answers` were given. Returns the requests still in flight.
fn through_link(
    h: &mut Harness,
    rtt: u64,
    answers: usize,
    mut reply: impl FnMut(&RequestSpec) -> Reply,
) -> Vec<RequestSpec> {
    let mut due: Vec<(u64, RequestSpec)> = Vec::new();
    for _ in 0..answers.min(10_000) {
        let now = h.now;
        due.extend(h.take_all().into_iter().map(|r| (now + rtt, r)));
        let next = due.iter().map(|(t, _)| *t).min();
        match (next, h.s.poll_deadline()) {
            (Some(t), d) if d.is_none_or(|d| t <= d) => {
                let i = due.iter().position(|(at, _)| *at == t).unwrap();
                let (_, r) = due.remove(i);
                h.now = t;
                let answer = reply(&r);
                h.reply(r.id, answer);
            }
            (None, None) => return Vec::new(),
            _ => {
                h.advance_to_deadline();
            }
        }
    }
    due.extend(h.take_all().into_iter().map(|r| (0, r)));
    due.into_iter().map(|(_, r)| r).collect()
}

/// The server has none of the chunks: probes answer 204, uploads 200.
fn new_chunks(r: &RequestSpec) -> Reply {
    Reply::Status(if r.phase == Phase::Test { 204 } else { 200 })
}

/// One file of 200 chunks through a 100 ms link under `c`, the target's protocol told first
/// if known: the most requests in flight at once.
fn auto_upload(c: Config, protocol: Option<HttpProtocol>) -> usize {
    let mut h = Harness::new(c, 41);
    let f = h.add("big", 200 * 1000);
    if let Some(p) = protocol {
        h.input(Input::Protocol(p));
    }
    h.start();
    assert!(through_link(&mut h, 100, usize::MAX, new_chunks).is_empty());
    assert_eq!(h.s.file(f).unwrap().status, FileStatus::Success);
    h.max_in_flight
}

#[test]
fn auto_grows_past_three_but_not_past_six_unless_the_origin_multiplexes() {
    // Protocol unknown: this link answers twelve requests as fast as six (it queues none, as
    // an origin that multiplexes would), so the probe lifts the cap. The browser's queue of an
    // HTTP/1.1 origin is simulated in `engine::concurrency`'s tests, where the probe never does.
    let unknown = auto_upload(config(1000), None);
    assert!(unknown > 6, "protocol unknown: {unknown}");
    assert_eq!(auto_upload(config(1000), Some(HttpProtocol::Http1)), 6);
    let h2 = Some(HttpProtocol::Multiplexed);
    assert_eq!(
        auto_upload(config(1000), h2),
        64,
        "maxSimultaneousUploads (default)"
    );
    let mut c = config(1000);
    c.max_simultaneous_uploads = 10;
    assert_eq!(auto_upload(c, h2), 10);
    // A fixed number holds whatever the protocol.
    let mut c = config(1000);
    c.simultaneous_uploads = Some(3);
    assert_eq!(auto_upload(c, h2), 3);
}

/// A harness with one big file whose window grew to 16 (its `maxSimultaneousUploads`) over h2;
/// the requests in flight.
fn grown_window() -> (Harness, Vec<RequestSpec>) {
    let mut c = config(1000);
    c.max_simultaneous_uploads = 16;
    let mut h = Harness::new(c, 42);
    h.add("big", 300 * 1000);
    h.input(Input::Protocol(HttpProtocol::Multiplexed));
    h.start();
    let pending = through_link(&mut h, 100, 80, new_chunks);
    assert_eq!(h.s.slots(), 16);
    (h, pending)
}

#[test]
fn auto_halves_on_a_failure_once_per_round() {
    let (mut h, pending) = grown_window();
    h.fail(pending[0].id, Failure::Timeout);
    assert_eq!(h.s.slots(), 8, "a timeout halves the window");
    h.respond(pending[1].id, 503);
    h.fail(pending[2].id, Failure::NoResponse);
    assert_eq!(
        h.s.slots(),
        8,
        "requests sent before the cut do not cut again"
    );
    assert!(h.max_in_flight <= 16);
}

#[test]
fn auto_drops_to_one_request_on_retry_after() {
    let (mut h, pending) = grown_window();
    let busy = Reply::Full {
        status: 503,
        body: String::new(),
        retry_after: Some("1".into()),
    };
    h.reply(pending[0].id, busy);
    assert_eq!(h.s.slots(), 1);
}

/// `persist`: a first scheduler uploads part of a file and its record is taken as the page's
/// storage would keep it (text); a second one (after a "reload") resumes from it.
mod persist {
    use super::*;
    use resumable_wasm::engine::persist::Record;
    use resumable_wasm::engine::FileMeta;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn meta(last_modified: u64) -> FileMeta {
        FileMeta {
            name: "a.bin".into(),
            size: 100,
            last_modified: Some(last_modified),
            ..Default::default()
        }
    }

    fn persisting(test_chunks: TestChunks) -> Config {
        let mut c = config(10);
        c.persist = true;
        c.test_chunks = test_chunks;
        c.simultaneous_uploads = Some(1);
        c
    }

    /// Uploads chunks 1..=4 of a 10-chunk file, then returns its record as stored text.
    fn half_uploaded(test_chunks: TestChunks) -> String {
        let mut h = Harness::new(persisting(test_chunks), 3);
        let f = h.s.add_file(0, meta(7)).unwrap();
        h.drain();
        assert_eq!(
            h.kept,
            vec![(f, true)],
            "the record is written when the file is added"
        );
        h.start();
        let mut confirmed = 0;
        while confirmed < 4 {
            let r = h.next_request();
            let present = r.phase == Phase::Upload;
            h.respond(r.id, if present { 200 } else { 204 });
            confirmed += u32::from(present);
        }
        let record = h.s.record(f).unwrap();
        assert_eq!(record.confirmed.runs(), &[(1, 4)]);
        assert!(h.kept.iter().filter(|(_, added)| !added).count() >= 4);
        record.encode()
    }

    fn resumed(
        test_chunks: TestChunks,
        text: &str,
        last_modified: u64,
    ) -> (
        Harness,
        Option<FileId>,
        Option<resumable_wasm::engine::UploadError>,
    ) {
        let mut h = Harness::new(persisting(test_chunks), 4);
        let kept = Record::decode(text);
        assert!(kept.is_some(), "the stored text reads back");
        match h.s.add_file_kept(0, meta(last_modified), kept) {
            Ok(f) => {
                h.drain();
                (h, Some(f), None)
            }
            Err(e) => (h, None, Some(e)),
        }
    }

    #[test]
    fn resumes_with_one_probe_and_only_the_missing_chunks() {
        let text = half_uploaded(TestChunks::Auto);
        let (mut h, f, _) = resumed(TestChunks::Auto, &text, 7);
        let f = f.unwrap();
        h.start();
        assert!(!h.drive_bounded(100, |r| {
            assert!(
                r.phase == Phase::Upload || r.chunk == 1,
                "only the first kept chunk is probed"
            );
            assert!(
                r.phase == Phase::Test || r.chunk > 4,
                "kept chunk {} re-sent",
                r.chunk
            );
            Reply::Status(200)
        }));
        assert_eq!(h.count_sent(Phase::Test), 1);
        assert_eq!(h.count_sent(Phase::Upload), 6);
        assert_eq!(h.s.file(f).unwrap().status, FileStatus::Success);
        assert_eq!(h.s.progress(), 1.0);
        let key = Record::decode(&text).unwrap().key();
        assert!(h.forgotten.contains(&key), "success forgets the record");
    }

    #[test]
    fn server_lost_the_upload_every_chunk_is_probed_and_sent() {
        let text = half_uploaded(TestChunks::Auto);
        let (mut h, f, _) = resumed(TestChunks::Auto, &text, 7);
        h.start();
        assert!(
            !h.drive_bounded(100, |r| Reply::Status(if r.phase == Phase::Test {
                204
            } else {
                200
            }))
        );
        assert_eq!(h.count_sent(Phase::Upload), 10, "every chunk again");
        assert_eq!(
            h.count_sent(Phase::Test),
            11,
            "the kept chunk's probe, then every chunk's"
        );
        assert_eq!(h.s.file(f.unwrap()).unwrap().status, FileStatus::Success);
    }

    #[test]
    fn test_chunks_false_trusts_the_record_and_true_probes_everything() {
        let text = half_uploaded(TestChunks::Never);
        let (mut h, _, _) = resumed(TestChunks::Never, &text, 7);
        h.start();
        assert!(!h.drive_bounded(100, ok(200)));
        assert_eq!(
            (h.count_sent(Phase::Test), h.count_sent(Phase::Upload)),
            (0, 6)
        );
        let text = half_uploaded(TestChunks::Always);
        let (mut h, _, _) = resumed(TestChunks::Always, &text, 7);
        h.start();
        assert!(!h.drive_bounded(100, |r| Reply::Status(
            if r.phase == Phase::Test && r.chunk > 4 {
                204
            } else {
                200
            }
        )));
        assert_eq!(
            (h.count_sent(Phase::Test), h.count_sent(Phase::Upload)),
            (10, 6)
        );
    }

    #[test]
    fn a_changed_file_is_rejected() {
        let text = half_uploaded(TestChunks::Auto);
        let (h, f, e) = resumed(TestChunks::Auto, &text, 8);
        assert!(f.is_none());
        let e = e.unwrap();
        assert_eq!(
            (e.kind, e.rule.as_deref()),
            (ErrorKind::Rejected, Some("changed"))
        );
        assert!(h.s.files().is_empty());
    }

    #[test]
    fn cancel_and_remove_forget_the_record_failure_keeps_it() {
        let mut h = Harness::new(persisting(TestChunks::Auto), 5);
        let a = h.s.add_file(0, meta(7)).unwrap();
        let b = h.add("b.bin", 30);
        h.drain();
        let key = |h: &Harness, f| h.s.record(f).unwrap().key();
        let (ka, kb) = (key(&h, a), key(&h, b));
        h.input(Input::RemoveFile(b));
        assert!(h.forgotten.contains(&kb));
        assert!(!h.forgotten.contains(&ka));
        h.input(Input::Cancel);
        assert!(h.forgotten.contains(&ka));
    }

    #[test]
    fn protocol_state_and_checksums_travel_in_the_record() {
        let mut h = Harness::new(persisting(TestChunks::Auto), 6);
        let f = h.s.add_file(0, meta(7)).unwrap();
        assert!(h.s.set_file_state(f, "uploadId", "u-1"));
        assert!(h.s.set_chunk_checksum(f, 2, "sha256:ab"));
        let text = h.s.record(f).unwrap().encode();
        let (h2, g, _) = resumed(TestChunks::Auto, &text, 7);
        assert_eq!(
            h2.s.file_state(g.unwrap(), "uploadId").as_deref(),
            Some("u-1")
        );
        assert_eq!(
            h2.s.record(g.unwrap()).unwrap().checksums,
            vec![(2, "sha256:ab".to_owned())]
        );
    }
}
