//! `_thread` for a program that has exactly one thread.
//!
//! A program runs in one browser worker, and RustPython on `wasm32-unknown-unknown` has no threads. Its
//! fallback `_thread` runs a "thread" synchronously when it starts, so a server that starts a thread per
//! client serves the first one forever and silently ignores the rest. This module replaces it: locks,
//! `get_ident`, `_local` and the rest of the single-threaded stand-ins still work (so `threading`,
//! `queue`, `logging` and `socketserver` import), but starting a thread raises `RuntimeError` with
//! CPython's "can't start new thread" and the way out: `select` or `selectors`.

pub(crate) use _thread::module_def;

/// Why a thread cannot start, in the words the learner sees.
pub(crate) const NO_THREADS: &str = "can't start new thread: Python here runs in one browser worker, \
without threads. To serve several clients at once, use select.select() or the selectors module \
(one thread watching many sockets).";

/// The module's body: upstream's single-threaded stand-ins, with the two ways to start a thread
/// replaced.
const SOURCE: &str = r#"
import _dummy_thread
globals().update({k: v for k, v in vars(_dummy_thread).items() if not k.startswith('__')})
del _dummy_thread

def start_new_thread(function, args, kwargs={}):
    """Cannot start a thread here: raises RuntimeError."""
    raise RuntimeError(_NO_THREADS)

def start_joinable_thread(function, handle=None, daemon=True):
    """Cannot start a thread here: raises RuntimeError."""
    raise RuntimeError(_NO_THREADS)

start_new = start_new_thread
"#;

#[rustpython_vm::pymodule]
mod _thread {
    use rustpython_vm::{
        builtins::PyModule, compiler::Mode, scope::Scope, Py, PyResult, VirtualMachine,
    };

    pub(crate) fn module_exec(vm: &VirtualMachine, module: &Py<PyModule>) -> PyResult<()> {
        __module_exec(vm, module);
        let globals = module.dict();
        globals.set_item("_NO_THREADS", vm.new_pyobj(super::NO_THREADS), vm)?;
        let scope = Scope::with_builtins(None, globals, vm);
        let code = vm
            .compile(super::SOURCE, Mode::Exec, "<soket _thread>")
            .map_err(|e| e.into_pyexception(vm, Some(super::SOURCE)))?;
        vm.run_code_obj(code, scope)?;
        Ok(())
    }
}
