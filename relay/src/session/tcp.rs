//! TCP streams: connect, listen, accept, and the reader and writer of each connected socket.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use soket_protocol::errno;
use soket_protocol::{Down, StreamId, Transport, DATA_HEADER_LEN, MAX_PAYLOAD};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::reach::{dial, Target};
use super::write_queue::{Next, WriteQueue};
use super::{
    protocol_error, unknown, unspecified, Buffered, Credit, End, Failure, Internal, Link, Out,
    Session, Stream,
};
use crate::lab;
use crate::vhost::{Binding, Destination};

/// A connected TCP stream's state in the session.
pub(super) struct Conn {
    pub(super) socket: Arc<TcpStream>,
    pub(super) writer: Arc<WriteQueue>,
    /// Bytes the page may still send: decreased here for each `Data`, increased by the writer as it writes.
    pub(super) window: Arc<AtomicU64>,
    /// Bytes the relay may still send to the page.
    pub(super) read_credit: Arc<Credit>,
    pub(super) reader: AbortHandle,
    pub(super) writer_task: AbortHandle,
    /// The page shut down its sending side; more `Data` is a protocol error.
    pub(super) shut: bool,
}

impl Session {
    /// Starts a TCP connect; its result arrives as `Internal::Connected`.
    pub(super) fn connect(
        &mut self,
        stream: StreamId,
        host: &str,
        port: u16,
    ) -> Result<(), Failure> {
        let target = match self.host.destination(host) {
            Destination::OwnHost { .. } => match self.host.binding(Transport::Tcp, port) {
                // Only a listening stream has a real port that accepts.
                Some(Binding { real }) if self.is_listening(port) => Target::Own(real),
                _ => return Err(Failure::errno(errno::ECONNREFUSED)),
            },
            Destination::Addr(ip) => Target::Addr(
                self.shared
                    .egress
                    .route(self.id, SocketAddr::new(ip, port))?,
            ),
            Destination::Name(name) => Target::Name(self.shared.egress.name(self.id, &name, port)?),
            Destination::Lab => match self.shared.lab.tcp_target(&self.lab, port) {
                Some(real) => Target::Lab(real, self.lab.clone()),
                None => return Err(Failure::errno(errno::ECONNREFUSED)),
            },
        };
        let shown_peer = matches!(target, Target::Lab(..))
            .then(|| SocketAddr::new(IpAddr::V4(lab::LAB_ADDR), port));
        let shared = self.shared.clone();
        let internal = self.internal_tx.clone();
        let session = self.id;
        let task = self.tasks.spawn(async move {
            let result = dial(&shared, session, target, port).await;
            let _ = internal
                .send(Internal::Connected {
                    stream,
                    result,
                    shown_peer,
                })
                .await;
        });
        self.streams.open(stream, Stream::Pending { task });
        Ok(())
    }

    /// Binds a real TCP socket for the session's `port` (shown as `local`).
    pub(super) fn bind_tcp(
        &mut self,
        stream: StreamId,
        port: u16,
        local: SocketAddr,
    ) -> Result<(), Failure> {
        let socket = self
            .shared
            .real_ports
            .bind_tcp()
            .map_err(|e| Failure::io(&e))?;
        let real = socket.local_addr().map_err(|e| Failure::io(&e))?;
        self.host.claim(Transport::Tcp, port, Binding { real });
        self.streams.open(
            stream,
            Stream::Bound {
                socket,
                port,
                local,
            },
        );
        Ok(())
    }

    pub(super) fn is_listening(&self, port: u16) -> bool {
        self.streams
            .values()
            .any(|s| matches!(s, Stream::Listening { port: p, .. } if *p == port))
    }

    /// The peer address the page sees: a connection to the session's own listener shows the virtual port.
    pub(super) fn visible_peer(&self, socket: &TcpStream) -> SocketAddr {
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

    pub(super) fn listening_ports(&self) -> impl Iterator<Item = (u16, &Stream)> {
        self.streams.values().filter_map(|s| match s {
            Stream::Listening { port, .. } => Some((*port, s)),
            _ => None,
        })
    }

    pub(super) fn listen(
        &mut self,
        stream: StreamId,
        backlog: u32,
    ) -> Result<Result<Down, Failure>, End> {
        // As Linux caps a backlog at somaxconn, silently: here at the session's share of unaccepted
        // connections, which is also what its listeners may hold together.
        let backlog = backlog.clamp(1, self.streams.backlog_share());
        match self.streams.get(stream) {
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
        }) = self.streams.replace(stream, Stream::Closed)
        else {
            return Err(unknown(stream));
        };
        let listener = match self.listen_real(socket, backlog, port) {
            Ok(listener) => listener,
            Err(e) => {
                self.host.release(Transport::Tcp, port);
                self.streams.set_closed(stream);
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
        self.streams.replace(stream, listening);
        Ok(Ok(Down::Listening { stream, public }))
    }

    /// Listens on the real socket behind virtual `port`. With SO_REUSEADDR, Linux lets two sockets bind
    /// one port as long as neither listens, so another session may have listened on ours first: then
    /// take another real port.
    pub(super) fn listen_real(
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

    pub(super) fn data(&mut self, stream: StreamId, payload: Bytes) -> Result<(), End> {
        match self.streams.get(stream) {
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

    pub(super) fn credit(&mut self, stream: StreamId, amount: u32) -> Result<(), End> {
        let credit = match self.streams.get(stream) {
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

    /// Starts the reader and writer of a connected stream.
    pub(super) fn spawn_conn(&mut self, stream: StreamId, socket: TcpStream) -> Conn {
        let _ = socket.set_nodelay(true);
        let socket = Arc::new(socket);
        let window = u64::from(self.window);
        let read_credit = Arc::new(Credit::new(window, window));
        let reader = self.tasks.spawn(read_stream(
            self.link(stream),
            socket.clone(),
            read_credit.clone(),
        ));
        let writer = Arc::new(WriteQueue::new(&self.shared));
        let window_left = Arc::new(AtomicU64::new(window));
        let writer_task = self.tasks.spawn(write_stream(
            self.link(stream),
            socket.clone(),
            writer.clone(),
            window_left.clone(),
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
}

/// Accepts connections while the page has room for them (the listener's credit is its backlog).
pub(super) async fn accept_connections(
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
async fn read_stream(link: Link, socket: Arc<TcpStream>, credit: Arc<Credit>) {
    let Link {
        stream,
        out,
        out_budget: budget,
        rate,
        shared,
        ..
    } = &link;
    let stream = *stream;
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
                let held = Buffered::new(shared, n, Some(budget.clone()));
                rate.take(n).await;
                if out
                    .send(Out::Data(buf.split().freeze(), held))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(e) => {
                link.stream_error(&e).await;
                return;
            }
        }
    }
}

/// Writes what the page sent to a TCP stream's socket, and grants the page credit for it.
async fn write_stream(
    link: Link,
    socket: Arc<TcpStream>,
    queue: Arc<WriteQueue>,
    window: Arc<AtomicU64>,
) {
    let Link {
        stream,
        out,
        rate,
        shared,
        ..
    } = &link;
    let stream = *stream;
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
                    if !queue.is_closed() {
                        link.stream_error(&e).await;
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
            Next::Done(counted) => {
                // A closed stream counts until its socket is let go of, not only until its last byte.
                drop(socket);
                drop(counted);
                return;
            }
            Next::Wait => {
                queue.wait().await;
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

pub(super) async fn write_all(socket: &TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
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
