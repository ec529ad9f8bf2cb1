//! The handles a program holds: a connection, a listener, a UDP socket. Each is a socket of the stack
//! (an `Fd`) and closes it when dropped, as a Python socket is closed when it is collected.
//!
//! Every call is the stack's own call (`recv`, `send`, `accept`, ...), waited for by the driver when the
//! stack says it would block; so flow control is the page's: received bytes are credited back to the relay
//! when the program takes them, and a program that stops reading stops the relay from sending.

use std::net::SocketAddr;

use bytes::Bytes;
use soket_netstack::{Fd, Stack};
use soket_protocol::{StreamId, Transport, MAX_PAYLOAD};

use crate::{Client, Error, StackError};

/// The most a datagram read takes (a UDP payload is at most 65,507 bytes over IPv4).
const MAX_DATAGRAM: usize = 65_535;

/// `SHUT_WR`, as Python's `socket.shutdown` takes it.
const SHUT_WR: i32 = 1;

/// A socket of the stack, closed when dropped.
struct Owned {
    client: Client,
    fd: Fd,
}

impl Owned {
    /// A call on this socket that does not wait.
    fn with<T>(
        &self,
        call: impl FnOnce(&mut Stack, Fd) -> Result<T, StackError>,
    ) -> Result<T, Error> {
        let fd = self.fd;
        self.client
            .shared()
            .with(|stack| call(stack, fd))
            .map_err(Error::from_stack)
    }

    /// A call on this socket, waited for while the stack says it would block.
    async fn wait<T>(
        &self,
        mut attempt: impl FnMut(&mut Stack, Fd) -> Result<T, StackError>,
    ) -> Result<T, Error> {
        let fd = self.fd;
        self.client.shared().wait(|stack| attempt(stack, fd)).await
    }

    /// An operation the relay answers (`bind`, `listen`, `connect`): started once, then waited for.
    async fn relay_op(
        &self,
        start: impl FnOnce(&mut Stack, Fd) -> Result<(), StackError>,
    ) -> Result<(), Error> {
        let mut start = Some(start);
        self.wait(|stack, fd| {
            if let Some(start) = start.take() {
                start(stack, fd)?;
            }
            stack
                .take_pending(fd)
                .unwrap_or(Err(StackError::WouldBlock))
        })
        .await
    }

    /// The stream and the session-side address, once the relay has answered.
    fn addrs(&self) -> Result<(StreamId, SocketAddr), Error> {
        let (stream, local) =
            self.with(|stack, fd| Ok((stack.stream(fd), stack.local_addr(fd)?)))?;
        let stream =
            stream.ok_or_else(|| Error::Unexpected(format!("{:?} has no stream", self.fd)))?;
        Ok((stream, local))
    }

    /// Closes the socket now (`reset`: with `SO_LINGER` 0). Fails only if the session is over, when
    /// nothing could tell the relay.
    fn close(self, reset: bool) -> Result<(), Error> {
        if reset {
            self.client.shared().with(|stack| stack.reset(self.fd));
        }
        match self.client.shared().closing() {
            Some(why) => Err(Error::SessionEnded(why)),
            // Dropping `self` closes it (a reset socket is gone already: that does nothing).
            None => Ok(()),
        }
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        let fd = self.fd;
        self.client.shared().with(|stack| stack.close(fd));
    }
}

impl Client {
    /// A new socket of the stack, owned by the handle made of it.
    fn socket(&self, transport: Transport) -> Owned {
        // Programs are the browser's notion; here every socket belongs to program 0.
        let fd = self.shared().with(|stack| stack.socket(0, transport));
        Owned {
            client: self.clone(),
            fd,
        }
    }

    /// Opens a TCP connection through the relay.
    pub async fn connect_tcp(&self, host: &str, port: u16) -> Result<TcpConn, Error> {
        let socket = self.socket(Transport::Tcp);
        socket
            .relay_op(|stack, fd| stack.connect(fd, host, port))
            .await?;
        // What the relay reported, even if the connection ended since (a daytime server's does at once).
        let (stream, local) = socket.addrs()?;
        let peer = socket.with(|stack, fd| Ok(stack.peer(fd)))?;
        let peer = peer.ok_or_else(|| Error::Unexpected(format!("{host}:{port}: no peer")))?;
        Ok(TcpConn {
            socket,
            stream,
            local,
            peer,
        })
    }

    /// Binds a TCP socket and listens on it (`port` 0: any).
    pub async fn listen(&self, host: &str, port: u16, backlog: u32) -> Result<TcpListener, Error> {
        let socket = self.socket(Transport::Tcp);
        socket
            .relay_op(|stack, fd| stack.bind(fd, host, port))
            .await?;
        socket
            .relay_op(|stack, fd| stack.listen(fd, backlog))
            .await?;
        let (stream, local) = socket.addrs()?;
        let public = socket.with(|stack, fd| {
            let mut listeners = stack.listeners().into_iter();
            Ok(listeners.find(|listener| listener.0 == fd).map(|l| l.3))
        })?;
        // The relay may have closed the listener meanwhile: it is no longer listening.
        let public =
            public.ok_or_else(|| Error::Unexpected(format!("{host}:{port}: not listening")))?;
        Ok(TcpListener {
            socket,
            stream,
            local,
            public,
        })
    }

    /// Binds a UDP socket (`port` 0: any).
    pub async fn bind_udp(&self, host: &str, port: u16) -> Result<UdpSocket, Error> {
        let socket = self.socket(Transport::Udp);
        socket
            .relay_op(|stack, fd| stack.bind(fd, host, port))
            .await?;
        let (stream, local) = socket.addrs()?;
        Ok(UdpSocket {
            socket,
            stream,
            local,
        })
    }
}

/// A connected TCP stream.
pub struct TcpConn {
    socket: Owned,
    pub stream: StreamId,
    pub local: SocketAddr,
    pub peer: SocketAddr,
}

impl TcpConn {
    /// The next bytes from the peer (one frame's worth at most); `None` at end of stream.
    pub async fn read(&mut self) -> Result<Option<Bytes>, Error> {
        let bytes = self.recv(MAX_PAYLOAD).await?;
        Ok((!bytes.is_empty()).then_some(bytes))
    }

    /// Up to `max` bytes, waiting for some; empty at end of stream.
    async fn recv(&mut self, max: usize) -> Result<Bytes, Error> {
        self.socket
            .wait(|stack, fd| stack.recv(fd, max, false))
            .await
    }

    /// Exactly `n` bytes, or an error if the stream ends first.
    pub async fn read_exact(&mut self, n: usize) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let bytes = self.recv(n - out.len()).await?;
            if bytes.is_empty() {
                return Err(Error::Unexpected(format!(
                    "end of stream after {} of {n} bytes",
                    out.len()
                )));
            }
            out.extend_from_slice(&bytes);
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
        let mut sent = 0;
        while sent < data.len() {
            sent += self
                .socket
                .wait(|stack, fd| stack.send(fd, &data[sent..]))
                .await?;
        }
        Ok(())
    }

    /// `shutdown(SHUT_WR)`: the peer reads the end of the stream after what was written.
    pub async fn shutdown(&mut self) -> Result<(), Error> {
        self.socket.with(|stack, fd| stack.shutdown(fd, SHUT_WR))
    }

    /// Closes the stream (FIN after what was written; a reset if bytes were left unread, as Linux does).
    pub async fn close(self) -> Result<(), Error> {
        self.socket.close(false)
    }

    /// Closes the stream with a reset.
    pub async fn reset(self) -> Result<(), Error> {
        self.socket.close(true)
    }
}

/// A listening TCP socket.
pub struct TcpListener {
    socket: Owned,
    pub stream: StreamId,
    /// The address the session sees (`127.0.0.1:port`).
    pub local: SocketAddr,
    /// The `host:port` from which the outside world reaches it.
    pub public: String,
}

impl TcpListener {
    /// The next connection; grants the relay room for one more.
    pub async fn accept(&mut self) -> Result<TcpConn, Error> {
        let (fd, peer) = self.socket.wait(|stack, fd| stack.accept(fd)).await?;
        // Owned at once (no await between), so that it is closed on every path.
        let socket = Owned {
            client: self.socket.client.clone(),
            fd,
        };
        let (stream, local) = socket.addrs()?;
        Ok(TcpConn {
            socket,
            stream,
            local,
            peer,
        })
    }

    pub async fn close(self) -> Result<(), Error> {
        self.socket.close(false)
    }
}

/// A bound UDP socket.
pub struct UdpSocket {
    socket: Owned,
    pub stream: StreamId,
    pub local: SocketAddr,
}

impl UdpSocket {
    /// Sends one datagram; a refusal comes back as the error of a later call, as on Linux.
    pub async fn send_to(&self, host: &str, port: u16, data: &[u8]) -> Result<(), Error> {
        self.socket
            .with(|stack, fd| stack.send_to(fd, host, port, data))
            .map(drop)
    }

    /// The next datagram, or the error the relay reported for an earlier send.
    pub async fn recv_from(&mut self) -> Result<(Bytes, SocketAddr), Error> {
        let (payload, from) = self
            .socket
            .wait(|stack, fd| stack.recv_from(fd, MAX_DATAGRAM, false))
            .await?;
        let from = from.ok_or_else(|| Error::Unexpected("a datagram without a sender".into()))?;
        Ok((payload, from))
    }

    pub async fn close(self) -> Result<(), Error> {
        self.socket.close(false)
    }
}
