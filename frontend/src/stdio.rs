//! `sys.stdout`, `sys.stderr` and `sys.stdin` of a program in the worker.
//!
//! stdout and stderr are what `python3 -u` makes them: a `TextIOWrapper` with `write_through=True` over
//! an unbuffered raw stream, so every `print` reaches the page as it happens, not when the program ends.
//! The raw stream hands the bytes to the worker's JavaScript callback (`write(fd, bytes)`), which decodes
//! them (a character may be split across writes) and posts them to the page. stderr's error handler is
//! `backslashreplace`, as in CPython.
//!
//! stdin reads the text the program was started with, then end of file: `input()` returns its lines and
//! raises `EOFError` after the last. (Typing into the console while the program runs comes with the
//! blocking channel to the page.)

use js_sys::{Function, Uint8Array};
use rustpython_vm::{compiler::Mode, scope::Scope, PyResult, VirtualMachine};
use std::cell::RefCell;
use wasm_bindgen::JsValue;

thread_local! {
    /// The worker's `write(fd, bytes)`; set once, when the runtime is built.
    static WRITE: RefCell<Option<Function>> = const { RefCell::new(None) };
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

class _ConsoleIn(_io._RawIOBase):
    """The console's input: the text the program was started with, then end of file."""
    def __init__(self, data):
        self._data = _io.BytesIO(data)
        self.name = '<stdin>'
    def readable(self):
        return True
    def fileno(self):
        return 0
    def isatty(self):
        return False
    def readinto(self, buffer):
        return self._data.readinto(buffer)

def _out(fd, name, errors):
    return _io.TextIOWrapper(_ConsoleOut(fd, name), encoding='utf-8', errors=errors,
                             write_through=True)

sys.stdout = sys.__stdout__ = _out(1, '<stdout>', 'strict')
sys.stderr = sys.__stderr__ = _out(2, '<stderr>', 'backslashreplace')
sys.stdin = sys.__stdin__ = _io.TextIOWrapper(
    _io.BufferedReader(_ConsoleIn(STDIN.encode('utf-8', 'surrogateescape'))), encoding='utf-8')
"#;

/// Installs the streams; `stdin` is all the program will read.
pub(crate) fn install(vm: &VirtualMachine, stdin: &str) -> PyResult<()> {
    let scope = Scope::with_builtins(None, vm.ctx.new_dict(), vm);
    scope.globals.set_item("STDIN", vm.new_pyobj(stdin), vm)?;
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
    use rustpython_vm::{function::ArgBytesLike, PyResult, VirtualMachine};

    #[pyfunction]
    fn write(fd: i32, data: ArgBytesLike, vm: &VirtualMachine) -> PyResult<usize> {
        data.with_ref(|bytes| super::send(fd, bytes))
            .map_err(|e| vm.new_os_error(format!("the page's console is gone: {e:?}")))
    }
}

/// Hands `bytes` written to `fd` to the worker.
fn send(fd: i32, bytes: &[u8]) -> Result<usize, JsValue> {
    if bytes.is_empty() {
        return Ok(0);
    }
    WRITE.with(|w| match &*w.borrow() {
        Some(write) => {
            write.call2(&JsValue::UNDEFINED, &fd.into(), &Uint8Array::from(bytes))?;
            Ok(bytes.len())
        }
        None => Err(JsValue::from_str("no writer was set")),
    })
}
