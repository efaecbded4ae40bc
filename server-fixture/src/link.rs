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

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
    delivered: [AtomicU64; 2],
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
            delivered: [AtomicU64::new(0), AtomicU64::new(0)],
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

    /// Bytes the link has delivered in `dir` since it was made, all connections together.
    pub fn delivered(&self, dir: Direction) -> u64 {
        self.delivered[dir.index()].load(Ordering::Acquire)
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

/// Sleeps until `at`, or forever when `None`.
async fn sleep_until_or_never(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Moves bytes from `from` to `to` through the link in `dir` until `from` ends (then shuts
/// `to` down once delivered) or `to` fails. The reader only queues what it reads (within the
/// limits); the writer paces each piece as it takes it from the queue, in order, and paces
/// again, in order, what it holds when the shape changes.
pub async fn pump<R, W>(mut from: R, mut to: W, link: Arc<Link>, dir: Direction)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let held = Held {
        link: &link,
        dir,
        bytes: AtomicUsize::new(0),
    };
    let held = &held;
    let link = &link;
    let reader = async move {
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            loop {
                let room = link.drained.notified();
                if held.has_room() {
                    break;
                }
                room.await;
            }
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            held.add(n + PIECE_OVERHEAD);
            // An exact-size copy: a piece holds its bytes, not a whole read buffer.
            if tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    };
    let writer = async move {
        let mut changes = link.generation.subscribe();
        let mut paced_under = *changes.borrow_and_update();
        // Paced pieces, in order, with when each reaches the other side.
        let mut due: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
        let mut reading = true;
        loop {
            let generation = *changes.borrow_and_update();
            if generation != paced_under {
                paced_under = generation;
                for (at, bytes) in &mut due {
                    *at = link.schedule(dir, bytes.len());
                }
            }
            if let Some((at, _)) = due.front() {
                if *at <= Instant::now() {
                    let Some((_, bytes)) = due.pop_front() else {
                        continue;
                    };
                    if to.write_all(&bytes).await.is_err() {
                        return;
                    }
                    held.sub(bytes.len() + PIECE_OVERHEAD);
                    link.delivered[dir.index()].fetch_add(bytes.len() as u64, Ordering::AcqRel);
                    continue;
                }
            } else if !reading {
                break;
            }
            let next_at = due.front().map(|(at, _)| *at);
            tokio::select! {
                piece = rx.recv(), if reading => match piece {
                    Some(bytes) => {
                        let at = link.schedule(dir, bytes.len());
                        due.push_back((at, bytes));
                    }
                    None => reading = false,
                },
                () = sleep_until_or_never(next_at) => {}
                // The link outlives its pumps, so the sender is never gone here.
                _ = changes.changed() => {}
            }
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

    /// One write of a pump: when (on the link's clock, tokio's paused time) and the bytes.
    type Arrival = (Instant, Vec<u8>);

    /// What a pump delivered.
    #[derive(Clone, Default)]
    struct Arrivals(Arc<Mutex<Vec<Arrival>>>);

    impl AsyncWrite for Arrivals {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            lock(&self.0).push((Instant::now(), buf.to_vec()));
            std::task::Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    impl Arrivals {
        fn times(&self) -> Vec<(Instant, usize)> {
            lock(&self.0).iter().map(|(t, b)| (*t, b.len())).collect()
        }

        fn bytes(&self) -> Vec<u8> {
            lock(&self.0).iter().flat_map(|(_, b)| b.clone()).collect()
        }
    }

    /// Sends `data` through a new pump of `link` into `arrivals`; returns the pump's task.
    fn send_through(
        link: &Arc<Link>,
        data: Vec<u8>,
        arrivals: &Arrivals,
    ) -> tokio::task::JoinHandle<()> {
        let (mut client, far) = tokio::io::duplex(READ_CHUNK);
        tokio::spawn(async move {
            client.write_all(&data).await.unwrap();
        });
        tokio::spawn(pump(far, arrivals.clone(), link.clone(), Direction::Up))
    }

    /// The most bytes delivered in any window of length `w` that starts at a delivery.
    fn most_in_any_window(arrivals: &[(Instant, usize)], w: Duration) -> usize {
        let mut sorted = arrivals.to_vec();
        sorted.sort_by_key(|(t, _)| *t);
        let (mut most, mut sum, mut end) = (0, 0, 0);
        for (i, (start, n)) in sorted.iter().enumerate() {
            while end < sorted.len() && sorted[end].0 < *start + w {
                sum += sorted[end].1;
                end += 1;
            }
            most = most.max(sum);
            sum -= n;
            debug_assert!(end > i);
        }
        most
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    /// 16 MiB through 100 Mbit/s: in every window (1 ms to 1 s) the link passes at most its
    /// rate plus the one piece under way, the bytes arrive whole and in order, and the last
    /// one leaves when the rate says (all on the link's own clock).
    #[tokio::test(start_paused = true)]
    async fn the_link_never_passes_more_than_its_rate_in_any_window() {
        let link = Link::new(Some(shape(0, Some(100.0))));
        let rate = 100e6 / 8.0;
        let body = data(16 * 1024 * 1024);
        let arrivals = Arrivals::default();
        let t0 = Instant::now();
        send_through(&link, body.clone(), &arrivals).await.unwrap();
        assert!(
            arrivals.bytes() == body,
            "the bytes arrive whole and in order"
        );
        let times = arrivals.times();
        for ms in [1, 10, 100, 1000] {
            let w = Duration::from_millis(ms);
            let most = most_in_any_window(&times, w);
            let allowed = rate * w.as_secs_f64() + READ_CHUNK as f64;
            assert!(
                most as f64 <= allowed,
                "{most} bytes in {ms} ms through 100 Mbit/s (at most {allowed})"
            );
        }
        let last = times.last().unwrap().0 - t0;
        let want = Duration::from_secs_f64(body.len() as f64 / rate);
        assert!(
            last >= want && last <= want + Duration::from_millis(1),
            "the last byte left after {last:?} on the link's clock, the rate says {want:?}"
        );
    }

    /// Two connections share the one cap: together they never pass more than the rate, and
    /// neither gets the link to itself (the first to finish ends near the end of both).
    #[tokio::test(start_paused = true)]
    async fn connections_share_one_cap() {
        let link = Link::new(Some(shape(0, Some(100.0))));
        let rate = 100e6 / 8.0;
        let (a, b) = (Arrivals::default(), Arrivals::default());
        let t0 = Instant::now();
        let one = send_through(&link, data(4 * 1024 * 1024), &a);
        let two = send_through(&link, data(4 * 1024 * 1024), &b);
        one.await.unwrap();
        two.await.unwrap();
        let mut both = a.times();
        both.extend(b.times());
        for ms in [1, 10, 100] {
            let w = Duration::from_millis(ms);
            let most = most_in_any_window(&both, w);
            let allowed = rate * w.as_secs_f64() + 2.0 * READ_CHUNK as f64;
            assert!(
                most as f64 <= allowed,
                "{most} bytes in {ms} ms (at most {allowed})"
            );
        }
        let all = (8 * 1024 * 1024) as f64 / rate;
        let first_done = (a.times().last().unwrap().0 - t0).min(b.times().last().unwrap().0 - t0);
        assert!(
            first_done.as_secs_f64() >= 0.9 * all,
            "one connection finished after {first_done:?} of the {all} s both take: it did not share"
        );
    }

    /// A change of the link applies to what is already queued: a piece held for a 10 s round
    /// trip leaves as soon as the delay is switched off, and queued data is paced again at a
    /// lower rate.
    #[tokio::test(start_paused = true)]
    async fn a_change_of_the_link_re_times_queued_data() {
        let link = Link::new(Some(shape(10_000, None)));
        let arrivals = Arrivals::default();
        let t0 = Instant::now();
        let pumped = send_through(&link, data(1000), &arrivals);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            arrivals.times().is_empty(),
            "held for the 5 s one-way delay"
        );
        link.set(Some(shape(0, None)));
        pumped.await.unwrap();
        let at = arrivals.times()[0].0 - t0;
        assert_eq!(
            at,
            Duration::from_secs(1),
            "delivered when the delay went away"
        );

        // 1 MiB queued at 100 Mbit/s (84 ms), slowed to 10 Mbit/s after 10 ms.
        let link = Link::new(Some(shape(0, Some(100.0))));
        let arrivals = Arrivals::default();
        let pumped = send_through(&link, data(1024 * 1024), &arrivals);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let changed = Instant::now();
        link.set(Some(shape(0, Some(10.0))));
        pumped.await.unwrap();
        let after: Vec<_> = arrivals
            .times()
            .into_iter()
            .filter(|(t, _)| *t > changed)
            .collect();
        let slow = 10e6 / 8.0;
        let w = Duration::from_millis(100);
        let most = most_in_any_window(&after, w);
        let allowed = slow * w.as_secs_f64() + READ_CHUNK as f64;
        assert!(
            most as f64 <= allowed,
            "{most} bytes in 100 ms after slowing to 10 Mbit/s (at most {allowed})"
        );
        assert_eq!(arrivals.bytes(), data(1024 * 1024));
    }

    /// All the connections of a link hold at most its total (plus one piece each, read while
    /// another filled the rest), whatever their own limits; aborted pumps give theirs back.
    #[tokio::test(start_paused = true)]
    async fn all_connections_together_hold_at_most_the_total() {
        const TOTAL: usize = 1024 * 1024;
        const CONNECTIONS: usize = 8;
        // No delay and no rate: each connection may hold 64 MiB; the total binds.
        let link = Link::with_total_limit(Some(shape(0, None)), TOTAL);
        let mut pumps = Vec::new();
        let mut stuck = Vec::new();
        for _ in 0..CONNECTIONS {
            let (mut client, far) = tokio::io::duplex(READ_CHUNK);
            // A receiver that never reads: nothing leaves the queues.
            let (never_read, sink) = tokio::io::duplex(1);
            stuck.push(never_read);
            tokio::spawn(async move {
                let _ = client.write_all(&data(TOTAL)).await;
            });
            pumps.push(tokio::spawn(pump(far, sink, link.clone(), Direction::Up)));
        }
        // Paused time advances only once every task waits: the queues are as full as they get.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let held = link.queued(Direction::Up);
        let most = TOTAL + CONNECTIONS * (READ_CHUNK + PIECE_OVERHEAD);
        assert!(
            held <= most,
            "{CONNECTIONS} connections hold {held} bytes on a link bounded at {TOTAL} (at most {most})"
        );
        assert!(held >= TOTAL, "the queues filled up to the total: {held}");
        for p in pumps {
            p.abort();
            let _ = p.await;
        }
        assert_eq!(
            link.queued(Direction::Up),
            0,
            "aborted pumps give their bytes back"
        );
    }
}
