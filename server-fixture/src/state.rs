//! Shared state of one fixture: the switchable runtime settings, the stall switch, the seeded
//! generator, the session tokens, the emulated link and the chunk store. (The request
//! statistics belong to the control plane: `control.rs`.)

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::config::{Config, LinkSpec, Runtime};
use crate::error::Error;
use crate::link::{Link, Shape};
use crate::random::{random_u64, Rng};
use crate::store::Store;
use crate::sync::lock;

/// Sessions kept (each `/login` makes one); beyond, the oldest is forgotten.
pub const MAX_SESSIONS: usize = 4096;

/// The session tokens, oldest first, bounded at [`MAX_SESSIONS`].
#[derive(Debug, Default)]
struct Sessions {
    tokens: HashSet<String>,
    order: VecDeque<String>,
}

impl Sessions {
    fn insert(&mut self, token: String) {
        while self.order.len() >= MAX_SESSIONS {
            if let Some(old) = self.order.pop_front() {
                self.tokens.remove(&old);
            }
        }
        self.tokens.insert(token.clone());
        self.order.push_back(token);
    }
}

#[derive(Debug)]
struct Inner {
    runtime: Mutex<Runtime>,
    link: Arc<Link>,
    stall: watch::Sender<bool>,
    rng: Mutex<Rng>,
    sessions: Mutex<Sessions>,
    store: Store,
    file_param: String,
    control: bool,
    control_token: String,
    body_timeout: Duration,
    page_origin: Option<String>,
    started: tokio::time::Instant,
    s3: Option<Arc<crate::s3::S3Role>>,
    /// Chunk bodies the `corrupt_rate` fault flipped a bit in (the statistics' `corrupted`):
    /// counted here, where the fault runs, and read by the control plane's statistics.
    corrupted: AtomicU64,
    /// Chunks refused for a checksum mismatch (answered 460): `checksum_mismatches`.
    checksum_mismatches: AtomicU64,
}

/// Cheaply clonable handle to the fixture's state; the axum state of every router.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    /// Builds the state: opens (or creates) the data directory. An empty `allow_origins`
    /// becomes `[page_origin]`.
    pub fn new(config: &Config, page_origin: Option<String>) -> Result<AppState, Error> {
        let mut runtime = config.runtime.clone();
        if runtime.allow_origins.is_empty() {
            runtime.allow_origins.extend(page_origin.clone());
        }
        runtime.validate().map_err(Error::Config)?;
        if config.file_param.is_empty() {
            return Err(Error::Config("--file-param must not be empty".to_owned()));
        }
        if config.max_connections == 0 {
            return Err(Error::Config(
                "--max-connections must be at least 1".to_owned(),
            ));
        }
        if config.body_timeout_secs == 0 {
            return Err(Error::Config(
                "--body-timeout must be at least 1".to_owned(),
            ));
        }
        let control_token = match &config.control_token {
            Some(t) => {
                if t.len() < 16 || t.len() > 256 || !t.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(Error::Config(
                        "--control-token must be 16 to 256 visible ASCII characters".to_owned(),
                    ));
                }
                t.clone()
            }
            None => random_token(0),
        };
        let dir = match &config.data_dir {
            Some(d) => d.clone(),
            None => fresh_temp_dir()?,
        };
        let store =
            Store::open(&dir).map_err(|e| Error::Io(format!("data dir {}", dir.display()), e))?;
        let s3 = match &config.s3 {
            Some(s) => Some(Arc::new(crate::s3::S3Role::new(s).map_err(Error::Config)?)),
            None => None,
        };
        let (stall, _) = watch::channel(runtime.stall);
        Ok(AppState(Arc::new(Inner {
            rng: Mutex::new(Rng::new(runtime.seed)),
            link: Link::new(runtime.link.map(link_shape)),
            runtime: Mutex::new(runtime),
            stall,
            sessions: Mutex::new(Sessions::default()),
            store,
            file_param: config.file_param.clone(),
            control: config.control,
            control_token,
            body_timeout: Duration::from_secs(config.body_timeout_secs),
            page_origin,
            s3,
            corrupted: AtomicU64::new(0),
            checksum_mismatches: AtomicU64::new(0),
            started: tokio::time::Instant::now(),
        })))
    }

    /// A snapshot of the switchable settings.
    pub fn runtime(&self) -> Runtime {
        lock(&self.0.runtime).clone()
    }

    /// Changes the switchable settings (validated by the caller) and applies side effects:
    /// a new seed restarts the generator, `stall` wakes or holds requests.
    pub fn set_runtime(&self, next: Runtime) {
        let mut rt = lock(&self.0.runtime);
        if next.seed != rt.seed {
            *lock(&self.0.rng) = Rng::new(next.seed);
        }
        self.0.stall.send_replace(next.stall);
        self.0.link.set(next.link.map(link_shape));
        *rt = next;
    }

    /// The emulated link of the API listener (shared by its connections).
    pub fn link(&self) -> Arc<Link> {
        self.0.link.clone()
    }

    /// Takes the "fail chunk N once" fault if it names this chunk.
    pub fn take_fail_chunk_once(&self, chunk: u64) -> Option<u16> {
        let mut rt = lock(&self.0.runtime);
        if rt.fail_chunk_once == Some(chunk) {
            rt.fail_chunk_once = None;
            Some(rt.fail_status)
        } else {
            None
        }
    }

    pub(crate) fn stall_watch(&self) -> watch::Receiver<bool> {
        self.0.stall.subscribe()
    }

    pub(crate) fn random_f64(&self) -> f64 {
        lock(&self.0.rng).next_f64()
    }

    pub(crate) fn random_u64(&self) -> u64 {
        lock(&self.0.rng).next_u64()
    }

    /// Counts a chunk body the `corrupt_rate` fault corrupted (`corrupted` in the stats).
    pub(crate) fn count_corrupted(&self) {
        self.0.corrupted.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a chunk refused for its checksum (`checksum_mismatches` in the stats).
    pub(crate) fn count_checksum_mismatch(&self) {
        self.0.checksum_mismatches.fetch_add(1, Ordering::Relaxed);
    }

    /// The integrity counters, `(corrupted, checksum_mismatches)`, for the statistics.
    pub fn integrity_counts(&self) -> (u64, u64) {
        (
            self.0.corrupted.load(Ordering::Relaxed),
            self.0.checksum_mismatches.load(Ordering::Relaxed),
        )
    }

    /// Zeroes the integrity counters (a statistics reset).
    pub(crate) fn reset_integrity_counts(&self) {
        self.0.corrupted.store(0, Ordering::Relaxed);
        self.0.checksum_mismatches.store(0, Ordering::Relaxed);
    }

    pub(crate) fn new_session(&self) -> String {
        let token = random_token(lock(&self.0.rng).next_u64());
        lock(&self.0.sessions).insert(token.clone());
        token
    }

    pub(crate) fn has_session(&self, token: &str) -> bool {
        lock(&self.0.sessions).tokens.contains(token)
    }

    /// The chunk store.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// The (canonical) data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.0.store.root().to_path_buf()
    }

    pub(crate) fn file_param(&self) -> &str {
        &self.0.file_param
    }

    pub(crate) fn control_enabled(&self) -> bool {
        self.0.control
    }

    /// The secret that authorises `/__fixture/*` callers other than the page origin.
    pub fn control_token(&self) -> &str {
        &self.0.control_token
    }

    /// How long a whole request body may take.
    pub fn body_timeout(&self) -> Duration {
        self.0.body_timeout
    }

    /// The S3 signing role, with `--s3-endpoint`.
    pub fn s3(&self) -> Option<Arc<crate::s3::S3Role>> {
        self.0.s3.clone()
    }

    /// The page listener's origin, if there is a page listener.
    pub fn page_origin(&self) -> Option<&str> {
        self.0.page_origin.as_deref()
    }

    pub(crate) fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.0.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// The link emulator's terms for a link setting: the one-way delay and bytes per second.
fn link_shape(spec: LinkSpec) -> Shape {
    let bytes_per_sec = |mbit: f64| mbit * 1e6 / 8.0;
    Shape {
        one_way: Duration::from_micros(spec.rtt_ms * 500),
        up_bytes_per_sec: spec.up_mbit.map(bytes_per_sec),
        down_bytes_per_sec: spec.down_mbit.map(bytes_per_sec),
    }
}

fn fresh_temp_dir() -> Result<PathBuf, Error> {
    let base = std::env::temp_dir();
    for _ in 0..16 {
        let p = base.join(format!(
            "server-fixture-{}-{:08x}",
            std::process::id(),
            random_u64() as u32
        ));
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::Io(format!("creating {}", p.display()), e)),
        }
    }
    Err(Error::Config(
        "could not create a temporary data directory".to_owned(),
    ))
}

/// 128 random bits as 32 hex digits (the control token, session cookies); `mix` is XORed into
/// the first word (a session also mixes in the seeded generator).
fn random_token(mix: u64) -> String {
    format!("{:016x}{:016x}", mix ^ random_u64(), random_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_bounded_and_the_oldest_goes_first() {
        let tmp = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: Some(tmp.path().join("data")),
            ..Config::ephemeral()
        };
        let st = AppState::new(&config, None).unwrap();
        let first = st.new_session();
        let mut last = String::new();
        for _ in 0..MAX_SESSIONS {
            last = st.new_session();
        }
        assert!(!st.has_session(&first), "the oldest session is forgotten");
        assert!(st.has_session(&last));
        assert_eq!(lock(&st.0.sessions).tokens.len(), MAX_SESSIONS);
    }
}
