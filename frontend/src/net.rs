//! The program's sockets: `_socket` and `select`, whose calls go to the page's network worker.
//!
//! `_socket` and `select` are Python (`py/_socket.py`, `py/select.py`, wrapped by `pymodules.rs`), so
//! they replace upstream's stubs; both stand on `_soketnet`, defined here, whose functions send one
//! [`Call`] through the buffer this program shares with the network worker
//! ([`soket_netstack::channel`]) and block in `Atomics.wait` until the [`Reply`]. Each function returns
//! `(status, value)`: status 0 and the result, an errno and its message, or [`TIMED_OUT`]; the Python
//! side raises what CPython would. Stop sets the buffer's interrupt slot: a waiting call then tells the
//! network worker to drop it and raises `KeyboardInterrupt`.

use std::cell::RefCell;

use js_sys::{Atomics, Int32Array, Object, Reflect, SharedArrayBuffer, Uint8Array};
use rustpython_vm::{PyObjectRef, PyResult, VirtualMachine};
use soket_netstack::{channel, Call, Reply};
use web_sys::MessagePort;

/// The status of a call whose timeout passed (Python raises `TimeoutError('timed out')`).
const TIMED_OUT: i32 = 1_000_000;

/// This program's line to the network worker.
struct Line {
    ints: Int32Array,
    bytes: Uint8Array,
    port: MessagePort,
    seq: u32,
}

thread_local! {
    static LINE: RefCell<Option<Line>> = const { RefCell::new(None) };
}

/// Connects this runtime to the network worker: `port` rings it, `buffer` carries the calls.
pub(crate) fn attach(port: MessagePort, buffer: SharedArrayBuffer) {
    let line = Line {
        ints: Int32Array::new(&buffer),
        bytes: Uint8Array::new(&buffer),
        port,
        seq: 0,
    };
    LINE.with(|l| *l.borrow_mut() = Some(line));
}

/// Whether Stop was pressed for this program (other waits than socket calls check it too).
pub(crate) fn interrupted() -> bool {
    LINE.with(|line| match line.borrow().as_ref() {
        Some(line) => Atomics::load(&line.ints, channel::INTERRUPT).unwrap_or(0) != 0,
        None => false,
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
        let encoded = call.encode();
        if encoded.len() > channel::CAPACITY as usize {
            return Ok(Reply::Error {
                errno: 90,
                message: "Message too long".into(),
            });
        }
        line.seq = line.seq.wrapping_add(1);
        let seq = line.seq;
        let interruptible = may_wait(call);
        line.bytes
            .subarray(channel::DATA, channel::DATA + encoded.len() as u32)
            .copy_from(&encoded);
        line.ints
            .set_index(channel::REQUEST_LEN, encoded.len() as i32);
        line.ints.set_index(channel::SEQ, seq as i32);
        let _ = Atomics::store(&line.ints, channel::STATE, channel::REQUEST);
        let _ = line.port.post_message(&seq.into());
        loop {
            let state = Atomics::load(&line.ints, channel::STATE).unwrap_or(channel::REQUEST);
            if state == channel::REPLY && line.ints.get_index(channel::SEQ) as u32 == seq {
                let len =
                    (line.ints.get_index(channel::REPLY_LEN).max(0) as u32).min(channel::CAPACITY);
                let bytes = line
                    .bytes
                    .subarray(channel::DATA, channel::DATA + len)
                    .to_vec();
                let _ = Atomics::store(&line.ints, channel::STATE, channel::IDLE);
                return Reply::decode(&bytes)
                    .map_err(|e| vm.new_os_error(format!("malformed reply: {e}")));
            }
            if interruptible && Atomics::load(&line.ints, channel::INTERRUPT).unwrap_or(0) != 0 {
                let cancel = Object::new();
                let _ = Reflect::set(&cancel, &"cancel".into(), &seq.into());
                let _ = line.port.post_message(&cancel);
                let _ = Atomics::store(&line.ints, channel::STATE, channel::IDLE);
                return Err(vm.new_exception_empty(vm.ctx.exceptions.keyboard_interrupt.to_owned()));
            }
            // Woken by the reply, or by Stop; a wake for another reason just loops.
            let _ = Atomics::wait(&line.ints, channel::STATE, channel::REQUEST);
        }
    })
}

/// Whether `call` may wait (for the relay, data, credit, a connection): only those are cut short by Stop.
/// The others are answered at once, so that a program unwinding from `KeyboardInterrupt` can still close
/// its sockets (in `finally:`, `with`, `__del__`) without a second `KeyboardInterrupt`, as in CPython.
fn may_wait(call: &Call) -> bool {
    !matches!(
        call,
        Call::Socket { .. }
            | Call::Close { .. }
            | Call::Shutdown { .. }
            | Call::SendTo { .. }
            | Call::LocalAddr { .. }
            | Call::PeerAddr { .. }
            | Call::TakeError { .. }
            | Call::Hostname
    )
}

/// A reply as `(status, value)` for the Python side.
fn to_python(reply: Reply, vm: &VirtualMachine) -> PyObjectRef {
    let addr = |a: std::net::SocketAddr| (a.ip().to_string(), a.port());
    let ok = |value: PyObjectRef| vm.new_tuple((0, value)).into();
    let list = |fds: Vec<u32>| {
        vm.ctx
            .new_list(fds.into_iter().map(|fd| vm.new_pyobj(fd)).collect())
    };
    match reply {
        Reply::Done => ok(vm.ctx.none()),
        Reply::Fd(n) | Reply::Count(n) => ok(vm.new_pyobj(n)),
        Reply::Int(n) => ok(vm.new_pyobj(n)),
        Reply::Data(data) => ok(vm.ctx.new_bytes(data.to_vec()).into()),
        Reply::DataFrom(data, from) => {
            let data: PyObjectRef = vm.ctx.new_bytes(data.to_vec()).into();
            let (host, port) = match from {
                Some(a) => (vm.new_pyobj(a.ip().to_string()), a.port()),
                None => (vm.ctx.none(), 0),
            };
            ok(vm.new_tuple((data, host, port)).into())
        }
        Reply::Accepted(fd, peer) => {
            let (host, port) = addr(peer);
            ok(vm.new_tuple((fd, host, port)).into())
        }
        Reply::Addr(a) => ok(vm.new_tuple(addr(a)).into()),
        Reply::Addrs(ips) => ok(vm
            .ctx
            .new_list(
                ips.into_iter()
                    .map(|ip| vm.new_pyobj(ip.to_string()))
                    .collect(),
            )
            .into()),
        Reply::Text(text) => ok(vm.new_pyobj(text)),
        Reply::Ready { read, write, error } => {
            ok(vm.new_tuple((list(read), list(write), list(error))).into())
        }
        Reply::Error { errno, message } => vm.new_tuple((errno, message)).into(),
        Reply::Timeout => vm.new_tuple((TIMED_OUT, "timed out")).into(),
    }
}

/// A Python timeout (`None` or seconds) as the call wants it.
fn timeout(value: &PyObjectRef, vm: &VirtualMachine) -> PyResult<Option<f64>> {
    if vm.is_none(value) {
        return Ok(None);
    }
    Ok(Some(value.try_float(vm)?.to_f64()))
}

pub(crate) use _soketnet::module_def as soketnet_module_def;

/// The native calls under `_socket` and `select`.
#[rustpython_vm::pymodule]
mod _soketnet {
    use rustpython_vm::function::ArgBytesLike;
    use rustpython_vm::{PyObjectRef, PyResult, VirtualMachine};
    use soket_netstack::{channel, Call, Kind};

    use super::{call, timeout, to_python};

    #[pyattr]
    const MAX_CHUNK: u32 = channel::MAX_CHUNK;

    fn run(c: Call, vm: &VirtualMachine) -> PyResult<PyObjectRef> {
        Ok(to_python(call(&c, vm)?, vm))
    }

    #[pyfunction]
    fn socket(udp: bool, vm: &VirtualMachine) -> PyResult<PyObjectRef> {
        run(
            Call::Socket {
                kind: if udp { Kind::Udp } else { Kind::Tcp },
            },
            vm,
        )
    }

    #[pyfunction]
    fn bind(fd: u32, host: String, port: u16, vm: &VirtualMachine) -> PyResult<PyObjectRef> {
        run(Call::Bind { fd, host, port }, vm)
    }

    #[pyfunction]
    fn listen(fd: u32, backlog: u32, vm: &VirtualMachine) -> PyResult<PyObjectRef> {
        run(Call::Listen { fd, backlog }, vm)
    }

    #[pyfunction]
    fn connect(
        fd: u32,
        host: String,
        port: u16,
        wait: PyObjectRef,
        vm: &VirtualMachine,
    ) -> PyResult<PyObjectRef> {
        run(
            Call::Connect {
                fd,
                host,
                port,
                timeout: timeout(&wait, vm)?,
            },
            vm,
        )
    }

    #[pyfunction]
    fn accept(fd: u32, wait: PyObjectRef, vm: &VirtualMachine) -> PyResult<PyObjectRef> {
        run(
            Call::Accept {
                fd,
                timeout: timeout(&wait, vm)?,
            },
            vm,
        )
    }

    #[pyfunction]
    fn send(
        fd: u32,
        data: ArgBytesLike,
        wait: PyObjectRef,
        vm: &VirtualMachine,
    ) -> PyResult<PyObjectRef> {
        let data = bytes::Bytes::from(data.borrow_buf().to_vec());
        run(
            Call::Send {
                fd,
                data,
                timeout: timeout(&wait, vm)?,
            },
            vm,
        )
    }

    #[pyfunction]
    fn sendto(
        fd: u32,
        data: ArgBytesLike,
        host: String,
        port: u16,
        vm: &VirtualMachine,
    ) -> PyResult<PyObjectRef> {
        let data = bytes::Bytes::from(data.borrow_buf().to_vec());
        run(
            Call::SendTo {
                fd,
                host,
                port,
                data,
            },
            vm,
        )
    }

    #[pyfunction]
    fn recv(
        fd: u32,
        max: u32,
        peek: bool,
        wait: PyObjectRef,
        vm: &VirtualMachine,
    ) -> PyResult<PyObjectRef> {
        run(
            Call::Recv {
                fd,
                max,
                peek,
                timeout: timeout(&wait, vm)?,
            },
            vm,
        )
    }

    #[pyfunction]
    fn recvfrom(
        fd: u32,
        max: u32,
        peek: bool,
        wait: PyObjectRef,
        vm: &VirtualMachine,
    ) -> PyResult<PyObjectRef> {
        run(
            Call::RecvFrom {
                fd,
                max,
                peek,
                timeout: timeout(&wait, vm)?,
            },
            vm,
        )
    }

    #[pyfunction]
    fn shutdown(fd: u32, how: i32, vm: &VirtualMachine) -> PyResult<PyObjectRef> {
        run(Call::Shutdown { fd, how }, vm)
    }

    #[pyfunction]
    fn close(fd: u32, vm: &VirtualMachine) -> PyResult<PyObjectRef> {
        run(Call::Close { fd }, vm)
    }

    #[pyfunction]
    fn select(
        read: Vec<u32>,
        write: Vec<u32>,
        error: Vec<u32>,
        wait: PyObjectRef,
        vm: &VirtualMachine,
    ) -> PyResult<PyObjectRef> {
        run(
            Call::Select {
                read,
                write,
                error,
                timeout: timeout(&wait, vm)?,
            },
            vm,
        )
    }

    #[pyfunction]
    fn sockname(fd: u32, vm: &VirtualMachine) -> PyResult<PyObjectRef> {
        run(Call::LocalAddr { fd }, vm)
    }

    #[pyfunction]
    fn peername(fd: u32, vm: &VirtualMachine) -> PyResult<PyObjectRef> {
        run(Call::PeerAddr { fd }, vm)
    }

    #[pyfunction]
    fn take_error(fd: u32, vm: &VirtualMachine) -> PyResult<PyObjectRef> {
        run(Call::TakeError { fd }, vm)
    }

    #[pyfunction]
    fn resolve(host: String, vm: &VirtualMachine) -> PyResult<PyObjectRef> {
        run(Call::Resolve { host }, vm)
    }

    #[pyfunction]
    fn hostname(vm: &VirtualMachine) -> PyResult<PyObjectRef> {
        run(Call::Hostname, vm)
    }
}
