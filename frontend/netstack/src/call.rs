//! The calls a Python worker makes to the network worker, and their replies.
//!
//! A Python program's socket call travels to the page's network worker as a [`Call`] and comes back as a
//! [`Reply`]; the Python worker blocks (in `Atomics.wait`) until the reply is in their shared buffer. Both
//! workers are Rust compiled to wasm, so this one definition serves both; postcard encodes it.
//!
//! `timeout` follows Python's socket timeouts: `None` blocks for ever, `Some(0.0)` never blocks
//! (`BlockingIOError` instead), `Some(t)` waits at most `t` seconds (`TimeoutError` after).

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use soket_protocol::Transport;

/// Transport, in a form serde knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    Tcp,
    Udp,
}

impl From<Kind> for Transport {
    fn from(kind: Kind) -> Transport {
        match kind {
            Kind::Tcp => Transport::Tcp,
            Kind::Udp => Transport::Udp,
        }
    }
}

/// A socket call from a Python program.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Call {
    Socket {
        kind: Kind,
    },
    Bind {
        fd: u32,
        host: String,
        port: u16,
    },
    Listen {
        fd: u32,
        backlog: u32,
    },
    /// `timeout` `Some(0.0)`: a non-blocking connect, which answers `EINPROGRESS` while under way.
    Connect {
        fd: u32,
        host: String,
        port: u16,
        timeout: Option<f64>,
    },
    Accept {
        fd: u32,
        timeout: Option<f64>,
    },
    /// Sends what the credit allows (at least one byte, waiting for credit if need be).
    Send {
        fd: u32,
        data: Bytes,
        timeout: Option<f64>,
    },
    SendTo {
        fd: u32,
        host: String,
        port: u16,
        data: Bytes,
    },
    Recv {
        fd: u32,
        max: u32,
        peek: bool,
        timeout: Option<f64>,
    },
    RecvFrom {
        fd: u32,
        max: u32,
        peek: bool,
        timeout: Option<f64>,
    },
    Shutdown {
        fd: u32,
        how: i32,
    },
    Close {
        fd: u32,
    },
    /// `select.select` over sockets: waits until one is ready or the timeout passes.
    Select {
        read: Vec<u32>,
        write: Vec<u32>,
        error: Vec<u32>,
        timeout: Option<f64>,
    },
    LocalAddr {
        fd: u32,
    },
    PeerAddr {
        fd: u32,
    },
    /// `getsockopt(SOL_SOCKET, SO_ERROR)`.
    TakeError {
        fd: u32,
    },
    Resolve {
        host: String,
    },
    Hostname,
}

/// The answer to a [`Call`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    Done,
    Fd(u32),
    Count(u32),
    Data(Bytes),
    DataFrom(Bytes, Option<SocketAddr>),
    Accepted(u32, SocketAddr),
    Addr(SocketAddr),
    Int(i32),
    Addrs(Vec<IpAddr>),
    Text(String),
    Ready {
        read: Vec<u32>,
        write: Vec<u32>,
        error: Vec<u32>,
    },
    /// The call failed with this errno (negative: a `getaddrinfo` error).
    Error {
        errno: i32,
        message: String,
    },
    /// The call's timeout passed (`TimeoutError: timed out`).
    Timeout,
}

impl Call {
    /// The call as bytes for the shared buffer.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Call, postcard::Error> {
        postcard::from_bytes(bytes)
    }

    /// How long the call may wait: `None` for ever. Calls without a Python timeout have no deadline: those
    /// that wait (for the relay's answer to a bind, listen or name) wait until it comes, the others are
    /// answered at once. (A 0 s deadline here made the network worker re-arm its timer at 0 ms until the
    /// relay answered.)
    pub fn timeout(&self) -> Option<f64> {
        match self {
            Call::Connect { timeout, .. }
            | Call::Accept { timeout, .. }
            | Call::Send { timeout, .. }
            | Call::Recv { timeout, .. }
            | Call::RecvFrom { timeout, .. }
            | Call::Select { timeout, .. } => *timeout,
            _ => None,
        }
    }
}

impl Reply {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Reply, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}
