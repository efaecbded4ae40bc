//! `checksum`: the engine's integrity decisions against a scripted server that hashes real
//! bytes — what every request carries in each dialect, the whole-file digest, and what a
//! mismatch answer leads to (re-read and re-send, a changed file, the `integrity` error).
//! They run natively and on wasm32.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[path = "support/engine_harness.rs"]
mod harness;

use harness::{Harness, Reply};
use resumable_wasm::engine::integrity::{crc32c, crc32c_bytes, hex, Algorithm};
use resumable_wasm::engine::{
    Config, ErrorKind, Event, FileControl, FileId, FileStatus, Input, Phase, Protocol, RequestSpec,
    TestChunks, UploadMode,
};

fn config(chunk: u64) -> Config {
    let mut c = Config::new("https://up.example/upload");
    c.chunk_size = chunk;
    c.page_origin = Some("https://app.example".into());
    c.checksum = Some(Algorithm::Crc32c);
    c.chunk_retry_interval_ms = 10;
    c.max_retry_interval_ms = 10;
    c
}

fn data(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from(i % 251).unwrap() ^ salt)
        .collect()
}

fn crc_hex(bytes: &[u8]) -> String {
    hex(&crc32c_bytes(crc32c(bytes)))
}

/// Reads and hashes the chunk of `spec` from `bytes`, as the driver does, and returns the
/// request the engine then wants sent (`None`: it refused, the file changed).
fn read_and_hash(h: &mut Harness, spec: &RequestSpec, bytes: &[u8]) -> Option<RequestSpec> {
    assert_eq!(spec.checksum, Some(Algorithm::Crc32c), "{spec:?}");
    let chunk = &bytes[usize::try_from(spec.start).unwrap()..usize::try_from(spec.end).unwrap()];
    let sum = crc32c_bytes(crc32c(chunk));
    let sent = h.s.hashed(h.now, spec.id, &sum);
    h.drain();
    sent
}

/// Drives every request to the end: each is read and hashed from `bytes`, then answered by
/// `server` (which sees the request as sent). Returns the requests as sent.
fn run(
    h: &mut Harness,
    bytes: &[u8],
    mut server: impl FnMut(&RequestSpec) -> Reply,
) -> Vec<RequestSpec> {
    let mut sent = Vec::new();
    for _ in 0..10_000 {
        let Some(spec) = h.try_next() else {
            if !h.advance_to_deadline() {
                break;
            }
            continue;
        };
        let Some(spec) = read_and_hash(h, &spec, bytes) else {
            continue;
        };
        let reply = server(&spec);
        sent.push(spec.clone());
        h.reply(spec.id, reply);
    }
    sent
}

fn names(protocol: Protocol) -> [&'static str; 3] {
    match protocol {
        Protocol::Resumable => [
            "resumableChecksumAlgorithm",
            "resumableChunkChecksum",
            "resumableFileChecksum",
        ],
        Protocol::Flow => [
            "flowChecksumAlgorithm",
            "flowChunkChecksum",
            "flowFileChecksum",
        ],
    }
}

#[test]
fn every_request_carries_its_chunk_checksum_and_the_last_read_the_file_digest() {
    for protocol in [Protocol::Resumable, Protocol::Flow] {
        for mode in [UploadMode::Multipart, UploadMode::Octet] {
            let mut c = config(1000);
            c.protocol = protocol;
            c.upload_mode = mode;
            c.test_chunks = TestChunks::Always;
            c.min_file_size = 0;
            let bytes = data(4500, 7);
            let mut h = Harness::new(c, 1);
            let f = h.add("a.bin", 4500);
            h.start();
            let [alg, chunk, file] = names(protocol);
            let sent = run(&mut h, &bytes, |spec| match spec.phase {
                Phase::Test => Reply::Status(204),
                _ => Reply::Status(200),
            });
            assert!(h.files_are(&[f], FileStatus::Success), "{}", h.dump());
            for spec in &sent {
                let (s, e) = (
                    usize::try_from(spec.start).unwrap(),
                    usize::try_from(spec.end).unwrap(),
                );
                assert_eq!(spec.param(alg).as_deref(), Some("crc32c"), "{spec:?}");
                assert_eq!(spec.param(chunk), Some(crc_hex(&bytes[s..e])), "{spec:?}");
                if spec.phase == Phase::Upload && mode == UploadMode::Multipart {
                    assert!(!spec.url.contains("Checksum"), "multipart: fields only");
                } else {
                    assert!(spec.url.contains(chunk), "in the query: {}", spec.url);
                }
                assert!(spec.headers.is_empty(), "never a header");
                assert!(
                    !spec.preflight.preflight,
                    "no preflight: {:?}",
                    spec.preflight
                );
            }
            // The digest is known once every chunk has been read: from the first request of
            // the last chunk read on, every request carries it, and none before.
            let last_first_read = (1..=4u32)
                .map(|n| sent.iter().position(|s| s.chunk == n).unwrap())
                .max()
                .unwrap();
            for (i, spec) in sent.iter().enumerate() {
                let expected = (i >= last_first_read).then(|| crc_hex(&bytes));
                assert_eq!(
                    spec.param(file),
                    expected,
                    "{protocol:?} {mode:?} request {i}"
                );
            }
            assert!(sent
                .iter()
                .any(|s| s.phase == Phase::Upload && s.param(file).is_some()));
        }
    }
}

#[test]
fn a_mismatch_is_read_again_and_sent_again() {
    let bytes = data(3000, 1);
    let mut h = Harness::new(config(1000), 1);
    let f = h.add("a.bin", 3000);
    h.start();
    let mut refused = 0;
    let sent = run(&mut h, &bytes, |spec| {
        if spec.phase == Phase::Upload && spec.chunk == 2 && refused < 2 {
            refused += 1;
            return Reply::Status(460);
        }
        Reply::Status(if spec.phase == Phase::Test { 204 } else { 200 })
    });
    assert!(h.files_are(&[f], FileStatus::Success), "{}", h.dump());
    let chunk2: Vec<_> = sent.iter().filter(|s| s.chunk == 2).collect();
    assert_eq!(chunk2.len(), 3, "two refusals, then stored");
    assert!(
        chunk2.iter().all(|s| s.phase == Phase::Upload),
        "the server said it stored nothing: no probe before the re-send"
    );
    let retries = h.count_events(|e| {
        matches!(e, Event::FileRetry { chunk: 2, error, .. } if error.kind == ErrorKind::Integrity)
    });
    assert_eq!(retries, 2);
}

#[test]
fn a_400_with_the_token_is_a_mismatch_too_even_where_400_is_permanent() {
    let bytes = data(2000, 2);
    let mut h = Harness::new(config(1000), 1);
    let f = h.add("a.bin", 2000);
    h.start();
    let mut refused = false;
    run(&mut h, &bytes, |spec| {
        if spec.phase == Phase::Upload && spec.chunk == 1 && !refused {
            refused = true;
            return Reply::Full {
                status: 400,
                body: "chunk_checksum_mismatch: chunk 1".into(),
                retry_after: None,
            };
        }
        Reply::Status(if spec.phase == Phase::Test { 204 } else { 200 })
    });
    assert!(refused);
    assert!(h.files_are(&[f], FileStatus::Success), "{}", h.dump());
}

#[test]
fn bytes_that_read_differently_the_second_time_fail_the_file_as_changed() {
    let mut bytes = data(3000, 3);
    let mut h = Harness::new(config(1000), 1);
    let f = h.add("a.bin", 3000);
    h.start();
    let mut changed = None;
    for _ in 0..100 {
        let Some(spec) = h.try_next() else {
            if !h.advance_to_deadline() {
                break;
            }
            continue;
        };
        let Some(spec) = read_and_hash(&mut h, &spec, &bytes) else {
            changed = Some(spec_chunk(&h));
            continue;
        };
        if spec.phase == Phase::Upload && spec.chunk == 2 {
            // The file is edited on disk while chunk 2 is on the wire; the server got the old
            // bytes mangled and refuses them.
            bytes[1500] ^= 0xff;
            h.respond(spec.id, 460);
        } else {
            h.respond(spec.id, if spec.phase == Phase::Test { 204 } else { 200 });
        }
    }
    assert_eq!(changed, Some(2), "{}", h.dump());
    let error = h.s.file(f).unwrap().error.unwrap();
    assert_eq!(error.kind, ErrorKind::Rejected);
    assert_eq!(error.rule.as_deref(), Some("changed"));
    assert_eq!(error.chunk, Some(2));
    assert_eq!(error.algorithm, Some("crc32c"));
    assert!(
        h.has_event(|e| *e == Event::Complete),
        "the run ends: upload() resolves\n{}",
        h.dump()
    );
    assert!(h.s.is_drained());
}

fn spec_chunk(h: &Harness) -> u32 {
    h.s.files()[0]
        .error
        .as_ref()
        .and_then(|e| e.chunk)
        .unwrap_or(0)
}

#[test]
fn a_server_that_never_matches_ends_in_an_integrity_error_after_the_retry_budget() {
    let bytes = data(2000, 4);
    let mut c = config(1000);
    c.max_chunk_retries = 3;
    let mut h = Harness::new(c, 1);
    let f = h.add("a.bin", 2000);
    h.start();
    let sent = run(&mut h, &bytes, |spec| {
        Reply::Status(match spec.phase {
            Phase::Test => 204,
            _ => 460,
        })
    });
    let error = h.s.file(f).unwrap().error.unwrap();
    assert_eq!(error.kind, ErrorKind::Integrity, "{}", h.dump());
    assert_eq!(error.algorithm, Some("crc32c"));
    assert_eq!(error.status, Some(460));
    let chunk = error.chunk.unwrap();
    let posts = sent
        .iter()
        .filter(|s| s.chunk == chunk && s.phase == Phase::Upload)
        .count();
    assert_eq!(posts, 4, "the first send and maxChunkRetries re-sends");
    assert!(error.message.contains("gave up after"), "{}", error.message);
}

#[test]
fn a_file_digest_mismatch_fails_the_file_at_once() {
    let bytes = data(2000, 5);
    let mut h = Harness::new(config(1000), 1);
    let f = h.add("a.bin", 2000);
    h.start();
    let sent = run(&mut h, &bytes, |spec| match (spec.phase, spec.chunk) {
        (Phase::Test, _) => Reply::Status(204),
        (_, 2) => Reply::Full {
            status: 460,
            body: "file_checksum_mismatch: assembled file differs".into(),
            retry_after: None,
        },
        _ => Reply::Status(200),
    });
    let error = h.s.file(f).unwrap().error.unwrap();
    assert_eq!(error.kind, ErrorKind::Integrity);
    assert_eq!(
        sent.iter().filter(|s| s.chunk == 2).count(),
        1,
        "not re-sent"
    );
}

#[test]
fn without_the_option_nothing_is_hashed_and_460_is_an_ordinary_status() {
    let mut c = config(1000);
    c.checksum = None;
    let mut h = Harness::new(c, 1);
    h.add("a.bin", 2000);
    h.start();
    let probe = h.next_request();
    assert_eq!(probe.checksum, None);
    assert!(probe.param("resumableChunkChecksum").is_none());
}

#[test]
fn sha256_leaves_the_file_digest_to_the_driver_as_the_hash_of_the_chunk_digests() {
    let mut c = config(1000);
    c.checksum = Some(Algorithm::Sha256);
    c.protocol = Protocol::Flow;
    let mut h = Harness::new(c.clone(), 1);
    h.add("a.bin", 2000);
    h.start();
    // Stand-in chunk digests: the engine only records and orders them.
    let digest_of = |n: u32| [u8::try_from(n).unwrap(); 32];
    let mut last = None;
    for _ in 0..20 {
        let Some(spec) = h.try_next() else { break };
        let sent = h.s.hashed(h.now, spec.id, &digest_of(spec.chunk)).unwrap();
        h.drain();
        assert_eq!(
            sent.param("flowChecksumAlgorithm").as_deref(),
            Some("sha256")
        );
        assert_eq!(
            sent.param("flowChunkChecksum"),
            Some(hex(&digest_of(spec.chunk)))
        );
        assert!(
            sent.param("flowFileChecksum").is_none(),
            "the driver adds it"
        );
        last = Some(sent.clone());
        h.respond(sent.id, if sent.phase == Phase::Test { 204 } else { 200 });
    }
    // The first request made once both chunks were read holds what to hash: digest 1, digest 2.
    let with_input = h
        .sent
        .iter()
        .find(|s| s.file_digest_of.is_some())
        .map(|s| s.id);
    assert!(
        with_input.is_none(),
        "the request as first handed out carries no input yet"
    );
    let last = last.unwrap();
    let mut expected = digest_of(1).to_vec();
    expected.extend_from_slice(&digest_of(2));
    assert_eq!(last.file_digest_of, Some(expected));
    let done = last.with_file_checksum(&c, &[0xab; 32]);
    assert_eq!(done.param("flowFileChecksum"), Some("ab".repeat(32)));
    assert!(done.file_digest_of.is_none());
}

#[test]
fn a_target_function_s_url_is_rendered_and_kept_for_the_cors_checks() {
    let mut c = config(1000);
    c.checksum = None;
    c.target_fn = true;
    c.target = String::new();
    let mut h = Harness::new(c, 1);
    h.add("a.bin", 1000);
    h.start();
    let spec = h.next_request();
    assert_eq!(spec.phase, Phase::Upload, "one chunk: no probe");
    let sent =
        h.s.retarget(spec.id, "https://other.example/up?chunk=1".into())
            .unwrap();
    assert_eq!(sent.url, "https://other.example/up?chunk=1");
    assert!(!sent.preflight.preflight && sent.param("resumableChunkNumber").is_some());
    // No answer: the CORS check goes to the URL the request went to.
    h.fail(sent.id, resumable_wasm::engine::Failure::NoResponse);
    let check = h.checks.last().expect("a CORS check").clone();
    assert!(
        check.url.starts_with("https://other.example/up"),
        "{}",
        check.url
    );
}

/// The chunks the driver reads and hashes ahead: (file, chunk, start, end).
fn ahead(h: &Harness) -> Vec<(FileId, u32, u64, u64)> {
    h.s.read_ahead()
}

/// The chunks of `ahead(h)`, as (file number, chunk).
fn ahead_chunks(h: &Harness) -> Vec<(u32, u32)> {
    ahead(h).iter().map(|a| (a.0 .0, a.1)).collect()
}

#[test]
fn read_ahead_covers_every_slot_that_may_free_at_once() {
    let mut c = config(1000);
    c.test_chunks = TestChunks::Never;
    c.simultaneous_uploads = Some(3);
    let mut h = Harness::new(c, 1);
    let f = h.add("a.bin", 9500);
    assert!(ahead(&h).is_empty(), "nothing before the upload starts");
    h.start();
    let first = h.take_all();
    assert_eq!(first.iter().map(|s| s.chunk).collect::<Vec<_>>(), [1, 2, 3]);
    // Three requests may start at once (say three answers in one burst): three read ahead,
    // the chunks those requests will send.
    assert_eq!(
        ahead(&h),
        [(f, 4, 3000, 4000), (f, 5, 4000, 5000), (f, 6, 5000, 6000)]
    );
    // Each started request moves the read-ahead on by one chunk.
    h.respond(first[0].id, 200);
    let next = h.take_all();
    assert_eq!(next.iter().map(|s| s.chunk).collect::<Vec<_>>(), [4]);
    assert_eq!(ahead_chunks(&h), [(1, 5), (1, 6), (1, 7)]);
    // A chunk sent again (here after a mismatch) is read anew, never from ahead: it is not listed.
    h.reply(
        first[1].id,
        Reply::Full {
            status: 460,
            body: "chunk_checksum_mismatch: chunk 2".into(),
            retry_after: None,
        },
    );
    assert!(ahead(&h).iter().all(|a| a.1 != 2), "{:?}", ahead(&h));
    // Towards the end only what is left (the last chunk takes the remainder: 9 chunks).
    let mut checked_end = false;
    for _ in 0..100 {
        let Some(spec) = h.try_next() else {
            if !h.advance_to_deadline() {
                break;
            }
            continue;
        };
        if spec.chunk == 7 {
            assert_eq!(ahead(&h), [(f, 8, 7000, 8000), (f, 9, 8000, 9500)]);
            checked_end = true;
        }
        h.respond(spec.id, 200);
    }
    assert!(checked_end, "chunk 7 was sent");
    h.respond(first[2].id, 200);
    h.respond(next[0].id, 200);
    while let Some(spec) = h.try_next() {
        h.respond(spec.id, 200);
    }
    assert!(h.files_are(&[f], FileStatus::Success), "{}", h.dump());
    assert!(ahead(&h).is_empty());
}

#[test]
fn read_ahead_follows_the_order_requests_go_in() {
    // First and last chunk first, then the rest in order; then the next file.
    let mut c = config(1000);
    c.test_chunks = TestChunks::Never;
    c.simultaneous_uploads = Some(3);
    c.prioritize_first_and_last_chunk = true;
    let mut h = Harness::new(c, 1);
    let f = h.add("a.bin", 4000);
    let g = h.add("b.bin", 3000);
    h.start();
    let first = h.take_all();
    assert_eq!(first.iter().map(|s| s.chunk).collect::<Vec<_>>(), [1, 4, 2]);
    assert_eq!(ahead_chunks(&h), [(1, 3), (2, 1), (2, 3)]);
    // A file paused on its own sends nothing: its chunks are not read ahead.
    assert!(h.control(f, FileControl::Pause));
    assert_eq!(ahead_chunks(&h), [(2, 1), (2, 3), (2, 2)]);
    assert!(h.control(f, FileControl::Resume));
    // The whole queue paused: nothing.
    h.input(Input::Pause);
    assert!(ahead(&h).is_empty());
    h.input(Input::Resume);
    assert!(!ahead(&h).is_empty());
    let _ = g;
}

#[test]
fn read_ahead_with_parallel_files_takes_one_chunk_of_each_in_turn() {
    let mut c = config(1000);
    c.test_chunks = TestChunks::Never;
    c.simultaneous_uploads = Some(4);
    c.parallel_files = true;
    let mut h = Harness::new(c, 1);
    h.add("a.bin", 5000);
    h.add("b.bin", 5000);
    h.start();
    let first = h.take_all();
    assert_eq!(
        first
            .iter()
            .map(|s| (s.file.0, s.chunk))
            .collect::<Vec<_>>(),
        [(1, 1), (2, 1), (1, 2), (2, 2)]
    );
    assert_eq!(ahead_chunks(&h), [(1, 3), (2, 3), (1, 4), (2, 4)]);
}

/// `persist` with `checksum`: the whole-file digest of a file resumed from a record.
mod resumed {
    use super::*;
    use resumable_wasm::engine::persist::Record;
    use resumable_wasm::engine::FileMeta;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const FILE: [&str; 3] = [
        "resumableChecksumAlgorithm",
        "resumableChunkChecksum",
        "resumableFileChecksum",
    ];

    fn persisting(test_chunks: TestChunks) -> Config {
        let mut c = config(10);
        c.persist = true;
        c.test_chunks = test_chunks;
        c.simultaneous_uploads = Some(1);
        c
    }

    fn meta() -> FileMeta {
        FileMeta {
            name: "a.bin".into(),
            size: 100,
            last_modified: Some(7),
            ..Default::default()
        }
    }

    /// Uploads chunks 1..=4 of the 10-chunk file `bytes` and returns its record as kept.
    fn four_chunks_uploaded(bytes: &[u8]) -> Record {
        let mut h = Harness::new(persisting(TestChunks::Never), 3);
        let f = h.s.add_file_kept(0, meta(), None).unwrap();
        h.drain();
        h.start();
        while h.s.record(f).unwrap().confirmed.count() < 4 {
            let spec = h.next_request();
            let spec = read_and_hash(&mut h, &spec, bytes).unwrap();
            h.respond(spec.id, 200);
        }
        h.s.record(f).unwrap()
    }

    /// Plays the driver for a resumed file: every request is read, hashed and answered by
    /// `server`; when none is left, the kept chunks the engine asks for are hashed locally
    /// (if `hash_kept`). Returns the requests sent and the chunks hashed locally.
    fn run_resumed(
        h: &mut Harness,
        bytes: &[u8],
        hash_kept: bool,
        mut server: impl FnMut(&RequestSpec) -> Reply,
    ) -> (Vec<RequestSpec>, Vec<u32>) {
        let (mut sent, mut local) = (Vec::new(), Vec::new());
        for _ in 0..10_000 {
            if let Some(spec) = h.try_next() {
                if let Some(spec) = read_and_hash(h, &spec, bytes) {
                    let reply = server(&spec);
                    sent.push(spec.clone());
                    h.reply(spec.id, reply);
                }
                continue;
            }
            if let Some((f, n, s, e)) = h.s.kept_to_hash().filter(|_| hash_kept) {
                let sum = crc32c_bytes(crc32c(
                    &bytes[usize::try_from(s).unwrap()..usize::try_from(e).unwrap()],
                ));
                local.push(n);
                h.s.kept_hashed(h.now, f, n, Some(&sum));
                h.drain();
                continue;
            }
            if !h.advance_to_deadline() {
                break;
            }
        }
        (sent, local)
    }

    #[test]
    fn the_record_keeps_each_confirmed_chunk_s_checksum() {
        let bytes = data(100, 3);
        let record = four_chunks_uploaded(&bytes);
        let expected: Vec<(u32, String)> = (1..=4u32)
            .map(|n| {
                let i = usize::try_from(n - 1).unwrap() * 10;
                (n, format!("crc32c:{}", crc_hex(&bytes[i..i + 10])))
            })
            .collect();
        assert_eq!(record.checksums, expected);
        assert_eq!(Record::decode(&record.encode()), Some(record));
    }

    #[test]
    fn a_resumed_file_sends_the_file_digest_from_the_kept_checksums() {
        for test_chunks in [TestChunks::Auto, TestChunks::Never] {
            let bytes = data(100, 3);
            let kept = Record::decode(&four_chunks_uploaded(&bytes).encode());
            let mut h = Harness::new(persisting(test_chunks), 4);
            let f = h.s.add_file_kept(0, meta(), kept).unwrap();
            h.drain();
            h.start();
            let (sent, local) = run_resumed(&mut h, &bytes, true, |_| Reply::Status(200));
            assert!(h.files_are(&[f], FileStatus::Success), "{}", h.dump());
            assert!(local.is_empty(), "every kept checksum came from the record");
            let uploads: Vec<&RequestSpec> =
                sent.iter().filter(|s| s.phase == Phase::Upload).collect();
            assert_eq!(
                uploads.iter().map(|s| s.chunk).collect::<Vec<_>>(),
                (5..=10).collect::<Vec<_>>(),
                "{test_chunks:?}: only the missing chunks are sent"
            );
            let last = uploads.last().unwrap();
            assert_eq!(
                last.param(FILE[2]),
                Some(crc_hex(&bytes)),
                "{test_chunks:?}: the last chunk carries the file's digest"
            );
            assert_eq!(last.param(FILE[0]).as_deref(), Some("crc32c"));
        }
    }

    #[test]
    fn kept_chunks_without_a_checksum_are_hashed_locally_before_the_last_chunk_goes() {
        let bytes = data(100, 3);
        let mut record = four_chunks_uploaded(&bytes);
        // An older record (no checksums) for chunks 3 and 4, another algorithm's for 1, and a
        // malformed one for 2: none of them may go into the digest.
        record.checksums.clear();
        record.set_checksum(1, &format!("sha256:{}", "ab".repeat(32)));
        record.set_checksum(2, "crc32c:zz");
        let kept = Record::decode(&record.encode());
        let mut h = Harness::new(persisting(TestChunks::Never), 4);
        let f = h.s.add_file_kept(0, meta(), kept).unwrap();
        h.drain();
        assert_eq!(
            h.s.kept_to_hash(),
            None,
            "nothing is read before the upload starts"
        );
        h.start();
        let (sent, local) = run_resumed(&mut h, &bytes, false, |_| Reply::Status(200));
        assert!(local.is_empty());
        assert_eq!(
            sent.iter().map(|s| s.chunk).collect::<Vec<_>>(),
            (5..=9).collect::<Vec<_>>(),
            "the last chunk waits for the kept chunks' checksums"
        );
        assert!(sent.iter().all(|s| s.param(FILE[2]).is_none()));
        assert_eq!(
            h.s.kept_to_hash().map(|k| (k.1, k.2, k.3)),
            Some((1, 0, 10))
        );
        let (sent, local) = run_resumed(&mut h, &bytes, true, |_| Reply::Status(200));
        assert_eq!(local, vec![1, 2, 3, 4], "hashed locally, in order");
        assert_eq!(
            sent.iter()
                .map(|s| (s.chunk, s.param(FILE[2])))
                .collect::<Vec<_>>(),
            vec![(10, Some(crc_hex(&bytes)))],
            "kept chunks are never sent; the last one carries the digest"
        );
        assert!(h.files_are(&[f], FileStatus::Success), "{}", h.dump());
        let checksums = h.s.record(f).unwrap().checksums;
        assert_eq!(checksums.len(), 10, "every chunk's checksum is kept now");
        assert_eq!(checksums[0].1, format!("crc32c:{}", crc_hex(&bytes[..10])));
    }

    #[test]
    fn an_unreadable_kept_chunk_fails_the_file_as_unreadable() {
        let bytes = data(100, 3);
        let mut record = four_chunks_uploaded(&bytes);
        record.checksums.clear();
        let mut h = Harness::new(persisting(TestChunks::Never), 4);
        let f = h.s.add_file_kept(0, meta(), Some(record)).unwrap();
        h.drain();
        h.start();
        let (file, chunk, _, _) = h.s.kept_to_hash().unwrap();
        h.s.kept_hashed(h.now, file, chunk, None);
        h.drain();
        let e = h.s.file(f).unwrap().error.unwrap();
        assert_eq!(
            (e.kind, e.rule.as_deref()),
            (ErrorKind::Rejected, Some("readable"))
        );
        assert_eq!(h.s.kept_to_hash(), None);
    }

    #[test]
    fn a_lost_upload_forgets_the_kept_checksums_with_the_kept_chunks() {
        let bytes = data(100, 3);
        let kept = four_chunks_uploaded(&bytes);
        let mut h = Harness::new(persisting(TestChunks::Auto), 4);
        let f = h.s.add_file_kept(0, meta(), Some(kept)).unwrap();
        h.drain();
        h.start();
        let probe = h.next_request();
        let probe = read_and_hash(&mut h, &probe, &bytes).unwrap();
        assert_eq!((probe.phase, probe.chunk), (Phase::Test, 1));
        h.respond(probe.id, 204);
        let r = h.s.record(f).unwrap();
        assert!(r.confirmed.is_empty() && r.checksums.is_empty(), "{r:?}");
    }
}
