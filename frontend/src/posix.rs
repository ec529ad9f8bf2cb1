//! The part of `posix` that `os` needs to import, for a worker with no file system and no processes.
//!
//! Upstream has no `posix` on `wasm32-unknown-unknown`, and without it `os` fails to import, and with
//! `os` everything that imports it: `threading`, `traceback`, `linecache`, `socket`, `http.client`. This
//! module gives `os` what its import and the common calls need, with Linux's values:
//! - `environ` (a small fixed environment), `getcwd`, `getpid`, `cpu_count` (1: one worker),
//!   `urandom` (the browser's `crypto.getRandomValues`), `putenv`/`unsetenv` (no process to pass them to);
//! - the file system is empty and read-only, as Linux would report it: looking a path up raises
//!   `FileNotFoundError`, creating or changing one `OSError` EROFS, so `os.path.exists` is false and
//!   `shutil`, `tempfile` and `urllib.request` import; `os.write` to fd 1 or 2 reaches the console;
//! - `stat_result`, the `O_*` and `*_OK` constants.
//!
//! Anything else is absent (`AttributeError`), rather than pretending. Sockets bring `_socket` and
//! `select`, not more of this module.

pub(crate) use module::module_def;

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

def _missing(path):
    raise FileNotFoundError(2, 'No such file or directory', path)

def _read_only(path):
    raise OSError(30, 'Read-only file system', path)

def _bad_fd():
    raise OSError(9, 'Bad file descriptor')

def stat(path, *, dir_fd=None, follow_symlinks=True):
    """There are no files here: always FileNotFoundError."""
    _missing(path)

def lstat(path, *, dir_fd=None):
    _missing(path)

def listdir(path='.'):
    _missing(path)

def scandir(path='.'):
    _missing(path)

def readlink(path, *, dir_fd=None):
    _missing(path)

def chdir(path):
    _missing(path)

def unlink(path, *, dir_fd=None):
    _missing(path)

remove = unlink

def rmdir(path, *, dir_fd=None):
    _missing(path)

def access(path, mode, *, dir_fd=None, effective_ids=False, follow_symlinks=True):
    return False

def open(path, flags, mode=0o777, *, dir_fd=None):
    if flags & O_CREAT:
        _read_only(path)
    _missing(path)

def mkdir(path, mode=0o777, *, dir_fd=None):
    _read_only(path)

def rename(src, dst, *, src_dir_fd=None, dst_dir_fd=None):
    _missing(src)

replace = rename

def write(fd, data):
    """`os.write`: fds 1 and 2 are the console; there is no other file."""
    if fd in (1, 2):
        return _soket_stdio.write(fd, data)
    _bad_fd()

def close(fd):
    _bad_fd()

def fstat(fd):
    _bad_fd()

def isatty(fd):
    return False

def get_terminal_size(fd=1):
    raise OSError(25, 'Inappropriate ioctl for device')

class stat_result(tuple):
    """`os.stat_result`: nothing here returns one, but `shutil` looks at its fields."""
    n_sequence_fields = n_fields = 10

for _i, _name in enumerate(('st_mode', 'st_ino', 'st_dev', 'st_nlink', 'st_uid', 'st_gid',
                            'st_size', 'st_atime', 'st_mtime', 'st_ctime')):
    setattr(stat_result, _name, property(lambda self, _i=_i: self[_i]))
del _i, _name

import _soket_stdio
"#;

/// The native half: `posix.urandom`, and the Python half run in the module's namespace.
#[rustpython_vm::pymodule(name = "posix")]
mod module {
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
