//! The relay's HTTP connections: accepted within the relay's caps, served by hyper with timeouts, and
//! closed when idle or at shutdown.
//!
//! axum's own `serve` has no timer, so a client that sends nothing, half a request line, or nothing more
//! after its last request would hold its connection (and a file descriptor) for ever; this loop is the
//! same hyper server with the limits a public listener needs:
//! - a global cap (`--max-connections`) and a per-client cap (`--max-connections-per-ip`), checked as a
//!   connection is accepted; one over either is closed at once, before a byte is read;
//! - the header timeout (`--header-timeout`), from the connection, or from the first byte of a later
//!   request, until the end of its headers (hyper's own);
//! - the keep-alive timeout (`--keepalive-timeout`): a connection that moves no byte for that long is
//!   closed between requests.
//!
//! A connection that becomes a WebSocket hands its [`Slot`] (its place under both caps) to the session,
//! so a session's connection counts until the session ends.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

use crate::clients::{self, Held, Kind};
use crate::metrics::Metrics;
use crate::shared::Shared;

/// How long a connection told to close at shutdown or when idle may take to finish what it is writing.
const CLOSING_GRACE: Duration = Duration::from_secs(5);

/// One connection's place under the relay's caps, given back when the last holder drops it: the
/// connection's task, or the session it became.
pub struct Slot {
    _global: OwnedSemaphorePermit,
    _client: Option<Held>,
    metrics: Arc<Metrics>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.metrics.http_connections_active.fetch_sub(1, Relaxed);
    }
}

/// Accepts and serves connections on `listener` with `app` until `stop` is cancelled; the connections'
/// tasks are on `tracker`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shared: Arc<Shared>,
    connections: Arc<Semaphore>,
    stop: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and the like: the connection waits in the backlog while fds come free.
                    tracing::warn!(error = %e, "accept failed; retrying in 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = stop.cancelled() => return,
        };
        let Some(slot) = admit(&shared, &connections, peer) else {
            shared
                .metrics
                .http_connections_refused
                .fetch_add(1, Relaxed);
            drop(socket);
            continue;
        };
        // Frames are small and latency matters more than packet count: no Nagle on the WebSocket.
        if let Err(e) = socket.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let app = app.clone();
        let shared = shared.clone();
        let stop = stop.clone();
        tracker.spawn(connection(socket, peer, app, shared, Arc::new(slot), stop));
    }
}

/// The connection's slot, or None if it is over the global cap or its client's.
fn admit(shared: &Arc<Shared>, connections: &Arc<Semaphore>, peer: SocketAddr) -> Option<Slot> {
    let config = &shared.config;
    let Ok(global) = connections.clone().try_acquire_owned() else {
        tracing::debug!(%peer, "connection refused: the relay holds --max-connections");
        return None;
    };
    // Behind a proxy every connection comes from it: its clients are told apart per session instead.
    let client = if clients::is_trusted(peer.ip(), &config.trusted_proxies) {
        None
    } else {
        match shared
            .clients
            .take(peer.ip(), Kind::Connection, config.max_connections_per_ip)
        {
            Some(held) => Some(held),
            None => {
                tracing::debug!(%peer, "connection refused: the client holds --max-connections-per-ip");
                return None;
            }
        }
    };
    shared.metrics.http_connections_active.fetch_add(1, Relaxed);
    Some(Slot {
        _global: global,
        _client: client,
        metrics: shared.metrics.clone(),
    })
}

async fn connection(
    socket: TcpStream,
    peer: SocketAddr,
    app: Router,
    shared: Arc<Shared>,
    slot: Arc<Slot>,
    stop: CancellationToken,
) {
    let config = &shared.config;
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: socket,
        activity: activity.clone(),
    });
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(slot.clone());
        let mut app = app.clone();
        async move {
            Ok::<Response<Body>, Infallible>(app.call(request).await.unwrap_or_else(|e| match e {}))
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .serve_connection(io, service)
        .with_upgrades();
    tokio::pin!(conn);
    let mut closing: Option<Instant> = None;
    loop {
        let idle_at = activity.last() + config.keepalive_timeout;
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "HTTP connection ended");
                }
                return;
            }
            () = tokio::time::sleep_until(idle_at), if closing.is_none() => {
                if activity.last() + config.keepalive_timeout <= Instant::now() {
                    tracing::debug!(%peer, "idle HTTP connection closed");
                    conn.as_mut().graceful_shutdown();
                    closing = Some(Instant::now() + CLOSING_GRACE);
                }
            }
            () = stop.cancelled(), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now() + CLOSING_GRACE);
            }
            () = tokio::time::sleep_until(closing.unwrap_or_else(Instant::now)), if closing.is_some() => {
                tracing::debug!(%peer, "HTTP connection dropped: it did not finish closing");
                return;
            }
        }
    }
}

/// When a connection last moved a byte, in milliseconds since it was made.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Relaxed))
    }
}

/// A socket that notes when it last moved a byte.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        poll
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
