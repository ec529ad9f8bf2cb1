//! The tokio driver around the page's engine: the WebSocket, the two tasks that move its frames, and the
//! one lock every call takes.
//!
//! The engine is `soket_netstack::Stack`, the same state machine the browser's network worker drives
//! (quinn drives quinn-proto the same way): the reading task feeds every `Down` into [`Stack::handle`], the
//! writing task sends what [`Stack::take_frames`] yields, and a call that the stack answers with
//! `WouldBlock` waits until a frame from the relay (or the session's end) may have changed its socket, then
//! tries again — what the browser's executor (`soket_netstack::exec`) does with a parked call.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use soket_netstack::Stack;
use soket_protocol::Down;
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::{Error, Goodbye, StackError};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The most frames [`Shared::raw`] lets wait for the writer: a program sending raw frames faster than the
/// WebSocket takes them waits. (The stack's own frames are bounded by the credit the relay grants.)
const RAW_BACKLOG: usize = 64;

/// What the tasks and the handles share.
pub(crate) struct Shared {
    engine: Mutex<Engine>,
    /// Wakes the writing task: frames wait in `Engine::out`. A wake given while it writes is kept (a
    /// `Notify` permit), so none is lost.
    outgoing: Notify,
    /// Wakes [`Shared::raw`] calls waiting for room, each time the writer takes the queue.
    drained: Notify,
    /// Counts what may have changed a socket: every frame from the relay, and the end of the session. A
    /// call that would block waits for the count to move and tries again.
    changed: watch::Sender<u64>,
}

struct Engine {
    stack: Stack,
    /// Encoded frames for the writer, in the order the relay must see them (its stream ids increase in
    /// that order): the stack's, and those of [`Shared::raw`].
    out: VecDeque<Bytes>,
    /// The relay's `Goodbye`, if it sent one.
    goodbye: Option<Goodbye>,
    /// Why the session ended, once it has (the `Goodbye`, or what broke the WebSocket).
    ended: Option<String>,
    /// The reading task has stopped: the WebSocket is closed.
    over: bool,
    /// Nothing more will be written: the last `Client` is gone, the relay broke the protocol or the
    /// WebSocket failed. The writer sends what is queued and closes it.
    closing: bool,
}

impl Engine {
    /// Moves the stack's frames to the writer's queue; true if it has any.
    fn collect(&mut self) -> bool {
        let Engine { stack, out, .. } = self;
        out.extend(stack.take_frames().map(|up| up.encode()));
        !out.is_empty()
    }
}

impl Shared {
    /// Starts the tasks on a session whose `Welcome` was read (and is the first frame `stack` handled).
    pub(crate) fn start(ws: Ws, stack: Stack) -> Arc<Shared> {
        let (changed, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            engine: Mutex::new(Engine {
                stack,
                out: VecDeque::new(),
                goodbye: None,
                ended: None,
                over: false,
                closing: false,
            }),
            outgoing: Notify::new(),
            drained: Notify::new(),
            changed,
        });
        let (sink, stream) = ws.split();
        tokio::spawn(write_frames(shared.clone(), sink));
        tokio::spawn(read_frames(shared.clone(), stream));
        shared
    }

    fn lock(&self) -> MutexGuard<'_, Engine> {
        // A panic while holding the lock left plain data behind, no broken invariant of a lock's own.
        self.engine.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a call that does not wait on the stack, and hands the frames it made to the writer.
    pub(crate) fn with<T>(&self, call: impl FnOnce(&mut Stack) -> T) -> T {
        let mut engine = self.lock();
        let result = call(&mut engine.stack);
        let any = engine.collect();
        drop(engine);
        if any {
            self.outgoing.notify_one();
        }
        result
    }

    /// Runs `attempt` until the stack stops answering `WouldBlock`, trying again whenever a frame from the
    /// relay may have changed a socket.
    pub(crate) async fn wait<T>(
        &self,
        mut attempt: impl FnMut(&mut Stack) -> Result<T, StackError>,
    ) -> Result<T, Error> {
        loop {
            // Subscribed before the attempt: a change made after it is seen by `changed()` below.
            let mut changed = self.changed.subscribe();
            let (result, ended) = {
                let mut engine = self.lock();
                let result = attempt(&mut engine.stack);
                let any = engine.collect();
                let ended = engine.over.then(|| end_message(&engine));
                drop(engine);
                if any {
                    self.outgoing.notify_one();
                }
                (result, ended)
            };
            match result {
                Ok(value) => return Ok(value),
                Err(StackError::Errno(failure)) => return Err(Error::Errno(failure)),
                Err(StackError::WouldBlock) => {
                    // Nothing will change any more: a wait now would never end.
                    if let Some(why) = ended {
                        return Err(Error::SessionEnded(why));
                    }
                    // The sender lives in `self`, so this only returns once the count moves.
                    let _ = changed.changed().await;
                }
            }
        }
    }

    /// Queues any bytes as one frame, after the frames the stack made before it.
    pub(crate) async fn raw(&self, frame: Bytes) -> Result<(), Error> {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            // Registered before looking at the queue: a drain after the look wakes this call.
            drained.as_mut().enable();
            {
                let mut engine = self.lock();
                if engine.closing {
                    return Err(Error::SessionEnded(end_message(&engine)));
                }
                if engine.out.len() < RAW_BACKLOG {
                    engine.collect();
                    engine.out.push_back(frame);
                    drop(engine);
                    self.outgoing.notify_one();
                    return Ok(());
                }
            }
            drained.await;
        }
    }

    /// Why nothing can be sent any more, once that is so.
    pub(crate) fn closing(&self) -> Option<String> {
        let engine = self.lock();
        engine.closing.then(|| end_message(&engine))
    }

    /// The last `Client` is gone: the writer closes the WebSocket after what is queued.
    pub(crate) fn close(&self) {
        self.lock().closing = true;
        self.outgoing.notify_one();
    }

    /// Waits until the WebSocket is closed and says how the session ended.
    pub(crate) async fn ended(&self) -> Option<Goodbye> {
        let mut changed = self.changed.subscribe();
        loop {
            {
                let engine = self.lock();
                if engine.over {
                    return engine.goodbye.clone();
                }
            }
            let _ = changed.changed().await;
        }
    }

    /// A frame from the relay. `Err` says how the relay broke the protocol.
    fn handle(&self, down: Down) -> Result<(), String> {
        let mut engine = self.lock();
        if let Down::Goodbye { code, message } = &down {
            engine.goodbye = Some(Goodbye {
                code: *code,
                message: message.clone(),
            });
            engine.ended = Some(format!("{code:?}: {message}"));
        }
        let result = engine.stack.handle(down);
        let any = engine.collect();
        drop(engine);
        if any {
            self.outgoing.notify_one();
        }
        self.changed.send_modify(|n| *n += 1);
        result.map_err(|violation| violation.0)
    }

    /// The session is over, for `why` unless a `Goodbye` said why first: every socket fails, every
    /// waiting call wakes, and the writer stops.
    fn end(&self, why: String, over: bool) {
        let mut engine = self.lock();
        if engine.ended.is_none() {
            engine.stack.relay_lost(&why);
            engine.ended = Some(why);
        }
        engine.over |= over;
        engine.closing = true;
        drop(engine);
        self.outgoing.notify_one();
        self.drained.notify_waiters();
        self.changed.send_modify(|n| *n += 1);
    }
}

fn end_message(engine: &Engine) -> String {
    engine
        .ended
        .clone()
        .unwrap_or_else(|| "the WebSocket closed".into())
}

/// Feeds every frame from the relay to the stack, until the WebSocket closes or the relay breaks the
/// protocol.
async fn read_frames(shared: Arc<Shared>, mut stream: SplitStream<Ws>) {
    let why = loop {
        match stream.next().await {
            Some(Ok(Message::Binary(frame))) => match Down::decode(&frame) {
                Ok(down) => {
                    if let Err(violation) = shared.handle(down) {
                        tracing::warn!("the relay broke the protocol: {violation}");
                        break format!("the relay broke the protocol: {violation}");
                    }
                }
                Err(e) => {
                    tracing::warn!("undecodable frame from the relay: {e}");
                    break format!("undecodable frame from the relay: {e}");
                }
            },
            Some(Ok(_)) => {}
            Some(Err(e)) => break format!("the WebSocket failed: {e}"),
            None => break "the WebSocket closed".into(),
        }
    };
    shared.end(why, true);
}

/// Sends what the stack and [`Shared::raw`] queue, flushing once the queue is empty (frames are small and
/// many: one flush per batch, not per frame). Closes the WebSocket when nothing more will come.
async fn write_frames(shared: Arc<Shared>, mut sink: SplitSink<Ws, Message>) {
    loop {
        shared.outgoing.notified().await;
        let (frames, closing) = {
            let mut engine = shared.lock();
            (std::mem::take(&mut engine.out), engine.closing)
        };
        shared.drained.notify_waiters();
        for frame in frames {
            if let Err(e) = sink.feed(Message::Binary(frame)).await {
                return shared.end(format!("the WebSocket failed: {e}"), false);
            }
        }
        if let Err(e) = sink.flush().await {
            return shared.end(format!("the WebSocket failed: {e}"), false);
        }
        if closing {
            let _ = sink.close().await;
            return;
        }
    }
}
