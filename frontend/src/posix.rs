//! The part of `posix` that `os` needs to import, for a worker with no file system and no processes.
//!
//! Upstream has no `posix` on `wasm32-unknown-unknown`, and without it `os` fails to import, and with
//! `os` everything that imports it: `threading`, `traceback`, `linecache`, `socket`, `http.client`. This
//! module gives `os` what its import and the common calls need, with Linux's values:
//! - `environ` (a small fixed environment), `getcwd`, `getpid`, `cpu_count` (1: one worker),
//!   `urandom` (the browser's `crypto.getRandomValues`), `putenv`/`unsetenv` (no process to pass them to);
//! - `stat`/`lstat` raise `FileNotFoundError`: there are no files, so `os.path.exists` is false;
//! - the `O_*` and `*_OK` constants.
//!
//! Anything else is absent (`AttributeError`), rather than pretending. Sockets bring `_socket` and
//! `select`, not more of this module.

pub(crate) use posix::module_def;

/// The module's Python half: what needs no Rust.
const SOURCE: &str = r#"
environ = {
    b'HOME': b'/home/learner',
    b'LANG': b'C.UTF-8',
    b'PATH': b'/usr/local/bin:/usr/bin:/bin',
    b'USER': b'learner',
}
error = OSError

_have_functions = []

F_OK, X_OK, W_OK, R_OK = 0, 1, 2, 4
O_RDONLY, O_WRONLY, O_RDWR = 0, 1, 2
O_CREAT, O_EXCL, O_NOCTTY, O_TRUNC, O_APPEND = 0o100, 0o200, 0o400, 0o1000, 0o2000
O_NONBLOCK, O_NDELAY, O_DSYNC, O_SYNC = 0o4000, 0o4000, 0o10000, 0o4010000
O_DIRECTORY, O_NOFOLLOW, O_CLOEXEC = 0o200000, 0o400000, 0o2000000

def getcwd():
    """The current directory: the learner's home."""
    return '/home/learner'

def getcwdb():
    return b'/home/learner'

def getpid():
    """The program's process id (one program, one fixed id)."""
    return 42

def getppid():
    return 1

def cpu_count():
    """One: a program runs in one worker."""
    return 1

def putenv(name, value):
    pass

def unsetenv(name):
    pass

def stat(path, *, dir_fd=None, follow_symlinks=True):
    """There are no files here: always FileNotFoundError."""
    raise FileNotFoundError(2, 'No such file or directory', path)

def lstat(path, *, dir_fd=None):
    raise FileNotFoundError(2, 'No such file or directory', path)
"#;

#[rustpython_vm::pymodule]
mod posix {
    use rustpython_vm::{
        builtins::{PyBytesRef, PyModule},
        compiler::Mode,
        scope::Scope,
        Py, PyResult, VirtualMachine,
    };

    /// `os.urandom(size)`: `size` bytes from the browser's cryptographic generator.
    #[pyfunction]
    fn urandom(size: isize, vm: &VirtualMachine) -> PyResult<PyBytesRef> {
        let size = usize::try_from(size)
            .map_err(|_| vm.new_value_error("negative argument not allowed"))?;
        let mut bytes = vec![0; size];
        getrandom::fill(&mut bytes).map_err(|e| vm.new_os_error(e.to_string()))?;
        Ok(vm.ctx.new_bytes(bytes))
    }

    pub(crate) fn module_exec(vm: &VirtualMachine, module: &Py<PyModule>) -> PyResult<()> {
        __module_exec(vm, module);
        let scope = Scope::with_builtins(None, module.dict(), vm);
        let code = vm
            .compile(super::SOURCE, Mode::Exec, "<soket posix>")
            .map_err(|e| e.into_pyexception(vm, Some(super::SOURCE)))?;
        vm.run_code_obj(code, scope)?;
        Ok(())
    }
}
