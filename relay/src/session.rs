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

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use soket_protocol::errno::{self, describe};
use soket_protocol::{Down, GoodbyeCode, StreamId, Transport, Up, DATA_HEADER_LEN, MAX_PAYLOAD};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::lab::{self, LabState};
use crate::net;
use crate::policy::Refusal;
use crate::ratelimit::RateLimit;
use crate::server::Shared;
use crate::vhost::{Binding, Destination, VirtualHost};

/// Frames waiting for the WebSocket writer. Small: the bytes they hold are bounded by `OUT_BUDGET` anyway.
const OUT_QUEUE: usize = 64;
/// Bytes of stream data a session may have read from real sockets but not yet sent to the page.
const OUT_BUDGET: usize = 1024 * 1024;
/// Most name resolutions one session may have under way.
const RESOLUTIONS: usize = 8;
/// Most unaccepted connections a listener may hold (Linux caps `backlog` at somaxconn likewise).
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

/// What the session hands to the WebSocket writer.
enum Out {
    Frame(Down),
    /// `Datagram`, with the bytes it holds in the relay's accounts.
    Data(Down, Buffered),
    /// A `Data` frame already encoded (built in place by a reader), with the bytes it holds.
    Encoded(Bytes, Buffered),
    /// Send `Goodbye`, close the WebSocket with this reason, and stop.
    Goodbye(GoodbyeCode, String),
}

/// Bytes held in a relay buffer: counted in the `buffered_bytes` gauge, and (for bytes on their way to the
/// page) in the session's `out_budget`, until dropped — written, sent, or thrown away with their session.
struct Buffered {
    bytes: usize,
    shared: Arc<Shared>,
    budget: Option<Arc<Semaphore>>,
}

impl Buffered {
    fn new(shared: &Arc<Shared>, bytes: usize, budget: Option<Arc<Semaphore>>) -> Buffered {
        shared
            .metrics
            .buffered_bytes
            .fetch_add(bytes as i64, Relaxed);
        Buffered {
            bytes,
            shared: shared.clone(),
            budget,
        }
    }

    /// Counts `bytes` more.
    fn add(&mut self, bytes: usize) {
        self.shared
            .metrics
            .buffered_bytes
            .fetch_add(bytes as i64, Relaxed);
        self.bytes += bytes;
    }

    /// Moves `bytes` of this count to a count of their own, which lets go of them when dropped.
    fn split(&mut self, bytes: usize) -> Buffered {
        self.bytes -= bytes;
        Buffered {
            bytes,
            shared: self.shared.clone(),
            budget: self.budget.clone(),
        }
    }
}

impl Drop for Buffered {
    fn drop(&mut self) {
        self.shared
            .metrics
            .buffered_bytes
            .fetch_sub(self.bytes as i64, Relaxed);
        if let Some(budget) = &self.budget {
            budget.add_permits(self.bytes);
        }
    }
}

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

/// An operation's failure as the page will raise it.
#[derive(Debug)]
struct Failure {
    errno: i32,
    message: String,
}

impl Failure {
    fn errno(errno: i32) -> Failure {
        Failure {
            errno,
            message: describe(errno).to_owned(),
        }
    }

    fn with(errno: i32, message: impl Into<String>) -> Failure {
        Failure {
            errno,
            message: message.into(),
        }
    }

    fn io(err: &std::io::Error) -> Failure {
        Failure::errno(errno::from_io(err))
    }
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Failure {
        Failure::with(errno::EACCES, refusal.to_string())
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

/// Credit one side granted the other: bytes for a stream, connections for a listener. One task takes from
/// it; the session adds the page's grants to it.
struct Credit {
    /// A std mutex: held for a few instructions, never across an await.
    state: Mutex<CreditState>,
    /// The most that may be outstanding: a grant past it breaks the protocol.
    limit: u64,
    /// Wakes the one task that waits for credit; a permit is kept if it is not waiting yet.
    more: Notify,
}

struct CreditState {
    /// Granted and not yet used.
    available: u64,
    /// Taken by the task for a send under way, not yet sent.
    reserved: u64,
}

impl Credit {
    fn new(initial: u64, limit: u64) -> Credit {
        let state = Mutex::new(CreditState {
            available: initial,
            reserved: 0,
        });
        Credit {
            state,
            limit,
            more: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, CreditState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a grant from the page; false if it goes past the limit. The page can only return what it was
    /// sent, so what it holds plus what is set aside plus the grant never exceeds the window.
    fn grant(&self, amount: u32) -> bool {
        {
            let mut state = self.state();
            if state.available + state.reserved + u64::from(amount) > self.limit {
                return false;
            }
            state.available += u64::from(amount);
        }
        self.more.notify_one();
        true
    }

    /// Returns credit that was taken and then not used by the page after all (a connection refused).
    fn give_back(&self, amount: u64) {
        self.state().available += amount;
        self.more.notify_one();
    }

    /// Waits for credit and sets aside up to `max` of it for one send.
    async fn take(&self, max: u64) -> u64 {
        loop {
            {
                let mut state = self.state();
                if state.available > 0 {
                    let n = state.available.min(max);
                    state.available -= n;
                    state.reserved += n;
                    return n;
                }
            }
            self.more.notified().await;
        }
    }

    /// Ends a send for which `taken` was set aside: `used` of it went to the page, the rest is available.
    fn settle(&self, taken: u64, used: u64) {
        {
            let mut state = self.state();
            state.reserved -= taken;
            state.available += taken - used;
        }
        if taken > used {
            self.more.notify_one();
        }
    }
}

/// What the page sent on a connected stream that its writer has not written yet: the session adds to it,
/// the stream's writer takes from it.
///
/// It is bounded by the stream's credit, however many frames the page sends: its bytes never exceed the
/// window; a chunk holds at least `SMALL_WRITE` bytes or is followed by one that does (small payloads are
/// copied onto the last chunk), so there are at most `2 * window / SMALL_WRITE + 1` of them; an empty
/// payload adds nothing; and `Shutdown` and `Close` are flags, which a second frame only sets again.
struct WriteQueue {
    /// A std mutex: held for a few instructions, never across an await.
    state: Mutex<Queued>,
    /// Wakes the writer, the one task that waits on the queue; a permit is kept if it is not waiting yet.
    more: Notify,
}

struct Queued {
    chunks: VecDeque<Chunk>,
    /// The bytes in `chunks`, in the relay's accounts.
    held: Buffered,
    /// The page shut down its sending side: `shutdown(SHUT_WR)` once `chunks` is written.
    shutdown: bool,
    /// The page closed the stream: write what is queued, then stop, granting no more credit.
    close: bool,
}

enum Chunk {
    /// A payload as it came, sharing the frame's memory.
    Frame(Bytes),
    /// Small payloads copied one after the other.
    Copied(BytesMut),
}

/// What a stream's writer does next.
enum Next {
    Write(Bytes, Buffered),
    Shutdown,
    /// Closed, and everything written.
    Done,
    Wait,
}

impl WriteQueue {
    fn new(shared: &Arc<Shared>) -> WriteQueue {
        WriteQueue {
            state: Mutex::new(Queued {
                chunks: VecDeque::new(),
                held: Buffered::new(shared, 0, None),
                shutdown: false,
                close: false,
            }),
            more: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Queued> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a payload the page sent (within its credit).
    fn push(&self, payload: Bytes) {
        if payload.is_empty() {
            return; // a zero-length send writes nothing
        }
        {
            let mut state = self.state();
            state.held.add(payload.len());
            let small = payload.len() < SMALL_WRITE;
            match state.chunks.back_mut() {
                Some(Chunk::Copied(last)) if small && last.len() < MAX_PAYLOAD => {
                    last.extend_from_slice(&payload)
                }
                _ if small => state
                    .chunks
                    .push_back(Chunk::Copied(BytesMut::from(&payload[..]))),
                _ => state.chunks.push_back(Chunk::Frame(payload)),
            }
        }
        self.more.notify_one();
    }

    fn shutdown(&self) {
        self.state().shutdown = true;
        self.more.notify_one();
    }

    fn close(&self) {
        self.state().close = true;
        self.more.notify_one();
    }

    /// Takes the next thing to do, and says whether the page has closed the stream.
    fn next(&self) -> (Next, bool) {
        let mut state = self.state();
        let next = match state.chunks.pop_front() {
            Some(chunk) => {
                let bytes = match chunk {
                    Chunk::Frame(bytes) => bytes,
                    Chunk::Copied(bytes) => bytes.freeze(),
                };
                let held = state.held.split(bytes.len());
                Next::Write(bytes, held)
            }
            None if std::mem::take(&mut state.shutdown) => Next::Shutdown,
            None if state.close => Next::Done,
            None => Next::Wait,
        };
        (next, state.close)
    }
}

/// A connected TCP stream's state in the session.
struct Conn {
    socket: Arc<TcpStream>,
    writer: Arc<WriteQueue>,
    /// Bytes the page may still send: decreased here for each `Data`, increased by the writer as it writes.
    window: Arc<AtomicU64>,
    /// Bytes the relay may still send to the page.
    read_credit: Arc<Credit>,
    reader: AbortHandle,
    writer_task: AbortHandle,
    /// The page shut down its sending side; more `Data` is a protocol error.
    shut: bool,
}

enum Stream {
    /// A `Connect` under way.
    Pending {
        task: AbortHandle,
    },
    /// A bound TCP socket, not yet listening.
    Bound {
        socket: TcpSocket,
        port: u16,
        local: SocketAddr,
    },
    Listening {
        port: u16,
        public: String,
        credit: Arc<Credit>,
        task: AbortHandle,
    },
    Connected(Conn),
    Udp {
        port: u16,
        socket: Arc<UdpSocket>,
        task: AbortHandle,
    },
    /// The relay reported the stream gone (or a connect failed); frames for it are dropped until the
    /// page's `Close` frees the id.
    Closed,
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
    streams: HashMap<StreamId, Stream>,
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

/// Serves one WebSocket until the page leaves, breaks the protocol, idles out or the relay shuts down.
pub async fn run(ws: WebSocket, shared: Arc<Shared>, id: u64, shutdown: CancellationToken) {
    let (sink, mut frames) = ws.split();
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
        streams: HashMap::new(),
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
    let end = if session.send(welcome).await {
        session.serve(&mut frames, &mut internal, &shutdown).await
    } else {
        End::PageGone
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

/// Drains `out` into the WebSocket. Frames are fed without a flush while more are queued, so a burst
/// leaves in few writes.
async fn write_frames(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut out: mpsc::Receiver<Out>,
    shared: Arc<Shared>,
) {
    while let Some(item) = out.recv().await {
        let result = match item {
            Out::Frame(down) => sink.feed(Message::Binary(down.encode())).await,
            Out::Data(down, held) => {
                let result = sink.feed(Message::Binary(down.encode())).await;
                shared
                    .metrics
                    .bytes_down
                    .fetch_add(held.bytes as u64, Relaxed);
                result
            }
            Out::Encoded(frame, held) => {
                let result = sink.feed(Message::Binary(frame)).await;
                shared
                    .metrics
                    .bytes_down
                    .fetch_add(held.bytes as u64, Relaxed);
                result
            }
            Out::Goodbye(code, message) => {
                let goodbye = Down::Goodbye {
                    code,
                    message: message.clone(),
                };
                let _ = sink.feed(Message::Binary(goodbye.encode())).await;
                let close_code = match code {
                    GoodbyeCode::ProtocolError => 1002,
                    GoodbyeCode::Shutdown => 1001,
                    _ => 1008,
                };
                let reason = truncate(&message, 120);
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code: close_code,
                        reason: reason.into(),
                    })))
                    .await;
                return;
            }
        };
        if result.is_err() {
            return;
        }
        if out.is_empty() && sink.flush().await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}

/// At most `max` bytes of `s`, cut at a character boundary (a WebSocket close reason is at most 123).
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Session {
    async fn serve(
        &mut self,
        frames: &mut futures_util::stream::SplitStream<WebSocket>,
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

    /// Queues a frame for the page; false if the writer is gone.
    async fn send(&self, down: Down) -> bool {
        self.out.send(Out::Frame(down)).await.is_ok()
    }

    /// Answers an operation with success or `Failed`.
    async fn answer(&self, stream: StreamId, result: Result<Down, Failure>) -> Result<(), End> {
        let down = match result {
            Ok(down) => down,
            Err(Failure { errno, message }) => Down::Failed {
                stream,
                errno,
                message,
            },
        };
        if self.send(down).await {
            Ok(())
        } else {
            Err(End::PageGone)
        }
    }

    async fn handle_frame(&mut self, frame: Bytes) -> Result<(), End> {
        let up = Up::decode(&frame).map_err(|e| protocol_error(format!("malformed frame: {e}")))?;
        match up {
            Up::Connect { stream, host, port } => {
                self.new_id(stream)?;
                match self
                    .stream_quota()
                    .and_then(|()| self.connect(stream, &host, port))
                {
                    Ok(()) => Ok(()),
                    Err(failure) => {
                        // The id lives (as closed) so that the page's Close of it is well-formed.
                        self.streams.insert(stream, Stream::Closed);
                        self.answer(stream, Err(failure)).await
                    }
                }
            }
            Up::Bind {
                stream,
                transport,
                host,
                port,
            } => {
                self.new_id(stream)?;
                let result = self
                    .stream_quota()
                    .and_then(|()| self.bind(stream, transport, &host, port));
                if result.is_err() {
                    self.streams.insert(stream, Stream::Closed);
                }
                self.answer(stream, result).await
            }
            Up::Listen { stream, backlog } => {
                let result = self.listen(stream, backlog)?;
                self.answer(stream, result).await
            }
            Up::Data { stream, payload } => self.data(stream, payload),
            Up::Credit { stream, amount } => self.credit(stream, amount),
            Up::Shutdown { stream } => match self.streams.get_mut(&stream) {
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
                if !matches!(self.streams.get(&stream), Some(Stream::Pending { .. })) {
                    return Ok(()); // the page closed it meanwhile
                }
                match result {
                    Ok(socket) => {
                        let local = socket.local_addr().unwrap_or_else(|_| unspecified());
                        let peer = shown_peer.unwrap_or_else(|| self.visible_peer(&socket));
                        let conn = self.spawn_conn(stream, socket);
                        self.streams.insert(stream, Stream::Connected(conn));
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
                    Err(failure) => {
                        self.set_closed(stream);
                        self.answer(stream, Err(failure)).await
                    }
                }
            }
            Internal::Incoming {
                listener,
                socket,
                peer,
            } => {
                let Some(Stream::Listening { port, credit, .. }) = self.streams.get(&listener)
                else {
                    return Ok(()); // closed meanwhile; dropping the socket closes the connection
                };
                if self.streams.len() >= self.shared.config.max_streams {
                    // Over quota: refuse this one with a reset, as a full accept queue would.
                    credit.give_back(1);
                    let _ = socket.set_zero_linger();
                    tracing::debug!(
                        session = self.id,
                        "incoming connection refused: stream quota"
                    );
                    return Ok(());
                }
                let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), *port);
                self.accepted += 1;
                let conn_id = StreamId::relay(self.accepted);
                let conn = self.spawn_conn(conn_id, socket);
                self.streams.insert(conn_id, Stream::Connected(conn));
                self.count_stream();
                let incoming = Down::Incoming {
                    stream: listener,
                    conn: conn_id,
                    local,
                    peer,
                };
                self.answer(listener, Ok(incoming)).await
            }
            Internal::StreamError { stream, errno } => {
                if let Some(Stream::Connected(conn)) = self.streams.get(&stream) {
                    conn.reader.abort();
                    conn.writer_task.abort();
                    self.set_closed(stream);
                    let closed = Down::Closed {
                        stream,
                        errno,
                        message: describe(errno).to_owned(),
                    };
                    return self.answer(stream, Ok(closed)).await;
                }
                Ok(())
            }
            Internal::Reply(down) => {
                if self.send(down).await {
                    Ok(())
                } else {
                    Err(End::PageGone)
                }
            }
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

    /// Room for one more stream, or EMFILE: not a protocol error, the learner opened too many sockets.
    fn stream_quota(&self) -> Result<(), Failure> {
        let max = self.shared.config.max_streams;
        if self.streams.len() >= max {
            let message = format!(
                "{} (this session may hold at most {max} sockets)",
                describe(errno::EMFILE)
            );
            return Err(Failure::with(errno::EMFILE, message));
        }
        Ok(())
    }

    /// Marks a stream closed by the relay; its id lives until the page's `Close`.
    fn set_closed(&mut self, stream: StreamId) {
        if let Some(previous) = self.streams.insert(stream, Stream::Closed) {
            if !matches!(previous, Stream::Closed) {
                self.uncount_stream();
            }
        }
    }

    fn count_stream(&self) {
        self.shared.metrics.streams_active.fetch_add(1, Relaxed);
        self.shared.metrics.streams_total.fetch_add(1, Relaxed);
    }

    fn uncount_stream(&self) {
        self.shared.metrics.streams_active.fetch_sub(1, Relaxed);
    }

    /// Starts a TCP connect; its result arrives as `Internal::Connected`.
    fn connect(&mut self, stream: StreamId, host: &str, port: u16) -> Result<(), Failure> {
        let target = match self.host.destination(host) {
            Destination::OwnHost { .. } => match self.host.binding(Transport::Tcp, port) {
                // Only a listening stream has a real port that accepts.
                Some(Binding { real }) if self.is_listening(port) => Target::Own(real),
                _ => return Err(Failure::errno(errno::ECONNREFUSED)),
            },
            Destination::Addr(ip) => {
                let dest = SocketAddr::new(ip, port);
                self.check_policy(None, dest)?;
                Target::Addr(dest)
            }
            Destination::Name(name) => {
                self.check_name(&name, port)?;
                Target::Name(name)
            }
            Destination::Lab => match self.shared.lab.tcp_target(&self.lab, port) {
                Some(real) => Target::Lab(real, self.lab.clone()),
                None => return Err(Failure::errno(errno::ECONNREFUSED)),
            },
        };
        let shown_peer = matches!(target, Target::Lab(..))
            .then(|| SocketAddr::new(IpAddr::V4(lab::LAB_ADDR), port));
        let shared = self.shared.clone();
        let internal = self.internal_tx.clone();
        let task = self.tasks.spawn(async move {
            let result = dial(&shared, target, port).await;
            let _ = internal
                .send(Internal::Connected {
                    stream,
                    result,
                    shown_peer,
                })
                .await;
        });
        self.streams.insert(stream, Stream::Pending { task });
        self.count_stream();
        Ok(())
    }

    fn is_listening(&self, port: u16) -> bool {
        self.streams
            .values()
            .any(|s| matches!(s, Stream::Listening { port: p, .. } if *p == port))
    }

    /// A name the allow list does not name is refused before anyone asks DNS about it.
    fn check_name(&self, name: &str, port: u16) -> Result<(), Failure> {
        if self.shared.policy.allows_name(name) {
            return Ok(());
        }
        self.shared.metrics.refusals.fetch_add(1, Relaxed);
        let message =
            format!("soket relay policy refuses {name}:{port}: not on the relay's allow list");
        Err(Failure::with(errno::EACCES, message))
    }

    fn check_policy(&self, name: Option<&str>, dest: SocketAddr) -> Result<(), Failure> {
        match self.shared.policy.check(name, dest) {
            Ok(_) => Ok(()),
            Err(refusal) => {
                self.shared.metrics.refusals.fetch_add(1, Relaxed);
                tracing::info!(session = self.id, %refusal, "refused");
                Err(refusal.into())
            }
        }
    }

    /// The peer address the page sees: a connection to the session's own listener shows the virtual port.
    fn visible_peer(&self, socket: &TcpStream) -> SocketAddr {
        let Ok(peer) = socket.peer_addr() else {
            return unspecified();
        };
        for (port, stream) in self.listening_ports() {
            if let (Some(binding), Stream::Listening { .. }) =
                (self.host.binding(Transport::Tcp, port), stream)
            {
                if binding.real == peer {
                    return SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
                }
            }
        }
        peer
    }

    fn listening_ports(&self) -> impl Iterator<Item = (u16, &Stream)> {
        self.streams.values().filter_map(|s| match s {
            Stream::Listening { port, .. } => Some((*port, s)),
            _ => None,
        })
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
            Transport::Tcp => {
                let socket = self
                    .shared
                    .real_ports
                    .bind_tcp()
                    .map_err(|e| Failure::io(&e))?;
                let real = socket.local_addr().map_err(|e| Failure::io(&e))?;
                self.host.claim(transport, port, Binding { real });
                self.streams.insert(
                    stream,
                    Stream::Bound {
                        socket,
                        port,
                        local,
                    },
                );
                self.count_stream();
            }
            Transport::Udp => {
                let socket = Arc::new(
                    self.shared
                        .real_ports
                        .bind_udp()
                        .map_err(|e| Failure::io(&e))?,
                );
                let real = socket.local_addr().map_err(|e| Failure::io(&e))?;
                self.host.claim(transport, port, Binding { real });
                let task = self.tasks.spawn(receive_datagrams(
                    stream,
                    socket.clone(),
                    self.host.udp_name_table(),
                    self.out.clone(),
                    self.out_budget.clone(),
                    self.rate.clone(),
                    self.shared.clone(),
                ));
                self.streams
                    .insert(stream, Stream::Udp { port, socket, task });
                self.count_stream();
            }
        }
        Ok(Down::Bound { stream, local })
    }

    fn listen(&mut self, stream: StreamId, backlog: u32) -> Result<Result<Down, Failure>, End> {
        let backlog = backlog.clamp(1, MAX_BACKLOG);
        match self.streams.get(&stream) {
            Some(Stream::Bound { .. }) => {}
            // Listening again only changes the backlog on Linux; ours stays.
            Some(Stream::Listening { public, .. }) => {
                let public = public.clone();
                return Ok(Ok(Down::Listening { stream, public }));
            }
            Some(Stream::Udp { .. }) => return Ok(Err(Failure::errno(errno::EOPNOTSUPP))),
            Some(_) => return Ok(Err(Failure::errno(errno::EINVAL))),
            None => return Err(unknown(stream)),
        }
        let Some(Stream::Bound {
            socket,
            port,
            local,
        }) = self.streams.remove(&stream)
        else {
            return Err(unknown(stream));
        };
        let listener = match self.listen_real(socket, backlog, port) {
            Ok(listener) => listener,
            Err(e) => {
                self.host.release(Transport::Tcp, port);
                self.streams.insert(stream, Stream::Closed);
                self.uncount_stream();
                return Ok(Err(Failure::io(&e)));
            }
        };
        let real_port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let public = format!("{}:{real_port}", self.shared.config.public_host());
        let credit = Arc::new(Credit::new(backlog.into(), backlog.into()));
        let task = self.tasks.spawn(accept_connections(
            stream,
            listener,
            credit.clone(),
            self.internal_tx.clone(),
        ));
        tracing::debug!(session = self.id, %local, %public, "listening");
        let listening = Stream::Listening {
            port,
            public: public.clone(),
            credit,
            task,
        };
        self.streams.insert(stream, listening);
        Ok(Ok(Down::Listening { stream, public }))
    }

    /// Listens on the real socket behind virtual `port`. With SO_REUSEADDR, Linux lets two sockets bind
    /// one port as long as neither listens, so another session may have listened on ours first: then
    /// take another real port.
    fn listen_real(
        &mut self,
        socket: TcpSocket,
        backlog: u32,
        port: u16,
    ) -> std::io::Result<TcpListener> {
        let mut socket = socket;
        for _ in 0..8 {
            match socket.listen(backlog) {
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    socket = self.shared.real_ports.bind_tcp()?;
                    let real = socket.local_addr()?;
                    self.host.claim(Transport::Tcp, port, Binding { real });
                }
                other => return other,
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "no free port in the relay's range",
        ))
    }

    fn data(&mut self, stream: StreamId, payload: Bytes) -> Result<(), End> {
        match self.streams.get(&stream) {
            Some(Stream::Connected(conn)) => {
                if conn.shut {
                    return Err(protocol_error(format!(
                        "Data for stream {stream} after its Shutdown"
                    )));
                }
                let len = payload.len() as u64;
                let window = conn.window.load(Relaxed);
                if len > window {
                    return Err(protocol_error(format!(
                        "stream {stream} sent {len} bytes with {window} bytes of credit (window violation)"
                    )));
                }
                // Only this task decreases the window, so it cannot have shrunk since the load.
                conn.window.fetch_sub(len, Relaxed);
                conn.writer.push(payload);
                Ok(())
            }
            Some(Stream::Closed) => Ok(()),
            Some(_) => Err(protocol_error(format!(
                "Data for stream {stream}, which is not a connected TCP stream"
            ))),
            None => Err(unknown(stream)),
        }
    }

    fn credit(&mut self, stream: StreamId, amount: u32) -> Result<(), End> {
        let credit = match self.streams.get(&stream) {
            Some(Stream::Connected(conn)) => &conn.read_credit,
            Some(Stream::Listening { credit, .. }) => credit,
            Some(Stream::Closed) => return Ok(()),
            Some(_) => {
                return Err(protocol_error(format!(
                    "Credit for stream {stream}, which takes none"
                )))
            }
            None => return Err(unknown(stream)),
        };
        if credit.grant(amount) {
            Ok(())
        } else {
            Err(protocol_error(format!(
                "stream {stream} granted credit beyond its window"
            )))
        }
    }

    fn close(&mut self, stream: StreamId, reset: bool) -> Result<(), End> {
        let Some(state) = self.streams.remove(&stream) else {
            return Err(unknown(stream));
        };
        match state {
            Stream::Pending { task } => {
                task.abort();
                self.uncount_stream();
            }
            Stream::Bound { port, .. } => {
                self.host.release(Transport::Tcp, port);
                self.uncount_stream();
            }
            Stream::Listening { port, task, .. } => {
                task.abort();
                self.host.release(Transport::Tcp, port);
                self.uncount_stream();
            }
            Stream::Udp { port, task, .. } => {
                task.abort();
                self.host.release(Transport::Udp, port);
                self.uncount_stream();
            }
            Stream::Connected(conn) => {
                conn.reader.abort();
                if reset {
                    // SO_LINGER 0: closing sends RST instead of FIN.
                    let _ = conn.socket.set_zero_linger();
                    conn.writer_task.abort();
                } else {
                    // The writer flushes what the page sent before close(), for a while at most.
                    conn.writer.close();
                    let writer = conn.writer_task;
                    self.tasks.spawn(async move {
                        tokio::time::sleep(CLOSE_LINGER).await;
                        writer.abort();
                    });
                }
                self.uncount_stream();
            }
            Stream::Closed => {}
        }
        Ok(())
    }

    async fn send_to(
        &mut self,
        stream: StreamId,
        host: &str,
        port: u16,
        payload: Bytes,
    ) -> Result<(), End> {
        let socket = match self.streams.get(&stream) {
            Some(Stream::Udp { socket, .. }) => socket.clone(),
            Some(Stream::Closed) => return Ok(()),
            Some(_) => {
                return Err(protocol_error(format!(
                    "SendTo on stream {stream}, which is not a UDP socket"
                )))
            }
            None => return Err(unknown(stream)),
        };
        if payload.len() > MAX_DATAGRAM {
            return self
                .answer(stream, Err(Failure::errno(errno::EMSGSIZE)))
                .await;
        }
        // The session's own ports and the lab's are on the relay host; everything else is the outside
        // world, reached through the network.
        let (dest, outside) = match self.host.destination(host) {
            // A datagram to a port nobody bound vanishes, as on Linux.
            Destination::OwnHost { .. } => match self.host.binding(Transport::Udp, port) {
                Some(binding) => (binding.real, false),
                None => return Ok(()),
            },
            Destination::Lab => {
                let service = lab::Service::from_port(port);
                match service.and_then(|s| self.shared.lab.udp_addr(s)) {
                    Some(real) => (real, false),
                    None => return Ok(()),
                }
            }
            Destination::Addr(ip) => {
                let dest = SocketAddr::new(ip, port);
                if let Err(failure) = self.check_policy(None, dest) {
                    return self.answer(stream, Err(failure)).await;
                }
                (dest, true)
            }
            Destination::Name(name) => {
                if let Err(refusal) = self.check_name(&name, port) {
                    return self.answer(stream, Err(refusal)).await;
                }
                let Ok(permit) = self.resolutions.clone().try_acquire_owned() else {
                    return self
                        .answer(stream, Err(Failure::errno(errno::ENOBUFS)))
                        .await;
                };
                let shared = self.shared.clone();
                let internal = self.internal_tx.clone();
                self.tasks.spawn(async move {
                    let _permit = permit;
                    let result = match resolve_allowed(&shared, &name, port).await {
                        Ok(dest) => shared
                            .network
                            .send_to(&socket, &payload, dest)
                            .map_err(|e| Failure::io(&e)),
                        Err(failure) => Err(failure),
                    };
                    if let Err(Failure { errno, message }) = result {
                        let failed = Down::Failed {
                            stream,
                            errno,
                            message,
                        };
                        let _ = internal.send(Internal::Reply(failed)).await;
                    }
                });
                return Ok(());
            }
        };
        self.rate.take(payload.len()).await;
        let _ = if outside {
            self.shared.network.send_to(&socket, &payload, dest)
        } else {
            net::send_datagram(&socket, &payload, dest)
        };
        self.shared
            .metrics
            .bytes_up
            .fetch_add(payload.len() as u64, Relaxed);
        Ok(())
    }

    async fn resolve(&mut self, stream: StreamId, host: String) -> Result<(), End> {
        let name = match self.host.destination(&host) {
            Destination::OwnHost { addr } => {
                let addr = if addr.is_unspecified() {
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                } else {
                    addr
                };
                return self
                    .answer(
                        stream,
                        Ok(Down::Resolved {
                            stream,
                            addrs: vec![addr],
                        }),
                    )
                    .await;
            }
            Destination::Addr(ip) => {
                return self
                    .answer(
                        stream,
                        Ok(Down::Resolved {
                            stream,
                            addrs: vec![ip],
                        }),
                    )
                    .await
            }
            Destination::Lab => {
                let addrs = vec![IpAddr::V4(lab::LAB_ADDR)];
                return self
                    .answer(stream, Ok(Down::Resolved { stream, addrs }))
                    .await;
            }
            Destination::Name(name) => name,
        };
        if !self.shared.policy.allows_name(&name) {
            let message = format!(
                "{} (soket: {name} is not on this relay's allow list)",
                describe(errno::EAI_NONAME)
            );
            return self
                .answer(stream, Err(Failure::with(errno::EAI_NONAME, message)))
                .await;
        }
        let Ok(permit) = self.resolutions.clone().try_acquire_owned() else {
            return self
                .answer(stream, Err(Failure::errno(errno::EAI_AGAIN)))
                .await;
        };
        let shared = self.shared.clone();
        let internal = self.internal_tx.clone();
        self.tasks.spawn(async move {
            let _permit = permit;
            let reply = match lookup(&shared, &name).await {
                Ok(addrs) => Down::Resolved { stream, addrs },
                Err(Failure { errno, message }) => Down::Failed {
                    stream,
                    errno,
                    message,
                },
            };
            let _ = internal.send(Internal::Reply(reply)).await;
        });
        Ok(())
    }

    /// Starts the reader and writer of a connected stream.
    fn spawn_conn(&mut self, stream: StreamId, socket: TcpStream) -> Conn {
        let _ = socket.set_nodelay(true);
        let socket = Arc::new(socket);
        let window = u64::from(self.window);
        let read_credit = Arc::new(Credit::new(window, window));
        let reader = self.tasks.spawn(read_stream(
            stream,
            socket.clone(),
            read_credit.clone(),
            self.out.clone(),
            self.out_budget.clone(),
            self.rate.clone(),
            self.internal_tx.clone(),
            self.shared.clone(),
        ));
        let writer = Arc::new(WriteQueue::new(&self.shared));
        let window_left = Arc::new(AtomicU64::new(window));
        let writer_task = self.tasks.spawn(write_stream(
            stream,
            socket.clone(),
            writer.clone(),
            window_left.clone(),
            self.out.clone(),
            self.rate.clone(),
            self.internal_tx.clone(),
            self.shared.clone(),
        ));
        Conn {
            socket,
            writer,
            window: window_left,
            read_credit,
            reader,
            writer_task,
            shut: false,
        }
    }

    /// Lets go of every stream; the real sockets close as their tasks are aborted.
    fn close_all(&mut self) {
        let ids: Vec<StreamId> = self.streams.keys().copied().collect();
        for id in ids {
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

enum Target {
    /// The real port behind one of the session's own listeners: dialled on the relay host directly, since
    /// it is not the outside world.
    Own(SocketAddr),
    Addr(SocketAddr),
    Name(String),
    /// A lab server's real loopback port, dialled for this session's lab state.
    Lab(SocketAddr, Arc<LabState>),
}

/// Resolves an allowed name and picks its first address the policy allows.
async fn resolve_allowed(shared: &Shared, name: &str, port: u16) -> Result<SocketAddr, Failure> {
    let addrs = lookup(shared, name).await?;
    let mut refusal = None;
    for ip in addrs {
        let dest = SocketAddr::new(ip, port);
        match shared.policy.check(Some(name), dest) {
            Ok(_) => return Ok(dest),
            Err(r) => refusal = refusal.or(Some(r)),
        }
    }
    shared.metrics.refusals.fetch_add(1, Relaxed);
    Err(match refusal {
        Some(r) => r.into(),
        None => Failure::errno(errno::EAI_NONAME),
    })
}

async fn lookup(shared: &Shared, name: &str) -> Result<Vec<IpAddr>, Failure> {
    match tokio::time::timeout(shared.config.connect_timeout, shared.network.resolve(name)).await {
        Ok(Ok(addrs)) if !addrs.is_empty() => {
            let mut addrs: Vec<IpAddr> = addrs.into_iter().map(crate::addr::canonical).collect();
            addrs.truncate(soket_protocol::MAX_ADDRS);
            Ok(addrs)
        }
        Ok(_) => Err(Failure::errno(errno::EAI_NONAME)),
        Err(_) => Err(Failure::errno(errno::EAI_AGAIN)),
    }
}

async fn dial(shared: &Shared, target: Target, port: u16) -> Result<TcpStream, Failure> {
    let connecting = match target {
        Target::Own(real) => Box::pin(TcpStream::connect(real)),
        Target::Addr(dest) => shared.network.connect(dest),
        Target::Lab(real, state) => Box::pin(async move { shared.lab.dial(state, real).await }),
        Target::Name(name) => shared
            .network
            .connect(resolve_allowed(shared, &name, port).await?),
    };
    match tokio::time::timeout(shared.config.connect_timeout, connecting).await {
        Ok(Ok(socket)) => Ok(socket),
        Ok(Err(e)) => Err(Failure::io(&e)),
        Err(_) => Err(Failure::errno(errno::ETIMEDOUT)),
    }
}

/// Accepts connections while the page has room for them (the listener's credit is its backlog).
async fn accept_connections(
    listener_id: StreamId,
    listener: TcpListener,
    credit: Arc<Credit>,
    internal: mpsc::Sender<Internal>,
) {
    loop {
        credit.take(1).await;
        match listener.accept().await {
            Ok((socket, peer)) => {
                credit.settle(1, 1);
                if internal
                    .send(Internal::Incoming {
                        listener: listener_id,
                        socket,
                        peer,
                    })
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(e) => {
                // Out of descriptors and the like: pass, and try again shortly.
                tracing::warn!(error = %e, "accept failed");
                credit.settle(1, 0);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads a TCP stream's socket while the page has credit, and sends what arrives as `Data`.
#[allow(clippy::too_many_arguments)]
async fn read_stream(
    stream: StreamId,
    socket: Arc<TcpStream>,
    credit: Arc<Credit>,
    out: mpsc::Sender<Out>,
    budget: Arc<Semaphore>,
    rate: Arc<RateLimit>,
    internal: mpsc::Sender<Internal>,
    shared: Arc<Shared>,
) {
    // Frames are built in place: the Data header, then the bytes read right after it. Once the writer
    // has sent (and dropped) earlier frames, `reserve` reuses their memory.
    let mut buf = BytesMut::new();
    loop {
        let want = credit.take(MAX_PAYLOAD as u64).await as usize;
        // Held while the socket is idle: if this task is aborted meanwhile (the page closed the stream),
        // dropping the permit gives the budget back. Only the bytes read move on to the writer.
        let Ok(permit) = budget.clone().acquire_many_owned(want as u32).await else {
            return;
        };
        buf.clear();
        buf.reserve(DATA_HEADER_LEN + want);
        buf.extend_from_slice(&Down::data_header(stream));
        let result = loop {
            if let Err(e) = socket.readable().await {
                break Err(e);
            }
            match socket.try_read_buf(&mut (&mut buf).limit(want)) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                other => break other,
            }
        };
        let got = *result.as_ref().unwrap_or(&0);
        // The bytes read are the writer's to give back as it sends them (their `Buffered`); the rest now.
        permit.forget();
        budget.add_permits(want - got);
        credit.settle(want as u64, got as u64);
        match result {
            Ok(0) => {
                let _ = out.send(Out::Frame(Down::Shutdown { stream })).await;
                return;
            }
            Ok(n) => {
                let held = Buffered::new(&shared, n, Some(budget.clone()));
                rate.take(n).await;
                if out
                    .send(Out::Encoded(buf.split().freeze(), held))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(e) => {
                let errno = errno::from_io(&e);
                let _ = internal.send(Internal::StreamError { stream, errno }).await;
                return;
            }
        }
    }
}

/// Writes what the page sent to a TCP stream's socket, and grants the page credit for it.
#[allow(clippy::too_many_arguments)]
async fn write_stream(
    stream: StreamId,
    socket: Arc<TcpStream>,
    queue: Arc<WriteQueue>,
    window: Arc<AtomicU64>,
    out: mpsc::Sender<Out>,
    rate: Arc<RateLimit>,
    internal: mpsc::Sender<Internal>,
    shared: Arc<Shared>,
) {
    let batch = shared.config.window() as u64 / 4;
    let mut ungranted = 0u64;
    loop {
        let (next, closing) = queue.next();
        match next {
            Next::Write(bytes, held) => {
                rate.take(bytes.len()).await;
                let result = write_all(&socket, &bytes).await;
                drop(held);
                if let Err(e) = result {
                    // After the page's close(), nobody is left to tell.
                    if !queue.state().close {
                        let errno = errno::from_io(&e);
                        let _ = internal.send(Internal::StreamError { stream, errno }).await;
                    }
                    return;
                }
                shared
                    .metrics
                    .bytes_up
                    .fetch_add(bytes.len() as u64, Relaxed);
                ungranted += bytes.len() as u64;
            }
            Next::Shutdown => {
                let _ = socket2::SockRef::from(&*socket).shutdown(std::net::Shutdown::Write);
            }
            Next::Done => return,
            Next::Wait => {
                queue.more.notified().await;
                continue;
            }
        }
        // Grant credit in batches of a quarter window, so small writes cost no frame back. This never
        // stalls the page: once the queue is written, it holds at least three quarters of its window.
        if !closing && ungranted >= batch {
            window.fetch_add(ungranted, Relaxed);
            let amount = ungranted.min(u64::from(u32::MAX)) as u32;
            ungranted = 0;
            if out
                .send(Out::Frame(Down::Credit { stream, amount }))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

async fn write_all(socket: &TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        socket.writable().await?;
        match socket.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Receives datagrams on a UDP stream's socket and sends them to the page.
async fn receive_datagrams(
    stream: StreamId,
    socket: Arc<UdpSocket>,
    names: Arc<Mutex<HashMap<SocketAddr, u16>>>,
    out: mpsc::Sender<Out>,
    budget: Arc<Semaphore>,
    rate: Arc<RateLimit>,
    shared: Arc<Shared>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            // An ICMP error from an earlier send; an unconnected socket ignores it.
            Err(_) => continue,
        };
        // A datagram from the session's own socket shows the port the session knows it by.
        let own = names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&from)
            .copied();
        let from = match own {
            Some(port) => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            None => shared.lab.udp_visible(from).unwrap_or(from),
        };
        // When the page is behind, drop rather than queue: UDP promises no delivery.
        let Ok(permit) = budget.try_acquire_many(n as u32) else {
            continue;
        };
        permit.forget();
        let held = Buffered::new(&shared, n, Some(budget.clone()));
        rate.take(n).await;
        let datagram = Down::Datagram {
            stream,
            from,
            payload: Bytes::copy_from_slice(&buf[..n]),
        };
        if out.send(Out::Data(datagram, held)).await.is_err() {
            return;
        }
    }
}
