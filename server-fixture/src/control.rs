//! Introspection and control: the request statistics (recorded by a middleware on the API
//! routes; bounded whatever the requests look like) and the
//! `/__fixture/{stats,files,reset,config}` endpoints, which are never counted, never delayed or
//! failed, and answer only the page origin or a caller with the control token
//! ([`crate::cors::control_guard`]).

use std::collections::{BTreeMap, VecDeque};
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::header::ORIGIN;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};

use crate::body::read_small_body;
use crate::config::RuntimePatch;
use crate::cors::control_guard;
use crate::params::{ChunkNumber, RawParams};
use crate::state::AppState;
use crate::sync::lock;

/// Entries kept in the request log (a ring: the oldest entry goes first).
pub const LOG_LIMIT: usize = 20_000;
/// Text kept in the request log, in bytes (its strings plus [`LOG_ENTRY_OVERHEAD`] per entry);
/// the oldest entries go first beyond it.
pub const LOG_BYTES: usize = 8 * 1024 * 1024;
/// What an entry costs in [`LOG_BYTES`] besides its strings.
pub const LOG_ENTRY_OVERHEAD: usize = 128;
/// Distinct keys kept per counter (methods, paths, origins); later keys count under [`OTHER`].
pub const MAX_COUNTER_KEYS: usize = 64;
/// The counter key of everything beyond [`MAX_COUNTER_KEYS`].
pub const OTHER: &str = "other";
/// Longest query string kept in a log entry, in bytes; a longer one is cut and ends in `…`.
pub const MAX_LOGGED_QUERY: usize = 1024;
/// Longest path kept in a log entry or counter key, in bytes (cut as above).
pub const MAX_LOGGED_PATH: usize = 512;
/// Longest method or `Origin` kept in a log entry or counter key, in bytes (cut as above).
pub const MAX_LOGGED_HEADER: usize = 256;

/// `s` cut to at most `max` bytes (on a character boundary), marked with `…` when cut.
fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Counts `key`, or [`OTHER`] once the map holds [`MAX_COUNTER_KEYS`] other keys.
fn count(map: &mut BTreeMap<String, u64>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n += 1;
        return;
    }
    let key = if map.len() < MAX_COUNTER_KEYS {
        key
    } else {
        OTHER
    };
    *map.entry(key.to_owned()).or_default() += 1;
}

/// One logged request. It enters the log when the request arrives, so a request still being
/// served (delayed, stalled, its body on the way) is already there; its `status` (and the chunk
/// number a handler parsed from a multipart body) are filled in when it ends.
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    /// Arrival order, from 0.
    pub seq: u64,
    /// Milliseconds since the fixture started, at arrival.
    pub t_ms: u64,
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Raw query string, if any (cut at [`MAX_LOGGED_QUERY`] bytes).
    pub query: Option<String>,
    /// `Origin` header, if any (cut at [`MAX_LOGGED_HEADER`] bytes).
    pub origin: Option<String>,
    /// Status sent; `null` while the request is served, and for good if it was never answered
    /// (dropped, aborted by the client, stalled at shutdown).
    pub status: Option<u16>,
    /// `true` until the request ends, answered or not.
    pub in_flight: bool,
    /// Chunk number parsed from the query or the multipart body.
    pub chunk: Option<u64>,
    /// `api` or `page`.
    pub listener: &'static str,
}

/// Counters and the bounded request log.
#[derive(Debug, Default)]
pub struct Stats {
    requests: BTreeMap<String, u64>,
    by_path: BTreeMap<String, u64>,
    by_origin: BTreeMap<String, u64>,
    bytes_received: u64,
    next_seq: u64,
    log: VecDeque<LogEntry>,
    log_bytes: usize,
}

fn log_cost(e: &LogEntry) -> usize {
    LOG_ENTRY_OVERHEAD
        + e.method.len()
        + e.path.len()
        + e.query.as_ref().map_or(0, String::len)
        + e.origin.as_ref().map_or(0, String::len)
}

impl Stats {
    /// The JSON shape of `GET /__fixture/stats`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "requests": self.requests,
            "by_path": self.by_path,
            "by_origin": self.by_origin,
            "bytes_received": self.bytes_received,
            "log": self.log,
        })
    }

    fn push(&mut self, e: LogEntry) {
        let cost = log_cost(&e);
        while self.log.len() >= LOG_LIMIT || self.log_bytes + cost > LOG_BYTES {
            let Some(old) = self.log.pop_front() else {
                break;
            };
            self.log_bytes -= log_cost(&old);
        }
        self.log_bytes += cost;
        self.log.push_back(e);
    }

    /// The logged entry of request `seq`, unless the ring has dropped it (or a reset cleared
    /// the log meanwhile). Entries are in arrival order, so `seq` is found by bisection.
    fn entry_mut(&mut self, seq: u64) -> Option<&mut LogEntry> {
        let i = self.log.binary_search_by_key(&seq, |e| e.seq).ok()?;
        self.log.get_mut(i)
    }
}

/// The state of the control plane and of the recording middleware: the fixture's shared state
/// and its request statistics (one per fixture, shared by both listeners).
#[derive(Debug, Clone)]
pub struct ControlState {
    app: AppState,
    stats: Arc<Mutex<Stats>>,
}

impl ControlState {
    /// Empty statistics over `app`.
    pub fn new(app: AppState) -> Self {
        ControlState {
            app,
            stats: Arc::default(),
        }
    }

    /// The shared state.
    pub fn app(&self) -> &AppState {
        &self.app
    }

    pub(crate) fn stats(&self) -> MutexGuard<'_, Stats> {
        lock(&self.stats)
    }

    /// The statistics as JSON (the body of `GET /__fixture/stats`).
    pub fn stats_json(&self) -> serde_json::Value {
        let mut json = self.stats().to_json();
        let (corrupted, mismatches) = self.app.integrity_counts();
        json["corrupted"] = corrupted.into();
        json["checksum_mismatches"] = mismatches.into();
        json
    }
}

impl From<AppState> for ControlState {
    fn from(app: AppState) -> Self {
        ControlState::new(app)
    }
}

impl Deref for ControlState {
    type Target = AppState;
    fn deref(&self) -> &AppState {
        &self.app
    }
}

/// Ends the log entry of request `seq` when the request ends, answered or not: `status` and
/// `chunk` as the response carried them (`None` when it never got one).
struct Pending {
    st: ControlState,
    seq: u64,
    status: Option<u16>,
    chunk: Option<u64>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut s = self.st.stats();
        if let Some(e) = s.entry_mut(self.seq) {
            e.in_flight = false;
            e.status = self.status;
            if self.chunk.is_some() {
                e.chunk = self.chunk;
            }
        }
    }
}

fn chunk_from_query(q: Option<&str>) -> Option<u64> {
    let p = RawParams::from_query(q).ok()?;
    p.get("resumableChunkNumber")
        .or_else(|| p.get("flowChunkNumber"))
        .and_then(|v| v.parse().ok())
}

/// State of the recording middleware: which listener it serves.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Shared state and statistics.
    pub st: ControlState,
    /// `api` or `page`.
    pub listener: &'static str,
}

/// Middleware (outermost) of the API routes: counts the request, its body bytes, and logs it.
pub async fn record(State(r): State<Recorder>, req: Request, next: Next) -> Response {
    let st = r.st.clone();
    let method = clip(req.method().as_str(), MAX_LOGGED_HEADER);
    let path = clip(req.uri().path(), MAX_LOGGED_PATH);
    let chunk = chunk_from_query(req.uri().query());
    let query = req.uri().query().map(|q| clip(q, MAX_LOGGED_QUERY));
    let origin = req
        .headers()
        .get(ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(|o| clip(o, MAX_LOGGED_HEADER));
    // Logged now, on arrival: a check that "nothing was sent" sees a request that the fixture
    // is still serving (delayed, stalled, its body still arriving).
    let seq = {
        let mut s = st.stats();
        count(&mut s.requests, &method);
        count(&mut s.by_path, &path);
        if let Some(o) = &origin {
            count(&mut s.by_origin, o);
        }
        let seq = s.next_seq;
        s.next_seq += 1;
        let entry = LogEntry {
            seq,
            t_ms: st.elapsed_ms(),
            method,
            path,
            chunk,
            query,
            origin,
            status: None,
            in_flight: true,
            listener: r.listener,
        };
        s.push(entry);
        seq
    };
    let mut pending = Pending {
        st: st.clone(),
        seq,
        status: None,
        chunk: None,
    };
    let counter = st.clone();
    let req = req.map(|b| {
        Body::new(b.map_frame(move |f| {
            if let Some(d) = f.data_ref() {
                counter.stats().bytes_received += d.len() as u64;
            }
            f
        }))
    });
    let resp = next.run(req).await;
    pending.status = Some(resp.status().as_u16());
    pending.chunk = resp.extensions().get::<ChunkNumber>().map(|c| c.0);
    drop(pending);
    resp
}

async fn stats(State(st): State<ControlState>) -> Json<serde_json::Value> {
    Json(st.stats_json())
}

async fn files(State(st): State<ControlState>) -> Json<serde_json::Value> {
    Json(serde_json::to_value(st.store().files().await).unwrap_or_default())
}

#[derive(Debug, Deserialize)]
struct ResetQuery {
    data: Option<String>,
}

async fn reset(State(st): State<ControlState>, Query(q): Query<ResetQuery>) -> Response {
    {
        // `seq` goes on across a reset: a request under way at the reset ends into no entry
        // rather than into a later request's.
        let mut s = st.stats();
        let next_seq = s.next_seq;
        *s = Stats {
            next_seq,
            ..Stats::default()
        };
    }
    st.app().reset_integrity_counts();
    let data = matches!(q.data.as_deref(), Some("1" | "true" | "yes"));
    if data {
        if let Err(e) = st.store().clear().await {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reset failed: {}\n", e.message),
            )
                .into_response();
        }
    }
    Json(serde_json::json!({ "reset": true, "data": data })).into_response()
}

async fn get_config(State(st): State<ControlState>) -> Json<serde_json::Value> {
    Json(serde_json::to_value(st.runtime()).unwrap_or_default())
}

/// Largest `POST /__fixture/config` body, in bytes.
pub const MAX_CONFIG_BODY: usize = 64 * 1024;

async fn post_config(State(st): State<ControlState>, req: Request) -> Response {
    let body = match read_small_body(st.body_timeout(), req.into_body(), MAX_CONFIG_BODY).await {
        Ok(b) => b,
        Err(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            return (status, format!("{}\n", e.message)).into_response();
        }
    };
    let patch: RuntimePatch = if body.iter().all(u8::is_ascii_whitespace) {
        RuntimePatch::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(p) => p,
            Err(e) => {
                return (
                    StatusCode::BAD_REQUEST,
                    format!("invalid config JSON: {e}\n"),
                )
                    .into_response()
            }
        }
    };
    let mut rt = st.runtime();
    if let Err(e) = rt.apply(patch) {
        return (StatusCode::BAD_REQUEST, format!("invalid config: {e}\n")).into_response();
    }
    st.set_runtime(rt.clone());
    tracing::info!(?rt, "runtime config changed");
    Json(serde_json::to_value(rt).unwrap_or_default()).into_response()
}

/// The `/__fixture/*` routes behind their guard (page origin or control token; JSON for POSTs).
pub fn control_router(st: ControlState) -> Router {
    Router::new()
        .route("/__fixture/stats", get(stats))
        .route("/__fixture/files", get(files))
        .route("/__fixture/reset", post(reset))
        .route("/__fixture/config", get(get_config).post(post_config))
        .merge(crate::s3_routes::control_routes().with_state(st.app().clone()))
        .layer(axum::middleware::from_fn_with_state(
            st.app().clone(),
            control_guard,
        ))
        .with_state(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, query: &str) -> LogEntry {
        LogEntry {
            seq,
            t_ms: 0,
            method: "GET".to_owned(),
            path: "/upload".to_owned(),
            query: Some(query.to_owned()),
            origin: None,
            status: Some(200),
            in_flight: false,
            chunk: None,
            listener: "api",
        }
    }

    #[test]
    fn the_log_is_a_ring_bounded_in_entries_and_bytes() {
        let mut s = Stats::default();
        for i in 0..(LOG_LIMIT as u64 + 10) {
            s.push(entry(i, "q"));
        }
        assert_eq!(s.log.len(), LOG_LIMIT);
        assert_eq!(s.log.front().map(|e| e.seq), Some(10));
        let big = "q".repeat(MAX_LOGGED_QUERY);
        for i in 0..LOG_LIMIT as u64 {
            s.push(entry(i, &big));
        }
        let cost = LOG_ENTRY_OVERHEAD + 3 + 7 + MAX_LOGGED_QUERY;
        assert_eq!(s.log.len(), LOG_BYTES / cost);
        assert!(s.log_bytes <= LOG_BYTES);
        assert_eq!(s.log.back().map(|e| e.seq), Some(LOG_LIMIT as u64 - 1));
    }

    #[test]
    fn an_entry_is_logged_on_arrival_and_ended_in_place() {
        let mut s = Stats::default();
        for i in 0..3 {
            let mut e = entry(i, "q");
            e.status = None;
            e.in_flight = true;
            s.push(e);
        }
        let e = s.entry_mut(1).expect("entry 1 is logged while in flight");
        e.in_flight = false;
        e.status = Some(204);
        let ended: Vec<_> = s
            .log
            .iter()
            .map(|e| (e.seq, e.in_flight, e.status))
            .collect();
        assert_eq!(
            ended,
            vec![(0, true, None), (1, false, Some(204)), (2, true, None)]
        );
        assert!(s.entry_mut(7).is_none(), "an unknown seq ends nothing");
    }

    #[test]
    fn clip_cuts_on_a_character_boundary() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "abc…");
        assert_eq!(clip("aé", 2), "a…");
    }
}
