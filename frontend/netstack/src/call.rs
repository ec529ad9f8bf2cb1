//! The calls a Python worker makes to the network worker, and their replies.
//!
//! A Python program's socket call travels to the page's network worker as a [`Call`] and comes back as a
//! [`Reply`]; the Python worker blocks (in `Atomics.wait`) until the reply is in their shared buffer. Both
//! workers are Rust compiled to wasm, so this one definition serves both; postcard encodes it.
//!
//! Each call is defined once, in the table of [`calls!`]: the name Python calls it by
//! (`_soketnet.call("bind", fd, host, port)`), its fields in that order, and whether it [waits](Call::waits).
//! Adding a call is a row there, an arm in the executor (`exec.rs`) and, if it is new work, a `Stack`
//! method.
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

/// The table of calls, the one place a call is defined: for each, the name a Python program calls it by
/// (`_soketnet.call(name, *args)`), whether it [waits](Call::waits), and its fields, in the order the
/// program passes them. It makes [`Call`], [`Call::name`], [`Call::waits`] and [`Call::from_args`].
macro_rules! calls {
    ($(
        $(#[$doc:meta])*
        $name:literal => $variant:ident $({ $($field:ident: $ty:ty),* $(,)? })?, waits: $waits:literal;
    )*) => {
        /// A socket call from a Python program.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub enum Call {
            $($(#[$doc])* $variant $({ $($field: $ty),* })?,)*
        }

        impl Call {
            /// Every call's name, in the table's order.
            pub const NAMES: &[&str] = &[$($name),*];

            /// The name a Python program calls it by.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Call::$variant { .. } => $name,)*
                }
            }

            /// Whether the call may wait — for the relay's answer, data, credit, a connection, readiness.
            /// Only those are cut short by Stop; the others are answered at once, so that a program
            /// unwinding from `KeyboardInterrupt` can still close its sockets (in `finally:`, `with`,
            /// `__del__`) without a second `KeyboardInterrupt`, as in CPython.
            pub fn waits(&self) -> bool {
                match self {
                    $(Call::$variant { .. } => $waits,)*
                }
            }

            /// The call named `name`, its fields taken from `args` in the table's order.
            pub fn from_args<A: Args>(name: &str, args: &mut A) -> Result<Call, A::Error> {
                Ok(match name {
                    $($name => Call::$variant $({ $($field: Arg::take(args)?),* })?,)*
                    _ => return Err(args.invalid(format!("no socket call named {name:?}"))),
                })
            }
        }
    };
}

calls! {
    "socket" => Socket { kind: Kind }, waits: false;
    "bind" => Bind { fd: u32, host: String, port: u16 }, waits: true;
    "listen" => Listen { fd: u32, backlog: u32 }, waits: true;
    /// `timeout` `Some(0.0)`: a non-blocking connect, which answers `EINPROGRESS` while under way.
    "connect" => Connect { fd: u32, host: String, port: u16, timeout: Option<f64> }, waits: true;
    "accept" => Accept { fd: u32, timeout: Option<f64> }, waits: true;
    /// Sends what the credit allows (at least one byte, waiting for credit if need be).
    "send" => Send { fd: u32, data: Bytes, timeout: Option<f64> }, waits: true;
    "sendto" => SendTo { fd: u32, data: Bytes, host: String, port: u16 }, waits: false;
    "recv" => Recv { fd: u32, max: u32, peek: bool, timeout: Option<f64> }, waits: true;
    "recvfrom" => RecvFrom { fd: u32, max: u32, peek: bool, timeout: Option<f64> }, waits: true;
    "shutdown" => Shutdown { fd: u32, how: i32 }, waits: false;
    "close" => Close { fd: u32 }, waits: false;
    /// `select.select` over sockets: waits until one is ready or the timeout passes.
    "select" => Select { read: Vec<u32>, write: Vec<u32>, error: Vec<u32>, timeout: Option<f64> }, waits: true;
    /// `getsockname()`.
    "sockname" => LocalAddr { fd: u32 }, waits: false;
    /// `getpeername()`.
    "peername" => PeerAddr { fd: u32 }, waits: false;
    /// `getsockopt(SOL_SOCKET, SO_ERROR)`.
    "take_error" => TakeError { fd: u32 }, waits: false;
    "resolve" => Resolve { host: String }, waits: true;
    "hostname" => Hostname, waits: false;
}

/// Where a call's arguments come from, one at a time in the table's order: the Python runtime implements
/// it over a call's positional arguments, with its own conversions (and their `TypeError`s).
pub trait Args {
    type Error;
    fn u16(&mut self) -> Result<u16, Self::Error>;
    fn u32(&mut self) -> Result<u32, Self::Error>;
    fn i32(&mut self) -> Result<i32, Self::Error>;
    fn bool(&mut self) -> Result<bool, Self::Error>;
    fn string(&mut self) -> Result<String, Self::Error>;
    fn bytes(&mut self) -> Result<Bytes, Self::Error>;
    /// A Python timeout: `None`, or seconds.
    fn timeout(&mut self) -> Result<Option<f64>, Self::Error>;
    fn fds(&mut self) -> Result<Vec<u32>, Self::Error>;
    /// An argument (or a call name) that makes no call.
    fn invalid(&mut self, why: String) -> Self::Error;
}

/// A field of a call, as [`Args`] gives it.
pub trait Arg: Sized {
    fn take<A: Args>(args: &mut A) -> Result<Self, A::Error>;
}

macro_rules! arg {
    ($($ty:ty => $method:ident),* $(,)?) => {
        $(impl Arg for $ty {
            fn take<A: Args>(args: &mut A) -> Result<$ty, A::Error> {
                args.$method()
            }
        })*
    };
}

arg! {
    u16 => u16, u32 => u32, i32 => i32, bool => bool, String => string, Bytes => bytes,
    Option<f64> => timeout, Vec<u32> => fds,
}

/// `"tcp"` or `"udp"`.
impl Arg for Kind {
    fn take<A: Args>(args: &mut A) -> Result<Kind, A::Error> {
        match args.string()?.as_str() {
            "tcp" => Ok(Kind::Tcp),
            "udp" => Ok(Kind::Udp),
            other => Err(args.invalid(format!("no socket kind {other:?}"))),
        }
    }
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
