//! The HTTP side of the relay: static files, the `/ws` upgrade, `/healthz`, `/metrics`, and shutdown.
//!
//! Every response carries the cross-origin isolation headers the page needs for SharedArrayBuffer. The
//! WebSocket upgrade is where a session is admitted: the Origin must be the page's own (or one the operator
//! allowed), the subprotocol must be `soket.v1`, and a session permit must be free.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST, ORIGIN};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use futures_util::StreamExt;
use soket_protocol::{MAX_FRAME, SUBPROTOCOL};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::lab::Lab;
use crate::metrics::Metrics;
use crate::net::{Network, SystemNetwork};
use crate::session;
use crate::shared::Shared;
use crate::Config;

/// A relay, ready to serve on a bound listener.
#[derive(Clone)]
pub struct Relay {
    shared: Arc<Shared>,
    /// One permit per session: the global session limit, taken before the upgrade is accepted.
    sessions: Arc<Semaphore>,
    /// Tracks every session task, so that shutdown can wait for them (axum does not wait for upgraded
    /// connections).
    tracker: TaskTracker,
    /// Cancelled at shutdown: every session says goodbye and closes its sockets.
    shutdown: CancellationToken,
    next_session: Arc<AtomicU64>,
}

impl Relay {
    /// A relay on the host's real network.
    pub fn new(config: Config) -> Relay {
        Relay::with_network(config, Arc::new(SystemNetwork))
    }

    /// A relay whose sessions reach the outside world through `network`.
    pub fn with_network(config: Config, network: Arc<dyn Network>) -> Relay {
        let sessions = Arc::new(Semaphore::new(config.max_sessions));
        let shared = Arc::new(Shared::new(config, network));
        Relay {
            shared,
            sessions,
            tracker: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            next_session: Arc::new(AtomicU64::new(1)),
        }
    }

    /// The lab servers (started by [`Relay::serve`]).
    pub fn lab(&self) -> &Lab {
        &self.shared.lab
    }

    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The routes, with the isolation headers on every response.
    pub fn router(&self) -> Router {
        let header = |name: &'static str, value: &'static str| {
            SetResponseHeaderLayer::overriding(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            )
        };
        Router::new()
            .route("/ws", get(upgrade))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/metrics", get(metrics))
            // `x.br` or `x.gz` beside `x` (the build makes both for the wasm) goes to browsers that accept it.
            .fallback_service(
                ServeDir::new(&self.shared.config.www)
                    .precompressed_br()
                    .precompressed_gzip(),
            )
            .layer(header("cross-origin-opener-policy", "same-origin"))
            .layer(header("cross-origin-embedder-policy", "require-corp"))
            .layer(header("cross-origin-resource-policy", "same-origin"))
            .with_state(self.clone())
    }

    /// Serves on `listener` until `shutdown` resolves, then tells every session and waits (at most the
    /// configured grace) for them to close.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let cancel = self.shutdown.clone();
        let tracker = self.tracker.clone();
        let grace = self.shared.config.shutdown_grace;
        self.shared.lab.start(cancel.clone()).await?;
        let app = self.router();
        // Frames are small and latency matters more than packet count: no Nagle on the WebSocket.
        let listener = listener.tap_io(|socket| {
            if let Err(e) = socket.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY not set");
            }
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                tracing::info!("shutting down: closing every session");
                cancel.cancel();
            })
            .await?;
        tracker.close();
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!("sessions still open after {grace:?}; stopping anyway");
        }
        Ok(())
    }
}

async fn metrics(State(relay): State<Relay>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        relay.shared.metrics.render(),
    )
}

async fn upgrade(State(relay): State<Relay>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    let metrics = &relay.shared.metrics;
    if let Err(why) = check_origin(&headers, &relay.shared.config.allow_origins) {
        metrics.sessions_rejected.fetch_add(1, Relaxed);
        return (StatusCode::FORBIDDEN, why).into_response();
    }
    let ws = ws.protocols([SUBPROTOCOL]);
    if ws.selected_protocol().is_none() {
        metrics.sessions_rejected.fetch_add(1, Relaxed);
        let why = format!("the WebSocket must ask for the subprotocol {SUBPROTOCOL}\n");
        return (StatusCode::BAD_REQUEST, why).into_response();
    }
    let Ok(permit) = relay.sessions.clone().try_acquire_owned() else {
        metrics.sessions_rejected.fetch_add(1, Relaxed);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the relay is full: too many sessions\n",
        )
            .into_response();
    };
    let id = relay.next_session.fetch_add(1, Relaxed);
    // The token counts this session as a tracked task from now until it ends.
    let token = relay.tracker.token();
    ws.max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .read_buffer_size(16 * 1024)
        .write_buffer_size(16 * 1024)
        .on_upgrade(move |socket| async move {
            let _permit = permit;
            let _token = token;
            let shared = relay.shared.clone();
            shared.metrics.sessions_active.fetch_add(1, Relaxed);
            shared.metrics.sessions_total.fetch_add(1, Relaxed);
            tracing::info!(session = id, "session starts");
            let (sink, frames) = socket.split();
            session::run(sink, frames, shared.clone(), id, relay.shutdown.clone()).await;
            shared.metrics.sessions_active.fetch_sub(1, Relaxed);
        })
}

/// A browser always sends Origin on a WebSocket upgrade: it must be the page's own origin (same host as the
/// request) or one the operator allowed. A request without Origin is not from a browser page, so no other
/// site's page can be riding on it; it is let in (the native client and benchmarks send none).
fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), String> {
    let Some(origin) = headers.get(ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let own = !host.is_empty()
        && (origin == format!("http://{host}") || origin == format!("https://{host}"));
    if own || allowed.iter().any(|a| a.trim_end_matches('/') == origin) {
        Ok(())
    } else {
        tracing::info!(origin, "WebSocket from a foreign origin refused");
        Err(format!(
            "origin {origin:?} may not open a session here (see --allow-origin)\n"
        ))
    }
}
