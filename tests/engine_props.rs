//! Property tests of the upload engine's invariants (native only).
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/engine_harness.rs"]
mod harness;

use std::collections::{BTreeMap, BTreeSet};

use harness::{Harness, Reply};
use proptest::prelude::*;
use resumable_wasm::engine::plan::{ChunkPlan, MAX_SAFE_INTEGER};
use resumable_wasm::engine::{
    Config, ErrorKind, Event, Failure, FileControl, FileId, FileStatus, Input, Phase, Protocol,
    RequestId, TestChunks,
};

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Small files: enumerate every chunk.
    #[test]
    fn chunks_tile_small_files(size in 0u64..5_000, chunk in 1u64..700, force: bool) {
        let p = ChunkPlan::new(size, chunk, force);
        let mut next = 0u64;
        for n in 1..=p.count() {
            let (s, e) = p.range(n).unwrap();
            prop_assert_eq!(s, next, "gap or overlap before chunk {}", n);
            prop_assert!(e >= s);
            let len = e - s;
            if force {
                prop_assert!(len <= chunk);
            } else {
                prop_assert!(len < 2 * chunk);
            }
            if size > 0 {
                prop_assert!(len > 0);
            }
            if !force && size >= chunk {
                prop_assert!(len >= chunk);
            }
            next = e;
        }
        prop_assert_eq!(next, size);
        prop_assert!(p.range(p.count() + 1).is_none());
    }

    /// Any size up to 2^53-1: the ends meet and neighbours abut.
    #[test]
    fn chunks_tile_any_file(size in 0u64..=MAX_SAFE_INTEGER, chunk in 1u64..=MAX_SAFE_INTEGER, force: bool, pick in any::<u64>()) {
        let p = ChunkPlan::new(size, chunk, force);
        prop_assert!(p.count() >= 1);
        prop_assert_eq!(p.range(1).unwrap().0, 0);
        prop_assert_eq!(p.range(p.count()).unwrap().1, size);
        let expected = if force { size.div_ceil(chunk) } else { size / chunk }.max(1);
        prop_assert_eq!(p.count(), expected);
        if p.count() > 1 {
            let k = 1 + pick % (p.count() - 1);
            prop_assert_eq!(p.range(k).unwrap().1, p.range(k + 1).unwrap().0);
            prop_assert_eq!(p.len(k), chunk);
        }
    }
}

/// A scripted server that stores chunks, answers probes truthfully and fails at random.
struct Server {
    stored: BTreeSet<(FileId, u32)>,
    rng: u64,
    /// Out of 100: how often a request fails transiently.
    fail_pct: u64,
    /// Files whose uploads are refused for good.
    refuse: BTreeSet<FileId>,
}

impl Server {
    fn rand(&mut self, n: u64) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % n.max(1)
    }

    fn answer(&mut self, r: &resumable_wasm::engine::RequestSpec) -> Reply {
        if r.phase == Phase::Upload && self.refuse.contains(&r.file) {
            return Reply::Status(415);
        }
        if self.rand(100) < self.fail_pct {
            // A failed upload may still have been stored.
            if r.phase == Phase::Upload && self.rand(2) == 0 {
                self.stored.insert((r.file, r.chunk));
            }
            return match self.rand(4) {
                0 => Reply::Fail(Failure::NoResponse),
                1 => Reply::Fail(Failure::Timeout),
                2 => Reply::Status(503),
                _ => Reply::Full {
                    status: 429,
                    body: String::new(),
                    retry_after: Some("1".into()),
                },
            };
        }
        match r.phase {
            Phase::Test => Reply::Status(if self.stored.contains(&(r.file, r.chunk)) {
                200
            } else {
                204
            }),
            Phase::Upload => {
                self.stored.insert((r.file, r.chunk));
                Reply::Status(200)
            }
            other => unreachable!("no S3 request under these options: {other:?}"),
        }
    }
}

#[derive(Debug, Clone)]
struct Setup {
    slots: u32,
    test: TestChunks,
    parallel: bool,
    prio: bool,
    flow: bool,
    chunk: u64,
    sizes: Vec<u64>,
    seed: u64,
    fail_pct: u64,
    preflight: bool,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        1u32..6,
        prop_oneof![
            Just(TestChunks::Auto),
            Just(TestChunks::Always),
            Just(TestChunks::Never)
        ],
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        1u64..8,
        prop::collection::vec(0u64..40, 1..4),
        any::<u64>(),
        0u64..40,
        any::<bool>(),
    )
        .prop_map(
            |(slots, test, parallel, prio, flow, chunk, sizes, seed, fail_pct, preflight)| Setup {
                slots,
                test,
                parallel,
                prio,
                flow,
                chunk,
                sizes,
                seed,
                fail_pct,
                preflight,
            },
        )
}

fn build(s: &Setup) -> (Harness, Vec<FileId>) {
    let mut c = Config::new("https://up.example/u");
    if s.flow {
        c = c.with_protocol(Protocol::Flow);
    }
    c.page_origin = Some("https://app.example".into());
    c.min_file_size = 0;
    c.simultaneous_uploads = Some(s.slots);
    c.test_chunks = s.test;
    c.parallel_files = s.parallel;
    c.prioritize_first_and_last_chunk = s.prio;
    c.chunk_size = s.chunk;
    c.max_chunk_retries = 1000;
    c.chunk_retry_interval_ms = 10;
    c.max_retry_interval_ms = 100;
    if s.preflight {
        c.headers = vec![("Authorization".into(), "Bearer x".into())];
    }
    // Flow's 202 is a success; 503/429 are transient in both dialects.
    let mut h = Harness::new(c, s.seed);
    let ids = s
        .sizes
        .iter()
        .enumerate()
        .map(|(i, size)| h.add(&format!("f{i}"), *size))
        .collect();
    (h, ids)
}

/// Answers a random in-flight request; follows timers when none is queued.
/// Returns false when the engine is idle.
fn step(h: &mut Harness, server: &mut Server) -> bool {
    if !h.queue.is_empty() {
        let i = usize::try_from(server.rand(h.queue.len() as u64)).unwrap();
        let r = h.queue.remove(i).unwrap();
        let reply = server.answer(&r);
        h.reply(r.id, reply);
        true
    } else {
        h.advance_to_deadline()
    }
}

fn chunk_successes(h: &Harness) -> BTreeMap<(FileId, u32), usize> {
    let mut m = BTreeMap::new();
    for e in &h.events {
        if let Event::ChunkSuccess { file, chunk, .. } = e {
            *m.entry((*file, *chunk)).or_insert(0) += 1;
        }
    }
    m
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Random transient failures and answer order: slots are never exceeded, and every chunk of
    /// every file is confirmed exactly once.
    #[test]
    fn every_chunk_exactly_once(s in setup()) {
        let (mut h, ids) = build(&s);
        let mut server = Server { stored: BTreeSet::new(), rng: s.seed | 1, fail_pct: s.fail_pct, refuse: BTreeSet::new() };
        h.start();
        let mut steps = 0;
        while step(&mut h, &mut server) {
            steps += 1;
            prop_assert!(steps < 20_000, "livelock\n{}", h.dump());
        }
        prop_assert!(h.max_in_flight <= s.slots as usize);
        prop_assert!(h.in_flight.is_empty());
        let seen = chunk_successes(&h);
        for (id, size) in ids.iter().zip(&s.sizes) {
            let count = ChunkPlan::new(*size, s.chunk, false).count();
            for n in 1..=count {
                let n = u32::try_from(n).unwrap();
                prop_assert_eq!(seen.get(&(*id, n)).copied(), Some(1), "file {:?} chunk {}\n{}", id, n, h.dump());
            }
            prop_assert_eq!(h.s.file(*id).unwrap().status, FileStatus::Success);
        }
        prop_assert_eq!(seen.values().sum::<usize>(), seen.len());
        prop_assert_eq!(h.count_events(|e| *e == Event::Complete), 1);
        prop_assert!(h.s.is_drained());
    }

    /// After `Pause`, no new request until `Resume`, and the upload still finishes.
    #[test]
    fn pause_issues_no_request(s in setup(), pause_at in 0usize..30, answers in 0usize..10) {
        let (mut h, ids) = build(&s);
        let mut server = Server { stored: BTreeSet::new(), rng: s.seed | 1, fail_pct: s.fail_pct, refuse: BTreeSet::new() };
        h.start();
        for _ in 0..pause_at {
            if !step(&mut h, &mut server) { break; }
        }
        h.input(Input::Pause);
        let before = h.sent.len();
        for _ in 0..answers {
            if !step(&mut h, &mut server) { break; }
        }
        prop_assert_eq!(h.sent.len(), before, "sent while paused\n{}", h.dump());
        h.input(Input::Resume);
        let mut steps = 0;
        while step(&mut h, &mut server) {
            steps += 1;
            prop_assert!(steps < 20_000);
        }
        for id in ids {
            prop_assert_eq!(h.s.file(id).unwrap().status, FileStatus::Success);
        }
        prop_assert!(h.max_in_flight <= s.slots as usize);
    }

    /// `Cancel` leaves nothing in flight, and nothing is sent afterwards.
    #[test]
    fn cancel_leaves_nothing_in_flight(s in setup(), cancel_at in 0usize..30) {
        let (mut h, ids) = build(&s);
        let mut server = Server { stored: BTreeSet::new(), rng: s.seed | 1, fail_pct: s.fail_pct, refuse: BTreeSet::new() };
        h.start();
        for _ in 0..cancel_at {
            if !step(&mut h, &mut server) { break; }
        }
        h.input(Input::Cancel);
        prop_assert!(h.in_flight.is_empty());
        let before = h.sent.len();
        h.advance_ms(1_000_000);
        prop_assert_eq!(h.sent.len(), before);
        prop_assert!(h.s.poll_deadline().is_none());
        prop_assert!(h.s.is_drained());
        prop_assert_eq!(h.events.last(), Some(&Event::Complete));
        for id in ids {
            let st = h.s.file(id).unwrap().status;
            prop_assert!(st == FileStatus::Cancelled || st == FileStatus::Success);
        }
    }

    /// A permanent error fails only its file.
    #[test]
    fn permanent_error_fails_only_its_file(s in setup(), bad in any::<prop::sample::Index>()) {
        let (mut h, ids) = build(&s);
        let bad = ids[bad.index(ids.len())];
        let mut refuse = BTreeSet::new();
        refuse.insert(bad);
        let mut server = Server { stored: BTreeSet::new(), rng: s.seed | 1, fail_pct: s.fail_pct, refuse };
        h.start();
        let mut steps = 0;
        while step(&mut h, &mut server) {
            steps += 1;
            prop_assert!(steps < 20_000);
        }
        for id in &ids {
            let v = h.s.file(*id).unwrap();
            if *id == bad {
                // A probe may have found every chunk present only if nothing was uploaded;
                // the server never stores refused chunks, so the file must have failed.
                prop_assert_eq!(v.status, FileStatus::Error);
                let e = v.error.unwrap();
                prop_assert_eq!(e.kind, ErrorKind::Http);
                prop_assert_eq!(e.status, Some(415));
            } else {
                prop_assert_eq!(v.status, FileStatus::Success);
            }
        }
        prop_assert!(h.in_flight.is_empty());
        prop_assert_eq!(h.count_events(|e| *e == Event::Complete), 1);
    }
}

/// Every request sent since `from` belongs to a file the engine calls uploading: none to a
/// paused, finished, failed or cancelled file.
fn sends_are_for_uploading_files(h: &Harness, from: usize) -> Result<(), TestCaseError> {
    for r in &h.sent[from..] {
        let status = h.s.file(r.file).map(|v| v.status);
        prop_assert_eq!(
            status,
            Some(FileStatus::Uploading),
            "request {:?} chunk {}\n{}",
            r.id,
            r.chunk,
            h.dump()
        );
    }
    Ok(())
}

/// Steps until the engine is idle, checking every request sent on the way.
fn run_to_idle(h: &mut Harness, server: &mut Server) -> Result<(), TestCaseError> {
    let mut steps = 0;
    loop {
        let before = h.sent.len();
        if !step(h, server) {
            return Ok(());
        }
        sends_are_for_uploading_files(h, before)?;
        steps += 1;
        prop_assert!(steps < 20_000, "livelock\n{}", h.dump());
    }
}

/// One control of a random interleaving (see `controls_in_any_order`).
#[derive(Debug, Clone)]
enum Op {
    File(FileControl, prop::sample::Index),
    Queue(Input),
}

fn op() -> impl Strategy<Value = Op> {
    let control = prop_oneof![
        Just(FileControl::Pause),
        Just(FileControl::Resume),
        Just(FileControl::Retry),
        Just(FileControl::Cancel),
    ];
    prop_oneof![
        6 => (control, any::<prop::sample::Index>()).prop_map(|(c, i)| Op::File(c, i)),
        1 => Just(Op::Queue(Input::Pause)),
        1 => Just(Op::Queue(Input::Resume)),
        1 => Just(Op::Queue(Input::Start)),
        1 => Just(Op::Queue(Input::Cancel)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// A file paused mid-upload gets no request while the others finish and the run
    /// completes around it; resumed, it finishes with every chunk confirmed exactly once.
    #[test]
    fn a_paused_file_waits_while_the_others_finish(s in setup(), pause_at in 0usize..30, victim in any::<prop::sample::Index>()) {
        let (mut h, ids) = build(&s);
        let victim = ids[victim.index(ids.len())];
        let mut server = Server { stored: BTreeSet::new(), rng: s.seed | 1, fail_pct: s.fail_pct, refuse: BTreeSet::new() };
        h.start();
        for _ in 0..pause_at {
            if !step(&mut h, &mut server) { break; }
        }
        let paused = h.control(victim, FileControl::Pause);
        let before = h.sent.len();
        run_to_idle(&mut h, &mut server)?;
        prop_assert!(h.sent[before..].iter().all(|r| r.file != victim), "sent for the paused file\n{}", h.dump());
        for id in &ids {
            let status = h.s.file(*id).unwrap().status;
            if *id == victim && paused {
                // Its requests in flight at the pause may have finished it.
                prop_assert!(status == FileStatus::Paused || status == FileStatus::Success);
            } else {
                prop_assert_eq!(status, FileStatus::Success);
            }
        }
        prop_assert_eq!(h.count_events(|e| *e == Event::Complete), 1);
        prop_assert!(h.s.is_drained() && h.in_flight.is_empty());
        h.control(victim, FileControl::Resume);
        run_to_idle(&mut h, &mut server)?;
        let seen = chunk_successes(&h);
        for (id, size) in ids.iter().zip(&s.sizes) {
            prop_assert_eq!(h.s.file(*id).unwrap().status, FileStatus::Success);
            let count = u32::try_from(ChunkPlan::new(*size, s.chunk, false).count()).unwrap();
            for n in 1..=count {
                prop_assert_eq!(seen.get(&(*id, n)).copied(), Some(1), "file {:?} chunk {}\n{}", id, n, h.dump());
            }
        }
        prop_assert!(h.max_in_flight <= s.slots as usize);
    }

    /// Per-file and queue controls in any order, between random answers: no request is ever
    /// sent for a file that is not uploading, slots are never exceeded, only cancels abort,
    /// and once everything is resumed and retried every file reaches the server whole.
    #[test]
    fn controls_in_any_order(s in setup(), ops in prop::collection::vec((op(), 0usize..6), 1..12)) {
        let (mut h, ids) = build(&s);
        let mut server = Server { stored: BTreeSet::new(), rng: s.seed | 1, fail_pct: s.fail_pct, refuse: BTreeSet::new() };
        h.start();
        for (op, steps) in ops {
            let (sent, aborted) = (h.sent.len(), h.aborted.len());
            let cancels = match op {
                Op::File(control, i) => {
                    let file = ids[i.index(ids.len())];
                    h.control(file, control);
                    if control == FileControl::Cancel {
                        let left = h.sent.iter().filter(|r| r.file == file && h.in_flight.contains(&r.id)).count();
                        prop_assert_eq!(left, 0, "requests of a cancelled file still in flight\n{}", h.dump());
                    }
                    control == FileControl::Cancel
                }
                Op::Queue(input) => {
                    let cancels = input == Input::Cancel;
                    h.input(input);
                    cancels
                }
            };
            sends_are_for_uploading_files(&h, sent)?;
            prop_assert!(cancels || h.aborted.len() == aborted, "aborted without a cancel\n{}", h.dump());
            prop_assert!(h.s.totals_are_true(), "running totals differ from a count over the files\n{}", h.dump());
            for _ in 0..steps {
                let (sent, aborted) = (h.sent.len(), h.aborted.len());
                if !step(&mut h, &mut server) { break; }
                sends_are_for_uploading_files(&h, sent)?;
                prop_assert_eq!(h.aborted.len(), aborted);
                prop_assert!(h.s.totals_are_true(), "running totals differ from a count over the files\n{}", h.dump());
            }
            prop_assert!(h.max_in_flight <= s.slots as usize);
        }
        h.input(Input::Resume);
        for id in &ids {
            h.control(*id, FileControl::Retry);
        }
        run_to_idle(&mut h, &mut server)?;
        for (id, size) in ids.iter().zip(&s.sizes) {
            prop_assert_eq!(h.s.file(*id).unwrap().status, FileStatus::Success, "{}", h.dump());
            let count = u32::try_from(ChunkPlan::new(*size, s.chunk, false).count()).unwrap();
            for n in 1..=count {
                prop_assert!(server.stored.contains(&(*id, n)), "file {:?} chunk {} not on the server", id, n);
            }
        }
        prop_assert!(h.s.is_drained() && h.in_flight.is_empty());
        prop_assert!(h.max_in_flight <= s.slots as usize);
    }
}

#[test]
fn request_ids_are_unique() {
    let s = Setup {
        slots: 3,
        test: TestChunks::Auto,
        parallel: true,
        prio: true,
        flow: false,
        chunk: 3,
        sizes: vec![10, 20, 7],
        seed: 5,
        fail_pct: 30,
        preflight: true,
    };
    let (mut h, _) = build(&s);
    let mut server = Server {
        stored: BTreeSet::new(),
        rng: 99,
        fail_pct: 30,
        refuse: BTreeSet::new(),
    };
    h.start();
    while step(&mut h, &mut server) {}
    let ids: BTreeSet<RequestId> = h.sent.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), h.sent.len());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// `persist`: the confirmed runs hold exactly the chunks inserted, in any order, as the
    /// fewest disjoint, non-adjacent runs.
    #[test]
    fn persist_runs_are_the_set_of_chunks(chunks in proptest::collection::vec(1u32..200, 0..120)) {
        let mut runs = resumable_wasm::engine::persist::Runs::default();
        for n in &chunks {
            runs.insert(*n);
        }
        let set: BTreeSet<u32> = chunks.iter().copied().collect();
        prop_assert_eq!(runs.chunks().collect::<Vec<_>>(), set.iter().copied().collect::<Vec<_>>());
        prop_assert_eq!(runs.count(), set.len() as u64);
        for n in 0..202 {
            prop_assert_eq!(runs.contains(n), set.contains(&n));
        }
        for w in runs.runs().windows(2) {
            prop_assert!(w[0].1 + 1 < w[1].0, "runs {:?} touch or overlap", w);
        }
    }

    /// `persist`: any record reads back from its text as it was, whatever its strings hold.
    #[test]
    fn persist_record_round_trips(
        texts in proptest::collection::vec(".{0,12}", 5),
        size in 0u64..=MAX_SAFE_INTEGER,
        last_modified in proptest::option::of(0u64..=MAX_SAFE_INTEGER),
        relative in proptest::option::of(".{0,12}"),
        chunks in proptest::collection::vec(1u32..u32::MAX, 0..20),
        state in proptest::collection::vec(("[a-zA-Z]{1,6}", ".{0,10}"), 0..3),
        sums in proptest::collection::vec((1u32..1000, ".{0,10}"), 0..3),
    ) {
        use resumable_wasm::engine::persist::Record;
        let mut r = Record {
            scope: texts[0].clone(),
            identifier: texts[1].clone(),
            name: texts[2].clone(),
            size,
            last_modified,
            relative_path: relative,
            mime_type: texts[3].clone(),
            ..Record::default()
        };
        for n in chunks {
            r.confirmed.insert(n);
        }
        for (n, v) in &state {
            r.set_state(n, v);
        }
        // Kept lowest chunk first, one per chunk (`Record::set_checksum`).
        for (n, v) in &sums {
            r.set_checksum(*n, v);
        }
        prop_assert_eq!(Record::decode(&r.encode()), Some(r));
    }
}
