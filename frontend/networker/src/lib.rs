//! The page's network worker: owns the one WebSocket to the relay and answers every Python program's socket
//! calls from the [`soket_netstack`] executor.
//!
//! `www/net-worker.js` loads this module in a dedicated worker and makes a [`NetWorker`]. The main thread
//! attaches each Python program with a `MessagePort` and a `SharedArrayBuffer` laid out as
//! [`soket_netstack::channel`] says; a message on the port rings for a call. Replies are written into the
//! buffer and the waiting Python worker is woken with `Atomics.notify`. Frames from the relay, timers and
//! calls all end the same way: retry the waiting calls, send the frames the stack queued, arm the timer for
//! the next timeout. Everything runs on this worker's event loop: it never blocks.
//!
//! What the page needs to know (relay status, the session's listeners) goes to the main thread through the
//! `notify` callback, as plain objects.

#[cfg(target_arch = "wasm32")]
mod worker;

#[cfg(target_arch = "wasm32")]
pub use worker::NetWorker;
