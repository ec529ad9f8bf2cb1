//! Native-layer modules of the standard library that we write in Python (`py/`), each run inside a native
//! module so that it replaces upstream's of the same name:
//! - `_signal`, under `signal`: a browser sends no signals; it keeps handlers so that `signal`, and
//!   `subprocess` (which `imaplib` imports), load and behave.
//! - `errno`: every Linux error number (upstream's lacks many on this target, `ECHILD` among them).

const SIGNAL_SOURCE: &str = include_str!("py/_signal.py");
const ERRNO_SOURCE: &str = include_str!("py/errno.py");

pub(crate) use _signal::module_def as signal_module_def;
pub(crate) use errno::module_def as errno_module_def;

#[rustpython_vm::pymodule]
mod _signal {
    use rustpython_vm::builtins::PyModule;
    use rustpython_vm::{Py, PyResult, VirtualMachine};

    pub(crate) fn module_exec(vm: &VirtualMachine, module: &Py<PyModule>) -> PyResult<()> {
        __module_exec(vm, module);
        crate::net::exec_in(module, super::SIGNAL_SOURCE, "_signal", vm)
    }
}

#[rustpython_vm::pymodule]
mod errno {
    use rustpython_vm::builtins::PyModule;
    use rustpython_vm::{Py, PyResult, VirtualMachine};

    pub(crate) fn module_exec(vm: &VirtualMachine, module: &Py<PyModule>) -> PyResult<()> {
        __module_exec(vm, module);
        crate::net::exec_in(module, super::ERRNO_SOURCE, "errno", vm)
    }
}
