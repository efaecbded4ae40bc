//! Fault injection: the per-request delay (every API request, OPTIONS included), and the
//! `/upload` faults: stall, dropped connection and failure rate. The "fail chunk N once" fault
//! needs the parsed chunk number and lives in `upload.rs`; the seeded generator in `random.rs`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Notify;

use crate::state::AppState;

/// Inserted into every request by the connection loop: lets a handler drop its connection.
#[derive(Debug, Clone)]
pub struct ConnControl {
    /// Notified to close the connection without an answer.
    pub kill: Arc<Notify>,
}

/// The response of an injected failure (`Retry-After: 1` on 503).
pub fn fail_response(status: u16) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut resp = (code, format!("injected failure ({status})\n")).into_response();
    if code == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert("retry-after", HeaderValue::from_static("1"));
    }
    resp
}

/// Middleware on every API route: sleeps `delay_ms` first.
pub async fn delay(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let ms = st.runtime().delay_ms;
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    next.run(req).await
}

/// Middleware on `/upload`: stall, then maybe drop the connection, then maybe fail.
pub async fn upload_faults(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let mut stall = st.stall_watch();
    if *stall.borrow() {
        tracing::info!("stalling an /upload request until stall is switched off");
        // Err means the sender is gone (shutdown): stay stalled; shutdown drops the connection.
        if stall.wait_for(|s| !*s).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
    let (drop_rate, fail_rate, fail_status) = {
        let rt = st.runtime();
        (rt.drop_rate, rt.fail_rate, rt.fail_status)
    };
    if drop_rate > 0.0 && st.random_f64() < drop_rate {
        if let Some(cc) = req.extensions().get::<ConnControl>() {
            tracing::info!("dropping the connection (drop_rate)");
            cc.kill.notify_one();
            std::future::pending::<()>().await;
        }
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "drop_rate fired, but this request has no connection to drop\n",
        )
            .into_response();
    }
    if fail_rate > 0.0 && st.random_f64() < fail_rate {
        return fail_response(fail_status);
    }
    next.run(req).await
}

/// The `corrupt_rate` fault for one chunk body: decided when the body starts arriving, it
/// flips one bit of the first non-empty piece (before any checksum is verified), as a broken
/// proxy or a bad NIC would.
#[derive(Debug)]
pub struct Corruption {
    /// The bit to flip in the first non-empty piece; `None` once done or when not firing.
    bit: Option<u64>,
}

impl Corruption {
    /// Whether this body gets a flipped bit (`corrupt_rate`), and which one.
    pub fn decide(st: &AppState) -> Corruption {
        let rate = st.runtime().corrupt_rate;
        let fires = rate > 0.0 && st.random_f64() < rate;
        if fires {
            st.count_corrupted();
        }
        Corruption {
            bit: fires.then(|| st.random_u64()),
        }
    }

    /// `piece` as it arrives, or with one bit flipped if this is the piece to corrupt.
    pub fn apply(&mut self, piece: axum::body::Bytes) -> axum::body::Bytes {
        match self.bit {
            Some(bit) if !piece.is_empty() => {
                self.bit = None;
                let mut bytes = piece.to_vec();
                let len = bytes.len() as u64;
                if let Some(b) = usize::try_from((bit >> 3) % len)
                    .ok()
                    .and_then(|i| bytes.get_mut(i))
                {
                    *b ^= 1 << (bit & 7);
                }
                tracing::info!("corrupt_rate fired: flipped a bit of a chunk body");
                bytes.into()
            }
            _ => piece,
        }
    }
}
