//! The CORS verdict: was a request that got no readable answer blocked by CORS, or did its
//! connection fail?
//!
//! To script both look the same (status 0, no headers, no body), and a `no-cors` request that
//! reaches the server afterwards does not tell them apart either: a connection can die
//! mid-request while the server is up. What does tell them apart is that CORS is
//! **deterministic per request shape** — the origin and path, the credentials mode, and, when
//! the request is preflighted, its method (unless GET/HEAD/POST) and header names: that is all
//! the browser's check looks at. A misconfiguration blocks *every* request of the shape, while a
//! dropped connection is random. So the engine verifies a failure with *pairs* of requests:
//! a cheap cors-mode request of the same shape ([`Check`]), and, if that is not readable, a
//! `no-cors` request to the same URL. Each pair yields an [`Observation`]:
//!
//! - **readable**: the shape passes CORS right now (any status counts, 4xx and 5xx too);
//! - **blocked**: no readable answer, yet the server answered the `no-cors` request;
//! - **inconclusive**: neither answered (or one timed out): the link or the server is down.
//!
//! The [`Ledger`] keeps, per shape, how many *blocked* pairs came in a row; any readable
//! answer of the shape (a real request's or a check's) and any inconclusive pair reset it. The
//! [`verdict`] declares CORS only when that run reaches [`CORS_EVIDENCE`] and this failure
//! checked at least one pair itself (so "blocked earlier" never outlives a fix of the server),
//! and gives up on CORS — the failure is retried as a network error — at the first readable or
//! inconclusive pair. Checks go in doubling batches (1, 1, 2, 4, 8): a real misconfiguration is
//! declared after five round trips and one attempt of the request itself.
//!
//! **How often a dropped connection is called CORS.** A pair comes out *blocked* by chance only
//! when the cors-mode request is lost and the `no-cors` one is not: with independent losses
//! `p_c` and `p_n`, probability `p_c·(1−p_n)`, at most 1/4 when both are equal (at a 50 % drop
//! rate). A verdict needs 16 such pairs in a row, so a given failure ends as a false `cors`
//! with probability at most `4^-16 ≈ 2.3·10^-10`. Against server-fixture at `--drop-rate 0.5`,
//! Chromium measured `p_c ≈ 0.32` (it re-sends once on a reused connection) and 0.17–0.22
//! blocked pairs per pair (1,200 pairs): about `10^-11` per failure, so an upload of 20 files
//! with a few hundred failed requests is called CORS by mistake less than once in `10^8` runs. Even
//! in the worst split the browser's re-sends allow (`p_c = 1/2`, `p_n = 1/4`: 3/8 per pair) it
//! is `1.5·10^-7` per failure. The price: a real misconfiguration costs 16 pairs (32 small
//! requests, plus the failing preflights) once per shape per upload run.
//!
//! What it cannot tell: a server that answers every request of a shape except some (say, a
//! proxy's error page without CORS headers for large bodies only) is *readable* to the checks,
//! so those failures are retried and end as `network`; on a link that also loses most
//! `no-cors` requests, a real misconfiguration can end as `network` after the retries.

use crate::engine::config::Config;
use crate::engine::params::{merged_headers, FileId, RequestId, RequestSpec};
use crate::engine::preflight::{self, origin_of};
use crate::engine::text;

/// Blocked pairs in a row that make a CORS verdict (see the module docs for the arithmetic).
pub const CORS_EVIDENCE: u32 = 16;

/// How long one batch of checks may take; a batch still running then is inconclusive.
pub const CHECK_TIMEOUT_MS: u64 = 10_000;

/// The parts of a request CORS decides on (see the module docs). Two requests of one shape
/// pass or fail the browser's check together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsShape {
    /// The URL without query or fragment.
    pub resource: String,
    /// `credentials: 'include'`.
    pub with_credentials: bool,
    /// Whether a preflight precedes the request.
    pub preflight: bool,
    /// The method when it is not GET, HEAD or POST (only those need the server's permission).
    pub method: Option<String>,
    /// The header names the page sets, lowercased and sorted.
    pub headers: Vec<String>,
}

impl CorsShape {
    /// The shape of `spec`.
    #[must_use]
    pub fn of(spec: &RequestSpec) -> CorsShape {
        let mut headers = Vec::new();
        for (name, _) in &spec.headers {
            preflight::insert_sorted(&mut headers, &name.to_ascii_lowercase());
        }
        CorsShape {
            resource: resource(&spec.url).to_string(),
            with_credentials: spec.with_credentials,
            preflight: spec.preflight.preflight,
            method: (!is_simple_method(&spec.method)).then(|| spec.method.to_ascii_uppercase()),
            headers,
        }
    }
}

/// The URL without its query and fragment.
fn resource(url: &str) -> &str {
    text::head(text::head(url, b'#'), b'?')
}

fn is_simple_method(m: &str) -> bool {
    ["GET", "HEAD", "POST"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(m))
}

/// Whether a request to `url` from `page_origin` is cross-origin (CORS applies). An unknown
/// page origin counts as cross-origin.
#[must_use]
pub fn is_cross_origin(url: &str, page_origin: Option<&str>) -> bool {
    match page_origin {
        Some(page) => origin_of(url).as_deref() != origin_of(page).as_deref(),
        None => true,
    }
}

/// What one check pair showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// The cors-mode request got a readable answer: the shape passes CORS now.
    Readable,
    /// The cors-mode request got no readable answer, and the `no-cors` request after it
    /// reached the server.
    Blocked,
    /// Neither answered, or the batch timed out or was aborted: says nothing about CORS.
    Inconclusive,
}

/// Blocked pairs in a row, per shape.
#[derive(Debug, Default)]
pub struct Ledger {
    runs: Vec<(CorsShape, u32)>,
}

impl Ledger {
    /// Blocked pairs of `shape` since its last readable answer or inconclusive pair.
    #[must_use]
    pub fn streak(&self, shape: &CorsShape) -> u32 {
        self.runs
            .iter()
            .find(|(s, _)| s == shape)
            .map_or(0, |(_, n)| *n)
    }

    /// A request of `shape` got a readable answer.
    pub fn readable(&mut self, shape: &CorsShape) {
        self.runs.retain(|(s, _)| s != shape);
    }

    /// `spec` got a readable answer. Called for every answered request: the shape is worked
    /// out only when there is evidence to clear (after a CORS check), not on every answer.
    pub fn readable_answer(&mut self, spec: &RequestSpec) {
        if !self.runs.is_empty() {
            self.readable(&CorsShape::of(spec));
        }
    }

    /// Records a batch of checks of `shape`; `true` when every pair was blocked. A batch with
    /// any other result resets the run (its blocked pairs are dropped too: the order inside a
    /// batch is unknown, and dropping them only delays a verdict).
    pub fn record(&mut self, shape: &CorsShape, batch: &[Observation]) -> bool {
        let all_blocked = !batch.is_empty() && batch.iter().all(|o| *o == Observation::Blocked);
        if !all_blocked {
            self.readable(shape);
            return false;
        }
        let added = u32::try_from(batch.len()).unwrap_or(u32::MAX);
        match self.runs.iter_mut().find(|(s, _)| s == shape) {
            Some((_, n)) => *n = n.saturating_add(added),
            None => self.runs.push((shape.clone(), added)),
        }
        true
    }

    /// Forgets everything (a new upload run re-checks from scratch).
    pub fn clear(&mut self) {
        self.runs.clear();
    }
}

/// What to do with a failure that got no readable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not CORS (or not provably): retry it as a network error.
    Network,
    /// Send this many more check pairs before deciding.
    Verify(u32),
    /// CORS blocks this shape: fail the file with kind `cors`.
    Cors,
}

/// The facts a [`verdict`] is made of, for one failure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evidence {
    /// The shape's run of blocked pairs ([`Ledger::streak`]).
    pub streak: u32,
    /// Pairs of the shape that other failures' checks have under way (they may complete the
    /// run, so this failure asks for fewer).
    pub pending: u32,
    /// The blocked pairs this failure's own checks added.
    pub checked: u32,
    /// Whether one of this failure's batches had a readable or inconclusive pair.
    pub refuted: bool,
}

/// The verdict for one failure.
///
/// ```
/// use resumable_wasm::engine::verdict::{verdict, Evidence, Verdict, CORS_EVIDENCE};
/// let e = |streak, checked| Evidence { streak, checked, ..Evidence::default() };
/// assert_eq!(verdict(e(0, 0)), Verdict::Verify(1));
/// assert_eq!(verdict(e(4, 4)), Verdict::Verify(4));
/// assert_eq!(verdict(Evidence { pending: 10, ..e(4, 4) }), Verdict::Verify(2));
/// assert_eq!(verdict(e(CORS_EVIDENCE, 8)), Verdict::Cors);
/// assert_eq!(verdict(e(CORS_EVIDENCE, 0)), Verdict::Verify(1), "a fresh check first");
/// assert_eq!(verdict(Evidence { refuted: true, ..e(0, 3) }), Verdict::Network);
/// ```
#[must_use]
pub fn verdict(evidence: Evidence) -> Verdict {
    decide(CORS_EVIDENCE, evidence)
}

/// [`verdict`] with the run needed as a parameter (tests simulate small ones).
fn decide(needed: u32, e: Evidence) -> Verdict {
    if e.refuted {
        Verdict::Network
    } else if e.checked > 0 && e.streak >= needed {
        Verdict::Cors
    } else {
        // Doubling batches, never past what the verdict still needs; at least one fresh pair.
        let missing = needed.saturating_sub(e.streak.saturating_add(e.pending));
        Verdict::Verify(e.checked.max(1).min(missing.max(1)))
    }
}

/// One batch of check pairs for a failed request (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The failed request; answer with `Input::Checked`.
    pub request: RequestId,
    /// Its file (for the `headers` function, which the driver applies to checks too).
    pub file: FileId,
    /// Its chunk.
    pub chunk: u32,
    /// How many pairs to send at once.
    pub pairs: u32,
    /// The cors-mode request's method: GET, unless the shape's preflight depends on the
    /// method (not GET/HEAD/POST) or on an upload listener; then the request's own method.
    pub method: String,
    /// The cors-mode request's URL: the request's own for a GET (a probe, or the constant
    /// chunk URL), without the query otherwise, so that a body-less PUT/POST carries no chunk
    /// parameters a lax server could take for an empty chunk.
    pub url: String,
    /// The request's headers (the shape's names and values).
    pub headers: Vec<(String, String)>,
    /// The request's credentials mode.
    pub with_credentials: bool,
    /// Send through XHR with an upload listener and an empty body, as the request was:
    /// the listener is what made it preflighted.
    pub upload_listener: bool,
    /// The `no-cors` request's URL: the failed request's own.
    pub reach_url: String,
    /// The batch's time limit ([`CHECK_TIMEOUT_MS`]).
    pub timeout_ms: u64,
}

impl Check {
    /// A batch of `pairs` checks of `spec`'s shape.
    #[must_use]
    pub fn of(spec: &RequestSpec, pairs: u32) -> Check {
        let own_method = !is_simple_method(&spec.method) || spec.upload_listener;
        let (method, url) = if own_method {
            (spec.method.clone(), resource(&spec.url).to_string())
        } else {
            ("GET".to_string(), spec.url.clone())
        };
        Check {
            request: spec.id,
            file: spec.file,
            chunk: spec.chunk,
            pairs,
            method,
            url,
            headers: spec.headers.clone(),
            with_credentials: spec.with_credentials,
            upload_listener: spec.upload_listener,
            reach_url: spec.url.clone(),
            timeout_ms: CHECK_TIMEOUT_MS,
        }
    }

    /// The check with the values of the `headers` function applied, as the request had them
    /// (the header names are part of the shape).
    #[must_use]
    pub fn with_dynamic_headers(mut self, config: &Config, dynamic: &[(String, String)]) -> Check {
        self.headers = merged_headers(config, dynamic);
        self
    }

    /// Whether the cors-mode request carries a (zero-length, untyped) body.
    #[must_use]
    pub fn has_body(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::config::ProgressMode;
    use crate::engine::params::FileMeta;
    use crate::engine::{Input, Scheduler};

    fn spec_of(mut c: Config, phase_upload: bool) -> RequestSpec {
        c.page_origin = Some("https://app.example".into());
        // A one-chunk file: 'auto' would send it without a probe.
        c.test_chunks = if phase_upload {
            crate::engine::TestChunks::Never
        } else {
            crate::engine::TestChunks::Always
        };
        let mut s = Scheduler::new(c, 1);
        s.add_file(
            0,
            FileMeta {
                name: "a".into(),
                size: 10,
                ..Default::default()
            },
        )
        .unwrap();
        s.handle(0, Input::Start);
        core::iter::from_fn(|| s.poll_action())
            .find_map(|a| match a {
                crate::engine::Action::Send(r) => Some(r),
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn probe_and_simple_post_share_a_shape() {
        let c = Config::new("https://up.example/upload");
        let probe = spec_of(c.clone(), false);
        let post = spec_of(c, true);
        assert_ne!(probe.method, post.method);
        assert_eq!(CorsShape::of(&probe), CorsShape::of(&post));
        assert_eq!(
            CorsShape::of(&probe).resource,
            "https://up.example/upload",
            "no query"
        );
    }

    #[test]
    fn shapes_differ_by_what_cors_reads() {
        let base = Config::new("https://up.example/upload");
        let shape = |c: Config| CorsShape::of(&spec_of(c, true));
        let plain = shape(base.clone());
        let mut creds = base.clone();
        creds.with_credentials = true;
        let mut auth = base.clone();
        auth.headers = vec![("Authorization".into(), "Bearer t".into())];
        let mut put = base.clone();
        put.upload_method = "PUT".into();
        let mut bytes = base.clone();
        bytes.progress = ProgressMode::Bytes;
        let mut other = base.clone();
        other.target = "https://up.example/other".into();
        let all = [
            plain,
            shape(creds),
            shape(auth),
            shape(put.clone()),
            shape(bytes),
            shape(other),
        ];
        for (i, a) in all.iter().enumerate() {
            for b in all.iter().skip(i + 1) {
                assert_ne!(a, b);
            }
        }
        assert_eq!(shape(put).method.as_deref(), Some("PUT"));
    }

    #[test]
    fn checks_mirror_the_shape() {
        let base = Config::new("https://up.example/upload");
        // A simple POST is checked with a GET of the same URL, headers and credentials.
        let mut c = base.clone();
        c.with_credentials = true;
        c.headers = vec![("Authorization".into(), "Bearer t".into())];
        let post = spec_of(c, true);
        let check = Check::of(&post, 2);
        assert_eq!(
            (check.method.as_str(), check.url.as_str(), check.pairs),
            ("GET", "https://up.example/upload", 2)
        );
        assert_eq!(check.headers, post.headers);
        assert!(check.with_credentials && !check.upload_listener && !check.has_body());
        assert_eq!(check.request, post.id);
        // A probe is checked with itself.
        let probe = spec_of(base.clone(), false);
        assert_eq!(Check::of(&probe, 1).url, probe.url);
        // PUT, and a listener-forced preflight, keep their method, without chunk parameters.
        let mut put = base.clone();
        put.upload_method = "PUT".into();
        put.upload_mode = crate::engine::UploadMode::Octet;
        let put = spec_of(put, true);
        assert!(put.url.contains('?'));
        let check = Check::of(&put, 1);
        assert_eq!(
            (check.method.as_str(), check.url.as_str()),
            ("PUT", "https://up.example/upload")
        );
        assert!(check.has_body());
        assert_eq!(check.reach_url, put.url);
        let mut bytes = base;
        bytes.progress = ProgressMode::Bytes;
        let check = Check::of(&spec_of(bytes, true), 1);
        assert!(check.upload_listener && check.method == "POST" && check.has_body());
    }

    #[test]
    fn cross_origin() {
        assert!(is_cross_origin(
            "https://up.example/u",
            Some("https://app.example")
        ));
        assert!(!is_cross_origin(
            "https://app.example:443/u",
            Some("https://app.example")
        ));
        assert!(is_cross_origin("https://app.example/u", None));
    }

    #[test]
    fn ledger_runs_reset_on_any_other_result() {
        use Observation::{Blocked, Inconclusive, Readable};
        let shape = CorsShape::of(&spec_of(Config::new("https://up.example/u"), true));
        let mut other = shape.clone();
        other.with_credentials = true;
        let mut l = Ledger::default();
        assert!(l.record(&shape, &[Blocked, Blocked]));
        assert!(l.record(&other, &[Blocked]));
        assert_eq!((l.streak(&shape), l.streak(&other)), (2, 1));
        assert!(!l.record(&shape, &[Blocked, Readable]));
        assert_eq!(l.streak(&shape), 0);
        assert!(l.record(&shape, &[Blocked]));
        assert!(!l.record(&shape, &[Inconclusive]));
        assert_eq!(l.streak(&shape), 0);
        assert!(!l.record(&shape, &[]), "an empty batch proves nothing");
        l.readable(&other);
        assert_eq!(l.streak(&other), 0);
        l.record(&shape, &[Blocked]);
        l.clear();
        assert_eq!(l.streak(&shape), 0);
    }

    #[test]
    fn verdict_schedule_reaches_cors_in_five_rounds() {
        // A real misconfiguration: every pair blocked; one failure checks alone.
        let (mut streak, mut checked, mut rounds, mut pairs) = (0, 0, 0, 0);
        loop {
            let evidence = Evidence {
                streak,
                checked,
                ..Evidence::default()
            };
            match verdict(evidence) {
                Verdict::Verify(n) => {
                    rounds += 1;
                    pairs += n;
                    streak += n;
                    checked += n;
                }
                Verdict::Cors => break,
                Verdict::Network => unreachable!(),
            }
        }
        assert_eq!((rounds, pairs), (5, CORS_EVIDENCE));
        // A shape already known blocked needs one fresh pair.
        let known = |checked| Evidence {
            streak: CORS_EVIDENCE + 3,
            checked,
            ..Evidence::default()
        };
        assert_eq!(verdict(known(0)), Verdict::Verify(1));
        assert_eq!(verdict(known(1)), Verdict::Cors);
        // Checks of other failures under way shrink the batch, never below one fresh pair.
        let busy = Evidence {
            streak: 2,
            pending: 13,
            checked: 2,
            refuted: false,
        };
        assert_eq!(verdict(busy), Verdict::Verify(1));
    }

    /// The false-`cors` rate under random losses, by simulation. A run of [`CORS_EVIDENCE`]
    /// blocked pairs is far too rare to hit, so the mechanism is checked with an evidence of 3,
    /// whose rate must come out at its `q^3`.
    #[test]
    fn false_verdicts_follow_q_to_the_evidence() {
        let mut rng = crate::engine::retry::Rng::new(7);
        let mut coin = |p: f64| {
            #[allow(clippy::cast_precision_loss)]
            let x = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            x < p
        };
        let shape = CorsShape::of(&spec_of(Config::new("https://up.example/u"), true));
        // Drops at 50 %: a pair is blocked with q = 1/4. With evidence k = 3 the rate of
        // failures whose checks all come out blocked must be near q^3 = 1/64.
        let k = 3;
        let trials = 200_000;
        let mut false_cors = 0;
        for _ in 0..trials {
            let mut ledger = Ledger::default();
            let mut checked = 0u32;
            loop {
                let evidence = Evidence {
                    streak: ledger.streak(&shape),
                    checked,
                    ..Evidence::default()
                };
                match decide(k, evidence) {
                    Verdict::Cors => {
                        false_cors += 1;
                        break;
                    }
                    Verdict::Network => break,
                    Verdict::Verify(n) => {
                        let batch: Vec<Observation> = (0..n)
                            .map(|_| {
                                if !coin(0.5) {
                                    Observation::Readable
                                } else if coin(0.5) {
                                    Observation::Inconclusive
                                } else {
                                    Observation::Blocked
                                }
                            })
                            .collect();
                        if ledger.record(&shape, &batch) {
                            checked += n;
                        } else {
                            break;
                        }
                    }
                }
            }
        }
        #[allow(clippy::cast_precision_loss)]
        let rate = f64::from(false_cors) / f64::from(trials);
        assert!((rate - 1.0 / 64.0).abs() < 0.002, "rate {rate}");
        // And the real constant's bound is negligible.
        assert!(0.25f64.powi(i32::try_from(CORS_EVIDENCE).unwrap()) < 1e-9);
    }
}
