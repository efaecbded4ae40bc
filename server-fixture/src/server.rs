//! Sockets: binding `host:port` (with `localhost` bound to 127.0.0.1 but kept in the URL), the
//! accept loop (HTTP/1.1 and HTTP/2, over TLS with `--tls`; header read timeout, the
//! connection-drop fault, the connection cap with its control reserve, the emulated link), and
//! the bounded graceful shutdown.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::config::split_host_port;
use crate::error::Error;
use crate::faults::ConnControl;
use crate::limits::{over_cap_message, OverCap};
use crate::link::{self, Link};
use crate::sync::lock;
use crate::tls::Tls;

/// How long a request's headers may take to arrive.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for open requests before closing their connections.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Connections admitted beyond the cap that serve `/__fixture/*` only (one request each), so
/// that the control endpoints answer while slow clients hold every regular connection.
pub const CONTROL_RESERVE: usize = 16;
/// Header read timeout of a reserve connection (a squatter frees its slot quickly).
pub const RESERVE_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Whole life of a reserve connection before it is shut down gracefully (a request under way
/// finishes). HTTP/2, which a client may pick by its preface or by ALPN, has neither the HTTP/1
/// header timeout nor the one-request limit: without this an idle one would keep its slot.
pub const RESERVE_LIFETIME: Duration = Duration::from_secs(5);
/// HTTP/2 receive windows, per stream and per connection. The protocol's default (64 KiB for
/// both) lets a client send only 64 KiB per round trip on the whole connection, whatever the
/// number of streams: 0.5 MiB/s at 100 ms. 16 MiB per stream and 64 MiB per connection cover
/// the bandwidth-delay product of a 1 Gbit/s link at over 100 ms; the memory is only used while
/// a client actually has that much in flight.
pub const H2_STREAM_WINDOW: u32 = 16 * 1024 * 1024;
/// See [`H2_STREAM_WINDOW`].
pub const H2_CONNECTION_WINDOW: u32 = 64 * 1024 * 1024;
/// HTTP/2 streams open at once on one connection; a client opening more gets them refused
/// (`RST_STREAM(REFUSED_STREAM)`, which clients retry; browsers queue them instead). hyper's
/// default, 200, times the 512 connections of the cap is over 100,000 requests in flight, each
/// holding a temporary file: far more than a process may open. 32 is above what resumable-wasm's
/// adaptive window settles on for a 1 Gbit/s, 200 ms link in 1 MiB chunks (about 26); what its
/// start-up sends past that (up to its ceiling of 64) waits in the browser's queue.
pub const H2_MAX_STREAMS: u32 = 32;
/// How long a closing connection behind an emulated link may take to deliver its last bytes.
pub const LINK_LINGER: Duration = Duration::from_secs(15);

/// How one listener serves its connections besides the router.
#[derive(Debug, Clone)]
pub struct Listening {
    /// Regular connections open at once (plus [`CONTROL_RESERVE`]).
    pub max_connections: usize,
    /// Serve HTTPS with this certificate (ALPN `h2`, `http/1.1`); `None` serves plain HTTP/1.1.
    pub tls: Option<Tls>,
    /// Put every connection behind this emulated link (the API listener).
    pub link: Option<Arc<Link>>,
    /// Close a connection that has had no request in flight for this long.
    pub idle_timeout: Duration,
    /// The longest a request may take (the body timeout): how long an idle or reserve close
    /// waits for a request that slipped in.
    pub request_limit: Duration,
}

/// What the HTTP server reads and writes: a socket, a link's end, or TLS over either.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Counts an open connection until dropped.
struct OpenConnection(Arc<AtomicUsize>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Beyond the cap and the reserve: a fixed 503 written at once, then the socket is closed
/// without waiting for the request (what already arrived is read first, so that the close does
/// not reset the connection before the client reads the answer).
fn refuse_connection(stream: &tokio::net::TcpStream, cap: usize) {
    let mut scratch = [0u8; 16 * 1024];
    let _ = stream.try_read(&mut scratch);
    let body = over_cap_message(cap);
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(head.as_bytes());
}

/// How often a connection checks whether it has been idle for too long.
const IDLE_CHECK: Duration = Duration::from_millis(500);

/// The requests in flight on one connection, and since when it has had none. HTTP/1 closes an
/// idle connection by its header timeout; HTTP/2 has no such limit, so an idle HTTP/2
/// connection is closed from here.
#[derive(Debug)]
struct Activity {
    in_flight: AtomicUsize,
    idle_since: std::sync::Mutex<tokio::time::Instant>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            in_flight: AtomicUsize::new(0),
            idle_since: std::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }
}

impl Activity {
    /// How long the connection has had no request in flight (zero while it has one).
    fn idle_for(&self) -> Duration {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Duration::ZERO;
        }
        lock(&self.idle_since).elapsed()
    }
}

/// One request in flight on a connection, until dropped.
struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: Arc<Activity>) -> Busy {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut since = lock(&self.0.idle_since);
        *since = tokio::time::Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Sleeps until `at`, or forever when `None`.
async fn sleep_until_or_never(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Binds `host:port`; returns the listener and its URL with the host as written (`https://`
/// when `tls`).
pub async fn bind(addr: &str, tls: bool) -> Result<(TcpListener, String), Error> {
    let (host, port) = split_host_port(addr).map_err(Error::Config)?;
    let bind_host = if host.eq_ignore_ascii_case("localhost") {
        "127.0.0.1".to_owned()
    } else {
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned()
    };
    let listener = TcpListener::bind((bind_host.as_str(), port))
        .await
        .map_err(|e| Error::Io(format!("binding {addr}"), e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::Io(format!("reading the address of {addr}"), e))?;
    let scheme = if tls { "https" } else { "http" };
    Ok((listener, format!("{scheme}://{host}:{}", bound.port())))
}

/// Serves `router` on `listener` until `shutdown` turns true (or its sender is dropped), with at
/// most `opts.max_connections` regular connections open at once (plus [`CONTROL_RESERVE`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
    opts: Listening,
) {
    let max_connections = opts.max_connections;
    let mut conns = JoinSet::new();
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let n = open.load(Ordering::Relaxed);
                    if n >= max_connections.saturating_add(CONTROL_RESERVE) {
                        // Over TLS a plain-text answer would be garbage: just close.
                        if opts.tls.is_none() {
                            refuse_connection(&stream, max_connections);
                        }
                        continue;
                    }
                    open.fetch_add(1, Ordering::Relaxed);
                    let counted = OpenConnection(open.clone());
                    let over_cap = (n >= max_connections).then_some(OverCap(max_connections));
                    conns.spawn(accepted_connection(stream, router.clone(), shutdown.clone(), over_cap, counted, opts.clone()));
                }
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::info!(
            "closing {} connection(s) still open after the grace period",
            conns.len()
        );
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }
}

/// Puts a new connection behind the link (if any), then TLS (if any), then serves it.
async fn accepted_connection(
    stream: tokio::net::TcpStream,
    router: Router,
    shutdown: watch::Receiver<bool>,
    over_cap: Option<OverCap>,
    counted: OpenConnection,
    opts: Listening,
) {
    let _ = stream.set_nodelay(true);
    let (io, pumps): (Box<dyn Io>, _) = match opts.link {
        Some(l) => {
            let (end, pumps) = link::wrap(stream, l);
            (Box::new(end), Some(pumps))
        }
        None => (Box::new(stream), None),
    };
    let io: Box<dyn Io> = match &opts.tls {
        None => io,
        Some(tls) => {
            let limit = if over_cap.is_some() {
                RESERVE_HEADER_TIMEOUT
            } else {
                HEADER_READ_TIMEOUT
            };
            match tokio::time::timeout(limit, tls.acceptor.accept(io)).await {
                Ok(Ok(s)) => Box::new(s),
                Ok(Err(e)) => {
                    tracing::debug!("TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!("TLS handshake timed out");
                    return;
                }
            }
        }
    };
    let dropped = connection(
        io,
        router,
        shutdown,
        over_cap,
        counted,
        opts.idle_timeout,
        opts.request_limit,
    )
    .await;
    if let Some(p) = pumps {
        // A dropped connection closes at once (dropping the pumps); otherwise the last
        // response still crosses the link.
        if !dropped {
            p.finish(LINK_LINGER).await;
        }
    }
}

/// Serves one connection (HTTP/1.1 or HTTP/2, whichever the client speaks); true if it was
/// dropped on purpose (the drop fault).
async fn connection(
    io: Box<dyn Io>,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
    over_cap: Option<OverCap>,
    _counted: OpenConnection,
    idle_timeout: Duration,
    request_limit: Duration,
) -> bool {
    let kill = Arc::new(Notify::new());
    let control = ConnControl { kill: kill.clone() };
    let activity = Arc::new(Activity::default());
    let requests = activity.clone();
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(control.clone());
        if let Some(o) = over_cap {
            req.extensions_mut().insert(o);
        }
        let router = router.clone();
        let busy = Busy::start(requests.clone());
        async move {
            let resp = router
                .oneshot(req.map(Body::new))
                .await
                .unwrap_or_else(|e| match e {});
            drop(busy);
            Ok::<_, Infallible>(resp)
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(if over_cap.is_some() {
            RESERVE_HEADER_TIMEOUT
        } else {
            HEADER_READ_TIMEOUT
        })
        .keep_alive(over_cap.is_none());
    builder
        .http2()
        .timer(TokioTimer::new())
        .initial_stream_window_size(H2_STREAM_WINDOW)
        .initial_connection_window_size(H2_CONNECTION_WINDOW)
        .max_concurrent_streams(H2_MAX_STREAMS);
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    // Every way a connection ends on our side starts the same, with a graceful shutdown. At
    // shutdown the connection is closed if it has not finished `SHUTDOWN_GRACE` later. An idle
    // or reserve close must not cut a request that slipped in meanwhile (HTTP/2 accepts streams
    // until the client has seen the GOAWAY, a round trip later): it waits for the requests in
    // flight, at most `request_limit` (the body timeout) plus the grace.
    let mut close_at: Option<tokio::time::Instant> = None;
    let mut last_chance: Option<tokio::time::Instant> = None;
    let mut stopping = false;
    // A reserve connection starts closing at the end of its lifetime.
    let reserve_end = over_cap.map(|_| tokio::time::Instant::now() + RESERVE_LIFETIME);
    let mut idle_check = tokio::time::interval(IDLE_CHECK);
    loop {
        let closing = close_at.is_some();
        let start_closing = tokio::select! {
            _ = idle_check.tick(), if !closing => {
                let idle = activity.idle_for() >= idle_timeout;
                if idle {
                    tracing::debug!("closing a connection idle for {idle_timeout:?}");
                }
                idle
            }
            () = sleep_until_or_never(reserve_end), if !closing => {
                tracing::debug!("closing a reserve connection at the end of its lifetime");
                true
            }
            _ = shutdown.changed(), if !stopping => {
                stopping = true;
                true
            }
            () = sleep_until_or_never(close_at) => {
                let now = tokio::time::Instant::now();
                let busy = activity.in_flight.load(Ordering::Acquire) > 0;
                if stopping || !busy || last_chance.is_some_and(|t| now >= t) {
                    return false;
                }
                close_at = Some(now + IDLE_CHECK);
                false
            }
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!("connection ended: {e}");
                }
                return false;
            }
            () = kill.notified() => {
                tracing::debug!("connection dropped on purpose");
                return true;
            }
        };
        if start_closing {
            let now = tokio::time::Instant::now();
            if !closing {
                conn.as_mut().graceful_shutdown();
                last_chance = Some(now + request_limit + SHUTDOWN_GRACE);
            }
            let grace = now + SHUTDOWN_GRACE;
            close_at = Some(close_at.map_or(grace, |t| t.min(grace)));
        }
    }
}
