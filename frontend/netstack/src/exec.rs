//! Carries out Python programs' socket calls against the [`Stack`], blocking ones included.
//!
//! A call that can be answered now is answered by [`Executor::submit`]. One that must wait — for the
//! relay's answer, for data, for credit, for a connection — is parked with its deadline; the network worker
//! calls [`Executor::poll`] after every batch of relay frames and when [`Executor::next_deadline`] comes,
//! and sends each reply that is then ready back to its program. Time is passed in (milliseconds from any
//! fixed point), so all of this runs in native tests.

use soket_protocol::errno::{describe, EAGAIN, EINPROGRESS};
use soket_protocol::{Down, Failure, StreamId};

use crate::call::{Call, Reply};
use crate::socket::Fd;
use crate::stack::{Error, Stack, Violation};
use crate::trace::Trace;

/// Names one call of one program, so that its reply finds its way back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ticket {
    pub program: u32,
    pub call: u64,
}

/// How far a parked call got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Not tried yet.
    New,
    /// Its relay operation was sent; waiting for the answer.
    Sent,
    /// Its name resolution was sent.
    Resolving(StreamId),
}

struct Parked {
    ticket: Ticket,
    call: Call,
    phase: Phase,
    deadline: Option<f64>,
}

/// What one attempt at a call came to.
enum Step {
    Done(Reply),
    Wait(Phase),
}

#[derive(Default)]
pub struct Executor {
    pub stack: Stack,
    /// Every call answered and every frame handled, for the page's network view.
    pub trace: Trace,
    parked: Vec<Parked>,
}

impl Executor {
    pub fn new() -> Executor {
        Executor::default()
    }

    /// A new call: its reply now, or `None` if it waits (its reply comes from a later `poll`).
    pub fn submit(&mut self, ticket: Ticket, call: Call, now: f64) -> Option<Reply> {
        let deadline = call.timeout().map(|t| now + t.max(0.0) * 1000.0);
        let mut parked = Parked {
            ticket,
            call,
            phase: Phase::New,
            deadline,
        };
        match self.attempt(&mut parked, now) {
            Step::Done(reply) => Some(reply),
            Step::Wait(phase) => {
                parked.phase = phase;
                self.parked.push(parked);
                None
            }
        }
    }

    /// Tries every waiting call again; returns the replies that are now ready.
    pub fn poll(&mut self, now: f64) -> Vec<(Ticket, Reply)> {
        let mut ready = Vec::new();
        let parked = std::mem::take(&mut self.parked);
        for mut call in parked {
            match self.attempt(&mut call, now) {
                Step::Done(reply) => ready.push((call.ticket, reply)),
                Step::Wait(phase) => {
                    call.phase = phase;
                    self.parked.push(call);
                }
            }
        }
        ready
    }

    /// When the earliest waiting call times out.
    pub fn next_deadline(&self) -> Option<f64> {
        self.parked
            .iter()
            .filter_map(|p| p.deadline)
            .reduce(f64::min)
    }

    /// Forgets a waiting call whose program no longer waits for it (interrupted by Stop).
    pub fn cancel(&mut self, ticket: Ticket) {
        self.parked.retain(|p| p.ticket != ticket);
    }

    /// A program stopped: forget its waiting calls and close its sockets.
    pub fn stop_program(&mut self, program: u32) {
        self.parked.retain(|p| p.ticket.program != program);
        self.stack.close_owner(program);
    }

    /// A frame from the relay, into the stack (and the trace).
    pub fn handle(&mut self, down: Down, now: f64) -> Result<(), Violation> {
        self.trace.frame(&self.stack, &down, now);
        self.stack.handle(down)
    }

    /// One attempt at a call; an answered one goes into the trace.
    fn attempt(&mut self, parked: &mut Parked, now: f64) -> Step {
        let program = parked.ticket.program;
        if parked.phase == Phase::New {
            self.trace.asked(program, &parked.call, now);
        }
        let step = self.step(parked, now);
        if let Step::Done(reply) = &step {
            self.trace
                .call(&self.stack, program, &parked.call, reply, now);
        }
        step
    }

    fn step(&mut self, parked: &mut Parked, now: f64) -> Step {
        let timed_out = parked.deadline.is_some_and(|d| now >= d);
        let program = parked.ticket.program;
        let stack = &mut self.stack;
        // A call that would wait: BlockingIOError if non-blocking, TimeoutError once its time is up.
        let wait_or = |phase: Phase| -> Step {
            if parked.call.timeout() == Some(0.0) {
                Step::Done(error(Error::errno(EAGAIN)))
            } else if timed_out {
                Step::Done(Reply::Timeout)
            } else {
                Step::Wait(phase)
            }
        };
        match (&parked.call, parked.phase) {
            (Call::Socket { kind }, _) => {
                Step::Done(Reply::Fd(stack.socket(program, (*kind).into()).0))
            }
            (Call::Bind { fd, host, port }, phase) => {
                relay_op(stack, Fd(*fd), phase, |s| s.bind(Fd(*fd), host, *port))
            }
            (Call::Listen { fd, backlog }, phase) => {
                relay_op(stack, Fd(*fd), phase, |s| s.listen(Fd(*fd), *backlog))
            }
            (
                Call::Connect {
                    fd,
                    host,
                    port,
                    timeout,
                },
                phase,
            ) => {
                let nonblocking = *timeout == Some(0.0);
                if phase == Phase::New {
                    if let Err(e) = stack.connect(Fd(*fd), host, *port) {
                        return Step::Done(error(e));
                    }
                }
                match stack.take_pending(Fd(*fd)) {
                    Some(Ok(())) => Step::Done(Reply::Done),
                    Some(Err(e)) => Step::Done(error(e)),
                    // Left to finish on its own; select() and SO_ERROR tell how it went.
                    None if nonblocking => Step::Done(error(Error::errno(EINPROGRESS))),
                    None if timed_out => Step::Done(Reply::Timeout),
                    None => Step::Wait(Phase::Sent),
                }
            }
            (Call::Accept { fd, .. }, _) => match stack.accept(Fd(*fd)) {
                Ok((conn, peer)) => Step::Done(Reply::Accepted(conn.0, peer)),
                Err(Error::WouldBlock) => wait_or(Phase::New),
                Err(e) => Step::Done(error(e)),
            },
            (Call::Send { fd, data, .. }, _) => match stack.send(Fd(*fd), data) {
                Ok(n) => Step::Done(Reply::Count(n as u32)),
                Err(Error::WouldBlock) => wait_or(Phase::New),
                Err(e) => Step::Done(error(e)),
            },
            (
                Call::SendTo {
                    fd,
                    host,
                    port,
                    data,
                },
                _,
            ) => match stack.send_to(Fd(*fd), host, *port, data) {
                Ok(n) => Step::Done(Reply::Count(n as u32)),
                Err(e) => Step::Done(error(e)),
            },
            (Call::Recv { fd, max, peek, .. }, _) => {
                match stack.recv(Fd(*fd), *max as usize, *peek) {
                    Ok(data) => Step::Done(Reply::Data(data)),
                    Err(Error::WouldBlock) => wait_or(Phase::New),
                    Err(e) => Step::Done(error(e)),
                }
            }
            (Call::RecvFrom { fd, max, peek, .. }, _) => {
                match stack.recv_from(Fd(*fd), *max as usize, *peek) {
                    Ok((data, from)) => Step::Done(Reply::DataFrom(data, from)),
                    Err(Error::WouldBlock) => wait_or(Phase::New),
                    Err(e) => Step::Done(error(e)),
                }
            }
            (Call::Shutdown { fd, how }, _) => done(stack.shutdown(Fd(*fd), *how)),
            (Call::Close { fd }, _) => {
                stack.close(Fd(*fd));
                Step::Done(Reply::Done)
            }
            (
                Call::Select {
                    read,
                    write,
                    error: exceptional,
                    ..
                },
                _,
            ) => {
                let mut ready = (Vec::new(), Vec::new(), Vec::new());
                for (list, out, pick) in [
                    (read, &mut ready.0, 0usize),
                    (write, &mut ready.1, 1),
                    (exceptional, &mut ready.2, 2),
                ] {
                    for fd in list {
                        match stack.readiness(Fd(*fd)) {
                            Ok(r) if [r.readable, r.writable, r.error][pick] => out.push(*fd),
                            Ok(_) => {}
                            Err(e) => return Step::Done(error(e)),
                        }
                    }
                }
                let (read, write, error) = ready;
                if !read.is_empty() || !write.is_empty() || !error.is_empty() || timed_out {
                    Step::Done(Reply::Ready { read, write, error })
                } else {
                    Step::Wait(Phase::New)
                }
            }
            (Call::LocalAddr { fd }, _) => match stack.local_addr(Fd(*fd)) {
                Ok(addr) => Step::Done(Reply::Addr(addr)),
                Err(e) => Step::Done(error(e)),
            },
            (Call::PeerAddr { fd }, _) => match stack.peer_addr(Fd(*fd)) {
                Ok(addr) => Step::Done(Reply::Addr(addr)),
                Err(e) => Step::Done(error(e)),
            },
            (Call::TakeError { fd }, _) => match stack.take_error(Fd(*fd)) {
                Ok(errno) => Step::Done(Reply::Int(errno)),
                Err(e) => Step::Done(error(e)),
            },
            (Call::Resolve { .. }, Phase::Resolving(request)) => {
                match stack.take_resolution(request) {
                    Some(Ok(addrs)) => Step::Done(Reply::Addrs(addrs)),
                    Some(Err(e)) => Step::Done(error(e)),
                    None => Step::Wait(Phase::Resolving(request)),
                }
            }
            (Call::Resolve { host }, _) => match stack.resolve(host) {
                Ok(request) => Step::Wait(Phase::Resolving(request)),
                Err(e) => Step::Done(error(e)),
            },
            (Call::Hostname, _) => Step::Done(Reply::Text(stack.hostname().to_owned())),
        }
    }
}

/// A call that sends a relay operation once and waits for its answer in the socket's `pending`.
fn relay_op(
    stack: &mut Stack,
    fd: Fd,
    phase: Phase,
    start: impl FnOnce(&mut Stack) -> Result<(), Error>,
) -> Step {
    if phase == Phase::New {
        if let Err(e) = start(stack) {
            return Step::Done(error(e));
        }
    }
    match stack.take_pending(fd) {
        Some(Ok(())) => Step::Done(Reply::Done),
        Some(Err(e)) => Step::Done(error(e)),
        None => Step::Wait(Phase::Sent),
    }
}

fn done(result: Result<(), Error>) -> Step {
    match result {
        Ok(()) => Step::Done(Reply::Done),
        Err(e) => Step::Done(error(e)),
    }
}

fn error(e: Error) -> Reply {
    match e {
        Error::Errno(Failure { errno, message }) => Reply::Error { errno, message },
        // Never reaches a program: every caller turns WouldBlock into waiting or EAGAIN first.
        Error::WouldBlock => Reply::Error {
            errno: EAGAIN,
            message: describe(EAGAIN).to_owned(),
        },
    }
}
