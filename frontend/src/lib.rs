//! The wasm side of Soket: the Python runtime a Web Worker runs, one per running program.
//!
//! `www/python-worker.js` loads this crate (built by `cargo xtask` with wasm-bindgen into `www/pkg/`),
//! builds a [`Runtime`] once while the page loads, and runs one learner's program in it: output streams
//! to the page as it is written, and the worker posts the exit status when the program ends.
//!
//! # Layout
//! - `runtime`: the interpreter (RustPython with its frozen standard library and our modules) and the
//!   one program it runs: `__main__`, tracebacks, `SystemExit`, the exit status.
//! - `stdio`: `sys.stdout` and `sys.stderr` that hand every write to the worker at once, and a
//!   `sys.stdin` that waits for what the learner types in the console.
//! - `time`: the clocks and `time.sleep` the browser can give (upstream's panic on this target).
//! - `threads`: `_thread`, so `threading` imports while starting a thread says why it cannot run.
//! - `posix`: the part of `posix` that `os` needs to import.
//! - `pymodules`: `_socket`, `select`, `_signal` and `errno`, written in Python (`py/`) in place of
//!   upstream's.
//! - `net`: `_socket` and `select` (Python in `py/`, on the native `_soketnet`), whose calls go to the
//!   page's network worker and block in `Atomics.wait` for the reply.
//! - `layout`: the shared buffers' layouts as the runtime has them, for the worker to compare with
//!   `www/layout.js`.
//! - `panic`: reports a Rust panic to the page before the instance dies.
//! - [`exit`] and the pure parts of the modules above compile natively as well, so `cargo test` covers
//!   them; everything that touches RustPython or JavaScript is `cfg(target_arch = "wasm32")`.
//! - [`protocol`]: the `soket.v1` frames the in-page network stack will speak to the relay.
//!
//! # Invariant
//! The page's main thread never blocks: everything here runs in a worker, and only a worker may park in
//! `Atomics.wait` (which `time.sleep` does).

pub use soket_protocol as protocol;

pub mod exit;
mod time;

#[cfg(target_arch = "wasm32")]
mod layout;
#[cfg(target_arch = "wasm32")]
mod net;
#[cfg(target_arch = "wasm32")]
mod panic;
#[cfg(target_arch = "wasm32")]
mod posix;
#[cfg(target_arch = "wasm32")]
mod pymodules;
#[cfg(target_arch = "wasm32")]
mod runtime;
#[cfg(target_arch = "wasm32")]
mod stdio;
#[cfg(target_arch = "wasm32")]
mod threads;

#[cfg(target_arch = "wasm32")]
pub use runtime::Runtime;
