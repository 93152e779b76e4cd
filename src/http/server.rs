//! The HTTP/1.1 server: accepts connections and serves the router on each.
//!
//! Guarantees (limits from `config::HttpConfig`):
//! - at most `max_connections` connections are served at once, WebSockets included.
//!   Beyond that, new connections are not accepted: they wait in the kernel's listen
//!   backlog until a place frees up. Requests already in progress are never dropped
//!   to make room, and no file descriptor is spent on a connection that is waiting;
//! - every phase of a connection in which the client owes the server something is
//!   bounded: the request head (`header_timeout`, from the connection's start, or
//!   from the first byte of a later request), the request body (`body_timeout`, see
//!   `http::deadline`), the wait between requests (`keep_alive_timeout`), an answer the
//!   client does not read (no byte taken for `keep_alive_timeout`), and the WebSocket
//!   upgrade after the 101 answer (`ws_handshake_timeout`; then the graphql-ws
//!   `connection_init` timeout applies). A connection that overruns is closed.
//!   So a client that sends nothing, half a head or half a body holds its place only
//!   that long, and a flood of them cannot keep others from being served for longer;
//! - on shutdown, no new connection is accepted, idle ones are closed, and requests in
//!   progress are answered before `serve` returns.
//!
//! Assumes one process serves one listener; the limits are per process.

use crate::config::HttpConfig;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

/// Serves `router` on `listener` until `shutdown` resolves, then waits for the
/// requests in progress.
pub async fn serve(
    router: Router,
    listener: TcpListener,
    limits: HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = Arc::new(limits);
    let places = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a receiver; all of them gone means all are done.
    let (done_tx, done_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    let mut failing = false;
    loop {
        // A place first, then accept: while none is free, new connections wait in the
        // backlog instead of taking a file descriptor.
        let permit = tokio::select! {
            p = places.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    failing = false;
                    a
                }
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors, most likely: the connections being served
                    // will free some. Say so once per episode, not on every retry.
                    if !failing {
                        tracing::warn!(error = %e, "cannot accept connections; retrying");
                        failing = true;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        tokio::spawn(connection(tcp, remote, permit, router.clone(), Arc::clone(&limits), stop_rx.clone(), done_rx.clone()));
    }
    drop(listener);
    drop(done_rx);
    let _ = stop_tx.send(true);
    done_tx.closed().await;
    Ok(())
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}

/// Where a connection is, as far as the bounds care.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Waiting for (the rest of) a request head.
    Head { since: Instant },
    /// Between requests: nothing received since the last answer.
    Idle { since: Instant },
    /// A request is being handled; the handler's own bounds apply.
    Busy,
    /// A WebSocket upgrade was answered; hyper has yet to hand the connection over.
    Upgrading { since: Instant },
}

struct Track {
    phase: Phase,
    in_flight: usize,
    /// Since when the client has taken none of the bytes the server is writing.
    write_stalled: Option<Instant>,
}

/// Shared by a connection's socket (what arrives, what is written), its requests
/// (when each starts and ends) and its task, which enforces the bounds.
struct Activity {
    track: Mutex<Track>,
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            track: Mutex::new(Track { phase: Phase::Head { since: Instant::now() }, in_flight: 0, write_stalled: None }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Track> {
        self.track.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut Track)) {
        f(&mut self.lock());
        self.changed.notify_one();
    }

    fn received(&self) {
        let mut t = self.lock();
        if let Phase::Idle { .. } = t.phase {
            t.phase = Phase::Head { since: Instant::now() };
            drop(t);
            self.changed.notify_one();
        }
    }

    fn wrote(&self, pending: bool) {
        let mut t = self.lock();
        if pending {
            if t.write_stalled.is_none() {
                t.write_stalled = Some(Instant::now());
                drop(t);
                self.changed.notify_one();
            }
            return;
        }
        t.write_stalled = None;
        // hyper has taken the whole answer before it is all written out: a connection
        // still sending it is not idle yet.
        if let Phase::Idle { since } = &mut t.phase {
            *since = Instant::now();
        }
    }

    /// When the connection must be closed unless something happens first, and why.
    fn deadline(&self, limits: &HttpConfig) -> Option<(Instant, &'static str)> {
        let t = self.lock();
        let phase = match t.phase {
            Phase::Head { since } => Some((since + limits.header_timeout, "request head not received in time")),
            Phase::Idle { since } => Some((since + limits.keep_alive_timeout, "idle keep-alive connection")),
            Phase::Upgrading { since } => Some((since + limits.ws_handshake_timeout, "WebSocket upgrade not completed in time")),
            Phase::Busy => None,
        };
        let stalled = t.write_stalled.map(|since| (since + limits.keep_alive_timeout, "client does not read its answer"));
        match (phase, stalled) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        }
    }
}

/// Marks a request in progress until dropped: when its answer has been written out,
/// or when the request was abandoned.
struct InFlight {
    activity: Arc<Activity>,
    upgrade: bool,
}

impl InFlight {
    fn start(activity: Arc<Activity>) -> Self {
        activity.update(|t| {
            t.in_flight += 1;
            t.phase = Phase::Busy;
        });
        Self { activity, upgrade: false }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let upgrade = self.upgrade;
        self.activity.update(|t| {
            t.in_flight = t.in_flight.saturating_sub(1);
            if t.in_flight == 0 {
                let since = Instant::now();
                t.phase = if upgrade { Phase::Upgrading { since } } else { Phase::Idle { since } };
            }
        });
    }
}

/// The socket, noting what arrives and whether the client takes what is written. It
/// also holds the connection's place, so a WebSocket (which hyper hands over with the
/// socket) keeps it for as long as it is open.
struct Socket {
    tcp: TcpStream,
    activity: Arc<Activity>,
    _place: OwnedSemaphorePermit,
}

impl AsyncRead for Socket {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.received();
        }
        polled
    }
}

impl AsyncWrite for Socket {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write(cx, data);
        self.activity.wrote(polled.is_pending());
        polled
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        self.activity.wrote(polled.is_pending());
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// An answer's body, which keeps its request in progress until hyper has taken all of
/// it.
struct Tracked {
    inner: Body,
    _request: InFlight,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The router as one connection's hyper service: adds the peer address (axum's
/// `ConnectInfo`) and tells the connection when each request starts and ends.
#[derive(Clone)]
struct Service {
    router: TowerToHyperService<Router>,
    remote: SocketAddr,
    activity: Arc<Activity>,
}

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response<Tracked>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(ConnectInfo(self.remote));
        let mut request = InFlight::start(Arc::clone(&self.activity));
        let answer = self.router.call(req);
        Box::pin(async move {
            let res = answer.await?;
            request.upgrade = res.status() == StatusCode::SWITCHING_PROTOCOLS;
            Ok(res.map(|inner| Tracked { inner, _request: request }))
        })
    }
}

async fn connection(
    tcp: TcpStream,
    remote: SocketAddr,
    place: OwnedSemaphorePermit,
    router: Router,
    limits: Arc<HttpConfig>,
    mut stop: watch::Receiver<bool>,
    _done: watch::Receiver<()>,
) {
    let activity = Arc::new(Activity::new());
    let socket = Socket { tcp, activity: Arc::clone(&activity), _place: place };
    let service = Service { router: TowerToHyperService::new(router), remote, activity: Arc::clone(&activity) };
    // hyper's own header timeout would run from the end of the previous answer, which
    // would make it the keep-alive timeout too; the bounds are enforced below instead.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.header_read_timeout(None);
    let conn = builder.serve_connection(TokioIo::new(socket), service).with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let mut stopping = false;
    loop {
        let changed = activity.changed.notified();
        let deadline = activity.deadline(&limits);
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(error = %e, %remote, "connection ended with an error");
                }
                return;
            }
            _ = stop.wait_for(|stop| *stop), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(deadline.map_or_else(Instant::now, |(at, _)| at)), if deadline.is_some() => {
                if let Some((at, why)) = activity.deadline(&limits)
                    && at <= Instant::now()
                {
                    tracing::debug!(%remote, why, "closing a connection");
                    return;
                }
            }
            () = changed => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> HttpConfig {
        HttpConfig {
            header_timeout: Duration::from_secs(1),
            body_timeout: Duration::from_secs(2),
            keep_alive_timeout: Duration::from_secs(3),
            ws_handshake_timeout: Duration::from_secs(4),
            max_connections: 1,
        }
    }

    /// The bound of the phase the connection is in: how long from when it began, and why.
    fn bound(a: &Activity) -> Option<(Duration, &'static str)> {
        let since = match a.lock().phase {
            Phase::Head { since } | Phase::Idle { since } | Phase::Upgrading { since } => since,
            Phase::Busy => return None,
        };
        a.deadline(&limits()).map(|(at, why)| (at - since, why))
    }

    #[test]
    fn each_phase_has_its_bound() {
        let a = Arc::new(Activity::new());
        assert_eq!(bound(&a), Some((Duration::from_secs(1), "request head not received in time")));
        let request = InFlight::start(Arc::clone(&a));
        assert_eq!(a.deadline(&limits()), None, "a request in progress is bounded by its handler");
        drop(request);
        assert_eq!(bound(&a), Some((Duration::from_secs(3), "idle keep-alive connection")));
        a.received();
        assert_eq!(bound(&a), Some((Duration::from_secs(1), "request head not received in time")), "the next head");
        let mut upgrade = InFlight::start(Arc::clone(&a));
        upgrade.upgrade = true;
        drop(upgrade);
        assert_eq!(bound(&a), Some((Duration::from_secs(4), "WebSocket upgrade not completed in time")));
    }

    #[test]
    fn an_answer_the_client_does_not_take_is_bounded() {
        let a = Arc::new(Activity::new());
        let request = InFlight::start(Arc::clone(&a));
        a.wrote(true);
        let stalled = a.lock().write_stalled;
        a.wrote(true);
        assert_eq!(a.lock().write_stalled, stalled, "counted from the first write that stalled");
        assert_eq!(a.deadline(&limits()).map(|(_, why)| why), Some("client does not read its answer"));
        a.wrote(false);
        assert_eq!(a.deadline(&limits()), None, "progress clears the stall");
        drop(request);
        let Phase::Idle { since: finished } = a.lock().phase else { panic!("idle after the answer") };
        a.wrote(false);
        let Phase::Idle { since: still_writing } = a.lock().phase else { panic!("still idle") };
        assert!(still_writing >= finished, "writing out the answer keeps the connection from idling out");
    }
}
