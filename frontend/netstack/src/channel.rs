//! The buffer a Python worker and the network worker share for its calls: one `SharedArrayBuffer` per
//! program, read as `i32` slots for the handshake and as bytes for the call and its reply.
//!
//! A call: the Python worker writes the encoded [`crate::Call`] at [`DATA`], its length in
//! [`REQUEST_LEN`], a new number in [`SEQ`], stores [`REQUEST`] in [`STATE`], rings the network worker
//! (a message on their port) and waits in `Atomics.wait` on [`STATE`]. The network worker answers with the
//! encoded [`crate::Reply`] at [`DATA`], its length in [`REPLY_LEN`], stores [`REPLY`] and notifies. Stop sets
//! [`INTERRUPT`] and notifies too: the waiting worker wakes, sees it, and tells the network worker to drop
//! the call. One call at a time per program, so a reply never lands on a newer request.

/// `i32` slot: [`IDLE`], [`REQUEST`] or [`REPLY`].
pub const STATE: u32 = 0;
/// `i32` slot: bytes of the call at [`DATA`].
pub const REQUEST_LEN: u32 = 1;
/// `i32` slot: bytes of the reply at [`DATA`].
pub const REPLY_LEN: u32 = 2;
/// `i32` slot: the number of the call under way; its reply carries the same.
pub const SEQ: u32 = 3;
/// `i32` slot: non-zero once the program is to stop.
pub const INTERRUPT: u32 = 4;

pub const IDLE: i32 = 0;
pub const REQUEST: i32 = 1;
pub const REPLY: i32 = 2;

/// Byte offset of the call or reply.
pub const DATA: u32 = 64;
/// Bytes a call or reply may take: `send` and `recv` move at most this much at once.
pub const CAPACITY: u32 = 256 * 1024;
/// The size of the whole buffer.
pub const SIZE: u32 = DATA + CAPACITY;
/// The most payload one call carries, leaving room for the rest of its encoding.
pub const MAX_CHUNK: u32 = CAPACITY - 1024;
