//! Reading request bodies: the time limits of one body, reading a small body whole, telling a
//! body the transport cut short from a whole one (and recording how it arrived), and handing a
//! body to the multipart parser with its end on a poll of its own.

use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use futures_util::StreamExt;
use http_body::{Frame, SizeHint};

use crate::error::Rejection;
use crate::sync::lock;

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

/// What [`watch_for_cut`] saw of one request body: why the transport cut it (if it did), and a
/// record of how it arrived for the log when a parser refuses it.
#[derive(Debug, Clone, Default)]
pub struct CutWatch(Arc<Watch>);

#[derive(Debug, Default)]
struct Watch {
    cut: OnceLock<String>,
    seen: Mutex<Seen>,
}

/// Bytes of the body's start and end that [`CutWatch::arrival`] shows.
const EDGE_BYTES: usize = 120;
/// Data frame sizes [`CutWatch::arrival`] lists (a 64 KiB chunk from Chromium over HTTP/2
/// comes in 5); beyond it only the count goes on.
const LISTED_FRAMES: usize = 256;

/// How the body arrived so far.
#[derive(Debug, Default)]
struct Seen {
    received: u64,
    frames: usize,
    sizes: Vec<usize>,
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    end: Option<&'static str>,
}

impl CutWatch {
    /// Why the body was cut, if it was.
    pub fn reason(&self) -> Option<&str> {
        self.0.cut.get().map(String::as_str)
    }

    /// How the body arrived, for a log line: the bytes and data frames received, how it ended
    /// (`clean` is an end of stream, `error` a transport error, `short` an end before the
    /// declared length, `open` not ended when the parser gave up), the sizes of its data
    /// frames in order, and its first and last bytes (escaped).
    pub fn arrival(&self) -> String {
        let seen = lock(&self.0.seen);
        let tail: Vec<u8> = seen.tail.iter().copied().collect();
        let more = if seen.frames > seen.sizes.len() {
            " …"
        } else {
            ""
        };
        format!(
            "received {} bytes in {} data frames, end {}, frame sizes {:?}{more}, first bytes \"{}\", \
             last bytes \"{}\"",
            seen.received,
            seen.frames,
            seen.end.unwrap_or("open"),
            seen.sizes,
            seen.head.escape_ascii(),
            tail.escape_ascii(),
        )
    }
}

/// Watches a request body for an end the transport made: an error from the connection (a
/// reset stream, a closed connection) or an end before the declared `Content-Length`. HTTP/2
/// reports a `RST_STREAM(NO_ERROR)` as a clean end of the body (RFC 9113 §8.1: a server's "stop
/// sending"), so without this a parser would take the cut body for a whole, malformed one. The
/// returned body reports a short end as an error, so nothing downstream can take it for whole.
pub fn watch_for_cut(body: Body, declared: Option<u64>) -> (Body, CutWatch) {
    let watch = CutWatch::default();
    let watched = Watched {
        inner: body,
        declared,
        received: 0,
        watch: watch.clone(),
    };
    (Body::new(watched), watch)
}

struct Watched {
    inner: Body,
    declared: Option<u64>,
    received: u64,
    watch: CutWatch,
}

impl Watched {
    fn cut(&self, why: String, end: &'static str) -> axum::Error {
        lock(&self.watch.0.seen).end = Some(end);
        let _ = self.watch.0.cut.set(why.clone());
        axum::Error::new(why)
    }

    fn saw(&self, data: &[u8]) {
        let mut seen = lock(&self.watch.0.seen);
        seen.received += data.len() as u64;
        seen.frames += 1;
        if seen.sizes.len() < LISTED_FRAMES {
            seen.sizes.push(data.len());
        }
        let room = EDGE_BYTES.saturating_sub(seen.head.len());
        seen.head.extend_from_slice(&data[..room.min(data.len())]);
        let keep = &data[data.len().saturating_sub(EDGE_BYTES)..];
        seen.tail.extend(keep);
        let over = seen.tail.len().saturating_sub(EDGE_BYTES);
        seen.tail.drain(..over);
    }
}

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    self.received += data.len() as u64;
                    self.saw(data);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => {
                let why = format!(
                    "the connection broke the request body off after {} bytes ({e})",
                    self.received
                );
                Poll::Ready(Some(Err(self.cut(why, "error"))))
            }
            None => match self.declared {
                Some(declared) if self.received < declared => {
                    let why = format!(
                        "the request body ended after {} of its {declared} bytes (the stream \
                         was reset or the connection closed)",
                        self.received
                    );
                    Poll::Ready(Some(Err(self.cut(why, "short"))))
                }
                _ => {
                    lock(&self.watch.0.seen).end = Some("clean");
                    Poll::Ready(None)
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        // A short body is not over: its next poll reports the cut.
        self.inner.is_end_stream() && self.declared.is_none_or(|d| self.received >= d)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Hands `body` on with its end reported on a poll of its own: the first poll that finds the
/// body over answers "not yet" and wakes its task at once; the next one reports the end.
///
/// For multer 3.1.0, the parser behind axum's `Multipart`: while it looks for the first
/// boundary, one call polls the body twice, and when the second poll drains the body to its
/// end it reports `IncompleteStream` without looking at the bytes that poll brought in (its
/// issue rwf2/multer#70, unfixed in any release). On a multi-threaded runtime the whole body
/// can arrive between those two polls (the handler's thread paused under load while the
/// connection's task reads on): a browser's correct chunk was then refused with a permanent
/// 400. With its end on a poll of its own, the body's bytes are always in the parser's buffer
/// before it sees the end.
pub fn end_on_its_own_poll(body: Body) -> Body {
    Body::new(EndApart {
        inner: body,
        end_held: false,
    })
}

struct EndApart {
    inner: Body,
    /// The body ended, and the poll that found it answered "not yet".
    end_held: bool,
}

impl HttpBody for EndApart {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if self.end_held {
            return Poll::Ready(None);
        }
        match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
            None => {
                self.end_held = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            frame => Poll::Ready(frame),
        }
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
