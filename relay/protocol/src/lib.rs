//! The `soket.v1` wire protocol: the one definition of what the page and the relay say to each other.
//!
//! A page session holds one WebSocket to the relay, negotiated with the subprotocol [`SUBPROTOCOL`]. Every
//! WebSocket message is one binary frame, and every frame is one message of this crate: [`Up`] goes from the
//! page to the relay, [`Down`] comes back. The crate has no I/O; the relay (native) and the frontend (wasm)
//! both compile it, so the two ends cannot disagree on a byte.
//!
//! # Streams
//! Many sockets share the WebSocket. Each socket is a *stream* named by a [`StreamId`]. The page numbers the
//! streams it opens (`1..2^31`, increasing, never reused); the relay numbers the connections it accepts for a
//! listener with the high bit set. Id `0` is the session itself ([`Down::Welcome`], [`Down::Goodbye`], ping).
//! A stream id lives until the page sends [`Up::Close`] or [`Up::Reset`]; after the relay reports
//! [`Down::Closed`] it discards what still arrives for that id until the page's `Close`, which frees it.
//! A frame naming an id that is not alive is a protocol error that ends the session.
//! [`Up::Resolve`] and [`Up::Ping`] use a fresh id as a request number; it names no stream.
//!
//! # Flow control
//! Each TCP stream starts with `window` bytes of credit in each direction: the value the relay announced in
//! [`Down::Welcome`], the same for every stream of the session. The relay picks it (its session buffer
//! shared among the streams it allows, at most [`INITIAL_WINDOW`]); the page uses what was announced.
//! A side may send `Data` only within the credit the other side granted, and grants more with `Credit` once
//! it has consumed bytes (the relay: written them to the real socket; the page: handed them to the
//! program). Sending past the window is a protocol error. For a listener the credit counts connections:
//! the relay announces at most `backlog` unaccepted connections ([`Down::Incoming`]) and the page grants one
//! more per `accept()`.
//! UDP has no credit: as on a real network, datagrams that do not fit the receiver's buffer are dropped.
//!
//! # Encoding
//! All integers are big-endian. A frame is `tag: u8`, `stream: u32`, then the fields of the message in the
//! order of the table. `str` is `len: u16` and UTF-8 bytes; `addr` is `family: u8` (4 or 6), the address
//! (4 or 16 bytes) and `port: u16`; `ip` is the same without the port; `[T]` is `count: u8` then the items;
//! `payload` is every byte left in the frame, at most [`MAX_PAYLOAD`].
//!
//! | tag  | message            | fields after `stream`                               | answered by                     |
//! |------|--------------------|-----------------------------------------------------|---------------------------------|
//! | 0x01 | `Up::Connect`      | host: str, port: u16                                | `Connected` or `Failed`         |
//! | 0x02 | `Up::Bind`         | transport: u8 (1 tcp, 2 udp), host: str, port: u16  | `Bound` or `Failed`             |
//! | 0x03 | `Up::Listen`       | backlog: u32                                        | `Listening` or `Failed`         |
//! | 0x04 | `Up::Data`         | payload                                             | `Credit` as it is written       |
//! | 0x05 | `Up::Credit`       | amount: u32                                         |                                 |
//! | 0x06 | `Up::Shutdown`     | (none): the page will send no more (SHUT_WR)        |                                 |
//! | 0x07 | `Up::Close`        | (none): frees the id                                |                                 |
//! | 0x08 | `Up::Reset`        | (none): abortive close (RST), frees the id          |                                 |
//! | 0x09 | `Up::SendTo`       | host: str, port: u16, payload                       | `Failed` if refused             |
//! | 0x0A | `Up::Resolve`      | host: str                                           | `Resolved` or `Failed`          |
//! | 0x0B | `Up::Ping`         | (none)                                              | `Pong`                          |
//! | 0x81 | `Down::Welcome`    | hostname: str, public_host: str, window: u32        | (first frame of a session)      |
//! | 0x82 | `Down::Connected`  | local: addr, peer: addr                             |                                 |
//! | 0x83 | `Down::Bound`      | local: addr                                         |                                 |
//! | 0x84 | `Down::Listening`  | public: str (`host:port` reachable from outside)    |                                 |
//! | 0x85 | `Down::Incoming`   | conn: u32, local: addr, peer: addr                  | the page's `accept()`           |
//! | 0x86 | `Down::Data`       | payload                                             | `Credit` as it is consumed      |
//! | 0x87 | `Down::Credit`     | amount: u32                                         |                                 |
//! | 0x88 | `Down::Shutdown`   | (none): the peer sent FIN, reads now return b""     |                                 |
//! | 0x89 | `Down::Closed`     | errno: i32 (0 clean), message: str                  | the page's `Close`              |
//! | 0x8A | `Down::Datagram`   | from: addr, payload                                 |                                 |
//! | 0x8B | `Down::Resolved`   | addrs: [ip]                                         |                                 |
//! | 0x8C | `Down::Failed`     | errno: i32, message: str                            |                                 |
//! | 0x8D | `Down::Pong`       | (none)                                              |                                 |
//! | 0x8E | `Down::Goodbye`    | code: u16, message: str: the session ends           |                                 |
//!
//! Errors carry a Linux errno ([`errno`]) so the page raises the exception CPython would, and a message
//! that may say more. A destination the relay's policy refuses (`Connect`, `SendTo`) fails with `EACCES`
//! (`PermissionError`), the message naming the destination and the rule. A name the allow list does not
//! name is not even resolved: `Resolve` fails with `EAI_NONAME` (`socket.gaierror` -2, as `getaddrinfo`
//! fails for a name that does not exist), the message saying it is not on the allow list.

pub mod codec;
pub mod errno;

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

pub use codec::DecodeError;
pub use errno::Failure;

/// The WebSocket subprotocol that names this version of the protocol.
pub const SUBPROTOCOL: &str = "soket.v1";

/// The largest window a relay announces in [`Down::Welcome`], in bytes. A stream's credit starts at the
/// announced `window`, which may be smaller (the relay shares its buffer among a session's streams).
pub const INITIAL_WINDOW: u32 = 256 * 1024;

/// The largest payload of one `Data`, `SendTo` or `Datagram` frame. A UDP datagram can be 65,507 bytes.
pub const MAX_PAYLOAD: usize = 65_536;

/// The largest frame: a payload plus the largest header (tag, stream, a host name, a port).
pub const MAX_FRAME: usize = MAX_PAYLOAD + 1 + 4 + 2 + MAX_HOST + 2;

/// The longest host name a frame may carry (DNS names are at most 253 characters).
pub const MAX_HOST: usize = 255;

/// The most addresses one `Resolved` carries.
pub const MAX_ADDRS: usize = 32;

/// Names a stream (a socket) inside a session. Page-opened ids are below `2^31`; relay-opened ids (accepted
/// connections) have the high bit set. `0` is the session itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u32);

impl StreamId {
    /// The session itself: `Welcome`, `Goodbye`.
    pub const SESSION: StreamId = StreamId(0);
    const RELAY_BIT: u32 = 1 << 31;

    /// The `n`-th stream the relay opens (an accepted connection).
    pub fn relay(n: u32) -> StreamId {
        StreamId(n | Self::RELAY_BIT)
    }

    /// True for ids the relay allocated.
    pub fn is_relay(self) -> bool {
        self.0 & Self::RELAY_BIT != 0
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The transport of a bound socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
}

/// A message from the page to the relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Up {
    /// Open a TCP connection to `host:port` (a name, or an address in any form `inet_aton` reads).
    Connect {
        stream: StreamId,
        host: String,
        port: u16,
    },
    /// Bind a socket to a port of the session's host (`port` 0: any free one).
    Bind {
        stream: StreamId,
        transport: Transport,
        host: String,
        port: u16,
    },
    /// Start listening on a bound TCP stream, with room for `backlog` unaccepted connections.
    Listen { stream: StreamId, backlog: u32 },
    /// Bytes for a TCP stream, within the credit the relay granted.
    Data { stream: StreamId, payload: Bytes },
    /// The page consumed `amount` bytes (or, for a listener, accepted `amount` connections).
    Credit { stream: StreamId, amount: u32 },
    /// The page will send no more on this stream (`shutdown(SHUT_WR)`).
    Shutdown { stream: StreamId },
    /// Close the stream and free its id.
    Close { stream: StreamId },
    /// Close the stream with a reset (RST) and free its id.
    Reset { stream: StreamId },
    /// Send one datagram from a bound UDP stream.
    SendTo {
        stream: StreamId,
        host: String,
        port: u16,
        payload: Bytes,
    },
    /// Resolve a host name to addresses; `stream` is a request number.
    Resolve { stream: StreamId, host: String },
    /// Ask for a `Pong`; keeps an idle session alive and measures the round trip.
    Ping { stream: StreamId },
}

/// A message from the relay to the page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Down {
    /// The first frame of every session: who the session's host is.
    Welcome {
        hostname: String,
        public_host: String,
        window: u32,
    },
    /// A `Connect` succeeded.
    Connected {
        stream: StreamId,
        local: SocketAddr,
        peer: SocketAddr,
    },
    /// A `Bind` succeeded; `local` is the address as the session sees it.
    Bound { stream: StreamId, local: SocketAddr },
    /// A `Listen` succeeded; `public` is the `host:port` from which the outside world reaches it.
    Listening { stream: StreamId, public: String },
    /// A connection arrived on the listener `stream`; it is the new stream `conn`.
    Incoming {
        stream: StreamId,
        conn: StreamId,
        local: SocketAddr,
        peer: SocketAddr,
    },
    /// Bytes from the peer of a TCP stream, within the credit the page granted.
    Data { stream: StreamId, payload: Bytes },
    /// The relay wrote `amount` more bytes of this stream to its socket.
    Credit { stream: StreamId, amount: u32 },
    /// The peer will send no more (FIN): reads return end of file once the buffer is empty.
    Shutdown { stream: StreamId },
    /// The stream is gone: `errno` 0 for a clean close, else why (ECONNRESET, ...).
    Closed {
        stream: StreamId,
        errno: i32,
        message: String,
    },
    /// A datagram arrived on a bound UDP stream.
    Datagram {
        stream: StreamId,
        from: SocketAddr,
        payload: Bytes,
    },
    /// Answer to `Resolve`.
    Resolved {
        stream: StreamId,
        addrs: Vec<IpAddr>,
    },
    /// An operation on `stream` failed; the stream stays as it was (a failed `Connect` leaves it unconnected).
    Failed {
        stream: StreamId,
        errno: i32,
        message: String,
    },
    /// Answer to `Ping`.
    Pong { stream: StreamId },
    /// The session ends (protocol error, quota, shutdown); the relay closes the WebSocket after it.
    Goodbye { code: GoodbyeCode, message: String },
}

/// Why a session ends. Sent in `Goodbye` and as the WebSocket close reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoodbyeCode {
    /// The relay is shutting down.
    Shutdown,
    /// The page sent a frame that breaks the protocol.
    ProtocolError,
    /// The session went past a quota that cannot be reported per stream.
    Quota,
    /// Nothing came from the page for longer than the idle timeout.
    Idle,
    /// A code this version does not know.
    Other(u16),
}

impl GoodbyeCode {
    pub fn to_u16(self) -> u16 {
        match self {
            GoodbyeCode::Shutdown => 1,
            GoodbyeCode::ProtocolError => 2,
            GoodbyeCode::Quota => 3,
            GoodbyeCode::Idle => 4,
            GoodbyeCode::Other(n) => n,
        }
    }

    pub fn from_u16(n: u16) -> GoodbyeCode {
        match n {
            1 => GoodbyeCode::Shutdown,
            2 => GoodbyeCode::ProtocolError,
            3 => GoodbyeCode::Quota,
            4 => GoodbyeCode::Idle,
            n => GoodbyeCode::Other(n),
        }
    }
}

impl Up {
    /// The stream this message is about.
    pub fn stream(&self) -> StreamId {
        match self {
            Up::Connect { stream, .. }
            | Up::Bind { stream, .. }
            | Up::Listen { stream, .. }
            | Up::Data { stream, .. }
            | Up::Credit { stream, .. }
            | Up::Shutdown { stream }
            | Up::Close { stream }
            | Up::Reset { stream }
            | Up::SendTo { stream, .. }
            | Up::Resolve { stream, .. }
            | Up::Ping { stream } => *stream,
        }
    }

    /// Encodes this message as one frame.
    pub fn encode(&self) -> Bytes {
        codec::encode_up(self)
    }

    /// Decodes one frame sent by a page.
    pub fn decode(frame: &Bytes) -> Result<Up, DecodeError> {
        codec::decode_up(frame)
    }
}

/// The length of the bytes before the payload of a `Data` frame.
pub const DATA_HEADER_LEN: usize = 5;

impl Down {
    /// The `Failed` frame that answers `stream`'s operation with `failure`.
    pub fn failed(stream: StreamId, failure: Failure) -> Down {
        Down::Failed {
            stream,
            errno: failure.errno,
            message: failure.message,
        }
    }

    /// The first bytes of a `Down::Data` frame for `stream`. A reader puts them in a buffer, reads the
    /// payload right after them, and sends the buffer as the frame: no copy of the payload. The result is
    /// the same as `Down::Data { stream, payload }.encode()`.
    pub fn data_header(stream: StreamId) -> [u8; DATA_HEADER_LEN] {
        codec::data_header(codec::DOWN_DATA, stream)
    }

    /// Encodes this message as one frame.
    pub fn encode(&self) -> Bytes {
        codec::encode_down(self)
    }

    /// Decodes one frame sent by a relay.
    pub fn decode(frame: &Bytes) -> Result<Down, DecodeError> {
        codec::decode_down(frame)
    }
}
