//! One page session: a WebSocket, the streams multiplexed on it, and the real sockets behind them.
//!
//! The session task reads frames from the page, parses each into an [`Up`] once, and dispatches on it. Real
//! sockets are served by small tasks of their own (a reader and a writer per TCP stream, an accept loop per
//! listener, a receive loop per UDP socket) that report back through the `internal` channel and send their
//! frames to the page through `out`, a bounded queue drained by the WebSocket writer.
//!
//! Everything a session holds is bounded: streams and ports by quota, bytes from the page by the credit the
//! relay granted (a stream's queue never holds more than its window, and a frame that carries no bytes, such
//! as a second `Shutdown`, queues nothing), reports of socket tasks by the size of `internal`, bytes to the
//! page by `out_budget`.
//! A frame that breaks the protocol ends this session with a `Goodbye` naming the fault; no other session
//! notices, and nothing a page sends makes the relay panic.

mod credit;
mod out;
mod reach;
mod streams;
mod tcp;
#[cfg(test)]
mod tests;
mod udp;
mod write_queue;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Message;
use bytes::Bytes;
use futures_util::{Sink, StreamExt};
use soket_protocol::errno::{self, describe};
use soket_protocol::{Down, GoodbyeCode, StreamId, Transport, Up};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::lab::LabState;
use crate::ratelimit::RateLimit;
use crate::shared::Shared;
use crate::vhost::VirtualHost;
use soket_protocol::Failure;

use credit::Credit;
use out::{write_frames, Buffered, Out};
use streams::{Stream, Streams};
use tcp::Conn;

/// Frames waiting for the WebSocket writer. Small: the bytes they hold are bounded by `OUT_BUDGET` anyway.
const OUT_QUEUE: usize = 64;
/// Bytes of stream data a session may have read from real sockets but not yet sent to the page.
const OUT_BUDGET: usize = 1024 * 1024;
/// Most name resolutions one session may have under way.
const RESOLUTIONS: usize = 8;
/// Most unaccepted connections a listener may hold whatever the quota (Linux caps `backlog` at somaxconn
/// likewise); below it, the session's share of its quota for them (`Streams::backlog_share`).
const MAX_BACKLOG: u32 = 128;
/// How long a closed stream's writer may go on flushing what the page sent before `close()`.
const CLOSE_LINGER: Duration = Duration::from_secs(30);
/// The largest datagram UDP over IPv4 carries.
const MAX_DATAGRAM: usize = 65_507;
/// Reports from socket tasks waiting for the session. A task that finds it full waits, and every task
/// belongs to a stream (within the quota) or a resolution (within `RESOLUTIONS`), so at most this many
/// plus one per task ever wait.
const INTERNAL_QUEUE: usize = 64;
/// A payload shorter than this is copied onto the end of the stream's queue instead of queued as its own
/// chunk, so that many tiny frames cost the relay their bytes, not a record each.
const SMALL_WRITE: usize = 4096;

/// What a session's socket tasks report back to it.
enum Internal {
    Connected {
        stream: StreamId,
        result: Result<TcpStream, Failure>,
        /// The peer address the page sees, where it is not the real one (the lab machine).
        shown_peer: Option<SocketAddr>,
    },
    Incoming {
        listener: StreamId,
        socket: TcpStream,
        peer: SocketAddr,
    },
    /// A stream's real socket failed; the stream is closed with this errno.
    StreamError { stream: StreamId, errno: i32 },
    /// A background operation (resolve, send to a name) finished; the frame answers it.
    Reply(Down),
}

/// What a stream's socket task holds to reach the page and its session: the stream it serves, the output
/// queue with the session's budget of bytes to the page, the rate limit, the report channel, and the relay.
#[derive(Clone)]
struct Link {
    stream: StreamId,
    out: mpsc::Sender<Out>,
    out_budget: Arc<Semaphore>,
    rate: Arc<RateLimit>,
    internal: mpsc::Sender<Internal>,
    shared: Arc<Shared>,
}

impl Link {
    /// Tells the session the stream's real socket failed; it closes the stream with this errno.
    async fn stream_error(&self, err: &std::io::Error) {
        let errno = errno::from_io(err);
        let stream = self.stream;
        let _ = self
            .internal
            .send(Internal::StreamError { stream, errno })
            .await;
    }
}

/// Why a session ends.
#[derive(Debug)]
pub enum End {
    /// The page closed the WebSocket (or it broke).
    PageGone,
    Goodbye(GoodbyeCode, String),
}

fn protocol_error(message: impl Into<String>) -> End {
    End::Goodbye(GoodbyeCode::ProtocolError, message.into())
}

/// What one session holds.
struct Session {
    shared: Arc<Shared>,
    id: u64,
    host: VirtualHost,
    /// What the lab servers keep for this session (mailbox, uploads, posts).
    lab: Arc<LabState>,
    out: mpsc::Sender<Out>,
    /// Where socket tasks report; bounded (`INTERNAL_QUEUE`), a task waits for room.
    internal_tx: mpsc::Sender<Internal>,
    streams: Streams,
    /// The highest id the page has used; new ids must be above it.
    last_page_id: u32,
    /// Accepted connections so far, to number them.
    accepted: u32,
    /// Every task of this session: dropping the set aborts them all.
    tasks: JoinSet<()>,
    window: u32,
    out_budget: Arc<Semaphore>,
    rate: Arc<RateLimit>,
    resolutions: Arc<Semaphore>,
}

/// Serves one WebSocket, given as its two halves, until the page leaves, breaks the protocol, idles out or
/// the relay shuts down. The halves are generic so that a unit test can drive a session over channels.
pub async fn run<S, F>(
    sink: S,
    mut frames: F,
    shared: Arc<Shared>,
    id: u64,
    shutdown: CancellationToken,
) where
    S: Sink<Message, Error: Send> + Unpin + Send + 'static,
    F: futures_util::Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let (out, out_rx) = mpsc::channel(OUT_QUEUE);
    let out_budget = Arc::new(Semaphore::new(OUT_BUDGET));
    let writer = tokio::spawn(write_frames(sink, out_rx, shared.clone()));
    let (internal_tx, mut internal) = mpsc::channel(INTERNAL_QUEUE);
    let hostname = format!("learner-{id}");
    let window = shared.config.window();
    let mut session = Session {
        host: VirtualHost::new(hostname.clone()),
        lab: Arc::default(),
        id,
        out,
        internal_tx,
        streams: Streams::new(&shared),
        last_page_id: 0,
        accepted: 0,
        tasks: JoinSet::new(),
        window,
        out_budget,
        rate: Arc::new(RateLimit::new(shared.config.session_rate)),
        resolutions: Arc::new(Semaphore::new(RESOLUTIONS)),
        shared: shared.clone(),
    };
    let welcome = Down::Welcome {
        hostname,
        public_host: shared.config.public_host(),
        window,
    };
    let end = match session.send(welcome).await {
        Ok(()) => session.serve(&mut frames, &mut internal, &shutdown).await,
        Err(end) => end,
    };
    tracing::info!(session = id, reason = ?end, "session ends");
    if let End::Goodbye(code, message) = end {
        if code == GoodbyeCode::ProtocolError {
            shared.metrics.protocol_errors.fetch_add(1, Relaxed);
        }
        // The page may have stopped reading: do not wait for it forever.
        let _ = session
            .out
            .send_timeout(Out::Goodbye(code, message), Duration::from_secs(1))
            .await;
    }
    session.close_all();
    drop(session);
    let abort = writer.abort_handle();
    if tokio::time::timeout(Duration::from_secs(2), writer)
        .await
        .is_err()
    {
        abort.abort();
    }
}

impl Session {
    async fn serve(
        &mut self,
        frames: &mut (impl futures_util::Stream<Item = Result<Message, axum::Error>> + Unpin),
        internal: &mut mpsc::Receiver<Internal>,
        shutdown: &CancellationToken,
    ) -> End {
        let idle = self.shared.config.idle_timeout;
        let mut deadline = Instant::now() + idle;
        loop {
            let result = tokio::select! {
                frame = frames.next() => {
                    deadline = Instant::now() + idle;
                    match frame {
                        None => return End::PageGone,
                        Some(Err(e)) => return read_error(e),
                        Some(Ok(Message::Binary(frame))) => self.handle_frame(frame).await,
                        Some(Ok(Message::Text(_))) => Err(protocol_error("text frames are not part of soket.v1")),
                        Some(Ok(Message::Close(_))) => return End::PageGone,
                        Some(Ok(_)) => Ok(()), // ping and pong: the WebSocket layer answers them
                    }
                }
                Some(event) = internal.recv() => self.handle_internal(event).await,
                _ = tokio::time::sleep_until(deadline) => {
                    Err(End::Goodbye(GoodbyeCode::Idle, format!("nothing from the page for {} s", idle.as_secs_f64())))
                }
                _ = shutdown.cancelled() => {
                    Err(End::Goodbye(GoodbyeCode::Shutdown, "the relay is shutting down".into()))
                }
            };
            if let Err(end) = result {
                return end;
            }
        }
    }

    /// Queues a frame for the page; the session is over if the writer is gone.
    async fn send(&self, down: Down) -> Result<(), End> {
        self.out
            .send(Out::Frame(down))
            .await
            .map_err(|_| End::PageGone)
    }

    /// Answers an operation with success or `Failed`.
    async fn answer(&self, stream: StreamId, result: Result<Down, Failure>) -> Result<(), End> {
        self.send(result.unwrap_or_else(|failure| Down::failed(stream, failure)))
            .await
    }

    /// What a socket task of `stream` holds.
    fn link(&self, stream: StreamId) -> Link {
        Link {
            stream,
            out: self.out.clone(),
            out_budget: self.out_budget.clone(),
            rate: self.rate.clone(),
            internal: self.internal_tx.clone(),
            shared: self.shared.clone(),
        }
    }

    /// Answers `stream`'s operation with `failure` and keeps the stream as closed, so that the page's
    /// `Close` of it is well-formed.
    async fn fail(&mut self, stream: StreamId, failure: Failure) -> Result<(), End> {
        self.streams.set_closed(stream);
        self.answer(stream, Err(failure)).await
    }

    async fn handle_frame(&mut self, frame: Bytes) -> Result<(), End> {
        let up = Up::decode(&frame).map_err(|e| protocol_error(format!("malformed frame: {e}")))?;
        match up {
            Up::Connect { stream, host, port } => {
                self.new_id(stream)?;
                match self
                    .streams
                    .room()
                    .and_then(|()| self.connect(stream, &host, port))
                {
                    Ok(()) => Ok(()),
                    Err(failure) => self.fail(stream, failure).await,
                }
            }
            Up::Bind {
                stream,
                transport,
                host,
                port,
            } => {
                self.new_id(stream)?;
                match self
                    .streams
                    .room()
                    .and_then(|()| self.bind(stream, transport, &host, port))
                {
                    Ok(bound) => self.send(bound).await,
                    Err(failure) => self.fail(stream, failure).await,
                }
            }
            Up::Listen { stream, backlog } => {
                let result = self.listen(stream, backlog)?;
                self.answer(stream, result).await
            }
            Up::Data { stream, payload } => self.data(stream, payload),
            Up::Credit { stream, amount } => self.credit(stream, amount),
            Up::Shutdown { stream } => match self.streams.get_mut(stream) {
                Some(Stream::Connected(conn)) => {
                    // As shutdown(SHUT_WR) twice: the second changes nothing, so it queues nothing.
                    if !conn.shut {
                        conn.shut = true;
                        conn.writer.shutdown();
                    }
                    Ok(())
                }
                Some(Stream::Closed) => Ok(()),
                Some(_) => Err(protocol_error(format!(
                    "Shutdown for stream {stream}, which is not connected"
                ))),
                None => Err(unknown(stream)),
            },
            Up::Close { stream } => self.close(stream, false),
            Up::Reset { stream } => self.close(stream, true),
            Up::SendTo {
                stream,
                host,
                port,
                payload,
            } => self.send_to(stream, &host, port, payload).await,
            Up::Resolve { stream, host } => {
                self.new_id(stream)?;
                self.resolve(stream, host).await
            }
            Up::Ping { stream } => {
                self.new_id(stream)?;
                self.answer(stream, Ok(Down::Pong { stream })).await
            }
        }
    }

    async fn handle_internal(&mut self, event: Internal) -> Result<(), End> {
        match event {
            Internal::Connected {
                stream,
                result,
                shown_peer,
            } => {
                if !matches!(self.streams.get(stream), Some(Stream::Pending { .. })) {
                    return Ok(()); // the page closed it meanwhile
                }
                match result {
                    Ok(socket) => {
                        let local = socket.local_addr().unwrap_or_else(|_| unspecified());
                        let peer = shown_peer.unwrap_or_else(|| self.visible_peer(&socket));
                        let conn = self.spawn_conn(stream, socket);
                        self.streams.replace(stream, Stream::Connected(conn));
                        self.answer(
                            stream,
                            Ok(Down::Connected {
                                stream,
                                local,
                                peer,
                            }),
                        )
                        .await
                    }
                    Err(failure) => self.fail(stream, failure).await,
                }
            }
            Internal::Incoming {
                listener,
                socket,
                peer,
            } => {
                let Some(Stream::Listening { port, credit, .. }) = self.streams.get(listener)
                else {
                    return Ok(()); // closed meanwhile; dropping the socket closes the connection
                };
                if let Err(reason) = self.streams.room_for_incoming() {
                    // Refused with a reset at once, as Linux does for a full accept queue with
                    // tcp_abort_on_overflow: the stranger learns it now instead of retrying in silence,
                    // and it holds nothing of the session's.
                    credit.give_back(1);
                    let _ = socket.set_zero_linger();
                    tracing::debug!(
                        session = self.id,
                        %peer,
                        reason,
                        "incoming connection refused"
                    );
                    return Ok(());
                }
                let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), *port);
                self.accepted += 1;
                let conn_id = StreamId::relay(self.accepted);
                let conn = self.spawn_conn(conn_id, socket);
                self.streams.open(conn_id, Stream::Connected(conn));
                let incoming = Down::Incoming {
                    stream: listener,
                    conn: conn_id,
                    local,
                    peer,
                };
                self.answer(listener, Ok(incoming)).await
            }
            Internal::StreamError { stream, errno } => {
                if let Some(Stream::Connected(conn)) = self.streams.get(stream) {
                    conn.reader.abort();
                    conn.writer_task.abort();
                    self.streams.set_closed(stream);
                    let closed = Down::Closed {
                        stream,
                        errno,
                        message: describe(errno).to_owned(),
                    };
                    return self.answer(stream, Ok(closed)).await;
                }
                Ok(())
            }
            Internal::Reply(down) => self.send(down).await,
        }
    }

    /// Checks that `stream` is a fresh page id.
    fn new_id(&mut self, stream: StreamId) -> Result<(), End> {
        if stream.is_relay() || stream.0 <= self.last_page_id {
            return Err(protocol_error(format!(
                "stream {stream} is not a fresh page id (ids increase, below 2^31; the last was #{})",
                self.last_page_id
            )));
        }
        self.last_page_id = stream.0;
        Ok(())
    }

    fn bind(
        &mut self,
        stream: StreamId,
        transport: Transport,
        host: &str,
        port: u16,
    ) -> Result<Down, Failure> {
        let Some(ip) = self.host.bind_address(host) else {
            return Err(Failure::errno(errno::EADDRNOTAVAIL));
        };
        if self.host.ports_held() >= self.shared.config.max_listeners {
            let max = self.shared.config.max_listeners;
            return Err(Failure::with(
                errno::EMFILE,
                format!(
                    "{} (this session may hold at most {max} ports)",
                    describe(errno::EMFILE)
                ),
            ));
        }
        let port = match port {
            0 => self
                .host
                .ephemeral_port(transport)
                .ok_or_else(|| Failure::errno(errno::EADDRINUSE))?,
            port if self.host.binding(transport, port).is_some() => {
                return Err(Failure::errno(errno::EADDRINUSE))
            }
            port => port,
        };
        let local = SocketAddr::new(ip, port);
        match transport {
            Transport::Tcp => self.bind_tcp(stream, port, local)?,
            Transport::Udp => self.bind_udp(stream, port)?,
        }
        Ok(Down::Bound { stream, local })
    }

    fn close(&mut self, stream: StreamId, reset: bool) -> Result<(), End> {
        let Some((state, counted)) = self.streams.remove(stream) else {
            return Err(unknown(stream));
        };
        match state {
            Stream::Pending { task } => {
                task.abort();
            }
            Stream::Bound { port, .. } => {
                self.host.release(Transport::Tcp, port);
            }
            Stream::Listening { port, task, .. } => {
                task.abort();
                self.host.release(Transport::Tcp, port);
            }
            Stream::Udp { port, task, .. } => {
                task.abort();
                self.host.release(Transport::Udp, port);
            }
            Stream::Connected(conn) => {
                conn.reader.abort();
                if reset {
                    // SO_LINGER 0: closing sends RST instead of FIN.
                    let _ = conn.socket.set_zero_linger();
                    conn.writer_task.abort();
                } else {
                    // The writer flushes what the page sent before close(), for a while at most, and
                    // the stream counts until it is done with the socket.
                    conn.writer.close(counted);
                    let writer = conn.writer_task;
                    self.tasks.spawn(async move {
                        tokio::time::sleep(CLOSE_LINGER).await;
                        writer.abort();
                    });
                }
            }
            Stream::Closed => {}
        }
        Ok(())
    }

    /// Lets go of every stream; the real sockets close as their tasks are aborted.
    fn close_all(&mut self) {
        for id in self.streams.ids() {
            let _ = self.close(id, false);
        }
        // Writers still flushing after a Close are aborted with the rest: the session is gone.
        self.tasks.abort_all();
    }
}

fn unknown(stream: StreamId) -> End {
    protocol_error(format!("stream {stream} is not open"))
}

fn unspecified() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
}

fn read_error(e: axum::Error) -> End {
    // tungstenite reports an oversized message as a capacity error; say which limit it broke.
    let text = e.to_string();
    if text.contains("too long") || text.contains("Space limit") || text.contains("size") {
        protocol_error(format!(
            "frame larger than the limit of {} bytes ({text})",
            soket_protocol::MAX_FRAME
        ))
    } else {
        End::PageGone
    }
}
