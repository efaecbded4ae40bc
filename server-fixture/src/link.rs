//! Link emulation on the API listener: every accepted connection's bytes pass through two pumps
//! (client→server "up", server→client "down") that hold each piece for the one-way delay and
//! pace it through one bandwidth clock per direction shared by all connections. It works below
//! HTTP and TLS, so a preflight, a probe, a chunk POST and a TLS handshake all pay the round
//! trip, and parallel connections share the cap as they would on one real link.
//!
//! Model and limits: a constant one-way delay each way, a byte-exact rate cap per direction (no
//! burst, no loss, no jitter, no reordering), and queues bounded in memory twice: per connection
//! and direction at a few bandwidth-delay products (so one connection can fill the link, as a
//! tuned TCP connection does, and the real socket pushes back beyond that), and for all the
//! connections of the link together at [`TOTAL_QUEUE`] per direction. A change of the
//! [`Shape`] applies to open connections at once, to the data already queued too: queued
//! pieces are paced again at the new rate and delay.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::sync::lock;

/// Largest piece a pump reads at once (one pacing step).
pub const READ_CHUNK: usize = 16 * 1024;
/// What a queued piece costs besides its bytes (its allocation, deadline and channel slot), so
/// that a peer sending tiny segments cannot make a queue hold far more memory than its limit.
pub const PIECE_OVERHEAD: usize = 64;
/// Buffer between the pumps and the HTTP server (small: the link's own queue does the holding).
const DUPLEX_BUFFER: usize = 64 * 1024;
/// Bandwidth-delay products a connection may hold per direction.
const QUEUE_BDPS: f64 = 4.0;
/// Smallest per-connection queue, in bytes (short or slow links).
pub const MIN_QUEUE: usize = 256 * 1024;
/// Largest per-connection queue, in bytes (also the queue without a rate cap).
pub const MAX_QUEUE: usize = 64 * 1024 * 1024;
/// What all the connections of one link may hold together per direction, in bytes: beyond it
/// every pump stops reading (its socket pushes back) until the link has delivered some.
pub const TOTAL_QUEUE: usize = 256 * 1024 * 1024;

/// A direction on the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to server (request bodies).
    Up,
    /// Server to client (responses).
    Down,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Direction::Up => 0,
            Direction::Down => 1,
        }
    }
}

/// How the link behaves: the delay each way and the rate cap of each direction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    /// Added to every piece in each direction (half the round trip).
    pub one_way: Duration,
    /// Client→server cap in bytes per second; `None` is unlimited.
    pub up_bytes_per_sec: Option<f64>,
    /// Server→client cap in bytes per second; `None` is unlimited.
    pub down_bytes_per_sec: Option<f64>,
}

impl Shape {
    fn rate(&self, dir: Direction) -> Option<f64> {
        match dir {
            Direction::Up => self.up_bytes_per_sec,
            Direction::Down => self.down_bytes_per_sec,
        }
    }

    /// Bytes one connection may hold in `dir`: a few bandwidth-delay products, bounded.
    pub fn queue_limit(&self, dir: Direction) -> usize {
        match self.rate(dir) {
            None => MAX_QUEUE,
            Some(rate) => {
                // The floor covers a zero delay and slow links.
                let bdp = rate * 2.0 * self.one_way.as_secs_f64();
                let want = (bdp * QUEUE_BDPS).clamp(MIN_QUEUE as f64, MAX_QUEUE as f64);
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let bytes = want as usize;
                bytes
            }
        }
    }
}

/// The link shared by all connections of a listener: the current shape, per direction the time
/// at which the link finishes sending what was paced so far, and the bytes queued in all.
#[derive(Debug)]
pub struct Link {
    shape: Mutex<Option<Shape>>,
    free_at: [Mutex<Instant>; 2],
    /// Bumped by every change of the shape: a piece paced under an older one is paced again.
    generation: watch::Sender<u64>,
    queued: [AtomicUsize; 2],
    total_limit: usize,
    /// Notified whenever a queue of this link shrinks.
    drained: Notify,
}

impl Link {
    /// A link with `shape` (`None`: pass bytes through at once).
    pub fn new(shape: Option<Shape>) -> Arc<Link> {
        Link::with_total_limit(shape, TOTAL_QUEUE)
    }

    fn with_total_limit(shape: Option<Shape>, total_limit: usize) -> Arc<Link> {
        let now = Instant::now();
        Arc::new(Link {
            shape: Mutex::new(shape),
            free_at: [Mutex::new(now), Mutex::new(now)],
            generation: watch::Sender::new(0),
            queued: [AtomicUsize::new(0), AtomicUsize::new(0)],
            total_limit,
            drained: Notify::new(),
        })
    }

    /// Changes the shape; open connections follow at once, with what they have queued.
    pub fn set(&self, shape: Option<Shape>) {
        *lock(&self.shape) = shape;
        // What was paced under the old shape is paced again as it leaves its queue.
        let now = Instant::now();
        for clock in &self.free_at {
            *lock(clock) = now;
        }
        self.generation.send_modify(|g| *g += 1);
    }

    /// The current shape.
    pub fn shape(&self) -> Option<Shape> {
        *lock(&self.shape)
    }

    /// Bytes (plus [`PIECE_OVERHEAD`] per piece) queued in `dir` by all connections now.
    pub fn queued(&self, dir: Direction) -> usize {
        self.queued[dir.index()].load(Ordering::Acquire)
    }

    /// When `n` bytes handed over now in `dir` reach the other side: once the link has sent
    /// what was paced before them and them (the shared rate cap), plus the one-way delay.
    fn schedule(&self, dir: Direction, n: usize) -> Instant {
        let now = Instant::now();
        let Some(shape) = self.shape() else {
            return now;
        };
        let sent = match shape.rate(dir) {
            None => now,
            Some(rate) => {
                let mut free_at = lock(&self.free_at[dir.index()]);
                let start = (*free_at).max(now);
                #[allow(clippy::cast_precision_loss)]
                let secs = n as f64 / rate;
                *free_at = start + Duration::from_secs_f64(secs);
                *free_at
            }
        };
        sent + shape.one_way
    }

    fn queue_limit(&self, dir: Direction) -> usize {
        self.shape()
            .map_or(MIN_QUEUE, |s| s.queue_limit(dir))
            .min(self.total_limit)
    }
}

/// What one pump holds in its queue, counted in the link's total too; dropping it (the
/// connection ends, or its pumps are aborted) gives the total back.
struct Held<'a> {
    link: &'a Link,
    dir: Direction,
    bytes: AtomicUsize,
}

impl Held<'_> {
    fn add(&self, n: usize) {
        self.bytes.fetch_add(n, Ordering::AcqRel);
        self.link.queued[self.dir.index()].fetch_add(n, Ordering::AcqRel);
    }

    fn sub(&self, n: usize) {
        self.bytes.fetch_sub(n, Ordering::AcqRel);
        self.link.queued[self.dir.index()].fetch_sub(n, Ordering::AcqRel);
        self.link.drained.notify_waiters();
    }

    /// Whether this pump may read more: its own queue and the link's total are below their
    /// limits.
    fn has_room(&self) -> bool {
        self.bytes.load(Ordering::Acquire) < self.link.queue_limit(self.dir)
            && self.link.queued(self.dir) < self.link.total_limit
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let n = self.bytes.load(Ordering::Acquire);
        if n > 0 {
            self.sub(n);
        }
    }
}

/// Aborts the pumps of a connection when dropped.
#[derive(Debug)]
pub struct Pumps(JoinHandle<()>);

impl Pumps {
    /// Waits (at most `limit`) for the server's last bytes to reach the client.
    pub async fn finish(mut self, limit: Duration) {
        let _ = tokio::time::timeout(limit, &mut self.0).await;
    }
}

impl Drop for Pumps {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Puts `stream` behind `link`: returns the end the HTTP (or TLS) server uses, and the pumps.
pub fn wrap(stream: TcpStream, link: Arc<Link>) -> (DuplexStream, Pumps) {
    let (near, far) = tokio::io::duplex(DUPLEX_BUFFER);
    let (sock_r, sock_w) = stream.into_split();
    let (far_r, far_w) = tokio::io::split(far);
    let task = tokio::spawn(async move {
        let up = pump(sock_r, far_w, link.clone(), Direction::Up);
        let down = pump(far_r, sock_w, link, Direction::Down);
        // The connection is over once the server's side is delivered; the client's side may
        // stay open (idle keep-alive) and must not hold the task.
        tokio::select! {
            () = down => {}
            () = async { up.await; std::future::pending::<()>().await } => {}
        }
    });
    (near, Pumps(task))
}

/// A piece of data on its way: its bytes, when it reaches the other side, and the generation
/// of the shape it was paced under.
struct Piece {
    bytes: Vec<u8>,
    at: Instant,
    generation: u64,
}

/// Moves bytes from `from` to `to` through the link in `dir` until `from` ends (then shuts
/// `to` down once delivered) or `to` fails.
pub async fn pump<R, W>(mut from: R, mut to: W, link: Arc<Link>, dir: Direction)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<Piece>();
    let held = Held {
        link: &link,
        dir,
        bytes: AtomicUsize::new(0),
    };
    let held = &held;
    let link_r = &link;
    let reader = async move {
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            loop {
                let room = link_r.drained.notified();
                if held.has_room() {
                    break;
                }
                room.await;
            }
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            // An exact-size copy: a piece holds its bytes, not a whole read buffer.
            let bytes = buf[..n].to_vec();
            let generation = *link_r.generation.borrow();
            let at = link_r.schedule(dir, n);
            held.add(n + PIECE_OVERHEAD);
            if tx
                .send(Piece {
                    bytes,
                    at,
                    generation,
                })
                .is_err()
            {
                break;
            }
        }
    };
    let link_w = &link;
    let writer = async move {
        let mut changes = link_w.generation.subscribe();
        while let Some(piece) = rx.recv().await {
            let (mut at, mut generation) = (piece.at, piece.generation);
            loop {
                let now_generation = *changes.borrow_and_update();
                if now_generation != generation {
                    // The shape changed while this piece waited: pace it again.
                    at = link_w.schedule(dir, piece.bytes.len());
                    generation = now_generation;
                }
                if at <= Instant::now() {
                    break;
                }
                tokio::select! {
                    () = tokio::time::sleep_until(at) => break,
                    changed = changes.changed() => {
                        if changed.is_err() {
                            break;
                        }
                    }
                }
            }
            if to.write_all(&piece.bytes).await.is_err() {
                return;
            }
            held.sub(piece.bytes.len() + PIECE_OVERHEAD);
        }
        let _ = to.shutdown().await;
    };
    tokio::pin!(reader, writer);
    let mut reader_done = false;
    loop {
        tokio::select! {
            () = &mut reader, if !reader_done => reader_done = true,
            () = &mut writer => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(rtt_ms: u64, up_mbit: Option<f64>) -> Shape {
        Shape {
            one_way: Duration::from_micros(rtt_ms * 500),
            up_bytes_per_sec: up_mbit.map(|m| m * 1e6 / 8.0),
            down_bytes_per_sec: None,
        }
    }

    /// The slowest link the settings accept (1 kbit/s, 10 s round trip), with every
    /// connection's queue full, schedules without overflowing a duration or an instant (a panic
    /// there would kill every connection).
    #[test]
    fn the_slowest_link_schedules_without_overflow() {
        let link = Link::new(Some(shape(10_000, Some(0.001))));
        for _ in 0..10_000 {
            let _ = link.schedule(Direction::Up, MAX_QUEUE);
        }
    }

    /// A peer that sends one byte per segment must not make the queue hold a read buffer per
    /// byte: what a connection may hold is counted in memory, not only in payload bytes.
    #[tokio::test]
    async fn one_byte_pieces_are_bounded_by_the_queue_in_memory() {
        // 1 kbit/s: nothing leaves the queue during the test; the queue is its floor.
        let slow = shape(10_000, Some(0.001));
        let limit = slow.queue_limit(Direction::Up);
        assert_eq!(limit, MIN_QUEUE);
        // A one-byte pipe: every read of the pump gets one byte.
        let (mut client, far) = tokio::io::duplex(1);
        let pumps = tokio::spawn(pump(
            far,
            tokio::io::sink(),
            Link::new(Some(slow)),
            Direction::Up,
        ));
        const SENT_AT_MOST: usize = 10_000;
        let mut accepted = 0;
        while accepted < SENT_AT_MOST {
            let wrote =
                tokio::time::timeout(Duration::from_millis(200), client.write_all(b"x")).await;
            if wrote.is_err() {
                break;
            }
            accepted += 1;
        }
        pumps.abort();
        // One more byte waits in the pipe, one piece may overshoot.
        let most = limit / (1 + PIECE_OVERHEAD) + 2;
        assert!(
            accepted <= most,
            "the pump took {accepted} one-byte pieces into a {limit}-byte queue (at most {most})"
        );
    }

    #[test]
    fn queue_is_a_few_bdps_within_bounds() {
        // 100 Mbit/s × 100 ms = 1.25 MB; four of them.
        let l = shape(100, Some(100.0));
        assert_eq!(l.queue_limit(Direction::Up), 5_000_000);
        assert_eq!(l.queue_limit(Direction::Down), MAX_QUEUE);
        assert_eq!(shape(1, Some(1.0)).queue_limit(Direction::Up), MIN_QUEUE);
    }
}
