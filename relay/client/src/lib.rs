//! A native client of the `soket.v1` protocol, over tokio-tungstenite.
//!
//! It is what a page's network stack is, in plain Rust: one WebSocket to a relay, many sockets on it, with
//! the protocol's flow control kept on both sides. The relay's integration tests and the benchmark drive it;
//! it also makes a debugging tool (`Client::raw` sends any bytes at all).
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
//! A driver task owns the WebSocket's reading half and routes each frame to the handle its stream belongs
//! to; handles send through a shared, bounded queue to a writer task. Received bytes are credited back to
//! the relay when the program takes them from a handle, so a program that stops reading stops the relay
//! from sending — exactly the page's behaviour.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use soket_protocol::{Down, GoodbyeCode, StreamId, Transport, Up, MAX_PAYLOAD, SUBPROTOCOL};
use tokio::sync::{mpsc, Semaphore};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

/// What can go wrong for a client call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The relay answered the operation with an errno (`Failed`), or closed the stream with one.
    #[error("[Errno {errno}] {message}")]
    Errno { errno: i32, message: String },
    /// The session ended; the message is the relay's `Goodbye`, or what broke the WebSocket.
    #[error("session ended: {0}")]
    SessionEnded(String),
    /// The WebSocket could not be opened, or the relay did not speak `soket.v1`.
    #[error("cannot open a session: {0}")]
    Handshake(String),
    /// The relay sent something this client did not expect for the stream.
    #[error("unexpected frame from the relay: {0}")]
    Unexpected(String),
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

/// Frames for one stream, in order. Unbounded in count, bounded in bytes by the credit this client grants.
type Inbox = mpsc::UnboundedSender<Down>;

struct Shared {
    routes: Mutex<HashMap<StreamId, Inbox>>,
    /// Send credit per TCP stream, in bytes: taken by writes, given by the relay's `Credit`.
    credits: Mutex<HashMap<StreamId, Arc<Semaphore>>>,
    /// Inboxes of accepted streams, made when `Incoming` arrives and taken by the listener's `accept()`.
    accepted: Mutex<HashMap<StreamId, mpsc::UnboundedReceiver<Down>>>,
    next_id: AtomicU32,
    goodbye: Mutex<Option<Goodbye>>,
    /// Fired once when the session ends.
    ended: tokio::sync::watch::Sender<bool>,
}

impl Shared {
    fn end_message(&self) -> String {
        match &*self.goodbye.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(g) => format!("{:?}: {}", g.code, g.message),
            None => "the WebSocket closed".into(),
        }
    }

    fn ended(&self) -> Error {
        Error::SessionEnded(self.end_message())
    }
}

/// One session with a relay.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    /// Frames to the relay. Bounded: a program that writes faster than the WebSocket waits. Held only by
    /// `Client` and its handles, so when the last of them is dropped the WebSocket closes.
    out: mpsc::Sender<Message>,
    welcome: Welcome,
}

impl Client {
    /// Opens a session: the WebSocket at `url` (e.g. `ws://127.0.0.1:8080/ws`) with subprotocol `soket.v1`.
    pub async fn connect(url: &str) -> Result<Client, Error> {
        Client::connect_with_origin(url, None).await
    }

    /// As [`Client::connect`], sending an `Origin` header as a browser would.
    pub async fn connect_with_origin(url: &str, origin: Option<&str>) -> Result<Client, Error> {
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
        let (ws, response) = tokio_tungstenite::connect_async_with_config(request, None, true)
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
        let (mut sink, mut stream) = ws.split();
        let welcome = match stream.next().await {
            Some(Ok(Message::Binary(frame))) => match Down::decode(&frame) {
                Ok(Down::Welcome {
                    hostname,
                    public_host,
                    window,
                }) => Welcome {
                    hostname,
                    public_host,
                    window,
                },
                other => return Err(Error::Handshake(format!("expected Welcome, got {other:?}"))),
            },
            other => return Err(Error::Handshake(format!("expected Welcome, got {other:?}"))),
        };
        let (out, mut out_rx) = mpsc::channel::<Message>(64);
        let (ended, _) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            routes: Mutex::default(),
            credits: Mutex::default(),
            accepted: Mutex::default(),
            next_id: AtomicU32::new(1),
            goodbye: Mutex::new(None),
            ended,
        });
        tokio::spawn(async move {
            while let Some(message) = out_rx.recv().await {
                if sink.feed(message).await.is_err() {
                    return;
                }
                if out_rx.is_empty() && sink.flush().await.is_err() {
                    return;
                }
            }
            let _ = sink.close().await;
        });
        let driver = shared.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Binary(frame) = message else {
                    continue;
                };
                match Down::decode(&frame) {
                    Ok(down) => route(&driver, down),
                    Err(e) => {
                        tracing::warn!("undecodable frame from the relay: {e}");
                        break;
                    }
                }
            }
            // Dropping every route wakes every waiting handle with "session ended".
            driver
                .routes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
            for credit in driver
                .credits
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
            {
                credit.close();
            }
            driver.ended.send_replace(true);
        });
        Ok(Client {
            shared,
            out,
            welcome,
        })
    }

    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// Waits until the session ends and says how.
    pub async fn ended(&self) -> Option<Goodbye> {
        let mut ended = self.shared.ended.subscribe();
        let _ = ended.wait_for(|ended| *ended).await;
        self.shared
            .goodbye
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A fresh page stream id.
    pub fn next_id(&self) -> StreamId {
        StreamId(self.shared.next_id.fetch_add(1, Relaxed))
    }

    /// Sends any bytes as one binary frame: for tests of what the relay does with bad input.
    pub async fn raw(&self, frame: Bytes) -> Result<(), Error> {
        self.out
            .send(Message::Binary(frame))
            .await
            .map_err(|_| self.shared.ended())
    }

    async fn send(&self, up: Up) -> Result<(), Error> {
        self.raw(up.encode()).await
    }

    /// Registers `stream` and sends `up`; frames for the stream arrive on the receiver.
    async fn open(&self, stream: StreamId, up: Up) -> Result<mpsc::UnboundedReceiver<Down>, Error> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.shared
            .routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(stream, tx);
        self.send(up).await?;
        Ok(rx)
    }

    /// Opens a TCP connection through the relay.
    pub async fn connect_tcp(&self, host: &str, port: u16) -> Result<TcpConn, Error> {
        let stream = self.next_id();
        let result = async {
            let connect = Up::Connect {
                stream,
                host: host.into(),
                port,
            };
            let mut inbox = self.open(stream, connect).await?;
            match self.reply(&mut inbox).await? {
                Down::Connected { local, peer, .. } => Ok(self.conn(stream, inbox, local, peer)),
                other => Err(Error::Unexpected(format!("{other:?}"))),
            }
        }
        .await;
        self.settle(stream, result).await
    }

    /// Binds a TCP socket and listens on it (`port` 0: any).
    pub async fn listen(&self, host: &str, port: u16, backlog: u32) -> Result<TcpListener, Error> {
        let stream = self.next_id();
        let result = async {
            let bind = Up::Bind {
                stream,
                transport: Transport::Tcp,
                host: host.into(),
                port,
            };
            let mut inbox = self.open(stream, bind).await?;
            let local = match self.reply(&mut inbox).await? {
                Down::Bound { local, .. } => local,
                other => return Err(Error::Unexpected(format!("{other:?}"))),
            };
            self.send(Up::Listen { stream, backlog }).await?;
            match self.reply(&mut inbox).await? {
                Down::Listening { public, .. } => Ok(TcpListener {
                    client: self.clone(),
                    stream,
                    inbox,
                    local,
                    public,
                }),
                other => Err(Error::Unexpected(format!("{other:?}"))),
            }
        }
        .await;
        self.settle(stream, result).await
    }

    /// Binds a UDP socket (`port` 0: any).
    pub async fn bind_udp(&self, host: &str, port: u16) -> Result<UdpSocket, Error> {
        let stream = self.next_id();
        let result = async {
            let bind = Up::Bind {
                stream,
                transport: Transport::Udp,
                host: host.into(),
                port,
            };
            let mut inbox = self.open(stream, bind).await?;
            match self.reply(&mut inbox).await? {
                Down::Bound { local, .. } => Ok(UdpSocket {
                    client: self.clone(),
                    stream,
                    inbox,
                    local,
                }),
                other => Err(Error::Unexpected(format!("{other:?}"))),
            }
        }
        .await;
        self.settle(stream, result).await
    }

    /// A stream whose opening failed still holds its id at the relay: close it, as a page does.
    async fn settle<T>(&self, stream: StreamId, result: Result<T, Error>) -> Result<T, Error> {
        if result.is_err() {
            let _ = self.release(stream, Up::Close { stream }).await;
        }
        result
    }

    /// Resolves `host` as the session sees it.
    pub async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, Error> {
        let stream = self.next_id();
        let mut inbox = self
            .open(
                stream,
                Up::Resolve {
                    stream,
                    host: host.into(),
                },
            )
            .await?;
        let reply = self.reply(&mut inbox).await;
        self.forget(stream);
        match reply? {
            Down::Resolved { addrs, .. } => Ok(addrs),
            other => Err(Error::Unexpected(format!("{other:?}"))),
        }
    }

    /// One protocol round trip.
    pub async fn ping(&self) -> Result<(), Error> {
        let stream = self.next_id();
        let mut inbox = self.open(stream, Up::Ping { stream }).await?;
        let reply = self.reply(&mut inbox).await;
        self.forget(stream);
        match reply? {
            Down::Pong { .. } => Ok(()),
            other => Err(Error::Unexpected(format!("{other:?}"))),
        }
    }

    /// The next frame for an operation on `stream`: `Failed` becomes an error.
    async fn reply(&self, inbox: &mut mpsc::UnboundedReceiver<Down>) -> Result<Down, Error> {
        match inbox.recv().await {
            Some(Down::Failed { errno, message, .. }) => Err(Error::Errno { errno, message }),
            Some(down) => Ok(down),
            None => Err(self.shared.ended()),
        }
    }

    /// Stops routing frames for `stream` and tells the relay with `last` (`Close` or `Reset`).
    async fn release(&self, stream: StreamId, last: Up) -> Result<(), Error> {
        self.forget(stream);
        self.send(last).await
    }

    fn forget(&self, stream: StreamId) {
        self.shared
            .routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&stream);
        self.shared
            .credits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&stream);
    }

    fn conn(
        &self,
        stream: StreamId,
        inbox: mpsc::UnboundedReceiver<Down>,
        local: SocketAddr,
        peer: SocketAddr,
    ) -> TcpConn {
        let credit = Arc::new(Semaphore::new(self.welcome.window as usize));
        self.shared
            .credits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(stream, credit.clone());
        TcpConn {
            client: self.clone(),
            stream,
            inbox,
            credit,
            local,
            peer,
            pending: None,
            uncredited: 0,
            eof: false,
            closed: None,
        }
    }
}

/// Routes one frame from the relay to the handle of its stream.
fn route(shared: &Shared, down: Down) {
    let stream = match &down {
        Down::Welcome { .. } => return,
        Down::Goodbye { code, message } => {
            *shared.goodbye.lock().unwrap_or_else(|e| e.into_inner()) = Some(Goodbye {
                code: *code,
                message: message.clone(),
            });
            return;
        }
        Down::Credit { stream, amount } => {
            if let Some(credit) = shared
                .credits
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(stream)
            {
                credit.add_permits(*amount as usize);
            }
            return;
        }
        Down::Incoming { conn, .. } => {
            // The accepted stream's frames may follow at once: give it a route before anything else.
            let (tx, rx) = mpsc::unbounded_channel();
            shared
                .routes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(*conn, tx);
            shared
                .accepted
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(*conn, rx);
            down.stream_of()
        }
        other => other.stream_of(),
    };
    if let Some(inbox) = shared
        .routes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&stream)
    {
        let _ = inbox.send(down);
    }
}

trait StreamOf {
    fn stream_of(&self) -> StreamId;
}

impl StreamOf for Down {
    fn stream_of(&self) -> StreamId {
        match self {
            Down::Welcome { .. } | Down::Goodbye { .. } => StreamId::SESSION,
            Down::Connected { stream, .. }
            | Down::Bound { stream, .. }
            | Down::Listening { stream, .. }
            | Down::Incoming { stream, .. }
            | Down::Data { stream, .. }
            | Down::Credit { stream, .. }
            | Down::Shutdown { stream }
            | Down::Closed { stream, .. }
            | Down::Datagram { stream, .. }
            | Down::Resolved { stream, .. }
            | Down::Failed { stream, .. }
            | Down::Pong { stream } => *stream,
        }
    }
}

/// A connected TCP stream.
pub struct TcpConn {
    client: Client,
    pub stream: StreamId,
    inbox: mpsc::UnboundedReceiver<Down>,
    credit: Arc<Semaphore>,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    /// Bytes received but not yet handed out by `read_exact`.
    pending: Option<Bytes>,
    /// Bytes handed to the program and not yet credited back: credit goes in batches of a quarter window,
    /// which never stalls the relay (it stops only when a whole window sits here, unread or uncredited).
    uncredited: u32,
    eof: bool,
    closed: Option<Error>,
}

impl TcpConn {
    /// The next bytes from the peer; `None` at end of stream. Credits them back to the relay.
    pub async fn read(&mut self) -> Result<Option<Bytes>, Error> {
        if let Some(bytes) = self.pending.take() {
            return Ok(Some(bytes));
        }
        if self.eof {
            return Ok(None);
        }
        if let Some(err) = &self.closed {
            return Err(err.clone());
        }
        match self.inbox.recv().await {
            Some(Down::Data { payload, .. }) => {
                self.uncredited += payload.len() as u32;
                if self.uncredited >= self.client.welcome.window / 4 {
                    let amount = std::mem::take(&mut self.uncredited);
                    self.client
                        .send(Up::Credit {
                            stream: self.stream,
                            amount,
                        })
                        .await?;
                }
                Ok(Some(payload))
            }
            Some(Down::Shutdown { .. }) => {
                self.eof = true;
                Ok(None)
            }
            Some(Down::Closed { errno, message, .. }) => {
                let err = Error::Errno { errno, message };
                self.closed = Some(err.clone());
                Err(err)
            }
            Some(other) => Err(Error::Unexpected(format!("{other:?}"))),
            None => Err(self.client.shared.ended()),
        }
    }

    /// Exactly `n` bytes, or an error if the stream ends first.
    pub async fn read_exact(&mut self, n: usize) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let Some(mut bytes) = self.read().await? else {
                return Err(Error::Unexpected(format!(
                    "end of stream after {} of {n} bytes",
                    out.len()
                )));
            };
            let take = bytes.len().min(n - out.len());
            out.extend_from_slice(&bytes.split_to(take));
            if !bytes.is_empty() {
                self.pending = Some(bytes);
            }
        }
        Ok(out)
    }

    /// Everything until the peer's end of stream.
    pub async fn read_to_end(&mut self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        while let Some(bytes) = self.read().await? {
            out.extend_from_slice(&bytes);
        }
        Ok(out)
    }

    /// Sends all of `data`, waiting for credit as the relay grants it.
    pub async fn write_all(&mut self, data: &[u8]) -> Result<(), Error> {
        for chunk in data.chunks(MAX_PAYLOAD) {
            let permit = self
                .credit
                .acquire_many(chunk.len() as u32)
                .await
                .map_err(|_| self.client.shared.ended())?;
            permit.forget();
            let payload = Bytes::copy_from_slice(chunk);
            self.client
                .send(Up::Data {
                    stream: self.stream,
                    payload,
                })
                .await?;
        }
        Ok(())
    }

    /// `shutdown(SHUT_WR)`.
    pub async fn shutdown(&mut self) -> Result<(), Error> {
        self.client
            .send(Up::Shutdown {
                stream: self.stream,
            })
            .await
    }

    /// Closes the stream (FIN after what was written).
    pub async fn close(self) -> Result<(), Error> {
        self.client
            .release(
                self.stream,
                Up::Close {
                    stream: self.stream,
                },
            )
            .await
    }

    /// Closes the stream with a reset.
    pub async fn reset(self) -> Result<(), Error> {
        self.client
            .release(
                self.stream,
                Up::Reset {
                    stream: self.stream,
                },
            )
            .await
    }
}

/// A listening TCP socket.
pub struct TcpListener {
    client: Client,
    pub stream: StreamId,
    inbox: mpsc::UnboundedReceiver<Down>,
    /// The address the session sees (`127.0.0.1:port`).
    pub local: SocketAddr,
    /// The `host:port` from which the outside world reaches it.
    pub public: String,
}

impl TcpListener {
    /// The next connection; grants the relay room for one more.
    pub async fn accept(&mut self) -> Result<TcpConn, Error> {
        match self.inbox.recv().await {
            Some(Down::Incoming {
                conn, local, peer, ..
            }) => {
                self.client
                    .send(Up::Credit {
                        stream: self.stream,
                        amount: 1,
                    })
                    .await?;
                let inbox = self
                    .client
                    .shared
                    .accepted
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&conn);
                let inbox = inbox.ok_or_else(|| {
                    Error::Unexpected(format!("no inbox for accepted stream {conn}"))
                })?;
                Ok(self.client.conn(conn, inbox, local, peer))
            }
            Some(Down::Failed { errno, message, .. }) => Err(Error::Errno { errno, message }),
            Some(other) => Err(Error::Unexpected(format!("{other:?}"))),
            None => Err(self.client.shared.ended()),
        }
    }

    pub async fn close(self) -> Result<(), Error> {
        self.client
            .release(
                self.stream,
                Up::Close {
                    stream: self.stream,
                },
            )
            .await
    }
}

/// A bound UDP socket.
pub struct UdpSocket {
    client: Client,
    pub stream: StreamId,
    inbox: mpsc::UnboundedReceiver<Down>,
    pub local: SocketAddr,
}

impl UdpSocket {
    pub async fn send_to(&self, host: &str, port: u16, data: &[u8]) -> Result<(), Error> {
        let payload = Bytes::copy_from_slice(data);
        self.client
            .send(Up::SendTo {
                stream: self.stream,
                host: host.into(),
                port,
                payload,
            })
            .await
    }

    /// The next datagram, or the error the relay reported for an earlier send.
    pub async fn recv_from(&mut self) -> Result<(Bytes, SocketAddr), Error> {
        match self.inbox.recv().await {
            Some(Down::Datagram { payload, from, .. }) => Ok((payload, from)),
            Some(Down::Failed { errno, message, .. }) => Err(Error::Errno { errno, message }),
            Some(other) => Err(Error::Unexpected(format!("{other:?}"))),
            None => Err(self.client.shared.ended()),
        }
    }

    pub async fn close(self) -> Result<(), Error> {
        self.client
            .release(
                self.stream,
                Up::Close {
                    stream: self.stream,
                },
            )
            .await
    }
}
