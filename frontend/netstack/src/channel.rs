//! The buffer a Python worker and the network worker share for its calls: one `SharedArrayBuffer` per
//! program, read as `i32` slots for the handshake and as bytes for the call and its reply.
//!
//! A call: the Python worker writes the encoded [`crate::Call`] at [`DATA`], its length in
//! [`REQUEST_LEN`], a new number in [`SEQ`], stores [`REQUEST`] in [`STATE`], rings the network worker
//! (a message on their port) and waits in `Atomics.wait` on [`STATE`]. The network worker answers with the
//! encoded [`crate::Reply`] at [`DATA`], its length in [`REPLY_LEN`], stores [`REPLY`] and notifies. Stop sets
//! [`INTERRUPT`] and notifies too: the waiting worker wakes, sees it, and tells the network worker to drop
//! the call. One call at a time per program, so a reply never lands on a newer request.
//!
//! [`CallBuffer`] is that handshake, written once: the Python worker (`frontend/src/net.rs`) and the
//! network worker (`frontend/networker`) both use it, over `SharedMemory` (the `SharedArrayBuffer`, wasm32
//! only).

use soket_protocol::errno::{describe, EMSGSIZE};

use crate::call::{Call, Reply};

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

/// The memory of a call buffer: `i32` slots, read and written atomically, and bytes. On wasm32 it is the
/// program's `SharedArrayBuffer` ([`SharedMemory`]); native tests use plain memory.
pub trait Memory {
    fn load(&self, slot: u32) -> i32;
    fn store(&self, slot: u32, value: i32);
    /// Sleeps while `slot` holds `value`, until notified (or woken for another reason).
    fn wait(&self, slot: u32, value: i32);
    /// Wakes whoever waits on `slot`.
    fn notify(&self, slot: u32);
    fn read(&self, offset: u32, len: u32) -> Vec<u8>;
    fn write(&self, offset: u32, bytes: &[u8]);
}

/// The handshake over one program's call buffer, written once for both sides: the Python worker
/// [`request`](CallBuffer::request)s, [`wait`](CallBuffer::wait)s and
/// [`take_reply`](CallBuffer::take_reply)s; the network worker reads the [`call`](CallBuffer::call) when
/// rung and writes its [`reply`](CallBuffer::reply).
pub struct CallBuffer<M> {
    memory: M,
}

impl<M: Memory> CallBuffer<M> {
    pub fn new(memory: M) -> CallBuffer<M> {
        CallBuffer { memory }
    }

    /// Python worker: writes `call` as call number `seq` and marks it requested; the caller then rings
    /// the network worker. A call too large for the buffer is not sent: its answer is the error.
    pub fn request(&self, seq: u32, call: &Call) -> Result<(), Reply> {
        let encoded = call.encode();
        if encoded.len() > CAPACITY as usize {
            return Err(Reply::Error {
                errno: EMSGSIZE,
                message: describe(EMSGSIZE).to_owned(),
            });
        }
        self.memory.write(DATA, &encoded);
        self.memory.store(REQUEST_LEN, encoded.len() as i32);
        self.memory.store(SEQ, seq as i32);
        self.memory.store(STATE, REQUEST);
        Ok(())
    }

    /// Python worker: the reply to call `seq`, once it is there; the buffer is then idle again.
    pub fn take_reply(&self, seq: u32) -> Option<Result<Reply, postcard::Error>> {
        if self.memory.load(STATE) != REPLY || self.memory.load(SEQ) as u32 != seq {
            return None;
        }
        let len = (self.memory.load(REPLY_LEN).max(0) as u32).min(CAPACITY);
        let bytes = self.memory.read(DATA, len);
        self.memory.store(STATE, IDLE);
        Some(Reply::decode(&bytes))
    }

    /// Python worker: sleeps until the reply comes or Stop is pressed (or a wake for another reason).
    pub fn wait(&self) {
        self.memory.wait(STATE, REQUEST);
    }

    /// Whether Stop was pressed for this program.
    pub fn interrupted(&self) -> bool {
        self.memory.load(INTERRUPT) != 0
    }

    /// Python worker: gives up the call under way (Stop); the caller tells the network worker to drop it.
    pub fn abandon(&self) {
        self.memory.store(STATE, IDLE);
    }

    /// Network worker: the call in the buffer and its number, if one is requested.
    pub fn call(&self) -> Option<(u32, Result<Call, postcard::Error>)> {
        if self.memory.load(STATE) != REQUEST {
            return None;
        }
        let len = self.memory.load(REQUEST_LEN).clamp(0, CAPACITY as i32) as u32;
        let seq = self.memory.load(SEQ) as u32;
        Some((seq, Call::decode(&self.memory.read(DATA, len))))
    }

    /// Network worker: writes the reply to call `seq` and wakes the Python worker, unless the program has
    /// moved on from that call. A reply too large for the buffer becomes an `EMSGSIZE` error.
    pub fn reply(&self, seq: u32, reply: &Reply) {
        if self.memory.load(SEQ) as u32 != seq {
            return; // the program gave up on this call
        }
        let mut encoded = reply.encode();
        if encoded.len() > CAPACITY as usize {
            encoded = Reply::Error {
                errno: EMSGSIZE,
                message: "reply larger than the call buffer".to_owned(),
            }
            .encode();
        }
        self.memory.write(DATA, &encoded);
        self.memory.store(REPLY_LEN, encoded.len() as i32);
        self.memory.store(STATE, REPLY);
        self.memory.notify(STATE);
    }
}

#[cfg(target_arch = "wasm32")]
pub use shared::SharedMemory;

#[cfg(target_arch = "wasm32")]
mod shared {
    use js_sys::{Atomics, Int32Array, SharedArrayBuffer, Uint8Array};

    /// A program's `SharedArrayBuffer`, as a call buffer's [`Memory`](super::Memory).
    pub struct SharedMemory {
        ints: Int32Array,
        bytes: Uint8Array,
    }

    impl SharedMemory {
        pub fn new(buffer: &SharedArrayBuffer) -> SharedMemory {
            SharedMemory {
                ints: Int32Array::new(buffer),
                bytes: Uint8Array::new(buffer),
            }
        }
    }

    impl super::Memory for SharedMemory {
        fn load(&self, slot: u32) -> i32 {
            Atomics::load(&self.ints, slot).unwrap_or(0)
        }

        fn store(&self, slot: u32, value: i32) {
            let _ = Atomics::store(&self.ints, slot, value);
        }

        fn wait(&self, slot: u32, value: i32) {
            let _ = Atomics::wait(&self.ints, slot, value);
        }

        fn notify(&self, slot: u32) {
            let _ = Atomics::notify(&self.ints, slot);
        }

        fn read(&self, offset: u32, len: u32) -> Vec<u8> {
            self.bytes.subarray(offset, offset + len).to_vec()
        }

        fn write(&self, offset: u32, bytes: &[u8]) {
            let end = offset + bytes.len() as u32;
            self.bytes.subarray(offset, end).copy_from(bytes);
        }
    }
}
