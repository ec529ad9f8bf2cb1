//! `sys.stdout`, `sys.stderr` and `sys.stdin` of a program in the worker.
//!
//! stdout and stderr are what `python3 -u` makes them: a `TextIOWrapper` with `write_through=True` over
//! an unbuffered raw stream, so every `print` reaches the page as it happens, not when the program ends.
//! The raw stream hands the bytes to the worker's JavaScript callback (`write(fd, bytes)`), which decodes
//! them (a character may be split across writes) and posts them to the page. stderr's error handler is
//! `backslashreplace`, as in CPython.
//!
//! A program that prints in a tight loop would post the page thousands of messages a second, more than
//! its main thread can take. So what a program writes within [`HOLD_MS`] of the last post is held and
//! joined (up to [`HOLD_BYTES`]), and [`flush`] posts it before the program waits for anything (a socket
//! call, input, `time.sleep`), when it flushes (`print(..., flush=True)`) and when it ends: output still
//! shows as it happens, never later than the program's next wait. (A program stopped while it computes
//! without a pause loses what it wrote in its last 25 ms, unless it flushed.)
//!
//! stdin is the console: the page writes what the learner types (or the text a program was started with)
//! into a `SharedArrayBuffer` ring (laid out by [`WRITTEN`], [`READ`], [`CLOSED`], [`RING`]), and a read blocks in `Atomics.wait` until bytes
//! or end of file arrive. Stop wakes a waiting read, which raises `KeyboardInterrupt` as Ctrl-C would.

use js_sys::{Atomics, Function, Int32Array, SharedArrayBuffer, Uint8Array};
use rustpython_vm::{compiler::Mode, scope::Scope, PyResult, VirtualMachine};
use std::cell::RefCell;
use wasm_bindgen::JsValue;

thread_local! {
    /// The worker's `write(fd, bytes)`; set once, when the runtime is built.
    static WRITE: RefCell<Option<Function>> = const { RefCell::new(None) };
    /// The console's input ring, once the page gave the program one.
    static CONSOLE: RefCell<Option<ConsoleIn>> = const { RefCell::new(None) };
    /// Output written since the last post.
    static HELD: RefCell<Held> = const { RefCell::new(Held { fd: 1, bytes: Vec::new(), posted_at: 0.0 }) };
}

/// Output is held this long after a post (milliseconds), joined with what follows.
pub const HOLD_MS: f64 = 25.0;
/// At most this many bytes are held.
pub const HOLD_BYTES: usize = 64 * 1024;

/// One stream's output not posted yet, and when the last post was.
struct Held {
    fd: i32,
    bytes: Vec<u8>,
    posted_at: f64,
}

// The console's input ring, which `www/soket.js` writes: `i32` slots, then the bytes. The page (the only
// writer) advances WRITTEN, the program (the only reader) advances READ; both count bytes since the
// start, wrapping, so the ring holds `WRITTEN - READ` bytes.
/// `i32` slot: bytes the page has written so far (wrapping). The program waits on it.
pub const WRITTEN: u32 = 0;
/// `i32` slot: bytes the program has read so far (wrapping).
pub const READ: u32 = 1;
/// `i32` slot: non-zero once the input ended (Ctrl-D, or the end of a program's given input).
pub const CLOSED: u32 = 2;
/// Byte offset of the ring.
pub const RING: u32 = 16;
/// Bytes the ring holds.
pub const RING_SIZE: u32 = 64 * 1024;

struct ConsoleIn {
    ints: Int32Array,
    bytes: Uint8Array,
}

/// Makes `buffer` (the ring above) the program's stdin.
pub(crate) fn attach_console(buffer: SharedArrayBuffer) {
    let console = ConsoleIn {
        ints: Int32Array::new(&buffer),
        bytes: Uint8Array::new(&buffer),
    };
    CONSOLE.with(|c| *c.borrow_mut() = Some(console));
}

impl ConsoleIn {
    fn available(&self) -> (u32, u32) {
        let written = Atomics::load(&self.ints, WRITTEN).unwrap_or(0) as u32;
        let read = Atomics::load(&self.ints, READ).unwrap_or(0) as u32;
        (written, read)
    }

    fn closed(&self) -> bool {
        Atomics::load(&self.ints, CLOSED).unwrap_or(1) != 0
    }

    /// Takes up to `max` bytes from the ring; empty if there are none.
    fn take(&self, max: usize) -> Vec<u8> {
        let (written, read) = self.available();
        let n = (written.wrapping_sub(read) as usize).min(max);
        let mut out = Vec::with_capacity(n);
        let mut at = read;
        while out.len() < n {
            let start = at % RING_SIZE;
            let len = ((RING_SIZE - start) as usize).min(n - out.len());
            let part = self.bytes.subarray(RING + start, RING + start + len as u32);
            out.extend(part.to_vec());
            at = at.wrapping_add(len as u32);
        }
        let _ = Atomics::store(&self.ints, READ, at as i32);
        out
    }
}

/// Makes `write(fd, bytes)` the destination of fds 1 and 2.
pub(crate) fn set_writer(write: Function) {
    WRITE.with(|w| *w.borrow_mut() = Some(write));
}

/// The streams, built in Python from `_io`'s classes over the raw streams of `_soket_stdio`.
const SETUP: &str = r#"
import sys, _io, _soket_stdio

class _ConsoleOut(_io._RawIOBase):
    """A console on the page: every write goes there at once."""
    def __init__(self, fd, name):
        self._fd = fd
        self.name = name
    def writable(self):
        return True
    def fileno(self):
        return self._fd
    def isatty(self):
        return False
    def write(self, data):
        return _soket_stdio.write(self._fd, data)
    def flush(self):
        # print(..., flush=True) and sys.stdout.flush(): what is held goes to the page now.
        _soket_stdio.flush()

class _ConsoleIn(_io._RawIOBase):
    """The console's input: what the learner types, until Ctrl-D."""
    def __init__(self):
        self.name = '<stdin>'
    def readable(self):
        return True
    def fileno(self):
        return 0
    def isatty(self):
        return False
    def readinto(self, buffer):
        data = _soket_stdio.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

def _out(fd, name, errors):
    return _io.TextIOWrapper(_ConsoleOut(fd, name), encoding='utf-8', errors=errors,
                             write_through=True)

sys.stdout = sys.__stdout__ = _out(1, '<stdout>', 'strict')
sys.stderr = sys.__stderr__ = _out(2, '<stderr>', 'backslashreplace')
sys.stdin = sys.__stdin__ = _io.TextIOWrapper(
    _io.BufferedReader(_ConsoleIn()), encoding='utf-8')
"#;

/// Installs the streams.
pub(crate) fn install(vm: &VirtualMachine) -> PyResult<()> {
    let scope = Scope::with_builtins(None, vm.ctx.new_dict(), vm);
    let code = vm
        .compile(SETUP, Mode::Exec, "<soket stdio>")
        .map_err(|e| e.into_pyexception(vm, Some(SETUP)))?;
    vm.run_code_obj(code, scope)?;
    Ok(())
}

pub(crate) use _soket_stdio::module_def;

/// The raw output: `write(fd, data)` copies `data` to the worker and returns how many bytes it took.
#[rustpython_vm::pymodule]
mod _soket_stdio {
    use js_sys::Atomics;
    use rustpython_vm::{function::ArgBytesLike, PyResult, VirtualMachine};

    #[pyfunction]
    fn write(fd: i32, data: ArgBytesLike, vm: &VirtualMachine) -> PyResult<usize> {
        data.with_ref(|bytes| super::send(fd, bytes))
            .map_err(|e| vm.new_os_error(format!("the page's console is gone: {e:?}")))
    }

    /// Posts the output held so far (`sys.stdout.flush()`).
    #[pyfunction]
    fn flush() {
        super::flush();
    }

    /// Reads at most `size` bytes of the console's input, waiting until some arrive; empty at its end.
    /// Stop raises `KeyboardInterrupt` here.
    #[pyfunction]
    fn read(size: usize, vm: &VirtualMachine) -> PyResult<Vec<u8>> {
        super::CONSOLE.with(|console| {
            let console = console.borrow();
            let Some(console) = console.as_ref() else {
                return Ok(Vec::new()); // no console: stdin is empty, as `< /dev/null`
            };
            loop {
                let (written, read) = console.available();
                if written != read {
                    return Ok(console.take(size.max(1)));
                }
                if console.closed() {
                    return Ok(Vec::new());
                }
                if crate::net::interrupted() {
                    return Err(
                        vm.new_exception_empty(vm.ctx.exceptions.keyboard_interrupt.to_owned())
                    );
                }
                // Woken by the page's next write, Ctrl-D, or Stop. A prompt shows before the wait.
                super::flush();
                let _ = Atomics::wait(&console.ints, super::WRITTEN, written as i32);
            }
        })
    }

    /// Whether a read would not wait: bytes are there, or the input ended (for `select`).
    #[pyfunction]
    fn ready() -> bool {
        super::CONSOLE.with(|console| match console.borrow().as_ref() {
            Some(console) => {
                let (written, read) = console.available();
                written != read || console.closed()
            }
            None => true,
        })
    }
}

/// Takes `bytes` written to `fd`: posted now, or held a moment while the program writes fast.
fn send(fd: i32, bytes: &[u8]) -> Result<usize, JsValue> {
    if bytes.is_empty() {
        return Ok(0);
    }
    HELD.with(|held| {
        let mut held = held.borrow_mut();
        // One stream at a time, so stdout and stderr keep their order.
        if held.fd != fd {
            post(&mut held)?;
            held.fd = fd;
        }
        held.bytes.extend_from_slice(bytes);
        let now = js_sys::Date::now();
        if held.bytes.len() >= HOLD_BYTES || now - held.posted_at >= HOLD_MS {
            post(&mut held)?;
            held.posted_at = now;
        }
        Ok(bytes.len())
    })
}

/// Posts the output held so far. Called before the program waits, and when it ends.
pub(crate) fn flush() {
    HELD.with(|held| {
        let _ = post(&mut held.borrow_mut());
    });
}

/// Hands the held bytes to the worker.
fn post(held: &mut Held) -> Result<(), JsValue> {
    if held.bytes.is_empty() {
        return Ok(());
    }
    let bytes = std::mem::take(&mut held.bytes);
    WRITE.with(|w| match &*w.borrow() {
        Some(write) => {
            write.call2(
                &JsValue::UNDEFINED,
                &held.fd.into(),
                &Uint8Array::from(&bytes[..]),
            )?;
            Ok(())
        }
        None => Err(JsValue::from_str("no writer was set")),
    })
}
