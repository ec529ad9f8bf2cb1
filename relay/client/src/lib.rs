//! A native client of the `soket.v1` protocol, over tokio-tungstenite.
//!
//! It is a page's network stack in plain Rust: one WebSocket to a relay, many sockets on it. It runs the
//! page's own engine, `soket_netstack::Stack` — the socket table, stream ids, credit and routing the
//! browser's network worker runs — so the relay's integration tests and the benchmark exercise the state
//! machine the browser does. This crate only drives it (as `quinn` drives `quinn-proto`); it also makes a
//! debugging tool (`Client::raw` sends any bytes at all).
//!
//! ```no_run
//! # async fn demo() -> Result<(), soket_client::Error> {
//! let client = soket_client::Client::connect("ws://127.0.0.1:8080/ws").await?;
//! let mut conn = client.connect_tcp("127.0.0.1", 12345).await?;
//! conn.write_all(b"hello").await?;
//! let reply = conn.read().await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - this file: [`Client`] (the session: connect, resolve, ping, raw frames) and [`Error`].
//! - `driver`: the WebSocket's two tasks around the stack, and how a call that would block waits.
//! - `socket`: the handles, [`TcpConn`], [`TcpListener`] and [`UdpSocket`], each a socket of the stack.

mod driver;
mod socket;

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use soket_netstack::Error as StackError;
use soket_netstack::Stack;
use soket_protocol::errno::EAGAIN;
use soket_protocol::{Down, GoodbyeCode, StreamId, SUBPROTOCOL};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use driver::Shared;
pub use socket::{TcpConn, TcpListener, UdpSocket};
pub use soket_protocol::Failure;

/// What can go wrong for a client call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The call failed as it would for a Python program in the page: the relay's `Failed` or `Closed`, or
    /// the stack's own answer (`EPIPE` for a write after `shutdown`, `ENETDOWN` once the relay is gone).
    #[error("{0}")]
    Errno(Failure),
    /// The session is over, so the call cannot be made (a raw frame, a close) or would wait forever (a
    /// read of a socket the relay never heard of); the message is the relay's `Goodbye`, or what broke the
    /// WebSocket. Sockets the relay knew fail with `ENETDOWN` instead, as in the page.
    #[error("session ended: {0}")]
    SessionEnded(String),
    /// The WebSocket could not be opened, or the relay did not speak `soket.v1`.
    #[error("cannot open a session: {0}")]
    Handshake(String),
    /// Something this client did not expect (the stream ended before `read_exact` had its bytes).
    #[error("unexpected: {0}")]
    Unexpected(String),
}

impl Error {
    fn from_stack(error: StackError) -> Error {
        match error {
            StackError::Errno(failure) => Error::Errno(failure),
            // Only calls that never wait are mapped this way; were one to say so, it is EAGAIN.
            StackError::WouldBlock => Error::Errno(Failure::errno(EAGAIN)),
        }
    }
}

/// The relay's `Welcome`.
#[derive(Clone, Debug)]
pub struct Welcome {
    pub hostname: String,
    pub public_host: String,
    pub window: u32,
}

/// How the session ended, once it has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Goodbye {
    pub code: GoodbyeCode,
    pub message: String,
}

/// One session with a relay. Clones share it; the WebSocket closes when the last clone and the last of
/// its sockets are gone.
#[derive(Clone)]
pub struct Client {
    session: Arc<Session>,
}

/// What the clones of a `Client` share. Only they and their sockets hold it (the driver's tasks hold the
/// `Shared` alone), so its drop is the moment nothing can send any more.
struct Session {
    shared: Arc<Shared>,
    welcome: Welcome,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.shared.close();
    }
}

impl Client {
    /// Opens a session: the WebSocket at `url` (e.g. `ws://127.0.0.1:8080/ws`) with subprotocol `soket.v1`.
    pub async fn connect(url: &str) -> Result<Client, Error> {
        Client::connect_with_origin(url, None).await
    }

    /// As [`Client::connect`], sending an `Origin` header as a browser would.
    pub async fn connect_with_origin(url: &str, origin: Option<&str>) -> Result<Client, Error> {
        use futures_util::StreamExt;

        let mut request = url
            .into_client_request()
            .map_err(|e| Error::Handshake(e.to_string()))?;
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
        if let Some(origin) = origin {
            let value =
                HeaderValue::from_str(origin).map_err(|e| Error::Handshake(e.to_string()))?;
            request.headers_mut().insert("origin", value);
        }
        // Frames are small and latency matters more than packet count: no Nagle.
        let (mut ws, response) = tokio_tungstenite::connect_async_with_config(request, None, true)
            .await
            .map_err(|e| Error::Handshake(e.to_string()))?;
        let chosen = response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok());
        if chosen != Some(SUBPROTOCOL) {
            return Err(Error::Handshake(format!(
                "the relay chose subprotocol {chosen:?}, not {SUBPROTOCOL}"
            )));
        }
        let first = ws.next().await;
        let decoded = match &first {
            Some(Ok(Message::Binary(frame))) => Down::decode(frame).ok(),
            _ => None,
        };
        let Some(Down::Welcome {
            hostname,
            public_host,
            window,
        }) = decoded
        else {
            return Err(Error::Handshake(format!("expected Welcome, got {first:?}")));
        };
        let welcome = Welcome {
            hostname,
            public_host,
            window,
        };
        let mut stack = Stack::new();
        stack
            .handle(Down::Welcome {
                hostname: welcome.hostname.clone(),
                public_host: welcome.public_host.clone(),
                window,
            })
            .map_err(|violation| Error::Handshake(violation.0))?;
        Ok(Client {
            session: Arc::new(Session {
                shared: Shared::start(ws, stack),
                welcome,
            }),
        })
    }

    fn shared(&self) -> &Shared {
        &self.session.shared
    }

    pub fn welcome(&self) -> &Welcome {
        &self.session.welcome
    }

    /// Waits until the session ends (the WebSocket is closed) and says how.
    pub async fn ended(&self) -> Option<Goodbye> {
        self.shared().ended().await
    }

    /// A fresh page stream id, which the client's own sockets will not use: for frames sent with
    /// [`Client::raw`].
    pub fn next_id(&self) -> StreamId {
        self.shared().with(|stack| stack.reserve_stream())
    }

    /// Sends any bytes as one binary frame, after every frame the client's sockets sent before: for tests
    /// of what the relay does with bad input.
    pub async fn raw(&self, frame: Bytes) -> Result<(), Error> {
        self.shared().raw(frame).await
    }

    /// Resolves `host` as the session sees it.
    pub async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, Error> {
        let request = self
            .shared()
            .with(|stack| stack.resolve(host))
            .map_err(Error::from_stack)?;
        self.shared()
            .wait(|stack| {
                stack
                    .take_resolution(request)
                    .unwrap_or(Err(StackError::WouldBlock))
            })
            .await
    }

    /// One protocol round trip: answered after the relay handled every frame sent before it.
    pub async fn ping(&self) -> Result<(), Error> {
        let request = self
            .shared()
            .with(|stack| stack.round_trip())
            .map_err(Error::from_stack)?;
        self.shared()
            .wait(|stack| {
                stack
                    .take_round_trip(request)
                    .unwrap_or(Err(StackError::WouldBlock))
            })
            .await
    }
}
