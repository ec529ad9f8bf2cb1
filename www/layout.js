// What the page and its workers agree on, written once: the layouts of the buffers they share and the exit
// codes the page gives a program besides its own. soket.js (the page) and python-worker.js import it; the
// Rust side has the same layouts in frontend/netstack/src/channel.rs and frontend/src/stdio.rs, and
// python-worker.js compares them with the runtime's own (`Runtime.layout()`) before it says it is ready,
// so the two cannot drift apart unnoticed.

/** The call buffer between a Python worker and the network worker: i32 slots, then the data. */
export const CHANNEL = Object.freeze({
  // i32 index the caller waits on (idle, request, reply).
  STATE: 0,
  // i32 index set to 1 by Stop: the waiting call ends with KeyboardInterrupt.
  INTERRUPT: 4,
  // Bytes in all: 64 of slots, then 256 KiB of request or reply.
  SIZE: 64 + 256 * 1024,
});

/** A program's console input ring (its stdin): i32 slots, then the bytes. */
export const CONSOLE = Object.freeze({
  // i32 indexes: bytes written by the page, bytes read by the program (both wrap), end of input.
  WRITTEN: 0,
  READ: 1,
  CLOSED: 2,
  // Byte offset of the ring, and its size.
  RING: 16,
  RING_SIZE: 64 * 1024,
});

/** Exit codes the page gives a program besides the program's own. */
export const EXIT = Object.freeze({
  // 128 + SIGINT, what a shell shows for a program stopped by Ctrl-C: Stop.
  STOPPED: 130,
  // 128 + SIGABRT, what a shell shows after CPython's "Fatal Python error": the runtime itself failed.
  CRASHED: 134,
});
