//! What the page's network view shows: an event for each socket call a program made and for what the relay
//! told of a socket, and a table of the open sockets, like `ss -tuna`.
//!
//! The executor records a call as it is first tried ([`Trace::asked`]) and once it is answered
//! ([`Trace::call`]), and a frame from the relay as it comes ([`Trace::frame`]); the network worker takes the events now and then ([`Trace::take`]) and sends
//! them to the page with the table ([`Trace::sockets`]), both as JSON in the format ARCHITECTURE.md gives
//! ("The page's contract"). However many calls a program makes, what waits here stays small: a send or
//! recv right after one of the same kind on the same socket is merged into it (`count` calls, `bytes` in
//! all), and beyond [`PENDING`] events the oldest are dropped and counted.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write;
use std::net::SocketAddr;

use serde::Serialize;
use soket_protocol::errno::{self, EAGAIN, EINPROGRESS};
use soket_protocol::{Down, Transport};

use crate::call::{Call, Reply};
use crate::socket::{Fd, State};
use crate::stack::Stack;

/// The most events waiting for the worker to take them.
pub const PENDING: usize = 1000;
/// How many bytes of a send or recv its preview shows.
pub const PREVIEW: usize = 32;

/// One thing that happened to one socket of one program.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    pub seq: u64,
    /// When, in the worker's clock (milliseconds).
    pub t: f64,
    /// The program's run number.
    pub id: u32,
    pub fd: u32,
    #[serde(flatten)]
    pub what: What,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum What {
    Socket {
        transport: &'static str,
    },
    Bind {
        local: SocketAddr,
    },
    Listen {
        local: SocketAddr,
        public: String,
    },
    /// Asked: the host as the program gave it.
    Connect {
        peer: String,
    },
    Connected {
        local: SocketAddr,
        peer: SocketAddr,
    },
    Accept {
        listener: u32,
        local: SocketAddr,
        peer: SocketAddr,
    },
    Send {
        bytes: u64,
        count: u64,
        preview: String,
        peer: Option<String>,
    },
    Recv {
        bytes: u64,
        count: u64,
        preview: String,
        peer: Option<SocketAddr>,
    },
    Shutdown {
        how: &'static str,
    },
    Close,
    Error {
        call: &'static str,
        errno: i32,
        name: Option<&'static str>,
        message: String,
    },
    PeerClosed {
        errno: i32,
        name: Option<&'static str>,
    },
}

/// One row of the socket table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub id: u32,
    pub fd: u32,
    pub transport: &'static str,
    pub state: &'static str,
    pub local: Option<SocketAddr>,
    pub peer: Option<SocketAddr>,
    pub public: Option<String>,
    pub sent: u64,
    pub received: u64,
}

#[derive(Debug, Default)]
pub struct Trace {
    pending: VecDeque<Event>,
    next_seq: u64,
    /// Events dropped since the worker last took them.
    dropped: u64,
    /// Bytes each socket sent and received.
    counts: HashMap<Fd, (u64, u64)>,
}

impl Trace {
    /// Records a call of program `id` as it is first tried: a connect is shown as asked then, whatever
    /// comes of it.
    pub fn asked(&mut self, id: u32, call: &Call, t: f64) {
        if let Call::Connect { fd, host, port, .. } = call {
            let peer = format!("{host}:{port}");
            self.push(t, id, *fd, What::Connect { peer });
        }
    }

    /// Records a call of program `id` that got its `reply`.
    pub fn call(&mut self, stack: &Stack, id: u32, call: &Call, reply: &Reply, t: f64) {
        let local = |fd: u32| stack.socket_at(Fd(fd)).and_then(|s| s.local);
        let what = match (call, reply) {
            (Call::Socket { kind }, Reply::Fd(fd)) => {
                let transport = transport_name(Transport::from(*kind));
                return self.push(t, id, *fd, What::Socket { transport });
            }
            (Call::Bind { fd, .. }, Reply::Done) => local(*fd).map(|local| What::Bind { local }),
            (Call::Listen { fd, .. }, Reply::Done) => stack.socket_at(Fd(*fd)).and_then(|s| {
                Some(What::Listen {
                    local: s.local?,
                    public: s.public.clone().unwrap_or_default(),
                })
            }),
            (Call::Connect { fd, .. }, Reply::Done) => stack.socket_at(Fd(*fd)).and_then(|s| {
                Some(What::Connected {
                    local: s.local?,
                    peer: s.peer?,
                })
            }),
            (Call::Accept { fd, .. }, Reply::Accepted(conn, peer)) => {
                if let Some(local) = local(*conn) {
                    let accept = What::Accept {
                        listener: *fd,
                        local,
                        peer: *peer,
                    };
                    self.push(t, id, *conn, accept);
                }
                return;
            }
            (Call::Send { fd, data, .. }, Reply::Count(n)) => {
                let sent = &data[..(*n as usize).min(data.len())];
                return self.moved(t, id, *fd, sent, Way::Sent(None));
            }
            (
                Call::SendTo {
                    fd,
                    data,
                    host,
                    port,
                },
                Reply::Count(n),
            ) => {
                let to = Way::Sent(Some(format!("{host}:{port}")));
                return self.moved(t, id, *fd, &data[..(*n as usize).min(data.len())], to);
            }
            (
                Call::Recv {
                    fd, peek: false, ..
                },
                Reply::Data(data),
            ) => {
                return self.moved(t, id, *fd, data, Way::Received(None));
            }
            (
                Call::RecvFrom {
                    fd, peek: false, ..
                },
                Reply::DataFrom(data, from),
            ) => {
                return self.moved(t, id, *fd, data, Way::Received(*from));
            }
            (Call::Shutdown { fd, how }, Reply::Done) => {
                let how = match how {
                    0 => "SHUT_RD",
                    1 => "SHUT_WR",
                    _ => "SHUT_RDWR",
                };
                return self.push(t, id, *fd, What::Shutdown { how });
            }
            (Call::Close { fd }, _) => {
                self.counts.remove(&Fd(*fd));
                return self.push(t, id, *fd, What::Close);
            }
            // A call that would block in a non-blocking program, or a connect left to finish on its own:
            // not failures, and a polling loop would fill the timeline with them.
            (_, Reply::Error { errno, .. }) if *errno == EAGAIN || *errno == EINPROGRESS => None,
            // Asking after an address or an error fails as a way of finding out, not as a call that did.
            (Call::LocalAddr { .. } | Call::PeerAddr { .. } | Call::TakeError { .. }, _) => None,
            (_, Reply::Error { errno, message }) => Some(What::Error {
                call: call.name(),
                errno: *errno,
                name: errno::name(*errno),
                message: message.clone(),
            }),
            _ => None,
        };
        if let (Some(what), Some(fd)) = (what, call_fd(call)) {
            self.push(t, id, fd, what);
        }
    }

    /// Records what a frame from the relay tells of a socket: the peer shut down, or the stream ended.
    pub fn frame(&mut self, stack: &Stack, down: &Down, t: f64) {
        let (stream, errno) = match down {
            Down::Shutdown { stream } => (*stream, 0),
            Down::Closed { stream, errno, .. } => (*stream, *errno),
            _ => return,
        };
        let Some(fd) = stack.fd_of(stream) else {
            return;
        };
        let Some(socket) = stack.socket_at(fd) else {
            return;
        };
        let name = errno::name(errno);
        self.push(t, socket.owner, fd.0, What::PeerClosed { errno, name });
    }

    /// The events since the last take, oldest first, and how many were dropped meanwhile.
    pub fn take(&mut self) -> (Vec<Event>, u64) {
        let dropped = std::mem::take(&mut self.dropped);
        (self.pending.drain(..).collect(), dropped)
    }

    /// Whether events wait to be taken.
    pub fn has_events(&self) -> bool {
        !self.pending.is_empty() || self.dropped > 0
    }

    /// The table of open sockets. Forgets the byte counts of sockets that are gone.
    pub fn sockets(&mut self, stack: &Stack) -> Vec<Row> {
        self.counts.retain(|fd, _| stack.socket_at(*fd).is_some());
        stack
            .sockets()
            .map(|(fd, socket)| {
                let (sent, received) = self.counts.get(&fd).copied().unwrap_or_default();
                let state = match (socket.state, socket.transport) {
                    (State::Fresh, _) | (State::Binding | State::Bound, Transport::Udp) => "UNCONN",
                    (State::Binding | State::Bound, Transport::Tcp) => "BOUND",
                    (State::ListenStarting | State::Listening, _) => "LISTEN",
                    (State::Connecting, _) => "SYN-SENT",
                    (State::Connected, _) if socket.eof => "CLOSE-WAIT",
                    (State::Connected, _) if socket.shut_write => "FIN-WAIT",
                    (State::Connected, _) => "ESTABLISHED",
                    (State::Gone, _) => "CLOSED",
                };
                Row {
                    id: socket.owner,
                    fd: fd.0,
                    transport: transport_name(socket.transport),
                    state,
                    local: socket.local,
                    peer: socket.peer,
                    public: socket.public.clone(),
                    sent,
                    received,
                }
            })
            .collect()
    }

    /// A send or recv of `data`: counted for the table, and merged into the last event when that is one
    /// of the same kind on the same socket with the same peer.
    fn moved(&mut self, t: f64, id: u32, fd: u32, data: &[u8], way: Way) {
        let n = data.len() as u64;
        let count = self.counts.entry(Fd(fd)).or_default();
        match way {
            Way::Sent(_) => count.0 += n,
            Way::Received(_) => count.1 += n,
        }
        if let Some(last) = self.pending.back_mut().filter(|e| e.fd == fd && e.id == id) {
            match (&mut last.what, &way) {
                (
                    What::Send {
                        bytes, count, peer, ..
                    },
                    Way::Sent(to),
                ) if peer == to => {
                    *bytes += n;
                    *count += 1;
                    return;
                }
                // End of file stays an event of its own: it is what the learner looks for.
                (
                    What::Recv {
                        bytes, count, peer, ..
                    },
                    Way::Received(from),
                ) if peer == from && *bytes > 0 && n > 0 => {
                    *bytes += n;
                    *count += 1;
                    return;
                }
                _ => {}
            }
        }
        let (bytes, count, preview) = (n, 1, preview(data));
        let what = match way {
            Way::Sent(peer) => What::Send {
                bytes,
                count,
                preview,
                peer,
            },
            Way::Received(peer) => What::Recv {
                bytes,
                count,
                preview,
                peer,
            },
        };
        self.push(t, id, fd, what);
    }

    fn push(&mut self, t: f64, id: u32, fd: u32, what: What) {
        if self.pending.len() >= PENDING {
            self.pending.pop_front();
            self.dropped += 1;
        }
        self.next_seq += 1;
        self.pending.push_back(Event {
            seq: self.next_seq,
            t,
            id,
            fd,
            what,
        });
    }
}

/// Which way bytes went, and the peer a UDP call named.
enum Way {
    Sent(Option<String>),
    Received(Option<SocketAddr>),
}

/// The socket a call is about.
fn call_fd(call: &Call) -> Option<u32> {
    match call {
        Call::Bind { fd, .. }
        | Call::Listen { fd, .. }
        | Call::Connect { fd, .. }
        | Call::Accept { fd, .. }
        | Call::Send { fd, .. }
        | Call::SendTo { fd, .. }
        | Call::Recv { fd, .. }
        | Call::RecvFrom { fd, .. }
        | Call::Shutdown { fd, .. }
        | Call::Close { fd }
        | Call::LocalAddr { fd }
        | Call::PeerAddr { fd }
        | Call::TakeError { fd } => Some(*fd),
        Call::Socket { .. } | Call::Select { .. } | Call::Resolve { .. } | Call::Hostname => None,
    }
}

fn transport_name(transport: Transport) -> &'static str {
    match transport {
        Transport::Tcp => "tcp",
        Transport::Udp => "udp",
    }
}

/// Python's repr of the first [`PREVIEW`] bytes (`b'Thank you'`), with `…` after it when there are more.
pub fn preview(data: &[u8]) -> String {
    let shown = &data[..data.len().min(PREVIEW)];
    let quote = if shown.contains(&b'\'') && !shown.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::from("b");
    out.push(quote);
    for &byte in shown {
        match byte {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            _ if byte == quote as u8 => {
                out.push('\\');
                out.push(quote);
            }
            0x20..=0x7e => out.push(byte as char),
            _ => {
                let _ = write!(out, "\\x{byte:02x}");
            }
        }
    }
    out.push(quote);
    if data.len() > PREVIEW {
        out.push('…');
    }
    out
}
