//! A scripted server and a simulated clock around the engine's [`Scheduler`], shared by
//! `engine_scenarios.rs` and `engine_props.rs` (included with `#[path]`). Built on its own it
//! is an empty test target.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, VecDeque};

use resumable_wasm::engine::{
    Action, Check, Config, Event, Failure, FileControl, FileId, FileMeta, Input, Observation,
    Phase, RequestId, RequestSpec, Scheduler,
};

/// Answers a CORS check batch: one observation per pair, or `None` to hold it.
pub type Checker = Box<dyn FnMut(&Check) -> Option<Vec<Observation>>>;

/// How the scripted server answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// An HTTP status with an empty body.
    Status(u16),
    /// A full answer.
    Full {
        status: u16,
        body: String,
        retry_after: Option<String>,
    },
    /// No HTTP answer.
    Fail(Failure),
    /// Leave the request unanswered.
    Hold,
}

/// The engine, a clock, and a record of everything it did.
pub struct Harness {
    pub s: Scheduler,
    pub now: u64,
    /// Sent, not yet taken by `next_request`.
    pub queue: VecDeque<RequestSpec>,
    /// Sent and neither answered nor aborted.
    pub in_flight: BTreeSet<RequestId>,
    /// Failed requests whose CORS check is under way (the engine still counts them in flight).
    pub checking: BTreeSet<RequestId>,
    /// Every request sent, in order.
    pub sent: Vec<RequestSpec>,
    /// Every event, in order.
    pub events: Vec<Event>,
    /// Every abort.
    pub aborted: Vec<RequestId>,
    /// The most requests ever in flight at once.
    pub max_in_flight: usize,
    /// A line per action and input, printed when a test helper panics.
    pub log: Vec<String>,
    /// Every CORS check batch asked for, in order.
    pub checks: Vec<Check>,
    /// Answers a check batch at once (one observation per pair), or `None` to hold it in
    /// `held_checks`. By default every pair is readable: the shape passes CORS.
    pub checker: Checker,
    /// Check batches the checker held.
    pub held_checks: Vec<Check>,
    /// `persist`: every record write asked for (file, first write), in order.
    pub kept: Vec<(FileId, bool)>,
    /// `persist`: every record deletion asked for (storage key), in order.
    pub forgotten: Vec<String>,
}

impl Harness {
    pub fn new(config: Config, seed: u64) -> Harness {
        Harness {
            s: Scheduler::new(config, seed),
            now: 0,
            queue: VecDeque::new(),
            in_flight: BTreeSet::new(),
            checking: BTreeSet::new(),
            sent: Vec::new(),
            events: Vec::new(),
            aborted: Vec::new(),
            max_in_flight: 0,
            log: Vec::new(),
            checks: Vec::new(),
            checker: Box::new(|c| Some(vec![Observation::Readable; c.pairs as usize])),
            held_checks: Vec::new(),
            kept: Vec::new(),
            forgotten: Vec::new(),
        }
    }

    pub fn add(&mut self, name: &str, size: u64) -> FileId {
        let id = self
            .s
            .add_file(
                self.now,
                FileMeta {
                    name: name.into(),
                    size,
                    ..Default::default()
                },
            )
            .expect("file accepted");
        self.drain();
        id
    }

    pub fn input(&mut self, input: Input) {
        self.log.push(format!("t={} in {input:?}", self.now));
        self.s.handle(self.now, input);
        self.drain();
    }

    pub fn start(&mut self) {
        self.input(Input::Start);
    }

    /// Applies a per-file control; whether it applied.
    pub fn control(&mut self, file: FileId, control: FileControl) -> bool {
        let applied = self.s.control_file(self.now, file, control);
        self.log.push(format!(
            "t={} control {control:?} {file:?} -> {applied}",
            self.now
        ));
        self.drain();
        applied
    }

    /// Every pair of a CORS check comes out `observation` from now on.
    pub fn check_all(&mut self, observation: Observation) {
        self.checker = Box::new(move |c| Some(vec![observation; c.pairs as usize]));
    }

    /// Polls every action and records it; answers CORS checks with `checker` afterwards.
    pub fn drain(&mut self) {
        let mut checks = Vec::new();
        while let Some(a) = self.s.poll_action() {
            match a {
                Action::Send(r) => {
                    self.log.push(format!(
                        "t={} send #{} {} {} chunk {} attempt {}",
                        self.now,
                        r.id.0,
                        r.phase.as_str(),
                        r.method,
                        r.chunk,
                        r.attempt
                    ));
                    assert!(self.in_flight.insert(r.id), "request id reused");
                    self.max_in_flight = self.max_in_flight.max(self.in_flight.len());
                    self.sent.push(r.clone());
                    self.queue.push_back(r);
                }
                Action::Abort(id) => {
                    self.log.push(format!("t={} abort #{}", self.now, id.0));
                    assert!(
                        self.in_flight.remove(&id) || self.checking.remove(&id),
                        "abort of a request not in flight"
                    );
                    self.queue.retain(|r| r.id != id);
                    self.aborted.push(id);
                }
                Action::Event(e) => {
                    self.log.push(format!("t={} event {e:?}", self.now));
                    self.events.push(e);
                }
                Action::Keep { file, added } => {
                    self.log
                        .push(format!("t={} keep {} added {added}", self.now, file.0));
                    self.kept.push((file, added));
                }
                Action::Forget { key } => {
                    self.log.push(format!("t={} forget {key:?}", self.now));
                    self.forgotten.push(key);
                }
                Action::Check(c) => {
                    self.log.push(format!(
                        "t={} check #{} {} pairs {} {}",
                        self.now, c.request.0, c.pairs, c.method, c.url
                    ));
                    assert!(
                        !self.in_flight.contains(&c.request) && self.checking.insert(c.request),
                        "check of a request that is still in flight or already checked"
                    );
                    self.checks.push(c.clone());
                    checks.push(c);
                }
            }
        }
        for c in checks {
            if !self.checking.contains(&c.request) {
                continue; // aborted by an earlier answer
            }
            match (self.checker)(&c) {
                Some(observations) => {
                    self.checking.remove(&c.request);
                    assert_eq!(
                        observations.len(),
                        c.pairs as usize,
                        "one observation per pair"
                    );
                    self.input(Input::Checked {
                        request: c.request,
                        observations,
                    });
                }
                None => self.held_checks.push(c),
            }
        }
    }

    /// Answers a held check batch.
    pub fn answer_check(&mut self, request: RequestId, observations: Vec<Observation>) {
        self.held_checks.retain(|c| c.request != request);
        self.checking.remove(&request);
        self.input(Input::Checked {
            request,
            observations,
        });
    }

    pub fn dump(&self) -> String {
        self.log.join("\n")
    }

    /// The oldest request not yet taken; panics with the action log if none.
    pub fn next_request(&mut self) -> RequestSpec {
        match self.queue.pop_front() {
            Some(r) => r,
            None => panic!("no request was sent\n{}", self.dump()),
        }
    }

    pub fn try_next(&mut self) -> Option<RequestSpec> {
        self.queue.pop_front()
    }

    /// Takes every queued request.
    pub fn take_all(&mut self) -> Vec<RequestSpec> {
        self.queue.drain(..).collect()
    }

    pub fn respond(&mut self, id: RequestId, status: u16) {
        self.reply(id, Reply::Status(status));
    }

    pub fn reply(&mut self, id: RequestId, reply: Reply) {
        let input = match reply {
            Reply::Hold => return,
            Reply::Status(status) => Input::Response {
                request: id,
                status,
                body: String::new(),
                retry_after: None,
            },
            Reply::Full {
                status,
                body,
                retry_after,
            } => Input::Response {
                request: id,
                status,
                body,
                retry_after,
            },
            Reply::Fail(failure) => Input::Failed {
                request: id,
                failure,
            },
        };
        self.in_flight.remove(&id);
        self.queue.retain(|r| r.id != id);
        self.input(input);
    }

    pub fn fail(&mut self, id: RequestId, failure: Failure) {
        self.reply(id, Reply::Fail(failure));
    }

    /// Moves the clock forward, firing due timers.
    pub fn advance_ms(&mut self, ms: u64) {
        self.now += ms;
        self.log.push(format!("t={} advance {ms}", self.now));
        self.s.handle_timeout(self.now);
        self.drain();
    }

    /// Moves the clock to the next deadline, if any.
    pub fn advance_to_deadline(&mut self) -> bool {
        match self.s.poll_deadline() {
            Some(d) => {
                let ms = d.saturating_sub(self.now);
                self.advance_ms(ms);
                true
            }
            None => false,
        }
    }

    /// Answers requests oldest first with `server` and follows timers, at most `max_steps`
    /// times. Returns `true` if the step limit was hit (a livelock), `false` once the engine
    /// is idle (nothing in flight, no timer).
    pub fn drive_bounded(
        &mut self,
        max_steps: usize,
        mut server: impl FnMut(&RequestSpec) -> Reply,
    ) -> bool {
        for _ in 0..max_steps {
            if let Some(r) = self.queue.pop_front() {
                let reply = server(&r);
                if matches!(reply, Reply::Hold) {
                    continue;
                }
                self.reply(r.id, reply);
            } else if !self.advance_to_deadline() {
                return false;
            }
        }
        true
    }

    /// Whether every file in `files` has `status`.
    pub fn files_are(&self, files: &[FileId], status: resumable_wasm::engine::FileStatus) -> bool {
        files
            .iter()
            .all(|f| self.s.file(*f).is_some_and(|v| v.status == status))
    }

    pub fn count_sent(&self, phase: Phase) -> usize {
        self.sent.iter().filter(|r| r.phase == phase).count()
    }

    pub fn has_event(&self, pred: impl Fn(&Event) -> bool) -> bool {
        self.events.iter().any(pred)
    }

    pub fn count_events(&self, pred: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|e| pred(e)).count()
    }
}
