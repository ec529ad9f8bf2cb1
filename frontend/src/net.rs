//! The program's sockets: `_socket` and `select`, whose calls go to the page's network worker.
//!
//! `_socket` and `select` are Python (`py/_socket.py`, `py/select.py`, wrapped by `pymodules.rs`), so
//! they replace upstream's stubs; both stand on `_soketnet`, defined here. Its one function,
//! `_soketnet.call(name, *args)`, builds the [`Call`] of that name from its arguments (the table in
//! [`soket_netstack::call`] says each call's fields), sends it through the buffer this program shares with
//! the network worker ([`CallBuffer`]) and blocks in `Atomics.wait` until the [`Reply`]. It returns the
//! call's value, or raises what CPython would: the `OSError` subclass its errno names
//! (`ConnectionRefusedError`, `PermissionError`, ...), `socket.gaierror` for a name lookup,
//! `TimeoutError('timed out')` when the call's timeout passed. Stop sets the buffer's interrupt slot: a
//! waiting call ([`Call::waits`]) then tells the network worker to drop it and raises `KeyboardInterrupt`.

use std::cell::RefCell;

use js_sys::{Object, Reflect, SharedArrayBuffer};
use rustpython_vm::builtins::{PyBaseException, PyBaseExceptionRef, PyType};
use rustpython_vm::function::ArgBytesLike;
use rustpython_vm::{AsObject, Py, PyObjectRef, PyResult, TryFromObject, VirtualMachine};
use soket_netstack::channel::SharedMemory;
use soket_netstack::{Args, Call, CallBuffer, Reply};
use soket_protocol::errno;
use web_sys::MessagePort;

/// This program's line to the network worker.
struct Line {
    buffer: CallBuffer<SharedMemory>,
    /// Rings the network worker: a call's number when one is in the buffer, `{cancel: n}` when the
    /// program gave up waiting for call `n`.
    port: MessagePort,
    seq: u32,
}

thread_local! {
    static LINE: RefCell<Option<Line>> = const { RefCell::new(None) };
}

/// Connects this runtime to the network worker: `port` rings it, `buffer` carries the calls.
pub(crate) fn attach(port: MessagePort, buffer: SharedArrayBuffer) {
    let line = Line {
        buffer: CallBuffer::new(SharedMemory::new(&buffer)),
        port,
        seq: 0,
    };
    LINE.with(|l| *l.borrow_mut() = Some(line));
}

/// Whether Stop was pressed for this program (other waits than socket calls check it too).
pub(crate) fn interrupted() -> bool {
    LINE.with(|line| {
        line.borrow()
            .as_ref()
            .is_some_and(|l| l.buffer.interrupted())
    })
}

/// Sends `call` and waits for its reply.
fn call(call: &Call, vm: &VirtualMachine) -> PyResult<Reply> {
    LINE.with(|line| {
        let mut line = line.borrow_mut();
        let Some(line) = line.as_mut() else {
            return Err(vm.new_os_error(
                "this program has no network (the page gave it no line to the relay)",
            ));
        };
        line.seq = line.seq.wrapping_add(1);
        let seq = line.seq;
        if let Err(refused) = line.buffer.request(seq, call) {
            return Ok(refused);
        }
        let _ = line.port.post_message(&seq.into());
        if call.waits() {
            // What the program printed shows before it waits (a server's "listening" before accept).
            crate::stdio::flush();
        }
        loop {
            if let Some(reply) = line.buffer.take_reply(seq) {
                return reply.map_err(|e| vm.new_os_error(format!("malformed reply: {e}")));
            }
            if call.waits() && line.buffer.interrupted() {
                let cancel = Object::new();
                let _ = Reflect::set(&cancel, &"cancel".into(), &seq.into());
                let _ = line.port.post_message(&cancel);
                line.buffer.abandon();
                return Err(vm.new_exception_empty(vm.ctx.exceptions.keyboard_interrupt.to_owned()));
            }
            // Woken by the reply, or by Stop; a wake for another reason just loops.
            line.buffer.wait();
        }
    })
}

/// A reply as the call's Python value, or the exception CPython would raise.
fn to_python(reply: Reply, vm: &VirtualMachine) -> PyResult<PyObjectRef> {
    let addr = |a: std::net::SocketAddr| (a.ip().to_string(), a.port());
    let list = |fds: Vec<u32>| {
        vm.ctx
            .new_list(fds.into_iter().map(|fd| vm.new_pyobj(fd)).collect())
    };
    Ok(match reply {
        Reply::Done => vm.ctx.none(),
        Reply::Fd(n) | Reply::Count(n) => vm.new_pyobj(n),
        Reply::Int(n) => vm.new_pyobj(n),
        Reply::Data(data) => vm.ctx.new_bytes(data.to_vec()).into(),
        Reply::DataFrom(data, from) => {
            let data: PyObjectRef = vm.ctx.new_bytes(data.to_vec()).into();
            let (host, port) = match from {
                Some(a) => (vm.new_pyobj(a.ip().to_string()), a.port()),
                None => (vm.ctx.none(), 0),
            };
            vm.new_tuple((data, host, port)).into()
        }
        Reply::Accepted(fd, peer) => {
            let (host, port) = addr(peer);
            vm.new_tuple((fd, host, port)).into()
        }
        Reply::Addr(a) => vm.new_tuple(addr(a)).into(),
        Reply::Addrs(ips) => vm
            .ctx
            .new_list(
                ips.into_iter()
                    .map(|ip| vm.new_pyobj(ip.to_string()))
                    .collect(),
            )
            .into(),
        Reply::Text(text) => vm.new_pyobj(text),
        Reply::Ready { read, write, error } => {
            vm.new_tuple((list(read), list(write), list(error))).into()
        }
        Reply::Error { errno, message } => return Err(os_error(errno, message, vm)),
        Reply::Timeout => {
            let timeout = vm.ctx.exceptions.timeout_error;
            return Err(instance(timeout, ("timed out",), vm));
        }
    })
}

/// `OSError(errno, message)` as CPython raises it: the subclass PEP 3151 gives the errno (the
/// interpreter's own `OSError` does not pick one on this target), `socket.gaierror` for a negative one
/// (a `getaddrinfo` error).
fn os_error(errno: i32, message: String, vm: &VirtualMachine) -> PyBaseExceptionRef {
    let exceptions = &vm.ctx.exceptions;
    let class = match errno {
        n if n < 0 => _soketnet::gaierror(vm),
        errno::EPERM | errno::EACCES => exceptions.permission_error.to_owned(),
        errno::EAGAIN | errno::EALREADY | errno::EINPROGRESS => {
            exceptions.blocking_io_error.to_owned()
        }
        errno::EPIPE | ESHUTDOWN => exceptions.broken_pipe_error.to_owned(),
        errno::ECONNABORTED => exceptions.connection_aborted_error.to_owned(),
        errno::ECONNRESET => exceptions.connection_reset_error.to_owned(),
        errno::ETIMEDOUT => exceptions.timeout_error.to_owned(),
        errno::ECONNREFUSED => exceptions.connection_refused_error.to_owned(),
        ENOENT => exceptions.file_not_found_error.to_owned(),
        EINTR => exceptions.interrupted_error.to_owned(),
        _ => exceptions.os_error.to_owned(),
    };
    instance(&class, (errno, message), vm)
}

/// Linux errnos the relay never reports, so that `soket_protocol::errno` lacks them, but that
/// [`os_error`] maps as CPython does.
const ENOENT: i32 = 2;
const EINTR: i32 = 4;
const ESHUTDOWN: i32 = 108;

/// `class(*args)`, as Python's `raise class(*args)` makes it (so that `OSError`'s `errno` and
/// `strerror` are set).
fn instance(
    class: &Py<PyType>,
    args: impl rustpython_vm::function::IntoFuncArgs,
    vm: &VirtualMachine,
) -> PyBaseExceptionRef {
    match class.as_object().call(args, vm) {
        Ok(made) => made
            .downcast::<PyBaseException>()
            .unwrap_or_else(|_| vm.new_type_error("exceptions must derive from BaseException")),
        Err(e) => e,
    }
}

/// A call's positional arguments, converted as RustPython converts a native function's.
struct PyArgs<'vm> {
    args: std::vec::IntoIter<PyObjectRef>,
    vm: &'vm VirtualMachine,
}

impl PyArgs<'_> {
    fn next_object(&mut self) -> PyResult<PyObjectRef> {
        self.args.next().ok_or_else(|| {
            self.vm
                .new_type_error("too few arguments for this socket call")
        })
    }

    fn next<T: TryFromObject>(&mut self) -> PyResult<T> {
        let object = self.next_object()?;
        T::try_from_object(self.vm, object)
    }
}

impl Args for PyArgs<'_> {
    type Error = PyBaseExceptionRef;

    fn u16(&mut self) -> PyResult<u16> {
        self.next()
    }

    fn u32(&mut self) -> PyResult<u32> {
        self.next()
    }

    fn i32(&mut self) -> PyResult<i32> {
        self.next()
    }

    fn bool(&mut self) -> PyResult<bool> {
        self.next()
    }

    fn string(&mut self) -> PyResult<String> {
        self.next()
    }

    fn bytes(&mut self) -> PyResult<bytes::Bytes> {
        let data: ArgBytesLike = self.next()?;
        let copy = data.borrow_buf().to_vec();
        Ok(bytes::Bytes::from(copy))
    }

    fn timeout(&mut self) -> PyResult<Option<f64>> {
        let value = self.next_object()?;
        if self.vm.is_none(&value) {
            return Ok(None);
        }
        Ok(Some(value.try_float(self.vm)?.to_f64()))
    }

    fn fds(&mut self) -> PyResult<Vec<u32>> {
        self.next()
    }

    fn invalid(&mut self, why: String) -> PyBaseExceptionRef {
        self.vm.new_value_error(why)
    }
}

pub(crate) use _soketnet::module_def as soketnet_module_def;

/// The native calls under `_socket` and `select`.
#[rustpython_vm::pymodule]
mod _soketnet {
    use rustpython_vm::builtins::PyTypeRef;
    use rustpython_vm::function::PosArgs;
    // The path `#[pyattr(once)]` expands to.
    use rustpython_vm::common as rustpython_common;
    use rustpython_vm::{PyObjectRef, PyResult, VirtualMachine};
    use soket_netstack::{channel, Call};

    use super::{call as send, to_python, PyArgs};

    #[pyattr]
    const MAX_CHUNK: u32 = channel::MAX_CHUNK;

    /// `socket.gaierror`, which a call raises for a name that does not resolve.
    #[pyattr(once)]
    pub(super) fn gaierror(vm: &VirtualMachine) -> PyTypeRef {
        vm.ctx.new_exception_type(
            "socket",
            "gaierror",
            Some(vec![vm.ctx.exceptions.os_error.to_owned()]),
        )
    }

    /// `socket.herror`.
    #[pyattr(once)]
    fn herror(vm: &VirtualMachine) -> PyTypeRef {
        vm.ctx.new_exception_type(
            "socket",
            "herror",
            Some(vec![vm.ctx.exceptions.os_error.to_owned()]),
        )
    }

    /// `call(name, *args)`: the socket call `name` (a name of `soket_netstack::call`'s table), with its
    /// fields in the table's order; returns its value or raises its error.
    #[pyfunction]
    fn call(name: String, args: PosArgs, vm: &VirtualMachine) -> PyResult<PyObjectRef> {
        let mut args = PyArgs {
            args: args.into_vec().into_iter(),
            vm,
        };
        let c = Call::from_args(&name, &mut args)?;
        if args.args.next().is_some() {
            return Err(vm.new_type_error(format!("too many arguments for socket call {name:?}")));
        }
        to_python(send(&c, vm)?, vm)
    }
}
