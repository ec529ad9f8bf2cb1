//! The in-page network stack, without I/O: what a page's network worker keeps for every Python socket.
//!
//! Python programs (in their own workers) make socket calls; the network worker owns the page's one
//! WebSocket to the relay and answers them from a [`Stack`]. The stack is plain data and logic — no
//! WebSocket, no clock, no JS — so it is tested natively: calls go in, `soket.v1` frames ([`Up`]) come out
//! of [`Stack::take_frames`], frames from the relay ([`Down`]) go into [`Stack::handle`], after which the
//! worker tries the calls waiting on their sockets again. The native client
//! (`soket-client`) drives the same stack over tokio, so the relay's integration tests run this engine.
//!
//! Every call is non-blocking: it succeeds, fails with an errno as CPython on Linux would, or returns
//! [`Error::WouldBlock`]; a blocking Python call is the worker retrying it when its socket changes (or
//! its timeout passes). The costs the design asks for hold here by construction: `recv` on buffered data,
//! `send` within the credit window and `accept` with a pending connection send nothing to the relay or send
//! frames without waiting for an answer; `connect`, `bind`, `listen` and name resolution take one round trip.
//!
//! # Layout
//! - [`socket`]: one socket's state and buffers.
//! - [`stack`]: the table of sockets and the calls (`stack/mod.rs`), and what relay frames do (`stack/frames.rs`).
//! - [`channel`]: the buffer a Python worker and the network worker share: its layout, and the handshake
//!   both sides use ([`CallBuffer`]).
//! - [`call`]: the calls a Python worker sends the network worker (one table: name, fields, whether it
//!   waits), and the replies (postcard-encoded).
//! - [`exec`]: carries out calls, parking those that must wait until their socket changes or time is up.
//! - [`trace`]: what the page's network view shows: an event per socket call, and the socket table.

pub mod call;
pub mod channel;
pub mod exec;
pub mod socket;
pub mod stack;
pub mod trace;

pub use call::{Arg, Args, Call, Kind, Reply};
pub use channel::CallBuffer;
pub use exec::{Executor, Ticket};
pub use socket::{Fd, Readiness};
pub use soket_protocol::{Down, StreamId, Transport, Up};
pub use stack::{Error, Stack};
