//! The modules we write in Python (`py/`), each run inside a native module so that it replaces upstream's
//! module of the same name:
//! - `_socket` and `select`: the sockets, on the native `_soketnet` calls of `net.rs`.
//! - `_signal`, under `signal`: a browser sends no signals; it keeps handlers so that `signal`, and
//!   `subprocess` (which `imaplib` imports), load and behave.
//! - `errno`: every Linux error number (upstream's lacks many on this target, `ECHILD` among them).

use rustpython_vm::builtins::PyModule;
use rustpython_vm::{compiler::Mode, scope::Scope, Py, PyResult, VirtualMachine};

/// A native module named `$name` whose body is the Python file `py/$file`.
macro_rules! python_module {
    ($name:ident, $file:literal) => {
        #[rustpython_vm::pymodule]
        mod $name {
            use rustpython_vm::builtins::PyModule;
            use rustpython_vm::{Py, PyResult, VirtualMachine};

            pub(crate) fn module_exec(vm: &VirtualMachine, module: &Py<PyModule>) -> PyResult<()> {
                __module_exec(vm, module);
                let source = include_str!(concat!("py/", $file));
                super::exec_in(module, source, stringify!($name), vm)
            }
        }
    };
}

python_module!(_socket, "_socket.py");
python_module!(select, "select.py");
python_module!(_signal, "_signal.py");
python_module!(errno, "errno.py");

pub(crate) use _signal::module_def as signal_module_def;
pub(crate) use _socket::module_def as socket_module_def;
pub(crate) use errno::module_def as errno_module_def;
pub(crate) use select::module_def as select_module_def;

/// Runs Python `source` in `module`'s namespace.
fn exec_in(module: &Py<PyModule>, source: &str, name: &str, vm: &VirtualMachine) -> PyResult<()> {
    let scope = Scope::with_builtins(None, module.dict(), vm);
    let code = vm
        .compile(source, Mode::Exec, name)
        .map_err(|e| e.into_pyexception(vm, Some(source)))?;
    vm.run_code_obj(code, scope)?;
    Ok(())
}
