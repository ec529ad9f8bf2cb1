//! `_thread` for a program that has exactly one thread.
//!
//! A program runs in one browser worker, and RustPython on `wasm32-unknown-unknown` has no threads. The
//! `_thread` it falls back to (a frozen module the interpreter imports while it starts) runs a "thread"
//! synchronously when it starts, so a server that starts a thread per client serves the first one forever
//! and silently ignores the rest. [`install`] changes that module in place: locks, `get_ident`, `_local`
//! and the other single-threaded stand-ins still work (so `threading`, `queue`, `logging` and
//! `socketserver` import), but starting a thread raises `RuntimeError` with CPython's "can't start new
//! thread" and the way out: `select` or `selectors`.

use rustpython_vm::{compiler::Mode, scope::Scope, PyResult, VirtualMachine};

/// Why a thread cannot start, in the words the learner sees.
const NO_THREADS: &str = "can't start new thread: Python here runs in one browser worker, \
without threads. To serve several clients at once, use select.select() or the selectors module \
(one thread watching many sockets).";

/// Run in `_thread`'s namespace: the two ways to start a thread, replaced.
const SOURCE: &str = r#"
def start_new_thread(function, args, kwargs={}):
    """Cannot start a thread here: raises RuntimeError."""
    raise RuntimeError(_NO_THREADS)

def start_joinable_thread(function, handle=None, daemon=True):
    """Cannot start a thread here: raises RuntimeError."""
    raise RuntimeError(_NO_THREADS)

start_new = start_new_thread
"#;

/// Makes starting a thread fail clearly, before any program imports `threading`.
pub(crate) fn install(vm: &VirtualMachine) -> PyResult<()> {
    let module = vm.import("_thread", 0)?;
    let globals = module
        .dict()
        .ok_or_else(|| vm.new_runtime_error("_thread has no namespace"))?;
    globals.set_item("_NO_THREADS", vm.new_pyobj(NO_THREADS), vm)?;
    let code = vm
        .compile(SOURCE, Mode::Exec, "<soket _thread>")
        .map_err(|e| e.into_pyexception(vm, Some(SOURCE)))?;
    vm.run_code_obj(code, Scope::with_builtins(None, globals, vm))?;
    Ok(())
}
