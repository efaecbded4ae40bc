//! Link emulation on the API listener: every accepted connection's bytes pass through two pumps
//! (client→server "up", server→client "down") that hold each piece for half the round trip and
//! pace it through one bandwidth clock per direction shared by all connections. It works below
//! HTTP and TLS, so a preflight, a probe, a chunk POST and a TLS handshake all pay the round
//! trip, and parallel connections share the cap as they would on one real link.
//!
//! Model and limits: a constant one-way delay of `rtt/2` each way, a byte-exact rate cap per
//! direction (no burst, no loss, no jitter, no reordering), and a queue per connection and
//! direction bounded at a few bandwidth-delay products (so one connection can fill the link, as
//! a tuned TCP connection does, and the real socket pushes back beyond that). The settings are
//! read for every piece of data, so a change through `/__fixture/config` applies to open
//! connections at once.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::state::lock;

/// Largest piece a pump reads at once (one pacing step).
const READ_CHUNK: usize = 16 * 1024;
/// What a queued piece costs besides its bytes (its allocation, deadline and channel slot), so
/// that a peer sending tiny segments cannot make a queue hold far more memory than its limit.
const PIECE_OVERHEAD: usize = 64;
/// Buffer between the pumps and the HTTP server (small: the link's own queue does the holding).
const DUPLEX_BUFFER: usize = 64 * 1024;
/// Bandwidth-delay products a connection may hold per direction.
const QUEUE_BDPS: f64 = 4.0;
/// Smallest per-connection queue, in bytes (short or slow links).
const MIN_QUEUE: usize = 256 * 1024;
/// Largest per-connection queue, in bytes (also the queue without a rate cap).
const MAX_QUEUE: usize = 64 * 1024 * 1024;
/// Longest round trip accepted, in milliseconds.
pub const MAX_RTT_MS: u64 = 10_000;
/// Slowest rate accepted, in Mbit/s (1 kbit/s).
pub const MIN_MBIT: f64 = 0.001;
/// Fastest rate accepted, in Mbit/s.
pub const MAX_MBIT: f64 = 100_000.0;

/// An emulated link: `rtt=MS,up=MBIT,down=MBIT` (each part optional; a missing rate is
/// unlimited). In JSON either that string or `{"rtt_ms":…,"up_mbit":…,"down_mbit":…}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "LinkJson")]
pub struct LinkSpec {
    /// Round-trip time added, in milliseconds (half each way).
    pub rtt_ms: u64,
    /// Client→server rate cap in Mbit/s (10^6 bit/s); `None` is unlimited.
    pub up_mbit: Option<f64>,
    /// Server→client rate cap in Mbit/s; `None` is unlimited.
    pub down_mbit: Option<f64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum LinkJson {
    Text(String),
    Fields {
        #[serde(default)]
        rtt_ms: u64,
        #[serde(default)]
        up_mbit: Option<f64>,
        #[serde(default)]
        down_mbit: Option<f64>,
    },
}

impl TryFrom<LinkJson> for LinkSpec {
    type Error = String;
    fn try_from(j: LinkJson) -> Result<Self, String> {
        match j {
            LinkJson::Text(s) => s.parse(),
            LinkJson::Fields {
                rtt_ms,
                up_mbit,
                down_mbit,
            } => {
                let spec = LinkSpec {
                    rtt_ms,
                    up_mbit,
                    down_mbit,
                };
                spec.validate()?;
                Ok(spec)
            }
        }
    }
}

impl LinkSpec {
    /// Checks ranges: rtt ≤ [`MAX_RTT_MS`], rates from [`MIN_MBIT`] to [`MAX_MBIT`] (a slower
    /// rate would overflow the pacing clock).
    pub fn validate(&self) -> Result<(), String> {
        if self.rtt_ms > MAX_RTT_MS {
            return Err(format!(
                "link rtt must be at most {MAX_RTT_MS} ms, got {}",
                self.rtt_ms
            ));
        }
        for (name, rate) in [("up", self.up_mbit), ("down", self.down_mbit)] {
            if let Some(r) = rate {
                if !r.is_finite() || !(MIN_MBIT..=MAX_MBIT).contains(&r) {
                    return Err(format!(
                        "link {name} must be a rate in Mbit/s from {MIN_MBIT} to {MAX_MBIT}, got {r}"
                    ));
                }
            }
        }
        Ok(())
    }

    fn rate_mbit(&self, dir: Direction) -> Option<f64> {
        match dir {
            Direction::Up => self.up_mbit,
            Direction::Down => self.down_mbit,
        }
    }

    /// Bytes one connection may hold in `dir`: a few bandwidth-delay products, bounded.
    fn queue_limit(&self, dir: Direction) -> usize {
        match self.rate_mbit(dir) {
            None => MAX_QUEUE,
            Some(mbit) => {
                // Bytes per millisecond × ms; the floor covers rtt 0 and slow links.
                let bdp = mbit * 1e6 / 8.0 * self.rtt_ms as f64 / 1000.0;
                let want = (bdp * QUEUE_BDPS).clamp(MIN_QUEUE as f64, MAX_QUEUE as f64);
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let bytes = want as usize;
                bytes
            }
        }
    }
}

impl FromStr for LinkSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut spec = LinkSpec {
            rtt_ms: 0,
            up_mbit: None,
            down_mbit: None,
        };
        let mut seen = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("expected rtt=MS,up=MBIT,down=MBIT, got {s:?}"))?;
            if seen.contains(&key) {
                return Err(format!("link: {key} given twice in {s:?}"));
            }
            seen.push(key);
            let rate = || {
                value
                    .parse::<f64>()
                    .map_err(|_| format!("link: {key} must be a number of Mbit/s, got {value:?}"))
            };
            match key {
                "rtt" => {
                    spec.rtt_ms = value.parse().map_err(|_| {
                        format!("link: rtt must be whole milliseconds, got {value:?}")
                    })?;
                }
                "up" => spec.up_mbit = Some(rate()?),
                "down" => spec.down_mbit = Some(rate()?),
                _ => return Err(format!("link: unknown key {key:?} (rtt, up, down)")),
            }
        }
        if seen.is_empty() {
            return Err(format!("expected rtt=MS,up=MBIT,down=MBIT, got {s:?}"));
        }
        spec.validate()?;
        Ok(spec)
    }
}

impl fmt::Display for LinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rtt={}", self.rtt_ms)?;
        if let Some(up) = self.up_mbit {
            write!(f, ",up={up}")?;
        }
        if let Some(down) = self.down_mbit {
            write!(f, ",down={down}")?;
        }
        Ok(())
    }
}

/// A direction on the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to server (request bodies).
    Up,
    /// Server to client (responses).
    Down,
}

/// The link shared by all connections of a listener: the current setting and, per direction,
/// the time at which the link finishes sending what was queued so far.
#[derive(Debug)]
pub struct Link {
    spec: Mutex<Option<LinkSpec>>,
    up_free_at: Mutex<Instant>,
    down_free_at: Mutex<Instant>,
}

impl Link {
    /// A link with `spec` (`None`: pass bytes through at once).
    pub fn new(spec: Option<LinkSpec>) -> Arc<Link> {
        let now = Instant::now();
        Arc::new(Link {
            spec: Mutex::new(spec),
            up_free_at: Mutex::new(now),
            down_free_at: Mutex::new(now),
        })
    }

    /// Changes the setting; open connections follow from their next piece of data.
    pub fn set(&self, spec: Option<LinkSpec>) {
        *lock(&self.spec) = spec;
    }

    /// The current setting.
    pub fn spec(&self) -> Option<LinkSpec> {
        *lock(&self.spec)
    }

    /// When `n` bytes read now in `dir` reach the other side: once the link has sent what was
    /// queued before them and them (the shared rate cap), plus the one-way delay.
    fn schedule(&self, dir: Direction, n: usize) -> Instant {
        let now = Instant::now();
        let Some(spec) = self.spec() else {
            return now;
        };
        let sent = match spec.rate_mbit(dir) {
            None => now,
            Some(mbit) => {
                let clock = match dir {
                    Direction::Up => &self.up_free_at,
                    Direction::Down => &self.down_free_at,
                };
                let mut free_at = lock(clock);
                let start = (*free_at).max(now);
                #[allow(clippy::cast_precision_loss)]
                let secs = n as f64 * 8.0 / (mbit * 1e6);
                *free_at = start + Duration::from_secs_f64(secs);
                *free_at
            }
        };
        sent + Duration::from_micros(spec.rtt_ms * 500)
    }

    fn queue_limit(&self, dir: Direction) -> usize {
        self.spec().map_or(MIN_QUEUE, |s| s.queue_limit(dir))
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

/// Moves bytes from `from` to `to` through the link in `dir` until `from` ends (then shuts
/// `to` down once delivered) or `to` fails.
async fn pump<R, W>(mut from: R, mut to: W, link: Arc<Link>, dir: Direction)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let queued = AtomicUsize::new(0);
    let drained = Notify::new();
    let (queued, drained) = (&queued, &drained);
    let link_r = link.clone();
    let reader = async move {
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            loop {
                let room = drained.notified();
                if queued.load(Ordering::Acquire) < link_r.queue_limit(dir) {
                    break;
                }
                room.await;
            }
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            // An exact-size copy: a piece holds its bytes, not a whole read buffer.
            let piece = buf[..n].to_vec();
            let at = link_r.schedule(dir, n);
            queued.fetch_add(n + PIECE_OVERHEAD, Ordering::AcqRel);
            if tx.send((at, piece)).is_err() {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((at, buf)) = rx.recv().await {
            if at > Instant::now() {
                tokio::time::sleep_until(at).await;
            }
            if to.write_all(&buf).await.is_err() {
                return;
            }
            queued.fetch_sub(buf.len() + PIECE_OVERHEAD, Ordering::AcqRel);
            drained.notify_waiters();
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

    #[test]
    fn parses_and_prints() {
        let l: LinkSpec = "rtt=40,up=200,down=50".parse().unwrap();
        assert_eq!(
            l,
            LinkSpec {
                rtt_ms: 40,
                up_mbit: Some(200.0),
                down_mbit: Some(50.0)
            }
        );
        assert_eq!(l.to_string(), "rtt=40,up=200,down=50");
        let only_rtt: LinkSpec = "rtt=100".parse().unwrap();
        assert_eq!(only_rtt.up_mbit, None);
        for bad in [
            "",
            "rtt",
            "rtt=-1",
            "rtt=1.5",
            "up=0",
            "up=abc",
            "down=inf",
            "rtt=1,rtt=2",
            "speed=3",
            "rtt=20000",
            "up=1e-300",
            "down=0.0000001",
        ] {
            assert!(bad.parse::<LinkSpec>().is_err(), "{bad:?} should not parse");
        }
    }

    /// The slowest accepted link, with every connection's queue full, schedules without
    /// overflowing a duration or an instant (a panic there would kill every connection).
    #[test]
    fn the_slowest_link_schedules_without_overflow() {
        let slowest = LinkSpec {
            rtt_ms: MAX_RTT_MS,
            up_mbit: Some(MIN_MBIT),
            down_mbit: Some(MIN_MBIT),
        };
        assert_eq!(slowest.validate(), Ok(()));
        let link = Link::new(Some(slowest));
        for _ in 0..10_000 {
            let _ = link.schedule(Direction::Up, MAX_QUEUE);
        }
    }

    #[test]
    fn json_takes_the_string_or_the_fields() {
        let a: LinkSpec = serde_json::from_str(r#""rtt=10,up=5""#).unwrap();
        let b: LinkSpec = serde_json::from_str(r#"{"rtt_ms":10,"up_mbit":5}"#).unwrap();
        assert_eq!(a, b);
        assert!(serde_json::from_str::<LinkSpec>(r#"{"rtt_ms":10,"up_mbit":-5}"#).is_err());
        assert_eq!(
            serde_json::to_value(a).unwrap(),
            serde_json::json!({"rtt_ms":10,"up_mbit":5.0,"down_mbit":null})
        );
    }

    /// A peer that sends one byte per segment must not make the queue hold a read buffer per
    /// byte: what a connection may hold is counted in memory, not only in payload bytes.
    #[tokio::test]
    async fn one_byte_pieces_are_bounded_by_the_queue_in_memory() {
        // 1 kbit/s: nothing leaves the queue during the test; the queue is its floor.
        let spec: LinkSpec = "rtt=10000,up=0.001".parse().unwrap();
        let limit = spec.queue_limit(Direction::Up);
        assert_eq!(limit, MIN_QUEUE);
        // A one-byte pipe: every read of the pump gets one byte.
        let (mut client, far) = tokio::io::duplex(1);
        let pumps = tokio::spawn(pump(
            far,
            tokio::io::sink(),
            Link::new(Some(spec)),
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
        let l: LinkSpec = "rtt=100,up=100".parse().unwrap();
        // 100 Mbit/s × 100 ms = 1.25 MB; four of them.
        assert_eq!(l.queue_limit(Direction::Up), 5_000_000);
        assert_eq!(l.queue_limit(Direction::Down), MAX_QUEUE);
        let slow: LinkSpec = "rtt=1,up=1".parse().unwrap();
        assert_eq!(slow.queue_limit(Direction::Up), MIN_QUEUE);
    }
}
