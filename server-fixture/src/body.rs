//! Reading request bodies: the time limits of one body and reading a small body whole.

use std::time::Duration;

use axum::body::Body;
use futures_util::StreamExt;

use crate::error::Rejection;

/// A body that sends nothing for this long is abandoned with 408.
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The time limits of one request body: [`BODY_IDLE_TIMEOUT`] of silence, and the whole body
/// within `total` (the fixture's `--body-timeout`) from when reading started.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline {
    at: tokio::time::Instant,
    total: Duration,
}

impl BodyDeadline {
    pub fn starting_now(total: Duration) -> Self {
        BodyDeadline {
            at: tokio::time::Instant::now() + total,
            total,
        }
    }

    /// Awaits the next piece of a request body, or 408.
    pub async fn next<F: std::future::Future>(self, next: F) -> Result<F::Output, Rejection> {
        self.next_within(BODY_IDLE_TIMEOUT, next).await
    }

    /// As [`BodyDeadline::next`] with another idle limit.
    pub async fn next_within<F: std::future::Future>(
        self,
        idle: Duration,
        next: F,
    ) -> Result<F::Output, Rejection> {
        let idle_at = tokio::time::Instant::now() + idle;
        let whole = self.at <= idle_at;
        tokio::time::timeout_at(self.at.min(idle_at), next)
            .await
            .map_err(|_| {
                let why = if whole {
                    format!(
                        "the request body took longer than {} s",
                        self.total.as_secs()
                    )
                } else {
                    format!("the request body sent nothing for {} s", idle.as_secs())
                };
                Rejection::with(408, why)
            })
    }
}

/// Reads a small request body (a control call's JSON) whole within `total`: 413 beyond
/// `limit` bytes, 408 when it is too slow.
pub async fn read_small_body(
    total: Duration,
    body: Body,
    limit: usize,
) -> Result<Vec<u8>, Rejection> {
    let deadline = BodyDeadline::starting_now(total);
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    while let Some(piece) = deadline.next(stream.next()).await? {
        let bytes =
            piece.map_err(|e| Rejection::bad(format!("error reading the request body: {e}")))?;
        if out.len() + bytes.len() > limit {
            return Err(Rejection::with(
                413,
                format!("request body over {limit} bytes"),
            ));
        }
        out.extend_from_slice(&bytes);
    }
    Ok(out)
}
