//! The API handlers: `/upload` (probe GET; chunk POST/PUT/PATCH as multipart or octet),
//! `/login`, `/__probe`, and the drain-before-error middleware of `/upload`. The router that
//! stacks recording, delay, CORS and faults around them is built in `lib.rs`.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Bytes, HttpBody};
use axum::middleware::Next;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use crate::body::{end_on_its_own_poll, watch_for_cut, BodyDeadline};
use crate::error::Rejection;
use crate::faults::{fail_response, Corruption};
use crate::params::{self, ChunkNumber, ChunkParams, RawParams};
use crate::state::AppState;
use crate::store::{ChunkAt, StoreOutcome, TmpBody};
use crate::sync::lock;

/// Name of the session cookie set by `/login`.
pub const SESSION_COOKIE: &str = "fixture_session";
/// Largest multipart text field, in bytes.
pub const MAX_FIELD_BYTES: usize = 8 * 1024;
/// Most multipart parts accepted in one request.
pub const MAX_PARTS: usize = 64;
/// How the answer to a multipart body the parser refuses begins.
const MALFORMED_MULTIPART: &str = "malformed multipart body";
/// Before an error answer, at most this many unread body bytes are read and discarded, so that
/// the client (a browser still sending) sees the status instead of a reset connection.
pub const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;
/// Draining stops when the body sends nothing for this long.
pub const DRAIN_IDLE: Duration = Duration::from_secs(5);

/// A request body shared between the handler and [`drain_on_error`].
struct SharedBody(Arc<Mutex<Body>>);

impl HttpBody for SharedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let mut body = lock(&self.0);
        Pin::new(&mut *body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        lock(&self.0).is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        lock(&self.0).size_hint()
    }
}

/// Middleware on `/upload`: after a non-2xx answer, reads and discards what is left of the
/// request body (bounded by [`DRAIN_LIMIT`], [`DRAIN_IDLE`] and the body timeout) before the
/// answer goes out. Without it an early 401/413/415 would reach a browser that is still sending
/// as a reset connection (status 0, indistinguishable from a CORS failure). A 408 is not
/// drained: that client is too slow already.
pub async fn drain_on_error(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let shared = Arc::new(Mutex::new(body));
    let req = Request::from_parts(parts, Body::new(SharedBody(shared.clone())));
    let resp = next.run(req).await;
    if !resp.status().is_success() && resp.status() != StatusCode::REQUEST_TIMEOUT {
        let deadline = BodyDeadline::starting_now(st.body_timeout());
        let mut body = Body::new(SharedBody(shared));
        let mut total = 0u64;
        while total <= DRAIN_LIMIT {
            match deadline.next_within(DRAIN_IDLE, body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    total += frame.data_ref().map_or(0, |d| d.len() as u64);
                }
                _ => break,
            }
        }
    }
    resp
}

fn reject(r: &Rejection, chunk: Option<u64>) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = (status, format!("{}\n", r.message)).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert("retry-after", HeaderValue::from_static("1"));
    }
    if let Some(n) = chunk {
        resp.extensions_mut().insert(ChunkNumber(n));
    }
    resp
}

fn session_ok(st: &AppState, headers: &HeaderMap) -> bool {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .any(|(k, v)| k == SESSION_COOKIE && st.has_session(v))
}

fn check_session(st: &AppState, headers: &HeaderMap) -> Result<(), Rejection> {
    if st.runtime().require_session && !session_ok(st, headers) {
        return Err(Rejection::with(
            401,
            format!("session required: no valid {SESSION_COOKIE} cookie (call /login with credentials first)"),
        ));
    }
    Ok(())
}

/// `GET /upload`: 200 if the chunk is stored, 204 if not (never 404).
pub async fn probe(State(st): State<AppState>, req: Request) -> Response {
    let query = req.uri().query().map(str::to_owned);
    let headers = req.headers().clone();
    drop(req);
    let result = async {
        check_session(&st, &headers)?;
        let q = RawParams::from_query(query.as_deref())?;
        let p = params::validate(&RawParams::default(), &q, st.runtime().max_file_bytes)?;
        let present = st.store().probe(&chunk_at(&p)).await?;
        Ok::<_, Rejection>((p.chunk_number, present))
    }
    .await;
    match result {
        Ok((n, true)) => {
            let mut r = (StatusCode::OK, format!("chunk {n} present\n")).into_response();
            r.extensions_mut().insert(ChunkNumber(n));
            r
        }
        Ok((n, false)) => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            r.extensions_mut().insert(ChunkNumber(n));
            r
        }
        Err(e) => reject(&e, None),
    }
}

/// `POST` (or `PUT`/`PATCH`) `/upload`: one chunk, multipart or octet. A body the transport
/// cut short gets a retryable 408 whatever the parser made of it, and nothing is stored: the
/// client did nothing wrong and its retry must succeed.
pub async fn chunk(State(st): State<AppState>, req: Request) -> Response {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let version = req.version();
    let content_type = req.headers().get(CONTENT_TYPE).cloned();
    let (parts, body) = req.into_parts();
    let (body, cut) = watch_for_cut(body, declared);
    let req = Request::from_parts(parts, body);
    let mut chunk_seen = None;
    match chunk_inner(&st, req, &mut chunk_seen).await {
        Ok(resp) => resp,
        Err(e) => match cut.reason() {
            Some(why) => {
                tracing::warn!(chunk = ?chunk_seen, "{why}");
                let why = format!("{why}: nothing was stored; send the chunk again");
                reject(&Rejection::with(408, why), chunk_seen)
            }
            None => {
                if e.message.starts_with(MALFORMED_MULTIPART) {
                    // Kept for the rare refusal of a body a browser sent: the log says whether
                    // the body was whole and what it held at its ends.
                    tracing::warn!(
                        chunk = ?chunk_seen,
                        "{}: {version:?}, Content-Length {declared:?}, Content-Type {content_type:?}, {}",
                        e.message,
                        cut.arrival()
                    );
                }
                reject(&e, chunk_seen)
            }
        },
    }
}

async fn chunk_inner(
    st: &AppState,
    req: Request,
    chunk_seen: &mut Option<u64>,
) -> Result<Response, Rejection> {
    let deadline = BodyDeadline::starting_now(st.body_timeout());
    check_session(st, req.headers())?;
    let rt = st.runtime();
    let query = RawParams::from_query(req.uri().query())?;
    if let Some(enc) = req.headers().get(CONTENT_ENCODING) {
        if !enc.as_bytes().eq_ignore_ascii_case(b"identity") {
            return Err(Rejection::with(
                415,
                format!("unsupported Content-Encoding {enc:?}: send chunks unencoded"),
            ));
        }
    }
    let ct = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let (p, body) = if ct.starts_with("multipart/form-data") {
        let mut body_params = RawParams::default();
        let file = read_multipart(st, req, &mut body_params, rt.max_chunk_bytes, deadline).await?;
        *chunk_seen = chunk_number_hint(&body_params, &query);
        let p = params::validate(&body_params, &query, rt.max_file_bytes)?;
        let file = file.ok_or_else(|| {
            Rejection::bad(format!(
                "missing file part {:?} in the multipart body",
                st.file_param()
            ))
        })?;
        (p, file)
    } else if ct.starts_with("multipart/") || ct.starts_with("application/x-www-form-urlencoded") {
        return Err(Rejection::with(
            415,
            format!(
                "unsupported Content-Type {ct:?}: send multipart/form-data, or the raw chunk \
                 (octet) with the parameters in the query string"
            ),
        ));
    } else {
        *chunk_seen = chunk_number_hint(&RawParams::default(), &query);
        let p = params::validate(&RawParams::default(), &query, rt.max_file_bytes)?;
        if let Some(ccs) = p.current_chunk_size {
            within_chunk_limit(&format!("chunk of {ccs} bytes"), ccs, rt.max_chunk_bytes)?;
        }
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(len) = declared {
            within_chunk_limit(&format!("Content-Length {len}"), len, rt.max_chunk_bytes)?;
        }
        let body = read_octet(st, req.into_body(), rt.max_chunk_bytes, deadline).await?;
        (p, body)
    };
    *chunk_seen = Some(p.chunk_number);
    finish_chunk(st, &p, body).await
}

/// Where the store puts the chunk the parameters describe.
fn chunk_at(p: &ChunkParams) -> ChunkAt {
    ChunkAt {
        identifier: p.identifier.clone(),
        filename: p.filename.clone(),
        relative_path: p.relative_path.clone(),
        total_size: p.total_size,
        chunk_size: p.chunk_size,
        chunk_number: p.chunk_number,
        start: p.start,
        current_chunk_size: p.current_chunk_size,
        checksum: p.checksum.clone(),
    }
}

fn chunk_number_hint(body: &RawParams, query: &RawParams) -> Option<u64> {
    ["resumableChunkNumber", "flowChunkNumber"]
        .iter()
        .find_map(|n| body.get(n).or_else(|| query.get(n)))
        .and_then(|v| v.parse().ok())
}

async fn finish_chunk(
    st: &AppState,
    p: &ChunkParams,
    body: TmpBody,
) -> Result<Response, Rejection> {
    let name = |s: &str| format!("{}{}", p.dialect.prefix(), s);
    if let Some(ccs) = p.current_chunk_size {
        if ccs != body.len {
            return Err(Rejection::bad(format!(
                "parameter {}={ccs} but the body holds {} bytes",
                name("CurrentChunkSize"),
                body.len
            )));
        }
    }
    if !p.allowed_lengths.contains(&body.len) {
        let allowed: Vec<String> = p.allowed_lengths.iter().map(u64::to_string).collect();
        return Err(Rejection::bad(format!(
            "the body holds {} bytes, but chunk {} of a {}-byte file in {}-byte chunks must hold {} \
             (see {})",
            body.len,
            p.chunk_number,
            p.total_size,
            p.chunk_size,
            allowed.join(" or "),
            name("ChunkNumber")
        )));
    }
    if let Some(status) = st.take_fail_chunk_once(p.chunk_number) {
        tracing::info!(chunk = p.chunk_number, status, "fail_chunk_once fired");
        let mut r = fail_response(status);
        r.extensions_mut().insert(ChunkNumber(p.chunk_number));
        return Ok(r);
    }
    if let Some(k) = &p.checksum {
        // Verified before anything is stored: a mismatching chunk leaves no trace.
        let got = body.checksum(k.algorithm);
        if got != k.chunk {
            st.count_checksum_mismatch();
            tracing::info!(chunk = p.chunk_number, "chunk checksum mismatch");
            let mut r = reject(
                &Rejection::with(
                    params::MISMATCH_STATUS,
                    format!(
                        "{}: chunk {} has {} {got}, the client sent {}",
                        params::CHUNK_MISMATCH,
                        p.chunk_number,
                        k.algorithm.as_str(),
                        k.chunk
                    ),
                ),
                Some(p.chunk_number),
            );
            r.extensions_mut().insert(ChunkNumber(p.chunk_number));
            return Ok(r);
        }
    }
    let outcome = st.store().store_chunk(&chunk_at(p), body).await?;
    let text = match &outcome {
        StoreOutcome::Stored => format!("chunk {} stored\n", p.chunk_number),
        StoreOutcome::Duplicate => {
            format!("chunk {} already stored (same bytes)\n", p.chunk_number)
        }
        StoreOutcome::Completed(r) => format!(
            "chunk {} stored; file complete: {} ({} bytes, sha256 {})\n",
            p.chunk_number, r.name, r.size, r.sha256
        ),
    };
    let mut resp = (StatusCode::OK, text).into_response();
    resp.extensions_mut().insert(ChunkNumber(p.chunk_number));
    Ok(resp)
}

async fn read_octet(
    st: &AppState,
    body: Body,
    limit: u64,
    deadline: BodyDeadline,
) -> Result<TmpBody, Rejection> {
    let mut w = st.store().tmp_writer().await?;
    let mut corrupt = Corruption::decide(st);
    let mut stream = body.into_data_stream();
    loop {
        let next = deadline.next(stream.next()).await?;
        match next {
            None => break,
            Some(Ok(bytes)) => w.write(&corrupt.apply(bytes), limit).await?,
            Some(Err(e)) => {
                return Err(Rejection::bad(format!(
                    "error reading the request body: {e}"
                )))
            }
        }
    }
    w.finish().await
}

/// The parts of a `multipart/form-data` request, as `/upload` reads them: axum's `Multipart`
/// over the body with its end on a poll of its own ([`end_on_its_own_poll`] says why).
pub async fn open_multipart(req: Request) -> Result<Multipart, Rejection> {
    let (parts, body) = req.into_parts();
    let req = Request::from_parts(parts, end_on_its_own_poll(body));
    Multipart::from_request(req, &())
        .await
        .map_err(|e| Rejection::bad(format!("malformed multipart request: {}", e.body_text())))
}

async fn read_multipart(
    st: &AppState,
    req: Request,
    body_params: &mut RawParams,
    limit: u64,
    deadline: BodyDeadline,
) -> Result<Option<TmpBody>, Rejection> {
    let mut mp = open_multipart(req).await?;
    let malformed = |e: axum::extract::multipart::MultipartError| {
        Rejection::bad(format!("{MALFORMED_MULTIPART}: {}", e.body_text()))
    };
    let mut file = None;
    let mut parts = 0usize;
    loop {
        let field = deadline.next(mp.next_field()).await?.map_err(malformed)?;
        let Some(mut field) = field else { break };
        parts += 1;
        if parts > MAX_PARTS {
            return Err(Rejection::bad(format!(
                "more than {MAX_PARTS} multipart parts"
            )));
        }
        let name = field
            .name()
            .map(str::to_owned)
            .ok_or_else(|| Rejection::bad("a multipart part has no name"))?;
        if name == st.file_param() {
            if file.is_some() {
                return Err(Rejection::bad(format!(
                    "file part {name:?} appears more than once"
                )));
            }
            let mut w = st.store().tmp_writer().await?;
            let mut corrupt = Corruption::decide(st);
            loop {
                let chunk = deadline.next(field.chunk()).await?.map_err(malformed)?;
                let Some(bytes) = chunk else { break };
                w.write(&corrupt.apply(bytes), limit).await?;
            }
            file = Some(w.finish().await?);
            continue;
        }
        if field.file_name().is_some() {
            return Err(Rejection::bad(format!(
                "unexpected file part {name:?} (the file part is {:?})",
                st.file_param()
            )));
        }
        let mut value = Vec::new();
        loop {
            let chunk = deadline.next(field.chunk()).await?.map_err(malformed)?;
            let Some(bytes) = chunk else { break };
            if value.len() + bytes.len() > MAX_FIELD_BYTES {
                return Err(Rejection::bad(format!(
                    "multipart field {name:?} is longer than {MAX_FIELD_BYTES} bytes"
                )));
            }
            value.extend_from_slice(&bytes);
        }
        if name.starts_with("resumable") || name.starts_with("flow") {
            let value = String::from_utf8(value)
                .map_err(|_| Rejection::bad(format!("multipart field {name:?} is not UTF-8")))?;
            body_params.insert(name, value, "multipart body")?;
        }
    }
    Ok(file)
}

/// `GET`/`POST /login`: sets the session cookie.
pub async fn login(State(st): State<AppState>) -> Response {
    let token = st.new_session();
    let mut resp = (StatusCode::OK, "logged in\n").into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Lax; Path=/"
    )) {
        resp.headers_mut().insert(SET_COOKIE, v);
    }
    resp
}

/// `/__probe` (any method): 204 with no Content-Type, a `no-cors` reachability target.
pub async fn reachability() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// The API listener's fallback.
pub async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "not found\n")
}

/// 413 when `bytes` (described by `what`) exceed the chunk limit `max`.
fn within_chunk_limit(what: &str, bytes: u64, max: u64) -> Result<(), Rejection> {
    if bytes > max {
        return Err(Rejection::with(
            413,
            format!("{what} exceeds the chunk limit of {max} bytes"),
        ));
    }
    Ok(())
}
