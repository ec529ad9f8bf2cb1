//! The handles a program holds: a connection, a listener, a UDP socket. Each is a socket of the stack
//! (an `Fd`) and closes it when dropped, as a Python socket is closed when it is collected.
//!
//! Every call is the stack's own call (`recv`, `send`, `accept`, ...), waited for by the driver when the
//! stack says it would block; so flow control is the page's: received bytes are credited back to the relay
//! when the program takes them, and a program that stops reading stops the relay from sending.

use std::net::SocketAddr;

use bytes::Bytes;
use soket_netstack::Fd;
use soket_protocol::{StreamId, MAX_PAYLOAD};

use crate::{Client, Error};

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
    /// Closes the socket now (`reset`: with `SO_LINGER` 0). Fails only if the session is over, when
    /// nothing could tell the relay.
    fn close(self, reset: bool) -> Result<(), Error> {
        let shared = self.client.shared();
        if reset {
            shared.with(|stack| stack.reset(self.fd));
        }
        // Dropping `self` closes it (a reset socket is gone already, so that does nothing).
        let closing = shared.closing();
        drop(self);
        match closing {
            Some(why) => Err(Error::SessionEnded(why)),
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
    fn socket(&self, transport: soket_protocol::Transport) -> Owned {
        // Programs are the browser's notion; here every socket belongs to program 0.
        let fd = self.shared().with(|stack| stack.socket(0, transport));
        Owned {
            client: self.clone(),
            fd,
        }
    }

    /// Opens a TCP connection through the relay.
    pub async fn connect_tcp(&self, host: &str, port: u16) -> Result<TcpConn, Error> {
        let socket = self.socket(soket_protocol::Transport::Tcp);
        let fd = socket.fd;
        let mut started = false;
        let (stream, local, peer) = self
            .shared()
            .wait(|stack| {
                if !std::mem::replace(&mut started, true) {
                    stack.connect(fd, host, port)?;
                }
                stack.take_pending(fd).unwrap_or(Err(would_block()))?;
                // Read at once: the connection may end before the caller looks.
                Ok((stack.stream(fd), stack.local_addr(fd)?, stack.peer(fd)))
            })
            .await?;
        let (Some(stream), Some(peer)) = (stream, peer) else {
            return Err(Error::Unexpected(format!(
                "{host}:{port}: connected without a stream"
            )));
        };
        Ok(TcpConn {
            socket,
            stream,
            local,
            peer,
        })
    }

    /// Binds a TCP socket and listens on it (`port` 0: any).
    pub async fn listen(&self, host: &str, port: u16, backlog: u32) -> Result<TcpListener, Error> {
        let socket = self.socket(soket_protocol::Transport::Tcp);
        let fd = socket.fd;
        self.bind(fd, host, port).await?;
        let mut started = false;
        let (stream, local, public) = self
            .shared()
            .wait(|stack| {
                if !std::mem::replace(&mut started, true) {
                    stack.listen(fd, backlog)?;
                }
                stack.take_pending(fd).unwrap_or(Err(would_block()))?;
                let public = stack
                    .listeners()
                    .into_iter()
                    .find(|listener| listener.0 == fd)
                    .map(|listener| listener.3);
                Ok((stack.stream(fd), stack.local_addr(fd)?, public))
            })
            .await?;
        let (Some(stream), Some(public)) = (stream, public) else {
            return Err(Error::Unexpected(format!(
                "{host}:{port}: listening without a stream"
            )));
        };
        Ok(TcpListener {
            socket,
            stream,
            local,
            public,
        })
    }

    /// Binds a UDP socket (`port` 0: any).
    pub async fn bind_udp(&self, host: &str, port: u16) -> Result<UdpSocket, Error> {
        let socket = self.socket(soket_protocol::Transport::Udp);
        let fd = socket.fd;
        self.bind(fd, host, port).await?;
        let (stream, local) = self
            .shared()
            .with(|stack| Ok((stack.stream(fd), stack.local_addr(fd)?)))
            .map_err(Error::from_stack)?;
        let Some(stream) = stream else {
            return Err(Error::Unexpected(format!(
                "{host}:{port}: bound without a stream"
            )));
        };
        Ok(UdpSocket {
            socket,
            stream,
            local,
        })
    }

    /// `bind()`, waited for.
    async fn bind(&self, fd: Fd, host: &str, port: u16) -> Result<(), Error> {
        let mut started = false;
        self.shared()
            .wait(|stack| {
                if !std::mem::replace(&mut started, true) {
                    stack.bind(fd, host, port)?;
                }
                stack.take_pending(fd).unwrap_or(Err(would_block()))
            })
            .await
    }
}

fn would_block() -> soket_netstack::Error {
    soket_netstack::Error::WouldBlock
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
        let fd = self.socket.fd;
        let shared = self.socket.client.shared();
        shared.wait(|stack| stack.recv(fd, max, false)).await
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
        let fd = self.socket.fd;
        let shared = self.socket.client.shared();
        let mut sent = 0;
        while sent < data.len() {
            sent += shared.wait(|stack| stack.send(fd, &data[sent..])).await?;
        }
        Ok(())
    }

    /// `shutdown(SHUT_WR)`: the peer reads the end of the stream after what was written.
    pub async fn shutdown(&mut self) -> Result<(), Error> {
        let fd = self.socket.fd;
        self.socket
            .client
            .shared()
            .with(|stack| stack.shutdown(fd, SHUT_WR))
            .map_err(Error::from_stack)
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
        let fd = self.socket.fd;
        let client = &self.socket.client;
        // Owned as soon as the stack hands it out (no await between), so that it is closed on any path.
        let (conn, peer, stream, local) = client
            .shared()
            .wait(|stack| {
                let (conn, peer) = stack.accept(fd)?;
                Ok((conn, peer, stack.stream(conn), stack.local_addr(conn)))
            })
            .await?;
        let socket = Owned {
            client: client.clone(),
            fd: conn,
        };
        let (Some(stream), Ok(local)) = (stream, local) else {
            return Err(Error::Unexpected(format!(
                "accepted {conn:?} without a stream"
            )));
        };
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
        let fd = self.socket.fd;
        self.socket
            .client
            .shared()
            .with(|stack| stack.send_to(fd, host, port, data))
            .map(drop)
            .map_err(Error::from_stack)
    }

    /// The next datagram, or the error the relay reported for an earlier send.
    pub async fn recv_from(&mut self) -> Result<(Bytes, SocketAddr), Error> {
        let fd = self.socket.fd;
        let (payload, from) = self
            .socket
            .client
            .shared()
            .wait(|stack| stack.recv_from(fd, MAX_DATAGRAM, false))
            .await?;
        let from = from.ok_or_else(|| Error::Unexpected("a datagram without a sender".into()))?;
        Ok((payload, from))
    }

    pub async fn close(self) -> Result<(), Error> {
        self.socket.close(false)
    }
}
