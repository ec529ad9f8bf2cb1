//! One socket as the page keeps it: where it is in its life, its addresses, and its buffers.
//!
//! Received bytes wait in a queue of chunks (each the payload of one `Data` frame, no copies) until the
//! program reads them; received datagrams wait whole, with their sender. Both are bounded: a TCP stream's
//! queue by the credit the page granted, the datagram queue by [`DATAGRAM_BUFFER`] (beyond it a datagram is
//! dropped, as a full socket buffer drops it).
//!
//! A connected UDP socket keeps only its peer's datagrams, as on Linux ([`Connected`]).

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bytes::Bytes;
use soket_protocol::{Failure, StreamId, Transport};

/// The number a Python program knows a socket by (`fileno()`). Starts at 3, as after stdin/out/err.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fd(pub u32);

/// The most bytes of datagrams a UDP socket holds unread (Linux's default receive buffer is 208 KiB).
pub const DATAGRAM_BUFFER: usize = 256 * 1024;

/// Where a socket is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Made by `socket()`; the relay does not know it yet.
    Fresh,
    /// `bind()` sent, waiting for `Bound`.
    Binding,
    Bound,
    /// `listen()` sent, waiting for `Listening`.
    ListenStarting,
    Listening,
    /// `connect()` sent, waiting for `Connected`.
    Connecting,
    Connected,
    /// The relay ended the stream (reset, error); `error` says why.
    Gone,
}

/// The peer of a UDP socket after `connect()`: only its datagrams are kept from then on, as Linux keeps
/// only the connected peer's. The program connects to a name (`lab`, `localhost`, `example.com`) and the
/// relay names each datagram's sender by address, so the stack asks the relay what the name is — the same
/// answer the relay gives `getaddrinfo` and labels datagrams with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Connected {
    /// The relay was asked where the peer is (`Resolve` on this id); what arrives meanwhile is held.
    Resolving(StreamId),
    /// Datagrams are kept from these addresses on this port only.
    Peer { addrs: Vec<IpAddr>, port: u16 },
}

impl Connected {
    /// Whether a datagram from `from` is the peer's. Compared as the relay names senders: IPv4-mapped
    /// addresses as IPv4, and every form of the session's own host (`::1`, the wildcard) as `127.0.0.1`.
    fn admits(&self, from: SocketAddr) -> bool {
        match self {
            Connected::Resolving(_) => false,
            Connected::Peer { addrs, port } => {
                from.port() == *port && addrs.iter().any(|ip| as_named(*ip) == as_named(from.ip()))
            }
        }
    }
}

/// An address as the relay names a datagram's sender.
fn as_named(ip: IpAddr) -> IpAddr {
    let ip = ip.to_canonical();
    if ip.is_unspecified() || ip == IpAddr::from(std::net::Ipv6Addr::LOCALHOST) {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        ip
    }
}

/// What `select()` asks of a socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    pub readable: bool,
    pub writable: bool,
    /// An error is pending (`select`'s third list; Linux reports it as readable and writable too).
    pub error: bool,
}

/// The result of an operation that needs the relay's answer (`bind`, `listen`, `connect`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pending {
    /// Sent; no answer yet.
    Waiting,
    /// Answered; the caller takes it once.
    Done(Result<(), Failure>),
}

#[derive(Debug)]
pub struct Socket {
    pub transport: Transport,
    /// The program that owns it: its sockets are closed when it stops.
    pub owner: u32,
    /// The relay's stream, once the relay has heard of this socket.
    pub stream: Option<StreamId>,
    pub state: State,
    pub local: Option<SocketAddr>,
    pub peer: Option<SocketAddr>,
    /// For a listener: `host:port` from which the outside world reaches it.
    pub public: Option<String>,
    pub pending: Option<Pending>,
    /// An error to raise on the next call (`SO_ERROR`), and why the stream is gone.
    pub error: Option<Failure>,

    /// TCP: received bytes not yet read, in arrival order.
    pub received: VecDeque<Bytes>,
    pub received_len: usize,
    /// TCP: the peer sent FIN; reads return b"" once `received` is empty.
    pub eof: bool,
    /// TCP: bytes the program read that were not yet credited back to the relay.
    pub uncredited: u32,
    /// TCP: bytes the page may still send.
    pub send_credit: u32,
    /// The program shut down its sending side.
    pub shut_write: bool,
    /// The program shut down its receiving side: reads return b"" instead of waiting.
    pub shut_read: bool,

    /// A listener's accepted connections, waiting for `accept()`.
    pub accepts: VecDeque<Fd>,
    /// UDP: datagrams not yet read, with their senders.
    pub datagrams: VecDeque<(SocketAddr, Bytes)>,
    pub datagram_bytes: usize,
    /// UDP: the default destination set by `connect()`.
    pub default_peer: Option<(String, u16)>,
    /// UDP: whose datagrams are kept since `connect()`; `None` before it, when all are.
    pub connected: Option<Connected>,
    /// UDP: datagrams that came while the peer was being looked up, counted in `datagram_bytes`: kept or
    /// dropped once it is known.
    pub held: VecDeque<(SocketAddr, Bytes)>,
}

impl Socket {
    pub fn new(transport: Transport, owner: u32) -> Socket {
        Socket {
            transport,
            owner,
            stream: None,
            state: State::Fresh,
            local: None,
            peer: None,
            public: None,
            pending: None,
            error: None,
            received: VecDeque::new(),
            received_len: 0,
            eof: false,
            uncredited: 0,
            send_credit: 0,
            shut_write: false,
            shut_read: false,
            accepts: VecDeque::new(),
            datagrams: VecDeque::new(),
            datagram_bytes: 0,
            default_peer: None,
            connected: None,
            held: VecDeque::new(),
        }
    }

    /// A datagram from the relay: queued for the program, held while the connected peer is looked up,
    /// or dropped (from another sender than the connected peer, or beyond [`DATAGRAM_BUFFER`]).
    pub fn deliver(&mut self, from: SocketAddr, payload: Bytes) {
        if self.datagram_bytes + payload.len() > DATAGRAM_BUFFER {
            return;
        }
        let len = payload.len();
        match &self.connected {
            Some(Connected::Resolving(_)) => self.held.push_back((from, payload)),
            Some(peer) if !peer.admits(from) => return,
            _ => self.datagrams.push_back((from, payload)),
        }
        self.datagram_bytes += len;
    }

    /// The answer to the lookup of the connected peer: `None` if it failed, and then every sender is
    /// kept, as before `connect()` (which has answered already), rather than none. The datagrams held
    /// meanwhile are kept or dropped by it.
    pub fn peer_found(&mut self, peer: Option<Connected>) {
        self.connected = peer;
        for (from, payload) in std::mem::take(&mut self.held) {
            if self.connected.as_ref().is_none_or(|peer| peer.admits(from)) {
                self.datagrams.push_back((from, payload));
            } else {
                self.datagram_bytes -= payload.len();
            }
        }
    }

    /// What `select()` would say of this socket now.
    pub fn readiness(&self) -> Readiness {
        // A failed non-blocking connect counts as an error too, as SO_ERROR would show it.
        let error = self.error.is_some() || matches!(self.pending, Some(Pending::Done(Err(_))));
        let readable = match (self.transport, self.state) {
            (_, State::Gone) => true,
            (Transport::Udp, _) => !self.datagrams.is_empty(),
            (Transport::Tcp, State::Listening) => !self.accepts.is_empty(),
            (Transport::Tcp, State::Connected) => {
                self.received_len > 0 || self.eof || self.shut_read
            }
            _ => false,
        };
        let writable = match (self.transport, self.state) {
            (_, State::Gone) => true,
            (Transport::Udp, _) => true,
            (Transport::Tcp, State::Connected) => self.send_credit > 0 || self.shut_write,
            // A connect that failed is "writable" with SO_ERROR set, as on Linux.
            (Transport::Tcp, State::Fresh) => error,
            _ => false,
        };
        Readiness {
            readable: readable || error,
            writable: writable || error,
            error,
        }
    }

    /// Takes up to `max` received bytes (or looks at them, when `peek`). A chunk goes out as it came, with
    /// no copy; several small chunks are joined when they fit.
    pub fn take_received(&mut self, max: usize, peek: bool) -> Bytes {
        let Some(first) = self.received.front_mut() else {
            return Bytes::new();
        };
        if peek {
            return first.slice(..first.len().min(max));
        }
        if first.len() >= max {
            let taken = first.split_to(max);
            if first.is_empty() {
                self.received.pop_front();
            }
            self.received_len -= taken.len();
            return taken;
        }
        let first = self.received.pop_front().unwrap_or_default();
        self.received_len -= first.len();
        if self
            .received
            .front()
            .is_none_or(|next| first.len() + next.len() > max)
        {
            return first;
        }
        let mut joined = first.to_vec();
        while let Some(next) = self.received.front() {
            if joined.len() + next.len() > max {
                break;
            }
            let next = self.received.pop_front().unwrap_or_default();
            self.received_len -= next.len();
            joined.extend_from_slice(&next);
        }
        Bytes::from(joined)
    }
}
