//! The network worker's event handlers: WebSocket frames, program calls, timers.
//!
//! Every handler takes the shared state for a moment, does its work, and ends in [`settle`]: retry the
//! waiting calls, write their replies, send the queued frames, arm the timer, report what the page shows.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use bytes::Bytes;
use js_sys::{Array, Function, Object, Reflect, SharedArrayBuffer, Uint8Array};
use soket_netstack::channel::SharedMemory;
use soket_netstack::{CallBuffer, Down, Executor, Reply, Ticket};
use soket_protocol::errno;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, CloseEvent, MessageEvent, MessagePort, WebSocket, WorkerGlobalScope};

/// How often an idle page tells the relay it is still there (the relay's idle timeout is longer).
const KEEPALIVE_MS: i32 = 30_000;
/// The longest wait between attempts to reach a relay that went away.
const MAX_RETRY_MS: i32 = 10_000;
/// The network view hears at most this often: a program that makes calls in a tight loop costs the page
/// one message per period, however many calls it makes.
const NET_REPORT_MS: f64 = 100.0;

/// One attached Python program.
struct Program {
    buffer: CallBuffer<SharedMemory>,
    port: MessagePort,
    /// Kept alive while the port may ring.
    _ring: Closure<dyn FnMut(MessageEvent)>,
}

struct Inner {
    exec: Executor,
    url: String,
    ws: Option<WebSocket>,
    /// The WebSocket's handlers, kept alive with it.
    ws_handlers: Vec<Closure<dyn FnMut(JsValue)>>,
    programs: HashMap<u32, Program>,
    /// Tells the main thread what the page shows.
    notify: Function,
    /// The armed timeout: its handle and the deadline it fires for.
    timer: Option<(i32, f64)>,
    /// The timer's handler, made once.
    on_timer: Option<Closure<dyn FnMut()>>,
    /// The listeners last reported, to report only changes.
    reported: String,
    retry_ms: i32,
    /// A session was held before: a new `Welcome` starts a new socket table.
    had_session: bool,
    /// When the network view's report was last looked at, and the socket table it last held.
    net_reported_at: f64,
    net_table: String,
    /// The armed timer of the next report, and its handler, made once.
    net_timer: Option<i32>,
    on_net_timer: Option<Closure<dyn FnMut()>>,
}

/// The network worker: made once by `net-worker.js`.
#[wasm_bindgen]
pub struct NetWorker {
    inner: Rc<RefCell<Inner>>,
    _keepalive: Closure<dyn FnMut()>,
}

#[wasm_bindgen]
impl NetWorker {
    /// Connects to the relay at `url` (`ws://host/ws`); `notify` receives status objects for the page.
    #[wasm_bindgen(constructor)]
    pub fn new(url: String, notify: Function) -> NetWorker {
        console_error_panic_hook::set_once();
        let inner = Rc::new(RefCell::new(Inner {
            exec: Executor::new(),
            url,
            ws: None,
            ws_handlers: Vec::new(),
            programs: HashMap::new(),
            notify,
            timer: None,
            on_timer: None,
            reported: String::new(),
            retry_ms: 500,
            had_session: false,
            net_reported_at: f64::NEG_INFINITY,
            net_table: String::new(),
            net_timer: None,
            on_net_timer: None,
        }));
        let weak = Rc::downgrade(&inner);
        inner.borrow_mut().on_net_timer = Some(Closure::new(move || {
            if let Some(inner) = weak.upgrade() {
                let mut me = inner.borrow_mut();
                me.net_timer = None;
                me.report_net();
            }
        }));
        let weak = Rc::downgrade(&inner);
        inner.borrow_mut().on_timer = Some(Closure::new(move || {
            if let Some(inner) = weak.upgrade() {
                inner.borrow_mut().timer = None;
                settle(&inner);
            }
        }));
        let weak = Rc::downgrade(&inner);
        let keepalive = Closure::<dyn FnMut()>::new(move || {
            if let Some(inner) = weak.upgrade() {
                inner.borrow_mut().exec.stack.ping();
                settle(&inner);
            }
        });
        let _ = scope().set_interval_with_callback_and_timeout_and_arguments_0(
            keepalive.as_ref().unchecked_ref(),
            KEEPALIVE_MS,
        );
        open(&inner);
        NetWorker {
            inner,
            _keepalive: keepalive,
        }
    }

    /// Attaches a Python program: calls ring on `port`, and travel through `buffer`.
    pub fn attach(&self, program: u32, port: MessagePort, buffer: SharedArrayBuffer) {
        let weak = Rc::downgrade(&self.inner);
        let ring = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            if let Some(inner) = weak.upgrade() {
                on_ring(&inner, program, event.data());
            }
        });
        port.set_onmessage(Some(ring.as_ref().unchecked_ref()));
        let entry = Program {
            buffer: CallBuffer::new(SharedMemory::new(&buffer)),
            port,
            _ring: ring,
        };
        self.inner.borrow_mut().programs.insert(program, entry);
    }

    /// A program ended or was stopped: its waiting calls are dropped and its sockets closed.
    pub fn stop(&self, program: u32) {
        {
            let mut inner = self.inner.borrow_mut();
            inner.exec.stop_program(program);
            if let Some(entry) = inner.programs.remove(&program) {
                entry.port.set_onmessage(None);
                entry.port.close();
            }
        }
        settle(&self.inner);
    }
}

fn scope() -> WorkerGlobalScope {
    js_sys::global().unchecked_into()
}

fn now() -> f64 {
    scope().performance().map(|p| p.now()).unwrap_or(0.0)
}

/// Opens the WebSocket to the relay.
fn open(inner: &Rc<RefCell<Inner>>) {
    let url = inner.borrow().url.clone();
    let ws = match WebSocket::new_with_str(&url, soket_protocol::SUBPROTOCOL) {
        Ok(ws) => ws,
        Err(_) => return retry_later(inner),
    };
    ws.set_binary_type(BinaryType::Arraybuffer);
    let on_message = handler(inner, |inner, event| {
        let Ok(event) = event.dyn_into::<MessageEvent>() else {
            return;
        };
        if let Ok(buffer) = event.data().dyn_into::<js_sys::ArrayBuffer>() {
            on_frame(inner, Bytes::from(Uint8Array::new(&buffer).to_vec()));
        }
    });
    let on_close = handler(inner, |inner, event| {
        let reason = event
            .dyn_into::<CloseEvent>()
            .map(|e| e.reason())
            .unwrap_or_default();
        on_lost(
            inner,
            if reason.is_empty() {
                "the WebSocket closed".into()
            } else {
                reason
            },
        );
    });
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    let mut me = inner.borrow_mut();
    me.ws = Some(ws);
    me.ws_handlers = vec![on_message, on_close];
}

/// A WebSocket event handler that holds the state weakly.
fn handler(
    inner: &Rc<RefCell<Inner>>,
    f: fn(&Rc<RefCell<Inner>>, JsValue),
) -> Closure<dyn FnMut(JsValue)> {
    let weak: Weak<RefCell<Inner>> = Rc::downgrade(inner);
    Closure::new(move |event: JsValue| {
        if let Some(inner) = weak.upgrade() {
            f(&inner, event);
        }
    })
}

fn on_frame(inner: &Rc<RefCell<Inner>>, frame: Bytes) {
    {
        let mut me = inner.borrow_mut();
        match Down::decode(&frame) {
            Ok(down) => {
                if let Down::Welcome { hostname, .. } = &down {
                    if me.had_session {
                        // A new session after a lost one: the old sockets are gone for good. The
                        // network view's timeline goes on.
                        let trace = std::mem::take(&mut me.exec.trace);
                        me.exec = Executor::new();
                        me.exec.trace = trace;
                    }
                    me.had_session = true;
                    me.retry_ms = 500;
                    report(
                        &me,
                        &[
                            ("type", "relay".into()),
                            ("status", "connected".into()),
                            ("hostname", hostname.into()),
                        ],
                    );
                }
                if let Err(violation) = me.exec.handle(down, now()) {
                    drop(me);
                    return give_up(inner, &violation.0);
                }
            }
            Err(e) => {
                drop(me);
                return give_up(inner, &format!("undecodable frame from the relay: {e}"));
            }
        }
    }
    settle(inner);
}

/// The relay broke the protocol: close the WebSocket, which ends every stream.
fn give_up(inner: &Rc<RefCell<Inner>>, why: &str) {
    let ws = inner.borrow_mut().ws.take();
    if let Some(ws) = ws {
        let _ = ws.close_with_code_and_reason(1002, "protocol error");
    }
    on_lost(inner, why.to_owned());
}

fn on_lost(inner: &Rc<RefCell<Inner>>, why: String) {
    {
        let mut me = inner.borrow_mut();
        me.ws = None;
        me.exec.stack.relay_lost(&why);
        report(
            &me,
            &[
                ("type", "relay".into()),
                ("status", "disconnected".into()),
                ("reason", why.into()),
            ],
        );
    }
    settle(inner);
    retry_later(inner);
}

fn retry_later(inner: &Rc<RefCell<Inner>>) {
    let delay = {
        let mut me = inner.borrow_mut();
        let delay = me.retry_ms;
        me.retry_ms = (delay * 2).min(MAX_RETRY_MS);
        delay
    };
    let weak = Rc::downgrade(inner);
    let again = Closure::once_into_js(move || {
        if let Some(inner) = weak.upgrade() {
            open(&inner);
        }
    });
    let _ =
        scope().set_timeout_with_callback_and_timeout_and_arguments_0(again.unchecked_ref(), delay);
}

/// A program rang: a call is in its buffer (a number), or it gave up waiting (`{cancel: n}`).
fn on_ring(inner: &Rc<RefCell<Inner>>, program: u32, message: JsValue) {
    {
        let mut me = inner.borrow_mut();
        // A ring is a plain number; only a cancel is an object. (Reflect.get on a number throws, and an
        // exception on every call costs more than the call.)
        if message.is_object() {
            let cancel = Reflect::get(&message, &"cancel".into()).unwrap_or_default();
            if let Some(seq) = cancel.as_f64() {
                me.exec.cancel(Ticket {
                    program,
                    call: seq as u64,
                });
                return;
            }
        }
        let Some(entry) = me.programs.get(&program) else {
            return;
        };
        let Some((seq, call)) = entry.buffer.call() else {
            return;
        };
        let ticket = Ticket {
            program,
            call: seq.into(),
        };
        let reply = match call {
            Ok(call) => me.exec.submit(ticket, call, now()),
            Err(e) => Some(Reply::Error {
                errno: errno::EINVAL,
                message: format!("malformed call: {e}"),
            }),
        };
        if let Some(reply) = reply {
            me.reply(ticket, &reply);
        }
    }
    settle(inner);
}

impl Inner {
    /// Writes a reply into its program's buffer and wakes the program.
    fn reply(&self, ticket: Ticket, reply: &Reply) {
        let Some(entry) = self.programs.get(&ticket.program) else {
            return;
        };
        // Tickets are made from a call's u32 number (`on_ring`).
        entry.buffer.reply(ticket.call as u32, reply);
    }

    fn flush(&mut self) {
        let frames: Vec<Bytes> = self
            .exec
            .stack
            .take_frames()
            .map(|up| up.encode())
            .collect();
        let Some(ws) = &self.ws else { return };
        if ws.ready_state() != WebSocket::OPEN {
            return; // nothing to send to: the stack fails its streams when the close arrives
        }
        for frame in frames {
            let _ = ws.send_with_u8_array(&frame);
        }
    }

    /// Tells the page's network view what happened since its last report, and the socket table when it
    /// changed: at once when the last report is older than `NET_REPORT_MS`, else when it is that old.
    fn report_net(&mut self) {
        if self.net_timer.is_some() {
            return;
        }
        let wait = self.net_reported_at + NET_REPORT_MS - now();
        if wait > 0.0 {
            let Some(on_timer) = &self.on_net_timer else {
                return;
            };
            if let Ok(handle) = scope().set_timeout_with_callback_and_timeout_and_arguments_0(
                on_timer.as_ref().unchecked_ref(),
                wait.ceil() as i32,
            ) {
                self.net_timer = Some(handle);
            }
            return;
        }
        // Looked at now, whether or not there is news: a loop of calls that change nothing (select,
        // getsockname) costs one look per period, not a serialized table per call.
        self.net_reported_at = now();
        let rows = self.exec.trace.sockets(&self.exec.stack);
        let table = serde_json::to_string(&rows).unwrap_or_default();
        if !self.exec.trace.has_events() && table == self.net_table {
            return;
        }
        let (events, dropped) = self.exec.trace.take();
        let events = serde_json::to_string(&events).unwrap_or_default();
        let origin = scope()
            .performance()
            .map(|p| p.time_origin())
            .unwrap_or(0.0);
        report(
            self,
            &[
                ("type", "net".into()),
                ("events", events.into()),
                ("sockets", table.clone().into()),
                ("dropped", (dropped as f64).into()),
                ("origin", origin.into()),
            ],
        );
        self.net_table = table;
    }

    /// Tells the page about listening sockets when they change.
    fn report_listeners(&mut self) {
        let listeners = self.exec.stack.listeners();
        let summary = format!("{listeners:?}");
        if summary == self.reported {
            return;
        }
        self.reported = summary;
        let list = Array::new();
        for (_, program, local, public) in listeners {
            let item = Object::new();
            let _ = Reflect::set(&item, &"program".into(), &program.into());
            let _ = Reflect::set(&item, &"host".into(), &local.ip().to_string().into());
            let _ = Reflect::set(&item, &"port".into(), &local.port().into());
            let _ = Reflect::set(&item, &"public".into(), &public.into());
            list.push(&item);
        }
        report(self, &[("type", "listeners".into()), ("list", list.into())]);
    }
}

/// Sends the page an object made of these fields.
fn report(inner: &Inner, fields: &[(&str, JsValue)]) {
    let message = Object::new();
    for (key, value) in fields {
        let _ = Reflect::set(&message, &(*key).into(), value);
    }
    let _ = inner.notify.call1(&JsValue::UNDEFINED, &message);
}

/// After anything happened: answer the calls that can now be answered, send what is queued, arm the timer.
fn settle(inner: &Rc<RefCell<Inner>>) {
    let mut me = inner.borrow_mut();
    for (ticket, reply) in me.exec.poll(now()) {
        me.reply(ticket, &reply);
    }
    me.flush();
    me.report_listeners();
    me.report_net();
    let deadline = me.exec.next_deadline();
    if me.timer.map(|(_, at)| Some(at)) == Some(deadline) {
        return;
    }
    if let Some((handle, _)) = me.timer.take() {
        scope().clear_timeout_with_handle(handle);
    }
    let Some(at) = deadline else { return };
    let Some(on_timer) = &me.on_timer else { return };
    let delay = (at - now()).ceil().max(0.0) as i32;
    if let Ok(handle) = scope().set_timeout_with_callback_and_timeout_and_arguments_0(
        on_timer.as_ref().unchecked_ref(),
        delay,
    ) {
        me.timer = Some((handle, at));
    }
}
