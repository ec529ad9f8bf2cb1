//! The HTTP side of the relay: static files, the `/ws` upgrade, `/healthz`, `/metrics`, and shutdown.
//!
//! Every response carries the cross-origin isolation headers the page needs for SharedArrayBuffer, and
//! every request must name the relay in its `Host` ([`admission`]). The WebSocket upgrade is where a session
//! is admitted: the Origin must be the page's own (or one the operator allowed), the token the operator's
//! if one is set, the subprotocol `soket.v1`, and a session permit must be free, the relay's and the
//! client's. Connections are accepted, timed and capped in [`accept`](crate::accept).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Extension, RawQuery, Request, State};
use axum::http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::StreamExt;
use soket_protocol::{MAX_FRAME, SUBPROTOCOL};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tracing::Instrument;

use crate::accept::{self, Slot};
use crate::admission;
use crate::clients::{client_ip, Kind};
use crate::lab::Lab;
use crate::metrics::Metrics;
use crate::net::{Network, SystemNetwork};
use crate::policy::Policy;
use crate::session;
use crate::shared::Shared;
use crate::Config;

/// A relay, ready to serve on a bound listener.
#[derive(Clone)]
pub struct Relay {
    shared: Arc<Shared>,
    /// One permit per session: the global session limit, taken before the upgrade is accepted.
    sessions: Arc<Semaphore>,
    /// One permit per HTTP connection, taken as it is accepted.
    connections: Arc<Semaphore>,
    /// Tracks every connection and session task, so that shutdown can wait for them.
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
        let connections = Arc::new(Semaphore::new(config.max_connections));
        let shared = Arc::new(Shared::new(config, network));
        Relay {
            shared,
            sessions,
            connections,
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

    /// The egress policy the sessions are held to.
    pub fn policy(&self) -> &Policy {
        self.shared.egress.policy()
    }

    /// The routes, with the isolation headers on every response and the `Host` check before any.
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
            .route("/metrics", get(local_metrics))
            // `x.br` or `x.gz` beside `x` (the build makes both for the wasm) goes to browsers that accept it.
            .fallback_service(
                ServeDir::new(&self.shared.config.www)
                    .precompressed_br()
                    .precompressed_gzip(),
            )
            .layer(middleware::from_fn_with_state(self.clone(), known_host))
            .layer(header("cross-origin-opener-policy", "same-origin"))
            .layer(header("cross-origin-embedder-policy", "require-corp"))
            .layer(header("cross-origin-resource-policy", "same-origin"))
            .with_state(self.clone())
    }

    /// The routes of `--metrics-listen`: `/metrics` for whoever reaches it, and `/healthz`.
    fn metrics_router(&self) -> Router {
        Router::new()
            .route("/metrics", get(metrics))
            .route("/healthz", get(|| async { "ok\n" }))
            .with_state(self.clone())
    }

    /// Serves on `listener` (and `--metrics-listen`) until `shutdown` resolves, then tells every session
    /// and waits (at most the configured grace) for them and the connections to close.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let cancel = self.shutdown.clone();
        let tracker = self.tracker.clone();
        let grace = self.shared.config.shutdown_grace;
        let metrics_listener = match self.shared.config.metrics_listen {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot listen for metrics on {addr}: {e}"),
                )
            })?),
            None => None,
        };
        self.shared.lab.start(cancel.clone()).await?;
        if let Some(metrics_listener) = metrics_listener {
            if let Ok(addr) = metrics_listener.local_addr() {
                tracing::info!(%addr, "metrics served");
            }
            // Its own caps: a scraper is never turned away because learners hold every connection.
            tracker.spawn(accept::serve(
                metrics_listener,
                self.metrics_router(),
                self.shared.clone(),
                Arc::new(Semaphore::new(64)),
                cancel.clone(),
                tracker.clone(),
            ));
        }
        let serving = accept::serve(
            listener,
            self.router(),
            self.shared.clone(),
            self.connections.clone(),
            cancel.clone(),
            tracker.clone(),
        );
        tokio::select! {
            () = serving => {}
            () = shutdown => {
                tracing::info!("shutting down: closing every session");
                cancel.cancel();
            }
        }
        tracker.close();
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!("sessions still open after {grace:?}; stopping anyway");
        }
        Ok(())
    }
}

/// Refuses a request whose `Host` does not name the relay (DNS rebinding), before it reaches any route.
async fn known_host(State(relay): State<Relay>, request: Request, next: Next) -> Response {
    match admission::check_host(request.headers(), &relay.shared.config) {
        Ok(()) => next.run(request).await,
        Err(why) => (StatusCode::FORBIDDEN, why).into_response(),
    }
}

async fn metrics(State(relay): State<Relay>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        relay.shared.metrics.render(),
    )
}

/// `/metrics` on the main listener: for clients on the relay host only, and not at all when the operator
/// gave metrics their own listener. Anyone else sees no such page.
async fn local_metrics(
    State(relay): State<Relay>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let config = &relay.shared.config;
    let client = client_ip(peer, &headers, &config.trusted_proxies);
    if config.metrics_listen.is_some() || !client.is_loopback() {
        return StatusCode::NOT_FOUND.into_response();
    }
    metrics(State(relay)).await.into_response()
}

async fn upgrade(
    State(relay): State<Relay>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(slot): Extension<Arc<Slot>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let config = &relay.shared.config;
    let metrics = &relay.shared.metrics;
    let client = client_ip(peer, &headers, &config.trusted_proxies);
    let refuse = |status: StatusCode, why: String| {
        metrics.sessions_rejected.fetch_add(1, Relaxed);
        tracing::info!(%client, reason = why.trim_end(), "session refused");
        (status, why).into_response()
    };
    if let Err(why) = admission::check_origin(&headers, config) {
        return refuse(StatusCode::FORBIDDEN, why);
    }
    if let Err(why) = admission::check_token(query.as_deref(), config) {
        return refuse(StatusCode::UNAUTHORIZED, why);
    }
    let ws = ws.protocols([SUBPROTOCOL]);
    if ws.selected_protocol().is_none() {
        let why = format!("the WebSocket must ask for the subprotocol {SUBPROTOCOL}\n");
        return refuse(StatusCode::BAD_REQUEST, why);
    }
    let Some(held) = relay
        .shared
        .clients
        .take(client, Kind::Session, config.max_sessions_per_ip)
    else {
        let why = format!(
            "too many sessions from your address: at most {} at once (see --max-sessions-per-ip)\n",
            config.max_sessions_per_ip
        );
        return refuse(StatusCode::TOO_MANY_REQUESTS, why);
    };
    let Ok(permit) = relay.sessions.clone().try_acquire_owned() else {
        let why = "the relay is full: too many sessions\n".to_string();
        return refuse(StatusCode::SERVICE_UNAVAILABLE, why);
    };
    let id = relay.next_session.fetch_add(1, Relaxed);
    // The token counts this session as a tracked task from now until it ends.
    let token = relay.tracker.token();
    let span = tracing::info_span!("session", session = id, %client);
    ws.max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .read_buffer_size(16 * 1024)
        .write_buffer_size(16 * 1024)
        .on_upgrade(move |socket| {
            async move {
                // The session holds its connection's place under the caps, and its client's session.
                let _held = (permit, token, held, slot);
                let shared = relay.shared.clone();
                shared.metrics.sessions_active.fetch_add(1, Relaxed);
                shared.metrics.sessions_total.fetch_add(1, Relaxed);
                tracing::info!("session starts");
                let (sink, frames) = socket.split();
                session::run(sink, frames, shared.clone(), id, relay.shutdown.clone()).await;
                shared.metrics.sessions_active.fetch_sub(1, Relaxed);
            }
            .instrument(span)
        })
}
