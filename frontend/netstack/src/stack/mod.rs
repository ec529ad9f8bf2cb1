//! The table of a page's sockets: the calls Python's `_socket` makes, and what frames from the relay do.
//!
//! Calls that need the relay's answer (`bind`, `listen`, `connect`) send their frame and leave the socket's
//! `pending` at `Waiting`; the caller waits for [`Stack::take_pending`] to give the result. Every other call
//! is answered at once. Ids: each socket gets a [`Fd`] at once, and a relay stream id only when the relay
//! first hears of it, so that stream ids increase in the order the relay sees them, as `soket.v1` requires.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bytes::Bytes;
use soket_protocol::errno::{
    self, describe, EALREADY, EBADF, EDESTADDRREQ, EISCONN, ENETDOWN, EOPNOTSUPP,
};
use soket_protocol::{Down, Failure, StreamId, Transport, Up, MAX_PAYLOAD};

use crate::socket::{Connected, Fd, Pending, Readiness, Socket, State};

mod frames;

/// Why a call did not succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// Nothing to do yet: a blocking call waits for its socket to change and tries again.
    WouldBlock,
    /// Fails as CPython on Linux would: this errno, this message.
    Errno(Failure),
}

impl Error {
    pub fn errno(errno: i32) -> Error {
        Error::Errno(Failure::errno(errno))
    }
}

impl From<Failure> for Error {
    fn from(failure: Failure) -> Error {
        Error::Errno(failure)
    }
}

/// The largest UDP payload over IPv4.
const MAX_DATAGRAM: usize = 65_507;

/// A name resolution: `None` until the relay answers.
type Resolution = Option<Result<Vec<IpAddr>, Failure>>;

/// The relay broke `soket.v1` (sent more than the page's credit, or a frame for a stream never seen).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation(pub String);

/// A page's sockets.
#[derive(Debug)]
pub struct Stack {
    hostname: String,
    public_host: String,
    /// Each stream's initial credit, in both directions (from `Welcome`).
    window: u32,
    sockets: BTreeMap<Fd, Socket>,
    by_stream: HashMap<StreamId, Fd>,
    next_fd: u32,
    next_stream: u32,
    frames: VecDeque<Up>,
    resolutions: HashMap<StreamId, Resolution>,
    /// Lookups of connected UDP peers (`connect()` on a UDP socket), by request id: the socket they are for.
    peer_lookups: HashMap<StreamId, Fd>,
    /// Pings whose `Pong` someone waits for ([`Stack::round_trip`]): `None` until it comes.
    round_trips: HashMap<StreamId, Option<Result<(), Failure>>>,
    /// Why the relay is gone, once it is.
    lost: Option<String>,
}

impl Default for Stack {
    fn default() -> Stack {
        Stack::new()
    }
}

impl Stack {
    pub fn new() -> Stack {
        Stack {
            hostname: "localhost".into(),
            public_host: String::new(),
            window: soket_protocol::INITIAL_WINDOW,
            sockets: BTreeMap::new(),
            by_stream: HashMap::new(),
            next_fd: 3,
            next_stream: 1,
            frames: VecDeque::new(),
            resolutions: HashMap::new(),
            peer_lookups: HashMap::new(),
            round_trips: HashMap::new(),
            lost: None,
        }
    }

    /// The session's host name (`socket.gethostname()`).
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// Frames for the relay, in order.
    pub fn take_frames(&mut self) -> impl Iterator<Item = Up> + '_ {
        self.frames.drain(..)
    }

    fn new_stream(&mut self) -> StreamId {
        let id = StreamId(self.next_stream);
        self.next_stream += 1;
        id
    }

    /// A fresh stream id that no socket of this stack will use, for a driver that sends frames of its own
    /// (the native client's bad-input tests): what the relay sends for it is dropped, not a violation.
    pub fn reserve_stream(&mut self) -> StreamId {
        self.new_stream()
    }

    /// The relay's stream for `fd`, once the relay has heard of it.
    pub fn stream(&self, fd: Fd) -> Option<StreamId> {
        self.sockets.get(&fd).and_then(|socket| socket.stream)
    }

    /// Every open socket, by number.
    pub fn sockets(&self) -> impl Iterator<Item = (Fd, &Socket)> {
        self.sockets.iter().map(|(fd, socket)| (*fd, socket))
    }

    /// The socket `fd`, if it is open.
    pub fn socket_at(&self, fd: Fd) -> Option<&Socket> {
        self.sockets.get(&fd)
    }

    /// The socket the relay's `stream` belongs to.
    pub fn fd_of(&self, stream: StreamId) -> Option<Fd> {
        self.by_stream.get(&stream).copied()
    }

    fn get(&mut self, fd: Fd) -> Result<&mut Socket, Error> {
        self.sockets.get_mut(&fd).ok_or_else(|| Error::errno(EBADF))
    }

    /// `socket()`: a new socket owned by program `owner`.
    pub fn socket(&mut self, owner: u32, transport: Transport) -> Fd {
        let fd = Fd(self.next_fd);
        self.next_fd += 1;
        self.sockets.insert(fd, Socket::new(transport, owner));
        fd
    }

    /// Makes the relay hear of `fd` with `first` (a frame built for the new stream id).
    fn open_stream(&mut self, fd: Fd, first: impl FnOnce(StreamId) -> Up) -> StreamId {
        let stream = self.new_stream();
        self.by_stream.insert(stream, fd);
        self.frames.push_back(first(stream));
        if let Some(socket) = self.sockets.get_mut(&fd) {
            socket.stream = Some(stream);
        }
        stream
    }

    fn check_relay(&self) -> Result<(), Error> {
        match &self.lost {
            Some(why) => Err(Failure::with(ENETDOWN, why.clone()).into()),
            None => Ok(()),
        }
    }

    /// `bind()`: answered by the relay; wait for [`Stack::take_pending`].
    pub fn bind(&mut self, fd: Fd, host: &str, port: u16) -> Result<(), Error> {
        self.check_relay()?;
        let socket = self.get(fd)?;
        if socket.state != State::Fresh {
            return Err(Error::errno(errno::EINVAL));
        }
        let transport = socket.transport;
        socket.state = State::Binding;
        socket.pending = Some(Pending::Waiting);
        let host = host.to_owned();
        self.open_stream(fd, |stream| Up::Bind {
            stream,
            transport,
            host,
            port,
        });
        Ok(())
    }

    /// `listen()`: answered by the relay. An unbound socket is bound to any port first, as Linux does.
    pub fn listen(&mut self, fd: Fd, backlog: u32) -> Result<(), Error> {
        self.check_relay()?;
        let socket = self.get(fd)?;
        if socket.transport != Transport::Tcp {
            return Err(Error::errno(EOPNOTSUPP));
        }
        match socket.state {
            State::Listening => {
                socket.pending = Some(Pending::Done(Ok(())));
                return Ok(());
            }
            State::Fresh => {
                socket.state = State::ListenStarting;
                socket.pending = Some(Pending::Waiting);
                let bind = |stream| Up::Bind {
                    stream,
                    transport: Transport::Tcp,
                    host: String::new(),
                    port: 0,
                };
                let stream = self.open_stream(fd, bind);
                self.frames.push_back(Up::Listen { stream, backlog });
            }
            State::Bound => {
                socket.state = State::ListenStarting;
                socket.pending = Some(Pending::Waiting);
                let stream = socket.stream.ok_or_else(|| Error::errno(errno::EINVAL))?;
                self.frames.push_back(Up::Listen { stream, backlog });
            }
            _ => return Err(Error::errno(errno::EINVAL)),
        }
        Ok(())
    }

    /// `connect()`. TCP: answered by the relay. UDP: answered at once; sets the default destination, and
    /// asks the relay where that is, so that from then on only its datagrams are kept ([`Connected`]).
    pub fn connect(&mut self, fd: Fd, host: &str, port: u16) -> Result<(), Error> {
        self.check_relay()?;
        let socket = self.get(fd)?;
        if let Some(error) = socket.error.take() {
            return Err(error.into());
        }
        if socket.transport == Transport::Udp {
            socket.default_peer = Some((host.to_owned(), port));
            socket.pending = Some(Pending::Done(Ok(())));
            if socket.state == State::Fresh {
                self.implicit_bind(fd);
            }
            let lookup = self.new_stream();
            self.frames.push_back(Up::Resolve {
                stream: lookup,
                host: host.to_owned(),
            });
            self.peer_lookups.insert(lookup, fd);
            if let Some(socket) = self.sockets.get_mut(&fd) {
                socket.connected = Some(Connected::Resolving(lookup));
            }
            return Ok(());
        }
        match socket.state {
            State::Connecting => return Err(Error::errno(EALREADY)),
            State::Connected => return Err(Error::errno(EISCONN)),
            State::Fresh => {}
            // A socket bound before connecting: the relay's connect makes a stream of its own.
            State::Bound => self.release_stream(fd),
            _ => return Err(Error::errno(errno::EINVAL)),
        }
        let socket = self.get(fd)?;
        socket.state = State::Connecting;
        socket.pending = Some(Pending::Waiting);
        let host = host.to_owned();
        self.open_stream(fd, |stream| Up::Connect { stream, host, port });
        Ok(())
    }

    /// The answer to the last `bind`/`listen`/`connect` on `fd`, once there is one.
    pub fn take_pending(&mut self, fd: Fd) -> Option<Result<(), Error>> {
        let socket = self.sockets.get_mut(&fd)?;
        match socket.pending.take() {
            Some(Pending::Waiting) => {
                socket.pending = Some(Pending::Waiting);
                None
            }
            Some(Pending::Done(result)) => Some(result.map_err(Error::from)),
            None => Some(Err(Error::errno(errno::EINVAL))),
        }
    }

    /// Tells the relay to forget `fd`'s stream and makes `fd` fresh again.
    fn release_stream(&mut self, fd: Fd) {
        if let Some(socket) = self.sockets.get_mut(&fd) {
            if let Some(stream) = socket.stream.take() {
                self.by_stream.remove(&stream);
                self.frames.push_back(Up::Close { stream });
            }
            socket.state = State::Fresh;
            socket.local = None;
        }
    }

    /// UDP sockets bind to any port on first use; the relay's answer fills in the address later.
    fn implicit_bind(&mut self, fd: Fd) {
        if let Some(socket) = self.sockets.get_mut(&fd) {
            socket.state = State::Binding;
        }
        self.open_stream(fd, |stream| Up::Bind {
            stream,
            transport: Transport::Udp,
            host: String::new(),
            port: 0,
        });
    }

    /// `send()`: as much as the credit allows; `WouldBlock` when there is none.
    pub fn send(&mut self, fd: Fd, data: &[u8]) -> Result<usize, Error> {
        self.check_relay()?;
        let socket = self.get(fd)?;
        if socket.transport == Transport::Udp {
            let (host, port) = socket
                .default_peer
                .clone()
                .ok_or_else(|| Error::errno(EDESTADDRREQ))?;
            return self.send_to(fd, &host, port, data);
        }
        if let Some(error) = socket.error.take() {
            return Err(error.into());
        }
        // As Linux's tcp_sendmsg: a connect under way is waited for (EAGAIN if non-blocking); a socket
        // in any other state than connected, never connected included, gets EPIPE.
        match socket.state {
            State::Connected if socket.shut_write => return Err(Error::errno(errno::EPIPE)),
            State::Connected => {}
            State::Connecting => return Err(Error::WouldBlock),
            _ => return Err(Error::errno(errno::EPIPE)),
        }
        if data.is_empty() {
            return Ok(0);
        }
        if socket.send_credit == 0 {
            return Err(Error::WouldBlock);
        }
        let n = data.len().min(socket.send_credit as usize);
        socket.send_credit -= n as u32;
        let stream = socket.stream.ok_or_else(|| Error::errno(errno::ENOTCONN))?;
        for chunk in data[..n].chunks(MAX_PAYLOAD) {
            self.frames.push_back(Up::Data {
                stream,
                payload: Bytes::copy_from_slice(chunk),
            });
        }
        Ok(n)
    }

    /// `sendto()`: a whole datagram at once (UDP never blocks here).
    pub fn send_to(&mut self, fd: Fd, host: &str, port: u16, data: &[u8]) -> Result<usize, Error> {
        self.check_relay()?;
        let socket = self.get(fd)?;
        if socket.transport == Transport::Tcp {
            return match socket.state {
                State::Connected => Err(Error::errno(EISCONN)),
                _ => Err(Error::errno(errno::EPIPE)),
            };
        }
        if let Some(error) = socket.error.take() {
            return Err(error.into());
        }
        if data.len() > MAX_DATAGRAM {
            return Err(Error::errno(errno::EMSGSIZE));
        }
        if socket.state == State::Fresh {
            self.implicit_bind(fd);
        }
        let stream = self
            .get(fd)?
            .stream
            .ok_or_else(|| Error::errno(errno::EINVAL))?;
        let payload = Bytes::copy_from_slice(data);
        self.frames.push_back(Up::SendTo {
            stream,
            host: host.to_owned(),
            port,
            payload,
        });
        Ok(data.len())
    }

    /// `recv()`: buffered bytes at once, `b""` at end of stream, `WouldBlock` while there are none.
    pub fn recv(&mut self, fd: Fd, max: usize, peek: bool) -> Result<Bytes, Error> {
        let socket = self.get(fd)?;
        if socket.transport == Transport::Udp {
            return self.recv_from(fd, max, peek).map(|(bytes, _)| bytes);
        }
        if socket.received_len > 0 && max > 0 {
            let bytes = socket.take_received(max, peek);
            if !peek {
                self.credit(fd, bytes.len() as u32);
            }
            return Ok(bytes);
        }
        if let Some(error) = socket.error.take() {
            // Raised once; afterwards the stream reads as ended, as after a reset on Linux.
            socket.eof = true;
            return Err(error.into());
        }
        match socket.state {
            State::Connected | State::Gone if socket.eof || socket.shut_read || max == 0 => {
                Ok(Bytes::new())
            }
            State::Connected => Err(Error::WouldBlock),
            State::Gone => Ok(Bytes::new()),
            _ => Err(Error::errno(errno::ENOTCONN)),
        }
    }

    /// Gives the relay credit for bytes the program took, a quarter window at a time.
    fn credit(&mut self, fd: Fd, n: u32) {
        let batch = self.window / 4;
        let Some(socket) = self.sockets.get_mut(&fd) else {
            return;
        };
        socket.uncredited += n;
        if socket.uncredited >= batch {
            if let Some(stream) = socket.stream {
                let amount = std::mem::take(&mut socket.uncredited);
                self.frames.push_back(Up::Credit { stream, amount });
            }
        }
    }

    /// `recvfrom()`: one datagram (cut to `max`, the rest of it lost, as on Linux), with its sender.
    pub fn recv_from(
        &mut self,
        fd: Fd,
        max: usize,
        peek: bool,
    ) -> Result<(Bytes, Option<SocketAddr>), Error> {
        let socket = self.get(fd)?;
        if socket.transport == Transport::Tcp {
            let peer = socket.peer;
            return self.recv(fd, max, peek).map(|bytes| (bytes, peer));
        }
        if let Some(error) = socket.error.take() {
            return Err(error.into());
        }
        if socket.state == State::Fresh {
            // Linux lets an unbound UDP socket wait; it just never receives anything.
            return Err(Error::WouldBlock);
        }
        let Some((from, payload)) = (if peek {
            socket.datagrams.front().cloned()
        } else {
            socket.datagrams.pop_front()
        }) else {
            return Err(Error::WouldBlock);
        };
        if !peek {
            socket.datagram_bytes -= payload.len();
        }
        Ok((payload.slice(..payload.len().min(max)), Some(from)))
    }

    /// `accept()`: a pending connection at once (and room for one more granted), else `WouldBlock`.
    pub fn accept(&mut self, fd: Fd) -> Result<(Fd, SocketAddr), Error> {
        // Without the relay, a listener has nothing to accept: ENETDOWN, as for every other call.
        self.check_relay()?;
        let socket = self.get(fd)?;
        if socket.state != State::Listening {
            return Err(Error::errno(errno::EINVAL));
        }
        let Some(conn) = socket.accepts.pop_front() else {
            return Err(Error::WouldBlock);
        };
        if let Some(stream) = socket.stream {
            self.frames.push_back(Up::Credit { stream, amount: 1 });
        }
        let peer = self
            .sockets
            .get(&conn)
            .and_then(|s| s.peer)
            .unwrap_or_else(unspecified);
        Ok((conn, peer))
    }

    /// `shutdown()`: `how` is `SHUT_RD` (0), `SHUT_WR` (1) or `SHUT_RDWR` (2).
    pub fn shutdown(&mut self, fd: Fd, how: i32) -> Result<(), Error> {
        let socket = self.get(fd)?;
        if !(0..=2).contains(&how) {
            return Err(Error::errno(errno::EINVAL));
        }
        if socket.transport != Transport::Tcp || socket.state != State::Connected {
            return Err(Error::errno(errno::ENOTCONN));
        }
        // SHUT_RD only ends waiting, as on Linux: bytes already here or still coming are read as
        // usual, and `recv` returns b"" instead of blocking once there are none.
        if how != 1 {
            socket.shut_read = true;
        }
        if how != 0 && !socket.shut_write {
            socket.shut_write = true;
            if let Some(stream) = socket.stream {
                self.frames.push_back(Up::Shutdown { stream });
            }
        }
        Ok(())
    }

    /// `close()`. A listener's connections that were never accepted are reset, as Linux does, and so is a
    /// connection closed with bytes unread.
    pub fn close(&mut self, fd: Fd) {
        self.close_with(fd, false);
    }

    /// `close()` after `SO_LINGER` on with a zero timeout: the connection is reset, whatever was read.
    pub fn reset(&mut self, fd: Fd) {
        self.close_with(fd, true);
    }

    fn close_with(&mut self, fd: Fd, reset: bool) {
        let Some(socket) = self.sockets.remove(&fd) else {
            return;
        };
        for conn in &socket.accepts {
            if let Some(accepted) = self.sockets.remove(conn) {
                if let Some(stream) = accepted.stream {
                    self.by_stream.remove(&stream);
                    self.frames.push_back(Up::Reset { stream });
                }
            }
        }
        if let Some(stream) = socket.stream {
            self.by_stream.remove(&stream);
            if self.lost.is_none() {
                // Closing a connection with bytes unread resets it, as Linux does (RFC 2525): the peer
                // gets ECONNRESET instead of a clean end of stream, so it knows they were lost.
                let unread = socket.transport == Transport::Tcp && socket.received_len > 0;
                self.frames.push_back(if reset || unread {
                    Up::Reset { stream }
                } else {
                    Up::Close { stream }
                });
            }
        }
    }

    /// Closes every socket of a program that ended or was stopped.
    pub fn close_owner(&mut self, owner: u32) {
        let fds: Vec<Fd> = self
            .sockets
            .iter()
            .filter(|(_, s)| s.owner == owner)
            .map(|(fd, _)| *fd)
            .collect();
        for fd in fds {
            self.close(fd);
        }
    }

    pub fn readiness(&self, fd: Fd) -> Result<Readiness, Error> {
        self.sockets
            .get(&fd)
            .map(Socket::readiness)
            .ok_or_else(|| Error::errno(EBADF))
    }

    /// `getsockname()`: `0.0.0.0:0` before the relay assigned an address.
    pub fn local_addr(&self, fd: Fd) -> Result<SocketAddr, Error> {
        let socket = self.sockets.get(&fd).ok_or_else(|| Error::errno(EBADF))?;
        Ok(socket.local.unwrap_or_else(unspecified))
    }

    /// `getpeername()`.
    pub fn peer_addr(&self, fd: Fd) -> Result<SocketAddr, Error> {
        let socket = self.sockets.get(&fd).ok_or_else(|| Error::errno(EBADF))?;
        match (socket.state, socket.peer) {
            (State::Connected, Some(peer)) => Ok(peer),
            _ => Err(Error::errno(errno::ENOTCONN)),
        }
    }

    /// The peer the relay reported for `fd`, whatever became of the connection since: for a driver that
    /// reports it with the connection (Python asks [`Stack::peer_addr`], which follows the state).
    pub fn peer(&self, fd: Fd) -> Option<SocketAddr> {
        self.sockets.get(&fd).and_then(|socket| socket.peer)
    }

    /// `getsockopt(SOL_SOCKET, SO_ERROR)`: the pending error, cleared.
    pub fn take_error(&mut self, fd: Fd) -> Result<i32, Error> {
        let socket = self.get(fd)?;
        if let Some(failure) = socket.error.take() {
            return Ok(failure.errno);
        }
        // A non-blocking connect that failed reports its error here.
        if let Some(Pending::Done(Err(failure))) = &socket.pending {
            let errno = failure.errno;
            socket.pending = None;
            return Ok(errno);
        }
        Ok(0)
    }

    /// Sends a `Ping`: the relay closes sessions from which nothing comes for a while.
    pub fn ping(&mut self) {
        if self.lost.is_none() {
            let stream = self.new_stream();
            self.frames.push_back(Up::Ping { stream });
        }
    }

    /// Sends a `Ping` whose `Pong` [`Stack::take_round_trip`] reports: the relay answers it after every
    /// frame sent before it, so a driver can wait until the relay has handled them.
    pub fn round_trip(&mut self) -> Result<StreamId, Error> {
        self.check_relay()?;
        let request = self.new_stream();
        self.round_trips.insert(request, None);
        self.frames.push_back(Up::Ping { stream: request });
        Ok(request)
    }

    /// The answer to a [`Stack::round_trip`], once there is one.
    pub fn take_round_trip(&mut self, request: StreamId) -> Option<Result<(), Error>> {
        match self.round_trips.remove(&request)? {
            None => {
                self.round_trips.insert(request, None);
                None
            }
            Some(result) => Some(result.map_err(Error::from)),
        }
    }

    /// Starts a name resolution; its answer comes from [`Stack::take_resolution`].
    pub fn resolve(&mut self, host: &str) -> Result<StreamId, Error> {
        self.check_relay()?;
        let request = self.new_stream();
        self.resolutions.insert(request, None);
        self.frames.push_back(Up::Resolve {
            stream: request,
            host: host.to_owned(),
        });
        Ok(request)
    }

    pub fn take_resolution(&mut self, request: StreamId) -> Option<Result<Vec<IpAddr>, Error>> {
        match self.resolutions.remove(&request)? {
            None => {
                self.resolutions.insert(request, None);
                None
            }
            Some(result) => Some(result.map_err(Error::from)),
        }
    }

    /// Every listening socket: (its fd, its program, its address as the session sees it, its public one).
    pub fn listeners(&self) -> Vec<(Fd, u32, SocketAddr, String)> {
        self.sockets
            .iter()
            .filter(|(_, s)| s.state == State::Listening)
            .map(|(fd, s)| {
                (
                    *fd,
                    s.owner,
                    s.local.unwrap_or_else(unspecified),
                    s.public.clone().unwrap_or_default(),
                )
            })
            .collect()
    }
}

fn unspecified() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
}
